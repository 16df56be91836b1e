package rehearsal

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// State is what a release left in the simulated world: what people would see. Two runs
// of the same release, one interrupted and resumed, must leave equal states; a duplicated
// issue, comment, tag, build, deposition, release or e-mail shows up as a difference.
type State struct {
	Issues     map[string][]string `json:"issues"`     // repo -> "#n title [state] milestone comments=N"
	Tags       map[string]string   `json:"tags"`       // repo -> where the version's tag points
	Releases   map[string][]string `json:"releases"`   // repo -> "tag draft=bool"
	Changelogs map[string]string   `json:"changelogs"` // repo -> sha256 of CHANGELOG.md on main
	Builds     map[string][]string `json:"builds"`     // job -> "result params"
	Zenodo     map[string]int      `json:"zenodo"`     // depositions, created, publications
	Mail       []string            `json:"mail"`       // subjects
	Chat       []string            `json:"chat"`       // texts
	Workloads  map[string]string   `json:"workloads"`  // cluster/ns/kind/name -> images
}

var simURL = regexp.MustCompile(`https?://127\.0\.0\.1:[0-9]+`)

// State reads the simulated world.
func (s *Sandbox) State(version string) State {
	st := State{Issues: map[string][]string{}, Tags: map[string]string{}, Releases: map[string][]string{}, Changelogs: map[string]string{},
		Builds: map[string][]string{}, Zenodo: map[string]int{}, Workloads: map[string]string{}}
	for _, repo := range s.GitHub.Repos() {
		for _, is := range s.GitHub.Issues(repo) {
			st.Issues[repo] = append(st.Issues[repo], fmt.Sprintf("#%d %s [%s] %s comments=%d", is.Number, is.Title, is.State, is.Milestone, is.Comments))
		}
		if sha, annotated, ok := s.GitHub.TagInfo(repo, version); ok {
			// Commit ids carry their times, so they differ between two runs: what counts
			// is where the tag points.
			where := "on another commit"
			if sha == s.GitHub.Head(repo, "main") {
				where = "on the head of main"
			}
			st.Tags[repo] = fmt.Sprintf("%s annotated=%v", where, annotated)
		}
		for _, r := range s.GitHub.Releases(repo) {
			st.Releases[repo] = append(st.Releases[repo], fmt.Sprintf("%s draft=%v", r.Tag, r.Draft))
		}
		if c, ok := s.GitHub.File(repo, "main", "CHANGELOG.md"); ok {
			// The release links in it name the simulator's address, which differs
			// between sandbox processes.
			sum := sha256.Sum256([]byte(simURL.ReplaceAllString(c, "http://simulator")))
			st.Changelogs[repo] = hex.EncodeToString(sum[:8])
		}
	}
	for _, job := range s.jobs {
		for _, b := range s.Jenkins.Builds(job) {
			keys := make([]string, 0, len(b.Params))
			for k := range b.Params {
				if k != "RUNBOOK_RUN" { // names the run, which differs between two runs
					keys = append(keys, k)
				}
			}
			sort.Strings(keys)
			ps := ""
			for _, k := range keys {
				ps += " " + k + "=" + b.Params[k]
			}
			st.Builds[job] = append(st.Builds[job], b.Result+ps)
		}
	}
	st.Zenodo["depositions"], st.Zenodo["created"], st.Zenodo["publications"] = s.Zenodo.Depositions(), s.Zenodo.Created(), s.Zenodo.Publications()
	for _, m := range s.SMTP.Messages() {
		st.Mail = append(st.Mail, m.Subject)
	}
	sort.Strings(st.Mail)
	for _, p := range s.Chat.Posts() {
		st.Chat = append(st.Chat, simURL.ReplaceAllString(p.Text, "http://simulator"))
	}
	sort.Strings(st.Chat)
	for name, cl := range s.Clusters {
		ctx := context.Background()
		deps, _ := cl.Admin().AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
		for _, d := range deps.Items {
			st.Workloads[name+"/"+d.Namespace+"/deployment/"+d.Name] = d.Spec.Template.Spec.Containers[0].Image
		}
		sets, _ := cl.Admin().AppsV1().StatefulSets("").List(ctx, metav1.ListOptions{})
		for _, d := range sets.Items {
			st.Workloads[name+"/"+d.Namespace+"/statefulset/"+d.Name] = d.Spec.Template.Spec.Containers[0].Image
		}
	}
	return st
}
