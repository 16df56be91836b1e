package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/engine/enginetest"
	"github.com/cessda/runbook/steps/github/githubsim"
)

// subtasksFixture opens release issue #1 and its subtasks #2 (notes) and #3 (docs).
func subtasksFixture(t *testing.T) *fixture {
	f := setup(t)
	f.run(t, f.step(t, "github.release_issue", releaseIssueWith()))
	f.run(t, f.step(t, "github.subtask_issues", map[string]any{"repo": tracker, "release_issue": 1, "version": "3.6.1", "tool": "CVS"}))
	return f
}

// runDone runs github.subtasks_done and asserts it wrote nothing.
func (f *fixture) runDone(t *testing.T, with map[string]any) (engine.Outputs, error) {
	t.Helper()
	w := f.sim.WriteCount()
	out, err := f.step(t, "github.subtasks_done", with).Run(context.Background(), f.ctx.StepContext)
	if f.sim.WriteCount() != w {
		t.Fatal("github.subtasks_done wrote")
	}
	return out, err
}

// The run waits while subtasks are open, naming each, and goes on once they are closed.
func TestSubtasksDoneWaitsForOpenSubtasks(t *testing.T) {
	f := subtasksFixture(t)
	with := map[string]any{"repo": tracker, "issue": 1}

	p := f.plan(t, f.step(t, "github.subtasks_done", with))
	if !p.NoChange || len(p.Details) != 3 || p.Details[0] != "#2 Release notes for version 3.6.1 of CVS (open)" || !strings.Contains(p.Details[2], "2 of 2 open now") {
		t.Fatalf("plan %+v", p)
	}

	_, err := f.runDone(t, with)
	var we *engine.WaitingError
	want := `pre-release activities not concluded: #2 Release notes for version 3.6.1 of CVS (open), #3 Update user documentation for version 3.6.1 of CVS (open): close them, or skip this step with a reason: runbook resume test-run --skip gh --reason "..."`
	if !errors.As(err, &we) || we.Reason != want {
		t.Fatalf("want waiting:\n%s\ngot %v", want, err)
	}
	if ok, _ := engine.IsTransient(err); ok {
		t.Fatal("waiting must not be transient")
	}

	// One closed: the other is still waited for, alone.
	if err := f.sim.CloseIssue(tracker, 2, ""); err != nil {
		t.Fatal(err)
	}
	_, err = f.runDone(t, with)
	if !errors.As(err, &we) || strings.Contains(we.Reason, "#2") || !strings.Contains(we.Reason, "not concluded: #3 Update user documentation for version 3.6.1 of CVS (open): close them") {
		t.Fatalf("after closing #2: %v", err)
	}
	if p := f.plan(t, f.step(t, "github.subtasks_done", with)); !strings.Contains(strings.Join(p.Details, "\n"), "#2 Release notes for version 3.6.1 of CVS (closed)\n#3 Update user documentation for version 3.6.1 of CVS (open)\n1 of 2 open now") {
		t.Fatalf("plan %+v", p)
	}

	// Both closed (one as not planned: a person decided so): concluded.
	if err := f.sim.CloseIssue(tracker, 3, "not_planned"); err != nil {
		t.Fatal(err)
	}
	out, err := f.runDone(t, with)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out["closed"], []int{2, 3}) || out["count"] != 2 {
		t.Fatalf("outputs %v", out)
	}
	if !strings.Contains(f.ctx.LogText(), "#3 Update user documentation for version 3.6.1 of CVS (closed as not planned)") {
		t.Fatalf("log:\n%s", f.ctx.LogText())
	}
	// Read-only, so running again is the same answer.
	if out2, err := f.runDone(t, with); err != nil || fmt.Sprint(out2) != fmt.Sprint(out) {
		t.Fatalf("second run: %v %v", out2, err)
	}
	if p := f.plan(t, f.step(t, "github.subtasks_done", with)); len(p.Details) != 2 {
		t.Fatalf("plan with all closed %+v", p)
	}
}

// The numbers output of github.subtask_issues, passed as subtasks, is used as given:
// the release issue's links are not read.
func TestSubtasksDoneGivenNumbers(t *testing.T) {
	f := subtasksFixture(t)
	for _, n := range []int{2, 3} {
		if err := f.sim.CloseIssue(tracker, n, ""); err != nil {
			t.Fatal(err)
		}
	}
	f.sim.ResetRequests()
	out, err := f.runDone(t, map[string]any{"repo": tracker, "issue": 1, "subtasks": []any{3, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out["closed"], []int{3, 2}) || out["count"] != 2 {
		t.Fatalf("outputs %v", out)
	}
	if n := countPath(f, "/repos/"+tracker+"/issues/1"); n != 0 {
		t.Fatalf("read the release issue %d times", n)
	}
	// An open one given explicitly is waited for.
	n := f.sim.AddIssue(tracker, githubsim.Issue{Title: "Translate the user guide"})
	_, err = f.runDone(t, map[string]any{"repo": tracker, "issue": 1, "subtasks": []any{2, n}})
	var we *engine.WaitingError
	if !errors.As(err, &we) || !strings.Contains(we.Reason, fmt.Sprintf("not concluded: #%d Translate the user guide (open): close them", n)) {
		t.Fatalf("want waiting: %v", err)
	}
}

// No subtask linked and none given is a mistake in the playbook, not a success.
func TestSubtasksDoneNoneLinked(t *testing.T) {
	f := setup(t)
	f.run(t, f.step(t, "github.release_issue", releaseIssueWith()))
	_, err := f.runDone(t, map[string]any{"repo": tracker, "issue": 1})
	var we *engine.WaitingError
	if err == nil || errors.As(err, &we) || !strings.Contains(err.Error(), "release issue #1 in cessda/cessda.cvs.two links no subtask issue") || !strings.Contains(err.Error(), "run github.subtask_issues before this step") {
		t.Fatalf("want an error: %v", err)
	}
	if _, err := f.step(t, "github.subtasks_done", map[string]any{"repo": tracker, "issue": 1}).Plan(context.Background(), f.ctx.StepContext); err == nil {
		t.Fatal("plan should say so too")
	}
}

// Before the release issue exists, the plan asks nothing.
func TestSubtasksDonePlanUnknown(t *testing.T) {
	f := setup(t)
	pctx := enginetest.NewContext(t, "plan", f.ctx.Conns["github"])
	pctx.SetUnknown("issue")
	p, err := f.step(t, "github.subtasks_done", map[string]any{"repo": tracker, "issue": 0}).Plan(context.Background(), pctx.StepContext)
	if err != nil || !strings.Contains(p.Action, "release issue #(known after run)") || !p.NoChange {
		t.Fatalf("plan %+v %v", p, err)
	}
	pctx.SetUnknown("subtasks")
	if _, err := f.step(t, "github.subtasks_done", map[string]any{"repo": tracker, "issue": 0, "subtasks": []any{}}).Plan(context.Background(), pctx.StepContext); err != nil {
		t.Fatal(err)
	}
	if n := len(f.sim.Requests()); n != 0 {
		t.Fatalf("%d requests", n)
	}
}

func TestLinkedSubtasks(t *testing.T) {
	body := "Part of #99.\n\n## Subtasks\n\n" + subtasksStart + "\n- #2 Release notes\n* [x] #3 Docs, see #7\n- #2 again\nnot a link #8\n" + subtasksEnd + "\n\n- #9 outside\n"
	if got := linkedSubtasks(body); !reflect.DeepEqual(got, []int{2, 3}) {
		t.Fatalf("got %v", got)
	}
	if got := linkedSubtasks("- #2 no markers"); got != nil {
		t.Fatalf("got %v", got)
	}
}

func TestPreflightSubtasksDone(t *testing.T) {
	f := setup(t)
	f.sim.SetPermission(canary, tracker, "pull")
	if err := f.preflight(t, "github.subtasks_done", map[string]any{"repo": tracker, "issue": 1}); err != nil {
		t.Fatal(err)
	}
	if f.sim.Count(http.MethodGet, "/repos/"+tracker+"/issues") != 0 {
		t.Fatal("preflight read issues")
	}
}
