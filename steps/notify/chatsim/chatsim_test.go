package chatsim_test

import (
	"io"
	"mime"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cessda/runbook/steps/notify/chatsim"
)

func send(t *testing.T, method, url, ctype, body string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	// No keep-alive: net/http silently retries a request whose reused connection drops.
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		return 0, err.Error(), nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return resp.StatusCode, mt + " " + string(b), resp.Header
}

// Each service answers in its own form: Slack's plain-text strings, Mattermost's AppError
// JSON; the log keeps every request with the body of each one answered.
func TestHookFormsAndLog(t *testing.T) {
	s := chatsim.New(chatsim.WithSlackHook("T1/B1/X1"), chatsim.WithMattermostHook("abc"))
	defer s.Close()
	for _, c := range []struct {
		method, url, ctype, body string
		status                   int
		answer                   string
	}{
		{"POST", s.SlackURL("T1/B1/X1"), "application/json", `{"text":"hi"}`, 200, "text/plain ok"},
		{"POST", s.MattermostURL("abc"), "application/x-www-form-urlencoded", `payload={"text":"hi"}`, 200, "text/plain ok"},
		{"POST", s.SlackURL("T1/B1/X2"), "application/json", `{"text":"hi"}`, 404, "text/plain no_service"},
		{"POST", s.SlackURL("T1/B1/X1"), "application/json", `{}`, 400, "text/plain no_text"},
		{"GET", s.SlackURL("T1/B1/X1"), "", "", 405, "text/plain invalid_method"},
		{"POST", s.MattermostURL("nope"), "application/json", `{"text":"hi"}`, 404, `application/json {"detailed_error":"","id":"web.incoming_webhook.invalid.app_error"`},
		{"POST", s.MattermostURL("abc"), "application/json", `{`, 400, `application/json {"detailed_error":"unexpected end of JSON input","id":"web.incoming_webhook.parse.app_error"`},
		{"PUT", s.MattermostURL("abc"), "", "", 405, `application/json {"detailed_error":"","id":"api.context.method_not_allowed"`},
		{"POST", s.URL() + "/hooks/a/b", "", "", 404, `application/json {"detailed_error":"","id":"web.incoming_webhook.invalid.app_error"`},
		{"POST", s.URL() + "/elsewhere", "", "", 404, "text/plain no_service"},
	} {
		status, answer, _ := send(t, c.method, c.url, c.ctype, c.body)
		if status != c.status || !strings.HasPrefix(answer, c.answer) {
			t.Errorf("%s %s: %d %q, want %d %q", c.method, c.url, status, answer, c.status, c.answer)
		}
	}
	if p := s.Posts(); len(p) != 2 || p[0].Flavor != chatsim.Slack || p[1].Flavor != chatsim.Mattermost || p[1].Text != "hi" {
		t.Errorf("posts %+v", p)
	}
	reqs := s.Requests()
	if len(reqs) != 10 || reqs[0].Body != `{"text":"hi"}` || reqs[0].Path != "/services/T1/B1/X1" || reqs[0].Status != 200 ||
		reqs[1].ContentType != "application/x-www-form-urlencoded" || reqs[4].Method != "GET" || reqs[4].Status != 405 {
		t.Errorf("requests %+v", reqs)
	}
}

// Faults apply to the next requests in the order they were asked for, in the hook's
// service's form; a dropped request is logged with status 0.
func TestQueuedFaults(t *testing.T) {
	s := chatsim.New(chatsim.WithAutoCreate())
	defer s.Close()
	s.RateLimitNext(1, 1500*time.Millisecond)
	s.FailNext(1, 503)
	s.DropNext(1)
	url := s.MattermostURL("abc")
	if status, answer, h := send(t, "POST", s.SlackURL("T/B/X"), "application/json", `{"text":"x"}`); status != 429 || answer != "text/plain rate_limited" || h.Get("Retry-After") != "2" {
		t.Errorf("rate limited: %d %q %v", status, answer, h)
	}
	if status, answer, _ := send(t, "POST", url, "application/json", `{"text":"x"}`); status != 503 || !strings.Contains(answer, "api.context.server_error") {
		t.Errorf("failed: %d %q", status, answer)
	}
	if status, _, _ := send(t, "POST", url, "application/json", `{"text":"x"}`); status != 0 {
		t.Errorf("dropped: %d", status)
	}
	if status, _, _ := send(t, "POST", url, "application/json", `{"text":"x"}`); status != 200 {
		t.Errorf("after the faults: %d", status)
	}
	reqs := s.Requests()
	if len(reqs) != 4 || reqs[0].Status != 429 || reqs[1].Status != 503 || reqs[2].Status != 0 || reqs[3].Status != 200 || len(s.Posts()) != 1 {
		t.Errorf("requests %+v, posts %d", reqs, len(s.Posts()))
	}
}

// WithLatency slows every answer, faults included.
func TestLatency(t *testing.T) {
	s := chatsim.New(chatsim.WithAutoCreate(), chatsim.WithLatency(20*time.Millisecond))
	defer s.Close()
	s.FailNext(1, 500)
	for _, want := range []int{500, 200} {
		start := time.Now()
		if status, _, _ := send(t, "POST", s.SlackURL("T/B/X"), "application/json", `{"text":"x"}`); status != want || time.Since(start) < 20*time.Millisecond {
			t.Errorf("%d after %s, want %d after 20ms", status, time.Since(start), want)
		}
	}
}
