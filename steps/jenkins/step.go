package jenkins

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/steps/jenkins/jenkinssim"
)

func init() {
	engine.RegisterConnectionType(engine.ConnectionType{
		Name:    "jenkins",
		Summary: "a Jenkins server, reached through its remote access API with a user's API token",
		Settings: map[string]string{
			"user": "the Jenkins login whose API token the connection's secret holds",
		},
		DefaultURL:      "https://jenkins.cessda.eu/",
		DefaultTokenEnv: "JENKINS_TOKEN",
	})
	engine.Register(engine.StepType{
		Name:    "jenkins.build",
		Summary: "run a Jenkins job with parameters, stream its console and wait for its result",
		Doc: "Triggers a job by its full path (folders as `a/b`), follows the queue item to the build, " +
			"streams the console into the run's log and waits for the result. A build of the job with the same " +
			"parameters (see match_parameters) that is running or succeeded is followed instead of triggering " +
			"another; the queue item is recorded as soon as it exists, so a crash never triggers twice. " +
			"Used for `cessda.<product>.deploy.prod`, `cessda.<product>.rollback` and `cessda.cdc.es.backup`.",
		New:        func() engine.Step { return &BuildStep{} },
		Connection: "jenkins",
		Outputs: []engine.Output{
			{Name: "number", Type: engine.TypeInt, Desc: "the build number"},
			{Name: "url", Type: engine.TypeString, Desc: "the build's URL"},
			{Name: "result", Type: engine.TypeString, Desc: "SUCCESS, UNSTABLE, FAILURE, NOT_BUILT or ABORTED; empty when wait is false and the build still runs"},
			{Name: "duration", Type: engine.TypeInt, Desc: "the build's duration in whole seconds (0 while it runs)"},
			{Name: "queue_url", Type: engine.TypeString, Desc: "the queue item this step triggered or followed; empty when it followed an existing build"},
		},
	})
}

// BuildStep is the jenkins.build step.
type BuildStep struct {
	Connection      string            `json:"connection" desc:"the jenkins connection to use"`
	Job             string            `json:"job" required:"true" desc:"the job's full path, folders separated by / (cessda.cdc.deploy/main)"`
	Parameters      map[string]string `json:"parameters" desc:"build parameters; none triggers /build, some trigger /buildWithParameters"`
	Wait            bool              `json:"wait" default:"true" desc:"wait for the result; when false, return as soon as the build has started"`
	PollInterval    engine.Duration   `json:"poll_interval" default:"5s" desc:"how often to poll the queue, the console and the build"`
	Timeout         engine.Duration   `json:"timeout" default:"2h" desc:"give up waiting after this long (the build is not aborted)"`
	MatchParameters []string          `json:"match_parameters" desc:"which parameters identify this release's build when looking for one to follow (default: all given)"`
	Accept          []string          `json:"accept" default:"[SUCCESS]" desc:"results that count as success"`
}

var results = map[string]bool{"SUCCESS": true, "UNSTABLE": true, "FAILURE": true, "NOT_BUILT": true, "ABORTED": true}

// lookBack is how many recent builds are searched for one to follow.
const lookBack = 50

// tailLines is how much of the console a failure reports.
const tailLines = 30

// Validate checks the parameters across fields.
func (p *BuildStep) Validate() error {
	if strings.Trim(p.Job, "/") == "" {
		return fmt.Errorf("job: give the job's full path, e.g. cessda.cdc.deploy/main")
	}
	for _, r := range p.Accept {
		if !results[r] {
			return fmt.Errorf("accept: %q is not a Jenkins result (SUCCESS, UNSTABLE, FAILURE, NOT_BUILT, ABORTED)", r)
		}
	}
	for _, k := range p.MatchParameters {
		if _, ok := p.Parameters[k]; !ok {
			return fmt.Errorf("match_parameters: %q is not one of the parameters", k)
		}
	}
	if p.PollInterval < 0 || p.Timeout < 0 {
		return fmt.Errorf("poll_interval and timeout must not be negative")
	}
	return nil
}

func (p *BuildStep) job() string { return strings.Trim(p.Job, "/") }

func (p *BuildStep) poll() time.Duration {
	if p.PollInterval <= 0 {
		return 5 * time.Second
	}
	return p.PollInterval.D()
}

func (p *BuildStep) accepted(result string) bool {
	if len(p.Accept) == 0 {
		return result == "SUCCESS"
	}
	for _, a := range p.Accept {
		if a == result {
			return true
		}
	}
	return false
}

func (p *BuildStep) matchKeys() []string {
	keys := p.MatchParameters
	if len(keys) == 0 {
		for k := range p.Parameters {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

func (p *BuildStep) matches(params map[string]string) bool {
	for _, k := range p.matchKeys() {
		if v, ok := params[k]; !ok || v != p.Parameters[k] {
			return false
		}
	}
	return true
}

func (p *BuildStep) describeParams(sc *engine.StepContext) string {
	if len(p.Parameters) == 0 {
		return "no parameters"
	}
	if sc.Unknown("parameters") {
		return "parameters " + engine.KnownAfterRun
	}
	var parts []string
	for _, k := range sortedKeys(p.Parameters) {
		parts = append(parts, k+"="+sc.Show("parameters."+k, p.Parameters[k]))
	}
	return strings.Join(parts, " ")
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// client builds the API client from the connection; the token only ever goes into the
// Authorization header.
func client(sc *engine.StepContext, name string) (*Client, error) {
	conn, err := sc.Connection(name, "jenkins")
	if err != nil {
		return nil, fmt.Errorf("jenkins: %w", err)
	}
	base := conn.URL
	if u, ok := conn.Client.(interface{ URL() string }); ok && base == "" {
		base = u.URL() // an injected simulator
	}
	if base == "" {
		base = "https://jenkins.cessda.eu/"
	}
	user := conn.Setting("user", "")
	if user == "" && sc.Rehearsal {
		user = jenkinssim.DefaultUser // the simulator's account, so a rehearsal needs no settings
	}
	if user == "" {
		return nil, fmt.Errorf("jenkins: connection %q has no user: set settings.user to the Jenkins login whose API token it uses", conn.Name)
	}
	token, err := conn.Secret()
	if err != nil && sc.Rehearsal && errors.Is(err, engine.ErrNoSecret) {
		token, err = jenkinssim.DefaultToken, nil
	}
	if err != nil {
		return nil, fmt.Errorf("jenkins: the API token for %s: %w", base, err)
	}
	c, err := NewClient(base, user, token, conn.HTTP())
	if err != nil {
		return nil, err
	}
	switch {
	case conn.TokenFile != "":
		c.tokenEnv = "the token file " + conn.TokenFile
	case conn.TokenEnv != "":
		c.tokenEnv = conn.TokenEnv
	}
	c.Sleep = sc.Sleep
	return c, nil
}

// Plan looks the job up (read-only) and says whether a build would be triggered or an
// existing one followed.
func (p *BuildStep) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	job := sc.Show("job", p.job())
	action := fmt.Sprintf("trigger Jenkins job %s with %s", job, p.describeParams(sc))
	if p.Wait {
		action += fmt.Sprintf(" and wait for %s", strings.Join(p.acceptList(), " or "))
	}
	plan := engine.Plan{Action: action}
	if sc.Unknown("job") || sc.Unknown("parameters") {
		return plan, nil
	}
	for _, k := range p.matchKeys() {
		if sc.Unknown("parameters." + k) {
			return plan, nil
		}
	}
	var rec string
	if sc.Recall("build_url", &rec) || sc.Recall("queue_url", &rec) {
		plan.Details = append(plan.Details, "this step already started "+rec+"; it would be followed, not triggered again")
		return plan, nil
	}
	c, err := client(sc, p.Connection)
	if err != nil {
		plan.Details = append(plan.Details, "could not look the job up: "+err.Error())
		return plan, nil
	}
	j, err := c.Job(ctx, p.job(), lookBack)
	if err != nil {
		switch StatusOf(err) {
		case 401, 403, 404:
			return plan, err
		}
		if errors.Is(err, ErrJobNotFound) {
			return plan, err
		}
		plan.Details = append(plan.Details, "could not look the job up: "+err.Error())
		return plan, nil
	}
	if err := p.checkJob(j); err != nil {
		return plan, err
	}
	if b := p.existing(j, time.Time{}); b != nil {
		state := "running"
		if !b.Building {
			state = b.Result
			plan.NoChange = true
		}
		plan.Details = append(plan.Details, fmt.Sprintf("build #%d (%s) already has these parameters; it would be followed, not triggered again", b.Number, state))
	}
	return plan, nil
}

func (p *BuildStep) acceptList() []string {
	if len(p.Accept) == 0 {
		return []string{"SUCCESS"}
	}
	return p.Accept
}

// checkJob refuses folders and parameters the job does not define (Jenkins would drop
// them silently, and the build could then never be recognised as this release's).
func (p *BuildStep) checkJob(j *Job) error {
	if j.IsFolder() {
		return fmt.Errorf("jenkins: %q is a folder, not a job: name a job inside it (e.g. %s/main)", p.job(), p.job())
	}
	defs := j.ParamDefs()
	if len(defs) == 0 {
		return nil // an unparameterized job refuses parameters itself (500 "not parameterized")
	}
	have := map[string]bool{}
	var names []string
	for _, d := range defs {
		have[d.Name] = true
		names = append(names, d.Name)
	}
	for _, k := range sortedKeys(p.Parameters) {
		if !have[k] {
			return fmt.Errorf("jenkins: job %q has no parameter %q (it has %s); Jenkins would ignore it", p.job(), k, strings.Join(names, ", "))
		}
	}
	return nil
}

// existing finds the newest build that matches this release's parameters and is running
// or ended with an accepted result. Without parameters to match, only builds that are
// running or started at or after since count (a job without parameters cannot tell one
// release from another).
func (p *BuildStep) existing(j *Job, since time.Time) *Build {
	for i := range j.Builds {
		b := &j.Builds[i]
		if !b.Building && !p.accepted(b.Result) {
			continue
		}
		if len(p.matchKeys()) == 0 {
			if b.Building || (!since.IsZero() && !time.UnixMilli(b.Timestamp).Before(since)) {
				return b
			}
			continue
		}
		if p.matches(b.Params()) {
			return b
		}
	}
	return nil
}

// Run triggers the job, or finds the build it already triggered, and follows it.
func (p *BuildStep) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	c, err := client(sc, p.Connection)
	if err != nil {
		return nil, err
	}
	deadline := sc.Now().Add(p.Timeout.D())
	if p.Timeout <= 0 {
		deadline = sc.Now().Add(2 * time.Hour)
	}
	var since time.Time
	if !sc.Recall("first_run_at", &since) {
		since = sc.Now().Add(-time.Minute) // allow for clock skew with the server
		if err := sc.Record("first_run_at", since); err != nil {
			return nil, err
		}
	}

	var buildURL, queueURL string
	sc.Recall("queue_url", &queueURL)
	if sc.Recall("build_url", &buildURL) {
		sc.Logf("jenkins: following build %s started by an earlier attempt", buildURL)
	} else if queueURL != "" {
		sc.Logf("jenkins: following queue item %s triggered by an earlier attempt", queueURL)
		buildURL, err = p.waitQueue(ctx, sc, c, queueURL, deadline)
		if errors.Is(err, errCancelled) {
			sc.Logf("jenkins: that queue item was cancelled before a build started; looking again")
			queueURL, err = "", nil
		}
		if err != nil {
			return nil, err
		}
	}
	if buildURL == "" {
		j, err := c.Job(ctx, p.job(), lookBack)
		if err != nil {
			return nil, err
		}
		if err := p.checkJob(j); err != nil {
			return nil, err
		}
		if b := p.existing(j, since); b != nil {
			buildURL = c.JobURL(p.job()) + strconv.Itoa(b.Number) + "/"
			state := "running"
			if !b.Building {
				state = b.Result
			}
			sc.Logf("jenkins: build #%d of %s (%s) already has these parameters; following it instead of triggering another", b.Number, p.job(), state)
		} else if q := p.queued(ctx, c); q != "" {
			queueURL = q
			sc.Logf("jenkins: a build of %s with these parameters is already queued (%s); following it", p.job(), q)
		} else {
			queueURL, err = c.Trigger(ctx, p.job(), p.Parameters)
			if err != nil {
				return nil, err
			}
			// Recorded before waiting: a crash from here on finds the item, never triggers again.
			if err := sc.Record("queue_url", queueURL); err != nil {
				return nil, err
			}
			sc.Logf("jenkins: triggered %s with %s: queue item %s", p.job(), p.describeParams(sc), queueURL)
		}
		if buildURL == "" {
			if err := sc.Record("queue_url", queueURL); err != nil {
				return nil, err
			}
			if buildURL, err = p.waitQueue(ctx, sc, c, queueURL, deadline); err != nil {
				return nil, err
			}
		}
	}
	if err := sc.Record("build_url", buildURL); err != nil {
		return nil, err
	}
	b, err := c.Build(ctx, buildURL)
	if err != nil {
		return nil, err
	}
	sc.Link(fmt.Sprintf("Jenkins %s #%d", p.job(), b.Number), buildURL)
	out := engine.Outputs{"number": b.Number, "url": buildURL, "result": "", "duration": 0, "queue_url": queueURL}
	if !p.Wait {
		if !b.Building {
			out["result"], out["duration"] = b.Result, int(b.Duration/1000)
		}
		return out, nil
	}
	b, tail, err := p.follow(ctx, sc, c, buildURL, deadline)
	if err != nil {
		return nil, err
	}
	out["result"], out["duration"] = b.Result, int(b.Duration/1000)
	sc.Logf("jenkins: %s #%d finished: %s in %s", p.job(), b.Number, b.Result, time.Duration(b.Duration)*time.Millisecond)
	if !p.accepted(b.Result) {
		return out, fmt.Errorf("jenkins: %s #%d ended %s (%s); last %d lines of the console:\n%s",
			p.job(), b.Number, b.Result, buildURL, len(tail), strings.Join(tail, "\n"))
	}
	return out, nil
}

// queued returns a waiting queue item of this job with this release's parameters, if any
// (someone triggered it, or an earlier attempt's answer was lost).
func (p *BuildStep) queued(ctx context.Context, c *Client) string {
	if len(p.matchKeys()) == 0 {
		return ""
	}
	items, err := c.Queue(ctx)
	if err != nil {
		return "" // only an optimisation over the build list; triggering is still safe
	}
	want := JobPath(p.job())
	for _, q := range items {
		u, err := url.Parse(q.Task.URL)
		if err != nil || !strings.HasSuffix(strings.TrimRight(u.Path, "/")+"/", "/"+want) {
			continue
		}
		if p.matches(q.Params()) {
			ref, err := c.base.Parse("queue/item/" + strconv.Itoa(q.ID) + "/")
			if err == nil {
				return ref.String()
			}
		}
	}
	return ""
}

var errCancelled = errors.New("queue item cancelled")

var queueIDRE = regexp.MustCompile(`/queue/item/(\d+)/?$`)

// waitQueue polls the queue item until its build starts.
func (p *BuildStep) waitQueue(ctx context.Context, sc *engine.StepContext, c *Client, queueURL string, deadline time.Time) (string, error) {
	lastWhy := ""
	for {
		q, err := c.QueueItem(ctx, queueURL)
		if errors.Is(err, ErrQueueItemGone) {
			// The item left the queue more than five minutes ago: find its build by queueId.
			m := queueIDRE.FindStringSubmatch(queueURL)
			if m != nil {
				id, _ := strconv.Atoi(m[1])
				j, jerr := c.Job(ctx, p.job(), lookBack)
				if jerr != nil {
					return "", jerr
				}
				for _, b := range j.Builds {
					if b.QueueID == id {
						return c.JobURL(p.job()) + strconv.Itoa(b.Number) + "/", nil
					}
				}
			}
			return "", fmt.Errorf("%w, and no recent build of %s came from it: it was probably cancelled; check the job's history", err, p.job())
		}
		if err != nil {
			return "", err
		}
		if q.Executable != nil && q.Executable.Number > 0 {
			return c.JobURL(p.job()) + strconv.Itoa(q.Executable.Number) + "/", nil
		}
		if q.Cancelled {
			return "", fmt.Errorf("jenkins: queue item %s of %s was cancelled before its build started (a person or another job cancelled it): %w", queueURL, p.job(), errCancelled)
		}
		if q.Why != "" && q.Why != lastWhy {
			sc.Logf("jenkins: queued: %s", q.Why)
			lastWhy = q.Why
		}
		if sc.Now().After(deadline) {
			return "", fmt.Errorf("jenkins: gave up after %s: queue item %s of %s has not started (%s); it is still queued", p.Timeout, queueURL, p.job(), q.Why)
		}
		if err := sc.Sleep(ctx, p.poll()); err != nil {
			return "", err
		}
	}
}

// consoleNote matches the hidden annotations Jenkins may leave in a console.
var consoleNote = regexp.MustCompile("\x1b\\[8mha:[^\x1b]*\x1b\\[0m")

// follow streams the console into the log line by line and waits for the result. It
// returns the finished build and the console's last lines.
func (p *BuildStep) follow(ctx context.Context, sc *engine.StepContext, c *Client, buildURL string, deadline time.Time) (*Build, []string, error) {
	var (
		start   int64
		partial string
		tail    []string
	)
	emit := func(line string) {
		line = strings.TrimRight(consoleNote.ReplaceAllString(line, ""), "\r")
		sc.Logf("%s", line)
		tail = append(tail, line)
		if len(tail) > tailLines {
			tail = tail[len(tail)-tailLines:]
		}
	}
	for {
		text, next, more, err := c.ProgressiveText(ctx, buildURL, start)
		if err != nil {
			return nil, tail, err
		}
		if next < start { // the server restarted the text ("rolled over"): skip what we have
			text, next = "", start
		}
		start = next
		lines := strings.Split(partial+text, "\n")
		partial = lines[len(lines)-1]
		for _, l := range lines[:len(lines)-1] {
			emit(l)
		}
		if !more {
			if partial != "" {
				emit(partial)
				partial = ""
			}
			break
		}
		if sc.Now().After(deadline) {
			return nil, tail, fmt.Errorf("jenkins: gave up after %s waiting for %s (still running; it was not aborted)", p.Timeout, buildURL)
		}
		if err := sc.Sleep(ctx, p.poll()); err != nil {
			return nil, tail, err
		}
	}
	for {
		b, err := c.Build(ctx, buildURL)
		if err != nil {
			return nil, tail, err
		}
		if !b.Building && b.Result != "" {
			return b, tail, nil
		}
		if sc.Now().After(deadline) {
			return nil, tail, fmt.Errorf("jenkins: gave up after %s waiting for the result of %s", p.Timeout, buildURL)
		}
		if err := sc.Sleep(ctx, p.poll()); err != nil {
			return nil, tail, err
		}
	}
}
