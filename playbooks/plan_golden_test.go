package playbooks_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
)

// TestPlanRenderingsMatchGolden: the offline plan of cvs.yaml as a reviewer reads it, in
// text (testdata/cvs.plan.txt) and Markdown with its Mermaid diagram (cvs.plan.md); go
// test -update rewrites them.
func TestPlanRenderingsMatchGolden(t *testing.T) {
	pb := load(t, "cvs")
	in, err := pb.ResolveInputs(map[string]string{"version": "3.6.2"})
	if err != nil {
		t.Fatal(err)
	}
	clock := engine.NewFakeClock(time.Date(2026, 9, 15, 11, 0, 0, 0, time.UTC))
	doc, err := engine.BuildPlan(context.Background(), pb, in, engine.PlanOptions{Offline: true, Actor: "release-engineer", Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name  string
		write func(*bytes.Buffer) error
	}{
		{"cvs.plan.txt", func(b *bytes.Buffer) error { return doc.WriteText(b) }},
		{"cvs.plan.md", func(b *bytes.Buffer) error { return doc.WriteMarkdown(b) }},
	} {
		t.Run(f.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := f.write(&buf); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", f.name)
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
				t.Errorf("%s differs; if the change is intended run go test ./playbooks -update and review the diff\n%s", golden, firstDiff(buf.String(), string(want)))
			}
		})
	}
	// What a reviewer must find in them, whatever else changes.
	var text, md bytes.Buffer
	doc.WriteText(&text)
	doc.WriteMarkdown(&md)
	for _, want := range []string{
		"+ 15. tag: Tag every source repository (github.tag) [technical_maintainer]",
		"         - cessda/cessda.cvs.userguide: repo cessda/cessda.cvs.userguide\n",
		"ref: (known after run: steps.changelog_release_day)",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("the text plan lacks %q", want)
		}
	}
	for _, want := range []string{
		"| 15 | `tag` Tag every source repository | `github.tag` |",
		"  - cessda/cessda.cvs.userguide: repo cessda/cessda.cvs.userguide\n",
		"s12{{\"12. The service owner approves the release in w…<br/>approval · github.approval\"}}",
		"s20 -.->|fails: roll back| g5",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("the Markdown plan lacks %q", want)
		}
	}
}
