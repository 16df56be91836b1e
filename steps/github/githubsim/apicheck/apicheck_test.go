package apicheck

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cessda/runbook/steps/simkit"
)

const sha = "7638417db6d59f3c431d3e1f261cc637155684cd"

// exchange builds an observed exchange by hand: a request with its JSON body and an answer.
func exchange(method, target, reqBody string, status int, respBody string) simkit.Observed {
	r := httptest.NewRequest(method, target, strings.NewReader(reqBody))
	if reqBody != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	h := http.Header{}
	if respBody != "" {
		h.Set("Content-Type", "application/json; charset=utf-8")
	}
	return simkit.Observed{
		Exchange:       simkit.Exchange{Method: method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Status: status},
		Request:        r,
		RequestBody:    []byte(reqBody),
		ResponseHeader: h,
		ResponseBody:   []byte(respBody),
	}
}

// gitRef is a git reference as GitHub answers it, with fields replaced by with.
func gitRef(with ...string) string {
	fields := map[string]string{
		"ref":     `"refs/tags/v1.0"`,
		"node_id": `"REF_1"`,
		"url":     `"https://api.github.com/repos/o/r/git/refs/tags/v1.0"`,
		"object":  `{"type":"commit","sha":"` + sha + `","url":"https://api.github.com/repos/o/r/git/commits/` + sha + `"}`,
	}
	for i := 0; i+1 < len(with); i += 2 {
		fields[with[i]] = with[i+1]
	}
	var parts []string
	for _, k := range []string{"ref", "node_id", "url", "object"} {
		if v := fields[k]; v != "" {
			parts = append(parts, `"`+k+`":`+v)
		}
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func checker(t *testing.T) *Checker {
	t.Helper()
	c, err := GitHub()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestValidExchangesPass(t *testing.T) {
	c := checker(t)
	for name, o := range map[string]simkit.Observed{
		"a ref whose name spans segments": exchange("GET", "/repos/o/r/git/ref/tags/v1.0", "", 200, gitRef()),
		"a created ref": exchange("POST", "/repos/o/r/git/refs", `{"ref":"refs/tags/v1.0","sha":"`+sha+`"}`, 201,
			gitRef()),
		"a not found answer": exchange("GET", "/repos/o/r/git/ref/tags/v9", "", 404,
			`{"message":"Not Found","documentation_url":"https://docs.github.com/rest"}`),
		"a conditional GET answered 304": func() simkit.Observed {
			o := exchange("GET", "/repos/o/r/git/ref/tags/v1.0", "", 304, "")
			o.Request.Header.Set("If-None-Match", `"abc"`)
			return o
		}(),
		"bad credentials, which any operation may answer": exchange("GET", "/repos/o/r/git/ref/tags/v1.0", "", 401,
			`{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}`),
		"a conflict, whose published oneOf overlaps": exchange("PUT", "/repos/o/r/contents/docs/CHANGELOG.md",
			`{"message":"m","content":"eA==","sha":"`+sha+`"}`, 409, `{"message":"is at a different sha","documentation_url":"https://docs.github.com/rest"}`),
		"a source archive (web, not the API)": exchange("GET", "/o/r/archive/refs/tags/v1.0.tar.gz", "", 200, ""),
		"a raw file (web, not the API)":       exchange("GET", "/o/r/raw/v1.0/docs/a%20b.md", "", 200, ""),
		"an injected fault": func() simkit.Observed {
			o := exchange("GET", "/repos/o/r/git/ref/tags/v1.0", "", 502, `{"message":"Server Error"}`)
			o.Fault = true
			return o
		}(),
	} {
		if vs := c.Check(o); len(vs) != 0 {
			t.Errorf("%s: %v", name, vs)
		}
	}
}

func TestViolationsAreFound(t *testing.T) {
	c := checker(t)
	for _, tc := range []struct {
		name string
		o    simkit.Observed
		want string // the Key of the one violation expected
	}{
		{"a required field missing",
			exchange("GET", "/repos/o/r/git/ref/heads/main", "", 200, gitRef("object", `{"type":"commit","sha":"`+sha+`"}`)),
			`response GET /repos/{owner}/{repo}/git/ref/{ref} 200: /object/url: property "url" is missing`},
		{"a required field null",
			exchange("GET", "/repos/o/r/git/ref/heads/main", "", 200, gitRef("object", `{"type":"commit","sha":"`+sha+`","url":null}`)),
			`response GET /repos/{owner}/{repo}/git/ref/{ref} 200: /object/url: Value is not nullable`},
		{"a wrong type",
			exchange("GET", "/repos/o/r/git/ref/heads/main", "", 200, gitRef("node_id", `7`)),
			`response GET /repos/{owner}/{repo}/git/ref/{ref} 200: /node_id: value must be a string`},
		{"an undeclared status",
			exchange("GET", "/repos/o/r/git/ref/heads/main", "", 418, `{"message":"teapot"}`),
			`response GET /repos/{owner}/{repo}/git/ref/{ref} 418: status 418 is not declared`},
		{"a general error that is not GitHub's error body",
			exchange("GET", "/repos/o/r/git/ref/heads/main", "", 403, `{"message":7}`),
			`response GET /repos/{owner}/{repo}/git/ref/{ref} 403: status 403 (basic-error): /message: value must be a string`},
		{"a 304 to an unconditional request",
			exchange("GET", "/repos/o/r/git/ref/heads/main", "", 304, ""),
			`response GET /repos/{owner}/{repo}/git/ref/{ref} 304: status 304 is not declared and the request was not conditional`},
		{"a request body missing a required field",
			exchange("POST", "/repos/o/r/git/refs", `{"ref":"refs/tags/v1.0"}`, 201, gitRef()),
			`request POST /repos/{owner}/{repo}/git/refs 201: body /sha: property "sha" is missing`},
		{"a query parameter of the wrong type",
			exchange("GET", "/repos/o/r/issues?per_page=many", "", 200, `[]`),
			`request GET /repos/{owner}/{repo}/issues 200: query parameter per_page: value many: an invalid integer: invalid syntax`},
		{"an operation outside the description",
			exchange("DELETE", "/repos/o/r", "", 204, ""),
			`request DELETE /repos/o/r 204: no operation of the description matches`},
	} {
		vs := c.Check(tc.o)
		var keys []string
		for _, v := range vs {
			keys = append(keys, v.Key())
		}
		if len(keys) != 1 || keys[0] != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, keys, tc.want)
		}
	}
}

func TestTheSubsetLoads(t *testing.T) {
	c := checker(t)
	if len(c.routes) < 25 {
		t.Errorf("%d operations in the subset; runbook uses about thirty", len(c.routes))
	}
}
