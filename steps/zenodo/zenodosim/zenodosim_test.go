package zenodosim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cessda/runbook/steps/zenodo/zenodosim"
)

const tok = "sim-token"

type answer struct {
	status int
	header http.Header
	body   map[string]any
	list   []any
}

func call(t *testing.T, method, url, ctype, body string) answer {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header}
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte("[")) {
		_ = json.Unmarshal(b, &a.list)
	} else {
		_ = json.Unmarshal(b, &a.body)
	}
	return a
}

func id(a answer) int { return int(a.body["id"].(float64)) }

func TestLifecycle(t *testing.T) {
	s := zenodosim.New(zenodosim.WithToken(tok, 1))
	defer s.Close()
	c := call(t, "POST", s.URL()+"deposit/depositions", "application/json", `{"metadata":{"title":"T","prereserve_doi":true}}`)
	if c.status != 201 || c.body["state"] != "unsubmitted" {
		t.Fatalf("create: %d %v", c.status, c.body)
	}
	n := id(c)
	pre := c.body["metadata"].(map[string]any)["prereserve_doi"].(map[string]any)
	if pre["doi"] != fmt.Sprintf("10.5281/zenodo.%d", n) {
		t.Errorf("prereserve_doi = %v", pre)
	}
	self := fmt.Sprintf("%sdeposit/depositions/%d", s.URL(), n)

	// Publishing an incomplete draft lists every missing field in the RDM error form.
	p := call(t, "POST", self+"/actions/publish", "", "")
	if p.status != 400 {
		t.Fatalf("publish incomplete: %d", p.status)
	}
	var fields []string
	for _, e := range p.body["errors"].([]any) {
		m := e.(map[string]any)
		fields = append(fields, m["field"].(string))
		if _, ok := m["messages"].([]any); !ok {
			t.Errorf("error without a messages array: %v", m)
		}
	}
	for _, f := range []string{"metadata.upload_type", "metadata.description", "metadata.creators", "metadata.license", "files.enabled"} {
		if !strings.Contains(strings.Join(fields, " "), f) {
			t.Errorf("missing field %s not reported: %v", f, fields)
		}
	}

	// The reserved DOI must not be sent back.
	u := call(t, "PUT", self, "application/json", `{"metadata":{"title":"T","prereserve_doi":{"doi":"10.5281/zenodo.1","recid":1}}}`)
	if u.status != 400 || !strings.Contains(fmt.Sprint(u.body), "metadata.prereserve_doi") {
		t.Errorf("PUT with prereserve_doi object: %d %v", u.status, u.body)
	}
	if u := call(t, "PUT", self, "text/plain", `{"metadata":{}}`); u.status != 415 {
		t.Errorf("PUT text/plain: %d", u.status)
	}
	u = call(t, "PUT", self, "application/json", `{"metadata":{"title":"T","upload_type":"software","description":"d","creators":[{"name":"Doe, J"}],"license":"mit","version":"1.0.0"}}`)
	if u.status != 200 {
		t.Fatalf("PUT: %d %v", u.status, u.body)
	}
	bucket := u.body["links"].(map[string]any)["bucket"].(string)
	f := call(t, "PUT", bucket+"/a.tar", "application/octet-stream", "hello")
	if f.status != 201 || f.body["checksum"] != "md5:5d41402abc4b2a76b9719d911017c592" {
		t.Errorf("upload: %d %v", f.status, f.body)
	}
	p = call(t, "POST", self+"/actions/publish", "", "")
	if p.status != 202 || p.body["state"] != "done" || p.body["submitted"] != true || p.body["doi"] != pre["doi"] || p.body["conceptdoi"] == nil {
		t.Fatalf("publish: %d %v", p.status, p.body)
	}
	if f := call(t, "PUT", bucket+"/b.tar", "application/octet-stream", "x"); f.status != 403 {
		t.Errorf("upload to a published record: %d", f.status)
	}
	if s.Publications() != 1 || s.Uploads() != 1 || s.Created() != 1 {
		t.Errorf("counts: %d %d %d", s.Publications(), s.Uploads(), s.Created())
	}

	// newversion: the new draft itself; again returns the same draft; an old version is refused.
	nv := call(t, "POST", self+"/actions/newversion", "", "")
	if nv.status != 201 || id(nv) == n || nv.body["state"] != "unsubmitted" || len(nv.body["files"].([]any)) != 1 {
		t.Fatalf("newversion: %d %v", nv.status, nv.body)
	}
	if again := call(t, "POST", self+"/actions/newversion", "", ""); id(again) != id(nv) {
		t.Errorf("second newversion made another draft %d", id(again))
	}
	draft := fmt.Sprintf("%sdeposit/depositions/%d", s.URL(), id(nv))
	call(t, "PUT", draft, "application/json", `{"metadata":{"title":"T","upload_type":"software","description":"d","creators":[{"name":"Doe, J"}],"license":"mit","version":"1.1.0"}}`)
	if p := call(t, "POST", draft+"/actions/publish", "", ""); p.status != 202 {
		t.Fatalf("publish v2: %d %v", p.status, p.body)
	}
	if old := call(t, "POST", self+"/actions/newversion", "", ""); old.status != 400 {
		t.Errorf("newversion from an old version: %d", old.status)
	}

	// edit / discard of a published record.
	if e := call(t, "POST", draft+"/actions/edit", "", ""); e.status != 201 || e.body["state"] != "inprogress" {
		t.Errorf("edit: %d %v", e.status, e.body)
	}
	if d := call(t, "POST", draft+"/actions/discard", "", ""); d.status != 201 || d.body["state"] != "done" {
		t.Errorf("discard: %d %v", d.status, d.body)
	}

	// list: latest versions only unless all_versions; paging.
	if l := call(t, "GET", s.URL()+"deposit/depositions?status=published", "", ""); len(l.list) != 1 {
		t.Errorf("published latest versions = %d, want 1", len(l.list))
	}
	if l := call(t, "GET", s.URL()+"deposit/depositions?status=published&all_versions=true&size=1&page=2", "", ""); len(l.list) != 1 {
		t.Errorf("page 2 of size 1 = %d items", len(l.list))
	}
	if l := call(t, "GET", s.URL()+`deposit/depositions?all_versions=true&q=version:"1.0.0"`, "", ""); len(l.list) != 1 || id(answer{body: l.list[0].(map[string]any)}) != n {
		t.Errorf("q=version: %v", l.list)
	}
}

func TestAuthScopesAndRateLimit(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := zenodosim.New(zenodosim.WithToken(tok, 1, zenodosim.ScopeWrite), zenodosim.WithRateLimit(3, time.Minute), zenodosim.WithClock(func() time.Time { return now }))
	defer s.Close()
	resp, err := http.Get(s.URL() + "deposit/depositions")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("no token: %d", resp.StatusCode)
	}
	c := call(t, "POST", s.URL()+"deposit/depositions", "application/json", `{}`)
	if c.header.Get("X-RateLimit-Limit") != "3" || c.header.Get("X-RateLimit-Remaining") != "2" {
		t.Errorf("rate headers: %v", c.header)
	}
	if p := call(t, "POST", fmt.Sprintf("%sdeposit/depositions/%d/actions/publish", s.URL(), id(c)), "", ""); p.status != 403 || !strings.Contains(fmt.Sprint(p.body), "deposit:actions") {
		t.Errorf("publish without deposit:actions: %d %v", p.status, p.body)
	}
	call(t, "GET", s.URL()+"deposit/depositions", "", "")
	l := call(t, "GET", s.URL()+"deposit/depositions", "", "")
	if l.status != 429 || l.header.Get("Retry-After") != "60" {
		t.Errorf("4th request in the window: %d Retry-After %q", l.status, l.header.Get("Retry-After"))
	}
	now = now.Add(time.Minute)
	if l := call(t, "GET", s.URL()+"deposit/depositions", "", ""); l.status != 200 {
		t.Errorf("after the window: %d", l.status)
	}
}

func TestFaultsAndAnyToken(t *testing.T) {
	s := zenodosim.New(zenodosim.AcceptAnyToken(), zenodosim.Sandbox())
	defer s.Close()
	s.Inject(zenodosim.Fault{Method: "POST", Status: 503, Times: 1})
	if c := call(t, "POST", s.URL()+"deposit/depositions", "application/json", `{}`); c.status != 503 {
		t.Errorf("injected 503: %d", c.status)
	}
	c := call(t, "POST", s.URL()+"deposit/depositions", "application/json", `{}`)
	if c.status != 201 || !strings.HasPrefix(c.body["metadata"].(map[string]any)["prereserve_doi"].(map[string]any)["doi"].(string), "10.5072/") {
		t.Errorf("sandbox create: %d %v", c.status, c.body)
	}
	s.Inject(zenodosim.Fault{Drop: true, Times: 1})
	// A POST: net/http transparently retries an idempotent request on a reused connection.
	req, _ := http.NewRequest("POST", s.URL()+"deposit/depositions", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer anything")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Error("dropped connection answered")
	}
	reqs := s.Requests()
	if len(reqs) != 3 || reqs[0].Status != 503 || reqs[2].Status != 0 || s.Writes() != 3 {
		t.Errorf("requests = %+v writes %d", reqs, s.Writes())
	}
	// Token in the query string is accepted, as the real server does.
	resp, err := http.Get(s.URL() + "deposit/depositions?access_token=x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("query token: %d", resp.StatusCode)
	}
}

func TestRecordsAPIAndReadScope(t *testing.T) {
	s := zenodosim.New(zenodosim.WithToken(tok, 1, zenodosim.ScopeActions))
	defer s.Close()
	rec, concept := s.AddPublished(zenodosim.Published{Title: "CDC 3.3.0", Version: "3.3.0"})
	// Reading the deposit API needs deposit:write.
	if l := call(t, "GET", s.URL()+"deposit/depositions?size=1", "", ""); l.status != 403 || !strings.Contains(fmt.Sprint(l.body["message"]), "deposit:write") {
		t.Errorf("list without deposit:write: %d %v", l.status, l.body)
	}
	if g := call(t, "GET", fmt.Sprintf("%sdeposit/depositions/%d", s.URL(), rec), "", ""); g.status != 403 {
		t.Errorf("get without deposit:write: %d", g.status)
	}
	// Published records are public; a concept id is not a record (404, as on Zenodo).
	resp, err := http.Get(fmt.Sprintf("%srecords/%d", s.URL(), rec))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("anonymous record read: %d", resp.StatusCode)
	}
	r := call(t, "GET", fmt.Sprintf("%srecords/%d", s.URL(), rec), "", "")
	if r.status != 200 || r.body["conceptrecid"] != fmt.Sprint(concept) || r.body["doi"] != fmt.Sprintf("10.5281/zenodo.%d", rec) {
		t.Errorf("record: %d %v", r.status, r.body)
	}
	if c := call(t, "GET", fmt.Sprintf("%srecords/%d", s.URL(), concept), "", ""); c.status != 404 || c.body["message"] != "The persistent identifier does not exist." {
		t.Errorf("concept id as a record: %d %v", c.status, c.body)
	}
	q := call(t, "GET", fmt.Sprintf("%srecords?q=conceptrecid:%d&all_versions=true&size=1", s.URL(), concept), "", "")
	if hits, _ := q.body["hits"].(map[string]any); q.status != 200 || hits["total"] != float64(1) {
		t.Errorf("search by concept: %d %v", q.status, q.body)
	}
	q = call(t, "GET", s.URL()+"records?q=conceptrecid:999", "", "")
	if hits, _ := q.body["hits"].(map[string]any); hits["total"] != float64(0) {
		t.Errorf("search for nothing: %v", q.body)
	}
	req, _ := http.NewRequest("GET", fmt.Sprintf("%srecords/%d", s.URL(), rec), nil)
	req.Header.Set("Authorization", "Bearer wrong")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("record read with a wrong token: %d", resp.StatusCode)
	}
	if s.Writes() != 0 {
		t.Errorf("writes = %d", s.Writes())
	}
}

func TestDeleteAndDiscardOfDrafts(t *testing.T) {
	s := zenodosim.New(zenodosim.WithToken(tok, 1))
	defer s.Close()
	rec, concept := s.AddPublished(zenodosim.Published{Title: "CDC 3.3.0", Version: "3.3.0", Files: map[string][]byte{"a": []byte("a")}})
	dep := func(n int) string { return fmt.Sprintf("%sdeposit/depositions/%d", s.URL(), n) }

	// A first-version draft: 204, then 404 everywhere; its DOI and concept go with it.
	c := call(t, "POST", s.URL()+"deposit/depositions", "application/json", `{}`)
	n, doi := id(c), fmt.Sprintf("10.5281/zenodo.%d", id(c))
	if !s.Reserved(doi) || s.Created() != 1 {
		t.Fatalf("after create: reserved %v created %d", s.Reserved(doi), s.Created())
	}
	if d := call(t, "DELETE", dep(n), "", ""); d.status != 204 {
		t.Errorf("DELETE of a draft: %d", d.status)
	}
	for _, a := range []answer{call(t, "GET", dep(n), "", ""), call(t, "DELETE", dep(n), "", ""), call(t, "POST", dep(n)+"/actions/discard", "", "")} {
		if a.status != 404 || a.body["message"] != "PID does not exist." {
			t.Errorf("after DELETE: %d %v", a.status, a.body)
		}
	}
	if s.Reserved(doi) || s.Created() != 0 || s.Discarded() != 1 || s.Depositions() != 1 {
		t.Errorf("after DELETE: reserved %v created %d discarded %d depositions %d", s.Reserved(doi), s.Created(), s.Discarded(), s.Depositions())
	}

	// A new-version draft: only the draft goes; the concept can be versioned again.
	nv := call(t, "POST", dep(rec)+"/actions/newversion", "", "")
	if d := call(t, "DELETE", dep(id(nv)), "", ""); d.status != 204 {
		t.Errorf("DELETE of a new-version draft: %d", d.status)
	}
	if g := call(t, "GET", dep(rec), "", ""); g.status != 200 || g.body["state"] != "done" || g.body["links"].(map[string]any)["latest_draft"] != nil {
		t.Errorf("the published version after the draft's DELETE: %d %v", g.status, g.body)
	}
	if again := call(t, "POST", dep(rec)+"/actions/newversion", "", ""); again.status != 201 || id(again) == id(nv) || again.body["conceptrecid"] != fmt.Sprint(concept) {
		t.Errorf("newversion after the DELETE: %d %v", again.status, again.body)
	} else if d := call(t, "POST", dep(id(again))+"/actions/discard", "", ""); d.status != 201 {
		t.Errorf("actions/discard of a new-version draft: %d", d.status)
	}
	if s.Created() != 0 || s.Discarded() != 3 {
		t.Errorf("created %d discarded %d, want 0 and 3", s.Created(), s.Discarded())
	}

	// A published record cannot be deleted (403) nor discarded when not being edited (400).
	if d := call(t, "DELETE", dep(rec), "", ""); d.status != 403 || d.body["status"] != float64(403) || !strings.Contains(fmt.Sprint(d.body["message"]), "published") {
		t.Errorf("DELETE of a published record: %d %v", d.status, d.body)
	}
	call(t, "POST", dep(rec)+"/actions/edit", "", "")
	if d := call(t, "DELETE", dep(rec), "", ""); d.status != 403 {
		t.Errorf("DELETE of a published record being edited: %d", d.status)
	}
	call(t, "POST", dep(rec)+"/actions/discard", "", "")
	if d := call(t, "POST", dep(rec)+"/actions/discard", "", ""); d.status != 400 {
		t.Errorf("actions/discard of a published record not being edited: %d %v", d.status, d.body)
	}
	if s.Depositions() != 1 || s.Publications() != 1 {
		t.Errorf("depositions %d publications %d", s.Depositions(), s.Publications())
	}
}

func TestDeleteLegacyStatusAndLostAnswer(t *testing.T) {
	s := zenodosim.New(zenodosim.WithToken(tok, 1), zenodosim.LegacyDelete())
	defer s.Close()
	a := id(call(t, "POST", s.URL()+"deposit/depositions", "application/json", `{}`))
	b := id(call(t, "POST", s.URL()+"deposit/depositions", "application/json", `{}`))
	if d := call(t, "DELETE", fmt.Sprintf("%sdeposit/depositions/%d", s.URL(), a), "", ""); d.status != 201 {
		t.Errorf("legacy DELETE: %d", d.status)
	}
	// The DELETE happens, the answer is lost.
	s.Inject(zenodosim.Fault{Method: "DELETE", After: true, Drop: true, Times: 1})
	req, _ := http.NewRequest("DELETE", fmt.Sprintf("%sdeposit/depositions/%d", s.URL(), b), nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Error("dropped connection answered")
	}
	if _, ok := s.Deposition(b); ok || s.Depositions() != 0 || s.Created() != 0 {
		t.Errorf("after the lost DELETE: depositions %d created %d", s.Depositions(), s.Created())
	}
	if reqs := s.Requests(); reqs[len(reqs)-1].Method != "DELETE" || reqs[len(reqs)-1].Status != 0 {
		t.Errorf("last request = %+v", reqs[len(reqs)-1])
	}
}

// A fault's PathSuffix breaks the route it names and no other.
func TestFaultPathSuffixBreaksOneRoute(t *testing.T) {
	s := zenodosim.New(zenodosim.WithToken(tok, 1))
	defer s.Close()
	rec, _ := s.AddPublished(zenodosim.Published{Title: "T", Version: "1.0.0", Files: map[string][]byte{"a": []byte("a")}})
	s.Inject(zenodosim.Fault{Method: "POST", PathSuffix: "/actions/newversion", Status: 503, Times: 1})
	dep := fmt.Sprintf("%sdeposit/depositions/%d", s.URL(), rec)
	if e := call(t, "POST", dep+"/actions/edit", "", ""); e.status != 201 {
		t.Errorf("edit under a newversion fault: %d", e.status)
	}
	if c := call(t, "POST", s.URL()+"deposit/depositions", "application/json", `{}`); c.status != 201 {
		t.Errorf("create under a newversion fault: %d", c.status)
	}
	call(t, "POST", dep+"/actions/discard", "", "")
	if nv := call(t, "POST", dep+"/actions/newversion", "", ""); nv.status != 503 {
		t.Errorf("newversion: %d, want the injected 503", nv.status)
	}
	if nv := call(t, "POST", dep+"/actions/newversion", "", ""); nv.status != 201 {
		t.Errorf("newversion after the fault was spent: %d", nv.status)
	}
}
