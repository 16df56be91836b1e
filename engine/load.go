package engine

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr/types"
	"gopkg.in/yaml.v3"
)

// Limits on what a playbook may be. They keep a hostile or broken file from costing
// more than a moment: a YAML alias bomb, a huge file, a runaway expression.
const (
	MaxPlaybookBytes = 2 << 20 // 2 MiB; a 1,000-step playbook is about 150 KiB
	maxValues        = 200000  // values after alias expansion
)

var (
	idRE        = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	nameRE      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	topLevelKey = []string{"runbook", "product", "title", "description", "site", "roles", "people", "inputs", "vars", "connections", "steps", "on_failure", "finally"}
	includeKeys = []string{"include", "with"}
	stepKeys    = []string{"id", "type", "name", "description", "when", "with", "foreach", "parallel", "retry", "timeout", "on_error", "continue_on_error", "role", "rollback", "checklist", "left_behind", "phase"}
	inputKeys   = []string{"type", "description", "default", "required", "pattern", "enum"}
	retryKeys   = []string{"attempts", "backoff", "max_delay"}
	personKeys  = []string{"name", "email", "chat"}
	inputTypes  = []string{"string", "int", "bool", "list"}
)

// LoadFile reads and validates a playbook file.
func LoadFile(path string) (*Playbook, error) {
	src, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, src)
}

// readFile reads a playbook, fragment or site file: one byte past the limit, so a huge
// file is refused without reading it all.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, MaxPlaybookBytes+1))
}

// Parse validates a playbook. Every problem is reported at once, as an *InvalidError
// whose lines read `file:line:col: message`.
func Parse(file string, src []byte) (*Playbook, error) {
	d := &diags{file: file}
	if len(src) > MaxPlaybookBytes {
		d.add(1, 1, "the file is larger than %d MiB, the most a playbook may be; split it into fragments", MaxPlaybookBytes>>20)
		return nil, d.err()
	}
	if i := bytes.IndexByte(src, 0); i >= 0 || !utf8.Valid(src) {
		line, col := 1, 1
		if i >= 0 {
			line, col = lineCol(src, i)
		}
		d.add(line, col, "this is not a text file: a playbook is YAML in UTF-8")
		return nil, d.err()
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(src))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			d.add(1, 1, "the file is empty: a playbook needs at least runbook, product and steps")
			return nil, d.err()
		}
		yamlError(d, src, err)
		return nil, d.err()
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.add(extra.Line, extra.Column, "a second YAML document: a playbook file holds one document (remove the ---)")
	}
	l := &loader{d: d, file: file}
	if k, at := docKind(&root); k != kindPlaybook {
		d.add(at.Line, at.Column, "this is a %s file (%s: v1), not a playbook: %s; `runbook validate %s` checks it alone", k, k, map[fileKind]string{kindFragment: "a playbook includes it in its steps (- include: FILE)", kindSite: "a playbook names it (site: FILE)"}[k], file)
		return nil, d.err()
	}
	pb := l.playbook(&root)
	if pb != nil {
		pb.File, pb.Source = file, src
	}
	if err := d.err(); err != nil {
		return nil, err
	}
	return pb, nil
}

func lineCol(src []byte, off int) (int, int) {
	line := 1 + bytes.Count(src[:off], []byte("\n"))
	col := off - bytes.LastIndexByte(src[:off], '\n')
	return line, col
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func yamlError(d *diags, src []byte, err error) {
	msg := err.Error()
	// A tab in indentation is the commonest cause; say so plainly.
	for i, line := range strings.Split(string(src), "\n") {
		trimmed := strings.TrimLeft(line, " \t")
		indent := line[:len(line)-len(trimmed)]
		if j := strings.IndexByte(indent, '\t'); j >= 0 && trimmed != "" {
			d.add(i+1, j+1, "a tab in indentation: YAML indents with spaces only")
			return
		}
	}
	if m := yamlLineRE.FindStringSubmatch(firstLine(msg)); m != nil {
		n, _ := strconv.Atoi(m[1])
		// yaml.v3 numbers the lines of its scanner's errors from 1 but those of its
		// parser ("did not find expected ...") from 0: report the line the problem is on.
		if strings.HasPrefix(m[2], "did not find expected") {
			n++
		}
		lines := strings.Split(string(src), "\n")
		col := 1
		if n >= 1 && n <= len(lines) {
			col += len(lines[n-1]) - len(strings.TrimLeft(lines[n-1], " "))
		}
		d.add(n, col, "invalid YAML: %s", m[2])
		return
	}
	d.add(1, 1, "invalid YAML: %s", strings.TrimPrefix(firstLine(msg), "yaml: "))
}

type loader struct {
	d      *diags
	file   string
	values int
	bomb   bool
	// misspelt holds the keys that an unknown key was taken for ("stpes" -> "steps"), so a
	// typo is reported once, not again as the key being missing.
	misspelt map[*yaml.Node]map[string]bool
	// leftBehind are the steps with a left_behind: compiled last, as they read every step.
	leftBehind []*StepDecl
	// sites is what the playbook's site file defined; inSite while reading it.
	sites  *siteState
	inSite bool
	// uses are the fragment inclusions, checked against what each fragment needs.
	uses []*fragmentUse
	// anyRole and anyConnection: a fragment validated alone that does not declare the
	// roles or connections it needs; notes say what was left unchecked.
	anyRole, anyConnection bool
	notes                  []*Diagnostic
}

func (l *loader) wasMisspelt(n *yaml.Node, key string) bool {
	return l.misspelt[resolve(n)][key]
}

func (l *loader) pos(n *yaml.Node) Pos { return Pos{File: l.file, Line: n.Line, Col: n.Column} }

func (l *loader) errAt(n *yaml.Node, format string, args ...any) {
	l.d.addIn(l.file, n.Line, n.Column, format, args...)
}

// resolve follows aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// mapping returns the keys of a mapping node in order, reporting unknown and duplicate
// keys. allowed == nil accepts any key.
func (l *loader) mapping(n *yaml.Node, what string, allowed []string) ([]string, map[string]*yaml.Node, map[string]*yaml.Node) {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		if n != nil {
			l.errAt(n, "%s must be a mapping (key: value), not %s", what, kindName(n))
		}
		return nil, nil, nil
	}
	var order []string
	vals := map[string]*yaml.Node{}
	keys := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			l.errAt(k, "%s: keys must be plain names", what)
			continue
		}
		if k.Value == "<<" {
			l.errAt(k, "%s: merge keys (<<) are not supported; write the keys out", what)
			continue
		}
		if prev, dup := keys[k.Value]; dup {
			l.errAt(k, "%s: key %q appears twice (first at line %d)", what, k.Value, prev.Line)
			continue
		}
		if allowed != nil && !contains(allowed, k.Value) {
			l.errAt(k, "unknown key %q in %s%s; valid keys: %s", k.Value, what, didYouMean(k.Value, allowed), strings.Join(allowed, ", "))
			if sug := suggest(k.Value, allowed); sug != "" {
				if l.misspelt == nil {
					l.misspelt = map[*yaml.Node]map[string]bool{}
				}
				if l.misspelt[n] == nil {
					l.misspelt[n] = map[string]bool{}
				}
				l.misspelt[n][sug] = true
			}
			continue
		}
		order = append(order, k.Value)
		keys[k.Value] = k
		vals[k.Value] = v
	}
	return order, vals, keys
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "empty"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

func (l *loader) str(n *yaml.Node, what string) (string, bool) {
	n = resolve(n)
	if n == nil {
		return "", false
	}
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		l.errAt(n, "%s must be a string, not %s", what, kindName(n))
		return "", false
	}
	return n.Value, true
}

func (l *loader) boolean(n *yaml.Node, what string) bool {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		l.errAt(n, "%s must be true or false, not %s", what, kindName(n))
		return false
	}
	b, _ := strconv.ParseBool(n.Value)
	return b
}

func (l *loader) integer(n *yaml.Node, what string) int {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		l.errAt(n, "%s must be a whole number, not %s", what, kindName(n))
		return 0
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil {
		l.errAt(n, "%s: %v", what, err)
	}
	return v
}

func (l *loader) duration(n *yaml.Node, what string) Duration {
	s, ok := l.str(n, what)
	if !ok {
		return 0
	}
	v, err := ParseDuration(s)
	if err != nil {
		l.errAt(resolve(n), "%s: %v", what, err)
	}
	return Duration(v)
}

// value converts a node to a Value, expanding aliases within a budget.
func (l *loader) value(n *yaml.Node) *Value {
	n = resolve(n)
	l.values++
	if l.values > maxValues {
		if !l.bomb {
			l.bomb = true
			l.errAt(n, "the document expands to more than %d values (an alias bomb?); write it without aliases", maxValues)
		}
		return &Value{Node: n}
	}
	switch n.Kind {
	case yaml.SequenceNode:
		v := &Value{Node: n, kind: kindList}
		for _, c := range n.Content {
			if l.bomb {
				break
			}
			v.List = append(v.List, l.value(c))
		}
		return v
	case yaml.MappingNode:
		v := &Value{Node: n, kind: kindMap}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if l.bomb {
				break
			}
			k := resolve(n.Content[i])
			v.Map = append(v.Map, MapEntry{Key: k.Value, KeyNode: k, Val: l.value(n.Content[i+1])})
		}
		return v
	case yaml.ScalarNode:
		if n.Tag == "!!str" && hasTemplate(n.Value) {
			return &Value{Node: n, Tmpl: &Template{Src: n.Value}, kind: kindTemplate}
		}
		var lit any
		if err := n.Decode(&lit); err != nil {
			l.errAt(n, "%v", err)
		}
		return &Value{Node: n, Lit: lit, kind: kindLiteral}
	}
	return &Value{Node: n}
}

// exprPos is where the expression text at byte offset off of a scalar begins.
func exprPos(file string, n *yaml.Node, off int) Pos {
	col := n.Column + off
	if n.Style == yaml.DoubleQuotedStyle || n.Style == yaml.SingleQuotedStyle {
		col++
	}
	if strings.Contains(n.Value[:min(off, len(n.Value))], "\n") || n.Style == yaml.LiteralStyle || n.Style == yaml.FoldedStyle {
		col = n.Column
	}
	return Pos{File: file, Line: n.Line, Col: col}
}

// compileValue compiles every template in v against sc, and returns v's type.
func (l *loader) compileValue(v *Value, sc *scope) Type {
	switch v.kind {
	case kindTemplate:
		if v.Tmpl.Parts != nil {
			return l.typeOf(v)
		}
		parts, offs, err := splitTemplate(v.Tmpl.Src)
		if err != nil {
			l.errAt(v.Node, "%v", err)
			return TypeAny
		}
		v.Tmpl.Parts = parts
		okAll := true
		for i := range parts {
			if parts[i].Expr != nil {
				if !compileExpr(parts[i].Expr, sc, exprPos(l.file, v.Node, offs[i]), l.d) {
					okAll = false
				}
			}
		}
		if v.Tmpl.Whole() {
			if !okAll {
				return TypeAny
			}
			return parts[0].Expr.Type
		}
		return TypeString
	case kindList:
		var et Type
		for i, e := range v.List {
			t := l.compileValue(e, sc)
			if i == 0 {
				et = t
			} else if et != t {
				et = TypeAny
			}
		}
		if et == "" {
			et = TypeAny
		}
		return ListOf(et)
	case kindMap:
		for _, e := range v.Map {
			l.compileValue(e.Val, sc)
		}
		return TypeMap
	}
	return literalType(v.Lit)
}

func literalType(x any) Type {
	switch x.(type) {
	case string:
		return TypeString
	case int, int64:
		return TypeInt
	case float64:
		return TypeFloat
	case bool:
		return TypeBool
	}
	return TypeAny
}

// playbook reads and compiles a playbook document: its declarations, then its steps.
func (l *loader) playbook(root *yaml.Node) *Playbook {
	doc := root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		doc = doc.Content[0]
	}
	_, top, keys := l.mapping(doc, "the playbook", topLevelKey)
	if top == nil {
		return nil
	}
	pb := &Playbook{Roles: map[string][]string{}, People: map[string]Person{}, byID: map[string]*StepDecl{}}
	l.playbookHeader(pb, doc, top)
	l.site(pb, top["site"])
	l.roles(pb, top["roles"])
	l.people(pb, top["people"])
	l.inputs(pb, top["inputs"])
	sc := l.baseScope(pb)
	l.vars(pb, top["vars"], sc)
	l.connections(pb, top["connections"])
	l.unusedOverrides()
	if l.bomb {
		return pb
	}
	// Collect every step first, so references can tell "later" from "unknown".
	sections := l.stepSections(pb, doc, top, keys)
	l.collectSteps(pb, sc, sections)
	l.compileSteps(pb, sc, sections)
	varTypesOf := map[string]Type{}
	for _, v := range pb.Vars {
		varTypesOf[v.Name] = v.Type
	}
	l.checkNeeds(pb, varTypesOf)
	// left_behind is rendered when the run ends: it reads every step, and the failure.
	l.compileLeftBehind(sc)
	return pb
}

// playbookHeader reads the format version, the product code, the title and the description.
func (l *loader) playbookHeader(pb *Playbook, doc *yaml.Node, top map[string]*yaml.Node) {
	if n, ok := top["runbook"]; ok {
		if v, ok := l.str(n, "runbook"); ok && v != "v1" {
			l.errAt(resolve(n), "runbook: version %q is not supported; this runbook reads v1", v)
		}
		pb.Version = "v1"
	} else {
		l.d.add(doc.Line, doc.Column, "missing key \"runbook: v1\" (the playbook format version)")
	}
	if n, ok := top["product"]; ok {
		pb.Product, _ = l.str(n, "product")
		if pb.Product != "" && !idRE.MatchString(pb.Product) {
			l.errAt(resolve(n), "product %q must be a lowercase code such as cdc, cvs, eqb or elsst", pb.Product)
		}
	} else {
		l.d.add(doc.Line, doc.Column, "missing key \"product\" (the product code, e.g. cdc)")
	}
	if n, ok := top["title"]; ok {
		pb.Title, _ = l.str(n, "title")
	}
	if n, ok := top["description"]; ok {
		pb.Description, _ = l.str(n, "description")
	}
}

// stepSection is one of a playbook's lists of steps: its YAML nodes, and where its
// steps go.
type stepSection struct {
	sec   Section
	nodes []*yaml.Node
	dst   *[]*StepDecl
}

// stepSections finds the playbook's steps, on_failure and finally lists; steps is
// required and not empty, the others may be left out or null.
func (l *loader) stepSections(pb *Playbook, doc *yaml.Node, top, keys map[string]*yaml.Node) []stepSection {
	var sections []stepSection
	for _, s := range []stepSection{{sec: SectionSteps, dst: &pb.Steps}, {sec: SectionOnFailure, dst: &pb.OnFailure}, {sec: SectionFinally, dst: &pb.Finally}} {
		n, ok := top[string(s.sec)]
		if !ok {
			if s.sec == SectionSteps && !l.wasMisspelt(doc, "steps") {
				l.d.add(doc.Line, doc.Column, "missing key \"steps\": a playbook needs at least one step")
			}
			continue
		}
		n = resolve(n)
		if n.Kind != yaml.SequenceNode {
			if n.Tag == "!!null" && s.sec != SectionSteps {
				continue
			}
			l.errAt(n, "%s must be a list of steps, not %s", s.sec, kindName(n))
			continue
		}
		if len(n.Content) == 0 && s.sec == SectionSteps {
			l.errAt(keys["steps"], "steps is empty: a playbook needs at least one step")
		}
		s.nodes = n.Content
		sections = append(sections, s)
	}
	return sections
}

// collectSteps reads every step's header (expanding includes), refusing duplicate ids,
// and tells the scope which steps exist and in what order.
func (l *loader) collectSteps(pb *Playbook, sc *scope, sections []stepSection) {
	all := map[string]*StepDecl{}
	index := map[string]int{}
	for _, s := range sections {
		for _, st := range l.collect(s.nodes, s.sec, nil, 0) {
			if prev, dup := all[st.ID]; dup {
				l.d.addIn(st.Pos.File, st.Pos.Line, st.Pos.Col, "duplicate step id %q (first at %s); ids must be unique", st.ID, prev.Pos)
				continue
			}
			st.Index = len(*s.dst)
			all[st.ID] = st
			index[st.ID] = len(index)
			*s.dst = append(*s.dst, st)
		}
	}
	pb.byID = all
	sc.allSteps = all
	sc.stepIndex = index
}

// compileSteps compiles each step's body in order: a step sees the steps before it, and
// the steps of on_failure and finally see the failure too.
func (l *loader) compileSteps(pb *Playbook, sc *scope, sections []stepSection) {
	stepsEnv := types.Map{}
	sc.env["steps"] = stepsEnv
	for _, s := range sections {
		if s.sec != SectionSteps {
			sc.env["failure"] = failureType
		}
		for _, st := range *s.dst {
			file := l.file
			l.file = st.Pos.File
			l.stepBody(pb, st, sc)
			l.file = file
			sc.visible[st.ID] = true
			stepsEnv[st.ID] = stepEnvType(st)
		}
	}
}

func stepEnvType(st *StepDecl) types.Map {
	outs := types.Map{}
	for _, o := range st.stepType.Outputs {
		t := exprType(o.Type)
		if st.Foreach != nil {
			t = types.Array(t)
		}
		outs[o.Name] = t
	}
	return types.Map{"status": types.String, "error": types.String, "attempts": types.Int, "outputs": outs}
}

func (l *loader) roles(pb *Playbook, n *yaml.Node) {
	if n == nil {
		return
	}
	order, vals, keys := l.mapping(n, "roles", nil)
	for _, name := range order {
		if !nameRE.MatchString(name) {
			l.errAt(keys[name], "role name %q must be a plain identifier such as service_owner", name)
		}
		v := resolve(vals[name])
		var people []string
		switch v.Kind {
		case yaml.SequenceNode:
			for _, c := range v.Content {
				if s, ok := l.str(c, "a role's member"); ok {
					people = append(people, s)
				}
			}
		case yaml.ScalarNode:
			if s, ok := l.str(v, "a role's member"); ok {
				people = append(people, s)
			}
		default:
			l.errAt(v, "role %s must list people (logins), not %s", name, kindName(v))
		}
		replace, skip := l.redefined("roles", name, keys[name])
		if skip {
			continue
		}
		pb.Roles[name] = people
		if !replace {
			pb.RoleOrder = append(pb.RoleOrder, name)
		}
	}
}

func (l *loader) people(pb *Playbook, n *yaml.Node) {
	if n == nil {
		return
	}
	order, vals, pkeys := l.mapping(n, "people", nil)
	for _, login := range order {
		if _, skip := l.redefined("people", login, pkeys[login]); skip {
			continue
		}
		_, f, _ := l.mapping(vals[login], "person "+login, personKeys)
		p := Person{Login: login}
		if x, ok := f["name"]; ok {
			p.Name, _ = l.str(x, "name")
		}
		if x, ok := f["email"]; ok {
			p.Email, _ = l.str(x, "email")
			if p.Email != "" && !strings.Contains(p.Email, "@") {
				l.errAt(resolve(x), "email %q is not an e-mail address", p.Email)
			}
		}
		if x, ok := f["chat"]; ok {
			p.Chat, _ = l.str(x, "chat")
		}
		pb.People[login] = p
	}
}

func (l *loader) inputs(pb *Playbook, n *yaml.Node) {
	if n == nil {
		return
	}
	order, vals, keys := l.mapping(n, "inputs", nil)
	for _, name := range order {
		if !nameRE.MatchString(name) {
			l.errAt(keys[name], "input name %q must be a plain identifier", name)
		}
		in := &Input{Name: name, Type: TypeString, Pos: l.pos(keys[name])}
		_, f, _ := l.mapping(vals[name], "input "+name, inputKeys)
		if x, ok := f["type"]; ok {
			if s, ok := l.str(x, "type"); ok {
				if !contains(inputTypes, s) {
					l.errAt(resolve(x), "input %s: unknown type %q%s; types: %s", name, s, didYouMean(s, inputTypes), strings.Join(inputTypes, ", "))
				}
				in.Type = Type(s)
				if s == "list" {
					in.Type = ListOf(TypeString)
				}
			}
		}
		if x, ok := f["description"]; ok {
			in.Description, _ = l.str(x, "description")
		}
		if x, ok := f["required"]; ok {
			in.Required = l.boolean(x, "required")
		}
		if x, ok := f["pattern"]; ok {
			if s, ok := l.str(x, "pattern"); ok {
				_, err := regexp.Compile(s)
				re, err2 := regexp.Compile("^(?:" + strings.TrimSuffix(strings.TrimPrefix(s, "^"), "$") + ")$")
				if err == nil {
					err = err2
				}
				if err != nil {
					l.errAt(resolve(x), "input %s: bad pattern %q: %v", name, s, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
				} else if in.Type != TypeString {
					l.errAt(resolve(x), "input %s: a pattern applies only to string inputs", name)
				} else {
					in.Pattern = re
				}
			}
		}
		if x, ok := f["enum"]; ok {
			x = resolve(x)
			if x.Kind != yaml.SequenceNode {
				l.errAt(x, "input %s: enum must be a list", name)
			}
			for _, c := range x.Content {
				if s, ok := l.str(c, "an enum value"); ok {
					in.Enum = append(in.Enum, s)
				}
			}
		}
		if x, ok := f["default"]; ok {
			x = resolve(x)
			v, err := inputFromNode(in, x)
			if err != nil {
				l.errAt(x, "input %s: default %v", name, err)
			} else {
				in.Default, in.HasDefault = v, true
			}
		}
		pb.Inputs = append(pb.Inputs, in)
	}
}

func inputFromNode(in *Input, n *yaml.Node) (any, error) {
	var raw any
	if err := n.Decode(&raw); err != nil {
		return nil, err
	}
	if s, ok := raw.(string); ok {
		return in.parse(s)
	}
	return in.check(raw)
}

// parse converts a --set string to the input's type and checks it.
func (in *Input) parse(s string) (any, error) {
	switch in.Type {
	case TypeInt:
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%q is not a whole number", s)
		}
		return in.check(n)
	case TypeBool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%q is not true or false", s)
		}
		return b, nil
	case ListOf(TypeString):
		var list []any
		if strings.HasPrefix(strings.TrimSpace(s), "[") {
			if err := yaml.Unmarshal([]byte(s), &list); err != nil {
				return nil, fmt.Errorf("%q is not a list: %v", s, err)
			}
		} else if s != "" {
			for _, p := range strings.Split(s, ",") {
				list = append(list, strings.TrimSpace(p))
			}
		}
		return in.check(list)
	}
	return in.check(s)
}

func (in *Input) check(v any) (any, error) {
	switch in.Type {
	case TypeString:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("must be a string, not %v", v)
		}
		if in.Pattern != nil && !in.Pattern.MatchString(s) {
			return nil, fmt.Errorf("%q does not match the pattern %s", s, in.Pattern.String()[4:len(in.Pattern.String())-2])
		}
		if len(in.Enum) > 0 && !contains(in.Enum, s) {
			return nil, fmt.Errorf("%q is not one of %s", s, strings.Join(in.Enum, ", "))
		}
		return s, nil
	case TypeInt:
		n, ok := v.(int)
		if !ok {
			return nil, fmt.Errorf("must be a whole number, not %v", v)
		}
		return n, nil
	case TypeBool:
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("must be true or false, not %v", v)
		}
		return b, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("must be a list, not %v", v)
	}
	out := make([]any, len(list))
	for i, e := range list {
		out[i] = fmt.Sprint(e)
	}
	return out, nil
}

func (l *loader) baseScope(pb *Playbook) *scope {
	inputs := types.Map{}
	for _, in := range pb.Inputs {
		inputs[in.Name] = exprType(in.Type)
	}
	roles := types.Map{}
	for r := range pb.Roles {
		roles[r] = types.Array(types.String)
	}
	env := types.Map{
		"inputs":   inputs,
		"vars":     types.Map{},
		"roles":    roles,
		"run":      types.Map{"id": types.String, "actor": types.String, "mode": types.String, "rehearsal": types.Bool, "started_at": types.String, "plan_hash": types.String},
		"playbook": types.Map{"product": types.String, "title": types.String, "file": types.String},
	}
	return &scope{env: env, visible: map[string]bool{}, allSteps: map[string]*StepDecl{}}
}

func (l *loader) vars(pb *Playbook, n *yaml.Node, sc *scope) {
	if n == nil {
		return
	}
	order, vals, keys := l.mapping(n, "vars", nil)
	varsEnv := sc.env["vars"].(types.Map)
	for _, name := range order {
		if !nameRE.MatchString(name) {
			l.errAt(keys[name], "var name %q must be a plain identifier", name)
		}
		v := l.value(vals[name])
		t := l.compileValue(v, sc)
		for _, dep := range templateDepsOf(v) {
			l.errAt(v.Node, "var %s reads step %q: vars are computed before any step runs; use the step's output where it is needed", name, dep)
		}
		pb.Vars = append(pb.Vars, &Var{Name: name, Value: v, Type: t, Pos: l.pos(keys[name])})
		varsEnv[name] = exprType(t)
	}
}

func templateDepsOf(v *Value) []string {
	var out []string
	walkValue(v, func(x *Value) {
		if x.Tmpl != nil {
			out = append(out, x.Tmpl.Deps()...)
		}
	})
	return out
}

func walkValue(v *Value, f func(*Value)) {
	if v == nil {
		return
	}
	f(v)
	for _, e := range v.List {
		walkValue(e, f)
	}
	for _, e := range v.Map {
		walkValue(e.Val, f)
	}
}

func (l *loader) connections(pb *Playbook, n *yaml.Node) {
	if n == nil {
		return
	}
	order, vals, keys := l.mapping(n, "connections", nil)
	for _, name := range order {
		if !nameRE.MatchString(name) {
			l.errAt(keys[name], "connection name %q must be a plain identifier", name)
		}
		c := &ConnectionDecl{Name: name, Settings: map[string]string{}, Pos: l.pos(keys[name])}
		corder, f, fkeys := l.mapping(vals[name], "connection "+name, nil)
		if f == nil {
			continue
		}
		typNode, ok := f["type"]
		if !ok {
			l.errAt(keys[name], "connection %s: missing key \"type\"", name)
			continue
		}
		c.Type, _ = l.str(typNode, "type")
		ct, known := LookupConnectionType(c.Type)
		if !known {
			var names []string
			for _, t := range ConnectionTypes() {
				names = append(names, t.Name)
			}
			l.errAt(resolve(typNode), "connection %s: unknown type %q%s; types: %s", name, c.Type, didYouMean(c.Type, names), strings.Join(names, ", "))
			continue
		}
		allowed := []string{"type", "url", "token"}
		for k := range ct.Settings {
			allowed = append(allowed, k)
		}
		sort.Strings(allowed[3:])
		c.TokenEnv = ct.DefaultTokenEnv
		c.URL = ct.DefaultURL
		for _, k := range corder {
			v := f[k]
			switch k {
			case "type":
			case "url":
				c.URL, _ = l.str(v, "url")
			case "token":
				if rv := resolve(v); rv.Kind == yaml.ScalarNode {
					// Kind-of-mistake worth its own message: never a literal secret.
					l.errAt(rv, "connection %s: token must name where the secret is ({env: NAME} or {file: PATH}); secrets are never written in playbooks", name)
					continue
				}
				_, tf, _ := l.mapping(v, "token of connection "+name, []string{"env", "file"})
				if e, ok := tf["env"]; ok {
					c.TokenEnv, _ = l.str(e, "token.env")
				}
				if fl, ok := tf["file"]; ok {
					c.TokenFile, _ = l.str(fl, "token.file")
					c.TokenEnv = ""
				}
			default:
				if !contains(allowed, k) {
					l.errAt(fkeys[k], "unknown key %q in connection %s (%s)%s; valid keys: %s", k, name, c.Type, didYouMean(k, allowed), strings.Join(allowed, ", "))
					continue
				}
				s, _ := l.str(v, k)
				c.Settings[k] = s
			}
		}
		replace, skip := l.redefined("connections", name, keys[name])
		if skip {
			continue
		}
		if replace {
			for i, x := range pb.Connections {
				if x.Name == name {
					pb.Connections[i] = c
				}
			}
			continue
		}
		pb.Connections = append(pb.Connections, c)
	}
}

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

// fileKind is what a YAML file of runbook's is: a playbook, a fragment it includes, or
// the site file it names.
type fileKind string

const (
	kindPlaybook fileKind = "playbook"
	kindFragment fileKind = "fragment"
	kindSite     fileKind = "site"
)

// docKind tells a playbook from a fragment (`fragment: v1`) or a site file (`site: v1`),
// by its top-level keys; a file with `runbook:` is a playbook, whatever else it holds.
func docKind(root *yaml.Node) (fileKind, *yaml.Node) {
	doc := root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode || hasKey(doc, "runbook") {
		return kindPlaybook, doc
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		k, v := doc.Content[i], resolve(doc.Content[i+1])
		switch {
		case k.Value == "fragment":
			return kindFragment, k
		case k.Value == "site" && v != nil && v.Kind == yaml.ScalarNode && !hasKey(doc, "steps"):
			return kindSite, k
		}
	}
	return kindPlaybook, doc
}

// Checked is a file `runbook validate` checked: a playbook, a fragment alone, or a site
// file alone. Notes say what could not be checked alone (a fragment's roles and
// connections when it does not declare them): they are not errors.
type Checked struct {
	Kind     string // playbook, fragment or site
	Playbook *Playbook
	Fragment *Fragment
	Notes    []*Diagnostic
}

// Fragment is a fragment file validated alone: its steps compiled against its declared
// params (typed, values unknown) and what it declares it needs from the including playbook.
type Fragment struct {
	File        string
	Description string
	Phase       string
	Params      []*Input
	Needs       *FragmentNeeds
	Steps       []*StepDecl
}

// FragmentNeeds is what a fragment reads of the playbook that includes it (`needs:`).
// Alone, the fragment is checked against it; included, the playbook is checked to
// provide it.
type FragmentNeeds struct {
	Inputs      []MapEntryType
	Vars        []MapEntryType
	Steps       []NeededStep
	Roles       []string // nil: not declared (roles are checked where it is included)
	Connections []MapEntryType
	Failure     bool // its steps read failure: it is included in on_failure or finally
	declared    map[string]bool
}

// MapEntryType is a name with a type, declared at a place.
type MapEntryType struct {
	Name string
	Type Type
	node *yaml.Node
}

// NeededStep is a step of the including playbook that a fragment reads.
type NeededStep struct {
	ID      string
	Type    string
	Foreach bool
	node    *yaml.Node
}

// ValidateFile checks a playbook, a fragment or a site file, whichever path is; every
// problem at once, as an *InvalidError.
func ValidateFile(path string) (*Checked, error) {
	src, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return Validate(path, src)
}

// Validate is ValidateFile on a file's contents.
func Validate(file string, src []byte) (*Checked, error) {
	var root yaml.Node
	if len(src) <= MaxPlaybookBytes && utf8.Valid(src) && bytes.IndexByte(src, 0) < 0 && yaml.Unmarshal(src, &root) == nil {
		if k, _ := docKind(&root); k != kindPlaybook {
			d := &diags{file: file}
			l := &loader{d: d, file: file}
			c := &Checked{Kind: string(k)}
			if k == kindFragment {
				c.Fragment = l.fragmentAlone(&root)
			} else {
				pb := &Playbook{Roles: map[string][]string{}, People: map[string]Person{}, byID: map[string]*StepDecl{}}
				l.siteFile(pb, file, src, &root, nil)
			}
			c.Notes = l.notes
			if err := d.err(); err != nil {
				return nil, err
			}
			return c, nil
		}
	}
	pb, err := Parse(file, src)
	if err != nil {
		return nil, err
	}
	return &Checked{Kind: string(kindPlaybook), Playbook: pb}, nil
}

// note records something that could not be checked, for `runbook validate` to show.
func (l *loader) note(n *yaml.Node, format string, args ...any) {
	l.notes = append(l.notes, &Diagnostic{Pos: Pos{File: l.file, Line: n.Line, Col: n.Column}, Msg: fmt.Sprintf(format, args...)})
}

// ---- the site file ----

var siteKeys = []string{"site", "description", "roles", "people", "connections"}

// siteState is what the site file defined, to tell a product's additions from its
// redefinitions.
type siteState struct {
	file      string
	defined   map[string]Pos        // "roles.NAME", "people.LOGIN", "connections.NAME"
	overrides map[string]*yaml.Node // what the playbook says it redefines, and where
	used      map[string]bool
}

// site reads the playbook's `site:` (a file, or {file, override}) and the connections,
// people and roles it defines, before the playbook's own.
func (l *loader) site(pb *Playbook, n *yaml.Node) {
	if n == nil {
		return
	}
	n = resolve(n)
	pathNode, overrides := n, (*yaml.Node)(nil)
	if n.Kind == yaml.MappingNode {
		_, f, _ := l.mapping(n, "site", []string{"file", "override"})
		pathNode, overrides = f["file"], f["override"]
		if pathNode == nil {
			l.errAt(n, "site: missing key \"file\" (the site file, relative to this playbook)")
			return
		}
	}
	path, ok := l.str(pathNode, "site")
	if !ok {
		return
	}
	pathNode = resolve(pathNode)
	full := path
	if !filepath.IsAbs(full) {
		full = filepath.Join(filepath.Dir(l.file), path)
	}
	src, err := readFragment(full)
	if err != nil {
		l.errAt(pathNode, "site %s: %v", path, err)
		return
	}
	if len(src) > MaxPlaybookBytes {
		l.errAt(pathNode, "site %s: the file is larger than %d MiB", path, MaxPlaybookBytes>>20)
		return
	}
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil {
		sub := &diags{file: full}
		yamlError(sub, src, err)
		for _, d := range sub.list {
			l.d.addIn(full, d.Pos.Line, d.Pos.Col, "%s", d.Msg)
		}
		return
	}
	l.siteFile(pb, full, src, &root, pathNode)
	if overrides == nil || l.sites == nil {
		return
	}
	overrides = resolve(overrides)
	if overrides.Kind != yaml.SequenceNode {
		l.errAt(overrides, "site.override must be a list of the site's entries this playbook redefines, such as roles.platform_maintainer")
		return
	}
	for _, o := range overrides.Content {
		s, ok := l.str(o, "an override")
		if !ok {
			continue
		}
		if _, ok := l.sites.defined[s]; !ok {
			var names []string
			for k := range l.sites.defined {
				names = append(names, k)
			}
			sort.Strings(names)
			l.errAt(resolve(o), "site.override: %q is not an entry of the site file%s; write roles.NAME, people.LOGIN or connections.NAME", s, didYouMean(s, names))
			continue
		}
		l.sites.overrides[s] = resolve(o)
	}
}

// siteFile loads a site file's roles, people and connections into pb. from is the
// playbook's `site:` value (nil: the site file is validated alone).
func (l *loader) siteFile(pb *Playbook, full string, src []byte, root *yaml.Node, from *yaml.Node) {
	doc := root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		doc = doc.Content[0]
	}
	outer := l.file
	l.file = full
	defer func() { l.file = outer }()
	_, top, _ := l.mapping(doc, "the site file", siteKeys)
	if top == nil {
		return
	}
	if v, ok := top["site"]; !ok {
		l.errAt(doc, "missing key \"site: v1\" (a site file's format version)")
	} else if s, _ := l.str(v, "site"); s != "v1" {
		l.errAt(resolve(v), "site: version %q is not supported; this runbook reads v1", s)
	}
	l.sites = &siteState{file: full, defined: map[string]Pos{}, overrides: map[string]*yaml.Node{}, used: map[string]bool{}}
	l.inSite = true
	l.roles(pb, top["roles"])
	l.people(pb, top["people"])
	l.connections(pb, top["connections"])
	l.inSite = false
}

// redefined is called for each entry the playbook itself defines: an entry the site file
// already defines is an error unless the playbook's site.override names it. It returns
// whether the entry replaces the site's (false: an error was reported, skip it).
func (l *loader) redefined(kind, name string, at *yaml.Node) (replace bool, skip bool) {
	key := kind + "." + name
	if l.inSite {
		l.sites.defined[key] = l.pos(at)
		return false, false
	}
	if l.sites == nil {
		return false, false
	}
	prev, ok := l.sites.defined[key]
	if !ok {
		return false, false
	}
	if _, ok := l.sites.overrides[key]; ok {
		l.sites.used[key] = true
		return true, false
	}
	l.errAt(at, "%s %s is already defined by the site file (%s): a playbook adds to the site's %s but does not redefine them; remove it here, or, if this product really differs, say so with site: {file: ..., override: [%s]}", strings.TrimSuffix(kind, "s"), name, prev, kind, key)
	return false, true
}

// unusedOverrides reports site.override entries the playbook does not redefine.
func (l *loader) unusedOverrides() {
	if l.sites == nil {
		return
	}
	keys := make([]string, 0, len(l.sites.overrides))
	for k := range l.sites.overrides {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !l.sites.used[k] {
			l.errAt(l.sites.overrides[k], "site.override: this playbook does not redefine %s; remove it from override", k)
		}
	}
}

// ---- fragments: what they need, alone or included ----

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
