package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/cessda/runbook/engine"
)

// TestGuidePrompt: the guided-failure prompt says what the playbook's policy is, answers
// an unknown key with what to type, will not skip without a reason (and says what a skip
// means), and records the reason of a rollback.
func TestGuidePrompt(t *testing.T) {
	var out bytes.Buffer
	in := strings.NewReader("x\ns\n\nb\nproduction looks wrong\n")
	tp := &terminalPrompter{in: in, out: &out, pause: func() {}, resume: func() {}}
	q := engine.GuideQuestion{Step: "verify_production", Name: "Production runs the staging image", Error: "digest differs", Policy: engine.OnErrorStop}
	c, err := tp.guide(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if c.Action != "rollback" || c.Reason != "production looks wrong" {
		t.Errorf("choice %+v", c)
	}
	text := out.String()
	for _, want := range []string{
		"Step verify_production (Production runs the staging image) failed: digest differs",
		"the playbook says: stop, resumable",
		`"x" is not an answer: type r (retry), s (skip), b (roll back) or t (stop).`,
		"Skipping verify_production (Production runs the staging image) means it is not done",
		"Why?",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the prompt does not say %q:\n%s", want, text)
		}
	}
}
