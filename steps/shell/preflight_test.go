package shell

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/engine/enginetest"
)

func preflightStep(t *testing.T, w map[string]any, unknown ...string) error {
	t.Helper()
	pf, ok := enginetest.Decode(t, "shell", w).(engine.Preflighter)
	if !ok {
		t.Fatal("shell is not an engine.Preflighter")
	}
	sc := enginetest.NewContext(t, "cmd")
	sc.SetUnknown(unknown...)
	return pf.Preflight(context.Background(), sc.StepContext)
}

func TestPreflightFindsTheCommand(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "ran")
	// The helper would create marker if it ran: preflight must not run it.
	for _, w := range []map[string]any{
		with("append", []string{marker}, nil),          // an absolute path
		{"argv": []any{"sh", "-c", "touch " + marker}}, // found in PATH
		{"argv": []any{"./" + filepath.Base(os.Args[0])}, "workdir": filepath.Dir(os.Args[0])},
	} {
		if err := preflightStep(t, w); err != nil {
			t.Errorf("%v: %v", w["argv"], err)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("preflight ran the command")
	}
}

func TestPreflightCommandMissing(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "deploy.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		w    map[string]any
		want string
	}{
		{map[string]any{"argv": []any{"runbook-no-such-command-4e1"}}, "runbook-no-such-command-4e1: not found in PATH"},
		{map[string]any{"argv": []any{"git"}, "env": map[string]any{"PATH": dir}}, "git: not found in PATH (" + dir + ")"},
		{map[string]any{"argv": []any{filepath.Join(dir, "missing")}}, filepath.Join(dir, "missing") + " does not exist"},
		{map[string]any{"argv": []any{"./missing"}, "workdir": dir}, "(" + filepath.Join(dir, "missing") + " does not exist): check argv[0] (a relative path is taken from workdir " + dir + ")"},
		{map[string]any{"argv": []any{script}}, script + " is not executable by this user (mode -rw-r--r--): chmod +x it"},
		{map[string]any{"argv": []any{dir}}, dir + " is a directory"},
	} {
		err := preflightStep(t, tc.w)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error = %v, want %q", tc.w["argv"], err, tc.want)
		}
	}
}

func TestPreflightSkipsWhatIsKnownOnlyAfterRun(t *testing.T) {
	if err := preflightStep(t, map[string]any{"argv": []any{"runbook-no-such-command-4e1"}}, "argv"); err != nil {
		t.Errorf("unknown argv: %v", err)
	}
	if err := preflightStep(t, map[string]any{"argv": []any{"tool"}, "env": map[string]any{"PATH": ""}}, "env.PATH"); err != nil {
		t.Errorf("unknown PATH: %v", err)
	}
	if err := preflightStep(t, map[string]any{"argv": []any{"./build/tool"}, "workdir": ""}, "workdir"); err != nil {
		t.Errorf("unknown workdir: %v", err)
	}
}
