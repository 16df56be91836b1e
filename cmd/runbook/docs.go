package main

import (
	"fmt"
	"path/filepath"
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
	var out, kind, fragments string
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of playbooks, fragments or site files, generated from the registered step types",
		Long: "Print the JSON Schema of playbooks (--kind playbook, the default), fragments (--kind fragment) or site files (--kind site).\n" +
			"The playbook schema checks an include's with: against the params of the fragment files --fragments names (by file name).\n\n" +
			"  runbook schema -o schema/playbook.schema.json\n  runbook schema --kind fragment -o schema/fragment.schema.json\n  runbook schema --kind site -o schema/site.schema.json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var b []byte
			var err error
			switch kind {
			case "playbook":
				var files []string
				if fragments != "" {
					files, err = filepath.Glob(fragments)
					if err != nil {
						return exitWith(exitInvalid, fmt.Errorf("--fragments: %v", err))
					}
				}
				b, err = engine.PlaybookSchema(files...)
			case "fragment":
				b, err = engine.FragmentSchema()
			case "site":
				b, err = engine.SiteSchema()
			default:
				return exitWith(exitInvalid, fmt.Errorf("--kind %q: playbook, fragment or site", kind))
			}
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
	cmd.Flags().StringVar(&kind, "kind", "playbook", "which schema: playbook, fragment or site")
	cmd.Flags().StringVar(&fragments, "fragments", "playbooks/fragments/*.yaml", "fragment files whose includes the playbook schema checks (a glob; empty: none)")
	return cmd
}
