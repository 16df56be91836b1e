package kubernetes_test

import (
	"context"
	"strings"
	"testing"

	"github.com/cessda/runbook/engine/enginetest"
	"github.com/cessda/runbook/steps/kubernetes/kubesim"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Staging verifies the build to promote and outputs its digest; the production job retags
// it; production verification demands that digest.
func TestVerifyDigestFromStagingToProduction(t *testing.T) {
	reg := kubesim.NewRegistry()
	built := reg.Push("reg.example/cvs-frontend:main-9", "build 9")
	reg.Push("reg.example/cvs-frontend:3.6.0", "release 3.6.0")
	staging, prod := kubesim.New(kubesim.WithRegistry(reg)), kubesim.New(kubesim.WithRegistry(reg))
	defer staging.Close()
	defer prod.Close()
	staging.AddDeployment("cvs-v2", "cvs-frontend", "reg.example/cvs-frontend:main-9", 2)
	prod.AddDeployment("cvs", "cvs-frontend", "reg.example/cvs-frontend:3.6.0", 3)

	out, err := run(t, enginetest.NewContext(t, "verify_staging", conn(staging)), "kubernetes.verify",
		map[string]any{"namespace": "cvs-v2", "deployments": []any{"cvs-frontend"}, "image_tag": "main-9"})
	if err != nil {
		t.Fatal(err)
	}
	if out["digest"] != built || out["image"] != "reg.example/cvs-frontend:main-9" {
		t.Fatalf("digest %v image %v, want %s", out["digest"], out["image"], built)
	}
	w := out["workloads"].([]map[string]any)[0]
	if ds := w["digests"].([]string); len(ds) != 1 || ds[0] != built || w["pods"] != 2 {
		t.Fatalf("workload %v", w)
	}

	if _, err := reg.Tag("reg.example/cvs-frontend:main-9", "reg.example/cvs-frontend:3.6.1"); err != nil {
		t.Fatal(err)
	}
	deployed(t, prod, "cvs", "cvs-frontend", "reg.example/cvs-frontend:3.6.1")
	sc := enginetest.NewContext(t, "verify_production", conn(prod))
	with := map[string]any{"namespace": "cvs", "deployments": []any{"cvs-frontend"}, "image_tag": "3.6.1", "image_digest": out["digest"]}
	if p := plan(t, sc, "kubernetes.verify", with); !strings.Contains(p.Action, "digest "+built) {
		t.Fatalf("plan %q does not name the expected digest", p.Action)
	}
	out, err = run(t, sc, "kubernetes.verify", with)
	if err != nil {
		t.Fatal(err)
	}
	if out["digest"] != built || out["workloads"].([]map[string]any)[0]["pods"] != 3 {
		t.Fatalf("outputs %v", out)
	}
	// the full repository@digest form is accepted too
	with["image_digest"] = "reg.example/cvs-frontend@" + built
	if _, err := run(t, sc, "kubernetes.verify", with); err != nil {
		t.Fatal(err)
	}
}

// A tag pushed again between the staging check and the deploy: production runs the tag but
// not the tested build.
func TestVerifyDigestMismatch(t *testing.T) {
	reg := kubesim.NewRegistry()
	tested := reg.Push("reg.example/cvs-frontend:3.6.1", "build 9")
	other := reg.Push("reg.example/cvs-frontend:3.6.1", "build 10")
	c := kubesim.New(kubesim.WithRegistry(reg))
	defer c.Close()
	c.AddDeployment("cvs", "cvs-frontend", "reg.example/cvs-frontend:3.6.0", 2)
	deployed(t, c, "cvs", "cvs-frontend", "reg.example/cvs-frontend:3.6.1")
	_, err := run(t, enginetest.NewContext(t, "verify", conn(c)), "kubernetes.verify",
		map[string]any{"namespace": "cvs", "deployments": []any{"cvs-frontend"}, "image_tag": "3.6.1", "image_digest": tested})
	for _, want := range []string{"deployment cvs/cvs-frontend", "pod cvs-frontend-", "container cvs-frontend", "runs reg.example/cvs-frontend@" + other, "not the expected " + tested} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v\nwant it to contain %q", err, want)
		}
	}
}

// Pods of one workload started from a tag that moved in between run different builds.
func TestVerifyPodsRunDifferentImages(t *testing.T) {
	reg := kubesim.NewRegistry()
	reg.Push("reg.example/web:1.0.0", "build 1")
	c := kubesim.New(kubesim.WithRegistry(reg))
	defer c.Close()
	c.AddDeployment("cvs", "web", "reg.example/web:1.0.0", 2)
	reg.Push("reg.example/web:1.0.0", "build 2")
	ctx := context.Background()
	d, err := c.Clientset().AppsV1().Deployments("cvs").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Spec.Replicas = new(int32)
	*d.Spec.Replicas = 3 // the third pod pulls the moved tag
	if _, err := c.Clientset().AppsV1().Deployments("cvs").Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = run(t, enginetest.NewContext(t, "verify", conn(c)), "kubernetes.verify",
		map[string]any{"namespace": "cvs", "deployments": []any{"web"}, "image_tag": "1.0.0"})
	if err == nil || !strings.Contains(err.Error(), "pods of deployment cvs/web run different images") || !strings.Contains(err.Error(), "container web") {
		t.Fatalf("err = %v", err)
	}
}

// Runtimes that report no imageID: the image reference is compared instead, and the log
// says so; a "docker-pullable://" prefix is read.
func TestVerifyDigestFallbacks(t *testing.T) {
	reg := kubesim.NewRegistry()
	d := reg.Push("reg.example/web:1.0.1", "build 1")
	c := kubesim.New(kubesim.WithRegistry(reg))
	defer c.Close()
	c.AddDeployment("cvs", "web", "reg.example/web:1.0.0", 2)
	c.AddDeployment("cvs", "pinned", "reg.example/web:1.0.0", 1)
	deployed(t, c, "cvs", "web", "reg.example/web:1.0.1")
	deployed(t, c, "cvs", "pinned", "reg.example/web:1.0.1@"+d)
	for _, name := range []string{"web", "pinned"} {
		if _, err := run(t, enginetest.NewContext(t, "wait", conn(c)), "kubernetes.verify", map[string]any{"namespace": "cvs", "deployments": []any{name}, "image_tag": "1.0.1"}); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	pods, err := c.Clientset().CoreV1().Pods("cvs").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pullable := false
	for i := range pods.Items {
		p := &pods.Items[i]
		id := ""
		if p.Labels["app.kubernetes.io/name"] == "web" && !pullable {
			id, pullable = "docker-pullable://reg.example/web@"+d, true
		}
		setImageID(t, c, p, id)
	}
	sc := enginetest.NewContext(t, "verify", conn(c))
	_, err = run(t, sc, "kubernetes.verify", map[string]any{"namespace": "cvs", "deployments": []any{"web"}, "image_tag": "1.0.1", "image_digest": d})
	if err == nil || !strings.Contains(err.Error(), "reports no image digest and its image reference reg.example/web:1.0.1 is not "+d) {
		t.Fatalf("a tag is no proof of a digest: err = %v", err)
	}
	out, err := run(t, sc, "kubernetes.verify", map[string]any{"namespace": "cvs", "deployments": []any{"pinned"}, "image_tag": "1.0.1", "image_digest": d})
	if err != nil {
		t.Fatal(err)
	}
	if out["digest"] != "" || !strings.Contains(sc.LogText(), "reports no imageID; comparing its image reference") {
		t.Fatalf("digest %q; log:\n%s", out["digest"], sc.LogText())
	}
	// one pod reports a docker-pullable:// imageID, the other none: without image_digest that passes
	out, err = run(t, sc, "kubernetes.verify", map[string]any{"namespace": "cvs", "deployments": []any{"web"}, "image_tag": "1.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if out["digest"] != d {
		t.Fatalf("digest %v, want %s read from the docker-pullable:// imageID", out["digest"], d)
	}
}

// setImageID writes a pod's reported imageID through the status subresource.
func setImageID(t *testing.T, c *kubesim.Cluster, p *corev1.Pod, id string) {
	t.Helper()
	for i := range p.Status.ContainerStatuses {
		p.Status.ContainerStatuses[i].ImageID = id
	}
	if _, err := c.Clientset().CoreV1().Pods(p.Namespace).UpdateStatus(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}
