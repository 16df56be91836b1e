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

// guide asks the operator what to do about a failed step.
func (t *terminalPrompter) guide(ctx context.Context, step, errText string) (engine.GuideChoice, error) {
	for {
		s, err := t.line(ctx, fmt.Sprintf("Step %s failed: %s\nWhat now? [r]etry, [s]kip, roll [b]ack, s[t]op (resume later)", step, firstLineOf(errText)))
		if err != nil {
			return engine.GuideChoice{}, err
		}
		switch strings.ToLower(s) {
		case "r", "retry":
			return engine.GuideChoice{Action: "retry"}, nil
		case "s", "skip":
			reason, err := t.line(ctx, "Why skip it?")
			if err != nil {
				return engine.GuideChoice{}, err
			}
			if reason == "" {
				reason = "(no reason given)"
			}
			return engine.GuideChoice{Action: "skip", Reason: reason}, nil
		case "b", "rollback", "roll back":
			return engine.GuideChoice{Action: "rollback"}, nil
		case "t", "stop":
			return engine.GuideChoice{Action: "stop"}, nil
		}
	}
}
