package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cessda/runbook/engine"
)

// guardedStep is a step type whose service refuses some repositories; its Preflight says
// so, and reports the keys of its parameters map even when their values are unknown.
type guardedStep struct {
	Connection string            `json:"connection" desc:"the testsvc connection"`
	Repo       string            `json:"repo" desc:"a repository"`
	Params     map[string]string `json:"params" desc:"parameters passed on"`
}

var guardedChecks atomic.Int64

func (s *guardedStep) Plan(context.Context, *engine.StepContext) (engine.Plan, error) {
	return engine.Plan{Action: "guarded"}, nil
}

func (s *guardedStep) Run(context.Context, *engine.StepContext) (engine.Outputs, error) {
	return engine.Outputs{"tag": "x"}, nil
}

func (s *guardedStep) Preflight(ctx context.Context, sc *engine.StepContext) error {
	conn, err := sc.Connection(s.Connection, "testsvc")
	if err != nil {
		return err
	}
	if err := sc.Once("secret", func() error { _, err := conn.Secret(); return err }); err != nil {
		return err
	}
	if err := sc.Once("login", func() error { guardedChecks.Add(1); sc.Identify("svc", "release-bot"); return nil }); err != nil {
		return err
	}
	var errs []error
	if s.Repo == "denied" {
		errs = append(errs, fmt.Errorf("connection svc: may not write to %s; grant it", s.Repo))
	}
	if sc.Unknown("params") {
		keys := make([]string, 0, len(s.Params))
		for k := range s.Params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if len(keys) > 0 && keys[0] == "BAD" {
			errs = append(errs, fmt.Errorf("job does not take parameter BAD (values unknown: %q)", s.Params["BAD"]))
		}
	}
	return errors.Join(errs...)
}

func init() {
	engine.Register(engine.StepType{Name: "test.guarded", Summary: "a step with a preflight", Connection: "testsvc",
		New: func() engine.Step { return &guardedStep{} }, Outputs: []engine.Output{{Name: "tag", Type: engine.TypeString}}})
}

const preflightPlaybook = `runbook: v1
product: demo
inputs:
  repos: {type: list, default: [ok, denied, other]}
connections:
  svc: {type: testsvc, token: {env: PREFLIGHT_TEST_TOKEN}}
steps:
  - id: first
    type: test.guarded
    with: {repo: ok}
  - id: each
    type: test.guarded
    foreach: ${{ inputs.repos }}
    with: {repo: "${{ item }}"}
  - id: plain
    type: test.leak
    with: {connection: svc}
  - id: never
    type: test.guarded
    when: len(inputs.repos) == 0
    with: {repo: denied}
  - id: shaped
    type: test.guarded
    with:
      repo: ok
      params: '${{ fromPairs(map(inputs.repos, [# == "denied" ? "BAD" : #, steps.each.outputs.tag[#index]])) }}'
on_failure:
  - id: undo
    type: test.guarded
    when: failure.rollback && steps.first.status == "succeeded"
    with: {repo: denied}
`

func preflight(t *testing.T) *engine.PreflightReport {
	t.Helper()
	pb, in := load(t, preflightPlaybook)
	rep, err := engine.Preflight(context.Background(), pb, in, engine.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestPreflightMissingSecret: no token: one problem, naming every step that needs it, and
// nothing else is asked of the service.
func TestPreflightMissingSecret(t *testing.T) {
	t.Setenv("PREFLIGHT_TEST_TOKEN", "")
	guardedChecks.Store(0)
	rep := preflight(t)
	if len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0].Message, "environment variable PREFLIGHT_TEST_TOKEN is not set") {
		t.Fatalf("problems %+v", rep.Problems)
	}
	// test.leak has no Preflight of its own: the engine checks its connection's secret.
	if got := strings.Join(rep.Problems[0].Steps, ","); got != "first,each,plain,shaped,undo" {
		t.Errorf("steps %s", got)
	}
	if guardedChecks.Load() != 0 {
		t.Errorf("the service was asked %d times without a token", guardedChecks.Load())
	}
	if err := rep.Err(); err == nil || !strings.Contains(err.Error(), "nothing was changed and no run was started") {
		t.Errorf("Err: %v", err)
	}
}

// TestPreflightProblems: with the token, every step that may run is checked (each foreach
// item, the on_failure step whose condition depends on the run), a step whose condition
// is false is not; a check shared with sc.Once is made once; a parameters map built from
// earlier outputs has its keys checked; all problems come at once.
func TestPreflightProblems(t *testing.T) {
	t.Setenv("PREFLIGHT_TEST_TOKEN", "s3cret-value")
	guardedChecks.Store(0)
	rep := preflight(t)
	var got []string
	for _, p := range rep.Problems {
		got = append(got, p.Message+" @ "+strings.Join(p.Steps, ","))
	}
	want := []string{
		"connection svc: may not write to denied; grant it @ each,undo",
		`job does not take parameter BAD (values unknown: "") @ shaped`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems\n got: %q\nwant: %q", got, want)
	}
	if guardedChecks.Load() != 1 {
		t.Errorf("the shared check ran %d times", guardedChecks.Load())
	}
	if rep.Identities["svc"] != "release-bot" {
		t.Errorf("identities %v", rep.Identities)
	}
	if rep.Checked != 5 {
		t.Errorf("checked %d steps, want 5 (never's condition is false)", rep.Checked)
	}
}
