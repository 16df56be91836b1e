package main

// This file belongs to the pull-request review work: `runbook report` and `plan --base`.

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/cessda/runbook/engine"
)

func (a *app) reportCmd() *cobra.Command { return &cobra.Command{Use: "report", Hidden: true} }

func (a *app) planDiff(ctx context.Context, file, base string, sets []string, doc *engine.PlanDoc, format string, offline bool) error {
	return errors.New("--base is not built yet")
}
