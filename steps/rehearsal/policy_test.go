package rehearsal_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/steps/github/githubsim"
	"github.com/cessda/runbook/steps/jenkins/jenkinssim"
	"github.com/cessda/runbook/steps/rehearsal"
	"github.com/cessda/runbook/steps/zenodo/zenodosim"
)

// policyWorld is a CVS rehearsal whose run's journal is kept, so a test can look at the
// release issue and resume the run.
type policyWorld struct {
	*world
	store *engine.MemStore
}

func newPolicyWorld(t *testing.T, inject func(*rehearsal.Sandbox)) (*policyWorld, *engine.Report) {
	t.Helper()
	set := map[string]string{"version": "3.7.0"}
	w := &policyWorld{world: newWorld(t, "cvs", set, rehearsal.Answers{}), store: &engine.MemStore{}}
	if inject != nil {
		inject(w.sb)
	}
	return w, w.releaseInto(set, w.store)
}

// issueComments are the comments on the release issue.
func (w *policyWorld) issueComments(t *testing.T, rep *engine.Report) []string {
	t.Helper()
	var n int
	fmt.Sscan(fmt.Sprint(rep.Step("release_issue").Outputs["number"]), &n)
	var out []string
	for _, c := range w.sb.GitHub.Comments("cessda/cessda.cvs.two", n) {
		out = append(out, c.Body)
	}
	if len(out) == 0 {
		t.Fatalf("no comments on release issue #%v", n)
	}
	return out
}

func (w *policyWorld) productionOn(t *testing.T, suffix string) {
	t.Helper()
	for name, images := range production(w.sb.State("3.7.0")) {
		if !strings.HasSuffix(images, suffix) {
			t.Errorf("production %s runs %s, want …%s", name, images, suffix)
		}
	}
}

func commentWith(comments []string, text string) string {
	for _, c := range comments {
		if strings.Contains(c, text) {
			return c
		}
	}
	return ""
}

// TestAnnouncementFailuresNeverRollBack: the chat webhook and the mail server refuse every
// message after the deploy. The messages are warnings to act on — in the report and in the
// release report posted on the release issue — and production stays on the release.
func TestAnnouncementFailuresNeverRollBack(t *testing.T) {
	for name, inject := range map[string]func(*rehearsal.Sandbox){
		"chat refuses": func(sb *rehearsal.Sandbox) { sb.Chat.FailNext(1000, http.StatusBadRequest) },
		"mail refuses": func(sb *rehearsal.Sandbox) { sb.SMTP.FailNext(1000, 550, "") },
	} {
		t.Run(name, func(t *testing.T) {
			w, rep := newPolicyWorld(t, inject)
			if rep.Status != engine.RunSucceeded {
				t.Fatalf("status %s at %s: %s", rep.Status, rep.FailedStep, rep.Reason)
			}
			w.productionOn(t, ":3.7.0")
			if s := rep.Step("rollback_job").Status; s != engine.StepPending {
				t.Errorf("rollback_job %s", s)
			}
			warned := map[string]bool{}
			for _, x := range rep.Warnings {
				warned[x.Step] = true
			}
			for _, id := range []string{"notify_verified"} {
				if !warned[id] {
					t.Errorf("no warning for %s: %+v", id, rep.Warnings)
				}
			}
			if !warned["announce_chat"] && !warned["announce_email"] {
				t.Errorf("no warning for the announcement: %+v", rep.Warnings)
			}
			if commentWith(w.issueComments(t, rep), "Warnings to act on") == "" {
				t.Error("the release report on the release issue does not show the warnings")
			}
		})
	}
}

// TestPublishingFailureStopsWithoutRollback: GitHub refuses to create the releases after
// production was verified and declared stable. The run stops, resumable; production stays
// on the release; the release issue says why and how to go on. Then the release manager
// asks for a rollback: production goes back, and the issue says so and who decided.
func TestPublishingFailureStopsWithoutRollback(t *testing.T) {
	w, rep := newPolicyWorld(t, func(sb *rehearsal.Sandbox) {
		sb.GitHub.Inject(githubsim.Fault{Kind: githubsim.ServerError, Method: http.MethodPost, Path: "/repos/*/*/releases", Status: http.StatusForbidden})
	})
	if rep.Status != engine.RunFailed || rep.FailedStep != "github_release" {
		t.Fatalf("status %s at %s: %s", rep.Status, rep.FailedStep, rep.Reason)
	}
	w.productionOn(t, ":3.7.0")
	for _, id := range []string{"rollback_job", "verify_rollback", "notify_reverted"} {
		if s := rep.Step(id).Status; s != engine.StepSkipped {
			t.Errorf("%s %s after a publishing failure", id, s)
		}
	}
	stop := commentWith(w.issueComments(t, rep), "stopped at step `github_release`")
	if !strings.Contains(stop, "Nothing was undone") || !strings.Contains(stop, "--rollback --reason") {
		t.Fatalf("the release issue does not say why the release stopped and how to go on:\n%s", stop)
	}

	rep, err := engine.Resume(context.Background(), w.pb, engine.Options{Store: w.store, Mode: "rehearsal", Clock: w.sb.Clock, Connect: w.sb.Connect, Actor: "release-manager", Rollback: "cannot publish today; back out and retry next week"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != engine.RunRolledBack {
		t.Fatalf("after --rollback: %s at %s: %s", rep.Status, rep.FailedStep, rep.Reason)
	}
	w.productionOn(t, ":previous")
	stop = commentWith(w.issueComments(t, rep), "stopped at step `github_release`")
	if !strings.Contains(stop, "Production was rolled back (decided by release-manager)") || !strings.Contains(stop, "cannot publish today") {
		t.Errorf("the release issue does not record the rollback:\n%s", stop)
	}
}

// TestFailurePolicies: one permanent failure injected into each kind of step after the
// deploy leads to what the playbook's on_error states for it.
func TestFailurePolicies(t *testing.T) {
	cases := []struct {
		name       string
		inject     func(*rehearsal.Sandbox)
		status     engine.RunStatus
		step       string
		production string
	}{
		{"smoke check (http.check) fails: roll back", func(sb *rehearsal.Sandbox) { sb.Public.FailNext(1000, http.StatusBadGateway) },
			engine.RunRolledBack, "smoke", ":previous"},
		{"Zenodo refuses the publication: stop", func(sb *rehearsal.Sandbox) {
			sb.Zenodo.Inject(zenodosim.Fault{Method: http.MethodPost, PathSuffix: "/actions/publish", Status: http.StatusBadRequest, Times: 1000})
		}, engine.RunFailed, "zenodo_publish", ":3.7.0"},
		{"the deploy job fails (jenkins.build): stop, nothing undone", func(sb *rehearsal.Sandbox) {
			params := []jenkinssim.Param{{Name: "RUNBOOK_RUN"}, {Name: "release_version"}, {Name: "frontend_image_tag"}, {Name: "userguide_image_tag"}, {Name: "contentguide_image_tag"}}
			sb.Jenkins.AddJob(jenkinssim.Job{Path: "cessda.cvs.deploy.prod", Params: params, Script: func(b *jenkinssim.Build) {
				b.Logf("ERROR: the cluster credentials expired")
				b.SetResult("FAILURE")
			}})
		}, engine.RunFailed, "deploy", ":previous"},
		{"closing the issue fails: stop", func(sb *rehearsal.Sandbox) {
			sb.GitHub.Inject(githubsim.Fault{Kind: githubsim.ServerError, Method: http.MethodPatch, Path: "/repos/*/*/milestones/*", Status: http.StatusForbidden})
		}, engine.RunFailed, "close", ":3.7.0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, rep := newPolicyWorld(t, c.inject)
			if rep.Status != c.status || rep.FailedStep != c.step {
				t.Fatalf("status %s at %s (%s), want %s at %s", rep.Status, rep.FailedStep, rep.Reason, c.status, c.step)
			}
			w.productionOn(t, c.production)
			stop := commentWith(w.issueComments(t, rep), "stopped at step `"+c.step+"`")
			if stop == "" {
				t.Error("the release issue does not say why the release stopped")
			}
			if c.status == engine.RunFailed && !strings.Contains(stop, "Nothing was undone") {
				t.Errorf("a stop undid something, or does not say it did not:\n%s", stop)
			}
		})
	}
}
