package rehearsal_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/steps/rehearsal"
)

// grantExampleRBAC gives each simulated cluster exactly the example Roles (as the
// ServiceAccount of examples/kubernetes would have them), edited by edit.
func grantExampleRBAC(t *testing.T, w *world, edit func(string) string) {
	t.Helper()
	for conn, file := range map[string]string{"production": "rbac-production.yaml", "staging": "rbac-staging.yaml"} {
		b, err := os.ReadFile("../../examples/kubernetes/" + file)
		if err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			b = []byte(edit(string(b)))
		}
		if err := w.sb.Clusters[conn].GrantOnly(b); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReleaseUnderExampleRBAC: a whole CVS release, and a reverted one, work with exactly
// the permissions of examples/kubernetes; with patch taken away, the preflight says so
// before anything starts, instead of the revert failing half-way.
func TestReleaseUnderExampleRBAC(t *testing.T) {
	set := map[string]string{"version": "3.7.0"}
	for _, ans := range []rehearsal.Answers{{}, {Revert: "search is broken"}} {
		w := newWorld(t, "cvs", set, ans)
		grantExampleRBAC(t, w, nil)
		rep := w.release(set)
		want := engine.RunSucceeded
		if ans.Revert != "" {
			want = engine.RunRolledBack
		}
		if rep.Status != want {
			t.Fatalf("under the example RBAC: %s at %s: %s", rep.Status, rep.FailedStep, rep.Reason)
		}
	}

	w := newWorld(t, "cvs", set, rehearsal.Answers{})
	grantExampleRBAC(t, w, func(s string) string {
		return strings.Replace(s, "verbs: [get, list, watch, patch]", "verbs: [get, list, watch]", 1)
	})
	in := w.inputs(set)
	pf, err := engine.Preflight(context.Background(), w.pb, in, engine.PlanOptions{Mode: "rehearsal", Clock: w.sb.Clock, Connect: w.sb.Connect})
	if err != nil {
		t.Fatal(err)
	}
	if e := pf.Err(); e == nil || !strings.Contains(e.Error(), "may not patch statefulsets.apps") || !strings.Contains(e.Error(), "in namespace cvs (needed by kubernetes.rollback)") {
		t.Fatalf("preflight without patch: %v", e)
	}
}
