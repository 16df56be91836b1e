package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
		if code != exitOK || !strings.Contains(out, "no problems") {
			t.Errorf("%s: exit %d\n%s", p, code, out)
		}
	}
}
