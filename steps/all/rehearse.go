package all

// The simulators a rehearsal starts: each registers its simulated service, and how the
// steps it serves seed it, with steps/rehearsal/rehearse from its rehearse.go. A step
// type with a simulator adds its simulator's import here; steps/rehearsal needs no edit.
import (
	_ "github.com/cessda/runbook/steps/github/githubsim"
	_ "github.com/cessda/runbook/steps/httpcheck/httpchecksim"
	_ "github.com/cessda/runbook/steps/jenkins/jenkinssim"
	_ "github.com/cessda/runbook/steps/kubernetes/kubesim"
	_ "github.com/cessda/runbook/steps/notify/chatsim"
	_ "github.com/cessda/runbook/steps/notify/smtpsim"
	_ "github.com/cessda/runbook/steps/zenodo/zenodosim"
)
