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
}

// Plan says what would be listed; release notes are read-only, so Plan writes nothing either way.
func (p *ReleaseNotes) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	return engine.Plan{Action: fmt.Sprintf("list the issues and pull requests of milestone %s in %s as release notes", sc.Show("milestone", p.Milestone), sc.Show("repo", p.Repo)), NoChange: true}, nil
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
	md, nIssues, nPRs := RenderNotes(items, p.Groups, p.Other, p.Exclude)
	sc.Logf("release notes: %d issues, %d pull requests", nIssues, nPRs)
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
