//go:build unix

package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cessda/runbook/engine"
)

// The events of read-only and skipped steps are not fsynced on their own (README
// "Durability"): a run killed right after one loses them, and its resume must read again
// what it lost, and nothing more: the writing step before them is not run again, the one
// after runs once.
func TestCrashAfterReadOnlyAndSkippedStep(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildRunbook(t)
	var gets atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		w.Write([]byte("ok"))
	}))
	defer srv.Close()

	// world makes a fresh state directory and effects file, and the playbook writing to it.
	world := func(t *testing.T) (stateDir, playbook, effects string) {
		dir := t.TempDir()
		effects = filepath.Join(dir, "effects")
		shell := func(line string) string {
			return fmt.Sprintf("{argv: [sh, -c, %q]}", "echo "+line+" >> "+effects)
		}
		playbook = filepath.Join(dir, "ro.yaml")
		pb := "runbook: v1\nproduct: crashro\nsteps:\n" +
			"  - {id: w1, type: shell, with: " + shell("w1") + "}\n" +
			"  - {id: r1, type: http.check, with: {url: \"" + srv.URL + "\"}}\n" +
			"  - {id: k1, type: shell, when: \"false\", with: " + shell("k1") + "}\n" +
			"  - {id: w2, type: shell, with: " + shell("w2") + "}\n"
		if err := os.WriteFile(playbook, []byte(pb), 0o644); err != nil {
			t.Fatal(err)
		}
		return filepath.Join(dir, "state"), playbook, effects
	}
	runbook := func(stateDir, crash string, args ...string) (string, error) {
		cmd := exec.Command(bin, append([]string{"--state-dir", stateDir, "--quiet"}, args...)...)
		env := []string{}
		for _, e := range os.Environ() {
			if !strings.HasPrefix(e, "RUNBOOK_CRASH_") && !strings.HasPrefix(e, "RUNBOOK_STATE_DIR=") {
				env = append(env, e)
			}
		}
		if crash != "" {
			env = append(env, crash)
		}
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	runDir := func(t *testing.T, stateDir string) string {
		ents, err := os.ReadDir(filepath.Join(stateDir, "runs"))
		if err != nil || len(ents) != 1 {
			t.Fatalf("want one run directory: %v %v", ents, err)
		}
		return filepath.Join(stateDir, "runs", ents[0].Name())
	}

	// The uninterrupted run says after which event each step ended.
	stateDir, pb, _ := world(t)
	if out, err := runbook(stateDir, "", "run", pb); err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	_, evs, err := engine.ReadJournal(runDir(t, stateDir))
	if err != nil {
		t.Fatal(err)
	}
	endOf := map[string]int{}
	for i, ev := range evs {
		if ev.Kind == engine.EventEnd {
			endOf[ev.Step] = i + 1
		}
	}

	for _, step := range []string{"r1", "k1"} {
		t.Run("after "+step, func(t *testing.T) {
			stateDir, pb, effects := world(t)
			gets.Store(0)
			n := endOf[step]
			out, err := runbook(stateDir, fmt.Sprintf("%s=%d", crashEvent, n), "run", pb)
			if !signalled(err) {
				t.Fatalf("the run was not killed after event %d (%v)\n%s", n, err, out)
			}
			dir := runDir(t, stateDir)
			_, evs, err := engine.ReadJournal(dir)
			if err != nil {
				t.Fatal(err)
			}
			// What a crash keeps: up to w1's end, fsynced; r1's events wait for the next
			// fsync (or the FileStore's own, 200 ms later, which a busy machine may reach).
			kept := len(evs)
			switch last := evs[len(evs)-1]; {
			case len(evs) > n:
				t.Errorf("the journal has %d events after a kill after event %d", len(evs), n)
			case len(evs) == n:
				t.Logf("the FileStore synced before the kill: the resume has nothing to read again")
			case last.Step != "w1":
				t.Errorf("the journal kept %d events up to %s %s, want those up to w1's end", len(evs), last.Kind, last.Step)
			}
			if out, err := runbook(stateDir, "", "resume", filepath.Base(dir)); err != nil {
				t.Fatalf("resume: %v\n%s", err, out)
			}
			rep, evs, err := engine.ReadJournal(dir)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Status != engine.RunSucceeded {
				t.Fatalf("resumed run %s: %s", rep.Status, rep.Reason)
			}
			for id, want := range map[string]engine.StepStatus{"w1": engine.StepSucceeded, "r1": engine.StepSucceeded, "k1": engine.StepSkipped, "w2": engine.StepSucceeded} {
				if got := rep.Step(id).Status; got != want {
					t.Errorf("step %s %s, want %s", id, got, want)
				}
			}
			starts := map[string]int{}
			for _, ev := range evs {
				if ev.Kind == engine.EventStart {
					starts[ev.Step]++
				}
			}
			if starts["w1"] != 1 || starts["w2"] != 1 || starts["k1"] != 0 {
				t.Errorf("starts %v: the writers must run once each, the skipped step never", starts)
			}
			if got, want := gets.Load(), int64(2); kept < n && got != want || got > want {
				t.Errorf("%d GETs, want %d: the lost check is read again, once", got, want)
			}
			b, err := os.ReadFile(effects)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			if string(b) != "w1\nw2\n" {
				t.Errorf("effects %q, want each writer's once", b)
			}
		})
	}
}
