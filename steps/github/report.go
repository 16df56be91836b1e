package github

import (
	"context"
	"fmt"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/engine/review"
)

// ReleaseReport posts the run's release report, rendered as Markdown, as one comment on
// the release issue (updated in place on a re-run), since the procedure asks the release
// issue to link the release report.
type ReleaseReport struct {
	Connection string `json:"connection" desc:"github connection to use"`
	Repo       string `json:"repo" desc:"tracker repository, owner/name" required:"true"`
	Issue      int    `json:"issue" desc:"number of the release issue" required:"true"`
	Marker     string `json:"marker" desc:"hidden marker that identifies the report comment" default:"release-report"`
}

// Plan says where the report goes; it writes nothing.
func (p *ReleaseReport) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	return engine.Plan{Action: fmt.Sprintf("post the release report (as it stands at this step) on %s#%s", sc.Show("repo", p.Repo), sc.Show("issue", p.Issue))}, nil
}

// Run renders the report so far and posts or updates the comment.
func (p *ReleaseReport) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	if sc.Report == nil {
		return nil, fmt.Errorf("github.release_report: no run report to post (this step runs inside a run)")
	}
	rep := sc.Report()
	c, o, r, err := repoClient(sc, p.Connection, p.Repo)
	if err != nil {
		return nil, err
	}
	cm, created, _, err := c.upsertComment(ctx, o, r, p.Issue, p.Marker, review.ReportMarkdown(rep))
	if err != nil {
		return nil, err
	}
	if created {
		sc.Logf("posted the release report on %s#%d", p.Repo, p.Issue)
	} else {
		sc.Logf("updated the release report on %s#%d", p.Repo, p.Issue)
	}
	sc.Link("Release report", cm.GetHTMLURL())
	return engine.Outputs{"url": cm.GetHTMLURL()}, nil
}

func init() {
	engine.Register(engine.StepType{
		Name:       "github.release_report",
		Summary:    "Post the run's release report (Markdown) as one comment on the release issue",
		New:        func() engine.Step { return &ReleaseReport{} },
		Connection: "github",
		Outputs:    []engine.Output{{Name: "url", Type: engine.TypeString, Desc: "URL of the report comment"}},
	})
}
