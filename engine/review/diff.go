package review

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/engine/markdown"
)

// ChangeKind is what happened to a step between two plans.
type ChangeKind string

// Change kinds.
const (
	Added   ChangeKind = "added"
	Removed ChangeKind = "removed"
	Changed ChangeKind = "changed"
	Moved   ChangeKind = "moved" // only its position changed
)

// FieldChange is one field of a step (or one input) before and after. Old or New is
// absent (nil, with HasOld/HasNew false) when the field did not exist on that side.
type FieldChange struct {
	Field  string `json:"field"`
	Old    any    `json:"old,omitempty"`
	New    any    `json:"new,omitempty"`
	HasOld bool   `json:"has_old"`
	HasNew bool   `json:"has_new"`
}

// StepChange is one step that differs between the plans.
type StepChange struct {
	Kind    ChangeKind `json:"kind"`
	ID      string     `json:"id"`
	Type    string     `json:"type"`
	Name    string     `json:"name,omitempty"`
	Role    string     `json:"role,omitempty"`
	Section string     `json:"section"`
	// OldPos and NewPos are 1-based positions in the whole plan (0: not on that side).
	OldPos int           `json:"old_position,omitempty"`
	NewPos int           `json:"new_position,omitempty"`
	Moved  bool          `json:"moved,omitempty"` // its order among the common steps changed
	Fields []FieldChange `json:"fields,omitempty"`
}

// PlanDiff is what a change to a playbook does to the release: the difference between
// the plan at a base (a git ref) and the plan now.
type PlanDiff struct {
	Base     string         `json:"base"` // where the base plan came from, e.g. "origin/main:playbooks/cdc.yaml"
	Head     string         `json:"head"`
	Product  string         `json:"product"`
	Title    string         `json:"title,omitempty"`
	BaseHash string         `json:"base_plan_hash,omitempty"`
	HeadHash string         `json:"head_plan_hash"`
	Note     string         `json:"note,omitempty"` // e.g. "the playbook does not exist at origin/main"
	Inputs   []FieldChange  `json:"inputs,omitempty"`
	Plan     []FieldChange  `json:"plan,omitempty"` // product and title
	Steps    []StepChange   `json:"steps"`
	Counts   map[string]int `json:"counts"`
	// HeadPlan is the full plan after the change (shown collapsed in Markdown).
	HeadPlan *engine.PlanDoc `json:"-"`
	// BasePlan is the plan before the change (its removed steps are drawn in the diagram).
	BasePlan *engine.PlanDoc `json:"-"`
}

// Empty reports whether the change does nothing to the release.
func (d *PlanDiff) Empty() bool {
	return len(d.Steps) == 0 && len(d.Inputs) == 0 && len(d.Plan) == 0
}

// Diff compares two plans of a playbook. base may be nil (the playbook is new): every
// step is then added. Steps are matched by id, which is unique in a playbook.
func Diff(base, head *engine.PlanDoc) *PlanDiff {
	if base == nil {
		base = &engine.PlanDoc{}
	}
	d := &PlanDiff{Base: base.Playbook, Head: head.Playbook, Product: head.Product, Title: head.Title, BaseHash: base.Hash,
		HeadHash: head.Hash, HeadPlan: head, BasePlan: base, Steps: []StepChange{}, Counts: map[string]int{}}
	if base.Product != "" && base.Product != head.Product {
		d.Plan = append(d.Plan, FieldChange{Field: "product", Old: base.Product, New: head.Product, HasOld: true, HasNew: true})
	}
	if base.Playbook != "" && base.Title != head.Title {
		d.Plan = append(d.Plan, field("title", base.Title, head.Title))
	}
	d.Inputs = diffMaps("", base.Inputs, head.Inputs, false)

	oldPos := map[string]int{}
	oldSteps := map[string]*engine.PlannedStep{}
	for i, s := range base.Steps {
		oldPos[s.ID], oldSteps[s.ID] = i+1, s
	}
	newIDs := map[string]bool{}
	for _, s := range head.Steps {
		newIDs[s.ID] = true
	}
	// The common steps in both orders; those outside a longest common subsequence are
	// the ones that moved.
	var a, b []string
	for _, s := range base.Steps {
		if newIDs[s.ID] {
			a = append(a, s.ID)
		}
	}
	for _, s := range head.Steps {
		if _, ok := oldSteps[s.ID]; ok {
			b = append(b, s.ID)
		}
	}
	stay := lcs(a, b)
	// An offline plan's action is made of the step's type and parameters, which are
	// compared already: comparing it too would say every change twice.
	actions := !head.Offline || (base.Playbook != "" && !base.Offline)

	for i, s := range head.Steps {
		old, ok := oldSteps[s.ID]
		if !ok {
			c := StepChange{Kind: Added, ID: s.ID, Type: s.Type, Name: s.Name, Role: s.Role, Section: string(s.Section), NewPos: i + 1}
			c.Fields = stepFields(&engine.PlannedStep{}, s, true, actions)
			d.Steps = append(d.Steps, c)
			continue
		}
		c := StepChange{Kind: Changed, ID: s.ID, Type: s.Type, Name: s.Name, Role: s.Role, Section: string(s.Section), OldPos: oldPos[s.ID], NewPos: i + 1}
		c.Fields = stepFields(old, s, false, actions)
		c.Moved = !stay[s.ID]
		switch {
		case len(c.Fields) > 0:
			d.Steps = append(d.Steps, c)
		case c.Moved:
			c.Kind = Moved
			d.Steps = append(d.Steps, c)
		}
	}
	for i, s := range base.Steps {
		if !newIDs[s.ID] {
			d.Steps = append(d.Steps, StepChange{Kind: Removed, ID: s.ID, Type: s.Type, Name: s.Name, Role: s.Role, Section: string(s.Section), OldPos: i + 1})
		}
	}
	// Removed steps go where they were: sort by the position in the plan they appear in,
	// removed ones by their old position among the new ones.
	sort.SliceStable(d.Steps, func(i, j int) bool { return sortPos(d.Steps[i]) < sortPos(d.Steps[j]) })
	for _, c := range d.Steps {
		d.Counts[string(c.Kind)]++
		if c.Kind == Changed && c.Moved {
			d.Counts[string(Moved)]++
		}
	}
	return d
}

// sortPos orders changes by the new plan, slotting removed steps just after where they
// used to be (old position, as a half step).
func sortPos(c StepChange) float64 {
	if c.NewPos > 0 {
		return float64(c.NewPos)
	}
	return float64(c.OldPos) + 0.5
}

// lcs returns the members of a longest common subsequence of a and b (each a list of
// distinct ids).
func lcs(a, b []string) map[string]bool {
	n, m := len(a), len(b)
	t := make([][]int, n+1)
	for i := range t {
		t[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				t[i][j] = t[i+1][j+1] + 1
			} else {
				t[i][j] = max(t[i+1][j], t[i][j+1])
			}
		}
	}
	out := map[string]bool{}
	for i, j := 0, 0; i < n && j < m; {
		switch {
		case a[i] == b[j]:
			out[a[i]] = true
			i++
			j++
		case t[i+1][j] >= t[i][j+1]:
			i++
		default:
			j++
		}
	}
	return out
}

func field(name string, old, new any) FieldChange {
	return FieldChange{Field: name, Old: old, New: new, HasOld: !isZero(old), HasNew: !isZero(new)}
}

func isZero(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	}
	return false
}

// stepFields lists what differs between two planned steps. For an added step (all)
// it lists what the new step has, so a reviewer sees it whole.
func stepFields(old, new *engine.PlannedStep, all, actions bool) []FieldChange {
	var out []FieldChange
	add := func(name string, o, n any) {
		if all && (isZero(n) || name == "type" || name == "section") {
			return // an added step's type and section are in its heading
		}
		if all || !equalJSON(o, n) {
			out = append(out, field(name, o, n))
		}
	}
	add("type", old.Type, new.Type)
	add("name", old.Name, new.Name)
	add("role", old.Role, new.Role)
	add("section", string(old.Section), string(new.Section))
	add("phase", old.Phase, new.Phase)
	add("when", old.When, new.When)
	add("condition", condOf(old), condOf(new))
	if old.Foreach != nil || new.Foreach != nil {
		add("foreach", old.Foreach, new.Foreach)
	}
	out = append(out, diffMaps("with.", old.Params, new.Params, all)...)
	if actions {
		add("action", old.Action, new.Action)
	}
	add("error", old.Error, new.Error)
	return out
}

func condOf(s *engine.PlannedStep) string {
	if s.Type == "" {
		return ""
	}
	if s.When == "" && s.Condition == "always" {
		return "" // nothing to say
	}
	return s.Condition
}

// diffMaps compares two parameter maps, flattening nested maps into dotted names
// (with.parameters.VERSION) so that each changed value is shown on its own.
func diffMaps(prefix string, old, new map[string]any, all bool) []FieldChange {
	fo, fn := map[string]any{}, map[string]any{}
	flatten(prefix, old, fo)
	flatten(prefix, new, fn)
	keys := map[string]bool{}
	for k := range fo {
		keys[k] = true
	}
	for k := range fn {
		keys[k] = true
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []FieldChange
	for _, k := range names {
		o, hasO := fo[k]
		n, hasN := fn[k]
		if all || hasO != hasN || !equalJSON(o, n) {
			out = append(out, FieldChange{Field: k, Old: o, New: n, HasOld: hasO, HasNew: hasN})
		}
	}
	return out
}

func flatten(prefix string, m map[string]any, out map[string]any) {
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
			flatten(prefix+k+".", sub, out)
			continue
		}
		out[prefix+k] = v
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// show is a value as a reviewer reads it: strings quoted, lists and maps as JSON,
// nothing as "(none)".
func show(v any, has bool) string {
	if !has {
		return "(none)"
	}
	if x, ok := v.(string); ok && x == engine.KnownAfterRun {
		return x
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // a reviewer reads <admin>, not \u003cadmin\u003e
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func (d *PlanDiff) summary() string {
	if d.Empty() {
		return "no change to the release plan"
	}
	var parts []string
	for _, k := range []ChangeKind{Added, Removed, Changed, Moved} {
		n := d.Counts[string(k)]
		word := "steps"
		if n == 1 {
			word = "step"
		}
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s %s", n, word, k))
		}
	}
	if len(d.Inputs) > 0 {
		parts = append(parts, fmt.Sprintf("%d input value(s) changed", len(d.Inputs)))
	}
	if len(parts) == 0 {
		parts = append(parts, "the plan's header changed")
	}
	return strings.Join(parts, ", ")
}

// WriteJSON writes the diff as JSON.
func (d *PlanDiff) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(d)
}

var marks = map[ChangeKind]string{Added: "+", Removed: "-", Changed: "~", Moved: ">"}

// WriteText writes the diff for a terminal.
func (d *PlanDiff) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Plan diff for %s: %s -> %s\n", d.Product, d.Base, d.Head)
	if d.Note != "" {
		fmt.Fprintf(&b, "Note: %s\n", d.Note)
	}
	if d.BaseHash != d.HeadHash {
		fmt.Fprintf(&b, "Plan hash: %s -> %s\n", orNone(d.BaseHash), d.HeadHash)
	}
	fmt.Fprintf(&b, "Summary: %s.\n", d.summary())
	for _, f := range d.Plan {
		fmt.Fprintf(&b, "~ %s: %s -> %s\n", f.Field, show(f.Old, f.HasOld), show(f.New, f.HasNew))
	}
	if len(d.Inputs) > 0 {
		b.WriteString("\nInputs:\n")
		for _, f := range d.Inputs {
			fmt.Fprintf(&b, "  ~ %s: %s -> %s\n", f.Field, show(f.Old, f.HasOld), show(f.New, f.HasNew))
		}
	}
	if len(d.Steps) > 0 {
		b.WriteString("\n")
	}
	for _, c := range d.Steps {
		fmt.Fprintf(&b, "%s %s (%s)", marks[c.Kind], c.ID, c.Type)
		if c.Role != "" {
			fmt.Fprintf(&b, " [%s]", c.Role)
		}
		fmt.Fprintf(&b, " %s", c.where())
		b.WriteString("\n")
		for _, f := range c.Fields {
			if c.Kind == Added {
				fmt.Fprintf(&b, "    %s: %s\n", f.Field, show(f.New, f.HasNew))
				continue
			}
			fmt.Fprintf(&b, "    %s: %s -> %s\n", f.Field, show(f.Old, f.HasOld), show(f.New, f.HasNew))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// where says a change's place in the plan in words.
func (c StepChange) where() string {
	sec := ""
	if c.Section != "" && c.Section != string(engine.SectionSteps) {
		sec = " in " + c.Section
	}
	switch c.Kind {
	case Added:
		return fmt.Sprintf("added at %d%s", c.NewPos, sec)
	case Removed:
		return fmt.Sprintf("removed, was %d%s", c.OldPos, sec)
	case Moved:
		return fmt.Sprintf("moved %d -> %d%s", c.OldPos, c.NewPos, sec)
	}
	if c.Moved {
		return fmt.Sprintf("changed, moved %d -> %d%s", c.OldPos, c.NewPos, sec)
	}
	return fmt.Sprintf("changed at %d%s", c.NewPos, sec)
}

var mdMarks = map[ChangeKind]string{Added: "➕ **added**", Removed: "➖ **removed**", Changed: "✏️ **changed**", Moved: "↕️ **moved**"}

// WriteMarkdown writes the diff for a pull-request comment: a summary line, a table of
// the steps the change adds, removes, changes and moves, the release flow after the
// change as a Mermaid diagram with those steps marked, the details collapsed, then the
// full plan after the change, collapsed.
func (d *PlanDiff) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	d.mdSummary(&b)
	d.mdStepTable(&b)
	d.mdInputTable(&b)
	if err := d.mdFlow(&b); err != nil {
		return err
	}
	d.mdDetails(&b)
	if d.HeadPlan != nil {
		b.WriteString("<details><summary>The full plan after this change</summary>\n\n")
		if err := d.HeadPlan.WriteMarkdownWith(&b, engine.MarkdownOptions{NoDiagram: true}); err != nil {
			return err
		}
		b.WriteString("\n</details>\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mdSummary: the title, what is compared with what and the summary line, the plan hash
// change, the note and the steps that could not be planned.
func (d *PlanDiff) mdSummary(b *strings.Builder) {
	title := d.Title
	if title == "" {
		title = d.Product
	}
	fmt.Fprintf(b, "### runbook plan: %s\n\n", markdown.Text(title))
	fmt.Fprintf(b, "%s compared with %s: **%s**.", markdown.Code(d.Head), markdown.Code(d.Base), markdown.Text(d.summary()))
	if d.BaseHash != d.HeadHash {
		fmt.Fprintf(b, " Plan hash %s → %s.", markdown.Code(orNone(d.BaseHash)), markdown.Code(d.HeadHash))
	}
	b.WriteString("\n\n")
	if d.Note != "" {
		fmt.Fprintf(b, "> %s\n\n", markdown.Text(d.Note))
	}
	if errs := d.headErrors(); len(errs) > 0 {
		fmt.Fprintf(b, "> ⚠️ %d step(s) could not be planned: %s\n\n", len(errs), strings.Join(errs, ", "))
	}
}

// mdStepTable: one row per step the change adds, removes, changes or moves.
func (d *PlanDiff) mdStepTable(b *strings.Builder) {
	if len(d.Steps) == 0 {
		return
	}
	b.WriteString("| change | step | type | role | what changed |\n|---|---|---|---|---|\n")
	for _, c := range d.Steps {
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", mdMarks[c.Kind], markdown.Cell(c.mdStep()), markdown.CodeCell(c.Type), markdown.Text(c.Role), markdown.Cell(strings.Join(c.mdWhat(), ", ")))
	}
	b.WriteString("\n")
}

// mdStep names the step in the table: its id (struck out when removed), name and section.
func (c StepChange) mdStep() string {
	step := markdown.Code(c.ID)
	if c.Kind == Removed {
		step = "~~" + step + "~~"
	}
	if c.Name != "" {
		step += " " + markdown.Text(c.Name)
	}
	if c.Section != string(engine.SectionSteps) && c.Section != "" {
		step += " _(" + markdown.Text(c.Section) + ")_"
	}
	return step
}

// mdWhat says what changed: a new or removed step's place, else its move and the fields
// that changed.
func (c StepChange) mdWhat() []string {
	switch c.Kind {
	case Added:
		return []string{fmt.Sprintf("new step at %d", c.NewPos)}
	case Removed:
		return []string{fmt.Sprintf("was step %d", c.OldPos)}
	}
	var what []string
	if c.Moved {
		what = append(what, fmt.Sprintf("order %d → %d", c.OldPos, c.NewPos))
	}
	for _, f := range c.Fields {
		what = append(what, markdown.Code(f.Field))
	}
	return what
}

// mdInputTable: the plan's and the inputs' changes, before and after.
func (d *PlanDiff) mdInputTable(b *strings.Builder) {
	if len(d.Inputs) == 0 && len(d.Plan) == 0 {
		return
	}
	b.WriteString("| input | before | after |\n|---|---|---|\n")
	for _, f := range append(append([]FieldChange{}, d.Plan...), d.Inputs...) {
		fmt.Fprintf(b, "| %s | %s | %s |\n", markdown.CodeCell(f.Field), markdown.CodeCell(show(f.Old, f.HasOld)), markdown.CodeCell(show(f.New, f.HasNew)))
	}
	b.WriteString("\n")
}

// mdFlow: the release flow after the change as a Mermaid diagram, the changed steps
// marked and the removed ones drawn apart.
func (d *PlanDiff) mdFlow(b *strings.Builder) error {
	if d.HeadPlan == nil || len(d.HeadPlan.Steps) == 0 {
		return nil
	}
	b.WriteString("#### Release flow after this change\n\n")
	if len(d.Steps) > 0 {
		b.WriteString("Added steps are green, changed ones blue, moved ones dashed blue; removed steps are red, apart. Gates (a person or the calendar decides) are hexagons.\n\n")
	}
	if err := d.HeadPlan.WriteMermaid(b, d.diagramOptions()); err != nil {
		return err
	}
	b.WriteString("\n")
	return nil
}

// diagramOptions marks each changed step by its kind of change and lists the removed
// steps, as the base plan had them.
func (d *PlanDiff) diagramOptions() engine.DiagramOptions {
	o := engine.DiagramOptions{Marks: map[string]string{}}
	removed := map[string]bool{}
	for _, c := range d.Steps {
		switch {
		case c.Kind == Removed:
			removed[c.ID] = true
		case c.Kind == Moved:
			o.Marks[c.ID] = "moved"
		default:
			o.Marks[c.ID] = string(c.Kind)
		}
	}
	if d.BasePlan != nil {
		for _, s := range d.BasePlan.Steps {
			if removed[s.ID] {
				o.Removed = append(o.Removed, s)
			}
		}
	}
	return o
}

// mdDetails: the fields of each changed step, before and after, collapsed.
func (d *PlanDiff) mdDetails(b *strings.Builder) {
	var detailed []StepChange
	for _, c := range d.Steps {
		if len(c.Fields) > 0 {
			detailed = append(detailed, c)
		}
	}
	if len(detailed) == 0 {
		return
	}
	b.WriteString("<details><summary>Details of the changes</summary>\n\n")
	for _, c := range detailed {
		fmt.Fprintf(b, "#### %s %s\n\n| field | before | after |\n|---|---|---|\n", mdMarks[c.Kind], markdown.Code(c.ID))
		for _, f := range c.Fields {
			fmt.Fprintf(b, "| %s | %s | %s |\n", markdown.CodeCell(f.Field), markdown.CodeCell(show(f.Old, f.HasOld)), markdown.CodeCell(show(f.New, f.HasNew)))
		}
		b.WriteString("\n")
	}
	b.WriteString("</details>\n\n")
}

func (d *PlanDiff) headErrors() []string {
	if d.HeadPlan == nil {
		return nil
	}
	var out []string
	for _, s := range d.HeadPlan.Errors() {
		out = append(out, markdown.Code(s.ID))
	}
	return out
}
