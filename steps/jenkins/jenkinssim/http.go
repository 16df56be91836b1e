package jenkinssim

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// route is one operation: a ServeMux pattern and its handler. doc.go lists them with the
// form each follows; TestDocumentedEndpoints keeps the two together.
type route struct {
	pattern string
	handle  handler
}

type handler func(s *Server, w http.ResponseWriter, r *http.Request, c *call)

// routes are matched against the path without its trailing slash. Reads take any method,
// as Stapler serves them.
var routes = []route{
	{"/{$}", (*Server).rootJSON},
	{"/api/json", (*Server).rootJSON},
	{"/whoAmI", (*Server).whoAmI},
	{"/whoAmI/api/json", (*Server).whoAmI},
	{"/crumbIssuer/api/json", (*Server).crumbIssuer},
	{"/queue/api/json", (*Server).queueJSON},
	{"POST /queue/cancelItem", (*Server).cancelItem},
	{"/queue/cancelItem", requirePOST},
	{"/queue/item/{id}", (*Server).queueItem},
	{"/queue/item/{id}/api/json", (*Server).queueItem},
	// A job's path nests folders (/job/A/job/B/...), which a pattern cannot spell: the
	// job is found first, then the rest of the path is routed with jobRoutes.
	{"/job/{path...}", (*Server).jobRequest},
	{"/", notFoundRoute},
}

// jobRoutes are the paths under a job, /job/A/job/B.
var jobRoutes = []route{
	{"/{$}", (*Server).jobJSONRoute},
	{"/api/json", (*Server).jobJSONRoute},
	{"POST /build", trigger(false)},
	{"/build", requirePOST},
	{"POST /buildWithParameters", trigger(true)},
	{"/buildWithParameters", requirePOST},
	{"/{build}", build((*Server).buildJSON)},
	{"/{build}/api/json", build((*Server).buildJSON)},
	{"/{build}/logText/progressiveText", build((*Server).progressiveText)},
	{"/{build}/consoleText", build((*Server).consoleText)},
	{"POST /{build}/stop", build((*Server).stop)},
	{"/{build}/stop", build(func(s *Server, w http.ResponseWriter, r *http.Request, c *call, _ *Build) { requirePOST(s, w, r, c) })},
	{"/", notFoundRoute},
}

// call is what serve learned about a request before routing it.
type call struct {
	user     *User  // nil for anonymous
	name     string // user name, or "anonymous"
	viaToken bool
	session  string // the JSESSIONID cookie's value
	job      *job   // under /job/
}

type callKey struct{}

func (s *Server) handler(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Context().Value(callKey{}).(*call)
		h(s, w, r, c)
	}
}

// serve answers one request under the lock: the simulation advances to now, then every
// route checks credentials (401, 403) and, for a POST, the crumb (403), before the mux
// routes the path.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	w.Header().Set("X-Jenkins", Version)
	c, ok := s.authenticate(w, r)
	if !ok || !s.crumbValid(w, r, c) {
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), callKey{}, c))
	s.mux.ServeHTTP(w, routed(r, "/"+strings.Trim(r.URL.Path, "/")))
}

// routed is r with path as the path the mux routes.
func routed(r *http.Request, path string) *http.Request {
	if path == r.URL.Path {
		return r
	}
	r2 := *r
	u := *r.URL
	u.Path, u.RawPath = path, ""
	r2.URL = &u
	return &r2
}

// authenticate takes API-token basic auth (401 when wrong) and lets anonymous requests
// read only WithAnonymousRead (403 otherwise).
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (*call, bool) {
	c := &call{name: "anonymous"}
	if name, tok, ok := r.BasicAuth(); ok {
		u := s.users[name]
		if u == nil || u.Token != tok {
			w.Header().Set("WWW-Authenticate", `Basic realm="Jenkins"`)
			textError(w, http.StatusUnauthorized, "Invalid password/token for user: "+name)
			return nil, false
		}
		c.user, c.name, c.viaToken = u, u.Name, true
	} else if !s.anonRead || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		w.Header().Set("X-You-Are-Authenticated-As", "anonymous")
		w.Header().Set("X-Required-Permission", "hudson.model.Hudson.Read")
		textError(w, http.StatusForbidden, "Authentication required")
		return nil, false
	}
	if ck, err := r.Cookie(sessionCookie); err == nil {
		c.session = ck.Value
	}
	return c, true
}

// crumbValid checks a POST's crumb (header or form field), unless crumbs are off or the
// request came with an API token while those are exempt.
func (s *Server) crumbValid(w http.ResponseWriter, r *http.Request, c *call) bool {
	if r.Method != http.MethodPost || s.crumbs == CrumbsOff || (s.crumbs == CrumbsExemptAPITokens && c.viaToken) {
		return true
	}
	got := r.Header.Get("Jenkins-Crumb")
	if got == "" {
		got = r.FormValue("Jenkins-Crumb")
	}
	if got == "" || got != s.crumbFor(c.name, c.session) {
		textError(w, http.StatusForbidden, "No valid crumb was included in the request")
		return false
	}
	return true
}

// userOf names the caller in the request log: "" when the credentials were refused or
// an anonymous request was, "anonymous" for an anonymous read.
func (s *Server) userOf(r *http.Request) string {
	name, tok, ok := r.BasicAuth()
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok {
		if u := s.users[name]; u != nil && u.Token == tok {
			return name
		}
		return ""
	}
	if !s.anonRead || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return ""
	}
	return "anonymous"
}

func notFoundRoute(_ *Server, w http.ResponseWriter, _ *http.Request, _ *call) { notFound(w) }

func requirePOST(_ *Server, w http.ResponseWriter, _ *http.Request, _ *call) {
	w.Header().Set("Allow", "POST")
	textError(w, http.StatusMethodNotAllowed, "This URL requires POST")
}

// ---- root ----

func (s *Server) rootJSON(w http.ResponseWriter, r *http.Request, _ *call) {
	writeJSON(w, r, map[string]any{"_class": "hudson.model.Hudson", "url": s.rootURL(),
		"useCrumbs": s.crumbs != CrumbsOff, "jobs": s.children("")}, "")
}

// whoAmI says who the request is taken for; with a wrong token the 401 came first.
func (s *Server) whoAmI(w http.ResponseWriter, r *http.Request, c *call) {
	auths := []any{}
	if c.user != nil {
		auths = append(auths, map[string]any{"authority": "authenticated"})
	}
	writeJSON(w, r, map[string]any{"_class": "hudson.security.WhoAmI", "name": c.name,
		"anonymous": c.user == nil, "authenticated": c.user != nil, "authorities": auths}, "")
}

// crumbIssuer issues a crumb tied to the user and the web session, which it starts when
// the request has none.
func (s *Server) crumbIssuer(w http.ResponseWriter, r *http.Request, c *call) {
	if s.crumbs == CrumbsOff {
		notFound(w)
		return
	}
	session := c.session
	if session == "" {
		session = randHex(12)
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: session, Path: "/", HttpOnly: true})
	}
	writeJSON(w, r, map[string]any{"_class": "hudson.security.csrf.DefaultCrumbIssuer",
		"crumb": s.crumbFor(c.name, session), "crumbRequestField": "Jenkins-Crumb"}, "")
}

// ---- queue ----

func (s *Server) queueJSON(w http.ResponseWriter, r *http.Request, _ *call) {
	var items []any
	var ids []int
	for id, q := range s.queue {
		if !q.left {
			ids = append(ids, id)
		}
	}
	sort.Ints(ids)
	for _, id := range ids {
		items = append(items, s.queueItemJSON(s.queue[id]))
	}
	writeJSON(w, r, map[string]any{"_class": "hudson.model.Queue", "discoverableItems": []any{}, "items": items}, "")
}

func (s *Server) cancelItem(w http.ResponseWriter, r *http.Request, c *call) {
	if c.user == nil || c.user.ReadOnly {
		textError(w, http.StatusForbidden, userName(c.user)+" is missing the Job/Cancel permission")
		return
	}
	id, _ := strconv.Atoi(r.FormValue("id"))
	if q := s.queue[id]; q == nil {
		notFound(w)
		return
	}
	s.cancel(id)
	w.WriteHeader(http.StatusNoContent)
}

// queueItem serves an item until it has been gone from the queue for the left-item TTL;
// then it is forgotten (404).
func (s *Server) queueItem(w http.ResponseWriter, r *http.Request, _ *call) {
	id, err := strconv.Atoi(r.PathValue("id"))
	q := s.queue[id]
	if err != nil || q == nil || (q.left && s.clock.Now().Sub(q.leftAt) > s.leftTTL) {
		if q != nil {
			delete(s.queue, id)
		}
		notFound(w)
		return
	}
	writeJSON(w, r, s.queueItemJSON(q), "")
}

// ---- jobs ----

// jobRequest finds the job (or folder) a /job/A/job/B/... path names and routes the rest
// of the path with jobRoutes.
func (s *Server) jobRequest(w http.ResponseWriter, r *http.Request, c *call) {
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	var names []string
	i := 0
	for i+1 < len(segs) && segs[i] == "job" {
		names = append(names, segs[i+1])
		i += 2
	}
	rest, full := segs[i:], strings.Join(names, "/")
	if s.jobs[full] == nil && s.folders[full] {
		s.folder(w, r, full, rest)
		return
	}
	j := s.resolveJob(full, rest, r, c)
	if j == nil {
		notFound(w)
		return
	}
	c.job = j
	s.jobMux.ServeHTTP(w, routed(r, "/"+strings.Join(rest, "/")))
}

func (s *Server) folder(w http.ResponseWriter, r *http.Request, full string, rest []string) {
	if len(rest) != 0 && (len(rest) != 2 || rest[0] != "api" || rest[1] != "json") {
		notFound(w)
		return
	}
	parts := strings.Split(full, "/")
	writeJSON(w, r, map[string]any{"_class": "com.cloudbees.hudson.plugins.folder.Folder", "name": parts[len(parts)-1],
		"fullName": full, "url": s.rootURL() + jobURLPath(full), "jobs": s.children(full)}, "")
}

// resolveJob is the job of that full name. WithAutoCreate, a trigger the caller may make
// creates it; any other request sees an empty job that is not kept.
func (s *Server) resolveJob(full string, rest []string, r *http.Request, c *call) *job {
	j := s.jobs[full]
	if j != nil || !s.autoCreate || full == "" {
		return j
	}
	trigger := len(rest) == 1 && (rest[0] == "build" || rest[0] == "buildWithParameters")
	if trigger && r.Method == http.MethodPost && c.user != nil && !c.user.ReadOnly {
		return s.addJob(Job{Path: full}, true)
	}
	return &job{def: s.withRunParam(Job{Path: full}), auto: true, next: 1, virtual: true}
}

func (s *Server) jobJSONRoute(w http.ResponseWriter, r *http.Request, c *call) {
	writeJSON(w, r, s.jobJSON(c.job), defaultJobTree)
}

// trigger is POST build (withParams false) or buildWithParameters: 201 with the new
// queue item's Location, or 303 to an identical item still waiting.
func trigger(withParams bool) handler {
	return func(s *Server, w http.ResponseWriter, r *http.Request, c *call) {
		j := c.job
		if !s.mayTrigger(w, r, j, c.user) {
			return
		}
		if j.auto && withParams {
			learnParams(j, r.Form)
		}
		if withParams && len(j.def.Params) == 0 {
			textError(w, http.StatusInternalServerError, "java.lang.IllegalStateException: This build is not parameterized!")
			return
		}
		if !withParams && len(j.def.Params) > 0 {
			textError(w, http.StatusBadRequest, "This page expects a form submission")
			return
		}
		quiet, ok := s.quietPeriod(w, j, r.Form.Get("delay"))
		if ok {
			s.enqueue(w, j, paramValues(j.def.Params, r.Form), c.user, quiet)
		}
	}
}

// mayTrigger answers 403 without the Job/Build permission, 409 for a disabled job and 400
// for a form it cannot read.
func (s *Server) mayTrigger(w http.ResponseWriter, r *http.Request, j *job, user *User) bool {
	if user == nil || user.ReadOnly {
		textError(w, http.StatusForbidden, userName(user)+" is missing the Job/Build permission")
		return false
	}
	if j.def.Disabled {
		textError(w, http.StatusConflict, j.def.Path+" is not buildable!")
		return false
	}
	if err := r.ParseForm(); err != nil {
		textError(w, http.StatusBadRequest, err.Error())
		return false
	}
	return true
}

// learnParams gives an auto-created job whatever parameters it is called with.
func learnParams(j *job, form url.Values) {
	reserved := map[string]bool{"delay": true, "token": true, "Jenkins-Crumb": true, "json": true, "cause": true}
	have := map[string]bool{}
	for _, p := range j.def.Params {
		have[p.Name] = true
	}
	for _, k := range sortedKeys(flatten(form)) {
		if !reserved[k] && !have[k] {
			j.def.Params = append(j.def.Params, Param{Name: k})
		}
	}
}

// paramValues are the values of a job's parameters: the form's, else the defaults (a
// choice's first), with booleans as "true" or "false".
func paramValues(defs []Param, form url.Values) []paramValue {
	var params []paramValue
	for _, p := range defs {
		v := p.Default
		if p.Type == "choice" && v == "" && len(p.Choices) > 0 {
			v = p.Choices[0]
		}
		if vs, ok := form[p.Name]; ok && len(vs) > 0 {
			v = vs[0]
		}
		if p.Type == "boolean" {
			v = strconv.FormatBool(v == "on" || strings.EqualFold(v, "true"))
		}
		params = append(params, paramValue{Name: p.Name, Value: v, Bool: p.Type == "boolean"})
	}
	return params
}

// quietPeriod is the job's (or the server's) quiet period, or the request's delay=Nsec.
func (s *Server) quietPeriod(w http.ResponseWriter, j *job, delay string) (time.Duration, bool) {
	quiet := s.quiet
	if j.def.QuietPeriod > 0 {
		quiet = j.def.QuietPeriod
	} else if j.def.QuietPeriod < 0 {
		quiet = 0
	}
	if delay == "" {
		return quiet, true
	}
	n, err := strconv.Atoi(strings.TrimSuffix(delay, "sec"))
	if err != nil {
		textError(w, http.StatusBadRequest, "Invalid delay parameter value: "+delay)
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}

func (s *Server) enqueue(w http.ResponseWriter, j *job, params []paramValue, user *User, quiet time.Duration) {
	now := s.clock.Now()
	// An identical item still waiting absorbs the request (303 to the existing item).
	for _, q := range s.queue {
		if q.job == j && !q.left && samePV(q.params, params) {
			j.triggers++
			w.Header().Set("Location", fmt.Sprintf("/queue/item/%d/", q.id))
			w.WriteHeader(http.StatusSeeOther)
			return
		}
	}
	q := &queueItem{id: s.nextQueue, job: j, params: params, cause: userCause(user.Name), inQueueSince: now, startAt: now.Add(quiet)}
	s.nextQueue++
	s.queue[q.id] = q
	j.triggers++
	j.queueCount++
	w.Header().Set("Location", fmt.Sprintf("/queue/item/%d/", q.id))
	w.WriteHeader(http.StatusCreated)
	s.advance() // a zero quiet period starts the build at once
}

// ---- builds ----

// build adapts a handler of one build: the {build} of the path, a number or a permalink
// (lastBuild, lastSuccessfulBuild, ...), or 404.
func build(h func(*Server, http.ResponseWriter, *http.Request, *call, *Build)) handler {
	return func(s *Server, w http.ResponseWriter, r *http.Request, c *call) {
		b := s.findBuild(c.job, r.PathValue("build"))
		if b == nil {
			notFound(w)
			return
		}
		h(s, w, r, c, b)
	}
}

func (s *Server) buildJSON(w http.ResponseWriter, r *http.Request, _ *call, b *Build) {
	writeJSON(w, r, b.json(), defaultBuildTree)
}

// progressiveText serves the console from ?start=: up to the last complete line while
// the build runs, with X-Text-Size (the next start) and X-More-Data until it ends.
func (s *Server) progressiveText(w http.ResponseWriter, r *http.Request, _ *call, b *Build) {
	start, _ := strconv.ParseInt(r.URL.Query().Get("start"), 10, 64)
	log := b.log
	if start < 0 || start > int64(len(log)) {
		start = 0 // "text rolled over"
	}
	end := int64(len(log))
	if b.building {
		end = max(int64(bytes.LastIndexByte(log, '\n')+1), start)
	}
	w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
	w.Header().Set("X-Text-Size", strconv.FormatInt(end, 10))
	if b.building {
		w.Header().Set("X-More-Data", "true")
	}
	_, _ = w.Write(log[start:end])
}

func (s *Server) consoleText(w http.ResponseWriter, _ *http.Request, _ *call, b *Build) {
	w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
	_, _ = w.Write(b.log)
}

func (s *Server) stop(w http.ResponseWriter, _ *http.Request, c *call, b *Build) {
	if c.user == nil || c.user.ReadOnly {
		textError(w, http.StatusForbidden, userName(c.user)+" is missing the Job/Cancel permission")
		return
	}
	s.abort(b.job.def.Path, b.number, c.user.Name)
	w.Header().Set("Location", b.url())
	w.WriteHeader(http.StatusFound)
}
