package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/cessda/runbook/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubectl/pkg/polymorphichelpers"
)

// Kinds the steps handle.
const (
	KindDeployment  = "Deployment"
	KindStatefulSet = "StatefulSet"
)

// errTimeout is returned when a wait ends by its timeout; the message carries the last
// status seen, as `kubectl rollout status --timeout` would show it.
type errTimeout struct {
	what string
	d    time.Duration
	last string
}

func (e *errTimeout) Error() string {
	return fmt.Sprintf("kubernetes: %s did not finish within %s; last status: %s", e.what, e.d, strings.TrimSpace(e.last))
}

// watchUntil reads an object, then follows it with a watch until cond reports done or an
// error, within timeout (the configured wait, named as such in the error: the time left
// on the context would say "within 149ms" under load). It is the `kubectl rollout status` loop: a Get for the current state, then a watch
// from that resourceVersion, restarted when the server closes it. No polling; transient
// failures are retried a few times with backoff on the run's clock.
func watchUntil(ctx context.Context, sc *engine.StepContext, what string, timeout time.Duration,
	get func(context.Context) (runtime.Object, error),
	watchFrom func(ctx context.Context, rv string) (watch.Interface, error),
	name string, cond func(runtime.Object) (bool, string, error)) (runtime.Object, error) {
	failures := 0
	lastMsg := ""
	retry := func(err error) error {
		if ok, _ := engine.IsTransient(err); !ok || failures >= 5 || ctx.Err() != nil {
			return err
		}
		failures++
		sc.Logf("%s: %v; retrying", what, err)
		return sc.Sleep(ctx, time.Duration(1<<failures)*500*time.Millisecond)
	}
	check := func(obj runtime.Object) (bool, error) {
		done, msg, err := cond(obj)
		if err != nil {
			return false, err
		}
		if msg = strings.TrimSpace(msg); msg != "" && msg != lastMsg {
			sc.Logf("%s", msg)
			lastMsg = msg
		}
		return done, nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	timedOut := func() error { return &errTimeout{what: what, d: timeout, last: lastMsg} }
	for {
		if ctx.Err() != nil {
			return nil, ctxErr(ctx, timedOut)
		}
		obj, err := get(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctxErr(ctx, timedOut)
			}
			if rerr := retry(err); rerr != nil {
				return nil, rerr
			}
			continue
		}
		done, err := check(obj)
		if err != nil || done {
			return obj, err
		}
		m, _ := meta.Accessor(obj)
		w, err := watchFrom(ctx, m.GetResourceVersion())
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctxErr(ctx, timedOut)
			}
			if rerr := retry(err); rerr != nil {
				return nil, rerr
			}
			continue
		}
		obj, done, err = follow(ctx, w, name, check)
		w.Stop()
		if err != nil || done {
			return obj, err
		}
		failures = 0
	}
}

func ctxErr(ctx context.Context, timedOut func() error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return timedOut()
	}
	return ctx.Err()
}

// follow reads events until done, an error, or the end of the watch (then the caller
// re-reads and watches again).
func follow(ctx context.Context, w watch.Interface, name string, check func(runtime.Object) (bool, error)) (runtime.Object, bool, error) {
	for {
		select {
		case <-ctx.Done():
			return nil, false, nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil, false, nil
			}
			switch ev.Type {
			case watch.Error:
				return nil, false, nil // e.g. 410 Gone: re-read and watch from the new version
			case watch.Deleted:
				if m, err := meta.Accessor(ev.Object); err == nil && m.GetName() == name {
					return nil, false, fmt.Errorf("kubernetes: %s was deleted while waiting", name)
				}
			case watch.Added, watch.Modified:
				m, err := meta.Accessor(ev.Object)
				if err != nil || m.GetName() != name {
					continue // the fake clientset ignores field selectors
				}
				done, err := check(ev.Object)
				if err != nil || done {
					return ev.Object, done, err
				}
			}
		}
	}
}

// rolloutStatus evaluates `kubectl rollout status` for the object, with kubectl's own
// status viewer (k8s.io/kubectl polymorphichelpers), so the rules are exactly kubectl's.
func rolloutStatus(kind string, obj runtime.Object) (string, bool, error) {
	gk := appsv1.SchemeGroupVersion.WithKind(kind).GroupKind()
	viewer, err := polymorphichelpers.StatusViewerFor(gk)
	if err != nil {
		return "", false, err
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return "", false, err
	}
	msg, done, err := viewer.Status(&unstructured.Unstructured{Object: u}, 0)
	if err != nil {
		return "", false, fmt.Errorf("kubernetes: %s", err)
	}
	return msg, done, nil
}

// waitRollout waits, with a watch, until the workload's rollout is complete by kubectl's
// rules. A ProgressDeadlineExceeded condition is a (non-retryable) failure.
func waitRollout(ctx context.Context, sc *engine.StepContext, cs kubernetes.Interface, where, kind, ns, name string, timeout time.Duration) (runtime.Object, error) {
	return waitWorkload(ctx, sc, cs, where, kind, ns, name, timeout, func(obj runtime.Object) (bool, string, error) {
		msg, done, err := rolloutStatus(kind, obj)
		return done, msg, err
	})
}

// waitObserved waits until the controller has seen the workload's latest spec, so that its
// revision history includes it (a rollback right after a deploy must not miss the newest
// ReplicaSet).
func waitObserved(ctx context.Context, sc *engine.StepContext, cs kubernetes.Interface, where, kind, ns, name string, timeout time.Duration) error {
	_, err := waitWorkload(ctx, sc, cs, where, kind, ns, name, timeout, func(obj runtime.Object) (bool, string, error) {
		m, _ := meta.Accessor(obj)
		var observed int64
		switch o := obj.(type) {
		case *appsv1.Deployment:
			observed = o.Status.ObservedGeneration
		case *appsv1.StatefulSet:
			observed = o.Status.ObservedGeneration
		}
		if m.GetGeneration() <= observed {
			return true, "", nil
		}
		return false, "Waiting for " + strings.ToLower(kind) + " spec update to be observed...", nil
	})
	return err
}

func waitWorkload(ctx context.Context, sc *engine.StepContext, cs kubernetes.Interface, where, kind, ns, name string, timeout time.Duration,
	cond func(runtime.Object) (bool, string, error)) (runtime.Object, error) {
	what := fmt.Sprintf("rollout of %s %s/%s", strings.ToLower(kind), ns, name)
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	var get func(context.Context) (runtime.Object, error)
	var watchFrom func(context.Context, string) (watch.Interface, error)
	switch kind {
	case KindDeployment:
		get = func(ctx context.Context) (runtime.Object, error) {
			d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
			return d, apiError(err, "get deployment "+ns+"/"+name, where)
		}
		watchFrom = func(ctx context.Context, rv string) (watch.Interface, error) {
			w, err := cs.AppsV1().Deployments(ns).Watch(ctx, metav1.ListOptions{FieldSelector: sel, ResourceVersion: rv})
			return w, apiError(err, "watch deployment "+ns+"/"+name, where)
		}
	case KindStatefulSet:
		get = func(ctx context.Context) (runtime.Object, error) {
			s, err := cs.AppsV1().StatefulSets(ns).Get(ctx, name, metav1.GetOptions{})
			return s, apiError(err, "get statefulset "+ns+"/"+name, where)
		}
		watchFrom = func(ctx context.Context, rv string) (watch.Interface, error) {
			w, err := cs.AppsV1().StatefulSets(ns).Watch(ctx, metav1.ListOptions{FieldSelector: sel, ResourceVersion: rv})
			return w, apiError(err, "watch statefulset "+ns+"/"+name, where)
		}
	default:
		return nil, fmt.Errorf("kubernetes: unsupported kind %q", kind)
	}
	return watchUntil(ctx, sc, what, timeout, get, watchFrom, name, cond)
}

// imageTag is the tag of an image reference ("latest" when none; a digest is ignored).
func imageTag(image string) string {
	ref, _, _ := strings.Cut(image, "@")
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[i+1:]
	}
	return "latest"
}

// imageRepo is the image reference without tag or digest.
func imageRepo(image string) string {
	ref, _, _ := strings.Cut(image, "@")
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i]
	}
	return ref
}

// imageMatches reports whether an image's repository is name (in full, or its last path
// element: "cvs-frontend" matches "europe-docker.pkg.dev/p/r/cvs-frontend").
func imageMatches(image, name string) bool {
	repo := imageRepo(image)
	return repo == name || path.Base(repo) == name || strings.HasSuffix(repo, "/"+name)
}

// workloadInfo is one element of the `workloads` output.
func workloadInfo(cs kubernetes.Interface, ctx context.Context, obj runtime.Object) map[string]any {
	info := map[string]any{}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		info["kind"], info["name"], info["namespace"] = KindDeployment, o.Name, o.Namespace
		info["images"] = images(o.Spec.Template.Spec.Containers)
		rev, _ := strconv.Atoi(o.Annotations["deployment.kubernetes.io/revision"])
		info["revision"] = rev
		info["ready_replicas"] = int(o.Status.ReadyReplicas)
		info["replicas"] = int(replicasOf(o.Spec.Replicas))
	case *appsv1.StatefulSet:
		info["kind"], info["name"], info["namespace"] = KindStatefulSet, o.Name, o.Namespace
		info["images"] = images(o.Spec.Template.Spec.Containers)
		info["revision"] = statefulSetRevision(ctx, cs, o)
		info["ready_replicas"] = int(o.Status.ReadyReplicas)
		info["replicas"] = int(replicasOf(o.Spec.Replicas))
	}
	return info
}

func replicasOf(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

func images(cs []corev1.Container) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.Image)
	}
	return out
}

// statefulSetRevision is the number of the ControllerRevision the StatefulSet runs (the one
// `kubectl rollout undo --to-revision` takes), or 0 when it cannot be read.
func statefulSetRevision(ctx context.Context, cs kubernetes.Interface, s *appsv1.StatefulSet) int {
	name := s.Status.UpdateRevision
	if name == "" {
		return 0
	}
	cr, err := cs.AppsV1().ControllerRevisions(s.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return 0
	}
	return int(cr.Revision)
}
