package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cessda/runbook/engine"
)

// Chat is the notify.chat step: one message to a Slack or Mattermost incoming webhook.
type Chat struct {
	Connection string `json:"connection" desc:"the chat connection (its webhook URL) to post to (default: the playbook's only chat connection)"`
	Text       string `json:"text" required:"true" desc:"the message, Markdown-ish: **bold**, [title](url) and lists are translated for Slack"`
	Channel    string `json:"channel" desc:"channel to post in, when the webhook allows overriding its own (Mattermost; legacy Slack hooks)"`
	Username   string `json:"username" desc:"name to post as, when the webhook allows it"`
}

// chatHook is a chat connection, resolved (the URL may be the connection's secret).
type chatHook struct {
	conn     *engine.Connection
	url      string
	flavor   string
	channel  string
	username string
	timeout  time.Duration
}

// String names the hook without its secret path.
func (h *chatHook) String() string {
	u, err := url.Parse(h.url)
	if err != nil || u.Host == "" {
		return h.flavor + " webhook"
	}
	return fmt.Sprintf("%s webhook at %s", h.flavor, u.Host)
}

// flavorOf is the connection's flavor setting, or a guess from the URL's shape.
func flavorOf(conn *engine.Connection, rawURL string) (string, error) {
	f := conn.Setting("flavor", "")
	switch f {
	case "slack", "mattermost":
		return f, nil
	case "":
		if strings.Contains(rawURL, "/hooks/") {
			return "mattermost", nil
		}
		return "slack", nil
	}
	return "", fmt.Errorf("chat connection %q: flavor is %q; want slack or mattermost", conn.Name, f)
}

// chatHookOf resolves the webhook URL: the connection's url, else its secret.
func chatHookOf(conn *engine.Connection) (*chatHook, error) {
	h := &chatHook{conn: conn, url: conn.URL, channel: conn.Setting("channel", ""), username: conn.Setting("username", "")}
	if h.url == "" {
		v, err := conn.Secret()
		if err != nil {
			return nil, fmt.Errorf("chat: no webhook URL for connection %q: %w", conn.Name, err)
		}
		h.url = v
	}
	u, err := url.Parse(h.url)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		// The value may be a secret: do not repeat it.
		return nil, fmt.Errorf("chat connection %q: the webhook URL (from %s) is not an http(s) URL", conn.Name, conn.SecretSource("its url"))
	}
	if h.flavor, err = flavorOf(conn, h.url); err != nil {
		return nil, err
	}
	if h.timeout, err = timeoutOf(conn); err != nil {
		return nil, err
	}
	return h, nil
}

// post sends one message. It is not idempotent by itself: callers journal around it.
func (h *chatHook) post(ctx context.Context, text, channel, username string) error {
	if h.flavor == "slack" {
		text = slackify(text)
	}
	payload := map[string]any{"text": text}
	if channel == "" {
		channel = h.channel
	}
	if username == "" {
		username = h.username
	}
	if channel != "" {
		payload["channel"] = channel
	}
	if username != "" {
		payload["username"] = username
	}
	body, _ := json.Marshal(payload)
	reqCtx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("chat: cannot build the request to the %s", h)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.conn.HTTP().Do(req)
	if err != nil {
		// *url.Error quotes the whole URL, which is the secret: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("chat: posting to the %s: %v", h, ctx.Err())
		}
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within %s (the connection's timeout setting)", h.timeout)
		}
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "dial" {
			return engine.Transient(fmt.Errorf("chat: cannot connect to the %s: %v", h, err))
		}
		return &ambiguousError{engine.Transient(fmt.Errorf("chat: posting to the %s failed: %v (the message may or may not have been posted)", h, err))}
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	return h.explain(resp, rb)
}

// mmAppError is Mattermost's error body.
type mmAppError struct {
	ID            string `json:"id"`
	Message       string `json:"message"`
	DetailedError string `json:"detailed_error"`
	RequestID     string `json:"request_id"`
	StatusCode    int    `json:"status_code"`
}

var slackHints = map[string]string{
	"invalid_payload": "the JSON payload was refused (a bug in runbook, or a proxy rewriting the body)",
	"no_text":         "the message text is empty",
	"missing_text_or_fallback_or_attachments": "the message text is empty",
	"user_not_found":                    "the user named in channel does not exist",
	"channel_not_found":                 "the channel does not exist or the app is not in it: check channel",
	"channel_is_archived":               "the webhook's channel is archived: unarchive it or make a new webhook",
	"action_prohibited":                 "a workspace admin restricted posting to this channel",
	"invalid_token":                     "the webhook was revoked or its URL is wrong",
	"no_service":                        "the webhook does not exist or was removed",
	"no_service_id":                     "the webhook URL is malformed",
	"no_team":                           "the workspace of the webhook no longer exists",
	"team_disabled":                     "the workspace of the webhook is disabled",
	"posting_to_general_channel_denied": "only admins may post to the general channel",
	"rollup_error":                      "Slack had an internal error",
}

func (h *chatHook) explain(resp *http.Response, body []byte) error {
	code := resp.StatusCode
	var detail string
	if h.flavor == "mattermost" {
		var ae mmAppError
		if json.Unmarshal(body, &ae) == nil && (ae.ID != "" || ae.Message != "") {
			detail = fmt.Sprintf("%s (%s)", strings.TrimSpace(ae.Message), ae.ID)
			if ae.DetailedError != "" {
				detail += ": " + ae.DetailedError
			}
		}
	} else {
		s := strings.TrimSpace(string(body))
		if hint, ok := slackHints[s]; ok {
			detail = s + ": " + hint
		}
	}
	if detail == "" {
		detail = strings.TrimSpace(string(body))
		if len(detail) > 200 {
			cut := 200 // at a character's start, so the message stays valid UTF-8
			for cut > 0 && !utf8.RuneStart(detail[cut]) {
				cut--
			}
			detail = detail[:cut] + "…"
		}
	}
	if detail == "" {
		detail = http.StatusText(code)
	}
	if detail == "" { // a status code without a standard name, and an empty body
		detail = "the answer says nothing more"
	}
	err := fmt.Errorf("chat: %d from the %s: %s", code, h, detail)
	switch {
	case code == http.StatusTooManyRequests:
		return engine.RetryAfter(err, retryAfter(resp.Header.Get("Retry-After")))
	case code >= 500:
		return engine.Transient(err)
	case code == http.StatusUnauthorized || code == http.StatusForbidden || code == http.StatusNotFound:
		return fmt.Errorf("%w; check the webhook URL in %s", err, h.conn.SecretSource("the connection's url"))
	}
	return err
}

// timeoutOf is the connection's per-request timeout setting (default 30s).
func timeoutOf(conn *engine.Connection) (time.Duration, error) {
	d, err := engine.ParseDuration(conn.Setting("timeout", "30s"))
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s connection %q: timeout %q is not a positive duration", conn.Type, conn.Name, conn.Setting("timeout", ""))
	}
	return d, nil
}

// retryAfter reads Retry-After as seconds or an HTTP date; 30s when absent.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 30 * time.Second
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
		return time.Second
	}
	return 30 * time.Second
}

var (
	mdLink = regexp.MustCompile(`\[([^\]]+)\]\((https?://[^)\s]+)\)`)
	mdBold = regexp.MustCompile(`\*\*([^*]+)\*\*`)
)

// slackify turns the common Markdown of playbook templates into Slack's mrkdwn: links
// [t](u) become <u|t> and **bold** becomes *bold*. Mattermost renders Markdown itself.
func slackify(s string) string {
	s = mdLink.ReplaceAllString(s, "<$2|$1>")
	return mdBold.ReplaceAllString(s, "*$1*")
}

// ambiguousError marks a failure after which the post may have arrived.
type ambiguousError struct{ error }

func (e *ambiguousError) Unwrap() error { return e.error }

// chatRecord is what the journal keeps of a delivered post (or, with State, of an attempt).
type chatRecord struct {
	Hook  string    `json:"hook"`
	At    time.Time `json:"at"`
	State string    `json:"state,omitempty"` // "posting", or "not posted" after a definite failure
}

// deliverChat posts text unless the journal says it was posted in this run.
func deliverChat(ctx context.Context, sc *engine.StepContext, connName, key, text, channel, username string) error {
	doneKey := journalKey(sc, key+".delivered")
	var rec chatRecord
	if sc.Recall(doneKey, &rec) {
		sc.Logf("the chat message was already posted to the %s at %s; not posting it again", rec.Hook, rec.At.Format(time.RFC3339))
		return nil
	}
	conn, err := sc.Connection(connName, "chat")
	if err != nil {
		return err
	}
	h, err := chatHookOf(conn)
	if err != nil {
		return err
	}
	intentKey := journalKey(sc, key+".posting")
	if sc.Recall(intentKey, &rec) && rec.State != "not posted" {
		if err := unsure(sc, "the chat message", "posted"); err != nil {
			return err
		}
	}
	rec = chatRecord{Hook: h.String(), At: sc.Now(), State: "posting"}
	if err := sc.Record(intentKey, rec); err != nil {
		return err
	}
	sc.Logf("posting to the %s", h)
	if err := h.post(ctx, text, channel, username); err != nil {
		var amb *ambiguousError
		if !errors.As(err, &amb) {
			failed := rec
			failed.State = "not posted"
			_ = sc.Record(intentKey, failed)
		}
		return err
	}
	rec.At, rec.State = sc.Now(), ""
	if err := sc.Record(doneKey, rec); err != nil {
		return fmt.Errorf("chat: the message was posted but the journal could not record it (a resume would post it again): %w", err)
	}
	sc.Logf("posted to the %s", h)
	return nil
}

// Validate checks the text is not empty.
func (c *Chat) Validate() error {
	if strings.TrimSpace(c.Text) == "" {
		return fmt.Errorf("notify.chat: text is empty")
	}
	return nil
}

// Plan says where the message would go; it does not post or read the webhook secret.
func (c *Chat) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	conn, err := sc.Connection(c.Connection, "chat")
	if err != nil {
		return engine.Plan{}, err
	}
	flavor, err := flavorOf(conn, conn.URL)
	if err != nil {
		return engine.Plan{}, err
	}
	var rec chatRecord
	if sc.Recall(journalKey(sc, "chat.delivered"), &rec) {
		return engine.Plan{Action: "chat message was already posted to the " + rec.Hook, NoChange: true}, nil
	}
	where := fmt.Sprintf("%s webhook of connection %q", flavor, conn.Name)
	if ch := firstNonEmpty(c.Channel, conn.Setting("channel", "")); ch != "" {
		where += " in " + ch
	}
	text := sc.Show("text", c.Text)
	if len(text) > 120 {
		text = text[:120] + "…"
	}
	return engine.Plan{Action: "post to the " + where, Details: []string{"text: " + text}}, nil
}

// Run posts the message once per run (and foreach item).
func (c *Chat) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	if err := deliverChat(ctx, sc, c.Connection, "chat", c.Text, c.Channel, c.Username); err != nil {
		return nil, err
	}
	return engine.Outputs{"delivered": true}, nil
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

func init() {
	engine.Register(engine.StepType{
		Name:       "notify.chat",
		Summary:    "Post a message to a Slack or Mattermost incoming webhook, once per run",
		Connection: "chat",
		New:        func() engine.Step { return &Chat{} },
		Outputs: []engine.Output{
			{Name: "delivered", Type: engine.TypeBool, Desc: "true once the webhook answered ok (now or in an earlier attempt)"},
		},
	})
}
