package engine

import (
	"fmt"
	"sync"
	"time"
)

// reportWriter rewrites the report document at most every interval while steps run,
// so a long run costs O(steps) in report writes, not O(steps²); the journal is current
// after every change, and the report whenever the run stops.
type reportWriter struct {
	mu       sync.Mutex
	store    Store
	report   *Report
	interval time.Duration
	timer    *time.Timer
	dirty    bool
	stopped  bool
	err      error
}

func (w *reportWriter) changed() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.dirty = true
	if w.timer == nil && !w.stopped {
		w.timer = time.AfterFunc(w.interval, func() {
			w.mu.Lock()
			w.timer = nil
			w.mu.Unlock()
			w.flush()
		})
	}
}

func (w *reportWriter) flush() error {
	start := time.Now()
	doc, err := w.report.marshal()
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.dirty = false
	defer func() {
		// A big report is rewritten less often: writing it may take at most a tenth
		// of the run's time.
		if cost := 10 * time.Since(start); cost > w.interval {
			w.interval = cost
		}
	}()
	if err := w.store.WriteReport(doc); err != nil {
		w.err = err
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

func (w *reportWriter) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
}
