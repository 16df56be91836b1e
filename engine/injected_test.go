package engine_test

import (
	"strings"
	"testing"

	"github.com/cessda/runbook/engine"
)

type fakeClient struct{ name string }

func TestInjectedIsTyped(t *testing.T) {
	if _, ok, err := engine.Injected[*fakeClient](&engine.Connection{Name: "gh"}); ok || err != nil {
		t.Errorf("no client: ok %v err %v, want a real run's connection (false, nil)", ok, err)
	}
	want := &fakeClient{name: "sim"}
	got, ok, err := engine.Injected[*fakeClient](&engine.Connection{Name: "gh", Client: want})
	if !ok || err != nil || got != want {
		t.Errorf("injected: %v %v %v", got, ok, err)
	}
	_, ok, err = engine.Injected[*fakeClient](&engine.Connection{Name: "staging", Type: "kubernetes", Client: "not a client"})
	if ok || err == nil || !strings.Contains(err.Error(), `"staging"`) || !strings.Contains(err.Error(), "string") || !strings.Contains(err.Error(), "of type string, not *engine_test.fakeClient") {
		t.Errorf("miswired: ok %v err %v, want an error naming the connection and both types", ok, err)
	}
}
