package engine_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
)

// policyPlaybook is a release in miniature: a deploy, a production check, an announcement,
// and an on_failure that rolls back only when failure.rollback says so and always records
// why the release stopped. %[1]s is the check's on_error, %[2]s the announcement's; the
// test.flaky keys (%[3]s-...) say which steps fail.
const policyPlaybook = `runbook: v1
product: demo
inputs:
  check_fails: {type: bool, default: false}
  announce_fails: {type: bool, default: false}
steps:
  - id: deploy
    type: test.echo
    left_behind: '${{ steps.revert.status == "succeeded" ? "" : "production runs the new build (" + failure.status + ")" }}'
    with: {message: deployed}
  - id: check
    name: Production is verified
    type: test.flaky
    on_error: %[1]s
    with: {key: "%[3]s-check", fatal: "${{ inputs.check_fails }}"}
  - id: stable
    type: test.gate
    on_error: rollback
    with: {decision: wait}
  - id: announce
    type: test.flaky
    on_error: %[2]s
    with: {key: "%[3]s-announce", fatal: "${{ inputs.announce_fails }}"}
on_failure:
  - id: revert
    type: test.echo
    rollback: true
    when: failure.rollback && steps.deploy.status == "succeeded"
    with: {message: "reverted because ${{ failure.error }} (asked by ${{ failure.by }})"}
  - id: record
    type: test.echo
    with: {message: "stopped at ${{ failure.step }}: ${{ failure.error }}; rollback ${{ failure.rollback }}"}
`

func policyRun(t *testing.T, check, announce string, set map[string]string, opts engine.Options) (*engine.Playbook, *engine.Report, string) {
	t.Helper()
	key := fmt.Sprintf("policy-%d", time.Now().UnixNano())
	pb, err := engine.Parse("policy.yaml", []byte(fmt.Sprintf(policyPlaybook, check, announce, key)))
	if err != nil {
		t.Fatal(err)
	}
	in, err := pb.ResolveInputs(set)
	if err != nil {
		t.Fatal(err)
	}
	opts.Inputs = in
	if opts.Store == nil {
		opts.Store = &engine.MemStore{}
	}
	rep, err := engine.Execute(context.Background(), pb, opts)
	if err != nil {
		t.Fatal(err)
	}
	return pb, rep, key
}

// TestFailedAnnouncementNeverRollsBack: an announcement whose on_error is warn fails; the
// release goes on, production is not touched, and the report says what to act on.
func TestFailedAnnouncementNeverRollsBack(t *testing.T) {
	store := &engine.MemStore{}
	pb, rep, _ := policyRun(t, "rollback", "warn", map[string]string{"announce_fails": "true"}, engine.Options{Store: store})
	if rep.Status != engine.RunWaiting || rep.FailedStep != "stable" {
		t.Fatalf("status %s at %s", rep.Status, rep.FailedStep)
	}
	rep, err := engine.Resume(context.Background(), pb, engine.Options{Store: store, Confirm: map[string]engine.Confirmation{"stable": {By: "owner", Answer: "yes", At: time.Now()}}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != engine.RunSucceeded {
		t.Fatalf("status %s (%s)", rep.Status, rep.Reason)
	}
	if s := rep.Step("revert").Status; s != engine.StepPending {
		t.Errorf("revert %s: a failed announcement must not roll back", s)
	}
	if len(rep.Warnings) != 1 || rep.Warnings[0].Step != "announce" || !strings.Contains(rep.Warnings[0].Message, "permanent failure") {
		t.Errorf("warnings %+v", rep.Warnings)
	}
}

// TestFailedCheckRollsBack: a production check whose on_error is rollback fails: the run
// rolls back, and on_failure knows why and that it is a rollback.
func TestFailedCheckRollsBack(t *testing.T) {
	_, rep, _ := policyRun(t, "rollback", "warn", map[string]string{"check_fails": "true"}, engine.Options{})
	if rep.Status != engine.RunRolledBack || rep.FailedStep != "check" {
		t.Fatalf("status %s at %s (%s)", rep.Status, rep.FailedStep, rep.Reason)
	}
	if got := rep.Step("record").Outputs["text"]; got != "stopped at check: permanent failure; rollback true" {
		t.Errorf("record: %v", got)
	}
}

// TestStopThenRollbackOnRequest: a check whose on_error is stop fails: nothing is undone,
// the release issue is told why (record), and the run stays resumable. A person then asks
// for the rollback with a reason: the revert runs, recorded with who and why, and the
// record step runs again for the new ending.
func TestStopThenRollbackOnRequest(t *testing.T) {
	store := &engine.MemStore{}
	pb, rep, _ := policyRun(t, "stop", "warn", map[string]string{"check_fails": "true"}, engine.Options{Store: store})
	if rep.Status != engine.RunFailed || rep.FailedStep != "check" {
		t.Fatalf("status %s at %s", rep.Status, rep.FailedStep)
	}
	if rep.Step("revert").Status != engine.StepSkipped || rep.Step("record").Outputs["text"] != "stopped at check: permanent failure; rollback false" {
		t.Fatalf("stop undid something or recorded nothing: revert %s, record %v", rep.Step("revert").Status, rep.Step("record").Outputs)
	}
	// The report says what the stopped release left behind.
	if len(rep.LeftBehind) != 1 || rep.LeftBehind[0].Step != "deploy" || rep.LeftBehind[0].What != "production runs the new build (failed)" {
		t.Errorf("left behind after the stop: %+v", rep.LeftBehind)
	}
	rep, err := engine.Resume(context.Background(), pb, engine.Options{Store: store, Actor: "erin", Rollback: "the checks fail"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != engine.RunRolledBack {
		t.Fatalf("status %s (%s)", rep.Status, rep.Reason)
	}
	if got := rep.Step("revert").Outputs["text"]; got != "reverted because rollback requested by erin: the checks fail (asked by erin)" {
		t.Errorf("revert: %v", got)
	}
	if got := rep.Step("record").Outputs["text"]; got != "stopped at check: rollback requested by erin: the checks fail; rollback true" {
		t.Errorf("record after the rollback: %v", got)
	}
	last := rep.Choices[len(rep.Choices)-1]
	if last.Action != "rollback" || last.By != "erin" || last.Reason != "the checks fail" || last.Step != "check" {
		t.Errorf("choice %+v", last)
	}
	// The revert undid the deploy: nothing is left behind.
	if len(rep.LeftBehind) != 0 {
		t.Errorf("left behind after the rollback: %+v", rep.LeftBehind)
	}
	// The check itself stays failed: the rollback did not pretend it passed.
	if rep.Step("check").Status != engine.StepFailed {
		t.Errorf("check %s", rep.Step("check").Status)
	}
}

// TestRollbackOfWaitingRun: a run waiting at the stable gate is rolled back on request:
// the gate is answered no, with who and why, and production is reverted.
func TestRollbackOfWaitingRun(t *testing.T) {
	store := &engine.MemStore{}
	pb, rep, _ := policyRun(t, "rollback", "warn", nil, engine.Options{Store: store})
	if rep.Status != engine.RunWaiting {
		t.Fatalf("status %s", rep.Status)
	}
	rep, err := engine.Resume(context.Background(), pb, engine.Options{Store: store, Actor: "owner", Rollback: "users report errors"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != engine.RunRolledBack || rep.Step("stable").Status != engine.StepRejected || rep.Step("announce").Status != engine.StepPending {
		t.Fatalf("status %s, stable %s, announce %s", rep.Status, rep.Step("stable").Status, rep.Step("announce").Status)
	}
	if !strings.Contains(rep.Step("stable").Error, "rollback requested by owner: users report errors") {
		t.Errorf("stable: %q", rep.Step("stable").Error)
	}
}

// TestGuidedRollback: at a failure the operator chooses to roll back, whatever the
// step's policy; a person's decision is recorded as such.
func TestGuidedRollback(t *testing.T) {
	var asked engine.GuideQuestion
	guide := func(_ context.Context, q engine.GuideQuestion) (engine.GuideChoice, error) {
		asked = q
		return engine.GuideChoice{Action: "rollback", Reason: "looks broken"}, nil
	}
	_, rep, _ := policyRun(t, "stop", "warn", map[string]string{"check_fails": "true"}, engine.Options{Actor: "dave", Guide: guide})
	if asked.Step != "check" || asked.Policy != engine.OnErrorStop || asked.Name != "Production is verified" {
		t.Errorf("asked %+v", asked)
	}
	if rep.Status != engine.RunRolledBack || !strings.Contains(rep.Reason, "rollback requested by dave (looks broken)") {
		t.Fatalf("status %s: %s", rep.Status, rep.Reason)
	}
}
