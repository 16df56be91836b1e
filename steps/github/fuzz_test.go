package github

import (
	"errors"
	"sort"
	"strings"
	"testing"
)

// FuzzChecklistEdit: ticking an item changes one byte of the body, the space in that
// item's box, and nothing else; a second tick finds it ticked and changes nothing.
func FuzzChecklistEdit(f *testing.F) {
	f.Add("intro\r\n- [ ] A <!-- runbook:item=a -->\n- [ ] B <!-- runbook:item=b -->\n  * [ ] nested text\n", "b", "")
	f.Add("- [x] done <!-- runbook:item=a -->\n- [ ] a\n", "a", "a")
	f.Add("```\n- [ ] in a fence\n```\n+ [ ] plus item", "", "plus")
	f.Add("-\t[ ] tab\n- [X] upper", "", "tab")
	f.Add("", "", "")
	f.Fuzz(func(t *testing.T, body, key, text string) {
		out, found, already := TickItem(body, key, text)
		if !found || already {
			if out != body {
				t.Fatalf("found=%v already=%v but the body changed:\n%q\n%q", found, already, body, out)
			}
			if found {
				if f2, ticked := itemTicked(body, key, text); !f2 || !ticked {
					t.Fatalf("TickItem says ticked, itemTicked says found=%v ticked=%v", f2, ticked)
				}
			}
			return
		}
		if len(out) != len(body) {
			t.Fatalf("length %d -> %d:\n%q\n%q", len(body), len(out), body, out)
		}
		diff := -1
		for i := 0; i < len(body); i++ {
			if body[i] != out[i] {
				if diff >= 0 {
					t.Fatalf("bytes %d and %d both changed:\n%q\n%q", diff, i, body, out)
				}
				diff = i
			}
		}
		if diff < 0 || body[diff] != ' ' || out[diff] != 'x' {
			t.Fatalf("the change is not one box ticked (at %d):\n%q\n%q", diff, body, out)
		}
		if diff == 0 || body[diff-1] != '[' || diff+1 >= len(body) || body[diff+1] != ']' {
			t.Fatalf("the changed byte %d is not inside [ ]:\n%q", diff, body)
		}
		again, found2, already2 := TickItem(out, key, text)
		if !found2 || !already2 || again != out {
			t.Fatalf("second tick: found=%v already=%v changed=%v", found2, already2, again != out)
		}
		if f2, ticked := itemTicked(out, key, text); !f2 || !ticked {
			t.Fatalf("after the tick itemTicked says found=%v ticked=%v", f2, ticked)
		}
	})
}

// changelogKept drops the lines an edit may add or rewrite (blank lines, the version's
// heading, DOI badges, the version's and the [unreleased] reference links) and returns
// the others with their line ends. When the file lacks a final newline, its last line's
// (empty) end is left out: an edit may complete it.
func changelogKept(content, version string) []string {
	lines := strings.SplitAfter(content, "\n")
	var out []string
	for _, l := range lines {
		s := strings.TrimRight(l, "\r\n")
		if strings.TrimSpace(s) == "" || badgeRE.MatchString(s) {
			continue
		}
		if m := versionHeadRE.FindStringSubmatch(s); m != nil && m[1] == version && !strings.HasPrefix(s, "###") {
			continue
		}
		if m := refLinkRE.FindStringSubmatch(s); m != nil && (m[1] == version || strings.EqualFold(m[1], "unreleased")) {
			continue // the version's release link; the compare base of [unreleased]
		}
		out = append(out, l)
	}
	return out
}

// fuzzEdit builds the edit of the changelog fuzz targets. The high bit of v asks for the
// release link (so the committed corpus keeps its shape).
func fuzzEdit(v uint8, withDate, withDOI bool) ChangelogEdit {
	versions := []string{"1.1.0", "2.0.0", "0.0.1"}
	e := ChangelogEdit{Version: versions[int(v)%len(versions)]}
	if withDate {
		e.Date = "2026-11-24"
	}
	if withDOI {
		e.DOI = "10.5281/zenodo.9"
	}
	if v&0x80 != 0 {
		e.ReleaseURL = "https://github.com/o/r/releases/tag/" + e.Version
	}
	return e
}

// FuzzEditChangelog: a release either is refused (a *ChangelogError, nothing changed) or
// keeps every line of the file but the version's heading, badge and links byte for byte
// and in order (the entries under Unreleased move under the new heading, which keeps
// their order), and releasing twice is releasing once.
func FuzzEditChangelog(f *testing.F) {
	f.Add("# Changelog\n\n## [Unreleased]\n\n- x\n\n## [1.0.0] - 2024-01-01\n\n- y\n\n[1.0.0]: https://e/1.0.0\n", uint8(0), true, true)
	f.Add("## [1.1.0]\n\n### Fixed\n\n- z\n", uint8(0), true, true)
	f.Add("## [1.1.0] - 2026-11-20\r\n\r\n[![DOI](https://zenodo.org/badge/DOI/10.5281/zenodo.1.svg)](https://doi.org/10.5281/zenodo.1)\r\n\r\n- a\r\n", uint8(0), true, false)
	f.Add("# Changelog\n\nintro", uint8(1), false, true)
	f.Add("```\n## [1.1.0]\n```\n## 2.0.0 – 2025-01-01 extra\n", uint8(2), true, true)
	f.Add("", uint8(0), false, false)
	f.Add("## [1.0.0]\n\n[unreleased]: https://e/c\n[1.0.0]: https://e/1.0.0", uint8(128), true, true)
	f.Add("[1.1.0]: https://x\r\n", uint8(128), false, false)
	f.Add("## [Unreleased]\r\n### Added\r\n- x\r\n## [1.0.0] - 2024-01-01\r\n- y\r\n\r\n[Unreleased]: https://e/compare/1.0.0...HEAD\r\n[1.0.0]: https://e/releases/tag/1.0.0", uint8(128), true, true)
	f.Add("## Unreleased\n- x", uint8(129), true, false)
	f.Fuzz(func(t *testing.T, content string, v uint8, withDate, withDOI bool) {
		e := fuzzEdit(v, withDate, withDOI)
		once, changed, err := EditChangelog(content, e)
		if err != nil {
			var ce *ChangelogError
			if !errors.As(err, &ce) || once != content || changed {
				t.Fatalf("edit: %v (changed=%v)", err, changed)
			}
			return
		}
		if changed != (once != content) {
			t.Fatalf("changed=%v but the text %s", changed, map[bool]string{true: "differs", false: "is the same"}[once != content])
		}
		before, after := changelogKept(content, e.Version), changelogKept(once, e.Version)
		same := len(before) == len(after)
		for i := 0; same && i < len(before); i++ {
			last := i == len(before)-1 && !strings.HasSuffix(before[i], "\n")
			same = before[i] == after[i] || (last && strings.HasPrefix(after[i], before[i]) && strings.TrimRight(after[i], "\r\n") == strings.TrimRight(before[i], "\r"))
		}
		if !same {
			t.Fatalf("lines other than the version's heading, badge and links changed:\nin  %q\nout %q", content, once)
		}
		if newDoc(once).findVersion(e.Version) < 0 {
			t.Fatalf("no heading for %s:\n%q", e.Version, once)
		}
		if e.DOI != "" && !strings.Contains(once, Badge(e.DOI)) {
			t.Fatalf("no badge written:\n%q", once)
		}
		if e.ReleaseURL != "" {
			linked := false
			for _, l := range strings.SplitAfter(once, "\n") {
				m := refLinkRE.FindStringSubmatch(strings.TrimRight(l, "\r\n"))
				linked = linked || (m != nil && m[1] == e.Version)
			}
			if !linked {
				t.Fatalf("no release link written:\n%q", once)
			}
		}
		twice, changed2, err := EditChangelog(once, e)
		if err != nil || changed2 || twice != once {
			t.Fatalf("editing twice differs from once (changed=%v, err=%v):\nin    %q\nonce  %q\ntwice %q", changed2, err, content, once, twice)
		}
	})
}

// handMadeRelease reports whether the file already holds a part of the release of
// version written by hand, which unrelease takes away with the rest: the version's link,
// an [unreleased] link comparing from it, or (when release writes no badge) a DOI badge
// first under Unreleased, where release's badge would stand.
func handMadeRelease(content string, e ChangelogEdit) bool {
	d := newDoc(content)
	if _, labels := refLinks(d.lines); len(labels) > 0 {
		for _, l := range labels {
			if l == e.Version {
				return true
			}
		}
	}
	if _, ok := retargetUnreleased(content, e.Version, "x"); ok {
		return true
	}
	if u := d.findUnreleased(); u >= 0 && e.DOI == "" {
		body := d.lines[u+1 : d.end(u, e.Version)]
		return len(body) >= 2 && blankLine(body[0]) && badgeRE.MatchString(lineText(body[1]))
	}
	return false
}

// entryLines is the sorted list of a file's entry lines (without line ends).
func entryLines(content string) []string {
	var out []string
	for _, l := range strings.SplitAfter(content, "\n") {
		if isEntry(l) {
			out = append(out, lineText(l))
		}
	}
	sort.Strings(out)
	return out
}

// FuzzReleaseUnrelease: whenever release moves entries, unrelease (knowing only the
// version) gives back the file byte for byte, unless the file held part of that release
// already (handMadeRelease); yanking the release loses no entry line, and twice is once.
func FuzzReleaseUnrelease(f *testing.F) {
	f.Add("# Changelog\n\n## [Unreleased]\n\n### Added\n\n- x\n\n## [1.0.0] - 2024-01-01\n\n- y\n\n[unreleased]: https://e/compare/1.0.0...HEAD\n[1.0.0]: https://e/releases/tag/1.0.0\n", uint8(128), true, true)
	f.Add("## [Unreleased]\r\n- x", uint8(128), true, true)
	f.Add("## Unreleased\n- x\n\n", uint8(129), false, false)
	f.Add("## [Unreleased]\n\n- x\n\n[Unreleased]: https://e/compare/v1.0.0...HEAD\n[1.0.0]: https://e/compare/v0.9.0...v1.0.0\n\n## [1.0.0]\n- y", uint8(128), true, false)
	f.Add("## [Unreleased]\n- x\r", uint8(130), true, true)
	f.Add("```\n## [Unreleased]\n```\n## [Unreleased]\n<!-- hint -->\n- x\n## [0.9.0]\n", uint8(2), false, true)
	f.Fuzz(func(t *testing.T, content string, v uint8, withDate, withDOI bool) {
		e := fuzzEdit(v, withDate, withDOI)
		rel, err := ReleaseChangelog(content, e)
		if err != nil || !rel.Moved {
			return
		}
		if rel.Entries <= 0 {
			t.Fatalf("moved %d entries:\n%q", rel.Entries, content)
		}
		if !handMadeRelease(content, e) {
			back, err := UnreleaseChangelog(rel.Text, ChangelogEdit{Version: e.Version})
			if err != nil || back.Text != content || back.Entries != rel.Entries {
				t.Fatalf("unrelease (err %v, %d entries of %d) is not the file released:\nin        %q\nreleased  %q\nunrelease %q", err, back.Entries, rel.Entries, content, rel.Text, back.Text)
			}
		}
		y, err := YankChangelog(rel.Text, ChangelogEdit{Version: e.Version, Date: e.Date})
		if err != nil || !y.Changed || y.Entries != rel.Entries {
			t.Fatalf("yank: err %v, changed %v, %d entries of %d:\n%q", err, y.Changed, y.Entries, rel.Entries, rel.Text)
		}
		if got, want := entryLines(y.Text), entryLines(content); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("yank lost or added entry lines:\nin   %q\nyank %q", content, y.Text)
		}
		if y2, _ := YankChangelog(y.Text, ChangelogEdit{Version: e.Version, Date: e.Date}); y2.Changed {
			t.Fatalf("yanking twice differs from once:\n%q\n%q", y.Text, y2.Text)
		}
	})
}
