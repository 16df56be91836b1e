package engine_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
)

// planProbe is a step type whose Plan says what the test asks: an error, a "would fail
// now" detail, or a connection error (as a missing token gives).
type planProbe struct {
	Say  string `json:"say" desc:"fail, would_fail, connection or ok" default:"ok"`
	Need string `json:"need" desc:"a required parameter" required:"true"`
}

func (s *planProbe) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	switch s.Say {
	case "fail":
		return engine.Plan{}, fmt.Errorf("the deployment does not run 3.7.0 yet\nsecond line")
	case "would_fail":
		return engine.Plan{Action: "verify the deployment", NoChange: true, Details: []string{"deployment web: now 3.6.0", "  would fail now: it runs 3.6.0"}}, nil
	case "connection":
		return engine.Plan{}, fmt.Errorf("probe: connection %q (probe): environment variable PROBE_TOKEN is not set: %w", "probe", engine.ErrNoSecret)
	}
	return engine.Plan{Action: "probe " + sc.Show("need", s.Need)}, nil
}

func (s *planProbe) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	return engine.Outputs{}, nil
}

func init() {
	engine.Register(engine.StepType{Name: "test.plan_probe", Summary: "Probe the planner (a test step; not for playbooks)", New: func() engine.Step { return &planProbe{} }})
}

func buildPlan(t *testing.T, src string, offline bool) *engine.PlanDoc {
	t.Helper()
	pb, err := engine.Parse("plan.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	in, err := pb.ResolveInputs(map[string]string{"version": "1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := engine.BuildPlan(context.Background(), pb, in, engine.PlanOptions{Offline: offline, Clock: engine.NewFakeClock(time.Unix(0, 0))})
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func texts(t *testing.T, doc *engine.PlanDoc) (string, string) {
	t.Helper()
	var text, md strings.Builder
	if err := doc.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if err := doc.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	return text.String(), md.String()
}

func items(n int) string {
	var parts []string
	for i := 1; i <= n; i++ {
		parts = append(parts, fmt.Sprintf("{name: c%02d, repo: org/c%02d}", i, i))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

var offlinePlaybook = `runbook: v1
product: demo
title: Demo | "service"
inputs:
  version: {type: string, required: true}
vars:
  components: ` + items(25) + `
steps:
  - id: open
    name: Open the *release* issue
    type: test.echo
    with: {message: "release ${{ inputs.version }}", count: 2}
  - id: each
    name: Tag every component
    type: test.echo
    phase: Performing
    foreach: ${{ vars.components }}
    with: {message: "${{ item.repo }}", labels: ["${{ inputs.version }}"], extra: {issue: "${{ steps.open.outputs.text }}"}}
  - id: later
    type: test.echo
    with: {message: "${{ steps.open.outputs.text }} and ${{ steps.each.outputs.text }}", token: hunter2}
`

// TestPlanOfflineDescribesEverySteps: offline, every step has its name, its action in
// words (from its type's summary and key parameters), its parameters with the values
// known only at run time saying which steps they come from, and every foreach item.
func TestPlanOfflineDescribesEveryStep(t *testing.T) {
	doc := buildPlan(t, offlinePlaybook, true)
	if !doc.Offline {
		t.Error("the plan does not say it is offline")
	}
	for _, s := range doc.Steps {
		if s.Action == "" || s.Error != "" {
			t.Errorf("step %s: action %q, error %q", s.ID, s.Action, s.Error)
		}
	}
	if got := doc.Steps[0].Action; got != "echo a message: message release 1.2.3, count 2" {
		t.Errorf("open's action: %q", got)
	}
	each := doc.Steps[1]
	if len(each.Items) != 25 || each.Items[24] != "org/c25" || each.Phase != "Performing" {
		t.Errorf("each: items %v, phase %q", each.Items, each.Phase)
	}
	if got := strings.Join(doc.Steps[2].KnownAfter["message"], ","); got != "steps.open,steps.each" {
		t.Errorf("later's message known after %q", got)
	}
	text, md := texts(t, doc)
	for _, want := range []string{
		"Offline plan: no service was asked",
		"+  1. open: Open the *release* issue (test.echo)\n       echo a message: message release 1.2.3, count 2\n       with:\n         count: 2\n         message: release 1.2.3\n",
		"Performing:\n+  2. each: Tag every component (test.echo)\n",
		"       echo a message: labels [1.2.3], extra.issue (known after run: steps.open)", // not shown: extra is nested
		"       for each of 25 items:\n         - org/c01: message org/c01\n",
		"         - org/c20: message org/c20\n         - … and 5 more (every item is in the JSON plan)\n",
		"message: (known after run: steps.open, steps.each)",
		"token: ***",
	} {
		if want == "       echo a message: labels [1.2.3], extra.issue (known after run: steps.open)" {
			if !strings.Contains(text, "       echo a message: labels [1.2.3] (for each of 25 items)\n") {
				t.Errorf("the foreach step's action does not show its shared key parameters:\n%s", text)
			}
			continue
		}
		if !strings.Contains(text, want) {
			t.Errorf("text plan lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "hunter2") || strings.Contains(md, "hunter2") {
		t.Error("a secret parameter is in the plan")
	}
	if strings.Contains(text, "org/c21:") {
		t.Error("the text plan lists more than 20 items")
	}
	for _, want := range []string{
		"### runbook plan: Demo \\| \"service\"",
		"> Offline plan: no service was asked",
		"| 1 | `open` Open the \\*release\\* issue | `test.echo` |",
		"for each of 25 items: org/c01, org/c02,",
		"org/c20 and 5 more |",
		"#### 2. `each`\n\n- for each of 25 items:\n  - org/c01: message org/c01\n",
		"\"message\": \"(known after run: steps.open, steps.each)\"",
		"```mermaid\nflowchart TD\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown plan lacks %q:\n%s", want, md)
		}
	}
	// The JSON plan keeps the value the rehearsal reads.
	if got := doc.Steps[2].Params["message"]; got != engine.KnownAfterRun {
		t.Errorf("JSON param %v", got)
	}
}

// TestPlanOfflineParameterErrors: a parameter error is found offline too, and counted.
func TestPlanOfflineParameterErrors(t *testing.T) {
	doc := buildPlan(t, `runbook: v1
product: demo
inputs:
  version: {type: string, required: true}
steps:
  - id: bad
    type: test.echo
    with: {message: hi, count: "${{ int(inputs.version) }}"}
`, true)
	if len(doc.Errors()) != 1 || !strings.Contains(doc.Steps[0].Error, "int(inputs.version)") {
		t.Fatalf("errors: %+v", doc.Steps[0])
	}
	text, _ := texts(t, doc)
	if !strings.Contains(text, "1 errors.") {
		t.Errorf("the error is not counted:\n%s", text)
	}
}

const dependsPlaybook = `runbook: v1
product: demo
inputs:
  version: {type: string, required: true}
steps:
  - id: too_early
    type: test.plan_probe
    with: {say: fail, need: x}
  - id: approve
    type: test.gate
  - id: after_gate
    type: test.plan_probe
    with: {say: fail, need: x}
  - id: skipped_deploy
    type: test.echo
    when: inputs.version == "0"
    with: {message: never}
  - id: deploy
    type: test.echo
    with: {message: deploy}
  - id: verify
    type: test.plan_probe
    with: {say: fail, need: x}
  - id: verify_detail
    type: test.plan_probe
    with: {say: would_fail, need: x}
  - id: no_token
    type: test.plan_probe
    with: {say: connection, need: x}
  - id: bad_params
    type: test.echo
    with: {message: hi, count: "${{ int(inputs.version) }}"}
`

// TestPlanDependsOnEarlierStep: a step whose plan fails after a step that changes the
// world says "depends on <that step>" and is not an error; before any such step (a gate
// does not count, nor a skipped step), and for its connection or its parameters, it
// stays an error.
func TestPlanDependsOnEarlierStep(t *testing.T) {
	doc := buildPlan(t, dependsPlaybook, false)
	by := map[string]*engine.PlannedStep{}
	for _, s := range doc.Steps {
		by[s.ID] = s
	}
	for _, c := range []struct{ id, dependsOn, err string }{
		{"too_early", "", "does not run 3.7.0"},
		{"after_gate", "", "does not run 3.7.0"},
		{"verify", "deploy", ""},
		{"verify_detail", "deploy", ""},
		{"no_token", "", "PROBE_TOKEN"},
		{"bad_params", "", "int(inputs.version)"},
	} {
		s := by[c.id]
		if s.DependsOn != c.dependsOn || (c.err == "") != (s.Error == "") || !strings.Contains(s.Error, c.err) {
			t.Errorf("%s: depends on %q, error %q; want %q, %q", c.id, s.DependsOn, s.Error, c.dependsOn, c.err)
		}
	}
	if got := by["verify"].Action; got != "depends on deploy: the deployment does not run 3.7.0 yet" {
		t.Errorf("verify's action: %q", got)
	}
	text, md := texts(t, doc)
	for _, want := range []string{
		"?  6. verify (test.plan_probe)\n       depends on deploy: the deployment does not run 3.7.0 yet\n",
		"?  7. verify_detail (test.plan_probe)\n       verify the deployment\n         deployment web: now 3.6.0\n           depends on deploy: it runs 3.6.0\n",
		"9 steps: 2 will run, 1 skipped, 2 depend on earlier results, 0 unchanged, 4 errors.",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text plan lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "would fail now") || strings.Contains(md, "would fail now") {
		t.Errorf("the plan says would fail now:\n%s", text)
	}
}

// TestPlanMermaid: the diagram has every step as a node with an id Mermaid accepts, gates
// as hexagons, groups by phase, the rollback branch to the on_failure group, and escaped
// labels.
func TestPlanMermaid(t *testing.T) {
	doc := buildPlan(t, strings.ReplaceAll(`runbook: v1
product: demo
inputs:
  version: {type: string, required: true}
steps:
  - id: end
    name: 'Open "the" <issue> #1 | BTxBT'
    type: test.echo
    phase: Preparing
    with: {message: hi}
  - id: approval
    type: test.gate
    phase: Preparing
  - id: deploy
    type: test.echo
    phase: Performing
    on_error: rollback
    with: {message: deploy}
  - id: never
    type: test.echo
    when: inputs.version == "0"
    with: {message: never}
on_failure:
  - id: undo
    type: test.echo
    phase: Reverting
    with: {message: undo}
  - id: tell
    type: test.echo
    with: {message: tell}
finally:
  - id: tidy
    type: test.echo
    with: {message: tidy}
`, "BT", "`"), true)
	var b strings.Builder
	if err := doc.WriteMermaid(&b, engine.DiagramOptions{Marks: map[string]string{"deploy": "changed"}, Removed: []*engine.PlannedStep{{ID: "old", Type: "test.echo"}}}); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	want := "```mermaid\nflowchart TD\n" +
		"  subgraph g1[\"Preparing\"]\n" +
		"    s1[\"1. Open #quot;the#quot; #lt;issue#gt; #35;1 #124; #96;x#96;<br/>end · test.echo\"]\n" +
		"    s2{{\"2. approval<br/>test.gate\"}}\n" +
		"  end\n" +
		"  subgraph g2[\"Performing\"]\n" +
		"    s3[\"3. deploy<br/>test.echo\"]\n" +
		"  end\n" +
		"    s4[\"4. never<br/>test.echo<br/>(skipped: its condition is false)\"]\n" +
		"  subgraph g4[\"Reverting: if a step fails (on_failure)\"]\n" +
		"    s5[\"5. undo<br/>test.echo\"]\n" +
		"    s6[\"6. tell<br/>test.echo\"]\n" +
		"  end\n" +
		"  subgraph g5[\"Always, at the end (finally)\"]\n" +
		"    s7[\"7. tidy<br/>test.echo\"]\n" +
		"  end\n" +
		"  s1 --> s2\n  s2 --> s3\n  s3 --> s4\n  s5 --> s6\n  s4 --> s7\n" +
		"  s3 -.->|fails: roll back| g4\n" +
		"  subgraph removed[\"Removed by this change\"]\n    r1[\"old<br/>test.echo\"]\n  end\n" +
		"  classDef gate fill:#fff8c5,stroke:#9a6700\n  class s2 gate\n" +
		"  classDef skipped stroke-dasharray:4 4,color:#6e7781\n  class s4 skipped\n" +
		"  classDef changed fill:#ddf4ff,stroke:#0969da,stroke-width:3px\n  class s3 changed\n" +
		"  classDef removed fill:#ffebe9,stroke:#cf222e,stroke-dasharray:4 4\n  class r1 removed\n" +
		"```\n"
	if got != want {
		t.Errorf("diagram:\n%s\nwant:\n%s", got, want)
	}
	// Every node and subgraph id is a plain identifier.
	ids := regexp.MustCompile(`(?m)^\s+(?:subgraph )?([^\s\[{]+)[\[{]`)
	for _, m := range ids.FindAllStringSubmatch(got, -1) {
		if !regexp.MustCompile(`^[a-z][a-z0-9]*$`).MatchString(m[1]) {
			t.Errorf("node id %q", m[1])
		}
	}
}
