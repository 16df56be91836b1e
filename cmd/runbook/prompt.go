package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/cessda/runbook/engine"
)

// terminalPrompter asks the person at the terminal.
type terminalPrompter struct {
	mu            sync.Mutex
	in            io.Reader
	out           io.Writer
	r             *bufio.Reader
	pause, resume func()
}

func (t *terminalPrompter) line(ctx context.Context, text string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.r == nil {
		t.r = bufio.NewReader(t.in)
	}
	t.pause()
	defer t.resume()
	fmt.Fprintf(t.out, "\n%s ", text)
	type answer struct {
		s   string
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		s, err := t.r.ReadString('\n')
		ch <- answer{strings.TrimSpace(s), err}
	}()
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case a := <-ch:
		return a.s, a.err
	}
}

// Confirm implements engine.Prompter.
func (t *terminalPrompter) Confirm(ctx context.Context, text string) (bool, error) {
	for {
		s, err := t.line(ctx, text+" [yes/no]")
		if err != nil {
			return false, err
		}
		switch strings.ToLower(s) {
		case "y", "yes":
			return true, nil
		case "n", "no":
			return false, nil
		}
	}
}

// Ask implements engine.Prompter.
func (t *terminalPrompter) Ask(ctx context.Context, text string) (string, error) {
	return t.line(ctx, text)
}

// guide asks the operator what to do about a failed step, saying what the playbook's
// policy for it is and what each answer means. An answer it does not know is said so.
func (t *terminalPrompter) guide(ctx context.Context, q engine.GuideQuestion) (engine.GuideChoice, error) {
	what := q.Step
	if q.Name != "" {
		what = fmt.Sprintf("%s (%s)", q.Step, q.Name)
	}
	policy := "the playbook says: stop, resumable"
	if q.Policy == engine.OnErrorRollback {
		policy = "the playbook says: roll production back"
	}
	question := fmt.Sprintf("Step %s failed: %s\n(%s)\nWhat now? [r]etry, [s]kip, roll [b]ack, s[t]op (resume later)", what, firstLineOf(q.Error), policy)
	for {
		s, err := t.line(ctx, question)
		if err != nil {
			return engine.GuideChoice{}, err
		}
		switch strings.ToLower(s) {
		case "r", "retry":
			return engine.GuideChoice{Action: "retry"}, nil
		case "s", "skip":
			reason, err := t.line(ctx, fmt.Sprintf("Skipping %s means it is not done, and the release goes on as if it were (recorded as a warning). Why skip it? (empty: go back)", what))
			if err != nil || reason == "" {
				if err != nil {
					return engine.GuideChoice{}, err
				}
				continue
			}
			return engine.GuideChoice{Action: "skip", Reason: reason}, nil
		case "b", "rollback", "roll back":
			reason, err := t.line(ctx, "Roll the release back (the playbook's on_failure steps). Why? (empty: go back)")
			if err != nil {
				return engine.GuideChoice{}, err
			}
			if reason == "" {
				continue
			}
			return engine.GuideChoice{Action: "rollback", Reason: reason}, nil
		case "t", "stop":
			return engine.GuideChoice{Action: "stop"}, nil
		default:
			question = fmt.Sprintf("%q is not an answer: type r (retry), s (skip), b (roll back) or t (stop).", s)
		}
	}
}
