package jenkins

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cessda/runbook/engine"
)

func init() {
	engine.Register(engine.StepType{
		Name:     "jenkins.commit_build",
		ReadOnly: true, // finds and follows a build, triggers none
		Summary:  "find the CI build of a commit (the Git plugin's BuildData) and wait for its result",
		Doc: "Read-only. Finds the newest build of the component's CI branch job (a multibranch job such as " +
			"`cessda.cvs.two/main`) whose Git BuildData says it built the release commit, waits while it runs or " +
			"until CI has built the commit, and outputs its number and image tag (`main-N`). With `build` given " +
			"(a number or an image tag such as main-950), that build is read instead, and a build of another commit " +
			"is refused: promoting it would release code that was not tagged.",
		New:        func() engine.Step { return &CommitBuildStep{} },
		Connection: "jenkins",
		Outputs: []engine.Output{
			{Name: "number", Type: engine.TypeInt, Desc: "the build number"},
			{Name: "url", Type: engine.TypeString, Desc: "the build's URL"},
			{Name: "commit", Type: engine.TypeString, Desc: "the full SHA the build built, from its Git BuildData"},
			{Name: "image_tag", Type: engine.TypeString, Desc: "the image tag the build pushed, from image_tag_format (main-N)"},
			{Name: "result", Type: engine.TypeString, Desc: "the build's result (one of accept)"},
			{Name: "job", Type: engine.TypeString, Desc: "the job's full path"},
			{Name: "image", Type: engine.TypeString, Desc: "the image reference the build pushed, image:image_tag (empty when image is not given)"},
		},
	})
}

// CommitBuildStep is the jenkins.commit_build step.
type CommitBuildStep struct {
	Connection     string          `json:"connection" desc:"the jenkins connection to use"`
	Job            string          `json:"job" required:"true" desc:"the component's CI branch job, folders separated by / (cessda.cvs.two/main)"`
	Commit         string          `json:"commit" required:"true" desc:"the release commit's SHA (7 to 40 hex digits; a short one matches as a prefix)"`
	Repo           string          `json:"repo" desc:"owner/name of the component's repository: picks its BuildData when a build carries several (shared libraries)"`
	Build          string          `json:"build" desc:"an explicit build: its number, or an image tag whose trailing digits are the number (main-950); it must have built the commit"`
	ImageTagFormat string          `json:"image_tag_format" default:"'{branch}-{number}'" desc:"the image tag a build pushes: {branch} (the job's last path element), {number}, {commit}"`
	Accept         []string        `json:"accept" default:"[SUCCESS]" desc:"results that count as success"`
	Timeout        engine.Duration `json:"timeout" default:"1h" desc:"give up waiting for CI after this long"`
	PollInterval   engine.Duration `json:"poll_interval" default:"30s" desc:"how often to look at the job's builds"`
	Image          string          `json:"image" desc:"the image repository the build pushes (e.g. cvs-frontend, or registry/path/cvs-frontend): the image output is it with the build's tag"`
}

var (
	shaRE         = regexp.MustCompile(`^[0-9a-fA-F]{7,40}$`)
	repoRE        = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)
	trailingNumRE = regexp.MustCompile(`(\d+)$`)
	placeholderRE = regexp.MustCompile(`\{[^{}]*\}`)
)

// commitLookBack is how many recent builds are searched for the commit's.
const commitLookBack = 50

// Validate checks the parameters across fields.
func (p *CommitBuildStep) Validate() error {
	if strings.Trim(p.Job, "/") == "" {
		return fmt.Errorf("job: give the CI branch job's full path, e.g. cessda.cvs.two/main")
	}
	if !shaRE.MatchString(p.Commit) {
		return fmt.Errorf("commit: %q is not a commit SHA (7 to 40 hex digits)", p.Commit)
	}
	if p.Repo != "" && !repoRE.MatchString(p.Repo) {
		return fmt.Errorf("repo: %q is not owner/name", p.Repo)
	}
	if p.Build != "" {
		if n, ok := p.buildNumber(); !ok || n <= 0 {
			return fmt.Errorf("build: %q names no build: give a number or an image tag ending in it (main-950)", p.Build)
		}
	}
	for _, ph := range placeholderRE.FindAllString(p.ImageTagFormat, -1) {
		switch ph {
		case "{branch}", "{number}", "{commit}":
		default:
			return fmt.Errorf("image_tag_format: unknown placeholder %s (use {branch}, {number}, {commit})", ph)
		}
	}
	for _, r := range p.Accept {
		if !results[r] {
			return fmt.Errorf("accept: %q is not a Jenkins result (SUCCESS, UNSTABLE, FAILURE, NOT_BUILT, ABORTED)", r)
		}
	}
	if p.PollInterval < 0 || p.Timeout < 0 {
		return fmt.Errorf("poll_interval and timeout must not be negative")
	}
	return nil
}

func (p *CommitBuildStep) job() string { return strings.Trim(p.Job, "/") }

func (p *CommitBuildStep) branch() string {
	parts := strings.Split(p.job(), "/")
	return parts[len(parts)-1]
}

func (p *CommitBuildStep) buildNumber() (int, bool) {
	m := trailingNumRE.FindStringSubmatch(strings.TrimSpace(p.Build))
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	return n, err == nil
}

func (p *CommitBuildStep) poll() time.Duration {
	if p.PollInterval <= 0 {
		return 30 * time.Second
	}
	return p.PollInterval.D()
}

func (p *CommitBuildStep) timeout() time.Duration {
	if p.Timeout <= 0 {
		return time.Hour
	}
	return p.Timeout.D()
}

// short is how a SHA is shown in messages.
func short(sha string) string {
	if len(sha) > 8 {
		return sha[:8]
	}
	return sha
}

// builtCommit returns the SHA of b that is the release commit, and whether there is one.
// Without repo any BuildData counts (a library's commit cannot equal the release's).
func (p *CommitBuildStep) builtCommit(b *Build) (string, bool) {
	want := strings.ToLower(p.Commit)
	match := func(sha string) bool { return sha != "" && strings.HasPrefix(strings.ToLower(sha), want) }
	if p.Repo != "" {
		sha := b.Revision(p.Repo)
		return sha, match(sha)
	}
	for _, r := range b.Revisions() {
		if match(r.SHA1) {
			return r.SHA1, true
		}
	}
	return b.Revision(""), false
}

// describeCommits says what b built, for an error.
func (p *CommitBuildStep) describeCommits(b *Build) string {
	revs := b.Revisions()
	if p.Repo != "" {
		if sha := b.Revision(p.Repo); sha != "" {
			return "commit " + short(sha)
		}
		return "no commit of " + p.Repo
	}
	switch len(revs) {
	case 0:
		return "no commit runbook can see (it has no Git BuildData)"
	case 1:
		return "commit " + short(revs[0].SHA1)
	}
	var parts []string
	for _, r := range revs {
		parts = append(parts, short(r.SHA1)+" ("+strings.Join(r.RemoteURLs, ", ")+")")
	}
	return "commits " + strings.Join(parts, ", ")
}

func (p *CommitBuildStep) imageTag(number int, commit string) string {
	f := p.ImageTagFormat
	if f == "" {
		f = "{branch}-{number}"
	}
	return strings.NewReplacer("{branch}", p.branch(), "{number}", strconv.Itoa(number), "{commit}", commit).Replace(f)
}

// Plan reads the job's builds (read-only) and names the build of the commit if it exists.
func (p *CommitBuildStep) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	commit := engine.KnownAfterRun
	if !sc.Unknown("commit") {
		commit = short(p.Commit)
	}
	job := sc.Show("job", p.job())
	plan := engine.Plan{Action: fmt.Sprintf("wait for the CI build of commit %s in %s", commit, job), NoChange: true}
	if p.Build != "" {
		plan.Action = fmt.Sprintf("check that build %s of %s built commit %s and wait for its result", sc.Show("build", p.Build), job, commit)
	}
	if sc.Unknown("job") || sc.Unknown("commit") || sc.Unknown("build") || sc.Unknown("repo") {
		return plan, nil
	}
	c, err := client(sc, p.Connection)
	if err != nil {
		plan.Details = append(plan.Details, "could not look the job up: "+err.Error())
		return plan, nil
	}
	var b *Build
	if p.Build != "" {
		n, _ := p.buildNumber()
		b, err = c.CommitBuild(ctx, p.job(), n)
		if err == nil {
			if _, ok := p.builtCommit(b); !ok {
				return plan, p.wrongBuild(b)
			}
		}
	} else {
		var bs []Build
		bs, err = c.CommitBuilds(ctx, p.job(), commitLookBack)
		if err == nil {
			b = p.newest(bs)
			if b == nil {
				plan.Details = append(plan.Details, fmt.Sprintf("CI has not built commit %s yet; Run waits up to %s", commit, p.timeout()))
			}
		}
	}
	if err != nil {
		if errors.Is(err, ErrJobNotFound) || errors.Is(err, ErrBuildNotFound) {
			return plan, err
		}
		switch StatusOf(err) {
		case 401, 403:
			return plan, err
		}
		plan.Details = append(plan.Details, "could not look the job up: "+err.Error())
		return plan, nil
	}
	if b != nil {
		state := b.Result
		if b.Building {
			state = "running"
		}
		sha, _ := p.builtCommit(b)
		plan.Details = append(plan.Details, fmt.Sprintf("CI build %s #%d (%s) built commit %s: image tag %s", p.job(), b.Number, state, short(sha), p.imageTag(b.Number, sha)))
	}
	return plan, nil
}

// newest returns the newest build of the release commit among bs (newest first), or nil.
func (p *CommitBuildStep) newest(bs []Build) *Build {
	for i := range bs {
		if _, ok := p.builtCommit(&bs[i]); ok {
			return &bs[i]
		}
	}
	return nil
}

// wrongBuild is the error for an explicit build of another commit. It is never retried:
// the build will not change what it built.
func (p *CommitBuildStep) wrongBuild(b *Build) error {
	return fmt.Errorf("jenkins: build %s (%s #%d) built %s, but the release commit is %s: it is not the build of the tagged commit; "+
		"give that build, or leave the override empty so runbook waits for CI to build the tagged commit",
		p.Build, p.job(), b.Number, p.describeCommits(b), short(p.Commit))
}

// Run finds (or waits for) the build of the commit, waits for its result and checks it.
func (p *CommitBuildStep) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	c, err := client(sc, p.Connection)
	if err != nil {
		return nil, err
	}
	deadline := sc.Now().Add(p.timeout())
	var b *Build
	if p.Build != "" {
		b, err = p.waitGiven(ctx, sc, c, deadline)
	} else {
		b, err = p.waitForCI(ctx, sc, c, deadline)
	}
	if err != nil {
		return nil, err
	}
	buildURL := c.JobURL(p.job()) + strconv.Itoa(b.Number) + "/"
	sc.Link(fmt.Sprintf("CI build %s #%d", p.job(), b.Number), buildURL)
	if !acceptedBy(p.Accept, b.Result) {
		return nil, fmt.Errorf("jenkins: CI build #%d of commit %s in %s ended %s (%s); fix and rebuild it, or give build: the number of a build of this commit that passed",
			b.Number, short(p.Commit), p.job(), b.Result, buildURL)
	}
	sha, _ := p.builtCommit(b)
	tag := p.imageTag(b.Number, sha)
	sc.Logf("jenkins: CI build %s #%d built commit %s: %s, image tag %s", p.job(), b.Number, short(sha), b.Result, tag)
	image := ""
	if p.Image != "" {
		image = p.Image + ":" + tag
	}
	return engine.Outputs{"number": b.Number, "url": buildURL, "commit": sha, "image_tag": tag, "result": b.Result, "job": p.job(), "image": image}, nil
}

// waitForCI polls the job until the newest build of the commit has finished.
func (p *CommitBuildStep) waitForCI(ctx context.Context, sc *engine.StepContext, c *Client, deadline time.Time) (*Build, error) {
	said := 0 // the build whose wait was logged; -1 for "no build yet"
	for {
		bs, err := c.CommitBuilds(ctx, p.job(), commitLookBack)
		if err != nil {
			return nil, err
		}
		b := p.newest(bs)
		switch {
		case b == nil:
			if said != -1 {
				sc.Logf("jenkins: waiting for CI to build commit %s in %s", short(p.Commit), p.job())
				said = -1
			}
		case b.Building:
			if said != b.Number {
				sc.Logf("jenkins: CI build %s #%d of commit %s is running; waiting for its result", p.job(), b.Number, short(p.Commit))
				said = b.Number
			}
		default:
			return b, nil
		}
		if sc.Now().After(deadline) {
			if b != nil {
				return nil, fmt.Errorf("jenkins: gave up after %s waiting for CI build %s #%d of commit %s (still running)", p.timeout(), p.job(), b.Number, short(p.Commit))
			}
			newest := "it has no builds"
			if len(bs) > 0 {
				newest = fmt.Sprintf("its newest build #%d built %s", bs[0].Number, p.describeCommits(&bs[0]))
			}
			return nil, fmt.Errorf("jenkins: gave up after %s: CI has not built commit %s in %s (%s); check that the commit was pushed to the job's branch and that the job runs",
				p.timeout(), short(p.Commit), p.job(), newest)
		}
		if err := sc.Sleep(ctx, p.poll()); err != nil {
			return nil, err
		}
	}
}

// waitGiven reads the explicit build, refuses it when it built another commit, and
// waits while it runs.
func (p *CommitBuildStep) waitGiven(ctx context.Context, sc *engine.StepContext, c *Client, deadline time.Time) (*Build, error) {
	n, _ := p.buildNumber()
	logged := false
	for {
		b, err := c.CommitBuild(ctx, p.job(), n)
		if err != nil {
			return nil, err
		}
		if _, ok := p.builtCommit(b); !ok {
			return nil, p.wrongBuild(b)
		}
		if !b.Building {
			return b, nil
		}
		if !logged {
			sc.Logf("jenkins: build %s (%s #%d) of commit %s is running; waiting for its result", p.Build, p.job(), n, short(p.Commit))
			logged = true
		}
		if sc.Now().After(deadline) {
			return nil, fmt.Errorf("jenkins: gave up after %s waiting for build %s (%s #%d, still running)", p.timeout(), p.Build, p.job(), n)
		}
		if err := sc.Sleep(ctx, p.poll()); err != nil {
			return nil, err
		}
	}
}
