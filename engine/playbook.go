package engine

import (
	"regexp"

	"gopkg.in/yaml.v3"
)

// Playbook is a validated playbook: everything in it has been checked, every expression
// compiled and type-checked, and it is ready to plan or run.
type Playbook struct {
	File        string
	Source      []byte
	Version     string
	Product     string
	Title       string
	Description string
	Roles       map[string][]string
	RoleOrder   []string
	People      map[string]Person
	Inputs      []*Input
	Vars        []*Var
	Connections []*ConnectionDecl
	Steps       []*StepDecl
	OnFailure   []*StepDecl
	Finally     []*StepDecl

	byID map[string]*StepDecl
}

// Input is a typed input given with --set.
type Input struct {
	Name        string
	Type        Type
	Description string
	Default     any
	HasDefault  bool
	Required    bool
	Pattern     *regexp.Regexp
	Enum        []string
	Pos         Pos
}

// Var is a playbook variable: a literal or a template over inputs and earlier vars.
type Var struct {
	Name  string
	Value *Value
	Type  Type
	Pos   Pos
}

// ConnectionDecl is a connection as the playbook declares it.
type ConnectionDecl struct {
	Name      string
	Type      string
	URL       string
	Settings  map[string]string
	TokenEnv  string
	TokenFile string
	Pos       Pos
}

// Section is where a step is declared.
type Section string

// The sections of a playbook.
const (
	SectionSteps     Section = "steps"
	SectionOnFailure Section = "on_failure"
	SectionFinally   Section = "finally"
)

// StepDecl is one step as the playbook declares it, validated and compiled.
type StepDecl struct {
	ID          string
	Type        string
	Name        string
	Description string
	Role        string
	When        *Expr
	With        *Value // a map
	Foreach     *Value // a list, or a template giving one
	Parallel    int
	Retry       RetryPolicy
	Timeout     Duration
	// OnError is what a failure (or a refusal) of this step means for the release.
	OnError ErrorPolicy
	// Rollback marks a step that reverts the release: when the run failed and this step
	// (in on_failure) succeeds, the run ends rolled_back.
	Rollback bool
	// LeftBehind, a string template, says what this step leaves in the world when the
	// release stops without finishing (and why, or what to do about it); rendered at the
	// run's end for steps that ran, an empty result meaning nothing (it was undone).
	LeftBehind *Value
	// Phase is the section of the procedure the step belongs to ("Preparing",
	// "Performing", ...), from its fragment's phase or its own; reports group steps by it.
	Phase string
	// Checklist is the release-issue checklist item this step stands for, if any.
	Checklist string
	// Fragment is the inclusion this step came from, if any: its params are params.NAME.
	Fragment *fragmentUse
	Section  Section
	Index    int // position in its section
	Pos      Pos

	stepType StepType
	params   []Param
	node     *yaml.Node
}

// StepType returns the registered type of the step.
func (s *StepDecl) StepType() StepType { return s.stepType }

// Title is the step's name, or its id.
func (s *StepDecl) Title() string {
	if s.Name != "" {
		return s.Name
	}
	return s.ID
}

// RetryPolicy says how a step is retried after transient errors.
type RetryPolicy struct {
	Attempts int      `json:"attempts"`
	Backoff  Duration `json:"backoff"`
	MaxDelay Duration `json:"max_delay"`
}

// Step returns the step with that id, in any section.
func (p *Playbook) Step(id string) *StepDecl { return p.byID[id] }

// AllSteps returns the steps of every section in order.
func (p *Playbook) AllSteps() []*StepDecl {
	out := make([]*StepDecl, 0, len(p.Steps)+len(p.OnFailure)+len(p.Finally))
	out = append(out, p.Steps...)
	out = append(out, p.OnFailure...)
	return append(out, p.Finally...)
}

// Value is a value from the playbook: a literal, a string template with ${{ }}
// expressions, a list or a map. It keeps its place in the file.
type Value struct {
	Node *yaml.Node
	Lit  any       // literal scalar (string, int, float64, bool, nil)
	Tmpl *Template // string with expressions
	List []*Value
	Map  []MapEntry
	kind valueKind
}

type valueKind int

const (
	kindLiteral valueKind = iota
	kindTemplate
	kindList
	kindMap
)

// MapEntry is one key of a map Value.
type MapEntry struct {
	Key     string
	KeyNode *yaml.Node
	Val     *Value
}

// Get returns the entry with that key, or nil.
func (v *Value) Get(key string) *Value {
	if v == nil {
		return nil
	}
	for _, e := range v.Map {
		if e.Key == key {
			return e.Val
		}
	}
	return nil
}

// pos returns where the value is written, in file.
func (v *Value) pos(file string) Pos {
	if v == nil || v.Node == nil {
		return Pos{File: file}
	}
	return Pos{File: file, Line: v.Node.Line, Col: v.Node.Column}
}

// ErrorPolicy is what a step's failure means for the release, as the playbook states it
// (`on_error:`). It is part of the procedure: an announcement that fails is a warning to
// act on, a production check that fails is a reason to roll production back.
type ErrorPolicy string

// The failure policies.
const (
	// OnErrorStop (the default) stops the run, resumable: nothing is undone; on_failure runs
	// with failure.rollback false (it records why the release stopped); a person decides
	// with `runbook resume RUN --retry STEP`, `--skip STEP --reason R` or `--rollback --reason R`.
	OnErrorStop ErrorPolicy = "stop"
	// OnErrorWarn records the failure as a warning (report, release issue) and goes on.
	OnErrorWarn ErrorPolicy = "warn"
	// OnErrorRollback ends the main steps and runs on_failure with failure.rollback true:
	// production is rolled back.
	OnErrorRollback ErrorPolicy = "rollback"
)

// errorPolicies are the values of on_error, in the order the docs list them.
var errorPolicies = []string{string(OnErrorStop), string(OnErrorWarn), string(OnErrorRollback)}
