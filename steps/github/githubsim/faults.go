package githubsim

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cessda/runbook/steps/simkit"
)

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

// Fault is an injected failure for requests matching Method (any when "") and Path,
// matched against the escaped path: a path.Match pattern whose "*" stands for a whole
// segment ("/repos/*/*/releases"), a prefix ending in "/*" ("/repos/*": everything under
// /repos/), or a ServeMux pattern ("/repos/{owner}/{repo}/git/refs/{ref...}").
type Fault struct {
	Kind       FaultKind
	Method     string
	Path       string
	Times      int // how many matching requests fail; 0 means every one
	Status     int
	RetryAfter time.Duration // SecondaryLimit: the Retry-After header (default 60s)
	ResetIn    time.Duration // PrimaryLimit: reset time from now (default 10m)
	Delay      time.Duration // Slow
	// After lets the request take effect first, then applies the fault to its answer:
	// the write is made and the client never learns it (a lost response).
	After bool
}

// Inject adds a fault. It panics on a Path that is none of the forms Fault describes.
func (s *Server) Inject(f Fault) { s.kit.Inject(s.kitFault(f)) }

// ClearFaults removes all injected faults.
func (s *Server) ClearFaults() { s.kit.ClearFaults() }

// kitFault is f in simkit's terms: GitHub's answers are written by an Answer handler.
func (s *Server) kitFault(f Fault) simkit.Fault {
	kf := simkit.Fault{Method: f.Method, Path: muxPattern(f.Path), Times: f.Times, After: f.After}
	switch f.Kind {
	case Slow:
		kf.Delay = f.Delay
	case Drop:
		kf.Drop = true
	case SecondaryLimit:
		kf.Answer = s.secondaryLimit(f.RetryAfter)
	case PrimaryLimit:
		kf.Answer = s.primaryLimit(f.ResetIn)
	case TooMany:
		kf.Answer = tooMany
	default:
		kf.Answer = serverError(f.Status)
	}
	return kf
}

// muxPattern turns a Fault's Path into the ServeMux pattern simkit matches with.
func muxPattern(p string) string {
	if p == "" || strings.ContainsAny(p, "{ ") {
		return p
	}
	if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasSuffix(prefix, "/") && !strings.ContainsAny(prefix, "*?[\\") {
		return prefix // a subtree
	}
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		switch {
		case seg == "*":
			segs[i] = "{s" + strconv.Itoa(i) + "}"
		case strings.ContainsAny(seg, "*?[\\"):
			panic(fmt.Sprintf("githubsim: fault path %q: a glob must match whole segments (\"/repos/*/*/releases\") or a subtree (\"/repos/*\")", p))
		}
	}
	out := strings.Join(segs, "/")
	if strings.HasSuffix(out, "/") {
		out += "{$}" // the path itself: ServeMux reads a trailing slash as a subtree
	}
	return out
}

func (s *Server) secondaryLimit(retryAfter time.Duration) http.HandlerFunc {
	if retryAfter == 0 {
		retryAfter = time.Minute
	}
	return func(w http.ResponseWriter, r *http.Request) {
		e := errf(403, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.")
		e.body.DocumentationURL = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
		s.mu.Lock()
		s.setRateHeaders(w.Header(), s.remaining)
		s.mu.Unlock()
		w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter/time.Second)))
		writeErr(w, e)
	}
}

func (s *Server) primaryLimit(resetIn time.Duration) http.HandlerFunc {
	if resetIn == 0 {
		resetIn = 10 * time.Minute
	}
	return func(w http.ResponseWriter, r *http.Request) {
		e := errf(403, "API rate limit exceeded for user ID %d.", userID(s.user))
		e.body.DocumentationURL = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-primary-rate-limits"
		h := w.Header()
		h.Set("X-RateLimit-Limit", strconv.Itoa(s.limit))
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Used", strconv.Itoa(s.limit))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(s.clock.Now().Add(resetIn).Unix(), 10))
		h.Set("X-RateLimit-Resource", "core")
		writeErr(w, e)
	}
}

func tooMany(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Retry-After", "30")
	writeErr(w, errf(429, "Too Many Requests"))
}

func serverError(status int) http.HandlerFunc {
	if status == 0 {
		status = 502
	}
	return func(w http.ResponseWriter, r *http.Request) { writeErr(w, errf(status, "Server Error")) }
}

// writeErr answers with GitHub's error body.
func writeErr(w http.ResponseWriter, e *httpErr) {
	status, out := jsonErr(e)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(out)
}
