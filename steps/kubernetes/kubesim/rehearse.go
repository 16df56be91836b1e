package kubesim

import (
	"sync"
	"time"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/steps/rehearsal/rehearse"
)

func init() {
	rehearse.RegisterService(rehearse.Service{Connection: "kubernetes", Start: func(h rehearse.Host) (rehearse.Sim, error) {
		return NewFleet(h.Clock.Now), nil
	}})
}

// Fleet is the clusters of one rehearsal: one per kubernetes connection, made when first
// named, every one pulling from one image registry.
type Fleet struct {
	Images   *Registry
	Clusters map[string]*Cluster // by connection name
	now      func() time.Time
	mu       sync.Mutex
}

// NewFleet returns a fleet with no cluster yet; each starts at now() when made.
func NewFleet(now func() time.Time) *Fleet {
	return &Fleet{Images: NewRegistry(), Clusters: map[string]*Cluster{}, now: now}
}

// Cluster returns the cluster behind a kubernetes connection, made on first use.
func (f *Fleet) Cluster(conn string) *Cluster {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.Clusters[conn]; ok {
		return c
	}
	c := New(WithStart(f.now()), WithRegistry(f.Images))
	f.Clusters[conn] = c
	return c
}

// Connect gives a kubernetes connection an in-process client of its cluster.
func (f *Fleet) Connect(d *engine.ConnectionDecl, c *engine.Connection) error {
	c.Client = f.Cluster(d.Name).Clientset()
	return nil
}

// Calls counts each cluster's API actions, as kubernetes/CONNECTION.
func (f *Fleet) Calls() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for name, c := range f.Clusters {
		out["kubernetes/"+name] = len(c.Actions())
	}
	return out
}

// Close stops every cluster.
func (f *Fleet) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.Clusters {
		c.Close()
	}
}
