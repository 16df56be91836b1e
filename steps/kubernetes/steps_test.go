package kubernetes_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/engine/enginetest"
	k8ssteps "github.com/cessda/runbook/steps/kubernetes"
	"github.com/cessda/runbook/steps/kubernetes/kubesim"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func conn(c *kubesim.Cluster) *engine.Connection {
	return &engine.Connection{Name: "staging", Type: "kubernetes", Client: c.Clientset()}
}

func run(t *testing.T, sc *enginetest.Context, typ string, with map[string]any) (engine.Outputs, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return enginetest.Decode(t, typ, with).Run(ctx, sc.StepContext)
}

func plan(t *testing.T, sc *enginetest.Context, typ string, with map[string]any) engine.Plan {
	t.Helper()
	p, err := enginetest.Decode(t, typ, with).Plan(context.Background(), sc.StepContext)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	return p
}

func deployed(t *testing.T, c *kubesim.Cluster, ns, name, image string) {
	t.Helper()
	if err := c.SetImage(ns, "deployment", name, "", image); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyWaitsForRollout(t *testing.T) {
	c := kubesim.New()
	defer c.Close()
	c.AddDeployment("cvs-v2", "cvs-frontend", "reg.example/cvs-frontend:main-122", 3)
	deployed(t, c, "cvs-v2", "cvs-frontend", "reg.example/cvs-frontend:main-123")
	sc := enginetest.NewContext(t, "verify", conn(c))
	with := map[string]any{"namespace": "cvs-v2", "deployments": []any{"cvs-frontend"}, "image_tag": "main-123"}
	writes := c.Writes()
	out, err := run(t, sc, "kubernetes.verify", with)
	if err != nil {
		t.Fatal(err)
	}
	if got := out["revisions"].(map[string]int)["cvs-frontend"]; got != 2 {
		t.Fatalf("revision %d, want 2", got)
	}
	w := out["workloads"].([]map[string]any)[0]
	if w["ready_replicas"] != 3 || w["kind"] != "Deployment" || w["images"].([]string)[0] != "reg.example/cvs-frontend:main-123" {
		t.Fatalf("workload %v", w)
	}
	if !strings.Contains(sc.LogText(), "successfully rolled out") {
		t.Fatalf("log lacks kubectl's final status:\n%s", sc.LogText())
	}
	// a second run only reads
	if _, err := run(t, sc, "kubernetes.verify", with); err != nil {
		t.Fatal(err)
	}
	if c.Writes() != writes {
		t.Fatalf("verify wrote to the cluster: %d writes", c.Writes()-writes)
	}
	var watched bool
	for _, a := range c.Actions() {
		watched = watched || a.GetVerb() == "watch"
	}
	if !watched {
		t.Fatal("verify did not watch")
	}
}

func TestVerifyWrongTagFailsAtOnce(t *testing.T) {
	c := kubesim.New()
	defer c.Close()
	c.AddDeployment("cvs", "cvs-frontend", "reg.example/cvs-frontend:3.6.0", 1)
	sc := enginetest.NewContext(t, "verify", conn(c))
	_, err := run(t, sc, "kubernetes.verify", map[string]any{"namespace": "cvs", "deployments": []any{"cvs-frontend"}, "image_tag": "3.6.1"})
	if err == nil || !strings.Contains(err.Error(), "does not run tag 3.6.1") || !strings.Contains(err.Error(), "cvs-frontend:3.6.0") {
		t.Fatalf("err = %v", err)
	}
}

func TestVerifyStuckRolloutHitsProgressDeadline(t *testing.T) {
	c := kubesim.New(kubesim.WithTick(time.Millisecond, 30*time.Second))
	defer c.Close()
	c.AddDeployment("cvs", "web", "reg.example/web:1.0.0", 2)
	deployed(t, c, "cvs", "web", "reg.example/web"+kubesim.BrokenSuffix) // pods never become Ready
	sc := enginetest.NewContext(t, "verify", conn(c))
	_, err := run(t, sc, "kubernetes.verify", map[string]any{"namespace": "cvs", "deployments": []any{"web"}, "image_tag": "broken"})
	if err == nil || !strings.Contains(err.Error(), `deployment "web" exceeded its progress deadline`) {
		t.Fatalf("err = %v", err)
	}
	if ok, _ := engine.IsTransient(err); ok {
		t.Fatal("a progress deadline is not transient")
	}
}

func TestVerifyTimeout(t *testing.T) {
	c := kubesim.New()
	defer c.Close()
	c.AddStatefulSet("cvs", "cvs-es", "reg.example/es:8.1", 2)
	if err := c.SetImage("cvs", "statefulset", "cvs-es", "", "reg.example/es:broken"); err != nil {
		t.Fatal(err)
	}
	sc := enginetest.NewContext(t, "verify", conn(c))
	start := time.Now()
	_, err := run(t, sc, "kubernetes.verify", map[string]any{"namespace": "cvs", "statefulsets": []any{"cvs-es"}, "image_tag": "broken", "timeout": "150ms"})
	// Which rollout status was last seen depends on how far the simulated controller got
	// in 150ms of real time (under load it may not have touched a pod yet): the error must
	// name the configured timeout and carry the status, whichever it was.
	if err == nil || !strings.Contains(err.Error(), "did not finish within 150ms") || !strings.Contains(err.Error(), "last status: Waiting for") {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("timeout not honoured")
	}
}

func TestVerifySelectorAndStatefulSet(t *testing.T) {
	c := kubesim.New()
	defer c.Close()
	c.AddDeployment("cvs", "cvs-frontend", "reg.example/cvs-frontend:3.6.0", 2, "app=cvs")
	c.AddStatefulSet("cvs", "cvs-es", "reg.example/cvs-es:8.1", 3, "app=cvs")
	c.AddDeployment("cvs", "other", "reg.example/other:1", 1)
	deployed(t, c, "cvs", "cvs-frontend", "reg.example/cvs-frontend:3.6.1")
	sc := enginetest.NewContext(t, "verify", conn(c))
	out, err := run(t, sc, "kubernetes.verify", map[string]any{"namespace": "cvs", "selector": "app=cvs", "image": "cvs-frontend", "image_tag": "3.6.1"})
	if err == nil || !strings.Contains(err.Error(), "no container matching") {
		t.Fatalf("the StatefulSet has no cvs-frontend container, want a clear error; got %v %v", out, err)
	}
	if err := c.SetImage("cvs", "statefulset", "cvs-es", "", "reg.example/cvs-es:3.6.1"); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, sc, "kubernetes.verify", map[string]any{"namespace": "cvs", "selector": "app=cvs", "image_tag": "3.6.1"})
	if err != nil {
		t.Fatal(err)
	}
	revs := out["revisions"].(map[string]int)
	if len(revs) != 2 || revs["cvs-frontend"] != 2 || revs["cvs-es"] != 2 {
		t.Fatalf("revisions %v", revs)
	}
}

func TestVerifyPlanWritesNothing(t *testing.T) {
	c := kubesim.New()
	defer c.Close()
	c.AddDeployment("cvs", "web", "reg.example/web:1.0.0", 1)
	sc := enginetest.NewContext(t, "verify", conn(c))
	p := plan(t, sc, "kubernetes.verify", map[string]any{"namespace": "cvs", "deployments": []any{"web"}, "image_tag": "1.0.1"})
	if c.Writes() != 0 || !p.NoChange || !strings.Contains(strings.Join(p.Details, "\n"), "would fail now") {
		t.Fatalf("plan %+v, writes %d", p, c.Writes())
	}
}

func TestVerifyTransientFaults(t *testing.T) {
	c := kubesim.New()
	defer c.Close()
	c.AddDeployment("cvs", "web", "reg.example/web:1.0.0", 1)
	deployed(t, c, "cvs", "web", "reg.example/web:1.0.1")
	sc := enginetest.NewContext(t, "verify", conn(c))
	with := map[string]any{"namespace": "cvs", "deployments": []any{"web"}, "image_tag": "1.0.1"}
	c.FailNext("get", "deployments", 1, apierrors.NewServiceUnavailable("etcd leader changed"))
	_, err := run(t, sc, "kubernetes.verify", with)
	if ok, _ := engine.IsTransient(err); !ok {
		t.Fatalf("a 503 should be transient, got %v", err)
	}
	c.FailNext("get", "deployments", 1, apierrors.NewTooManyRequests("slow down", 2))
	_, err = run(t, sc, "kubernetes.verify", with)
	if ok, d := engine.IsTransient(err); !ok || d != 2*time.Second {
		t.Fatalf("a 429 should be RetryAfter 2s, got %v %v", err, d)
	}
	// a fresh rollout, with the first two watches refused: retried inside the wait
	deployed(t, c, "cvs", "web", "reg.example/web:1.0.2")
	with["image_tag"] = "1.0.2"
	c.FailNext("watch", "deployments", 2, apierrors.NewInternalError(fmt.Errorf("boom")))
	before := countVerb(c, "watch")
	if _, err := run(t, sc, "kubernetes.verify", with); err != nil {
		t.Fatalf("watch failures should be retried inside the wait: %v", err)
	}
	if n := countVerb(c, "watch") - before; n < 3 {
		t.Fatalf("%d watch requests, want at least 3 (two refused)", n)
	}
	if !strings.Contains(sc.LogText(), "retrying") {
		t.Fatalf("no retry logged:\n%s", sc.LogText())
	}
}

func countVerb(c *kubesim.Cluster, verb string) int {
	n := 0
	for _, a := range c.Actions() {
		if a.GetVerb() == verb {
			n++
		}
	}
	return n
}

// The API server (or a proxy) cuts watches: verify re-reads and watches again.
func TestVerifySurvivesDroppedWatches(t *testing.T) {
	c := kubesim.New(kubesim.WithTick(3*time.Millisecond, 5*time.Second))
	defer c.Close()
	c.AddDeployment("cvs", "web", "reg.example/web:1.0.0", 6)
	deployed(t, c, "cvs", "web", "reg.example/web:1.1.0")
	stop := make(chan struct{})
	dropped := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				dropped <- n
				return
			case <-time.After(2 * time.Millisecond):
				n += c.DropWatches()
			}
		}
	}()
	sc := enginetest.NewContext(t, "verify", conn(c))
	_, err := run(t, sc, "kubernetes.verify", map[string]any{"namespace": "cvs", "deployments": []any{"web"}, "image_tag": "1.1.0"})
	close(stop)
	n := <-dropped
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no watch was dropped; the test proves nothing")
	}
	t.Logf("%d watches dropped", n)
}

func TestVerifyNotFound(t *testing.T) {
	c := kubesim.New()
	defer c.Close()
	sc := enginetest.NewContext(t, "verify", conn(c))
	_, err := run(t, sc, "kubernetes.verify", map[string]any{"namespace": "cvs", "deployments": []any{"nope"}, "image_tag": "1"})
	if err == nil || !strings.Contains(err.Error(), "not found") || !strings.Contains(err.Error(), "namespace") {
		t.Fatalf("err = %v", err)
	}
}

// A kubeconfig whose token the API server refuses: the error names the service and what to
// check, and the token (a canary) appears in no error, log line or output.
func TestCredentialsRefusedAndCanary(t *testing.T) {
	const canary = "canary-token-5f1d2c"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}`)
	}))
	defer srv.Close()
	dir := t.TempDir()
	kc := filepath.Join(dir, "kubeconfig")
	os.WriteFile(kc, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: staging
  cluster: {server: %q}
users:
- name: deployer
  user: {token: %s}
contexts:
- name: staging-cluster
  context: {cluster: staging, user: deployer}
current-context: staging-cluster
`, srv.URL, canary)), 0o600)
	cn := &engine.Connection{Name: "staging", Type: "kubernetes", Settings: map[string]string{"kubeconfig": kc, "context": "staging-cluster"}}
	for _, typ := range []string{"kubernetes.verify", "kubernetes.rollback", "kubernetes.backup_job"} {
		sc := enginetest.NewContext(t, "s", cn)
		with := map[string]map[string]any{
			"kubernetes.verify":     {"namespace": "cvs", "deployments": []any{"web"}, "image_tag": "1"},
			"kubernetes.rollback":   {"namespace": "cvs", "name": "web"},
			"kubernetes.backup_job": {"namespace": "cvs", "cronjob": "backup"},
		}[typ]
		out, err := run(t, sc, typ, with)
		if err == nil || !strings.Contains(err.Error(), "401 Unauthorized") || !strings.Contains(err.Error(), "credentials") {
			t.Fatalf("%s: err = %v", typ, err)
		}
		all := err.Error() + sc.LogText() + fmt.Sprint(out)
		if strings.Contains(all, canary) {
			t.Fatalf("%s: token leaked: %s", typ, all)
		}
	}
	sc := enginetest.NewContext(t, "s", &engine.Connection{Name: "prod", Type: "kubernetes", Settings: map[string]string{"kubeconfig": filepath.Join(dir, "missing"), "context": "production-cluster"}})
	_, err := run(t, sc, "kubernetes.verify", map[string]any{"namespace": "cvs", "deployments": []any{"web"}, "image_tag": "1"})
	if err == nil || !strings.Contains(err.Error(), "cannot load kubeconfig") {
		t.Fatalf("missing kubeconfig: %v", err)
	}
	sc = enginetest.NewContext(t, "s", &engine.Connection{Name: "prod", Type: "kubernetes", Settings: map[string]string{"kubeconfig": kc, "context": "production-cluster"}})
	_, err = run(t, sc, "kubernetes.verify", map[string]any{"namespace": "cvs", "deployments": []any{"web"}, "image_tag": "1"})
	if err == nil || !strings.Contains(err.Error(), "production-cluster") {
		t.Fatalf("unknown context: %v", err)
	}
}

func TestRollbackToPreviousIsIdempotent(t *testing.T) {
	c := kubesim.New()
	defer c.Close()
	c.AddDeployment("cvs", "cvs-frontend", "reg.example/cvs-frontend:3.6.0", 2)
	deployed(t, c, "cvs", "cvs-frontend", "reg.example/cvs-frontend:3.6.1")
	sc := enginetest.NewContext(t, "rollback", conn(c))
	if _, err := run(t, sc, "kubernetes.verify", map[string]any{"namespace": "cvs", "deployments": []any{"cvs-frontend"}, "image_tag": "3.6.1"}); err != nil {
		t.Fatal(err)
	}
	with := map[string]any{"namespace": "cvs", "name": "cvs-frontend"}
	before := c.Writes()
	p := plan(t, sc, "kubernetes.rollback", with)
	if c.Writes() != before || !strings.Contains(p.Action, "from revision 2 to revision 1") {
		t.Fatalf("plan %+v wrote %d", p, c.Writes()-before)
	}
	out, err := run(t, sc, "kubernetes.rollback", with)
	if err != nil {
		t.Fatal(err)
	}
	if out["from_revision"] != 2 || out["to_revision"] != 1 || out["revision"] != 3 {
		t.Fatalf("outputs %v", out)
	}
	if img := out["workloads"].([]map[string]any)[0]["images"].([]string)[0]; img != "reg.example/cvs-frontend:3.6.0" {
		t.Fatalf("image after rollback %s", img)
	}
	patches := c.Writes("deployments") - before
	if patches != 1 {
		t.Fatalf("%d deployment writes, want 1 JSON patch", patches)
	}
	// second run: the template already matches, so no second undo (which would go back to 3.6.1)
	out2, err := run(t, sc, "kubernetes.rollback", with)
	if err != nil {
		t.Fatal(err)
	}
	if c.Writes("deployments")-before != 1 || out2["revision"] != 3 || out2["to_revision"] != 1 {
		t.Fatalf("second run: writes %d outputs %v", c.Writes("deployments")-before, out2)
	}
	if p := plan(t, sc, "kubernetes.rollback", with); !p.NoChange {
		t.Fatalf("plan after rollback %+v", p)
	}
}

func TestRollbackToRecordedRevision(t *testing.T) {
	c := kubesim.New()
	defer c.Close()
	c.AddDeployment("cdc", "cdc-osmh-indexer", "reg.example/cdc-osmh-indexer:4.1.0", 1)
	deployed(t, c, "cdc", "cdc-osmh-indexer", "reg.example/cdc-osmh-indexer:4.2.0")
	sc := enginetest.NewContext(t, "rollback", conn(c))
	out, err := run(t, sc, "kubernetes.verify", map[string]any{"namespace": "cdc", "deployments": []any{"cdc-osmh-indexer"}, "image_tag": "4.2.0"})
	if err != nil {
		t.Fatal(err)
	}
	rev := out["revisions"].(map[string]int)["cdc-osmh-indexer"] // 2
	deployed(t, c, "cdc", "cdc-osmh-indexer", "reg.example/cdc-osmh-indexer:4.3.0")
	deployed(t, c, "cdc", "cdc-osmh-indexer", "reg.example/cdc-osmh-indexer:4.3.1")
	if _, err := run(t, sc, "kubernetes.verify", map[string]any{"namespace": "cdc", "deployments": []any{"cdc-osmh-indexer"}, "image_tag": "4.3.1"}); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, sc, "kubernetes.rollback", map[string]any{"namespace": "cdc", "name": "cdc-osmh-indexer", "to_revision": rev})
	if err != nil {
		t.Fatal(err)
	}
	if img := out["workloads"].([]map[string]any)[0]["images"].([]string)[0]; img != "reg.example/cdc-osmh-indexer:4.2.0" || out["to_revision"] != 2 {
		t.Fatalf("outputs %v", out)
	}
	_, err = run(t, enginetest.NewContext(t, "r2", conn(c)), "kubernetes.rollback", map[string]any{"namespace": "cdc", "name": "cdc-osmh-indexer", "to_revision": 99})
	if err == nil || !strings.Contains(err.Error(), "unable to find specified revision 99") {
		t.Fatalf("err = %v", err)
	}
}

func TestRollbackErrors(t *testing.T) {
	c := kubesim.New()
	defer c.Close()
	c.AddDeployment("cvs", "fresh", "reg.example/fresh:1", 1)
	_, err := run(t, enginetest.NewContext(t, "r", conn(c)), "kubernetes.rollback", map[string]any{"namespace": "cvs", "name": "fresh"})
	if err == nil || !strings.Contains(err.Error(), "no rollout history") {
		t.Fatalf("err = %v", err)
	}
	c.AddDeployment("cvs", "paused", "reg.example/paused:1", 1)
	deployed(t, c, "cvs", "paused", "reg.example/paused:2")
	if _, err := run(t, enginetest.NewContext(t, "v", conn(c)), "kubernetes.verify", map[string]any{"namespace": "cvs", "deployments": []any{"paused"}, "image_tag": "2"}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	d, _ := c.Clientset().AppsV1().Deployments("cvs").Get(ctx, "paused", metav1.GetOptions{})
	d.Spec.Paused = true
	if _, err := c.Clientset().AppsV1().Deployments("cvs").Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = run(t, enginetest.NewContext(t, "r", conn(c)), "kubernetes.rollback", map[string]any{"namespace": "cvs", "name": "paused"})
	if err == nil || !strings.Contains(err.Error(), "cannot rollback a paused deployment") {
		t.Fatalf("err = %v", err)
	}
	d, _ = c.Clientset().AppsV1().Deployments("cvs").Get(ctx, "paused", metav1.GetOptions{})
	d.Spec.Paused = false
	if _, err := c.Clientset().AppsV1().Deployments("cvs").Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.FailNext("patch", "deployments", 1, apierrors.NewServiceUnavailable("apiserver restarting"))
	_, err = run(t, enginetest.NewContext(t, "r", conn(c)), "kubernetes.rollback", map[string]any{"namespace": "cvs", "name": "paused"})
	if ok, _ := engine.IsTransient(err); !ok {
		t.Fatalf("a 503 on the patch should be transient: %v", err)
	}
}

func TestRollbackStatefulSet(t *testing.T) {
	c := kubesim.New()
	defer c.Close()
	c.AddStatefulSet("cvs", "cvs-es", "reg.example/es:8.1", 2)
	if err := c.SetImage("cvs", "statefulset", "cvs-es", "", "reg.example/es:8.2"); err != nil {
		t.Fatal(err)
	}
	sc := enginetest.NewContext(t, "rollback", conn(c))
	if _, err := run(t, sc, "kubernetes.verify", map[string]any{"namespace": "cvs", "statefulsets": []any{"cvs-es"}, "image_tag": "8.2"}); err != nil {
		t.Fatal(err)
	}
	with := map[string]any{"namespace": "cvs", "kind": "statefulset", "name": "cvs-es"}
	out, err := run(t, sc, "kubernetes.rollback", with)
	if err != nil {
		t.Fatal(err)
	}
	if img := out["workloads"].([]map[string]any)[0]["images"].([]string)[0]; img != "reg.example/es:8.1" || out["from_revision"] != 2 || out["to_revision"] != 1 || out["revision"] != 3 {
		t.Fatalf("outputs %v", out)
	}
	n := c.Writes("statefulsets")
	if _, err := run(t, sc, "kubernetes.rollback", with); err != nil || c.Writes("statefulsets") != n {
		t.Fatalf("second run: %v, %d new writes", err, c.Writes("statefulsets")-n)
	}
}

func TestBackupJob(t *testing.T) {
	c := kubesim.New()
	defer c.Close()
	c.AddCronJob("cdc", "cdc-es-backup", "0 2 * * *", "reg.example/es-backup:1.0")
	sc := enginetest.NewContext(t, "backup", conn(c))
	with := map[string]any{"namespace": "cdc", "cronjob": "cdc-es-backup"}
	p := plan(t, sc, "kubernetes.backup_job", with)
	if c.Writes() != 0 || !strings.Contains(p.Action, "create job cdc-es-backup-runbook-") {
		t.Fatalf("plan %+v, writes %d", p, c.Writes())
	}
	out, err := run(t, sc, "kubernetes.backup_job", with)
	if err != nil {
		t.Fatal(err)
	}
	name := out["job_name"].(string)
	if out["duration"] != "15s" {
		t.Fatalf("duration %v (3 ticks of 5s simulated)", out["duration"])
	}
	j, err := c.Clientset().BatchV1().Jobs("cdc").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if j.Annotations[k8ssteps.InstantiateAnnotation] != "manual" || len(j.OwnerReferences) != 1 || j.OwnerReferences[0].Kind != "CronJob" ||
		j.OwnerReferences[0].Name != "cdc-es-backup" || j.OwnerReferences[0].UID == "" || j.Spec.Template.Spec.Containers[0].Image != "reg.example/es-backup:1.0" {
		t.Fatalf("job %+v", j.ObjectMeta)
	}
	out2, err := run(t, sc, "kubernetes.backup_job", with)
	if err != nil || out2["job_name"] != name || c.Writes("jobs") != 1 {
		t.Fatalf("second run: %v %v, %d job writes", out2, err, c.Writes("jobs"))
	}
	// another run of the playbook makes its own job
	out3, err := run(t, enginetest.NewContext(t, "backup-2", conn(c)), "kubernetes.backup_job", with)
	if err != nil || out3["job_name"] == name {
		t.Fatalf("another step: %v %v", out3, err)
	}
}

func TestBackupJobFailure(t *testing.T) {
	c := kubesim.New()
	defer c.Close()
	c.AddCronJob("cdc", "cdc-es-backup", "0 2 * * *", "reg.example/es-backup:1.0")
	c.FailJobsFrom("cdc", "cdc-es-backup", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
	sc := enginetest.NewContext(t, "backup", conn(c))
	_, err := run(t, sc, "kubernetes.backup_job", map[string]any{"namespace": "cdc", "cronjob": "cdc-es-backup", "job_name": "pre-release-backup"})
	if err == nil || !strings.Contains(err.Error(), "BackoffLimitExceeded: Job has reached the specified backoff limit") || !strings.Contains(err.Error(), "pre-release-backup") {
		t.Fatalf("err = %v", err)
	}
	_, err = run(t, enginetest.NewContext(t, "backup-2", conn(c)), "kubernetes.backup_job", map[string]any{"namespace": "cdc", "cronjob": "missing"})
	if err == nil || !strings.Contains(err.Error(), "cronjob cdc/missing") || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("err = %v", err)
	}
}

// A 503 on the create is transient; the retry reuses the recorded name and creates one Job.
func TestBackupJobTransientCreate(t *testing.T) {
	c := kubesim.New()
	defer c.Close()
	c.AddCronJob("cdc", "cdc-es-backup", "0 2 * * *", "reg.example/es-backup:1.0")
	sc := enginetest.NewContext(t, "backup", conn(c))
	with := map[string]any{"namespace": "cdc", "cronjob": "cdc-es-backup"}
	c.FailNext("create", "jobs", 1, apierrors.NewServiceUnavailable("apiserver restarting"))
	_, err := run(t, sc, "kubernetes.backup_job", with)
	if ok, _ := engine.IsTransient(err); !ok {
		t.Fatalf("want a transient error, got %v", err)
	}
	out, err := run(t, sc, "kubernetes.backup_job", with)
	if err != nil {
		t.Fatal(err)
	}
	jobs, _ := c.Clientset().BatchV1().Jobs("cdc").List(context.Background(), metav1.ListOptions{})
	if len(jobs.Items) != 1 || jobs.Items[0].Name != out["job_name"] {
		t.Fatalf("%d jobs, outputs %v", len(jobs.Items), out)
	}
}
