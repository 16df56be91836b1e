package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/cessda/runbook/engine/markdown"
)

// PlanDoc is a plan: what a run of the playbook with these inputs would do. It is a
// value (as Terraform's plan is) that can be printed, saved as JSON, diffed and reviewed.
type PlanDoc struct {
	Playbook string         `json:"playbook"`
	Product  string         `json:"product"`
	Title    string         `json:"title,omitempty"`
	Inputs   map[string]any `json:"inputs"`
	Hash     string         `json:"plan_hash"`
	// Offline is true when no service was asked: every step's action is described from
	// its step type and its rendered parameters.
	Offline bool           `json:"offline,omitempty"`
	Steps   []*PlannedStep `json:"steps"`
	// Vars are the playbook's vars as rendered for these inputs. They are not part of the
	// plan's JSON (the steps show what they do with them); a rehearsal reads them to build
	// the world the playbook describes (its components, its jobs' parameters).
	Vars map[string]any `json:"-"`
}

// PlannedStep is one step of a plan.
type PlannedStep struct {
	ID      string  `json:"id"`
	Type    string  `json:"type"`
	Name    string  `json:"name,omitempty"`
	Role    string  `json:"role,omitempty"`
	Section Section `json:"section"`
	// Phase is the procedure's section the step belongs to (Preparing, Performing, ...).
	Phase     string `json:"phase,omitempty"`
	When      string `json:"when,omitempty"`
	Condition string `json:"condition"` // "always", "true", "false", "known after run"
	// OnError is what the step's failure means for the release (stop, warn, rollback).
	OnError ErrorPolicy `json:"on_error"`
	Foreach any         `json:"foreach,omitempty"`
	// Items name the foreach items (a component's repo, name, id or image; else the value).
	Items  []string       `json:"items,omitempty"`
	Params map[string]any `json:"params,omitempty"`
	// ItemParams are the rendered parameters of every foreach item (at most 100).
	ItemParams []map[string]any `json:"item_params,omitempty"`
	Unknown    []string         `json:"unknown,omitempty"`
	// KnownAfter says, for each parameter in Unknown (and "foreach"), the steps whose
	// results it is made of.
	KnownAfter map[string][]string `json:"known_after,omitempty"`
	Action     string              `json:"action,omitempty"`
	Details    []string            `json:"details,omitempty"`
	NoChange   bool                `json:"no_change,omitempty"`
	// DependsOn is the earlier step whose effect this step's plan needs: asked now, the
	// step's type said it would fail (or could not plan), which is expected before that
	// step has run. DependsOnReason is what it said.
	DependsOn       string `json:"depends_on,omitempty"`
	DependsOnReason string `json:"depends_on_reason,omitempty"`
	Error           string `json:"error,omitempty"`
}

// PlanOptions configure planning.
type PlanOptions struct {
	Mode     Mode
	Actor    string
	Clock    Clock
	Connect  func(*ConnectionDecl) (*Connection, error)
	Redactor *Redactor
	// Offline skips the step types' own Plan (which may make read-only calls to services):
	// the plan then describes each step from its type's summary and rendered parameters.
	Offline bool
}

// planReadOnlyTypes are step types whose effects no later step reads: they look at the
// world (verify, snapshot, smoke checks, CI builds, subtasks), wait for people or time,
// or tell people. Gate types (StepType.Gate) count too. Every other step type is taken
// to change what later steps read (an issue, a tag, a changelog, a deployment).
var planReadOnlyTypes = map[string]bool{
	"kubernetes.verify": true, "kubernetes.snapshot": true, "http.check": true,
	"jenkins.commit_build": true, "github.subtasks_done": true, "github.release_notes": true,
	"github.checklist": true, "github.approval": true, "github.comment": true,
	"github.release_report": true, "schedule.window": true, "manual": true, "sleep": true,
	"notify.email": true, "notify.chat": true, "notify.role": true,
}

// changesWorld reports whether a step of this type changes what later steps read.
func changesWorld(t StepType, name string) bool {
	return !t.Gate && !planReadOnlyTypes[name]
}

// BuildPlan plans every step: it evaluates conditions, renders parameters and asks each
// step type what it would do. Nothing is changed anywhere.
//
// A plan is made before any step runs, so a step that reads what an earlier step changes
// (verify_production reads the deployment that deploy changes) finds the world as it is
// before the release, and its type says it would fail. The engine cannot know which step
// reads what; its rule, in words a reviewer can check:
//
//   - a step "changes the world" unless its type is a gate or one of planReadOnlyTypes;
//   - when a step's Plan fails, or its plan says "would fail now", and an earlier step
//     that changes the world would run before it (its condition is not false, it planned
//     without error and does not itself depend on another), the step is shown as
//     "depends on <the nearest such step>: <what its type said>" and not counted as an
//     error. Steps in on_failure and finally look back across the main steps too;
//   - errors in the step's own parameters (rendering, decoding, validation) and in its
//     connection (credentials, kubeconfig: the error names a connection "...") stay
//     errors, as does any failure of a step with no such earlier step.
func BuildPlan(ctx context.Context, pb *Playbook, inputs map[string]any, po PlanOptions) (*PlanDoc, error) {
	opts := Options{Inputs: inputs, Mode: po.Mode, Actor: po.Actor, Clock: po.Clock, Connect: po.Connect, Redactor: po.Redactor, RunID: "plan"}
	if opts.Mode == "" {
		opts.Mode = ModePlan
	}
	opts.defaults(pb)
	r := newRun(pb, opts)
	known := func(string) bool { return false }
	doc := &PlanDoc{Playbook: pb.File, Product: pb.Product, Title: pb.Title, Inputs: r.red.Value(inputs).(map[string]any), Hash: r.planHash, Offline: po.Offline}
	if err := r.renderVars(); err != nil {
		return nil, err
	}
	doc.Vars, _ = r.base["vars"].(map[string]any)
	lastWriter := "" // the nearest earlier step that changes the world and would run
	for _, st := range pb.AllSteps() {
		ps := &PlannedStep{ID: st.ID, Type: st.Type, Name: st.Name, Role: st.Role, Section: st.Section, Phase: st.Phase, Condition: "always", OnError: st.OnError}
		doc.Steps = append(doc.Steps, ps)
		writer := lastWriter
		r.planStep(ctx, st, ps, po.Offline, known, writer)
		// A step that depends on an earlier one passes that dependency on: it is not
		// itself the cause of what later steps find.
		if ps.Condition != "false" && ps.Error == "" && ps.DependsOn == "" && changesWorld(st.stepType, st.Type) {
			lastWriter = st.ID
		}
	}
	return doc, nil
}

// planStep fills ps: condition, parameters, and what the step would do. writer is the
// nearest earlier step that changes the world (see BuildPlan), or "".
func (r *Run) planStep(ctx context.Context, st *StepDecl, ps *PlannedStep, offline bool, known func(string) bool, writer string) {
	env, err := r.stepEnv(st, map[string]any{"step": KnownAfterRun, "error": KnownAfterRun, "status": KnownAfterRun}, known)
	if err != nil {
		ps.Error = err.Error()
		return
	}
	if !planCondition(st, ps, env) {
		return
	}
	itemEnv, ok := planForeach(st, ps, env)
	if !ok {
		return
	}
	r.planItemParams(st, ps, env)
	with, unknown, err := r.planParams(st, ps, itemEnv)
	if err != nil {
		ps.Error = err.Error()
		return
	}
	coerceParams(st.params, with)
	step, err := decodeParams(st.stepType, with)
	if err != nil {
		ps.Error = err.Error()
		return
	}
	if offline {
		ps.Action = describeOffline(st.stepType, st.Type, ps)
		return
	}
	r.planAction(ctx, st, ps, step, unknown, writer)
}

// planCondition evaluates a step's condition as far as it is known, and says whether
// the step is planned further (not when the condition is false or fails).
func planCondition(st *StepDecl, ps *PlannedStep, env *evalEnv) bool {
	if st.When == nil {
		return true
	}
	ps.When = st.When.Src
	ok, err := env.evalCond(st.When)
	switch {
	case isUnknown(err):
		ps.Condition = "known after run"
	case err != nil:
		ps.Condition, ps.Error = "error", err.Error()
		return false
	case ok:
		ps.Condition = "true"
	default:
		ps.Condition = "false"
		ps.Action = "skip: the condition is false"
		return false
	}
	return true
}

// planForeach renders a step's foreach, as far as it is known, and returns what its
// parameters are rendered with: the first item, or an item known after the run. It says
// whether the step is planned further (not when foreach fails or is empty).
func planForeach(st *StepDecl, ps *PlannedStep, env *evalEnv) (*evalEnv, bool) {
	if st.Foreach == nil {
		return env, true
	}
	var unk []string
	items, err := env.render(st.Foreach, "foreach", &unk)
	if err != nil {
		ps.Error = err.Error()
		return nil, false
	}
	ps.Foreach = items
	if len(unk) > 0 {
		addKnownAfter(ps, "foreach", templateDeps(st.Foreach))
	}
	list, ok := items.([]any)
	if !ok || len(unk) > 0 {
		return env.with("item", KnownAfterRun), true
	}
	if len(list) == 0 {
		ps.Action = "nothing to do: foreach is empty"
		return nil, false
	}
	for _, it := range list {
		ps.Items = append(ps.Items, itemLabel(it))
	}
	return env.with("item", list[0]), true
}

// planItemParams shows each item's parameters (of the first 100) of a foreach over
// more than one known item.
func (r *Run) planItemParams(st *StepDecl, ps *PlannedStep, env *evalEnv) {
	list, ok := ps.Foreach.([]any)
	if !ok || len(list) < 2 {
		return
	}
	for i, it := range list {
		if i == 100 {
			break
		}
		var unk []string
		x, err := env.with("item", it).render(st.With, "", &unk)
		if err != nil {
			break
		}
		m, _ := x.(map[string]any)
		ps.ItemParams = append(ps.ItemParams, r.showParams(st, m))
	}
}

// planParams renders a step's parameters as far as they are known: ps shows them and
// what the unknown ones wait for; the parameters returned leave the unknown ones out.
func (r *Run) planParams(st *StepDecl, ps *PlannedStep, env *evalEnv) (map[string]any, []string, error) {
	var unknown []string
	rendered, err := env.render(st.With, "", &unknown)
	if err != nil {
		return nil, nil, err
	}
	with, _ := rendered.(map[string]any)
	if with == nil {
		with = map[string]any{}
	}
	ps.Params = r.showParams(st, with)
	ps.Unknown = unknown
	if len(unknown) > 0 {
		deps := map[string][]string{}
		collectDeps(st.With, "", deps)
		for _, u := range unknown {
			addKnownAfter(ps, u, deps[u])
		}
	}
	for _, u := range unknown {
		delete(with, strings.SplitN(strings.SplitN(u, ".", 2)[0], "[", 2)[0])
	}
	return with, unknown, nil
}

// planAction asks the step's type what it would do. A failure that an earlier step
// changing the world (writer) may explain is shown as depending on it, not as an error.
func (r *Run) planAction(ctx context.Context, st *StepDecl, ps *PlannedStep, step Step, unknown []string, writer string) {
	sc := r.stepCtx(st, 0, nil, 0)
	sc.Journal, sc.LogFunc, sc.LinkFunc = nil, nil, nil
	sc.SetUnknown(unknown...)
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	p, err := planSafely(pctx, step, sc)
	cancel()
	if err != nil {
		msg := r.red.String(err.Error())
		if writer != "" && !connectionError(err) {
			ps.DependsOn, ps.DependsOnReason = writer, shortReason(msg)
			ps.Action = fmt.Sprintf("depends on %s: %s", writer, ps.DependsOnReason)
			return
		}
		ps.Error = msg
		return
	}
	ps.Action, ps.NoChange = r.red.String(p.Action), p.NoChange
	for _, d := range p.Details {
		d = r.red.String(d)
		if reason, ok := strings.CutPrefix(strings.TrimSpace(d), "would fail now: "); ok && writer != "" {
			if ps.DependsOn == "" {
				ps.DependsOn, ps.DependsOnReason = writer, shortReason(reason)
			}
			d = strings.Replace(d, "would fail now: ", "depends on "+writer+": ", 1)
		}
		ps.Details = append(ps.Details, d)
	}
}

// connectionError reports whether a plan error is about the step's connection (a missing
// token, an unreadable kubeconfig) rather than the state of the world: such an error
// would stop the run too, whatever ran before.
func connectionError(err error) bool {
	return errors.Is(err, ErrNoSecret) || strings.Contains(err.Error(), `connection "`)
}

func shortReason(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 240 {
		s = s[:237] + "..."
	}
	return s
}

func addKnownAfter(ps *PlannedStep, path string, deps []string) {
	if len(deps) == 0 {
		return
	}
	if ps.KnownAfter == nil {
		ps.KnownAfter = map[string][]string{}
	}
	seen := map[string]bool{}
	var out []string
	for _, d := range deps {
		if !seen[d] {
			seen[d] = true
			out = append(out, "steps."+d)
		}
	}
	ps.KnownAfter[path] = out
}

func templateDeps(v *Value) []string {
	if v == nil || v.Tmpl == nil {
		return nil
	}
	return v.Tmpl.Deps()
}

// collectDeps records, for every template in v, the steps it reads, under the path
// render reports it by when it is unknown.
func collectDeps(v *Value, path string, out map[string][]string) {
	if v == nil {
		return
	}
	switch v.kind {
	case kindTemplate:
		if d := v.Tmpl.Deps(); len(d) > 0 {
			out[path] = d
		}
	case kindList:
		for i, x := range v.List {
			collectDeps(x, fmt.Sprintf("%s[%d]", path, i), out)
		}
	case kindMap:
		for _, x := range v.Map {
			p := x.Key
			if path != "" {
				p = path + "." + x.Key
			}
			collectDeps(x.Val, p, out)
		}
	}
}

func planSafely(ctx context.Context, step Step, sc *StepContext) (p Plan, err error) {
	defer func() {
		if x := recover(); x != nil {
			err = fmt.Errorf("plan panicked: %v", x)
		}
	}()
	return step.Plan(ctx, sc)
}

func isUnknown(err error) bool {
	_, ok := err.(*errUnknown)
	return ok
}

// Errors returns the steps whose planning failed.
func (d *PlanDoc) Errors() []*PlannedStep {
	var out []*PlannedStep
	for _, s := range d.Steps {
		if s.Error != "" {
			out = append(out, s)
		}
	}
	return out
}

// WriteJSON writes the plan as JSON.
func (d *PlanDoc) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(d)
}

// describeOffline is a step's action in words without asking its services: the first
// clause of its type's summary and its key parameters (those the items share, for a
// foreach; each item's own are listed under it).
func describeOffline(t StepType, typ string, ps *PlannedStep) string {
	what := summaryClause(t.Summary)
	if what == "" {
		what = typ
	}
	if parts := keyParams(ps, ps.Params, varyingKeys(ps.ItemParams), false); len(parts) > 0 {
		what += ": " + strings.Join(parts, ", ")
	}
	if len(ps.Items) > 1 {
		what += fmt.Sprintf(" (for each of %d items)", len(ps.Items))
	}
	return what
}

// summaryClause is a step type's summary without its parenthetical remarks, up to its
// first semicolon and at most about 80 characters (cut after a comma), with a lower-case
// first letter, as a plan's actions are written.
func summaryClause(s string) string {
	var b strings.Builder
	depth := 0
	for _, r := range s {
		switch {
		case r == '(':
			depth++
		case r == ')' && depth > 0:
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	s = strings.Join(strings.Fields(b.String()), " ")
	s = strings.ReplaceAll(s, " ,", ",")
	if i := strings.Index(s, "; "); i > 0 {
		s = s[:i]
	}
	if len(s) > 80 {
		if i := strings.LastIndex(s[:80], ", "); i > 20 {
			s = s[:i]
		}
	}
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "."))
	if len(s) > 1 && s[0] >= 'A' && s[0] <= 'Z' && !(s[1] >= 'A' && s[1] <= 'Z') {
		s = strings.ToLower(s[:1]) + s[1:]
	}
	return s
}

const maxKeyParams = 4

// keyParams are the parameters that say what a step does, as "name value": required ones
// first, then the others in the type's order, leaving out secrets, empty values, defaults,
// nested objects and (for a foreach) the ones that differ between items. With only set,
// it keeps the varying ones instead (an item's own parameters).
func keyParams(ps *PlannedStep, params map[string]any, vary map[string]bool, only bool) []string {
	t, ok := LookupStepType(ps.Type)
	var decl []Param
	if ok {
		decl = ParamsOf(t)
	} else {
		for _, k := range sortedKeys(params) {
			decl = append(decl, Param{Name: k})
		}
	}
	sort.SliceStable(decl, func(i, j int) bool { return decl[i].Required && !decl[j].Required })
	var out []string
	for _, p := range decl {
		if len(out) == maxKeyParams {
			break
		}
		if p.Secret || vary[p.Name] != only {
			continue
		}
		v, ok := params[p.Name]
		if !ok {
			continue
		}
		s, ok := scalarText(v)
		if !ok || s == "" || s == "false" || s == strings.Trim(p.Default, `'"`) {
			continue
		}
		if s == KnownAfterRun {
			s = knownAfterText(ps, p.Name)
		}
		out = append(out, p.Name+" "+clip(s, 50))
	}
	return out
}

// scalarText is a parameter's value on one line: strings, numbers and booleans, or a
// short list of them.
func scalarText(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", true
	case string:
		return strings.ReplaceAll(x, "\n", " "), true
	case bool, int, int64, float64:
		return textOf(x), true
	case []any:
		if len(x) == 0 {
			return "", true
		}
		if len(x) > 3 {
			return "", false
		}
		parts := make([]string, len(x))
		for i, e := range x {
			s, ok := scalarText(e)
			if !ok {
				return "", false
			}
			parts[i] = s
		}
		return "[" + strings.Join(parts, ", ") + "]", true
	}
	return "", false
}

// varyingKeys are the top-level parameters whose values differ between foreach items.
func varyingKeys(items []map[string]any) map[string]bool {
	out := map[string]bool{}
	if len(items) < 2 {
		return out
	}
	for _, it := range items[1:] {
		for k, v := range it {
			if !equalValues(v, items[0][k]) {
				out[k] = true
			}
		}
		for k := range items[0] {
			if _, ok := it[k]; !ok {
				out[k] = true
			}
		}
	}
	return out
}

func equalValues(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// knownAfterText is how a plan shows a value known only at run time, with the steps it
// comes from when the plan knows them.
func knownAfterText(ps *PlannedStep, path string) string {
	if deps := ps.KnownAfter[path]; len(deps) > 0 {
		return "(known after run: " + strings.Join(deps, ", ") + ")"
	}
	return KnownAfterRun
}

// shownValue is a rendered parameter as a plan shows it: a value known only at run time
// says which steps it comes from.
func shownValue(ps *PlannedStep, path string, v any) any {
	switch x := v.(type) {
	case string:
		if x == KnownAfterRun {
			return knownAfterText(ps, path)
		}
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			p := k
			if path != "" {
				p = path + "." + k
			}
			out[k] = shownValue(ps, p, e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = shownValue(ps, fmt.Sprintf("%s[%d]", path, i), e)
		}
		return out
	}
	return v
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - 1
	for cut > 0 && (s[cut]&0xC0) == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// maxTextItems is how many foreach items the text and Markdown plans list (the JSON plan
// has the parameters of up to 100).
const maxTextItems = 20

// itemLines are a foreach step's items, each with its own key parameters.
func itemLines(s *PlannedStep) []string {
	vary := varyingKeys(s.ItemParams)
	var out []string
	for i, label := range s.Items {
		if i == maxTextItems {
			out = append(out, fmt.Sprintf("… and %d more (every item is in the JSON plan)", len(s.Items)-maxTextItems))
			break
		}
		line := label
		if i < len(s.ItemParams) {
			if parts := keyParams(s, s.ItemParams[i], vary, true); len(parts) > 0 {
				line += ": " + strings.Join(parts, ", ")
			}
		}
		out = append(out, line)
	}
	return out
}

// paramLines are a step's rendered parameters, one a line as "name: value" (compact
// JSON, clipped), leaving out empty ones.
func paramLines(s *PlannedStep) []string {
	var out []string
	for _, k := range sortedKeys(s.Params) {
		v := shownValue(s, k, s.Params[k])
		switch x := v.(type) {
		case nil:
			continue
		case string:
			if x == "" {
				continue
			}
			out = append(out, k+": "+clip(strings.ReplaceAll(x, "\n", `\n`), 100))
			continue
		case []any:
			if len(x) == 0 {
				continue
			}
		case map[string]any:
			if len(x) == 0 {
				continue
			}
		}
		b, _ := json.Marshal(v)
		out = append(out, k+": "+clip(string(b), 100))
	}
	return out
}

// mark is a step's sign in the text plan.
func (s *PlannedStep) mark() string {
	switch {
	case s.Error != "":
		return "!"
	case s.Condition == "false":
		return "-"
	case s.DependsOn != "", s.Condition == "known after run":
		return "?"
	case s.NoChange:
		return "="
	}
	return "+"
}

// title is the step's id and name: "tag: Tag each component".
func (s *PlannedStep) title() string {
	if s.Name == "" {
		return s.ID
	}
	return s.ID + ": " + s.Name
}

const offlineNote = "Offline plan: no service was asked; each step's action is described from its type and its rendered parameters."

// WriteText writes the plan for a terminal.
func (d *PlanDoc) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Plan for %s (%s), plan hash %s\n", d.Playbook, d.Product, d.Hash)
	if len(d.Inputs) > 0 {
		fmt.Fprintf(&b, "Inputs: %s\n", formatInputs(d.Inputs))
	}
	if d.Offline {
		fmt.Fprintf(&b, "%s\n", offlineNote)
	}
	section, phase := Section(""), ""
	for i, s := range d.Steps {
		if s.Section != section {
			section, phase = s.Section, ""
			switch section {
			case SectionOnFailure:
				fmt.Fprintf(&b, "\nIf a step fails (on_failure):\n")
			case SectionFinally:
				fmt.Fprintf(&b, "\nAlways, at the end (finally):\n")
			default:
				fmt.Fprintln(&b)
			}
		}
		if s.Section == SectionSteps && s.Phase != "" && s.Phase != phase {
			if phase != "" {
				fmt.Fprintln(&b)
			}
			phase = s.Phase
			fmt.Fprintf(&b, "%s:\n", phase)
		}
		fmt.Fprintf(&b, "%s %2d. %s (%s)", s.mark(), i+1, s.title(), s.Type)
		if s.Role != "" {
			fmt.Fprintf(&b, " [%s]", s.Role)
		}
		if p := s.OnError.describe(); p != "" {
			fmt.Fprintf(&b, " {%s}", p)
		}
		fmt.Fprintln(&b)
		if s.When != "" {
			fmt.Fprintf(&b, "       when %s: %s\n", s.When, s.Condition)
		}
		if s.Action != "" {
			fmt.Fprintf(&b, "       %s\n", s.Action)
		}
		for _, det := range s.Details {
			fmt.Fprintf(&b, "         %s\n", det)
		}
		if len(s.Items) > 1 {
			fmt.Fprintf(&b, "       for each of %d items:\n", len(s.Items))
			for _, l := range itemLines(s) {
				fmt.Fprintf(&b, "         - %s\n", l)
			}
		} else if s.Foreach != nil && len(s.Items) == 0 && s.KnownAfter["foreach"] != nil {
			fmt.Fprintf(&b, "       for each item of %s\n", knownAfterText(s, "foreach"))
		}
		if s.Condition != "false" {
			if lines := paramLines(s); len(lines) > 0 {
				fmt.Fprintf(&b, "       with:\n")
				for _, l := range lines {
					fmt.Fprintf(&b, "         %s\n", l)
				}
			}
		}
		if s.Error != "" {
			fmt.Fprintf(&b, "       error: %s\n", strings.ReplaceAll(s.Error, "\n", "\n         "))
		}
	}
	c := d.counts()
	fmt.Fprintf(&b, "\n%d steps: %d will run, %d skipped, %d depend on earlier results, %d unchanged, %d errors.\n",
		len(d.Steps), c.run, c.skip, c.unknown, c.same, c.errs)
	_, err := io.WriteString(w, b.String())
	return err
}

type planCounts struct{ run, skip, unknown, same, errs int }

func (d *PlanDoc) counts() planCounts {
	var c planCounts
	for _, s := range d.Steps {
		switch s.mark() {
		case "!":
			c.errs++
		case "-":
			c.skip++
		case "?":
			c.unknown++
		case "=":
			c.same++
		default:
			c.run++
		}
	}
	return c
}

func formatInputs(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%v", k, m[k])
	}
	return strings.Join(parts, " ")
}

// MarkdownOptions change how WriteMarkdownWith writes a plan.
type MarkdownOptions struct {
	// NoDiagram leaves out the Mermaid diagram (a plan diff draws its own, marked).
	NoDiagram bool
}

// WriteMarkdown writes the plan for a pull-request comment: a summary line, a table of
// steps, a diagram of the release flow and its gates, and the parameters collapsed.
func (d *PlanDoc) WriteMarkdown(w io.Writer) error {
	return d.WriteMarkdownWith(w, MarkdownOptions{})
}

// WriteMarkdownWith is WriteMarkdown with options.
func (d *PlanDoc) WriteMarkdownWith(w io.Writer, o MarkdownOptions) error {
	var b strings.Builder
	c := d.counts()
	title := d.Title
	if title == "" {
		title = d.Product
	}
	inputs := markdown.Code(formatInputs(d.Inputs))
	if inputs == "" {
		inputs = "no inputs"
	}
	fmt.Fprintf(&b, "### runbook plan: %s\n\n", markdown.Text(title))
	fmt.Fprintf(&b, "%s with %s: **%d steps**, %d will run, %d skipped, %d depend on earlier results, %d unchanged, %d errors. Plan hash %s.\n\n",
		markdown.Code(d.Playbook), inputs, len(d.Steps), c.run, c.skip, c.unknown, c.same, c.errs, markdown.Code(d.Hash))
	if d.Offline {
		fmt.Fprintf(&b, "> %s\n\n", markdown.Text(offlineNote))
	}
	b.WriteString("| # | step | type | role | condition | on failure | what it will do |\n|---|---|---|---|---|---|---|\n")
	for i, s := range d.Steps {
		cond := markdown.Text(s.Condition)
		if s.When != "" {
			cond = markdown.Code(s.When) + " → " + cond
		}
		what := markdown.Text(s.Action)
		if s.Error != "" {
			what = "⚠️ error: " + markdown.Text(s.Error)
		}
		if len(s.Items) > 1 {
			labels := s.Items
			more := ""
			if len(labels) > maxTextItems {
				labels, more = labels[:maxTextItems], fmt.Sprintf(" and %d more", len(s.Items)-maxTextItems)
			}
			what += "<br>for each of " + fmt.Sprint(len(s.Items)) + " items: " + markdown.Text(strings.Join(labels, ", ")) + more
		}
		step := markdown.Code(s.ID)
		if s.Name != "" {
			step += " " + markdown.Text(s.Name)
		}
		if s.Section != SectionSteps {
			step += " _(" + markdown.Text(string(s.Section)) + ")_"
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %s |\n", i+1, markdown.Cell(step), markdown.CodeCell(s.Type), markdown.Text(s.Role),
			markdown.Cell(cond), markdown.Text(string(s.OnError)), markdown.Cell(what))
	}
	if !o.NoDiagram {
		b.WriteString("\n#### Release flow\n\n")
		if err := d.WriteMermaid(&b, DiagramOptions{}); err != nil {
			return err
		}
	}
	b.WriteString("\n<details><summary>Parameters of every step</summary>\n\n")
	for i, s := range d.Steps {
		if len(s.Params) == 0 && len(s.Details) == 0 && len(s.Items) < 2 {
			continue
		}
		fmt.Fprintf(&b, "#### %d. %s\n\n", i+1, markdown.Code(s.ID))
		for _, det := range s.Details {
			fmt.Fprintf(&b, "- %s\n", markdown.Text(strings.TrimSpace(det)))
		}
		if len(s.Items) > 1 {
			fmt.Fprintf(&b, "- for each of %d items:\n", len(s.Items))
			for _, l := range itemLines(s) {
				fmt.Fprintf(&b, "  - %s\n", markdown.Text(l))
			}
		}
		if len(s.Params) > 0 {
			js, _ := json.MarshalIndent(shownValue(s, "", s.Params), "", "  ")
			fmt.Fprintf(&b, "\n%s\n", markdown.Fence("json", string(js)))
		} else {
			b.WriteString("\n")
		}
	}
	b.WriteString("</details>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// itemLabel names a foreach item in a plan: a component's repo (or name, id, image), or
// the value itself.
func itemLabel(it any) string {
	if m, ok := it.(map[string]any); ok {
		for _, k := range []string{"repo", "name", "id", "image"} {
			if v, ok := m[k].(string); ok && v != "" {
				return v
			}
		}
	}
	s := fmt.Sprint(it)
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

// describe is how a plan marks a step's failure policy: nothing for the default (stop).
func (p ErrorPolicy) describe() string {
	switch p {
	case OnErrorWarn:
		return "on failure: warn and go on"
	case OnErrorRollback:
		return "on failure: roll back"
	}
	return ""
}

// gateTypes are the step types a diagram draws as gates (a person or the calendar
// decides), besides any type registered with Gate.
var gateTypes = map[string]bool{
	"github.approval": true, "github.checklist": true, "github.subtasks_done": true,
	"manual": true, "schedule.window": true,
}

func isGate(typ string) bool {
	if gateTypes[typ] {
		return true
	}
	t, ok := LookupStepType(typ)
	return ok && t.Gate
}

// DiagramOptions mark a plan's diagram, for a plan diff.
type DiagramOptions struct {
	// Marks style steps by id: "added", "changed" or "moved".
	Marks map[string]string
	// Removed are steps the change removes (from the base plan), drawn apart.
	Removed []*PlannedStep
}

// WriteMermaid writes the release flow as a Mermaid flowchart in a fenced block (GitHub
// renders it in comments): the main steps in order, grouped by phase, gates as hexagons,
// steps whose condition is false dashed, and a dotted branch from every step whose
// failure rolls the release back (and every refused approval) to the on_failure steps.
// Node ids are s1, s2, ... (the step's position), so no step id can clash with
// Mermaid's keywords; labels are escaped.
func (d *PlanDoc) WriteMermaid(w io.Writer, o DiagramOptions) error {
	var b strings.Builder
	b.WriteString("```mermaid\nflowchart TD\n")
	classes := mermaidClasses{}
	for i, s := range d.Steps {
		classes.addStep(fmt.Sprintf("s%d", i+1), s, o.Marks[s.ID])
	}
	failGroup := d.writeMermaidGroups(&b, mermaidGroupsOf(d.Steps))
	d.writeMermaidOrder(&b)
	if failGroup != "" {
		d.writeMermaidFailures(&b, failGroup)
	}
	if len(o.Removed) > 0 {
		b.WriteString("  subgraph removed[\"Removed by this change\"]\n")
		for i, s := range o.Removed {
			id := fmt.Sprintf("r%d", i+1)
			fmt.Fprintf(&b, "    %s[\"%s\"]\n", id, markdown.MermaidLabel(s.ID+"\n"+s.Type))
			classes.add("removed", id)
		}
		b.WriteString("  end\n")
	}
	classes.write(&b)
	b.WriteString("```\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// mermaidNode is step i's node: its number, name, id and type, and whether its
// condition may skip it; a gate is a hexagon.
func mermaidNode(i int, s *PlannedStep) string {
	label := fmt.Sprintf("%d. %s\n%s", i+1, s.ID, s.Type)
	if s.Name != "" {
		label = fmt.Sprintf("%d. %s\n%s · %s", i+1, clip(s.Name, 44), s.ID, s.Type)
	}
	switch s.Condition {
	case "false":
		label += "\n(skipped: its condition is false)"
	case "known after run":
		label += "\n(if its condition holds)"
	}
	l := markdown.MermaidLabel(label)
	if isGate(s.Type) {
		return fmt.Sprintf("s%d{{\"%s\"}}", i+1, l)
	}
	return fmt.Sprintf("s%d[\"%s\"]", i+1, l)
}

// mermaidClasses are the node ids of each style class, in the order they were added.
type mermaidClasses map[string][]string

func (c mermaidClasses) add(class, id string) { c[class] = append(c[class], id) }

// addStep styles a step's node: a gate, a step skipped by its condition, a step whose
// plan failed, and a plan diff's mark (added, changed, moved).
func (c mermaidClasses) addStep(id string, s *PlannedStep, mark string) {
	if isGate(s.Type) {
		c.add("gate", id)
	}
	if s.Condition == "false" {
		c.add("skipped", id)
	}
	if s.Error != "" {
		c.add("failing", id)
	}
	if mark != "" {
		c.add(mark, id)
	}
}

// write defines the classes that are used, and applies them.
func (c mermaidClasses) write(b *strings.Builder) {
	styles := []struct{ class, style string }{
		{"gate", "fill:#fff8c5,stroke:#9a6700"},
		{"skipped", "stroke-dasharray:4 4,color:#6e7781"},
		{"failing", "stroke:#cf222e,stroke-width:2px"},
		{"added", "fill:#dafbe1,stroke:#1a7f37,stroke-width:3px"},
		{"changed", "fill:#ddf4ff,stroke:#0969da,stroke-width:3px"},
		{"moved", "stroke:#0969da,stroke-width:2px,stroke-dasharray:6 3"},
		{"removed", "fill:#ffebe9,stroke:#cf222e,stroke-dasharray:4 4"},
	}
	for _, st := range styles {
		if ids := c[st.class]; len(ids) > 0 {
			fmt.Fprintf(b, "  classDef %s %s\n  class %s %s\n", st.class, st.style, strings.Join(ids, ","), st.class)
		}
	}
}

// mermaidGroup is a subgraph of the diagram: its id, its title and its steps' positions.
type mermaidGroup struct {
	id, title string
	steps     []int
}

// mermaidGroupsOf groups the steps: runs of main steps with the same phase; on_failure
// and finally one group each, named after the phase of their first step.
func mermaidGroupsOf(steps []*PlannedStep) []*mermaidGroup {
	var groups []*mermaidGroup
	for i, s := range steps {
		n := len(groups)
		if n == 0 || steps[groups[n-1].steps[0]].Section != s.Section || (s.Section == SectionSteps && steps[groups[n-1].steps[0]].Phase != s.Phase) {
			title := s.Phase
			switch s.Section {
			case SectionOnFailure:
				title = "If a step fails (on_failure)"
				if s.Phase != "" {
					title = s.Phase + ": if a step fails (on_failure)"
				}
			case SectionFinally:
				title = "Always, at the end (finally)"
			}
			groups = append(groups, &mermaidGroup{id: fmt.Sprintf("g%d", len(groups)+1), title: title})
		}
		g := groups[len(groups)-1]
		g.steps = append(g.steps, i)
	}
	return groups
}

// writeMermaidGroups writes the groups' nodes, in subgraphs when they have a title, and
// returns the id of the on_failure group ("" without one).
func (d *PlanDoc) writeMermaidGroups(b *strings.Builder, groups []*mermaidGroup) string {
	failGroup := ""
	for _, g := range groups {
		first := d.Steps[g.steps[0]]
		if first.Section == SectionOnFailure && failGroup == "" {
			failGroup = g.id
		}
		if g.title != "" {
			fmt.Fprintf(b, "  subgraph %s[\"%s\"]\n", g.id, markdown.MermaidLabel(g.title))
		}
		for _, i := range g.steps {
			fmt.Fprintf(b, "    %s\n", mermaidNode(i, d.Steps[i]))
		}
		if g.title != "" {
			b.WriteString("  end\n")
		}
	}
	return failGroup
}

// writeMermaidOrder draws the order: each section's steps one after the other; finally
// after the main steps.
func (d *PlanDoc) writeMermaidOrder(b *strings.Builder) {
	prev := map[Section]int{}
	lastMain := 0
	for i, s := range d.Steps {
		if p, ok := prev[s.Section]; ok {
			fmt.Fprintf(b, "  s%d --> s%d\n", p+1, i+1)
		} else if s.Section == SectionFinally && lastMain > 0 {
			fmt.Fprintf(b, "  s%d --> s%d\n", lastMain, i+1)
		}
		prev[s.Section] = i
		if s.Section == SectionSteps {
			lastMain = i + 1
		}
	}
}

// writeMermaidFailures draws a dotted branch to the on_failure group from every main
// step whose failure rolls the release back, and from every approval (refused).
func (d *PlanDoc) writeMermaidFailures(b *strings.Builder, failGroup string) {
	for i, s := range d.Steps {
		switch {
		case s.Section != SectionSteps:
		case s.OnError == OnErrorRollback:
			fmt.Fprintf(b, "  s%d -.->|fails: roll back| %s\n", i+1, failGroup)
		case s.Type == "github.approval":
			fmt.Fprintf(b, "  s%d -.->|refused| %s\n", i+1, failGroup)
		}
	}
}
