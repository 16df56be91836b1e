package httpcheck_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
	_ "github.com/cessda/runbook/steps/httpcheck"
	"github.com/cessda/runbook/steps/httpcheck/httpchecksim"
)

// TestInAPlaybook runs http.check through the engine: a public smoke check needs no
// connection, and a check with an http connection sends its token.
func TestInAPlaybook(t *testing.T) {
	sim := httpchecksim.New()
	defer sim.Close()
	sim.Handle("/health", 200, "UP 1.2.3")
	sim.Handle("/api/status", 200, "ok")
	t.Setenv("RUNBOOK_HTTPCHECK_PLAYBOOK_TOKEN", "canary-token-playbook")

	for name, src := range map[string]string{
		"public": fmt.Sprintf(`runbook: v1
product: cdc
title: smoke
steps:
  - id: smoke
    type: http.check
    with: {url: "%s/health", body_contains: ["${{ inputs.version }}"]}
inputs:
  version: {type: string, required: true}
`, sim.URL()),
		"connection": fmt.Sprintf(`runbook: v1
product: cdc
title: smoke
connections:
  site: {type: http, url: "%s/api", token: {env: RUNBOOK_HTTPCHECK_PLAYBOOK_TOKEN}}
steps:
  - id: smoke
    type: http.check
    with: {connection: site, url: status}
inputs:
  version: {type: string, required: true}
`, sim.URL()),
	} {
		t.Run(name, func(t *testing.T) {
			pb, err := engine.Parse(name+".yaml", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			in, err := pb.ResolveInputs(map[string]string{"version": "1.2.3"})
			if err != nil {
				t.Fatal(err)
			}
			before := len(sim.Requests())
			rep, err := engine.Execute(context.Background(), pb, engine.Options{Inputs: in, Store: &engine.MemStore{}, Clock: engine.NewFakeClock(time.Unix(0, 0)), Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Status != engine.RunSucceeded {
				t.Fatalf("run status %v", rep.Status)
			}
			reqs := sim.Requests()[before:]
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			wantAuth := ""
			if name == "connection" {
				wantAuth = "Bearer canary-token-playbook"
			}
			if got := reqs[0].Header.Get("Authorization"); got != wantAuth {
				t.Errorf("Authorization %q, want %q", got, wantAuth)
			}
		})
	}
}
