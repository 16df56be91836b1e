package kubesim

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes/scheme"
)

func randSuffix() string { return rand.String(5) }

func revisionOf(m metav1.Object) int64 {
	v, err := strconv.ParseInt(m.GetAnnotations()[RevisionAnnotation], 10, 64)
	if err != nil {
		return 0
	}
	return v
}

func equalIgnoreHash(a, b *corev1.PodTemplateSpec) bool {
	a, b = a.DeepCopy(), b.DeepCopy()
	delete(a.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	delete(b.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	return apiequality.Semantic.DeepEqual(a, b)
}

func setCondition(conds []appsv1.DeploymentCondition, c appsv1.DeploymentCondition) []appsv1.DeploymentCondition {
	for i := range conds {
		if conds[i].Type == c.Type {
			if conds[i].Status == c.Status && conds[i].Reason == c.Reason {
				// the real controller keeps lastTransitionTime and refreshes lastUpdateTime
				conds[i].LastUpdateTime = c.LastUpdateTime
				conds[i].Message = c.Message
				return conds
			}
			if conds[i].Status == c.Status {
				c.LastTransitionTime = conds[i].LastTransitionTime
			}
			conds[i] = c
			return conds
		}
	}
	return append(conds, c)
}

func getCondition(conds []appsv1.DeploymentCondition, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

// syncDeployment is a small Deployment controller: it finds or creates the new ReplicaSet
// for the template (adopting an old one on rollback and renumbering its revision to max+1
// with the old number in revision-history, as the real controller does), scales new up and
// old down one pod per tick, and keeps status and the Progressing/Available conditions with
// the real reasons, including ProgressDeadlineExceeded.
func (c *Cluster) syncDeployment(d *appsv1.Deployment, tick bool) {
	if d.DeletionTimestamp != nil {
		return
	}
	desired := int32(1)
	if d.Spec.Replicas != nil {
		desired = *d.Spec.Replicas
	}
	var owned []*appsv1.ReplicaSet
	for _, rs := range listAs[*appsv1.ReplicaSet](c.tracker, replicaSetsGVR) {
		if rs.Namespace == d.Namespace && metav1.IsControlledBy(rs, d) {
			owned = append(owned, rs)
		}
	}
	var newRS *appsv1.ReplicaSet
	var maxOld int64
	for _, rs := range owned {
		if newRS == nil && equalIgnoreHash(&rs.Spec.Template, &d.Spec.Template) {
			newRS = rs
			continue
		}
		if r := revisionOf(rs); r > maxOld {
			maxOld = r
		}
	}
	orig := d.DeepCopy()
	now := metav1.NewTime(c.now)
	progressMsg := ""
	if newRS == nil {
		hash := templateHash(&d.Spec.Template)
		tmpl := d.Spec.Template.DeepCopy()
		if tmpl.Labels == nil {
			tmpl.Labels = map[string]string{}
		}
		tmpl.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
		sel := d.Spec.Selector.DeepCopy()
		if sel == nil {
			sel = &metav1.LabelSelector{}
		}
		if sel.MatchLabels == nil {
			sel.MatchLabels = map[string]string{}
		}
		sel.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
		ann := map[string]string{}
		for k, v := range d.Annotations {
			if k != RevisionAnnotation && k != RevisionHistoryAnnotation && k != corev1.LastAppliedConfigAnnotation {
				ann[k] = v
			}
		}
		ann[RevisionAnnotation] = strconv.FormatInt(maxOld+1, 10)
		ann[DesiredReplicasAnnotation] = strconv.Itoa(int(desired))
		ann[MaxReplicasAnnotation] = strconv.Itoa(int(desired + 1))
		newRS = &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{
				Name: d.Name + "-" + hash, Namespace: d.Namespace, Labels: tmpl.Labels, Annotations: ann,
				OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, appsv1.SchemeGroupVersion.WithKind("Deployment"))},
			},
			Spec: appsv1.ReplicaSetSpec{Replicas: ptr(int32(0)), Selector: sel, Template: *tmpl},
		}
		if err := c.create(replicaSetsGVR, newRS); err != nil {
			return
		}
		d.Status.Conditions = setCondition(d.Status.Conditions, appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing,
			Status: corev1.ConditionTrue, Reason: "NewReplicaSetCreated", Message: fmt.Sprintf("Created new replica set %q", newRS.Name),
			LastUpdateTime: now, LastTransitionTime: now})
	} else if r := revisionOf(newRS); r <= maxOld {
		// rollback (or a template seen before): adopt the old ReplicaSet as the new one
		ann := newRS.Annotations
		if ann == nil {
			ann = map[string]string{}
		}
		if old := ann[RevisionAnnotation]; old != "" {
			if h := ann[RevisionHistoryAnnotation]; h != "" {
				ann[RevisionHistoryAnnotation] = h + "," + old
			} else {
				ann[RevisionHistoryAnnotation] = old
			}
		}
		ann[RevisionAnnotation] = strconv.FormatInt(maxOld+1, 10)
		newRS.Annotations = ann
		_ = c.store(replicaSetsGVR, newRS)
		d.Status.Conditions = setCondition(d.Status.Conditions, appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing,
			Status: corev1.ConditionTrue, Reason: "FoundNewReplicaSet", Message: fmt.Sprintf("Found new replica set %q", newRS.Name),
			LastUpdateTime: now, LastTransitionTime: now})
	}
	if d.Annotations == nil {
		d.Annotations = map[string]string{}
	}
	d.Annotations[RevisionAnnotation] = newRS.Annotations[RevisionAnnotation]
	d.Status.ObservedGeneration = d.Generation

	changed := false
	if tick && !d.Spec.Paused {
		// new ReplicaSet: all pods created at once (surge), one more becomes available per tick
		if newRS.Spec.Replicas == nil || *newRS.Spec.Replicas != desired {
			newRS.Spec.Replicas = ptr(desired)
			newRS.Status.Replicas = desired
			if newRS.Status.AvailableReplicas > desired {
				newRS.Status.AvailableReplicas, newRS.Status.ReadyReplicas = desired, desired
			}
			changed = true
		} else if newRS.Status.AvailableReplicas < desired && !broken(&newRS.Spec.Template.Spec) {
			newRS.Status.AvailableReplicas++
			newRS.Status.ReadyReplicas = newRS.Status.AvailableReplicas
			changed = true
		}
		newRS.Status.FullyLabeledReplicas = newRS.Status.Replicas
		newRS.Status.ObservedGeneration = newRS.Generation
		if changed {
			_ = c.store(replicaSetsGVR, newRS)
		}
		// old ReplicaSets: keep only as many pods as the new one still lacks
		allowed := desired - newRS.Status.AvailableReplicas
		if allowed < 0 {
			allowed = 0
		}
		sort.Slice(owned, func(i, j int) bool { return revisionOf(owned[i]) > revisionOf(owned[j]) })
		for _, rs := range owned {
			if rs.Name == newRS.Name {
				continue
			}
			keep := rs.Status.Replicas
			if keep > allowed {
				keep = allowed
			}
			allowed -= keep
			if rs.Spec.Replicas == nil || *rs.Spec.Replicas != keep || rs.Status.Replicas != keep {
				rs.Spec.Replicas = ptr(keep)
				rs.Status.Replicas, rs.Status.ReadyReplicas, rs.Status.AvailableReplicas, rs.Status.FullyLabeledReplicas = keep, keep, keep, keep
				_ = c.store(replicaSetsGVR, rs)
				changed = true
			}
		}
	}
	if tick {
		// pods before the Deployment's status, so a client that sees the rollout complete
		// finds only the new pods
		pods := c.podsByOwner(d.Namespace)
		for _, rs := range owned {
			if rs.Name != newRS.Name {
				c.syncReplicaSetPods(rs, pods[rs.UID])
			}
		}
		c.syncReplicaSetPods(newRS, pods[newRS.UID])
	}
	// status from the ReplicaSets
	var replicas, ready, available int32
	for _, rs := range owned {
		if rs.Name == newRS.Name {
			continue
		}
		replicas += rs.Status.Replicas
		ready += rs.Status.ReadyReplicas
		available += rs.Status.AvailableReplicas
	}
	replicas += newRS.Status.Replicas
	ready += newRS.Status.ReadyReplicas
	available += newRS.Status.AvailableReplicas
	d.Status.Replicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas = replicas, ready, available
	d.Status.UpdatedReplicas = newRS.Status.Replicas
	d.Status.UnavailableReplicas = replicas - available
	if d.Status.UnavailableReplicas < 0 {
		d.Status.UnavailableReplicas = 0
	}
	maxUnavailable := desired / 4 // the default 25%, rounded down
	if available >= desired-maxUnavailable {
		d.Status.Conditions = setCondition(d.Status.Conditions, appsv1.DeploymentCondition{Type: appsv1.DeploymentAvailable,
			Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable", Message: "Deployment has minimum availability.",
			LastUpdateTime: now, LastTransitionTime: now})
	} else {
		d.Status.Conditions = setCondition(d.Status.Conditions, appsv1.DeploymentCondition{Type: appsv1.DeploymentAvailable,
			Status: corev1.ConditionFalse, Reason: "MinimumReplicasUnavailable", Message: "Deployment does not have minimum availability.",
			LastUpdateTime: now, LastTransitionTime: now})
	}
	complete := d.Status.UpdatedReplicas == desired && replicas == desired && available == desired
	prog := getCondition(d.Status.Conditions, appsv1.DeploymentProgressing)
	switch {
	case complete:
		if prog == nil || prog.Reason != "NewReplicaSetAvailable" {
			d.Status.Conditions = setCondition(d.Status.Conditions, appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing,
				Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable", Message: fmt.Sprintf("ReplicaSet %q has successfully progressed.", newRS.Name),
				LastUpdateTime: now, LastTransitionTime: now})
		}
	case changed:
		progressMsg = fmt.Sprintf("ReplicaSet %q is progressing.", newRS.Name)
		d.Status.Conditions = setCondition(d.Status.Conditions, appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing,
			Status: corev1.ConditionTrue, Reason: "ReplicaSetUpdated", Message: progressMsg, LastUpdateTime: now, LastTransitionTime: now})
	case prog != nil && prog.Reason != "ProgressDeadlineExceeded" && d.Spec.ProgressDeadlineSeconds != nil && !d.Spec.Paused &&
		c.now.Sub(prog.LastUpdateTime.Time).Seconds() > float64(*d.Spec.ProgressDeadlineSeconds):
		d.Status.Conditions = setCondition(d.Status.Conditions, appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing,
			Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded", Message: fmt.Sprintf("ReplicaSet %q has timed out progressing.", newRS.Name),
			LastUpdateTime: now, LastTransitionTime: now})
	}
	if !apiequality.Semantic.DeepEqual(orig.Status, d.Status) || !apiequality.Semantic.DeepEqual(orig.Annotations, d.Annotations) {
		// Available's lastUpdateTime alone is not worth an event
		if !changed && onlyTimesDiffer(orig, d) {
			return
		}
		_ = c.store(deploymentsGVR, d)
	}
}

func onlyTimesDiffer(a, b *appsv1.Deployment) bool {
	a, b = a.DeepCopy(), b.DeepCopy()
	for _, d := range []*appsv1.Deployment{a, b} {
		for i := range d.Status.Conditions {
			d.Status.Conditions[i].LastUpdateTime = metav1.Time{}
			d.Status.Conditions[i].LastTransitionTime = metav1.Time{}
		}
	}
	return apiequality.Semantic.DeepEqual(a.Status, b.Status) && apiequality.Semantic.DeepEqual(a.Annotations, b.Annotations)
}

var appsCodec = scheme.Codecs.LegacyCodec(appsv1.SchemeGroupVersion)

// statefulSetPatch is what the StatefulSet controller stores in a ControllerRevision: a
// strategic-merge patch replacing spec.template (the form `kubectl rollout undo` compares).
func statefulSetPatch(set *appsv1.StatefulSet) ([]byte, error) {
	str, err := runtime.Encode(appsCodec, set)
	if err != nil {
		return nil, err
	}
	var raw map[string]any
	if err := json.Unmarshal(str, &raw); err != nil {
		return nil, err
	}
	template := raw["spec"].(map[string]any)["template"].(map[string]any)
	template["$patch"] = "replace"
	return json.Marshal(map[string]any{"spec": map[string]any{"template": template}})
}

// syncStatefulSet is a small StatefulSet controller: a ControllerRevision per template
// (an equal old one is renumbered to max+1, as on rollback), pods updated one per tick in
// RollingUpdate, currentRevision catching up with updateRevision at the end.
func (c *Cluster) syncStatefulSet(s *appsv1.StatefulSet, tick bool) {
	if s.DeletionTimestamp != nil {
		return
	}
	orig := s.DeepCopy()
	desired := int32(1)
	if s.Spec.Replicas != nil {
		desired = *s.Spec.Replicas
	}
	data, err := statefulSetPatch(s)
	if err != nil {
		return
	}
	var match *appsv1.ControllerRevision
	var maxRev int64
	for _, cr := range listAs[*appsv1.ControllerRevision](c.tracker, revisionsGVR) {
		if cr.Namespace != s.Namespace || !metav1.IsControlledBy(cr, s) {
			continue
		}
		if cr.Revision > maxRev {
			maxRev = cr.Revision
		}
		if string(cr.Data.Raw) == string(data) {
			match = cr
		}
	}
	if match == nil {
		match = &appsv1.ControllerRevision{
			ObjectMeta: metav1.ObjectMeta{Name: s.Name + "-" + templateHash(&s.Spec.Template), Namespace: s.Namespace,
				Labels:          s.Spec.Template.Labels,
				OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(s, appsv1.SchemeGroupVersion.WithKind("StatefulSet"))}},
			Data:     runtime.RawExtension{Raw: data},
			Revision: maxRev + 1,
		}
		if err := c.create(revisionsGVR, match); err != nil {
			return
		}
	} else if match.Revision < maxRev {
		match.Revision = maxRev + 1
		_ = c.store(revisionsGVR, match)
	}
	s.Status.ObservedGeneration = s.Generation
	if s.Status.UpdateRevision != match.Name {
		if s.Status.CurrentRevision == "" {
			s.Status.CurrentRevision = match.Name
		}
		s.Status.UpdateRevision = match.Name
		s.Status.UpdatedReplicas = 0
		if s.Status.CurrentRevision == match.Name {
			s.Status.UpdatedReplicas = s.Status.CurrentReplicas
		}
	}
	if tick {
		switch {
		case s.Status.Replicas < desired:
			s.Status.Replicas++
		case s.Status.Replicas > desired:
			s.Status.Replicas--
		}
		if s.Status.UpdatedReplicas > s.Status.Replicas {
			s.Status.UpdatedReplicas = s.Status.Replicas
		}
		if broken(&s.Spec.Template.Spec) {
			// the first updated pod never becomes Ready
			if s.Status.UpdatedReplicas == 0 && s.Status.Replicas > 0 {
				s.Status.UpdatedReplicas = 1
			}
			s.Status.ReadyReplicas = s.Status.Replicas - s.Status.UpdatedReplicas
		} else {
			if s.Status.UpdatedReplicas < s.Status.Replicas {
				s.Status.UpdatedReplicas++
			}
			s.Status.ReadyReplicas = s.Status.Replicas
			if s.Status.UpdatedReplicas == s.Status.Replicas && s.Status.Replicas == desired {
				s.Status.CurrentRevision = s.Status.UpdateRevision
			}
		}
		s.Status.AvailableReplicas = s.Status.ReadyReplicas
		if s.Status.CurrentRevision == s.Status.UpdateRevision {
			s.Status.CurrentReplicas = s.Status.UpdatedReplicas
		} else {
			s.Status.CurrentReplicas = s.Status.Replicas - s.Status.UpdatedReplicas
		}
		c.syncStatefulSetPods(s)
	}
	if !apiequality.Semantic.DeepEqual(orig.Status, s.Status) {
		_ = c.store(statefulSetsGVR, s)
	}
}

// syncJob is a small Job controller: started at once, Complete (or Failed, for a broken
// image or a CronJob set to fail) after the configured number of ticks.
func (c *Cluster) syncJob(j *batchv1.Job, tick bool) {
	for _, cond := range j.Status.Conditions {
		if (cond.Type == batchv1.JobComplete || cond.Type == batchv1.JobFailed) && cond.Status == corev1.ConditionTrue {
			return
		}
	}
	orig := j.DeepCopy()
	now := metav1.NewTime(c.now)
	key := j.Namespace + "/" + j.Name
	started := false
	if j.Status.StartTime == nil {
		j.Status.StartTime = &now
		j.Status.Active = 1
		j.Status.Ready = ptr(int32(0))
		started = true
	}
	if tick && !started {
		c.jobRuns[key]++
		if c.jobRuns[key] == 1 {
			j.Status.Ready = ptr(int32(1))
		}
		if c.jobRuns[key] >= c.jobTicks {
			fail, failing := [2]string{}, broken(&j.Spec.Template.Spec)
			if failing {
				fail = [2]string{"BackoffLimitExceeded", "Job has reached the specified backoff limit"}
			}
			if ref := metav1.GetControllerOf(j); ref != nil && ref.Kind == "CronJob" {
				if f, ok := c.failJobs[j.Namespace+"/"+ref.Name]; ok {
					fail, failing = f, true
				}
			}
			j.Status.Active, j.Status.Ready = 0, ptr(int32(0))
			if failing {
				j.Status.Failed = 1
				if j.Spec.BackoffLimit != nil {
					j.Status.Failed = *j.Spec.BackoffLimit + 1
				}
				j.Status.Conditions = append(j.Status.Conditions,
					batchv1.JobCondition{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: fail[0], Message: fail[1], LastProbeTime: now, LastTransitionTime: now},
					batchv1.JobCondition{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: fail[0], Message: fail[1], LastProbeTime: now, LastTransitionTime: now})
			} else {
				j.Status.Succeeded = 1
				j.Status.CompletionTime = &now
				j.Status.Conditions = append(j.Status.Conditions,
					batchv1.JobCondition{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, Reason: "CompletionsReached", Message: "Reached expected number of succeeded pods", LastProbeTime: now, LastTransitionTime: now},
					batchv1.JobCondition{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, Reason: "CompletionsReached", Message: "Reached expected number of succeeded pods", LastProbeTime: now, LastTransitionTime: now})
			}
		}
	}
	if !apiequality.Semantic.DeepEqual(orig.Status, j.Status) {
		_ = c.store(jobsGVR, j)
	}
}
