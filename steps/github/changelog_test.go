package github

import (
	"strings"
	"testing"
)

func TestEditChangelogKeepsRest(t *testing.T) {
	badge := Badge("10.5281/zenodo.9")
	cases := []struct{ name, in, want string }{
		{"insert after unreleased",
			"# Changelog\n\n## [Unreleased]\n\n- x\n\n## [1.0.0] - 2024-01-01\n\n- y\n\n[1.0.0]: https://e/1.0.0\n",
			"# Changelog\n\n## [Unreleased]\n\n- x\n\n## [1.1.0] - 2026-11-24\n\n" + badge + "\n\n## [1.0.0] - 2024-01-01\n\n- y\n\n[1.0.0]: https://e/1.0.0\n"},
		{"existing heading without date or badge",
			"## [1.1.0]\n\n### Fixed\n\n- z\n",
			"## [1.1.0] - 2026-11-24\n\n" + badge + "\n\n### Fixed\n\n- z\n"},
		{"replace old date and badge, CRLF",
			"## [1.1.0] - 2026-11-20\r\n\r\n[![DOI](https://zenodo.org/badge/DOI/10.5281/zenodo.1.svg)](https://doi.org/10.5281/zenodo.1)\r\n\r\n- a\r\n",
			"## [1.1.0] - 2026-11-24\r\n\r\n" + badge + "\r\n\r\n- a\r\n"},
		{"no version yet, no final newline",
			"# Changelog\n\nintro",
			"# Changelog\n\nintro\n\n## [1.1.0] - 2026-11-24\n\n" + badge + "\n"},
	}
	for _, c := range cases {
		got, changed, err := EditChangelog(c.in, ChangelogEdit{Version: "1.1.0", Date: "2026-11-24", DOI: "10.5281/zenodo.9"})
		if err != nil || !changed || got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
		again, changed, _ := EditChangelog(got, ChangelogEdit{Version: "1.1.0", Date: "2026-11-24", DOI: "10.5281/zenodo.9"})
		if changed || again != got {
			t.Errorf("%s: second edit changed the file", c.name)
		}
	}
}

// TestEditChangelogReleaseLink: the release's reference link goes among the file's links,
// after [unreleased] and before the newest version's; a file without links gets it at the
// end; a link the version already has is kept as it is.
func TestEditChangelogReleaseLink(t *testing.T) {
	const url = "https://github.com/cessda/cessda.cvs.two/releases/tag/1.1.0"
	e := ChangelogEdit{Version: "1.1.0", ReleaseURL: url}
	cases := []struct{ name, in, want string }{
		{"between unreleased and the newest version",
			"## [1.0.0] - 2024-01-01\n\n- y\n\n[unreleased]: https://e/compare/1.0.0...HEAD\n[1.0.0]: https://e/1.0.0\n",
			"## [1.0.0] - 2024-01-01\n\n- y\n\n[unreleased]: https://e/compare/1.0.0...HEAD\n[1.1.0]: " + url + "\n[1.0.0]: https://e/1.0.0\n"},
		{"after the only link, CRLF, no final newline",
			"- y\r\n\r\n[unreleased]: https://e/compare",
			"- y\r\n\r\n[unreleased]: https://e/compare\r\n[1.1.0]: " + url + "\r\n"},
		{"no links yet",
			"# Changelog\n\n- y\n",
			"# Changelog\n\n- y\n\n[1.1.0]: " + url + "\n"},
		{"empty file", "", "[1.1.0]: " + url + "\n"},
		{"the version has a link", "[1.1.0]: https://elsewhere\n", "[1.1.0]: https://elsewhere\n"},
	}
	for _, c := range cases {
		got := addReleaseLink(c.in, e.Version, url)
		if got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
		if again := addReleaseLink(got, e.Version, url); again != got {
			t.Errorf("%s: second edit changed the file", c.name)
		}
	}
	// With the heading, the date and the badge, in one edit.
	e.Date, e.DOI = "2026-11-24", "10.5281/zenodo.9"
	in := "## [1.0.0] - 2024-01-01\n\n- y\n\n[1.0.0]: https://e/1.0.0\n"
	want := "## [1.1.0] - 2026-11-24\n\n" + Badge(e.DOI) + "\n\n## [1.0.0] - 2024-01-01\n\n- y\n\n[1.1.0]: " + url + "\n[1.0.0]: https://e/1.0.0\n"
	if got, changed, err := EditChangelog(in, e); err != nil || !changed || got != want {
		t.Errorf("whole edit:\n got %q\nwant %q", got, want)
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
