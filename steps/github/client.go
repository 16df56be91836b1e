package github

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cessda/runbook/engine"
	gh "github.com/google/go-github/v60/github"
)

func init() {
	engine.RegisterConnectionType(engine.ConnectionType{
		Name:    "github",
		Summary: "GitHub or GitHub Enterprise REST API (token from GITHUB_TOKEN or a file)",
		Settings: map[string]string{
			"request_timeout": "deadline of one API request (default 30s)",
		},
		DefaultURL:      "https://api.github.com/",
		DefaultTokenEnv: "GITHUB_TOKEN",
	})
}

// client wraps go-github with the run's clock, per-request deadlines, and the mapping
// of GitHub failures onto the engine's error kinds (what to retry is the engine's).
type client struct {
	gh      *gh.Client
	hc      *http.Client
	token   string
	base    *url.URL
	sc      *engine.StepContext
	timeout time.Duration
}

// newClient builds the client of a step's github connection.
func newClient(sc *engine.StepContext, connName string) (*client, error) {
	conn, err := sc.Connection(connName, "github")
	if err != nil {
		return nil, fmt.Errorf("github: %w", err)
	}
	c := &client{sc: sc, timeout: 30 * time.Second}
	if v := conn.Setting("request_timeout", ""); v != "" {
		d, err := engine.ParseDuration(v)
		if err != nil {
			return nil, fmt.Errorf("github: connection %q: request_timeout: %v", conn.Name, err)
		}
		c.timeout = d
	}
	raw := conn.URL
	if raw == "" {
		raw = "https://api.github.com/"
	}
	if !strings.HasSuffix(raw, "/") {
		raw += "/" // go-github refuses a base URL without the trailing slash
	}
	c.base, err = url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("github: connection %q: bad url %q: %v", conn.Name, raw, err)
	}
	injected, ok, err := engine.Injected[*gh.Client](conn)
	if err != nil {
		return nil, fmt.Errorf("github: %w", err)
	}
	if ok {
		c.gh = injected
		return c, nil
	}
	c.token, err = conn.Secret()
	if err != nil {
		return nil, fmt.Errorf("github: %w", err)
	}
	base := conn.HTTP()
	rt := base.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	c.hc = &http.Client{Transport: &etagTransport{next: rt}, CheckRedirect: base.CheckRedirect, Jar: base.Jar}
	c.rebuild()
	return c, nil
}

// rebuild makes a fresh go-github client over the same transport (and ETag cache).
// go-github remembers a rate-limit reset and refuses calls until then on the wall
// clock; the step waits on the run's clock instead, so after such a wait it starts over.
func (c *client) rebuild() {
	if c.hc == nil {
		return
	}
	g := gh.NewClient(c.hc).WithAuthToken(c.token)
	g.BaseURL = c.base
	g.UploadURL = c.base
	c.gh = g
}

// call runs fn with a per-request deadline and turns its failure into the engine's
// error kinds. It does not retry: the step's retry policy does, once for the whole step
// (a re-run step finds what an earlier attempt made), so call only marks what is worth
// retrying (Transient) and how long a rate limit asks to wait (RetryAfter).
func (c *client) call(ctx context.Context, what string, fn func(ctx context.Context) (*gh.Response, error)) (*gh.Response, error) {
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	resp, err := fn(cctx)
	cancel()
	if err == nil {
		return resp, nil
	}
	if ctx.Err() != nil {
		return resp, ctx.Err()
	}
	return resp, c.classify(what, resp, err)
}

// classify turns a go-github error into an engine error with a message that says what
// to check. It never includes the token: go-github's messages carry method, URL and body.
func (c *client) classify(what string, resp *gh.Response, err error) error {
	var rl *gh.RateLimitError
	var ab *gh.AbuseRateLimitError
	var er *gh.ErrorResponse
	switch {
	case errors.As(err, &rl):
		c.rebuild()
		reset := rl.Rate.Reset.Time
		d := reset.Sub(c.sc.Now())
		if d < time.Second {
			d = time.Second
		}
		return engine.RetryAfter(fmt.Errorf("github: %s: primary rate limit exhausted (limit %d), resets at %s (in %s); the engine waits if the step's timeout allows", what, rl.Rate.Limit, reset.UTC().Format(time.RFC3339), d.Round(time.Second)), d)
	case errors.As(err, &ab):
		c.rebuild()
		d := time.Minute
		if ab.RetryAfter != nil && *ab.RetryAfter > 0 {
			d = *ab.RetryAfter
		}
		return engine.RetryAfter(fmt.Errorf("github: %s: secondary rate limit hit, retry after %s: %s", what, d, ab.Message), d)
	case errors.As(err, &er):
		st := 0
		if er.Response != nil {
			st = er.Response.StatusCode
		}
		msg := fmt.Sprintf("github: %s: %d %s", what, st, er.Message)
		for _, fe := range er.Errors {
			msg += fmt.Sprintf(" (%s.%s %s %s)", fe.Resource, fe.Field, fe.Code, fe.Message)
		}
		switch {
		case st == 401:
			return fmt.Errorf("%s: check the token (GITHUB_TOKEN or the connection's token file) is valid and not expired", msg)
		case st == 403:
			return fmt.Errorf("%s: check the token has write access to the repository (scopes repo / contents, issues)", msg)
		case st == 404:
			return fmt.Errorf("%s: check the repository name and that the token can see it (GitHub answers 404 for private repositories it hides)", msg)
		case st == 429:
			d := time.Minute
			if er.Response != nil {
				if s, e := strconv.Atoi(er.Response.Header.Get("Retry-After")); e == nil {
					d = time.Duration(s) * time.Second
				}
			}
			return engine.RetryAfter(errors.New(msg+": too many requests"), d)
		case st >= 500:
			return engine.Transient(errors.New(msg))
		}
		return errors.New(msg)
	}
	if resp != nil && resp.StatusCode >= 500 {
		return engine.Transient(fmt.Errorf("github: %s: %v", what, err))
	}
	var ne net.Error
	var ue *url.Error
	if errors.As(err, &ne) || errors.As(err, &ue) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.DeadlineExceeded) {
		return engine.Transient(fmt.Errorf("github: %s: %v (check the connection URL %s and the network)", what, err, c.base))
	}
	return fmt.Errorf("github: %s: %v", what, err)
}

// is404 reports whether err is GitHub's 404 (go-github's plain error from GetBranch too).
func is404(resp *gh.Response, err error) bool {
	if err == nil {
		return false
	}
	if resp != nil && resp.StatusCode == 404 {
		return true
	}
	var er *gh.ErrorResponse
	return errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == 404
}

// etagTransport makes GETs conditional: it remembers each URL's last ETag and body and,
// when GitHub answers 304 Not Modified (which costs no rate limit), serves the remembered
// body as a 200 marked X-From-Cache, so go-github neither errors nor updates its rate state.
type etagTransport struct {
	next http.RoundTripper
	mu   sync.Mutex
	ent  map[string]cached
}

type cached struct {
	etag   string
	header http.Header
	body   []byte
}

func (t *etagTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet {
		return t.next.RoundTrip(req)
	}
	key := req.URL.String()
	t.mu.Lock()
	ent, have := t.ent[key]
	t.mu.Unlock()
	if have {
		req = req.Clone(req.Context())
		req.Header.Set("If-None-Match", ent.etag)
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusNotModified && have {
		resp.Body.Close()
		h := ent.header.Clone()
		for _, k := range []string{"X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset", "X-Ratelimit-Used"} {
			if v := resp.Header.Get(k); v != "" {
				h.Set(k, v)
			}
		}
		h.Set("X-From-Cache", "1")
		return &http.Response{Status: "200 OK", StatusCode: 200, Proto: resp.Proto, ProtoMajor: resp.ProtoMajor, ProtoMinor: resp.ProtoMinor,
			Header: h, Body: io.NopCloser(bytes.NewReader(ent.body)), ContentLength: int64(len(ent.body)), Request: req}, nil
	}
	if resp.StatusCode == http.StatusOK {
		if etag := resp.Header.Get("ETag"); etag != "" {
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return nil, err
			}
			t.mu.Lock()
			if t.ent == nil {
				t.ent = map[string]cached{}
			}
			t.ent[key] = cached{etag: etag, header: resp.Header.Clone(), body: b}
			t.mu.Unlock()
			resp.Body = io.NopCloser(bytes.NewReader(b))
		}
	}
	return resp, nil
}

// splitRepo splits "owner/name".
func splitRepo(full string) (string, string, error) {
	o, n, ok := strings.Cut(strings.TrimSpace(full), "/")
	if !ok || o == "" || n == "" || strings.Contains(n, "/") {
		return "", "", fmt.Errorf("github: repository %q must be written owner/name", full)
	}
	return o, n, nil
}
