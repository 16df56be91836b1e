package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cessda/runbook/engine"
)

// runsCmd lists the runs a state backend keeps, newest first, so that whoever takes over
// a release (another operator, a CI agent) can find it and resume it by its id.
func (a *app) runsCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "runs [PRODUCT]",
		Short: "List the runs kept in the state directory (or the --state namespace), newest first",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "text" && format != "json" {
				return exitWith(exitInvalid, fmt.Errorf("--format %q: use text or json", format))
			}
			product := ""
			if len(args) == 1 {
				product = args[0]
			}
			state, err := a.backend()
			if err != nil {
				return err
			}
			reps, err := state.runs(cmd.Context(), product)
			if err != nil {
				return err
			}
			sort.Slice(reps, func(i, j int) bool {
				if !reps[i].StartedAt.Equal(reps[j].StartedAt) {
					return reps[i].StartedAt.After(reps[j].StartedAt)
				}
				return reps[i].RunID > reps[j].RunID
			})
			rows := make([]runRow, 0, len(reps))
			for _, r := range reps {
				v, _ := r.Inputs["version"].(string)
				rows = append(rows, runRow{RunID: r.RunID, Product: r.Product, Version: v, Mode: r.Mode, Status: r.Status,
					Step: r.FailedStep, Reason: r.Reason, Actor: r.Actor, StartedAt: r.StartedAt, Sessions: len(r.Sessions)})
			}
			if format == "json" {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			}
			if len(rows) == 0 {
				fmt.Fprintln(a.stdout, "no runs")
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RUN\tVERSION\tMODE\tSTATUS\tAT STEP\tSTARTED BY\tSTARTED\tSESSIONS")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", r.RunID, dash(r.Version), r.Mode, r.Status, dash(r.Step), r.Actor,
					r.StartedAt.Local().Format(time.DateTime), r.Sessions)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}

// runRow is one run as `runbook runs` shows it.
type runRow struct {
	RunID     string           `json:"run_id"`
	Product   string           `json:"product"`
	Version   string           `json:"version,omitempty"`
	Mode      string           `json:"mode"`
	Status    engine.RunStatus `json:"status"`
	Step      string           `json:"step,omitempty"` // where it stopped
	Reason    string           `json:"reason,omitempty"`
	Actor     string           `json:"actor"`
	StartedAt time.Time        `json:"started_at"`
	Sessions  int              `json:"sessions"`
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
