package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cessda/runbook/engine"
	gsmtp "github.com/wneessen/go-mail/smtp"
)

// Preflight checks, sending nothing, that the SMTP server takes the connection's login
// and that every recipient resolves to an address.
func (e *Email) Preflight(ctx context.Context, sc *engine.StepContext) error {
	var errs []error
	if err := checkSMTP(ctx, sc, e.Connection); err != nil {
		errs = append(errs, err)
	}
	for _, f := range []struct {
		param string
		addrs []string
	}{{"to", e.To}, {"cc", e.Cc}, {"reply_to", []string{e.ReplyTo}}} {
		if sc.Unknown(f.param) {
			continue
		}
		for _, a := range f.addrs {
			if a == "" && f.param == "reply_to" {
				continue
			}
			if _, err := parseAddress(a); err != nil {
				errs = append(errs, fmt.Errorf("notify.email: %s: %q is not an e-mail address", f.param, a))
			}
		}
	}
	if e.ToRole != "" && !sc.Unknown("to_role") {
		people := sc.RolePeople(e.ToRole)
		var none []string
		for _, p := range people {
			if p.Email == "" {
				none = append(none, p.Login)
			}
		}
		switch {
		case len(people) == 0:
			errs = append(errs, fmt.Errorf("notify.email: role %q has nobody in it: add people to roles.%s in the playbook", e.ToRole, e.ToRole))
		case len(none) > 0:
			errs = append(errs, fmt.Errorf("notify.email: %s in role %q %s no e-mail address in people: and would get no e-mail: add email: to %s",
				strings.Join(none, ", "), e.ToRole, has(len(none)), them(len(none))))
		}
	}
	return errors.Join(errs...)
}

// Preflight checks, posting nothing, that the webhook is configured and well formed.
// An incoming webhook has no read-only call: any request to it is a post.
func (c *Chat) Preflight(ctx context.Context, sc *engine.StepContext) error {
	return checkChat(sc, c.Connection)
}

// Preflight checks the connections of the channels the role is told through, and that
// each of its people can be reached by one of them.
func (r *Role) Preflight(ctx context.Context, sc *engine.StepContext) error {
	var errs []error
	people := sc.RolePeople(r.Role)
	if len(people) == 0 {
		errs = append(errs, fmt.Errorf("notify.role: role %q has nobody in it: add people to roles.%s in the playbook", r.Role, r.Role))
	}
	var unreachable []string
	reaches := map[string]bool{}
	for _, p := range people {
		email, chat := r.uses("email") && p.Email != "", r.uses("chat") && p.Chat != ""
		reaches["email"] = reaches["email"] || email
		reaches["chat"] = reaches["chat"] || chat
		if !email && !chat {
			unreachable = append(unreachable, p.Login)
		}
	}
	need := map[string]string{"email": "an e-mail address (email:)", "chat": "a chat handle (chat:)"}
	var wants []string
	for _, ch := range r.Channels {
		wants = append(wants, need[ch])
	}
	if len(unreachable) > 0 {
		what := "no " + strings.TrimPrefix(strings.TrimPrefix(wants[0], "an "), "a ")
		if len(wants) > 1 {
			what = "neither " + strings.Join(wants, " nor ")
		}
		errs = append(errs, fmt.Errorf("notify.role: %s in role %q %s %s in people: and would not be told: add it to %s",
			strings.Join(unreachable, ", "), r.Role, has(len(unreachable)), what, them(len(unreachable))))
	}
	if len(people) > 0 && len(r.Channels) > 1 {
		for _, ch := range r.Channels {
			if !reaches[ch] && len(unreachable) < len(people) {
				errs = append(errs, fmt.Errorf("notify.role: nobody in role %q has %s, so the %s channel would tell nobody: add it to them in people:, or drop %s from channels", r.Role, need[ch], ch, ch))
			}
		}
	}
	if r.uses("email") {
		if err := checkSMTP(ctx, sc, r.EmailConnection); err != nil {
			errs = append(errs, err)
		}
	}
	if r.uses("chat") {
		if err := checkChat(sc, r.ChatConnection); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func has(n int) string {
	if n == 1 {
		return "has"
	}
	return "have"
}

func them(n int) string {
	if n == 1 {
		return "them"
	}
	return "each of them"
}

// checkSMTP checks an smtp connection's login once per connection.
func checkSMTP(ctx context.Context, sc *engine.StepContext, name string) error {
	conn, err := sc.Connection(name, "smtp")
	if err != nil {
		return err
	}
	srv, err := smtpServerOf(conn)
	if err != nil {
		return err
	}
	return sc.Once("smtp login "+conn.Name, func() error {
		if err := srv.checkLogin(ctx); err != nil {
			return fmt.Errorf("smtp connection %q: %s", conn.Name, strings.TrimPrefix(err.Error(), "smtp: "))
		}
		return nil
	})
}

// checkLogin does what sending does up to MAIL FROM: connect, EHLO, STARTTLS as the
// connection's starttls setting asks, AUTH with the mechanism go-mail would choose when a
// username is set; then QUIT. No MAIL, RCPT or DATA: nothing can be sent. It speaks
// through go-mail's smtp package rather than go-mail's Client, which cannot stop before
// sending and leaves the connection open when the login is refused.
func (s *smtpServer) checkLogin(ctx context.Context) error {
	tlsCfg, err := s.tlsConfig()
	if err != nil {
		return err
	}
	timeout, err := timeoutOf(s.conn)
	if err != nil {
		return err
	}
	var pass string
	if s.username != "" {
		if pass, err = s.conn.Secret(); err != nil {
			return fmt.Errorf("smtp: no password for user %q at %s: %w", s.username, s, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addr := net.JoinHostPort(s.host, strconv.Itoa(s.port))
	dialer := &net.Dialer{}
	var nc net.Conn
	if s.implicit {
		nc, err = (&tls.Dialer{NetDialer: dialer, Config: tlsCfg}).DialContext(ctx, "tcp", addr)
	} else {
		nc, err = dialer.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return s.explain(err)
	}
	defer nc.Close()
	defer context.AfterFunc(ctx, func() { nc.Close() })() // a server that stops answering ends with ctx
	_ = nc.SetDeadline(time.Now().Add(timeout))
	c, err := gsmtp.NewClient(nc, s.host)
	if err != nil {
		return s.explain(err)
	}
	quit := func(err error) error {
		_ = c.Quit() // say goodbye after a refusal too; the answer does not matter
		return err
	}
	helo, _ := os.Hostname() // as go-mail says it
	if helo == "" {
		helo = "localhost"
	}
	if err := c.Hello(helo); err != nil {
		return quit(s.explain(err))
	}
	encrypted := s.implicit
	if !s.implicit && s.starttls != "none" {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(tlsCfg); err != nil {
				return s.explain(err) // the connection is unusable after a failed handshake
			}
			encrypted = true
		} else if s.starttls == "required" {
			return quit(fmt.Errorf("smtp: %s does not offer STARTTLS; use smtps:// if it speaks TLS on connect, or set starttls: opportunistic/none only for a server on a trusted network", s))
		}
	}
	if s.username != "" {
		ok, mechs := c.Extension("AUTH")
		if !ok {
			return quit(fmt.Errorf("smtp: %s offers no AUTH (AUTH is often only offered after STARTTLS): check starttls and the server's configuration, or remove username if it needs no login", s))
		}
		a, err := s.authFor(c, strings.Fields(mechs), pass, encrypted)
		if err != nil {
			return quit(err)
		}
		if err := c.Auth(a); err != nil {
			return quit(s.explain(err))
		}
	}
	_ = c.Quit() // the check passed; a lost goodbye changes nothing
	return nil
}

// authFor picks the AUTH mechanism as go-mail's Client does for the auth setting: plain
// or login as asked, or for auto the strongest the server offers (PLAIN and LOGIN only
// over TLS).
func (s *smtpServer) authFor(c *gsmtp.Client, offered []string, pass string, encrypted bool) (gsmtp.Auth, error) {
	user := s.username
	pick := map[string]func() (gsmtp.Auth, error){
		"SCRAM-SHA-256-PLUS": func() (gsmtp.Auth, error) {
			st, err := c.GetTLSConnectionState()
			return gsmtp.ScramSHA256PlusAuth(user, pass, st), err
		},
		"SCRAM-SHA-256": func() (gsmtp.Auth, error) { return gsmtp.ScramSHA256Auth(user, pass), nil },
		"SCRAM-SHA-1-PLUS": func() (gsmtp.Auth, error) {
			st, err := c.GetTLSConnectionState()
			return gsmtp.ScramSHA1PlusAuth(user, pass, st), err
		},
		"SCRAM-SHA-1": func() (gsmtp.Auth, error) { return gsmtp.ScramSHA1Auth(user, pass), nil },
		"NTLM":        func() (gsmtp.Auth, error) { return gsmtp.NTLMAuth(user, pass, ""), nil },
		"CRAM-MD5":    func() (gsmtp.Auth, error) { return gsmtp.CRAMMD5Auth(user, pass), nil },
		"PLAIN":       func() (gsmtp.Auth, error) { return gsmtp.PlainAuth("", user, pass, s.host, false), nil },
		"LOGIN":       func() (gsmtp.Auth, error) { return gsmtp.LoginAuth(user, pass, s.host, false), nil },
	}
	prefer := []string{"SCRAM-SHA-256", "SCRAM-SHA-1", "NTLM", "CRAM-MD5"}
	if encrypted {
		prefer = []string{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-1", "NTLM", "CRAM-MD5", "PLAIN", "LOGIN"}
	}
	switch s.auth {
	case "plain", "login":
		prefer = []string{strings.ToUpper(s.auth)}
	}
	for _, m := range prefer {
		if slices.Contains(offered, m) {
			return pick[m]()
		}
	}
	if s.auth != "auto" {
		return nil, fmt.Errorf("smtp: %s does not offer AUTH %s (it offers %s): set auth: auto, or the mechanism it offers", s, strings.ToUpper(s.auth), strings.Join(offered, " "))
	}
	why := ""
	if !encrypted {
		why = "; PLAIN and LOGIN are only used over TLS"
	}
	return nil, fmt.Errorf("smtp: %s offers no AUTH mechanism the client can use (it offers %s%s): check starttls and the server's configuration", s, strings.Join(offered, " "), why)
}

var (
	slackHookPath      = regexp.MustCompile(`^/services/[A-Za-z0-9]+/[A-Za-z0-9]+/[A-Za-z0-9]+$`)
	mattermostHookPath = regexp.MustCompile(`/hooks/[A-Za-z0-9]+$`)
)

// checkChat checks a chat connection once: the webhook URL is there (url or secret), is
// an http(s) URL of the flavor's shape, and travels encrypted. It never contacts the
// hook, and never shows its URL (the URL is the secret).
func checkChat(sc *engine.StepContext, name string) error {
	conn, err := sc.Connection(name, "chat")
	if err != nil {
		return err
	}
	return sc.Once("chat hook "+conn.Name, func() error {
		h, err := chatHookOf(conn)
		if err != nil {
			return err
		}
		u, _ := url.Parse(h.url) // chatHookOf parsed it
		from := conn.SecretSource("its url")
		switch {
		case h.flavor == "slack" && !slackHookPath.MatchString(u.Path):
			return fmt.Errorf("chat connection %q: the webhook URL (from %s) is not a Slack incoming webhook, which looks like https://hooks.slack.com/services/T…/B…/X…: copy it again from the app's Incoming Webhooks page, or set flavor: mattermost", conn.Name, from)
		case h.flavor == "mattermost" && !mattermostHookPath.MatchString(u.Path):
			return fmt.Errorf("chat connection %q: the webhook URL (from %s) is not a Mattermost incoming webhook, which looks like https://HOST/hooks/ID: copy it again from Integrations > Incoming Webhooks, or set flavor: slack", conn.Name, from)
		case u.Scheme == "http" && !isLoopback(u.Hostname()):
			return fmt.Errorf("chat connection %q: the webhook URL (from %s) is plain http: its secret path would cross the network unencrypted; use the https URL", conn.Name, from)
		}
		return nil
	})
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
