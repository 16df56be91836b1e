package engine_test

import (
	"context"
	"testing"

	"github.com/cessda/runbook/engine"
)

// TestModeInExpressions: a step's expressions read the run's mode as the string the
// report records, and run.rehearsal from it.
func TestModeInExpressions(t *testing.T) {
	pb, in := load(t, `runbook: v1
product: demo
steps:
  - id: only_in_rehearsal
    type: test.echo
    when: run.mode == "rehearsal" && run.rehearsal
    with: {message: "${{ run.mode }}"}
`)
	for _, c := range []struct {
		mode   engine.Mode
		status engine.StepStatus
	}{{engine.ModeRehearsal, engine.StepSucceeded}, {"", engine.StepSkipped}, {engine.ModeSandbox, engine.StepSkipped}} {
		rep, err := engine.Execute(context.Background(), pb, engine.Options{Inputs: in, Mode: c.mode})
		if err != nil {
			t.Fatal(err)
		}
		st := rep.Step("only_in_rehearsal")
		if st.Status != c.status || (c.status == engine.StepSucceeded && st.Outputs["text"] != "rehearsal") {
			t.Errorf("mode %q: %s %v", c.mode, st.Status, st.Outputs)
		}
		if want := string(c.mode); rep.Mode != want && !(want == "" && rep.Mode == "run") {
			t.Errorf("mode %q: the report says %q", c.mode, rep.Mode)
		}
	}
}
