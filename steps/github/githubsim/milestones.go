package githubsim

// Milestones.

func (s *Server) listMilestones(c *reqCtx) (int, any, *httpErr) {
	state := c.r.URL.Query().Get("state")
	if state == "" {
		state = "open"
	}
	var list []*milestoneWire
	for _, ms := range c.repo.milestones {
		if state == "all" || ms.state == state {
			list = append(list, s.milestoneWire(c, ms))
		}
	}
	page, e := paginate(c, list)
	return 200, page, e
}

func (s *Server) createMilestone(c *reqCtx) (int, any, *httpErr) {
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
	if s.milestoneLocked(c.repo, req.Title, "") != nil {
		return 0, nil, validation("Milestone", "title", "already_exists", "")
	}
	ms := s.milestoneLocked(c.repo, req.Title, s.user)
	ms.description = req.Description
	return 201, s.milestoneWire(c, ms), nil
}

// milestoneAt is the milestone the path's {number} names, or nil.
func milestoneAt(c *reqCtx) *milestone {
	n := issueNumber(c.r.PathValue("number"))
	if n < 1 || n > len(c.repo.milestones) {
		return nil
	}
	return c.repo.milestones[n-1]
}

func (s *Server) getMilestone(c *reqCtx) (int, any, *httpErr) {
	ms := milestoneAt(c)
	if ms == nil {
		return 0, nil, notFound()
	}
	return 200, s.milestoneWire(c, ms), nil
}

func (s *Server) editMilestone(c *reqCtx) (int, any, *httpErr) {
	ms := milestoneAt(c)
	if ms == nil {
		return 0, nil, notFound()
	}
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
	t := s.now()
	if req.State != nil {
		if *req.State == "closed" && ms.state != "closed" {
			ms.closed = &t
		}
		if *req.State == "open" {
			ms.closed = nil
		}
		ms.state = *req.State
	}
	ms.updated = t
	return 200, s.milestoneWire(c, ms), nil
}
