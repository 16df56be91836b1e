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
// EditComment, TickCheckbox, AutoRespond), inject faults (Inject), count what the client
// did (Requests, WriteCount, Count) and watch every exchange with both bodies (Observe):
// the request log, write count and faults are steps/simkit's, as in every simulator.
// GET /user names the token's user, and GET /repos/{owner}/{repo} shows what the token
// may do: admin everywhere unless narrowed (SetPermission, SetScopes,
// SetInstallationToken, SetPrivate, RevokeToken), and writes beyond that are refused as
// GitHub refuses them. It listens on 127.0.0.1 only.
//
// The API is routed with ServeMux patterns, one handler per operation (routes.go lists
// them), grouped by resource: git.go, contents.go, issues.go, milestones.go, releases.go.
package githubsim

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cessda/runbook/steps/simkit"
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
	kit        *simkit.Kit  // the request log, write counter and fault injection
	handler    http.Handler // the routes with the kit in front
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
	responder func(Event)
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

// requestOf is the Request of an exchange in the kit's log. GitHub charges the primary
// rate limit one point for every request it serves for a user (the kit's User, which
// only the API fills in), except a 304 and GET /rate_limit.
func requestOf(e simkit.Exchange) Request {
	r := Request{Method: e.Method, Path: e.Path, Query: e.Query, Status: e.Status, Time: e.At}
	if e.User != "" && e.Status != http.StatusNotModified && e.Path != "/rate_limit" {
		r.Cost = 1
	}
	return r
}

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

// newServerHooks run on every Server New builds, once it listens: files of this package
// (an OpenAPI checker) hook into every server without a change to New.
var newServerHooks []func(*Server)

// New starts a simulator on 127.0.0.1.
func New(opts ...Option) *Server {
	s := &Server{clock: realClock{}, user: "runbook-bot", limit: 5000, repos: map[string]*repo{}, comments: map[int64]*comment{}, nextID: 1000}
	for _, o := range opts {
		o(s)
	}
	s.remaining = s.limit
	s.reset = s.clock.Now().Add(time.Hour).Truncate(time.Second)
	s.kit = simkit.New(simkit.WithClock(func() time.Time { return s.clock.Now() }), simkit.WithUser(servedFor))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("githubsim: listen on 127.0.0.1: %v", err))
	}
	s.handler = withCaller(s.kit.Wrap(s.routes()))
	s.srv = &httptest.Server{Listener: l, Config: &http.Server{Handler: s}}
	s.srv.Start()
	for _, hook := range newServerHooks {
		hook(s)
	}
	return s
}

// URL is the base URL to give go-github (with the trailing slash it requires).
func (s *Server) URL() string { return s.srv.URL + "/" }

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// Client returns an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// ServeHTTP implements http.Handler: the API and the web downloads, with the kit in front.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

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
func (s *Server) BeforeRequest(fn func(r *http.Request)) { s.kit.BeforeRequest(fn) }

// Observe installs fn, called with every exchange (both bodies) once it is answered: a
// checker sees what the client sent and what the simulator answered.
func (s *Server) Observe(fn func(simkit.Observed)) { s.kit.Observe(fn) }

// Requests returns every request answered so far.
func (s *Server) Requests() []Request {
	var out []Request
	for _, e := range s.kit.Requests() {
		out = append(out, requestOf(e))
	}
	return out
}

// ResetRequests forgets the recorded requests.
func (s *Server) ResetRequests() { s.kit.Reset() }

// WriteCount is the number of write requests answered with a 2xx status.
func (s *Server) WriteCount() int { return s.kit.Writes() }

// Count is the number of requests with that method (any when "") whose path starts with pathPrefix.
func (s *Server) Count(method, pathPrefix string) int {
	n := 0
	for _, e := range s.kit.Requests() {
		if (method == "" || e.Method == method) && strings.HasPrefix(e.Path, pathPrefix) {
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
