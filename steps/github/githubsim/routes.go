package githubsim

import (
	"net/http"
	"strings"
)

// routes is what the simulator speaks: the web downloads, and the REST API with one
// operation per route. Wildcards that end in "..." take GitHub's slash-containing tails
// (refs like tags/1.2.3, file paths); ServeMux matches segments escaped, so an
// escaped slash stays inside its segment.
func (s *Server) routes() http.Handler {
	api := http.NewServeMux()
	api.HandleFunc("/", s.serve(noRoute))
	api.HandleFunc("GET /rate_limit", s.serve(s.rateLimit))
	api.HandleFunc("GET /user", s.serve(s.userJSON))
	api.HandleFunc("GET /installation/repositories", s.serve(s.installationRepos))

	repo := func(pattern string, need need, op operation) { api.HandleFunc(pattern, s.serve(s.inRepo(need, op))) }
	// Any other request in a repository is checked as a write needing push, then not found.
	repo("/repos/{owner}/{repo}", push, noRoute)
	repo("/repos/{owner}/{repo}/{rest...}", push, noRoute)
	// and without these, ServeMux would redirect a path missing the tail of a route
	// below to the path with a slash.
	for _, p := range []string{"branches", "commits", "git/ref", "git/refs", "contents"} {
		repo("/repos/{owner}/{repo}/"+p, push, noRoute)
	}
	repo("GET /repos/{owner}/{repo}/releases/tags", pull, noRoute)
	repo("GET /repos/{owner}/{repo}", pull, s.getRepo)
	repo("GET /repos/{owner}/{repo}/branches/{branch...}", pull, s.getBranch)
	repo("GET /repos/{owner}/{repo}/commits/{ref...}", pull, s.getCommit)

	repo("GET /repos/{owner}/{repo}/git/ref/{ref...}", pull, s.getRef)
	repo("POST /repos/{owner}/{repo}/git/refs", push, s.createRef)
	repo("PATCH /repos/{owner}/{repo}/git/refs/{ref...}", push, s.updateRef)
	repo("POST /repos/{owner}/{repo}/git/tags", push, s.createTag)
	repo("GET /repos/{owner}/{repo}/git/tags/{sha}", pull, s.getTag)

	repo("GET /repos/{owner}/{repo}/contents/{path...}", pull, s.getContents)
	repo("PUT /repos/{owner}/{repo}/contents/{path...}", push, s.putContents)

	// GitHub's roles per issue operation are in access.
	repo("GET /repos/{owner}/{repo}/issues", pull, s.listIssues)
	repo("POST /repos/{owner}/{repo}/issues", pull, s.createIssue)
	repo("GET /repos/{owner}/{repo}/issues/{number}", pull, s.getIssue)
	repo("PATCH /repos/{owner}/{repo}/issues/{number}", s.issueEditor, s.editIssue)
	// issues/{number}/comments and issues/comments/{id} would both match
	// issues/comments/comments, which ServeMux refuses: the list takes any last segment.
	repo("GET /repos/{owner}/{repo}/issues/{number}/{comments}", pull, issueComments(s.listComments))
	repo("POST /repos/{owner}/{repo}/issues/{number}/{comments}", pull, issueComments(s.createComment))
	repo("GET /repos/{owner}/{repo}/issues/comments/{id}", pull, s.getComment)
	repo("PATCH /repos/{owner}/{repo}/issues/comments/{id}", s.commentEditor, s.editComment)

	repo("GET /repos/{owner}/{repo}/milestones", pull, s.listMilestones)
	repo("POST /repos/{owner}/{repo}/milestones", push, s.createMilestone)
	repo("GET /repos/{owner}/{repo}/milestones/{number}", pull, s.getMilestone)
	repo("PATCH /repos/{owner}/{repo}/milestones/{number}", push, s.editMilestone)

	repo("GET /repos/{owner}/{repo}/releases", pull, s.listReleases)
	repo("POST /repos/{owner}/{repo}/releases", push, s.createRelease)
	repo("GET /repos/{owner}/{repo}/releases/tags/{tag...}", pull, s.getReleaseByTag)
	repo("GET /repos/{owner}/{repo}/releases/{id}", pull, s.getRelease)
	repo("PATCH /repos/{owner}/{repo}/releases/{id}", push, s.editRelease)

	// The web downloads overlap the API's paths (OWNER "repos"), which one ServeMux
	// refuses: they route first, and hand the API's paths over.
	web := http.NewServeMux()
	web.Handle("/", api)
	web.HandleFunc("GET /{owner}/{repo}/archive/refs/tags/{archive}", s.webOr(api, s.archive))
	web.HandleFunc("GET /{owner}/{repo}/raw/{ref}/{path...}", s.webOr(api, s.rawFile))
	web.Handle("GET /{owner}/{repo}/raw/{ref}", api) // no file: not a download
	return web
}

func (s *Server) htmlBase() string { return s.srv.URL + "/" }

func (s *Server) getRepo(c *reqCtx) (int, any, *httpErr) { return 200, s.repositoryWire(c), nil }

// resolve turns a SHA, branch, tag or "heads/x"/"tags/x" into a commit SHA.
func (s *Server) resolve(r *repo, ref string) (string, bool) {
	if _, ok := r.commits[ref]; ok {
		return ref, true
	}
	for _, full := range []string{ref, "refs/" + ref, "refs/heads/" + ref, "refs/tags/" + ref} {
		if sha, ok := r.refs[full]; ok {
			if t, ok := r.tags[sha]; ok {
				return t.object, true
			}
			return sha, true
		}
	}
	if len(ref) >= 7 {
		for sha := range r.commits {
			if strings.HasPrefix(sha, ref) {
				return sha, true
			}
		}
	}
	return "", false
}

func (s *Server) getCommit(c *reqCtx) (int, any, *httpErr) {
	ref := c.r.PathValue("ref")
	sha, ok := s.resolve(c.repo, ref)
	if !ok {
		return 0, nil, validation("Commit", "sha", "invalid", "No commit found for SHA: "+ref)
	}
	return 200, s.commitWire(c, c.repo.commits[sha]), nil
}

func (s *Server) getBranch(c *reqCtx) (int, any, *httpErr) {
	b := c.r.PathValue("branch")
	sha, ok := c.repo.refs["refs/heads/"+b]
	if !ok {
		return 0, nil, errf(404, "Branch not found")
	}
	return 200, s.branchWire(c, b, c.repo.commits[sha]), nil
}
