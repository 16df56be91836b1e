package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cessda/runbook/engine"
)

// The release lock: two people must not release the same product at the same time.
// It has two layers. A flock on the lock file excludes a second process while a run is
// executing (the kernel drops it when the process dies, so a crash leaves no stale
// process lock). The record in the file holds the product for a run that is not over yet
// (waiting for an approval, failed and resumable): a new run is refused, with the holder
// and its age, until that run ends or someone takes it over explicitly with --take-over.
type lockRecord struct {
	RunID string    `json:"run_id"`
	Actor string    `json:"actor"`
	Host  string    `json:"host"`
	PID   int       `json:"pid"`
	Since time.Time `json:"since"`
}

var takeOver bool

func acquireLock(stateDir, product, runID string) (func(), error) {
	dir := filepath.Join(stateDir, "locks")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, product+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	var prev lockRecord
	if b, _ := os.ReadFile(path); len(b) > 0 {
		_ = json.Unmarshal(b, &prev)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, exitWith(exitLocked, fmt.Errorf("release lock for %s is held by a running process: run %s by %s on %s (pid %d) for %s; wait for it to stop",
			product, prev.RunID, prev.Actor, prev.Host, prev.PID, time.Since(prev.Since).Round(time.Second)))
	}
	if prev.RunID != "" && prev.RunID != runID && !takeOver && runOpen(stateDir, prev.RunID) {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
		return nil, exitWith(exitLocked, fmt.Errorf("release lock for %s is held by run %s (%s, started by %s %s ago, not finished); resume it with `runbook resume %s`, or take the lock over with --take-over",
			product, prev.RunID, runStatus(stateDir, prev.RunID), prev.Actor, time.Since(prev.Since).Round(time.Second), prev.RunID))
	}
	host, _ := os.Hostname()
	rec := lockRecord{RunID: runID, Actor: engine.CurrentActor(), Host: host, PID: os.Getpid(), Since: time.Now().UTC()}
	if prev.RunID == runID {
		rec.Since = prev.Since
	}
	b, _ := json.Marshal(rec)
	f.Truncate(0)
	f.WriteAt(b, 0)
	f.Sync()
	return func() {
		// The run keeps the product while it can still be resumed.
		if !runOpen(stateDir, runID) || strings.HasPrefix(product, "rehearsal-") {
			f.Truncate(0)
		}
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

func runStatus(stateDir, runID string) engine.RunStatus {
	rep, _, err := engine.ReadJournal(filepath.Join(stateDir, "runs", runID))
	if err != nil {
		return ""
	}
	return rep.Status
}

// runOpen says whether a run can still go on (and so holds its product).
func runOpen(stateDir, runID string) bool {
	switch runStatus(stateDir, runID) {
	case engine.RunRunning, engine.RunWaiting, engine.RunFailed, engine.RunCancelled:
		return true
	}
	return false
}
