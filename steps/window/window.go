package window

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cessda/runbook/engine"
)

// Type is the step type's name; the CLI's --outside-window answers every step of it.
const Type = "schedule.window"

func init() {
	engine.Register(engine.StepType{
		Name:    Type,
		Summary: "Let the release through only inside its window (days, hours, time zone, or picked dates)",
		Doc: "Inside the window the step succeeds. Outside it, a real run waits (status waiting, with the " +
			"time the window opens next: resume then) or, with `outside: refuse`, fails; a rehearsal or " +
			"sandbox run waits on its simulated clock. `--outside-window --reason R` on run or resume lets " +
			"the run through outside the window, recorded with who and why.",
		New:      func() engine.Step { return &Window{} },
		ReadOnly: true, // reads the calendar
		Outputs: []engine.Output{
			{Name: "inside", Type: engine.TypeBool, Desc: "true when the step passed inside the window (false: a person allowed it outside)"},
			{Name: "at", Type: engine.TypeString, Desc: "when the step passed, RFC 3339 in the window's time zone"},
			{Name: "allowed_by", Type: engine.TypeString, Desc: "who allowed the release outside the window, or \"\""},
			{Name: "reason", Type: engine.TypeString, Desc: "why they allowed it, or \"\""},
		},
	})
}

// Window is the params struct of `schedule.window`.
type Window struct {
	Days     []string `json:"days" desc:"weekdays the window is open, e.g. [tue, wed] (empty: every day)"`
	Dates    []string `json:"dates" desc:"the only dates the window is open (YYYY-MM-DD, e.g. the day the service owner picked), in place of days; empty: the days"`
	From     string   `json:"from" default:"09:00" desc:"opening time, HH:MM in time_zone"`
	To       string   `json:"to" default:"16:00" desc:"closing time, HH:MM in time_zone (the window is open before it)"`
	TimeZone string   `json:"time_zone" default:"UTC" desc:"IANA time zone of the window, e.g. Europe/Oslo"`
	Outside  string   `json:"outside" default:"wait" enum:"wait,refuse" desc:"outside the window: wait for it (status waiting), or refuse (the step fails)"`

	loc      *time.Location
	from, to time.Duration
	days     map[time.Weekday]bool
	dates    map[string]bool
}

var weekdays = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

// Validate checks the window's parts, so a typo ("tues", "9am", "Europe/Olso") is an error
// at validation, not a window that never opens.
func (w *Window) Validate() error {
	loc, err := time.LoadLocation(w.TimeZone)
	if err != nil {
		return fmt.Errorf("time_zone %q: %v (an IANA name such as Europe/Oslo)", w.TimeZone, err)
	}
	w.loc = loc
	if w.from, err = clock(w.From); err != nil {
		return fmt.Errorf("from: %v", err)
	}
	if w.to, err = clock(w.To); err != nil {
		return fmt.Errorf("to: %v", err)
	}
	if w.to <= w.from {
		return fmt.Errorf("to %s is not after from %s", w.To, w.From)
	}
	w.days = map[time.Weekday]bool{}
	for _, d := range w.Days {
		wd, ok := weekday(d)
		if !ok {
			return fmt.Errorf("days: %q is not a weekday (mon, tue, wed, thu, fri, sat, sun, or the full name)", d)
		}
		w.days[wd] = true
	}
	w.dates = map[string]bool{}
	for _, d := range w.Dates {
		if _, err := time.Parse(time.DateOnly, d); err != nil {
			return fmt.Errorf("dates: %q is not a date YYYY-MM-DD", d)
		}
		w.dates[d] = true
	}
	return nil
}

// weekday reads "tue" or "Tuesday".
func weekday(s string) (time.Weekday, bool) {
	s = strings.ToLower(s)
	for name, wd := range weekdays {
		if s == name || s == strings.ToLower(wd.String()) {
			return wd, true
		}
	}
	return 0, false
}

func clock(s string) (time.Duration, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a time HH:MM", s)
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

// open says whether the window is open on the local day of t.
// A picked date takes the place of the usual days: the service owner chose it.
func (w *Window) openOn(day time.Time) bool {
	if len(w.dates) > 0 {
		return w.dates[day.Format(time.DateOnly)]
	}
	return len(w.days) == 0 || w.days[day.Weekday()]
}

// Inside says whether t is inside the window.
func (w *Window) Inside(t time.Time) bool {
	t = t.In(w.loc)
	midnight := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, w.loc)
	since := t.Sub(midnight)
	return w.openOn(t) && since >= w.from && since < w.to
}

// Next is when the window opens next after t (zero when it never does again: all its
// dates are past). Days are walked in the window's time zone, so a DST change moves
// the opening with the wall clock, as people expect.
func (w *Window) Next(t time.Time) time.Time {
	t = t.In(w.loc)
	for i := 0; i <= 366; i++ {
		d := time.Date(t.Year(), t.Month(), t.Day()+i, 0, 0, 0, 0, w.loc)
		if !w.openOn(d) {
			continue
		}
		open := time.Date(d.Year(), d.Month(), d.Day(), int(w.from/time.Hour), int(w.from%time.Hour/time.Minute), 0, 0, w.loc)
		if open.After(t) {
			return open
		}
	}
	return time.Time{}
}

// String is the window for people: "Tue, Wed 09:00–16:00 Europe/Oslo".
func (w *Window) String() string {
	var parts []string
	if len(w.Dates) > 0 {
		ds := append([]string(nil), w.Dates...)
		sort.Strings(ds)
		parts = append(parts, strings.Join(ds, ", "))
	}
	if len(w.Days) > 0 {
		var ds []string
		for _, d := range w.Days {
			wd, _ := weekday(d)
			ds = append(ds, wd.String()[:3])
		}
		parts = append(parts, strings.Join(ds, ", "))
	}
	if len(parts) == 0 {
		parts = append(parts, "every day")
	}
	return fmt.Sprintf("%s %s–%s %s", strings.Join(parts, "; "), w.From, w.To, w.TimeZone)
}

// Plan says whether the window is open now and when it opens next.
func (w *Window) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	if err := w.Validate(); err != nil {
		return engine.Plan{}, err
	}
	now := sc.Now()
	if w.Inside(now) {
		return engine.Plan{Action: "go on: the release window (" + w.String() + ") is open now", NoChange: true}, nil
	}
	return engine.Plan{Action: "wait for the release window " + w.String(), Details: []string{w.nextText(now)}}, nil
}

func (w *Window) nextText(now time.Time) string {
	next := w.Next(now)
	if next.IsZero() {
		return "the window does not open again (its dates are past): change the playbook's dates"
	}
	return "it opens next at " + next.Format("Mon 2006-01-02 15:04 MST")
}

// Run lets the run through inside the window, or when a person allowed it outside.
func (w *Window) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	if err := w.Validate(); err != nil {
		return nil, err
	}
	now := sc.Now()
	if w.Inside(now) {
		return w.pass(now, true, "", ""), nil
	}
	var c engine.Confirmation
	if sc.Recall("confirmation", &c) && c.Answer == "yes" {
		sc.Logf("outside the release window %s, allowed by %s: %s", w, c.By, c.Reason)
		return w.pass(now, false, c.By, c.Reason), nil
	}
	if sc.Recall("confirmation", &c) && c.Answer == "no" {
		return nil, engine.Rejected(c.By, c.Reason)
	}
	next := w.Next(now)
	if sc.Rehearsal && !next.IsZero() {
		// A rehearsal or sandbox waits on its simulated clock, as the people would.
		sc.Logf("outside the release window %s; waiting until %s", w, next.Format(time.RFC3339))
		if err := sc.Sleep(ctx, next.Sub(now)); err != nil {
			return nil, err
		}
		return w.pass(sc.Now(), true, "", ""), nil
	}
	msg := fmt.Sprintf("outside the release window %s (now %s); %s", w, now.In(w.loc).Format("Mon 2006-01-02 15:04 MST"), w.nextText(now))
	if w.Outside == "refuse" || next.IsZero() {
		return nil, fmt.Errorf("%s: start the release inside the window, or allow it outside with --outside-window --reason \"...\"", msg)
	}
	return nil, engine.Waiting("%s: resume then (runbook resume RUN), or now with --outside-window --reason \"...\"", msg)
}

func (w *Window) pass(at time.Time, inside bool, by, reason string) engine.Outputs {
	return engine.Outputs{"inside": inside, "at": at.In(w.loc).Format(time.RFC3339), "allowed_by": by, "reason": reason}
}
