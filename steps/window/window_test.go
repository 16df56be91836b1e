package window_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/engine/enginetest"
	"github.com/cessda/runbook/steps/window"
)

func oslo(t *testing.T, s string) time.Time {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		t.Fatal(err)
	}
	v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func tuesdays(t *testing.T) *window.Window {
	return enginetest.Decode(t, window.Type, map[string]any{"days": []any{"tue"}, "from": "09:00", "to": "15:00", "time_zone": "Europe/Oslo"}).(*window.Window)
}

// TestInsideAndNext: the window is open on its days between its hours, in its time zone,
// and opens next on the next such day at the wall-clock hour, across a DST change.
func TestInsideAndNext(t *testing.T) {
	w := tuesdays(t)
	cases := []struct {
		now    string
		inside bool
		next   string
	}{
		{"2026-03-24 08:59", false, "2026-03-24 09:00"}, // Tuesday, before
		{"2026-03-24 09:00", true, "2026-03-31 09:00"},
		{"2026-03-24 14:59", true, "2026-03-31 09:00"},
		{"2026-03-24 15:00", false, "2026-03-31 09:00"}, // closed at "to"; DST starts on the 29th
		{"2026-03-26 10:00", false, "2026-03-31 09:00"}, // Thursday
	}
	for _, c := range cases {
		now := oslo(t, c.now)
		if got := w.Inside(now); got != c.inside {
			t.Errorf("%s: inside %v, want %v", c.now, got, c.inside)
		}
		if got, want := w.Next(now), oslo(t, c.next); !got.Equal(want) {
			t.Errorf("%s: next %s, want %s", c.now, got, want)
		}
	}
	// UTC+1 before the change, UTC+2 after: the opening stays 09:00 local.
	if got := w.Next(oslo(t, "2026-03-26 10:00")).UTC().Hour(); got != 7 {
		t.Errorf("opening after DST at %d:00 UTC, want 7:00", got)
	}
	// A picked date (a Thursday) takes the place of the usual days (Tuesdays).
	picked := enginetest.Decode(t, window.Type, map[string]any{"days": []any{"tue"}, "dates": []any{"2026-03-26"}, "time_zone": "Europe/Oslo"}).(*window.Window)
	if !picked.Inside(oslo(t, "2026-03-26 10:00")) || picked.Inside(oslo(t, "2026-03-24 10:00")) {
		t.Error("a picked date is the only day open")
	}
	if !picked.Next(oslo(t, "2026-03-27 10:00")).IsZero() {
		t.Error("a window whose dates are past never opens again")
	}
}

// TestValidateRejectsTypos: a window that would never open because of a typo is refused.
func TestValidateRejectsTypos(t *testing.T) {
	for _, with := range []map[string]any{
		{"days": []any{"tues"}},
		{"days": []any{"tu"}},
		{"time_zone": "Europe/Olso"},
		{"from": "9am"},
		{"from": "16:00", "to": "09:00"},
		{"dates": []any{"26.03.2026"}},
	} {
		st, _ := engine.LookupStepType(window.Type)
		s, err := engine.DecodeParams(st, with)
		if err == nil {
			err = s.(engine.Validator).Validate()
		}
		if err == nil {
			t.Errorf("%v: accepted", with)
		}
	}
}

func runAt(t *testing.T, w *window.Window, now time.Time, rehearsal bool, confirm *engine.Confirmation) (*enginetest.Context, engine.Outputs, error) {
	t.Helper()
	sc := enginetest.NewContext(t, "window")
	sc.Clock = engine.NewFakeClock(now)
	sc.Rehearsal = rehearsal
	if confirm != nil {
		b, _ := json.Marshal(confirm)
		sc.Put("confirmation", b)
	}
	out, err := w.Run(context.Background(), sc.StepContext)
	return sc, out, err
}

// TestRun: inside the window the release goes on; outside, a real run waits saying when the
// window opens (or fails with outside: refuse); a person's --outside-window lets it through,
// recorded with who and why; a rehearsal waits on its simulated clock.
func TestRun(t *testing.T) {
	w := tuesdays(t)
	_, out, err := runAt(t, w, oslo(t, "2026-03-24 10:00"), false, nil)
	if err != nil || out["inside"] != true {
		t.Fatalf("inside: %v %v", out, err)
	}

	_, _, err = runAt(t, w, oslo(t, "2026-03-26 10:00"), false, nil)
	var we *engine.WaitingError
	if !errors.As(err, &we) || !strings.Contains(we.Reason, "it opens next at Tue 2026-03-31 09:00 CEST") || !strings.Contains(we.Reason, "--outside-window") {
		t.Fatalf("outside: %v", err)
	}

	refuse := enginetest.Decode(t, window.Type, map[string]any{"days": []any{"tue"}, "time_zone": "Europe/Oslo", "outside": "refuse"}).(*window.Window)
	if _, _, err := runAt(t, refuse, oslo(t, "2026-03-26 10:00"), false, nil); err == nil || errors.As(err, &we) {
		t.Fatalf("outside: refuse: %v", err)
	}

	sc, out, err := runAt(t, w, oslo(t, "2026-03-26 10:00"), false, &engine.Confirmation{By: "alice", Answer: "yes", Reason: "security fix"})
	if err != nil || out["inside"] != false || out["allowed_by"] != "alice" || out["reason"] != "security fix" {
		t.Fatalf("allowed outside: %v %v", out, err)
	}
	if !strings.Contains(sc.LogText(), "allowed by alice: security fix") {
		t.Errorf("log: %s", sc.LogText())
	}

	sc, out, err = runAt(t, w, oslo(t, "2026-03-26 10:00"), true, nil)
	if err != nil || out["inside"] != true || !sc.Now().Equal(oslo(t, "2026-03-31 09:00")) {
		t.Fatalf("rehearsal: %v %v, clock at %s", out, err, sc.Now())
	}
}
