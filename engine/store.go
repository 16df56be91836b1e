package engine

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Store keeps a run durable: an append-only journal of events (the truth, from which a
// run is resumed) and the report document (a projection of it, for people and tools).
type Store interface {
	// Append writes an event; when sync is true it returns only once the event is on disk.
	Append(ev *Event, sync bool) error
	// WriteReport replaces the report document atomically.
	WriteReport(doc []byte) error
	// Events returns the journal's events, in order.
	Events() ([]*Event, error)
	Close() error
}

// FileStore keeps a run in a directory: journal.jsonl and report.json, plus an optional
// extra copy of the report (--report PATH).
type FileStore struct {
	Dir        string
	ReportPath string // extra report path, or ""
	mu         sync.Mutex
	journal    *os.File
	w          *bufio.Writer
	line       []byte // the event being appended, reused
	// reportSum is the last report written: a run's end writes the same document twice,
	// and the second would cost another temp file, fsync and rename.
	reportSum [sha256.Size]byte
	syncTimer *time.Timer // syncs unsynced appends after syncDelay
	closed    bool
}

// syncDelay is the longest an unsynced append stays only in the process's memory: the
// events of read-only steps become durable within it even when no write or stop follows
// (a long wait's record of when it started), at one fsync per delay at most.
const syncDelay = 200 * time.Millisecond

// OpenFileStore opens a run directory. A new run's directory appears only with its first
// event (see create): a run killed before it recorded anything leaves no run behind.
func OpenFileStore(dir, reportPath string) (*FileStore, error) {
	s := &FileStore{Dir: dir, ReportPath: reportPath}
	f, err := os.OpenFile(filepath.Join(dir, "journal.jsonl"), os.O_RDWR|os.O_APPEND, 0o600)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	s.journal, s.w = f, bufio.NewWriterSize(f, 64<<10)
	return s, nil
}

// create makes the run's journal with its first event in it, durably and at once: it is
// written and synced under a temporary name, then renamed. Until then the directory holds
// no journal, and every command treats it as no run at all.
func (s *FileStore) create(first []byte) error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return err
	}
	path := filepath.Join(s.Dir, "journal.jsonl")
	tmp := path + ".starting"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(first)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(s.Dir); err == nil {
		d.Sync()
		d.Close()
	}
	s.journal, s.w = f, bufio.NewWriterSize(f, 64<<10)
	return nil
}

// Append implements Store. An append without sync stays in the process's buffer until
// the next synced one (or Close): the engine asks for sync where the journal must be
// durable (see Run.durable), and a crash loses only what it did not ask to keep.
func (s *FileStore) Append(ev *Event, sync bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := appendEvent(s.line[:0], ev)
	if err != nil {
		return err
	}
	s.line = append(b, '\n')
	if s.journal == nil {
		return s.create(s.line)
	}
	s.w.Write(s.line)
	if !sync {
		if s.syncTimer == nil {
			s.syncTimer = time.AfterFunc(syncDelay, s.syncPending)
		}
		return nil
	}
	if s.syncTimer != nil {
		s.syncTimer.Stop()
		s.syncTimer = nil
	}
	if err := s.w.Flush(); err != nil {
		return err
	}
	return s.journal.Sync()
}

// syncPending makes the unsynced appends durable (see syncDelay). A failure here is
// found again by the next synced append, which the engine checks.
func (s *FileStore) syncPending() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.syncTimer = nil
	if s.closed || s.journal == nil {
		return
	}
	if s.w.Flush() == nil {
		s.journal.Sync()
	}
}

// WriteReport implements Store: temp file, fsync, rename, so a crash never leaves a torn file.
func (s *FileStore) WriteReport(doc []byte) error {
	sum := sha256.Sum256(doc)
	s.mu.Lock()
	same := sum == s.reportSum
	s.mu.Unlock()
	if same {
		return nil
	}
	paths := []string{filepath.Join(s.Dir, "report.json")}
	if s.ReportPath != "" {
		paths = append(paths, s.ReportPath)
	}
	for _, p := range paths {
		if err := WriteFileAtomic(p, doc); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.reportSum = sum
	s.mu.Unlock()
	return nil
}

// Events implements Store. A torn last line (a crash mid-append) is ignored.
func (s *FileStore) Events() ([]*Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.journal == nil {
		return nil, nil
	}
	s.w.Flush()
	b, err := os.ReadFile(filepath.Join(s.Dir, "journal.jsonl"))
	if err != nil {
		return nil, err
	}
	return decodeEvents(b)
}

// DecodeEvents parses a journal. A torn last line (a crash mid-append) is ignored; a bad
// line elsewhere is an error.
func decodeEvents(b []byte) ([]*Event, error) {
	var out []*Event
	lines := bytes.Split(b, []byte("\n"))
	for i, line := range lines {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var ev Event
		if err := json.Unmarshal(line, &ev); err != nil {
			if i == len(lines)-1 || (i == len(lines)-2 && len(lines[len(lines)-1]) == 0) {
				break // torn tail
			}
			return nil, fmt.Errorf("journal line %d: %v", i+1, err)
		}
		out = append(out, &ev)
	}
	return out, nil
}

// Close implements Store.
func (s *FileStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.syncTimer != nil {
		s.syncTimer.Stop()
		s.syncTimer = nil
	}
	if s.journal == nil || s.closed {
		return nil
	}
	s.closed = true
	s.w.Flush()
	s.journal.Sync()
	return s.journal.Close()
}

// WriteFileAtomic writes a file by temp file, fsync and rename.
func WriteFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// MemStore keeps a run in memory (tests, benchmarks, plans).
type MemStore struct {
	mu      sync.Mutex
	journal []byte // the events as a journal file holds them
	Report  []byte
	Writes  int
}

// Append implements Store. It keeps the event's journal line, as a file would, so
// replays see what a resumed run would.
func (m *MemStore) Append(ev *Event, sync bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := appendEvent(m.journal, ev)
	if err != nil {
		return err
	}
	m.journal = append(b, '\n')
	return nil
}

// WriteReport implements Store.
func (m *MemStore) WriteReport(doc []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.Report = append(m.Report[:0], doc...)
	m.Writes++
	return nil
}

// Events implements Store.
func (m *MemStore) Events() ([]*Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return decodeEvents(m.journal)
}

// Close implements Store.
func (m *MemStore) Close() error { return nil }

// ReadJournal reads a run directory's journal and rebuilds its report.
func ReadJournal(dir string) (*Report, []*Event, error) {
	b, err := os.ReadFile(filepath.Join(dir, "journal.jsonl"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("%s is not a run directory (no journal.jsonl)", dir)
		}
		return nil, nil, err
	}
	evs, err := decodeEvents(b)
	if err != nil {
		return nil, nil, err
	}
	return ReplayEvents(evs), evs, nil
}

// ReplayEvents rebuilds a run's report from its journal's events, as read from any Store.
func ReplayEvents(evs []*Event) *Report {
	r := &Report{index: map[string]*StepReport{}}
	for _, ev := range evs {
		r.apply(ev)
	}
	return r
}

var _ io.Closer = (*FileStore)(nil)
