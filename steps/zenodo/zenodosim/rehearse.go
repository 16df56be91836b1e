package zenodosim

import (
	"net/http"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/steps/rehearsal/rehearse"
)

// RehearsalToken is the only credential a rehearsal's Zenodo accepts.
const RehearsalToken = "rehearsal-zenodo-token"

func init() {
	rehearse.RegisterService(rehearse.Service{Connection: "zenodo", Start: func(h rehearse.Host) (rehearse.Sim, error) {
		return &Rehearsal{Server: New(WithToken(RehearsalToken, 1), WithClock(h.Clock.Now)), web: h.Web, concepts: map[int]bool{}}, nil
	}})
	rehearse.RegisterSeeder(rehearse.Seeder{Step: "zenodo.reserve_doi", New: func() rehearse.Seed { return &reserveSeed{} }})
}

// Rehearsal is the simulator serving a rehearsal's zenodo connections.
type Rehearsal struct {
	Server   *Server
	web      func(keep string) *http.Client
	concepts map[int]bool // the concepts seeded, each once
}

// Connect points a zenodo connection at the simulator. The files a release publishes
// come from the sandbox's simulated web.
func (r *Rehearsal) Connect(_ *engine.ConnectionDecl, c *engine.Connection) error {
	c.URL, c.Token = r.Server.URL(), RehearsalToken
	if r.web != nil {
		c.HTTPClient = r.web(r.Server.URL())
	}
	return nil
}

// Calls counts the API requests the simulator answered.
func (r *Rehearsal) Calls() map[string]int { return map[string]int{"zenodo": len(r.Server.Requests())} }

// Close stops the simulator.
func (r *Rehearsal) Close() { r.Server.Close() }

// reserveSeed: a zenodo.reserve_doi of an existing concept finds the product's earlier
// versions there, so the release becomes a new version of it.
type reserveSeed struct {
	ConceptID int    `json:"concept_id"`
	Title     string `json:"title"`
}

func (p *reserveSeed) Seed(sc *rehearse.SeedContext) error {
	r, ok := sc.Sim("zenodo").(*Rehearsal)
	if !ok || p.ConceptID <= 0 || r.concepts[p.ConceptID] {
		return nil
	}
	r.concepts[p.ConceptID] = true
	r.Server.AddPublished(Published{ConceptID: p.ConceptID, Title: p.Title, Version: "0.0.0-previous"})
	return nil
}
