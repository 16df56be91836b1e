package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/cessda/runbook/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/polymorphichelpers"
	deploymentutil "k8s.io/kubectl/pkg/util/deployment"
)

// Rollback is `kubectl rollout undo`, made idempotent, followed by a wait for the
// rollback's own rollout.
type Rollback struct {
	Connection string          `json:"connection" desc:"the kubernetes connection (cluster and context)"`
	Namespace  string          `json:"namespace" required:"true" desc:"namespace of the workload"`
	Kind       string          `json:"kind" default:"deployment" enum:"deployment,statefulset" desc:"kind of the workload"`
	Name       string          `json:"name" required:"true" desc:"name of the Deployment or StatefulSet"`
	ToRevision int             `json:"to_revision" desc:"revision to roll back to, e.g. one recorded before the deploy by kubernetes.snapshot or kubernetes.verify (0: the previous revision)"`
	Timeout    engine.Duration `json:"timeout" default:"10m" desc:"how long to wait for the rollback's rollout to complete"`
}

func init() {
	engine.Register(engine.StepType{
		Name:       "kubernetes.rollback",
		Summary:    "roll a Deployment or StatefulSet back like kubectl rollout undo, then wait for that rollout",
		Connection: ConnectionType,
		New:        func() engine.Step { return &Rollback{} },
		Outputs: []engine.Output{
			{Name: "from_revision", Type: engine.TypeInt, Desc: "the revision running before the rollback"},
			{Name: "to_revision", Type: engine.TypeInt, Desc: "the revision rolled back to, as numbered before the rollback"},
			{Name: "revision", Type: engine.TypeInt, Desc: "the workload's revision after the rollback (the controller renumbers the restored revision to max+1)"},
			{Name: "workloads", Type: engine.ListOf(engine.TypeMap), Desc: "the workload after the rollback: kind, name, namespace, images, revision, ready_replicas, replicas"},
		},
		Doc: "Uses kubectl's own rollbacker (ReplicaSet revision annotations and controller references for Deployments, " +
			"ControllerRevisions for StatefulSets; a paused Deployment is an error). The target is recorded in the run's journal before the patch, " +
			"so a second run finds the template already restored and does not roll back again.",
	})
}

// rollbackRecord is the step's durable memory: what it rolled back to, by identity (the
// ReplicaSet or ControllerRevision name), because the revision number changes on rollback.
type rollbackRecord struct {
	Kind         string `json:"kind"`
	Name         string `json:"name"`
	FromRevision int64  `json:"from_revision"`
	ToRevision   int64  `json:"to_revision"`
	Target       string `json:"target"`
	Requested    int    `json:"requested"` // the to_revision parameter the target was chosen for
	Result       string `json:"result,omitempty"`
}

func (p *Rollback) kind() string {
	if strings.EqualFold(p.Kind, "statefulset") {
		return KindStatefulSet
	}
	return KindDeployment
}

// Validate rejects negative revisions, which kubectl also refuses.
func (p *Rollback) Validate() error {
	if p.ToRevision < 0 {
		return errors.New("kubernetes.rollback: to_revision must be 0 (previous) or a revision number")
	}
	return nil
}

// history is one restorable revision.
type history struct {
	name     string // ReplicaSet or ControllerRevision name
	revision int64
	images   []string
	matches  bool // equal to the current template
}

// histories lists the workload's revisions (read-only), newest first, and its current revision.
func (p *Rollback) histories(ctx context.Context, cs kubernetes.Interface, where string) (runtime.Object, int64, []history, error) {
	ns := p.Namespace
	if p.kind() == KindDeployment {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			return nil, 0, nil, apiError(err, "get deployment "+ns+"/"+p.Name, where)
		}
		_, olds, newRS, err := deploymentutil.GetAllReplicaSets(d, cs.AppsV1())
		if err != nil {
			return nil, 0, nil, apiError(err, "list replicasets of deployment "+ns+"/"+p.Name, where)
		}
		if newRS != nil {
			olds = append(olds, newRS)
		}
		var hs []history
		for _, rs := range olds {
			rev, err := deploymentutil.Revision(rs)
			if err != nil {
				continue
			}
			hs = append(hs, history{name: rs.Name, revision: rev, images: images(rs.Spec.Template.Spec.Containers),
				matches: equalIgnoreHash(&rs.Spec.Template, &d.Spec.Template)})
		}
		cur, _ := deploymentutil.Revision(d)
		sort.Slice(hs, func(i, j int) bool { return hs[i].revision > hs[j].revision })
		return d, cur, hs, nil
	}
	s, err := cs.AppsV1().StatefulSets(ns).Get(ctx, p.Name, metav1.GetOptions{})
	if err != nil {
		return nil, 0, nil, apiError(err, "get statefulset "+ns+"/"+p.Name, where)
	}
	crs, err := cs.AppsV1().ControllerRevisions(ns).List(ctx, metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(s.Spec.Selector)})
	if err != nil {
		return nil, 0, nil, apiError(err, "list controllerrevisions of statefulset "+ns+"/"+p.Name, where)
	}
	var hs []history
	var cur int64
	for i := range crs.Items {
		cr := &crs.Items[i]
		if !metav1.IsControlledBy(cr, s) {
			continue
		}
		var patch struct {
			Spec struct {
				Template corev1.PodTemplateSpec `json:"template"`
			} `json:"spec"`
		}
		_ = jsonUnmarshal(cr.Data.Raw, &patch)
		hs = append(hs, history{name: cr.Name, revision: cr.Revision, images: images(patch.Spec.Template.Spec.Containers),
			matches: statefulSetMatches(s, cr.Data.Raw)})
		if cr.Name == s.Status.UpdateRevision {
			cur = cr.Revision
		}
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].revision > hs[j].revision })
	return s, cur, hs, nil
}

func equalIgnoreHash(a, b *corev1.PodTemplateSpec) bool {
	a, b = a.DeepCopy(), b.DeepCopy()
	delete(a.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	delete(b.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	return apiequality.Semantic.DeepEqual(a, b)
}

// pick chooses the target as kubectl does: the given revision, or the second-highest.
func (p *Rollback) pick(hs []history, rec *rollbackRecord) (*history, error) {
	if rec != nil { // by identity: its number may have changed since
		for i := range hs {
			if hs[i].name == rec.Target {
				return &hs[i], nil
			}
		}
		return nil, fmt.Errorf("kubernetes: %s %s/%s: revision %s recorded by an earlier attempt is gone from the history", strings.ToLower(p.kind()), p.Namespace, p.Name, rec.Target)
	}
	if p.ToRevision > 0 {
		for i := range hs {
			if hs[i].revision == int64(p.ToRevision) {
				return &hs[i], nil
			}
		}
		return nil, fmt.Errorf("kubernetes: %s %s/%s: unable to find specified revision %d in history: check to_revision (see the revisions output of kubernetes.snapshot or kubernetes.verify)",
			strings.ToLower(p.kind()), p.Namespace, p.Name, p.ToRevision)
	}
	if len(hs) < 2 {
		return nil, fmt.Errorf("kubernetes: %s %s/%s: no rollout history found (nothing to roll back to)", strings.ToLower(p.kind()), p.Namespace, p.Name)
	}
	return &hs[1], nil
}

func (p *Rollback) recall(sc *engine.StepContext) *rollbackRecord {
	var rec rollbackRecord
	if sc.Recall("rollback", &rec) && rec.Kind == p.kind() && rec.Name == p.Name && rec.Target != "" && rec.Requested == p.ToRevision {
		return &rec
	}
	return nil
}

// Plan reads the history and says from which revision to which the workload would go.
func (p *Rollback) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	conn, err := sc.Connection(p.Connection, ConnectionType)
	if err != nil {
		return engine.Plan{}, err
	}
	what := fmt.Sprintf("%s %s/%s", strings.ToLower(p.kind()), sc.Show("namespace", p.Namespace), sc.Show("name", p.Name))
	if sc.Unknown("namespace") || sc.Unknown("name") || sc.Unknown("to_revision") {
		return engine.Plan{Action: "roll back " + what + " and wait for the rollout"}, nil
	}
	cs, where, err := client(conn)
	if err != nil {
		return engine.Plan{}, err
	}
	_, cur, hs, err := p.histories(ctx, cs, where)
	if err != nil {
		return engine.Plan{}, err
	}
	t, err := p.pick(hs, p.recall(sc))
	if err != nil {
		return engine.Plan{}, err
	}
	if t.matches {
		return engine.Plan{Action: fmt.Sprintf("%s already runs revision %d (%s); wait for its rollout", what, t.revision, strings.Join(t.images, ", ")), NoChange: true}, nil
	}
	plan := engine.Plan{Action: fmt.Sprintf("roll back %s from revision %d to revision %d (%s) and wait for the rollout", what, cur, t.revision, strings.Join(t.images, ", "))}
	for _, h := range hs {
		plan.Details = append(plan.Details, fmt.Sprintf("revision %d: %s", h.revision, strings.Join(h.images, ", ")))
	}
	return plan, nil
}

// Run rolls back (unless the template already matches the target) and waits.
func (p *Rollback) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	conn, err := sc.Connection(p.Connection, ConnectionType)
	if err != nil {
		return nil, err
	}
	cs, where, err := client(conn)
	if err != nil {
		return nil, err
	}
	if err := waitObserved(ctx, sc, cs, where, p.kind(), p.Namespace, p.Name, p.Timeout.D()); err != nil {
		return nil, err
	}
	obj, cur, hs, err := p.histories(ctx, cs, where)
	if err != nil {
		return nil, err
	}
	rec := p.recall(sc)
	t, err := p.pick(hs, rec)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		rec = &rollbackRecord{Kind: p.kind(), Name: p.Name, FromRevision: cur, ToRevision: t.revision, Target: t.name, Requested: p.ToRevision}
		if err := sc.Record("rollback", rec); err != nil {
			return nil, err
		}
	}
	what := fmt.Sprintf("%s %s/%s", strings.ToLower(p.kind()), p.Namespace, p.Name)
	if t.matches {
		sc.Logf("%s already runs the template of revision %d (%s): no rollback needed", what, t.revision, t.name)
	} else {
		capture := &errCapture{Interface: cs}
		rb, err := polymorphichelpers.RollbackerFor(appsv1.SchemeGroupVersion.WithKind(p.kind()).GroupKind(), capture)
		if err != nil {
			return nil, err
		}
		res, err := rb.Rollback(obj, nil, t.revision, cmdutil.DryRunNone)
		if err != nil {
			return nil, rollbackError(err, capture.last, what, where)
		}
		sc.Logf("%s: %s to revision %d (%s)", what, res, t.revision, strings.Join(t.images, ", "))
		rec.Result = res
		if err := sc.Record("rollback", rec); err != nil {
			return nil, err
		}
	}
	done, err := waitRollout(ctx, sc, cs, where, p.kind(), p.Namespace, p.Name, p.Timeout.D())
	if err != nil {
		return nil, err
	}
	info := workloadInfo(cs, ctx, done)
	return engine.Outputs{
		"from_revision": int(rec.FromRevision),
		"to_revision":   int(rec.ToRevision),
		"revision":      info["revision"],
		"workloads":     []map[string]any{info},
	}, nil
}

// rollbackError keeps kubectl's wording (it is what operators know) and names the service;
// API failures inside the rollbacker are retryable when they would be for a plain request.
func rollbackError(err, apiErr error, what, where string) error {
	msg := err.Error()
	if strings.Contains(msg, "paused") {
		return fmt.Errorf("kubernetes: %s: %s", what, msg)
	}
	if apiErr != nil {
		return apiError(apiErr, "roll back "+what, where)
	}
	return fmt.Errorf("kubernetes: roll back %s (%s): %s", what, where, msg)
}
