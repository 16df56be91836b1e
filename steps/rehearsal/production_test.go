package rehearsal_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/steps/rehearsal"
	v1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// rehearseVariant rehearses testdata/mini.yaml with its text edited by the replacer.
func rehearseVariant(t *testing.T, r *strings.Replacer) (*engine.Report, *rehearsal.Sandbox) {
	t.Helper()
	b, err := os.ReadFile("testdata/mini.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "mini.yaml")
	if err := os.WriteFile(path, []byte(r.Replace(string(b))), 0o600); err != nil {
		t.Fatal(err)
	}
	pb, err := engine.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	in, err := pb.ResolveInputs(map[string]string{"version": "1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := rehearsal.New(context.Background(), pb, in, rehearsal.Answers{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	rep, err := engine.Execute(context.Background(), pb, engine.Options{Inputs: in, Mode: "rehearsal", Clock: sb.Clock, Connect: sb.Connect, Actor: "operator"})
	if err != nil {
		t.Fatal(err)
	}
	return rep, sb
}

func image(t *testing.T, sb *rehearsal.Sandbox, conn string) string {
	t.Helper()
	cl, ok := sb.Clusters[conn]
	if !ok {
		t.Fatalf("no cluster %s", conn)
	}
	d, err := cl.Clientset().AppsV1().Deployments("mini").Get(context.Background(), "mini-frontend", v1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d.Spec.Template.Spec.Containers[0].Image
}

// TestProductionIsWhatTheConnectionSays: production is the cluster whose connection
// says environment: production, whatever the names say: "preprod" is staging, "live" is
// production.
func TestProductionIsWhatTheConnectionSays(t *testing.T) {
	rep, sb := rehearseVariant(t, strings.NewReplacer(
		"  staging: {type: kubernetes, context: staging-cluster, environment: staging}", "  preprod: {type: kubernetes, context: preprod-cluster, environment: staging}",
		"  production: {type: kubernetes, context: production-cluster, environment: production}", "  live: {type: kubernetes, context: live-cluster, environment: production}",
		"connection: staging", "connection: preprod",
		"connection: production", "connection: live"))
	if rep.Status != engine.RunSucceeded {
		t.Fatalf("status %s at %s: %s", rep.Status, rep.FailedStep, rep.Reason)
	}
	if got := image(t, sb, "live"); !strings.HasSuffix(got, ":1.2.3") {
		t.Errorf("live runs %s after the release, not 1.2.3", got)
	}
	if got := image(t, sb, "preprod"); !strings.HasSuffix(got, ":main-42") {
		t.Errorf("preprod runs %s, not the staging build main-42", got)
	}
	for _, n := range sb.Notes() {
		if strings.Contains(n, "environment") {
			t.Errorf("note %q, although every cluster says its environment", n)
		}
	}
}

// TestProductionOfAnOlderPlaybook: a playbook whose connections say no environment (as
// before the setting) has production where its revert steps act, and is told so.
func TestProductionOfAnOlderPlaybook(t *testing.T) {
	rep, sb := rehearseVariant(t, strings.NewReplacer(", environment: staging}", "}", ", environment: production}", "}"))
	if rep.Status != engine.RunSucceeded {
		t.Fatalf("status %s at %s: %s", rep.Status, rep.FailedStep, rep.Reason)
	}
	if got := image(t, sb, "production"); !strings.HasSuffix(got, ":1.2.3") {
		t.Errorf("production runs %s after the release, not 1.2.3", got)
	}
	if got := image(t, sb, "staging"); !strings.HasSuffix(got, ":main-42") {
		t.Errorf("staging runs %s, not the staging build main-42", got)
	}
	if notes := strings.Join(sb.Notes(), "\n"); !strings.Contains(notes, "no kubernetes connection says environment: production; production is what the revert steps act on: production") {
		t.Errorf("the rehearsal does not say where it took production from:\n%s", notes)
	}
}
