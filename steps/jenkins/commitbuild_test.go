package jenkins_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/engine/enginetest"
	"github.com/cessda/runbook/steps/jenkins"
	"github.com/cessda/runbook/steps/jenkins/jenkinssim"
)

const (
	ciJob     = "cessda.cvs.two/main"
	release   = "9ae2e6ec0f5b5d3c2a4e8d1b7f6a0c9e8d7b6a51"
	otherSHA  = "1234abcd5678ef901234abcd5678ef901234abcd"
	remote    = "https://github.com/cessda/cessda.cvs.two.git"
	libRemote = "https://github.com/cessda/cessda.jenkins.library.git"
	libSHA    = "ffffeeee0000111122223333444455556666aaaa"
)

// ciScript builds for d, then "pushes" the image main-N.
func ciScript(d time.Duration, result string, pushed *[]string) func(b *jenkinssim.Build) {
	return func(b *jenkinssim.Build) {
		b.AddBuildData(libSHA, libRemote) // the shared library is checked out too
		b.Logf("building %s", b.Revision())
		b.Sleep(d)
		if pushed != nil {
			*pushed = append(*pushed, "main-"+itoa(b.Number()))
		}
		b.SetResult(result)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func commitStep(t *testing.T, extra map[string]any) engine.Step {
	with := map[string]any{"connection": "jenkins", "job": ciJob, "commit": release}
	for k, v := range extra {
		with[k] = v
	}
	return enginetest.Decode(t, "jenkins.commit_build", with)
}

func TestCommitBuildWaitsForCIToBuildTheCommit(t *testing.T) {
	var pushed []string
	f := setup(t, jenkinssim.WithJobs(jenkinssim.Job{Path: ciJob, Script: ciScript(5*time.Minute, jenkinssim.Success, &pushed)}))
	f.srv.SeedCommitBuild(ciJob, otherSHA, remote, jenkinssim.Success) // an older commit
	// the push arrives while the step waits
	orig := f.ctx.LogFunc
	f.ctx.LogFunc = func(line string) {
		orig(line)
		if strings.Contains(line, "waiting for CI to build commit") {
			f.ctx.Clock.(*engine.FakeClock).Advance(2 * time.Minute)
			f.srv.BuildCommit(ciJob, release, remote)
		}
	}
	start := f.ctx.Now()
	// a short, upper-case commit matches as a prefix
	out, err := commitStep(t, map[string]any{"commit": strings.ToUpper(release[:10])}).Run(context.Background(), f.ctx.StepContext)
	if err != nil {
		t.Fatal(err)
	}
	want := engine.Outputs{"number": 2, "url": f.srv.URL() + "/job/cessda.cvs.two/job/main/2/", "commit": release,
		"image_tag": "main-2", "result": "SUCCESS", "job": ciJob}
	for k, v := range want {
		if out[k] != v {
			t.Errorf("output %s = %v, want %v", k, out[k], v)
		}
	}
	if len(pushed) != 1 || pushed[0] != "main-2" {
		t.Errorf("pushed %v", pushed)
	}
	log := f.ctx.LogText()
	for _, s := range []string{"waiting for CI to build commit 9AE2E6EC in cessda.cvs.two/main", "CI build cessda.cvs.two/main #2 of commit 9AE2E6EC is running"} {
		if strings.Count(log, s) != 1 {
			t.Errorf("log has %q %d times:\n%s", s, strings.Count(log, s), log)
		}
	}
	if f.ctx.Links()["CI build cessda.cvs.two/main #2"] != want["url"] {
		t.Errorf("links %v", f.ctx.Links())
	}
	if waited := f.ctx.Now().Sub(start); waited < 7*time.Minute || waited > 9*time.Minute {
		t.Errorf("waited %s for a build pushed after 2m that takes 5m", waited)
	}
	if len(f.srv.Writes()) != 0 {
		t.Errorf("a read-only step wrote: %v", f.srv.Writes())
	}
}

func TestCommitBuildFailedIsNotAccepted(t *testing.T) {
	f := setup(t, jenkinssim.WithJobs(jenkinssim.Job{Path: ciJob}))
	f.srv.SeedCommitBuild(ciJob, release, remote, jenkinssim.Success)
	f.srv.SeedCommitBuild(ciJob, release, remote, jenkinssim.Failure) // rebuilt, and it failed: the newest counts
	_, err := commitStep(t, nil).Run(context.Background(), f.ctx.StepContext)
	if err == nil || !strings.Contains(err.Error(), "CI build #2 of commit 9ae2e6ec in cessda.cvs.two/main ended FAILURE ("+f.srv.URL()+"/job/cessda.cvs.two/job/main/2/)") {
		t.Fatalf("error = %v", err)
	}
	if ok, _ := engine.IsTransient(err); ok {
		t.Error("a failed CI build must not be retried")
	}
	// naming the older, good build of the commit is accepted
	out, err := commitStep(t, map[string]any{"build": "main-1"}).Run(context.Background(), f.ctx.StepContext)
	if err != nil || out["number"] != 1 || out["image_tag"] != "main-1" {
		t.Fatalf("out %v err %v", out, err)
	}
}

func TestCommitBuildTimesOut(t *testing.T) {
	f := setup(t, jenkinssim.WithJobs(jenkinssim.Job{Path: ciJob}))
	f.srv.SeedCommitBuild(ciJob, otherSHA, remote, jenkinssim.Success)
	_, err := commitStep(t, map[string]any{"timeout": "20m"}).Run(context.Background(), f.ctx.StepContext)
	if err == nil || !strings.Contains(err.Error(), "gave up after 20m0s: CI has not built commit 9ae2e6ec in cessda.cvs.two/main (its newest build #1 built commit 1234abcd)") {
		t.Fatalf("error = %v", err)
	}
	var reads int
	for _, r := range f.srv.Requests() {
		if r.Path == "/job/cessda.cvs.two/job/main/api/json" {
			reads++
		}
	}
	if reads < 40 || reads > 42 {
		t.Errorf("%d reads in 20m polling every 30s", reads)
	}
}

func TestCommitBuildOverride(t *testing.T) {
	f := setup(t, jenkinssim.WithJobs(jenkinssim.Job{Path: ciJob, Script: ciScript(time.Minute, jenkinssim.Success, nil)}))
	other := f.srv.BuildCommit(ciJob, otherSHA, remote)
	ours := f.srv.BuildCommit(ciJob, release, remote)
	// the build of the tagged commit, named by its image tag, still running: waited for
	out, err := commitStep(t, map[string]any{"build": "main-2", "repo": "cessda/cessda.cvs.two"}).Run(context.Background(), f.ctx.StepContext)
	if err != nil || out["number"] != ours || out["commit"] != release || out["image_tag"] != "main-2" {
		t.Fatalf("out %v err %v", out, err)
	}
	// a build of another commit is refused, for good
	for _, extra := range []map[string]any{{"build": "main-1", "repo": "cessda/cessda.cvs.two"}, {"build": "1"}} {
		_, err = commitStep(t, extra).Run(context.Background(), f.ctx.StepContext)
		if err == nil {
			t.Fatalf("%v: build %d of another commit was accepted", extra, other)
		}
		if ok, _ := engine.IsTransient(err); ok {
			t.Errorf("retried: %v", err)
		}
		var we *engine.WaitingError
		if errors.As(err, &we) {
			t.Errorf("waits: %v", err)
		}
		msg := err.Error()
		for _, want := range []string{"(cessda.cvs.two/main #1) built commit", "but the release commit is 9ae2e6ec: it is not the build of the tagged commit",
			"leave the override empty so runbook waits for CI to build the tagged commit"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error lacks %q: %s", want, msg)
			}
		}
		if extra["repo"] != nil && !strings.Contains(msg, "build main-1 (cessda.cvs.two/main #1) built commit 1234abcd, but") {
			t.Errorf("error = %s", msg)
		}
		if extra["repo"] == nil && !strings.Contains(msg, "built commits 1234abcd ("+remote+"), ffffeeee ("+libRemote+")") {
			t.Errorf("error = %s", msg)
		}
	}
	// a build that does not exist
	if _, err := commitStep(t, map[string]any{"build": "main-99"}).Run(context.Background(), f.ctx.StepContext); !errors.Is(err, jenkins.ErrBuildNotFound) {
		t.Errorf("error = %v", err)
	}
}

func TestCommitBuildPlan(t *testing.T) {
	f := setup(t, jenkinssim.WithJobs(jenkinssim.Job{Path: ciJob}))
	plan, err := commitStep(t, nil).Plan(context.Background(), f.ctx.StepContext)
	if err != nil || !plan.NoChange || plan.Action != "wait for the CI build of commit 9ae2e6ec in cessda.cvs.two/main" ||
		!strings.Contains(strings.Join(plan.Details, "\n"), "CI has not built commit 9ae2e6ec yet") {
		t.Errorf("plan = %+v, %v", plan, err)
	}
	n := f.srv.SeedCommitBuild(ciJob, release, remote, jenkinssim.Success)
	plan, err = commitStep(t, nil).Plan(context.Background(), f.ctx.StepContext)
	if err != nil || !strings.Contains(strings.Join(plan.Details, "\n"), "CI build cessda.cvs.two/main #1 (SUCCESS) built commit 9ae2e6ec: image tag main-1") || n != 1 {
		t.Errorf("plan = %+v, %v", plan, err)
	}
	// an override of another commit fails the plan, before anything runs
	f.srv.SeedCommitBuild(ciJob, otherSHA, remote, jenkinssim.Success)
	if _, err := commitStep(t, map[string]any{"build": "main-2"}).Plan(context.Background(), f.ctx.StepContext); err == nil ||
		!strings.Contains(err.Error(), "not the build of the tagged commit") {
		t.Errorf("plan error = %v", err)
	}
	// a commit known only later: no look-up
	before := len(f.srv.Requests())
	c := enginetest.NewContext(t, "ci")
	c.Conns = f.ctx.Conns
	c.SetUnknown("commit")
	plan, err = commitStep(t, nil).Plan(context.Background(), c.StepContext)
	if err != nil || plan.Action != "wait for the CI build of commit (known after run) in cessda.cvs.two/main" || len(f.srv.Requests()) != before {
		t.Errorf("plan = %+v, %v", plan, err)
	}
	if len(f.srv.Writes()) != 0 {
		t.Errorf("writes %v", f.srv.Writes())
	}
	// a missing job fails the plan
	if _, err := commitStep(t, map[string]any{"job": "cessda.cvs.nope/main"}).Plan(context.Background(), f.ctx.StepContext); !errors.Is(err, jenkins.ErrJobNotFound) {
		t.Errorf("plan of a missing job: %v", err)
	}
}

func TestCommitBuildValidate(t *testing.T) {
	st, _ := engine.LookupStepType("jenkins.commit_build")
	for _, with := range []map[string]any{
		{"job": ciJob, "commit": "9ae2e6"},
		{"job": ciJob, "commit": "not-a-sha"},
		{"job": ciJob, "commit": release + "0"},
		{"job": ciJob, "commit": release, "repo": "https://github.com/cessda/x"},
		{"job": ciJob, "commit": release, "build": "main-latest"},
		{"job": ciJob, "commit": release, "image_tag_format": "{branch}-{build}"},
		{"job": ciJob, "commit": release, "accept": []any{"GREEN"}},
		{"job": "/", "commit": release},
	} {
		s, err := engine.DecodeParams(st, with)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.(engine.Validator).Validate(); err == nil {
			t.Errorf("%v: no validation error", with)
		}
	}
	s := commitStep(t, map[string]any{"build": "950", "repo": "cessda/cessda.cvs.two", "image_tag_format": "{commit}"})
	if err := s.(engine.Validator).Validate(); err != nil {
		t.Error(err)
	}
}

func TestClientReadsBuildDataAndCauses(t *testing.T) {
	f := setup(t, jenkinssim.WithJobs(jenkinssim.Job{Path: ciJob, Script: ciScript(time.Minute, jenkinssim.Success, nil)}))
	f.srv.BuildCommit(ciJob, release, remote)
	c, err := jenkins.NewClient(f.srv.URL(), user, canary, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Trigger(context.Background(), ciJob, nil); err != nil {
		t.Fatal(err)
	}
	f.ctx.Clock.(*engine.FakeClock).Advance(time.Hour)
	bs, err := c.CommitBuilds(context.Background(), ciJob, 10)
	if err != nil || len(bs) != 2 {
		t.Fatalf("builds %v err %v", bs, err)
	}
	if cs := bs[1].Causes(); len(cs) != 1 || cs[0].Class != "jenkins.branch.BranchEventCause" || cs[0].ShortDescription != "Push event to branch main" {
		t.Errorf("push causes %+v", cs)
	}
	if cs := bs[0].Causes(); len(cs) != 1 || cs[0].ShortDescription != "Started by user release-bot" || cs[0].UserID != "release-bot" {
		t.Errorf("user causes %+v", cs)
	}
	if bs[1].Revision("") != release || bs[1].Revision("cessda/cessda.jenkins.library") != libSHA || bs[0].Revision(remote) != "" {
		t.Errorf("revisions %+v / %+v", bs[1].Revisions(), bs[0].Revisions())
	}
	if r := bs[1].Revisions(); len(r) != 2 || r[0].Branches[0] != "refs/remotes/origin/main" {
		t.Errorf("revisions %+v", r)
	}
	for _, r := range f.srv.Requests() {
		if strings.Contains(r.Query, "parameters") {
			t.Errorf("asked for more than it needs: %s", r.Query)
		}
	}
	// a library's BuildData listed first: repo picks the component's
	var b jenkins.Build
	must(t, json.Unmarshal([]byte(`{"number":7,"actions":[{"_class":"hudson.model.CauseAction","causes":[{"shortDescription":"Push event to branch main"}]},
		{"_class":"hudson.plugins.git.util.BuildData","lastBuiltRevision":{"SHA1":"`+libSHA+`"},"remoteUrls":["git@github.com:cessda/cessda.jenkins.library.git"]},
		{"_class":"hudson.plugins.git.util.BuildData","lastBuiltRevision":{"SHA1":"`+release+`"},"remoteUrls":["https://github.com/CESSDA/cessda.cvs.two"]}]}`), &b))
	if b.Revision("cessda/cessda.cvs.two") != release || b.Revision("") != libSHA || b.Revision("cessda/other") != "" {
		t.Errorf("revisions %+v", b.Revisions())
	}
}

func TestSameRepo(t *testing.T) {
	for _, tc := range []struct {
		remote, repo string
		want         bool
	}{
		{"https://github.com/cessda/cessda.cvs.two.git", "cessda/cessda.cvs.two", true},
		{"https://github.com/CESSDA/cessda.cvs.two/", "cessda/cessda.cvs.two", true},
		{"git@github.com:cessda/cessda.cvs.two.git", "cessda/cessda.cvs.two", true},
		{"ssh://git@github.com/cessda/cessda.cvs.two.git", "https://github.com/cessda/cessda.cvs.two", true},
		{"https://token@github.com/cessda/cessda.cvs.two.git", "cessda/cessda.cvs.two", true},
		{"https://github.com/cessda/cessda.cvs.two-gui.git", "cessda/cessda.cvs.two", false},
		{"https://github.com/other/cessda.cvs.two.git", "cessda/cessda.cvs.two", false},
		{"", "cessda/cessda.cvs.two", false},
	} {
		if got := jenkins.SameRepo(tc.remote, tc.repo); got != tc.want {
			t.Errorf("SameRepo(%q, %q) = %v", tc.remote, tc.repo, got)
		}
	}
}
