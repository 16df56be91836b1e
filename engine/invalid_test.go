package engine_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cessda/runbook/engine"
)

// header is a valid start that most bad playbooks below share.
const header = `runbook: v1
product: cdc
roles:
  service_owner: [owner-a]
inputs:
  version: {type: string, pattern: '\d+\.\d+\.\d+', required: true}
`

func yamlBomb() string {
	var b strings.Builder
	b.WriteString(header + "vars:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "  a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	b.WriteString("steps:\n  - id: a\n    type: test.echo\n    with: {message: hi}\n")
	return b.String()
}

func tenMB() string {
	var b strings.Builder
	b.WriteString(header + "steps:\n")
	for b.Len() < 10<<20 {
		fmt.Fprintf(&b, "  - id: s%d\n    type: test.echo\n    with: {message: hello}\n", b.Len())
	}
	return b.String()
}

// TestInvalidPlaybooks is the corpus of malformed playbooks: each must be refused before
// anything runs, with the exact place and message a person needs to fix it.
func TestInvalidPlaybooks(t *testing.T) {
	cases := []struct {
		name string
		src  string
		set  map[string]string
		want string // the first diagnostic, exactly
		n    int    // how many diagnostics (0: do not check)
	}{
		{"invalid yaml", header + "steps: [\n  - id: a\n", nil,
			`bad.yaml:8:3: invalid YAML: did not find expected node content`, 1},
		{"unclosed flow sequence", header + "steps:\n  - id: a\n    type: [unclosed\n", nil,
			`bad.yaml:9:5: invalid YAML: did not find expected ',' or ']'`, 1},
		{"bad indentation", header + "steps:\n  - id: a\n   type: test.echo\n", nil,
			`bad.yaml:8:3: invalid YAML: did not find expected '-' indicator`, 1},
		{"scanner error", header + "steps:\n  - id: a\n    type: @x\n", nil,
			`bad.yaml:9:5: invalid YAML: found character that cannot start any token`, 1},
		{"unknown on_error", header + "steps:\n  - id: a\n    type: test.echo\n    on_error: rollbak\n    with: {message: x}\n", nil,
			`bad.yaml:10:15: step a: on_error "rollbak" is not a policy (did you mean "rollback"?); use stop (stop, resumable, and ask a person), warn (record a warning and go on) or rollback (roll production back)`, 1},
		{"on_error rollback in on_failure", header + "steps:\n  - id: a\n    type: test.echo\n    with: {message: x}\non_failure:\n  - id: b\n    type: test.echo\n    on_error: rollback\n    with: {message: x}\n", nil,
			`bad.yaml:14:15: step b: on_error: rollback is for the main steps; a step of on_failure is already part of the ending (use stop or warn)`, 1},
		{"on_error and continue_on_error", header + "steps:\n  - id: a\n    type: test.echo\n    on_error: warn\n    continue_on_error: true\n    with: {message: x}\n", nil,
			`bad.yaml:11:24: step a: continue_on_error and on_error both given; keep on_error (continue_on_error: true is on_error: warn)`, 1},
		{"left_behind not a string", header + "steps:\n  - id: a\n    type: test.echo\n    left_behind: '${{ 1 + 2 }}'\n    with: {message: x}\n", nil,
			`bad.yaml:10:18: step a: left_behind gives int, not a string`, 1},
		{"template in a name", header + "steps:\n  - id: a\n    type: test.echo\n    name: Tag ${{ inputs.version }}\n    with: {message: x}\n", nil,
			`bad.yaml:10:11: step a: name is shown as written, in plans and reports before anything runs: ${{ }} is not rendered here; name the step in words and put values in its with:`, 1},
		{"tab indentation", header + "steps:\n  - id: a\n\t  type: test.echo\n", nil,
			`bad.yaml:9:1: a tab in indentation: YAML indents with spaces only`, 1},
		{"unknown top-level key", header + "stpes:\n  - id: a\n    type: test.echo\n", nil,
			`bad.yaml:7:1: unknown key "stpes" in the playbook (did you mean "steps"?); valid keys: runbook, product, title, description, site, roles, people, inputs, vars, connections, steps, on_failure, finally`, 0},
		{"unknown step key", header + "steps:\n  - id: a\n    type: test.echo\n    wiht: {message: hi}\n", nil,
			`bad.yaml:10:5: unknown key "wiht" in step (did you mean "with"?); valid keys: id, type, name, description, when, with, foreach, parallel, retry, timeout, on_error, continue_on_error, role, rollback, checklist, left_behind, phase`, 0},
		{"misspelt step type", header + "steps:\n  - id: a\n    type: test.ecko\n", nil,
			`bad.yaml:9:11: step a: unknown step type "test.ecko" (did you mean "test.echo"?); run ` + "`runbook steps`" + ` for the list`, 1},
		{"duplicate id", header + "steps:\n  - id: a\n    type: test.echo\n    with: {message: x}\n  - id: a\n    type: test.echo\n    with: {message: y}\n", nil,
			`bad.yaml:11:9: duplicate step id "a" (first at bad.yaml:8:9); ids must be unique`, 1},
		{"id not snake_case", header + "steps:\n  - id: TagRepos\n    type: test.echo\n    with: {message: x}\n", nil,
			`bad.yaml:8:9: step id "TagRepos" must be snake_case (lowercase letters, digits and single underscores, starting with a letter), e.g. "tag_repos"`, 1},
		{"missing required param", header + "steps:\n  - id: a\n    type: test.echo\n    with: {count: 2}\n", nil,
			`bad.yaml:10:11: step a (test.echo): missing required parameter "message" (text to echo)`, 1},
		{"wrong param type", header + "steps:\n  - id: a\n    type: test.echo\n    with: {message: x, count: many}\n", nil,
			`bad.yaml:10:31: step a (test.echo): parameter count must be a whole number (int), not string "many"`, 1},
		{"condition not boolean", header + "steps:\n  - id: a\n    type: test.echo\n    when: inputs.version\n    with: {message: x}\n", nil,
			`bad.yaml:10:11: step a: condition "inputs.version" must be true or false, but it gives string`, 1},
		{"expression syntax error", header + "steps:\n  - id: a\n    type: test.echo\n    with: {message: \"v ${{ inputs.version + }}\"}\n", nil,
			`bad.yaml:10:43: expression syntax error: unexpected token EOF`, 1},
		{"unknown step", header + "steps:\n  - id: a\n    type: test.echo\n    with: {message: \"${{ steps.tagg.outputs.text }}\"}\n", nil,
			`bad.yaml:10:26: expression "steps.tagg.outputs.text" refers to unknown step "tagg"`, 1},
		{"later step", header + "steps:\n  - id: a\n    type: test.echo\n    with: {message: \"${{ steps.b.outputs.text }}\"}\n  - id: b\n    type: test.echo\n    with: {message: x}\n", nil,
			`bad.yaml:10:26: expression "steps.b.outputs.text" refers to step "b", which runs later (steps:11); a step can only read steps before it`, 1},
		{"undeclared output", header + "steps:\n  - id: a\n    type: test.echo\n    with: {message: x}\n  - id: b\n    type: test.echo\n    with: {message: \"${{ steps.a.outputs.txt }}\"}\n", nil,
			`bad.yaml:13:26: step "a" (test.echo) has no output "txt" (did you mean "text"?); its outputs: text, length, labels`, 1},
		{"bad input pattern", "runbook: v1\nproduct: cdc\ninputs:\n  version: {type: string, pattern: '[0-'}\nsteps:\n  - id: a\n    type: test.echo\n    with: {message: x}\n", nil,
			`bad.yaml:4:36: input version: bad pattern "[0-": missing closing ]: ` + "`[0-`", 1},
		{"--set unknown input", header + "steps:\n  - id: a\n    type: test.echo\n    with: {message: x}\n", map[string]string{"version": "1.2.3", "verison": "1.2.4"},
			`bad.yaml:1:1: --set verison=1.2.4: the playbook has no input "verison" (did you mean "version"?); its inputs: version`, 1},
		{"--set fails the pattern", header + "steps:\n  - id: a\n    type: test.echo\n    with: {message: x}\n", map[string]string{"version": "1.2"},
			`bad.yaml:6:3: --set version=1.2: input version "1.2" does not match the pattern \d+\.\d+\.\d+`, 1},
		{"required input missing", header + "steps:\n  - id: a\n    type: test.echo\n    with: {message: x}\n", map[string]string{},
			`bad.yaml:6:3: input version is required: give it with --set version=VALUE ()`, 1},
		{"empty steps", header + "steps: []\n", nil,
			`bad.yaml:7:1: steps is empty: a playbook needs at least one step`, 1},
		{"yaml bomb", yamlBomb(), nil,
			`bad.yaml:8:39: the document expands to more than 200000 values (an alias bomb?); write it without aliases`, 1},
		{"10 MB file", tenMB(), nil,
			`bad.yaml:1:1: the file is larger than 2 MiB, the most a playbook may be; split it into fragments`, 1},
		{"binary garbage", "\x7fELF\x02\x01\x01\x00\x00\x00garbage\xff\xfe", nil,
			`bad.yaml:1:8: this is not a text file: a playbook is YAML in UTF-8`, 1},
		{"unknown role", header + "steps:\n  - id: a\n    type: test.echo\n    role: service_ownr\n    with: {message: x}\n", nil,
			`bad.yaml:10:11: step a: unknown role "service_ownr" (did you mean "service_owner"?); declare it under roles`, 1},
		{"literal token in connection", header + "connections:\n  svc: {type: testsvc, token: ghp_secret}\nsteps:\n  - id: a\n    type: test.echo\n    with: {message: x}\n", nil,
			`bad.yaml:8:31: connection svc: token must name where the secret is ({env: NAME} or {file: PATH}); secrets are never written in playbooks`, 1},
		{"missing runbook version", "product: cdc\nsteps:\n  - id: a\n    type: test.echo\n    with: {message: x}\n", nil,
			`bad.yaml:1:1: missing key "runbook: v1" (the playbook format version)`, 1},
		{"unknown name in expression", header + "steps:\n  - id: a\n    type: test.echo\n    with: {message: \"${{ input.version }}\"}\n", nil,
			`bad.yaml:10:26: unknown name "input" in expression "input.version" (did you mean "inputs"?); expressions can read inputs, playbook, roles, run, steps, vars`, 1},
		{"expression of the wrong type", header + "steps:\n  - id: a\n    type: test.echo\n    with: {message: x, count: \"${{ inputs.version }}\"}\n", nil,
			`bad.yaml:10:31: step a (test.echo): parameter count must be a whole number (int), but the expression "inputs.version" gives string`, 1},
		{"bad duration", header + "steps:\n  - id: a\n    type: test.echo\n    timeout: 5 minutes\n    with: {message: x}\n", nil,
			`bad.yaml:10:14: timeout: "5 minutes" is not a duration (write e.g. "90s", "15m", "168h" or "7d")`, 1},
		{"unknown parameter", header + "steps:\n  - id: a\n    type: test.echo\n    with: {mesage: x}\n", nil,
			`bad.yaml:10:12: step a (test.echo): unknown parameter "mesage" (did you mean "message"?); parameters: message, count, labels, extra, token, mode, wait`, 1},
		{"enum violation", header + "steps:\n  - id: a\n    type: test.echo\n    with: {message: x, mode: medium}\n", nil,
			`bad.yaml:10:30: step a (test.echo): parameter mode must be one of fast, slow, not "medium"`, 1},
		{"second document", header + "steps:\n  - id: a\n    type: test.echo\n    with: {message: x}\n---\nmore: 1\n", nil,
			`bad.yaml:11:1: a second YAML document: a playbook file holds one document (remove the ---)`, 1},
		{"foreach not a list", header + "steps:\n  - id: a\n    type: test.echo\n    foreach: \"${{ inputs.version }}\"\n    with: {message: x}\n", nil,
			`bad.yaml:10:14: step a: foreach must be a list or an expression giving one, not string`, 1},
		{"condition on unknown output", header + "steps:\n  - id: a\n    type: test.echo\n    with: {message: x}\n  - id: b\n    type: test.echo\n    when: steps.a.outputs.size > 2\n    with: {message: x}\n", nil,
			`bad.yaml:13:11: step "a" (test.echo) has no output "size"; its outputs: text, length, labels`, 1},
		{"empty file", "", nil,
			`bad.yaml:1:1: the file is empty: a playbook needs at least runbook, product and steps`, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pb, err := engine.Parse("bad.yaml", []byte(c.src))
			if err == nil && c.set != nil {
				_, err = pb.ResolveInputs(c.set)
			}
			var inv *engine.InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("want an *engine.InvalidError, got %v", err)
			}
			ds := inv.Diagnostics()
			if got := ds[0].Error(); got != c.want {
				t.Errorf("first diagnostic\n got: %s\nwant: %s", got, c.want)
			}
			if c.n > 0 && len(ds) != c.n {
				t.Errorf("want %d diagnostics, got %d:\n%s", c.n, len(ds), inv.Error())
			}
		})
	}
}

// TestAllErrorsAtOnce: one run reports every problem in the file, in file order.
func TestAllErrorsAtOnce(t *testing.T) {
	src := header + `steps:
  - id: a
    type: test.ecko
  - id: B
    type: test.echo
    with: {message: x, count: nope}
  - id: c
    type: test.echo
    when: steps.zz.status == "succeeded"
    with: {message: x}
`
	_, err := engine.Parse("multi.yaml", []byte(src))
	var inv *engine.InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("want InvalidError, got %v", err)
	}
	var lines []string
	for _, d := range inv.Diagnostics() {
		lines = append(lines, fmt.Sprintf("%d:%d", d.Pos.Line, d.Pos.Col))
	}
	if got, want := strings.Join(lines, " "), "9:11 10:9 12:31 15:11"; got != want {
		t.Errorf("positions %s, want %s\n%s", got, want, inv.Error())
	}
}

func TestValidPlaybookHasNoDiagnostics(t *testing.T) {
	if _, err := engine.Parse("ok.yaml", []byte(smokePlaybook)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains([]byte(smokePlaybook), []byte("runbook: v1")) {
		t.Fatal("fixture changed")
	}
}
