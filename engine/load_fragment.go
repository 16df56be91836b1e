package engine

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/expr-lang/expr/types"
	"gopkg.in/yaml.v3"
)

// collect reads a list of steps, expanding `include:` entries into the steps of the
// fragment files they name.
func (l *loader) collect(nodes []*yaml.Node, sec Section, frag *fragmentUse, depth int) []*StepDecl {
	var out []*StepDecl
	for i, n := range nodes {
		n = resolve(n)
		if n.Kind == yaml.MappingNode && hasKey(n, "include") {
			out = append(out, l.include(n, sec, depth)...)
			continue
		}
		st := l.stepHeader(n, sec, i)
		if st == nil {
			continue
		}
		st.Fragment = frag
		out = append(out, st)
	}
	return out
}

func hasKey(n *yaml.Node, key string) bool {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}

// fragmentUse is one inclusion of a fragment: its file, and its parameters as given.
type fragmentUse struct {
	File   string
	From   string     // the file that includes it
	Params []MapEntry // name -> value (literal or template over inputs and vars)
	Types  map[string]Type
	// Phase is the procedure's section the fragment's steps belong to ("Preparing").
	Phase string
	// Needs is what the fragment declares it reads of the including playbook.
	Needs *FragmentNeeds

	compiled bool
	alone    bool       // the fragment is validated by itself
	at       *yaml.Node // the include's file name, in From
	path     string     // as the include writes it
	sec      Section
}

var fragmentKeys = []string{"fragment", "description", "phase", "params", "needs", "steps"}

// include loads a fragment file: a list of steps shared by several playbooks, with typed
// parameters (read as params.NAME in its steps).
func (l *loader) include(n *yaml.Node, sec Section, depth int) []*StepDecl {
	_, f, _ := l.mapping(n, "include", includeKeys)
	path, ok := l.str(f["include"], "include")
	if !ok {
		return nil
	}
	if depth >= 5 {
		l.errAt(resolve(f["include"]), "include %s: fragments nest more than 5 deep (an include loop?)", path)
		return nil
	}
	full := path
	if !filepath.IsAbs(full) {
		full = filepath.Join(filepath.Dir(l.file), path)
	}
	src, err := readFragment(full)
	if err != nil {
		l.errAt(resolve(f["include"]), "include %s: %v", path, err)
		return nil
	}
	if len(src) > MaxPlaybookBytes {
		l.errAt(resolve(f["include"]), "include %s: the fragment is larger than %d MiB", path, MaxPlaybookBytes>>20)
		return nil
	}
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil {
		sub := &diags{file: full}
		yamlError(sub, src, err)
		for _, d := range sub.list {
			l.d.addIn(full, d.Pos.Line, d.Pos.Col, "%s", d.Msg)
		}
		return nil
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		doc = doc.Content[0]
	}
	outer := l.file
	l.file = full
	defer func() { l.file = outer }()
	use := &fragmentUse{File: full, From: outer, Types: map[string]Type{}, at: resolve(f["include"]), path: path, sec: sec}
	top, params := l.fragmentHeader(doc, use)
	if top == nil {
		return nil
	}
	l.uses = append(l.uses, use)
	declared := map[string]*Input{}
	var names []string
	for _, in := range params {
		declared[in.Name] = in
		names = append(names, in.Name)
	}
	given := map[string]bool{}
	l.file = outer
	if w, ok := f["with"]; ok {
		wv := l.value(w)
		if wv.kind != kindMap {
			l.errAt(resolve(w), "include %s: with must be a mapping of the fragment's params", path)
		}
		for _, e := range wv.Map {
			if _, ok := declared[e.Key]; !ok {
				l.errAt(e.KeyNode, "include %s: the fragment has no param %q%s; its params: %s", path, e.Key, didYouMean(e.Key, names), strings.Join(names, ", "))
				continue
			}
			given[e.Key] = true
			use.Params = append(use.Params, e)
		}
	}
	for _, name := range names {
		in := declared[name]
		if given[name] {
			continue
		}
		if in.HasDefault {
			use.Params = append(use.Params, MapEntry{Key: name, Val: &Value{Lit: in.Default, kind: kindLiteral}})
			continue
		}
		if in.Required {
			l.errAt(n, "include %s: missing required param %q (%s)", path, name, in.Description)
			continue
		}
		use.Params = append(use.Params, MapEntry{Key: name, Val: &Value{Lit: zeroOf(in.Type), kind: kindLiteral}})
	}
	l.file = full
	sn, ok := top["steps"]
	if !ok {
		l.errAt(doc, "the fragment has no steps")
		return nil
	}
	sn = resolve(sn)
	if sn.Kind != yaml.SequenceNode {
		l.errAt(sn, "steps must be a list of steps, not %s", kindName(sn))
		return nil
	}
	return l.collect(sn.Content, sec, use, depth+1)
}

// readFragment reads a fragment file, at most one byte past the size limit, and only a
// regular file: an include of /dev/zero or a FIFO must not read forever.
func readFragment(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, errors.Unwrap(err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, errors.Unwrap(err)
	} else if !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	return io.ReadAll(io.LimitReader(f, MaxPlaybookBytes+1))
}

var needsKeys = []string{"inputs", "vars", "steps", "roles", "connections", "failure"}
var varTypes = []string{"string", "int", "bool", "float", "list", "map", "any"}

// needs reads a fragment's `needs:`.
func (l *loader) needs(n *yaml.Node) *FragmentNeeds {
	nd := &FragmentNeeds{declared: map[string]bool{}}
	if n == nil {
		return nd
	}
	_, f, _ := l.mapping(n, "needs", needsKeys)
	typed := func(key string, allowed []string, list bool) []MapEntryType {
		x, ok := f[key]
		if !ok {
			return nil
		}
		nd.declared[key] = true
		order, vals, keys := l.mapping(x, "needs."+key, nil)
		var out []MapEntryType
		for _, name := range order {
			s, ok := l.str(vals[name], "needs."+key+"."+name)
			if !ok {
				continue
			}
			if allowed != nil && !contains(allowed, s) {
				l.errAt(resolve(vals[name]), "needs.%s.%s: unknown type %q%s; types: %s", key, name, s, didYouMean(s, allowed), strings.Join(allowed, ", "))
				continue
			}
			t := Type(s)
			if s == "list" {
				t = ListOf(TypeAny)
				if list {
					t = ListOf(TypeString)
				}
			}
			out = append(out, MapEntryType{Name: name, Type: t, node: keys[name]})
		}
		return out
	}
	nd.Inputs = typed("inputs", inputTypes, true)
	nd.Vars = typed("vars", varTypes, false)
	var connNames []string
	for _, t := range ConnectionTypes() {
		connNames = append(connNames, t.Name)
	}
	nd.Connections = typed("connections", connNames, false)
	if x, ok := f["steps"]; ok {
		nd.declared["steps"] = true
		order, vals, keys := l.mapping(x, "needs.steps", nil)
		for _, id := range order {
			ns := NeededStep{ID: id, node: keys[id]}
			v := resolve(vals[id])
			if v.Kind == yaml.MappingNode {
				_, sf, _ := l.mapping(v, "needs.steps."+id, []string{"type", "foreach"})
				if t, ok := sf["type"]; ok {
					ns.Type, _ = l.str(t, "type")
					v = resolve(t)
				} else {
					l.errAt(v, "needs.steps.%s: missing key \"type\" (the step's type, for its outputs)", id)
				}
				if fe, ok := sf["foreach"]; ok {
					ns.Foreach = l.boolean(fe, "foreach")
				}
			} else {
				ns.Type, _ = l.str(v, "needs.steps."+id)
			}
			if _, known := LookupStepType(ns.Type); !known && ns.Type != "" {
				var names []string
				for _, t := range StepTypes() {
					names = append(names, t.Name)
				}
				l.errAt(v, "needs.steps.%s: unknown step type %q%s", id, ns.Type, didYouMean(ns.Type, names))
				continue
			}
			nd.Steps = append(nd.Steps, ns)
		}
	}
	if x, ok := f["roles"]; ok {
		nd.declared["roles"] = true
		nd.Roles = []string{}
		x = resolve(x)
		if x.Kind != yaml.SequenceNode {
			l.errAt(x, "needs.roles must be a list of role names")
		}
		for _, c := range x.Content {
			if s, ok := l.str(c, "a role"); ok {
				nd.Roles = append(nd.Roles, s)
			}
		}
	}
	if x, ok := f["failure"]; ok {
		nd.Failure = l.boolean(x, "needs.failure")
	}
	return nd
}

// fragmentHeader reads a fragment's keys other than its steps.
func (l *loader) fragmentHeader(doc *yaml.Node, use *fragmentUse) (map[string]*yaml.Node, []*Input) {
	_, top, _ := l.mapping(doc, "the fragment", fragmentKeys)
	if top == nil {
		return nil, nil
	}
	if v, ok := top["fragment"]; !ok {
		l.errAt(doc, "missing key \"fragment: v1\" (a fragment's format version)")
	} else if s, _ := l.str(v, "fragment"); s != "v1" {
		l.errAt(resolve(v), "fragment: version %q is not supported; this runbook reads v1", s)
	}
	if ph, ok := top["phase"]; ok {
		use.Phase, _ = l.str(ph, "phase")
	}
	if ds, ok := top["description"]; ok {
		l.str(ds, "description")
	}
	var params []*Input
	if pn, ok := top["params"]; ok {
		fake := &Playbook{}
		l.inputs(fake, pn)
		params = fake.Inputs
		for _, in := range params {
			use.Types[in.Name] = in.Type
		}
	}
	use.Needs = l.needs(top["needs"])
	return top, params
}

// fragmentAlone validates a fragment file by itself: its params are typed values not
// known yet, and what it reads of a playbook is what its needs: declares.
func (l *loader) fragmentAlone(root *yaml.Node) *Fragment {
	doc := root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		doc = doc.Content[0]
	}
	use := &fragmentUse{File: l.file, From: l.file, Types: map[string]Type{}, compiled: true, alone: true}
	top, params := l.fragmentHeader(doc, use)
	if top == nil {
		return nil
	}
	fr := &Fragment{File: l.file, Phase: use.Phase, Params: params, Needs: use.Needs}
	if ds, ok := top["description"]; ok {
		fr.Description = resolve(ds).Value
	}
	for _, in := range params {
		use.Params = append(use.Params, MapEntry{Key: in.Name, Val: &Value{kind: kindLiteral}})
	}
	nd := use.Needs
	pb, sc := l.neededPlaybook(doc, nd)
	sec := SectionSteps
	if nd.Failure {
		sec = SectionOnFailure
	}
	sn, ok := top["steps"]
	if !ok {
		l.errAt(doc, "the fragment has no steps")
		return fr
	}
	sn = resolve(sn)
	if sn.Kind != yaml.SequenceNode {
		l.errAt(sn, "steps must be a list of steps, not %s", kindName(sn))
		return fr
	}
	stepsEnv := l.neededSteps(pb, sc, nd)
	fr.Steps = l.fragmentSteps(pb, sc, sn.Content, sec, use)
	if nd.Failure {
		sc.env["failure"] = failureType
	}
	for _, st := range fr.Steps {
		file := l.file
		l.file = st.Pos.File
		l.stepBody(pb, st, sc)
		l.file = file
		sc.visible[st.ID] = true
		stepsEnv[st.ID] = stepEnvType(st)
	}
	l.compileLeftBehind(sc)
	l.hintNeeds(nd)
	return fr
}

// neededPlaybook stands in for the playbooks that include a fragment checked alone: it
// has the inputs, vars, roles and connections the fragment's needs: declares. Without
// needs.roles or needs.connections, any role or connection is taken, and a note says
// they are checked where a playbook includes the fragment.
func (l *loader) neededPlaybook(doc *yaml.Node, nd *FragmentNeeds) (*Playbook, *scope) {
	pb := &Playbook{File: l.file, Roles: map[string][]string{}, People: map[string]Person{}, byID: map[string]*StepDecl{}}
	for _, in := range nd.Inputs {
		pb.Inputs = append(pb.Inputs, &Input{Name: in.Name, Type: in.Type})
	}
	sc := l.baseScope(pb)
	varsEnv := sc.env["vars"].(types.Map)
	for _, v := range nd.Vars {
		varsEnv[v.Name] = exprType(v.Type)
	}
	if nd.Roles != nil {
		for _, r := range nd.Roles {
			pb.Roles[r] = nil
			pb.RoleOrder = append(pb.RoleOrder, r)
		}
		sc = l.baseScopeRoles(sc, pb)
	} else {
		l.anyRole = true
		sc.env["roles"] = types.Map{types.Extra: types.Array(types.String)}
		l.note(doc, "the fragment declares no needs.roles: its steps' roles are checked where a playbook includes it")
	}
	if nd.declared["connections"] {
		for _, c := range nd.Connections {
			pb.Connections = append(pb.Connections, &ConnectionDecl{Name: c.Name, Type: string(c.Type), Settings: map[string]string{}})
		}
	} else {
		l.anyConnection = true
		l.note(doc, "the fragment declares no needs.connections: its steps' connections are checked where a playbook includes it")
	}
	return pb, sc
}

// neededSteps makes the steps of the including playbook that the fragment declares it
// reads (needs.steps) known and visible, before the fragment's own; it returns the
// scope's steps, to which the fragment's steps are added as they are compiled.
func (l *loader) neededSteps(pb *Playbook, sc *scope, nd *FragmentNeeds) types.Map {
	pb.byID = map[string]*StepDecl{}
	sc.allSteps = pb.byID
	sc.stepIndex = map[string]int{}
	stepsEnv := types.Map{}
	sc.env["steps"] = stepsEnv
	for _, ns := range nd.Steps {
		stype, _ := LookupStepType(ns.Type)
		st := &StepDecl{ID: ns.ID, Type: ns.Type, Section: SectionSteps, Pos: l.pos(ns.node), stepType: stype}
		if ns.Foreach {
			st.Foreach = &Value{kind: kindList}
		}
		pb.byID[ns.ID] = st
		sc.stepIndex[ns.ID] = len(sc.stepIndex)
		sc.visible[ns.ID] = true
		stepsEnv[ns.ID] = stepEnvType(st)
	}
	return stepsEnv
}

// fragmentSteps reads the headers of a fragment's own steps (expanding its includes),
// refusing an id that is a needed step's or another of its steps'.
func (l *loader) fragmentSteps(pb *Playbook, sc *scope, nodes []*yaml.Node, sec Section, use *fragmentUse) []*StepDecl {
	var steps []*StepDecl
	for _, st := range l.collect(nodes, sec, use, 1) {
		if prev, dup := pb.byID[st.ID]; dup {
			if prev.Fragment == nil && prev.node == nil {
				l.d.addIn(st.Pos.File, st.Pos.Line, st.Pos.Col, "step %s is declared under needs.steps (%s) as a step of the including playbook, and is a step of this fragment", st.ID, prev.Pos)
			} else {
				l.d.addIn(st.Pos.File, st.Pos.Line, st.Pos.Col, "duplicate step id %q (first at %s); ids must be unique", st.ID, prev.Pos)
			}
			continue
		}
		st.Index = len(steps)
		pb.byID[st.ID] = st
		sc.stepIndex[st.ID] = len(sc.stepIndex)
		steps = append(steps, st)
	}
	return steps
}

// hintNeeds adds to the problems of a fragment checked alone how to declare what may be
// the including playbook's: what is unknown alone may be there.
func (l *loader) hintNeeds(nd *FragmentNeeds) {
	for _, d := range l.d.list {
		switch {
		case strings.Contains(d.Msg, "refers to unknown step"):
			d.Msg += "; a step of the including playbook that the fragment reads is declared under needs.steps (id: step type)"
		case strings.Contains(d.Msg, "unknown field") && (strings.Contains(d.Msg, "vars.") || strings.Contains(d.Msg, "inputs.")):
			d.Msg += "; inputs and vars of the including playbook that the fragment reads are declared under needs.inputs and needs.vars (name: type)"
		case strings.Contains(d.Msg, "unknown role") && nd.Roles != nil:
			d.Msg += " (a fragment declares the roles its steps name under needs.roles)"
		}
	}
}

// baseScopeRoles refreshes the roles a scope knows.
func (l *loader) baseScopeRoles(sc *scope, pb *Playbook) *scope {
	roles := types.Map{}
	for r := range pb.Roles {
		roles[r] = types.Array(types.String)
	}
	sc.env["roles"] = roles
	return sc
}

// checkNeeds checks, for each inclusion, that the playbook provides what the fragment
// declares it needs; reported at the include, in the including file.
func (l *loader) checkNeeds(pb *Playbook, varTypesOf map[string]Type) {
	for _, u := range l.uses {
		nd := u.Needs
		if nd == nil || u.at == nil {
			continue
		}
		file := l.file
		l.file = u.From
		name := u.path
		for _, in := range nd.Inputs {
			var got *Input
			for _, x := range pb.Inputs {
				if x.Name == in.Name {
					got = x
				}
			}
			if got == nil {
				l.errAt(u.at, "include %s: the fragment needs input %s (%s), which this playbook does not declare", name, in.Name, in.Type)
			} else if !needSatisfied(in.Type, got.Type) {
				l.errAt(u.at, "include %s: the fragment needs input %s as %s, but here it is %s", name, in.Name, in.Type, got.Type)
			}
		}
		for _, v := range nd.Vars {
			t, ok := varTypesOf[v.Name]
			if !ok {
				l.errAt(u.at, "include %s: the fragment needs vars.%s (%s), which this playbook does not define", name, v.Name, v.Type)
			} else if !needSatisfied(v.Type, t) {
				l.errAt(u.at, "include %s: the fragment needs vars.%s as %s, but here it is %s", name, v.Name, v.Type, t)
			}
		}
		for _, ns := range nd.Steps {
			st := pb.byID[ns.ID]
			switch {
			case st == nil:
				l.errAt(u.at, "include %s: the fragment needs step %s (%s), which this playbook does not have", name, ns.ID, ns.Type)
			case st.Type != ns.Type:
				l.errAt(u.at, "include %s: the fragment needs step %s of type %s, but here it is a %s", name, ns.ID, ns.Type, st.Type)
			case ns.Foreach != (st.Foreach != nil):
				l.errAt(u.at, "include %s: the fragment needs step %s with foreach: %v, but here it has foreach: %v (its outputs are lists only with foreach)", name, ns.ID, ns.Foreach, st.Foreach != nil)
			}
		}
		for _, r := range nd.Roles {
			if _, ok := pb.Roles[r]; !ok {
				l.errAt(u.at, "include %s: the fragment needs role %s, which this playbook (and its site file) does not declare", name, r)
			}
		}
		for _, c := range nd.Connections {
			found := false
			for _, x := range pb.Connections {
				if x.Name == c.Name {
					found = true
					if x.Type != string(c.Type) {
						l.errAt(u.at, "include %s: the fragment needs connection %s of type %s, but here it is %s", name, c.Name, c.Type, x.Type)
					}
				}
			}
			if !found {
				l.errAt(u.at, "include %s: the fragment needs connection %s (%s), which this playbook (and its site file) does not declare", name, c.Name, c.Type)
			}
		}
		if nd.Failure && u.sec == SectionSteps {
			l.errAt(u.at, "include %s: the fragment's steps read failure (needs.failure): include it under on_failure or finally", name)
		}
		l.file = file
	}
}

// needSatisfied says whether a value of type got may stand for a declared need of type want.
func needSatisfied(want, got Type) bool {
	switch {
	case want == got || want == TypeAny || got == TypeAny:
		return true
	case strings.HasPrefix(string(want), "list<"):
		return strings.HasPrefix(string(got), "list<")
	case want == TypeMap:
		return strings.HasPrefix(string(got), "map")
	case want == TypeFloat:
		return got == TypeInt
	}
	return false
}
