package rehearsal

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cessda/runbook/steps/github/githubsim"
	"github.com/cessda/runbook/steps/jenkins/jenkinssim"
	"github.com/cessda/runbook/steps/kubernetes/kubesim"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The rehearsal's world works as CESSDA's does, independently of what a playbook claims:
//
//   - a push to a component's main branch makes its CI job (a multibranch branch job,
//     e.g. cessda.cvs.two/main) build that commit: the build carries the Git plugin's
//     BuildData, pushes the image <image>:main-N (its digest derived from the commit) and
//     <image>:main-latest, and deploys main-N to staging;
//   - the deploy.prod job tags each image it is given as the production image
//     <image>:<release_version> (same digest) and deploys that to production; an image
//     whose parameter it is not given falls back to the job's default, main-latest;
//   - the rollback job deploys the image tags it is given (or, given none, the previous
//     release).
//
// So a rehearsal can check the chain of custody against the world's own truth: which
// commit a tag points at, which build built it, which digest production runs.

// Registry is where the rehearsal's images live.
const Registry = "registry.invalid/cessda/"

// previousTag is the image tag production runs before the release.
const previousTag = "previous"

// ciJob is a component's CI branch job, and what the world knows of the component.
type ciJob struct {
	job, repo, image string
}

// ref is the image reference of tag in this component's repository.
func (c ciJob) ref(tag string) string { return Registry + c.image + ":" + tag }

// imageContent is what the CI build of commit sha pushes: a digest per commit and image.
func imageContent(image, repo, sha string) string {
	return "image " + image + " built from " + repo + "@" + sha
}

// addCIJob registers a component's CI job, seeds a finished build of its current head,
// pushes that build's image and returns its tag.
func (s *Sandbox) addCIJob(c ciJob) string {
	if _, ok := s.ci[c.job]; ok {
		return ""
	}
	s.ci[c.job] = c
	s.Jenkins.AddJob(jenkinssim.Job{Path: c.job, Script: s.ciScript})
	head := s.GitHub.CreateRepo(c.repo, nil)
	n := s.Jenkins.SeedCommitBuild(c.job, head, s.remote(c.repo), "SUCCESS")
	tag := fmt.Sprintf("%s-%d", branchOf(c.job), n)
	s.Images.Push(c.ref(tag), imageContent(c.image, c.repo, head))
	_, _ = s.Images.Tag(c.ref(tag), c.ref(branchOf(c.job)+"-latest"))
	return tag
}

func (s *Sandbox) remote(repo string) string {
	return strings.TrimSuffix(s.GitHub.URL(), "/") + "/" + repo + ".git"
}

func branchOf(job string) string {
	if i := strings.LastIndex(job, "/"); i >= 0 {
		return job[i+1:]
	}
	return "main"
}

// ciFor returns the CI job that builds repo's branch.
func (s *Sandbox) ciFor(repo, branch string) (ciJob, bool) {
	for _, c := range s.ci {
		if strings.EqualFold(c.repo, repo) && branchOf(c.job) == branch {
			return c, true
		}
	}
	return ciJob{}, false
}

// onPush is the repository's webhook: CI builds the pushed commit.
func (s *Sandbox) onPush(repo, branch, sha string) {
	c, ok := s.ciFor(repo, branch)
	if !ok {
		return
	}
	n := s.Jenkins.BuildCommit(c.job, sha, s.remote(repo))
	s.note("CI: %s #%d builds %s@%s", c.job, n, repo, short(sha))
}

// ciScript is a component's CI pipeline: build, push main-N and main-latest, deploy to staging.
func (s *Sandbox) ciScript(b *jenkinssim.Build) {
	c, ok := s.ci[b.Job()]
	if !ok {
		b.Logf("ERROR: no such component")
		b.SetResult("FAILURE")
		return
	}
	sha := b.Revision()
	b.Logf("Checking out Revision %s (refs/remotes/origin/%s)", sha, branchOf(c.job))
	b.Sleep(4 * time.Minute) // compile, test, image
	tag := fmt.Sprintf("%s-%d", branchOf(c.job), b.Number())
	d := s.Images.Push(c.ref(tag), imageContent(c.image, c.repo, sha))
	_, _ = s.Images.Tag(c.ref(tag), c.ref(branchOf(c.job)+"-latest"))
	b.Logf("pushed %s (%s)", c.ref(tag), d)
	for _, w := range s.staging {
		if w.image != c.image {
			continue
		}
		b.Logf("+ helm upgrade %s --set image.tag=%s -n %s --atomic (staging-cluster)", w.nm, tag, w.ns)
		if err := w.cluster.SetImage(w.ns, w.kind, w.nm, "*", c.ref(tag)); err != nil {
			b.Logf("ERROR: %v", err)
			b.SetResult("FAILURE")
			return
		}
	}
}

// imageOfParameter is which of the product's images a deploy or rollback parameter
// carries (vars.deployed's deploy_parameter of each component, as the playbook says the
// jobs take them).
func (s *Sandbox) imageOfParameter(param string) (string, bool) {
	img, ok := s.paramImage[param]
	return img, ok
}

// deployParameters reads the components a playbook deploys (vars.deployed, see
// playbooks/fragments/deploy.yaml) and the extra parameters of its jobs: the parameters
// the world's deploy and rollback jobs define.
func (s *Sandbox) deployParameters(vars map[string]any) {
	s.paramImage = map[string]string{}
	deployed, _ := vars["deployed"].([]any)
	for _, d := range deployed {
		m, _ := d.(map[string]any)
		p, _ := m["deploy_parameter"].(string)
		img, _ := m["image"].(string)
		if p != "" && img != "" {
			s.paramImage[p] = imageName(img)
		}
	}
	for _, extra := range []string{"deploy_extra_parameters", "rollback_extra_parameters"} {
		m, _ := vars[extra].(map[string]any)
		for k := range m {
			s.extraParams = append(s.extraParams, k)
		}
	}
}

// jobParameters are the parameters a deploy or rollback job of the world defines.
func (s *Sandbox) jobParameters() []string {
	set := map[string]bool{}
	for _, p := range s.extraParams {
		set[p] = true
	}
	for p := range s.paramImage {
		set[p] = true
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// imageTags reads a job's image-tag parameters: image -> tag.
func (s *Sandbox) imageTags(b *jenkinssim.Build) map[string]string {
	out := map[string]string{}
	for k, v := range b.Params() {
		if img, ok := s.imageOfParameter(k); ok {
			out[img] = v
		}
	}
	return out
}

// deployScript is the deploy.prod job: it tags each image it is given as the production
// image <image>:<release_version> and deploys that to production.
func (s *Sandbox) deployScript(b *jenkinssim.Build) {
	b.Logf("[Pipeline] Start of Pipeline")
	for _, k := range sortedParamNames(b) {
		b.Logf("parameter %s=%s", k, b.Param(k))
	}
	given := s.imageTags(b)
	b.Sleep(3 * time.Second)
	for _, w := range s.prod {
		version := b.Param("release_version")
		if version == "" {
			version = w.release // a playbook's own job that is not told the version
		}
		c, built := s.ciByImage(w.image)
		tag, ok := given[w.image]
		switch {
		case !built:
			// An image no CI job of the playbook builds: the release's image is pushed as is.
			s.Images.Push(c.ref(version), "image "+w.image+" "+version)
			tag = version
		case !ok:
			tag = "main-latest" // the job's default for a parameter it is not given
			b.Logf("%s: no image tag given; using the default %s", w.image, tag)
		}
		d, err := s.Images.Tag(c.ref(tag), c.ref(version))
		if err != nil {
			b.Logf("ERROR: %v", err)
			b.SetResult("FAILURE")
			return
		}
		b.Logf("+ gcloud artifacts docker tags add %s %s  # %s", c.ref(tag), c.ref(version), d)
		target := c.ref(version)
		if s.ans().Broken {
			target = c.ref(strings.TrimPrefix(kubesim.BrokenSuffix, ":"))
		}
		b.Logf("+ helm upgrade %s --set image.tag=%s -n %s --atomic (production-cluster)", w.nm, version, w.ns)
		if err := w.cluster.SetImage(w.ns, w.kind, w.nm, "*", target); err != nil {
			b.Logf("ERROR: %v", err)
			b.SetResult("FAILURE")
			return
		}
		b.Sleep(2 * time.Second)
	}
	b.Logf("[Pipeline] End of Pipeline")
}

// rollbackScript is the rollback job: production back to the image tags it is given
// (those it ran before the deploy), or to the previous release when given none.
func (s *Sandbox) rollbackScript(b *jenkinssim.Build) {
	given := s.imageTags(b)
	for _, w := range s.prod {
		tag, ok := given[w.image]
		if !ok {
			tag = previousTag
		}
		if s.ans().BadRollback {
			tag = "main-latest"
		}
		ref := Registry + w.image + ":" + tag
		if _, known := s.Images.Digest(ref); !known {
			b.Logf("ERROR: image %s not found", ref)
			b.SetResult("FAILURE")
			return
		}
		b.Logf("+ helm upgrade %s --set image.tag=%s -n %s --atomic (rollback)", w.nm, tag, w.ns)
		if err := w.cluster.SetImage(w.ns, w.kind, w.nm, "*", ref); err != nil {
			b.Logf("ERROR: %v", err)
			b.SetResult("FAILURE")
			return
		}
		b.Sleep(time.Second)
	}
}

// ciByImage is the CI job that builds img, and whether there is one.
func (s *Sandbox) ciByImage(img string) (ciJob, bool) {
	for _, c := range s.ci {
		if c.image == img {
			return c, true
		}
	}
	return ciJob{image: img}, false
}

func sortedParamNames(b *jenkinssim.Build) []string {
	var out []string
	for k := range b.Params() {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// Link is the world's own account of one component's chain of custody after a release:
// what the tag points at, which CI builds built that commit, which digests staging and
// production run. Tests compare it with what the release claims.
type Link struct {
	Repo, Image string
	// TagCommit is the commit the version's tag points at ("" when untagged).
	TagCommit string
	// Builds are the CI builds of TagCommit ("job #N").
	Builds []string
	// BuiltDigests are the digests those builds pushed.
	BuiltDigests []string
	// Staging and Production are the digests each cluster's pods of the image run
	// (one per pod), and ProductionTags the image references of their spec.
	Staging, Production []string
	ProductionRefs      []string
}

// Chain reads the chain of custody of every component a CI job builds, sorted by repo.
func (s *Sandbox) Chain(version string) []Link {
	var out []Link
	for _, c := range s.ci {
		l := Link{Repo: c.repo, Image: c.image}
		if sha, _, ok := s.GitHub.TagInfo(c.repo, version); ok {
			l.TagCommit = sha
		}
		for _, b := range s.Jenkins.Builds(c.job) {
			if l.TagCommit != "" && b.Revision == l.TagCommit {
				l.Builds = append(l.Builds, fmt.Sprintf("%s #%d", c.job, b.Number))
				if d, ok := s.Images.Digest(c.ref(fmt.Sprintf("%s-%d", branchOf(c.job), b.Number))); ok {
					l.BuiltDigests = append(l.BuiltDigests, d)
				}
			}
		}
		for _, w := range s.staging {
			if w.image == c.image {
				d, _ := s.podImages(w)
				l.Staging = append(l.Staging, d...)
			}
		}
		for _, w := range s.prod {
			if w.image == c.image {
				d, refs := s.podImages(w)
				l.Production = append(l.Production, d...)
				l.ProductionRefs = append(l.ProductionRefs, refs...)
			}
		}
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Repo < out[j].Repo })
	return out
}

// ProductionDigests are the digests production's pods run, by workload
// ("ns/kind/name") and image.
func (s *Sandbox) ProductionDigests() map[string][]string {
	out := map[string][]string{}
	for _, w := range s.prod {
		d, _ := s.podImages(w)
		out[w.ns+"/"+w.kind+"/"+w.nm] = d
	}
	return out
}

// podImages are the digests (from status.containerStatuses[].imageID) and spec images
// of the workload's pods, sorted.
func (s *Sandbox) podImages(w workload) (digests, refs []string) {
	ctx := context.Background()
	cs := w.cluster.Admin()
	var sel *metav1.LabelSelector
	switch w.kind {
	case "deployment":
		d, err := cs.AppsV1().Deployments(w.ns).Get(ctx, w.nm, metav1.GetOptions{})
		if err != nil {
			return nil, nil
		}
		sel = d.Spec.Selector
	default:
		st, err := cs.AppsV1().StatefulSets(w.ns).Get(ctx, w.nm, metav1.GetOptions{})
		if err != nil {
			return nil, nil
		}
		sel = st.Spec.Selector
	}
	ls, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil, nil
	}
	pods, err := cs.CoreV1().Pods(w.ns).List(ctx, metav1.ListOptions{LabelSelector: ls.String()})
	if err != nil {
		return nil, nil
	}
	for _, p := range pods.Items {
		for _, c := range p.Status.ContainerStatuses {
			_, d, _ := strings.Cut(c.ImageID, "@")
			digests = append(digests, d)
			refs = append(refs, c.Image)
		}
	}
	sort.Strings(digests)
	sort.Strings(refs)
	return digests, refs
}

// develop is the developers' work a release ships, as it stands when the release issue is
// opened: a closed issue in the version's milestone (the release notes list it), and an
// entry under ## [Unreleased] in each changelog that has none (after an earlier release
// moved them), committed to main, which CI builds.
func (s *Sandbox) develop(tracker, milestone string) {
	if !s.ans().EmptyMilestone {
		s.GitHub.AddIssue(tracker, githubsim.Issue{Title: "Search finds terms in every language (" + milestone + ")", State: "closed", Milestone: milestone, Labels: []string{"enhancement"}})
	}
	for _, repo := range s.changelogs {
		c, ok := s.GitHub.File(repo, "main", "CHANGELOG.md")
		if !ok || hasUnreleasedEntries(c) {
			continue
		}
		c = strings.Replace(c, "## [Unreleased]\n", "## [Unreleased]\n\n### Fixed\n\n- Search finds terms in every language\n", 1)
		sha := s.GitHub.Commit(repo, "main", "Record the search fix in the changelog", map[string]string{"CHANGELOG.md": c})
		s.note("a developer records work for %s in %s (%s)", milestone, repo, short(sha))
		s.onPush(repo, "main", sha)
	}
}

// hasUnreleasedEntries says whether a Keep-a-Changelog file lists entries under ## [Unreleased].
func hasUnreleasedEntries(c string) bool {
	_, rest, ok := strings.Cut(c, "## [Unreleased]")
	if !ok {
		return true // not a file the world knows how to add to
	}
	section, _, _ := strings.Cut(rest, "\n## [")
	for _, line := range strings.Split(section, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "- ") {
			return true
		}
	}
	return false
}
