package httpcheck

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cessda/runbook/engine"
)

func init() {
	engine.RegisterConnectionType(engine.ConnectionType{
		Name:    "http",
		Summary: "A web site or HTTP API checked by http.check; url is the base URL",
		Settings: map[string]string{
			"user": "send the token as HTTP basic auth with this user name (default: Authorization: Bearer <token>)",
		},
	})
	engine.Register(engine.StepType{
		Name:         "http.check",
		ReadOnlyWith: readsOnly,
		Summary:      "Request a URL and check its status and body (a smoke check), optionally until healthy",
		Doc: "Requests `url` and checks the status is one of `expect_status` and the body contains every " +
			"`body_contains` and matches `body_matches`. With `attempts` > 1 it tries again every `interval` " +
			"until the check passes (\"until healthy\"). With a `connection` of type http, relative URLs are " +
			"joined to the connection's url and its token is sent, but only to that scheme, host and port: " +
			"redirects elsewhere are followed without credentials or cookies.",
		New: func() engine.Step { return &Check{} },
		// Connection is left unset on purpose: the engine then requires a connection of
		// that type in every playbook using the step, and most checks are of public URLs.
		// The optional `connection` parameter is resolved at plan and run time instead.
		Outputs: []engine.Output{
			{Name: "status", Type: engine.TypeInt, Desc: "HTTP status of the last answer"},
			{Name: "duration_ms", Type: engine.TypeInt, Desc: "time the last request took, in milliseconds"},
			{Name: "body_excerpt", Type: engine.TypeString, Desc: "first 512 bytes of the body"},
		},
	})
}

// Check is the params struct of the `http.check` step type.
type Check struct {
	Method          string            `json:"method" default:"GET" enum:"GET,HEAD,POST,PUT,PATCH,DELETE,OPTIONS" desc:"HTTP method"`
	URL             string            `json:"url" required:"true" desc:"absolute URL, or a path joined to the connection's url"`
	Headers         map[string]string `json:"headers" desc:"extra request headers"`
	ExpectStatus    []int             `json:"expect_status" default:"[200]" desc:"acceptable status codes"`
	BodyContains    []string          `json:"body_contains" desc:"strings the body must contain"`
	BodyMatches     string            `json:"body_matches" desc:"regular expression (Go syntax) the body must match"`
	Attempts        int               `json:"attempts" default:"1" desc:"how many times to try before failing (\"until healthy\")"`
	Interval        engine.Duration   `json:"interval" default:"5s" desc:"wait between attempts"`
	Timeout         engine.Duration   `json:"timeout" default:"30s" desc:"time limit of one request"`
	MaxBodyBytes    int               `json:"max_body_bytes" default:"1048576" desc:"read at most this many bytes of the body"`
	FollowRedirects bool              `json:"follow_redirects" default:"true" desc:"follow up to 10 redirects"`
	Connection      string            `json:"connection" desc:"optional connection of type http: base URL and credentials"`
}

const (
	excerptBytes = 512
	maxRedirects = 10
)

// Validate checks the parameters that need no connection.
func (c *Check) Validate() error {
	if strings.TrimSpace(c.URL) == "" {
		return errors.New("http.check: url is empty")
	}
	if c.Method != "" && !slices.Contains([]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}, c.Method) {
		return fmt.Errorf("http.check: method %q is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS", c.Method)
	}
	for _, s := range c.ExpectStatus {
		if s < 100 || s > 599 {
			return fmt.Errorf("http.check: expect_status %d is not an HTTP status", s)
		}
	}
	if c.BodyMatches != "" {
		if _, err := regexp.Compile(c.BodyMatches); err != nil {
			return fmt.Errorf("http.check: body_matches: %v", err)
		}
	}
	if c.Attempts < 1 {
		return fmt.Errorf("http.check: attempts must be at least 1, not %d", c.Attempts)
	}
	if c.Interval < 0 || c.Timeout < 0 {
		return errors.New("http.check: interval and timeout must not be negative")
	}
	if c.MaxBodyBytes < 1 {
		return fmt.Errorf("http.check: max_body_bytes must be at least 1, not %d", c.MaxBodyBytes)
	}
	for k := range c.Headers {
		if strings.ContainsAny(k, " :\r\n") || k == "" {
			return fmt.Errorf("http.check: %q is not a header name", k)
		}
	}
	return nil
}

// readsOnly says whether a check with these rendered parameters only reads: a GET (the
// default), HEAD or OPTIONS. Any other method may change something, so the engine makes
// its intent durable before it is sent.
func readsOnly(params map[string]any) bool {
	m, given := params["method"]
	switch {
	case !given, m == http.MethodGet, m == http.MethodHead, m == http.MethodOptions:
		return true
	}
	return false
}

func (c *Check) method() string {
	if c.Method == "" {
		return http.MethodGet
	}
	return c.Method
}

func (c *Check) expected() []int {
	if len(c.ExpectStatus) == 0 {
		return []int{http.StatusOK}
	}
	return c.ExpectStatus
}

// Plan says what would be requested and checked. It makes no request.
func (c *Check) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	target := sc.Show("url", c.URL)
	var conn *engine.Connection
	if c.Connection != "" {
		var err error
		if conn, err = sc.Connection(c.Connection, "http"); err != nil {
			return engine.Plan{}, fmt.Errorf("http.check: %w", err)
		}
	}
	if !sc.Unknown("url") {
		u, err := c.target(conn)
		if err != nil {
			return engine.Plan{}, err
		}
		target = u.Redacted()
	}
	p := engine.Plan{Action: fmt.Sprintf("%s %s expect %s", c.method(), target, joinInts(c.expected()))}
	for _, s := range c.BodyContains {
		p.Details = append(p.Details, fmt.Sprintf("body contains %q", s))
	}
	if c.BodyMatches != "" {
		p.Details = append(p.Details, fmt.Sprintf("body matches /%s/", c.BodyMatches))
	}
	if c.Attempts > 1 {
		p.Details = append(p.Details, fmt.Sprintf("up to %d attempts, %s apart", c.Attempts, c.Interval))
	}
	if conn != nil && hasSecret(conn) {
		p.Details = append(p.Details, fmt.Sprintf("authenticated with connection %s", conn.Name))
	}
	if !c.FollowRedirects {
		p.Details = append(p.Details, "redirects are not followed")
	}
	return p, nil
}

// Run requests the URL until the check passes or the attempts are used up.
func (c *Check) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var conn *engine.Connection
	if c.Connection != "" {
		var err error
		if conn, err = sc.Connection(c.Connection, "http"); err != nil {
			return nil, fmt.Errorf("http.check: %w", err)
		}
	}
	target, err := c.target(conn)
	if err != nil {
		return nil, err
	}
	auth, err := authorization(conn)
	if err != nil {
		return nil, err
	}
	var re *regexp.Regexp
	if c.BodyMatches != "" {
		re = regexp.MustCompile(c.BodyMatches) // validated above
	}
	client := c.client(conn, target)
	for attempt := 1; ; attempt++ {
		out, err := c.once(ctx, sc, client, target, auth, re)
		if err == nil {
			if attempt > 1 {
				sc.Logf("passed on attempt %d of %d", attempt, c.Attempts)
			}
			return out, nil
		}
		if ctx.Err() != nil || attempt >= c.Attempts || isCredentialError(err) {
			return out, err
		}
		sc.Logf("attempt %d of %d: %v; trying again in %s", attempt, c.Attempts, err, c.Interval)
		if err := sc.Sleep(ctx, c.Interval.D()); err != nil {
			return out, fmt.Errorf("http.check: %s %s: %w", c.method(), target.Redacted(), err)
		}
	}
}

// credentialError marks a 401/403 the check did not expect: trying again will not help.
type credentialError struct{ error }

func isCredentialError(err error) bool {
	var ce credentialError
	return errors.As(err, &ce)
}

// once makes one request and checks the answer.
func (c *Check) once(ctx context.Context, sc *engine.StepContext, client *http.Client, target *url.URL, auth string, re *regexp.Regexp) (engine.Outputs, error) {
	where := c.method() + " " + target.Redacted()
	rctx := ctx
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(ctx, c.Timeout.D())
		defer cancel()
	}
	req, err := http.NewRequestWithContext(rctx, c.method(), target.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("http.check: %s: %v", where, err)
	}
	for k, v := range c.Headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	start := time.Now() // the request takes real time, whatever the run's clock says
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("http.check: %s: %w", where, ctx.Err())
		}
		if rctx.Err() != nil {
			return nil, engine.Transient(fmt.Errorf("http.check: %s: no answer within %s", where, c.Timeout))
		}
		return nil, engine.Transient(fmt.Errorf("http.check: %s: %v", where, unwrapURLError(err)))
	}
	defer resp.Body.Close()
	body, truncated, readErr := readCapped(resp.Body, c.MaxBodyBytes)
	ms := time.Since(start).Milliseconds()
	out := engine.Outputs{"status": resp.StatusCode, "duration_ms": int(ms), "body_excerpt": Excerpt(body, excerptBytes)}
	if final := resp.Request.URL; final.String() != target.String() {
		sc.Logf("%s: redirected to %s", where, final.Redacted())
	}
	sc.Logf("%s: %d %s in %d ms", where, resp.StatusCode, http.StatusText(resp.StatusCode), ms)
	if readErr != nil && ctx.Err() == nil {
		return out, engine.Transient(fmt.Errorf("http.check: %s: reading the body: %v", where, readErr))
	}
	if truncated {
		sc.Logf("%s: body longer than max_body_bytes (%d); checked the first %d bytes", where, c.MaxBodyBytes, len(body))
	}
	if !slices.Contains(c.expected(), resp.StatusCode) {
		err := fmt.Errorf("http.check: %s: expected status %s, got %d %s%s", where, joinInts(c.expected()), resp.StatusCode, http.StatusText(resp.StatusCode), excerptSuffix(body))
		switch {
		case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
			hint := "the URL needs credentials: give the check a connection of type http with a token"
			if auth != "" {
				hint = "check the connection's token (and its user setting, for basic auth)"
			}
			return out, credentialError{fmt.Errorf("%w: %s", err, hint)}
		case resp.StatusCode == http.StatusTooManyRequests:
			return out, engine.RetryAfter(err, ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()))
		case resp.StatusCode >= 500:
			return out, engine.Transient(err)
		}
		return out, err
	}
	if missing := MissingStrings(body, c.BodyContains); len(missing) > 0 {
		return out, fmt.Errorf("http.check: %s: expected the body to contain %s, but it does not%s", where, quoteAll(missing), excerptSuffix(body))
	}
	if re != nil && !re.Match(body) {
		return out, fmt.Errorf("http.check: %s: expected the body to match /%s/, but it does not%s", where, c.BodyMatches, excerptSuffix(body))
	}
	return out, nil
}

// target is the URL to request: the url parameter, joined to the connection's base URL
// when it is relative. With a connection, it must be on the connection's origin.
func (c *Check) target(conn *engine.Connection) (*url.URL, error) {
	base := ""
	if conn != nil {
		base = conn.URL
	}
	u, err := ResolveURL(base, c.URL)
	if err != nil {
		return nil, fmt.Errorf("http.check: %v", err)
	}
	if conn != nil {
		b, _ := url.Parse(conn.URL)
		if !SameOrigin(b, u) {
			return nil, fmt.Errorf("http.check: url %s is not on connection %q (%s): the connection's credentials are only for its own scheme, host and port; use a relative url or drop the connection", u.Redacted(), conn.Name, b.Redacted())
		}
	}
	return u, nil
}

// client returns a copy of the connection's HTTP client (or the default one) whose
// redirect policy never carries credentials away from the configured origin.
func (c *Check) client(conn *engine.Connection, target *url.URL) *http.Client {
	base := http.DefaultClient
	if conn != nil {
		base = conn.HTTP()
	}
	cl := *base
	cl.Timeout = 0 // each request has its own deadline from ctx
	origin := *target
	follow := c.FollowRedirects
	cl.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !follow {
			return http.ErrUseLastResponse
		}
		if len(via) > maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		// net/http keeps Authorization and Cookie for redirects to the same host name on
		// another port or scheme, and to subdomains; a check is stricter.
		if !SameOrigin(&origin, req.URL) {
			for _, h := range []string{"Authorization", "Proxy-Authorization", "Cookie"} {
				req.Header.Del(h)
			}
		}
		return nil
	}
	return &cl
}

// hasSecret reports whether the connection names a secret at all; a connection of type
// http may be just a base URL.
func hasSecret(conn *engine.Connection) bool {
	return conn != nil && (conn.Token != "" || conn.TokenEnv != "" || conn.TokenFile != "")
}

// authorization is the Authorization header for the connection, or "".
func authorization(conn *engine.Connection) (string, error) {
	if !hasSecret(conn) {
		return "", nil
	}
	secret, err := conn.Secret()
	if err != nil {
		return "", fmt.Errorf("http.check: %w", err)
	}
	if user := conn.Setting("user", ""); user != "" {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+secret)), nil
	}
	return "Bearer " + secret, nil
}

// ResolveURL returns ref as an absolute http(s) URL: as it is when absolute, else joined
// below base's path ("health" and "/health" both land under base's path).
func ResolveURL(base, ref string) (*url.URL, error) {
	r, err := url.Parse(strings.TrimSpace(ref))
	if err != nil {
		return nil, fmt.Errorf("url %q: %v", ref, err)
	}
	if !r.IsAbs() {
		if base == "" {
			return nil, fmt.Errorf("url %q is not absolute and no connection gives a base URL", ref)
		}
		b, err := url.Parse(base)
		if err != nil {
			return nil, fmt.Errorf("connection url %q: %v", base, err)
		}
		if !strings.HasSuffix(b.Path, "/") {
			b.Path += "/"
			b.RawPath = ""
		}
		r.Path = strings.TrimLeft(r.Path, "/")
		r.RawPath = ""
		r = b.ResolveReference(r)
	}
	if r.Scheme != "http" && r.Scheme != "https" {
		return nil, fmt.Errorf("url %q: scheme must be http or https", ref)
	}
	if r.Host == "" {
		return nil, fmt.Errorf("url %q has no host", ref)
	}
	return r, nil
}

// SameOrigin reports whether a and b have the same scheme, host and port (default ports
// made explicit), the boundary credentials may not cross.
func SameOrigin(a, b *url.URL) bool {
	if a == nil || b == nil {
		return false
	}
	return strings.EqualFold(a.Scheme, b.Scheme) &&
		strings.EqualFold(a.Hostname(), b.Hostname()) &&
		port(a) == port(b)
}

func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "http":
		return "80"
	case "https":
		return "443"
	}
	return ""
}

// Excerpt returns at most n bytes of b from its start, cut at a rune boundary so the
// result is valid UTF-8 when b is.
func Excerpt(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	b = b[:n]
	for i := 0; i < utf8.UTFMax && len(b) > 0; i++ {
		if r, size := utf8.DecodeLastRune(b); r != utf8.RuneError || size != 1 {
			break
		}
		b = b[:len(b)-1]
	}
	return string(b)
}

// MissingStrings returns the elements of want that body does not contain.
func MissingStrings(body []byte, want []string) []string {
	var missing []string
	for _, s := range want {
		if !strings.Contains(string(body), s) {
			missing = append(missing, s)
		}
	}
	return missing
}

// ParseRetryAfter parses a Retry-After header (seconds or an HTTP date); 0 when absent or bad.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// readCapped reads at most limit bytes of r and says whether there was more.
func readCapped(r io.Reader, limit int) ([]byte, bool, error) {
	b, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if len(b) > limit {
		return b[:limit], true, err
	}
	return b, false, err
}

func excerptSuffix(body []byte) string {
	if len(body) == 0 {
		return " (empty body)"
	}
	return fmt.Sprintf(" (body starts %q)", Excerpt(body, 200))
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, " or ")
}

func quoteAll(v []string) string {
	q := make([]string, len(v))
	for i, s := range v {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}
