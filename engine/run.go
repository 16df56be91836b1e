package engine

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"
)

// Options configure a run.
type Options struct {
	// Inputs are the resolved inputs (see Playbook.ResolveInputs).
	Inputs map[string]any
	// Mode is what the run talks to: ModeRun when empty.
	Mode Mode
	// Actor is who runs the release (a login); recorded in the report.
	Actor string
	// Identities are who the connections' credentials act as (from the preflight):
	// connection name -> login. Recorded in the report beside the actor.
	Identities map[string]string
	// RunID names the run; NewRunID when empty.
	RunID string
	// Command is the command line, for the report's session record.
	Command string
	Clock   Clock
	// Store keeps the run durable; a MemStore when nil.
	Store Store
	// Prompter asks a person on a terminal; nil when not interactive.
	Prompter Prompter
	// GatesEndRun makes gates that would wait for a person (an approval, a checklist item)
	// end the run in status waiting at once, to be resumed when the person answers: how a
	// run started from CI (--non-interactive) waits days without holding a job.
	GatesEndRun bool
	// Observer sees every event (already redacted), for progress displays.
	Observer func(*Event)
	// Connect builds a connection from its declaration; rehearsals point them at
	// simulators. Nil builds the real connection.
	Connect func(*ConnectionDecl) (*Connection, error)
	// ReportInterval is the longest the report document lags behind the journal while
	// steps run (the journal itself is always current). 0 means 200ms.
	ReportInterval time.Duration
	// Redactor collects secrets; a fresh one when nil.
	Redactor *Redactor
	// Seed makes retry jitter reproducible (0: random).
	Seed uint64
	// Guide asks the operator what to do when a step fails (on a terminal): retry it,
	// skip it with a reason, roll back (run on_failure), or stop and keep the run
	// resumable. Nil: the run goes on to on_failure, as without a terminal.
	Guide func(ctx context.Context, q GuideQuestion) (GuideChoice, error)
	// Rollback, when set, is why a person asks to roll the release back (`resume
	// --rollback --reason R`): the resumed run answers the step it stopped or waits at
	// with the request and runs on_failure with failure.rollback true.
	Rollback string
	// Retry, Skip and Confirm carry an operator's choices into a resumed run.
	Retry   []string
	Skip    map[string]string // step id -> reason
	Confirm map[string]Confirmation
}

// Mode is what a run talks to. The report records it as a string.
type Mode string

// The modes.
const (
	// ModeRun is a release: real services, the real clock.
	ModeRun Mode = "run"
	// ModeRehearsal runs against the in-process simulators, which end with the run.
	ModeRehearsal Mode = "rehearsal"
	// ModeSandbox runs against a sandbox process's simulators (runbook sandbox), which
	// outlive a run, so it can be resumed there.
	ModeSandbox Mode = "sandbox"
	// ModePlan renders a plan: nothing runs.
	ModePlan Mode = "plan"
)

// simulated reports whether the mode's services are simulators.
func (m Mode) simulated() bool { return m == ModeRehearsal || m == ModeSandbox }

// GuideChoice is an operator's answer to a failed step.
type GuideChoice struct {
	Action string // "retry", "skip", "rollback" or "stop"
	Reason string // why, for skip (required) and rollback
}

// GuideQuestion is what the operator is asked about: the failed step and what the
// playbook says its failure means.
type GuideQuestion struct {
	Step, Name, Type, Error string
	Policy                  ErrorPolicy
	Section                 Section
}

// Run is one execution of a playbook.
type Run struct {
	pb     *Playbook
	opts   Options
	report *Report
	store  Store
	writer *reportWriter
	red    *Redactor
	clock  Clock
	rng    *mrand.Rand
	rngMu  sync.Mutex

	mu       sync.Mutex
	base     map[string]any
	stepVals map[string]any
	conns    map[string]*Connection
	session  int
	planHash string
	// prior is how the run's last session ended (a resumed run).
	prior ending
	// reopen are the on_failure and finally steps of an ending that undid nothing: a
	// resumed run may end again, and they run again then (see Resume).
	reopen []string
	// journalErr is the first failure to write the journal: from then on nothing runs.
	journalErr *JournalError
	// writes are the steps that started an attempt in this process: true when one of
	// them may write outside (see durable).
	writes map[string]bool
}

// JournalError is returned by Execute and Resume when the run's journal could not be
// written (a full disk, a failing state backend): the run stopped at once, before
// anything else happened, and can be resumed once the journal can be written again;
// what was not recorded is done again, idempotently.
type JournalError struct {
	Err  error
	Step string // the step whose event could not be written, if any
}

func (e *JournalError) Error() string {
	where := ""
	if e.Step != "" {
		where = " at step " + e.Step
	}
	return fmt.Sprintf("the run's journal could not be written%s: %v; the run stopped there, with nothing more done; fix the cause (disk space, the state backend), then resume it", where, e.Err)
}

func (e *JournalError) Unwrap() error { return e.Err }

// journalFailed is the journal's first write failure, or nil.
func (r *Run) journalFailed() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.journalErr == nil {
		return nil
	}
	return r.journalErr
}

// NewRunID returns a new run id: the time and a random suffix, sortable and unique.
func NewRunID(product string, t time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%s-%s", product, t.UTC().Format("20060102-150405"), hex.EncodeToString(b[:]))
}

func (o *Options) defaults(pb *Playbook) {
	if o.Clock == nil {
		o.Clock = RealClock{}
	}
	if o.Store == nil {
		o.Store = &MemStore{}
	}
	if o.Mode == "" {
		o.Mode = ModeRun
	}
	if o.RunID == "" {
		o.RunID = NewRunID(pb.Product, o.Clock.Now())
	}
	if o.Redactor == nil {
		o.Redactor = &Redactor{}
	}
	if o.ReportInterval == 0 {
		o.ReportInterval = 200 * time.Millisecond
	}
	if o.Actor == "" {
		o.Actor = CurrentActor()
	}
}

// CurrentActor is who runs runbook: RUNBOOK_ACTOR, GITHUB_ACTOR, or the OS user.
func CurrentActor() string {
	for _, k := range []string{"RUNBOOK_ACTOR", "GITHUB_ACTOR", "USER", "LOGNAME"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return "unknown"
}

// Execute runs a playbook from the start.
func Execute(ctx context.Context, pb *Playbook, opts Options) (*Report, error) {
	opts.defaults(pb)
	r := newRun(pb, opts)
	header := newReport(pb)
	header.RunID, header.Playbook, header.PlaybookSHA256 = opts.RunID, pb.File, sha256Hex(pb.Source)
	header.Product, header.Title, header.Mode, header.Actor = pb.Product, pb.Title, string(opts.Mode), opts.Actor
	header.Identities, header.People = opts.Identities, pb.People
	header.Inputs = r.red.Value(opts.Inputs).(map[string]any)
	header.PlanHash = r.planHash
	if err := r.emit(&Event{Kind: EventRun, Header: header}, true); err != nil {
		return nil, err
	}
	return r.execute(ctx)
}

// Resume continues a run from its journal: steps that succeeded (or were skipped) are
// not run again; a step that was interrupted runs again, and finds what it already made.
func Resume(ctx context.Context, pb *Playbook, opts Options) (*Report, error) {
	if opts.Store == nil {
		return nil, errors.New("resume needs the run's store")
	}
	evs, err := opts.Store.Events()
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 || evs[0].Kind != EventRun {
		return nil, errors.New("the run's journal is empty or does not start with the run's header")
	}
	h := evs[0].Header
	if sum := sha256Hex(pb.Source); h.PlaybookSHA256 != "" && sum != h.PlaybookSHA256 {
		return nil, fmt.Errorf("the playbook %s changed since run %s started (sha256 %s, now %s); resume with the playbook as it was, or start a new run", pb.File, h.RunID, h.PlaybookSHA256[:12], sum[:12])
	}
	opts.RunID, opts.Inputs, opts.Mode = h.RunID, h.Inputs, Mode(h.Mode)
	opts.defaults(pb)
	r := newRun(pb, opts)
	for _, ev := range evs {
		r.report.apply(ev)
		if ev.Kind == EventSession {
			r.session = ev.Session.N
		}
	}
	r.report.index = map[string]*StepReport{}
	r.report.reindex()
	r.prior = ending{status: r.report.Status, reason: r.report.Reason, step: r.report.FailedStep}
	r.reopen = reopenable(pb, r.report)
	// Steps already done feed expressions as they did before.
	for _, sr := range r.report.Steps {
		if sr.Status.Done() {
			r.setStepVal(pb.Step(sr.ID), sr)
		}
	}
	return r.execute(ctx)
}

// reopenable lists the on_failure and finally steps that ran for an ending that changed
// nothing in production (a stop: no step marked rollback ran). A resumed run opens them
// again, so that when it ends again they record that ending, not the old one. After a
// revert ran, nothing is reopened: the revert is not done twice.
func reopenable(pb *Playbook, rep *Report) []string {
	var ids []string
	for _, st := range append(append([]*StepDecl{}, pb.OnFailure...), pb.Finally...) {
		sr := rep.Step(st.ID)
		if sr == nil {
			continue
		}
		if st.Rollback && sr.Status != StepPending && sr.Status != StepSkipped {
			return nil
		}
		if sr.Status != StepPending {
			ids = append(ids, st.ID)
		}
	}
	return ids
}

func newRun(pb *Playbook, opts Options) *Run {
	r := &Run{pb: pb, opts: opts, store: opts.Store, red: opts.Redactor, clock: opts.Clock,
		report: newReport(pb), stepVals: map[string]any{}, conns: map[string]*Connection{}}
	seed := opts.Seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	r.rng = mrand.New(mrand.NewPCG(seed, seed>>1|1))
	// Every step is readable from the start, as pending, so a condition such as
	// steps.deploy.status == "succeeded" is simply false for a step that never ran.
	for _, st := range pb.AllSteps() {
		outs := map[string]any{}
		for _, o := range st.stepType.Outputs {
			outs[o.Name] = nil
		}
		r.stepVals[st.ID] = map[string]any{"status": string(StepPending), "error": "", "attempts": 0, "outputs": outs}
	}
	r.writer = &reportWriter{store: opts.Store, report: r.report, interval: opts.ReportInterval}
	r.planHash = PlanHash(pb, opts.Inputs)
	roles := map[string]any{}
	for k, v := range pb.Roles {
		l := make([]any, len(v))
		for i, p := range v {
			l[i] = p
		}
		roles[k] = l
	}
	r.base = map[string]any{
		"inputs":   opts.Inputs,
		"roles":    roles,
		"playbook": map[string]any{"product": pb.Product, "title": pb.Title, "file": pb.File},
		"run": map[string]any{"id": opts.RunID, "actor": opts.Actor, "mode": string(opts.Mode), "rehearsal": opts.Mode == ModeRehearsal,
			"started_at": opts.Clock.Now().UTC().Format(time.RFC3339), "plan_hash": r.planHash},
		"steps": r.stepVals,
	}
	return r
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// emit redacts an event, appends it to the journal, applies it to the report and tells
// the observer. sync makes the append durable before returning.
func (r *Run) emit(ev *Event, sync bool) error {
	if ev.Time.IsZero() {
		ev.Time = r.clock.Now().UTC()
	}
	r.redactEvent(ev)
	if err := r.journalFailed(); err != nil {
		return err
	}
	if err := r.store.Append(ev, r.durable(ev, sync)); err != nil {
		// Nothing more may happen that the journal would not know of: the run stops
		// here (see stopped), and a resumed run redoes what was not recorded.
		r.mu.Lock()
		if r.journalErr == nil {
			r.journalErr = &JournalError{Err: err, Step: ev.Step}
		}
		err := r.journalErr
		r.mu.Unlock()
		return err
	}
	r.report.apply(ev)
	if ev.Kind == EventRunEnd || ev.Kind == EventRun || ev.Kind == EventSession {
		if err := r.writer.flush(); err != nil {
			return err
		}
	} else if ev.Kind != EventLog {
		r.writer.changed()
	}
	if r.opts.Observer != nil {
		r.opts.Observer(ev)
	}
	return nil
}

// durable says whether an event must be on disk before the run goes on; asked is what
// its caller asked for. Write-ahead where it matters (README "Durability"):
//
//   - the start of an attempt that may write outside (a step type not declared
//     ReadOnly) is its intent record: it, and everything before it, is fsynced before
//     the step begins;
//   - the end of such a step, and whatever ends, stops or pauses the run (its end, a
//     wait, a person's choice, a warning), is fsynced as its caller asks;
//   - the events of work that changed nothing outside, a step skipped before it started
//     or a read-only step's attempts, records and end, ride along to the next fsync (the
//     FileStore's comes within syncDelay at the latest): a crash before it only means
//     that work is done again.
func (r *Run) durable(ev *Event, asked bool) bool {
	st := r.pb.Step(ev.Step)
	if st == nil {
		return asked
	}
	switch ev.Kind {
	case EventStart:
		if st.Foreach != nil && ev.Item == 0 {
			return asked // a foreach's start: each item's start is its own intent
		}
		writes := !st.stepType.readOnly(ev.Params)
		r.mu.Lock()
		if r.writes == nil {
			r.writes = map[string]bool{}
		}
		r.writes[st.ID] = r.writes[st.ID] || writes
		r.mu.Unlock()
		return asked || writes
	case EventEnd, EventKV:
		if ev.Kind == EventEnd && ev.Status == string(StepSkipped) {
			// Nothing ran. A person's skip is followed at once by its (fsynced) warning.
			return false
		}
		// A read-only step's end, and what it records (a wait's start), are at most a
		// read to do again.
		r.mu.Lock()
		writes, started := r.writes[st.ID]
		r.mu.Unlock()
		if started && !writes {
			return false
		}
	}
	return asked
}

func (r *Run) redactEvent(ev *Event) {
	if ev.Params != nil {
		ev.Params = redactMap(r.red, ev.Params)
	}
	if ev.Outputs != nil {
		ev.Outputs = redactMap(r.red, ev.Outputs)
	}
	ev.Error = r.red.String(ev.Error)
	ev.Reason = r.red.String(ev.Reason)
	ev.Line = r.red.String(ev.Line)
	if ev.Link != nil {
		l := *ev.Link
		l.URL, l.Title = r.red.String(l.URL), r.red.String(l.Title)
		ev.Link = &l
	}
	// A step's durable memory (sc.Record) is kept in the journal and shown in the report:
	// a secret in it is redacted like any other value. Recall reads the redacted value in
	// this run and in a resumed one alike.
	if len(ev.Value) > 0 && r.red.String(string(ev.Value)) != string(ev.Value) {
		var v any
		if json.Unmarshal(ev.Value, &v) == nil {
			if b, err := json.Marshal(r.red.Value(v)); err == nil {
				ev.Value = b
			}
		}
	}
}

// redactMap is rd.Value(m) without its copy when no string in m holds a secret (most
// events): the maps events carry are already the engine's own (shown parameters,
// normalized outputs), so nothing else holds them.
func redactMap(rd *Redactor, m map[string]any) map[string]any {
	if !holdsSecret(rd, m) {
		return m
	}
	return rd.Value(m).(map[string]any)
}

func holdsSecret(rd *Redactor, v any) bool {
	switch x := v.(type) {
	case string:
		return rd.String(x) != x
	case []any:
		for _, e := range x {
			if holdsSecret(rd, e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if holdsSecret(rd, e) {
				return true
			}
		}
	}
	return false
}

// execute runs the sections in order and ends the session.
func (r *Run) execute(ctx context.Context) (*Report, error) {
	r.session++
	host, _ := os.Hostname()
	if err := r.emit(&Event{Kind: EventSession, Session: &Session{N: r.session, Actor: r.opts.Actor, Host: host, PID: os.Getpid(),
		Command: r.red.String(r.opts.Command), StartedAt: r.clock.Now().UTC(), Status: RunRunning}}, true); err != nil {
		return nil, err
	}
	if err := r.applyChoices(); err != nil {
		return nil, err
	}
	var end ending
	if r.opts.Rollback != "" {
		end = r.rollbackRequest()
	} else {
		end = r.section(ctx, r.pb.Steps, nil)
	}
	if err := r.journalFailed(); err != nil {
		return r.stopped(err)
	}
	final := r.runFinally(ctx, r.runOnFailure(ctx, end))
	if err := r.journalFailed(); err != nil {
		return r.stopped(err)
	}
	if final.status == RunFailed || final.status == RunRejected || final.status == RunRolledBack {
		r.recordLeftBehind(final.failureVars())
	}
	if err := r.emit(&Event{Kind: EventRunEnd, Status: string(final.status), Reason: final.reason, Step: final.step}, true); err != nil {
		return nil, err
	}
	r.writer.stop()
	return r.report, r.writer.flush()
}

// applyChoices starts a session with what was decided since the last one: the
// on_failure and finally steps to run again, and the operator's --skip, --retry and
// --confirm, each recorded as a choice.
func (r *Run) applyChoices() error {
	for _, id := range r.reopen {
		r.emit(&Event{Kind: EventReopen, Step: id}, false)
		r.setStepVal(r.pb.Step(id), r.report.Step(id))
	}
	for id, reason := range r.opts.Skip {
		if r.pb.Step(id) == nil {
			return fmt.Errorf("--skip %s: the playbook has no such step", id)
		}
		r.emit(&Event{Kind: EventChoice, Choice: &Choice{Step: id, Action: "skip", By: r.opts.Actor, At: r.clock.Now().UTC(), Reason: reason}}, true)
		r.skip(r.pb.Step(id), r.opts.Actor, reason)
	}
	for _, id := range r.opts.Retry {
		if r.pb.Step(id) == nil {
			return fmt.Errorf("--retry %s: the playbook has no such step", id)
		}
		r.emit(&Event{Kind: EventChoice, Choice: &Choice{Step: id, Action: "retry", By: r.opts.Actor, At: r.clock.Now().UTC()}}, true)
	}
	for id, c := range r.opts.Confirm {
		if r.pb.Step(id) == nil {
			return fmt.Errorf("--confirm %s: the playbook has no such step", id)
		}
		action := "confirm"
		if c.Answer == "no" {
			action = "refuse"
		}
		b, _ := json.Marshal(c)
		r.emit(&Event{Kind: EventChoice, Choice: &Choice{Step: id, Action: action, By: c.By, At: c.At, Reason: c.Reason}}, true)
		r.emit(&Event{Kind: EventKV, Step: id, Key: "confirmation", Value: b}, true)
	}
	return nil
}

// runOnFailure runs on_failure after a failure or a refusal and says how the run ends
// then. failure.rollback says whether production is to be rolled back (the step's
// on_error: rollback, or a person asked); otherwise its steps only record why the
// release stopped.
func (r *Run) runOnFailure(ctx context.Context, end ending) ending {
	if end.status != RunFailed && end.status != RunRejected {
		return end
	}
	rev := r.section(ctx, r.pb.OnFailure, end.failureVars())
	rolledBack := false
	for _, s := range r.pb.OnFailure {
		if s.Rollback && r.report.Step(s.ID).Status == StepSucceeded {
			rolledBack = true
		}
	}
	switch {
	case rev.status == RunCancelled:
		end.status = RunCancelled
	case rev.status == RunFailed:
		// A revert step failed (e.g. production is not back on the previous release):
		// the run is not "rolled back", whatever else succeeded; the reason says both.
		end.status = RunFailed
		end.reason = fmt.Sprintf("%s; then the revert failed at step %s: %s", end.reason, rev.step, rev.reason)
	case rolledBack:
		end.status = RunRolledBack
	}
	return end
}

// runFinally runs the finally steps unless the run waits or was cancelled, and says how
// the run ends then: a finally step's failure fails a run that had succeeded.
func (r *Run) runFinally(ctx context.Context, end ending) ending {
	if end.status == RunWaiting || end.status == RunCancelled {
		return end
	}
	fin := r.section(ctx, r.pb.Finally, end.failureVars())
	if fin.status == RunCancelled {
		end.status = RunCancelled
	} else if fin.status != RunSucceeded && end.status == RunSucceeded {
		end.status, end.reason, end.step = fin.status, fin.reason, fin.step
	}
	return end
}

// recordLeftBehind lists, for a release that stopped without finishing, what the steps
// that ran left in the world, as each step's left_behind says (rendered now, so it can tell what
// the revert undid).
func (r *Run) recordLeftBehind(failure map[string]any) {
	for _, st := range r.pb.Steps {
		if st.LeftBehind == nil {
			continue
		}
		// A step that ran, even one that failed (a deploy job that failed half-way), may
		// have left something; its template says what, from its status and outputs.
		sr := r.report.Step(st.ID)
		ran := sr.Status == StepSucceeded || sr.Status == StepFailed
		for _, it := range sr.Items {
			ran = ran || it.Status == StepSucceeded
		}
		if !ran {
			continue
		}
		env, err := r.stepEnv(st, failure)
		if err != nil {
			continue
		}
		v, err := env.render(st.LeftBehind, "left_behind", nil)
		if err != nil {
			v = fmt.Sprintf("(left_behind of %s could not be rendered: %v)", st.ID, err)
		}
		if text := strings.TrimSpace(textOf(v)); text != "" {
			r.emit(&Event{Kind: EventLeft, Step: st.ID, Reason: text}, false)
		}
	}
}

// stopped ends a run whose journal could not be written: nothing more is attempted (not
// on_failure, not finally, not the run's end event), and the error says how to go on.
func (r *Run) stopped(err error) (*Report, error) {
	r.writer.stop()
	r.report.mu.Lock()
	r.report.Status, r.report.Reason = RunCancelled, err.Error()
	r.report.mu.Unlock()
	return r.report, err
}

// ending is how a section of steps ended: the run status it leads to, why, at which step,
// and whether production is to be rolled back (and who decided, when a person did).
type ending struct {
	status   RunStatus
	reason   string
	step     string
	rollback bool
	by       string
}

// failureVars is what on_failure, finally and left_behind read as failure.*.
func (e ending) failureVars() map[string]any {
	return map[string]any{"step": e.step, "error": e.reason, "status": string(e.status), "rollback": e.rollback, "by": e.by}
}

// rollbackRequest ends a resumed run as a person asked (`resume --rollback --reason R`):
// the step the run stopped or waits at is answered with the request, and on_failure
// rolls production back.
func (r *Run) rollbackRequest() ending {
	by, why := r.opts.Actor, r.opts.Rollback
	at := r.prior.step
	if at == "" { // the last session crashed: the first main step not done
		for _, st := range r.pb.Steps {
			if !r.report.Step(st.ID).Status.Done() {
				at = st.ID
				break
			}
		}
	}
	reason := fmt.Sprintf("rollback requested by %s: %s", by, why)
	r.emit(&Event{Kind: EventChoice, Choice: &Choice{Step: at, Action: "rollback", By: by, At: r.clock.Now().UTC(), Reason: why}}, true)
	status := RunFailed
	if sr := r.report.Step(at); sr != nil && (sr.Status == StepWaiting || sr.Status == StepRejected) {
		// The gate is answered: no.
		status = RunRejected
		if sr.Status == StepWaiting {
			r.emit(&Event{Kind: EventEnd, Step: at, Status: string(StepRejected), Error: reason}, true)
			r.setStepVal(r.pb.Step(at), sr)
		}
	}
	return ending{status: status, reason: reason, step: at, rollback: true, by: by}
}

// section runs a list of steps and says how it ended.
//
// A step's failure (or refusal) ends the section as its on_error policy says: stop (the
// run stops, resumable), rollback (the run stops and production is rolled back), or warn
// (recorded as a warning, the section goes on). On a terminal the operator is asked
// first and may retry, skip (with a reason, recorded as a warning), stop or roll back.
//
// The on_failure steps (failure != nil and steps is the playbook's on_failure) are
// independent: one that fails does not keep the others from running (the release issue
// must still say why the release stopped); the first failure is returned at the end.
func (r *Run) section(ctx context.Context, steps []*StepDecl, failure map[string]any) ending {
	independent := failure != nil && len(steps) > 0 && len(r.pb.OnFailure) > 0 && steps[0] == r.pb.OnFailure[0]
	var first ending
	for _, st := range steps {
		sr := r.report.Step(st.ID)
		if sr.Status.Done() {
			continue
		}
		if err := r.journalFailed(); err != nil {
			return ending{status: RunCancelled, reason: err.Error(), step: st.ID}
		}
		if ctx.Err() != nil {
			return ending{status: RunCancelled, reason: "interrupted", step: st.ID}
		}
		status, errText := r.step(ctx, st, failure)
		status, errText, chosen := r.guide(ctx, st, failure, status, errText)
		if chosen != nil {
			return *chosen
		}
		r.setStepVal(st, r.report.Step(st.ID))
		end, ends := r.stepEnding(st, status, errText)
		switch {
		case !ends:
		case independent && (end.status == RunFailed || end.status == RunRejected):
			if first.step == "" {
				first = end
			}
		default:
			return end
		}
	}
	if first.step != "" {
		return first
	}
	return ending{status: RunSucceeded}
}

// guide asks the operator, on a terminal, what to do about a step that failed: retry
// it (and ask again if it fails again), skip it with a reason, or end the section (stop,
// or roll back: the ending is returned). Each answer is recorded as a choice. Without a
// guide, or for a step whose failure is only a warning, the step's outcome stands.
func (r *Run) guide(ctx context.Context, st *StepDecl, failure map[string]any, status StepStatus, errText string) (StepStatus, string, *ending) {
	for status == StepFailed && st.OnError != OnErrorWarn && r.opts.Guide != nil && ctx.Err() == nil {
		choice, err := r.opts.Guide(ctx, GuideQuestion{Step: st.ID, Name: st.Name, Type: st.Type, Error: errText, Policy: st.OnError, Section: st.Section})
		if err != nil {
			break
		}
		by := r.opts.Actor
		r.emit(&Event{Kind: EventChoice, Choice: &Choice{Step: st.ID, Action: choice.Action, By: by, At: r.clock.Now().UTC(), Reason: choice.Reason}}, true)
		switch choice.Action {
		case "retry":
			status, errText = r.step(ctx, st, failure)
			continue
		case "skip":
			r.skip(st, by, choice.Reason)
			status = StepSkipped
		case "stop":
			r.setStepVal(st, r.report.Step(st.ID))
			return status, errText, &ending{status: RunFailed, reason: "stopped by " + by + " after: " + errText, step: st.ID, by: by}
		case "rollback":
			r.setStepVal(st, r.report.Step(st.ID))
			why := "rollback requested by " + by + " after: " + errText
			if choice.Reason != "" {
				why = "rollback requested by " + by + " (" + choice.Reason + ") after: " + errText
			}
			return status, errText, &ending{status: RunFailed, reason: why, step: st.ID, rollback: true, by: by}
		}
		break
	}
	return status, errText, nil
}

// stepEnding says whether a step's outcome ends its section, and how, as the step's
// on_error says: a failure or refusal stops the run (or rolls it back) unless it is only
// a warning, recorded here; a step that waits or was cancelled ends the section too.
func (r *Run) stepEnding(st *StepDecl, status StepStatus, errText string) (ending, bool) {
	switch status {
	case StepFailed, StepRejected:
		if st.OnError == OnErrorWarn {
			r.warn(st.ID, fmt.Sprintf("%s %s (on_error: warn, the release went on): %s", st.ID, status, errText))
			return ending{}, false
		}
		end := ending{status: RunFailed, reason: errText, step: st.ID, rollback: st.OnError == OnErrorRollback}
		if status == StepRejected {
			end.status = RunRejected
		}
		return end, true
	case StepWaiting:
		return ending{status: RunWaiting, reason: errText, step: st.ID}, true
	case StepCancelled:
		return ending{status: RunCancelled, reason: errText, step: st.ID}, true
	}
	return ending{}, false
}

// skip marks a step skipped by a person, with the reason, and records it as a warning:
// what the step would have done or checked was not done.
func (r *Run) skip(st *StepDecl, by, reason string) {
	r.emit(&Event{Kind: EventEnd, Step: st.ID, Status: string(StepSkipped), Reason: "skipped by " + by + ": " + reason}, true)
	what := st.ID
	if st.Name != "" {
		what = fmt.Sprintf("%s (%s)", st.ID, st.Name)
	}
	r.warn(st.ID, fmt.Sprintf("%s was skipped by %s, so it was not done: %s", what, by, reason))
	r.setStepVal(st, r.report.Step(st.ID))
}

// warn records a warning in the journal, the report and (through the report) the
// release issue.
func (r *Run) warn(step, msg string) {
	r.emit(&Event{Kind: EventWarning, Step: step, Reason: msg}, true)
}

func (r *Run) setStepVal(st *StepDecl, sr *StepReport) {
	if st == nil || sr == nil {
		return
	}
	outs := map[string]any{}
	for _, o := range st.stepType.Outputs {
		var v any
		if st.Foreach != nil {
			l := make([]any, 0, len(sr.Items))
			for _, it := range sr.Items {
				l = append(l, coerceOutput(o.Type, it.Outputs[o.Name]))
			}
			v = l
		} else if sr.Outputs != nil {
			v = coerceOutput(o.Type, sr.Outputs[o.Name])
		}
		outs[o.Name] = v
	}
	r.mu.Lock()
	r.stepVals[st.ID] = map[string]any{"status": string(sr.Status), "error": sr.Error, "attempts": sr.Attempts, "outputs": outs}
	r.mu.Unlock()
}

func (r *Run) env(failure map[string]any) *evalEnv {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]any, len(r.base)+2)
	for k, v := range r.base {
		m[k] = v
	}
	// The steps' values are read, not copied: they change only between steps (setStepVal),
	// never while a step's expressions (or its foreach items) are evaluated.
	m["steps"] = r.stepVals
	if r.base["vars"] == nil {
		m["vars"] = map[string]any{}
	}
	if failure != nil {
		m["failure"] = failure
	}
	return &evalEnv{vals: m}
}

// stepEnv is what a step's expressions read: the run's values, plus the params of the
// fragment the step came from.
func (r *Run) stepEnv(st *StepDecl, failure map[string]any, known ...func(string) bool) (*evalEnv, error) {
	env := r.env(failure)
	if len(known) > 0 {
		env.known = known[0]
	}
	if st.Fragment == nil {
		return env, nil
	}
	params := make(map[string]any, len(st.Fragment.Params))
	for _, e := range st.Fragment.Params {
		v, err := env.render(e.Val, "params."+e.Key, new([]string))
		if err != nil {
			return nil, fmt.Errorf("fragment %s: param %s: %v", st.Fragment.File, e.Key, err)
		}
		params[e.Key] = v
	}
	return env.with("params", params), nil
}

// renderVars renders the playbook's vars in order (each may read those before it) the
// first time it is called: by a run's first step to run (a resumed run is a new Run and
// renders them again), a plan or a preflight. Later calls do nothing, even after a var
// failed: the step that called first fails with that error, and later steps see only
// the vars rendered before it.
func (r *Run) renderVars() error {
	r.mu.Lock()
	if _, done := r.base["vars"]; done {
		r.mu.Unlock()
		return nil
	}
	vars := map[string]any{}
	r.base["vars"] = vars
	r.mu.Unlock()
	for _, v := range r.pb.Vars {
		env := r.env(nil)
		val, err := env.render(v.Value, v.Name, nil)
		if err != nil {
			return fmt.Errorf("var %s: %v", v.Name, err)
		}
		r.mu.Lock()
		vars[v.Name] = val
		r.mu.Unlock()
	}
	return nil
}

// step runs one step (all its foreach items) and returns its final status.
func (r *Run) step(ctx context.Context, st *StepDecl, failure map[string]any) (StepStatus, string) {
	if err := r.renderVars(); err != nil {
		r.emit(&Event{Kind: EventEnd, Step: st.ID, Status: string(StepFailed), Error: err.Error()}, true)
		return StepFailed, err.Error()
	}
	env, err := r.stepEnv(st, failure)
	if err != nil {
		r.emit(&Event{Kind: EventEnd, Step: st.ID, Status: string(StepFailed), Error: err.Error()}, true)
		return StepFailed, err.Error()
	}
	if st.When != nil {
		ok, err := env.evalCond(st.When)
		if err != nil {
			r.emit(&Event{Kind: EventEnd, Step: st.ID, Status: string(StepFailed), Error: err.Error()}, true)
			return StepFailed, err.Error()
		}
		if !ok {
			r.emit(&Event{Kind: EventEnd, Step: st.ID, Status: string(StepSkipped), Reason: "when: " + st.When.Src + " was false"}, true)
			return StepSkipped, ""
		}
	}
	if st.Foreach == nil {
		return r.attempts(ctx, st, env, 0, nil)
	}
	raw, err := env.render(st.Foreach, "foreach", nil)
	if err != nil {
		r.emit(&Event{Kind: EventEnd, Step: st.ID, Status: string(StepFailed), Error: err.Error()}, true)
		return StepFailed, err.Error()
	}
	items, ok := raw.([]any)
	if !ok {
		msg := fmt.Sprintf("foreach gave %T, not a list", raw)
		r.emit(&Event{Kind: EventEnd, Step: st.ID, Status: string(StepFailed), Error: msg}, true)
		return StepFailed, msg
	}
	sr := r.report.Step(st.ID)
	prior := map[int]*ItemReport{}
	if len(sr.Items) == len(items) {
		for _, it := range sr.Items {
			prior[it.Index] = it
		}
	} else {
		r.emit(&Event{Kind: EventItems, Step: st.ID, Items: r.red.Value(items).([]any)}, true)
	}
	r.emit(&Event{Kind: EventStart, Step: st.ID, Attempt: 1}, false)
	statuses := make([]StepStatus, len(items))
	errs := make([]string, len(items))
	sem := make(chan struct{}, st.Parallel)
	var wg sync.WaitGroup
	for i, item := range items {
		if p := prior[i]; p != nil && p.Status.Done() {
			statuses[i] = p.Status
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(i int, item any) {
			defer wg.Done()
			defer func() { <-sem }()
			statuses[i], errs[i] = r.attempts(ctx, st, env.with("item", item), i+1, item)
		}(i, item)
	}
	wg.Wait()
	final, msg := StepSucceeded, ""
	rank := map[StepStatus]int{StepSucceeded: 0, StepSkipped: 0, StepWaiting: 1, StepFailed: 2, StepRejected: 3, StepCancelled: 4}
	for i, s := range statuses {
		if rank[s] > rank[final] {
			final, msg = s, fmt.Sprintf("item %d (%v): %s", i, items[i], errs[i])
		}
	}
	r.emit(&Event{Kind: EventEnd, Step: st.ID, Status: string(final), Error: msg, Outputs: r.collectOutputs(st)}, true)
	return final, msg
}

func (r *Run) collectOutputs(st *StepDecl) map[string]any {
	sr := r.report.Step(st.ID)
	r.report.mu.Lock()
	defer r.report.mu.Unlock()
	outs := map[string]any{}
	for _, o := range st.stepType.Outputs {
		l := make([]any, 0, len(sr.Items))
		for _, it := range sr.Items {
			l = append(l, it.Outputs[o.Name])
		}
		outs[o.Name] = l
	}
	return outs
}

// attempts runs one step (or one foreach item) under its retry policy.
func (r *Run) attempts(ctx context.Context, st *StepDecl, env *evalEnv, item int, itemVal any) (StepStatus, string) {
	end := func(status StepStatus, attempt int, outs map[string]any, errText string) (StepStatus, string) {
		r.emit(&Event{Kind: EventEnd, Step: st.ID, Item: item, Status: string(status), Attempt: attempt, Outputs: outs, Error: errText}, true)
		return status, errText
	}
	step, shown, err := r.decodeStep(st, env)
	if err != nil {
		return end(StepFailed, 0, nil, err.Error())
	}
	ctx, cancel := r.stepContext(ctx, st)
	defer cancel()
	var deadline time.Time
	if st.Timeout > 0 {
		deadline = r.clock.Now().Add(st.Timeout.D())
	}
	attempt := 0
	if sr := r.report.Step(st.ID); item == 0 && sr.Status == StepRunning && sr.Attempts > 0 {
		attempt = sr.Attempts // resumed mid-step: count on
	}
	budget := retryBudget{attempts: st.Retry.Attempts}
	for {
		attempt++
		if err := r.emit(&Event{Kind: EventStart, Step: st.ID, Item: item, Attempt: attempt, Params: shown}, false); err != nil {
			return StepCancelled, err.Error()
		}
		outs, err := runSafely(ctx, step, r.stepCtx(st, item, itemVal, attempt))
		if err == nil {
			return end(StepSucceeded, attempt, normalizeOutputs(st.stepType, outs), "")
		}
		if status, errText, final := attemptEnding(ctx, st, err); final {
			return end(status, attempt, nil, errText)
		}
		transient, after := IsTransient(err)
		if !budget.fail(transient, after) {
			return end(StepFailed, attempt, nil, budget.gaveUp(err, transient, attempt))
		}
		delay := max(r.backoff(st.Retry, attempt), after)
		if !deadline.IsZero() && r.clock.Now().Add(delay).After(deadline) {
			return end(StepFailed, attempt, nil, fmt.Sprintf("%v (the next attempt in %s would pass the step's timeout of %s)", err, delay.Round(time.Second), st.Timeout))
		}
		r.emit(&Event{Kind: EventLog, Step: st.ID, Item: item, Line: fmt.Sprintf("attempt %d failed: %v; retrying in %s", attempt, err, delay.Round(time.Millisecond))}, false)
		if err := Sleep(ctx, r.clock, delay); err != nil {
			if errors.Is(context.Cause(ctx), errInterrupted) {
				return end(StepCancelled, attempt, nil, "interrupted while waiting to retry")
			}
			return end(StepFailed, attempt, nil, "timed out waiting to retry: "+err.Error())
		}
	}
}

// decodeStep renders a step's parameters and decodes them into its type, validated; it
// also returns the parameters as the report shows them (secrets hidden).
func (r *Run) decodeStep(st *StepDecl, env *evalEnv) (Step, map[string]any, error) {
	rendered, err := env.render(st.With, "", nil)
	if err != nil {
		return nil, nil, err
	}
	with, _ := rendered.(map[string]any)
	if with == nil {
		with = map[string]any{}
	}
	coerceParams(st.params, with)
	step, err := decodeParams(st.stepType, with)
	if err == nil {
		if v, ok := step.(Validator); ok {
			err = v.Validate()
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: step %s (%s): %v", st.Pos, st.ID, st.Type, err)
	}
	return step, r.showParams(st, with), nil
}

// attemptEnding says whether a failed attempt ends the step whatever its retry policy:
// it waits for a person, was refused, was interrupted or ran out of time.
func attemptEnding(ctx context.Context, st *StepDecl, err error) (StepStatus, string, bool) {
	var we *WaitingError
	var re *RejectedError
	switch {
	case errors.As(err, &we):
		return StepWaiting, we.Reason, true
	case errors.As(err, &re):
		return StepRejected, re.Error(), true
	case ctx.Err() != nil && errors.Is(context.Cause(ctx), errInterrupted):
		return StepCancelled, "interrupted: " + err.Error(), true
	case ctx.Err() != nil:
		return StepFailed, fmt.Sprintf("timed out after %s: %v", st.Timeout, err), true
	}
	return "", "", false
}

// maxRateLimitWaits bounds the waits for rate limits that do not use up a step's
// attempts (the step's timeout bounds them too).
const maxRateLimitWaits = 100

// retryBudget counts a step's failed attempts against its retry policy. A rate limit is
// not the step's failure: waiting for it does not use up an attempt, up to
// maxRateLimitWaits of them.
type retryBudget struct {
	attempts int // the policy's attempts
	spent    int // attempts used up by failures
	limited  int // waits for rate limits
}

// fail counts a failed attempt and says whether the step is tried again.
func (b *retryBudget) fail(transient bool, after time.Duration) bool {
	if transient && after > 0 {
		b.limited++
		if b.limited <= maxRateLimitWaits {
			b.spent--
		}
	}
	b.spent++
	return transient && b.spent < b.attempts
}

// gaveUp is the step's error once it is not tried again.
func (b *retryBudget) gaveUp(err error, transient bool, attempt int) string {
	msg := err.Error()
	if transient {
		msg = fmt.Sprintf("%s (gave up after %d attempts)", msg, attempt)
		if b.limited > maxRateLimitWaits {
			msg += fmt.Sprintf(" (still rate limited after %d waits)", maxRateLimitWaits)
		}
	}
	return msg
}

// runSafely turns a step's panic into an error, so one bad step cannot take the
// journal and report down with it.
func runSafely(ctx context.Context, step Step, sc *StepContext) (outs Outputs, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("step panicked: %v", p)
		}
	}()
	return step.Run(ctx, sc)
}

var errInterrupted = errors.New("interrupted")

// Interrupt returns a context cancelled with the cause the engine reads as an interrupt
// (SIGINT/SIGTERM): running steps end cancelled, and the run can be resumed.
func Interrupt(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	return ctx, func() { cancel(errInterrupted) }
}

func (r *Run) stepContext(ctx context.Context, st *StepDecl) (context.Context, context.CancelFunc) {
	if st.Timeout > 0 {
		if tc, ok := r.clock.(TimeoutClock); ok {
			return tc.WithTimeout(ctx, st.Timeout.D())
		}
		return context.WithTimeout(ctx, st.Timeout.D())
	}
	return context.WithCancel(ctx)
}

func (r *Run) backoff(p RetryPolicy, attempt int) time.Duration {
	d := p.Backoff.D()
	for i := 1; i < attempt && d < p.MaxDelay.D(); i++ {
		d *= 2
	}
	if max := p.MaxDelay.D(); max > 0 && d > max {
		d = max
	}
	// Jitter: between half and all of the delay, so retries of many runs spread out.
	r.rngMu.Lock()
	j := time.Duration(r.rng.Int64N(int64(d)/2 + 1))
	r.rngMu.Unlock()
	return d/2 + j
}

// showParams is what the report and plan show of rendered parameters: secrets hidden.
func (r *Run) showParams(st *StepDecl, with map[string]any) map[string]any {
	out := make(map[string]any, len(with))
	for k, v := range with {
		out[k] = v
	}
	for _, p := range st.params {
		if p.Secret {
			if _, ok := out[p.Name]; ok {
				out[p.Name] = "***"
			}
		}
	}
	return r.red.Value(out).(map[string]any)
}

func (r *Run) stepCtx(st *StepDecl, item int, itemVal any, attempt int) *StepContext {
	sc := &StepContext{
		RunID: r.opts.RunID, StepID: st.ID, Product: r.pb.Product, Attempt: attempt, Item: itemVal,
		Rehearsal: r.opts.Mode.simulated(), Actor: r.opts.Actor, Roles: r.pb.Roles, People: r.pb.People,
		PlanHash: r.planHash, Clock: r.clock, Prompter: r.opts.Prompter, GatesEndRun: r.opts.GatesEndRun, Connections: r,
		Journal: &stepJournal{r: r, step: st.ID, item: item},
	}
	sc.LogFunc = func(line string) {
		r.emit(&Event{Kind: EventLog, Step: st.ID, Item: item, Line: line}, false)
	}
	sc.Report = r.report.Clone
	sc.LinkFunc = func(title, url string) {
		r.emit(&Event{Kind: EventLink, Step: st.ID, Item: item, Link: &Link{Title: title, URL: url}}, false)
	}
	return sc
}

// Connection implements ConnectionResolver for steps.
func (r *Run) Connection(name, typ string) (*Connection, error) {
	decl, err := findConnection(r.pb.Connections, name, typ)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.conns[decl.Name]; ok {
		return c, nil
	}
	var c *Connection
	if r.opts.Connect != nil {
		c, err = r.opts.Connect(decl)
		if err != nil {
			return nil, err
		}
	} else {
		c = decl.Connection()
	}
	c.redact = r.red.Add
	if c.Token != "" {
		r.red.Add(c.Token)
	}
	r.conns[decl.Name] = c
	return c, nil
}

// Connection builds the real connection a declaration describes.
func (d *ConnectionDecl) Connection() *Connection {
	settings := make(map[string]string, len(d.Settings))
	for k, v := range d.Settings {
		settings[k] = v
	}
	return &Connection{Name: d.Name, Type: d.Type, URL: d.URL, Settings: settings, TokenEnv: d.TokenEnv, TokenFile: d.TokenFile}
}

// stepJournal is a step's durable memory, kept in the run's journal.
type stepJournal struct {
	r    *Run
	step string
	item int
}

func (j *stepJournal) Get(key string) (json.RawMessage, bool) {
	sr := j.r.report.Step(j.step)
	j.r.report.mu.Lock()
	defer j.r.report.mu.Unlock()
	if j.item > 0 {
		if j.item > len(sr.Items) {
			return nil, false
		}
		v, ok := sr.Items[j.item-1].Journal[key]
		return v, ok
	}
	v, ok := sr.Journal[key]
	return v, ok
}

func (j *stepJournal) Put(key string, value json.RawMessage) error {
	return j.r.emit(&Event{Kind: EventKV, Step: j.step, Item: j.item, Key: key, Value: value}, true)
}
