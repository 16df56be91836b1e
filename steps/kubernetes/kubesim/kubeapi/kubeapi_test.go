package kubeapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/engine/enginetest"
	k8ssteps "github.com/cessda/runbook/steps/kubernetes"
	"github.com/cessda/runbook/steps/kubernetes/kubesim"
	"github.com/cessda/runbook/steps/kubernetes/kubesim/kubeapi"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

const token = "canary-kubeapi-token-7c41"

// served starts a cluster (closed at the end of the test), serves it and writes a
// kubeconfig with the contexts staging-cluster and production-cluster.
func served(t *testing.T, opts ...kubesim.Option) (*kubesim.Cluster, *kubeapi.Server, string) {
	t.Helper()
	c := kubesim.New(opts...)
	t.Cleanup(c.Close)
	srv, err := kubeapi.Serve(c.Clientset(), kubeapi.WithToken(token))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	if !strings.HasPrefix(srv.URL(), "https://127.0.0.1:") {
		t.Fatalf("URL %s is not on 127.0.0.1", srv.URL())
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := srv.WriteKubeconfig(path, "staging-cluster", "production-cluster"); err != nil {
		t.Fatal(err)
	}
	return c, srv, path
}

// remote is a client-go clientset built from the served kubeconfig, as another process
// would build it.
func remote(t *testing.T, srv *kubeapi.Server, context string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.RESTConfigFromKubeConfig(srv.Kubeconfig(context))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// conn is a kubernetes connection that reaches the cluster only through the kubeconfig.
func conn(path, context string) *engine.Connection {
	return &engine.Connection{Name: "staging", Type: "kubernetes", Settings: map[string]string{"kubeconfig": path, "context": context}}
}

func run(t *testing.T, sc *enginetest.Context, typ string, with map[string]any) (engine.Outputs, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return enginetest.Decode(t, typ, with).Run(ctx, sc.StepContext)
}

// count counts the server's answered requests with that verb on paths containing part.
func count(srv *kubeapi.Server, verb, part string) int {
	n := 0
	for _, r := range srv.Requests() {
		if r.Verb == verb && strings.Contains(r.Path, part) {
			n++
		}
	}
	return n
}

// setImage is `kubectl set image`: a strategic merge patch of the container's image.
func setImage(t *testing.T, cs kubernetes.Interface, ns, name, container, image string) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"template":{"spec":{"containers":[{"name":%q,"image":%q}]}}}}`, container, image)
	d, err := cs.AppsV1().Deployments(ns).Patch(context.Background(), name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Spec.Template.Spec.Containers[0].Image; got != image {
		t.Fatalf("patched image %s", got)
	}
}

func TestVerifyThroughKubeconfig(t *testing.T) {
	c, srv, path := served(t)
	c.AddDeployment("cvs-v2", "cvs-frontend", "reg.example/cvs-frontend:main-122", 3)
	sc := enginetest.NewContext(t, "verify", conn(path, "staging-cluster"))
	out, err := run(t, sc, "kubernetes.verify", map[string]any{"namespace": "cvs-v2", "deployments": []any{"cvs-frontend"}, "image_tag": "main-122"})
	if err != nil {
		t.Fatal(err)
	}
	if rev := out["revisions"].(map[string]int)["cvs-frontend"]; rev != 1 {
		t.Fatalf("revision %d", rev)
	}
	if w := out["workloads"].([]map[string]any)[0]; w["ready_replicas"] != 3 {
		t.Fatalf("workload %v", w)
	}
	if count(srv, "get", "/apis/apps/v1/namespaces/cvs-v2/deployments/cvs-frontend") == 0 {
		t.Fatalf("verify did not go through the server: %+v", srv.Requests())
	}
	if c.Writes() != 0 {
		t.Fatalf("verify wrote %d times", c.Writes())
	}
	// the token is the kubeconfig's business: it reaches no log, output or error
	if all := sc.LogText() + fmt.Sprint(out); strings.Contains(all, token) {
		t.Fatalf("token leaked: %s", all)
	}
	// a wrong tag fails through the facade as in-process
	_, err = run(t, enginetest.NewContext(t, "v2", conn(path, "production-cluster")), "kubernetes.verify",
		map[string]any{"namespace": "cvs-v2", "deployments": []any{"cvs-frontend"}, "image_tag": "main-999"})
	if err == nil || !strings.Contains(err.Error(), "does not run tag main-999") || strings.Contains(err.Error(), token) {
		t.Fatalf("err = %v", err)
	}
	_, err = run(t, enginetest.NewContext(t, "v3", conn(path, "staging-cluster")), "kubernetes.verify",
		map[string]any{"namespace": "cvs-v2", "deployments": []any{"nope"}, "image_tag": "1"})
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("a 404 through the facade: %v", err)
	}
}

// A set image made through the served API rolls out, and verify follows the rollout with a
// watch whose events come through the facade.
func TestSetImageThroughAPIThenVerify(t *testing.T) {
	c, srv, path := served(t, kubesim.WithTick(4*time.Millisecond, 5*time.Second))
	c.AddDeployment("cvs-v2", "cvs-frontend", "reg.example/cvs-frontend:main-122", 4)
	cs := remote(t, srv, "staging-cluster")
	setImage(t, cs, "cvs-v2", "cvs-frontend", "cvs-frontend", "reg.example/cvs-frontend:main-123")
	sc := enginetest.NewContext(t, "verify", conn(path, "staging-cluster"))
	out, err := run(t, sc, "kubernetes.verify", map[string]any{"namespace": "cvs-v2", "deployments": []any{"cvs-frontend"}, "image_tag": "main-123"})
	if err != nil {
		t.Fatal(err)
	}
	if rev := out["revisions"].(map[string]int)["cvs-frontend"]; rev != 2 {
		t.Fatalf("revision %d, want 2", rev)
	}
	if w := out["workloads"].([]map[string]any)[0]; w["ready_replicas"] != 4 || w["images"].([]string)[0] != "reg.example/cvs-frontend:main-123" {
		t.Fatalf("workload %v", w)
	}
	if count(srv, "watch", "/deployments") == 0 {
		t.Fatalf("verify never watched through the server; log:\n%s", sc.LogText())
	}
	// progress messages came from watch events: more distinct statuses than Gets
	gets := count(srv, "get", "/deployments/cvs-frontend")
	progress := strings.Count(sc.LogText(), "Waiting for deployment")
	if progress < 2 || !strings.Contains(sc.LogText(), "successfully rolled out") {
		t.Fatalf("%d progress lines, %d gets; log:\n%s", progress, gets, sc.LogText())
	}
	t.Logf("%d gets, %d watches, %d progress lines", gets, count(srv, "watch", "/deployments"), progress)
}

// Watch events stream through the facade: field selector, ADDED then MODIFIED with the new
// image, and the end of the watch on timeoutSeconds, on DropWatches and on Close.
func TestWatchStreams(t *testing.T) {
	c, srv, _ := served(t)
	c.AddDeployment("cvs", "web", "reg.example/web:1", 2)
	c.AddDeployment("cvs", "other", "reg.example/other:1", 1)
	cs := remote(t, srv, "staging-cluster")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w, err := cs.AppsV1().Deployments("cvs").Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", "web").String()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	go func() { _ = c.SetImage("cvs", "deployment", "web", "", "reg.example/web:2") }()
	var added, modified int
	for ev := range w.ResultChan() {
		d, ok := ev.Object.(*appsv1.Deployment)
		if !ok || d.Name != "web" {
			t.Fatalf("event %s %T %v: the field selector should keep only web", ev.Type, ev.Object, ev.Object)
		}
		switch ev.Type {
		case watch.Added:
			added++
		case watch.Modified:
			modified++
		}
		if d.Spec.Template.Spec.Containers[0].Image == "reg.example/web:2" && d.Status.UpdatedReplicas == 2 && d.Status.AvailableReplicas == 2 {
			break
		}
	}
	if added != 1 || modified == 0 {
		t.Fatalf("%d ADDED, %d MODIFIED", added, modified)
	}
	w.Stop()

	// timeoutSeconds ends the watch (1s is the smallest the API allows)
	start := time.Now()
	sec := int64(1)
	w2, err := cs.AppsV1().Deployments("cvs").Watch(ctx, metav1.ListOptions{TimeoutSeconds: &sec, ResourceVersion: "999999"})
	if err != nil {
		t.Fatal(err)
	}
	for range w2.ResultChan() {
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 5*time.Second {
		t.Fatalf("watch with timeoutSeconds=1 lasted %s", d)
	}

	// a dropped source watch ends the client's watch
	w3, err := cs.AppsV1().Deployments("cvs").Watch(ctx, metav1.ListOptions{ResourceVersion: "999999"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; c.DropWatches() == 0 && i < 1000; i++ {
		time.Sleep(time.Millisecond)
	}
	select {
	case _, ok := <-w3.ResultChan():
		for ok {
			_, ok = <-w3.ResultChan()
		}
	case <-ctx.Done():
		t.Fatal("dropped watch did not end")
	}

	// Close ends open watches at once
	w4, err := cs.AppsV1().Deployments("").Watch(ctx, metav1.ListOptions{ResourceVersion: "999999"})
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked on an open watch")
	}
	for range w4.ResultChan() {
	}
}

func TestRollbackThroughAPI(t *testing.T) {
	c, srv, path := served(t)
	c.AddDeployment("cvs", "cvs-frontend", "reg.example/cvs-frontend:3.6.0", 2)
	setImage(t, remote(t, srv, "production-cluster"), "cvs", "cvs-frontend", "cvs-frontend", "reg.example/cvs-frontend:3.6.1")
	sc := enginetest.NewContext(t, "rollback", conn(path, "production-cluster"))
	if _, err := run(t, sc, "kubernetes.verify", map[string]any{"namespace": "cvs", "deployments": []any{"cvs-frontend"}, "image_tag": "3.6.1"}); err != nil {
		t.Fatal(err)
	}
	with := map[string]any{"namespace": "cvs", "name": "cvs-frontend"}
	before := count(srv, "patch", "/deployments/cvs-frontend")
	p, err := enginetest.Decode(t, "kubernetes.rollback", with).Plan(context.Background(), sc.StepContext)
	if err != nil || !strings.Contains(p.Action, "from revision 2 to revision 1") || count(srv, "patch", "/deployments") != before {
		t.Fatalf("plan %+v %v", p, err)
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
	if n := count(srv, "patch", "/deployments/cvs-frontend") - before; n != 1 {
		t.Fatalf("%d patches through the server, want kubectl's one JSON patch", n)
	}
	if _, err := run(t, sc, "kubernetes.rollback", with); err != nil || count(srv, "patch", "/deployments/cvs-frontend")-before != 1 {
		t.Fatalf("second run: %v, %d patches", err, count(srv, "patch", "/deployments/cvs-frontend")-before)
	}
	if count(srv, "list", "/replicasets") == 0 {
		t.Fatal("kubectl's rollbacker did not list ReplicaSets through the server")
	}
}

// StatefulSet rollback: ControllerRevisions listed by label selector and a strategic merge
// patch, both through the facade.
func TestStatefulSetRollbackThroughAPI(t *testing.T) {
	c, srv, path := served(t)
	c.AddStatefulSet("cvs", "cvs-es", "reg.example/es:8.1", 2)
	if err := c.SetImage("cvs", "statefulset", "cvs-es", "", "reg.example/es:8.2"); err != nil {
		t.Fatal(err)
	}
	sc := enginetest.NewContext(t, "rollback", conn(path, "staging-cluster"))
	if _, err := run(t, sc, "kubernetes.verify", map[string]any{"namespace": "cvs", "statefulsets": []any{"cvs-es"}, "image_tag": "8.2"}); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, sc, "kubernetes.rollback", map[string]any{"namespace": "cvs", "kind": "statefulset", "name": "cvs-es"})
	if err != nil {
		t.Fatal(err)
	}
	if img := out["workloads"].([]map[string]any)[0]["images"].([]string)[0]; img != "reg.example/es:8.1" || out["revision"] != 3 {
		t.Fatalf("outputs %v", out)
	}
	if count(srv, "list", "/controllerrevisions") == 0 || count(srv, "patch", "/statefulsets/cvs-es") != 1 {
		t.Fatalf("requests %+v", srv.Requests())
	}
}

func TestBackupJobThroughAPI(t *testing.T) {
	c, srv, path := served(t)
	c.AddCronJob("cdc", "cdc-es-backup", "0 2 * * *", "reg.example/es-backup:1.0")
	sc := enginetest.NewContext(t, "backup", conn(path, "staging-cluster"))
	with := map[string]any{"namespace": "cdc", "cronjob": "cdc-es-backup"}
	out, err := run(t, sc, "kubernetes.backup_job", with)
	if err != nil {
		t.Fatal(err)
	}
	name := out["job_name"].(string)
	if out["duration"] != "15s" {
		t.Fatalf("duration %v", out["duration"])
	}
	j, err := remote(t, srv, "staging-cluster").BatchV1().Jobs("cdc").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if j.Annotations[k8ssteps.InstantiateAnnotation] != "manual" || len(j.OwnerReferences) != 1 || j.OwnerReferences[0].UID == "" {
		t.Fatalf("job %+v", j.ObjectMeta)
	}
	if _, err := run(t, sc, "kubernetes.backup_job", with); err != nil || count(srv, "create", "/jobs") != 1 || c.Writes("jobs") != 1 {
		t.Fatalf("second run: %v, %d creates", err, count(srv, "create", "/jobs"))
	}
	if count(srv, "watch", "/jobs") == 0 {
		t.Fatal("backup_job did not watch the job through the server")
	}
	// a failing job's reason crosses the wire
	c.FailJobsFrom("cdc", "cdc-es-backup", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
	_, err = run(t, enginetest.NewContext(t, "backup-2", conn(path, "staging-cluster")), "kubernetes.backup_job", with)
	if err == nil || !strings.Contains(err.Error(), "BackoffLimitExceeded") {
		t.Fatalf("err = %v", err)
	}
}

// Patch types, list selectors and paging, namespaces and discovery with client-go.
func TestClientGoSurface(t *testing.T) {
	c, srv, _ := served(t)
	c.AddDeployment("cvs", "web", "reg.example/web:1", 1, "tier=front")
	c.AddDeployment("cvs", "api", "reg.example/api:1", 1, "tier=back")
	c.AddDeployment("cdc", "indexer", "reg.example/indexer:1", 1, "tier=back")
	cs := remote(t, srv, "staging-cluster")
	ctx := context.Background()
	deps := cs.AppsV1().Deployments("cvs")

	d, err := deps.Patch(ctx, "web", types.JSONPatchType, []byte(`[{"op":"replace","path":"/spec/replicas","value":3}]`), metav1.PatchOptions{})
	if err != nil || *d.Spec.Replicas != 3 || d.Generation != 2 {
		t.Fatalf("json patch: %v %v", err, d)
	}
	d, err = deps.Patch(ctx, "web", types.MergePatchType, []byte(`{"metadata":{"annotations":{"note":"hi"}}}`), metav1.PatchOptions{})
	if err != nil || d.Annotations["note"] != "hi" || d.Generation != 2 {
		t.Fatalf("merge patch: %v %v", err, d)
	}
	d, err = deps.Patch(ctx, "web", types.StrategicMergePatchType, []byte(`{"spec":{"replicas":5}}`), metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil || *d.Spec.Replicas != 5 {
		t.Fatalf("dry-run patch: %v %v", err, d)
	}
	if d, _ = deps.Get(ctx, "web", metav1.GetOptions{}); *d.Spec.Replicas != 3 {
		t.Fatalf("a dry run wrote: replicas %d", *d.Spec.Replicas)
	}
	if _, err := deps.Patch(ctx, "web", types.JSONPatchType, []byte(`[{"op":"test","path":"/spec/replicas","value":9}]`), metav1.PatchOptions{}); !isCode(err, 422) {
		t.Fatalf("failing json patch: %v", err)
	}

	l, err := cs.AppsV1().Deployments("").List(ctx, metav1.ListOptions{LabelSelector: "tier=back"})
	if err != nil || len(l.Items) != 2 {
		t.Fatalf("label selector: %v %d", err, len(l.Items))
	}
	l, err = deps.List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=api"})
	if err != nil || len(l.Items) != 1 || l.Items[0].Name != "api" {
		t.Fatalf("field selector: %v %v", err, l)
	}
	l, err = cs.AppsV1().Deployments("").List(ctx, metav1.ListOptions{Limit: 2})
	if err != nil || len(l.Items) != 2 || l.Continue == "" {
		t.Fatalf("page 1: %v %d %q", err, len(l.Items), l.Continue)
	}
	l2, err := cs.AppsV1().Deployments("").List(ctx, metav1.ListOptions{Limit: 2, Continue: l.Continue})
	if err != nil || len(l2.Items) != 1 || l2.Continue != "" || l2.Items[0].Name == l.Items[0].Name {
		t.Fatalf("page 2: %v %v", err, l2)
	}
	if rs, err := cs.AppsV1().ReplicaSets("cvs").List(ctx, metav1.ListOptions{}); err != nil || len(rs.Items) != 2 {
		t.Fatalf("replicasets: %v", err)
	}
	if pods, err := cs.CoreV1().Pods("cdc").List(ctx, metav1.ListOptions{LabelSelector: "tier=back"}); err != nil || len(pods.Items) != 1 || pods.Items[0].Labels["app.kubernetes.io/name"] != "indexer" {
		t.Fatalf("pods: %v %v", err, pods)
	}

	ns, err := cs.CoreV1().Namespaces().Get(ctx, "cdc", metav1.GetOptions{})
	if err != nil || ns.Status.Phase != "Active" {
		t.Fatalf("namespace cdc: %v %v", err, ns)
	}
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "nowhere", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("namespace nowhere: %v", err)
	}
	nsl, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil || len(nsl.Items) != 4 { // cdc, cvs, default, kube-system
		t.Fatalf("namespaces: %v %v", err, nsl)
	}

	job, err := cs.BatchV1().Jobs("cdc").Create(ctx, jobFor("once"), metav1.CreateOptions{})
	if err != nil || job.UID == "" {
		t.Fatalf("create job: %v", err)
	}
	if _, err := cs.BatchV1().Jobs("cdc").Create(ctx, jobFor("once"), metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Fatalf("second create: %v", err)
	}
	if err := cs.BatchV1().Jobs("cdc").Delete(ctx, "once", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.BatchV1().Jobs("cdc").Get(ctx, "once", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("after delete: %v", err)
	}

	// a fault injected into the cluster crosses the wire with its code
	c.FailNext("update", "deployments", 1, apierrors.NewConflict(appsv1.Resource("deployments"), "web", fmt.Errorf("the object has been modified")))
	d, _ = deps.Get(ctx, "web", metav1.GetOptions{})
	if _, err := deps.Update(ctx, d, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Fatalf("injected conflict: %v", err)
	}

	v, err := cs.Discovery().ServerVersion()
	if err != nil || v.Major != "1" {
		t.Fatalf("version: %v %v", err, v)
	}
	_, lists, err := cs.Discovery().ServerGroupsAndResources()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, l := range lists {
		for _, r := range l.APIResources {
			found[l.GroupVersion+"/"+r.Name] = true
		}
	}
	for _, want := range []string{"apps/v1/deployments", "apps/v1/statefulsets", "apps/v1/replicasets", "apps/v1/controllerrevisions", "batch/v1/jobs", "batch/v1/cronjobs", "v1/pods", "v1/namespaces"} {
		if !found[want] {
			t.Fatalf("discovery lacks %s: %v", want, found)
		}
	}
}

func isCode(err error, code int32) bool {
	var st apierrors.APIStatus
	return errors.As(err, &st) && st.Status().Code == code
}

func jobFor(name string) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "c", Image: "reg.example/once:1"}},
		}}},
	}
}

// Error bodies and auth, as raw HTTP.
func TestRawHTTP(t *testing.T) {
	c, srv, _ := served(t)
	c.AddDeployment("cvs", "web", "reg.example/web:1", 1)
	do := func(method, path, tok, ctype, body string) (*http.Response, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL()+path, strings.NewReader(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return resp, m
	}
	status := func(name string, resp *http.Response, m map[string]any, code int, reason string) {
		t.Helper()
		if resp.StatusCode != code || m["kind"] != "Status" || m["apiVersion"] != "v1" || m["status"] != "Failure" ||
			m["reason"] != reason || m["code"] != float64(code) || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: %d %v", name, resp.StatusCode, m)
		}
	}
	dep := "/apis/apps/v1/namespaces/cvs/deployments"
	resp, m := do("GET", dep+"/web", "", "", "")
	status("no token", resp, m, 401, "Unauthorized")
	resp, m = do("GET", dep+"/web", "wrong", "", "")
	status("wrong token", resp, m, 401, "Unauthorized")
	if msg := fmt.Sprint(m); strings.Contains(msg, token) {
		t.Fatalf("401 body shows the token: %s", msg)
	}
	resp, m = do("GET", dep+"/web", token, "", "")
	if resp.StatusCode != 200 || m["kind"] != "Deployment" || m["apiVersion"] != "apps/v1" {
		t.Fatalf("get: %d %v", resp.StatusCode, m)
	}
	resp, m = do("GET", dep+"/missing", token, "", "")
	status("missing", resp, m, 404, "NotFound")
	if det := m["details"].(map[string]any); det["name"] != "missing" || det["group"] != "apps" || det["kind"] != "deployments" {
		t.Fatalf("404 details %v", det)
	}
	body := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}`
	resp, m = do("POST", dep, token, "application/json", body)
	status("duplicate", resp, m, 409, "AlreadyExists")
	resp, m = do("POST", dep, token, "application/json", strings.Replace(body, `"web"`, `"Not_A_Name"`, 1))
	status("bad name", resp, m, 422, "Invalid")
	if causes := m["details"].(map[string]any)["causes"].([]any); causes[0].(map[string]any)["field"] != "metadata.name" {
		t.Fatalf("422 causes %v", causes)
	}
	resp, m = do("POST", "/apis/apps/v1/namespaces/other/deployments", token, "application/json", strings.Replace(body, `"name":"web"`, `"name":"web2","namespace":"cvs"`, 1))
	status("namespace mismatch", resp, m, 400, "BadRequest")
	resp, m = do("PATCH", dep+"/web", token, "application/json-patch+json", `{not json`)
	status("bad patch", resp, m, 400, "BadRequest")
	resp, m = do("PATCH", dep+"/web", token, "text/plain", `x`)
	status("patch media type", resp, m, 415, "UnsupportedMediaType")
	resp, m = do("GET", "/apis/apps/v1/namespaces/cvs/daemonsets", token, "", "")
	status("unserved resource", resp, m, 404, "NotFound")
	resp, m = do("GET", "/apis/apps/v1/namespaces/cvs/deployments?fieldSelector=spec.replicas%3D1", token, "", "")
	status("unsupported field", resp, m, 400, "BadRequest")
	c.FailNext("get", "deployments", 1, apierrors.NewTooManyRequests("slow down", 7))
	resp, m = do("GET", dep+"/web", token, "", "")
	status("rate limited", resp, m, 429, "TooManyRequests")
	if resp.Header.Get("Retry-After") != "7" {
		t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	c.FailNext("get", "deployments", 1, apierrors.NewServiceUnavailable("etcd leader changed"))
	resp, m = do("GET", dep+"/web", token, "", "")
	status("unavailable", resp, m, 503, "ServiceUnavailable")

	// a raw watch: chunked, newline-delimited JSON events, the existing object as ADDED
	req, _ := http.NewRequest("GET", srv.URL()+dep+"?watch=true&timeoutSeconds=5", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	wr, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer wr.Body.Close()
	if wr.StatusCode != 200 || len(wr.TransferEncoding) == 0 || wr.TransferEncoding[0] != "chunked" {
		t.Fatalf("watch: %d %v", wr.StatusCode, wr.TransferEncoding)
	}
	line, err := bufio.NewReader(wr.Body).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Type   string `json:"type"`
		Object struct {
			Kind     string `json:"kind"`
			Metadata struct{ Name string }
		} `json:"object"`
	}
	if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.Type != "ADDED" || ev.Object.Kind != "Deployment" || ev.Object.Metadata.Name != "web" {
		t.Fatalf("first watch line %q: %v", line, err)
	}

	resp, _ = do("GET", "/healthz", "", "", "")
	if resp.StatusCode != 200 {
		t.Fatalf("healthz %d", resp.StatusCode)
	}
	for _, r := range srv.Requests() {
		if strings.Contains(fmt.Sprint(r), token) {
			t.Fatalf("request log holds the token: %+v", r)
		}
	}
}

func TestServeRefusesNonLoopback(t *testing.T) {
	c := kubesim.New()
	defer c.Close()
	if _, err := kubeapi.Serve(c.Clientset(), kubeapi.WithAddress("0.0.0.0:0")); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("err = %v", err)
	}
	srv, err := kubeapi.Serve(c.Clientset())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if srv.Token() == "" || !strings.Contains(string(srv.Kubeconfig("x")), srv.Token()) || !strings.Contains(string(srv.Kubeconfig("x")), "current-context: x") {
		t.Fatalf("kubeconfig:\n%s", srv.Kubeconfig("x"))
	}
}

// Pods are read through the facade as the steps read them: a list by label selector in a
// namespace, a get, and a watch that sees the new pods of a rollout.
func TestPodsThroughAPI(t *testing.T) {
	reg := kubesim.NewRegistry()
	digest := reg.Push("reg.example/cvs-frontend:3.6.1", "build 9")
	c, srv, _ := served(t, kubesim.WithRegistry(reg))
	c.AddDeployment("cvs", "cvs-frontend", "reg.example/cvs-frontend:3.6.0", 2)
	c.AddDeployment("cvs", "other", "reg.example/other:1", 1)
	c.AddDeployment("cdc", "cvs-frontend", "reg.example/cvs-frontend:3.6.0", 1)
	cs := remote(t, srv, "production-cluster")
	ctx := context.Background()
	pods, err := cs.CoreV1().Pods("cvs").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=cvs-frontend"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 2 {
		t.Fatalf("%d pods, want the 2 of cvs/cvs-frontend", len(pods.Items))
	}
	p, err := cs.CoreV1().Pods("cvs").Get(ctx, pods.Items[0].Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st := p.Status.ContainerStatuses; len(st) != 1 || st[0].Image != "reg.example/cvs-frontend:3.6.0" || !strings.HasPrefix(st[0].ImageID, "reg.example/cvs-frontend@sha256:") {
		t.Fatalf("container statuses %+v", st)
	}
	w, err := cs.CoreV1().Pods("cvs").Watch(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=cvs-frontend"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	setImage(t, cs, "cvs", "cvs-frontend", "cvs-frontend", "reg.example/cvs-frontend:3.6.1")
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatal("watch ended")
			}
			p, isPod := ev.Object.(*corev1.Pod)
			if !isPod || p.Namespace != "cvs" || p.Labels["app.kubernetes.io/name"] != "cvs-frontend" {
				t.Fatalf("event %s %T outside the selector", ev.Type, ev.Object)
			}
			if ev.Type == watch.Added && len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].ImageID == "reg.example/cvs-frontend@"+digest {
				return
			}
		case <-timeout:
			t.Fatal("no pod of the new image was watched")
		}
	}
}

// Access reviews cross the wire (201, answered by the cluster's Deny and Allow rules, stored
// nowhere), a refused request is a 403 Status, and discovery lists the review resource.
func TestAccessReviewsThroughAPI(t *testing.T) {
	c, srv, _ := served(t)
	c.AddDeployment("cvs", "web", "reg.example/web:1", 1)
	c.Deny("cvs", "patch", "apps", "deployments")
	cs := remote(t, srv, "production-cluster")
	ctx := context.Background()
	ask := func(verb string) authorizationv1.SubjectAccessReviewStatus {
		t.Helper()
		r, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: "cvs", Verb: verb, Group: "apps", Resource: "deployments"}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return r.Status
	}
	if st := ask("get"); !st.Allowed {
		t.Fatalf("get: %+v", st)
	}
	if st := ask("patch"); st.Allowed || !strings.Contains(st.Reason, "Deny") {
		t.Fatalf("patch: %+v", st)
	}
	if n := count(srv, "create", "selfsubjectaccessreviews"); n != 2 {
		t.Fatalf("%d review requests logged", n)
	}
	for _, r := range srv.Requests() {
		if strings.Contains(r.Path, "selfsubjectaccessreviews") && r.Code != http.StatusCreated {
			t.Fatalf("review answered %d", r.Code)
		}
	}
	_, err := cs.AppsV1().Deployments("cvs").Patch(ctx, "web", types.MergePatchType, []byte(`{}`), metav1.PatchOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `cannot patch resource "deployments" in API group "apps" in the namespace "cvs"`) {
		t.Fatalf("patch: %v", err)
	}
	if _, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{}, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Fatalf("empty review: %v", err)
	}
	_, lists, err := cs.Discovery().ServerGroupsAndResources()
	if err != nil {
		t.Fatal(err)
	}
	var verbs []string
	for _, l := range lists {
		for _, r := range l.APIResources {
			if l.GroupVersion == "authorization.k8s.io/v1" && r.Name == "selfsubjectaccessreviews" {
				verbs = r.Verbs
			}
		}
	}
	if len(verbs) != 1 || verbs[0] != "create" {
		t.Fatalf("discovery: selfsubjectaccessreviews verbs %v", verbs)
	}
}
