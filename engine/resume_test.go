package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
)

const resumePlaybook = `runbook: v1
product: demo
inputs:
  version: {type: string, default: 1.0.0}
steps:
  - id: one
    type: test.echo
    with: {message: "one ${{ inputs.version }}"}
  - id: gate
    type: test.gate
  - id: two
    type: test.echo
    with: {message: "two after ${{ steps.gate.outputs.by }}"}
`

func load(t *testing.T, src string) (*engine.Playbook, map[string]any) {
	t.Helper()
	pb, err := engine.Parse("resume.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	in, err := pb.ResolveInputs(nil)
	if err != nil {
		t.Fatal(err)
	}
	return pb, in
}

// TestResumeWaitingGate: a gate without an answer ends the run waiting; resume with a
// recorded confirmation continues after it, without running the first step again, and
// the report keeps both sessions and the choice with who made it.
func TestResumeWaitingGate(t *testing.T) {
	pb, in := load(t, resumePlaybook)
	store := &engine.MemStore{}
	before := echoRuns.Load()
	rep, err := engine.Execute(context.Background(), pb, engine.Options{Inputs: in, Store: store, Actor: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != engine.RunWaiting || rep.FailedStep != "gate" {
		t.Fatalf("status %s at %s", rep.Status, rep.FailedStep)
	}
	if got := echoRuns.Load() - before; got != 1 {
		t.Fatalf("echo ran %d times before the gate", got)
	}
	rep, err = engine.Resume(context.Background(), pb, engine.Options{Store: store, Actor: "bob",
		Confirm: map[string]engine.Confirmation{"gate": {By: "owner-a", At: time.Unix(0, 0).UTC(), Answer: "yes"}}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != engine.RunSucceeded {
		t.Fatalf("resumed status %s: %s", rep.Status, rep.Reason)
	}
	if got := echoRuns.Load() - before; got != 2 {
		t.Errorf("echo ran %d times in all; the first step ran again", got)
	}
	if got := rep.Step("two").Outputs["text"]; got != "two after owner-a" {
		t.Errorf("two = %v", got)
	}
	if len(rep.Sessions) != 2 || rep.Sessions[0].Actor != "alice" || rep.Sessions[1].Actor != "bob" || rep.Sessions[0].Status != engine.RunWaiting {
		t.Errorf("sessions %+v", rep.Sessions)
	}
	if len(rep.Choices) != 1 || rep.Choices[0].Action != "confirm" || rep.Choices[0].By != "owner-a" {
		t.Errorf("choices %+v", rep.Choices)
	}
	if rep.Step("one").Session != 1 || rep.Step("two").Session != 2 {
		t.Errorf("sessions of steps: one %d, two %d", rep.Step("one").Session, rep.Step("two").Session)
	}
}

// TestResumeRefusedGate: a refusal recorded on resume ends the run rejected with its reason.
func TestResumeRefusedGate(t *testing.T) {
	pb, in := load(t, resumePlaybook)
	store := &engine.MemStore{}
	engine.Execute(context.Background(), pb, engine.Options{Inputs: in, Store: store})
	rep, err := engine.Resume(context.Background(), pb, engine.Options{Store: store,
		Confirm: map[string]engine.Confirmation{"gate": {By: "owner-a", Answer: "no", Reason: "design changes pending"}}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != engine.RunRejected || rep.Reason != "rejected by owner-a: design changes pending" {
		t.Fatalf("status %s: %s", rep.Status, rep.Reason)
	}
}

const failingPlaybook = `runbook: v1
product: demo
steps:
  - id: first
    type: test.echo
    with: {message: a}
  - id: broken
    type: test.flaky
    with: {key: %s, fatal: true}
  - id: after
    type: test.echo
    with: {message: b}
`

// TestResumeSkipAndRetry: a failed run resumed with --skip goes on past the step, and the
// skip and its reason are in the report; --retry runs the failed step again.
func TestResumeSkipAndRetry(t *testing.T) {
	key := fmt.Sprintf("skip-%d", time.Now().UnixNano())
	pb, in := load(t, fmt.Sprintf(failingPlaybook, key))
	store := &engine.MemStore{}
	rep, _ := engine.Execute(context.Background(), pb, engine.Options{Inputs: in, Store: store})
	if rep.Status != engine.RunFailed || rep.FailedStep != "broken" {
		t.Fatalf("status %s at %s", rep.Status, rep.FailedStep)
	}
	rep, err := engine.Resume(context.Background(), pb, engine.Options{Store: store, Retry: []string{"broken"}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != engine.RunFailed || counter(key).Load() != 2 {
		t.Fatalf("retry: status %s, %d calls", rep.Status, counter(key).Load())
	}
	rep, err = engine.Resume(context.Background(), pb, engine.Options{Store: store, Actor: "carol", Skip: map[string]string{"broken": "done by hand"}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != engine.RunSucceeded || counter(key).Load() != 2 {
		t.Fatalf("skip: status %s, %d calls", rep.Status, counter(key).Load())
	}
	if s := rep.Step("broken"); s.Status != engine.StepSkipped || s.Skipped != "skipped by carol: done by hand" {
		t.Errorf("broken: %s %q", s.Status, s.Skipped)
	}
	last := rep.Choices[len(rep.Choices)-1]
	if last.Action != "skip" || last.By != "carol" || last.Reason != "done by hand" {
		t.Errorf("choice %+v", last)
	}
}

// TestInterruptThenResume: an interrupt cancels the running step's context; the step and
// run end cancelled; resume finishes, and the interrupted step finds what it made.
func TestInterruptThenResume(t *testing.T) {
	pb, in := load(t, "runbook: v1\nproduct: demo\nsteps:\n  - id: a\n    type: test.echo\n    with: {message: x}\n  - id: long\n    type: test.block\n  - id: c\n    type: test.echo\n    with: {message: y}\n")
	store := &engine.MemStore{}
	ctx, interrupt := engine.Interrupt(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-blockStarted
		interrupt()
	}()
	rep, err := engine.Execute(ctx, pb, engine.Options{Inputs: in, Store: store})
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != engine.RunCancelled || rep.Step("long").Status != engine.StepCancelled || rep.Step("c").Status != engine.StepPending {
		t.Fatalf("after interrupt: run %s, long %s, c %s", rep.Status, rep.Step("long").Status, rep.Step("c").Status)
	}
	rep, err = engine.Resume(context.Background(), pb, engine.Options{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != engine.RunSucceeded || rep.Step("long").Attempts < 1 {
		t.Fatalf("after resume: %s", rep.Status)
	}
}

// TestCrashAtEveryEvent simulates a crash after each journal event of a run: a new
// process resumes from the journal as it was at that point. At every crash point the run
// ends succeeded with the same outputs, and no step that had succeeded runs again.
func TestCrashAtEveryEvent(t *testing.T) {
	src := `runbook: v1
product: demo
steps:
  - id: a
    type: test.echo
    with: {message: a}
  - id: fan
    type: test.echo
    foreach: [x, y, z]
    with: {message: "${{ item }}-${{ steps.a.outputs.text }}"}
  - id: gate
    type: test.gate
    with: {decision: approve}
  - id: last
    type: test.echo
    with: {message: "${{ steps.gate.outputs.by }}"}
`
	pb, in := load(t, src)
	full := &engine.MemStore{}
	want, err := engine.Execute(context.Background(), pb, engine.Options{Inputs: in, Store: full})
	if err != nil || want.Status != engine.RunSucceeded {
		t.Fatalf("reference run: %v %v", err, want.Status)
	}
	events, _ := full.Events()
	for n := 1; n < len(events); n++ {
		prefix := &engine.MemStore{}
		for _, ev := range events[:n] {
			prefix.Append(ev, true)
		}
		done := map[string]bool{}
		for _, ev := range events[:n] {
			if ev.Kind == "end" && ev.Status == "succeeded" {
				done[fmt.Sprintf("%s/%d", ev.Step, ev.Item)] = true
			}
		}
		ran := map[string]int{}
		var mu sync.Mutex
		obs := func(ev *engine.Event) {
			if ev.Kind == "start" && (ev.Item > 0 || ev.Step != "fan") {
				mu.Lock()
				ran[fmt.Sprintf("%s/%d", ev.Step, ev.Item)]++
				mu.Unlock()
			}
		}
		got, err := engine.Resume(context.Background(), pb, engine.Options{Store: prefix, Observer: obs})
		if err != nil {
			t.Fatalf("crash after event %d (%s): %v", n, events[n-1].Kind, err)
		}
		if got.Status != engine.RunSucceeded {
			t.Fatalf("crash after event %d: status %s: %s", n, got.Status, got.Reason)
		}
		for k := range done {
			if ran[k] > 0 {
				t.Errorf("crash after event %d: %s had succeeded and ran again", n, k)
			}
		}
		a, _ := json.Marshal(got.Step("last").Outputs)
		b, _ := json.Marshal(want.Step("last").Outputs)
		c, _ := json.Marshal(got.Step("fan").Outputs)
		d, _ := json.Marshal(want.Step("fan").Outputs)
		if string(a) != string(b) || string(c) != string(d) {
			t.Errorf("crash after event %d: outputs %s %s, want %s %s", n, a, c, b, d)
		}
	}
}

// TestGuidedFailure: on a terminal the operator answers a failure: retry runs the step
// again, skip records the reason and goes on; each choice is in the report.
func TestGuidedFailure(t *testing.T) {
	key := fmt.Sprintf("guide-%d", time.Now().UnixNano())
	pb, in := load(t, fmt.Sprintf(failingPlaybook, key))
	answers := []engine.GuideChoice{{Action: "retry"}, {Action: "skip", Reason: "restarted by hand"}}
	var asked []string
	guide := func(ctx context.Context, q engine.GuideQuestion) (engine.GuideChoice, error) {
		asked = append(asked, q.Step+": "+q.Error)
		c := answers[0]
		answers = answers[1:]
		return c, nil
	}
	rep, err := engine.Execute(context.Background(), pb, engine.Options{Inputs: in, Actor: "dave", Guide: guide})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != engine.RunSucceeded || counter(key).Load() != 2 || len(asked) != 2 {
		t.Fatalf("status %s, %d calls, asked %v", rep.Status, counter(key).Load(), asked)
	}
	if len(rep.Choices) != 2 || rep.Choices[0].Action != "retry" || rep.Choices[1].Reason != "restarted by hand" || rep.Choices[1].By != "dave" {
		t.Errorf("choices %+v", rep.Choices)
	}
	// A skip is a warning: what the step would have done was not done.
	if len(rep.Warnings) != 1 || rep.Warnings[0].Step != "broken" || !strings.Contains(rep.Warnings[0].Message, "skipped by dave, so it was not done: restarted by hand") {
		t.Errorf("warnings %+v", rep.Warnings)
	}
	// Stop: the run ends failed, undoing nothing, and can be resumed.
	key2 := key + "-stop"
	pb2, in2 := load(t, fmt.Sprintf(failingPlaybook, key2)+"finally:\n  - id: fin\n    type: test.echo\n    with: {message: f}\n")
	store := &engine.MemStore{}
	rep, _ = engine.Execute(context.Background(), pb2, engine.Options{Inputs: in2, Store: store, Guide: func(context.Context, engine.GuideQuestion) (engine.GuideChoice, error) {
		return engine.GuideChoice{Action: "stop"}, nil
	}})
	if rep.Status != engine.RunFailed || rep.FailedStep != "broken" || !strings.Contains(rep.Reason, "stopped by") {
		t.Fatalf("stop: %s at %q (%s)", rep.Status, rep.FailedStep, rep.Reason)
	}
	rep, err = engine.Resume(context.Background(), pb2, engine.Options{Store: store, Skip: map[string]string{"broken": "done by hand"}})
	if err != nil || rep.Status != engine.RunSucceeded || rep.Step("fin").Status != engine.StepSucceeded {
		t.Fatalf("resumed after a stop: %v %+v", err, rep)
	}
}

// TestStepOfDecodedReport: a report read back from its JSON (report.json, a review tool)
// answers Step like the report the run kept in memory.
func TestStepOfDecodedReport(t *testing.T) {
	pb, in := load(t, resumePlaybook)
	rep, err := engine.Execute(context.Background(), pb, engine.Options{Inputs: in, Store: &engine.MemStore{}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back engine.Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"one", "gate", "two"} {
		got, want := back.Step(id), rep.Step(id)
		if got == nil || got.Status != want.Status || fmt.Sprint(got.Outputs) != fmt.Sprint(want.Outputs) {
			t.Errorf("step %s of the decoded report: %+v, want %+v", id, got, want)
		}
	}
	if back.Step("nope") != nil {
		t.Error("a step that is not in the report was found")
	}
}

// TestRunExistsFromItsFirstEvent: a run killed before its first event leaves no journal
// (so no run to list or resume); from the first event on, the journal is complete and a
// resumed run reads it back.
func TestRunExistsFromItsFirstEvent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "runs", "demo-1")
	store, err := engine.OpenFileStore(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	store.Close() // killed before the first event
	if _, _, err := engine.ReadJournal(dir); err == nil {
		t.Fatal("a run that recorded nothing reads as a run")
	}
	store, err = engine.OpenFileStore(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	pb, in := load(t, resumePlaybook)
	rep, err := engine.Execute(context.Background(), pb, engine.Options{Inputs: in, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	store.Close()
	back, evs, err := engine.ReadJournal(dir)
	if err != nil || back.RunID != rep.RunID || len(evs) < 3 {
		t.Fatalf("journal read back: %v, run %q, %d events", err, back.RunID, len(evs))
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.starting")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// failingStore is a journal whose disk fills up at its failAt-th append: that append
// and every later one fail. It counts the appends tried.
type failingStore struct {
	*engine.MemStore
	failAt, tried int
}

func (s *failingStore) Append(ev *engine.Event, sync bool) error {
	if s.tried++; s.tried >= s.failAt {
		return errors.New("no space left on device")
	}
	return s.MemStore.Append(ev, sync)
}

const journalFailurePlaybook = `runbook: v1
product: demo
steps:
  - id: first
    type: test.effect
    with: {key: %[1]s-first}
  - id: fan
    type: test.effect
    foreach: [a, b]
    with: {key: "%[1]s-fan-${{ item }}"}
  - id: second
    type: test.effect
    with: {key: %[1]s-second}
on_failure:
  - id: undo
    type: test.effect
    with: {key: %[1]s-undo}
finally:
  - id: fin
    type: test.effect
    with: {key: %[1]s-fin}
`

// journalFailureRuns names the runs of journalFailurePlaybook's steps as the journal
// records their starts (step/item) and the thing each makes.
func journalFailureRuns(key string) map[string]string {
	return map[string]string{"first/0": key + "-first", "fan/1": key + "-fan-a", "fan/2": key + "-fan-b",
		"second/0": key + "-second", "undo/0": key + "-undo", "fin/0": key + "-fin"}
}

// recordedStarts counts the journal's start events by step/item; a foreach step's own
// start (item 0) runs nothing and is not counted.
func recordedStarts(store *engine.MemStore) map[string]int {
	evs, _ := store.Events()
	starts := map[string]int{}
	for _, ev := range evs {
		if ev.Kind == engine.EventStart && (ev.Item > 0 || ev.Step != "fan") {
			starts[fmt.Sprintf("%s/%d", ev.Step, ev.Item)]++
		}
	}
	return starts
}

// TestJournalWriteFailureStopsTheRun fills the disk at every append of a run in turn:
// each time the run stops at once and says so (a JournalError that says to resume),
// nothing more is written, no step runs whose start was not recorded, and on_failure
// never runs; resumed from what was recorded, the run succeeds with every step's thing
// made exactly once.
func TestJournalWriteFailureStopsTheRun(t *testing.T) {
	clean := &engine.MemStore{}
	pb, in := load(t, fmt.Sprintf(journalFailurePlaybook, fmt.Sprintf("journal-clean-%d", time.Now().UnixNano())))
	if rep, err := engine.Execute(context.Background(), pb, engine.Options{Inputs: in, Store: clean}); err != nil || rep.Status != engine.RunSucceeded {
		t.Fatalf("clean run: %v %v", err, rep)
	}
	evs, _ := clean.Events()
	for failAt := 1; failAt <= len(evs); failAt++ {
		key := fmt.Sprintf("journal-%d-%d", time.Now().UnixNano(), failAt)
		runs := journalFailureRuns(key)
		pb, in := load(t, fmt.Sprintf(journalFailurePlaybook, key))
		mem := &engine.MemStore{}
		store := &failingStore{MemStore: mem, failAt: failAt}
		rep, err := engine.Execute(context.Background(), pb, engine.Options{Inputs: in, Store: store})
		var je *engine.JournalError
		if !errors.As(err, &je) || !strings.Contains(err.Error(), "no space left on device") || !strings.Contains(err.Error(), "resume") {
			t.Fatalf("append %d (%s) failed: error %v", failAt, evs[failAt-1].Kind, err)
		}
		if rep != nil && rep.Status == engine.RunSucceeded {
			t.Errorf("append %d failed: the run says it succeeded", failAt)
		}
		if store.tried != failAt {
			t.Errorf("append %d failed: %d appends tried in all; the run went on writing", failAt, store.tried)
		}
		starts := recordedStarts(mem)
		for run, thing := range runs {
			if calls, _ := effectCounts(thing); calls != starts[run] {
				t.Errorf("append %d failed: %s ran %d times, its start recorded %d times", failAt, run, calls, starts[run])
			}
		}
		if failAt == 1 { // nothing recorded: there is no run to resume
			if _, err := engine.Resume(context.Background(), pb, engine.Options{Store: mem}); err == nil {
				t.Error("a run whose header was never written was resumed")
			}
			continue
		}
		rep, err = engine.Resume(context.Background(), pb, engine.Options{Store: mem})
		if err != nil || rep.Status != engine.RunSucceeded {
			t.Fatalf("append %d (%s) failed, then resumed: %v %+v", failAt, evs[failAt-1].Kind, err, rep)
		}
		starts = recordedStarts(mem)
		for run, thing := range runs {
			calls, made := effectCounts(thing)
			want := 1
			if run == "undo/0" {
				want = 0
			}
			if made != want || calls != starts[run] {
				t.Errorf("append %d failed, then resumed: %s made its thing %d times (want %d), ran %d times, its start recorded %d times", failAt, run, made, want, calls, starts[run])
			}
			if st := rep.Step(strings.Split(run, "/")[0]); run != "undo/0" && st.Status != engine.StepSucceeded {
				t.Errorf("append %d failed, then resumed: %s %s", failAt, st.ID, st.Status)
			}
		}
	}
}
