package review

import (
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/cessda/runbook/engine"
)

// This file turns the engine's view of a run (steps and their statuses) into the
// release's: statuses in words, why a step was skipped, which steps were not needed,
// the procedure's sections and the one sentence a person reads first.

// Step types whose time is time spent waiting for people (or for the calendar), not
// machine time: told apart by type, never by a step's id.
var gateTypes = map[string]string{
	"github.approval":      "approval",
	"github.checklist":     "tick on the release issue's checklist",
	"github.subtasks_done": "pre-release activities",
	"manual":               "confirmation",
	"schedule.window":      "release window",
}

func isGate(typ string) bool { _, ok := gateTypes[typ]; return ok }

// Display statuses: what a person reads in a status cell. key is the class (colour and
// icon) of the status in HTML; word is the status in words.
type display struct{ Key, Word, Emoji string }

var (
	shownDone        = display{"done", "done", "✅"}
	shownFailed      = display{"failed", "failed", "❌"}
	shownRefused     = display{"refused", "refused", "⛔"}
	shownWaiting     = display{"waiting", "waiting", "⏸️"}
	shownRunning     = display{"running", "running", "🔄"}
	shownInterrupted = display{"interrupted", "interrupted", "✖️"}
	shownSkipped     = display{"skipped", "skipped", "⏭️"}
	shownNotNeeded   = display{"notneeded", "not needed", "➖"}
	shownNotReached  = display{"notreached", "not reached", "⬜"}
	shownToDo        = display{"todo", "to do", "⬜"}
	shownRolledBack  = display{"rolledback", "rolled back", "↩️"}
)

// runDisplay is how a run's status (or a session's) reads.
func runDisplay(s engine.RunStatus) display {
	switch s {
	case engine.RunSucceeded:
		return display{"done", "succeeded", "✅"}
	case engine.RunFailed:
		return shownFailed
	case engine.RunRejected:
		return shownRefused
	case engine.RunRolledBack:
		return shownRolledBack
	case engine.RunWaiting:
		return shownWaiting
	case engine.RunRunning:
		return shownRunning
	case engine.RunCancelled:
		return shownInterrupted
	}
	return display{"todo", strings.ReplaceAll(string(s), "_", " "), "•"}
}

// stepDisplay says what a step's status means for this run: a pending on_failure step of
// a run that did not need its failure path is "not needed", a pending step of a run that
// stopped is "not reached", one of a run that goes on is "to do".
func stepDisplay(r *engine.Report, s *engine.StepReport, failurePathRan bool) display {
	switch s.Status {
	case engine.StepSucceeded:
		return shownDone
	case engine.StepFailed:
		return shownFailed
	case engine.StepRejected:
		return shownRefused
	case engine.StepWaiting:
		return shownWaiting
	case engine.StepRunning:
		return shownRunning
	case engine.StepCancelled:
		return shownInterrupted
	case engine.StepSkipped:
		return shownSkipped
	case engine.StepPending, "planned", "":
		if s.Section == engine.SectionOnFailure && !failurePathRan {
			return shownNotNeeded
		}
		switch r.Status {
		case engine.RunWaiting, engine.RunRunning, engine.RunCancelled:
			return shownToDo
		}
		return shownNotReached
	}
	return display{"todo", strings.ReplaceAll(string(s.Status), "_", " "), "•"}
}

// failurePathRan: did any on_failure step run (not only have its condition checked)?
func failurePathRan(r *engine.Report) bool {
	for _, s := range r.Steps {
		if s.Section == engine.SectionOnFailure && s.StartedAt != nil {
			return true
		}
	}
	return false
}

// person names a login as "Name (login)" when the playbook's people name it.
func person(r *engine.Report, login string) string {
	if login == "" {
		return ""
	}
	if p, ok := r.People[login]; ok && p.Name != "" && p.Name != login {
		return p.Name + " (" + login + ")"
	}
	return login
}

// skipWords says why a step was skipped, in words, and the condition as a detail.
func skipWords(r *engine.Report, because string) (word, detail string) {
	because = strings.TrimSpace(because)
	if strings.HasPrefix(because, "when: ") && strings.HasSuffix(because, " was false") {
		cond := strings.TrimSuffix(strings.TrimPrefix(because, "when: "), " was false")
		return "skipped: its condition was false", cond
	}
	if rest, ok := strings.CutPrefix(because, "skipped by "); ok {
		by, reason, _ := strings.Cut(rest, ": ")
		w := "skipped by " + person(r, by)
		if reason != "" {
			w += ": " + oneLine(reason)
		}
		return w, ""
	}
	if because == "" {
		return "skipped", ""
	}
	return "skipped: " + oneLine(because), ""
}

// roleWords writes a role as words: service_owner → service owner.
func roleWords(role string) string {
	return strings.NewReplacer("_", " ", "-", " ").Replace(role)
}

// phaseOrder is the procedure's order of sections; a phase not listed comes after them,
// in the order the playbook first uses it.
var phaseOrder = []string{"Preparing", "Performing", "Verifying", "Publishing", "Reverting"}

type sectionView struct {
	Phase string
	Note  string // "the release was reverted", for Reverting
	Steps []stepView
}

// sections groups the steps by phase, in the procedure's order. Reverting is shown only
// when one of its steps ran; steps without a phase come last, under "Other steps".
func sections(r *engine.Report, steps []stepView) []sectionView {
	by := map[string][]stepView{}
	var extra []string
	known := map[string]bool{}
	for _, p := range phaseOrder {
		known[p] = true
	}
	ran := map[string]bool{}
	for i, s := range steps {
		p := r.Steps[i].Phase
		if p == "" {
			p = "Other steps"
		}
		if !known[p] && by[p] == nil {
			extra = append(extra, p)
		}
		by[p] = append(by[p], s)
		if r.Steps[i].StartedAt != nil {
			ran[p] = true
		}
	}
	var out []sectionView
	for _, p := range phaseOrder {
		if len(by[p]) == 0 || (p == "Reverting" && !ran[p]) {
			continue
		}
		out = append(out, sectionView{Phase: p, Steps: by[p]})
	}
	// "Other steps" last of all.
	sort.SliceStable(extra, func(i, j int) bool { return extra[j] == "Other steps" && extra[i] != "Other steps" })
	for _, p := range extra {
		out = append(out, sectionView{Phase: p, Steps: by[p]})
	}
	return out
}

// stepCounts: "31 steps: 25 done, 2 skipped, 4 not needed".
func stepCounts(steps []stepView) string {
	counts := map[string]int{}
	var order []string
	for _, s := range steps {
		w := s.Shown.Word
		if counts[w] == 0 {
			order = append(order, w)
		}
		counts[w]++
	}
	rank := map[string]int{}
	for i, d := range []display{shownDone, shownFailed, shownRefused, shownWaiting, shownRunning, shownInterrupted, shownSkipped, shownToDo, shownNotReached, shownNotNeeded} {
		rank[d.Word] = i + 1
	}
	sort.SliceStable(order, func(i, j int) bool {
		ri, rj := rank[order[i]], rank[order[j]]
		if ri == 0 {
			ri = 100
		}
		if rj == 0 {
			rj = 100
		}
		return ri < rj
	})
	parts := make([]string, len(order))
	for i, w := range order {
		parts[i] = fmt.Sprintf("%d %s", counts[w], w)
	}
	noun := "steps"
	if len(steps) == 1 {
		noun = "step"
	}
	return fmt.Sprintf("%d %s: %s", len(steps), noun, strings.Join(parts, ", "))
}

// approvals finds the release's approval gates by type and place: the first
// github.approval outside the Verifying phase approves the release; one in the Verifying
// phase (after production changed) says it is stable.
func approvals(r *engine.Report) (approve, stable *engine.StepReport) {
	for _, s := range r.Steps {
		if s.Type != "github.approval" || s.Section != engine.SectionSteps && s.Section != "" {
			continue
		}
		if s.Phase == "Verifying" || (approve != nil && stable == nil && s.Phase != "Preparing") {
			if stable == nil {
				stable = s
			}
			continue
		}
		if approve == nil {
			approve = s
		}
	}
	return approve, stable
}

func outStr(m map[string]any, k string) string {
	if m == nil {
		return ""
	}
	switch v := m[k].(type) {
	case string:
		return v
	case nil:
		return ""
	case float64:
		if v == float64(int64(v)) {
			return fmt.Sprint(int64(v))
		}
	}
	return fmt.Sprint(m[k])
}

func parseTime(s string) *time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return nil
	}
	return &t
}

// fmtWhen is a moment for a sentence: "2026-12-08 08:04 UTC".
func fmtWhen(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// refusal reads who refused a gate and why from its error ("rejected by LOGIN: why").
func refusal(s *engine.StepReport) (by, why string) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s.Error), "rejected by ")
	if !ok {
		return "", oneLine(s.Error)
	}
	by, why, _ = strings.Cut(rest, ": ")
	return by, oneLine(why)
}

// summary is the sentence at the top of the record, and its colour.
func summary(r *engine.Report, v *view) string {
	version := v.Version
	if version == "" {
		version = "the release"
	}
	switch r.Status {
	case engine.RunSucceeded:
		return releasedSentence(r, v.Components, version)
	case engine.RunWaiting:
		return waitingSentence(r)
	case engine.RunRejected, engine.RunRolledBack, engine.RunFailed:
		return stoppedSentence(r, version)
	case engine.RunCancelled:
		return "Interrupted " + version + "; the run can be resumed"
	case engine.RunRunning:
		return "In progress: this record was written while the run was going"
	}
	return v.Outcome
}

// releasedSentence: "Released 3.7.0 to production: 3 components, approved by … on …,
// stable since …".
func releasedSentence(r *engine.Report, c *componentTable, version string) string {
	s := "Released " + version
	if c != nil && c.Production {
		s += " to production"
	}
	var parts []string
	if c != nil && len(c.Rows) > 0 {
		n := len(c.Rows)
		parts = append(parts, fmt.Sprintf("%d component%s", n, plural(n)))
	}
	approve, stable := approvals(r)
	if approve != nil && approve.Status == engine.StepSucceeded {
		a := "approved by " + person(r, outStr(approve.Outputs, "approver"))
		if at := parseTime(outStr(approve.Outputs, "approved_at")); at != nil {
			a += " on " + at.UTC().Format("2006-01-02")
		}
		parts = append(parts, a)
	}
	if stable != nil && stable.Status == engine.StepSucceeded {
		if at := parseTime(outStr(stable.Outputs, "approved_at")); at != nil {
			parts = append(parts, "stable since "+fmtWhen(at))
		} else {
			parts = append(parts, "confirmed stable")
		}
	}
	if len(parts) > 0 {
		s += ": " + strings.Join(parts, ", ")
	}
	return s
}

// waitingSentence says who the run waits for, since when, at which step: the first
// waiting step's gate.
func waitingSentence(r *engine.Report) string {
	for _, s := range r.Steps {
		if s.Status == engine.StepWaiting {
			return waitingFor(r, s)
		}
	}
	return "Waiting for a person: " + oneLine(r.Reason)
}

// waitingFor: "Waiting for the service owner's approval since … (Name (login)): step".
func waitingFor(r *engine.Report, s *engine.StepReport) string {
	what := gateTypes[s.Type]
	if what == "" {
		what = "answer"
	}
	who, names := "a person", []string{}
	if s.Role != "" {
		who = "the " + roleWords(s.Role)
		for _, p := range s.Performers {
			names = append(names, person(r, p))
		}
	}
	line := "Waiting for " + who + "'s " + what
	if s.Type == "schedule.window" {
		line = "Waiting for the release window"
	}
	if s.StartedAt != nil {
		line += " since " + fmtWhen(s.StartedAt)
	}
	if len(names) > 0 && s.Type != "schedule.window" {
		line += " (" + strings.Join(names, ", ") + ")"
	}
	if s.Name != "" {
		line += ": " + s.Name
	}
	return line
}

// stoppedSentence is the summary of a run that did not release: refused at a gate or
// failed at a step, then whether production changed.
func stoppedSentence(r *engine.Report, version string) string {
	var at *engine.StepReport
	if r.FailedStep != "" {
		at = r.Step(r.FailedStep)
	}
	var s string
	if at != nil && at.Status == engine.StepRejected {
		s = refusedSentence(r, at, version)
	} else {
		s = failedSentence(r, at, version)
	}
	switch {
	case r.Status == engine.RunRolledBack:
		s += ". The failure path ran: production was rolled back"
	case !productionChanged(r):
		s += ". Production was not changed"
	}
	return s + "."
}

// refusedSentence: "Refused 3.7.0: Name (login) refused the release on …: why", or
// "Reverted …: … asked for a revert" when the refusal rolled production back.
func refusedSentence(r *engine.Report, at *engine.StepReport, version string) string {
	by, why := refusal(at)
	when := fmtWhen(at.FinishedAt)
	verb, asked := "Refused", " refused the release"
	if r.Status == engine.RunRolledBack {
		verb, asked = "Reverted", " asked for a revert"
	}
	s := verb + " " + version + ": " + person(r, by) + asked
	if when != "" {
		s += " on " + when
	}
	if why != "" {
		s += ": " + why
	}
	return s
}

// failedSentence: "Failed 3.7.0 at Step name (id): reason" (at is nil when the run
// names no failed step).
func failedSentence(r *engine.Report, at *engine.StepReport, version string) string {
	verb := "Failed"
	if r.Status == engine.RunRolledBack {
		verb = "Rolled back"
	}
	s := verb + " " + version
	if at != nil {
		name := at.ID
		if at.Name != "" {
			name = at.Name + " (" + at.ID + ")"
		}
		s += " at " + name
	}
	if r.Reason != "" {
		s += ": " + oneLine(r.Reason)
	}
	return s
}

// productionChanged: did a step of the Performing phase that deploys run? Told by
// whether any step after the approval that is not a gate ran.
func productionChanged(r *engine.Report) bool {
	for _, s := range r.Steps {
		if s.Phase == "Performing" && !isGate(s.Type) && s.StartedAt != nil {
			return true
		}
	}
	return false
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// stepLinks are a step's links, each labelled by the component its foreach item is
// ("cessda.cvs.two: GitHub release 3.7.0"), so three releases read apart.
func stepLinks(s *engine.StepReport) []linkView {
	var out []linkView
	seen := map[string]bool{}
	for _, it := range s.Items {
		repo, _ := itemMap(it.Item)["repo"].(string)
		for _, l := range it.Links {
			lv := newLinkView(l)
			if repo != "" && !strings.Contains(l.Title, repo) {
				lv.Title = path.Base(repo) + ": " + l.Title
			}
			seen[l.Title+"\x00"+l.URL] = true
			out = append(out, lv)
		}
	}
	for _, l := range s.Links {
		if !seen[l.Title+"\x00"+l.URL] {
			out = append(out, newLinkView(l))
		}
	}
	return out
}

// hiddenNote says why a section is not shown: the failure path of a release that did
// not need it.
func hiddenNote(r *engine.Report, shown []sectionView) string {
	n := 0
	for _, s := range r.Steps {
		if s.Phase == "Reverting" {
			n++
		}
	}
	for _, sec := range shown {
		if sec.Phase == "Reverting" {
			return ""
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("Reverting: %d step%s, not needed (none of them ran).", n, plural(n))
}
