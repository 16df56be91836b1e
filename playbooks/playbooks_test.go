// Package playbooks_test checks the product playbooks: they validate, match the JSON
// Schema editors use, plan offline exactly as the golden plans say, and share the common
// procedure through fragments instead of copying it.
package playbooks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/cessda/runbook/engine"
	_ "github.com/cessda/runbook/steps/all"
)

var update = flag.Bool("update", false, "rewrite the golden plans in testdata/")

// products and the fixed inputs each is planned with.
var products = []struct {
	name   string
	inputs map[string]string
}{
	{"cdc", map[string]string{"version": "4.3.0", "indexer_build": "main-456"}},
	{"cvs", map[string]string{"version": "3.6.2"}},
	{"eqb", map[string]string{"version": "1.0.0"}},
	{"elsst", map[string]string{"version": "2026", "vocabulary": "elsst-7"}},
}

func load(t *testing.T, product string) *engine.Playbook {
	t.Helper()
	pb, err := engine.LoadFile(product + ".yaml")
	if err != nil {
		t.Fatalf("%s.yaml: %v", product, err)
	}
	return pb
}

func TestPlaybooksValidate(t *testing.T) {
	for _, p := range products {
		pb := load(t, p.name)
		if pb.Product != p.name {
			t.Errorf("%s.yaml: product %q", p.name, pb.Product)
		}
	}
}

// TestPlaybooksMatchSchema: what an editor checks against the generated schemas. The
// playbook schema must know `- include: FILE` entries (with: params) in steps and
// on_failure and the site: key, as the engine does; each fragment matches
// schema/fragment.schema.json and the site file schema/site.schema.json.
func TestPlaybooksMatchSchema(t *testing.T) {
	files := map[string]string{"site.yaml": "../schema/site.schema.json"}
	for _, p := range products {
		files[p.name+".yaml"] = "../schema/playbook.schema.json"
	}
	frags, _ := filepath.Glob("fragments/*.yaml")
	for _, f := range frags {
		files[f] = "../schema/fragment.schema.json"
	}
	schemas := map[string]*jsonschema.Schema{}
	for f, schema := range files {
		if schemas[schema] == nil {
			s, err := jsonschema.NewCompiler().Compile(schema)
			if err != nil {
				t.Fatal(err)
			}
			schemas[schema] = s
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte("# yaml-language-server: $schema=../"+strings.Repeat("../", strings.Count(f, "/"))+"schema/"+filepath.Base(schema))) {
			t.Errorf("%s: no yaml-language-server header naming %s", f, filepath.Base(schema))
		}
		var doc any
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		js, _ := json.Marshal(doc)
		inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader(js))
		if err := schemas[schema].Validate(inst); err != nil {
			t.Errorf("%s: the schema refuses it (does it know include entries?): %v", f, err)
		}
	}
}

// TestFragmentsValidateAlone: `runbook validate fragments/X.yaml` checks each fragment by
// itself against its params and the needs: it declares, with no error and nothing left
// unchecked (each declares its roles and connections).
func TestFragmentsValidateAlone(t *testing.T) {
	frags, _ := filepath.Glob("fragments/*.yaml")
	if len(frags) < 5 {
		t.Fatalf("fragments: %v", frags)
	}
	for _, f := range frags {
		c, err := engine.ValidateFile(f)
		if err != nil {
			t.Errorf("%s alone:\n%v", f, err)
			continue
		}
		if c.Kind != "fragment" || len(c.Fragment.Steps) == 0 {
			t.Errorf("%s: checked as %s, %d steps", f, c.Kind, len(c.Fragment.Steps))
		}
		for _, n := range c.Notes {
			t.Errorf("%s: left unchecked: %s", f, n.Msg)
		}
	}
}

// TestSiteIsShared: the connections, the platform maintainer and their person are
// written once, in site.yaml; every product names it and writes only its own.
func TestSiteIsShared(t *testing.T) {
	c, err := engine.ValidateFile("site.yaml")
	if err != nil || c.Kind != "site" {
		t.Fatalf("site.yaml: %v", err)
	}
	for _, p := range products {
		pb := load(t, p.name)
		b, _ := os.ReadFile(p.name + ".yaml")
		if !bytes.Contains(b, []byte("\nsite: site.yaml\n")) {
			t.Errorf("%s.yaml does not name site.yaml", p.name)
		}
		for _, c := range pb.Connections {
			if src := filepath.Base(c.Pos.File); (c.Name == "public") != (src == p.name+".yaml") {
				t.Errorf("%s.yaml: connection %s comes from %s", p.name, c.Name, src)
			}
		}
		if got := pb.Roles["platform_maintainer"]; len(got) != 1 || got[0] != "cessda-platform-maintainer" || bytes.Contains(b, []byte("platform_maintainer:")) {
			t.Errorf("%s.yaml: the platform maintainer is %v, or written in the playbook", p.name, got)
		}
	}
}

// TestPlansMatchGolden plans each playbook offline with fixed inputs and compares the
// JSON plan with testdata/<product>.plan.json (go test -update rewrites them).
func TestPlansMatchGolden(t *testing.T) {
	for _, p := range products {
		t.Run(p.name, func(t *testing.T) {
			pb := load(t, p.name)
			in, err := pb.ResolveInputs(p.inputs)
			if err != nil {
				t.Fatal(err)
			}
			clock := engine.NewFakeClock(time.Date(2026, 9, 15, 11, 0, 0, 0, time.UTC))
			doc, err := engine.BuildPlan(context.Background(), pb, in, engine.PlanOptions{Offline: true, Actor: "release-engineer", Clock: clock})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range doc.Errors() {
				t.Errorf("step %s: %s", s.ID, s.Error)
			}
			var buf bytes.Buffer
			if err := doc.WriteJSON(&buf); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", p.name+".plan.json")
			if *update {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./playbooks -update)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("plan of %s.yaml differs from %s; if the change is intended run go test ./playbooks -update and review the diff\n%s", p.name, golden, firstDiff(buf.String(), string(want)))
			}
		})
	}
}

func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var a, b string
		if i < len(g) {
			a = g[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			return "line " + strconv.Itoa(i+1) + ":\n got: " + a + "\nwant: " + b
		}
	}
	return ""
}

// stepsBySource groups step ids by the file they are written in (playbook or fragment).
func stepsBySource(t *testing.T, pb *engine.Playbook) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, st := range pb.AllSteps() {
		src := filepath.Base(st.Pos.File)
		out[src] = append(out[src], st.ID)
	}
	return out
}

// TestFragmentsAreShared: the common procedure is written once. Every playbook includes
// every fragment, gets the same steps from it, and the steps every release needs (issue,
// approval, tags, production deployment and checks, stable gate, publication, revert)
// come from fragments, never from a playbook's own copy.
func TestFragmentsAreShared(t *testing.T) {
	frags, _ := filepath.Glob("fragments/*.yaml")
	if len(frags) < 5 {
		t.Fatalf("fragments: %v", frags)
	}
	var first map[string][]string
	for _, p := range products {
		pb := load(t, p.name)
		by := stepsBySource(t, pb)
		for _, f := range frags {
			if len(by[filepath.Base(f)]) == 0 {
				t.Errorf("%s.yaml does not include %s", p.name, f)
			}
		}
		if first == nil {
			first = by
		}
		for _, f := range frags {
			base := filepath.Base(f)
			if strings.Join(by[base], ",") != strings.Join(first[base], ",") {
				t.Errorf("%s.yaml: steps from %s are %v, not %v", p.name, base, by[base], first[base])
			}
		}
		for _, id := range []string{"release_issue", "subtasks", "release_notes", "upgrade_procedures", "reserve_doi", "changelog", "approval", "tag", "deploy", "verify_production", "smoke", "notify_verified", "stable", "github_release", "zenodo_publish", "announce_email", "announce_chat", "close", "rollback_job", "notify_reverted", "record_stop"} {
			st := pb.Step(id)
			if st == nil {
				t.Errorf("%s.yaml has no step %s", p.name, id)
				continue
			}
			if src := filepath.Base(st.Pos.File); src == p.name+".yaml" {
				t.Errorf("%s.yaml writes %s itself instead of taking it from a fragment", p.name, id)
			}
		}
	}
}

// TestProcedureOrderAndRoles: in every playbook the release issue comes first, nothing
// is tagged before the approval, production is deployed only after the tags and a
// staging check, the stable gate precedes publication, every step names its role, and
// the revert steps run only when the production job ran.
func TestProcedureOrderAndRoles(t *testing.T) {
	for _, p := range products {
		pb := load(t, p.name)
		pos := map[string]int{}
		firstStaging := -1
		for i, st := range pb.Steps {
			pos[st.ID] = i
			if st.Role == "" {
				t.Errorf("%s.yaml: step %s names no role", p.name, st.ID)
			}
			if st.Type == "kubernetes.verify" && strings.HasPrefix(st.ID, "verify_staging") && firstStaging < 0 {
				firstStaging = i
			}
		}
		for _, st := range pb.OnFailure {
			if st.Role == "" {
				t.Errorf("%s.yaml: on_failure step %s names no role", p.name, st.ID)
			}
		}
		order := []string{"release_issue", "release_notes", "upgrade_procedures", "reserve_doi", "changelog", "approval", "tag", "deploy", "verify_production", "smoke", "notify_verified", "stable", "github_release", "zenodo_publish", "announce_email", "close"}
		for i := 1; i < len(order); i++ {
			if pos[order[i-1]] >= pos[order[i]] {
				t.Errorf("%s.yaml: %s comes after %s", p.name, order[i-1], order[i])
			}
		}
		if firstStaging < pos["tag"] || firstStaging > pos["deploy"] {
			t.Errorf("%s.yaml: the staging check is not between the tags and the deployment", p.name)
		}
		if st := pb.Step("deploy"); st == nil || pb.Step("deploy").Role != "platform_maintainer" {
			t.Errorf("%s.yaml: the production job is not the platform maintainer's", p.name)
		}
		rollbacks := 0
		for _, st := range pb.OnFailure {
			if st.Rollback {
				rollbacks++
				if st.When == nil || !strings.Contains(st.When.Src, `steps.deploy.status in ["succeeded", "failed"]`) {
					t.Errorf("%s.yaml: rollback step %s does not wait for the deployment to have run", p.name, st.ID)
				}
			}
		}
		if rollbacks == 0 {
			t.Errorf("%s.yaml: no on_failure step is marked rollback", p.name)
		}
	}
}

// TestRehearsalConventions: what the rehearsal relies on. Connections by name and type,
// the four roles with people to notify, kubernetes.verify with explicit workloads and an
// image tag, a production job ending in deploy.prod, smoke checks through `public`.
func TestRehearsalConventions(t *testing.T) {
	want := map[string]string{"github": "github", "staging": "kubernetes", "production": "kubernetes", "jenkins": "jenkins", "zenodo": "zenodo", "smtp": "smtp", "chat": "chat", "public": "http"}
	for _, p := range products {
		pb := load(t, p.name)
		got := map[string]*engine.ConnectionDecl{}
		for _, c := range pb.Connections {
			got[c.Name] = c
		}
		for name, typ := range want {
			if c := got[name]; c == nil || c.Type != typ {
				t.Errorf("%s.yaml: connection %s of type %s missing", p.name, name, typ)
			}
		}
		if got["staging"] != nil && got["staging"].Settings["context"] != "staging-cluster" ||
			got["production"] != nil && got["production"].Settings["context"] != "production-cluster" {
			t.Errorf("%s.yaml: kubernetes contexts are not staging-cluster and production-cluster", p.name)
		}
		for _, r := range []string{"technical_maintainer", "service_owner", "user_group", "platform_maintainer"} {
			if len(pb.Roles[r]) == 0 {
				t.Errorf("%s.yaml: role %s has nobody", p.name, r)
			}
			for _, login := range pb.Roles[r] {
				if pb.People[login].Email == "" {
					t.Errorf("%s.yaml: %s (%s) has no e-mail address", p.name, login, r)
				}
			}
		}
		in, err := pb.ResolveInputs(p.inputs)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := engine.BuildPlan(context.Background(), pb, in, engine.PlanOptions{Offline: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range doc.Steps {
			switch s.Type {
			case "kubernetes.verify":
				names := len(asList(s.Params["deployments"])) + len(asList(s.Params["statefulsets"]))
				if names == 0 || s.Params["image_tag"] == "" || s.Params["image_tag"] == nil {
					t.Errorf("%s.yaml: %s names no workloads or no image tag: %v", p.name, s.ID, s.Params)
				}
				if s.ID == "verify_production" && s.Params["image_tag"] != p.inputs["version"] {
					t.Errorf("%s.yaml: production is checked for %v, not the version", p.name, s.Params["image_tag"])
				}
			case "http.check":
				if s.Params["connection"] != "public" || strings.Contains(s.Params["url"].(string), "://") {
					t.Errorf("%s.yaml: smoke check %v must be a path under the public connection", p.name, s.Params)
				}
			}
		}
		if job, _ := stepParam(doc, "deploy", "job").(string); !strings.HasSuffix(job, p.name+".deploy.prod") {
			t.Errorf("%s.yaml: production job %q", p.name, job)
		}
	}
}

func asList(v any) []any { l, _ := v.([]any); return l }

func stepParam(doc *engine.PlanDoc, id, key string) any {
	for _, s := range doc.Steps {
		if s.ID == id {
			return s.Params[key]
		}
	}
	return nil
}

// TestEveryReleasedComponentIsPromoted: a component a product playbook tags and publishes
// is also promoted through its own chain of custody (CI job, image, staging and production
// workloads, the deploy job's parameter for its tag), unless the playbook says why not
// (not_deployed: <reason>, e.g. a library with no image); and every workload the deploy
// changes is in the snapshot the revert goes back to.
func TestEveryReleasedComponentIsPromoted(t *testing.T) {
	for _, p := range products {
		pb, err := engine.LoadFile(p.name + ".yaml")
		if err != nil {
			t.Fatal(err)
		}
		in, err := pb.ResolveInputs(p.inputs)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := engine.BuildPlan(context.Background(), pb, in, engine.PlanOptions{Offline: true})
		if err != nil {
			t.Fatal(err)
		}
		prod, _ := doc.Vars["production"].(map[string]any)
		snapshot := map[string]bool{}
		for _, k := range []string{"deployments", "statefulsets"} {
			for _, n := range asList(prod[k]) {
				snapshot[n.(string)] = true
			}
		}
		deployed := 0
		for _, c := range asList(doc.Vars["components"]) {
			m := c.(map[string]any)
			if why, _ := m["not_deployed"].(string); why != "" {
				continue
			}
			deployed++
			for _, k := range []string{"repo", "ci_job", "image", "deploy_parameter"} {
				if v, _ := m[k].(string); v == "" {
					t.Errorf("%s.yaml: component %v has no %s: give it, or say why it is not deployed (not_deployed: <reason>)", p.name, m["repo"], k)
				}
			}
			for _, env := range []string{"staging", "production"} {
				w, _ := m[env].(map[string]any)
				if len(asList(w["deployments"]))+len(asList(w["statefulsets"])) == 0 {
					t.Errorf("%s.yaml: component %v names no %s workload", p.name, m["repo"], env)
				}
				if env == "production" {
					for _, k := range []string{"deployments", "statefulsets"} {
						for _, n := range asList(w[k]) {
							if !snapshot[n.(string)] {
								t.Errorf("%s.yaml: production workload %v of %v is not in vars.production, so the revert would not restore it", p.name, n, m["repo"])
							}
						}
					}
				}
			}
		}
		if got := len(asList(doc.Vars["deployed"])); got != deployed {
			t.Errorf("%s.yaml: vars.deployed has %d components, %d are deployed", p.name, got, deployed)
		}
		if n := len(doc.Steps); n == 0 {
			t.Fatal("empty plan")
		}
		for _, s := range doc.Steps {
			if s.ID == "ci_build" && len(s.ItemParams) != deployed && deployed > 1 {
				t.Errorf("%s.yaml: the plan shows %d CI builds for %d components", p.name, len(s.ItemParams), deployed)
			}
		}
	}
}
