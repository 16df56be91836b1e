package engine

// Fuzz targets for the engine's parsers of untrusted text: playbooks, ${{ }} templates,
// the run journal and the report document. Each asserts a property of the result, not
// only that nothing panicked. The seed corpora live in testdata/fuzz/<Name>/; CI runs
// every target briefly with .ci/fuzz.sh.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// FuzzParse: any bytes give either a playbook or an *InvalidError whose every diagnostic
// points at a real place (line and column from 1) in the file that has the problem.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("../examples/local-release.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(journalPlaybook))
	f.Add([]byte("steps:\n  - include: testdata/fragments/notice.yaml\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		pb, err := Parse("f.yaml", src)
		if err == nil {
			if pb == nil {
				t.Fatal("Parse returned neither a playbook nor an error")
			}
			if pb.File != "f.yaml" || !bytes.Equal(pb.Source, src) {
				t.Fatalf("playbook file %q, source kept: %v", pb.File, bytes.Equal(pb.Source, src))
			}
			return
		}
		if pb != nil {
			t.Fatalf("Parse returned a playbook and an error: %v", err)
		}
		var inv *InvalidError
		if !errors.As(err, &inv) {
			t.Fatalf("want *InvalidError, got %T: %v", err, err)
		}
		ds := inv.Diagnostics()
		if len(ds) == 0 {
			t.Fatal("an InvalidError with no diagnostics")
		}
		// Only an include can move a diagnostic into another file (the fragment's).
		includes := bytes.Contains(src, []byte("include"))
		for _, d := range ds {
			if d.Pos.File != "f.yaml" && !(includes && d.Pos.File != "") {
				t.Errorf("diagnostic in file %q, want f.yaml: %v", d.Pos.File, d)
			}
			if d.Pos.Line < 1 || d.Pos.Col < 1 {
				t.Errorf("diagnostic without a place (line %d, col %d): %v", d.Pos.Line, d.Pos.Col, d)
			}
			if strings.TrimSpace(d.Msg) == "" {
				t.Errorf("diagnostic with no message at %v", d.Pos)
			}
		}
		if inv.Error() == "" {
			t.Error("empty error text")
		}
	})
}

// FuzzTemplate: splitTemplate's parts put back together give the text again (literal
// text verbatim, each expression between "${{" and "}}" with only white space around
// it), offsets point at the parts, and no expression is empty.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{
		"", "plain", "${{ inputs.version }}", "v${{inputs.version}}-${{ vars.x }}!",
		"${{ }}", "${{", "}}", "$${{ a }}}", "${{ a} }}", "${{ {x }}", "${{ ${{ }}",
		"a ${{ b }} c ${{ d }}", "\u0085${{\u00a0x\u3000}}", "${{ \"}}\" }}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// Parse refuses a playbook that is not UTF-8 before any template is split.
		if !utf8.ValidString(s) {
			t.Skip()
		}
		parts, offsets, err := splitTemplate(s)
		if err != nil {
			if !strings.Contains(s, "${{") {
				t.Fatalf("error for a text without ${{: %v", err)
			}
			if parts != nil || offsets != nil {
				t.Fatal("parts returned with an error")
			}
			return
		}
		if len(parts) != len(offsets) {
			t.Fatalf("%d parts, %d offsets", len(parts), len(offsets))
		}
		cur := 0 // where the next part must start in s
		var joined strings.Builder
		for i, p := range parts {
			off := offsets[i]
			if p.Expr == nil {
				if p.Text == "" {
					t.Fatalf("part %d: empty literal", i)
				}
				if i > 0 && parts[i-1].Expr == nil {
					t.Fatalf("part %d: two literals in a row", i)
				}
				if strings.Contains(p.Text, "${{") {
					t.Fatalf("part %d: literal %q holds an expression", i, p.Text)
				}
				if off != cur || !strings.HasPrefix(s[cur:], p.Text) {
					t.Fatalf("part %d: literal %q at offset %d, want %d in %q", i, p.Text, off, cur, s)
				}
				cur += len(p.Text)
				joined.WriteString(p.Text)
				continue
			}
			src := p.Expr.Src
			if src == "" || strings.TrimSpace(src) != src {
				t.Fatalf("part %d: expression %q is empty or untrimmed", i, src)
			}
			if !strings.HasPrefix(s[cur:], "${{") {
				t.Fatalf("part %d: expression does not start with ${{ at %d in %q", i, cur, s)
			}
			lead := s[cur+3 : off]
			if off < cur+3 || strings.TrimLeftFunc(lead, unicode.IsSpace) != "" {
				t.Fatalf("part %d: offset %d of %q is not after ${{ and white space (at %d)", i, off, src, cur)
			}
			if !strings.HasPrefix(s[off:], src) {
				t.Fatalf("part %d: offset %d does not point at %q", i, off, src)
			}
			end := off + len(src)
			close := strings.Index(s[end:], "}}")
			if close < 0 || strings.TrimLeftFunc(s[end:end+close], unicode.IsSpace) != "" {
				t.Fatalf("part %d: %q is not followed by white space and }}", i, src)
			}
			cur = end + close + 2
			joined.WriteString("${{ " + src + " }}")
		}
		if cur != len(s) {
			t.Fatalf("parts cover %d of %d bytes of %q", cur, len(s), s)
		}
		// Joined again with ${{ }}, the text splits into the same parts.
		again, _, err := splitTemplate(joined.String())
		if err != nil || len(again) != len(parts) {
			t.Fatalf("rejoined %q: %d parts, err %v; want %d", joined.String(), len(again), err, len(parts))
		}
		for i := range parts {
			a, b := parts[i], again[i]
			if (a.Expr == nil) != (b.Expr == nil) || a.Text != b.Text || (a.Expr != nil && a.Expr.Src != b.Expr.Src) {
				t.Fatalf("rejoined part %d differs: %+v vs %+v", i, a, b)
			}
		}
	})
}

// journalPlaybook is run once per fuzzing process to get a real journal (test step types
// are registered by the engine_test package, which is linked into the same test binary).
const journalPlaybook = `runbook: v1
product: fuzz
roles:
  owner: [someone]
inputs:
  version: {type: string, default: "1.2.3"}
vars:
  repos: [a, b, c]
steps:
  - id: first
    type: test.echo
    role: owner
    with: {message: "release ${{ inputs.version }}", labels: "${{ vars.repos }}"}
  - id: each
    type: test.echo
    foreach: ${{ vars.repos }}
    with: {message: "repo ${{ item }}"}
  - id: fails
    type: test.flaky
    continue_on_error: true
    with: {key: fuzz-journal, fatal: true}
finally:
  - id: done
    type: test.echo
    with: {message: "done ${{ failure.status }}"}
`

var (
	realJournalOnce sync.Once
	realJournal     []byte
	realJournalErr  error
)

// runForJournal runs journalPlaybook into a FileStore and returns journal.jsonl's bytes.
func runForJournal() ([]byte, error) {
	realJournalOnce.Do(func() {
		pb, err := Parse("journal.yaml", []byte(journalPlaybook))
		if err != nil {
			realJournalErr = err
			return
		}
		in, err := pb.ResolveInputs(nil)
		if err != nil {
			realJournalErr = err
			return
		}
		dir, err := os.MkdirTemp("", "runbook-fuzz-journal-")
		if err != nil {
			realJournalErr = err
			return
		}
		defer os.RemoveAll(dir)
		st, err := OpenFileStore(dir, "")
		if err != nil {
			realJournalErr = err
			return
		}
		_, err = Execute(context.Background(), pb, Options{Inputs: in, Store: st, Clock: NewFakeClock(time.Unix(1700000000, 0)), Seed: 1, RunID: "fuzz-run"})
		st.Close()
		if err != nil {
			realJournalErr = err
			return
		}
		realJournal, realJournalErr = os.ReadFile(filepath.Join(dir, "journal.jsonl"))
	})
	return realJournal, realJournalErr
}

func replay(evs []*Event) *Report {
	r := &Report{index: map[string]*StepReport{}}
	for _, ev := range evs {
		r.apply(ev)
	}
	return r
}

// FuzzJournal: decodeEvents never panics on any bytes, nor does replaying what it
// decodes into a report, and the report it rebuilds can be written. A real run's
// journal cut at any byte (a crash mid-append) decodes to a prefix of its events: every
// complete line, and the torn last line dropped.
func FuzzJournal(f *testing.F) {
	full, err := runForJournal()
	if err != nil {
		f.Fatalf("a real run for the journal: %v", err)
	}
	fullEvs, err := decodeEvents(full)
	if err != nil || len(fullEvs) < 10 {
		f.Fatalf("the real journal: %d events, %v", len(fullEvs), err)
	}
	var want [][]byte
	for _, ev := range fullEvs {
		b, _ := json.Marshal(ev)
		want = append(want, b)
	}
	f.Add(full, uint(len(full)/2))
	f.Add([]byte(`{"k":"run"}`+"\n"+`{"k":"session"}`+"\n"+`{"k":"link"}`+"\n"+`{"k":"choice"}`+"\n"), uint(7))
	// An item index no run could reach: must not allocate a billion item records.
	f.Add([]byte(`{"k":"run","header":{"steps":[{"id":"a"}]}}`+"\n"+`{"k":"start","s":"a","i":1000000000}`+"\n"), uint(0))
	f.Fuzz(func(t *testing.T, data []byte, cut uint) {
		// Any bytes.
		if evs, err := decodeEvents(data); err == nil {
			r := replay(evs)
			if _, err := r.marshal(); err != nil {
				t.Fatalf("a replayed report cannot be written: %v", err)
			}
		}
		// The real journal, torn at a byte.
		n := int(cut % uint(len(full)+1))
		evs, err := decodeEvents(full[:n])
		if err != nil {
			t.Fatalf("journal cut at byte %d of %d: %v", n, len(full), err)
		}
		complete := bytes.Count(full[:n], []byte("\n"))
		if len(evs) != complete && len(evs) != complete+1 {
			t.Fatalf("cut at %d: %d events, want %d complete lines (or one more)", n, len(evs), complete)
		}
		for i, ev := range evs {
			b, _ := json.Marshal(ev)
			if !bytes.Equal(b, want[i]) {
				t.Fatalf("cut at %d: event %d differs:\n got %s\nwant %s", n, i, b, want[i])
			}
		}
		replay(evs)
	})
}

// FuzzReportDecode: a report document that decodes encodes again, and that encoding is
// stable (decode + encode gives the same bytes), so a resumed run never drifts its report.
func FuzzReportDecode(f *testing.F) {
	if full, err := runForJournal(); err == nil {
		if evs, err := decodeEvents(full); err == nil {
			if b, err := replay(evs).marshal(); err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte(`{"report_version":1,"steps":[{"id":"a","journal":{"k": [1, 2.50, "x"]},"items":[{"index":0,"item":{"z":1e3}}]}],"inputs":{"n":1e21}}`))
	f.Add([]byte(`{"started_at":"2026-01-02T03:04:05.123456789+01:00","sessions":[{"n":1,"started_at":"2026-01-02T03:04:05Z"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Report
		if json.Unmarshal(data, &r) != nil {
			return
		}
		r.reindex()
		b1, err := r.marshal()
		if err != nil {
			t.Fatalf("a decoded report cannot be encoded: %v", err)
		}
		var r2 Report
		if err := json.Unmarshal(b1, &r2); err != nil {
			t.Fatalf("the report's own encoding does not decode: %v\n%s", err, b1)
		}
		b2, err := r2.marshal()
		if err != nil {
			t.Fatalf("second encoding: %v", err)
		}
		if !bytes.Equal(b1, b2) {
			t.Fatalf("encoding is not stable:\n%s\n---\n%s", b1, b2)
		}
	})
}
