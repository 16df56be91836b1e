package rehearsal_test

import (
	"context"
	"strings"
	"testing"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/steps/rehearsal"
)

const cvsRepo = "cessda/cessda.cvs.two"

func (w *world) changelog() string {
	c, _ := w.sb.GitHub.File(cvsRepo, "main", "CHANGELOG.md")
	return c
}

func leftSteps(rep *engine.Report) string {
	var ids []string
	for _, l := range rep.LeftBehind {
		ids = append(ids, l.Step)
	}
	return strings.Join(ids, ",")
}

// TestRefusedReleaseLeavesNoDebris: the service owner refuses the release. Nothing is
// tagged or deployed, the Zenodo drafts are discarded, the changelog gives its entries
// back to Unreleased (the file is as before the release, byte for byte), and the report
// says what is left (the release issue). The next attempt at the same version, approved,
// succeeds with no hand work.
func TestRefusedReleaseLeavesNoDebris(t *testing.T) {
	set := map[string]string{"version": "3.7.0"}
	w := newWorld(t, "cvs", set, rehearsal.Answers{Refuse: "the search is too slow"})
	before := w.changelog()
	rep := w.release(set)
	if rep.Status != engine.RunRejected {
		t.Fatalf("status %s at %s: %s", rep.Status, rep.FailedStep, rep.Reason)
	}
	st := w.sb.State("3.7.0")
	if len(st.Tags) != 0 {
		t.Errorf("tags after a refusal: %v", st.Tags)
	}
	if st.Zenodo["created"] != 0 {
		t.Errorf("Zenodo drafts left: %v", st.Zenodo)
	}
	if got := w.changelog(); got != before {
		t.Errorf("the changelog is not as before the release:\n--- before\n%s\n--- after\n%s", before, got)
	}
	if got := leftSteps(rep); got != "release_issue" {
		t.Errorf("left behind: %+v", rep.LeftBehind)
	}

	w.sb.Answer(rehearsal.Answers{})
	rep = w.release(set)
	if rep.Status != engine.RunSucceeded {
		t.Fatalf("next attempt: %s at %s: %s", rep.Status, rep.FailedStep, rep.Reason)
	}
	if !strings.Contains(w.changelog(), "## [3.7.0] - ") || strings.Count(w.changelog(), "## [3.7.0]") != 1 {
		t.Errorf("changelog after the next attempt:\n%s", w.changelog())
	}
}

// TestRevertedReleaseLeavesWhatThePolicySays: the service owner reverts the release after
// the deploy. Production is back; the tags stay; the changelog marks 3.7.0 [YANKED] and
// its entries are under Unreleased again; no Zenodo draft is left. A new run of 3.7.0 is
// refused by its preflight, before anything starts; 3.7.1 is released with no hand work,
// and carries the entries.
func TestRevertedReleaseLeavesWhatThePolicySays(t *testing.T) {
	set := map[string]string{"version": "3.7.0"}
	w := newWorld(t, "cvs", set, rehearsal.Answers{Revert: "users cannot log in"})
	rep := w.release(set)
	if rep.Status != engine.RunRolledBack {
		t.Fatalf("status %s at %s: %s", rep.Status, rep.FailedStep, rep.Reason)
	}
	st := w.sb.State("3.7.0")
	if len(st.Tags) == 0 {
		t.Error("the tags of a version that reached production are gone")
	}
	if st.Zenodo["created"] != 0 {
		t.Errorf("Zenodo drafts left: %v", st.Zenodo)
	}
	cl := w.changelog()
	if !strings.Contains(cl, "## [3.7.0] - ") || !strings.Contains(cl, "[YANKED]") || !strings.Contains(strings.SplitN(cl, "## [3.7.0]", 2)[0], "- A new feature") {
		t.Errorf("changelog after the revert:\n%s", cl)
	}
	if got := leftSteps(rep); got != "release_issue,tag" {
		t.Errorf("left behind: %+v", rep.LeftBehind)
	}

	w.sb.Answer(rehearsal.Answers{})
	in := w.inputs(set)
	pf, err := engine.Preflight(context.Background(), w.pb, in, engine.PlanOptions{Mode: "rehearsal", Clock: w.sb.Clock, Connect: w.sb.Connect})
	if err != nil || pf.Err() == nil || !strings.Contains(pf.Err().Error(), "tag 3.7.0 already exists") {
		t.Fatalf("a new run of the reverted version: %v %v", err, pf.Err())
	}
	next := map[string]string{"version": "3.7.1"}
	rep = w.release(next)
	if rep.Status != engine.RunSucceeded {
		t.Fatalf("next version: %s at %s: %s", rep.Status, rep.FailedStep, rep.Reason)
	}
	cl = w.changelog()
	released := strings.SplitN(strings.SplitN(cl, "## [3.7.1]", 2)[1], "## [3.7.0]", 2)[0]
	if !strings.Contains(released, "- A new feature") {
		t.Errorf("3.7.1 does not carry the entries of the reverted 3.7.0:\n%s", cl)
	}
	for w, images := range production(w.sb.State("3.7.1")) {
		if !strings.HasSuffix(images, ":3.7.1") {
			t.Errorf("%s runs %s", w, images)
		}
	}
}

// TestUnfinishedPreparationStopsBeforeProduction: open subtasks, empty release notes and a
// window that does not open each stop the release before production changes.
func TestUnfinishedPreparationStopsBeforeProduction(t *testing.T) {
	cases := []struct {
		name   string
		ans    rehearsal.Answers
		set    map[string]string
		status engine.RunStatus
		step   string
	}{
		{"subtasks open", rehearsal.Answers{OpenSubtasks: true}, nil, engine.RunWaiting, "pre_release_done"},
		{"empty release notes", rehearsal.Answers{EmptyMilestone: true}, nil, engine.RunFailed, "release_notes"},
		{"the picked day is past", rehearsal.Answers{}, map[string]string{"release_day": "2026-01-06"}, engine.RunFailed, "release_window"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			set := map[string]string{"version": "3.7.0"}
			for k, v := range c.set {
				set[k] = v
			}
			w := newWorld(t, "cvs", set, c.ans)
			rep := w.release(set)
			if rep.Status != c.status || rep.FailedStep != c.step {
				t.Fatalf("status %s at %s (%s), want %s at %s", rep.Status, rep.FailedStep, rep.Reason, c.status, c.step)
			}
			for _, id := range []string{"tag", "deploy"} {
				if s := rep.Step(id).Status; s != engine.StepPending {
					t.Errorf("%s %s", id, s)
				}
			}
			if got := w.sb.ProductionDigests(); len(got) == 0 {
				t.Error("no production")
			}
		})
	}
}
