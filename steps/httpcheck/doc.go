// Package httpcheck provides the `http.check` step type, the smoke check of a release:
// request a public URL (or an API behind a connection) and check the status and body,
// optionally again and again until the service is healthy.
//
// Parameters:
//
//	method            (string, default GET)        GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS
//	url               (string, required)           absolute URL, or a path joined below the connection's url
//	headers           (map<string>)                extra request headers
//	expect_status     (list<int>, default [200])   acceptable status codes
//	body_contains     (list<string>)               strings the body must contain
//	body_matches      (string)                     a Go regular expression the body must match (checked by Validate)
//	attempts          (int, default 1)             tries before failing; > 1 means "until healthy"
//	interval          (duration, default 5s)       wait between tries, on the run's clock
//	timeout           (duration, default 30s)      time limit of one request
//	max_body_bytes    (int, default 1048576)       the body is read up to this many bytes and checked on those
//	follow_redirects  (bool, default true)         follow up to 10 redirects
//	connection        (string)                     optional connection of type "http"
//
// Outputs:
//
//	status        (int)     status of the last answer
//	duration_ms   (int)     real time the last request took
//	body_excerpt  (string)  first 512 bytes of the body (valid UTF-8 cut; the engine redacts secrets)
//
// Connection type "http" (registered here; optional: the step type declares no required
// connection, so a playbook of public checks needs none): url is the base URL; the secret (token: {env: ...} or {file: ...})
// is sent as "Authorization: Bearer <token>", or as HTTP basic auth when the setting user
// is given. A connection without a token is just a base URL. Credentials never leave the
// connection's origin (scheme, host and port): an absolute url on another origin is refused
// before any request, and a redirect to another origin is followed with the Authorization,
// Proxy-Authorization and Cookie headers removed. net/http alone would keep them for the
// same host name on another port and for subdomains, which is why the step sets its own
// redirect policy.
//
// Failures: a status not expected, or a body that does not match, is an error naming the
// URL, what was expected and what came back. Connection errors, request timeouts, dropped
// connections and 5xx answers are engine.Transient (so the engine's retry policy applies
// on top of attempts); 429 is engine.RetryAfter with the Retry-After header. An unexpected
// 401 or 403 ends the attempts at once with a hint about credentials: waiting will not fix
// a token.
//
// Idempotency: a check only reads (unless the author picks a writing method), so running
// it twice does nothing twice. Plan makes no request.
//
// Simulator: package httpchecksim is a scriptable web site on 127.0.0.1 for tests and
// rehearsals (seeded paths, answer sequences, redirects, auth, fault injection, request
// recording, and an auto-create mode in which every path answers 200 "OK").
package httpcheck
