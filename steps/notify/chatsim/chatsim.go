// Package chatsim simulates Slack and Mattermost incoming webhooks on an httptest server
// bound to 127.0.0.1, for the tests and rehearsals of notify.chat and notify.role.
//
// It follows the wire contract of both services: Slack's POST /services/T…/B…/X… and
// Mattermost's POST /hooks/{id}, a JSON body (or a form field payload=<json>) with
// `text`, answered 200 text/plain "ok". Slack errors are plain-text strings
// (400 invalid_payload, 400 no_text, 404 no_service, …); Mattermost errors are AppError
// JSON ({"id","message","detailed_error","request_id","status_code"}). Every request is
// recorded; faults (429 with Retry-After, 5xx, dropped connections, slow answers) are
// queued for the next requests.
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

// Request is one request the server saw, whatever its outcome.
type Request struct {
	Method      string
	Path        string
	ContentType string
	Body        string
	Status      int // 0 when the connection was dropped
}

// Server is a running webhook simulator.
type Server struct {
	ts         *httptest.Server
	autoCreate bool

	mu       sync.Mutex
	hooks    map[string]*hook // by flavor + "/" + id
	posts    []Post
	requests []Request
	faults   []fault
	latency  time.Duration
}

type hook struct {
	flavor    Flavor
	id        string
	errStatus int
	errBody   string
}

type fault struct {
	status     int
	body       string
	retryAfter time.Duration
	drop       bool
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
	s := &Server{hooks: map[string]*hook{}}
	for _, o := range opts {
		o(s)
	}
	ts := httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
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
func (s *Server) FailNext(n, status int) {
	s.queue(n, fault{status: status})
}

// RateLimitNext answers the next n requests with 429 and Retry-After (whole seconds).
func (s *Server) RateLimitNext(n int, retryAfter time.Duration) {
	s.queue(n, fault{status: http.StatusTooManyRequests, retryAfter: retryAfter})
}

// DropNext closes the connection of the next n requests without an answer.
func (s *Server) DropNext(n int) { s.queue(n, fault{drop: true}) }

func (s *Server) queue(n int, f fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < n; i++ {
		s.faults = append(s.faults, f)
	}
}

// Posts returns the accepted posts, oldest first.
func (s *Server) Posts() []Post {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Post(nil), s.posts...)
}

// Requests returns every request seen, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

var (
	slackPath = regexp.MustCompile(`^/services/([A-Za-z0-9]+/[A-Za-z0-9]+/[A-Za-z0-9]+)$`)
	mmPath    = regexp.MustCompile(`^/hooks/([A-Za-z0-9]+)$`)
)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	rec := Request{Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"), Body: string(body)}
	status := s.handle(w, r, body)
	rec.Status = status
	s.mu.Lock()
	s.requests = append(s.requests, rec)
	s.mu.Unlock()
}

// handle answers one request and returns the status written (0 when dropped).
func (s *Server) handle(w http.ResponseWriter, r *http.Request, body []byte) int {
	s.mu.Lock()
	latency := s.latency
	var f *fault
	if len(s.faults) > 0 {
		f = &s.faults[0]
		s.faults = s.faults[1:]
	}
	s.mu.Unlock()
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return 0
		}
	}

	var flavor Flavor
	var id string
	if m := slackPath.FindStringSubmatch(r.URL.Path); m != nil {
		flavor, id = Slack, m[1]
	} else if m := mmPath.FindStringSubmatch(r.URL.Path); m != nil {
		flavor, id = Mattermost, m[1]
	} else if strings.HasPrefix(r.URL.Path, "/hooks/") {
		return mmError(w, http.StatusNotFound, "web.incoming_webhook.invalid.app_error", "Invalid webhook.", "")
	} else {
		return slackError(w, http.StatusNotFound, "no_service")
	}

	if f != nil {
		if f.drop {
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					_ = c.Close()
					return 0
				}
			}
			panic(http.ErrAbortHandler)
		}
		if f.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int((f.retryAfter+time.Second-1)/time.Second)))
		}
		if flavor == Slack {
			msg := "rollup_error"
			if f.status == http.StatusTooManyRequests {
				msg = "rate_limited"
			}
			return slackError(w, f.status, msg)
		}
		msg := "Internal server error."
		if f.status == http.StatusTooManyRequests {
			msg = "Too many requests."
		}
		return mmError(w, f.status, "api.context.server_error", msg, "")
	}

	if r.Method != http.MethodPost {
		if flavor == Slack {
			return slackError(w, http.StatusMethodNotAllowed, "invalid_method")
		}
		return mmError(w, http.StatusMethodNotAllowed, "api.context.method_not_allowed", "Method not allowed.", "")
	}

	s.mu.Lock()
	h := s.hooks[string(flavor)+"/"+id]
	if h == nil && s.autoCreate {
		h = &hook{flavor: flavor, id: id}
		s.hooks[string(flavor)+"/"+id] = h
	}
	var errStatus int
	var errBody string
	if h != nil {
		errStatus, errBody = h.errStatus, h.errBody
	}
	s.mu.Unlock()
	if h == nil {
		if flavor == Slack {
			return slackError(w, http.StatusNotFound, "no_service")
		}
		return mmError(w, http.StatusNotFound, "web.incoming_webhook.invalid.app_error", "Invalid webhook.", "")
	}
	if errStatus != 0 {
		if flavor == Slack {
			return slackError(w, errStatus, errBody)
		}
		return mmError(w, errStatus, "web.incoming_webhook.error", errBody, "")
	}

	payload, perr := decodePayload(r, body)
	if perr != nil {
		if flavor == Slack {
			return slackError(w, http.StatusBadRequest, "invalid_payload")
		}
		return mmError(w, http.StatusBadRequest, "web.incoming_webhook.parse.app_error", "Unable to parse incoming data.", perr.Error())
	}
	text, _ := payload["text"].(string)
	if strings.TrimSpace(text) == "" && payload["attachments"] == nil && payload["blocks"] == nil {
		if flavor == Slack {
			return slackError(w, http.StatusBadRequest, "no_text")
		}
		return mmError(w, http.StatusBadRequest, "web.incoming_webhook.text.app_error", "No text specified.", "")
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
	return http.StatusOK
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

func slackError(w http.ResponseWriter, status int, msg string) int {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg)
	return status
}

func mmError(w http.ResponseWriter, status int, id, msg, detail string) int {
	b := make([]byte, 13)
	_, _ = rand.Read(b)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"id": id, "message": msg, "detailed_error": detail,
		"request_id": hex.EncodeToString(b), "status_code": status,
	})
	return status
}
