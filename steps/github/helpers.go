package github

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/cessda/runbook/engine"
	gh "github.com/google/go-github/v60/github"
)

// expand fills {version}, {tool} and the like in a template.
func expand(tpl string, vars map[string]string) string {
	for k, v := range vars {
		tpl = strings.ReplaceAll(tpl, "{"+k+"}", v)
	}
	return tpl
}

// findMilestone finds a milestone by title among open and closed ones (all pages).
func (c *client) findMilestone(ctx context.Context, owner, repo, title string) (*gh.Milestone, error) {
	opt := &gh.MilestoneListOptions{State: "all", ListOptions: gh.ListOptions{PerPage: 100}}
	for {
		var ms []*gh.Milestone
		resp, err := c.call(ctx, "list milestones of "+owner+"/"+repo, func(ctx context.Context) (*gh.Response, error) {
			var r *gh.Response
			var err error
			ms, r, err = c.gh.Issues.ListMilestones(ctx, owner, repo, opt)
			return r, err
		})
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			if m.GetTitle() == title {
				return m, nil
			}
		}
		if resp.NextPage == 0 {
			return nil, nil
		}
		opt.Page = resp.NextPage
	}
}

// listIssues lists issues and pull requests (all pages).
func (c *client) listIssues(ctx context.Context, owner, repo string, opt gh.IssueListByRepoOptions) ([]*gh.Issue, error) {
	opt.PerPage = 100
	var all []*gh.Issue
	for {
		var is []*gh.Issue
		resp, err := c.call(ctx, "list issues of "+owner+"/"+repo, func(ctx context.Context) (*gh.Response, error) {
			var r *gh.Response
			var err error
			is, r, err = c.gh.Issues.ListByRepo(ctx, owner, repo, &opt)
			return r, err
		})
		if err != nil {
			return nil, err
		}
		all = append(all, is...)
		if resp.NextPage == 0 {
			return all, nil
		}
		opt.Page = resp.NextPage
	}
}

// findIssue finds an issue (not a pull request) by exact title in a milestone (0: any).
func (c *client) findIssue(ctx context.Context, owner, repo, title string, milestone int) (*gh.Issue, error) {
	opt := gh.IssueListByRepoOptions{State: "all", Direction: "asc"}
	if milestone > 0 {
		opt.Milestone = fmt.Sprint(milestone)
	}
	is, err := c.listIssues(ctx, owner, repo, opt)
	if err != nil {
		return nil, err
	}
	for _, i := range is {
		if !i.IsPullRequest() && i.GetTitle() == title {
			return i, nil
		}
	}
	return nil, nil
}

func (c *client) getIssue(ctx context.Context, owner, repo string, n int) (*gh.Issue, error) {
	var is *gh.Issue
	_, err := c.call(ctx, fmt.Sprintf("get issue %s/%s#%d", owner, repo, n), func(ctx context.Context) (*gh.Response, error) {
		var r *gh.Response
		var err error
		is, r, err = c.gh.Issues.Get(ctx, owner, repo, n)
		return r, err
	})
	return is, err
}

func (c *client) editIssue(ctx context.Context, owner, repo string, n int, req *gh.IssueRequest) (*gh.Issue, error) {
	var is *gh.Issue
	_, err := c.call(ctx, fmt.Sprintf("update issue %s/%s#%d", owner, repo, n), func(ctx context.Context) (*gh.Response, error) {
		var r *gh.Response
		var err error
		is, r, err = c.gh.Issues.Edit(ctx, owner, repo, n, req)
		return r, err
	})
	return is, err
}

// listComments lists an issue's comments, oldest first (all pages; each page is a
// conditional request, so an unchanged page costs no rate limit).
func (c *client) listComments(ctx context.Context, owner, repo string, n int) ([]*gh.IssueComment, error) {
	opt := &gh.IssueListCommentsOptions{ListOptions: gh.ListOptions{PerPage: 100}}
	var all []*gh.IssueComment
	for {
		var cs []*gh.IssueComment
		resp, err := c.call(ctx, fmt.Sprintf("list comments of %s/%s#%d", owner, repo, n), func(ctx context.Context) (*gh.Response, error) {
			var r *gh.Response
			var err error
			cs, r, err = c.gh.Issues.ListComments(ctx, owner, repo, n, opt)
			return r, err
		})
		if err != nil {
			return nil, err
		}
		all = append(all, cs...)
		if resp.NextPage == 0 {
			return all, nil
		}
		opt.Page = resp.NextPage
	}
}

// upsertComment posts or updates the one comment carrying the hidden marker.
func (c *client) upsertComment(ctx context.Context, owner, repo string, n int, marker, body string) (*gh.IssueComment, bool, bool, error) {
	tag := markerComment(marker)
	full := body + "\n\n" + tag
	cs, err := c.listComments(ctx, owner, repo, n)
	if err != nil {
		return nil, false, false, err
	}
	for _, cm := range cs {
		if strings.Contains(cm.GetBody(), tag) {
			if cm.GetBody() == full {
				return cm, false, false, nil
			}
			var out *gh.IssueComment
			_, err := c.call(ctx, fmt.Sprintf("update comment %d in %s/%s#%d", cm.GetID(), owner, repo, n), func(ctx context.Context) (*gh.Response, error) {
				var r *gh.Response
				var err error
				out, r, err = c.gh.Issues.EditComment(ctx, owner, repo, cm.GetID(), &gh.IssueComment{Body: gh.String(full)})
				return r, err
			})
			return out, false, true, err
		}
	}
	var out *gh.IssueComment
	_, err = c.call(ctx, fmt.Sprintf("comment on %s/%s#%d", owner, repo, n), func(ctx context.Context) (*gh.Response, error) {
		var r *gh.Response
		var err error
		out, r, err = c.gh.Issues.CreateComment(ctx, owner, repo, n, &gh.IssueComment{Body: gh.String(full)})
		return r, err
	})
	return out, true, true, err
}

// markerComment is the hidden HTML comment that identifies what runbook wrote.
func markerComment(marker string) string { return "<!-- runbook:" + marker + " -->" }

// Plan-hash marker in the release issue body.
var planMarkerRE = regexp.MustCompile(`<!-- runbook:plan hash=(\S*) posted=(\S+) -->`)
var planLineRE = regexp.MustCompile(`(?m)^Plan hash: .*$`)

// planLines are the visible line and the hidden marker that bind approvals to a plan.
func planLines(hash string, posted time.Time) string {
	p := posted.UTC().Truncate(time.Second).Format(time.RFC3339)
	return fmt.Sprintf("Plan hash: `%s` (posted %s; approvals given before this time do not count)\n<!-- runbook:plan hash=%s posted=%s -->", hash, p, hash, p)
}

// readPlan returns the plan hash and posting time written in an issue body.
func readPlan(body string) (string, time.Time, bool) {
	m := planMarkerRE.FindStringSubmatch(body)
	if m == nil {
		return "", time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, m[2])
	if err != nil {
		return "", time.Time{}, false
	}
	return m[1], t, true
}

// setPlan rewrites the plan lines of body in place (or appends them), leaving the rest alone.
func setPlan(body, hash string, posted time.Time) string {
	lines := planLines(hash, posted)
	if loc := planMarkerRE.FindStringIndex(body); loc != nil {
		if pl := planLineRE.FindStringIndex(body[:loc[0]]); pl != nil && strings.TrimSpace(body[pl[1]:loc[0]]) == "" {
			return body[:pl[0]] + lines + body[loc[1]:]
		}
		return body[:loc[0]] + lines[strings.Index(lines, "\n")+1:] + body[loc[1]:]
	}
	if body != "" && !strings.HasSuffix(body, "\n") {
		body += "\n"
	}
	return body + "\n" + lines + "\n"
}

// repoClient is a step's client and its repository's owner and name.
// repository reads a repository (its default branch, its web address).
func (c *client) repository(ctx context.Context, o, r string) (*gh.Repository, error) {
	var repo *gh.Repository
	_, err := c.call(ctx, "get repository "+o+"/"+r, func(ctx context.Context) (*gh.Response, error) {
		var rsp *gh.Response
		var err error
		repo, rsp, err = c.gh.Repositories.Get(ctx, o, r)
		return rsp, err
	})
	return repo, err
}

func repoClient(sc *engine.StepContext, conn, repo string) (*client, string, string, error) {
	c, err := newClient(sc, conn)
	if err != nil {
		return nil, "", "", err
	}
	o, r, err := splitRepo(repo)
	if err != nil {
		return nil, "", "", err
	}
	return c, o, r, nil
}
