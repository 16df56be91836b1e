package jenkinssim

import (
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

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

// routedEndpoints are the operations the routes serve, as doc.go writes them: a read's
// route takes any method and is documented as GET; a route without a method that has a
// POST twin only refuses other methods (405), and "/" is the 404 of everything else.
func routedEndpoints() []string {
	var out []string
	add := func(prefix string, rs []route) {
		posts := map[string]bool{}
		for _, rt := range rs {
			if p, ok := strings.CutPrefix(rt.pattern, "POST "); ok {
				posts[p] = true
			}
		}
		for _, rt := range rs {
			method, path, ok := strings.Cut(rt.pattern, " ")
			if !ok {
				method, path = "GET", rt.pattern
				if posts[path] || path == "/" || path == "/job/{path...}" {
					continue
				}
			}
			path = prefix + strings.TrimSuffix(path, "/{$}")
			if path == "" {
				path = "/"
			}
			out = append(out, method+" "+path)
		}
	}
	add("", routes)
	add("/job/{path}", jobRoutes)
	sort.Strings(out)
	return out
}

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// endpointRequests makes, for each documented endpoint, the path (with query) of a
// request that succeeds.
var endpointRequests = map[string]func(t *testing.T, s *Server) string{
	"GET /":                     func(*testing.T, *Server) string { return "/" },
	"GET /api/json":             func(*testing.T, *Server) string { return "/api/json" },
	"GET /whoAmI":               func(*testing.T, *Server) string { return "/whoAmI" },
	"GET /whoAmI/api/json":      func(*testing.T, *Server) string { return "/whoAmI/api/json" },
	"GET /crumbIssuer/api/json": func(*testing.T, *Server) string { return "/crumbIssuer/api/json" },
	"GET /queue/api/json":       func(*testing.T, *Server) string { return "/queue/api/json" },
	"POST /queue/cancelItem":    func(t *testing.T, s *Server) string { return fmt.Sprintf("/queue/cancelItem?id=%d", queued(t, s)) },
	"GET /queue/item/{id}":      func(t *testing.T, s *Server) string { return fmt.Sprintf("/queue/item/%d/", queued(t, s)) },
	"GET /queue/item/{id}/api/json": func(t *testing.T, s *Server) string {
		return fmt.Sprintf("/queue/item/%d/api/json", queued(t, s))
	},
	"GET /job/{path}":          func(*testing.T, *Server) string { return "/job/folder/job/app/" },
	"GET /job/{path}/api/json": func(*testing.T, *Server) string { return "/job/folder/job/app/api/json?tree=name,color" },
	"POST /job/{path}/build":   func(*testing.T, *Server) string { return "/job/plain/build" },
	"POST /job/{path}/buildWithParameters": func(*testing.T, *Server) string {
		return "/job/folder/job/app/buildWithParameters?V=direct"
	},
	"GET /job/{path}/{build}": func(*testing.T, *Server) string { return "/job/folder/job/app/1/" },
	"GET /job/{path}/{build}/api/json": func(*testing.T, *Server) string {
		return "/job/folder/job/app/lastBuild/api/json"
	},
	"GET /job/{path}/{build}/logText/progressiveText": func(*testing.T, *Server) string {
		return "/job/folder/job/app/1/logText/progressiveText?start=0"
	},
	"GET /job/{path}/{build}/consoleText": func(*testing.T, *Server) string { return "/job/folder/job/app/1/consoleText" },
	"POST /job/{path}/{build}/stop": func(_ *testing.T, s *Server) string {
		return fmt.Sprintf("/job/folder/job/app/%d/stop", s.SeedBuild("folder/app", map[string]string{"V": "running"}, ""))
	},
}

var queuedN int

// queued triggers a build that waits in its quiet period and returns its queue item.
func queued(t *testing.T, s *Server) int {
	queuedN++
	resp := do(t, s, http.MethodPost, fmt.Sprintf("/job/folder/job/app/buildWithParameters?V=q%d", queuedN))
	var id int
	if _, err := fmt.Sscanf(resp.Header.Get("Location"), "/queue/item/%d/", &id); err != nil || resp.StatusCode != 201 {
		t.Fatalf("trigger: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return id
}

func do(t *testing.T, s *Server, method, path string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, s.URL()+path, nil)
	req.SetBasicAuth(DefaultUser, DefaultToken)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// TestDocumentedEndpoints: doc.go lists exactly the operations the routes serve, and
// each answers with the status and content type it documents.
func TestDocumentedEndpoints(t *testing.T) {
	eps := documentedEndpoints(t)
	var doc []string
	for _, ep := range eps {
		doc = append(doc, ep.Key())
	}
	sort.Strings(doc)
	if code := routedEndpoints(); strings.Join(doc, "\n") != strings.Join(code, "\n") {
		t.Errorf("doc.go lists\n%s\nthe routes serve\n%s", strings.Join(doc, "\n"), strings.Join(code, "\n"))
	}

	s := New(WithClock(fixedClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))),
		WithJobs(Job{Path: "folder/app", Params: []Param{{Name: "V"}}}, Job{Path: "plain"}))
	defer s.Close()
	s.SeedBuild("folder/app", map[string]string{"V": "done"}, Success)
	for _, ep := range eps {
		key := ep.Key()
		mk, ok := endpointRequests[key]
		if !ok {
			t.Errorf("no request for the documented %s", key)
			continue
		}
		path := mk(t, s)
		resp := do(t, s, ep.Method, path)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		ctype, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		if ctype == "" {
			ctype = "-"
		}
		if resp.StatusCode != ep.Status || ctype != ep.ContentType || resp.Header.Get("X-Jenkins") != Version {
			t.Errorf("%s (%s): %d %s X-Jenkins %q, documented %d %s; body %s", key, path, resp.StatusCode, ctype,
				resp.Header.Get("X-Jenkins"), ep.Status, ep.ContentType, b)
		}
	}
}
