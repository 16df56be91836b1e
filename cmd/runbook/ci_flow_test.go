//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/steps/rehearsal"
)

// TestCIReleaseFlow plays the commands of examples/ci/release.yml and
// release-comment.yml in order against a `runbook sandbox` whose people are silent, each
// as a separate process sharing nothing but the state directory: the start (workflow
// dispatch) ends waiting; then, for every gate the release waits at, the test does what
// the person would in the release issue (ticks the checklist item, closes the subtasks,
// comments /approve, later /stable, as the service owner) through the sandbox's control
// endpoint, and runs the comment workflow's command, `runbook resume --issue
// OWNER/REPO#N`, until the release is done. Then it checks the report and the world.
func TestCIReleaseFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs a sandbox and several processes")
	}
	start := time.Now()
	bin := buildRunbook(t)
	dir := t.TempDir()
	// The playbook as it is: --non-interactive makes its gates end the run waiting.
	pb, err := filepath.Abs(filepath.Join("..", "..", "playbooks", "cvs.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Join(dir, "state")
	sbDir := filepath.Join(dir, "sandbox")
	conns := filepath.Join(sbDir, "connections.json")

	sb := exec.Command(bin, "--state-dir", stateDir, "sandbox", pb, "--set", "version=3.7.0", "--silent-people", "--dir", sbDir)
	sb.Env = ciEnv()
	var sbOut bytes.Buffer
	sb.Stdout, sb.Stderr = &sbOut, &sbOut
	if err := sb.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sb.Process.Kill()
		sb.Wait()
		if t.Failed() {
			t.Logf("sandbox output:\n%s", sbOut.String())
		}
	})
	var f rehearsal.ConnectionsFile
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(conns); err == nil && json.Unmarshal(b, &f) == nil && f.Control != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sandbox: no %s after 30s\n%s", conns, sbOut.String())
		}
	}
	runbook := func(args ...string) (string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append([]string{"--state-dir", stateDir}, args...)...)
		cmd.Env = ciEnv()
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return string(out), 0
		case errors.As(err, &ee) && ee.Exited():
			return string(out), ee.ExitCode()
		}
		t.Fatalf("runbook %s: %v\n%s", strings.Join(args, " "), err, out)
		return "", -1
	}

	// (a) release.yml: the start ends when the release waits for a person.
	out, code := runbook("run", pb, "--set", "version=3.7.0", "--sandbox", conns, "--non-interactive")
	if code != exitWaiting {
		t.Fatalf("run: exit %d, want %d (waiting)\n%s", code, exitWaiting, out)
	}
	runs, _ := os.ReadDir(filepath.Join(stateDir, "runs"))
	if len(runs) != 1 {
		t.Fatalf("%d runs after the start, want 1", len(runs))
	}
	runID := runs[0].Name()
	report := func() *engine.Report {
		t.Helper()
		rep, _, err := engine.ReadJournal(filepath.Join(stateDir, "runs", runID))
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	rep := report()
	const tracker = "cessda/cessda.cvs.two"
	ri := rep.Step("release_issue")
	if ri == nil || ciInt(ri.Outputs["number"]) < 1 {
		t.Fatalf("no release issue in the report after the start: %+v", ri)
	}
	issue := ciInt(ri.Outputs["number"])
	ref := fmt.Sprintf("%s#%d", tracker, issue)
	owner := "cvs-service-owner" // the playbook's role service_owner

	// The comment workflow's command names a run only by its issue: one that is not a
	// release issue is refused clearly.
	if out, code := runbook("resume", "--issue", tracker+"#999", "--sandbox", conns, "--non-interactive"); code != exitInvalid || !strings.Contains(out, "no run has "+tracker+"#999") {
		t.Errorf("resume --issue of an unknown issue: exit %d, want %d with \"no run has\"\n%s", code, exitInvalid, out)
	}

	// (b)..(d): each gate as its person answers it, then the comment workflow's resume.
	var waited []string
	for i := 0; ; i++ {
		if i == 12 {
			t.Fatalf("still not done after %d resumes; waited at %v", i, waited)
		}
		rep = report()
		if rep.Status != engine.RunWaiting {
			t.Fatalf("run %s: status %s at %s (%s), want waiting; waited at %v", runID, rep.Status, rep.FailedStep, rep.Reason, waited)
		}
		step := rep.FailedStep
		waited = append(waited, step)
		sr := rep.Step(step)
		resumeRef := ref
		switch {
		case sr != nil && sr.Type == "github.checklist":
			key, _ := sr.Params["key"].(string)
			ciPeople(t, f.Control, "tick", rehearsal.PeopleAction{Repo: tracker, Issue: issue, Item: key})
		case sr != nil && sr.Type == "github.subtasks_done":
			nums, _ := rep.Step("subtasks").Outputs["numbers"].([]any)
			if len(nums) == 0 {
				t.Fatalf("waiting at %s, but the report has no subtasks", step)
			}
			for _, n := range nums {
				ciPeople(t, f.Control, "close", rehearsal.PeopleAction{Repo: tracker, Issue: ciInt(n)})
			}
			// GitHub tells the tracker's workflow that a subtask was closed: it resumes
			// by the subtask's number.
			resumeRef = fmt.Sprintf("%s#%d", tracker, ciInt(nums[len(nums)-1]))
		case step == "approval":
			ciPeople(t, f.Control, "comment", rehearsal.PeopleAction{Repo: tracker, Issue: issue, User: owner, Body: "/approve"})
		case step == "stable":
			ciPeople(t, f.Control, "comment", rehearsal.PeopleAction{Repo: tracker, Issue: issue, User: owner, Body: "/stable\nThe functional tests pass."})
		default:
			t.Fatalf("waiting at %s (%s): the test does not know who answers it", step, rep.Reason)
		}
		out, code = runbook("resume", "--issue", resumeRef, "--sandbox", conns, "--non-interactive")
		if code == 0 {
			break
		}
		if code != exitWaiting {
			t.Fatalf("resume --issue %s after %s: exit %d\n%s", resumeRef, step, code, out)
		}
	}
	t.Logf("waited at %v; %s", waited, time.Since(start).Round(time.Millisecond))
	if a, s := ciIndex(waited, "approval"), ciIndex(waited, "stable"); a < 0 || s < a {
		t.Errorf("waited at %v: want the approval, then stable", waited)
	}

	rep = report()
	if rep.Status != engine.RunSucceeded {
		t.Fatalf("run %s: %s at %s (%s), want succeeded", runID, rep.Status, rep.FailedStep, rep.Reason)
	}
	if len(rep.Sessions) != len(waited)+1 {
		t.Errorf("%d sessions, want %d (the start and one resume per wait)", len(rep.Sessions), len(waited)+1)
	}
	for _, gate := range []string{"approval", "stable"} {
		sr := rep.Step(gate)
		if sr == nil || sr.Status != engine.StepSucceeded || sr.Outputs["approver"] != owner {
			t.Errorf("step %s: want succeeded, approved by %s; got %+v", gate, owner, sr)
		}
	}

	// The world: every component tagged 3.7.0, production runs the 3.7.0 images.
	var world rehearsal.State
	resp, err := http.Get(f.Control + "state")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&world)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, repo := range []string{"cessda/cessda.cvs.two", "cessda/cessda.cvs.userguide", "cessda/cessda.cvs.contentguide"} {
		if world.Tags[repo] == "" {
			t.Errorf("%s: no tag 3.7.0 (tags %v)", repo, world.Tags)
		}
	}
	prod := 0
	for w, image := range world.Workloads {
		if strings.HasPrefix(w, "production/cvs/") {
			prod++
			if !strings.HasSuffix(image, ":3.7.0") {
				t.Errorf("production %s runs %s, want the 3.7.0 image", w, image)
			}
		}
	}
	if prod != 3 {
		t.Errorf("%d production workloads in namespace cvs, want 3: %v", prod, world.Workloads)
	}

	// A comment after the release is done finds it over, and says so.
	if out, code := runbook("resume", "--issue", ref, "--sandbox", conns, "--non-interactive"); code != exitInvalid || !strings.Contains(out, "is over") || !strings.Contains(out, "succeeded") {
		t.Errorf("resume --issue of a finished release: exit %d, want %d saying it is over (succeeded)\n%s", code, exitInvalid, out)
	}
	if d := time.Since(start); d > 90*time.Second {
		t.Errorf("the flow took %s", d)
	}
}

// ciPeople does what a person does in the sandbox's GitHub (POST <control>/people/ACTION).
func ciPeople(t *testing.T, control, action string, a rehearsal.PeopleAction) {
	t.Helper()
	b, _ := json.Marshal(a)
	resp, err := http.Post(control+"people/"+action, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var msg bytes.Buffer
		msg.ReadFrom(resp.Body)
		t.Fatalf("people/%s %s: %s %s", action, b, resp.Status, msg.String())
	}
}

// ciEnv is the environment of the processes: nothing from the test's own runbook settings.
func ciEnv() []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "RUNBOOK_") {
			env = append(env, e)
		}
	}
	return env
}

func ciInt(v any) int {
	switch x := v.(type) {
	case int:
		return x
	case float64:
		return int(x)
	}
	return 0
}

func ciIndex(l []string, s string) int {
	for i, x := range l {
		if x == s {
			return i
		}
	}
	return -1
}
