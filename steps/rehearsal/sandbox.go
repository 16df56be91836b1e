package rehearsal

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cessda/runbook/engine"
)

// A standalone sandbox: the simulators as real HTTP servers on 127.0.0.1 in their own
// process, described by a connections file with which an ordinary `runbook run --sandbox
// FILE` talks to them instead of the real services. Their state lives as long as that
// process, so a run can be killed and resumed against the same world, and anyone can
// inspect it with ordinary HTTP clients.

// ConnectionsFile is what `runbook sandbox` writes.
type ConnectionsFile struct {
	// Control is the sandbox's own endpoint (its clock).
	Control string `json:"control"`
	// Web is the simulated web: files a step downloads from elsewhere (a release tarball
	// on GitHub) come from here, never from the internet.
	Web string `json:"web"`
	// GitHubWeb serves GitHub's source archives and raw files (githubsim.WebPath) from
	// the sandbox's GitHub, so what a step downloads is what the release tagged.
	GitHubWeb   string                    `json:"github_web,omitempty"`
	Playbook    string                    `json:"playbook"`
	Connections map[string]FileConnection `json:"connections"`
}

// FileConnection is one connection of the sandbox.
type FileConnection struct {
	Type  string `json:"type"`
	URL   string `json:"url,omitempty"`
	Token string `json:"token,omitempty"` // a throwaway sandbox credential
	// TokenEnv, when set (by hand), makes the run read the secret from this environment
	// variable instead of Token, as a real run does: to practise wrong or missing secrets.
	TokenEnv string            `json:"token_env,omitempty"`
	Settings map[string]string `json:"settings,omitempty"`
}

// Control serves the sandbox's clock: runs that use the sandbox move it forward when
// they wait, so a day-long approval wait costs nothing and both sides agree on the time.
type Control struct {
	Clock *engine.OffsetClock
	srv   *http.Server
	ln    net.Listener
	mux   *http.ServeMux
}

// ServeControl starts the control endpoint on 127.0.0.1: GET /clock, POST
// /clock/advance?d=, and GET /state (what the release left in the world, for tests);
// ServePeople adds the people's actions.
func ServeControl(clock *engine.OffsetClock, state func() any) (*Control, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	c := &Control{Clock: clock, ln: ln, mux: mux}
	mux.HandleFunc("GET /clock", func(w http.ResponseWriter, r *http.Request) {
		writeOffset(w, clock.Offset())
	})
	mux.HandleFunc("POST /clock/advance", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("d"))
		if err != nil || d < 0 {
			http.Error(w, "d must be a duration such as 90s", http.StatusBadRequest)
			return
		}
		clock.Advance(d)
		writeOffset(w, clock.Offset())
	})
	mux.HandleFunc("GET /state", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(state())
	})
	c.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go c.srv.Serve(ln)
	return c, nil
}

func writeOffset(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]int64{"offset_ns": int64(d)})
}

// PeopleAction is what a person does in the sandbox's GitHub, posted to the control
// endpoint: POST /people/comment {repo, issue, user, body}, POST /people/tick {repo,
// issue, item or text}, POST /people/close {repo, issue, reason}.
type PeopleAction struct {
	Repo  string `json:"repo"`
	Issue int    `json:"issue"`
	// User is the login the comment is written as (a member of a playbook role).
	User string `json:"user,omitempty"`
	Body string `json:"body,omitempty"`
	// Item is the key of a release-issue checklist item (github.release_issue's
	// checklist), Text any text of the item's line.
	Item   string `json:"item,omitempty"`
	Text   string `json:"text,omitempty"`
	Reason string `json:"reason,omitempty"` // closing: completed (default) or not_planned
}

// ServePeople lets whoever drives the sandbox act as its people (with Answers.Silent,
// nobody else does): comment as any login, tick a checklist item, close an issue, as
// they would in the browser. The sandbox's GitHub API itself knows one user only (the
// release bot its token belongs to), so people's actions come through here.
func (c *Control) ServePeople(s *Sandbox) {
	handle := func(do func(a PeopleAction) (any, error)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var a PeopleAction
			if err := json.NewDecoder(r.Body).Decode(&a); err != nil || a.Repo == "" || a.Issue < 1 {
				http.Error(w, "want JSON {repo, issue, ...}", http.StatusBadRequest)
				return
			}
			out, err := do(a)
			if err != nil {
				http.Error(w, err.Error(), http.StatusUnprocessableEntity)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(out)
		}
	}
	c.mux.HandleFunc("POST /people/comment", handle(func(a PeopleAction) (any, error) {
		if a.User == "" || a.Body == "" {
			return nil, fmt.Errorf("a comment needs user and body")
		}
		id, err := s.GitHub.Comment(a.Repo, a.Issue, a.User, a.Body)
		if err == nil {
			s.note("%s comments %q in %s#%d (control)", a.User, a.Body, a.Repo, a.Issue)
		}
		return map[string]int64{"id": id}, err
	}))
	c.mux.HandleFunc("POST /people/tick", handle(func(a PeopleAction) (any, error) {
		text := a.Text
		if a.Item != "" {
			text = "runbook:item=" + a.Item + " "
		}
		if text == "" {
			return nil, fmt.Errorf("a tick needs item or text")
		}
		err := s.GitHub.TickCheckbox(a.Repo, a.Issue, text)
		if err == nil {
			s.note("ticked %q in %s#%d (control)", text, a.Repo, a.Issue)
		}
		return map[string]bool{"ticked": err == nil}, err
	}))
	c.mux.HandleFunc("POST /people/close", handle(func(a PeopleAction) (any, error) {
		err := s.GitHub.CloseIssue(a.Repo, a.Issue, a.Reason)
		if err == nil {
			s.note("closed %s#%d (control)", a.Repo, a.Issue)
		}
		return map[string]bool{"closed": err == nil}, err
	}))
}

// URL is the control endpoint's base URL.
func (c *Control) URL() string { return "http://" + c.ln.Addr().String() + "/" }

// Close stops the control endpoint.
func (c *Control) Close() { c.srv.Close() }

// RemoteClock is a run's clock when it uses a sandbox in another process: the wall clock
// plus the sandbox's offset; a wait advances the sandbox's clock and returns at once.
type RemoteClock struct {
	URL    string
	HTTP   *http.Client
	mu     sync.Mutex
	local  engine.OffsetClock
	synced bool
}

// Now returns the shared time.
func (c *RemoteClock) Now() time.Time {
	c.mu.Lock()
	synced := c.synced
	c.mu.Unlock()
	if !synced {
		if d, err := c.call(http.MethodGet, "clock", 0); err == nil {
			c.follow(d)
		}
	}
	return c.local.Now()
}

// After advances the sandbox's clock by d.
func (c *RemoteClock) After(d time.Duration) <-chan time.Time {
	if off, err := c.call(http.MethodPost, "clock/advance", d); err == nil {
		c.follow(off)
	} else {
		c.local.Advance(d)
	}
	ch := make(chan time.Time, 1)
	ch <- c.local.Now()
	return ch
}

func (c *RemoteClock) follow(d time.Duration) {
	c.mu.Lock()
	c.synced = true
	c.mu.Unlock()
	c.local.SetOffset(d)
}

func (c *RemoteClock) call(method, path string, d time.Duration) (time.Duration, error) {
	cl := c.HTTP
	if cl == nil {
		cl = &http.Client{Timeout: 5 * time.Second}
	}
	u := c.URL + path
	if method == http.MethodPost {
		u += "?d=" + d.String()
	}
	req, _ := http.NewRequest(method, u, nil)
	resp, err := cl.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var out map[string]int64
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, err
	}
	return time.Duration(out["offset_ns"]), nil
}

// LoadConnections reads a sandbox's connections file and returns what a run needs to use
// it: a Connect function for the engine and the shared clock.
func LoadConnections(path string) (func(*engine.ConnectionDecl) (*engine.Connection, error), engine.Clock, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("sandbox connections: %v (start one with `runbook sandbox PLAYBOOK`)", err)
	}
	var f ConnectionsFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, nil, fmt.Errorf("sandbox connections %s: %v", path, err)
	}
	connect := func(d *engine.ConnectionDecl) (*engine.Connection, error) {
		fc, ok := f.Connections[d.Name]
		if !ok {
			return nil, fmt.Errorf("the sandbox in %s has no connection %q: start the sandbox from this playbook", path, d.Name)
		}
		if fc.Type != d.Type {
			return nil, fmt.Errorf("the sandbox's connection %q is of type %s, the playbook's of type %s", d.Name, fc.Type, d.Type)
		}
		c := d.Connection()
		c.TokenEnv, c.TokenFile = "", ""
		if fc.URL != "" {
			c.URL = fc.URL
		}
		c.Token = fc.Token
		if fc.TokenEnv != "" {
			c.Token, c.TokenEnv = "", fc.TokenEnv
		}
		for k, v := range fc.Settings {
			c.Settings[k] = v
		}
		if d.Type == "zenodo" && f.Web != "" {
			c.HTTPClient = &http.Client{Transport: &redirectTransport{keep: c.URL, to: f.Web, github: f.GitHubWeb}}
		}
		if d.Type == "smtp" && fc.Settings["ca_file"] == "" {
			c.Settings["tls_skip_verify"] = "true" // the sandbox's own self-signed certificate
		}
		return c, nil
	}
	var clock engine.Clock = engine.RealClock{}
	if f.Control != "" {
		clock = &RemoteClock{URL: f.Control}
	}
	return connect, clock, nil
}

// WriteConnections writes the connections file of a running sandbox, with kubeconfigs
// for its clusters in dir.
func (s *Sandbox) WriteConnections(dir string, control *Control, kubeconfig func(conn string) (path, context string, err error)) (string, error) {
	f := ConnectionsFile{Control: control.URL(), Web: s.Public.URL(), GitHubWeb: s.GitHub.URL(), Playbook: s.pb.File, Connections: map[string]FileConnection{}}
	for _, d := range s.pb.Connections {
		c, err := s.Connect(d)
		if err != nil {
			return "", err
		}
		fc := FileConnection{Type: d.Type, URL: c.URL, Token: c.Token, Settings: map[string]string{}}
		for k, v := range c.Settings {
			fc.Settings[k] = v
		}
		switch d.Type {
		case "kubernetes":
			path, ctxName, err := kubeconfig(d.Name)
			if err != nil {
				return "", err
			}
			fc.Settings["kubeconfig"], fc.Settings["context"] = path, ctxName
		case "smtp":
			ca := filepath.Join(dir, "smtp-ca.pem")
			if err := os.WriteFile(ca, s.SMTP.CAPEM(), 0o600); err != nil {
				return "", err
			}
			fc.Settings["ca_file"] = ca
		}
		f.Connections[d.Name] = fc
	}
	b, _ := json.MarshalIndent(f, "", "  ")
	path := filepath.Join(dir, "connections.json")
	return path, engine.WriteFileAtomic(path, b)
}
