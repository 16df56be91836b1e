// Package review renders runbook's results for people who review a release: the run's
// JSON report as Markdown (the release report comment on the release issue) or as one
// self-contained HTML page, and the difference between two plans of a playbook (what a
// pull request changes in the release) as text, Markdown (a pull-request comment) or
// JSON.
//
// It reads engine's values (engine.Report, engine.PlanDoc) and never changes them; the
// engine does not import it, so the renderings can evolve without touching the run.
//
//   - ReportMarkdown, WriteReportMarkdown, WriteReportHTML: the report for people: title
//     with product and version, outcome (succeeded, failed, rejected with the reason,
//     rolled back, waiting), who ran it and when, sessions, a table of steps with roles,
//     performers, timing, attempts and links, the links section, the choices people
//     made, and the error and log tail of every step that did not succeed.
//   - Diff, PlanDiff.WriteText/WriteMarkdown/WriteJSON: steps added, removed, changed
//     (type, name, role, section, phase, condition, foreach and every parameter, old →
//     new; an offline plan's action is left out, being made of those) and moved (order
//     changes, found with a longest common subsequence so that one inserted step does not
//     make every later step "moved"), plus input changes. The Markdown draws the release
//     flow after the change (engine.PlanDoc.WriteMermaid) with the added, changed and
//     moved steps styled and the removed ones drawn apart.
//
// Markdown is escaped with engine/markdown (Text, Code, Cell, Link, Fence, MermaidLabel),
// the one escaper of plans, plan diffs, reports and the step reference.
//   - LoadAtRef: the playbook (and the fragments it includes) as it is at a git ref.
package review
