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

// components builds the table: one row per component, in the order the run first names
// them, filled from the succeeded items of the known step types, then production before
// and after from the snapshots.
func components(r *engine.Report) *componentTable {
	rows := &componentRows{table: &componentTable{}, index: map[string]int{}}
	for _, s := range r.Steps {
		for _, it := range s.Items {
			rows.row(it.Item)
		}
	}
	if len(rows.table.Rows) == 0 {
		return nil
	}
	before, after := productionSnapshots(r)
	cells := componentCells{
		table:   rows.table,
		base:    githubBase(r, rows.repos),
		version: fmtValue(r.Inputs["version"]),
	}
	// The production cluster is the connection of the snapshot taken before the deploy.
	if before != nil {
		cells.prodConn = outStr(before.Params, "connection")
	}
	seenBefore := false
	for _, s := range r.Steps {
		if s == before {
			seenBefore = true
		}
		for _, it := range s.Items {
			c := rows.row(it.Item)
			if c == nil || it.Status != engine.StepSucceeded {
				continue
			}
			cells.fill(c, s, it, seenBefore)
		}
	}
	rows.table.fillProduction(before, after)
	return rows.table
}

// componentRows finds a component's row by its repo, adding the row the first time.
type componentRows struct {
	table *componentTable
	index map[string]int // repo → row
	repos []string       // in the rows' order
}

// row is the row of a foreach item, or nil when the item names no repo. The row's image
// is the first one an item of the component names.
func (rs *componentRows) row(item any) *componentRow {
	m := itemMap(item)
	repo, _ := m["repo"].(string)
	if repo == "" {
		return nil
	}
	i, ok := rs.index[repo]
	if !ok {
		i = len(rs.table.Rows)
		rs.index[repo] = i
		img, _ := m["image"].(string)
		rs.table.Rows = append(rs.table.Rows, componentRow{Repo: repo, imageKey: img})
		rs.repos = append(rs.repos, repo)
	}
	if img, _ := m["image"].(string); img != "" && rs.table.Rows[i].imageKey == "" {
		rs.table.Rows[i].imageKey = img
	}
	return &rs.table.Rows[i]
}

// productionSnapshots finds the succeeded kubernetes.snapshot steps: the first one of
// the procedure (production before the deploy) and the last one of the failure path
// (production after the revert).
func productionSnapshots(r *engine.Report) (before, after *engine.StepReport) {
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
	return before, after
}

// componentCells fills a row's cells from one succeeded item of a known step type.
type componentCells struct {
	table    *componentTable
	base     string // the GitHub web address of tag and commit links, "" for none
	version  string
	prodConn string // the production cluster's connection, "" when no snapshot names it
}

// fill sets the cells the item's step type says; afterSnapshot: the step comes after
// the snapshot of production taken before the deploy.
func (f *componentCells) fill(c *componentRow, s *engine.StepReport, it *engine.ItemReport, afterSnapshot bool) {
	o := it.Outputs
	switch s.Type {
	case "github.tag":
		f.tagged(c, outStr(o, "tag"), outStr(o, "sha"))
	case "jenkins.commit_build":
		c.Build = buildCell(o)
	case "kubernetes.verify":
		f.verified(c, o, f.isProduction(outStr(it.Params, "connection"), s.Phase, afterSnapshot))
	case "zenodo.reserve_doi":
		f.reserved(c, o)
	case "zenodo.discard":
		f.discarded(c, outStr(o, "doi"))
	case "zenodo.publish":
		doi := outStr(o, "doi")
		c.DOI = newCell(doi, doiURL(doi), "")
		c.Zenodo = newCell(c.componentLabel(f.version)+" record", outStr(o, "record_url"), "")
	case "github.release":
		c.Release = newCell(c.componentLabel(f.version)+" release", outStr(o, "url"), "")
	}
}

// tagged: the tag and its commit, linked into the repository when the run's links say
// where GitHub is.
func (f *componentCells) tagged(c *componentRow, tag, sha string) {
	tagURL, commitURL := "", ""
	if f.base != "" {
		if tag != "" {
			tagURL = f.base + c.Repo + "/tree/" + url.PathEscape(tag)
		}
		if sha != "" {
			commitURL = f.base + c.Repo + "/commit/" + url.PathEscape(sha)
		}
	}
	c.Tag = newCell(tag, tagURL, "")
	c.Commit = newCell(shortSHA(sha), commitURL, "")
}

// buildCell: the CI build's number, linked, with the image it built (or its job) under it.
func buildCell(o map[string]any) cell {
	n := outStr(o, "number")
	txt := ""
	if n != "" {
		txt = "#" + n
	}
	cl := newCell(txt, outStr(o, "url"), outStr(o, "image"))
	if cl.Detail == "" {
		cl.Detail = outStr(o, "job")
	}
	return cl
}

// isProduction tells a verification of production from one of staging: by its cluster
// when both it and production's are known, else by its place (the Verifying phase, or
// after the snapshot of production).
func (f *componentCells) isProduction(conn, phase string, afterSnapshot bool) bool {
	if f.prodConn != "" && conn != "" {
		return conn == f.prodConn
	}
	return phase == "Verifying" || afterSnapshot
}

// verified: the digest and image a verification found, on production or on staging.
func (f *componentCells) verified(c *componentRow, o map[string]any, production bool) {
	cl := newCell(shortDigest(outStr(o, "digest")), "", imageTag(outStr(o, "image")))
	if production {
		c.Now = cl
		f.table.Production = true
	} else {
		c.Staging = cl
	}
}

// reserved: the DOI a Zenodo draft reserved; the first reservation counts.
func (f *componentCells) reserved(c *componentRow, o map[string]any) {
	if !c.DOI.Empty() {
		return
	}
	doi := outStr(o, "doi")
	c.DOI = newCell(doi, doiURL(doi), "reserved")
	c.Zenodo = newCell(c.componentLabel(f.version)+" draft", outStr(o, "html_url"), "not published")
}

// discarded: the release did not happen, so its reserved DOI is gone with the draft.
func (f *componentCells) discarded(c *componentRow, doi string) {
	if doi == "" && c.DOI.Empty() {
		return
	}
	if doi == "" {
		doi = c.DOI.Text
	}
	c.DOI = newCell(doi, "", "discarded")
	c.Zenodo = newCell(c.componentLabel(f.version)+" draft", "", "discarded")
}

// fillProduction sets what production ran before the deploy and, when the failure path
// took a snapshot that found the component, what it runs now, after the revert.
func (t *componentTable) fillProduction(before, after *engine.StepReport) {
	for i := range t.Rows {
		c := &t.Rows[i]
		if c.imageKey == "" {
			continue
		}
		if before != nil {
			c.Before = snapshotCell(before, c.imageKey)
		}
		if after != nil {
			if cl := snapshotCell(after, c.imageKey); !cl.Empty() {
				c.Now = cl
				t.Reverted = true
			}
		}
	}
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
