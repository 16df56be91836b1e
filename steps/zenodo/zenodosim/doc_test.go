package zenodosim

import (
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/cessda/runbook/steps/simkit"
)

// documentedEndpoints reads the endpoint list of this package's doc.go.
func documentedEndpoints(t *testing.T) []simkit.Endpoint {
	t.Helper()
	eps, err := simkit.DocumentedEndpoints("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	return eps
}

// A request to make for a documented endpoint: its path, body and content type.
type request struct{ path, body, ctype string }

// testDraft adds a draft of owner 1, complete enough to publish when complete is set.
func testDraft(s *Server, complete bool) *deposition {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.newDeposition(s.newConcept(1), 1)
	if complete {
		d.Metadata = map[string]any{"title": "T", "upload_type": "software", "description": "d",
			"creators": []any{map[string]any{"name": "Doe, J"}}, "license": "mit"}
		d.putFile("a.txt", []byte("a"), s.now())
	}
	return d
}

func testPublished(s *Server) int {
	rec, _ := s.AddPublished(Published{Title: "T", Version: "1.0.0", Files: map[string][]byte{"a.txt": []byte("a")}})
	return rec
}

// endpointRequests makes, for each documented endpoint, a request that succeeds.
var endpointRequests = map[string]func(s *Server) request{
	"GET /api/deposit/depositions":  func(*Server) request { return request{path: "/api/deposit/depositions"} },
	"POST /api/deposit/depositions": func(*Server) request { return request{"/api/deposit/depositions", "{}", "application/json"} },
	"GET /api/deposit/depositions/{id}": func(s *Server) request {
		return request{path: fmt.Sprintf("/api/deposit/depositions/%d", testDraft(s, false).ID)}
	},
	"PUT /api/deposit/depositions/{id}": func(s *Server) request {
		return request{fmt.Sprintf("/api/deposit/depositions/%d", testDraft(s, false).ID), `{"metadata":{"title":"T"}}`, "application/json"}
	},
	"DELETE /api/deposit/depositions/{id}": func(s *Server) request {
		return request{path: fmt.Sprintf("/api/deposit/depositions/%d", testDraft(s, false).ID)}
	},
	"GET /api/deposit/depositions/{id}/files": func(s *Server) request {
		return request{path: fmt.Sprintf("/api/deposit/depositions/%d/files", testDraft(s, true).ID)}
	},
	"POST /api/deposit/depositions/{id}/actions/publish": func(s *Server) request {
		return request{path: fmt.Sprintf("/api/deposit/depositions/%d/actions/publish", testDraft(s, true).ID)}
	},
	"POST /api/deposit/depositions/{id}/actions/edit": func(s *Server) request {
		return request{path: fmt.Sprintf("/api/deposit/depositions/%d/actions/edit", testPublished(s))}
	},
	"POST /api/deposit/depositions/{id}/actions/discard": func(s *Server) request {
		return request{path: fmt.Sprintf("/api/deposit/depositions/%d/actions/discard", testDraft(s, false).ID)}
	},
	"POST /api/deposit/depositions/{id}/actions/newversion": func(s *Server) request {
		return request{path: fmt.Sprintf("/api/deposit/depositions/%d/actions/newversion", testPublished(s))}
	},
	"POST /api/deposit/depositions/{id}/actions/{action}": func(s *Server) request {
		return request{path: fmt.Sprintf("/api/deposit/depositions/%d/actions/frobnicate", testDraft(s, false).ID)}
	},
	"GET /api/files/{bucket}": func(s *Server) request { return request{path: "/api/files/" + testDraft(s, true).Bucket} },
	"PUT /api/files/{bucket}/{name}": func(s *Server) request {
		return request{"/api/files/" + testDraft(s, false).Bucket + "/b.bin", "bytes", "application/octet-stream"}
	},
	"DELETE /api/files/{bucket}/{name}": func(s *Server) request {
		return request{path: "/api/files/" + testDraft(s, true).Bucket + "/a.txt"}
	},
	"GET /api/records":      func(*Server) request { return request{path: "/api/records?all_versions=true"} },
	"GET /api/records/{id}": func(s *Server) request { return request{path: fmt.Sprintf("/api/records/%d", testPublished(s))} },
}

// TestDocumentedEndpoints: doc.go lists exactly the routes that name a method, and each
// answers with the status and content type it documents.
func TestDocumentedEndpoints(t *testing.T) {
	eps := documentedEndpoints(t)
	var doc, code []string
	for _, ep := range eps {
		doc = append(doc, ep.Key())
	}
	for _, rt := range routes {
		if strings.Contains(rt.pattern, " ") {
			code = append(code, rt.pattern)
		}
	}
	sort.Strings(doc)
	sort.Strings(code)
	if strings.Join(doc, "\n") != strings.Join(code, "\n") {
		t.Errorf("doc.go lists\n%s\nthe routes are\n%s", strings.Join(doc, "\n"), strings.Join(code, "\n"))
	}

	s := New(WithToken("tok", 1))
	defer s.Close()
	for _, ep := range eps {
		key := ep.Key()
		mk, ok := endpointRequests[key]
		if !ok {
			t.Errorf("no request for the documented %s", key)
			continue
		}
		rq := mk(s)
		var body io.Reader
		if rq.body != "" {
			body = strings.NewReader(rq.body)
		}
		req, _ := http.NewRequest(ep.Method, s.srv.URL+rq.path, body)
		req.Header.Set("Authorization", "Bearer tok")
		if rq.ctype != "" {
			req.Header.Set("Content-Type", rq.ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		ctype, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		if ctype == "" {
			ctype = "-"
		}
		if resp.StatusCode != ep.Status || ctype != ep.ContentType {
			t.Errorf("%s (%s): %d %s, documented %d %s; body %s", key, rq.path, resp.StatusCode, ctype, ep.Status, ep.ContentType, b)
		}
	}
}

func TestSuffixPatternsNameTheRoute(t *testing.T) {
	for _, c := range []struct{ method, suffix, want string }{
		{"", "", ""},
		{"POST", "/actions/publish", "/api/deposit/depositions/{id}/actions/publish"},
		{"", "/deposit/depositions", "/api/deposit/depositions"}, // not a bucket file named depositions
		{"POST", "/deposit/depositions", "/api/deposit/depositions"},
		// as literal in both: each route gets the fault
		{"PUT", "/a.tar", "/api/deposit/depositions/a.tar /api/files/{bucket}/a.tar"},
		{"", "publish", "/api/deposit/depositions/{id}/actions/publish"},
		{"GET", "/actions/publish", ""}, // no GET route ends so
	} {
		got := strings.Join(suffixPatterns(c.method, c.suffix), " ")
		if got != c.want {
			t.Errorf("suffixPatterns(%q, %q) = %q, want %q", c.method, c.suffix, got, c.want)
		}
	}
}
