package rehearse_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/steps/rehearsal"
	"github.com/cessda/runbook/steps/rehearsal/rehearse"
)

// A step type with a simulator of its own, registered here as a new step type's packages
// would register themselves (the step type and its connection type with the engine; the
// simulated service and its seeder with rehearse), and rehearsed through rehearsal.New
// with no edit of steps/rehearsal.
//
// ping.send posts `times` pings to a box of the ping service. The simulated service
// answers only pings to a box the rehearsal seeded, and only as many as the seeder
// (reading box and times from the playbook's plan, typed) allowed: the release succeeds
// only if the world was seeded from the playbook's steps.

const pingToken = "ping-rehearsal-token"

func init() {
	engine.RegisterConnectionType(engine.ConnectionType{Name: "ping", Summary: "the test-only ping service", DefaultTokenEnv: "PING_TOKEN"})
	engine.Register(engine.StepType{Name: "ping.send", Summary: "ping a box", Connection: "ping",
		New: func() engine.Step { return &pingStep{} }, Outputs: []engine.Output{{Name: "answered", Type: engine.TypeInt}}})
	rehearse.RegisterService(rehearse.Service{Connection: "ping", Start: func(rehearse.Host) (rehearse.Sim, error) { return newPingSim(), nil }})
	rehearse.RegisterSeeder(rehearse.Seeder{Step: "ping.send", New: func() rehearse.Seed { return &pingSeed{} }})
}

type pingStep struct {
	Connection string `json:"connection"`
	Box        string `json:"box" required:"true"`
	Times      int    `json:"times" default:"1"`
}

func (p *pingStep) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	return engine.Plan{Action: fmt.Sprintf("ping box %s %d times", p.Box, p.Times)}, nil
}

func (p *pingStep) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	conn, err := sc.Connection(p.Connection, "ping")
	if err != nil {
		return nil, err
	}
	token, err := conn.Secret()
	if err != nil {
		return nil, err
	}
	for i := 0; i < p.Times; i++ {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, conn.URL+"boxes/"+p.Box+"/pings", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := conn.HTTP().Do(req)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			return nil, fmt.Errorf("ping %d of box %s: %s", i+1, p.Box, resp.Status)
		}
	}
	return engine.Outputs{"answered": p.Times}, nil
}

// pingSim is the ping service: boxes with a quota of pings, each seeded by the rehearsal.
type pingSim struct {
	srv   *httptest.Server
	mu    sync.Mutex
	quota map[string]int // box -> pings it still answers
	pings int
}

func newPingSim() *pingSim {
	s := &pingSim{quota: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /boxes/{box}/pings", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		box := r.PathValue("box")
		switch left, seeded := s.quota[box]; {
		case r.Header.Get("Authorization") != "Bearer "+pingToken:
			w.WriteHeader(http.StatusUnauthorized)
		case !seeded:
			w.WriteHeader(http.StatusNotFound)
		case left == 0:
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			s.quota[box]--
			s.pings++
			w.WriteHeader(http.StatusNoContent)
		}
	})
	s.srv = httptest.NewServer(mux)
	return s
}

func (s *pingSim) Connect(_ *engine.ConnectionDecl, c *engine.Connection) error {
	c.URL, c.Token = s.srv.URL+"/", pingToken
	return nil
}

func (s *pingSim) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return map[string]int{"ping": s.pings}
}

func (s *pingSim) Close() { s.srv.Close() }

// pingSeed opens the box a ping.send names, for as many pings as it sends.
type pingSeed struct {
	Box   string `json:"box"`
	Times int    `json:"times"`
}

func (p *pingSeed) Seed(sc *rehearse.SeedContext) error {
	if sc.Unknown("box") {
		sc.Notef("cannot open the box of %s: known only after run", sc.Step.ID)
		return nil
	}
	s := sc.Sim("ping").(*pingSim)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.quota[p.Box] += p.Times
	sc.Notef("opened box %s for %d pings", p.Box, p.Times)
	return nil
}

// TestNewStepTypeIsRehearsed: the playbook of the ping service is rehearsed end to end:
// its connection is pointed at the simulator, the world is seeded from its steps (one
// foreach item at a time), and the rehearsal counts the simulator's calls.
func TestNewStepTypeIsRehearsed(t *testing.T) {
	pb, err := engine.LoadFile("testdata/ping.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in, err := pb.ResolveInputs(map[string]string{"times": "3"})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := rehearsal.New(context.Background(), pb, in, rehearsal.Answers{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	rep, err := engine.Execute(context.Background(), pb, engine.Options{Inputs: in, Mode: "rehearsal", Clock: sb.Clock, Connect: sb.Connect, Actor: "operator"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != engine.RunSucceeded {
		t.Fatalf("status %s at %s: %s\nnotes: %q", rep.Status, rep.FailedStep, rep.Reason, sb.Notes())
	}
	if got := sb.Calls()["ping"]; got != 5 {
		t.Errorf("the ping service answered %d pings, want 5 (3 to alpha, 1 each to beta and gamma)", got)
	}
	sim := sb.Sim("ping").(*pingSim)
	sim.mu.Lock()
	left := maps.Clone(sim.quota)
	sim.mu.Unlock()
	if want := map[string]int{"alpha": 0, "beta": 0, "gamma": 0}; !reflect.DeepEqual(left, want) {
		t.Errorf("boxes left %v, want every box seeded and used up: %v", left, want)
	}
	if notes := strings.Join(sb.Notes(), "\n"); !strings.Contains(notes, "opened box alpha for 3 pings") {
		t.Errorf("notes do not say the box was opened:\n%s", notes)
	}
}

// TestDecode: a planned step's values known only after the run are left zero (and
// reported), dropped from lists and kept as keys of maps; the rest decode by json tags.
func TestDecode(t *testing.T) {
	var p struct {
		Name   string         `json:"name"`
		Count  int            `json:"count"`
		Names  []string       `json:"names"`
		Params map[string]any `json:"params"`
		Later  string         `json:"later"`
	}
	unknown, err := rehearse.Decode(map[string]any{
		"name": "a", "count": float64(3), "later": engine.KnownAfterRun,
		"names":  []any{"x", engine.KnownAfterRun, "y"},
		"params": map[string]any{"TAG": engine.KnownAfterRun, "CLUSTER": "prod"},
	}, &p)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "a" || p.Count != 3 || p.Later != "" || !reflect.DeepEqual(p.Names, []string{"x", "y"}) ||
		!reflect.DeepEqual(p.Params, map[string]any{"TAG": nil, "CLUSTER": "prod"}) {
		t.Errorf("decoded %+v", p)
	}
	if !reflect.DeepEqual(unknown, map[string]bool{"later": true}) {
		t.Errorf("unknown %v, want later", unknown)
	}
	if _, err := rehearse.Decode(map[string]any{"count": "many"}, &p); err == nil {
		t.Error("a string decoded into an int")
	}
}

// TestRegisterTwicePanics: two services for one connection type, or two seeders for one
// step type, are a programming error found at start-up.
func TestRegisterTwicePanics(t *testing.T) {
	for name, register := range map[string]func(){
		"service": func() {
			rehearse.RegisterService(rehearse.Service{Connection: "ping", Start: func(rehearse.Host) (rehearse.Sim, error) { return nil, nil }})
		},
		"seeder": func() {
			rehearse.RegisterSeeder(rehearse.Seeder{Step: "ping.send", New: func() rehearse.Seed { return &pingSeed{} }})
		},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("a second %s for ping was registered", name)
				}
			}()
			register()
		}()
	}
}
