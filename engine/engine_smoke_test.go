package engine_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cessda/runbook/engine"
)

const smokePlaybook = `runbook: v1
product: cdc
title: CESSDA Data Catalogue
roles:
  service_owner: [owner-a]
inputs:
  version: {type: string, pattern: '\d+\.\d+\.\d+', required: true}
vars:
  repos: [a, b, c]
  tool: CDC ${{ inputs.version }}
steps:
  - id: first
    type: test.echo
    role: service_owner
    with:
      message: release ${{ vars.tool }}
      labels: ${{ vars.repos }}
  - id: each
    type: test.echo
    foreach: ${{ vars.repos }}
    with: {message: "repo ${{ item }} of ${{ steps.first.outputs.length }}"}
  - id: flaky
    type: test.flaky
    retry: {attempts: 3, backoff: 1s}
    with: {key: smoke, failures: 2}
  - id: skipped
    type: test.echo
    when: steps.flaky.outputs.calls > 5
    with: {message: never}
finally:
  - id: done
    type: test.echo
    with: {message: "done ${{ failure.status }}"}
`

func TestSmokeRun(t *testing.T) {
	// A fresh counter key, so the test also passes with -count=N.
	src := strings.Replace(smokePlaybook, "key: smoke", fmt.Sprintf("key: smoke%d", time.Now().UnixNano()), 1)
	pb, err := engine.Parse("smoke.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	in, err := pb.ResolveInputs(map[string]string{"version": "1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	store := &engine.MemStore{}
	rep, err := engine.Execute(context.Background(), pb, engine.Options{Inputs: in, Store: store, Clock: engine.NewFakeClock(time.Unix(0, 0)), Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != engine.RunSucceeded {
		t.Fatalf("status %s: %s", rep.Status, rep.Reason)
	}
	if got := rep.Step("first").Outputs["text"]; got != "release CDC 1.2.3" {
		t.Errorf("first.text = %v", got)
	}
	if got := rep.Step("flaky").Attempts; got != 3 {
		t.Errorf("flaky attempts = %d", got)
	}
	if got := rep.Step("skipped").Status; got != engine.StepSkipped {
		t.Errorf("skipped = %s", got)
	}
	if got := len(rep.Step("each").Items); got != 3 {
		t.Errorf("items = %d", got)
	}
	if got := rep.Step("each").Items[1].Outputs["text"]; got != "repo b of 17" {
		t.Errorf("item 1 text = %v", got)
	}
	if got := rep.Step("done").Outputs["text"]; got != "done succeeded" {
		t.Errorf("done text = %v", got)
	}
	doc, err := engine.BuildPlan(context.Background(), pb, in, engine.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var b = new(stringsBuilder)
	doc.WriteText(b)
	t.Log(b.String())
}

type stringsBuilder struct{ s []byte }

func (b *stringsBuilder) Write(p []byte) (int, error) { b.s = append(b.s, p...); return len(p), nil }
func (b *stringsBuilder) String() string              { return string(b.s) }
