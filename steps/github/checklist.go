package github

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/cessda/runbook/engine"
)

var taskRE = regexp.MustCompile(`^(\s*[-*+]\s+\[)([ xX])(\].*)$`)

// findItem returns the index of the checklist line for key (its hidden marker) or, when
// no line carries the marker, the first task line whose text contains text.
func findItem(lines []string, key, text string) int {
	if key != "" {
		m := markerComment("item=" + key)
		for i, l := range lines {
			if taskRE.MatchString(l) && strings.Contains(l, m) {
				return i
			}
		}
	}
	if text != "" {
		// Match the item's text after its box, so ticking the box never changes whether
		// the line matches (a text of " " or "[ ] deploy" would otherwise be lost).
		for i, l := range lines {
			if m := taskRE.FindStringSubmatch(l); m != nil && strings.Contains(m[3][1:], text) {
				return i
			}
		}
	}
	return -1
}

// TickItem ticks one checklist item of a Markdown body, changing only that line's box.
// It reports whether the item was found and whether it was already ticked.
func TickItem(body, key, text string) (out string, found, already bool) {
	lines := strings.Split(body, "\n")
	i := findItem(lines, key, text)
	if i < 0 {
		return body, false, false
	}
	m := taskRE.FindStringSubmatch(lines[i])
	if m[2] != " " {
		return body, true, true
	}
	lines[i] = m[1] + "x" + m[3]
	return strings.Join(lines, "\n"), true, false
}

// itemTicked reports whether the item is present and ticked.
func itemTicked(body, key, text string) (found, ticked bool) {
	lines := strings.Split(body, "\n")
	i := findItem(lines, key, text)
	if i < 0 {
		return false, false
	}
	return true, taskRE.FindStringSubmatch(lines[i])[2] != " "
}

// Checklist ticks a checklist item of the release issue, or waits until a person ticks it.
type Checklist struct {
	Connection   string          `json:"connection" desc:"github connection to use"`
	Repo         string          `json:"repo" desc:"tracker repository, owner/name" required:"true"`
	Issue        int             `json:"issue" desc:"number of the release issue" required:"true"`
	Action       string          `json:"action" desc:"tick the item, or wait until a person ticks it" default:"tick" enum:"tick,wait"`
	Key          string          `json:"key" desc:"the item's key (its hidden marker)"`
	Text         string          `json:"text" desc:"the item's text, used when no line carries the key"`
	Wait         bool            `json:"wait" desc:"action wait: keep polling (true) or end the run in status waiting to be resumed (false)" default:"true"`
	Timeout      engine.Duration `json:"timeout" desc:"action wait: give up after this long" default:"168h"`
	PollInterval engine.Duration `json:"poll_interval" desc:"action wait: time between polls (conditional requests, free when nothing changed)" default:"1m"`
}

// Validate needs a key or a text.
func (p *Checklist) Validate() error {
	if p.Key == "" && p.Text == "" {
		return fmt.Errorf("github.checklist: give key or text")
	}
	return nil
}

func (p *Checklist) item() string {
	if p.Key != "" {
		return p.Key
	}
	return fmt.Sprintf("%q", p.Text)
}

// Plan reads the issue; it writes nothing.
func (p *Checklist) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	verb := "tick"
	if p.Action == "wait" {
		verb = "wait until a person ticks"
	}
	pl := engine.Plan{Action: fmt.Sprintf("%s checklist item %s in %s#%s", verb, p.item(), sc.Show("repo", p.Repo), sc.Show("issue", p.Issue))}
	if sc.Unknown("issue") || sc.Unknown("repo") {
		return pl, nil
	}
	c, o, r, err := repoClient(sc, p.Connection, p.Repo)
	if err != nil {
		return engine.Plan{}, err
	}
	is, err := c.getIssue(ctx, o, r, p.Issue)
	if err != nil {
		return engine.Plan{}, err
	}
	found, ticked := itemTicked(is.GetBody(), p.Key, p.Text)
	if !found {
		return engine.Plan{}, fmt.Errorf("github.checklist: no checklist item %s in %s", p.item(), is.GetHTMLURL())
	}
	pl.NoChange = ticked
	if ticked {
		pl.Details = []string{"already ticked"}
	}
	return pl, nil
}

// Run ticks the item (editing only its line) or waits for it.
func (p *Checklist) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	c, o, r, err := repoClient(sc, p.Connection, p.Repo)
	if err != nil {
		return nil, err
	}
	if p.Action == "wait" {
		return p.wait(ctx, sc, c, o, r)
	}
	is, err := c.editBody(ctx, o, r, p.Issue, func(b string) (string, error) {
		nb, found, _ := TickItem(b, p.Key, p.Text)
		if !found {
			return "", fmt.Errorf("github.checklist: no checklist item %s in %s/%s#%d", p.item(), o, r, p.Issue)
		}
		return nb, nil
	})
	if err != nil {
		return nil, err
	}
	sc.Logf("ticked %s in %s", p.item(), is.GetHTMLURL())
	return engine.Outputs{"ticked": true}, nil
}

func (p *Checklist) wait(ctx context.Context, sc *engine.StepContext, c *client, o, r string) (engine.Outputs, error) {
	start := sc.Now()
	for {
		is, err := c.getIssue(ctx, o, r, p.Issue)
		if err != nil {
			if ok, _ := engine.IsTransient(err); !ok {
				return nil, err
			}
			if d, perr := pollError(sc, err, start, p.Timeout.D()); perr != nil {
				return nil, perr
			} else if err := sc.Sleep(ctx, max(d, p.PollInterval.D())); err != nil {
				return nil, err
			}
			continue
		}
		found, ticked := itemTicked(is.GetBody(), p.Key, p.Text)
		if !found {
			return nil, fmt.Errorf("github.checklist: no checklist item %s in %s", p.item(), is.GetHTMLURL())
		}
		if ticked {
			sc.Logf("checklist item %s is ticked", p.item())
			return engine.Outputs{"ticked": true}, nil
		}
		if !p.Wait || sc.GatesEndRun {
			return nil, engine.Waiting("checklist item %s in %s is not ticked yet", p.item(), is.GetHTMLURL())
		}
		if sc.Now().Sub(start) >= p.Timeout.D() {
			return nil, fmt.Errorf("github.checklist: item %s in %s not ticked within %s", p.item(), is.GetHTMLURL(), p.Timeout)
		}
		if err := sc.Sleep(ctx, p.PollInterval.D()); err != nil {
			return nil, err
		}
	}
}

// pollError decides what a poll loop does with a transient error: wait the asked delay
// when that stays within the timeout (rate limits, 5xx), else give the error back for
// the engine to handle under the step's own timeout.
func pollError(sc *engine.StepContext, err error, start time.Time, timeout time.Duration) (time.Duration, error) {
	_, after := engine.IsTransient(err)
	if sc.Now().Add(after).Sub(start) > timeout {
		return 0, err
	}
	sc.Logf("%v; polling again", err)
	return after, nil
}
