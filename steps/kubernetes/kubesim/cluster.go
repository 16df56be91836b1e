package kubesim

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// Resources the simulation cares about.
var (
	deploymentsGVR  = appsv1.SchemeGroupVersion.WithResource("deployments")
	replicaSetsGVR  = appsv1.SchemeGroupVersion.WithResource("replicasets")
	statefulSetsGVR = appsv1.SchemeGroupVersion.WithResource("statefulsets")
	revisionsGVR    = appsv1.SchemeGroupVersion.WithResource("controllerrevisions")
	jobsGVR         = batchv1.SchemeGroupVersion.WithResource("jobs")
	podsGVR         = corev1.SchemeGroupVersion.WithResource("pods")
	cronJobsGVR     = batchv1.SchemeGroupVersion.WithResource("cronjobs")
)

// Annotations and labels the real Deployment controller writes.
const (
	RevisionAnnotation        = "deployment.kubernetes.io/revision"
	RevisionHistoryAnnotation = "deployment.kubernetes.io/revision-history"
	DesiredReplicasAnnotation = "deployment.kubernetes.io/desired-replicas"
	MaxReplicasAnnotation     = "deployment.kubernetes.io/max-replicas"
)

// BrokenSuffix marks an image whose pods never become Ready (as in the real test control
// plane's kwok stages), so a rollout to it gets stuck and hits its progress deadline, and a
// Job running it fails.
const BrokenSuffix = ":broken"

// Cluster is a simulated cluster: client-go's fake clientset plus small simulations of the
// Deployment, StatefulSet and Job controllers, driven by watch events and a ticker.
type Cluster struct {
	cs      *fake.Clientset
	admin   *fake.Clientset          // see Admin
	tracker k8stesting.ObjectTracker // the fake's own store; the controllers write here directly

	mu        sync.Mutex // serialises controller read-modify-writes with API writes
	now       time.Time  // simulated time
	step      time.Duration
	interval  time.Duration
	autoImage func(ns, kind, name string) string
	registry  *Registry
	jobTicks  int
	jobRuns   map[string]int       // ns/name -> ticks the Job has run
	failJobs  map[string][2]string // ns/cronjob -> reason, message

	faultMu sync.Mutex
	faults  []*fault
	slow    []*fault // delays, in real time, for n requests
	watches []watch.Interface
	// simulated RBAC and reachability (access.go)
	denied, allowed []accessRule
	unreachable     bool

	nudge  chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed sync.Once
}

type fault struct {
	verb, resource string
	n              int
	err            error
	delay          time.Duration
}

// Option configures a Cluster.
type Option func(*Cluster)

// WithTick sets how often the controllers progress (real time, default 2ms) and how much
// simulated time passes per tick (default 5s). A 600s progress deadline then expires after
// 120 ticks, about a quarter of a second.
func WithTick(interval, simulated time.Duration) Option {
	return func(c *Cluster) { c.interval, c.step = interval, simulated }
}

// WithStart sets the simulated clock's start (default: the wall clock at New).
func WithStart(t time.Time) Option { return func(c *Cluster) { c.now = t } }

// WithJobTicks sets how many ticks a Job runs before it completes (default 3).
func WithJobTicks(n int) Option { return func(c *Cluster) { c.jobTicks = n } }

// WithAutoCreate makes a Get of an unknown Deployment, StatefulSet or CronJob create it, fully
// rolled out, so a rehearsal of any playbook finds its workloads. image chooses the image of a
// created workload (nil: "registry.invalid/<name>:latest"). Seeding with AddDeployment and
// friends is better when the expected image is known.
func WithAutoCreate(image func(ns, kind, name string) string) Option {
	return func(c *Cluster) {
		if image == nil {
			image = func(_, _, name string) string { return "registry.invalid/" + name + ":latest" }
		}
		c.autoImage = image
	}
}

// WithRegistry makes the cluster resolve image tags to digests with r (pods record the
// digest their tag had when they started). Without it, or for a reference r does not know,
// the digest is derived from the reference itself.
func WithRegistry(r *Registry) Option { return func(c *Cluster) { c.registry = r } }

// New starts a simulated cluster. Close stops its goroutines.
func New(opts ...Option) *Cluster {
	c := &Cluster{
		cs:       fake.NewClientset(),
		now:      time.Now().UTC().Truncate(time.Second),
		step:     5 * time.Second,
		interval: 2 * time.Millisecond,
		jobTicks: 3,
		jobRuns:  map[string]int{},
		failJobs: map[string][2]string{},
		nudge:    make(chan struct{}, 1),
	}
	for _, o := range opts {
		o(c)
	}
	if c.registry == nil {
		c.registry = NewRegistry()
	}
	c.tracker = c.cs.Tracker()
	api := &apiTracker{ObjectTracker: c.tracker, c: c}
	// Reactors run newest first: reachability, faults and RBAC, then access reviews, then
	// auto-create, then the status subresource, then API-server semantics (generation, uid,
	// status preserved) over the fake's store.
	c.cs.PrependReactor("*", "*", k8stesting.ObjectReaction(api))
	c.cs.PrependReactor("update", "*", c.updateStatusReactor)
	c.cs.PrependReactor("get", "*", c.autoCreateReactor)
	c.cs.PrependReactor("create", "selfsubjectaccessreviews", c.accessReviewReactor)
	c.cs.PrependReactor("*", "*", c.faultReactor)
	c.cs.PrependWatchReactor("*", c.watchReactor)
	// The cluster's own actors (a rehearsal's CI and deploy jobs, seeding) use another
	// client over the same objects and API-server semantics: RBAC (GrantOnly, Deny) and
	// injected faults are for the client under test, as a real cluster's are per user.
	c.admin = &fake.Clientset{}
	c.admin.AddReactor("*", "*", k8stesting.ObjectReaction(api))
	c.admin.PrependReactor("update", "*", c.updateStatusReactor)
	c.admin.PrependReactor("get", "*", c.autoCreateReactor)
	c.admin.AddWatchReactor("*", func(a k8stesting.Action) (bool, watch.Interface, error) {
		var opts metav1.ListOptions
		if w, ok := a.(k8stesting.WatchActionImpl); ok {
			opts = w.ListOptions
		}
		w, err := c.tracker.Watch(a.GetResource(), a.GetNamespace(), opts)
		return true, w, err
	})

	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	for _, gvr := range []schema.GroupVersionResource{deploymentsGVR, statefulSetsGVR, jobsGVR} {
		w, err := c.tracker.Watch(gvr, "")
		if err != nil {
			panic(err)
		}
		c.wg.Add(1)
		go c.forward(ctx, w)
	}
	c.wg.Add(1)
	go c.loop(ctx)
	return c
}

// Clientset is the client steps and tests use; it implements kubernetes.Interface.
func (c *Cluster) Clientset() kubernetes.Interface { return c.cs }

// Admin is the client of the cluster's own actors (CI, deploy jobs, people with kubectl):
// the same objects, without the RBAC and faults set for the client under test.
func (c *Cluster) Admin() kubernetes.Interface { return c.admin }

// Registry is the image registry the cluster resolves tags with (an empty one of its own
// unless WithRegistry gave one).
func (c *Cluster) Registry() *Registry { return c.registry }

// Fake is the underlying fake clientset, for tests that add reactors or read Actions.
func (c *Cluster) Fake() *fake.Clientset { return c.cs }

// Close stops the controllers. The clientset stays readable.
func (c *Cluster) Close() {
	c.closed.Do(func() {
		c.cancel()
		c.wg.Wait()
	})
}

// Now is the simulated time.
func (c *Cluster) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Actions returns every request made through the clientset (the controllers' own writes are
// not included), like an HTTP simulator's request log.
func (c *Cluster) Actions() []k8stesting.Action { return c.cs.Actions() }

// Writes counts the create, update, patch and delete requests made through the clientset,
// optionally only those on the given resource ("deployments", "jobs"). Access reviews are
// not writes: creating one only asks the server.
func (c *Cluster) Writes(resource ...string) int {
	n := 0
	for _, a := range c.cs.Actions() {
		switch a.GetVerb() {
		case "create", "update", "patch", "delete":
		default:
			continue
		}
		if isReview(a) {
			continue
		}
		if len(resource) > 0 && a.GetResource().Resource != resource[0] {
			continue
		}
		n++
	}
	return n
}

// FailNext makes the next n requests with that verb ("get", "list", "watch", "patch", "*")
// on that resource ("deployments", "*") fail with err, e.g.
// apierrors.NewServiceUnavailable("etcd leader changed") or apierrors.NewUnauthorized("").
func (c *Cluster) FailNext(verb, resource string, n int, err error) {
	c.faultMu.Lock()
	defer c.faultMu.Unlock()
	c.faults = append(c.faults, &fault{verb: verb, resource: resource, n: n, err: err})
}

// FailJobsFrom makes Jobs created from the CronJob ns/name fail with the given reason and
// message (as the Job controller reports BackoffLimitExceeded, DeadlineExceeded, ...).
func (c *Cluster) FailJobsFrom(ns, cronJob, reason, message string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failJobs[ns+"/"+cronJob] = [2]string{reason, message}
}

// SlowNext delays the next n requests with that verb on that resource by d of real time
// (keep d to milliseconds in tests), to exercise timeouts.
func (c *Cluster) SlowNext(verb, resource string, n int, d time.Duration) {
	c.faultMu.Lock()
	defer c.faultMu.Unlock()
	c.slow = append(c.slow, &fault{verb: verb, resource: resource, n: n, delay: d})
}

// DropWatches closes every watch the clientset has handed out, as an API server does when
// it restarts or a load balancer cuts idle connections. Clients must re-read and re-watch.
func (c *Cluster) DropWatches() int {
	c.faultMu.Lock()
	ws := c.watches
	c.watches = nil
	c.faultMu.Unlock()
	for _, w := range ws {
		w.Stop()
	}
	return len(ws)
}

// take consumes the first matching fault of list, if any.
func take(list []*fault, a k8stesting.Action) *fault {
	for _, f := range list {
		if f.n > 0 && (f.verb == "*" || f.verb == a.GetVerb()) && (f.resource == "*" || f.resource == a.GetResource().Resource) {
			f.n--
			return f
		}
	}
	return nil
}

func (c *Cluster) injected(a k8stesting.Action) error {
	if c.isUnreachable() {
		return errUnreachable(a)
	}
	c.faultMu.Lock()
	slow := take(c.slow, a)
	f := take(c.faults, a)
	c.faultMu.Unlock()
	if slow != nil {
		time.Sleep(slow.delay)
	}
	if f != nil {
		return f.err
	}
	return c.forbidden(a)
}

func (c *Cluster) faultReactor(a k8stesting.Action) (bool, runtime.Object, error) {
	if err := c.injected(a); err != nil {
		return true, nil, err
	}
	return false, nil, nil
}

// watchReactor serves watches from the store (as the fake does) but keeps them, so that
// DropWatches can cut them, and applies the injected faults to watch requests too.
func (c *Cluster) watchReactor(a k8stesting.Action) (bool, watch.Interface, error) {
	if err := c.injected(a); err != nil {
		return true, nil, err
	}
	var opts metav1.ListOptions
	if w, ok := a.(k8stesting.WatchActionImpl); ok {
		opts = w.ListOptions
	}
	w, err := c.tracker.Watch(a.GetResource(), a.GetNamespace(), opts)
	if err != nil {
		return true, nil, err
	}
	c.faultMu.Lock()
	live := c.watches[:0]
	for _, old := range c.watches {
		if fw, ok := old.(*watch.RaceFreeFakeWatcher); !ok || !fw.IsStopped() {
			live = append(live, old)
		}
	}
	c.watches = append(live, w)
	c.faultMu.Unlock()
	return true, w, nil
}

func (c *Cluster) autoCreateReactor(a k8stesting.Action) (bool, runtime.Object, error) {
	if c.autoImage == nil || a.GetSubresource() != "" {
		return false, nil, nil
	}
	g, ok := a.(k8stesting.GetAction)
	if !ok {
		return false, nil, nil
	}
	ns, name := g.GetNamespace(), g.GetName()
	if _, err := c.tracker.Get(a.GetResource(), ns, name); err == nil || !apierrors.IsNotFound(err) {
		return false, nil, nil
	}
	switch a.GetResource().Resource {
	case "deployments":
		c.AddDeployment(ns, name, c.autoImage(ns, "Deployment", name), 1)
	case "statefulsets":
		c.AddStatefulSet(ns, name, c.autoImage(ns, "StatefulSet", name), 1)
	case "cronjobs":
		c.AddCronJob(ns, name, "0 2 * * *", c.autoImage(ns, "CronJob", name))
	}
	return false, nil, nil
}

// forward turns store events into nudges of the control loop.
func (c *Cluster) forward(ctx context.Context, w watch.Interface) {
	defer c.wg.Done()
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-w.ResultChan():
			if !ok {
				return
			}
			select {
			case c.nudge <- struct{}{}:
			default:
			}
		}
	}
}

func (c *Cluster) loop(ctx context.Context) {
	defer c.wg.Done()
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.nudge:
			c.reconcile(false)
		case <-t.C:
			c.reconcile(true)
		}
	}
}

// reconcile observes new specs (always) and, on a tick, advances time and progress.
func (c *Cluster) reconcile(tick bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if tick {
		c.now = c.now.Add(c.step)
	}
	for _, d := range listAs[*appsv1.Deployment](c.tracker, deploymentsGVR) {
		c.syncDeployment(d, tick)
	}
	for _, s := range listAs[*appsv1.StatefulSet](c.tracker, statefulSetsGVR) {
		c.syncStatefulSet(s, tick)
	}
	for _, j := range listAs[*batchv1.Job](c.tracker, jobsGVR) {
		c.syncJob(j, tick)
	}
}

func listAs[T runtime.Object](tr k8stesting.ObjectTracker, gvr schema.GroupVersionResource) []T {
	kind := map[string]string{"deployments": "DeploymentList", "replicasets": "ReplicaSetList", "statefulsets": "StatefulSetList",
		"controllerrevisions": "ControllerRevisionList", "jobs": "JobList", "cronjobs": "CronJobList", "pods": "PodList"}[gvr.Resource]
	obj, err := tr.List(gvr, gvr.GroupVersion().WithKind(strings.TrimSuffix(kind, "List")), "")
	if err != nil {
		return nil
	}
	var out []T
	switch l := obj.(type) {
	case *appsv1.DeploymentList:
		for i := range l.Items {
			out = append(out, any(&l.Items[i]).(T))
		}
	case *appsv1.ReplicaSetList:
		for i := range l.Items {
			out = append(out, any(&l.Items[i]).(T))
		}
	case *appsv1.StatefulSetList:
		for i := range l.Items {
			out = append(out, any(&l.Items[i]).(T))
		}
	case *appsv1.ControllerRevisionList:
		for i := range l.Items {
			out = append(out, any(&l.Items[i]).(T))
		}
	case *batchv1.JobList:
		for i := range l.Items {
			out = append(out, any(&l.Items[i]).(T))
		}
	case *corev1.PodList:
		for i := range l.Items {
			out = append(out, any(&l.Items[i]).(T))
		}
	}
	return out
}

// templateHash names a pod template as the controllers do (a short, safe-encoded hash).
func templateHash(t *corev1.PodTemplateSpec) string {
	cp := t.DeepCopy()
	delete(cp.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	h := fnv.New32a()
	fmt.Fprintf(h, "%#v", cp.ObjectMeta.Labels)
	fmt.Fprintf(h, "%#v", cp.ObjectMeta.Annotations)
	for _, ct := range cp.Spec.Containers {
		fmt.Fprintf(h, "%s|%s|%v|%v;", ct.Name, ct.Image, ct.Args, ct.Env)
	}
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

func broken(spec *corev1.PodSpec) bool {
	for _, ct := range spec.Containers {
		if strings.HasSuffix(ct.Image, BrokenSuffix) {
			return true
		}
	}
	return false
}

func ptr[T any](v T) *T { return &v }

func parseLabels(name string, kv []string) map[string]string {
	labels := map[string]string{"app.kubernetes.io/name": name}
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		labels[k] = v
	}
	return labels
}
