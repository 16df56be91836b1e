package githubsim

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
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

// serveWeb answers the web paths; it reports false for any other request (the API).
func (s *Server) serveWeb(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	var segs []string
	for _, seg := range strings.Split(strings.Trim(r.URL.EscapedPath(), "/"), "/") {
		if u, err := url.PathUnescape(seg); err == nil {
			seg = u
		}
		segs = append(segs, seg)
	}
	kind := webKind(segs)
	if kind == "" {
		return false
	}
	archive := kind == "archive"
	full := segs[0] + "/" + segs[1]
	rec := Request{Method: r.Method, Path: r.URL.EscapedPath()}
	s.mu.Lock()
	rec.Time = s.clock.Now()
	var body []byte
	var name string
	found := false
	if rp := s.repoLocked(full, false, nil); rp != nil {
		if archive {
			tag := strings.TrimSuffix(segs[5], ".tar.gz")
			if sha, ok := rp.refs["refs/tags/"+tag]; ok {
				if t, ok := rp.tags[sha]; ok {
					sha = t.object
				}
				if cm := rp.commits[sha]; cm != nil {
					body, found = tarball(segs[1]+"-"+tag, cm.files), true
					name = segs[1] + "-" + tag + ".tar.gz"
				}
			}
		} else if sha, ok := s.resolve(rp, segs[3]); ok {
			if cm := rp.commits[sha]; cm != nil {
				if c, ok := cm.files[strings.Join(segs[4:], "/")]; ok {
					body, found = []byte(c), true
				}
			}
		}
	}
	s.mu.Unlock()
	status := http.StatusOK
	switch {
	case !found:
		status = http.StatusNotFound
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte("404: Not Found"))
	case archive:
		w.Header().Set("Content-Type", "application/x-gzip")
		w.Header().Set("Content-Disposition", "attachment; filename="+name)
		_, _ = w.Write(body)
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write(body)
	}
	s.record(rec, status)
	return true
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
