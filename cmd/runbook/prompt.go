package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
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
