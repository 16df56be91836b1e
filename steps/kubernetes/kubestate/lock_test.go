package kubestate_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/steps/kubernetes/kubestate"
	"github.com/cessda/runbook/steps/kubernetes/kubestate/kubestatefake"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	coordv1 "k8s.io/client-go/kubernetes/typed/coordination/v1"
)

const ns = "runbook"

// clock is a settable clock shared by the locks of a test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)} }
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// statuses stands in for the runs' reports: what each run's status is.
type statuses struct {
	mu sync.Mutex
	m  map[string]engine.RunStatus
}

func (s *statuses) set(run string, st engine.RunStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[run] = st
}
func (s *statuses) get(_ context.Context, run string) (engine.RunStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[run], nil
}

// newLock is one process's lock: its own host, a clock shared with the others.
func newLock(cs kubernetes.Interface, host string, c *clock, st *statuses) *kubestate.Lock {
	l := kubestate.NewLock(cs, ns)
	l.Host, l.Now, l.RunStatus = host, c.Now, st.get
	l.Alive = func(int) bool { return true }
	l.RenewInterval = time.Hour // renewal tested on its own
	return l
}

func getLease(t *testing.T, cs kubernetes.Interface, product string) *coordinationv1.Lease {
	t.Helper()
	l, err := cs.CoordinationV1().Leases(ns).Get(context.Background(), kubestate.LeaseName(product), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func holderOf(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// TestSecondRunRefused: while a process runs a release, a second run is refused, naming
// the holder and its age; once that process stops with its run unfinished (waiting for an
// approval), the run keeps the product and the refusal says how to resume or take over.
func TestSecondRunRefused(t *testing.T) {
	c := kubestatefake.New()
	clk, st := newClock(), &statuses{m: map[string]engine.RunStatus{}}
	a := newLock(c.Clientset(), "ci-agent-1", clk, st)
	b := newLock(c.Clientset(), "laptop", clk, st)
	ctx := context.Background()

	releaseA, err := a.Acquire(ctx, "cdc", "cdc-run-a", "alice", false)
	if err != nil {
		t.Fatal(err)
	}
	st.set("cdc-run-a", engine.RunRunning)
	clk.Add(30 * time.Second) // within the lease: A's process is alive

	_, err = b.Acquire(ctx, "cdc", "cdc-run-b", "bob", false)
	var le *kubestate.LockedError
	if !errors.As(err, &le) || !le.Live || le.RunID != "cdc-run-a" || le.Actor != "alice" || le.Host != "ci-agent-1" || le.Age != 30*time.Second {
		t.Fatalf("second run while the first runs: %v (%+v)", err, le)
	}
	for _, want := range []string{"cdc-run-a", "alice", "ci-agent-1", "30s", "running process"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not say %q", err, want)
		}
	}
	// Take-over does not override a live process.
	if _, err := b.Acquire(ctx, "cdc", "cdc-run-b", "bob", true); !errors.As(err, &le) || !le.Live {
		t.Fatalf("take-over of a live process: %v", err)
	}

	// A's process stops with the run waiting for an approval: the run keeps the product.
	st.set("cdc-run-a", engine.RunWaiting)
	if err := releaseA(ctx); err != nil {
		t.Fatal(err)
	}
	lease := getLease(t, c.Clientset(), "cdc")
	if holderOf(lease) != "cdc-run-a" || lease.Annotations["runbook.cessda.eu/run-status"] != "waiting" {
		t.Fatalf("after release of a waiting run: holder %q, annotations %v", holderOf(lease), lease.Annotations)
	}
	clk.Add(2 * time.Hour)
	_, err = b.Acquire(ctx, "cdc", "cdc-run-b", "bob", false)
	if !errors.As(err, &le) || le.Live || le.Status != engine.RunWaiting || le.Age != 2*time.Hour+30*time.Second {
		t.Fatalf("second run while the first waits: %v (%+v)", err, le)
	}
	for _, want := range []string{"cdc-run-a", "waiting", "alice", "2h0m30s", "runbook resume cdc-run-a", "--take-over"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not say %q", err, want)
		}
	}
	if got := holderOf(getLease(t, c.Clientset(), "cdc")); got != "cdc-run-a" {
		t.Errorf("a refused run changed the holder to %q", got)
	}

	// Another product is not locked.
	rel, err := b.Acquire(ctx, "cvs", "cvs-run-1", "bob", false)
	if err != nil {
		t.Fatalf("another product: %v", err)
	}
	st.set("cvs-run-1", engine.RunSucceeded)
	if err := rel(ctx); err != nil {
		t.Fatal(err)
	}
	if got := holderOf(getLease(t, c.Clientset(), "cvs")); got != "" {
		t.Errorf("a finished run still holds its product: %q", got)
	}
}

// TestTakeOver: an unfinished run's product is taken over explicitly, and the lease says
// from whom; the run that lost it cannot release it any more.
func TestTakeOver(t *testing.T) {
	c := kubestatefake.New()
	clk, st := newClock(), &statuses{m: map[string]engine.RunStatus{}}
	a := newLock(c.Clientset(), "ci-agent-1", clk, st)
	b := newLock(c.Clientset(), "laptop", clk, st)
	ctx := context.Background()
	relA, err := a.Acquire(ctx, "cdc", "cdc-run-a", "alice", false)
	if err != nil {
		t.Fatal(err)
	}
	st.set("cdc-run-a", engine.RunFailed)
	if err := relA(ctx); err != nil {
		t.Fatal(err)
	}
	relB, err := b.Acquire(ctx, "cdc", "cdc-run-b", "bob", true)
	if err != nil {
		t.Fatalf("take-over: %v", err)
	}
	lease := getLease(t, c.Clientset(), "cdc")
	if holderOf(lease) != "cdc-run-b" || lease.Annotations["runbook.cessda.eu/taken-over-from"] != "cdc-run-a" ||
		lease.Annotations["runbook.cessda.eu/actor"] != "bob" || *lease.Spec.LeaseTransitions != 1 {
		t.Fatalf("after take-over: holder %q annotations %v transitions %d", holderOf(lease), lease.Annotations, *lease.Spec.LeaseTransitions)
	}
	// Run a comes back (resume): refused now, naming run b.
	_, err = a.Acquire(ctx, "cdc", "cdc-run-a", "alice", false)
	var le *kubestate.LockedError
	if !errors.As(err, &le) || le.RunID != "cdc-run-b" {
		t.Fatalf("resume of the run taken over: %v", err)
	}
	st.set("cdc-run-b", engine.RunSucceeded)
	if err := relB(ctx); err != nil {
		t.Fatal(err)
	}
	if lease := getLease(t, c.Clientset(), "cdc"); holderOf(lease) != "" || lease.Annotations["runbook.cessda.eu/last-run"] != "cdc-run-b" {
		t.Errorf("after the run ended: holder %q annotations %v", holderOf(lease), lease.Annotations)
	}
}

// TestSameRunReacquiresAfterCrash: a process that dies without releasing does not block
// its own run's resume: at once on the same host (its pid is gone), and from another
// machine once the lease has not been renewed for its duration. The run keeps its age.
func TestSameRunReacquiresAfterCrash(t *testing.T) {
	c := kubestatefake.New()
	clk, st := newClock(), &statuses{m: map[string]engine.RunStatus{}}
	a := newLock(c.Clientset(), "ci-agent-1", clk, st)
	pctx, crash := context.WithCancel(context.Background())
	if _, err := a.Acquire(pctx, "cdc", "cdc-run-a", "alice", false); err != nil {
		t.Fatal(err)
	}
	st.set("cdc-run-a", engine.RunRunning)
	crash() // the process dies: no release, no more renewals

	ctx := context.Background()
	// Another machine sees a fresh lease: it cannot know the process died yet.
	other := newLock(c.Clientset(), "ci-agent-2", clk, st)
	clk.Add(10 * time.Second)
	_, err := other.Acquire(ctx, "cdc", "cdc-run-a", "alice", false)
	var le *kubestate.LockedError
	if !errors.As(err, &le) || !le.Live || le.Expires != 50*time.Second || !strings.Contains(err.Error(), "expires in 50s") {
		t.Fatalf("resume from another machine within the lease: %v", err)
	}
	// On the same host the dead pid is seen at once.
	same := newLock(c.Clientset(), "ci-agent-1", clk, st)
	same.Alive = func(int) bool { return false }
	rel, err := same.Acquire(ctx, "cdc", "cdc-run-a", "alice", false)
	if err != nil {
		t.Fatalf("resume on the same host after a crash: %v", err)
	}
	lease := getLease(t, c.Clientset(), "cdc")
	if lease.Annotations["runbook.cessda.eu/since"] != "2026-03-02T09:00:00Z" || *lease.Spec.LeaseTransitions != 0 {
		t.Errorf("resumed run lost its age or counted a transition: %v, %d", lease.Annotations, *lease.Spec.LeaseTransitions)
	}
	if _, ok := lease.Annotations["runbook.cessda.eu/process"]; !ok {
		t.Error("the resuming process did not mark the lease live")
	}

	// That one crashes too; from another machine, after the lease duration, it resumes.
	_ = rel // never called: a second crash
	clk.Add(kubestate.DefaultLeaseDuration + time.Second)
	if _, err := other.Acquire(ctx, "cdc", "cdc-run-a", "carol", false); err != nil {
		t.Fatalf("resume from another machine after the lease expired: %v", err)
	}
	// A different run is still refused: the crashed run is not finished.
	_, err = newLock(c.Clientset(), "laptop", clk, st).Acquire(ctx, "cdc", "cdc-run-b", "bob", false)
	if !errors.As(err, &le) || le.RunID != "cdc-run-a" {
		t.Fatalf("another run after the crash: %v", err)
	}
}

// TestRenewal: the holding process moves renewTime forward every interval, and stops when
// released.
func TestRenewal(t *testing.T) {
	c := kubestatefake.New()
	clk, st := newClock(), &statuses{m: map[string]engine.RunStatus{}}
	a := newLock(c.Clientset(), "ci-agent-1", clk, st)
	a.RenewInterval = 2 * time.Millisecond
	ctx := context.Background()
	rel, err := a.Acquire(ctx, "cdc", "cdc-run-a", "alice", false)
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(20 * time.Second)
	want := clk.Now()
	deadline := time.Now().Add(5 * time.Second)
	for !getLease(t, c.Clientset(), "cdc").Spec.RenewTime.Time.Equal(want) {
		if time.Now().After(deadline) {
			t.Fatal("renewTime was not moved forward")
		}
		time.Sleep(time.Millisecond)
	}
	st.set("cdc-run-a", engine.RunSucceeded)
	if err := rel(ctx); err != nil {
		t.Fatal(err)
	}
	n := c.Writes("leases")
	time.Sleep(20 * time.Millisecond) // ten intervals
	if got := c.Writes("leases"); got != n {
		t.Errorf("%d lease writes after release", got-n)
	}
	if err := rel(ctx); err != nil || c.Writes("leases") != n {
		t.Errorf("a second release wrote or failed: %v", err)
	}
}

// TestLostLeaseReported: a process paused past its lease (a closed laptop) whose product
// was taken over meanwhile learns it at its next renewal, and stops renewing.
func TestLostLeaseReported(t *testing.T) {
	c := kubestatefake.New()
	st := &statuses{m: map[string]engine.RunStatus{}}
	paused, clk := newClock(), newClock()
	a := newLock(c.Clientset(), "laptop", paused, st)
	a.RenewInterval = time.Millisecond
	lost := make(chan error, 1)
	a.OnLost = func(err error) { lost <- err }
	ctx := context.Background()
	rel, err := a.Acquire(ctx, "cdc", "cdc-run-a", "alice", false)
	if err != nil {
		t.Fatal(err)
	}
	st.set("cdc-run-a", engine.RunRunning)
	clk.Add(2 * time.Minute) // the laptop's renewals are two minutes old for everyone else
	if _, err := newLock(c.Clientset(), "ci-agent-2", clk, st).Acquire(ctx, "cdc", "cdc-run-b", "bob", true); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-lost:
		if !strings.Contains(err.Error(), "taken from run cdc-run-a by run cdc-run-b") {
			t.Errorf("lost: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the paused process was not told it lost the lock")
	}
	if err := rel(ctx); err != nil {
		t.Fatal(err)
	}
	if got := holderOf(getLease(t, c.Clientset(), "cdc")); got != "cdc-run-b" {
		t.Errorf("the old holder's release changed the lease: holder %q", got)
	}
}

// leaseBarrier holds the first n lease reads until all n have been answered, so that n
// processes decide on the same state and race to write.
type leaseBarrier struct {
	kubernetes.Interface
	n    atomic.Int32
	wait sync.WaitGroup
}

func newBarrier(cs kubernetes.Interface, n int) *leaseBarrier {
	b := &leaseBarrier{Interface: cs}
	b.n.Store(int32(n))
	b.wait.Add(n)
	return b
}

func (b *leaseBarrier) CoordinationV1() coordv1.CoordinationV1Interface {
	return barrierCoord{b.Interface.CoordinationV1(), b}
}

type barrierCoord struct {
	coordv1.CoordinationV1Interface
	b *leaseBarrier
}

func (c barrierCoord) Leases(namespace string) coordv1.LeaseInterface {
	return barrierLeases{c.CoordinationV1Interface.Leases(namespace), c.b}
}

type barrierLeases struct {
	coordv1.LeaseInterface
	b *leaseBarrier
}

func (l barrierLeases) Get(ctx context.Context, name string, opts metav1.GetOptions) (*coordinationv1.Lease, error) {
	lease, err := l.LeaseInterface.Get(ctx, name, opts)
	if l.b.n.Add(-1) >= 0 {
		l.b.wait.Done()
		l.b.wait.Wait()
	}
	return lease, err
}

// TestConflictRace: two processes acquire at once, both having read the same lease state:
// exactly one wins, the other loses the write race (409 Conflict or AlreadyExists), reads
// again and is refused naming the winner. Both for a product never locked (create race)
// and for a free lease (update race).
func TestConflictRace(t *testing.T) {
	for _, existing := range []bool{false, true} {
		for round := 0; round < 20; round++ {
			c := kubestatefake.New()
			clk, st := newClock(), &statuses{m: map[string]engine.RunStatus{}}
			ctx := context.Background()
			if existing {
				rel, err := newLock(c.Clientset(), "old", clk, st).Acquire(ctx, "cdc", "cdc-run-old", "zoe", false)
				if err != nil {
					t.Fatal(err)
				}
				st.set("cdc-run-old", engine.RunSucceeded)
				if err := rel(ctx); err != nil {
					t.Fatal(err)
				}
			}
			writesBefore := c.Writes("leases")
			cs := newBarrier(c.Clientset(), 2)
			runs := []string{"cdc-run-a", "cdc-run-b"}
			errs := make([]error, 2)
			var wg sync.WaitGroup
			for i := range runs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = newLock(cs, "host-"+runs[i], clk, st).Acquire(ctx, "cdc", runs[i], "p", false)
				}()
			}
			wg.Wait()
			winner := getLease(t, c.Clientset(), "cdc")
			won := 0
			for i, err := range errs {
				var le *kubestate.LockedError
				switch {
				case err == nil:
					won++
					if holderOf(winner) != runs[i] {
						t.Fatalf("%s won but the lease names %q", runs[i], holderOf(winner))
					}
				case errors.As(err, &le):
					if le.RunID != holderOf(winner) || !le.Live {
						t.Fatalf("loser refused naming %q, lease holder %q", le.RunID, holderOf(winner))
					}
				default:
					t.Fatalf("%s: %v", runs[i], err)
				}
			}
			if won != 1 {
				t.Fatalf("existing=%v: %d winners (%v)", existing, won, errs)
			}
			if got := c.Writes("leases") - writesBefore; got != 2 {
				t.Fatalf("existing=%v: %d lease writes, want 2 (both raced to write)", existing, got)
			}
		}
	}
}

// TestBadNames: a product or run id that cannot name an object is refused at once.
func TestBadNames(t *testing.T) {
	l := kubestate.NewLock(kubestatefake.New().Clientset(), ns)
	if _, err := l.Acquire(context.Background(), "CDC_x", "r1", "a", false); err == nil || !strings.Contains(err.Error(), "product") {
		t.Errorf("bad product: %v", err)
	}
	if _, err := kubestate.Open(context.Background(), kubestatefake.New().Clientset(), ns, strings.Repeat("r", 300)); err == nil {
		t.Error("a 300-character run id was accepted")
	}
}
