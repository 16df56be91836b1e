package github

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/steps/github/githubsim"
)

// preflightSteps is one step of each GitHub type, with the parameters a playbook gives.
func preflightSteps() map[string]map[string]any {
	return map[string]map[string]any{
		"github.release_issue":  releaseIssueWith(),
		"github.subtask_issues": {"repo": tracker, "release_issue": 1, "version": "3.6.2", "tool": "CVS"},
		"github.checklist":      {"repo": tracker, "issue": 1, "key": "doi"},
		"github.approval":       {"repo": tracker, "issue": 1},
		"github.release_notes":  {"repo": tracker, "milestone": "3.6.2"},
		"github.subtasks_done":  {"repo": tracker, "issue": 1},
		"github.tag":            {"repo": tracker, "tag": "3.6.2"},
		"github.changelog":      {"repo": tracker, "version": "3.6.2"},
		"github.release":        {"repo": tracker, "tag": "3.6.2"},
		"github.close":          {"repo": tracker, "issue": 1},
		"github.comment":        {"repo": tracker, "issue": 1, "marker": "m", "body": "hello"},
		"github.release_report": {"repo": tracker, "issue": 1},
	}
}

// preflight runs a step's Preflight and asserts it made no write and leaked no token.
func (f *fixture) preflight(t *testing.T, typ string, with map[string]any) error {
	t.Helper()
	s := f.step(t, typ, with)
	pf, ok := s.(engine.Preflighter)
	if !ok {
		t.Fatalf("%s has no Preflight", typ)
	}
	before := len(f.sim.Requests())
	err := pf.Preflight(context.Background(), f.ctx.StepContext)
	for _, r := range f.sim.Requests()[before:] {
		if r.Method != http.MethodGet {
			t.Fatalf("%s: preflight made a %s %s", typ, r.Method, r.Path)
		}
	}
	if err != nil {
		f.noCanary(t, err.Error())
	}
	return err
}

func wantErr(t *testing.T, typ string, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("%s: preflight error %v, want it to contain %q", typ, err, want)
	}
}

func TestPreflightAllTypes(t *testing.T) {
	steps := preflightSteps()
	for _, st := range engine.StepTypes() {
		if !strings.HasPrefix(st.Name, "github.") {
			continue
		}
		if _, ok := st.New().(engine.Preflighter); !ok {
			t.Errorf("%s does not implement engine.Preflighter", st.Name)
		}
		if _, ok := steps[st.Name]; !ok {
			t.Errorf("%s is not covered by preflightSteps", st.Name)
		}
	}
}

func TestPreflightPasses(t *testing.T) {
	f := setup(t)
	for typ, with := range preflightSteps() {
		if err := f.preflight(t, typ, with); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
	}
	if f.sim.WriteCount() != 0 || f.sim.Count(http.MethodGet, "/user") == 0 || f.sim.Count(http.MethodGet, "/repos/"+tracker) == 0 {
		t.Fatalf("requests %+v", f.sim.Requests())
	}
	if !strings.Contains(f.ctx.LogText(), `connection "github" authenticates as runbook-bot`) {
		t.Fatalf("log: %s", f.ctx.LogText())
	}
}

// Parameters known only after earlier steps are not checked; the token still is.
func TestPreflightUnknownRepo(t *testing.T) {
	f := setup(t)
	f.ctx.SetUnknown("repo", "tag")
	if err := f.preflight(t, "github.tag", map[string]any{"repo": "", "tag": ""}); err != nil {
		t.Fatal(err)
	}
	if n := f.sim.Count("", "/repos/"); n != 0 || f.sim.Count(http.MethodGet, "/user") != 1 {
		t.Fatalf("requests %+v", f.sim.Requests())
	}
}

func TestPreflightMissingSecret(t *testing.T) {
	f := setup(t)
	t.Setenv("RUNBOOK_TEST_GITHUB_TOKEN", "")
	f.ctx.Conns["github"].Token, f.ctx.Conns["github"].TokenEnv = "", "RUNBOOK_TEST_GITHUB_TOKEN"
	err := f.preflight(t, "github.tag", map[string]any{"repo": tracker, "tag": "3.6.2"})
	wantErr(t, "github.tag", err, `connection "github" (github): environment variable RUNBOOK_TEST_GITHUB_TOKEN is not set`)
	if n := len(f.sim.Requests()); n != 0 {
		t.Fatalf("%d requests without a secret", n)
	}
}

func TestPreflightRejectedToken(t *testing.T) {
	f := setup(t)
	t.Setenv("GITHUB_TOKEN", canary)
	f.ctx.Conns["github"].Token, f.ctx.Conns["github"].TokenEnv = "", "GITHUB_TOKEN"
	f.sim.RevokeToken(canary)
	err := f.preflight(t, "github.comment", preflightSteps()["github.comment"])
	wantErr(t, "github.comment", err, `connection "github": the token in GITHUB_TOKEN is not accepted (401 Bad credentials); renew it`)
	if n := f.sim.Count("", "/repos/"); n != 0 {
		t.Fatalf("looked at repositories with a rejected token: %+v", f.sim.Requests())
	}
}

func TestPreflightRepositoryNotFound(t *testing.T) {
	f := setup(t)
	f.sim.SetPermission(canary, "cessda/secret", "none")
	err := f.preflight(t, "github.release_notes", map[string]any{"repo": "cessda/secret", "milestone": "1.0.0"})
	wantErr(t, "github.release_notes", err, `connection "github": repository cessda/secret not found, or the token cannot see it`)
}

// A token that may only pull lets read-only and comment steps pass, and write steps fail
// with what they need and how to grant it; the run agrees.
func TestPreflightPermission(t *testing.T) {
	f := setup(t)
	f.sim.SetPermission(canary, tracker, "pull")
	for _, typ := range []string{"github.release_notes", "github.comment", "github.release_report"} {
		if err := f.preflight(t, typ, preflightSteps()[typ]); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
	}
	if err := f.preflight(t, "github.checklist", map[string]any{"repo": tracker, "issue": 1, "key": "doi", "action": "wait"}); err != nil {
		t.Errorf("checklist wait: %v", err)
	}
	err := f.preflight(t, "github.tag", preflightSteps()["github.tag"])
	want := `connection "github": the token may only pull cessda/cessda.cvs.two, but github.tag needs push (to create tag 3.6.2); grant Contents: write to the token, or the Write role on the repository to its user`
	if err == nil || err.Error() != want {
		t.Fatalf("tag: %v\nwant %s", err, want)
	}
	wantErr(t, "github.approval", f.preflight(t, "github.approval", preflightSteps()["github.approval"]),
		"github.approval needs triage (to write the plan hash into issue #1); grant Issues: write to the token, or the Triage role")
	wantErr(t, "github.release", f.preflight(t, "github.release", preflightSteps()["github.release"]), "github.release needs push (to create release 3.6.2)")

	// Triage may edit issues but not create milestones.
	f.sim.SetPermission(canary, tracker, "triage")
	for _, typ := range []string{"github.approval", "github.checklist"} {
		if err := f.preflight(t, typ, preflightSteps()[typ]); err != nil {
			t.Errorf("%s with triage: %v", typ, err)
		}
	}
	if err := f.preflight(t, "github.close", map[string]any{"repo": tracker, "issue": 1, "close_milestone": false}); err != nil {
		t.Errorf("close without milestone: %v", err)
	}
	wantErr(t, "github.close", f.preflight(t, "github.close", preflightSteps()["github.close"]), "the token may only triage cessda/cessda.cvs.two, but github.close needs push (to close the milestone)")
	wantErr(t, "github.release_issue", f.preflight(t, "github.release_issue", preflightSteps()["github.release_issue"]), "github.release_issue needs push")
	if n := f.sim.Count(http.MethodGet, "/user"); n != 12 {
		t.Errorf("GET /user %d times (no memo: once per step)", n)
	}

	// The simulator refuses the write as GitHub does, and allows the comment.
	f.sim.SetPermission(canary, tracker, "pull")
	if _, err := f.step(t, "github.tag", preflightSteps()["github.tag"]).Run(context.Background(), f.ctx.StepContext); err == nil || !strings.Contains(err.Error(), "403 Resource not accessible") {
		t.Fatalf("tag run with pull: %v", err)
	}
	n := f.sim.AddIssue(tracker, githubsim.Issue{Title: "Release"})
	f.run(t, f.step(t, "github.comment", map[string]any{"repo": tracker, "issue": n, "marker": "m", "body": "hello"}))
}

func TestPreflightClassicScopes(t *testing.T) {
	f := setup(t)
	f.sim.SetScopes(canary, "read:org")
	if err := f.preflight(t, "github.release_notes", preflightSteps()["github.release_notes"]); err != nil {
		t.Fatalf("read of a public repository needs no scope: %v", err)
	}
	wantErr(t, "github.tag", f.preflight(t, "github.tag", preflightSteps()["github.tag"]),
		`connection "github": the classic token has scopes "read:org", but github.tag writes to cessda/cessda.cvs.two (create tag 3.6.2), which needs scope public_repo or repo; add it to the token`)
	f.sim.SetScopes(canary, "public_repo")
	if err := f.preflight(t, "github.tag", preflightSteps()["github.tag"]); err != nil {
		t.Fatalf("public_repo: %v", err)
	}
	// A private repository is hidden from a token without repo.
	f.sim.SetPrivate(tracker, true)
	wantErr(t, "github.tag", f.preflight(t, "github.tag", preflightSteps()["github.tag"]), "not found, or the token cannot see it; check the name, and that the token may read it (a classic token needs scope repo to see a private repository)")
	f.sim.SetScopes(canary, "repo")
	if err := f.preflight(t, "github.tag", preflightSteps()["github.tag"]); err != nil {
		t.Fatalf("repo: %v", err)
	}
}

func TestPreflightInstallationToken(t *testing.T) {
	f := setup(t)
	f.sim.SetInstallationToken(canary)
	if err := f.preflight(t, "github.release", preflightSteps()["github.release"]); err != nil {
		t.Fatal(err)
	}
	if f.sim.Count(http.MethodGet, "/installation/repositories") != 1 || !strings.Contains(f.ctx.LogText(), "GitHub App installation token") {
		t.Fatalf("requests %+v\nlog %s", f.sim.Requests(), f.ctx.LogText())
	}
	f.sim.SetPermission(canary, tracker, "pull")
	wantErr(t, "github.release", f.preflight(t, "github.release", preflightSteps()["github.release"]), "github.release needs push")
}

// With a memo shared by the steps of a preflight, the token is checked once per
// connection and each repository read once, whatever the steps need of it.
func TestPreflightMemo(t *testing.T) {
	f := setup(t)
	type entry struct {
		once sync.Once
		err  error
	}
	memo := map[string]*entry{}
	var mu sync.Mutex
	prev := once
	once = func(_ *engine.StepContext, key string, check func() error) error {
		mu.Lock()
		e := memo[key]
		if e == nil {
			e = &entry{}
			memo[key] = e
		}
		mu.Unlock()
		e.once.Do(func() { e.err = check() })
		return e.err
	}
	t.Cleanup(func() { once = prev })

	f.sim.SetPermission(canary, tracker, "triage")
	f.sim.SetPermission(canary, "cessda/other", "pull")
	failed := 0
	for typ, with := range preflightSteps() {
		if err := f.preflight(t, typ, with); err != nil {
			failed++
		}
	}
	if err := f.preflight(t, "github.comment", map[string]any{"repo": "cessda/other", "issue": 1, "marker": "m", "body": "b"}); err != nil {
		t.Fatal(err)
	}
	// push is needed by release_issue, subtask_issues, tag, changelog, release, close.
	if failed != 6 {
		t.Errorf("%d steps failed, want 6", failed)
	}
	if u, r1, r2 := f.sim.Count(http.MethodGet, "/user"), countPath(f, "/repos/"+tracker), countPath(f, "/repos/cessda/other"); u != 1 || r1 != 1 || r2 != 1 {
		t.Fatalf("GET /user %d, %s %d, cessda/other %d; want 1 each", u, tracker, r1, r2)
	}
}

// countPath counts the GETs of exactly this path (Count matches a prefix).
func countPath(f *fixture, path string) int {
	n := 0
	for _, r := range f.sim.Requests() {
		if r.Method == http.MethodGet && r.Path == path {
			n++
		}
	}
	return n
}

// A version is tagged once: a new run's preflight refuses a tag the repository already
// has, lightweight or annotated, and says which commit and when; Run still reuses it.
func TestPreflightTagExists(t *testing.T) {
	f := setup(t)
	head := f.sim.CreateRepo(tracker, nil)
	with := map[string]any{"repo": tracker, "tag": "3.6.2"}
	if err := f.preflight(t, "github.tag", with); err != nil {
		t.Fatalf("no tag yet: %v", err)
	}
	f.run(t, f.step(t, "github.tag", with))

	w := f.sim.WriteCount()
	err := f.preflight(t, "github.tag", with)
	want := "tag 3.6.2 already exists on cessda/cessda.cvs.two (commit " + head[:7] + "): a version is tagged once — a release that was reverted keeps its tag; release the next version (3.6.3), or resume the run that made the tag (runbook runs shows it)"
	if err == nil || err.Error() != want {
		t.Fatalf("preflight: %v\nwant %s", err, want)
	}
	if f.sim.WriteCount() != w {
		t.Fatal("preflight wrote")
	}
	// Run (a resumed run's, or the same run's retry) reuses the tag on the same commit.
	f.run(t, f.step(t, "github.tag", with))
	if f.sim.WriteCount() != w {
		t.Fatal("run of an existing tag on the same commit wrote")
	}

	// An annotated tag says when it was made.
	f.ctx.Clock.(*engine.FakeClock).Advance(26 * time.Hour)
	f.run(t, f.step(t, "github.tag", map[string]any{"repo": tracker, "tag": "3.7.0", "annotated": true}))
	wantErr(t, "github.tag", f.preflight(t, "github.tag", map[string]any{"repo": tracker, "tag": "3.7.0"}),
		"tag 3.7.0 already exists on cessda/cessda.cvs.two (commit "+head[:7]+", made 2026-11-25 15:00 UTC): a version is tagged once")

	// With too little access too, both problems are told at once.
	f.sim.SetPermission(canary, tracker, "pull")
	err = f.preflight(t, "github.tag", with)
	wantErr(t, "github.tag", err, "github.tag needs push (to create tag 3.6.2)")
	wantErr(t, "github.tag", err, "tag 3.6.2 already exists on cessda/cessda.cvs.two")

	// The tag known only after earlier steps is not looked for.
	f.sim.ResetRequests()
	f.ctx.SetUnknown("tag")
	if err := f.preflight(t, "github.tag", map[string]any{"repo": tracker, "tag": ""}); err == nil || strings.Contains(err.Error(), "already exists") {
		t.Fatalf("unknown tag: %v", err)
	}
	if n := f.sim.Count(http.MethodGet, "/repos/"+tracker+"/git/"); n != 0 {
		t.Fatalf("looked for an unknown tag: %+v", f.sim.Requests())
	}
}

func TestNextPatch(t *testing.T) {
	for in, want := range map[string]string{"3.6.2": "3.6.3", "1.0.9": "1.0.10", "v2.1.0": "v2.1.1", "2024": "", "1.2": ""} {
		if got := nextPatch(in); got != want {
			t.Errorf("nextPatch(%q) = %q, want %q", in, got, want)
		}
	}
}
