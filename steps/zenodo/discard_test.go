package zenodo_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/engine/enginetest"
	"github.com/cessda/runbook/steps/zenodo"
	"github.com/cessda/runbook/steps/zenodo/zenodosim"
)

func discardStep(t *testing.T, id int) engine.Step {
	return enginetest.Decode(t, "zenodo.discard", map[string]any{"deposition_id": id, "reason": "release refused"})
}

// requestsTo lists the method and path of the requests since from that touch deposition id.
func requestsTo(sim *zenodosim.Server, from, id int) []string {
	var out []string
	for _, r := range sim.Requests()[from:] {
		if strings.Contains(r.Path, fmt.Sprintf("/deposit/depositions/%d", id)) {
			out = append(out, r.Method+" "+strings.TrimPrefix(r.Path, "/api/"))
		}
	}
	return out
}

func TestDiscardReservedDraft(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   []zenodosim.Option
		status int
	}{
		{name: "rdm 204", status: 204},
		{name: "legacy 201", opts: []zenodosim.Option{zenodosim.LegacyDelete()}, status: 201},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim, conn := setup(t, tc.opts...)
			res := run(t, reserveStep(t, nil), enginetest.NewContext(t, "reserve", conn))
			id, doi := res["deposition_id"].(int), res["doi"].(string)
			before, writes := len(sim.Requests()), sim.Writes()

			plan, err := discardStep(t, id).Plan(context.Background(), enginetest.NewContext(t, "discard", conn).StepContext)
			must(t, err)
			want := fmt.Sprintf("discard Zenodo draft %d (DOI %s) of concept ", id, doi)
			if plan.NoChange || !strings.HasPrefix(plan.Action, want) || !strings.Contains(fmt.Sprint(plan.Details), "release refused") {
				t.Errorf("plan = %+v, want action %q...", plan, want)
			}
			if sim.Writes() != writes {
				t.Fatal("the plan wrote")
			}

			sc := enginetest.NewContext(t, "discard", conn)
			out := run(t, discardStep(t, id), sc)
			if out["discarded"] != true || out["doi"] != doi || out["deposition_id"] != id {
				t.Errorf("outputs = %v", out)
			}
			if got := requestsTo(sim, before, id); fmt.Sprint(got) != fmt.Sprintf("[GET deposit/depositions/%d GET deposit/depositions/%d DELETE deposit/depositions/%d]", id, id, id) {
				t.Errorf("requests = %v", got)
			}
			if r := sim.Requests(); r[len(r)-1].Status != tc.status {
				t.Errorf("DELETE answered %d, want %d", r[len(r)-1].Status, tc.status)
			}
			if _, ok := sim.Deposition(id); ok || sim.Reserved(doi) {
				t.Errorf("the draft or its DOI %s is still there", doi)
			}
			if sim.Depositions() != 0 || sim.Created() != 0 || sim.Discarded() != 1 {
				t.Errorf("depositions %d created %d discarded %d, want 0 0 1", sim.Depositions(), sim.Created(), sim.Discarded())
			}
			if !strings.Contains(sc.LogText(), "release refused") {
				t.Errorf("the reason is not in the log: %q", sc.LogText())
			}

			// Again, in the same step (its journal knows the DOI) and in a new one: already gone.
			writes = sim.Writes()
			again := run(t, discardStep(t, id), sc)
			if again["discarded"] != true || again["doi"] != doi || !strings.Contains(sc.LogText(), "already gone") {
				t.Errorf("second run: %v, log %q", again, sc.LogText())
			}
			fresh := enginetest.NewContext(t, "discard", conn)
			again = run(t, discardStep(t, id), fresh)
			if again["discarded"] != true || again["deposition_id"] != id || !strings.Contains(fresh.LogText(), "already gone") {
				t.Errorf("run in a new context: %v, log %q", again, fresh.LogText())
			}
			plan, err = discardStep(t, id).Plan(context.Background(), fresh.StepContext)
			if err != nil || !plan.NoChange || !strings.Contains(plan.Action, "already gone") {
				t.Errorf("plan after the discard = %+v, %v", plan, err)
			}
			if sim.Writes() != writes {
				t.Errorf("discarding a gone draft wrote %d times", sim.Writes()-writes)
			}

			// The version can be reserved again: a new draft, a new DOI.
			res2 := run(t, reserveStep(t, nil), enginetest.NewContext(t, "reserve", conn))
			if res2["deposition_id"] == id || res2["doi"] == doi || sim.Created() != 1 {
				t.Errorf("reserve after discard: %v (created %d)", res2, sim.Created())
			}
		})
	}
}

func TestDiscardPublishedFailsAndLeavesIt(t *testing.T) {
	sim, conn := setup(t)
	rec, _ := sim.AddPublished(zenodosim.Published{Title: "CDC 3.3.0", Version: "3.3.0", Files: map[string][]byte{"a.tar": []byte("a")}})
	// One published by the steps, then opened for editing (state inprogress).
	id := run(t, reserveStep(t, nil), enginetest.NewContext(t, "reserve", conn))["deposition_id"].(int)
	archive, readme, changelog := releaseFiles(t)
	run(t, publishStep(t, id, []any{map[string]any{"source": archive}, map[string]any{"source": readme}, map[string]any{"source": changelog}}), enginetest.NewContext(t, "publish", conn))
	c, err := zenodo.NewClient(sim.URL(), nil, canary)
	must(t, err)
	_, err = c.Action(context.Background(), id, "edit")
	must(t, err)
	writes, published := sim.Writes(), sim.Publications()

	for _, tc := range []struct {
		id    int
		state string
	}{{rec, "done"}, {id, "inprogress"}} {
		sc := enginetest.NewContext(t, "discard", conn)
		_, err := discardStep(t, tc.id).Run(context.Background(), sc.StepContext)
		want := fmt.Sprintf("deposition %d is published (DOI 10.5281/zenodo.%d): a published record cannot be deleted, only versioned; nothing was discarded", tc.id, tc.id)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("discard of %s %d: err = %v, want %q", tc.state, tc.id, err, want)
		}
		if ok, _ := engine.IsTransient(err); ok {
			t.Errorf("a published record is not a transient failure: %v", err)
		}
		if d, ok := sim.Deposition(tc.id); !ok || d["state"] != tc.state || d["submitted"] != true {
			t.Errorf("deposition %d after the refusal: %v", tc.id, d)
		}
		var intent any
		if sc.Recall("discard", &intent) {
			t.Errorf("an intent was journalled for a published record: %v", intent)
		}
		if _, err := discardStep(t, tc.id).Plan(context.Background(), sc.StepContext); err == nil || !strings.Contains(err.Error(), "is published") {
			t.Errorf("plan of a published record: %v", err)
		}
		if err := preflight(t, discardStep(t, tc.id), sc); err == nil || !strings.Contains(err.Error(), "is published") {
			t.Errorf("preflight of a published record: %v", err)
		}
	}
	if sim.Writes() != writes || sim.Publications() != published || sim.Depositions() != 2 {
		t.Errorf("Zenodo changed: writes %d→%d publications %d→%d depositions %d", writes, sim.Writes(), published, sim.Publications(), sim.Depositions())
	}
	// The simulator refuses it too, as Zenodo does: DELETE 403, actions/discard 400.
	err = c.Delete(context.Background(), rec)
	var ae *zenodo.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusForbidden || !strings.Contains(ae.Message, "published") {
		t.Errorf("DELETE of a published record: %v", err)
	}
	_, err = c.Action(context.Background(), rec, "discard")
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
		t.Errorf("actions/discard of a published record: %v", err)
	}
	if d, ok := sim.Deposition(rec); !ok || d["state"] != "done" {
		t.Errorf("published record after the refused calls: %v", d)
	}
}

func TestDiscardCrashAfterDeleteThenRetry(t *testing.T) {
	sim, conn := setup(t)
	res := run(t, reserveStep(t, nil), enginetest.NewContext(t, "reserve", conn))
	id, doi := res["deposition_id"].(int), res["doi"].(string)
	// The DELETE takes effect, then the answer is lost, as when the process dies mid-request.
	sim.Inject(zenodosim.Fault{Method: http.MethodDelete, After: true, Drop: true, Times: 1})
	sc := enginetest.NewContext(t, "discard", conn)
	_, err := discardStep(t, id).Run(context.Background(), sc.StepContext)
	if ok, _ := engine.IsTransient(err); !ok {
		t.Fatalf("lost answer: want a transient error, got %v", err)
	}
	if _, ok := sim.Deposition(id); ok {
		t.Fatal("the DELETE did not take effect")
	}
	var intent struct {
		ID  int    `json:"id"`
		DOI string `json:"doi"`
	}
	if !sc.Recall("discard", &intent) || intent.ID != id || intent.DOI != doi {
		t.Fatalf("the intent was not journalled before the DELETE: %+v", intent)
	}
	sc.Attempt++
	out := run(t, discardStep(t, id), sc)
	if out["discarded"] != true || out["doi"] != doi || out["deposition_id"] != id {
		t.Errorf("retry outputs = %v", out)
	}
	if !strings.Contains(sc.LogText(), "already gone") {
		t.Errorf("log = %q", sc.LogText())
	}
	deletes := 0
	for _, r := range sim.Requests() {
		if r.Method == http.MethodDelete {
			deletes++
		}
	}
	if deletes != 1 || sim.Discarded() != 1 || sim.Created() != 0 {
		t.Errorf("DELETEs %d discarded %d created %d, want 1 1 0", deletes, sim.Discarded(), sim.Created())
	}
}

func TestDiscardDeleteNotFoundButStillADraft(t *testing.T) {
	sim, conn := setup(t)
	id := run(t, reserveStep(t, nil), enginetest.NewContext(t, "reserve", conn))["deposition_id"].(int)
	// A 404 to the DELETE is not believed until a GET confirms it.
	sim.Inject(zenodosim.Fault{Method: http.MethodDelete, Status: 404, Times: 1})
	sc := enginetest.NewContext(t, "discard", conn)
	_, err := discardStep(t, id).Run(context.Background(), sc.StepContext)
	if ok, _ := engine.IsTransient(err); !ok || !strings.Contains(fmt.Sprint(err), "still a draft") {
		t.Fatalf("want a transient 'still a draft', got %v", err)
	}
	if _, ok := sim.Deposition(id); !ok {
		t.Fatal("the draft is gone")
	}
	run(t, discardStep(t, id), sc)
	if _, ok := sim.Deposition(id); ok {
		t.Error("the retry did not discard the draft")
	}
}

func TestDiscardNewVersionDraftDeletesOnlyTheDraft(t *testing.T) {
	sim, conn := setup(t)
	rec, concept := sim.AddPublished(zenodosim.Published{Title: "CDC 3.3.0", Version: "3.3.0", Files: map[string][]byte{"a.tar": []byte("a")}})
	res := run(t, reserveStep(t, map[string]any{"concept_id": concept}), enginetest.NewContext(t, "reserve", conn))
	id, doi := res["deposition_id"].(int), res["doi"].(string)
	before := len(sim.Requests())

	plan, err := discardStep(t, id).Plan(context.Background(), enginetest.NewContext(t, "discard", conn).StepContext)
	must(t, err)
	if !strings.Contains(plan.Action, fmt.Sprintf("draft %d (DOI %s) of concept %d", id, doi, concept)) || !strings.Contains(fmt.Sprint(plan.Details), "published versions") {
		t.Errorf("plan = %+v", plan)
	}
	out := run(t, discardStep(t, id), enginetest.NewContext(t, "discard", conn))
	if out["doi"] != doi {
		t.Errorf("outputs = %v", out)
	}
	// DELETE, not actions/discard (see Discard.Run for why).
	if got := requestsTo(sim, before, id); len(got) == 0 || got[len(got)-1] != fmt.Sprintf("DELETE deposit/depositions/%d", id) {
		t.Errorf("requests = %v", got)
	}
	for _, r := range sim.Requests() {
		if strings.HasSuffix(r.Path, "/actions/discard") {
			t.Errorf("sent %s %s", r.Method, r.Path)
		}
	}
	if _, ok := sim.Deposition(id); ok || sim.Reserved(doi) {
		t.Error("the new-version draft is still there")
	}
	if d, ok := sim.Deposition(rec); !ok || d["state"] != "done" || d["conceptdoi"] != fmt.Sprintf("10.5281/zenodo.%d", concept) {
		t.Errorf("the published version after the discard: %v", d)
	}
	if sim.Depositions() != 1 || sim.Created() != 0 {
		t.Errorf("depositions %d created %d, want 1 and 0", sim.Depositions(), sim.Created())
	}
	// The concept can be versioned again.
	again := run(t, reserveStep(t, map[string]any{"concept_id": concept}), enginetest.NewContext(t, "reserve", conn))
	if again["deposition_id"] == id || again["deposition_id"] == rec || sim.Created() != 1 {
		t.Errorf("reserve after the discard: %v (created %d)", again, sim.Created())
	}
}

func TestPreflightDiscard(t *testing.T) {
	sim, conn := setup(t)
	id := run(t, reserveStep(t, nil), enginetest.NewContext(t, "reserve", conn))["deposition_id"].(int)
	baseline, created, published := len(sim.Requests()), sim.Created(), sim.Publications()
	sc := enginetest.NewContext(t, "discard", conn)
	if err := preflight(t, discardStep(t, id), sc); err != nil {
		t.Errorf("a draft: %v", err)
	}
	if err := preflight(t, discardStep(t, 424242), sc); err != nil {
		t.Errorf("a deposition already gone: %v", err)
	}
	unknown := enginetest.NewContext(t, "discard", conn)
	unknown.SetUnknown("deposition_id")
	if err := preflight(t, discardStep(t, 0), unknown); err != nil {
		t.Errorf("deposition_id known after run: %v", err)
	}
	noWrites(t, sim, baseline, created, published)

	other := zenodosim.New(zenodosim.WithToken("the-right-one", 1))
	defer other.Close()
	bad := &engine.Connection{Name: "zenodo", Type: "zenodo", URL: other.URL(), Token: canary}
	if err := preflight(t, discardStep(t, id), enginetest.NewContext(t, "discard", bad)); err == nil || !strings.Contains(err.Error(), "(401)") {
		t.Errorf("a refused token: %v", err)
	}
}

// Through the engine: drafts reserved for each component, then discarded for each.
func TestDiscardForEachComponentInAPlaybook(t *testing.T) {
	pb, err := engine.Parse("discard.yaml", []byte(`runbook: v1
product: mini
title: Mini
roles: {service_owner: [jdoe]}
connections:
  zenodo: {type: zenodo}
steps:
  - id: reserve
    type: zenodo.reserve_doi
    foreach: [cdc, cvs]
    with: {title: "${{ item }} 3.4.0", version: 3.4.0}
  - id: discard
    type: zenodo.discard
    foreach: ${{ steps.reserve.outputs.deposition_id }}
    with: {deposition_id: "${{ item }}", reason: release refused}
`))
	if err != nil {
		t.Fatal(err)
	}
	sim, conn := setup(t)
	connect := func(*engine.ConnectionDecl) (*engine.Connection, error) { return conn, nil }
	rep, err := engine.Preflight(context.Background(), pb, nil, engine.PlanOptions{Connect: connect})
	if err != nil || rep.Err() != nil {
		t.Fatalf("preflight: %v %v", err, rep.Err())
	}
	run, err := engine.Execute(context.Background(), pb, engine.Options{Store: &engine.MemStore{}, Clock: engine.NewFakeClock(time.Unix(0, 0)), Seed: 1, Connect: connect})
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != engine.RunSucceeded {
		t.Fatalf("status %s at %s: %s", run.Status, run.FailedStep, run.Reason)
	}
	if sim.Depositions() != 0 || sim.Created() != 0 || sim.Discarded() != 2 {
		t.Errorf("depositions %d created %d discarded %d, want 0 0 2", sim.Depositions(), sim.Created(), sim.Discarded())
	}
	outs := run.Step("discard").Outputs
	if fmt.Sprint(outs["discarded"]) != "[true true]" || fmt.Sprint(outs["deposition_id"]) != fmt.Sprint(run.Step("reserve").Outputs["deposition_id"]) ||
		fmt.Sprint(outs["doi"]) != fmt.Sprint(run.Step("reserve").Outputs["doi"]) {
		t.Errorf("discard outputs %v, reserve outputs %v", outs, run.Step("reserve").Outputs)
	}
}
