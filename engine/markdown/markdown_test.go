package markdown

import (
	"strings"
	"testing"
)

func TestText(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "",
		"plain words 1.2.3":     "plain words 1.2.3",
		"a|b":                   `a\|b`,
		"`code`":                "\\`code\\`",
		"*bold* _it_":           `\*bold\* \_it\_`,
		"<script>x</script>":    `\<script\>x\</script\>`,
		"[link](http://x)":      `\[link\](http://x)`,
		"line one\nline two\r":  "line one line two ",
		`back\slash`:            `back\\slash`,
		"# heading & ~strike~!": `\# heading \& \~strike\~\!`,
	} {
		if got := Text(in); got != want {
			t.Errorf("Text(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCode(t *testing.T) {
	for in, want := range map[string]string{
		"":               "",
		"x=1":            "`x=1`",
		"a`b":            "``a`b``",
		"a``b`":          "``` a``b` ```",
		"`start":         "`` `start ``",
		"two\nlines":     "`two lines`",
		"a|b":            "`a|b`",
		" padded ":       "`  padded  `",
		"[not a link]()": "`[not a link]()`",
	} {
		if got := Code(in); got != want {
			t.Errorf("Code(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCell: a row of cells built with the escaper splits into exactly its cells the way
// GitHub splits it (on pipes after an even number of backslashes), and newlines do not
// end the row.
func TestCell(t *testing.T) {
	for in, want := range map[string]string{
		"a|b":            `a\|b`,
		Text("a|b"):      `a\|b`, // already escaped: unchanged
		Code("x || y"):   "`x \\|\\| y`",
		`a\\|b`:          `a\\\|b`,
		"one\ntwo":       "one<br>two",
		Text(`a\|b`):     `a\\\|b`,
		Link("t", "u|v"): `t ` + "`u\\|v`",
	} {
		got := Cell(in)
		if got != want {
			t.Errorf("Cell(%q) = %q, want %q", in, got, want)
		}
		row := "| " + got + " | next |"
		if n := len(splitRow(row)); n != 2 {
			t.Errorf("row %q splits into %d cells, want 2", row, n)
		}
		if strings.Contains(got, "\n") {
			t.Errorf("Cell(%q) has a line break", in)
		}
	}
	if got := CodeCell("a|b"); got != "`a\\|b`" {
		t.Errorf("CodeCell = %q", got)
	}
}

// splitRow splits a GFM table row as GitHub does: a backslash escapes the next character.
func splitRow(row string) []string {
	row = strings.TrimSpace(row)
	row = strings.TrimPrefix(row, "|")
	var cells []string
	var cur strings.Builder
	for i := 0; i < len(row); i++ {
		switch {
		case row[i] == '\\' && i+1 < len(row):
			cur.WriteByte(row[i])
			cur.WriteByte(row[i+1])
			i++
		case row[i] == '|':
			cells = append(cells, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(row[i])
		}
	}
	if strings.TrimSpace(cur.String()) != "" {
		cells = append(cells, cur.String())
	}
	return cells
}

func TestLink(t *testing.T) {
	for _, c := range []struct{ title, url, want string }{
		{"GitHub release 1.0 [cdc]", "https://github.com/x/y/releases/tag/1.0", `[GitHub release 1.0 \[cdc\]](<https://github.com/x/y/releases/tag/1.0>)`},
		{"", "https://example.org/a", "[https://example.org/a](<https://example.org/a>)"},
		{"bad", "javascript:alert(1)", "bad `javascript:alert(1)`"},
		{"spaces", "https://example.org/a b", "spaces `https://example.org/a b`"},
		{"angle", "https://example.org/<x>", "angle `https://example.org/<x>`"},
		{"none", "", "none"},
	} {
		if got := Link(c.title, c.url); got != c.want {
			t.Errorf("Link(%q, %q) = %q, want %q", c.title, c.url, got, c.want)
		}
	}
}

func TestFence(t *testing.T) {
	if got := Fence("json", "{}\n"); got != "```json\n{}\n```\n" {
		t.Errorf("Fence = %q", got)
	}
	body := "a\n```\nb\n````"
	got := Fence("", body)
	if !strings.HasPrefix(got, "`````\n") || !strings.HasSuffix(got, "\n`````\n") {
		t.Errorf("Fence does not outrun the backticks in its body: %q", got)
	}
}

func TestMermaidLabel(t *testing.T) {
	in := "Tag \"3.7.0\" <b>&amp; #1 | `x`\nnext"
	want := "Tag #quot;3.7.0#quot; #lt;b#gt;#amp;amp; #35;1 #124; #96;x#96;<br/>next"
	if got := MermaidLabel(in); got != want {
		t.Errorf("MermaidLabel = %q, want %q", got, want)
	}
	if got := MermaidLabel("release_issue"); got != "release_issue" {
		t.Errorf("MermaidLabel(release_issue) = %q", got)
	}
}
