// Package kubestatefake gives client-go's kubernetes/fake clientset what the kubestate
// lock and store rely on and the fake lacks: resourceVersions on ConfigMaps and Leases,
// optimistic concurrency (an update or patch naming an old resourceVersion is a 409
// Conflict, as from a real API server), and fault injection, including answers lost after
// the write was made. Tests and rehearsals use it the way they use kubesim.
//
//	New(objs ...runtime.Object) *Cluster               // a fake clientset with Install applied
//	Install(cs *fake.Clientset) *Cluster               // e.g. on a kubesim cluster's Fake()
//	(*Cluster).Clientset() kubernetes.Interface
//	(*Cluster).FailNext(verb, resource string, n int, err error)  // the request fails, nothing written
//	(*Cluster).LoseAnswerNext(verb, resource string, n int)       // the write is made, the answer is a 503
//	(*Cluster).Writes(resource string) int             // create, update and patch requests seen
//	(*Cluster).Requests(verb, resource string) int
//
// Resources: configmaps and leases; everything else is left to the clientset.
package kubestatefake

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// Cluster is a fake clientset with concurrency control for ConfigMaps and Leases.
type Cluster struct {
	cs *fake.Clientset

	mu       sync.Mutex
	rv       int64
	faults   []*fault
	requests map[string]int // verb/resource
}

type fault struct {
	verb, resource string
	n              int
	err            error
	apply          bool // make the write, then answer err
}

// New returns a fake clientset holding objs, with Install applied.
func New(objs ...runtime.Object) *Cluster { return Install(fake.NewClientset(objs...)) }

// Install adds the reactors to cs, ahead of its object tracker (and behind any reactor
// already prepended, such as kubesim's fault injection).
func Install(cs *fake.Clientset) *Cluster {
	c := &Cluster{cs: cs, rv: 1000, requests: map[string]int{}}
	for _, res := range []string{"configmaps", "leases"} {
		r := &k8stesting.SimpleReactor{Verb: "*", Resource: res, Reaction: c.react}
		chain := cs.ReactionChain
		if n := len(chain); n > 0 {
			cs.ReactionChain = append(append(chain[:n-1:n-1], r), chain[n-1])
		} else {
			cs.ReactionChain = []k8stesting.Reactor{r}
		}
	}
	return c
}

// Clientset returns the clientset, for injection.
func (c *Cluster) Clientset() kubernetes.Interface { return c.cs }

// Fake returns the fake clientset (Actions, reactors).
func (c *Cluster) Fake() *fake.Clientset { return c.cs }

// FailNext makes the next n requests of verb (get, list, create, update, patch, delete)
// on resource fail with err, writing nothing.
func (c *Cluster) FailNext(verb, resource string, n int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults = append(c.faults, &fault{verb: verb, resource: resource, n: n, err: err})
}

// LoseAnswerNext makes the next n writes of verb on resource take effect and then answer
// 503 Service Unavailable, as when a connection drops after the server acted.
func (c *Cluster) LoseAnswerNext(verb, resource string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults = append(c.faults, &fault{verb: verb, resource: resource, n: n, apply: true,
		err: apierrors.NewServiceUnavailable("the answer was lost")})
}

// Requests counts the requests of verb on resource.
func (c *Cluster) Requests(verb, resource string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests[verb+"/"+resource]
}

// Writes counts create, update and patch requests on resource.
func (c *Cluster) Writes(resource string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests["create/"+resource] + c.requests["update/"+resource] + c.requests["patch/"+resource]
}

func (c *Cluster) takeFault(verb, resource string) *fault {
	for _, f := range c.faults {
		if f.n > 0 && f.verb == verb && f.resource == resource {
			f.n--
			return f
		}
	}
	return nil
}

func (c *Cluster) react(a k8stesting.Action) (bool, runtime.Object, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	gvr := a.GetResource()
	verb := a.GetVerb()
	c.requests[verb+"/"+gvr.Resource]++
	f := c.takeFault(verb, gvr.Resource)
	if f != nil && !f.apply {
		return true, nil, f.err
	}
	var obj runtime.Object
	var err error
	switch {
	case verb == "create" && a.GetSubresource() == "":
		obj, err = c.create(gvr, a.(k8stesting.CreateAction).GetObject(), a.GetNamespace())
	case verb == "update" && a.GetSubresource() == "":
		obj, err = c.update(gvr, a.(k8stesting.UpdateAction).GetObject(), a.GetNamespace())
	case verb == "patch" && a.GetSubresource() == "":
		obj, err = c.patch(gvr, a.(k8stesting.PatchAction))
	default:
		if f != nil {
			return true, nil, f.err
		}
		return false, nil, nil // reads and deletes: the tracker
	}
	if err == nil && f != nil {
		return true, nil, f.err
	}
	return true, obj, err
}

func (c *Cluster) nextRV() string {
	c.rv++
	return strconv.FormatInt(c.rv, 10)
}

func (c *Cluster) create(gvr schema.GroupVersionResource, obj runtime.Object, ns string) (runtime.Object, error) {
	obj = obj.DeepCopyObject()
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	if m.GetName() == "" {
		return nil, apierrors.NewInvalid(kindOf(gvr), "", nil)
	}
	if m.GetResourceVersion() != "" {
		return nil, apierrors.NewBadRequest("resourceVersion should not be set on objects to be created")
	}
	m.SetResourceVersion(c.nextRV())
	if err := c.cs.Tracker().Create(gvr, obj, ns); err != nil {
		return nil, err
	}
	return obj.DeepCopyObject(), nil
}

func (c *Cluster) update(gvr schema.GroupVersionResource, obj runtime.Object, ns string) (runtime.Object, error) {
	obj = obj.DeepCopyObject()
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	cur, err := c.cs.Tracker().Get(gvr, ns, m.GetName())
	if err != nil {
		return nil, err
	}
	cm, _ := meta.Accessor(cur)
	// As the API server: an update without a resourceVersion is unconditional.
	if rv := m.GetResourceVersion(); rv != "" && rv != cm.GetResourceVersion() {
		return nil, conflict(gvr, m.GetName())
	}
	m.SetResourceVersion(c.nextRV())
	if err := c.cs.Tracker().Update(gvr, obj, ns); err != nil {
		return nil, err
	}
	return obj.DeepCopyObject(), nil
}

func conflict(gvr schema.GroupVersionResource, name string) error {
	return apierrors.NewConflict(gvr.GroupResource(), name, fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again"))
}

func kindOf(gvr schema.GroupVersionResource) schema.GroupKind {
	if gvr.Resource == "leases" {
		return schema.GroupKind{Group: "coordination.k8s.io", Kind: "Lease"}
	}
	return schema.GroupKind{Kind: "ConfigMap"}
}

func (c *Cluster) patch(gvr schema.GroupVersionResource, a k8stesting.PatchAction) (runtime.Object, error) {
	ns, name := a.GetNamespace(), a.GetName()
	cur, err := c.cs.Tracker().Get(gvr, ns, name)
	if err != nil {
		return nil, err
	}
	if cm, ok := cur.(*corev1.ConfigMap); ok && a.GetPatchType() == types.MergePatchType {
		if out, ok, err := c.mergeConfigMap(gvr, cm, a.GetPatch()); ok {
			return out, err
		}
	}
	curJSON, err := json.Marshal(cur)
	if err != nil {
		return nil, err
	}
	var fresh runtime.Object
	switch gvr.Resource {
	case "leases":
		fresh = &coordinationv1.Lease{}
	default:
		fresh = &corev1.ConfigMap{}
	}
	var out []byte
	switch a.GetPatchType() {
	case types.MergePatchType:
		out, err = jsonpatch.MergePatch(curJSON, a.GetPatch())
	case types.StrategicMergePatchType:
		out, err = strategicpatch.StrategicMergePatch(curJSON, a.GetPatch(), fresh)
	case types.JSONPatchType:
		var p jsonpatch.Patch
		if p, err = jsonpatch.DecodePatch(a.GetPatch()); err == nil {
			out, err = p.Apply(curJSON)
		}
	default:
		return nil, apierrors.NewBadRequest("unsupported patch type " + string(a.GetPatchType()))
	}
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	if err := json.Unmarshal(out, fresh); err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	m, _ := meta.Accessor(fresh)
	cm, _ := meta.Accessor(cur)
	// A resourceVersion in the patch is a precondition, as on the API server.
	if rv := m.GetResourceVersion(); rv != cm.GetResourceVersion() {
		return nil, conflict(gvr, name)
	}
	if m.GetName() != name {
		return nil, apierrors.NewBadRequest("the patch changes the name")
	}
	m.SetResourceVersion(c.nextRV())
	if err := c.cs.Tracker().Update(gvr, fresh, ns); err != nil {
		return nil, err
	}
	return fresh.DeepCopyObject(), nil
}

// mergeConfigMap applies a merge patch of the usual shape (data, binaryData, labels,
// annotations, a resourceVersion precondition) to a ConfigMap without encoding the whole
// object, which for a journal chunk of half a MiB is the bulk of a test's time. Other
// patches are left to the general path (ok false).
func (c *Cluster) mergeConfigMap(gvr schema.GroupVersionResource, cm *corev1.ConfigMap, patch []byte) (runtime.Object, bool, error) {
	var p struct {
		Metadata *struct {
			ResourceVersion *string            `json:"resourceVersion"`
			Labels          map[string]*string `json:"labels"`
			Annotations     map[string]*string `json:"annotations"`
		} `json:"metadata"`
		Data       map[string]*string `json:"data"`
		BinaryData map[string]*[]byte `json:"binaryData"`
	}
	var keys map[string]json.RawMessage
	if json.Unmarshal(patch, &keys) != nil || json.Unmarshal(patch, &p) != nil {
		return nil, false, nil
	}
	for k := range keys {
		if k != "metadata" && k != "data" && k != "binaryData" {
			return nil, false, nil
		}
	}
	if p.Metadata != nil {
		var mk map[string]json.RawMessage
		_ = json.Unmarshal(keys["metadata"], &mk)
		for k := range mk {
			if k != "resourceVersion" && k != "labels" && k != "annotations" {
				return nil, false, nil
			}
		}
		if rv := p.Metadata.ResourceVersion; rv != nil && *rv != cm.ResourceVersion {
			return nil, true, conflict(gvr, cm.Name)
		}
		cm.Labels = mergeStrings(cm.Labels, p.Metadata.Labels)
		cm.Annotations = mergeStrings(cm.Annotations, p.Metadata.Annotations)
	}
	cm.Data = mergeStrings(cm.Data, p.Data)
	for k, v := range p.BinaryData {
		if cm.BinaryData == nil {
			cm.BinaryData = map[string][]byte{}
		}
		if v == nil {
			delete(cm.BinaryData, k)
		} else {
			cm.BinaryData[k] = *v
		}
	}
	cm.ResourceVersion = c.nextRV()
	if err := c.cs.Tracker().Update(gvr, cm, cm.Namespace); err != nil {
		return nil, true, err
	}
	return cm.DeepCopy(), true, nil
}

func mergeStrings(m map[string]string, p map[string]*string) map[string]string {
	for k, v := range p {
		if m == nil {
			m = map[string]string{}
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = *v
		}
	}
	return m
}
