package githubsim

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Issues and pull requests (they share numbers), and their comments.

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

// now is the time of a change, in GitHub's whole seconds.
func (s *Server) now() time.Time { return s.clock.Now().UTC().Truncate(time.Second) }

// issueAt is the issue the path's {number} names, or nil.
func issueAt(c *reqCtx) *issue {
	n := issueNumber(c.r.PathValue("number"))
	if n < 1 || n > len(c.repo.issues) {
		return nil
	}
	return c.repo.issues[n-1]
}

func (s *Server) listIssues(c *reqCtx) (int, any, *httpErr) {
	q := c.r.URL.Query()
	state := q.Get("state")
	if state == "" {
		state = "open"
	}
	var labels []string
	if l := q.Get("labels"); l != "" {
		labels = strings.Split(l, ",")
	}
	var list []*issueWire
	for _, it := range c.repo.issues {
		if (state == "all" || it.state == state) && inMilestone(it, q.Get("milestone")) && hasAll(it.labels, labels) {
			list = append(list, s.issueWire(c, it))
		}
	}
	if q.Get("direction") != "asc" {
		sort.SliceStable(list, func(i, j int) bool { return list[i].Number > list[j].Number })
	}
	page, e := paginate(c, list)
	return 200, page, e
}

// inMilestone applies the milestone filter of issues/list: "" any, "*" some, "none", or a number.
func inMilestone(it *issue, filter string) bool {
	switch filter {
	case "":
		return true
	case "*":
		return it.milestone != 0
	case "none":
		return it.milestone == 0
	}
	n, _ := strconv.Atoi(filter)
	return n == it.milestone
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

func (s *Server) createIssue(c *reqCtx) (int, any, *httpErr) {
	rp := c.repo
	var req issueRequest
	if e := c.decode(&req); e != nil {
		return 0, nil, e
	}
	if req.Title == nil || *req.Title == "" {
		return 0, nil, validation("Issue", "title", "missing_field", "")
	}
	t := s.now()
	it := &issue{number: len(rp.issues) + 1, id: s.newID(), title: *req.Title, user: s.user, state: "open", created: t, updated: t}
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
	return 201, s.issueWire(c, it), nil
}

func (s *Server) getIssue(c *reqCtx) (int, any, *httpErr) {
	it := issueAt(c)
	if it == nil {
		return 0, nil, notFound()
	}
	return 200, s.issueWire(c, it), nil
}

func (s *Server) editIssue(c *reqCtx) (int, any, *httpErr) {
	it := issueAt(c)
	if it == nil {
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
		if e := s.setMilestone(c.repo, it, req.Milestone); e != nil {
			return 0, nil, e
		}
	}
	t := s.now()
	if req.State != nil {
		if e := setState(it, *req.State, t); e != nil {
			return 0, nil, e
		}
	}
	if req.StateReason != nil {
		it.stateReason = *req.StateReason
	}
	it.updated = t
	s.emit(Event{Kind: "issue_edited", Repo: c.repo.full, Issue: it.number, Title: it.title, Body: it.body, User: s.user})
	return 200, s.issueWire(c, it), nil
}

// setState opens or closes it as issues/update does, with GitHub's state_reason.
func setState(it *issue, state string, t time.Time) *httpErr {
	switch state {
	case "open":
		it.state, it.closed, it.stateReason = "open", nil, "reopened"
	case "closed":
		if it.state != "closed" {
			it.closed = &t
		}
		it.state = "closed"
		it.stateReason = "completed"
	default:
		return validation("Issue", "state", "invalid", "")
	}
	return nil
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

// issueComments runs op on the comments of the issue the path names; any other last
// segment after the number is no route (see routes).
func issueComments(op func(c *reqCtx, it *issue) (int, any, *httpErr)) operation {
	return func(c *reqCtx) (int, any, *httpErr) {
		it := issueAt(c)
		if c.r.PathValue("comments") != "comments" || it == nil {
			return 0, nil, notFound()
		}
		return op(c, it)
	}
}

func (s *Server) listComments(c *reqCtx, it *issue) (int, any, *httpErr) {
	var list []*commentWire
	for _, id := range it.comments {
		list = append(list, s.commentWire(c, s.comments[id]))
	}
	page, e := paginate(c, list)
	return 200, page, e
}

func (s *Server) createComment(c *reqCtx, it *issue) (int, any, *httpErr) {
	var req struct {
		Body *string `json:"body"`
	}
	if e := c.decode(&req); e != nil {
		return 0, nil, e
	}
	if req.Body == nil {
		return 0, nil, validation("IssueComment", "body", "missing_field", "")
	}
	cm := s.addCommentLocked(c.repo, it, s.user, *req.Body)
	c.hdr.Set("Location", s.commentWire(c, cm).URL)
	s.emit(Event{Kind: "comment_created", Repo: c.repo.full, Issue: it.number, Body: cm.body, User: cm.user})
	return 201, s.commentWire(c, cm), nil
}

// commentAt is the comment of the repository the path's {id} names, or nil.
func (s *Server) commentAt(c *reqCtx) *comment {
	cm, ok := s.comments[commentID(c.r.PathValue("id"))]
	if !ok || !strings.EqualFold(cm.repo, c.repo.full) {
		return nil
	}
	return cm
}

func (s *Server) getComment(c *reqCtx) (int, any, *httpErr) {
	cm := s.commentAt(c)
	if cm == nil {
		return 0, nil, notFound()
	}
	return 200, s.commentWire(c, cm), nil
}

func (s *Server) editComment(c *reqCtx) (int, any, *httpErr) {
	cm := s.commentAt(c)
	if cm == nil {
		return 0, nil, notFound()
	}
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
	cm.updated = s.now()
	s.emit(Event{Kind: "comment_edited", Repo: c.repo.full, Issue: cm.issue, Body: cm.body, User: s.user})
	return 200, s.commentWire(c, cm), nil
}
