package kubesim

import (
	"context"
	"fmt"
	"path"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// containerName is what `kubectl create deployment --image` names the container: the
// image's repository basename.
func containerName(image string) string {
	base := path.Base(image)
	if i := strings.IndexAny(base, ":@"); i > 0 {
		base = base[:i]
	}
	return base
}

func template(image string, labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{
			Containers:    []corev1.Container{{Name: containerName(image), Image: image, ImagePullPolicy: corev1.PullIfNotPresent}},
			RestartPolicy: corev1.RestartPolicyAlways,
		},
	}
}

// AddDeployment seeds a Deployment already rolled out to image (revision 1, all replicas
// available). labels are "key=value"; app.kubernetes.io/name=<name> is always set and is
// the selector. A name that exists is left alone.
func (c *Cluster) AddDeployment(ns, name, image string, replicas int32, labels ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.tracker.Get(deploymentsGVR, ns, name); err == nil {
		return
	}
	l := parseLabels(name, labels)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: l},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": name}},
			Template: template(image, l),
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxUnavailable: ptr(intstr.FromString("25%")), MaxSurge: ptr(intstr.FromString("25%"))}},
			RevisionHistoryLimit:    ptr(int32(10)),
			ProgressDeadlineSeconds: ptr(int32(600)),
		},
	}
	if err := c.create(deploymentsGVR, d); err != nil {
		panic(fmt.Sprintf("kubesim: add deployment: %v", err))
	}
	c.settle(func(tick bool) bool {
		obj, err := c.tracker.Get(deploymentsGVR, ns, name)
		if err != nil {
			return true
		}
		d := obj.(*appsv1.Deployment)
		c.syncDeployment(d, tick)
		obj, _ = c.tracker.Get(deploymentsGVR, ns, name)
		d = obj.(*appsv1.Deployment)
		return d.Status.AvailableReplicas == replicas && d.Status.UpdatedReplicas == replicas && d.Status.Replicas == replicas
	})
}

// settle runs a seeding sync until done, without moving the simulated clock.
func (c *Cluster) settle(sync func(tick bool) bool) {
	for i := 0; i < 1000; i++ {
		if sync(i > 0) {
			return
		}
	}
}

// AddStatefulSet seeds a StatefulSet (RollingUpdate, partition 0 as the API server
// defaults) already rolled out to image, with its first ControllerRevision.
func (c *Cluster) AddStatefulSet(ns, name, image string, replicas int32, labels ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.tracker.Get(statefulSetsGVR, ns, name); err == nil {
		return
	}
	l := parseLabels(name, labels)
	s := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: l},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr(replicas),
			Selector:    &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": name}},
			Template:    template(image, l),
			ServiceName: name,
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr(int32(0))}},
			PodManagementPolicy:  appsv1.OrderedReadyPodManagement,
			RevisionHistoryLimit: ptr(int32(10)),
		},
	}
	if err := c.create(statefulSetsGVR, s); err != nil {
		panic(fmt.Sprintf("kubesim: add statefulset: %v", err))
	}
	c.settle(func(tick bool) bool {
		obj, err := c.tracker.Get(statefulSetsGVR, ns, name)
		if err != nil {
			return true
		}
		c.syncStatefulSet(obj.(*appsv1.StatefulSet), tick)
		obj, _ = c.tracker.Get(statefulSetsGVR, ns, name)
		s := obj.(*appsv1.StatefulSet)
		return s.Status.ReadyReplicas == replicas && s.Status.UpdatedReplicas == replicas && s.Status.CurrentRevision == s.Status.UpdateRevision
	})
}

// AddCronJob seeds a CronJob whose job template runs image (e.g. a backup). The simulation
// never schedules it; jobs are made from it with `kubectl create job --from` semantics.
func (c *Cluster) AddCronJob(ns, name, schedule, image string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.tracker.Get(cronJobsGVR, ns, name); err == nil {
		return
	}
	l := parseLabels(name, nil)
	tmpl := template(image, l)
	tmpl.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: l},
		Spec: batchv1.CronJobSpec{
			Schedule:          schedule,
			ConcurrencyPolicy: batchv1.ForbidConcurrent,
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: l},
				Spec:       batchv1.JobSpec{BackoffLimit: ptr(int32(2)), Template: tmpl},
			},
		},
	}
	if err := c.create(cronJobsGVR, cj); err != nil {
		panic(fmt.Sprintf("kubesim: add cronjob: %v", err))
	}
}

// SetImage is `kubectl set image <kind>/<name> <container>=<image>`: it changes the pod
// template through the API (so generation moves and the controllers roll it out). An empty
// container or "*" sets every container. kind is "deployment" or "statefulset". With
// auto-create, an unknown workload is created first. This is how a rehearsal's deploy job
// deploys.
func (c *Cluster) SetImage(ns, kind, name, container, image string) error {
	ctx := context.Background()
	apps := c.admin.AppsV1() // a deploy job or a person, not the client under test
	set := func(spec *corev1.PodSpec) error {
		found := false
		for i := range spec.Containers {
			if container == "" || container == "*" || spec.Containers[i].Name == container {
				spec.Containers[i].Image = image
				found = true
			}
		}
		if !found {
			return fmt.Errorf("kubesim: %s %s/%s has no container %q", kind, ns, name, container)
		}
		return nil
	}
	switch strings.ToLower(kind) {
	case "deployment", "deployments", "deploy":
		d, err := apps.Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if err := set(&d.Spec.Template.Spec); err != nil {
			return err
		}
		_, err = apps.Deployments(ns).Update(ctx, d, metav1.UpdateOptions{})
		return err
	case "statefulset", "statefulsets", "sts":
		s, err := apps.StatefulSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if err := set(&s.Spec.Template.Spec); err != nil {
			return err
		}
		_, err = apps.StatefulSets(ns).Update(ctx, s, metav1.UpdateOptions{})
		return err
	}
	return fmt.Errorf("kubesim: set image: unsupported kind %q", kind)
}
