package notify

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cessda/runbook/engine"
)

// FuzzChatError: any error answer of a chat webhook gives an error that is not empty,
// names the status and the hook's host but not its secret path, is valid UTF-8 when
// the body is, and is retryable exactly for 429 and 5xx.
func FuzzChatError(f *testing.F) {
	f.Add([]byte("invalid_token"), 403, false)
	f.Add([]byte("channel_not_found"), 404, false)
	f.Add([]byte(`{"id":"web.incoming_webhook.invalid.app_error","message":"Invalid webhook","detailed_error":"","request_id":"x","status_code":400}`), 400, true)
	f.Add([]byte(`{"id":"","message":""}`), 500, true)
	f.Add([]byte("a"+strings.Repeat("é", 150)), 400, false)
	f.Add([]byte(""), 429, false)
	f.Add([]byte("<html>Bad Gateway</html>"), 502, true)
	const secretPath = "T000/B000/canary-5f1e9c7a-not-a-real-token"
	f.Fuzz(func(t *testing.T, body []byte, code int, mattermost bool) {
		if code < 400 || code > 599 {
			code = 400 + (code%200+200)%200
		}
		h := &chatHook{conn: &engine.Connection{Name: "chat", Type: "chat"}, url: "https://chat.example.org/services/" + secretPath, flavor: "slack"}
		if mattermost {
			h.flavor = "mattermost"
		}
		resp := &http.Response{StatusCode: code, Header: http.Header{}}
		err := h.explain(resp, body)
		if err == nil {
			t.Fatal("no error for status", code)
		}
		s := err.Error()
		if !strings.HasPrefix(s, "chat: "+strconv.Itoa(code)+" from the "+h.flavor+" webhook at chat.example.org: ") {
			t.Fatalf("error %q", s)
		}
		if strings.TrimSpace(strings.TrimPrefix(s, "chat: "+strconv.Itoa(code)+" from the "+h.flavor+" webhook at chat.example.org: ")) == "" {
			t.Fatalf("error with no detail: %q", s)
		}
		if !strings.Contains(string(body), secretPath) && strings.Contains(s, secretPath) {
			t.Fatalf("the webhook's secret path is in the error: %q", s)
		}
		if utf8.Valid(body) && !utf8.ValidString(s) {
			t.Fatalf("a UTF-8 body gave an error that is not UTF-8: %q", s)
		}
		retry, _ := engine.IsTransient(err)
		if want := code == 429 || code >= 500; retry != want {
			t.Fatalf("status %d: retryable %v, want %v", code, retry, want)
		}
	})
}
