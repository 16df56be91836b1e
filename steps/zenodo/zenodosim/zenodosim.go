package zenodosim

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cessda/runbook/steps/simkit"
)

// Scopes of a Zenodo personal access token.
const (
	ScopeWrite   = "deposit:write"
	ScopeActions = "deposit:actions"
)

// Request is one request the simulator received: simkit's Exchange in this package's
// vocabulary (Path unescaped, as r.URL.Path).
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
	kit *simkit.Kit // the request log and the injected faults
	mux *http.ServeMux

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
	s.kit = simkit.New(simkit.WithClock(func() time.Time { return s.now() }))
	s.mux = http.NewServeMux()
	for _, rt := range routes {
		s.mux.HandleFunc(rt.pattern, s.handler(rt.handle))
	}
	s.srv = httptest.NewServer(s.kit.Wrap(http.HandlerFunc(s.serve)))
	return s
}

// URL is the API base URL, ending in "/api/", to use as the connection's url.
func (s *Server) URL() string { return s.srv.URL + "/api/" }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Requests returns every request received so far.
func (s *Server) Requests() []Request {
	ex := s.kit.Requests()
	out := make([]Request, len(ex))
	for i, e := range ex {
		out[i] = requestOf(e)
	}
	return out
}

// Writes counts the requests that asked for a change (simkit.Exchange.Write: anything but
// GET, HEAD and OPTIONS), answered or not: a client that tried to write and failed wrote.
func (s *Server) Writes() int {
	n := 0
	for _, e := range s.kit.Requests() {
		if e.Write() {
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
	size, page := paging(q.Get("size"), q.Get("page"))
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
