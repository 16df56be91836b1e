package rehearsal_test

import (
	"context"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/steps/rehearsal"
)

// world is a rehearsal kept open after its run, so a test can read the world's own
// account of the release (rehearsal.Sandbox.Chain) beside the report's.
type world struct {
	t     *testing.T
	pb    *engine.Playbook
	sb    *rehearsal.Sandbox
	clock *engine.FakeClock
	// before is what production ran before the first release, by workload.
	before map[string][]string
}

func newWorld(t *testing.T, name string, set map[string]string, ans rehearsal.Answers) *world {
	t.Helper()
	pb, err := engine.LoadFile("../../playbooks/" + name + ".yaml")
	if err != nil {
		t.Fatal(err)
	}
	in, err := pb.ResolveInputs(set)
	if err != nil {
		t.Fatal(err)
	}
	clock := engine.NewFakeClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	sb, err := rehearsal.New(context.Background(), pb, in, ans, rehearsal.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	// Let staging and production settle (pods of the seeded builds running).
	clock.Advance(time.Minute)
	w := &world{t: t, pb: pb, sb: sb, clock: clock}
	w.before = sb.ProductionDigests()
	return w
}

func (w *world) release(set map[string]string) *engine.Report {
	w.t.Helper()
	return w.releaseInto(set, nil)
}

// releaseInto runs a release whose journal is kept in store (nil: in memory), so that a
// test can resume it.
func (w *world) releaseInto(set map[string]string, store engine.Store) *engine.Report {
	w.t.Helper()
	rep, err := engine.Execute(context.Background(), w.pb, engine.Options{Inputs: w.inputs(set), Mode: "rehearsal", Clock: w.sb.Clock, Connect: w.sb.Connect, Actor: "operator", Seed: 1, Store: store})
	if err != nil {
		w.t.Fatal(err)
	}
	return rep
}

// inputs resolves the playbook's inputs.
func (w *world) inputs(set map[string]string) map[string]any {
	w.t.Helper()
	in, err := w.pb.ResolveInputs(set)
	if err != nil {
		w.t.Fatal(err)
	}
	return in
}

// checkChain asserts, component by component, that the tag, the CI build, staging and
// production form one chain, both in the world and in the report.
func checkChain(t *testing.T, w *world, rep *engine.Report, version string) {
	t.Helper()
	chain := w.sb.Chain(version)
	if len(chain) == 0 {
		t.Fatal("no component has a CI job in the world")
	}
	tagOut := map[string]string{}
	for _, it := range rep.Step("tag").Items {
		tagOut[it.Outputs["repo"].(string)] = it.Outputs["sha"].(string)
	}
	builds := rep.Step("ci_build").Items
	staging := rep.Step("verify_staging").Items
	prod := rep.Step("verify_production").Items
	if len(builds) != len(chain) || len(staging) != len(chain) || len(prod) != len(chain) {
		t.Fatalf("%d components in the world, but %d CI builds, %d staging and %d production checks in the report", len(chain), len(builds), len(staging), len(prod))
	}
	for _, l := range chain {
		if l.TagCommit == "" {
			t.Errorf("%s: not tagged %s", l.Repo, version)
			continue
		}
		if tagOut[l.Repo] != l.TagCommit {
			t.Errorf("%s: the report says the tag is on %s, the world says %s", l.Repo, tagOut[l.Repo], l.TagCommit)
		}
		if len(l.Builds) != 1 || len(l.BuiltDigests) != 1 {
			t.Errorf("%s: CI builds of the tagged commit: %v (digests %v)", l.Repo, l.Builds, l.BuiltDigests)
			continue
		}
		built := l.BuiltDigests[0]
		// the report's CI build of this component
		var found bool
		for i, b := range builds {
			if b.Outputs["commit"] != l.TagCommit {
				continue
			}
			found = true
			if got := b.Outputs["job"].(string) + " #" + strconv.Itoa(rehearsal.IntOf(b.Outputs["number"])); got != l.Builds[0] {
				t.Errorf("%s: the report promotes %s, the world's build of the tagged commit is %s", l.Repo, got, l.Builds[0])
			}
			if d := staging[i].Outputs["digest"]; d != built {
				t.Errorf("%s: staging was checked at digest %v, the build of the tagged commit pushed %s", l.Repo, d, built)
			}
			if d := prod[i].Outputs["digest"]; d != built {
				t.Errorf("%s: production was checked at digest %v, the build of the tagged commit pushed %s", l.Repo, d, built)
			}
		}
		if !found {
			t.Errorf("%s: no CI build in the report built the tagged commit %s", l.Repo, l.TagCommit)
		}
		if len(l.Production) == 0 {
			t.Errorf("%s: no production pod runs %s", l.Repo, l.Image)
		}
		for _, d := range append(append([]string(nil), l.Staging...), l.Production...) {
			if d != built {
				t.Errorf("%s: a pod runs %s, not %s (staging %v, production %v)", l.Repo, d, built, l.Staging, l.Production)
			}
		}
		for _, ref := range l.ProductionRefs {
			if !strings.HasSuffix(ref, ":"+version) {
				t.Errorf("%s: production runs %s, not the release tag %s", l.Repo, ref, version)
			}
		}
	}
}

// TestChainOfCustody: for every product, what reaches production is, component by
// component, the image CI built from the tagged commit (the release commit that carries
// the changelog), the one staging ran: same digest, retagged with the version.
func TestChainOfCustody(t *testing.T) {
	if testing.Short() {
		t.Skip("four whole rehearsals")
	}
	for _, p := range products {
		t.Run(p.name, func(t *testing.T) {
			w := newWorld(t, p.name, p.set, rehearsal.Answers{})
			rep := w.release(p.set)
			if rep.Status != engine.RunSucceeded {
				t.Fatalf("status %s at %s: %s", rep.Status, rep.FailedStep, rep.Reason)
			}
			checkChain(t, w, rep, p.set["version"])
		})
	}
}

// TestStagingBuildOverrideOfAnotherCommit: an explicit staging build that did not build
// the tagged commit (here: the build staging ran before the release commit) stops the
// run before anything reaches production, naming both commits.
func TestStagingBuildOverrideOfAnotherCommit(t *testing.T) {
	set := map[string]string{"version": "3.7.0", "staging_build": "main-1"}
	w := newWorld(t, "cvs", set, rehearsal.Answers{})
	rep := w.release(set)
	if rep.Status != engine.RunFailed || rep.FailedStep != "ci_build" {
		t.Fatalf("status %s at %s: %s", rep.Status, rep.FailedStep, rep.Reason)
	}
	if !strings.Contains(rep.Reason, "release commit") {
		t.Errorf("the reason does not name the release commit: %s", rep.Reason)
	}
	if s := rep.Step("deploy"); s.Status != engine.StepPending && s.Status != engine.StepSkipped {
		t.Errorf("deploy %s after a refused override", s.Status)
	}
	if got := w.sb.ProductionDigests(); !reflect.DeepEqual(got, w.before) {
		t.Errorf("production changed: before %v, after %v", w.before, got)
	}
}

// TestLatePushStopsBeforeDeploying: a developer pushes to main right after the release
// commit; CI builds both and staging ends up running the later build, which is not the
// tagged commit's. The run stops at the staging check, before production changes.
//
// Released on the day of the release commit (the service owner picked it), the run stops
// at the staging check; released on a later day, it stops earlier, where the changelog
// would be re-dated: a commit on the moved branch head would release the late push too.
func TestLatePushStopsBeforeDeploying(t *testing.T) {
	for _, c := range []struct {
		day, step, reason string
	}{
		{"2026-03-02", "verify_staging", ""},
		{"", "changelog_release_day", "is not the release commit"},
	} {
		set := map[string]string{"version": "3.7.0", "release_day": c.day}
		w := newWorld(t, "cvs", set, rehearsal.Answers{LatePush: "cessda/cessda.cvs.two"})
		rep := w.release(set)
		if rep.Status != engine.RunFailed || rep.FailedStep != c.step || !strings.Contains(rep.Reason, c.reason) {
			t.Fatalf("release day %q: status %s at %s: %s", c.day, rep.Status, rep.FailedStep, rep.Reason)
		}
		if s := rep.Step("deploy"); s.Status == engine.StepSucceeded || s.Status == engine.StepFailed {
			t.Errorf("deploy %s although staging does not run the tagged build", s.Status)
		}
		if got := w.sb.ProductionDigests(); !reflect.DeepEqual(got, w.before) {
			t.Errorf("production changed: before %v, after %v", w.before, got)
		}
	}
}

// TestTwoReleasesTwoDeploys: two releases of a product in a row in one world each
// trigger their own deploy build and each reaches production through its own chain.
func TestTwoReleasesTwoDeploys(t *testing.T) {
	first := map[string]string{"version": "3.7.0"}
	w := newWorld(t, "cvs", first, rehearsal.Answers{})
	if rep := w.release(first); rep.Status != engine.RunSucceeded {
		t.Fatalf("first release: %s at %s: %s", rep.Status, rep.FailedStep, rep.Reason)
	}
	second := map[string]string{"version": "3.7.1"}
	rep := w.release(second)
	if rep.Status != engine.RunSucceeded {
		t.Fatalf("second release: %s at %s: %s", rep.Status, rep.FailedStep, rep.Reason)
	}
	if n := len(w.sb.State("3.7.1").Builds["cessda.cvs.deploy.prod"]); n != 2 {
		t.Errorf("%d deploy.prod builds after two releases, want 2", n)
	}
	checkChain(t, w, rep, "3.7.1")
}

// TestRollbackToTheSnapshot: production broken by the deploy is rolled back to exactly
// what it ran before (every pod's digest), and the run says it was checked.
func TestRollbackToTheSnapshot(t *testing.T) {
	for _, p := range products {
		t.Run(p.name, func(t *testing.T) {
			w := newWorld(t, p.name, p.set, rehearsal.Answers{Broken: true})
			rep := w.release(p.set)
			if rep.Status != engine.RunRolledBack || rep.FailedStep != "verify_production" {
				t.Fatalf("status %s at %s: %s", rep.Status, rep.FailedStep, rep.Reason)
			}
			if s := rep.Step("verify_rollback"); s.Status != engine.StepSucceeded {
				t.Errorf("verify_rollback %s: %s", s.Status, s.Error)
			}
			if got := w.sb.ProductionDigests(); !reflect.DeepEqual(got, w.before) {
				t.Errorf("production after the rollback %v, before the release %v", got, w.before)
			}
		})
	}
}

// TestRollbackThatMissesTheSnapshot: a rollback job that deploys something else leaves
// the run failed, saying production is not back on the previous release, and the
// platform maintainer is told; the release issue still says why the release stopped.
func TestRollbackThatMissesTheSnapshot(t *testing.T) {
	set := map[string]string{"version": "3.7.0"}
	w := newWorld(t, "cvs", set, rehearsal.Answers{Broken: true, BadRollback: true})
	rep := w.release(set)
	if rep.Status != engine.RunFailed {
		t.Fatalf("status %s, want failed: %s", rep.Status, rep.Reason)
	}
	if !strings.Contains(rep.Reason, "production is not back on the previous release") {
		t.Errorf("reason: %s", rep.Reason)
	}
	for _, id := range []string{"notify_revert_failed", "notify_reverted", "record_stop"} {
		if s := rep.Step(id); s.Status != engine.StepSucceeded {
			t.Errorf("%s %s: %s", id, s.Status, s.Error)
		}
	}
	st := w.sb.State("3.7.0")
	if !hasSuffix(st.Mail, "is not back on the previous release") {
		t.Errorf("the platform maintainer was not e-mailed: %v", st.Mail)
	}
}
