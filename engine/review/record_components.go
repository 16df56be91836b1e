package review

import (
	"net/url"
	"path"
	"strings"

	"github.com/cessda/runbook/engine"
)

// What was released, component by component. A component is a foreach item that is a
// map with a "repo" key; its cells come from the items' outputs of known step types,
// found by type and place (phase, section, connection), never by step id.

type componentTable struct {
	Rows []componentRow
	// Production: a verification of production ran (the summary says "to production").
	Production bool
	// Reverted: "production now" is what the failure path's snapshot found.
	Reverted bool
}

// cell is one table cell: text, an optional link, and secondary text under it.
type cell struct {
	Text, URL, Detail string
	Safe              bool
}

func newCell(text, link, detail string) cell {
	return cell{Text: text, URL: link, Detail: detail, Safe: link != "" && safeURL(link)}
}

func (c cell) Empty() bool { return c.Text == "" && c.URL == "" }

type componentRow struct {
	Repo     string
	Tag      cell // tag → commit
	Commit   cell
	Build    cell // CI build
	Staging  cell // the image and digest tested on staging
	Before   cell // what production ran before
	Now      cell // what production runs now
	DOI      cell
	Zenodo   cell
	Release  cell // GitHub release
	imageKey string
}

func itemMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// shortDigest: sha256:bb9bd56c481b7cce… → bb9bd56c481b.
func shortDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		d = d[:12]
	}
	return d
}

func shortSHA(s string) string {
	if len(s) > 7 {
		return s[:7]
	}
	return s
}

// imageTag: registry.invalid/cessda/cvs-frontend:3.7.0 → cvs-frontend:3.7.0.
func imageTag(ref string) string {
	if i := strings.LastIndexByte(ref, '/'); i >= 0 {
		return ref[i+1:]
	}
	return ref
}

// githubBase finds the GitHub web address the run's links use (https://github.com/,
// or a simulator's) from a link into one of the components' repositories.
func githubBase(r *engine.Report, repos []string) string {
	var links []engine.Link
	links = append(links, r.Links...)
	for _, s := range r.Steps {
		links = append(links, s.Links...)
		if u := outStr(s.Outputs, "url"); u != "" {
			links = append(links, engine.Link{URL: u})
		}
	}
	for _, l := range links {
		for _, repo := range repos {
			if i := strings.Index(l.URL, "/"+repo+"/"); i > 0 && safeURL(l.URL) {
				return l.URL[:i+1]
			}
		}
	}
	return ""
}

func components(r *engine.Report) *componentTable {
	t := &componentTable{}
	index := map[string]int{}
	var repos []string
	row := func(item any) *componentRow {
		m := itemMap(item)
		repo, _ := m["repo"].(string)
		if repo == "" {
			return nil
		}
		i, ok := index[repo]
		if !ok {
			i = len(t.Rows)
			index[repo] = i
			img, _ := m["image"].(string)
			t.Rows = append(t.Rows, componentRow{Repo: repo, imageKey: img})
			repos = append(repos, repo)
		}
		if img, _ := m["image"].(string); img != "" && t.Rows[i].imageKey == "" {
			t.Rows[i].imageKey = img
		}
		return &t.Rows[i]
	}
	for _, s := range r.Steps {
		for _, it := range s.Items {
			row(it.Item)
		}
	}
	if len(t.Rows) == 0 {
		return nil
	}
	base := githubBase(r, repos)
	version := fmtValue(r.Inputs["version"])

	// The production cluster is the connection of the snapshot taken before the deploy.
	var before, after *engine.StepReport
	for _, s := range r.Steps {
		if s.Type != "kubernetes.snapshot" || s.Status != engine.StepSucceeded {
			continue
		}
		if s.Section == engine.SectionOnFailure || s.Phase == "Reverting" {
			after = s
		} else if before == nil {
			before = s
		}
	}
	prodConn := ""
	if before != nil {
		prodConn = outStr(before.Params, "connection")
	}
	seenBefore := false
	for _, s := range r.Steps {
		if s == before {
			seenBefore = true
		}
		for _, it := range s.Items {
			c := row(it.Item)
			if c == nil || it.Status != engine.StepSucceeded {
				continue
			}
			o := it.Outputs
			switch s.Type {
			case "github.tag":
				tag, sha := outStr(o, "tag"), outStr(o, "sha")
				tagURL, commitURL := "", ""
				if base != "" {
					if tag != "" {
						tagURL = base + c.Repo + "/tree/" + url.PathEscape(tag)
					}
					if sha != "" {
						commitURL = base + c.Repo + "/commit/" + url.PathEscape(sha)
					}
				}
				c.Tag = newCell(tag, tagURL, "")
				c.Commit = newCell(shortSHA(sha), commitURL, "")
			case "jenkins.commit_build":
				n := outStr(o, "number")
				txt := ""
				if n != "" {
					txt = "#" + n
				}
				c.Build = newCell(txt, outStr(o, "url"), outStr(o, "image"))
				if c.Build.Detail == "" {
					c.Build.Detail = outStr(o, "job")
				}
			case "kubernetes.verify":
				conn := outStr(it.Params, "connection")
				prod := false
				switch {
				case prodConn != "" && conn != "":
					prod = conn == prodConn
				default:
					prod = s.Phase == "Verifying" || seenBefore
				}
				cl := newCell(shortDigest(outStr(o, "digest")), "", imageTag(outStr(o, "image")))
				if prod {
					c.Now = cl
					t.Production = true
				} else {
					c.Staging = cl
				}
			case "zenodo.reserve_doi":
				if c.DOI.Empty() {
					doi := outStr(o, "doi")
					c.DOI = newCell(doi, doiURL(doi), "reserved")
					c.Zenodo = newCell(c.componentLabel(version)+" draft", outStr(o, "html_url"), "not published")
				}
			case "zenodo.discard":
				// The release did not happen: its reserved DOI is gone with the draft.
				if doi := outStr(o, "doi"); doi != "" || !c.DOI.Empty() {
					if doi == "" {
						doi = c.DOI.Text
					}
					c.DOI = newCell(doi, "", "discarded")
					c.Zenodo = newCell(c.componentLabel(version)+" draft", "", "discarded")
				}
			case "zenodo.publish":
				doi := outStr(o, "doi")
				c.DOI = newCell(doi, doiURL(doi), "")
				c.Zenodo = newCell(c.componentLabel(version)+" record", outStr(o, "record_url"), "")
			case "github.release":
				c.Release = newCell(c.componentLabel(version)+" release", outStr(o, "url"), "")
			}
		}
	}
	for i := range t.Rows {
		c := &t.Rows[i]
		if before != nil && c.imageKey != "" {
			c.Before = snapshotCell(before, c.imageKey)
		}
		if after != nil && c.imageKey != "" {
			if cl := snapshotCell(after, c.imageKey); !cl.Empty() {
				c.Now = cl
				t.Reverted = true
			}
		}
	}
	return t
}

// snapshotCell: a kubernetes.snapshot's tags and digests, keyed by image name.
func snapshotCell(s *engine.StepReport, image string) cell {
	tags, _ := s.Outputs["tags"].(map[string]any)
	digests, _ := s.Outputs["digests"].(map[string]any)
	tag, _ := tags[image].(string)
	dig, _ := digests[image].(string)
	if tag == "" && dig == "" {
		return cell{}
	}
	detail := image
	if tag != "" {
		detail += ":" + tag
	}
	return newCell(shortDigest(dig), "", detail)
}

func doiURL(doi string) string {
	if doi == "" {
		return ""
	}
	return "https://doi.org/" + doi
}

// componentLabel: cessda/cessda.cvs.userguide → "cessda.cvs.userguide 3.7.0".
func (c *componentRow) componentLabel(version string) string {
	return strings.TrimSpace(path.Base(c.Repo) + " " + version)
}

// Cells lists the row's cells in the columns' order, for the renderers.
func (c componentRow) Cells() []cell {
	return []cell{c.Tag, c.Commit, c.Build, c.Staging, c.Before, c.Now, c.DOI, c.Zenodo, c.Release}
}

var componentColumns = []string{"tag", "commit", "CI build", "tested on staging", "production before", "production now", "DOI", "Zenodo", "GitHub release"}

func (t *componentTable) Columns() []string {
	if t.Reverted {
		cols := append([]string(nil), componentColumns...)
		cols[5] = "production now (after the revert)"
		return cols
	}
	return componentColumns
}
