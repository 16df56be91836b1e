package kubernetes

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/cessda/runbook/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	ImageDigest  string          `json:"image_digest" desc:"digest every checked container of every pod must run, sha256:<64 hex> or repository@sha256:<64 hex>, e.g. the digest output of the staging verification"`
	Timeout      engine.Duration `json:"timeout" default:"10m" desc:"how long to wait for each rollout to complete"`
}

func init() {
	engine.Register(engine.StepType{
		Name:       "kubernetes.verify",
		Summary:    "verify that Deployments/StatefulSets run the expected image tag and are fully rolled out (kubectl rollout status rules)",
		Connection: ConnectionType,
		New:        func() engine.Step { return &Verify{} },
		ReadOnly:   true, // reads the workloads and their pods
		Outputs: []engine.Output{
			{Name: "workloads", Type: engine.ListOf(engine.TypeMap), Desc: "one map per workload: kind, name, namespace, images (list), revision, ready_replicas, replicas, digests (list: what its checked containers run), pods (int: pods read)"},
			{Name: "revisions", Type: engine.MapOf(engine.TypeInt), Desc: "workload name to its revision (Deployment revision annotation, StatefulSet ControllerRevision number), for a later rollback to_revision"},
			{Name: "digest", Type: engine.TypeString, Desc: "the one digest every checked container runs (sha256:…), for a later image_digest; empty when the cluster reports none or the checked containers run several images"},
			{Name: "image", Type: engine.TypeString, Desc: "the checked image reference from the spec, e.g. registry/cvs-frontend:main-9; empty when the checked containers run several"},
		},
		Doc: "Waits with a watch until every workload is rolled out by exactly the rules of `kubectl rollout status` " +
			"(observedGeneration, updated/available replicas; a Progressing condition with reason ProgressDeadlineExceeded fails at once; " +
			"StatefulSets by their own rules), then checks the images and readyReplicas. A template that does not carry the expected tag fails at once. " +
			"Then it reads the pods of the current template (the newest ReplicaSet, the StatefulSet's update revision) and the digest each checked " +
			"container runs (status.containerStatuses[].imageID). Pods of one workload running different digests fail, and so does an image reference " +
			"running as different digests in different workloads. With image_digest, every checked container must run that digest " +
			"(\"production runs exactly the image tested on staging\"); a pod whose runtime reports no imageID is compared by its image reference instead, and the log says so.",
	})
}

// Validate needs something to verify.
func (p *Verify) Validate() error {
	if err := validateTargets("kubernetes.verify", p.Deployments, p.StatefulSets, p.Selector); err != nil {
		return err
	}
	if p.ImageDigest != "" {
		if _, _, err := parseDigest(p.ImageDigest); err != nil {
			return fmt.Errorf("kubernetes.verify: %v", err)
		}
	}
	return nil
}

type workloadRef struct{ kind, name string }

// targets resolves names and the selector into workloads (read-only).
func (p *Verify) targets(ctx context.Context, cs kubernetes.Interface, where string) ([]workloadRef, error) {
	return resolveTargets(ctx, cs, where, p.Namespace, p.Deployments, p.StatefulSets, p.Selector)
}

func resolveTargets(ctx context.Context, cs kubernetes.Interface, where, ns string, deployments, statefulsets []string, selector string) ([]workloadRef, error) {
	var out []workloadRef
	seen := map[workloadRef]bool{}
	add := func(r workloadRef) {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	for _, n := range deployments {
		add(workloadRef{KindDeployment, n})
	}
	for _, n := range statefulsets {
		add(workloadRef{KindStatefulSet, n})
	}
	if selector != "" {
		opts := metav1.ListOptions{LabelSelector: selector}
		ds, err := cs.AppsV1().Deployments(ns).List(ctx, opts)
		if err != nil {
			return nil, apiError(err, "list deployments in "+ns, where)
		}
		for _, d := range ds.Items {
			add(workloadRef{KindDeployment, d.Name})
		}
		ss, err := cs.AppsV1().StatefulSets(ns).List(ctx, opts)
		if err != nil {
			return nil, apiError(err, "list statefulsets in "+ns, where)
		}
		for _, s := range ss.Items {
			add(workloadRef{KindStatefulSet, s.Name})
		}
		if len(ds.Items)+len(ss.Items) == 0 {
			return nil, fmt.Errorf("kubernetes: no Deployment or StatefulSet in namespace %s matches selector %q (%s): check the selector and the namespace", ns, selector, where)
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

// checked are the template's containers the image and containers filters choose.
func checkedContainers(t *corev1.PodTemplateSpec, image string, names []string) []corev1.Container {
	var out []corev1.Container
	for _, c := range t.Spec.Containers {
		if len(names) > 0 && !contains(names, c.Name) {
			continue
		}
		if image != "" && !imageMatches(c.Image, image) {
			continue
		}
		out = append(out, c)
	}
	return out
}

// checkImages returns an error naming the checked containers without the tag.
func (p *Verify) checkImages(ns string, r workloadRef, t *corev1.PodTemplateSpec) error {
	var bad, checked []string
	for _, c := range checkedContainers(t, p.Image, p.Containers) {
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
	digest := ""
	if p.ImageDigest != "" || sc.Unknown("image_digest") {
		digest = " and digest " + sc.Show("image_digest", p.ImageDigest)
	}
	plan := engine.Plan{Action: fmt.Sprintf("verify that workloads in namespace %s run tag %s%s and are rolled out (timeout %s)",
		sc.Show("namespace", p.Namespace), sc.Show("image_tag", p.ImageTag), digest, p.Timeout)}
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

// Run waits for each rollout and checks images and digests; running it again only reads.
func (p *Verify) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	conn, err := sc.Connection(p.Connection, ConnectionType)
	if err != nil {
		return nil, err
	}
	cs, where, err := client(conn)
	if err != nil {
		return nil, err
	}
	var wantDigest, wantRef string
	if p.ImageDigest != "" {
		if wantDigest, wantRef, err = parseDigest(p.ImageDigest); err != nil {
			return nil, fmt.Errorf("kubernetes.verify: %v", err)
		}
	}
	refs, err := p.targets(ctx, cs, where)
	if err != nil {
		return nil, err
	}
	var workloads []map[string]any
	revisions := map[string]int{}
	var all []podImage
	builds := buildsByRef{}
	specRefs := map[string]bool{}
	for _, r := range refs {
		v, err := p.verifyWorkload(ctx, sc, cs, where, r, wantDigest, wantRef)
		if err != nil {
			return nil, err
		}
		if err := builds.add(v.what, v.imgs); err != nil {
			return nil, err
		}
		for ref := range v.specRefs {
			specRefs[ref] = true
		}
		all = append(all, v.imgs...)
		workloads = append(workloads, v.info)
		revisions[r.name] = v.info["revision"].(int)
	}
	sort.SliceStable(workloads, func(i, j int) bool { return fmt.Sprint(workloads[i]["name"]) < fmt.Sprint(workloads[j]["name"]) })
	digest, image := "", ""
	if ds := distinctDigests(all); len(ds) == 1 {
		digest = ds[0]
	} else if len(ds) > 1 {
		sc.Logf("the checked containers run %d different images (%s): the digest output is empty; choose one with the image parameter", len(ds), strings.Join(ds, ", "))
	}
	if len(specRefs) == 1 {
		for ref := range specRefs {
			image = ref
		}
	}
	return engine.Outputs{"workloads": workloads, "revisions": revisions, "digest": digest, "image": image}, nil
}

// verifiedWorkload is what verify found of one workload.
type verifiedWorkload struct {
	what     string // "deployment ns/name"
	info     map[string]any
	imgs     []podImage
	specRefs map[string]bool // the image references its checked containers' spec names
}

// verifyWorkload waits for one workload's rollout, then checks that its template names the
// wanted tag, that all its pods are Ready, and that they run the wanted digest.
func (p *Verify) verifyWorkload(ctx context.Context, sc *engine.StepContext, cs kubernetes.Interface, where string, r workloadRef, wantDigest, wantRef string) (*verifiedWorkload, error) {
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
	v := &verifiedWorkload{what: fmt.Sprintf("%s %s/%s", strings.ToLower(r.kind), p.Namespace, r.name), specRefs: map[string]bool{}}
	if ready < want {
		return nil, fmt.Errorf("kubernetes: %s rolled out but only %d of %d pods are Ready: check the pods' readiness probes", v.what, ready, want)
	}
	names := map[string]bool{}
	for _, c := range checkedContainers(t, p.Image, p.Containers) {
		names[c.Name] = true
		v.specRefs[c.Image] = true
	}
	imgs, pods, err := runningImages(ctx, cs, where, obj, names)
	if err != nil {
		return nil, err
	}
	if err := p.checkDigests(sc, v.what, imgs, wantDigest, wantRef); err != nil {
		return nil, err
	}
	if pods == 0 && want > 0 {
		if wantDigest != "" {
			return nil, fmt.Errorf("kubernetes: %s is rolled out but no pod of its current template was found: cannot check image digest %s: check the workload's selector and that the account may list pods", v.what, wantDigest)
		}
		sc.Logf("%s: no pod of its current template found; digests not read", v.what)
	}
	v.imgs = imgs
	v.info = workloadInfo(cs, ctx, obj)
	v.info["digests"] = distinctDigests(imgs)
	v.info["pods"] = pods
	sc.Logf("%s: %s, revision %v, %d/%d ready, %d pods running %s", v.what,
		strings.Join(v.info["images"].([]string), ", "), v.info["revision"], ready, want, pods, orDefault(strings.Join(v.info["digests"].([]string), ", "), "no reported digest"))
	return v, nil
}

// buildsByRef records, per image reference, which digest each workload runs: one reference
// running two builds means the tag was pushed again between two deployments.
type buildsByRef map[string]map[string]string // image reference -> digest -> first workload running it

func (b buildsByRef) add(what string, imgs []podImage) error {
	for _, pi := range imgs {
		if pi.digest == "" {
			continue
		}
		if b[pi.image] == nil {
			b[pi.image] = map[string]string{}
		}
		if _, ok := b[pi.image][pi.digest]; !ok {
			b[pi.image][pi.digest] = what
		}
		if len(b[pi.image]) > 1 {
			var runs []string
			for d, w := range b[pi.image] {
				runs = append(runs, fmt.Sprintf("%s runs %s", w, d))
			}
			sort.Strings(runs)
			return fmt.Errorf("kubernetes: image %s runs as different digests: %s: the tag was pushed again between deployments; roll out again so every workload runs one build", pi.image, strings.Join(runs, "; "))
		}
	}
	return nil
}

// checkDigests fails when pods of one workload run different digests, or when a checked
// container does not run the expected digest (a pod reporting none is compared by its
// image reference).
func (p *Verify) checkDigests(sc *engine.StepContext, what string, imgs []podImage, wantDigest, wantRef string) error {
	if mixed := mixedDigests(imgs); mixed != "" {
		return fmt.Errorf("kubernetes: pods of %s run different images: %s: check whether the tag was pushed again while the pods started, and roll out again", what, mixed)
	}
	if wantDigest == "" {
		return nil
	}
	for _, pi := range imgs {
		if pi.digest != "" {
			if pi.digest != wantDigest {
				return fmt.Errorf("kubernetes: %s: pod %s container %s runs %s@%s, not the expected %s: the tag points at another build than the one verified (check the deploy job's retag)",
					what, pi.pod, pi.container, imageRepo(pi.image), pi.digest, orDefault(wantRef, wantDigest))
			}
			continue
		}
		_, pinned, _ := strings.Cut(pi.image, "@")
		sc.Logf("%s: pod %s container %s: the runtime reports no imageID; comparing its image reference %s instead", what, pi.pod, pi.container, pi.image)
		if pi.image != wantRef && pinned != wantDigest {
			return fmt.Errorf("kubernetes: %s: pod %s container %s reports no image digest and its image reference %s is not %s: cannot show that it runs the expected image",
				what, pi.pod, pi.container, pi.image, orDefault(wantRef, wantDigest))
		}
	}
	return nil
}
