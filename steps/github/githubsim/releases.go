package githubsim

import (
	"strconv"
)

// Releases. Only callers with push access see drafts, as on GitHub.

// releaseRequest is the body of releases/create and releases/update.
type releaseRequest struct {
	TagName         *string `json:"tag_name"`
	TargetCommitish *string `json:"target_commitish"`
	Name            *string `json:"name"`
	Body            *string `json:"body"`
	Draft           *bool   `json:"draft"`
	Prerelease      *bool   `json:"prerelease"`
}

// apply sets what req gives on rl, but for draft (publishing is the caller's).
func (req *releaseRequest) apply(rl *release) {
	if req.TagName != nil {
		rl.tag = *req.TagName
	}
	if req.TargetCommitish != nil && *req.TargetCommitish != "" {
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
}

// publishLocked publishes rl: it gets its tag, at its target, unless the tag exists.
func (s *Server) publishLocked(rp *repo, rl *release) {
	t := s.now()
	rl.published = &t
	if _, ok := rp.refs["refs/tags/"+rl.tag]; !ok {
		if sha, ok := s.resolve(rp, rl.target); ok {
			rp.refs["refs/tags/"+rl.tag] = sha
		}
	}
	s.emit(Event{Kind: "release_published", Repo: rp.full, Title: rl.tag})
}

func seesDrafts(c *reqCtx) bool { return rank(c.level) >= rank("push") }

func (s *Server) listReleases(c *reqCtx) (int, any, *httpErr) {
	var list []*releaseWire
	for i := len(c.repo.releases) - 1; i >= 0; i-- {
		if rl := c.repo.releases[i]; !rl.draft || seesDrafts(c) {
			list = append(list, s.releaseWire(c, rl))
		}
	}
	page, e := paginate(c, list)
	return 200, page, e
}

func (s *Server) createRelease(c *reqCtx) (int, any, *httpErr) {
	rp := c.repo
	var req releaseRequest
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
	rl := &release{id: s.newID(), target: rp.defaultBranch, author: s.user, created: s.now()}
	req.apply(rl)
	rl.draft = req.Draft != nil && *req.Draft
	rp.releases = append(rp.releases, rl)
	if !rl.draft {
		s.publishLocked(rp, rl)
	}
	c.hdr.Set("Location", s.releaseWire(c, rl).URL)
	return 201, s.releaseWire(c, rl), nil
}

func (s *Server) getReleaseByTag(c *reqCtx) (int, any, *httpErr) {
	tag := c.r.PathValue("tag")
	for _, rl := range c.repo.releases {
		if rl.tag == tag && !rl.draft {
			return 200, s.releaseWire(c, rl), nil
		}
	}
	return 0, nil, notFound()
}

// releaseAt is the release the path's {id} names, when the caller may see it, or nil.
func releaseAt(c *reqCtx) *release {
	id, _ := strconv.ParseInt(c.r.PathValue("id"), 10, 64)
	var found *release
	for _, rl := range c.repo.releases {
		if rl.id == id {
			found = rl
		}
	}
	if found == nil || (found.draft && !seesDrafts(c)) {
		return nil
	}
	return found
}

func (s *Server) getRelease(c *reqCtx) (int, any, *httpErr) {
	rl := releaseAt(c)
	if rl == nil {
		return 0, nil, notFound()
	}
	return 200, s.releaseWire(c, rl), nil
}

func (s *Server) editRelease(c *reqCtx) (int, any, *httpErr) {
	rl := releaseAt(c)
	if rl == nil {
		return 0, nil, notFound()
	}
	var req releaseRequest
	if e := c.decode(&req); e != nil {
		return 0, nil, e
	}
	req.apply(rl)
	if req.TargetCommitish != nil {
		rl.target = *req.TargetCommitish // an update may empty it
	}
	if req.Draft != nil {
		was := rl.draft
		rl.draft = *req.Draft
		if was && !rl.draft {
			s.publishLocked(c.repo, rl)
		}
	}
	return 200, s.releaseWire(c, rl), nil
}
