package notify_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/engine/enginetest"
	"github.com/cessda/runbook/steps/notify/chatsim"
)

func roleContext(t *testing.T, conns ...*engine.Connection) *enginetest.Context {
	c := enginetest.NewContext(t, "tell-owner", conns...)
	c.Roles = map[string][]string{"service_owner": {"jdoe", "asmith", "ghost"}}
	c.People = map[string]engine.Person{
		"jdoe":   {Name: "John Doe", Email: "john@example.org", Chat: "@john"},
		"asmith": {Email: "anna@example.org"},
		"ghost":  {Name: "No Contact"},
	}
	return c
}

func verifiedMessage(channels ...any) map[string]any {
	return map[string]any{
		"role":     "service_owner",
		"message":  "CDC 3.4.0 is verified on production\n\nWider functionality tests can start.",
		"channels": channels,
	}
}

func TestRoleEmailAndChat(t *testing.T) {
	mail, smtpConn := newSMTP(t)
	chat := chatsim.New(chatsim.WithMattermostHook(mmHook))
	defer chat.Close()
	cc := chatConn(t, "MM_WEBHOOK_URL", chat.MattermostURL(mmHook), "mattermost")
	c := roleContext(t, smtpConn, cc)
	step := enginetest.Decode(t, "notify.role", verifiedMessage("email", "chat"))

	p, err := step.Plan(context.Background(), c.StepContext)
	if err != nil {
		t.Fatal(err)
	}
	plan := p.Action + "\n" + strings.Join(p.Details, "\n")
	for _, want := range []string{"service_owner", "john@example.org", "anna@example.org", "@john", "ghost"} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan)
		}
	}
	if mail.Connections() != 0 || len(chat.Requests()) != 0 {
		t.Fatalf("plan had effects: %d SMTP connections, %d chat requests", mail.Connections(), len(chat.Requests()))
	}

	out, err := step.Run(context.Background(), c.StepContext)
	noSecret(t, c, out, err, smtpCanary, "CANARY")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(out["notified"]) != "[asmith jdoe]" {
		t.Errorf("notified %v, want [asmith jdoe]", out["notified"])
	}
	msgs := mail.Messages()
	if len(msgs) != 1 || strings.Join(msgs[0].RcptTo, ",") != "anna@example.org,john@example.org" {
		t.Fatalf("mail %+v", msgs)
	}
	if msgs[0].Subject != "CDC 3.4.0 is verified on production" {
		t.Errorf("subject %q, want the message's first line", msgs[0].Subject)
	}
	posts := chat.Posts()
	if len(posts) != 1 || !strings.HasPrefix(posts[0].Text, "@john CDC 3.4.0 is verified") {
		t.Fatalf("chat posts %+v", posts)
	}
	if !strings.Contains(c.LogText(), "ghost") {
		t.Errorf("the log does not say ghost was not told")
	}

	if _, err := step.Run(context.Background(), c.StepContext); err != nil {
		t.Fatal(err)
	}
	if len(mail.Messages()) != 1 || len(chat.Posts()) != 1 || len(chat.Requests()) != 1 {
		t.Errorf("second run sent again: %d mails, %d chat requests", len(mail.Messages()), len(chat.Requests()))
	}
}

// A chat failure after the e-mail went must not resend the e-mail when retried.
func TestRoleRetryAfterChatFailureDoesNotResendEmail(t *testing.T) {
	mail, smtpConn := newSMTP(t)
	chat := chatsim.New(chatsim.WithSlackHook(slackHook))
	defer chat.Close()
	c := roleContext(t, smtpConn, chatConn(t, "SLACK_WEBHOOK_URL", chat.SlackURL(slackHook), "slack"))
	step := enginetest.Decode(t, "notify.role", verifiedMessage("email", "chat"))
	chat.FailNext(1, http.StatusInternalServerError)
	_, err := step.Run(context.Background(), c.StepContext)
	if ok, _ := engine.IsTransient(err); !ok {
		t.Fatalf("want a transient chat error, got %v", err)
	}
	if _, err := step.Run(context.Background(), c.StepContext); err != nil {
		t.Fatal(err)
	}
	if len(mail.Messages()) != 1 || len(chat.Posts()) != 1 {
		t.Fatalf("%d mails and %d posts, want 1 and 1", len(mail.Messages()), len(chat.Posts()))
	}
}

func TestRoleNobodyReachable(t *testing.T) {
	_, smtpConn := newSMTP(t)
	c := roleContext(t, smtpConn)
	c.Roles["service_owner"] = []string{"ghost"}
	_, err := enginetest.Decode(t, "notify.role", verifiedMessage("email")).Plan(context.Background(), c.StepContext)
	if err == nil || !strings.Contains(err.Error(), "service_owner") || !strings.Contains(err.Error(), "people:") {
		t.Fatalf("want an error saying nobody in the role can be reached, got %v", err)
	}
	st, _ := engine.LookupStepType("notify.role")
	s, err := engine.DecodeParams(st, verifiedMessage("pager"))
	if err == nil {
		err = s.(engine.Validator).Validate()
	}
	if err == nil || !strings.Contains(err.Error(), "pager") {
		t.Fatalf("unknown channel accepted: %v", err)
	}
}
