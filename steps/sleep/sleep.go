package sleep

import (
	"context"
	"fmt"
	"time"

	"github.com/cessda/runbook/engine"
)

func init() {
	engine.Register(engine.StepType{
		Name:    "sleep",
		Summary: "Wait a fixed time on the run's clock",
		Doc: "Waits `duration` (e.g. \"90s\", \"15m\", \"7d\"). A resumed run waits only for what " +
			"is left of the first wait. Cancelling the run ends the wait at once.",
		New:      func() engine.Step { return &Sleep{} },
		ReadOnly: true, // waits on the run's clock
		Outputs: []engine.Output{
			{Name: "slept", Type: engine.TypeString, Desc: "the duration waited, e.g. \"5m0s\""},
		},
	})
}

// Sleep is the params struct of the `sleep` step type.
type Sleep struct {
	Duration engine.Duration `json:"duration" required:"true" desc:"how long to wait, e.g. \"90s\", \"15m\", \"7d\""`
}

// journalKey holds the time the wait ends, recorded before waiting so a resumed run
// does not start the whole wait again.
const journalKey = "sleep_until"

// Validate rejects negative durations, which are always a mistake in a playbook.
func (s *Sleep) Validate() error {
	if s.Duration < 0 {
		return fmt.Errorf("sleep: duration %s is negative", s.Duration)
	}
	return nil
}

// Plan says how long the step would wait.
func (s *Sleep) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	return engine.Plan{Action: "wait " + sc.Show("duration", s.Duration)}, nil
}

// Run waits on the run's clock until the recorded end of the wait.
func (s *Sleep) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	now := sc.Now()
	var until time.Time
	if !sc.Recall(journalKey, &until) {
		until = now.Add(s.Duration.D())
		if err := sc.Record(journalKey, until); err != nil {
			return nil, fmt.Errorf("sleep: %w", err)
		}
	}
	left := Remaining(now, until)
	if left < s.Duration.D() {
		sc.Logf("resuming a wait of %s: %s left", s.Duration, left)
	} else {
		sc.Logf("waiting %s", s.Duration)
	}
	if err := sc.Sleep(ctx, left); err != nil {
		return nil, fmt.Errorf("sleep: wait of %s interrupted: %w", s.Duration, err)
	}
	return engine.Outputs{"slept": s.Duration.String()}, nil
}

// Remaining is how long is left to wait at now for a wait ending at until; never negative.
func Remaining(now, until time.Time) time.Duration {
	if d := until.Sub(now); d > 0 {
		return d
	}
	return 0
}
