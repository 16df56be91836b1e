package zenodo

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cessda/runbook/engine"
)

// Client is a small client of the Zenodo deposit API. No maintained Go client exists;
// this one covers what a release needs and nothing more. The token is sent only as an
// Authorization: Bearer header (never as ?access_token=, so it cannot end up in a logged
// URL) and only to the API's own host.
type Client struct {
	Base      *url.URL // the API base, ending in "/" (https://zenodo.org/api/)
	HTTP      *http.Client
	Token     string
	TokenHint string           // where the token comes from, for error messages ("ZENODO_TOKEN")
	Now       func() time.Time // for rate-limit resets; time.Now when nil
	// Timeout bounds one API request (an upload gets UploadTimeout) so a hung server
	// becomes a retryable error instead of a hung run.
	Timeout       time.Duration
	UploadTimeout time.Duration
}

// NewClient returns a client for the API at base.
func NewClient(base string, hc *http.Client, token string) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("zenodo: the connection url %q is not an absolute URL (want e.g. https://zenodo.org/api/)", base)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{Base: u, HTTP: hc, Token: token, TokenHint: "ZENODO_TOKEN", Timeout: 2 * time.Minute, UploadTimeout: time.Hour}, nil
}

// Deposition is the legacy JSON representation of a deposition.
type Deposition struct {
	ID           int            `json:"id"`
	RecordID     int            `json:"record_id"`
	ConceptRecID string         `json:"conceptrecid"`
	State        string         `json:"state"` // unsubmitted, inprogress, done
	Submitted    bool           `json:"submitted"`
	DOI          string         `json:"doi"`
	DOIURL       string         `json:"doi_url"`
	ConceptDOI   string         `json:"conceptdoi"`
	RecordURL    string         `json:"record_url"`
	Metadata     map[string]any `json:"metadata"`
	Links        map[string]any `json:"links"`
	Files        []DepFile      `json:"files"`
}

// DepFile is a file of a deposition.
type DepFile struct {
	ID       string `json:"id"`
	Filename string `json:"filename"`
	Filesize int64  `json:"filesize"`
	Checksum string `json:"checksum"` // md5 hex, sometimes "md5:<hex>"
}

// MD5 returns the file's md5 in hex, whatever form the server used.
func (f DepFile) MD5() string { return strings.TrimPrefix(f.Checksum, "md5:") }

// Link returns links[name] as a string.
func (d *Deposition) Link(name string) string {
	s, _ := d.Links[name].(string)
	return s
}

// Version is metadata.version.
func (d *Deposition) Version() string {
	s, _ := d.Metadata["version"].(string)
	return s
}

// Title is metadata.title.
func (d *Deposition) Title() string {
	s, _ := d.Metadata["title"].(string)
	return s
}

// ReservedDOI is the DOI this deposition has or will get on publish.
func (d *Deposition) ReservedDOI() string {
	if d.DOI != "" {
		return d.DOI
	}
	if m, ok := d.Metadata["prereserve_doi"].(map[string]any); ok {
		if s, ok := m["doi"].(string); ok {
			return s
		}
	}
	return ""
}

// ConceptID is the concept record id as a number (0 when absent).
func (d *Deposition) ConceptID() int {
	n, _ := strconv.Atoi(d.ConceptRecID)
	return n
}

// FieldError is one field's validation messages.
type FieldError struct {
	Field    string
	Messages []string
}

// APIError is an error answer from Zenodo, in either of its two body forms.
type APIError struct {
	Method    string
	URL       string
	Status    int
	Message   string
	Fields    []FieldError
	TokenHint string
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "zenodo: %d %s from %s %s", e.Status, http.StatusText(e.Status), e.Method, e.URL)
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", strings.TrimSuffix(e.Message, "."))
	}
	for i, f := range e.Fields {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		name := f.Field
		if name == "" {
			name = "(request)"
		}
		fmt.Fprintf(&b, "%s: %s", name, strings.Join(f.Messages, " "))
	}
	switch e.Status {
	case 401:
		fmt.Fprintf(&b, " (check the token in %s; production and sandbox tokens differ)", e.hint())
	case 403:
		b.WriteString(" (the token may lack the deposit:write or deposit:actions scope, or the deposition belongs to another account or is locked)")
	case 415:
		b.WriteString(" (the request body must be application/json)")
	}
	return b.String()
}

func (e *APIError) hint() string {
	if e.TokenHint == "" {
		return "ZENODO_TOKEN"
	}
	return e.TokenHint
}

// parseError reads both error forms: the legacy {"message", "errors":[{"field","message"}]}
// and the InvenioRDM {"message", "errors":[{"field","messages":[...]}]}.
func parseError(body []byte, scrub func(string) string) (string, []FieldError) {
	var raw struct {
		Message string `json:"message"`
		Errors  []struct {
			Field    string          `json:"field"`
			Message  string          `json:"message"`
			Messages json.RawMessage `json:"messages"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		s := strings.TrimSpace(string(body))
		if len(s) > 200 || strings.HasPrefix(s, "<") {
			s = ""
		}
		return s, nil
	}
	var fields []FieldError
	for _, e := range raw.Errors {
		fe := FieldError{Field: scrub(e.Field)} // a field name is server-echoed text too
		if e.Message != "" {
			fe.Messages = append(fe.Messages, e.Message)
		}
		fe.Messages = append(fe.Messages, flattenMessages(e.Messages)...)
		for i, m := range fe.Messages {
			fe.Messages[i] = scrub(m)
		}
		fields = append(fields, fe)
	}
	return raw.Message, fields
}

// flattenMessages accepts a list of strings, a string, or nested objects of those.
func flattenMessages(raw json.RawMessage) []string {
	if len(raw) == 0 {
		return nil
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return nil
	}
	var out []string
	var walk func(any)
	walk = func(x any) {
		switch t := x.(type) {
		case string:
			out = append(out, t)
		case []any:
			for _, e := range t {
				walk(e)
			}
		case map[string]any:
			for k, e := range t {
				for _, m := range flattenMessages(mustJSON(e)) {
					out = append(out, k+": "+m)
				}
			}
		}
	}
	walk(v)
	return out
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// URL resolves a path relative to the API base.
func (c *Client) URL(path string, q url.Values) string {
	u := c.Base.ResolveReference(&url.URL{Path: path})
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// sameHost reports whether u is served by the API's host, the only one given the token.
func (c *Client) sameHost(u string) bool {
	p, err := url.Parse(u)
	return err == nil && strings.EqualFold(p.Scheme, c.Base.Scheme) && strings.EqualFold(p.Host, c.Base.Host)
}

// do sends one request and decodes a 2xx JSON answer into out. Failures come back as
// *APIError, wrapped with engine.Transient (5xx, network) or engine.RetryAfter (429).
func (c *Client) do(ctx context.Context, method, u string, body io.Reader, size int64, contentType string, out any) error {
	if !c.sameHost(u) {
		return fmt.Errorf("zenodo: refusing to send the token to %s, which is not the API host %s", redactURL(u), c.Base.Host)
	}
	timeout := c.Timeout
	if contentType == "application/octet-stream" && c.UploadTimeout > 0 {
		timeout = c.UploadTimeout
	}
	rctx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(rctx, method, u, body)
	if err != nil {
		return fmt.Errorf("zenodo: %s %s: %v", method, redactURL(u), err)
	}
	if body != nil {
		req.ContentLength = size
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return engine.Transient(fmt.Errorf("zenodo: %s %s: %v", method, redactURL(u), c.scrub(unwrapURLError(err))))
	}
	defer resp.Body.Close()
	data, rerr := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if rerr != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if rerr != nil {
			return engine.Transient(fmt.Errorf("zenodo: %s %s: reading the answer: %v", method, redactURL(u), rerr))
		}
		if out == nil || len(bytes.TrimSpace(data)) == 0 {
			return nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("zenodo: %s %s: the answer is not the expected JSON: %v", method, redactURL(u), err)
		}
		return nil
	}
	msg, fields := parseError(data, c.scrubString)
	apiErr := &APIError{Method: method, URL: redactURL(u), Status: resp.StatusCode, Message: c.scrubString(msg), Fields: fields, TokenHint: c.TokenHint}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return engine.RetryAfter(apiErr, c.retryDelay(resp.Header))
	case resp.StatusCode >= 500:
		return engine.Transient(apiErr)
	}
	return apiErr
}

// retryDelay reads Retry-After (seconds or an HTTP date), else X-RateLimit-Reset (epoch seconds).
func (c *Client) retryDelay(h http.Header) time.Duration {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	if v := h.Get("Retry-After"); v != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
			return time.Duration(n) * time.Second
		}
		if t, err := http.ParseTime(v); err == nil {
			if d := t.Sub(now()); d > 0 {
				return d
			}
		}
	}
	if v := h.Get("X-RateLimit-Reset"); v != "" {
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			if d := time.Unix(n, 0).Sub(now()); d > 0 {
				return d.Round(time.Second)
			}
		}
	}
	return time.Minute
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// redactURL drops any access_token query parameter and user info before a URL is shown.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	p.User = nil
	if q := p.Query(); q.Has("access_token") {
		q.Del("access_token")
		p.RawQuery = q.Encode()
	}
	return p.String()
}

func (c *Client) scrub(err error) error { return errors.New(c.scrubString(err.Error())) }

func (c *Client) scrubString(s string) string {
	if c.Token == "" {
		return s
	}
	return strings.ReplaceAll(s, c.Token, "[redacted]")
}

func (c *Client) doJSON(ctx context.Context, method, u string, in, out any) error {
	if in == nil {
		return c.do(ctx, method, u, nil, 0, "", out)
	}
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return c.do(ctx, method, u, bytes.NewReader(b), int64(len(b)), "application/json", out)
}

// Get fetches a deposition.
func (c *Client) Get(ctx context.Context, id int) (*Deposition, error) {
	var d Deposition
	return &d, c.doJSON(ctx, http.MethodGet, c.URL(fmt.Sprintf("deposit/depositions/%d", id), nil), nil, &d)
}

// GetURL fetches a deposition by its API URL (links.latest_draft).
func (c *Client) GetURL(ctx context.Context, u string) (*Deposition, error) {
	var d Deposition
	return &d, c.doJSON(ctx, http.MethodGet, u, nil, &d)
}

// ListOptions are the list endpoint's query parameters.
type ListOptions struct {
	Q           string
	Status      string // "", "draft" or "published"
	AllVersions bool
	Size        int
}

// List returns every deposition of the token's owner matching opts, following pages
// (up to maxPages) until a short page.
func (c *Client) List(ctx context.Context, opts ListOptions) ([]Deposition, error) {
	const maxPages = 50
	size := opts.Size
	if size <= 0 {
		size = 100
	}
	var all []Deposition
	for page := 1; page <= maxPages; page++ {
		q := url.Values{"size": {strconv.Itoa(size)}, "page": {strconv.Itoa(page)}, "sort": {"mostrecent"}}
		if opts.Q != "" {
			q.Set("q", opts.Q)
		}
		if opts.Status != "" {
			q.Set("status", opts.Status)
		}
		if opts.AllVersions {
			q.Set("all_versions", "true")
		}
		var batch []Deposition
		if err := c.doJSON(ctx, http.MethodGet, c.URL("deposit/depositions", q), nil, &batch); err != nil {
			return nil, err
		}
		all = append(all, batch...)
		if len(batch) < size {
			break
		}
	}
	return all, nil
}

// Create makes a draft deposition with the given metadata.
func (c *Client) Create(ctx context.Context, metadata map[string]any) (*Deposition, error) {
	var d Deposition
	return &d, c.doJSON(ctx, http.MethodPost, c.URL("deposit/depositions", nil), map[string]any{"metadata": metadata}, &d)
}

// Update replaces a draft's metadata.
func (c *Client) Update(ctx context.Context, id int, metadata map[string]any) (*Deposition, error) {
	var d Deposition
	return &d, c.doJSON(ctx, http.MethodPut, c.URL(fmt.Sprintf("deposit/depositions/%d", id), nil), map[string]any{"metadata": metadata}, &d)
}

// Delete deletes an unpublished deposition (DELETE deposit/depositions/{id}). Any 2xx is
// success: the legacy docs say 201, the current (RDM) server answers 204, both with no body.
func (c *Client) Delete(ctx context.Context, id int) error {
	return c.do(ctx, http.MethodDelete, c.URL(fmt.Sprintf("deposit/depositions/%d", id), nil), nil, 0, "", nil)
}

// Action posts actions/{name} (publish, edit, discard, newversion).
func (c *Client) Action(ctx context.Context, id int, name string) (*Deposition, error) {
	var d Deposition
	return &d, c.doJSON(ctx, http.MethodPost, c.URL(fmt.Sprintf("deposit/depositions/%d/actions/%s", id, name), nil), nil, &d)
}

// NewVersion asks for a new version draft of the published deposition id and returns the
// draft, whichever answer form the server uses: InvenioRDM returns the draft itself, the
// legacy docs the original with the draft at links.latest_draft.
func (c *Client) NewVersion(ctx context.Context, id int) (*Deposition, error) {
	d, err := c.Action(ctx, id, "newversion")
	if err != nil {
		return nil, err
	}
	if d.ID != id && !d.Submitted {
		return d, nil
	}
	ld := d.Link("latest_draft")
	if ld == "" {
		return nil, fmt.Errorf("zenodo: newversion of %d answered with neither a draft nor links.latest_draft", id)
	}
	return c.GetURL(ctx, ld)
}

// BucketFile is the answer to a bucket upload.
type BucketFile struct {
	Key      string `json:"key"`
	Checksum string `json:"checksum"`
	Size     int64  `json:"size"`
}

// Upload PUTs a local file into the deposition's bucket under name (replacing a file of
// that name).
func (c *Client) Upload(ctx context.Context, bucket, name, path string) (*BucketFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("zenodo: upload %s: %v", name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("zenodo: upload %s: %v", name, err)
	}
	var out BucketFile
	u := strings.TrimSuffix(bucket, "/") + "/" + url.PathEscape(name)
	return &out, c.do(ctx, http.MethodPut, u, f, st.Size(), "application/octet-stream", &out)
}

// DeleteFile removes a file from a draft's bucket (DELETE {bucket}/{name}); a file that is
// already gone is not an error.
func (c *Client) DeleteFile(ctx context.Context, bucket, name string) error {
	u := strings.TrimSuffix(bucket, "/") + "/" + url.PathEscape(name)
	err := c.do(ctx, http.MethodDelete, u, nil, 0, "", nil)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return nil
	}
	return err
}

// fileMD5 returns the md5 hex of a local file.
func fileMD5(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := md5.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
