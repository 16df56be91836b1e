package main

import (
	"context"
	"errors"
	"io"

	"github.com/spf13/cobra"

	"github.com/cessda/runbook/engine"
)

type rehearseFlags struct{ on bool }

func (r *rehearseFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&r.on, "rehearse", false, "run against the built-in simulators")
}

func (r *rehearseFlags) setup(ctx context.Context, pb *engine.Playbook, o *engine.Options, w io.Writer) (func(), error) {
	return nil, errors.New("rehearsal is being built")
}

func (a *app) sandboxCmd() *cobra.Command { return &cobra.Command{Use: "sandbox", Hidden: true} }
