// Package all registers every step type runbook ships, and every simulator a rehearsal
// starts (rehearse.go), by importing their packages for their init functions (as Caddy's
// standard modules are pulled in by one import).
package all

import (
	_ "github.com/cessda/runbook/steps/github"
	_ "github.com/cessda/runbook/steps/httpcheck"
	_ "github.com/cessda/runbook/steps/jenkins"
	_ "github.com/cessda/runbook/steps/kubernetes"
	_ "github.com/cessda/runbook/steps/manual"
	_ "github.com/cessda/runbook/steps/notify"
	_ "github.com/cessda/runbook/steps/shell"
	_ "github.com/cessda/runbook/steps/sleep"
	_ "github.com/cessda/runbook/steps/window"
	_ "github.com/cessda/runbook/steps/zenodo"
)
