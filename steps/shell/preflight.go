package shell

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/cessda/runbook/engine"
)

// xOK asks access(2) whether the process may execute a file.
const xOK = 1

// Preflight checks, running nothing, that argv[0] is found (in the command's PATH when it
// has no slash) and that this process may execute it. A program that an earlier step
// creates is reported missing, unless argv[0] comes from that step's outputs (then it is
// unknown, and not checked).
func (s *Shell) Preflight(ctx context.Context, sc *engine.StepContext) error {
	if len(s.Argv) == 0 || sc.Unknown("argv.0") || sc.Unknown("env.PATH") {
		return nil
	}
	name := s.Argv[0]
	path, err := LookPath(name, envValue(s.env(os.Getenv), "PATH"))
	if err != nil {
		return fmt.Errorf("shell: %v: install it on the machine that runs runbook, or give its absolute path in argv (the command sees only PATH, HOME and LANG, plus env)", err)
	}
	if !filepath.IsAbs(path) {
		if sc.Unknown("workdir") {
			return nil
		}
		path = filepath.Join(s.Workdir, path) // relative to workdir, as Run runs it
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("shell: %s not found (%s does not exist): check argv[0]%s", name, path, inWorkdir(s.Workdir))
	case err != nil:
		return fmt.Errorf("shell: %s: %v", name, err)
	case fi.IsDir():
		return fmt.Errorf("shell: %s is a directory, not a program: check argv[0]", path)
	case !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 || syscall.Access(path, xOK) != nil:
		return fmt.Errorf("shell: %s is not executable by this user (mode %s): chmod +x it, or run it through its interpreter (argv: [sh, %s, ...])", path, fi.Mode(), name)
	}
	return nil
}

func inWorkdir(dir string) string {
	if dir == "" {
		return " (a relative path is taken from runbook's working directory)"
	}
	return " (a relative path is taken from workdir " + dir + ")"
}
