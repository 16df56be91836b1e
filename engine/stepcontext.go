package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"
)

// StepContext is what a step sees of the run: who and what it runs for, its connections,
// a clock, a log, a durable journal and a place to record links. The engine builds one
// per attempt; enginetest.NewContext builds one for a step's own tests.
type StepContext struct {
	RunID     string
	StepID    string
	Product   string
	Attempt   int  // 1 for the first attempt
	Item      any  // the foreach item, or nil
	Rehearsal bool // true when the run talks to the built-in simulators
	// Actor is who runs the release (a login), as recorded in the report.
	Actor string
	// Roles are the playbook's roles: role name to the people (logins) who hold it.
	Roles map[string][]string
	// People are the playbook's `people:`: login to name and contact addresses.
	People map[string]Person
	// PlanHash identifies the run's plan; approvals are bound to it.
	PlanHash string

	Clock Clock
	// Prompter asks a person on a terminal; nil when the run is not interactive.
	Prompter Prompter
	// GatesEndRun: a gate whose answer is not there yet returns engine.Waiting at once
	// instead of polling (the run was started with --non-interactive).
	GatesEndRun bool
	// Connections resolves the playbook's named connections.
	Connections ConnectionResolver
	// Journal is the step's durable memory (survives crashes and resumes).
	Journal Journal
	// LogFunc receives one line of the step's log (already redacted by the engine).
	LogFunc func(line string)
	// LinkFunc records a link (issue, tag, build, DOI, release) in the report.
	LinkFunc func(title, url string)
	// Report returns a copy of the run's report as it stands (nil outside a run): a step
	// can publish the release report of the run it is part of.
	Report func() *Report

	// unknown holds the parameters whose value is known only after earlier steps run.
	unknown map[string]bool
	memo    *preflightMemo
	mu      sync.Mutex
}

// Person is someone named in the playbook's roles.
type Person struct {
	Login string `json:"login"`
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	Chat  string `json:"chat,omitempty"` // chat handle, e.g. "@jane"
}

// RolePeople returns the people who hold role, with whatever the playbook says of them.
func (sc *StepContext) RolePeople(role string) []Person {
	var out []Person
	for _, login := range sc.Roles[role] {
		p, ok := sc.People[login]
		if !ok {
			p = Person{Login: login}
		}
		if p.Login == "" {
			p.Login = login
		}
		out = append(out, p)
	}
	return out
}

// Confirmation is what a person answered to a gate, recorded in the step's journal under
// the key "confirmation" by `runbook resume RUN --confirm STEP` (or --refuse) before the
// step runs again. Gates read it with sc.Recall("confirmation", &c).
type Confirmation struct {
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Answer string    `json:"answer"` // "yes" or "no"
	Reason string    `json:"reason,omitempty"`
}

// Prompter asks a person a question on a terminal.
type Prompter interface {
	// Confirm shows text and waits for yes or no.
	Confirm(ctx context.Context, text string) (bool, error)
	// Ask shows text and returns the answer line.
	Ask(ctx context.Context, text string) (string, error)
}

// ConnectionResolver finds a playbook's connection by name and type.
type ConnectionResolver interface {
	// Connection returns the connection called name, which must be of type typ. An empty
	// name selects the playbook's only connection of that type, or the one named typ.
	Connection(name, typ string) (*Connection, error)
}

// Journal is a step's durable key-value memory. Put returns only once the value is on
// disk, so a step records its intent ("triggered queue item 42") before it can crash.
type Journal interface {
	Get(key string) (json.RawMessage, bool)
	Put(key string, value json.RawMessage) error
}

// Connection returns the connection the step should use.
func (sc *StepContext) Connection(name, typ string) (*Connection, error) {
	if sc.Connections == nil {
		return nil, fmt.Errorf("no %s connection is configured for step %s", typ, sc.StepID)
	}
	return sc.Connections.Connection(name, typ)
}

// Logf writes one line to the step's log.
func (sc *StepContext) Logf(format string, args ...any) {
	if sc.LogFunc == nil {
		return
	}
	for _, line := range strings.Split(strings.TrimRight(fmt.Sprintf(format, args...), "\n"), "\n") {
		sc.LogFunc(line)
	}
}

// Link records a link in the report.
func (sc *StepContext) Link(title, url string) {
	if sc.LinkFunc != nil && url != "" {
		sc.LinkFunc(title, url)
	}
}

// Now returns the run's current time.
func (sc *StepContext) Now() time.Time {
	if sc.Clock == nil {
		return time.Now()
	}
	return sc.Clock.Now()
}

// Sleep waits d on the run's clock, or until ctx is done.
func (sc *StepContext) Sleep(ctx context.Context, d time.Duration) error {
	c := sc.Clock
	if c == nil {
		c = RealClock{}
	}
	return Sleep(ctx, c, d)
}

// Record durably stores v under key in the step's journal (as JSON).
func (sc *StepContext) Record(key string, v any) error {
	if sc.Journal == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("journal %s: %w", key, err)
	}
	return sc.Journal.Put(key, b)
}

// Recall loads the value stored under key into v; it reports whether there was one.
func (sc *StepContext) Recall(key string, v any) bool {
	if sc.Journal == nil {
		return false
	}
	b, ok := sc.Journal.Get(key)
	if !ok {
		return false
	}
	return json.Unmarshal(b, v) == nil
}

// Unknown reports whether the parameter (by its `with:` name, dotted for nested fields)
// is only known after earlier steps run. Always false during Run.
func (sc *StepContext) Unknown(param string) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.unknown[param] {
		return true
	}
	for k := range sc.unknown {
		if strings.HasPrefix(param, k+".") {
			return true
		}
	}
	return false
}

// SetUnknown marks parameters as known only after earlier steps run (used by the planner
// and by tests of Plan).
func (sc *StepContext) SetUnknown(params ...string) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.unknown == nil {
		sc.unknown = map[string]bool{}
	}
	for _, p := range params {
		sc.unknown[p] = true
	}
}

// KnownAfterRun is how a plan shows a value that is not known yet.
const KnownAfterRun = "(known after run)"

// Show formats a parameter's value for a plan, or KnownAfterRun.
func (sc *StepContext) Show(param string, v any) string {
	if sc.Unknown(param) {
		return KnownAfterRun
	}
	return fmt.Sprint(v)
}
