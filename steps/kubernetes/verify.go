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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
)

// Verify checks that workloads run the expected image tag and have finished rolling out.
type Verify struct {
	Connection   string          `json:"connection" desc:"the kubernetes connection (cluster and context)"`
	Namespace    string          `json:"namespace" required:"true" desc:"namespace of the workloads (e.g. cvs-v2 on staging, cvs on production)"`
	Deployments  []string        `json:"deployments" desc:"names of the Deployments to verify"`
	StatefulSets []string        `json:"statefulsets" desc:"names of the StatefulSets to verify"`
	Selector     string          `json:"selector" desc:"label selector choosing Deployments and StatefulSets instead of (or besides) names, e.g. app=cvs"`
	ImageTag     string          `json:"image_tag" required:"true" desc:"tag every checked container image must have, e.g. 3.6.1 or a staging build tag like main-123"`
	Image        string          `json:"image" desc:"check only containers whose image repository is this (full, or its last path element, e.g. cvs-frontend); others are ignored"`
	Containers   []string        `json:"containers" desc:"check only containers with these names (default: all containers)"`
	Timeout      engine.Duration `json:"timeout" default:"10m" desc:"how long to wait for each rollout to complete"`
}

func init() {
	engine.Register(engine.StepType{
		Name:       "kubernetes.verify",
		Summary:    "verify that Deployments/StatefulSets run the expected image tag and are fully rolled out (kubectl rollout status rules)",
		Connection: ConnectionType,
		New:        func() engine.Step { return &Verify{} },
		Outputs: []engine.Output{
			{Name: "workloads", Type: engine.ListOf(engine.TypeMap), Desc: "one map per workload: kind, name, namespace, images (list), revision, ready_replicas, replicas"},
			{Name: "revisions", Type: engine.MapOf(engine.TypeInt), Desc: "workload name to its revision (Deployment revision annotation, StatefulSet ControllerRevision number), for a later rollback to_revision"},
		},
		Doc: "Waits with a watch until every workload is rolled out by exactly the rules of `kubectl rollout status` " +
			"(observedGeneration, updated/available replicas; a Progressing condition with reason ProgressDeadlineExceeded fails at once; " +
			"StatefulSets by their own rules), then checks the images and readyReplicas. A template that does not carry the expected tag fails at once.",
	})
}

// Validate needs something to verify.
func (p *Verify) Validate() error {
	if len(p.Deployments) == 0 && len(p.StatefulSets) == 0 && p.Selector == "" {
		return errors.New("kubernetes.verify: name deployments, statefulsets or a selector")
	}
	if p.Selector != "" {
		if _, err := labels.Parse(p.Selector); err != nil {
			return fmt.Errorf("kubernetes.verify: selector %q: %v", p.Selector, err)
		}
	}
	return nil
}

type workloadRef struct{ kind, name string }

// targets resolves names and the selector into workloads (read-only).
func (p *Verify) targets(ctx context.Context, cs kubernetes.Interface, where string) ([]workloadRef, error) {
	var out []workloadRef
	seen := map[workloadRef]bool{}
	add := func(r workloadRef) {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	for _, n := range p.Deployments {
		add(workloadRef{KindDeployment, n})
	}
	for _, n := range p.StatefulSets {
		add(workloadRef{KindStatefulSet, n})
	}
	if p.Selector != "" {
		opts := metav1.ListOptions{LabelSelector: p.Selector}
		ds, err := cs.AppsV1().Deployments(p.Namespace).List(ctx, opts)
		if err != nil {
			return nil, apiError(err, "list deployments in "+p.Namespace, where)
		}
		for _, d := range ds.Items {
			add(workloadRef{KindDeployment, d.Name})
		}
		ss, err := cs.AppsV1().StatefulSets(p.Namespace).List(ctx, opts)
		if err != nil {
			return nil, apiError(err, "list statefulsets in "+p.Namespace, where)
		}
		for _, s := range ss.Items {
			add(workloadRef{KindStatefulSet, s.Name})
		}
		if len(ds.Items)+len(ss.Items) == 0 {
			return nil, fmt.Errorf("kubernetes: no Deployment or StatefulSet in namespace %s matches selector %q (%s): check the selector and the namespace", p.Namespace, p.Selector, where)
		}
	}
	return out, nil
}

func getWorkload(ctx context.Context, cs kubernetes.Interface, where, ns string, r workloadRef) (runtime.Object, *corev1.PodTemplateSpec, error) {
	switch r.kind {
	case KindDeployment:
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, r.name, metav1.GetOptions{})
		if err != nil {
			return nil, nil, apiError(err, "get deployment "+ns+"/"+r.name, where)
		}
		return d, &d.Spec.Template, nil
	default:
		s, err := cs.AppsV1().StatefulSets(ns).Get(ctx, r.name, metav1.GetOptions{})
		if err != nil {
			return nil, nil, apiError(err, "get statefulset "+ns+"/"+r.name, where)
		}
		return s, &s.Spec.Template, nil
	}
}

// checkImages returns the checked images, or an error naming those without the tag.
func (p *Verify) checkImages(ns string, r workloadRef, t *corev1.PodTemplateSpec) error {
	var bad, checked []string
	for _, c := range t.Spec.Containers {
		if len(p.Containers) > 0 && !contains(p.Containers, c.Name) {
			continue
		}
		if p.Image != "" && !imageMatches(c.Image, p.Image) {
			continue
		}
		checked = append(checked, c.Image)
		if imageTag(c.Image) != p.ImageTag {
			bad = append(bad, fmt.Sprintf("container %s runs %s", c.Name, c.Image))
		}
	}
	if len(checked) == 0 {
		return fmt.Errorf("kubernetes: %s %s/%s has no container matching image %q / containers %v: check the image and containers parameters",
			strings.ToLower(r.kind), ns, r.name, p.Image, p.Containers)
	}
	if len(bad) > 0 {
		return fmt.Errorf("kubernetes: %s %s/%s does not run tag %s: %s: check that the deploy job deployed this build",
			strings.ToLower(r.kind), ns, r.name, p.ImageTag, strings.Join(bad, "; "))
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Plan reads the workloads and says what would be checked.
func (p *Verify) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	conn, err := sc.Connection(p.Connection, ConnectionType)
	if err != nil {
		return engine.Plan{}, err
	}
	plan := engine.Plan{Action: fmt.Sprintf("verify that workloads in namespace %s run tag %s and are rolled out (timeout %s)",
		sc.Show("namespace", p.Namespace), sc.Show("image_tag", p.ImageTag), p.Timeout)}
	if sc.Unknown("namespace") || sc.Unknown("deployments") || sc.Unknown("statefulsets") || sc.Unknown("selector") {
		return plan, nil
	}
	cs, where, err := client(conn)
	if err != nil {
		return engine.Plan{}, err
	}
	refs, err := p.targets(ctx, cs, where)
	if err != nil {
		plan.Details = append(plan.Details, err.Error())
		return plan, nil
	}
	for _, r := range refs {
		obj, t, err := getWorkload(ctx, cs, where, p.Namespace, r)
		if err != nil {
			plan.Details = append(plan.Details, err.Error())
			continue
		}
		info := workloadInfo(cs, ctx, obj)
		plan.Details = append(plan.Details, fmt.Sprintf("%s %s: now %s, revision %v, %v/%v ready",
			strings.ToLower(r.kind), r.name, strings.Join(info["images"].([]string), ", "), info["revision"], info["ready_replicas"], info["replicas"]))
		if !sc.Unknown("image_tag") {
			if err := p.checkImages(p.Namespace, r, t); err != nil {
				plan.Details = append(plan.Details, "  would fail now: "+err.Error())
			}
		}
	}
	plan.NoChange = true // verification changes nothing in the cluster
	return plan, nil
}

// Run waits for each rollout and checks images; running it again only reads.
func (p *Verify) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	conn, err := sc.Connection(p.Connection, ConnectionType)
	if err != nil {
		return nil, err
	}
	cs, where, err := client(conn)
	if err != nil {
		return nil, err
	}
	refs, err := p.targets(ctx, cs, where)
	if err != nil {
		return nil, err
	}
	var workloads []map[string]any
	revisions := map[string]int{}
	for _, r := range refs {
		_, t, err := getWorkload(ctx, cs, where, p.Namespace, r)
		if err != nil {
			return nil, err
		}
		// a wrong tag in the template will not fix itself by waiting
		if err := p.checkImages(p.Namespace, r, t); err != nil {
			return nil, err
		}
		obj, err := waitRollout(ctx, sc, cs, where, r.kind, p.Namespace, r.name, p.Timeout.D())
		if err != nil {
			return nil, err
		}
		var ready, want int32
		switch o := obj.(type) {
		case *appsv1.Deployment:
			t, ready, want = &o.Spec.Template, o.Status.ReadyReplicas, replicasOf(o.Spec.Replicas)
		case *appsv1.StatefulSet:
			t, ready, want = &o.Spec.Template, o.Status.ReadyReplicas, replicasOf(o.Spec.Replicas)
		}
		if err := p.checkImages(p.Namespace, r, t); err != nil {
			return nil, err
		}
		if ready < want {
			return nil, fmt.Errorf("kubernetes: %s %s/%s rolled out but only %d of %d pods are Ready: check the pods' readiness probes",
				strings.ToLower(r.kind), p.Namespace, r.name, ready, want)
		}
		info := workloadInfo(cs, ctx, obj)
		sc.Logf("%s %s/%s: %s, revision %v, %d/%d ready", strings.ToLower(r.kind), p.Namespace, r.name,
			strings.Join(info["images"].([]string), ", "), info["revision"], ready, want)
		workloads = append(workloads, info)
		revisions[r.name] = info["revision"].(int)
	}
	sort.SliceStable(workloads, func(i, j int) bool { return fmt.Sprint(workloads[i]["name"]) < fmt.Sprint(workloads[j]["name"]) })
	return engine.Outputs{"workloads": workloads, "revisions": revisions}, nil
}
