package github

import "github.com/cessda/runbook/engine"

func init() {
	S, I, B := engine.TypeString, engine.TypeInt, engine.TypeBool
	// The types that only read GitHub; every other one writes (issues, comments, tags).
	readOnly := map[string]bool{"github.release_notes": true, "github.subtasks_done": true}
	reg := func(name, summary string, gate bool, newf func() engine.Step, outs ...engine.Output) {
		engine.Register(engine.StepType{Name: name, Summary: summary, New: newf, Outputs: outs, Connection: "github", Gate: gate, ReadOnly: readOnly[name]})
	}
	reg("github.release_issue", "Create or find the release issue (title, purpose, significant issues, checklist, plan hash, milestone, labels)", false,
		func() engine.Step { return &ReleaseIssue{} },
		engine.Output{Name: "number", Type: I, Desc: "issue number"},
		engine.Output{Name: "url", Type: S, Desc: "issue URL"},
		engine.Output{Name: "created", Type: B, Desc: "true when this run created it"})
	reg("github.subtask_issues", "Create or find the release's subtask issues and link them in the release issue", false,
		func() engine.Step { return &SubtaskIssues{} },
		engine.Output{Name: "numbers", Type: engine.ListOf(I), Desc: "subtask issue numbers"},
		engine.Output{Name: "urls", Type: engine.ListOf(S), Desc: "subtask issue URLs"})
	reg("github.checklist", "Tick a checklist item of the release issue, or wait until a person ticks it", true,
		func() engine.Step { return &Checklist{} },
		engine.Output{Name: "ticked", Type: B, Desc: "the item is ticked"})
	reg("github.approval", "Wait for /approve or /reject <reason> in the release issue by an approver, bound to the plan hash", true,
		func() engine.Step { return &Approval{} },
		engine.Output{Name: "approver", Type: S, Desc: "login of the approver"},
		engine.Output{Name: "approved_at", Type: S, Desc: "time of the approval (RFC 3339)"},
		engine.Output{Name: "comment_url", Type: S, Desc: "URL of the approving comment"},
		engine.Output{Name: "plan_hash", Type: S, Desc: "plan hash the approval is bound to"},
		engine.Output{Name: "ignored", Type: engine.ListOf(S), Desc: "comments that did not count, and why"})
	reg("github.release_notes", "List every issue and pull request of a milestone, grouped by label, as Markdown; fails when the milestone has no closed issue or merged pull request unless allow_empty", false,
		func() engine.Step { return &ReleaseNotes{} },
		engine.Output{Name: "markdown", Type: S, Desc: "the notes"},
		engine.Output{Name: "issues", Type: I, Desc: "number of issues"},
		engine.Output{Name: "pull_requests", Type: I, Desc: "number of pull requests"})
	reg("github.subtasks_done", "Check that the release's subtask issues (pre-release activities) are closed; while any is open the run waits (read-only)", true,
		func() engine.Step { return &SubtasksDone{} },
		engine.Output{Name: "closed", Type: engine.ListOf(I), Desc: "the subtask issues, all closed"},
		engine.Output{Name: "count", Type: I, Desc: "how many subtask issues were checked"})
	reg("github.tag", "Tag a repository X.Y.Z on its default branch head or a ref (idempotent; refuses another commit unless forced; a new run's preflight refuses an existing tag)", false,
		func() engine.Step { return &Tag{} },
		engine.Output{Name: "repo", Type: S, Desc: "the repository"},
		engine.Output{Name: "tag", Type: S, Desc: "the tag"},
		engine.Output{Name: "sha", Type: S, Desc: "the tagged commit"})
	reg("github.changelog", "Release a version in CHANGELOG.md as Keep a Changelog does (the entries under ## [Unreleased] move under ## [X.Y.Z] - DATE with the DOI badge and links; a version with no entries is refused, in the plan too), or undo it: action unrelease (stopped before tagging) or yank (reverted after tagging)", false,
		func() engine.Step { return &Changelog{} },
		engine.Output{Name: "changed", Type: B, Desc: "a commit was made"},
		engine.Output{Name: "commit", Type: S, Desc: "the commit that carries the edit: made by this step, or, when the file needed no change, the commit that last changed it; for a release, tag this commit"},
		engine.Output{Name: "entries", Type: I, Desc: "entry lines released (release) or moved back under Unreleased (unrelease, yank)"})
	reg("github.release", "Create (draft, then publish) the GitHub release of a tag, idempotent by tag", false,
		func() engine.Step { return &Release{} },
		engine.Output{Name: "id", Type: I, Desc: "release id"},
		engine.Output{Name: "url", Type: S, Desc: "release URL"})
	reg("github.close", "Comment on and close the release issue and its milestone", false,
		func() engine.Step { return &Close{} },
		engine.Output{Name: "issue_closed", Type: B, Desc: "the issue is closed"},
		engine.Output{Name: "milestone_closed", Type: B, Desc: "the milestone is closed"})
	reg("github.comment", "Post or update one comment identified by a hidden marker", false,
		func() engine.Step { return &Comment{} },
		engine.Output{Name: "id", Type: I, Desc: "comment id"},
		engine.Output{Name: "url", Type: S, Desc: "comment URL"},
		engine.Output{Name: "created", Type: B, Desc: "true when this run posted it"})
}
