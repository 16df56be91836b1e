package github

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/cessda/runbook/engine"
	gh "github.com/google/go-github/v60/github"
)

// ChecklistItem is one item of the release issue's checklist; Key names it for
// github.checklist (hidden in the body as <!-- runbook:item=KEY -->).
type ChecklistItem struct {
	Key  string `json:"key" desc:"stable name of the item, used by github.checklist" required:"true"`
	Text string `json:"text" desc:"the item's text" required:"true"`
}

// ReleaseIssue creates (or finds) the product's release issue.
type ReleaseIssue struct {
	Connection        string          `json:"connection" desc:"github connection to use"`
	Repo              string          `json:"repo" desc:"tracker repository, owner/name" required:"true"`
	Version           string          `json:"version" desc:"release version X.Y.Z" required:"true"`
	Tool              string          `json:"tool" desc:"tool (product) name shown in the title" required:"true"`
	Title             string          `json:"title" desc:"title template; {version} and {tool} are filled in" default:"Release version {version} of {tool}"`
	Purpose           string          `json:"purpose" desc:"general purpose of the release (Markdown)"`
	Milestone         string          `json:"milestone" desc:"milestone title (created when missing); default the version"`
	Labels            []string        `json:"labels" desc:"labels of the issue" default:"[release]"`
	SignificantIssues []string        `json:"significant_issues" desc:"the most significant issues, one line each; empty lists the milestone's issues"`
	SignificantLabels []string        `json:"significant_labels" desc:"when listing from the milestone, only issues with one of these labels (empty: all)"`
	MaxSignificant    int             `json:"max_significant" desc:"at most this many issues listed from the milestone" default:"15"`
	Checklist         []ChecklistItem `json:"checklist" desc:"checklist items (key, text)" default:"[{key: backups, text: Backups taken before the release}, {key: upgrade, text: Upgrade procedures for dependency updates followed}, {key: doi, text: DOI reserved in Zenodo and added to the changelog}]"`
	ChecklistURL      string          `json:"checklist_url" desc:"link to the release checklist"`
	ReportURL         string          `json:"report_url" desc:"link to the release report"`
}

// Default fills the milestone from the version.
func (p *ReleaseIssue) Default() {
	if p.Milestone == "" {
		p.Milestone = p.Version
	}
}

func (p *ReleaseIssue) title() string {
	return expand(p.Title, map[string]string{"version": p.Version, "tool": p.Tool})
}

// Plan looks the issue up; it writes nothing.
func (p *ReleaseIssue) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	if sc.Unknown("version") || sc.Unknown("tool") || sc.Unknown("repo") {
		return engine.Plan{Action: fmt.Sprintf("create release issue %q in %s", p.title(), sc.Show("repo", p.Repo)), Details: []string{"title " + engine.KnownAfterRun}}, nil
	}
	c, o, r, err := repoClient(sc, p.Connection, p.Repo)
	if err != nil {
		return engine.Plan{}, err
	}
	ms, err := c.findMilestone(ctx, o, r, p.Milestone)
	if err != nil {
		return engine.Plan{}, err
	}
	if ms == nil {
		return engine.Plan{Action: fmt.Sprintf("create milestone %q and release issue %q in %s", p.Milestone, p.title(), p.Repo)}, nil
	}
	is, err := c.findIssue(ctx, o, r, p.title(), ms.GetNumber())
	if err != nil {
		return engine.Plan{}, err
	}
	if is != nil {
		h, _, _ := readPlan(is.GetBody())
		if h != sc.PlanHash {
			return engine.Plan{Action: fmt.Sprintf("update the plan hash in release issue #%d (%s)", is.GetNumber(), is.GetHTMLURL()), Details: []string{"approvals given before the update become stale"}}, nil
		}
		return engine.Plan{Action: fmt.Sprintf("reuse release issue #%d %q", is.GetNumber(), p.title()), Details: []string{is.GetHTMLURL()}, NoChange: true}, nil
	}
	return engine.Plan{Action: fmt.Sprintf("create release issue %q in %s (milestone %s, labels %s)", p.title(), p.Repo, p.Milestone, strings.Join(p.Labels, ", "))}, nil
}

// Run creates the issue, or reuses the one with the same title in the milestone.
func (p *ReleaseIssue) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	c, o, r, err := repoClient(sc, p.Connection, p.Repo)
	if err != nil {
		return nil, err
	}
	ms, err := c.ensureMilestone(ctx, o, r, p.Milestone)
	if err != nil {
		return nil, err
	}
	title := p.title()
	is, err := c.findIssue(ctx, o, r, title, ms.GetNumber())
	if err != nil {
		return nil, err
	}
	created := false
	if is != nil {
		sc.Logf("found release issue #%d %s", is.GetNumber(), is.GetHTMLURL())
		if m := issueRunRE.FindStringSubmatch(is.GetBody()); m != nil && m[1] != sc.RunID {
			// A new attempt at the release (an earlier run was refused or stopped): its
			// answers (/approve, /reject) were for that run; this run asks again.
			sc.Logf("release issue #%d belongs to run %s: this run takes it over; answers given before now are for that run", is.GetNumber(), m[1])
			if is, err = c.editBody(ctx, o, r, is.GetNumber(), func(b string) (string, error) {
				b = issueRunRE.ReplaceAllLiteralString(b, markerComment("release-issue run="+sc.RunID))
				return setPlan(b, sc.PlanHash, sc.Now()), nil
			}); err != nil {
				return nil, err
			}
		} else if h, _, _ := readPlan(is.GetBody()); h != sc.PlanHash {
			sc.Logf("plan changed (%s -> %s): updating the plan hash; earlier approvals are stale", h, sc.PlanHash)
			if is, err = c.editBody(ctx, o, r, is.GetNumber(), func(b string) (string, error) { return setPlan(b, sc.PlanHash, sc.Now()), nil }); err != nil {
				return nil, err
			}
		}
	} else {
		body, err := p.body(ctx, sc, c, o, r, ms.GetNumber())
		if err != nil {
			return nil, err
		}
		labels := p.Labels
		_, err = c.call(ctx, "create issue in "+p.Repo, func(ctx context.Context) (*gh.Response, error) {
			var rsp *gh.Response
			var err error
			is, rsp, err = c.gh.Issues.Create(ctx, o, r, &gh.IssueRequest{Title: &title, Body: &body, Labels: &labels, Milestone: gh.Int(ms.GetNumber())})
			return rsp, err
		})
		if err != nil {
			return nil, err
		}
		created = true
		sc.Logf("created release issue #%d %s", is.GetNumber(), is.GetHTMLURL())
	}
	sc.Link("Release issue", is.GetHTMLURL())
	return engine.Outputs{"number": is.GetNumber(), "url": is.GetHTMLURL(), "created": created}, nil
}

// issueRunRE finds the run that made (or took over) a release issue.
var issueRunRE = regexp.MustCompile(`<!-- runbook:release-issue run=(\S+) -->`)

func (p *ReleaseIssue) body(ctx context.Context, sc *engine.StepContext, c *client, o, r string, milestone int) (string, error) {
	var b strings.Builder
	purpose := p.Purpose
	if purpose == "" {
		purpose = fmt.Sprintf("Release version %s of %s.", p.Version, p.Tool)
	}
	b.WriteString(purpose + "\n\n")
	b.WriteString(planLines(sc.PlanHash, sc.Now()) + "\n\n")
	b.WriteString("## Most significant issues\n\n")
	sig := p.SignificantIssues
	if len(sig) == 0 {
		is, err := c.listIssues(ctx, o, r, gh.IssueListByRepoOptions{State: "all", Milestone: fmt.Sprint(milestone), Direction: "asc"})
		if err != nil {
			return "", err
		}
		for _, i := range is {
			if len(sig) >= p.MaxSignificant {
				break
			}
			if len(p.SignificantLabels) > 0 && !hasLabel(i, p.SignificantLabels) {
				continue
			}
			sig = append(sig, fmt.Sprintf("#%d %s", i.GetNumber(), i.GetTitle()))
		}
	}
	if len(sig) == 0 {
		b.WriteString("(none yet)\n")
	}
	for _, s := range sig {
		b.WriteString("- " + s + "\n")
	}
	b.WriteString("\n## Subtasks\n\n" + subtasksStart + "\n" + subtasksEnd + "\n\n## Checklist\n\n")
	for _, it := range p.Checklist {
		fmt.Fprintf(&b, "- [ ] %s %s\n", it.Text, markerComment("item="+it.Key))
	}
	b.WriteString("\n## Links\n\n")
	if p.ChecklistURL != "" {
		fmt.Fprintf(&b, "- [Release checklist](%s)\n", p.ChecklistURL)
	}
	if p.ReportURL != "" {
		fmt.Fprintf(&b, "- [Release report](%s)\n", p.ReportURL)
	}
	fmt.Fprintf(&b, "\n%s\n", markerComment("release-issue run="+sc.RunID))
	return b.String(), nil
}

const (
	subtasksStart = "<!-- runbook:subtasks -->"
	subtasksEnd   = "<!-- /runbook:subtasks -->"
)

func hasLabel(i *gh.Issue, want []string) bool {
	for _, l := range i.Labels {
		for _, w := range want {
			if strings.EqualFold(l.GetName(), w) {
				return true
			}
		}
	}
	return false
}

// ensureMilestone finds the milestone by title or creates it.
func (c *client) ensureMilestone(ctx context.Context, o, r, title string) (*gh.Milestone, error) {
	ms, err := c.findMilestone(ctx, o, r, title)
	if err != nil || ms != nil {
		return ms, err
	}
	_, err = c.call(ctx, "create milestone "+title, func(ctx context.Context) (*gh.Response, error) {
		var rsp *gh.Response
		var err error
		ms, rsp, err = c.gh.Issues.CreateMilestone(ctx, o, r, &gh.Milestone{Title: &title})
		return rsp, err
	})
	return ms, err
}

// editBody changes an issue's body with edit. GitHub has no conditional PATCH, so to
// keep what people typed meanwhile it re-reads the body just before writing and redoes
// the edit when the body changed since it was read (up to five times).
func (c *client) editBody(ctx context.Context, o, r string, n int, edit func(string) (string, error)) (*gh.Issue, error) {
	is, err := c.getIssue(ctx, o, r, n)
	if err != nil {
		return nil, err
	}
	for attempt := 0; attempt < 5; attempt++ {
		old := is.GetBody()
		nb, err := edit(old)
		if err != nil {
			return nil, err
		}
		if nb == old {
			return is, nil
		}
		cur, err := c.getIssue(ctx, o, r, n)
		if err != nil {
			return nil, err
		}
		if cur.GetBody() != old {
			c.sc.Logf("issue #%d changed while editing it; re-reading", n)
			is = cur
			continue
		}
		return c.editIssue(ctx, o, r, n, &gh.IssueRequest{Body: &nb})
	}
	return nil, engine.Transient(fmt.Errorf("github: issue %s/%s#%d keeps changing while runbook edits it; try again", o, r, n))
}

// Subtask is one subtask issue.
type Subtask struct {
	Key   string `json:"key" desc:"stable name of the subtask" required:"true"`
	Title string `json:"title" desc:"title template ({version}, {tool})" required:"true"`
	Body  string `json:"body" desc:"body template (Markdown)"`
}

// SubtaskIssues creates the release's subtask issues and links them in the release issue.
type SubtaskIssues struct {
	Connection   string    `json:"connection" desc:"github connection to use"`
	Repo         string    `json:"repo" desc:"tracker repository, owner/name" required:"true"`
	ReleaseIssue int       `json:"release_issue" desc:"number of the release issue" required:"true"`
	Version      string    `json:"version" desc:"release version" required:"true"`
	Tool         string    `json:"tool" desc:"tool name" required:"true"`
	Milestone    string    `json:"milestone" desc:"milestone title; default the version"`
	Labels       []string  `json:"labels" desc:"labels of the subtasks" default:"[release]"`
	Subtasks     []Subtask `json:"subtasks" desc:"the subtasks" default:"[{key: notes, title: 'Release notes for version {version} of {tool}', body: 'List every issue and pull request that is part of the release.'}, {key: docs, title: 'Update user documentation for version {version} of {tool}', body: 'Update the user-facing documentation with new features and changed behaviour.'}]"`
}

// Default fills the milestone from the version.
func (p *SubtaskIssues) Default() {
	if p.Milestone == "" {
		p.Milestone = p.Version
	}
}

// Plan lists which subtasks exist; it writes nothing.
func (p *SubtaskIssues) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	vars := map[string]string{"version": p.Version, "tool": p.Tool}
	var titles []string
	for _, s := range p.Subtasks {
		titles = append(titles, expand(s.Title, vars))
	}
	pl := engine.Plan{Action: fmt.Sprintf("create %d subtask issues in %s and link them in release issue #%s", len(titles), sc.Show("repo", p.Repo), sc.Show("release_issue", p.ReleaseIssue)), Details: titles}
	if sc.Unknown("release_issue") || sc.Unknown("version") || sc.Unknown("repo") {
		return pl, nil
	}
	c, o, r, err := repoClient(sc, p.Connection, p.Repo)
	if err != nil {
		return engine.Plan{}, err
	}
	ms, err := c.findMilestone(ctx, o, r, p.Milestone)
	if err != nil || ms == nil {
		return pl, err
	}
	found := 0
	for _, t := range titles {
		is, err := c.findIssue(ctx, o, r, t, ms.GetNumber())
		if err != nil {
			return engine.Plan{}, err
		}
		if is != nil {
			found++
		}
	}
	if found == len(titles) {
		pl.Action = fmt.Sprintf("reuse %d subtask issues in %s", found, p.Repo)
	}
	return pl, nil
}

// Run creates the missing subtasks and writes their links into the release issue.
func (p *SubtaskIssues) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	c, o, r, err := repoClient(sc, p.Connection, p.Repo)
	if err != nil {
		return nil, err
	}
	ms, err := c.ensureMilestone(ctx, o, r, p.Milestone)
	if err != nil {
		return nil, err
	}
	vars := map[string]string{"version": p.Version, "tool": p.Tool}
	numbers := []int{}
	urls := []string{}
	var links []string
	for _, s := range p.Subtasks {
		title := expand(s.Title, vars)
		is, err := c.findIssue(ctx, o, r, title, ms.GetNumber())
		if err != nil {
			return nil, err
		}
		if is == nil {
			body := expand(s.Body, vars) + fmt.Sprintf("\n\nPart of #%d.\n\n%s\n", p.ReleaseIssue, markerComment("subtask="+s.Key))
			labels := p.Labels
			_, err = c.call(ctx, "create subtask issue in "+p.Repo, func(ctx context.Context) (*gh.Response, error) {
				var rsp *gh.Response
				var err error
				is, rsp, err = c.gh.Issues.Create(ctx, o, r, &gh.IssueRequest{Title: &title, Body: &body, Labels: &labels, Milestone: gh.Int(ms.GetNumber())})
				return rsp, err
			})
			if err != nil {
				return nil, err
			}
			sc.Logf("created subtask #%d %s", is.GetNumber(), title)
		} else {
			sc.Logf("found subtask #%d %s", is.GetNumber(), title)
		}
		numbers = append(numbers, is.GetNumber())
		urls = append(urls, is.GetHTMLURL())
		links = append(links, fmt.Sprintf("- #%d %s", is.GetNumber(), title))
		sc.Link("Subtask: "+title, is.GetHTMLURL())
	}
	block := subtasksStart + "\n" + strings.Join(links, "\n") + "\n" + subtasksEnd
	_, err = c.editBody(ctx, o, r, p.ReleaseIssue, func(b string) (string, error) {
		i := strings.Index(b, subtasksStart)
		j := strings.Index(b, subtasksEnd)
		if i >= 0 && j > i {
			return b[:i] + block + b[j+len(subtasksEnd):], nil
		}
		return strings.TrimRight(b, "\n") + "\n\n## Subtasks\n\n" + block + "\n", nil
	})
	if err != nil {
		return nil, err
	}
	return engine.Outputs{"numbers": numbers, "urls": urls}, nil
}
