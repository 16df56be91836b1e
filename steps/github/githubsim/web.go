package githubsim

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// The web side of GitHub that release tooling downloads from without the API: the source
// archive of a tag (github.com/OWNER/REPO/archive/refs/tags/TAG.tar.gz) and a file at a ref
// (raw.githubusercontent.com/OWNER/REPO/REF/PATH, also github.com/OWNER/REPO/raw/REF/PATH).
// The simulator serves them from its repositories, without a token (public repositories),
// under its own address: WebPath maps a real GitHub address onto it.

// WebPath returns the path under the simulator's URL that serves a github.com or
// raw.githubusercontent.com address, and false for any other address.
func WebPath(u *url.URL) (string, bool) {
	segs := strings.Split(strings.Trim(u.EscapedPath(), "/"), "/")
	switch u.Hostname() {
	case "github.com":
		if kind := webKind(segs); kind != "" {
			return "/" + strings.Join(segs, "/"), true
		}
	case "raw.githubusercontent.com":
		if len(segs) >= 4 {
			return "/" + strings.Join(append(segs[:2:2], append([]string{"raw"}, segs[2:]...)...), "/"), true
		}
	}
	return "", false
}

// webKind says which web download a path (split in segments, without the host) asks for:
// "archive" (OWNER/REPO/archive/refs/tags/TAG.tar.gz), "raw" (OWNER/REPO/raw/REF/PATH...)
// or "" (none: the API, say).
func webKind(segs []string) string {
	switch {
	case len(segs) == 6 && segs[0] != "repos" && segs[2] == "archive" && segs[3] == "refs" && segs[4] == "tags" && strings.HasSuffix(segs[5], ".tar.gz"):
		return "archive"
	case len(segs) >= 5 && segs[0] != "repos" && segs[2] == "raw":
		return "raw"
	}
	return ""
}

// webOr serves a web download with h, but hands the API's own paths (/repos/...) to api.
func (s *Server) webOr(api http.Handler, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("owner") == "repos" {
			api.ServeHTTP(w, r)
			return
		}
		h(w, r)
	}
}

// archive serves OWNER/REPO/archive/refs/tags/TAG.tar.gz: the tagged commit's files.
func (s *Server) archive(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("repo")
	tag, ok := strings.CutSuffix(r.PathValue("archive"), ".tar.gz")
	if !ok {
		webNotFound(w)
		return
	}
	s.mu.Lock()
	files := s.filesAtLocked(r.PathValue("owner")+"/"+name, "refs/tags/"+tag)
	var body []byte
	if files != nil {
		body = tarball(name+"-"+tag, files)
	}
	s.mu.Unlock()
	if files == nil {
		webNotFound(w)
		return
	}
	w.Header().Set("Content-Type", "application/x-gzip")
	w.Header().Set("Content-Disposition", "attachment; filename="+name+"-"+tag+".tar.gz")
	_, _ = w.Write(body)
}

// rawFile serves OWNER/REPO/raw/REF/PATH: a file at a branch, tag or commit.
func (s *Server) rawFile(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	var content string
	found := false
	if rp := s.repoLocked(r.PathValue("owner")+"/"+r.PathValue("repo"), false, nil); rp != nil {
		if sha, ok := s.resolve(rp, r.PathValue("ref")); ok && rp.commits[sha] != nil {
			content, found = rp.commits[sha].files[r.PathValue("path")]
		}
	}
	s.mu.Unlock()
	if !found {
		webNotFound(w)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, content)
}

// filesAtLocked is the tree of the commit ref (a full ref name) points at in
// repository full, or nil.
func (s *Server) filesAtLocked(full, ref string) map[string]string {
	rp := s.repoLocked(full, false, nil)
	if rp == nil {
		return nil
	}
	sha, ok := rp.refs[ref]
	if t, isTag := rp.tags[sha]; ok && isTag {
		sha = t.object
	}
	if cm := rp.commits[sha]; ok && cm != nil {
		return cm.files
	}
	return nil
}

func webNotFound(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusNotFound)
	_, _ = io.WriteString(w, "404: Not Found")
}

// tarball is a gzipped tar of files under prefix/, as GitHub's source archives are. The
// same files give the same bytes (fixed times, sorted names), so an upload of it can be
// compared by checksum.
func tarball(prefix string, files map[string]string) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	epoch := time.Unix(0, 0).UTC()
	_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: prefix + "/", Mode: 0o755, ModTime: epoch})
	for _, n := range names {
		_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: prefix + "/" + n, Mode: 0o644, Size: int64(len(files[n])), ModTime: epoch})
		_, _ = tw.Write([]byte(files[n]))
	}
	_ = tw.Close()
	_ = zw.Close()
	return buf.Bytes()
}
