package githubsim

import (
	"encoding/base64"
)

// Repository contents: a file at a ref, and a commit that sets one.

func (s *Server) getContents(c *reqCtx) (int, any, *httpErr) {
	rp, p := c.repo, c.r.PathValue("path")
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
	return 200, s.contentWire(c, ref, p, content, true), nil
}

func (s *Server) putContents(c *reqCtx) (int, any, *httpErr) {
	rp, p := c.repo, c.r.PathValue("path")
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
	status, e := replaces(rp.commits[head], p, req.SHA)
	if e != nil {
		return 0, nil, e
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
	return status, &fileCommitWire{Content: s.contentWire(c, branch, p, string(raw), false), Commit: s.fileCommitCommit(c, cm)}, nil
}

// replaces checks a write of file p at head that names the blob it replaces (sha): 201
// for a new file, 200 for a replaced one, or GitHub's refusal.
func replaces(head *commit, p, sha string) (int, *httpErr) {
	old, exists := head.files[p]
	switch {
	case !exists:
		return 201, nil
	case sha == "":
		return 0, errf(422, "Invalid request. \"sha\" wasn't supplied.")
	case sha != gitSHA("blob", []byte(old)):
		return 0, errf(409, "%s does not match %s", p, sha)
	}
	return 200, nil
}
