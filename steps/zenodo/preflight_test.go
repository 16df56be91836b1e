package zenodo_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/engine/enginetest"
	"github.com/cessda/runbook/steps/zenodo"
	"github.com/cessda/runbook/steps/zenodo/zenodosim"
)

func preflight(t *testing.T, s engine.Step, c *enginetest.Context) error {
	t.Helper()
	pf, ok := s.(engine.Preflighter)
	if !ok {
		t.Fatalf("%T is not an engine.Preflighter", s)
	}
	err := pf.Preflight(context.Background(), c.StepContext)
	if err != nil && strings.Contains(err.Error(), canary) {
		t.Errorf("the token is in the error: %v", err)
	}
	if strings.Contains(c.LogText(), canary) {
		t.Errorf("the token is in the log")
	}
	return err
}

// noWrites fails when the simulator saw anything but reads since request number from,
// or counts creations, publications or uploads beyond the baseline.
func noWrites(t *testing.T, sim *zenodosim.Server, from, created, published int) {
	t.Helper()
	for _, r := range sim.Requests()[from:] {
		if r.Method != http.MethodGet {
			t.Errorf("preflight sent %s %s", r.Method, r.Path)
		}
	}
	if sim.Created() != created || sim.Publications() != published || sim.Uploads() != 0 {
		t.Errorf("preflight changed Zenodo: created %d (was %d), publications %d (was %d), uploads %d",
			sim.Created(), created, sim.Publications(), published, sim.Uploads())
	}
}

func TestPreflightPassesOnAHealthyZenodo(t *testing.T) {
	sim, conn := setup(t)
	record, concept := sim.AddPublished(zenodosim.Published{Title: "CDC 3.3.0", Version: "3.3.0", Files: map[string][]byte{"a": []byte("a")}})
	// A draft to publish, made directly, before the baseline.
	c, err := zenodo.NewClient(sim.URL(), nil, canary)
	must(t, err)
	draft, err := c.Create(context.Background(), map[string]any{"title": "CDC 3.4.0", "prereserve_doi": true})
	must(t, err)
	baseline := len(sim.Requests())
	created, published := sim.Created(), sim.Publications()

	sc := enginetest.NewContext(t, "reserve", conn)
	for _, with := range []map[string]any{nil, {"concept_id": concept}, {"concept_id": record}} {
		if err := preflight(t, reserveStep(t, with), sc); err != nil {
			t.Errorf("reserve_doi %v: %v", with, err)
		}
	}
	if err := preflight(t, publishStep(t, draft.ID, nil), sc); err != nil {
		t.Errorf("publish: %v", err)
	}
	unknown := enginetest.NewContext(t, "publish", conn)
	unknown.SetUnknown("deposition_id")
	if err := preflight(t, publishStep(t, 0, nil), unknown); err != nil {
		t.Errorf("publish of a draft made earlier in the run: %v", err)
	}
	if len(sim.Requests()) == baseline {
		t.Error("preflight asked Zenodo nothing")
	}
	noWrites(t, sim, baseline, created, published)
}

func TestPreflightTokenMissing(t *testing.T) {
	sim, _ := setup(t)
	conn := &engine.Connection{Name: "zenodo", Type: "zenodo", URL: sim.URL(), TokenEnv: "ZENODO_TOKEN_UNSET_FOR_TEST"}
	err := preflight(t, reserveStep(t, nil), enginetest.NewContext(t, "reserve", conn))
	if err == nil || !strings.Contains(err.Error(), `connection "zenodo"`) || !strings.Contains(err.Error(), "ZENODO_TOKEN_UNSET_FOR_TEST is not set") {
		t.Errorf("error = %v", err)
	}
	if n := len(sim.Requests()); n != 0 {
		t.Errorf("%d requests without a token", n)
	}
}

func TestPreflightTokenRejected(t *testing.T) {
	t.Run("invalid", func(t *testing.T) {
		sim := zenodosim.New(zenodosim.WithToken("the-right-one", 1))
		defer sim.Close()
		t.Setenv("ZENODO_TOKEN", canary)
		conn := &engine.Connection{Name: "zenodo", Type: "zenodo", URL: sim.URL(), TokenEnv: "ZENODO_TOKEN"}
		for _, s := range []engine.Step{reserveStep(t, nil), publishStep(t, 1234, nil)} {
			err := preflight(t, s, enginetest.NewContext(t, "x", conn))
			if err == nil || !strings.Contains(err.Error(), `zenodo connection "zenodo"`) || !strings.Contains(err.Error(), "refused the token in ZENODO_TOKEN (401)") ||
				!strings.Contains(err.Error(), "deposit:write and deposit:actions") {
				t.Errorf("error = %v", err)
			}
		}
		noWrites(t, sim, 0, 0, 0)
	})
	t.Run("without deposit:write", func(t *testing.T) {
		sim := zenodosim.New(zenodosim.WithToken(canary, 1, zenodosim.ScopeActions))
		defer sim.Close()
		conn := &engine.Connection{Name: "zenodo", Type: "zenodo", URL: sim.URL(), Token: canary}
		err := preflight(t, reserveStep(t, nil), enginetest.NewContext(t, "reserve", conn))
		if err == nil || !strings.Contains(err.Error(), "is valid but lacks the deposit:write scope (403") {
			t.Errorf("error = %v", err)
		}
		t.Log(err)
		noWrites(t, sim, 0, 0, 0)
	})
}

func TestPreflightConceptAndDepositionMustExist(t *testing.T) {
	sim, conn := setup(t)
	_, others := sim.AddPublished(zenodosim.Published{Owner: 2, Title: "Someone else's", Version: "1.0.0", Files: map[string][]byte{"a": []byte("a")}})
	published := sim.Publications()
	sc := enginetest.NewContext(t, "reserve", conn)

	err := preflight(t, reserveStep(t, map[string]any{"concept_id": 999999}), sc)
	if err == nil || !strings.Contains(err.Error(), `concept_id 999999 not found on connection "zenodo"`) {
		t.Errorf("unknown concept: %v", err)
	}
	t.Log(err)
	err = preflight(t, reserveStep(t, map[string]any{"concept_id": others}), sc)
	if err == nil || !strings.Contains(err.Error(), "belongs to another account") {
		t.Errorf("another account's concept: %v", err)
	}
	err = preflight(t, publishStep(t, 424242, nil), sc)
	if err == nil || !strings.Contains(err.Error(), `deposition 424242 not found on connection "zenodo"`) {
		t.Errorf("unknown deposition: %v", err)
	}
	// concept_id from an earlier step is not looked up.
	unknown := enginetest.NewContext(t, "reserve", conn)
	unknown.SetUnknown("concept_id")
	before := len(sim.Requests())
	if err := preflight(t, reserveStep(t, map[string]any{"concept_id": 0}), unknown); err != nil {
		t.Errorf("unknown concept_id: %v", err)
	}
	if n := len(sim.Requests()) - before; n != 1 {
		t.Errorf("%d requests for an unknown concept_id, want 1 (the token)", n)
	}
	noWrites(t, sim, 0, 0, published)
}

// Through the engine's preflight, the steps of one connection share one token check.
func TestPreflightThroughTheEngineChecksTheTokenOnce(t *testing.T) {
	pb, err := engine.Parse("preflight.yaml", []byte(`runbook: v1
product: mini
title: Mini
roles: {service_owner: [jdoe]}
connections:
  zenodo: {type: zenodo}
steps:
  - id: reserve
    type: zenodo.reserve_doi
    with: {title: CDC 3.4.0, version: 3.4.0}
  - id: publish
    type: zenodo.publish
    with:
      deposition_id: ${{ steps.reserve.outputs.deposition_id }}
      version: 3.4.0
      title: CDC 3.4.0
      description: d
      creators: [{name: "Doe, Jane"}]
`))
	if err != nil {
		t.Fatal(err)
	}
	sim, conn := setup(t)
	rep, err := engine.Preflight(context.Background(), pb, nil, engine.PlanOptions{
		Connect: func(*engine.ConnectionDecl) (*engine.Connection, error) { return conn, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Err() != nil {
		t.Fatal(rep.Err())
	}
	if reqs := sim.Requests(); len(reqs) != 1 || reqs[0].URL() != "/api/deposit/depositions?size=1" {
		t.Errorf("requests = %+v", reqs)
	}
	noWrites(t, sim, 0, 0, 0)
}
