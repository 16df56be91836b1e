package engine_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
)

// readStep is test.echo declared read-only: it changes nothing outside the run.
type readStep struct {
	Message string `json:"message" desc:"text to echo" required:"true"`
}

func (s *readStep) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	return engine.Plan{Action: "echo " + sc.Show("message", s.Message), NoChange: true}, nil
}

func (s *readStep) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	sc.Logf("echo %s", s.Message)
	return engine.Outputs{"text": s.Message, "length": len(s.Message)}, nil
}

// httpLikeStep reads or writes depending on its method, like http.check.
type httpLikeStep struct {
	Method string `json:"method" desc:"GET reads, anything else writes" default:"GET"`
}

func (s *httpLikeStep) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	return engine.Plan{Action: s.Method}, nil
}

func (s *httpLikeStep) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	return engine.Outputs{}, nil
}

func init() {
	engine.Register(engine.StepType{Name: "test.read", Summary: "echo a message, read-only", ReadOnly: true,
		New:     func() engine.Step { return &readStep{} },
		Outputs: []engine.Output{{Name: "text", Type: engine.TypeString}, {Name: "length", Type: engine.TypeInt}, {Name: "labels", Type: engine.ListOf(engine.TypeString)}}})
	engine.Register(engine.StepType{Name: "test.http", Summary: "read with GET, write otherwise",
		ReadOnlyWith: func(p map[string]any) bool { m, ok := p["method"]; return !ok || m == "GET" },
		New:          func() engine.Step { return &httpLikeStep{} }})
}

// syncLog is a MemStore that records which appends were asked to be durable.
type syncLog struct {
	engine.MemStore
	mu    sync.Mutex
	lines []string
}

func (s *syncLog) Append(ev *engine.Event, sync bool) error {
	s.mu.Lock()
	line := string(ev.Kind) + " " + ev.Step
	if ev.Status != "" {
		line += " " + ev.Status
	}
	if sync {
		line += " SYNC"
	}
	s.lines = append(s.lines, line)
	s.mu.Unlock()
	return s.MemStore.Append(ev, sync)
}

// A step that writes outside has its intent (its start) fsynced before it begins, and its
// end after; a read-only step's events and a skipped step's end wait for the next fsync;
// the run's end is fsynced.
func TestWriteAheadWhereItMatters(t *testing.T) {
	pb, err := engine.Parse("durable.yaml", []byte(`runbook: v1
product: durable
steps:
  - {id: w1, type: test.echo, with: {message: one}}
  - {id: r1, type: test.read, with: {message: two}}
  - {id: k1, type: test.echo, when: "false", with: {message: never}}
  - {id: g1, type: test.http}
  - {id: p1, type: test.http, with: {method: POST}}
  - {id: w2, type: test.echo, with: {message: three}}
`))
	if err != nil {
		t.Fatal(err)
	}
	store := &syncLog{}
	rep, err := engine.Execute(context.Background(), pb, engine.Options{Store: store, Clock: engine.NewFakeClock(time.Unix(0, 0)), Seed: 1, Actor: "t"})
	if err != nil || rep.Status != engine.RunSucceeded {
		t.Fatalf("run: %v %v", err, rep.Status)
	}
	var steps []string
	for _, l := range store.lines {
		if !strings.HasPrefix(l, "log ") {
			steps = append(steps, l)
		}
	}
	want := []string{
		"run  SYNC", "session  SYNC",
		"start w1 SYNC", "end w1 succeeded SYNC", // the intent before the write, the result after
		"start r1", "end r1 succeeded", // read-only: no fsync of its own
		"end k1 skipped",               // nothing ran
		"start g1", "end g1 succeeded", // read-only by its parameters
		"start p1 SYNC", "end p1 succeeded SYNC", // a write by its parameters
		"start w2 SYNC", "end w2 succeeded SYNC",
		"run_end  succeeded SYNC",
	}
	if got := strings.Join(steps, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("appends:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

// A run that ends on a read-only step still ends durably: the run's end is fsynced,
// and with it every event before it.
func TestReadOnlyRunEndsDurable(t *testing.T) {
	dir := t.TempDir()
	pb, err := engine.Parse("ro.yaml", []byte("runbook: v1\nproduct: ro\nsteps:\n  - {id: r1, type: test.read, with: {message: a}}\n  - {id: r2, type: test.read, with: {message: b}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	fs, err := engine.OpenFileStore(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := engine.Execute(context.Background(), pb, engine.Options{Store: fs, Clock: engine.NewFakeClock(time.Unix(0, 0)), Seed: 1, Actor: "t"})
	if err != nil || rep.Status != engine.RunSucceeded {
		t.Fatalf("run: %v %v", err, rep.Status)
	}
	// Read the journal without closing the store: what is on disk is what a crash now
	// would leave.
	got, evs, err := engine.ReadJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != engine.RunSucceeded || evs[len(evs)-1].Kind != engine.EventRunEnd {
		t.Errorf("journal on disk ends %s (%d events), want the run's end", got.Status, len(evs))
	}
	fs.Close()
}

// An unsynced append does not stay only in memory for long: the FileStore syncs it within
// its delay (200 ms) even when no synced append follows, as during a long read-only wait.
func TestFileStoreSyncsUnsyncedSoon(t *testing.T) {
	dir := t.TempDir()
	fs, err := engine.OpenFileStore(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	if err := fs.Append(&engine.Event{Kind: engine.EventRun, Header: &engine.Report{RunID: "r"}}, true); err != nil {
		t.Fatal(err)
	}
	if err := fs.Append(&engine.Event{Kind: engine.EventKV, Step: "wait", Key: "until", Value: []byte(`"2027-01-01T00:00:00Z"`)}, false); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, evs, err := engine.ReadJournal(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the unsynced append is not on disk after 5s (%d events)", len(evs))
		}
	}
}
