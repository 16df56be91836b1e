package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cessda/runbook/steps/github/githubsim"
	"github.com/cessda/runbook/steps/jenkins/jenkinssim"
	"github.com/cessda/runbook/steps/notify/chatsim"
	"github.com/cessda/runbook/steps/notify/smtpsim"
	"github.com/cessda/runbook/steps/zenodo/zenodosim"
)

// canary is the secret every connection of the test uses. It must reach the services
// only where a credential belongs (an Authorization header, the SMTP AUTH exchange) and
// nowhere a person or a file could see it.
const canary = "canary-5f1e9c7a-not-a-real-token"

// seen is one request as it reached a service, for the leak checks.
type seen struct {
	Service string
	Method  string
	URL     string
	Header  http.Header
	Body    []byte
}

type recorder struct {
	mu   sync.Mutex
	reqs []seen
}

func (r *recorder) record(service string, req *http.Request) []byte {
	body, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(body))
	r.mu.Lock()
	r.reqs = append(r.reqs, seen{service, req.Method, req.URL.String(), req.Header.Clone(), body})
	r.mu.Unlock()
	return body
}

func (r *recorder) all() []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seen(nil), r.reqs...)
}

// recordingProxy stands in front of a simulator and records every request it forwards.
func recordingProxy(t *testing.T, service, target string, rec *recorder) string {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rec.record(service, req)
		rp.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// hostileServer answers every request with an error that repeats the credential it was
// sent (and the canary itself), the way a careless server or proxy might: the runbook
// must still not show it.
func hostileServer(t *testing.T, rec *recorder) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rec.record("hostile", req)
		auth := req.Header.Get("Authorization")
		if user, pass, ok := req.BasicAuth(); ok {
			auth = user + ":" + pass
		}
		switch {
		case strings.HasPrefix(req.URL.Path, "/jenkins/"):
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, "Invalid password/token for user %s (token %s)\n", auth, canary)
		case strings.HasPrefix(req.URL.Path, "/zenodo/"):
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"status":400,"message":"token %s rejected (%s)","errors":[{"field":"access_token=%s","messages":["bad %s"]}]}`, canary, auth, canary, auth)
		case strings.HasPrefix(req.URL.Path, "/hooks/"):
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"id":"web.incoming_webhook.invalid.app_error","message":"invalid webhook %s","detailed_error":"%s"}`, canary, canary)
		default: // GitHub
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, `{"message":"Bad credentials: %s (%s)","documentation_url":"https://docs.github.com/rest"}`, auth, canary)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestCanaryTokenNeverShown(t *testing.T) {
	rec := &recorder{}
	gh := githubsim.New(githubsim.WithToken(canary), githubsim.WithAutoCreate())
	t.Cleanup(gh.Close)
	jk := jenkinssim.New(jenkinssim.WithUser("release-bot", canary), jenkinssim.WithAutoCreate(), jenkinssim.WithSpeed(1000))
	t.Cleanup(jk.Close)
	zn := zenodosim.New(zenodosim.WithToken(canary, 1, "deposit:write", "deposit:actions"))
	t.Cleanup(zn.Close)
	chat := chatsim.New(chatsim.WithAutoCreate())
	t.Cleanup(chat.Close)
	mail, err := smtpsim.New(smtpsim.WithAuth("releases", canary))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mail.Close() })
	hostile := hostileServer(t, rec)

	dir := t.TempDir()
	ca := filepath.Join(dir, "smtp-ca.pem")
	tokenFile := filepath.Join(dir, "token")
	must(t, os.WriteFile(ca, mail.CAPEM(), 0o600))
	must(t, os.WriteFile(tokenFile, []byte(canary+"\n"), 0o600))
	for _, env := range []string{"GITHUB_TOKEN", "JENKINS_TOKEN", "ZENODO_TOKEN", "SMTP_PASSWORD"} {
		t.Setenv(env, canary)
	}

	playbook := fmt.Sprintf(`runbook: v1
product: canary
inputs:
  version: {type: string, default: "1.2.3"}
connections:
  github: {type: github, url: %q, token: {env: GITHUB_TOKEN}}
  github_bad: {type: github, url: %q, token: {file: %q}}
  jenkins: {type: jenkins, url: %q, user: release-bot, token: {env: JENKINS_TOKEN}}
  jenkins_bad: {type: jenkins, url: %q, user: release-bot, token: {file: %q}}
  zenodo: {type: zenodo, url: %q, token: {env: ZENODO_TOKEN}}
  zenodo_bad: {type: zenodo, url: %q, token: {file: %q}}
  smtp: {type: smtp, url: %q, from: "Releases <releases@example.org>", username: releases, ca_file: %q, token: {env: SMTP_PASSWORD}}
  chat: {type: chat, url: %q}
  chat_bad: {type: chat, url: %q}
steps:
  - id: tag
    type: github.tag
    with: {connection: github, repo: cessda/canary, tag: "${{ inputs.version }}"}
  - id: tag_bad
    type: github.tag
    continue_on_error: true
    with: {connection: github_bad, repo: cessda/canary, tag: "${{ inputs.version }}"}
  - id: build
    type: jenkins.build
    with: {connection: jenkins, job: canary/deploy, parameters: {VERSION: "${{ inputs.version }}"}, poll_interval: 10ms, timeout: 5m}
  - id: build_bad
    type: jenkins.build
    continue_on_error: true
    with: {connection: jenkins_bad, job: canary/deploy, poll_interval: 10ms}
  - id: doi
    type: zenodo.reserve_doi
    with: {connection: zenodo, title: "Canary ${{ inputs.version }}", version: "${{ inputs.version }}"}
  - id: doi_bad
    type: zenodo.reserve_doi
    continue_on_error: true
    with: {connection: zenodo_bad, title: "Canary ${{ inputs.version }}", version: "${{ inputs.version }}"}
  - id: mail
    type: notify.email
    with: {connection: smtp, to: [ops@example.org], subject: "Canary ${{ inputs.version }}", body: "Released ${{ steps.doi.outputs.doi }}"}
  - id: chat
    type: notify.chat
    with: {connection: chat, text: "Released ${{ inputs.version }}"}
  - id: chat_bad
    type: notify.chat
    continue_on_error: true
    with: {connection: chat_bad, text: "Released ${{ inputs.version }}"}
`,
		recordingProxy(t, "github", gh.URL(), rec), hostile+"/github/", tokenFile,
		recordingProxy(t, "jenkins", jk.URL(), rec), hostile+"/jenkins/", tokenFile,
		recordingProxy(t, "zenodo", zn.URL(), rec)+"/api/", hostile+"/zenodo/", tokenFile,
		mail.URL(), ca,
		recordingProxy(t, "chat", chat.URL(), rec)+"/hooks/canaryhook", hostile+"/hooks/x")
	pbPath := filepath.Join(dir, "canary.yaml")
	must(t, os.WriteFile(pbPath, []byte(playbook), 0o600))
	state := filepath.Join(dir, "state")
	reportPath := filepath.Join(dir, "report.json")

	var outputs []string // everything a person or a tool reads
	cli := func(args ...string) (string, int) {
		var out, errb bytes.Buffer
		code := run(args, strings.NewReader(""), &out, &errb)
		outputs = append(outputs, out.String(), errb.String())
		return out.String() + errb.String(), code
	}
	for _, format := range []string{"text", "markdown", "json"} {
		if out, code := cli("plan", pbPath, "--state-dir", state, "--format", format); code != 0 && !strings.Contains(out, "tag") {
			t.Fatalf("plan --format %s: exit %d\n%s", format, code, out)
		}
	}
	// The preflight finds the bad connections first, and shows no token doing so.
	if out, code := cli("preflight", pbPath); code != exitInvalid {
		t.Fatalf("preflight: exit %d\n%s", code, out)
	}
	out, code := cli("run", pbPath, "--state-dir", state, "--report", reportPath, "--non-interactive", "--no-preflight")
	t.Logf("run exit %d:\n%s", code, out)

	report, err := os.ReadFile(reportPath)
	if err != nil {
		t.Fatalf("no report: %v\n%s", err, out)
	}
	// The run did what it should: the good steps used the token, the bad ones failed.
	for _, id := range []string{"tag", "build", "doi", "mail", "chat"} {
		if !bytes.Contains(report, []byte(`"id": "`+id+`"`)) {
			t.Errorf("step %s missing from the report", id)
		}
	}
	if n := strings.Count(string(report), `"status": "succeeded"`); n < 5 {
		t.Errorf("only %d succeeded entries in the report; the good steps must succeed so the token was really used\n%s", n, report)
	}
	if n := strings.Count(string(report), `"status": "failed"`); n < 4 {
		t.Errorf("only %d failed entries in the report; the hostile servers' errors were not exercised\n%s", n, report)
	}
	if len(mail.Messages()) != 1 || mail.Messages()[0].AuthUser != "releases" {
		t.Errorf("the e-mail was not sent with AUTH: %d messages", len(mail.Messages()))
	}

	// 1. Nothing a person or a file shows: stdout, stderr, plans, report, journal, state.
	for i, o := range outputs {
		if strings.Contains(o, canary) {
			t.Errorf("output %d of the CLI shows the token:\n%s", i, o)
		}
	}
	files := 0
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || p == tokenFile {
			return nil
		}
		b, _ := os.ReadFile(p)
		files++
		if bytes.Contains(b, []byte(canary)) {
			t.Errorf("%s holds the token", p)
		}
		return nil
	})
	var journals int
	_ = filepath.Walk(state, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Name() == "journal.jsonl" {
			journals++
		}
		return nil
	})
	if journals == 0 {
		t.Errorf("no journal written under %s (%d files checked)", state, files)
	}

	// 2. What the services saw: the token only as a credential.
	used := 0
	for _, r := range rec.all() {
		if strings.Contains(r.URL, canary) {
			t.Errorf("%s: the token is in the URL %s %s", r.Service, r.Method, r.URL)
		}
		if bytes.Contains(r.Body, []byte(canary)) {
			t.Errorf("%s: the token is in the body of %s %s", r.Service, r.Method, r.URL)
		}
		for k, vs := range r.Header {
			for _, v := range vs {
				if k == "Authorization" {
					if strings.HasSuffix(v, " "+canary) || decodedBasic(v) == "release-bot:"+canary {
						used++
					}
					continue
				}
				if strings.Contains(v, canary) {
					t.Errorf("%s: the token is in header %s of %s %s", r.Service, k, r.Method, r.URL)
				}
			}
		}
	}
	if used == 0 {
		t.Error("no request carried the token as a credential: the test proves nothing")
	}
	for _, r := range jk.Requests() {
		if strings.Contains(r.Path+"?"+r.Query, canary) {
			t.Errorf("jenkins: the token is in %s %s?%s", r.Method, r.Path, r.Query)
		}
	}
	for _, r := range zn.Requests() {
		if strings.Contains(r.URL(), canary) {
			t.Errorf("zenodo: the token is in %s %s", r.Method, r.URL())
		}
	}
	for _, r := range chat.Requests() {
		if strings.Contains(r.Path+r.Body, canary) {
			t.Errorf("chat: the token is in %s %s", r.Path, r.Body)
		}
	}
	for _, m := range mail.Messages() {
		if bytes.Contains(m.Raw, []byte(canary)) {
			t.Errorf("the e-mail holds the token:\n%s", m.Raw)
		}
	}
}

func decodedBasic(v string) string {
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(v, "Basic "))
	if err != nil {
		return ""
	}
	return string(b)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestCanaryRehearsal: a rehearsal of a real playbook with real tokens in the environment
// neither reads nor shows them, and the rehearsal's own throwaway credentials are
// redacted like real ones.
func TestCanaryRehearsal(t *testing.T) {
	for _, env := range []string{"GITHUB_TOKEN", "JENKINS_TOKEN", "ZENODO_TOKEN", "SMTP_PASSWORD", "CHAT_WEBHOOK_URL"} {
		t.Setenv(env, canary)
	}
	state := t.TempDir()
	var out, errb bytes.Buffer
	code := run([]string{"run", "../../playbooks/cdc.yaml", "--rehearse", "--state-dir", state,
		"--set", "version=3.4.0", "--non-interactive"}, strings.NewReader(""), &out, &errb)
	if code != 0 {
		t.Fatalf("rehearsal exit %d:\n%s%s", code, out.String(), errb.String())
	}
	secrets := []string{canary, "rehearsal-github-token", "rehearsal-zenodo-token", "rehearsal-password", jenkinssim.DefaultToken}
	check := func(what string, b []byte) {
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s shows %q", what, s)
			}
		}
	}
	check("stdout", out.Bytes())
	check("stderr", errb.Bytes())
	files := 0
	_ = filepath.Walk(state, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return nil
		}
		files++
		b, _ := os.ReadFile(p)
		check(p, b)
		return nil
	})
	if files < 2 {
		t.Errorf("only %d files in the state directory; expected a journal and a report", files)
	}
}
