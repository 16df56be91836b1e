package notify

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/cessda/runbook/engine"
)

// Role is the notify.role step: tell the people of a role something (for example the
// service owner that production is verified and wider tests can start) by e-mail, chat
// or both.
type Role struct {
	Role            string   `json:"role" required:"true" desc:"the role to tell, e.g. service_owner"`
	Message         string   `json:"message" required:"true" desc:"what to tell them (already rendered); the e-mail body and the chat text"`
	Subject         string   `json:"subject" desc:"e-mail subject (default: the first line of message)"`
	Channels        []string `json:"channels" default:"[email]" desc:"how to reach them: email, chat, or both"`
	BodyFormat      string   `json:"body_format" default:"text" enum:"text,markdown" desc:"text, or markdown (adds an HTML alternative to the e-mail)"`
	EmailConnection string   `json:"email_connection" desc:"the smtp connection (default: the playbook's only one)"`
	ChatConnection  string   `json:"chat_connection" desc:"the chat connection (default: the playbook's only one)"`
}

// Validate checks the channels.
func (r *Role) Validate() error {
	if len(r.Channels) == 0 {
		return fmt.Errorf("notify.role: channels is empty; give email, chat or both")
	}
	for _, c := range r.Channels {
		if c != "email" && c != "chat" {
			return fmt.Errorf("notify.role: channel %q is neither email nor chat", c)
		}
	}
	return nil
}

// Default takes the subject from the message's first line.
func (r *Role) Default() {
	if r.Subject == "" {
		first, _, _ := strings.Cut(strings.TrimSpace(r.Message), "\n")
		r.Subject = strings.TrimLeft(first, "# ")
	}
}

func (r *Role) uses(ch string) bool {
	for _, c := range r.Channels {
		if c == ch {
			return true
		}
	}
	return false
}

// reach works out who each channel reaches: e-mail addresses and chat handles by login.
func (r *Role) reach(sc *engine.StepContext) (emails, handles map[string]string, missing []string, err error) {
	people := sc.RolePeople(r.Role)
	if len(people) == 0 {
		return nil, nil, nil, fmt.Errorf("notify.role: role %q has nobody in it: add people to roles.%s in the playbook", r.Role, r.Role)
	}
	emails, handles = map[string]string{}, map[string]string{}
	for _, p := range people {
		reached := false
		if r.uses("email") && p.Email != "" {
			emails[p.Login] = addressOf(p)
			reached = true
		}
		if r.uses("chat") && p.Chat != "" {
			handles[p.Login] = p.Chat
			reached = true
		}
		if !reached {
			missing = append(missing, p.Login)
		}
	}
	if len(emails) == 0 && len(handles) == 0 {
		return nil, nil, nil, fmt.Errorf("notify.role: nobody in role %q can be reached by %s: give them email or chat in people:", r.Role, strings.Join(r.Channels, " or "))
	}
	return emails, handles, missing, nil
}

// Plan says who would be told how; it sends nothing.
func (r *Role) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	emails, handles, missing, err := r.reach(sc)
	if err != nil {
		return engine.Plan{}, err
	}
	var details []string
	if r.uses("email") {
		conn, err := sc.Connection(r.EmailConnection, "smtp")
		if err != nil {
			return engine.Plan{}, err
		}
		if _, err := smtpServerOf(conn); err != nil {
			return engine.Plan{}, err
		}
		var rec emailRecord
		if sc.Recall(journalKey(sc, "role.email.sent"), &rec) {
			details = append(details, "e-mail already sent ("+rec.MessageID+")")
		} else if len(emails) > 0 {
			details = append(details, fmt.Sprintf("e-mail %q to %s", sc.Show("subject", r.Subject), strings.Join(sortedValues(emails), ", ")))
		}
	}
	if r.uses("chat") {
		conn, err := sc.Connection(r.ChatConnection, "chat")
		if err != nil {
			return engine.Plan{}, err
		}
		var rec chatRecord
		if sc.Recall(journalKey(sc, "role.chat.delivered"), &rec) {
			details = append(details, "chat message already posted")
		} else if len(handles) > 0 {
			details = append(details, fmt.Sprintf("chat message on connection %q mentioning %s", conn.Name, strings.Join(sortedValues(handles), " ")))
		}
	}
	for _, m := range missing {
		details = append(details, fmt.Sprintf("%s has no %s in people: and is not told", m, strings.Join(r.Channels, " or ")))
	}
	return engine.Plan{Action: fmt.Sprintf("tell role %s: %s", r.Role, sc.Show("subject", r.Subject)), Details: details}, nil
}

// Run tells the role through each channel once; a channel that already delivered in an
// earlier attempt is not used again, so a chat failure does not resend the e-mail.
func (r *Role) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	emails, handles, missing, err := r.reach(sc)
	if err != nil {
		return nil, err
	}
	for _, m := range missing {
		sc.Logf("%s (role %s) has no %s in people: and is not told", m, r.Role, strings.Join(r.Channels, " or "))
	}
	notified := map[string]bool{}
	if r.uses("email") && len(emails) > 0 {
		spec := emailSpec{to: sortedValues(emails), subject: r.Subject, body: r.Message, bodyFormat: r.BodyFormat, key: "role.email"}
		if _, err := deliverEmail(ctx, sc, r.EmailConnection, spec); err != nil {
			return nil, err
		}
		for login := range emails {
			notified[login] = true
		}
	}
	if r.uses("chat") && len(handles) > 0 {
		text := strings.Join(sortedValues(handles), " ") + " " + r.Message
		if err := deliverChat(ctx, sc, r.ChatConnection, "role.chat", text, "", ""); err != nil {
			return nil, err
		}
		for login := range handles {
			notified[login] = true
		}
	}
	out := make([]string, 0, len(notified))
	for l := range notified {
		out = append(out, l)
	}
	sort.Strings(out)
	return engine.Outputs{"notified": out}, nil
}

func sortedValues(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	return out
}

func init() {
	engine.Register(engine.StepType{
		Name:    "notify.role",
		Summary: "Tell the people of a role (e.g. the service owner) something by e-mail and/or chat, once per run",
		New:     func() engine.Step { return &Role{} },
		Outputs: []engine.Output{
			{Name: "notified", Type: engine.ListOf(engine.TypeString), Desc: "logins of the people told through at least one channel"},
		},
		Doc: "E-mail goes to the role's people's addresses; the chat message starts with their chat handles (Mattermost @name; for Slack give handles as <@U123>).",
	})
}
