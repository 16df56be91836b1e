package github

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/cessda/runbook/engine"
	gh "github.com/google/go-github/v60/github"
)

// NoteGroup is one section of the release notes.
type NoteGroup struct {
	Title  string   `json:"title" desc:"section heading" required:"true"`
	Labels []string `json:"labels" desc:"items with any of these labels go here (first matching group wins)"`
}

// ReleaseNotes lists every issue and pull request of the milestone, grouped by label.
type ReleaseNotes struct {
	Connection string      `json:"connection" desc:"github connection to use"`
	Repo       string      `json:"repo" desc:"repository, owner/name" required:"true"`
	Milestone  string      `json:"milestone" desc:"milestone title" required:"true"`
	State      string      `json:"state" desc:"which items to list" default:"all" enum:"all,closed,open"`
	Groups     []NoteGroup `json:"groups" desc:"sections, in order; unmatched items go under other" default:"[{title: Added, labels: [enhancement, feature]}, {title: Fixed, labels: [bug]}, {title: Security, labels: [security]}, {title: Dependencies, labels: [dependencies]}, {title: Documentation, labels: [documentation]}]"`
	Other      string      `json:"other" desc:"heading of items no group matched" default:"Other changes"`
	Exclude    []string    `json:"exclude" desc:"leave out items with any of these labels" default:"[release]"`
	AllowEmpty bool        `json:"allow_empty" desc:"allow notes with no closed issue or merged pull request (the notes then say so); otherwise the step fails, before the approval" default:"false"`
}

// NoNotes is the notes of a release whose milestone has nothing to announce, when
// allow_empty lets it through: a GitHub release body and announcements must not be empty.
const NoNotes = "No issues were recorded for this release."

// emptyError stops a release whose notes would be empty; not transient: someone must
// fill the milestone (or allow it), a retry alone changes nothing.
func (p *ReleaseNotes) emptyError() error {
	return fmt.Errorf("the release notes of milestone %s in %s are empty: no closed issue or merged pull request is in the milestone; add them to the milestone, or set allow_empty: true", p.Milestone, p.Repo)
}

// Plan reads the milestone, so an empty one shows in the plan as an error before anything
// runs; it writes nothing. It goes by the milestone's own counts (one request, whatever
// its size): none closed is surely empty. Closed items that are all excluded or unmerged
// pull requests are found by Run, which lists them.
func (p *ReleaseNotes) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	pl := engine.Plan{Action: fmt.Sprintf("list the issues and pull requests of milestone %s in %s as release notes", sc.Show("milestone", p.Milestone), sc.Show("repo", p.Repo)), NoChange: true}
	if sc.Unknown("repo") || sc.Unknown("milestone") {
		return pl, nil
	}
	c, o, r, err := repoClient(sc, p.Connection, p.Repo)
	if err != nil {
		return engine.Plan{}, err
	}
	ms, err := c.findMilestone(ctx, o, r, p.Milestone)
	if err != nil {
		return engine.Plan{}, err
	}
	// A missing milestone is as empty: github.release_issue creates it empty.
	if closed := ms.GetClosedIssues(); closed > 0 {
		pl.Details = []string{fmt.Sprintf("so far %d closed and %d open issues and pull requests in the milestone", closed, ms.GetOpenIssues())}
		return pl, nil
	}
	// allow_empty known only after earlier steps: do not predict a failure it may allow.
	if !p.AllowEmpty && !sc.Unknown("allow_empty") {
		return engine.Plan{}, p.emptyError()
	}
	pl.Details = []string{fmt.Sprintf("no closed issue or pull request in the milestone yet (allow_empty): with nothing to list, the notes say %q", NoNotes)}
	return pl, nil
}

// released counts the milestone's closed issues and merged pull requests in items, the
// listed ones; with state open they are listed apart, as the check is about the milestone.
func (p *ReleaseNotes) released(ctx context.Context, c *client, o, r string, ms *gh.Milestone, items []*gh.Issue) (total, issues, prs int, err error) {
	if p.State == "open" {
		if items, err = c.listIssues(ctx, o, r, gh.IssueListByRepoOptions{State: "closed", Milestone: fmt.Sprint(ms.GetNumber()), Direction: "asc"}); err != nil {
			return 0, 0, 0, err
		}
	}
	total, issues, prs = released(items, p.Exclude)
	return total, issues, prs, nil
}

// released counts what the notes can announce as done: closed issues and merged pull
// requests, excluded labels left out. A pull request closed without merging is not done.
// (GitHub sends merged_at in the issue list's pull_request object.)
func released(items []*gh.Issue, exclude []string) (total, issues, prs int) {
	for _, it := range items {
		if hasLabel(it, exclude) || it.GetState() != "closed" {
			continue
		}
		switch {
		case !it.IsPullRequest():
			issues++
		case !it.GetPullRequestLinks().GetMergedAt().IsZero():
			prs++
		}
	}
	return issues + prs, issues, prs
}

// Run builds the notes.
func (p *ReleaseNotes) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	c, o, r, err := repoClient(sc, p.Connection, p.Repo)
	if err != nil {
		return nil, err
	}
	ms, err := c.findMilestone(ctx, o, r, p.Milestone)
	if err != nil {
		return nil, err
	}
	if ms == nil {
		return nil, fmt.Errorf("github.release_notes: no milestone %q in %s: check the milestone's title", p.Milestone, p.Repo)
	}
	items, err := c.listIssues(ctx, o, r, gh.IssueListByRepoOptions{State: p.State, Milestone: fmt.Sprint(ms.GetNumber()), Direction: "asc"})
	if err != nil {
		return nil, err
	}
	done, _, _, err := p.released(ctx, c, o, r, ms, items)
	if err != nil {
		return nil, err
	}
	if done == 0 && !p.AllowEmpty {
		return nil, p.emptyError()
	}
	md, nIssues, nPRs := RenderNotes(items, p.Groups, p.Other, p.Exclude)
	sc.Logf("release notes: %d issues, %d pull requests", nIssues, nPRs)
	if strings.TrimSpace(md) == "" {
		sc.Logf("the milestone has nothing to announce (allow_empty): the notes say %q", NoNotes)
		md = NoNotes + "\n"
	}
	return engine.Outputs{"markdown": md, "issues": nIssues, "pull_requests": nPRs}, nil
}

// RenderNotes groups issues and pull requests by label as Markdown, in CESSDA's
// changelog style: "- [#12](url) Title" for issues, "- [PR-13](url) Title" for PRs.
func RenderNotes(items []*gh.Issue, groups []NoteGroup, other string, exclude []string) (string, int, int) {
	sort.SliceStable(items, func(i, j int) bool { return items[i].GetNumber() < items[j].GetNumber() })
	sections := make([][]string, len(groups)+1)
	nIssues, nPRs := 0, 0
	for _, it := range items {
		if hasLabel(it, exclude) {
			continue
		}
		ref := fmt.Sprintf("[#%d](%s)", it.GetNumber(), it.GetHTMLURL())
		if it.IsPullRequest() {
			ref = fmt.Sprintf("[PR-%d](%s)", it.GetNumber(), it.GetHTMLURL())
			nPRs++
		} else {
			nIssues++
		}
		line := fmt.Sprintf("- %s %s", ref, strings.TrimSpace(it.GetTitle()))
		g := len(groups)
		for i, gr := range groups {
			if hasLabel(it, gr.Labels) {
				g = i
				break
			}
		}
		sections[g] = append(sections[g], line)
	}
	var b strings.Builder
	for i, lines := range sections {
		if len(lines) == 0 {
			continue
		}
		title := other
		if i < len(groups) {
			title = groups[i].Title
		}
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "### %s\n\n%s\n", title, strings.Join(lines, "\n"))
	}
	return b.String(), nIssues, nPRs
}
