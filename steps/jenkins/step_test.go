package jenkins_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/engine/enginetest"
	"github.com/cessda/runbook/steps/jenkins"
	"github.com/cessda/runbook/steps/jenkins/jenkinssim"
)

const (
	user   = "release-bot"
	canary = "CANARY-11f3a9c2e7d04b5a"
	deploy = "cessda.cdc.deploy/main"
)

var deployParams = []jenkinssim.Param{
	{Name: "osmh_indexer_image_tag", Default: "main-latest"},
	{Name: "coordiante_portal_image_tag", Default: "main-latest"},
	{Name: "cluster", Type: "choice", Choices: []string{"development-cluster", "staging-cluster", "production-cluster"}},
	{Name: "deployApp", Type: "boolean", Default: "true"},
}

// deployScript logs a line every simulated second for n lines, then ends with result.
func deployScript(n int, result string) func(b *jenkinssim.Build) {
	return func(b *jenkinssim.Build) {
		b.Logf("[Pipeline] Start of Pipeline")
		for i := 1; i <= n; i++ {
			b.Logf("line %d: helm upgrade cdc indexer=%s", i, b.Param("osmh_indexer_image_tag"))
			b.Sleep(time.Second)
		}
		b.SetResult(result)
	}
}

type fixture struct {
	srv *jenkinssim.Server
	ctx *enginetest.Context
}

// setup starts a simulator that shares the step context's fake clock, so builds progress
// exactly as fast as the step's polling sleeps.
func setup(t *testing.T, opts ...jenkinssim.Option) *fixture {
	t.Helper()
	ctx := enginetest.NewContext(t, "deploy")
	srv := jenkinssim.New(append([]jenkinssim.Option{
		jenkinssim.WithClock(ctx.Clock),
		jenkinssim.WithUser(user, canary),
	}, opts...)...)
	t.Cleanup(srv.Close)
	ctx.Conns["jenkins"] = &engine.Connection{Name: "jenkins", Type: "jenkins", URL: srv.URL(),
		Settings: map[string]string{"user": user}, Token: canary}
	return &fixture{srv: srv, ctx: ctx}
}

// again returns a fresh context (new log) on the same journal, connections and clock: a
// second attempt of the same step in the same run.
func (f *fixture) again(t *testing.T) *enginetest.Context {
	c := enginetest.NewContext(t, "deploy")
	c.Conns = f.ctx.Conns
	c.Clock = f.ctx.Clock
	c.Journal = f.ctx.StepContext.Journal
	return c
}

func deployStep(t *testing.T, extra map[string]any) engine.Step {
	with := map[string]any{
		"connection": "jenkins",
		"job":        deploy,
		"parameters": map[string]any{"osmh_indexer_image_tag": "main-123", "coordiante_portal_image_tag": "main-77", "cluster": "production-cluster"},
	}
	for k, v := range extra {
		with[k] = v
	}
	return enginetest.Decode(t, "jenkins.build", with)
}

func noCanary(t *testing.T, c *enginetest.Context, out engine.Outputs, err error) {
	t.Helper()
	if strings.Contains(c.LogText(), canary) {
		t.Errorf("the token appears in the log")
	}
	if strings.Contains(fmt.Sprint(out), canary) {
		t.Errorf("the token appears in the outputs")
	}
	if err != nil && strings.Contains(err.Error(), canary) {
		t.Errorf("the token appears in the error")
	}
	for _, l := range c.Links() {
		if strings.Contains(l, canary) {
			t.Errorf("the token appears in a link")
		}
	}
}

func TestHappyPathFolderAndParams(t *testing.T) {
	f := setup(t, jenkinssim.WithJobs(jenkinssim.Job{Path: deploy, Params: deployParams, Script: deployScript(10, jenkinssim.Success)}))
	out, err := deployStep(t, nil).Run(context.Background(), f.ctx.StepContext)
	if err != nil {
		t.Fatal(err)
	}
	wantURL := f.srv.URL() + "/job/cessda.cdc.deploy/job/main/1/"
	if out["number"] != 1 || out["url"] != wantURL || out["result"] != "SUCCESS" || out["duration"] != 10 {
		t.Errorf("outputs = %v", out)
	}
	if q, _ := out["queue_url"].(string); !strings.HasPrefix(q, f.srv.URL()+"/queue/item/") {
		t.Errorf("queue_url = %q", q)
	}
	bs := f.srv.Builds(deploy)
	if len(bs) != 1 {
		t.Fatalf("builds = %d", len(bs))
	}
	want := map[string]string{"osmh_indexer_image_tag": "main-123", "coordiante_portal_image_tag": "main-77",
		"cluster": "production-cluster", "deployApp": "true"}
	if fmt.Sprint(bs[0].Params) != fmt.Sprint(want) {
		t.Errorf("build params = %v, want %v", bs[0].Params, want)
	}
	if n := f.srv.Triggers(deploy); n != 1 {
		t.Errorf("triggers = %d", n)
	}
	var posted bool
	for _, r := range f.srv.Writes() {
		if r.Path == "/job/cessda.cdc.deploy/job/main/buildWithParameters" && r.Status == http.StatusCreated {
			posted = true
		}
	}
	if !posted {
		t.Errorf("no 201 from /job/cessda.cdc.deploy/job/main/buildWithParameters: %v", f.srv.Writes())
	}
	t.Logf("requests for a 10s build polled every 5s: %d", len(f.srv.Requests()))
	if f.ctx.Links()["Jenkins "+deploy+" #1"] != wantURL {
		t.Errorf("links = %v", f.ctx.Links())
	}
	noCanary(t, f.ctx, out, err)
}

func TestUnparameterizedJobUsesBuild(t *testing.T) {
	f := setup(t, jenkinssim.WithJobs(jenkinssim.Job{Path: "cessda.cdc.es.backup"}))
	s := enginetest.Decode(t, "jenkins.build", map[string]any{"job": "cessda.cdc.es.backup"})
	out, err := s.Run(context.Background(), f.ctx.StepContext)
	if err != nil {
		t.Fatal(err)
	}
	if out["result"] != "SUCCESS" || f.srv.Writes()[0].Path != "/job/cessda.cdc.es.backup/build" {
		t.Errorf("out %v writes %v", out, f.srv.Writes())
	}
}

func TestConsoleStreamedInOrderWithoutDuplicates(t *testing.T) {
	script := func(b *jenkinssim.Build) {
		for i := 1; i <= 40; i++ {
			if i%7 == 0 {
				// half a line now, the rest later: it must come out whole, once
				fmt.Fprintf(b, "line %d: first half", i)
				b.Sleep(3 * time.Second)
				fmt.Fprintf(b, " second half\n")
			} else {
				b.Logf("line %d", i)
			}
			if i%3 == 0 {
				b.Sleep(2 * time.Second)
			}
		}
	}
	f := setup(t, jenkinssim.WithJobs(jenkinssim.Job{Path: deploy, Params: deployParams, Script: script}))
	if _, err := deployStep(t, map[string]any{"poll_interval": "1s"}).Run(context.Background(), f.ctx.StepContext); err != nil {
		t.Fatal(err)
	}
	b, _ := f.srv.Build(deploy, 1)
	want := strings.Split(strings.TrimRight(b.Log, "\n"), "\n")
	var got []string
	for _, l := range f.ctx.Log() {
		if !strings.HasPrefix(l, "jenkins: ") {
			got = append(got, l)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("console in the log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var reads int
	for _, r := range f.srv.Requests() {
		if strings.HasSuffix(r.Path, "/logText/progressiveText") {
			reads++
		}
	}
	if reads < 10 {
		t.Errorf("the console was read %d times: not streamed", reads)
	}
}

func TestFailureReportsConsoleTail(t *testing.T) {
	f := setup(t, jenkinssim.WithJobs(jenkinssim.Job{Path: deploy, Params: deployParams, Script: deployScript(50, jenkinssim.Failure)}))
	out, err := deployStep(t, nil).Run(context.Background(), f.ctx.StepContext)
	if err == nil {
		t.Fatal("no error for a FAILURE")
	}
	msg := err.Error()
	for _, want := range []string{"cessda.cdc.deploy/main #1 ended FAILURE", "line 50: helm upgrade", "Finished: FAILURE", "last 30 lines"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "line 20:") {
		t.Errorf("error holds more than the tail:\n%s", msg)
	}
	if ok, _ := engine.IsTransient(err); ok {
		t.Error("a failed build must not be retried by the engine")
	}
	noCanary(t, f.ctx, out, err)
}

func TestAcceptUnstable(t *testing.T) {
	f := setup(t, jenkinssim.WithJobs(jenkinssim.Job{Path: deploy, Params: deployParams, Script: deployScript(2, jenkinssim.Unstable)}))
	out, err := deployStep(t, map[string]any{"accept": []any{"SUCCESS", "UNSTABLE"}}).Run(context.Background(), f.ctx.StepContext)
	if err != nil || out["result"] != "UNSTABLE" {
		t.Fatalf("out %v err %v", out, err)
	}
}

func TestSameRunFollowsAnotherRunTriggers(t *testing.T) {
	f := setup(t, jenkinssim.WithRunParameter(jenkins.DefaultRunParameter),
		jenkinssim.WithJobs(jenkinssim.Job{Path: deploy, Params: deployParams, Script: deployScript(3, jenkinssim.Success)}))
	out1, err := deployStep(t, nil).Run(context.Background(), f.ctx.StepContext)
	if err != nil {
		t.Fatal(err)
	}
	// another attempt of the same run (same journal) follows the build it triggered
	out2, err := deployStep(t, nil).Run(context.Background(), f.again(t).StepContext)
	if err != nil {
		t.Fatal(err)
	}
	if f.srv.Triggers(deploy) != 1 || out2["number"] != out1["number"] {
		t.Errorf("a retry triggered again: triggers %d, outputs %v %v", f.srv.Triggers(deploy), out1, out2)
	}
	// the next release with identical parameters is another run: it gets its own build
	c3 := newRun(t, f, "run-2")
	out3, err := deployStep(t, nil).Run(context.Background(), c3.StepContext)
	if err != nil {
		t.Fatal(err)
	}
	bs := f.srv.Builds(deploy)
	if f.srv.Triggers(deploy) != 2 || len(bs) != 2 || out3["number"] != 2 || out3["result"] != "SUCCESS" {
		t.Fatalf("triggers %d builds %d out %v", f.srv.Triggers(deploy), len(bs), out3)
	}
	if bs[0].Params[jenkins.DefaultRunParameter] != "test-run/deploy" || bs[1].Params[jenkins.DefaultRunParameter] != "run-2/deploy" {
		t.Errorf("run markers: %q %q", bs[0].Params[jenkins.DefaultRunParameter], bs[1].Params[jenkins.DefaultRunParameter])
	}
}

// newRun returns a context of another run (its own journal) on the same server and clock.
func newRun(t *testing.T, f *fixture, runID string) *enginetest.Context {
	c := enginetest.NewContext(t, "deploy")
	c.Conns, c.Clock, c.RunID = f.ctx.Conns, f.ctx.Clock, runID
	return c
}

func TestJobWithoutParametersTriggersOncePerRun(t *testing.T) {
	const backup = "cessda.cdc.es.backup"
	f := setup(t, jenkinssim.WithJobs(jenkinssim.Job{Path: backup}))
	s := enginetest.Decode(t, "jenkins.build", map[string]any{"job": backup})
	for i, c := range []*enginetest.Context{f.ctx, f.again(t), newRun(t, f, "run-2"), newRun(t, f, "run-3")} {
		if _, err := s.Run(context.Background(), c.StepContext); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	if f.srv.Triggers(backup) != 3 || len(f.srv.Builds(backup)) != 3 {
		t.Errorf("triggers %d builds %d, want 3 (one per run)", f.srv.Triggers(backup), len(f.srv.Builds(backup)))
	}
	for _, r := range f.srv.Writes() {
		if r.Path != "/job/cessda.cdc.es.backup/build" {
			t.Errorf("posted %s", r.Path)
		}
	}
}
func TestBuildsOfOthersAreNotFollowed(t *testing.T) {
	f := setup(t, jenkinssim.WithRunParameter(jenkins.DefaultRunParameter),
		jenkinssim.WithJobs(jenkinssim.Job{Path: deploy, Params: deployParams, Script: deployScript(20, jenkinssim.Success)}))
	// a person started a build with exactly this step's parameters, and an earlier release
	// left one that succeeded: neither is this run's
	same := map[string]string{"osmh_indexer_image_tag": "main-123", "coordiante_portal_image_tag": "main-77", "cluster": "production-cluster", "deployApp": "true"}
	f.srv.SeedBuild(deploy, same, jenkinssim.Success)
	running := f.srv.SeedBuild(deploy, same, "")
	f.ctx.Clock.(*engine.FakeClock).Advance(5 * time.Second)
	out, err := deployStep(t, nil).Run(context.Background(), f.ctx.StepContext)
	if err != nil {
		t.Fatal(err)
	}
	if f.srv.Triggers(deploy) != 1 || out["number"] != running+1 || out["result"] != "SUCCESS" {
		t.Errorf("triggers %d out %v", f.srv.Triggers(deploy), out)
	}
	// another run's marker does not make a build this run's either
	g := setup(t, jenkinssim.WithRunParameter(jenkins.DefaultRunParameter),
		jenkinssim.WithJobs(jenkinssim.Job{Path: deploy, Params: deployParams, Script: deployScript(1, jenkinssim.Success)}))
	other := map[string]string{"osmh_indexer_image_tag": "main-123", jenkins.DefaultRunParameter: "run-1/deploy"}
	g.srv.SeedBuild(deploy, other, "")
	recordIntent(t, g.ctx, "test-run/deploy")
	if _, err := deployStep(t, nil).Run(context.Background(), g.ctx.StepContext); err != nil {
		t.Fatal(err)
	}
	if g.srv.Triggers(deploy) != 1 {
		t.Errorf("triggers %d: followed another run's build", g.srv.Triggers(deploy))
	}
}

// recordIntent journals a trigger intent as an attempt that stopped right after posting
// the trigger leaves it.
func recordIntent(t *testing.T, c *enginetest.Context, marker string) {
	t.Helper()
	in := map[string]any{"at": c.Now()}
	if marker != "" {
		in["marker"] = marker
	}
	if err := c.Record("trigger_intent", in); err != nil {
		t.Fatal(err)
	}
}

func TestCrashBetweenTriggerAndRecordFollowsMarkedBuild(t *testing.T) {
	f := setup(t, jenkinssim.WithRunParameter(jenkins.DefaultRunParameter),
		jenkinssim.WithJobs(jenkinssim.Job{Path: deploy, Params: deployParams, Script: deployScript(5, jenkinssim.Success)}))
	// the trigger reached Jenkins and the build started; the record of the queue item did not
	recordIntent(t, f.ctx, "test-run/deploy")
	n := f.srv.SeedBuild(deploy, map[string]string{"osmh_indexer_image_tag": "main-123", "coordiante_portal_image_tag": "main-77",
		"cluster": "production-cluster", jenkins.DefaultRunParameter: "test-run/deploy"}, "")
	c := f.again(t)
	out, err := deployStep(t, nil).Run(context.Background(), c.StepContext)
	if err != nil {
		t.Fatal(err)
	}
	if f.srv.Triggers(deploy) != 0 || out["number"] != n || out["result"] != "SUCCESS" || out["queue_url"] != "" {
		t.Errorf("triggers %d out %v", f.srv.Triggers(deploy), out)
	}
	if !strings.Contains(c.LogText(), "line 5: helm upgrade cdc indexer=main-123") {
		t.Errorf("the followed build's console is not in the log")
	}
	// nothing with the marker: the trigger never reached Jenkins, so it is posted now
	g := setup(t, jenkinssim.WithRunParameter(jenkins.DefaultRunParameter),
		jenkinssim.WithJobs(jenkinssim.Job{Path: deploy, Params: deployParams, Script: deployScript(1, jenkinssim.Success)}))
	recordIntent(t, g.ctx, "test-run/deploy")
	if _, err := deployStep(t, nil).Run(context.Background(), g.ctx.StepContext); err != nil {
		t.Fatal(err)
	}
	if g.srv.Triggers(deploy) != 1 || !strings.Contains(g.ctx.LogText(), "never reached Jenkins") {
		t.Errorf("triggers %d", g.srv.Triggers(deploy))
	}
}

func TestLostTriggerAnswerWithoutMarkerWaitsForAPerson(t *testing.T) {
	f := setup(t, jenkinssim.WithJobs(jenkinssim.Job{Path: deploy, Params: deployParams, Script: deployScript(2, jenkinssim.Success)}))
	lose := jenkinssim.Fault{Method: "POST", Path: "/job/cessda.cdc.deploy/job/main/buildWithParameters", Drop: true, AfterEffect: true, Times: 1}
	f.srv.Inject(lose)
	if _, err := deployStep(t, nil).Run(context.Background(), f.ctx.StepContext); err == nil {
		t.Fatal("no error for a lost answer")
	}
	_, err := deployStep(t, nil).Run(context.Background(), f.again(t).StepContext)
	var we *engine.WaitingError
	if !errors.As(err, &we) {
		t.Fatalf("want a wait for a person, got %v", err)
	}
	for _, want := range []string{"no RUNBOOK_RUN parameter", "runbook resume test-run --skip deploy --reason", "--confirm deploy to trigger it again", "/job/cessda.cdc.deploy/job/main/"} {
		if !strings.Contains(we.Reason, want) {
			t.Errorf("reason lacks %q: %s", want, we.Reason)
		}
	}
	if f.srv.Triggers(deploy) != 1 {
		t.Errorf("triggers %d while waiting", f.srv.Triggers(deploy))
	}
	// a refusal keeps it waiting; "yes" triggers again
	clk := f.ctx.Clock.(*engine.FakeClock)
	clk.Advance(time.Minute) // the first build left the queue: Jenkins does not merge the new request into it
	must(t, f.ctx.Record("confirmation", engine.Confirmation{By: "dave", At: clk.Now(), Answer: "no", Reason: "not sure"}))
	if _, err := deployStep(t, nil).Run(context.Background(), f.again(t).StepContext); !errors.As(err, &we) {
		t.Fatalf("after a refusal: %v", err)
	}
	must(t, f.ctx.Record("confirmation", engine.Confirmation{By: "dave", At: clk.Now(), Answer: "yes"}))
	f.srv.Inject(lose) // and this answer is lost too: the same confirmation does not allow a third trigger
	c := f.again(t)
	if _, err := deployStep(t, nil).Run(context.Background(), c.StepContext); err == nil {
		t.Fatal("no error for the second lost answer")
	}
	if f.srv.Triggers(deploy) != 2 || !strings.Contains(c.LogText(), "dave confirmed triggering it again") {
		t.Fatalf("triggers %d after the confirmation", f.srv.Triggers(deploy))
	}
	if _, err := deployStep(t, nil).Run(context.Background(), f.again(t).StepContext); !errors.As(err, &we) {
		t.Fatalf("a used confirmation allowed another trigger: %v", err)
	}
	clk.Advance(time.Minute)
	must(t, f.ctx.Record("confirmation", engine.Confirmation{By: "erin", At: clk.Now(), Answer: "yes"}))
	out, err := deployStep(t, nil).Run(context.Background(), f.again(t).StepContext)
	if err != nil || out["result"] != "SUCCESS" {
		t.Fatalf("out %v err %v", out, err)
	}
	if f.srv.Triggers(deploy) != 3 || len(f.srv.Builds(deploy)) != 3 {
		t.Errorf("triggers %d builds %d", f.srv.Triggers(deploy), len(f.srv.Builds(deploy)))
	}
}

func TestForeachItemsHaveTheirOwnMarker(t *testing.T) {
	f := setup(t, jenkinssim.WithRunParameter(jenkins.DefaultRunParameter), jenkinssim.WithJobs(jenkinssim.Job{Path: deploy, Params: deployParams}))
	for _, item := range []any{"cdc", map[string]any{"cluster": "staging-cluster"}} {
		c := enginetest.NewContext(t, "deploy")
		c.Conns, c.Clock, c.Item = f.ctx.Conns, f.ctx.Clock, item
		if _, err := deployStep(t, nil).Run(context.Background(), c.StepContext); err != nil {
			t.Fatal(err)
		}
	}
	bs := f.srv.Builds(deploy)
	if len(bs) != 2 || bs[0].Params[jenkins.DefaultRunParameter] != "test-run/deploy/cdc" ||
		!strings.HasPrefix(bs[1].Params[jenkins.DefaultRunParameter], "test-run/deploy/") || len(bs[1].Params[jenkins.DefaultRunParameter]) != len("test-run/deploy/")+12 {
		t.Errorf("builds %+v", bs)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// crashAfter returns a context cancelled when the step logs a line containing s: the
// process dies there.
func crashAfter(c *enginetest.Context, s string) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	orig := c.LogFunc
	c.LogFunc = func(line string) {
		orig(line)
		if strings.Contains(line, s) {
			cancel()
		}
	}
	return ctx
}

func TestCrashAfterTriggerBeforeBuildStartDoesNotTriggerTwice(t *testing.T) {
	// A job without parameters: after a crash nothing but the journal tells this run's
	// queued build from any other.
	const backup = "cessda.cdc.es.backup"
	f := setup(t, jenkinssim.WithQuietPeriod(time.Minute),
		jenkinssim.WithJobs(jenkinssim.Job{Path: backup, Script: func(b *jenkinssim.Build) { b.Logf("snapshot_53"); b.Sleep(30 * time.Second) }}))
	s := enginetest.Decode(t, "jenkins.build", map[string]any{"job": backup})
	_, err := s.Run(crashAfter(f.ctx, "triggered"), f.ctx.StepContext)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want the crash, got %v", err)
	}
	if len(f.srv.Builds(backup)) != 0 || len(f.srv.QueueItems(backup)) != 1 {
		t.Fatalf("the build should still be queued: builds %v queue %v", f.srv.Builds(backup), f.srv.QueueItems(backup))
	}
	out, err := s.Run(context.Background(), f.again(t).StepContext)
	if err != nil {
		t.Fatal(err)
	}
	if f.srv.Triggers(backup) != 1 || len(f.srv.Builds(backup)) != 1 || out["number"] != 1 {
		t.Errorf("triggers %d builds %d out %v", f.srv.Triggers(backup), len(f.srv.Builds(backup)), out)
	}
}

func TestCrashAfterQueueItemExpiredFindsBuildByQueueID(t *testing.T) {
	const backup = "cessda.cdc.es.backup"
	f := setup(t, jenkinssim.WithJobs(jenkinssim.Job{Path: backup, Script: func(b *jenkinssim.Build) { b.Sleep(10 * time.Second) }}))
	s := enginetest.Decode(t, "jenkins.build", map[string]any{"job": backup})
	if _, err := s.Run(crashAfter(f.ctx, "triggered"), f.ctx.StepContext); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	f.ctx.Clock.(*engine.FakeClock).Advance(time.Hour) // the build ran and the queue item expired
	out, err := s.Run(context.Background(), f.again(t).StepContext)
	if err != nil {
		t.Fatal(err)
	}
	if f.srv.Triggers(backup) != 1 || out["number"] != 1 || out["result"] != "SUCCESS" {
		t.Errorf("triggers %d out %v", f.srv.Triggers(backup), out)
	}
}

func TestLostTriggerAnswerIsTransientAndNotRepeated(t *testing.T) {
	f := setup(t, jenkinssim.WithRunParameter(jenkins.DefaultRunParameter),
		jenkinssim.WithJobs(jenkinssim.Job{Path: deploy, Params: deployParams, Script: deployScript(2, jenkinssim.Success)}))
	// the build is queued but the answer never arrives
	f.srv.Inject(jenkinssim.Fault{Method: "POST", Path: "/job/cessda.cdc.deploy/job/main/buildWithParameters", Drop: true, AfterEffect: true, Times: 1})
	_, err := deployStep(t, nil).Run(context.Background(), f.ctx.StepContext)
	if ok, _ := engine.IsTransient(err); !ok {
		t.Fatalf("want a transient error, got %v", err)
	}
	c := f.again(t)
	out, err := deployStep(t, nil).Run(context.Background(), c.StepContext)
	if err != nil {
		t.Fatal(err)
	}
	if f.srv.Triggers(deploy) != 1 || len(f.srv.Builds(deploy)) != 1 || out["result"] != "SUCCESS" ||
		!strings.Contains(c.LogText(), "found queue item") {
		t.Errorf("triggers %d builds %d out %v", f.srv.Triggers(deploy), len(f.srv.Builds(deploy)), out)
	}
}
func TestCrumbRequired(t *testing.T) {
	f := setup(t, jenkinssim.WithCrumbs(jenkinssim.CrumbsRequired),
		jenkinssim.WithJobs(jenkinssim.Job{Path: deploy, Params: deployParams, Script: deployScript(2, jenkinssim.Success)}))
	// the first crumb is refused once (as after a restart): the step fetches another
	f.srv.Inject(jenkinssim.Fault{Method: "POST", Status: http.StatusForbidden, Body: "No valid crumb was included in the request", Times: 1})
	out, err := deployStep(t, nil).Run(context.Background(), f.ctx.StepContext)
	if err != nil {
		t.Fatal(err)
	}
	var crumbs, posts, accepted int
	for _, r := range f.srv.Requests() {
		switch {
		case r.Path == "/crumbIssuer/api/json":
			crumbs++
		case r.Method == "POST":
			posts++
			if r.Status == http.StatusCreated {
				accepted++
			}
		}
	}
	if crumbs != 2 || posts != 2 || accepted != 1 || out["result"] != "SUCCESS" {
		t.Errorf("crumb fetches %d, posts %d, accepted %d, out %v", crumbs, posts, accepted, out)
	}
	noCanary(t, f.ctx, out, err)
}

func TestWrongTokenSays401Clearly(t *testing.T) {
	f := setup(t, jenkinssim.WithJobs(jenkinssim.Job{Path: deploy, Params: deployParams}))
	f.srv.AddUser(jenkinssim.User{Name: user, Token: "the-real-token"}) // the canary is now wrong
	out, err := deployStep(t, nil).Run(context.Background(), f.ctx.StepContext)
	if err == nil {
		t.Fatal("no error")
	}
	want := "jenkins: 401 Unauthorized from " + f.srv.URL() + "/job/cessda.cdc.deploy/job/main/api/json"
	if !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "check the user (release-bot) and the connection's token") {
		t.Errorf("error = %q", err)
	}
	if ok, _ := engine.IsTransient(err); ok {
		t.Error("a 401 is not transient")
	}
	if len(f.srv.Writes()) != 0 {
		t.Error("posted with bad credentials")
	}
	noCanary(t, f.ctx, out, err)
}

func TestMissingTokenOrUser(t *testing.T) {
	f := setup(t)
	f.ctx.Conns["jenkins"].Token = ""
	f.ctx.Conns["jenkins"].TokenEnv = "JENKINS_TOKEN_UNSET_FOR_TEST"
	_, err := deployStep(t, nil).Run(context.Background(), f.ctx.StepContext)
	if err == nil || !strings.Contains(err.Error(), "JENKINS_TOKEN_UNSET_FOR_TEST") {
		t.Errorf("error = %v", err)
	}
	f.ctx.Conns["jenkins"].Token = canary
	f.ctx.Conns["jenkins"].Settings = nil
	_, err = deployStep(t, nil).Run(context.Background(), f.ctx.StepContext)
	if err == nil || !strings.Contains(err.Error(), "settings.user") {
		t.Errorf("error = %v", err)
	}
}

func TestJobNotFound(t *testing.T) {
	f := setup(t)
	_, err := deployStep(t, map[string]any{"job": "cessda.cdc.deploy.prod"}).Run(context.Background(), f.ctx.StepContext)
	if !errors.Is(err, jenkins.ErrJobNotFound) || !strings.Contains(err.Error(), `"cessda.cdc.deploy.prod"`) ||
		!strings.Contains(err.Error(), "/job/cessda.cdc.deploy.prod/") {
		t.Errorf("error = %v", err)
	}
	// an unknown parameter would be dropped by Jenkins: refuse it
	f.srv.AddJob(jenkinssim.Job{Path: deploy, Params: deployParams})
	_, err = deployStep(t, map[string]any{"parameters": map[string]any{"searchkit_image_tag": "main-1"}}).Run(context.Background(), f.ctx.StepContext)
	if err == nil || !strings.Contains(err.Error(), `no parameter "searchkit_image_tag"`) {
		t.Errorf("error = %v", err)
	}
}

func TestServerErrorsRetriedOrTransient(t *testing.T) {
	f := setup(t, jenkinssim.WithJobs(jenkinssim.Job{Path: deploy, Params: deployParams, Script: deployScript(5, jenkinssim.Success)}))
	// reads that fail a few times are retried within the step
	f.srv.Inject(jenkinssim.Fault{Method: "GET", Path: "/job/", Status: http.StatusBadGateway, Times: 2})
	f.srv.Inject(jenkinssim.Fault{Method: "GET", Path: "/queue/item/", Drop: true, Times: 1})
	out, err := deployStep(t, nil).Run(context.Background(), f.ctx.StepContext)
	if err != nil || out["result"] != "SUCCESS" {
		t.Fatalf("out %v err %v", out, err)
	}
	// a trigger that fails is surfaced as transient, and a retry then triggers once
	g := setup(t, jenkinssim.WithJobs(jenkinssim.Job{Path: deploy, Params: deployParams, Script: deployScript(1, jenkinssim.Success)}))
	g.srv.Inject(jenkinssim.Fault{Method: "POST", Status: http.StatusServiceUnavailable, Times: 1})
	_, err = deployStep(t, nil).Run(context.Background(), g.ctx.StepContext)
	if ok, _ := engine.IsTransient(err); !ok || !strings.Contains(err.Error(), "503") {
		t.Fatalf("want a transient 503, got %v", err)
	}
	if _, err := deployStep(t, nil).Run(context.Background(), g.again(t).StepContext); err != nil {
		t.Fatal(err)
	}
	if g.srv.Triggers(deploy) != 1 {
		t.Errorf("triggers = %d", g.srv.Triggers(deploy))
	}
	// a server that stays down: transient
	h := setup(t, jenkinssim.WithJobs(jenkinssim.Job{Path: deploy, Params: deployParams}))
	h.srv.Inject(jenkinssim.Fault{Status: http.StatusServiceUnavailable})
	_, err = deployStep(t, nil).Run(context.Background(), h.ctx.StepContext)
	if ok, _ := engine.IsTransient(err); !ok {
		t.Fatalf("want transient, got %v", err)
	}
}

func TestQueueItemCancelled(t *testing.T) {
	f := setup(t, jenkinssim.WithQuietPeriod(time.Hour), jenkinssim.WithJobs(jenkinssim.Job{Path: deploy, Params: deployParams}))
	orig := f.ctx.LogFunc
	f.ctx.LogFunc = func(line string) {
		orig(line)
		if strings.HasPrefix(line, "jenkins: queued:") {
			for _, id := range f.srv.QueueItems(deploy) {
				f.srv.CancelQueueItem(id)
			}
		}
	}
	_, err := deployStep(t, nil).Run(context.Background(), f.ctx.StepContext)
	if err == nil || !strings.Contains(err.Error(), "was cancelled before its build started") {
		t.Fatalf("error = %v", err)
	}
	if len(f.srv.Builds(deploy)) != 0 {
		t.Error("a cancelled item built")
	}
	// running the step again means "try again": it triggers a new item
	f.ctx.LogFunc = orig
	out, err := deployStep(t, nil).Run(context.Background(), f.again(t).StepContext)
	if err != nil || out["result"] != "SUCCESS" || f.srv.Triggers(deploy) != 2 {
		t.Fatalf("out %v err %v triggers %d", out, err, f.srv.Triggers(deploy))
	}
}

func TestPlanMakesNoPost(t *testing.T) {
	f := setup(t, jenkinssim.WithCrumbs(jenkinssim.CrumbsRequired),
		jenkinssim.WithJobs(jenkinssim.Job{Path: deploy, Params: deployParams, Script: deployScript(1, jenkinssim.Success)}))
	plan, err := deployStep(t, nil).Plan(context.Background(), f.ctx.StepContext)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.srv.Writes()) != 0 || f.srv.Triggers(deploy) != 0 {
		t.Errorf("plan wrote: %v", f.srv.Writes())
	}
	if !strings.Contains(plan.Action, "trigger Jenkins job cessda.cdc.deploy/main with cluster=production-cluster") || plan.NoChange {
		t.Errorf("plan = %+v", plan)
	}
	if _, err := deployStep(t, nil).Run(context.Background(), f.ctx.StepContext); err != nil {
		t.Fatal(err)
	}
	// the same step of the same run names its build; another run plans a new one
	plan, err = deployStep(t, nil).Plan(context.Background(), f.again(t).StepContext)
	if err != nil || !strings.Contains(strings.Join(plan.Details, "\n"), "already started "+f.srv.URL()+"/job/cessda.cdc.deploy/job/main/1/") {
		t.Errorf("plan of the run that built = %+v, %v", plan, err)
	}
	c := newRun(t, f, "run-2")
	plan, err = deployStep(t, nil).Plan(context.Background(), c.StepContext)
	details := strings.Join(plan.Details, "\n")
	if err != nil || plan.NoChange || !strings.Contains(details, "a new build will be triggered") ||
		!strings.Contains(details, "no RUNBOOK_RUN string parameter") || strings.Contains(details, "already started") {
		t.Errorf("plan of another run = %+v, %v", plan, err)
	}
	// a value known only later still lets the plan check the parameters' names; a whole
	// map known only later is not looked up
	c.SetUnknown("parameters.osmh_indexer_image_tag")
	plan, err = deployStep(t, nil).Plan(context.Background(), c.StepContext)
	if err != nil || !strings.Contains(plan.Action, "osmh_indexer_image_tag="+engine.KnownAfterRun) {
		t.Errorf("plan with an unknown value = %+v, %v", plan, err)
	}
	before := len(f.srv.Requests())
	c.SetUnknown("parameters")
	plan, err = deployStep(t, nil).Plan(context.Background(), c.StepContext)
	if err != nil || !strings.Contains(plan.Action, "parameters "+engine.KnownAfterRun) || len(f.srv.Requests()) != before {
		t.Errorf("plan with unknown params = %+v, %v", plan, err)
	}
	if n := len(f.srv.Writes()); n != 1 {
		t.Errorf("writes = %d, want only the Run's trigger", n)
	}
	// a missing job fails the plan
	c2 := enginetest.NewContext(t, "deploy")
	c2.Conns = f.ctx.Conns
	_, err = deployStep(t, map[string]any{"job": "nope/main"}).Plan(context.Background(), c2.StepContext)
	if !errors.Is(err, jenkins.ErrJobNotFound) {
		t.Errorf("plan of a missing job: %v", err)
	}
}

func TestWaitFalseReturnsOnceStarted(t *testing.T) {
	f := setup(t, jenkinssim.WithJobs(jenkinssim.Job{Path: deploy, Params: deployParams, Script: deployScript(100, jenkinssim.Success)}))
	out, err := deployStep(t, map[string]any{"wait": false}).Run(context.Background(), f.ctx.StepContext)
	if err != nil {
		t.Fatal(err)
	}
	if out["number"] != 1 || out["result"] != "" {
		t.Errorf("out = %v", out)
	}
	if b, _ := f.srv.Build(deploy, 1); !b.Building {
		t.Errorf("the build should still run")
	}
}

func TestTimeout(t *testing.T) {
	f := setup(t, jenkinssim.WithJobs(jenkinssim.Job{Path: deploy, Params: deployParams, Script: deployScript(1000, jenkinssim.Success)}))
	_, err := deployStep(t, map[string]any{"timeout": "2m"}).Run(context.Background(), f.ctx.StepContext)
	if err == nil || !strings.Contains(err.Error(), "gave up after 2m0s") {
		t.Fatalf("error = %v", err)
	}
	if b, _ := f.srv.Build(deploy, 1); !b.Building {
		t.Error("the build should not be aborted")
	}
}

func TestCanaryTokenNeverLeaks(t *testing.T) {
	for name, script := range map[string]func(*jenkinssim.Build){
		"success": deployScript(3, jenkinssim.Success),
		"failure": deployScript(3, jenkinssim.Failure),
	} {
		t.Run(name, func(t *testing.T) {
			f := setup(t, jenkinssim.WithCrumbs(jenkinssim.CrumbsRequired), jenkinssim.WithJobs(jenkinssim.Job{Path: deploy, Params: deployParams, Script: script}))
			p, perr := deployStep(t, nil).Plan(context.Background(), f.ctx.StepContext)
			if strings.Contains(fmt.Sprint(p), canary) {
				t.Error("the token appears in the plan")
			}
			out, err := deployStep(t, nil).Run(context.Background(), f.ctx.StepContext)
			noCanary(t, f.ctx, out, err)
			noCanary(t, f.ctx, nil, perr)
		})
	}
	t.Run("server errors", func(t *testing.T) {
		f := setup(t, jenkinssim.WithJobs(jenkinssim.Job{Path: deploy, Params: deployParams}))
		f.srv.Inject(jenkinssim.Fault{Drop: true})
		out, err := deployStep(t, nil).Run(context.Background(), f.ctx.StepContext)
		if err == nil {
			t.Fatal("no error")
		}
		noCanary(t, f.ctx, out, err)
	})
}

func TestAutoCreateForRehearsal(t *testing.T) {
	f := setup(t, jenkinssim.WithAutoCreate())
	out, err := deployStep(t, map[string]any{"job": "cessda.cvs.deploy.prod"}).Run(context.Background(), f.ctx.StepContext)
	if err != nil || out["result"] != "SUCCESS" {
		t.Fatalf("out %v err %v", out, err)
	}
	if bs := f.srv.Builds("cessda.cvs.deploy.prod"); len(bs) != 1 || bs[0].Params["osmh_indexer_image_tag"] != "main-123" {
		t.Errorf("builds = %+v", bs)
	}
}

func TestValidate(t *testing.T) {
	st, _ := engine.LookupStepType("jenkins.build")
	for _, with := range []map[string]any{
		{"job": deploy, "accept": []any{"GREEN"}},
		{"job": deploy, "parameters": map[string]any{"RUNBOOK_RUN": "x"}},
		{"job": deploy, "parameters": map[string]any{"RUN": "x"}, "run_parameter": "RUN"},
		{"job": "/"},
	} {
		s, err := engine.DecodeParams(st, with)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.(engine.Validator).Validate(); err == nil {
			t.Errorf("%v: no validation error", with)
		}
	}
}

func TestRehearsalWithInjectedSimulator(t *testing.T) {
	ctx := enginetest.NewContext(t, "deploy")
	ctx.Rehearsal = true
	srv := jenkinssim.New(jenkinssim.WithClock(ctx.Clock), jenkinssim.WithAutoCreate())
	defer srv.Close()
	// the rehearsal hands over the simulator itself: no URL, no user, no token
	ctx.Conns["jenkins"] = &engine.Connection{Name: "jenkins", Type: "jenkins", URL: srv.URL(), TokenEnv: "JENKINS_TOKEN_UNSET_FOR_TEST"}
	out, err := deployStep(t, map[string]any{"job": "cessda.cdc.rollback"}).Run(context.Background(), ctx.StepContext)
	if err != nil || out["result"] != "SUCCESS" || srv.Triggers("cessda.cdc.rollback") != 1 {
		t.Fatalf("out %v err %v", out, err)
	}
}
