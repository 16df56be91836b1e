// Package rehearsal runs a real playbook end to end against the built-in simulators of
// every service (GitHub, Kubernetes, Jenkins, Zenodo, SMTP, chat, public URLs), in one
// process, with simulated people answering the gates. It is the embedded default a new
// user runs first, and the backbone of the end-to-end tests.
//
// The simulators are those registered with package rehearse (each simulator package
// registers its own, in its rehearse.go), and the world is seeded from the playbook's own
// plan by the seeders registered there: the workloads its kubernetes.verify steps name
// (staging already runs the build to promote; production, the clusters whose connection
// says environment: production, runs an older one), the Jenkins jobs its jenkins.build
// steps call (deploy.prod rolls production out to the version; rollback rolls it back),
// the CronJobs of its backup jobs, the Zenodo concepts of its products. Repositories,
// issues and other jobs are created on first use.
package rehearsal

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
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
	"github.com/cessda/runbook/steps/rehearsal/rehearse"
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
	// sims are the started services (rehearse.Services) by connection type; started
	// lists them in the order they started, Close stops them in reverse.
	sims    map[string]rehearse.Sim
	started []rehearse.Sim
	fleet   *kubesim.Fleet
	// production are the kubernetes connections production runs on (see production.go).
	production map[string]bool
	prod       []workload       // production workloads, for the deploy and rollback jobs
	staging    []workload       // staging workloads, which CI deploys to
	ci         map[string]ciJob // the components' CI jobs, by job path
	// stagingTags: image -> the tag of its CI's last build, which staging runs.
	stagingTags map[string]string
	seen        map[string]bool // the workloads seeded, each once
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

// gate is an approval gate's commands, and the role whose member answers it.
type gate struct {
	role            string
	approve, reject string
}

// Option configures a Sandbox.
type Option func(*Sandbox)

// WithClock makes every simulator keep this time (a sandbox process shares an
// engine.OffsetClock with its runs). The default is a FakeClock: waits cost nothing.
func WithClock(c engine.Clock) Option { return func(s *Sandbox) { s.Clock = c } }

// New builds the world for a playbook and its inputs: it starts every registered
// service (rehearse.Services) and seeds them from the playbook's plan (rehearse.Seeder).
func New(ctx context.Context, pb *engine.Playbook, inputs map[string]any, ans Answers, opts ...Option) (*Sandbox, error) {
	s := &Sandbox{pb: pb, answers: ans, gates: map[string]gate{}, ci: map[string]ciJob{},
		sims: map[string]rehearse.Sim{}, stagingTags: map[string]string{}, seen: map[string]bool{}}
	for _, o := range opts {
		o(s)
	}
	if s.Clock == nil {
		s.Clock = engine.NewFakeClock(time.Now().UTC().Truncate(time.Second))
	}
	if err := s.start(); err != nil {
		s.Close()
		return nil, err
	}
	plan, err := engine.BuildPlan(ctx, pb, inputs, engine.PlanOptions{Offline: true, Mode: "rehearsal", Clock: s.Clock})
	if err != nil {
		s.Close()
		return nil, err
	}
	s.production = productionConnections(pb, plan, s.note)
	s.deployParameters(plan.Vars)
	if err := rehearse.SeedPlan(plan, s); err != nil {
		s.Close()
		return nil, err
	}
	s.GitHub.AutoRespond(s.respond)
	return s, nil
}

// start starts every registered service and binds the built-in ones to the Sandbox's
// fields, which the world, the CLI and tests use.
func (s *Sandbox) start() error {
	host := rehearse.Host{Clock: s.Clock, Web: s.web}
	for _, svc := range rehearse.Services() {
		sim, err := svc.Start(host)
		if err != nil {
			return fmt.Errorf("rehearsal: starting the %s simulator: %w", svc.Connection, err)
		}
		s.sims[svc.Connection] = sim
		s.started = append(s.started, sim)
	}
	// The built-in simulators register from their packages, which this one imports.
	s.GitHub = s.sims["github"].(*githubsim.Rehearsal).Server
	s.Jenkins = s.sims["jenkins"].(*jenkinssim.Rehearsal).Server
	s.Zenodo = s.sims["zenodo"].(*zenodosim.Rehearsal).Server
	s.SMTP = s.sims["smtp"].(*smtpsim.Rehearsal).Server
	s.Chat = s.sims["chat"].(*chatsim.Rehearsal).Server
	s.Public = s.sims["http"].(*httpchecksim.Rehearsal).Server
	s.fleet = s.sims["kubernetes"].(*kubesim.Fleet)
	s.Clusters, s.Images = s.fleet.Clusters, s.fleet.Images
	return nil
}

// web is the simulated web for a service at keep: GitHub's source archives and raw files
// come from the simulated GitHub (what the release tagged), anything else from the
// public-web simulator.
func (s *Sandbox) web(keep string) *http.Client {
	return &http.Client{Transport: &redirectTransport{keep: keep, to: s.Public.URL(), github: s.GitHub.URL()}}
}

// Playbook is the playbook rehearsed (rehearse.World).
func (s *Sandbox) Playbook() *engine.Playbook { return s.pb }

// Sim is the started service behind connections of a type, nil when there is none
// (rehearse.World): tests reach a simulator of their own through it.
func (s *Sandbox) Sim(connType string) rehearse.Sim { return s.sims[connType] }

// Notef records what the sandbox did on its own (rehearse.World).
func (s *Sandbox) Notef(format string, args ...any) { s.note(format, args...) }

// cluster returns the simulated cluster behind a kubernetes connection.
func (s *Sandbox) cluster(name string) *kubesim.Cluster { return s.fleet.Cluster(name) }

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

// respond is the simulated people and developers: they act on what the release does in
// GitHub.
func (s *Sandbox) respond(ev githubsim.Event) {
	switch {
	case ev.Kind == "issue_created" && strings.Contains(ev.Body, "runbook:subtask="):
		s.onSubtask(ev)
	case ev.Kind == "issue_created" && strings.Contains(ev.Body, "runbook:release-issue"):
		s.onReleaseIssue(ev)
	case ev.Kind == "push":
		s.onPushEvent(ev)
	case ev.Kind == "comment_created" && strings.Contains(ev.Body, "approval-request") && !s.ans().Silent:
		s.onApprovalRequest(ev)
	}
}

// onSubtask: the people do the pre-release activity (the release notes, the
// documentation) and close its issue.
func (s *Sandbox) onSubtask(ev githubsim.Event) {
	if s.ans().OpenSubtasks || s.ans().Silent {
		return
	}
	if err := s.GitHub.CloseIssue(ev.Repo, ev.Issue, "completed"); err == nil {
		s.note("closed subtask %s#%d", ev.Repo, ev.Issue)
	}
}

// onReleaseIssue: the developers' work is in the milestone; the people who must check
// things by hand (backups, upgrade procedures) do so and tick their items.
func (s *Sandbox) onReleaseIssue(ev githubsim.Event) {
	if is, ok := s.GitHub.GetIssue(ev.Repo, ev.Issue); ok && is.Milestone != "" {
		s.develop(ev.Repo, is.Milestone)
	}
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
}

// onPushEvent: CI builds the push; Answers.LatePush makes a developer push again.
func (s *Sandbox) onPushEvent(ev githubsim.Event) {
	s.onPush(ev.Repo, ev.Title, ev.Body)
	if strings.EqualFold(ev.Repo, s.ans().LatePush) && !s.latePushed {
		s.latePushed = true
		sha := s.GitHub.Commit(ev.Repo, ev.Title, "A late fix", map[string]string{"LATE.md": "pushed after the release commit\n"})
		s.note("a developer pushes %s to %s", short(sha), ev.Repo)
		s.onPush(ev.Repo, ev.Title, sha)
	}
}

// onApprovalRequest: the first member of the gate's role answers it, as Answers says.
func (s *Sandbox) onApprovalRequest(ev githubsim.Event) {
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
	sim, ok := s.sims[d.Type]
	if !ok {
		return nil, fmt.Errorf("rehearsal: no simulator for connection %s of type %s", d.Name, d.Type)
	}
	c := d.Connection()
	c.TokenEnv, c.TokenFile = "", ""
	if err := sim.Connect(d, c); err != nil {
		return nil, fmt.Errorf("rehearsal: connection %s: %w", d.Name, err)
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
	out := map[string]int{}
	for _, sim := range s.started {
		for k, n := range sim.Calls() {
			out[k] = n
		}
	}
	return out
}

// Close stops every simulator, the last started first.
func (s *Sandbox) Close() {
	for i := len(s.started) - 1; i >= 0; i-- {
		s.started[i].Close()
	}
}
