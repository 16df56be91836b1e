package main

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/cessda/runbook/engine"
)

// `runbook resume --issue OWNER/REPO#N` names the run by its release issue, as a CI job
// triggered by a comment on that issue knows it: the run (in the state backend) whose
// github.release_issue step opened or reused issue N of OWNER/REPO, or whose
// github.subtask_issues step opened it as a subtask (closing a subtask also moves the
// release on). Of several runs of one issue (a release attempted again), the newest
// unfinished one.

var issueRefRE = regexp.MustCompile(`^([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)#([0-9]+)$`)

// parseIssueRef reads OWNER/REPO#N.
func parseIssueRef(s string) (repo string, n int, err error) {
	m := issueRefRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return "", 0, fmt.Errorf("--issue %q: want OWNER/REPO#N, e.g. cessda/cessda.cvs.two#42", s)
	}
	n, err = strconv.Atoi(m[2])
	if err != nil || n < 1 {
		return "", 0, fmt.Errorf("--issue %q: the issue number must be 1 or more", s)
	}
	return m[1], n, nil
}

// runOver says whether a run is over: nothing more happens in it, whatever is commented.
func runOver(s engine.RunStatus) bool {
	return s == engine.RunSucceeded || s == engine.RunRolledBack || s == engine.RunRejected
}

// runForIssue finds the run of a release issue (or of one of its subtasks) among the
// runs the backend keeps, and returns its id: the newest unfinished one. It fails
// clearly when no run has that issue, or when the newest run of it is over.
func runForIssue(ctx context.Context, state stateBackend, ref string) (string, error) {
	repo, n, err := parseIssueRef(ref)
	if err != nil {
		return "", err
	}
	reps, err := state.runs(ctx, "")
	if err != nil {
		return "", err
	}
	var hits []*engine.Report
	for _, r := range reps {
		if reportHasIssue(r, repo, n) {
			hits = append(hits, r)
		}
	}
	if len(hits) == 0 {
		return "", fmt.Errorf("no run has %s#%d as its release issue (or one of its subtasks) among the %d runs kept here; is --state (or --state-dir) the one the release ran with? `runbook runs` lists them", repo, n, len(reps))
	}
	// Unfinished first, then newest first.
	sort.SliceStable(hits, func(i, j int) bool {
		oi, oj := runOver(hits[i].Status), runOver(hits[j].Status)
		if oi != oj {
			return !oi
		}
		if !hits[i].StartedAt.Equal(hits[j].StartedAt) {
			return hits[i].StartedAt.After(hits[j].StartedAt)
		}
		return hits[i].RunID > hits[j].RunID
	})
	best := hits[0]
	if runOver(best.Status) {
		v, _ := best.Inputs["version"].(string)
		return "", fmt.Errorf("the release of %s#%d is over: run %s (%s %s) ended %s; nothing is waiting for this comment (start a new run for a new attempt)", repo, n, best.RunID, best.Product, v, best.Status)
	}
	return best.RunID, nil
}

// reportHasIssue says whether a run's release issue, or one of its subtask issues, is
// issue n of repo: by the steps' repo parameter and their outputs (number and url of
// github.release_issue, numbers of github.subtask_issues).
func reportHasIssue(r *engine.Report, repo string, n int) bool {
	for _, st := range r.Steps {
		switch st.Type {
		case "github.release_issue":
			if sameRepo(st.Params, repo) && (numberIs(st.Outputs["number"], n) || urlIs(st.Outputs["url"], repo, n)) {
				return true
			}
		case "github.subtask_issues":
			if !sameRepo(st.Params, repo) {
				continue
			}
			switch l := st.Outputs["numbers"].(type) {
			case []any:
				for _, x := range l {
					if numberIs(x, n) {
						return true
					}
				}
			case []int:
				for _, x := range l {
					if x == n {
						return true
					}
				}
			}
		}
	}
	return false
}

func sameRepo(params map[string]any, repo string) bool {
	r, _ := params["repo"].(string)
	return r != "" && strings.EqualFold(r, repo)
}

// numberIs compares a number as a report holds it (a JSON number, or an int when the
// report was rebuilt from a journal) with n.
func numberIs(v any, n int) bool {
	switch x := v.(type) {
	case int:
		return x == n
	case int64:
		return x == int64(n)
	case float64:
		return x == float64(n)
	case string:
		return x == strconv.Itoa(n)
	}
	return false
}

// urlIs says whether an issue's HTML address is issue n of repo (any host: GitHub
// Enterprise too).
func urlIs(v any, repo string, n int) bool {
	u, _ := v.(string)
	return u != "" && strings.HasSuffix(strings.ToLower(u), strings.ToLower("/"+repo+"/issues/"+strconv.Itoa(n)))
}
