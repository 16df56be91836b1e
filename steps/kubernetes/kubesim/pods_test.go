package kubesim

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func listPods(t *testing.T, c *Cluster, ns, selector string) []corev1.Pod {
	t.Helper()
	l, err := c.Clientset().CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(l.Items, func(i, j int) bool { return l.Items[i].Name < l.Items[j].Name })
	return l.Items
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// images returns, for each pod, "image imageID".
func podImages(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		for _, s := range p.Status.ContainerStatuses {
			out = append(out, s.Image+" "+s.ImageID)
		}
	}
	return out
}

// waitTicks lets n ticks of simulated time pass.
func waitTicks(t *testing.T, c *Cluster, n int) {
	t.Helper()
	until := c.Now().Add(time.Duration(n) * c.step)
	waitFor(t, "ticks", func() bool { return !c.Now().Before(until) })
}

func TestDeploymentPodsFollowRolloutAndRollback(t *testing.T) {
	c := New()
	defer c.Close()
	c.AddDeployment("cvs", "web", "reg/web:1.0.0", 3)
	sel := "app.kubernetes.io/name=web"
	pods := listPods(t, c, "cvs", sel)
	if len(pods) != 3 {
		t.Fatalf("%d pods after seeding, want 3", len(pods))
	}
	rs1 := pods[0].Labels[appsv1.DefaultDeploymentUniqueLabelKey]
	for _, p := range pods {
		ref := metav1.GetControllerOf(&p)
		if ref == nil || ref.Kind != "ReplicaSet" || ref.Name != "web-"+rs1 || !strings.HasPrefix(p.Name, "web-"+rs1+"-") {
			t.Fatalf("pod %s owner %+v", p.Name, ref)
		}
		if !isReady(&p) || p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) != 1 {
			t.Fatalf("pod %s status %+v", p.Name, p.Status)
		}
		cs := p.Status.ContainerStatuses[0]
		if cs.Name != "web" || cs.Image != "reg/web:1.0.0" || cs.ImageID != "reg/web@"+c.ResolveDigest("reg/web:1.0.0") || !cs.Ready {
			t.Fatalf("container status %+v", cs)
		}
	}
	if err := c.SetImage("cvs", "deployment", "web", "", "reg/web:1.1.0"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "rollout to 1.1.0", func() bool {
		d := getDeploy(t, c, "cvs", "web")
		return d.Status.ObservedGeneration == 2 && d.Status.UpdatedReplicas == 3 && d.Status.AvailableReplicas == 3 && d.Status.Replicas == 3
	})
	pods = listPods(t, c, "cvs", sel)
	if len(pods) != 3 {
		t.Fatalf("%d pods after the rollout, want 3 (old ones gone): %v", len(pods), podImages(pods))
	}
	rs2 := pods[0].Labels[appsv1.DefaultDeploymentUniqueLabelKey]
	for _, p := range pods {
		if p.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != rs2 || rs2 == rs1 || p.Status.ContainerStatuses[0].Image != "reg/web:1.1.0" || !isReady(&p) {
			t.Fatalf("pod %s after rollout: %v", p.Name, podImages(pods))
		}
	}
	// rollback: the old ReplicaSet's pods come back
	if err := c.SetImage("cvs", "deployment", "web", "", "reg/web:1.0.0"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "rollback", func() bool {
		d := getDeploy(t, c, "cvs", "web")
		return d.Annotations[RevisionAnnotation] == "3" && d.Status.UpdatedReplicas == 3 && d.Status.AvailableReplicas == 3 && d.Status.Replicas == 3
	})
	pods = listPods(t, c, "cvs", sel)
	if len(pods) != 3 {
		t.Fatalf("%d pods after rollback: %v", len(pods), podImages(pods))
	}
	for _, p := range pods {
		if p.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != rs1 || p.Status.ContainerStatuses[0].ImageID != "reg/web@"+c.ResolveDigest("reg/web:1.0.0") {
			t.Fatalf("pods after rollback: %v", podImages(pods))
		}
	}
}

func TestBrokenPodsNeverReady(t *testing.T) {
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
	pods := listPods(t, c, "cvs", "app.kubernetes.io/name=web")
	if len(pods) != 4 {
		t.Fatalf("%d pods, want 2 old and 2 new: %v", len(pods), podImages(pods))
	}
	for _, p := range pods {
		if broken := strings.HasSuffix(p.Spec.Containers[0].Image, BrokenSuffix); isReady(&p) == broken {
			t.Fatalf("pod %s (%s) ready=%v", p.Name, p.Spec.Containers[0].Image, isReady(&p))
		}
	}
}

func TestStatefulSetPodsFollowRevisions(t *testing.T) {
	c := New()
	defer c.Close()
	ctx := context.Background()
	c.AddStatefulSet("cvs", "cvs-es", "reg/es:8.1", 3)
	sts := func() *appsv1.StatefulSet {
		s, err := c.Clientset().AppsV1().StatefulSets("cvs").Get(ctx, "cvs-es", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	pods := listPods(t, c, "cvs", "app.kubernetes.io/name=cvs-es")
	rev1 := sts().Status.UpdateRevision
	if len(pods) != 3 || pods[0].Name != "cvs-es-0" || pods[2].Name != "cvs-es-2" {
		t.Fatalf("pods %v", podImages(pods))
	}
	for _, p := range pods {
		if p.Labels[StatefulSetRevisionLabel] != rev1 || !isReady(&p) || metav1.GetControllerOf(&p).Kind != "StatefulSet" {
			t.Fatalf("pod %s labels %v", p.Name, p.Labels)
		}
	}
	if err := c.SetImage("cvs", "statefulset", "cvs-es", "", "reg/es:8.2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "statefulset update", func() bool {
		s := sts()
		return s.Status.ObservedGeneration == 2 && s.Status.CurrentRevision == s.Status.UpdateRevision && s.Status.UpdatedReplicas == 3
	})
	rev2 := sts().Status.UpdateRevision
	pods = listPods(t, c, "cvs", StatefulSetRevisionLabel+"="+rev2)
	if len(pods) != 3 || rev2 == rev1 {
		t.Fatalf("pods on %s: %v", rev2, podImages(pods))
	}
	for _, p := range pods {
		if p.Status.ContainerStatuses[0].ImageID != "reg/es@"+c.ResolveDigest("reg/es:8.2") {
			t.Fatalf("pods %v", podImages(pods))
		}
	}
	// a broken image: the last ordinal is replaced first and never becomes Ready
	if err := c.SetImage("cvs", "statefulset", "cvs-es", "", "reg/es"+BrokenSuffix); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "broken pod", func() bool {
		pods := listPods(t, c, "cvs", "app.kubernetes.io/name=cvs-es")
		return len(pods) == 3 && pods[2].Spec.Containers[0].Image == "reg/es"+BrokenSuffix
	})
	waitTicks(t, c, 3)
	pods = listPods(t, c, "cvs", "app.kubernetes.io/name=cvs-es")
	if isReady(&pods[2]) || !isReady(&pods[0]) || pods[0].Spec.Containers[0].Image != "reg/es:8.2" {
		t.Fatalf("pods %v", podImages(pods))
	}
}

// A retag (what "tag as production image" does) keeps the digest; a pod keeps the digest its
// tag had when it started, whatever is pushed later.
func TestRegistryDigests(t *testing.T) {
	reg := NewRegistry()
	staging := reg.Push("reg/cvs-frontend:main-9", "build 9")
	if !strings.HasPrefix(staging, "sha256:") || len(staging) != len("sha256:")+64 {
		t.Fatalf("digest %q", staging)
	}
	if d, ok := reg.Digest("reg/cvs-frontend:main-9"); !ok || d != staging {
		t.Fatalf("Digest = %q %v", d, ok)
	}
	if _, err := reg.Tag("reg/cvs-frontend:nope", "reg/cvs-frontend:3.6.1"); err == nil {
		t.Fatal("tagging an unknown image should fail")
	}
	if d, err := reg.Tag("reg/cvs-frontend:main-9", "reg/cvs-frontend:3.6.1"); err != nil || d != staging {
		t.Fatalf("Tag = %q %v", d, err)
	}
	c := New(WithRegistry(reg))
	defer c.Close()
	if c.Registry() != reg {
		t.Fatal("Registry() is not the given registry")
	}
	c.AddDeployment("cvs", "cvs-frontend", "reg/cvs-frontend:3.6.0", 2)
	if err := c.SetImage("cvs", "deployment", "cvs-frontend", "", "reg/cvs-frontend:3.6.1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "rollout", func() bool {
		d := getDeploy(t, c, "cvs", "cvs-frontend")
		return d.Status.UpdatedReplicas == 2 && d.Status.AvailableReplicas == 2 && d.Status.Replicas == 2 && d.Generation == d.Status.ObservedGeneration
	})
	check := func(want string) {
		t.Helper()
		pods := listPods(t, c, "cvs", "app.kubernetes.io/name=cvs-frontend")
		if len(pods) != 2 {
			t.Fatalf("pods %v", podImages(pods))
		}
		for _, p := range pods {
			if id := p.Status.ContainerStatuses[0].ImageID; id != "reg/cvs-frontend@"+want {
				t.Fatalf("pod %s runs %s, want digest %s", p.Name, id, want)
			}
		}
	}
	check(staging)
	// a re-push of the tag moves the tag, not the running pods
	hotfix := reg.Push("reg/cvs-frontend:3.6.1", "hotfix")
	if hotfix == staging || c.ResolveDigest("reg/cvs-frontend:3.6.1") != hotfix {
		t.Fatal("the push did not move the tag")
	}
	waitTicks(t, c, 3)
	check(staging)
	// without a registry, the digest comes from the reference: stable and distinct
	other, another := New(), New()
	defer other.Close()
	defer another.Close()
	if a, b := other.ResolveDigest("reg/x:1"), other.ResolveDigest("reg/x:2"); a == b || a != another.ResolveDigest("reg/x:1") || !strings.HasPrefix(a, "sha256:") {
		t.Fatalf("derived digests %s %s", a, b)
	}
	if d := other.ResolveDigest("reg/x@sha256:abc"); d != "sha256:abc" {
		t.Fatalf("pinned reference resolves to %s", d)
	}
}
