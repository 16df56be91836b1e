package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateFragmentAlone: `runbook validate` checks a fragment or the site file by
// itself (no false errors for what the including playbook provides), reports a real
// mistake in a fragment at its file:line:col, and plan refuses a fragment.
func TestValidateFragmentAlone(t *testing.T) {
	frags, _ := filepath.Glob("../../playbooks/fragments/*.yaml")
	args := append([]string{"validate", "../../playbooks/site.yaml", "../../playbooks/cvs.yaml"}, frags...)
	var out, errb bytes.Buffer
	if code := run(args, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"playbooks/fragments/gate.yaml: valid (fragment, checked alone)\n", "playbooks/site.yaml: valid (site, checked alone)\n", "playbooks/cvs.yaml: valid\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "note:") {
		t.Errorf("the shipped fragments leave something unchecked:\n%s", out.String())
	}

	dir := t.TempDir()
	bad := filepath.Join(dir, "frag.yaml")
	os.WriteFile(bad, []byte("fragment: v1\nparams:\n  tracker: {type: string, required: true}\nsteps:\n  - id: issue\n    type: github.comment\n    role: service_owner\n    with: {repo: \"${{ params.trackr }}\", issue: \"${{ steps.release_issue.outputs.number }}\", body: hi, marker: m}\n"), 0o644)
	out.Reset()
	errb.Reset()
	code := run([]string{"validate", bad}, strings.NewReader(""), &out, &errb)
	msg := errb.String()
	if code != exitInvalid || !strings.Contains(msg, bad+`:8:30: expression "params.trackr": unknown field trackr`) ||
		!strings.Contains(msg, bad+`:8:54: expression "steps.release_issue.outputs.number" refers to unknown step "release_issue"`) {
		t.Errorf("exit %d\n%s\n%s", code, out.String(), msg)
	}
	if !strings.Contains(out.String()+msg, "needs.steps") {
		t.Errorf("no hint to declare the step under needs.steps:\n%s", msg)
	}

	out.Reset()
	errb.Reset()
	if code := run([]string{"plan", "../../playbooks/fragments/gate.yaml"}, strings.NewReader(""), &out, &errb); code != exitInvalid || !strings.Contains(errb.String(), "not a playbook") {
		t.Errorf("plan of a fragment: exit %d\n%s", code, errb.String())
	}
}
