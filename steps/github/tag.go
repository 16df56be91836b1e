package github

import (
	"context"
	"fmt"
	"regexp"

	"github.com/cessda/runbook/engine"
	gh "github.com/google/go-github/v60/github"
)

// Tag tags one repository.
type Tag struct {
	Connection string `json:"connection" desc:"github connection to use"`
	Repo       string `json:"repo" desc:"repository, owner/name" required:"true"`
	Tag        string `json:"tag" desc:"tag name, e.g. 1.2.3" required:"true"`
	Pattern    string `json:"pattern" desc:"regular expression the tag must match" default:"'^[0-9]+\\.[0-9]+\\.[0-9]+$'"`
	Ref        string `json:"ref" desc:"commit SHA, branch or tag to tag; default the default branch's head"`
	Annotated  bool   `json:"annotated" desc:"make an annotated tag object (else a lightweight tag)"`
	Message    string `json:"message" desc:"message of an annotated tag; default 'Release {tag}'"`
	Force      bool   `json:"force" desc:"move the tag when it already points at another commit"`
}

// Validate checks the tag's format.
func (p *Tag) Validate() error {
	if p.Tag == "" {
		return nil // rendered later
	}
	re, err := regexp.Compile(p.Pattern)
	if err != nil {
		return fmt.Errorf("github.tag: pattern: %v", err)
	}
	if !re.MatchString(p.Tag) {
		return fmt.Errorf("github.tag: tag %q does not match %s (CESSDA tags are X.Y.Z, without a v)", p.Tag, p.Pattern)
	}
	return nil
}

type tagState struct {
	target  string // commit to tag
	current string // commit the tag points at now, "" when missing
	refSHA  string // object the ref points at (tag object for annotated tags)
}

func (p *Tag) look(ctx context.Context, c *client, o, r string) (tagState, error) {
	var st tagState
	ref := p.Ref
	if ref == "" {
		repo, err := c.repository(ctx, o, r)
		if err != nil {
			return st, err
		}
		ref = repo.GetDefaultBranch()
	}
	var cm *gh.RepositoryCommit
	if _, err := c.call(ctx, fmt.Sprintf("resolve %s in %s", ref, p.Repo), true, func(ctx context.Context) (*gh.Response, error) {
		var rsp *gh.Response
		var err error
		cm, rsp, err = c.gh.Repositories.GetCommit(ctx, o, r, ref, nil)
		return rsp, err
	}); err != nil {
		return st, err
	}
	st.target = cm.GetSHA()
	var tr *gh.Reference
	rsp, err := c.call(ctx, fmt.Sprintf("get tag %s in %s", p.Tag, p.Repo), true, func(ctx context.Context) (*gh.Response, error) {
		var rsp *gh.Response
		var err error
		tr, rsp, err = c.gh.Git.GetRef(ctx, o, r, "tags/"+p.Tag)
		return rsp, err
	})
	if is404(rsp, err) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	st.refSHA = tr.GetObject().GetSHA()
	st.current = st.refSHA
	if tr.GetObject().GetType() == "tag" {
		var t *gh.Tag
		if _, err := c.call(ctx, "get tag object "+st.refSHA, true, func(ctx context.Context) (*gh.Response, error) {
			var rsp *gh.Response
			var err error
			t, rsp, err = c.gh.Git.GetTag(ctx, o, r, st.refSHA)
			return rsp, err
		}); err != nil {
			return st, err
		}
		st.current = t.GetObject().GetSHA()
	}
	return st, nil
}

// Plan resolves the commit and looks for the tag; it writes nothing.
func (p *Tag) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	if sc.Unknown("repo") || sc.Unknown("tag") || sc.Unknown("ref") {
		return engine.Plan{Action: fmt.Sprintf("tag %s with %s", sc.Show("repo", p.Repo), sc.Show("tag", p.Tag))}, nil
	}
	if err := p.Validate(); err != nil {
		return engine.Plan{}, err
	}
	c, o, r, err := repoClient(sc, p.Connection, p.Repo)
	if err != nil {
		return engine.Plan{}, err
	}
	st, err := p.look(ctx, c, o, r)
	if err != nil {
		return engine.Plan{}, err
	}
	switch {
	case st.current == st.target:
		return engine.Plan{Action: fmt.Sprintf("tag %s already on %s in %s", p.Tag, short(st.target), p.Repo), NoChange: true}, nil
	case st.current != "" && !p.Force:
		return engine.Plan{}, p.conflict(st)
	case st.current != "":
		return engine.Plan{Action: fmt.Sprintf("move tag %s in %s from %s to %s (force)", p.Tag, p.Repo, short(st.current), short(st.target))}, nil
	}
	return engine.Plan{Action: fmt.Sprintf("tag %s at %s with %s", p.Repo, short(st.target), p.Tag)}, nil
}

func (p *Tag) conflict(st tagState) error {
	return fmt.Errorf("github.tag: tag %s in %s already points at commit %s, not %s: check which commit should be released, or set force: true to move the tag", p.Tag, p.Repo, st.current, st.target)
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// Run creates the tag (or finds it on the same commit).
func (p *Tag) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	c, o, r, err := repoClient(sc, p.Connection, p.Repo)
	if err != nil {
		return nil, err
	}
	st, err := p.look(ctx, c, o, r)
	if err != nil {
		return nil, err
	}
	out := engine.Outputs{"repo": p.Repo, "tag": p.Tag, "sha": st.target}
	if st.current == st.target {
		sc.Logf("tag %s already on %s in %s", p.Tag, short(st.target), p.Repo)
		return out, nil
	}
	if st.current != "" && !p.Force {
		return nil, p.conflict(st)
	}
	obj := st.target
	if p.Annotated {
		msg := p.Message
		if msg == "" {
			msg = "Release " + p.Tag
		}
		var t *gh.Tag
		if _, err := c.call(ctx, "create tag object "+p.Tag, false, func(ctx context.Context) (*gh.Response, error) {
			var rsp *gh.Response
			var err error
			t, rsp, err = c.gh.Git.CreateTag(ctx, o, r, &gh.Tag{Tag: gh.String(p.Tag), Message: gh.String(msg), Object: &gh.GitObject{Type: gh.String("commit"), SHA: gh.String(st.target)}})
			return rsp, err
		}); err != nil {
			return nil, err
		}
		obj = t.GetSHA()
	}
	ref := &gh.Reference{Ref: gh.String("refs/tags/" + p.Tag), Object: &gh.GitObject{SHA: gh.String(obj)}}
	if st.current != "" {
		sc.Logf("moving tag %s in %s from %s to %s (force)", p.Tag, p.Repo, short(st.current), short(st.target))
		_, err = c.call(ctx, "move tag "+p.Tag, true, func(ctx context.Context) (*gh.Response, error) {
			_, rsp, err := c.gh.Git.UpdateRef(ctx, o, r, ref, true)
			return rsp, err
		})
	} else {
		_, err = c.call(ctx, "create tag "+p.Tag, false, func(ctx context.Context) (*gh.Response, error) {
			_, rsp, err := c.gh.Git.CreateRef(ctx, o, r, ref)
			return rsp, err
		})
	}
	if err != nil {
		return nil, err
	}
	sc.Logf("tagged %s at %s with %s", p.Repo, short(st.target), p.Tag)
	return out, nil
}
