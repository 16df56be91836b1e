package githubsim

import (
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"net/url"
	"sort"
	"strings"
	"time"
)

// GitHub's wire objects, as its OpenAPI description (apicheck/testdata) shapes them: every
// field the description requires is present, null where GitHub sends null, so the
// structs have no omitempty but for what GitHub itself leaves out. API URLs sit under
// the server's URL (c.base), web URLs under its web base (htmlBase), as on GitHub.

// nodeID is a GitHub global node ID in its legacy form, base64 of "0<len>:<Type><id>"
// (a User 1 is "MDQ6VXNlcjE="): stable per object.
func nodeID(typ, id string) string {
	return base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "0%d:%s%s", len(typ), typ, id))
}

// userID is the stable id of a login; the simulator knows people by login only.
func userID(login string) int64 {
	h := fnv.New32a()
	h.Write([]byte(strings.ToLower(login)))
	return int64(h.Sum32()) + 1
}

// simpleUser is GitHub's simple-user.
type simpleUser struct {
	Login             string  `json:"login"`
	ID                int64   `json:"id"`
	NodeID            string  `json:"node_id"`
	AvatarURL         string  `json:"avatar_url"`
	GravatarID        *string `json:"gravatar_id"`
	URL               string  `json:"url"`
	HTMLURL           string  `json:"html_url"`
	FollowersURL      string  `json:"followers_url"`
	FollowingURL      string  `json:"following_url"`
	GistsURL          string  `json:"gists_url"`
	StarredURL        string  `json:"starred_url"`
	SubscriptionsURL  string  `json:"subscriptions_url"`
	OrganizationsURL  string  `json:"organizations_url"`
	ReposURL          string  `json:"repos_url"`
	EventsURL         string  `json:"events_url"`
	ReceivedEventsURL string  `json:"received_events_url"`
	Type              string  `json:"type"`
	SiteAdmin         bool    `json:"site_admin"`
	UserViewType      string  `json:"user_view_type"`
}

// userWire is login as a simple-user of type typ ("User" or "Organization").
func (s *Server) userWire(c *reqCtx, login, typ string) *simpleUser {
	id := userID(login)
	api := c.base + "users/" + login
	gravatar := ""
	return &simpleUser{Login: login, ID: id, NodeID: nodeID(typ, fmt.Sprint(id)),
		AvatarURL: s.htmlBase() + login + ".png", GravatarID: &gravatar, URL: api, HTMLURL: s.htmlBase() + login,
		FollowersURL: api + "/followers", FollowingURL: api + "/following{/other_user}", GistsURL: api + "/gists{/gist_id}",
		StarredURL: api + "/starred{/owner}{/repo}", SubscriptionsURL: api + "/subscriptions", OrganizationsURL: api + "/orgs",
		ReposURL: api + "/repos", EventsURL: api + "/events{/privacy}", ReceivedEventsURL: api + "/received_events",
		Type: typ, SiteAdmin: false, UserViewType: "public"}
}

// person is a user who acts on GitHub (an author, a creator, a commenter).
func (s *Server) person(c *reqCtx, login string) *simpleUser { return s.userWire(c, login, "User") }

// privateUser is GitHub's private-user: GET /user for the user themself.
type privateUser struct {
	simpleUser
	Name                    *string        `json:"name"`
	Company                 *string        `json:"company"`
	Blog                    *string        `json:"blog"`
	Location                *string        `json:"location"`
	Email                   *string        `json:"email"`
	Hireable                *bool          `json:"hireable"`
	Bio                     *string        `json:"bio"`
	TwitterUsername         *string        `json:"twitter_username"`
	PublicRepos             int            `json:"public_repos"`
	PublicGists             int            `json:"public_gists"`
	Followers               int            `json:"followers"`
	Following               int            `json:"following"`
	CreatedAt               time.Time      `json:"created_at"`
	UpdatedAt               time.Time      `json:"updated_at"`
	PrivateGists            int            `json:"private_gists"`
	TotalPrivateRepos       int            `json:"total_private_repos"`
	OwnedPrivateRepos       int            `json:"owned_private_repos"`
	DiskUsage               int            `json:"disk_usage"`
	Collaborators           int            `json:"collaborators"`
	TwoFactorAuthentication bool           `json:"two_factor_authentication"`
	Plan                    map[string]any `json:"plan"`
}

// privateUserWire is the authenticated user as GET /user answers it: a bot account with
// no profile, owning the repositories named after it.
func (s *Server) privateUserWire(c *reqCtx) *privateUser {
	u := privateUser{simpleUser: *s.person(c, s.user), Followers: 0, Following: 0, TwoFactorAuthentication: true,
		Plan: map[string]any{"name": "free", "space": 976562499, "collaborators": 0, "private_repos": 10000}}
	u.UserViewType = "private"
	name := s.user
	u.Name = &name
	var first time.Time
	for _, r := range s.repos {
		owner, _, _ := strings.Cut(r.full, "/")
		if !strings.EqualFold(owner, s.user) {
			continue
		}
		if r.private {
			u.OwnedPrivateRepos++
		} else {
			u.PublicRepos++
		}
		if first.IsZero() || r.created.Before(first) {
			first = r.created
		}
	}
	u.TotalPrivateRepos = u.OwnedPrivateRepos
	// The account is older than anything the simulator holds.
	if first.IsZero() {
		first = s.now()
	}
	u.CreatedAt = first.Add(-24 * time.Hour)
	u.UpdatedAt = u.CreatedAt
	return &u
}

// repository is GitHub's repository and full-repository (a superset of both).
type repository struct {
	ID               int64           `json:"id"`
	NodeID           string          `json:"node_id"`
	Name             string          `json:"name"`
	FullName         string          `json:"full_name"`
	Owner            *simpleUser     `json:"owner"`
	Private          bool            `json:"private"`
	HTMLURL          string          `json:"html_url"`
	Description      *string         `json:"description"`
	Fork             bool            `json:"fork"`
	URL              string          `json:"url"`
	ArchiveURL       string          `json:"archive_url"`
	AssigneesURL     string          `json:"assignees_url"`
	BlobsURL         string          `json:"blobs_url"`
	BranchesURL      string          `json:"branches_url"`
	CollaboratorsURL string          `json:"collaborators_url"`
	CommentsURL      string          `json:"comments_url"`
	CommitsURL       string          `json:"commits_url"`
	CompareURL       string          `json:"compare_url"`
	ContentsURL      string          `json:"contents_url"`
	ContributorsURL  string          `json:"contributors_url"`
	DeploymentsURL   string          `json:"deployments_url"`
	DownloadsURL     string          `json:"downloads_url"`
	EventsURL        string          `json:"events_url"`
	ForksURL         string          `json:"forks_url"`
	GitCommitsURL    string          `json:"git_commits_url"`
	GitRefsURL       string          `json:"git_refs_url"`
	GitTagsURL       string          `json:"git_tags_url"`
	GitURL           string          `json:"git_url"`
	IssueCommentURL  string          `json:"issue_comment_url"`
	IssueEventsURL   string          `json:"issue_events_url"`
	IssuesURL        string          `json:"issues_url"`
	KeysURL          string          `json:"keys_url"`
	LabelsURL        string          `json:"labels_url"`
	LanguagesURL     string          `json:"languages_url"`
	MergesURL        string          `json:"merges_url"`
	MilestonesURL    string          `json:"milestones_url"`
	NotificationsURL string          `json:"notifications_url"`
	PullsURL         string          `json:"pulls_url"`
	ReleasesURL      string          `json:"releases_url"`
	SSHURL           string          `json:"ssh_url"`
	StargazersURL    string          `json:"stargazers_url"`
	StatusesURL      string          `json:"statuses_url"`
	SubscribersURL   string          `json:"subscribers_url"`
	SubscriptionURL  string          `json:"subscription_url"`
	TagsURL          string          `json:"tags_url"`
	TeamsURL         string          `json:"teams_url"`
	TreesURL         string          `json:"trees_url"`
	CloneURL         string          `json:"clone_url"`
	MirrorURL        *string         `json:"mirror_url"`
	HooksURL         string          `json:"hooks_url"`
	SvnURL           string          `json:"svn_url"`
	Homepage         *string         `json:"homepage"`
	Language         *string         `json:"language"`
	ForksCount       int             `json:"forks_count"`
	Forks            int             `json:"forks"`
	StargazersCount  int             `json:"stargazers_count"`
	WatchersCount    int             `json:"watchers_count"`
	Watchers         int             `json:"watchers"`
	SubscribersCount int             `json:"subscribers_count"`
	NetworkCount     int             `json:"network_count"`
	Size             int             `json:"size"`
	DefaultBranch    string          `json:"default_branch"`
	OpenIssuesCount  int             `json:"open_issues_count"`
	OpenIssues       int             `json:"open_issues"`
	IsTemplate       bool            `json:"is_template"`
	Topics           []string        `json:"topics"`
	HasIssues        bool            `json:"has_issues"`
	HasProjects      bool            `json:"has_projects"`
	HasWiki          bool            `json:"has_wiki"`
	HasPages         bool            `json:"has_pages"`
	HasDownloads     bool            `json:"has_downloads"`
	HasDiscussions   bool            `json:"has_discussions"`
	Archived         bool            `json:"archived"`
	Disabled         bool            `json:"disabled"`
	Visibility       string          `json:"visibility"`
	License          *struct{}       `json:"license"`
	PushedAt         time.Time       `json:"pushed_at"`
	CreatedAt        time.Time       `json:"created_at"`
	UpdatedAt        time.Time       `json:"updated_at"`
	Permissions      map[string]bool `json:"permissions"`
}

// repositoryWire is c.repo as the caller sees it (permissions by c.level).
func (s *Server) repositoryWire(c *reqCtx) *repository {
	r := c.repo
	owner, name, _ := strings.Cut(r.full, "/")
	// A repository owned by someone else than the user is most likely an organisation's.
	ownerType := "Organization"
	if strings.EqualFold(owner, s.user) {
		ownerType = "User"
	}
	api := c.base + "repos/" + r.full
	web := s.htmlBase() + r.full
	host := strings.TrimPrefix(strings.TrimPrefix(strings.TrimSuffix(s.htmlBase(), "/"), "http://"), "https://")
	visibility := "public"
	if r.private {
		visibility = "private"
	}
	open := 0
	for _, it := range r.issues {
		if it.state == "open" {
			open++
		}
	}
	pushed := r.created
	for _, cm := range r.commits {
		if cm.date.After(pushed) {
			pushed = cm.date
		}
	}
	size := 0
	if head := r.commits[r.refs["refs/heads/"+r.defaultBranch]]; head != nil {
		for _, content := range head.files {
			size += len(content)
		}
	}
	return &repository{ID: r.id, NodeID: nodeID("Repository", fmt.Sprint(r.id)), Name: name, FullName: r.full,
		Owner: s.userWire(c, owner, ownerType), Private: r.private, HTMLURL: web, URL: api,
		ArchiveURL: api + "/{archive_format}{/ref}", AssigneesURL: api + "/assignees{/user}", BlobsURL: api + "/git/blobs{/sha}",
		BranchesURL: api + "/branches{/branch}", CollaboratorsURL: api + "/collaborators{/collaborator}", CommentsURL: api + "/comments{/number}",
		CommitsURL: api + "/commits{/sha}", CompareURL: api + "/compare/{base}...{head}", ContentsURL: api + "/contents/{+path}",
		ContributorsURL: api + "/contributors", DeploymentsURL: api + "/deployments", DownloadsURL: api + "/downloads", EventsURL: api + "/events",
		ForksURL: api + "/forks", GitCommitsURL: api + "/git/commits{/sha}", GitRefsURL: api + "/git/refs{/sha}", GitTagsURL: api + "/git/tags{/sha}",
		GitURL: "git://" + host + "/" + r.full + ".git", IssueCommentURL: api + "/issues/comments{/number}", IssueEventsURL: api + "/issues/events{/number}",
		IssuesURL: api + "/issues{/number}", KeysURL: api + "/keys{/key_id}", LabelsURL: api + "/labels{/name}", LanguagesURL: api + "/languages",
		MergesURL: api + "/merges", MilestonesURL: api + "/milestones{/number}", NotificationsURL: api + "/notifications{?since,all,participating}",
		PullsURL: api + "/pulls{/number}", ReleasesURL: api + "/releases{/id}", SSHURL: "git@" + host + ":" + r.full + ".git",
		StargazersURL: api + "/stargazers", StatusesURL: api + "/statuses/{sha}", SubscribersURL: api + "/subscribers",
		SubscriptionURL: api + "/subscription", TagsURL: api + "/tags", TeamsURL: api + "/teams", TreesURL: api + "/git/trees{/sha}",
		CloneURL: web + ".git", HooksURL: api + "/hooks", SvnURL: web,
		Size: (size + 1023) / 1024, DefaultBranch: r.defaultBranch, OpenIssuesCount: open, OpenIssues: open, Topics: []string{},
		HasIssues: true, HasProjects: true, HasWiki: true, HasDownloads: true, Visibility: visibility,
		PushedAt: pushed, CreatedAt: r.created, UpdatedAt: pushed, Permissions: permissionsJSON(c.level)}
}

// repositoryList is the answer of GET /installation/repositories.
type repositoryList struct {
	TotalCount          int           `json:"total_count"`
	Repositories        []*repository `json:"repositories"`
	RepositorySelection string        `json:"repository_selection"`
}

// label is one of an issue's labels.
type label struct {
	ID          int64   `json:"id"`
	NodeID      string  `json:"node_id"`
	URL         string  `json:"url"`
	Name        string  `json:"name"`
	Description *string `json:"description"`
	Color       string  `json:"color"`
	Default     bool    `json:"default"`
}

func labelWire(c *reqCtx, name string) label {
	id := userID(c.repo.full + "\x00" + name) // stable per repository and name
	return label{ID: id, NodeID: nodeID("Label", fmt.Sprint(id)), URL: c.base + "repos/" + c.repo.full + "/labels/" + url.PathEscape(name),
		Name: name, Color: "ededed"}
}

// pullRequestLinks is the pull_request of an issue that is a pull request.
type pullRequestLinks struct {
	URL      string     `json:"url"`
	HTMLURL  string     `json:"html_url"`
	DiffURL  string     `json:"diff_url"`
	PatchURL string     `json:"patch_url"`
	MergedAt *time.Time `json:"merged_at"`
}

// issueWire is GitHub's issue.
type issueWire struct {
	ID               int64             `json:"id"`
	NodeID           string            `json:"node_id"`
	URL              string            `json:"url"`
	RepositoryURL    string            `json:"repository_url"`
	LabelsURL        string            `json:"labels_url"`
	CommentsURL      string            `json:"comments_url"`
	EventsURL        string            `json:"events_url"`
	HTMLURL          string            `json:"html_url"`
	Number           int               `json:"number"`
	State            string            `json:"state"`
	StateReason      *string           `json:"state_reason"`
	Title            string            `json:"title"`
	Body             string            `json:"body"`
	User             *simpleUser       `json:"user"`
	Labels           []label           `json:"labels"`
	Assignee         *simpleUser       `json:"assignee"`
	Assignees        []*simpleUser     `json:"assignees"`
	Milestone        *milestoneWire    `json:"milestone"`
	Locked           bool              `json:"locked"`
	ActiveLockReason *string           `json:"active_lock_reason"`
	Comments         int               `json:"comments"`
	PullRequest      *pullRequestLinks `json:"pull_request,omitempty"` // only on pull requests
	ClosedAt         *time.Time        `json:"closed_at"`
	CreatedAt        time.Time         `json:"created_at"`
	UpdatedAt        time.Time         `json:"updated_at"`
}

func (s *Server) issueWire(c *reqCtx, it *issue) *issueWire {
	kind := "issues"
	if it.pr {
		kind = "pull"
	}
	api := fmt.Sprintf("%srepos/%s/issues/%d", c.base, c.repo.full, it.number)
	out := &issueWire{ID: it.id, NodeID: nodeID("Issue", fmt.Sprint(it.id)), URL: api, RepositoryURL: c.base + "repos/" + c.repo.full,
		LabelsURL: api + "/labels{/name}", CommentsURL: api + "/comments", EventsURL: api + "/events",
		HTMLURL: fmt.Sprintf("%s%s/%s/%d", s.htmlBase(), c.repo.full, kind, it.number),
		Number:  it.number, State: it.state, Title: it.title, Body: it.body, User: s.person(c, it.user),
		Labels: []label{}, Assignees: []*simpleUser{}, Comments: len(it.comments), ClosedAt: it.closed,
		CreatedAt: it.created, UpdatedAt: it.updated}
	if it.stateReason != "" {
		out.StateReason = &it.stateReason
	}
	for _, l := range it.labels {
		out.Labels = append(out.Labels, labelWire(c, l))
	}
	if it.milestone > 0 {
		out.Milestone = s.milestoneWire(c, c.repo.milestones[it.milestone-1])
	}
	if it.pr {
		out.PullRequest = &pullRequestLinks{URL: fmt.Sprintf("%srepos/%s/pulls/%d", c.base, c.repo.full, it.number),
			HTMLURL: out.HTMLURL, DiffURL: out.HTMLURL + ".diff", PatchURL: out.HTMLURL + ".patch", MergedAt: it.merged}
	}
	return out
}

// commentWire is GitHub's issue-comment.
type commentWire struct {
	ID                int64       `json:"id"`
	NodeID            string      `json:"node_id"`
	URL               string      `json:"url"`
	HTMLURL           string      `json:"html_url"`
	IssueURL          string      `json:"issue_url"`
	Body              string      `json:"body"`
	User              *simpleUser `json:"user"`
	AuthorAssociation string      `json:"author_association"`
	CreatedAt         time.Time   `json:"created_at"`
	UpdatedAt         time.Time   `json:"updated_at"`
}

func (s *Server) commentWire(c *reqCtx, cm *comment) *commentWire {
	return &commentWire{ID: cm.id, NodeID: nodeID("IssueComment", fmt.Sprint(cm.id)),
		URL:      fmt.Sprintf("%srepos/%s/issues/comments/%d", c.base, cm.repo, cm.id),
		HTMLURL:  fmt.Sprintf("%s%s/issues/%d#issuecomment-%d", s.htmlBase(), cm.repo, cm.issue, cm.id),
		IssueURL: fmt.Sprintf("%srepos/%s/issues/%d", c.base, cm.repo, cm.issue),
		Body:     cm.body, User: s.person(c, cm.user), AuthorAssociation: association(cm.repo, cm.user),
		CreatedAt: cm.created, UpdatedAt: cm.updated}
}

// association is GitHub's author_association of login in repository full, as far as the
// simulator knows: the owner, or someone without a known role.
func association(full, login string) string {
	if owner, _, _ := strings.Cut(full, "/"); strings.EqualFold(owner, login) {
		return "OWNER"
	}
	return "NONE"
}

// milestoneWire is GitHub's milestone.
type milestoneWire struct {
	ID           int64       `json:"id"`
	NodeID       string      `json:"node_id"`
	URL          string      `json:"url"`
	HTMLURL      string      `json:"html_url"`
	LabelsURL    string      `json:"labels_url"`
	Number       int         `json:"number"`
	State        string      `json:"state"`
	Title        string      `json:"title"`
	Description  string      `json:"description"`
	Creator      *simpleUser `json:"creator"`
	OpenIssues   int         `json:"open_issues"`
	ClosedIssues int         `json:"closed_issues"`
	CreatedAt    time.Time   `json:"created_at"`
	UpdatedAt    time.Time   `json:"updated_at"`
	ClosedAt     *time.Time  `json:"closed_at"`
	DueOn        *time.Time  `json:"due_on"`
}

func (s *Server) milestoneWire(c *reqCtx, m *milestone) *milestoneWire {
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
	api := fmt.Sprintf("%srepos/%s/milestones/%d", c.base, c.repo.full, m.number)
	return &milestoneWire{ID: m.id, NodeID: nodeID("Milestone", fmt.Sprint(m.id)), URL: api,
		HTMLURL:   fmt.Sprintf("%s%s/milestone/%d", s.htmlBase(), c.repo.full, m.number),
		LabelsURL: api + "/labels", Number: m.number, State: m.state, Title: m.title, Description: m.description,
		Creator: s.person(c, m.creator), OpenIssues: open, ClosedIssues: closed,
		CreatedAt: m.created, UpdatedAt: m.updated, ClosedAt: m.closed}
}

// releaseWire is GitHub's release; the simulator's releases have no assets.
type releaseWire struct {
	ID              int64       `json:"id"`
	NodeID          string      `json:"node_id"`
	URL             string      `json:"url"`
	HTMLURL         string      `json:"html_url"`
	AssetsURL       string      `json:"assets_url"`
	UploadURL       string      `json:"upload_url"`
	TarballURL      *string     `json:"tarball_url"`
	ZipballURL      *string     `json:"zipball_url"`
	TagName         string      `json:"tag_name"`
	TargetCommitish string      `json:"target_commitish"`
	Name            string      `json:"name"`
	Body            string      `json:"body"`
	Draft           bool        `json:"draft"`
	Prerelease      bool        `json:"prerelease"`
	Author          *simpleUser `json:"author"`
	Assets          []struct{}  `json:"assets"`
	CreatedAt       time.Time   `json:"created_at"`
	PublishedAt     *time.Time  `json:"published_at"`
}

func (s *Server) releaseWire(c *reqCtx, rl *release) *releaseWire {
	api := fmt.Sprintf("%srepos/%s/releases/%d", c.base, c.repo.full, rl.id)
	out := &releaseWire{ID: rl.id, NodeID: nodeID("Release", fmt.Sprint(rl.id)), URL: api,
		HTMLURL:   fmt.Sprintf("%s%s/releases/tag/%s", s.htmlBase(), c.repo.full, rl.tag),
		AssetsURL: api + "/assets", UploadURL: api + "/assets{?name,label}",
		TagName: rl.tag, TargetCommitish: rl.target, Name: rl.name, Body: rl.body, Draft: rl.draft, Prerelease: rl.prerelease,
		Author: s.person(c, rl.author), Assets: []struct{}{}, CreatedAt: rl.created, PublishedAt: rl.published}
	if rl.draft {
		out.HTMLURL = fmt.Sprintf("%s%s/releases/untagged-%d", s.htmlBase(), c.repo.full, rl.id)
	} else {
		// A draft has no tag yet, so nothing to archive.
		tarball := c.base + "repos/" + c.repo.full + "/tarball/" + rl.tag
		zipball := c.base + "repos/" + c.repo.full + "/zipball/" + rl.tag
		out.TarballURL, out.ZipballURL = &tarball, &zipball
	}
	return out
}

// gitObject is what a git ref or tag points at.
type gitObject struct {
	Type string `json:"type"`
	SHA  string `json:"sha"`
	URL  string `json:"url"`
}

func gitObjectWire(c *reqCtx, typ, sha string) gitObject {
	return gitObject{Type: typ, SHA: sha, URL: c.base + "repos/" + c.repo.full + "/git/" + typ + "s/" + sha}
}

// refWire is GitHub's git-ref.
type refWire struct {
	Ref    string    `json:"ref"`
	NodeID string    `json:"node_id"`
	URL    string    `json:"url"`
	Object gitObject `json:"object"`
}

func (s *Server) refWire(c *reqCtx, name, sha string) *refWire {
	typ := "commit"
	if _, ok := c.repo.tags[sha]; ok {
		typ = "tag"
	}
	return &refWire{Ref: name, NodeID: nodeID("Ref", name), URL: c.base + "repos/" + c.repo.full + "/git/" + name,
		Object: gitObjectWire(c, typ, sha)}
}

// gitUser is a commit's or tag's author, committer or tagger.
type gitUser struct {
	Name  string    `json:"name"`
	Email string    `json:"email"`
	Date  time.Time `json:"date"`
}

// simGitUser is who the simulator's commits and tags are by: no GitHub user.
func simGitUser(at time.Time) *gitUser {
	return &gitUser{Name: "Sim", Email: "sim@example.org", Date: at}
}

// verification is an unsigned commit's or tag's.
type verification struct {
	Verified   bool    `json:"verified"`
	Reason     string  `json:"reason"`
	Signature  *string `json:"signature"`
	Payload    *string `json:"payload"`
	VerifiedAt *string `json:"verified_at"`
}

var unsigned = verification{Reason: "unsigned"}

// tagWire is GitHub's git-tag.
type tagWire struct {
	NodeID       string       `json:"node_id"`
	Tag          string       `json:"tag"`
	SHA          string       `json:"sha"`
	URL          string       `json:"url"`
	Message      string       `json:"message"`
	Tagger       *gitUser     `json:"tagger"`
	Object       gitObject    `json:"object"`
	Verification verification `json:"verification"`
}

func (s *Server) tagWire(c *reqCtx, t *tagObj) *tagWire {
	return &tagWire{NodeID: nodeID("Tag", t.sha), Tag: t.tag, SHA: t.sha, URL: c.base + "repos/" + c.repo.full + "/git/tags/" + t.sha,
		Message: t.message, Tagger: simGitUser(t.date), Object: gitObjectWire(c, t.typ, t.object), Verification: unsigned}
}

// treeSHA is the SHA of a commit's tree: its files in path order.
func treeSHA(files map[string]string) string {
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var b strings.Builder
	for _, p := range paths {
		fmt.Fprintf(&b, "%s %s\n", gitSHA("blob", []byte(files[p])), p)
	}
	return gitSHA("tree", []byte(b.String()))
}

type shaURL struct {
	SHA string `json:"sha"`
	URL string `json:"url"`
}

type parentWire struct {
	SHA     string `json:"sha"`
	URL     string `json:"url"`
	HTMLURL string `json:"html_url"`
}

// gitCommit is the git commit inside a commit, and the commit of a file-commit.
type gitCommit struct {
	SHA          string       `json:"sha,omitempty"`     // only in a file-commit
	NodeID       string       `json:"node_id,omitempty"` // only in a file-commit
	URL          string       `json:"url"`
	HTMLURL      string       `json:"html_url,omitempty"` // only in a file-commit
	Author       *gitUser     `json:"author"`
	Committer    *gitUser     `json:"committer"`
	Message      string       `json:"message"`
	Tree         shaURL       `json:"tree"`
	Parents      []parentWire `json:"parents,omitempty"` // only in a file-commit
	CommentCount *int         `json:"comment_count,omitempty"`
	Verification verification `json:"verification"`
}

// commitWire is GitHub's commit (GET commits/{ref}).
type commitWire struct {
	SHA         string       `json:"sha"`
	NodeID      string       `json:"node_id"`
	URL         string       `json:"url"`
	HTMLURL     string       `json:"html_url"`
	CommentsURL string       `json:"comments_url"`
	Commit      gitCommit    `json:"commit"`
	Author      *simpleUser  `json:"author"`    // null: Sim is no GitHub user
	Committer   *simpleUser  `json:"committer"` // null likewise
	Parents     []parentWire `json:"parents"`
}

func (s *Server) parentsWire(c *reqCtx, cm *commit) []parentWire {
	out := []parentWire{}
	for _, p := range cm.parents {
		out = append(out, parentWire{SHA: p, URL: c.base + "repos/" + c.repo.full + "/commits/" + p, HTMLURL: s.htmlBase() + c.repo.full + "/commit/" + p})
	}
	return out
}

func (s *Server) gitCommitWire(c *reqCtx, cm *commit) gitCommit {
	tree := treeSHA(cm.files)
	zero := 0
	return gitCommit{URL: c.base + "repos/" + c.repo.full + "/git/commits/" + cm.sha, Author: simGitUser(cm.date), Committer: simGitUser(cm.date),
		Message: cm.message, Tree: shaURL{SHA: tree, URL: c.base + "repos/" + c.repo.full + "/git/trees/" + tree},
		CommentCount: &zero, Verification: unsigned}
}

func (s *Server) commitWire(c *reqCtx, cm *commit) *commitWire {
	api := c.base + "repos/" + c.repo.full + "/commits/" + cm.sha
	return &commitWire{SHA: cm.sha, NodeID: nodeID("Commit", fmt.Sprintf("%d:%s", c.repo.id, cm.sha)), URL: api,
		HTMLURL: s.htmlBase() + c.repo.full + "/commit/" + cm.sha, CommentsURL: api + "/comments",
		Commit: s.gitCommitWire(c, cm), Parents: s.parentsWire(c, cm)}
}

// fileCommitCommit is the commit of a file-commit (PUT contents): the git commit with
// its sha, node_id, html_url and parents, and no comment_count.
func (s *Server) fileCommitCommit(c *reqCtx, cm *commit) gitCommit {
	g := s.gitCommitWire(c, cm)
	g.SHA, g.NodeID, g.HTMLURL = cm.sha, nodeID("Commit", fmt.Sprintf("%d:%s", c.repo.id, cm.sha)), s.htmlBase()+c.repo.full+"/commit/"+cm.sha
	g.Parents, g.CommentCount = s.parentsWire(c, cm), nil
	return g
}

// contentLinks are a content file's _links.
type contentLinks struct {
	Self string `json:"self"`
	Git  string `json:"git"`
	HTML string `json:"html"`
}

// contentWire is GitHub's content-file; Content and Encoding only when the answer
// carries the file (GET contents, not the file-commit of PUT).
type contentWire struct {
	Type        string       `json:"type"`
	Name        string       `json:"name"`
	Path        string       `json:"path"`
	SHA         string       `json:"sha"`
	Size        int          `json:"size"`
	URL         string       `json:"url"`
	HTMLURL     string       `json:"html_url"`
	GitURL      string       `json:"git_url"`
	DownloadURL string       `json:"download_url"`
	Content     *string      `json:"content,omitempty"`
	Encoding    *string      `json:"encoding,omitempty"`
	Links       contentLinks `json:"_links"`
}

// contentWire is file p with content at ref; withContent carries the content, in
// base64 wrapped at 60 columns as GitHub does.
func (s *Server) contentWire(c *reqCtx, ref, p, content string, withContent bool) *contentWire {
	name := p
	if i := strings.LastIndex(p, "/"); i >= 0 {
		name = p[i+1:]
	}
	sha := gitSHA("blob", []byte(content))
	out := &contentWire{Type: "file", Name: name, Path: p, SHA: sha, Size: len(content),
		URL:         c.base + "repos/" + c.repo.full + "/contents/" + p + "?ref=" + url.QueryEscape(ref),
		HTMLURL:     s.htmlBase() + c.repo.full + "/blob/" + ref + "/" + p,
		GitURL:      c.base + "repos/" + c.repo.full + "/git/blobs/" + sha,
		DownloadURL: s.htmlBase() + c.repo.full + "/raw/" + ref + "/" + p}
	out.Links = contentLinks{Self: out.URL, Git: out.GitURL, HTML: out.HTMLURL}
	if withContent {
		enc := base64.StdEncoding.EncodeToString([]byte(content))
		var b strings.Builder
		for len(enc) > 60 {
			b.WriteString(enc[:60] + "\n")
			enc = enc[60:]
		}
		b.WriteString(enc)
		text, encoding := b.String(), "base64"
		out.Content, out.Encoding = &text, &encoding
	}
	return out
}

// fileCommitWire is GitHub's file-commit: the answer of PUT contents.
type fileCommitWire struct {
	Content *contentWire `json:"content"`
	Commit  gitCommit    `json:"commit"`
}

// branchWire is GitHub's branch-with-protection, for a branch without protection.
type branchWire struct {
	Name   string      `json:"name"`
	Commit *commitWire `json:"commit"`
	Links  struct {
		HTML string `json:"html"`
		Self string `json:"self"`
	} `json:"_links"`
	Protected  bool `json:"protected"`
	Protection struct {
		Enabled              bool `json:"enabled"`
		RequiredStatusChecks struct {
			EnforcementLevel string   `json:"enforcement_level"`
			Contexts         []string `json:"contexts"`
			Checks           []string `json:"checks"`
		} `json:"required_status_checks"`
	} `json:"protection"`
	ProtectionURL string `json:"protection_url"`
}

func (s *Server) branchWire(c *reqCtx, name string, head *commit) *branchWire {
	api := c.base + "repos/" + c.repo.full + "/branches/" + name
	b := &branchWire{Name: name, Commit: s.commitWire(c, head), ProtectionURL: api + "/protection"}
	b.Links.HTML, b.Links.Self = s.htmlBase()+c.repo.full+"/tree/"+name, api
	b.Protection.RequiredStatusChecks.EnforcementLevel = "off"
	b.Protection.RequiredStatusChecks.Contexts, b.Protection.RequiredStatusChecks.Checks = []string{}, []string{}
	return b
}
