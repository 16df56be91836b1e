package rehearsal_test

import (
	"context"
	"strings"
	"testing"

	"github.com/cessda/runbook/engine"
	_ "github.com/cessda/runbook/steps/all"
	"github.com/cessda/runbook/steps/rehearsal"
	v1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func rehearse(t *testing.T, ans rehearsal.Answers) (*engine.Report, *rehearsal.Sandbox) {
	t.Helper()
	pb, err := engine.LoadFile("testdata/mini.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in, err := pb.ResolveInputs(map[string]string{"version": "1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := rehearsal.New(context.Background(), pb, in, ans)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	rep, err := engine.Execute(context.Background(), pb, engine.Options{Inputs: in, Mode: "rehearsal", Clock: sb.Clock, Connect: sb.Connect, Actor: "operator"})
	if err != nil {
		t.Fatal(err)
	}
	return rep, sb
}

func productionImage(t *testing.T, sb *rehearsal.Sandbox) string {
	d, err := sb.Clusters["production"].Clientset().AppsV1().Deployments("mini").Get(context.Background(), "mini-frontend", v1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d.Spec.Template.Spec.Containers[0].Image
}

// TestApprovedRelease: everything tagged, deployed, verified, published, announced, and
// the issue and milestone closed.
func TestApprovedRelease(t *testing.T) {
	rep, sb := rehearse(t, rehearsal.Answers{})
	if rep.Status != engine.RunSucceeded {
		t.Fatalf("status %s: %s at %s", rep.Status, rep.Reason, rep.FailedStep)
	}
	if _, _, ok := sb.GitHub.TagInfo("example/mini", "1.2.3"); !ok {
		t.Error("no tag 1.2.3")
	}
	if is, _ := sb.GitHub.GetIssue("example/mini", 1); is.State != "closed" {
		t.Errorf("release issue is %s", is.State)
	}
	if got := productionImage(t, sb); !strings.HasSuffix(got, ":1.2.3") {
		t.Errorf("production runs %s", got)
	}
	if n := sb.Jenkins.Triggers("cessda.mini.deploy.prod"); n != 1 {
		t.Errorf("deploy.prod triggered %d times", n)
	}
	if msgs := sb.SMTP.Messages(); len(msgs) != 1 || msgs[0].Subject != "Mini 1.2.3 released" {
		t.Errorf("announcements: %+v", msgs)
	}
	if len(sb.Chat.Posts()) != 1 {
		t.Errorf("chat posts: %d", len(sb.Chat.Posts()))
	}
	if rep.Step("approval").Outputs["approver"] != "owner-a" {
		t.Errorf("approver %v", rep.Step("approval").Outputs["approver"])
	}
}

// TestRefusedRelease: the service owner refuses: nothing is tagged or deployed, and the
// report says rejected with the reason.
func TestRefusedRelease(t *testing.T) {
	rep, sb := rehearse(t, rehearsal.Answers{Refuse: "tests fail on staging"})
	if rep.Status != engine.RunRejected || !strings.Contains(rep.Reason, "tests fail on staging") {
		t.Fatalf("status %s: %s", rep.Status, rep.Reason)
	}
	if _, _, ok := sb.GitHub.TagInfo("example/mini", "1.2.3"); ok {
		t.Error("tagged after a refusal")
	}
	if n := sb.Jenkins.Triggers("cessda.mini.deploy.prod"); n != 0 {
		t.Errorf("deployed after a refusal (%d)", n)
	}
	if rep.Step("rollback").Status != engine.StepSkipped {
		t.Errorf("rollback %s before anything was deployed", rep.Step("rollback").Status)
	}
}

// TestBrokenProductionRollsBack: the deployed build never becomes ready: verification
// fails, the rollback runs, production runs the previous build, the run is rolled_back.
func TestBrokenProductionRollsBack(t *testing.T) {
	rep, sb := rehearse(t, rehearsal.Answers{Broken: true})
	if rep.Status != engine.RunRolledBack || rep.FailedStep != "production" {
		t.Fatalf("status %s at %s: %s", rep.Status, rep.FailedStep, rep.Reason)
	}
	if got := productionImage(t, sb); !strings.HasSuffix(got, ":previous") {
		t.Errorf("production runs %s after the rollback", got)
	}
	if rep.Step("tell_owner").Status != engine.StepSucceeded {
		t.Errorf("the service owner was not told: %s", rep.Step("tell_owner").Status)
	}
}

// TestRevertAfterDeploy: the service owner answers the post-deployment gate with /revert.
func TestRevertAfterDeploy(t *testing.T) {
	rep, sb := rehearse(t, rehearsal.Answers{Revert: "search is broken"})
	if rep.Status != engine.RunRolledBack || rep.FailedStep != "stable" || !strings.Contains(rep.Reason, "search is broken") {
		t.Fatalf("status %s at %s: %s", rep.Status, rep.FailedStep, rep.Reason)
	}
	if got := productionImage(t, sb); !strings.HasSuffix(got, ":previous") {
		t.Errorf("production runs %s after the revert", got)
	}
}
