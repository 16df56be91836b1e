package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/engine/enginetest"
	"github.com/cessda/runbook/steps/github/githubsim"
)

const canary = "ghp_CANARY0123456789canary"

type fixture struct {
	sim *githubsim.Server
	ctx *enginetest.Context
}

func setup(t *testing.T, opts ...githubsim.Option) *fixture {
	t.Helper()
	ctx := enginetest.NewContext(t, "gh")
	ctx.PlanHash = "plan-aaaa"
	ctx.Roles = map[string][]string{"service_owner": {"owner1"}}
	sim := githubsim.New(append([]githubsim.Option{githubsim.WithClock(ctx.Clock), githubsim.WithAutoCreate(), githubsim.WithToken(canary)}, opts...)...)
	t.Cleanup(sim.Close)
	ctx.Conns["github"] = &engine.Connection{Name: "github", Type: "github", URL: strings.TrimSuffix(sim.URL(), "/"), Token: canary}
	return &fixture{sim: sim, ctx: ctx}
}

func (f *fixture) step(t *testing.T, typ string, with map[string]any) engine.Step {
	return enginetest.Decode(t, typ, with)
}

// plan runs Plan and asserts it made no write.
func (f *fixture) plan(t *testing.T, s engine.Step) engine.Plan {
	t.Helper()
	before := f.sim.WriteCount()
	p, err := s.Plan(context.Background(), f.ctx.StepContext)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if n := f.sim.WriteCount() - before; n != 0 {
		t.Fatalf("plan made %d writes", n)
	}
	return p
}

func (f *fixture) run(t *testing.T, s engine.Step) engine.Outputs {
	t.Helper()
	out, err := s.Run(context.Background(), f.ctx.StepContext)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	f.noCanary(t, fmt.Sprint(out))
	return out
}

func (f *fixture) noCanary(t *testing.T, extra ...string) {
	t.Helper()
	for _, s := range append(extra, f.ctx.LogText()) {
		if strings.Contains(s, canary) {
			t.Fatalf("token leaked: %s", s)
		}
	}
}

const tracker = "cessda/cessda.cvs.two"

func releaseIssueWith() map[string]any {
	return map[string]any{"repo": tracker, "version": "3.6.1", "tool": "CVS", "purpose": "Bug fixes.", "checklist_url": "https://example.org/checklist", "report_url": "https://example.org/report"}
}

func TestReleaseIssue(t *testing.T) {
	f := setup(t)
	f.sim.AddIssue(tracker, githubsim.Issue{Title: "Fix search", Milestone: "3.6.1", Labels: []string{"bug"}})
	s := f.step(t, "github.release_issue", releaseIssueWith())
	p := f.plan(t, s)
	if !strings.Contains(p.Action, "create release issue") {
		t.Fatalf("plan: %+v", p)
	}
	out := f.run(t, s)
	if out["created"] != true || out["number"] != 2 {
		t.Fatalf("outputs %v", out)
	}
	is, _ := f.sim.GetIssue(tracker, 2)
	for _, want := range []string{"Bug fixes.", "Plan hash: `plan-aaaa`", "<!-- runbook:plan hash=plan-aaaa posted=2026-11-24T13:00:00Z -->", "- #1 Fix search", "- [ ] Backups taken before the release <!-- runbook:item=backups -->", "[Release checklist](https://example.org/checklist)", "[Release report](https://example.org/report)"} {
		if !strings.Contains(is.Body, want) {
			t.Errorf("body lacks %q:\n%s", want, is.Body)
		}
	}
	if is.Title != "Release version 3.6.1 of CVS" || is.Milestone != "3.6.1" || len(is.Labels) != 1 || is.Labels[0] != "release" {
		t.Fatalf("issue %+v", is)
	}
	// Second run: no duplicate, no write.
	w := f.sim.WriteCount()
	out2 := f.run(t, f.step(t, "github.release_issue", releaseIssueWith()))
	if out2["created"] != false || out2["number"] != 2 || f.sim.WriteCount() != w || len(f.sim.Issues(tracker)) != 2 {
		t.Fatalf("second run: %v, writes %d->%d", out2, w, f.sim.WriteCount())
	}
	if p := f.plan(t, s); !p.NoChange {
		t.Fatalf("plan after run: %+v", p)
	}
	// A changed plan rewrites only the plan lines.
	f.ctx.PlanHash = "plan-bbbb"
	f.run(t, s)
	is2, _ := f.sim.GetIssue(tracker, 2)
	if !strings.Contains(is2.Body, "hash=plan-bbbb") || strings.Contains(is2.Body, "plan-aaaa") || strings.Count(is2.Body, "Plan hash:") != 1 {
		t.Fatalf("plan not updated:\n%s", is2.Body)
	}
}

func TestSubtaskIssues(t *testing.T) {
	f := setup(t)
	f.run(t, f.step(t, "github.release_issue", releaseIssueWith()))
	with := map[string]any{"repo": tracker, "release_issue": 1, "version": "3.6.1", "tool": "CVS"}
	f.plan(t, f.step(t, "github.subtask_issues", with))
	out := f.run(t, f.step(t, "github.subtask_issues", with))
	if fmt.Sprint(out["numbers"]) != "[2 3]" {
		t.Fatalf("outputs %v", out)
	}
	is, _ := f.sim.GetIssue(tracker, 1)
	if !strings.Contains(is.Body, "- #2 Release notes for version 3.6.1 of CVS\n- #3 Update user documentation") {
		t.Fatalf("not linked:\n%s", is.Body)
	}
	w := f.sim.WriteCount()
	out2 := f.run(t, f.step(t, "github.subtask_issues", with))
	if fmt.Sprint(out2["numbers"]) != "[2 3]" || f.sim.WriteCount() != w || len(f.sim.Issues(tracker)) != 3 {
		t.Fatalf("second run duplicated: %v writes %d->%d", out2, w, f.sim.WriteCount())
	}
}

func TestChecklistTickKeepsConcurrentEdits(t *testing.T) {
	f := setup(t)
	f.run(t, f.step(t, "github.release_issue", releaseIssueWith()))
	// A person adds a line between the step's read and its write.
	gets := 0
	f.sim.BeforeRequest(func(r *http.Request) {
		if r.Method == "GET" && strings.HasSuffix(r.URL.Path, "/issues/1") {
			gets++
			if gets == 2 {
				_ = f.sim.EditIssueBody(tracker, 1, func(b string) string { return b + "\nNote added by a person.\n" })
			}
		}
	})
	s := f.step(t, "github.checklist", map[string]any{"repo": tracker, "issue": 1, "key": "doi"})
	f.plan(t, s)
	out := f.run(t, s)
	is, _ := f.sim.GetIssue(tracker, 1)
	if out["ticked"] != true || !strings.Contains(is.Body, "- [x] DOI reserved in Zenodo") || !strings.Contains(is.Body, "Note added by a person.") || !strings.Contains(is.Body, "- [ ] Backups") {
		t.Fatalf("body:\n%s", is.Body)
	}
	w := f.sim.WriteCount()
	f.run(t, s)
	if f.sim.WriteCount() != w {
		t.Fatal("second tick wrote")
	}
}

func TestChecklistWaitGate(t *testing.T) {
	f := setup(t)
	f.run(t, f.step(t, "github.release_issue", releaseIssueWith()))
	_, err := f.step(t, "github.checklist", map[string]any{"repo": tracker, "issue": 1, "action": "wait", "key": "backups", "wait": false}).Run(context.Background(), f.ctx.StepContext)
	var we *engine.WaitingError
	if !errors.As(err, &we) {
		t.Fatalf("want waiting, got %v", err)
	}
	polls := 0
	f.sim.BeforeRequest(func(r *http.Request) {
		if r.Method == "GET" && strings.HasSuffix(r.URL.Path, "/issues/1") {
			if polls++; polls == 5 {
				_ = f.sim.TickCheckbox(tracker, 1, "Backups taken")
			}
		}
	})
	out := f.run(t, f.step(t, "github.checklist", map[string]any{"repo": tracker, "issue": 1, "action": "wait", "key": "backups"}))
	if out["ticked"] != true || polls != 5 {
		t.Fatalf("out %v polls %d", out, polls)
	}
}

// approvalFixture creates the release issue and returns an approval step's with.
func approvalFixture(t *testing.T, f *fixture, extra map[string]any) map[string]any {
	f.run(t, f.step(t, "github.release_issue", releaseIssueWith()))
	with := map[string]any{"repo": tracker, "issue": 1, "poll_interval": "1m", "timeout": "2h"}
	for k, v := range extra {
		with[k] = v
	}
	return with
}

func TestApprovalByApprover(t *testing.T) {
	f := setup(t)
	f.ctx.Roles["service_owner"] = []string{"owner1", "release-bot"}
	with := approvalFixture(t, f, nil)
	// People comment: a non-approver, the actor (self-approval), then the service owner.
	f.sim.AutoRespond(func(ev githubsim.Event) {
		if ev.Kind == "comment_created" && ev.User == "runbook-bot" && strings.Contains(ev.Body, "please approve") {
			_, _ = f.sim.Comment(tracker, 1, "random", "/approve")
			_, _ = f.sim.Comment(tracker, 1, "release-bot", "/approve")
			_, _ = f.sim.Comment(tracker, 1, "owner1", "/approve\nLooks good.")
		}
	})
	s := f.step(t, "github.approval", with)
	f.plan(t, s)
	out := f.run(t, s)
	if out["approver"] != "owner1" || out["plan_hash"] != "plan-aaaa" || !strings.Contains(out["comment_url"].(string), "#issuecomment-") {
		t.Fatalf("out %v", out)
	}
	ign := fmt.Sprint(out["ignored"])
	if !strings.Contains(ign, "random") || !strings.Contains(ign, "release-bot runs this release") {
		t.Fatalf("ignored not noted: %s", ign)
	}
	if !strings.Contains(f.ctx.LogText(), "ignored: random") {
		t.Fatal("log does not note the non-approver")
	}
	// Second run: the recorded approval, no new request comment.
	w := f.sim.WriteCount()
	f.run(t, s)
	if f.sim.WriteCount() != w {
		t.Fatal("second run wrote")
	}
}

func TestApprovalNonApproverOnlyTimesOut(t *testing.T) {
	f := setup(t)
	with := approvalFixture(t, f, map[string]any{"timeout": "30m"})
	_, _ = f.sim.Comment(tracker, 1, "random", "/approve")
	_, err := f.step(t, "github.approval", with).Run(context.Background(), f.ctx.StepContext)
	if err == nil || !strings.Contains(err.Error(), "no approval") {
		t.Fatalf("want timeout, got %v", err)
	}
	if ok, _ := engine.IsTransient(err); ok {
		t.Fatal("timeout must not be transient")
	}
}

func TestApprovalRejectWithReason(t *testing.T) {
	f := setup(t)
	with := approvalFixture(t, f, nil)
	_, _ = f.sim.Comment(tracker, 1, "owner1", "/reject test failures in staging\nSee the Jenkins run.")
	_, err := f.step(t, "github.approval", with).Run(context.Background(), f.ctx.StepContext)
	var re *engine.RejectedError
	if !errors.As(err, &re) || re.By != "owner1" || !strings.Contains(re.Reason, "test failures in staging") || !strings.Contains(re.Reason, "Jenkins") {
		t.Fatalf("want rejection, got %v", err)
	}
}

func TestApprovalStaleAndEdited(t *testing.T) {
	f := setup(t)
	f.run(t, f.step(t, "github.release_issue", releaseIssueWith()))
	// An approval of the old plan, then a new plan.
	_, _ = f.sim.Comment(tracker, 1, "owner1", "/approve")
	f.ctx.Clock.(*engine.FakeClock).Advance(time.Hour)
	f.ctx.PlanHash = "plan-new"
	_, err := f.step(t, "github.approval", map[string]any{"repo": tracker, "issue": 1, "wait": false}).Run(context.Background(), f.ctx.StepContext)
	var we *engine.WaitingError
	if !errors.As(err, &we) {
		t.Fatalf("stale approval counted: %v", err)
	}
	f.ctx.Clock.(*engine.FakeClock).Advance(time.Minute)
	id, _ := f.sim.Comment(tracker, 1, "owner1", "LGTM")
	f.ctx.Clock.(*engine.FakeClock).Advance(time.Minute)
	_ = f.sim.EditComment(id, "/approve") // edited into an approval: does not count
	_, err = f.step(t, "github.approval", map[string]any{"repo": tracker, "issue": 1, "wait": false}).Run(context.Background(), f.ctx.StepContext)
	if !errors.As(err, &we) {
		t.Fatalf("edited approval counted: %v", err)
	}
	is, _ := f.sim.GetIssue(tracker, 1)
	if !strings.Contains(is.Body, "hash=plan-new") {
		t.Fatalf("plan not re-posted:\n%s", is.Body)
	}
	cs := f.sim.Comments(tracker, 1)
	if !strings.Contains(cs[1].Body, "stale") {
		t.Fatalf("no stale notice: %q", cs[1].Body)
	}
	f.ctx.Clock.(*engine.FakeClock).Advance(time.Minute)
	_, _ = f.sim.Comment(tracker, 1, "owner1", "/approve")
	out := f.run(t, f.step(t, "github.approval", map[string]any{"repo": tracker, "issue": 1, "wait": false}))
	if out["plan_hash"] != "plan-new" {
		t.Fatalf("out %v", out)
	}
}

func TestApprovalSelfApprovalAllowed(t *testing.T) {
	f := setup(t)
	f.ctx.Roles["service_owner"] = []string{"release-bot"}
	with := approvalFixture(t, f, map[string]any{"allow_self_approval": true, "wait": false})
	_, _ = f.sim.Comment(tracker, 1, "release-bot", "/approve")
	if out := f.run(t, f.step(t, "github.approval", with)); out["approver"] != "release-bot" {
		t.Fatalf("out %v", out)
	}
}

func TestApprovalUnderFaults(t *testing.T) {
	f := setup(t)
	with := approvalFixture(t, f, nil)
	f.sim.Inject(githubsim.Fault{Kind: githubsim.ServerError, Method: "GET", Path: "/repos/*", Times: 4})
	f.sim.Inject(githubsim.Fault{Kind: githubsim.SecondaryLimit, Method: "GET", Path: "/repos/*/*/issues/*/comments", Times: 1, RetryAfter: 90 * time.Second})
	f.sim.Inject(githubsim.Fault{Kind: githubsim.Drop, Method: "GET", Path: "/repos/*", Times: 2})
	f.sim.Inject(githubsim.Fault{Kind: githubsim.Slow, Method: "GET", Delay: 5 * time.Millisecond, Times: 3})
	polls := 0
	f.sim.BeforeRequest(func(r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/comments") && r.Method == "GET" {
			if polls++; polls == 12 {
				_, _ = f.sim.Comment(tracker, 1, "owner1", "/approve")
			}
		}
	})
	out := f.run(t, f.step(t, "github.approval", with))
	if out["approver"] != "owner1" {
		t.Fatalf("out %v", out)
	}
	if !strings.Contains(f.ctx.LogText(), "secondary rate limit") {
		t.Fatalf("secondary limit not seen in log:\n%s", f.ctx.LogText())
	}
}

// TestApprovalPollCost measures rate-limit points of 1,000 polls with no new comment.
func TestApprovalPollCost(t *testing.T) {
	for _, req := range []bool{false, true} {
		f := setup(t)
		with := approvalFixture(t, f, map[string]any{"timeout": "1000m", "request_comment": req})
		f.sim.ResetRequests()
		_, err := f.step(t, "github.approval", with).Run(context.Background(), f.ctx.StepContext)
		if err == nil || !strings.Contains(err.Error(), "no approval") {
			t.Fatalf("want timeout: %v", err)
		}
		reqs := f.sim.Requests()
		points := 0 // summed per request: the simulator's hourly window refills during 1,000 minutes
		for _, r := range reqs {
			points += r.Cost
		}
		t.Logf("request_comment=%v: %d requests for %d polls, %d rate-limit points", req, len(reqs), f.sim.Count("GET", "/repos/"+tracker+"/issues/1/comments"), points)
		limit := 2 // the first poll: issue + comments
		if req {
			limit = 5 // + reading comments before posting the request, the post, the changed list
		}
		if points > limit {
			t.Fatalf("polling cost %d points", points)
		}
	}
}

func TestReleaseNotesPagination(t *testing.T) {
	f := setup(t)
	repo := "cessda/cessda.cdc.versions"
	for i := 0; i < 230; i++ {
		is := githubsim.Issue{Title: fmt.Sprintf("Item %d", i), Milestone: "4.2.0", State: "closed"}
		switch i % 3 {
		case 0:
			is.Labels = []string{"bug"}
		case 1:
			is.Labels = []string{"enhancement"}
			is.PullRequest = true
		}
		f.sim.AddIssue(repo, is)
	}
	f.sim.AddIssue(repo, githubsim.Issue{Title: "Other milestone", Milestone: "4.1.0"})
	s := f.step(t, "github.release_notes", map[string]any{"repo": repo, "milestone": "4.2.0"})
	f.plan(t, s)
	out := f.run(t, s)
	if out["issues"] != 153 || out["pull_requests"] != 77 {
		t.Fatalf("counts %v %v", out["issues"], out["pull_requests"])
	}
	md := out["markdown"].(string)
	if !strings.Contains(md, "### Added\n\n- [PR-2](") || !strings.Contains(md, "### Fixed\n\n- [#1](") || !strings.Contains(md, "### Other changes") || strings.Contains(md, "Other milestone") {
		t.Fatalf("markdown:\n%.400s", md)
	}
	if n := f.sim.Count("GET", "/repos/"+repo+"/issues"); n != 3 {
		t.Fatalf("want 3 pages, got %d requests", n)
	}
}

func TestTag(t *testing.T) {
	f := setup(t)
	repo := "cessda/cessda.cvs.two"
	head := f.sim.CreateRepo(repo, nil)
	s := f.step(t, "github.tag", map[string]any{"repo": repo, "tag": "3.6.1"})
	f.plan(t, s)
	out := f.run(t, s)
	if out["sha"] != head {
		t.Fatalf("out %v", out)
	}
	if sha, ann, ok := f.sim.TagInfo(repo, "3.6.1"); !ok || ann || sha != head {
		t.Fatal("tag missing")
	}
	w := f.sim.WriteCount()
	f.run(t, s)
	if f.sim.WriteCount() != w {
		t.Fatal("second run wrote")
	}
	// The branch moves on: the same tag on another commit is refused.
	f.sim.Commit(repo, "", "more", map[string]string{"x": "y"})
	_, err := s.Run(context.Background(), f.ctx.StepContext)
	if err == nil || !strings.Contains(err.Error(), "already points at commit "+head) {
		t.Fatalf("want refusal, got %v", err)
	}
	if _, err := s.Plan(context.Background(), f.ctx.StepContext); err == nil {
		t.Fatal("plan should refuse too")
	}
	out = f.run(t, f.step(t, "github.tag", map[string]any{"repo": repo, "tag": "3.6.1", "force": true, "annotated": true}))
	if sha, ann, _ := f.sim.TagInfo(repo, "3.6.1"); !ann || sha != out["sha"] || sha == head {
		t.Fatal("force did not move the tag")
	}
	// Annotated tags are found on re-run through the tag object.
	w = f.sim.WriteCount()
	f.run(t, f.step(t, "github.tag", map[string]any{"repo": repo, "tag": "3.6.1", "annotated": true}))
	if f.sim.WriteCount() != w {
		t.Fatal("annotated re-run wrote")
	}
	st, _ := engine.LookupStepType("github.tag")
	bad, _ := engine.DecodeParams(st, map[string]any{"repo": repo, "tag": "v3.6.1"})
	if err := bad.(engine.Validator).Validate(); err == nil {
		t.Fatal("v3.6.1 accepted")
	}
}

func TestChangelogStep(t *testing.T) {
	f := setup(t)
	repo := "cessda/cessda.cvs.two"
	f.sim.CreateRepo(repo, nil)
	with := map[string]any{"repo": repo, "version": "1.1.0", "doi": "10.5281/zenodo.17949337"}
	s := f.step(t, "github.changelog", with)
	f.plan(t, s)
	// Someone commits to the changelog between the step's read and its write: 409, re-read.
	puts := 0
	f.sim.BeforeRequest(func(r *http.Request) {
		if r.Method == "PUT" {
			if puts++; puts == 1 {
				old, _ := f.sim.File(repo, "", "CHANGELOG.md")
				f.sim.Commit(repo, "", "typo", map[string]string{"CHANGELOG.md": strings.Replace(old, "First release", "First release.", 1)})
			}
		}
	})
	out := f.run(t, s)
	got, _ := f.sim.File(repo, "", "CHANGELOG.md")
	if out["changed"] != true || !strings.Contains(got, "## [Unreleased]\n\n## [1.1.0] - 2026-11-24\n\n[![DOI](https://zenodo.org/badge/DOI/10.5281/zenodo.17949337.svg)](https://doi.org/10.5281/zenodo.17949337)\n\n### Added\n\n- A new feature\n\n## [1.0.0]") || !strings.Contains(got, "First release.") {
		t.Fatalf("changelog:\n%s", got)
	}
	if puts != 2 {
		t.Fatalf("want a retry after 409, puts=%d", puts)
	}
	// The link to the release, at the repository's web address, closes the file.
	// (githubsim's web pages are served from its API address, as html_url says)
	if link := "[1.1.0]: " + f.sim.URL() + repo + "/releases/tag/1.1.0\n"; !strings.HasSuffix(got, link) {
		t.Fatalf("no release link %q at the end:\n%s", link, got)
	}
	w := f.sim.WriteCount()
	if out := f.run(t, s); out["changed"] != false || f.sim.WriteCount() != w {
		t.Fatal("second run committed")
	}
	// release_link: false leaves the footer alone.
	repo2 := "cessda/cessda.cvs.userguide"
	f.sim.CreateRepo(repo2, nil)
	f.run(t, f.step(t, "github.changelog", map[string]any{"repo": repo2, "version": "1.1.0", "release_link": false}))
	if got, _ := f.sim.File(repo2, "", "CHANGELOG.md"); strings.Contains(got, "[1.1.0]:") || !strings.Contains(got, "## [1.1.0] - ") {
		t.Fatalf("release_link false:\n%s", got)
	}
}

func TestRelease(t *testing.T) {
	f := setup(t)
	repo := "cessda/cessda.cvs.two"
	f.sim.CreateRepo(repo, nil)
	s := f.step(t, "github.release", map[string]any{"repo": repo, "tag": "3.6.1", "body": "notes"})
	f.plan(t, s)
	out := f.run(t, s)
	rs := f.sim.Releases(repo)
	if len(rs) != 1 || rs[0].Draft || rs[0].Body != "notes" || out["id"] != int(rs[0].ID) || !strings.Contains(out["url"].(string), "/releases/tag/3.6.1") {
		t.Fatalf("releases %+v out %v", rs, out)
	}
	w := f.sim.WriteCount()
	f.run(t, s)
	if f.sim.WriteCount() != w || len(f.sim.Releases(repo)) != 1 {
		t.Fatal("second run duplicated")
	}
	// A draft left by a crashed run is found (get-by-tag would 404) and published.
	// The publish fails once and is not retried inside the step: the engine re-runs it.
	f.sim.Inject(githubsim.Fault{Kind: githubsim.ServerError, Method: "PATCH", Path: "/repos/*/*/releases/*", Times: 1})
	s2 := f.step(t, "github.release", map[string]any{"repo": repo, "tag": "3.7.0"})
	patches := f.sim.Count("PATCH", "/repos/")
	if _, err := s2.Run(context.Background(), f.ctx.StepContext); err == nil {
		t.Fatal("want failure")
	} else if ok, _ := engine.IsTransient(err); !ok {
		t.Fatalf("5xx not transient: %v", err)
	}
	if n := f.sim.Count("PATCH", "/repos/") - patches; n != 1 {
		t.Fatalf("the failed publish was sent %d times in one run of the step, want once", n)
	}
	f.run(t, s2)
	if rs := f.sim.Releases(repo); len(rs) != 2 || rs[1].Draft {
		t.Fatalf("draft not reused: %+v", rs)
	}
}

func TestCloseAndComment(t *testing.T) {
	f := setup(t)
	f.run(t, f.step(t, "github.release_issue", releaseIssueWith()))
	c := f.step(t, "github.comment", map[string]any{"repo": tracker, "issue": 1, "marker": "preview", "body": "v1"})
	f.plan(t, c)
	o1 := f.run(t, c)
	o2 := f.run(t, f.step(t, "github.comment", map[string]any{"repo": tracker, "issue": 1, "marker": "preview", "body": "v2"}))
	w := f.sim.WriteCount()
	o3 := f.run(t, f.step(t, "github.comment", map[string]any{"repo": tracker, "issue": 1, "marker": "preview", "body": "v2"}))
	if o1["created"] != true || o2["created"] != false || o1["id"] != o2["id"] || o3["id"] != o1["id"] || f.sim.WriteCount() != w || len(f.sim.Comments(tracker, 1)) != 1 {
		t.Fatalf("%v %v %v", o1, o2, o3)
	}
	cl := f.step(t, "github.close", map[string]any{"repo": tracker, "issue": 1, "release_url": "https://example.org/rel", "report_url": "https://example.org/rep"})
	f.plan(t, cl)
	out := f.run(t, cl)
	is, _ := f.sim.GetIssue(tracker, 1)
	if out["issue_closed"] != true || out["milestone_closed"] != true || is.State != "closed" || is.StateReason != "completed" || f.sim.Milestone(tracker, "3.6.1") != "closed" {
		t.Fatalf("out %v issue %+v", out, is)
	}
	w = f.sim.WriteCount()
	f.run(t, cl)
	if f.sim.WriteCount() != w || len(f.sim.Comments(tracker, 1)) != 2 {
		t.Fatal("second close wrote")
	}
}

func TestRateLimits(t *testing.T) {
	f := setup(t)
	f.sim.CreateRepo("o/r", nil)
	f.sim.ExhaustRateLimit(42 * time.Minute)
	s := f.step(t, "github.tag", map[string]any{"repo": "o/r", "tag": "1.0.0"})
	_, err := s.Run(context.Background(), f.ctx.StepContext)
	ok, d := engine.IsTransient(err)
	if !ok || d < 41*time.Minute || d > 43*time.Minute || !strings.Contains(err.Error(), "resets at 2026-11-24T13:42:00Z") {
		t.Fatalf("primary: %v %v %v", ok, d, err)
	}
	// Waiting on the run's clock until the reset lets the step through.
	f.ctx.Clock.(*engine.FakeClock).Advance(d)
	f.run(t, s)

	f.sim.Inject(githubsim.Fault{Kind: githubsim.SecondaryLimit, Times: 1, RetryAfter: 120 * time.Second})
	_, err = f.step(t, "github.tag", map[string]any{"repo": "o/r", "tag": "1.0.1"}).Run(context.Background(), f.ctx.StepContext)
	if ok, d := engine.IsTransient(err); !ok || d != 120*time.Second {
		t.Fatalf("secondary: %v %v %v", ok, d, err)
	}
	f.sim.Inject(githubsim.Fault{Kind: githubsim.TooMany, Times: 1})
	_, err = f.step(t, "github.tag", map[string]any{"repo": "o/r", "tag": "1.0.1"}).Run(context.Background(), f.ctx.StepContext)
	if ok, d := engine.IsTransient(err); !ok || d != 30*time.Second {
		t.Fatalf("429: %v %v %v", ok, d, err)
	}
}

func TestTransientFaults(t *testing.T) {
	f := setup(t)
	f.sim.CreateRepo("o/r", nil)
	// A read that fails is not retried inside the step: the step's retry policy owns
	// retries. Each run of the step (as the engine re-runs it) sends the read once, waits
	// for nothing, and gives back a transient error.
	f.sim.Inject(githubsim.Fault{Kind: githubsim.ServerError, Method: "GET", Times: 2, Status: 503})
	clock := f.ctx.Clock.(*engine.FakeClock)
	read := f.step(t, "github.tag", map[string]any{"repo": "o/r", "tag": "1.0.0"})
	for run := 1; run <= 2; run++ {
		f.sim.ResetRequests()
		before := clock.Now()
		_, err := read.Run(context.Background(), f.ctx.StepContext)
		if ok, after := engine.IsTransient(err); !ok || after != 0 {
			t.Fatalf("run %d: 503 not transient (or asks a wait of %s): %v", run, after, err)
		}
		if reqs := f.sim.Requests(); len(reqs) != 1 || reqs[0].Status != 503 {
			t.Fatalf("run %d sent %+v, want the one failed read", run, reqs)
		}
		if !clock.Now().Equal(before) {
			t.Fatalf("run %d waited %s on the run's clock", run, clock.Now().Sub(before))
		}
	}
	if strings.Contains(f.ctx.LogText(), "retrying") {
		t.Fatalf("the step retried by itself:\n%s", f.ctx.LogText())
	}
	f.run(t, read)
	// A dropped POST is surfaced as transient (the write may have happened; the re-run finds it).
	f.sim.Inject(githubsim.Fault{Kind: githubsim.Drop, Method: "POST", Times: 1})
	s := f.step(t, "github.tag", map[string]any{"repo": "o/r", "tag": "1.0.1"})
	_, err := s.Run(context.Background(), f.ctx.StepContext)
	if ok, _ := engine.IsTransient(err); !ok {
		t.Fatalf("dropped connection not transient: %v", err)
	}
	f.run(t, s)
}

func TestCredentials(t *testing.T) {
	f := setup(t)
	conn := f.ctx.Conns["github"]
	conn.Token = ""
	conn.TokenEnv = "RUNBOOK_TEST_NO_SUCH_TOKEN"
	_, err := f.step(t, "github.tag", map[string]any{"repo": "o/r", "tag": "1.0.0"}).Run(context.Background(), f.ctx.StepContext)
	if err == nil || !strings.Contains(err.Error(), "RUNBOOK_TEST_NO_SUCH_TOKEN is not set") {
		t.Fatalf("missing token: %v", err)
	}
	conn.TokenEnv = ""
	conn.Token = canary + "x"
	_, err = f.step(t, "github.tag", map[string]any{"repo": "o/r", "tag": "1.0.0"}).Run(context.Background(), f.ctx.StepContext)
	if err == nil || !strings.Contains(err.Error(), "401 Bad credentials") || !strings.Contains(err.Error(), "GITHUB_TOKEN") {
		t.Fatalf("wrong token: %v", err)
	}
	if strings.Contains(err.Error(), canary) {
		t.Fatal("token in error")
	}
	f.noCanary(t)
}

func TestNoSuchRepo(t *testing.T) {
	ctx := enginetest.NewContext(t, "gh")
	sim := githubsim.New(githubsim.WithClock(ctx.Clock))
	defer sim.Close()
	ctx.Conns["github"] = &engine.Connection{Name: "github", Type: "github", URL: sim.URL(), Token: "t"}
	_, err := enginetest.Decode(t, "github.tag", map[string]any{"repo": "o/missing", "tag": "1.0.0"}).Run(context.Background(), ctx.StepContext)
	if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "check the repository name") {
		t.Fatalf("%v", err)
	}
}

// TestWholeRelease runs issue to close against the simulator with an auto-responding
// service owner, and reports the number of API requests.
func TestWholeRelease(t *testing.T) {
	f := setup(t)
	code := "cessda/cessda.cvs.two"
	f.sim.AddIssue(tracker, githubsim.Issue{Title: "Fix search", Milestone: "3.6.1", Labels: []string{"bug"}, State: "closed"})
	f.sim.AddIssue(tracker, githubsim.Issue{Title: "Bump deps", Milestone: "3.6.1", Labels: []string{"dependencies"}, PullRequest: true, State: "closed"})
	f.sim.AutoRespond(func(ev githubsim.Event) {
		if ev.Kind == "comment_created" && strings.Contains(ev.Body, "please approve") {
			_, _ = f.sim.Comment(ev.Repo, ev.Issue, "owner1", "/approve")
		}
	})
	f.sim.ResetRequests()
	steps := []struct {
		typ  string
		with map[string]any
	}{
		{"github.release_issue", releaseIssueWith()},
		{"github.subtask_issues", map[string]any{"repo": tracker, "release_issue": 3, "version": "3.6.1", "tool": "CVS"}},
		{"github.approval", map[string]any{"repo": tracker, "issue": 3}},
		{"github.changelog", map[string]any{"repo": code, "version": "3.6.1", "doi": "10.5281/zenodo.17949337"}},
		{"github.checklist", map[string]any{"repo": tracker, "issue": 3, "key": "doi"}},
		{"github.tag", map[string]any{"repo": code, "tag": "3.6.1"}},
		{"github.release_notes", map[string]any{"repo": tracker, "milestone": "3.6.1"}},
		{"github.release", map[string]any{"repo": code, "tag": "3.6.1", "body": "notes"}},
		{"github.close", map[string]any{"repo": tracker, "issue": 3}},
	}
	// Plan with the issue number unknown, as the planner would before the first step runs.
	pctx := enginetest.NewContext(t, "plan")
	pctx.Clock, pctx.Conns, pctx.PlanHash, pctx.Roles = f.ctx.Clock, f.ctx.Conns, f.ctx.PlanHash, f.ctx.Roles
	pctx.SetUnknown("issue", "release_issue")
	for _, st := range steps {
		if _, err := f.step(t, st.typ, st.with).Plan(context.Background(), pctx.StepContext); err != nil {
			t.Fatalf("plan %s: %v", st.typ, err)
		}
	}
	if f.sim.WriteCount() != 0 {
		t.Fatal("plan wrote")
	}
	planReqs := len(f.sim.Requests())
	f.sim.ResetRequests()
	for _, st := range steps {
		f.run(t, f.step(t, st.typ, st.with))
	}
	reqs := f.sim.Requests()
	t.Logf("whole release: %d requests for plan (no writes), %d requests for the run (%d writes)", planReqs, len(reqs), f.sim.WriteCount())
	is, _ := f.sim.GetIssue(tracker, 3)
	if is.State != "closed" || !strings.Contains(is.Body, "- [x] DOI reserved") {
		t.Fatalf("issue %+v", is)
	}
}

// TestSecondGateUsesItsOwnCommands: on the same issue, the post-deployment gate
// (/stable, /revert) is not satisfied by the release approval's /approve, and its
// /revert <reason> refuses with that reason.
func TestSecondGateUsesItsOwnCommands(t *testing.T) {
	sim := githubsim.New(githubsim.WithAutoCreate())
	defer sim.Close()
	conn := &engine.Connection{Name: "github", Type: "github", URL: sim.URL(), Token: "t"}
	sc := enginetest.NewContext(t, "gate", conn)
	sc.PlanHash = "abc"
	sc.Roles = map[string][]string{"service_owner": {"owner"}}
	issue := enginetest.Decode(t, "github.release_issue", map[string]any{"repo": "cessda/cessda.cvs.two", "version": "3.6.1", "tool": "CVS"})
	out, err := issue.Run(context.Background(), sc.StepContext)
	if err != nil {
		t.Fatal(err)
	}
	n := out["number"].(int)
	if _, err := sim.Comment("cessda/cessda.cvs.two", n, "owner", "/approve"); err != nil {
		t.Fatal(err)
	}
	gate := enginetest.Decode(t, "github.approval", map[string]any{"repo": "cessda/cessda.cvs.two", "issue": n,
		"approve_command": "/stable", "reject_command": "/revert", "wait": false})
	_, err = gate.Run(context.Background(), sc.StepContext)
	var we *engine.WaitingError
	if !errors.As(err, &we) {
		t.Fatalf("the /approve comment answered the /stable gate: %v", err)
	}
	if _, err := sim.Comment("cessda/cessda.cvs.two", n, "owner", "/revert search is broken on production"); err != nil {
		t.Fatal(err)
	}
	_, err = gate.Run(context.Background(), sc.StepContext)
	var re *engine.RejectedError
	if !errors.As(err, &re) || re.Reason != "search is broken on production" || re.By != "owner" {
		t.Fatalf("want a refusal by owner with the reason, got %v", err)
	}
}

// TestReleaseReportComment: the run's report is posted as one comment on the release
// issue and updated in place, not duplicated, on a second run.
func TestReleaseReportComment(t *testing.T) {
	sim := githubsim.New(githubsim.WithAutoCreate())
	defer sim.Close()
	conn := &engine.Connection{Name: "github", Type: "github", URL: sim.URL(), Token: "t"}
	sc := enginetest.NewContext(t, "report", conn)
	n := sim.AddIssue("cessda/cessda.cvs.two", githubsim.Issue{Title: "Release version 3.7.0 of CVS"})
	status := engine.RunRunning
	sc.StepContext.Report = func() *engine.Report {
		return &engine.Report{RunID: "cvs-1", Product: "cvs", Title: "CESSDA Vocabulary Service", Status: status,
			Inputs: map[string]any{"version": "3.7.0"}, Steps: []*engine.StepReport{{ID: "tag", Type: "github.tag", Status: engine.StepSucceeded}}}
	}
	step := enginetest.Decode(t, "github.release_report", map[string]any{"repo": "cessda/cessda.cvs.two", "issue": n})
	for i := 0; i < 2; i++ {
		if _, err := step.Run(context.Background(), sc.StepContext); err != nil {
			t.Fatal(err)
		}
		status = engine.RunSucceeded
	}
	cs := sim.Comments("cessda/cessda.cvs.two", n)
	if len(cs) != 1 {
		t.Fatalf("%d report comments, want 1", len(cs))
	}
	if !strings.Contains(cs[0].Body, "3.7.0") || !strings.Contains(cs[0].Body, "tag") {
		t.Errorf("report comment does not show the release: %s", cs[0].Body)
	}
}
