package github

import (
	"context"
	"strings"
	"testing"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/steps/github/githubsim"
)

const notesRepo = "cessda/cessda.cdc.versions"

// A milestone with nothing done in it stops the release: the plan shows it, the run
// fails for good. Open items, a pull request closed unmerged and the release's own
// (excluded) issues are not something done.
func TestReleaseNotesEmptyStops(t *testing.T) {
	f := setup(t)
	f.sim.AddIssue(notesRepo, githubsim.Issue{Title: "Release version 4.2.0 of CDC", Milestone: "4.2.0", Labels: []string{"release"}})
	f.sim.AddIssue(notesRepo, githubsim.Issue{Title: "Still to do", Milestone: "4.2.0"})
	want := "the release notes of milestone 4.2.0 in cessda/cessda.cdc.versions are empty: no closed issue or merged pull request is in the milestone; add them to the milestone, or set allow_empty: true"

	s := f.step(t, "github.release_notes", map[string]any{"repo": notesRepo, "milestone": "4.2.0"})
	if _, err := s.Plan(context.Background(), f.ctx.StepContext); err == nil || err.Error() != want {
		t.Fatalf("plan: %v\nwant %s", err, want)
	}
	run := func() {
		t.Helper()
		_, err := s.Run(context.Background(), f.ctx.StepContext)
		if err == nil || err.Error() != want {
			t.Fatalf("run: %v\nwant %s", err, want)
		}
		if ok, _ := engine.IsTransient(err); ok {
			t.Fatal("empty notes must not be retried")
		}
	}
	run()
	// Closed, yet nothing done: the plan (which goes by the milestone's counts) lets it
	// pass, the run, which lists the items, does not.
	f.sim.AddIssue(notesRepo, githubsim.Issue{Title: "Abandoned", Milestone: "4.2.0", PullRequest: true, State: "closed", NotMerged: true})
	f.sim.AddIssue(notesRepo, githubsim.Issue{Title: "Update user documentation for version 4.2.0 of CDC", Milestone: "4.2.0", Labels: []string{"release"}, State: "closed"})
	f.plan(t, s)
	run()
	// A milestone that does not exist yet is as empty (github.release_issue creates it).
	_, err := f.step(t, "github.release_notes", map[string]any{"repo": notesRepo, "milestone": "9.9.9"}).Plan(context.Background(), f.ctx.StepContext)
	if err == nil || !strings.HasPrefix(err.Error(), "the release notes of milestone 9.9.9 in cessda/cessda.cdc.versions are empty") {
		t.Fatalf("plan of a missing milestone: %v", err)
	}
	if f.sim.WriteCount() != 0 {
		t.Fatal("wrote")
	}

	// One merged pull request is enough.
	f.sim.AddIssue(notesRepo, githubsim.Issue{Title: "Faster search", Milestone: "4.2.0", PullRequest: true, State: "closed", Labels: []string{"enhancement"}})
	if p := f.plan(t, s); len(p.Details) != 1 || p.Details[0] != "so far 3 closed and 2 open issues and pull requests in the milestone" {
		t.Fatalf("plan %+v", p)
	}
	out := f.run(t, s)
	if md := out["markdown"].(string); !strings.Contains(md, "### Added\n\n- [PR-5](") || !strings.Contains(md, "Still to do") {
		t.Fatalf("markdown:\n%s", md)
	}
}

// allow_empty lets an empty milestone through, and the notes say so rather than nothing.
func TestReleaseNotesAllowEmpty(t *testing.T) {
	f := setup(t)
	f.sim.AddIssue(notesRepo, githubsim.Issue{Title: "Release version 4.2.0 of CDC", Milestone: "4.2.0", Labels: []string{"release"}})
	with := map[string]any{"repo": notesRepo, "milestone": "4.2.0", "allow_empty": true}
	s := f.step(t, "github.release_notes", with)
	if p := f.plan(t, s); !p.NoChange || len(p.Details) != 1 || !strings.Contains(p.Details[0], `the notes say "No issues were recorded for this release."`) {
		t.Fatalf("plan %+v", p)
	}
	out := f.run(t, s)
	if out["markdown"] != "No issues were recorded for this release.\n" || out["issues"] != 0 || out["pull_requests"] != 0 {
		t.Fatalf("outputs %v", out)
	}
	// Open items only: listed as before (state all), not replaced.
	f.sim.AddIssue(notesRepo, githubsim.Issue{Title: "Still to do", Milestone: "4.2.0"})
	if md := f.run(t, s)["markdown"].(string); !strings.Contains(md, "Still to do") || strings.Contains(md, NoNotes) {
		t.Fatalf("markdown:\n%s", md)
	}
	// allow_empty known only after earlier steps: the plan does not predict a failure.
	f.ctx.SetUnknown("allow_empty")
	if _, err := f.step(t, "github.release_notes", map[string]any{"repo": notesRepo, "milestone": "9.9.9"}).Plan(context.Background(), f.ctx.StepContext); err != nil {
		t.Fatal(err)
	}
}

// With state open the notes list open items, yet the milestone's closed ones decide
// whether it is empty.
func TestReleaseNotesStateOpen(t *testing.T) {
	f := setup(t)
	f.sim.AddIssue(notesRepo, githubsim.Issue{Title: "Done", Milestone: "4.2.0", State: "closed", Labels: []string{"bug"}})
	f.sim.AddIssue(notesRepo, githubsim.Issue{Title: "Planned", Milestone: "4.2.0"})
	s := f.step(t, "github.release_notes", map[string]any{"repo": notesRepo, "milestone": "4.2.0", "state": "open"})
	f.plan(t, s)
	if md := f.run(t, s)["markdown"].(string); !strings.Contains(md, "Planned") || strings.Contains(md, "Done") {
		t.Fatalf("markdown:\n%s", md)
	}
}
