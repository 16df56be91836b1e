package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
)

// TestCIWorkflowsLint lints every GitHub Actions workflow of examples/ci with actionlint,
// used as a library: syntax, expressions and their types, contexts available per key,
// action inputs, permissions, script injection. Any error fails the test.
func TestCIWorkflowsLint(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "examples", "ci", "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"github-actions.yml", "release.yml", "release-comment.yml"} {
		found := false
		for _, f := range files {
			found = found || filepath.Base(f) == want
		}
		if !found {
			t.Errorf("examples/ci/%s is missing", want)
		}
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			// No shellcheck or pyflakes (the results would depend on the machine), no
			// project (the examples are not in a .github/workflows of this repository).
			l, err := actionlint.NewLinter(&out, &actionlint.LinterOptions{Oneline: true, Color: actionlint.ColorOptionKindNever})
			if err != nil {
				t.Fatal(err)
			}
			// A path that does not exist, so that actionlint looks for no project
			// around it (a config file, local actions).
			errs, err := l.Lint("examples/ci/"+filepath.Base(f), src, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(errs) > 0 {
				var msgs []string
				for _, e := range errs {
					msgs = append(msgs, e.Error())
				}
				t.Errorf("actionlint found %d problem(s) in %s:\n%s", len(errs), f, strings.Join(msgs, "\n"))
			}
		})
	}
}
