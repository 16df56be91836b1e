package manual

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/engine/enginetest"
)

// fakePrompter answers Confirm and Ask from fixed values and counts the questions.
type fakePrompter struct {
	yes      bool
	reason   string
	err      error
	confirms []string
	asks     int
}

func (f *fakePrompter) Confirm(ctx context.Context, text string) (bool, error) {
	f.confirms = append(f.confirms, text)
	return f.yes, f.err
}

func (f *fakePrompter) Ask(ctx context.Context, text string) (string, error) {
	f.asks++
	return f.reason, nil
}

func decode(t *testing.T, with map[string]any) engine.Step {
	t.Helper()
	if with == nil {
		with = map[string]any{
			"instruction": "Check the CDC pods in the production cluster",
			"role":        "platform_maintainer",
		}
	}
	return enginetest.Decode(t, "manual", with)
}

func newContext(t *testing.T) *enginetest.Context {
	sc := enginetest.NewContext(t, "verify-prod")
	sc.Actor = "jdoe"
	sc.Roles = map[string][]string{"platform_maintainer": {"alice", "bob"}}
	return sc
}

func TestPlanAsksNobody(t *testing.T) {
	step := decode(t, nil)
	sc := newContext(t)
	p := &fakePrompter{yes: true}
	sc.Prompter = p
	plan, err := step.Plan(context.Background(), sc.StepContext)
	if err != nil {
		t.Fatal(err)
	}
	want := "ask platform_maintainer (alice, bob) to: Check the CDC pods in the production cluster"
	if plan.Action != want {
		t.Errorf("plan = %q, want %q", plan.Action, want)
	}
	if len(p.confirms) != 0 || p.asks != 0 {
		t.Errorf("Plan asked %d confirmations and %d questions", len(p.confirms), p.asks)
	}
	if _, ok := sc.Get(confirmationKey); ok {
		t.Error("Plan recorded a confirmation")
	}
}

func TestTerminalYes(t *testing.T) {
	step := decode(t, nil)
	sc := newContext(t)
	p := &fakePrompter{yes: true}
	sc.Prompter = p
	out, err := step.Run(context.Background(), sc.StepContext)
	if err != nil {
		t.Fatal(err)
	}
	if out["confirmed_by"] != "jdoe" {
		t.Errorf("confirmed_by = %v, want the actor jdoe", out["confirmed_by"])
	}
	if want := sc.Now().Format(time.RFC3339); out["confirmed_at"] != want {
		t.Errorf("confirmed_at = %v, want %s", out["confirmed_at"], want)
	}
	if len(p.confirms) != 1 || !strings.Contains(p.confirms[0], "Check the CDC pods") || !strings.Contains(p.confirms[0], "alice, bob") {
		t.Errorf("questions = %q", p.confirms)
	}
	// The second Run finds the recorded answer and asks nobody again.
	out2, err := step.Run(context.Background(), sc.StepContext)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.confirms) != 1 {
		t.Errorf("second Run asked again: %d questions", len(p.confirms))
	}
	if out2["confirmed_by"] != out["confirmed_by"] || out2["confirmed_at"] != out["confirmed_at"] {
		t.Errorf("second Run outputs %v differ from the first %v", out2, out)
	}
	if !strings.Contains(sc.LogText(), "jdoe does not hold role platform_maintainer") {
		t.Errorf("log does not note that the confirmer lacks the role: %q", sc.LogText())
	}
}

func TestTerminalNo(t *testing.T) {
	step := decode(t, nil)
	sc := newContext(t)
	sc.Prompter = &fakePrompter{yes: false, reason: "  pods crash-looping \n"}
	_, err := step.Run(context.Background(), sc.StepContext)
	var rej *engine.RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("err = %v, want engine.Rejected", err)
	}
	if rej.By != "jdoe" || rej.Reason != "pods crash-looping" {
		t.Errorf("rejected by %q for %q", rej.By, rej.Reason)
	}
	// The refusal is durable: a rerun is rejected the same way without asking.
	p2 := &fakePrompter{yes: true}
	sc.Prompter = p2
	if _, err := step.Run(context.Background(), sc.StepContext); !errors.As(err, &rej) {
		t.Fatalf("rerun err = %v, want engine.Rejected", err)
	}
	if len(p2.confirms) != 0 {
		t.Error("rerun asked again after a recorded refusal")
	}
}

func TestTerminalError(t *testing.T) {
	step := decode(t, nil)
	sc := newContext(t)
	sc.Prompter = &fakePrompter{err: context.Canceled}
	if _, err := step.Run(context.Background(), sc.StepContext); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want the prompter's error", err)
	}
	if _, ok := sc.Get(confirmationKey); ok {
		t.Error("a failed prompt recorded an answer")
	}
}

func TestConfirmTextIsAsked(t *testing.T) {
	step := decode(t, map[string]any{"instruction": "Run cessda.cdc.deploy.prod", "confirm_text": "Did the job go green?"})
	sc := newContext(t)
	p := &fakePrompter{yes: true}
	sc.Prompter = p
	if _, err := step.Run(context.Background(), sc.StepContext); err != nil {
		t.Fatal(err)
	}
	if len(p.confirms) != 1 || !strings.HasSuffix(p.confirms[0], "Did the job go green?") {
		t.Errorf("questions = %q", p.confirms)
	}
}

func TestNoTerminalWaits(t *testing.T) {
	step := decode(t, nil)
	sc := newContext(t)
	_, err := step.Run(context.Background(), sc.StepContext)
	var w *engine.WaitingError
	if !errors.As(err, &w) {
		t.Fatalf("err = %v, want engine.Waiting", err)
	}
	if !strings.Contains(w.Reason, "Check the CDC pods in the production cluster — confirm with: runbook resume test-run --confirm verify-prod") {
		t.Errorf("waiting reason = %q", w.Reason)
	}
}

func TestRecordedConfirmation(t *testing.T) {
	step := decode(t, nil)
	sc := newContext(t)
	at := time.Date(2026, 11, 25, 9, 30, 0, 0, time.UTC)
	if err := sc.Record(confirmationKey, engine.Confirmation{By: "alice", At: at, Answer: "yes"}); err != nil {
		t.Fatal(err)
	}
	out, err := step.Run(context.Background(), sc.StepContext)
	if err != nil {
		t.Fatal(err)
	}
	if out["confirmed_by"] != "alice" || out["confirmed_at"] != "2026-11-25T09:30:00Z" {
		t.Errorf("outputs = %v", out)
	}
	if strings.Contains(sc.LogText(), "does not hold role") {
		t.Error("alice holds the role but the log says otherwise")
	}
	plan, err := step.Plan(context.Background(), sc.StepContext)
	if err != nil {
		t.Fatal(err)
	}
	if !plan.NoChange {
		t.Error("plan of an answered gate is not NoChange")
	}
}

func TestRecordedRefusal(t *testing.T) {
	step := decode(t, nil)
	sc := newContext(t)
	if err := sc.Record(confirmationKey, engine.Confirmation{By: "bob", Answer: "no", Reason: "staging tests failing"}); err != nil {
		t.Fatal(err)
	}
	_, err := step.Run(context.Background(), sc.StepContext)
	var rej *engine.RejectedError
	if !errors.As(err, &rej) || rej.By != "bob" || rej.Reason != "staging tests failing" {
		t.Fatalf("err = %#v, want Rejected by bob", err)
	}
}

func TestRecordedNonsense(t *testing.T) {
	step := decode(t, nil)
	sc := newContext(t)
	if err := sc.Record(confirmationKey, engine.Confirmation{By: "bob", Answer: "maybe"}); err != nil {
		t.Fatal(err)
	}
	_, err := step.Run(context.Background(), sc.StepContext)
	if err == nil || !strings.Contains(err.Error(), `"maybe"`) {
		t.Fatalf("err = %v, want one naming the answer", err)
	}
}

func TestRehearsalConfirmsAsRoleHolder(t *testing.T) {
	step := decode(t, nil)
	sc := newContext(t)
	sc.Rehearsal = true
	out, err := step.Run(context.Background(), sc.StepContext)
	if err != nil {
		t.Fatal(err)
	}
	if out["confirmed_by"] != "alice" {
		t.Errorf("confirmed_by = %v, want the first role holder alice", out["confirmed_by"])
	}
	if !strings.Contains(sc.LogText(), "rehearsal: confirmed automatically as alice") {
		t.Errorf("log = %q", sc.LogText())
	}
}

func TestRehearsalWithTerminalStillAsks(t *testing.T) {
	step := decode(t, nil)
	sc := newContext(t)
	sc.Rehearsal = true
	p := &fakePrompter{yes: true}
	sc.Prompter = p
	if _, err := step.Run(context.Background(), sc.StepContext); err != nil {
		t.Fatal(err)
	}
	if len(p.confirms) != 1 {
		t.Errorf("asked %d times, want 1", len(p.confirms))
	}
}

func TestMissingInstruction(t *testing.T) {
	st, _ := engine.LookupStepType("manual")
	s, err := engine.DecodeParams(st, map[string]any{"instruction": "  "})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.(engine.Validator).Validate(); err == nil {
		t.Error("a blank instruction validated")
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"yes", " Y ", "no", "maybe", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := Normalize(s)
		if n != "" && n != "yes" && n != "no" {
			t.Fatalf("Normalize(%q) = %q", s, n)
		}
		if Normalize(n) != n {
			t.Fatalf("Normalize is not idempotent on %q", s)
		}
	})
}
