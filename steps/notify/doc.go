// Package notify holds the announcement steps of a release: e-mail to the user group,
// chat messages, and notices to a role such as the service owner ("production is
// verified; wider tests can start").
//
// # Step types
//
// notify.email (connection type smtp) sends one message.
// Params: to (list of addresses), to_role (a role whose people's e-mail addresses are
// added), cc, reply_to, subject, body (already rendered by ${{ }}), body_format
// (text | markdown: markdown is sent as text/plain with a text/html alternative rendered
// by goldmark). Outputs: message_id ("<runbook.HASH@from-domain>"), recipients
// (list<string>, the bare addresses of to and cc).
//
// notify.chat (connection type chat) posts {"text": …} (plus channel and username when
// given) to a Slack or Mattermost incoming webhook. Params: text (Markdown-ish; for Slack
// [t](u) becomes <u|t> and **b** becomes *b*), channel, username. Outputs: delivered (bool).
// Slack's plain-text errors (no_text, channel_is_archived, no_service, …) and
// Mattermost's AppError JSON are turned into messages that say what to check; 429 is
// returned as engine.RetryAfter with the Retry-After delay; 5xx and dropped connections
// as engine.Transient.
//
// notify.role (no single connection: email_connection and chat_connection) tells the
// people of a role by the channels given (email, chat or both): e-mail to their
// addresses, and a chat message that starts with their chat handles as mentions.
// Params: role, message, subject (default: the message's first line), channels,
// body_format. Outputs: notified (list<string>, the logins reached by at least one channel).
//
// # Connections
//
// smtp: url smtp://HOST:587 (STARTTLS, required by default) or smtps://HOST:465;
// settings from, username, starttls (required | opportunistic | none), auth
// (auto | plain | login), ca_file, tls_skip_verify (tests only), timeout; the password is the
// connection's secret (default env SMTP_PASSWORD), read only when username is set.
// An injected *x509.CertPool in Connection.Client is trusted as well (rehearsals).
//
// chat: the webhook URL is itself a credential, so it is normally the secret
// (token: {env: SLACK_WEBHOOK_URL}); url is used instead when given. Setting flavor
// (slack | mattermost, guessed from the URL when absent), channel, username, timeout
// (per post, default 30s; a timed-out post is transient). Logs and
// errors name only the webhook's host, never its path.
//
// # Preflight
//
// Before a run, sending nothing: notify.email and notify.role (for e-mail) connect to the
// SMTP server, say EHLO, upgrade with STARTTLS as the connection's starttls setting asks,
// log in with the mechanism sending would use when a username is set, and QUIT; never
// MAIL, RCPT or DATA. notify.chat and notify.role (for chat) check that the webhook URL is
// configured (url or secret), has the flavor's shape (/services/T…/B…/X… for Slack,
// /hooks/ID for Mattermost) and uses https off the local machine; an incoming webhook has
// no read-only call, so it is not contacted. Recipients are checked too: a role with
// nobody in it, people of to_role without an e-mail address, people of a notify.role that
// none of its channels can reach, and a channel that reaches nobody. Each connection is
// checked once per preflight.
//
// # Why go-mail
//
// SMTP is sent with github.com/wneessen/go-mail rather than net/smtp or hand-written
// SMTP: it does STARTTLS policy (mandatory/opportunistic), SMTPS, AUTH mechanism
// negotiation (SCRAM, PLAIN, LOGIN), RFC 5322/2047 header encoding, multipart
// alternatives and quoted-printable bodies, and returns SMTP reply codes so 4xx
// (retry) and 5xx (permanent) can be told apart. net/smtp is frozen and does none of
// the message formatting.
//
// # Idempotency and its limits
//
// Every effect is journalled: before sending, the step records its intent
// ("email.sending"); once the server has accepted the message (250 after DATA) or the
// webhook has answered ok, it records the result ("email.sent", "chat.delivered"). A
// re-run or resume that finds the result sends nothing and returns the recorded outputs.
// Keys are per foreach item; notify.role journals e-mail and chat separately, so a chat
// failure retried does not resend the e-mail.
//
// Neither SMTP nor incoming webhooks can be asked whether a message already arrived, so
// one window remains: a crash (or a dropped connection) after the message was handed
// over but before the journal recorded the answer. The window is the round trip of the
// final reply plus one journal write (milliseconds). Sending again then could announce a
// release twice; not sending could lose the announcement. Neither is chosen silently: the
// next attempt finds the intent without an answer and stops the run in status waiting,
// naming the message, and a person who looked at the channel or mailbox continues it with
// `runbook resume RUN --skip STEP --reason "it arrived"` or `--confirm STEP` (send it
// again). A definite failure (a refused connection, a 4xx/5xx reply) is recorded as
// "not sent" and retried without asking. A second e-mail carries the same Message-ID
// (derived from run id, step id and foreach item), which many mail stores use to show it
// once. The crash harness in cmd/runbook plays that person at every crash point.
//
// # Simulators
//
// steps/notify/smtpsim is a real SMTP server (emersion/go-smtp) on 127.0.0.1 with
// STARTTLS using a certificate generated at start (CAPEM to trust it), AUTH PLAIN and
// LOGIN, stored messages with parsed headers and bodies, a transcript of the commands
// clients sent (without credentials or content) and counters, refused logins on demand,
// and fault injection.
// steps/notify/chatsim simulates Slack and Mattermost incoming webhooks with their error
// bodies, auto-created hooks, and fault injection (429 with Retry-After, 5xx, drops).
package notify
