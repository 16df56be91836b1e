package githubsim

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// What a token may do. By default every accepted token has admin on every repository, is
// no classic token (no X-OAuth-Scopes) and belongs to the user (WithUser). Tests and
// rehearsals narrow that down with SetPermission, SetScopes, SetInstallationToken,
// SetPrivate and RevokeToken; the server then answers as GitHub does: GET
// /repos/{owner}/{repo} shows the token's permissions, writes it may not make are
// refused, repositories it may not see answer 404.

// Permission levels of a token in a repository, lowest first; "none" hides the repository.
var levels = []string{"none", "pull", "triage", "push", "maintain", "admin"}

func rank(level string) int {
	for i, l := range levels {
		if l == level {
			return i
		}
	}
	return -1
}

// tokenInfo is what the server knows of one token.
type tokenInfo struct {
	perms   map[string]string // lower-case owner/name -> level
	classic bool              // a classic personal access token: answers carry X-OAuth-Scopes
	scopes  []string
	app     bool // a GitHub App installation token: no user
}

// tokenLocked returns the token's record, creating it (and so accepting the token).
func (s *Server) tokenLocked(tok string) *tokenInfo {
	if s.tokens == nil {
		s.tokens = map[string]*tokenInfo{}
	}
	ti := s.tokens[tok]
	if ti == nil {
		ti = &tokenInfo{perms: map[string]string{}}
		s.tokens[tok] = ti
	}
	return ti
}

// SetPermission sets what token may do in repository fullName: "admin", "maintain",
// "push", "triage", "pull", or "none" (the repository then answers 404, as GitHub
// answers for a private repository the token cannot see). Writes that need more are
// refused with 403 (see access). The token is accepted from then on, beside WithToken's.
func (s *Server) SetPermission(token, fullName, level string) {
	if rank(level) < 0 {
		panic(fmt.Sprintf("githubsim: SetPermission: level %q is not one of %s", level, strings.Join(levels, ", ")))
	}
	s.mu.Lock()
	s.tokenLocked(token).perms[strings.ToLower(fullName)] = level
	s.mu.Unlock()
}

// SetScopes makes token a classic personal access token with these OAuth scopes (e.g.
// "repo", "public_repo", "read:org"). Every answer to it carries X-OAuth-Scopes; without
// repo, private repositories answer 404, and without repo or public_repo so do writes to
// public ones (GitHub hides what a token lacks the scope for).
func (s *Server) SetScopes(token string, scopes ...string) {
	s.mu.Lock()
	ti := s.tokenLocked(token)
	ti.classic, ti.scopes = true, append([]string(nil), scopes...)
	s.mu.Unlock()
}

// SetInstallationToken makes token a GitHub App installation token: GET /user answers
// 403 (an installation is no user) and GET /installation/repositories lists the
// repositories it may see.
func (s *Server) SetInstallationToken(token string) {
	s.mu.Lock()
	s.tokenLocked(token).app = true
	s.mu.Unlock()
}

// RevokeToken makes the server answer 401 Bad credentials to token, as GitHub does for
// an expired or revoked token.
func (s *Server) RevokeToken(token string) {
	s.mu.Lock()
	if s.revoked == nil {
		s.revoked = map[string]bool{}
	}
	s.revoked[token] = true
	s.mu.Unlock()
}

// SetPrivate makes repository fullName private or public (the default), creating it when missing.
func (s *Server) SetPrivate(fullName string, private bool) {
	s.mu.Lock()
	s.repoLocked(fullName, true, nil).private = private
	s.mu.Unlock()
}

// acceptedLocked reports whether the server takes tok as a credential.
func (s *Server) acceptedLocked(tok string) bool {
	if tok == "" || s.revoked[tok] {
		return false
	}
	if s.token == "" || tok == s.token {
		return true
	}
	_, ok := s.tokens[tok]
	return ok
}

func (s *Server) levelLocked(tok, full string) string {
	if ti := s.tokens[tok]; ti != nil {
		if l, ok := ti.perms[strings.ToLower(full)]; ok {
			return l
		}
	}
	return "admin"
}

func (ti *tokenInfo) hasScope(scope string) bool {
	for _, s := range ti.scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// bearer is the token of a request ("Bearer X" from go-github, or "token X").
func bearer(r *http.Request) string {
	auth := r.Header.Get("Authorization")
	return strings.TrimPrefix(strings.TrimPrefix(auth, "Bearer "), "token ")
}

// permissionsJSON is the permissions object GitHub puts in a repository for the caller.
func permissionsJSON(level string) map[string]bool {
	r := rank(level)
	return map[string]bool{"admin": r >= rank("admin"), "maintain": r >= rank("maintain"), "push": r >= rank("push"), "triage": r >= rank("triage"), "pull": r >= rank("pull")}
}

// access decides whether the caller may make this request in its repository (c.repo):
// nil, 404 when the token may not see the repository, or 403 when its role is below what
// the operation needs. The least role per write follows GitHub's documentation
// (repository roles, and the REST operations' own notes), as routes declares it:
//   - create an issue, comment, edit one's own comment: pull ("any user with pull access
//     can create an issue"; "edit and delete their own comments": Read);
//   - edit an issue (body, state): its author, or triage ("issue owners and users with
//     push access or Triage role can edit an issue");
//   - edit someone else's comment, create or edit milestones, refs, tags, file contents,
//     releases: push (Write role).
//
// Labels and milestones of a new issue need push too, but GitHub silently drops them
// rather than refusing (createIssue does the same).
func (s *Server) access(c *reqCtx, need need) *httpErr {
	ti := s.tokens[c.tok]
	c.level = s.levelLocked(c.tok, c.repo.full)
	if c.level == "none" || (ti != nil && ti.classic && c.repo.private && !ti.hasScope("repo")) {
		return notFound()
	}
	if c.r.Method == http.MethodGet || c.r.Method == http.MethodHead {
		return nil
	}
	if ti != nil && ti.classic && !ti.hasScope("repo") && !ti.hasScope("public_repo") {
		return notFound()
	}
	if rank(c.level) >= rank(need(c)) {
		return nil
	}
	msg := "Resource not accessible by personal access token"
	if ti != nil && ti.app {
		msg = "Resource not accessible by integration"
	}
	return errf(403, "%s", msg)
}

// issueEditor is what editing the path's issue needs: its author, pull; anyone else, triage.
func (s *Server) issueEditor(c *reqCtx) string {
	if it := issueAt(c); it != nil && it.user == s.user {
		return "pull"
	}
	return "triage"
}

// commentEditor is what editing the path's comment needs: its author, pull; anyone else, push.
func (s *Server) commentEditor(c *reqCtx) string {
	if cm := s.comments[commentID(c.r.PathValue("id"))]; cm != nil && cm.user == s.user {
		return "pull"
	}
	return "push"
}

// userJSON answers GET /user: the token's user, or 403 for an installation token.
func (s *Server) userJSON(c *reqCtx) (int, any, *httpErr) {
	if ti := s.tokens[c.tok]; ti != nil && ti.app {
		e := errf(403, "Resource not accessible by integration")
		e.body.DocumentationURL = "https://docs.github.com/rest/users/users#get-the-authenticated-user"
		return 0, nil, e
	}
	return 200, s.privateUserWire(c), nil
}

// installationRepos answers GET /installation/repositories for an installation token.
func (s *Server) installationRepos(c *reqCtx) (int, any, *httpErr) {
	if ti := s.tokens[c.tok]; ti == nil || !ti.app {
		return 0, nil, errf(403, "You must authenticate with an installation access token in order to list repositories for an installation.")
	}
	var names []string
	for k := range s.repos {
		names = append(names, k)
	}
	sort.Strings(names)
	list := []*repository{}
	for _, k := range names {
		rc := &reqCtx{base: c.base, tok: c.tok, repo: s.repos[k]}
		if rc.level = s.levelLocked(c.tok, rc.repo.full); rc.level != "none" {
			list = append(list, s.repositoryWire(rc))
		}
	}
	return 200, &repositoryList{TotalCount: len(list), Repositories: list, RepositorySelection: "selected"}, nil
}

func issueNumber(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0
	}
	return n
}

func commentID(s string) int64 {
	id, _ := strconv.ParseInt(s, 10, 64)
	return id
}
