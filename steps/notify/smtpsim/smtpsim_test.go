package smtpsim_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/smtp"
	"net/textproto"
	"strings"
	"testing"

	"github.com/cessda/runbook/steps/notify/smtpsim"
)

// The server speaks SMTP as a real submission server does: AUTH only after STARTTLS,
// 535 for wrong credentials, and the message stored with its headers parsed.
func TestServerWithStandardLibraryClient(t *testing.T) {
	srv, err := smtpsim.New(smtpsim.WithAuth("u", "p"))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := smtp.Dial(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("AUTH offered before STARTTLS")
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Fatal("STARTTLS not offered")
	}
	if err := c.StartTLS(&tls.Config{ServerName: "127.0.0.1", RootCAs: srv.CertPool()}); err != nil {
		t.Fatalf("STARTTLS with the exported CA: %v", err)
	}
	err = c.Auth(smtp.PlainAuth("", "u", "wrong", "127.0.0.1"))
	var tp *textproto.Error
	if !errors.As(err, &tp) || tp.Code != 535 {
		t.Fatalf("wrong password: %v, want 535", err)
	}
	// net/smtp quits after a refused AUTH: log in again on a new connection.
	c, err = smtp.Dial(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.StartTLS(&tls.Config{ServerName: "127.0.0.1", RootCAs: srv.CertPool()}); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(smtp.PlainAuth("", "u", "p", "127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("a@example.org"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@example.org"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte("From: A <a@example.org>\r\nTo: b@example.org\r\nSubject: =?utf-8?q?h=C3=A9llo?=\r\nMessage-ID: <x@y>\r\n\r\nbody line\r\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	m := srv.Messages()
	if len(m) != 1 || m[0].Subject != "héllo" || m[0].MessageID != "<x@y>" || m[0].From != "a@example.org" ||
		strings.TrimSpace(m[0].Text) != "body line" || !m[0].TLS || m[0].AuthUser != "u" || srv.AuthFailures() != 1 {
		t.Fatalf("stored %+v, auth failures %d", m, srv.AuthFailures())
	}
}

// The transcript lists the commands with their final replies, without credentials or
// message content; RejectLoginsNext refuses a login whatever the password.
func TestTranscriptAndRejectedLogins(t *testing.T) {
	srv, err := smtpsim.New(smtpsim.WithAuth("u", "secret-pass"))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.RejectLoginsNext(1)
	login := func() *smtp.Client {
		c, err := smtp.Dial(srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if err := c.StartTLS(&tls.Config{ServerName: "127.0.0.1", RootCAs: srv.CertPool()}); err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := login()
	var tp *textproto.Error
	if err := c.Auth(smtp.PlainAuth("", "u", "secret-pass", "127.0.0.1")); !errors.As(err, &tp) || tp.Code != 535 {
		t.Fatalf("refused login: %v, want 535", err)
	}
	c.Close()
	if n := srv.Writes(); n != 0 {
		t.Errorf("a login wrote %d times", n)
	}
	c = login()
	if err := c.Auth(smtp.PlainAuth("", "u", "secret-pass", "127.0.0.1")); err != nil {
		t.Fatalf("second login: %v", err)
	}
	if err := c.Mail("a@example.org"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@example.org"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte("Subject: x\r\n\r\n250 not a reply\r\nAUTH PLAIN not a command\r\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, cmd := range srv.Transcript() {
		got = append(got, fmt.Sprintf("%s %s %d", cmd.Verb, cmd.Arg, cmd.Reply))
		if strings.Contains(cmd.Arg, "secret") || strings.Contains(cmd.Arg, "AHUA") {
			t.Errorf("credentials in the transcript: %+v", cmd)
		}
	}
	want := "EHLO localhost 250|STARTTLS  220|EHLO localhost 250|AUTH PLAIN 535|QUIT  221|" +
		"EHLO localhost 250|STARTTLS  220|EHLO localhost 250|AUTH PLAIN 235|MAIL FROM:<a@example.org> BODY=8BITMIME 250|RCPT TO:<b@example.org> 250|DATA  250|QUIT  221"
	if strings.Join(got, "|") != want {
		t.Errorf("transcript:\n%s\nwant\n%s", strings.Join(got, "|"), strings.ReplaceAll(want, "|", "\n"))
	}
	if srv.Writes() != 1 {
		t.Errorf("writes %d, want 1: the one message submitted, not the logins", srv.Writes())
	}
	if srv.Count("mail") != 1 || srv.Count("DATA") != 1 || srv.Count("AUTH") != 2 || srv.AuthFailures() != 1 || len(srv.Messages()) != 1 {
		t.Errorf("counts: MAIL %d DATA %d AUTH %d failures %d messages %d", srv.Count("MAIL"), srv.Count("DATA"), srv.Count("AUTH"), srv.AuthFailures(), len(srv.Messages()))
	}
}
