package zenodosim

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// route is one operation of the API: a ServeMux pattern and its handler. doc.go lists
// them with the form each follows; TestDocumentedEndpoints keeps the two together.
type route struct {
	pattern string
	handle  func(s *Server, w http.ResponseWriter, r *http.Request, c *call)
}

var routes = []route{
	{"GET /api/deposit/depositions", (*Server).listDepositions},
	{"POST /api/deposit/depositions", (*Server).createDeposition},
	{"/api/deposit/depositions", methodNotAllowed},
	{"GET /api/deposit/depositions/{id}", (*Server).getDeposition},
	{"PUT /api/deposit/depositions/{id}", (*Server).updateDeposition},
	{"DELETE /api/deposit/depositions/{id}", (*Server).deleteDeposition},
	{"GET /api/deposit/depositions/{id}/files", (*Server).listDepositionFiles},
	{"POST /api/deposit/depositions/{id}/actions/publish", action((*Server).publishAction)},
	{"POST /api/deposit/depositions/{id}/actions/edit", action((*Server).editAction)},
	{"POST /api/deposit/depositions/{id}/actions/discard", action((*Server).discardAction)},
	{"POST /api/deposit/depositions/{id}/actions/newversion", action((*Server).newVersionAction)},
	{"POST /api/deposit/depositions/{id}/actions/{action}", action(unknownAction)},
	// Any other method or sub-path of a deposition: 403 for a GET without deposit:write
	// (the read check comes first), else 405, once the deposition is known to be the caller's.
	{"/api/deposit/depositions/{id}", (*Server).otherDepositionRequest},
	{"/api/deposit/depositions/{id}/{rest...}", (*Server).otherDepositionRequest},
	{"GET /api/files/{bucket}", (*Server).getBucket},
	{"PUT /api/files/{bucket}/{name}", (*Server).uploadFile},
	{"DELETE /api/files/{bucket}/{name}", (*Server).deleteFile},
	{"GET /api/records", (*Server).searchRecords},
	{"GET /api/records/{id}", (*Server).getRecord},
	{"/", notFound},
}

// call is what serve learned about a request before routing it: the caller's token and
// the body, read once.
type call struct {
	ti   tokenInfo
	body []byte
}

type callKey struct{}

// handler adapts a route's handler to the mux: serve put the call in the context.
func (s *Server) handler(h func(*Server, http.ResponseWriter, *http.Request, *call)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Context().Value(callKey{}).(*call)
		h(s, w, r, c)
	}
}

// serve answers one request with mu held: outside /api/ nothing is served; then the
// token (401) and the rate limit (429) are checked for every route, and the mux routes
// the path without its trailing slash.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	path := strings.TrimSuffix(r.URL.Path, "/")
	s.mu.Lock()
	defer s.mu.Unlock()
	if !strings.HasPrefix(path, "/api/") {
		writeError(w, 404, "The requested URL was not found on the server.")
		return
	}
	token := bearer(r)
	ti, ok := s.tokens[token]
	if !ok && s.anyToken && token != "" {
		ti, ok = tokenInfo{owner: 1, scopes: []string{ScopeWrite, ScopeActions}}, true
	}
	// Published records are public: read without a token, but a token that is sent must
	// be valid.
	public := (path == "/api/records" || strings.HasPrefix(path, "/api/records/")) && r.Method == http.MethodGet
	if !ok && !(public && token == "") {
		writeError(w, 401, "The server could not verify that you are authorized to access the URL requested. You either supplied the wrong credentials (e.g. a bad password), or your browser doesn't understand how to supply the credentials required.")
		return
	}
	if ok && !s.withinRateLimit(w, token) {
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), callKey{}, &call{ti: ti, body: body}))
	if path != r.URL.Path {
		u := *r.URL
		u.Path, u.RawPath = path, strings.TrimSuffix(u.RawPath, "/")
		r.URL = &u
	}
	s.mux.ServeHTTP(w, r)
}

// bearer is the request's token: an Authorization Bearer header or ?access_token=.
func bearer(r *http.Request) string {
	if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
		return strings.TrimSpace(strings.TrimPrefix(a, "Bearer "))
	}
	return r.URL.Query().Get("access_token")
}

// withinRateLimit counts the token's request in its window, sets the X-RateLimit headers
// and answers 429 with Retry-After when the token is over the limit.
func (s *Server) withinRateLimit(w http.ResponseWriter, token string) bool {
	if s.rateN <= 0 {
		return true
	}
	now := s.now()
	start, seen := s.rateStart[token]
	if !seen || now.Sub(start) >= s.rateWindow {
		start = now
		s.rateStart[token], s.rateCount[token] = now, 0
	}
	reset := start.Add(s.rateWindow)
	s.rateCount[token]++
	remaining := max(s.rateN-s.rateCount[token], 0)
	w.Header().Set("X-RateLimit-Limit", strconv.Itoa(s.rateN))
	w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	if s.rateCount[token] <= s.rateN {
		return true
	}
	secs := max(int(reset.Sub(now).Round(time.Second)/time.Second), 1)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeError(w, 429, "Too Many Requests: rate limit exceeded")
	return false
}

type apiErr struct {
	Field    string   `json:"field"`
	Messages []string `json:"messages"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string, errs ...apiErr) {
	body := map[string]any{"status": status, "message": msg}
	if len(errs) > 0 {
		body["errors"] = errs
	}
	writeJSON(w, status, body)
}

func notFound(_ *Server, w http.ResponseWriter, _ *http.Request, _ *call) {
	writeError(w, 404, "The requested URL was not found on the server.")
}

func methodNotAllowed(_ *Server, w http.ResponseWriter, _ *http.Request, _ *call) {
	writeError(w, 405, "The method is not allowed for the requested URL.")
}

// ---- depositions ----

func (s *Server) listDepositions(w http.ResponseWriter, r *http.Request, c *call) {
	// The deposit API is a write API: reading it needs deposit:write too.
	if s.scope(w, c.ti, ScopeWrite) {
		s.list(w, r, c.ti)
	}
}

func (s *Server) createDeposition(w http.ResponseWriter, r *http.Request, c *call) {
	if s.jsonBody(w, r, c.body, true) && s.scope(w, c.ti, ScopeWrite) {
		s.create(w, c.body, c.ti)
	}
}

// deposition finds the {id} of the path among the caller's depositions, or answers 404
// (unknown) or 403 (another owner's).
func (s *Server) deposition(w http.ResponseWriter, r *http.Request, c *call) (*deposition, bool) {
	id, err := strconv.Atoi(r.PathValue("id"))
	d := s.deps[id]
	if err != nil || d == nil {
		writeError(w, 404, "PID does not exist.")
		return nil, false
	}
	if d.Owner != c.ti.owner {
		writeError(w, 403, "You don't have the permission to access the requested resource. It is either read-protected or not readable by the server.")
		return nil, false
	}
	return d, true
}

// readable is deposition for a GET, which needs deposit:write as well.
func (s *Server) readable(w http.ResponseWriter, r *http.Request, c *call) (*deposition, bool) {
	d, ok := s.deposition(w, r, c)
	if !ok || !s.scope(w, c.ti, ScopeWrite) {
		return nil, false
	}
	return d, true
}

func (s *Server) getDeposition(w http.ResponseWriter, r *http.Request, c *call) {
	if d, ok := s.readable(w, r, c); ok {
		writeJSON(w, 200, s.render(d))
	}
}

func (s *Server) listDepositionFiles(w http.ResponseWriter, r *http.Request, c *call) {
	if d, ok := s.readable(w, r, c); ok {
		writeJSON(w, 200, s.renderFiles(d))
	}
}

func (s *Server) otherDepositionRequest(w http.ResponseWriter, r *http.Request, c *call) {
	if r.Method == http.MethodGet {
		if _, ok := s.readable(w, r, c); ok {
			methodNotAllowed(s, w, r, c)
		}
		return
	}
	if _, ok := s.deposition(w, r, c); ok {
		methodNotAllowed(s, w, r, c)
	}
}

func (s *Server) updateDeposition(w http.ResponseWriter, r *http.Request, c *call) {
	d, ok := s.deposition(w, r, c)
	if ok && s.jsonBody(w, r, c.body, true) && s.scope(w, c.ti, ScopeWrite) {
		s.update(w, d, c.body)
	}
}

func (s *Server) deleteDeposition(w http.ResponseWriter, r *http.Request, c *call) {
	d, ok := s.deposition(w, r, c)
	if !ok || !s.scope(w, c.ti, ScopeWrite) {
		return
	}
	// A published record (being edited or not) cannot be deleted: 403, as the legacy docs
	// say; only versioned.
	if d.State != "unsubmitted" {
		writeError(w, 403, "Deleting an already published deposition is not allowed: a published record can only be versioned.")
		return
	}
	s.remove(d)
	if s.legacyDelete {
		w.WriteHeader(201)
		return
	}
	w.WriteHeader(204)
}

// action adapts an action on a deposition: the deposition is the caller's, a body, if
// any, is JSON, and the token has deposit:actions.
func action(h func(*Server, http.ResponseWriter, *deposition)) func(*Server, http.ResponseWriter, *http.Request, *call) {
	return func(s *Server, w http.ResponseWriter, r *http.Request, c *call) {
		d, ok := s.deposition(w, r, c)
		if ok && s.jsonBody(w, r, c.body, false) && s.scope(w, c.ti, ScopeActions) {
			h(s, w, d)
		}
	}
}

func unknownAction(_ *Server, w http.ResponseWriter, _ *deposition) {
	writeError(w, 404, "The requested URL was not found on the server.")
}

func (s *Server) publishAction(w http.ResponseWriter, d *deposition) {
	if d.State == "done" {
		writeError(w, 400, "Deposition is already published.")
		return
	}
	if errs := checkPublishable(d); len(errs) > 0 {
		writeError(w, 400, "A validation error occurred.", errs...)
		return
	}
	s.publish(d)
	writeJSON(w, 202, s.render(d))
}

func (s *Server) editAction(w http.ResponseWriter, d *deposition) {
	if d.State != "done" {
		writeError(w, 400, "Deposition is not published, or is already being edited.")
		return
	}
	d.State = "inprogress"
	writeJSON(w, 201, s.render(d))
}

func (s *Server) discardAction(w http.ResponseWriter, d *deposition) {
	switch d.State {
	case "inprogress":
		d.State = "done"
		d.Metadata = cloneMap(d.Published)
		writeJSON(w, 201, s.render(d))
	case "unsubmitted":
		out := s.render(d)
		s.remove(d)
		writeJSON(w, 201, out)
	default:
		writeError(w, 400, "Deposition is published and not being edited: there is nothing to discard.")
	}
}

func (s *Server) newVersionAction(w http.ResponseWriter, d *deposition) {
	c := s.concepts[d.ConceptID]
	if !d.Submitted {
		writeError(w, 400, "Only a published deposition can be versioned.")
		return
	}
	if s.latestPublished(c) != d {
		writeError(w, 400, "A new version can only be made from the latest published version of this record.")
		return
	}
	draft := s.draftOf(c)
	if draft == nil {
		draft = s.newVersion(c, d)
	}
	if s.legacyNewVersion {
		out := s.render(d)
		out["links"].(map[string]any)["latest_draft"] = s.api("deposit/depositions/%d", draft.ID)
		writeJSON(w, 201, out)
		return
	}
	writeJSON(w, 201, s.render(draft))
}

// newVersion makes the draft of the version after d.
func (s *Server) newVersion(c *concept, d *deposition) *deposition {
	draft := s.newDeposition(c, d.Owner)
	md := cloneMap(d.Metadata)
	delete(md, "version")
	delete(md, "publication_date")
	draft.Metadata = md
	// The new version starts with a copy of the previous version's files, as the legacy
	// docs describe; the client removes or replaces what it does not want.
	for _, f := range d.Files {
		nf := *f
		nf.ID = newUUID()
		draft.Files = append(draft.Files, &nf)
	}
	draft.ViaAPI = true
	s.created++
	s.newVersions++
	return draft
}

// ---- buckets ----

func (s *Server) getBucket(w http.ResponseWriter, r *http.Request, c *call) {
	id, ok := s.buckets[r.PathValue("bucket")]
	d := s.deps[id]
	if !ok || d == nil || d.Owner != c.ti.owner {
		writeError(w, 404, "Bucket does not exist.")
		return
	}
	var contents []any
	for _, f := range d.Files {
		contents = append(contents, s.renderBucketFile(d, f))
	}
	writeJSON(w, 200, map[string]any{"id": d.Bucket, "contents": contents, "locked": d.Submitted})
}

func (s *Server) uploadFile(w http.ResponseWriter, r *http.Request, c *call) {
	if !s.scope(w, c.ti, ScopeWrite) {
		return
	}
	id, ok := s.buckets[r.PathValue("bucket")]
	d := s.deps[id]
	if !ok || d == nil {
		writeError(w, 404, "Bucket does not exist.")
		return
	}
	if d.Owner != c.ti.owner {
		writeError(w, 403, "You don't have the permission to access the requested resource.")
		return
	}
	if d.Submitted {
		writeError(w, 403, "The bucket is locked: files of a published record cannot be changed.")
		return
	}
	f := d.putFile(r.PathValue("name"), c.body, s.now())
	d.Modified = s.now().UTC()
	s.uploads++
	writeJSON(w, 201, s.renderBucketFile(d, f))
}

func (s *Server) deleteFile(w http.ResponseWriter, r *http.Request, c *call) {
	if !s.scope(w, c.ti, ScopeWrite) {
		return
	}
	d := s.deps[s.buckets[r.PathValue("bucket")]]
	if d == nil || d.Owner != c.ti.owner {
		writeError(w, 404, "Bucket does not exist.")
		return
	}
	if d.Submitted {
		writeError(w, 403, "The bucket is locked: files of a published record cannot be changed.")
		return
	}
	for i, f := range d.Files {
		if f.Key == r.PathValue("name") {
			d.Files = append(d.Files[:i:i], d.Files[i+1:]...)
			d.Modified = s.now().UTC()
			w.WriteHeader(204)
			return
		}
	}
	writeError(w, 404, "Object does not exist.")
}

// ---- records (public) ----

// getRecord serves a published version; a concept id, a draft or an unknown id is 404,
// as on Zenodo since it runs InvenioRDM.
func (s *Server) getRecord(w http.ResponseWriter, r *http.Request, _ *call) {
	id, err := strconv.Atoi(r.PathValue("id"))
	d := s.deps[id]
	if err != nil || d == nil || !d.Submitted {
		writeError(w, 404, "The persistent identifier does not exist.")
		return
	}
	writeJSON(w, 200, s.renderRecord(d))
}

// searchRecords searches published versions (?q=&all_versions=&size=&page=; the latest
// of each concept unless all_versions), in the InvenioRDM hits form.
func (s *Server) searchRecords(w http.ResponseWriter, r *http.Request, _ *call) {
	q := r.URL.Query()
	size, page := paging(q.Get("size"), q.Get("page"))
	allVersions := q.Get("all_versions") == "true" || q.Get("all_versions") == "1"
	var ids []int
	for id, d := range s.deps {
		if d.Submitted && (allVersions || s.isLatestPublished(d)) && matchQuery(q.Get("q"), d) {
			ids = append(ids, id)
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(ids)))
	hits := []any{}
	for i := (page - 1) * size; i < len(ids) && i < page*size; i++ {
		hits = append(hits, s.renderRecord(s.deps[ids[i]]))
	}
	writeJSON(w, 200, map[string]any{"hits": map[string]any{"hits": hits, "total": len(ids)},
		"aggregations": map[string]any{}, "links": map[string]any{"self": s.api("records?%s", r.URL.RawQuery)}})
}

// paging reads ?size= (default 10) and ?page= (default 1).
func paging(sizeArg, pageArg string) (size, page int) {
	size, page = 10, 1
	if v, err := strconv.Atoi(sizeArg); err == nil && v > 0 {
		size = v
	}
	if v, err := strconv.Atoi(pageArg); err == nil && v > 0 {
		page = v
	}
	return size, page
}
