package shell

import (
	"sync"
	"unicode/utf8"

	"github.com/cessda/runbook/engine"
)

// lineWriter sends a command's output to the step log one line at a time and keeps the
// last tailBytes for the outputs. Memory is bounded whatever the command prints.
type lineWriter struct {
	sc      *engine.StepContext
	stream  string
	logMu   *sync.Mutex // shared by stdout and stderr so their lines do not interleave mid-line
	partial []byte
	tail    Tail
}

func newLineWriter(sc *engine.StepContext, stream string, mu *sync.Mutex) *lineWriter {
	return &lineWriter{sc: sc, stream: stream, logMu: mu, tail: Tail{Max: tailBytes}}
}

// Write is called by os/exec's copying goroutine, one per stream.
func (w *lineWriter) Write(p []byte) (int, error) {
	w.tail.Write(p)
	for _, b := range p {
		if b == '\n' {
			w.emit()
			continue
		}
		w.partial = append(w.partial, b)
		if len(w.partial) >= maxLineBytes {
			w.emit()
		}
	}
	return len(p), nil
}

// Flush logs an unfinished last line.
func (w *lineWriter) Flush() {
	if len(w.partial) > 0 {
		w.emit()
	}
}

func (w *lineWriter) emit() {
	line := string(w.partial)
	w.partial = w.partial[:0]
	w.logMu.Lock()
	defer w.logMu.Unlock()
	// One call per line, with %s: the command's text is never a format string.
	w.sc.Logf("%s| %s", w.stream, line)
}

// Tail returns the last bytes kept, as text.
func (w *lineWriter) Tail() string { return w.tail.String() }

// Tail keeps the last Max bytes written to it.
type Tail struct {
	Max int
	buf []byte
}

// Write appends p, dropping what falls out of the window.
func (t *Tail) Write(p []byte) {
	if len(p) >= t.Max {
		t.buf = append(t.buf[:0], p[len(p)-t.Max:]...)
		return
	}
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.Max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.Max:]...)
	}
}

// String returns the kept bytes, without a rune cut in half at the start.
func (t *Tail) String() string {
	b := t.buf
	for i := 0; i < utf8.UTFMax-1 && len(b) > 0 && !utf8.RuneStart(b[0]); i++ {
		b = b[1:]
	}
	return string(b)
}
