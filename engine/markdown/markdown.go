// Package markdown is runbook's one Markdown escaper, shared by plans, plan diffs,
// reports and the step reference: GitHub-flavoured Markdown as GitHub renders it in issue
// and pull-request comments, and Mermaid labels for the diagrams in them.
//
// Text, Code and Link give inline Markdown on one line; Cell makes such a fragment safe
// in a table cell; Fence gives a fenced code block whatever its content.
package markdown

import (
	"strings"
)

// Text escapes s so that it renders as itself: every character Markdown (or the HTML it
// allows) could read as syntax is backslash-escaped, and line breaks become spaces. The
// result is also safe in a table cell (its pipes are escaped).
func Text(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\', '`', '*', '_', '[', ']', '<', '>', '|', '#', '!', '~', '&':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n', '\r', '\t':
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Code writes s as an inline code span that survives backticks in s: its fence is one
// backtick longer than the longest run in s, with a space inside when s starts or ends
// with a backtick. Line breaks become spaces. "" gives "". Outside a table cell pipes
// need no escape; inside one, use Cell(Code(s)) or CodeCell(s).
func Code(s string) string {
	if s == "" {
		return ""
	}
	s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
	tick := strings.Repeat("`", longestRun(s, '`')+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") || (strings.HasPrefix(s, " ") && strings.HasSuffix(s, " ") && strings.Trim(s, " ") != "") {
		return tick + " " + s + " " + tick
	}
	return tick + s + tick
}

// CodeCell is Code for a table cell.
func CodeCell(s string) string { return Cell(Code(s)) }

// Cell makes an inline Markdown fragment (built with Text, Code, Link or by hand) safe in
// one cell of a GFM table: line breaks become <br>, and every pipe that is not already
// escaped gets a backslash. GitHub splits a row on a pipe preceded by an even number of
// backslashes, code spans included, and removes the backslash of \| inside the cell
// before rendering it, so a pipe in a code span shows as a pipe.
func Cell(md string) string {
	md = strings.NewReplacer("\r\n", "<br>", "\n", "<br>", "\r", "<br>").Replace(md)
	if !strings.Contains(md, "|") {
		return md
	}
	var b strings.Builder
	backslashes := 0
	for _, r := range md {
		if r == '|' && backslashes%2 == 0 {
			b.WriteByte('\\')
		}
		if r == '\\' {
			backslashes++
		} else {
			backslashes = 0
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Link is a link with title text to url; a url that cannot be written as a link
// destination (spaces, angle brackets, line breaks, or no http(s) scheme) is shown as
// code after the title instead, so that nothing in it is followed or rendered.
func Link(title, url string) string {
	if title == "" {
		title = url
	}
	if url == "" {
		return Text(title)
	}
	if strings.ContainsAny(url, "<> \n\r\t") || !(strings.HasPrefix(url, "https://") || strings.HasPrefix(url, "http://")) {
		return Text(title) + " " + Code(url)
	}
	return "[" + Text(title) + "](<" + url + ">)"
}

// Fence writes body as a fenced code block with the info string lang: the fence is a run
// of backticks longer than any in body (at least three), so no line of body can close it.
func Fence(lang, body string) string {
	tick := strings.Repeat("`", max(3, longestRun(body, '`')+1))
	body = strings.TrimRight(body, "\n")
	return tick + lang + "\n" + body + "\n" + tick + "\n"
}

// MermaidLabel escapes s for a quoted Mermaid node or edge label ("..."): quotes, angle
// brackets, ampersands, hashes, pipes and backticks (which would start a Markdown
// string) become entity codes, and line breaks become <br/> (which Mermaid renders as a line break).
func MermaidLabel(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString("#quot;")
		case '#':
			b.WriteString("#35;")
		case '&':
			b.WriteString("#amp;")
		case '<':
			b.WriteString("#lt;")
		case '>':
			b.WriteString("#gt;")
		case '`':
			b.WriteString("#96;")
		case '|':
			b.WriteString("#124;")
		case '\n':
			b.WriteString("<br/>")
		case '\r', '\t':
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func longestRun(s string, c rune) int {
	best, cur := 0, 0
	for _, r := range s {
		if r == c {
			cur++
			best = max(best, cur)
		} else {
			cur = 0
		}
	}
	return best
}
