// Package review renders runbook's results for people who review a release: the run's
// JSON report as Markdown (the release report comment on the release issue) or as one
// self-contained HTML page, and the difference between two plans of a playbook (what a
// pull request changes in the release) as text, Markdown (a pull-request comment) or
// JSON.
//
// It reads engine's values (engine.Report, engine.PlanDoc) and never changes them; the
// engine does not import it, so the renderings can evolve without touching the run.
//
//   - ReportMarkdown, WriteReportMarkdown, WriteReportHTML: the release record: one
//     sentence on the outcome (released to production, approved by whom, stable since
//     when; or waiting for whom since when; refused or reverted, by whom and why), what
//     a stopped release left behind, the warnings to act on, a table per component
//     (tag and commit, CI build, what staging ran, production before and now, DOI,
//     Zenodo, GitHub release; cells found by step type and place), the decisions people
//     made (approvals with the plan hash, refusals, skips, rollbacks), a timeline of
//     people's waits against machine time (inline SVG in the HTML), and one table of
//     steps per phase of the procedure, statuses as words with icons that need no font.
//   - Diff, PlanDiff.WriteText/WriteMarkdown/WriteJSON: steps added, removed, changed
//     (type, name, role, section, phase, condition, foreach and every parameter, old →
//     new; an offline plan's action is left out, being made of those) and moved (order
//     changes, found with a longest common subsequence so that one inserted step does not
//     make every later step "moved"), plus input changes. The Markdown draws the release
//     flow after the change (engine.PlanDoc.WriteMermaid) with the added, changed and
//     moved steps styled and the removed ones drawn apart.
//   - LoadAtRef: the playbook (and the fragments it includes) as it is at a git ref.
//
// Markdown is escaped with engine/markdown (Text, Code, Cell, Link, Fence, MermaidLabel),
// the one escaper of plans, plan diffs, reports and the step reference.
package review
