package githubsim

import (
	"fmt"
	"strings"
	"time"
)

// Git data: references and annotated tags.

// isObject reports whether sha is a commit or an annotated tag of r.
func isObject(r *repo, sha string) bool {
	_, isCommit := r.commits[sha]
	_, isTag := r.tags[sha]
	return isCommit || isTag
}

func (s *Server) getRef(c *reqCtx) (int, any, *httpErr) {
	name := "refs/" + c.r.PathValue("ref")
	sha, ok := c.repo.refs[name]
	if !ok {
		return 0, nil, errf(404, "Not Found")
	}
	return 200, s.refWire(c, name, sha), nil
}

func (s *Server) createRef(c *reqCtx) (int, any, *httpErr) {
	rp := c.repo
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
	if !isObject(rp, req.SHA) {
		return 0, nil, errf(422, "Object does not exist")
	}
	rp.refs[req.Ref] = req.SHA
	s.emit(Event{Kind: "ref_created", Repo: rp.full, Title: req.Ref})
	if b, ok := strings.CutPrefix(req.Ref, "refs/heads/"); ok {
		s.emit(Event{Kind: "push", Repo: rp.full, Title: b, Body: req.SHA})
	}
	return 201, s.refWire(c, req.Ref, req.SHA), nil
}

func (s *Server) updateRef(c *reqCtx) (int, any, *httpErr) {
	rp := c.repo
	name := "refs/" + c.r.PathValue("ref")
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
	if !isObject(rp, req.SHA) {
		return 0, nil, errf(422, "Object does not exist")
	}
	if !req.Force && strings.HasPrefix(name, "refs/heads/") && !s.isAncestor(rp, old, req.SHA) {
		return 0, nil, errf(422, "Update is not a fast forward")
	}
	rp.refs[name] = req.SHA
	if b, ok := strings.CutPrefix(name, "refs/heads/"); ok && old != req.SHA {
		s.emit(Event{Kind: "push", Repo: rp.full, Title: b, Body: req.SHA})
	}
	return 200, s.refWire(c, name, req.SHA), nil
}

func (s *Server) createTag(c *reqCtx) (int, any, *httpErr) {
	rp := c.repo
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
	return 201, s.tagWire(c, t), nil
}

func (s *Server) getTag(c *reqCtx) (int, any, *httpErr) {
	t, ok := c.repo.tags[c.r.PathValue("sha")]
	if !ok {
		return 0, nil, notFound()
	}
	return 200, s.tagWire(c, t), nil
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
