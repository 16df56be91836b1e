package jenkins

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cessda/runbook/engine"
)

// Client is a small client of the Jenkins remote access API: just what triggering and
// following a build needs. No maintained Go client exists, so it is written here.
type Client struct {
	base     *url.URL
	user     string
	token    string
	tokenEnv string // named in the 401 message
	hc       *http.Client

	// Sleep waits between retries of a failed read (5xx, dropped connection); nil
	// disables the retries. The step passes the run's clock.
	Sleep   func(ctx context.Context, d time.Duration) error
	Retries int // retries of a failed read (default 3)

	crumbField, crumb string
	crumbKnown        bool // the crumb issuer was asked (crumb == "" means CSRF is off)
}

// NewClient returns a client for the Jenkins at baseURL. hc is copied, not changed: the
// copy gets a cookie jar (a crumb is tied to the web session) and stops at redirects
// (201/303 carry the queue item in Location).
func NewClient(baseURL, user, token string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/") + "/")
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("jenkins: %q is not an http(s) URL", baseURL)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	cp := *hc
	cp.Jar, _ = cookiejar.New(nil)
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Client{base: u, user: user, token: token, tokenEnv: "JENKINS_TOKEN", hc: &cp, Retries: 3}, nil
}

// JobPath turns a job's full name ("cessda.cdc.deploy/main", folders separated by "/")
// into its URL path ("job/cessda.cdc.deploy/job/main/").
func JobPath(full string) string {
	var sb strings.Builder
	for _, p := range strings.Split(strings.Trim(full, "/"), "/") {
		sb.WriteString("job/")
		sb.WriteString(url.PathEscape(p))
		sb.WriteString("/")
	}
	return sb.String()
}

// JobURL is the job's absolute URL.
func (c *Client) JobURL(full string) string { return c.base.String() + JobPath(full) }

// HTTPError is a non-2xx answer.
type HTTPError struct {
	Method string
	URL    string
	Status int
	Body   string // the first line of the body, for context
	Msg    string // the whole message, when it says better what to check
}

func (e *HTTPError) Error() string {
	if e.Msg != "" {
		return e.Msg
	}
	msg := fmt.Sprintf("jenkins: %s %s: %d %s", e.Method, e.URL, e.Status, http.StatusText(e.Status))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// StatusOf returns the HTTP status of err (0 when it is not an HTTPError).
func StatusOf(err error) int {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Status
	}
	return 0
}

// do sends one request and classifies failures: 401 and 403 get messages that say what to
// check, 5xx and connection errors are engine.Transient.
func (c *Client) do(ctx context.Context, method, ref string, form url.Values) (*http.Response, []byte, error) {
	u, err := c.base.Parse(ref)
	if err != nil {
		return nil, nil, fmt.Errorf("jenkins: bad URL %q: %v", ref, err)
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, nil, fmt.Errorf("jenkins: %v", err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c.user != "" || c.token != "" {
		req.SetBasicAuth(c.user, c.token)
	}
	if method == http.MethodPost && c.crumb != "" {
		req.Header.Set(c.crumbField, c.crumb)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		// url.Error names the method and URL; neither carries the token (it is in a header).
		return nil, nil, engine.Transient(fmt.Errorf("jenkins: %s %s: %v", method, u.Redacted(), unwrapURLError(err)))
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	resp.Body.Close()
	if err != nil {
		return nil, nil, engine.Transient(fmt.Errorf("jenkins: %s %s: reading the answer: %v", method, u.Redacted(), err))
	}
	if resp.StatusCode < 400 {
		return resp, b, nil
	}
	he := &HTTPError{Method: method, URL: u.Redacted(), Status: resp.StatusCode}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		he.Msg = fmt.Sprintf("jenkins: 401 Unauthorized from %s: check the user (%s) and %s", u.Redacted(), c.user, c.tokenEnv)
		return resp, b, he
	case resp.StatusCode == http.StatusForbidden && bytes.Contains(b, []byte("crumb")):
		he.Body = "No valid crumb was included in the request"
		return resp, b, he
	case resp.StatusCode == http.StatusForbidden:
		he.Msg = fmt.Sprintf("jenkins: 403 Forbidden from %s: user %s lacks a permission (Overall/Read, Job/Read or Job/Build); check the user and the job's permissions", u.Redacted(), c.user)
		return resp, b, he
	case resp.StatusCode == http.StatusTooManyRequests:
		d, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return resp, b, engine.RetryAfter(he, time.Duration(d)*time.Second)
	case resp.StatusCode >= 500:
		he.Body = firstLine(b)
		if bytes.Contains(b, []byte("not parameterized")) {
			return resp, b, he // a permanent error dressed as a 500
		}
		return resp, b, engine.Transient(he)
	case resp.StatusCode != http.StatusNotFound:
		he.Body = firstLine(b)
	}
	return resp, b, he
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if strings.HasPrefix(s, "<") {
		return "" // an HTML page says nothing useful in one line
	}
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// get reads with retries of transient failures.
func (c *Client) get(ctx context.Context, ref string) (*http.Response, []byte, error) {
	var last error
	for attempt := 0; ; attempt++ {
		resp, b, err := c.do(ctx, http.MethodGet, ref, nil)
		if err == nil {
			return resp, b, nil
		}
		last = err
		if ok, _ := engine.IsTransient(err); !ok || c.Sleep == nil || attempt >= c.Retries {
			return resp, b, last
		}
		if err := c.Sleep(ctx, time.Duration(1<<attempt)*time.Second); err != nil {
			return nil, nil, err
		}
	}
}

func (c *Client) getJSON(ctx context.Context, ref string, v any) error {
	_, b, err := c.get(ctx, ref)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("jenkins: GET %s: the answer is not the expected JSON: %v", ref, err)
	}
	return nil
}

// post sends a POST with the crumb, fetching one first when the server issues crumbs,
// and fetching a new one once when the server says the crumb is not valid. POSTs are
// not retried here: whether a lost answer took effect is for the caller to find out.
func (c *Client) post(ctx context.Context, ref string, form url.Values) (*http.Response, error) {
	if !c.crumbKnown {
		if err := c.fetchCrumb(ctx); err != nil {
			return nil, notSent(err)
		}
	}
	resp, _, err := c.do(ctx, http.MethodPost, ref, form)
	if StatusOf(err) == http.StatusForbidden && isCrumbError(err) {
		if err := c.fetchCrumb(ctx); err != nil {
			return nil, notSent(err)
		}
		resp, _, err = c.do(ctx, http.MethodPost, ref, form)
	}
	return resp, err
}

// errNotQueued marks a failed POST that certainly queued nothing: it was never sent, or
// Jenkins answered that nothing was scheduled.
var errNotQueued = errors.New("nothing was queued")

type notQueuedError struct{ err error }

func (e *notQueuedError) Error() string   { return e.err.Error() }
func (e *notQueuedError) Unwrap() []error { return []error{e.err, errNotQueued} }
func notSent(err error) error             { return &notQueuedError{err} }

func isCrumbError(err error) bool {
	var he *HTTPError
	return errors.As(err, &he) && strings.Contains(he.Body, "crumb")
}

// NotQueued reports whether a failed Trigger certainly queued nothing: it was never
// sent, or Jenkins answered with an error that schedules nothing. A dropped connection or
// a proxy's 502/504 may hide a queued build.
func NotQueued(err error) bool {
	if errors.Is(err, errNotQueued) || errors.Is(err, ErrJobNotFound) {
		return true
	}
	s := StatusOf(err)
	return s != 0 && s != http.StatusBadGateway && s != http.StatusGatewayTimeout
}

// fetchCrumb asks the crumb issuer; a 404 means CSRF protection is off.
func (c *Client) fetchCrumb(ctx context.Context) error {
	var v struct {
		Crumb             string `json:"crumb"`
		CrumbRequestField string `json:"crumbRequestField"`
	}
	err := c.getJSON(ctx, "crumbIssuer/api/json", &v)
	switch {
	case StatusOf(err) == http.StatusNotFound:
		c.crumb, c.crumbKnown = "", true
		return nil
	case err != nil:
		return err
	}
	c.crumbField, c.crumb, c.crumbKnown = v.CrumbRequestField, v.Crumb, true
	if c.crumbField == "" {
		c.crumbField = "Jenkins-Crumb"
	}
	return nil
}

// ParamDef is a job's parameter definition.
type ParamDef struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Default struct {
		Value any `json:"value"`
	} `json:"defaultParameterValue"`
}

// ParamValue is a parameter of a build or queue item.
type ParamValue struct {
	Name  string `json:"name"`
	Value any    `json:"value"`
}

// String is the value as the trigger would have sent it.
func (p ParamValue) String() string {
	if p.Value == nil {
		return ""
	}
	return fmt.Sprint(p.Value)
}

// action is one entry of a build's or queue item's actions: the fields of the
// ParametersAction, the Git plugin's BuildData and the CauseAction that runbook reads.
type action struct {
	Parameters        []ParamValue `json:"parameters"`
	LastBuiltRevision *struct {
		SHA1   string `json:"SHA1"`
		Branch []struct {
			Name string `json:"name"`
		} `json:"branch"`
	} `json:"lastBuiltRevision"`
	RemoteURLs []string `json:"remoteUrls"`
	Causes     []Cause  `json:"causes"`
}

// Cause is why a build started (an entry of its CauseAction): a push
// (jenkins.branch.BranchEventCause), a user (hudson.model.Cause$UserIdCause, with UserID),
// an upstream build, a timer.
type Cause struct {
	Class            string `json:"_class"`
	ShortDescription string `json:"shortDescription"`
	UserID           string `json:"userId,omitempty"`
}

// Revision is what one Git BuildData action of a build says: the commit it built and the
// repositories it came from. A build has one per repository it checked out (a pipeline's
// shared libraries add theirs).
type Revision struct {
	SHA1       string
	Branches   []string // "refs/remotes/origin/main"
	RemoteURLs []string
}

// Build is a build as the API shows it.
type Build struct {
	Number    int      `json:"number"`
	URL       string   `json:"url"`
	Building  bool     `json:"building"`
	Result    string   `json:"result"`
	Duration  int64    `json:"duration"` // ms, 0 while building
	Timestamp int64    `json:"timestamp"`
	QueueID   int      `json:"queueId"`
	Actions   []action `json:"actions"`
}

// Params returns the build's parameters by name.
func (b *Build) Params() map[string]string { return paramsOf(b.Actions) }

// Revisions returns the build's Git BuildData, in the order Jenkins lists them.
func (b *Build) Revisions() []Revision {
	var out []Revision
	for _, a := range b.Actions {
		if a.LastBuiltRevision == nil || a.LastBuiltRevision.SHA1 == "" {
			continue
		}
		r := Revision{SHA1: a.LastBuiltRevision.SHA1, RemoteURLs: a.RemoteURLs}
		for _, br := range a.LastBuiltRevision.Branch {
			r.Branches = append(r.Branches, br.Name)
		}
		out = append(out, r)
	}
	return out
}

// Revision returns the commit the build built from repository remote (an owner/name or a
// clone URL, matched against each BuildData's remoteUrls), or "" when it has none. With
// remote "" it is the first BuildData's commit, as Jenkins' own getAction picks.
func (b *Build) Revision(remote string) string {
	for _, r := range b.Revisions() {
		if remote == "" {
			return r.SHA1
		}
		for _, u := range r.RemoteURLs {
			if SameRepo(u, remote) {
				return r.SHA1
			}
		}
	}
	return ""
}

// Causes returns why the build started.
func (b *Build) Causes() []Cause {
	var out []Cause
	for _, a := range b.Actions {
		out = append(out, a.Causes...)
	}
	return out
}

// SameRepo reports whether the clone URL remote is repository repo, given as owner/name
// or as any clone URL (https, ssh, scp-like; ".git" and case do not matter).
func SameRepo(remote, repo string) bool {
	a, b := repoPath(remote), repoPath(repo)
	if a == "" || b == "" {
		return false
	}
	return a == b || strings.HasSuffix(a, "/"+b) || strings.HasSuffix(b, "/"+a)
}

// repoPath reduces a clone URL to host/owner/name, and owner/name to itself.
func repoPath(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	} else if at := strings.Index(s, "@"); at >= 0 && strings.Contains(s[at:], ":") {
		s = strings.Replace(s[at+1:], ":", "/", 1) // git@github.com:owner/name.git
	}
	if at := strings.LastIndex(s, "@"); at >= 0 {
		s = s[at+1:] // user info
	}
	s = strings.TrimSuffix(strings.TrimRight(s, "/"), ".git")
	return strings.Trim(s, "/")
}

func paramsOf(as []action) map[string]string {
	m := map[string]string{}
	for _, a := range as {
		for _, p := range a.Parameters {
			m[p.Name] = p.String()
		}
	}
	return m
}

// Job is a job as the API shows it.
type Job struct {
	Class     string         `json:"_class"`
	FullName  string         `json:"fullName"`
	URL       string         `json:"url"`
	Buildable *bool          `json:"buildable"` // nil when the job type does not say
	Builds    []Build        `json:"builds"`
	Property  []paramsHolder `json:"property"`
	// Actions carry the definitions too on Jenkins versions that list the job's
	// ParametersDefinitionProperty among its actions.
	Actions []paramsHolder `json:"actions"`
}

type paramsHolder struct {
	ParameterDefinitions []ParamDef `json:"parameterDefinitions"`
}

// ParamDefs returns the job's parameter definitions, from property and actions, each
// name once.
func (j *Job) ParamDefs() []ParamDef {
	var out []ParamDef
	seen := map[string]bool{}
	for _, p := range append(append([]paramsHolder(nil), j.Property...), j.Actions...) {
		for _, d := range p.ParameterDefinitions {
			if !seen[d.Name] {
				seen[d.Name] = true
				out = append(out, d)
			}
		}
	}
	return out
}

// IsFolder reports whether the item is a folder (it cannot be built).
func (j *Job) IsFolder() bool {
	return strings.Contains(j.Class, "Folder") || strings.Contains(j.Class, "OrganizationFolder")
}

// ErrJobNotFound is wrapped by Job when the server answers 404.
var ErrJobNotFound = errors.New("job not found")

const buildTree = "number,url,building,result,duration,timestamp,queueId,actions[parameters[name,value]]"

// Job reads a job with its recent builds (newest first, at most limit) and parameters.
func (c *Client) Job(ctx context.Context, full string, limit int) (*Job, error) {
	const defs = "parameterDefinitions[name,type,defaultParameterValue[value]]"
	tree := fmt.Sprintf("_class,fullName,url,buildable,builds[%s]{0,%d},property[%s],actions[%s]", buildTree, limit, defs, defs)
	var j Job
	err := c.getJSON(ctx, JobPath(full)+"api/json?tree="+url.QueryEscape(tree), &j)
	if StatusOf(err) == http.StatusNotFound {
		return nil, fmt.Errorf("jenkins: job %q not found at %s (404): check the job's full path (folders as a/b) and that user %s can see it: %w", full, c.JobURL(full), c.user, ErrJobNotFound)
	}
	if err != nil {
		return nil, err
	}
	return &j, nil
}

// WhoAmI is who Jenkins takes the client for (/whoAmI/api/json).
type WhoAmI struct {
	Name          string `json:"name"`
	Anonymous     bool   `json:"anonymous"`
	Authenticated bool   `json:"authenticated"`
}

// WhoAmI asks Jenkins who the credentials are: a read that every logged-in user may make,
// answered 401 when the API token is wrong.
func (c *Client) WhoAmI(ctx context.Context) (*WhoAmI, error) {
	var w WhoAmI
	if err := c.getJSON(ctx, "whoAmI/api/json", &w); err != nil {
		return nil, err
	}
	return &w, nil
}

// commitTree is what finding the build of a commit reads of each build.
const commitTree = "number,url,building,result,duration,timestamp,actions[lastBuiltRevision[SHA1,branch[name]],remoteUrls,causes[shortDescription,userId]]"

// CommitBuilds reads the job's newest builds (at most limit, newest first) with the
// commits they built (Git BuildData) and why they started.
func (c *Client) CommitBuilds(ctx context.Context, full string, limit int) ([]Build, error) {
	var j Job
	err := c.getJSON(ctx, JobPath(full)+"api/json?tree="+url.QueryEscape(fmt.Sprintf("builds[%s]{0,%d}", commitTree, limit)), &j)
	if StatusOf(err) == http.StatusNotFound {
		return nil, fmt.Errorf("jenkins: job %q not found at %s (404): check the job's full path (folders as a/b) and that user %s can see it: %w", full, c.JobURL(full), c.user, ErrJobNotFound)
	}
	return j.Builds, err
}

// ErrBuildNotFound is wrapped by CommitBuild when the job has no such build.
var ErrBuildNotFound = errors.New("build not found")

// CommitBuild reads build number n of the job with the commits it built and its causes.
func (c *Client) CommitBuild(ctx context.Context, full string, n int) (*Build, error) {
	var b Build
	err := c.getJSON(ctx, JobPath(full)+strconv.Itoa(n)+"/api/json?tree="+url.QueryEscape(commitTree), &b)
	if StatusOf(err) == http.StatusNotFound {
		return nil, fmt.Errorf("jenkins: job %q has no build #%d at %s (404; Jenkins may have discarded it, or the job's path is wrong): %w", full, n, c.JobURL(full)+strconv.Itoa(n)+"/", ErrBuildNotFound)
	}
	if err != nil {
		return nil, err
	}
	return &b, nil
}

// QueueItem is an item of the build queue.
type QueueItem struct {
	ID         int      `json:"id"`
	URL        string   `json:"url"`
	Why        string   `json:"why"`
	Blocked    bool     `json:"blocked"`
	Cancelled  bool     `json:"cancelled"`
	Actions    []action `json:"actions"`
	Executable *struct {
		Number int    `json:"number"`
		URL    string `json:"url"`
	} `json:"executable"`
	Task struct {
		URL string `json:"url"`
	} `json:"task"`
}

// Params returns the item's parameters by name.
func (q *QueueItem) Params() map[string]string { return paramsOf(q.Actions) }

// ErrQueueItemGone is wrapped by QueueItem when the item is no longer known (Jenkins
// forgets items five minutes after they leave the queue).
var ErrQueueItemGone = errors.New("queue item gone")

// QueueItem reads a queue item by its URL.
func (c *Client) QueueItem(ctx context.Context, itemURL string) (*QueueItem, error) {
	var q QueueItem
	err := c.getJSON(ctx, strings.TrimRight(itemURL, "/")+"/api/json", &q)
	if StatusOf(err) == http.StatusNotFound {
		return nil, fmt.Errorf("jenkins: queue item %s is gone (404; Jenkins forgets items 5 minutes after they leave the queue): %w", itemURL, ErrQueueItemGone)
	}
	if err != nil {
		return nil, err
	}
	return &q, nil
}

// Queue lists the items waiting in the build queue.
func (c *Client) Queue(ctx context.Context) ([]QueueItem, error) {
	var v struct {
		Items []QueueItem `json:"items"`
	}
	err := c.getJSON(ctx, "queue/api/json?tree="+url.QueryEscape("items[id,url,why,blocked,task[url],actions[parameters[name,value]]]"), &v)
	return v.Items, err
}

// Trigger queues a build of the job and returns the queue item's absolute URL. With no
// parameters it posts to /build, otherwise to /buildWithParameters.
func (c *Client) Trigger(ctx context.Context, full string, params map[string]string) (string, error) {
	u, _, err := c.trigger(ctx, full, params)
	return u, err
}

// trigger is Trigger that also says whether Jenkins merged the request into an identical
// item already waiting (303).
func (c *Client) trigger(ctx context.Context, full string, params map[string]string) (string, bool, error) {
	ref := JobPath(full) + "build"
	form := url.Values{}
	if len(params) > 0 {
		ref = JobPath(full) + "buildWithParameters"
		for k, v := range params {
			form.Set(k, v)
		}
	}
	resp, err := c.post(ctx, ref, form)
	switch StatusOf(err) {
	case 0:
	case http.StatusNotFound:
		return "", false, fmt.Errorf("jenkins: job %q not found at %s (404): check the job's full path (folders as a/b): %w", full, c.JobURL(full), ErrJobNotFound)
	case http.StatusConflict:
		return "", false, fmt.Errorf("jenkins: job %q is not buildable (409; disabled?): %w", full, err)
	}
	if err != nil {
		return "", false, err
	}
	loc := resp.Header.Get("Location")
	if (resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusSeeOther) || !strings.Contains(loc, "/queue/item/") {
		return "", false, notSent(fmt.Errorf("jenkins: POST %s answered %d with Location %q: nothing was queued (expected 201 and a queue item)", c.JobURL(full)+strings.TrimPrefix(ref, JobPath(full)), resp.StatusCode, loc))
	}
	u, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return "", false, fmt.Errorf("jenkins: bad queue item location %q: %v", loc, err)
	}
	return u.String(), resp.StatusCode == http.StatusSeeOther, nil
}

// Build reads a build by its URL.
func (c *Client) Build(ctx context.Context, buildURL string) (*Build, error) {
	var b Build
	err := c.getJSON(ctx, strings.TrimRight(buildURL, "/")+"/api/json?tree="+url.QueryEscape(buildTree), &b)
	if err != nil {
		return nil, err
	}
	return &b, nil
}

// ProgressiveText reads the console from byte offset start. It returns the text, the
// next offset (X-Text-Size) and whether more will come (X-More-Data).
func (c *Client) ProgressiveText(ctx context.Context, buildURL string, start int64) (string, int64, bool, error) {
	resp, b, err := c.get(ctx, strings.TrimRight(buildURL, "/")+"/logText/progressiveText?start="+strconv.FormatInt(start, 10))
	if err != nil {
		return "", start, true, err
	}
	next := start + int64(len(b))
	if v := resp.Header.Get("X-Text-Size"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			next = n
		}
	}
	return string(b), next, resp.Header.Get("X-More-Data") == "true", nil
}
