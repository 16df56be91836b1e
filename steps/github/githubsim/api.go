package githubsim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// operation answers one REST operation; it runs with s.mu held. It returns the status
// and the value to answer as JSON (nil for no body), or GitHub's error.
type operation func(c *reqCtx) (int, any, *httpErr)

// reqCtx is one API request as its operation sees it.
type reqCtx struct {
	r    *http.Request
	body []byte
	hdr  http.Header
	base string
	tok  string // the caller's token
	repo *repo
	// level is what the caller may do in repo (see access).
	level string
}

func (c *reqCtx) decode(v any) *httpErr {
	if err := json.Unmarshal(c.body, v); err != nil {
		return errf(400, "Problems parsing JSON")
	}
	return nil
}

// caller is who the API served a request for, filled in by serve for the kit's log (see
// requestOf): "" when the request was refused, answered by a fault or a web download.
type caller struct{ login string }

type callerKey struct{}

// withCaller gives each request a caller for serve to fill in.
func withCaller(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, &caller{})))
	})
}

// servedFor is the user the API served r for ("" when none): the kit's WithUser.
func servedFor(r *http.Request) string {
	if c, ok := r.Context().Value(callerKey{}).(*caller); ok {
		return c.login
	}
	return ""
}

// serve answers an operation the way GitHub answers around every operation: credentials,
// the primary rate limit, ETag / If-None-Match, X-RateLimit-* headers; then the events
// it caused go to the auto-responder before the client has its answer.
func (s *Server) serve(op operation) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hdr := http.Header{}
		s.mu.Lock()
		status, out := s.serveLocked(r, body, hdr, op)
		events, responder := s.events, s.responder
		s.events = nil
		s.mu.Unlock()

		if responder != nil {
			for _, ev := range events {
				responder(ev)
			}
		}
		for k, v := range hdr {
			w.Header()[k] = v
		}
		if out != nil {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
		}
		w.WriteHeader(status)
		if out != nil {
			_, _ = w.Write(out)
		}
	}
}

func (s *Server) serveLocked(r *http.Request, body []byte, hdr http.Header, op operation) (int, []byte) {
	s.refillLocked()
	tok := bearer(r)
	if ti := s.tokens[tok]; ti != nil && ti.classic && s.acceptedLocked(tok) {
		hdr.Set("X-OAuth-Scopes", strings.Join(ti.scopes, ", "))
	}
	status, out := s.admitLocked(r, tok)
	if status == 0 {
		if c, ok := r.Context().Value(callerKey{}).(*caller); ok {
			c.login = s.user
		}
		status, out = runLocked(&reqCtx{r: r, tok: tok, body: body, hdr: hdr, base: "http://" + r.Host + "/"}, op)
	}
	if status >= 200 && status < 300 && r.Method == http.MethodGet {
		sum := sha256.Sum256(out)
		etag := `"` + hex.EncodeToString(sum[:16]) + `"`
		hdr.Set("ETag", etag)
		if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, etag) {
			status, out = http.StatusNotModified, nil
		}
	}
	if status != http.StatusNotModified && status != 401 && r.URL.EscapedPath() != "/rate_limit" && s.remaining > 0 {
		s.remaining--
	}
	s.setRateHeaders(hdr, s.remaining)
	return status, out
}

func etagMatch(inm, etag string) bool {
	for _, t := range strings.Split(inm, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

func (s *Server) setRateHeaders(h http.Header, remaining int) {
	h.Set("X-RateLimit-Limit", strconv.Itoa(s.limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-RateLimit-Used", strconv.Itoa(s.limit-remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(s.reset.Unix(), 10))
	h.Set("X-RateLimit-Resource", "core")
}

// admitLocked refuses what GitHub refuses before any operation: a request without or
// with bad credentials, or beyond the primary rate limit. It answers 0 to admit.
func (s *Server) admitLocked(r *http.Request, tok string) (int, []byte) {
	switch {
	case r.Header.Get("Authorization") == "":
		return jsonErr(errf(401, "Requires authentication"))
	case !s.acceptedLocked(tok):
		return jsonErr(errf(401, "Bad credentials"))
	case s.remaining <= 0 && r.URL.EscapedPath() != "/rate_limit":
		e := errf(403, "API rate limit exceeded for user ID %d. If you reach out to GitHub Support for help, please include the request ID.", userID(s.user))
		e.body.DocumentationURL = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-primary-rate-limits"
		return jsonErr(e)
	}
	return 0, nil
}

func runLocked(c *reqCtx, op operation) (int, []byte) {
	status, v, herr := op(c)
	if herr != nil {
		return jsonErr(herr)
	}
	if v == nil {
		return status, nil
	}
	return status, mustJSON(v)
}

// need is the role a write needs in its repository (see access).
type need func(c *reqCtx) string

func role(level string) need { return func(*reqCtx) string { return level } }

var (
	pull = role("pull")
	push = role("push")
)

// inRepo runs op in the repository the path names, once the caller may (see access).
func (s *Server) inRepo(need need, op operation) operation {
	return func(c *reqCtx) (int, any, *httpErr) {
		rp := s.lookup(c.r.PathValue("owner") + "/" + c.r.PathValue("repo"))
		if rp == nil {
			return 0, nil, notFound()
		}
		c.repo = rp
		if e := s.access(c, need); e != nil {
			return 0, nil, e
		}
		return op(c)
	}
}

// noRoute answers a path the simulator does not speak as GitHub answers an unknown one.
func noRoute(*reqCtx) (int, any, *httpErr) { return 0, nil, notFound() }

func (s *Server) rateLimit(*reqCtx) (int, any, *httpErr) {
	rate := map[string]any{"limit": s.limit, "remaining": s.remaining, "reset": s.reset.Unix(), "used": s.limit - s.remaining}
	// The simulator serves no search, so its bucket (30 a minute on GitHub) stays full.
	search := map[string]any{"limit": 30, "remaining": 30, "reset": s.clock.Now().Add(time.Minute).Unix(), "used": 0}
	return 200, map[string]any{"resources": map[string]any{"core": rate, "search": search}, "rate": rate}, nil
}

// paginate cuts items to the requested page and sets the Link header the way GitHub does.
func paginate[T any](c *reqCtx, items []T) ([]T, *httpErr) {
	q := c.r.URL.Query()
	per, page := 30, 1
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, validation("", "per_page", "invalid", "per_page must be a positive integer")
		}
		per = min(n, 100)
	}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			n = 1
		}
		page = n
	}
	last := max((len(items)+per-1)/per, 1)
	if last > 1 {
		c.hdr.Set("Link", pageLinks(c, per, page, last))
	}
	lo := (page - 1) * per
	if lo >= len(items) {
		return []T{}, nil
	}
	return items[lo:min(lo+per, len(items))], nil
}

// pageLinks is GitHub's Link header for page of last.
func pageLinks(c *reqCtx, per, page, last int) string {
	link := func(n int, rel string) string {
		q := c.r.URL.Query()
		q.Set("per_page", strconv.Itoa(per))
		q.Set("page", strconv.Itoa(n))
		return fmt.Sprintf(`<%s%s?%s>; rel="%s"`, strings.TrimSuffix(c.base, "/"), c.r.URL.EscapedPath(), q.Encode(), rel)
	}
	var ls []string
	if page > 1 {
		ls = append(ls, link(page-1, "prev"))
	}
	if page < last {
		ls = append(ls, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		ls = append(ls, link(1, "first"))
	}
	return strings.Join(ls, ", ")
}
