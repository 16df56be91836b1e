package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cessda/runbook/engine"
)

// progress shows a run as it goes: on a terminal a live list of steps with their status
// and elapsed time, redrawn in place; elsewhere one plain line per event (CI logs).
type progress struct {
	mu      sync.Mutex
	w       io.Writer
	live    bool
	quiet   bool
	color   bool
	order   []string
	state   map[string]*stepLine
	drawn   int
	last    string
	paused  bool
	stopped chan struct{}
	done    chan struct{}
}

type stepLine struct {
	id, typ string
	status  string
	started time.Time
	ended   time.Time
	note    string
}

func newProgress(w io.Writer, pb *engine.Playbook, live, quiet bool) *progress {
	p := &progress{w: w, live: live, quiet: quiet, state: map[string]*stepLine{}, color: os.Getenv("NO_COLOR") == "" && live}
	for _, st := range pb.AllSteps() {
		p.order = append(p.order, st.ID)
		p.state[st.ID] = &stepLine{id: st.ID, typ: st.Type, status: "pending"}
	}
	if live {
		p.stopped, p.done = make(chan struct{}), make(chan struct{})
		go p.tick()
	}
	return p
}

// tick redraws the live list so elapsed times move while a step runs.
func (p *progress) tick() {
	defer close(p.done)
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stopped:
			return
		case <-t.C:
			p.mu.Lock()
			p.draw()
			p.mu.Unlock()
		}
	}
}

func (p *progress) event(ev *engine.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.state[ev.Step]
	now := time.Now()
	switch ev.Kind {
	case engine.EventStart:
		if s == nil || ev.Item > 0 {
			break
		}
		s.status, s.started, s.note = "running", now, ""
		if ev.Attempt > 1 {
			s.note = fmt.Sprintf("attempt %d", ev.Attempt)
		}
		p.plain("%s  %s (%s) started%s", stamp(ev.Time), ev.Step, s.typ, attemptNote(ev.Attempt))
	case engine.EventEnd:
		if s == nil {
			break
		}
		if ev.Item > 0 {
			p.plain("%s  %s item %d %s%s", stamp(ev.Time), ev.Step, ev.Item-1, ev.Status, errNote(ev.Error))
			break
		}
		s.status, s.ended = ev.Status, now
		if s.started.IsZero() {
			s.started = now
		}
		s.note = ev.Error
		if ev.Status == "skipped" {
			s.note = ev.Reason
		}
		p.plain("%s  %s %s%s", stamp(ev.Time), ev.Step, ev.Status, errNote(firstNonEmpty(ev.Error, ev.Reason)))
	case engine.EventLog:
		if s != nil && ev.Line != "" {
			s.note = ev.Line
		}
		if !p.live && !p.quiet {
			fmt.Fprintf(p.w, "%s  %s | %s\n", stamp(ev.Time), ev.Step, ev.Line)
		}
	case engine.EventLink:
		p.plain("%s  %s → %s: %s", stamp(ev.Time), ev.Step, ev.Link.Title, ev.Link.URL)
	case engine.EventSession:
		p.plain("%s  run session %d by %s", stamp(ev.Time), ev.Session.N, ev.Session.Actor)
	case engine.EventRunEnd:
		p.plain("%s  run %s", stamp(ev.Time), ev.Status)
	}
	p.draw()
}

func attemptNote(n int) string {
	if n > 1 {
		return fmt.Sprintf(" (attempt %d)", n)
	}
	return ""
}

func errNote(s string) string {
	if s == "" {
		return ""
	}
	return ": " + firstLineOf(s)
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func firstLineOf(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func stamp(t time.Time) string { return t.Local().Format("15:04:05") }

func (p *progress) plain(format string, args ...any) {
	if p.live || p.quiet {
		return
	}
	fmt.Fprintf(p.w, format+"\n", args...)
}

var symbols = map[string]string{"pending": "·", "running": "▶", "succeeded": "✓", "failed": "✗", "skipped": "↷", "cancelled": "■", "waiting": "⏸", "rejected": "⊘"}
var colors = map[string]string{"running": "\x1b[36m", "succeeded": "\x1b[32m", "failed": "\x1b[31m", "skipped": "\x1b[90m", "cancelled": "\x1b[33m", "waiting": "\x1b[33m", "rejected": "\x1b[31m"}

func (p *progress) draw() {
	if !p.live || p.paused {
		return
	}
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
	}
	now := time.Now()
	for _, id := range p.order {
		s := p.state[id]
		el := ""
		if !s.started.IsZero() {
			end := s.ended
			if end.IsZero() {
				end = now
			}
			el = end.Sub(s.started).Round(100 * time.Millisecond).String()
		}
		line := fmt.Sprintf("%s %-28s %-22s %-10s %7s  %s", symbols[s.status], s.id, s.typ, s.status, el, firstLineOf(s.note))
		if len(line) > 150 {
			line = line[:150]
		}
		if c := colors[s.status]; c != "" && p.color {
			line = c + line + "\x1b[0m"
		}
		b.WriteString("\x1b[2K" + line + "\n")
	}
	p.drawn = len(p.order)
	fmt.Fprint(p.w, b.String())
}

// pause stops redrawing while a prompt owns the terminal.
func (p *progress) pause() {
	p.mu.Lock()
	p.paused = true
	p.drawn = 0
	p.mu.Unlock()
}

func (p *progress) resume() {
	p.mu.Lock()
	p.paused = false
	p.draw()
	p.mu.Unlock()
}

func (p *progress) finish() {
	if p.live {
		close(p.stopped)
		<-p.done
		p.mu.Lock()
		p.draw()
		p.mu.Unlock()
	}
}
