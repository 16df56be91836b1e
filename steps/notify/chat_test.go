package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/engine/enginetest"
	"github.com/cessda/runbook/steps/notify/chatsim"
)

// The hook ids carry canaries: the webhook URL is a secret and must never be printed.
const (
	slackHook = "T0CANARY/B0CANARY/XCANARYslack9f2"
	mmHook    = "CANARYmattermost7c1"
)

func chatConn(t *testing.T, env, url, flavor string) *engine.Connection {
	t.Helper()
	t.Setenv(env, url)
	return &engine.Connection{Name: "chat", Type: "chat", TokenEnv: env, Settings: map[string]string{"flavor": flavor}}
}

func TestChatSlackHappyPathAndOnce(t *testing.T) {
	srv := chatsim.New(chatsim.WithSlackHook(slackHook))
	defer srv.Close()
	conn := chatConn(t, "SLACK_WEBHOOK_URL", srv.SlackURL(slackHook), "slack")
	c := enginetest.NewContext(t, "chat", conn)
	step := enginetest.Decode(t, "notify.chat", map[string]any{
		"text": "**CDC 3.4.0** is released: [release notes](https://github.com/cessda/cessda.cdc.versions/releases/tag/3.4.0)",
	})
	out, err := step.Run(context.Background(), c.StepContext)
	noSecret(t, c, out, err, "CANARY")
	if err != nil {
		t.Fatal(err)
	}
	if out["delivered"] != true {
		t.Errorf("outputs %v", out)
	}
	posts := srv.Posts()
	if len(posts) != 1 {
		t.Fatalf("%d posts, want 1", len(posts))
	}
	want := "*CDC 3.4.0* is released: <https://github.com/cessda/cessda.cdc.versions/releases/tag/3.4.0|release notes>"
	if posts[0].Text != want || posts[0].Flavor != chatsim.Slack || posts[0].HookID != slackHook {
		t.Errorf("post %+v\nwant text %q", posts[0], want)
	}
	if ct := srv.Requests()[0].ContentType; ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	out2, err := step.Run(context.Background(), c.StepContext)
	if err != nil || out2["delivered"] != true {
		t.Fatalf("second run: %v %v", out2, err)
	}
	if n := len(srv.Requests()); n != 1 {
		t.Errorf("second run made %d more requests", n-1)
	}
	noSecret(t, c, out2, err, "CANARY")
}

func TestChatMattermostHappyPath(t *testing.T) {
	srv := chatsim.New(chatsim.WithMattermostHook(mmHook))
	defer srv.Close()
	conn := chatConn(t, "MM_WEBHOOK_URL", srv.MattermostURL(mmHook), "")
	conn.Settings["channel"] = "town-square"
	c := enginetest.NewContext(t, "chat", conn)
	step := enginetest.Decode(t, "notify.chat", map[string]any{"text": "**CVS 2.1.0** is on production", "username": "runbook"})
	out, err := step.Run(context.Background(), c.StepContext)
	noSecret(t, c, out, err, "CANARY")
	if err != nil {
		t.Fatal(err)
	}
	p := srv.Posts()
	if len(p) != 1 || p[0].Flavor != chatsim.Mattermost || p[0].Text != "**CVS 2.1.0** is on production" ||
		p[0].Channel != "town-square" || p[0].Username != "runbook" {
		t.Fatalf("posts %+v (flavor guessed from the URL, Markdown kept, channel from the connection)", p)
	}
}

func TestChatErrorBodiesExplained(t *testing.T) {
	srv := chatsim.New(chatsim.WithSlackHook(slackHook), chatsim.WithMattermostHook(mmHook))
	defer srv.Close()
	ctx := context.Background()
	run := func(env, url, flavor string) (*enginetest.Context, error) {
		c := enginetest.NewContext(t, "chat", chatConn(t, env, url, flavor))
		out, err := enginetest.Decode(t, "notify.chat", map[string]any{"text": "hi"}).Run(ctx, c.StepContext)
		noSecret(t, c, out, err, "CANARY")
		if err != nil {
			t.Logf("error: %v", err)
		}
		return c, err
	}
	cases := []struct {
		name  string
		setup func()
		env   string
		url   string
		want  []string
	}{
		{"slack unknown hook", func() {}, "SLACK_WEBHOOK_URL", srv.SlackURL("T9/B9/Xunknown"),
			[]string{"404", "no_service", "does not exist", "check the webhook URL in SLACK_WEBHOOK_URL"}},
		{"slack archived channel", func() { srv.SetHookError(chatsim.Slack, slackHook, http.StatusGone, "channel_is_archived") },
			"SLACK_WEBHOOK_URL", srv.SlackURL(slackHook), []string{"410", "channel_is_archived", "archived"}},
		{"mattermost unknown hook", func() {}, "MM_WEBHOOK_URL", srv.MattermostURL("nohook1"),
			[]string{"404", "Invalid webhook.", "web.incoming_webhook.invalid.app_error", "MM_WEBHOOK_URL"}},
		{"mattermost refused", func() { srv.SetHookError(chatsim.Mattermost, mmHook, http.StatusBadRequest, "Channel is archived.") },
			"MM_WEBHOOK_URL", srv.MattermostURL(mmHook), []string{"400", "Channel is archived."}},
	}
	for _, tc := range cases {
		tc.setup()
		_, err := run(tc.env, tc.url, "")
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", tc.name, err, w)
			}
		}
		if ok, _ := engine.IsTransient(err); ok {
			t.Errorf("%s: a 4xx is not transient", tc.name)
		}
	}
	if len(srv.Posts()) != 0 {
		t.Errorf("posts despite errors: %v", srv.Posts())
	}
}

func TestChatSimulatorValidatesPayload(t *testing.T) {
	srv := chatsim.New(chatsim.WithSlackHook(slackHook), chatsim.WithMattermostHook(mmHook))
	defer srv.Close()
	post := func(url, ct, body string) (int, string) {
		resp, err := http.Post(url, ct, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	if code, body := post(srv.SlackURL(slackHook), "application/json", "{not json"); code != 400 || body != "invalid_payload" {
		t.Errorf("slack bad JSON: %d %q", code, body)
	}
	if code, body := post(srv.SlackURL(slackHook), "application/json", `{"text":""}`); code != 400 || body != "no_text" {
		t.Errorf("slack no text: %d %q", code, body)
	}
	if code, body := post(srv.MattermostURL(mmHook), "application/json", `{"channel":"x"}`); code != 400 || !strings.Contains(body, `"web.incoming_webhook.text.app_error"`) || !strings.Contains(body, `"status_code":400`) {
		t.Errorf("mattermost no text: %d %q", code, body)
	}
	if code, body := post(srv.MattermostURL(mmHook), "application/x-www-form-urlencoded", `payload=%7B%22text%22%3A%22hi%22%7D`); code != 200 || body != "ok" {
		t.Errorf("mattermost form payload: %d %q", code, body)
	}
	auto := chatsim.New(chatsim.WithAutoCreate())
	defer auto.Close()
	if code, _ := post(auto.SlackURL("T1/B1/Xnew"), "application/json", `{"text":"x"}`); code != 200 || len(auto.Posts()) != 1 {
		t.Errorf("auto-create: %d, posts %d", code, len(auto.Posts()))
	}
}

func TestChatRateLimitAndTransientFaults(t *testing.T) {
	srv := chatsim.New(chatsim.WithSlackHook(slackHook))
	defer srv.Close()
	conn := chatConn(t, "SLACK_WEBHOOK_URL", srv.SlackURL(slackHook), "slack")
	ctx := context.Background()
	step := enginetest.Decode(t, "notify.chat", map[string]any{"text": "hi"})

	srv.RateLimitNext(1, 7*time.Second)
	c := enginetest.NewContext(t, "chat", conn)
	out, err := step.Run(ctx, c.StepContext)
	noSecret(t, c, out, err, "CANARY")
	ok, d := engine.IsTransient(err)
	if !ok || d != 7*time.Second || !strings.Contains(err.Error(), "429") {
		t.Fatalf("429: transient=%v after=%v err=%v; want RetryAfter 7s", ok, d, err)
	}

	srv.FailNext(1, http.StatusServiceUnavailable)
	_, err = step.Run(ctx, c.StepContext)
	noSecret(t, c, nil, err, "CANARY")
	if ok, _ := engine.IsTransient(err); !ok || !strings.Contains(err.Error(), "503") {
		t.Fatalf("503 should be transient: %v", err)
	}
	if strings.Contains(c.LogText(), "may have posted") {
		t.Errorf("after answered failures the log suggests a possible post:\n%s", c.LogText())
	}

	srv.DropNext(1)
	_, err = step.Run(ctx, c.StepContext)
	noSecret(t, c, nil, err, "CANARY")
	if ok, _ := engine.IsTransient(err); !ok {
		t.Fatalf("a dropped connection should be transient: %v", err)
	}
	t.Logf("error: %v", err)

	// After a dropped connection nobody knows whether the message arrived: the step
	// waits for a person rather than risk announcing twice.
	_, err = step.Run(ctx, c.StepContext)
	wantAskPerson(t, err, "--confirm")
	if n := len(srv.Posts()); n != 0 {
		t.Fatalf("%d posts while delivery is unknown, want 0", n)
	}
	confirmResend(c)
	if _, err := step.Run(ctx, c.StepContext); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Posts()); n != 1 {
		t.Fatalf("%d posts after three faults and a confirmed resend, want 1", n)
	}
	if !strings.Contains(c.LogText(), "may have posted") {
		t.Errorf("the log should say a person confirmed sending again")
	}

	srv.Close()
	c = enginetest.NewContext(t, "chat-down", conn)
	_, err = step.Run(ctx, c.StepContext)
	noSecret(t, c, nil, err, "CANARY")
	if ok, _ := engine.IsTransient(err); !ok {
		t.Fatalf("connection refused should be transient: %v", err)
	}
}

func TestChatPlanPostsNothing(t *testing.T) {
	srv := chatsim.New(chatsim.WithSlackHook(slackHook))
	defer srv.Close()
	conn := chatConn(t, "SLACK_WEBHOOK_URL", srv.SlackURL(slackHook), "slack")
	c := enginetest.NewContext(t, "chat", conn)
	p, err := enginetest.Decode(t, "notify.chat", map[string]any{"text": "hello", "channel": "#releases"}).Plan(context.Background(), c.StepContext)
	if err != nil {
		t.Fatal(err)
	}
	if len(srv.Requests()) != 0 {
		t.Errorf("plan made %d requests", len(srv.Requests()))
	}
	if !strings.Contains(p.Action, "#releases") || strings.Contains(p.Action+strings.Join(p.Details, ""), "CANARY") {
		t.Errorf("plan %+v", p)
	}
}

func TestChatMissingWebhook(t *testing.T) {
	c := enginetest.NewContext(t, "chat", &engine.Connection{Name: "chat", Type: "chat", TokenEnv: "SLACK_WEBHOOK_URL"})
	t.Setenv("SLACK_WEBHOOK_URL", "")
	_, err := enginetest.Decode(t, "notify.chat", map[string]any{"text": "x"}).Run(context.Background(), c.StepContext)
	if err == nil || !strings.Contains(err.Error(), "SLACK_WEBHOOK_URL") || !strings.Contains(err.Error(), "chat") {
		t.Fatalf("want an error naming chat and SLACK_WEBHOOK_URL, got %v", err)
	}
	t.Setenv("SLACK_WEBHOOK_URL", "not a url CANARYxyz")
	_, err = enginetest.Decode(t, "notify.chat", map[string]any{"text": "x"}).Run(context.Background(), c.StepContext)
	if err == nil || strings.Contains(err.Error(), "CANARY") || !strings.Contains(err.Error(), "SLACK_WEBHOOK_URL") {
		t.Fatalf("a malformed secret URL must be reported without repeating it: %v", err)
	}
}

func TestChatSlowAnswerTimesOutAsTransient(t *testing.T) {
	srv := chatsim.New(chatsim.WithSlackHook(slackHook), chatsim.WithLatency(300*time.Millisecond))
	defer srv.Close()
	conn := chatConn(t, "SLACK_WEBHOOK_URL", srv.SlackURL(slackHook), "slack")
	conn.Settings["timeout"] = "20ms"
	c := enginetest.NewContext(t, "chat", conn)
	_, err := enginetest.Decode(t, "notify.chat", map[string]any{"text": "x"}).Run(context.Background(), c.StepContext)
	noSecret(t, c, nil, err, "CANARY")
	if ok, _ := engine.IsTransient(err); !ok {
		t.Fatalf("a request that timed out should be transient: %v", err)
	}
	t.Logf("error: %v", err)
}

// wantAskPerson checks that a step whose message may have been delivered waits for a
// person, naming the choice want.
func wantAskPerson(t *testing.T, err error, want string) {
	t.Helper()
	var we *engine.WaitingError
	if !errors.As(err, &we) || !strings.Contains(we.Reason, want) {
		t.Fatalf("want the step waiting for a person (%q), got %v", want, err)
	}
}

// confirmResend records the person's `runbook resume --confirm STEP`: send it again.
func confirmResend(c *enginetest.Context) {
	b, _ := json.Marshal(engine.Confirmation{By: "owner", Answer: "yes"})
	c.Put("confirmation", b)
}
