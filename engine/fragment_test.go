package engine_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cessda/runbook/engine"
)

// TestFragmentInclude: a fragment's steps join the playbook where it is included, read
// their params, and can read earlier steps of the including playbook.
func TestFragmentInclude(t *testing.T) {
	pb, err := engine.LoadFile("testdata/fragments/playbook.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range pb.Steps {
		ids = append(ids, s.ID)
	}
	if got := strings.Join(ids, ","); got != "first,notice,last" {
		t.Fatalf("steps %s", got)
	}
	in, _ := pb.ResolveInputs(nil)
	rep, err := engine.Execute(context.Background(), pb, engine.Options{Inputs: in})
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Step("last").Outputs["text"]; got != "to users: 1.0.0 after hello" {
		t.Errorf("last.text = %v", got)
	}
	if got := rep.Step("notice").Params["count"]; got != float64(3) && got != 3 {
		t.Errorf("count param = %v (%T)", got, got)
	}
}

// TestFragmentErrorsPointIntoTheFragment: a problem inside a fragment is reported at its
// place in the fragment file; a bad include at its place in the playbook.
func TestFragmentErrorsPointIntoTheFragment(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "frag.yaml"), []byte("fragment: v1\nparams:\n  who: {type: string, required: true}\nsteps:\n  - id: x\n    type: test.echo\n    with: {message: \"${{ params.whom }}\"}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "pb.yaml"), []byte("runbook: v1\nproduct: demo\nsteps:\n  - include: frag.yaml\n    with: {who: a, what: b}\n  - include: missing.yaml\n"), 0o644)
	_, err := engine.LoadFile(filepath.Join(dir, "pb.yaml"))
	var inv *engine.InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("want InvalidError, got %v", err)
	}
	var got []string
	for _, d := range inv.Diagnostics() {
		got = append(got, strings.TrimPrefix(d.Error(), dir+"/"))
	}
	want := []string{
		`pb.yaml:5:20: include frag.yaml: the fragment has no param "what" (did you mean "who"?); its params: who`,
		`pb.yaml:6:14: include missing.yaml: no such file or directory`,
		`frag.yaml:7:33: expression "params.whom": unknown field whom`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diagnostics\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
}
