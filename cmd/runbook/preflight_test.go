package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cessda/runbook/engine"
)

// secretPlaybook talks to GitHub and Zenodo with tokens from the environment.
const secretPlaybook = `runbook: v1
product: preflighttest
connections:
  github: {type: github, token: {env: PREFLIGHT_CLI_GITHUB}}
  zenodo: {type: zenodo, token: {env: PREFLIGHT_CLI_ZENODO}}
steps:
  - id: note
    type: github.comment
    with: {repo: cessda/example, issue: 1, marker: hello, body: hello}
  - id: draft
    type: zenodo.reserve_doi
    with: {title: Example 1.0.0, version: 1.0.0}
`

// TestRunWithoutSecretsChangesNothing: a run with no tokens is refused before it starts,
// with every missing secret named at once: exit 2, no run recorded, no release lock taken,
// so the next run (with the secrets) is not blocked.
func TestRunWithoutSecretsChangesNothing(t *testing.T) {
	t.Setenv("PREFLIGHT_CLI_GITHUB", "")
	t.Setenv("PREFLIGHT_CLI_ZENODO", "")
	dir := t.TempDir()
	pb := filepath.Join(dir, "pb.yaml")
	if err := os.WriteFile(pb, []byte(secretPlaybook), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	code, out := lockCLI(t, "run", pb, "--state-dir", state, "--non-interactive")
	if code != exitInvalid {
		t.Fatalf("exit %d, want %d:\n%s", code, exitInvalid, out)
	}
	for _, want := range []string{"2 problem(s)", "PREFLIGHT_CLI_GITHUB is not set", "(steps: note)", "PREFLIGHT_CLI_ZENODO is not set", "(steps: draft)", "no run was started"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if entries, _ := os.ReadDir(state); len(entries) != 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("the refused run left %v in the state directory", names)
	}
	code, out = lockCLI(t, "preflight", pb)
	if code != exitInvalid || !strings.Contains(out, "PREFLIGHT_CLI_GITHUB") {
		t.Errorf("preflight: exit %d\n%s", code, out)
	}
}

// TestPreflightOfProductPlaybooks: the product playbooks pass their preflight against
// the built-in simulators, which answer every check as the real services do.
func TestPreflightOfProductPlaybooks(t *testing.T) {
	for _, p := range []string{"cvs", "cdc", "eqb"} {
		code, out := lockCLI(t, "preflight", "--rehearse", "../../playbooks/"+p+".yaml", "--set", "version=3.7.0")
		// The preflight also says who the credentials act as (recorded in the report).
		if code != exitOK || !strings.Contains(out, "no problems; acting on github as runbook-bot, jenkins as runbook") {
			t.Errorf("%s: exit %d\n%s", p, code, out)
		}
	}
}

// rollbackPlaybook waits for the service owner after a deploy; its revert runs only when
// the release is to be rolled back.
const rollbackPlaybook = `runbook: v1
product: rollbacktest
steps:
  - id: deploy
    type: sleep
    with: {duration: 1ms}
  - id: stable
    type: manual
    on_error: rollback
    with: {instruction: is production stable}
on_failure:
  - id: revert
    type: sleep
    rollback: true
    when: failure.rollback && steps.deploy.status == "succeeded"
    with: {duration: 1ms}
`

// TestResumeRollbackAndExitCodes: a waiting run exits 3; --rollback needs a reason; with
// one, the waiting gate is answered no, the revert runs and the choice is recorded with
// who and why; a refusal without rollback exits 5, not 3; resuming a run that is over
// says so and exits 0.
func TestResumeRollbackAndExitCodes(t *testing.T) {
	t.Setenv("RUNBOOK_ACTOR", "owner-login")
	dir := t.TempDir()
	pb := filepath.Join(dir, "pb.yaml")
	if err := os.WriteFile(pb, []byte(rollbackPlaybook), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	runID := func() string {
		t.Helper()
		code, out := lockCLI(t, "run", pb, "--state-dir", state, "--non-interactive")
		if code != exitWaiting {
			t.Fatalf("run: exit %d\n%s", code, out)
		}
		ents, _ := os.ReadDir(filepath.Join(state, "runs"))
		for _, e := range ents {
			if rep, _, err := readJournalOf(state, e.Name()); err == nil && rep.Status == "waiting" {
				return e.Name()
			}
		}
		t.Fatal("no waiting run")
		return ""
	}
	id := runID()
	if code, out := lockCLI(t, "resume", id, "--state-dir", state, "--rollback"); code != exitInvalid || !strings.Contains(out, "need --reason") {
		t.Fatalf("--rollback without a reason: exit %d\n%s", code, out)
	}
	code, out := lockCLI(t, "resume", id, "--state-dir", state, "--rollback", "--reason", "search is broken")
	if code != exitFailed || !strings.Contains(out, "rolled_back") {
		t.Fatalf("--rollback: exit %d\n%s", code, out)
	}
	rep, _, err := readJournalOf(state, id)
	if err != nil {
		t.Fatal(err)
	}
	last := rep.Choices[len(rep.Choices)-1]
	if rep.Step("revert").Status != "succeeded" || last.Action != "rollback" || last.By != "owner-login" || last.Reason != "search is broken" || last.Step != "stable" {
		t.Errorf("revert %s, choice %+v", rep.Step("revert").Status, last)
	}
	if code, out := lockCLI(t, "resume", id, "--state-dir", state, "--rollback", "--reason", "again"); code != exitInvalid || !strings.Contains(out, "already rolled back") {
		t.Errorf("a second rollback: exit %d\n%s", code, out)
	}

	// /revert at the stable gate (on_error: rollback) rolls back: exit 1.
	id = runID()
	if code, out := lockCLI(t, "resume", id, "--state-dir", state, "--refuse", "stable", "--reason", "not today"); code != exitFailed || !strings.Contains(out, "rolled_back") {
		t.Fatalf("refuse at the stable gate: exit %d\n%s", code, out)
	}
	// A refusal at a gate whose failure only stops: rejected, exit 5 (a waiting run is 3).
	if err := os.WriteFile(pb, []byte(strings.Replace(rollbackPlaybook, "on_error: rollback", "on_error: stop", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	id = runID()
	if code, out := lockCLI(t, "resume", id, "--state-dir", state, "--refuse", "stable", "--reason", "not today"); code != exitRejected || !strings.Contains(out, "refused") {
		t.Fatalf("refuse: exit %d, want %d\n%s", code, exitRejected, out)
	}
	id = runID()
	if code, out := lockCLI(t, "resume", id, "--state-dir", state, "--confirm", "stable"); code != exitOK {
		t.Fatalf("confirm: exit %d\n%s", code, out)
	}
	if code, out := lockCLI(t, "resume", id, "--state-dir", state); code != exitOK || !strings.Contains(out, "already succeeded") {
		t.Errorf("resume of a succeeded run: exit %d\n%s", code, out)
	}
}

func readJournalOf(state, id string) (*engine.Report, []*engine.Event, error) {
	return engine.ReadJournal(filepath.Join(state, "runs", id))
}
