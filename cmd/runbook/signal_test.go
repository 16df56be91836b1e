package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
)

// interruptPlaybook has a step that runs until it is stopped; once it has started it has
// made its effect (the file), and a second run of it finds that and does nothing.
const interruptPlaybook = `runbook: v1
product: sigtest
inputs:
  dir: {type: string, required: true}
steps:
  - id: first
    type: sleep
    with: {duration: 1ms}
  - id: work
    type: shell
    with:
      argv: [sh, -c, 'touch "$DIR/started"; exec sleep 60']
      env: {DIR: "${{ inputs.dir }}"}
      creates: "${{ inputs.dir }}/started"
      kill_grace: 100ms
  - id: last
    type: sleep
    with: {duration: 1ms}
`

// TestSIGINTThenResume sends a real SIGINT to the runbook binary while a step runs: the
// step's command is stopped, the process exits 130, the report on disk is whole and says
// cancelled (the step cancelled, the next one pending), and resume finishes the run.
func TestSIGINTThenResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildRunbook(t)
	dir := t.TempDir()
	pb := filepath.Join(dir, "pb.yaml")
	if err := os.WriteFile(pb, []byte(interruptPlaybook), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	report := filepath.Join(dir, "report.json")
	cmd := exec.Command(bin, "run", pb, "--set", "dir="+dir, "--state-dir", state, "--report", report, "--non-interactive")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait (in short polls) until the step's command has started.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "started")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the step never started\n%s", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitInterrupted {
		t.Fatalf("after SIGINT: %v, want exit %d\n%s", err, exitInterrupted, out.String())
	}

	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep engine.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("the report after SIGINT is not whole JSON: %v", err)
	}
	if rep.Status != engine.RunCancelled || rep.Step("work").Status != engine.StepCancelled || rep.Step("last").Status != engine.StepPending {
		t.Fatalf("after SIGINT: run %s, work %s, last %s", rep.Status, rep.Step("work").Status, rep.Step("last").Status)
	}
	if !strings.Contains(out.String(), "runbook resume "+rep.RunID) {
		t.Errorf("the output does not say how to continue:\n%s", out.String())
	}

	resume := exec.Command(bin, "resume", rep.RunID, "--state-dir", state, "--report", report)
	if b, err := resume.CombinedOutput(); err != nil {
		t.Fatalf("resume: %v\n%s", err, b)
	}
	b, _ = os.ReadFile(report)
	var done engine.Report
	if err := json.Unmarshal(b, &done); err != nil {
		t.Fatal(err)
	}
	if done.Status != engine.RunSucceeded || len(done.Sessions) != 2 {
		t.Fatalf("after resume: run %s with %d sessions", done.Status, len(done.Sessions))
	}
	if skipped, _ := done.Step("work").Outputs["skipped"].(bool); !skipped {
		t.Errorf("the resumed step ran its command again instead of finding its effect: %v", done.Step("work").Outputs)
	}
}
