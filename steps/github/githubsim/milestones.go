package githubsim

import (
	"fmt"

	"github.com/google/go-github/v60/github"
)

// Milestones.

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

func (s *Server) listMilestones(c *reqCtx) (int, any, *httpErr) {
	state := c.r.URL.Query().Get("state")
	if state == "" {
		state = "open"
	}
	var list []*github.Milestone
	for _, ms := range c.repo.milestones {
		if state == "all" || ms.state == state {
			list = append(list, s.milestoneJSON(c, ms))
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
	if s.milestoneLocked(c.repo, req.Title, false) != nil {
		return 0, nil, validation("Milestone", "title", "already_exists", "")
	}
	ms := s.milestoneLocked(c.repo, req.Title, true)
	ms.description = req.Description
	return 201, s.milestoneJSON(c, ms), nil
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
	return 200, s.milestoneJSON(c, ms), nil
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
	return 200, s.milestoneJSON(c, ms), nil
}
