package notify

import (
	"bytes"
	"context"
	"fmt"
	netmail "net/mail"
	"sort"
	"strings"
	"time"

	"github.com/cessda/runbook/engine"
	mail "github.com/wneessen/go-mail"
	"github.com/yuin/goldmark"
)

// Email is the notify.email step: one message to a list of addresses and/or a role.
type Email struct {
	Connection string   `json:"connection" desc:"the smtp connection to send through (default: the playbook's only smtp connection)"`
	To         []string `json:"to" desc:"recipient addresses (\"Name <a@b>\" or a@b)"`
	ToRole     string   `json:"to_role" desc:"a role whose people (their e-mail addresses in people:) are added to the recipients"`
	Cc         []string `json:"cc" desc:"copy addresses"`
	ReplyTo    string   `json:"reply_to" desc:"Reply-To address"`
	Subject    string   `json:"subject" required:"true" desc:"subject line"`
	Body       string   `json:"body" required:"true" desc:"message body (already rendered from ${{ }} templates)"`
	BodyFormat string   `json:"body_format" default:"text" enum:"text,markdown" desc:"text: sent as text/plain; markdown: sent as text/plain with an HTML alternative rendered from it"`
}

// Validate checks that there is someone to write to.
func (e *Email) Validate() error {
	if len(e.To) == 0 && e.ToRole == "" && len(e.Cc) == 0 {
		return fmt.Errorf("notify.email needs to, to_role or cc")
	}
	for _, a := range append(append([]string{}, e.To...), e.Cc...) {
		if _, err := parseAddress(a); err != nil && !strings.Contains(a, "${{") {
			return fmt.Errorf("notify.email: %q is not an e-mail address", a)
		}
	}
	return nil
}

// emailSpec is what to send, shared by notify.email and notify.role.
type emailSpec struct {
	to, cc     []string
	replyTo    string
	subject    string
	body       string
	bodyFormat string
	key        string // journal key prefix
}

// emailRecord is what the journal keeps of a sent message.
type emailRecord struct {
	MessageID  string   `json:"message_id"`
	Recipients []string `json:"recipients"`
	Server     string   `json:"server"`
	// State of an intent record: "sending", or "not sent" after a failure the server
	// answered (so the message certainly did not go).
	State string    `json:"state,omitempty"`
	At    time.Time `json:"at"`
}

func (e *Email) spec(sc *engine.StepContext) (emailSpec, error) {
	to := append([]string{}, e.To...)
	if e.ToRole != "" {
		people := sc.RolePeople(e.ToRole)
		if len(people) == 0 {
			return emailSpec{}, fmt.Errorf("notify.email: role %q has nobody in it: add people to roles.%s in the playbook", e.ToRole, e.ToRole)
		}
		for _, p := range people {
			if p.Email == "" {
				sc.Logf("%s (role %s) has no e-mail address in people: and gets no e-mail", p.Login, e.ToRole)
				continue
			}
			to = append(to, addressOf(p))
		}
	}
	if len(to) == 0 && len(e.Cc) == 0 {
		return emailSpec{}, fmt.Errorf("notify.email: nobody to write to: role %q has no e-mail addresses in people:", e.ToRole)
	}
	return emailSpec{to: to, cc: e.Cc, replyTo: e.ReplyTo, subject: e.Subject, body: e.Body, bodyFormat: e.BodyFormat, key: "email"}, nil
}

// Plan says whom the message would go to; it neither connects nor reads the password.
func (e *Email) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	conn, err := sc.Connection(e.Connection, "smtp")
	if err != nil {
		return engine.Plan{}, err
	}
	srv, err := smtpServerOf(conn)
	if err != nil {
		return engine.Plan{}, err
	}
	var rec emailRecord
	if sc.Recall(journalKey(sc, "email.sent"), &rec) {
		return engine.Plan{Action: fmt.Sprintf("e-mail %q was already sent", e.Subject), NoChange: true,
			Details: []string{"Message-ID " + rec.MessageID, "to " + strings.Join(rec.Recipients, ", ")}}, nil
	}
	recipients := sc.Show("to", strings.Join(e.To, ", "))
	if e.ToRole != "" {
		var addrs []string
		for _, p := range sc.RolePeople(e.ToRole) {
			if p.Email != "" {
				addrs = append(addrs, p.Email)
			}
		}
		if recipients != "" {
			recipients += ", "
		}
		recipients += fmt.Sprintf("role %s (%s)", e.ToRole, strings.Join(addrs, ", "))
	}
	details := []string{"to " + recipients}
	if len(e.Cc) > 0 {
		details = append(details, "cc "+sc.Show("cc", strings.Join(e.Cc, ", ")))
	}
	details = append(details, "from "+srv.from+" through "+srv.String())
	return engine.Plan{Action: fmt.Sprintf("send e-mail %q", sc.Show("subject", e.Subject)), Details: details}, nil
}

// Run sends the message once per run (and foreach item).
func (e *Email) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	spec, err := e.spec(sc)
	if err != nil {
		return nil, err
	}
	rec, err := deliverEmail(ctx, sc, e.Connection, spec)
	if err != nil {
		return nil, err
	}
	return engine.Outputs{"message_id": rec.MessageID, "recipients": rec.Recipients}, nil
}

// deliverEmail sends spec unless the journal says it was sent. The Message-ID is derived
// from the run, the step and the foreach item, so a message sent again after a crash in
// the window between the server's 250 and the journal write carries the same Message-ID.
func deliverEmail(ctx context.Context, sc *engine.StepContext, connName string, spec emailSpec) (emailRecord, error) {
	sentKey := journalKey(sc, spec.key+".sent")
	var rec emailRecord
	if sc.Recall(sentKey, &rec) {
		sc.Logf("e-mail %q was already sent at %s (Message-ID %s); not sending it again", spec.subject, rec.At.Format(time.RFC3339), rec.MessageID)
		return rec, nil
	}
	conn, err := sc.Connection(connName, "smtp")
	if err != nil {
		return rec, err
	}
	srv, err := smtpServerOf(conn)
	if err != nil {
		return rec, err
	}
	from, _ := parseAddress(srv.from)
	domain := "runbook.invalid"
	if i := strings.LastIndex(from.Address, "@"); i >= 0 {
		domain = from.Address[i+1:]
	}
	msgID := fmt.Sprintf("runbook.%s@%s", idempotencyKey(sc), domain)

	m := mail.NewMsg()
	if err := m.From(srv.from); err != nil {
		return rec, fmt.Errorf("notify.email: from %q: %v", srv.from, err)
	}
	if len(spec.to) > 0 {
		if err := m.To(spec.to...); err != nil {
			return rec, fmt.Errorf("notify.email: to: %v", err)
		}
	}
	if len(spec.cc) > 0 {
		if err := m.Cc(spec.cc...); err != nil {
			return rec, fmt.Errorf("notify.email: cc: %v", err)
		}
	}
	if spec.replyTo != "" {
		if err := m.ReplyTo(spec.replyTo); err != nil {
			return rec, fmt.Errorf("notify.email: reply_to: %v", err)
		}
	}
	m.Subject(spec.subject)
	m.SetMessageIDWithValue(msgID)
	m.SetDateWithValue(sc.Now())
	m.SetUserAgent("runbook")
	m.SetBodyString(mail.TypeTextPlain, spec.body)
	if spec.bodyFormat == "markdown" {
		var html bytes.Buffer
		if err := goldmark.Convert([]byte(spec.body), &html); err == nil {
			m.AddAlternativeString(mail.TypeTextHTML, html.String())
		}
	}
	recipients := envelope(spec)

	intentKey := journalKey(sc, spec.key+".sending")
	var prev emailRecord
	if sc.Recall(intentKey, &prev) && prev.State != "not sent" {
		if err := unsure(sc, fmt.Sprintf("e-mail %q", spec.subject), "sent"); err != nil {
			return rec, err
		}
	}
	rec = emailRecord{MessageID: "<" + msgID + ">", Recipients: recipients, Server: srv.String(), At: sc.Now(), State: "sending"}
	if err := sc.Record(intentKey, rec); err != nil {
		return rec, err
	}
	sc.Logf("sending e-mail %q to %s through %s", spec.subject, strings.Join(recipients, ", "), srv)
	if ambiguous, err := srv.send(ctx, m); err != nil {
		if !ambiguous {
			failed := rec
			failed.State = "not sent"
			_ = sc.Record(intentKey, failed)
		}
		return rec, err
	}
	rec.At, rec.State = sc.Now(), ""
	if err := sc.Record(sentKey, rec); err != nil {
		return rec, fmt.Errorf("notify.email: the message was sent but the journal could not record it (a resume would send it again): %w", err)
	}
	sc.Logf("sent e-mail %s", rec.MessageID)
	return rec, nil
}

// envelope lists the recipients' bare addresses, without duplicates, sorted.
func envelope(spec emailSpec) []string {
	seen := map[string]bool{}
	var out []string
	for _, a := range append(append([]string{}, spec.to...), spec.cc...) {
		addr, err := parseAddress(a)
		if err != nil {
			continue
		}
		k := strings.ToLower(addr.Address)
		if !seen[k] {
			seen[k] = true
			out = append(out, addr.Address)
		}
	}
	sort.Strings(out)
	return out
}

func parseAddress(a string) (*netmail.Address, error) { return netmail.ParseAddress(a) }

// addressOf formats a person as "Name <addr>".
func addressOf(p engine.Person) string {
	if p.Name == "" {
		return p.Email
	}
	return (&netmail.Address{Name: p.Name, Address: p.Email}).String()
}

func init() {
	engine.Register(engine.StepType{
		Name:       "notify.email",
		Summary:    "Send an e-mail (announcement, notice to a role) through an SMTP server, once per run",
		Connection: "smtp",
		New:        func() engine.Step { return &Email{} },
		Outputs: []engine.Output{
			{Name: "message_id", Type: engine.TypeString, Desc: "the Message-ID header of the message, <…@domain>"},
			{Name: "recipients", Type: engine.ListOf(engine.TypeString), Desc: "the addresses the message went to (to and cc)"},
		},
		Doc: "Sends over STARTTLS (or SMTPS) with AUTH. The Message-ID is derived from the run and step, and the journal records the sent message, so a re-run sends nothing.",
	})
}

// unsure decides what to do when an earlier attempt may have delivered a message: the
// process stopped (or the connection dropped) after sending and before the journal
// recorded the answer, and neither a webhook nor SMTP can be asked whether it arrived.
// Sending again could announce a release twice, so a person decides: the step waits
// until `runbook resume RUN --confirm STEP` (send it again) or `--skip STEP` (it arrived).
func unsure(sc *engine.StepContext, what, verb string) error {
	var c engine.Confirmation
	if sc.Recall("confirmation", &c) && c.Answer == "yes" {
		sc.Logf("an earlier attempt may have %s %s; %s confirmed sending it again", verb, what, c.By)
		return nil
	}
	return engine.Waiting("%s may already have been %s by an earlier attempt that stopped before its answer was recorded; "+
		"check, then: runbook resume %s --skip %s --reason \"it arrived\", or --confirm %s to send it again", what, verb, sc.RunID, sc.StepID, sc.StepID)
}
