package engine

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
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
