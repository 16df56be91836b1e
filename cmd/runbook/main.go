// Command runbook validates, plans, runs and resumes release playbooks.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/cessda/runbook/engine"
	_ "github.com/cessda/runbook/steps/all"
)

// Exit codes, documented in the README.
const (
	exitOK          = 0
	exitFailed      = 1 // the run failed or was rolled back; a plan had errors
	exitInvalid     = 2 // bad playbook, inputs or flags
	exitWaiting     = 3 // the run waits for a person
	exitLocked      = 4 // another run of the product holds the release lock
	exitRejected    = 5 // a person refused the release (or asked for its rollback at a gate)
	exitInterrupted = 130
)

var version = "dev"

// exitError carries an exit code up to main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func exitWith(code int, err error) error { return &exitError{code: code, err: err} }

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, interrupt := engine.Interrupt(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		fmt.Fprintln(stderr, "\nrunbook: interrupted; stopping the running step and writing the report (again to force)")
		interrupt()
		<-sigs
		os.Exit(exitInterrupted)
	}()
	defer signal.Stop(sigs)

	if len(args) > 0 && (args[0] == "validate" || args[0] == "plan" || args[0] == "schema" || args[0] == "steps") {
		// Short commands: collect garbage only near a memory ceiling (half of
		// `validate`'s time went to the collector).
		debug.SetGCPercent(-1)
		debug.SetMemoryLimit(512 << 20)
	}
	root := newRoot(stdin, stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, ee.err)
		}
		return ee.code
	}
	var inv *engine.InvalidError
	if errors.As(err, &inv) {
		fmt.Fprintln(stderr, inv.Error())
		return exitInvalid
	}
	fmt.Fprintln(stderr, "runbook:", err)
	return exitFailed
}

type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	quiet          bool
	stateDir       string
	state          string // "" or file: stateDir; kubernetes://CONTEXT/NAMESPACE
}

func newRoot(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "runbook",
		Short: "Validate, preview and run release playbooks",
		Long: `runbook turns a written release procedure into a playbook of typed steps, and
validates, previews (plan), runs, resumes and reports it.

Exit codes: 0 done; 1 run failed, stopped or rolled back; 2 invalid playbook, inputs or
flags, or preflight problems; 3 waiting for a person; 4 release lock held by another run;
5 refused by a person; 130 interrupted.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().BoolVarP(&a.quiet, "quiet", "q", false, "print only errors and the final status")
	root.PersistentFlags().BoolVar(&takeOver, "take-over", false, "take the product's release lock from an unfinished run")
	root.PersistentFlags().StringVar(&a.stateDir, "state-dir", envOr("RUNBOOK_STATE_DIR", ".runbook"), "where runs keep their journal and report ($RUNBOOK_STATE_DIR)")
	root.PersistentFlags().StringVar(&a.state, "state", os.Getenv("RUNBOOK_STATE"), "keep runs and the release lock in a Kubernetes namespace shared by every machine: kubernetes://CONTEXT/NAMESPACE ($RUNBOOK_STATE; default: --state-dir)")
	root.AddCommand(a.validateCmd(), a.planCmd(), a.preflightCmd(), a.runCmd(), a.resumeCmd(), a.stepsCmd(), a.schemaCmd(), a.versionCmd(), a.reportCmd(), a.commentCmd(), a.sandboxCmd(), a.runsCmd())
	usageErrors(root)
	return root
}

// usageErrors makes every mistake in a command line (an unknown command or flag, a wrong
// number of arguments) an error with exit code 2, by its kind, not by its wording.
func usageErrors(root *cobra.Command) {
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return exitWith(exitInvalid, err) })
	root.SuggestionsMinimumDistance = 2
	// The root runs, so that an unknown command reaches it as an argument.
	root.Args = cobra.ArbitraryArgs
	root.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		hint := ""
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			hint = fmt.Sprintf(" (did you mean %q?)", s[0])
		}
		return exitWith(exitInvalid, fmt.Errorf("unknown command %q%s; run `runbook --help` for the commands", args[0], hint))
	}
	var wrap func(c *cobra.Command)
	wrap = func(c *cobra.Command) {
		if check := c.Args; check != nil && c != root {
			c.Args = func(cmd *cobra.Command, args []string) error {
				if err := check(cmd, args); err != nil {
					return exitWith(exitInvalid, fmt.Errorf("%s: %v; usage: %s", cmd.CommandPath(), err, cmd.UseLine()))
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			wrap(sub)
		}
	}
	wrap(root)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintf(a.stdout, "runbook %s\n", version)
			return nil
		},
	}
}

func (a *app) validateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check playbooks: every problem at once, as file:line:col: message",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var all []string
			for _, f := range args {
				// A fragment or a site file is checked alone; notes say what only a
				// playbook including it can check.
				c, err := engine.ValidateFile(f)
				if err != nil {
					var inv *engine.InvalidError
					if !errors.As(err, &inv) {
						err = fmt.Errorf("%s: %v", f, err)
					}
					all = append(all, err.Error())
					continue
				}
				if !a.quiet {
					if c.Kind == "playbook" {
						fmt.Fprintf(a.stdout, "%s: valid\n", f)
					} else {
						fmt.Fprintf(a.stdout, "%s: valid (%s, checked alone)\n", f, c.Kind)
					}
					for _, n := range c.Notes {
						fmt.Fprintf(a.stdout, "%s: note: %s\n", n.Pos, n.Msg)
					}
				}
			}
			if len(all) > 0 {
				return exitWith(exitInvalid, errors.New(strings.Join(all, "\n")))
			}
			return nil
		},
	}
}

// loadPlaybook loads and validates a playbook; its errors are *engine.InvalidError or
// say which file could not be read.
func loadPlaybook(path string) (*engine.Playbook, error) {
	pb, err := engine.LoadFile(path)
	if err != nil {
		var inv *engine.InvalidError
		if errors.As(err, &inv) {
			return nil, err
		}
		return nil, exitWith(exitInvalid, fmt.Errorf("%s: %v", path, err))
	}
	return pb, nil
}

// parseSets turns --set k=v flags into a map.
func parseSets(sets []string) (map[string]string, error) {
	out := map[string]string{}
	for _, s := range sets {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return nil, exitWith(exitInvalid, fmt.Errorf("--set %q: write --set name=value", s))
		}
		out[k] = v
	}
	return out, nil
}

func loadWithInputs(path string, sets []string) (*engine.Playbook, map[string]any, error) {
	pb, err := loadPlaybook(path)
	if err != nil {
		return nil, nil, err
	}
	set, err := parseSets(sets)
	if err != nil {
		return nil, nil, err
	}
	in, err := pb.ResolveInputs(set)
	if err != nil {
		return nil, nil, err
	}
	return pb, in, nil
}
