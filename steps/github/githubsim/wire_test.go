package githubsim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/cessda/runbook/steps/github/githubsim"
	"github.com/cessda/runbook/steps/github/githubsim/apicheck"
	"github.com/google/go-github/v60/github"
)

// stepClock is a clock tests move by hand.
type stepClock struct{ t time.Time }

func (c *stepClock) Now() time.Time { return c.t }

// TestEveryOperationFollowsGitHubsOpenAPI exercises every operation of the description,
// including those runbook's steps do not call, and finds no violation in any answer.
func TestEveryOperationFollowsGitHubsOpenAPI(t *testing.T) {
	checker, err := apicheck.GitHub()
	if err != nil {
		t.Fatal(err)
	}
	rec := apicheck.NewRecorder(checker)
	sim := githubsim.New(githubsim.WithUser("runbook-bot"))
	t.Cleanup(sim.Close)
	sim.Observe(rec.Observe)
	head := sim.CreateRepo("o/r", nil)
	sim.AddIssue("o/r", githubsim.Issue{Title: "a pull request", PullRequest: true, State: "closed", Milestone: "1.0.0", Labels: []string{"bug"}})
	ctx, gh := context.Background(), client(t, sim, "tok")
	must := func(_ any, _ *github.Response, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	must(gh.Users.Get(ctx, ""))
	must(gh.RateLimit.Get(ctx))
	must(gh.Repositories.Get(ctx, "o", "r"))
	must(gh.Repositories.GetBranch(ctx, "o", "r", "main", 0))
	must(gh.Repositories.GetCommit(ctx, "o", "r", "main", nil))
	file, _, _, err := gh.Repositories.GetContents(ctx, "o", "r", "README.md", nil)
	if err != nil {
		t.Fatal(err)
	}
	must(gh.Repositories.UpdateFile(ctx, "o", "r", "README.md", &github.RepositoryContentFileOptions{Message: github.String("Update"), Content: []byte("# r\n"), SHA: file.SHA}))
	must(gh.Repositories.CreateFile(ctx, "o", "r", "docs/new.md", &github.RepositoryContentFileOptions{Message: github.String("Add"), Content: []byte("new\n")}))

	must(gh.Git.CreateRef(ctx, "o", "r", &github.Reference{Ref: github.String("refs/heads/next"), Object: &github.GitObject{SHA: github.String(head)}}))
	must(gh.Git.GetRef(ctx, "o", "r", "heads/next"))
	must(gh.Git.UpdateRef(ctx, "o", "r", &github.Reference{Ref: github.String("refs/heads/next"), Object: &github.GitObject{SHA: github.String(sim.Head("o/r", ""))}}, false))
	tag, _, err := gh.Git.CreateTag(ctx, "o", "r", &github.Tag{Tag: github.String("v1"), Message: github.String("1"), Object: &github.GitObject{Type: github.String("commit"), SHA: github.String(head)}})
	if err != nil {
		t.Fatal(err)
	}
	must(gh.Git.GetTag(ctx, "o", "r", tag.GetSHA()))
	must(gh.Git.CreateRef(ctx, "o", "r", &github.Reference{Ref: github.String("refs/tags/v1"), Object: &github.GitObject{SHA: tag.SHA}}))
	must(gh.Git.GetRef(ctx, "o", "r", "tags/v1"))

	ms, _, err := gh.Issues.CreateMilestone(ctx, "o", "r", &github.Milestone{Title: github.String("2.0.0")})
	if err != nil {
		t.Fatal(err)
	}
	must(gh.Issues.GetMilestone(ctx, "o", "r", ms.GetNumber()))
	must(gh.Issues.ListMilestones(ctx, "o", "r", &github.MilestoneListOptions{State: "all"}))
	is, _, err := gh.Issues.Create(ctx, "o", "r", &github.IssueRequest{Title: github.String("Release 2.0.0"), Milestone: ms.Number, Labels: &[]string{"release"}})
	if err != nil {
		t.Fatal(err)
	}
	must(gh.Issues.Get(ctx, "o", "r", is.GetNumber()))
	must(gh.Issues.Edit(ctx, "o", "r", is.GetNumber(), &github.IssueRequest{State: github.String("closed")}))
	must(gh.Issues.ListByRepo(ctx, "o", "r", &github.IssueListByRepoOptions{State: "all"}))
	cm, _, err := gh.Issues.CreateComment(ctx, "o", "r", is.GetNumber(), &github.IssueComment{Body: github.String("done")})
	if err != nil {
		t.Fatal(err)
	}
	must(gh.Issues.GetComment(ctx, "o", "r", cm.GetID()))
	must(gh.Issues.EditComment(ctx, "o", "r", cm.GetID(), &github.IssueComment{Body: github.String("done!")}))
	must(gh.Issues.ListComments(ctx, "o", "r", is.GetNumber(), nil))
	must(gh.Issues.EditMilestone(ctx, "o", "r", ms.GetNumber(), &github.Milestone{State: github.String("closed")}))

	rl, _, err := gh.Repositories.CreateRelease(ctx, "o", "r", &github.RepositoryRelease{TagName: github.String("2.0.0"), Draft: github.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	must(gh.Repositories.ListReleases(ctx, "o", "r", nil))
	must(gh.Repositories.GetRelease(ctx, "o", "r", rl.GetID()))
	must(gh.Repositories.EditRelease(ctx, "o", "r", rl.GetID(), &github.RepositoryRelease{Draft: github.Bool(false)}))
	must(gh.Repositories.GetReleaseByTag(ctx, "o", "r", "2.0.0"))

	sim.SetInstallationToken("app")
	must(client(t, sim, "app").Apps.ListRepos(ctx, nil))

	if keys := rec.Keys(); len(keys) > 0 {
		t.Errorf("%d violations of GitHub's OpenAPI description:\n\t%v", len(keys), keys)
	}
	if left := rec.Unexercised(); len(left) > 0 {
		t.Errorf("operations not exercised: %v", left)
	}
}

// get answers GET path as tok, decoded.
func get(t *testing.T, sim *githubsim.Server, path, tok string) map[string]any {
	t.Helper()
	code, body, _ := call(t, sim, "GET", path, tok, "")
	if code != 200 {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// field is the value at a path of keys in a decoded answer.
func field(v any, keys ...string) any {
	for _, k := range keys {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

// TestAnswersFollowTheState: what the answers say agrees with the simulator's state and
// clock: the caller is the author of what it creates, node_ids are stable per object and
// distinct between objects, and closed_at follows closing.
func TestAnswersFollowTheState(t *testing.T) {
	sim, clock, gh := stateSim(t)
	ctx := context.Background()

	me := get(t, sim, "/user", "tok")
	if me["login"] != "runbook-bot" || me["user_view_type"] != "private" || me["node_id"] == "" {
		t.Errorf("GET /user = login %v, user_view_type %v, node_id %v", me["login"], me["user_view_type"], me["node_id"])
	}
	repo := get(t, sim, "/repos/o/r", "tok")
	if got := field(repo, "created_at"); got != "2026-03-01T12:00:00Z" {
		t.Errorf("repository created_at = %v, want the clock's", got)
	}
	if got := field(repo, "owner", "type"); got != "Organization" {
		t.Errorf("owner o of o/r is %v, want Organization (not the user)", got)
	}

	clock.t = clock.t.Add(time.Hour)
	ms, _, err := gh.Issues.CreateMilestone(ctx, "o", "r", &github.Milestone{Title: github.String("1.0.0")})
	if err != nil {
		t.Fatal(err)
	}
	is, _, err := gh.Issues.Create(ctx, "o", "r", &github.IssueRequest{Title: github.String("Release 1.0.0"), Milestone: ms.Number})
	if err != nil {
		t.Fatal(err)
	}
	issuePath := fmt.Sprintf("/repos/o/r/issues/%d", is.GetNumber())
	first := get(t, sim, issuePath, "tok")
	for _, who := range []any{field(first, "user"), field(first, "milestone", "creator")} {
		if field(who, "login") != me["login"] || field(who, "id") != me["id"] || field(who, "node_id") != me["node_id"] {
			t.Errorf("author %v is not GET /user %v", who, me)
		}
	}
	for _, k := range []string{"closed_at", "assignee"} {
		if v, ok := first[k]; !ok || v != nil {
			t.Errorf("an open issue's %s = %v (present %v), want null", k, v, ok)
		}
	}

	clock.t = clock.t.Add(time.Hour)
	cm, _, err := gh.Issues.CreateComment(ctx, "o", "r", is.GetNumber(), &github.IssueComment{Body: github.String("hi")})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := gh.Issues.Edit(ctx, "o", "r", is.GetNumber(), &github.IssueRequest{State: github.String("closed")}); err != nil {
		t.Fatal(err)
	}
	closed := get(t, sim, issuePath, "tok")
	if closed["closed_at"] != "2026-03-01T14:00:00Z" || closed["created_at"] != "2026-03-01T13:00:00Z" {
		t.Errorf("closed issue: created_at %v, closed_at %v; want 13:00 and 14:00", closed["created_at"], closed["closed_at"])
	}
	comment := get(t, sim, fmt.Sprintf("/repos/o/r/issues/comments/%d", cm.GetID()), "tok")
	if first["node_id"] != closed["node_id"] {
		t.Errorf("the issue's node_id changed from %v to %v", first["node_id"], closed["node_id"])
	}
	distinct := map[any]bool{}
	for _, node := range []any{first["node_id"], comment["node_id"], field(first, "milestone", "node_id"), repo["node_id"], me["node_id"]} {
		if s, _ := node.(string); s == "" || distinct[node] {
			t.Errorf("node_id %v is missing or names two objects", node)
		}
		distinct[node] = true
	}

}

// stateSim is a simulator of repository o/r on a clock at 2026-03-01 12:00 UTC, for user
// runbook-bot, and a client.
func stateSim(t *testing.T) (*githubsim.Server, *stepClock, *github.Client) {
	clock := &stepClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	sim := githubsim.New(githubsim.WithUser("runbook-bot"), githubsim.WithClock(clock))
	t.Cleanup(sim.Close)
	sim.CreateRepo("o/r", nil)
	return sim, clock, client(t, sim, "tok")
}

// TestReleaseAnswersFollowTheState: a release's author is the caller, and published_at
// is null until it is published, then the clock's.
func TestReleaseAnswersFollowTheState(t *testing.T) {
	sim, clock, gh := stateSim(t)
	ctx := context.Background()
	rl, _, err := gh.Repositories.CreateRelease(ctx, "o", "r", &github.RepositoryRelease{TagName: github.String("1.0.0"), Draft: github.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	relPath := fmt.Sprintf("/repos/o/r/releases/%d", rl.GetID())
	if draft := get(t, sim, relPath, "tok"); draft["published_at"] != nil || field(draft, "author", "login") != "runbook-bot" {
		t.Errorf("draft release: published_at %v, author %v; want null and the caller", draft["published_at"], field(draft, "author", "login"))
	}
	clock.t = clock.t.Add(time.Hour)
	if _, _, err := gh.Repositories.EditRelease(ctx, "o", "r", rl.GetID(), &github.RepositoryRelease{Draft: github.Bool(false)}); err != nil {
		t.Fatal(err)
	}
	if pub := get(t, sim, relPath, "tok"); pub["published_at"] != "2026-03-01T13:00:00Z" {
		t.Errorf("published release: published_at %v, want the clock's", pub["published_at"])
	}
}
