package chatsim

import (
	"strings"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/steps/rehearsal/rehearse"
)

func init() {
	rehearse.RegisterService(rehearse.Service{Connection: "chat", Start: func(rehearse.Host) (rehearse.Sim, error) {
		return &Rehearsal{Server: New(WithAutoCreate())}, nil
	}})
}

// Rehearsal is the simulator serving a rehearsal's chat connections.
type Rehearsal struct{ Server *Server }

// Connect points a chat connection at a webhook of the simulator, of the flavor the
// connection says (or its URL suggests).
func (r *Rehearsal) Connect(d *engine.ConnectionDecl, c *engine.Connection) error {
	if c.Settings["flavor"] == "mattermost" || (c.Settings["flavor"] == "" && strings.Contains(d.URL, "/hooks/")) {
		c.URL = r.Server.MattermostURL("rehearsal")
	} else {
		c.URL = r.Server.SlackURL("TREHEARSAL/BREHEARSAL/XREHEARSAL")
	}
	return nil
}

// Calls counts the messages posted.
func (r *Rehearsal) Calls() map[string]int { return map[string]int{"chat": len(r.Server.Posts())} }

// Close stops the simulator.
func (r *Rehearsal) Close() { r.Server.Close() }
