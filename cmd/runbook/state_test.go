package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cessda/runbook/steps/kubernetes/kubesim/kubeapi"
	"github.com/cessda/runbook/steps/kubernetes/kubestate"
	"github.com/cessda/runbook/steps/kubernetes/kubestate/kubestatefake"
)

// TestKubernetesState: with --state kubernetes://CONTEXT/NAMESPACE two machines (two
// state directories, one cluster reached through a kubeconfig over HTTPS) share a
// product's runs and its lock: a run waiting for a person holds the product and is
// refused to the other machine with its holder; the other machine resumes it by run id
// and reads its report; nothing is written to either local state directory.
func TestKubernetesState(t *testing.T) {
	cluster := kubestatefake.New()
	srv, err := kubeapi.Serve(cluster.Clientset(), kubeapi.WithToken("state-test-token"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := srv.WriteKubeconfig(kubeconfig, "team-cluster"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", kubeconfig)
	pb := filepath.Join(dir, "pb.yaml")
	os.WriteFile(pb, []byte(gatePlaybook), 0o644)
	laptop, agent := filepath.Join(dir, "laptop"), filepath.Join(dir, "ci-agent")
	const state = "kubernetes://team-cluster/releases"

	code, out := lockCLI(t, "run", pb, "--state", state, "--state-dir", laptop, "--non-interactive")
	if code != exitWaiting {
		t.Fatalf("first run: exit %d\n%s", code, out)
	}
	runs, err := kubestate.ListRuns(context.Background(), cluster.Clientset(), "releases", "locktest")
	if err != nil || len(runs) != 1 || runs[0].Status != "waiting" {
		t.Fatalf("runs in the namespace: %+v, %v", runs, err)
	}
	first := runs[0].RunID
	lease, err := cluster.Clientset().CoordinationV1().Leases("releases").Get(context.Background(), kubestate.LeaseName("locktest"), metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != first {
		t.Fatalf("the lease does not name the waiting run %s: %+v, %v", first, lease, err)
	}

	// The other machine sees the run, where it waits and who started it.
	code, out = lockCLI(t, "runs", "locktest", "--state", state, "--format", "json")
	var rows []runRow
	if err := json.Unmarshal([]byte(out), &rows); code != exitOK || err != nil || len(rows) != 1 ||
		rows[0].RunID != first || rows[0].Status != "waiting" || rows[0].Step != "confirm" || rows[0].Sessions != 1 {
		t.Fatalf("runs from the other machine: exit %d, %v\n%s", code, err, out)
	}

	code, out = lockCLI(t, "run", pb, "--state", state, "--state-dir", agent, "--non-interactive")
	if code != exitLocked || !strings.Contains(out, first) || !strings.Contains(out, "--take-over") {
		t.Fatalf("second run from another machine: exit %d, want %d naming %s\n%s", code, exitLocked, first, out)
	}

	code, out = lockCLI(t, "resume", first, "--state", state, "--state-dir", agent, "--confirm", "confirm")
	if code != exitOK {
		t.Fatalf("resume from the other machine: exit %d\n%s", code, out)
	}
	code, out = lockCLI(t, "runs", "--state", state)
	if code != exitOK || !strings.Contains(out, first) || !strings.Contains(out, "succeeded") {
		t.Fatalf("runs after the resume: exit %d\n%s", code, out)
	}
	code, out = lockCLI(t, "report", first, "--state", state)
	if code != exitOK || !strings.Contains(out, first) || !strings.Contains(out, "succeeded") {
		t.Fatalf("report from the namespace: exit %d\n%s", code, out)
	}
	for _, d := range []string{laptop, agent} {
		if _, err := os.Stat(filepath.Join(d, "runs")); !os.IsNotExist(err) {
			t.Errorf("%s has a local runs directory (%v): state went to disk", d, err)
		}
	}
	code, out = lockCLI(t, "run", pb, "--state", state, "--state-dir", agent, "--non-interactive")
	if code != exitWaiting {
		t.Fatalf("after the holder ended, a new run: exit %d\n%s", code, out)
	}
}

// TestStateFlag: a --state that names no backend, or no namespace, is refused with exit
// 2 and what to write instead.
func TestStateFlag(t *testing.T) {
	pb := filepath.Join(t.TempDir(), "pb.yaml")
	os.WriteFile(pb, []byte(gatePlaybook), 0o644)
	for _, bad := range []string{"s3://bucket", "kubernetes://team-cluster", "kubernetes://team-cluster/"} {
		code, out := lockCLI(t, "run", pb, "--state", bad, "--state-dir", t.TempDir(), "--non-interactive")
		if code != exitInvalid || !strings.Contains(out, "kubernetes://CONTEXT/NAMESPACE") {
			t.Errorf("--state %s: exit %d, want %d naming the form\n%s", bad, code, exitInvalid, out)
		}
	}
}
