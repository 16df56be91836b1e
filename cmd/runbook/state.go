package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/cessda/runbook/engine"
	kubesteps "github.com/cessda/runbook/steps/kubernetes"
	"github.com/cessda/runbook/steps/kubernetes/kubestate"
)

// stateBackend is where runs keep their journal and report, and where the release lock
// lives: the local state directory (the embedded default), or a Kubernetes namespace
// (--state kubernetes://CONTEXT/NAMESPACE) that operators and CI agents on different
// machines share, so any of them can see, lock and resume a run.
type stateBackend interface {
	// newRun returns the reference of a new run (a directory, or the run id).
	newRun(runID string) string
	// find resolves the RUN argument of resume to a reference and the run's report.
	find(ctx context.Context, arg string) (ref string, prior *engine.Report, err error)
	// open opens the run's store; reportPath, when set, gets a copy of every report.
	open(ctx context.Context, ref, reportPath string) (engine.Store, error)
	// lock takes the product's release lock for the run; onLost is called if another
	// machine takes it while the run goes on.
	lock(ctx context.Context, product, runID string, onLost func(error)) (unlock func(), err error)
	// where says where the report of the run is, for the summary line.
	where(ref string) string
	// readReport reads a run's report by run id (or, for the file backend, a run
	// directory or report path).
	readReport(ctx context.Context, arg string) (*engine.Report, error)
	// runs lists the runs kept here (of one product, or all when product is "").
	runs(ctx context.Context, product string) ([]*engine.Report, error)
}

// backend returns the state backend the flags and environment choose.
func (a *app) backend() (stateBackend, error) {
	spec := a.state
	if spec == "" || spec == "file" {
		return fileBackend{dir: a.stateDir}, nil
	}
	if rest, ok := strings.CutPrefix(spec, "kubernetes://"); ok {
		return newKubeBackend(rest)
	}
	return nil, exitWith(exitInvalid, fmt.Errorf("--state %q: want kubernetes://CONTEXT/NAMESPACE (or kubernetes:///NAMESPACE for the current context), or file for --state-dir", spec))
}

// fileBackend is the local state directory: runs/RUN_ID/{journal.jsonl,report.json} and
// locks/PRODUCT.lock (see lock.go).
type fileBackend struct{ dir string }

func (b fileBackend) newRun(runID string) string { return filepath.Join(b.dir, "runs", runID) }

func (b fileBackend) find(_ context.Context, arg string) (string, *engine.Report, error) {
	dir, err := findRunDir(b.dir, arg)
	if err != nil {
		return "", nil, err
	}
	prior, _, err := engine.ReadJournal(dir)
	return dir, prior, err
}

func (b fileBackend) open(_ context.Context, dir, reportPath string) (engine.Store, error) {
	return engine.OpenFileStore(dir, reportPath)
}

func (b fileBackend) lock(_ context.Context, product, runID string, _ func(error)) (func(), error) {
	return acquireLock(b.dir, product, runID)
}

func (b fileBackend) where(dir string) string { return filepath.Join(dir, "report.json") }

func (b fileBackend) readReport(_ context.Context, arg string) (*engine.Report, error) {
	return readReport(b.dir, arg)
}

func (b fileBackend) runs(_ context.Context, product string) ([]*engine.Report, error) {
	entries, err := os.ReadDir(filepath.Join(b.dir, "runs"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*engine.Report
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		// The journal is the truth (report.json lags it by up to a moment, and a run
		// killed at its start may have none).
		rep, _, err := engine.ReadJournal(filepath.Join(b.dir, "runs", e.Name()))
		if err != nil || rep.RunID == "" || (product != "" && rep.Product != product) {
			continue
		}
		out = append(out, rep)
	}
	return out, nil
}

// kubeBackend keeps runs in ConfigMaps and the lock in a Lease of one namespace
// (package kubestate). The cluster is reached with the kubeconfig ($KUBECONFIG or
// ~/.kube/config) and the context named in the URL, or the pod's service account.
type kubeBackend struct {
	cs        kubernetes.Interface
	context   string
	namespace string
}

func newKubeBackend(rest string) (*kubeBackend, error) {
	i := strings.LastIndex(rest, "/")
	if i < 0 || rest[i+1:] == "" {
		return nil, exitWith(exitInvalid, fmt.Errorf("--state kubernetes://%s: name the namespace: kubernetes://CONTEXT/NAMESPACE", rest))
	}
	b := &kubeBackend{context: rest[:i], namespace: rest[i+1:]}
	conn := &engine.Connection{Name: "--state kubernetes://" + rest, Type: kubesteps.ConnectionType, Settings: map[string]string{"context": b.context}}
	cfg, _, err := kubesteps.RESTConfig(conn)
	if err != nil {
		return nil, exitWith(exitInvalid, err)
	}
	// Every journal batch that marks a side effect is one write: the steps' throttle
	// (20 per second) would make the journal, not the release, the slow part.
	cfg.QPS, cfg.Burst = 50, 100
	if b.cs, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, exitWith(exitInvalid, fmt.Errorf("--state kubernetes://%s: %v", rest, err))
	}
	return b, nil
}

func orCurrent(context string) string {
	if context == "" {
		return "(current)"
	}
	return context
}

func (b *kubeBackend) newRun(runID string) string { return runID }

func (b *kubeBackend) find(ctx context.Context, arg string) (string, *engine.Report, error) {
	runID, err := runIDOf(arg)
	if err != nil {
		return "", nil, err
	}
	s, err := kubestate.Open(ctx, b.cs, b.namespace, runID)
	if err != nil {
		return "", nil, err
	}
	defer s.Close()
	evs, err := s.Events()
	if err != nil {
		return "", nil, err
	}
	if len(evs) == 0 {
		return "", nil, fmt.Errorf("no run %q in namespace %s of context %s (give a run id or a report path)", runID, b.namespace, orCurrent(b.context))
	}
	return runID, engine.ReplayEvents(evs), nil
}

func (b *kubeBackend) open(ctx context.Context, runID, reportPath string) (engine.Store, error) {
	s, err := kubestate.Open(ctx, b.cs, b.namespace, runID)
	if err != nil {
		return nil, err
	}
	if reportPath == "" {
		return s, nil
	}
	return &reportCopy{Store: s, path: reportPath}, nil
}

func (b *kubeBackend) lock(ctx context.Context, product, runID string, onLost func(error)) (func(), error) {
	l := kubestate.NewLock(b.cs, b.namespace)
	l.OnLost = onLost
	release, err := l.Acquire(ctx, product, runID, engine.CurrentActor(), takeOver)
	var locked *kubestate.LockedError
	if errors.As(err, &locked) {
		return nil, exitWith(exitLocked, err)
	}
	if err != nil {
		return nil, err
	}
	return func() {
		// The run's context may be cancelled already (an interrupt): the lease is
		// still written back, within its own deadline.
		rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := release(rctx); err != nil {
			fmt.Fprintf(os.Stderr, "runbook: releasing the lock of %s: %v\n", product, err)
		}
	}, nil
}

func (b *kubeBackend) where(runID string) string {
	return fmt.Sprintf("configmap %s in namespace %s", kubestate.ReportName(runID), b.namespace)
}

func (b *kubeBackend) readReport(ctx context.Context, arg string) (*engine.Report, error) {
	if st, err := os.Stat(arg); err == nil && !st.IsDir() {
		return readReport("", arg)
	}
	doc, err := kubestate.ReadReport(ctx, b.cs, b.namespace, arg)
	if err != nil {
		return nil, err
	}
	return decodeReport(doc, b.where(arg))
}

func decodeReport(doc []byte, where string) (*engine.Report, error) {
	var rep engine.Report
	if err := json.Unmarshal(doc, &rep); err != nil || rep.RunID == "" {
		return nil, fmt.Errorf("%s is not a runbook report (want the report.json of a run)", where)
	}
	return &rep, nil
}

func (b *kubeBackend) runs(ctx context.Context, product string) ([]*engine.Report, error) {
	infos, err := kubestate.ListRuns(ctx, b.cs, b.namespace, product)
	if err != nil {
		return nil, err
	}
	var out []*engine.Report
	for _, info := range infos {
		rep, err := decodeReport(info.Report, b.where(info.RunID))
		if err != nil {
			return nil, err
		}
		out = append(out, rep)
	}
	return out, nil
}

// runIDOf accepts a run id or the path of a report (whose run_id names the run).
func runIDOf(arg string) (string, error) {
	st, err := os.Stat(arg)
	if err != nil || st.IsDir() {
		return arg, nil
	}
	b, err := os.ReadFile(arg)
	if err != nil {
		return "", err
	}
	var r struct {
		RunID string `json:"run_id"`
	}
	if json.Unmarshal(b, &r) != nil || r.RunID == "" {
		return "", fmt.Errorf("%s is not a runbook report", arg)
	}
	return r.RunID, nil
}

// reportCopy also writes every report to a file (--report PATH), atomically.
type reportCopy struct {
	engine.Store
	path string
}

func (r *reportCopy) WriteReport(doc []byte) error {
	if err := r.Store.WriteReport(doc); err != nil {
		return err
	}
	return engine.WriteFileAtomic(r.path, doc)
}
