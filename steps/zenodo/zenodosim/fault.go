package zenodosim

import (
	"net/url"
	"strings"
	"time"

	"github.com/cessda/runbook/steps/simkit"
)

// Fault makes matching requests fail. A Fault with Times > 0 fires that many times, then
// is spent; Times == 0 means forever. It is this package's vocabulary for a simkit.Fault:
// Inject turns PathSuffix into the ServeMux pattern of the route it names.
type Fault struct {
	Method string // "" matches any method
	// PathSuffix is "" for any path, else the last segments of a route's path
	// ("/actions/publish", "/deposit/depositions"): the fault applies to the route whose
	// path ends that way (POST /api/deposit/depositions/{id}/actions/publish). When the
	// segments fit several routes as well, each gets the fault, with its own Times.
	PathSuffix string
	Status     int           // answer this status (with no body for 5xx, as Zenodo does) instead of handling
	Delay      time.Duration // wait this long (real time; keep it to milliseconds in tests) before answering
	Drop       bool          // close the connection without an answer
	After      bool          // handle the request (the effect happens), then drop or replace the answer: a lost response
	Times      int
}

// Inject adds a fault.
func (s *Server) Inject(f Fault) {
	for _, p := range suffixPatterns(f.Method, f.PathSuffix) {
		s.kit.Inject(simkit.Fault{Method: f.Method, Path: p, Times: f.Times, Status: f.Status,
			Delay: f.Delay, Drop: f.Drop, After: f.After})
	}
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() { s.kit.ClearFaults() }

// suffixPatterns names the routes whose path ends in suffix, as ServeMux patterns without
// a method, with the suffix's segments written into the route's wildcards. A route that
// matches more of the suffix with literal segments wins ("/deposit/depositions" is the
// depositions route, not a bucket file of that name).
func suffixPatterns(method, suffix string) []string {
	if suffix == "" {
		return []string{""}
	}
	var out []string
	best := -1
	for _, rt := range routes {
		m, path, _ := strings.Cut(rt.pattern, " ")
		if path == "" {
			m, path = "", m
		}
		if method != "" && m != "" && !strings.EqualFold(m, method) {
			continue
		}
		p, literal, ok := alignSuffix(path, suffix)
		switch {
		case !ok || literal < best:
		case literal > best:
			best, out = literal, []string{p}
		case !contains(out, p):
			out = append(out, p)
		}
	}
	return out
}

// alignSuffix lays suffix's segments over the last segments of a route path. It returns
// the path with those segments filled in and how many of them were literal in the route.
// The first segment of a suffix that does not start with "/" may be the end of a segment.
func alignSuffix(path, suffix string) (string, int, bool) {
	if path == "/" || strings.HasSuffix(path, "...}") {
		return "", 0, false
	}
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	want := strings.Split(suffix, "/")
	partial := want[0] != ""
	if !partial {
		want = want[1:]
	}
	off := len(segs) - len(want)
	if off < 0 {
		return "", 0, false
	}
	literal := 0
	for i, w := range want {
		seg := &segs[off+i]
		switch {
		case strings.HasPrefix(*seg, "{"):
			if !(partial && i == 0) { // a wildcard cannot say "ends with": it stays
				*seg = url.PathEscape(w)
			}
		case *seg == w || (partial && i == 0 && strings.HasSuffix(*seg, w)):
			literal++
		default:
			return "", 0, false
		}
	}
	return "/" + strings.Join(segs, "/"), literal, true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func requestOf(e simkit.Exchange) Request {
	path, err := url.PathUnescape(e.Path)
	if err != nil {
		path = e.Path
	}
	return Request{Method: e.Method, Path: path, RawQuery: e.Query, ContentType: e.ContentType,
		BodyLen: e.BodyLen, Status: e.Status}
}
