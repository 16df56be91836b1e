package review_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/engine/review"
)

// Tiny step types, so the tests render reports of real runs through engine.Execute.

type makeStep struct {
	Title string `json:"title" desc:"link title"`
	URL   string `json:"url" desc:"link url"`
}

func (p *makeStep) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	return engine.Plan{Action: "make " + p.Title}, nil
}

func (p *makeStep) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	sc.Logf("making %s", p.Title)
	sc.Link(p.Title, p.URL)
	return engine.Outputs{}, nil
}

type failStep struct {
	Message string `json:"message" desc:"the error"`
}

func (p *failStep) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	return engine.Plan{Action: "fail"}, nil
}

func (p *failStep) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	sc.Logf("line one of the log")
	sc.Logf("build printed <b>bold</b> and ``` fences")
	return nil, errors.New(p.Message)
}

type gateStep struct{}

func (p *gateStep) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	return engine.Plan{Action: "ask"}, nil
}

func (p *gateStep) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	var c engine.Confirmation
	if !sc.Recall("confirmation", &c) {
		return nil, engine.Waiting("waiting for the service owner's approval")
	}
	if c.Answer != "yes" {
		return nil, engine.Rejected(c.By, c.Reason)
	}
	return engine.Outputs{}, nil
}

func init() {
	engine.Register(engine.StepType{Name: "reviewtest.make", Summary: "records a link", New: func() engine.Step { return &makeStep{} }})
	engine.Register(engine.StepType{Name: "reviewtest.fail", Summary: "fails", New: func() engine.Step { return &failStep{} }})
	engine.Register(engine.StepType{Name: "reviewtest.gate", Summary: "waits for a confirmation", New: func() engine.Step { return &gateStep{} }})
}

const hostile = "deploy failed: <script>alert(1)</script> | `rm -rf` [x](javascript:alert(2))"

var reportPlaybook = `runbook: v1
product: cdc
title: CESSDA Data Catalogue
roles:
  technical_maintainer: [alice]
  service_owner: [bob]
inputs:
  version: {type: string, required: true}
  fail: {type: bool, default: false}
  rollback: {type: bool, default: false}
steps:
  - id: open_issue
    type: reviewtest.make
    role: technical_maintainer
    with: {title: Release issue, url: "https://github.com/cessda/cdc/issues/7"}
  - id: tag
    type: reviewtest.make
    role: technical_maintainer
    with: {title: "Tag ${{ inputs.version }}", url: "https://github.com/cessda/cdc/tree/${{ inputs.version }}"}
  - id: approval
    type: reviewtest.gate
    role: service_owner
  - id: deploy
    type: reviewtest.fail
    role: technical_maintainer
    when: inputs.fail
    with: {message: "` + hostile + `"}
  - id: publish
    type: reviewtest.make
    with: {title: DOI 10.5281/zenodo.17, url: "https://doi.org/10.5281/zenodo.17"}
  - id: evil_link
    type: reviewtest.make
    with: {title: "click <me>", url: "javascript:alert(3)"}
on_failure:
  - id: rollback
    type: reviewtest.make
    rollback: true
    when: inputs.rollback
    with: {title: Rollback build, url: "https://jenkins.example.org/job/cessda.cdc.rollback/4/"}
`

// runReport runs the playbook to its first stop, then resumes it with the options more
// gives (a person's choices), and returns the final report.
func runReport(t *testing.T, sets map[string]string, resumes ...func(*engine.Options)) *engine.Report {
	t.Helper()
	pb, err := engine.Parse("cdc.yaml", []byte(reportPlaybook))
	if err != nil {
		t.Fatal(err)
	}
	in, err := pb.ResolveInputs(sets)
	if err != nil {
		t.Fatal(err)
	}
	store := &engine.MemStore{}
	clock := engine.NewFakeClock(time.Date(2026, 11, 24, 13, 0, 0, 0, time.UTC))
	rep, err := engine.Execute(context.Background(), pb, engine.Options{Inputs: in, Store: store, Clock: clock, Actor: "alice", Seed: 1, RunID: "cdc-test"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != engine.RunWaiting {
		t.Fatalf("first session: %s (%s)", rep.Status, rep.Reason)
	}
	for _, more := range resumes {
		clock.Advance(26 * time.Hour)
		o := engine.Options{Store: store, Clock: clock, Actor: "alice", Seed: 1}
		more(&o)
		if rep, err = engine.Resume(context.Background(), pb, o); err != nil {
			t.Fatal(err)
		}
	}
	return rep.Clone()
}

func confirm(answer, reason string) func(*engine.Options) {
	return func(o *engine.Options) {
		o.Confirm = map[string]engine.Confirmation{"approval": {By: "bob", At: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC), Answer: answer, Reason: reason}}
	}
}

func render(t *testing.T, rep *engine.Report) (md, html string) {
	t.Helper()
	md = review.ReportMarkdown(rep)
	var b bytes.Buffer
	if err := review.WriteReportHTML(&b, rep); err != nil {
		t.Fatal(err)
	}
	t.Logf("markdown:\n%s", md)
	return md, b.String()
}

func mustContain(t *testing.T, what, doc string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(doc, p) {
			t.Errorf("%s lacks %q", what, p)
		}
	}
}

func TestReportSucceededAfterApproval(t *testing.T) {
	rep := runReport(t, map[string]string{"version": "3.6.1"}, confirm("yes", ""))
	if rep.Status != engine.RunSucceeded {
		t.Fatalf("status %s", rep.Status)
	}
	md, html := render(t, rep)
	mustContain(t, "markdown", md,
		"## ✅ Release report: CESSDA Data Catalogue 3.6.1",
		"**Outcome: succeeded** · product `cdc` · version `3.6.1` · run `cdc-test`",
		"Run by **alice**, started 2026-11-24 13:00:00 UTC, finished 2026-11-25 15:00:00 UTC (26h)",
		// two sessions: waiting, then resumed
		"it ran in 2 sessions",
		"| 1 | alice |", "⏸️ waiting |", "✅ succeeded |",
		// steps with role, performers and what they made
		"| ✅ done | `open_issue` `reviewtest.make` | technical maintainer | 13:00:00 |",
		"[Tag 3.6.1](<https://github.com/cessda/cdc/tree/3.6.1>)",
		"| ⏭️ skipped: its condition was false<br>`inputs.fail` | `deploy` `reviewtest.fail` |",
		// the run's on_failure path was not needed: not "pending"
		"| ➖ not needed | `rollback` `reviewtest.make` _(on\\_failure)_ |",
		"7 steps: 5 done, 1 skipped, 1 not needed",
		// links section, with their kinds
		"- issue: [Release issue](<https://github.com/cessda/cdc/issues/7>) (step `open_issue`)",
		"- tag: [Tag 3.6.1](<https://github.com/cessda/cdc/tree/3.6.1>)",
		"- DOI: [DOI 10.5281/zenodo.17](<https://doi.org/10.5281/zenodo.17>)",
		// the person's choice
		"| `approval` | confirm | bob | 2026-11-25 09:00:00 UTC |",
	)
	// A javascript: URL is never a link.
	if strings.Contains(md, "(<javascript:") || strings.Contains(md, "](javascript:") {
		t.Error("markdown links a javascript: URL")
	}
	mustContain(t, "markdown", md, "click \\<me\\> `javascript:alert(3)`")
	mustContain(t, "html", html,
		"<title>Release report: CESSDA Data Catalogue 3.6.1 (succeeded)</title>",
		`<span class="outcome ok">succeeded</span>`,
		`<a href="https://github.com/cessda/cdc/issues/7">Release issue</a>`,
		"<h2>Sessions</h2>", "<h2>Choices people made</h2>", "<td>confirm</td><td>bob</td>",
		"click &lt;me&gt; <code>javascript:alert(3)</code>",
	)
	if strings.Contains(html, `href="javascript`) {
		t.Error("html links a javascript: URL")
	}
	if strings.Contains(md, "What went wrong") {
		t.Error("a successful run shows failures")
	}
}

func TestReportRolledBackEscapesHostileOutput(t *testing.T) {
	rep := runReport(t, map[string]string{"version": "3.6.1", "fail": "true", "rollback": "true"}, confirm("yes", ""))
	if rep.Status != engine.RunRolledBack {
		t.Fatalf("status %s", rep.Status)
	}
	md, html := render(t, rep)
	mustContain(t, "markdown", md,
		"## ↩️ Release report: CESSDA Data Catalogue 3.6.1",
		"**Outcome: rolled back after a failure at step deploy: deploy failed: \\<script\\>alert(1)\\</script\\> \\| \\`rm -rf\\` \\[x\\](javascript:alert(2))**",
		"| ❌ failed | `deploy` `reviewtest.fail` |",
		"| ✅ done | `rollback` `reviewtest.make` _(on\\_failure)_ |",
		"### Other steps", // steps without a phase
		"- build: [Rollback build](<https://jenkins.example.org/job/cessda.cdc.rollback/4/>)",
		"### What went wrong",
		"#### ❌ `deploy` `reviewtest.fail`: failed",
		// The error is fenced (literal in GFM); the log's ``` cannot close the fence.
		"````text\nline one of the log\nbuild printed <b>bold</b> and ``` fences\n````",
		"```text\n"+hostile+"\n```",
	)
	// Outside fences, no raw HTML from the run reaches the comment.
	outside := md
	for _, part := range []string{"```text\n" + hostile + "\n```", "build printed <b>bold</b>"} {
		outside = strings.ReplaceAll(outside, part, "")
	}
	if strings.Contains(outside, "<script>") || strings.Contains(outside, "<b>") {
		t.Errorf("raw HTML from the run outside a code block:\n%s", outside)
	}
	mustContain(t, "html", html,
		`<span class="outcome warn">rolled back after a failure at step deploy: deploy failed: &lt;script&gt;alert(1)&lt;/script&gt;`,
		"<pre>deploy failed: &lt;script&gt;alert(1)&lt;/script&gt; | `rm -rf` [x](javascript:alert(2))</pre>",
		"build printed &lt;b&gt;bold&lt;/b&gt;",
	)
	if strings.Contains(html, "<script") || strings.Contains(html, "<b>bold") {
		t.Error("html contains the step's raw HTML")
	}
}

func TestReportRejectedAndSkipped(t *testing.T) {
	rep := runReport(t, map[string]string{"version": "3.6.1"}, confirm("no", "staging shows broken search"))
	if rep.Status != engine.RunRejected {
		t.Fatalf("status %s", rep.Status)
	}
	md, html := render(t, rep)
	mustContain(t, "markdown", md,
		"## ⛔ Release report",
		"**Outcome: rejected at step approval: rejected by bob: staging shows broken search**",
		"| `approval` | refuse | bob | 2026-11-25 09:00:00 UTC | staging shows broken search |",
		"| ⬜ not reached | `publish` `reviewtest.make` |",
		"⛔ **Refused 3.6.1: bob refused the release on 2026-11-25 15:00 UTC: staging shows broken search. Production was not changed.**",
		"| 2026-11-25 09:00 UTC | bob | refused | approval | staging shows broken search |",
	)
	mustContain(t, "html", html, `<span class="outcome fail">rejected at step approval: rejected by bob: staging shows broken search</span>`)

	// A run that failed, then a person skipped the failed step with a reason.
	sets := map[string]string{"version": "3.6.1", "fail": "true"}
	rep = runReport(t, sets, confirm("yes", ""))
	if rep.Status != engine.RunFailed {
		t.Fatalf("status %s", rep.Status)
	}
	md, _ = render(t, rep)
	mustContain(t, "markdown", md, "## ❌ Release report", "**Outcome: failed at step deploy: deploy failed:")
	rep = runReport(t, sets, confirm("yes", ""), func(o *engine.Options) {
		o.Actor = "carol"
		o.Skip = map[string]string{"deploy": "deployed by hand after the Jenkins outage"}
	})
	if rep.Status != engine.RunSucceeded {
		t.Fatalf("after skip: %s %s", rep.Status, rep.Reason)
	}
	md, _ = render(t, rep)
	mustContain(t, "markdown", md,
		"it ran in 3 sessions",
		"| `deploy` | skip | carol | 2026-11-26 17:00:00 UTC | deployed by hand after the Jenkins outage |",
		"| ⏭️ skipped by carol: deployed by hand after the Jenkins outage | `deploy` `reviewtest.fail` |",
		// A skip is a warning the release issue shows above everything else.
		"### Warnings to act on",
		"- `deploy` 2026-11-26 17:00:00 UTC: deploy was skipped by carol, so it was not done: deployed by hand after the Jenkins outage",
	)
	_, html = render(t, rep)
	mustContain(t, "html", html, "<h2>Warnings to act on</h2>", "<li><code>deploy</code> 2026-11-26 17:00:00 UTC: deploy was skipped by carol, so it was not done: deployed by hand after the Jenkins outage</li>")
}

func TestReportWaiting(t *testing.T) {
	rep := runReport(t, map[string]string{"version": "3.6.1"})
	md, html := render(t, rep)
	mustContain(t, "markdown", md,
		"## ⏸️ Release report",
		"**Outcome: waiting for a person at step approval: waiting for the service owner's approval**",
		"| ⏸️ waiting | `approval` `reviewtest.gate` | service owner |",
		"⏸️ **Waiting for the service owner's answer since 2026-11-24 13:00 UTC (bob)**",
		"stopped to wait on",
		"| ⬜ to do | `publish` `reviewtest.make` |",
		"#### ⏸️ `approval` `reviewtest.gate`: waiting",
	)
	if strings.Contains(md, "### Sessions") {
		t.Error("one session shown as a sessions table")
	}
	mustContain(t, "html", html, `<span class="outcome wait">waiting for a person`)
}

// TestReportLeftBehind: what a stopped release left in the world is listed, in Markdown
// and HTML, with the step that left it.
func TestReportLeftBehind(t *testing.T) {
	rep := runReport(t, map[string]string{"version": "3.6.1"}, confirm("no", "not today"))
	rep.LeftBehind = []engine.LeftBehind{{Step: "tag", What: "tag 3.6.1 on cessda/cessda.cvs.two <stays>: release 3.6.2 next"}}
	rep.Identities = map[string]string{"github": "release-bot", "jenkins": "runbook"}
	md, html := render(t, rep)
	mustContain(t, "markdown", md, "(acting on github as release-bot, jenkins as runbook)")
	mustContain(t, "html", html, "(acting on github as release-bot, jenkins as runbook)")
	mustContain(t, "markdown", md, "### What the stopped release left behind", "- `tag`: tag 3.6.1 on cessda/cessda.cvs.two \\<stays\\>: release 3.6.2 next")
	mustContain(t, "html", html, "<h2>What the stopped release left behind</h2>", "<li><code>tag</code>: tag 3.6.1 on cessda/cessda.cvs.two &lt;stays&gt;: release 3.6.2 next</li>")
}
