package engine

import (
	"encoding/json"
	"sort"
	"strings"
	"sync"
	"time"
)

// RunStatus is the overall outcome of a run.
type RunStatus string

// Run statuses.
const (
	RunRunning    RunStatus = "running"
	RunSucceeded  RunStatus = "succeeded"
	RunFailed     RunStatus = "failed"
	RunRejected   RunStatus = "rejected"
	RunRolledBack RunStatus = "rolled_back"
	RunCancelled  RunStatus = "cancelled"
	RunWaiting    RunStatus = "waiting"
)

// StepStatus is the outcome of a step (or of one foreach item).
type StepStatus string

// Step statuses.
const (
	StepPending   StepStatus = "pending"
	StepRunning   StepStatus = "running"
	StepSucceeded StepStatus = "succeeded"
	StepFailed    StepStatus = "failed"
	StepSkipped   StepStatus = "skipped"
	StepCancelled StepStatus = "cancelled"
	StepWaiting   StepStatus = "waiting"
	StepRejected  StepStatus = "rejected"
)

// Done reports whether the status is final for a resumed run: such steps are not run again.
func (s StepStatus) Done() bool { return s == StepSucceeded || s == StepSkipped }

// Link is a named URL in the report: an issue, a tag, a build, a DOI, a release.
type Link struct {
	Title string `json:"title"`
	URL   string `json:"url"`
	Step  string `json:"step,omitempty"`
}

// Session is one process's stretch of a run; a resumed run has several.
type Session struct {
	N         int        `json:"n"`
	Actor     string     `json:"actor"`
	Host      string     `json:"host,omitempty"`
	PID       int        `json:"pid,omitempty"`
	Command   string     `json:"command,omitempty"`
	StartedAt time.Time  `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
	Status    RunStatus  `json:"status"`
}

// Choice is a decision a person made about a failed or waiting step.
type Choice struct {
	Step   string    `json:"step"`
	Action string    `json:"action"` // retry, skip, rollback, stop, confirm, refuse
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// Warning is something that went wrong without stopping the release, for a person to act
// on: a step whose on_error is warn failed, or a person skipped a step.
type Warning struct {
	Step    string    `json:"step"`
	Message string    `json:"message"`
	At      time.Time `json:"at"`
}

// LeftBehind is one thing a stopped release left in the world, as its step's left_behind says.
type LeftBehind struct {
	Step string `json:"step"`
	What string `json:"what"`
}

// Report is a run's JSON release report. It is a projection of the run's journal: every
// change is an Event, appended durably to the journal and applied here.
type Report struct {
	ReportVersion  int    `json:"report_version"`
	RunID          string `json:"run_id"`
	Playbook       string `json:"playbook"`
	PlaybookSHA256 string `json:"playbook_sha256"`
	Product        string `json:"product"`
	Title          string `json:"title,omitempty"`
	Mode           string `json:"mode"`
	Actor          string `json:"actor"`
	// Identities are who the connections' credentials acted as, connection -> login
	// (the GitHub login of the token): who actually did the work, beside the actor.
	Identities map[string]string `json:"identities,omitempty"`
	// People are the playbook's people (login -> name, contacts), so the record names
	// who approved, not only their login.
	People     map[string]Person `json:"people,omitempty"`
	Inputs     map[string]any    `json:"inputs"`
	PlanHash   string            `json:"plan_hash"`
	Status     RunStatus         `json:"status"`
	Reason     string            `json:"reason,omitempty"`
	FailedStep string            `json:"failed_step,omitempty"`
	StartedAt  time.Time         `json:"started_at"`
	FinishedAt *time.Time        `json:"finished_at,omitempty"`
	DurationMS int64             `json:"duration_ms"`
	Sessions   []Session         `json:"sessions"`
	Steps      []*StepReport     `json:"steps"`
	Choices    []Choice          `json:"choices,omitempty"`
	Warnings   []Warning         `json:"warnings,omitempty"`
	// LeftBehind is what a release that stopped without finishing left in the world
	// (tags, drafts, commits, issues), by the steps that made it, and what to do about it.
	LeftBehind []LeftBehind `json:"left_behind,omitempty"`
	Links      []Link       `json:"links,omitempty"`

	index map[string]*StepReport
	mu    sync.Mutex
}

// StepReport is one step's record.
type StepReport struct {
	ID         string                     `json:"id"`
	Type       string                     `json:"type"`
	Name       string                     `json:"name,omitempty"`
	Role       string                     `json:"role,omitempty"`
	Performers []string                   `json:"performers,omitempty"`
	Section    Section                    `json:"section"`
	Phase      string                     `json:"phase,omitempty"`
	Status     StepStatus                 `json:"status"`
	Skipped    string                     `json:"skipped_because,omitempty"`
	Attempts   int                        `json:"attempts"`
	Session    int                        `json:"session,omitempty"`
	StartedAt  *time.Time                 `json:"started_at,omitempty"`
	FinishedAt *time.Time                 `json:"finished_at,omitempty"`
	DurationMS int64                      `json:"duration_ms"`
	Params     map[string]any             `json:"params,omitempty"`
	Outputs    map[string]any             `json:"outputs,omitempty"`
	Error      string                     `json:"error,omitempty"`
	Links      []Link                     `json:"links,omitempty"`
	Items      []*ItemReport              `json:"items,omitempty"`
	Journal    map[string]json.RawMessage `json:"journal,omitempty"`
	LogTail    []string                   `json:"log_tail,omitempty"`
}

// ItemReport is one foreach item's record.
type ItemReport struct {
	Index      int                        `json:"index"`
	Item       any                        `json:"item"`
	Status     StepStatus                 `json:"status"`
	Attempts   int                        `json:"attempts"`
	StartedAt  *time.Time                 `json:"started_at,omitempty"`
	FinishedAt *time.Time                 `json:"finished_at,omitempty"`
	Params     map[string]any             `json:"params,omitempty"`
	Outputs    map[string]any             `json:"outputs,omitempty"`
	Error      string                     `json:"error,omitempty"`
	Links      []Link                     `json:"links,omitempty"`
	Journal    map[string]json.RawMessage `json:"journal,omitempty"`
}

const logTailLines = 20

// maxReportItems bounds a foreach step's items in a report rebuilt from a journal.
const maxReportItems = 1 << 20

// EventKind is what an event changes; the journal stores it as a short string.
type EventKind string

// The event kinds.
const (
	EventRun     EventKind = "run"
	EventSession EventKind = "session"
	EventStart   EventKind = "start"
	EventKV      EventKind = "kv"
	EventEnd     EventKind = "end"
	EventLink    EventKind = "link"
	EventLog     EventKind = "log"
	EventChoice  EventKind = "choice"
	EventWarning EventKind = "warning"
	EventReopen  EventKind = "reopen"
	EventLeft    EventKind = "left"
	EventRunEnd  EventKind = "run_end"
	EventItems   EventKind = "items"
)

// Event is one change to a run, as written to its journal.
type Event struct {
	Kind EventKind `json:"k"`
	Time time.Time `json:"t"`
	Step string    `json:"s,omitempty"`
	Item int       `json:"i,omitempty"` // foreach item index + 1; 0 for the step itself

	// run
	Header *Report `json:"header,omitempty"`
	// session
	Session *Session `json:"session,omitempty"`
	// start / end
	Attempt int            `json:"attempt,omitempty"`
	Params  map[string]any `json:"params,omitempty"`
	Status  string         `json:"status,omitempty"`
	Outputs map[string]any `json:"outputs,omitempty"`
	Error   string         `json:"error,omitempty"`
	Reason  string         `json:"reason,omitempty"`
	// kv
	Key   string          `json:"key,omitempty"`
	Value json.RawMessage `json:"value,omitempty"`
	// link
	Link *Link `json:"link,omitempty"`
	// log
	Line string `json:"line,omitempty"`
	// choice
	Choice *Choice `json:"choice,omitempty"`
	// items: the foreach items of a step
	Items []any `json:"items,omitempty"`
}

// newReport starts a report for a playbook.
func newReport(pb *Playbook) *Report {
	r := &Report{ReportVersion: 1, Status: RunRunning, index: map[string]*StepReport{}}
	for _, st := range pb.AllSteps() {
		sr := &StepReport{ID: st.ID, Type: st.Type, Name: st.Name, Role: st.Role, Section: st.Section, Phase: st.Phase, Status: StepPending}
		if st.Role != "" {
			sr.Performers = pb.Roles[st.Role]
		}
		r.Steps = append(r.Steps, sr)
		r.index[st.ID] = sr
	}
	return r
}

// Step returns a step's record.
func (r *Report) Step(id string) *StepReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.index == nil { // a report decoded from JSON
		r.reindex()
	}
	return r.index[id]
}

func (r *Report) reindex() {
	r.index = map[string]*StepReport{}
	for _, s := range r.Steps {
		r.index[s.ID] = s
	}
}

func (sr *StepReport) item(i int) *ItemReport {
	for len(sr.Items) < i {
		sr.Items = append(sr.Items, &ItemReport{Index: len(sr.Items), Status: StepPending})
	}
	return sr.Items[i-1]
}

// apply changes the report by one event. Replaying a journal's events rebuilds the report.
func (r *Report) apply(ev *Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// A journal is read back from disk: an event without its payload, or with an item
	// index no run could reach (a corrupted or hand-edited line), is ignored rather than
	// crashing a resume or allocating without bound.
	switch {
	case ev.Kind == EventRun && ev.Header == nil, ev.Kind == EventSession && ev.Session == nil,
		ev.Kind == EventLink && ev.Link == nil, ev.Kind == EventChoice && ev.Choice == nil,
		ev.Item > maxReportItems:
		return
	}
	switch ev.Kind {
	case EventRun:
		r.applyRun(ev)
	case EventSession:
		r.applySession(ev)
	case EventItems:
		r.applyItems(ev)
	case EventStart:
		r.applyStart(ev)
	case EventEnd:
		r.applyEnd(ev)
	case EventKV:
		r.applyKV(ev)
	case EventLink:
		r.applyLink(ev)
	case EventLog:
		r.applyLog(ev)
	case EventChoice:
		r.Choices = append(r.Choices, *ev.Choice)
	case EventLeft:
		r.LeftBehind = append(r.LeftBehind, LeftBehind{Step: ev.Step, What: ev.Reason})
	case EventWarning:
		r.Warnings = append(r.Warnings, Warning{Step: ev.Step, Message: ev.Reason, At: ev.Time})
	case EventReopen:
		r.applyReopen(ev)
	case EventRunEnd:
		r.applyRunEnd(ev)
	}
}

// applyRun starts the report from the run's header.
func (r *Report) applyRun(ev *Event) {
	h := ev.Header
	r.ReportVersion, r.RunID, r.Playbook, r.PlaybookSHA256, r.Product = 1, h.RunID, h.Playbook, h.PlaybookSHA256, h.Product
	r.Title, r.Mode, r.Actor, r.Inputs, r.PlanHash, r.Status, r.StartedAt = h.Title, h.Mode, h.Actor, h.Inputs, h.PlanHash, RunRunning, ev.Time
	r.Identities, r.People = h.Identities, h.People
	if len(h.Steps) > 0 {
		r.Steps = make([]*StepReport, len(h.Steps))
		for i, s := range h.Steps {
			c := *s
			r.Steps[i] = &c
		}
		r.reindex()
	}
}

// applySession opens a session: the run is running again, its last ending forgotten.
func (r *Report) applySession(ev *Event) {
	r.Sessions = append(r.Sessions, *ev.Session)
	r.Status = RunRunning
	r.FinishedAt = nil
	r.Reason, r.FailedStep = "", ""
	r.LeftBehind = nil // the run goes on: its next ending says what it leaves
}

// applyItems sets a foreach step's items, all pending.
func (r *Report) applyItems(ev *Event) {
	sr := r.index[ev.Step]
	if sr == nil {
		return
	}
	sr.Items = sr.Items[:0]
	for i, it := range ev.Items {
		sr.Items = append(sr.Items, &ItemReport{Index: i, Item: it, Status: StepPending})
	}
}

// applyStart marks an attempt of a step, or of one of its items, running.
func (r *Report) applyStart(ev *Event) {
	sr := r.index[ev.Step]
	if sr == nil {
		return
	}
	t := ev.Time
	if ev.Item > 0 {
		it := sr.item(ev.Item)
		it.Status, it.Attempts, it.Params, it.Error = StepRunning, ev.Attempt, ev.Params, ""
		if it.StartedAt == nil || ev.Attempt == 1 {
			it.StartedAt = &t
		}
		it.FinishedAt = nil
		if sr.Status != StepRunning {
			sr.Status, sr.StartedAt, sr.Error = StepRunning, &t, ""
		}
		return
	}
	sr.Status, sr.Attempts, sr.Error, sr.Skipped = StepRunning, ev.Attempt, "", ""
	if ev.Params != nil {
		sr.Params = ev.Params
	}
	if sr.StartedAt == nil || ev.Attempt <= 1 {
		sr.StartedAt = &t
	}
	sr.FinishedAt = nil
	if len(r.Sessions) > 0 {
		sr.Session = r.Sessions[len(r.Sessions)-1].N
	}
}

// applyEnd records how a step, or one of its items, ended.
func (r *Report) applyEnd(ev *Event) {
	sr := r.index[ev.Step]
	if sr == nil {
		return
	}
	t := ev.Time
	if ev.Item > 0 {
		it := sr.item(ev.Item)
		it.Status, it.Outputs, it.Error, it.FinishedAt = StepStatus(ev.Status), ev.Outputs, ev.Error, &t
		if ev.Attempt > 0 {
			it.Attempts = ev.Attempt
		}
		return
	}
	sr.Status, sr.Error, sr.FinishedAt = StepStatus(ev.Status), ev.Error, &t
	if ev.Outputs != nil {
		sr.Outputs = ev.Outputs
	}
	if ev.Attempt > 0 {
		sr.Attempts = ev.Attempt
	}
	if ev.Status == string(StepSkipped) {
		sr.Skipped = ev.Reason
	}
	if sr.StartedAt != nil {
		sr.DurationMS = t.Sub(*sr.StartedAt).Milliseconds()
	}
	if len(r.Sessions) > 0 && sr.Session == 0 {
		sr.Session = r.Sessions[len(r.Sessions)-1].N
	}
}

// applyKV keeps a value a step (or one of its items) recorded in its durable memory.
func (r *Report) applyKV(ev *Event) {
	sr := r.index[ev.Step]
	if sr == nil {
		return
	}
	journal := &sr.Journal
	if ev.Item > 0 {
		journal = &sr.item(ev.Item).Journal
	}
	if *journal == nil {
		*journal = map[string]json.RawMessage{}
	}
	(*journal)[ev.Key] = ev.Value
}

// applyLink adds a link to the run, its step and its item, once each.
func (r *Report) applyLink(ev *Event) {
	l := *ev.Link
	l.Step = ev.Step
	if sr := r.index[ev.Step]; sr != nil {
		if ev.Item > 0 {
			it := sr.item(ev.Item)
			it.Links = appendLink(it.Links, l)
		}
		sr.Links = appendLink(sr.Links, l)
	}
	r.Links = appendLink(r.Links, l)
}

// applyLog keeps the last logTailLines lines a step logged.
func (r *Report) applyLog(ev *Event) {
	sr := r.index[ev.Step]
	if sr == nil {
		return
	}
	sr.LogTail = append(sr.LogTail, ev.Line)
	if len(sr.LogTail) > logTailLines {
		sr.LogTail = sr.LogTail[len(sr.LogTail)-logTailLines:]
	}
}

// applyReopen makes an on_failure or finally step pending again: it runs again at the
// run's next ending. Its journal is kept (what it made, it finds again).
func (r *Report) applyReopen(ev *Event) {
	if sr := r.index[ev.Step]; sr != nil {
		*sr = StepReport{ID: sr.ID, Type: sr.Type, Name: sr.Name, Role: sr.Role, Performers: sr.Performers,
			Section: sr.Section, Phase: sr.Phase, Status: StepPending, Journal: sr.Journal}
	}
}

// applyRunEnd records how the run (and its last session) ended.
func (r *Report) applyRunEnd(ev *Event) {
	t := ev.Time
	r.Status, r.Reason, r.FinishedAt = RunStatus(ev.Status), ev.Reason, &t
	r.FailedStep = ev.Step
	r.DurationMS = t.Sub(r.StartedAt).Milliseconds()
	if n := len(r.Sessions); n > 0 {
		r.Sessions[n-1].EndedAt = &t
		r.Sessions[n-1].Status = r.Status
	}
}

func appendLink(list []Link, l Link) []Link {
	for _, x := range list {
		if x.URL == l.URL && x.Title == l.Title {
			return list
		}
	}
	return append(list, l)
}

// marshal encodes the report.
func (r *Report) marshal() ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return json.MarshalIndent(r, "", "  ")
}

// Clone returns a deep copy (through JSON) for callers that keep it.
func (r *Report) Clone() *Report {
	b, _ := r.marshal()
	var out Report
	_ = json.Unmarshal(b, &out)
	out.reindex()
	return &out
}

// StepsBy returns the steps with the given status.
func (r *Report) StepsBy(status StepStatus) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, s := range r.Steps {
		if s.Status == status {
			out = append(out, s.ID)
		}
	}
	return out
}

// Redactor replaces secrets in text with "***".
type Redactor struct {
	mu      sync.RWMutex
	secrets []string
}

// Add registers a secret value (values shorter than 4 characters are ignored: too common
// to redact without destroying the text).
func (rd *Redactor) Add(s string) {
	if len(s) < 4 {
		return
	}
	rd.mu.Lock()
	defer rd.mu.Unlock()
	for _, x := range rd.secrets {
		if x == s {
			return
		}
	}
	rd.secrets = append(rd.secrets, s)
	sort.Slice(rd.secrets, func(i, j int) bool { return len(rd.secrets[i]) > len(rd.secrets[j]) })
}

// String redacts a string.
func (rd *Redactor) String(s string) string {
	if rd == nil {
		return s
	}
	rd.mu.RLock()
	defer rd.mu.RUnlock()
	for _, x := range rd.secrets {
		if strings.Contains(s, x) {
			s = strings.ReplaceAll(s, x, "***")
		}
	}
	return s
}

// Value redacts every string inside a JSON-shaped value.
func (rd *Redactor) Value(v any) any {
	switch x := v.(type) {
	case string:
		return rd.String(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = rd.Value(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = rd.Value(e)
		}
		return out
	}
	return v
}
