package rehearsal_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/steps/rehearsal"
)

// products are the four product playbooks with inputs a release of each needs.
var products = []struct {
	name string
	set  map[string]string
}{
	{"cdc", map[string]string{"version": "4.3.0"}},
	{"cvs", map[string]string{"version": "3.7.0"}},
	{"eqb", map[string]string{"version": "1.2.0"}},
	{"elsst", map[string]string{"version": "2026", "vocabulary": "elsst-7"}},
}

// rehearseProduct runs a product playbook end to end with the people's answers given and
// returns the report and the world it left.
func rehearseProduct(t *testing.T, name string, set map[string]string, ans rehearsal.Answers) (*engine.Report, rehearsal.State) {
	t.Helper()
	w := newWorld(t, name, set, ans)
	return w.release(set), w.sb.State(set["version"])
}

var reportSchema *jsonschema.Schema

func checkReportSchema(t *testing.T, rep *engine.Report) {
	t.Helper()
	if reportSchema == nil {
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		s, err := c.Compile("../../schema/report.schema.json")
		if err != nil {
			t.Fatal(err)
		}
		reportSchema = s
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := reportSchema.Validate(inst); err != nil {
		t.Errorf("the report does not match schema/report.schema.json: %v", err)
	}
}

// production lists the images production runs after the release, by workload.
func production(st rehearsal.State) map[string]string {
	out := map[string]string{}
	for w, images := range st.Workloads {
		if strings.HasPrefix(w, "production/") {
			out[w] = images
		}
	}
	return out
}

// published counts the depositions this release published on Zenodo: the sandbox is
// seeded with the product's earlier versions, published already.
func published(st rehearsal.State) int {
	seeded := st.Zenodo["depositions"] - st.Zenodo["created"]
	return st.Zenodo["publications"] - seeded
}

func deployBuilds(st rehearsal.State) int {
	n := 0
	for job, builds := range st.Builds {
		if strings.HasSuffix(job, ".deploy.prod") {
			n += len(builds)
		}
	}
	return n
}

// TestProductReleases rehearses each of the four product playbooks on every path of the
// procedure: approved (everything tagged, deployed, verified, published, announced; issue
// and milestone closed), refused at the approval (no tag, no deploy, rejected with the
// reason), production broken after the deploy (rolled back to the previous build), and a
// revert asked for by the service owner after the functional tests.
func TestProductReleases(t *testing.T) {
	if testing.Short() {
		t.Skip("sixteen whole rehearsals")
	}
	for _, p := range products {
		version := p.set["version"]
		t.Run(p.name+"/approved", func(t *testing.T) {
			rep, st := rehearseProduct(t, p.name, p.set, rehearsal.Answers{})
			if rep.Status != engine.RunSucceeded {
				t.Fatalf("status %s at %s: %s", rep.Status, rep.FailedStep, rep.Reason)
			}
			checkReleased(t, version, rep, st)
		})
		t.Run(p.name+"/refused", func(t *testing.T) {
			rep, st := rehearseProduct(t, p.name, p.set, rehearsal.Answers{Refuse: "design changes pending"})
			if rep.Status != engine.RunRejected || !strings.Contains(rep.Reason, "design changes pending") {
				t.Fatalf("status %s at %s: %s", rep.Status, rep.FailedStep, rep.Reason)
			}
			checkReportSchema(t, rep)
			if len(st.Tags) != 0 {
				t.Errorf("tagged after a refusal: %v", st.Tags)
			}
			if n := deployBuilds(st); n != 0 {
				t.Errorf("%d deploy.prod builds after a refusal", n)
			}
			if published(st) != 0 || len(st.Releases) != 0 {
				t.Errorf("published after a refusal: zenodo %v, releases %v", st.Zenodo, st.Releases)
			}
		})
		t.Run(p.name+"/broken_production", func(t *testing.T) {
			rep, st := rehearseProduct(t, p.name, p.set, rehearsal.Answers{Broken: true})
			if rep.Status != engine.RunRolledBack || rep.FailedStep != "verify_production" {
				t.Fatalf("status %s at %s: %s", rep.Status, rep.FailedStep, rep.Reason)
			}
			checkRolledBack(t, rep, st)
		})
		t.Run(p.name+"/reverted", func(t *testing.T) {
			rep, st := rehearseProduct(t, p.name, p.set, rehearsal.Answers{Revert: "search returns nothing"})
			if rep.Status != engine.RunRolledBack || rep.FailedStep != "stable" || !strings.Contains(rep.Reason, "search returns nothing") {
				t.Fatalf("status %s at %s: %s", rep.Status, rep.FailedStep, rep.Reason)
			}
			checkRolledBack(t, rep, st)
		})
	}
}

// checkReleased: everything tagged, deployed, verified, published, announced; the issue
// and milestone closed.
func checkReleased(t *testing.T, version string, rep *engine.Report, st rehearsal.State) {
	t.Helper()
	checkReportSchema(t, rep)
	if len(st.Tags) == 0 {
		t.Error("no repository tagged")
	}
	for repo, where := range st.Tags {
		if !strings.HasPrefix(where, "on the head of") {
			t.Errorf("%s: tag %s %s", repo, version, where)
		}
	}
	if n := deployBuilds(st); n == 0 {
		t.Error("no deploy.prod build")
	}
	prod := production(st)
	if len(prod) == 0 {
		t.Error("no production workload checked")
	}
	for w, images := range prod {
		if !strings.HasSuffix(images, ":"+version) {
			t.Errorf("%s runs %s after the release of %s", w, images, version)
		}
	}
	if n := published(st); n == 0 || n != st.Zenodo["created"] {
		t.Errorf("published %d of the %d reserved depositions on Zenodo", n, st.Zenodo["created"])
	}
	if countOf(st.Releases, func(r string) bool { return r == version+" draft=false" }) == 0 {
		t.Errorf("no published GitHub release %s: %v", version, st.Releases)
	}
	if !hasSuffix(st.Mail, " released") || len(st.Chat) < 2 {
		t.Errorf("announcements: mail %q, %d chat posts", st.Mail, len(st.Chat))
	}
	closed := countOf(st.Issues, func(is string) bool {
		return strings.HasPrefix(is, "#") && strings.Contains(is, "Release version "+version) && strings.Contains(is, "[closed]")
	})
	if closed != 1 {
		t.Errorf("closed release issues: %d (%v)", closed, st.Issues)
	}
	if s := rep.Step("close"); s == nil || s.Status != engine.StepSucceeded {
		t.Errorf("the issue and milestone were not closed by the close step: %+v", s)
	}
}

// checkRolledBack: production is back on the build before the release, the service owner
// was told, nothing was published.
func checkRolledBack(t *testing.T, rep *engine.Report, st rehearsal.State) {
	t.Helper()
	checkReportSchema(t, rep)
	prod := production(st)
	if len(prod) == 0 {
		t.Error("no production workload")
	}
	for w, images := range prod {
		if !strings.HasSuffix(images, ":previous") {
			t.Errorf("%s runs %s after the rollback, not the build before the release", w, images)
		}
	}
	if s := rep.Step("notify_reverted"); s == nil || s.Status != engine.StepSucceeded {
		t.Errorf("the service owner was not told of the revert: %+v", s)
	}
	if published(st) != 0 || len(st.Releases) != 0 {
		t.Errorf("published although reverted: zenodo %v, releases %v", st.Zenodo, st.Releases)
	}
}

// countOf counts the entries of every repository's list that match.
func countOf(byRepo map[string][]string, match func(string) bool) int {
	n := 0
	for _, list := range byRepo {
		for _, e := range list {
			if match(e) {
				n++
			}
		}
	}
	return n
}

func hasSuffix(list []string, suffix string) bool {
	for _, s := range list {
		if strings.HasSuffix(s, suffix) {
			return true
		}
	}
	return false
}

// TestPublishedFilesAreTheTagged: the Zenodo record of a rehearsed release holds the
// CHANGELOG.md and source archive of the tagged commit, downloaded from the simulated
// GitHub: the changelog there carries the version's date, its reserved DOI and the link to
// its release, so the changelog was written before the tag. The run starts on a Monday;
// the release window (Tuesday to Thursday) opens on Tuesday, the release day: the
// changelog, written on Monday for the approval, carries Tuesday's date.
func TestPublishedFilesAreTheTagged(t *testing.T) {
	set := products[1].set // cvs
	pb, err := engine.LoadFile("../../playbooks/cvs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in, err := pb.ResolveInputs(set)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := rehearsal.New(context.Background(), pb, in, rehearsal.Answers{}, rehearsal.WithClock(engine.NewFakeClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))))
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	rep, err := engine.Execute(context.Background(), pb, engine.Options{Inputs: in, Mode: "rehearsal", Clock: sb.Clock, Connect: sb.Connect, Actor: "operator"})
	if err != nil || rep.Status != engine.RunSucceeded {
		t.Fatalf("%v %v", rep.Status, err)
	}
	reserved := rep.Step("reserve_doi")
	if len(reserved.Items) == 0 {
		t.Fatal("no DOI reserved")
	}
	for i, item := range reserved.Items {
		id, doi := rehearsal.IntOf(item.Outputs["deposition_id"]), item.Outputs["doi"].(string)
		changelog, ok := sb.Zenodo.FileData(id, "CHANGELOG.md")
		if !ok {
			t.Fatalf("component %d: no CHANGELOG.md in deposition %d", i, id)
		}
		for _, want := range []string{"## [3.7.0] - 2026-03-03", "zenodo.org/badge/DOI/" + doi, "[3.7.0]: ", "/releases/tag/3.7.0"} {
			if !strings.Contains(string(changelog), want) {
				t.Errorf("component %d: the published CHANGELOG.md lacks %q:\n%s", i, want, changelog)
			}
		}
	}
	if id := rehearsal.IntOf(reserved.Items[0].Outputs["deposition_id"]); id != 0 {
		if tgz, ok := sb.Zenodo.FileData(id, "cessda.cvs.two-3.7.0.tar.gz"); !ok || len(tgz) < 100 || tgz[0] != 0x1f || tgz[1] != 0x8b {
			t.Errorf("the source archive is missing or not gzip (%d bytes)", len(tgz))
		}
	}
}
