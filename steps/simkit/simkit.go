package simkit

import (
	"bytes"
	"io"
	"net/http"
	"sync"
	"time"
)

// Exchange is one request a simulator received and what it answered.
type Exchange struct {
	Method string
	Path   string // the escaped path, without the query
	Query  string
	User   string // who the simulator took the caller to be ("" when anonymous or refused)
	Status int    // the status answered; 0 when the connection was dropped
	Fault  bool   // an injected fault decided or changed the answer
	At     time.Time
	// ContentType and BodyLen describe the request body.
	ContentType string
	BodyLen     int
}

// Write reports whether the request asked for a change (any method but GET, HEAD, OPTIONS).
func (e Exchange) Write() bool {
	switch e.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// URL is the request's path and query as the simulator saw them.
func (e Exchange) URL() string {
	if e.Query == "" {
		return e.Path
	}
	return e.Path + "?" + e.Query
}

// Observed is an exchange with both bodies, for checkers installed with Observe.
type Observed struct {
	Exchange
	Request        *http.Request // with its body readable again
	RequestBody    []byte
	ResponseHeader http.Header
	ResponseBody   []byte
}

// Kit records what a simulator is asked and injects faults into its answers. The zero
// value is not usable; call New.
type Kit struct {
	mu        sync.Mutex
	log       []Exchange
	faults    []*Fault
	now       func() time.Time
	user      func(*http.Request) string
	observers []func(Observed)
	before    []func(*http.Request)
}

// Option configures a Kit.
type Option func(*Kit)

// WithClock stamps exchanges with now() instead of the wall clock (a simulator running on
// a test's fake clock).
func WithClock(now func() time.Time) Option { return func(k *Kit) { k.now = now } }

// WithUser names the caller of each request in the log (from its credentials).
func WithUser(user func(*http.Request) string) Option { return func(k *Kit) { k.user = user } }

// New returns a Kit.
func New(opts ...Option) *Kit {
	k := &Kit{now: time.Now}
	for _, o := range opts {
		o(k)
	}
	return k
}

// Requests returns every exchange so far, in the order they were answered.
func (k *Kit) Requests() []Exchange {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]Exchange(nil), k.log...)
}

// Reset forgets the recorded exchanges (not the faults).
func (k *Kit) Reset() {
	k.mu.Lock()
	k.log = nil
	k.mu.Unlock()
}

// Writes counts the write requests answered with a 2xx status: the changes the simulator
// accepted.
func (k *Kit) Writes() int {
	n := 0
	for _, e := range k.Requests() {
		if e.Write() && e.Status >= 200 && e.Status < 300 {
			n++
		}
	}
	return n
}

// Count counts the exchanges that match a ServeMux pattern ("POST /repos/{o}/{r}/releases",
// "/api/", "GET /job/{path...}"). A pattern without a method matches every method.
func (k *Kit) Count(pattern string) int {
	m := newMatcher("", pattern)
	n := 0
	for _, e := range k.Requests() {
		if m.match(e.Method, e.Path) {
			n++
		}
	}
	return n
}

// Observe installs fn, called with every exchange (both bodies) after it was answered.
func (k *Kit) Observe(fn func(Observed)) {
	k.mu.Lock()
	k.observers = append(k.observers, fn)
	k.mu.Unlock()
}

// BeforeRequest installs fn, called before each request is handled (outside any lock):
// tests act as a person between two requests of a step.
func (k *Kit) BeforeRequest(fn func(*http.Request)) {
	k.mu.Lock()
	k.before = append(k.before, fn)
	k.mu.Unlock()
}

// Record adds an exchange a simulator answered without Wrap (a protocol that is not HTTP
// request/response, such as a long poll it handles itself).
func (k *Kit) Record(e Exchange) {
	if e.At.IsZero() {
		e.At = k.now()
	}
	k.mu.Lock()
	k.log = append(k.log, e)
	k.mu.Unlock()
}

// Wrap returns h with the kit in front: hooks run, a matching fault is applied, the
// exchange is recorded before the client gets its answer (so a client that has its answer
// always finds it in the log), and observers see it.
func (k *Kit) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.mu.Lock()
		before := append([]func(*http.Request){}, k.before...)
		k.mu.Unlock()
		for _, fn := range before {
			fn(r)
		}
		var reqBody []byte
		if r.Body != nil && r.Body != http.NoBody {
			reqBody, _ = io.ReadAll(r.Body)
			_ = r.Body.Close()
		}
		reset := func() { r.Body = io.NopCloser(bytes.NewReader(reqBody)) }
		reset()
		ex := Exchange{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery,
			ContentType: r.Header.Get("Content-Type"), BodyLen: len(reqBody), At: k.now()}

		f := k.take(r)
		if f != nil {
			ex.Fault = true
			if f.Delay > 0 {
				t := time.NewTimer(f.Delay)
				select {
				case <-t.C:
				case <-r.Context().Done():
					t.Stop()
					k.finish(ex, r, reqBody, nil)
					return
				}
			}
			if !f.After && f.answers() {
				k.answerFault(w, r, f, ex, reqBody)
				return
			}
		}
		// The simulator answers into a buffer: the exchange is recorded (and a late fault
		// applied) before a byte reaches the client.
		rec := &buffer{header: http.Header{}}
		h.ServeHTTP(rec, r)
		if k.user != nil {
			ex.User = k.user(r)
		}
		if f != nil && f.After && f.answers() {
			k.answerFault(w, r, f, ex, reqBody)
			return
		}
		k.send(w, r, ex, reqBody, rec)
	})
}

// send records the exchange with rec's answer, then gives the client that answer.
func (k *Kit) send(w http.ResponseWriter, r *http.Request, ex Exchange, reqBody []byte, rec *buffer) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	ex.Status = rec.status
	k.finish(ex, r, reqBody, &Observed{ResponseHeader: rec.header, ResponseBody: rec.body.Bytes()})
	for key, v := range rec.header {
		w.Header()[key] = v
	}
	w.WriteHeader(rec.status)
	_, _ = w.Write(rec.body.Bytes())
}

// finish records ex and hands it to the observers (with o's response, when answered).
func (k *Kit) finish(ex Exchange, r *http.Request, reqBody []byte, o *Observed) {
	k.mu.Lock()
	k.log = append(k.log, ex)
	observers := append([]func(Observed){}, k.observers...)
	k.mu.Unlock()
	if len(observers) == 0 || o == nil {
		return
	}
	o.Exchange = ex
	o.Request = r
	o.RequestBody = reqBody
	for _, fn := range observers {
		fn(*o)
	}
}

func (k *Kit) answerFault(w http.ResponseWriter, r *http.Request, f *Fault, ex Exchange, reqBody []byte) {
	if f.Drop {
		k.finish(ex, r, reqBody, nil)
		Drop(w)
		return
	}
	if f.Answer != nil {
		rec := &buffer{header: http.Header{}}
		f.Answer(rec, r)
		k.send(w, r, ex, reqBody, rec)
		return
	}
	ex.Status = f.Status
	k.finish(ex, r, reqBody, &Observed{ResponseHeader: f.Header, ResponseBody: []byte(f.Body)})
	for key, v := range f.Header {
		w.Header()[key] = v
	}
	w.WriteHeader(f.Status)
	if f.Body != "" {
		_, _ = io.WriteString(w, f.Body)
	}
}

// Drop closes the client's connection without an answer.
func Drop(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			_ = c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// buffer is an http.ResponseWriter that keeps the answer.
type buffer struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *buffer) Header() http.Header { return b.header }
func (b *buffer) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}
func (b *buffer) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}
