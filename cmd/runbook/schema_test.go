package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/cessda/runbook/engine"
)

// TestPlaybookSchemaIsCurrent fails when schema/playbook.schema.json no longer matches
// what the registered step types generate: run `go run ./cmd/runbook schema -o schema/playbook.schema.json`.
func TestPlaybookSchemaIsCurrent(t *testing.T) {
	want, err := engine.PlaybookSchema()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../schema/playbook.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("schema/playbook.schema.json is stale: run `go run ./cmd/runbook schema -o schema/playbook.schema.json`")
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

// TestPlaybooksMatchSchema: every playbook and example the project ships is valid
// against the generated schema (what editors check), not only against the engine.
func TestPlaybooksMatchSchema(t *testing.T) {
	s := compileSchema(t, "../../schema/playbook.schema.json")
	files, _ := filepath.Glob("../../examples/*.yaml")
	more, _ := filepath.Glob("../../playbooks/*.yaml")
	files = append(files, more...)
	if len(files) == 0 {
		t.Fatal("no playbooks found")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		js, _ := json.Marshal(doc)
		inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader(js))
		if err := s.Validate(inst); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	// And the schema does refuse what the engine refuses: a misspelt step key.
	bad := map[string]any{"runbook": "v1", "product": "x", "steps": []any{map[string]any{"id": "a", "type": "sleep", "wiht": map[string]any{}}}}
	js, _ := json.Marshal(bad)
	inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err := s.Validate(inst); err == nil || !strings.Contains(err.Error(), "wiht") {
		t.Errorf("schema accepted an unknown step key: %v", err)
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
