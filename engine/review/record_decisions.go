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

func decisions(r *engine.Report) []decisionView {
	var out []decisionView
	approve, stable := approvals(r)
	stepName := func(s *engine.StepReport) string {
		if s.Name != "" {
			return s.Name
		}
		return s.ID
	}
	link := func(s *engine.StepReport, u string) linkView {
		if u == "" {
			for _, l := range s.Links {
				u = l.URL
				break
			}
		}
		if u == "" {
			return linkView{}
		}
		return linkView{Title: "comment", URL: u, Safe: safeURL(u)}
	}
	for _, s := range r.Steps {
		switch {
		case s.Type == "github.approval" && s.Status == engine.StepSucceeded:
			d := decisionView{Who: person(r, outStr(s.Outputs, "approver")), Step: stepName(s), PlanHash: outStr(s.Outputs, "plan_hash"),
				Link: link(s, outStr(s.Outputs, "comment_url")), Key: shownDone.Key, What: "approved"}
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
			out = append(out, d)
		case s.Type == "github.approval" && s.Status == engine.StepRejected:
			by, why := refusal(s)
			d := decisionView{Who: person(r, by), Step: stepName(s), Comment: why, Link: link(s, ""), Key: shownRefused.Key, What: "refused the release"}
			if s == stable || r.Status == engine.RunRolledBack {
				d.What = "asked for a revert"
			}
			if s.FinishedAt != nil {
				d.at = *s.FinishedAt
			}
			out = append(out, d)
		case s.Type == "manual" && s.Status == engine.StepSucceeded && outStr(s.Outputs, "confirmed_by") != "":
			d := decisionView{Who: person(r, outStr(s.Outputs, "confirmed_by")), Step: stepName(s), Key: shownDone.Key, What: "confirmed"}
			if at := parseTime(outStr(s.Outputs, "confirmed_at")); at != nil {
				d.at = *at
			}
			out = append(out, d)
		case s.Type == "schedule.window" && s.Status == engine.StepSucceeded && outStr(s.Outputs, "allowed_by") != "":
			d := decisionView{Who: person(r, outStr(s.Outputs, "allowed_by")), Step: stepName(s), Comment: outStr(s.Outputs, "reason"),
				Key: "waiting", What: "allowed the release outside the window"}
			if s.FinishedAt != nil {
				d.at = *s.FinishedAt
			}
			out = append(out, d)
		}
	}
	words := map[string]string{"retry": "retried", "skip": "skipped", "rollback": "rolled back", "stop": "stopped",
		"confirm": "confirmed", "refuse": "refused"}
	keys := map[string]string{"skip": shownSkipped.Key, "rollback": shownRolledBack.Key, "stop": shownInterrupted.Key,
		"refuse": shownRefused.Key, "confirm": shownDone.Key, "retry": shownRunning.Key}
	for _, c := range r.Choices {
		what := words[c.Action]
		if what == "" {
			what = c.Action
		}
		step := c.Step
		if s := r.Step(c.Step); s != nil && s.Name != "" {
			step = s.Name
		}
		out = append(out, decisionView{Who: person(r, c.By), Step: step, What: what, Comment: c.Reason, Key: keys[c.Action], at: c.At})
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

// actingAs: "github as runbook-bot (runbook bot)".
func actingAs(r *engine.Report, conn, login string) string {
	return strings.TrimSpace(conn + " as " + person(r, login))
}
