package github

import (
	"context"
	"fmt"

	"github.com/cessda/runbook/engine"
	gh "github.com/google/go-github/v60/github"
)

// Release creates (as a draft) and publishes the GitHub release of a tag.
type Release struct {
	Connection string `json:"connection" desc:"github connection to use"`
	Repo       string `json:"repo" desc:"repository, owner/name" required:"true"`
	Tag        string `json:"tag" desc:"the release's tag" required:"true"`
	Name       string `json:"name" desc:"release title; default the tag"`
	Body       string `json:"body" desc:"release notes (Markdown)"`
	Target     string `json:"target" desc:"commitish the tag is created from if it does not exist yet"`
	Prerelease bool   `json:"prerelease" desc:"mark as a pre-release"`
	Draft      bool   `json:"draft" desc:"leave the release as a draft (do not publish)"`
}

// findRelease lists releases (drafts included: get-by-tag hides drafts) for the tag.
func (c *client) findRelease(ctx context.Context, o, r, tag string) (*gh.RepositoryRelease, error) {
	opt := &gh.ListOptions{PerPage: 100}
	for {
		var rs []*gh.RepositoryRelease
		resp, err := c.call(ctx, "list releases of "+o+"/"+r, func(ctx context.Context) (*gh.Response, error) {
			var rsp *gh.Response
			var err error
			rs, rsp, err = c.gh.Repositories.ListReleases(ctx, o, r, opt)
			return rsp, err
		})
		if err != nil {
			return nil, err
		}
		for _, rl := range rs {
			if rl.GetTagName() == tag {
				return rl, nil
			}
		}
		if resp.NextPage == 0 {
			return nil, nil
		}
		opt.Page = resp.NextPage
	}
}

// Plan looks for the release; it writes nothing.
func (p *Release) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	if sc.Unknown("repo") || sc.Unknown("tag") {
		return engine.Plan{Action: fmt.Sprintf("create and publish the GitHub release %s of %s", sc.Show("tag", p.Tag), sc.Show("repo", p.Repo))}, nil
	}
	c, o, r, err := repoClient(sc, p.Connection, p.Repo)
	if err != nil {
		return engine.Plan{}, err
	}
	rl, err := c.findRelease(ctx, o, r, p.Tag)
	if err != nil {
		return engine.Plan{}, err
	}
	switch {
	case rl == nil:
		return engine.Plan{Action: fmt.Sprintf("create the GitHub release %s of %s as a draft, then publish it", p.Tag, p.Repo)}, nil
	case rl.GetDraft() && !p.Draft:
		return engine.Plan{Action: fmt.Sprintf("publish the draft release %s of %s", p.Tag, p.Repo)}, nil
	}
	return engine.Plan{Action: fmt.Sprintf("release %s of %s exists (%s)", p.Tag, p.Repo, rl.GetHTMLURL()), NoChange: true}, nil
}

// Run creates the draft (recording its id before publishing), then publishes it.
func (p *Release) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	c, o, r, err := repoClient(sc, p.Connection, p.Repo)
	if err != nil {
		return nil, err
	}
	rl, err := c.findRelease(ctx, o, r, p.Tag)
	if err != nil {
		return nil, err
	}
	if rl == nil {
		name := p.Name
		if name == "" {
			name = p.Tag
		}
		req := &gh.RepositoryRelease{TagName: gh.String(p.Tag), Name: gh.String(name), Body: gh.String(p.Body), Draft: gh.Bool(true), Prerelease: gh.Bool(p.Prerelease)}
		if p.Target != "" {
			req.TargetCommitish = gh.String(p.Target)
		}
		if _, err := c.call(ctx, "create release "+p.Tag, func(ctx context.Context) (*gh.Response, error) {
			var rsp *gh.Response
			var err error
			rl, rsp, err = c.gh.Repositories.CreateRelease(ctx, o, r, req)
			return rsp, err
		}); err != nil {
			return nil, err
		}
		_ = sc.Record("release_id", rl.GetID())
		sc.Logf("created draft release %s (id %d)", p.Tag, rl.GetID())
	}
	if rl.GetDraft() && !p.Draft {
		id := rl.GetID()
		if _, err := c.call(ctx, "publish release "+p.Tag, func(ctx context.Context) (*gh.Response, error) {
			var rsp *gh.Response
			var err error
			rl, rsp, err = c.gh.Repositories.EditRelease(ctx, o, r, id, &gh.RepositoryRelease{Draft: gh.Bool(false)})
			return rsp, err
		}); err != nil {
			return nil, err
		}
		sc.Logf("published release %s", p.Tag)
	}
	sc.Link("GitHub release "+p.Tag, rl.GetHTMLURL())
	return engine.Outputs{"id": int(rl.GetID()), "url": rl.GetHTMLURL()}, nil
}
