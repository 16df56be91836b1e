package kubernetes_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/engine/enginetest"
	"github.com/cessda/runbook/steps/kubernetes/kubesim"
	"github.com/cessda/runbook/steps/kubernetes/kubesim/kubeapi"
	"github.com/hashicorp/go-multierror"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	k8stesting "k8s.io/client-go/testing"
)

// prodConn is a connection as a playbook names production: its context is in the messages.
func prodConn(c *kubesim.Cluster) *engine.Connection {
	return &engine.Connection{Name: "production", Type: "kubernetes", Client: c.Clientset(),
		Settings: map[string]string{"context": "production-cluster"}}
}

// preflightOf decodes the step as the engine would and runs its Preflight.
func preflightOf(t *testing.T, sc *enginetest.Context, typ string, with map[string]any) error {
	t.Helper()
	s, ok := enginetest.Decode(t, typ, with).(engine.Preflighter)
	if !ok {
		t.Fatalf("%s does not implement engine.Preflighter", typ)
	}
	return s.Preflight(context.Background(), sc.StepContext)
}

// every step type of the package, with the parameters a CVS release gives it.
var preflightSteps = []struct {
	typ  string
	with map[string]any
}{
	{"kubernetes.verify", map[string]any{"namespace": "cvs", "deployments": []any{"cvs-frontend"}, "statefulsets": []any{"cvs-es"}, "image_tag": "3.6.1"}},
	{"kubernetes.snapshot", map[string]any{"namespace": "cvs", "selector": "app=cvs", "expect": []any{map[string]any{"kind": "Deployment", "name": "cvs-frontend"}}}},
	{"kubernetes.rollback", map[string]any{"namespace": "cvs", "name": "cvs-frontend"}},
	{"kubernetes.rollback", map[string]any{"namespace": "cvs", "kind": "statefulset", "name": "cvs-es"}},
	{"kubernetes.backup_job", map[string]any{"namespace": "cvs", "cronjob": "cvs-db-backup"}},
}

func reviews(c *kubesim.Cluster) []*authorizationv1.ResourceAttributes {
	var out []*authorizationv1.ResourceAttributes
	for _, a := range c.Actions() {
		if ca, ok := a.(k8stesting.CreateAction); ok && a.GetResource().Resource == "selfsubjectaccessreviews" {
			out = append(out, ca.GetObject().(*authorizationv1.SelfSubjectAccessReview).Spec.ResourceAttributes)
		}
	}
	return out
}

func errorsOf(err error) []error {
	if me, ok := err.(*multierror.Error); ok {
		return me.Errors
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// Everything allowed: every step type passes, and the preflight only read and asked.
func TestPreflightAllowedWritesNothing(t *testing.T) {
	c := kubesim.New()
	defer c.Close()
	c.AddDeployment("cvs", "cvs-frontend", "reg.example/cvs-frontend:3.6.0", 2, "app=cvs")
	c.AddStatefulSet("cvs", "cvs-es", "reg.example/cvs-es:8.1", 1, "app=cvs")
	c.AddCronJob("cvs", "cvs-db-backup", "0 2 * * *", "reg.example/backup:1")
	for _, s := range preflightSteps {
		if err := preflightOf(t, enginetest.NewContext(t, "pre", prodConn(c)), s.typ, s.with); err != nil {
			t.Fatalf("%s: %v", s.typ, err)
		}
	}
	if c.Writes() != 0 {
		t.Fatalf("the preflight wrote %d times", c.Writes())
	}
	for _, a := range c.Actions() {
		switch r := a.GetResource().Resource; {
		case a.GetVerb() == "get" && r == "version":
		case a.GetVerb() == "create" && r == "selfsubjectaccessreviews":
		default:
			t.Errorf("the preflight made a %s request on %q; it may only ask the version and access reviews", a.GetVerb(), r)
		}
	}
	asked := map[string]bool{}
	for _, ra := range reviews(c) {
		if ra.Namespace != "cvs" {
			t.Errorf("review outside the step's namespace: %+v", ra)
		}
		asked[ra.Verb+" "+ra.Resource+"."+ra.Group] = true
	}
	for _, want := range []string{"get deployments.apps", "watch deployments.apps", "list replicasets.apps", "list pods.",
		"get statefulsets.apps", "watch statefulsets.apps", "get controllerrevisions.apps", "list controllerrevisions.apps",
		"list deployments.apps", "list statefulsets.apps", "patch deployments.apps", "patch statefulsets.apps",
		"get cronjobs.batch", "get jobs.batch", "create jobs.batch", "watch jobs.batch"} {
		if !asked[want] {
			t.Errorf("never asked %q; asked %v", want, asked)
		}
	}
	if len(asked) != 16 {
		t.Errorf("asked %d distinct questions, want 16: %v", len(asked), asked)
	}
}

// Each refused verb is its own error, naming connection, context, verb, resource, namespace
// and the step type; all are reported, not only the first.
func TestPreflightReportsEachDenial(t *testing.T) {
	c := kubesim.New()
	defer c.Close()
	c.AddDeployment("cvs", "cvs-frontend", "reg.example/cvs-frontend:3.6.0", 1)
	c.Deny("cvs", "patch", "apps", "deployments")
	c.Deny("cvs", "list", "apps", "replicasets")
	c.Deny("cvs-v2", "list", "", "pods") // another namespace: not this step's business
	sc := enginetest.NewContext(t, "rollback", prodConn(c))
	err := preflightOf(t, sc, "kubernetes.rollback", map[string]any{"namespace": "cvs", "name": "cvs-frontend"})
	t.Logf("rollback preflight:\n%v", err)
	errs := errorsOf(err)
	if len(errs) != 2 {
		t.Fatalf("want 2 errors, got %d: %v", len(errs), err)
	}
	want := []string{
		`connection "production" (context production-cluster): may not list replicasets.apps in namespace cvs (needed by kubernetes.rollback); grant it in the Role bound to this user`,
		`connection "production" (context production-cluster): may not patch deployments.apps "cvs-frontend" in namespace cvs (needed by kubernetes.rollback); grant it in the Role bound to this user`,
	}
	for i, w := range want {
		if !strings.HasPrefix(errs[i].Error(), w) {
			t.Errorf("error %d:\n got %s\nwant %s…", i, errs[i], w)
		}
		if !strings.Contains(errs[i].Error(), `(the server says: kubesim RBAC: refused by Deny("cvs", `) {
			t.Errorf("error %d lacks the server's reason: %s", i, errs[i])
		}
	}

	// verify on the same cluster: pods in cvs allowed, replicasets not
	err = preflightOf(t, enginetest.NewContext(t, "verify", prodConn(c)), "kubernetes.verify",
		map[string]any{"namespace": "cvs", "deployments": []any{"cvs-frontend"}, "image_tag": "3.6.1"})
	if errs := errorsOf(err); len(errs) != 1 || !strings.Contains(err.Error(), "may not list replicasets.apps in namespace cvs (needed by kubernetes.verify)") {
		t.Fatalf("verify: %v", err)
	}
	// the simulated server refuses the real request the same way
	_, err = run(t, enginetest.NewContext(t, "rb", prodConn(c)), "kubernetes.rollback", map[string]any{"namespace": "cvs", "name": "cvs-frontend"})
	if err == nil || !strings.Contains(err.Error(), "403 Forbidden") || !strings.Contains(err.Error(), `cannot list resource "replicasets" in API group "apps" in the namespace "cvs"`) {
		t.Fatalf("run after a failed preflight: %v", err)
	}
}

// A Role holding only the verbs of the backup job: the backup job passes, the others fail
// with one error per missing verb.
func TestPreflightRoleWithOnlySomeRules(t *testing.T) {
	c := kubesim.New()
	defer c.Close()
	c.Deny("*", "*", "*", "*")
	c.Allow("cdc", "get", "batch", "cronjobs")
	c.Allow("cdc", "create", "batch", "jobs")
	c.Allow("cdc", "get", "batch", "jobs")
	c.Allow("cdc", "watch", "batch", "jobs")
	if err := preflightOf(t, enginetest.NewContext(t, "b", prodConn(c)), "kubernetes.backup_job", map[string]any{"namespace": "cdc", "cronjob": "cdc-es-backup"}); err != nil {
		t.Fatal(err)
	}
	err := preflightOf(t, enginetest.NewContext(t, "b", prodConn(c)), "kubernetes.backup_job", map[string]any{"namespace": "cvs", "cronjob": "cvs-db-backup"})
	t.Logf("backup job preflight:\n%v", err)
	if n := len(errorsOf(err)); n != 4 {
		t.Fatalf("backup job in another namespace: %d errors, want 4: %v", n, err)
	}
	for _, w := range []string{`may not get cronjobs.batch "cvs-db-backup" in namespace cvs`, "may not create jobs.batch in namespace cvs", "may not get jobs.batch in namespace cvs", "may not watch jobs.batch in namespace cvs"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in %v", w, err)
		}
	}
	err = preflightOf(t, enginetest.NewContext(t, "s", prodConn(c)), "kubernetes.snapshot", map[string]any{"namespace": "cdc", "statefulsets": []any{"cdc-es"}})
	// without expect the snapshot does not watch
	if n := len(errorsOf(err)); n != 3 || strings.Contains(err.Error(), "watch") {
		t.Fatalf("snapshot: %d errors, want get statefulsets, get controllerrevisions, list pods: %v", n, err)
	}
}

// A Role may grant a verb for named objects only (resourceNames): the preflight asks again
// for the objects the step names before it reports a refusal.
func TestPreflightResourceNames(t *testing.T) {
	c := kubesim.New()
	defer c.Close()
	c.Deny("cvs", "patch", "apps", "deployments")
	c.Allow("cvs", "patch", "apps", "deployments", "cvs-frontend")
	with := map[string]any{"namespace": "cvs", "name": "cvs-frontend"}
	if err := preflightOf(t, enginetest.NewContext(t, "rb", prodConn(c)), "kubernetes.rollback", with); err != nil {
		t.Fatal(err)
	}
	var named bool
	for _, ra := range reviews(c) {
		named = named || (ra.Verb == "patch" && ra.Name == "cvs-frontend")
	}
	if !named {
		t.Fatal("the refusal namespace-wide was not asked again for cvs-frontend")
	}
	with["name"] = "cvs-backend"
	err := preflightOf(t, enginetest.NewContext(t, "rb", prodConn(c)), "kubernetes.rollback", with)
	if err == nil || !strings.Contains(err.Error(), `may not patch deployments.apps "cvs-backend" in namespace cvs`) {
		t.Fatalf("err = %v", err)
	}
}

// Parameters known only after earlier steps: an unknown namespace leaves only the context
// checked; unknown names still count as workloads of that kind.
func TestPreflightUnknownParameters(t *testing.T) {
	c := kubesim.New()
	defer c.Close()
	c.Deny("*", "*", "*", "*")
	sc := enginetest.NewContext(t, "v", prodConn(c))
	sc.SetUnknown("namespace")
	if err := preflightOf(t, sc, "kubernetes.verify", map[string]any{"namespace": "", "deployments": []any{"x"}, "image_tag": "1"}); err != nil {
		t.Fatalf("unknown namespace: %v", err)
	}
	if len(reviews(c)) != 0 {
		t.Fatal("asked about a namespace not known yet")
	}
	sc = enginetest.NewContext(t, "v", prodConn(c))
	sc.SetUnknown("statefulsets")
	err := preflightOf(t, sc, "kubernetes.verify", map[string]any{"namespace": "cvs", "statefulsets": []any{""}, "image_tag": "1"})
	if !strings.Contains(fmt.Sprint(err), "may not get statefulsets.apps in namespace cvs") || strings.Contains(fmt.Sprint(err), "deployments") {
		t.Fatalf("unknown statefulset names: %v", err)
	}
}

// The context itself: unreachable, refused credentials, a missing context or kubeconfig.
// Each error names the connection and the context and says what to fix; no review is made.
func TestPreflightContextProblems(t *testing.T) {
	c := kubesim.New()
	defer c.Close()
	with := map[string]any{"namespace": "cvs", "name": "cvs-frontend"}

	c.SetUnreachable(true)
	err := preflightOf(t, enginetest.NewContext(t, "rb", prodConn(c)), "kubernetes.rollback", with)
	if err == nil || !strings.Contains(err.Error(), `connection "production" (context production-cluster): the API server does not answer`) ||
		!strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "reachable") {
		t.Fatalf("unreachable: %v", err)
	}
	c.SetUnreachable(false)
	c.FailNext("get", "version", 1, apierrors.NewUnauthorized("Unauthorized"))
	err = preflightOf(t, enginetest.NewContext(t, "rb", prodConn(c)), "kubernetes.rollback", with)
	if err == nil || !strings.Contains(err.Error(), `connection "production" (context production-cluster)`) || !strings.Contains(err.Error(), "401") ||
		!strings.Contains(err.Error(), "get-credentials") {
		t.Fatalf("refused credentials: %v", err)
	}
	if len(reviews(c)) != 0 {
		t.Fatal("reviews asked of a server that does not answer")
	}

	// through a kubeconfig: a server that is gone, a context that is not in the file, no file
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	gone := "https://" + ln.Addr().String()
	ln.Close()
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	dir := t.TempDir()
	kc := filepath.Join(dir, "kubeconfig")
	os.WriteFile(kc, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: production
  cluster: {server: %q, insecure-skip-tls-verify: true}
users:
- name: deployer
  user: {token: t}
contexts:
- name: production-cluster
  context: {cluster: production, user: deployer}
current-context: production-cluster
`, gone)), 0o600)
	for _, tc := range []struct {
		settings map[string]string
		want     []string
	}{
		{map[string]string{"kubeconfig": kc}, []string{`connection "production" (context production-cluster): the API server does not answer`, "connection refused"}},
		{map[string]string{"kubeconfig": kc, "context": "staging-cluster"}, []string{`connection "production"`, `context "staging-cluster"`, "check the connection's kubeconfig and context settings"}},
		{map[string]string{"kubeconfig": filepath.Join(dir, "missing"), "context": "production-cluster"}, []string{`connection "production"`, "cannot load kubeconfig", "production-cluster"}},
	} {
		cn := &engine.Connection{Name: "production", Type: "kubernetes", Settings: tc.settings}
		err := preflightOf(t, enginetest.NewContext(t, "rb", cn), "kubernetes.rollback", with)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%v: want %q in %v", tc.settings, w, err)
			}
		}
	}
}

// Through a kubeconfig and the wire (kubeapi), as a sandbox run reaches its clusters.
func TestPreflightThroughKubeconfig(t *testing.T) {
	c := kubesim.New()
	defer c.Close()
	c.Deny("cvs", "create", "batch", "jobs")
	srv, err := kubeapi.Serve(c.Clientset())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := srv.WriteKubeconfig(kc, "staging-cluster", "production-cluster"); err != nil {
		t.Fatal(err)
	}
	cn := &engine.Connection{Name: "production", Type: "kubernetes", Settings: map[string]string{"kubeconfig": kc, "context": "production-cluster"}}
	err = preflightOf(t, enginetest.NewContext(t, "b", cn), "kubernetes.backup_job", map[string]any{"namespace": "cvs", "cronjob": "cvs-db-backup"})
	if n := len(errorsOf(err)); n != 1 || !strings.Contains(err.Error(), `connection "production" (context production-cluster): may not create jobs.batch in namespace cvs (needed by kubernetes.backup_job)`) {
		t.Fatalf("%d errors: %v", n, err)
	}
	if err := preflightOf(t, enginetest.NewContext(t, "rb", cn), "kubernetes.rollback", map[string]any{"namespace": "cvs", "name": "cvs-frontend"}); err != nil {
		t.Fatal(err)
	}
	if c.Writes() != 0 {
		t.Fatalf("%d writes", c.Writes())
	}
}
