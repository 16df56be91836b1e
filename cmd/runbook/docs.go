package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/engine/markdown"
)

func (a *app) stepsCmd() *cobra.Command {
	var markdown bool
	return &cobra.Command{
		Use:   "steps [TYPE]",
		Short: "Reference of every step type: parameters, types, defaults, outputs",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			types := engine.StepTypes()
			if len(args) == 1 {
				st, ok := engine.LookupStepType(args[0])
				if !ok {
					var names []string
					for _, t := range types {
						names = append(names, t.Name)
					}
					return exitWith(exitInvalid, fmt.Errorf("no step type %q; step types: %s", args[0], strings.Join(names, ", ")))
				}
				writeStepDoc(a, st)
				return nil
			}
			if markdown {
				for _, st := range types {
					writeStepDoc(a, st)
				}
				return nil
			}
			for _, st := range types {
				fmt.Fprintf(a.stdout, "%-26s %s\n", st.Name, st.Summary)
			}
			fmt.Fprintf(a.stdout, "\nrunbook steps TYPE shows one type's parameters and outputs.\n")
			return nil
		},
	}
}

func writeStepDoc(a *app, st engine.StepType) {
	w := a.stdout
	fmt.Fprintf(w, "## %s\n\n%s\n\n", st.Name, markdown.Text(st.Summary))
	if st.Doc != "" {
		fmt.Fprintf(w, "%s\n\n", strings.TrimSpace(st.Doc))
	}
	if st.Connection != "" {
		fmt.Fprintf(w, "Connection type: %s.\n\n", markdown.Code(st.Connection))
	}
	fmt.Fprintf(w, "| parameter | type | required | default | description |\n|---|---|---|---|---|\n")
	var rows func(prefix string, ps []engine.Param)
	rows = func(prefix string, ps []engine.Param) {
		for _, p := range ps {
			req := ""
			if p.Required {
				req = "yes"
			}
			desc := p.Desc
			if len(p.Enum) > 0 {
				desc += " (one of: " + strings.Join(p.Enum, ", ") + ")"
			}
			if p.Secret {
				desc += " (secret: redacted)"
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", markdown.CodeCell(prefix+p.Name), markdown.Text(string(p.Type)), req, markdown.CodeCell(p.Default), markdown.Text(desc))
			if len(p.Fields) > 0 {
				sub := prefix + p.Name + "."
				if strings.HasPrefix(string(p.Type), "list<") {
					sub = prefix + p.Name + "[]."
				}
				rows(sub, p.Fields)
			}
		}
	}
	rows("", engine.ParamsOf(st))
	if len(st.Outputs) > 0 {
		fmt.Fprintf(w, "\n| output | type | description |\n|---|---|---|\n")
		for _, o := range st.Outputs {
			fmt.Fprintf(w, "| %s | %s | %s |\n", markdown.CodeCell(o.Name), markdown.Text(string(o.Type)), markdown.Text(o.Desc))
		}
	}
	fmt.Fprintln(w)
}

func (a *app) schemaCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Print the playbook JSON Schema, generated from the registered step types",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := engine.PlaybookSchema()
			if err != nil {
				return err
			}
			if out != "" {
				return engine.WriteFileAtomic(out, b)
			}
			_, err = a.stdout.Write(b)
			return err
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to this file instead of standard output")
	return cmd
}

var _ = os.Stdout
