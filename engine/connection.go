package engine

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
)

// Connection is a named external service a playbook talks to, as declared under
// `connections:`. Secrets are never in the playbook: it names an environment variable or
// a file, read only when a step asks for the secret.
type Connection struct {
	Name     string
	Type     string
	URL      string
	Settings map[string]string

	// Client is an in-process client injected by rehearsal mode or tests (a
	// kubernetes.Interface backed by a simulated cluster, a *github.Client, the CAs of a
	// simulated mail server). Nil in real runs. Step packages read it with Injected, typed.
	Client any
	// HTTPClient, when set, is used by HTTP-based steps instead of a default client
	// (tests use it for fault injection).
	HTTPClient *http.Client

	TokenEnv  string // environment variable holding the secret
	TokenFile string // file holding the secret (first line, trimmed)
	// Token is a literal secret, only ever set by code (rehearsal, tests), never by a playbook.
	Token string

	redact func(string)
}

// Injected returns the connection's in-process client as a T. ok is false when none was
// injected (a real run); an injected client of another type is an error that names both
// types, so a miswired rehearsal or test fails where it is wired, not with a nil client.
func Injected[T any](c *Connection) (client T, ok bool, err error) {
	if c == nil || c.Client == nil {
		return client, false, nil
	}
	client, ok = c.Client.(T)
	if !ok {
		return client, false, fmt.Errorf("connection %q (type %s) has an injected client of type %T, not %v", c.Name, c.Type, c.Client, reflect.TypeFor[T]())
	}
	return client, true, nil
}

// Setting returns a type-specific setting, or def when it is not set.
func (c *Connection) Setting(key, def string) string {
	if v, ok := c.Settings[key]; ok && v != "" {
		return v
	}
	return def
}

// ErrNoSecret is wrapped by Secret when no secret is configured or found.
var ErrNoSecret = errors.New("no secret")

// Secret reads the connection's secret from the environment or its file. The value is
// registered with the run's redactor, so it never appears in logs, plans or reports.
func (c *Connection) Secret() (string, error) {
	v, err := c.readSecret()
	if err != nil {
		return "", err
	}
	if c.redact != nil {
		c.redact(v)
	}
	return v, nil
}

func (c *Connection) readSecret() (string, error) {
	if c.Token != "" {
		return c.Token, nil
	}
	if c.TokenFile != "" {
		path := c.TokenFile
		if strings.HasPrefix(path, "~/") {
			if home, err := os.UserHomeDir(); err == nil {
				path = filepath.Join(home, path[2:])
			}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("connection %q (%s): cannot read the token file: %v: %w; create it or point token.file elsewhere", c.Name, c.Type, err, ErrNoSecret)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		v := strings.TrimSpace(line)
		if v == "" {
			return "", fmt.Errorf("connection %q (%s): token file %s is empty: %w", c.Name, c.Type, c.TokenFile, ErrNoSecret)
		}
		return v, nil
	}
	if c.TokenEnv != "" {
		if v := strings.TrimSpace(os.Getenv(c.TokenEnv)); v != "" {
			return v, nil
		}
		return "", fmt.Errorf("connection %q (%s): environment variable %s is not set: %w; export it or name a token file in the connection", c.Name, c.Type, c.TokenEnv, ErrNoSecret)
	}
	return "", fmt.Errorf("connection %q (%s): no token configured: %w; set token: {env: NAME} or token: {file: PATH}", c.Name, c.Type, ErrNoSecret)
}

// SecretSource names where the connection's secret is read from, for messages, never the
// secret itself: the environment variable, "the token file PATH", "the connection's
// token" (given by code: a rehearsal, a sandbox), or def when none is configured.
func (c *Connection) SecretSource(def string) string {
	switch {
	case c.Token != "":
		return "the connection's token"
	case c.TokenFile != "":
		return "the token file " + c.TokenFile
	case c.TokenEnv != "":
		return c.TokenEnv
	}
	return def
}

// HTTP returns the HTTP client to use for this connection.
func (c *Connection) HTTP() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return http.DefaultClient
}
