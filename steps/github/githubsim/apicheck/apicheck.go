// Package apicheck checks exchanges with GitHub's REST API against GitHub's published
// OpenAPI description: what runbook sends (path parameters, query, body) and what
// githubsim answers (a declared status, the content type, the body against the schema of
// that status).
//
// The description is the subset runbook uses (testdata/api.github.com.subset.json,
// written by testdata/extract.sh from npm @octokit/openapi), embedded, so the check never
// reaches the network. An exchange whose operation is not in the subset is a violation:
// the subset must cover what runbook uses.
//
// Out of scope, and passed without a check: githubsim's web downloads beside the API
// (source archives and raw files, see githubsim.WebPath), which the description does not
// describe, and exchanges an injected fault answered or changed (Observed.Fault), which
// are a test's deliberate breakage.
package apicheck

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/cessda/runbook/steps/github/githubsim"
	"github.com/cessda/runbook/steps/simkit"
)

//go:embed testdata/api.github.com.subset.json
var subsetJSON []byte

// Violation is one way an exchange breaks the description.
type Violation struct {
	Operation string // the operation's method and path template; "" when none matches
	Method    string
	Path      string // the path as sent
	Status    int
	Side      string // "request" or "response"
	Err       string // what is wrong, briefly (the JSON pointer of the value, then why)
}

// String is the violation in one line.
func (v Violation) String() string {
	return fmt.Sprintf("%s %s %s %d: %s", v.Side, v.Method, v.Path, v.Status, v.Err)
}

// Key is the violation without what differs between two exchanges of one operation (the
// concrete path, array indexes): one line of an allow-list.
func (v Violation) Key() string {
	op := v.Operation
	if op == "" {
		op = v.Method + " " + v.Path
	}
	return fmt.Sprintf("%s %s %d: %s", v.Side, op, v.Status, v.Err)
}

// Checker checks exchanges against a description.
type Checker struct {
	doc    *openapi3.T
	routes []route
}

// route is one operation, with its path template split in segments.
type route struct {
	r    *routers.Route
	segs []string
	// multi is the index of the last segment's parameter when it may span several
	// segments (x-multi-segment: a ref "heads/main", a file path "docs/a.md"); -1 otherwise.
	multi int
}

// GitHub loads the embedded subset of api.github.com's description.
func GitHub() (*Checker, error) { return Load(subsetJSON) }

// Load reads an OpenAPI 3.0 description.
func Load(spec []byte) (*Checker, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(spec)
	if err != nil {
		return nil, fmt.Errorf("apicheck: load the description: %w", err)
	}
	// GitHub's own examples break its schemas here and there (a date-time without a zone);
	// they are documentation, not the contract.
	if err := doc.Validate(loader.Context, openapi3.DisableExamplesValidation()); err != nil {
		return nil, fmt.Errorf("apicheck: the description is invalid: %w", err)
	}
	relaxOverlappingOneOf(doc)
	c := &Checker{doc: doc}
	for _, p := range doc.Paths.InMatchingOrder() {
		item := doc.Paths.Value(p)
		for method, op := range item.Operations() {
			rt := route{r: &routers.Route{Spec: doc, Path: p, PathItem: item, Method: method, Operation: op},
				segs: strings.Split(strings.Trim(p, "/"), "/"), multi: -1}
			last := rt.segs[len(rt.segs)-1]
			if name, ok := param(last); ok && multiSegment(op, item, name) {
				rt.multi = len(rt.segs) - 1
			}
			c.routes = append(c.routes, rt)
		}
	}
	sort.Slice(c.routes, func(i, j int) bool {
		return c.routes[i].r.Path+c.routes[i].r.Method < c.routes[j].r.Path+c.routes[j].r.Method
	})
	return c, nil
}

func param(seg string) (string, bool) {
	if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
		return seg[1 : len(seg)-1], true
	}
	return "", false
}

func multiSegment(op *openapi3.Operation, item *openapi3.PathItem, name string) bool {
	for _, ps := range []openapi3.Parameters{op.Parameters, item.Parameters} {
		if p := ps.GetByInAndName(openapi3.ParameterInPath, name); p != nil {
			ms, _ := p.Extensions["x-multi-segment"].(bool)
			return ms
		}
	}
	return false
}

// match finds the operation for a method and an escaped path: of the templates that
// match, the one with the most literal segments ("/releases/tags/{tag}" before
// "/releases/{release_id}").
func (c *Checker) match(method, escapedPath string) (*routers.Route, map[string]string) {
	segs := strings.Split(strings.Trim(escapedPath, "/"), "/")
	var best *routers.Route
	var bestParams map[string]string
	bestLiterals := -1
	for _, rt := range c.routes {
		if rt.r.Method != method {
			continue
		}
		params, literals, ok := rt.match(segs)
		if ok && literals > bestLiterals {
			best, bestParams, bestLiterals = rt.r, params, literals
		}
	}
	return best, bestParams
}

func (rt route) match(segs []string) (map[string]string, int, bool) {
	if len(segs) != len(rt.segs) && (rt.multi < 0 || len(segs) < len(rt.segs)) {
		return nil, 0, false
	}
	params := map[string]string{}
	literals := 0
	for i, t := range rt.segs {
		name, isParam := param(t)
		if !isParam {
			if segs[i] != t {
				return nil, 0, false
			}
			literals++
			continue
		}
		raw := segs[i]
		if i == rt.multi {
			raw = strings.Join(segs[i:], "/")
		}
		v, err := url.PathUnescape(raw)
		if err != nil || v == "" {
			return nil, 0, false
		}
		params[name] = v
	}
	return params, literals, true
}

// Operation names the operation an exchange is checked as ("GET /repos/{owner}/{repo}"),
// "" when it is out of scope or matches none.
func (c *Checker) Operation(o simkit.Observed) string {
	if o.Fault || isWeb(o.Path) {
		return ""
	}
	if rt, _ := c.match(o.Method, o.Path); rt != nil {
		return rt.Method + " " + rt.Path
	}
	return ""
}

// Operations lists every operation of the description, sorted.
func (c *Checker) Operations() []string {
	var out []string
	for _, rt := range c.routes {
		out = append(out, rt.r.Method+" "+rt.r.Path)
	}
	sort.Strings(out)
	return out
}

// Check checks one exchange, its request and its response.
func (c *Checker) Check(o simkit.Observed) []Violation {
	if o.Fault || isWeb(o.Path) {
		return nil
	}
	base := Violation{Method: o.Method, Path: o.Path, Status: o.Status, Side: "request"}
	rt, params := c.match(o.Method, o.Path)
	if rt == nil {
		base.Err = "no operation of the description matches"
		return []Violation{base}
	}
	base.Operation = rt.Method + " " + rt.Path
	ctx := context.Background()
	req := o.Request.Clone(ctx)
	req.Body = io.NopCloser(bytes.NewReader(o.RequestBody))
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: rt,
		Options: &openapi3filter.Options{MultiError: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	var out []Violation
	for _, e := range flatten(openapi3filter.ValidateRequest(ctx, in)) {
		v := base
		v.Err = e
		out = append(out, v)
	}
	base.Side = "response"
	for _, e := range c.checkResponse(ctx, in, o) {
		v := base
		v.Err = e
		out = append(out, v)
	}
	return dedupe(out)
}

// checkResponse checks the status, the content type and the body.
func (c *Checker) checkResponse(ctx context.Context, in *openapi3filter.RequestValidationInput, o simkit.Observed) []string {
	op := in.Route.Operation
	if o.Status == http.StatusNotModified {
		// GitHub answers any conditional GET 304 (docs: "Use conditional requests if
		// appropriate"), declared or not; the answer has no body to check.
		if o.Method == http.MethodGet && o.Request.Header.Get("If-None-Match") != "" && len(o.ResponseBody) == 0 {
			return nil
		}
		if op.Responses.Status(o.Status) == nil {
			return []string{"status 304 is not declared and the request was not conditional"}
		}
		return nil
	}
	resp := op.Responses.Status(o.Status)
	if resp == nil && generalStatus[o.Status] {
		return c.checkGeneralError(o)
	}
	if resp == nil || resp.Value == nil {
		return []string{"status " + strconv.Itoa(o.Status) + " is not declared"}
	}
	if len(resp.Value.Content) == 0 && len(bytes.TrimSpace(o.ResponseBody)) > 0 {
		return []string{"status " + strconv.Itoa(o.Status) + " declares no body, but one was answered"}
	}
	rin := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: o.Status, Header: o.ResponseHeader,
		Options: &openapi3filter.Options{MultiError: true, IncludeResponseStatus: true}}
	rin.SetBodyBytes(o.ResponseBody)
	return flatten(openapi3filter.ValidateResponse(ctx, rin))
}

// isWeb reports a path githubsim serves beside the API (a source archive, a raw file).
func isWeb(escapedPath string) bool {
	p, err := url.PathUnescape(escapedPath)
	if err != nil {
		return false
	}
	_, ok := githubsim.WebPath(&url.URL{Scheme: "https", Host: "github.com", Path: p, RawPath: escapedPath})
	return ok
}

// flatten turns what kin-openapi returns into one line per schema error: the JSON
// pointer of the value (array indexes as *, so one line stands for every item) and why.
func flatten(err error) []string {
	if err == nil {
		return nil
	}
	var lines []string
	var walk func(prefix string, err error)
	walk = func(prefix string, err error) {
		var me openapi3.MultiError
		var re *openapi3filter.RequestError
		var se *openapi3.SchemaError
		switch {
		case errors.As(err, &me) && isMulti(err):
			for _, e := range me {
				walk(prefix, e)
			}
		case errors.As(err, &re) && re.Err != nil:
			walk(prefix+requestPart(re), re.Err)
		case errors.As(err, &se):
			// An error inside an item or property comes wrapped; its pointer is whole.
			if se.Origin != nil {
				var inner openapi3.MultiError
				var innerSE *openapi3.SchemaError
				if errors.As(se.Origin, &inner) || errors.As(se.Origin, &innerSE) {
					walk(prefix, se.Origin)
					return
				}
			}
			lines = append(lines, prefix+pointer(se.JSONPointer())+": "+se.Reason)
		case errors.As(err, &re):
			lines = append(lines, prefix+requestPart(re)+": "+re.Reason)
		default:
			lines = append(lines, prefix+": "+err.Error())
		}
	}
	walk("", err)
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(strings.TrimPrefix(l, " "), ": ")
	}
	return lines
}

// isMulti reports whether err is a MultiError itself or wraps one as its first cause,
// before any request or schema error.
func isMulti(err error) bool {
	for err != nil {
		switch err.(type) {
		case openapi3.MultiError:
			return true
		case *openapi3filter.RequestError, *openapi3.SchemaError:
			return false
		}
		err = errors.Unwrap(err)
	}
	return false
}

func requestPart(re *openapi3filter.RequestError) string {
	switch {
	case re.Parameter != nil:
		return re.Parameter.In + " parameter " + re.Parameter.Name
	case re.RequestBody != nil:
		return "body"
	}
	return ""
}

func pointer(p []string) string {
	if len(p) == 0 {
		return ""
	}
	segs := make([]string, len(p))
	for i, s := range p {
		if _, err := strconv.Atoi(s); err == nil {
			s = "*"
		}
		segs[i] = s
	}
	return " /" + strings.Join(segs, "/")
}

func dedupe(vs []Violation) []Violation {
	seen := map[string]bool{}
	out := vs[:0]
	for _, v := range vs {
		if k := v.Key(); !seen[k] {
			seen[k] = true
			out = append(out, v)
		}
	}
	return out
}

// generalStatus are the answers GitHub documents for every endpoint and the description
// declares for a few only: no or bad credentials (401), a permission refused or the rate
// limit exhausted (403), too many requests (429). Undeclared, they are checked as GitHub's
// basic error.
var generalStatus = map[int]bool{http.StatusUnauthorized: true, http.StatusForbidden: true, http.StatusTooManyRequests: true}

func (c *Checker) checkGeneralError(o simkit.Observed) []string {
	status := strconv.Itoa(o.Status)
	if ct := o.ResponseHeader.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return []string{"status " + status + ": content type " + strconv.Quote(ct) + ", not a JSON error"}
	}
	var body any
	if err := json.Unmarshal(o.ResponseBody, &body); err != nil {
		return []string{"status " + status + ": the error body is not JSON"}
	}
	basic := c.doc.Components.Schemas["basic-error"]
	if err := basic.Value.VisitJSON(body, openapi3.MultiErrors(), openapi3.VisitAsResponse()); err != nil {
		var out []string
		for _, l := range flatten(err) {
			out = append(out, "status "+status+" (basic-error): "+l)
		}
		return out
	}
	return nil
}

// relaxOverlappingOneOf checks as anyOf each oneOf whose alternatives are objects that
// require nothing and have no discriminator: any object matches all of them, so as
// published no answer could pass (PUT contents 409: basic-error or
// repository-rule-violation-error). The alternatives keep their own schema checks.
func relaxOverlappingOneOf(doc *openapi3.T) {
	seen := map[*openapi3.Schema]bool{}
	var visit func(ref *openapi3.SchemaRef)
	visit = func(ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		s := ref.Value
		seen[s] = true
		if len(s.OneOf) > 1 && s.Discriminator == nil && requireNothing(s.OneOf) {
			s.AnyOf, s.OneOf = s.OneOf, nil
		}
		for _, r := range subschemas(s) {
			visit(r)
		}
	}
	for _, ref := range doc.Components.Schemas {
		visit(ref)
	}
	for _, ref := range responseSchemas(doc) {
		visit(ref)
	}
}

// subschemas are the schemas s is made of.
func subschemas(s *openapi3.Schema) []*openapi3.SchemaRef {
	out := append(append(append([]*openapi3.SchemaRef{s.Items}, s.OneOf...), s.AnyOf...), s.AllOf...)
	for _, r := range s.Properties {
		out = append(out, r)
	}
	return out
}

// responseSchemas are the schemas of every response of every operation.
func responseSchemas(doc *openapi3.T) []*openapi3.SchemaRef {
	var out []*openapi3.SchemaRef
	for _, p := range doc.Paths.Map() {
		for _, op := range p.Operations() {
			for _, resp := range op.Responses.Map() {
				if resp.Value == nil {
					continue
				}
				for _, mt := range resp.Value.Content {
					out = append(out, mt.Schema)
				}
			}
		}
	}
	return out
}

func requireNothing(alternatives openapi3.SchemaRefs) bool {
	for _, r := range alternatives {
		if r.Value == nil || len(r.Value.Required) > 0 || !r.Value.Type.Is("object") {
			return false
		}
	}
	return true
}
