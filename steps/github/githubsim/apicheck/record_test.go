package apicheck

import (
	"reflect"
	"slices"
	"testing"
)

func TestRecorderHoldsViolationsAgainstTheAllowList(t *testing.T) {
	rec := NewRecorder(checker(t))
	rec.Observe(exchange("GET", "/repos/o/r/git/ref/tags/v1.0", "", 200, gitRef()))
	rec.Observe(exchange("GET", "/repos/o/r/git/ref/heads/main", "", 200, gitRef("node_id", `7`)))
	rec.Observe(exchange("GET", "/repos/o/r/git/ref/heads/dev", "", 200, gitRef("node_id", `8`)))
	if n := rec.Exchanges(); n != 3 {
		t.Errorf("%d exchanges, want 3", n)
	}
	wrongType := `response GET /repos/{owner}/{repo}/git/ref/{ref} 200: /node_id: value must be a string`
	if keys := rec.Keys(); !reflect.DeepEqual(keys, []string{wrongType}) {
		t.Errorf("keys %q, want the one violation of two exchanges", keys)
	}
	if slices.Contains(rec.Unexercised(), "GET /repos/{owner}/{repo}/git/ref/{ref}") {
		t.Error("the operation checked is listed as not exercised")
	}

	list := AllowList("# comment\n[other]\n"+wrongType+"\n\n[mine]\n"+wrongType+"\nresponse GET /user 200: gone\n", "mine")
	if want := []string{wrongType, "response GET /user 200: gone"}; !reflect.DeepEqual(list, want) {
		t.Fatalf("section mine is %q, want %q", list, want)
	}
	unexpected, gone := rec.Compare(list)
	if len(unexpected) != 0 || !reflect.DeepEqual(gone, []string{"response GET /user 200: gone"}) {
		t.Errorf("unexpected %q, gone %q; want none and the line that did not occur", unexpected, gone)
	}
	unexpected, gone = rec.Compare(nil)
	if len(unexpected) != 1 || len(gone) != 0 {
		t.Errorf("with no allow-list: unexpected %q, gone %q; want the violation only", unexpected, gone)
	}
}
