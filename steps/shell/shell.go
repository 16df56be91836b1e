package shell

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cessda/runbook/engine"
)

func init() {
	engine.Register(engine.StepType{
		Name:    "shell",
		Summary: "Run a command (argv, no shell) and check its exit code",
		Doc: "Runs `argv` directly, without a shell: values go in as separate arguments or through `env`, " +
			"never pasted into a command line. The command sees only PATH, HOME and LANG from runbook's " +
			"environment, plus `env`. Its output is logged line by line and the last 4 KiB of each stream " +
			"become outputs. Commands should be idempotent; `creates` skips the step when a path exists.",
		New: func() engine.Step { return &Shell{} },
		Outputs: []engine.Output{
			{Name: "exit_code", Type: engine.TypeInt, Desc: "the command's exit code (-1 when killed by a signal)"},
			{Name: "stdout", Type: engine.TypeString, Desc: "the last 4 KiB of standard output"},
			{Name: "stderr", Type: engine.TypeString, Desc: "the last 4 KiB of standard error"},
			{Name: "skipped", Type: engine.TypeBool, Desc: "true when `creates` existed and nothing ran"},
		},
	})
}

// Shell is the params struct of the `shell` step type.
type Shell struct {
	Argv             []string          `json:"argv" required:"true" desc:"the command and its arguments; argv[0] is looked up in PATH"`
	Env              map[string]string `json:"env" desc:"environment variables added to PATH, HOME and LANG"`
	Workdir          string            `json:"workdir" desc:"directory to run in (default: runbook's working directory)"`
	Stdin            string            `json:"stdin" desc:"text given on standard input (default: none)"`
	Timeout          engine.Duration   `json:"timeout" desc:"stop the command after this long (default: only when the run is cancelled)"`
	KillGrace        engine.Duration   `json:"kill_grace" default:"10s" desc:"time between SIGTERM and SIGKILL when the command is stopped"`
	AllowedExitCodes []int             `json:"allowed_exit_codes" default:"[0]" desc:"exit codes that count as success"`
	Creates          string            `json:"creates" desc:"a path the command creates: when it exists the command is not run"`
}

// inheritedEnv are the only variables passed on from runbook's own environment: enough
// to find programs and speak the user's language, and none of the tokens runbook holds.
var inheritedEnv = []string{"PATH", "HOME", "LANG"}

const (
	tailBytes    = 4096 // kept of each stream for the outputs
	maxLineBytes = 4096 // longer lines are logged in pieces, so memory stays bounded
)

// Validate checks the parameters.
func (s *Shell) Validate() error {
	if len(s.Argv) == 0 || s.Argv[0] == "" {
		return errors.New("shell: argv is empty; give the command and its arguments as a list, e.g. [git, tag, v1.2.3]")
	}
	for k := range s.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("shell: %q is not an environment variable name", k)
		}
	}
	for _, a := range s.Argv {
		if strings.ContainsRune(a, 0) {
			return errors.New("shell: an argument contains a NUL byte")
		}
	}
	for _, c := range s.AllowedExitCodes {
		if c < 0 || c > 255 {
			return fmt.Errorf("shell: allowed exit code %d is not between 0 and 255", c)
		}
	}
	if s.Timeout < 0 || s.KillGrace < 0 {
		return errors.New("shell: timeout and kill_grace must not be negative")
	}
	return nil
}

func (s *Shell) allowed() []int {
	if len(s.AllowedExitCodes) == 0 {
		return []int{0}
	}
	return s.AllowedExitCodes
}

// createsPath is the creates path, relative to workdir when not absolute.
func (s *Shell) createsPath() string {
	if s.Creates == "" || filepath.IsAbs(s.Creates) || s.Workdir == "" {
		return s.Creates
	}
	return filepath.Join(s.Workdir, s.Creates)
}

// Plan shows the command, quoted as a POSIX shell would need it, and runs nothing.
func (s *Shell) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	cmd := engine.KnownAfterRun
	if !sc.Unknown("argv") {
		cmd = FormatArgv(s.Argv)
	}
	p := engine.Plan{Action: "run " + cmd}
	if s.Workdir != "" {
		p.Details = append(p.Details, "in "+sc.Show("workdir", s.Workdir))
	}
	if len(s.Env) > 0 {
		// Only the names: values may be secrets rendered from expressions.
		p.Details = append(p.Details, "with environment "+strings.Join(sortedKeys(s.Env), ", "))
	}
	if s.Stdin != "" {
		p.Details = append(p.Details, fmt.Sprintf("with %d bytes on standard input", len(s.Stdin)))
	}
	if s.Creates != "" && !sc.Unknown("creates") {
		if _, err := os.Stat(s.createsPath()); err == nil {
			return engine.Plan{Action: "skip " + cmd, Details: []string{s.createsPath() + " exists"}, NoChange: true}, nil
		}
		p.Details = append(p.Details, "skipped when "+s.createsPath()+" exists")
	}
	if !sc.Unknown("argv") && len(s.Argv) > 0 {
		if _, err := LookPath(s.Argv[0], envValue(s.env(os.Getenv), "PATH")); err != nil {
			p.Details = append(p.Details, "warning: "+err.Error())
		}
	}
	return p, nil
}

// env is the command's environment.
func (s *Shell) env(getenv func(string) string) []string {
	return MinimalEnv(getenv, s.Env)
}

// resultKey names the journal entry of a finished command, by what was run, so a
// foreach over the same step never reuses another item's result.
func (s *Shell) resultKey() string {
	b, _ := json.Marshal([]any{s.Argv, s.Env, s.Workdir, s.Stdin})
	h := sha256.Sum256(b)
	return "result:" + hex.EncodeToString(h[:8])
}

// Run runs the command unless creates exists or this run already ran it successfully.
func (s *Shell) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if s.Creates != "" {
		if _, err := os.Stat(s.createsPath()); err == nil {
			sc.Logf("%s exists: not running %s", s.createsPath(), FormatArgv(s.Argv))
			return engine.Outputs{"exit_code": 0, "stdout": "", "stderr": "", "skipped": true}, nil
		}
	}
	var done engine.Outputs
	if sc.Recall(s.resultKey(), &done) {
		sc.Logf("%s already ran in this run (exit %v): not running it again", FormatArgv(s.Argv), done["exit_code"])
		if f, ok := done["exit_code"].(float64); ok { // JSON numbers come back as float64
			done["exit_code"] = int(f)
		}
		return done, nil
	}

	env := s.env(os.Getenv)
	path, err := LookPath(s.Argv[0], envValue(env, "PATH"))
	if err != nil {
		return nil, fmt.Errorf("shell: %v", err)
	}
	if s.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.Timeout.D())
		defer cancel()
	}

	var logMu sync.Mutex
	stdout := newLineWriter(sc, "stdout", &logMu)
	stderr := newLineWriter(sc, "stderr", &logMu)
	cmd := exec.CommandContext(ctx, path, s.Argv[1:]...)
	cmd.Args[0] = s.Argv[0]
	cmd.Env = env
	cmd.Dir = s.Workdir
	if s.Stdin != "" {
		cmd.Stdin = strings.NewReader(s.Stdin)
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Its own process group, so a stop reaches the children a command starts too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stopped time.Time
	cmd.Cancel = func() error {
		stopped = time.Now()
		sc.Logf("stopping %s: SIGTERM to its process group (SIGKILL in %s)", FormatArgv(s.Argv), s.KillGrace)
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	}
	// After the grace period Wait kills the leader and stops reading output that
	// children may still hold open; the rest of the group is killed below.
	cmd.WaitDelay = s.KillGrace.D()

	sc.Logf("running %s", FormatArgv(s.Argv))
	err = cmd.Run()
	stdout.Flush()
	stderr.Flush()
	if cmd.Process != nil && !stopped.IsZero() {
		killGroup(cmd.Process.Pid, stopped.Add(s.KillGrace.D()))
	}
	code := -1
	if cmd.ProcessState != nil {
		code = cmd.ProcessState.ExitCode()
	}
	out := engine.Outputs{"exit_code": code, "stdout": stdout.Tail(), "stderr": stderr.Tail(), "skipped": false}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil && !stopped.IsZero():
		why := "the run was cancelled"
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && s.Timeout > 0 {
			why = "timeout " + s.Timeout.String() + " reached"
		}
		return out, fmt.Errorf("shell: %s stopped (%s); its process group was killed: %w", FormatArgv(s.Argv), why, ctx.Err())
	case err == nil, errors.As(err, &exitErr):
	case errors.Is(err, exec.ErrWaitDelay):
		sc.Logf("%s exited but something it started kept its output open; stopped reading after %s", FormatArgv(s.Argv), s.KillGrace)
	default:
		return out, fmt.Errorf("shell: %s: %v", FormatArgv(s.Argv), err)
	}
	if !slices.Contains(s.allowed(), code) {
		return out, fmt.Errorf("shell: %s exited with %d (allowed: %v)%s", FormatArgv(s.Argv), code, s.allowed(), lastLine(stderr.Tail()))
	}
	sc.Logf("%s exited with %d", FormatArgv(s.Argv), code)
	if err := sc.Record(s.resultKey(), out); err != nil {
		return out, fmt.Errorf("shell: recording the result: %w", err)
	}
	return out, nil
}

// killGroup SIGKILLs what is left of process group pgid once the grace period ending at
// deadline is over, so children that ignored SIGTERM do not outlive the step.
func killGroup(pgid int, deadline time.Time) {
	if syscall.Kill(-pgid, 0) != nil {
		return // nothing left
	}
	if d := time.Until(deadline); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
				return
			case <-time.After(10 * time.Millisecond):
				if syscall.Kill(-pgid, 0) != nil {
					return
				}
			}
		}
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// LookPath finds an executable the way a shell would with the command's PATH. Names with a
// slash are used as they are (relative to workdir). Relative PATH entries are skipped, so
// a command is never picked up from the current directory by accident.
func LookPath(name, pathEnv string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		if !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			continue
		}
	}
	return "", fmt.Errorf("%s: not found in PATH (%s)", name, pathEnv)
}

// MinimalEnv is the command's environment: PATH, HOME and LANG from getenv when set, then
// extra (which may override them), sorted by name.
func MinimalEnv(getenv func(string) string, extra map[string]string) []string {
	m := map[string]string{}
	for _, k := range inheritedEnv {
		if v := getenv(k); v != "" {
			m[k] = v
		}
	}
	for k, v := range extra {
		m[k] = v
	}
	out := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, k+"="+m[k])
	}
	return out
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k == key {
			return v
		}
	}
	return ""
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// FormatArgv shows argv as a POSIX shell command line that would pass the same arguments.
// It is for plans and logs only: the step itself never goes through a shell.
func FormatArgv(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}

// Quote returns s unchanged when a POSIX shell would read it as one word as it is, and in
// single quotes otherwise (a single quote inside closes the quotes, is escaped with a
// backslash, and reopens them).
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_@%+=:,./-", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return fmt.Sprintf("; last stderr line: %q", s)
}
