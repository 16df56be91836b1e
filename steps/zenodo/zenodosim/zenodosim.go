package zenodosim

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Scopes of a Zenodo personal access token.
const (
	ScopeWrite   = "deposit:write"
	ScopeActions = "deposit:actions"
)

// Request is one request the simulator received.
type Request struct {
	Method      string
	Path        string
	RawQuery    string
	ContentType string
	BodyLen     int
	Status      int // the status answered (0 when the connection was dropped)
}

// URL returns the request's path and query, as the server saw them.
func (r Request) URL() string {
	if r.RawQuery == "" {
		return r.Path
	}
	return r.Path + "?" + r.RawQuery
}

// Fault makes matching requests fail. A Fault with Times > 0 fires that many times, then
// is spent; Times == 0 means forever.
type Fault struct {
	Method     string        // "" matches any method
	PathSuffix string        // "" matches any path; else the request path must end with it (e.g. "/actions/publish")
	Status     int           // answer this status (with no body for 5xx, as Zenodo does) instead of handling
	Delay      time.Duration // wait this long (real time; keep it to milliseconds in tests) before answering
	Drop       bool          // close the connection without an answer
	After      bool          // handle the request (the effect happens), then drop or replace the answer: a lost response
	Times      int
}

// Option configures a Server.
type Option func(*Server)

// WithToken accepts token for owner (a user id) with the given scopes (both when none).
func WithToken(token string, owner int, scopes ...string) Option {
	return func(s *Server) {
		if len(scopes) == 0 {
			scopes = []string{ScopeWrite, ScopeActions}
		}
		s.tokens[token] = tokenInfo{owner: owner, scopes: scopes}
	}
}

// AcceptAnyToken makes every non-empty token valid, as owner 1 with both scopes, so a
// rehearsal works with whatever token the connection holds.
func AcceptAnyToken() Option { return func(s *Server) { s.anyToken = true } }

// Sandbox makes the simulator mint test DOIs with the sandbox prefix 10.5072.
func Sandbox() Option { return func(s *Server) { s.prefix = "10.5072" } }

// WithRateLimit answers 429 (with Retry-After) once a token made n requests in the current
// window; X-RateLimit-Limit/Remaining/Reset are sent on every authenticated answer.
func WithRateLimit(n int, window time.Duration) Option {
	return func(s *Server) { s.rateN, s.rateWindow = n, window }
}

// WithClock sets the simulator's clock (for rate-limit windows and dates); tests pass a
// fake clock's Now so that waiting costs no real time.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// LegacyNewVersion makes actions/newversion answer as the legacy docs say (the original
// deposition, with the new draft at links.latest_draft) instead of the RDM way (the draft).
func LegacyNewVersion() Option { return func(s *Server) { s.legacyNewVersion = true } }

// LegacyDelete makes DELETE of a draft answer 201 with no body, as the legacy docs say,
// instead of the current server's 204.
func LegacyDelete() Option { return func(s *Server) { s.legacyDelete = true } }

// Published seeds an existing published version (and its concept) with AddPublished.
type Published struct {
	Owner     int // default 1
	ConceptID int // the concept to add a version to (created with this id if unknown); 0 makes a new concept
	Title     string
	Version   string
	Metadata  map[string]any    // extra metadata; title/version/required fields are filled in
	Files     map[string][]byte // file name to content
}

type tokenInfo struct {
	owner  int
	scopes []string
}

type file struct {
	ID       string
	Key      string
	Data     []byte
	Checksum string // md5 hex
	Version  string
	Created  time.Time
}

type deposition struct {
	ID          int
	ConceptID   int
	Owner       int
	Created     time.Time
	Modified    time.Time
	State       string // unsubmitted, inprogress, done
	Submitted   bool
	Metadata    map[string]any
	Published   map[string]any // metadata as last published (for discard of an edit)
	Bucket      string
	Files       []*file
	PublishedAt time.Time
	ViaAPI      bool // made by create or newversion (not seeded): counted by Created
}

type concept struct {
	ID        int
	Owner     int
	Published bool
	Versions  []int // deposition ids, in order of creation
}

// Server is a running simulator.
type Server struct {
	srv *httptest.Server

	mu               sync.Mutex
	tokens           map[string]tokenInfo
	anyToken         bool
	prefix           string
	rateN            int
	rateWindow       time.Duration
	rateCount        map[string]int
	rateStart        map[string]time.Time
	now              func() time.Time
	legacyNewVersion bool
	legacyDelete     bool

	nextID      int
	deps        map[int]*deposition
	concepts    map[int]*concept
	buckets     map[string]int // bucket id to deposition id
	faults      []*Fault
	requests    []Request
	created     int
	published   int
	uploads     int
	newVersions int
	discarded   int
}

// New starts a simulator on 127.0.0.1. Close it when done.
func New(opts ...Option) *Server {
	s := &Server{
		tokens:    map[string]tokenInfo{},
		prefix:    "10.5281",
		rateCount: map[string]int{},
		rateStart: map[string]time.Time{},
		now:       time.Now,
		nextID:    1000,
		deps:      map[int]*deposition{},
		concepts:  map[int]*concept{},
		buckets:   map[string]int{},
	}
	for _, o := range opts {
		o(s)
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the API base URL, ending in "/api/", to use as the connection's url.
func (s *Server) URL() string { return s.srv.URL + "/api/" }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Inject adds a fault.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fc := f
	s.faults = append(s.faults, &fc)
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Requests returns every request received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Writes counts the requests that could change state (anything but GET and HEAD).
func (s *Server) Writes() int {
	n := 0
	for _, r := range s.Requests() {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			n++
		}
	}
	return n
}

// Depositions counts the depositions that exist (drafts and published, seeded ones included).
func (s *Server) Depositions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.deps)
}

// Created counts the depositions created through the API (create and newversion) that
// still exist: a deleted or discarded draft no longer counts, so Depositions()-Created()
// stays the number seeded.
func (s *Server) Created() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.created
}

// Discarded counts the drafts removed (DELETE, or actions/discard of a never-published draft).
func (s *Server) Discarded() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.discarded
}

// Reserved reports whether an existing deposition holds doi, reserved by a draft or
// minted by a publication; a discarded draft's DOI is not.
func (s *Server) Reserved(doi string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range s.deps {
		if s.doi(id) == doi {
			return true
		}
	}
	return false
}

// Publications counts successful publish actions.
func (s *Server) Publications() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.published
}

// Uploads counts successful bucket uploads.
func (s *Server) Uploads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.uploads
}

// Deposition returns the deposition's legacy JSON representation, as GET would.
func (s *Server) Deposition(id int) (map[string]any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.deps[id]
	if !ok {
		return nil, false
	}
	return s.render(d), true
}

// FileData returns the content of a deposition's file.
func (s *Server) FileData(id int, name string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.deps[id]
	if !ok {
		return nil, false
	}
	for _, f := range d.Files {
		if f.Key == name {
			return append([]byte(nil), f.Data...), true
		}
	}
	return nil, false
}

// AddPublished seeds a published version and returns its record id and concept id.
func (s *Server) AddPublished(p Published) (recordID, conceptID int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.Owner == 0 {
		p.Owner = 1
	}
	var c *concept
	if p.ConceptID != 0 {
		c = s.concepts[p.ConceptID]
		if c == nil {
			// Seeding a product's real concept id (a rehearsal of a playbook that names it).
			c = &concept{ID: p.ConceptID, Owner: p.Owner}
			s.concepts[c.ID] = c
			if s.nextID < c.ID {
				s.nextID = c.ID
			}
		}
	}
	if c == nil {
		c = s.newConcept(p.Owner)
	}
	d := s.newDeposition(c, p.Owner)
	md := map[string]any{
		"title": p.Title, "version": p.Version, "upload_type": "software",
		"description": "Seeded version " + p.Version, "access_right": "open", "license": "apache-2.0",
		"creators":         []any{map[string]any{"name": "Doe, Jane", "affiliation": "CESSDA"}},
		"publication_date": s.now().UTC().Format("2006-01-02"),
	}
	for k, v := range p.Metadata {
		md[k] = v
	}
	d.Metadata = md
	names := make([]string, 0, len(p.Files))
	for n := range p.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		d.putFile(n, p.Files[n], s.now())
	}
	s.publish(d)
	return d.ID, c.ID
}

func (s *Server) newConcept(owner int) *concept {
	s.nextID++
	c := &concept{ID: s.nextID, Owner: owner}
	s.concepts[c.ID] = c
	return c
}

func (s *Server) newDeposition(c *concept, owner int) *deposition {
	s.nextID++
	now := s.now().UTC()
	d := &deposition{ID: s.nextID, ConceptID: c.ID, Owner: owner, Created: now, Modified: now,
		State: "unsubmitted", Metadata: map[string]any{}, Bucket: newUUID()}
	s.deps[d.ID] = d
	s.buckets[d.Bucket] = d.ID
	c.Versions = append(c.Versions, d.ID)
	return d
}

func (s *Server) publish(d *deposition) {
	d.State, d.Submitted = "done", true
	if _, ok := d.Metadata["publication_date"]; !ok {
		d.Metadata["publication_date"] = s.now().UTC().Format("2006-01-02")
	}
	if d.PublishedAt.IsZero() {
		d.PublishedAt = s.now().UTC()
	}
	d.Modified = s.now().UTC()
	d.Published = cloneMap(d.Metadata)
	s.concepts[d.ConceptID].Published = true
	s.published++
}

func (d *deposition) putFile(key string, data []byte, now time.Time) *file {
	sum := md5.Sum(data)
	f := &file{ID: newUUID(), Key: key, Data: append([]byte(nil), data...), Checksum: hex.EncodeToString(sum[:]), Version: newUUID(), Created: now.UTC()}
	for i, old := range d.Files {
		if old.Key == key {
			d.Files[i] = f
			return f
		}
	}
	d.Files = append(d.Files, f)
	return f
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func cloneMap(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	if out == nil {
		out = map[string]any{}
	}
	return out
}

// ---- HTTP ----

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec := Request{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, ContentType: r.Header.Get("Content-Type"), BodyLen: len(body)}

	s.mu.Lock()
	f := s.matchFault(r)
	s.mu.Unlock()
	if f != nil && f.Delay > 0 {
		select {
		case <-time.After(f.Delay):
		case <-r.Context().Done():
		}
	}
	if f != nil && !f.After && (f.Drop || f.Status != 0) {
		s.finishFault(w, f, &rec)
		return
	}

	rr := httptest.NewRecorder()
	s.mu.Lock()
	s.handle(rr, r, body)
	s.mu.Unlock()

	if f != nil && f.After && (f.Drop || f.Status != 0) {
		s.finishFault(w, f, &rec)
		return
	}
	// Record before answering, so a client that has its answer always finds it recorded.
	rec.Status = rr.Code
	s.record(rec)
	for k, v := range rr.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rr.Code)
	_, _ = w.Write(rr.Body.Bytes())
}

func (s *Server) record(rec Request) {
	s.mu.Lock()
	s.requests = append(s.requests, rec)
	s.mu.Unlock()
}

func (s *Server) finishFault(w http.ResponseWriter, f *Fault, rec *Request) {
	if f.Drop {
		// Record first: the client sees the closed connection at once and may look.
		s.record(*rec)
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	rec.Status = f.Status
	s.record(*rec)
	w.WriteHeader(f.Status)
}

// matchFault finds the first live fault for r and spends one of its times. Called with mu held.
func (s *Server) matchFault(r *http.Request) *Fault {
	for i, f := range s.faults {
		if f.Method != "" && !strings.EqualFold(f.Method, r.Method) {
			continue
		}
		if f.PathSuffix != "" && !strings.HasSuffix(r.URL.Path, f.PathSuffix) {
			continue
		}
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			}
		}
		return f
	}
	return nil
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

// handle serves one request with mu held.
func (s *Server) handle(w http.ResponseWriter, r *http.Request, body []byte) {
	path := strings.TrimSuffix(r.URL.Path, "/")
	if !strings.HasPrefix(path, "/api/") {
		writeError(w, 404, "The requested URL was not found on the server.")
		return
	}
	token := ""
	if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
		token = strings.TrimSpace(strings.TrimPrefix(a, "Bearer "))
	} else if q := r.URL.Query().Get("access_token"); q != "" {
		token = q
	}
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
	if s.rateN > 0 && ok {
		now := s.now()
		start, seen := s.rateStart[token]
		if !seen || now.Sub(start) >= s.rateWindow {
			start = now
			s.rateStart[token], s.rateCount[token] = now, 0
		}
		reset := start.Add(s.rateWindow)
		s.rateCount[token]++
		remaining := s.rateN - s.rateCount[token]
		if remaining < 0 {
			remaining = 0
		}
		w.Header().Set("X-RateLimit-Limit", strconv.Itoa(s.rateN))
		w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
		if s.rateCount[token] > s.rateN {
			secs := int(reset.Sub(now).Round(time.Second) / time.Second)
			if secs < 1 {
				secs = 1
			}
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			writeError(w, 429, "Too Many Requests: rate limit exceeded")
			return
		}
	}
	segs := strings.Split(strings.TrimPrefix(path, "/api/"), "/")
	switch {
	case public:
		s.records(w, r, segs)
	case len(segs) == 2 && segs[0] == "deposit" && segs[1] == "depositions":
		switch r.Method {
		case http.MethodGet:
			// The deposit API is a write API: reading it needs deposit:write too.
			if !s.scope(w, ti, ScopeWrite) {
				return
			}
			s.list(w, r, ti)
		case http.MethodPost:
			if !s.jsonBody(w, r, body, true) || !s.scope(w, ti, ScopeWrite) {
				return
			}
			s.create(w, body, ti)
		default:
			writeError(w, 405, "The method is not allowed for the requested URL.")
		}
	case len(segs) >= 3 && segs[0] == "deposit" && segs[1] == "depositions":
		id, err := strconv.Atoi(segs[2])
		d := s.deps[id]
		if err != nil || d == nil {
			writeError(w, 404, "PID does not exist.")
			return
		}
		if d.Owner != ti.owner {
			writeError(w, 403, "You don't have the permission to access the requested resource. It is either read-protected or not readable by the server.")
			return
		}
		switch {
		case r.Method == http.MethodGet && !s.scope(w, ti, ScopeWrite): // answered 403
		case len(segs) == 3 && r.Method == http.MethodGet:
			writeJSON(w, 200, s.render(d))
		case len(segs) == 3 && r.Method == http.MethodPut:
			if !s.jsonBody(w, r, body, true) || !s.scope(w, ti, ScopeWrite) {
				return
			}
			s.update(w, d, body)
		case len(segs) == 3 && r.Method == http.MethodDelete:
			if !s.scope(w, ti, ScopeWrite) {
				return
			}
			// A published record (being edited or not) cannot be deleted: 403, as the
			// legacy docs say; only versioned.
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
		case len(segs) == 4 && segs[3] == "files" && r.Method == http.MethodGet:
			writeJSON(w, 200, s.renderFiles(d))
		case len(segs) == 5 && segs[3] == "actions" && r.Method == http.MethodPost:
			if !s.jsonBody(w, r, body, false) || !s.scope(w, ti, ScopeActions) {
				return
			}
			s.action(w, d, segs[4])
		default:
			writeError(w, 405, "The method is not allowed for the requested URL.")
		}
	case len(segs) == 3 && segs[0] == "files" && r.Method == http.MethodPut:
		if !s.scope(w, ti, ScopeWrite) {
			return
		}
		id, ok := s.buckets[segs[1]]
		d := s.deps[id]
		if !ok || d == nil {
			writeError(w, 404, "Bucket does not exist.")
			return
		}
		if d.Owner != ti.owner {
			writeError(w, 403, "You don't have the permission to access the requested resource.")
			return
		}
		if d.Submitted {
			writeError(w, 403, "The bucket is locked: files of a published record cannot be changed.")
			return
		}
		f := d.putFile(segs[2], body, s.now())
		d.Modified = s.now().UTC()
		s.uploads++
		writeJSON(w, 201, s.renderBucketFile(d, f))
	case len(segs) == 3 && segs[0] == "files" && r.Method == http.MethodDelete:
		if !s.scope(w, ti, ScopeWrite) {
			return
		}
		d := s.deps[s.buckets[segs[1]]]
		if d == nil || d.Owner != ti.owner {
			writeError(w, 404, "Bucket does not exist.")
			return
		}
		if d.Submitted {
			writeError(w, 403, "The bucket is locked: files of a published record cannot be changed.")
			return
		}
		for i, f := range d.Files {
			if f.Key == segs[2] {
				d.Files = append(d.Files[:i:i], d.Files[i+1:]...)
				d.Modified = s.now().UTC()
				w.WriteHeader(204)
				return
			}
		}
		writeError(w, 404, "Object does not exist.")
	case len(segs) == 2 && segs[0] == "files" && r.Method == http.MethodGet:
		id, ok := s.buckets[segs[1]]
		d := s.deps[id]
		if !ok || d == nil || d.Owner != ti.owner {
			writeError(w, 404, "Bucket does not exist.")
			return
		}
		var contents []any
		for _, f := range d.Files {
			contents = append(contents, s.renderBucketFile(d, f))
		}
		writeJSON(w, 200, map[string]any{"id": d.Bucket, "contents": contents, "locked": d.Submitted})
	default:
		writeError(w, 404, "The requested URL was not found on the server.")
	}
}

// records serves the public records API: GET /api/records/{id} for a published version
// (a concept id, a draft or an unknown id is 404, as on Zenodo since it runs InvenioRDM),
// and GET /api/records?q=&all_versions=&size=&page= searching published versions (the
// latest of each concept unless all_versions), in the InvenioRDM hits form.
func (s *Server) records(w http.ResponseWriter, r *http.Request, segs []string) {
	switch {
	case len(segs) == 2:
		id, err := strconv.Atoi(segs[1])
		d := s.deps[id]
		if err != nil || d == nil || !d.Submitted {
			writeError(w, 404, "The persistent identifier does not exist.")
			return
		}
		writeJSON(w, 200, s.renderRecord(d))
	case len(segs) == 1:
		q := r.URL.Query()
		size, page := 10, 1
		if v, err := strconv.Atoi(q.Get("size")); err == nil && v > 0 {
			size = v
		}
		if v, err := strconv.Atoi(q.Get("page")); err == nil && v > 0 {
			page = v
		}
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
	default:
		writeError(w, 404, "The requested URL was not found on the server.")
	}
}

// renderRecord is a published version as the records API shows it.
func (s *Server) renderRecord(d *deposition) map[string]any {
	c := s.concepts[d.ConceptID]
	md := cloneMap(d.Metadata)
	md["doi"] = s.doi(d.ID)
	out := map[string]any{
		"id": d.ID, "recid": strconv.Itoa(d.ID), "conceptrecid": strconv.Itoa(c.ID),
		"doi": s.doi(d.ID), "doi_url": "https://doi.org/" + s.doi(d.ID), "conceptdoi": s.doi(c.ID),
		"title": md["title"], "metadata": md, "owners": []any{d.Owner}, "state": "done", "submitted": true,
		"created": d.PublishedAt.Format(time.RFC3339Nano), "updated": d.Modified.Format(time.RFC3339Nano),
		"links": map[string]any{
			"self": s.api("records/%d", d.ID), "self_html": fmt.Sprintf("%s/records/%d", s.srv.URL, d.ID),
			"parent": s.api("records/%d", c.ID), "doi": "https://doi.org/" + s.doi(d.ID),
		},
		"files": s.renderFiles(d),
	}
	return out
}

// jsonBody answers 415 when a body that should be JSON is not.
func (s *Server) jsonBody(w http.ResponseWriter, r *http.Request, body []byte, required bool) bool {
	if !required && len(bytes.TrimSpace(body)) == 0 {
		return true
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/json" {
		writeError(w, 415, "Unsupported media type: the request body must be application/json.")
		return false
	}
	return true
}

func (s *Server) scope(w http.ResponseWriter, ti tokenInfo, scope string) bool {
	for _, sc := range ti.scopes {
		if sc == scope {
			return true
		}
	}
	writeError(w, 403, "The access token does not have the scope "+scope+" required for this request.")
	return false
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, ti tokenInfo) {
	q := r.URL.Query()
	status := q.Get("status")
	size, page := 10, 1
	if v, err := strconv.Atoi(q.Get("size")); err == nil && v > 0 {
		size = v
	}
	if v, err := strconv.Atoi(q.Get("page")); err == nil && v > 0 {
		page = v
	}
	allVersions := q.Get("all_versions") == "true" || q.Get("all_versions") == "1"
	var ids []int
	for id, d := range s.deps {
		if d.Owner != ti.owner {
			continue
		}
		switch status {
		case "draft":
			if d.Submitted {
				continue
			}
		case "published":
			if !d.Submitted {
				continue
			}
		}
		if !allVersions && d.Submitted && !s.isLatestPublished(d) {
			continue
		}
		if !matchQuery(q.Get("q"), d) {
			continue
		}
		ids = append(ids, id)
	}
	// mostrecent (the default without q): newest first.
	sort.Sort(sort.Reverse(sort.IntSlice(ids)))
	out := []any{}
	for i := (page - 1) * size; i < len(ids) && i < page*size; i++ {
		out = append(out, s.render(s.deps[ids[i]]))
	}
	writeJSON(w, 200, out)
}

// matchQuery is a small subset of the search syntax: space-separated terms, each either
// field:value (conceptrecid, recid, id, version, title, metadata.version, metadata.title,
// quotes allowed) or free text that must occur in the title.
func matchQuery(q string, d *deposition) bool {
	for _, term := range splitTerms(q) {
		field, val, ok := strings.Cut(term, ":")
		if !ok {
			if !strings.Contains(strings.ToLower(fmt.Sprint(d.Metadata["title"])), strings.ToLower(strings.Trim(term, `"`))) {
				return false
			}
			continue
		}
		val = strings.Trim(val, `"`)
		switch strings.TrimPrefix(field, "metadata.") {
		case "conceptrecid", "parent.id":
			if strconv.Itoa(d.ConceptID) != val {
				return false
			}
		case "recid", "id":
			if strconv.Itoa(d.ID) != val {
				return false
			}
		case "version":
			if fmt.Sprint(d.Metadata["version"]) != val {
				return false
			}
		case "title":
			if !strings.Contains(strings.ToLower(fmt.Sprint(d.Metadata["title"])), strings.ToLower(val)) {
				return false
			}
		}
	}
	return true
}

func splitTerms(q string) []string {
	var out []string
	var cur strings.Builder
	inQuote := false
	for _, r := range q {
		switch {
		case r == '"':
			inQuote = !inQuote
			cur.WriteRune(r)
		case r == ' ' && !inQuote:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

func (s *Server) isLatestPublished(d *deposition) bool {
	return s.latestPublished(s.concepts[d.ConceptID]) == d
}

func (s *Server) latestPublished(c *concept) *deposition {
	var best *deposition
	for _, id := range c.Versions {
		if d := s.deps[id]; d != nil && d.Submitted && (best == nil || d.PublishedAt.After(best.PublishedAt) || (d.PublishedAt.Equal(best.PublishedAt) && d.ID > best.ID)) {
			best = d
		}
	}
	return best
}

func (s *Server) draftOf(c *concept) *deposition {
	for _, id := range c.Versions {
		if d := s.deps[id]; d != nil && !d.Submitted {
			return d
		}
	}
	return nil
}

func (s *Server) create(w http.ResponseWriter, body []byte, ti tokenInfo) {
	var in struct {
		Metadata map[string]any `json:"metadata"`
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			writeError(w, 400, "The request body is not valid JSON: "+err.Error())
			return
		}
	}
	if errs := checkMetadata(in.Metadata, false); len(errs) > 0 {
		writeError(w, 400, "A validation error occurred.", errs...)
		return
	}
	c := s.newConcept(ti.owner)
	d := s.newDeposition(c, ti.owner)
	d.Metadata = sanitize(in.Metadata)
	d.ViaAPI = true
	s.created++
	writeJSON(w, 201, s.render(d))
}

// sanitize drops the request-only keys the server does not store.
func sanitize(md map[string]any) map[string]any {
	out := cloneMap(md)
	delete(out, "prereserve_doi")
	delete(out, "doi")
	return out
}

func (s *Server) update(w http.ResponseWriter, d *deposition, body []byte) {
	if d.State == "done" {
		writeError(w, 400, "Deposition is published: use actions/edit before changing its metadata.")
		return
	}
	var in struct {
		Metadata map[string]any `json:"metadata"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		writeError(w, 400, "The request body is not valid JSON: "+err.Error())
		return
	}
	if in.Metadata == nil {
		writeError(w, 400, "A validation error occurred.", apiErr{Field: "metadata", Messages: []string{"Missing data for required field."}})
		return
	}
	if errs := checkMetadata(in.Metadata, true); len(errs) > 0 {
		writeError(w, 400, "A validation error occurred.", errs...)
		return
	}
	d.Metadata = sanitize(in.Metadata)
	d.Modified = s.now().UTC()
	writeJSON(w, 200, s.render(d))
}

var uploadTypes = map[string]bool{"publication": true, "poster": true, "presentation": true, "dataset": true, "image": true, "video": true, "software": true, "lesson": true, "physicalobject": true, "other": true}

// checkMetadata validates the shape of metadata sent on create or update (not completeness:
// that is checked at publish).
func checkMetadata(md map[string]any, update bool) []apiErr {
	var errs []apiErr
	if v, ok := md["upload_type"]; ok && !uploadTypes[fmt.Sprint(v)] {
		errs = append(errs, apiErr{Field: "metadata.upload_type", Messages: []string{"Not a valid choice."}})
	}
	if v, ok := md["access_right"]; ok {
		switch v {
		case "open", "embargoed", "restricted", "closed":
		default:
			errs = append(errs, apiErr{Field: "metadata.access_right", Messages: []string{"Not a valid choice."}})
		}
	}
	if v, ok := md["creators"]; ok {
		list, ok := v.([]any)
		if !ok {
			errs = append(errs, apiErr{Field: "metadata.creators", Messages: []string{"Not a valid list."}})
		}
		for i, c := range list {
			m, _ := c.(map[string]any)
			if n, _ := m["name"].(string); strings.TrimSpace(n) == "" {
				errs = append(errs, apiErr{Field: fmt.Sprintf("metadata.creators.%d.name", i), Messages: []string{"Missing data for required field."}})
			}
		}
	}
	if v, ok := md["publication_date"]; ok {
		if _, err := time.Parse("2006-01-02", fmt.Sprint(v)); err != nil {
			errs = append(errs, apiErr{Field: "metadata.publication_date", Messages: []string{"Not a valid date."}})
		}
	}
	if update {
		if v, ok := md["doi"]; ok && v != nil && v != "" {
			errs = append(errs, apiErr{Field: "metadata.doi", Messages: []string{"The DOI is managed by Zenodo: do not send it back."}})
		}
		if v, ok := md["prereserve_doi"]; ok {
			if _, isBool := v.(bool); !isBool {
				errs = append(errs, apiErr{Field: "metadata.prereserve_doi", Messages: []string{"Not a valid boolean: do not send the reserved DOI back."}})
			}
		}
	}
	return errs
}

// checkPublishable lists what is missing before a deposition can be published.
func checkPublishable(d *deposition) []apiErr {
	var errs []apiErr
	missing := func(f string) {
		errs = append(errs, apiErr{Field: "metadata." + f, Messages: []string{"Missing data for required field."}})
	}
	for _, f := range []string{"upload_type", "title", "description"} {
		if v, _ := d.Metadata[f].(string); strings.TrimSpace(v) == "" {
			missing(f)
		}
	}
	if l, _ := d.Metadata["creators"].([]any); len(l) == 0 {
		missing("creators")
	}
	ar, _ := d.Metadata["access_right"].(string)
	if ar == "" {
		ar = "open"
		d.Metadata["access_right"] = ar
	}
	if ar == "open" || ar == "embargoed" {
		if v, _ := d.Metadata["license"].(string); v == "" {
			if m, _ := d.Metadata["license"].(map[string]any); m == nil {
				missing("license")
			}
		}
	}
	if ar == "embargoed" && d.Metadata["embargo_date"] == nil {
		missing("embargo_date")
	}
	if ar == "restricted" && d.Metadata["access_conditions"] == nil {
		missing("access_conditions")
	}
	if len(d.Files) == 0 {
		errs = append(errs, apiErr{Field: "files.enabled", Messages: []string{"Missing uploaded files. To disable files for this record please mark it as metadata-only."}})
	}
	return errs
}

func (s *Server) action(w http.ResponseWriter, d *deposition, name string) {
	c := s.concepts[d.ConceptID]
	switch name {
	case "publish":
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
	case "edit":
		if d.State != "done" {
			writeError(w, 400, "Deposition is not published, or is already being edited.")
			return
		}
		d.State = "inprogress"
		writeJSON(w, 201, s.render(d))
	case "discard":
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
	case "newversion":
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
			draft = s.newDeposition(c, d.Owner)
			md := cloneMap(d.Metadata)
			delete(md, "version")
			delete(md, "publication_date")
			draft.Metadata = md
			// The new version starts with a copy of the previous version's files, as the
			// legacy docs describe; the client removes or replaces what it does not want.
			for _, f := range d.Files {
				nf := *f
				nf.ID = newUUID()
				draft.Files = append(draft.Files, &nf)
			}
			draft.ViaAPI = true
			s.created++
			s.newVersions++
		}
		if s.legacyNewVersion {
			out := s.render(d)
			out["links"].(map[string]any)["latest_draft"] = s.api("deposit/depositions/%d", draft.ID)
			writeJSON(w, 201, out)
			return
		}
		writeJSON(w, 201, s.render(draft))
	default:
		writeError(w, 404, "The requested URL was not found on the server.")
	}
}

// remove deletes a draft, its bucket and, for a first version, its concept; the DOI it
// reserved goes with it.
func (s *Server) remove(d *deposition) {
	delete(s.deps, d.ID)
	s.discarded++
	if d.ViaAPI {
		s.created--
	}
	delete(s.buckets, d.Bucket)
	c := s.concepts[d.ConceptID]
	for i, id := range c.Versions {
		if id == d.ID {
			c.Versions = append(c.Versions[:i:i], c.Versions[i+1:]...)
			break
		}
	}
	if len(c.Versions) == 0 {
		delete(s.concepts, c.ID)
	}
}

func (s *Server) api(format string, args ...any) string {
	return s.srv.URL + "/api/" + fmt.Sprintf(format, args...)
}

func (s *Server) doi(id int) string { return fmt.Sprintf("%s/zenodo.%d", s.prefix, id) }

// render is the legacy JSON representation of a deposition.
func (s *Server) render(d *deposition) map[string]any {
	c := s.concepts[d.ConceptID]
	md := cloneMap(d.Metadata)
	md["prereserve_doi"] = map[string]any{"doi": s.doi(d.ID), "recid": d.ID}
	if d.Submitted {
		md["doi"] = s.doi(d.ID)
	}
	self := s.api("deposit/depositions/%d", d.ID)
	links := map[string]any{
		"self": self, "html": fmt.Sprintf("%s/deposit/%d", s.srv.URL, d.ID),
		"bucket": s.api("files/%s", d.Bucket), "files": self + "/files",
		"publish": self + "/actions/publish", "edit": self + "/actions/edit",
		"discard": self + "/actions/discard", "newversion": self + "/actions/newversion",
	}
	if dr := s.draftOf(c); dr != nil {
		links["latest_draft"] = s.api("deposit/depositions/%d", dr.ID)
		links["latest_draft_html"] = fmt.Sprintf("%s/deposit/%d", s.srv.URL, dr.ID)
	}
	out := map[string]any{
		"id": d.ID, "record_id": d.ID, "conceptrecid": strconv.Itoa(c.ID), "owner": d.Owner,
		"created": d.Created.Format(time.RFC3339Nano), "modified": d.Modified.Format(time.RFC3339Nano),
		"title": md["title"], "state": d.State, "submitted": d.Submitted,
		"metadata": md, "links": links, "files": s.renderFiles(d),
	}
	if c.Published {
		out["conceptdoi"] = s.doi(c.ID)
		links["conceptdoi"] = "https://doi.org/" + s.doi(c.ID)
	}
	if d.Submitted {
		out["doi"] = s.doi(d.ID)
		out["doi_url"] = "https://doi.org/" + s.doi(d.ID)
		out["record_url"] = fmt.Sprintf("%s/records/%d", s.srv.URL, d.ID)
		links["record"] = s.api("records/%d", d.ID)
		links["record_html"] = fmt.Sprintf("%s/records/%d", s.srv.URL, d.ID)
		links["doi"] = "https://doi.org/" + s.doi(d.ID)
		if lp := s.latestPublished(c); lp != nil {
			links["latest"] = s.api("records/%d", lp.ID)
			links["latest_html"] = fmt.Sprintf("%s/records/%d", s.srv.URL, lp.ID)
		}
	}
	return out
}

func (s *Server) renderFiles(d *deposition) []any {
	out := []any{}
	for _, f := range d.Files {
		out = append(out, map[string]any{
			"id": f.ID, "filename": f.Key, "filesize": len(f.Data), "checksum": f.Checksum,
			"links": map[string]any{"self": s.api("deposit/depositions/%d/files/%s", d.ID, f.ID), "download": s.api("files/%s/%s", d.Bucket, f.Key)},
		})
	}
	return out
}

func (s *Server) renderBucketFile(d *deposition, f *file) map[string]any {
	self := s.api("files/%s/%s", d.Bucket, f.Key)
	return map[string]any{
		"key": f.Key, "mimetype": "application/octet-stream", "checksum": "md5:" + f.Checksum, "size": len(f.Data),
		"version_id": f.Version, "created": f.Created.Format(time.RFC3339Nano), "updated": f.Created.Format(time.RFC3339Nano),
		"is_head": true, "delete_marker": false,
		"links": map[string]any{"self": self, "version": self + "?versionId=" + f.Version, "uploads": self + "?uploads"},
	}
}
