package kubesim

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

func canI(t *testing.T, c *Cluster, ns, verb, group, resource, name string) authorizationv1.SubjectAccessReviewStatus {
	t.Helper()
	r, err := c.Clientset().AuthorizationV1().SelfSubjectAccessReviews().Create(context.Background(), &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: ns, Verb: verb, Group: group, Resource: resource, Name: name}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Spec.ResourceAttributes.Verb != verb {
		t.Fatalf("the review's spec was not kept: %+v", r.Spec)
	}
	return r.Status
}

func TestAccessReviewsAndForbiddenRequests(t *testing.T) {
	c := New()
	defer c.Close()
	c.AddDeployment("cvs", "web", "reg.example/web:1", 1)
	ctx := context.Background()
	if st := canI(t, c, "cvs", "patch", "apps", "deployments", ""); !st.Allowed {
		t.Fatalf("everything is allowed by default: %+v", st)
	}

	c.Deny("cvs", "patch", "apps", "deployments")
	st := canI(t, c, "cvs", "patch", "apps", "deployments", "web")
	if st.Allowed || st.Denied || !strings.Contains(st.Reason, `Deny("cvs", "patch", "apps", "deployments")`) {
		t.Fatalf("denied patch: %+v", st)
	}
	if st := canI(t, c, "cvs-v2", "patch", "apps", "deployments", ""); !st.Allowed {
		t.Fatal("a Deny in cvs applies in cvs-v2")
	}
	if st := canI(t, c, "cvs", "get", "apps", "deployments", ""); !st.Allowed {
		t.Fatal("a Deny of patch refuses get")
	}
	if c.Writes() != 0 {
		t.Fatalf("reviews counted as writes: %d", c.Writes())
	}
	// the request itself is refused as the API server refuses it
	_, err := c.Clientset().AppsV1().Deployments("cvs").Patch(ctx, "web", "application/merge-patch+json", []byte(`{}`), metav1.PatchOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `deployments.apps "web" is forbidden: User "kubesim" cannot patch resource "deployments" in API group "apps" in the namespace "cvs"`) {
		t.Fatalf("patch: %v", err)
	}

	// a Role: nothing but what Allow grants; resourceNames cover only requests naming them
	c.Deny("*", "*", "*", "*")
	c.Allow("cvs", "watch", "apps", "deployments", "web")
	c.Allow("cvs", "list", "", "pods")
	if st := canI(t, c, "cvs", "watch", "apps", "deployments", ""); st.Allowed {
		t.Fatal("a grant for web covers a watch of every deployment")
	}
	if st := canI(t, c, "cvs", "watch", "apps", "deployments", "web"); !st.Allowed {
		t.Fatal("the grant for web was not applied")
	}
	w, err := c.Clientset().AppsV1().Deployments("cvs").Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", "web").String()})
	if err != nil {
		t.Fatalf("a watch of web by field selector is a request naming web: %v", err)
	}
	w.Stop()
	if _, err := c.Clientset().AppsV1().Deployments("cvs").Watch(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("watch of all: %v", err)
	}
	if _, err := c.Clientset().CoreV1().Pods("cvs").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Clientset().CoreV1().Pods("cvs").Get(ctx, "x", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("get pod: %v", err)
	}
	if _, err := c.Clientset().Discovery().ServerVersion(); err != nil {
		t.Fatalf("the version is public: %v", err)
	}

	// a review must say what it asks about
	_, err = c.Clientset().AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) {
		t.Fatalf("empty review: %v", err)
	}
}

func TestUnreachable(t *testing.T) {
	c := New()
	defer c.Close()
	c.SetUnreachable(true)
	_, err := c.Clientset().Discovery().ServerVersion()
	var ne net.Error
	if !errors.As(err, &ne) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("version: %v", err)
	}
	if _, err := c.Clientset().AppsV1().Deployments("cvs").Watch(context.Background(), metav1.ListOptions{}); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("watch: %v", err)
	}
	c.SetUnreachable(false)
	if _, err := c.Clientset().Discovery().ServerVersion(); err != nil {
		t.Fatal(err)
	}
}
