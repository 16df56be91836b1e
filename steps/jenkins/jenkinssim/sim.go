package jenkinssim

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cessda/runbook/steps/simkit"
)

// Version is the Jenkins version the simulator claims in its X-Jenkins header.
const Version = "2.479.3"

// Default credentials, accepted when no WithUser option is given, so a rehearsal works
// without seeding.
const (
	DefaultUser  = "runbook"
	DefaultToken = "sim-token"
)

// Clock is the simulator's source of time. engine.FakeClock satisfies it, so a test can
// share one clock between the step (which sleeps on it) and the simulated builds.
type Clock interface{ Now() time.Time }

// Param defines a job parameter.
type Param struct {
	Name        string
	Type        string // "string" (default), "boolean", "choice", "text"
	Default     string
	Choices     []string
	Description string
}

// Job defines a job. Path is the full name with folders separated by "/"
// ("cessda.cdc.deploy/main"); the folders are created implicitly.
type Job struct {
	Path   string
	Params []Param
	// Script is what a build does; nil runs DefaultScript.
	Script func(b *Build)
	// Disabled jobs answer 409 to a trigger.
	Disabled bool
	// QuietPeriod: 0 takes the server's default, negative means none.
	QuietPeriod time.Duration
	// NoConcurrent blocks a queued build while another build of the job runs.
	NoConcurrent bool
}

// DefaultScript is the script of auto-created jobs: a few log lines over a few
// simulated seconds, then SUCCESS.
func DefaultScript(b *Build) {
	b.Logf("[Pipeline] Start of Pipeline")
	for _, kv := range sortedParams(b.Params()) {
		b.Logf("[Pipeline] echo %s", kv)
	}
	b.Sleep(2 * time.Second)
	b.Logf("[Pipeline] sh")
	b.Logf("+ ./deploy.sh")
	b.Sleep(3 * time.Second)
	b.Logf("[Pipeline] End of Pipeline")
}

func sortedParams(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// User is an account with an API token. ReadOnly users get 403 on every POST.
type User struct {
	Name     string
	Token    string
	ReadOnly bool
}

// CrumbMode is how the simulator protects POSTs against CSRF.
type CrumbMode int

const (
	// CrumbsExemptAPITokens is current Jenkins: the crumb issuer answers, but requests
	// authenticated with an API token skip the crumb check (since 2.96).
	CrumbsExemptAPITokens CrumbMode = iota
	// CrumbsRequired makes every POST carry a valid crumb, which is tied to the user and
	// the web session (JSESSIONID cookie) it was issued to.
	CrumbsRequired
	// CrumbsOff disables CSRF protection: /crumbIssuer/api/json answers 404.
	CrumbsOff
)

// Option configures a Server.
type Option func(*Server)

// WithClock makes the simulator read simulated time from c (for example the run's
// engine.FakeClock): builds progress only as c moves.
func WithClock(c Clock) Option { return func(s *Server) { s.clock = c } }

// WithSpeed sets how fast the default clock runs: simulated time = start + real elapsed
// × factor. The default is 1000 (one real millisecond is one simulated second).
func WithSpeed(factor float64) Option {
	return func(s *Server) { s.clock = &speedClock{start: time.Now(), factor: factor} }
}

// WithQuietPeriod sets the default quiet period of queued builds (default 5s).
func WithQuietPeriod(d time.Duration) Option { return func(s *Server) { s.quiet = d } }

// WithLeftItemTTL sets how long a queue item that left the queue stays readable
// (default 5 minutes, as Jenkins' leftItems cache).
func WithLeftItemTTL(d time.Duration) Option { return func(s *Server) { s.leftTTL = d } }

// WithCrumbs sets the CSRF mode (default CrumbsExemptAPITokens).
func WithCrumbs(m CrumbMode) Option { return func(s *Server) { s.crumbs = m } }

// WithAnonymousRead lets requests without credentials read (GET); they still cannot build.
func WithAnonymousRead() Option { return func(s *Server) { s.anonRead = true } }

// WithAutoCreate creates a job on first trigger, with the parameters it is called with
// and DefaultScript, so a rehearsal of any playbook works without seeding. A job that is
// read before it exists looks like an empty job.
func WithAutoCreate() Option { return func(s *Server) { s.autoCreate = true } }

// WithRunParameter gives every job (defined, seeded or auto-created) a string parameter
// of that name unless it has one, as jobs that carry runbook's run marker
// (jenkins.build's run_parameter) define it.
func WithRunParameter(name string) Option { return func(s *Server) { s.runParam = name } }

// WithParamsInActions lists a job's parameter definitions among its actions (a
// hudson.model.ParametersDefinitionProperty entry of "actions") instead of under
// "property", as older Jenkins versions show them, so clients that read only one place
// can be tested.
func WithParamsInActions() Option { return func(s *Server) { s.paramsInActions = true } }

// WithUser adds an account. Without any, DefaultUser/DefaultToken is accepted.
func WithUser(name, token string) Option {
	return func(s *Server) { s.users[name] = &User{Name: name, Token: token} }
}

// WithUsers adds accounts.
func WithUsers(us ...User) Option {
	return func(s *Server) {
		for _, u := range us {
			u := u
			s.users[u.Name] = &u
		}
	}
}

// WithJobs defines jobs.
func WithJobs(js ...Job) Option {
	return func(s *Server) {
		for _, j := range js {
			s.addJob(j, false)
		}
	}
}

type speedClock struct {
	start  time.Time
	factor float64
}

func (c *speedClock) Now() time.Time {
	return c.start.Add(time.Duration(float64(time.Since(c.start)) * c.factor))
}

type job struct {
	def         Job
	auto        bool
	builds      []*Build
	next        int
	lastEnded   time.Time
	triggers    int
	queueCount  int
	running     int
	virtual     bool
	lastSuccess time.Duration
}

func (j *job) estimatedDuration() int64 {
	if j.lastSuccess == 0 {
		return -1
	}
	return j.lastSuccess.Milliseconds()
}

type queueItem struct {
	id           int
	job          *job
	params       []paramValue
	cause        cause
	revs         []revision
	inQueueSince time.Time
	startAt      time.Time
	left         bool
	leftAt       time.Time
	cancelled    bool
	build        *Build
}

// Server is a stateful Jenkins on 127.0.0.1.
type Server struct {
	ts  *httptest.Server
	kit *simkit.Kit // the request log and the injected faults
	mux *http.ServeMux
	// jobMux routes the paths under a job (jobRoutes).
	jobMux *http.ServeMux

	mu         sync.Mutex
	clock      Clock
	quiet      time.Duration
	leftTTL    time.Duration
	crumbs     CrumbMode
	salt       string
	anonRead   bool
	autoCreate bool
	runParam   string
	users      map[string]*User
	jobs       map[string]*job
	folders    map[string]bool
	queue      map[int]*queueItem
	nextQueue  int
	running    []*Build
	aborters   map[*Build]string

	// paramsInActions shows parameter definitions under a job's actions (older Jenkins).
	paramsInActions bool
}

// New starts a simulator on 127.0.0.1. Close it when done.
func New(opts ...Option) *Server {
	s := &Server{
		quiet:     5 * time.Second,
		leftTTL:   5 * time.Minute,
		users:     map[string]*User{},
		jobs:      map[string]*job{},
		folders:   map[string]bool{},
		queue:     map[int]*queueItem{},
		nextQueue: 1,
		aborters:  map[*Build]string{},
		salt:      randHex(8),
	}
	for _, o := range opts {
		o(s)
	}
	if s.clock == nil {
		s.clock = &speedClock{start: time.Now(), factor: 1000}
	}
	for _, j := range s.jobs {
		j.def = s.withRunParam(j.def) // WithJobs may have come before WithRunParameter
	}
	if len(s.users) == 0 {
		s.users[DefaultUser] = &User{Name: DefaultUser, Token: DefaultToken}
	}
	s.kit = simkit.New(simkit.WithClock(s.clock.Now), simkit.WithUser(s.userOf))
	s.mux = http.NewServeMux()
	for _, rt := range routes {
		s.mux.HandleFunc(rt.pattern, s.handler(rt.handle))
	}
	s.jobMux = http.NewServeMux()
	for _, rt := range jobRoutes {
		s.jobMux.HandleFunc(rt.pattern, s.handler(rt.handle))
	}
	ts := httptest.NewUnstartedServer(s.kit.Wrap(http.HandlerFunc(s.serve)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("jenkinssim: listen on 127.0.0.1: %v", err))
	}
	ts.Listener.Close()
	ts.Listener = ln
	ts.Start()
	s.ts = ts
	return s
}

// URL is the server's root URL, without a trailing slash ("http://127.0.0.1:PORT").
func (s *Server) URL() string { return s.ts.URL }

// Close shuts the server down and ends the scripts of running builds (ABORTED).
func (s *Server) Close() {
	s.ts.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.running) > 0 {
		b := s.running[0]
		b.aborted = true
		s.aborters[b] = "SYSTEM"
		b.step(s.clock.Now())
		s.finished(b)
	}
}

func (s *Server) rootURL() string { return s.ts.URL + "/" }

// Now is the simulator's current simulated time.
func (s *Server) Now() time.Time { return s.clock.Now() }

// AddJob defines (or redefines) a job.
func (s *Server) AddJob(j Job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addJob(j, false)
}

// AddUser adds an account.
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.Name] = &u
}

func (s *Server) addJob(def Job, auto bool) *job {
	def.Path = strings.Trim(def.Path, "/")
	def = s.withRunParam(def)
	j := s.jobs[def.Path]
	if j == nil {
		j = &job{next: 1}
		s.jobs[def.Path] = j
	}
	j.def, j.auto = def, auto
	parts := strings.Split(def.Path, "/")
	for i := 1; i < len(parts); i++ {
		s.folders[strings.Join(parts[:i], "/")] = true
	}
	return j
}

func (s *Server) withRunParam(def Job) Job {
	if s.runParam == "" {
		return def
	}
	for _, p := range def.Params {
		if p.Name == s.runParam {
			return def
		}
	}
	def.Params = append(append([]Param(nil), def.Params...), Param{Name: s.runParam, Description: "the runbook run and step that triggered the build"})
	return def
}

// ExpireCrumbs changes the crumb salt, so every crumb issued so far becomes invalid
// (as after a restart).
func (s *Server) ExpireCrumbs() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.salt = randHex(8)
}

// Triggers counts the accepted trigger requests (201 or 303) for the job.
func (s *Server) Triggers(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j := s.jobs[strings.Trim(path, "/")]; j != nil {
		return j.triggers
	}
	return 0
}

// Builds returns the job's builds, oldest first.
func (s *Server) Builds(path string) []BuildInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	j := s.jobs[strings.Trim(path, "/")]
	if j == nil {
		return nil
	}
	out := make([]BuildInfo, 0, len(j.builds))
	for _, b := range j.builds {
		out = append(out, b.info())
	}
	return out
}

// Build returns one build of the job.
func (s *Server) Build(path string, number int) (BuildInfo, bool) {
	for _, b := range s.Builds(path) {
		if b.Number == number {
			return b, true
		}
	}
	return BuildInfo{}, false
}

// SeedBuild adds a build of the job that started at the current simulated time, with
// those parameters. With result "" it runs the job's script (it is building); otherwise
// it is finished with that result. It returns the build number.
func (s *Server) SeedBuild(path string, params map[string]string, result string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	var pv []paramValue
	for _, k := range sortedKeys(params) {
		pv = append(pv, paramValue{Name: k, Value: params[k]})
	}
	return s.seed(path, pv, userCause(DefaultUser), nil, result)
}

// BuildCommit acts as a push webhook for the multibranch branch job path
// ("cessda.cvs.two/main"; created without parameters when missing): it starts a build
// now that runs the job's Script and carries the Git plugin's BuildData for sha
// (remoteURL, branch = the job's last path element) and a BranchEventCause. It returns
// the build number.
func (s *Server) BuildCommit(path, sha, remoteURL string) int {
	return s.SeedCommitBuild(path, sha, remoteURL, "")
}

// SeedCommitBuild is BuildCommit for a build that already finished with result (""
// runs the script, as BuildCommit).
func (s *Server) SeedCommitBuild(path, sha, remoteURL, result string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	branch := branchOf(path)
	return s.seed(path, nil, pushCause(branch), []revision{{sha: sha, remote: remoteURL, branch: branch}}, result)
}

// seed starts a build now (result "") or adds one that finished now with result.
func (s *Server) seed(path string, params []paramValue, c cause, revs []revision, result string) int {
	j := s.jobs[strings.Trim(path, "/")]
	if j == nil {
		j = s.addJob(Job{Path: path}, true)
	}
	now := s.clock.Now()
	q := &queueItem{id: s.nextQueue, job: j, params: params, cause: c, revs: revs, inQueueSince: now, startAt: now}
	s.nextQueue++
	s.queue[q.id] = q
	if result == "" {
		s.startBuild(q, now)
		return q.build.number
	}
	b := &Build{srv: s, job: j, number: j.next, queueID: q.id, params: q.params, cause: c, revs: revs,
		result: result, started: now, ended: now}
	b.Logf("%s", c.short)
	b.Logf("Finished: %s", result)
	j.next++
	j.builds = append(j.builds, b)
	q.left, q.leftAt, q.build = true, now, b
	return b.number
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// CancelQueueItem cancels a waiting queue item, as POST /queue/cancelItem?id=N does.
func (s *Server) CancelQueueItem(id int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	return s.cancel(id)
}

func (s *Server) cancel(id int) bool {
	q := s.queue[id]
	if q == nil || q.left {
		return false
	}
	q.left, q.cancelled, q.leftAt = true, true, s.clock.Now()
	return true
}

// QueueItems returns the ids of the job's queue items that have not left the queue.
func (s *Server) QueueItems(path string) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	var out []int
	for _, q := range s.queue {
		if !q.left && q.job.def.Path == strings.Trim(path, "/") {
			out = append(out, q.id)
		}
	}
	sort.Ints(out)
	return out
}

// Abort stops a running build (as POST …/N/stop); it ends ABORTED.
func (s *Server) Abort(path string, number int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	return s.abort(path, number, DefaultUser)
}

func (s *Server) abort(path string, number int, user string) bool {
	j := s.jobs[strings.Trim(path, "/")]
	if j == nil {
		return false
	}
	for _, b := range j.builds {
		if b.number == number && b.building {
			b.aborted = true
			s.aborters[b] = user
			b.step(s.clock.Now())
			s.finished(b)
			return true
		}
	}
	return false
}

func (s *Server) abortUser(b *Build) string { return s.aborters[b] }

// advance runs the simulation up to the current simulated time: queue items whose quiet
// period is over start builds, and sleeping builds wake, in time order.
func (s *Server) advance() {
	now := s.clock.Now()
	for {
		var (
			at time.Time
			bq *queueItem
			bb *Build
		)
		for _, q := range s.queue {
			if q.left {
				continue
			}
			t := q.startAt
			if q.job.def.NoConcurrent && q.job.running > 0 {
				continue
			}
			if q.job.def.NoConcurrent && q.job.lastEnded.After(t) {
				t = q.job.lastEnded
			}
			if t.After(now) {
				continue
			}
			if bq == nil || t.Before(at) || (t.Equal(at) && q.id < bq.id) {
				at, bq = t, q
			}
		}
		for _, b := range s.running {
			if b.wake.After(now) {
				continue
			}
			if (bq == nil && bb == nil) || b.wake.Before(at) {
				at, bb, bq = b.wake, b, nil
			}
		}
		switch {
		case bb != nil:
			bb.step(bb.wake)
			if !bb.building {
				s.finished(bb)
			}
		case bq != nil:
			s.startBuild(bq, at)
		default:
			return
		}
	}
}

func (s *Server) startBuild(q *queueItem, at time.Time) {
	j := q.job
	b := &Build{srv: s, job: j, number: j.next, queueID: q.id, params: q.params, cause: q.cause,
		revs: append([]revision(nil), q.revs...), building: true, started: at}
	j.next++
	j.builds = append(j.builds, b)
	j.running++
	q.left, q.leftAt, q.build = true, at, b
	s.running = append(s.running, b)
	script := j.def.Script
	if script == nil {
		script = DefaultScript
	}
	b.start(script)
	if !b.building {
		s.finished(b)
	}
}

func (s *Server) finished(b *Build) {
	for i, r := range s.running {
		if r == b {
			s.running = append(s.running[:i], s.running[i+1:]...)
			b.job.running--
			break
		}
	}
	b.job.lastEnded = b.ended
	if b.result == Success {
		b.job.lastSuccess = b.ended.Sub(b.started)
	}
}

// ---- HTTP ----

const sessionCookie = "JSESSIONID.sim"

func (s *Server) crumbFor(user, session string) string {
	h := sha256.Sum256([]byte(s.salt + "|" + user + "|" + session))
	return hex.EncodeToString(h[:16])
}

func textError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain;charset=utf-8")
	w.WriteHeader(code)
	fmt.Fprintln(w, msg)
}

func notFound(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html;charset=utf-8")
	w.WriteHeader(http.StatusNotFound)
	fmt.Fprint(w, "<html><head><title>Error 404 Not Found</title></head><body><h2>HTTP ERROR 404 Not Found</h2></body></html>")
}

func writeJSON(w http.ResponseWriter, r *http.Request, v map[string]any, defaultTree string) {
	tree := r.URL.Query().Get("tree")
	if tree == "" {
		tree = defaultTree
	}
	var out any = v
	if tree != "" {
		t, err := parseTree(tree)
		if err != nil {
			textError(w, http.StatusBadRequest, err.Error())
			return
		}
		out = prune(v, t)
	}
	b, _ := json.Marshal(out)
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.Write(b)
}

// children lists the top-level items of a folder ("" for the root).
func (s *Server) children(folder string) []any {
	seen := map[string]bool{}
	var out []any
	add := func(full string) {
		rel := full
		if folder != "" {
			if !strings.HasPrefix(full, folder+"/") {
				return
			}
			rel = full[len(folder)+1:]
		}
		name, _, nested := strings.Cut(rel, "/")
		child := name
		if folder != "" {
			child = folder + "/" + name
		}
		if seen[child] {
			return
		}
		seen[child] = true
		class := "org.jenkinsci.plugins.workflow.job.WorkflowJob"
		if nested || s.folders[child] {
			class = "com.cloudbees.hudson.plugins.folder.Folder"
		}
		out = append(out, map[string]any{"_class": class, "name": name, "url": s.rootURL() + jobURLPath(child)})
	}
	var keys []string
	for k := range s.jobs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !s.jobs[k].virtual {
			add(k)
		}
	}
	return out
}

// jobURLPath turns "a/b" into "job/a/job/b/".
func jobURLPath(path string) string {
	var sb strings.Builder
	for _, p := range strings.Split(strings.Trim(path, "/"), "/") {
		sb.WriteString("job/")
		sb.WriteString(url.PathEscape(p))
		sb.WriteString("/")
	}
	return sb.String()
}

func userName(u *User) string {
	if u == nil {
		return "anonymous"
	}
	return u.Name
}

func (s *Server) queueItemJSON(q *queueItem) map[string]any {
	var pl strings.Builder
	var params []any
	for _, p := range q.params {
		fmt.Fprintf(&pl, "\n%s=%s", p.Name, p.Value)
		params = append(params, map[string]any{"_class": "hudson.model.StringParameterValue", "name": p.Name, "value": p.Value})
	}
	var actions []any
	if len(params) > 0 {
		actions = append(actions, map[string]any{"_class": "hudson.model.ParametersAction", "parameters": params})
	}
	actions = append(actions, q.cause.action())
	parts := strings.Split(q.job.def.Path, "/")
	m := map[string]any{
		"id": q.id, "url": fmt.Sprintf("queue/item/%d/", q.id), "inQueueSince": q.inQueueSince.UnixMilli(),
		"params": pl.String(), "stuck": false, "actions": actions, "blocked": false, "buildable": false,
		"task": map[string]any{"_class": "org.jenkinsci.plugins.workflow.job.WorkflowJob", "name": parts[len(parts)-1],
			"url": s.rootURL() + jobURLPath(q.job.def.Path)},
	}
	now := s.clock.Now()
	switch {
	case q.left:
		m["_class"] = "hudson.model.Queue$LeftItem"
		m["why"] = nil
		m["cancelled"] = q.cancelled
		m["executable"] = nil
		if q.build != nil {
			m["executable"] = map[string]any{"_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun",
				"number": q.build.number, "url": q.build.url()}
		}
	case q.startAt.After(now):
		m["_class"] = "hudson.model.Queue$WaitingItem"
		m["timestamp"] = q.startAt.UnixMilli()
		m["why"] = fmt.Sprintf("In the quiet period. Expires in %.1f sec", q.startAt.Sub(now).Seconds())
	default:
		m["_class"] = "hudson.model.Queue$BlockedItem"
		m["blocked"] = true
		m["why"] = "Build #" + fmt.Sprint(q.job.next-1) + " is already in progress (ETA: N/A)"
	}
	return m
}

const defaultJobTree = "name,fullName,displayName,url,buildable,color,inQueue,nextBuildNumber,concurrentBuild," +
	"builds[number,url],firstBuild[number,url],lastBuild[number,url],lastCompletedBuild[number,url]," +
	"lastSuccessfulBuild[number,url],lastFailedBuild[number,url],queueItem[id,url,why]," +
	"property[parameterDefinitions[name,type,description,defaultParameterValue[name,value],choices]]," +
	"actions[parameterDefinitions[name,type,description,defaultParameterValue[name,value],choices]]"

func (s *Server) findBuild(j *job, ref string) *Build {
	bs := sortedBuilds(j.builds)
	pick := func(ok func(*Build) bool) *Build {
		for _, b := range bs {
			if ok(b) {
				return b
			}
		}
		return nil
	}
	switch ref {
	case "lastBuild":
		return pick(func(*Build) bool { return true })
	case "lastCompletedBuild":
		return pick(func(b *Build) bool { return !b.building })
	case "lastSuccessfulBuild":
		return pick(func(b *Build) bool { return !b.building && (b.result == Success || b.result == Unstable) })
	case "lastFailedBuild":
		return pick(func(b *Build) bool { return !b.building && b.result == Failure })
	}
	n, err := strconv.Atoi(ref)
	if err != nil {
		return nil
	}
	return pick(func(b *Build) bool { return b.number == n })
}

func (s *Server) jobJSON(j *job) map[string]any {
	parts := strings.Split(j.def.Path, "/")
	var builds []any
	bs := sortedBuilds(j.builds)
	for _, b := range bs {
		builds = append(builds, b.json())
	}
	perm := func(ref string) any {
		if b := s.findBuild(j, ref); b != nil {
			return b.json()
		}
		return nil
	}
	var first any
	if len(j.builds) > 0 {
		first = j.builds[0].json()
	}
	var qi any
	for _, q := range s.queue {
		if q.job == j && !q.left {
			qi = s.queueItemJSON(q)
		}
	}
	var defs []any
	for _, p := range j.def.Params {
		typ, class := "StringParameterDefinition", "hudson.model.StringParameterDefinition"
		var dv any = p.Default
		switch p.Type {
		case "boolean":
			typ, class = "BooleanParameterDefinition", "hudson.model.BooleanParameterDefinition"
			dv = p.Default == "true"
		case "choice":
			typ, class = "ChoiceParameterDefinition", "hudson.model.ChoiceParameterDefinition"
			if p.Default == "" && len(p.Choices) > 0 {
				dv = p.Choices[0]
			}
		case "text":
			typ, class = "TextParameterDefinition", "hudson.model.TextParameterDefinition"
		}
		d := map[string]any{"_class": class, "name": p.Name, "type": typ, "description": p.Description,
			"defaultParameterValue": map[string]any{"_class": strings.Replace(class, "Definition", "Value", 1), "name": p.Name, "value": dv}}
		if p.Type == "choice" {
			d["choices"] = p.Choices
		}
		defs = append(defs, d)
	}
	var props, actions []any
	if len(defs) > 0 {
		pdp := map[string]any{"_class": "hudson.model.ParametersDefinitionProperty", "parameterDefinitions": defs}
		if s.paramsInActions {
			actions = append(actions, pdp)
		} else {
			props = append(props, pdp)
		}
	}
	actions = append(actions, map[string]any{}, map[string]any{"_class": "org.jenkinsci.plugins.displayurlapi.actions.JobDisplayAction"})
	color := "notbuilt"
	if lc := s.findBuild(j, "lastCompletedBuild"); lc != nil {
		color = map[string]string{Success: "blue", Unstable: "yellow", Failure: "red", Aborted: "aborted", NotBuilt: "notbuilt"}[lc.result]
	}
	if j.def.Disabled {
		color = "disabled"
	}
	if j.running > 0 {
		color += "_anime"
	}
	return map[string]any{
		"_class": "org.jenkinsci.plugins.workflow.job.WorkflowJob", "name": parts[len(parts)-1], "fullName": j.def.Path,
		"displayName": parts[len(parts)-1], "url": s.rootURL() + jobURLPath(j.def.Path), "buildable": !j.def.Disabled,
		"color": color, "inQueue": qi != nil, "nextBuildNumber": j.next, "concurrentBuild": !j.def.NoConcurrent,
		"builds": builds, "firstBuild": first, "lastBuild": perm("lastBuild"), "lastCompletedBuild": perm("lastCompletedBuild"),
		"lastSuccessfulBuild": perm("lastSuccessfulBuild"), "lastFailedBuild": perm("lastFailedBuild"),
		"queueItem": qi, "property": props, "actions": actions,
	}
}

func flatten(v url.Values) map[string]string {
	m := map[string]string{}
	for k, vs := range v {
		if len(vs) > 0 {
			m[k] = vs[0]
		}
	}
	return m
}

func samePV(a, b []paramValue) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Value != b[i].Value {
			return false
		}
	}
	return true
}

const defaultBuildTree = ""

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
