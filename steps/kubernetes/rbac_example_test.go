package kubernetes_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cessda/runbook/engine"
	kube "github.com/cessda/runbook/steps/kubernetes"
	"github.com/cessda/runbook/steps/kubernetes/kubesim"

	_ "github.com/cessda/runbook/steps/all"
)

// grants is what the Roles of one example file grant: namespace -> "group/resource" -> verbs.
type grants map[string]map[string][]string

func readRBAC(t *testing.T, file string) grants {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := kubesim.ParseRoles(b)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	g := grants{}
	for _, r := range rules {
		if g[r.Namespace] == nil {
			g[r.Namespace] = map[string][]string{}
		}
		for _, grp := range r.APIGroups {
			for _, res := range r.Resources {
				g[r.Namespace][grp+"/"+res] = append(g[r.Namespace][grp+"/"+res], r.Verbs...)
			}
		}
	}
	return g
}

func (g grants) allows(ns, verb, group, resource string) bool {
	return slices.Contains(g[ns][group+"/"+resource], verb)
}

// TestExampleRBACCoversThePlaybooks: the example Roles grant, in every namespace a product
// playbook's Kubernetes steps name, every request those step types make (Needs, the table
// the preflight asks the API server about), on the right cluster; the state namespace
// allows the state backend; and nothing more than the steps need is granted.
func TestExampleRBACCoversThePlaybooks(t *testing.T) {
	dir := "../../examples/kubernetes"
	clusters := map[string]grants{
		"production": readRBAC(t, filepath.Join(dir, "rbac-production.yaml")),
		"staging":    readRBAC(t, filepath.Join(dir, "rbac-staging.yaml")),
	}
	used := map[string]map[string]map[string]bool{} // cluster -> namespace -> "verb group/resource"
	mark := func(cluster, ns, key string) {
		if used[cluster] == nil {
			used[cluster] = map[string]map[string]bool{}
		}
		if used[cluster][ns] == nil {
			used[cluster][ns] = map[string]bool{}
		}
		used[cluster][ns][key] = true
	}
	for _, product := range []string{"cdc", "cvs", "eqb", "elsst"} {
		f := "../../playbooks/" + product + ".yaml"
		pb, err := engine.LoadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		set := map[string]string{"version": "3.7.0"}
		if pb.Product == "elsst" {
			set = map[string]string{"version": "2026", "vocabulary": "elsst-7"}
		}
		for _, input := range pb.Inputs {
			if input.Name == "backup_cronjob" { // the backup step runs only when it names a CronJob
				set["backup_cronjob"] = "db-backup"
			}
		}
		in, err := pb.ResolveInputs(set)
		if err != nil {
			t.Fatal(err)
		}
		plan, err := engine.BuildPlan(context.Background(), pb, in, engine.PlanOptions{Offline: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, ps := range plan.Steps {
			ns := kube.Needs(ps.Type)
			if len(ns) == 0 || ps.Condition == "false" {
				continue
			}
			if list, ok := ps.Foreach.([]any); ok && len(list) == 0 {
				continue // e.g. no StatefulSets to roll back
			}
			params := []map[string]any{ps.Params}
			if len(ps.ItemParams) > 0 {
				params = ps.ItemParams
			}
			for _, p := range params {
				conn, _ := p["connection"].(string)
				namespace, _ := p["namespace"].(string)
				g, ok := clusters[conn]
				if !ok || namespace == "" || namespace == engine.KnownAfterRun {
					t.Errorf("%s: step %s: connection %q, namespace %q: not a cluster the examples cover", f, ps.ID, conn, namespace)
					continue
				}
				for _, n := range ns {
					// The backup job and rollback run only on production; verify reads both.
					mark(conn, namespace, n.Verb+" "+n.Group+"/"+n.Resource)
					if !g.allows(namespace, n.Verb, n.Group, n.Resource) {
						t.Errorf("%s: step %s (%s) may %s %s/%s in %s on %s, but the example Role does not allow it", f, ps.ID, ps.Type, n.Verb, n.Group, n.Resource, namespace, conn)
					}
				}
			}
		}
	}
	// The state backend (steps/kubernetes/kubestate): configmaps and leases.
	for _, res := range []string{"/configmaps", "coordination.k8s.io/leases"} {
		for _, verb := range []string{"get", "list", "create", "update", "patch"} {
			mark("production", "runbook", verb+" "+res)
			if !clusters["production"].allows("runbook", verb, res[:len(res)-len(filepath.Base(res))-1], filepath.Base(res)) {
				t.Errorf("the state namespace does not allow %s %s", verb, res)
			}
		}
	}
	// Least privilege: every grant is used by some step in that namespace.
	for cluster, g := range clusters {
		for ns, rules := range g {
			for gr, verbs := range rules {
				for _, v := range verbs {
					if !used[cluster][ns][v+" "+gr] {
						t.Errorf("%s: the Role in %s grants %s %s, which no step needs there", cluster, ns, v, gr)
					}
				}
			}
		}
	}
}
