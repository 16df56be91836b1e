package github

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/cessda/runbook/engine"
	gh "github.com/google/go-github/v60/github"
)

// ChangelogEdit is what to write for one version.
type ChangelogEdit struct {
	Version    string // X.Y.Z
	Date       string // YYYY-MM-DD, "" keeps the heading's date
	DOI        string // 10.5281/zenodo.NNN, "" writes no badge
	ReleaseURL string // the version's GitHub release, for the footer link; "" writes none
}

var (
	versionHeadRE = regexp.MustCompile(`^##\s+\[?([^\]\s]+)\]?(.*)$`)
	badgeRE       = regexp.MustCompile(`^\[!\[DOI\]\(`)
	refLinkRE     = regexp.MustCompile(`^ {0,3}\[([^\]]+)\]:\s`) // a Markdown reference link definition
)

// Badge is the Zenodo badge line CESSDA puts under a version heading.
func Badge(doi string) string {
	return fmt.Sprintf("[![DOI](https://zenodo.org/badge/DOI/%s.svg)](https://doi.org/%s)", doi, doi)
}

// EditChangelog puts the version's date and DOI badge into a Keep-a-Changelog file.
//
// The heading `## [X.Y.Z] - YYYY-MM-DD` gets the date (created when missing, after the
// Unreleased section and before the first version heading); the badge line follows it
// after one blank line, replacing an existing DOI badge of that version. Every other
// byte of the file is kept, including CRLF line ends and a missing final newline.
// With a ReleaseURL, the reference link `[X.Y.Z]: URL` is added to the links at the end of
// the file (before the newest version's, after `[unreleased]`), as CESSDA adds it on
// release day, unless the version has one. It reports whether anything changed.
func EditChangelog(content string, e ChangelogEdit) (string, bool, error) {
	if e.Version == "" {
		return content, false, errors.New("changelog: no version")
	}
	out := editVersionSection(content, e)
	if e.ReleaseURL != "" {
		out = addReleaseLink(out, e.Version, e.ReleaseURL)
	}
	return out, out != content, nil
}

// addReleaseLink adds `[version]: url` among the file's reference links.
func addReleaseLink(content, version, url string) string {
	nl := "\n"
	if strings.Contains(content, "\r\n") {
		nl = "\r\n"
	}
	lines := strings.SplitAfter(content, "\n")
	newest, last := -1, -1
	for i, l := range lines {
		m := refLinkRE.FindStringSubmatch(strings.TrimRight(l, "\r\n"))
		if m == nil {
			continue
		}
		if m[1] == version {
			return content // the version has its link (whatever it says, a person wrote it)
		}
		if newest < 0 && !strings.EqualFold(m[1], "unreleased") {
			newest = i
		}
		last = i
	}
	link := "[" + version + "]: " + url + nl
	switch {
	case newest >= 0:
		lines = append(lines[:newest], append([]string{link}, lines[newest:]...)...)
	case last >= 0:
		if !strings.HasSuffix(lines[last], "\n") {
			lines[last] += nl
		}
		lines = append(lines[:last+1], append([]string{link}, lines[last+1:]...)...)
	default:
		end := len(lines) - 1
		if lines[end] == "" { // the file ends with a line end (or is empty)
			lines = lines[:end]
			end--
		}
		if end >= 0 {
			if !strings.HasSuffix(lines[end], "\n") {
				lines[end] += nl
			}
			if strings.TrimRight(lines[end], "\r\n") != "" {
				lines = append(lines, nl)
			}
		}
		lines = append(lines, link)
	}
	return strings.Join(lines, "")
}

// editVersionSection writes the version's heading date and DOI badge.
func editVersionSection(content string, e ChangelogEdit) string {
	nl := "\n"
	if strings.Contains(content, "\r\n") {
		nl = "\r\n"
	}
	lines := strings.SplitAfter(content, "\n") // each keeps its own line end
	strip := func(l string) string { return strings.TrimRight(l, "\r\n") }
	ending := func(l string) string { return l[len(strip(l)):] }

	head := -1
	insertAt := -1
	inFence := false
	// When the fences do not pair up (one is left open to the end of the file), none is
	// treated as a fence: a heading appended at the end would otherwise be unseen by the
	// next edit, which would add it again (editing twice must equal editing once).
	openFence := false
	for _, l := range lines {
		if strings.HasPrefix(strip(l), "```") {
			openFence = !openFence
		}
	}
	for i, l := range lines {
		s := strip(l)
		if strings.HasPrefix(s, "```") && !openFence {
			inFence = !inFence
		}
		if inFence {
			continue
		}
		m := versionHeadRE.FindStringSubmatch(s)
		if m == nil || strings.HasPrefix(s, "###") {
			continue
		}
		if m[1] == e.Version {
			head = i
			break
		}
		if insertAt < 0 && !strings.EqualFold(m[1], "unreleased") {
			insertAt = i
		}
	}
	out := append([]string(nil), lines...)
	if head < 0 {
		date := e.Date
		h := "## [" + e.Version + "]"
		if date != "" {
			h += " - " + date
		}
		block := []string{h + nl, nl}
		if e.DOI != "" {
			block = append(block, Badge(e.DOI)+nl, nl)
		}
		if insertAt < 0 {
			// No older version: append at the end.
			// A last line without "\n" (none, or a lone "\r") gets one, so the heading
			// starts a line of its own.
			if len(out) > 0 && !strings.HasSuffix(out[len(out)-1], "\n") {
				out[len(out)-1] += nl
			}
			if len(out) > 0 && strip(out[len(out)-1]) != "" {
				out = append(out, nl)
			}
			block[len(block)-1] = "" // no trailing blank line at the end of the file
			out = append(out, block...)
		} else {
			out = append(out[:insertAt], append(block, out[insertAt:]...)...)
		}
		return strings.Join(out, "")
	}
	// Heading exists: fix its date.
	if e.Date != "" {
		s := strip(out[head])
		m := versionHeadRE.FindStringSubmatch(s)
		rest := m[2]
		want := " - " + e.Date
		dateRE := regexp.MustCompile(`^\s*[-–]\s*\d{4}-\d{2}-\d{2}`)
		var nh string
		if loc := dateRE.FindStringIndex(rest); loc != nil {
			nh = s[:len(s)-len(rest)] + want + rest[loc[1]:]
		} else if strings.TrimSpace(rest) == "" {
			// All of the trailing white space goes (a form feed too): kept, a second
			// edit would see it before the date and rewrite the line again.
			nh = s[:len(s)-len(rest)] + want
		} else {
			nh = s[:len(s)-len(rest)] + want + rest
		}
		out[head] = nh + ending(out[head])
	}
	if e.DOI != "" {
		badge := Badge(e.DOI)
		found := false
		for i := head + 1; i < len(out); i++ {
			s := strip(out[i])
			if strings.HasPrefix(s, "## ") || strings.HasPrefix(s, "### ") {
				break
			}
			if badgeRE.MatchString(s) {
				out[i] = badge + ending(out[i])
				found = true
				break
			}
		}
		if !found {
			ins := []string{nl, badge + nl}
			if head+1 >= len(out) {
				if ending(out[head]) == "" {
					out[head] += nl
				}
				out = append(out, nl, badge+nl)
			} else {
				// Keep the blank line that usually follows the heading after the badge.
				if strip(out[head+1]) != "" {
					ins = append(ins, nl)
				}
				out = append(out[:head+1], append(ins, out[head+1:]...)...)
			}
		}
	}
	return strings.Join(out, "")
}

// Changelog writes the DOI and date into CHANGELOG.md through the contents API.
type Changelog struct {
	Connection string `json:"connection" desc:"github connection to use"`
	Repo       string `json:"repo" desc:"repository, owner/name" required:"true"`
	Path       string `json:"path" desc:"file to edit" default:"CHANGELOG.md"`
	Branch     string `json:"branch" desc:"branch to commit to; default the default branch"`
	Version    string `json:"version" desc:"release version X.Y.Z" required:"true"`
	Date       string `json:"date" desc:"release date YYYY-MM-DD; default today on the run's clock"`
	DOI        string `json:"doi" desc:"reserved DOI, e.g. 10.5281/zenodo.123; empty writes only the date"`
	Message    string `json:"message" desc:"commit message template ({version}, {doi})" default:"Add the DOI and date of {version} to the changelog"`
	// CESSDA adds the link to the GitHub release to the changelog's footer on release day
	// (e.g. CVS f9f8e71a, indexer 1fb35e2e); the tagged commit then carries it.
	ReleaseLink bool `json:"release_link" desc:"also add [X.Y.Z]: <repository>/releases/tag/X.Y.Z to the reference links at the end of the file" default:"true"`
}

var dateRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// Validate checks the date and DOI formats.
func (p *Changelog) Validate() error {
	if p.Date != "" && !dateRE.MatchString(p.Date) {
		return fmt.Errorf("github.changelog: date %q is not YYYY-MM-DD", p.Date)
	}
	if p.DOI != "" && !strings.HasPrefix(p.DOI, "10.") {
		return fmt.Errorf("github.changelog: doi %q does not look like a DOI (10.NNNN/...)", p.DOI)
	}
	return nil
}

func (p *Changelog) edit(ctx context.Context, sc *engine.StepContext, c *client, o, r string) (ChangelogEdit, error) {
	d := p.Date
	if d == "" {
		d = sc.Now().UTC().Format("2006-01-02")
	}
	e := ChangelogEdit{Version: p.Version, Date: d, DOI: strings.TrimPrefix(strings.TrimPrefix(p.DOI, "https://doi.org/"), "doi:")}
	if p.ReleaseLink {
		repo, err := c.repository(ctx, o, r)
		if err != nil {
			return e, err
		}
		if web := repo.GetHTMLURL(); web != "" {
			e.ReleaseURL = strings.TrimSuffix(web, "/") + "/releases/tag/" + url.PathEscape(p.Version)
		}
	}
	return e, nil
}

// headSHA returns the SHA of branch's head (the default branch when empty).
func (c *client) headSHA(ctx context.Context, o, r, branch string) (string, error) {
	ref := branch
	if ref == "" {
		repo, err := c.repository(ctx, o, r)
		if err != nil {
			return "", err
		}
		ref = repo.GetDefaultBranch()
	}
	var cm *gh.RepositoryCommit
	if _, err := c.call(ctx, fmt.Sprintf("resolve %s in %s/%s", ref, o, r), true, func(ctx context.Context) (*gh.Response, error) {
		var rsp *gh.Response
		var err error
		cm, rsp, err = c.gh.Repositories.GetCommit(ctx, o, r, ref, nil)
		return rsp, err
	}); err != nil {
		return "", err
	}
	return cm.GetSHA(), nil
}

func (c *client) getFile(ctx context.Context, o, r, path, branch string) (string, string, error) {
	var fc *gh.RepositoryContent
	var opt *gh.RepositoryContentGetOptions
	if branch != "" {
		opt = &gh.RepositoryContentGetOptions{Ref: branch}
	}
	_, err := c.call(ctx, fmt.Sprintf("read %s in %s/%s", path, o, r), true, func(ctx context.Context) (*gh.Response, error) {
		var rsp *gh.Response
		var err error
		fc, _, rsp, err = c.gh.Repositories.GetContents(ctx, o, r, path, opt)
		return rsp, err
	})
	if err != nil {
		return "", "", err
	}
	if fc == nil {
		return "", "", fmt.Errorf("github: %s in %s/%s is a directory", path, o, r)
	}
	s, err := fc.GetContent()
	return s, fc.GetSHA(), err
}

// Plan reads the file and says whether it would change; it writes nothing.
func (p *Changelog) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	act := fmt.Sprintf("write DOI %s and date of %s into %s of %s", sc.Show("doi", p.DOI), sc.Show("version", p.Version), p.Path, sc.Show("repo", p.Repo))
	if p.ReleaseLink {
		act += ", with the link to its release"
	}
	if sc.Unknown("doi") || sc.Unknown("version") || sc.Unknown("repo") || sc.Unknown("date") {
		return engine.Plan{Action: act}, nil
	}
	c, o, r, err := repoClient(sc, p.Connection, p.Repo)
	if err != nil {
		return engine.Plan{}, err
	}
	content, _, err := c.getFile(ctx, o, r, p.Path, p.Branch)
	if err != nil {
		return engine.Plan{}, err
	}
	e, err := p.edit(ctx, sc, c, o, r)
	if err != nil {
		return engine.Plan{}, err
	}
	_, changed, err := EditChangelog(content, e)
	if err != nil {
		return engine.Plan{}, err
	}
	return engine.Plan{Action: act, NoChange: !changed}, nil
}

// Run edits and commits the file; a stale sha (409) is re-read and retried.
func (p *Changelog) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	c, o, r, err := repoClient(sc, p.Connection, p.Repo)
	if err != nil {
		return nil, err
	}
	e, err := p.edit(ctx, sc, c, o, r)
	if err != nil {
		return nil, err
	}
	for attempt := 0; attempt < 5; attempt++ {
		content, sha, err := c.getFile(ctx, o, r, p.Path, p.Branch)
		if err != nil {
			return nil, err
		}
		next, changed, err := EditChangelog(content, e)
		if err != nil {
			return nil, err
		}
		if !changed {
			// The release commit is the one carrying the edit: the one this step made
			// (recorded before a crash could lose it), else the branch's head, which has it.
			var made string
			if !sc.Recall("commit", &made) {
				if made, err = c.headSHA(ctx, o, r, p.Branch); err != nil {
					return nil, err
				}
			}
			sc.Logf("%s already has %s (release commit %s)", p.Path, p.Version, short(made))
			return engine.Outputs{"changed": false, "commit": made}, nil
		}
		msg := expand(p.Message, map[string]string{"version": p.Version, "doi": p.DOI})
		opt := &gh.RepositoryContentFileOptions{Message: &msg, Content: []byte(next), SHA: &sha}
		if p.Branch != "" {
			opt.Branch = &p.Branch
		}
		var res *gh.RepositoryContentResponse
		rsp, err := c.call(ctx, fmt.Sprintf("update %s in %s", p.Path, p.Repo), false, func(ctx context.Context) (*gh.Response, error) {
			var rsp *gh.Response
			var err error
			res, rsp, err = c.gh.Repositories.UpdateFile(ctx, o, r, p.Path, opt)
			return rsp, err
		})
		if rsp != nil && rsp.StatusCode == 409 {
			sc.Logf("%s changed meanwhile (409); re-reading", p.Path)
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := sc.Record("commit", res.Commit.GetSHA()); err != nil {
			return nil, err
		}
		sc.Logf("committed %s: %s", short(res.Commit.GetSHA()), msg)
		return engine.Outputs{"changed": true, "commit": res.Commit.GetSHA()}, nil
	}
	return nil, engine.Transient(fmt.Errorf("github: %s in %s keeps changing (409 five times); try again", p.Path, p.Repo))
}
