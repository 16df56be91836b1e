package kubesim

import (
	"context"
	"runtime"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// waitFor polls the simulated cluster in tests only (the steps themselves use watches); the
// simulation runs on millisecond ticks, so this takes milliseconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func getDeploy(t *testing.T, c *Cluster, ns, name string) *appsv1.Deployment {
	t.Helper()
	d, err := c.Clientset().AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSeededDeploymentIsRolledOut(t *testing.T) {
	c := New()
	defer c.Close()
	c.AddDeployment("cvs", "cvs-frontend", "reg/cvs-frontend:3.6.0", 3)
	d := getDeploy(t, c, "cvs", "cvs-frontend")
	if d.Generation != 1 || d.Status.ObservedGeneration != 1 || d.Status.AvailableReplicas != 3 || d.Status.UpdatedReplicas != 3 {
		t.Fatalf("seeded status: gen %d observed %d %+v", d.Generation, d.Status.ObservedGeneration, d.Status)
	}
	if d.Annotations[RevisionAnnotation] != "1" || d.UID == "" {
		t.Fatalf("annotations %v uid %q", d.Annotations, d.UID)
	}
}

func TestSetImageRollsOutAndRenumbersOnUndo(t *testing.T) {
	c := New()
	defer c.Close()
	ctx := context.Background()
	c.AddDeployment("cvs", "web", "reg/web:1.0.0", 2)
	if err := c.SetImage("cvs", "deployment", "web", "", "reg/web:1.1.0"); err != nil {
		t.Fatal(err)
	}
	d := getDeploy(t, c, "cvs", "web")
	if d.Generation != 2 {
		t.Fatalf("generation after set image = %d, want 2 (bumped with the spec change)", d.Generation)
	}
	waitFor(t, "rollout to 1.1.0", func() bool {
		d := getDeploy(t, c, "cvs", "web")
		return d.Status.ObservedGeneration == 2 && d.Status.UpdatedReplicas == 2 && d.Status.AvailableReplicas == 2 && d.Status.Replicas == 2
	})
	d = getDeploy(t, c, "cvs", "web")
	if d.Annotations[RevisionAnnotation] != "2" {
		t.Fatalf("revision %q, want 2", d.Annotations[RevisionAnnotation])
	}
	// undo: put revision 1's template back (as kubectl's JSON patch would)
	if err := c.SetImage("cvs", "deployment", "web", "", "reg/web:1.0.0"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "rollback renumbered", func() bool {
		d := getDeploy(t, c, "cvs", "web")
		return d.Annotations[RevisionAnnotation] == "3" && d.Status.AvailableReplicas == 2 && d.Status.UpdatedReplicas == 2 && d.Status.Replicas == 2
	})
	rss, err := c.Clientset().AppsV1().ReplicaSets("cvs").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rss.Items) != 2 {
		t.Fatalf("%d replicasets, want 2 (the old one adopted)", len(rss.Items))
	}
	for _, rs := range rss.Items {
		if rs.Spec.Template.Spec.Containers[0].Image == "reg/web:1.0.0" {
			if rs.Annotations[RevisionAnnotation] != "3" || rs.Annotations[RevisionHistoryAnnotation] != "1" {
				t.Fatalf("adopted RS annotations %v, want revision 3 and history 1", rs.Annotations)
			}
		}
	}
	cond := progressing(getDeploy(t, c, "cvs", "web"))
	if cond == nil || cond.Reason != "NewReplicaSetAvailable" {
		t.Fatalf("Progressing %+v, want NewReplicaSetAvailable", cond)
	}
}

func progressing(d *appsv1.Deployment) *appsv1.DeploymentCondition {
	for i := range d.Status.Conditions {
		if d.Status.Conditions[i].Type == appsv1.DeploymentProgressing {
			return &d.Status.Conditions[i]
		}
	}
	return nil
}

func TestBrokenImageHitsProgressDeadline(t *testing.T) {
	c := New(WithTick(time.Millisecond, 30*time.Second))
	defer c.Close()
	c.AddDeployment("cvs", "web", "reg/web:1.0.0", 2)
	if err := c.SetImage("cvs", "deployment", "web", "web", "reg/web:1.1.0"+BrokenSuffix); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ProgressDeadlineExceeded", func() bool {
		c := progressing(getDeploy(t, c, "cvs", "web"))
		return c != nil && c.Reason == "ProgressDeadlineExceeded"
	})
	d := getDeploy(t, c, "cvs", "web")
	if d.Status.AvailableReplicas != 2 || d.Status.UpdatedReplicas != 2 || d.Status.Replicas != 4 {
		t.Fatalf("stuck status %+v: old pods should stay available", d.Status)
	}
}

func TestStatefulSetRollout(t *testing.T) {
	c := New()
	defer c.Close()
	c.AddStatefulSet("cvs", "cvs-es", "reg/es:8.1", 3)
	if err := c.SetImage("cvs", "statefulset", "cvs-es", "", "reg/es:8.2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "statefulset update", func() bool {
		s, _ := c.Clientset().AppsV1().StatefulSets("cvs").Get(context.Background(), "cvs-es", metav1.GetOptions{})
		return s.Status.ObservedGeneration == 2 && s.Status.CurrentRevision == s.Status.UpdateRevision && s.Status.UpdatedReplicas == 3
	})
	crs, _ := c.Clientset().AppsV1().ControllerRevisions("cvs").List(context.Background(), metav1.ListOptions{})
	if len(crs.Items) != 2 {
		t.Fatalf("%d controller revisions, want 2", len(crs.Items))
	}
}

func TestJobCompletesOrFails(t *testing.T) {
	c := New()
	defer c.Close()
	ctx := context.Background()
	c.AddCronJob("cdc", "es-backup", "0 2 * * *", "reg/backup:1")
	cj, _ := c.Clientset().BatchV1().CronJobs("cdc").Get(ctx, "es-backup", metav1.GetOptions{})
	mk := func(name string) {
		yes := true
		_, err := c.Clientset().BatchV1().Jobs("cdc").Create(ctx, &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "cdc",
				OwnerReferences: []metav1.OwnerReference{{Kind: "CronJob", Name: "es-backup", UID: cj.UID, Controller: &yes}}},
			Spec: cj.Spec.JobTemplate.Spec}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	mk("ok")
	waitFor(t, "job complete", func() bool {
		j, _ := c.Clientset().BatchV1().Jobs("cdc").Get(ctx, "ok", metav1.GetOptions{})
		return j.Status.CompletionTime != nil && j.Status.Succeeded == 1
	})
	c.FailJobsFrom("cdc", "es-backup", "DeadlineExceeded", "Job was active longer than specified deadline")
	mk("bad")
	waitFor(t, "job failed", func() bool {
		j, _ := c.Clientset().BatchV1().Jobs("cdc").Get(ctx, "bad", metav1.GetOptions{})
		for _, cond := range j.Status.Conditions {
			if cond.Type == batchv1.JobFailed && cond.Reason == "DeadlineExceeded" {
				return true
			}
		}
		return false
	})
}

func TestStatusWriteKeepsSpecAndFaults(t *testing.T) {
	c := New()
	defer c.Close()
	ctx := context.Background()
	c.AddDeployment("ns", "web", "reg/web:1", 1)
	d := getDeploy(t, c, "ns", "web")
	d.Spec.Template.Spec.Containers[0].Image = "reg/web:changed-in-status-write"
	d.Status.ReadyReplicas = 7
	if _, err := c.Clientset().AppsV1().Deployments("ns").UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := getDeploy(t, c, "ns", "web")
	if got.Spec.Template.Spec.Containers[0].Image != "reg/web:1" || got.Generation != 1 {
		t.Fatalf("a status write changed the spec: %s gen %d", got.Spec.Template.Spec.Containers[0].Image, got.Generation)
	}
	c.FailNext("get", "deployments", 1, apierrors.NewServiceUnavailable("etcd leader changed"))
	if _, err := c.Clientset().AppsV1().Deployments("ns").Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsServiceUnavailable(err) {
		t.Fatalf("fault not injected: %v", err)
	}
	if _, err := c.Clientset().AppsV1().Deployments("ns").Get(ctx, "web", metav1.GetOptions{}); err != nil {
		t.Fatalf("fault not consumed: %v", err)
	}
	if n := c.Writes("deployments"); n != 1 {
		t.Fatalf("writes = %d, want 1 (the status update)", n)
	}
}

func TestAutoCreate(t *testing.T) {
	c := New(WithAutoCreate(func(ns, kind, name string) string { return "reg/" + name + ":9.9.9" }))
	defer c.Close()
	d := getDeploy(t, c, "eqb", "eqb-frontend")
	if d.Spec.Template.Spec.Containers[0].Image != "reg/eqb-frontend:9.9.9" || d.Status.AvailableReplicas != 1 {
		t.Fatalf("auto-created %+v", d)
	}
	if d.UID == types.UID("") {
		t.Fatal("no uid")
	}
}

func TestSlowNextDelays(t *testing.T) {
	c := New()
	defer c.Close()
	c.AddDeployment("ns", "web", "reg/web:1", 1)
	c.SlowNext("get", "deployments", 1, 30*time.Millisecond)
	start := time.Now()
	getDeploy(t, c, "ns", "web")
	if time.Since(start) < 30*time.Millisecond {
		t.Fatal("not delayed")
	}
	start = time.Now()
	getDeploy(t, c, "ns", "web")
	if time.Since(start) > 25*time.Millisecond {
		t.Fatal("delay not consumed")
	}
}

// Close stops every goroutine the cluster started.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	for i := 0; i < 5; i++ {
		c := New()
		c.AddDeployment("ns", "web", "reg/web:1", 2)
		if err := c.SetImage("ns", "deployment", "web", "", "reg/web:2"); err != nil {
			t.Fatal(err)
		}
		w, err := c.Clientset().AppsV1().Deployments("ns").Watch(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w.Stop()
		c.Close()
	}
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

// In a rehearsal the deploy job calls SetImage on workloads nobody seeded: with auto-create
// they appear (rolled out to the auto image) and then roll out to the deployed image.
func TestAutoCreateThenSetImage(t *testing.T) {
	c := New(WithAutoCreate(nil))
	defer c.Close()
	if err := c.SetImage("cvs", "deployment", "cvs-frontend", "", "reg/cvs-frontend:3.6.1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "rollout of the deployed image", func() bool {
		d := getDeploy(t, c, "cvs", "cvs-frontend")
		return d.Annotations[RevisionAnnotation] == "2" && d.Status.UpdatedReplicas == 1 && d.Status.AvailableReplicas == 1 && d.Status.Replicas == 1
	})
	if img := getDeploy(t, c, "cvs", "cvs-frontend").Spec.Template.Spec.Containers[0].Image; img != "reg/cvs-frontend:3.6.1" {
		t.Fatalf("image %s", img)
	}
}
