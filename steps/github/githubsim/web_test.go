package githubsim_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/cessda/runbook/steps/github/githubsim"
)

// TestWebDownloads: a tag's source archive and a file at a ref are served as github.com
// and raw.githubusercontent.com serve them, without a token, from the tagged commit.
func TestWebDownloads(t *testing.T) {
	sim := githubsim.New(githubsim.WithToken("secret"))
	t.Cleanup(sim.Close)
	const repo = "cessda/cessda.cvs.two"
	sim.CreateRepo(repo, map[string]string{"README.md": "# CVS\n", "CHANGELOG.md": "## [1.0.0]\n"})
	head := sim.Head(repo, "main")
	req, _ := http.NewRequest("POST", sim.URL()+"repos/"+repo+"/git/refs", strings.NewReader(`{"ref":"refs/tags/1.0.0","sha":"`+head+`"}`))
	req.Header.Set("Authorization", "Bearer secret")
	if rsp, err := http.DefaultClient.Do(req); err != nil || rsp.StatusCode != 201 {
		t.Fatalf("tag: %v %v", rsp, err)
	}
	sim.Commit(repo, "main", "later", map[string]string{"CHANGELOG.md": "## [1.1.0]\n"})

	get := func(real string) (int, []byte) {
		t.Helper()
		u, _ := url.Parse(real)
		p, ok := githubsim.WebPath(u)
		if !ok {
			t.Fatalf("%s: not a GitHub web address", real)
		}
		rsp, err := http.Get(strings.TrimSuffix(sim.URL(), "/") + p)
		if err != nil {
			t.Fatal(err)
		}
		defer rsp.Body.Close()
		b, _ := io.ReadAll(rsp.Body)
		return rsp.StatusCode, b
	}
	if code, b := get("https://raw.githubusercontent.com/" + repo + "/1.0.0/CHANGELOG.md"); code != 200 || string(b) != "## [1.0.0]\n" {
		t.Errorf("raw at the tag: %d %q", code, b)
	}
	if code, b := get("https://github.com/" + repo + "/raw/main/CHANGELOG.md"); code != 200 || string(b) != "## [1.1.0]\n" {
		t.Errorf("raw at main: %d %q", code, b)
	}
	code, b := get("https://github.com/" + repo + "/archive/refs/tags/1.0.0.tar.gz")
	if code != 200 {
		t.Fatalf("archive: %d %s", code, b)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	files := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		c, _ := io.ReadAll(tr)
		files[h.Name] = string(c)
	}
	if files["cessda.cvs.two-1.0.0/CHANGELOG.md"] != "## [1.0.0]\n" || files["cessda.cvs.two-1.0.0/README.md"] != "# CVS\n" {
		t.Errorf("archive of the tag holds %v", files)
	}
	if _, again := get("https://github.com/" + repo + "/archive/refs/tags/1.0.0.tar.gz"); !bytes.Equal(again, b) {
		t.Error("the same tag's archive differs between downloads")
	}
	for _, missing := range []string{
		"https://github.com/" + repo + "/archive/refs/tags/9.9.9.tar.gz",
		"https://raw.githubusercontent.com/" + repo + "/1.0.0/NOPE.md",
		"https://raw.githubusercontent.com/cessda/nope/main/README.md",
	} {
		if code, _ := get(missing); code != 404 {
			t.Errorf("%s: %d, want 404", missing, code)
		}
	}
	for _, other := range []string{"https://example.org/a/b/raw/main/x", "https://github.com/cessda/cessda.cvs.two", "https://zenodo.org/records/1"} {
		u, _ := url.Parse(other)
		if p, ok := githubsim.WebPath(u); ok {
			t.Errorf("%s mapped to %s", other, p)
		}
	}
}
