package jenkinssim

import (
	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/steps/rehearsal/rehearse"
)

func init() {
	rehearse.RegisterService(rehearse.Service{Connection: "jenkins", Start: func(h rehearse.Host) (rehearse.Sim, error) {
		return &Rehearsal{Server: New(WithClock(h.Clock), WithAutoCreate())}, nil
	}})
}

// Rehearsal is the simulator serving a rehearsal's jenkins connections.
type Rehearsal struct{ Server *Server }

// Connect points a jenkins connection at the simulator, as its default user.
func (r *Rehearsal) Connect(_ *engine.ConnectionDecl, c *engine.Connection) error {
	c.URL, c.Token = r.Server.URL()+"/", DefaultToken
	c.Settings["user"] = DefaultUser
	return nil
}

// Calls counts the API requests the simulator answered.
func (r *Rehearsal) Calls() map[string]int {
	return map[string]int{"jenkins": len(r.Server.Requests())}
}

// Close stops the simulator.
func (r *Rehearsal) Close() { r.Server.Close() }
