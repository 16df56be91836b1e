package notify

import "github.com/cessda/runbook/engine"

func init() {
	engine.RegisterConnectionType(engine.ConnectionType{
		Name:    "smtp",
		Summary: "An SMTP submission server: url smtp://HOST:587 (STARTTLS) or smtps://HOST:465; the secret is the password",
		Settings: map[string]string{
			"from":            "sender address, e.g. \"CESSDA releases <releases@cessda.eu>\" (required)",
			"username":        "AUTH user name; without it no AUTH is done and no password is read",
			"starttls":        "required (default), opportunistic or none: whether a smtp:// connection must be upgraded with STARTTLS",
			"auth":            "auto (default: the strongest mechanism the server offers), plain or login",
			"ca_file":         "PEM file of the CA that signed the server's certificate (for a private CA or the rehearsal server)",
			"tls_skip_verify": "true to skip certificate verification: only for tests; prefer ca_file",
			"timeout":         "how long one connection may take (default 30s)",
		},
		DefaultTokenEnv: "SMTP_PASSWORD",
	})
	engine.RegisterConnectionType(engine.ConnectionType{
		Name:    "chat",
		Summary: "A Slack or Mattermost incoming webhook; its URL is a secret, so give it as token: {env: SLACK_WEBHOOK_URL} rather than url",
		Settings: map[string]string{
			"flavor":   "slack or mattermost (default: guessed from the URL: /hooks/ is Mattermost)",
			"channel":  "channel to post in, when the webhook allows overriding its own",
			"username": "name to post as, when the webhook allows it",
			"timeout":  "how long one post may take (default 30s)",
		},
		DefaultTokenEnv: "CHAT_WEBHOOK_URL",
	})
}
