package githubsim_test

import (
	"context"
	"errors"
	"net/url"
	"testing"

	"github.com/cessda/runbook/steps/github/githubsim"
	"github.com/google/go-github/v60/github"
)

func client(t *testing.T, sim *githubsim.Server, tok string) *github.Client {
	t.Helper()
	c := github.NewClient(sim.Client()).WithAuthToken(tok)
	c.BaseURL, _ = url.Parse(sim.URL())
	return c
}

func status(err error) int {
	var er *github.ErrorResponse
	if errors.As(err, &er) {
		return er.Response.StatusCode
	}
	return 0
}

// TestTokens: GET /user and the permissions object answer for the calling token, and a
// token narrowed to pull is refused writes as GitHub refuses them.
func TestTokens(t *testing.T) {
	sim := githubsim.New(githubsim.WithToken("good"), githubsim.WithUser("bot"))
	t.Cleanup(sim.Close)
	ctx := context.Background()
	const repo = "cessda/cessda.cvs.two"
	sim.CreateRepo(repo, nil)
	good := client(t, sim, "good")

	u, _, err := good.Users.Get(ctx, "")
	if err != nil || u.GetLogin() != "bot" {
		t.Fatalf("user %v %v", u, err)
	}
	r, rsp, err := good.Repositories.Get(ctx, "cessda", "cessda.cvs.two")
	if err != nil || !r.Permissions["admin"] || !r.Permissions["pull"] || r.GetPrivate() {
		t.Fatalf("repo %v %v", r, err)
	}
	if _, ok := rsp.Header["X-Oauth-Scopes"]; ok {
		t.Fatal("X-OAuth-Scopes sent for a token that is not classic")
	}
	if _, _, err := client(t, sim, "other").Users.Get(ctx, ""); status(err) != 401 {
		t.Fatalf("unknown token: %v", err)
	}

	sim.SetPermission("reader", repo, "pull")
	reader := client(t, sim, "reader")
	r, _, err = reader.Repositories.Get(ctx, "cessda", "cessda.cvs.two")
	if err != nil || r.Permissions["push"] || r.Permissions["triage"] || !r.Permissions["pull"] {
		t.Fatalf("reader's permissions %v %v", r.Permissions, err)
	}
	head := sim.Head(repo, "main")
	if _, _, err := reader.Git.CreateRef(ctx, "cessda", "cessda.cvs.two", &github.Reference{Ref: github.String("refs/tags/1.0.0"), Object: &github.GitObject{SHA: &head}}); status(err) != 403 {
		t.Fatalf("reader tagged: %v", err)
	}
	sim.AddMilestone(repo, "1.0.0")
	is, _, err := reader.Issues.Create(ctx, "cessda", "cessda.cvs.two", &github.IssueRequest{Title: github.String("t"), Labels: &[]string{"release"}, Milestone: github.Int(1)})
	if err != nil || len(is.Labels) != 0 || is.Milestone != nil {
		t.Fatalf("reader's issue keeps labels or milestone (GitHub drops them): %v %v", is, err)
	}
	if _, _, err := reader.Issues.Edit(ctx, "cessda", "cessda.cvs.two", is.GetNumber(), &github.IssueRequest{State: github.String("closed")}); err != nil {
		t.Fatalf("the author may edit its issue: %v", err)
	}
	other := sim.AddIssue(repo, githubsim.Issue{Title: "someone's"})
	if _, _, err := reader.Issues.Edit(ctx, "cessda", "cessda.cvs.two", other, &github.IssueRequest{State: github.String("closed")}); status(err) != 403 {
		t.Fatalf("reader closed someone's issue: %v", err)
	}
}

// TestTokenKinds: a token that may not see a repository, a classic token and its scopes,
// an installation token, and a revoked token are answered as GitHub answers them.
func TestTokenKinds(t *testing.T) {
	sim := githubsim.New(githubsim.WithToken("good"), githubsim.WithUser("bot"))
	t.Cleanup(sim.Close)
	ctx := context.Background()
	const repo = "cessda/cessda.cvs.two"
	sim.CreateRepo(repo, nil)
	good := client(t, sim, "good")

	sim.SetPermission("reader", repo, "none")
	if _, _, err := client(t, sim, "reader").Repositories.Get(ctx, "cessda", "cessda.cvs.two"); status(err) != 404 {
		t.Fatalf("hidden repository: %v", err)
	}

	sim.SetScopes("classic", "public_repo", "read:org")
	_, rsp, err := client(t, sim, "classic").Repositories.Get(ctx, "cessda", "cessda.cvs.two")
	if err != nil || rsp.Header.Get("X-OAuth-Scopes") != "public_repo, read:org" {
		t.Fatalf("classic token: %v %v", rsp.Header, err)
	}
	sim.SetPrivate(repo, true)
	if _, _, err := client(t, sim, "classic").Repositories.Get(ctx, "cessda", "cessda.cvs.two"); status(err) != 404 {
		t.Fatalf("private repository without scope repo: %v", err)
	}

	sim.SetInstallationToken("app")
	if _, _, err := client(t, sim, "app").Users.Get(ctx, ""); status(err) != 403 {
		t.Fatalf("installation token has a user: %v", err)
	}
	list, _, err := client(t, sim, "app").Apps.ListRepos(ctx, nil)
	if err != nil || list.GetTotalCount() != 1 {
		t.Fatalf("installation repositories %v %v", list, err)
	}

	sim.RevokeToken("good")
	if _, _, err := good.Users.Get(ctx, ""); status(err) != 401 || err.(*github.ErrorResponse).Message != "Bad credentials" {
		t.Fatalf("revoked token: %v", err)
	}
}
