package jenkinssim

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cessda/runbook/steps/simkit"
)

// Fault makes matching requests fail. Faults apply in the order injected. It is this
// package's vocabulary for a simkit.Fault: Inject turns Path into a ServeMux subtree.
type Fault struct {
	Method string // "" matches any method
	// Path is "" for any path, else a path and everything under it, whole segments
	// ("/job/a/buildWithParameters", "/queue/item/", "/whoAmI" for /whoAmI/api/json too).
	Path   string
	Status int // answer with this status and Body instead (0: no status fault)
	Body   string
	Delay  time.Duration // real time to wait before answering (slow server)
	Drop   bool          // close the connection without an answer
	// AfterEffect applies the fault after the request took effect: the action happens,
	// only the answer is lost (the worst case for an idempotent client).
	AfterEffect bool
	Times       int // how many matching requests to affect; 0 means all
}

// Request is one request the simulator received: simkit's Exchange in this package's
// vocabulary (Path unescaped, as r.URL.Path).
type Request struct {
	Method string
	Path   string
	Query  string
	User   string // "" for anonymous or failed authentication
	Status int    // 0 when the connection was dropped
	Fault  bool   // a fault was injected into this request
	At     time.Time
}

// Inject adds a fault.
func (s *Server) Inject(f Fault) {
	// A fault answers as Jenkins' error pages do: X-Jenkins always, an HTML page when the
	// request never reached Jenkins.
	h := http.Header{"X-Jenkins": {Version}}
	if !f.AfterEffect {
		h.Set("Content-Type", "text/html;charset=utf-8")
	}
	s.kit.Inject(simkit.Fault{Method: f.Method, Path: subtree(f.Path), Times: f.Times,
		Status: f.Status, Header: h, Body: f.Body, Delay: f.Delay, Drop: f.Drop, After: f.AfterEffect})
}

// subtree is the ServeMux pattern of a path and everything under it ("/whoAmI/"), which a
// ServeMux also takes for the path itself.
func subtree(path string) string {
	if path == "" || strings.HasSuffix(path, "/") {
		return path
	}
	return path + "/"
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() { s.kit.ClearFaults() }

// Requests returns every request received so far.
func (s *Server) Requests() []Request {
	ex := s.kit.Requests()
	out := make([]Request, len(ex))
	for i, e := range ex {
		out[i] = requestOf(e)
	}
	return out
}

// Writes returns the requests that asked for a change (simkit.Exchange.Write: the POSTs,
// and any other method but GET, HEAD and OPTIONS), answered or not.
func (s *Server) Writes() []Request {
	var out []Request
	for _, e := range s.kit.Requests() {
		if e.Write() {
			out = append(out, requestOf(e))
		}
	}
	return out
}

func requestOf(e simkit.Exchange) Request {
	path, err := url.PathUnescape(e.Path)
	if err != nil {
		path = e.Path
	}
	return Request{Method: e.Method, Path: path, Query: e.Query, User: e.User, Status: e.Status, Fault: e.Fault, At: e.At}
}
