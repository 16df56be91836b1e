package shell

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/engine/enginetest"
)

// with builds `with:` values that run the test binary as the helper command.
func with(mode string, args []string, extra map[string]any) map[string]any {
	argv := []any{os.Args[0], mode}
	for _, a := range args {
		argv = append(argv, a)
	}
	// GORACE: a -race test binary otherwise sleeps 1s at a clean exit.
	env := map[string]any{helperEnv: "1", "GORACE": "atexit_sleep_ms=0"}
	w := map[string]any{"argv": argv, "env": env}
	for k, v := range extra {
		if k == "env" {
			for ek, ev := range v.(map[string]any) {
				env[ek] = ev
			}
			continue
		}
		w[k] = v
	}
	return w
}

func runStep(t *testing.T, w map[string]any) (engine.Outputs, error, *enginetest.Context) {
	t.Helper()
	step := enginetest.Decode(t, "shell", w)
	sc := enginetest.NewContext(t, "cmd")
	out, err := step.Run(context.Background(), sc.StepContext)
	return out, err, sc
}

func TestDecodePlanRun(t *testing.T) {
	counter := filepath.Join(t.TempDir(), "count")
	step := enginetest.Decode(t, "shell", with("append", []string{counter}, nil))
	sc := enginetest.NewContext(t, "cmd")
	plan, err := step.Plan(context.Background(), sc.StepContext)
	if err != nil {
		t.Fatal(err)
	}
	if want := "run " + Quote(os.Args[0]) + " append " + Quote(counter); plan.Action != want {
		t.Errorf("plan = %q, want %q", plan.Action, want)
	}
	if _, err := os.Stat(counter); err == nil {
		t.Fatal("Plan ran the command")
	}
	for i := 0; i < 2; i++ {
		out, err := step.Run(context.Background(), sc.StepContext)
		if err != nil {
			t.Fatal(err)
		}
		if out["exit_code"] != 0 || out["skipped"] != false {
			t.Errorf("run %d outputs = %v", i+1, out)
		}
	}
	if n := runs(t, counter); n != 1 {
		t.Errorf("two Runs in one run ran the command %d times, want 1", n)
	}
}

func runs(t *testing.T, counter string) int {
	b, err := os.ReadFile(counter)
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "ran\n")
}

func TestPlanQuotesArgv(t *testing.T) {
	step := enginetest.Decode(t, "shell", map[string]any{
		"argv": []any{"git", "tag", "-m", "it's v1.2.3 $(rm -rf x)", "v1.2.3"},
		"env":  map[string]any{"GIT_TOKEN": "s3cr3t"},
	})
	sc := enginetest.NewContext(t, "cmd")
	plan, err := step.Plan(context.Background(), sc.StepContext)
	if err != nil {
		t.Fatal(err)
	}
	if want := `run git tag -m 'it'\''s v1.2.3 $(rm -rf x)' v1.2.3`; plan.Action != want {
		t.Errorf("plan = %q, want %q", plan.Action, want)
	}
	if s := fmt.Sprint(plan); strings.Contains(s, "s3cr3t") || !strings.Contains(s, "GIT_TOKEN") {
		t.Errorf("plan should name the env variable but not its value: %v", plan)
	}
}

func TestPlanUnknownArgv(t *testing.T) {
	step := enginetest.Decode(t, "shell", map[string]any{"argv": []any{"x"}})
	sc := enginetest.NewContext(t, "cmd")
	sc.SetUnknown("argv")
	plan, err := step.Plan(context.Background(), sc.StepContext)
	if err != nil || plan.Action != "run "+engine.KnownAfterRun {
		t.Errorf("plan = %v, %v", plan, err)
	}
}

func TestArgumentsArriveVerbatim(t *testing.T) {
	args := []string{"with space", `"double"`, "'single'", "$(rm -rf x)", "`id`", "$HOME", "a;b|c&&d", "*", "", "new\nline", "ünïcødé"}
	out, err, _ := runStep(t, with("args", args, nil))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := json.Unmarshal([]byte(out["stdout"].(string)), &got); err != nil {
		t.Fatalf("stdout %q: %v", out["stdout"], err)
	}
	if fmt.Sprint(got) != fmt.Sprint(args) || len(got) != len(args) {
		t.Errorf("arguments arrived as %q, want %q", got, args)
	}
}

func TestMinimalEnvironment(t *testing.T) {
	t.Setenv("RUNBOOK_TEST_PARENT_SECRET", "do-not-inherit")
	t.Setenv("LANG", "C.UTF-8")
	out, err, _ := runStep(t, with("env", nil, map[string]any{"env": map[string]any{"RELEASE": "1.2.3 $(x)"}}))
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	if err := json.Unmarshal([]byte(out["stdout"].(string)), &env); err != nil {
		t.Fatal(err)
	}
	want := []string{"HOME=" + os.Getenv("HOME"), "LANG=C.UTF-8", "PATH=" + os.Getenv("PATH"), "RELEASE=1.2.3 $(x)", helperEnv + "=1"}
	want = append([]string{"GORACE=atexit_sleep_ms=0"}, want...)
	if os.Getenv("HOME") == "" {
		want = want[1:]
	}
	if fmt.Sprint(env) != fmt.Sprint(want) {
		t.Errorf("environment = %q, want %q", env, want)
	}
}

func TestStdinAndWorkdir(t *testing.T) {
	out, err, _ := runStep(t, with("stdin", nil, map[string]any{"stdin": "line one\nline two\n"}))
	if err != nil || out["stdout"] != "line one\nline two\n" {
		t.Fatalf("stdout %q, err %v", out["stdout"], err)
	}
	dir := t.TempDir()
	out, err, _ = runStep(t, with("pwd", nil, map[string]any{"workdir": dir}))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := filepath.EvalSymlinks(strings.TrimSpace(out["stdout"].(string))); got != mustEval(t, dir) {
		t.Errorf("ran in %q, want %q", got, dir)
	}
}

func mustEval(t *testing.T, p string) string {
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestExitCodes(t *testing.T) {
	out, err, sc := runStep(t, with("exit", []string{"3"}, nil))
	if err == nil {
		t.Fatal("exit 3 passed")
	}
	for _, want := range []string{"exited with 3", "allowed: [0]", `"failing with 3"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if ok, _ := engine.IsTransient(err); ok {
		t.Error("a failing command is marked transient")
	}
	if out["exit_code"] != 3 || out["stderr"] != "warming up\nfailing with 3\n" || out["stdout"] != "about to fail\n" {
		t.Errorf("outputs = %v", out)
	}
	if !strings.Contains(sc.LogText(), "stderr| failing with 3") || !strings.Contains(sc.LogText(), "stdout| about to fail") {
		t.Errorf("log = %q", sc.LogText())
	}
	out, err, _ = runStep(t, with("exit", []string{"3"}, map[string]any{"allowed_exit_codes": []any{0, 3}}))
	if err != nil || out["exit_code"] != 3 {
		t.Errorf("allowed exit 3: out %v, err %v", out, err)
	}
}

func TestNotFound(t *testing.T) {
	_, err, _ := runStep(t, map[string]any{"argv": []any{"runbook-no-such-command-4e1"}})
	if err == nil || !strings.Contains(err.Error(), "runbook-no-such-command-4e1: not found in PATH") {
		t.Fatalf("err = %v", err)
	}
}

func TestOutputIsBounded(t *testing.T) {
	out, err, sc := runStep(t, with("lines", []string{"3000"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	so := out["stdout"].(string)
	if len(so) > tailBytes || !strings.HasSuffix(so, "out line 3000\n") {
		t.Errorf("stdout output is %d bytes ending %q", len(so), so[max(0, len(so)-20):])
	}
	if n := strings.Count(sc.LogText(), "stdout| out line "); n != 3000 {
		t.Errorf("%d stdout lines logged, want 3000", n)
	}
	if n := strings.Count(sc.LogText(), "stderr| err line "); n != 3000 {
		t.Errorf("%d stderr lines logged, want 3000", n)
	}

	_, err, sc = runStep(t, with("long", []string{"10000"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	pieces := 0
	for _, l := range sc.Log() {
		if strings.HasPrefix(l, "stdout| ") {
			pieces++
			if len(l) > maxLineBytes+len("stdout| ") {
				t.Errorf("a log line of %d bytes", len(l))
			}
		}
	}
	if pieces != 3 {
		t.Errorf("a 10000-byte line was logged in %d pieces, want 3", pieces)
	}
}

func TestCreatesSkips(t *testing.T) {
	dir := t.TempDir()
	counter := filepath.Join(dir, "count")
	w := with("append", []string{counter}, map[string]any{"workdir": dir, "creates": "count"})
	if out, err, _ := runStep(t, w); err != nil || out["skipped"] != false {
		t.Fatalf("first run: %v %v", out, err)
	}
	// A fresh run (empty journal) finds the file the command creates and skips it.
	out, err, sc := runStep(t, w)
	if err != nil || out["skipped"] != true {
		t.Fatalf("second run: %v %v", out, err)
	}
	if n := runs(t, counter); n != 1 {
		t.Errorf("the command ran %d times, want 1", n)
	}
	if !strings.Contains(sc.LogText(), "exists: not running") {
		t.Errorf("log = %q", sc.LogText())
	}
	step := enginetest.Decode(t, "shell", w)
	plan, err := step.Plan(context.Background(), enginetest.NewContext(t, "cmd").StepContext)
	if err != nil || !plan.NoChange {
		t.Errorf("plan with creates present = %v, %v; want NoChange", plan, err)
	}
}

func TestFailureIsNotRemembered(t *testing.T) {
	step := enginetest.Decode(t, "shell", with("exit", []string{"1"}, nil))
	sc := enginetest.NewContext(t, "cmd")
	for i := 0; i < 2; i++ {
		if _, err := step.Run(context.Background(), sc.StepContext); err == nil {
			t.Fatalf("run %d passed", i+1)
		}
	}
	if n := strings.Count(sc.LogText(), "stderr| failing with 1"); n != 2 {
		t.Errorf("a failed command was run %d times on retry, want 2", n)
	}
}

// cancelOnLine returns a context cancelled as soon as the step logs a line starting with
// prefix, so a test stops a command exactly when it is ready, however slow the machine.
func cancelOnLine(sc *enginetest.Context, prefix string) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	logf := sc.LogFunc
	sc.LogFunc = func(line string) {
		logf(line)
		if strings.HasPrefix(line, prefix) {
			cancel()
		}
	}
	return ctx
}

// TestCancelKillsTheProcessGroup stops a command that started a child: both must die.
func TestCancelKillsTheProcessGroup(t *testing.T) {
	step := enginetest.Decode(t, "shell", with("hang", nil, map[string]any{"kill_grace": "50ms"}))
	sc := enginetest.NewContext(t, "cmd")
	ctx := cancelOnLine(sc, "stdout| child ")
	start := time.Now()
	out, err := step.Run(ctx, sc.StepContext)
	if err == nil || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "process group was killed") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stopping took %s", d)
	}
	if !strings.Contains(sc.LogText(), "SIGTERM to its process group") {
		t.Errorf("log = %q", sc.LogText())
	}
	ps := pids(t, out["stdout"].(string))
	if len(ps) != 2 {
		t.Fatalf("pids %v, want the command and its child", ps)
	}
	for _, p := range ps {
		waitDead(t, p)
	}
}

// TestCancelEscalatesToSIGKILL stops a command that ignores SIGTERM.
func TestCancelEscalatesToSIGKILL(t *testing.T) {
	step := enginetest.Decode(t, "shell", with("stubborn", nil, map[string]any{"kill_grace": "30ms"}))
	sc := enginetest.NewContext(t, "cmd")
	ctx := cancelOnLine(sc, "stdout| pid ")
	start := time.Now()
	out, err := step.Run(ctx, sc.StepContext)
	if err == nil || !strings.Contains(err.Error(), "the run was cancelled") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stopping took %s", d)
	}
	if out["exit_code"] != -1 {
		t.Errorf("exit_code = %v, want -1 (killed by a signal)", out["exit_code"])
	}
	for _, p := range pids(t, out["stdout"].(string)) {
		waitDead(t, p)
	}
}

// TestTimeout stops a command that runs longer than its timeout.
func TestTimeout(t *testing.T) {
	start := time.Now()
	_, err, _ := runStep(t, with("block", nil, map[string]any{"timeout": "50ms", "kill_grace": "20ms"}))
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timeout 50ms reached") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a 50ms timeout took %s", d)
	}
}

func pids(t *testing.T, stdout string) []int {
	t.Helper()
	var out []int
	for _, l := range strings.Split(stdout, "\n") {
		if f := strings.Fields(l); len(f) == 2 && (f[0] == "pid" || f[0] == "child") {
			n, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no pids in %q", stdout)
	}
	return out
}

// waitDead waits (up to 2s, in 5ms steps) for pid to be gone or a zombie: in a
// container the orphaned child may never be reaped, but it is dead.
func waitDead(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		if i := strings.LastIndexByte(string(b), ')'); i > 0 && strings.HasPrefix(string(b[i+1:]), " Z") {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Errorf("process %d still alive after the step stopped", pid)
}

func TestCanaryInEnvNotShown(t *testing.T) {
	const canary = "canary-token-51c8e0"
	w := with("exit", []string{"4"}, map[string]any{"env": map[string]any{"DEPLOY_TOKEN": canary}})
	step := enginetest.Decode(t, "shell", w)
	sc := enginetest.NewContext(t, "cmd")
	plan, perr := step.Plan(context.Background(), sc.StepContext)
	out, err := step.Run(context.Background(), sc.StepContext)
	if err == nil {
		t.Fatal("exit 4 passed")
	}
	for what, s := range map[string]string{"plan": fmt.Sprint(plan, perr), "outputs": fmt.Sprint(out), "error": err.Error(), "log": sc.LogText()} {
		if strings.Contains(s, canary) {
			t.Errorf("the env value appears in the %s: %q", what, s)
		}
	}
}

func TestValidate(t *testing.T) {
	st, _ := engine.LookupStepType("shell")
	for _, w := range []map[string]any{
		{"argv": []any{}},
		{"argv": []any{""}},
		{"argv": []any{"x"}, "env": map[string]any{"A=B": "c"}},
		{"argv": []any{"x"}, "allowed_exit_codes": []any{256}},
	} {
		s, err := engine.DecodeParams(st, w)
		if err != nil {
			continue
		}
		if err := s.(engine.Validator).Validate(); err == nil {
			t.Errorf("%v validated", w)
		}
	}
}

func TestMinimalEnvPure(t *testing.T) {
	get := func(k string) string {
		return map[string]string{"PATH": "/bin", "HOME": "/h", "GITHUB_TOKEN": "x"}[k]
	}
	got := MinimalEnv(get, map[string]string{"PATH": "/opt/bin", "B": "2"})
	if want := []string{"B=2", "HOME=/h", "PATH=/opt/bin"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("MinimalEnv = %q, want %q", got, want)
	}
}

func TestTail(t *testing.T) {
	tl := Tail{Max: 5}
	tl.Write([]byte("abc"))
	tl.Write([]byte("defg"))
	if tl.String() != "cdefg" {
		t.Errorf("tail = %q", tl.String())
	}
	tl.Write([]byte("0123456789"))
	if tl.String() != "56789" {
		t.Errorf("tail = %q", tl.String())
	}
	tl = Tail{Max: 3}
	tl.Write([]byte("aéé")) // 5 bytes; a 3-byte window starts inside the first é
	if tl.String() != "é" {
		t.Errorf("tail = %q, want a whole rune", tl.String())
	}
}

// unquote reverses Quote for the fuzz test: a bare word, or single-quoted parts joined
// by \' escapes.
func unquote(s string) (string, bool) {
	if !strings.HasPrefix(s, "'") {
		return s, Quote(s) == s
	}
	var b strings.Builder
	for len(s) > 0 {
		switch {
		case strings.HasPrefix(s, `\'`):
			b.WriteByte('\'')
			s = s[2:]
		case strings.HasPrefix(s, "'"):
			end := strings.IndexByte(s[1:], '\'')
			if end < 0 {
				return "", false
			}
			b.WriteString(s[1 : 1+end])
			s = s[end+2:]
		default:
			return "", false
		}
	}
	return b.String(), true
}

func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "plain", "it's", "$(rm -rf x)", "a b", "'''", "\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q := Quote(s)
		got, ok := unquote(q)
		if !ok || got != s {
			t.Fatalf("Quote(%q) = %q, which reads back as %q (ok %v)", s, q, got, ok)
		}
		if q != s && (!strings.HasPrefix(q, "'") || !strings.HasSuffix(q, "'")) {
			t.Fatalf("Quote(%q) = %q is not single-quoted", s, q)
		}
	})
}

func FuzzTail(f *testing.F) {
	f.Add([]byte("hello"), []byte("wörld"), 4)
	f.Fuzz(func(t *testing.T, a, b []byte, n int) {
		if n < 1 || n > 1<<12 {
			return
		}
		tl := Tail{Max: n}
		tl.Write(a)
		tl.Write(b)
		all := append(append([]byte{}, a...), b...)
		s := tl.String()
		if len(s) > n || !strings.HasSuffix(string(all), s) {
			t.Fatalf("tail %q of %q (max %d)", s, all, n)
		}
		if len(all) >= n && n-len(s) >= 4 {
			t.Fatalf("tail dropped %d bytes more than the window", n-len(s))
		}
	})
}
