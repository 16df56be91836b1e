package review

import (
	"sort"
	"strings"
	"time"

	"github.com/cessda/runbook/engine"
)

// decisionView is one decision a person made: an approval or refusal at a gate, a
// confirmation, a skip, a retry, a rollback, a release outside the window.
type decisionView struct {
	Who, When, What, Step, Comment, PlanHash string
	Link                                     linkView // the comment that carries the decision
	Key                                      string   // display key: done, refused, skipped…
	at                                       time.Time
}

// decisions lists the decisions people made, oldest first: those the gates' outputs
// record, then the choices made at failed steps.
func decisions(r *engine.Report) []decisionView {
	var out []decisionView
	approve, stable := approvals(r)
	for _, s := range r.Steps {
		if d, ok := gateDecision(r, s, approve, stable); ok {
			out = append(out, d)
		}
	}
	for _, c := range r.Choices {
		out = append(out, choiceDecision(r, c))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
	for i := range out {
		t := out[i].at
		out[i].When = fmtWhen(&t)
		if out[i].Key == "" {
			out[i].Key = "todo"
		}
	}
	return out
}

// gateDecision reads the decision a gate step records, if it records one: an approval
// or refusal, a confirmation, a release allowed outside its window.
func gateDecision(r *engine.Report, s, approve, stable *engine.StepReport) (decisionView, bool) {
	switch {
	case s.Type == "github.approval" && s.Status == engine.StepSucceeded:
		return approvalDecision(r, s, approve, stable), true
	case s.Type == "github.approval" && s.Status == engine.StepRejected:
		return refusalDecision(r, s, stable), true
	case s.Type == "manual" && s.Status == engine.StepSucceeded && outStr(s.Outputs, "confirmed_by") != "":
		d := decisionView{Who: person(r, outStr(s.Outputs, "confirmed_by")), Step: stepName(s), Key: shownDone.Key, What: "confirmed"}
		if at := parseTime(outStr(s.Outputs, "confirmed_at")); at != nil {
			d.at = *at
		}
		return d, true
	case s.Type == "schedule.window" && s.Status == engine.StepSucceeded && outStr(s.Outputs, "allowed_by") != "":
		d := decisionView{Who: person(r, outStr(s.Outputs, "allowed_by")), Step: stepName(s), Comment: outStr(s.Outputs, "reason"),
			Key: "waiting", What: "allowed the release outside the window"}
		if s.FinishedAt != nil {
			d.at = *s.FinishedAt
		}
		return d, true
	}
	return decisionView{}, false
}

// approvalDecision: the release approved, or confirmed stable, by whom and when.
func approvalDecision(r *engine.Report, s, approve, stable *engine.StepReport) decisionView {
	d := decisionView{Who: person(r, outStr(s.Outputs, "approver")), Step: stepName(s), PlanHash: outStr(s.Outputs, "plan_hash"),
		Link: commentLink(s, outStr(s.Outputs, "comment_url")), Key: shownDone.Key, What: "approved"}
	if s == stable {
		d.What = "confirmed stable"
	} else if s == approve {
		d.What = "approved the release"
	}
	if at := parseTime(outStr(s.Outputs, "approved_at")); at != nil {
		d.at = *at
	} else if s.FinishedAt != nil {
		d.at = *s.FinishedAt
	}
	return d
}

// refusalDecision: the release refused, or a revert asked for once production changed.
func refusalDecision(r *engine.Report, s, stable *engine.StepReport) decisionView {
	by, why := refusal(s)
	d := decisionView{Who: person(r, by), Step: stepName(s), Comment: why, Link: commentLink(s, ""), Key: shownRefused.Key, What: "refused the release"}
	if s == stable || r.Status == engine.RunRolledBack {
		d.What = "asked for a revert"
	}
	if s.FinishedAt != nil {
		d.at = *s.FinishedAt
	}
	return d
}

// The words and display keys of the choices a person makes at a failed step.
var (
	choiceWords = map[string]string{"retry": "retried", "skip": "skipped", "rollback": "rolled back", "stop": "stopped",
		"confirm": "confirmed", "refuse": "refused"}
	choiceKeys = map[string]string{"skip": shownSkipped.Key, "rollback": shownRolledBack.Key, "stop": shownInterrupted.Key,
		"refuse": shownRefused.Key, "confirm": shownDone.Key, "retry": shownRunning.Key}
)

// choiceDecision: a retry, skip, rollback… chosen at a step, named by the step's name.
func choiceDecision(r *engine.Report, c engine.Choice) decisionView {
	what := choiceWords[c.Action]
	if what == "" {
		what = c.Action
	}
	step := c.Step
	if s := r.Step(c.Step); s != nil && s.Name != "" {
		step = s.Name
	}
	return decisionView{Who: person(r, c.By), Step: step, What: what, Comment: c.Reason, Key: choiceKeys[c.Action], at: c.At}
}

func stepName(s *engine.StepReport) string {
	if s.Name != "" {
		return s.Name
	}
	return s.ID
}

// commentLink links the comment that carries a decision: u, else the step's first link.
func commentLink(s *engine.StepReport, u string) linkView {
	if u == "" && len(s.Links) > 0 {
		u = s.Links[0].URL
	}
	if u == "" {
		return linkView{}
	}
	return linkView{Title: "comment", URL: u, Safe: safeURL(u)}
}

// actingAs: "github as runbook-bot (runbook bot)".
func actingAs(r *engine.Report, conn, login string) string {
	return strings.TrimSpace(conn + " as " + person(r, login))
}
