package rehearsal_test

import (
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/steps/github/githubsim"
	"github.com/cessda/runbook/steps/jenkins/jenkinssim"
	"github.com/cessda/runbook/steps/rehearsal"
	"github.com/cessda/runbook/steps/zenodo/zenodosim"
)

// rehearsePlaybook runs a product playbook in a rehearsal, with inject called on the
// sandbox before the run, and returns the report and the world it left.
func rehearsePlaybook(t *testing.T, file string, set map[string]string, inject func(*rehearsal.Sandbox)) (*engine.Report, rehearsal.State) {
	t.Helper()
	pb, err := engine.LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	in, err := pb.ResolveInputs(set)
	if err != nil {
		t.Fatal(err)
	}
	// Both runs start at the same instant: the changelog carries the release date, and
	// the faulty run's Retry-After waits must not carry it over midnight.
	start := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	sb, err := rehearsal.New(context.Background(), pb, in, rehearsal.Answers{}, rehearsal.WithClock(engine.NewFakeClock(start)))
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	if inject != nil {
		inject(sb)
	}
	rep, err := engine.Execute(context.Background(), pb, engine.Options{Inputs: in, Mode: "rehearsal", Clock: sb.Clock, Connect: sb.Connect, Actor: "operator", Seed: 42})
	if err != nil {
		t.Fatal(err)
	}
	return rep, sb.State(set["version"])
}

// TestFullRehearsalUnderFaults: a whole CVS release with faults injected into every
// service — 5xx answers, GitHub's secondary rate limit with Retry-After, slow answers,
// dropped connections, and answers lost after the effect happened — completes, and leaves
// the world exactly as the fault-free release does: no duplicated issue, comment, tag,
// build, deposition, release, e-mail or chat post.
func TestFullRehearsalUnderFaults(t *testing.T) {
	set := map[string]string{"version": "3.7.0"}
	ref, want := rehearsePlaybook(t, "../../playbooks/cvs.yaml", set, nil)
	if ref.Status != engine.RunSucceeded {
		t.Fatalf("fault-free run: %s at %s: %s", ref.Status, ref.FailedStep, ref.Reason)
	}
	rep, got := rehearsePlaybook(t, "../../playbooks/cvs.yaml", set, func(sb *rehearsal.Sandbox) {
		sb.GitHub.Inject(githubsim.Fault{Kind: githubsim.ServerError, Method: http.MethodPost, Path: "/repos/*", Times: 2, Status: 502})
		sb.GitHub.Inject(githubsim.Fault{Kind: githubsim.SecondaryLimit, Method: http.MethodGet, Path: "/repos/*", Times: 1, RetryAfter: 30 * time.Second})
		sb.GitHub.Inject(githubsim.Fault{Kind: githubsim.Drop, Method: http.MethodPatch, Path: "/repos/*", Times: 1})
		sb.GitHub.Inject(githubsim.Fault{Kind: githubsim.Slow, Method: http.MethodGet, Path: "/repos/*", Times: 2, Delay: 5 * time.Millisecond})
		sb.Jenkins.Inject(jenkinssim.Fault{Method: http.MethodPost, Status: 503, Times: 1})
		sb.Jenkins.Inject(jenkinssim.Fault{Method: http.MethodPost, Drop: true, AfterEffect: true, Times: 1})
		sb.Jenkins.Inject(jenkinssim.Fault{Method: http.MethodGet, Drop: true, Times: 2})
		sb.Zenodo.Inject(zenodosim.Fault{Method: http.MethodPost, Status: 503, Times: 1})
		sb.Zenodo.Inject(zenodosim.Fault{Method: http.MethodPut, After: true, Drop: true, Times: 1})
		sb.Zenodo.Inject(zenodosim.Fault{Method: http.MethodGet, Delay: 5 * time.Millisecond, Times: 3})
		sb.Chat.RateLimitNext(1, 2*time.Second)
		sb.Chat.FailNext(1, 500)
		sb.SMTP.FailNext(1, 451, "")
		sb.Public.FailNext(2, 503)
		sb.Public.DropNext(1)
		// as a real API server answers it: 500 with the storage's message
		sb.Clusters["production"].FailNext("get", "deployments", 1, apierrors.NewInternalError(errors.New("etcdserver: request timed out")))
	})
	if rep.Status != engine.RunSucceeded {
		t.Fatalf("run under faults: %s at %s: %s", rep.Status, rep.FailedStep, rep.Reason)
	}
	retried := 0
	for _, s := range rep.Steps {
		if s.Attempts > 1 {
			retried++
		}
	}
	a, _ := json.MarshalIndent(want, "", " ")
	b, _ := json.MarshalIndent(got, "", " ")
	if string(a) != string(b) {
		t.Errorf("the world after the faulty run differs from the fault-free run's\nfault-free: %s\nfaulty:     %s", a, b)
	}
	t.Logf("steps retried by the engine: %d", retried)
}
