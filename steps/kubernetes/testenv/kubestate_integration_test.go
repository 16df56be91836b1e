//go:build integration

package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/steps/kubernetes/kubestate"
	_ "github.com/cessda/runbook/steps/manual"
	_ "github.com/cessda/runbook/steps/sleep"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// The kubestate tier: runbook's release lock (a Lease) and a run's journal and report
// (ConfigMaps) against the real kube-apiserver, whose resourceVersion preconditions,
// merge-patch semantics and size limits (1 MiB of ConfigMap data, the request body limit)
// the fake clientset of steps/kubernetes/kubestate only imitates.

// stateEnv is env's fresh namespace, with a clientset configured as the CLI's
// --state kubernetes://... backend configures its own (cmd/runbook/state.go).
func stateEnv(t *testing.T) (kubernetes.Interface, string) {
	t.Helper()
	_, _, ns := env(t)
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: os.Getenv("KUBECONFIG")}, &clientcmd.ConfigOverrides{CurrentContext: "testenv-cluster"}).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.UserAgent = "runbook-integration-test"
	cfg.QPS, cfg.Burst = 50, 100
	return kubernetes.NewForConfigOrDie(cfg), ns
}

func openStore(t *testing.T, cs kubernetes.Interface, ns, run string) *kubestate.Store {
	t.Helper()
	s, err := kubestate.Open(context.Background(), cs, ns, run)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func lease(t *testing.T, cs kubernetes.Interface, ns, product string) *coordinationv1.Lease {
	t.Helper()
	l, err := cs.CoordinationV1().Leases(ns).Get(context.Background(), kubestate.LeaseName(product), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func holder(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

func journalChunks(t *testing.T, cs kubernetes.Interface, ns, run string) []corev1.ConfigMap {
	t.Helper()
	list, err := cs.CoreV1().ConfigMaps(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "runbook.cessda.eu/part=journal,runbook.cessda.eu/run=" + run})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

const kubestatePlaybook = `runbook: v1
product: itest
steps:
  - id: settle
    type: sleep
    with: {duration: 90s}
  - id: approve
    type: manual
    with: {instruction: "check the staging site"}
  - id: cooldown
    type: sleep
    with: {duration: 1m}
`

// TestKubestateEngineRoundTrip: a run through the engine on real ConfigMaps stops waiting
// at a manual step; the release lock, reading the run's status from its report ConfigMap,
// keeps the product for it; another machine (a fresh Lock and Store) resumes it with the
// confirmation; the report read back shows it succeeded over two sessions without
// running the first step again, the run is listed with its status, and the finished run
// frees the product.
func TestKubestateEngineRoundTrip(t *testing.T) {
	cs, ns := stateEnv(t)
	ctx := context.Background()
	pb, err := engine.Parse("itest.yaml", []byte(kubestatePlaybook))
	if err != nil {
		t.Fatal(err)
	}
	in, err := pb.ResolveInputs(nil)
	if err != nil {
		t.Fatal(err)
	}
	const run = "itest-20260302-090000-abcdef"
	lock1 := kubestate.NewLock(cs, ns)
	lock1.Host, lock1.RenewInterval = "ci-agent-1", time.Hour
	release1, err := lock1.Acquire(ctx, "itest", run, "alice", false)
	if err != nil {
		t.Fatal(err)
	}
	s1 := openStore(t, cs, ns, run)
	rep, err := engine.Execute(ctx, pb, engine.Options{Inputs: in, Store: s1, Actor: "alice", RunID: run,
		Clock: engine.NewFakeClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))})
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	if rep.Status != engine.RunWaiting {
		t.Fatalf("first session: %s %s", rep.Status, rep.Reason)
	}
	if err := release1(ctx); err != nil {
		t.Fatal(err)
	}
	l := lease(t, cs, ns, "itest")
	if holder(l) != run || l.Annotations["runbook.cessda.eu/run-status"] != "waiting" || l.Annotations["runbook.cessda.eu/process"] != "" {
		t.Fatalf("after the first session: holder %q, annotations %v", holder(l), l.Annotations)
	}
	if runs, err := kubestate.ListRuns(ctx, cs, ns, "itest"); err != nil || len(runs) != 1 || runs[0].RunID != run || runs[0].Status != engine.RunWaiting {
		t.Fatalf("runs of itest: %+v %v", runs, err)
	}
	// A new run of the product is refused: the waiting run holds it (status read from its report).
	other := kubestate.NewLock(cs, ns)
	other.Host = "ci-agent-2"
	_, err = other.Acquire(ctx, "itest", "itest-20260302-100000-fedcba", "carol", false)
	var le *kubestate.LockedError
	if !errors.As(err, &le) || le.Live || le.RunID != run || le.Status != engine.RunWaiting || le.Actor != "alice" {
		t.Fatalf("a second run while the first waits: %v (%+v)", err, le)
	}

	// Another machine resumes it: a fresh lock and store on the same namespace.
	lock2 := kubestate.NewLock(cs, ns)
	lock2.Host, lock2.RenewInterval = "laptop", time.Hour
	release2, err := lock2.Acquire(ctx, "itest", run, "bob", false)
	if err != nil {
		t.Fatalf("resume's lock: %v", err)
	}
	s2 := openStore(t, cs, ns, run)
	rep, err = engine.Resume(ctx, pb, engine.Options{Store: s2, Actor: "bob", Clock: engine.NewFakeClock(time.Date(2026, 3, 3, 9, 0, 0, 0, time.UTC)),
		Confirm: map[string]engine.Confirmation{"approve": {By: "owner-a", At: time.Date(2026, 3, 3, 8, 0, 0, 0, time.UTC), Answer: "yes"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if rep.Status != engine.RunSucceeded {
		t.Fatalf("resumed: %s %s", rep.Status, rep.Reason)
	}

	doc, err := kubestate.ReadReport(ctx, cs, ns, run)
	if err != nil {
		t.Fatal(err)
	}
	var stored engine.Report
	if err := json.Unmarshal(doc, &stored); err != nil {
		t.Fatal(err)
	}
	if stored.RunID != run || stored.Status != engine.RunSucceeded || len(stored.Sessions) != 2 ||
		stored.Sessions[0].Actor != "alice" || stored.Sessions[1].Actor != "bob" || stored.Sessions[0].Status != engine.RunWaiting {
		t.Fatalf("stored report: run %s status %s, sessions %+v", stored.RunID, stored.Status, stored.Sessions)
	}
	steps := map[string]*engine.StepReport{}
	for _, s := range stored.Steps {
		steps[s.ID] = s
	}
	if s := steps["settle"]; s == nil || s.Status != engine.StepSucceeded || s.Attempts != 1 || s.Session != 1 {
		t.Errorf("settle (must not run again on resume): %+v", s)
	}
	if s := steps["approve"]; s == nil || s.Status != engine.StepSucceeded || s.Outputs["confirmed_by"] != "owner-a" {
		t.Errorf("approve: %+v", s)
	}
	if s := steps["cooldown"]; s == nil || s.Status != engine.StepSucceeded || s.Session != 2 {
		t.Errorf("cooldown: %+v", s)
	}
	if runs, err := kubestate.ListRuns(ctx, cs, ns, ""); err != nil || len(runs) != 1 || runs[0].RunID != run || runs[0].Status != engine.RunSucceeded {
		t.Fatalf("runs after the resume: %+v %v", runs, err)
	}
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, kubestate.ReportName(run), metav1.GetOptions{})
	if err != nil || cm.Labels["runbook.cessda.eu/product"] != "itest" || cm.Labels["runbook.cessda.eu/status"] != "succeeded" || cm.Labels["app.kubernetes.io/managed-by"] != "runbook" {
		t.Fatalf("report configmap labels: %v %v", cm.Labels, err)
	}

	if err := release2(ctx); err != nil {
		t.Fatal(err)
	}
	l = lease(t, cs, ns, "itest")
	if holder(l) != "" || l.Annotations["runbook.cessda.eu/last-run"] != run || l.Annotations["runbook.cessda.eu/run-status"] != "succeeded" {
		t.Fatalf("a finished run still holds its product: holder %q, annotations %v", holder(l), l.Annotations)
	}

	evs, err := openStore(t, cs, ns, run).Events()
	if err != nil {
		t.Fatal(err)
	}
	sessions := 0
	for _, ev := range evs {
		if ev.Kind == "session" {
			sessions++
		}
	}
	if len(evs) == 0 || evs[0].Kind != "run" || evs[len(evs)-1].Kind != "run_end" || sessions != 2 {
		t.Fatalf("journal: %d events, %d sessions", len(evs), sessions)
	}
	for _, c := range journalChunks(t, cs, ns, run) {
		if c.Labels["runbook.cessda.eu/product"] != "itest" || c.Labels["runbook.cessda.eu/chunk"] == "" {
			t.Errorf("journal chunk %s labels %v", c.Name, c.Labels)
		}
	}
}

// logLine is the i-th line of a test journal: its number first, padded to size with text
// that JSON escapes (quotes, backslashes, <>&, non-ASCII), so the request bodies are larger
// than the data they carry.
func logLine(i, size int) string {
	const pad = `say "hi" \ <b>&amp; café ✓ `
	var b strings.Builder
	fmt.Fprintf(&b, "%06d ", i)
	for b.Len() < size {
		b.WriteString(pad)
	}
	return b.String()[:size]
}

// eventSize is the size in the journal of a log event whose line is n ASCII bytes (n > 0:
// an empty line is left out of the JSON).
func eventSize(t *testing.T, n int) int {
	b, err := json.Marshal(&engine.Event{Kind: "log", Step: "s", Line: strings.Repeat("y", n)})
	if err != nil {
		t.Fatal(err)
	}
	return len(b) + 1
}

func sameEvents(t *testing.T, got []*engine.Event, want []*engine.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d events read back, %d written", len(got), len(want))
	}
	for i := range want {
		g, _ := json.Marshal(got[i])
		w, _ := json.Marshal(want[i])
		if string(g) != string(w) {
			t.Fatalf("event %d differs: read %.80s..., wrote %.80s...", i, g, w)
		}
	}
}

// TestKubestateChunkRolloverOnRealServer: a journal of several MiB spreads over ConfigMaps
// of at most the chunk size (each accepted by the real API server), an event larger than a
// chunk gets a ConfigMap of its own up to the largest the store allows (close to the
// server's 1 MiB, in a request much larger than that because of JSON escaping), a larger
// one is refused by the store with its own message; a fresh Store reads back every event,
// in order. A report over 768 KiB is written gzipped and read back equal.
func TestKubestateChunkRolloverOnRealServer(t *testing.T) {
	cs, ns := stateEnv(t)
	ctx := context.Background()
	const run = "itest-rollover"
	var written []*engine.Event
	s := openStore(t, cs, ns, run)
	appendEv := func(s *kubestate.Store, ev *engine.Event, sync bool) {
		t.Helper()
		if err := s.Append(ev, sync); err != nil {
			t.Fatalf("append of event %d (%d bytes): %v", len(written), len(ev.Line), err)
		}
		written = append(written, ev)
	}
	start := time.Now()
	for i := 0; i < 500; i++ { // 500 lines of 5000 bytes, more once JSON-escaped
		appendEv(s, &engine.Event{Kind: "log", Step: "s", Time: time.Date(2026, 3, 2, 9, 0, i, 0, time.UTC), Line: logLine(i, 5000)}, i%9 == 0)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	items := journalChunks(t, cs, ns, run)
	if len(items) < 5 {
		t.Fatalf("%d chunks for 2.5 MiB, want at least 5", len(items))
	}
	total := 0
	for _, cm := range items {
		size := 0
		for k, v := range cm.Data {
			size += len(k) + len(v)
		}
		total += size
		if size > kubestate.DefaultChunkSize {
			t.Errorf("%s holds %d bytes, more than a chunk", cm.Name, size)
		}
		last := cm.Labels["runbook.cessda.eu/chunk"] == fmt.Sprint(len(items)-1)
		if sealed := cm.Annotations["runbook.cessda.eu/sealed"] == "true"; sealed == last {
			t.Errorf("%s: sealed=%v, last=%v", cm.Name, sealed, last)
		}
	}
	if total < 2<<20 {
		t.Fatalf("journal of %d bytes: the test wants more than 2 MiB", total)
	}
	t.Logf("journal of %d KiB in %d chunks written in %s", total>>10, len(items), took.Round(time.Millisecond))

	// Another process continues the journal, with events larger than a chunk.
	s2 := openStore(t, cs, ns, run)
	for i := 500; i < 520; i++ {
		appendEv(s2, &engine.Event{Kind: "log", Step: "s", Line: logLine(i, 3000)}, false)
	}
	appendEv(s2, &engine.Event{Kind: "log", Step: "s", Line: "000520 " + strings.Repeat("y", 600<<10)}, false) // more than a chunk
	// The largest event the store accepts: with its batch key, 900 KiB in one ConfigMap.
	const key = len("000000000.jsonl")
	maxLine := 900<<10 - key - (eventSize(t, 1) - 1)
	if eventSize(t, maxLine)+key != 900<<10 {
		t.Fatalf("size arithmetic: %d", eventSize(t, maxLine)+key)
	}
	appendEv(s2, &engine.Event{Kind: "log", Step: "s", Line: "000521 " + strings.Repeat(`"`, (maxLine-7)/2)}, true) // "\"" doubles in JSON
	quoteEvent, _ := json.Marshal(written[len(written)-1])
	t.Logf("largest event: %d bytes in the journal", len(quoteEvent)+1)
	if len(quoteEvent)+1+key > 900<<10 || len(quoteEvent)+1+key < 900<<10-2 {
		t.Fatalf("the largest event is %d bytes, want 900 KiB with its key", len(quoteEvent)+1+key)
	}
	appendEv(s2, &engine.Event{Kind: "log", Step: "s", Line: logLine(522, 100)}, true)
	err := s2.Append(&engine.Event{Kind: "log", Step: "s", Line: strings.Repeat("z", 900<<10)}, true)
	if err == nil || !strings.Contains(err.Error(), "more than a ConfigMap holds") {
		t.Fatalf("a 900 KiB line: %v", err)
	}
	// That store keeps refusing (the event stays pending: it never writes a journal with an
	// event left out); a resumed process goes on from what is on the server.
	s3 := openStore(t, cs, ns, run)
	appendEv(s3, &engine.Event{Kind: "log", Step: "s", Line: logLine(523, 100)}, true)
	if err := s3.Close(); err != nil {
		t.Fatal(err)
	}
	for _, cm := range journalChunks(t, cs, ns, run) {
		size := 0
		for k, v := range cm.Data {
			size += len(k) + len(v)
		}
		if size > 900<<10 {
			t.Errorf("%s holds %d bytes", cm.Name, size)
		}
	}

	// The limit the store keeps under is the server's: a ConfigMap with more than 1 MiB of
	// data is refused (422), so the store's own refusal above is what a step sees.
	tooBig := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "itest-over-limit", Namespace: ns},
		Data: map[string]string{"x": strings.Repeat("x", 1<<20+1)}}
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, tooBig, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Fatalf("a ConfigMap of 1 MiB + 1 byte: %v, want 422 Invalid", err)
	}

	start = time.Now()
	evs, err := openStore(t, cs, ns, run).Events()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d events (%d chunks) read back in %s", len(evs), len(journalChunks(t, cs, ns, run)), time.Since(start).Round(time.Millisecond))
	sameEvents(t, evs, written)

	// Reports: just under the text limit as text, a larger one gzipped, one that does not
	// fit even gzipped refused by the store.
	rs := openStore(t, cs, ns, "itest-report")
	textDoc := []byte(`{"product":"itest","status":"running","pad":"` + strings.Repeat("a", 768<<10-60) + `"}`)
	if len(textDoc) > 768<<10 {
		t.Fatalf("text report of %d bytes", len(textDoc))
	}
	if err := rs.WriteReport(textDoc); err != nil {
		t.Fatal(err)
	}
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, kubestate.ReportName("itest-report"), metav1.GetOptions{})
	if err != nil || cm.Data["report.json"] != string(textDoc) || len(cm.BinaryData) != 0 {
		t.Fatalf("text report: %v (%d data keys, %d binary)", err, len(cm.Data), len(cm.BinaryData))
	}
	var big strings.Builder
	big.WriteString(`{"product":"itest","status":"succeeded","steps":[`)
	for i := 0; big.Len() < 3<<20; i++ {
		fmt.Fprintf(&big, `{"id":"step-%d","log":%q},`, i, logLine(i, 200))
	}
	bigDoc := []byte(strings.TrimSuffix(big.String(), ",") + `]}`)
	if err := rs.WriteReport(bigDoc); err != nil {
		t.Fatalf("a %d-byte report: %v", len(bigDoc), err)
	}
	cm, err = cs.CoreV1().ConfigMaps(ns).Get(ctx, kubestate.ReportName("itest-report"), metav1.GetOptions{})
	if err != nil || len(cm.Data) != 0 || len(cm.BinaryData["report.json.gz"]) == 0 || cm.Labels["runbook.cessda.eu/status"] != "succeeded" {
		t.Fatalf("gzipped report: %v (data %d keys, binaryData %d keys)", err, len(cm.Data), len(cm.BinaryData))
	}
	t.Logf("report of %d bytes kept as %d gzipped", len(bigDoc), len(cm.BinaryData["report.json.gz"]))
	got, err := kubestate.ReadReport(ctx, cs, ns, "itest-report")
	if err != nil || string(got) != string(bigDoc) {
		t.Fatalf("gzipped report read back: %d bytes of %d, %v", len(got), len(bigDoc), err)
	}
	if st, err := kubestate.ReadRunStatus(ctx, cs, ns, "itest-report"); err != nil || st != engine.RunSucceeded {
		t.Fatalf("status %q %v", st, err)
	}
	// A fresh store (another process) writes over it: the update path on a real object.
	rs2 := openStore(t, cs, ns, "itest-report")
	if err := rs2.WriteReport(textDoc); err != nil {
		t.Fatal(err)
	}
	if got, err := kubestate.ReadReport(ctx, cs, ns, "itest-report"); err != nil || string(got) != string(textDoc) {
		t.Fatalf("report written over by a fresh store: %d bytes, %v", len(got), err)
	}
	incompressible := make([]byte, 0, 2<<20)
	incompressible = append(incompressible, `{"product":"itest","status":"failed","pad":"`...)
	x := uint64(88172645463325252)
	for len(incompressible) < 2<<20 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		incompressible = append(incompressible, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_"[x%64])
	}
	incompressible = append(incompressible, `"}`...)
	if err := rs2.WriteReport(incompressible); err == nil || !strings.Contains(err.Error(), "more than a ConfigMap holds") {
		t.Fatalf("a report too large even gzipped: %v", err)
	}
	if got, err := kubestate.ReadReport(ctx, cs, ns, "itest-report"); err != nil || string(got) != string(textDoc) {
		t.Fatalf("a refused report changed the stored one: %d bytes, %v", len(got), err)
	}
}

// TestKubestateSecondWriter: two processes writing one run's journal without the lock
// (stores opened on the same state) do not interleave: the real API server's
// resourceVersion precondition on the merge patch makes the one behind fail with the
// store's conflict error, and the journal is exactly the winner's.
func TestKubestateSecondWriter(t *testing.T) {
	cs, ns := stateEnv(t)
	for _, tc := range []struct {
		name  string
		first bool // a first event is written before both stores open
	}{{"empty journal", false}, {"existing chunk", true}} {
		t.Run(tc.name, func(t *testing.T) {
			run := "itest-two-" + strings.ReplaceAll(tc.name, " ", "-")
			var prefix []*engine.Event
			if tc.first {
				s := openStore(t, cs, ns, run)
				ev := &engine.Event{Kind: "log", Step: "s", Line: "prefix"}
				if err := s.Append(ev, true); err != nil {
					t.Fatal(err)
				}
				prefix = append(prefix, ev)
			}
			stores := []*kubestate.Store{openStore(t, cs, ns, run), openStore(t, cs, ns, run)}
			errs := make([]error, 2)
			wrote := make([][]*engine.Event, 2)
			var wg sync.WaitGroup
			gate := make(chan struct{})
			for w := range stores {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-gate
					for i := 0; i < 40; i++ {
						ev := &engine.Event{Kind: "log", Step: "s", Line: fmt.Sprintf("writer %d line %d", w, i)}
						if err := stores[w].Append(ev, true); err != nil {
							errs[w] = err
							return
						}
						wrote[w] = append(wrote[w], ev)
					}
				}()
			}
			close(gate)
			wg.Wait()
			loser, winner := -1, -1
			for w, err := range errs {
				if err == nil {
					winner = w
				} else if strings.Contains(err.Error(), "written by another process") {
					loser = w
				} else {
					t.Fatalf("writer %d: %v", w, err)
				}
			}
			if loser < 0 || winner < 0 {
				t.Fatalf("want one writer refused with a conflict and one through: %v", errs)
			}
			t.Logf("writer %d won; writer %d: %v", winner, loser, errs[loser])
			if len(wrote[loser]) != 0 {
				t.Fatalf("the losing writer wrote %d events first", len(wrote[loser]))
			}
			// It stays refused: its view of the journal is stale.
			if err := stores[loser].Append(&engine.Event{Kind: "log", Line: "late"}, true); err == nil {
				t.Fatal("the losing writer's next append went through")
			}
			evs, err := openStore(t, cs, ns, run).Events()
			if err != nil {
				t.Fatal(err)
			}
			sameEvents(t, evs, append(prefix, wrote[winner]...))
		})
	}

	// A writer behind whose batch does not fit its chunk any more rolls over: the new
	// chunk must not be created on a stale view either.
	t.Run("stale rollover", func(t *testing.T) {
		const run = "itest-two-rollover"
		a := openStore(t, cs, ns, run)
		var want []*engine.Event
		fill := (kubestate.DefaultChunkSize - 6<<10) / (5000 + 100) // chunk 0 nearly full
		for i := 0; i < fill; i++ {
			ev := &engine.Event{Kind: "log", Step: "s", Line: fmt.Sprintf("%06d %s", i, strings.Repeat("y", 5000))}
			if err := a.Append(ev, i == fill-1); err != nil {
				t.Fatal(err)
			}
			want = append(want, ev)
		}
		items := journalChunks(t, cs, ns, run)
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
		b := openStore(t, cs, ns, run)
		ev := &engine.Event{Kind: "log", Step: "s", Line: "a goes on"}
		if err := a.Append(ev, true); err != nil {
			t.Fatal(err)
		}
		want = append(want, ev)
		err := b.Append(&engine.Event{Kind: "log", Step: "s", Line: strings.Repeat("b", 100<<10)}, true) // does not fit chunk 0
		if err == nil || !strings.Contains(err.Error(), "written by another process") {
			t.Errorf("stale writer rolling over: %v", err)
		}
		ev = &engine.Event{Kind: "log", Step: "s", Line: "a still goes on"}
		if err := a.Append(ev, true); err != nil {
			t.Errorf("the writer ahead after the stale one's attempt: %v", err)
		} else {
			want = append(want, ev)
		}
		evs, err := openStore(t, cs, ns, run).Events()
		if err != nil {
			t.Fatalf("journal after a stale writer's rollover: %v", err)
		}
		sameEvents(t, evs, want)
	})
}

// statusBoard stands in for the runs' reports in the lock tests.
type statusBoard struct {
	mu sync.Mutex
	m  map[string]engine.RunStatus
}

func (b *statusBoard) set(run string, st engine.RunStatus) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.m[run] = st
}

func (b *statusBoard) get(_ context.Context, run string) (engine.RunStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m[run], nil
}

// TestKubestateLockOnRealLease: the release lock on a real Lease. A process holding the
// product refuses every other (take-over included); a run that stops unfinished keeps the
// product with no process; take-over is recorded; a finished run frees the product; a
// lease not renewed within its duration is not live, and the process it was taken from
// learns it at its next renewal.
func TestKubestateLockOnRealLease(t *testing.T) {
	cs, ns := stateEnv(t)
	ctx := context.Background()
	clk := engine.NewFakeClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	st := &statusBoard{m: map[string]engine.RunStatus{}}
	newLock := func(host string) *kubestate.Lock {
		l := kubestate.NewLock(cs, ns)
		l.Host, l.Now, l.RunStatus = host, clk.Now, st.get
		l.RenewInterval = time.Hour // no renewal unless a test asks for it
		return l
	}
	a, b := newLock("ci-agent-1"), newLock("laptop")
	const runA, runB = "itest-run-a", "itest-run-b"

	releaseA, err := a.Acquire(ctx, "itest", runA, "alice", false)
	if err != nil {
		t.Fatal(err)
	}
	st.set(runA, engine.RunRunning)
	l := lease(t, cs, ns, "itest")
	if holder(l) != runA || l.Spec.LeaseDurationSeconds == nil || *l.Spec.LeaseDurationSeconds != 60 || l.Spec.RenewTime == nil ||
		!l.Spec.RenewTime.Time.Equal(clk.Now()) || l.Annotations["runbook.cessda.eu/process"] == "" || l.Annotations["runbook.cessda.eu/actor"] != "alice" ||
		l.Labels["runbook.cessda.eu/product"] != "itest" {
		t.Fatalf("lease after A's acquire: %+v", l)
	}
	clk.Advance(20 * time.Second)

	var le *kubestate.LockedError
	_, err = b.Acquire(ctx, "itest", runB, "bob", false)
	if !errors.As(err, &le) || !le.Live || le.RunID != runA || le.Actor != "alice" || le.Host != "ci-agent-1" || le.Age != 20*time.Second || le.Expires != 40*time.Second {
		t.Fatalf("B while A's process holds the product: %v (%+v)", err, le)
	}
	if _, err := b.Acquire(ctx, "itest", runB, "bob", true); !errors.As(err, &le) || !le.Live {
		t.Fatalf("take-over of a live process: %v", err)
	}
	// Not even run A itself from another process.
	if _, err := b.Acquire(ctx, "itest", runA, "bob", false); !errors.As(err, &le) || !le.Live {
		t.Fatalf("run A from a second process: %v", err)
	}

	// A's process stops with the run waiting: the run keeps the product, with no process.
	st.set(runA, engine.RunWaiting)
	if err := releaseA(ctx); err != nil {
		t.Fatal(err)
	}
	l = lease(t, cs, ns, "itest")
	if holder(l) != runA || l.Annotations["runbook.cessda.eu/run-status"] != "waiting" || l.Annotations["runbook.cessda.eu/process"] != "" {
		t.Fatalf("after A's release, waiting: holder %q, annotations %v", holder(l), l.Annotations)
	}
	clk.Advance(time.Hour)
	_, err = b.Acquire(ctx, "itest", runB, "bob", false)
	if !errors.As(err, &le) || le.Live || le.RunID != runA || le.Status != engine.RunWaiting || le.Age != time.Hour+20*time.Second {
		t.Fatalf("B while A waits: %v (%+v)", err, le)
	}
	if !strings.Contains(err.Error(), "runbook resume "+runA) || !strings.Contains(err.Error(), "--take-over") {
		t.Errorf("refusal %q does not say how to go on", err)
	}

	releaseB, err := b.Acquire(ctx, "itest", runB, "bob", true)
	if err != nil {
		t.Fatalf("take-over: %v", err)
	}
	st.set(runB, engine.RunRunning)
	l = lease(t, cs, ns, "itest")
	if holder(l) != runB || l.Annotations["runbook.cessda.eu/taken-over-from"] != runA || l.Annotations["runbook.cessda.eu/actor"] != "bob" ||
		l.Spec.LeaseTransitions == nil || *l.Spec.LeaseTransitions != 1 {
		t.Fatalf("after take-over: holder %q, transitions %v, annotations %v", holder(l), l.Spec.LeaseTransitions, l.Annotations)
	}
	// A now is the one refused, naming B.
	if _, err := a.Acquire(ctx, "itest", runA, "alice", false); !errors.As(err, &le) || !le.Live || le.RunID != runB {
		t.Fatalf("A after B took over: %v", err)
	}
	st.set(runB, engine.RunSucceeded)
	if err := releaseB(ctx); err != nil {
		t.Fatal(err)
	}
	l = lease(t, cs, ns, "itest")
	if holder(l) != "" || l.Annotations["runbook.cessda.eu/last-run"] != runB || l.Annotations["runbook.cessda.eu/run-status"] != "succeeded" {
		t.Fatalf("after B finished: holder %q, annotations %v", holder(l), l.Annotations)
	}
	// A free product goes to the next run at once.
	rel, err := a.Acquire(ctx, "itest", "itest-run-c", "alice", false)
	if err != nil {
		t.Fatalf("a free product: %v", err)
	}
	st.set("itest-run-c", engine.RunSucceeded)
	if err := rel(ctx); err != nil {
		t.Fatal(err)
	}

	t.Run("expiry", func(t *testing.T) {
		// A process that stops renewing (paused, or crashed on another machine): its lease
		// is live until renewTime + leaseDurationSeconds, then not.
		lost := make(chan error, 1)
		p := newLock("ci-agent-3")
		// P renews every 20 ms, but its clock stands still (a paused process): every
		// renewal writes the same renewTime, while the others' clock moves on.
		frozen := clk.Now()
		p.Now = func() time.Time { return frozen }
		p.RenewInterval = 20 * time.Millisecond
		p.OnLost = func(err error) { lost <- err }
		releaseP, err := p.Acquire(ctx, "itest-expiry", "itest-run-p", "paula", false)
		if err != nil {
			t.Fatal(err)
		}
		st.set("itest-run-p", engine.RunRunning)
		q := newLock("laptop-2")
		clk.Advance(59 * time.Second)
		if _, err := q.Acquire(ctx, "itest-expiry", "itest-run-q", "quinn", true); !errors.As(err, &le) || !le.Live || le.Expires != time.Second {
			t.Fatalf("59 s after the last renewal: %v (%+v)", err, le)
		}
		clk.Advance(2 * time.Second)
		_, err = q.Acquire(ctx, "itest-expiry", "itest-run-q", "quinn", false)
		if !errors.As(err, &le) || le.Live || le.RunID != "itest-run-p" || le.Status != engine.RunRunning {
			t.Fatalf("61 s after the last renewal: %v (%+v)", err, le)
		}
		releaseQ, err := q.Acquire(ctx, "itest-expiry", "itest-run-q", "quinn", true)
		if err != nil {
			t.Fatalf("take-over of an expired lease: %v", err)
		}
		select {
		case err := <-lost:
			if !strings.Contains(err.Error(), "itest-run-q") {
				t.Errorf("OnLost: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the process whose lease was taken was not told")
		}
		if err := releaseP(ctx); err != nil {
			t.Fatal(err)
		}
		if l := lease(t, cs, ns, "itest-expiry"); holder(l) != "itest-run-q" || l.Annotations["runbook.cessda.eu/taken-over-from"] != "itest-run-p" {
			t.Fatalf("P's release after losing the lease changed it: holder %q, annotations %v", holder(l), l.Annotations)
		}
		st.set("itest-run-q", engine.RunCancelled)
		if err := releaseQ(ctx); err != nil {
			t.Fatal(err)
		}
		if l := lease(t, cs, ns, "itest-expiry"); holder(l) != "itest-run-q" {
			t.Fatalf("a cancelled (resumable) run gave up its product: %q", holder(l))
		}
	})

	t.Run("same host", func(t *testing.T) {
		// On the holder's own host the pid is asked: a dead process frees its run at once.
		dead := false
		p := newLock("ci-agent-4")
		p.Alive = func(int) bool { return !dead }
		releaseP, err := p.Acquire(ctx, "itest-pid", "itest-run-r", "rita", false)
		if err != nil {
			t.Fatal(err)
		}
		st.set("itest-run-r", engine.RunRunning)
		q := newLock("ci-agent-4")
		q.Alive = p.Alive
		if _, err := q.Acquire(ctx, "itest-pid", "itest-run-r", "rita", false); !errors.As(err, &le) || !le.Live {
			t.Fatalf("same run, same host, process alive: %v", err)
		}
		dead = true
		rel, err := q.Acquire(ctx, "itest-pid", "itest-run-r", "rita", false)
		if err != nil {
			t.Fatalf("same run, same host, process dead: %v", err)
		}
		if err := releaseP(ctx); err != nil { // no longer P's: nothing to release
			t.Fatal(err)
		}
		st.set("itest-run-r", engine.RunSucceeded)
		if err := rel(ctx); err != nil {
			t.Fatal(err)
		}
		if l := lease(t, cs, ns, "itest-pid"); holder(l) != "" {
			t.Fatalf("holder %q after the run ended", holder(l))
		}
	})
}

const cliPlaybook = `runbook: v1
product: itest
steps:
  - id: pause
    type: sleep
    with: {duration: 1ms}
  - id: sign_off
    type: manual
    with: {instruction: "check the release notes"}
`

// TestKubestateCLI: the runbook binary with --state kubernetes://testenv-cluster/NS on
// two machines (two state directories): a waiting run holds the product, the other
// machine is refused naming it (exit 4), resumes it by id with the confirmation (exit 0)
// and reads its report; nothing goes to the local state directories.
func TestKubestateCLI(t *testing.T) {
	cs, ns := stateEnv(t)
	ctx := context.Background()
	dir := t.TempDir()
	bin := filepath.Join(dir, "runbook")
	start := time.Now()
	build := exec.Command("go", "build", "-o", bin, "./cmd/runbook")
	build.Dir = "../../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built in %s", time.Since(start).Round(time.Millisecond))
	pb := filepath.Join(dir, "itest.yaml")
	if err := os.WriteFile(pb, []byte(cliPlaybook), 0o644); err != nil {
		t.Fatal(err)
	}
	state := "kubernetes://testenv-cluster/" + ns
	d1, d2 := filepath.Join(dir, "ci-agent"), filepath.Join(dir, "laptop")
	runbook := func(args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "RUNBOOK_ACTOR=itest-operator")
		out, err := cmd.CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, string(out)
	}

	code, out := runbook("run", pb, "--state", state, "--state-dir", d1, "--non-interactive")
	if code != 3 {
		t.Fatalf("first run: exit %d, want 3 (waiting)\n%s", code, out)
	}
	runs, err := kubestate.ListRuns(ctx, cs, ns, "itest")
	if err != nil || len(runs) != 1 || runs[0].Status != engine.RunWaiting {
		t.Fatalf("runs in %s: %+v %v", ns, runs, err)
	}
	first := runs[0].RunID
	if !strings.Contains(out, first) {
		t.Errorf("the first run's output does not name its run %s:\n%s", first, out)
	}
	if l := lease(t, cs, ns, "itest"); holder(l) != first || l.Annotations["runbook.cessda.eu/process"] != "" {
		t.Fatalf("lease after the first run: holder %q, annotations %v", holder(l), l.Annotations)
	}

	code, out = runbook("run", pb, "--state", state, "--state-dir", d2, "--non-interactive")
	if code != 4 || !strings.Contains(out, first) || !strings.Contains(out, "--take-over") {
		t.Fatalf("second run from another machine: exit %d, want 4 naming %s\n%s", code, first, out)
	}
	code, out = runbook("resume", first, "--state", state, "--state-dir", d2, "--confirm", "sign_off")
	if code != 0 {
		t.Fatalf("resume from the other machine: exit %d\n%s", code, out)
	}
	code, out = runbook("report", first, "--state", state)
	if code != 0 || !strings.Contains(out, first) || !strings.Contains(out, "succeeded") {
		t.Fatalf("report: exit %d\n%s", code, out)
	}
	doc, err := kubestate.ReadReport(ctx, cs, ns, first)
	if err != nil {
		t.Fatal(err)
	}
	var rep engine.Report
	if err := json.Unmarshal(doc, &rep); err != nil || rep.Status != engine.RunSucceeded || len(rep.Sessions) != 2 {
		t.Fatalf("report in the namespace: status %s, %d sessions, %v", rep.Status, len(rep.Sessions), err)
	}
	if l := lease(t, cs, ns, "itest"); holder(l) != "" || l.Annotations["runbook.cessda.eu/last-run"] != first {
		t.Fatalf("lease after the run ended: holder %q, annotations %v", holder(l), l.Annotations)
	}
	for _, d := range []string{d1, d2} {
		if _, err := os.Stat(filepath.Join(d, "runs")); !os.IsNotExist(err) {
			t.Errorf("%s has a local runs directory (%v): state went to disk", d, err)
		}
	}
	code, out = runbook("run", pb, "--state", state, "--state-dir", d2, "--non-interactive")
	if code != 3 {
		t.Fatalf("a new run after the first ended: exit %d\n%s", code, out)
	}
}
