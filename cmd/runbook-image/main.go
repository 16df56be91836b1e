// Command runbook-image builds the runbook container image without a Docker
// daemon: a static runbook binary, CA certificates and a non-root user in one
// layer on an empty base, so the image has no shell and no package manager.
//
//	go run ./cmd/runbook-image -o DIR        # OCI image layout
//	go run ./cmd/runbook-image -o FILE.tar   # tarball for `docker load`
//
// The image is reproducible: file times, owners and the image creation time
// come from the last commit (or SOURCE_DATE_EPOCH), so the same source gives
// the same digest. Writing into an existing layout replaces its index.json
// but leaves older blobs in place.
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	pkg      = "github.com/cessda/runbook/cmd/runbook"
	source   = "https://github.com/cessda/runbook"
	binPath  = "usr/local/bin/runbook"
	certPath = "etc/ssl/certs/ca-certificates.crt"
	home     = "home/runbook"
	uid      = 65532
)

// hostCerts is a variable so that tests can point it elsewhere.
var hostCerts = "/etc/ssl/certs/ca-certificates.crt"

func main() {
	out := flag.String("o", "", "output: a directory (OCI image layout) or a FILE.tar (docker load)")
	version := flag.String("version", gitOr("dev", "describe", "--tags", "--always", "--dirty"), "version stamped into the binary and the labels")
	tag := flag.String("tag", "", "image reference (default ghcr.io/cessda/runbook:VERSION)")
	arch := flag.String("arch", runtime.GOARCH, "GOARCH of the binary and the image")
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if *tag == "" {
		*tag = "ghcr.io/cessda/runbook:" + *version
	}
	if err := run(*out, *tag, *version, *arch); err != nil {
		fmt.Fprintln(os.Stderr, "runbook-image:", err)
		os.Exit(1)
	}
}

func run(out, tag, version, arch string) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "runbook-image")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "runbook")
	if err := buildBinary(bin, version, arch); err != nil {
		return err
	}
	img, err := buildImage(bin, version, arch, sourceTime())
	if err != nil {
		return err
	}
	if err := write(img, out, ref); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	// The ID (config digest) is what `docker load` shows; docker makes its own
	// manifest, so only the OCI layout keeps the digest above.
	id, err := img.ConfigName()
	if err != nil {
		return err
	}
	size, err := imageSize(img)
	if err != nil {
		return err
	}
	fmt.Printf("image  %s -> %s\ndigest %s\nid     %s\nsize   %d bytes (%.1f MiB compressed)\n", ref, out, digest, id, size, float64(size)/(1<<20))
	return nil
}

// buildBinary builds a static, stripped runbook; -trimpath keeps the build
// machine's paths out so the binary depends only on the source and toolchain.
func buildBinary(out, version, arch string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+version, "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return nil
}

// buildImage assembles the image from a built binary; it does no I/O besides
// reading the binary and the host's CA bundle, so equal inputs give equal digests.
func buildImage(bin, version, arch string, created time.Time) (v1.Image, error) {
	layerTar, err := rootfs(bin, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "runbook-image", Comment: "runbook " + version},
	})
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", arch
	cfg.Created = v1.Time{Time: created}
	cfg.Config = v1.Config{
		User:       fmt.Sprintf("%d:%d", uid, uid),
		Entrypoint: []string{"/" + binPath},
		Cmd:        []string{"--help"},
		WorkingDir: "/" + home,
		Env: []string{
			"PATH=/usr/local/bin",
			"HOME=/" + home,
			"SSL_CERT_FILE=/" + certPath,
		},
		Labels: map[string]string{
			"org.opencontainers.image.source":  source,
			"org.opencontainers.image.version": version,
		},
	}
	if rev := gitOr("", "rev-parse", "HEAD"); rev != "" {
		cfg.Config.Labels["org.opencontainers.image.revision"] = rev
	}
	return mutate.ConfigFile(img, cfg)
}

// rootfs returns the single layer as an uncompressed tar with sorted entries,
// fixed times and numeric owners, so it is byte-for-byte reproducible.
func rootfs(bin string, mtime time.Time) ([]byte, error) {
	binary, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	certs, err := os.ReadFile(hostCerts)
	if err != nil {
		return nil, fmt.Errorf("CA certificates for the image: %w (install the ca-certificates package)", err)
	}
	type entry struct {
		mode int64
		uid  int
		data []byte // nil for a directory
	}
	files := map[string]entry{
		"etc/":           {mode: 0o755},
		"etc/ssl/":       {mode: 0o755},
		"etc/ssl/certs/": {mode: 0o755},
		"home/":          {mode: 0o755},
		home + "/":       {mode: 0o700, uid: uid},
		"tmp/":           {mode: 0o1777},
		"usr/":           {mode: 0o755},
		"usr/local/":     {mode: 0o755},
		"usr/local/bin/": {mode: 0o755},
		binPath:          {mode: 0o755, data: binary},
		certPath:         {mode: 0o644, data: certs},
		"etc/passwd":     {mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\nrunbook:x:65532:65532:runbook:/home/runbook:/sbin/nologin\n")},
		"etc/group":      {mode: 0o644, data: []byte("root:x:0:\nrunbook:x:65532:\n")},
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		e := files[n]
		h := &tar.Header{Name: n, Mode: e.mode, Uid: e.uid, Gid: e.uid, ModTime: mtime}
		if strings.HasSuffix(n, "/") {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// write stores img as an OCI layout in a directory, or as a docker-loadable
// tarball when out ends in .tar.
func write(img v1.Image, out string, ref name.Tag) error {
	if strings.HasSuffix(out, ".tar") {
		return tarball.WriteToFile(out, ref, img)
	}
	// The ref.name annotation lets tools address the image, e.g. skopeo's oci:DIR:TAG.
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{
		Add:        img,
		Descriptor: v1.Descriptor{Annotations: map[string]string{"org.opencontainers.image.ref.name": ref.TagStr()}},
	})
	_, err := layout.Write(out, idx)
	return err
}

// imageSize is what a registry stores: manifest, config and compressed layers.
func imageSize(img v1.Image) (int64, error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return 0, err
	}
	size := int64(len(raw)) + m.Config.Size
	for _, l := range m.Layers {
		size += l.Size
	}
	return size, nil
}

// sourceTime is SOURCE_DATE_EPOCH, else the last commit's time, else the Unix
// epoch: never the wall clock, which would change the digest on every build.
func sourceTime() time.Time {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		s = gitOr("0", "log", "-1", "--format=%ct")
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Unix(0, 0).UTC()
	}
	return time.Unix(sec, 0).UTC()
}

// gitOr returns git's trimmed output, or def outside a git checkout.
func gitOr(def string, args ...string) string {
	out, err := exec.Command("git", args...).Output()
	if s := strings.TrimSpace(string(out)); err == nil && s != "" {
		return s
	}
	return def
}
