package kubernetes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/cessda/runbook/engine"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// BackupJob runs a CronJob's job now, like `kubectl create job --from=cronjob/NAME`, and
// waits for it.
type BackupJob struct {
	Connection string          `json:"connection" desc:"the kubernetes connection (cluster and context)"`
	Namespace  string          `json:"namespace" required:"true" desc:"namespace of the CronJob"`
	CronJob    string          `json:"cronjob" required:"true" desc:"name of the CronJob whose job template to run (e.g. the database backup)"`
	JobName    string          `json:"job_name" desc:"name of the Job to create (default: <cronjob>-runbook-<hash of run and step>, the same on every attempt of this run)"`
	Timeout    engine.Duration `json:"timeout" default:"1h" desc:"how long to wait for the Job to complete"`
}

// InstantiateAnnotation marks a Job created by hand from a CronJob, as kubectl does.
const InstantiateAnnotation = "cronjob.kubernetes.io/instantiate"

func init() {
	engine.Register(engine.StepType{
		Name:       "kubernetes.backup_job",
		Summary:    "create a Job from a CronJob's template (kubectl create job --from=cronjob/X) and wait for it to complete",
		Connection: ConnectionType,
		New:        func() engine.Step { return &BackupJob{} },
		Outputs: []engine.Output{
			{Name: "job_name", Type: engine.TypeString, Desc: "name of the Job"},
			{Name: "duration", Type: engine.TypeString, Desc: "how long the Job ran (completionTime - startTime), e.g. 4m10s"},
		},
		Doc: "The Job gets the annotation cronjob.kubernetes.io/instantiate=manual, the job template's labels and annotations, and an " +
			"ownerReference to the CronJob. A Failed condition fails the step with the Job's reason and message. " +
			"The Job's name is recorded before it is created, so a retry or resume follows the same Job instead of starting a second backup.",
	})
}

func (p *BackupJob) name(sc *engine.StepContext) string {
	if p.JobName != "" {
		return p.JobName
	}
	// the same on every attempt of this step in this run; distinct per foreach item
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%s/%s/%s/%v", sc.RunID, sc.StepID, p.Namespace, p.CronJob, sc.Item)))
	base := p.CronJob
	if len(base) > 63-len("-runbook-")-10 {
		base = strings.TrimRight(base[:63-len("-runbook-")-10], "-.")
	}
	return base + "-runbook-" + hex.EncodeToString(sum[:])[:10]
}

type jobRecord struct {
	Job     string `json:"job"`
	CronJob string `json:"cronjob"`
}

func (p *BackupJob) jobName(sc *engine.StepContext) string {
	var rec jobRecord
	if sc.Recall("job", &rec) && rec.Job != "" && rec.CronJob == p.CronJob {
		return rec.Job
	}
	return p.name(sc)
}

// Plan checks that the CronJob exists and whether this run's Job is already there.
func (p *BackupJob) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	conn, err := sc.Connection(p.Connection, ConnectionType)
	if err != nil {
		return engine.Plan{}, err
	}
	name := p.jobName(sc)
	plan := engine.Plan{Action: fmt.Sprintf("create job %s from cronjob %s/%s and wait for it to complete (timeout %s)",
		name, sc.Show("namespace", p.Namespace), sc.Show("cronjob", p.CronJob), p.Timeout)}
	if sc.Unknown("namespace") || sc.Unknown("cronjob") || sc.Unknown("job_name") {
		return plan, nil
	}
	cs, where, err := client(conn)
	if err != nil {
		return engine.Plan{}, err
	}
	cj, err := cs.BatchV1().CronJobs(p.Namespace).Get(ctx, p.CronJob, metav1.GetOptions{})
	if err != nil {
		return engine.Plan{}, apiError(err, "get cronjob "+p.Namespace+"/"+p.CronJob, where)
	}
	plan.Details = append(plan.Details, fmt.Sprintf("cronjob schedule %q, images %s", cj.Spec.Schedule, strings.Join(images(cj.Spec.JobTemplate.Spec.Template.Spec.Containers), ", ")))
	if j, err := cs.BatchV1().Jobs(p.Namespace).Get(ctx, name, metav1.GetOptions{}); err == nil {
		plan.Action = fmt.Sprintf("follow job %s/%s, already created by this run", p.Namespace, name)
		if ok, _, _ := jobFinished(j); ok {
			plan.NoChange = true
		}
	}
	return plan, nil
}

// Run creates the Job (once per run) and waits for Complete or Failed.
func (p *BackupJob) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	conn, err := sc.Connection(p.Connection, ConnectionType)
	if err != nil {
		return nil, err
	}
	cs, where, err := client(conn)
	if err != nil {
		return nil, err
	}
	name := p.jobName(sc)
	jobs := cs.BatchV1().Jobs(p.Namespace)
	what := "job " + p.Namespace + "/" + name
	j, err := jobs.Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		if !ownedBy(j, p.CronJob) {
			return nil, fmt.Errorf("kubernetes: %s exists but was not created from cronjob %s: choose another job_name", what, p.CronJob)
		}
		sc.Logf("following %s, created earlier by this run", what)
	case apierrors.IsNotFound(err):
		cj, err := cs.BatchV1().CronJobs(p.Namespace).Get(ctx, p.CronJob, metav1.GetOptions{})
		if err != nil {
			return nil, apiError(err, "get cronjob "+p.Namespace+"/"+p.CronJob, where)
		}
		if err := sc.Record("job", jobRecord{Job: name, CronJob: p.CronJob}); err != nil {
			return nil, err
		}
		j, err = jobs.Create(ctx, jobFromCronJob(cj, name), metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			j, err = jobs.Get(ctx, name, metav1.GetOptions{})
		}
		if err != nil {
			return nil, apiError(err, "create "+what, where)
		}
		sc.Logf("created %s from cronjob %s", what, p.CronJob)
	default:
		return nil, apiError(err, "get "+what, where)
	}

	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	obj, err := watchUntil(ctx, sc, what, p.Timeout.D(),
		func(ctx context.Context) (runtime.Object, error) {
			j, err := jobs.Get(ctx, name, metav1.GetOptions{})
			return j, apiError(err, "get "+what, where)
		},
		func(ctx context.Context, rv string) (watch.Interface, error) {
			w, err := jobs.Watch(ctx, metav1.ListOptions{FieldSelector: sel, ResourceVersion: rv})
			return w, apiError(err, "watch "+what, where)
		}, name,
		func(obj runtime.Object) (bool, string, error) {
			j := obj.(*batchv1.Job)
			done, failed, msg := jobFinished(j)
			if failed {
				return false, "", fmt.Errorf("kubernetes: %s failed: %s: check the job's pod logs (kubectl logs -n %s job/%s)", what, msg, p.Namespace, name)
			}
			if done {
				return true, fmt.Sprintf("%s complete", what), nil
			}
			return false, fmt.Sprintf("%s: %d active, %d succeeded, %d failed", what, j.Status.Active, j.Status.Succeeded, j.Status.Failed), nil
		})
	if err != nil {
		return nil, err
	}
	j = obj.(*batchv1.Job)
	duration := ""
	if j.Status.StartTime != nil && j.Status.CompletionTime != nil {
		duration = j.Status.CompletionTime.Sub(j.Status.StartTime.Time).String()
	}
	return engine.Outputs{"job_name": name, "duration": duration}, nil
}

// jobFinished reads the Job's terminal conditions.
func jobFinished(j *batchv1.Job) (done, failed bool, msg string) {
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			return true, false, ""
		case batchv1.JobFailed:
			return true, true, strings.TrimSuffix(c.Reason+": "+c.Message, ": ")
		}
	}
	return false, false, ""
}

func ownedBy(j *batchv1.Job, cronJob string) bool {
	for _, r := range j.OwnerReferences {
		if r.Kind == "CronJob" && r.Name == cronJob {
			return true
		}
	}
	return false
}

// jobFromCronJob builds the Job as `kubectl create job NAME --from=cronjob/CRONJOB` does.
func jobFromCronJob(cj *batchv1.CronJob, name string) *batchv1.Job {
	annotations := map[string]string{InstantiateAnnotation: "manual"}
	for k, v := range cj.Spec.JobTemplate.Annotations {
		annotations[k] = v
	}
	yes := true
	return &batchv1.Job{
		TypeMeta: metav1.TypeMeta{APIVersion: batchv1.SchemeGroupVersion.String(), Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Namespace:   cj.Namespace,
			Annotations: annotations,
			Labels:      cj.Spec.JobTemplate.Labels,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: batchv1.SchemeGroupVersion.String(),
				Kind:       "CronJob",
				Name:       cj.Name,
				UID:        cj.UID,
				Controller: &yes,
			}},
		},
		Spec: *cj.Spec.JobTemplate.Spec.DeepCopy(),
	}
}
