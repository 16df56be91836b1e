package main

import (
	"strings"
	"testing"
)

// TestUsageErrorsExitTwo: every mistake in a command line exits 2 with what to do, decided
// by the kind of mistake, not by the words of the error.
func TestUsageErrorsExitTwo(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"vlidate", "x.yaml"}, `unknown command "vlidate" (did you mean "validate"?)`},
		{[]string{"plan"}, "runbook plan: accepts 1 arg(s), received 0; usage: runbook plan FILE"},
		{[]string{"run", "--bogus", "x.yaml"}, "unknown flag: --bogus"},
		{[]string{"resume"}, "usage: runbook resume RUN"},
	} {
		code, out := lockCLI(t, c.args...)
		if code != exitInvalid || !strings.Contains(out, c.want) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s", c.args, code, exitInvalid, c.want, out)
		}
	}
	if code, out := lockCLI(t); code != exitOK || !strings.Contains(out, "Usage:") {
		t.Errorf("no arguments: exit %d\n%s", code, out)
	}
}
