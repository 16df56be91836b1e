package engine_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cessda/runbook/engine"
)

const siteYAML = `site: v1
roles:
  platform_maintainer: [joe]
people:
  joe: {name: Joe, email: joe@example.org}
connections:
  github: {type: testsvc, token: {env: GITHUB_TOKEN}}
  chat: {type: testsvc}
`

// writeFiles writes name -> content under a temporary directory and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// diagnostics returns err's diagnostics as file:line:col: message, relative to dir.
func diagnostics(t *testing.T, err error, dir string) []string {
	t.Helper()
	var inv *engine.InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("want InvalidError, got %v", err)
	}
	var out []string
	for _, d := range inv.Diagnostics() {
		out = append(out, strings.TrimPrefix(d.Error(), dir+"/"))
	}
	return out
}

// TestSiteSharedAndAddedTo: a playbook naming a site file has its connections, people and
// roles, and adds its own role, person and connection to them.
func TestSiteSharedAndAddedTo(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"site.yaml": siteYAML,
		"pb.yaml": `runbook: v1
product: demo
site: site.yaml
roles:
  service_owner: [ann]
people:
  ann: {name: Ann, email: ann@example.org}
connections:
  public: {type: testsvc, url: "https://example.org/"}
steps:
  - {id: ask, type: test.echo, role: platform_maintainer, with: {message: "${{ roles.service_owner[0] }}"}}
  - {id: check, type: test.echo, role: service_owner, with: {message: b}}
`})
	pb, err := engine.LoadFile(filepath.Join(dir, "pb.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(pb.RoleOrder, ","); got != "platform_maintainer,service_owner" {
		t.Errorf("roles %s", got)
	}
	if pb.Roles["platform_maintainer"][0] != "joe" || pb.People["joe"].Email != "joe@example.org" || pb.People["ann"].Name != "Ann" {
		t.Errorf("roles %v, people %v", pb.Roles, pb.People)
	}
	var conns []string
	for _, c := range pb.Connections {
		conns = append(conns, c.Name+"@"+filepath.Base(c.Pos.File))
	}
	if got := strings.Join(conns, ","); got != "github@site.yaml,chat@site.yaml,public@pb.yaml" {
		t.Errorf("connections %s", got)
	}
}

// TestSiteRedefinedIsAnError: a playbook that redefines a site entry is refused at its
// own key, naming where the site defines it, unless site.override names the entry; an
// override of nothing, or of what the playbook does not redefine, is refused too.
func TestSiteRedefinedIsAnError(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"site.yaml": siteYAML,
		"pb.yaml": `runbook: v1
product: demo
site: site.yaml
roles:
  platform_maintainer: [someone_else]
people:
  joe: {name: Joe Again}
connections:
  chat: {type: testsvc}
steps:
  - {id: wait, type: test.echo, with: {message: x}}
`,
		"override.yaml": `runbook: v1
product: demo
site: {file: site.yaml, override: [roles.platform_maintainer, connections.chta, people.joe]}
roles:
  platform_maintainer: [someone_else]
steps:
  - {id: wait, type: test.echo, with: {message: x}}
`})
	_, err := engine.LoadFile(filepath.Join(dir, "pb.yaml"))
	got := diagnostics(t, err, dir)
	want := []string{
		`pb.yaml:5:3: role platform_maintainer is already defined by the site file (` + dir + `/site.yaml:3:3): a playbook adds to the site's roles but does not redefine them; remove it here, or, if this product really differs, say so with site: {file: ..., override: [roles.platform_maintainer]}`,
		`pb.yaml:7:3: people joe is already defined by the site file (` + dir + `/site.yaml:5:3): a playbook adds to the site's people but does not redefine them; remove it here, or, if this product really differs, say so with site: {file: ..., override: [people.joe]}`,
		`pb.yaml:9:3: connection chat is already defined by the site file (` + dir + `/site.yaml:8:3): a playbook adds to the site's connections but does not redefine them; remove it here, or, if this product really differs, say so with site: {file: ..., override: [connections.chat]}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diagnostics\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}

	_, err = engine.LoadFile(filepath.Join(dir, "override.yaml"))
	got = diagnostics(t, err, dir)
	want = []string{
		`override.yaml:3:63: site.override: "connections.chta" is not an entry of the site file (did you mean "connections.chat"?); write roles.NAME, people.LOGIN or connections.NAME`,
		`override.yaml:3:81: site.override: this playbook does not redefine people.joe; remove it from override`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diagnostics\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}

	// With the override alone, the product's platform maintainer replaces the site's.
	os.WriteFile(filepath.Join(dir, "override.yaml"), []byte("runbook: v1\nproduct: demo\nsite: {file: site.yaml, override: [roles.platform_maintainer]}\nroles:\n  platform_maintainer: [someone_else]\nsteps:\n  - {id: wait, type: test.echo, with: {message: x}}\n"), 0o644)
	pb, err := engine.LoadFile(filepath.Join(dir, "override.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := pb.Roles["platform_maintainer"]; len(got) != 1 || got[0] != "someone_else" || len(pb.RoleOrder) != 1 {
		t.Errorf("platform_maintainer %v, roles %v", got, pb.RoleOrder)
	}
}

// TestSiteErrorsPointIntoTheSite: a mistake in the site file is reported in it; a missing
// site file at the playbook's site: value; a site file is not a playbook.
func TestSiteErrorsPointIntoTheSite(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"site.yaml": "site: v1\nconnections:\n  github: {type: testsvcc}\npeople:\n  joe: {email: not-an-address}\n",
		"pb.yaml":   "runbook: v1\nproduct: demo\nsite: site.yaml\nsteps:\n  - {id: wait, type: test.echo, with: {message: x}}\n",
		"pb2.yaml":  "runbook: v1\nproduct: demo\nsite: nowhere.yaml\nsteps:\n  - {id: wait, type: test.echo, with: {message: x}}\n",
	})
	_, err := engine.LoadFile(filepath.Join(dir, "pb.yaml"))
	got := diagnostics(t, err, dir)
	if len(got) != 2 || !strings.HasPrefix(got[0], "site.yaml:3:18: connection github: unknown type \"testsvcc\" (did you mean \"testsvc\"?)") || !strings.HasPrefix(got[1], `site.yaml:5:16: email "not-an-address"`) {
		t.Errorf("diagnostics %q", got)
	}
	_, err = engine.LoadFile(filepath.Join(dir, "pb2.yaml"))
	if got := diagnostics(t, err, dir); len(got) != 1 || got[0] != "pb2.yaml:3:7: site nowhere.yaml: no such file or directory" {
		t.Errorf("diagnostics %q", got)
	}
	_, err = engine.LoadFile(filepath.Join(dir, "site.yaml"))
	if got := diagnostics(t, err, dir); len(got) != 1 || !strings.Contains(got[0], "site.yaml:1:1: this is a site file (site: v1), not a playbook") {
		t.Errorf("diagnostics %q", got)
	}
}

// TestFragmentAlone: a fragment validated by itself is checked against its params and
// what it declares it needs: no false errors, and a real mistake at its file:line:col.
func TestFragmentAlone(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"good.yaml": `fragment: v1
params:
  who: {type: string, required: true}
  times: {type: int, default: 2}
needs:
  inputs: {version: string}
  vars: {components: list}
  steps:
    first: test.echo
    many: {type: test.echo, foreach: true}
  roles: [service_owner]
steps:
  - id: notice
    type: test.echo
    role: service_owner
    foreach: ${{ vars.components }}
    with:
      message: "${{ params.who }} ${{ inputs.version }} ${{ steps.first.outputs.text }} ${{ item }}"
      count: ${{ params.times }}
  - id: after
    type: test.echo
    with: {message: "${{ join(steps.many.outputs.text, \",\") }} ${{ steps.notice.status }}"}
`,
		"bad.yaml": `fragment: v1
params:
  who: {type: string, required: true}
needs:
  inputs: {version: string}
  steps: {first: test.echo}
  roles: [service_owner]
steps:
  - id: notice
    type: test.echo
    role: servce_owner
    with:
      message: "${{ params.whom }} ${{ inputs.versoin }}"
      count: ${{ params.who }}
  - id: after
    type: test.echo
    with: {message: "${{ steps.frist.outputs.text }} ${{ steps.first.outputs.txt }}"}
`,
	})
	c, err := engine.ValidateFile(filepath.Join(dir, "good.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Kind != "fragment" || len(c.Fragment.Steps) != 2 || len(c.Notes) != 1 || !strings.Contains(c.Notes[0].Msg, "needs.connections") {
		t.Errorf("checked %+v, notes %v", c, c.Notes)
	}
	_, err = engine.ValidateFile(filepath.Join(dir, "bad.yaml"))
	got := diagnostics(t, err, dir)
	want := []string{
		`bad.yaml:11:11: step notice: unknown role "servce_owner" (did you mean "service_owner"?); declare it under roles (a fragment declares the roles its steps name under needs.roles)`,
		`bad.yaml:13:28: expression "params.whom": unknown field whom`,
		`bad.yaml:13:47: expression "inputs.versoin": unknown field versoin; inputs and vars of the including playbook that the fragment reads are declared under needs.inputs and needs.vars (name: type)`,
		`bad.yaml:14:14: step notice (test.echo): parameter count must be a whole number (int), but the expression "params.who" gives string`,
		`bad.yaml:17:26: expression "steps.frist.outputs.text" refers to unknown step "frist" (did you mean "first"?); a step of the including playbook that the fragment reads is declared under needs.steps (id: step type)`,
		`bad.yaml:17:58: step "first" (test.echo) has no output "txt" (did you mean "text"?); its outputs: text, length, labels`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diagnostics\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
	// A fragment is not a playbook: plan and run refuse it.
	_, err = engine.LoadFile(filepath.Join(dir, "good.yaml"))
	if got := diagnostics(t, err, dir); len(got) != 1 || !strings.Contains(got[0], "this is a fragment file (fragment: v1), not a playbook") {
		t.Errorf("LoadFile of a fragment: %q", got)
	}
}

// TestFragmentNeedsCheckedWhereIncluded: a playbook including a fragment must provide
// what it needs, reported at the include.
func TestFragmentNeedsCheckedWhereIncluded(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"frag.yaml": `fragment: v1
needs:
  inputs: {version: string}
  vars: {components: list, window: map}
  steps: {first: test.echo, many: {type: test.echo, foreach: true}}
  roles: [service_owner]
  connections: {public: testsvc}
  failure: true
steps:
  - {id: notice, type: test.echo, with: {message: "${{ inputs.version }}"}}
`,
		"pb.yaml": `runbook: v1
product: demo
inputs:
  version: {type: int, default: 1}
vars:
  components: {a: 1}
steps:
  - {id: first, type: test.gate, with: {}}
  - {id: many, type: test.echo, with: {message: x}}
  - include: frag.yaml
`,
	})
	_, err := engine.LoadFile(filepath.Join(dir, "pb.yaml"))
	got := diagnostics(t, err, dir)
	want := []string{
		`pb.yaml:10:14: include frag.yaml: the fragment needs input version as string, but here it is int`,
		`pb.yaml:10:14: include frag.yaml: the fragment needs vars.components as list<any>, but here it is map`,
		`pb.yaml:10:14: include frag.yaml: the fragment needs vars.window (map), which this playbook does not define`,
		`pb.yaml:10:14: include frag.yaml: the fragment needs step first of type test.echo, but here it is a test.gate`,
		`pb.yaml:10:14: include frag.yaml: the fragment needs step many with foreach: true, but here it has foreach: false (its outputs are lists only with foreach)`,
		`pb.yaml:10:14: include frag.yaml: the fragment needs role service_owner, which this playbook (and its site file) does not declare`,
		`pb.yaml:10:14: include frag.yaml: the fragment needs connection public (testsvc), which this playbook (and its site file) does not declare`,
		`pb.yaml:10:14: include frag.yaml: the fragment's steps read failure (needs.failure): include it under on_failure or finally`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diagnostics\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
}
