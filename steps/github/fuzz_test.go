package github

import (
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
// heading, DOI badges) and returns the others with their line ends. When the file lacks
// a final newline, its last line's (empty) end is left out: an edit may complete it.
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
		if m := refLinkRE.FindStringSubmatch(s); m != nil && m[1] == version {
			continue // the version's release link
		}
		out = append(out, l)
	}
	return out
}

// FuzzEditChangelog: every line of the file but the version's heading, badge and release
// link is kept byte for byte and in order, and editing twice is editing once. The high bit
// of v asks for the release link (so the committed corpus keeps its shape).
func FuzzEditChangelog(f *testing.F) {
	f.Add("# Changelog\n\n## [Unreleased]\n\n- x\n\n## [1.0.0] - 2024-01-01\n\n- y\n\n[1.0.0]: https://e/1.0.0\n", uint8(0), true, true)
	f.Add("## [1.1.0]\n\n### Fixed\n\n- z\n", uint8(0), true, true)
	f.Add("## [1.1.0] - 2026-11-20\r\n\r\n[![DOI](https://zenodo.org/badge/DOI/10.5281/zenodo.1.svg)](https://doi.org/10.5281/zenodo.1)\r\n\r\n- a\r\n", uint8(0), true, false)
	f.Add("# Changelog\n\nintro", uint8(1), false, true)
	f.Add("```\n## [1.1.0]\n```\n## 2.0.0 – 2025-01-01 extra\n", uint8(2), true, true)
	f.Add("", uint8(0), false, false)
	f.Add("## [1.0.0]\n\n[unreleased]: https://e/c\n[1.0.0]: https://e/1.0.0", uint8(128), true, true)
	f.Add("[1.1.0]: https://x\r\n", uint8(128), false, false)
	versions := []string{"1.1.0", "2.0.0", "0.0.1"}
	f.Fuzz(func(t *testing.T, content string, v uint8, withDate, withDOI bool) {
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
		once, changed, err := EditChangelog(content, e)
		if err != nil {
			t.Fatalf("edit: %v", err)
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
			t.Fatalf("lines other than the version's heading and badge changed:\nin  %q\nout %q", content, once)
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
