package rehearsal

import (
	"sort"
	"strings"

	"github.com/cessda/runbook/steps/jenkins/jenkinssim"
	"github.com/cessda/runbook/steps/rehearsal/rehearse"
)

// The world's own seeders: what CESSDA's world makes of a playbook's steps (the CI jobs
// and the workloads running their builds, the deploy and rollback jobs, the people who
// answer gates and the developers who fill changelogs). They register as any simulator
// package's do; the CI jobs come first, since staging runs what they built last, and the
// Jenkins jobs last.
func init() {
	for _, sd := range []rehearse.Seeder{
		{Step: "jenkins.commit_build", Order: -1, New: func() rehearse.Seed { return &ciJobSeed{} }},
		{Step: "github.changelog", New: func() rehearse.Seed { return &changelogSeed{} }},
		{Step: "kubernetes.verify", New: func() rehearse.Seed { return &workloadsSeed{} }},
		{Step: "kubernetes.backup_job", New: func() rehearse.Seed { return &cronJobSeed{} }},
		{Step: "github.approval", New: func() rehearse.Seed { return &gateSeed{} }},
		{Step: "github.checklist", New: func() rehearse.Seed { return &tickSeed{} }},
		{Step: "jenkins.build", Order: 1, New: func() rehearse.Seed { return &jobSeed{} }},
	} {
		rehearse.RegisterSeeder(sd)
	}
}

// sandbox is the world a seeder acts on, when it is a rehearsal's.
func sandbox(sc *rehearse.SeedContext) (*Sandbox, bool) {
	s, ok := sc.World.(*Sandbox)
	return s, ok
}

// changelogSeed: the components whose CHANGELOG.md a release edits; developers record
// their work there.
type changelogSeed struct {
	Repo string `json:"repo"`
}

func (p *changelogSeed) Seed(sc *rehearse.SeedContext) error {
	if s, ok := sandbox(sc); ok && p.Repo != "" {
		s.changelogs = append(s.changelogs, p.Repo)
	}
	return nil
}

// ciJobSeed: a component's CI job, with a finished build of its current head that staging
// runs.
type ciJobSeed struct {
	Job   string `json:"job"`
	Repo  string `json:"repo"`
	Image string `json:"image"`
}

func (p *ciJobSeed) Seed(sc *rehearse.SeedContext) error {
	s, ok := sandbox(sc)
	if !ok {
		return nil
	}
	if p.Job == "" || p.Repo == "" || p.Image == "" {
		s.note("cannot seed the CI job of %s: job, repo or image known only after run", sc.Step.ID)
		return nil
	}
	image := imageName(p.Image)
	if tag := s.addCIJob(ciJob{job: p.Job, repo: p.Repo, image: image}); tag != "" {
		s.stagingTags[image] = tag
	}
	return nil
}

// workloadsSeed: the workloads a kubernetes.verify names (see seedWorkloads).
type workloadsSeed struct {
	Connection   string   `json:"connection"`
	Namespace    string   `json:"namespace"`
	Image        string   `json:"image"`
	ImageTag     string   `json:"image_tag"`
	Deployments  []string `json:"deployments"`
	StatefulSets []string `json:"statefulsets"`
}

func (p *workloadsSeed) Seed(sc *rehearse.SeedContext) error {
	s, ok := sandbox(sc)
	if !ok {
		return nil
	}
	if p.Namespace == "" {
		s.note("cannot seed %s: namespace known only after run", sc.Step.ID)
		return nil
	}
	conn := sc.Connection(p.Connection)
	for _, name := range p.Deployments {
		s.seedWorkload(conn, p, "deployment", name)
	}
	for _, name := range p.StatefulSets {
		s.seedWorkload(conn, p, "statefulset", name)
	}
	return nil
}

// seedWorkload creates a workload a kubernetes.verify names: on staging it runs its CI's
// last build (or the tag the step expects, for an image no CI job builds); on production
// the previous release.
func (s *Sandbox) seedWorkload(conn string, p *workloadsSeed, kind, name string) {
	key := conn + "/" + p.Namespace + "/" + kind + "/" + name
	if s.seen[key] {
		return
	}
	s.seen[key] = true
	cl := s.cluster(conn)
	img := imageName(p.Image)
	if img == "" {
		img = name
	}
	start := p.ImageTag
	switch {
	case s.isProduction(conn):
		start = previousTag
		s.Images.Push(Registry+img+":"+start, "image "+img+" of the previous release")
		s.prod = append(s.prod, workload{cluster: cl, ns: p.Namespace, kind: kind, nm: name, image: img, release: p.ImageTag})
	case s.stagingTags[img] != "":
		start = s.stagingTags[img]
		s.staging = append(s.staging, workload{cluster: cl, ns: p.Namespace, kind: kind, nm: name, image: img})
	case p.ImageTag == "":
		s.note("cannot seed %s %s: its image tag is known only after run and no CI job builds %s", kind, name, img)
		return
	}
	if kind == "deployment" {
		cl.AddDeployment(p.Namespace, name, Registry+img+":"+start, 2)
	} else {
		cl.AddStatefulSet(p.Namespace, name, Registry+img+":"+start, 2)
	}
}

// cronJobSeed: the CronJob a kubernetes.backup_job runs a job from.
type cronJobSeed struct {
	Connection string `json:"connection"`
	Namespace  string `json:"namespace"`
	CronJob    string `json:"cronjob"`
}

func (p *cronJobSeed) Seed(sc *rehearse.SeedContext) error {
	if s, ok := sandbox(sc); ok && p.Namespace != "" && p.CronJob != "" {
		s.cluster(sc.Connection(p.Connection)).AddCronJob(p.Namespace, p.CronJob, "0 2 * * *", Registry+p.CronJob+":latest")
	}
	return nil
}

// gateSeed: who answers a github.approval, with which commands.
type gateSeed struct {
	Role           string `json:"role"`
	ApproveCommand string `json:"approve_command"`
	RejectCommand  string `json:"reject_command"`
}

func (p *gateSeed) Seed(sc *rehearse.SeedContext) error {
	s, ok := sandbox(sc)
	if !ok {
		return nil
	}
	g := gate{role: p.Role, approve: p.ApproveCommand, reject: p.RejectCommand}
	if g.role == "" {
		g.role = "service_owner"
	}
	if g.approve == "" {
		g.approve = "/approve"
	}
	if g.reject == "" {
		g.reject = "/reject"
	}
	s.gates[g.approve] = g
	return nil
}

// tickSeed: the release-issue checklist item a github.checklist waits for a person to tick.
type tickSeed struct {
	Action string `json:"action"`
	Key    string `json:"key"`
	Text   string `json:"text"`
}

func (p *tickSeed) Seed(sc *rehearse.SeedContext) error {
	s, ok := sandbox(sc)
	switch {
	case !ok || p.Action != "wait":
	case p.Key != "":
		s.ticks = append(s.ticks, "runbook:item="+p.Key+" ")
	case p.Text != "":
		s.ticks = append(s.ticks, p.Text)
	}
	return nil
}

// jobSeed: a Jenkins job a jenkins.build runs. The deploy.prod job rolls production out
// to the version and the rollback job rolls it back (world.go); any other job just
// succeeds.
type jobSeed struct {
	Job        string         `json:"job"`
	Parameters map[string]any `json:"parameters"`
}

func (p *jobSeed) Seed(sc *rehearse.SeedContext) error {
	s, ok := sandbox(sc)
	if !ok || p.Job == "" {
		return nil
	}
	s.jobs = append(s.jobs, p.Job)
	names := make([]string, 0, len(p.Parameters))
	for k := range p.Parameters {
		names = append(names, k)
	}
	sort.Strings(names)
	// Every job takes the run marker jenkins.build sets, so a build this run started is
	// found again after a crash (as the README asks of real jobs).
	names = append(names, "RUNBOOK_RUN")
	deploy, rollback := strings.HasSuffix(p.Job, "deploy.prod"), strings.HasSuffix(p.Job, ".rollback")
	if p.Parameters == nil && (deploy || rollback) {
		// Its parameters come from earlier steps (the CI builds, the snapshot): the job
		// defines those the playbook says it takes.
		names = append(names, s.jobParameters()...)
	}
	params := make([]jenkinssim.Param, len(names))
	for i, n := range names {
		params[i] = jenkinssim.Param{Name: n}
	}
	job := jenkinssim.Job{Path: p.Job, Params: params}
	switch {
	case deploy:
		job.Script = s.deployScript
	case rollback:
		job.Script = s.rollbackScript
	}
	s.Jenkins.AddJob(job)
	return nil
}
