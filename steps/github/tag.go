package github

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"time"

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

// existingTag is a tag found on the repository.
type existingTag struct {
	refSHA string    // object the ref points at (tag object for annotated tags)
	commit string    // the tagged commit
	made   time.Time // tagger date of an annotated tag; zero for a lightweight one
}

// findTag reads tag p.Tag; nil when the repository has no such tag.
func (p *Tag) findTag(ctx context.Context, c *client, o, r string) (*existingTag, error) {
	var tr *gh.Reference
	rsp, err := c.call(ctx, fmt.Sprintf("get tag %s in %s", p.Tag, p.Repo), func(ctx context.Context) (*gh.Response, error) {
		var rsp *gh.Response
		var err error
		tr, rsp, err = c.gh.Git.GetRef(ctx, o, r, "tags/"+p.Tag)
		return rsp, err
	})
	if is404(rsp, err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	t := &existingTag{refSHA: tr.GetObject().GetSHA()}
	t.commit = t.refSHA
	if tr.GetObject().GetType() == "tag" {
		var obj *gh.Tag
		if _, err := c.call(ctx, "get tag object "+t.refSHA, func(ctx context.Context) (*gh.Response, error) {
			var rsp *gh.Response
			var err error
			obj, rsp, err = c.gh.Git.GetTag(ctx, o, r, t.refSHA)
			return rsp, err
		}); err != nil {
			return nil, err
		}
		t.commit = obj.GetObject().GetSHA()
		t.made = obj.GetTagger().GetDate().Time
	}
	return t, nil
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
	if _, err := c.call(ctx, fmt.Sprintf("resolve %s in %s", ref, p.Repo), func(ctx context.Context) (*gh.Response, error) {
		var rsp *gh.Response
		var err error
		cm, rsp, err = c.gh.Repositories.GetCommit(ctx, o, r, ref, nil)
		return rsp, err
	}); err != nil {
		return st, err
	}
	st.target = cm.GetSHA()
	t, err := p.findTag(ctx, c, o, r)
	if err != nil || t == nil {
		return st, err
	}
	st.refSHA, st.current = t.refSHA, t.commit
	return st, nil
}

// taggedOnce is the preflight's check that the version was never tagged: a version is
// tagged once, so a new run for an existing tag must not start. (Preflight runs for new
// runs only; a resumed run, and Run itself, reuse a tag on the same commit.)
func (p *Tag) taggedOnce(ctx context.Context, sc *engine.StepContext) error {
	c, o, r, err := repoClient(sc, p.Connection, p.Repo)
	if err != nil {
		return err
	}
	t, err := p.findTag(ctx, c, o, r)
	if err != nil {
		return fmt.Errorf("github.tag: cannot tell whether tag %s exists on %s: %w", p.Tag, p.Repo, err)
	}
	if t == nil {
		return nil
	}
	made := ""
	if !t.made.IsZero() {
		made = ", made " + t.made.UTC().Format("2006-01-02 15:04 UTC")
	}
	next := ""
	if v := nextPatch(p.Tag); v != "" {
		next = " (" + v + ")"
	}
	return fmt.Errorf("tag %s already exists on %s (commit %s%s): a version is tagged once — a release that was reverted keeps its tag; release the next version%s, or resume the run that made the tag (runbook runs shows it)",
		p.Tag, p.Repo, shortN(t.commit, 7), made, next)
}

var patchRE = regexp.MustCompile(`^(.*?)(\d+)\.(\d+)\.(\d+)$`)

// nextPatch is X.Y.(Z+1) of an X.Y.Z tag (any prefix kept), "" for another form.
func nextPatch(tag string) string {
	m := patchRE.FindStringSubmatch(tag)
	if m == nil {
		return ""
	}
	z, err := strconv.Atoi(m[4])
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%s%s.%s.%d", m[1], m[2], m[3], z+1)
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

func short(sha string) string { return shortN(sha, 12) }

func shortN(sha string, n int) string {
	if len(sha) > n {
		return sha[:n]
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
		if _, err := c.call(ctx, "create tag object "+p.Tag, func(ctx context.Context) (*gh.Response, error) {
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
		_, err = c.call(ctx, "move tag "+p.Tag, func(ctx context.Context) (*gh.Response, error) {
			_, rsp, err := c.gh.Git.UpdateRef(ctx, o, r, ref, true)
			return rsp, err
		})
	} else {
		_, err = c.call(ctx, "create tag "+p.Tag, func(ctx context.Context) (*gh.Response, error) {
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
