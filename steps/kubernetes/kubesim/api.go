package kubesim

import (
	"reflect"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	k8stesting "k8s.io/client-go/testing"
)

// apiTracker gives the fake's store the API server's semantics that rollouts depend on and
// the fake lacks: a uid and generation 1 on create, generation bumped only when the spec
// changes, and writes to the main resource never touching status (the status subresource
// is handled by updateStatusReactor). Without these, `rollout status` logic would see a
// changed spec with an old, already "complete" status.
type apiTracker struct {
	k8stesting.ObjectTracker
	c *Cluster
}

func (t *apiTracker) Create(gvr schema.GroupVersionResource, obj runtime.Object, ns string, opts ...metav1.CreateOptions) error {
	m, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if m.GetUID() == "" {
		m.SetUID(uuid.NewUUID())
	}
	if m.GetName() == "" && m.GetGenerateName() != "" {
		m.SetName(m.GetGenerateName() + randSuffix())
	}
	m.SetGeneration(1)
	m.SetCreationTimestamp(metav1.NewTime(t.c.now))
	return t.ObjectTracker.Create(gvr, obj, ns, opts...)
}

func (t *apiTracker) Update(gvr schema.GroupVersionResource, obj runtime.Object, ns string, opts ...metav1.UpdateOptions) error {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if err := t.mainWrite(gvr, obj, ns); err != nil {
		return err
	}
	return t.ObjectTracker.Update(gvr, obj, ns, opts...)
}

func (t *apiTracker) Patch(gvr schema.GroupVersionResource, obj runtime.Object, ns string, opts ...metav1.PatchOptions) error {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if err := t.mainWrite(gvr, obj, ns); err != nil {
		return err
	}
	return t.ObjectTracker.Patch(gvr, obj, ns, opts...)
}

// mainWrite keeps the stored status and identity, and bumps generation on a spec change.
func (t *apiTracker) mainWrite(gvr schema.GroupVersionResource, obj runtime.Object, ns string) error {
	m, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	old, err := t.ObjectTracker.Get(gvr, ns, m.GetName())
	if err != nil {
		return err
	}
	om, _ := meta.Accessor(old)
	m.SetUID(om.GetUID())
	m.SetCreationTimestamp(om.GetCreationTimestamp())
	newU, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return err
	}
	oldU, err := runtime.DefaultUnstructuredConverter.ToUnstructured(old)
	if err != nil {
		return err
	}
	gen := om.GetGeneration()
	if !reflect.DeepEqual(newU["spec"], oldU["spec"]) {
		gen++
	}
	if st, ok := oldU["status"]; ok {
		newU["status"] = st
	} else {
		delete(newU, "status")
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(newU, obj); err != nil {
		return err
	}
	m.SetGeneration(gen)
	return nil
}

// updateStatusReactor implements PUT .../status: only the status of the request is kept.
func (c *Cluster) updateStatusReactor(a k8stesting.Action) (bool, runtime.Object, error) {
	u, ok := a.(k8stesting.UpdateActionImpl)
	if !ok || u.GetSubresource() != "status" {
		return false, nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	m, err := meta.Accessor(u.GetObject())
	if err != nil {
		return true, nil, err
	}
	old, err := c.tracker.Get(a.GetResource(), a.GetNamespace(), m.GetName())
	if err != nil {
		return true, nil, err
	}
	newU, err := runtime.DefaultUnstructuredConverter.ToUnstructured(u.GetObject())
	if err != nil {
		return true, nil, err
	}
	oldU, err := runtime.DefaultUnstructuredConverter.ToUnstructured(old)
	if err != nil {
		return true, nil, err
	}
	oldU["status"] = newU["status"]
	out := old.DeepCopyObject()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(oldU, out); err != nil {
		return true, nil, err
	}
	if err := c.tracker.Update(a.GetResource(), out, a.GetNamespace()); err != nil {
		return true, nil, err
	}
	return true, out, nil
}

// store writes an object as a controller would: directly, without generation changes.
func (c *Cluster) store(gvr schema.GroupVersionResource, obj runtime.Object) error {
	m, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	err = c.tracker.Update(gvr, obj, m.GetNamespace())
	if apierrors.IsNotFound(err) {
		return c.tracker.Create(gvr, obj, m.GetNamespace())
	}
	return err
}

// create adds a new object with identity fields set, as the API server would.
func (c *Cluster) create(gvr schema.GroupVersionResource, obj runtime.Object) error {
	m, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	if m.GetUID() == "" {
		m.SetUID(types.UID(uuid.NewUUID()))
	}
	if m.GetGeneration() == 0 {
		m.SetGeneration(1)
	}
	m.SetCreationTimestamp(metav1.NewTime(c.now))
	return c.tracker.Create(gvr, obj, m.GetNamespace())
}
