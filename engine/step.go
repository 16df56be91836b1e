package engine

import (
	"context"
)

// Step is one step type's parameters and behaviour. Each step type is a Go struct whose
// exported, json-tagged fields are its parameters; the engine decodes a step's rendered
// `with:` into a fresh value from StepType.New before every Plan or Run.
//
// Field tags the engine reads (they also generate the JSON Schema and `runbook steps`):
//
//	json:"name"        the parameter's name in `with:` (snake_case)
//	desc:"..."         one line of documentation
//	required:"true"    validation fails when the parameter is missing
//	default:"..."      the value used when the parameter is missing (YAML syntax: "3", "5m", "[a, b]")
//	enum:"a,b,c"       the allowed values of a string parameter
//	secret:"true"      the rendered value is redacted in plans, logs and reports
type Step interface {
	// Plan says what Run would do, with no side effects. Read-only look-ups are allowed.
	// Parameters whose value is only known after earlier steps run are zero; ask
	// sc.Unknown("name") and show them with sc.Show.
	Plan(ctx context.Context, sc *StepContext) (Plan, error)
	// Run does the work idempotently: run twice, it finds what the first run made (an
	// issue with that title, a tag on that commit) and reuses it instead of making a second.
	// Errors wrapped with Transient are retried by the engine under the step's retry policy.
	Run(ctx context.Context, sc *StepContext) (Outputs, error)
}

// Outputs are a step's results, by the names its StepType declares.
type Outputs map[string]any

// Plan is what a step would do.
type Plan struct {
	// Action is one line in the imperative: "create issue \"Release version 1.2.3 of CDC\" in cessda/cessda.cdc.versions".
	Action string `json:"action"`
	// Details are further lines (what is already there, what would change).
	Details []string `json:"details,omitempty"`
	// NoChange is true when the step would change nothing (e.g. the tag already exists on that commit).
	NoChange bool `json:"no_change,omitempty"`
}

// Validator is implemented by step types with checks across parameters. The engine calls
// it after decoding: at validation time when every parameter is a literal, else at run
// time after rendering.
type Validator interface {
	Validate() error
}

// Defaulter is implemented by step types whose defaults are not constants (they depend on
// other parameters). It runs after decoding and after the `default:` tags are applied.
type Defaulter interface {
	Default()
}

// StepType describes a registered step type.
type StepType struct {
	// Name is the namespaced type name used in playbooks: "github.issue", "kubernetes.verify".
	Name string
	// Summary is one line for `runbook steps`.
	Summary string
	// Doc is longer documentation (Markdown), optional.
	Doc string
	// New returns a pointer to a zero params struct that implements Step.
	New func() Step
	// Outputs declares the outputs Run returns, with their types, so expressions that use
	// them are type-checked before anything runs.
	Outputs []Output
	// Connection is the connection type the step uses ("github", "kubernetes", ...), or "".
	// A step with a connection type gets a `connection` parameter naming which one.
	Connection string
	// Gate is true for steps that wait for a person (approval, manual confirmation).
	Gate bool
	// ReadOnly is true for step types that change nothing outside the run: they read
	// (a GET, a rollout's status), wait for time or compute. Their journal events need no
	// fsync of their own: the next fsync (before the next write, or when the run stops,
	// waits or ends) makes them durable, and a crash before it only means reading again.
	// A type that does not declare it is a writer: its intent is on disk before it runs.
	ReadOnly bool
	// ReadOnlyWith, when set, decides per step from its rendered parameters instead of
	// ReadOnly (http.check: a GET reads, a POST may write). Missing parameters are absent
	// from the map (their defaults are not applied).
	ReadOnlyWith func(params map[string]any) bool
}

// readOnly says whether a step of this type with these rendered parameters changes
// nothing outside the run.
func (t StepType) readOnly(params map[string]any) bool {
	if t.ReadOnlyWith != nil {
		return t.ReadOnlyWith(params)
	}
	return t.ReadOnly
}

// Output declares one output of a step type.
type Output struct {
	Name string
	Type Type
	Desc string
}

// Type is the type of an input, an output or a parameter, in the playbook's vocabulary:
// "string", "int", "bool", "float", "duration", "list<T>", "map<T>", "map", "any".
type Type string

// The basic types.
const (
	TypeString   Type = "string"
	TypeInt      Type = "int"
	TypeBool     Type = "bool"
	TypeFloat    Type = "float"
	TypeDuration Type = "duration" // a Go duration string such as "90s" or "168h"
	TypeAny      Type = "any"
	TypeMap      Type = "map" // map<any>
)

// ListOf is the type of a list whose elements are of type t.
func ListOf(t Type) Type { return "list<" + t + ">" }

// MapOf is the type of a string-keyed map whose values are of type t.
func MapOf(t Type) Type { return "map<" + t + ">" }
