package kubestate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cessda/runbook/engine"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// DefaultLeaseDuration is how long a lease stays live without renewal. A process renews
// it every third of that, so a process that died is seen dead at most this long after
// its last renewal (at once on the same host, where its pid can be checked).
const DefaultLeaseDuration = 60 * time.Second

// Lock is the release lock of products in one namespace, as coordination.k8s.io/v1 Leases
// named runbook-<product>. It has the same two layers as the file lock:
//
//   - A process that runs a release renews the lease (renewTime, annotation process): while
//     that is fresh, nobody else gets the product, not even with take-over and not even
//     the same run in another process (two processes of one run would repeat effects).
//   - The lease's holderIdentity is the run id and stays set while that run is not over
//     (running, waiting for an approval, failed or cancelled and resumable): a new run is
//     refused, with the holder and its age, until the run ends or someone takes the lock
//     over explicitly. The run itself may take it again at any time its process is gone,
//     so a crash never blocks its own resume.
//
// Every write names the resourceVersion it read; a 409 Conflict means another process won
// a race, and the lock reads the lease again and decides anew.
//
// client-go's leaderelection is not used: it hands a lease to whoever comes once it
// expires, which is the opposite of a run that holds its product for days between
// processes.
type Lock struct {
	Client    kubernetes.Interface
	Namespace string
	// LeaseDuration is written as spec.leaseDurationSeconds (DefaultLeaseDuration when 0).
	LeaseDuration time.Duration
	// RenewInterval is how often a holding process renews (LeaseDuration/3 when 0).
	RenewInterval time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// RunStatus says how a run stands, to tell an unfinished run (which keeps its product)
	// from a finished one. Nil reads the run's report ConfigMap (see Store); a run without
	// one has not written anything and holds nothing.
	RunStatus func(ctx context.Context, runID string) (engine.RunStatus, error)
	// Alive says whether a process of this host is alive (nil: signal 0 to the pid).
	Alive func(pid int) bool
	// Host is this machine's name (os.Hostname when empty).
	Host string
	// OnLost is called (once, from the renewal goroutine) if the lease was taken from this
	// process, e.g. after the process was paused past the lease duration. The caller
	// should stop the run.
	OnLost func(err error)

	once    sync.Once
	process string
}

// NewLock returns the lock of products in namespace.
func NewLock(cs kubernetes.Interface, namespace string) *Lock {
	return &Lock{Client: cs, Namespace: namespace}
}

// LockedError is the refusal to give a product's lock: it names the holder.
type LockedError struct {
	Product, RunID, Actor, Host string
	PID                         int
	Age                         time.Duration // since the run took the product
	Status                      engine.RunStatus
	// Live is true when a process is running the holding run (its lease is fresh);
	// Expires is then how long until the lease runs out without renewal.
	Live    bool
	Expires time.Duration
}

func (e *LockedError) Error() string {
	if e.Live {
		return fmt.Sprintf("release lock for %s is held by a running process: run %s by %s on %s (pid %d), holding it for %s; wait for it to stop (if it crashed on another machine, its lease expires in %s)",
			e.Product, e.RunID, e.Actor, e.Host, e.PID, e.Age.Round(time.Second), e.Expires.Round(time.Second))
	}
	return fmt.Sprintf("release lock for %s is held by run %s (%s, started by %s on %s %s ago, not finished); resume it with `runbook resume %s`, or take the lock over with --take-over",
		e.Product, e.RunID, orUnknown(string(e.Status)), e.Actor, e.Host, e.Age.Round(time.Second), e.RunID)
}

func orUnknown(s string) string {
	if s == "" {
		return "status unknown"
	}
	return s
}

func (l *Lock) init() {
	l.once.Do(func() {
		if l.Now == nil {
			l.Now = time.Now
		}
		if l.LeaseDuration <= 0 {
			l.LeaseDuration = DefaultLeaseDuration
		}
		if l.RenewInterval <= 0 {
			l.RenewInterval = l.LeaseDuration / 3
		}
		if l.Host == "" {
			l.Host, _ = os.Hostname()
		}
		if l.Alive == nil {
			l.Alive = func(pid int) bool {
				err := syscall.Kill(pid, 0)
				return err == nil || errors.Is(err, syscall.EPERM)
			}
		}
		if l.RunStatus == nil {
			l.RunStatus = func(ctx context.Context, runID string) (engine.RunStatus, error) {
				return ReadRunStatus(ctx, l.Client, l.Namespace, runID)
			}
		}
		var b [6]byte
		_, _ = rand.Read(b[:])
		l.process = fmt.Sprintf("%s/%d/%s", l.Host, os.Getpid(), hex.EncodeToString(b[:]))
	})
}

// runOpen says whether a run can still go on, and so holds its product.
func runOpen(s engine.RunStatus) bool {
	switch s {
	case engine.RunRunning, engine.RunWaiting, engine.RunFailed, engine.RunCancelled:
		return true
	}
	return false
}

// live says whether a process other than this one holds the lease now, and for how much
// longer the lease lasts without renewal.
func (l *Lock) live(lease *coordinationv1.Lease) (bool, time.Duration) {
	a := lease.Annotations
	proc := a[annoProcess]
	if proc == "" || proc == l.process || lease.Spec.RenewTime == nil {
		return false, 0
	}
	d := l.LeaseDuration
	if lease.Spec.LeaseDurationSeconds != nil {
		d = time.Duration(*lease.Spec.LeaseDurationSeconds) * time.Second
	}
	left := lease.Spec.RenewTime.Add(d).Sub(l.Now())
	if left <= 0 {
		return false, 0
	}
	// A process of this host can be asked directly: a crash here frees the run at once.
	if a[annoHost] == l.Host {
		if pid, err := strconv.Atoi(a[annoPID]); err == nil && pid > 0 && !l.Alive(pid) {
			return false, 0
		}
	}
	return true, left
}

// Acquire takes the release lock of product for run runID on behalf of holder (a login;
// engine.CurrentActor when empty). It refuses with a *LockedError while another process
// runs a release of the product, or while another run of it is not over (unless takeOver).
// The same run takes it again whenever no process runs it (a resume after a crash).
//
// While held, a goroutine renews the lease every RenewInterval until release is called
// or ctx ends (ctx standing for the process's life). release stops the renewal and frees
// the product only if the run is over (its status, see RunStatus, is not running,
// waiting, failed or cancelled) or the product is a rehearsal one (rehearsal-...);
// otherwise the run keeps it, with no process, for its resume.
func (l *Lock) Acquire(ctx context.Context, product, runID, holder string, takeOver bool) (release func(context.Context) error, err error) {
	l.init()
	if err := checkName("product", product); err != nil {
		return nil, err
	}
	if err := checkName("run id", runID); err != nil {
		return nil, err
	}
	if holder == "" {
		holder = engine.CurrentActor()
	}
	leases := l.Client.CoordinationV1().Leases(l.Namespace)
	name := LeaseName(product)
	what := "lease " + name
	for attempt := 0; ; attempt++ {
		if attempt >= 20 {
			return nil, fmt.Errorf("kubestate: %s in namespace %s: gave up after %d conflicting writes", what, l.Namespace, attempt)
		}
		now := l.Now().UTC()
		cur, err := leases.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			lease := l.stamp(&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: l.Namespace}}, product, runID, holder, now, now)
			zero := int32(0)
			lease.Spec.LeaseTransitions = &zero
			_, err = leases.Create(ctx, lease, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				continue // another process created it first: read it and decide
			}
			if err != nil {
				return nil, apiError(err, "create "+what, l.Namespace)
			}
			return l.hold(ctx, product, runID), nil
		}
		if err != nil {
			return nil, apiError(err, "get "+what, l.Namespace)
		}
		prevRun := ""
		if cur.Spec.HolderIdentity != nil {
			prevRun = *cur.Spec.HolderIdentity
		}
		a := cur.Annotations
		since, _ := time.Parse(time.RFC3339Nano, a[annoSince])
		refusal := func(status engine.RunStatus, live bool, left time.Duration) error {
			pid, _ := strconv.Atoi(a[annoPID])
			return &LockedError{Product: product, RunID: prevRun, Actor: a[annoActor], Host: a[annoHost], PID: pid,
				Age: now.Sub(since), Status: status, Live: live, Expires: left}
		}
		taken := ""
		if prevRun != "" {
			if live, left := l.live(cur); live {
				return nil, refusal(engine.RunRunning, true, left)
			}
			if prevRun != runID {
				st, err := l.RunStatus(ctx, prevRun)
				if err != nil {
					return nil, err
				}
				if runOpen(st) {
					if !takeOver {
						return nil, refusal(st, false, 0)
					}
					taken = prevRun
				}
			}
		}
		next := cur.DeepCopy()
		acquired := now
		if prevRun == runID && !since.IsZero() {
			acquired = since // a resumed run keeps its age
		}
		l.stamp(next, product, runID, holder, acquired, now)
		if prevRun != runID {
			n := int32(1)
			if cur.Spec.LeaseTransitions != nil {
				n = *cur.Spec.LeaseTransitions + 1
			}
			next.Spec.LeaseTransitions = &n
			next.Spec.AcquireTime = &metav1.MicroTime{Time: now}
		}
		if taken != "" {
			next.Annotations[annoTakenFrom] = taken
		} else {
			delete(next.Annotations, annoTakenFrom)
		}
		_, err = leases.Update(ctx, next, metav1.UpdateOptions{}) // carries cur's resourceVersion
		if apierrors.IsConflict(err) {
			continue // someone wrote it since we read it: read it again and decide
		}
		if err != nil {
			return nil, apiError(err, "update "+what, l.Namespace)
		}
		return l.hold(ctx, product, runID), nil
	}
}

// stamp writes the holder's fields into a lease.
func (l *Lock) stamp(lease *coordinationv1.Lease, product, runID, holder string, since, now time.Time) *coordinationv1.Lease {
	secs := int32(l.LeaseDuration / time.Second)
	if secs < 1 {
		secs = 1
	}
	lease.Spec.HolderIdentity = &runID
	lease.Spec.LeaseDurationSeconds = &secs
	lease.Spec.RenewTime = &metav1.MicroTime{Time: now}
	if lease.Spec.AcquireTime == nil {
		lease.Spec.AcquireTime = &metav1.MicroTime{Time: now}
	}
	if lease.Labels == nil {
		lease.Labels = map[string]string{}
	}
	lease.Labels[labelManagedBy] = managedBy
	lease.Labels[labelProduct] = product
	if lease.Annotations == nil {
		lease.Annotations = map[string]string{}
	}
	lease.Annotations[annoActor] = holder
	lease.Annotations[annoHost] = l.Host
	lease.Annotations[annoPID] = strconv.Itoa(os.Getpid())
	lease.Annotations[annoProcess] = l.process
	lease.Annotations[annoSince] = since.UTC().Format(time.RFC3339Nano)
	lease.Annotations[annoRunStatus] = string(engine.RunRunning)
	return lease
}

// hold starts the renewal and returns the release function.
func (l *Lock) hold(ctx context.Context, product, runID string) func(context.Context) error {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(l.RenewInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if err := l.renew(ctx, product, runID); err != nil {
					var lost *lostError
					if errors.As(err, &lost) {
						if l.OnLost != nil {
							l.OnLost(err)
						}
						return
					}
					// A failed renewal is tried again at the next tick; the lease
					// lasts three intervals.
				}
			}
		}
	}()
	var once sync.Once
	var result error
	return func(rctx context.Context) error {
		once.Do(func() {
			close(stop)
			<-done
			result = l.release(rctx, product, runID)
		})
		return result
	}
}

type lostError struct{ msg string }

func (e *lostError) Error() string { return e.msg }

// mine reads the lease and says whether this process still holds it for runID.
func (l *Lock) mine(ctx context.Context, product, runID string) (*coordinationv1.Lease, error) {
	cur, err := l.Client.CoordinationV1().Leases(l.Namespace).Get(ctx, LeaseName(product), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, &lostError{fmt.Sprintf("release lock for %s: lease %s was deleted", product, LeaseName(product))}
	}
	if err != nil {
		return nil, apiError(err, "get lease "+LeaseName(product), l.Namespace)
	}
	if cur.Spec.HolderIdentity == nil || *cur.Spec.HolderIdentity != runID || cur.Annotations[annoProcess] != l.process {
		holder := ""
		if cur.Spec.HolderIdentity != nil {
			holder = *cur.Spec.HolderIdentity
		}
		return nil, &lostError{fmt.Sprintf("release lock for %s was taken from run %s by run %s (%s on %s)", product, runID, orUnknown(holder), cur.Annotations[annoActor], cur.Annotations[annoHost])}
	}
	return cur, nil
}

func (l *Lock) renew(ctx context.Context, product, runID string) error {
	cur, err := l.mine(ctx, product, runID)
	if err != nil {
		return err
	}
	cur.Spec.RenewTime = &metav1.MicroTime{Time: l.Now().UTC()}
	_, err = l.Client.CoordinationV1().Leases(l.Namespace).Update(ctx, cur, metav1.UpdateOptions{})
	return err // a conflict is retried at the next tick, after reading again
}

func (l *Lock) release(ctx context.Context, product, runID string) error {
	for attempt := 0; attempt < 20; attempt++ {
		cur, err := l.mine(ctx, product, runID)
		var lost *lostError
		if errors.As(err, &lost) {
			return nil // not ours any more: nothing to release
		}
		if err != nil {
			return err
		}
		st, err := l.RunStatus(ctx, runID)
		if err != nil {
			return err
		}
		delete(cur.Annotations, annoProcess)
		cur.Annotations[annoRunStatus] = string(st)
		if !runOpen(st) || strings.HasPrefix(product, "rehearsal-") {
			cur.Spec.HolderIdentity = nil
			cur.Annotations[annoLastRun] = runID
		}
		_, err = l.Client.CoordinationV1().Leases(l.Namespace).Update(ctx, cur, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			continue
		}
		return apiError(err, "update lease "+LeaseName(product), l.Namespace)
	}
	return fmt.Errorf("kubestate: release lock for %s: gave up after repeated conflicting writes", product)
}
