package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// gatePlaybook waits for a person at its second step, so its run stays open.
const gatePlaybook = `runbook: v1
product: locktest
steps:
  - id: first
    type: sleep
    with: {duration: 1ms}
  - id: confirm
    type: manual
    with: {instruction: check the thing}
`

func lockCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &out)
	return code, out.String()
}

// TestReleaseLock: a run waiting for a person holds its product: a second run is refused
// (exit 4) with the holder's run id; a take-over is explicit; the waiting run can still be
// resumed by its own id; when the run ends the product is free again.
func TestReleaseLock(t *testing.T) {
	dir := t.TempDir()
	pb := filepath.Join(dir, "pb.yaml")
	os.WriteFile(pb, []byte(gatePlaybook), 0o644)
	state := filepath.Join(dir, "state")

	code, out := lockCLI(t, "run", pb, "--state-dir", state, "--non-interactive")
	if code != exitWaiting {
		t.Fatalf("first run: exit %d\n%s", code, out)
	}
	entries, _ := os.ReadDir(filepath.Join(state, "runs"))
	if len(entries) != 1 {
		t.Fatalf("runs: %d", len(entries))
	}
	first := entries[0].Name()

	code, out = lockCLI(t, "run", pb, "--state-dir", state, "--non-interactive")
	if code != exitLocked || !strings.Contains(out, first) || !strings.Contains(out, "--take-over") {
		t.Fatalf("second run: exit %d, want %d naming %s\n%s", code, exitLocked, first, out)
	}

	code, out = lockCLI(t, "runs", "--state-dir", state)
	if code != exitOK || !strings.Contains(out, first) || !strings.Contains(out, "waiting") || !strings.Contains(out, "confirm") {
		t.Fatalf("runs: exit %d\n%s", code, out)
	}
	if code, out = lockCLI(t, "runs", "another", "--state-dir", state); code != exitOK || strings.TrimSpace(out) != "no runs" {
		t.Fatalf("runs of another product: exit %d\n%s", code, out)
	}

	code, out = lockCLI(t, "resume", first, "--state-dir", state, "--confirm", "confirm")
	if code != exitOK {
		t.Fatalf("resume of the lock holder: exit %d\n%s", code, out)
	}
	code, out = lockCLI(t, "run", pb, "--state-dir", state, "--non-interactive")
	if code != exitWaiting {
		t.Fatalf("after the holder ended, a new run: exit %d\n%s", code, out)
	}
	code, out = lockCLI(t, "run", pb, "--state-dir", state, "--non-interactive", "--take-over")
	if code != exitWaiting {
		t.Fatalf("take-over: exit %d\n%s", code, out)
	}
}
