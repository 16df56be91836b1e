package review_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/engine/review"
)

// gitRepo makes a temporary git repository for a test.
type gitRepo struct {
	t   *testing.T
	dir string
}

func newGitRepo(t *testing.T) *gitRepo {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	g := &gitRepo{t: t, dir: t.TempDir()}
	g.git("init", "-q", "-b", "main")
	return g
}

func (g *gitRepo) git(args ...string) string {
	g.t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=Test", "-c", "user.email=test@example.org", "-c", "commit.gpgsign=false"}, args...)...)
	cmd.Dir = g.dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		g.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func (g *gitRepo) write(rel, content string) {
	g.t.Helper()
	p := filepath.Join(g.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		g.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		g.t.Fatal(err)
	}
}

func (g *gitRepo) commit(msg string) {
	g.git("add", "-A")
	g.git("commit", "-q", "-m", msg)
}

const fragmentV1 = `fragment: v1
params:
  who: {type: string, required: true}
steps:
  - id: announce
    type: reviewtest.make
    with: {title: "Announce to ${{ params.who }}", url: "https://example.org/a"}
`

const playbookV1 = `runbook: v1
product: cdc
inputs:
  version: {type: string, default: 1.0.0}
steps:
  - id: tag
    type: reviewtest.make
    with: {title: "Tag ${{ inputs.version }}", url: "https://example.org/t"}
  - include: ../fragments/announce.yaml
    with: {who: users}
`

// TestLoadAtRefFollowsFragments: a change in a fragment shows in the diff of the
// playbook that includes it, because the fragment is read at the ref too.
func TestLoadAtRefFollowsFragments(t *testing.T) {
	g := newGitRepo(t)
	g.write("playbooks/cdc.yaml", playbookV1)
	g.write("fragments/announce.yaml", fragmentV1)
	g.commit("first")
	// The change: the fragment's link, and a new step in the playbook (not committed:
	// a working tree compared with HEAD, as a developer does before pushing).
	g.write("fragments/announce.yaml", strings.Replace(fragmentV1, "https://example.org/a", "https://example.org/b", 1))
	g.write("playbooks/cdc.yaml", playbookV1+`  - id: verify
    type: reviewtest.make
    with: {title: Verify, url: "https://example.org/v"}
`)
	file := filepath.Join(g.dir, "playbooks/cdc.yaml")
	ctx := context.Background()
	base, label, err := review.LoadAtRef(ctx, file, "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	if label != "HEAD:playbooks/cdc.yaml" || base.File != "playbooks/cdc.yaml" {
		t.Errorf("label %q, file %q", label, base.File)
	}
	head, err := engine.LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]any{"version": "1.0.0"}
	bd, err := engine.BuildPlan(ctx, base, in, engine.PlanOptions{Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	hd, err := engine.BuildPlan(ctx, head, in, engine.PlanOptions{Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	bd.Playbook, hd.Playbook = label, "playbooks/cdc.yaml"
	var b bytes.Buffer
	review.Diff(bd, hd).WriteText(&b)
	if !strings.Contains(b.String(), `~ announce (reviewtest.make) changed at 2
    with.url: "https://example.org/a" -> "https://example.org/b"
+ verify (reviewtest.make) added at 3
`) {
		t.Errorf("diff:\n%s", b.String())
	}
}

func TestLoadAtRefMissingAndBad(t *testing.T) {
	g := newGitRepo(t)
	g.write("README", "x")
	g.commit("first")
	g.write("playbooks/new.yaml", playbookV1)
	g.write("fragments/announce.yaml", fragmentV1)
	ctx := context.Background()
	file := filepath.Join(g.dir, "playbooks/new.yaml")
	if _, _, err := review.LoadAtRef(ctx, file, "HEAD"); !errors.Is(err, review.ErrNotAtRef) {
		t.Errorf("new playbook: %v", err)
	}
	if _, _, err := review.LoadAtRef(ctx, file, "no-such-branch"); err == nil || !strings.Contains(err.Error(), "no such commit") {
		t.Errorf("unknown ref: %v", err)
	}
	if _, _, err := review.LoadAtRef(ctx, file, "--output=/tmp/x"); err == nil || !strings.Contains(err.Error(), "is not a git ref") {
		t.Errorf("option as ref: %v", err)
	}
	// A base whose fragment is missing at the ref says so, naming the ref, not a temp dir.
	g.write("playbooks/new.yaml", playbookV1)
	g.git("add", "playbooks/new.yaml")
	g.git("commit", "-q", "-m", "playbook without its fragment")
	_, _, err := review.LoadAtRef(ctx, file, "HEAD")
	if err == nil || !strings.Contains(err.Error(), "HEAD:playbooks/new.yaml:") || strings.Contains(err.Error(), os.TempDir()) {
		t.Errorf("missing fragment: %v", err)
	}
	if _, _, err := review.LoadAtRef(ctx, filepath.Join(t.TempDir(), "x.yaml"), "HEAD"); err == nil || !strings.Contains(err.Error(), "git repository") {
		t.Errorf("outside a repository: %v", err)
	}
}

// TestLoadAtRefReadsTheSite: a playbook's site file (site: FILE) is read at the ref too.
func TestLoadAtRefReadsTheSite(t *testing.T) {
	g := newGitRepo(t)
	g.write("playbooks/site.yaml", "site: v1\nroles:\n  platform_maintainer: [ops]\n")
	g.write("playbooks/cdc.yaml", strings.Replace(playbookV1, "product: cdc\n", "product: cdc\nsite: site.yaml\n", 1))
	g.write("fragments/announce.yaml", fragmentV1)
	g.commit("first")
	base, _, err := review.LoadAtRef(context.Background(), filepath.Join(g.dir, "playbooks/cdc.yaml"), "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	if got := base.Roles["platform_maintainer"]; len(got) != 1 || got[0] != "ops" {
		t.Errorf("roles at the ref: %v", base.Roles)
	}
}
