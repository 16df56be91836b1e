package rehearsal_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/steps/jenkins/jenkinssim"
	"github.com/cessda/runbook/steps/rehearsal"
	"github.com/cessda/runbook/steps/zenodo/zenodosim"
)

// TestPreflightFindsEveryProblemAtOnce: a CVS release whose world has six things wrong —
// the GitHub token may only read the product's repository, the production kube context may
// not patch Deployments, the deploy job does not take the playbook's image-tag parameters,
// Zenodo refuses the token, the mail server refuses the login, the chat webhook is not
// configured — is refused by one preflight listing all six, and nothing in the world
// changed: no write to any service.
func TestPreflightFindsEveryProblemAtOnce(t *testing.T) {
	w := newWorld(t, "cvs", map[string]string{"version": "3.7.0"}, rehearsal.Answers{})
	sb, pb, in := w.sb, w.pb, w.inputs(map[string]string{"version": "3.7.0"})
	connect := func(d *engine.ConnectionDecl) (*engine.Connection, error) {
		c, err := sb.Connect(d)
		if err == nil && d.Type == "chat" {
			c.URL, c.Token, c.TokenEnv, c.TokenFile = "", "", "", ""
		}
		return c, err
	}
	healthy, err := engine.Preflight(context.Background(), pb, in, engine.PlanOptions{Mode: "rehearsal", Clock: sb.Clock, Connect: sb.Connect})
	if err != nil || healthy.Err() != nil {
		t.Fatalf("the healthy world fails its preflight: %v %v", err, healthy.Err())
	}

	sb.GitHub.SetPermission("rehearsal-github-token", "cessda/cessda.cvs.two", "pull")
	sb.Clusters["production"].Deny("cvs", "patch", "apps", "deployments")
	sb.Jenkins.AddJob(jenkinssim.Job{Path: "cessda.cvs.deploy.prod", Params: []jenkinssim.Param{{Name: "RUNBOOK_RUN"}, {Name: "release_version"}}})
	sb.Zenodo.Inject(zenodosim.Fault{Method: http.MethodGet, Status: http.StatusUnauthorized, Times: 1000})
	sb.SMTP.RejectLoginsNext(1000)
	before := sb.State("3.7.0")

	rep, err := engine.Preflight(context.Background(), pb, in, engine.PlanOptions{Mode: "rehearsal", Clock: sb.Clock, Connect: connect})
	if err != nil {
		t.Fatal(err)
	}
	text := ""
	if e := rep.Err(); e != nil {
		text = e.Error()
	}
	for _, want := range []string{
		"may only pull cessda/cessda.cvs.two",                                           // GitHub permission
		"in namespace cvs (needed by kubernetes.rollback)",                              // kube verb
		"job cessda.cvs.deploy.prod on connection \"jenkins\" does not take parameters", // Jenkins parameters
		"refused the token",                    // Zenodo
		"refused the login",                    // SMTP
		`no webhook URL for connection "chat"`, // chat
		"nothing was changed and no run was started",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the preflight does not say %q:\n%s", want, text)
		}
	}
	if len(rep.Problems) < 6 {
		t.Errorf("%d problems, want at least 6:\n%s", len(rep.Problems), text)
	}

	// Nothing changed anywhere.
	after := sb.State("3.7.0")
	a, _ := json.Marshal(before)
	b, _ := json.Marshal(after)
	if string(a) != string(b) {
		t.Errorf("the world changed during the preflight:\nbefore %s\nafter  %s", a, b)
	}
	if n := sb.GitHub.WriteCount(); n != 0 {
		t.Errorf("%d GitHub writes", n)
	}
	if w := sb.Jenkins.Writes(); len(w) != 0 {
		t.Errorf("Jenkins writes: %v", w)
	}
	if n := sb.Zenodo.Writes(); n != 0 {
		t.Errorf("%d Zenodo writes", n)
	}
	if n := sb.SMTP.Count("MAIL"); n != 0 {
		t.Errorf("%d mails begun", n)
	}
	if p := sb.Chat.Posts(); len(p) != 0 {
		t.Errorf("chat posts: %v", p)
	}
	for name, c := range sb.Clusters {
		if n := c.Writes(); n != 0 {
			t.Errorf("%d writes to cluster %s", n, name)
		}
	}
}
