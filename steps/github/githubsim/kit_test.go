package githubsim_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cessda/runbook/steps/github/githubsim"
	"github.com/cessda/runbook/steps/simkit"
	"github.com/google/go-github/v60/github"
)

// call makes one request to sim as token ("" for none) and returns the status, body and headers.
func call(t *testing.T, sim *githubsim.Server, method, path, token, body string, header ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, strings.TrimSuffix(sim.URL(), "/")+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	// No redirects followed: an answer the simulator gives is the answer seen.
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	rsp, err := c.Do(req)
	if err != nil {
		return 0, err.Error(), nil
	}
	defer rsp.Body.Close()
	b, _ := io.ReadAll(rsp.Body)
	return rsp.StatusCode, string(b), rsp.Header
}

// TestObserve: a checker sees every exchange with both bodies and the route that answered.
func TestObserve(t *testing.T) {
	sim := githubsim.New()
	t.Cleanup(sim.Close)
	sim.CreateRepo("o/r", nil)
	var mu sync.Mutex
	var seen []simkit.Observed
	sim.Observe(func(o simkit.Observed) {
		mu.Lock()
		seen = append(seen, o)
		mu.Unlock()
	})
	if _, _, err := client(t, sim, "tok").Issues.Create(context.Background(), "o", "r", &github.IssueRequest{Title: github.String("Release 1.0.0")}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 {
		t.Fatalf("observed %d exchanges, want 1", len(seen))
	}
	o := seen[0]
	if o.Method != "POST" || o.Path != "/repos/o/r/issues" || o.Status != 201 || o.Request.Pattern != "POST /repos/{owner}/{repo}/issues" ||
		!strings.Contains(string(o.RequestBody), `"title":"Release 1.0.0"`) || !strings.Contains(string(o.ResponseBody), `"number":1`) ||
		o.ResponseHeader.Get("X-RateLimit-Remaining") != "4999" {
		t.Errorf("observed %s %s %d pattern %q\nrequest %s\nresponse %s %v", o.Method, o.Path, o.Status, o.Request.Pattern, o.RequestBody, o.ResponseBody, o.ResponseHeader)
	}
}

// TestFaultPaths: a fault's glob matches whole segments, "/*" at the end a subtree, and a
// ServeMux pattern takes a slash-containing ref.
func TestFaultPaths(t *testing.T) {
	sim := githubsim.New()
	t.Cleanup(sim.Close)
	sim.CreateRepo("o/r", nil)
	head := sim.Head("o/r", "")
	sim.Inject(githubsim.Fault{Kind: githubsim.ServerError, Path: "/repos/*/*/releases", Status: 503})
	if st, _, _ := call(t, sim, "GET", "/repos/o/r/releases", "tok", ""); st != 503 {
		t.Errorf("glob: %d, want 503", st)
	}
	if st, _, _ := call(t, sim, "GET", "/repos/o/r/releases/1", "tok", ""); st != 404 {
		t.Errorf("a segment glob broke the path below it: %d, want 404", st)
	}
	sim.ClearFaults()
	sim.Inject(githubsim.Fault{Kind: githubsim.TooMany, Method: "GET", Path: "/repos/*", Times: 1})
	if st, _, h := call(t, sim, "GET", "/repos/o/r/git/ref/heads/main", "tok", ""); st != 429 || h.Get("Retry-After") != "30" {
		t.Errorf("subtree: %d %v, want 429 with Retry-After", st, h)
	}
	if st, _, _ := call(t, sim, "GET", "/repos/o/r/git/ref/heads/main", "tok", ""); st != 200 {
		t.Errorf("spent fault still answers: %d", st)
	}
	sim.Inject(githubsim.Fault{Kind: githubsim.SecondaryLimit, Method: "POST", Path: "/repos/{owner}/{repo}/git/refs", Times: 1})
	st, body, h := call(t, sim, "POST", "/repos/o/r/git/refs", "tok", `{"ref":"refs/tags/1.0.0","sha":"`+head+`"}`)
	if st != 403 || h.Get("Retry-After") != "60" || !strings.Contains(body, "secondary rate limit") || h.Get("X-RateLimit-Remaining") == "" {
		t.Errorf("secondary limit: %d %s %v", st, body, h)
	}
	if _, _, ok := sim.TagInfo("o/r", "1.0.0"); ok {
		t.Error("a fault that answers instead let the write happen")
	}
	defer func() {
		if recover() == nil {
			t.Error("a glob inside a segment was taken")
		}
	}()
	sim.Inject(githubsim.Fault{Path: "/repos/o/r*"})
}

// TestCostAndWrites: what a request costs of the rate limit, and which writes count.
func TestCostAndWrites(t *testing.T) {
	clock := &fixedClock{t: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	sim := githubsim.New(githubsim.WithToken("tok"), githubsim.WithClock(clock))
	t.Cleanup(sim.Close)
	sim.CreateRepo("o/r", nil)
	_, _, h := call(t, sim, "GET", "/repos/o/r", "tok", "")
	call(t, sim, "GET", "/repos/o/r", "tok", "", "If-None-Match", h.Get("ETag"))
	call(t, sim, "GET", "/rate_limit", "tok", "")
	call(t, sim, "GET", "/repos/o/r", "bad", "")
	call(t, sim, "GET", "/o/r/raw/main/README.md", "", "")
	sim.Inject(githubsim.Fault{Kind: githubsim.ServerError, Times: 1})
	call(t, sim, "GET", "/repos/o/r", "tok", "")
	call(t, sim, "GET", "/repos/o/r/nope", "tok", "")
	var got []string
	for _, r := range sim.Requests() {
		got = append(got, r.Method+" "+r.Path+" "+strconv.Itoa(r.Status)+" "+strconv.Itoa(r.Cost))
		if !r.Time.Equal(clock.t) {
			t.Errorf("%s %s at %v, want the server's clock", r.Method, r.Path, r.Time)
		}
	}
	want := []string{"GET /repos/o/r 200 1", "GET /repos/o/r 304 0", "GET /rate_limit 200 0", "GET /repos/o/r 401 0",
		"GET /o/r/raw/main/README.md 200 0", "GET /repos/o/r 502 0", "GET /repos/o/r/nope 404 1"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, remaining, _ := sim.RateLimit(); remaining != 5000-2 {
		t.Errorf("remaining %d, want %d", remaining, 5000-2)
	}

	sim.ResetRequests()
	sim.Inject(githubsim.Fault{Kind: githubsim.Drop, Method: "POST", Times: 1})
	body := `{"title":"t"}`
	call(t, sim, "POST", "/repos/o/r/issues", "tok", body)
	call(t, sim, "POST", "/repos/o/r/issues", "tok", body)
	call(t, sim, "PATCH", "/repos/o/r/issues/9", "tok", body)
	if n, issues := sim.WriteCount(), len(sim.Issues("o/r")); n != 1 || issues != 1 || len(sim.Requests()) != 3 {
		t.Errorf("%d writes counted, %d issues, %d requests: want 1 (the dropped write did nothing, the 404 is no write), 1, 3", n, issues, len(sim.Requests()))
	}
}

type fixedClock struct{ t time.Time }

func (c *fixedClock) Now() time.Time { return c.t }

// TestRoutes: refs, branches and file paths with slashes reach their operation, and a
// path the simulator does not speak is GitHub's JSON 404, never a 405 or a redirect.
func TestRoutes(t *testing.T) {
	sim := githubsim.New()
	t.Cleanup(sim.Close)
	sim.CreateRepo("o/r", nil)
	feature := sim.Commit("o/r", "feature/x", "on a branch", map[string]string{"docs/sub/a.md": "A\n"})
	head := sim.Head("o/r", "")
	for _, tc := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"POST", "/repos/o/r/git/refs", `{"ref":"refs/tags/v/1.2.3","sha":"` + head + `"}`, 201, `"ref":"refs/tags/v/1.2.3"`},
		{"GET", "/repos/o/r/git/ref/tags/v/1.2.3", "", 200, head},
		{"GET", "/repos/o/r/git/ref/heads/feature/x", "", 200, feature},
		{"GET", "/repos/o/r/branches/feature/x", "", 200, `"name":"feature/x"`},
		{"GET", "/repos/o/r/commits/feature/x", "", 200, feature},
		{"GET", "/repos/o/r/contents/docs/sub/a.md?ref=feature/x", "", 200, `"path":"docs/sub/a.md"`},
		{"GET", "/repos/o/r/contents/docs%2Fsub%2Fa.md?ref=feature%2Fx", "", 200, `"path":"docs/sub/a.md"`},
		{"PATCH", "/repos/o/r/git/refs/heads/feature/x", `{"sha":"` + head + `","force":true}`, 200, head},
		{"DELETE", "/repos/o/r/issues/1", "", 404, `"message":"Not Found"`},
		{"GET", "/repos/o/r/contents", "", 404, `"message":"Not Found"`},
		{"GET", "/repos/o/r/releases/tags", "", 404, `"message":"Not Found"`},
		{"GET", "/repos/o/r/issues/1/labels", "", 404, `"message":"Not Found"`},
		{"GET", "/repos/o/raw/main/README.md", "", 404, `"message":"Not Found"`}, // the API's, not a download
		{"GET", "/o/r/raw/main", "", 404, `"message":"Not Found"`},
		{"GET", "/nope", "", 404, `"message":"Not Found"`},
	} {
		st, body, _ := call(t, sim, tc.method, tc.path, "tok", tc.body)
		if st != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%s %s: %d %s, want %d with %s", tc.method, tc.path, st, body, tc.status, tc.want)
		}
	}
}

// TestFaultAfterLosesTheAnswer: an After fault lets the write happen and loses its answer,
// the case a client that retries a create must survive.
func TestFaultAfterLosesTheAnswer(t *testing.T) {
	sim := githubsim.New()
	t.Cleanup(sim.Close)
	sim.CreateRepo("o/r", nil)
	head := sim.Head("o/r", "")
	sim.Inject(githubsim.Fault{Kind: githubsim.Drop, Method: "POST", Path: "/repos/*/*/git/refs", After: true, Times: 1})
	if st, body, _ := call(t, sim, "POST", "/repos/o/r/git/refs", "tok", `{"ref":"refs/tags/1.0.0","sha":"`+head+`"}`); st != 0 {
		t.Fatalf("the answer arrived: %d %s", st, body)
	}
	if sha, _, ok := sim.TagInfo("o/r", "1.0.0"); !ok || sha != head {
		t.Errorf("tag after a lost answer: %q %v, want it made at %s", sha, ok, head)
	}
	sim.Inject(githubsim.Fault{Kind: githubsim.ServerError, Status: 502, Method: "POST", Path: "/repos/*/*/issues", After: true, Times: 1})
	if st, _, _ := call(t, sim, "POST", "/repos/o/r/issues", "tok", `{"title":"Release 1.0.0"}`); st != 502 {
		t.Errorf("replaced answer: %d, want 502", st)
	}
	if n := len(sim.Issues("o/r")); n != 1 {
		t.Errorf("%d issues after a 502 that came after the write, want 1", n)
	}
}
