package simkit

import (
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Fault changes the answer to matching requests. Faults are tried in the order injected;
// the first live one that matches applies.
type Fault struct {
	// Method ("" for any) and Path, a ServeMux pattern without a host
	// ("/repos/{owner}/{repo}/git/refs", "/api/" for a subtree, "/job/{path...}").
	Method string
	Path   string
	// Times is how many matching requests the fault affects; 0 means every one.
	Times int

	// What the fault answers, instead of the simulator: Answer when set, else Status with
	// Header and Body. A fault with none of these and no Drop only delays the request.
	Status int
	Header http.Header
	Body   string
	Answer http.HandlerFunc

	Delay time.Duration // wait this long first (real time: keep it to milliseconds in tests)
	Drop  bool          // close the connection without an answer
	// After lets the request take effect first, then drops or replaces its answer: the
	// change is made and the client never learns it (a lost response).
	After bool

	m    matcher
	hits int
}

func (f *Fault) answers() bool { return f.Drop || f.Answer != nil || f.Status != 0 }

// Inject adds a fault.
func (k *Kit) Inject(f Fault) {
	f.m = newMatcher(f.Method, f.Path)
	k.mu.Lock()
	k.faults = append(k.faults, &f)
	k.mu.Unlock()
}

// ClearFaults removes every fault.
func (k *Kit) ClearFaults() {
	k.mu.Lock()
	k.faults = nil
	k.mu.Unlock()
}

// take finds the first live fault for r and spends one of its times.
func (k *Kit) take(r *http.Request) *Fault {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i, f := range k.faults {
		if !f.m.match(r.Method, r.URL.EscapedPath()) {
			continue
		}
		f.hits++
		if f.Times > 0 && f.hits >= f.Times {
			k.faults = append(k.faults[:i:i], k.faults[i+1:]...)
		}
		return f
	}
	return nil
}

// matcher matches a method and path against a ServeMux pattern, using a ServeMux: the
// pattern means exactly what it means in a simulator's routes.
type matcher struct {
	method string
	mux    *http.ServeMux
}

func newMatcher(method, pattern string) matcher {
	m := matcher{method: strings.ToUpper(method)}
	if pattern == "" {
		return m
	}
	// A method written in the pattern itself ("POST /x") is honoured too.
	if i := strings.IndexByte(pattern, ' '); i > 0 {
		m.method, pattern = strings.ToUpper(pattern[:i]), strings.TrimSpace(pattern[i+1:])
	}
	m.mux = http.NewServeMux()
	m.mux.Handle(pattern, http.NotFoundHandler())
	return m
}

func (m matcher) match(method, escapedPath string) bool {
	if m.method != "" && m.method != strings.ToUpper(method) {
		return false
	}
	if m.mux == nil {
		return true
	}
	u := &url.URL{Path: escapedPath, RawPath: escapedPath}
	if p, err := url.PathUnescape(escapedPath); err == nil {
		u.Path = p
	}
	_, pattern := m.mux.Handler(&http.Request{Method: http.MethodGet, URL: u, Host: ""})
	return pattern != ""
}
