// Package githubsim is a stateful, in-memory GitHub REST API server for tests and
// rehearsals, in the manner of net/http/httptest and client-go's kubernetes/fake.
//
// It speaks the subset of the REST contract the runbook GitHub steps use (issues and
// pull requests, comments, milestones, refs and annotated tags, commits, branches,
// contents, releases) with GitHub's status codes, error bodies (message, errors[],
// documentation_url), Link pagination (per_page up to 100), ETag / If-None-Match with
// 304 answers that cost no rate limit, X-RateLimit-* headers and their exhaustion.
//
// Beside the API it serves GitHub's public web downloads from its repositories: a tag's
// source archive and a file at a ref (WebPath maps github.com and raw.githubusercontent.com
// addresses onto it), so a rehearsal publishes what the release really tagged.
//
// Tests seed it (CreateRepo, AddIssue, AddMilestone, Commit), act as people (Comment,
// EditComment, TickCheckbox, AutoRespond), inject faults (Inject) and count what the
// client did (Requests, WriteCount, Count). GET /user names the token's user, and GET
// /repos/{owner}/{repo} shows what the token may do: admin everywhere unless narrowed
// (SetPermission, SetScopes, SetInstallationToken, SetPrivate, RevokeToken), and writes
// beyond that are refused as GitHub refuses them. It listens on 127.0.0.1 only.
package githubsim

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Clock is the simulator's source of time (engine.Clock satisfies it). Sharing the run's
// fake clock keeps created_at, rate-limit resets and the run's timestamps consistent.
type Clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Option configures a Server.
type Option func(*Server)

// WithAutoCreate makes any repository referenced by a request exist on first reference,
// with default branch main, one commit and a Keep-a-Changelog CHANGELOG.md, so a
// rehearsal of any playbook works without seeding.
func WithAutoCreate() Option { return func(s *Server) { s.autoCreate = true } }

// WithClock sets the clock used for timestamps and rate-limit windows.
func WithClock(c Clock) Option { return func(s *Server) { s.clock = c } }

// WithToken makes the server accept only this bearer token (401 Bad credentials
// otherwise). Without it any non-empty token is accepted.
func WithToken(tok string) Option { return func(s *Server) { s.token = tok } }

// WithUser sets the login of the authenticated user: the author of what the client creates.
func WithUser(login string) Option { return func(s *Server) { s.user = login } }

// WithRateLimit sets the primary rate limit per hour (default 5000).
func WithRateLimit(n int) Option { return func(s *Server) { s.limit = n } }

// Server is a simulated GitHub API.
type Server struct {
	srv        *httptest.Server
	clock      Clock
	autoCreate bool
	token      string
	user       string
	limit      int

	mu        sync.Mutex
	repos     map[string]*repo
	nextID    int64
	comments  map[int64]*comment
	remaining int
	reset     time.Time
	requests  []Request
	faults    []*Fault
	responder func(Event)
	hooks     []func(r *http.Request)
	events    []Event
	tokens    map[string]*tokenInfo // tokens narrowed by SetPermission and the like
	revoked   map[string]bool
}

// Request is one request the server answered.
type Request struct {
	Method string
	Path   string // escaped path, without the query
	Query  string
	Status int
	Time   time.Time
	// Cost is what the request took from the primary rate limit (0 for 304s and faults).
	Cost int
}

// Write reports whether the request was a write (POST, PUT, PATCH, DELETE).
func (r Request) Write() bool { return r.Method != http.MethodGet && r.Method != http.MethodHead }

// Event is something a person or system would react to. Kind is one of
// "issue_created", "issue_edited", "comment_created", "comment_edited",
// "release_published", "ref_created", "file_updated", and "push" (a branch moved: Title is
// the branch, Body the new head's SHA), which a simulated CI reacts to.
type Event struct {
	Kind  string
	Repo  string // owner/name
	Issue int    // issue number, when the event is about an issue
	Title string
	Body  string
	User  string
}

// New starts a simulator on 127.0.0.1.
func New(opts ...Option) *Server {
	s := &Server{clock: realClock{}, user: "runbook-bot", limit: 5000, repos: map[string]*repo{}, comments: map[int64]*comment{}, nextID: 1000}
	for _, o := range opts {
		o(s)
	}
	s.remaining = s.limit
	s.reset = s.clock.Now().Add(time.Hour).Truncate(time.Second)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("githubsim: listen on 127.0.0.1: %v", err))
	}
	s.srv = &httptest.Server{Listener: l, Config: &http.Server{Handler: s}}
	s.srv.Start()
	return s
}

// URL is the base URL to give go-github (with the trailing slash it requires).
func (s *Server) URL() string { return s.srv.URL + "/" }

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// Client returns an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// AutoRespond installs fn, called after every write with the events it caused (an issue
// created, a comment posted), outside the server's lock and before the client gets its
// answer: a simulated service owner can answer /approve when the release issue appears.
func (s *Server) AutoRespond(fn func(ev Event)) {
	s.mu.Lock()
	s.responder = fn
	s.mu.Unlock()
}

// BeforeRequest installs fn, called (outside the lock) before each request is handled;
// tests use it to act as a person between two requests of a step.
func (s *Server) BeforeRequest(fn func(r *http.Request)) {
	s.mu.Lock()
	s.hooks = append(s.hooks, fn)
	s.mu.Unlock()
}

// Requests returns every request answered so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// ResetRequests forgets the recorded requests.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	s.requests = nil
	s.mu.Unlock()
}

// WriteCount is the number of write requests answered with a 2xx status.
func (s *Server) WriteCount() int {
	n := 0
	for _, r := range s.Requests() {
		if r.Write() && r.Status < 300 {
			n++
		}
	}
	return n
}

// Count is the number of requests with that method (any when "") whose path starts with pathPrefix.
func (s *Server) Count(method, pathPrefix string) int {
	n := 0
	for _, r := range s.Requests() {
		if (method == "" || r.Method == method) && strings.HasPrefix(r.Path, pathPrefix) {
			n++
		}
	}
	return n
}

// RateLimit returns the primary limit, what is left and when the window resets.
func (s *Server) RateLimit() (limit, remaining int, reset time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refillLocked()
	return s.limit, s.remaining, s.reset
}

// ExhaustRateLimit sets the remaining primary limit to 0 until resetIn from now.
func (s *Server) ExhaustRateLimit(resetIn time.Duration) {
	s.mu.Lock()
	s.remaining = 0
	s.reset = s.clock.Now().Add(resetIn).Truncate(time.Second)
	s.mu.Unlock()
}

func (s *Server) refillLocked() {
	if now := s.clock.Now(); !now.Before(s.reset) {
		s.remaining = s.limit
		s.reset = now.Add(time.Hour).Truncate(time.Second)
	}
}

// FaultKind is what an injected fault does.
type FaultKind int

const (
	// ServerError answers with Status (default 502) and a JSON error body.
	ServerError FaultKind = iota
	// SecondaryLimit answers 403 with the secondary-rate-limit documentation_url and Retry-After.
	SecondaryLimit
	// PrimaryLimit answers 403 with X-RateLimit-Remaining: 0 and a reset ResetIn from now.
	PrimaryLimit
	// Slow waits Delay (real time) before answering normally.
	Slow
	// Drop closes the connection without an answer.
	Drop
	// TooMany answers 429 (which go-github v60 does not recognise as a rate limit).
	TooMany
)

// Fault is an injected failure for requests matching Method (any when "") and Path, a
// path.Match pattern or a prefix ending in "*" matched against the escaped path.
type Fault struct {
	Kind       FaultKind
	Method     string
	Path       string
	Times      int // how many matching requests fail; 0 means every one
	Status     int
	RetryAfter time.Duration // SecondaryLimit: the Retry-After header (default 60s)
	ResetIn    time.Duration // PrimaryLimit: reset time from now (default 10m)
	Delay      time.Duration // Slow
	hits       int
}

// Inject adds a fault.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	s.faults = append(s.faults, &f)
	s.mu.Unlock()
}

// ClearFaults removes all injected faults.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

func (f *Fault) matches(method, p string) bool {
	if f.Times > 0 && f.hits >= f.Times {
		return false
	}
	if f.Method != "" && f.Method != method {
		return false
	}
	if f.Path == "" {
		return true
	}
	if strings.HasSuffix(f.Path, "*") && strings.HasPrefix(p, strings.TrimSuffix(f.Path, "*")) {
		return true
	}
	ok, _ := path.Match(f.Path, p)
	return ok
}

// apiError is GitHub's error body.
type apiError struct {
	Message          string       `json:"message"`
	Errors           []fieldError `json:"errors,omitempty"`
	DocumentationURL string       `json:"documentation_url"`
	Status           string       `json:"status,omitempty"`
}

type fieldError struct {
	Resource string `json:"resource"`
	Field    string `json:"field"`
	Code     string `json:"code"`
	Message  string `json:"message,omitempty"`
}

// httpErr is returned by handlers to answer with an error body.
type httpErr struct {
	status int
	body   apiError
}

func errf(status int, format string, args ...any) *httpErr {
	return &httpErr{status: status, body: apiError{Message: fmt.Sprintf(format, args...), DocumentationURL: "https://docs.github.com/rest", Status: strconv.Itoa(status)}}
}

func notFound() *httpErr { return errf(404, "Not Found") }

func validation(resource, field, code, msg string) *httpErr {
	e := errf(422, "Validation Failed")
	e.body.Errors = []fieldError{{Resource: resource, Field: field, Code: code, Message: msg}}
	return e
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.EscapedPath()
	rec := Request{Method: r.Method, Path: p, Query: r.URL.RawQuery}

	s.mu.Lock()
	hooks := append([]func(*http.Request){}, s.hooks...)
	s.mu.Unlock()
	for _, h := range hooks {
		h(r)
	}

	s.mu.Lock()
	rec.Time = s.clock.Now()
	var fault *Fault
	for _, f := range s.faults {
		if f.matches(r.Method, p) {
			f.hits++
			fault = f
			break
		}
	}
	s.mu.Unlock()

	if fault != nil {
		switch fault.Kind {
		case Slow:
			select {
			case <-time.After(fault.Delay):
			case <-r.Context().Done():
			}
		case Drop:
			s.record(rec, 0)
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		default:
			s.answerFault(w, fault, rec)
			return
		}
	}

	// Source archives and raw files are public web pages: no token, no rate limit.
	if s.serveWeb(w, r) {
		return
	}

	// Read the body once, so handlers can decode it under the lock.
	var body []byte
	if r.Body != nil {
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(r.Body)
		body = buf.Bytes()
	}

	s.mu.Lock()
	s.refillLocked()
	auth := r.Header.Get("Authorization")
	tok := bearer(r)
	var status int
	var out []byte
	hdr := http.Header{}
	if ti := s.tokens[tok]; ti != nil && ti.classic && s.acceptedLocked(tok) {
		hdr.Set("X-OAuth-Scopes", strings.Join(ti.scopes, ", "))
	}
	switch {
	case auth == "":
		status, out = jsonErr(errf(401, "Requires authentication"))
	case !s.acceptedLocked(tok):
		status, out = jsonErr(errf(401, "Bad credentials"))
	case s.remaining <= 0 && p != "/rate_limit":
		e := errf(403, "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID.")
		e.body.DocumentationURL = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-primary-rate-limits"
		status, out = jsonErr(e)
	default:
		status, out = s.route(r, p, tok, body, hdr)
	}
	cost := 0
	if status >= 200 && status < 300 && r.Method == http.MethodGet {
		sum := sha256.Sum256(out)
		etag := `"` + hex.EncodeToString(sum[:16]) + `"`
		hdr.Set("ETag", etag)
		if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, etag) {
			status, out = http.StatusNotModified, nil
		}
	}
	if status != http.StatusNotModified && status != 401 && p != "/rate_limit" && s.remaining > 0 {
		s.remaining--
		cost = 1
	}
	s.setRateHeaders(hdr, s.remaining)
	events := s.events
	s.events = nil
	responder := s.responder
	s.mu.Unlock()

	if responder != nil {
		for _, ev := range events {
			responder(ev)
		}
	}

	for k, v := range hdr {
		w.Header()[k] = v
	}
	if out != nil {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
	}
	w.WriteHeader(status)
	if out != nil {
		_, _ = w.Write(out)
	}
	rec.Cost = cost
	s.record(rec, status)
}

func etagMatch(inm, etag string) bool {
	for _, t := range strings.Split(inm, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

func (s *Server) setRateHeaders(h http.Header, remaining int) {
	h.Set("X-RateLimit-Limit", strconv.Itoa(s.limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-RateLimit-Used", strconv.Itoa(s.limit-remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(s.reset.Unix(), 10))
	h.Set("X-RateLimit-Resource", "core")
}

func (s *Server) record(rec Request, status int) {
	rec.Status = status
	s.mu.Lock()
	s.requests = append(s.requests, rec)
	s.mu.Unlock()
}

func (s *Server) answerFault(w http.ResponseWriter, f *Fault, rec Request) {
	s.mu.Lock()
	now := s.clock.Now()
	h := w.Header()
	var e *httpErr
	status := 0
	switch f.Kind {
	case SecondaryLimit:
		ra := f.RetryAfter
		if ra == 0 {
			ra = time.Minute
		}
		e = errf(403, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.")
		e.body.DocumentationURL = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
		s.setRateHeaders(h, s.remaining)
		h.Set("Retry-After", strconv.Itoa(int(ra/time.Second)))
	case PrimaryLimit:
		ri := f.ResetIn
		if ri == 0 {
			ri = 10 * time.Minute
		}
		e = errf(403, "API rate limit exceeded for user ID 1.")
		e.body.DocumentationURL = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-primary-rate-limits"
		h.Set("X-RateLimit-Limit", strconv.Itoa(s.limit))
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Used", strconv.Itoa(s.limit))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(now.Add(ri).Unix(), 10))
		h.Set("X-RateLimit-Resource", "core")
	case TooMany:
		e = errf(429, "Too Many Requests")
		h.Set("Retry-After", "30")
	default:
		status = f.Status
		if status == 0 {
			status = 502
		}
		e = errf(status, "Server Error")
	}
	s.mu.Unlock()
	st, out := jsonErr(e)
	h.Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(st)
	_, _ = w.Write(out)
	s.record(rec, st)
}

func jsonErr(e *httpErr) (int, []byte) {
	b, _ := json.Marshal(e.body)
	return e.status, b
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// emit queues an event for the auto-responder (called with s.mu held).
func (s *Server) emit(ev Event) { s.events = append(s.events, ev) }

func (s *Server) newID() int64 {
	s.nextID++
	return s.nextID
}

func gitSHA(kind string, content []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "%s %d\x00", kind, len(content))
	h.Write(content)
	return hex.EncodeToString(h.Sum(nil))
}
