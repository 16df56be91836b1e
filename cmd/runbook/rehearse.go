package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/steps/rehearsal"
)

// rehearseFlags are `run --rehearse` and the simulated people's answers.
type rehearseFlags struct {
	on      bool
	answers rehearsal.Answers
	sandbox *rehearsal.Sandbox
}

func (r *rehearseFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&r.on, "rehearse", false, "run against the built-in simulators (GitHub, Kubernetes, Jenkins, Zenodo, SMTP, chat), with simulated people")
	cmd.Flags().StringVar(&r.answers.Refuse, "refuse", "", "rehearsal: the service owner refuses the release with this reason")
	cmd.Flags().StringVar(&r.answers.Revert, "revert", "", "rehearsal: after deploying, the service owner asks for a revert with this reason")
	cmd.Flags().BoolVar(&r.answers.Broken, "broken-production", false, "rehearsal: the deploy job rolls out a build that never becomes ready")
}

// setup starts the simulated world and points the run at it.
func (r *rehearseFlags) setup(ctx context.Context, pb *engine.Playbook, o *engine.Options, w io.Writer) (func(), error) {
	sb, err := rehearsal.New(ctx, pb, o.Inputs, r.answers)
	if err != nil {
		return nil, err
	}
	r.sandbox = sb
	o.Mode, o.Clock, o.Connect = "rehearsal", sb.Clock, sb.Connect
	return sb.Close, nil
}

// summary prints what the rehearsal cost each simulated service.
func (r *rehearseFlags) summary(w io.Writer) {
	if r.sandbox == nil {
		return
	}
	calls := r.sandbox.Calls()
	keys := make([]string, 0, len(calls))
	for k := range calls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, calls[k])
	}
	fmt.Fprintf(w, "rehearsal: simulated service calls: %s\n", strings.Join(parts, ", "))
}
