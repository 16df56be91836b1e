package simkit

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strconv"
)

// Endpoint is one line of a simulator's documented endpoint list.
type Endpoint struct {
	Method, Path string
	Status       int
	ContentType  string // "-" for an answer without a body
}

// Key is "METHOD path", as a route's ServeMux pattern writes it.
func (e Endpoint) Key() string { return e.Method + " " + e.Path }

// docEndpoint is the form of a documented endpoint in a simulator's doc.go: a comment line
// "//<TAB>METHOD path → status content-type".
var docEndpoint = regexp.MustCompile(`^//\t(GET|POST|PUT|PATCH|DELETE) (/\S*) → (\d{3}) (\S+)$`)

// DocumentedEndpoints reads the endpoint list of a simulator's doc.go, so that a test can
// check the list against the routes and each endpoint against its answer: the documented
// form of a simulator cannot drift from what it serves.
func DocumentedEndpoints(docFile string) ([]Endpoint, error) {
	f, err := os.Open(docFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Endpoint
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := docEndpoint.FindStringSubmatch(sc.Text()); m != nil {
			status, _ := strconv.Atoi(m[3])
			out = append(out, Endpoint{Method: m[1], Path: m[2], Status: status, ContentType: m[4]})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s lists no endpoints (lines \"//\\tMETHOD path → status content-type\")", docFile)
	}
	return out, nil
}
