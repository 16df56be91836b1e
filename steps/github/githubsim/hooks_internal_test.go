package githubsim

import "testing"

// TestNewServerHooks: a hook a file registers runs on every server New builds, once it listens.
func TestNewServerHooks(t *testing.T) {
	var urls []string
	newServerHooks = append(newServerHooks, func(s *Server) { urls = append(urls, s.URL()) })
	t.Cleanup(func() { newServerHooks = newServerHooks[:len(newServerHooks)-1] })
	a, b := New(), New()
	defer a.Close()
	defer b.Close()
	if len(urls) != 2 || urls[0] != a.URL() || urls[1] != b.URL() {
		t.Errorf("hooks saw %v, want %s and %s", urls, a.URL(), b.URL())
	}
}

// TestMuxPattern: a fault's glob path in ServeMux terms.
func TestMuxPattern(t *testing.T) {
	for glob, want := range map[string]string{
		"":                             "",
		"/repos/*":                     "/repos/",
		"/repos/*/*/releases":          "/repos/{s2}/{s3}/releases",
		"/repos/*/*/milestones/*":      "/repos/{s2}/{s3}/milestones/{s5}",
		"/user":                        "/user",
		"/repos/o/r/":                  "/repos/o/r/{$}",
		"POST /repos/{owner}/{repo}/x": "POST /repos/{owner}/{repo}/x",
	} {
		if got := muxPattern(glob); got != want {
			t.Errorf("muxPattern(%q) = %q, want %q", glob, got, want)
		}
	}
}
