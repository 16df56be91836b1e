package notify_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/engine/enginetest"
	"github.com/cessda/runbook/steps/notify/chatsim"
	"github.com/cessda/runbook/steps/notify/smtpsim"
)

func preflight(t *testing.T, typ string, with map[string]any, c *enginetest.Context) error {
	t.Helper()
	pf, ok := enginetest.Decode(t, typ, with).(engine.Preflighter)
	if !ok {
		t.Fatalf("%s is not an engine.Preflighter", typ)
	}
	err := pf.Preflight(context.Background(), c.StepContext)
	noSecret(t, c, nil, err, smtpCanary, "CANARY")
	return err
}

// verbs lists the transcript as "VERB reply" entries.
func verbs(srv *smtpsim.Server) string {
	var out []string
	for _, c := range srv.Transcript() {
		out = append(out, fmt.Sprintf("%s %d", c.Verb, c.Reply))
	}
	return strings.Join(out, ", ")
}

// nothingSent fails when the server saw the start of a delivery.
func nothingSent(t *testing.T, srv *smtpsim.Server) {
	t.Helper()
	if n := len(srv.Messages()); n != 0 || srv.Count("MAIL") != 0 || srv.Count("RCPT") != 0 || srv.Count("DATA") != 0 {
		t.Errorf("preflight started a delivery: %d messages; transcript %s", n, verbs(srv))
	}
}

func TestPreflightEmailLogsInAndSendsNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []smtpsim.Option
		want string
	}{
		{"STARTTLS", nil, "EHLO 250, STARTTLS 220, EHLO 250, AUTH 235, QUIT 221"},
		{"SMTPS", []smtpsim.Option{smtpsim.WithImplicitTLS()}, "EHLO 250, AUTH 235, QUIT 221"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, conn := newSMTP(t, tc.opts...)
			c := enginetest.NewContext(t, "announce", conn)
			if err := preflight(t, "notify.email", announce(), c); err != nil {
				t.Fatal(err)
			}
			if got := verbs(srv); got != tc.want {
				t.Errorf("transcript %s, want %s", got, tc.want)
			}
			nothingSent(t, srv)
		})
	}
}

func TestPreflightEmailLoginRefused(t *testing.T) {
	t.Run("wrong password", func(t *testing.T) {
		srv, conn := newSMTP(t)
		t.Setenv("SMTP_PASSWORD", "CANARY-wrong-password")
		err := preflight(t, "notify.email", announce(), enginetest.NewContext(t, "announce", conn))
		if err == nil || !strings.Contains(err.Error(), `smtp connection "mail": smtp://`+srv.Addr()+` refused the login of user "release-bot" (535`) ||
			!strings.Contains(err.Error(), "the password in SMTP_PASSWORD") {
			t.Errorf("error = %v", err)
		}
		if srv.AuthFailures() != 1 || srv.Count("QUIT") != 1 {
			t.Errorf("auth failures %d, transcript %s", srv.AuthFailures(), verbs(srv))
		}
		nothingSent(t, srv)
	})
	t.Run("account refused", func(t *testing.T) {
		srv, conn := newSMTP(t)
		srv.RejectLoginsNext(1)
		err := preflight(t, "notify.email", announce(), enginetest.NewContext(t, "announce", conn))
		if err == nil || !strings.Contains(err.Error(), "refused the login") {
			t.Errorf("error = %v", err)
		}
		nothingSent(t, srv)
	})
	t.Run("no password", func(t *testing.T) {
		srv, conn := newSMTP(t)
		conn.TokenEnv = "SMTP_PASSWORD_UNSET_FOR_TEST"
		err := preflight(t, "notify.email", announce(), enginetest.NewContext(t, "announce", conn))
		if err == nil || !strings.Contains(err.Error(), `smtp connection "mail"`) || !strings.Contains(err.Error(), "SMTP_PASSWORD_UNSET_FOR_TEST is not set") {
			t.Errorf("error = %v", err)
		}
		if srv.Connections() != 0 {
			t.Errorf("connected without a password")
		}
	})
	t.Run("no STARTTLS", func(t *testing.T) {
		srv, conn := newSMTP(t, smtpsim.WithoutSTARTTLS())
		err := preflight(t, "notify.email", announce(), enginetest.NewContext(t, "announce", conn))
		if err == nil || !strings.Contains(err.Error(), "does not offer STARTTLS") {
			t.Errorf("error = %v", err)
		}
		if srv.Count("AUTH") != 0 {
			t.Errorf("logged in without TLS: %s", verbs(srv))
		}
		nothingSent(t, srv)
	})
	t.Run("server down", func(t *testing.T) {
		srv, conn := newSMTP(t)
		srv.Close()
		err := preflight(t, "notify.email", announce(), enginetest.NewContext(t, "announce", conn))
		if err == nil || !strings.Contains(err.Error(), `smtp connection "mail": cannot talk to smtp://`+srv.Addr()) {
			t.Errorf("error = %v", err)
		}
	})
}

func TestPreflightEmailRecipients(t *testing.T) {
	srv, conn := newSMTP(t)
	c := roleContext(t, conn)
	c.Roles["empty"] = nil
	err := preflight(t, "notify.email", map[string]any{"to_role": "service_owner", "subject": "s", "body": "b"}, c)
	if err == nil || !strings.Contains(err.Error(), `ghost in role "service_owner" has no e-mail address in people:`) {
		t.Errorf("person without an address: %v", err)
	}
	err = preflight(t, "notify.email", map[string]any{"to_role": "empty", "cc": []any{"ops@cessda.eu"}, "subject": "s", "body": "b"}, c)
	if err == nil || !strings.Contains(err.Error(), `role "empty" has nobody in it`) {
		t.Errorf("empty role: %v", err)
	}
	c.Roles["service_owner"] = []string{"jdoe", "asmith"}
	if err := preflight(t, "notify.email", map[string]any{"to_role": "service_owner", "subject": "s", "body": "b"}, c); err != nil {
		t.Errorf("everyone has an address: %v", err)
	}
	nothingSent(t, srv)
}

func TestPreflightChatPostsNothing(t *testing.T) {
	srv := chatsim.New(chatsim.WithSlackHook(slackHook), chatsim.WithMattermostHook(mmHook))
	defer srv.Close()
	for _, conn := range []*engine.Connection{
		chatConn(t, "SLACK_WEBHOOK_URL", srv.SlackURL(slackHook), "slack"),
		chatConn(t, "MM_WEBHOOK_URL", srv.MattermostURL(mmHook), ""),
	} {
		if err := preflight(t, "notify.chat", map[string]any{"text": "hello"}, enginetest.NewContext(t, "chat", conn)); err != nil {
			t.Errorf("%s: %v", conn.TokenEnv, err)
		}
	}
	if len(srv.Requests()) != 0 || len(srv.Posts()) != 0 {
		t.Errorf("preflight contacted the hook: %d requests", len(srv.Requests()))
	}
}

func TestPreflightChatNotConfigured(t *testing.T) {
	for _, tc := range []struct {
		name string
		conn *engine.Connection
		want []string
	}{
		{"no secret", &engine.Connection{Name: "chat", Type: "chat", TokenEnv: "CHAT_WEBHOOK_URL_UNSET_FOR_TEST"},
			[]string{`connection "chat"`, "CHAT_WEBHOOK_URL_UNSET_FOR_TEST is not set"}},
		{"not a URL", chatConn(t, "CHAT_URL_A", "CANARY not a url", "slack"),
			[]string{`chat connection "chat"`, "from CHAT_URL_A", "not an http(s) URL"}},
		{"Mattermost URL for Slack", chatConn(t, "CHAT_URL_B", "https://chat.example.org/hooks/CANARY1", "slack"),
			[]string{"from CHAT_URL_B", "is not a Slack incoming webhook", "flavor: mattermost"}},
		{"Slack URL for Mattermost", chatConn(t, "CHAT_URL_C", "https://hooks.slack.com/services/T0/B0/CANARY", "mattermost"),
			[]string{"is not a Mattermost incoming webhook"}},
		{"plain http", chatConn(t, "CHAT_URL_D", "http://chat.example.org/hooks/CANARY2", ""),
			[]string{"is plain http", "use the https URL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := preflight(t, "notify.chat", map[string]any{"text": "hello"}, enginetest.NewContext(t, "chat", tc.conn))
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
		})
	}
}

func TestPreflightRole(t *testing.T) {
	mail, smtpConn := newSMTP(t)
	chat := chatsim.New(chatsim.WithMattermostHook(mmHook))
	defer chat.Close()
	cc := chatConn(t, "MM_WEBHOOK_URL", chat.MattermostURL(mmHook), "mattermost")
	c := roleContext(t, smtpConn, cc)

	err := preflight(t, "notify.role", verifiedMessage("email", "chat"), c)
	if err == nil || !strings.Contains(err.Error(), `ghost in role "service_owner" has neither an e-mail address (email:) nor a chat handle (chat:) in people:`) {
		t.Errorf("unreachable person: %v", err)
	}
	c.Roles["service_owner"] = []string{"jdoe", "asmith"}
	if err := preflight(t, "notify.role", verifiedMessage("email", "chat"), c); err != nil {
		t.Errorf("healthy: %v", err)
	}
	c.Roles["service_owner"] = []string{"asmith"}
	err = preflight(t, "notify.role", verifiedMessage("email", "chat"), c)
	if err == nil || !strings.Contains(err.Error(), "nobody in role \"service_owner\" has a chat handle (chat:), so the chat channel would tell nobody") {
		t.Errorf("chat reaches nobody: %v", err)
	}
	// Both channels' connections are checked, and every problem is listed.
	t.Setenv("SMTP_PASSWORD", "CANARY-wrong")
	cc.TokenEnv = "MM_WEBHOOK_URL_UNSET_FOR_TEST"
	c.Roles["service_owner"] = []string{"jdoe"}
	err = preflight(t, "notify.role", verifiedMessage("email", "chat"), c)
	if err == nil || !strings.Contains(err.Error(), "refused the login") || !strings.Contains(err.Error(), "MM_WEBHOOK_URL_UNSET_FOR_TEST") {
		t.Errorf("both connections: %v", err)
	}
	nothingSent(t, mail)
	if len(chat.Requests()) != 0 {
		t.Errorf("preflight contacted the hook")
	}
}

// Through the engine's preflight, the steps of one smtp connection share one login.
func TestPreflightThroughTheEngineLogsInOnce(t *testing.T) {
	pb, err := engine.Parse("preflight.yaml", []byte(`runbook: v1
product: mini
title: Mini
roles: {service_owner: [jdoe]}
people: {jdoe: {email: john@example.org}}
connections:
  mail: {type: smtp, url: "smtp://mail.example.org:587", from: releases@example.org}
steps:
  - id: announce
    type: notify.email
    with: {to: [users@cessda.eu], subject: s, body: b}
  - id: tell_owner
    type: notify.role
    with: {role: service_owner, message: verified}
`))
	if err != nil {
		t.Fatal(err)
	}
	srv, conn := newSMTP(t)
	rep, err := engine.Preflight(context.Background(), pb, nil, engine.PlanOptions{
		Connect: func(*engine.ConnectionDecl) (*engine.Connection, error) { return conn, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Err() != nil {
		t.Fatal(rep.Err())
	}
	if srv.Connections() != 1 || srv.Count("AUTH") != 1 {
		t.Errorf("%d connections, transcript %s", srv.Connections(), verbs(srv))
	}
	nothingSent(t, srv)
}
