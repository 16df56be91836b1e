package engine

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/go-multierror"
)

// Pos is a place in a playbook file, 1-based like editors show it.
type Pos struct {
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	Col  int    `json:"col,omitempty"`
}

func (p Pos) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Col == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Diagnostic is one problem in a playbook or its inputs, at a place.
type Diagnostic struct {
	Pos Pos
	Msg string
}

func (d *Diagnostic) Error() string { return d.Pos.String() + ": " + d.Msg }

// InvalidError is every problem found in a playbook, reported at once. The CLI exits 2.
type InvalidError struct {
	Errs *multierror.Error
}

// Diagnostics returns the problems, sorted by place.
func (e *InvalidError) Diagnostics() []*Diagnostic {
	var out []*Diagnostic
	for _, err := range e.Errs.Errors {
		if d, ok := err.(*Diagnostic); ok {
			out = append(out, d)
		}
	}
	return out
}

func (e *InvalidError) Error() string {
	var b strings.Builder
	for i, err := range e.Errs.Errors {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

func (e *InvalidError) Unwrap() error { return e.Errs }

// diags collects problems while loading and validating.
type diags struct {
	file string
	list []*Diagnostic
	seen map[string]bool
}

func (d *diags) add(line, col int, format string, args ...any) {
	d.addIn(d.file, line, col, format, args...)
}

// addIn records a problem in a given file (a playbook's fragments are other files).
func (d *diags) addIn(file string, line, col int, format string, args ...any) {
	if file == "" {
		file = d.file
	}
	msg := fmt.Sprintf(format, args...)
	key := fmt.Sprintf("%s:%d:%d:%s", file, line, col, msg)
	if d.seen == nil {
		d.seen = map[string]bool{}
	}
	if d.seen[key] {
		return
	}
	d.seen[key] = true
	d.list = append(d.list, &Diagnostic{Pos: Pos{File: file, Line: line, Col: col}, Msg: msg})
}

func (d *diags) err() error {
	if len(d.list) == 0 {
		return nil
	}
	sort.SliceStable(d.list, func(i, j int) bool {
		a, b := d.list[i].Pos, d.list[j].Pos
		if a.File != b.File {
			return a.File == d.file || (b.File != d.file && a.File < b.File)
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	me := &multierror.Error{ErrorFormat: func(es []error) string {
		s := make([]string, len(es))
		for i, e := range es {
			s[i] = e.Error()
		}
		return strings.Join(s, "\n")
	}}
	for _, x := range d.list {
		me = multierror.Append(me, x)
	}
	return &InvalidError{Errs: me}
}

// suggest returns the candidate closest to s, if it is close enough to be a likely typo.
func suggest(s string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if d := levenshtein(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	limit := len(s)/3 + 1
	if limit > 3 {
		limit = 3
	}
	if bestD <= limit || (best != "" && (strings.HasPrefix(best, s) || strings.HasPrefix(s, best)) && len(s) > 2) {
		return best
	}
	return ""
}

func didYouMean(s string, candidates []string) string {
	if c := suggest(s, candidates); c != "" {
		return fmt.Sprintf(" (did you mean %q?)", c)
	}
	return ""
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
