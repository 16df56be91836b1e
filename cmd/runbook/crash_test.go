//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/steps/rehearsal"
)

// The crash harness: the runbook binary, run against a `runbook sandbox` in another
// process, is killed with SIGKILL at a crash point (after the Nth journal event, or after
// the Nth HTTP write was answered but before the step saw the answer) and resumed; the
// world it leaves must equal the one an uninterrupted run leaves, which rules out any
// duplicated issue, comment, tag, build, deposition, release, e-mail or chat post.
//
//	go test ./cmd/runbook -run TestCrashResume                           # cvs, 8 crash points
//	RUNBOOK_CRASH_SWEEP=all go test ./cmd/runbook -run TestCrashResume -timeout 2h -v
//	                                    # every event and every write, all four playbooks
//	RUNBOOK_CRASH_PLAYBOOKS=cvs,eqb     # which playbooks (default: cvs, or all four for the sweep)
//	RUNBOOK_CRASH_PARALLEL=N            # crash points at once (default GOMAXPROCS)
//
// bench/crash.sh runs the sweep and keeps its figures.

type crashPlaybook struct {
	name string
	sets []string
}

var crashPlaybooks = []crashPlaybook{
	{"cvs", []string{"version=3.7.0"}},
	{"cdc", []string{"version=4.3.0"}},
	{"eqb", []string{"version=1.2.0"}},
	{"elsst", []string{"version=2026", "vocabulary=elsst-7"}},
}

const (
	crashEvent = "RUNBOOK_CRASH_AFTER_EVENT"
	// crashStart kills a run before its first event: after its preflight and its lock.
	crashStart = "RUNBOOK_CRASH_BEFORE_EVENT"
	crashWrite = "RUNBOOK_CRASH_AFTER_WRITE"
)

func TestCrashResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs many processes")
	}
	full := os.Getenv("RUNBOOK_CRASH_SWEEP") == "all"
	want := map[string]bool{"cvs": true}
	if full {
		want = map[string]bool{"cvs": true, "cdc": true, "eqb": true, "elsst": true}
	}
	if s := os.Getenv("RUNBOOK_CRASH_PLAYBOOKS"); s != "" {
		want = map[string]bool{}
		for _, n := range strings.Split(s, ",") {
			want[strings.TrimSpace(n)] = true
		}
	}
	bin := buildRunbook(t)
	for _, pb := range crashPlaybooks {
		if !want[pb.name] {
			continue
		}
		t.Run(pb.name, func(t *testing.T) {
			h := &crashHarness{t: t, bin: bin, pb: pb, parallel: crashParallel()}
			h.sweep(full)
		})
	}
}

func crashParallel() int {
	if n, err := strconv.Atoi(os.Getenv("RUNBOOK_CRASH_PARALLEL")); err == nil && n > 0 {
		return n
	}
	return runtime.GOMAXPROCS(0)
}

// buildRunbook builds the binary once, as users run it, with the crash points the
// crash tests set through the environment (-tags crashpoints; see crash.go).
func buildRunbook(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "runbook")
	out, err := exec.Command("go", "build", "-tags", "crashpoints", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type crashHarness struct {
	t        *testing.T
	bin      string
	pb       crashPlaybook
	parallel int

	ref     string // the uninterrupted run's world, normalised
	events  int    // journal events of the uninterrupted run
	mu      sync.Mutex
	results []crashResult
}

// crashResult is what happened at one crash point.
type crashResult struct {
	env     string
	k       int
	killed  bool // the run died by SIGKILL at the point (false: it ended first)
	resumes int  // resume processes needed to finish
	// restarted: killed before the run existed, then a new run did the whole release
	restarted bool
	asked     int           // times a person was asked (a message whose delivery was unknown)
	resume    time.Duration // wall time of the first resume process
	diff      string        // the world differs from the reference (a duplicate, or something missing)
	problem   string        // a check of the run or its report failed
}

func (h *crashHarness) playbook() string {
	p, err := filepath.Abs(filepath.Join("..", "..", "playbooks", h.pb.name+".yaml"))
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

// sweep takes the reference, then exercises the crash points and reports the figures.
func (h *crashHarness) sweep(full bool) {
	t := h.t
	start := time.Now()
	w, err := h.world()
	if err != nil {
		t.Fatal(err)
	}
	runID, err := w.run("")
	if err == nil {
		h.ref, err = w.state()
	}
	if err != nil {
		w.close()
		t.Fatalf("reference run: %v", err)
	}
	h.events = countLines(t, filepath.Join(w.dir, "runs", runID, "journal.jsonl"))
	if p := checkReport(filepath.Join(w.dir, "runs", runID, "report.json"), 1); p != "" {
		t.Errorf("reference run: %s", p)
	}
	w.close()
	t.Logf("%s: reference run: %d journal events (%s)", h.pb.name, h.events, time.Since(start).Round(time.Millisecond))

	h.exercise([]crashPoint{{crashStart, 1}})
	if full {
		h.all(crashEvent, h.events)
		writes := h.countWrites(true)
		t.Logf("%s: %d answered HTTP writes", h.pb.name, writes)
	} else {
		// A sample over the whole run: four event points and four write points.
		writes := h.countWrites(false)
		t.Logf("%s: %d answered HTTP writes", h.pb.name, writes)
		var pts []crashPoint
		for i := 1; i <= 4; i++ {
			pts = append(pts, crashPoint{crashEvent, spread(i, 4, h.events)}, crashPoint{crashWrite, spread(i, 4, writes)})
		}
		h.exercise(pts)
	}
	h.summary()
}

// spread is the ith of n points spread over 1..total, the last one inside the run.
func spread(i, n, total int) int {
	k := (i*total + n/2) / (n + 1)
	if k < 1 {
		k = 1
	}
	return k
}

type crashPoint struct {
	env string
	k   int
}

// all exercises every point 1..n of one kind, a few at once.
func (h *crashHarness) all(env string, n int) {
	pts := make([]crashPoint, 0, n)
	for k := 1; k <= n; k++ {
		pts = append(pts, crashPoint{env, k})
	}
	h.exercise(pts)
}

func (h *crashHarness) exercise(pts []crashPoint) {
	sem := make(chan struct{}, h.parallel)
	var wg sync.WaitGroup
	for _, p := range pts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			h.record(h.crashAt(p.env, p.k))
		}()
	}
	wg.Wait()
}

// countWrites finds W, the number of answered HTTP writes of a run: the last write
// crash point that still kills the run. In the full sweep every point up to W is
// exercised on the way (with resume and comparison); otherwise W is bisected with
// runs that are only killed, not resumed.
func (h *crashHarness) countWrites(exercise bool) int {
	if exercise {
		for base := 1; ; base += h.parallel {
			pts := make([]crashPoint, 0, h.parallel)
			for k := base; k < base+h.parallel; k++ {
				pts = append(pts, crashPoint{crashWrite, k})
			}
			h.exercise(pts)
			h.mu.Lock()
			last := -1
			for _, r := range h.results {
				if r.env == crashWrite && !r.killed && r.problem == "" && (last < 0 || r.k < last) {
					last = r.k
				}
			}
			h.mu.Unlock()
			if last > 0 {
				// Points past the end ran to completion: they are not crash points.
				h.mu.Lock()
				kept := h.results[:0]
				for _, r := range h.results {
					if r.env != crashWrite || r.k < last {
						kept = append(kept, r)
					}
				}
				h.results = kept
				h.mu.Unlock()
				return last - 1
			}
		}
	}
	lo, hi := 0, 0 // the run dies at lo; it completes at hi
	for k := 16; hi == 0; k *= 2 {
		if h.dies(k) {
			lo = k
		} else {
			hi = k
		}
	}
	for hi-lo > 1 {
		m := (lo + hi) / 2
		if h.dies(m) {
			lo = m
		} else {
			hi = m
		}
	}
	return lo
}

// dies says whether a run is killed at the kth write (a fresh world, no resume).
func (h *crashHarness) dies(k int) bool {
	w, err := h.world()
	if err != nil {
		h.t.Fatal(err)
	}
	defer w.close()
	_, err = w.run(fmt.Sprintf("%s=%d", crashWrite, k))
	if err == nil {
		return false
	}
	if !errors.Is(err, errKilled) {
		h.t.Fatalf("write probe %d: %v", k, err)
	}
	return true
}

// crashAt exercises one crash point: kill, resume until done, compare.
func (h *crashHarness) crashAt(env string, k int) (res crashResult) {
	res = crashResult{env: env, k: k}
	w, err := h.world()
	if err != nil {
		res.problem = err.Error()
		return res
	}
	defer w.close()
	runID, err := w.run(fmt.Sprintf("%s=%d", env, k))
	switch {
	case err == nil:
		// The run ended before the point: nothing to resume.
	case errors.Is(err, errKilled):
		res.killed = true
	default:
		res.problem = fmt.Sprintf("run: %v", err)
		return res
	}
	if res.killed && env == crashStart {
		// Killed before the run existed: there is nothing to resume, and nothing may
		// keep the next attempt (a new run) from starting and doing the whole release.
		if runID != "" {
			res.problem = fmt.Sprintf("a run killed before its first event left run %s", runID)
			return res
		}
		if runID, err = w.run(""); err != nil {
			res.problem = fmt.Sprintf("the next run after a kill before the first event: %v", err)
			return res
		}
		res.killed, res.restarted = false, true
	}
	runDir := filepath.Join(w.dir, "runs", runID)
	sessions := 1
	if res.killed {
		// A process killed between the run's first event and its session's has no
		// session in the report: it did nothing else.
		prior, _, err := engine.ReadJournal(runDir)
		if err != nil {
			res.problem = fmt.Sprintf("journal after the crash: %v", err)
			return res
		}
		sessions = len(prior.Sessions)
	}
	for res.killed {
		prior, _, err := engine.ReadJournal(runDir)
		if err != nil {
			res.problem = fmt.Sprintf("journal after the crash: %v", err)
			return res
		}
		if prior.Status == engine.RunSucceeded {
			break // killed after the run's last event: nothing left to do
		}
		if res.resumes == 3 {
			res.problem = fmt.Sprintf("still %s after %d resumes", prior.Status, res.resumes)
			return res
		}
		args := []string{"resume", runID, "--sandbox", w.conns}
		if prior.Status == engine.RunWaiting && strings.Contains(prior.Reason, "may already have been") {
			// An announcement whose delivery is unknown: the person looks at the channel
			// (the sandbox's state) and says whether it arrived.
			answer, err := w.person(prior, prior.FailedStep)
			if err != nil {
				res.problem = err.Error()
				return res
			}
			args = append(args, answer...)
			if out, err := w.runbook("", args...); err != nil && !isExit(err) {
				res.problem = fmt.Sprintf("resume with the person's answer: %v\n%s", err, out)
				return res
			}
			res.asked++
			if res.asked > 4 {
				res.problem = "asked about deliveries more than 4 times"
				return res
			}
			continue
		}
		if prior.Status == engine.RunFailed || prior.Status == engine.RunRolledBack {
			args = append(args, "--force")
		}
		t0 := time.Now()
		out, err := w.runbook("", args...)
		if res.resumes == 0 {
			res.resume = time.Since(t0)
		}
		res.resumes++
		if err != nil && !isExit(err) {
			res.problem = fmt.Sprintf("resume: %v\n%s", err, out)
			return res
		}
	}
	sessions += res.resumes + res.asked
	if p := checkReport(filepath.Join(runDir, "report.json"), sessions); p != "" {
		res.problem = p
	}
	got, err := w.state()
	if err != nil {
		res.problem = err.Error()
	} else if got != h.ref {
		res.diff = diffLines(h.ref, got)
	}
	return res
}

func (h *crashHarness) record(r crashResult) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.results = append(h.results, r)
	if r.diff != "" || r.problem != "" || r.resumes > 1 {
		name := fmt.Sprintf("%s=%d", r.env, r.k)
		msg := ""
		if r.resumes > 1 {
			msg += fmt.Sprintf("\n  needed %d resumes (a resume after a crash should finish the run)", r.resumes)
		}
		if r.problem != "" {
			msg += "\n  " + r.problem
		}
		if r.diff != "" {
			msg += "\n  the world differs from the uninterrupted run's (- reference, + after crash and resume):\n" + r.diff
		}
		h.t.Errorf("%s: crash at %s:%s", h.pb.name, name, msg)
	}
}

// summary logs the figures: crash points, duplicates, resume times.
func (h *crashHarness) summary() {
	h.mu.Lock()
	defer h.mu.Unlock()
	byEnv := map[string][]int{}
	var times []time.Duration
	bad, killed, asked := 0, 0, 0
	for _, r := range h.results {
		if r.killed || r.restarted {
			killed++
		}
		if r.asked > 0 {
			asked++
		}
		if r.diff != "" || r.problem != "" || r.resumes > 1 {
			bad++
		}
		byEnv[r.env] = append(byEnv[r.env], r.k)
		if r.resumes > 0 {
			times = append(times, r.resume)
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	var sum time.Duration
	for _, d := range times {
		sum += d
	}
	line := fmt.Sprintf("CRASH %s: %d crash points (%d before the first event, %d after events of %d, %d after writes), %d killed, %d with a difference or failed check, %d where a person was asked whether a message arrived",
		h.pb.name, len(h.results), len(byEnv[crashStart]), len(byEnv[crashEvent]), h.events, len(byEnv[crashWrite]), killed, bad, asked)
	if n := len(times); n > 0 {
		line += fmt.Sprintf("; resume wall time median %s, mean %s, max %s over %d resumes",
			times[n/2].Round(time.Millisecond), (sum / time.Duration(n)).Round(time.Millisecond), times[n-1].Round(time.Millisecond), n)
	}
	h.t.Log(line)
}

// A world is one sandbox process with its own state directory.
type world struct {
	h     *crashHarness
	dir   string
	conns string
	cmd   *exec.Cmd
	names map[string]string // "127.0.0.1:port" -> service name, to compare worlds
}

var errKilled = errors.New("killed by SIGKILL")

// world starts a fresh sandbox and waits for its connections file.
func (h *crashHarness) world() (*world, error) {
	dir, err := os.MkdirTemp("", "runbook-crash-")
	if err != nil {
		return nil, err
	}
	w := &world{h: h, dir: dir, conns: filepath.Join(dir, "sandbox", h.pb.name, "connections.json")}
	args := append([]string{"--state-dir", dir, "sandbox", h.playbook()}, setArgs(h.pb.sets)...)
	w.cmd = exec.Command(h.bin, args...)
	var out bytes.Buffer
	w.cmd.Stdout, w.cmd.Stderr = &out, &out
	if err := w.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- w.cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, err := os.ReadFile(w.conns); err == nil && json.Valid(b) {
			var f rehearsal.ConnectionsFile
			json.Unmarshal(b, &f)
			w.names = map[string]string{hostOf(f.Control): "control", hostOf(f.Web): "web"}
			for name, c := range f.Connections {
				if c.URL != "" {
					w.names[hostOf(c.URL)] = name
				}
			}
			return w, nil
		}
		select {
		case err := <-exited:
			os.RemoveAll(dir)
			return nil, fmt.Errorf("sandbox exited: %v\n%s", err, out.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			w.close()
			return nil, fmt.Errorf("sandbox: no %s after 60s", w.conns)
		}
	}
}

func hostOf(u string) string {
	u = strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://")
	if i := strings.IndexByte(u, '/'); i >= 0 {
		u = u[:i]
	}
	return u
}

func setArgs(sets []string) []string {
	var a []string
	for _, s := range sets {
		a = append(a, "--set", s)
	}
	return a
}

func (w *world) close() {
	if w.cmd.Process != nil {
		w.cmd.Process.Kill()
	}
	os.RemoveAll(w.dir)
}

// run starts a run of the playbook against the sandbox with an optional crash point
// (ENV=N) and returns its id; errKilled when it died by SIGKILL.
func (w *world) run(crash string) (string, error) {
	args := append([]string{"run", w.h.playbook(), "--sandbox", w.conns}, setArgs(w.h.pb.sets)...)
	out, err := w.runbook(crash, args...)
	ents, _ := os.ReadDir(filepath.Join(w.dir, "runs"))
	if len(ents) == 0 && strings.HasPrefix(crash, crashStart+"=") && signalled(err) {
		return "", errKilled
	}
	if len(ents) != 1 {
		return "", fmt.Errorf("%d run directories after the run (%v)\n%s", len(ents), err, out)
	}
	if signalled(err) {
		return ents[0].Name(), errKilled
	}
	if err != nil {
		return ents[0].Name(), fmt.Errorf("%v\n%s", err, out)
	}
	return ents[0].Name(), nil
}

// signalled says whether the process was killed with SIGKILL.
func signalled(err error) bool {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true
		}
	}
	return false
}

// runbook runs the binary with the world's state directory; crash is ENV=N or "".
func (w *world) runbook(crash string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.h.bin, append([]string{"--state-dir", w.dir, "--quiet"}, args...)...)
	env := []string{}
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "RUNBOOK_CRASH_") && !strings.HasPrefix(e, "RUNBOOK_STATE_DIR=") {
			env = append(env, e)
		}
	}
	if crash != "" {
		env = append(env, crash)
	}
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func isExit(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && ee.Exited()
}

var loopback = regexp.MustCompile(`127\.0\.0\.1:\d+`)

// person answers a step waiting because a message may or may not have been delivered:
// they look in the channel the wait names (the sandbox's chat or mailbox) for the whole
// message: --skip when it is there, --confirm to send it when it is not.
func (w *world) person(prior *engine.Report, step string) ([]string, error) {
	sr := prior.Step(step)
	if sr == nil {
		return nil, fmt.Errorf("waiting at unknown step %q", step)
	}
	param := func(keys ...string) string {
		for _, k := range keys {
			if v, ok := sr.Params[k].(string); ok && v != "" {
				return v
			}
		}
		return ""
	}
	raw, err := w.state()
	if err != nil {
		return nil, err
	}
	var st rehearsal.State
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		return nil, fmt.Errorf("sandbox state: %v", err)
	}
	// The state shows chat posts as the simulator received them (Markdown, links to
	// the simulators rewritten); compare words, not formatting.
	norm := func(s string) string {
		s = loopback.ReplaceAllString(s, "simulator") // as the state shows links to simulators
		s = strings.NewReplacer("*", "", "_", "", "`", "", "\\n", " ").Replace(s)
		return strings.Join(strings.Fields(s), " ")
	}
	arrived := false
	switch {
	case strings.Contains(prior.Reason, "the chat message"):
		// A Slack hook receives Markdown links as <url|text>; Mattermost keeps Markdown.
		text := param("text", "message")
		forms := []string{norm(text), norm(markdownLink.ReplaceAllString(text, "<$2|$1>"))}
		for _, post := range st.Chat {
			for _, want := range forms {
				arrived = arrived || (want != "" && strings.Contains(norm(post), want))
			}
		}
	case strings.Contains(prior.Reason, "e-mail"):
		want := param("subject")
		for _, subject := range st.Mail {
			arrived = arrived || (want != "" && subject == want)
		}
	default:
		return nil, fmt.Errorf("waiting for an answer the person does not know: %s", prior.Reason)
	}
	if arrived {
		return []string{"--skip", step, "--reason", "it arrived"}, nil
	}
	return []string{"--confirm", step}, nil
}

var markdownLink = regexp.MustCompile(`\[([^\]]+)\]\(([^)]+)\)`)

// state reads the sandbox's GET /state and writes it with each service's address
// replaced by its name, so that worlds of different sandbox processes compare.
func (w *world) state() (string, error) {
	var ctl string
	for host, name := range w.names {
		if name == "control" {
			ctl = "http://" + host + "/state"
		}
	}
	resp, err := http.Get(ctl)
	if err != nil {
		return "", fmt.Errorf("sandbox state: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("sandbox state: %s %v", resp.Status, err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return "", fmt.Errorf("sandbox state: %v", err)
	}
	b, _ = json.MarshalIndent(v, "", "  ")
	return loopback.ReplaceAllStringFunc(string(b), func(h string) string {
		if n, ok := w.names[h]; ok {
			return "<" + n + ">"
		}
		return "<127.0.0.1>"
	}), nil
}

func countLines(t *testing.T, path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}

// checkReport says what is wrong with a finished run's report, or "".
func checkReport(path string, sessions int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("report: %v", err)
	}
	var r struct {
		Status   string            `json:"status"`
		Sessions []json.RawMessage `json:"sessions"`
		Steps    []struct {
			ID, Status, Section string
		} `json:"steps"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Sprintf("report.json is not valid JSON: %v", err)
	}
	var bad []string
	if r.Status != "succeeded" {
		bad = append(bad, "status "+r.Status)
	}
	if len(r.Sessions) != sessions {
		bad = append(bad, fmt.Sprintf("%d sessions, want %d", len(r.Sessions), sessions))
	}
	for _, s := range r.Steps {
		ok := s.Status == "succeeded" || s.Status == "skipped"
		if s.Section == "on_failure" {
			ok = s.Status == "pending" || s.Status == "skipped"
		}
		if !ok {
			bad = append(bad, fmt.Sprintf("step %s (%s) %s", s.ID, s.Section, s.Status))
		}
	}
	if len(bad) > 0 {
		return "report: " + strings.Join(bad, ", ")
	}
	return ""
}

// diffLines shows the lines only in a (-) and only in b (+), in order; enough to name a
// duplicated effect.
func diffLines(a, b string) string {
	count := func(s string) map[string]int {
		m := map[string]int{}
		for _, l := range strings.Split(s, "\n") {
			m[l]++
		}
		return m
	}
	ca, cb := count(a), count(b)
	var out []string
	for _, l := range strings.Split(a, "\n") {
		if ca[l] > cb[l] {
			out = append(out, "    - "+strings.TrimSpace(l))
			ca[l]--
		}
	}
	ca = count(a)
	for _, l := range strings.Split(b, "\n") {
		if cb[l] > ca[l] {
			out = append(out, "    + "+strings.TrimSpace(l))
			cb[l]--
		}
	}
	if len(out) == 0 {
		return "    (same lines, different order)"
	}
	return strings.Join(out, "\n")
}
