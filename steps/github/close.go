package github

import (
	"context"
	"fmt"
	"strings"

	"github.com/cessda/runbook/engine"
	gh "github.com/google/go-github/v60/github"
)

// Close posts a last comment, closes the release issue and the milestone.
type Close struct {
	Connection     string `json:"connection" desc:"github connection to use"`
	Repo           string `json:"repo" desc:"tracker repository, owner/name" required:"true"`
	Issue          int    `json:"issue" desc:"number of the release issue" required:"true"`
	Milestone      string `json:"milestone" desc:"milestone title to close (empty: the issue's milestone)"`
	ReportURL      string `json:"report_url" desc:"link to the release report"`
	ReleaseURL     string `json:"release_url" desc:"link to the GitHub release"`
	Comment        string `json:"comment" desc:"text of the last comment" default:"The release is published and announced; closing."`
	CloseMilestone bool   `json:"close_milestone" desc:"close the milestone too" default:"true"`
}

// Plan reads the issue and milestone; it writes nothing.
func (p *Close) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	pl := engine.Plan{Action: fmt.Sprintf("comment on and close %s#%s and its milestone", sc.Show("repo", p.Repo), sc.Show("issue", p.Issue))}
	if sc.Unknown("repo") || sc.Unknown("issue") {
		return pl, nil
	}
	c, o, r, err := repoClient(sc, p.Connection, p.Repo)
	if err != nil {
		return engine.Plan{}, err
	}
	is, err := c.getIssue(ctx, o, r, p.Issue)
	if err != nil {
		return engine.Plan{}, err
	}
	if is.GetState() == "closed" {
		pl.Details = append(pl.Details, "the issue is already closed")
	}
	return pl, nil
}

// Run comments (once), closes the issue as completed, and closes the milestone.
func (p *Close) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	c, o, r, err := repoClient(sc, p.Connection, p.Repo)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString(p.Comment)
	if p.ReleaseURL != "" {
		fmt.Fprintf(&b, "\n\n- Release: %s", p.ReleaseURL)
	}
	if p.ReportURL != "" {
		fmt.Fprintf(&b, "\n- Release report: %s", p.ReportURL)
	}
	if _, _, _, err := c.upsertComment(ctx, o, r, p.Issue, "close", b.String()); err != nil {
		return nil, err
	}
	is, err := c.getIssue(ctx, o, r, p.Issue)
	if err != nil {
		return nil, err
	}
	if is.GetState() != "closed" {
		if is, err = c.editIssue(ctx, o, r, p.Issue, &gh.IssueRequest{State: gh.String("closed"), StateReason: gh.String("completed")}); err != nil {
			return nil, err
		}
		sc.Logf("closed %s", is.GetHTMLURL())
	}
	msClosed := false
	if p.CloseMilestone {
		var ms *gh.Milestone
		if p.Milestone != "" {
			if ms, err = c.findMilestone(ctx, o, r, p.Milestone); err != nil {
				return nil, err
			}
			if ms == nil {
				return nil, fmt.Errorf("github.close: no milestone %q in %s", p.Milestone, p.Repo)
			}
		} else {
			ms = is.GetMilestone()
		}
		if ms != nil {
			if ms.GetState() != "closed" {
				n := ms.GetNumber()
				if _, err := c.call(ctx, "close milestone "+ms.GetTitle(), func(ctx context.Context) (*gh.Response, error) {
					_, rsp, err := c.gh.Issues.EditMilestone(ctx, o, r, n, &gh.Milestone{State: gh.String("closed")})
					return rsp, err
				}); err != nil {
					return nil, err
				}
				sc.Logf("closed milestone %s", ms.GetTitle())
			}
			msClosed = true
		}
	}
	return engine.Outputs{"issue_closed": true, "milestone_closed": msClosed}, nil
}

// Comment posts or updates the one comment identified by a hidden marker.
type Comment struct {
	Connection string `json:"connection" desc:"github connection to use"`
	Repo       string `json:"repo" desc:"repository, owner/name" required:"true"`
	Issue      int    `json:"issue" desc:"issue or pull request number" required:"true"`
	Marker     string `json:"marker" desc:"identifies the comment (kept in a hidden HTML comment)" required:"true"`
	Body       string `json:"body" desc:"comment text (Markdown)" required:"true"`
}

// Plan looks for the comment; it writes nothing.
func (p *Comment) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	pl := engine.Plan{Action: fmt.Sprintf("post or update the %q comment on %s#%s", p.Marker, sc.Show("repo", p.Repo), sc.Show("issue", p.Issue))}
	if sc.Unknown("repo") || sc.Unknown("issue") || sc.Unknown("body") {
		return pl, nil
	}
	c, o, r, err := repoClient(sc, p.Connection, p.Repo)
	if err != nil {
		return engine.Plan{}, err
	}
	cs, err := c.listComments(ctx, o, r, p.Issue)
	if err != nil {
		return engine.Plan{}, err
	}
	tag := markerComment(p.Marker)
	for _, cm := range cs {
		if strings.Contains(cm.GetBody(), tag) {
			if cm.GetBody() == p.Body+"\n\n"+tag {
				pl.Action, pl.NoChange = "comment "+p.Marker+" is up to date", true
			} else {
				pl.Action = fmt.Sprintf("update comment %s (%s)", p.Marker, cm.GetHTMLURL())
			}
		}
	}
	return pl, nil
}

// Run posts or updates the comment.
func (p *Comment) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	c, o, r, err := repoClient(sc, p.Connection, p.Repo)
	if err != nil {
		return nil, err
	}
	cm, created, _, err := c.upsertComment(ctx, o, r, p.Issue, p.Marker, p.Body)
	if err != nil {
		return nil, err
	}
	return engine.Outputs{"id": int(cm.GetID()), "url": cm.GetHTMLURL(), "created": created}, nil
}
