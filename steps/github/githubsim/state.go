package githubsim

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

type commit struct {
	sha     string
	message string
	parents []string
	files   map[string]string // path -> content (the whole tree, copied on write)
	date    time.Time
}

type tagObj struct {
	sha, tag, message, object, typ string
	date                           time.Time
}

type issue struct {
	number      int
	id          int64
	title, body string
	user        string
	labels      []string
	milestone   int // 0 = none
	state       string
	stateReason string
	pr          bool
	created     time.Time
	updated     time.Time
	closed      *time.Time
	merged      *time.Time // pull requests: when merged (GitHub's pull_request.merged_at)
	comments    []int64
}

type comment struct {
	id      int64
	repo    string
	issue   int
	user    string
	body    string
	created time.Time
	updated time.Time
}

type milestone struct {
	number      int
	id          int64
	title       string
	description string
	state       string
	creator     string // login
	created     time.Time
	updated     time.Time
	closed      *time.Time
}

type release struct {
	id         int64
	tag        string
	target     string
	name, body string
	draft      bool
	prerelease bool
	author     string // login
	created    time.Time
	published  *time.Time
}

type repo struct {
	full          string
	id            int64
	private       bool
	created       time.Time
	defaultBranch string
	commits       map[string]*commit
	refs          map[string]string // "refs/heads/main" -> sha
	tags          map[string]*tagObj
	issues        []*issue // index = number-1 (issues and pull requests share numbers)
	milestones    []*milestone
	releases      []*release
}

// InitialChangelog is the CHANGELOG.md of an auto-created repository.
const InitialChangelog = `# Changelog

All notable changes to this project will be documented in this file.

The format is based on [Keep a Changelog](https://keepachangelog.com/en/1.1.0/),
and this project adheres to [Semantic Versioning](https://semver.org/spec/v2.0.0.html).

## [Unreleased]

### Added

- A new feature

## [1.0.0] - 2025-01-07

### Added

- First release
`

// CreateRepo creates repository fullName ("owner/name") with default branch main, one
// commit holding files (a Keep-a-Changelog CHANGELOG.md when files is nil), and returns
// that commit's SHA. An existing repository is left alone and its main head returned.
func (s *Server) CreateRepo(fullName string, files map[string]string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repoLocked(fullName, true, files)
	return r.refs["refs/heads/"+r.defaultBranch]
}

func (s *Server) repoLocked(full string, create bool, files map[string]string) *repo {
	if r, ok := s.repos[strings.ToLower(full)]; ok {
		return r
	}
	if !create {
		return nil
	}
	r := &repo{full: full, id: s.newID(), created: s.now(), defaultBranch: "main", commits: map[string]*commit{}, refs: map[string]string{}, tags: map[string]*tagObj{}}
	if files == nil {
		files = map[string]string{"CHANGELOG.md": InitialChangelog, "README.md": "# " + full + "\n"}
	}
	c := s.newCommitLocked(r, "", "Initial commit", files)
	r.refs["refs/heads/main"] = c.sha
	s.repos[strings.ToLower(full)] = r
	return r
}

// lookup finds a repository, creating it when auto-create is on.
func (s *Server) lookup(full string) *repo {
	return s.repoLocked(full, s.autoCreate, nil)
}

func (s *Server) newCommitLocked(r *repo, parent, message string, files map[string]string) *commit {
	now := s.clock.Now().UTC().Truncate(time.Second)
	c := &commit{message: message, files: files, date: now}
	if parent != "" {
		c.parents = []string{parent}
	}
	c.sha = gitSHA("commit", []byte(fmt.Sprintf("%s\n%s\n%d\n%s", parent, message, s.newID(), now)))
	r.commits[c.sha] = c
	return c
}

// Commit adds a commit on branch (created from the default branch when missing) that
// sets the given files, and returns its SHA.
func (s *Server) Commit(fullName, branch, message string, files map[string]string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repoLocked(fullName, true, nil)
	if branch == "" {
		branch = r.defaultBranch
	}
	head, ok := r.refs["refs/heads/"+branch]
	if !ok {
		head = r.refs["refs/heads/"+r.defaultBranch]
	}
	tree := map[string]string{}
	for k, v := range r.commits[head].files {
		tree[k] = v
	}
	for k, v := range files {
		tree[k] = v
	}
	c := s.newCommitLocked(r, head, message, tree)
	r.refs["refs/heads/"+branch] = c.sha
	return c.sha
}

// Head returns the SHA at the head of branch ("" for the default branch).
func (s *Server) Head(fullName, branch string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repoLocked(fullName, false, nil)
	if r == nil {
		return ""
	}
	if branch == "" {
		branch = r.defaultBranch
	}
	return r.refs["refs/heads/"+branch]
}

// File returns a file's content at the head of branch ("" for the default branch).
func (s *Server) File(fullName, branch, p string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repoLocked(fullName, false, nil)
	if r == nil {
		return "", false
	}
	if branch == "" {
		branch = r.defaultBranch
	}
	c := r.commits[r.refs["refs/heads/"+branch]]
	if c == nil {
		return "", false
	}
	v, ok := c.files[p]
	return v, ok
}

// TagInfo returns the commit a tag points at and whether it is annotated.
func (s *Server) TagInfo(fullName, tag string) (commitSHA string, annotated, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repoLocked(fullName, false, nil)
	if r == nil {
		return "", false, false
	}
	sha, ok := r.refs["refs/tags/"+tag]
	if !ok {
		return "", false, false
	}
	if t, isTag := r.tags[sha]; isTag {
		return t.object, true, true
	}
	return sha, false, true
}

// Issue is a snapshot of an issue or pull request, and what AddIssue takes.
type Issue struct {
	Number      int
	Title       string
	Body        string
	User        string
	Labels      []string
	Milestone   string // milestone title
	State       string // open (default) or closed
	StateReason string
	PullRequest bool
	// NotMerged: a closed pull request that was closed without merging (a closed one
	// added by AddIssue is merged otherwise, as most pull requests in a milestone are).
	NotMerged bool
	Comments  int
}

// AddIssue adds an issue (or, with PullRequest, a pull request) and returns its number.
// A milestone named but missing is created.
func (s *Server) AddIssue(fullName string, is Issue) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repoLocked(fullName, true, nil)
	now := s.clock.Now().UTC().Truncate(time.Second)
	it := &issue{number: len(r.issues) + 1, id: s.newID(), title: is.Title, body: is.Body, user: is.User, labels: is.Labels, state: is.State, pr: is.PullRequest, created: now, updated: now}
	if it.user == "" {
		it.user = "someone"
	}
	if it.state == "" {
		it.state = "open"
	}
	if is.Milestone != "" {
		it.milestone = s.milestoneLocked(r, is.Milestone, it.user).number
	}
	if it.pr && it.state == "closed" && !is.NotMerged {
		it.merged = &now
	}
	r.issues = append(r.issues, it)
	return it.number
}

// CloseIssue closes an issue as a person would in the browser, with state_reason
// reason ("completed" when "", or "not_planned").
func (s *Server) CloseIssue(fullName string, number int, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repoLocked(fullName, false, nil)
	if r == nil || number < 1 || number > len(r.issues) {
		return fmt.Errorf("githubsim: no issue %s#%d", fullName, number)
	}
	if reason == "" {
		reason = "completed"
	}
	it := r.issues[number-1]
	now := s.clock.Now().UTC().Truncate(time.Second)
	if it.state != "closed" {
		it.closed = &now
	}
	it.state, it.stateReason, it.updated = "closed", reason, now
	return nil
}

// AddMilestone creates a milestone (or finds it by title) and returns its number.
func (s *Server) AddMilestone(fullName, title string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.milestoneLocked(s.repoLocked(fullName, true, nil), title, "someone").number
}

// milestoneLocked finds a milestone by title; when missing, it is created by creator
// (a login), or nil when creator is "".
func (s *Server) milestoneLocked(r *repo, title, creator string) *milestone {
	for _, m := range r.milestones {
		if m.title == title {
			return m
		}
	}
	if creator == "" {
		return nil
	}
	now := s.clock.Now().UTC().Truncate(time.Second)
	m := &milestone{number: len(r.milestones) + 1, id: s.newID(), title: title, state: "open", creator: creator, created: now, updated: now}
	r.milestones = append(r.milestones, m)
	return m
}

// Milestone returns a milestone's state ("open", "closed") by title, or "" when missing.
func (s *Server) Milestone(fullName, title string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repoLocked(fullName, false, nil)
	if r == nil {
		return ""
	}
	if m := s.milestoneLocked(r, title, ""); m != nil {
		return m.state
	}
	return ""
}

func (s *Server) snapshot(r *repo, it *issue) Issue {
	out := Issue{Number: it.number, Title: it.title, Body: it.body, User: it.user, Labels: append([]string(nil), it.labels...), State: it.state, StateReason: it.stateReason, PullRequest: it.pr, NotMerged: it.pr && it.state == "closed" && it.merged == nil, Comments: len(it.comments)}
	if it.milestone > 0 {
		out.Milestone = r.milestones[it.milestone-1].title
	}
	return out
}

// Issues returns every issue and pull request of a repository.
func (s *Server) Issues(fullName string) []Issue {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repoLocked(fullName, false, nil)
	if r == nil {
		return nil
	}
	var out []Issue
	for _, it := range r.issues {
		out = append(out, s.snapshot(r, it))
	}
	return out
}

// GetIssue returns one issue.
func (s *Server) GetIssue(fullName string, number int) (Issue, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repoLocked(fullName, false, nil)
	if r == nil || number < 1 || number > len(r.issues) {
		return Issue{}, false
	}
	return s.snapshot(r, r.issues[number-1]), true
}

// Comment is a snapshot of an issue comment.
type Comment struct {
	ID      int64
	User    string
	Body    string
	Created time.Time
	Updated time.Time
}

// Comments returns the comments of an issue, oldest first.
func (s *Server) Comments(fullName string, number int) []Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repoLocked(fullName, false, nil)
	if r == nil || number < 1 || number > len(r.issues) {
		return nil
	}
	var out []Comment
	for _, id := range r.issues[number-1].comments {
		c := s.comments[id]
		out = append(out, Comment{ID: c.id, User: c.user, Body: c.body, Created: c.created, Updated: c.updated})
	}
	return out
}

// Comment posts a comment as user (acting as a person) and returns its id.
func (s *Server) Comment(fullName string, number int, user, body string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repoLocked(fullName, false, nil)
	if r == nil || number < 1 || number > len(r.issues) {
		return 0, fmt.Errorf("githubsim: no issue %s#%d", fullName, number)
	}
	return s.addCommentLocked(r, r.issues[number-1], user, body).id, nil
}

func (s *Server) addCommentLocked(r *repo, it *issue, user, body string) *comment {
	now := s.clock.Now().UTC().Truncate(time.Second)
	c := &comment{id: s.newID(), repo: r.full, issue: it.number, user: user, body: body, created: now, updated: now}
	s.comments[c.id] = c
	it.comments = append(it.comments, c.id)
	it.updated = now
	return c
}

// EditComment changes a comment's body as a person would (updated_at moves).
func (s *Server) EditComment(id int64, body string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.comments[id]
	if !ok {
		return fmt.Errorf("githubsim: no comment %d", id)
	}
	c.body = body
	c.updated = s.clock.Now().UTC().Truncate(time.Second)
	return nil
}

// EditIssueBody changes an issue's body with edit, as a person editing it in the browser.
func (s *Server) EditIssueBody(fullName string, number int, edit func(string) string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repoLocked(fullName, false, nil)
	if r == nil || number < 1 || number > len(r.issues) {
		return fmt.Errorf("githubsim: no issue %s#%d", fullName, number)
	}
	it := r.issues[number-1]
	it.body = edit(it.body)
	it.updated = s.clock.Now().UTC().Truncate(time.Second)
	return nil
}

// TickCheckbox ticks the first unticked task-list item ("- [ ] ...") whose line contains
// text, as a person clicking the box in the browser.
func (s *Server) TickCheckbox(fullName string, number int, text string) error {
	found := false
	err := s.EditIssueBody(fullName, number, func(b string) string {
		lines := strings.Split(b, "\n")
		for i, l := range lines {
			t := strings.TrimLeft(l, " \t")
			if (strings.HasPrefix(t, "- [ ]") || strings.HasPrefix(t, "* [ ]")) && strings.Contains(l, text) {
				lines[i] = strings.Replace(l, "[ ]", "[x]", 1)
				found = true
				break
			}
		}
		return strings.Join(lines, "\n")
	})
	if err == nil && !found {
		err = fmt.Errorf("githubsim: no unticked item containing %q in %s#%d", text, fullName, number)
	}
	return err
}

// Release is a snapshot of a release.
type Release struct {
	ID     int64
	Tag    string
	Name   string
	Body   string
	Draft  bool
	Target string
}

// Releases returns the releases of a repository, drafts included.
func (s *Server) Releases(fullName string) []Release {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repoLocked(fullName, false, nil)
	if r == nil {
		return nil
	}
	var out []Release
	for _, rl := range r.releases {
		out = append(out, Release{ID: rl.id, Tag: rl.tag, Name: rl.name, Body: rl.body, Draft: rl.draft, Target: rl.target})
	}
	return out
}

// Repos returns the names of the repositories, sorted.
func (s *Server) Repos() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.repos {
		out = append(out, r.full)
	}
	sort.Strings(out)
	return out
}
