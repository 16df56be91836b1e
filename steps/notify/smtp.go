package notify

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/cessda/runbook/engine"
	mail "github.com/wneessen/go-mail"
)

// smtpServer is an "smtp" connection, parsed without touching the network or the secret
// (so Plan can use it).
type smtpServer struct {
	conn     *engine.Connection
	host     string
	port     int
	implicit bool // smtps://: TLS from the first byte
	from     string
	username string
	starttls string // required | opportunistic | none
	auth     string // auto | plain | login
}

func smtpServerOf(conn *engine.Connection) (*smtpServer, error) {
	s := &smtpServer{conn: conn}
	if conn.URL == "" {
		return nil, fmt.Errorf("smtp connection %q has no url: set url: smtp://HOST:587 (STARTTLS) or smtps://HOST:465", conn.Name)
	}
	u, err := url.Parse(conn.URL)
	if err != nil || u.Hostname() == "" {
		return nil, fmt.Errorf("smtp connection %q: url %q is not smtp://HOST:PORT or smtps://HOST:PORT", conn.Name, conn.URL)
	}
	switch u.Scheme {
	case "smtp":
		s.port = 587
	case "smtps":
		s.port, s.implicit = 465, true
	default:
		return nil, fmt.Errorf("smtp connection %q: url scheme %q is neither smtp nor smtps", conn.Name, u.Scheme)
	}
	s.host = u.Hostname()
	if p := u.Port(); p != "" {
		if s.port, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("smtp connection %q: bad port in %q", conn.Name, conn.URL)
		}
	}
	s.from = conn.Setting("from", "")
	if s.from == "" {
		return nil, fmt.Errorf("smtp connection %q has no from setting: set from: \"Release bot <releases@example.org>\"", conn.Name)
	}
	if _, err := parseAddress(s.from); err != nil {
		return nil, fmt.Errorf("smtp connection %q: from %q is not an e-mail address", conn.Name, s.from)
	}
	s.username = conn.Setting("username", "")
	s.starttls = conn.Setting("starttls", "required")
	switch s.starttls {
	case "required", "opportunistic", "none":
	default:
		return nil, fmt.Errorf("smtp connection %q: starttls is %q; want required, opportunistic or none", conn.Name, s.starttls)
	}
	s.auth = conn.Setting("auth", "auto")
	switch s.auth {
	case "auto", "plain", "login":
	default:
		return nil, fmt.Errorf("smtp connection %q: auth is %q; want auto, plain or login", conn.Name, s.auth)
	}
	return s, nil
}

// String names the server for logs and errors (never with credentials).
func (s *smtpServer) String() string {
	scheme := "smtp"
	if s.implicit {
		scheme = "smtps"
	}
	return fmt.Sprintf("%s://%s", scheme, net.JoinHostPort(s.host, strconv.Itoa(s.port)))
}

func (s *smtpServer) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{ServerName: s.host, MinVersion: tls.VersionTLS12}
	pool, ok, err := engine.Injected[*x509.CertPool](s.conn)
	if err != nil {
		return nil, fmt.Errorf("smtp: %w", err)
	}
	if ok {
		cfg.RootCAs = pool
	}
	if f := s.conn.Setting("ca_file", ""); f != "" {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("smtp connection %q: cannot read ca_file: %v", s.conn.Name, err)
		}
		if cfg.RootCAs == nil {
			cfg.RootCAs = x509.NewCertPool()
		}
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("smtp connection %q: ca_file %s holds no PEM certificate", s.conn.Name, f)
		}
	}
	if v, _ := strconv.ParseBool(s.conn.Setting("tls_skip_verify", "false")); v {
		cfg.InsecureSkipVerify = true
	}
	return cfg, nil
}

// client builds a go-mail client; it reads the password only when a username is set.
func (s *smtpServer) client() (*mail.Client, error) {
	tlsCfg, err := s.tlsConfig()
	if err != nil {
		return nil, err
	}
	timeout, err := timeoutOf(s.conn)
	if err != nil {
		return nil, err
	}
	opts := []mail.Option{
		mail.WithPort(s.port),
		mail.WithTLSConfig(tlsCfg),
		mail.WithTimeout(timeout),
	}
	if s.implicit {
		opts = append(opts, mail.WithSSL())
	} else {
		policy := map[string]mail.TLSPolicy{"required": mail.TLSMandatory, "opportunistic": mail.TLSOpportunistic, "none": mail.NoTLS}[s.starttls]
		opts = append(opts, mail.WithTLSPolicy(policy))
	}
	if s.username != "" {
		pass, err := s.conn.Secret()
		if err != nil {
			return nil, fmt.Errorf("smtp: no password for user %q at %s: %w", s.username, s, err)
		}
		authType := map[string]mail.SMTPAuthType{"auto": mail.SMTPAuthAutoDiscover, "plain": mail.SMTPAuthPlain, "login": mail.SMTPAuthLogin}[s.auth]
		opts = append(opts, mail.WithSMTPAuth(authType), mail.WithUsername(s.username), mail.WithPassword(pass))
	}
	c, err := mail.NewClient(s.host, opts...)
	if err != nil {
		return nil, fmt.Errorf("smtp: %s: %v", s, err)
	}
	return c, nil
}

// send delivers one message and turns go-mail's errors into ones that name the server and
// what to check, marked Transient when trying again may help.
// ambiguous is true when the server may have taken the message although send failed
// (the connection broke while the message's end or the server's reply was in flight).
func (s *smtpServer) send(ctx context.Context, msg *mail.Msg) (ambiguous bool, err error) {
	c, err := s.client()
	if err != nil {
		return false, err
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		var se *mail.SendError
		ambiguous = errors.As(err, &se) && se.ErrorCode() == 0 &&
			(se.Reason == mail.ErrSMTPDataClose || se.Reason == mail.ErrWriteContent)
		return ambiguous, s.explain(err)
	}
	return false, nil
}

func (s *smtpServer) explain(err error) error {
	var tp *textproto.Error
	if errors.As(err, &tp) {
		return s.explainCode(tp.Code, tp.Msg)
	}
	var se *mail.SendError
	if errors.As(err, &se) {
		code := se.ErrorCode()
		detail := se.Error()
		if code != 0 {
			return s.explainCode(code, detail)
		}
		if se.IsTemp() || isNetErr(err) || strings.Contains(detail, "EOF") {
			if se.Reason == mail.ErrSMTPDataClose || se.Reason == mail.ErrWriteContent {
				detail += " (the server may or may not have taken the message; a retry sends it again with the same Message-ID)"
			}
			return engine.Transient(fmt.Errorf("smtp: sending through %s failed: %s", s, detail))
		}
		return fmt.Errorf("smtp: sending through %s failed: %s", s, detail)
	}
	var certErr *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	if errors.As(err, &certErr) || errors.As(err, &unknownCA) || errors.As(err, &hostErr) {
		return fmt.Errorf("smtp: the TLS certificate of %s is not trusted: %v; set the connection's ca_file to the CA that signed it", s, err)
	}
	msg := err.Error()
	if strings.Contains(msg, "does not support STARTTLS") {
		return fmt.Errorf("smtp: %s does not offer STARTTLS; use smtps:// if it speaks TLS on connect, or set starttls: opportunistic/none only for a server on a trusted network", s)
	}
	if strings.Contains(msg, "does not support SMTP AUTH") || errors.Is(err, mail.ErrNoSupportedAuthDiscovered) {
		return fmt.Errorf("smtp: %s offers no AUTH mechanism the client can use (AUTH is often only offered after STARTTLS): check starttls and the server's configuration", s)
	}
	if isNetErr(err) {
		return engine.Transient(fmt.Errorf("smtp: cannot talk to %s: %v", s, err))
	}
	return fmt.Errorf("smtp: %s: %v", s, err)
}

func (s *smtpServer) explainCode(code int, text string) error {
	text = strings.TrimSpace(text)
	if !strings.Contains(text, strconv.Itoa(code)) {
		text = strconv.Itoa(code) + " " + text
	}
	switch {
	case code == 535 || code == 534 || code == 530 || code == 454 && strings.Contains(strings.ToLower(text), "auth"):
		return fmt.Errorf("smtp: %s refused the login of user %q (%s): check the username setting and the password in %s", s, s.username, text, s.conn.SecretSource("SMTP_PASSWORD"))
	case code >= 400 && code < 500:
		return engine.Transient(fmt.Errorf("smtp: %s answered %s (temporary; will try again)", s, text))
	case code == 550 || code == 551 || code == 553:
		return fmt.Errorf("smtp: %s refused a recipient or the sender (%s): check the addresses and that from is an address the account may send as", s, text)
	}
	return fmt.Errorf("smtp: %s refused the message (%s)", s, text)
}

func isNetErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed)
}

// idempotencyKey derives the stable identity of this step's effect in this run (and
// foreach item), used for the Message-ID and the journal keys.
func idempotencyKey(sc *engine.StepContext) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", sc.RunID, sc.StepID)
	if sc.Item != nil {
		b, _ := json.Marshal(sc.Item)
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:24]
}

// journalKey is the journal key for name, distinct per foreach item.
func journalKey(sc *engine.StepContext, name string) string {
	if sc.Item == nil {
		return name
	}
	b, _ := json.Marshal(sc.Item)
	sum := sha256.Sum256(b)
	return name + ":" + hex.EncodeToString(sum[:8])
}
