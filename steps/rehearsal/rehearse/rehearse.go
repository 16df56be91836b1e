// Package rehearse is the registry of what a rehearsal simulates. It sits below
// steps/rehearsal, so simulator and step packages register themselves from init without
// an import cycle, the way step types register with the engine (Caddy-style):
//
//   - a Service is the simulated service behind every connection of one type: how a
//     sandbox starts it, and (through the Sim it starts) how a connection is pointed at
//     it, how many calls it answered, how it stops;
//   - a Seeder says how the planned steps of one type seed the world before the
//     rehearsal runs, from their parameters decoded into the seeder's own struct.
//
// A step type with a simulator adds a rehearse.go to its simulator's folder that
// registers both; steps/rehearsal needs no edit for it.
package rehearse

import (
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"sync"

	"github.com/cessda/runbook/engine"
)

// Service is a simulated service: one per sandbox, behind every connection of its type.
type Service struct {
	// Connection is the connection type it serves ("github", "kubernetes", ...).
	Connection string
	// Start starts the service for one sandbox.
	Start func(h Host) (Sim, error)
}

// Sim is a started service.
type Sim interface {
	// Connect points c, the playbook's connection d with its secret references cleared,
	// at the simulator: its URL, a credential it accepts, an in-process client.
	Connect(d *engine.ConnectionDecl, c *engine.Connection) error
	// Calls counts the requests the service answered, by the name a rehearsal's summary
	// reports them under ("github", "kubernetes/production").
	Calls() map[string]int
	// Close stops the service.
	Close()
}

// Host is what a sandbox gives the services it starts.
type Host struct {
	// Clock is the sandbox's time, which every simulator keeps.
	Clock engine.Clock
	// Web returns an HTTP client for what a step downloads from elsewhere (a release
	// tarball on GitHub): requests for keep's host go to keep, every other to the
	// sandbox's simulated web, never to the internet.
	Web func(keep string) *http.Client
}

// Seeder says how the planned steps of one type seed the world.
type Seeder struct {
	// Step is the step type's name ("zenodo.reserve_doi").
	Step string
	// Order: seeders run over the whole plan, those of lower Order first (the CI builds
	// staging runs before the workloads that run them), in plan order within one Order.
	Order int
	// New returns a pointer to a zero params struct: each item's rendered parameters are
	// decoded into it (by their json tags) before its Seed is called.
	New func() Seed
}

// Seed is one planned step's (or foreach item's) parameters, seeding the world.
type Seed interface {
	Seed(sc *SeedContext) error
}

var (
	mu       sync.RWMutex
	services = map[string]Service{}
	seeders  = map[string]Seeder{}
)

var connTypeRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// RegisterService adds a simulated service. Simulator packages call it from init; a
// duplicate or malformed registration is a programming error and panics at start-up.
func RegisterService(s Service) {
	mu.Lock()
	defer mu.Unlock()
	if !connTypeRE.MatchString(s.Connection) || s.Start == nil {
		panic(fmt.Sprintf("rehearse.RegisterService: malformed service %q (a connection type and Start are needed)", s.Connection))
	}
	if _, dup := services[s.Connection]; dup {
		panic(fmt.Sprintf("rehearse.RegisterService: a service for connection type %q is registered twice", s.Connection))
	}
	services[s.Connection] = s
}

// Services returns every registered service, sorted by connection type.
func Services() []Service {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]Service, 0, len(services))
	for _, s := range services {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Connection < out[j].Connection })
	return out
}

// RegisterSeeder adds how the planned steps of one type seed the world. Simulator (or
// world) packages call it from init; a duplicate registration panics at start-up.
func RegisterSeeder(s Seeder) {
	mu.Lock()
	defer mu.Unlock()
	if s.Step == "" || s.New == nil {
		panic(fmt.Sprintf("rehearse.RegisterSeeder: malformed seeder %q (a step type and New are needed)", s.Step))
	}
	if _, dup := seeders[s.Step]; dup {
		panic(fmt.Sprintf("rehearse.RegisterSeeder: step type %q has two seeders", s.Step))
	}
	seeders[s.Step] = s
}

// LookupSeeder returns the seeder of a step type.
func LookupSeeder(step string) (Seeder, bool) {
	mu.RLock()
	defer mu.RUnlock()
	s, ok := seeders[step]
	return s, ok
}
