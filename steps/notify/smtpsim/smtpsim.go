// Package smtpsim is a real SMTP submission server on 127.0.0.1 for the tests and
// rehearsals of the notify.email and notify.role steps, the way net/http/httptest is a
// real HTTP server. It speaks the wire protocol through github.com/emersion/go-smtp's
// server (EHLO, STARTTLS with a certificate generated at start, AUTH PLAIN and LOGIN, 535
// on wrong credentials), keeps every accepted message with its parsed headers and body so
// a test can read what arrived, and injects faults: 4xx or 5xx replies for the next
// messages, and connections dropped before or after the message is taken.
//
// Every recipient is accepted unless rejected with WithRejectRecipients (the SMTP
// counterpart of the other simulators' "auto-create": no mailbox needs seeding).
//
// Observing: Messages (what was accepted), Transcript (every command a client sent with
// the server's final reply, AUTH reduced to its mechanism so no credential is kept),
// Count(verb), Writes, Connections and AuthFailures: a test can tell a login check (EHLO,
// STARTTLS, AUTH, QUIT) from a delivery (MAIL, RCPT, DATA).
//
// SMTP is not HTTP, so smtpsim does not use simkit, but it observes in simkit's
// vocabulary where the two meet: Transcript is the request log (a Command is an exchange:
// Verb for the method, Arg for the path, Reply for the status), Count(verb) counts them
// as simkit's Count(pattern) does, Command.Write and Writes say what a write is (a
// message submitted), and Reset forgets them. Faults stay SMTP's own, queued for the
// stage of a transaction they break (RCPT, DATA, the connection), which has no method
// and path to match. RejectLoginsNext refuses the
// next logins with 535 whatever the credentials, as a locked account is refused.
package smtpsim

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one message the server accepted (answered 250 to its DATA).
type Message struct {
	// MailFrom and RcptTo are the envelope (MAIL FROM and RCPT TO).
	MailFrom string
	RcptTo   []string
	// From, To, Cc, Subject, MessageID and Date are the decoded header fields.
	From      string
	To        []string
	Cc        []string
	ReplyTo   string
	Subject   string
	MessageID string
	Date      string
	Header    mail.Header
	// Text and HTML are the decoded text/plain and text/html parts (the body itself for a
	// single-part message).
	Text string
	HTML string
	// Raw is the message exactly as received.
	Raw []byte
	// TLS is true when the message came over a TLS connection; AuthUser is who logged in.
	TLS      bool
	AuthUser string
	At       time.Time
}

// Server is a running SMTP server.
type Server struct {
	srv     *smtp.Server
	ln      net.Listener
	certPEM []byte
	cfg     config

	mu           sync.Mutex
	messages     []Message
	connections  int
	open         int // connections the server has not closed yet
	authFails    int
	rejectLogins int
	faults       []fault
	transcript   *transcript
}

// Command is one command a client sent and the server's final reply to it.
type Command struct {
	Verb string // EHLO, HELO, STARTTLS, AUTH, MAIL, RCPT, DATA, RSET, NOOP, QUIT, ...
	// Arg is the command's argument ("FROM:<a@b>"); for AUTH only the mechanism, never
	// the credentials.
	Arg string
	// Reply is the final reply code (for DATA, the answer to the message); 0 when the
	// connection ended first.
	Reply int
}

// Write reports whether the command submitted a message (DATA or BDAT): the one change a
// client makes through SMTP, as simkit.Exchange.Write is a request that asks for one.
func (c Command) Write() bool { return c.Verb == "DATA" || c.Verb == "BDAT" }

type faultKind int

const (
	faultReply      faultKind = iota // answer the DATA with a code
	faultDrop                        // close the connection at MAIL FROM
	faultDropAfter                   // keep the message, then close without answering
	faultRejectRcpt                  // answer RCPT TO with a code
)

type fault struct {
	kind faultKind
	code int
	msg  string
}

type config struct {
	user, pass  string
	noTLS       bool
	implicitTLS bool
	reject      map[string]bool
	host        string
}

// Option configures a Server.
type Option func(*config)

// WithAuth requires AUTH with this username and password before MAIL FROM; other
// credentials get 535. Without it any credentials are accepted and AUTH is optional.
func WithAuth(username, password string) Option {
	return func(c *config) { c.user, c.pass = username, password }
}

// WithoutSTARTTLS makes the server a plain-text one that does not advertise STARTTLS
// (and therefore, like a real server, does not offer AUTH either unless WithAuth is
// combined with it, in which case AUTH is allowed in the clear).
func WithoutSTARTTLS() Option { return func(c *config) { c.noTLS = true } }

// WithImplicitTLS serves SMTPS (TLS from the first byte, as on port 465) instead of
// STARTTLS.
func WithImplicitTLS() Option { return func(c *config) { c.implicitTLS = true } }

// WithRejectRecipients answers RCPT TO for these addresses with 550 (no such user).
func WithRejectRecipients(addrs ...string) Option {
	return func(c *config) {
		if c.reject == nil {
			c.reject = map[string]bool{}
		}
		for _, a := range addrs {
			c.reject[strings.ToLower(a)] = true
		}
	}
}

// New starts a server on 127.0.0.1 on a free port.
func New(opts ...Option) (*Server, error) {
	s := &Server{cfg: config{host: "127.0.0.1"}}
	for _, o := range opts {
		o(&s.cfg)
	}
	cert, certPEM, err := selfSigned()
	if err != nil {
		return nil, fmt.Errorf("smtpsim: certificate: %w", err)
	}
	s.certPEM = certPEM
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}

	srv := smtp.NewServer(s)
	srv.Domain = "smtpsim.local"
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.MaxMessageBytes = 10 << 20
	srv.MaxRecipients = 100
	srv.ErrorLog = discardLogger{}
	// The protocol stream (after TLS) is read for the transcript.
	s.transcript = &transcript{pending: -1}
	srv.Debug = s.transcript
	if !s.cfg.noTLS && !s.cfg.implicitTLS {
		srv.TLSConfig = tlsCfg
	}
	// Without TLS at all, AUTH may only be offered in the clear.
	srv.AllowInsecureAuth = s.cfg.noTLS
	s.srv = srv

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("smtpsim: listen: %w", err)
	}
	ln = &countingListener{Listener: ln, s: s}
	if s.cfg.implicitTLS {
		ln = tls.NewListener(ln, tlsCfg)
	}
	s.ln = ln
	go func() { _ = srv.Serve(ln) }()
	return s, nil
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the connection URL for the notify "smtp" connection type: smtp://127.0.0.1:PORT,
// or smtps:// with WithImplicitTLS.
func (s *Server) URL() string {
	if s.cfg.implicitTLS {
		return "smtps://" + s.Addr()
	}
	return "smtp://" + s.Addr()
}

// CAPEM is the PEM of the server's self-signed certificate (valid for 127.0.0.1 and
// localhost), to trust through the connection's ca_file setting or a tls.Config.
func (s *Server) CAPEM() []byte { return append([]byte(nil), s.certPEM...) }

// CertPool is a pool holding CAPEM.
func (s *Server) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(s.certPEM)
	return p
}

// Close stops the server and closes every connection.
func (s *Server) Close() error {
	err := s.srv.Close()
	// A Close right after New can come before Serve has registered the listener.
	_ = s.ln.Close()
	return err
}

// Messages returns the accepted messages, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Connections is how many SMTP connections were opened.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connections
}

// AuthFailures is how many AUTH attempts were refused with 535.
func (s *Server) AuthFailures() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authFails
}

// Reset forgets the stored messages, the transcript and the counters (faults stay queued).
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = nil
	s.connections, s.authFails = 0, 0
	s.transcript.reset()
}

// Transcript returns the commands clients sent, in order, with the server's replies. It
// is exact while one client talks at a time (the stream of concurrent connections is
// shared).
func (s *Server) Transcript() []Command {
	// go-smtp copies a reply to the transcript after sending it, so a client can have a
	// connection's last reply before the transcript does: wait for it, or for the server
	// to close that connection, briefly.
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		cmds := s.transcript.commands()
		s.mu.Lock()
		open := s.open
		s.mu.Unlock()
		if open == 0 || len(cmds) == 0 || cmds[len(cmds)-1].Reply != 0 {
			break
		}
	}
	return s.transcript.commands()
}

// Count is how many commands of that verb (EHLO, AUTH, MAIL, RCPT, DATA, QUIT, ...) clients sent.
func (s *Server) Count(verb string) int {
	n := 0
	for _, c := range s.Transcript() {
		if c.Verb == strings.ToUpper(verb) {
			n++
		}
	}
	return n
}

// Writes counts the messages clients submitted (DATA or BDAT), whatever the reply, as the
// HTTP simulators' Writes count the requests that asked for a change: a login check
// (EHLO, STARTTLS, AUTH, QUIT) writes nothing.
func (s *Server) Writes() int {
	n := 0
	for _, c := range s.Transcript() {
		if c.Write() {
			n++
		}
	}
	return n
}

// RejectLoginsNext refuses the next n AUTH attempts with 535 even when the credentials
// are right, as a server refuses a locked or disabled account.
func (s *Server) RejectLoginsNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejectLogins += n
}

// FailNext answers the DATA of the next n messages with code (4xx: the client should try
// again later; 5xx: permanent) and does not keep them.
func (s *Server) FailNext(n, code int, text string) {
	if text == "" {
		if code < 500 {
			text = "Requested action aborted: try again later"
		} else {
			text = "Message rejected"
		}
	}
	s.queue(n, fault{kind: faultReply, code: code, msg: text})
}

// RejectRecipientsNext answers every RCPT TO of the next n transactions with code.
func (s *Server) RejectRecipientsNext(n, code int) {
	s.queue(n, fault{kind: faultRejectRcpt, code: code, msg: "Recipient address rejected"})
}

// DropNext closes the connection at the next n MAIL FROM commands: nothing was accepted.
func (s *Server) DropNext(n int) { s.queue(n, fault{kind: faultDrop}) }

// DropAfterDataNext keeps the next n messages but closes the connection before answering
// their DATA: the client cannot know the message was taken (the ambiguous case).
func (s *Server) DropAfterDataNext(n int) { s.queue(n, fault{kind: faultDropAfter}) }

func (s *Server) queue(n int, f fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < n; i++ {
		s.faults = append(s.faults, f)
	}
}

// takeFault removes and returns the first queued fault of one of the kinds.
func (s *Server) takeFault(kinds ...faultKind) (fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		for _, k := range kinds {
			if f.kind == k {
				s.faults = append(s.faults[:i], s.faults[i+1:]...)
				return f, true
			}
		}
	}
	return fault{}, false
}

// NewSession implements smtp.Backend.
func (s *Server) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{s: s, c: c}, nil
}

type session struct {
	s        *Server
	c        *smtp.Conn
	authUser string
	from     string
	rcpt     []string
	fault    *fault
}

func (se *session) AuthMechanisms() []string { return []string{sasl.Plain, sasl.Login} }

func (se *session) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		se.s.mu.Lock()
		refused := se.s.rejectLogins > 0 || (se.s.cfg.user != "" && (user != se.s.cfg.user || pass != se.s.cfg.pass))
		if refused {
			se.s.authFails++
			if se.s.rejectLogins > 0 {
				se.s.rejectLogins--
			}
		}
		se.s.mu.Unlock()
		if refused {
			return smtp.ErrAuthFailed
		}
		se.authUser = user
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	if se.s.cfg.user != "" && se.authUser == "" {
		return smtp.ErrAuthRequired
	}
	if _, ok := se.s.takeFault(faultDrop); ok {
		_ = se.c.Conn().Close()
		return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "connection dropped"}
	}
	se.from = from
	if f, ok := se.s.takeFault(faultReply, faultDropAfter, faultRejectRcpt); ok {
		se.fault = &f
	}
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if se.s.cfg.reject[strings.ToLower(to)] {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}
	}
	if se.fault != nil && se.fault.kind == faultRejectRcpt {
		return &smtp.SMTPError{Code: se.fault.code, EnhancedCode: enhanced(se.fault.code), Message: se.fault.msg}
	}
	se.rcpt = append(se.rcpt, to)
	return nil
}

func (se *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	f := se.fault
	se.fault = nil
	if f != nil && f.kind == faultReply {
		return &smtp.SMTPError{Code: f.code, EnhancedCode: enhanced(f.code), Message: f.msg}
	}
	m := parse(raw)
	m.MailFrom, m.RcptTo = se.from, append([]string(nil), se.rcpt...)
	_, m.TLS = se.c.TLSConnectionState()
	m.AuthUser = se.authUser
	m.At = time.Now()
	se.s.mu.Lock()
	se.s.messages = append(se.s.messages, m)
	se.s.mu.Unlock()
	if f != nil && f.kind == faultDropAfter {
		_ = se.c.Conn().Close()
		return errors.New("connection dropped")
	}
	return nil
}

func (se *session) Reset() { se.from, se.rcpt, se.fault = "", nil, nil }

func (se *session) Logout() error { return nil }

func enhanced(code int) smtp.EnhancedCode {
	if code >= 500 {
		return smtp.EnhancedCode{5, 0, 0}
	}
	return smtp.EnhancedCode{4, 0, 0}
}

// loginServer is the server side of the (obsolete but widely used) LOGIN mechanism,
// which go-sasl only implements as a client.
type loginServer struct {
	check func(user, pass string) error
	state int
	user  string
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.state {
	case 0:
		l.state = 1
		if len(resp) > 0 { // initial response carries the username
			l.user = string(resp)
			l.state = 2
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		l.user = string(resp)
		l.state = 2
		return []byte("Password:"), false, nil
	case 2:
		l.state = 3
		return nil, true, l.check(l.user, string(resp))
	}
	return nil, false, errors.New("unexpected response")
}

// parse reads the headers and the text and HTML parts of a message; what it cannot parse
// stays in Raw.
func parse(raw []byte) Message {
	m := Message{Raw: raw}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		m.Text = string(raw)
		return m
	}
	dec := new(mime.WordDecoder)
	decode := func(v string) string {
		if d, err := dec.DecodeHeader(v); err == nil {
			return d
		}
		return v
	}
	h := msg.Header
	m.Header = h
	m.Subject = decode(h.Get("Subject"))
	m.MessageID = h.Get("Message-Id")
	m.Date = h.Get("Date")
	m.From = addrOnly(h.Get("From"))
	m.ReplyTo = addrOnly(h.Get("Reply-To"))
	m.To = addrList(h, "To")
	m.Cc = addrList(h, "Cc")
	walk(&m, h.Get("Content-Type"), h.Get("Content-Transfer-Encoding"), msg.Body)
	return m
}

func walk(m *Message, ctype, cte string, body io.Reader) {
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		mt = "text/plain"
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err != nil {
				return
			}
			walk(m, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p)
		}
	}
	var r io.Reader = body
	switch strings.ToLower(cte) {
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, body)
	}
	b, _ := io.ReadAll(r)
	switch mt {
	case "text/plain":
		if m.Text == "" {
			m.Text = strings.ReplaceAll(string(b), "\r\n", "\n")
		}
	case "text/html":
		if m.HTML == "" {
			m.HTML = strings.ReplaceAll(string(b), "\r\n", "\n")
		}
	}
}

func addrOnly(v string) string {
	if v == "" {
		return ""
	}
	a, err := mail.ParseAddress(v)
	if err != nil {
		return v
	}
	return a.Address
}

func addrList(h mail.Header, key string) []string {
	l, err := h.AddressList(key)
	if err != nil {
		return nil
	}
	out := make([]string, len(l))
	for i, a := range l {
		out[i] = a.Address
	}
	return out
}

// selfSigned makes an ECDSA certificate for 127.0.0.1, ::1 and localhost that is its own CA.
func selfSigned() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "smtpsim", Organization: []string{"runbook test"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	return cert, certPEM, err
}

// transcript reads the protocol stream go-smtp copies to Server.Debug (what it reads
// from clients and what it writes, after TLS) and keeps the commands with their final
// replies. Message content and AUTH exchanges are skipped, so no credential is kept.
type transcript struct {
	mu      sync.Mutex
	buf     []byte
	inData  bool
	pending int // index of the command awaiting its reply, or -1
	cmds    []Command
}

var commandVerbs = map[string]bool{"HELO": true, "EHLO": true, "LHLO": true, "STARTTLS": true, "AUTH": true, "MAIL": true,
	"RCPT": true, "DATA": true, "BDAT": true, "RSET": true, "NOOP": true, "VRFY": true, "QUIT": true}

func (t *transcript) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	for {
		i := bytes.IndexByte(t.buf, '\n')
		if i < 0 {
			break
		}
		t.line(strings.TrimRight(string(t.buf[:i]), "\r"))
		t.buf = t.buf[i+1:]
	}
	return len(p), nil
}

func (t *transcript) line(l string) {
	if t.inData { // message content, up to the lone dot
		if l == "." {
			t.inData = false
		}
		return
	}
	if len(l) >= 3 && isDigits(l[:3]) && (len(l) == 3 || l[3] == ' ' || l[3] == '-') {
		if len(l) > 3 && l[3] == '-' {
			return // more lines of the same reply follow
		}
		code := int(l[0]-'0')*100 + int(l[1]-'0')*10 + int(l[2]-'0')
		switch {
		case t.pending < 0:
		case code == 221: // QUIT, answered when it was read (below)
		case code == 220 && t.cmds[t.pending].Verb != "STARTTLS": // a new connection's greeting
		case code == 334: // AUTH goes on
		case code == 354: // the message follows; its answer is DATA's reply
			t.inData = true
		default:
			t.cmds[t.pending].Reply = code
			t.pending = -1
		}
		return
	}
	verb, arg, _ := strings.Cut(l, " ")
	verb = strings.ToUpper(verb)
	if !commandVerbs[verb] {
		return // an AUTH response (credentials) or noise
	}
	if verb == "AUTH" {
		arg, _, _ = strings.Cut(arg, " ") // the mechanism only, not an initial response
	}
	t.cmds = append(t.cmds, Command{Verb: verb, Arg: arg})
	t.pending = len(t.cmds) - 1
	if verb == "QUIT" {
		// go-smtp always answers 221 and closes; its copy of the 221 can reach the
		// transcript after the next connection's first lines, so it is not waited for.
		t.cmds[t.pending].Reply, t.pending = 221, -1
	}
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func (t *transcript) commands() []Command {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Command(nil), t.cmds...)
}

func (t *transcript) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf, t.cmds, t.pending, t.inData = nil, nil, -1, false
}

// countingListener counts accepted TCP connections (a STARTTLS upgrade starts a new
// go-smtp session on the same connection, so sessions are not connections).
type countingListener struct {
	net.Listener
	s *Server
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	l.s.mu.Lock()
	l.s.connections++
	l.s.open++
	l.s.mu.Unlock()
	return &trackedConn{Conn: c, s: l.s}, nil
}

// trackedConn counts itself out of the open connections when the server closes it.
type trackedConn struct {
	net.Conn
	s    *Server
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		c.s.open--
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}
