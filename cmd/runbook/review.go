package main

// This file belongs to the pull-request review work: `runbook report`, `plan --base` and
// `runbook comment`.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cessda/runbook/engine"
	"github.com/cessda/runbook/engine/review"
	"github.com/cessda/runbook/steps/github"
)

func (a *app) reportCmd() *cobra.Command {
	var format, output, target, marker, apiURL string
	cmd := &cobra.Command{
		Use:   "report REPORT",
		Short: "Render a run's report for people (markdown for the release issue, or one html page)",
		Long: `Render a run's JSON report for people: the outcome, who ran it and when, every step
with its role, timing and links, the choices people made, and what went wrong.

REPORT is a report.json, a run directory or a run id (looked up in --state-dir).
With --comment OWNER/REPO#N the Markdown is posted as the release report comment on that
issue (one comment, updated in place on later calls; token from $GITHUB_TOKEN).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "markdown" && format != "html" {
				return exitWith(exitInvalid, fmt.Errorf("--format %q: use markdown or html", format))
			}
			if target != "" && format != "markdown" {
				return exitWith(exitInvalid, errors.New("--comment posts Markdown: use --format markdown"))
			}
			state, err := a.backend()
			if err != nil {
				return err
			}
			rep, err := state.readReport(cmd.Context(), args[0])
			if err != nil {
				return exitWith(exitInvalid, err)
			}
			var buf bytes.Buffer
			if format == "html" {
				err = review.WriteReportHTML(&buf, rep)
			} else {
				err = review.WriteReportMarkdown(&buf, rep)
			}
			if err != nil {
				return err
			}
			if target != "" {
				return a.postComment(cmd.Context(), target, marker, apiURL, buf.String())
			}
			return a.writeOut(output, buf.Bytes())
		},
	}
	cmd.Flags().StringVar(&format, "format", "markdown", "output format: markdown or html")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to this file instead of standard output")
	cmd.Flags().StringVar(&target, "comment", "", "post the Markdown as one comment on this issue: OWNER/REPO#NUMBER")
	cmd.Flags().StringVar(&marker, "marker", "release-report", "with --comment: the hidden marker that identifies the comment")
	addAPIFlag(cmd, &apiURL)
	return cmd
}

// readReport reads a report from a path, a run directory or a run id.
func readReport(stateDir, arg string) (*engine.Report, error) {
	p := arg
	if st, err := os.Stat(arg); err == nil && st.IsDir() {
		p = filepath.Join(arg, "report.json")
	} else if err != nil {
		dir, ferr := findRunDir(stateDir, arg)
		if ferr != nil {
			return nil, fmt.Errorf("%s: no such report file, and %v", arg, ferr)
		}
		p = filepath.Join(dir, "report.json")
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return decodeReport(b, p)
}

func (a *app) writeOut(path string, b []byte) error {
	if path == "" || path == "-" {
		_, err := a.stdout.Write(b)
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// planDiff compares the plan of the playbook now (doc) with its plan at the git ref base
// and prints what the change does to the release.
func (a *app) planDiff(ctx context.Context, file, base string, sets []string, doc *engine.PlanDoc, format string, offline bool) error {
	d, err := a.buildDiff(ctx, file, base, sets, doc, offline)
	if err != nil {
		return err
	}
	switch format {
	case "json":
		err = d.WriteJSON(a.stdout)
	case "markdown":
		err = d.WriteMarkdown(a.stdout)
	default:
		err = d.WriteText(a.stdout)
	}
	if err != nil {
		return err
	}
	if errs := doc.Errors(); len(errs) > 0 {
		return exitWith(exitFailed, fmt.Errorf("plan: %d step(s) could not be planned (first: %s: %s)", len(errs), errs[0].ID, errs[0].Error))
	}
	return nil
}

func (a *app) buildDiff(ctx context.Context, file, base string, sets []string, doc *engine.PlanDoc, offline bool) (*review.PlanDiff, error) {
	var baseDoc *engine.PlanDoc
	note := ""
	pb, label, err := review.LoadAtRef(ctx, file, base)
	switch {
	case errors.Is(err, review.ErrNotAtRef):
		note = fmt.Sprintf("%s does not exist at %s: every step is new.", filepath.ToSlash(file), base)
	case err != nil && label == "":
		return nil, exitWith(exitInvalid, err)
	case err != nil && strings.HasPrefix(err.Error(), "--base"):
		return nil, exitWith(exitInvalid, err)
	case err != nil:
		// The base does not validate (the change may be the fix): compare with nothing,
		// and say so.
		fmt.Fprintln(a.stderr, err)
		note = fmt.Sprintf("The playbook at %s does not validate, so every step is shown as new (see the CI log).", base)
	default:
		in, ierr := pb.ResolveInputs(baseSets(pb, sets))
		if ierr == nil {
			baseDoc, ierr = engine.BuildPlan(ctx, pb, in, engine.PlanOptions{Offline: offline})
		}
		if ierr != nil {
			fmt.Fprintf(a.stderr, "plan at %s: %v\n", base, ierr)
			note = fmt.Sprintf("The playbook at %s could not be planned with these inputs, so every step is shown as new (see the CI log).", base)
			baseDoc = nil
		} else {
			baseDoc.Playbook = label
		}
	}
	d := review.Diff(baseDoc, doc)
	d.Base, d.Head, d.Note = label, filepath.ToSlash(file), note
	if d.Base == "" {
		d.Base = base
	}
	return d, nil
}

// baseSets keeps the --set values the base playbook declares: an input added by the
// change is not an error at the base.
func baseSets(pb *engine.Playbook, sets []string) map[string]string {
	known := map[string]bool{}
	for _, in := range pb.Inputs {
		known[in.Name] = true
	}
	out := map[string]string{}
	for _, s := range sets {
		if k, v, ok := strings.Cut(s, "="); ok && known[k] {
			out[k] = v
		}
	}
	return out
}

// commentCmd posts or updates one comment on an issue or pull request, identified by a
// hidden marker, so a CI job keeps a single up-to-date preview instead of piling up
// comments.
func (a *app) commentCmd() *cobra.Command {
	var marker, apiURL string
	cmd := &cobra.Command{
		Use:   "comment OWNER/REPO#NUMBER [FILE]",
		Short: "Post or update one comment on a pull request or issue (e.g. a plan preview)",
		Long: `Post FILE (or standard input) as a comment on an issue or pull request, or update the
comment posted before with the same --marker (kept in a hidden HTML comment), so a CI job
keeps one up-to-date preview:

  runbook plan playbooks/cdc.yaml --base origin/main --format markdown --offline > preview.md
  runbook comment cessda/cessda.cdc.versions#42 preview.md --marker plan-preview

The token is read from $GITHUB_TOKEN; --github-url (or $GITHUB_API_URL) selects GitHub
Enterprise.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var body []byte
			var err error
			if len(args) == 2 && args[1] != "-" {
				body, err = os.ReadFile(args[1])
			} else {
				body, err = io.ReadAll(a.stdin)
			}
			if err != nil {
				return exitWith(exitInvalid, err)
			}
			if strings.TrimSpace(string(body)) == "" {
				return exitWith(exitInvalid, errors.New("comment: the body is empty"))
			}
			return a.postComment(cmd.Context(), args[0], marker, apiURL, string(body))
		},
	}
	cmd.Flags().StringVar(&marker, "marker", "plan-preview", "identifies the comment to update (one comment per marker)")
	addAPIFlag(cmd, &apiURL)
	return cmd
}

func addAPIFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVar(p, "github-url", envOr("GITHUB_API_URL", "https://api.github.com/"), "GitHub API base URL, for GitHub Enterprise ($GITHUB_API_URL)")
}

// maxCommentBytes stays under GitHub's limit of 65536 characters for a comment body,
// leaving room for the marker and the truncation note.
const maxCommentBytes = 64000

// commentClock is the clock the comment command backs off on (tests make it fake).
var commentClock engine.Clock = engine.RealClock{}

// postComment upserts the marked comment through the github.comment step type, used as
// a library: the same marker format, pagination, error mapping and token handling.
func (a *app) postComment(ctx context.Context, target, marker, apiURL, body string) error {
	repo, num, err := parseTarget(target)
	if err != nil {
		return exitWith(exitInvalid, err)
	}
	if strings.TrimSpace(marker) == "" || strings.Contains(marker, "--") {
		return exitWith(exitInvalid, fmt.Errorf("--marker %q: give a short name without \"--\"", marker))
	}
	if len(body) > maxCommentBytes {
		cut := strings.LastIndexByte(body[:maxCommentBytes], '\n')
		if cut < 0 {
			cut = maxCommentBytes
		}
		body = body[:cut] + "\n\n</details></details>\n\n_… cut: the full text is longer than a GitHub comment may be; see the CI log._"
	}
	conn := &engine.Connection{Name: "github", Type: "github", URL: apiURL, TokenEnv: "GITHUB_TOKEN"}
	sc := &engine.StepContext{RunID: "comment", StepID: "comment", Actor: engine.CurrentActor(), Clock: commentClock,
		Connections: oneConnection{conn}, LogFunc: func(line string) {
			if !a.quiet {
				fmt.Fprintln(a.stderr, line)
			}
		}}
	step := &github.Comment{Repo: repo, Issue: num, Marker: marker, Body: strings.TrimRight(body, "\n")}
	// The upsert finds its own comment by the marker, so running it again after a
	// transient failure (even one after GitHub wrote) never makes a second comment.
	var out engine.Outputs
	for attempt := 1; ; attempt++ {
		out, err = step.Run(ctx, sc)
		transient, after := engine.IsTransient(err)
		if err == nil || !transient || attempt == 3 {
			break
		}
		if after <= 0 {
			after = time.Duration(attempt) * 2 * time.Second
		}
		fmt.Fprintf(a.stderr, "comment: %v; trying again in %s\n", err, after)
		if err := engine.Sleep(ctx, commentClock, after); err != nil {
			return err
		}
	}
	if err != nil {
		if errors.Is(err, engine.ErrNoSecret) {
			return exitWith(exitInvalid, fmt.Errorf("comment: %v", err))
		}
		return exitWith(exitFailed, err)
	}
	verb := "updated"
	if created, _ := out["created"].(bool); created {
		verb = "posted"
	}
	if !a.quiet {
		fmt.Fprintf(a.stdout, "%s comment %q on %s#%d: %v\n", verb, marker, repo, num, out["url"])
	}
	return nil
}

// parseTarget reads OWNER/REPO#NUMBER.
func parseTarget(s string) (string, int, error) {
	repo, n, ok := strings.Cut(s, "#")
	num, err := strconv.Atoi(n)
	if !ok || err != nil || num <= 0 || strings.Count(repo, "/") != 1 || strings.HasPrefix(repo, "/") || strings.HasSuffix(repo, "/") {
		return "", 0, fmt.Errorf("%q: write the pull request or issue as OWNER/REPO#NUMBER, e.g. cessda/cessda.cdc.versions#42", s)
	}
	return repo, num, nil
}

// oneConnection resolves every request to the one github connection.
type oneConnection struct{ c *engine.Connection }

func (o oneConnection) Connection(name, typ string) (*engine.Connection, error) {
	if typ != o.c.Type {
		return nil, fmt.Errorf("no %s connection", typ)
	}
	return o.c, nil
}
