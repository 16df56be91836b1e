// Package enginetest builds step contexts for the tests of step packages, the way
// net/http/httptest builds requests: a step can be planned and run without a playbook.
package enginetest

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
)

// Context is a StepContext with its journal, log and links kept in memory for assertions.
type Context struct {
	*engine.StepContext
	Conns   map[string]*engine.Connection
	mu      sync.Mutex
	journal map[string]json.RawMessage
	lines   []string
	links   map[string]string
}

// NewContext returns a context for step stepID with the given connections (looked up by
// name, or by type when the step names none), a FakeClock and an in-memory journal.
func NewContext(t testing.TB, stepID string, conns ...*engine.Connection) *Context {
	c := &Context{Conns: map[string]*engine.Connection{}, journal: map[string]json.RawMessage{}, links: map[string]string{}}
	for _, cn := range conns {
		c.Conns[cn.Name] = cn
	}
	c.StepContext = &engine.StepContext{
		RunID:       "test-run",
		StepID:      stepID,
		Product:     "test",
		Attempt:     1,
		Actor:       "release-bot",
		Roles:       map[string][]string{},
		Clock:       engine.NewFakeClock(time.Date(2026, 11, 24, 13, 0, 0, 0, time.UTC)),
		Connections: c,
		Journal:     c,
		LogFunc: func(line string) {
			c.mu.Lock()
			c.lines = append(c.lines, line)
			c.mu.Unlock()
			if t != nil {
				t.Logf("[%s] %s", stepID, line)
			}
		},
		LinkFunc: func(title, url string) {
			c.mu.Lock()
			c.links[title] = url
			c.mu.Unlock()
		},
	}
	return c
}

// Connection implements engine.ConnectionResolver.
func (c *Context) Connection(name, typ string) (*engine.Connection, error) {
	if name != "" {
		cn, ok := c.Conns[name]
		if !ok {
			return nil, fmt.Errorf("no connection %q", name)
		}
		if cn.Type != typ {
			return nil, fmt.Errorf("connection %q is of type %s, not %s", name, cn.Type, typ)
		}
		return cn, nil
	}
	for _, cn := range c.Conns {
		if cn.Type == typ {
			return cn, nil
		}
	}
	return nil, fmt.Errorf("no %s connection", typ)
}

// Get implements engine.Journal.
func (c *Context) Get(key string) (json.RawMessage, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.journal[key]
	return v, ok
}

// Put implements engine.Journal.
func (c *Context) Put(key string, v json.RawMessage) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.journal[key] = append(json.RawMessage(nil), v...)
	return nil
}

// Log returns the step's log so far, one line per element.
func (c *Context) Log() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines...)
}

// LogText returns the log joined with newlines.
func (c *Context) LogText() string { return strings.Join(c.Log(), "\n") }

// Links returns the links recorded so far, by title.
func (c *Context) Links() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]string, len(c.links))
	for k, v := range c.links {
		out[k] = v
	}
	return out
}

// Decode builds a step of the named registered type from `with:` values, as the engine
// would, and fails the test when they do not decode.
func Decode(t testing.TB, typeName string, with map[string]any) engine.Step {
	t.Helper()
	st, ok := engine.LookupStepType(typeName)
	if !ok {
		t.Fatalf("step type %s is not registered", typeName)
	}
	s, err := engine.DecodeParams(st, with)
	if err != nil {
		t.Fatalf("decode %s: %v", typeName, err)
	}
	if v, ok := s.(engine.Validator); ok {
		if err := v.Validate(); err != nil {
			t.Fatalf("validate %s: %v", typeName, err)
		}
	}
	return s
}
