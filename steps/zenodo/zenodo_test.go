package zenodo_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/engine/enginetest"
	"github.com/cessda/runbook/steps/zenodo"
	"github.com/cessda/runbook/steps/zenodo/zenodosim"
)

const canary = "CANARY-zenodo-7f3e91c2d4"

func setup(t *testing.T, opts ...zenodosim.Option) (*zenodosim.Server, *engine.Connection) {
	t.Helper()
	sim := zenodosim.New(append([]zenodosim.Option{zenodosim.WithToken(canary, 1)}, opts...)...)
	t.Cleanup(sim.Close)
	return sim, &engine.Connection{Name: "zenodo", Type: "zenodo", URL: sim.URL(), Token: canary}
}

func reserveStep(t *testing.T, with map[string]any) engine.Step {
	base := map[string]any{"title": "CESSDA Data Catalogue 3.4.0", "version": "3.4.0"}
	for k, v := range with {
		base[k] = v
	}
	return enginetest.Decode(t, "zenodo.reserve_doi", base)
}

func releaseFiles(t *testing.T) (archive, readme, changelog string) {
	dir := t.TempDir()
	archive = filepath.Join(dir, "cessda.cdc-3.4.0.tar")
	readme = filepath.Join(dir, "README.md")
	changelog = filepath.Join(dir, "CHANGELOG.md")
	must(t, os.WriteFile(archive, []byte("tar bytes of 3.4.0"), 0o644))
	must(t, os.WriteFile(readme, []byte("# CDC\n"), 0o644))
	must(t, os.WriteFile(changelog, []byte("## [3.4.0]\nDOI: 10.5281/zenodo.x\n"), 0o644))
	return
}

func publishStep(t *testing.T, id int, files []any) engine.Step {
	return enginetest.Decode(t, "zenodo.publish", map[string]any{
		"deposition_id": id, "version": "3.4.0", "title": "CESSDA Data Catalogue 3.4.0",
		"description":    "<p>Release 3.4.0</p>",
		"creators":       []any{map[string]any{"name": "Doe, Jane", "affiliation": "CESSDA ERIC"}},
		"github_release": "https://github.com/cessda/cessda.cdc.versions/releases/tag/3.4.0",
		"files":          files,
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, s engine.Step, sc *enginetest.Context) engine.Outputs {
	t.Helper()
	out, err := s.Run(context.Background(), sc.StepContext)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return out
}

func TestReserveHappyPath(t *testing.T) {
	sim, conn := setup(t)
	sc := enginetest.NewContext(t, "reserve", conn)
	out := run(t, reserveStep(t, nil), sc)
	id, ok := out["deposition_id"].(int)
	if !ok || id == 0 {
		t.Fatalf("deposition_id = %#v", out["deposition_id"])
	}
	if want := fmt.Sprintf("10.5281/zenodo.%d", id); out["doi"] != want {
		t.Errorf("doi = %v, want %s", out["doi"], want)
	}
	if out["bucket_url"] == "" || out["html_url"] == "" {
		t.Errorf("links missing: %v", out)
	}
	if sim.Depositions() != 1 {
		t.Errorf("depositions = %d, want 1", sim.Depositions())
	}
	d, _ := sim.Deposition(id)
	md := d["metadata"].(map[string]any)
	if md["version"] != "3.4.0" || md["title"] != "CESSDA Data Catalogue 3.4.0" {
		t.Errorf("draft metadata = %v", md)
	}
	if sc.Links()["DOI "+out["doi"].(string)] == "" {
		t.Errorf("no DOI link recorded: %v", sc.Links())
	}
}

func TestReserveSecondRunFindsTheDraft(t *testing.T) {
	sim, conn := setup(t)
	first := run(t, reserveStep(t, nil), enginetest.NewContext(t, "reserve", conn))
	// A new context has an empty journal: the draft must be found by searching.
	second := run(t, reserveStep(t, nil), enginetest.NewContext(t, "reserve", conn))
	if first["doi"] != second["doi"] || first["deposition_id"] != second["deposition_id"] {
		t.Errorf("second run reserved another DOI: %v vs %v", first, second)
	}
	// Another product's draft for the same version is not taken.
	other := run(t, reserveStep(t, map[string]any{"title": "CESSDA Vocabulary Service 3.4.0"}), enginetest.NewContext(t, "reserve", conn))
	if other["deposition_id"] == first["deposition_id"] {
		t.Error("a draft with another title was reused")
	}
	if sim.Depositions() != 2 || sim.Created() != 2 {
		t.Errorf("depositions = %d created = %d, want 2 and 2", sim.Depositions(), sim.Created())
	}
}

func TestReserveLostCreateAnswerMakesNoDuplicate(t *testing.T) {
	sim, conn := setup(t)
	// The draft is created but the answer is lost, as when the process dies mid-request.
	sim.Inject(zenodosim.Fault{Method: "POST", PathSuffix: "/deposit/depositions", After: true, Drop: true, Times: 1})
	sc := enginetest.NewContext(t, "reserve", conn)
	_, err := reserveStep(t, nil).Run(context.Background(), sc.StepContext)
	if ok, _ := engine.IsTransient(err); !ok {
		t.Fatalf("lost answer: want a transient error, got %v", err)
	}
	if sim.Created() != 1 {
		t.Fatalf("created = %d, want 1", sim.Created())
	}
	run(t, reserveStep(t, nil), sc)
	if sim.Depositions() != 1 {
		t.Errorf("depositions = %d after retry, want 1", sim.Depositions())
	}
}

func TestReserveCrashAfterCreateUsesJournal(t *testing.T) {
	sim, conn := setup(t)
	_, concept := sim.AddPublished(zenodosim.Published{Title: "CDC 3.3.0", Version: "3.3.0", Files: map[string][]byte{"a.tar": []byte("x")}})
	// newversion succeeds, then setting the version fails: the step dies after making the draft.
	sim.Inject(zenodosim.Fault{Method: "PUT", PathSuffix: "", Status: 503, Times: 1})
	sc := enginetest.NewContext(t, "reserve", conn)
	step := reserveStep(t, map[string]any{"concept_id": concept})
	if _, err := step.Run(context.Background(), sc.StepContext); err == nil {
		t.Fatal("want the injected 503")
	}
	var recorded int
	if !sc.Recall("deposition_id", &recorded) || recorded == 0 {
		t.Fatal("the draft's id was not recorded in the journal before the failure")
	}
	before := len(sim.Requests())
	out := run(t, reserveStep(t, map[string]any{"concept_id": concept}), sc)
	for _, r := range sim.Requests()[before:] {
		if r.Method == "GET" && strings.HasSuffix(r.Path, "/deposit/depositions") {
			t.Errorf("the retry searched (%s) instead of using the journal", r.URL())
		}
	}
	if out["deposition_id"] != recorded {
		t.Errorf("deposition_id = %v, want the recorded %d", out["deposition_id"], recorded)
	}
	newversions := 0
	for _, r := range sim.Requests() {
		if strings.HasSuffix(r.Path, "/actions/newversion") {
			newversions++
		}
	}
	if newversions != 1 || sim.Created() != 1 {
		t.Errorf("newversion calls = %d, drafts created = %d; want 1 and 1", newversions, sim.Created())
	}
}

func TestReserveNewVersion(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []zenodosim.Option
		byID bool
	}{
		{name: "rdm answer, concept id"},
		{name: "legacy answer, concept id", opts: []zenodosim.Option{zenodosim.LegacyNewVersion()}},
		{name: "rdm answer, record id", byID: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim, conn := setup(t, tc.opts...)
			rec1, concept := sim.AddPublished(zenodosim.Published{Title: "CDC 3.2.0", Version: "3.2.0", Files: map[string][]byte{"a.tar": []byte("1")}})
			rec2, _ := sim.AddPublished(zenodosim.Published{ConceptID: concept, Title: "CDC 3.3.0", Version: "3.3.0", Files: map[string][]byte{"a.tar": []byte("2")}})
			ref := concept
			if tc.byID {
				ref = rec1 // an older version's record id also names the concept
			}
			out := run(t, reserveStep(t, map[string]any{"concept_id": ref}), enginetest.NewContext(t, "reserve", conn))
			id := out["deposition_id"].(int)
			if id == rec1 || id == rec2 {
				t.Fatalf("deposition_id %d is a published version, not a new draft", id)
			}
			if want := fmt.Sprintf("10.5281/zenodo.%d", concept); out["concept_doi"] != want {
				t.Errorf("concept_doi = %v, want %s", out["concept_doi"], want)
			}
			d, _ := sim.Deposition(id)
			if d["conceptrecid"] != fmt.Sprint(concept) || d["metadata"].(map[string]any)["version"] != "3.4.0" {
				t.Errorf("draft = %v", d)
			}
			again := run(t, reserveStep(t, map[string]any{"concept_id": ref}), enginetest.NewContext(t, "reserve", conn))
			if again["deposition_id"] != id || sim.Created() != 1 {
				t.Errorf("second run: %v, created %d", again, sim.Created())
			}
		})
	}
}

func TestPublishHappyPathWithUploads(t *testing.T) {
	sim, conn := setup(t)
	res := run(t, reserveStep(t, nil), enginetest.NewContext(t, "reserve", conn))
	id := res["deposition_id"].(int)
	archive, readme, changelog := releaseFiles(t)

	// The tarball also comes from a URL (as GitHub serves it); the token must not go there.
	var mu sync.Mutex
	var sawAuth []string
	gh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sawAuth = append(sawAuth, r.Header.Get("Authorization"))
		mu.Unlock()
		_, _ = w.Write([]byte("github tarball"))
	}))
	defer gh.Close()

	sc := enginetest.NewContext(t, "publish", conn)
	out := run(t, publishStep(t, id, []any{
		map[string]any{"source": archive},
		map[string]any{"source": gh.URL + "/cessda/cessda.cdc/tarball/3.4.0", "name": "github-3.4.0.tar.gz"},
		map[string]any{"source": readme}, map[string]any{"source": changelog},
	}), sc)
	if out["doi"] != res["doi"] {
		t.Errorf("published DOI %v differs from the reserved %v", out["doi"], res["doi"])
	}
	if out["record_id"] != id || out["concept_doi"] == "" || !strings.HasSuffix(out["record_url"].(string), fmt.Sprintf("/records/%d", id)) {
		t.Errorf("outputs = %v", out)
	}
	if sim.Uploads() != 4 || sim.Publications() != 1 {
		t.Errorf("uploads = %d publications = %d, want 4 and 1", sim.Uploads(), sim.Publications())
	}
	if b, _ := sim.FileData(id, "github-3.4.0.tar.gz"); string(b) != "github tarball" {
		t.Errorf("downloaded file content = %q", b)
	}
	if b, _ := sim.FileData(id, "cessda.cdc-3.4.0.tar"); string(b) != "tar bytes of 3.4.0" {
		t.Errorf("archive content = %q", b)
	}
	for _, a := range sawAuth {
		if a != "" {
			t.Errorf("the download carried an Authorization header")
		}
	}
	d, _ := sim.Deposition(id)
	md := d["metadata"].(map[string]any)
	if d["state"] != "done" || md["upload_type"] != "software" || md["license"] != "apache-2.0" || md["publication_date"] != "2026-11-24" {
		t.Errorf("published deposition = %v", d)
	}
	if c := md["communities"].([]any); len(c) != 1 || c[0].(map[string]any)["identifier"] != "cessda" {
		t.Errorf("communities = %v", md["communities"])
	}
	if r := md["related_identifiers"].([]any); len(r) != 1 || !strings.Contains(fmt.Sprint(r[0]), "releases/tag/3.4.0") {
		t.Errorf("related_identifiers = %v", md["related_identifiers"])
	}
	if md["creators"].([]any)[0].(map[string]any)["affiliation"] != "CESSDA ERIC" {
		t.Errorf("creators = %v", md["creators"])
	}
}

func TestPublishSkipsSameChecksumAndReplacesChanged(t *testing.T) {
	sim, conn := setup(t)
	id := run(t, reserveStep(t, nil), enginetest.NewContext(t, "reserve", conn))["deposition_id"].(int)
	archive, readme, changelog := releaseFiles(t)
	files := []any{map[string]any{"source": archive}, map[string]any{"source": readme}, map[string]any{"source": changelog}}
	sim.Inject(zenodosim.Fault{Method: "POST", PathSuffix: "/actions/publish", Status: 503, Times: 1})
	sc := enginetest.NewContext(t, "publish", conn)
	_, err := publishStep(t, id, files).Run(context.Background(), sc.StepContext)
	if ok, _ := engine.IsTransient(err); !ok {
		t.Fatalf("503 on publish: want transient, got %v", err)
	}
	if sim.Uploads() != 3 {
		t.Fatalf("uploads = %d, want 3", sim.Uploads())
	}
	must(t, os.WriteFile(readme, []byte("# CDC, fixed\n"), 0o644))
	run(t, publishStep(t, id, files), sc)
	if sim.Uploads() != 4 {
		t.Errorf("uploads = %d, want 4 (only the changed README again)", sim.Uploads())
	}
	if b, _ := sim.FileData(id, "README.md"); string(b) != "# CDC, fixed\n" {
		t.Errorf("README was not replaced: %q", b)
	}
	if sim.Publications() != 1 {
		t.Errorf("publications = %d", sim.Publications())
	}
}

func TestPublishSecondRunIsNoop(t *testing.T) {
	sim, conn := setup(t)
	id := run(t, reserveStep(t, nil), enginetest.NewContext(t, "reserve", conn))["deposition_id"].(int)
	archive, readme, changelog := releaseFiles(t)
	files := []any{map[string]any{"source": archive}, map[string]any{"source": readme}, map[string]any{"source": changelog}}
	first := run(t, publishStep(t, id, files), enginetest.NewContext(t, "publish", conn))
	writes := sim.Writes()
	second := run(t, publishStep(t, id, files), enginetest.NewContext(t, "publish", conn))
	if fmt.Sprint(first) != fmt.Sprint(second) {
		t.Errorf("outputs differ: %v vs %v", first, second)
	}
	if sim.Publications() != 1 || sim.Uploads() != 3 || sim.Writes() != writes {
		t.Errorf("second run wrote: publications %d uploads %d writes %d→%d", sim.Publications(), sim.Uploads(), writes, sim.Writes())
	}
	plan, err := publishStep(t, id, files).Plan(context.Background(), enginetest.NewContext(t, "publish", conn).StepContext)
	if err != nil || !plan.NoChange {
		t.Errorf("plan of a published deposition = %+v, %v; want no change", plan, err)
	}
	// Reserving this version again now finds the published record and its DOI.
	again := run(t, reserveStep(t, nil), enginetest.NewContext(t, "reserve", conn))
	if again["doi"] != first["doi"] || sim.Created() != 1 {
		t.Errorf("reserve after publish: %v (created %d)", again, sim.Created())
	}
}

func TestPublishValidationErrorNamesTheField(t *testing.T) {
	sim, conn := setup(t)
	id := run(t, reserveStep(t, nil), enginetest.NewContext(t, "reserve", conn))["deposition_id"].(int)
	_, err := publishStep(t, id, nil).Run(context.Background(), enginetest.NewContext(t, "publish", conn).StepContext)
	if err == nil {
		t.Fatal("publishing without files succeeded")
	}
	if ok, _ := engine.IsTransient(err); ok {
		t.Errorf("a validation error is not transient: %v", err)
	}
	var ae *zenodo.APIError
	if !errors.As(err, &ae) || ae.Status != 400 {
		t.Fatalf("want a 400 APIError, got %v", err)
	}
	for _, want := range []string{"zenodo: 400", "files.enabled", "Missing uploaded files"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if sim.Publications() != 0 {
		t.Error("published")
	}
}

func TestRateLimitAsksToRetryAfter(t *testing.T) {
	clock := engine.NewFakeClock(time.Date(2026, 11, 24, 13, 0, 0, 0, time.UTC))
	sim, conn := setup(t, zenodosim.WithRateLimit(2, time.Minute), zenodosim.WithClock(clock.Now))
	sc := enginetest.NewContext(t, "reserve", conn)
	sc.Clock = clock
	run(t, reserveStep(t, nil), sc) // list + create: the window's two requests
	clock.Advance(15 * time.Second)
	_, err := reserveStep(t, nil).Run(context.Background(), sc.StepContext)
	ok, after := engine.IsTransient(err)
	if !ok || after != 45*time.Second {
		t.Fatalf("want RetryAfter 45s, got transient=%v after=%v err=%v", ok, after, err)
	}
	if !strings.Contains(err.Error(), "429") {
		t.Errorf("error = %v", err)
	}
	clock.Advance(after)
	run(t, reserveStep(t, nil), sc)
	if sim.Created() != 1 {
		t.Errorf("created = %d", sim.Created())
	}
}

func TestRateLimitResetHeaderFallback(t *testing.T) {
	now := time.Date(2026, 11, 24, 13, 0, 0, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-RateLimit-Reset", fmt.Sprint(now.Add(42*time.Second).Unix()))
		w.WriteHeader(429)
	}))
	defer srv.Close()
	c, err := zenodo.NewClient(srv.URL+"/api", nil, canary)
	must(t, err)
	c.Now = func() time.Time { return now }
	_, err = c.Get(context.Background(), 1)
	if ok, after := engine.IsTransient(err); !ok || after != 42*time.Second {
		t.Errorf("want RetryAfter 42s from X-RateLimit-Reset, got %v %v (%v)", ok, after, err)
	}
}

func TestServerErrorsAndDroppedConnectionsAreTransient(t *testing.T) {
	for _, f := range []zenodosim.Fault{
		{Method: "GET", Status: 502, Times: 1},
		{Method: "GET", Drop: true, Times: 1},
	} {
		sim, conn := setup(t)
		sim.Inject(f)
		sc := enginetest.NewContext(t, "reserve", conn)
		_, err := reserveStep(t, nil).Run(context.Background(), sc.StepContext)
		if ok, _ := engine.IsTransient(err); !ok {
			t.Errorf("fault %+v: want transient, got %v", f, err)
		}
		if sim.Created() != 0 {
			t.Errorf("fault %+v: created a draft despite the failed look-up", f)
		}
		run(t, reserveStep(t, nil), sc)
	}
}

func TestSlowAnswerStillWorks(t *testing.T) {
	sim, conn := setup(t)
	sim.Inject(zenodosim.Fault{Delay: 20 * time.Millisecond, Times: 2})
	run(t, reserveStep(t, nil), enginetest.NewContext(t, "reserve", conn))
	if sim.Created() != 1 {
		t.Errorf("created = %d", sim.Created())
	}
}

func TestPlanMakesNoWrites(t *testing.T) {
	sim, conn := setup(t)
	_, concept := sim.AddPublished(zenodosim.Published{Title: "CDC 3.3.0", Version: "3.3.0", Files: map[string][]byte{"a": []byte("a")}})
	sc := enginetest.NewContext(t, "reserve", conn)
	p, err := reserveStep(t, nil).Plan(context.Background(), sc.StepContext)
	must(t, err)
	if p.NoChange || !strings.Contains(p.Action, "reserve a Zenodo DOI for version 3.4.0") {
		t.Errorf("plan = %+v", p)
	}
	p, err = reserveStep(t, map[string]any{"concept_id": concept}).Plan(context.Background(), sc.StepContext)
	must(t, err)
	if !strings.Contains(p.Action, fmt.Sprintf("new version of concept %d", concept)) {
		t.Errorf("plan = %+v", p)
	}
	pub := enginetest.NewContext(t, "publish", conn)
	pub.SetUnknown("deposition_id")
	p, err = publishStep(t, 0, []any{map[string]any{"source": "cdc.tar"}}).Plan(context.Background(), pub.StepContext)
	must(t, err)
	if !strings.Contains(p.Action, engine.KnownAfterRun) || len(p.Details) == 0 {
		t.Errorf("plan = %+v", p)
	}
	if sim.Writes() != 0 {
		t.Fatalf("plan wrote %d times", sim.Writes())
	}
	// After the draft exists, the plan says it is reused.
	id := run(t, reserveStep(t, nil), sc)["deposition_id"].(int)
	writes := sim.Writes()
	p, err = reserveStep(t, nil).Plan(context.Background(), enginetest.NewContext(t, "reserve", conn).StepContext)
	must(t, err)
	if !p.NoChange || !strings.Contains(p.Action, fmt.Sprint(id)) {
		t.Errorf("plan after run = %+v", p)
	}
	p, err = publishStep(t, id, nil).Plan(context.Background(), enginetest.NewContext(t, "publish", conn).StepContext)
	must(t, err)
	if p.NoChange {
		t.Errorf("publish plan of a draft says no change: %+v", p)
	}
	if sim.Writes() != writes {
		t.Errorf("plan wrote")
	}
}

func TestCredentials(t *testing.T) {
	t.Run("wrong token", func(t *testing.T) {
		sim := zenodosim.New(zenodosim.WithToken("the-right-one", 1))
		defer sim.Close()
		t.Setenv("ZENODO_TOKEN", canary)
		conn := &engine.Connection{Name: "zenodo", Type: "zenodo", URL: sim.URL(), TokenEnv: "ZENODO_TOKEN"}
		_, err := reserveStep(t, nil).Run(context.Background(), enginetest.NewContext(t, "reserve", conn).StepContext)
		if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "check the token in ZENODO_TOKEN") {
			t.Errorf("err = %v", err)
		}
		if err != nil && strings.Contains(err.Error(), canary) {
			t.Error("the token is in the error")
		}
	})
	t.Run("missing token", func(t *testing.T) {
		sim, _ := setup(t)
		conn := &engine.Connection{Name: "zenodo", Type: "zenodo", URL: sim.URL(), TokenEnv: "ZENODO_TOKEN_UNSET_FOR_TEST"}
		_, err := reserveStep(t, nil).Run(context.Background(), enginetest.NewContext(t, "reserve", conn).StepContext)
		if err == nil || !strings.Contains(err.Error(), "ZENODO_TOKEN_UNSET_FOR_TEST") || !strings.HasPrefix(err.Error(), "zenodo:") {
			t.Errorf("err = %v", err)
		}
		if len(sim.Requests()) != 0 {
			t.Error("requests were sent without a token")
		}
	})
	t.Run("missing scope", func(t *testing.T) {
		sim := zenodosim.New(zenodosim.WithToken(canary, 1, zenodosim.ScopeWrite))
		defer sim.Close()
		conn := &engine.Connection{Name: "zenodo", Type: "zenodo", URL: sim.URL(), Token: canary}
		id := run(t, reserveStep(t, nil), enginetest.NewContext(t, "reserve", conn))["deposition_id"].(int)
		archive, _, _ := releaseFiles(t)
		_, err := publishStep(t, id, []any{map[string]any{"source": archive}}).Run(context.Background(), enginetest.NewContext(t, "publish", conn).StepContext)
		if err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "deposit:actions") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestCanaryTokenNeverLeaks(t *testing.T) {
	sim, conn := setup(t)
	_, concept := sim.AddPublished(zenodosim.Published{Title: "CDC 3.3.0", Version: "3.3.0", Files: map[string][]byte{"a": []byte("a")}})
	archive, readme, changelog := releaseFiles(t)
	var texts []string
	sc := enginetest.NewContext(t, "reserve", conn)
	step := reserveStep(t, map[string]any{"concept_id": concept})
	p, err := step.Plan(context.Background(), sc.StepContext)
	must(t, err)
	texts = append(texts, fmt.Sprint(p))
	res := run(t, step, sc)
	texts = append(texts, fmt.Sprint(res), sc.LogText(), fmt.Sprint(sc.Links()))
	pub := enginetest.NewContext(t, "publish", conn)
	files := []any{map[string]any{"source": archive}, map[string]any{"source": readme}, map[string]any{"source": changelog}}
	out := run(t, publishStep(t, res["deposition_id"].(int), files), pub)
	texts = append(texts, fmt.Sprint(out), pub.LogText(), fmt.Sprint(pub.Links()))
	// Errors: a validation failure, a 5xx, a dropped connection, a rate limit, a bad token.
	id2 := run(t, enginetest.Decode(t, "zenodo.reserve_doi", map[string]any{"title": "X", "version": "9"}), enginetest.NewContext(t, "r", conn))["deposition_id"].(int)
	_, err = publishStep(t, id2, nil).Run(context.Background(), enginetest.NewContext(t, "p", conn).StepContext)
	texts = append(texts, fmt.Sprint(err))
	for _, f := range []zenodosim.Fault{{Status: 500, Times: 1}, {Drop: true, Times: 1}, {Status: 429, Times: 1}} {
		sim.Inject(f)
		_, err = reserveStep(t, nil).Run(context.Background(), enginetest.NewContext(t, "r", conn).StepContext)
		texts = append(texts, fmt.Sprint(err))
	}
	bad := *conn
	bad.Token = canary + "-revoked"
	_, err = reserveStep(t, nil).Run(context.Background(), enginetest.NewContext(t, "r", &bad).StepContext)
	texts = append(texts, fmt.Sprint(err))
	for _, s := range texts {
		if strings.Contains(s, canary) {
			t.Errorf("the token leaked into %q", s)
		}
	}
	for _, r := range sim.Requests() {
		if strings.Contains(r.URL(), canary) || strings.Contains(r.URL(), "access_token") {
			t.Errorf("the token is in a request URL: %s", r.URL())
		}
	}
}

func TestErrorBodyForms(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"message":"Validation error.","status":400,"errors":[{"code":10,"message":"Not a valid choice","field":"access_right"}]}`, "access_right: Not a valid choice"},
		{`{"status":400,"message":"A validation error occurred.","errors":[{"field":"metadata.creators","messages":["Missing data for required field."]}]}`, "metadata.creators: Missing data for required field."},
		{`{"status":415,"message":"Unsupported media type"}`, "must be application/json"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			if strings.Contains(tc.body, "415") {
				w.WriteHeader(415)
			} else {
				w.WriteHeader(400)
			}
			_, _ = w.Write([]byte(tc.body))
		}))
		c, err := zenodo.NewClient(srv.URL+"/api/", nil, canary)
		must(t, err)
		_, err = c.Update(context.Background(), 7, map[string]any{"title": "x"})
		srv.Close()
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "PUT "+srv.URL+"/api/deposit/depositions/7") {
			t.Errorf("body %s: err = %v, want it to contain %q", tc.body, err, tc.want)
		}
	}
}

func TestPublishNewVersionDropsThePreviousArchive(t *testing.T) {
	sim, conn := setup(t)
	_, concept := sim.AddPublished(zenodosim.Published{Title: "CDC 3.3.0", Version: "3.3.0",
		Files: map[string][]byte{"cessda.cdc-3.3.0.tar": []byte("old"), "README.md": []byte("# CDC\n")}})
	res := run(t, reserveStep(t, map[string]any{"concept_id": concept}), enginetest.NewContext(t, "reserve", conn))
	id := res["deposition_id"].(int)
	archive, readme, changelog := releaseFiles(t)
	out := run(t, publishStep(t, id, []any{map[string]any{"source": archive}, map[string]any{"source": readme}, map[string]any{"source": changelog}}),
		enginetest.NewContext(t, "publish", conn))
	if out["doi"] != res["doi"] || out["concept_doi"] != fmt.Sprintf("10.5281/zenodo.%d", concept) {
		t.Errorf("outputs = %v (reserved %v)", out, res)
	}
	if _, ok := sim.FileData(id, "cessda.cdc-3.3.0.tar"); ok {
		t.Error("the new version still holds the previous version's archive")
	}
	// README.md was copied from 3.3.0 with the same content: not uploaded again.
	if sim.Uploads() != 2 {
		t.Errorf("uploads = %d, want 2 (archive and CHANGELOG)", sim.Uploads())
	}
	d, _ := sim.Deposition(id)
	if d["state"] != "done" || d["metadata"].(map[string]any)["version"] != "3.4.0" {
		t.Errorf("deposition = %v", d)
	}
}

func TestHungRequestTimesOutAsTransient(t *testing.T) {
	sim, conn := setup(t)
	conn.Settings = map[string]string{"timeout": "50ms"}
	sim.Inject(zenodosim.Fault{Method: "GET", Delay: 2 * time.Second, Times: 1})
	start := time.Now()
	_, err := reserveStep(t, nil).Run(context.Background(), enginetest.NewContext(t, "reserve", conn).StepContext)
	if ok, _ := engine.IsTransient(err); !ok {
		t.Fatalf("want transient, got %v", err)
	}
	if time.Since(start) > time.Second {
		t.Errorf("the request was not cut off at the timeout (took %v)", time.Since(start))
	}
	if sim.Created() != 0 {
		t.Error("created after a failed look-up")
	}
}
