package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// windowPlaybook's window was one day in the past: a real run is always outside it.
const windowPlaybook = `runbook: v1
product: windowtest
steps:
  - id: release_window
    type: schedule.window
    with: {dates: ["2020-01-07"], time_zone: Europe/Oslo}
  - id: deploy
    type: sleep
    with: {duration: 1ms}
`

// TestOutsideWindow: outside its window a run does not reach the deploy; --outside-window
// needs a reason, and with one the run goes on, recorded with who and why.
func TestOutsideWindow(t *testing.T) {
	t.Setenv("RUNBOOK_ACTOR", "release-manager")
	dir := t.TempDir()
	pb := filepath.Join(dir, "pb.yaml")
	if err := os.WriteFile(pb, []byte(windowPlaybook), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	code, out := lockCLI(t, "run", pb, "--state-dir", state, "--non-interactive")
	if code != exitFailed || !strings.Contains(out, "does not open again") {
		t.Fatalf("outside the window: exit %d\n%s", code, out)
	}
	if code, out := lockCLI(t, "run", pb, "--state-dir", state, "--non-interactive", "--outside-window", "--take-over"); code != exitInvalid || !strings.Contains(out, "needs --reason") {
		t.Fatalf("--outside-window without a reason: exit %d\n%s", code, out)
	}
	code, out = lockCLI(t, "run", pb, "--state-dir", state, "--non-interactive", "--outside-window", "--reason", "security fix", "--take-over")
	if code != exitOK {
		t.Fatalf("--outside-window: exit %d\n%s", code, out)
	}
	ents, _ := os.ReadDir(filepath.Join(state, "runs"))
	found := false
	for _, e := range ents {
		rep, _, err := readJournalOf(state, e.Name())
		if err != nil || rep.Status != "succeeded" {
			continue
		}
		found = true
		out := rep.Step("release_window").Outputs
		if out["allowed_by"] != "release-manager" || out["reason"] != "outside the release window: security fix" || out["inside"] != false {
			t.Errorf("window outputs %v", out)
		}
		if len(rep.Choices) == 0 || rep.Choices[0].By != "release-manager" || rep.Choices[0].Action != "confirm" {
			t.Errorf("choices %+v", rep.Choices)
		}
	}
	if !found {
		t.Error("no succeeded run")
	}
}
