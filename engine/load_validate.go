package engine

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

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
