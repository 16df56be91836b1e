package kubesim

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
)

// Registry is a simulated image registry: tags pointing at digests. Clusters sharing one
// registry resolve a tag the same way, so a digest read on staging can be compared with one
// read on production. It is safe for concurrent use.
type Registry struct {
	mu   sync.Mutex
	tags map[string]string // normalized ref -> digest
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{tags: map[string]string{}} }

// Push stores content under ref ("registry/name:tag", ":latest" when no tag) and returns its
// digest, "sha256:" + hex(sha256(content)). Pushing again to the same tag moves the tag.
func (r *Registry) Push(ref, content string) string {
	sum := sha256.Sum256([]byte(content))
	d := "sha256:" + hex.EncodeToString(sum[:])
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tags[normalizeRef(ref)] = d
	return d
}

// Tag points dst at src's digest and returns it, as a deploy job's "tag as production
// image" does. src must be known.
func (r *Registry) Tag(src, dst string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, ok := r.tags[normalizeRef(src)]
	if !ok {
		return "", fmt.Errorf("kubesim: registry: image %s not found", src)
	}
	r.tags[normalizeRef(dst)] = d
	return d, nil
}

// Digest is the digest ref points at now.
func (r *Registry) Digest(ref string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, ok := r.tags[normalizeRef(ref)]
	return d, ok
}

// normalizeRef adds the implied ":latest" tag.
func normalizeRef(ref string) string {
	if strings.Contains(ref, "@") {
		return ref
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref
	}
	return ref + ":latest"
}

// repoOf is the reference without tag or digest.
func repoOf(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i]
	}
	return ref
}

// ResolveDigest is the digest a pod started now with image ref would run: the digest of a
// reference pinned by digest, else the registry's (WithRegistry), else one derived from the
// reference itself, so clusters without a registry still report stable digests.
func (c *Cluster) ResolveDigest(ref string) string {
	if _, d, ok := strings.Cut(ref, "@"); ok {
		return d
	}
	if d, ok := c.registry.Digest(ref); ok {
		return d
	}
	sum := sha256.Sum256([]byte(normalizeRef(ref)))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// imageID is what a container runtime reports in containerStatuses[].imageID.
func (c *Cluster) imageID(ref string) string { return repoOf(ref) + "@" + c.ResolveDigest(ref) }
