package rehearsal_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/steps/github/githubsim"
	"github.com/cessda/runbook/steps/github/githubsim/apicheck"
	"github.com/cessda/runbook/steps/rehearsal"
)

// knownViolations lists the violations githubsim's answers have until its rewrite fixes
// them (embedded in apicheck); section [steps/rehearsal] holds the rehearsals'.
const knownViolations = "steps/github/githubsim/apicheck/testdata/known-violations.txt"

// TestRehearsalsFollowGitHubsOpenAPI rehearses every product playbook and checks every
// exchange with githubsim, what runbook sends and what it is answered, against GitHub's
// published OpenAPI description. It fails on a violation not in knownViolations and on a
// line there that no longer occurs.
func TestRehearsalsFollowGitHubsOpenAPI(t *testing.T) {
	checker, err := apicheck.GitHub()
	if err != nil {
		t.Fatal(err)
	}
	rec := apicheck.NewRecorder(checker)
	stop := githubsim.ObserveEveryServer(rec.Observe)
	defer stop()

	playbooks, err := filepath.Glob("../../playbooks/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	inputs := map[string]map[string]string{}
	for _, p := range products {
		inputs[p.name] = p.set
	}
	rehearsed := 0
	for _, file := range playbooks {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		if name == "site" { // the site playbook is not a product release
			continue
		}
		set, ok := inputs[name]
		if !ok {
			t.Errorf("playbook %s: no inputs to rehearse it with; add it to products", name)
			continue
		}
		w := newWorld(t, name, set, rehearsal.Answers{})
		if rep := w.release(set); rep.Status != engine.RunSucceeded {
			t.Errorf("%s: status %s at %s: %s", name, rep.Status, rep.FailedStep, rep.Reason)
		}
		rehearsed++
	}
	stop()
	if rehearsed == 0 || rec.Exchanges() == 0 {
		t.Fatalf("%d playbooks rehearsed, %d exchanges with GitHub checked", rehearsed, rec.Exchanges())
	}
	allowed := apicheck.KnownViolations("steps/rehearsal")
	unexpected, gone := rec.Compare(allowed)
	t.Logf("%d playbooks rehearsed, %d exchanges with GitHub checked, %d distinct violations (%d known); operations not exercised: %v",
		rehearsed, rec.Exchanges(), len(rec.Keys()), len(allowed), rec.Unexercised())
	if len(unexpected) > 0 {
		t.Errorf("%d violations of GitHub's OpenAPI description not in %s [steps/rehearsal]:\n\t%s",
			len(unexpected), knownViolations, strings.Join(unexpected, "\n\t"))
	}
	if len(gone) > 0 {
		t.Errorf("%d lines of %s [steps/rehearsal] no longer occur; remove them:\n\t%s",
			len(gone), knownViolations, strings.Join(gone, "\n\t"))
	}
}
