package main

import (
	"testing"

	"github.com/cessda/runbook/engine"
)

func TestParseIssueRef(t *testing.T) {
	repo, n, err := parseIssueRef("cessda/cessda.cvs.two#42")
	if err != nil || repo != "cessda/cessda.cvs.two" || n != 42 {
		t.Errorf("got %q %d %v", repo, n, err)
	}
	for _, bad := range []string{"", "cessda#1", "cessda/x", "cessda/x#", "cessda/x#0", "cessda/x#1a", "a/b/c#1"} {
		if _, _, err := parseIssueRef(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestReportHasIssue: a run is found by its release issue (number or url, any case of
// the repository) or by one of its subtasks, and not by another repository's issue.
func TestReportHasIssue(t *testing.T) {
	rep := &engine.Report{Steps: []*engine.StepReport{
		{ID: "release_issue", Type: "github.release_issue", Params: map[string]any{"repo": "cessda/cessda.cvs.two"},
			Outputs: map[string]any{"number": float64(7), "url": "https://github.com/cessda/cessda.cvs.two/issues/7"}},
		{ID: "subtasks", Type: "github.subtask_issues", Params: map[string]any{"repo": "cessda/cessda.cvs.two"},
			Outputs: map[string]any{"numbers": []any{float64(8), float64(9)}}},
	}}
	for _, c := range []struct {
		repo string
		n    int
		want bool
	}{
		{"cessda/cessda.cvs.two", 7, true}, {"CESSDA/cessda.CVS.two", 7, true}, {"cessda/cessda.cvs.two", 9, true},
		{"cessda/cessda.cvs.two", 10, false}, {"cessda/cessda.cdc.versions", 7, false},
	} {
		if got := reportHasIssue(rep, c.repo, c.n); got != c.want {
			t.Errorf("%s#%d: %v, want %v", c.repo, c.n, got, c.want)
		}
	}
}
