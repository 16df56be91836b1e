package review

import (
	"html/template"
	"io"

	"github.com/cessda/runbook/engine"
)

// WriteReportHTML writes a report as one self-contained HTML page (inline CSS, no
// scripts, no external resources) that reads well on screen and on paper. html/template
// escapes everything that comes from the run, and refuses non-http(s) link targets.
func WriteReportHTML(w io.Writer, r *engine.Report) error {
	return reportPage.Execute(w, newView(r))
}

var reportPage = template.Must(template.New("report").Funcs(template.FuncMap{"icon": statusIcon, "roleWords": roleWords, "linkOf": func(c cell) linkView { return linkView{Title: c.Text, URL: c.URL, Safe: c.Safe} }}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Release report: {{.Heading}} ({{.Status}})</title>
<style>
:root { --ok:#1a7f37; --fail:#cf222e; --warn:#9a6700; --wait:#0969da; --muted:#6e7781; --line:#d0d7de; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:#1f2328; max-width: 78rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin: 0 0 .3rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 .5rem; border-bottom: 1px solid var(--line); padding-bottom: .2rem; }
h3 { font-size: 1rem; margin: 1.2rem 0 .3rem; }
.outcome { display: inline-block; padding: .2rem .7rem; border-radius: 1rem; color: #fff; font-weight: 600; }
.outcome.ok { background: var(--ok); } .outcome.fail { background: var(--fail); } .outcome.warn { background: var(--warn); }
.outcome.wait { background: var(--wait); } .outcome.muted { background: var(--muted); }
.meta { color: var(--muted); margin: .4rem 0; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; font-size: .92rem; }
th, td { border: 1px solid var(--line); padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
tr.fail td { background: #ffebe9; } tr.wait td { background: #ddf4ff; } tr.warn td { background: #fff8c5; } tr.muted td { color: var(--muted); }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .88em; }
pre { background: #f6f8fa; border: 1px solid var(--line); padding: .6rem; overflow-x: auto; white-space: pre-wrap; word-break: break-word; }
.kind { color: var(--muted); font-size: .85em; text-transform: uppercase; letter-spacing: .03em; }
ul.links { padding-left: 1.2rem; }
.summary { font-size: 1.15rem; font-weight: 600; margin: .6rem 0; display: flex; gap: .5rem; align-items: center; }
.st { white-space: nowrap; font-weight: 600; display: inline-flex; gap: .3rem; align-items: center; }
.st svg.ic { flex: none; }
.st.done { color: var(--ok); } .st.failed, .st.refused { color: var(--fail); } .st.waiting, .st.running { color: var(--wait); }
.st.interrupted, .st.rolledback { color: var(--warn); } .st.skipped, .st.notneeded, .st.notreached, .st.todo { color: var(--muted); }
.detail { display: block; color: var(--muted); font-size: .85em; font-weight: normal; }
td.empty { color: var(--muted); text-align: center; }
table.components th, table.components td { font-size: .82rem; padding: .25rem .35rem; }
table.components code { word-break: break-all; }
.timeline { max-width: 100%; height: auto; }
tr.failed td { background: #ffebe9; } tr.refused td { background: #ffebe9; } tr.waiting td { background: #ddf4ff; } tr.notneeded td, tr.notreached td, tr.skipped td { color: var(--muted); }
footer { margin-top: 2rem; color: var(--muted); font-size: .85rem; }
@media print {
  body { margin: 0; max-width: none; font-size: 11pt; }
  a { color: inherit; } a[href]::after { content: " (" attr(href) ")"; font-size: .8em; color: var(--muted); }
  tr, pre { break-inside: avoid; }
  details > * { display: block; }
}
</style>
</head>
<body>
<header>
<h1>Release report: {{.Heading}}</h1>
<p class="summary"><span class="st {{.Shown.Key}}">{{icon .Shown.Key}} {{.Shown.Word}}</span> {{.Summary}}</p>
<p><span class="outcome {{.Class}}">{{.Outcome}}</span></p>
<p class="meta">Product <code>{{.Product}}</code>{{if .Version}} · version <code>{{.Version}}</code>{{end}} · run <code>{{.RunID}}</code>{{if and .Mode (ne .Mode "run")}} ({{.Mode}}){{end}}</p>
<p class="meta">Run by <strong>{{.Actor}}</strong>{{if .ActingAs}} (acting on {{range $i, $a := .ActingAs}}{{if $i}}, {{end}}{{$a}}{{end}}){{end}}, started {{.Started}}{{if .Finished}}, {{.FinishedLabel}} {{.Finished}} ({{.Duration}}){{end}}. {{.StepCounts}}.{{if .Timeline}} Time: {{.Timeline.Totals}}.{{end}}</p>
<p class="meta">{{if .Inputs}}Inputs: {{range .Inputs}}<code>{{.Key}}={{.Value}}</code> {{end}}{{if .EmptyInputs}}({{.EmptyInputs}} empty not shown) {{end}}· {{end}}playbook <code>{{.Playbook}}</code> · plan hash <code>{{.PlanHash}}</code></p>
</header>
{{if .LeftBehind}}
<section class="warn">
<h2>What the stopped release left behind</h2>
<ul>
{{range .LeftBehind}}<li><code>{{.Step}}</code>: {{.What}}</li>
{{end}}</ul>
</section>
{{end}}
{{if .Warnings}}
<section class="warn">
<h2>Warnings to act on</h2>
<p>The release went on without these ({{len .Warnings}}):</p>
<ul>
{{range .Warnings}}<li><code>{{.Step}}</code> {{.At}}: {{.Message}}</li>
{{end}}</ul>
</section>
{{end}}
{{if gt (len .Sessions) 1}}
<section>
<h2>Sessions</h2>
<p>The run was resumed: it ran in {{len .Sessions}} sessions.</p>
<table>
<tr><th>#</th><th>by</th><th>host</th><th>started</th><th>ended</th><th>duration</th><th>status</th><th>command</th></tr>
{{range .Sessions}}<tr class="{{.StatusClass}}"><td>{{.N}}</td><td>{{.Actor}}</td><td>{{.Host}}</td><td>{{.Started}}</td><td>{{.Ended}}</td><td>{{.Duration}}</td><td><span class="st {{.StatusKey}}">{{icon .StatusKey}} {{.Status}}</span></td><td><code>{{.Command}}</code></td></tr>
{{end}}</table>
</section>
{{end}}
{{with .Components}}
<section>
<h2>What was released, component by component</h2>
<table class="components">
<tr><th>component</th>{{range .Columns}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr><td><code>{{.Repo}}</code></td>{{range .Cells}}{{template "cell" .}}{{end}}</tr>
{{end}}</table>
</section>
{{end}}
{{if .Decisions}}
<section>
<h2>Decisions</h2>
<table class="decisions">
<tr><th>when</th><th>who</th><th>decision</th><th>step</th><th>comment</th><th>plan hash approved</th></tr>
{{range .Decisions}}<tr><td>{{.When}}</td><td>{{.Who}}</td><td><span class="st {{.Key}}">{{icon .Key}} {{.What}}</span></td><td>{{.Step}}</td><td>{{.Comment}}{{if .Link.URL}} {{template "link" .Link}}{{end}}</td><td>{{if .PlanHash}}<code>{{.PlanHash}}</code>{{end}}</td></tr>
{{end}}</table>
</section>
{{end}}
{{with .Timeline}}
<section>
<h2>Timeline</h2>
<p class="meta">When each step ran. Striped: waiting for people (approvals, checklists, the release window); solid: machines. {{.Totals}}.</p>
{{.SVG}}
</section>
{{end}}
{{range .Sections}}
<section>
<h2>{{.Phase}}</h2>
<table class="steps">
<tr><th>status</th><th>step</th><th>role</th><th>started</th><th>duration</th><th>result</th></tr>
{{range .Steps}}<tr class="{{.Shown.Key}}"><td><span class="st {{.Shown.Key}}">{{icon .Shown.Key}} {{.Word}}</span>{{if .Detail}}<span class="detail">condition <code>{{.Detail}}</code></span>{{end}}</td><td>{{if .Name}}{{.Name}} {{end}}<code>{{.ID}}</code> <span class="kind">{{.Type}}</span>{{if .Section}} <em>({{.Section}})</em>{{end}}</td><td>{{roleWords .Role}}</td><td>{{.Started}}</td><td>{{.Duration}}</td><td>{{range .Made}}{{template "link" .}}<br>{{end}}{{.Note}}</td></tr>
{{end}}</table>
</section>
{{end}}
{{if .Hidden}}<p class="meta"><span class="st notneeded">{{icon "notneeded"}} not needed</span> {{.Hidden}}</p>{{end}}
{{if .Links}}
<section>
<h2>All links</h2>
<ul class="links">
{{range .Links}}<li><span class="kind">{{.Kind}}</span> {{template "link" .}}{{if .Step}} (step <code>{{.Step}}</code>){{end}}</li>
{{end}}</ul>
</section>
{{end}}
{{if .Choices}}
<section>
<h2>Choices people made</h2>
<table>
<tr><th>step</th><th>choice</th><th>by</th><th>when</th><th>why</th></tr>
{{range .Choices}}<tr><td><code>{{.Step}}</code></td><td>{{.Action}}</td><td>{{.By}}</td><td>{{.At}}</td><td>{{.Reason}}</td></tr>
{{end}}</table>
</section>
{{end}}
{{if .Failures}}
<section>
<h2>What went wrong</h2>
{{range .Failures}}<h3><code>{{.ID}}</code> <span class="kind">{{.Type}}</span> {{.Status}}{{if .Item}} (item <code>{{.Item}}</code>){{end}}</h3>
{{if .Error}}<pre>{{.Error}}</pre>{{end}}
{{if .LogTail}}<details open><summary>Last {{len .LogTail}} log lines</summary><pre>{{range .LogTail}}{{.}}
{{end}}</pre></details>{{end}}
{{end}}
</section>
{{end}}
<footer>Rendered by runbook from the report of run <code>{{.RunID}}</code>.</footer>
</body>
</html>
{{define "cell"}}{{if or .Text .URL .Detail}}<td>{{if .URL}}{{template "link" (linkOf .)}}{{else}}{{.Text}}{{end}}{{if .Detail}}<span class="detail"><code>{{.Detail}}</code></span>{{end}}</td>{{else}}<td class="empty">—</td>{{end}}{{end}}
{{define "link"}}{{if .Safe}}<a href="{{.URL}}">{{if .Title}}{{.Title}}{{else}}{{.URL}}{{end}}</a>{{else}}{{.Title}} <code>{{.URL}}</code>{{end}}{{end}}
`))
