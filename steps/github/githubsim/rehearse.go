package githubsim

import (
	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/steps/rehearsal/rehearse"
)

// RehearsalToken is the only credential a rehearsal's GitHub accepts: a wrong or missing
// secret in a sandbox run is refused, as the real service does.
const RehearsalToken = "rehearsal-github-token"

func init() {
	rehearse.RegisterService(rehearse.Service{Connection: "github", Start: func(h rehearse.Host) (rehearse.Sim, error) {
		return &Rehearsal{Server: New(WithAutoCreate(), WithClock(h.Clock), WithToken(RehearsalToken))}, nil
	}})
}

// Rehearsal is the simulator serving a rehearsal's github connections.
type Rehearsal struct{ Server *Server }

// Connect points a github connection at the simulator.
func (r *Rehearsal) Connect(_ *engine.ConnectionDecl, c *engine.Connection) error {
	c.URL, c.Token = r.Server.URL(), RehearsalToken
	return nil
}

// Calls counts the API requests the simulator answered.
func (r *Rehearsal) Calls() map[string]int { return map[string]int{"github": len(r.Server.Requests())} }

// Close stops the simulator.
func (r *Rehearsal) Close() { r.Server.Close() }
