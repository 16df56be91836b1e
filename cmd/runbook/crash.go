//go:build crashpoints

package main

import (
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"

	"github.com/cessda/runbook/engine"
)

// Crash points for the crash-safety tests (bench/crash and cmd/runbook's crash test): the
// process kills itself with SIGKILL, as a power cut or `kill -9` would, at a chosen point.
// They are built only with `-tags crashpoints` (the tests build the binary so): the
// released binary never reads these variables nor replaces http.DefaultTransport.
//
//	RUNBOOK_CRASH_BEFORE_EVENT=N just before the Nth change to the run is written (N=1:
//	                             after the preflight and the lock, before the run exists)
//	RUNBOOK_CRASH_AFTER_EVENT=N  after the Nth change to the run (journal event) is made
//	RUNBOOK_CRASH_AFTER_WRITE=N  after the Nth HTTP write (POST, PUT, PATCH, DELETE) was
//	                             answered by the service, before the step sees the answer
//
// They do nothing unless set.
func installCrashPoints(opts *engine.Options) {
	if n, _ := strconv.Atoi(os.Getenv("RUNBOOK_CRASH_BEFORE_EVENT")); n > 0 && opts.Store != nil {
		opts.Store = &crashStore{Store: opts.Store, at: int64(n)}
	}
	if n, _ := strconv.Atoi(os.Getenv("RUNBOOK_CRASH_AFTER_EVENT")); n > 0 {
		var count atomic.Int64
		next := opts.Observer
		opts.Observer = func(ev *engine.Event) {
			if next != nil {
				next(ev)
			}
			if count.Add(1) == int64(n) {
				die()
			}
		}
	}
	if n, _ := strconv.Atoi(os.Getenv("RUNBOOK_CRASH_AFTER_WRITE")); n > 0 {
		http.DefaultTransport = &crashTransport{next: http.DefaultTransport, at: int64(n)}
	}
}

type crashTransport struct {
	next  http.RoundTripper
	at    int64
	count atomic.Int64
}

func (t *crashTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if r.Method != http.MethodGet && r.Method != http.MethodHead && t.count.Add(1) == t.at {
		die()
	}
	return resp, err
}

type crashStore struct {
	engine.Store
	at    int64
	count atomic.Int64
}

func (s *crashStore) Append(ev *engine.Event, sync bool) error {
	if s.count.Add(1) == s.at {
		die()
	}
	return s.Store.Append(ev, sync)
}

func die() { syscall.Kill(os.Getpid(), syscall.SIGKILL) }
