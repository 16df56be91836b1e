package kubernetes

import (
	"bytes"
	"context"
	"encoding/json"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	appsv1client "k8s.io/client-go/kubernetes/typed/apps/v1"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

var appsCodec = scheme.Codecs.LegacyCodec(appsv1.SchemeGroupVersion)

// statefulSetMatches is kubectl's test for "the StatefulSet already runs this
// ControllerRevision": the revision's data equals the patch made from the current template.
func statefulSetMatches(s *appsv1.StatefulSet, data []byte) bool {
	str, err := runtime.Encode(appsCodec, s)
	if err != nil {
		return false
	}
	var raw map[string]any
	if err := json.Unmarshal(str, &raw); err != nil {
		return false
	}
	spec, _ := raw["spec"].(map[string]any)
	template, _ := spec["template"].(map[string]any)
	if template == nil {
		return false
	}
	template["$patch"] = "replace"
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"template": template}})
	return err == nil && bytes.Equal(patch, data)
}

// errCapture hands kubectl's rollbacker a clientset that remembers the last API error of a
// workload request, because kubectl flattens it into a string ("failed restoring revision
// 3: ...") and runbook must still tell a retryable 503 from a 403.
type errCapture struct {
	kubernetes.Interface
	last error
}

func (c *errCapture) AppsV1() appsv1client.AppsV1Interface {
	return &appsCapture{AppsV1Interface: c.Interface.AppsV1(), c: c}
}

type appsCapture struct {
	appsv1client.AppsV1Interface
	c *errCapture
}

func (a *appsCapture) Deployments(ns string) appsv1client.DeploymentInterface {
	return &deployCapture{DeploymentInterface: a.AppsV1Interface.Deployments(ns), c: a.c}
}

func (a *appsCapture) StatefulSets(ns string) appsv1client.StatefulSetInterface {
	return &stsCapture{StatefulSetInterface: a.AppsV1Interface.StatefulSets(ns), c: a.c}
}

type deployCapture struct {
	appsv1client.DeploymentInterface
	c *errCapture
}

func (d *deployCapture) Get(ctx context.Context, name string, o metav1.GetOptions) (*appsv1.Deployment, error) {
	v, err := d.DeploymentInterface.Get(ctx, name, o)
	d.c.remember(err)
	return v, err
}

func (d *deployCapture) Patch(ctx context.Context, name string, pt types.PatchType, data []byte, o metav1.PatchOptions, sub ...string) (*appsv1.Deployment, error) {
	v, err := d.DeploymentInterface.Patch(ctx, name, pt, data, o, sub...)
	d.c.remember(err)
	return v, err
}

type stsCapture struct {
	appsv1client.StatefulSetInterface
	c *errCapture
}

func (s *stsCapture) Get(ctx context.Context, name string, o metav1.GetOptions) (*appsv1.StatefulSet, error) {
	v, err := s.StatefulSetInterface.Get(ctx, name, o)
	s.c.remember(err)
	return v, err
}

func (s *stsCapture) Patch(ctx context.Context, name string, pt types.PatchType, data []byte, o metav1.PatchOptions, sub ...string) (*appsv1.StatefulSet, error) {
	v, err := s.StatefulSetInterface.Patch(ctx, name, pt, data, o, sub...)
	s.c.remember(err)
	return v, err
}

func (c *errCapture) remember(err error) {
	if err != nil {
		c.last = err
	}
}
