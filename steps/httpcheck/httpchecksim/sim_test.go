package httpchecksim

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, url string, header ...string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if len(header) == 2 {
		req.Header.Set(header[0], header[1])
	}
	// No keep-alive: net/http silently retries a GET whose reused connection drops.
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		return 0, err.Error(), nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestSeededAndUnknownPaths(t *testing.T) {
	s := New()
	defer s.Close()
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Errorf("URL %s is not on 127.0.0.1", s.URL())
	}
	s.Handle("/health", 200, "UP")
	if code, body, _ := get(t, s.URL()+"/health"); code != 200 || body != "UP" {
		t.Errorf("/health = %d %q", code, body)
	}
	if code, _, _ := get(t, s.URL()+"/nope"); code != 404 {
		t.Errorf("unknown path = %d, want 404", code)
	}
	if n := len(s.Requests()); n != 2 || s.Writes() != 0 {
		t.Errorf("%d requests, %d writes", n, s.Writes())
	}
}

func TestAutoCreate(t *testing.T) {
	s := New(WithAutoCreate())
	defer s.Close()
	if code, body, _ := get(t, s.URL()+"/any/path?x=1"); code != 200 || body != "OK" {
		t.Errorf("auto-created path = %d %q", code, body)
	}
}

func TestSequenceRedirectAndFaults(t *testing.T) {
	s := New()
	defer s.Close()
	s.HandleSequence("/h", Response{Status: 503}, Response{Status: 200, Body: "UP"})
	s.Redirect("/old", 301, "/h")
	if code, _, _ := get(t, s.URL()+"/h"); code != 503 {
		t.Errorf("first = %d", code)
	}
	for i := 0; i < 2; i++ {
		if code, _, _ := get(t, s.URL()+"/h"); code != 200 {
			t.Errorf("later = %d, want the last answer repeated", code)
		}
	}
	if code, _, h := get(t, s.URL()+"/old"); code != 301 || h.Get("Location") != "/h" {
		t.Errorf("redirect = %d %v", code, h)
	}
	s.FailNext(1, 502)
	if code, _, _ := get(t, s.URL()+"/h"); code != 502 {
		t.Errorf("injected failure = %d", code)
	}
	s.RateLimitNext(1, 7*time.Second)
	if code, _, h := get(t, s.URL()+"/h"); code != 429 || h.Get("Retry-After") != "7" {
		t.Errorf("rate limit = %d %v", code, h)
	}
	s.DropNext(1)
	if code, _, _ := get(t, s.URL()+"/h"); code != 0 {
		t.Errorf("dropped connection answered %d", code)
	}
	s.RequireAuth("Bearer t")
	if code, _, h := get(t, s.URL()+"/h"); code != 401 || h.Get("WWW-Authenticate") == "" {
		t.Errorf("without auth = %d", code)
	}
	if code, _, _ := get(t, s.URL()+"/h", "Authorization", "Bearer t"); code != 200 {
		t.Errorf("with auth = %d", code)
	}
	if got := s.Requests()[len(s.Requests())-1].Header.Get("Authorization"); got != "Bearer t" {
		t.Errorf("recorded Authorization %q", got)
	}
}

// A fault replaces the site's answer after the site gave it: a seeded sequence moves on
// under a fault, and a site behind a login still answers 401 first.
func TestFaultsLetTheSequenceMoveOn(t *testing.T) {
	s := New()
	defer s.Close()
	s.HandleSequence("/h", Response{Status: 503}, Response{Status: 200, Body: "UP"})
	s.FailNext(1, 502)
	if code, _, _ := get(t, s.URL()+"/h"); code != 502 {
		t.Errorf("first = %d, want the injected 502", code)
	}
	if code, body, _ := get(t, s.URL()+"/h"); code != 200 || body != "UP" {
		t.Errorf("second = %d %q, want the sequence's second answer", code, body)
	}
	s.RequireAuth("Bearer t")
	s.FailNext(1, 502)
	if code, _, _ := get(t, s.URL()+"/h"); code != 401 {
		t.Errorf("behind a login = %d, want 401 before the injected 502", code)
	}
	if code, _, _ := get(t, s.URL()+"/h", "Authorization", "Bearer t"); code != 200 {
		t.Errorf("the fault was spent: %d", code)
	}
	if n := len(s.Requests()); n != 4 || s.Writes() != 0 {
		t.Errorf("%d requests, %d writes", n, s.Writes())
	}
	resp, err := http.Post(s.URL()+"/h", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if s.Writes() != 1 {
		t.Errorf("a POST (answered %d) counted as %d writes, want 1", resp.StatusCode, s.Writes())
	}
}
