package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
)

// leakCanary is a secret that a careless step type puts everywhere it can: its plan, its
// log, its journal, its links, its outputs and its error. The engine must redact it from
// everything a person or a file sees.
const leakCanary = "canary-5f1e9c7a-not-a-real-token"

type leakStep struct {
	Connection string `json:"connection" desc:"the connection whose token to leak"`
	Fail       bool   `json:"fail" desc:"fail with the token in the error"`
}

func (s *leakStep) secret(sc *engine.StepContext) string {
	conn, err := sc.Connection(s.Connection, "testsvc")
	if err != nil {
		return "no connection: " + err.Error()
	}
	tok, err := conn.Secret()
	if err != nil {
		return "no secret: " + err.Error()
	}
	return tok
}

func (s *leakStep) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	tok := s.secret(sc)
	return engine.Plan{Action: "use token " + tok, Details: []string{"Authorization: Bearer " + tok}}, nil
}

func (s *leakStep) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	tok := s.secret(sc)
	sc.Logf("calling with token %s\nand again on a second line: %s", tok, tok)
	if err := sc.Record("request", map[string]string{"auth": "Bearer " + tok}); err != nil {
		return nil, err
	}
	sc.Link("the thing "+tok, "https://svc.example.org/thing?access_token="+tok)
	if s.Fail {
		return nil, fmt.Errorf("svc: 401 from https://svc.example.org/?access_token=%s: bad token %q", tok, tok)
	}
	return engine.Outputs{"echo": tok, "nested": map[string]any{"list": []any{"x " + tok}}}, nil
}

func init() {
	engine.Register(engine.StepType{Name: "test.leak", Summary: "leak its connection's token everywhere", Connection: "testsvc",
		New:     func() engine.Step { return &leakStep{} },
		Outputs: []engine.Output{{Name: "echo", Type: engine.TypeString}, {Name: "nested", Type: engine.TypeMap}}})
}

// TestCanarySecretRedactedEverywhere: a token read from the environment or a token file
// through conn.Secret() appears in no plan (text, Markdown, JSON), log line, progress
// event, journal line, report, output or error, even when the step puts it in each.
func TestCanarySecretRedactedEverywhere(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(leakCanary+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CANARY_SVC_TOKEN", leakCanary)
	src := fmt.Sprintf(`runbook: v1
product: canary
connections:
  from_env: {type: testsvc, token: {env: CANARY_SVC_TOKEN}}
  from_file: {type: testsvc, token: {file: %q}}
steps:
  - id: env_ok
    type: test.leak
    with: {connection: from_env}
  - id: file_fails
    type: test.leak
    continue_on_error: true
    with: {connection: from_file, fail: true}
  - id: after
    type: test.echo
    with: {message: "got ${{ steps.env_ok.outputs.echo }}"}
  - id: env_fails
    type: test.leak
    with: {connection: from_env, fail: true}
`, tokenFile)
	pb, err := engine.Parse("canary.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	in, err := pb.ResolveInputs(nil)
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, b []byte) {
		t.Helper()
		if bytes.Contains(b, []byte(leakCanary)) {
			t.Errorf("%s shows the token:\n%s", what, b)
		}
	}

	doc, err := engine.BuildPlan(context.Background(), pb, in, engine.PlanOptions{Clock: engine.NewFakeClock(time.Unix(0, 0))})
	if err != nil {
		t.Fatal(err)
	}
	var text, md, js bytes.Buffer
	doc.WriteText(&text)
	doc.WriteMarkdown(&md)
	doc.WriteJSON(&js)
	if !strings.Contains(text.String(), "use token") {
		t.Fatalf("the plan does not show the step's action:\n%s", text.String())
	}
	check("the text plan", text.Bytes())
	check("the Markdown plan", md.Bytes())
	check("the JSON plan", js.Bytes())

	store, err := engine.OpenFileStore(filepath.Join(dir, "run"), filepath.Join(dir, "report-copy.json"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []byte
	rep, runErr := engine.Execute(context.Background(), pb, engine.Options{Inputs: in, Store: store, Clock: engine.NewFakeClock(time.Unix(0, 0)), Seed: 1,
		Observer: func(ev *engine.Event) {
			b, _ := json.Marshal(ev)
			mu.Lock()
			events = append(append(events, b...), '\n')
			mu.Unlock()
		}})
	store.Close()
	if rep == nil {
		t.Fatalf("no report: %v", runErr)
	}
	if runErr != nil {
		check("the run's error", []byte(runErr.Error()))
	}
	if rep.Status != engine.RunFailed || rep.Step("env_ok").Status != engine.StepSucceeded || rep.Step("file_fails").Status != engine.StepFailed || rep.Step("after").Status != engine.StepSucceeded {
		t.Fatalf("the run did not go as the test needs: %s; env_ok %s, file_fails %s, after %s", rep.Status, rep.Step("env_ok").Status, rep.Step("file_fails").Status, rep.Step("after").Status)
	}
	if rep.Step("file_fails").Error == "" || !strings.Contains(rep.Reason+rep.Step("env_fails").Error, "bad token") {
		t.Errorf("the failures' errors are missing: %q / %q", rep.Step("file_fails").Error, rep.Step("env_fails").Error)
	}
	mem, _ := json.Marshal(rep)
	check("the report returned", mem)
	check("the progress events", events)
	check("the reason", []byte(rep.Reason))
	for _, name := range []string{"run/journal.jsonl", "run/report.json", "report-copy.json"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || len(b) == 0 {
			t.Errorf("%s: %v (%d bytes)", name, err, len(b))
		}
		check(name, b)
	}
	// A resumed run rebuilds the report from the journal: still nothing to see.
	back, _, err := engine.ReadJournal(filepath.Join(dir, "run"))
	if err != nil {
		t.Fatal(err)
	}
	again, _ := json.Marshal(back)
	check("the report rebuilt from the journal", again)
}
