package engine

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/checker/nature"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/optimizer"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"
)

// Expr is a compiled expression: a `when:` condition or one ${{ }} of a template. It is
// compiled and type-checked once, at validation, and the program reused at run time.
type Expr struct {
	Src  string
	Pos  Pos
	prog *vm.Program
	// Type is the expression's result type as far as the checker knows (Any when unknown).
	Type Type
	// Deps are the step ids whose status or outputs the expression reads.
	Deps []string
}

// Template is a string with ${{ expr }} parts. A template that is exactly one expression
// gives that expression's value with its type (an int stays an int); any other gives a string.
type Template struct {
	Src   string
	Parts []TemplatePart
}

// TemplatePart is literal text or an expression.
type TemplatePart struct {
	Text string
	Expr *Expr
}

// Whole reports whether the template is exactly one expression.
func (t *Template) Whole() bool { return len(t.Parts) == 1 && t.Parts[0].Expr != nil }

// Deps returns the step ids the template reads.
func (t *Template) Deps() []string {
	var out []string
	for _, p := range t.Parts {
		if p.Expr != nil {
			out = append(out, p.Expr.Deps...)
		}
	}
	return out
}

// hasTemplate reports whether s contains a ${{ }} expression.
func hasTemplate(s string) bool { return strings.Contains(s, "${{") }

// splitTemplate splits s into literal and expression parts. Offsets of expressions are
// returned for error positions.
func splitTemplate(s string) (parts []TemplatePart, offsets []int, err error) {
	rest, base := s, 0
	for {
		i := strings.Index(rest, "${{")
		if i < 0 {
			if rest != "" {
				parts = append(parts, TemplatePart{Text: rest})
				offsets = append(offsets, base)
			}
			return parts, offsets, nil
		}
		if i > 0 {
			parts = append(parts, TemplatePart{Text: rest[:i]})
			offsets = append(offsets, base)
		}
		j := strings.Index(rest[i+3:], "}}")
		if j < 0 {
			return nil, nil, fmt.Errorf("unclosed ${{ at offset %d: add the closing }}", base+i)
		}
		src := strings.TrimSpace(rest[i+3 : i+3+j])
		if src == "" {
			return nil, nil, fmt.Errorf("empty ${{ }} at offset %d", base+i)
		}
		parts = append(parts, TemplatePart{Expr: &Expr{Src: src}})
		offsets = append(offsets, base+i+3+strings.Index(rest[i+3:], src))
		rest = rest[i+3+j+2:]
		base += i + 3 + j + 2
	}
}

// scope is the typed environment an expression is checked against, and what it may see.
type scope struct {
	env types.Map
	// steps known to the playbook, by id, with their order (to tell "later" from "unknown").
	stepIndex map[string]int
	allSteps  map[string]*StepDecl
	visible   map[string]bool // steps whose status/outputs this expression may read
}

func (s *scope) clone() *scope {
	env := make(types.Map, len(s.env))
	for k, v := range s.env {
		env[k] = v
	}
	// visible only grows, step by step, and a clone lives for one step's compilation, so
	// it can share it.
	return &scope{env: env, stepIndex: s.stepIndex, allSteps: s.allSteps, visible: s.visible}
}

// exprType maps a playbook type to the checker's.
func exprType(t Type) types.Type {
	switch t {
	case TypeString, TypeDuration:
		return types.String
	case TypeInt:
		return types.Int
	case TypeBool:
		return types.Bool
	case TypeFloat:
		return types.Float64
	case TypeMap:
		return types.Map{types.Extra: types.Any}
	case TypeAny, "":
		return types.Any
	}
	s := string(t)
	if strings.HasPrefix(s, "list<") && strings.HasSuffix(s, ">") {
		return types.Array(exprType(Type(s[5 : len(s)-1])))
	}
	if strings.HasPrefix(s, "map<") && strings.HasSuffix(s, ">") {
		return types.Map{types.Extra: exprType(Type(s[4 : len(s)-1]))}
	}
	return types.Any
}

// typeOfReflect maps the checker's result type back to a playbook type.
func typeOfReflect(rt reflect.Type) Type {
	if rt == nil {
		return TypeAny
	}
	switch rt.Kind() {
	case reflect.String:
		return TypeString
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return TypeInt
	case reflect.Float32, reflect.Float64:
		return TypeFloat
	case reflect.Bool:
		return TypeBool
	case reflect.Slice, reflect.Array:
		return ListOf(typeOfReflect(rt.Elem()))
	case reflect.Map:
		return TypeMap
	}
	return TypeAny
}

// assignable reports whether a value of type got can be given where want is expected.
func assignable(want, got Type) bool {
	if want == TypeAny || got == TypeAny || want == got {
		return true
	}
	switch want {
	case TypeFloat:
		return got == TypeInt
	case TypeDuration:
		return got == TypeString || got == TypeInt
	case TypeMap:
		return strings.HasPrefix(string(got), "map")
	}
	if strings.HasPrefix(string(want), "list<") && strings.HasPrefix(string(got), "list<") {
		return assignable(elemType(want), elemType(got))
	}
	if strings.HasPrefix(string(want), "map<") && strings.HasPrefix(string(got), "map") {
		return true
	}
	return false
}

func elemType(t Type) Type {
	s := string(t)
	if i := strings.IndexByte(s, '<'); i >= 0 && strings.HasSuffix(s, ">") {
		return Type(s[i+1 : len(s)-1])
	}
	return TypeAny
}

// compileExpr parses, checks references and type-checks one expression. pos is where
// the expression's source text starts in the file.
func compileExpr(e *Expr, sc *scope, pos Pos, d *diags) bool {
	e.Pos = pos
	tree, err := parseExpr(e.Src, sc.env)
	if err != nil {
		line, col, msg := exprErrorPos(err, pos)
		d.addIn(pos.File, line, col, "expression syntax error: %s", msg)
		return false
	}
	ok := checkRefs(tree.Node, e, sc, pos, d)
	if !ok {
		return false
	}
	// Check against the steps this expression reads only: building the checker's view of
	// every earlier step for every expression would make validation quadratic.
	env := make(types.Map, len(sc.env))
	for k, v := range sc.env {
		env[k] = v
	}
	if all, ok := sc.env["steps"].(types.Map); ok {
		steps := types.Map{}
		for _, id := range e.Deps {
			if t, ok := all[id]; ok {
				steps[id] = t
			}
		}
		env["steps"] = steps
	}
	prog, err := compileTree(tree, env)
	if err != nil {
		line, col, msg := exprErrorPos(err, pos)
		d.addIn(pos.File, line, col, "expression %q: %s", e.Src, msg)
		return false
	}
	e.prog = prog
	e.Type = typeOfReflect(prog.Node().Type())
	if prog.Node().Type() == reflect.TypeOf((*any)(nil)).Elem() {
		e.Type = TypeAny
	}
	return true
}

// exprConfig is the expr configuration every expression shares. expr.Compile builds a
// new one, with its table of builtins, per expression: a fifth of validation.
var exprConfig = func() *conf.Config {
	c := conf.CreateNew()
	c.MaxNodes = 10000
	return c
}()

// parseExpr parses src once, for both the reference check and the type check. The parser
// only needs the environment's top-level names (a name the environment defines is not a
// builtin), so it gets those, typed any: their full types are the checker's.
func parseExpr(src string, env types.Map) (*parser.Tree, error) {
	names := make(types.Map, len(env))
	for k := range env {
		names[k] = types.Any
	}
	c := *exprConfig
	c.NtCache = nature.Cache{}
	c.WithEnv(names)
	return parser.ParseWithConfig(src, &c)
}

// compileTree is what expr.Compile(src, expr.Env(env), expr.MaxNodes(10000)) does after
// parsing, on a copy of exprConfig: the copy has its own environment and nature cache, and
// shares the tables (functions, builtins), which compiling only reads.
func compileTree(tree *parser.Tree, env types.Map) (*vm.Program, error) {
	c := *exprConfig
	c.NtCache = nature.Cache{}
	c.WithEnv(env)
	if _, err := new(checker.Checker).PatchAndCheck(tree, &c); err != nil {
		return nil, err
	}
	if c.Optimize {
		if err := optimizer.Optimize(&tree.Node, &c); err != nil {
			var fe *file.Error
			if errors.As(err, &fe) {
				return nil, fe.Bind(tree.Source)
			}
			return nil, err
		}
	}
	return compiler.Compile(tree, &c)
}

func exprErrorPos(err error, pos Pos) (int, int, string) {
	if fe, ok := err.(*file.Error); ok {
		msg := fe.Message
		line, col := pos.Line, pos.Col
		if fe.Line <= 1 {
			col += fe.Column
		} else {
			line += fe.Line - 1
			col = fe.Column + 1
		}
		return line, col, msg
	}
	return pos.Line, pos.Col, err.Error()
}

// checkRefs walks the expression for `steps.<id>...` and top-level names, to say clearly
// what is wrong with a reference before the type checker gives its terser message.
func checkRefs(root ast.Node, e *Expr, sc *scope, pos Pos, d *diags) bool {
	v := &refVisitor{sc: sc}
	ast.Walk(&root, v)
	ok := true
	seen := map[string]bool{}
	for _, r := range v.refs {
		at := func() (int, int) {
			l := r.loc
			return pos.Line, pos.Col + l.From
		}
		line, col := at()
		switch {
		case r.unknownRoot != "":
			names := make([]string, 0, len(sc.env))
			for k := range sc.env {
				if k != types.Extra {
					names = append(names, k)
				}
			}
			sort.Strings(names)
			d.addIn(pos.File, line, col, "unknown name %q in expression %q%s; expressions can read %s", r.unknownRoot, e.Src, didYouMean(r.unknownRoot, names), strings.Join(names, ", "))
			ok = false
		case r.step != "":
			if !seen[r.step] {
				seen[r.step] = true
				e.Deps = append(e.Deps, r.step)
			}
			decl, exists := sc.allSteps[r.step]
			if !exists {
				ids := make([]string, 0, len(sc.allSteps))
				for id := range sc.allSteps {
					ids = append(ids, id)
				}
				sort.Strings(ids)
				d.addIn(pos.File, line, col, "expression %q refers to unknown step %q%s", e.Src, r.step, didYouMean(r.step, ids))
				ok = false
				continue
			}
			if !sc.visible[r.step] {
				d.addIn(pos.File, line, col, "expression %q refers to step %q, which runs later (%s:%d); a step can only read steps before it", e.Src, r.step, decl.Section, decl.Pos.Line)
				ok = false
				continue
			}
			if r.output != "" {
				var names []string
				found := false
				for _, o := range decl.stepType.Outputs {
					names = append(names, o.Name)
					if o.Name == r.output {
						found = true
					}
				}
				if !found {
					has := "none"
					if len(names) > 0 {
						has = strings.Join(names, ", ")
					}
					d.addIn(pos.File, line, col, "step %q (%s) has no output %q%s; its outputs: %s", r.step, decl.Type, r.output, didYouMean(r.output, names), has)
					ok = false
				}
			}
		}
	}
	return ok
}

type ref struct {
	loc         file.Location
	unknownRoot string
	step        string
	output      string
}

type refVisitor struct {
	sc   *scope
	refs []ref
}

func (v *refVisitor) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		if _, ok := v.sc.env[n.Value]; !ok && !isBuiltinName(n.Value) && !isClosureVar(n.Value) {
			v.refs = append(v.refs, ref{loc: n.Location(), unknownRoot: n.Value})
		}
	case *ast.MemberNode:
		// steps.<id>[.outputs.<name>]: one ref per chain, placed at its root identifier,
		// keeping the longest chain (the walk visits inner members too).
		chain, root := memberChain(n)
		if len(chain) < 2 || chain[0] != "steps" {
			return
		}
		r := ref{loc: root, step: chain[1]}
		if len(chain) >= 4 && chain[2] == "outputs" {
			r.output = chain[3]
		}
		for i, old := range v.refs {
			if old.step != "" && old.loc == r.loc {
				if r.output != "" {
					v.refs[i] = r
				}
				return
			}
		}
		v.refs = append(v.refs, r)
	}
}

func memberChain(n *ast.MemberNode) ([]string, file.Location) {
	var rev []string
	var root file.Location
	var cur ast.Node = n
	for {
		switch m := cur.(type) {
		case *ast.MemberNode:
			s, ok := m.Property.(*ast.StringNode)
			if !ok {
				rev = rev[:0]
				cur = m.Node
				continue
			}
			rev = append(rev, s.Value)
			cur = m.Node
			continue
		case *ast.IdentifierNode:
			rev = append(rev, m.Value)
			root = m.Location()
		default:
			return nil, root
		}
		break
	}
	out := make([]string, len(rev))
	for i := range rev {
		out[i] = rev[len(rev)-1-i]
	}
	return out, root
}

func isClosureVar(name string) bool { return name == "#" || name == "#index" || name == "#acc" }

var builtinNames = func() map[string]bool {
	m := map[string]bool{}
	for _, n := range []string{"len", "all", "none", "any", "one", "filter", "map", "count", "sum", "find", "findIndex",
		"findLast", "findLastIndex", "groupBy", "sortBy", "reduce", "trim", "trimPrefix", "trimSuffix", "upper", "lower",
		"split", "splitAfter", "replace", "repeat", "join", "indexOf", "lastIndexOf", "hasPrefix", "hasSuffix", "max",
		"min", "abs", "ceil", "floor", "round", "mean", "median", "int", "float", "string", "toJSON", "fromJSON",
		"toBase64", "fromBase64", "now", "duration", "date", "timezone", "first", "last", "get", "take", "keys", "values",
		"toPairs", "fromPairs", "type", "uniq", "concat", "flatten", "sort", "bitand", "bitor", "bitxor", "bitnand",
		"bitnot", "bitshl", "bitshr", "bitushr", "true", "false", "nil", "$env"} {
		m[n] = true
	}
	return m
}()

func isBuiltinName(n string) bool { return builtinNames[n] }

// vmPool keeps expr's virtual machines (and their stacks) for the next evaluation.
var vmPool = sync.Pool{New: func() any { return new(vm.VM) }}

// eval runs a compiled expression against a runtime environment.
func (e *Expr) eval(env map[string]any) (any, error) {
	m := vmPool.Get().(*vm.VM)
	out, err := m.Run(e.prog, env)
	vmPool.Put(m)
	if err != nil {
		return nil, fmt.Errorf("%s: expression %q: %v", e.Pos, e.Src, firstLine(err.Error()))
	}
	return stringKeys(out), nil
}

// stringKeys turns the map[any]any that expr's fromPairs builds into map[string]any, as
// every other value of a run is (parameters, the journal's JSON).
func stringKeys(v any) any {
	switch x := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, val := range x {
			m[fmt.Sprint(k)] = stringKeys(val)
		}
		return m
	case []any:
		for i := range x {
			x[i] = stringKeys(x[i])
		}
	case map[string]any:
		for k, val := range x {
			x[k] = stringKeys(val)
		}
	}
	return v
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
