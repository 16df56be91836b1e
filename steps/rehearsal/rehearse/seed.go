package rehearse

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/cessda/runbook/engine"
)

// World is the sandbox that seeders act on.
type World interface {
	// Playbook is the playbook being rehearsed.
	Playbook() *engine.Playbook
	// Sim is the started service behind connections of a type, nil when there is none.
	Sim(connType string) Sim
	// Notef records what the world did on its own, or could not do (seeding, people).
	Notef(format string, args ...any)
}

// SeedContext is what a Seed sees of the world and of its planned step.
type SeedContext struct {
	World World
	// Step is the planned step (its ID, type, rendered parameters).
	Step    *engine.PlannedStep
	unknown map[string]bool
}

// Unknown reports whether a parameter's value is known only after the run (it depends on
// earlier steps' outputs): its field is left zero.
func (sc *SeedContext) Unknown(param string) bool { return sc.unknown[param] }

// Sim is the started service behind connections of a type, nil when there is none.
func (sc *SeedContext) Sim(connType string) Sim { return sc.World.Sim(connType) }

// Notef records what the seeding did, or could not do.
func (sc *SeedContext) Notef(format string, args ...any) { sc.World.Notef(format, args...) }

// Connection is the name of the connection the step uses: name when the step names one,
// else the playbook's only connection of the step type's connection type, else that
// type (as the rehearsal's own name for it).
func (sc *SeedContext) Connection(name string) string {
	if name != "" {
		return name
	}
	t, _ := engine.LookupStepType(sc.Step.Type)
	var of []string
	for _, c := range sc.World.Playbook().Connections {
		if c.Type == t.Connection {
			of = append(of, c.Name)
		}
	}
	if len(of) == 1 {
		return of[0]
	}
	return t.Connection
}

// SeedPlan seeds the world from a plan: every planned step whose type has a seeder, once
// per foreach item, seeders of lower Order first. A step whose parameters do not decode
// into its seeder's struct is noted and left out; an error of a Seed stops the seeding.
func SeedPlan(plan *engine.PlanDoc, w World) error {
	orders := map[int]bool{}
	for _, ps := range plan.Steps {
		if sd, ok := LookupSeeder(ps.Type); ok {
			orders[sd.Order] = true
		}
	}
	levels := make([]int, 0, len(orders))
	for o := range orders {
		levels = append(levels, o)
	}
	sort.Ints(levels)
	for _, order := range levels {
		for _, ps := range plan.Steps {
			if sd, ok := LookupSeeder(ps.Type); ok && sd.Order == order {
				if err := seedStep(sd, ps, w); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func seedStep(sd Seeder, ps *engine.PlannedStep, w World) error {
	items := ps.ItemParams
	if len(items) == 0 {
		items = []map[string]any{ps.Params}
	}
	for _, params := range items {
		seed := sd.New()
		unknown, err := Decode(params, seed)
		if err != nil {
			w.Notef("cannot seed %s (%s): %v", ps.ID, ps.Type, err)
			continue
		}
		if err := seed.Seed(&SeedContext{World: w, Step: ps, unknown: unknown}); err != nil {
			return fmt.Errorf("seeding %s (%s): %w", ps.ID, ps.Type, err)
		}
	}
	return nil
}

// Decode decodes a planned step's rendered parameters into a struct by its json tags.
// Values known only after the run are left out: a parameter that is one is left zero and
// reported in unknown; one inside a list is dropped from it; one inside a map keeps its
// key, with a zero value.
func Decode(params map[string]any, into any) (unknown map[string]bool, err error) {
	known := make(map[string]any, len(params))
	unknown = map[string]bool{}
	for k, v := range params {
		if isUnknown(v) {
			unknown[k] = true
			continue
		}
		known[k] = withoutUnknown(v)
	}
	b, err := json.Marshal(known)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, into); err != nil {
		return nil, err
	}
	return unknown, nil
}

func isUnknown(v any) bool {
	s, ok := v.(string)
	return ok && s == engine.KnownAfterRun
}

func withoutUnknown(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, 0, len(x))
		for _, e := range x {
			if !isUnknown(e) {
				out = append(out, withoutUnknown(e))
			}
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if isUnknown(e) {
				out[k] = nil
			} else {
				out[k] = withoutUnknown(e)
			}
		}
		return out
	}
	return v
}
