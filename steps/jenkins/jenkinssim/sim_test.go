package jenkinssim_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cessda/runbook/steps/jenkins/jenkinssim"
)

// manualClock is moved by the test only.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type client struct {
	t    *testing.T
	base string
	hc   *http.Client
	user string
	tok  string
}

func newClient(t *testing.T, s *jenkinssim.Server) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: s.URL(), user: "admin", tok: "tok",
		hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *client) do(method, path string, hdr map[string]string) (*http.Response, string) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+path, nil)
	if c.user != "" {
		req.SetBasicAuth(c.user, c.tok)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func (c *client) json(path string) map[string]any {
	c.t.Helper()
	resp, body := c.do("GET", path, nil)
	if resp.StatusCode != 200 {
		c.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
	return m
}

func start(t *testing.T, opts ...jenkinssim.Option) (*jenkinssim.Server, *manualClock, *client) {
	clk := &manualClock{t: time.Date(2026, 5, 26, 13, 0, 0, 0, time.UTC)}
	s := jenkinssim.New(append([]jenkinssim.Option{jenkinssim.WithClock(clk), jenkinssim.WithUser("admin", "tok")}, opts...)...)
	t.Cleanup(s.Close)
	return s, clk, newClient(t, s)
}

var deployJob = jenkinssim.Job{
	Path:   "cessda.cdc.deploy/main",
	Params: []jenkinssim.Param{{Name: "tag", Default: "main-latest"}, {Name: "deployApp", Type: "boolean", Default: "true"}},
	Script: func(b *jenkinssim.Build) {
		b.Logf("deploying %s", b.Param("tag"))
		b.Sleep(10 * time.Second)
		b.Write([]byte("partial"))
		b.Sleep(10 * time.Second)
		b.Write([]byte(" line\n"))
		if b.Param("tag") == "bad" {
			b.SetResult(jenkinssim.Failure)
		}
	},
}

func TestTriggerQueueBuildLifecycle(t *testing.T) {
	s, clk, c := start(t, jenkinssim.WithJobs(deployJob))
	resp, _ := c.do("POST", "/job/cessda.cdc.deploy/job/main/buildWithParameters?tag=main-9", nil)
	if resp.StatusCode != 201 || resp.Header.Get("Location") != "/queue/item/1/" || resp.Header.Get("X-Jenkins") == "" {
		t.Fatalf("trigger: %d %v", resp.StatusCode, resp.Header)
	}
	// an identical request merges into the waiting item
	resp, _ = c.do("POST", "/job/cessda.cdc.deploy/job/main/buildWithParameters?tag=main-9", nil)
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/queue/item/1/" {
		t.Fatalf("merge: %d %v", resp.StatusCode, resp.Header)
	}
	q := c.json("/queue/item/1/api/json")
	if q["_class"] != "hudson.model.Queue$WaitingItem" || !strings.HasPrefix(q["why"].(string), "In the quiet period") || q["executable"] != nil {
		t.Fatalf("waiting item: %v", q)
	}
	clk.Advance(5 * time.Second)
	q = c.json("/queue/item/1/api/json")
	ex, _ := q["executable"].(map[string]any)
	if q["_class"] != "hudson.model.Queue$LeftItem" || q["why"] != nil || ex["number"] != 1.0 || ex["url"] != s.URL()+"/job/cessda.cdc.deploy/job/main/1/" {
		t.Fatalf("left item: %v", q)
	}
	b := c.json("/job/cessda.cdc.deploy/job/main/1/api/json")
	if b["building"] != true || b["result"] != nil || b["duration"] != 0.0 || b["queueId"] != 1.0 {
		t.Fatalf("running build: %v", b)
	}
	// progressive console: only complete lines while running, X-More-Data while running
	resp, body := c.do("GET", "/job/cessda.cdc.deploy/job/main/1/logText/progressiveText?start=0", nil)
	if body != "Started by user admin\ndeploying main-9\n" || resp.Header.Get("X-More-Data") != "true" || resp.Header.Get("X-Text-Size") != "39" {
		t.Fatalf("console 1: %q %v", body, resp.Header)
	}
	clk.Advance(15 * time.Second) // "partial" written, no newline yet
	resp, body = c.do("GET", "/job/cessda.cdc.deploy/job/main/1/logText/progressiveText?start=39", nil)
	if body != "" || resp.Header.Get("X-Text-Size") != "39" || resp.Header.Get("X-More-Data") != "true" {
		t.Fatalf("console 2: %q %v", body, resp.Header)
	}
	clk.Advance(10 * time.Second)
	resp, body = c.do("GET", "/job/cessda.cdc.deploy/job/main/1/logText/progressiveText?start=39", nil)
	if body != "partial line\nFinished: SUCCESS\n" || resp.Header.Get("X-More-Data") != "" {
		t.Fatalf("console 3: %q %v", body, resp.Header)
	}
	b = c.json("/job/cessda.cdc.deploy/job/main/lastBuild/api/json")
	if b["building"] != false || b["result"] != "SUCCESS" || b["duration"] != 20000.0 {
		t.Fatalf("finished build: %v", b)
	}
	params := b["actions"].([]any)[0].(map[string]any)["parameters"].([]any)
	if len(params) != 2 || params[1].(map[string]any)["value"] != true {
		t.Fatalf("parameters: %v", params)
	}
	// left items expire after five minutes
	clk.Advance(5*time.Minute + time.Second)
	if resp, _ := c.do("GET", "/queue/item/1/api/json", nil); resp.StatusCode != 404 {
		t.Fatalf("expired item: %d", resp.StatusCode)
	}
	if s.Triggers("cessda.cdc.deploy/main") != 2 || len(s.Builds("cessda.cdc.deploy/main")) != 1 {
		t.Fatalf("triggers %d builds %d", s.Triggers("cessda.cdc.deploy/main"), len(s.Builds("cessda.cdc.deploy/main")))
	}
}

func TestErrorsAsTheRealServer(t *testing.T) {
	_, _, c := start(t, jenkinssim.WithJobs(deployJob,
		jenkinssim.Job{Path: "plain"}, jenkinssim.Job{Path: "off", Disabled: true}))
	for _, tc := range []struct {
		method, path string
		status       int
		body         string
	}{
		{"POST", "/job/nope/build", 404, ""},
		{"POST", "/job/cessda.cdc.deploy/job/nope/buildWithParameters", 404, ""},
		{"GET", "/job/cessda.cdc.deploy/job/main/buildWithParameters", 405, ""},
		{"POST", "/job/plain/buildWithParameters?x=1", 500, "This build is not parameterized!"},
		{"POST", "/job/cessda.cdc.deploy/job/main/build", 400, ""},
		{"POST", "/job/off/build", 409, "off is not buildable!"},
		{"POST", "/job/plain/build", 201, ""},
		{"GET", "/job/plain/7/api/json", 404, ""},
		{"GET", "/job/plain/lastSuccessfulBuild/api/json", 404, ""},
		{"GET", "/queue/item/99/api/json", 404, ""},
	} {
		resp, body := c.do(tc.method, tc.path, nil)
		if resp.StatusCode != tc.status || !strings.Contains(body, tc.body) {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.path, resp.StatusCode, body, tc.status, tc.body)
		}
		if tc.status == 405 && resp.Header.Get("Allow") != "POST" {
			t.Errorf("405 without Allow: POST")
		}
	}
}

func TestAuth(t *testing.T) {
	s, _, c := start(t, jenkinssim.WithJobs(deployJob), jenkinssim.WithUsers(jenkinssim.User{Name: "viewer", Token: "v", ReadOnly: true}))
	c.tok = "wrong"
	if resp, body := c.do("GET", "/api/json", nil); resp.StatusCode != 401 || !strings.Contains(body, "Invalid password/token for user: admin") {
		t.Errorf("bad token: %d %q", resp.StatusCode, body)
	}
	c.user = ""
	if resp, _ := c.do("GET", "/api/json", nil); resp.StatusCode != 403 {
		t.Errorf("anonymous: %d", resp.StatusCode)
	}
	c.user, c.tok = "viewer", "v"
	if resp, _ := c.do("POST", "/job/cessda.cdc.deploy/job/main/buildWithParameters", nil); resp.StatusCode != 403 {
		t.Errorf("read-only build: %d", resp.StatusCode)
	}
	for _, r := range s.Requests() {
		if r.Status == 0 {
			t.Errorf("unrecorded status: %+v", r)
		}
	}
	// anonymous read
	_, _, a := start(t, jenkinssim.WithAnonymousRead(), jenkinssim.WithJobs(deployJob))
	a.user = ""
	if resp, _ := a.do("GET", "/job/cessda.cdc.deploy/api/json", nil); resp.StatusCode != 200 {
		t.Errorf("anonymous read: %d", resp.StatusCode)
	}
	if resp, _ := a.do("POST", "/job/cessda.cdc.deploy/job/main/buildWithParameters", nil); resp.StatusCode != 403 {
		t.Errorf("anonymous build: %d", resp.StatusCode)
	}
}

func TestCrumbs(t *testing.T) {
	_, _, c := start(t, jenkinssim.WithCrumbs(jenkinssim.CrumbsRequired), jenkinssim.WithJobs(deployJob))
	post := func(h map[string]string) int {
		resp, _ := c.do("POST", "/job/cessda.cdc.deploy/job/main/buildWithParameters?tag=x", h)
		return resp.StatusCode
	}
	if st := post(nil); st != 403 {
		t.Errorf("no crumb: %d", st)
	}
	cr := c.json("/crumbIssuer/api/json")
	if cr["crumbRequestField"] != "Jenkins-Crumb" || cr["_class"] != "hudson.security.csrf.DefaultCrumbIssuer" {
		t.Fatalf("crumb: %v", cr)
	}
	h := map[string]string{"Jenkins-Crumb": cr["crumb"].(string)}
	if st := post(h); st != 201 {
		t.Errorf("with crumb: %d", st)
	}
	// the crumb is bound to the session: without the cookie it is refused
	c.hc.Jar, _ = cookiejar.New(nil)
	if st := post(h); st != 403 {
		t.Errorf("crumb from another session: %d", st)
	}
	// default mode: API-token requests skip the check; CSRF off: no issuer
	_, _, d := start(t, jenkinssim.WithJobs(deployJob))
	if resp, _ := d.do("POST", "/job/cessda.cdc.deploy/job/main/buildWithParameters", nil); resp.StatusCode != 201 {
		t.Errorf("token request in the default mode: %d", resp.StatusCode)
	}
	_, _, o := start(t, jenkinssim.WithCrumbs(jenkinssim.CrumbsOff))
	if resp, _ := o.do("GET", "/crumbIssuer/api/json", nil); resp.StatusCode != 404 {
		t.Errorf("crumb issuer with CSRF off: %d", resp.StatusCode)
	}
}

func TestTreeFoldersAndQueue(t *testing.T) {
	s, clk, c := start(t, jenkinssim.WithJobs(deployJob))
	for _, tag := range []string{"a", "b", "bad"} {
		c.do("POST", "/job/cessda.cdc.deploy/job/main/buildWithParameters?tag="+tag+"&delay=0sec", nil)
	}
	clk.Advance(time.Minute)
	j := c.json("/job/cessda.cdc.deploy/job/main/api/json?tree=" + url.QueryEscape("builds[number,result,actions[parameters[name,value]]]{0,2}"))
	bs := j["builds"].([]any)
	if len(bs) != 2 || bs[0].(map[string]any)["number"] != 3.0 || bs[0].(map[string]any)["result"] != "FAILURE" || j["name"] != nil {
		t.Fatalf("pruned job: %v", j)
	}
	if _, has := bs[0].(map[string]any)["url"]; has {
		t.Errorf("tree not applied: %v", bs[0])
	}
	f := c.json("/job/cessda.cdc.deploy/api/json")
	if f["_class"] != "com.cloudbees.hudson.plugins.folder.Folder" || len(f["jobs"].([]any)) != 1 {
		t.Errorf("folder: %v", f)
	}
	// queue listing and cancellation
	c.do("POST", "/job/cessda.cdc.deploy/job/main/buildWithParameters?tag=z", nil)
	qs := c.json("/queue/api/json")["items"].([]any)
	if len(qs) != 1 {
		t.Fatalf("queue: %v", qs)
	}
	id := qs[0].(map[string]any)["id"].(float64)
	if resp, _ := c.do("POST", "/queue/cancelItem?id=4", nil); resp.StatusCode != 204 || id != 4 {
		t.Fatalf("cancel: %d (id %v)", resp.StatusCode, id)
	}
	q := c.json("/queue/item/4/api/json")
	if q["cancelled"] != true || q["executable"] != nil {
		t.Errorf("cancelled item: %v", q)
	}
	clk.Advance(time.Minute)
	if n := len(s.Builds("cessda.cdc.deploy/main")); n != 3 {
		t.Errorf("a cancelled item built: %d builds", n)
	}
}

func TestAutoCreateAndFaults(t *testing.T) {
	s, clk, c := start(t, jenkinssim.WithAutoCreate())
	if resp, _ := c.do("GET", "/job/cessda.eqb.rollback/api/json", nil); resp.StatusCode != 200 {
		t.Errorf("auto-created read: %d", resp.StatusCode)
	}
	resp, _ := c.do("POST", "/job/cessda.eqb.rollback/buildWithParameters?version=1.2.0", nil)
	if resp.StatusCode != 201 {
		t.Fatalf("auto-create trigger: %d", resp.StatusCode)
	}
	clk.Advance(time.Minute)
	bs := s.Builds("cessda.eqb.rollback")
	if len(bs) != 1 || bs[0].Result != "SUCCESS" || bs[0].Params["version"] != "1.2.0" {
		t.Fatalf("auto-created build: %+v", bs)
	}
	s.Inject(jenkinssim.Fault{Path: "/job/", Status: 503, Times: 2})
	for i, want := range []int{503, 503, 200} {
		if resp, _ := c.do("GET", "/job/cessda.eqb.rollback/api/json", nil); resp.StatusCode != want {
			t.Errorf("request %d: %d, want %d", i, resp.StatusCode, want)
		}
	}
	s.Inject(jenkinssim.Fault{Path: "/api/json", Drop: true, Times: 1})
	req, _ := http.NewRequest("GET", s.URL()+"/api/json", nil)
	req.SetBasicAuth("admin", "tok")
	if _, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req); err == nil {
		t.Error("dropped connection answered")
	}
	s.Inject(jenkinssim.Fault{Path: "/api/json", Delay: 20 * time.Millisecond, Times: 1})
	t0 := time.Now()
	c.do("GET", "/api/json", nil)
	if time.Since(t0) < 20*time.Millisecond {
		t.Error("slow answer was not slow")
	}
	var faulted int
	for _, r := range s.Requests() {
		if r.Fault {
			faulted++
		}
	}
	if faulted != 4 {
		t.Errorf("faulted requests recorded: %d", faulted)
	}
}

func TestDefaultClockRunsFast(t *testing.T) {
	// without WithClock, a simulated second is a real millisecond
	s := jenkinssim.New(jenkinssim.WithAutoCreate())
	defer s.Close()
	c := newClient(t, s)
	c.user, c.tok = jenkinssim.DefaultUser, jenkinssim.DefaultToken
	if resp, _ := c.do("POST", "/job/backup/build", nil); resp.StatusCode != 201 {
		t.Fatal(resp.StatusCode)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if bs := s.Builds("backup"); len(bs) == 1 && !bs[0].Building {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("the build did not finish within 5s of real time")
}

func TestAbortAndScriptPanic(t *testing.T) {
	s, clk, c := start(t, jenkinssim.WithJobs(
		jenkinssim.Job{Path: "long", QuietPeriod: -1, Script: func(b *jenkinssim.Build) { b.Sleep(time.Hour) }},
		jenkinssim.Job{Path: "boom", QuietPeriod: -1, Script: func(b *jenkinssim.Build) { panic("bad script") }}))
	c.do("POST", "/job/long/build", nil)
	c.do("POST", "/job/boom/build", nil)
	if resp, _ := c.do("POST", "/job/long/1/stop", nil); resp.StatusCode != 302 {
		t.Errorf("stop: %d", resp.StatusCode)
	}
	clk.Advance(time.Second)
	if b, _ := s.Build("long", 1); b.Result != "ABORTED" || !strings.Contains(b.Log, "Aborted by admin") {
		t.Errorf("aborted build: %+v", b)
	}
	if b, _ := s.Build("boom", 1); b.Result != "FAILURE" {
		t.Errorf("panicking script: %+v", b)
	}
}

func TestCommitBuildsCarryBuildDataAndCause(t *testing.T) {
	const (
		job    = "cessda.cvs.two/main"
		sha    = "9ae2e6ec0f5b5d3c2a4e8d1b7f6a0c9e8d7b6a51"
		lib    = "1234abcd1234abcd1234abcd1234abcd1234abcd"
		remote = "https://github.com/cessda/cessda.cvs.two.git"
	)
	var pushed []string
	s, clk, c := start(t, jenkinssim.WithJobs(jenkinssim.Job{Path: job, Script: func(b *jenkinssim.Build) {
		if b.Revision() != "" {
			b.AddBuildData(lib, "https://github.com/cessda/cessda.jenkins.library.git") // the shared library
		}
		b.Sleep(10 * time.Second)
		pushed = append(pushed, fmt.Sprintf("main-%d@%s", b.Number(), b.Revision()))
	}}))
	n := s.BuildCommit(job, sha, remote)
	if n != 1 {
		t.Fatalf("build number %d", n)
	}
	// a person starts another build of the job by hand
	if resp, _ := c.do("POST", "/job/cessda.cvs.two/job/main/build?delay=0sec", nil); resp.StatusCode != 201 {
		t.Fatalf("trigger: %d", resp.StatusCode)
	}
	done := s.SeedCommitBuild(job, "00000000000000000000000000000000000000aa", remote, jenkinssim.Failure)
	clk.Advance(time.Minute)
	s.Builds(job) // let the scripts run
	if len(pushed) != 2 || pushed[0] != "main-1@"+sha || pushed[1] != "main-2@" {
		t.Fatalf("scripts saw %v", pushed)
	}

	tree := "builds[number,result,building,timestamp,actions[lastBuiltRevision[SHA1],remoteUrls,parameters[name,value],causes[shortDescription,userId]]]{0,20}"
	j := c.json("/job/cessda.cvs.two/job/main/api/json?tree=" + url.QueryEscape(tree))
	var got []string
	for _, b := range j["builds"].([]any) {
		bm := b.(map[string]any)
		if _, has := bm["url"]; has {
			t.Errorf("tree not applied: %v", bm)
		}
		line := fmt.Sprintf("#%v %v", bm["number"], bm["result"])
		for _, a := range bm["actions"].([]any) {
			am := a.(map[string]any)
			if r, ok := am["lastBuiltRevision"].(map[string]any); ok {
				if _, has := r["branch"]; has {
					t.Errorf("branch kept though the tree asks only for SHA1: %v", r)
				}
				line += fmt.Sprintf(" rev=%v@%v", r["SHA1"], am["remoteUrls"].([]any)[0])
			}
			for _, cs := range asList(am["causes"]) {
				cm := cs.(map[string]any)
				line += fmt.Sprintf(" cause=%q/%v", cm["shortDescription"], cm["userId"])
			}
		}
		got = append(got, line)
	}
	want := []string{
		`#3 FAILURE cause="Push event to branch main"/<nil> rev=00000000000000000000000000000000000000aa@` + remote,
		`#2 SUCCESS cause="Started by user admin"/admin`,
		`#1 SUCCESS cause="Push event to branch main"/<nil> rev=` + sha + "@" + remote + " rev=" + lib + "@https://github.com/cessda/cessda.jenkins.library.git",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("builds:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if done != 3 {
		t.Errorf("seeded build number %d", done)
	}

	// the whole action, as the Git plugin writes it
	b := c.json("/job/cessda.cvs.two/job/main/1/api/json")
	var data map[string]any
	for _, a := range b["actions"].([]any) {
		if am := a.(map[string]any); am["_class"] == "hudson.plugins.git.util.BuildData" {
			data = am
			break
		}
	}
	br := data["lastBuiltRevision"].(map[string]any)["branch"].([]any)[0].(map[string]any)
	if br["SHA1"] != sha || br["name"] != "refs/remotes/origin/main" || data["remoteUrls"].([]any)[0] != remote {
		t.Errorf("BuildData: %v", data)
	}
	if bi, _ := s.Build(job, 1); bi.Revision != sha || bi.Cause != "Push event to branch main" || !strings.HasPrefix(bi.Log, "Push event to branch main\n") {
		t.Errorf("build info: %+v", bi)
	}
	// a missing job is created by the push
	if n := s.BuildCommit("cessda.cvs.gui/main", sha, "https://github.com/cessda/cessda.cvs.gui.git"); n != 1 {
		t.Errorf("auto-created job's build %d", n)
	}
}

func TestRunParameter(t *testing.T) {
	s, _, c := start(t, jenkinssim.WithJobs(deployJob), jenkinssim.WithRunParameter("RUNBOOK_RUN"), jenkinssim.WithAutoCreate())
	for _, path := range []string{"/job/cessda.cdc.deploy/job/main/api/json", "/job/cessda.cdc.es.backup/api/json"} {
		var names []string
		for _, p := range c.json(path)["property"].([]any) {
			for _, d := range p.(map[string]any)["parameterDefinitions"].([]any) {
				names = append(names, d.(map[string]any)["name"].(string))
			}
		}
		if len(names) == 0 || names[len(names)-1] != "RUNBOOK_RUN" {
			t.Errorf("%s: parameters %v", path, names)
		}
	}
	if resp, _ := c.do("POST", "/job/cessda.cdc.es.backup/buildWithParameters?RUNBOOK_RUN=r1/backup&delay=0sec", nil); resp.StatusCode != 201 {
		t.Fatalf("trigger: %d", resp.StatusCode)
	}
	if bs := s.Builds("cessda.cdc.es.backup"); len(bs) != 1 || bs[0].Params["RUNBOOK_RUN"] != "r1/backup" {
		t.Errorf("builds %+v", bs)
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// whoAmI names the user (a wrong token is 401 before it), and parameter definitions are
// under property, or under actions as older Jenkins shows them.
func TestWhoAmIAndParameterDefinitions(t *testing.T) {
	_, _, c := start(t, jenkinssim.WithJobs(deployJob))
	if w := c.json("/whoAmI/api/json"); w["name"] != "admin" || w["authenticated"] != true || w["anonymous"] != false {
		t.Errorf("whoAmI = %v", w)
	}
	c.tok = "wrong"
	if resp, _ := c.do("GET", "/whoAmI/api/json", nil); resp.StatusCode != 401 {
		t.Errorf("whoAmI with a wrong token: %d", resp.StatusCode)
	}
	names := func(holders any) []string {
		var out []string
		l, _ := holders.([]any)
		for _, h := range l {
			defs, _ := h.(map[string]any)["parameterDefinitions"].([]any)
			for _, d := range defs {
				out = append(out, d.(map[string]any)["name"].(string))
			}
		}
		return out
	}
	const tree = "?tree=property[parameterDefinitions[name]],actions[parameterDefinitions[name]]"
	for _, tc := range []struct {
		opts              []jenkinssim.Option
		property, actions string
	}{
		{nil, "[tag deployApp]", "[]"},
		{[]jenkinssim.Option{jenkinssim.WithParamsInActions()}, "[]", "[tag deployApp]"},
	} {
		_, _, c := start(t, append(tc.opts, jenkinssim.WithJobs(deployJob))...)
		j := c.json("/job/cessda.cdc.deploy/job/main/api/json" + tree)
		if p, a := fmt.Sprint(names(j["property"])), fmt.Sprint(names(j["actions"])); p != tc.property || a != tc.actions {
			t.Errorf("property %s actions %s, want %s %s", p, a, tc.property, tc.actions)
		}
	}
}

// A fault's Path is a path and everything under it, in whole segments.
func TestFaultPathIsASubtree(t *testing.T) {
	s := jenkinssim.New()
	defer s.Close()
	s.Inject(jenkinssim.Fault{Path: "/whoAmI", Status: http.StatusForbidden, Body: "Access Denied", Times: 2})
	s.Inject(jenkinssim.Fault{Path: "/queue/", Status: http.StatusBadGateway})
	get := func(path string) int {
		req, _ := http.NewRequest(http.MethodGet, s.URL()+path, nil)
		req.SetBasicAuth(jenkinssim.DefaultUser, jenkinssim.DefaultToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		path string
		want int
	}{{"/whoAmI", 403}, {"/api/json", 200}, {"/whoAmI/api/json", 403}, {"/whoAmI/api/json", 200}, {"/queue/api/json", 502}} {
		if got := get(c.path); got != c.want {
			t.Errorf("GET %s: %d, want %d", c.path, got, c.want)
		}
	}
	reqs := s.Requests()
	if !reqs[0].Fault || reqs[0].User != "" || reqs[3].Fault || reqs[3].User != jenkinssim.DefaultUser {
		t.Errorf("log: %+v", reqs)
	}
}
