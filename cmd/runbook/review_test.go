package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/steps/github/githubsim"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// exampleReport runs examples/local-release.yaml and returns its state dir and report path.
func exampleReport(t *testing.T) (string, string) {
	dir := t.TempDir()
	code, out, errs := runCLI(t, "run", "../../examples/local-release.yaml", "--set", "version=1.2.3", "--set", "workdir="+dir+"/work",
		"--state-dir", dir, "--report", dir+"/report.json")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	return dir, dir + "/report.json"
}

func TestReportCommand(t *testing.T) {
	dir, report := exampleReport(t)
	code, md, errs := runCLI(t, "report", report)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"## ✅ Release report: Local release demo 1.2.3", "**Outcome: succeeded**", "| ✅ done | `write_notes` `shell` | technical maintainer |",
		"| ⏭️ skipped: its condition was false<br>`inputs.confirm` | `owner_confirms` `manual` | service owner |", "3 items: 3 done."} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	// HTML to a file, found by run id.
	var rep engine.Report
	b, _ := os.ReadFile(report)
	_ = json.Unmarshal(b, &rep)
	out := filepath.Join(dir, "report.html")
	if code, _, errs := runCLI(t, "report", rep.RunID, "--state-dir", dir, "--format", "html", "-o", out); code != 0 {
		t.Fatalf("html: exit %d: %s", code, errs)
	}
	page, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<!DOCTYPE html>", "<style>", "Release report: Local release demo 1.2.3", "<code>announce</code>"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("html lacks %q", want)
		}
	}
	if strings.Contains(string(page), "<script") || strings.Contains(string(page), "<link ") {
		t.Error("the page is not self-contained and script-free")
	}
	if code, _, _ := runCLI(t, "report", report, "--format", "pdf"); code != exitInvalid {
		t.Errorf("bad format: exit %d", code)
	}
	if code, _, errs := runCLI(t, "report", "../../examples/local-release.yaml"); code != exitInvalid || !strings.Contains(errs, "not a runbook report") {
		t.Errorf("not a report: exit %d: %s", code, errs)
	}
}

const basePlaybook = `runbook: v1
product: demo
roles:
  technical_maintainer: [alice]
  platform_maintainer: [joe]
inputs:
  version: {type: string, required: true}
steps:
  - id: notes
    type: shell
    role: technical_maintainer
    with: {argv: [echo, "notes ${{ inputs.version }}"]}
  - id: deploy
    type: shell
    role: technical_maintainer
    with: {argv: [echo, deploy, "${{ inputs.version }}"]}
  - id: old_check
    type: shell
    with: {argv: ["true"]}
`

const headPlaybook = `runbook: v1
product: demo
roles:
  technical_maintainer: [alice]
  platform_maintainer: [joe]
inputs:
  version: {type: string, required: true}
  env: {type: string, default: prod}
steps:
  - id: notes
    type: shell
    role: technical_maintainer
    with: {argv: [echo, "notes ${{ inputs.version }}"]}
  - id: deploy
    type: shell
    role: platform_maintainer
    when: inputs.env == "prod"
    with: {argv: [echo, deploy, "${{ inputs.version }}", "${{ inputs.env }}"]}
  - id: smoke
    type: shell
    with: {argv: [curl, -f, "https://example.org/health"]}
`

func gitIn(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=Test", "-c", "user.email=test@example.org", "-c", "commit.gpgsign=false"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

func TestPlanBase(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	repo := t.TempDir()
	gitIn(t, repo, "init", "-q", "-b", "main")
	file := filepath.Join(repo, "playbooks", "demo.yaml")
	os.MkdirAll(filepath.Dir(file), 0o755)
	os.WriteFile(file, []byte(basePlaybook), 0o644)
	gitIn(t, repo, "add", "-A")
	gitIn(t, repo, "commit", "-q", "-m", "base")
	gitIn(t, repo, "checkout", "-q", "-b", "change")
	os.WriteFile(file, []byte(headPlaybook), 0o644)
	gitIn(t, repo, "commit", "-q", "-am", "change")

	code, out, errs := runCLI(t, "plan", file, "--set", "version=2.0.0", "--base", "main", "--offline")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	want := `Plan diff for demo: main:playbooks/demo.yaml -> ` + filepath.ToSlash(file) + `
Plan hash: `
	if !strings.HasPrefix(out, want) {
		t.Errorf("text:\n%s\nwant prefix:\n%s", out, want)
	}
	wantBody := `Summary: 1 step added, 1 step removed, 1 step changed, 1 input value(s) changed.

Inputs:
  ~ env: (none) -> "prod"

~ deploy (shell) [platform_maintainer] changed at 2
    role: "technical_maintainer" -> "platform_maintainer"
    when: (none) -> "inputs.env == \"prod\""
    condition: (none) -> "true"
    with.argv: ["echo","deploy","2.0.0"] -> ["echo","deploy","2.0.0","prod"]
+ smoke (shell) added at 3
    with.argv: ["curl","-f","https://example.org/health"]
- old_check (shell) removed, was 3
`
	if !strings.HasSuffix(out, wantBody) {
		t.Errorf("text:\n%s\nwant suffix:\n%s", out, wantBody)
	}

	code, md, errs := runCLI(t, "plan", file, "--set", "version=2.0.0", "--base", "main", "--offline", "--format", "markdown")
	if code != 0 || !strings.Contains(md, "**1 step added, 1 step removed, 1 step changed, 1 input value(s) changed**") || !strings.Contains(md, "<summary>The full plan after this change</summary>") {
		t.Errorf("markdown (exit %d, %s):\n%s", code, errs, md)
	}
	code, js, _ := runCLI(t, "plan", file, "--set", "version=2.0.0", "--base", "main", "--offline", "--format", "json")
	var doc struct {
		Base   string         `json:"base"`
		Counts map[string]int `json:"counts"`
	}
	if code != 0 || json.Unmarshal([]byte(js), &doc) != nil || doc.Base != "main:playbooks/demo.yaml" || doc.Counts["added"] != 1 {
		t.Errorf("json (exit %d): %s", code, js)
	}

	// A playbook new in the change: everything is added, and the preview says why.
	fresh := filepath.Join(repo, "playbooks", "fresh.yaml")
	os.WriteFile(fresh, []byte(basePlaybook), 0o644)
	code, out, _ = runCLI(t, "plan", fresh, "--set", "version=2.0.0", "--base", "main", "--offline")
	if code != 0 || !strings.Contains(out, "does not exist at main: every step is new.") || !strings.Contains(out, "3 steps added") {
		t.Errorf("new playbook (exit %d):\n%s", code, out)
	}
	// An unknown ref is a usage error.
	if code, _, errs := runCLI(t, "plan", file, "--set", "version=2.0.0", "--base", "nope", "--offline"); code != exitInvalid || !strings.Contains(errs, "no such commit") {
		t.Errorf("unknown ref: exit %d: %s", code, errs)
	}
}

const canaryToken = "ghp_canary_review_0123456789"

func newSim(t *testing.T) (*githubsim.Server, int) {
	sim := githubsim.New(githubsim.WithAutoCreate(), githubsim.WithToken(canaryToken), githubsim.WithUser("runbook-bot"))
	t.Cleanup(sim.Close)
	n := sim.AddIssue("cessda/cessda.cdc.versions", githubsim.Issue{Title: "Update the CDC playbook", PullRequest: true})
	return sim, n
}

func comment(t *testing.T, sim *githubsim.Server, target, body string, extra ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	a := &app{stdin: strings.NewReader(body), stdout: &out, stderr: &errb}
	cmd := a.commentCmd()
	cmd.SetArgs(append([]string{target, "--github-url", sim.URL()}, extra...))
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	err := cmd.ExecuteContext(context.Background())
	code := 0
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		errb.WriteString(ee.Error())
	} else if err != nil {
		code = 1
		errb.WriteString(err.Error())
	}
	return code, out.String(), errb.String()
}

func TestCommentKeepsOneUpToDate(t *testing.T) {
	sim, n := newSim(t)
	t.Setenv("GITHUB_TOKEN", canaryToken)
	target := "cessda/cessda.cdc.versions#" + itoa(n)
	var logs strings.Builder
	for i, body := range []string{"### runbook plan\n\nfirst preview", "### runbook plan\n\nsecond preview"} {
		code, out, errs := comment(t, sim, target, body)
		logs.WriteString(out + errs)
		if code != 0 {
			t.Fatalf("call %d: exit %d: %s", i+1, code, errs)
		}
		verb := []string{"posted", "updated"}[i]
		if !strings.HasPrefix(out, verb+` comment "plan-preview" on cessda/cessda.cdc.versions#`) {
			t.Errorf("call %d: %s", i+1, out)
		}
	}
	cs := sim.Comments("cessda/cessda.cdc.versions", n)
	if len(cs) != 1 {
		t.Fatalf("%d comments, want 1", len(cs))
	}
	if !strings.HasPrefix(cs[0].Body, "### runbook plan\n\nsecond preview") || !strings.Contains(cs[0].Body, "<!-- runbook:plan-preview -->") {
		t.Errorf("comment body: %q", cs[0].Body)
	}
	// The same body again writes nothing.
	writes := sim.WriteCount()
	if code, _, errs := comment(t, sim, target, "### runbook plan\n\nsecond preview"); code != 0 {
		t.Fatal(errs)
	}
	if sim.WriteCount() != writes {
		t.Errorf("an unchanged preview was written again")
	}
	// Another marker is another comment (one per playbook, if a CI job wants that).
	comment(t, sim, target, "other", "--marker", "plan-preview cvs.yaml")
	if got := len(sim.Comments("cessda/cessda.cdc.versions", n)); got != 2 {
		t.Errorf("%d comments after a second marker, want 2", got)
	}
	if strings.Contains(logs.String(), canaryToken) {
		t.Error("the token was printed")
	}
}

func TestCommentRetriesTransientFailure(t *testing.T) {
	sim, n := newSim(t)
	t.Setenv("GITHUB_TOKEN", canaryToken)
	old := commentClock
	commentClock = engine.NewFakeClock(time.Unix(0, 0))
	defer func() { commentClock = old }()
	sim.Inject(githubsim.Fault{Kind: githubsim.ServerError, Method: "POST", Times: 1, Status: 502})
	code, out, errs := comment(t, sim, "cessda/cessda.cdc.versions#"+itoa(n), "preview")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(errs, "trying again") || !strings.HasPrefix(out, "posted") {
		t.Errorf("out %q err %q", out, errs)
	}
	if got := len(sim.Comments("cessda/cessda.cdc.versions", n)); got != 1 {
		t.Errorf("%d comments, want 1", got)
	}
}

func TestCommentCredentialsAndTarget(t *testing.T) {
	sim, n := newSim(t)
	target := "cessda/cessda.cdc.versions#" + itoa(n)
	t.Setenv("GITHUB_TOKEN", "")
	code, _, errs := comment(t, sim, target, "x")
	if code != exitInvalid || !strings.Contains(errs, "GITHUB_TOKEN") {
		t.Errorf("no token: exit %d: %s", code, errs)
	}
	t.Setenv("GITHUB_TOKEN", "wrong-token-value")
	code, _, errs = comment(t, sim, target, "x")
	if code == 0 || !strings.Contains(errs, "401") {
		t.Errorf("wrong token: exit %d: %s", code, errs)
	}
	if strings.Contains(errs, "wrong-token-value") {
		t.Error("the token is in the error")
	}
	for _, bad := range []string{"cessda#1", "cessda/x#0", "cessda/x", "/x#2"} {
		if code, _, _ := comment(t, sim, bad, "x"); code != exitInvalid {
			t.Errorf("%q: exit %d", bad, code)
		}
	}
	if sim.WriteCount() != 0 {
		t.Errorf("%d writes after refused calls", sim.WriteCount())
	}
}

// The release report can be posted on the release issue the same way.
func TestReportComment(t *testing.T) {
	_, report := exampleReport(t)
	sim := githubsim.New(githubsim.WithAutoCreate(), githubsim.WithToken(canaryToken))
	defer sim.Close()
	n := sim.AddIssue("cessda/cessda.cdc.versions", githubsim.Issue{Title: "Release 1.2.3"})
	t.Setenv("GITHUB_TOKEN", canaryToken)
	for i := 0; i < 2; i++ {
		code, out, errs := runCLI(t, "report", report, "--comment", "cessda/cessda.cdc.versions#"+itoa(n), "--github-url", sim.URL())
		if code != 0 {
			t.Fatalf("exit %d: %s %s", code, out, errs)
		}
	}
	cs := sim.Comments("cessda/cessda.cdc.versions", n)
	if len(cs) != 1 || !strings.Contains(cs[0].Body, "Release report: Local release demo 1.2.3") || !strings.Contains(cs[0].Body, "<!-- runbook:release-report -->") {
		t.Errorf("%d comments: %v", len(cs), cs)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
