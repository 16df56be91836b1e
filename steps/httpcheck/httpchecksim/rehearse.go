package httpchecksim

import (
	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/steps/rehearsal/rehearse"
)

func init() {
	rehearse.RegisterService(rehearse.Service{Connection: "http", Start: func(rehearse.Host) (rehearse.Sim, error) {
		return &Rehearsal{Server: New(WithAutoCreate())}, nil
	}})
}

// Rehearsal is the simulator serving a rehearsal's http connections: the public web.
type Rehearsal struct{ Server *Server }

// Connect points an http connection at the simulator.
func (r *Rehearsal) Connect(_ *engine.ConnectionDecl, c *engine.Connection) error {
	c.URL, c.Token = r.Server.URL()+"/", ""
	return nil
}

// Calls counts the requests the simulator answered, as the public web's.
func (r *Rehearsal) Calls() map[string]int { return map[string]int{"public": len(r.Server.Requests())} }

// Close stops the simulator.
func (r *Rehearsal) Close() { r.Server.Close() }
