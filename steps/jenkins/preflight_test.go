package jenkins_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/engine/enginetest"
	"github.com/cessda/runbook/steps/jenkins/jenkinssim"
)

// preflightFixture is a healthy Jenkins: the deploy job takes the step's parameters and
// the run marker, and the CI job exists.
func preflightFixture(t *testing.T, opts ...jenkinssim.Option) *fixture {
	return setup(t, append([]jenkinssim.Option{
		jenkinssim.WithRunParameter("RUNBOOK_RUN"),
		jenkinssim.WithJobs(jenkinssim.Job{Path: deploy, Params: deployParams}, jenkinssim.Job{Path: ciJob}),
	}, opts...)...)
}

func preflight(t *testing.T, s engine.Step, c *enginetest.Context) error {
	t.Helper()
	pf, ok := s.(engine.Preflighter)
	if !ok {
		t.Fatalf("%T is not an engine.Preflighter", s)
	}
	err := pf.Preflight(context.Background(), c.StepContext)
	noCanary(t, c, nil, err)
	return err
}

// readOnly fails when the preflight sent anything but GETs or queued a build.
func readOnly(t *testing.T, srv *jenkinssim.Server) {
	t.Helper()
	for _, r := range srv.Requests() {
		if r.Method != http.MethodGet {
			t.Errorf("preflight sent %s %s", r.Method, r.Path)
		}
	}
	if n := srv.Triggers(deploy); n != 0 || len(srv.QueueItems(deploy)) != 0 || len(srv.Builds(deploy)) != 0 {
		t.Errorf("preflight queued a build: %d triggers, queue %v", n, srv.QueueItems(deploy))
	}
}

func commitBuildStep(t *testing.T, job string) engine.Step {
	return enginetest.Decode(t, "jenkins.commit_build", map[string]any{"connection": "jenkins", "job": job, "commit": "0123456789abcdef0123456789abcdef01234567"})
}

func TestPreflightPassesOnAHealthyJenkins(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []jenkinssim.Option
	}{
		{"parameters under property", nil},
		{"parameters under actions (older Jenkins)", []jenkinssim.Option{jenkinssim.WithParamsInActions()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := preflightFixture(t, tc.opts...)
			if err := preflight(t, deployStep(t, nil), f.ctx); err != nil {
				t.Errorf("jenkins.build: %v", err)
			}
			if err := preflight(t, commitBuildStep(t, ciJob), f.ctx); err != nil {
				t.Errorf("jenkins.commit_build: %v", err)
			}
			readOnly(t, f.srv)
			var who bool
			for _, r := range f.srv.Requests() {
				who = who || (r.Path == "/whoAmI/api/json" && r.User == user && r.Status == 200)
			}
			if !who {
				t.Errorf("the login was not checked: %+v", f.srv.Requests())
			}
		})
	}
}

func TestPreflightMissingSecret(t *testing.T) {
	f := preflightFixture(t)
	f.ctx.Conns["jenkins"].Token = ""
	f.ctx.Conns["jenkins"].TokenEnv = "JENKINS_TOKEN_UNSET_FOR_TEST"
	for _, s := range []engine.Step{deployStep(t, nil), commitBuildStep(t, ciJob)} {
		err := preflight(t, s, f.ctx)
		if err == nil || !strings.Contains(err.Error(), `connection "jenkins"`) || !strings.Contains(err.Error(), "JENKINS_TOKEN_UNSET_FOR_TEST is not set") {
			t.Errorf("error = %v", err)
		}
	}
	if n := len(f.srv.Requests()); n != 0 {
		t.Errorf("%d requests without a token", n)
	}
}

func TestPreflightRejectedToken(t *testing.T) {
	t.Run("environment variable", func(t *testing.T) {
		f := preflightFixture(t)
		f.srv.AddUser(jenkinssim.User{Name: user, Token: "the-real-token"}) // the canary is now wrong
		t.Setenv("JENKINS_TOKEN_FOR_TEST", canary)
		f.ctx.Conns["jenkins"].Token, f.ctx.Conns["jenkins"].TokenEnv = "", "JENKINS_TOKEN_FOR_TEST"
		err := preflight(t, deployStep(t, nil), f.ctx)
		t.Log(err)
		for _, want := range []string{`jenkins connection "jenkins"`, "refused the API token of user release-bot (401 Unauthorized)", "the token in JENKINS_TOKEN_FOR_TEST is wrong", "put it in JENKINS_TOKEN_FOR_TEST"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q: %v", want, err)
			}
		}
		if err := preflight(t, commitBuildStep(t, ciJob), f.ctx); err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("commit_build: %v", err)
		}
		readOnly(t, f.srv)
	})
	t.Run("token file", func(t *testing.T) {
		f := preflightFixture(t)
		f.srv.AddUser(jenkinssim.User{Name: user, Token: "the-real-token"})
		file := filepath.Join(t.TempDir(), "jenkins-token")
		must(t, os.WriteFile(file, []byte(canary+"\n"), 0o600))
		f.ctx.Conns["jenkins"].Token, f.ctx.Conns["jenkins"].TokenFile = "", file
		err := preflight(t, deployStep(t, nil), f.ctx)
		if err == nil || !strings.Contains(err.Error(), "the token file "+file) {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("no read permission", func(t *testing.T) {
		f := preflightFixture(t)
		f.srv.Inject(jenkinssim.Fault{Path: "/whoAmI", Status: http.StatusForbidden, Body: "Access Denied"})
		err := preflight(t, deployStep(t, nil), f.ctx)
		if err == nil || !strings.Contains(err.Error(), "may not read") || !strings.Contains(err.Error(), "Overall/Read") {
			t.Errorf("error = %v", err)
		}
	})
}

func TestPreflightJobNotFound(t *testing.T) {
	f := preflightFixture(t)
	err := preflight(t, deployStep(t, map[string]any{"job": "cessda.cvs.deploy.prod"}), f.ctx)
	if err == nil || !strings.Contains(err.Error(), `job cessda.cvs.deploy.prod not found on connection "jenkins"`) {
		t.Errorf("jenkins.build: %v", err)
	}
	err = preflight(t, commitBuildStep(t, "cessda.cvs.two/develop"), f.ctx)
	if err == nil || !strings.Contains(err.Error(), `job cessda.cvs.two/develop not found on connection "jenkins"`) {
		t.Errorf("jenkins.commit_build: %v", err)
	}
	err = preflight(t, commitBuildStep(t, "cessda.cvs.two"), f.ctx)
	if err == nil || !strings.Contains(err.Error(), "is a folder, not a job") {
		t.Errorf("a folder: %v", err)
	}
	readOnly(t, f.srv)
}

func TestPreflightListsEveryUnknownParameter(t *testing.T) {
	f := preflightFixture(t)
	step := deployStep(t, map[string]any{"job": deploy, "parameters": map[string]any{"cluster": "production-cluster", "FOO": "1", "searchkit_image_tag": "main-1"}})
	err := preflight(t, step, f.ctx)
	want := "job " + deploy + ` on connection "jenkins" does not take parameters FOO, searchkit_image_tag; it takes: osmh_indexer_image_tag, coordiante_portal_image_tag, cluster, deployApp, RUNBOOK_RUN`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v\nwant %s", err, want)
	}
	t.Log(err)
	readOnly(t, f.srv)

	// Values from earlier steps are unknown, their names are not: still checked.
	c := enginetest.NewContext(t, "deploy")
	c.Conns = f.ctx.Conns
	c.SetUnknown("parameters")
	step = deployStep(t, map[string]any{"parameters": map[string]any{"FOO": "", "cluster": ""}})
	if err := preflight(t, step, c); err == nil || !strings.Contains(err.Error(), "does not take parameter FOO; it takes:") {
		t.Errorf("unknown values: %v", err)
	}
	// A map that is itself an expression has no known names.
	if err := preflight(t, deployStep(t, map[string]any{"parameters": map[string]any{}}), c); err != nil {
		t.Errorf("unknown map: %v", err)
	}
}

func TestPreflightJobWithoutParametersOrRunMarker(t *testing.T) {
	f := setup(t, jenkinssim.WithJobs(
		jenkinssim.Job{Path: deploy, Params: deployParams},
		jenkinssim.Job{Path: "cessda.cdc.es.backup"},
		jenkinssim.Job{Path: "flagged", Params: []jenkinssim.Param{{Name: "RUNBOOK_RUN", Type: "boolean"}}},
		jenkinssim.Job{Path: "disabled", Params: []jenkinssim.Param{{Name: "RUNBOOK_RUN"}}, Disabled: true},
	))
	err := preflight(t, deployStep(t, nil), f.ctx)
	if err == nil || !strings.Contains(err.Error(), "job "+deploy+` on connection "jenkins" has no RUNBOOK_RUN parameter`) ||
		!strings.Contains(err.Error(), "add a String parameter RUNBOOK_RUN") {
		t.Errorf("no run marker: %v", err)
	}
	t.Log(err)
	err = preflight(t, deployStep(t, map[string]any{"job": "cessda.cdc.es.backup", "parameters": map[string]any{"FOO": "1"}}), f.ctx)
	if err == nil || !strings.Contains(err.Error(), "takes no parameters, but the step passes FOO") || !strings.Contains(err.Error(), "has no RUNBOOK_RUN parameter") {
		t.Errorf("unparameterized job: %v", err)
	}
	err = preflight(t, deployStep(t, map[string]any{"job": "flagged", "parameters": map[string]any{}}), f.ctx)
	if err == nil || !strings.Contains(err.Error(), "is a BooleanParameterDefinition, not a string parameter") {
		t.Errorf("boolean run parameter: %v", err)
	}
	err = preflight(t, deployStep(t, map[string]any{"job": "disabled", "parameters": map[string]any{}}), f.ctx)
	if err == nil || !strings.Contains(err.Error(), "is disabled") {
		t.Errorf("disabled job: %v", err)
	}
	readOnly(t, f.srv)
}

func TestPreflightUnknownJobChecksOnlyTheLogin(t *testing.T) {
	f := preflightFixture(t)
	f.ctx.SetUnknown("job")
	if err := preflight(t, deployStep(t, map[string]any{"job": "x"}), f.ctx); err != nil {
		t.Fatal(err)
	}
	reqs := f.srv.Requests()
	if len(reqs) != 1 || reqs[0].Path != "/whoAmI/api/json" {
		t.Errorf("requests = %+v", reqs)
	}
}

func TestPreflightInRehearsalUsesTheSimulatorAccount(t *testing.T) {
	ctx := enginetest.NewContext(t, "deploy")
	ctx.Rehearsal = true
	srv := jenkinssim.New(jenkinssim.WithClock(ctx.Clock), jenkinssim.WithAutoCreate(), jenkinssim.WithRunParameter("RUNBOOK_RUN"))
	defer srv.Close()
	srv.AddJob(jenkinssim.Job{Path: deploy, Params: deployParams})
	ctx.Conns["jenkins"] = &engine.Connection{Name: "jenkins", Type: "jenkins", URL: srv.URL(), TokenEnv: "JENKINS_TOKEN_UNSET_FOR_TEST"}
	if err := preflight(t, deployStep(t, nil), ctx); err != nil {
		t.Fatal(err)
	}
	readOnly(t, srv)
}

const preflightPlaybook = `runbook: v1
product: mini
title: Mini
roles: {platform_maintainer: [p]}
connections:
  jenkins: {type: jenkins, user: release-bot}
steps:
  - id: ci
    type: jenkins.commit_build
    with: {job: cessda.cvs.two/main, commit: 0123456789abcdef0123456789abcdef01234567}
  - id: deploy_a
    type: jenkins.build
    with: {job: cessda.cdc.deploy/main, parameters: {cluster: "${{ steps.ci.outputs.image_tag }}"}}
  - id: deploy_b
    type: jenkins.build
    with: {job: cessda.cdc.deploy/main, parameters: {cluster: production-cluster}}
`

// Through the engine's preflight, the steps share one login check and one read per job.
func TestPreflightThroughTheEngineChecksOnce(t *testing.T) {
	pb, err := engine.Parse("preflight.yaml", []byte(preflightPlaybook))
	if err != nil {
		t.Fatal(err)
	}
	f := preflightFixture(t)
	connect := func(d *engine.ConnectionDecl) (*engine.Connection, error) {
		return f.ctx.Conns["jenkins"], nil
	}
	rep, err := engine.Preflight(context.Background(), pb, nil, engine.PlanOptions{Connect: connect, Clock: f.ctx.Clock})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Err() != nil {
		t.Fatal(rep.Err())
	}
	var got []string
	for _, r := range f.srv.Requests() {
		got = append(got, r.Path)
	}
	want := "/whoAmI/api/json /job/cessda.cvs.two/job/main/api/json /job/cessda.cdc.deploy/job/main/api/json"
	if strings.Join(got, " ") != want {
		t.Errorf("requests %v, want %s", got, want)
	}
	readOnly(t, f.srv)

	// A refused token is one problem, concerning every step.
	f.srv.AddUser(jenkinssim.User{Name: user, Token: "the-real-token"})
	rep, err = engine.Preflight(context.Background(), pb, nil, engine.PlanOptions{Connect: connect, Clock: f.ctx.Clock})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 1 || strings.Join(rep.Problems[0].Steps, ",") != "ci,deploy_a,deploy_b" || !strings.Contains(rep.Problems[0].Message, "401") {
		t.Errorf("problems = %+v", rep.Problems)
	}
}
