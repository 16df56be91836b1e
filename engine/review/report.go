package review

import (
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/engine/markdown"
)

// view is what both renderings show of a report, computed once so that Markdown and
// HTML say the same things.
type view struct {
	Heading    string // "Local release demo 1.2.3"
	Product    string
	Version    string
	RunID      string
	Mode       string
	Status     string // the run status as recorded
	Symbol     string
	Class      string // ok, fail, warn, wait: the colour of the outcome in HTML
	Outcome    string // one sentence: "failed at step deploy: ..."
	Actor      string
	ActingAs   []string // "github as release-bot"
	Started    string
	Finished   string
	Duration   string
	PlanHash   string
	Playbook   string
	Inputs     []kv
	Sessions   []sessionView
	Steps      []stepView
	Links      []linkView
	Choices    []choiceView
	Warnings   []warningView
	LeftBehind []engine.LeftBehind
	Failures   []failureView
	Generated  string
	StepCounts string // "31 steps: 25 done, 2 skipped, 4 not needed"
	// The release record: the sentence a person reads first, the steps in the
	// procedure's sections, what was released component by component, the decisions
	// people made, and when each step ran.
	Summary       string
	FinishedLabel string  // "finished", or "stopped to wait" for a waiting run
	EmptyInputs   int     // inputs left empty, not listed
	Hidden        string  // "Reverting: 9 steps, not needed (none of them ran)."
	Shown         display // the run's status in words, colour and icon
	Sections      []sectionView
	Components    *componentTable
	Decisions     []decisionView
	Timeline      *timeline
}

type kv struct{ Key, Value string }

type sessionView struct {
	N                         int
	Actor, Host, Command      string
	Started, Ended, Status    string
	Duration                  string
	StatusSymbol, StatusClass string
	StatusKey                 string // display key, for the HTML icon
}

type stepView struct {
	N          int
	ID, Type   string
	Name       string
	Section    string // "" for steps, else on_failure / finally
	Status     string
	Symbol     string
	Class      string
	Role       string
	Performers string
	Started    string
	Duration   string
	Attempts   int
	Made       []linkView
	Note       string // skipped because, items summary, error in one line
	Shown      display
	Word       string // the status in words: "skipped: its condition was false"
	Detail     string // secondary text: the condition of a skipped step
}

type linkView struct {
	Title, URL, Step string
	Kind             string // issue, tag, build, DOI, release, link
	Safe             bool   // an http(s) URL that may be a hyperlink
}

type choiceView struct {
	Step, Action, By, At, Reason string
}

// warningView is a warning to act on: the release went on without what the step did.
type warningView struct {
	Step, At, Message string
}

type failureView struct {
	ID, Type, Status, Symbol string
	Item                     string // the foreach item, when one item failed
	Error                    string
	LogTail                  []string
}

var symbols = map[string]string{
	"succeeded":   "✅",
	"failed":      "❌",
	"rejected":    "⛔",
	"rolled_back": "↩️",
	"cancelled":   "✖️",
	"waiting":     "⏸️",
	"running":     "🔄",
	"skipped":     "⏭️",
	"pending":     "⬜",
	"planned":     "⬜",
}

var classes = map[string]string{
	"succeeded": "ok", "failed": "fail", "rejected": "fail", "rolled_back": "warn",
	"cancelled": "warn", "waiting": "wait", "running": "wait", "skipped": "muted", "pending": "muted",
}

func symbolOf(status string) string {
	if s, ok := symbols[status]; ok {
		return s
	}
	return "•"
}

func fmtTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// fmtClock is a step's start: the time of day, with the date only when it differs from
// the run's start day.
func fmtClock(t *time.Time, day time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	u := t.UTC()
	if u.Format("2006-01-02") != day.UTC().Format("2006-01-02") {
		return u.Format("2006-01-02 15:04:05")
	}
	return u.Format("15:04:05")
}

// fmtDuration rounds to what a person cares about: milliseconds under a second, seconds
// under an hour, minutes beyond ("26h", "2h30m").
func fmtDuration(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	d = d.Round(time.Minute)
	h, m := int(d/time.Hour), int((d%time.Hour)/time.Minute)
	if m == 0 {
		return fmt.Sprintf("%dh", h)
	}
	return fmt.Sprintf("%dh%dm", h, m)
}

func fmtValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = fmtValue(e)
		}
		return strings.Join(parts, ", ")
	}
	return fmt.Sprint(v)
}

// linkKind names what a link points at, from its URL first (titles are free text:
// "Release issue" is an issue), for the links section.
func linkKind(l engine.Link) string {
	t, u := strings.ToLower(l.Title), strings.ToLower(l.URL)
	has := func(s string, subs ...string) bool {
		for _, x := range subs {
			if strings.Contains(s, x) {
				return true
			}
		}
		return false
	}
	switch {
	case has(t, "approval", "rejection"):
		return "approval"
	case has(u, "doi.org/"):
		return "DOI"
	case has(u, "zenodo"):
		return "Zenodo"
	case has(u, "/releases/"):
		return "release"
	case has(u, "/issues/", "/pull/", "/milestone/"):
		return "issue"
	case has(u, "/job/") || has(t, "build", "jenkins"):
		return "build"
	case has(u, "/tree/", "/tags/", "/commit/") || has(t, "tag"):
		return "tag"
	case has(t, "release"):
		return "release"
	}
	return "link"
}

func safeURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

func newLinkView(l engine.Link) linkView {
	return linkView{Title: l.Title, URL: l.URL, Step: l.Step, Kind: linkKind(l), Safe: safeURL(l.URL)}
}

// outcome says in one sentence how the run ended.
func outcome(r *engine.Report) string {
	at := ""
	if r.FailedStep != "" {
		at = " at step " + r.FailedStep
	}
	reason := ""
	if r.Reason != "" {
		reason = ": " + oneLine(r.Reason)
	}
	switch r.Status {
	case engine.RunSucceeded:
		return "succeeded"
	case engine.RunFailed:
		return "failed" + at + reason
	case engine.RunRejected:
		return "rejected" + at + reason
	case engine.RunRolledBack:
		return "rolled back after a failure" + at + reason
	case engine.RunWaiting:
		return "waiting for a person" + at + reason
	case engine.RunCancelled:
		return "interrupted" + at + "; it can be resumed"
	case engine.RunRunning:
		return "in progress (this report was written while the run was going)"
	}
	return string(r.Status) + at + reason
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	return s
}

// newView computes what the renderings show: the run's heading and times, its inputs
// and sessions, its steps and what went wrong at them, then the release record.
func newView(r *engine.Report) *view {
	v := &view{Product: r.Product, RunID: r.RunID, Mode: r.Mode, Status: string(r.Status), Actor: r.Actor,
		PlanHash: r.PlanHash, Playbook: r.Playbook}
	if r.Actor == "" {
		v.Actor = "unknown"
	}
	v.ActingAs = actingAsAll(r)
	if ver, ok := r.Inputs["version"]; ok {
		v.Version = fmtValue(ver)
	}
	title := r.Title
	if title == "" {
		title = r.Product
	}
	v.Heading = strings.TrimSpace(title + " " + v.Version)
	v.Symbol, v.Class = symbolOf(v.Status), classes[v.Status]
	v.Shown = runDisplay(r.Status)
	v.Outcome = outcome(r)
	start := r.StartedAt
	v.Started = fmtTime(&start)
	v.Finished = fmtTime(r.FinishedAt)
	if r.FinishedAt != nil {
		v.Duration = fmtDuration(r.DurationMS)
	}
	v.FinishedLabel = finishedLabel(r.Status)
	v.Inputs, v.EmptyInputs = inputViews(r.Inputs)
	v.Sessions = sessionViews(r.Sessions)
	failureRan := failurePathRan(r)
	for i, s := range r.Steps {
		v.Steps = append(v.Steps, newStepView(r, i, s, failureRan))
		if fv, ok := newFailureView(s); ok {
			v.Failures = append(v.Failures, fv)
		}
	}
	v.StepCounts = stepCounts(v.Steps)
	v.Sections = sections(r, v.Steps)
	v.Hidden = hiddenNote(r, v.Sections)
	for _, l := range r.Links {
		v.Links = append(v.Links, newLinkView(l))
	}
	for _, c := range r.Choices {
		at := c.At
		v.Choices = append(v.Choices, choiceView{Step: c.Step, Action: c.Action, By: c.By, At: fmtTime(&at), Reason: c.Reason})
	}
	v.LeftBehind = r.LeftBehind
	v.Components = components(r)
	v.Decisions = decisions(r)
	v.Timeline = newTimeline(r)
	v.Summary = summary(r, v)
	for _, w := range r.Warnings {
		at := w.At
		v.Warnings = append(v.Warnings, warningView{Step: w.Step, At: fmtTime(&at), Message: w.Message})
	}
	return v
}

// actingAsAll says who the credentials acted as, connection by connection: it is what
// the services recorded, said beside the person who ran runbook.
func actingAsAll(r *engine.Report) []string {
	conns := make([]string, 0, len(r.Identities))
	for c := range r.Identities {
		conns = append(conns, c)
	}
	sort.Strings(conns)
	var out []string
	for _, c := range conns {
		out = append(out, actingAs(r, c, r.Identities[c]))
	}
	return out
}

// finishedLabel names the run's last moment: a run that stopped did not finish.
func finishedLabel(s engine.RunStatus) string {
	switch s {
	case engine.RunWaiting:
		return "stopped to wait on"
	case engine.RunCancelled:
		return "interrupted on"
	case engine.RunRunning:
		return "last written"
	}
	return "finished"
}

// inputViews lists the inputs with a value, by name, and counts the empty ones.
func inputViews(inputs map[string]any) (shown []kv, empty int) {
	keys := make([]string, 0, len(inputs))
	for k := range inputs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		val := fmtValue(inputs[k])
		if val == "" {
			empty++
			continue
		}
		shown = append(shown, kv{k, val})
	}
	return shown, empty
}

func sessionViews(sessions []engine.Session) []sessionView {
	var out []sessionView
	for _, s := range sessions {
		sv := sessionView{N: s.N, Actor: s.Actor, Host: s.Host, Command: s.Command, Started: fmtTime(&s.StartedAt),
			Ended: fmtTime(s.EndedAt), Status: strings.ReplaceAll(string(s.Status), "_", " "), StatusSymbol: symbolOf(string(s.Status)), StatusClass: classes[string(s.Status)], StatusKey: runDisplay(s.Status).Key}
		if s.EndedAt != nil {
			sv.Duration = fmtDuration(s.EndedAt.Sub(s.StartedAt).Milliseconds())
		}
		out = append(out, sv)
	}
	return out
}

// newStepView is the row of the i-th step: its status in words, what it made, and a note
// of its items, attempts, or error.
func newStepView(r *engine.Report, i int, s *engine.StepReport, failureRan bool) stepView {
	sv := stepView{N: i + 1, ID: s.ID, Type: s.Type, Name: s.Name, Status: string(s.Status), Symbol: symbolOf(string(s.Status)),
		Class: classes[string(s.Status)], Role: s.Role, Performers: strings.Join(s.Performers, ", "),
		Started: fmtClock(s.StartedAt, r.StartedAt), Attempts: s.Attempts}
	if s.Section != engine.SectionSteps && s.Section != "" {
		sv.Section = string(s.Section)
	}
	if s.StartedAt != nil && (s.FinishedAt != nil || s.DurationMS > 0) {
		sv.Duration = fmtDuration(s.DurationMS)
	}
	sv.Made = stepLinks(s)
	sv.Shown = stepDisplay(r, s, failureRan)
	sv.Word = sv.Shown.Word
	switch {
	case s.Status == engine.StepSkipped:
		sv.Word, sv.Detail = skipWords(r, s.Skipped)
	case s.Error != "":
		sv.Note = oneLine(s.Error)
	}
	if len(s.Items) > 0 {
		per := map[string]int{}
		for _, it := range s.Items {
			per[stepDisplay(r, &engine.StepReport{Status: it.Status, Section: s.Section}, failureRan).Word]++
		}
		sv.Note = strings.TrimSpace(fmt.Sprintf("%d item%s: %s. %s", len(s.Items), plural(len(s.Items)), countList(per), sv.Note))
	}
	if s.Attempts > 1 {
		sv.Note = strings.TrimSpace(fmt.Sprintf("%d attempts. %s", s.Attempts, sv.Note))
	}
	return sv
}

// wentWrong: the step failed, was refused, waits, was interrupted, or has an error.
func wentWrong(s *engine.StepReport) bool {
	switch s.Status {
	case engine.StepFailed, engine.StepRejected, engine.StepWaiting, engine.StepCancelled:
		return true
	}
	return s.Error != ""
}

// newFailureView tells what went wrong at a step, when something did: the step's error,
// else its first failed item's.
func newFailureView(s *engine.StepReport) (failureView, bool) {
	if !wentWrong(s) {
		return failureView{}, false
	}
	fv := failureView{ID: s.ID, Type: s.Type, Status: string(s.Status), Symbol: symbolOf(string(s.Status)), Error: s.Error, LogTail: s.LogTail}
	if s.Error == "" {
		for _, it := range s.Items {
			if it.Error != "" {
				fv.Item, fv.Error = fmtValue(it.Item), it.Error
				break
			}
		}
	}
	return fv, true
}

// countList writes counts in a fixed order of statuses, so the summary reads the same
// from run to run.
func countList(m map[string]int) string {
	order := []string{"done", "failed", "refused", "waiting", "interrupted", "running", "skipped", "to do", "not reached", "not needed"}
	var parts []string
	seen := map[string]bool{}
	for _, k := range order {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", m[k], k))
		}
		seen[k] = true
	}
	var rest []string
	for k := range m {
		if !seen[k] && m[k] > 0 {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		parts = append(parts, fmt.Sprintf("%d %s", m[k], k))
	}
	return strings.Join(parts, ", ")
}

// ReportMarkdown renders a report as Markdown fit for the release report comment on the
// release issue.
func ReportMarkdown(r *engine.Report) string {
	var b strings.Builder
	_ = WriteReportMarkdown(&b, r)
	return b.String()
}

// WriteReportMarkdown writes a report as Markdown (GitHub-flavoured: tables, details).
// Everything that comes from a run (errors, logs, titles) is escaped or fenced, so a
// hostile step output cannot break the comment's layout or inject HTML.
func WriteReportMarkdown(w io.Writer, r *engine.Report) error {
	v := newView(r)
	var b strings.Builder
	for _, section := range []func(*strings.Builder, *view){
		mdHeader, mdLeftBehind, mdWarnings, mdComponents, mdDecisions, mdSections,
		mdSessions, mdLinks, mdChoices, mdFailures,
	} {
		section(&b, v)
	}
	fmt.Fprintf(&b, "<sub>Rendered by runbook from the report of run %s.</sub>\n", mdCode(v.RunID))
	_, err := io.WriteString(w, b.String())
	return err
}

// mdHeader: the heading, the summary, the outcome, who ran it when, and its inputs.
func mdHeader(b *strings.Builder, v *view) {
	fmt.Fprintf(b, "## %s Release report: %s\n\n", v.Symbol, mdText(v.Heading))
	fmt.Fprintf(b, "%s **%s**\n\n", v.Shown.Emoji, mdText(v.Summary))
	fmt.Fprintf(b, "**Outcome: %s** · product %s", mdText(v.Outcome), mdCode(v.Product))
	if v.Version != "" {
		fmt.Fprintf(b, " · version %s", mdCode(v.Version))
	}
	fmt.Fprintf(b, " · run %s", mdCode(v.RunID))
	if v.Mode != "" && v.Mode != "run" {
		fmt.Fprintf(b, " (%s)", mdText(v.Mode))
	}
	b.WriteString("\n\n")
	fmt.Fprintf(b, "Run by **%s**", mdText(v.Actor))
	if len(v.ActingAs) > 0 {
		fmt.Fprintf(b, " (acting on %s)", mdText(strings.Join(v.ActingAs, ", ")))
	}
	fmt.Fprintf(b, ", started %s", v.Started)
	if v.Finished != "" {
		fmt.Fprintf(b, ", %s %s (%s)", v.FinishedLabel, v.Finished, v.Duration)
	}
	fmt.Fprintf(b, ". %s.", v.StepCounts)
	if v.Timeline != nil {
		fmt.Fprintf(b, " Time: %s.", v.Timeline.Totals)
	}
	b.WriteString("\n\n")
	mdInputs(b, v)
}

// mdInputs: the inputs with a value, the playbook and the plan hash, on one line.
func mdInputs(b *strings.Builder, v *view) {
	if len(v.Inputs) == 0 && v.PlanHash == "" {
		return
	}
	var parts []string
	for _, in := range v.Inputs {
		parts = append(parts, mdCode(in.Key+"="+in.Value))
	}
	if len(parts) > 0 {
		fmt.Fprintf(b, "Inputs: %s", strings.Join(parts, " "))
		if v.EmptyInputs > 0 {
			fmt.Fprintf(b, " (%d empty not shown)", v.EmptyInputs)
		}
		b.WriteString(" · ")
	}
	fmt.Fprintf(b, "playbook %s · plan hash %s\n\n", mdCode(v.Playbook), mdCode(v.PlanHash))
}

func mdLeftBehind(b *strings.Builder, v *view) {
	if len(v.LeftBehind) == 0 {
		return
	}
	b.WriteString("### What the stopped release left behind\n\n")
	for _, l := range v.LeftBehind {
		fmt.Fprintf(b, "- %s: %s\n", mdCode(l.Step), mdText(l.What))
	}
	b.WriteString("\n")
}

func mdWarnings(b *strings.Builder, v *view) {
	if len(v.Warnings) == 0 {
		return
	}
	fmt.Fprintf(b, "### Warnings to act on\n\nThe release went on without these (%d):\n\n", len(v.Warnings))
	for _, w := range v.Warnings {
		fmt.Fprintf(b, "- %s %s: %s\n", mdCode(w.Step), w.At, mdText(w.Message))
	}
	b.WriteString("\n")
}

func mdComponents(b *strings.Builder, v *view) {
	c := v.Components
	if c == nil {
		return
	}
	b.WriteString("### What was released, component by component\n\n| component |")
	for _, col := range c.Columns() {
		b.WriteString(" " + mdText(col) + " |")
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(c.Columns())) + "\n")
	for _, row := range c.Rows {
		fmt.Fprintf(b, "| %s |", mdCode(row.Repo))
		for _, cl := range row.Cells() {
			b.WriteString(" " + mdCell(cl) + " |")
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
}

func mdDecisions(b *strings.Builder, v *view) {
	if len(v.Decisions) == 0 {
		return
	}
	b.WriteString("### Decisions\n\n| when | who | decision | step | comment | plan hash approved |\n|---|---|---|---|---|---|\n")
	for _, d := range v.Decisions {
		comment := mdText(d.Comment)
		if d.Link.URL != "" {
			comment = strings.TrimSpace(comment + " " + mdLink(d.Link))
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s |\n", d.When, mdText(d.Who), mdText(d.What), mdText(d.Step), comment, mdCode(d.PlanHash))
	}
	b.WriteString("\n")
}

// mdSections: a table of steps per phase of the procedure, then the note of the phase
// not shown.
func mdSections(b *strings.Builder, v *view) {
	for _, sec := range v.Sections {
		fmt.Fprintf(b, "### %s\n\n| status | step | role | started | duration | result |\n|---|---|---|---|---|---|\n", mdText(sec.Phase))
		for _, s := range sec.Steps {
			mdStepRow(b, s)
		}
		b.WriteString("\n")
	}
	if v.Hidden != "" {
		fmt.Fprintf(b, "%s %s\n\n", shownNotNeeded.Emoji, mdText(v.Hidden))
	}
}

// mdStepRow: the step's status in words, its name, id and type, its role, its times, and
// what it made.
func mdStepRow(b *strings.Builder, s stepView) {
	name := mdCode(s.ID)
	if s.Name != "" {
		name = mdText(s.Name) + " " + name
	}
	name += " " + mdCode(s.Type)
	if s.Section != "" {
		name += " _(" + mdText(s.Section) + ")_"
	}
	status := s.Shown.Emoji + " " + mdText(s.Word)
	if s.Detail != "" {
		status += "<br>" + mdCode(s.Detail)
	}
	var made []string
	for _, l := range s.Made {
		made = append(made, mdLink(l))
	}
	if s.Note != "" {
		made = append(made, mdText(s.Note))
	}
	fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s |\n", status, name, mdText(roleWords(s.Role)), s.Started, s.Duration, strings.Join(made, "<br>"))
}

// mdSessions lists the sessions of a run that was resumed.
func mdSessions(b *strings.Builder, v *view) {
	if len(v.Sessions) <= 1 {
		return
	}
	fmt.Fprintf(b, "### Sessions\n\nThe run was resumed: it ran in %d sessions.\n\n| # | by | host | started | ended | duration | status |\n|---|---|---|---|---|---|---|\n", len(v.Sessions))
	for _, s := range v.Sessions {
		fmt.Fprintf(b, "| %d | %s | %s | %s | %s | %s | %s %s |\n", s.N, mdText(s.Actor), mdText(s.Host), s.Started, s.Ended, s.Duration, s.StatusSymbol, s.Status)
	}
	b.WriteString("\n")
}

func mdLinks(b *strings.Builder, v *view) {
	if len(v.Links) == 0 {
		return
	}
	b.WriteString("<details><summary>All links</summary>\n\n")
	for _, l := range v.Links {
		fmt.Fprintf(b, "- %s: %s", l.Kind, mdLink(l))
		if l.Step != "" {
			fmt.Fprintf(b, " (step %s)", mdCode(l.Step))
		}
		b.WriteString("\n")
	}
	b.WriteString("\n</details>\n\n")
}

func mdChoices(b *strings.Builder, v *view) {
	if len(v.Choices) == 0 {
		return
	}
	b.WriteString("### Choices people made\n\n| step | choice | by | when | why |\n|---|---|---|---|---|\n")
	for _, c := range v.Choices {
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", mdCode(c.Step), mdText(c.Action), mdText(c.By), c.At, mdText(c.Reason))
	}
	b.WriteString("\n")
}

// mdFailures: what went wrong, step by step, with the error fenced and the log's tail.
func mdFailures(b *strings.Builder, v *view) {
	if len(v.Failures) == 0 {
		return
	}
	b.WriteString("### What went wrong\n\n")
	for _, f := range v.Failures {
		fmt.Fprintf(b, "#### %s %s %s: %s", f.Symbol, mdCode(f.ID), mdCode(f.Type), f.Status)
		if f.Item != "" {
			fmt.Fprintf(b, " (item %s)", mdCode(f.Item))
		}
		b.WriteString("\n\n")
		if f.Error != "" {
			b.WriteString(fence(f.Error, "text"))
			b.WriteString("\n")
		}
		if len(f.LogTail) > 0 {
			fmt.Fprintf(b, "<details><summary>Last %d log lines</summary>\n\n%s\n</details>\n\n", len(f.LogTail), fence(strings.Join(f.LogTail, "\n"), "text"))
		}
	}
}

// mdCell writes a component cell: the text (a link when it has a safe URL) and the
// detail in code, or "—" when empty.
func mdCell(c cell) string {
	if c.Empty() && c.Detail == "" {
		return "—"
	}
	out := mdText(c.Text)
	if c.URL != "" {
		out = mdLink(linkView{Title: c.Text, URL: c.URL, Safe: c.Safe})
	}
	if c.Detail != "" {
		if out != "" {
			out += "<br>"
		}
		out += mdCode(c.Detail)
	}
	return out
}

// The report's Markdown is written with engine/markdown, the one escaper plans, plan
// diffs and docs use too: text is markdown.Text, code (always in table cells or safe
// there) markdown.CodeCell, code blocks markdown.Fence.
var (
	mdText = markdown.Text
	mdCode = markdown.CodeCell
)

func fence(s, lang string) string { return markdown.Fence(lang, s) }

// mdLink is a hyperlink when the URL is http(s), else the title and the URL as text.
func mdLink(l linkView) string {
	title := l.Title
	if title == "" {
		title = l.URL
	}
	if !l.Safe {
		return mdText(title) + " " + mdCode(l.URL)
	}
	return markdown.Link(title, l.URL)
}
