package jenkinssim

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"time"
)

// Build results, as Jenkins' hudson.model.Result names them.
const (
	Success  = "SUCCESS"
	Unstable = "UNSTABLE"
	Failure  = "FAILURE"
	NotBuilt = "NOT_BUILT"
	Aborted  = "ABORTED"
)

// Build is a running or finished build, as its job's Script sees it. A script runs as a
// coroutine of the simulator: it only executes while the simulator advances its clock,
// so builds progress on simulated time and are deterministic. Script functions may call
// other simulators, but must not call this Server's methods (they would deadlock) and
// must not block on anything but Build.Sleep.
type Build struct {
	srv     *Server
	job     *job
	number  int
	queueID int
	params  []paramValue
	cause   cause
	revs    []revision // the Git plugin's BuildData actions, in checkout order

	log      []byte
	result   string
	building bool
	started  time.Time
	ended    time.Time

	// coroutine state; only touched while the server's lock is held by advance
	now     time.Time
	wake    time.Time
	resume  chan struct{}
	yield   chan struct{}
	aborted bool
}

type paramValue struct {
	Name  string
	Value string
	Bool  bool // a boolean parameter: its JSON value is true/false
}

// revision is one checkout of a build: what the Git plugin's BuildData action records.
type revision struct {
	sha    string
	remote string
	branch string // "main"; shown as refs/remotes/origin/main
}

func (r revision) json() map[string]any {
	return map[string]any{
		"_class": "hudson.plugins.git.util.BuildData",
		"lastBuiltRevision": map[string]any{"SHA1": r.sha, "branch": []any{
			map[string]any{"SHA1": r.sha, "name": "refs/remotes/origin/" + r.branch}}},
		"remoteUrls": []any{r.remote},
		"scmName":    "",
	}
}

// cause is why a build started (one entry of its CauseAction).
type cause struct {
	class  string
	short  string
	userID string
}

func userCause(user string) cause {
	return cause{class: "hudson.model.Cause$UserIdCause", short: "Started by user " + user, userID: user}
}

func pushCause(branch string) cause {
	return cause{class: "jenkins.branch.BranchEventCause", short: "Push event to branch " + branch}
}

func (c cause) action() map[string]any {
	m := map[string]any{"_class": c.class, "shortDescription": c.short}
	if c.userID != "" {
		m["userId"] = c.userID
	}
	return map[string]any{"_class": "hudson.model.CauseAction", "causes": []any{m}}
}

// Number is the build number.
func (b *Build) Number() int { return b.number }

// Job is the job's full path ("folder/name").
func (b *Build) Job() string { return b.job.def.Path }

// Param returns the value of a parameter of this build ("" when there is none).
func (b *Build) Param(name string) string {
	for _, p := range b.params {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}

// Params returns the build's parameters.
func (b *Build) Params() map[string]string {
	m := make(map[string]string, len(b.params))
	for _, p := range b.params {
		m[p.Name] = p.Value
	}
	return m
}

// Revision is the commit the build checked out first (its job's own repository when it
// was started by BuildCommit); "" when it checked nothing out.
func (b *Build) Revision() string {
	if len(b.revs) == 0 {
		return ""
	}
	return b.revs[0].sha
}

// AddBuildData records one more checkout, as the Git plugin does for each repository a
// pipeline checks out (a shared library, a second repository).
func (b *Build) AddBuildData(sha, remoteURL string) {
	b.revs = append(b.revs, revision{sha: sha, remote: remoteURL, branch: branchOf(b.job.def.Path)})
}

// branchOf is the last element of a job's path: a multibranch job's branch.
func branchOf(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	return parts[len(parts)-1]
}

// Now is the simulated time inside the build.
func (b *Build) Now() time.Time { return b.now }

// Logf appends one line to the console.
func (b *Build) Logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	b.log = append(b.log, strings.TrimRight(line, "\n")...)
	b.log = append(b.log, '\n')
}

// Write appends raw bytes to the console; a partial line stays invisible to
// progressiveText until it is completed, as on a real server.
func (b *Build) Write(p []byte) (int, error) {
	b.log = append(b.log, p...)
	return len(p), nil
}

// Sleep lets simulated time pass inside the build (the log stays as it is meanwhile).
func (b *Build) Sleep(d time.Duration) {
	if d < 0 {
		d = 0
	}
	b.wake = b.now.Add(d)
	b.yield <- struct{}{}
	<-b.resume
	if b.aborted {
		runtime.Goexit()
	}
}

// SetResult sets the result the build ends with (SUCCESS when never set). A worse result
// set earlier is kept, as Jenkins' Run.setResult does.
func (b *Build) SetResult(r string) {
	if b.result == "" || resultOrdinal(r) > resultOrdinal(b.result) {
		b.result = r
	}
}

func resultOrdinal(r string) int {
	switch r {
	case Success:
		return 0
	case Unstable:
		return 1
	case Failure:
		return 2
	case NotBuilt:
		return 3
	case Aborted:
		return 4
	}
	return -1
}

// start launches the script goroutine and runs it up to its first Sleep.
func (b *Build) start(script func(*Build)) {
	b.resume = make(chan struct{})
	b.yield = make(chan struct{})
	go func() {
		<-b.resume
		defer func() {
			if r := recover(); r != nil {
				b.Logf("java.lang.RuntimeException: script panicked: %v", r)
				b.SetResult(Failure)
			}
			if b.aborted {
				b.Logf("Aborted by %s", b.srv.abortUser(b))
				b.result = Aborted
			}
			if b.result == "" {
				b.result = Success
			}
			b.Logf("Finished: %s", b.result)
			b.building = false
			b.ended = b.now
			b.yield <- struct{}{}
		}()
		b.Logf("%s", b.cause.short)
		script(b)
	}()
	b.step(b.started)
}

// step resumes the script at simulated time t and waits until it sleeps or ends.
func (b *Build) step(t time.Time) {
	b.now = t
	b.resume <- struct{}{}
	<-b.yield
}

// BuildInfo is a snapshot of a build for tests.
type BuildInfo struct {
	Job      string
	Number   int
	QueueID  int
	Params   map[string]string
	Revision string // the SHA of its first BuildData, "" when none
	Cause    string // the short description of why it started
	Building bool
	Result   string
	Started  time.Time
	Duration time.Duration
	Log      string
}

func (b *Build) info() BuildInfo {
	bi := BuildInfo{Job: b.job.def.Path, Number: b.number, QueueID: b.queueID, Params: b.Params(),
		Revision: b.Revision(), Cause: b.cause.short, Building: b.building, Result: b.result, Started: b.started, Log: string(b.log)}
	if !b.building {
		bi.Duration = b.ended.Sub(b.started)
	} else {
		bi.Result = ""
	}
	return bi
}

func (b *Build) url() string {
	return b.srv.rootURL() + jobURLPath(b.job.def.Path) + fmt.Sprintf("%d/", b.number)
}

func (b *Build) json() map[string]any {
	var params []any
	for _, p := range b.params {
		var v any = p.Value
		class := "hudson.model.StringParameterValue"
		if p.Bool {
			v = p.Value == "true"
			class = "hudson.model.BooleanParameterValue"
		}
		params = append(params, map[string]any{"_class": class, "name": p.Name, "value": v})
	}
	actions := []any{b.cause.action()}
	for _, r := range b.revs {
		actions = append(actions, r.json())
	}
	if len(params) > 0 {
		actions = append([]any{map[string]any{"_class": "hudson.model.ParametersAction", "parameters": params}}, actions...)
	}
	var result any
	duration := int64(0)
	if !b.building {
		result = b.result
		duration = b.ended.Sub(b.started).Milliseconds()
	}
	return map[string]any{
		"_class":            "org.jenkinsci.plugins.workflow.job.WorkflowRun",
		"number":            b.number,
		"id":                fmt.Sprint(b.number),
		"url":               b.url(),
		"building":          b.building,
		"result":            result,
		"duration":          duration,
		"estimatedDuration": b.job.estimatedDuration(),
		"timestamp":         b.started.UnixMilli(),
		"queueId":           b.queueID,
		"displayName":       fmt.Sprintf("#%d", b.number),
		"fullDisplayName":   fmt.Sprintf("%s #%d", strings.ReplaceAll(b.job.def.Path, "/", " » "), b.number),
		"keepLog":           false,
		"actions":           actions,
		"artifacts":         []any{},
	}
}

// sortedBuilds returns the job's builds newest first, as Jenkins lists them.
func sortedBuilds(bs []*Build) []*Build {
	out := append([]*Build(nil), bs...)
	sort.Slice(out, func(i, j int) bool { return out[i].number > out[j].number })
	return out
}
