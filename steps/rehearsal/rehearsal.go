// Package rehearsal runs a real playbook end to end against the built-in simulators of
// every service (GitHub, Kubernetes, Jenkins, Zenodo, SMTP, chat, public URLs), in one
// process, with simulated people answering the gates. It is the embedded default a new
// user runs first, and the backbone of the end-to-end tests.
//
// The world is seeded from the playbook's own plan: the workloads its kubernetes.verify
// steps name (staging already runs the build to promote; production runs an older one),
// the Jenkins jobs its jenkins.build steps call (deploy.prod rolls production out to the
// version; rollback rolls it back), the CronJobs of its backup jobs. Repositories, issues
// and other jobs are created on first use.
package rehearsal

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/steps/github/githubsim"
	"github.com/cessda/runbook/steps/httpcheck/httpchecksim"
	"github.com/cessda/runbook/steps/jenkins/jenkinssim"
	"github.com/cessda/runbook/steps/kubernetes/kubesim"
	"github.com/cessda/runbook/steps/notify/chatsim"
	"github.com/cessda/runbook/steps/notify/smtpsim"
	"github.com/cessda/runbook/steps/zenodo/zenodosim"
)

// Answers are what the simulated people say.
type Answers struct {
	// Refuse makes the service owner refuse the release at the approval gate, with this reason.
	Refuse string
	// Revert makes the service owner answer the post-deployment gate with a revert, with
	// this reason (production looks wrong to them).
	Revert string
	// Broken makes the deploy job roll out a build that never becomes ready, so the
	// production verification fails and the revert path runs.
	Broken bool
	// LatePush makes a developer push another commit to this repository's main branch
	// right after the release's changelog commit: CI builds it and staging runs it, so
	// staging no longer runs the build of the tagged commit.
	LatePush string
	// BadRollback makes the rollback job deploy main-latest instead of the tags it is
	// given, so production is not back on the previous release after the revert.
	BadRollback bool
	// OpenSubtasks: the people never conclude the pre-release activities (release notes,
	// documentation): their subtask issues stay open.
	OpenSubtasks bool
	// EmptyMilestone: no closed issue or merged pull request is in the version's
	// milestone, so the release notes would be empty.
	EmptyMilestone bool
	// Silent: the simulated people never answer a gate: they do not comment on approval
	// requests, tick checklist items or close subtask issues. Whoever drives the sandbox
	// does it in their place, through the control endpoint (POST /people/...), as the
	// people would in the browser. The developers still work (the milestone, pushes).
	Silent bool
}

// The credentials of the simulated services, handed out by Connect.
const (
	githubToken = "rehearsal-github-token"
	zenodoToken = "rehearsal-zenodo-token"
)

// Sandbox is the simulated world of one rehearsal.
type Sandbox struct {
	GitHub   *githubsim.Server
	Jenkins  *jenkinssim.Server
	Zenodo   *zenodosim.Server
	SMTP     *smtpsim.Server
	Chat     *chatsim.Server
	Public   *httpchecksim.Server
	Clusters map[string]*kubesim.Cluster // by connection name
	Images   *kubesim.Registry           // the image registry every cluster pulls from
	Clock    engine.Clock

	pb      *engine.Playbook
	answers Answers
	prod    []workload       // production workloads, for the deploy and rollback jobs
	staging []workload       // staging workloads, which CI deploys to
	ci      map[string]ciJob // the components' CI jobs, by job path
	// latePushed: Answers.LatePush happened.
	latePushed bool
	// paramImage maps the deploy and rollback jobs' image-tag parameters to images;
	// extraParams are their other parameters.
	paramImage  map[string]string
	extraParams []string
	gates       map[string]gate
	ticks       []string // checklist item keys people tick (github.checklist wait gates)
	changelogs  []string // repositories whose CHANGELOG.md the release edits
	jobs        []string // Jenkins jobs the playbook runs
	mu          sync.Mutex
	log         []string
}

type workload struct {
	cluster      *kubesim.Cluster
	ns, kind, nm string
	image        string // the image's name, e.g. cvs-frontend (in Registry)
	release      string // the tag production should run after the release
}

// waitItems are the release-issue checklist items that gates wait for a person to tick.
type gate struct {
	role            string
	approve, reject string
}

// Option configures a Sandbox.
type Option func(*Sandbox)

// WithClock makes every simulator keep this time (a sandbox process shares an
// engine.OffsetClock with its runs). The default is a FakeClock: waits cost nothing.
func WithClock(c engine.Clock) Option { return func(s *Sandbox) { s.Clock = c } }

// New builds the world for a playbook and its inputs.
func New(ctx context.Context, pb *engine.Playbook, inputs map[string]any, ans Answers, opts ...Option) (*Sandbox, error) {
	s := &Sandbox{pb: pb, answers: ans, Clusters: map[string]*kubesim.Cluster{}, gates: map[string]gate{},
		Images: kubesim.NewRegistry(), ci: map[string]ciJob{}}
	for _, o := range opts {
		o(s)
	}
	if s.Clock == nil {
		s.Clock = engine.NewFakeClock(time.Now().UTC().Truncate(time.Second))
	}
	clock := s.Clock
	var err error
	// Each simulator accepts only the credential the rehearsal hands out (see Connect), as
	// the real service does: a wrong or missing secret in a sandbox run is refused.
	s.GitHub = githubsim.New(githubsim.WithAutoCreate(), githubsim.WithClock(clock), githubsim.WithToken(githubToken))
	s.Jenkins = jenkinssim.New(jenkinssim.WithClock(clock), jenkinssim.WithAutoCreate())
	s.Zenodo = zenodosim.New(zenodosim.WithToken(zenodoToken, 1), zenodosim.WithClock(clock.Now))
	if s.SMTP, err = smtpsim.New(smtpsim.WithAuth("runbook", "rehearsal-password")); err != nil {
		s.Close()
		return nil, err
	}
	s.Chat = chatsim.New(chatsim.WithAutoCreate())
	s.Public = httpchecksim.New(httpchecksim.WithAutoCreate())

	plan, err := engine.BuildPlan(ctx, pb, inputs, engine.PlanOptions{Offline: true, Mode: "rehearsal", Clock: clock})
	if err != nil {
		s.Close()
		return nil, err
	}
	if err := s.seed(plan); err != nil {
		s.Close()
		return nil, err
	}
	s.GitHub.AutoRespond(s.respond)
	return s, nil
}

// cluster returns the simulated cluster behind a kubernetes connection.
func (s *Sandbox) cluster(name string) *kubesim.Cluster {
	if c, ok := s.Clusters[name]; ok {
		return c
	}
	c := kubesim.New(kubesim.WithStart(s.Clock.Now()), kubesim.WithRegistry(s.Images))
	s.Clusters[name] = c
	return c
}

func (s *Sandbox) isProduction(conn string) bool {
	for _, c := range s.pb.Connections {
		if c.Name == conn {
			return strings.Contains(c.Settings["context"], "prod") || strings.Contains(c.Name, "prod")
		}
	}
	return strings.Contains(conn, "prod")
}

func (s *Sandbox) connName(params map[string]any, typ string) string {
	if n, ok := params["connection"].(string); ok && n != "" {
		return n
	}
	var of []string
	for _, c := range s.pb.Connections {
		if c.Type == typ {
			of = append(of, c.Name)
		}
	}
	if len(of) == 1 {
		return of[0]
	}
	return typ
}

func known(v any) bool {
	s, ok := v.(string)
	return !ok || s != engine.KnownAfterRun
}

func intOf(v any) int {
	switch x := v.(type) {
	case int:
		return x
	case int64:
		return int(x)
	case float64:
		return int(x)
	}
	return 0
}

func strList(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, x := range l {
		if s, ok := x.(string); ok && s != engine.KnownAfterRun {
			out = append(out, s)
		}
	}
	return out
}

// seed creates the workloads, CronJobs and jobs the playbook's plan names.
func (s *Sandbox) seed(plan *engine.PlanDoc) error {
	seen := map[string]bool{}
	// The components whose CHANGELOG.md a release edits: developers record their work there.
	for _, ps := range plan.Steps {
		if ps.Type != "github.changelog" {
			continue
		}
		for _, ip := range itemParams(ps) {
			if repo, _ := ip["repo"].(string); known(repo) && repo != "" {
				s.changelogs = append(s.changelogs, repo)
			}
		}
	}
	s.deployParameters(plan.Vars)
	// The components' CI jobs first: staging runs what they built last.
	stagingTags := map[string]string{} // image -> tag of its CI's last build
	for _, ps := range plan.Steps {
		if ps.Type != "jenkins.commit_build" {
			continue
		}
		for _, ip := range itemParams(ps) {
			job, _ := ip["job"].(string)
			repo, _ := ip["repo"].(string)
			image, _ := ip["image"].(string)
			if !known(job) || !known(repo) || !known(image) || job == "" || repo == "" || image == "" {
				s.note("cannot seed the CI job of %s: job, repo or image known only after run", ps.ID)
				continue
			}
			image = imageName(image)
			if tag := s.addCIJob(ciJob{job: job, repo: repo, image: image}); tag != "" {
				stagingTags[image] = tag
			}
		}
	}
	for _, ps := range plan.Steps {
		p := ps.Params
		switch ps.Type {
		case "kubernetes.verify":
			for _, ip := range itemParams(ps) {
				s.seedWorkloads(ps.ID, ip, stagingTags, seen)
			}
		case "kubernetes.backup_job":
			ns, _ := p["namespace"].(string)
			cj, _ := p["cronjob"].(string)
			if ns != "" && cj != "" && known(ns) && known(cj) {
				s.cluster(s.connName(p, "kubernetes")).AddCronJob(ns, cj, "0 2 * * *", Registry+cj+":latest")
			}
		case "github.approval":
			role, _ := p["role"].(string)
			if role == "" {
				role = "service_owner"
			}
			g := gate{role: role, approve: "/approve", reject: "/reject"}
			if c, ok := p["approve_command"].(string); ok && c != "" {
				g.approve = c
			}
			if c, ok := p["reject_command"].(string); ok && c != "" {
				g.reject = c
			}
			s.gates[g.approve] = g
		case "zenodo.reserve_doi":
			// The product's existing Zenodo concept (its earlier versions), so the release
			// becomes a new version of it.
			all := ps.ItemParams
			if len(all) == 0 {
				all = []map[string]any{p}
			}
			for _, ip := range all {
				id := intOf(ip["concept_id"])
				if id > 0 && !seen[fmt.Sprint("zenodo/", id)] {
					seen[fmt.Sprint("zenodo/", id)] = true
					title, _ := ip["title"].(string)
					s.Zenodo.AddPublished(zenodosim.Published{ConceptID: id, Title: title, Version: "0.0.0-previous"})
				}
			}
		case "github.checklist":
			if a, _ := p["action"].(string); a == "wait" {
				if k, _ := p["key"].(string); k != "" && known(k) {
					s.ticks = append(s.ticks, "runbook:item="+k+" ")
				} else if t, _ := p["text"].(string); t != "" && known(t) {
					s.ticks = append(s.ticks, t)
				}
			}
		}
	}
	for _, ps := range plan.Steps {
		if ps.Type != "jenkins.build" {
			continue
		}
		job, _ := ps.Params["job"].(string)
		if job == "" || !known(job) {
			continue
		}
		s.jobs = append(s.jobs, job)
		var params []jenkinssim.Param
		if m, ok := ps.Params["parameters"].(map[string]any); ok {
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				params = append(params, jenkinssim.Param{Name: k})
			}
		}
		// Every job takes the run marker jenkins.build sets, so a build this run started is
		// found again after a crash (as the README asks of real jobs).
		params = append(params, jenkinssim.Param{Name: "RUNBOOK_RUN"})
		deployOrRollback := strings.HasSuffix(job, "deploy.prod") || strings.HasSuffix(job, ".rollback")
		if _, known := ps.Params["parameters"].(map[string]any); !known && deployOrRollback {
			// Its parameters come from earlier steps (the CI builds, the snapshot): the
			// job defines those the playbook says it takes.
			for _, k := range s.jobParameters() {
				params = append(params, jenkinssim.Param{Name: k})
			}
		}
		switch {
		case strings.HasSuffix(job, "deploy.prod"):
			s.Jenkins.AddJob(jenkinssim.Job{Path: job, Params: params, Script: s.deployScript})
		case strings.HasSuffix(job, ".rollback"):
			s.Jenkins.AddJob(jenkinssim.Job{Path: job, Params: params, Script: s.rollbackScript})
		default:
			s.Jenkins.AddJob(jenkinssim.Job{Path: job, Params: params})
		}
	}
	return nil
}

// seedWorkloads creates the workloads a kubernetes.verify names: on staging they run
// their CI's last build (or the tag the step expects, for an image no CI job builds); on
// production the previous release.
func (s *Sandbox) seedWorkloads(id string, p map[string]any, stagingTags map[string]string, seen map[string]bool) {
	ns, _ := p["namespace"].(string)
	tag, _ := p["image_tag"].(string)
	if ns == "" || !known(ns) {
		s.note("cannot seed %s: namespace known only after run", id)
		return
	}
	conn := s.connName(p, "kubernetes")
	cl := s.cluster(conn)
	prod := s.isProduction(conn)
	image, _ := p["image"].(string)
	if !known(image) {
		image = ""
	}
	for kind, names := range map[string][]string{"deployment": strList(p["deployments"]), "statefulset": strList(p["statefulsets"])} {
		for _, name := range names {
			img := imageName(image)
			if img == "" {
				img = name
			}
			key := conn + "/" + ns + "/" + kind + "/" + name
			if seen[key] {
				continue
			}
			seen[key] = true
			start := tag
			switch {
			case prod:
				start = previousTag
				s.Images.Push(Registry+img+":"+start, "image "+img+" of the previous release")
				w := workload{cluster: cl, ns: ns, kind: kind, nm: name, image: img, release: tag}
				if !known(tag) {
					w.release = ""
				}
				s.prod = append(s.prod, w)
			case stagingTags[img] != "":
				start = stagingTags[img]
				s.staging = append(s.staging, workload{cluster: cl, ns: ns, kind: kind, nm: name, image: img})
			case tag == "" || !known(tag):
				s.note("cannot seed %s %s: its image tag is known only after run and no CI job builds %s", kind, name, img)
				continue
			}
			if kind == "deployment" {
				cl.AddDeployment(ns, name, Registry+img+":"+start, 2)
			} else {
				cl.AddStatefulSet(ns, name, Registry+img+":"+start, 2)
			}
		}
	}
}

// itemParams are a step's parameters, once per foreach item.
func itemParams(ps *engine.PlannedStep) []map[string]any {
	if len(ps.ItemParams) > 0 {
		return ps.ItemParams
	}
	return []map[string]any{ps.Params}
}

// imageName is an image reference's name: its last path element, without tag or digest.
func imageName(ref string) string {
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		ref = ref[i+1:]
	}
	if i := strings.IndexAny(ref, ":@"); i >= 0 {
		ref = ref[:i]
	}
	return ref
}

var requestRE = regexp.MustCompile(`cmd=(/\S+)`)

// respond is the simulated people: they answer the approval requests posted in the
// release issue.
func (s *Sandbox) respond(ev githubsim.Event) {
	if ev.Kind == "issue_created" && strings.Contains(ev.Body, "runbook:subtask=") {
		// The people do the pre-release activity (the release notes, the documentation)
		// and close its issue.
		if !s.ans().OpenSubtasks && !s.ans().Silent {
			if err := s.GitHub.CloseIssue(ev.Repo, ev.Issue, "completed"); err == nil {
				s.note("closed subtask %s#%d", ev.Repo, ev.Issue)
			}
		}
		return
	}
	if ev.Kind == "issue_created" && strings.Contains(ev.Body, "runbook:release-issue") {
		if is, ok := s.GitHub.GetIssue(ev.Repo, ev.Issue); ok && is.Milestone != "" {
			s.develop(ev.Repo, is.Milestone)
		}
		// The people who must check things by hand (backups, upgrade procedures) do so
		// and tick their items.
		if s.ans().Silent {
			return
		}
		for _, item := range s.ticks {
			if strings.Contains(ev.Body, item) {
				if err := s.GitHub.TickCheckbox(ev.Repo, ev.Issue, item); err == nil {
					s.note("ticked %q in %s#%d", item, ev.Repo, ev.Issue)
				}
			}
		}
		return
	}
	if ev.Kind == "push" {
		s.onPush(ev.Repo, ev.Title, ev.Body)
		if strings.EqualFold(ev.Repo, s.ans().LatePush) && !s.latePushed {
			s.latePushed = true
			sha := s.GitHub.Commit(ev.Repo, ev.Title, "A late fix", map[string]string{"LATE.md": "pushed after the release commit\n"})
			s.note("a developer pushes %s to %s", short(sha), ev.Repo)
			s.onPush(ev.Repo, ev.Title, sha)
		}
		return
	}
	if ev.Kind != "comment_created" || !strings.Contains(ev.Body, "approval-request") || s.ans().Silent {
		return
	}
	m := requestRE.FindStringSubmatch(ev.Body)
	if m == nil {
		return
	}
	g, ok := s.gates[m[1]]
	if !ok {
		g = gate{role: "service_owner", approve: m[1], reject: "/reject"}
	}
	who := "service-owner"
	if people := s.pb.Roles[g.role]; len(people) > 0 {
		who = people[0]
	}
	answer := g.approve
	switch {
	case g.approve == "/approve" && s.ans().Refuse != "":
		answer = g.reject + " " + s.ans().Refuse
	case g.approve != "/approve" && s.ans().Revert != "":
		answer = g.reject + " " + s.ans().Revert
	}
	s.note("%s answers %q in %s#%d", who, answer, ev.Repo, ev.Issue)
	if _, err := s.GitHub.Comment(ev.Repo, ev.Issue, who, answer); err != nil {
		s.note("answer failed: %v", err)
	}
}

// Answer changes what the simulated people answer from now on: the next attempt of a
// release, after the first was refused or reverted.
func (s *Sandbox) Answer(ans Answers) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answers = ans
}

// ans is what the people answer now.
func (s *Sandbox) ans() Answers {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.answers
}

func (s *Sandbox) note(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, fmt.Sprintf(format, args...))
}

// Notes returns what the sandbox did on its own (seeding, people's answers).
func (s *Sandbox) Notes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

// Connect points a playbook's connection at the simulator of its type.
func (s *Sandbox) Connect(d *engine.ConnectionDecl) (*engine.Connection, error) {
	c := d.Connection()
	c.TokenEnv, c.TokenFile = "", ""
	switch d.Type {
	case "github":
		c.URL, c.Token = s.GitHub.URL(), githubToken
	case "kubernetes":
		c.Client = s.cluster(d.Name).Clientset()
	case "jenkins":
		c.URL, c.Token = s.Jenkins.URL()+"/", jenkinssim.DefaultToken
		c.Settings["user"] = jenkinssim.DefaultUser
	case "zenodo":
		c.URL, c.Token = s.Zenodo.URL(), zenodoToken
		// Files to publish come from the simulated web: GitHub's source archives and raw
		// files from the simulated GitHub (what the release tagged), anything else from
		// the public-web simulator.
		c.HTTPClient = &http.Client{Transport: &redirectTransport{keep: s.Zenodo.URL(), to: s.Public.URL(), github: s.GitHub.URL()}}
	case "smtp":
		c.URL, c.Token = s.SMTP.URL(), "rehearsal-password"
		c.Settings["username"] = "runbook"
		c.Client = s.SMTP.CertPool()
		if c.Settings["from"] == "" {
			c.Settings["from"] = "runbook@rehearsal.invalid"
		}
	case "chat":
		if c.Settings["flavor"] == "mattermost" || (c.Settings["flavor"] == "" && strings.Contains(d.URL, "/hooks/")) {
			c.URL = s.Chat.MattermostURL("rehearsal")
		} else {
			c.URL = s.Chat.SlackURL("TREHEARSAL/BREHEARSAL/XREHEARSAL")
		}
	case "http":
		c.URL, c.Token = s.Public.URL()+"/", ""
	default:
		return nil, fmt.Errorf("rehearsal: no simulator for connection %s of type %s", d.Name, d.Type)
	}
	return c, nil
}

// redirectTransport sends requests for hosts other than keep's to the simulated web:
// GitHub's web addresses to the simulated GitHub (when github is set), others to to.
type redirectTransport struct{ keep, to, github string }

func (t *redirectTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	keep, _ := url.Parse(t.keep)
	if r.URL.Host == keep.Host {
		return http.DefaultTransport.RoundTrip(r)
	}
	to, _ := url.Parse(t.to)
	r = r.Clone(r.Context())
	if path, ok := githubsim.WebPath(r.URL); ok && t.github != "" {
		to, _ = url.Parse(t.github + strings.TrimPrefix(path, "/"))
		r.URL.Path, r.URL.RawPath = to.Path, to.RawPath
	}
	r.URL.Scheme, r.URL.Host, r.Host = to.Scheme, to.Host, to.Host
	return http.DefaultTransport.RoundTrip(r)
}

// Calls counts the requests each simulated service answered.
func (s *Sandbox) Calls() map[string]int {
	out := map[string]int{
		"github":  len(s.GitHub.Requests()),
		"jenkins": len(s.Jenkins.Requests()),
		"zenodo":  len(s.Zenodo.Requests()),
		"smtp":    len(s.SMTP.Messages()),
		"chat":    len(s.Chat.Posts()),
		"public":  len(s.Public.Requests()),
	}
	for name, c := range s.Clusters {
		out["kubernetes/"+name] = len(c.Actions())
	}
	return out
}

// Close stops every simulator.
func (s *Sandbox) Close() {
	for _, c := range []interface{ Close() }{s.GitHub, s.Jenkins, s.Zenodo, s.Chat, s.Public} {
		if c != nil && !isNil(c) {
			c.Close()
		}
	}
	if s.SMTP != nil {
		s.SMTP.Close()
	}
	for _, c := range s.Clusters {
		c.Close()
	}
}

func isNil(c interface{ Close() }) bool {
	switch v := c.(type) {
	case *githubsim.Server:
		return v == nil
	case *jenkinssim.Server:
		return v == nil
	case *zenodosim.Server:
		return v == nil
	case *chatsim.Server:
		return v == nil
	case *httpchecksim.Server:
		return v == nil
	}
	return false
}
