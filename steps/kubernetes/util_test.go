package kubernetes

import (
	"strings"
	"testing"
)

func TestDigestOf(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	for id, want := range map[string]string{
		"reg.example/web@" + d:                   d,
		"docker-pullable://reg.example/web@" + d: d,
		"docker.io/library/nginx:1.27@" + d:      d,
		d:                                        "", // a bare image ID is not the registry's digest
		"":                                       "",
		"reg.example/web@nonsense":               "",
	} {
		if got := digestOf(id); got != want {
			t.Errorf("digestOf(%q) = %q, want %q", id, got, want)
		}
	}
}

func TestImageDigestParam(t *testing.T) {
	d := "sha256:" + strings.Repeat("0f", 32)
	ok := &Verify{Namespace: "cvs", Deployments: []string{"web"}, ImageTag: "1", ImageDigest: "reg.example/web@" + d}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	if dg, ref, err := parseDigest(ok.ImageDigest); err != nil || dg != d || ref != "reg.example/web@"+d {
		t.Fatalf("parseDigest = %q %q %v", dg, ref, err)
	}
	for _, bad := range []string{"sha256:abc", "3.6.1", "@" + d, "sha256:" + strings.Repeat("AB", 32), "reg.example/web:3.6.1"} {
		p := &Verify{Namespace: "cvs", Deployments: []string{"web"}, ImageTag: "1", ImageDigest: bad}
		if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "image digest") {
			t.Errorf("image_digest %q: err = %v", bad, err)
		}
	}
}

func TestSnapshotDifferences(t *testing.T) {
	d1, d2 := "sha256:"+strings.Repeat("1", 64), "sha256:"+strings.Repeat("2", 64)
	web := func(cs ...snapContainer) snapWorkload {
		return snapWorkload{Kind: KindDeployment, Name: "web", Namespace: "cvs", Containers: cs}
	}
	es := snapWorkload{Kind: KindStatefulSet, Name: "es", Namespace: "cvs", Containers: []snapContainer{{Name: "es", Image: "reg/es:8"}}}
	for _, tc := range []struct {
		name      string
		snap, now []snapWorkload
		want      []string
	}{
		{"same digest under another tag", []snapWorkload{web(snapContainer{"web", "reg/web:1", d1})}, []snapWorkload{web(snapContainer{"web", "reg/web:prod", d1})}, nil},
		{"no digest now: by reference", []snapWorkload{web(snapContainer{"web", "reg/web:1", d1})}, []snapWorkload{web(snapContainer{"web", "reg/web:1", ""})}, nil},
		{"no digest now, other reference", []snapWorkload{web(snapContainer{"web", "reg/web:1", d1})}, []snapWorkload{web(snapContainer{"web", "reg/web:2", ""})},
			[]string{"deployment cvs/web container web runs reg/web:2, snapshot had reg/web@" + d1 + " (reg/web:1)"}},
		{"other digest", []snapWorkload{web(snapContainer{"web", "reg/web:1", d1})}, []snapWorkload{web(snapContainer{"web", "reg/web:1", d2})},
			[]string{"deployment cvs/web container web runs reg/web@" + d2 + " (reg/web:1), snapshot had reg/web@" + d1 + " (reg/web:1)"}},
		{"containers and workloads added and gone",
			[]snapWorkload{web(snapContainer{"web", "reg/web:1", d1}), es},
			[]snapWorkload{web(snapContainer{"proxy", "reg/proxy:1", ""})},
			[]string{"deployment cvs/web container web is not running now, snapshot had reg/web@" + d1 + " (reg/web:1)",
				"deployment cvs/web container proxy runs reg/proxy:1, not in the snapshot",
				"statefulset cvs/es is not found now (snapshot had [reg/es:8])"}},
	} {
		got := differences(tc.snap, tc.now)
		if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}
