package sleep

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/engine/enginetest"
)

func TestDecodePlanRun(t *testing.T) {
	step := enginetest.Decode(t, "sleep", map[string]any{"duration": "15m"})
	sc := enginetest.NewContext(t, "wait")
	start := sc.Now()

	plan, err := step.Plan(context.Background(), sc.StepContext)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Action != "wait 15m0s" {
		t.Errorf("plan = %q, want %q", plan.Action, "wait 15m0s")
	}
	if !sc.Now().Equal(start) {
		t.Errorf("Plan moved the clock by %s", sc.Now().Sub(start))
	}

	realStart := time.Now()
	out, err := step.Run(context.Background(), sc.StepContext)
	if err != nil {
		t.Fatal(err)
	}
	if got := out["slept"]; got != "15m0s" {
		t.Errorf("slept = %v, want 15m0s", got)
	}
	if got := sc.Now().Sub(start); got != 15*time.Minute {
		t.Errorf("run clock advanced %s, want 15m", got)
	}
	if real := time.Since(realStart); real > 5*time.Second {
		t.Errorf("a fake 15m wait took %s of real time", real)
	}
}

func TestSecondRunDoesNotWaitAgain(t *testing.T) {
	step := enginetest.Decode(t, "sleep", map[string]any{"duration": "1h"})
	sc := enginetest.NewContext(t, "wait")
	start := sc.Now()
	if _, err := step.Run(context.Background(), sc.StepContext); err != nil {
		t.Fatal(err)
	}
	if _, err := step.Run(context.Background(), sc.StepContext); err != nil {
		t.Fatal(err)
	}
	if got := sc.Now().Sub(start); got != time.Hour {
		t.Errorf("two runs advanced the clock %s, want 1h (the second finds the wait over)", got)
	}
}

func TestResumeWaitsOnlyTheRest(t *testing.T) {
	step := enginetest.Decode(t, "sleep", map[string]any{"duration": "10m"})
	sc := enginetest.NewContext(t, "wait")
	start := sc.Now()
	// A first attempt recorded its end and then the process died 4 minutes in.
	if err := sc.Record(journalKey, start.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	sc.Clock.(*engine.FakeClock).Advance(4 * time.Minute)
	if _, err := step.Run(context.Background(), sc.StepContext); err != nil {
		t.Fatal(err)
	}
	if got := sc.Now().Sub(start); got != 10*time.Minute {
		t.Errorf("wait ended %s after the first start, want 10m", got)
	}
	if !strings.Contains(sc.LogText(), "6m0s left") {
		t.Errorf("log does not say what was left: %q", sc.LogText())
	}
}

func TestCancelled(t *testing.T) {
	step := enginetest.Decode(t, "sleep", map[string]any{"duration": "1h"})
	sc := enginetest.NewContext(t, "wait")
	sc.Clock = engine.RealClock{} // a real clock, so only cancellation can end the wait
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	realStart := time.Now()
	_, err := step.Run(ctx, sc.StepContext)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if real := time.Since(realStart); real > 5*time.Second {
		t.Errorf("cancel took %s", real)
	}
}

func TestNegativeDurationRejected(t *testing.T) {
	st, _ := engine.LookupStepType("sleep")
	s, err := engine.DecodeParams(st, map[string]any{"duration": "-5s"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.(engine.Validator).Validate(); err == nil {
		t.Error("a negative duration validated")
	}
}

func TestBadDurationDoesNotDecode(t *testing.T) {
	st, _ := engine.LookupStepType("sleep")
	if _, err := engine.DecodeParams(st, map[string]any{"duration": "soon"}); err == nil {
		t.Error("\"soon\" decoded as a duration")
	}
}

func FuzzRemaining(f *testing.F) {
	f.Add(int64(0), int64(0))
	f.Add(int64(-5), int64(10))
	f.Fuzz(func(t *testing.T, a, b int64) {
		base := time.Unix(1_700_000_000, 0)
		now, until := base.Add(time.Duration(a)), base.Add(time.Duration(b))
		r := Remaining(now, until)
		if r < 0 {
			t.Fatalf("Remaining(%v, %v) = %s < 0", now, until, r)
		}
		if until.After(now) && r != until.Sub(now) {
			t.Fatalf("Remaining = %s, want %s", r, until.Sub(now))
		}
	})
}
