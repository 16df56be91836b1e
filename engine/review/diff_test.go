package review_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/engine/review"
	_ "github.com/cessda/runbook/steps/all"
)

func step(id, typ, role string, params map[string]any) *engine.PlannedStep {
	return &engine.PlannedStep{ID: id, Type: typ, Role: role, Section: engine.SectionSteps, Condition: "always", Params: params}
}

// plans builds a base and a head plan that differ in every way a review cares about.
func plans() (*engine.PlanDoc, *engine.PlanDoc) {
	base := &engine.PlanDoc{Playbook: "origin/main:playbooks/cdc.yaml", Product: "cdc", Title: "CESSDA Data Catalogue", Hash: "aaaa",
		Inputs: map[string]any{"version": "3.6.1"},
		Steps: []*engine.PlannedStep{
			step("backup", "jenkins.build", "platform_maintainer", map[string]any{"job": "cessda.cdc.es.backup"}),
			step("prepare", "github.release_issue", "technical_maintainer", map[string]any{"repo": "cessda/cessda.cdc.versions"}),
			step("tag", "github.tag", "technical_maintainer", map[string]any{"repo": "cessda/cessda.cdc.searchkit", "tag": "3.6.1"}),
			step("deploy", "jenkins.build", "technical_maintainer", map[string]any{"job": "cessda.cdc.deploy.prod", "parameters": map[string]any{"VERSION": "3.6.1", "DRY": true}}),
			step("smoke", "httpcheck", "", map[string]any{"url": "https://datacatalogue.cessda.eu/"}),
			step("announce", "notify.email", "service_owner", map[string]any{"to": []any{"users@cessda.eu"}}),
		}}
	head := &engine.PlanDoc{Playbook: "playbooks/cdc.yaml", Product: "cdc", Title: "CESSDA Data Catalogue", Hash: "bbbb",
		Inputs: map[string]any{"version": "3.6.1"},
		Steps: []*engine.PlannedStep{
			step("prepare", "github.release_issue", "technical_maintainer", map[string]any{"repo": "cessda/cessda.cdc.versions"}),
			step("tag", "github.tag", "technical_maintainer", map[string]any{"repo": "cessda/cessda.cdc.searchkit", "tag": "3.6.1"}),
			step("backup", "jenkins.build", "platform_maintainer", map[string]any{"job": "cessda.cdc.es.backup"}),
			step("deploy", "jenkins.build", "platform_maintainer", map[string]any{"job": "cessda.cdc.deploy.prod", "parameters": map[string]any{"VERSION": "3.6.1", "STAGING_BUILD": "(known after run)"}}),
			step("verify", "kubernetes.verify", "platform_maintainer", map[string]any{"namespace": "cdc", "workloads": []any{"cdc-frontend"}}),
			step("smoke", "httpcheck", "", map[string]any{"url": "https://datacatalogue.cessda.eu/"}),
		}}
	head.Steps[3].When, head.Steps[3].Condition = "steps.tag.status == \"succeeded\"", "known after run"
	return base, head
}

func TestDiffText(t *testing.T) {
	base, head := plans()
	d := review.Diff(base, head)
	var b bytes.Buffer
	if err := d.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := `Plan diff for cdc: origin/main:playbooks/cdc.yaml -> playbooks/cdc.yaml
Plan hash: aaaa -> bbbb
Summary: 1 step added, 1 step removed, 1 step changed, 1 step moved.

> backup (jenkins.build) [platform_maintainer] moved 1 -> 3
~ deploy (jenkins.build) [platform_maintainer] changed at 4
    role: "technical_maintainer" -> "platform_maintainer"
    when: (none) -> "steps.tag.status == \"succeeded\""
    condition: (none) -> "known after run"
    with.parameters.DRY: true -> (none)
    with.parameters.STAGING_BUILD: (none) -> (known after run)
+ verify (kubernetes.verify) [platform_maintainer] added at 5
    role: "platform_maintainer"
    with.namespace: "cdc"
    with.workloads: ["cdc-frontend"]
- announce (notify.email) [service_owner] removed, was 6
`
	if got := b.String(); got != want {
		t.Errorf("text diff:\n%s\nwant:\n%s", got, want)
	}
	if d.Counts["added"] != 1 || d.Counts["removed"] != 1 || d.Counts["changed"] != 1 || d.Counts["moved"] != 1 {
		t.Errorf("counts %v", d.Counts)
	}
}

func TestDiffMarkdown(t *testing.T) {
	base, head := plans()
	var b bytes.Buffer
	if err := review.Diff(base, head).WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	wantStart := "### runbook plan: CESSDA Data Catalogue\n\n" +
		"`playbooks/cdc.yaml` compared with `origin/main:playbooks/cdc.yaml`: **1 step added, 1 step removed, 1 step changed, 1 step moved**. Plan hash `aaaa` → `bbbb`.\n\n" +
		"| change | step | type | role | what changed |\n|---|---|---|---|---|\n" +
		"| ↕️ **moved** | `backup` | `jenkins.build` | platform\\_maintainer | order 1 → 3 |\n" +
		"| ✏️ **changed** | `deploy` | `jenkins.build` | platform\\_maintainer | `role`, `when`, `condition`, `with.parameters.DRY`, `with.parameters.STAGING_BUILD` |\n" +
		"| ➕ **added** | `verify` | `kubernetes.verify` | platform\\_maintainer | new step at 5 |\n" +
		"| ➖ **removed** | ~~`announce`~~ | `notify.email` | service\\_owner | was step 6 |\n\n" +
		"#### Release flow after this change\n\n"
	if !strings.HasPrefix(got, wantStart) {
		t.Errorf("markdown diff:\n%s\nwant it to start with:\n%s", got, wantStart)
	}
	for _, want := range []string{
		"  classDef added fill:#dafbe1,stroke:#1a7f37,stroke-width:3px\n  class s5 added\n",
		"  classDef changed fill:#ddf4ff,stroke:#0969da,stroke-width:3px\n  class s4 changed\n",
		"  class s3 moved\n",
		"  subgraph removed[\"Removed by this change\"]\n    r1[\"announce<br/>notify.email\"]\n  end\n",
		"<details><summary>Details of the changes</summary>\n\n" +
			"#### ✏️ **changed** `deploy`\n\n| field | before | after |\n|---|---|---|\n" +
			"| `role` | `\"technical_maintainer\"` | `\"platform_maintainer\"` |\n" +
			"| `when` | `(none)` | `\"steps.tag.status == \\\"succeeded\\\"\"` |\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("markdown diff lacks %q:\n%s", want, got)
		}
	}
	// The full plan follows, collapsed, without a second diagram.
	if !strings.Contains(got, "<details><summary>The full plan after this change</summary>\n\n### runbook plan: CESSDA Data Catalogue") ||
		!strings.HasSuffix(got, "</details>\n\n</details>\n") || strings.Count(got, "```mermaid") != 1 {
		t.Errorf("markdown lacks the collapsed full plan:\n%s", got)
	}
}

// TestPlanDiffMatchesGolden: what `runbook plan --base` shows a reviewer for a change to
// cvs.yaml that removes a step, changes one (its job and condition), adds a gate with a
// hostile name, and changes an input; in text and Markdown (testdata/plan-diff.txt and
// plan-diff.md; go test -update rewrites them).
func TestPlanDiffMatchesGolden(t *testing.T) {
	const file = "../../playbooks/cvs.yaml"
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	base, err := engine.Parse(file, src)
	if err != nil {
		t.Fatal(err)
	}
	changed := string(src)
	for _, r := range [][2]string{
		{"    when: inputs.backup_job != \"\"\n    with:\n      job: ${{ inputs.backup_job }}\n",
			"    with:\n      job: cessda.cvs.backup\n  - id: freeze\n    name: 'Freeze the <admin> page | tell \"users\"'\n    type: manual\n    phase: Preparing\n    with:\n      instruction: Freeze `editing` *now*\n"},
		{"  - id: backup_cronjob\n    name: Back up the database (from its CronJob)\n    type: kubernetes.backup_job\n    phase: Preparing\n    role: platform_maintainer\n    checklist: backups\n    when: inputs.backup_cronjob != \"\"\n    with:\n      connection: production\n      namespace: cvs\n      cronjob: ${{ inputs.backup_cronjob }}\n", ""},
	} {
		if !strings.Contains(changed, r[0]) {
			t.Fatalf("cvs.yaml changed: it lacks %q", r[0])
		}
		changed = strings.Replace(changed, r[0], r[1], 1)
	}
	head, err := engine.Parse(file, []byte(changed))
	if err != nil {
		t.Fatal(err)
	}
	plan := func(pb *engine.Playbook, version string) *engine.PlanDoc {
		in, err := pb.ResolveInputs(map[string]string{"version": version})
		if err != nil {
			t.Fatal(err)
		}
		doc, err := engine.BuildPlan(context.Background(), pb, in, engine.PlanOptions{Offline: true, Clock: engine.NewFakeClock(time.Date(2026, 9, 15, 11, 0, 0, 0, time.UTC))})
		if err != nil {
			t.Fatal(err)
		}
		return doc
	}
	bd, hd := plan(base, "3.6.2"), plan(head, "3.6.2")
	bd.Playbook, hd.Playbook = "origin/main:playbooks/cvs.yaml", "playbooks/cvs.yaml"
	d := review.Diff(bd, hd)
	if d.Counts["added"] != 1 || d.Counts["removed"] != 1 || d.Counts["changed"] != 1 {
		t.Errorf("counts %v", d.Counts)
	}
	update := flag.Lookup("update")
	for _, f := range []struct {
		name  string
		write func(*bytes.Buffer) error
	}{
		{"plan-diff.txt", func(b *bytes.Buffer) error { return d.WriteText(b) }},
		{"plan-diff.md", func(b *bytes.Buffer) error { return d.WriteMarkdown(b) }},
	} {
		var buf bytes.Buffer
		if err := f.write(&buf); err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", f.name)
		if update != nil && update.Value.String() == "true" {
			if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test ./engine/review -update)", err)
		}
		if !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("%s differs; if the change is intended run go test ./engine/review -update and review the diff:\n%s", golden, buf.String())
		}
	}
	var md bytes.Buffer
	d.WriteMarkdown(&md)
	for _, want := range []string{
		"| ➕ **added** | `freeze` Freeze the \\<admin\\> page \\| tell \"users\" | `manual` |",
		"| ➖ **removed** | ~~`backup_cronjob`~~ Back up the database (from its CronJob) | `kubernetes.backup_job` |",
		"| ✏️ **changed** | `backup` Back up the database (Jenkins job) | `jenkins.build` |",
		"s5{{\"5. Freeze the #lt;admin#gt; page #124; tell #quot;users#quot;<br/>freeze · manual\"}}",
		"  class s5 added\n",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("the Markdown diff lacks %q", want)
		}
	}
}

func TestDiffJSONAndNoChange(t *testing.T) {
	base, head := plans()
	var b bytes.Buffer
	if err := review.Diff(base, head).WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Steps []struct {
			Kind   string `json:"kind"`
			ID     string `json:"id"`
			Fields []struct {
				Field  string `json:"field"`
				Old    any    `json:"old"`
				New    any    `json:"new"`
				HasOld bool   `json:"has_old"`
			} `json:"fields"`
		} `json:"steps"`
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Steps) != 4 || doc.Steps[1].ID != "deploy" || doc.Steps[1].Fields[0].Field != "role" || doc.Steps[1].Fields[0].New != "platform_maintainer" {
		t.Errorf("json diff: %s", b.String())
	}

	same := review.Diff(base, base)
	if !same.Empty() {
		t.Errorf("a plan differs from itself: %+v", same.Steps)
	}
	b.Reset()
	same.WriteText(&b)
	if !strings.Contains(b.String(), "Summary: no change to the release plan.") {
		t.Errorf("no-change text: %s", b.String())
	}
}

func TestDiffNewPlaybookAndInputs(t *testing.T) {
	_, head := plans()
	d := review.Diff(nil, head)
	if d.Counts["added"] != len(head.Steps) || len(d.Steps) != len(head.Steps) {
		t.Errorf("new playbook: %v", d.Counts)
	}
	base, head := plans()
	head.Inputs = map[string]any{"version": "3.6.1", "skip_backup": false}
	base.Inputs = map[string]any{"version": "3.6.0"}
	var b bytes.Buffer
	review.Diff(base, head).WriteText(&b)
	for _, want := range []string{"Inputs:\n  ~ skip_backup: (none) -> false\n  ~ version: \"3.6.0\" -> \"3.6.1\"\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
}

// A step moved far down is the one reported as moved, not every step it passed.
func TestDiffMoveIsMinimal(t *testing.T) {
	mk := func(ids ...string) *engine.PlanDoc {
		d := &engine.PlanDoc{Product: "x", Playbook: "p"}
		for _, id := range ids {
			d.Steps = append(d.Steps, step(id, "shell", "", nil))
		}
		return d
	}
	d := review.Diff(mk("a", "b", "c", "d", "e"), mk("b", "c", "d", "a", "e"))
	if len(d.Steps) != 1 || d.Steps[0].ID != "a" || d.Steps[0].Kind != review.Moved || d.Steps[0].OldPos != 1 || d.Steps[0].NewPos != 4 {
		t.Errorf("moves: %+v", d.Steps)
	}
	// Inserting a step moves nothing.
	d = review.Diff(mk("a", "b", "c"), mk("a", "x", "b", "c"))
	if len(d.Steps) != 1 || d.Steps[0].Kind != review.Added {
		t.Errorf("insert: %+v", d.Steps)
	}
}
