package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/cessda/runbook/engine"
	gh "github.com/google/go-github/v60/github"
	"github.com/hashicorp/go-multierror"
)

// Preflight: before a run, every GitHub step checks, with GETs only, that its connection's
// token is there and accepted (GET /user) and may do what the step does in each
// repository it touches (GET /repos/{owner}/{repo}: its permissions object and, for
// classic tokens, the X-OAuth-Scopes header). The checks are shared through sc.Once: one
// per connection for the token, one per connection and repository for the look-up.
//
// The least repository role each step needs follows GitHub's documentation ("Repository
// roles for an organization" and the REST operations' own notes):
//
//   - pull (Read) lets a token read, open issues, comment, and edit its own comments:
//     github.release_notes, github.subtasks_done, github.checklist with action wait, github.comment,
//     github.release_report (they only post or update their own marked comment).
//   - triage is needed to edit an issue someone else may have opened ("issue owners and
//     users with push access or Triage role can edit an issue"): github.approval (it
//     rewrites the plan lines of the release issue), github.checklist with action tick.
//   - push (Write) is needed to create refs, tags, commits and releases (and to see
//     draft releases): github.tag, github.changelog, github.release; to create or close
//     milestones (the role table gives Triage only "apply milestones"): github.close
//     (triage with close_milestone false); and to set labels and the milestone of a new
//     issue, which GitHub otherwise drops silently: github.release_issue,
//     github.subtask_issues.
//
// Limits: the permissions object gives the caller's role in the repository; whether a
// fine-grained token was granted Contents or Issues write is not shown there, so such a
// token can pass and still fail at its first write (403 "Resource not accessible by
// personal access token"). Branch and tag protection rules, which may ask for more than
// push, are not checked.

const (
	pull   = "pull"
	triage = "triage"
	push   = "push"
)

// Fine-grained token (and GitHub App) permissions that carry the writes.
const (
	contentsWrite = "Contents: write"
	issuesWrite   = "Issues: write"
)

// roleOf names the repository role that grants a level, for the hint in an error.
var roleOf = map[string]string{pull: "Read", triage: "Triage", push: "Write"}

// access is what a step needs in one repository.
type access struct {
	repo  string // owner/name; "" when known only after earlier steps (not checked)
	level string // least role: pull, triage or push
	write bool   // the step writes at all (a comment needs only pull, yet is a write)
	why   string // what for, e.g. "to create tag 1.2.3"
	grant string // permission of a fine-grained token or GitHub App that allows it
	// then is a further read-only check of the repository's contents, made only when the
	// token is accepted and sees the repository (else its failure would only repeat that).
	then func(ctx context.Context) error
}

// once is sc.Once; tests replace it with a memo shared by several contexts, as the
// engine's preflight shares one (enginetest's contexts have none).
var once = (*engine.StepContext).Once

// knownRepo returns repo, or "" when it is known only after earlier steps.
func knownRepo(sc *engine.StepContext, repo string) string {
	if sc.Unknown("repo") {
		return ""
	}
	return repo
}

// issueRef is " #N", or "" when the issue number is not known yet.
func issueRef(sc *engine.StepContext, param string, n int) string {
	if sc.Unknown(param) || n == 0 {
		return ""
	}
	return fmt.Sprintf(" #%d", n)
}

// preflight checks connection connName's token and, for each access, the repository.
func preflight(ctx context.Context, sc *engine.StepContext, step, connName string, needs ...access) error {
	conn, err := sc.Connection(connName, "github")
	if err != nil {
		return fmt.Errorf("github: %w", err)
	}
	if err := once(sc, "github|"+conn.Name+"|token", func() error { return checkToken(ctx, sc, conn) }); err != nil {
		return err
	}
	var errs *multierror.Error
	for _, n := range needs {
		if n.repo == "" {
			continue
		}
		a, err := lookRepo(ctx, sc, conn, n.repo)
		if err != nil {
			errs = multierror.Append(errs, err)
			continue
		}
		for _, e := range a.check(conn, step, n) {
			errs = multierror.Append(errs, e)
		}
		if n.then != nil {
			if err := n.then(ctx); err != nil {
				errs = multierror.Append(errs, err)
			}
		}
	}
	if errs != nil && len(errs.Errors) == 1 {
		return errs.Errors[0]
	}
	return errs.ErrorOrNil()
}

// tokenSource says where the connection's token comes from, never the token itself.
func tokenSource(conn *engine.Connection) string {
	if conn.Token != "" {
		return "the token" // given by code (a rehearsal): there is no place to name
	}
	return "the token in " + conn.SecretSource("GITHUB_TOKEN")
}

// ghMessage is GitHub's message in an error response ("Bad credentials").
func ghMessage(err error) string {
	var er *gh.ErrorResponse
	if errors.As(err, &er) && er.Message != "" {
		return er.Message
	}
	return http.StatusText(statusOf(nil, err))
}

func statusOf(resp *gh.Response, err error) int {
	if resp != nil && resp.Response != nil {
		return resp.StatusCode
	}
	var er *gh.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return er.Response.StatusCode
	}
	return 0
}

// checkToken checks that the connection has its secret and GitHub accepts it.
func checkToken(ctx context.Context, sc *engine.StepContext, conn *engine.Connection) error {
	if _, injected, _ := engine.Injected[*gh.Client](conn); !injected {
		if _, err := conn.Secret(); err != nil {
			return err // it names the connection and says how to provide the secret
		}
	}
	c, err := newClient(sc, conn.Name)
	if err != nil {
		return err
	}
	rejected := func(raw error) error {
		return fmt.Errorf("connection %q: %s is not accepted (401 %s); renew it, or check that it is meant for %s", conn.Name, tokenSource(conn), ghMessage(raw), c.base)
	}
	var u *gh.User
	var raw error
	resp, err := c.call(ctx, "get the authenticated user", func(ctx context.Context) (*gh.Response, error) {
		var r *gh.Response
		u, r, raw = c.gh.Users.Get(ctx, "")
		return r, raw
	})
	st := statusOf(resp, raw)
	switch {
	case err == nil:
		sc.Logf("github: connection %q authenticates as %s", conn.Name, u.GetLogin())
		sc.Identify(conn.Name, u.GetLogin())
		return nil
	case st == http.StatusUnauthorized:
		return rejected(raw)
	case (st == http.StatusForbidden || st == http.StatusNotFound) && !isTransient(err):
		// A GitHub App installation token is no user; it can list its repositories.
		resp, err = c.call(ctx, "list the installation's repositories", func(ctx context.Context) (*gh.Response, error) {
			var r *gh.Response
			_, r, raw = c.gh.Apps.ListRepos(ctx, &gh.ListOptions{PerPage: 1})
			return r, raw
		})
		if err == nil {
			sc.Logf("github: connection %q uses a GitHub App installation token", conn.Name)
			sc.Identify(conn.Name, "a GitHub App installation")
			return nil
		}
		if statusOf(resp, raw) == http.StatusUnauthorized {
			return rejected(raw)
		}
		return fmt.Errorf("connection %q: cannot tell whether %s is accepted: GET /user answered %d and GET /installation/repositories %d (%s)", conn.Name, tokenSource(conn), st, statusOf(resp, raw), ghMessage(raw))
	}
	return fmt.Errorf("connection %q: cannot check %s: %w", conn.Name, tokenSource(conn), err)
}

func isTransient(err error) bool {
	ok, _ := engine.IsTransient(err)
	return ok
}

// repoAccess is what GitHub says the token may do in one repository.
//
// sc.Once memoises only an error, so lookRepo's check hands a successful look-up back as
// one; it never leaves this file.
type repoAccess struct {
	full    string
	private bool
	perms   map[string]bool // nil when GitHub sent no permissions object
	classic bool            // the answer carried X-OAuth-Scopes: a classic token
	scopes  map[string]bool
}

func (a *repoAccess) Error() string { return "github: access to " + a.full }

// lookRepo reads the repository once per connection and repository.
func lookRepo(ctx context.Context, sc *engine.StepContext, conn *engine.Connection, full string) (*repoAccess, error) {
	err := once(sc, "github|"+conn.Name+"|repo|"+strings.ToLower(full), func() error {
		o, r, err := splitRepo(full)
		if err != nil {
			return err
		}
		c, err := newClient(sc, conn.Name)
		if err != nil {
			return err
		}
		var repo *gh.Repository
		var raw error
		resp, err := c.call(ctx, "get repository "+full, func(ctx context.Context) (*gh.Response, error) {
			var rsp *gh.Response
			repo, rsp, raw = c.gh.Repositories.Get(ctx, o, r)
			return rsp, raw
		})
		if err != nil {
			if statusOf(resp, raw) == http.StatusNotFound {
				hint := "a fine-grained token or GitHub App must include the repository"
				if scopes, classic := oauthScopes(resp); classic && !scopes["repo"] {
					hint = "a classic token needs scope repo to see a private repository"
				}
				return fmt.Errorf("connection %q: repository %s not found, or %s cannot see it; check the name, and that the token may read it (%s)", conn.Name, full, tokenSource(conn), hint)
			}
			return fmt.Errorf("connection %q: %w", conn.Name, err)
		}
		a := &repoAccess{full: full, private: repo.GetPrivate(), perms: repo.Permissions}
		a.scopes, a.classic = oauthScopes(resp)
		return a
	})
	var a *repoAccess
	if errors.As(err, &a) {
		return a, nil
	}
	return nil, err
}

// oauthScopes reads X-OAuth-Scopes, which GitHub sends (possibly empty) only to classic tokens.
func oauthScopes(resp *gh.Response) (map[string]bool, bool) {
	if resp == nil || resp.Response == nil {
		return nil, false
	}
	v, ok := resp.Header[http.CanonicalHeaderKey("X-OAuth-Scopes")]
	if !ok {
		return nil, false
	}
	scopes := map[string]bool{}
	for _, s := range strings.Split(strings.Join(v, ","), ",") {
		if s = strings.TrimSpace(s); s != "" {
			scopes[s] = true
		}
	}
	return scopes, true
}

// level is the highest permission GitHub shows, "" when none.
func (a *repoAccess) level() string {
	for _, l := range []string{"admin", "maintain", push, triage, pull} {
		if a.perms[l] {
			return l
		}
	}
	return ""
}

func rankOf(level string) int {
	return map[string]int{pull: 1, triage: 2, push: 3, "maintain": 4, "admin": 5}[level]
}

// check compares what the step needs with what the token may do.
func (a *repoAccess) check(conn *engine.Connection, step string, n access) []error {
	var errs []error
	if a.classic {
		var scopes []string
		for s := range a.scopes {
			scopes = append(scopes, s)
		}
		have := fmt.Sprintf("has scopes %q", strings.Join(sortStrings(scopes), ", "))
		if len(scopes) == 0 {
			have = "has no scopes"
		}
		// Without repo a private repository answers 404 (lookRepo says so); a public
		// one can be read with no scope, but written only with public_repo or repo.
		need := "public_repo or repo"
		if a.private {
			need = "repo"
		}
		if n.write && !a.scopes["repo"] && (a.private || !a.scopes["public_repo"]) {
			errs = append(errs, fmt.Errorf("connection %q: the classic %s %s, but %s writes to %s (%s), which needs scope %s; add it to the token", conn.Name, strings.TrimPrefix(tokenSource(conn), "the "), have, step, a.full, strings.TrimPrefix(n.why, "to "), need))
		}
	}
	if a.perms == nil {
		return errs // GitHub did not say (older GitHub Enterprise): the run will tell
	}
	have := a.level()
	if rankOf(have) >= rankOf(n.level) {
		return errs
	}
	may := "may only " + have
	if have == "" {
		may = "has no access to"
	}
	return append(errs, fmt.Errorf("connection %q: the token %s %s, but %s needs %s (%s); grant %s to the token, or the %s role on the repository to its user", conn.Name, may, a.full, step, n.level, n.why, n.grant, roleOf[n.level]))
}

// Preflight checks the token may create issues and milestones in the tracker.
func (p *ReleaseIssue) Preflight(ctx context.Context, sc *engine.StepContext) error {
	return preflight(ctx, sc, "github.release_issue", p.Connection, access{repo: knownRepo(sc, p.Repo), level: push, write: true,
		why: "to create the milestone and the release issue with its labels and milestone", grant: issuesWrite})
}

// Preflight checks the token may create issues and milestones in the tracker.
func (p *SubtaskIssues) Preflight(ctx context.Context, sc *engine.StepContext) error {
	return preflight(ctx, sc, "github.subtask_issues", p.Connection, access{repo: knownRepo(sc, p.Repo), level: push, write: true,
		why: "to create the subtask issues with their labels and milestone", grant: issuesWrite})
}

// Preflight checks the token may edit the release issue (tick) or read it (wait).
func (p *Checklist) Preflight(ctx context.Context, sc *engine.StepContext) error {
	n := access{repo: knownRepo(sc, p.Repo), level: triage, write: true, why: "to tick a checklist item of issue" + issueRef(sc, "issue", p.Issue), grant: issuesWrite}
	if p.Action == "wait" {
		n.level, n.write, n.why, n.grant = pull, false, "to read issue"+issueRef(sc, "issue", p.Issue), "Issues: read"
	}
	return preflight(ctx, sc, "github.checklist", p.Connection, n)
}

// Preflight checks the token may edit the release issue (its plan lines) and comment.
func (p *Approval) Preflight(ctx context.Context, sc *engine.StepContext) error {
	return preflight(ctx, sc, "github.approval", p.Connection, access{repo: knownRepo(sc, p.Repo), level: triage, write: true,
		why: "to write the plan hash into issue" + issueRef(sc, "issue", p.Issue), grant: issuesWrite})
}

// Preflight checks the token may read the milestone's issues and pull requests.
func (p *ReleaseNotes) Preflight(ctx context.Context, sc *engine.StepContext) error {
	return preflight(ctx, sc, "github.release_notes", p.Connection, access{repo: knownRepo(sc, p.Repo), level: pull,
		why: "to list the issues of a milestone", grant: "Issues: read and Pull requests: read"})
}

// Preflight checks the token may create tags and, when the tag's name is known, that the
// repository does not have it yet: a version is tagged once.
func (p *Tag) Preflight(ctx context.Context, sc *engine.StepContext) error {
	n := access{repo: knownRepo(sc, p.Repo), level: push, write: true, why: "to create a tag", grant: contentsWrite}
	if !sc.Unknown("tag") && p.Tag != "" {
		n.why = "to create tag " + p.Tag
		if n.repo != "" {
			n.then = func(ctx context.Context) error { return p.taggedOnce(ctx, sc) }
		}
	}
	return preflight(ctx, sc, "github.tag", p.Connection, n)
}

// Preflight checks the token may read the release issue and its subtasks.
func (p *SubtasksDone) Preflight(ctx context.Context, sc *engine.StepContext) error {
	return preflight(ctx, sc, "github.subtasks_done", p.Connection, access{repo: knownRepo(sc, p.Repo), level: pull,
		why: "to read issue" + issueRef(sc, "issue", p.Issue) + " and its subtask issues", grant: "Issues: read"})
}

// Preflight checks the token may commit to the repository.
func (p *Changelog) Preflight(ctx context.Context, sc *engine.StepContext) error {
	return preflight(ctx, sc, "github.changelog", p.Connection, access{repo: knownRepo(sc, p.Repo), level: push, write: true,
		why: "to commit " + p.Path, grant: contentsWrite})
}

// Preflight checks the token may create releases.
func (p *Release) Preflight(ctx context.Context, sc *engine.StepContext) error {
	why := "to create a release"
	if !sc.Unknown("tag") && p.Tag != "" {
		why = "to create release " + p.Tag
	}
	return preflight(ctx, sc, "github.release", p.Connection, access{repo: knownRepo(sc, p.Repo), level: push, write: true, why: why, grant: contentsWrite})
}

// Preflight checks the token may close the issue and, when asked, the milestone.
func (p *Close) Preflight(ctx context.Context, sc *engine.StepContext) error {
	n := access{repo: knownRepo(sc, p.Repo), level: triage, write: true, why: "to close issue" + issueRef(sc, "issue", p.Issue), grant: issuesWrite}
	if p.CloseMilestone || sc.Unknown("close_milestone") {
		n.level, n.why = push, "to close the milestone"
		if !sc.Unknown("milestone") && p.Milestone != "" {
			n.why = "to close milestone " + p.Milestone
		}
	}
	return preflight(ctx, sc, "github.close", p.Connection, n)
}

// Preflight checks the token may comment.
func (p *Comment) Preflight(ctx context.Context, sc *engine.StepContext) error {
	return preflight(ctx, sc, "github.comment", p.Connection, access{repo: knownRepo(sc, p.Repo), level: pull, write: true,
		why: "to comment on issue" + issueRef(sc, "issue", p.Issue), grant: issuesWrite})
}

// Preflight checks the token may comment on the release issue.
func (p *ReleaseReport) Preflight(ctx context.Context, sc *engine.StepContext) error {
	return preflight(ctx, sc, "github.release_report", p.Connection, access{repo: knownRepo(sc, p.Repo), level: pull, write: true,
		why: "to post the release report on issue" + issueRef(sc, "issue", p.Issue), grant: issuesWrite})
}

// Every GitHub step type checks its token and repository before a run.
var (
	_ engine.Preflighter = (*ReleaseIssue)(nil)
	_ engine.Preflighter = (*SubtaskIssues)(nil)
	_ engine.Preflighter = (*Checklist)(nil)
	_ engine.Preflighter = (*Approval)(nil)
	_ engine.Preflighter = (*ReleaseNotes)(nil)
	_ engine.Preflighter = (*Tag)(nil)
	_ engine.Preflighter = (*SubtasksDone)(nil)
	_ engine.Preflighter = (*Changelog)(nil)
	_ engine.Preflighter = (*Release)(nil)
	_ engine.Preflighter = (*Close)(nil)
	_ engine.Preflighter = (*Comment)(nil)
	_ engine.Preflighter = (*ReleaseReport)(nil)
)
