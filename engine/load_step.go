package engine

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/expr-lang/expr/types"
	"gopkg.in/yaml.v3"
)

// stepHeader reads what is needed to know a step exists: its id, type and place.
func (l *loader) stepHeader(n *yaml.Node, sec Section, i int) *StepDecl {
	if n.Kind != yaml.MappingNode {
		l.errAt(n, "%s[%d] must be a step (a mapping with id and type), not %s", sec, i, kindName(n))
		return nil
	}
	_, f, _ := l.mapping(n, "step", stepKeys)
	st := &StepDecl{Section: sec, Index: i, Pos: l.pos(n), Parallel: 1, node: n}
	idNode, ok := f["id"]
	if !ok {
		l.errAt(n, "%s[%d]: missing key \"id\" (a snake_case name for the step)", sec, i)
		return nil
	}
	st.ID, _ = l.str(idNode, "id")
	if st.ID != "" && !idRE.MatchString(st.ID) {
		l.errAt(resolve(idNode), "step id %q must be snake_case (lowercase letters, digits and single underscores, starting with a letter), e.g. %q", st.ID, snake(st.ID))
	}
	st.Pos = l.pos(resolve(idNode))
	t, ok := f["type"]
	if !ok {
		l.errAt(n, "step %s: missing key \"type\"", st.ID)
		return st
	}
	st.Type, _ = l.str(t, "type")
	stype, known := LookupStepType(st.Type)
	if !known {
		var names []string
		for _, t := range StepTypes() {
			names = append(names, t.Name)
		}
		l.errAt(resolve(t), "step %s: unknown step type %q%s; run `runbook steps` for the list", st.ID, st.Type, didYouMean(st.Type, names))
	} else {
		st.stepType = stype
		st.params = ParamsOf(stype)
	}
	return st
}

var snakeRE = regexp.MustCompile(`[^a-z0-9]+`)

func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	out := strings.Trim(snakeRE.ReplaceAllString(b.String(), "_"), "_")
	if out == "" || out[0] < 'a' || out[0] > 'z' {
		out = "step_" + out
	}
	return out
}

// stepBody validates and compiles the rest of a step (all but its id and type, which
// stepHeader read) against what it may see.
func (l *loader) stepBody(pb *Playbook, st *StepDecl, base *scope) {
	n := resolve(st.node)
	if n == nil {
		return
	}
	_, f, _ := l.mapping(n, "step", stepKeys)
	sc := l.fragmentScope(st, base)
	l.stepLabels(pb, st, f)
	l.stepOnError(st, f)
	l.stepLimits(st, f)
	sc = l.stepForeach(st, f, sc)
	l.stepWhen(st, f, sc)
	if st.stepType.Name == "" {
		return
	}
	l.stepWith(pb, st, f, n, sc)
}

// fragmentScope is what a step may read: the playbook's scope, plus the params of the
// fragment the step came from. An include's values are compiled once, where the
// include is written, against what the steps before it can read.
func (l *loader) fragmentScope(st *StepDecl, base *scope) *scope {
	if st.Fragment == nil {
		return base
	}
	if !st.Fragment.compiled {
		st.Fragment.compiled = true
		file := l.file
		l.file = st.Fragment.From
		for _, e := range st.Fragment.Params {
			l.compileValue(e.Val, base)
		}
		l.file = file
	}
	params := types.Map{}
	for _, e := range st.Fragment.Params {
		params[e.Key] = exprType(st.Fragment.Types[e.Key])
	}
	sc := base.clone()
	sc.env["params"] = params
	return sc
}

// stepLabels reads what describes a step to people: name, description, role,
// checklist, phase (a fragment's, unless the step gives its own) and left_behind.
func (l *loader) stepLabels(pb *Playbook, st *StepDecl, f map[string]*yaml.Node) {
	if x, ok := f["name"]; ok {
		st.Name, _ = l.str(x, "name")
		l.noTemplate(x, st, "name", st.Name)
	}
	if x, ok := f["description"]; ok {
		st.Description, _ = l.str(x, "description")
		l.noTemplate(x, st, "description", st.Description)
	}
	if x, ok := f["role"]; ok {
		st.Role, _ = l.str(x, "role")
		if _, ok := pb.Roles[st.Role]; !ok && st.Role != "" && !l.anyRole {
			l.errAt(resolve(x), "step %s: unknown role %q%s; declare it under roles", st.ID, st.Role, didYouMean(st.Role, pb.RoleOrder))
		}
	}
	if x, ok := f["checklist"]; ok {
		st.Checklist, _ = l.str(x, "checklist")
	}
	if st.Fragment != nil {
		st.Phase = st.Fragment.Phase
	}
	if x, ok := f["phase"]; ok {
		st.Phase, _ = l.str(x, "phase")
	}
	if x, ok := f["left_behind"]; ok {
		l.stepLeftBehind(st, x)
	}
}

// stepLeftBehind reads what a main step leaves in the world when the release stops; it
// is compiled last (compileLeftBehind), as it reads every step.
func (l *loader) stepLeftBehind(st *StepDecl, x *yaml.Node) {
	switch {
	case resolve(x).Kind != yaml.ScalarNode:
		l.errAt(resolve(x), "step %s: left_behind must be a string: what this step leaves in the world when the release stops, and why", st.ID)
	case st.Section != SectionSteps:
		l.errAt(resolve(x), "step %s: left_behind is for the main steps (what a stopped release leaves)", st.ID)
	default:
		st.LeftBehind = l.value(x)
		l.leftBehind = append(l.leftBehind, st)
	}
}

// stepOnError reads what a step's failure means (on_error, or its older spelling
// continue_on_error: true for warn; stop by default) and whether it undoes the release
// (rollback).
func (l *loader) stepOnError(st *StepDecl, f map[string]*yaml.Node) {
	st.OnError = OnErrorStop
	if x, ok := f["on_error"]; ok {
		v, _ := l.str(x, "on_error")
		switch ErrorPolicy(v) {
		case OnErrorStop, OnErrorWarn, OnErrorRollback:
			st.OnError = ErrorPolicy(v)
		default:
			l.errAt(resolve(x), "step %s: on_error %q is not a policy%s; use stop (stop, resumable, and ask a person), warn (record a warning and go on) or rollback (roll production back)", st.ID, v, didYouMean(v, errorPolicies))
		}
		if st.Section != SectionSteps && st.OnError == OnErrorRollback {
			l.errAt(resolve(x), "step %s: on_error: rollback is for the main steps; a step of %s is already part of the ending (use stop or warn)", st.ID, st.Section)
		}
	}
	if x, ok := f["continue_on_error"]; ok {
		if _, both := f["on_error"]; both {
			l.errAt(resolve(x), "step %s: continue_on_error and on_error both given; keep on_error (continue_on_error: true is on_error: warn)", st.ID)
		} else if l.boolean(x, "continue_on_error") {
			st.OnError = OnErrorWarn
		}
	}
	if x, ok := f["rollback"]; ok {
		st.Rollback = l.boolean(x, "rollback")
	}
}

// defaultRetry is a step's retry policy when it gives none: a transient error (a 5xx, a
// dropped connection, a rate limit) is tried three times in all, backing off from 2s up
// to a minute between attempts; a step's own errors are never retried.
var defaultRetry = RetryPolicy{Attempts: 3, Backoff: Duration(2 * time.Second), MaxDelay: Duration(time.Minute)}

// maxRetryAttempts bounds retry.attempts (the schema says the same).
const maxRetryAttempts = 100

// stepLimits reads how long a step may take (timeout), how many foreach items run at
// once (parallel) and how transient errors are retried (retry).
func (l *loader) stepLimits(st *StepDecl, f map[string]*yaml.Node) {
	if x, ok := f["timeout"]; ok {
		st.Timeout = l.duration(x, "timeout")
	}
	if x, ok := f["parallel"]; ok {
		st.Parallel = l.integer(x, "parallel")
		if st.Parallel < 1 {
			l.errAt(resolve(x), "parallel must be at least 1")
		}
	}
	st.Retry = defaultRetry
	x, ok := f["retry"]
	if !ok {
		return
	}
	_, rf, _ := l.mapping(x, "retry", retryKeys)
	if a, ok := rf["attempts"]; ok {
		st.Retry.Attempts = l.integer(a, "retry.attempts")
		if st.Retry.Attempts < 1 || st.Retry.Attempts > maxRetryAttempts {
			l.errAt(resolve(a), "retry.attempts must be between 1 and %d", maxRetryAttempts)
		}
	}
	if b, ok := rf["backoff"]; ok {
		st.Retry.Backoff = l.duration(b, "retry.backoff")
	}
	if m, ok := rf["max_delay"]; ok {
		st.Retry.MaxDelay = l.duration(m, "retry.max_delay")
	}
}

// stepForeach compiles a step's foreach, which must give a list, and returns the scope
// its other keys see: with item, typed as the list's elements.
func (l *loader) stepForeach(st *StepDecl, f map[string]*yaml.Node, sc *scope) *scope {
	x, ok := f["foreach"]
	if !ok {
		return sc
	}
	st.Foreach = l.value(x)
	t := l.compileValue(st.Foreach, sc)
	if st.Foreach.kind == kindLiteral || (st.Foreach.kind == kindTemplate && !st.Foreach.Tmpl.Whole()) || (!strings.HasPrefix(string(t), "list<") && t != TypeAny) {
		l.errAt(resolve(x), "step %s: foreach must be a list or an expression giving one, not %s", st.ID, t)
	}
	sc = sc.clone()
	sc.env["item"] = exprType(elemType(t))
	if t == TypeAny {
		sc.env["item"] = types.Any
	}
	return sc
}

// stepWhen compiles a step's condition: an expression, bare or in ${{ }}, that gives
// true or false.
func (l *loader) stepWhen(st *StepDecl, f map[string]*yaml.Node, sc *scope) {
	x, ok := f["when"]
	if !ok {
		return
	}
	s, ok := l.str(x, "when")
	if !ok {
		return
	}
	xn := resolve(x)
	src, off := s, 0
	if t := strings.TrimSpace(s); strings.HasPrefix(t, "${{") && strings.HasSuffix(t, "}}") {
		src = strings.TrimSpace(t[3 : len(t)-2])
		off = strings.Index(s, src)
	}
	e := &Expr{Src: src}
	if !compileExpr(e, sc, exprPos(l.file, xn, off), l.d) {
		return
	}
	if e.Type != TypeBool && e.Type != TypeAny {
		l.errAt(xn, "step %s: condition %q must be true or false, but it gives %s", st.ID, src, e.Type)
		return
	}
	st.When = e
}

// stepWith checks a step's parameters (with:) against its type's; when they hold no
// template, they are decoded and validated now, as the run will.
func (l *loader) stepWith(pb *Playbook, st *StepDecl, f map[string]*yaml.Node, n *yaml.Node, sc *scope) {
	withNode, hasWith := f["with"]
	if hasWith {
		st.With = l.value(withNode)
		if st.With.kind != kindMap {
			if st.With.Node.Tag != "!!null" {
				l.errAt(st.With.Node, "step %s: with must be a mapping of parameters, not %s", st.ID, kindName(st.With.Node))
			}
			st.With = &Value{Node: st.With.Node, kind: kindMap}
		}
	} else {
		st.With = &Value{Node: n, kind: kindMap}
	}
	if !hasWith && l.wasMisspelt(n, "with") {
		return
	}
	l.checkParams(pb, st, st.With, st.params, sc, "")
	if hasTemplates(st.With) || len(l.d.list) > 0 {
		return
	}
	with, _ := literalMap(st.With)
	s, err := decodeParams(st.stepType, with)
	if err != nil {
		l.errAt(st.With.Node, "step %s: %v", st.ID, err)
	} else if v, ok := s.(Validator); ok {
		if err := v.Validate(); err != nil {
			l.errAt(st.With.Node, "step %s (%s): %v", st.ID, st.Type, err)
		}
	}
}

func hasTemplates(v *Value) bool {
	found := false
	walkValue(v, func(x *Value) {
		if x.kind == kindTemplate {
			found = true
		}
	})
	return found
}

func literalMap(v *Value) (map[string]any, bool) {
	out := map[string]any{}
	for _, e := range v.Map {
		out[e.Key] = literal(e.Val)
	}
	return out, true
}

func literal(v *Value) any {
	switch v.kind {
	case kindList:
		l := make([]any, len(v.List))
		for i, e := range v.List {
			l[i] = literal(e)
		}
		return l
	case kindMap:
		m, _ := literalMap(v)
		return m
	}
	return v.Lit
}

// checkParams checks a `with:` mapping (or a nested object) against the parameters.
func (l *loader) checkParams(pb *Playbook, st *StepDecl, with *Value, params []Param, sc *scope, prefix string) {
	byName := map[string]Param{}
	var names []string
	for _, p := range params {
		byName[p.Name] = p
		names = append(names, p.Name)
	}
	given := map[string]bool{}
	misspelt := map[string]bool{}
	for _, e := range with.Map {
		p, ok := byName[e.Key]
		if !ok {
			l.errAt(e.KeyNode, "step %s (%s): unknown parameter %q%s; parameters: %s", st.ID, st.Type, prefix+e.Key, didYouMean(e.Key, names), strings.Join(names, ", "))
			misspelt[suggest(e.Key, names)] = true
			continue
		}
		given[e.Key] = true
		got := l.compileValue(e.Val, sc)
		l.checkValueType(st, p, e.Val, got, sc, prefix)
		if p.Name == "connection" && prefix == "" && e.Val.kind == kindLiteral {
			name, _ := e.Val.Lit.(string)
			l.checkConnection(pb, st, name, e.Val.Node)
		}
	}
	for _, p := range params {
		if p.Required && !given[p.Name] && p.Default == "" && !misspelt[p.Name] {
			l.errAt(with.Node, "step %s (%s): missing required parameter %q (%s)", st.ID, st.Type, prefix+p.Name, p.Desc)
		}
	}
	if prefix == "" && st.stepType.Connection != "" && !given["connection"] {
		l.checkConnection(pb, st, "", with.Node)
	}
}

func (l *loader) checkConnection(pb *Playbook, st *StepDecl, name string, at *yaml.Node) {
	want := st.stepType.Connection
	if want == "" || l.anyConnection {
		return
	}
	if _, err := findConnection(pb.Connections, name, want); err != nil {
		l.errAt(at, "step %s (%s): %v", st.ID, st.Type, err)
	}
}

func findConnection(conns []*ConnectionDecl, name, typ string) (*ConnectionDecl, error) {
	var names []string
	var ofType []*ConnectionDecl
	for _, c := range conns {
		names = append(names, c.Name)
		if c.Type == typ {
			ofType = append(ofType, c)
		}
		if name != "" && c.Name == name {
			if c.Type != typ {
				return nil, fmt.Errorf("connection %q is of type %s, but this step needs a %s connection", name, c.Type, typ)
			}
			return c, nil
		}
	}
	if name != "" {
		return nil, fmt.Errorf("no connection named %q%s; declare it under connections", name, didYouMean(name, names))
	}
	if len(ofType) == 1 {
		return ofType[0], nil
	}
	for _, c := range ofType {
		if c.Name == typ {
			return c, nil
		}
	}
	if len(ofType) == 0 {
		return nil, fmt.Errorf("needs a %s connection: declare one under connections (connections: {%s: {type: %s}})", typ, typ, typ)
	}
	return nil, fmt.Errorf("there are %d %s connections; say which with `connection:`", len(ofType), typ)
}

// checkValueType checks a parameter's value as written (a literal, a template, a list
// or a mapping) against the parameter's type; got is the value's type.
func (l *loader) checkValueType(st *StepDecl, p Param, v *Value, got Type, sc *scope, prefix string) {
	switch v.kind {
	case kindLiteral:
		l.checkLiteralType(st, p, v, got, prefix+p.Name)
	case kindTemplate:
		l.checkTemplateType(st, p, v, got, prefix+p.Name)
	case kindList:
		l.checkListType(st, p, v, sc, prefix)
	case kindMap:
		l.checkMapType(st, p, v, sc, prefix+p.Name)
	}
}

func (l *loader) checkLiteralType(st *StepDecl, p Param, v *Value, got Type, name string) {
	if v.Lit == nil {
		return
	}
	if p.Type == TypeString {
		// A YAML scalar such as 3 or true is fine where a string is wanted; the engine
		// passes its text.
		if len(p.Enum) > 0 {
			if s := fmt.Sprint(v.Lit); !contains(p.Enum, s) {
				l.errAt(v.Node, "step %s (%s): parameter %s must be one of %s, not %q", st.ID, st.Type, name, strings.Join(p.Enum, ", "), s)
			}
		}
		return
	}
	if p.Type == TypeDuration {
		if s, ok := v.Lit.(string); ok {
			if _, err := ParseDuration(s); err != nil {
				l.errAt(v.Node, "step %s (%s): parameter %s: %v", st.ID, st.Type, name, err)
			}
			return
		}
	}
	if !assignable(p.Type, got) {
		l.errAt(v.Node, "step %s (%s): parameter %s must be %s, not %s %s", st.ID, st.Type, name, article(p.Type), got, kindName(v.Node))
	}
}

func (l *loader) checkTemplateType(st *StepDecl, p Param, v *Value, got Type, name string) {
	if !v.Tmpl.Whole() {
		if p.Type != TypeString && p.Type != TypeDuration && p.Type != TypeAny {
			l.errAt(v.Node, "step %s (%s): parameter %s must be %s, but this text template gives a string", st.ID, st.Type, name, article(p.Type))
		}
		return
	}
	if p.Type == TypeString && got != TypeString && got != TypeAny && !strings.HasPrefix(string(got), "list") && !strings.HasPrefix(string(got), "map") {
		return // numbers and booleans print as text
	}
	if !assignable(p.Type, got) {
		l.errAt(v.Node, "step %s (%s): parameter %s must be %s, but the expression %q gives %s", st.ID, st.Type, name, article(p.Type), v.Tmpl.Parts[0].Expr.Src, got)
	}
}

// checkListType checks each element of a list; elements that are objects with fields
// are checked as parameters of their own.
func (l *loader) checkListType(st *StepDecl, p Param, v *Value, sc *scope, prefix string) {
	if !strings.HasPrefix(string(p.Type), "list<") && p.Type != TypeAny {
		l.errAt(v.Node, "step %s (%s): parameter %s must be %s, not a list", st.ID, st.Type, prefix+p.Name, article(p.Type))
		return
	}
	et := elemType(p.Type)
	for i, e := range v.List {
		ep := Param{Name: fmt.Sprintf("%s[%d]", p.Name, i), Type: et, Fields: p.Fields}
		if len(p.Fields) > 0 && e.kind == kindMap {
			l.checkParams(nil, st, e, p.Fields, sc, fmt.Sprintf("%s%s[%d].", prefix, p.Name, i))
			continue
		}
		l.checkValueType(st, ep, e, l.typeOf(e), sc, prefix)
	}
}

// checkMapType checks a mapping: an object's fields as parameters, or each value of a
// map<...>.
func (l *loader) checkMapType(st *StepDecl, p Param, v *Value, sc *scope, name string) {
	isMapOf := strings.HasPrefix(string(p.Type), "map<")
	if p.Type != TypeMap && !isMapOf && p.Type != TypeAny {
		l.errAt(v.Node, "step %s (%s): parameter %s must be %s, not a mapping", st.ID, st.Type, name, article(p.Type))
		return
	}
	if len(p.Fields) > 0 && !isMapOf {
		l.checkParams(nil, st, v, p.Fields, sc, name+".")
		return
	}
	if isMapOf {
		et := elemType(p.Type)
		for _, e := range v.Map {
			ep := Param{Name: e.Key, Type: et, Fields: p.Fields}
			l.checkValueType(st, ep, e.Val, l.typeOf(e.Val), sc, name+".")
		}
	}
}

// typeOf is the type of an already compiled value.
func (l *loader) typeOf(v *Value) Type {
	switch v.kind {
	case kindTemplate:
		if v.Tmpl.Whole() && v.Tmpl.Parts[0].Expr != nil {
			if v.Tmpl.Parts[0].Expr.Type == "" {
				return TypeAny
			}
			return v.Tmpl.Parts[0].Expr.Type
		}
		return TypeString
	case kindList:
		return ListOf(TypeAny)
	case kindMap:
		return TypeMap
	}
	return literalType(v.Lit)
}

func article(t Type) string {
	switch t {
	case TypeInt:
		return "a whole number (int)"
	case TypeBool:
		return "true or false (bool)"
	case TypeString:
		return "a string"
	case TypeFloat:
		return "a number"
	case TypeDuration:
		return "a duration such as \"90s\""
	case TypeMap:
		return "a mapping"
	}
	return "a " + string(t)
}

// failureType is what on_failure and finally steps read of the failure that ended the main
// steps: the step, its error, the run status it led to, whether production is to be
// rolled back (the step's on_error: rollback, or a person's request) and who asked.
var failureType = types.Map{"step": types.String, "error": types.String, "status": types.String, "rollback": types.Bool, "by": types.String}

// noTemplate refuses ${{ }} in a step's name or description: they label the step in plans,
// reports and the live display before anything is known, so they are shown as written.
func (l *loader) noTemplate(n *yaml.Node, st *StepDecl, key, v string) {
	if strings.Contains(v, "${{") {
		l.errAt(n, "step %s: %s is shown as written, in plans and reports before anything runs: ${{ }} is not rendered here; name the step in words and put values in its with:", st.ID, key)
	}
}

// compileLeftBehind compiles the left_behind of every step that has one: rendered when the
// run ends, it reads every step, and the failure.
func (l *loader) compileLeftBehind(sc *scope) {
	end := sc.clone()
	end.env["failure"] = failureType
	for _, st := range l.leftBehind {
		esc := end
		if st.Fragment != nil {
			esc = end.clone()
			params := types.Map{}
			for _, e := range st.Fragment.Params {
				params[e.Key] = exprType(st.Fragment.Types[e.Key])
			}
			esc.env["params"] = params
		}
		file := l.file
		l.file = st.Pos.File
		if t := l.compileValue(st.LeftBehind, esc); t != TypeString && t != TypeAny {
			l.errAt(st.LeftBehind.Node, "step %s: left_behind gives %s, not a string", st.ID, t)
		}
		l.file = file
	}
}
