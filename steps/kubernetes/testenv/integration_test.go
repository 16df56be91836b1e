//go:build integration

package testenv

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/engine/enginetest"
	_ "github.com/cessda/runbook/steps/kubernetes"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// env gives a connection to the control plane started by k8s-testenv.sh (by kubeconfig and
// context, as a playbook would name staging-cluster), a clientset for setting up, and a
// fresh namespace.
func env(t *testing.T) (*engine.Connection, kubernetes.Interface, string) {
	t.Helper()
	kc := os.Getenv("KUBECONFIG")
	if kc == "" {
		t.Skip("KUBECONFIG not set: start the control plane with steps/kubernetes/testenv/k8s-testenv.sh start")
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: kc}, &clientcmd.ConfigOverrides{CurrentContext: "testenv-cluster"}).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	ns := fmt.Sprintf("rb-it-%d", rand.IntN(1_000_000))
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	return &engine.Connection{Name: "testenv", Type: "kubernetes", Settings: map[string]string{"kubeconfig": kc, "context": "testenv-cluster"}}, cs, ns
}

func run(t *testing.T, sc *enginetest.Context, typ string, with map[string]any) (engine.Outputs, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := enginetest.Decode(t, typ, with).Run(ctx, sc.StepContext)
	t.Logf("%s took %s", typ, time.Since(start).Round(time.Millisecond))
	return out, err
}

func deployment(ns, name, image string, replicas int32, deadline int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas:                &replicas,
			ProgressDeadlineSeconds: &deadline,
			Selector:                &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
}

func setImage(t *testing.T, cs kubernetes.Interface, ns, name, image string) {
	t.Helper()
	ctx := context.Background()
	d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Spec.Template.Spec.Containers[0].Image = image
	if _, err := cs.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestRealVerifyAndRollback(t *testing.T) {
	conn, cs, ns := env(t)
	ctx := context.Background()
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, deployment(ns, "cvs-frontend", "example.invalid/cvs-frontend:3.6.0", 2, 600), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sc := enginetest.NewContext(t, "verify", conn)
	verify := func(tag string) engine.Outputs {
		out, err := run(t, sc, "kubernetes.verify", map[string]any{"namespace": ns, "deployments": []any{"cvs-frontend"}, "image_tag": tag, "timeout": "90s"})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if rev := verify("3.6.0")["revisions"].(map[string]int)["cvs-frontend"]; rev != 1 {
		t.Fatalf("revision %d, want 1", rev)
	}
	setImage(t, cs, ns, "cvs-frontend", "example.invalid/cvs-frontend:3.6.1")
	out := verify("3.6.1")
	if rev := out["revisions"].(map[string]int)["cvs-frontend"]; rev != 2 {
		t.Fatalf("revision %d, want 2", rev)
	}
	if w := out["workloads"].([]map[string]any)[0]; w["ready_replicas"] != 2 {
		t.Fatalf("workload %v", w)
	}

	rsc := enginetest.NewContext(t, "rollback", conn)
	with := map[string]any{"namespace": ns, "name": "cvs-frontend", "timeout": "90s"}
	out, err := run(t, rsc, "kubernetes.rollback", with)
	if err != nil {
		t.Fatal(err)
	}
	// the real controller adopts revision 1's ReplicaSet and renumbers it to 3
	if out["from_revision"] != 2 || out["to_revision"] != 1 || out["revision"] != 3 {
		t.Fatalf("outputs %v", out)
	}
	d, _ := cs.AppsV1().Deployments(ns).Get(ctx, "cvs-frontend", metav1.GetOptions{})
	if img := d.Spec.Template.Spec.Containers[0].Image; img != "example.invalid/cvs-frontend:3.6.0" {
		t.Fatalf("image after rollback %s", img)
	}
	rss, _ := cs.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
	for _, rs := range rss.Items {
		if rs.Spec.Template.Spec.Containers[0].Image == "example.invalid/cvs-frontend:3.6.0" &&
			(rs.Annotations["deployment.kubernetes.io/revision"] != "3" || rs.Annotations["deployment.kubernetes.io/revision-history"] != "1") {
			t.Fatalf("renumbering: %v", rs.Annotations)
		}
	}
	gen := d.Generation
	if _, err := run(t, rsc, "kubernetes.rollback", with); err != nil {
		t.Fatal(err)
	}
	d, _ = cs.AppsV1().Deployments(ns).Get(ctx, "cvs-frontend", metav1.GetOptions{})
	if d.Generation != gen || d.Spec.Template.Spec.Containers[0].Image != "example.invalid/cvs-frontend:3.6.0" {
		t.Fatalf("second rollback run changed the deployment: generation %d -> %d, image %s", gen, d.Generation, d.Spec.Template.Spec.Containers[0].Image)
	}
	verify("3.6.0")
}

func TestRealStuckRolloutHitsDeadline(t *testing.T) {
	conn, cs, ns := env(t)
	if _, err := cs.AppsV1().Deployments(ns).Create(context.Background(), deployment(ns, "web", "example.invalid/web:1.0.0", 2, 5), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sc := enginetest.NewContext(t, "verify", conn)
	if _, err := run(t, sc, "kubernetes.verify", map[string]any{"namespace": ns, "deployments": []any{"web"}, "image_tag": "1.0.0", "timeout": "90s"}); err != nil {
		t.Fatal(err)
	}
	setImage(t, cs, ns, "web", "example.invalid/web:broken") // kwok never makes these pods Ready
	_, err := run(t, sc, "kubernetes.verify", map[string]any{"namespace": ns, "deployments": []any{"web"}, "image_tag": "broken", "timeout": "90s"})
	if err == nil || !strings.Contains(err.Error(), `deployment "web" exceeded its progress deadline`) {
		t.Fatalf("err = %v", err)
	}
}

func TestRealStatefulSetVerify(t *testing.T) {
	conn, cs, ns := env(t)
	replicas := int32(2)
	labels := map[string]string{"app": "cvs-es"}
	s := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "cvs-es", Namespace: ns, Labels: labels},
		Spec: appsv1.StatefulSetSpec{Replicas: &replicas, ServiceName: "cvs-es", Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "es", Image: "example.invalid/es:8.1"}}}}},
	}
	ctx := context.Background()
	if _, err := cs.AppsV1().StatefulSets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sc := enginetest.NewContext(t, "verify", conn)
	if _, err := run(t, sc, "kubernetes.verify", map[string]any{"namespace": ns, "selector": "app=cvs-es", "image_tag": "8.1", "timeout": "90s"}); err != nil {
		t.Fatal(err)
	}
	got, _ := cs.AppsV1().StatefulSets(ns).Get(ctx, "cvs-es", metav1.GetOptions{})
	got.Spec.Template.Spec.Containers[0].Image = "example.invalid/es:8.2"
	if _, err := cs.AppsV1().StatefulSets(ns).Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, sc, "kubernetes.verify", map[string]any{"namespace": ns, "statefulsets": []any{"cvs-es"}, "image_tag": "8.2", "timeout": "90s"})
	if err != nil {
		t.Fatal(err)
	}
	if rev := out["revisions"].(map[string]int)["cvs-es"]; rev != 2 {
		t.Fatalf("statefulset revision %d, want 2", rev)
	}
	rsc := enginetest.NewContext(t, "rollback", conn)
	out, err = run(t, rsc, "kubernetes.rollback", map[string]any{"namespace": ns, "kind": "statefulset", "name": "cvs-es", "timeout": "90s"})
	if err != nil {
		t.Fatal(err)
	}
	if img := out["workloads"].([]map[string]any)[0]["images"].([]string)[0]; img != "example.invalid/es:8.1" {
		t.Fatalf("statefulset rollback outputs %v", out)
	}
}

func TestRealBackupJobFromCronJob(t *testing.T) {
	conn, cs, ns := env(t)
	suspend := true
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "cdc-es-backup", Namespace: ns},
		Spec: batchv1.CronJobSpec{Schedule: "0 2 * * *", Suspend: &suspend,
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "backup", Image: "example.invalid/es-backup:1"}}}}}}},
	}
	if _, err := cs.BatchV1().CronJobs(ns).Create(context.Background(), cj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sc := enginetest.NewContext(t, "backup", conn)
	with := map[string]any{"namespace": ns, "cronjob": "cdc-es-backup", "timeout": "90s"}
	out, err := run(t, sc, "kubernetes.backup_job", with)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("outputs %v", out)
	j, err := cs.BatchV1().Jobs(ns).Get(context.Background(), out["job_name"].(string), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if j.Annotations["cronjob.kubernetes.io/instantiate"] != "manual" || metav1.GetControllerOf(j) == nil || metav1.GetControllerOf(j).Name != "cdc-es-backup" {
		t.Fatalf("job meta %+v", j.ObjectMeta)
	}
	if _, err := run(t, sc, "kubernetes.backup_job", with); err != nil {
		t.Fatal(err)
	}
	jobs, _ := cs.BatchV1().Jobs(ns).List(context.Background(), metav1.ListOptions{})
	if len(jobs.Items) != 1 {
		t.Fatalf("%d jobs after two runs, want 1", len(jobs.Items))
	}
}
