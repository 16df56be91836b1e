package engine_test

// Benchmarks of the engine's own cost, so it stays invisible next to the network calls
// a release makes (issue 2, "Performance"). Figures and commands: bench/README.md.
//
//	go test -run '^$' -bench . -benchmem -count 6 ./engine/ | tee new.txt
//
// Each generated step has a `when:` condition and a templated parameter that read the
// previous step's output, so a step pays for a condition, a rendering, a parameter
// decode and the journal/report update, as a real step does; the step itself (test.echo)
// does nothing but log one line.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
	_ "github.com/cessda/runbook/steps/httpcheck"
	_ "github.com/cessda/runbook/steps/sleep"
)

// benchSizes are the playbook lengths the per-step cost must stay flat across.
var benchSizes = []int{10, 1000, 10000}

// genEchoPlaybook writes an n-step playbook of test.echo steps, each reading the step
// before it in its condition and in a templated parameter.
func genEchoPlaybook(n int) []byte {
	var b strings.Builder
	b.Grow(n * 140)
	fmt.Fprintf(&b, "runbook: v1\nproduct: bench\ninputs:\n  version: {type: string, default: 1.2.3}\nsteps:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - id: s%05d\n    type: test.echo\n", i)
		if i == 0 {
			b.WriteString("    with: {message: \"v${{ inputs.version }}\"}\n")
			continue
		}
		fmt.Fprintf(&b, "    when: steps.s%05d.outputs.length > 0\n", i-1)
		fmt.Fprintf(&b, "    with: {message: \"n${{ steps.s%05d.outputs.length }}\"}\n", i-1)
	}
	return []byte(b.String())
}

var (
	benchPBMu sync.Mutex
	benchPBs  = map[int]*engine.Playbook{}
)

// benchPlaybook parses (once per size) the generated playbook.
func benchPlaybook(b *testing.B, n int) *engine.Playbook {
	benchPBMu.Lock()
	defer benchPBMu.Unlock()
	if pb := benchPBs[n]; pb != nil {
		return pb
	}
	pb, err := engine.Parse(fmt.Sprintf("bench%d.yaml", n), genEchoPlaybook(n))
	if err != nil {
		b.Fatal(err)
	}
	benchPBs[n] = pb
	return pb
}

// countingStore wraps a Store to count report writes and their size, for stores (the
// FileStore) that do not count them themselves.
type countingStore struct {
	engine.Store
	writes    int
	lastBytes int
}

func (c *countingStore) WriteReport(doc []byte) error {
	c.writes++
	c.lastBytes = len(doc)
	return c.Store.WriteReport(doc)
}

// discardStore keeps nothing: it isolates the engine's cost from the MemStore's JSON
// copy of each event.
type discardStore struct {
	writes    int
	lastBytes int
}

func (d *discardStore) Append(ev *engine.Event, sync bool) error { return nil }
func (d *discardStore) WriteReport(doc []byte) error {
	d.writes++
	d.lastBytes = len(doc)
	return nil
}
func (d *discardStore) Events() ([]*engine.Event, error) { return nil, nil }
func (d *discardStore) Close() error                     { return nil }

// runOnce executes the playbook once and checks that every step succeeded.
func runOnce(b *testing.B, pb *engine.Playbook, in map[string]any, store engine.Store, interval time.Duration) {
	rep, err := engine.Execute(context.Background(), pb, engine.Options{
		Inputs: in, Store: store, Clock: engine.NewFakeClock(time.Unix(0, 0)), Seed: 1, Actor: "bench", RunID: "bench",
		ReportInterval: interval,
	})
	if err != nil {
		b.Fatal(err)
	}
	if rep.Status != engine.RunSucceeded {
		b.Fatalf("run %s: %s", rep.Status, rep.Reason)
	}
	if n := len(rep.StepsBy(engine.StepSucceeded)); n != len(pb.Steps) {
		b.Fatalf("%d of %d steps succeeded", n, len(pb.Steps))
	}
}

// benchEngine runs an n-step playbook b.N times on stores from newStore and reports the
// cost per step, and the report writes and size per run. interval is the report's
// rewrite interval (0: the engine's default).
func benchEngine(b *testing.B, n int, interval time.Duration, newStore func(b *testing.B) (engine.Store, func() (writes, bytes int))) {
	pb := benchPlaybook(b, n)
	in, err := pb.ResolveInputs(nil)
	if err != nil {
		b.Fatal(err)
	}
	var writes, size int
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		store, count := newStore(b)
		runOnce(b, pb, in, store, interval)
		store.Close()
		w, s := count()
		writes += w
		size = s
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	runtime.ReadMemStats(&ms1)
	steps := float64(b.N * n)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/steps, "ns/step")
	b.ReportMetric(float64(cpu.Nanoseconds())/steps, "cpu-ns/step")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/steps, "allocs/step")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/steps, "B/step")
	b.ReportMetric(float64(writes)/float64(b.N), "reportwrites/run")
	b.ReportMetric(float64(size), "report_bytes")
}

// cpuTime is the process's user+system CPU time. On a shared machine wall time per step
// swings with other load; CPU time (including the GC's) is the steadier measure of cost.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEngine is the engine's overhead per no-op step in memory: MemStore (which
// copies every event through JSON, as a file would) and FakeClock.
func BenchmarkEngine(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("store=mem/steps=%d", n), func(b *testing.B) {
			benchEngine(b, n, 0, func(b *testing.B) (engine.Store, func() (int, int)) {
				s := &engine.MemStore{}
				return s, func() (int, int) { return s.Writes, len(s.Report) }
			})
		})
	}
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("store=discard/steps=%d", n), func(b *testing.B) {
			benchEngine(b, n, 0, func(b *testing.B) (engine.Store, func() (int, int)) {
				s := &discardStore{}
				return s, func() (int, int) { return s.writes, s.lastBytes }
			})
		})
	}
	// The report is rewritten on a wall-clock timer, and each rewrite costs O(steps):
	// with the timer out of the way, what is left of the cost at 10,000 steps.
	b.Run("store=mem/interval=1h/steps=10000", func(b *testing.B) {
		benchEngine(b, 10000, time.Hour, func(b *testing.B) (engine.Store, func() (int, int)) {
			s := &engine.MemStore{}
			return s, func() (int, int) { return s.Writes, len(s.Report) }
		})
	})
}

// BenchmarkEngineFileStore is the same run on the real FileStore: an fsynced journal
// append at every step change and atomic (temp, fsync, rename) report writes.
func BenchmarkEngineFileStore(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("store=file/steps=%d", n), func(b *testing.B) {
			if n > 1000 && testing.Short() {
				b.Skip("10,000 fsynced steps take a while; drop -short to run")
			}
			benchEngine(b, n, 0, func(b *testing.B) (engine.Store, func() (int, int)) {
				fs, err := engine.OpenFileStore(b.TempDir(), "")
				if err != nil {
					b.Fatal(err)
				}
				c := &countingStore{Store: fs}
				return c, func() (int, int) { return c.writes, c.lastBytes }
			})
		})
	}
}

// BenchmarkWorkload is bench/steps.sh's workloads in process, on the real FileStore in a
// temporary directory (on disk): no-op steps (sleep 0s), half of them skipped by when:,
// and http.check GETs of a local server. For profiles of a step's cost:
//
//	go test -run '^$' -bench 'BenchmarkWorkload/noop' -cpuprofile cpu.prof ./engine/
//	go tool pprof -top cpu.prof
func BenchmarkWorkload(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer srv.Close()
	const n = 1000
	for _, w := range []string{"noop", "skip", "http"} {
		var src strings.Builder
		fmt.Fprintf(&src, "runbook: v1\nproduct: bench\nsteps:\n")
		for i := 1; i <= n; i++ {
			fmt.Fprintf(&src, "  - id: s%05d\n", i)
			if w == "skip" && i%2 == 0 {
				src.WriteString("    when: \"false\"\n")
			}
			if w == "http" {
				fmt.Fprintf(&src, "    type: http.check\n    with: {url: %q}\n", srv.URL)
			} else {
				src.WriteString("    type: sleep\n    with: {duration: 0s}\n")
			}
		}
		pb, err := engine.Parse(w+".yaml", []byte(src.String()))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("%s/steps=%d", w, n), func(b *testing.B) {
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			for i := 0; i < b.N; i++ {
				fs, err := engine.OpenFileStore(b.TempDir(), "")
				if err != nil {
					b.Fatal(err)
				}
				rep, err := engine.Execute(context.Background(), pb, engine.Options{Store: fs, Seed: 1, Actor: "bench", RunID: "bench"})
				if err != nil || rep.Status != engine.RunSucceeded {
					b.Fatalf("run: %v %v %s", err, rep.Status, rep.Reason)
				}
				fs.Close()
			}
			b.StopTimer()
			runtime.ReadMemStats(&ms1)
			steps := float64(b.N * n)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/steps, "ns/step")
			b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/steps, "allocs/step")
			b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/steps, "B/step")
		})
	}
}

// BenchmarkValidate is validation (parse, check, compile every expression) of the
// generated playbook, in process.
func BenchmarkValidate(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		src := genEchoPlaybook(n)
		b.Run(fmt.Sprintf("steps=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				if _, err := engine.Parse("bench.yaml", src); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/step")
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N*n), "cpu-ns/step")
		})
	}
}

// aliasBomb is a "billion laughs" document: levels of ten aliases to the level before,
// expanding to 10^levels values.
func aliasBomb(levels int) []byte {
	var b strings.Builder
	b.WriteString("runbook: v1\nproduct: bomb\nvars:\n  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i <= levels; i++ {
		fmt.Fprintf(&b, "  l%d: &l%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", i-1), 10), ", "))
	}
	b.WriteString("steps:\n  - id: boom\n    type: test.echo\n    with: {message: hi}\n")
	return []byte(b.String())
}

// BenchmarkValidateAliasBomb is how long validation takes to refuse an alias bomb.
func BenchmarkValidateAliasBomb(b *testing.B) {
	for _, levels := range []int{6, 9} {
		src := aliasBomb(levels)
		b.Run(fmt.Sprintf("levels=%d", levels), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				_, err := engine.Parse("bomb.yaml", src)
				if err == nil || !strings.Contains(err.Error(), "alias bomb") {
					b.Fatalf("the bomb was not refused as one: %v", err)
				}
			}
		})
	}
}

// TestReportNotRewrittenPerStep checks that a long run rewrites its report document a
// bounded number of times (at the start, on a timer, at the end), not once per step:
// rewriting a growing document per step would make a long run quadratic.
func TestReportNotRewrittenPerStep(t *testing.T) {
	const n = 1000
	pb, err := engine.Parse("bench.yaml", genEchoPlaybook(n))
	if err != nil {
		t.Fatal(err)
	}
	in, err := pb.ResolveInputs(nil)
	if err != nil {
		t.Fatal(err)
	}
	const interval = 200 * time.Millisecond
	store := &engine.MemStore{}
	start := time.Now()
	rep, err := engine.Execute(context.Background(), pb, engine.Options{Inputs: in, Store: store, Clock: engine.NewFakeClock(time.Unix(0, 0)), Seed: 1, ReportInterval: interval})
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if rep.Status != engine.RunSucceeded {
		t.Fatalf("run %s: %s", rep.Status, rep.Reason)
	}
	// run header, session start and run end flush; the timer adds at most one per interval.
	limit := 3 + int(elapsed/interval) + 1
	t.Logf("%d steps in %s: %d report writes, last %d bytes", n, elapsed, store.Writes, len(store.Report))
	if store.Writes > limit {
		t.Errorf("%d report writes for %d steps in %s; want at most %d (3 + one per %s)", store.Writes, n, elapsed, limit, interval)
	}
}
