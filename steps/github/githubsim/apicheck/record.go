package apicheck

import (
	_ "embed"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/cessda/runbook/steps/simkit"
)

// Recorder checks every exchange it observes and keeps the distinct violations; servers
// may call Observe at once.
type Recorder struct {
	c          *Checker
	mu         sync.Mutex
	exchanges  int
	violations map[string]Violation // by Key, the first exchange that showed it
	counts     map[string]int
	operations map[string]int // exchanges checked, by operation
}

// NewRecorder returns a Recorder checking with c.
func NewRecorder(c *Checker) *Recorder {
	return &Recorder{c: c, violations: map[string]Violation{}, counts: map[string]int{}, operations: map[string]int{}}
}

// Observe checks one exchange (a githubsim observer).
func (r *Recorder) Observe(o simkit.Observed) {
	vs := r.c.Check(o)
	op := r.c.Operation(o)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exchanges++
	if op != "" {
		r.operations[op]++
	}
	for _, v := range vs {
		k := v.Key()
		if _, ok := r.violations[k]; !ok {
			r.violations[k] = v
		}
		r.counts[k]++
	}
}

// Exchanges is how many exchanges were observed.
func (r *Recorder) Exchanges() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.exchanges
}

// Unexercised lists the operations of the description no exchange was checked as.
func (r *Recorder) Unexercised() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, op := range r.c.Operations() {
		if r.operations[op] == 0 {
			out = append(out, op)
		}
	}
	return out
}

// Keys returns the distinct violations' keys, sorted.
func (r *Recorder) Keys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	keys := make([]string, 0, len(r.violations))
	for k := range r.violations {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Compare holds the violations against an allow-list: unexpected are the violations not
// listed (with an example exchange and how often they occurred), gone the listed lines
// that did not occur, so the list can only shrink.
func (r *Recorder) Compare(allowed []string) (unexpected, gone []string) {
	listed := map[string]bool{}
	for _, k := range allowed {
		listed[k] = true
	}
	seen := map[string]bool{}
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, v := range r.violations {
		seen[k] = true
		if !listed[k] {
			unexpected = append(unexpected, fmt.Sprintf("%s\n\t(%d times; first %s)", k, r.counts[k], v))
		}
	}
	for _, k := range allowed {
		if !seen[k] {
			gone = append(gone, k)
		}
	}
	sort.Strings(unexpected)
	sort.Strings(gone)
	return unexpected, gone
}

//go:embed testdata/known-violations.txt
var knownViolations string

// KnownViolations returns the lines of section in testdata/known-violations.txt: the
// violations githubsim's answers have until they are fixed. The file is embedded, so
// go test's cache sees a change to it.
func KnownViolations(section string) []string {
	return AllowList(knownViolations, section)
}

// AllowList returns the lines of section in an allow-list. It has sections headed
// "[name]" (one per test package that checks exchanges), one violation Key a line; blank
// lines and lines starting with # are comments.
func AllowList(text, section string) []string {
	var lines []string
	in := false
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			in = l[1:len(l)-1] == section
		case in:
			lines = append(lines, l)
		}
	}
	return lines
}
