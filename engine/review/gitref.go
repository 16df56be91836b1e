package review

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/cessda/runbook/engine"
)

// ErrNotAtRef is returned by LoadAtRef when the playbook does not exist at the ref: for a
// review, everything in it is then added.
var ErrNotAtRef = errors.New("the playbook does not exist at that ref")

// LoadAtRef loads the playbook file as it is at a git ref, with every fragment it
// includes (at the same ref). It reads each file with `git show REF:path` — only the
// files the playbook needs, without a worktree or checkout — into a temporary
// directory laid out as the repository, loads it there, and removes the directory.
// label names the result for people: "REF:path/in/repo.yaml".
func LoadAtRef(ctx context.Context, file, ref string) (pb *engine.Playbook, label string, err error) {
	if ref == "" || strings.HasPrefix(ref, "-") || strings.ContainsAny(ref, "\x00\n") {
		return nil, "", fmt.Errorf("--base %q is not a git ref", ref)
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, "", err
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	out, err := git(ctx, filepath.Dir(abs), "rev-parse", "--show-toplevel")
	if err != nil {
		return nil, "", fmt.Errorf("--base needs the playbook in a git repository: %v", err)
	}
	root := strings.TrimSpace(out)
	if r, err := filepath.EvalSymlinks(root); err == nil {
		root = r
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil || strings.HasPrefix(rel, "..") {
		return nil, "", fmt.Errorf("%s is outside its git repository %s", file, root)
	}
	rel = filepath.ToSlash(rel)
	label = ref + ":" + rel
	if _, err := git(ctx, root, "rev-parse", "--verify", "--quiet", ref+"^{commit}"); err != nil {
		return nil, label, fmt.Errorf("--base %s: no such commit, branch or tag in %s (in CI, fetch it first: git fetch origin main)", ref, root)
	}
	tmp, err := os.MkdirTemp("", "runbook-base-")
	if err != nil {
		return nil, label, err
	}
	defer os.RemoveAll(tmp)
	x := &extractor{ctx: ctx, root: root, ref: ref, dir: tmp, seen: map[string]bool{}}
	found, err := x.extract(rel, 0)
	if err != nil {
		return nil, label, err
	}
	if !found {
		return nil, label, ErrNotAtRef
	}
	pb, err = engine.LoadFile(filepath.Join(tmp, filepath.FromSlash(rel)))
	if err != nil {
		// Say where the files came from, not where they were put.
		msg := strings.ReplaceAll(err.Error(), tmp+string(filepath.Separator), ref+":")
		return nil, label, fmt.Errorf("the playbook at %s does not validate:\n%s", ref, msg)
	}
	pb.File = rel
	return pb, label, nil
}

type extractor struct {
	ctx            context.Context
	root, ref, dir string
	seen           map[string]bool
}

// extract writes one file at the ref into the temporary tree, then the fragments it
// includes. It returns false when the file does not exist at the ref.
func (x *extractor) extract(rel string, depth int) (bool, error) {
	if x.seen[rel] || depth > 6 {
		return true, nil // a loop or too deep: the loader reports it
	}
	x.seen[rel] = true
	src, err := git(x.ctx, x.root, "show", x.ref+":"+rel)
	if err != nil {
		if strings.Contains(err.Error(), "does not exist") || strings.Contains(err.Error(), "exists on disk, but not in") {
			return false, nil
		}
		return false, fmt.Errorf("reading %s at %s: %v", rel, x.ref, err)
	}
	dst := filepath.Join(x.dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return false, err
	}
	if err := os.WriteFile(dst, []byte(src), 0o644); err != nil {
		return false, err
	}
	var doc yaml.Node
	if yaml.Unmarshal([]byte(src), &doc) != nil {
		return true, nil // the loader reports the syntax error
	}
	for _, inc := range includes(&doc) {
		if path.IsAbs(inc) || filepath.IsAbs(inc) {
			continue // read from this machine by the loader, as in a run
		}
		next := path.Clean(path.Join(path.Dir(rel), filepath.ToSlash(inc)))
		if strings.HasPrefix(next, "../") || next == ".." {
			return false, fmt.Errorf("%s includes %s, which is outside the repository", rel, inc)
		}
		if _, err := x.extract(next, depth+1); err != nil {
			return false, err
		}
	}
	return true, nil
}

// includes finds the files a playbook or fragment reads besides itself, wherever they are
// named: its fragments (`include:`) and its site file (`site:`; a site file's own
// `site: v1` is its format version, not a file).
func includes(n *yaml.Node) []string {
	var out []string
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n == nil {
			return
		}
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				switch {
				case k.Value == "include" && v.Kind == yaml.ScalarNode && v.Value != "":
					out = append(out, v.Value)
				case k.Value == "site" && v.Kind == yaml.ScalarNode && v.Value != "" && v.Value != "v1":
					out = append(out, v.Value) // site: site.yaml
				case k.Value == "site" && v.Kind == yaml.MappingNode:
					for j := 0; j+1 < len(v.Content); j += 2 {
						if v.Content[j].Value == "file" && v.Content[j+1].Value != "" {
							out = append(out, v.Content[j+1].Value) // site: {file: site.yaml, override: [...]}
						}
					}
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(n)
	return out
}

// git runs git with argv (never a shell) and returns its standard output; an error
// carries git's own message.
func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "LC_ALL=C")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("git %s: %s", args[0], msg)
	}
	return stdout.String(), nil
}
