package githubsim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"
)

// route answers one request; it runs with s.mu held.
func (s *Server) route(r *http.Request, p, tok string, body []byte, hdr http.Header) (int, []byte) {
	var segs []string
	for _, seg := range strings.Split(strings.Trim(p, "/"), "/") {
		u, err := url.PathUnescape(seg)
		if err != nil {
			u = seg
		}
		segs = append(segs, u)
	}
	ctx := &reqCtx{s: s, r: r, tok: tok, body: body, hdr: hdr, base: "http://" + r.Host + "/"}
	status, v, herr := s.dispatch(ctx, r.Method, segs)
	if herr != nil {
		return jsonErr(herr)
	}
	if v == nil {
		return status, nil
	}
	return status, mustJSON(v)
}

type reqCtx struct {
	s    *Server
	r    *http.Request
	body []byte
	hdr  http.Header
	base string
	tok  string // the caller's token
	repo *repo
	// level is what the caller may do in repo (see access).
	level string
}

func (c *reqCtx) decode(v any) *httpErr {
	if err := json.Unmarshal(c.body, v); err != nil {
		return errf(400, "Problems parsing JSON")
	}
	return nil
}

func (s *Server) dispatch(c *reqCtx, m string, segs []string) (int, any, *httpErr) {
	if len(segs) == 1 && segs[0] == "rate_limit" && m == "GET" {
		rate := map[string]any{"limit": s.limit, "remaining": s.remaining, "reset": s.reset.Unix(), "used": s.limit - s.remaining}
		return 200, map[string]any{"resources": map[string]any{"core": rate}, "rate": rate}, nil
	}
	if len(segs) == 1 && segs[0] == "user" && m == "GET" {
		return s.userJSON(c)
	}
	if len(segs) == 2 && segs[0] == "installation" && segs[1] == "repositories" && m == "GET" {
		return s.installationRepos(c)
	}
	if len(segs) < 3 || segs[0] != "repos" {
		return 0, nil, notFound()
	}
	rp := s.lookup(segs[1] + "/" + segs[2])
	if rp == nil {
		return 0, nil, notFound()
	}
	c.repo = rp
	rest := segs[3:]
	if e := s.access(c, m, rest); e != nil {
		return 0, nil, e
	}
	if len(rest) == 0 {
		if m == "GET" {
			return 200, s.repoJSON(c), nil
		}
		return 0, nil, notFound()
	}
	switch rest[0] {
	case "branches":
		if len(rest) >= 2 && m == "GET" {
			return s.getBranch(c, strings.Join(rest[1:], "/"))
		}
	case "commits":
		if len(rest) >= 2 && m == "GET" {
			sha, ok := s.resolve(rp, strings.Join(rest[1:], "/"))
			if !ok {
				return 0, nil, validation("Commit", "sha", "invalid", "No commit found for SHA: "+strings.Join(rest[1:], "/"))
			}
			return 200, s.commitJSON(c, rp.commits[sha]), nil
		}
	case "git":
		return s.git(c, m, rest[1:])
	case "contents":
		if len(rest) >= 2 {
			return s.contents(c, m, strings.Join(rest[1:], "/"))
		}
	case "issues":
		return s.issuesRoute(c, m, rest[1:])
	case "milestones":
		return s.milestonesRoute(c, m, rest[1:])
	case "releases":
		return s.releasesRoute(c, m, rest[1:])
	}
	return 0, nil, notFound()
}

func ts(t time.Time) *github.Timestamp { return &github.Timestamp{Time: t} }

func (s *Server) repoJSON(c *reqCtx) *github.Repository {
	owner, name, _ := strings.Cut(c.repo.full, "/")
	return &github.Repository{
		ID: github.Int64(c.repo.id), Name: github.String(name), FullName: github.String(c.repo.full),
		Owner: &github.User{Login: github.String(owner)}, DefaultBranch: github.String(c.repo.defaultBranch),
		HTMLURL: github.String(s.htmlBase() + c.repo.full), URL: github.String(c.base + "repos/" + c.repo.full),
		Private: github.Bool(c.repo.private), Visibility: github.String(map[bool]string{false: "public", true: "private"}[c.repo.private]),
		Permissions: permissionsJSON(c.level),
	}
}

func (s *Server) htmlBase() string { return s.srv.URL + "/" }

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

func (s *Server) commitJSON(c *reqCtx, cm *commit) *github.RepositoryCommit {
	var parents []*github.Commit
	for _, p := range cm.parents {
		parents = append(parents, &github.Commit{SHA: github.String(p)})
	}
	return &github.RepositoryCommit{
		SHA: github.String(cm.sha), HTMLURL: github.String(s.htmlBase() + c.repo.full + "/commit/" + cm.sha),
		Commit: &github.Commit{SHA: github.String(cm.sha), Message: github.String(cm.message),
			Author: &github.CommitAuthor{Name: github.String("Sim"), Email: github.String("sim@example.org"), Date: ts(cm.date)}},
		Parents: parents,
	}
}

func (s *Server) getBranch(c *reqCtx, b string) (int, any, *httpErr) {
	sha, ok := c.repo.refs["refs/heads/"+b]
	if !ok {
		return 0, nil, errf(404, "Branch not found")
	}
	return 200, &github.Branch{Name: github.String(b), Commit: s.commitJSON(c, c.repo.commits[sha])}, nil
}

func (s *Server) refJSON(c *reqCtx, name, sha string) *github.Reference {
	typ := "commit"
	if _, ok := c.repo.tags[sha]; ok {
		typ = "tag"
	}
	return &github.Reference{Ref: github.String(name), URL: github.String(c.base + "repos/" + c.repo.full + "/git/" + name),
		Object: &github.GitObject{Type: github.String(typ), SHA: github.String(sha)}}
}

func (s *Server) tagJSON(c *reqCtx, t *tagObj) *github.Tag {
	return &github.Tag{Tag: github.String(t.tag), SHA: github.String(t.sha), Message: github.String(t.message),
		URL:    github.String(c.base + "repos/" + c.repo.full + "/git/tags/" + t.sha),
		Tagger: &github.CommitAuthor{Name: github.String("Sim"), Email: github.String("sim@example.org"), Date: ts(t.date)},
		Object: &github.GitObject{Type: github.String(t.typ), SHA: github.String(t.object)}}
}

func (s *Server) git(c *reqCtx, m string, rest []string) (int, any, *httpErr) {
	rp := c.repo
	if len(rest) == 0 {
		return 0, nil, notFound()
	}
	switch {
	case rest[0] == "ref" && len(rest) >= 2 && m == "GET":
		name := "refs/" + strings.Join(rest[1:], "/")
		sha, ok := rp.refs[name]
		if !ok {
			return 0, nil, errf(404, "Not Found")
		}
		return 200, s.refJSON(c, name, sha), nil
	case rest[0] == "refs" && len(rest) == 1 && m == "POST":
		var req struct {
			Ref string `json:"ref"`
			SHA string `json:"sha"`
		}
		if e := c.decode(&req); e != nil {
			return 0, nil, e
		}
		if !strings.HasPrefix(req.Ref, "refs/") || strings.Count(req.Ref, "/") < 2 {
			return 0, nil, errf(422, "Reference name must start with 'refs/' and have at least two slashes.")
		}
		if _, ok := rp.refs[req.Ref]; ok {
			return 0, nil, errf(422, "Reference already exists")
		}
		_, isCommit := rp.commits[req.SHA]
		_, isTag := rp.tags[req.SHA]
		if !isCommit && !isTag {
			return 0, nil, errf(422, "Object does not exist")
		}
		rp.refs[req.Ref] = req.SHA
		s.emit(Event{Kind: "ref_created", Repo: rp.full, Title: req.Ref})
		if b, ok := strings.CutPrefix(req.Ref, "refs/heads/"); ok {
			s.emit(Event{Kind: "push", Repo: rp.full, Title: b, Body: req.SHA})
		}
		return 201, s.refJSON(c, req.Ref, req.SHA), nil
	case rest[0] == "refs" && len(rest) >= 2 && m == "PATCH":
		name := "refs/" + strings.Join(rest[1:], "/")
		var req struct {
			SHA   string `json:"sha"`
			Force bool   `json:"force"`
		}
		if e := c.decode(&req); e != nil {
			return 0, nil, e
		}
		old, ok := rp.refs[name]
		if !ok {
			return 0, nil, errf(422, "Reference does not exist")
		}
		_, isCommit := rp.commits[req.SHA]
		_, isTag := rp.tags[req.SHA]
		if !isCommit && !isTag {
			return 0, nil, errf(422, "Object does not exist")
		}
		if !req.Force && strings.HasPrefix(name, "refs/heads/") && !s.isAncestor(rp, old, req.SHA) {
			return 0, nil, errf(422, "Update is not a fast forward")
		}
		rp.refs[name] = req.SHA
		if b, ok := strings.CutPrefix(name, "refs/heads/"); ok && old != req.SHA {
			s.emit(Event{Kind: "push", Repo: rp.full, Title: b, Body: req.SHA})
		}
		return 200, s.refJSON(c, name, req.SHA), nil
	case rest[0] == "tags" && len(rest) == 1 && m == "POST":
		var req struct {
			Tag     string `json:"tag"`
			Message string `json:"message"`
			Object  string `json:"object"`
			Type    string `json:"type"`
		}
		if e := c.decode(&req); e != nil {
			return 0, nil, e
		}
		if req.Tag == "" || req.Object == "" {
			return 0, nil, validation("Tag", "tag", "missing_field", "tag and object are required")
		}
		if _, ok := rp.commits[req.Object]; !ok {
			return 0, nil, errf(422, "Object does not exist")
		}
		if req.Type == "" {
			req.Type = "commit"
		}
		t := &tagObj{tag: req.Tag, message: req.Message, object: req.Object, typ: req.Type, date: s.clock.Now().UTC().Truncate(time.Second)}
		t.sha = gitSHA("tag", []byte(fmt.Sprintf("%s\n%s\n%s\n%d", req.Object, req.Tag, req.Message, s.newID())))
		rp.tags[t.sha] = t
		return 201, s.tagJSON(c, t), nil
	case rest[0] == "tags" && len(rest) == 2 && m == "GET":
		t, ok := rp.tags[rest[1]]
		if !ok {
			return 0, nil, notFound()
		}
		return 200, s.tagJSON(c, t), nil
	}
	return 0, nil, notFound()
}

func (s *Server) isAncestor(r *repo, anc, sha string) bool {
	for sha != "" {
		if sha == anc {
			return true
		}
		cm := r.commits[sha]
		if cm == nil || len(cm.parents) == 0 {
			return false
		}
		sha = cm.parents[0]
	}
	return false
}

func (s *Server) contents(c *reqCtx, m, p string) (int, any, *httpErr) {
	rp := c.repo
	switch m {
	case "GET":
		ref := c.r.URL.Query().Get("ref")
		if ref == "" {
			ref = rp.defaultBranch
		}
		sha, ok := s.resolve(rp, ref)
		if !ok {
			return 0, nil, errf(404, "No commit found for the ref %s", ref)
		}
		content, ok := rp.commits[sha].files[p]
		if !ok {
			return 0, nil, notFound()
		}
		return 200, s.fileJSON(c, p, content, true), nil
	case "PUT":
		var req struct {
			Message string `json:"message"`
			Content string `json:"content"`
			SHA     string `json:"sha"`
			Branch  string `json:"branch"`
		}
		if e := c.decode(&req); e != nil {
			return 0, nil, e
		}
		if req.Message == "" {
			return 0, nil, validation("Commit", "message", "missing_field", "message is required")
		}
		raw, err := base64.StdEncoding.DecodeString(req.Content)
		if err != nil {
			return 0, nil, validation("Commit", "content", "invalid", "content is not valid Base64")
		}
		branch := req.Branch
		if branch == "" {
			branch = rp.defaultBranch
		}
		head, ok := rp.refs["refs/heads/"+branch]
		if !ok {
			return 0, nil, errf(404, "Branch %s not found", branch)
		}
		old, exists := rp.commits[head].files[p]
		status := 201
		if exists {
			if req.SHA == "" {
				return 0, nil, errf(422, "Invalid request. \"sha\" wasn't supplied.")
			}
			if req.SHA != gitSHA("blob", []byte(old)) {
				return 0, nil, errf(409, "%s does not match %s", p, req.SHA)
			}
			status = 200
		}
		tree := map[string]string{}
		for k, v := range rp.commits[head].files {
			tree[k] = v
		}
		tree[p] = string(raw)
		cm := s.newCommitLocked(rp, head, req.Message, tree)
		rp.refs["refs/heads/"+branch] = cm.sha
		s.emit(Event{Kind: "file_updated", Repo: rp.full, Title: p})
		s.emit(Event{Kind: "push", Repo: rp.full, Title: branch, Body: cm.sha})
		return status, &github.RepositoryContentResponse{Content: s.fileJSON(c, p, string(raw), false), Commit: *s.commitJSON(c, cm).Commit}, nil
	}
	return 0, nil, notFound()
}

func (s *Server) fileJSON(c *reqCtx, p, content string, withContent bool) *github.RepositoryContent {
	name := p
	if i := strings.LastIndex(p, "/"); i >= 0 {
		name = p[i+1:]
	}
	rc := &github.RepositoryContent{Type: github.String("file"), Name: github.String(name), Path: github.String(p),
		SHA: github.String(gitSHA("blob", []byte(content))), Size: github.Int(len(content)),
		URL:     github.String(c.base + "repos/" + c.repo.full + "/contents/" + p),
		HTMLURL: github.String(s.htmlBase() + c.repo.full + "/blob/" + c.repo.defaultBranch + "/" + p)}
	if withContent {
		enc := base64.StdEncoding.EncodeToString([]byte(content))
		// GitHub wraps the base64 at 60 columns.
		var b strings.Builder
		for len(enc) > 60 {
			b.WriteString(enc[:60] + "\n")
			enc = enc[60:]
		}
		b.WriteString(enc)
		rc.Content = github.String(b.String())
		rc.Encoding = github.String("base64")
	}
	return rc
}

// paginate cuts items to the requested page and sets the Link header the way GitHub does.
func paginate[T any](c *reqCtx, items []T) ([]T, *httpErr) {
	q := c.r.URL.Query()
	per, page := 30, 1
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, validation("", "per_page", "invalid", "per_page must be a positive integer")
		}
		per = min(n, 100)
	}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			n = 1
		}
		page = n
	}
	last := (len(items) + per - 1) / per
	if last == 0 {
		last = 1
	}
	link := func(n int, rel string) string {
		q2 := c.r.URL.Query()
		q2.Set("per_page", strconv.Itoa(per))
		q2.Set("page", strconv.Itoa(n))
		return fmt.Sprintf(`<%s%s?%s>; rel="%s"`, strings.TrimSuffix(c.base, "/"), c.r.URL.EscapedPath(), q2.Encode(), rel)
	}
	if last > 1 {
		var ls []string
		if page > 1 {
			ls = append(ls, link(page-1, "prev"))
		}
		if page < last {
			ls = append(ls, link(page+1, "next"), link(last, "last"))
		}
		if page > 1 {
			ls = append(ls, link(1, "first"))
		}
		c.hdr.Set("Link", strings.Join(ls, ", "))
	}
	lo := (page - 1) * per
	if lo >= len(items) {
		return []T{}, nil
	}
	return items[lo:min(lo+per, len(items))], nil
}

func (s *Server) issueJSON(c *reqCtx, it *issue) *github.Issue {
	kind := "issues"
	if it.pr {
		kind = "pull"
	}
	out := &github.Issue{ID: github.Int64(it.id), Number: github.Int(it.number), Title: github.String(it.title), Body: github.String(it.body),
		State: github.String(it.state), User: &github.User{Login: github.String(it.user)}, Comments: github.Int(len(it.comments)),
		CreatedAt: ts(it.created), UpdatedAt: ts(it.updated),
		URL:     github.String(fmt.Sprintf("%srepos/%s/issues/%d", c.base, c.repo.full, it.number)),
		HTMLURL: github.String(fmt.Sprintf("%s%s/%s/%d", s.htmlBase(), c.repo.full, kind, it.number)),
		Labels:  []*github.Label{}}
	if it.stateReason != "" {
		out.StateReason = github.String(it.stateReason)
	}
	if it.closed != nil {
		out.ClosedAt = ts(*it.closed)
	}
	for _, l := range it.labels {
		out.Labels = append(out.Labels, &github.Label{Name: github.String(l)})
	}
	if it.milestone > 0 {
		out.Milestone = s.milestoneJSON(c, c.repo.milestones[it.milestone-1])
	}
	if it.pr {
		out.PullRequestLinks = &github.PullRequestLinks{URL: github.String(fmt.Sprintf("%srepos/%s/pulls/%d", c.base, c.repo.full, it.number)),
			HTMLURL: out.HTMLURL}
		if it.merged != nil {
			out.PullRequestLinks.MergedAt = ts(*it.merged)
		}
	}
	return out
}

func (s *Server) milestoneJSON(c *reqCtx, m *milestone) *github.Milestone {
	open, closed := 0, 0
	for _, it := range c.repo.issues {
		if it.milestone == m.number {
			if it.state == "open" {
				open++
			} else {
				closed++
			}
		}
	}
	out := &github.Milestone{ID: github.Int64(m.id), Number: github.Int(m.number), Title: github.String(m.title), Description: github.String(m.description),
		State: github.String(m.state), OpenIssues: github.Int(open), ClosedIssues: github.Int(closed), CreatedAt: ts(m.created), UpdatedAt: ts(m.updated),
		URL:     github.String(fmt.Sprintf("%srepos/%s/milestones/%d", c.base, c.repo.full, m.number)),
		HTMLURL: github.String(fmt.Sprintf("%s%s/milestone/%d", s.htmlBase(), c.repo.full, m.number))}
	if m.closed != nil {
		out.ClosedAt = ts(*m.closed)
	}
	return out
}

func (s *Server) commentJSON(c *reqCtx, cm *comment) *github.IssueComment {
	return &github.IssueComment{ID: github.Int64(cm.id), Body: github.String(cm.body), User: &github.User{Login: github.String(cm.user)},
		CreatedAt: ts(cm.created), UpdatedAt: ts(cm.updated),
		URL:      github.String(fmt.Sprintf("%srepos/%s/issues/comments/%d", c.base, cm.repo, cm.id)),
		HTMLURL:  github.String(fmt.Sprintf("%s%s/issues/%d#issuecomment-%d", s.htmlBase(), cm.repo, cm.issue, cm.id)),
		IssueURL: github.String(fmt.Sprintf("%srepos/%s/issues/%d", c.base, cm.repo, cm.issue))}
}

// issueRequest is the body of issues/create and issues/update; milestone may be a
// number, a string or null.
type issueRequest struct {
	Title       *string          `json:"title"`
	Body        *string          `json:"body"`
	Labels      *[]string        `json:"labels"`
	State       *string          `json:"state"`
	StateReason *string          `json:"state_reason"`
	Milestone   *json.RawMessage `json:"milestone"`
}

func (s *Server) issuesRoute(c *reqCtx, m string, rest []string) (int, any, *httpErr) {
	rp := c.repo
	now := s.clock.Now().UTC().Truncate(time.Second)
	switch {
	case len(rest) == 0 && m == "GET":
		q := c.r.URL.Query()
		state := q.Get("state")
		if state == "" {
			state = "open"
		}
		var labels []string
		if l := q.Get("labels"); l != "" {
			labels = strings.Split(l, ",")
		}
		var list []*github.Issue
		for _, it := range rp.issues {
			if state != "all" && it.state != state {
				continue
			}
			switch ms := q.Get("milestone"); ms {
			case "":
			case "*":
				if it.milestone == 0 {
					continue
				}
			case "none":
				if it.milestone != 0 {
					continue
				}
			default:
				if n, _ := strconv.Atoi(ms); n != it.milestone {
					continue
				}
			}
			if !hasAll(it.labels, labels) {
				continue
			}
			list = append(list, s.issueJSON(c, it))
		}
		if q.Get("direction") != "asc" {
			sort.SliceStable(list, func(i, j int) bool { return *list[i].Number > *list[j].Number })
		}
		page, e := paginate(c, list)
		return 200, page, e
	case len(rest) == 0 && m == "POST":
		var req issueRequest
		if e := c.decode(&req); e != nil {
			return 0, nil, e
		}
		if req.Title == nil || *req.Title == "" {
			return 0, nil, validation("Issue", "title", "missing_field", "")
		}
		it := &issue{number: len(rp.issues) + 1, id: s.newID(), title: *req.Title, user: s.user, state: "open", created: now, updated: now}
		if req.Body != nil {
			it.body = *req.Body
		}
		// Only users with push access can set labels and the milestone of a new issue;
		// GitHub silently drops them for the others.
		if rank(c.level) >= rank("push") {
			if req.Labels != nil {
				it.labels = *req.Labels
			}
			if e := s.setMilestone(rp, it, req.Milestone); e != nil {
				return 0, nil, e
			}
		}
		rp.issues = append(rp.issues, it)
		c.hdr.Set("Location", fmt.Sprintf("%srepos/%s/issues/%d", c.base, rp.full, it.number))
		s.emit(Event{Kind: "issue_created", Repo: rp.full, Issue: it.number, Title: it.title, Body: it.body, User: it.user})
		return 201, s.issueJSON(c, it), nil
	case len(rest) == 1 && rest[0] != "comments":
		n, err := strconv.Atoi(rest[0])
		if err != nil || n < 1 || n > len(rp.issues) {
			return 0, nil, notFound()
		}
		it := rp.issues[n-1]
		if m == "GET" {
			return 200, s.issueJSON(c, it), nil
		}
		if m != "PATCH" {
			return 0, nil, notFound()
		}
		var req issueRequest
		if e := c.decode(&req); e != nil {
			return 0, nil, e
		}
		if req.Title != nil {
			it.title = *req.Title
		}
		if req.Body != nil {
			it.body = *req.Body
		}
		if req.Labels != nil {
			it.labels = *req.Labels
		}
		if req.Milestone != nil {
			if e := s.setMilestone(rp, it, req.Milestone); e != nil {
				return 0, nil, e
			}
		}
		if req.State != nil {
			switch *req.State {
			case "open":
				it.state, it.closed, it.stateReason = "open", nil, "reopened"
			case "closed":
				if it.state != "closed" {
					it.closed = &now
				}
				it.state = "closed"
				it.stateReason = "completed"
			default:
				return 0, nil, validation("Issue", "state", "invalid", "")
			}
		}
		if req.StateReason != nil {
			it.stateReason = *req.StateReason
		}
		it.updated = now
		s.emit(Event{Kind: "issue_edited", Repo: rp.full, Issue: it.number, Title: it.title, Body: it.body, User: s.user})
		return 200, s.issueJSON(c, it), nil
	case len(rest) == 2 && rest[1] == "comments":
		n, err := strconv.Atoi(rest[0])
		if err != nil || n < 1 || n > len(rp.issues) {
			return 0, nil, notFound()
		}
		it := rp.issues[n-1]
		if m == "GET" {
			var list []*github.IssueComment
			for _, id := range it.comments {
				list = append(list, s.commentJSON(c, s.comments[id]))
			}
			page, e := paginate(c, list)
			return 200, page, e
		}
		if m == "POST" {
			var req struct {
				Body *string `json:"body"`
			}
			if e := c.decode(&req); e != nil {
				return 0, nil, e
			}
			if req.Body == nil {
				return 0, nil, validation("IssueComment", "body", "missing_field", "")
			}
			cm := s.addCommentLocked(rp, it, s.user, *req.Body)
			c.hdr.Set("Location", *s.commentJSON(c, cm).URL)
			s.emit(Event{Kind: "comment_created", Repo: rp.full, Issue: it.number, Body: cm.body, User: cm.user})
			return 201, s.commentJSON(c, cm), nil
		}
	case len(rest) == 2 && rest[0] == "comments":
		id, _ := strconv.ParseInt(rest[1], 10, 64)
		cm, ok := s.comments[id]
		if !ok || !strings.EqualFold(cm.repo, rp.full) {
			return 0, nil, notFound()
		}
		if m == "GET" {
			return 200, s.commentJSON(c, cm), nil
		}
		if m == "PATCH" {
			var req struct {
				Body *string `json:"body"`
			}
			if e := c.decode(&req); e != nil {
				return 0, nil, e
			}
			if req.Body == nil {
				return 0, nil, validation("IssueComment", "body", "missing_field", "")
			}
			cm.body = *req.Body
			cm.updated = now
			s.emit(Event{Kind: "comment_edited", Repo: rp.full, Issue: cm.issue, Body: cm.body, User: s.user})
			return 200, s.commentJSON(c, cm), nil
		}
	}
	return 0, nil, notFound()
}

func hasAll(have, want []string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			if strings.EqualFold(h, strings.TrimSpace(w)) {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func (s *Server) setMilestone(rp *repo, it *issue, raw *json.RawMessage) *httpErr {
	if raw == nil || string(*raw) == "null" {
		if raw != nil {
			it.milestone = 0
		}
		return nil
	}
	var n int
	if err := json.Unmarshal(*raw, &n); err != nil {
		var str string
		if json.Unmarshal(*raw, &str) != nil {
			return validation("Issue", "milestone", "invalid", "")
		}
		n, _ = strconv.Atoi(str)
	}
	if n < 1 || n > len(rp.milestones) {
		return validation("Issue", "milestone", "invalid", "")
	}
	it.milestone = n
	return nil
}

func (s *Server) milestonesRoute(c *reqCtx, m string, rest []string) (int, any, *httpErr) {
	rp := c.repo
	now := s.clock.Now().UTC().Truncate(time.Second)
	switch {
	case len(rest) == 0 && m == "GET":
		state := c.r.URL.Query().Get("state")
		if state == "" {
			state = "open"
		}
		var list []*github.Milestone
		for _, ms := range rp.milestones {
			if state == "all" || ms.state == state {
				list = append(list, s.milestoneJSON(c, ms))
			}
		}
		page, e := paginate(c, list)
		return 200, page, e
	case len(rest) == 0 && m == "POST":
		var req struct {
			Title       string `json:"title"`
			Description string `json:"description"`
		}
		if e := c.decode(&req); e != nil {
			return 0, nil, e
		}
		if req.Title == "" {
			return 0, nil, validation("Milestone", "title", "missing_field", "")
		}
		if s.milestoneLocked(rp, req.Title, false) != nil {
			return 0, nil, validation("Milestone", "title", "already_exists", "")
		}
		ms := s.milestoneLocked(rp, req.Title, true)
		ms.description = req.Description
		return 201, s.milestoneJSON(c, ms), nil
	case len(rest) == 1:
		n, err := strconv.Atoi(rest[0])
		if err != nil || n < 1 || n > len(rp.milestones) {
			return 0, nil, notFound()
		}
		ms := rp.milestones[n-1]
		if m == "GET" {
			return 200, s.milestoneJSON(c, ms), nil
		}
		if m == "PATCH" {
			var req struct {
				Title       *string `json:"title"`
				State       *string `json:"state"`
				Description *string `json:"description"`
			}
			if e := c.decode(&req); e != nil {
				return 0, nil, e
			}
			if req.Title != nil {
				ms.title = *req.Title
			}
			if req.Description != nil {
				ms.description = *req.Description
			}
			if req.State != nil {
				if *req.State == "closed" && ms.state != "closed" {
					ms.closed = &now
				}
				if *req.State == "open" {
					ms.closed = nil
				}
				ms.state = *req.State
			}
			ms.updated = now
			return 200, s.milestoneJSON(c, ms), nil
		}
	}
	return 0, nil, notFound()
}

func (s *Server) releaseJSON(c *reqCtx, rl *release) *github.RepositoryRelease {
	out := &github.RepositoryRelease{ID: github.Int64(rl.id), TagName: github.String(rl.tag), TargetCommitish: github.String(rl.target),
		Name: github.String(rl.name), Body: github.String(rl.body), Draft: github.Bool(rl.draft), Prerelease: github.Bool(rl.prerelease),
		CreatedAt: ts(rl.created), Author: &github.User{Login: github.String(s.user)},
		URL:     github.String(fmt.Sprintf("%srepos/%s/releases/%d", c.base, c.repo.full, rl.id)),
		HTMLURL: github.String(fmt.Sprintf("%s%s/releases/tag/%s", s.htmlBase(), c.repo.full, rl.tag))}
	if rl.draft {
		out.HTMLURL = github.String(fmt.Sprintf("%s%s/releases/untagged-%d", s.htmlBase(), c.repo.full, rl.id))
	}
	if rl.published != nil {
		out.PublishedAt = ts(*rl.published)
	}
	return out
}

func (s *Server) releasesRoute(c *reqCtx, m string, rest []string) (int, any, *httpErr) {
	rp := c.repo
	now := s.clock.Now().UTC().Truncate(time.Second)
	type relReq struct {
		TagName         *string `json:"tag_name"`
		TargetCommitish *string `json:"target_commitish"`
		Name            *string `json:"name"`
		Body            *string `json:"body"`
		Draft           *bool   `json:"draft"`
		Prerelease      *bool   `json:"prerelease"`
	}
	publish := func(rl *release) {
		rl.published = &now
		if _, ok := rp.refs["refs/tags/"+rl.tag]; !ok {
			if sha, ok := s.resolve(rp, rl.target); ok {
				rp.refs["refs/tags/"+rl.tag] = sha
			}
		}
		s.emit(Event{Kind: "release_published", Repo: rp.full, Title: rl.tag})
	}
	// Only users with push access see draft releases.
	seesDrafts := rank(c.level) >= rank("push")
	switch {
	case len(rest) == 0 && m == "GET":
		var list []*github.RepositoryRelease
		for i := len(rp.releases) - 1; i >= 0; i-- {
			if rp.releases[i].draft && !seesDrafts {
				continue
			}
			list = append(list, s.releaseJSON(c, rp.releases[i]))
		}
		page, e := paginate(c, list)
		return 200, page, e
	case len(rest) == 0 && m == "POST":
		var req relReq
		if e := c.decode(&req); e != nil {
			return 0, nil, e
		}
		if req.TagName == nil || *req.TagName == "" {
			return 0, nil, validation("Release", "tag_name", "missing_field", "")
		}
		for _, rl := range rp.releases {
			if rl.tag == *req.TagName {
				return 0, nil, validation("Release", "tag_name", "already_exists", "")
			}
		}
		rl := &release{id: s.newID(), tag: *req.TagName, target: rp.defaultBranch, created: now}
		if req.TargetCommitish != nil && *req.TargetCommitish != "" {
			rl.target = *req.TargetCommitish
		}
		if req.Name != nil {
			rl.name = *req.Name
		}
		if req.Body != nil {
			rl.body = *req.Body
		}
		rl.draft = req.Draft != nil && *req.Draft
		rl.prerelease = req.Prerelease != nil && *req.Prerelease
		rp.releases = append(rp.releases, rl)
		if !rl.draft {
			publish(rl)
		}
		c.hdr.Set("Location", *s.releaseJSON(c, rl).URL)
		return 201, s.releaseJSON(c, rl), nil
	case len(rest) >= 2 && rest[0] == "tags" && m == "GET":
		tag := strings.Join(rest[1:], "/")
		for _, rl := range rp.releases {
			if rl.tag == tag && !rl.draft {
				return 200, s.releaseJSON(c, rl), nil
			}
		}
		return 0, nil, notFound()
	case len(rest) == 1:
		id, _ := strconv.ParseInt(rest[0], 10, 64)
		var rl *release
		for _, r := range rp.releases {
			if r.id == id {
				rl = r
			}
		}
		if rl == nil || (rl.draft && !seesDrafts) {
			return 0, nil, notFound()
		}
		if m == "GET" {
			return 200, s.releaseJSON(c, rl), nil
		}
		if m == "PATCH" {
			var req relReq
			if e := c.decode(&req); e != nil {
				return 0, nil, e
			}
			if req.TagName != nil {
				rl.tag = *req.TagName
			}
			if req.TargetCommitish != nil {
				rl.target = *req.TargetCommitish
			}
			if req.Name != nil {
				rl.name = *req.Name
			}
			if req.Body != nil {
				rl.body = *req.Body
			}
			if req.Prerelease != nil {
				rl.prerelease = *req.Prerelease
			}
			if req.Draft != nil {
				was := rl.draft
				rl.draft = *req.Draft
				if was && !rl.draft {
					publish(rl)
				}
			}
			return 200, s.releaseJSON(c, rl), nil
		}
	}
	return 0, nil, notFound()
}
