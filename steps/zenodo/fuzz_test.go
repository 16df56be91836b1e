package zenodo

import (
	"strings"
	"testing"
)

// FuzzParseError: any error body, in either of Zenodo's two forms or neither, gives an
// APIError whose message is not empty, names the status, and never repeats the token
// even when the server echoes it back.
func FuzzParseError(f *testing.F) {
	const token = "canary-5f1e9c7a-not-a-real-token"
	f.Add([]byte(`{"message":"Validation error.","status":400,"errors":[{"field":"metadata.creators","message":"Missing data for required field."}]}`), 400)
	f.Add([]byte(`{"message":"Validation error","errors":[{"field":"metadata.title","messages":["Missing data.", {"0": ["nested"]}]}]}`), 400)
	f.Add([]byte(`{"message":"The server could not verify that you are authorized to access the URL requested."}`), 401)
	f.Add([]byte(`<html><body>502 Bad Gateway</body></html>`), 502)
	f.Add([]byte(`{"errors":[{"field":"x","messages":"token `+token+` is bad"}],"message":"bad `+token+`"}`), 403)
	f.Add([]byte(`{"errors":[{"field":"metadata.`+token+`","message":"unknown field"}]}`), 400)
	f.Add([]byte(``), 429)
	f.Add([]byte(`{"errors":[null,{"field":null,"messages":[[[[]]]]}]}`), 415)
	scrub := func(s string) string { return strings.ReplaceAll(s, token, "[redacted]") }
	f.Fuzz(func(t *testing.T, body []byte, status int) {
		if status < 400 || status > 599 {
			status = 400 + (status%200+200)%200
		}
		msg, fields := parseError(body, scrub)
		e := &APIError{Method: "POST", URL: "https://sandbox.zenodo.org/api/deposit/depositions", Status: status, Message: scrub(msg), Fields: fields}
		s := e.Error()
		if !strings.HasPrefix(s, "zenodo: ") || len(s) <= len("zenodo: ") {
			t.Fatalf("error %q", s)
		}
		if !strings.Contains(s, " "+itoa(status)+" ") {
			t.Fatalf("error %q does not name status %d", s, status)
		}
		if strings.Contains(s, token) {
			t.Fatalf("the token is in the error: %q", s)
		}
		for _, fe := range fields {
			for _, m := range fe.Messages {
				if strings.Contains(m, token) {
					t.Fatalf("the token is in a field message: %q", m)
				}
			}
		}
	})
}

func itoa(n int) string {
	var b [8]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}
