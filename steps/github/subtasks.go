package github

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/cessda/runbook/engine"
)

// SubtasksDone checks that the pre-release activities, the release's subtask issues,
// are concluded (closed). It only reads; while any is open the run waits for a person
// to close it, or to skip the step with a reason.
type SubtasksDone struct {
	Connection string `json:"connection" desc:"github connection to use"`
	Repo       string `json:"repo" desc:"tracker repository, owner/name" required:"true"`
	Issue      int    `json:"issue" desc:"number of the release issue" required:"true"`
	Subtasks   []int  `json:"subtasks" desc:"subtask issue numbers (github.subtask_issues' numbers output); default: those linked from the release issue"`
}

// subtaskLinkRE is one list item of the release issue's subtasks block: "- #12 Title"
// as github.subtask_issues writes it (a person may have made it a task, "- [x] #12").
var subtaskLinkRE = regexp.MustCompile(`(?m)^\s*[-*+]\s+(?:\[[ xX]\]\s+)?#(\d+)\b`)

// linkedSubtasks returns the issue numbers listed between the subtasks markers of a
// release issue's body, in order, each once.
func linkedSubtasks(body string) []int {
	i := strings.Index(body, subtasksStart)
	j := strings.Index(body, subtasksEnd)
	if i < 0 || j < i {
		return nil
	}
	var out []int
	for _, m := range subtaskLinkRE.FindAllStringSubmatch(body[i+len(subtasksStart):j], -1) {
		if n, err := strconv.Atoi(m[1]); err == nil {
			out = append(out, n)
		}
	}
	return dedupe(out)
}

func dedupe(ns []int) []int {
	seen := map[int]bool{}
	var out []int
	for _, n := range ns {
		if n > 0 && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// numbers are the subtasks to check: the given ones, else those the release issue links.
func (p *SubtasksDone) numbers(ctx context.Context, c *client, o, r string) ([]int, error) {
	if ns := dedupe(p.Subtasks); len(ns) > 0 {
		return ns, nil
	}
	is, err := c.getIssue(ctx, o, r, p.Issue)
	if err != nil {
		return nil, err
	}
	ns := linkedSubtasks(is.GetBody())
	if len(ns) == 0 {
		// Nothing to check is a playbook mistake, not concluded activities.
		return nil, fmt.Errorf("github.subtasks_done: release issue #%d in %s links no subtask issue (its list between %s and %s is empty or missing): run github.subtask_issues before this step, or give the issues in subtasks", p.Issue, p.Repo, subtasksStart, subtasksEnd)
	}
	return ns, nil
}

// subtaskState is what the subtasks are now.
type subtaskState struct {
	all, closed []int
	open        []string // "#12 Title (open)"
	lines       []string // one per subtask, for the plan
}

func (p *SubtasksDone) look(ctx context.Context, c *client, o, r string) (subtaskState, error) {
	var st subtaskState
	ns, err := p.numbers(ctx, c, o, r)
	if err != nil {
		return st, err
	}
	st.all, st.closed = ns, []int{}
	for _, n := range ns {
		is, err := c.getIssue(ctx, o, r, n)
		if err != nil {
			return st, err
		}
		line := fmt.Sprintf("#%d %s (%s)", n, strings.TrimSpace(is.GetTitle()), is.GetState())
		if is.GetState() == "closed" {
			st.closed = append(st.closed, n)
			if reason := is.GetStateReason(); reason != "" && reason != "completed" {
				line = fmt.Sprintf("#%d %s (closed as %s)", n, strings.TrimSpace(is.GetTitle()), strings.ReplaceAll(reason, "_", " "))
			}
		} else {
			st.open = append(st.open, line)
		}
		st.lines = append(st.lines, line)
	}
	return st, nil
}

// Plan says which subtasks are open now; it writes nothing.
func (p *SubtasksDone) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	pl := engine.Plan{Action: fmt.Sprintf("check that the subtask issues of release issue #%s in %s are closed (pre-release activities concluded); wait while any is open", sc.Show("issue", p.Issue), sc.Show("repo", p.Repo)), NoChange: true}
	given := sc.Unknown("subtasks") || len(p.Subtasks) > 0
	if sc.Unknown("repo") || sc.Unknown("subtasks") || (!given && sc.Unknown("issue")) {
		return pl, nil
	}
	c, o, r, err := repoClient(sc, p.Connection, p.Repo)
	if err != nil {
		return engine.Plan{}, err
	}
	st, err := p.look(ctx, c, o, r)
	if err != nil {
		return engine.Plan{}, err
	}
	pl.Details = st.lines
	if len(st.open) > 0 {
		pl.Details = append(pl.Details, fmt.Sprintf("%d of %d open now: the run waits until they are closed, or the step is skipped with a reason", len(st.open), len(st.all)))
	}
	return pl, nil
}

// Run checks the subtasks once: all closed is success, any open puts the run in status
// waiting, to be resumed once they are closed (or skipped with a reason).
func (p *SubtasksDone) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	c, o, r, err := repoClient(sc, p.Connection, p.Repo)
	if err != nil {
		return nil, err
	}
	st, err := p.look(ctx, c, o, r)
	if err != nil {
		return nil, err
	}
	if len(st.open) > 0 {
		run, step := sc.RunID, sc.StepID
		if run == "" {
			run = "RUN"
		}
		if step == "" {
			step = "STEP"
		}
		return nil, engine.Waiting("pre-release activities not concluded: %s: close them, or skip this step with a reason: runbook resume %s --skip %s --reason \"...\"", strings.Join(st.open, ", "), run, step)
	}
	for _, l := range st.lines {
		sc.Logf("subtask %s", l)
	}
	sc.Logf("pre-release activities concluded: %d subtask issues closed", len(st.closed))
	return engine.Outputs{"closed": st.closed, "count": len(st.closed)}, nil
}
