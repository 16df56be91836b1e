package github

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cessda/runbook/engine"
	gh "github.com/google/go-github/v60/github"
)

// Approval waits for a written /approve (or /reject <reason>) in the release issue.
type Approval struct {
	Connection        string          `json:"connection" desc:"github connection to use"`
	Repo              string          `json:"repo" desc:"tracker repository, owner/name" required:"true"`
	Issue             int             `json:"issue" desc:"number of the release issue" required:"true"`
	Role              string          `json:"role" desc:"playbook role whose members may approve" default:"service_owner"`
	Approvers         []string        `json:"approvers" desc:"further logins who may approve, besides the role's members"`
	AllowSelfApproval bool            `json:"allow_self_approval" desc:"let the person running the release approve it"`
	Wait              bool            `json:"wait" desc:"keep polling (true) or end the run in status waiting, to be resumed (false)" default:"true"`
	Timeout           engine.Duration `json:"timeout" desc:"give up after this long without a decision" default:"168h"`
	PollInterval      engine.Duration `json:"poll_interval" desc:"time between polls (conditional requests: free when nothing changed)" default:"1m"`
	RequestComment    bool            `json:"request_comment" desc:"post one comment asking the approvers (and again when the plan changed)" default:"true"`
	// The commands let one issue carry several gates: the release approval (/approve,
	// /reject) and, after deploying, the service owner's verdict (/stable, /revert).
	ApproveCommand string `json:"approve_command" desc:"the comment that approves, e.g. /stable for the post-deployment gate" default:"/approve"`
	RejectCommand  string `json:"reject_command" desc:"the comment that refuses, followed by the reason, e.g. /revert" default:"/reject"`
	Question       string `json:"question" desc:"what the request comment asks" default:"please approve this release"`
}

// Validate checks the commands.
func (p *Approval) Validate() error {
	for _, c := range []string{p.ApproveCommand, p.RejectCommand} {
		if !strings.HasPrefix(c, "/") || strings.ContainsAny(c, " \t\n") || len(c) < 2 {
			return fmt.Errorf("command %q must be a slash word such as /approve", c)
		}
	}
	if p.ApproveCommand == p.RejectCommand {
		return fmt.Errorf("approve_command and reject_command are both %q", p.ApproveCommand)
	}
	return nil
}

// decision is what the comments say.
type decision struct {
	approve            bool
	by, reason, url    string
	at                 time.Time
	ignored            []string
	stale, edited, own int
}

func (p *Approval) approvers(sc *engine.StepContext) map[string]bool {
	m := map[string]bool{}
	for _, l := range sc.Roles[p.Role] {
		m[strings.ToLower(l)] = true
	}
	for _, l := range p.Approvers {
		m[strings.ToLower(l)] = true
	}
	return m
}

// decide reads the comments in order and returns the first decision that counts.
//
// A comment counts only when: it starts with /approve or /reject; its author is an
// approver (others are noted and ignored); the author is not the actor unless self
// approval is allowed; it was posted at or after the plan was posted in the issue
// (so it is about this plan); and it was never edited (updated_at == created_at), since
// an edit could turn an old comment into an approval of something its author never saw.
func (p *Approval) decide(sc *engine.StepContext, comments []*gh.IssueComment, posted time.Time) decision {
	var d decision
	ok := p.approvers(sc)
	for _, cm := range comments {
		body := strings.TrimSpace(cm.GetBody())
		first, _, _ := strings.Cut(body, "\n")
		first = strings.TrimSpace(first)
		var approve bool
		switch {
		case first == p.ApproveCommand || strings.HasPrefix(first, p.ApproveCommand+" "):
			approve = true
		case first == p.RejectCommand || strings.HasPrefix(first, p.RejectCommand+" ") || strings.HasPrefix(first, p.RejectCommand+":"):
		default:
			continue
		}
		who := cm.GetUser().GetLogin()
		created, updated := cm.GetCreatedAt().Time, cm.GetUpdatedAt().Time
		switch {
		case !ok[strings.ToLower(who)]:
			d.ignored = append(d.ignored, fmt.Sprintf("%s (%s) is not an approver (role %s)", who, first, p.Role))
			continue
		case strings.EqualFold(who, sc.Actor) && !p.AllowSelfApproval:
			d.own++
			d.ignored = append(d.ignored, fmt.Sprintf("%s runs this release and may not approve it (allow_self_approval is false)", who))
			continue
		case created.Before(posted):
			d.stale++
			continue
		case updated.After(created):
			d.edited++
			d.ignored = append(d.ignored, fmt.Sprintf("%s's %s was edited after posting; post a new comment", who, first))
			continue
		}
		d.approve, d.by, d.at, d.url = approve, who, created, cm.GetHTMLURL()
		if !approve {
			reason := strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(first, p.RejectCommand), ":"), " "))
			if rest := strings.TrimSpace(strings.TrimPrefix(body, first)); rest != "" {
				reason = strings.TrimSpace(reason + "\n" + rest)
			}
			if reason == "" {
				reason = "(no reason given)"
			}
			d.reason = reason
		}
		return d
	}
	return d
}

// Plan says who may approve; it writes nothing.
func (p *Approval) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	var who []string
	for l := range p.approvers(sc) {
		who = append(who, l)
	}
	if len(who) == 0 {
		return engine.Plan{}, fmt.Errorf("github.approval: nobody may approve: role %q has no members and approvers is empty", p.Role)
	}
	return engine.Plan{Action: fmt.Sprintf("wait for "+p.ApproveCommand+" in %s#%s by %s (role %s), at most %s", sc.Show("repo", p.Repo), sc.Show("issue", p.Issue), strings.Join(who, ", "), p.Role, p.Timeout),
		Details: []string{"the approval is bound to plan hash " + sc.PlanHash}}, nil
}

// Run waits for the decision.
func (p *Approval) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	if len(p.approvers(sc)) == 0 {
		return nil, fmt.Errorf("github.approval: nobody may approve: role %q has no members and approvers is empty", p.Role)
	}
	var prev map[string]any
	if sc.Recall("approval", &prev) && prev["plan_hash"] == sc.PlanHash {
		sc.Logf("approval already recorded: %v by %v", prev["approved_at"], prev["approver"])
		return engine.Outputs(prev), nil
	}
	c, o, r, err := repoClient(sc, p.Connection, p.Repo)
	if err != nil {
		return nil, err
	}
	start := sc.Now()
	var startRec time.Time
	if sc.Recall("approval_wait_started", &startRec) && sc.PlanHash != "" {
		start = startRec // a resumed wait keeps its original timeout
	} else {
		_ = sc.Record("approval_wait_started", start)
	}
	noted := map[string]bool{}
	asked := false
	for {
		d, url, err := p.poll(ctx, sc, c, o, r, &asked)
		if err != nil {
			if ok, _ := engine.IsTransient(err); !ok {
				return nil, err
			}
			after, perr := pollError(sc, err, start, p.Timeout.D())
			if perr != nil {
				return nil, perr
			}
			if err := sc.Sleep(ctx, max(after, p.PollInterval.D())); err != nil {
				return nil, err
			}
			continue
		}
		for _, n := range d.ignored {
			if !noted[n] {
				noted[n] = true
				sc.Logf("ignored: %s", n)
			}
		}
		if d.by != "" {
			if !d.approve {
				sc.Logf("rejected by %s: %s (%s)", d.by, d.reason, d.url)
				sc.Link("Rejection", d.url)
				return nil, engine.Rejected(d.by, d.reason)
			}
			out := engine.Outputs{"approver": d.by, "approved_at": d.at.UTC().Format(time.RFC3339), "comment_url": d.url, "plan_hash": sc.PlanHash, "ignored": d.ignored}
			if out["ignored"] == nil {
				out["ignored"] = []string{}
			}
			_ = sc.Record("approval", out)
			sc.Logf("approved by %s at %s", d.by, out["approved_at"])
			sc.Link("Approval", d.url)
			return out, nil
		}
		if !p.Wait || sc.GatesEndRun {
			return nil, engine.Waiting("waiting for %s by %s in %s", p.ApproveCommand, p.Role, url)
		}
		if sc.Now().Sub(start) >= p.Timeout.D() {
			return nil, fmt.Errorf("github.approval: no approval in %s within %s; ask the %s to comment %s (or %s <reason>)", url, p.Timeout, p.Role, p.ApproveCommand, p.RejectCommand)
		}
		if err := sc.Sleep(ctx, p.PollInterval.D()); err != nil {
			return nil, err
		}
	}
}

// poll reads the issue and its comments (conditional requests) and decides.
func (p *Approval) poll(ctx context.Context, sc *engine.StepContext, c *client, o, r string, asked *bool) (decision, string, error) {
	is, err := c.getIssue(ctx, o, r, p.Issue)
	if err != nil {
		return decision{}, "", err
	}
	url := is.GetHTMLURL()
	hash, posted, ok := readPlan(is.GetBody())
	if !ok || hash != sc.PlanHash {
		// The issue shows another plan: post this one; approvals of the old one are stale.
		sc.Logf("release issue shows plan %q, this run's plan is %q: updating it; earlier approvals are stale", hash, sc.PlanHash)
		is, err = c.editBody(ctx, o, r, p.Issue, func(b string) (string, error) { return setPlan(b, sc.PlanHash, sc.Now()), nil })
		if err != nil {
			return decision{}, url, err
		}
		_, posted, _ = readPlan(is.GetBody())
		if ok && p.RequestComment {
			msg := fmt.Sprintf("The plan of this release changed (hash `%s`, was `%s`). Approvals given before %s are stale: please review and comment `%s` again, or `%s <reason>`.", sc.PlanHash, hash, posted.Format(time.RFC3339), p.ApproveCommand, p.RejectCommand)
			if _, _, _, err := c.upsertComment(ctx, o, r, p.Issue, "plan-changed plan="+sc.PlanHash+" cmd="+p.ApproveCommand, msg); err != nil {
				return decision{}, url, err
			}
		}
	}
	cs, err := c.listComments(ctx, o, r, p.Issue)
	if err != nil {
		return decision{}, url, err
	}
	d := p.decide(sc, cs, posted)
	if d.by == "" && p.RequestComment && !*asked {
		var who []string
		for l := range p.approvers(sc) {
			who = append(who, "@"+l)
		}
		msg := fmt.Sprintf("%s: %s (plan hash `%s`): comment `%s`, or `%s <reason>`.", strings.Join(sortStrings(who), " "), p.Question, sc.PlanHash, p.ApproveCommand, p.RejectCommand)
		// One request per run: a new attempt at the release asks in a new comment (people
		// are notified of new comments, not of edited ones); a resumed run finds its own.
		if _, _, _, err := c.upsertComment(ctx, o, r, p.Issue, "approval-request plan="+sc.PlanHash+" cmd="+p.ApproveCommand+" run="+sc.RunID, msg); err != nil {
			return decision{}, url, err
		}
		*asked = true
	}
	return d, url, nil
}

func sortStrings(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}
