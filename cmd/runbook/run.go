package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/steps/rehearsal"
	"github.com/cessda/runbook/steps/window"
)

func (a *app) planCmd() *cobra.Command {
	var sets []string
	var format, base string
	var offline bool
	cmd := &cobra.Command{
		Use:   "plan FILE",
		Short: "Preview what a run would do, changing nothing (text, markdown for pull requests, or json)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "text" && format != "markdown" && format != "json" {
				return exitWith(exitInvalid, fmt.Errorf("--format %q: use text, markdown or json", format))
			}
			pb, in, err := loadWithInputs(args[0], sets)
			if err != nil {
				return err
			}
			doc, err := engine.BuildPlan(cmd.Context(), pb, in, engine.PlanOptions{Offline: offline})
			if err != nil {
				return err
			}
			if base != "" {
				return a.planDiff(cmd.Context(), args[0], base, sets, doc, format, offline)
			}
			switch format {
			case "json":
				err = doc.WriteJSON(a.stdout)
			case "markdown":
				err = doc.WriteMarkdown(a.stdout)
			default:
				err = doc.WriteText(a.stdout)
			}
			if err != nil {
				return err
			}
			if errs := doc.Errors(); len(errs) > 0 {
				return exitWith(exitFailed, fmt.Errorf("plan: %d step(s) could not be planned (first: %s: %s)", len(errs), errs[0].ID, errs[0].Error))
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&sets, "set", nil, "set an input: --set version=1.2.3 (repeatable)")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text, markdown or json")
	cmd.Flags().StringVar(&base, "base", "", "compare with the playbook as it is at this git ref and show what the change does")
	cmd.Flags().BoolVar(&offline, "offline", false, "do not ask services anything: describe each step from its type and rendered parameters")
	return cmd
}

func (a *app) runCmd() *cobra.Command {
	var sets []string
	var reportPath string
	var rehearse rehearseFlags
	var nonInteractive, noPreflight, outside bool
	var sandbox, reason string
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Run a playbook (or rehearse it against the built-in simulators with --rehearse)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pb, in, err := loadWithInputs(args[0], sets)
			if err != nil {
				return err
			}
			opts := engine.Options{Inputs: in, Mode: "run", Command: "runbook " + strings.Join(os.Args[1:], " ")}
			if err := outsideWindow(pb, &opts, outside, reason); err != nil {
				return err
			}
			if rehearse.on {
				cleanup, err := rehearse.setup(cmd.Context(), pb, &opts, a.stderr)
				if err != nil {
					return err
				}
				defer cleanup()
			}
			if sandbox != "" {
				if rehearse.on {
					return exitWith(exitInvalid, errors.New("--rehearse and --sandbox exclude each other"))
				}
				if err := useSandbox(&opts, sandbox); err != nil {
					return exitWith(exitInvalid, err)
				}
			}
			// Before the lock and before anything is recorded: a run that cannot do its
			// work does not start.
			if !noPreflight {
				if err := a.preflight(cmd.Context(), pb, &opts); err != nil {
					return err
				}
			}
			opts.RunID = engine.NewRunID(pb.Product, time.Now())
			state, err := a.backend()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithCancelCause(cmd.Context())
			defer cancel(nil)
			ref := state.newRun(opts.RunID)
			store, release, err := a.hold(ctx, cancel, state, ref, reportPath, pb.Product, opts.RunID, rehearse.on || sandbox != "")
			if err != nil {
				return err
			}
			defer release()
			opts.Store = store
			err = a.execute(ctx, pb, opts, state.where(ref), reportPath, nonInteractive, func(ctx context.Context, o engine.Options) (*engine.Report, error) {
				return engine.Execute(ctx, pb, o)
			})
			if !a.quiet {
				rehearse.summary(a.stdout)
			}
			return err
		},
	}
	cmd.Flags().StringArrayVar(&sets, "set", nil, "set an input: --set version=1.2.3 (repeatable)")
	cmd.Flags().StringVar(&reportPath, "report", "", "also write the JSON report to this path")
	cmd.Flags().BoolVar(&nonInteractive, "non-interactive", false, "never prompt, never poll: a gate nobody has answered yet ends the run in status waiting (exit 3)")
	cmd.Flags().StringVar(&sandbox, "sandbox", "", "talk to the simulators of a `runbook sandbox` (its connections.json) instead of the real services")
	cmd.Flags().BoolVar(&outside, "outside-window", false, "release outside the playbook's release window (needs --reason; recorded with who and why)")
	cmd.Flags().StringVar(&reason, "reason", "", "why (for --outside-window)")
	cmd.Flags().BoolVar(&noPreflight, "no-preflight", false, "start without the preflight checks (when a check cannot be made from this machine; the command line is in the report)")
	rehearse.register(cmd)
	return cmd
}

func (a *app) resumeCmd() *cobra.Command {
	var f resumeFlags
	var playbook, reportPath string
	var nonInteractive bool
	var sandbox, issue string
	cmd := &cobra.Command{
		Use:   "resume RUN | --issue OWNER/REPO#N",
		Short: "Continue a run that stopped (by run id, run directory or report path)",
		Long: `Continue a run that stopped for any reason: a crash, an interrupt, a failure or a gate
waiting for a person. Steps that succeeded are not run again; a step that was interrupted runs
again and finds what it already made. Choices are recorded in the report with who made them:

  --retry STEP              run a failed step again
  --skip STEP --reason WHY  mark a step skipped and go on
  --confirm STEP            answer yes to a waiting gate (a manual step)
  --refuse STEP --reason    answer no: the run ends rejected
  --rollback --reason WHY   roll the release back now (a stopped, failed or waiting run):
                            the step it stopped or waits at is answered with the request,
                            and the playbook's on_failure steps revert production

--issue OWNER/REPO#N names the run by its release issue (or one of its subtask issues),
as a CI job triggered by a comment on that issue knows it: the newest unfinished run of
the state backend whose release issue it is.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == (issue != "") {
				return exitWith(exitInvalid, fmt.Errorf("%s: name the run by its id or by --issue, not both; usage: %s", cmd.CommandPath(), cmd.UseLine()))
			}
			state, err := a.backend()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithCancelCause(cmd.Context())
			defer cancel(nil)
			ref, prior, err := findRun(ctx, state, args, issue, sandbox)
			if err != nil {
				return err
			}
			if playbook == "" {
				playbook = prior.Playbook
			}
			pb, err := loadPlaybook(playbook)
			if err != nil {
				return err
			}
			if err := f.check(); err != nil {
				return err
			}
			opts := f.options()
			if ended, err := a.alreadyEnded(prior, f.rollback); ended || err != nil {
				return err
			}
			if f.rollback {
				opts.Rollback = f.reason
			}
			if err := outsideWindow(pb, &opts, f.outside, f.reason); err != nil {
				return err
			}
			if err := f.chosenFor(prior); err != nil {
				return err
			}
			if sandbox != "" {
				if err := useSandbox(&opts, sandbox); err != nil {
					return exitWith(exitInvalid, err)
				}
			}
			store, release, err := a.hold(ctx, cancel, state, ref, reportPath, pb.Product, prior.RunID, sandbox != "")
			if err != nil {
				return err
			}
			defer release()
			opts.Store = store
			return a.execute(ctx, pb, opts, state.where(ref), reportPath, nonInteractive, func(ctx context.Context, o engine.Options) (*engine.Report, error) {
				return engine.Resume(ctx, pb, o)
			})
		},
	}
	cmd.Flags().StringArrayVar(&f.retry, "retry", nil, "run this failed step again")
	cmd.Flags().StringArrayVar(&f.skip, "skip", nil, "mark this step skipped (needs --reason)")
	cmd.Flags().StringArrayVar(&f.confirm, "confirm", nil, "answer yes to this waiting gate")
	cmd.Flags().StringArrayVar(&f.refuse, "refuse", nil, "answer no to this waiting gate (needs --reason)")
	cmd.Flags().StringVar(&f.reason, "reason", "", "why (for --skip, --refuse, --rollback and --outside-window)")
	cmd.Flags().BoolVar(&f.rollback, "rollback", false, "roll the release back now (needs --reason)")
	cmd.Flags().BoolVar(&f.outside, "outside-window", false, "go on outside the playbook's release window (needs --reason)")
	cmd.Flags().StringVar(&playbook, "playbook", "", "the playbook file, when it is no longer where the run found it")
	cmd.Flags().StringVar(&reportPath, "report", "", "also write the JSON report to this path")
	cmd.Flags().BoolVar(&nonInteractive, "non-interactive", false, "never prompt, never poll: a gate nobody has answered yet ends the run in status waiting (exit 3)")
	cmd.Flags().BoolVar(&f.force, "force", false, "resume a failed run without a choice: run the failed step again")
	cmd.Flags().StringVar(&sandbox, "sandbox", "", "the sandbox's connections.json, for a run that ran against a sandbox")
	cmd.Flags().StringVar(&issue, "issue", "", "resume the newest unfinished run whose release issue (or subtask issue) is OWNER/REPO#N, instead of naming RUN")
	return cmd
}

// resumeFlags are the choices resume is told to make at the steps the run stopped at.
type resumeFlags struct {
	retry, skip, confirm, refuse []string
	reason                       string
	rollback, force, outside     bool
}

// choices counts the steps named by --retry, --skip, --confirm and --refuse.
func (f *resumeFlags) choices() int {
	return len(f.retry) + len(f.skip) + len(f.confirm) + len(f.refuse)
}

// check refuses a choice without the reason it needs, and a rollback with other choices.
func (f *resumeFlags) check() error {
	if (len(f.skip) > 0 || len(f.refuse) > 0 || f.rollback) && f.reason == "" {
		return exitWith(exitInvalid, errors.New("--skip, --refuse and --rollback need --reason \"why\""))
	}
	if f.rollback && f.choices() > 0 {
		return exitWith(exitInvalid, errors.New("--rollback goes alone: it ends the release; drop --retry, --skip, --confirm and --refuse"))
	}
	return nil
}

// options are the engine's options for the choices: the skips with their reason, the
// gates answered yes or no by the person resuming, now.
func (f *resumeFlags) options() engine.Options {
	actor := engine.CurrentActor()
	opts := engine.Options{Command: "runbook " + strings.Join(os.Args[1:], " "), Retry: f.retry, Skip: map[string]string{}, Confirm: map[string]engine.Confirmation{}}
	for _, s := range f.skip {
		opts.Skip[s] = f.reason
	}
	now := time.Now().UTC()
	for _, s := range f.confirm {
		opts.Confirm[s] = engine.Confirmation{By: actor, At: now, Answer: "yes"}
	}
	for _, s := range f.refuse {
		opts.Confirm[s] = engine.Confirmation{By: actor, At: now, Answer: "no", Reason: f.reason}
	}
	return opts
}

// chosenFor: a run that ended failed, rolled back or rejected goes on only when told what
// to do at the step it ended at (or with --force, or to roll back).
func (f *resumeFlags) chosenFor(prior *engine.Report) error {
	switch prior.Status {
	case engine.RunFailed, engine.RunRolledBack, engine.RunRejected:
		if f.choices() == 0 && !f.force && !f.rollback {
			return exitWith(exitInvalid, fmt.Errorf("run %s ended %s at step %s (%s); say what to do: --retry %s, --skip %s --reason \"...\", or --rollback --reason \"...\"", prior.RunID, prior.Status, prior.FailedStep, prior.Reason, prior.FailedStep, prior.FailedStep))
		}
	}
	return nil
}

// findRun finds the run to resume, named by its id (or directory, or report: args[0]) or
// by its release issue, and refuses one that cannot be resumed from here.
func findRun(ctx context.Context, state stateBackend, args []string, issue, sandbox string) (ref string, prior *engine.Report, err error) {
	if issue != "" {
		runID, err := runForIssue(ctx, state, issue)
		if err != nil {
			return "", nil, exitWith(exitInvalid, err)
		}
		args = []string{runID}
	}
	ref, prior, err = state.find(ctx, args[0])
	if err != nil {
		return "", nil, exitWith(exitInvalid, err)
	}
	if prior.Mode == "sandbox" && sandbox == "" {
		return "", nil, exitWith(exitInvalid, fmt.Errorf("run %s ran against a sandbox: resume it with --sandbox CONNECTIONS_FILE", prior.RunID))
	}
	if prior.Mode == "rehearsal" {
		return "", nil, exitWith(exitInvalid, fmt.Errorf("run %s was a rehearsal against in-process simulators that ended with it; start a new rehearsal, or rehearse against `runbook sandbox` to practise resuming", prior.RunID))
	}
	return ref, prior, nil
}

// alreadyEnded: a run that succeeded has nothing to resume (said, not an error) and
// cannot be rolled back, nor can one that was rolled back already.
func (a *app) alreadyEnded(prior *engine.Report, rollback bool) (bool, error) {
	switch prior.Status {
	case engine.RunSucceeded:
		if rollback {
			return true, exitWith(exitInvalid, fmt.Errorf("run %s succeeded: the release is done, and a rollback now is a new release of the previous version", prior.RunID))
		}
		fmt.Fprintf(a.stdout, "run %s already succeeded; nothing to resume\n", prior.RunID)
		return true, nil
	case engine.RunRolledBack:
		if rollback {
			return true, exitWith(exitInvalid, fmt.Errorf("run %s was already rolled back", prior.RunID))
		}
	}
	return false, nil
}

// outsideWindow answers every release-window step of the playbook with yes, recorded with
// who and why: the release goes on outside its window because a person said so.
func outsideWindow(pb *engine.Playbook, o *engine.Options, outside bool, reason string) error {
	if !outside {
		return nil
	}
	if reason == "" {
		return exitWith(exitInvalid, errors.New("--outside-window needs --reason \"why\""))
	}
	if o.Confirm == nil {
		o.Confirm = map[string]engine.Confirmation{}
	}
	n := 0
	for _, st := range pb.AllSteps() {
		if st.Type == window.Type {
			o.Confirm[st.ID] = engine.Confirmation{By: engine.CurrentActor(), At: time.Now().UTC(), Answer: "yes", Reason: "outside the release window: " + reason}
			n++
		}
	}
	if n == 0 {
		return exitWith(exitInvalid, fmt.Errorf("--outside-window: %s declares no release window (no %s step)", pb.File, window.Type))
	}
	return nil
}

// hold opens the run's store and takes the product's release lock; release gives both
// back. Rehearsals and sandbox runs take a lock of their own (rehearsal-PRODUCT): they
// never hold up a real release of the product.
func (a *app) hold(ctx context.Context, cancel context.CancelCauseFunc, state stateBackend, ref, reportPath, product, runID string, rehearsal bool) (engine.Store, func(), error) {
	store, err := state.open(ctx, ref, reportPath)
	if err != nil {
		return nil, nil, err
	}
	lockName := product
	if rehearsal {
		lockName = "rehearsal-" + product
	}
	unlock, err := state.lock(ctx, lockName, runID, a.lockLost(cancel))
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	return store, func() {
		unlock()
		store.Close()
	}, nil
}

// lockLost stops the run when another machine took its release lock (this process
// was paused past the lease, say): the run ends cancelled and can be resumed.
func (a *app) lockLost(cancel context.CancelCauseFunc) func(error) {
	return func(err error) {
		fmt.Fprintf(a.stderr, "runbook: %v; stopping the run\n", err)
		cancel(err)
	}
}

// useSandbox points a run at a sandbox process: its connections and its clock.
func useSandbox(o *engine.Options, file string) error {
	connect, clock, err := rehearsal.LoadConnections(file)
	if err != nil {
		return err
	}
	o.Mode, o.Connect, o.Clock = "sandbox", connect, clock
	return nil
}

// findRunDir accepts a run id, a run directory or a report path.
func findRunDir(stateDir, arg string) (string, error) {
	if st, err := os.Stat(arg); err == nil {
		if st.IsDir() {
			return arg, nil
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(arg), "journal.jsonl")); err == nil {
			return filepath.Dir(arg), nil
		}
		if arg, err = runIDOf(arg); err != nil {
			return "", err
		}
	}
	dir := filepath.Join(stateDir, "runs", arg)
	if _, err := os.Stat(filepath.Join(dir, "journal.jsonl")); err != nil {
		if _, derr := os.Stat(dir); derr == nil {
			return "", fmt.Errorf("run %s was stopped before it recorded anything: it never started, and nothing was changed; start a new run", arg)
		}
		return "", fmt.Errorf("no run %q in %s (give a run id, a run directory or a report path; --state-dir says where runs are kept)", arg, stateDir)
	}
	return dir, nil
}

// execute runs (or resumes) with progress display and turns the outcome into an exit code.
func (a *app) execute(ctx context.Context, pb *engine.Playbook, opts engine.Options, where, reportPath string, nonInteractive bool,
	do func(context.Context, engine.Options) (*engine.Report, error)) error {
	tty := isTerminal(a.stdout)
	prog := newProgress(a.stdout, pb, tty && !a.quiet, a.quiet)
	opts.Observer = prog.event
	installCrashPoints(&opts)
	// A rehearsal's simulated people answer at once: its gates keep polling for them.
	opts.GatesEndRun = nonInteractive && opts.Mode != "rehearsal"
	if !nonInteractive && isTerminal(a.stdin) && tty && opts.Mode == "run" {
		tp := &terminalPrompter{in: a.stdin, out: a.stdout, pause: prog.pause, resume: prog.resume}
		opts.Prompter, opts.Guide = tp, tp.guide
	}
	rep, err := do(ctx, opts)
	prog.finish()
	var je *engine.JournalError
	if errors.As(err, &je) && rep != nil {
		return exitWith(exitFailed, fmt.Errorf("run %s: %v\n  continue with: runbook resume %s", rep.RunID, err, rep.RunID))
	}
	if err != nil {
		return err
	}
	if reportPath != "" {
		where = reportPath
	}
	took := (time.Duration(rep.DurationMS) * time.Millisecond).String()
	if opts.Mode != "run" {
		took += " of simulated time"
	}
	summary := fmt.Sprintf("run %s %s in %s; report: %s", rep.RunID, rep.Status, took, where)
	if rep.Reason != "" {
		summary += fmt.Sprintf("\n  %s: %s", rep.FailedStep, rep.Reason)
	}
	if len(rep.LeftBehind) > 0 {
		summary += "\n  left behind:"
		for _, l := range rep.LeftBehind {
			summary += fmt.Sprintf("\n  - %s: %s", l.Step, l.What)
		}
	}
	switch rep.Status {
	case engine.RunSucceeded:
		fmt.Fprintln(a.stdout, summary)
		return nil
	case engine.RunWaiting:
		return exitWith(exitWaiting, fmt.Errorf("%s\n  continue with: runbook resume %s", summary, rep.RunID))
	case engine.RunRejected:
		return exitWith(exitRejected, fmt.Errorf("%s\n  a person refused the release; nothing more runs in this run", summary))
	case engine.RunCancelled:
		return exitWith(exitInterrupted, fmt.Errorf("%s\n  continue with: runbook resume %s", summary, rep.RunID))
	}
	if rep.Status == engine.RunRolledBack {
		return exitWith(exitFailed, fmt.Errorf("%s\n  the release was reverted; after fixing the cause, start a new run (of the next version, if this one was tagged)", summary))
	}
	return exitWith(exitFailed, fmt.Errorf("%s\n  after fixing the cause: runbook resume %s --retry %s\n  or roll it back: runbook resume %s --rollback --reason \"...\"", summary, rep.RunID, rep.FailedStep, rep.RunID))
}

func isTerminal(x any) bool {
	f, ok := x.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
