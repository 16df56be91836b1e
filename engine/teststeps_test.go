package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cessda/runbook/engine"
)

// Test step types: small, deterministic, and counting their effects.

type echoStep struct {
	Message string            `json:"message" desc:"text to echo" required:"true"`
	Count   int               `json:"count" desc:"a number" default:"1"`
	Labels  []string          `json:"labels" desc:"some labels"`
	Extra   map[string]string `json:"extra" desc:"extra values"`
	Token   string            `json:"token" desc:"a secret" secret:"true"`
	Mode    string            `json:"mode" desc:"a mode" enum:"fast,slow" default:"fast"`
	Wait    engine.Duration   `json:"wait" desc:"a duration"`
}

var echoRuns atomic.Int64

func (s *echoStep) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	return engine.Plan{Action: "echo " + sc.Show("message", s.Message)}, nil
}

func (s *echoStep) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	echoRuns.Add(1)
	sc.Logf("echo %s", s.Message)
	return engine.Outputs{"text": s.Message, "length": len(s.Message), "labels": s.Labels}, nil
}

type flakyStep struct {
	Key      string `json:"key" required:"true" desc:"counter key"`
	Failures int    `json:"failures" desc:"transient failures before success"`
	Fatal    bool   `json:"fatal" desc:"fail permanently"`
}

var flakyCounts = map[string]*atomic.Int64{}

func counter(key string) *atomic.Int64 {
	if c, ok := flakyCounts[key]; ok {
		return c
	}
	c := &atomic.Int64{}
	flakyCounts[key] = c
	return c
}

func (s *flakyStep) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	return engine.Plan{Action: "flake"}, nil
}

func (s *flakyStep) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	n := counter(s.Key).Add(1)
	if s.Fatal {
		return nil, errors.New("permanent failure")
	}
	if int(n) <= s.Failures {
		return nil, engine.Transient(fmt.Errorf("transient failure %d", n))
	}
	return engine.Outputs{"calls": int(n)}, nil
}

type gateStep struct {
	Decision string `json:"decision" desc:"approve, reject or wait" default:"wait"`
}

func (s *gateStep) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	return engine.Plan{Action: "wait for a person"}, nil
}

func (s *gateStep) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	var c engine.Confirmation
	if sc.Recall("confirmation", &c) {
		if c.Answer == "yes" {
			return engine.Outputs{"by": c.By}, nil
		}
		return nil, engine.Rejected(c.By, c.Reason)
	}
	switch s.Decision {
	case "approve":
		return engine.Outputs{"by": "owner"}, nil
	case "reject":
		return nil, engine.Rejected("owner", "tests fail on staging")
	}
	return nil, engine.Waiting("the service owner has not answered")
}

type blockStep struct{}

func (s *blockStep) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	return engine.Plan{Action: "block"}, nil
}

// Run blocks until its context ends: it stands for a long step interrupted by a signal.
func (s *blockStep) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	var done string
	if sc.Recall("intent", &done) {
		return engine.Outputs{}, nil // a resumed run finds what the first attempt made
	}
	if err := sc.Record("intent", "started"); err != nil {
		return nil, err
	}
	blockStarted <- struct{}{}
	<-ctx.Done()
	return nil, ctx.Err()
}

var blockStarted = make(chan struct{}, 16)

// effectStep makes one thing in a pretend world, idempotently, as real steps do (a tag
// that exists is found, not made again): calls counts its runs, made its effects.
type effectStep struct {
	Key string `json:"key" required:"true" desc:"what it makes"`
}

var effects = struct {
	sync.Mutex
	calls, made map[string]int
}{calls: map[string]int{}, made: map[string]int{}}

func (s *effectStep) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	return engine.Plan{Action: "make " + s.Key}, nil
}

func (s *effectStep) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	effects.Lock()
	defer effects.Unlock()
	effects.calls[s.Key]++
	if effects.made[s.Key] == 0 {
		effects.made[s.Key]++
	}
	return engine.Outputs{}, nil
}

// effectCounts returns how often key's step ran and how often it made its thing.
func effectCounts(key string) (calls, made int) {
	effects.Lock()
	defer effects.Unlock()
	return effects.calls[key], effects.made[key]
}

func init() {
	engine.Register(engine.StepType{Name: "test.echo", Summary: "echo a message", New: func() engine.Step { return &echoStep{} },
		Outputs: []engine.Output{{Name: "text", Type: engine.TypeString}, {Name: "length", Type: engine.TypeInt}, {Name: "labels", Type: engine.ListOf(engine.TypeString)}}})
	engine.Register(engine.StepType{Name: "test.flaky", Summary: "fail transiently", New: func() engine.Step { return &flakyStep{} },
		Outputs: []engine.Output{{Name: "calls", Type: engine.TypeInt}}})
	engine.Register(engine.StepType{Name: "test.gate", Summary: "a gate", Gate: true, New: func() engine.Step { return &gateStep{} },
		Outputs: []engine.Output{{Name: "by", Type: engine.TypeString}}})
	engine.Register(engine.StepType{Name: "test.effect", Summary: "make a thing once", New: func() engine.Step { return &effectStep{} }})
	engine.Register(engine.StepType{Name: "test.block", Summary: "block until cancelled", New: func() engine.Step { return &blockStep{} }})
	engine.RegisterConnectionType(engine.ConnectionType{Name: "testsvc", Summary: "a test service", Settings: map[string]string{"user": "a user"}, DefaultTokenEnv: "TESTSVC_TOKEN"})
}
