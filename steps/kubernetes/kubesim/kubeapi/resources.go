package kubeapi

import (
	"context"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// typed is the method set every generated client-go typed client shares (DeploymentInterface,
// JobInterface, PodInterface, ...). One generic adapter over it serves every resource, so the
// facade forwards to the clientset's own semantics (for kubesim: the fake's patch helpers,
// generation bumps, reactors, faults) instead of re-implementing them.
type typed[T runtime.Object, L runtime.Object] interface {
	Create(ctx context.Context, obj T, opts metav1.CreateOptions) (T, error)
	Update(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error)
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
	List(ctx context.Context, opts metav1.ListOptions) (L, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (T, error)
}

// statusUpdater is the PUT .../status method of the clients that have a status subresource.
type statusUpdater[T runtime.Object] interface {
	UpdateStatus(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error)
}

// collectionDeleter is DELETE on a collection, which every client but Namespaces has.
type collectionDeleter interface {
	DeleteCollection(ctx context.Context, opts metav1.DeleteOptions, listOpts metav1.ListOptions) error
}

// ops is the untyped view of one resource in one namespace that the handlers use.
type ops interface {
	get(ctx context.Context, name string, o metav1.GetOptions) (runtime.Object, error)
	list(ctx context.Context, o metav1.ListOptions) (runtime.Object, error)
	watch(ctx context.Context, o metav1.ListOptions) (watch.Interface, error)
	create(ctx context.Context, obj runtime.Object, o metav1.CreateOptions) (runtime.Object, error)
	update(ctx context.Context, obj runtime.Object, o metav1.UpdateOptions, status bool) (runtime.Object, error)
	patch(ctx context.Context, name string, pt types.PatchType, data []byte, o metav1.PatchOptions, sub ...string) (runtime.Object, error)
	delete(ctx context.Context, name string, o metav1.DeleteOptions) error
	deleteCollection(ctx context.Context, o metav1.DeleteOptions, lo metav1.ListOptions) error
}

type adapter[T runtime.Object, L runtime.Object] struct {
	c    typed[T, L]
	kind string
}

func adapt[T runtime.Object, L runtime.Object](c typed[T, L], kind string) ops {
	return adapter[T, L]{c: c, kind: kind}
}

func (a adapter[T, L]) cast(obj runtime.Object) (T, error) {
	t, ok := obj.(T)
	if !ok {
		var zero T
		return zero, fmt.Errorf("body is a %T, not a %s", obj, a.kind)
	}
	return t, nil
}

// orNil keeps a typed nil pointer from becoming a non-nil runtime.Object.
func orNil[T runtime.Object](v T, err error) (runtime.Object, error) {
	if err != nil {
		return nil, err
	}
	return v, nil
}

func (a adapter[T, L]) get(ctx context.Context, name string, o metav1.GetOptions) (runtime.Object, error) {
	return orNil(a.c.Get(ctx, name, o))
}

func (a adapter[T, L]) list(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
	return orNil(a.c.List(ctx, o))
}

func (a adapter[T, L]) watch(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	return a.c.Watch(ctx, o)
}

func (a adapter[T, L]) create(ctx context.Context, obj runtime.Object, o metav1.CreateOptions) (runtime.Object, error) {
	t, err := a.cast(obj)
	if err != nil {
		return nil, badRequest(err)
	}
	return orNil(a.c.Create(ctx, t, o))
}

func (a adapter[T, L]) update(ctx context.Context, obj runtime.Object, o metav1.UpdateOptions, status bool) (runtime.Object, error) {
	t, err := a.cast(obj)
	if err != nil {
		return nil, badRequest(err)
	}
	if status {
		su, ok := a.c.(statusUpdater[T])
		if !ok {
			return nil, notFoundSub(a.kind, "status")
		}
		return orNil(su.UpdateStatus(ctx, t, o))
	}
	return orNil(a.c.Update(ctx, t, o))
}

func (a adapter[T, L]) patch(ctx context.Context, name string, pt types.PatchType, data []byte, o metav1.PatchOptions, sub ...string) (runtime.Object, error) {
	return orNil(a.c.Patch(ctx, name, pt, data, o, sub...))
}

func (a adapter[T, L]) delete(ctx context.Context, name string, o metav1.DeleteOptions) error {
	return a.c.Delete(ctx, name, o)
}

func (a adapter[T, L]) deleteCollection(ctx context.Context, o metav1.DeleteOptions, lo metav1.ListOptions) error {
	dc, ok := a.c.(collectionDeleter)
	if !ok {
		return apierrors.NewMethodNotSupported(schema.GroupResource{Resource: strings.ToLower(a.kind) + "s"}, "deletecollection")
	}
	return dc.DeleteCollection(ctx, o, lo)
}

// resource is one served REST resource and what discovery says about it.
type resource struct {
	gvr        schema.GroupVersionResource
	kind       string
	singular   string
	namespaced bool
	shortNames []string
	status     bool // has a status subresource
	review     bool // an access review: create only, answered and not stored (client is nil)
	newObj     func() runtime.Object
	client     func(cs kubernetes.Interface, ns string) ops
}

func (r *resource) gvk() schema.GroupVersionKind { return r.gvr.GroupVersion().WithKind(r.kind) }

var allVerbs = metav1.Verbs{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}

// resources are the served resources, in discovery order.
var resources = []*resource{
	{gvr: corev1.SchemeGroupVersion.WithResource("namespaces"), kind: "Namespace", singular: "namespace", shortNames: []string{"ns"}, status: true,
		newObj: func() runtime.Object { return &corev1.Namespace{} },
		client: func(cs kubernetes.Interface, _ string) ops { return adapt(cs.CoreV1().Namespaces(), "Namespace") }},
	{gvr: corev1.SchemeGroupVersion.WithResource("pods"), kind: "Pod", singular: "pod", namespaced: true, shortNames: []string{"po"}, status: true,
		newObj: func() runtime.Object { return &corev1.Pod{} },
		client: func(cs kubernetes.Interface, ns string) ops { return adapt(cs.CoreV1().Pods(ns), "Pod") }},
	// ConfigMaps and Leases hold runbook's own state and release lock (kubestate).
	{gvr: corev1.SchemeGroupVersion.WithResource("configmaps"), kind: "ConfigMap", singular: "configmap", namespaced: true, shortNames: []string{"cm"},
		newObj: func() runtime.Object { return &corev1.ConfigMap{} },
		client: func(cs kubernetes.Interface, ns string) ops { return adapt(cs.CoreV1().ConfigMaps(ns), "ConfigMap") }},
	{gvr: coordinationv1.SchemeGroupVersion.WithResource("leases"), kind: "Lease", singular: "lease", namespaced: true,
		newObj: func() runtime.Object { return &coordinationv1.Lease{} },
		client: func(cs kubernetes.Interface, ns string) ops { return adapt(cs.CoordinationV1().Leases(ns), "Lease") }},
	{gvr: appsv1.SchemeGroupVersion.WithResource("controllerrevisions"), kind: "ControllerRevision", singular: "controllerrevision", namespaced: true,
		newObj: func() runtime.Object { return &appsv1.ControllerRevision{} },
		client: func(cs kubernetes.Interface, ns string) ops {
			return adapt(cs.AppsV1().ControllerRevisions(ns), "ControllerRevision")
		}},
	{gvr: appsv1.SchemeGroupVersion.WithResource("deployments"), kind: "Deployment", singular: "deployment", namespaced: true, shortNames: []string{"deploy"}, status: true,
		newObj: func() runtime.Object { return &appsv1.Deployment{} },
		client: func(cs kubernetes.Interface, ns string) ops { return adapt(cs.AppsV1().Deployments(ns), "Deployment") }},
	{gvr: appsv1.SchemeGroupVersion.WithResource("replicasets"), kind: "ReplicaSet", singular: "replicaset", namespaced: true, shortNames: []string{"rs"}, status: true,
		newObj: func() runtime.Object { return &appsv1.ReplicaSet{} },
		client: func(cs kubernetes.Interface, ns string) ops { return adapt(cs.AppsV1().ReplicaSets(ns), "ReplicaSet") }},
	{gvr: appsv1.SchemeGroupVersion.WithResource("statefulsets"), kind: "StatefulSet", singular: "statefulset", namespaced: true, shortNames: []string{"sts"}, status: true,
		newObj: func() runtime.Object { return &appsv1.StatefulSet{} },
		client: func(cs kubernetes.Interface, ns string) ops {
			return adapt(cs.AppsV1().StatefulSets(ns), "StatefulSet")
		}},
	{gvr: batchv1.SchemeGroupVersion.WithResource("cronjobs"), kind: "CronJob", singular: "cronjob", namespaced: true, shortNames: []string{"cj"}, status: true,
		newObj: func() runtime.Object { return &batchv1.CronJob{} },
		client: func(cs kubernetes.Interface, ns string) ops { return adapt(cs.BatchV1().CronJobs(ns), "CronJob") }},
	{gvr: batchv1.SchemeGroupVersion.WithResource("jobs"), kind: "Job", singular: "job", namespaced: true, status: true,
		newObj: func() runtime.Object { return &batchv1.Job{} },
		client: func(cs kubernetes.Interface, ns string) ops { return adapt(cs.BatchV1().Jobs(ns), "Job") }},
	// the question a preflight asks: may this connection do that verb?
	{gvr: authorizationv1.SchemeGroupVersion.WithResource("selfsubjectaccessreviews"), kind: "SelfSubjectAccessReview", singular: "selfsubjectaccessreview", review: true,
		newObj: func() runtime.Object { return &authorizationv1.SelfSubjectAccessReview{} }},
}

func lookup(gv schema.GroupVersion, name string) *resource {
	for _, r := range resources {
		if r.gvr.GroupVersion() == gv && r.gvr.Resource == name {
			return r
		}
	}
	return nil
}

// groupVersions are the served API group versions ("" is the core group).
var groupVersions = []schema.GroupVersion{corev1.SchemeGroupVersion, appsv1.SchemeGroupVersion, batchv1.SchemeGroupVersion, coordinationv1.SchemeGroupVersion,
	authorizationv1.SchemeGroupVersion}

func servesGroupVersion(gv schema.GroupVersion) bool {
	for _, g := range groupVersions {
		if g == gv {
			return true
		}
	}
	return false
}

// resourceList is the discovery document of one group version.
func resourceList(gv schema.GroupVersion) *metav1.APIResourceList {
	l := &metav1.APIResourceList{GroupVersion: gv.String()}
	for _, r := range resources {
		if r.gvr.GroupVersion() != gv {
			continue
		}
		var categories []string
		if r.namespaced && r.kind != "ControllerRevision" {
			categories = []string{"all"}
		}
		verbs := allVerbs
		switch {
		case r.kind == "Namespace": // NamespaceInterface has no DeleteCollection
			verbs = metav1.Verbs{"create", "delete", "get", "list", "patch", "update", "watch"}
		case r.review:
			verbs = metav1.Verbs{"create"}
		}
		l.APIResources = append(l.APIResources, metav1.APIResource{
			Name: r.gvr.Resource, SingularName: r.singular, Namespaced: r.namespaced, Kind: r.kind,
			Verbs: verbs, ShortNames: r.shortNames, Categories: categories,
		})
		if r.status {
			l.APIResources = append(l.APIResources, metav1.APIResource{
				Name: r.gvr.Resource + "/status", Namespaced: r.namespaced, Kind: r.kind, Verbs: metav1.Verbs{"get", "patch", "update"},
			})
		}
	}
	return l
}

func apiGroup(name string) *metav1.APIGroup {
	for _, gv := range groupVersions {
		if gv.Group == name && name != "" {
			v := metav1.GroupVersionForDiscovery{GroupVersion: gv.String(), Version: gv.Version}
			return &metav1.APIGroup{Name: name, Versions: []metav1.GroupVersionForDiscovery{v}, PreferredVersion: v}
		}
	}
	return nil
}
