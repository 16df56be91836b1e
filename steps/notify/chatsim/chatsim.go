// Package chatsim simulates Slack and Mattermost incoming webhooks on an httptest server
// bound to 127.0.0.1, for the tests and rehearsals of notify.chat and notify.role.
//
// It follows the wire contract of both services (the project's contract brief,
// /work/shared/reference/apis.md §5: Slack's incoming-webhook docs, Mattermost's
// server/channels/web/webhook.go), one ServeMux route each:
//
//	POST /services/{team}/{bot}/{secret} → 200 text/plain
//	    Slack. A JSON body (or a form field payload=<json>) with text (or attachments or
//	    blocks), answered "ok". Errors are plain-text strings: 400 invalid_payload, 400
//	    no_text, 404 no_service (unknown hook), 405 invalid_method, a hook's SetHookError.
//	POST /hooks/{id} → 200 text/plain
//	    Mattermost. The same bodies, answered "ok". Errors are AppError JSON
//	    {"id","message","detailed_error","request_id","status_code"}: 400
//	    web.incoming_webhook.parse.app_error / .text.app_error, 404 .invalid.app_error,
//	    405 api.context.method_not_allowed.
//
// Ids are letters and digits. Every request is recorded (simkit's request log, with the
// body of each one answered); faults (429 with Retry-After, 5xx, dropped connections) are
// simkit faults queued for the next requests, whatever their path, in the order asked;
// WithLatency slows every answer.
package chatsim

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cessda/runbook/steps/simkit"
)

// Flavor is the chat service a hook belongs to.
type Flavor string

// The two flavors.
const (
	Slack      Flavor = "slack"
	Mattermost Flavor = "mattermost"
)

// Post is a message a hook accepted.
type Post struct {
	Flavor   Flavor
	HookID   string
	Text     string
	Channel  string
	Username string
	// Payload is the decoded JSON payload, with every field the client sent.
	Payload map[string]any
	At      time.Time
}

// Request is one request the server saw, whatever its outcome: simkit's Exchange with
// the body, which it keeps for the requests it answered.
type Request struct {
	Method      string
	Path        string
	ContentType string
	Body        string // "" for a dropped request
	Status      int    // 0 when the connection was dropped
}

// Server is a running webhook simulator.
type Server struct {
	ts         *httptest.Server
	kit        *simkit.Kit // the request log and the queued faults
	autoCreate bool
	latency    time.Duration

	mu     sync.Mutex
	hooks  map[string]*hook // by flavor + "/" + id
	posts  []Post
	bodies map[simkit.Exchange]string
}

type hook struct {
	flavor    Flavor
	id        string
	errStatus int
	errBody   string
}

// Option configures a Server.
type Option func(*Server)

// WithAutoCreate accepts posts to any well-formed hook id, creating the hook on first use,
// so a rehearsal of any playbook works without seeding hooks.
func WithAutoCreate() Option { return func(s *Server) { s.autoCreate = true } }

// WithSlackHook seeds a Slack hook ("T000/B000/XXXX").
func WithSlackHook(id string) Option { return func(s *Server) { s.AddHook(Slack, id) } }

// WithMattermostHook seeds a Mattermost hook (letters and digits).
func WithMattermostHook(id string) Option { return func(s *Server) { s.AddHook(Mattermost, id) } }

// WithLatency delays every answer by d (real time: keep it to milliseconds in tests).
func WithLatency(d time.Duration) Option { return func(s *Server) { s.latency = d } }

// New starts a server on 127.0.0.1.
func New(opts ...Option) *Server {
	s := &Server{hooks: map[string]*hook{}, bodies: map[simkit.Exchange]string{}}
	for _, o := range opts {
		o(s)
	}
	s.kit = simkit.New()
	s.kit.BeforeRequest(s.wait)
	s.kit.Observe(s.keepBody)
	mux := http.NewServeMux()
	for _, rt := range routes {
		mux.HandleFunc(rt.pattern, rt.handle(s))
	}
	ts := httptest.NewUnstartedServer(s.kit.Wrap(mux))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("chatsim: listen on 127.0.0.1: %v", err))
	}
	ts.Listener.Close()
	ts.Listener = l
	ts.Start()
	s.ts = ts
	return s
}

// URL is the server's base URL.
func (s *Server) URL() string { return s.ts.URL }

// Close stops the server.
func (s *Server) Close() { s.ts.Close() }

// SlackURL is the incoming-webhook URL of a Slack hook id ("T000/B000/XXXX").
func (s *Server) SlackURL(hookID string) string { return s.ts.URL + "/services/" + hookID }

// MattermostURL is the incoming-webhook URL of a Mattermost hook id.
func (s *Server) MattermostURL(hookID string) string { return s.ts.URL + "/hooks/" + hookID }

// AddHook creates a hook.
func (s *Server) AddHook(f Flavor, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks[string(f)+"/"+id] = &hook{flavor: f, id: id}
}

// SetHookError makes a hook answer every post with status and body (a Slack error string
// such as "channel_is_archived", or a Mattermost message), as a misconfigured or revoked
// hook does. Status 0 clears it.
func (s *Server) SetHookError(f Flavor, id string, status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hooks[string(f)+"/"+id]
	if h == nil {
		h = &hook{flavor: f, id: id}
		s.hooks[string(f)+"/"+id] = h
	}
	h.errStatus, h.errBody = status, body
}

// FailNext answers the next n requests with status (e.g. 500, 503) and the service's
// error body.
func (s *Server) FailNext(n, status int) { s.queue(n, status, 0) }

// RateLimitNext answers the next n requests with 429 and Retry-After (whole seconds).
func (s *Server) RateLimitNext(n int, retryAfter time.Duration) {
	s.queue(n, http.StatusTooManyRequests, retryAfter)
}

// DropNext closes the connection of the next n requests without an answer.
func (s *Server) DropNext(n int) {
	if n > 0 {
		s.kit.Inject(simkit.Fault{Drop: true, Times: n})
	}
}

// queue makes the next n requests, whatever their path, answer status in the service's
// error form; a path that is no hook still answers its 404.
func (s *Server) queue(n, status int, retryAfter time.Duration) {
	if n <= 0 {
		return
	}
	s.kit.Inject(simkit.Fault{Times: n, Answer: func(w http.ResponseWriter, r *http.Request) {
		flavor, _, ok := hookOf(r.URL.Path)
		if !ok {
			notAHook(w, r.URL.Path)
			return
		}
		if retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int((retryAfter+time.Second-1)/time.Second)))
		}
		if status == http.StatusTooManyRequests {
			serviceError(w, flavor, status, "rate_limited", "api.context.server_error", "Too many requests.", "")
			return
		}
		serviceError(w, flavor, status, "rollup_error", "api.context.server_error", "Internal server error.", "")
	}})
}

// Posts returns the accepted posts, oldest first.
func (s *Server) Posts() []Post {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Post(nil), s.posts...)
}

// Requests returns every request seen, oldest first.
func (s *Server) Requests() []Request {
	ex := s.kit.Requests()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(ex))
	for i, e := range ex {
		path, err := url.PathUnescape(e.Path)
		if err != nil {
			path = e.Path
		}
		out[i] = Request{Method: e.Method, Path: path, ContentType: e.ContentType, Body: s.bodies[e], Status: e.Status}
	}
	return out
}

// keepBody keeps the body of each answered request for Requests.
func (s *Server) keepBody(o simkit.Observed) {
	s.mu.Lock()
	s.bodies[o.Exchange] = string(o.RequestBody)
	s.mu.Unlock()
}

// wait is WithLatency: every request waits first (or until its client gives up).
func (s *Server) wait(r *http.Request) {
	if s.latency <= 0 {
		return
	}
	t := time.NewTimer(s.latency)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

var (
	slackPath = regexp.MustCompile(`^/services/([A-Za-z0-9]+/[A-Za-z0-9]+/[A-Za-z0-9]+)$`)
	mmPath    = regexp.MustCompile(`^/hooks/([A-Za-z0-9]+)$`)
)

// routes: a hook's path in the form of each service (see the package comment).
var routes = []struct {
	pattern string
	handle  func(*Server) http.HandlerFunc
}{
	{"POST /services/{team}/{bot}/{secret}", (*Server).post},
	{"/services/{team}/{bot}/{secret}", (*Server).methodNotAllowed},
	{"POST /hooks/{id}", (*Server).post},
	{"/hooks/{id}", (*Server).methodNotAllowed},
	{"/", (*Server).noHook},
}

func (s *Server) noHook() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { notAHook(w, r.URL.Path) }
}

// hookOf is the flavor and id of a hook's path.
func hookOf(path string) (Flavor, string, bool) {
	if m := slackPath.FindStringSubmatch(path); m != nil {
		return Slack, m[1], true
	}
	if m := mmPath.FindStringSubmatch(path); m != nil {
		return Mattermost, m[1], true
	}
	return "", "", false
}

// notAHook answers a path that names no hook as the service of that path would.
func notAHook(w http.ResponseWriter, path string) {
	if strings.HasPrefix(path, "/hooks/") {
		mmError(w, http.StatusNotFound, "web.incoming_webhook.invalid.app_error", "Invalid webhook.", "")
		return
	}
	slackError(w, http.StatusNotFound, "no_service")
}

func (s *Server) methodNotAllowed() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		flavor, _, ok := hookOf(r.URL.Path)
		if !ok {
			notAHook(w, r.URL.Path)
			return
		}
		serviceError(w, flavor, http.StatusMethodNotAllowed, "invalid_method", "api.context.method_not_allowed", "Method not allowed.", "")
	}
}

// post delivers a message to a hook: 200 "ok", or the service's error for an unknown or
// failing hook, a payload it cannot read, or one without text.
func (s *Server) post() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		flavor, id, ok := hookOf(r.URL.Path)
		if !ok {
			notAHook(w, r.URL.Path)
			return
		}
		if r.Context().Err() != nil {
			return // the client gave up during the latency: nothing is posted
		}
		h := s.hook(flavor, id)
		switch {
		case h == nil:
			notAHook(w, r.URL.Path)
			return
		case h.errStatus != 0:
			serviceError(w, flavor, h.errStatus, h.errBody, "web.incoming_webhook.error", h.errBody, "")
			return
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		payload, perr := decodePayload(r, body)
		if perr != nil {
			serviceError(w, flavor, http.StatusBadRequest, "invalid_payload", "web.incoming_webhook.parse.app_error", "Unable to parse incoming data.", perr.Error())
			return
		}
		text, _ := payload["text"].(string)
		if strings.TrimSpace(text) == "" && payload["attachments"] == nil && payload["blocks"] == nil {
			serviceError(w, flavor, http.StatusBadRequest, "no_text", "web.incoming_webhook.text.app_error", "No text specified.", "")
			return
		}
		p := Post{Flavor: flavor, HookID: id, Text: text, Payload: payload, At: time.Now()}
		p.Channel, _ = payload["channel"].(string)
		p.Username, _ = payload["username"].(string)
		s.mu.Lock()
		s.posts = append(s.posts, p)
		s.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "ok")
	}
}

// hook is the hook of that id, made on first use WithAutoCreate; nil when unknown. It is
// returned as a copy, read under the lock.
func (s *Server) hook(flavor Flavor, id string) *hook {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hooks[string(flavor)+"/"+id]
	if h == nil && s.autoCreate {
		h = &hook{flavor: flavor, id: id}
		s.hooks[string(flavor)+"/"+id] = h
	}
	if h == nil {
		return nil
	}
	c := *h
	return &c
}

// serviceError answers an error in the form of the hook's service: Slack's plain-text
// string, or Mattermost's AppError JSON.
func serviceError(w http.ResponseWriter, flavor Flavor, status int, slackMsg, mmID, mmMsg, detail string) {
	if flavor == Slack {
		slackError(w, status, slackMsg)
		return
	}
	mmError(w, status, mmID, mmMsg, detail)
}

// decodePayload reads a JSON body or a form field payload=<json>, as both services accept.
func decodePayload(r *http.Request, body []byte) (map[string]any, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	raw := body
	if mt == "application/x-www-form-urlencoded" {
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, err
		}
		raw = []byte(v.Get("payload"))
	}
	var payload map[string]any
	if err := json.Unmarshal(raw, &payload); err != nil {
		return nil, err
	}
	if payload == nil {
		return nil, fmt.Errorf("payload is not a JSON object")
	}
	return payload, nil
}

func slackError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg)
}

func mmError(w http.ResponseWriter, status int, id, msg, detail string) {
	b := make([]byte, 13)
	_, _ = rand.Read(b)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"id": id, "message": msg, "detailed_error": detail,
		"request_id": hex.EncodeToString(b), "status_code": status,
	})
}
