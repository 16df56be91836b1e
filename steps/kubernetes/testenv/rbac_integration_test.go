//go:build integration

package testenv

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/engine/enginetest"
	"github.com/cessda/runbook/steps/kubernetes/kubesim"
	"github.com/cessda/runbook/steps/kubernetes/kubestate"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// asServiceAccount grants, in ns, exactly the Roles of examples/kubernetes/rbac-production.yaml
// (the product namespace's and the state namespace's, both mapped to ns; edit changes the
// manifest first) to a new ServiceAccount, and returns a connection and a clientset that
// authenticate as that ServiceAccount with a token of its own.
func asServiceAccount(t *testing.T, cs kubernetes.Interface, ns string, edit func(string) string) (*engine.Connection, kubernetes.Interface) {
	t.Helper()
	ctx := context.Background()
	b, err := os.ReadFile("../../../examples/kubernetes/rbac-production.yaml")
	if err != nil {
		t.Fatal(err)
	}
	manifest := string(b)
	if edit != nil {
		manifest = edit(manifest)
	}
	rules, err := kubesim.ParseRoles([]byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "runbook", Namespace: ns}}
	for _, r := range rules {
		if r.Namespace != "cvs" && r.Namespace != "runbook" {
			continue
		}
		role.Rules = append(role.Rules, rbacv1.PolicyRule{APIGroups: r.APIGroups, Resources: r.Resources, Verbs: r.Verbs, ResourceNames: r.ResourceNames})
	}
	if _, err := cs.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "runbook"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "runbook", Namespace: ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "runbook"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "runbook", Namespace: ns}}}
	if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tok, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "runbook", &authv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := clientcmd.LoadFromFile(os.Getenv("KUBECONFIG"))
	if err != nil {
		t.Fatal(err)
	}
	cluster := raw.Contexts["testenv-cluster"].Cluster
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = raw.Clusters[cluster]
	kc.AuthInfos["sa"] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	kc.Contexts["production-cluster"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "sa", Namespace: ns}
	kc.CurrentContext = "production-cluster"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	return &engine.Connection{Name: "production", Type: "kubernetes", Settings: map[string]string{"kubeconfig": path, "context": "production-cluster"}},
		kubernetes.NewForConfigOrDie(cfg)
}

// TestExampleRBACOnARealAPIServer: as a ServiceAccount holding exactly the example Roles, a
// release's Kubernetes steps (preflight, snapshot, verify, rollback) and the state backend
// (the release lock, a run's journal) work against the real API server and its RBAC; with
// patch taken away, the preflight names the missing verb before anything starts.
func TestExampleRBACOnARealAPIServer(t *testing.T) {
	_, admin, ns := env(t)
	ctx := context.Background()
	conn, sa := asServiceAccount(t, admin, ns, nil)
	if _, err := admin.AppsV1().Deployments(ns).Create(ctx, deployment(ns, "cvs-frontend", "example.invalid/cvs-frontend:3.6.0", 1, 600), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := sa.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("the ServiceAccount cannot list deployments: %v", err)
	}
	if _, err := sa.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); err == nil {
		t.Fatal("the ServiceAccount may list secrets: the example grants more than it should")
	}

	step := func(id, typ string, with map[string]any) engine.Outputs {
		t.Helper()
		sc := enginetest.NewContext(t, id, conn)
		s := enginetest.Decode(t, typ, with)
		if pf, ok := s.(engine.Preflighter); ok {
			if err := pf.Preflight(ctx, sc.StepContext); err != nil {
				t.Fatalf("%s preflight as the ServiceAccount: %v", typ, err)
			}
		}
		out, err := s.Run(ctx, sc.StepContext)
		if err != nil {
			t.Fatalf("%s as the ServiceAccount: %v", typ, err)
		}
		return out
	}
	step("verify", "kubernetes.verify", map[string]any{"namespace": ns, "deployments": []any{"cvs-frontend"}, "image_tag": "3.6.0", "timeout": "90s"})
	step("before", "kubernetes.snapshot", map[string]any{"namespace": ns, "deployments": []any{"cvs-frontend"}})
	setImage(t, admin, ns, "cvs-frontend", "example.invalid/cvs-frontend:3.7.0") // the deploy job
	step("verify", "kubernetes.verify", map[string]any{"namespace": ns, "deployments": []any{"cvs-frontend"}, "image_tag": "3.7.0", "timeout": "90s"})
	out := step("rollback", "kubernetes.rollback", map[string]any{"namespace": ns, "name": "cvs-frontend", "timeout": "90s"})
	if out["to_revision"] != 1 {
		t.Fatalf("rollback %v", out)
	}

	// The state backend: the release lock and a run's journal, in the state namespace.
	release, err := kubestate.NewLock(sa, ns).Acquire(ctx, "cvs", "cvs-run-1", "it", false)
	if err != nil {
		t.Fatalf("the release lock as the ServiceAccount: %v", err)
	}
	store, err := kubestate.Open(ctx, sa, ns, "cvs-run-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Append(&engine.Event{Kind: engine.EventRun, Header: &engine.Report{RunID: "cvs-run-1", Product: "cvs"}}, true); err != nil {
		t.Fatalf("the journal as the ServiceAccount: %v", err)
	}
	if err := store.WriteReport([]byte(`{"run_id":"cvs-run-1"}`)); err != nil {
		t.Fatalf("the report as the ServiceAccount: %v", err)
	}
	store.Close()
	if err := release(ctx); err != nil {
		t.Fatal(err)
	}

	// Without patch, the preflight says so before anything starts.
	_, admin2, ns2 := env(t)
	conn2, _ := asServiceAccount(t, admin2, ns2, func(s string) string {
		return strings.Replace(s, "verbs: [get, list, watch, patch]", "verbs: [get, list, watch]", 1)
	})
	rb := enginetest.Decode(t, "kubernetes.rollback", map[string]any{"namespace": ns2, "name": "cvs-frontend"})
	err = rb.(engine.Preflighter).Preflight(ctx, enginetest.NewContext(t, "rollback", conn2).StepContext)
	if err == nil || !strings.Contains(err.Error(), "may not patch deployments.apps") {
		t.Fatalf("preflight without patch: %v", err)
	}
}
