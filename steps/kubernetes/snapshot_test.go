package kubernetes_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cessda/runbook/engine/enginetest"
	"github.com/cessda/runbook/steps/kubernetes/kubesim"
)

// production is a cluster whose cvs-frontend went 3.5.0 (revision 1) -> 3.6.0 (revision 2),
// beside a StatefulSet, both labelled app=cvs, with every tag in one registry.
func production(t *testing.T) (*kubesim.Cluster, *kubesim.Registry) {
	t.Helper()
	reg := kubesim.NewRegistry()
	for _, v := range []string{"3.5.0", "3.6.0", "3.6.1"} {
		reg.Push("reg.example/cvs-frontend:"+v, "release "+v)
	}
	reg.Push("reg.example/cvs-es:8.1", "es 8.1")
	c := kubesim.New(kubesim.WithRegistry(reg))
	t.Cleanup(c.Close)
	c.AddDeployment("cvs", "cvs-frontend", "reg.example/cvs-frontend:3.5.0", 2, "app=cvs")
	c.AddStatefulSet("cvs", "cvs-es", "reg.example/cvs-es:8.1", 2, "app=cvs")
	deployed(t, c, "cvs", "cvs-frontend", "reg.example/cvs-frontend:3.6.0")
	if _, err := run(t, enginetest.NewContext(t, "settle", conn(c)), "kubernetes.verify",
		map[string]any{"namespace": "cvs", "deployments": []any{"cvs-frontend"}, "image_tag": "3.6.0"}); err != nil {
		t.Fatal(err)
	}
	return c, reg
}

// viaJournal passes a value through JSON, as outputs do between steps of a resumed run.
func viaJournal(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// snapshot before the deploy -> deploy -> rollback to the snapshot's revision -> snapshot
// with expect passes.
func TestSnapshotRollbackToRecordedRevision(t *testing.T) {
	c, reg := production(t)
	d360, _ := reg.Digest("reg.example/cvs-frontend:3.6.0")
	sc := enginetest.NewContext(t, "snapshot", conn(c))
	with := map[string]any{"namespace": "cvs", "selector": "app=cvs"}
	writes := c.Writes()
	p := plan(t, sc, "kubernetes.snapshot", with)
	if !p.NoChange || !strings.Contains(strings.Join(p.Details, "\n"), "container cvs-frontend runs reg.example/cvs-frontend@"+d360) {
		t.Fatalf("plan %+v", p)
	}
	before, err := run(t, sc, "kubernetes.snapshot", with)
	if err != nil {
		t.Fatal(err)
	}
	if c.Writes() != writes {
		t.Fatalf("snapshot wrote %d times", c.Writes()-writes)
	}
	revs := before["revisions"].(map[string]int)
	tags := before["tags"].(map[string]string)
	digests := before["digests"].(map[string]string)
	if revs["cvs-frontend"] != 2 || revs["cvs-es"] != 1 || tags["cvs-frontend"] != "3.6.0" || tags["cvs-es"] != "8.1" || digests["cvs-frontend"] != d360 {
		t.Fatalf("revisions %v tags %v digests %v", revs, tags, digests)
	}
	ws := before["workloads"].([]map[string]any)
	if len(ws) != 2 || ws[1]["name"] != "cvs-frontend" || ws[1]["revision"] != 2 || ws[1]["digests"].([]string)[0] != d360 {
		t.Fatalf("workloads %v", ws)
	}
	if ct := ws[1]["containers"].([]map[string]any)[0]; ct["name"] != "cvs-frontend" || ct["image"] != "reg.example/cvs-frontend:3.6.0" || ct["digest"] != d360 {
		t.Fatalf("container %v", ct)
	}

	// the deploy creates revision 3
	deployed(t, c, "cvs", "cvs-frontend", "reg.example/cvs-frontend:3.6.1")
	expect := viaJournal(t, before["workloads"])
	check := map[string]any{"namespace": "cvs", "selector": "app=cvs", "expect": expect}
	_, err = run(t, enginetest.NewContext(t, "back", conn(c)), "kubernetes.snapshot", check)
	if err == nil || !strings.HasPrefix(err.Error(), "production is not back on the previous release:") || !strings.Contains(err.Error(), "(reg.example/cvs-frontend:3.6.1), snapshot had") {
		t.Fatalf("on the new release: err = %v", err)
	}

	out, err := run(t, enginetest.NewContext(t, "rollback", conn(c)), "kubernetes.rollback",
		map[string]any{"namespace": "cvs", "name": "cvs-frontend", "to_revision": revs["cvs-frontend"]})
	if err != nil {
		t.Fatal(err)
	}
	if out["from_revision"] != 3 || out["to_revision"] != 2 || out["revision"] != 4 {
		t.Fatalf("rollback outputs %v", out)
	}
	sc = enginetest.NewContext(t, "back", conn(c))
	after, err := run(t, sc, "kubernetes.snapshot", check)
	if err != nil {
		t.Fatal(err)
	}
	if after["revisions"].(map[string]int)["cvs-frontend"] != 4 || after["digests"].(map[string]string)["cvs-frontend"] != d360 {
		t.Fatalf("after the rollback: %v", after)
	}
	if !strings.Contains(sc.LogText(), "every workload runs what the snapshot recorded") {
		t.Fatalf("log:\n%s", sc.LogText())
	}
}

// A rollback to the wrong revision, or to the right one whose tag was pushed again since
// the snapshot, is not "back on the previous release".
func TestSnapshotExpectFailsNamingTheDifference(t *testing.T) {
	c, reg := production(t)
	sc := enginetest.NewContext(t, "snapshot", conn(c))
	before, err := run(t, sc, "kubernetes.snapshot", map[string]any{"namespace": "cvs", "deployments": []any{"cvs-frontend"}, "image": "cvs-frontend"})
	if err != nil {
		t.Fatal(err)
	}
	d350, _ := reg.Digest("reg.example/cvs-frontend:3.5.0")
	d360, _ := reg.Digest("reg.example/cvs-frontend:3.6.0")
	check := map[string]any{"namespace": "cvs", "deployments": []any{"cvs-frontend"}, "image": "cvs-frontend", "expect": viaJournal(t, before["workloads"])}
	deployed(t, c, "cvs", "cvs-frontend", "reg.example/cvs-frontend:3.6.1")

	// wrong revision: 1 (3.5.0) instead of 2
	if _, err := run(t, enginetest.NewContext(t, "rollback", conn(c)), "kubernetes.rollback",
		map[string]any{"namespace": "cvs", "name": "cvs-frontend", "to_revision": 1}); err != nil {
		t.Fatal(err)
	}
	_, err = run(t, enginetest.NewContext(t, "back", conn(c)), "kubernetes.snapshot", check)
	want := "production is not back on the previous release: deployment cvs/cvs-frontend container cvs-frontend runs reg.example/cvs-frontend@" + d350 +
		" (reg.example/cvs-frontend:3.5.0), snapshot had reg.example/cvs-frontend@" + d360 + " (reg.example/cvs-frontend:3.6.0)"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}

	// the right revision, but 3.6.0 was pushed again: same reference, another build
	rebuilt := reg.Push("reg.example/cvs-frontend:3.6.0", "release 3.6.0, rebuilt")
	revs := before["revisions"].(map[string]int)
	if revs["cvs-frontend"] != 2 {
		t.Fatalf("revisions %v", revs)
	}
	// revision 2 still holds 3.6.0: the first rollback renumbered 3.5.0's ReplicaSet to 4
	out, err := run(t, enginetest.NewContext(t, "rollback2", conn(c)), "kubernetes.rollback",
		map[string]any{"namespace": "cvs", "name": "cvs-frontend", "to_revision": 2})
	if err != nil {
		t.Fatal(err)
	}
	if img := out["workloads"].([]map[string]any)[0]["images"].([]string)[0]; img != "reg.example/cvs-frontend:3.6.0" {
		t.Fatalf("rolled back to %s", img)
	}
	_, err = run(t, enginetest.NewContext(t, "back2", conn(c)), "kubernetes.snapshot", check)
	if err == nil || !strings.Contains(err.Error(), "runs reg.example/cvs-frontend@"+rebuilt+" (reg.example/cvs-frontend:3.6.0), snapshot had reg.example/cvs-frontend@"+d360) {
		t.Fatalf("a re-pushed tag: err = %v", err)
	}
}
