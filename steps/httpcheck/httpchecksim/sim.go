// Package httpchecksim is an in-process web site for the tests and rehearsals of the
// `http.check` step: it answers seeded paths with a status and body, follows scripted
// redirects, records every request (with its headers, so tests can see where credentials
// went) and injects faults with simkit (5xx answers, slow answers, dropped connections, 429 rate
// limits). With WithAutoCreate every unknown path answers 200 "OK", so a rehearsal of any
// playbook's smoke checks works without seeding.
package httpchecksim

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"

	"github.com/cessda/runbook/steps/simkit"
)

// Request is one request the server received.
type Request struct {
	Method string
	Path   string // path and query, as sent
	Host   string
	Header http.Header
	Time   time.Time
}

// Response is what a seeded path answers.
type Response struct {
	Status   int
	Body     string
	Header   http.Header
	Location string // for redirects: the Location header
}

// Server is a scriptable web site on 127.0.0.1.
type Server struct {
	srv *httptest.Server
	kit *simkit.Kit // the exchanges (for Writes) and the injected faults

	mu         sync.Mutex
	autoCreate bool
	routes     map[string][]Response // path -> answers; the last one repeats
	requests   []Request
	delay      time.Duration
	auth       string
}

// Option configures a Server.
type Option func(*Server)

// WithAutoCreate makes every path nobody seeded answer 200 with body "OK" instead of 404.
func WithAutoCreate() Option { return func(s *Server) { s.autoCreate = true } }

// WithDelay makes every answer wait d first (a slow site); see also SetDelay.
func WithDelay(d time.Duration) Option { return func(s *Server) { s.delay = d } }

// New starts a server on 127.0.0.1.
func New(opts ...Option) *Server {
	s := &Server{routes: map[string][]Response{}}
	for _, o := range opts {
		o(s)
	}
	s.kit = simkit.New()
	s.kit.BeforeRequest(s.arrive)
	s.srv = httptest.NewServer(s.kit.Wrap(http.HandlerFunc(s.serve)))
	return s
}

// URL is the server's base URL, "http://127.0.0.1:PORT".
func (s *Server) URL() string { return s.srv.URL }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Handle seeds path (with its query, if the check sends one) to answer status and body.
func (s *Server) Handle(path string, status int, body string) {
	s.HandleSequence(path, Response{Status: status, Body: body})
}

// HandleSequence seeds path with answers given in turn; the last one repeats. It models a
// site that becomes healthy: HandleSequence("/health", {503}, {503}, {200, "UP"}).
func (s *Server) HandleSequence(path string, answers ...Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routes[path] = append([]Response(nil), answers...)
}

// Redirect seeds path to redirect (with status, e.g. 302) to location, which may be
// on another server.
func (s *Server) Redirect(path string, status int, location string) {
	s.HandleSequence(path, Response{Status: status, Location: location})
}

// The faults of the next requests are simkit faults that apply after the site answered
// (After): a seeded sequence moves on under a fault as it does without one. They apply in
// the order they were asked for.

// FailNext makes the next n requests, whatever their path, answer status (e.g. 503).
// A site behind a login (RequireAuth) still answers 401 first.
func (s *Server) FailNext(n, status int) {
	s.inject(n, simkit.Fault{After: true, Answer: func(w http.ResponseWriter, r *http.Request) {
		if s.denied(r) {
			unauthorized(w)
			return
		}
		http.Error(w, http.StatusText(status), status)
	}})
}

// DropNext makes the next n requests end with the connection closed and no answer.
// net/http retries a GET once by itself when a reused keep-alive connection drops, so a
// test that wants the client to see the drop uses a fresh connection or drops two.
func (s *Server) DropNext(n int) { s.inject(n, simkit.Fault{After: true, Drop: true}) }

// RateLimitNext makes the next n requests answer 429 with a Retry-After of retryAfter.
func (s *Server) RateLimitNext(n int, retryAfter time.Duration) {
	s.inject(n, simkit.Fault{After: true, Answer: func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter/time.Second)))
		http.Error(w, "rate limit exceeded", http.StatusTooManyRequests)
	}})
}

func (s *Server) inject(n int, f simkit.Fault) {
	if n > 0 {
		f.Times = n
		s.kit.Inject(f)
	}
}

// SetDelay makes every answer wait d first.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// RequireAuth makes every request whose Authorization header is not exactly header
// answer 401 with a WWW-Authenticate challenge ("" turns the check off). It plays a site
// behind a login, to test missing and wrong credentials.
func (s *Server) RequireAuth(header string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.auth = header
}

// Requests returns the requests received so far, in the order they arrived, with their
// headers (which simkit's exchanges do not keep).
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Writes counts the requests that asked for a change (simkit.Exchange.Write: a method
// other than GET, HEAD and OPTIONS).
func (s *Server) Writes() int {
	n := 0
	for _, e := range s.kit.Requests() {
		if e.Write() {
			n++
		}
	}
	return n
}

// arrive records a request as it arrives, then makes it wait the site's delay (or until
// its client gives up).
func (s *Server) arrive(r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.RequestURI(), Host: r.Host, Header: r.Header.Clone(), Time: time.Now()})
	delay := s.delay
	s.mu.Unlock()
	if delay <= 0 {
		return
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

// denied reports whether RequireAuth refuses r.
func (s *Server) denied(r *http.Request) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.auth != "" && r.Header.Get("Authorization") != s.auth
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Basic realm="httpchecksim"`)
	http.Error(w, "Unauthorized", http.StatusUnauthorized)
}

// serve answers a request with the next answer seeded for its path (with its query
// first, then without), 401 behind a login it does not pass, or 404.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	resp, ok := s.next(r.URL.RequestURI(), r.URL.Path)
	s.mu.Unlock()
	switch {
	case s.denied(r):
		unauthorized(w)
	case !ok:
		http.NotFound(w, r)
	default:
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		if resp.Location != "" {
			w.Header().Set("Location", resp.Location)
		}
		status := resp.Status
		if status == 0 {
			status = http.StatusOK
		}
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			_, _ = w.Write([]byte(resp.Body))
		}
	}
}

// next returns the answer for a request; s.mu is held.
func (s *Server) next(uri, path string) (Response, bool) {
	key := uri
	answers, ok := s.routes[key]
	if !ok {
		key = path
		answers, ok = s.routes[key]
	}
	if !ok {
		if s.autoCreate {
			return Response{Status: http.StatusOK, Body: "OK"}, true
		}
		return Response{}, false
	}
	if len(answers) > 1 {
		s.routes[key] = answers[1:]
	}
	return answers[0], true
}
