package main

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const testVersion = "v0.0.0-test"

var created = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

var (
	binOnce sync.Once
	binFile string
	binErr  error
)

// testBinary builds runbook once for all tests: it is the slow part.
func testBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the runbook binary")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the image binary is linux-only and must run here")
	}
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "runbook-image-test")
		if err != nil {
			binErr = err
			return
		}
		binFile = filepath.Join(dir, "runbook")
		binErr = buildBinary(binFile, testVersion, runtime.GOARCH)
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binFile
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binFile != "" {
		os.RemoveAll(filepath.Dir(binFile))
	}
	os.Exit(code)
}

func TestImage(t *testing.T) {
	img, err := buildImage(testBinary(t), testVersion, runtime.GOARCH, created)
	if err != nil {
		t.Fatal(err)
	}
	want, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := write(img, dir, name.MustParseReference("ghcr.io/cessda/runbook:test").(name.Tag)); err != nil {
		t.Fatal(err)
	}

	// Read the image back from disk, as a registry client would.
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Digest != want {
		t.Fatalf("index manifests = %+v, want one with digest %s", im.Manifests, want)
	}
	if got := im.Manifests[0].Annotations["org.opencontainers.image.ref.name"]; got != "test" {
		t.Errorf("ref.name = %q, want test", got)
	}
	img, err = idx.Image(want)
	if err != nil {
		t.Fatal(err)
	}

	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != "65532:65532" {
		t.Errorf("User = %q", c.User)
	}
	if !slices.Equal(c.Entrypoint, []string{"/usr/local/bin/runbook"}) || !slices.Equal(c.Cmd, []string{"--help"}) {
		t.Errorf("Entrypoint = %q, Cmd = %q", c.Entrypoint, c.Cmd)
	}
	if c.WorkingDir != "/home/runbook" || !slices.Contains(c.Env, "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt") {
		t.Errorf("WorkingDir = %q, Env = %q", c.WorkingDir, c.Env)
	}
	if c.Labels["org.opencontainers.image.version"] != testVersion || cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("labels = %v, platform = %s/%s", c.Labels, cf.OS, cf.Architecture)
	}

	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers = %d, %v; want exactly one", len(layers), err)
	}
	bin := filepath.Join(t.TempDir(), "runbook")
	hdrs := unpack(t, layers[0], binPath, bin)
	for n, h := range hdrs {
		if strings.HasPrefix(n, "bin/") || strings.HasSuffix(n, "/sh") {
			t.Errorf("image has %s: it must have no shell", n)
		}
		if h.Uid != 0 && n != home+"/" {
			t.Errorf("%s owned by %d", n, h.Uid)
		}
	}
	if h := hdrs["tmp/"]; h == nil || h.Mode != 0o1777 {
		t.Errorf("tmp/ = %+v, want mode 1777", h)
	}
	if h := hdrs[home+"/"]; h == nil || h.Uid != uid || h.Gid != uid {
		t.Errorf("%s/ = %+v, want owned by %d", home, h, uid)
	}
	if h := hdrs[certPath]; h == nil || h.Size == 0 {
		t.Errorf("%s missing or empty", certPath)
	}

	// The binary from the layer is the one the image runs.
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("runbook version: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "runbook "+testVersion {
		t.Errorf("runbook version = %q", got)
	}
}

// unpack lists the layer's entries and copies the file named src to dst.
func unpack(t *testing.T, l v1.Layer, src, dst string) map[string]*tar.Header {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	hdrs := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		hdrs[h.Name] = h
		if h.Name == src {
			f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o755)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if hdrs[src] == nil {
		t.Fatalf("layer has no %s", src)
	}
	return hdrs
}

// TestReproducible builds the binary a second time (go build with -trimpath
// is reproducible) and checks that both images have the same digest, and the
// tarballs written from them the same image ID.
func TestReproducible(t *testing.T) {
	first := testBinary(t)
	second := filepath.Join(t.TempDir(), "runbook")
	if err := buildBinary(second, testVersion, runtime.GOARCH); err != nil {
		t.Fatal(err)
	}
	var digests []v1.Hash
	for _, bin := range []string{first, second} {
		img, err := buildImage(bin, testVersion, runtime.GOARCH, created)
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)

		tarFile := filepath.Join(t.TempDir(), "image.tar")
		if err := write(img, tarFile, name.MustParseReference("ghcr.io/cessda/runbook:test").(name.Tag)); err != nil {
			t.Fatal(err)
		}
		back, err := tarball.ImageFromPath(tarFile, nil)
		if err != nil {
			t.Fatal(err)
		}
		// docker save's format keeps config and layers but not the manifest,
		// so compare the image ID (config digest) rather than the digest.
		if id, bid := configName(t, img), configName(t, back); id != bid {
			t.Errorf("tarball image ID = %s, want %s", bid, id)
		}
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds of the same source: %s != %s", digests[0], digests[1])
	}
}

func configName(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestMissingCerts(t *testing.T) {
	defer func(old string) { hostCerts = old }(hostCerts)
	hostCerts = filepath.Join(t.TempDir(), "none.crt")
	bin := filepath.Join(t.TempDir(), "runbook")
	if err := os.WriteFile(bin, []byte("#!"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := rootfs(bin, created)
	if err == nil || !strings.Contains(err.Error(), "CA certificates") {
		t.Fatalf("err = %v, want a clear CA certificates error", err)
	}
}
