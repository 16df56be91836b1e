package notify_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/engine/enginetest"
	_ "github.com/cessda/runbook/steps/notify"
	"github.com/cessda/runbook/steps/notify/smtpsim"
)

const (
	smtpUser   = "release-bot"
	smtpCanary = "CANARY-smtp-pa55-7f3a9c"
)

// newSMTP starts a server that wants smtpUser/smtpCanary and returns it with a connection
// that trusts its certificate through ca_file and reads the password from SMTP_PASSWORD.
func newSMTP(t *testing.T, opts ...smtpsim.Option) (*smtpsim.Server, *engine.Connection) {
	t.Helper()
	srv, err := smtpsim.New(append([]smtpsim.Option{smtpsim.WithAuth(smtpUser, smtpCanary)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, srv.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SMTP_PASSWORD", smtpCanary)
	conn := &engine.Connection{
		Name: "mail", Type: "smtp", URL: srv.URL(),
		Settings: map[string]string{"from": "CESSDA releases <releases@cessda.eu>", "username": smtpUser, "ca_file": ca},
		TokenEnv: "SMTP_PASSWORD",
	}
	return srv, conn
}

// noSecret fails when secret appears in the log, the outputs or the error.
func noSecret(t *testing.T, c *enginetest.Context, out engine.Outputs, err error, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(c.LogText(), s) {
			t.Errorf("secret in the log:\n%s", c.LogText())
		}
		if strings.Contains(fmt.Sprint(out), s) {
			t.Errorf("secret in the outputs: %v", out)
		}
		if err != nil && strings.Contains(err.Error(), s) {
			t.Errorf("secret in the error: %v", err)
		}
	}
}

func announce() map[string]any {
	return map[string]any{
		"to":          []any{"users@cessda.eu", "Jane Roe <jane@example.org>"},
		"cc":          []any{"ops@cessda.eu"},
		"reply_to":    "support@cessda.eu",
		"subject":     "CDC 3.4.0 released",
		"body":        "CDC **3.4.0** is out.\n\nDOI: 10.5281/zenodo.123\n",
		"body_format": "markdown",
	}
}

func TestEmailDeliveredOverSTARTTLSWithAuth(t *testing.T) {
	srv, conn := newSMTP(t)
	c := enginetest.NewContext(t, "announce", conn)
	step := enginetest.Decode(t, "notify.email", announce())
	out, err := step.Run(context.Background(), c.StepContext)
	noSecret(t, c, out, err, smtpCanary)
	if err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("server has %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if !m.TLS || m.AuthUser != smtpUser {
		t.Errorf("TLS=%v AuthUser=%q, want STARTTLS and AUTH as %s", m.TLS, m.AuthUser, smtpUser)
	}
	if m.Subject != "CDC 3.4.0 released" {
		t.Errorf("subject %q", m.Subject)
	}
	if m.From != "releases@cessda.eu" || m.ReplyTo != "support@cessda.eu" {
		t.Errorf("From %q Reply-To %q", m.From, m.ReplyTo)
	}
	if got := strings.Join(m.To, ","); got != "users@cessda.eu,jane@example.org" {
		t.Errorf("To header %q", got)
	}
	if got := strings.Join(m.RcptTo, ","); got != "users@cessda.eu,jane@example.org,ops@cessda.eu" {
		t.Errorf("envelope recipients %q", got)
	}
	if !strings.Contains(m.Text, "CDC **3.4.0** is out.") || !strings.Contains(m.Text, "10.5281/zenodo.123") {
		t.Errorf("text body %q", m.Text)
	}
	if !strings.Contains(m.HTML, "<strong>3.4.0</strong>") {
		t.Errorf("markdown body has no HTML alternative: %q", m.HTML)
	}
	if out["message_id"] != m.MessageID || !strings.HasPrefix(m.MessageID, "<runbook.") || !strings.HasSuffix(m.MessageID, "@cessda.eu>") {
		t.Errorf("output message_id %v, header %q", out["message_id"], m.MessageID)
	}
	rcpts, _ := out["recipients"].([]string)
	if strings.Join(rcpts, ",") != "jane@example.org,ops@cessda.eu,users@cessda.eu" {
		t.Errorf("recipients output %v", out["recipients"])
	}
	if m.Date == "" || !strings.Contains(m.Date, "24 Nov 2026") {
		t.Errorf("Date header %q should come from the run's clock", m.Date)
	}
}

func TestEmailSecondRunSendsNothing(t *testing.T) {
	srv, conn := newSMTP(t)
	c := enginetest.NewContext(t, "announce", conn)
	step := enginetest.Decode(t, "notify.email", announce())
	out1, err := step.Run(context.Background(), c.StepContext)
	if err != nil {
		t.Fatal(err)
	}
	conns := srv.Connections()
	out2, err := step.Run(context.Background(), c.StepContext)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("%d messages after two runs, want 1", n)
	}
	if srv.Connections() != conns {
		t.Errorf("second run connected to the server")
	}
	if fmt.Sprint(out1) != fmt.Sprint(out2) {
		t.Errorf("outputs differ: %v vs %v", out1, out2)
	}
	p, err := step.Plan(context.Background(), c.StepContext)
	if err != nil || !p.NoChange {
		t.Errorf("plan after send: %+v %v, want NoChange", p, err)
	}
}

func TestEmailWrongPassword(t *testing.T) {
	srv, conn := newSMTP(t)
	wrong := "CANARY-wrong-pass-99x"
	t.Setenv("SMTP_PASSWORD", wrong)
	c := enginetest.NewContext(t, "announce", conn)
	out, err := enginetest.Decode(t, "notify.email", announce()).Run(context.Background(), c.StepContext)
	noSecret(t, c, out, err, wrong, smtpCanary)
	if err == nil {
		t.Fatal("no error with a wrong password")
	}
	t.Logf("error: %v", err)
	msg := err.Error()
	for _, want := range []string{"smtp", "535", smtpUser, "SMTP_PASSWORD"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if ok, _ := engine.IsTransient(err); ok {
		t.Errorf("a refused login is not transient: %v", err)
	}
	if srv.AuthFailures() != 1 || len(srv.Messages()) != 0 {
		t.Errorf("auth failures %d, messages %d", srv.AuthFailures(), len(srv.Messages()))
	}
}

func TestEmailMissingPassword(t *testing.T) {
	_, conn := newSMTP(t)
	t.Setenv("SMTP_PASSWORD", "")
	c := enginetest.NewContext(t, "announce", conn)
	_, err := enginetest.Decode(t, "notify.email", announce()).Run(context.Background(), c.StepContext)
	t.Logf("error: %v", err)
	if err == nil || !strings.Contains(err.Error(), "SMTP_PASSWORD") || !strings.Contains(err.Error(), "smtp") {
		t.Fatalf("error %v should say SMTP_PASSWORD is not set", err)
	}
}

func TestEmailToRole(t *testing.T) {
	srv, conn := newSMTP(t)
	c := enginetest.NewContext(t, "tell-users", conn)
	c.Roles = map[string][]string{"user_group": {"jdoe", "asmith", "nomail"}}
	c.People = map[string]engine.Person{
		"jdoe":   {Name: "John Doe", Email: "john@example.org"},
		"asmith": {Email: "anna@example.org"},
		"nomail": {Name: "No Mail"},
	}
	step := enginetest.Decode(t, "notify.email", map[string]any{"to_role": "user_group", "subject": "hello", "body": "text"})
	p, err := step.Plan(context.Background(), c.StepContext)
	if err != nil || !strings.Contains(strings.Join(p.Details, "\n"), "john@example.org") {
		t.Errorf("plan %+v %v should list the role's addresses", p, err)
	}
	out, err := step.Run(context.Background(), c.StepContext)
	if err != nil {
		t.Fatal(err)
	}
	m := srv.Messages()[0]
	if strings.Join(m.RcptTo, ",") != "john@example.org,anna@example.org" {
		t.Errorf("recipients %v", m.RcptTo)
	}
	if !strings.Contains(string(m.Raw), "John Doe") {
		t.Errorf("To header lacks the person's name:\n%s", m.Raw)
	}
	if fmt.Sprint(out["recipients"]) != "[anna@example.org john@example.org]" {
		t.Errorf("recipients output %v", out["recipients"])
	}
	if !strings.Contains(c.LogText(), "nomail") {
		t.Errorf("the log does not say nomail gets no e-mail")
	}

	c.Roles["empty"] = nil
	_, err = enginetest.Decode(t, "notify.email", map[string]any{"to_role": "empty", "subject": "s", "body": "b"}).Run(context.Background(), c.StepContext)
	if err == nil || !strings.Contains(err.Error(), "roles.empty") {
		t.Errorf("empty role: %v", err)
	}
}

func TestEmailPlanSendsNothing(t *testing.T) {
	srv, conn := newSMTP(t)
	t.Setenv("SMTP_PASSWORD", "")
	c := enginetest.NewContext(t, "announce", conn)
	p, err := enginetest.Decode(t, "notify.email", announce()).Plan(context.Background(), c.StepContext)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Action, "CDC 3.4.0 released") || p.NoChange {
		t.Errorf("plan %+v", p)
	}
	if srv.Connections() != 0 || len(srv.Messages()) != 0 {
		t.Errorf("plan connected (%d) or sent (%d)", srv.Connections(), len(srv.Messages()))
	}
	c.SetUnknown("subject")
	p, _ = enginetest.Decode(t, "notify.email", map[string]any{"to": []any{"a@b.c"}, "body": "x", "subject": ""}).Plan(context.Background(), c.StepContext)
	if !strings.Contains(p.Action, engine.KnownAfterRun) {
		t.Errorf("unknown subject not shown as known after run: %+v", p)
	}
}

func TestEmailTransientAndPermanentFaults(t *testing.T) {
	srv, conn := newSMTP(t)
	ctx := context.Background()

	srv.FailNext(1, 451, "greylisted, try again later")
	c := enginetest.NewContext(t, "announce", conn)
	step := enginetest.Decode(t, "notify.email", announce())
	_, err := step.Run(ctx, c.StepContext)
	if ok, _ := engine.IsTransient(err); !ok {
		t.Fatalf("451 should be transient: %v", err)
	}
	if _, err := step.Run(ctx, c.StepContext); err != nil {
		t.Fatalf("retry after 451: %v", err)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("%d messages after 451 and retry, want 1", n)
	}
	if strings.Contains(c.LogText(), "may have sent") {
		t.Errorf("after a 451 the message certainly was not sent, but the log suggests it may have been:\n%s", c.LogText())
	}

	srv.FailNext(1, 554, "spam detected")
	c = enginetest.NewContext(t, "announce2", conn)
	_, err = step.Run(ctx, c.StepContext)
	t.Logf("error: %v", err)
	if ok, _ := engine.IsTransient(err); ok || err == nil || !strings.Contains(err.Error(), "554") {
		t.Fatalf("554 should be a permanent error naming the code: %v", err)
	}

	srv.DropNext(1)
	c = enginetest.NewContext(t, "announce3", conn)
	_, err = step.Run(ctx, c.StepContext)
	t.Logf("error: %v", err)
	if ok, _ := engine.IsTransient(err); !ok {
		t.Fatalf("a dropped connection should be transient: %v", err)
	}
}

// The window a process cannot see into: the server took the message but the connection
// dropped before its 250. The step does not send again on its own (that could announce the
// release twice): it waits for a person, and sends again, with the same Message-ID, only
// when told to.
func TestEmailAmbiguousDropWaitsForAPerson(t *testing.T) {
	srv, conn := newSMTP(t)
	srv.DropAfterDataNext(1)
	c := enginetest.NewContext(t, "announce", conn)
	step := enginetest.Decode(t, "notify.email", announce())
	_, err := step.Run(context.Background(), c.StepContext)
	if ok, _ := engine.IsTransient(err); !ok {
		t.Fatalf("drop after DATA should be transient: %v", err)
	}
	_, err = step.Run(context.Background(), c.StepContext)
	wantAskPerson(t, err, "--skip announce")
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("%d messages while delivery is unknown, want the one the server took", n)
	}
	confirmResend(c)
	if _, err := step.Run(context.Background(), c.StepContext); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 2 || msgs[0].MessageID != msgs[1].MessageID {
		t.Fatalf("a confirmed resend: want the same message twice with one Message-ID, got %d", len(msgs))
	}
}

func TestEmailUntrustedCertificate(t *testing.T) {
	srv, conn := newSMTP(t)
	delete(conn.Settings, "ca_file")
	c := enginetest.NewContext(t, "announce", conn)
	_, err := enginetest.Decode(t, "notify.email", announce()).Run(context.Background(), c.StepContext)
	t.Logf("error: %v", err)
	if err == nil || !strings.Contains(err.Error(), "ca_file") {
		t.Fatalf("want an error pointing at ca_file, got %v", err)
	}
	if len(srv.Messages()) != 0 {
		t.Error("message sent over an untrusted connection")
	}
}

func TestEmailSTARTTLSRequiredButNotOffered(t *testing.T) {
	srv, conn := newSMTP(t, smtpsim.WithoutSTARTTLS())
	c := enginetest.NewContext(t, "announce", conn)
	_, err := enginetest.Decode(t, "notify.email", announce()).Run(context.Background(), c.StepContext)
	t.Logf("error: %v", err)
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("want a STARTTLS error, got %v", err)
	}
	if len(srv.Messages()) != 0 {
		t.Error("message sent in the clear although starttls is required")
	}
}

func TestEmailImplicitTLSAndLoginAuth(t *testing.T) {
	srv, conn := newSMTP(t, smtpsim.WithImplicitTLS())
	conn.Settings["auth"] = "login"
	if !strings.HasPrefix(conn.URL, "smtps://") {
		t.Fatalf("URL %s", conn.URL)
	}
	c := enginetest.NewContext(t, "announce", conn)
	if _, err := enginetest.Decode(t, "notify.email", announce()).Run(context.Background(), c.StepContext); err != nil {
		t.Fatal(err)
	}
	if m := srv.Messages(); len(m) != 1 || !m[0].TLS || m[0].AuthUser != smtpUser {
		t.Fatalf("messages %+v", m)
	}
}

func TestEmailForeachItemsAreDistinct(t *testing.T) {
	srv, conn := newSMTP(t)
	c := enginetest.NewContext(t, "announce", conn)
	step := enginetest.Decode(t, "notify.email", announce())
	ids := map[string]bool{}
	for _, item := range []string{"cdc", "cvs", "cdc"} {
		c.Item = item
		out, err := step.Run(context.Background(), c.StepContext)
		if err != nil {
			t.Fatal(err)
		}
		ids[out["message_id"].(string)] = true
	}
	if len(srv.Messages()) != 2 || len(ids) != 2 {
		t.Fatalf("%d messages, %d ids for items cdc, cvs, cdc; want 2 and 2", len(srv.Messages()), len(ids))
	}
}

func TestEmailRejectedRecipient(t *testing.T) {
	_, conn := newSMTP(t, smtpsim.WithRejectRecipients("users@cessda.eu"))
	c := enginetest.NewContext(t, "announce", conn)
	_, err := enginetest.Decode(t, "notify.email", announce()).Run(context.Background(), c.StepContext)
	t.Logf("error: %v", err)
	if err == nil || !strings.Contains(err.Error(), "550") || !strings.Contains(err.Error(), "users@cessda.eu") {
		t.Fatalf("want a 550 naming the recipient, got %v", err)
	}
	if ok, _ := engine.IsTransient(err); ok {
		t.Errorf("550 is permanent")
	}
}
