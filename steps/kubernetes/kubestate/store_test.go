package kubestate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/steps/kubernetes/kubestate"
	"github.com/cessda/runbook/steps/kubernetes/kubestate/kubestatefake"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

type echoStep struct {
	Message string `json:"message" desc:"text to echo" required:"true"`
}

var echoRuns atomic.Int64

func (s *echoStep) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	return engine.Plan{Action: "echo " + sc.Show("message", s.Message)}, nil
}

func (s *echoStep) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	echoRuns.Add(1)
	sc.Logf("echo %s", s.Message)
	return engine.Outputs{"text": s.Message}, nil
}

type gateStep struct{}

func (s *gateStep) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	return engine.Plan{Action: "wait for a person"}, nil
}

func (s *gateStep) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	var c engine.Confirmation
	if sc.Recall("confirmation", &c) && c.Answer == "yes" {
		return engine.Outputs{"by": c.By}, nil
	}
	return nil, engine.Waiting("the service owner has not answered")
}

func init() {
	engine.Register(engine.StepType{Name: "kubestate_test.echo", Summary: "echo a message", New: func() engine.Step { return &echoStep{} },
		Outputs: []engine.Output{{Name: "text", Type: engine.TypeString}}})
	engine.Register(engine.StepType{Name: "kubestate_test.gate", Summary: "a gate", Gate: true, New: func() engine.Step { return &gateStep{} },
		Outputs: []engine.Output{{Name: "by", Type: engine.TypeString}}})
}

const playbook = `runbook: v1
product: cdc
steps:
  - id: one
    type: kubestate_test.echo
    with: {message: "one"}
  - id: gate
    type: kubestate_test.gate
  - id: two
    type: kubestate_test.echo
    with: {message: "two after ${{ steps.gate.outputs.by }}"}
`

func open(t *testing.T, cs kubernetes.Interface, run string) *kubestate.Store {
	t.Helper()
	s, err := kubestate.Open(context.Background(), cs, ns, run)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStoreRoundTripThroughEngine: a run stops waiting at a gate; a fresh Store opened on
// the same ConfigMaps (another machine) resumes it: the first step is not run again, the
// report has both sessions, the run is listed with its status, and the release lock,
// reading the run's status from its report, keeps the product while the run waits and
// frees it when the run is over.
func TestStoreRoundTripThroughEngine(t *testing.T) {
	c := kubestatefake.New()
	cs := c.Clientset()
	pb, err := engine.Parse("cdc.yaml", []byte(playbook))
	if err != nil {
		t.Fatal(err)
	}
	in, err := pb.ResolveInputs(nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const run = "cdc-20260302-090000-abcdef"
	lock := kubestate.NewLock(cs, ns)
	lock.Host = "ci-agent-1"
	release, err := lock.Acquire(ctx, "cdc", run, "alice", false)
	if err != nil {
		t.Fatal(err)
	}
	before := echoRuns.Load()
	s1 := open(t, cs, run)
	rep, err := engine.Execute(ctx, pb, engine.Options{Inputs: in, Store: s1, Actor: "alice", RunID: run, Clock: engine.NewFakeClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))})
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	if rep.Status != engine.RunWaiting {
		t.Fatalf("first session: %s %s", rep.Status, rep.Reason)
	}
	if err := release(ctx); err != nil {
		t.Fatal(err)
	}
	if h := holderOf(getLease(t, cs, "cdc")); h != run {
		t.Fatalf("a waiting run gave up its product: holder %q", h)
	}
	if runs, err := kubestate.ListRuns(ctx, cs, ns, "cdc"); err != nil || len(runs) != 1 || runs[0].RunID != run || runs[0].Status != engine.RunWaiting {
		t.Fatalf("runs of cdc: %+v %v", runs, err)
	}

	// Another machine: a fresh lock and store on the same namespace.
	lock2 := kubestate.NewLock(cs, ns)
	lock2.Host = "laptop"
	release2, err := lock2.Acquire(ctx, "cdc", run, "bob", false)
	if err != nil {
		t.Fatalf("resume's lock: %v", err)
	}
	s2 := open(t, cs, run)
	rep, err = engine.Resume(ctx, pb, engine.Options{Store: s2, Actor: "bob", Clock: engine.NewFakeClock(time.Date(2026, 3, 3, 9, 0, 0, 0, time.UTC)),
		Confirm: map[string]engine.Confirmation{"gate": {By: "owner-a", At: time.Date(2026, 3, 3, 8, 0, 0, 0, time.UTC), Answer: "yes"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if rep.Status != engine.RunSucceeded {
		t.Fatalf("resumed: %s %s", rep.Status, rep.Reason)
	}
	if got := echoRuns.Load() - before; got != 2 {
		t.Errorf("echo ran %d times; want 2 (step one must not run again)", got)
	}
	doc, err := kubestate.ReadReport(ctx, cs, ns, run)
	if err != nil {
		t.Fatal(err)
	}
	var stored engine.Report
	if err := json.Unmarshal(doc, &stored); err != nil {
		t.Fatal(err)
	}
	if stored.Status != engine.RunSucceeded || len(stored.Sessions) != 2 || stored.Sessions[0].Actor != "alice" || stored.Sessions[1].Actor != "bob" {
		t.Errorf("stored report: status %s, sessions %+v", stored.Status, stored.Sessions)
	}
	if got := stored.Steps[2].Outputs["text"]; got != "two after owner-a" {
		t.Errorf("two = %v", got)
	}
	if err := release2(ctx); err != nil {
		t.Fatal(err)
	}
	if h := holderOf(getLease(t, cs, "cdc")); h != "" {
		t.Errorf("a finished run still holds its product: %q", h)
	}
	evs, err := open(t, cs, run).Events()
	if err != nil {
		t.Fatal(err)
	}
	sessions := 0
	for _, ev := range evs {
		if ev.Kind == "session" {
			sessions++
		}
	}
	if evs[0].Kind != "run" || evs[len(evs)-1].Kind != "run_end" || sessions != 2 {
		t.Errorf("journal: first %s, last %s, %d sessions", evs[0].Kind, evs[len(evs)-1].Kind, sessions)
	}
	if cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, kubestate.ChunkName(run, 0), metav1.GetOptions{}); err != nil || cm.Labels["runbook.cessda.eu/product"] != "cdc" {
		t.Errorf("journal chunk labels: %v %v", cm, err)
	}
}

func logEvent(i, size int) *engine.Event {
	return &engine.Event{Kind: "log", Step: "s", Line: fmt.Sprintf("%06d %s", i, strings.Repeat("x", size))}
}

func chunks(t *testing.T, cs kubernetes.Interface, run string) []corev1.ConfigMap {
	t.Helper()
	list, err := cs.CoreV1().ConfigMaps(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "runbook.cessda.eu/part=journal,runbook.cessda.eu/run=" + run})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func checkEvents(t *testing.T, s *kubestate.Store, n int) {
	t.Helper()
	evs, err := s.Events()
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != n {
		t.Fatalf("%d events, want %d", len(evs), n)
	}
	for i, ev := range evs {
		if !strings.HasPrefix(ev.Line, fmt.Sprintf("%06d ", i)) {
			t.Fatalf("event %d out of order: %.20s", i, ev.Line)
		}
	}
}

// checkPacking checks that a journal of total bytes in n chunks of 4 KiB events fills
// each chunk before rolling over: none holds more than a chunk, none less than a chunk
// minus one event.
func checkPacking(t *testing.T, n, total int) {
	t.Helper()
	full, least := kubestate.DefaultChunkSize, kubestate.DefaultChunkSize-5<<10
	if n < (total+full-1)/full || n > total/least+1 {
		t.Errorf("%d chunks for a journal of %d bytes: want %d to %d chunks of at most %d bytes", n, total, (total+full-1)/full, total/least+1, full)
	}
}

// TestChunkRollover: a journal of more than 1 MiB spreads over ConfigMaps of at most the
// chunk size, reads back whole and in order, and a store opened later goes on appending.
func TestChunkRollover(t *testing.T) {
	c := kubestatefake.New()
	cs := c.Clientset()
	const run = "cdc-rollover"
	s := open(t, cs, run)
	n := 0
	for ; n < 300; n++ { // 300 × 4 KiB ≈ 1.2 MiB
		if err := s.Append(logEvent(n, 4096), n%7 == 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	items := chunks(t, cs, run)
	total := 0
	for _, cm := range items {
		size := 0
		for k, v := range cm.Data {
			size += len(k) + len(v)
		}
		total += size
		if size > kubestate.DefaultChunkSize {
			t.Errorf("%s holds %d bytes", cm.Name, size)
		}
	}
	if total < 1<<20 {
		t.Fatalf("journal of %d bytes: the test wants more than 1 MiB", total)
	}
	checkPacking(t, len(items), total)
	// A later process continues the journal.
	s2 := open(t, cs, run)
	for ; n < 400; n++ {
		if err := s2.Append(logEvent(n, 4096), true); err != nil {
			t.Fatal(err)
		}
	}
	checkEvents(t, s2, 400)
	checkEvents(t, open(t, cs, run), 400)
	items = chunks(t, cs, run)
	total = 0
	for _, cm := range items {
		for k, v := range cm.Data {
			total += len(k) + len(v)
		}
	}
	checkPacking(t, len(items), total)

	// An event bigger than a chunk gets one of its own; one bigger than a ConfigMap is refused.
	big := &engine.Event{Kind: "log", Step: "s", Line: fmt.Sprintf("%06d %s", n, strings.Repeat("y", 600<<10))}
	if err := s2.Append(big, true); err != nil {
		t.Fatalf("600 KiB event: %v", err)
	}
	n++
	err := s2.Append(&engine.Event{Kind: "log", Line: strings.Repeat("z", 2<<20)}, true)
	if err == nil || !strings.Contains(err.Error(), "more than a ConfigMap holds") {
		t.Fatalf("2 MiB event: %v", err)
	}
}

// TestBuffering: appends without sync are buffered; a synced append writes them in one
// request before it returns.
func TestBuffering(t *testing.T) {
	c := kubestatefake.New()
	s := open(t, c.Clientset(), "cdc-buffer")
	for i := 0; i < 10; i++ {
		if err := s.Append(logEvent(i, 10), false); err != nil {
			t.Fatal(err)
		}
	}
	if w := c.Writes("configmaps"); w != 0 {
		t.Fatalf("%d writes for unsynced appends", w)
	}
	if err := s.Append(logEvent(10, 10), true); err != nil {
		t.Fatal(err)
	}
	if w := c.Writes("configmaps"); w != 1 {
		t.Fatalf("%d writes for one synced append", w)
	}
	checkEvents(t, open(t, c.Clientset(), "cdc-buffer"), 11)
}

// TestDamagedJournal: a missing chunk (in the middle or at the end) and a torn batch are
// clear errors naming the ConfigMap, not a silently shorter run.
func TestDamagedJournal(t *testing.T) {
	setup := func(t *testing.T) (kubernetes.Interface, string) {
		c := kubestatefake.New()
		const run = "cdc-damaged"
		s := open(t, c.Clientset(), run)
		for i := 0; i < 300; i++ {
			if err := s.Append(logEvent(i, 4096), i%10 == 0 || i == 299); err != nil {
				t.Fatal(err)
			}
		}
		return c.Clientset(), run
	}
	ctx := context.Background()
	t.Run("middle chunk missing", func(t *testing.T) {
		cs, run := setup(t)
		cs.CoreV1().ConfigMaps(ns).Delete(ctx, kubestate.ChunkName(run, 1), metav1.DeleteOptions{})
		_, err := kubestate.Open(ctx, cs, ns, run)
		if err == nil || !strings.Contains(err.Error(), "runbook-cdc-damaged-journal-1 is missing") {
			t.Fatalf("open: %v", err)
		}
	})
	t.Run("last chunk missing", func(t *testing.T) {
		cs, run := setup(t)
		cs.CoreV1().ConfigMaps(ns).Delete(ctx, kubestate.ChunkName(run, 2), metav1.DeleteOptions{})
		_, err := kubestate.Open(ctx, cs, ns, run)
		if err == nil || !strings.Contains(err.Error(), "runbook-cdc-damaged-journal-2 is missing") {
			t.Fatalf("open: %v", err)
		}
	})
	t.Run("torn batch", func(t *testing.T) {
		cs, run := setup(t)
		s := open(t, cs, run)
		cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, kubestate.ChunkName(run, 1), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range cm.Data {
			cm.Data[k] = v[:len(v)/2+7] // mid-line
			break
		}
		cm.ResourceVersion = ""
		if _, err := cs.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		_, err = s.Events()
		if err == nil || !strings.Contains(err.Error(), "runbook-cdc-damaged-journal-1 key") || !strings.Contains(err.Error(), "damaged") {
			t.Fatalf("events: %v", err)
		}
	})
	t.Run("batch missing", func(t *testing.T) {
		cs, run := setup(t)
		s := open(t, cs, run)
		cm, _ := cs.CoreV1().ConfigMaps(ns).Get(ctx, kubestate.ChunkName(run, 0), metav1.GetOptions{})
		if _, ok := cm.Data["000000001.jsonl"]; !ok || len(cm.Data) < 3 {
			t.Fatalf("chunk 0 holds %d batches", len(cm.Data))
		}
		delete(cm.Data, "000000001.jsonl")
		cm.ResourceVersion = ""
		cs.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{})
		_, err := s.Events()
		if err == nil || !strings.Contains(err.Error(), "000000001.jsonl should be") {
			t.Fatalf("events: %v", err)
		}
	})
}

// TestTransientFaults: a 503 is retried; an answer lost after the write was made is
// recognised on the retry (409, then the batch found in place), with no duplicate event.
func TestTransientFaults(t *testing.T) {
	c := kubestatefake.New()
	s := open(t, c.Clientset(), "cdc-faults")
	if err := s.Append(logEvent(0, 10), true); err != nil {
		t.Fatal(err)
	}
	c.FailNext("patch", "configmaps", 1, fmt.Errorf("wrapped: %w", errServiceUnavailable()))
	if err := s.Append(logEvent(1, 10), true); err != nil {
		t.Fatalf("after a 503: %v", err)
	}
	c.LoseAnswerNext("patch", "configmaps", 1)
	if err := s.Append(logEvent(2, 10), true); err != nil {
		t.Fatalf("after a lost answer: %v", err)
	}
	c.LoseAnswerNext("create", "configmaps", 1)
	if err := s.WriteReport([]byte(`{"product":"cdc","status":"running"}`)); err != nil {
		t.Fatalf("report after a lost answer: %v", err)
	}
	checkEvents(t, s, 3)
	if err := s.Append(logEvent(3, 10), true); err != nil {
		t.Fatal(err)
	}
	checkEvents(t, open(t, c.Clientset(), "cdc-faults"), 4)
}

// TestSecondWriterConflicts: two processes writing one run's journal (no lock taken) do
// not interleave: the one behind gets a clear conflict.
func TestSecondWriterConflicts(t *testing.T) {
	c := kubestatefake.New()
	a := open(t, c.Clientset(), "cdc-two")
	if err := a.Append(logEvent(0, 10), true); err != nil {
		t.Fatal(err)
	}
	b := open(t, c.Clientset(), "cdc-two")
	if err := b.Append(logEvent(1, 20), true); err != nil {
		t.Fatal(err)
	}
	err := a.Append(logEvent(1, 10), true)
	if err == nil || !strings.Contains(err.Error(), "written by another process") {
		t.Fatalf("stale writer: %v", err)
	}
	checkEvents(t, open(t, c.Clientset(), "cdc-two"), 2)
}

// TestStaleWriterRollover: a writer behind whose next batch does not fit its (stale) view
// of the current chunk is refused with the conflict too, rather than creating the next
// chunk numbered from that view (which left a journal that no longer read: "should start
// at batch N"); the writer ahead goes on. A rollover whose claim's answer was lost goes on.
func TestStaleWriterRollover(t *testing.T) {
	c := kubestatefake.New()
	const run = "cdc-stale-rollover"
	a := open(t, c.Clientset(), run)
	fill := (kubestate.DefaultChunkSize - 6<<10) / (4<<10 + 100) // ~4.1 KiB events: chunk 0 nearly full
	for i := 0; i < fill; i++ {
		if err := a.Append(logEvent(i, 4096), i == fill-1); err != nil {
			t.Fatal(err)
		}
	}
	items := chunks(t, c.Clientset(), run)
	if len(items) != 1 {
		t.Fatalf("%d chunks, want 1", len(items))
	}
	size := 0
	for k, v := range items[0].Data {
		size += len(k) + len(v)
	}
	if size+100<<10 <= kubestate.DefaultChunkSize || size+2<<10 > kubestate.DefaultChunkSize {
		t.Fatalf("chunk 0 holds %d bytes: want room for a small event, not for a 100 KiB one", size)
	}
	b := open(t, c.Clientset(), run)
	if err := a.Append(logEvent(fill, 10), true); err != nil {
		t.Fatal(err)
	}
	err := b.Append(logEvent(fill+1, 100<<10), true) // does not fit chunk 0
	if err == nil || !strings.Contains(err.Error(), "written by another process") {
		t.Fatalf("stale writer rolling over: %v", err)
	}
	if n := len(chunks(t, c.Clientset(), run)); n != 1 {
		t.Fatalf("the stale writer created a chunk: %d chunks", n)
	}
	c.LoseAnswerNext("patch", "configmaps", 1) // the claim on chunk 0
	if err := a.Append(logEvent(fill+1, 100<<10), true); err != nil {
		t.Fatalf("the writer ahead, rolling over: %v", err)
	}
	if err := a.Append(logEvent(fill+2, 10), true); err != nil {
		t.Fatal(err)
	}
	// The 100 KiB event starts chunk 1; the small one joins it if there is room.
	want := 2
	if 100<<10+4<<10 > kubestate.DefaultChunkSize {
		want = 3 // bigger than a chunk: the 100 KiB event has chunk 1 to itself
	}
	if n := len(chunks(t, c.Clientset(), run)); n != want {
		t.Fatalf("%d chunks after the rollover, want %d", n, want)
	}
	checkEvents(t, open(t, c.Clientset(), run), fill+3)
}

// TestLargeReportGzipped: a report too big for a ConfigMap as text is kept gzipped and
// read back whole.
func TestLargeReportGzipped(t *testing.T) {
	c := kubestatefake.New()
	s := open(t, c.Clientset(), "cdc-big")
	doc := []byte(`{"product":"cdc","status":"succeeded","pad":"` + strings.Repeat("ab", 600<<10) + `"}`)
	if err := s.WriteReport(doc); err != nil {
		t.Fatal(err)
	}
	got, err := kubestate.ReadReport(context.Background(), c.Clientset(), ns, "cdc-big")
	if err != nil || string(got) != string(doc) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
	st, err := kubestate.ReadRunStatus(context.Background(), c.Clientset(), ns, "cdc-big")
	if err != nil || st != engine.RunSucceeded {
		t.Fatalf("status %q %v", st, err)
	}
}

func errServiceUnavailable() error { return apierrors.NewServiceUnavailable("etcd leader changed") }

type readStep struct {
	Message string `json:"message" desc:"text to read" required:"true"`
}

func (s *readStep) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	return engine.Plan{Action: "read " + s.Message, NoChange: true}, nil
}

func (s *readStep) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	sc.Logf("read %s", s.Message)
	return engine.Outputs{}, nil
}

func init() {
	engine.Register(engine.StepType{Name: "kubestate_test.read", Summary: "read something", ReadOnly: true, New: func() engine.Step { return &readStep{} }})
}

// TestReadOnlyStepsFewWrites: each write to the API server is an etcd revision, so the
// store writes only what the engine needs durable: a run of read-only and skipped steps
// is its header, its session and its end in the journal (the steps' events go with the
// end, in one batch), and the report at the start, the session and the end (written
// once, not twice). Steps that write make their intent durable each.
func TestReadOnlyStepsFewWrites(t *testing.T) {
	for _, tc := range []struct {
		typ    string
		writes int
	}{{"kubestate_test.read", 6}, {"kubestate_test.echo", 6 + 2*40}} {
		var b strings.Builder
		b.WriteString("runbook: v1\nproduct: cdc\nsteps:\n")
		for i := 0; i < 40; i++ {
			fmt.Fprintf(&b, "  - {id: s%d, type: %s, with: {message: m%d}}\n", i, tc.typ, i)
		}
		b.WriteString("  - {id: skipped, type: kubestate_test.echo, when: \"false\", with: {message: x}}\n")
		pb, err := engine.Parse("cdc.yaml", []byte(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		c := kubestatefake.New()
		run := "cdc-20260302-090000-" + strings.TrimPrefix(tc.typ, "kubestate_test.")
		s := open(t, c.Clientset(), run)
		rep, err := engine.Execute(context.Background(), pb, engine.Options{Store: s, Actor: "alice", RunID: run, ReportInterval: time.Hour,
			Clock: engine.NewFakeClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))})
		if err != nil || rep.Status != engine.RunSucceeded {
			t.Fatalf("%s: run %v %v", tc.typ, rep.Status, err)
		}
		if w := c.Writes("configmaps"); w != tc.writes {
			t.Errorf("%s: %d configmap writes for 40 steps, want %d", tc.typ, w, tc.writes)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		// Another machine reads the whole run back.
		evs, err := open(t, c.Clientset(), run).Events()
		if err != nil {
			t.Fatal(err)
		}
		got := engine.ReplayEvents(evs)
		if got.Status != engine.RunSucceeded || len(got.StepsBy(engine.StepSucceeded)) != 40 || got.Step("skipped").Status != engine.StepSkipped {
			t.Errorf("%s: the journal read back says %s, %d steps succeeded", tc.typ, got.Status, len(got.StepsBy(engine.StepSucceeded)))
		}
	}
}
