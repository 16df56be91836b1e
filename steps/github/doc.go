// Package github holds runbook's GitHub step types, built on go-github v60, and
// registers the "github" connection type (default URL https://api.github.com/, token
// from GITHUB_TOKEN or the connection's token file; set url for GitHub Enterprise, e.g.
// https://ghe.example.org/api/v3/, or for the simulator). Setting request_timeout is
// the deadline of each API call (default 30s).
//
// Step types (params -> outputs):
//
//   - github.release_issue: repo, version, tool, title ("Release version {version} of
//     {tool}"), purpose, milestone (default the version; created when missing), labels,
//     significant_issues (or listed from the milestone, filtered by significant_labels,
//     at most max_significant), checklist [{key,text}], checklist_url, report_url ->
//     number, url, created. Idempotent by title + milestone. The body carries the run's
//     plan hash as a visible line and a hidden <!-- runbook:plan hash=H posted=T -->.
//     A re-run with another plan rewrites only those lines.
//   - github.subtask_issues: repo, release_issue, version, tool, milestone, labels,
//     subtasks [{key,title,body}] (release notes; user documentation) -> numbers, urls.
//     Links are written between <!-- runbook:subtasks --> markers of the release issue.
//   - github.checklist: repo, issue, action tick|wait, key or text, wait, timeout,
//     poll_interval -> ticked. Tick edits only the item's line; as GitHub has no
//     conditional PATCH for issues, the body is re-read just before the write and the
//     edit redone when a person changed it meanwhile (a change in the remaining
//     milliseconds between that read and the PATCH can still be lost). Wait polls with
//     conditional requests until a person ticks the box; wait: false ends the run in
//     status waiting (engine.Waiting) to be resumed.
//   - github.approval: repo, issue, role (default service_owner), approvers,
//     allow_self_approval, wait, timeout, poll_interval, request_comment -> approver,
//     approved_at, comment_url, plan_hash, ignored. A comment whose first line is
//     /approve or /reject <reason> counts when: its author holds the role (or is listed);
//     it is not by sc.Actor unless allow_self_approval; it was created at or after the
//     plan posting time in the marker; and it was never edited (updated_at ==
//     created_at: an edit could make an old comment approve something its author never
//     saw). Others are ignored and noted in the log and the ignored output. When the issue
//     shows another plan hash than the run's, the step rewrites the plan lines (new posting
//     time: older approvals become stale) and posts a notice asking again. We bind to the
//     plan posting time rather than the updated_at, because GitHub moves
//     updated_at on every comment and checkbox tick, and REST does not expose when the
//     body last changed. /reject ends the run with engine.Rejected(by, reason). The
//     decision is journalled, so a resumed or repeated run reuses it.
//   - github.release_notes: repo, milestone, state, groups [{title,labels}], other,
//     exclude -> markdown, issues, pull_requests. Every page of the milestone's issues
//     and pull requests, grouped by label in CESSDA's "[#N](url) Title" / "[PR-N](url)" style.
//   - github.tag: repo, tag (validated by pattern, default X.Y.Z), ref (default the
//     default branch head), annotated, message, force -> repo, tag, sha. The tag on the
//     same commit is success; on another commit a clear error unless force.
//   - github.changelog: repo, path (CHANGELOG.md), branch, version, action (release,
//     unrelease, yank), date (default today on the run's clock, in time_zone), doi,
//     message, redate_message -> changed, commit, entries. release does what Keep a
//     Changelog does: the Unreleased entries become "## [X.Y.Z] - DATE" with the Zenodo
//     badge, a new empty Unreleased opens, the reference links move on; a version with no
//     entries is refused (in Plan too, so before approval); run again on a later day it
//     only re-dates. unrelease gives the entries back to Unreleased (byte for byte the
//     file before the release); yank marks "[YANKED]" and gives them back. Every other
//     byte is kept. No commit when nothing changes; a 409 (stale blob sha) is re-read.
//   - github.subtasks_done: repo, issue, subtasks -> closed, count. Waits while a
//     subtask issue of the release (pre-release activity) is open.
//   - github.release_notes fails on an empty milestone unless allow_empty.
//   - github.release: repo, tag, name, body, target, prerelease, draft -> id, url.
//     Found by listing releases (get-by-tag hides drafts); created as a draft, then published.
//   - github.close: repo, issue, milestone, report_url, release_url, comment,
//     close_milestone -> issue_closed, milestone_closed. One marked last comment, state
//     closed with state_reason completed, milestone closed.
//   - github.comment: repo, issue, marker, body -> id, url, created. Posts or updates the
//     one comment carrying <!-- runbook:MARKER -->.
//
// Failures: every call has a deadline. Primary rate limit (403, X-RateLimit-Remaining
// 0) and secondary limit (403 with the secondary-rate-limits documentation URL,
// Retry-After) and 429 become engine.RetryAfter with the time to wait (the reset time is
// in the message), so the engine waits on its clock and the step's timeout decides
// whether to wait or fail. 5xx and connection errors become engine.Transient, and the
// step's retry policy retries them: the client itself sends each request once. Poll
// loops (approval, checklist wait) wait out transient errors and rate limits themselves
// when that stays within their timeout. We do not use
// gofri/go-github-ratelimit: it sleeps in real time (time.NewTimer, time.Sleep), which
// would defeat the injectable clock that lets tests and rehearsals wait hours in
// microseconds.
//
// Preflight: every step type implements engine.Preflighter. With GETs only, it checks
// that the connection's secret is there, that GitHub accepts it (GET /user, or GET
// /installation/repositories for a GitHub App installation token) and that the token may
// do what the step does in its repository (GET /repos/{owner}/{repo}: the permissions
// object, and X-OAuth-Scopes for classic tokens). Read-only steps need pull; comments
// need pull; editing the release issue needs triage; tags, commits, releases, milestones
// and labelled new issues need push (preflight.go lists the rule per step type).
//
// Conditional requests: the client's transport remembers each GET's ETag and body and
// sends If-None-Match; a 304 (free of rate limit) is served from that memory as a 200
// marked X-From-Cache. Measured against the simulator, an approval wait of 1,000 polls
// with no new comment costs 2 rate-limit points (the first poll's two GETs), 0 after.
//
// The simulator is in package githubsim.
package github
