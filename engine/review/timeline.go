package review

import (
	"fmt"
	"html"
	"html/template"
	"strings"
	"time"

	"github.com/cessda/runbook/engine"
)

// The timeline: when each step ran, on one time axis across the days a release takes,
// with the time spent waiting for people (gates, told by step type) apart from the
// machines' time. Drawn as inline SVG, no script.

type timelineBar struct {
	Label      string
	Key        string // display key of the status (colour)
	People     bool   // a gate: waiting for people or the calendar
	Start, End time.Time
}

type timeline struct {
	Bars         []timelineBar
	Start, End   time.Time
	People, Mach time.Duration
	Totals       string // "people: 38h, machines: 4m"
}

// newTimeline lays out the steps that ran; nil when none did.
func newTimeline(r *engine.Report) *timeline {
	t := &timeline{Start: r.StartedAt.UTC()}
	end := t.Start
	if r.FinishedAt != nil {
		end = r.FinishedAt.UTC()
	}
	for _, s := range r.Steps {
		if s.StartedAt != nil && s.StartedAt.After(end) {
			end = s.StartedAt.UTC()
		}
		if s.FinishedAt != nil && s.FinishedAt.After(end) {
			end = s.FinishedAt.UTC()
		}
	}
	t.End = end
	failureRan := failurePathRan(r)
	for _, s := range r.Steps {
		if s.StartedAt == nil {
			continue
		}
		b := timelineBar{Label: s.ID, Key: stepDisplay(r, s, failureRan).Key, People: isGate(s.Type), Start: s.StartedAt.UTC()}
		switch {
		case s.FinishedAt != nil:
			b.End = s.FinishedAt.UTC()
		case s.DurationMS > 0:
			b.End = b.Start.Add(time.Duration(s.DurationMS) * time.Millisecond)
		default: // waiting or running: until the record was written
			b.End = end
		}
		if b.End.Before(b.Start) {
			b.End = b.Start
		}
		d := b.End.Sub(b.Start)
		if b.People {
			t.People += d
		} else {
			t.Mach += d
		}
		t.Bars = append(t.Bars, b)
	}
	if len(t.Bars) == 0 {
		return nil
	}
	t.Totals = fmt.Sprintf("people: %s, machines: %s", fmtDuration(t.People.Milliseconds()), fmtDuration(t.Mach.Milliseconds()))
	return t
}

const (
	tlLabelW = 190
	tlPlotW  = 880
	tlRowH   = 18
	tlTop    = 34
)

var tlColours = map[string]string{
	"done": "#1a7f37", "failed": "#cf222e", "refused": "#cf222e", "waiting": "#0969da", "running": "#0969da",
	"interrupted": "#9a6700", "rolledback": "#9a6700", "skipped": "#6e7781",
}

// SVG draws the timeline. Everything from the run is escaped.
func (t *timeline) SVG() template.HTML {
	if t == nil {
		return ""
	}
	span := t.End.Sub(t.Start)
	if span <= 0 {
		span = time.Second
	}
	x := func(at time.Time) float64 {
		return tlLabelW + float64(at.Sub(t.Start))/float64(span)*tlPlotW
	}
	h := tlTop + len(t.Bars)*tlRowH + 40
	w := tlLabelW + tlPlotW + 20
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="timeline" role="img" width="%d" height="%d" viewBox="0 0 %d %d" font-family="system-ui, sans-serif" font-size="11">`, w, h, w, h)
	b.WriteString(`<title>When each step ran; striped bars are time spent waiting for people</title>`)
	b.WriteString(`<defs><pattern id="tl-people" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#ddf4ff"/><rect width="3" height="6" fill="#54aeff"/></pattern></defs>`)
	// The axis: one tick a day (midnight UTC) for a release over days, hours otherwise.
	step := 24 * time.Hour
	format := "Mon 02 Jan"
	switch {
	case span <= 2*time.Hour:
		step, format = 15*time.Minute, "15:04"
	case span <= 36*time.Hour:
		step, format = 6*time.Hour, "Mon 15:04"
	}
	first := t.Start.Truncate(step)
	if first.Before(t.Start) {
		first = first.Add(step)
	}
	axisY := tlTop + len(t.Bars)*tlRowH
	for at := first; !at.After(t.End); at = at.Add(step) {
		px := x(at)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#d0d7de"/>`, px, tlTop-6, px, axisY)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#57606a">%s</text>`, px, axisY+14, html.EscapeString(at.Format(format)))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#57606a">%s</text>`, tlLabelW, axisY+30, html.EscapeString("UTC · "+t.Start.Format("2006-01-02 15:04")+" to "+t.End.Format("2006-01-02 15:04")))
	for i, bar := range t.Bars {
		y := tlTop + i*tlRowH
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" fill="#1f2328">%s</text>`, tlLabelW-6, y+12, html.EscapeString(bar.Label))
		x0, x1 := x(bar.Start), x(bar.End)
		if x1-x0 < 3 {
			x1 = x0 + 3
		}
		colour := tlColours[bar.Key]
		if colour == "" {
			colour = "#6e7781"
		}
		fill := colour
		if bar.People {
			fill = "url(#tl-people)"
		}
		d := fmtDuration(bar.End.Sub(bar.Start).Milliseconds())
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" rx="2" fill="%s" stroke="%s"><title>%s</title></rect>`,
			x0, y+2, x1-x0, tlRowH-5, fill, colour, html.EscapeString(bar.Label+": "+d))
	}
	// Legend: above the bars.
	fmt.Fprintf(&b, `<rect x="%d" y="6" width="18" height="11" fill="url(#tl-people)" stroke="#0969da"/><text x="%d" y="15">waiting for people (%s)</text>`,
		tlLabelW, tlLabelW+24, html.EscapeString(fmtDuration(t.People.Milliseconds())))
	fmt.Fprintf(&b, `<rect x="%d" y="6" width="18" height="11" fill="#1a7f37"/><text x="%d" y="15">machines (%s)</text>`,
		tlLabelW+250, tlLabelW+274, html.EscapeString(fmtDuration(t.Mach.Milliseconds())))
	fmt.Fprintf(&b, `<rect x="%d" y="6" width="18" height="11" fill="#cf222e"/><text x="%d" y="15">failed or refused</text>`, tlLabelW+420, tlLabelW+444)
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // built above; every text from the run is escaped
}
