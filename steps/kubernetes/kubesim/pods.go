package kubesim

import (
	"encoding/json"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Labels the StatefulSet controller puts on its pods.
const (
	StatefulSetRevisionLabel = appsv1.StatefulSetRevisionLabel // controller-revision-hash
	StatefulSetPodNameLabel  = appsv1.StatefulSetPodNameLabel
)

// podsByOwner lists the namespace's pods by the uid of their controller.
func (c *Cluster) podsByOwner(ns string) map[types.UID][]*corev1.Pod {
	out := map[types.UID][]*corev1.Pod{}
	obj, err := c.tracker.List(podsGVR, corev1.SchemeGroupVersion.WithKind("Pod"), ns)
	if err != nil {
		return out
	}
	l := obj.(*corev1.PodList)
	for i := range l.Items {
		p := &l.Items[i]
		if ref := metav1.GetControllerOf(p); ref != nil {
			out[ref.UID] = append(out[ref.UID], p)
		}
	}
	return out
}

// newPod is a running pod of the template whose containers start now: each records the
// digest its image reference resolves to at this moment, which later retags or pushes do
// not change (as with a real runtime's imageID).
func (c *Cluster) newPod(ns, name string, t *corev1.PodTemplateSpec, owner metav1.OwnerReference, labels map[string]string) *corev1.Pod {
	now := metav1.NewTime(c.now)
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels, Annotations: t.Annotations,
			OwnerReferences: []metav1.OwnerReference{owner}},
		Spec: *t.Spec.DeepCopy(),
		Status: corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &now, QOSClass: corev1.PodQOSBestEffort,
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
				{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
				{Type: corev1.ContainersReady, Status: corev1.ConditionFalse, LastTransitionTime: now},
				{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: now},
			}},
	}
	p.Spec.NodeName = "kubesim-node"
	for _, ct := range t.Spec.Containers {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: ct.Name, Image: ct.Image, ImageID: c.imageID(ct.Image), Started: ptr(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	return p
}

func podReady(p *corev1.Pod) bool {
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// setPodReady reports whether it changed the pod. Pods of a broken image never become Ready.
func (c *Cluster) setPodReady(p *corev1.Pod, ready bool) bool {
	ready = ready && !broken(&p.Spec)
	if podReady(p) == ready {
		return false
	}
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	for i := range p.Status.Conditions {
		if t := p.Status.Conditions[i].Type; t == corev1.PodReady || t == corev1.ContainersReady {
			p.Status.Conditions[i].Status = st
			p.Status.Conditions[i].LastTransitionTime = metav1.NewTime(c.now)
		}
	}
	for i := range p.Status.ContainerStatuses {
		p.Status.ContainerStatuses[i].Ready = ready
	}
	return true
}

// syncReplicaSetPods keeps status.replicas pods of the ReplicaSet, status.readyReplicas of
// them Ready; surplus pods go not-Ready first, then newest name first.
func (c *Cluster) syncReplicaSetPods(rs *appsv1.ReplicaSet, pods []*corev1.Pod) {
	want := int(rs.Status.Replicas)
	sort.Slice(pods, func(i, j int) bool {
		if ri, rj := podReady(pods[i]), podReady(pods[j]); ri != rj {
			return !ri
		}
		return pods[i].Name > pods[j].Name
	})
	for len(pods) > want {
		_ = c.tracker.Delete(podsGVR, rs.Namespace, pods[0].Name)
		pods = pods[1:]
	}
	owner := *metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))
	for len(pods) < want {
		labels := map[string]string{}
		for k, v := range rs.Spec.Template.Labels {
			labels[k] = v
		}
		p := c.newPod(rs.Namespace, rs.Name+"-"+randSuffix(), &rs.Spec.Template, owner, labels)
		if err := c.create(podsGVR, p); err != nil {
			continue // a name clash: try another
		}
		pods = append(pods, p)
	}
	// keep Ready pods Ready; make the oldest names Ready first
	sort.Slice(pods, func(i, j int) bool {
		if ri, rj := podReady(pods[i]), podReady(pods[j]); ri != rj {
			return ri
		}
		return pods[i].Name < pods[j].Name
	})
	for i, p := range pods {
		if c.setPodReady(p, i < int(rs.Status.ReadyReplicas)) {
			_ = c.store(podsGVR, p)
		}
	}
}

// syncStatefulSetPods keeps pods <name>-0..replicas-1, the highest ordinals on the update
// revision (the controller updates from the last ordinal down) and the rest on the current
// one; a pod on the wrong revision is replaced.
func (c *Cluster) syncStatefulSetPods(s *appsv1.StatefulSet) {
	existing := map[string]*corev1.Pod{}
	for _, p := range c.podsByOwner(s.Namespace)[s.UID] {
		existing[p.Name] = p
	}
	replicas := int(s.Status.Replicas)
	firstUpdated := replicas - int(s.Status.UpdatedReplicas)
	owner := *metav1.NewControllerRef(s, appsv1.SchemeGroupVersion.WithKind("StatefulSet"))
	keep := map[string]bool{}
	for i := 0; i < replicas; i++ {
		rev := s.Status.CurrentRevision
		if i >= firstUpdated || rev == "" {
			rev = s.Status.UpdateRevision
		}
		name := s.Name + "-" + strconv.Itoa(i)
		keep[name] = true
		p := existing[name]
		if p != nil && p.Labels[StatefulSetRevisionLabel] != rev {
			_ = c.tracker.Delete(podsGVR, s.Namespace, name)
			p = nil
		}
		if p == nil {
			t := c.revisionTemplate(s.Namespace, rev)
			if t == nil {
				continue
			}
			labels := map[string]string{}
			for k, v := range t.Labels {
				labels[k] = v
			}
			labels[StatefulSetRevisionLabel] = rev
			labels[StatefulSetPodNameLabel] = name
			labels[appsv1.PodIndexLabel] = strconv.Itoa(i)
			p = c.newPod(s.Namespace, name, t, owner, labels)
			if err := c.create(podsGVR, p); err != nil {
				continue
			}
		}
		if c.setPodReady(p, true) {
			_ = c.store(podsGVR, p)
		}
	}
	for name := range existing {
		if !keep[name] {
			_ = c.tracker.Delete(podsGVR, s.Namespace, name)
		}
	}
}

// revisionTemplate is the pod template stored in a StatefulSet's ControllerRevision.
func (c *Cluster) revisionTemplate(ns, name string) *corev1.PodTemplateSpec {
	obj, err := c.tracker.Get(revisionsGVR, ns, name)
	if err != nil {
		return nil
	}
	var patch struct {
		Spec struct {
			Template corev1.PodTemplateSpec `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(obj.(*appsv1.ControllerRevision).Data.Raw, &patch); err != nil {
		return nil
	}
	return &patch.Spec.Template
}
