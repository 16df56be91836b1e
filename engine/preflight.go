package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"
)

// Preflighter is implemented by step types that can check, before a run starts and
// without changing anything, that the step will be allowed to do its work: its secret is
// there and accepted, its token may write to the repository, its kube context allows the
// verbs it uses, its Jenkins job exists and takes the parameters it passes.
//
// Preflight gets the step's parameters rendered as for a plan. A parameter that depends on
// earlier steps' outputs is marked sc.Unknown; it is rendered with those outputs as zero
// values, so its shape (a map's keys, a list of the right length) can be checked, never its
// values. Return nil when everything the step needs is in place, or an error (several
// joined with go-multierror) whose message says what is wrong and how to fix it, naming
// the connection; the engine adds which steps it concerns. Share look-ups between steps
// with sc.Once.
type Preflighter interface {
	Preflight(ctx context.Context, sc *StepContext) error
}

// preflightMemo is shared by the steps of one preflight: a check is made once per key.
type preflightMemo struct {
	mu   sync.Mutex
	done map[string]*memoEntry
	// ids are the identities the connections' credentials stand for (see Identify).
	ids map[string]string
}

// Identify records, during a preflight, who a connection's credentials act as (the GitHub
// login of the token, the Jenkins user): the report says who actually did the work,
// apart from the roles the playbook assigns. Outside a preflight it does nothing.
func (sc *StepContext) Identify(connection, who string) {
	m := sc.memo
	if m == nil || who == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ids == nil {
		m.ids = map[string]string{}
	}
	m.ids[connection] = who
}

type memoEntry struct {
	once sync.Once
	err  error
}

// Once runs check at most once per key during a preflight and returns its result every
// time: the steps of one connection share one check of its token, one look at each
// repository. Outside a preflight it simply runs check.
func (sc *StepContext) Once(key string, check func() error) error {
	m := sc.memo
	if m == nil {
		return check()
	}
	m.mu.Lock()
	if m.done == nil {
		m.done = map[string]*memoEntry{}
	}
	e := m.done[key]
	if e == nil {
		e = &memoEntry{}
		m.done[key] = e
	}
	m.mu.Unlock()
	e.once.Do(func() { e.err = check() })
	return e.err
}

// PreflightProblem is one thing that would stop the run, with the steps it concerns.
type PreflightProblem struct {
	Message string   `json:"message"`
	Steps   []string `json:"steps"`
}

// PreflightReport is what a preflight found: nothing when the run can start.
type PreflightReport struct {
	Playbook string             `json:"playbook"`
	Checked  int                `json:"checked"` // steps (foreach items counted once) checked
	Problems []PreflightProblem `json:"problems"`
	// Identities: connection name -> who its credentials act as ("github" -> "release-bot").
	Identities map[string]string `json:"identities,omitempty"`
}

// Err is nil when the preflight found nothing, else an error listing every problem.
func (p *PreflightReport) Err() error {
	if len(p.Problems) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "preflight of %s: %d problem(s); nothing was changed and no run was started:", p.Playbook, len(p.Problems))
	for _, pr := range p.Problems {
		fmt.Fprintf(&b, "\n  - %s\n    (steps: %s)", pr.Message, strings.Join(pr.Steps, ", "))
	}
	return errors.New(b.String())
}

// Preflight checks, before a run and without changing anything, that every step that
// may run can do its work: each step type that implements Preflighter says whether its
// service lets it; for the others, the connection's secret is there (token accepted, permissions,
// job and parameters, kube verbs). Steps whose condition is already false are not
// checked; steps whose condition depends on earlier results are (they may run). Every
// problem is reported at once, with the steps it concerns.
func Preflight(ctx context.Context, pb *Playbook, inputs map[string]any, po PlanOptions) (*PreflightReport, error) {
	opts := Options{Inputs: inputs, Mode: po.Mode, Actor: po.Actor, Clock: po.Clock, Connect: po.Connect, Redactor: po.Redactor, RunID: "preflight"}
	opts.defaults(pb)
	r := newRun(pb, opts)
	if err := r.renderVars(); err != nil {
		return nil, err
	}
	memo := &preflightMemo{}
	problems := &preflightProblems{red: r.red, byMessage: map[string]*PreflightProblem{}}
	failure := map[string]any{"step": "", "error": "", "status": "", "rollback": true, "by": ""}
	unknownSteps := func(string) bool { return false }
	checked := 0
	for _, st := range pb.AllSteps() {
		// The outputs of earlier steps are zero values while checking: their shape is
		// known (a foreach step gives one per item), their values are not.
		env, err := r.stepEnv(st, failure, unknownSteps)
		if err != nil {
			continue
		}
		items, ok := r.preflightItems(st, env)
		if !ok {
			continue
		}
		checked++
		for i, item := range items {
			if i == 100 {
				break
			}
			itemEnv := env
			if st.Foreach != nil {
				itemEnv = env.with("item", item)
			}
			r.preflightItem(ctx, st, itemEnv, item, memo, problems)
		}
	}
	rep := &PreflightReport{Playbook: pb.File, Checked: checked, Identities: memo.ids}
	for _, p := range problems.list {
		rep.Problems = append(rep.Problems, *p)
	}
	return rep, nil
}

// preflightProblems collects a preflight's problems. One problem (a missing token, say)
// concerns many steps: it is listed once, in the order of the first step it concerns,
// with all of them.
type preflightProblems struct {
	red       *Redactor
	byMessage map[string]*PreflightProblem
	list      []*PreflightProblem
}

func (ps *preflightProblems) add(step string, err error) {
	for _, e := range flatten(err) {
		msg := ps.red.String(e.Error())
		p := ps.byMessage[msg]
		if p == nil {
			p = &PreflightProblem{Message: msg}
			ps.byMessage[msg] = p
			ps.list = append(ps.list, p)
		}
		if len(p.Steps) == 0 || p.Steps[len(p.Steps)-1] != step {
			p.Steps = append(p.Steps, step)
		}
	}
}

// preflightItems are the items a step is checked for (one, nil, without foreach), and
// whether it is checked at all: not when its foreach is not known yet, nor when its
// condition is already false.
func (r *Run) preflightItems(st *StepDecl, env *evalEnv) ([]any, bool) {
	items := []any{nil}
	if st.Foreach != nil {
		var unk []string
		v, err := env.render(st.Foreach, "foreach", &unk)
		list, ok := v.([]any)
		if err != nil || !ok || len(unk) > 0 {
			r.placeholder(st, 0)
			return nil, false
		}
		items = list
	}
	r.placeholder(st, len(items))
	if st.When != nil {
		if ok, err := env.evalCond(st.When); err == nil && !ok {
			return nil, false
		}
	}
	return items, true
}

// preflightItem checks one step (or one foreach item): its type's own checks
// (Preflighter), or else at least its connection's secret.
func (r *Run) preflightItem(ctx context.Context, st *StepDecl, env *evalEnv, item any, memo *preflightMemo, problems *preflightProblems) {
	var unknown []string
	if _, err := env.render(st.With, "", &unknown); err != nil {
		return
	}
	shaped := &evalEnv{vals: env.vals}
	rendered, err := shaped.render(st.With, "", nil)
	if err != nil {
		// The shape alone cannot be rendered: check what is known.
		rendered, _ = env.render(st.With, "", nil)
	}
	with, _ := rendered.(map[string]any)
	if with == nil {
		with = map[string]any{}
	}
	coerceParams(st.params, with)
	step, err := decodeParams(st.stepType, with)
	if err != nil {
		return
	}
	pf, ok := step.(Preflighter)
	if !ok {
		// A step type without its own checks: at least its connection's secret
		// (a Preflighter checks the secrets it really reads: a chat connection
		// with a webhook url needs none).
		if st.stepType.Connection != "" {
			name, _ := with["connection"].(string)
			if err := r.preflightSecret(name, st.stepType.Connection, memo); err != nil {
				problems.add(st.ID, err)
			}
		}
		return
	}
	sc := r.stepCtx(st, 0, item, 0)
	sc.Journal, sc.LogFunc, sc.LinkFunc, sc.memo = nil, nil, nil, memo
	sc.SetUnknown(unknown...)
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = preflightSafely(pctx, pf, sc)
	cancel()
	if err != nil {
		problems.add(st.ID, err)
	}
}

// preflightSecret checks, once per connection, that a connection that declares a secret
// has it.
func (r *Run) preflightSecret(name, typ string, memo *preflightMemo) error {
	decl, err := findConnection(r.pb.Connections, name, typ)
	if err != nil {
		return err
	}
	sc := &StepContext{memo: memo}
	return sc.Once("secret|"+decl.Name, func() error {
		c, err := r.Connection(decl.Name, typ)
		if err != nil {
			return err
		}
		if c.Token == "" && c.TokenEnv == "" && c.TokenFile == "" {
			return nil
		}
		_, err = c.Secret()
		return err
	})
}

// placeholder gives a step, while preflighting, outputs of zero values: n of each for a
// foreach step of n items.
func (r *Run) placeholder(st *StepDecl, n int) {
	outs := map[string]any{}
	for _, o := range st.stepType.Outputs {
		if st.Foreach == nil {
			outs[o.Name] = zeroValue(o.Type)
			continue
		}
		l := make([]any, n)
		for i := range l {
			l[i] = zeroValue(o.Type)
		}
		outs[o.Name] = l
	}
	r.mu.Lock()
	r.stepVals[st.ID] = map[string]any{"status": string(StepPending), "error": "", "attempts": 0, "outputs": outs}
	r.mu.Unlock()
}

func zeroValue(t Type) any {
	switch {
	case t == TypeString || t == TypeDuration:
		return ""
	case t == TypeInt:
		return 0
	case t == TypeFloat:
		return 0.0
	case t == TypeBool:
		return false
	case strings.HasPrefix(string(t), "list<"):
		return []any{}
	case t == TypeMap || strings.HasPrefix(string(t), "map<"):
		return map[string]any{}
	}
	return nil
}

// flatten splits joined errors (go-multierror, errors.Join) into their parts.
func flatten(err error) []error {
	var me *multierror.Error
	if errors.As(err, &me) {
		var out []error
		for _, e := range me.Errors {
			out = append(out, flatten(e)...)
		}
		return out
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

func preflightSafely(ctx context.Context, pf Preflighter, sc *StepContext) (err error) {
	defer func() {
		if x := recover(); x != nil {
			err = fmt.Errorf("preflight panicked: %v", x)
		}
	}()
	return pf.Preflight(ctx, sc)
}
