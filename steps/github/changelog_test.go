package github

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/engine/enginetest"
)

var updateChangelogs = flag.Bool("update-changelogs", false, "rewrite the golden changelogs in testdata/changelogs/")

const doi9 = "10.5281/zenodo.9"

// roundTrip checks what every release that moves entries must give: releasing again
// changes nothing, and unrelease gives back the file released.
func roundTrip(t *testing.T, name, in string, rel ChangelogChange, e ChangelogEdit) {
	t.Helper()
	if again, err := ReleaseChangelog(rel.Text, e); err != nil || again.Changed {
		t.Errorf("%s: releasing twice changed the file (err %v):\n%q", name, err, again.Text)
	}
	back, err := UnreleaseChangelog(rel.Text, ChangelogEdit{Version: e.Version})
	if err != nil || back.Text != in || back.Entries != rel.Entries {
		t.Errorf("%s: unrelease (err %v, %d entries of %d) does not give back the file:\n got %q\nwant %q", name, err, back.Entries, rel.Entries, back.Text, in)
	}
}

// TestReleaseMovesUnreleased: the entries under Unreleased move under the new version's
// heading, which comes right after an empty Unreleased; badge, links and every other byte
// as the file has them.
func TestReleaseMovesUnreleased(t *testing.T) {
	badge := Badge(doi9)
	cases := []struct {
		name, in, want string
		e              ChangelogEdit
		entries        int
	}{
		{"CESSDA style",
			"# Changelog\n\n## [Unreleased]\n\n### Added\n\n- x\n\n### Fixed\n\n- z\n\n## [1.0.0] - 2024-01-01\n\n- y\n\n[unreleased]: https://github.com/o/r/compare/1.0.0...HEAD\n[1.0.0]: https://github.com/o/r/releases/tag/1.0.0\n",
			"# Changelog\n\n## [Unreleased]\n\n## [1.1.0] - 2026-11-24\n\n" + badge + "\n\n### Added\n\n- x\n\n### Fixed\n\n- z\n\n## [1.0.0] - 2024-01-01\n\n- y\n\n[unreleased]: https://github.com/o/r/compare/1.1.0...HEAD\n[1.1.0]: https://github.com/o/r/releases/tag/1.1.0\n[1.0.0]: https://github.com/o/r/releases/tag/1.0.0\n",
			ChangelogEdit{Version: "1.1.0", Date: "2026-11-24", DOI: doi9, ReleaseURL: "https://github.com/o/r/releases/tag/1.1.0"}, 2},
		{"CRLF, [Unreleased] link, v tags, no final newline",
			"## [Unreleased]\r\n- x\r\n\r\n## [1.0.0]\r\n- y\r\n\r\n[Unreleased]: https://e/compare/v1.0.0...HEAD\r\n[1.0.0]: https://e/releases/tag/v1.0.0",
			"## [Unreleased]\r\n\r\n## [1.1.0] - 2026-11-24\r\n\r\n" + badge + "\r\n- x\r\n\r\n## [1.0.0]\r\n- y\r\n\r\n[Unreleased]: https://e/compare/v1.1.0...HEAD\r\n[1.1.0]: https://e/releases/tag/v1.1.0\r\n[1.0.0]: https://e/releases/tag/v1.0.0",
			ChangelogEdit{Version: "1.1.0", Date: "2026-11-24", DOI: doi9, ReleaseURL: "https://e/releases/tag/v1.1.0"}, 1},
		{"compare links for versions (Keep a Changelog's own style)",
			"## [Unreleased]\n\n### Fixed\n\n- z\n\n## [1.0.0] - 2024-01-01\n\n- y\n\n[unreleased]: https://github.com/o/r/compare/v1.0.0...HEAD\n[1.0.0]: https://github.com/o/r/compare/v0.9.0...v1.0.0\n",
			"## [Unreleased]\n\n## [1.1.0] - 2026-11-24\n\n### Fixed\n\n- z\n\n## [1.0.0] - 2024-01-01\n\n- y\n\n[unreleased]: https://github.com/o/r/compare/v1.1.0...HEAD\n[1.1.0]: https://github.com/o/r/compare/v1.0.0...v1.1.0\n[1.0.0]: https://github.com/o/r/compare/v0.9.0...v1.0.0\n",
			ChangelogEdit{Version: "1.1.0", Date: "2026-11-24", ReleaseURL: "https://github.com/o/r/releases/tag/1.1.0"}, 1},
		{"headings without brackets (the aggregator's), first release, no links",
			"## Unreleased\n\n- x\n  continued\n",
			"## Unreleased\n\n## 0.1.0 - 2026-11-24\n\n- x\n  continued\n\n[0.1.0]: https://e/releases/tag/0.1.0\n",
			ChangelogEdit{Version: "0.1.0", Date: "2026-11-24", ReleaseURL: "https://e/releases/tag/0.1.0"}, 2},
		{"a ## heading inside the entries, a fenced heading",
			"## [Unreleased]\n## Changes\n```\n## [9.0.0]\n```\n- x\n## [1.0.0]\n",
			"## [Unreleased]\n\n## [1.1.0] - 2026-11-24\n## Changes\n```\n## [9.0.0]\n```\n- x\n## [1.0.0]\n",
			ChangelogEdit{Version: "1.1.0", Date: "2026-11-24"}, 3},
	}
	for _, c := range cases {
		rel, err := ReleaseChangelog(c.in, c.e)
		if err != nil || !rel.Changed || !rel.Moved || rel.Text != c.want || rel.Entries != c.entries {
			t.Errorf("%s (err %v, moved %v, %d entries):\n got %q\nwant %q", c.name, err, rel.Moved, rel.Entries, rel.Text, c.want)
			continue
		}
		roundTrip(t, c.name, c.in, rel, c.e)
	}
}

// TestReleaseLeavesAStaleLink: an [unreleased] link that does not compare from the
// previous version is left alone (and said so), so that unrelease gives the file back.
func TestReleaseLeavesAStaleLink(t *testing.T) {
	in := "## [Unreleased]\n- x\n\n## [1.0.0]\n- y\n\n[unreleased]: https://e/compare/0.9.0...HEAD\n"
	e := ChangelogEdit{Version: "1.1.0", Date: "2026-11-24"}
	rel, err := ReleaseChangelog(in, e)
	if err != nil || !strings.Contains(rel.Text, "compare/0.9.0...HEAD") || !strings.Contains(strings.Join(rel.Notes, "\n"), "compares from 0.9.0, not from the previous version 1.0.0: left as it is") {
		t.Fatalf("%v %q %q", err, rel.Text, rel.Notes)
	}
	roundTrip(t, "stale", in, rel, e)
}

// TestUnreleaseTakesHandMadeParts: parts of the release a person wrote before it (here
// the version's link) are kept by release and taken away by unrelease with the rest.
func TestUnreleaseTakesHandMadeParts(t *testing.T) {
	in := "## [Unreleased]\n- x\n\n## [1.0.0]\n- y\n\n[1.1.0]: https://e/releases/tag/1.1.0\n[1.0.0]: https://e/releases/tag/1.0.0\n"
	e := ChangelogEdit{Version: "1.1.0", Date: "2026-11-24", ReleaseURL: "https://e/releases/tag/1.1.0"}
	rel, _ := ReleaseChangelog(in, e)
	if strings.Count(rel.Text, "[1.1.0]: ") != 1 {
		t.Fatalf("release: %q", rel.Text)
	}
	back, _ := UnreleaseChangelog(rel.Text, ChangelogEdit{Version: "1.1.0"})
	if back.Text != strings.Replace(in, "[1.1.0]: https://e/releases/tag/1.1.0\n", "", 1) {
		t.Fatalf("unrelease: %q", back.Text)
	}
}

// TestReleaseRefusals: nothing to release is refused with a message that says what to do.
func TestReleaseRefusals(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"empty Unreleased", "## [Unreleased]\n\n## [1.0.0] - 2024-01-01\n\n- y\n", "has no entries under ## [Unreleased] for 1.1.0: add what changed (### Added, ### Fixed, ...) under ## [Unreleased] before releasing"},
		{"only the template's headings and hint", "## [Unreleased]\n\n### Added\n\n### Fixed\n\n<!-- add entries here -->\n\n## [1.0.0]\n- y\n", "has no entries under ## [Unreleased] for 1.1.0"},
		{"no Unreleased section", "# Changelog\n\nintro", "has no entries under ## [Unreleased] for 1.1.0"},
		{"only links under Unreleased", "## [Unreleased]\n\n[unreleased]: https://e/compare/1.0.0...HEAD\n", "has no entries"},
		{"empty version section, entries waiting", "## [Unreleased]\n- x\n## [1.1.0]\n\n## [1.0.0]\n", "has an empty ## [1.1.0] section while 1 entry lines wait under ## [Unreleased]: move them under ## [1.1.0] (or delete the empty heading)"},
		{"empty version section", "## [Unreleased]\n## [1.1.0] - 2026-11-24\n\n" + Badge(doi9) + "\n", "has no entries under ## [Unreleased] for 1.1.0"},
		{"yanked", "## [Unreleased]\n- x\n## [1.1.0] - 2026-11-20 [YANKED]\n", "has ## [1.1.0] marked [YANKED]: a yanked version is not released again"},
	}
	for _, c := range cases {
		out, err := ReleaseChangelog(c.in, ChangelogEdit{Version: "1.1.0", Date: "2026-11-24", DOI: doi9})
		var ce *ChangelogError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), c.want) || out.Changed || out.Text != c.in {
			t.Errorf("%s: want refusal %q, got %v (changed %v)", c.name, c.want, err, out.Changed)
		}
		if ok, _ := engine.IsTransient(err); ok {
			t.Errorf("%s: the refusal is transient", c.name)
		}
	}
}

// TestReleaseExistingSection: a section written by hand (CESSDA's way) or by an earlier
// run is not moved again: it gets the date, the badge and the links.
func TestReleaseExistingSection(t *testing.T) {
	badge := Badge(doi9)
	e := ChangelogEdit{Version: "1.1.0", Date: "2026-11-24", DOI: doi9}
	cases := []struct{ name, in, want string }{
		{"heading without date or badge",
			"## [1.1.0]\n\n### Fixed\n\n- z\n",
			"## [1.1.0] - 2026-11-24\n\n" + badge + "\n\n### Fixed\n\n- z\n"},
		{"replace old date and badge, CRLF",
			"## [1.1.0] - 2026-11-20\r\n\r\n[![DOI](https://zenodo.org/badge/DOI/10.5281/zenodo.1.svg)](https://doi.org/10.5281/zenodo.1)\r\n\r\n- a\r\n",
			"## [1.1.0] - 2026-11-24\r\n\r\n" + badge + "\r\n\r\n- a\r\n"},
		{"entries added under Unreleased since stay there",
			"## [Unreleased]\n\n- later\n\n## [1.1.0] - 2026-11-24\n\n" + badge + "\n\n- a\n\n## [1.0.0]\n\n[unreleased]: https://e/compare/1.0.0...HEAD\n",
			"## [Unreleased]\n\n- later\n\n## [1.1.0] - 2026-11-24\n\n" + badge + "\n\n- a\n\n## [1.0.0]\n\n[unreleased]: https://e/compare/1.1.0...HEAD\n"},
	}
	for _, c := range cases {
		got, err := ReleaseChangelog(c.in, e)
		if err != nil || got.Moved || got.Text != c.want || got.Entries != 1 {
			t.Errorf("%s (err %v, moved %v):\n got %q\nwant %q", c.name, err, got.Moved, got.Text, c.want)
		}
		if again, _ := ReleaseChangelog(got.Text, e); again.Changed {
			t.Errorf("%s: second edit changed the file", c.name)
		}
	}
	// A later day only re-dates: one line differs, and the change says so.
	rel, _ := ReleaseChangelog("## [Unreleased]\n\n- x\n\n## [1.0.0]\n", e)
	e.Date = "2026-11-25"
	re, err := ReleaseChangelog(rel.Text, e)
	if err != nil || !re.OnlyDate || re.Text != strings.Replace(rel.Text, "2026-11-24", "2026-11-25", 1) || re.Notes[0] != "re-date 1.1.0 from 2026-11-24 to 2026-11-25" {
		t.Fatalf("re-date: %v %v %q %q", err, re.OnlyDate, re.Text, re.Notes)
	}
}

// TestEditChangelogReleaseLink: the release's reference link goes among the file's links,
// after [unreleased] and before the newest version's; a file without links gets it at the
// end; a link the version already has is kept as it is. removeReleaseLink undoes it.
func TestEditChangelogReleaseLink(t *testing.T) {
	const url = "https://github.com/cessda/cessda.cvs.two/releases/tag/1.1.0"
	cases := []struct{ name, in, want string }{
		{"between unreleased and the newest version",
			"## [1.0.0] - 2024-01-01\n\n- y\n\n[unreleased]: https://e/compare/1.0.0...HEAD\n[1.0.0]: https://e/1.0.0\n",
			"## [1.0.0] - 2024-01-01\n\n- y\n\n[unreleased]: https://e/compare/1.0.0...HEAD\n[1.1.0]: " + url + "\n[1.0.0]: https://e/1.0.0\n"},
		{"after the only link, CRLF, no final newline (kept so)",
			"- y\r\n\r\n[unreleased]: https://e/compare",
			"- y\r\n\r\n[unreleased]: https://e/compare\r\n[1.1.0]: " + url},
		{"no links yet",
			"# Changelog\n\n- y\n",
			"# Changelog\n\n- y\n\n[1.1.0]: " + url + "\n"},
		{"no links yet, ends with a blank line",
			"- y\n\n",
			"- y\n\n\n[1.1.0]: " + url + "\n"},
		{"no links yet, no final newline",
			"- y",
			"- y\n\n[1.1.0]: " + url},
		{"empty file", "", "[1.1.0]: " + url + "\n"},
		{"the version has a link", "[1.1.0]: https://elsewhere\n", "[1.1.0]: https://elsewhere\n"},
	}
	for _, c := range cases {
		got := addReleaseLink(c.in, "1.1.0", url)
		if got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
		if again := addReleaseLink(got, "1.1.0", url); again != got {
			t.Errorf("%s: second edit changed the file", c.name)
		}
		if got != c.in {
			if back, ok := removeReleaseLink(got, "1.1.0"); !ok || back != c.in {
				t.Errorf("%s: removing the link gives %q, want %q", c.name, back, c.in)
			}
		}
	}
}

// TestUnreleaseMerges: entries added under Unreleased after the release stay, merged
// with the version's: the same ### subsection once, the version's entries first.
func TestUnreleaseMerges(t *testing.T) {
	in := "## [Unreleased]\n\n### Fixed\n\n- new fix\n\n### Security\n\n- sec\n\n## [1.1.0] - 2026-11-24\n\n" + Badge(doi9) + "\n\n### Added\n\n- x\n\n### Fixed\n\n- old fix\n\n## [1.0.0] - 2024-01-01\n\n- y\n\n[unreleased]: https://e/compare/1.1.0...HEAD\n[1.1.0]: https://e/releases/tag/1.1.0\n[1.0.0]: https://e/releases/tag/1.0.0\n"
	want := "## [Unreleased]\n\n### Added\n\n- x\n\n### Fixed\n\n- old fix\n- new fix\n\n### Security\n\n- sec\n\n## [1.0.0] - 2024-01-01\n\n- y\n\n[unreleased]: https://e/compare/1.0.0...HEAD\n[1.0.0]: https://e/releases/tag/1.0.0\n"
	got, err := UnreleaseChangelog(in, ChangelogEdit{Version: "1.1.0"})
	if err != nil || got.Text != want || got.Entries != 2 {
		t.Fatalf("err %v, %d entries:\n got %q\nwant %q", err, got.Entries, got.Text, want)
	}
	if again, _ := UnreleaseChangelog(got.Text, ChangelogEdit{Version: "1.1.0"}); again.Changed {
		t.Fatal("unreleasing twice changed the file")
	}
	// Paragraph-style entries (Searchkit's) stay paragraphs.
	para := mergeBodies([]string{"\n", "### Fixed\n", "\n", "A.\n", "\n", "B.\n", "\n"}, []string{"\n", "### Fixed\n", "\n", "C.\n", "\n"}, "\n")
	if s := strings.Join(para, ""); s != "\n### Fixed\n\nA.\n\nB.\n\nC.\n\n" {
		t.Fatalf("paragraphs: %q", s)
	}
	// A section written by hand in a file without Unreleased becomes Unreleased.
	hand := "# Changelog\n\n## [3.6.0] - 2024-06-17\n\n" + Badge(doi9) + "\n\n### Changed\n\n* a\n\n## [3.4.0] - 2023-08-29\n\n* b\n"
	if got, _ := UnreleaseChangelog(hand, ChangelogEdit{Version: "3.6.0"}); got.Text != "# Changelog\n\n## [Unreleased]\n\n### Changed\n\n* a\n\n## [3.4.0] - 2023-08-29\n\n* b\n" {
		t.Fatalf("no Unreleased: %q", got.Text)
	}
}

// TestYank: the yanked version keeps its heading (marked) and link, loses its entries
// (back under Unreleased, for the next version) and its badge; the next release moves
// them again, above the yanked heading, and compares from the yanked tag.
func TestYank(t *testing.T) {
	e := ChangelogEdit{Version: "1.1.0", Date: "2026-11-24", DOI: doi9, ReleaseURL: "https://e/releases/tag/1.1.0"}
	in := "# Changelog\n\n## [Unreleased]\n\n### Added\n\n- x\n\n## [1.0.0] - 2024-01-01\n\n- y\n\n[unreleased]: https://e/compare/1.0.0...HEAD\n[1.0.0]: https://e/releases/tag/1.0.0\n"
	rel, _ := ReleaseChangelog(in, e)
	y, err := YankChangelog(rel.Text, ChangelogEdit{Version: "1.1.0"})
	want := "# Changelog\n\n## [Unreleased]\n\n### Added\n\n- x\n\n## [1.1.0] - 2026-11-24 [YANKED]\n\n## [1.0.0] - 2024-01-01\n\n- y\n\n[unreleased]: https://e/compare/1.1.0...HEAD\n[1.1.0]: https://e/releases/tag/1.1.0\n[1.0.0]: https://e/releases/tag/1.0.0\n"
	if err != nil || y.Text != want || y.Entries != 1 {
		t.Fatalf("err %v, %d entries:\n got %q\nwant %q", err, y.Entries, y.Text, want)
	}
	if again, _ := YankChangelog(y.Text, ChangelogEdit{Version: "1.1.0"}); again.Changed {
		t.Fatal("yanking twice changed the file")
	}
	if _, err := ReleaseChangelog(y.Text, e); err == nil || !strings.Contains(err.Error(), "[YANKED]") {
		t.Fatalf("a yanked version released again: %v", err)
	}
	next, err := ReleaseChangelog(y.Text, ChangelogEdit{Version: "1.1.1", Date: "2026-11-25", ReleaseURL: "https://e/releases/tag/1.1.1"})
	if err != nil || !strings.Contains(next.Text, "## [Unreleased]\n\n## [1.1.1] - 2026-11-25\n\n### Added\n\n- x\n\n## [1.1.0] - 2026-11-24 [YANKED]\n") || !strings.Contains(next.Text, "[unreleased]: https://e/compare/1.1.1...HEAD\n[1.1.1]: https://e/releases/tag/1.1.1\n[1.1.0]:") {
		t.Fatalf("next release after the yank (%v):\n%s", err, next.Text)
	}
	// A file without Unreleased (CESSDA's) gets one above the newest version.
	hand := "# Changelog\n\n## [3.6.0] - 2024-06-17\n\n" + Badge(doi9) + "\n\n### Changed\n\n* a\n\n## [3.4.0] - 2023-08-29\n\n* b\n"
	if got, _ := YankChangelog(hand, ChangelogEdit{Version: "3.6.0"}); got.Text != "# Changelog\n\n## [Unreleased]\n\n### Changed\n\n* a\n\n## [3.6.0] - 2024-06-17 [YANKED]\n\n## [3.4.0] - 2023-08-29\n\n* b\n" {
		t.Fatalf("no Unreleased: %q", got.Text)
	}
	if got, _ := YankChangelog(hand, ChangelogEdit{Version: "9.9.9"}); got.Changed {
		t.Fatal("yanking a version the file lacks changed it")
	}
}

// unreleasedBlock puts an Unreleased section in CESSDA's style (and, with compareFrom, an
// [unreleased] link) into a real changelog, which has none: CESSDA writes the version's
// section by hand.
func unreleasedBlock(src, repo, compareFrom string) string {
	block := "## [Unreleased]\n\n### Added\n\n- [#1234](https://github.com/cessda/cessda.cdc.versions/issues/1234) Added the release of the changelog to the runbook\n\n### Fixed\n\n- [#1235](https://github.com/cessda/cessda.cdc.versions/issues/1235) Fixed a release date\n\n"
	i := strings.Index(src, "\n## ") + 1
	out := src[:i] + block + src[i:]
	if compareFrom != "" {
		j := regexp.MustCompile(`(?m)^\[\d`).FindStringIndex(out)[0]
		out = out[:j] + "[unreleased]: https://github.com/" + repo + "/compare/" + compareFrom + "...HEAD\n" + out[j:]
	}
	return out
}

// TestRealChangelogs: golden tests on CESSDA's changelogs (testdata/changelogs/README.md).
// Releasing 9.9.9, unreleasing it gives the input back; yanking it has a golden file too.
// And on the real files as they are: unreleasing the newest version, then releasing it
// with its own date and DOI, writes exactly what CESSDA wrote by hand (plus the empty
// Unreleased heading).
func TestRealChangelogs(t *testing.T) {
	cases := []struct {
		file, repo, compareFrom string
		newest, date, doi       string
		links                   bool
	}{
		{"harvester", "cessda/cessda.metadata.harvester", "3.6.0", "3.6.0", "2024-06-17", "10.5281/zenodo.12089946", true},
		{"indexer", "cessda/cessda.cdc.osmh-indexer.cmm", "", "3.4.0", "2023-08-29", "", true},
		{"cvs-head", "cessda/cessda.cvs.two", "", "3.5.0", "2025-06-17", "", false},
	}
	dir := filepath.Join("testdata", "changelogs")
	golden := func(name, got string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if *updateChangelogs {
			if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("%v (run with -update-changelogs)", err)
		}
		if got != string(want) {
			t.Errorf("%s differs from the golden file:\n%s", name, got)
		}
	}
	releaseURL := func(repo, v string, links bool) string {
		if !links {
			return ""
		}
		return "https://github.com/" + repo + "/releases/tag/" + v
	}
	for _, c := range cases {
		raw, err := os.ReadFile(filepath.Join(dir, c.file+".md"))
		if err != nil {
			t.Fatal(err)
		}
		src := string(raw)
		in := unreleasedBlock(src, c.repo, c.compareFrom)
		e := ChangelogEdit{Version: "9.9.9", Date: "2026-11-24", DOI: "10.5281/zenodo.9999999", ReleaseURL: releaseURL(c.repo, "9.9.9", c.links)}
		rel, err := ReleaseChangelog(in, e)
		if err != nil || !rel.Moved || rel.Entries != 2 {
			t.Fatalf("%s: %v (moved %v, %d entries)", c.file, err, rel.Moved, rel.Entries)
		}
		golden(c.file+".release-9.9.9.golden.md", rel.Text)
		roundTrip(t, c.file, in, rel, e)
		y, err := YankChangelog(rel.Text, ChangelogEdit{Version: "9.9.9"})
		if err != nil || y.Entries != 2 {
			t.Fatalf("%s: yank %v", c.file, err)
		}
		golden(c.file+".yank-9.9.9.golden.md", y.Text)
		if again, _ := YankChangelog(y.Text, ChangelogEdit{Version: "9.9.9"}); again.Changed {
			t.Errorf("%s: yanking twice changed the file", c.file)
		}

		un, err := UnreleaseChangelog(src, ChangelogEdit{Version: c.newest})
		if err != nil || !un.Changed {
			t.Fatalf("%s: unrelease %s: %v", c.file, c.newest, err)
		}
		re, err := ReleaseChangelog(un.Text, ChangelogEdit{Version: c.newest, Date: c.date, DOI: c.doi, ReleaseURL: releaseURL(c.repo, c.newest, c.links)})
		i := strings.Index(src, "\n## [") + 1
		if want := src[:i] + "## [Unreleased]\n\n" + src[i:]; err != nil || re.Text != want {
			t.Errorf("%s: releasing %s again does not write what CESSDA wrote (%v):\n%s", c.file, c.newest, err, re.Text)
		}
	}
}

func TestTickItemOnlyThatLine(t *testing.T) {
	body := "intro\r\n- [ ] A <!-- runbook:item=a -->\n- [ ] B <!-- runbook:item=b -->\n  * [ ] nested text\n"
	got, found, already := TickItem(body, "b", "")
	if !found || already || got != "intro\r\n- [ ] A <!-- runbook:item=a -->\n- [x] B <!-- runbook:item=b -->\n  * [ ] nested text\n" {
		t.Fatalf("%q", got)
	}
	got, found, _ = TickItem(got, "", "nested text")
	if !found || !strings.Contains(got, "  * [x] nested text\n") {
		t.Fatalf("%q", got)
	}
	if _, _, already := TickItem(got, "b", ""); !already {
		t.Fatal("not seen as ticked")
	}
}

// simChangelog is a CESSDA changelog with two entries waiting under Unreleased.
const simChangelog = "# Changelog\n\nAll notable changes to the CESSDA Vocabulary Service source code are documented in this file.\n\n" +
	"## [Unreleased]\n\n### Added\n\n- [#1201](https://github.com/cessda/cessda.cvs.two/issues/1201) Added the release runbook\n\n" +
	"### Fixed\n\n- [#1202](https://github.com/cessda/cessda.cvs.two/issues/1202) Fixed the search page\n\n" +
	"## [3.6.0] - 2025-11-24\n\n" + "[![DOI](https://zenodo.org/badge/DOI/10.5281/zenodo.17660802.svg)](https://doi.org/10.5281/zenodo.17660802)" + "\n\n" +
	"### Fixed\n\n- [#1170](https://github.com/cessda/cessda.cvs.two/issues/1170) Fixed the export\n\n" +
	"[unreleased]: https://github.com/cessda/cessda.cvs.two/compare/3.6.0...HEAD\n" +
	"[3.6.0]: https://github.com/cessda/cessda.cvs.two/releases/tag/3.6.0\n"

// commitMessage reads a commit's message through the API.
func (f *fixture) commitMessage(t *testing.T, repo, sha string) string {
	t.Helper()
	c, o, r, err := repoClient(f.ctx.StepContext, "", repo)
	if err != nil {
		t.Fatal(err)
	}
	cm, err := c.commitAt(context.Background(), o, r, sha)
	if err != nil {
		t.Fatal(err)
	}
	return cm.GetCommit().GetMessage()
}

// TestChangelogActions runs the step against githubsim: release moves the entries in one
// commit; again the same day changes nothing and names that commit (also from a fresh
// journal, with later commits on the branch); a later day only re-dates; unrelease gives
// back the file; yank.
func TestChangelogActions(t *testing.T) {
	f := setup(t)
	repo := "cessda/cessda.cvs.two"
	f.sim.CreateRepo(repo, map[string]string{"CHANGELOG.md": simChangelog})
	with := map[string]any{"repo": repo, "version": "3.6.1", "doi": "10.5281/zenodo.17949337", "message": "#1193: Add the DOI and date of {version} to the changelog"}
	s := f.step(t, "github.changelog", with)
	p := f.plan(t, s)
	if p.NoChange || !strings.Contains(strings.Join(p.Details, "\n"), "move 2 entry lines from ## [Unreleased] under ## [3.6.1] - 2026-11-24") {
		t.Fatalf("plan: %+v", p)
	}
	w := f.sim.WriteCount()
	out := f.run(t, s)
	got, _ := f.sim.File(repo, "", "CHANGELOG.md")
	want := strings.NewReplacer(
		"## [Unreleased]\n\n", "## [Unreleased]\n\n## [3.6.1] - 2026-11-24\n\n"+Badge("10.5281/zenodo.17949337")+"\n\n",
		"compare/3.6.0...HEAD\n", "compare/3.6.1...HEAD\n[3.6.1]: "+f.sim.URL()+repo+"/releases/tag/3.6.1\n",
	).Replace(simChangelog)
	if got != want {
		t.Fatalf("released changelog:\n got %q\nwant %q", got, want)
	}
	release := f.sim.Head(repo, "")
	if out["changed"] != true || out["commit"] != release || out["entries"] != 2 || f.sim.WriteCount() != w+1 {
		t.Fatalf("outputs %v, %d writes", out, f.sim.WriteCount()-w)
	}
	if m := f.commitMessage(t, repo, release); m != "#1193: Add the DOI and date of 3.6.1 to the changelog" {
		t.Fatalf("message %q", m)
	}

	// Again the same day: nothing to do, the release commit is the output.
	if p := f.plan(t, s); !p.NoChange {
		t.Fatalf("plan after the release: %+v", p)
	}
	w = f.sim.WriteCount()
	if out := f.run(t, s); out["changed"] != false || out["commit"] != release || out["entries"] != 2 || f.sim.WriteCount() != w {
		t.Fatalf("second run: %v", out)
	}
	// A fresh run (no journal) after someone pushed more: the commit that last changed
	// the file, not the branch head.
	f.sim.Commit(repo, "", "A late fix", map[string]string{"LATE.md": "late\n"})
	f.sim.Commit(repo, "", "Another", map[string]string{"LATE.md": "later\n"})
	fresh := enginetest.NewContext(t, "changelog-2")
	fresh.Clock, fresh.Conns = f.ctx.Clock, f.ctx.Conns
	if out, err := s.Run(context.Background(), fresh.StepContext); err != nil || out["commit"] != release {
		t.Fatalf("fresh run: %v %v (release %s, head %s)", out, err, release, f.sim.Head(repo, ""))
	}

	// A later day: only the date changes, in a re-date commit.
	f.ctx.Clock.(*engine.FakeClock).Advance(24 * time.Hour)
	p = f.plan(t, s)
	if p.NoChange || len(p.Details) == 0 || p.Details[0] != "re-date 3.6.1 from 2026-11-24 to 2026-11-25" {
		t.Fatalf("plan on a later day: %+v", p)
	}
	out = f.run(t, s)
	redated, _ := f.sim.File(repo, "", "CHANGELOG.md")
	if out["changed"] != true || redated != strings.Replace(want, "## [3.6.1] - 2026-11-24", "## [3.6.1] - 2026-11-25", 1) {
		t.Fatalf("re-date %v:\n%s", out, redated)
	}
	if m := f.commitMessage(t, repo, out["commit"].(string)); m != "Re-date 3.6.1 to 2026-11-25 in the changelog" {
		t.Fatalf("re-date message %q", m)
	}

	// Unrelease: the file on main is the one before the release again.
	un := f.step(t, "github.changelog", map[string]any{"repo": repo, "version": "3.6.1", "action": "unrelease"})
	if p := f.plan(t, un); p.NoChange || !strings.HasPrefix(p.Action, "unrelease 3.6.1") {
		t.Fatalf("unrelease plan: %+v", p)
	}
	out = f.run(t, un)
	if back, _ := f.sim.File(repo, "", "CHANGELOG.md"); back != simChangelog || out["changed"] != true || out["entries"] != 2 {
		t.Fatalf("unrelease %v:\n got %q\nwant %q", out, back, simChangelog)
	}
	if m := f.commitMessage(t, repo, out["commit"].(string)); m != "Unrelease 3.6.1 in the changelog: its entries go back under Unreleased" {
		t.Fatalf("unrelease message %q", m)
	}
	w = f.sim.WriteCount()
	if out := f.run(t, un); out["changed"] != false || f.sim.WriteCount() != w {
		t.Fatalf("second unrelease: %v", out)
	}

	// Release again, then yank: the entries are back under Unreleased, the heading marked.
	f.run(t, s)
	yank := f.step(t, "github.changelog", map[string]any{"repo": repo, "version": "3.6.1", "action": "yank"})
	out = f.run(t, yank)
	yanked, _ := f.sim.File(repo, "", "CHANGELOG.md")
	if out["changed"] != true || out["entries"] != 2 || !strings.Contains(yanked, "## [Unreleased]\n\n### Added\n\n- [#1201]") ||
		!strings.Contains(yanked, "\n\n## [3.6.1] - 2026-11-25 [YANKED]\n\n## [3.6.0] - 2025-11-24\n") || strings.Contains(yanked, "zenodo.17949337") ||
		!strings.Contains(yanked, "[3.6.1]: ") {
		t.Fatalf("yank %v:\n%s", out, yanked)
	}
	w = f.sim.WriteCount()
	if out := f.run(t, yank); out["changed"] != false || f.sim.WriteCount() != w {
		t.Fatalf("second yank: %v", out)
	}
}

// TestChangelogRefusedInPlan: with nothing under Unreleased, the plan already fails (the
// step runs before the approval is asked), even while the DOI is not known yet; the run
// fails the same way, with no write and no retry.
func TestChangelogRefusedInPlan(t *testing.T) {
	f := setup(t)
	repo := "cessda/cessda.cdc.searchkit"
	f.sim.CreateRepo(repo, map[string]string{"CHANGELOG.md": "# Changelog\n\n## [Unreleased]\n\n## [4.2.0] - 2025-05-27\n\n- y\n"})
	s := f.step(t, "github.changelog", map[string]any{"repo": repo, "version": "4.3.0"})
	const msg = "CHANGELOG.md of cessda/cessda.cdc.searchkit has no entries under ## [Unreleased] for 4.3.0: add what changed (### Added, ### Fixed, ...)"
	pctx := enginetest.NewContext(t, "plan")
	pctx.Clock, pctx.Conns = f.ctx.Clock, f.ctx.Conns
	pctx.SetUnknown("doi")
	if _, err := s.Plan(context.Background(), pctx.StepContext); err == nil || !strings.Contains(err.Error(), msg) {
		t.Fatalf("plan: %v", err)
	}
	w := f.sim.WriteCount()
	_, err := s.Run(context.Background(), f.ctx.StepContext)
	if err == nil || !strings.Contains(err.Error(), msg) || f.sim.WriteCount() != w {
		t.Fatalf("run: %v", err)
	}
	if ok, _ := engine.IsTransient(err); ok {
		t.Fatal("the refusal is transient")
	}
	// Unknown repository or version: nothing is read, nothing refused yet.
	pctx.SetUnknown("version")
	if p, err := s.Plan(context.Background(), pctx.StepContext); err != nil || p.NoChange {
		t.Fatalf("plan with the version unknown: %+v %v", p, err)
	}
}

// TestChangelogDate: the default date is today on the run's clock, in time_zone.
func TestChangelogDate(t *testing.T) {
	ctx := enginetest.NewContext(t, "date")
	ctx.Clock = engine.NewFakeClock(time.Date(2026, 11, 24, 23, 30, 0, 0, time.UTC))
	for tz, want := range map[string]string{"": "2026-11-24", "Europe/Oslo": "2026-11-25", "America/New_York": "2026-11-24"} {
		p := &Changelog{TimeZone: tz}
		if got, err := p.date(ctx.StepContext); err != nil || got != want {
			t.Errorf("time_zone %q: %s %v, want %s", tz, got, err, want)
		}
	}
	if err := (&Changelog{TimeZone: "Mars/Olympus"}).Validate(); err == nil {
		t.Error("a bad time zone was accepted")
	}
	if err := (&Changelog{Version: "3.6.1 x"}).Validate(); err == nil {
		t.Error("a version with a space was accepted")
	}
}
