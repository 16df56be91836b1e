package kubernetes

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	appsv1client "k8s.io/client-go/kubernetes/typed/apps/v1"
	deploymentutil "k8s.io/kubectl/pkg/util/deployment"
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

// podImage is what one container of one pod runs.
type podImage struct {
	pod, container string
	image          string // the reference in the pod's spec
	digest         string // from containerStatuses[].imageID; "" when the runtime reports none
}

func (pi podImage) String() string {
	if pi.digest == "" {
		return pi.image + " (no digest reported)"
	}
	return pi.image + "@" + pi.digest
}

// digestOf is the digest in a containerStatuses[].imageID ("repo@sha256:…", older runtimes
// prefix "docker-pullable://"); "" when it carries none (a bare image ID is not the
// registry's digest).
func digestOf(imageID string) string {
	id := strings.TrimPrefix(imageID, "docker-pullable://")
	_, d, ok := strings.Cut(id, "@")
	if !ok || !strings.Contains(d, ":") {
		return ""
	}
	return d
}

var digestPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// parseDigest accepts "sha256:<64 hex>" or "repo@sha256:<64 hex>" and returns the digest
// and the full reference ("" for a bare digest).
func parseDigest(s string) (digest, ref string, err error) {
	digest = s
	if i := strings.LastIndex(s, "@"); i >= 0 {
		digest, ref = s[i+1:], s
		if i == 0 {
			return "", "", fmt.Errorf("image digest %q has no repository before @", s)
		}
	}
	if !digestPattern.MatchString(digest) {
		return "", "", fmt.Errorf("image digest %q is not sha256:<64 lowercase hex> or repository@sha256:<64 hex>", s)
	}
	return digest, ref, nil
}

// imageName is the last path element of an image's repository: the key of snapshot maps.
func imageName(image string) string { return path.Base(imageRepo(image)) }

// currentPodSelector selects the pods running the workload's current template: for a
// Deployment those of its newest ReplicaSet, for a StatefulSet those of its update
// revision. Pods of the old template may outlive a finished rollout while terminating.
func currentPodSelector(cs kubernetes.Interface, where string, obj runtime.Object) (string, error) {
	var sel *metav1.LabelSelector
	var key, value string
	switch o := obj.(type) {
	case *appsv1.Deployment:
		sel = o.Spec.Selector
		_, _, newRS, err := deploymentutil.GetAllReplicaSets(o, cs.AppsV1())
		if err != nil {
			return "", apiError(err, "list replicasets of deployment "+o.Namespace+"/"+o.Name, where)
		}
		if newRS != nil {
			key, value = appsv1.DefaultDeploymentUniqueLabelKey, newRS.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
		}
	case *appsv1.StatefulSet:
		sel = o.Spec.Selector
		key, value = appsv1.StatefulSetRevisionLabel, o.Status.UpdateRevision
	default:
		return "", fmt.Errorf("kubernetes: unsupported workload %T", obj)
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return "", fmt.Errorf("kubernetes: selector of the workload: %v", err)
	}
	if value != "" {
		r, err := labels.NewRequirement(key, selection.Equals, []string{value})
		if err != nil {
			return "", fmt.Errorf("kubernetes: selector of the workload: %v", err)
		}
		s = s.Add(*r)
	}
	return s.String(), nil
}

// runningImages reads what the named containers of the workload's current pods run, and
// how many pods were read. Finished and deleting pods are skipped.
func runningImages(ctx context.Context, cs kubernetes.Interface, where string, obj runtime.Object, names map[string]bool) ([]podImage, int, error) {
	sel, err := currentPodSelector(cs, where, obj)
	if err != nil {
		return nil, 0, err
	}
	m, _ := obj.(metav1.Object)
	ns := m.GetNamespace()
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, 0, apiError(err, fmt.Sprintf("list pods in %s with selector %s", ns, sel), where)
	}
	sort.Slice(pods.Items, func(i, j int) bool { return pods.Items[i].Name < pods.Items[j].Name })
	var out []podImage
	n := 0
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		n++
		for _, c := range p.Spec.Containers {
			if !names[c.Name] {
				continue
			}
			pi := podImage{pod: p.Name, container: c.Name, image: c.Image}
			for _, st := range p.Status.ContainerStatuses {
				if st.Name == c.Name {
					pi.digest = digestOf(st.ImageID)
				}
			}
			out = append(out, pi)
		}
	}
	return out, n, nil
}

// distinctDigests are the digests reported, sorted, without "".
func distinctDigests(imgs []podImage) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, pi := range imgs {
		if pi.digest != "" && !seen[pi.digest] {
			seen[pi.digest] = true
			out = append(out, pi.digest)
		}
	}
	sort.Strings(out)
	return out
}

// mixedDigests names a container whose pods run different digests (a tag pushed again
// while pods started), or "".
func mixedDigests(imgs []podImage) string {
	first := map[string]podImage{}
	for _, pi := range imgs {
		if pi.digest == "" {
			continue
		}
		f, ok := first[pi.container]
		if !ok {
			first[pi.container] = pi
			continue
		}
		if f.digest != pi.digest {
			return fmt.Sprintf("container %s runs %s in pod %s but %s in pod %s", pi.container, f, f.pod, pi, pi.pod)
		}
	}
	return ""
}

// validateTargets checks the workloads a step names: some, and a selector that parses.
func validateTargets(step string, deployments, statefulsets []string, selector string) error {
	if len(deployments) == 0 && len(statefulsets) == 0 && selector == "" {
		return fmt.Errorf("%s: name deployments, statefulsets or a selector", step)
	}
	if selector != "" {
		if _, err := labels.Parse(selector); err != nil {
			return fmt.Errorf("%s: selector %q: %v", step, selector, err)
		}
	}
	return nil
}
