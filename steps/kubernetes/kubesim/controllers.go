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
	desired := desiredReplicas(d.Spec.Replicas)
	owned := c.ownedReplicaSets(d)
	orig := d.DeepCopy()
	now := metav1.NewTime(c.now)
	newRS, ok := c.newReplicaSet(d, owned, desired, now)
	if !ok {
		return
	}
	if d.Annotations == nil {
		d.Annotations = map[string]string{}
	}
	d.Annotations[RevisionAnnotation] = newRS.Annotations[RevisionAnnotation]
	d.Status.ObservedGeneration = d.Generation

	changed := false
	if tick && !d.Spec.Paused {
		scaledUp := c.scaleUpNewReplicaSet(newRS, desired)
		scaledDown := c.scaleDownOldReplicaSets(owned, newRS, desired)
		changed = scaledUp || scaledDown
	}
	if tick {
		// pods before the Deployment's status, so a client that sees the rollout complete
		// finds only the new pods
		c.syncRolloutPods(d.Namespace, owned, newRS)
	}
	setDeploymentReplicas(d, owned, newRS)
	setAvailableCondition(d, desired, now)
	c.setProgressingCondition(d, newRS, desired, changed, now)
	if !apiequality.Semantic.DeepEqual(orig.Status, d.Status) || !apiequality.Semantic.DeepEqual(orig.Annotations, d.Annotations) {
		// Available's lastUpdateTime alone is not worth an event
		if !changed && onlyTimesDiffer(orig, d) {
			return
		}
		_ = c.store(deploymentsGVR, d)
	}
}

// desiredReplicas is a spec's replicas, 1 when unset (the API server's default).
func desiredReplicas(replicas *int32) int32 {
	if replicas == nil {
		return 1
	}
	return *replicas
}

// ownedReplicaSets are the ReplicaSets the Deployment controls.
func (c *Cluster) ownedReplicaSets(d *appsv1.Deployment) []*appsv1.ReplicaSet {
	var owned []*appsv1.ReplicaSet
	for _, rs := range listAs[*appsv1.ReplicaSet](c.tracker, replicaSetsGVR) {
		if rs.Namespace == d.Namespace && metav1.IsControlledBy(rs, d) {
			owned = append(owned, rs)
		}
	}
	return owned
}

// newReplicaSet finds the ReplicaSet of the Deployment's template among the owned ones,
// adopting it with the next revision when it is an old one (a rollback), or creates it;
// either is recorded in the Progressing condition. ok is false when the create failed.
func (c *Cluster) newReplicaSet(d *appsv1.Deployment, owned []*appsv1.ReplicaSet, desired int32, now metav1.Time) (newRS *appsv1.ReplicaSet, ok bool) {
	var maxOld int64 // the highest revision of the other ReplicaSets
	for _, rs := range owned {
		if newRS == nil && equalIgnoreHash(&rs.Spec.Template, &d.Spec.Template) {
			newRS = rs
			continue
		}
		if r := revisionOf(rs); r > maxOld {
			maxOld = r
		}
	}
	reason, message := "", ""
	switch {
	case newRS == nil:
		newRS = newReplicaSetFor(d, desired, maxOld+1)
		if err := c.create(replicaSetsGVR, newRS); err != nil {
			return nil, false
		}
		reason, message = "NewReplicaSetCreated", fmt.Sprintf("Created new replica set %q", newRS.Name)
	case revisionOf(newRS) <= maxOld:
		// rollback (or a template seen before): adopt the old ReplicaSet as the new one
		renumberRevision(newRS, maxOld+1)
		_ = c.store(replicaSetsGVR, newRS)
		reason, message = "FoundNewReplicaSet", fmt.Sprintf("Found new replica set %q", newRS.Name)
	default:
		return newRS, true
	}
	d.Status.Conditions = setCondition(d.Status.Conditions, appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing,
		Status: corev1.ConditionTrue, Reason: reason, Message: message, LastUpdateTime: now, LastTransitionTime: now})
	return newRS, true
}

// newReplicaSetFor is the ReplicaSet of the Deployment's template at a revision, with no
// pods yet: named, labelled and selected by the template's hash, annotated as the real
// controller does (the Deployment's own annotations but its revisions and last applied
// configuration).
func newReplicaSetFor(d *appsv1.Deployment, desired int32, revision int64) *appsv1.ReplicaSet {
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
	ann[RevisionAnnotation] = strconv.FormatInt(revision, 10)
	ann[DesiredReplicasAnnotation] = strconv.Itoa(int(desired))
	ann[MaxReplicasAnnotation] = strconv.Itoa(int(desired + 1))
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name: d.Name + "-" + hash, Namespace: d.Namespace, Labels: tmpl.Labels, Annotations: ann,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, appsv1.SchemeGroupVersion.WithKind("Deployment"))},
		},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr(int32(0)), Selector: sel, Template: *tmpl},
	}
}

// renumberRevision gives an adopted ReplicaSet a new revision, appending its old one to
// its revision history.
func renumberRevision(rs *appsv1.ReplicaSet, revision int64) {
	ann := rs.Annotations
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
	ann[RevisionAnnotation] = strconv.FormatInt(revision, 10)
	rs.Annotations = ann
}

// scaleUpNewReplicaSet: all the new ReplicaSet's pods are created at once (surge), one
// more becomes available per tick. It says whether the ReplicaSet changed.
func (c *Cluster) scaleUpNewReplicaSet(newRS *appsv1.ReplicaSet, desired int32) bool {
	changed := false
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
	return changed
}

// scaleDownOldReplicaSets keeps only as many old pods as the new ReplicaSet still lacks,
// in the newest old ReplicaSets first: it sorts owned by revision, newest first, the order
// the pods are then synced in. It says whether any ReplicaSet changed.
func (c *Cluster) scaleDownOldReplicaSets(owned []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, desired int32) bool {
	allowed := max(desired-newRS.Status.AvailableReplicas, 0)
	sort.Slice(owned, func(i, j int) bool { return revisionOf(owned[i]) > revisionOf(owned[j]) })
	changed := false
	for _, rs := range owned {
		if rs.Name == newRS.Name {
			continue
		}
		keep := min(rs.Status.Replicas, allowed)
		allowed -= keep
		if rs.Spec.Replicas == nil || *rs.Spec.Replicas != keep || rs.Status.Replicas != keep {
			rs.Spec.Replicas = ptr(keep)
			rs.Status.Replicas, rs.Status.ReadyReplicas, rs.Status.AvailableReplicas, rs.Status.FullyLabeledReplicas = keep, keep, keep, keep
			_ = c.store(replicaSetsGVR, rs)
			changed = true
		}
	}
	return changed
}

// syncRolloutPods brings the pods of the old ReplicaSets, then of the new one, to their
// ReplicaSets' status.
func (c *Cluster) syncRolloutPods(ns string, owned []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) {
	pods := c.podsByOwner(ns)
	for _, rs := range owned {
		if rs.Name != newRS.Name {
			c.syncReplicaSetPods(rs, pods[rs.UID])
		}
	}
	c.syncReplicaSetPods(newRS, pods[newRS.UID])
}

// setDeploymentReplicas sums the ReplicaSets' replicas into the Deployment's status; the
// updated ones are the new ReplicaSet's.
func setDeploymentReplicas(d *appsv1.Deployment, owned []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) {
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
	d.Status.UnavailableReplicas = max(replicas-available, 0)
}

// setAvailableCondition: the Deployment is available when at most the default 25% of its
// pods (rounded down) are unavailable.
func setAvailableCondition(d *appsv1.Deployment, desired int32, now metav1.Time) {
	maxUnavailable := desired / 4
	cond := appsv1.DeploymentCondition{Type: appsv1.DeploymentAvailable,
		Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable", Message: "Deployment has minimum availability.",
		LastUpdateTime: now, LastTransitionTime: now}
	if d.Status.AvailableReplicas < desired-maxUnavailable {
		cond.Status, cond.Reason, cond.Message = corev1.ConditionFalse, "MinimumReplicasUnavailable", "Deployment does not have minimum availability."
	}
	d.Status.Conditions = setCondition(d.Status.Conditions, cond)
}

// setProgressingCondition says how the rollout goes: complete once every desired pod is
// an available new one, progressing while this sync changed a ReplicaSet, and past its
// deadline when nothing changed for longer than progressDeadlineSeconds.
func (c *Cluster) setProgressingCondition(d *appsv1.Deployment, newRS *appsv1.ReplicaSet, desired int32, changed bool, now metav1.Time) {
	st := d.Status
	complete := st.UpdatedReplicas == desired && st.Replicas == desired && st.AvailableReplicas == desired
	prog := getCondition(st.Conditions, appsv1.DeploymentProgressing)
	cond := appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, LastUpdateTime: now, LastTransitionTime: now}
	switch {
	case complete:
		if prog != nil && prog.Reason == "NewReplicaSetAvailable" {
			return
		}
		cond.Reason, cond.Message = "NewReplicaSetAvailable", fmt.Sprintf("ReplicaSet %q has successfully progressed.", newRS.Name)
	case changed:
		cond.Reason, cond.Message = "ReplicaSetUpdated", fmt.Sprintf("ReplicaSet %q is progressing.", newRS.Name)
	case c.pastProgressDeadline(d, prog):
		cond.Status = corev1.ConditionFalse
		cond.Reason, cond.Message = "ProgressDeadlineExceeded", fmt.Sprintf("ReplicaSet %q has timed out progressing.", newRS.Name)
	default:
		return
	}
	d.Status.Conditions = setCondition(d.Status.Conditions, cond)
}

// pastProgressDeadline: a rollout that is not paused made no progress for longer than
// its deadline, and has not been said to yet.
func (c *Cluster) pastProgressDeadline(d *appsv1.Deployment, prog *appsv1.DeploymentCondition) bool {
	return prog != nil && prog.Reason != "ProgressDeadlineExceeded" && d.Spec.ProgressDeadlineSeconds != nil && !d.Spec.Paused &&
		c.now.Sub(prog.LastUpdateTime.Time).Seconds() > float64(*d.Spec.ProgressDeadlineSeconds)
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
	desired := desiredReplicas(s.Spec.Replicas)
	rev, ok := c.updateRevision(s)
	if !ok {
		return
	}
	s.Status.ObservedGeneration = s.Generation
	if s.Status.UpdateRevision != rev.Name {
		// a new template: no pod runs it yet, unless it is the current one again
		if s.Status.CurrentRevision == "" {
			s.Status.CurrentRevision = rev.Name
		}
		s.Status.UpdateRevision = rev.Name
		s.Status.UpdatedReplicas = 0
		if s.Status.CurrentRevision == rev.Name {
			s.Status.UpdatedReplicas = s.Status.CurrentReplicas
		}
	}
	if tick {
		rollStatefulSet(&s.Status, desired, broken(&s.Spec.Template.Spec))
		c.syncStatefulSetPods(s)
	}
	if !apiequality.Semantic.DeepEqual(orig.Status, s.Status) {
		_ = c.store(statefulSetsGVR, s)
	}
}

// updateRevision is the ControllerRevision of the StatefulSet's template: an equal one
// renumbered to the latest revision when another is newer (a rollback), else a new one.
// ok is false when the template cannot be encoded or the revision not created.
func (c *Cluster) updateRevision(s *appsv1.StatefulSet) (rev *appsv1.ControllerRevision, ok bool) {
	data, err := statefulSetPatch(s)
	if err != nil {
		return nil, false
	}
	var maxRev int64
	for _, cr := range listAs[*appsv1.ControllerRevision](c.tracker, revisionsGVR) {
		if cr.Namespace != s.Namespace || !metav1.IsControlledBy(cr, s) {
			continue
		}
		if cr.Revision > maxRev {
			maxRev = cr.Revision
		}
		if string(cr.Data.Raw) == string(data) {
			rev = cr
		}
	}
	if rev == nil {
		rev = &appsv1.ControllerRevision{
			ObjectMeta: metav1.ObjectMeta{Name: s.Name + "-" + templateHash(&s.Spec.Template), Namespace: s.Namespace,
				Labels:          s.Spec.Template.Labels,
				OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(s, appsv1.SchemeGroupVersion.WithKind("StatefulSet"))}},
			Data:     runtime.RawExtension{Raw: data},
			Revision: maxRev + 1,
		}
		if err := c.create(revisionsGVR, rev); err != nil {
			return nil, false
		}
	} else if rev.Revision < maxRev {
		rev.Revision = maxRev + 1
		_ = c.store(revisionsGVR, rev)
	}
	return rev, true
}

// rollStatefulSet is one tick of a StatefulSet's rolling update: one pod more or less
// towards the desired count, one more pod updated and Ready (none, for a broken
// template: its first updated pod never becomes Ready), and the current revision caught
// up with the update revision once every desired pod is updated.
func rollStatefulSet(st *appsv1.StatefulSetStatus, desired int32, broken bool) {
	switch {
	case st.Replicas < desired:
		st.Replicas++
	case st.Replicas > desired:
		st.Replicas--
	}
	st.UpdatedReplicas = min(st.UpdatedReplicas, st.Replicas)
	if broken {
		if st.UpdatedReplicas == 0 && st.Replicas > 0 {
			st.UpdatedReplicas = 1
		}
		st.ReadyReplicas = st.Replicas - st.UpdatedReplicas
	} else {
		if st.UpdatedReplicas < st.Replicas {
			st.UpdatedReplicas++
		}
		st.ReadyReplicas = st.Replicas
		if st.UpdatedReplicas == st.Replicas && st.Replicas == desired {
			st.CurrentRevision = st.UpdateRevision
		}
	}
	st.AvailableReplicas = st.ReadyReplicas
	if st.CurrentRevision == st.UpdateRevision {
		st.CurrentReplicas = st.UpdatedReplicas
	} else {
		st.CurrentReplicas = st.Replicas - st.UpdatedReplicas
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
