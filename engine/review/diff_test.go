package review_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/engine/review"
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
		"| ↕️ moved | `backup` | `jenkins.build` | platform\\_maintainer | order 1 → 3 |\n" +
		"| ✏️ changed | `deploy` | `jenkins.build` | platform\\_maintainer | `role`, `when`, `condition`, `with.parameters.DRY`, `with.parameters.STAGING_BUILD` |\n" +
		"| ➕ added | `verify` | `kubernetes.verify` | platform\\_maintainer | new step at 5 |\n" +
		"| ➖ removed | `announce` | `notify.email` | service\\_owner | was step 6 |\n\n" +
		"<details><summary>Details of the changes</summary>\n\n" +
		"#### ✏️ changed `deploy`\n\n| field | before | after |\n|---|---|---|\n" +
		"| `role` | `\"technical_maintainer\"` | `\"platform_maintainer\"` |\n" +
		"| `when` | `(none)` | `\"steps.tag.status == \\\"succeeded\\\"\"` |\n"
	if !strings.HasPrefix(got, wantStart) {
		t.Errorf("markdown diff:\n%s\nwant it to start with:\n%s", got, wantStart)
	}
	// The full plan follows, collapsed.
	if !strings.Contains(got, "<details><summary>The full plan after this change</summary>\n\n### runbook plan: CESSDA Data Catalogue") ||
		!strings.HasSuffix(got, "</details>\n\n</details>\n") {
		t.Errorf("markdown lacks the collapsed full plan:\n%s", got)
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
