package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/cessda/runbook/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
)

// Snapshot records what workloads run (image references and the digests their pods run),
// and with expect checks that they run it again, e.g. after a rollback.
type Snapshot struct {
	Connection   string           `json:"connection" desc:"the kubernetes connection (cluster and context)"`
	Namespace    string           `json:"namespace" required:"true" desc:"namespace of the workloads (e.g. cvs on production)"`
	Deployments  []string         `json:"deployments" desc:"names of the Deployments to record"`
	StatefulSets []string         `json:"statefulsets" desc:"names of the StatefulSets to record"`
	Selector     string           `json:"selector" desc:"label selector choosing Deployments and StatefulSets instead of (or besides) names, e.g. app=cvs"`
	Image        string           `json:"image" desc:"record only containers whose image repository is this (full, or its last path element, e.g. cvs-frontend); others are ignored"`
	Expect       []map[string]any `json:"expect" desc:"the workloads output of an earlier snapshot: wait for the rollouts, then fail unless every workload runs what it recorded"`
	Timeout      engine.Duration  `json:"timeout" default:"10m" desc:"with expect: how long to wait for each rollout to complete"`
}

func init() {
	engine.Register(engine.StepType{
		Name:       "kubernetes.snapshot",
		Summary:    "record what Deployments/StatefulSets run (images and pod digests) before a deploy, and later check that they are back on it",
		Connection: ConnectionType,
		New:        func() engine.Step { return &Snapshot{} },
		ReadOnly:   true, // reads the workloads and their pods
		Outputs: []engine.Output{
			{Name: "workloads", Type: engine.ListOf(engine.TypeMap), Desc: "one map per workload: kind, name, namespace, revision (int), containers (list of maps: name, image, digest), images (list), digests (list); give it to a later snapshot's expect"},
			{Name: "tags", Type: engine.MapOf(engine.TypeString), Desc: `image name (last path element of the repository) to the tag in the spec, e.g. {"cvs-frontend": "3.6.1"}`},
			{Name: "digests", Type: engine.MapOf(engine.TypeString), Desc: "image name to the digest its pods run (sha256:…), for images whose pods report one"},
			{Name: "revisions", Type: engine.MapOf(engine.TypeInt), Desc: "workload name to its revision (Deployment revision annotation, StatefulSet ControllerRevision number), for a later kubernetes.rollback to_revision"},
		},
		Doc: "Record what production runs before deploying, and check later that production is back on it. " +
			"Without expect it only reads: each workload's containers, their image references and the digests the pods of the current template run " +
			"(status.containerStatuses[].imageID), and the revision a kubernetes.rollback can take as to_revision. " +
			"With expect (an earlier snapshot's workloads output) it waits for each rollout to complete (kubectl rollout status rules), then compares every " +
			"workload and container with the snapshot: by digest when both have one, else by image reference. Any difference fails with " +
			"\"production is not back on the previous release:\" and the list of differences. A tag pushed again since the snapshot is a difference, " +
			"though the image reference is the same.",
	})
}

// Validate needs something to record and an expect it can read.
func (p *Snapshot) Validate() error {
	if err := validateTargets("kubernetes.snapshot", p.Deployments, p.StatefulSets, p.Selector); err != nil {
		return err
	}
	if _, err := p.expected(); err != nil {
		return err
	}
	return nil
}

type snapContainer struct {
	Name   string `json:"name"`
	Image  string `json:"image"`
	Digest string `json:"digest"`
}

func (c snapContainer) String() string {
	if c.Digest == "" {
		return c.Image
	}
	return imageRepo(c.Image) + "@" + c.Digest + " (" + c.Image + ")"
}

type snapWorkload struct {
	Kind       string          `json:"kind"`
	Name       string          `json:"name"`
	Namespace  string          `json:"namespace"`
	Revision   int             `json:"revision"`
	Containers []snapContainer `json:"containers"`
}

func (w snapWorkload) what() string {
	return fmt.Sprintf("%s %s/%s", strings.ToLower(w.Kind), w.Namespace, w.Name)
}

func (w snapWorkload) key() string { return strings.ToLower(w.Kind) + "/" + w.Name }

func (w snapWorkload) output() map[string]any {
	containers := make([]map[string]any, 0, len(w.Containers))
	images := []string{}
	seen := map[string]bool{}
	var digests []podImage
	for _, c := range w.Containers {
		containers = append(containers, map[string]any{"name": c.Name, "image": c.Image, "digest": c.Digest})
		if !seen[c.Image] {
			seen[c.Image] = true
			images = append(images, c.Image)
		}
		digests = append(digests, podImage{digest: c.Digest})
	}
	return map[string]any{"kind": w.Kind, "name": w.Name, "namespace": w.Namespace, "revision": w.Revision,
		"containers": containers, "images": images, "digests": distinctDigests(digests)}
}

// expected decodes expect, which comes from an earlier snapshot's output, possibly through
// the journal (numbers as floats, lists as []any).
func (p *Snapshot) expected() ([]snapWorkload, error) {
	if p.Expect == nil {
		return nil, nil
	}
	b, err := json.Marshal(p.Expect)
	if err != nil {
		return nil, fmt.Errorf("kubernetes.snapshot: expect: %v", err)
	}
	var out []snapWorkload
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("kubernetes.snapshot: expect must be the workloads output of a kubernetes.snapshot: %v", err)
	}
	for i, w := range out {
		if w.Kind == "" || w.Name == "" {
			return nil, fmt.Errorf("kubernetes.snapshot: expect[%d] has no kind or name: give it the workloads output of a kubernetes.snapshot", i)
		}
	}
	return out, nil
}

// record reads what the workload runs now: its checked containers with the digest their
// pods of the current template run.
func (p *Snapshot) record(ctx context.Context, sc *engine.StepContext, cs kubernetes.Interface, where string, obj runtime.Object) (snapWorkload, error) {
	var t *corev1.PodTemplateSpec
	var w snapWorkload
	switch o := obj.(type) {
	case *appsv1.Deployment:
		t, w = &o.Spec.Template, snapWorkload{Kind: KindDeployment, Name: o.Name, Namespace: o.Namespace}
	case *appsv1.StatefulSet:
		t, w = &o.Spec.Template, snapWorkload{Kind: KindStatefulSet, Name: o.Name, Namespace: o.Namespace}
	}
	w.Revision, _ = workloadInfo(cs, ctx, obj)["revision"].(int)
	names := map[string]bool{}
	for _, c := range checkedContainers(t, p.Image, nil) {
		names[c.Name] = true
		w.Containers = append(w.Containers, snapContainer{Name: c.Name, Image: c.Image})
	}
	if len(names) == 0 {
		return w, nil
	}
	imgs, _, err := runningImages(ctx, cs, where, obj, names)
	if err != nil {
		return w, err
	}
	for i := range w.Containers {
		var mine []podImage
		for _, pi := range imgs {
			if pi.container == w.Containers[i].Name {
				mine = append(mine, pi)
			}
		}
		switch ds := distinctDigests(mine); len(ds) {
		case 1:
			w.Containers[i].Digest = ds[0]
		case 0:
			sc.Logf("%s container %s: no pod reports an image digest; it is compared by image reference", w.what(), w.Containers[i].Name)
		default:
			// a tag pushed again while pods started: no single digest to return to
			sc.Logf("%s container %s: pods run different digests (%s); it is compared by image reference", w.what(), w.Containers[i].Name, strings.Join(ds, ", "))
		}
	}
	return w, nil
}

// read resolves the targets and records each; with wait, after its rollout completed.
func (p *Snapshot) read(ctx context.Context, sc *engine.StepContext, cs kubernetes.Interface, where string, wait bool) ([]snapWorkload, error) {
	refs, err := resolveTargets(ctx, cs, where, p.Namespace, p.Deployments, p.StatefulSets, p.Selector)
	if err != nil {
		return nil, err
	}
	var out []snapWorkload
	for _, r := range refs {
		var obj runtime.Object
		if wait {
			obj, err = waitRollout(ctx, sc, cs, where, r.kind, p.Namespace, r.name, p.Timeout.D())
		} else {
			obj, _, err = getWorkload(ctx, cs, where, p.Namespace, r)
		}
		if err != nil {
			return nil, err
		}
		w, err := p.record(ctx, sc, cs, where, obj)
		if err != nil {
			return nil, err
		}
		if len(w.Containers) == 0 {
			sc.Logf("%s has no container with image %q: not recorded", w.what(), p.Image)
			continue
		}
		out = append(out, w)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("kubernetes: no workload in namespace %s has a container with image %q (%s): check the image parameter", p.Namespace, p.Image, where)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// differences lists how now differs from the snapshot: by digest where both have one,
// else by image reference.
func differences(snapshot, now []snapWorkload) []string {
	var diffs []string
	current := map[string]snapWorkload{}
	for _, w := range now {
		current[w.key()] = w
	}
	expected := map[string]bool{}
	for _, e := range snapshot {
		expected[e.key()] = true
		w, ok := current[e.key()]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("%s is not found now (snapshot had %s)", e.what(), e.Containers))
			continue
		}
		have := map[string]snapContainer{}
		for _, c := range w.Containers {
			have[c.Name] = c
		}
		want := map[string]bool{}
		for _, ec := range e.Containers {
			want[ec.Name] = true
			c, ok := have[ec.Name]
			switch {
			case !ok:
				diffs = append(diffs, fmt.Sprintf("%s container %s is not running now, snapshot had %s", w.what(), ec.Name, ec))
			case c.Digest != "" && ec.Digest != "":
				if c.Digest != ec.Digest {
					diffs = append(diffs, fmt.Sprintf("%s container %s runs %s, snapshot had %s", w.what(), c.Name, c, ec))
				}
			case c.Image != ec.Image:
				diffs = append(diffs, fmt.Sprintf("%s container %s runs %s, snapshot had %s", w.what(), c.Name, c, ec))
			}
		}
		for _, c := range w.Containers {
			if !want[c.Name] {
				diffs = append(diffs, fmt.Sprintf("%s container %s runs %s, not in the snapshot", w.what(), c.Name, c))
			}
		}
	}
	for _, w := range now {
		if !expected[w.key()] {
			diffs = append(diffs, fmt.Sprintf("%s runs %s, not in the snapshot", w.what(), w.Containers))
		}
	}
	return diffs
}

// specTag is the tag of an image reference ("" for one pinned only by digest).
func specTag(image string) string {
	ref, _, pinned := strings.Cut(image, "@")
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[i+1:]
	}
	if pinned {
		return ""
	}
	return "latest"
}

func (p *Snapshot) outputs(sc *engine.StepContext, ws []snapWorkload) engine.Outputs {
	workloads := make([]map[string]any, 0, len(ws))
	tags, digests, revisions := map[string]string{}, map[string]string{}, map[string]int{}
	for _, w := range ws {
		workloads = append(workloads, w.output())
		revisions[w.Name] = w.Revision
		for _, c := range w.Containers {
			name := imageName(c.Image)
			if t, ok := tags[name]; ok && t != specTag(c.Image) {
				sc.Logf("image %s runs with tags %s and %s; the tags output keeps %s", name, t, specTag(c.Image), t)
			} else {
				tags[name] = specTag(c.Image)
			}
			if d, ok := digests[name]; c.Digest != "" && (!ok || d == "") {
				digests[name] = c.Digest
			} else if ok && c.Digest != "" && d != c.Digest {
				sc.Logf("image %s runs as digests %s and %s; the digests output keeps %s", name, d, c.Digest, d)
			}
		}
	}
	return engine.Outputs{"workloads": workloads, "tags": tags, "digests": digests, "revisions": revisions}
}

// Plan reads what runs now; the step never changes the cluster.
func (p *Snapshot) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	conn, err := sc.Connection(p.Connection, ConnectionType)
	if err != nil {
		return engine.Plan{}, err
	}
	checking := p.Expect != nil || sc.Unknown("expect")
	plan := engine.Plan{Action: fmt.Sprintf("record what the workloads in namespace %s run", sc.Show("namespace", p.Namespace)), NoChange: true}
	if checking {
		plan.Action = fmt.Sprintf("wait for the rollouts in namespace %s (timeout %s) and check that they run what the snapshot recorded", sc.Show("namespace", p.Namespace), p.Timeout)
	}
	if sc.Unknown("namespace") || sc.Unknown("deployments") || sc.Unknown("statefulsets") || sc.Unknown("selector") || sc.Unknown("image") {
		return plan, nil
	}
	cs, where, err := client(conn)
	if err != nil {
		return engine.Plan{}, err
	}
	now, err := p.read(ctx, sc, cs, where, false)
	if err != nil {
		plan.Details = append(plan.Details, err.Error())
		return plan, nil
	}
	for _, w := range now {
		for _, c := range w.Containers {
			plan.Details = append(plan.Details, fmt.Sprintf("%s revision %d: container %s runs %s", w.what(), w.Revision, c.Name, c))
		}
	}
	if checking && !sc.Unknown("expect") {
		if exp, err := p.expected(); err == nil {
			for _, d := range differences(exp, now) {
				plan.Details = append(plan.Details, "  differs now: "+d)
			}
		}
	}
	return plan, nil
}

// Run records what runs; with expect it waits for the rollouts and compares.
func (p *Snapshot) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	conn, err := sc.Connection(p.Connection, ConnectionType)
	if err != nil {
		return nil, err
	}
	cs, where, err := client(conn)
	if err != nil {
		return nil, err
	}
	exp, err := p.expected()
	if err != nil {
		return nil, err
	}
	now, err := p.read(ctx, sc, cs, where, p.Expect != nil)
	if err != nil {
		return nil, err
	}
	for _, w := range now {
		for _, c := range w.Containers {
			sc.Logf("%s revision %d: container %s runs %s", w.what(), w.Revision, c.Name, c)
		}
	}
	out := p.outputs(sc, now)
	if p.Expect != nil {
		if diffs := differences(exp, now); len(diffs) > 0 {
			return out, fmt.Errorf("production is not back on the previous release: %s", strings.Join(diffs, "; "))
		}
		sc.Logf("every workload runs what the snapshot recorded")
	}
	return out, nil
}
