package smtpsim

import (
	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/steps/rehearsal/rehearse"
)

// The only login a rehearsal's mail server accepts.
const (
	RehearsalUser     = "runbook"
	RehearsalPassword = "rehearsal-password"
)

func init() {
	rehearse.RegisterService(rehearse.Service{Connection: "smtp", Start: func(rehearse.Host) (rehearse.Sim, error) {
		s, err := New(WithAuth(RehearsalUser, RehearsalPassword))
		if err != nil {
			return nil, err
		}
		return &Rehearsal{Server: s}, nil
	}})
}

// Rehearsal is the simulator serving a rehearsal's smtp connections.
type Rehearsal struct{ Server *Server }

// Connect points an smtp connection at the simulator, trusting its certificate.
func (r *Rehearsal) Connect(_ *engine.ConnectionDecl, c *engine.Connection) error {
	c.URL, c.Token = r.Server.URL(), RehearsalPassword
	c.Settings["username"] = RehearsalUser
	c.Client = r.Server.CertPool()
	if c.Settings["from"] == "" {
		c.Settings["from"] = "runbook@rehearsal.invalid"
	}
	return nil
}

// Calls counts the messages sent.
func (r *Rehearsal) Calls() map[string]int { return map[string]int{"smtp": len(r.Server.Messages())} }

// Close stops the simulator.
func (r *Rehearsal) Close() { r.Server.Close() }
