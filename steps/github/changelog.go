package github

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/cessda/runbook/engine"
	gh "github.com/google/go-github/v60/github"
)

// ChangelogEdit is what to write for one version.
type ChangelogEdit struct {
	Version    string // X.Y.Z
	Date       string // YYYY-MM-DD, "" keeps the heading's date (a new heading gets none)
	DOI        string // 10.5281/zenodo.NNN, "" writes no badge
	ReleaseURL string // the version's GitHub release, for the footer link; "" writes none
}

// ChangelogChange is the result of one of the changelog actions.
type ChangelogChange struct {
	Text    string
	Changed bool
	// Moved: entries moved between ## [Unreleased] and the version's section.
	Moved bool
	// Entries is the number of entry lines released (release: the version's, moved or
	// already there) or moved back under Unreleased (unrelease, yank).
	Entries int
	// OnlyDate: the version was released before and only its date changed.
	OnlyDate bool
	// Notes say what changed, or what was left alone and why (for the plan and the log).
	Notes []string
}

// ChangelogError is a refusal: the file needs a person's edit first. Not transient.
type ChangelogError struct{ What string }

func (e *ChangelogError) Error() string { return "changelog " + e.What }

var (
	versionHeadRE = regexp.MustCompile(`^##\s+\[?([^\]\s]+)\]?(.*)$`)
	badgeRE       = regexp.MustCompile(`^\[!\[DOI\]\(`)
	refLinkRE     = regexp.MustCompile(`^ {0,3}\[([^\]]+)\]:\s`) // a Markdown reference link definition
	atxRE         = regexp.MustCompile(`^ {0,3}#{1,6}(\s|$)`)
	h3RE          = regexp.MustCompile(`^ {0,3}###(\s|$)`)
	versionishRE  = regexp.MustCompile(`^[vV]?\d`)
	headDateRE    = regexp.MustCompile(`^\s*[-–]\s*(\d{4}-\d{2}-\d{2})`)
	yankedRE      = regexp.MustCompile(`(?i)\[yanked\]`)
)

// Badge is the Zenodo badge line CESSDA puts under a version heading.
func Badge(doi string) string {
	return fmt.Sprintf("[![DOI](https://zenodo.org/badge/DOI/%s.svg)](https://doi.org/%s)", doi, doi)
}

func lineText(l string) string { return strings.TrimRight(l, "\r\n") }
func lineEnd(l string) string  { return l[len(lineText(l)):] }
func blankLine(l string) bool  { return strings.TrimSpace(lineText(l)) == "" }

// isEntry: a line that says something (not blank, a heading, a badge, a link definition
// or a lone HTML comment such as a template's hint).
func isEntry(l string) bool {
	s := lineText(l)
	t := strings.TrimSpace(s)
	if t == "" || badgeRE.MatchString(s) || refLinkRE.MatchString(s) || atxRE.MatchString(s) {
		return false
	}
	return !(strings.HasPrefix(t, "<!--") && strings.HasSuffix(t, "-->"))
}

func countEntries(lines []string) int {
	n := 0
	for _, l := range lines {
		if isEntry(l) {
			n++
		}
	}
	return n
}

// clDoc is a changelog split into lines, each with its own line end.
type clDoc struct {
	lines  []string
	fenced []bool // inside a code fence: not structure
	nl     string // the line end of inserted lines
}

func newDoc(content string) *clDoc {
	lines := strings.SplitAfter(content, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	d := &clDoc{lines: lines, fenced: make([]bool, len(lines)), nl: "\n"}
	if strings.Contains(content, "\r\n") {
		d.nl = "\r\n"
	}
	// When the fences do not pair up (one is left open to the end of the file), none is
	// treated as a fence: a heading appended at the end would otherwise be unseen by the
	// next edit, which would add it again (editing twice must equal editing once).
	open := false
	for _, l := range lines {
		if strings.HasPrefix(lineText(l), "```") {
			open = !open
		}
	}
	if !open {
		in := false
		for i, l := range lines {
			if strings.HasPrefix(lineText(l), "```") {
				in = !in
			}
			d.fenced[i] = in
		}
	}
	return d
}

// h2 returns the label and the rest of a level-2 heading outside code fences.
func (d *clDoc) h2(i int) (label, rest string, ok bool) {
	s := lineText(d.lines[i])
	if d.fenced[i] || strings.HasPrefix(s, "###") {
		return "", "", false
	}
	m := versionHeadRE.FindStringSubmatch(s)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

func isUnreleased(label string) bool { return strings.EqualFold(label, "unreleased") }

// sectionHead: a heading that starts a version's (or Unreleased's) section. Other level-2
// headings (CVS wrote "## Changes" inside versions) belong to the section they are in.
func (d *clDoc) sectionHead(i int, version string) bool {
	l, _, ok := d.h2(i)
	return ok && (isUnreleased(l) || l == version || versionishRE.MatchString(l))
}

func (d *clDoc) findVersion(version string) int {
	for i := range d.lines {
		if l, _, ok := d.h2(i); ok && l == version {
			return i
		}
	}
	return -1
}

func (d *clDoc) findUnreleased() int {
	for i := range d.lines {
		if l, _, ok := d.h2(i); ok && isUnreleased(l) {
			return i
		}
	}
	return -1
}

// footer is where the reference link definitions that close the file start (with the
// blank lines among and before them), len(lines) when there are none.
func (d *clDoc) footer() int {
	start, link := len(d.lines), false
	for i := len(d.lines) - 1; i >= 0; i-- {
		s := lineText(d.lines[i])
		if strings.TrimSpace(s) == "" {
			start = i
			continue
		}
		if refLinkRE.MatchString(s) {
			start, link = i, true
			continue
		}
		break
	}
	if !link {
		return len(d.lines)
	}
	return start
}

// end is the index after the last line of the section headed at head.
func (d *clDoc) end(head int, version string) int {
	f := d.footer()
	for i := head + 1; i < f; i++ {
		if d.sectionHead(i, version) {
			return i
		}
	}
	return f
}

// prevVersion is the version whose heading is at end (the release before), or "".
func (d *clDoc) prevVersion(end int, version string) string {
	if end >= len(d.lines) || !d.sectionHead(end, version) {
		return ""
	}
	if l, _, _ := d.h2(end); !isUnreleased(l) {
		return l
	}
	return ""
}

// join makes every line but the last end with a line end; the last keeps whatever it has.
func joinLines(lines []string, nl string) string {
	var b strings.Builder
	for i, l := range lines {
		b.WriteString(l)
		if i < len(lines)-1 && !strings.HasSuffix(l, "\n") {
			b.WriteString(nl)
		}
	}
	return b.String()
}

func catLines(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func refusedNoEntries(version string) error {
	return &ChangelogError{What: fmt.Sprintf("has no entries under ## [Unreleased] for %s: add what changed (### Added, ### Fixed, ...) under ## [Unreleased] before releasing, or write the ## [%s] section by hand", version, version)}
}

// ReleaseChangelog releases a version as Keep a Changelog does. The entries under
// `## [Unreleased]` move under a new `## [X.Y.Z] - DATE` heading placed right after the
// (now empty) `## [Unreleased]`, with the DOI badge one blank line under it, as CESSDA
// writes it; `[unreleased]: …/compare/PREV...HEAD` compares from X.Y.Z, and the version's
// own link goes among the reference links (releases/tag, or compare when the file's
// version links are compare links). Every other byte is kept (CRLF, a missing final
// newline, the case of the links).
//
// When `## [X.Y.Z]` exists (an earlier run, or written by hand as CESSDA does), nothing
// moves: its date is set (a re-date when it differs), a missing badge and links are
// added. A version with no entries, under Unreleased or in its own section, is refused
// (*ChangelogError), and so is a yanked version.
func ReleaseChangelog(content string, e ChangelogEdit) (ChangelogChange, error) {
	ch := ChangelogChange{Text: content}
	if e.Version == "" {
		return ch, errors.New("changelog: no version")
	}
	d := newDoc(content)
	u := d.findUnreleased()
	waiting := 0
	if u >= 0 {
		waiting = countEntries(d.lines[u+1 : d.end(u, e.Version)])
	}
	if v := d.findVersion(e.Version); v >= 0 {
		return releaseExisting(content, d, v, waiting, e)
	}
	if waiting == 0 {
		return ch, refusedNoEntries(e.Version)
	}
	uEnd := d.end(u, e.Version)
	prev := d.prevVersion(uEnd, e.Version)
	head := "## " + e.Version
	if strings.Contains(lineText(d.lines[u]), "[") { // the file's heading style
		head = "## [" + e.Version + "]"
	}
	if e.Date != "" {
		head += " - " + e.Date
	}
	// Whole lines only are inserted, so unrelease can take them out again byte for byte.
	ins := []string{d.nl, head + d.nl}
	if e.DOI != "" {
		ins = append(ins, d.nl, Badge(e.DOI)+d.nl)
	}
	text := joinLines(catLines(d.lines[:u+1], ins, d.lines[u+1:]), d.nl)
	ch.Notes = append(ch.Notes, fmt.Sprintf("move %d entry lines from ## [Unreleased] under %s", waiting, head))
	if e.DOI != "" {
		ch.Notes = append(ch.Notes, "add the DOI badge of "+e.DOI)
	}
	text = releaseLinks(text, e, prev, &ch.Notes)
	ch.Text, ch.Changed, ch.Moved, ch.Entries = text, text != content, true, waiting
	return ch, nil
}

func releaseExisting(content string, d *clDoc, v, waiting int, e ChangelogEdit) (ChangelogChange, error) {
	ch := ChangelogChange{Text: content}
	_, rest, _ := d.h2(v)
	if yankedRE.MatchString(rest) {
		return ch, &ChangelogError{What: fmt.Sprintf("has ## [%s] marked [YANKED]: a yanked version is not released again; release a new version", e.Version)}
	}
	vEnd := d.end(v, e.Version)
	n := countEntries(d.lines[v+1 : vEnd])
	if n == 0 {
		if waiting > 0 {
			return ch, &ChangelogError{What: fmt.Sprintf("has an empty ## [%s] section while %d entry lines wait under ## [Unreleased]: move them under ## [%s] (or delete the empty heading) before releasing", e.Version, waiting, e.Version)}
		}
		return ch, refusedNoEntries(e.Version)
	}
	prev := d.prevVersion(vEnd, e.Version)
	dated := editVersionSection(content, ChangelogEdit{Version: e.Version, Date: e.Date})
	text := editVersionSection(dated, e)
	if dated != content {
		old := "no date"
		if m := headDateRE.FindStringSubmatch(rest); m != nil {
			old = m[1]
		}
		ch.Notes = append(ch.Notes, fmt.Sprintf("re-date %s from %s to %s", e.Version, old, e.Date))
	}
	if text != dated {
		ch.Notes = append(ch.Notes, "add the DOI badge of "+e.DOI)
	}
	text = releaseLinks(text, e, prev, &ch.Notes)
	if waiting > 0 {
		ch.Notes = append(ch.Notes, fmt.Sprintf("%d entry lines under ## [Unreleased] stay there: ## [%s] exists, nothing moves twice", waiting, e.Version))
	}
	if text == content {
		ch.Notes = append(ch.Notes, fmt.Sprintf("%s already released in the changelog (%d entry lines)", e.Version, n))
	}
	ch.Text, ch.Changed, ch.Entries = text, text != content, n
	ch.OnlyDate = dated != content && text == dated && headDateRE.MatchString(rest) // a date, not a first one
	return ch, nil
}

// releaseLinks updates the reference links at release: [unreleased] compares from the
// version, and the version gets its link.
func releaseLinks(text string, e ChangelogEdit, prev string, notes *[]string) string {
	if prev != "" {
		if t, ok := retargetUnreleased(text, prev, e.Version); ok {
			text = t
			*notes = append(*notes, fmt.Sprintf("[unreleased] link: compare from %s (was %s)", e.Version, prev))
		}
	}
	if base, ok := unreleasedBase(text); ok && base != e.Version && base != "v"+e.Version {
		// Only a link that compares from the previous version is moved on, so that
		// unrelease can move it back.
		why := "there is no previous version"
		if prev != "" {
			why = "not from the previous version " + prev
		}
		*notes = append(*notes, fmt.Sprintf("[unreleased] link compares from %s, %s: left as it is", base, why))
	}
	if e.ReleaseURL != "" {
		u := e.ReleaseURL
		if c := compareLink(text, e.Version, prev); c != "" {
			u = c
		}
		if t := addReleaseLink(text, e.Version, u); t != text {
			text = t
			*notes = append(*notes, fmt.Sprintf("add the link [%s]: %s", e.Version, u))
		}
	}
	return text
}

// EditChangelog is ReleaseChangelog returning only the text and whether it changed.
func EditChangelog(content string, e ChangelogEdit) (string, bool, error) {
	ch, err := ReleaseChangelog(content, e)
	return ch.Text, ch.Changed, err
}

// UnreleaseChangelog undoes ReleaseChangelog, for a release stopped before anything was
// tagged: the version's entries go back under ## [Unreleased] (merged with what was added
// there since), its heading, badge (a badge one blank line under the heading) and
// reference link go, and [unreleased] compares from the previous version again. On a
// file that release made by moving entries from an earlier file, it gives back that file
// byte for byte, unless the earlier file already held part of the release written by hand
// (the version's link, an [unreleased] link comparing from it, its badge first under
// Unreleased): those go too. Without a ## [X.Y.Z] section nothing changes.
func UnreleaseChangelog(content string, e ChangelogEdit) (ChangelogChange, error) {
	ch := ChangelogChange{Text: content}
	if e.Version == "" {
		return ch, errors.New("changelog: no version")
	}
	if newDoc(content).findVersion(e.Version) < 0 {
		ch.Notes = append(ch.Notes, fmt.Sprintf("no ## [%s] section: nothing to undo", e.Version))
		return ch, nil
	}
	// The reverse of release's order: the link it added, the [unreleased] link, the section.
	text := content
	if t, ok := removeReleaseLink(text, e.Version); ok {
		text = t
		ch.Notes = append(ch.Notes, fmt.Sprintf("remove the link [%s]", e.Version))
	}
	d := newDoc(text)
	v := d.findVersion(e.Version)
	if prev := d.prevVersion(d.end(v, e.Version), e.Version); prev != "" {
		if t, ok := retargetUnreleased(text, e.Version, prev); ok {
			text = t
			ch.Notes = append(ch.Notes, fmt.Sprintf("[unreleased] link: compare from %s again", prev))
		}
	}
	d = newDoc(text)
	v = d.findVersion(e.Version)
	vEnd := d.end(v, e.Version)
	body := d.lines[v+1 : vEnd]
	if len(body) >= 2 && blankLine(body[0]) && badgeRE.MatchString(lineText(body[1])) {
		body = body[2:]
	}
	ch.Entries = countEntries(body)
	text = moveBack(d, text, v, vEnd, body, nil, e.Version)
	ch.Notes = append(ch.Notes, fmt.Sprintf("move %d entry lines of %s back under ## [Unreleased] and remove its heading", ch.Entries, e.Version))
	ch.Text, ch.Changed, ch.Moved = text, text != content, true
	return ch, nil
}

// YankChangelog marks a version pulled after it was tagged (Keep a Changelog's
// `## [X.Y.Z] - DATE [YANKED]`): its entries go back under ## [Unreleased] (so the next
// version releases them), the heading keeps no entries and no DOI badge (the DOI was
// never published); its reference link stays. A yanked version, or none, is left alone.
func YankChangelog(content string, e ChangelogEdit) (ChangelogChange, error) {
	ch := ChangelogChange{Text: content}
	if e.Version == "" {
		return ch, errors.New("changelog: no version")
	}
	d := newDoc(content)
	v := d.findVersion(e.Version)
	if v < 0 {
		ch.Notes = append(ch.Notes, fmt.Sprintf("no ## [%s] section: nothing to yank", e.Version))
		return ch, nil
	}
	_, rest, _ := d.h2(v)
	if yankedRE.MatchString(rest) {
		ch.Notes = append(ch.Notes, fmt.Sprintf("%s is already marked [YANKED]", e.Version))
		return ch, nil
	}
	vEnd := d.end(v, e.Version)
	body := dropBadges(d.lines[v+1 : vEnd])
	h := strings.TrimRight(lineText(d.lines[v]), " \t")
	if !headDateRE.MatchString(rest) && e.Date != "" {
		h += " - " + e.Date
	}
	h += " [YANKED]" + lineEnd(d.lines[v])
	heading := []string{h}
	if vEnd < len(d.lines) {
		heading = append(heading, d.nl) // a blank line before what follows
	}
	ch.Entries = countEntries(body)
	text := moveBack(d, content, v, vEnd, body, heading, e.Version)
	ch.Notes = append(ch.Notes, fmt.Sprintf("mark %s [YANKED], move its %d entry lines back under ## [Unreleased], drop its DOI badge", e.Version, ch.Entries))
	ch.Text, ch.Changed, ch.Moved = text, text != content, true
	return ch, nil
}

// moveBack replaces the version's section [v, vEnd) by keep and merges body into the
// Unreleased section (one is made where the version's heading was, or for a yank above
// the newest version, when the file has none).
func moveBack(d *clDoc, text string, v, vEnd int, body, keep []string, version string) string {
	var out []string
	u := d.findUnreleased()
	switch {
	case u < 0:
		h := "## Unreleased"
		if strings.Contains(lineText(d.lines[v]), "[") {
			h = "## [Unreleased]"
		}
		if keep == nil { // unrelease: the version's heading becomes Unreleased's
			out = catLines(d.lines[:v], []string{h + lineEnd(d.lines[v])}, body, d.lines[vEnd:])
			break
		}
		first := v
		for i := 0; i < v; i++ {
			if d.sectionHead(i, version) {
				first = i
				break
			}
		}
		block := []string{h + d.nl, d.nl}
		if t := trimBlankLines(body); len(t) > 0 {
			block = append(append(block, t...), d.nl)
		}
		out = catLines(d.lines[:first], block, d.lines[first:v], keep, d.lines[vEnd:])
	case u < v:
		uEnd := d.end(u, version)
		out = catLines(d.lines[:u+1], mergeBodies(body, d.lines[u+1:uEnd], d.nl), d.lines[uEnd:v], keep, d.lines[vEnd:])
	default:
		uEnd := d.end(u, version)
		out = catLines(d.lines[:v], keep, d.lines[vEnd:u+1], mergeBodies(body, d.lines[u+1:uEnd], d.nl), d.lines[uEnd:])
	}
	s := joinLines(out, d.nl)
	if !strings.HasSuffix(text, "\n") && strings.HasSuffix(s, "\n") {
		// The file had no final newline: a line moved to the end loses the one it got.
		if strings.HasSuffix(s, d.nl) {
			s = strings.TrimSuffix(s, d.nl)
		} else {
			s = strings.TrimSuffix(s, "\n")
		}
	}
	return s
}

// dropBadges removes DOI badge lines, each with the blank line after it.
func dropBadges(lines []string) []string {
	var out []string
	for i := 0; i < len(lines); i++ {
		if badgeRE.MatchString(lineText(lines[i])) {
			if i+1 < len(lines) && blankLine(lines[i+1]) {
				i++
			}
			continue
		}
		out = append(out, lines[i])
	}
	return out
}

func trimBlankLines(lines []string) []string {
	i, j := 0, len(lines)
	for i < j && blankLine(lines[i]) {
		i++
	}
	for j > i && blankLine(lines[j-1]) {
		j--
	}
	return lines[i:j]
}

func hasEntries(lines []string) bool { return countEntries(lines) > 0 }

// clChunk is the text before the first ### heading (key "") or one ### subsection,
// without its trailing blank lines.
type clChunk struct {
	key   string
	lines []string
}

func clChunks(body []string) []clChunk {
	var out []clChunk
	cur := clChunk{}
	fence := false
	flush := func() {
		if t := trimBlankLines(cur.lines); len(t) > 0 {
			cur.lines = cur.lines[:len(cur.lines)-countTrailingBlank(cur.lines)]
			out = append(out, cur)
		}
	}
	for _, l := range trimBlankLines(body) {
		s := lineText(l)
		if strings.HasPrefix(s, "```") {
			fence = !fence
		}
		if !fence && h3RE.MatchString(s) {
			flush()
			key := strings.ToLower(strings.TrimSpace(strings.Trim(strings.TrimSpace(s), "#")))
			cur = clChunk{key: key, lines: []string{l}}
			continue
		}
		cur.lines = append(cur.lines, l)
	}
	flush()
	return out
}

func countTrailingBlank(lines []string) int {
	n := 0
	for n < len(lines) && blankLine(lines[len(lines)-1-n]) {
		n++
	}
	return n
}

// mergeBodies puts the entries of a version (moved) back into Unreleased's body (there):
// the version's text first, then what was added since; entries of a ### subsection both
// have go, in order, under one heading; the subsections only Unreleased has follow.
func mergeBodies(moved, there []string, nl string) []string {
	if !hasEntries(there) {
		return moved
	}
	if !hasEntries(moved) {
		return there
	}
	n := 0
	for n < len(moved) && blankLine(moved[n]) {
		n++
	}
	lead := moved[:n]
	tail := moved[len(moved)-countTrailingBlank(moved):]
	if len(tail) == 0 {
		tail = there[len(there)-countTrailingBlank(there):]
	}
	cs := clChunks(moved)
	for _, c := range clChunks(there) {
		i := -1
		for k := range cs {
			if cs[k].key == c.key {
				i = k
				break
			}
		}
		switch {
		case i < 0 && c.key == "":
			cs = append([]clChunk{c}, cs...)
		case i < 0:
			cs = append(cs, c)
		default:
			add := c.lines
			if c.key != "" {
				add = trimBlankLines(add[1:])
			}
			if len(add) == 0 {
				continue
			}
			own := cs[i].lines
			if c.key == "" || len(own) == 1 || paragraphStyle(own[1:]) {
				add = append([]string{nl}, add...) // paragraph style: one blank line between
			}
			cs[i].lines = append(append([]string(nil), own...), add...)
		}
	}
	out := append([]string(nil), lead...)
	for k, c := range cs {
		if k > 0 {
			out = append(out, nl)
		}
		out = append(out, c.lines...)
	}
	return append(out, tail...)
}

// paragraphStyle: the entries are separated by blank lines.
func paragraphStyle(lines []string) bool {
	t := trimBlankLines(lines)
	for _, l := range t {
		if blankLine(l) {
			return true
		}
	}
	return false
}

// refLinks lists the reference link definitions: index, label.
func refLinks(lines []string) (idx []int, labels []string) {
	for i, l := range lines {
		if m := refLinkRE.FindStringSubmatch(lineText(l)); m != nil {
			idx, labels = append(idx, i), append(labels, m[1])
		}
	}
	return idx, labels
}

// addReleaseLink adds `[version]: url` among the file's reference links: before the
// newest version's, else after the last link, else at the end after a blank line. Only
// whole lines are added (a last line without its line end gets one, and the link then
// has none, so the file still ends without one): removeReleaseLink is its inverse.
func addReleaseLink(content, version, url string) string {
	d := newDoc(content)
	lines := d.lines
	idx, labels := refLinks(lines)
	newest, last := -1, -1
	for k, i := range idx {
		if labels[k] == version {
			return content // the version has its link (whatever it says, a person wrote it)
		}
		if newest < 0 && !isUnreleased(labels[k]) {
			newest = i
		}
		last = i
	}
	link := "[" + version + "]: " + url
	switch {
	case newest >= 0:
		lines = catLines(lines[:newest], []string{link + d.nl}, lines[newest:])
	case last >= 0 && strings.HasSuffix(lines[last], "\n"):
		lines = catLines(lines[:last+1], []string{link + d.nl}, lines[last+1:])
	case last >= 0:
		lines = catLines(lines[:last], []string{lines[last] + d.nl, link})
	case len(lines) == 0:
		lines = []string{link + d.nl}
	case strings.HasSuffix(lines[len(lines)-1], "\n"):
		lines = catLines(lines, []string{d.nl, link + d.nl})
	default:
		n := len(lines) - 1
		lines = catLines(lines[:n], []string{lines[n] + d.nl, d.nl, link})
	}
	return strings.Join(lines, "")
}

// removeReleaseLink removes the version's link definition the way addReleaseLink added it.
func removeReleaseLink(content, version string) (string, bool) {
	lines := newDoc(content).lines
	idx, labels := refLinks(lines)
	k := -1
	for j, l := range labels {
		if l == version {
			k = idx[j]
			break
		}
	}
	if k < 0 {
		return content, false
	}
	wasLast := k == len(lines)-1
	noEnd := !strings.HasSuffix(lines[k], "\n")
	lines = catLines(lines[:k], lines[k+1:])
	if len(idx) == 1 && wasLast && k > 0 && blankLine(lines[k-1]) {
		lines = lines[:k-1] // the blank line added before the file's only link
	}
	if noEnd && len(lines) > 0 {
		// The last line got its line end with the link: the one the file used elsewhere.
		nl := "\n"
		for _, l := range lines[:len(lines)-1] {
			if strings.HasSuffix(l, "\r\n") {
				nl = "\r\n"
				break
			}
		}
		lines[len(lines)-1] = strings.TrimSuffix(lines[len(lines)-1], nl)
	}
	return strings.Join(lines, ""), true
}

// unreleasedLink finds the first [unreleased] link definition and where its compare
// base starts: line index and byte offset (-1 when it is not a compare link).
func unreleasedLink(lines []string) (int, int) {
	idx, labels := refLinks(lines)
	for k, l := range labels {
		if isUnreleased(l) {
			i := idx[k]
			if c := strings.Index(lines[i], "/compare/"); c >= 0 {
				return i, c + len("/compare/")
			}
			return i, -1
		}
	}
	return -1, -1
}

// unreleasedBase is the compare base of the [unreleased] link.
func unreleasedBase(content string) (string, bool) {
	lines := newDoc(content).lines
	i, at := unreleasedLink(lines)
	if i < 0 || at < 0 {
		return "", false
	}
	base, _, ok := strings.Cut(lines[i][at:], "..")
	return base, ok
}

// retargetUnreleased makes `[unreleased]: …/compare/[v]FROM...X` compare from [v]TO.
func retargetUnreleased(content, from, to string) (string, bool) {
	lines := newDoc(content).lines
	i, at := unreleasedLink(lines)
	if i < 0 || at < 0 {
		return content, false
	}
	rest := lines[i][at:]
	for _, p := range []string{"", "v"} {
		if strings.HasPrefix(rest, p+from+"..") {
			lines[i] = lines[i][:at] + p + to + rest[len(p+from):]
			return strings.Join(lines, ""), true
		}
	}
	return content, false
}

// compareLink is the version's link in the file's own style when its version links are
// compare links (`[1.1.0]: …/compare/1.0.0...1.1.0`), "" otherwise.
func compareLink(content, version, prev string) string {
	if prev == "" {
		return ""
	}
	lines := newDoc(content).lines
	idx, labels := refLinks(lines)
	for k, l := range labels {
		if isUnreleased(l) || l == version {
			continue
		}
		s := strings.TrimSpace(lineText(lines[idx[k]]))
		u := strings.TrimSpace(s[strings.Index(s, "]:")+2:])
		if f := strings.Fields(u); len(f) > 0 {
			u = f[0]
		}
		c := strings.Index(u, "/compare/")
		if c < 0 {
			return ""
		}
		p := ""
		if _, target, ok := strings.Cut(u[c:], "..."); ok && strings.HasPrefix(target, "v") && !strings.HasPrefix(l, "v") {
			p = "v"
		}
		return u[:c] + "/compare/" + p + prev + "..." + p + version
	}
	return ""
}

// editVersionSection writes the date and the DOI badge of an existing version heading:
// the date replaces the heading's (or is added), the badge replaces a DOI badge of the
// section or goes one blank line under the heading.
func editVersionSection(content string, e ChangelogEdit) string {
	d := newDoc(content)
	head := d.findVersion(e.Version)
	if head < 0 {
		return content
	}
	out := append([]string(nil), d.lines...)
	nl := d.nl
	if e.Date != "" {
		s := lineText(out[head])
		m := versionHeadRE.FindStringSubmatch(s)
		rest := m[2]
		want := " - " + e.Date
		var nh string
		if loc := headDateRE.FindStringIndex(rest); loc != nil {
			nh = s[:len(s)-len(rest)] + want + rest[loc[1]:]
		} else if strings.TrimSpace(rest) == "" {
			// All of the trailing white space goes (a form feed too): kept, a second
			// edit would see it before the date and rewrite the line again.
			nh = s[:len(s)-len(rest)] + want
		} else {
			nh = s[:len(s)-len(rest)] + want + rest
		}
		out[head] = nh + lineEnd(out[head])
	}
	if e.DOI != "" {
		badge := Badge(e.DOI)
		found := false
		for i := head + 1; i < len(out); i++ {
			s := lineText(out[i])
			if strings.HasPrefix(s, "## ") || strings.HasPrefix(s, "### ") {
				break
			}
			if badgeRE.MatchString(s) {
				out[i] = badge + lineEnd(out[i])
				found = true
				break
			}
		}
		if !found {
			ins := []string{nl, badge + nl}
			if head+1 >= len(out) {
				if lineEnd(out[head]) == "" {
					out[head] += nl
				}
				out = append(out, nl, badge+nl)
			} else {
				// Keep the blank line that usually follows the heading after the badge.
				if lineText(out[head+1]) != "" {
					ins = append(ins, nl)
				}
				out = append(out[:head+1], append(ins, out[head+1:]...)...)
			}
		}
	}
	return strings.Join(out, "")
}

// Changelog releases a version in CHANGELOG.md (or undoes that) through the contents API.
type Changelog struct {
	Connection string `json:"connection" desc:"github connection to use"`
	Repo       string `json:"repo" desc:"repository, owner/name" required:"true"`
	Path       string `json:"path" desc:"file to edit" default:"CHANGELOG.md"`
	Branch     string `json:"branch" desc:"branch to commit to; default the default branch"`
	Version    string `json:"version" desc:"release version X.Y.Z" required:"true"`
	Action     string `json:"action" default:"release" enum:"release,unrelease,yank" desc:"release: the entries under ## [Unreleased] move under ## [X.Y.Z] - DATE with the DOI badge and links (an existing section is only re-dated); unrelease: undo that, for a release stopped before tagging; yank: mark a version reverted after tagging [YANKED], its entries back under Unreleased"`
	Date       string `json:"date" desc:"release date YYYY-MM-DD; default today on the run's clock, in time_zone"`
	TimeZone   string `json:"time_zone" desc:"IANA time zone of the default date, e.g. Europe/Oslo; default UTC"`
	DOI        string `json:"doi" desc:"reserved DOI, e.g. 10.5281/zenodo.123; empty writes no badge"`
	Message    string `json:"message" desc:"commit message template ({version}, {doi}, {date}); default by action: 'Release {version} ({date}) in the changelog', 'Unrelease {version} in the changelog: its entries go back under Unreleased', 'Yank {version} in the changelog: its entries go back under Unreleased'"`
	// A second release attempt on a later day only changes the date (CVS 3.6.0 was
	// re-dated so by hand on release day).
	RedateMessage string `json:"redate_message" desc:"commit message template when a released version only gets a new date" default:"Re-date {version} to {date} in the changelog"`
	// CESSDA adds the link to the GitHub release to the changelog's footer on release day
	// (e.g. CVS f9f8e71a, indexer 1fb35e2e); the tagged commit then carries it.
	ReleaseLink bool `json:"release_link" desc:"also add [X.Y.Z]: <repository>/releases/tag/X.Y.Z to the reference links at the end of the file" default:"true"`
	// A re-dating commit is made on the branch head: commits pushed after the release
	// commit would enter the release with it, unreviewed.
	OnCommit string `json:"on_commit" desc:"the commit a change must be made on (the release commit): when the branch head is another commit, a change is refused instead of releasing the later commits too"`
}

var (
	dateRE       = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	versionOKRE  = regexp.MustCompile(`^[^\s\[\]]+$`)
	defaultMsgs  = map[string]string{"release": "Release {version} ({date}) in the changelog", "unrelease": "Unrelease {version} in the changelog: its entries go back under Unreleased", "yank": "Yank {version} in the changelog: its entries go back under Unreleased"}
	actionVerbs  = map[string]string{"release": "release", "unrelease": "unrelease", "yank": "yank"}
	errNoVersion = errors.New("github.changelog: version is empty")
)

// Validate checks the date, DOI, version and time zone.
func (p *Changelog) Validate() error {
	if p.Date != "" && !dateRE.MatchString(p.Date) {
		return fmt.Errorf("github.changelog: date %q is not YYYY-MM-DD", p.Date)
	}
	if p.DOI != "" && !strings.HasPrefix(strings.TrimPrefix(strings.TrimPrefix(p.DOI, "https://doi.org/"), "doi:"), "10.") {
		return fmt.Errorf("github.changelog: doi %q does not look like a DOI (10.NNNN/...)", p.DOI)
	}
	if p.Version != "" && !versionOKRE.MatchString(p.Version) {
		return fmt.Errorf("github.changelog: version %q has a space or a bracket", p.Version)
	}
	if p.TimeZone != "" {
		if _, err := time.LoadLocation(p.TimeZone); err != nil {
			return fmt.Errorf("github.changelog: time_zone %q: %v", p.TimeZone, err)
		}
	}
	return nil
}

func (p *Changelog) action() string {
	if p.Action == "" {
		return "release"
	}
	return p.Action
}

// date is the date to write: the parameter, else today on the run's clock.
func (p *Changelog) date(sc *engine.StepContext) (string, error) {
	if p.Date != "" {
		return p.Date, nil
	}
	loc := time.UTC
	if p.TimeZone != "" {
		var err error
		if loc, err = time.LoadLocation(p.TimeZone); err != nil {
			return "", fmt.Errorf("github.changelog: time_zone %q: %v", p.TimeZone, err)
		}
	}
	return sc.Now().In(loc).Format("2006-01-02"), nil
}

func (p *Changelog) edit(ctx context.Context, sc *engine.StepContext, c *client, o, r string) (ChangelogEdit, error) {
	d, err := p.date(sc)
	if err != nil {
		return ChangelogEdit{}, err
	}
	e := ChangelogEdit{Version: p.Version, Date: d, DOI: strings.TrimPrefix(strings.TrimPrefix(p.DOI, "https://doi.org/"), "doi:")}
	if p.ReleaseLink && p.action() == "release" {
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

// apply runs the action on the file's text; a refusal names the file and repository.
func (p *Changelog) apply(content string, e ChangelogEdit) (ChangelogChange, error) {
	if e.Version == "" {
		return ChangelogChange{Text: content}, errNoVersion
	}
	var ch ChangelogChange
	var err error
	switch p.action() {
	case "unrelease":
		ch, err = UnreleaseChangelog(content, e)
	case "yank":
		ch, err = YankChangelog(content, e)
	default:
		ch, err = ReleaseChangelog(content, e)
	}
	var ce *ChangelogError
	if errors.As(err, &ce) {
		err = fmt.Errorf("%s of %s %s", p.Path, p.Repo, ce.What)
	}
	return ch, err
}

// commitAt reads a commit (ref: a SHA or a branch).
func (c *client) commitAt(ctx context.Context, o, r, ref string) (*gh.RepositoryCommit, error) {
	var cm *gh.RepositoryCommit
	if _, err := c.call(ctx, fmt.Sprintf("resolve %s in %s/%s", ref, o, r), func(ctx context.Context) (*gh.Response, error) {
		var rsp *gh.Response
		var err error
		cm, rsp, err = c.gh.Repositories.GetCommit(ctx, o, r, ref, nil)
		return rsp, err
	}); err != nil {
		return nil, err
	}
	return cm, nil
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
	cm, err := c.commitAt(ctx, o, r, ref)
	if err != nil {
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
	_, err := c.call(ctx, fmt.Sprintf("read %s in %s/%s", path, o, r), func(ctx context.Context) (*gh.Response, error) {
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

// blobAt is the blob SHA of path at commit ref; found is false when the file is missing.
func (c *client) blobAt(ctx context.Context, o, r, path, ref string) (blob string, found bool, err error) {
	var fc *gh.RepositoryContent
	rsp, err := c.call(ctx, fmt.Sprintf("read %s at %s in %s/%s", path, short(ref), o, r), func(ctx context.Context) (*gh.Response, error) {
		var rsp *gh.Response
		var err error
		fc, _, rsp, err = c.gh.Repositories.GetContents(ctx, o, r, path, &gh.RepositoryContentGetOptions{Ref: ref})
		return rsp, err
	})
	if is404(rsp, err) {
		return "", false, nil
	}
	if err != nil || fc == nil {
		return "", false, err
	}
	return fc.GetSHA(), true, nil
}

// fileCommit is the commit that last changed the file (blob is its content's SHA at the
// branch head): the one this step made, recorded before a crash could lose it, while the
// file is still as it left it; else found by walking back from the branch head.
func (p *Changelog) fileCommit(ctx context.Context, sc *engine.StepContext, c *client, o, r, blob string) (string, error) {
	var made string
	if sc.Recall("commit", &made) && made != "" {
		if b, ok, err := c.blobAt(ctx, o, r, p.Path, made); err == nil && ok && b == blob {
			return made, nil
		}
	}
	head, err := c.headSHA(ctx, o, r, p.Branch)
	if err != nil {
		return "", err
	}
	sha := head
	for i := 0; i < 30; i++ {
		cm, err := c.commitAt(ctx, o, r, sha)
		if err != nil {
			return "", err
		}
		if len(cm.Parents) == 0 {
			return sha, nil
		}
		parent := cm.Parents[0].GetSHA()
		b, ok, err := c.blobAt(ctx, o, r, p.Path, parent)
		if err != nil {
			return "", err
		}
		if !ok || b != blob {
			return sha, nil
		}
		sha = parent
	}
	sc.Logf("the commit that last changed %s is more than 30 commits back; using the head %s", p.Path, short(head))
	return head, nil
}

func (p *Changelog) describe(sc *engine.StepContext, date string) string {
	v, where := sc.Show("version", p.Version), fmt.Sprintf("%s of %s", p.Path, sc.Show("repo", p.Repo))
	if sc.Unknown("action") {
		return fmt.Sprintf("release, unrelease or yank %s in %s (the action is known after run)", v, where)
	}
	switch p.action() {
	case "unrelease":
		return fmt.Sprintf("unrelease %s in %s: its entries go back under ## [Unreleased]; its heading, badge and link go", v, where)
	case "yank":
		return fmt.Sprintf("yank %s in %s: mark it [YANKED], its entries back under ## [Unreleased]", v, where)
	}
	act := fmt.Sprintf("release %s in %s: the entries under ## [Unreleased] move under ## [%s] - %s", v, where, v, sc.Show("date", date))
	if p.DOI != "" || sc.Unknown("doi") {
		act += ", with the badge of DOI " + sc.Show("doi", p.DOI)
	}
	if p.ReleaseLink {
		act += ", and the link to its release"
	}
	return act
}

// Plan reads the file and says what the action would change; a refusal (no entries to
// release) fails the plan, before any approval is asked. It writes nothing.
func (p *Changelog) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	date, err := p.date(sc)
	if err != nil {
		return engine.Plan{}, err
	}
	act := p.describe(sc, date)
	for _, k := range []string{"repo", "version", "path", "branch", "action", "time_zone", "connection"} {
		if sc.Unknown(k) {
			return engine.Plan{Action: act}, nil
		}
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
	// What is not known yet changes what is written, never whether it may be.
	unknown := sc.Unknown("doi") || sc.Unknown("date")
	if sc.Unknown("doi") {
		e.DOI = ""
	}
	if sc.Unknown("date") {
		e.Date = ""
	}
	ch, err := p.apply(content, e)
	if err != nil {
		return engine.Plan{}, err
	}
	details := ch.Notes
	if unknown {
		details = append(details, "the date and DOI are known after earlier steps run")
	}
	return engine.Plan{Action: act, Details: details, NoChange: !ch.Changed && !unknown}, nil
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
		ch, err := p.apply(content, e)
		if err != nil {
			return nil, err
		}
		for _, n := range ch.Notes {
			sc.Logf("%s: %s", p.Path, n)
		}
		if !ch.Changed {
			// The commit to tag is the one carrying the edit.
			made, err := p.fileCommit(ctx, sc, c, o, r, sha)
			if err != nil {
				return nil, err
			}
			sc.Logf("%s needs no change for %s %s (last changed by %s)", p.Path, actionVerbs[p.action()], p.Version, short(made))
			return engine.Outputs{"changed": false, "commit": made, "entries": ch.Entries}, nil
		}
		if p.OnCommit != "" {
			head, err := c.headSHA(ctx, o, r, p.Branch)
			if err != nil {
				return nil, err
			}
			if head != p.OnCommit {
				return nil, fmt.Errorf("github: %s of %s needs a change for %s (%s), but the branch head %s is not the release commit %s: a commit on it would release what was pushed since, unreviewed; find out what was pushed, then resume with --skip %s --reason \"...\" to keep the file as it is, or release the later commits in a new version",
					p.Path, p.Repo, p.Version, strings.Join(ch.Notes, "; "), short(head), short(p.OnCommit), sc.StepID)
			}
		}
		tpl := p.Message
		if tpl == "" {
			tpl = defaultMsgs[p.action()]
		}
		if ch.OnlyDate {
			tpl = p.RedateMessage
		}
		msg := expand(tpl, map[string]string{"version": p.Version, "doi": e.DOI, "date": e.Date})
		opt := &gh.RepositoryContentFileOptions{Message: &msg, Content: []byte(ch.Text), SHA: &sha}
		if p.Branch != "" {
			opt.Branch = &p.Branch
		}
		var res *gh.RepositoryContentResponse
		rsp, err := c.call(ctx, fmt.Sprintf("update %s in %s", p.Path, p.Repo), func(ctx context.Context) (*gh.Response, error) {
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
		return engine.Outputs{"changed": true, "commit": res.Commit.GetSHA(), "entries": ch.Entries}, nil
	}
	return nil, engine.Transient(fmt.Errorf("github: %s in %s keeps changing (409 five times); try again", p.Path, p.Repo))
}
