package simkit_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cessda/runbook/steps/simkit"
)

// a tiny simulator: POST /items/{id} creates, GET /items/{id} reads.
func newSim(t *testing.T) (*simkit.Kit, *httptest.Server, *atomic.Int32) {
	t.Helper()
	var created atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("POST /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		created.Add(1)
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"id":"`+r.PathValue("id")+`"}`)
	})
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"id":"`+r.PathValue("id")+`"}`)
	})
	kit := simkit.New(simkit.WithUser(func(r *http.Request) string { return r.Header.Get("X-User") }))
	srv := httptest.NewServer(kit.Wrap(mux))
	t.Cleanup(srv.Close)
	return kit, srv, &created
}

func do(t *testing.T, method, url string) (int, string, error) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader("{}"))
	req.Header.Set("X-User", "alice")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), nil
}

func TestLogCountsWritesAndPatterns(t *testing.T) {
	kit, srv, _ := newSim(t)
	for _, m := range []string{"POST", "GET", "GET", "POST"} {
		if _, _, err := do(t, m, srv.URL+"/items/a%2Fb"); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := do(t, "DELETE", srv.URL+"/items/x"); err != nil { // 405 from the mux: not a write that took effect
		t.Fatal(err)
	}
	if got := kit.Writes(); got != 2 {
		t.Errorf("writes %d, want 2", got)
	}
	if got := kit.Count("GET /items/{id}"); got != 2 {
		t.Errorf("GET count %d, want 2", got)
	}
	if got := kit.Count("/items/"); got != 5 {
		t.Errorf("subtree count %d, want 5", got)
	}
	ex := kit.Requests()
	if ex[0].Path != "/items/a%2Fb" || ex[0].User != "alice" || ex[0].Status != 201 || ex[0].BodyLen != 2 {
		t.Errorf("first exchange %+v", ex[0])
	}
	kit.Reset()
	if len(kit.Requests()) != 0 {
		t.Error("reset kept the log")
	}
}

func TestFaultAnswersInsteadForTimes(t *testing.T) {
	kit, srv, created := newSim(t)
	kit.Inject(simkit.Fault{Method: "POST", Path: "/items/{id}", Status: 502, Body: "bad gateway", Times: 2})
	for i, want := range []int{502, 502, 201} {
		st, body, err := do(t, "POST", srv.URL+"/items/a")
		if err != nil || st != want {
			t.Fatalf("request %d: %d %q %v, want %d", i, st, body, err, want)
		}
	}
	if created.Load() != 1 {
		t.Errorf("created %d times, want 1: a fault that answers instead takes no effect", created.Load())
	}
	if st, _, _ := do(t, "GET", srv.URL+"/items/a"); st != 200 {
		t.Errorf("GET hit by a POST fault: %d", st)
	}
	ex := kit.Requests()
	if !ex[0].Fault || ex[0].Status != 502 || ex[2].Fault {
		t.Errorf("log %+v", ex)
	}
}

func TestFaultAfterLosesTheAnswer(t *testing.T) {
	kit, srv, created := newSim(t)
	kit.Inject(simkit.Fault{Path: "POST /items/{id}", After: true, Drop: true, Times: 1})
	if _, _, err := do(t, "POST", srv.URL+"/items/a"); err == nil {
		t.Fatal("dropped answer arrived")
	}
	if created.Load() != 1 {
		t.Errorf("created %d, want 1: the change is made, only the answer is lost", created.Load())
	}
	if ex := kit.Requests(); len(ex) != 1 || ex[0].Status != 0 || !ex[0].Fault {
		t.Errorf("log %+v", ex)
	}
}

func TestObserveSeesBothBodies(t *testing.T) {
	kit, srv, _ := newSim(t)
	var seen []simkit.Observed
	kit.Observe(func(o simkit.Observed) { seen = append(seen, o) })
	if _, _, err := do(t, "POST", srv.URL+"/items/z"); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || string(seen[0].RequestBody) != "{}" || string(seen[0].ResponseBody) != `{"id":"z"}` || seen[0].Status != 201 {
		t.Fatalf("observed %+v", seen)
	}
}
