package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// PlanDoc is a plan: what a run of the playbook with these inputs would do. It is a
// value (as Terraform's plan is) that can be printed, saved as JSON, diffed and reviewed.
type PlanDoc struct {
	Playbook string         `json:"playbook"`
	Product  string         `json:"product"`
	Title    string         `json:"title,omitempty"`
	Inputs   map[string]any `json:"inputs"`
	Hash     string         `json:"plan_hash"`
	Steps    []*PlannedStep `json:"steps"`
	// Vars are the playbook's vars as rendered for these inputs. They are not part of the
	// plan's JSON (the steps show what they do with them); a rehearsal reads them to build
	// the world the playbook describes (its components, its jobs' parameters).
	Vars map[string]any `json:"-"`
}

// PlannedStep is one step of a plan.
type PlannedStep struct {
	ID        string  `json:"id"`
	Type      string  `json:"type"`
	Name      string  `json:"name,omitempty"`
	Role      string  `json:"role,omitempty"`
	Section   Section `json:"section"`
	When      string  `json:"when,omitempty"`
	Condition string  `json:"condition"` // "always", "true", "false", "known after run"
	// OnError is what the step's failure means for the release (stop, warn, rollback).
	OnError ErrorPolicy    `json:"on_error"`
	Foreach any            `json:"foreach,omitempty"`
	Params  map[string]any `json:"params,omitempty"`
	// ItemParams are the rendered parameters of every foreach item (at most 100).
	ItemParams []map[string]any `json:"item_params,omitempty"`
	Unknown    []string         `json:"unknown,omitempty"`
	Action     string           `json:"action,omitempty"`
	Details    []string         `json:"details,omitempty"`
	NoChange   bool             `json:"no_change,omitempty"`
	Error      string           `json:"error,omitempty"`
}

// PlanOptions configure planning.
type PlanOptions struct {
	Mode     string
	Actor    string
	Clock    Clock
	Connect  func(*ConnectionDecl) (*Connection, error)
	Redactor *Redactor
	// Offline skips the step types' own Plan (which may make read-only calls to services):
	// the plan then shows rendered parameters only.
	Offline bool
}

// BuildPlan plans every step: it evaluates conditions, renders parameters and asks each
// step type what it would do. Nothing is changed anywhere.
func BuildPlan(ctx context.Context, pb *Playbook, inputs map[string]any, po PlanOptions) (*PlanDoc, error) {
	opts := Options{Inputs: inputs, Mode: po.Mode, Actor: po.Actor, Clock: po.Clock, Connect: po.Connect, Redactor: po.Redactor, RunID: "plan"}
	if opts.Mode == "" {
		opts.Mode = "plan"
	}
	opts.defaults(pb)
	r := newRun(pb, opts)
	known := func(string) bool { return false }
	doc := &PlanDoc{Playbook: pb.File, Product: pb.Product, Title: pb.Title, Inputs: r.red.Value(inputs).(map[string]any), Hash: r.planHash}
	if err := r.renderVars(); err != nil {
		return nil, err
	}
	doc.Vars, _ = r.base["vars"].(map[string]any)
	for _, st := range pb.AllSteps() {
		ps := &PlannedStep{ID: st.ID, Type: st.Type, Name: st.Name, Role: st.Role, Section: st.Section, Condition: "always", OnError: st.OnError}
		doc.Steps = append(doc.Steps, ps)
		env, err := r.stepEnv(st, map[string]any{"step": KnownAfterRun, "error": KnownAfterRun, "status": KnownAfterRun}, known)
		if err != nil {
			ps.Error = err.Error()
			continue
		}
		if st.When != nil {
			ps.When = st.When.Src
			ok, err := env.evalCond(st.When)
			switch {
			case isUnknown(err):
				ps.Condition = "known after run"
			case err != nil:
				ps.Condition, ps.Error = "error", err.Error()
				continue
			case ok:
				ps.Condition = "true"
			default:
				ps.Condition = "false"
				ps.Action = "skip: the condition is false"
				continue
			}
		}
		itemEnv := env
		if st.Foreach != nil {
			var unk []string
			items, err := env.render(st.Foreach, "foreach", &unk)
			if err != nil {
				ps.Error = err.Error()
				continue
			}
			ps.Foreach = items
			if list, ok := items.([]any); ok && len(unk) == 0 {
				if len(list) == 0 {
					ps.Action = "nothing to do: foreach is empty"
					continue
				}
				itemEnv = env.with("item", list[0])
				if len(list) > 1 {
					labels := make([]string, len(list))
					for i, it := range list {
						labels[i] = itemLabel(it)
					}
					ps.Details = append(ps.Details, fmt.Sprintf("for each of %d items: %s (parameters of every item in the JSON plan)", len(list), strings.Join(labels, ", ")))
				}
			} else {
				itemEnv = env.with("item", KnownAfterRun)
			}
		}
		if list, ok := ps.Foreach.([]any); ok && len(list) > 1 {
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
		var unknown []string
		rendered, err := itemEnv.render(st.With, "", &unknown)
		if err != nil {
			ps.Error = err.Error()
			continue
		}
		with, _ := rendered.(map[string]any)
		if with == nil {
			with = map[string]any{}
		}
		ps.Params = r.showParams(st, with)
		ps.Unknown = unknown
		if po.Offline {
			continue
		}
		for _, u := range unknown {
			delete(with, strings.SplitN(strings.SplitN(u, ".", 2)[0], "[", 2)[0])
		}
		coerceParams(st.params, with)
		step, err := decodeParams(st.stepType, with)
		if err != nil {
			ps.Error = err.Error()
			continue
		}
		sc := r.stepCtx(st, 0, nil, 0)
		sc.Journal, sc.LogFunc, sc.LinkFunc = nil, nil, nil
		sc.SetUnknown(unknown...)
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		p, err := planSafely(pctx, step, sc)
		cancel()
		if err != nil {
			ps.Error = r.red.String(err.Error())
			continue
		}
		ps.Action, ps.NoChange = r.red.String(p.Action), p.NoChange
		for _, d := range p.Details {
			ps.Details = append(ps.Details, r.red.String(d))
		}
	}
	return doc, nil
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

// WriteText writes the plan for a terminal.
func (d *PlanDoc) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "Plan for %s (%s), plan hash %s\n", d.Playbook, d.Product, d.Hash)
	if len(d.Inputs) > 0 {
		fmt.Fprintf(w, "Inputs: %s\n", formatInputs(d.Inputs))
	}
	section := Section("")
	for i, s := range d.Steps {
		if s.Section != section {
			section = s.Section
			switch section {
			case SectionOnFailure:
				fmt.Fprintf(w, "\nIf a step fails (on_failure):\n")
			case SectionFinally:
				fmt.Fprintf(w, "\nAlways, at the end (finally):\n")
			default:
				fmt.Fprintln(w)
			}
		}
		mark := "+"
		switch {
		case s.Error != "":
			mark = "!"
		case s.Condition == "false":
			mark = "-"
		case s.NoChange:
			mark = "="
		case s.Condition == "known after run":
			mark = "?"
		}
		fmt.Fprintf(w, "%s %2d. %s (%s)", mark, i+1, s.ID, s.Type)
		if s.Role != "" {
			fmt.Fprintf(w, " [%s]", s.Role)
		}
		if p := s.OnError.describe(); p != "" {
			fmt.Fprintf(w, " {%s}", p)
		}
		fmt.Fprintln(w)
		if s.When != "" {
			fmt.Fprintf(w, "       when %s: %s\n", s.When, s.Condition)
		}
		if s.Action != "" {
			fmt.Fprintf(w, "       %s\n", s.Action)
		}
		for _, det := range s.Details {
			fmt.Fprintf(w, "         %s\n", det)
		}
		if s.Error != "" {
			fmt.Fprintf(w, "       error: %s\n", s.Error)
		}
	}
	c := d.counts()
	fmt.Fprintf(w, "\n%d steps: %d will run, %d skipped, %d depend on earlier results, %d unchanged, %d errors.\n",
		len(d.Steps), c.run, c.skip, c.unknown, c.same, c.errs)
	return nil
}

type planCounts struct{ run, skip, unknown, same, errs int }

func (d *PlanDoc) counts() planCounts {
	var c planCounts
	for _, s := range d.Steps {
		switch {
		case s.Error != "":
			c.errs++
		case s.Condition == "false":
			c.skip++
		case s.Condition == "known after run":
			c.unknown++
		case s.NoChange:
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

// WriteMarkdown writes the plan for a pull-request comment: a summary line, a table of
// steps, and details collapsed.
func (d *PlanDoc) WriteMarkdown(w io.Writer) error {
	c := d.counts()
	title := d.Title
	if title == "" {
		title = d.Product
	}
	fmt.Fprintf(w, "### runbook plan: %s\n\n", mdEscape(title))
	fmt.Fprintf(w, "`%s` with %s: **%d steps**, %d will run, %d skipped, %d depend on earlier results, %d unchanged, %d errors. Plan hash `%s`.\n\n",
		d.Playbook, mdCode(formatInputs(d.Inputs)), len(d.Steps), c.run, c.skip, c.unknown, c.same, c.errs, d.Hash)
	fmt.Fprintf(w, "| # | step | type | role | condition | on failure | what it will do |\n|---|---|---|---|---|---|---|\n")
	for i, s := range d.Steps {
		cond := s.Condition
		if s.When != "" {
			cond = fmt.Sprintf("`%s` → %s", strings.ReplaceAll(s.When, "|", "\\|"), s.Condition)
		}
		what := s.Action
		if s.Error != "" {
			what = "⚠️ " + s.Error
		}
		sec := ""
		if s.Section != SectionSteps {
			sec = " _(" + string(s.Section) + ")_"
		}
		fmt.Fprintf(w, "| %d | `%s`%s | `%s` | %s | %s | %s | %s |\n", i+1, s.ID, sec, s.Type, s.Role, cond, s.OnError, mdEscape(what))
	}
	fmt.Fprintf(w, "\n<details><summary>Parameters of every step</summary>\n\n")
	for _, s := range d.Steps {
		if len(s.Params) == 0 && len(s.Details) == 0 {
			continue
		}
		fmt.Fprintf(w, "#### `%s`\n\n", s.ID)
		for _, det := range s.Details {
			fmt.Fprintf(w, "- %s\n", mdEscape(det))
		}
		if len(s.Params) > 0 {
			b, _ := json.MarshalIndent(s.Params, "", "  ")
			fmt.Fprintf(w, "\n```json\n%s\n```\n\n", b)
		}
	}
	fmt.Fprintf(w, "</details>\n")
	return nil
}

func mdEscape(s string) string {
	s = strings.ReplaceAll(s, "|", "\\|")
	s = strings.ReplaceAll(s, "\n", " ")
	return s
}

func mdCode(s string) string {
	if s == "" {
		return "no inputs"
	}
	return "`" + strings.ReplaceAll(s, "`", "'") + "`"
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
