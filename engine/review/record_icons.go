package review

import "html/template"

// Status icons for HTML that need no font: small inline SVG shapes, drawn in the
// status's colour (currentColor), always beside the status in words.
var statusIcons = map[string]template.HTML{
	// a filled circle with a check mark
	"done": `<svg class="ic" width="14" height="14" viewBox="0 0 16 16" aria-hidden="true"><circle cx="8" cy="8" r="7.5" fill="currentColor"/><path d="M4.5 8.3l2.3 2.3 4.7-5" fill="none" stroke="#fff" stroke-width="2"/></svg>`,
	// a filled circle with a cross
	"failed": `<svg class="ic" width="14" height="14" viewBox="0 0 16 16" aria-hidden="true"><circle cx="8" cy="8" r="7.5" fill="currentColor"/><path d="M5 5l6 6M11 5l-6 6" stroke="#fff" stroke-width="2"/></svg>`,
	// an octagon with a bar: stopped by a person
	"refused": `<svg class="ic" width="14" height="14" viewBox="0 0 16 16" aria-hidden="true"><path d="M5 .5h6L15.5 5v6L11 15.5H5L.5 11V5z" fill="currentColor"/><path d="M4 8h8" stroke="#fff" stroke-width="2.2"/></svg>`,
	// a circle with two bars: paused, waiting
	"waiting": `<svg class="ic" width="14" height="14" viewBox="0 0 16 16" aria-hidden="true"><circle cx="8" cy="8" r="7.5" fill="currentColor"/><path d="M6 4.5v7M10 4.5v7" stroke="#fff" stroke-width="2"/></svg>`,
	// a ring with a dot: in progress
	"running": `<svg class="ic" width="14" height="14" viewBox="0 0 16 16" aria-hidden="true"><circle cx="8" cy="8" r="6.5" fill="none" stroke="currentColor" stroke-width="2"/><circle cx="8" cy="8" r="2.5" fill="currentColor"/></svg>`,
	// a square with a cross: interrupted
	"interrupted": `<svg class="ic" width="14" height="14" viewBox="0 0 16 16" aria-hidden="true"><rect x=".5" y=".5" width="15" height="15" rx="3" fill="currentColor"/><path d="M5 5l6 6M11 5l-6 6" stroke="#fff" stroke-width="2"/></svg>`,
	// a curved arrow back
	"rolledback": `<svg class="ic" width="14" height="14" viewBox="0 0 16 16" aria-hidden="true"><circle cx="8" cy="8" r="7.5" fill="currentColor"/><path d="M11.5 11.5a4 4 0 1 0-5.5-6.3M6 2.6v3h3" fill="none" stroke="#fff" stroke-width="1.8"/></svg>`,
	// a ring with a forward chevron: skipped
	"skipped": `<svg class="ic" width="14" height="14" viewBox="0 0 16 16" aria-hidden="true"><circle cx="8" cy="8" r="6.8" fill="none" stroke="currentColor" stroke-width="1.6"/><path d="M6 4.8L9.4 8 6 11.2" fill="none" stroke="currentColor" stroke-width="1.8"/></svg>`,
	// a dashed ring: not needed
	"notneeded": `<svg class="ic" width="14" height="14" viewBox="0 0 16 16" aria-hidden="true"><circle cx="8" cy="8" r="6.8" fill="none" stroke="currentColor" stroke-width="1.5" stroke-dasharray="2.5 2"/><path d="M5 8h6" stroke="currentColor" stroke-width="1.6"/></svg>`,
	// an empty ring: not reached, to do
	"notreached": `<svg class="ic" width="14" height="14" viewBox="0 0 16 16" aria-hidden="true"><circle cx="8" cy="8" r="6.8" fill="none" stroke="currentColor" stroke-width="1.6"/></svg>`,
	"todo":       `<svg class="ic" width="14" height="14" viewBox="0 0 16 16" aria-hidden="true"><circle cx="8" cy="8" r="6.8" fill="none" stroke="currentColor" stroke-width="1.6"/></svg>`,
}

func statusIcon(key string) template.HTML {
	if ic, ok := statusIcons[key]; ok {
		return ic
	}
	return statusIcons["todo"]
}
