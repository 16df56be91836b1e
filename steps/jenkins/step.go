package jenkins

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
			"streams the console into the run's log and waits for the result. " +
			"A build belongs to this step only if this run triggered it: the step records its intent before it " +
			"posts the trigger and the queue item right after, and follows only that item's build. " +
			"When the job defines a string parameter named run_parameter (default RUNBOOK_RUN), runbook sets it to " +
			"RUN_ID/STEP_ID, so an attempt that stopped between the trigger and its record finds its queue item " +
			"or build again. Without that parameter runbook cannot know whether such a trigger reached Jenkins: " +
			"the step waits for a person (`runbook resume RUN --skip STEP --reason ...` when the build ran, " +
			"`--confirm STEP` to trigger again). A build with the same parameters from another run, or from a person, " +
			"is never followed: two releases with identical parameters trigger two builds. " +
			"Used for `cessda.<product>.deploy.prod`, `cessda.<product>.rollback` and `cessda.cdc.es.backup`.",
		New:        func() engine.Step { return &BuildStep{} },
		Connection: "jenkins",
		Outputs: []engine.Output{
			{Name: "number", Type: engine.TypeInt, Desc: "the build number"},
			{Name: "url", Type: engine.TypeString, Desc: "the build's URL"},
			{Name: "result", Type: engine.TypeString, Desc: "SUCCESS, UNSTABLE, FAILURE, NOT_BUILT or ABORTED; empty when wait is false and the build still runs"},
			{Name: "duration", Type: engine.TypeInt, Desc: "the build's duration in whole seconds (0 while it runs)"},
			{Name: "queue_url", Type: engine.TypeString, Desc: "the queue item this step triggered; empty when an interrupted attempt's build was found by its run marker"},
		},
	})
}

// DefaultRunParameter is the job parameter that carries runbook's run marker
// (RUN_ID/STEP_ID) unless run_parameter names another.
const DefaultRunParameter = "RUNBOOK_RUN"

// BuildStep is the jenkins.build step.
type BuildStep struct {
	Connection   string            `json:"connection" desc:"the jenkins connection to use"`
	Job          string            `json:"job" required:"true" desc:"the job's full path, folders separated by / (cessda.cdc.deploy/main)"`
	Parameters   map[string]string `json:"parameters" desc:"build parameters; none triggers /build, some trigger /buildWithParameters"`
	Wait         bool              `json:"wait" default:"true" desc:"wait for the result; when false, return as soon as the build has started"`
	PollInterval engine.Duration   `json:"poll_interval" default:"5s" desc:"how often to poll the queue, the console and the build"`
	Timeout      engine.Duration   `json:"timeout" default:"2h" desc:"give up waiting after this long (the build is not aborted)"`
	RunParameter string            `json:"run_parameter" default:"RUNBOOK_RUN" desc:"a string parameter that, when the job defines it, runbook sets to RUN_ID/STEP_ID so an interrupted step finds the build it triggered"`
	Accept       []string          `json:"accept" default:"[SUCCESS]" desc:"results that count as success"`
}

var results = map[string]bool{"SUCCESS": true, "UNSTABLE": true, "FAILURE": true, "NOT_BUILT": true, "ABORTED": true}

// lookBack is how many recent builds are searched for this step's build.
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
	if _, ok := p.Parameters[p.runParam()]; ok {
		return fmt.Errorf("parameters: %s is set by runbook (see run_parameter); leave it out", p.runParam())
	}
	if p.PollInterval < 0 || p.Timeout < 0 {
		return fmt.Errorf("poll_interval and timeout must not be negative")
	}
	return nil
}

func (p *BuildStep) job() string { return strings.Trim(p.Job, "/") }

func (p *BuildStep) runParam() string {
	if p.RunParameter == "" {
		return DefaultRunParameter
	}
	return p.RunParameter
}

func (p *BuildStep) poll() time.Duration {
	if p.PollInterval <= 0 {
		return 5 * time.Second
	}
	return p.PollInterval.D()
}

func (p *BuildStep) accepted(result string) bool {
	return acceptedBy(p.Accept, result)
}

func acceptedBy(accept []string, result string) bool {
	if len(accept) == 0 {
		return result == "SUCCESS"
	}
	for _, a := range accept {
		if a == result {
			return true
		}
	}
	return false
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

// runMarker identifies this step of this run (and its foreach item, whose attempts share
// the step's id) in the job's run parameter.
func runMarker(sc *engine.StepContext) string {
	m := sc.RunID + "/" + sc.StepID
	if sc.Item != nil {
		m += "/" + itemKey(sc.Item)
	}
	return m
}

// itemKey names a foreach item: itself when it is a short scalar, else a hash of it.
func itemKey(v any) string {
	switch x := v.(type) {
	case string:
		if x != "" && len(x) <= 40 && !strings.ContainsAny(x, "/ \t\n") {
			return x
		}
	case int, int64, float64, bool:
		return fmt.Sprint(x)
	}
	b, _ := json.Marshal(v)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:6])
}

// triggerIntent is recorded before the trigger is posted, so a later attempt knows one
// may have reached Jenkins even when its answer was lost.
type triggerIntent struct {
	At     time.Time `json:"at"`
	Marker string    `json:"marker,omitempty"` // "" when the job has no run parameter
	// State is notQueued once Jenkins certainly queued nothing.
	State string `json:"state,omitempty"`
	// Confirmed is the person's answer that allowed this trigger; it allows no other.
	Confirmed *engine.Confirmation `json:"confirmed,omitempty"`
}

const notQueued = "not queued"

// client builds the API client from the connection; the token only ever goes into the
// Authorization header.
func client(sc *engine.StepContext, name string) (*Client, error) {
	conn, err := sc.Connection(name, "jenkins")
	if err != nil {
		return nil, fmt.Errorf("jenkins: %w", err)
	}
	base := conn.URL
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
	c.tokenEnv = conn.SecretSource("")
	c.Sleep = sc.Sleep
	return c, nil
}

// Plan looks the job up (read-only) and says whether a build would be triggered or the
// one this step already started followed.
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
	var rec string
	if (sc.Recall("build_url", &rec) || sc.Recall("queue_url", &rec)) && rec != "" {
		plan.Details = append(plan.Details, "this step already started "+rec+"; it would be followed, not triggered again")
		return plan, nil
	}
	var in triggerIntent
	if sc.Recall("trigger_intent", &in) && in.State != notQueued {
		how := "runs again only if a person confirms it (the job has no " + p.runParam() + " parameter)"
		if in.Marker != "" {
			how = "is looked for by its " + p.runParam() + "=" + in.Marker + " before anything is triggered"
		}
		plan.Details = append(plan.Details, fmt.Sprintf("an earlier attempt triggered the job at %s and stopped before Jenkins' answer was recorded; that build %s",
			in.At.UTC().Format(time.RFC3339), how))
	}
	c, err := client(sc, p.Connection)
	if err != nil {
		plan.Details = append(plan.Details, "could not look the job up: "+err.Error())
		return plan, nil
	}
	j, err := c.Job(ctx, p.job(), 0)
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
	plan.Details = append(plan.Details, "a new build will be triggered; builds of other runs or people are not followed")
	if p.hasRunParam(j) {
		marker := runMarker(sc)
		if sc.RunID == "" {
			marker = "RUN_ID/" + sc.StepID
		}
		plan.Details = append(plan.Details, fmt.Sprintf("its %s parameter is set to %s", p.runParam(), marker))
	} else {
		plan.Details = append(plan.Details, fmt.Sprintf("the job has no %s string parameter: if runbook stops between the trigger and Jenkins' answer, a person must say whether the build started", p.runParam()))
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
// them silently).
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

// hasRunParam reports whether the job defines the run parameter as a string.
func (p *BuildStep) hasRunParam(j *Job) bool {
	for _, d := range j.ParamDefs() {
		if d.Name == p.runParam() {
			return d.Type == "" || strings.Contains(d.Type, "String") || strings.Contains(d.Type, "Text")
		}
	}
	return false
}

// Run triggers the job, or finds the build this step already triggered, and follows it.
func (p *BuildStep) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	c, err := client(sc, p.Connection)
	if err != nil {
		return nil, err
	}
	deadline := sc.Now().Add(p.Timeout.D())
	if p.Timeout <= 0 {
		deadline = sc.Now().Add(2 * time.Hour)
	}

	buildURL, queueURL, err := p.startedBuild(ctx, sc, c, deadline)
	if err != nil {
		return nil, err
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

// startedBuild returns this step's build: the one an earlier attempt recorded, the one its
// recorded queue item became, the one a trigger whose answer was lost started (found by the
// run marker), or else a new one, triggered now. queueURL is empty when the build was
// found without its queue item.
func (p *BuildStep) startedBuild(ctx context.Context, sc *engine.StepContext, c *Client, deadline time.Time) (buildURL, queueURL string, err error) {
	sc.Recall("queue_url", &queueURL)
	cancelled := false // the recorded queue item was cancelled: trigger anew
	if sc.Recall("build_url", &buildURL) && buildURL != "" {
		sc.Logf("jenkins: following build %s started by an earlier attempt", buildURL)
		return buildURL, queueURL, nil
	}
	if queueURL != "" {
		sc.Logf("jenkins: following queue item %s triggered by an earlier attempt", queueURL)
		buildURL, err = p.waitQueue(ctx, sc, c, queueURL, deadline)
		if errors.Is(err, errCancelled) {
			sc.Logf("jenkins: that queue item was cancelled before a build started; triggering again")
			queueURL, err, cancelled = "", nil, true
		}
		if err != nil || buildURL != "" || queueURL != "" {
			return buildURL, queueURL, err
		}
	}
	j, err := c.Job(ctx, p.job(), 0)
	if err != nil {
		return "", "", err
	}
	if err := p.checkJob(j); err != nil {
		return "", "", err
	}
	var (
		in        triggerIntent
		confirmed *engine.Confirmation
	)
	if !cancelled && sc.Recall("trigger_intent", &in) && in.State != notQueued {
		buildURL, queueURL, confirmed, err = p.findTriggered(ctx, sc, c, in)
		if err != nil {
			return "", "", err
		}
	}
	if buildURL == "" && queueURL == "" {
		if queueURL, err = p.trigger(ctx, sc, c, j, confirmed); err != nil {
			return "", "", err
		}
	}
	if buildURL == "" {
		if buildURL, err = p.waitQueue(ctx, sc, c, queueURL, deadline); err != nil {
			return "", "", err
		}
	}
	return buildURL, queueURL, nil
}

// trigger records the intent, posts the trigger and records the queue item. Between the
// two records only the run marker (when the job has the parameter) can tell a later
// attempt whether the trigger reached Jenkins.
func (p *BuildStep) trigger(ctx context.Context, sc *engine.StepContext, c *Client, j *Job, confirmed *engine.Confirmation) (string, error) {
	params := make(map[string]string, len(p.Parameters)+1)
	for k, v := range p.Parameters {
		params[k] = v
	}
	in := triggerIntent{At: sc.Now(), Confirmed: confirmed}
	if p.hasRunParam(j) {
		in.Marker = runMarker(sc)
		params[p.runParam()] = in.Marker
	}
	if err := sc.Record("trigger_intent", in); err != nil {
		return "", err
	}
	var old string
	if sc.Recall("queue_url", &old) && old != "" {
		if err := sc.Record("queue_url", ""); err != nil { // a cancelled item, no longer this step's
			return "", err
		}
	}
	queueURL, merged, err := c.trigger(ctx, p.job(), params)
	if err != nil {
		if NotQueued(err) {
			in.State = notQueued
			if rerr := sc.Record("trigger_intent", in); rerr != nil {
				return "", errors.Join(err, rerr)
			}
		}
		return "", err
	}
	// Recorded before waiting: a crash from here on finds the item, never triggers again.
	if err := sc.Record("queue_url", queueURL); err != nil {
		return "", err
	}
	shown := p.describeParams(sc)
	if in.Marker != "" {
		shown += " " + p.runParam() + "=" + in.Marker
	}
	sc.Logf("jenkins: triggered %s with %s: queue item %s", p.job(), shown, queueURL)
	if merged {
		sc.Logf("jenkins: Jenkins merged the request into that item, which was already waiting with identical parameters (303)")
	}
	return queueURL, nil
}

// findTriggered looks for what an interrupted attempt triggered: its intent is recorded,
// its queue item is not. It returns the build or queue item found, or neither when the
// trigger certainly never reached Jenkins or a person confirmed triggering again (then
// with that confirmation).
func (p *BuildStep) findTriggered(ctx context.Context, sc *engine.StepContext, c *Client, in triggerIntent) (string, string, *engine.Confirmation, error) {
	if in.Marker == "" {
		var conf engine.Confirmation
		if sc.Recall("confirmation", &conf) && conf.Answer == "yes" && !sameConfirmation(in.Confirmed, &conf) {
			sc.Logf("jenkins: an earlier attempt may have triggered %s; %s confirmed triggering it again", p.job(), conf.By)
			return "", "", &conf, nil
		}
		return "", "", nil, engine.Waiting("jenkins: an earlier attempt triggered %s at %s and stopped before Jenkins' answer was recorded; "+
			"the job has no %s parameter, so runbook cannot tell whether that build exists. Look at the job (%s), then: "+
			"runbook resume %s --skip %s --reason \"it ran as build #N\", or --confirm %s to trigger it again",
			p.job(), in.At.UTC().Format(time.RFC3339), p.runParam(), c.JobURL(p.job()), sc.RunID, sc.StepID, sc.StepID)
	}
	// The queue first, then the builds: an item that leaves the queue in between is a build
	// by the time the builds are read.
	items, err := c.Queue(ctx)
	if err != nil {
		return "", "", nil, err
	}
	for _, q := range items {
		if p.ofThisJob(q) && q.Params()[p.runParam()] == in.Marker {
			ref, err := c.base.Parse("queue/item/" + strconv.Itoa(q.ID) + "/")
			if err != nil {
				return "", "", nil, fmt.Errorf("jenkins: queue item %d: %v", q.ID, err)
			}
			if err := sc.Record("queue_url", ref.String()); err != nil {
				return "", "", nil, err
			}
			sc.Logf("jenkins: found queue item %s with %s=%s, triggered by an earlier attempt; following it", ref, p.runParam(), in.Marker)
			return "", ref.String(), nil, nil
		}
	}
	j, err := c.Job(ctx, p.job(), lookBack)
	if err != nil {
		return "", "", nil, err
	}
	since := in.At.Add(-time.Minute) // allow for clock skew with the server
	for _, b := range j.Builds {
		if b.Params()[p.runParam()] == in.Marker && !time.UnixMilli(b.Timestamp).Before(since) {
			u := c.JobURL(p.job()) + strconv.Itoa(b.Number) + "/"
			sc.Logf("jenkins: found build #%d of %s with %s=%s, triggered by an earlier attempt; following it", b.Number, p.job(), p.runParam(), in.Marker)
			return u, "", nil, nil
		}
	}
	sc.Logf("jenkins: no queue item or recent build of %s carries %s=%s: the earlier attempt's trigger never reached Jenkins; triggering now", p.job(), p.runParam(), in.Marker)
	return "", "", nil, nil
}

func sameConfirmation(a, b *engine.Confirmation) bool {
	return a != nil && b != nil && a.By == b.By && a.At.Equal(b.At) && a.Answer == b.Answer && a.Reason == b.Reason
}

// ofThisJob reports whether the queue item is a build of this step's job.
func (p *BuildStep) ofThisJob(q QueueItem) bool {
	u, err := url.Parse(q.Task.URL)
	return err == nil && strings.HasSuffix(strings.TrimRight(u.Path, "/")+"/", "/"+JobPath(p.job()))
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
