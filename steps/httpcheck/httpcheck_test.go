package httpcheck

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/engine/enginetest"
	"github.com/cessda/runbook/steps/httpcheck/httpchecksim"
)

const canary = "canary-token-7f3a9c"

func newSim(t *testing.T, opts ...httpchecksim.Option) *httpchecksim.Server {
	t.Helper()
	s := httpchecksim.New(opts...)
	t.Cleanup(s.Close)
	return s
}

func conn(base string) *engine.Connection {
	return &engine.Connection{Name: "site", Type: "http", URL: base, Token: canary}
}

func run(t *testing.T, with map[string]any, conns ...*engine.Connection) (engine.Outputs, error, *enginetest.Context) {
	t.Helper()
	step := enginetest.Decode(t, "http.check", with)
	sc := enginetest.NewContext(t, "smoke", conns...)
	out, err := step.Run(context.Background(), sc.StepContext)
	return out, err, sc
}

func TestDecodePlanRun(t *testing.T) {
	sim := newSim(t)
	sim.Handle("/health", 200, `{"status":"UP","version":"1.2.3"}`)
	step := enginetest.Decode(t, "http.check", map[string]any{
		"url":           sim.URL() + "/health",
		"body_contains": []any{"UP", "1.2.3"},
		"body_matches":  `"version":"\d+\.\d+\.\d+"`,
	})
	sc := enginetest.NewContext(t, "smoke")

	plan, err := step.Plan(context.Background(), sc.StepContext)
	if err != nil {
		t.Fatal(err)
	}
	if want := "GET " + sim.URL() + "/health expect 200"; plan.Action != want {
		t.Errorf("plan = %q, want %q", plan.Action, want)
	}
	if n := len(sim.Requests()); n != 0 {
		t.Fatalf("Plan made %d requests", n)
	}

	for i := 0; i < 2; i++ {
		out, err := step.Run(context.Background(), sc.StepContext)
		if err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
		if out["status"] != 200 || out["body_excerpt"] != `{"status":"UP","version":"1.2.3"}` {
			t.Errorf("outputs = %v", out)
		}
		if _, ok := out["duration_ms"].(int); !ok {
			t.Errorf("duration_ms = %T, want int", out["duration_ms"])
		}
	}
	if n, w := len(sim.Requests()), sim.Writes(); n != 2 || w != 0 {
		t.Errorf("two runs made %d requests and %d writes, want 2 reads", n, w)
	}
}

func TestPlanUnknownURL(t *testing.T) {
	step := enginetest.Decode(t, "http.check", map[string]any{"url": "https://placeholder/", "expect_status": []any{200, 204}})
	sc := enginetest.NewContext(t, "smoke")
	sc.SetUnknown("url")
	plan, err := step.Plan(context.Background(), sc.StepContext)
	if err != nil {
		t.Fatal(err)
	}
	if want := "GET (known after run) expect 200 or 204"; plan.Action != want {
		t.Errorf("plan = %q, want %q", plan.Action, want)
	}
}

func TestWrongStatus(t *testing.T) {
	sim := newSim(t)
	u := sim.URL() + "/missing"
	_, err, _ := run(t, map[string]any{"url": u})
	if err == nil {
		t.Fatal("a 404 passed")
	}
	for _, want := range []string{u, "expected status 200", "got 404"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if ok, _ := engine.IsTransient(err); ok {
		t.Error("a 404 is marked transient")
	}
}

func TestExpectedNon200(t *testing.T) {
	sim := newSim(t)
	sim.Handle("/gone", 410, "gone")
	out, err, _ := run(t, map[string]any{"url": sim.URL() + "/gone", "expect_status": []any{404, 410}})
	if err != nil || out["status"] != 410 {
		t.Fatalf("out %v, err %v", out, err)
	}
}

func TestServerErrorIsTransient(t *testing.T) {
	sim := newSim(t, httpchecksim.WithAutoCreate())
	sim.FailNext(1, 503)
	_, err, _ := run(t, map[string]any{"url": sim.URL() + "/"})
	if ok, _ := engine.IsTransient(err); !ok {
		t.Fatalf("err = %v, want transient", err)
	}
	if !strings.Contains(err.Error(), "got 503") {
		t.Errorf("err = %v", err)
	}
}

func TestDroppedConnectionIsTransient(t *testing.T) {
	sim := newSim(t, httpchecksim.WithAutoCreate())
	sim.DropNext(1)
	_, err, _ := run(t, map[string]any{"url": sim.URL() + "/"})
	if ok, _ := engine.IsTransient(err); !ok {
		t.Fatalf("err = %v, want transient", err)
	}
}

func TestConnectionRefusedIsTransient(t *testing.T) {
	sim := httpchecksim.New()
	u := sim.URL() + "/"
	sim.Close()
	_, err, _ := run(t, map[string]any{"url": u})
	if ok, _ := engine.IsTransient(err); !ok {
		t.Fatalf("err = %v, want transient", err)
	}
}

func TestRequestTimeoutIsTransient(t *testing.T) {
	sim := newSim(t, httpchecksim.WithAutoCreate(), httpchecksim.WithDelay(2*time.Second))
	start := time.Now()
	_, err, _ := run(t, map[string]any{"url": sim.URL() + "/", "timeout": "30ms"})
	if ok, _ := engine.IsTransient(err); !ok || !strings.Contains(err.Error(), "no answer within 30ms") {
		t.Fatalf("err = %v, want a transient timeout", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("a 30ms timeout took %s", d)
	}
}

func TestRateLimit(t *testing.T) {
	sim := newSim(t, httpchecksim.WithAutoCreate())
	sim.RateLimitNext(1, 42*time.Second)
	_, err, _ := run(t, map[string]any{"url": sim.URL() + "/"})
	ok, after := engine.IsTransient(err)
	if !ok || after != 42*time.Second {
		t.Fatalf("err = %v (transient %v, after %s), want retry after 42s", err, ok, after)
	}
}

func TestUntilHealthy(t *testing.T) {
	sim := newSim(t)
	sim.HandleSequence("/health",
		httpchecksim.Response{Status: 503},
		httpchecksim.Response{Status: 200, Body: "starting"},
		httpchecksim.Response{Status: 200, Body: "UP"})
	step := enginetest.Decode(t, "http.check", map[string]any{
		"url": sim.URL() + "/health", "body_contains": []any{"UP"}, "attempts": 5, "interval": "1m",
	})
	sc := enginetest.NewContext(t, "smoke")
	start := sc.Now()
	out, err := step.Run(context.Background(), sc.StepContext)
	if err != nil {
		t.Fatal(err)
	}
	if out["body_excerpt"] != "UP" || len(sim.Requests()) != 3 {
		t.Errorf("out %v after %d requests, want UP after 3", out, len(sim.Requests()))
	}
	if got := sc.Now().Sub(start); got != 2*time.Minute {
		t.Errorf("waited %s on the run clock, want 2m", got)
	}
	if !strings.Contains(sc.LogText(), "passed on attempt 3 of 5") {
		t.Errorf("log = %q", sc.LogText())
	}
}

func TestAttemptsUsedUp(t *testing.T) {
	sim := newSim(t, httpchecksim.WithAutoCreate())
	sim.FailNext(10, 502)
	_, err, _ := run(t, map[string]any{"url": sim.URL() + "/", "attempts": 3, "interval": "10s"})
	if ok, _ := engine.IsTransient(err); !ok {
		t.Fatalf("err = %v, want the last 502 as transient", err)
	}
	if n := len(sim.Requests()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

func TestBodyChecks(t *testing.T) {
	sim := newSim(t)
	sim.Handle("/", 200, "CESSDA Data Catalogue 1.2.2")
	_, err, _ := run(t, map[string]any{"url": sim.URL() + "/", "body_contains": []any{"Catalogue", "1.2.3"}})
	if err == nil || !strings.Contains(err.Error(), `"1.2.3"`) || strings.Contains(err.Error(), `"Catalogue", `) {
		t.Errorf("err = %v, want one naming only the missing 1.2.3", err)
	}
	_, err, _ = run(t, map[string]any{"url": sim.URL() + "/", "body_matches": `1\.2\.[3-9]`})
	if err == nil || !strings.Contains(err.Error(), `/1\.2\.[3-9]/`) {
		t.Errorf("err = %v, want one naming the regexp", err)
	}
	if _, err, _ = run(t, map[string]any{"url": sim.URL() + "/", "body_matches": `Catalogue 1\.2\.\d`}); err != nil {
		t.Errorf("a matching body failed: %v", err)
	}
}

func TestBadRegexpFailsValidation(t *testing.T) {
	st, _ := engine.LookupStepType("http.check")
	s, err := engine.DecodeParams(st, map[string]any{"url": "https://example.org/", "body_matches": "("})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.(engine.Validator).Validate(); err == nil || !strings.Contains(err.Error(), "body_matches") {
		t.Errorf("Validate = %v, want a body_matches error", err)
	}
}

func TestBodyCap(t *testing.T) {
	sim := newSim(t)
	sim.Handle("/big", 200, strings.Repeat("é", 1000)+"TAIL") // 2000 bytes, then TAIL
	out, err, sc := run(t, map[string]any{"url": sim.URL() + "/big", "max_body_bytes": 1500, "body_contains": []any{"TAIL"}})
	if err == nil {
		t.Fatal("found TAIL beyond max_body_bytes")
	}
	ex := out["body_excerpt"].(string)
	if len(ex) != 512 || !utf8.ValidString(ex) {
		t.Errorf("excerpt is %d bytes, valid UTF-8 %v; want 512 valid", len(ex), utf8.ValidString(ex))
	}
	if !strings.Contains(sc.LogText(), "longer than max_body_bytes") {
		t.Errorf("log does not say the body was cut: %q", sc.LogText())
	}
}

// TestCredentialsStayOnTheirOrigin is the guarantee that matters most: a redirect to
// another scheme, host or port is followed without the token and without cookies.
func TestCredentialsStayOnTheirOrigin(t *testing.T) {
	a := newSim(t)
	b := newSim(t, httpchecksim.WithAutoCreate())
	a.Redirect("/same", http.StatusFound, "/landing")
	a.Handle("/landing", 200, "here")
	a.Redirect("/away", http.StatusFound, b.URL()+"/landing")

	// Same origin: the token goes along.
	out, err, _ := run(t, map[string]any{"connection": "site", "url": "/same"}, conn(a.URL()))
	if err != nil || out["body_excerpt"] != "here" {
		t.Fatalf("out %v, err %v", out, err)
	}
	for _, r := range a.Requests() {
		if r.Header.Get("Authorization") != "Bearer "+canary {
			t.Errorf("%s on the configured origin lacks the token", r.Path)
		}
	}

	// Another origin (same host name, another port): neither token nor cookie.
	_, err, _ = run(t, map[string]any{
		"connection": "site", "url": "/away", "headers": map[string]any{"Cookie": "session=s3cr3t", "X-Trace": "1"},
	}, conn(a.URL()))
	if err != nil {
		t.Fatal(err)
	}
	reqs := b.Requests()
	if len(reqs) != 1 {
		t.Fatalf("b saw %d requests, want 1", len(reqs))
	}
	if h := reqs[0].Header.Get("Authorization"); h != "" {
		t.Errorf("the token went to another origin: Authorization %q", h)
	}
	if h := reqs[0].Header.Get("Cookie"); h != "" {
		t.Errorf("cookies went to another origin: %q", h)
	}
	if reqs[0].Header.Get("X-Trace") != "1" {
		t.Error("harmless headers were dropped too")
	}
	last := a.Requests()[len(a.Requests())-1]
	if last.Path != "/away" || last.Header.Get("Authorization") != "Bearer "+canary || last.Header.Get("Cookie") == "" {
		t.Errorf("the first hop on the configured origin lacks its credentials: %+v", last)
	}
}

func TestNoFollow(t *testing.T) {
	a := newSim(t)
	b := newSim(t, httpchecksim.WithAutoCreate())
	a.Redirect("/old", http.StatusMovedPermanently, b.URL()+"/new")
	out, err, _ := run(t, map[string]any{"url": a.URL() + "/old", "follow_redirects": false, "expect_status": []any{301}})
	if err != nil || out["status"] != 301 {
		t.Fatalf("out %v, err %v", out, err)
	}
	if n := len(b.Requests()); n != 0 {
		t.Errorf("followed a redirect with follow_redirects false (%d requests)", n)
	}
}

func TestRedirectLimit(t *testing.T) {
	a := newSim(t)
	a.Redirect("/loop", http.StatusFound, "/loop")
	_, err, _ := run(t, map[string]any{"url": a.URL() + "/loop"})
	if err == nil || !strings.Contains(err.Error(), "stopped after 10 redirects") {
		t.Fatalf("err = %v", err)
	}
	if n := len(a.Requests()); n != 11 {
		t.Errorf("%d requests, want 11 (the first and 10 redirects)", n)
	}
}

func TestBasicAuth(t *testing.T) {
	sim := newSim(t, httpchecksim.WithAutoCreate())
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("deployer:"+canary))
	sim.RequireAuth(want)
	c := conn(sim.URL() + "/jenkins")
	c.Settings = map[string]string{"user": "deployer"}
	if _, err, _ := run(t, map[string]any{"connection": "site", "url": "login"}, c); err != nil {
		t.Fatal(err)
	}
	if p := sim.Requests()[0].Path; p != "/jenkins/login" {
		t.Errorf("requested %s, want /jenkins/login", p)
	}
}

func TestWrongCredentials(t *testing.T) {
	sim := newSim(t, httpchecksim.WithAutoCreate())
	sim.RequireAuth("Bearer the-right-one")
	out, err, sc := run(t, map[string]any{"connection": "site", "url": "/api", "attempts": 5}, conn(sim.URL()))
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "check the connection's token") {
		t.Fatalf("err = %v", err)
	}
	if n := len(sim.Requests()); n != 1 {
		t.Errorf("retried a 401 %d times; credentials do not get better by waiting", n)
	}
	assertNoCanary(t, out, err, sc)
}

func TestMissingCredentials(t *testing.T) {
	sim := newSim(t, httpchecksim.WithAutoCreate())
	c := &engine.Connection{Name: "site", Type: "http", URL: sim.URL(), TokenEnv: "RUNBOOK_TEST_UNSET_TOKEN_9d2"}
	_, err, _ := run(t, map[string]any{"connection": "site", "url": "/"}, c)
	if !errors.Is(err, engine.ErrNoSecret) || !strings.Contains(err.Error(), "RUNBOOK_TEST_UNSET_TOKEN_9d2") {
		t.Fatalf("err = %v, want one naming the unset variable", err)
	}
	if n := len(sim.Requests()); n != 0 {
		t.Errorf("made %d requests without the configured credentials", n)
	}

	// No connection, and the site wants credentials: say so.
	sim.RequireAuth("Bearer x")
	_, err, _ = run(t, map[string]any{"url": sim.URL() + "/"})
	if err == nil || !strings.Contains(err.Error(), "give the check a connection") {
		t.Fatalf("err = %v", err)
	}
}

func TestURLOffTheConnectionIsRefused(t *testing.T) {
	a := newSim(t, httpchecksim.WithAutoCreate())
	b := newSim(t, httpchecksim.WithAutoCreate())
	for _, op := range []string{"plan", "run"} {
		step := enginetest.Decode(t, "http.check", map[string]any{"connection": "site", "url": b.URL() + "/"})
		sc := enginetest.NewContext(t, "smoke", conn(a.URL()))
		var err error
		if op == "plan" {
			_, err = step.Plan(context.Background(), sc.StepContext)
		} else {
			_, err = step.Run(context.Background(), sc.StepContext)
		}
		if err == nil || !strings.Contains(err.Error(), "only for its own scheme, host and port") {
			t.Errorf("%s: err = %v", op, err)
		}
	}
	if len(a.Requests())+len(b.Requests()) != 0 {
		t.Error("a request was made")
	}
}

func TestCanaryTokenNeverShown(t *testing.T) {
	sim := newSim(t)
	sim.Handle("/ok", 200, "fine")
	sim.Redirect("/r", http.StatusFound, "/ok")
	sim.HandleSequence("/flaky", httpchecksim.Response{Status: 500, Body: "oops"})
	for _, path := range []string{"/ok", "/r", "/flaky", "/nothing"} {
		out, err, sc := run(t, map[string]any{"connection": "site", "url": path, "attempts": 2, "interval": "1s"}, conn(sim.URL()))
		assertNoCanary(t, out, err, sc)
	}
	step := enginetest.Decode(t, "http.check", map[string]any{"connection": "site", "url": "/ok"})
	sc := enginetest.NewContext(t, "smoke", conn(sim.URL()))
	plan, err := step.Plan(context.Background(), sc.StepContext)
	if err != nil || strings.Contains(fmt.Sprint(plan), canary) {
		t.Errorf("plan %v shows the token (err %v)", plan, err)
	}
}

func assertNoCanary(t *testing.T, out engine.Outputs, err error, sc *enginetest.Context) {
	t.Helper()
	if strings.Contains(fmt.Sprint(out), canary) {
		t.Errorf("token in outputs %v", out)
	}
	if err != nil && strings.Contains(err.Error(), canary) {
		t.Errorf("token in error %v", err)
	}
	if strings.Contains(sc.LogText(), canary) {
		t.Errorf("token in log %q", sc.LogText())
	}
}

func TestInjectedClientIsUsed(t *testing.T) {
	sim := newSim(t, httpchecksim.WithAutoCreate())
	used := false
	c := conn(sim.URL())
	c.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		used = true
		return http.DefaultTransport.RoundTrip(r)
	})}
	if _, err, _ := run(t, map[string]any{"connection": "site", "url": "/"}, c); err != nil {
		t.Fatal(err)
	}
	if !used {
		t.Error("the connection's HTTP client was not used")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestResolveURL(t *testing.T) {
	for _, c := range []struct{ base, ref, want string }{
		{"", "https://cessda.eu/health", "https://cessda.eu/health"},
		{"https://jenkins.cessda.eu/jenkins", "job/x/api/json", "https://jenkins.cessda.eu/jenkins/job/x/api/json"},
		{"https://jenkins.cessda.eu/jenkins/", "/login?from=%2F", "https://jenkins.cessda.eu/jenkins/login?from=%2F"},
		{"https://a.example", "https://a.example:8443/x", "https://a.example:8443/x"},
	} {
		u, err := ResolveURL(c.base, c.ref)
		if err != nil || u.String() != c.want {
			t.Errorf("ResolveURL(%q, %q) = %v, %v; want %s", c.base, c.ref, u, err, c.want)
		}
	}
	for _, bad := range []struct{ base, ref string }{{"", "/health"}, {"", "ftp://x/"}, {"", "https:///nohost"}} {
		if u, err := ResolveURL(bad.base, bad.ref); err == nil {
			t.Errorf("ResolveURL(%q, %q) = %v, want an error", bad.base, bad.ref, u)
		}
	}
}

func TestSameOrigin(t *testing.T) {
	p := func(s string) *url.URL { u, _ := url.Parse(s); return u }
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"https://x.org/a", "https://X.org:443/b", true},
		{"http://x.org/", "http://x.org:80/", true},
		{"https://x.org/", "http://x.org/", false},
		{"https://x.org/", "https://sub.x.org/", false},
		{"http://127.0.0.1:1000/", "http://127.0.0.1:1001/", false},
	} {
		if got := SameOrigin(p(c.a), p(c.b)); got != c.want {
			t.Errorf("SameOrigin(%s, %s) = %v", c.a, c.b, got)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if d := ParseRetryAfter("120", now); d != 2*time.Minute {
		t.Errorf("120 -> %s", d)
	}
	if d := ParseRetryAfter(now.Add(time.Minute).Format(http.TimeFormat), now); d != time.Minute {
		t.Errorf("date -> %s", d)
	}
	if d := ParseRetryAfter("soon", now); d != 0 {
		t.Errorf("soon -> %s", d)
	}
}

func FuzzExcerpt(f *testing.F) {
	f.Add([]byte("héllo wörld"), 3)
	f.Add([]byte{0xf0, 0x9f, 0x98, 0x80}, 2)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		if n < 0 || n > 4096 {
			return
		}
		e := Excerpt(b, n)
		if len(e) > n || !strings.HasPrefix(string(b), e) {
			t.Fatalf("Excerpt(%q, %d) = %q", b, n, e)
		}
		if utf8.Valid(b) && !utf8.ValidString(e) {
			t.Fatalf("Excerpt of valid UTF-8 is invalid: %q", e)
		}
		if utf8.Valid(b) && len(b) > n && n-len(e) >= utf8.UTFMax {
			t.Fatalf("Excerpt cut %d bytes, more than a rune", n-len(e))
		}
	})
}

func FuzzResolveURL(f *testing.F) {
	f.Add("https://jenkins.cessda.eu/jenkins", "job/x")
	f.Add("", "http://127.0.0.1:8080/a?b=c")
	f.Add("https://a.example/", "../../../etc")
	f.Fuzz(func(t *testing.T, base, ref string) {
		u, err := ResolveURL(base, ref)
		if err != nil {
			return
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
			t.Fatalf("ResolveURL(%q, %q) = %v", base, ref, u)
		}
		// A relative url never leaves the base's origin: the connection's credentials
		// depend on it.
		if r, err := url.Parse(strings.TrimSpace(ref)); err == nil && !r.IsAbs() {
			b, _ := url.Parse(base)
			if !SameOrigin(b, u) {
				t.Fatalf("relative %q left base %q for %v", ref, base, u)
			}
		}
		if !SameOrigin(u, u) {
			t.Fatalf("SameOrigin(%v, itself) is false", u)
		}
	})
}
