package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cessda/runbook/engine"
)

func (a *app) preflightCmd() *cobra.Command {
	var sets []string
	var sandbox string
	var rehearse bool
	cmd := &cobra.Command{
		Use:   "preflight FILE",
		Short: "Check, read-only, that every connection, permission, job and parameter a run needs is in place",
		Long: `Check, before a run and changing nothing, that every step that may run can do its work:
each connection's secret is set and accepted; the GitHub token may do what the steps do on
each repository; each Kubernetes context answers and allows the verbs its steps use; each
Jenkins job exists and takes the parameters the playbook passes; the Zenodo token is valid;
the mail server accepts the login; the chat webhook is configured (nothing is posted).
Every problem is listed at once, with the steps it concerns. ` + "`runbook run`" + ` does this first.

Exit codes: 0 no problems; 2 problems found (or an invalid playbook).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pb, in, err := loadWithInputs(args[0], sets)
			if err != nil {
				return err
			}
			opts := engine.Options{Inputs: in, Mode: "run"}
			if rehearse && sandbox != "" {
				return exitWith(exitInvalid, errors.New("--rehearse and --sandbox exclude each other"))
			}
			if rehearse {
				var rf rehearseFlags
				rf.on = true
				cleanup, err := rf.setup(cmd.Context(), pb, &opts, a.stderr)
				if err != nil {
					return err
				}
				defer cleanup()
			}
			if sandbox != "" {
				if err := useSandbox(&opts, sandbox); err != nil {
					return exitWith(exitInvalid, err)
				}
			}
			return a.preflight(cmd.Context(), pb, &opts)
		},
	}
	cmd.Flags().StringArrayVar(&sets, "set", nil, "set an input: --set version=1.2.3 (repeatable)")
	cmd.Flags().StringVar(&sandbox, "sandbox", "", "check against the simulators of a `runbook sandbox` (its connections.json)")
	cmd.Flags().BoolVar(&rehearse, "rehearse", false, "check against the built-in simulators")
	return cmd
}

// preflight runs the read-only checks for a run with these options: nothing is changed,
// no lock taken and no run recorded when it finds a problem.
func (a *app) preflight(ctx context.Context, pb *engine.Playbook, o *engine.Options) error {
	rep, err := engine.Preflight(ctx, pb, o.Inputs, engine.PlanOptions{Mode: o.Mode, Clock: o.Clock, Connect: o.Connect})
	if err != nil {
		return err
	}
	o.Identities = rep.Identities
	if err := rep.Err(); err != nil {
		return exitWith(exitInvalid, err)
	}
	if !a.quiet {
		fmt.Fprintf(a.stdout, "preflight: %d steps checked, no problems", rep.Checked)
		if len(rep.Identities) > 0 {
			names := make([]string, 0, len(rep.Identities))
			for c, who := range rep.Identities {
				names = append(names, c+" as "+who)
			}
			sort.Strings(names)
			fmt.Fprintf(a.stdout, "; acting on %s", strings.Join(names, ", "))
		}
		fmt.Fprintln(a.stdout)
	}
	return nil
}
