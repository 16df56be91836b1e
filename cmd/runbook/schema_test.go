package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/cessda/runbook/engine"
)

// TestPlaybookSchemaIsCurrent fails when schema/playbook.schema.json no longer matches
// what the registered step types and the fragments in playbooks/fragments generate: run
// `go run ./cmd/runbook schema -o schema/playbook.schema.json`. The same for the
// fragment and site schemas (`--kind fragment`, `--kind site`).
func TestPlaybookSchemaIsCurrent(t *testing.T) {
	frags, _ := filepath.Glob("../../playbooks/fragments/*.yaml")
	if len(frags) == 0 {
		t.Fatal("no fragments found")
	}
	for _, c := range []struct {
		file, regen string
		gen         func() ([]byte, error)
	}{
		{"playbook.schema.json", "schema -o schema/playbook.schema.json", func() ([]byte, error) { return engine.PlaybookSchema(frags...) }},
		{"fragment.schema.json", "schema --kind fragment -o schema/fragment.schema.json", engine.FragmentSchema},
		{"site.schema.json", "schema --kind site -o schema/site.schema.json", engine.SiteSchema},
	} {
		want, err := c.gen()
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile("../../schema/" + c.file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("schema/%s is stale: run `go run ./cmd/runbook %s`", c.file, c.regen)
		}
	}
}

// TestSchemaCommandWritesEachKind: the command the messages above name writes the
// schemas the test compares.
func TestSchemaCommandWritesEachKind(t *testing.T) {
	dir := t.TempDir()
	for _, kind := range []string{"playbook", "fragment", "site"} {
		var out, errb bytes.Buffer
		out.Reset()
		f := filepath.Join(dir, kind+".json")
		code := run([]string{"schema", "--kind", kind, "--fragments", "../../playbooks/fragments/*.yaml", "-o", f}, strings.NewReader(""), &out, &errb)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", kind, code, errb.String())
		}
		got, _ := os.ReadFile(f)
		want, _ := os.ReadFile("../../schema/" + kind + ".schema.json")
		if !bytes.Equal(got, want) {
			t.Errorf("runbook schema --kind %s differs from schema/%s.schema.json", kind, kind)
		}
	}
}

func compileSchema(t *testing.T, path string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	s, err := c.Compile(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var schemaHeaderRE = regexp.MustCompile(`(?m)^# yaml-language-server: \$schema=(\S+)$`)

// schemaFiles: every playbook, fragment and site file the project ships, each with the
// schema its yaml-language-server header names (what an editor checks it against).
func schemaFiles(t *testing.T) map[string]string {
	t.Helper()
	var files []string
	for _, g := range []string{"../../examples/*.yaml", "../../playbooks/*.yaml", "../../playbooks/fragments/*.yaml"} {
		more, _ := filepath.Glob(g)
		files = append(files, more...)
	}
	out := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m := schemaHeaderRE.FindSubmatch(b)
		want := "playbook.schema.json"
		switch {
		case strings.Contains(f, "/fragments/"):
			want = "fragment.schema.json"
		case filepath.Base(f) == "site.yaml":
			want = "site.schema.json"
		}
		if m == nil {
			if !strings.Contains(f, "/examples/") {
				t.Errorf("%s: no yaml-language-server header naming its schema (%s)", f, want)
			}
			out[f] = "../../schema/" + want
			continue
		}
		schema := filepath.Join(filepath.Dir(f), string(m[1]))
		if filepath.Base(schema) != want {
			t.Errorf("%s: its header names %s, not %s", f, m[1], want)
		}
		if _, err := os.Stat(schema); err != nil {
			t.Errorf("%s: its header names %s: %v", f, m[1], err)
		}
		out[f] = schema
	}
	if len(out) == 0 {
		t.Fatal("no playbooks found")
	}
	return out
}

func validateYAML(s *jsonschema.Schema, doc any) error {
	js, _ := json.Marshal(doc)
	inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	return s.Validate(inst)
}

// TestPlaybooksMatchSchema: every playbook, fragment, site file and example the project
// ships is valid against the generated schema its header names (what editors check),
// not only against the engine.
func TestPlaybooksMatchSchema(t *testing.T) {
	compiled := map[string]*jsonschema.Schema{}
	for f, schema := range schemaFiles(t) {
		if compiled[schema] == nil {
			compiled[schema] = compileSchema(t, schema)
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		if err := validateYAML(compiled[schema], doc); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	s := compileSchema(t, "../../schema/playbook.schema.json")
	// And the schema does refuse what the engine refuses: a misspelt step key.
	bad := map[string]any{"runbook": "v1", "product": "x", "steps": []any{map[string]any{"id": "a", "type": "sleep", "wiht": map[string]any{}}}}
	if err := validateYAML(s, bad); err == nil || !strings.Contains(err.Error(), "wiht") {
		t.Errorf("schema accepted an unknown step key: %v", err)
	}
}

// TestSchemaMessagesPointAtTheMistake: what an editor says while a person types. A
// misspelt param of an include (deploy_jobb) is caught against that fragment's params; a
// misspelt step type or step parameter is named, not lost in "not valid under any of the
// given schemas".
func TestSchemaMessagesPointAtTheMistake(t *testing.T) {
	s := compileSchema(t, "../../schema/playbook.schema.json")
	pb := func(steps ...any) map[string]any {
		return map[string]any{"runbook": "v1", "product": "x", "steps": steps}
	}
	for _, c := range []struct {
		name string
		doc  map[string]any
		want []string
	}{
		{"include with a misspelt param", pb(map[string]any{"include": "fragments/deploy.yaml", "with": map[string]any{"deploy_jobb": "x", "staging_namespace": "cvs"}}),
			[]string{"deploy_jobb", "deploy_job"}},
		{"include missing a required param", pb(map[string]any{"include": "../fragments/verify.yaml", "with": map[string]any{"tracker": "a/b", "public_url": "https://x/"}}),
			[]string{"smoke_paths"}},
		{"include with a param of the wrong type", pb(map[string]any{"include": "fragments/gate.yaml", "with": map[string]any{"tracker": "a/b", "backups_automated": "yes"}}),
			[]string{"backups_automated"}},
		{"misspelt step type", pb(map[string]any{"id": "a", "type": "github.tagg", "with": map[string]any{}}),
			[]string{"/steps/0/type", "github.tag"}},
		{"misspelt step parameter", pb(map[string]any{"id": "a", "type": "github.tag", "with": map[string]any{"repo": "a/b", "tagg": "1.0.0"}}),
			[]string{"tagg"}},
	} {
		err := validateYAML(s, c.doc)
		if err == nil {
			t.Errorf("%s: the schema accepts it", c.name)
			continue
		}
		msg := err.Error()
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: the message does not name %q:\n%s", c.name, w, msg)
			}
		}
		if strings.Contains(msg, "not valid under any") || strings.Contains(msg, "oneOf") {
			t.Errorf("%s: an unhelpful message:\n%s", c.name, msg)
		}
	}
	// A valid include with every param is accepted, and an unknown fragment's with: is free.
	ok := pb(map[string]any{"include": "fragments/deploy.yaml", "with": map[string]any{"deploy_job": "x", "staging_namespace": "${{ vars.ns }}"}},
		map[string]any{"include": "elsewhere/other.yaml", "with": map[string]any{"anything": 1}})
	if err := validateYAML(s, ok); err != nil {
		t.Errorf("valid includes refused: %v", err)
	}
	// The fragment schema knows needs:, and refuses a misspelt key in it.
	fs := compileSchema(t, "../../schema/fragment.schema.json")
	frag := map[string]any{"fragment": "v1", "needs": map[string]any{"stpes": map[string]any{}}, "steps": []any{map[string]any{"id": "a", "type": "sleep"}}}
	if err := validateYAML(fs, frag); err == nil || !strings.Contains(err.Error(), "stpes") {
		t.Errorf("fragment schema: %v", err)
	}
}

// TestReportMatchesSchema runs the example playbook and validates its real report.
func TestReportMatchesSchema(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := run([]string{"run", "../../examples/local-release.yaml", "--set", "version=1.2.3", "--set", "workdir=" + dir + "/work",
		"--state-dir", dir, "--report", dir + "/report.json"}, strings.NewReader(""), &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	s := compileSchema(t, "../../schema/report.schema.json")
	b, err := os.ReadFile(dir + "/report.json")
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(inst); err != nil {
		t.Fatalf("report does not match schema/report.schema.json: %v", err)
	}
	var rep engine.Report
	json.Unmarshal(b, &rep)
	if rep.Status != engine.RunSucceeded || len(rep.Steps) != 7 {
		t.Fatalf("report: status %s, %d steps", rep.Status, len(rep.Steps))
	}
}
