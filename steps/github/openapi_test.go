package github

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/cessda/runbook/steps/github/githubsim"
	"github.com/cessda/runbook/steps/github/githubsim/apicheck"
)

// knownViolations lists the violations githubsim's answers have until its rewrite fixes
// them (embedded in apicheck); section [steps/github] holds this package's.
const knownViolations = "steps/github/githubsim/apicheck/testdata/known-violations.txt"

// TestMain checks every exchange of every GitHub step test against GitHub's published
// OpenAPI description (package apicheck) and fails the package on a violation that is not
// in knownViolations, or on a line there that no longer occurs.
func TestMain(m *testing.M) {
	checker, err := apicheck.GitHub()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	allowed := apicheck.KnownViolations("steps/github")
	rec := apicheck.NewRecorder(checker)
	stop := githubsim.ObserveEveryServer(rec.Observe)
	code := m.Run()
	stop()
	if !checkOpenAPI(rec, allowed, wholePackage()) && code == 0 {
		code = 1
	}
	os.Exit(code)
}

// wholePackage reports whether every test ran (no -run, -skip or -fuzz): only then must
// each known violation occur.
func wholePackage() bool {
	for _, name := range []string{"test.run", "test.skip", "test.fuzz"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	return true
}

// checkOpenAPI prints what the recorder found against the allowed violations and reports
// whether it passes.
func checkOpenAPI(rec *apicheck.Recorder, allowed []string, whole bool) bool {
	unexpected, gone := rec.Compare(allowed)
	if !whole {
		gone = nil
	}
	if testing.Verbose() {
		fmt.Printf("openapi check: %d exchanges, %d distinct violations (%d known); operations no test exercised: %v\n",
			rec.Exchanges(), len(rec.Keys()), len(allowed), rec.Unexercised())
	}
	if len(unexpected) > 0 {
		fmt.Fprintf(os.Stderr, "openapi check: %d violations of GitHub's OpenAPI description not in %s [%s]:\n\t%s\n",
			len(unexpected), knownViolations, "steps/github", strings.Join(unexpected, "\n\t"))
	}
	if len(gone) > 0 {
		fmt.Fprintf(os.Stderr, "openapi check: %d lines of %s [%s] no longer occur; remove them:\n\t%s\n",
			len(gone), knownViolations, "steps/github", strings.Join(gone, "\n\t"))
	}
	return len(unexpected) == 0 && len(gone) == 0
}
