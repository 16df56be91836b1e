package manual

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cessda/runbook/engine"
)

func init() {
	engine.Register(engine.StepType{
		Name:    "manual",
		Summary: "Ask a person to do something by hand and confirm it",
		Doc: "Shows `instruction` to the operator and waits for a yes/no. Without a terminal the run " +
			"waits until `runbook resume RUN --confirm STEP` (or `--refuse`) records the answer. " +
			"A \"no\" ends the run as rejected, with the reason given.",
		New:  func() engine.Step { return &Manual{} },
		Gate: true,
		Outputs: []engine.Output{
			{Name: "confirmed_by", Type: engine.TypeString, Desc: "login of the person who confirmed"},
			{Name: "confirmed_at", Type: engine.TypeString, Desc: "when it was confirmed (RFC 3339)"},
		},
	})
}

// Manual is the params struct of the `manual` step type.
type Manual struct {
	Instruction string `json:"instruction" required:"true" desc:"what the person must do"`
	ConfirmText string `json:"confirm_text" desc:"the yes/no question asked; default \"Done: <instruction>?\""`
	Role        string `json:"role" desc:"the playbook role whose holder must do it, e.g. platform_maintainer"`
}

// confirmationKey is where the engine's `resume --confirm` records the answer; the step
// records terminal answers there too so that every path reads one place.
const confirmationKey = "confirmation"

// Validate rejects a blank instruction: a gate nobody can act on.
func (m *Manual) Validate() error {
	if strings.TrimSpace(m.Instruction) == "" {
		return fmt.Errorf("manual: instruction is empty")
	}
	return nil
}

// Plan says who would be asked to do what. It changes nothing.
func (m *Manual) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	p := engine.Plan{Action: "ask " + m.who(sc) + " to: " + sc.Show("instruction", m.Instruction)}
	if m.ConfirmText != "" {
		p.Details = append(p.Details, "question: "+sc.Show("confirm_text", m.ConfirmText))
	}
	var c engine.Confirmation
	if sc.Recall(confirmationKey, &c) {
		p.Details = append(p.Details, fmt.Sprintf("already answered %q by %s at %s", c.Answer, c.By, c.At.Format(time.RFC3339)))
		p.NoChange = true
	}
	return p, nil
}

// Run obtains the confirmation (see the package documentation for the order).
func (m *Manual) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	var c engine.Confirmation
	if sc.Recall(confirmationKey, &c) {
		return m.answer(sc, c)
	}
	switch {
	case sc.Prompter != nil:
		ok, err := sc.Prompter.Confirm(ctx, m.question(sc))
		if err != nil {
			return nil, fmt.Errorf("manual: asking for confirmation: %w", err)
		}
		c = engine.Confirmation{By: sc.Actor, At: sc.Now(), Answer: "yes"}
		if !ok {
			reason, err := sc.Prompter.Ask(ctx, "Why not? (the reason goes in the report)")
			if err != nil {
				return nil, fmt.Errorf("manual: asking for the reason of a refusal: %w", err)
			}
			c.Answer, c.Reason = "no", strings.TrimSpace(reason)
		}
	case sc.Rehearsal:
		c = engine.Confirmation{By: m.simulatedHolder(sc), At: sc.Now(), Answer: "yes"}
		sc.Logf("rehearsal: confirmed automatically as %s", c.By)
	default:
		return nil, engine.Waiting("%s — confirm with: runbook resume %s --confirm %s", m.prefix(sc)+m.Instruction, sc.RunID, sc.StepID)
	}
	if err := sc.Record(confirmationKey, c); err != nil {
		return nil, fmt.Errorf("manual: recording the answer: %w", err)
	}
	return m.answer(sc, c)
}

// answer turns a confirmation into the step's result.
func (m *Manual) answer(sc *engine.StepContext, c engine.Confirmation) (engine.Outputs, error) {
	switch Normalize(c.Answer) {
	case "yes":
	case "no":
		reason := c.Reason
		if reason == "" {
			reason = "no reason given"
		}
		sc.Logf("%s refused: %s", c.By, reason)
		return nil, engine.Rejected(c.By, reason)
	default:
		return nil, fmt.Errorf("manual: recorded answer %q is neither yes nor no; record it again with runbook resume %s --confirm %s", c.Answer, sc.RunID, sc.StepID)
	}
	if holders := sc.Roles[m.Role]; m.Role != "" && len(holders) > 0 && !slices.Contains(holders, c.By) {
		sc.Logf("note: %s does not hold role %s (held by %s)", c.By, m.Role, strings.Join(holders, ", "))
	}
	at := c.At
	if at.IsZero() {
		at = sc.Now()
	}
	sc.Logf("confirmed by %s at %s", c.By, at.Format(time.RFC3339))
	return engine.Outputs{"confirmed_by": c.By, "confirmed_at": at.Format(time.RFC3339)}, nil
}

// question is what the terminal shows: who must act, the instruction and the question.
func (m *Manual) question(sc *engine.StepContext) string {
	if m.ConfirmText == "" {
		return m.prefix(sc) + "Done: " + m.Instruction + "?"
	}
	return m.prefix(sc) + m.Instruction + "\n" + m.ConfirmText
}

// prefix names the role and its holders, or nothing when no role is given.
func (m *Manual) prefix(sc *engine.StepContext) string {
	if m.Role == "" {
		return ""
	}
	if h := sc.Roles[m.Role]; len(h) > 0 {
		return fmt.Sprintf("[%s: %s] ", m.Role, strings.Join(h, ", "))
	}
	return "[" + m.Role + "] "
}

// who says who will be asked, for the plan.
func (m *Manual) who(sc *engine.StepContext) string {
	if m.Role == "" {
		return "the operator"
	}
	if h := sc.Roles[m.Role]; len(h) > 0 {
		return m.Role + " (" + strings.Join(h, ", ") + ")"
	}
	return m.Role
}

// simulatedHolder is who confirms in a rehearsal: the role's first holder, else the actor.
func (m *Manual) simulatedHolder(sc *engine.StepContext) string {
	if h := sc.Roles[m.Role]; len(h) > 0 {
		return h[0]
	}
	if sc.Actor != "" {
		return sc.Actor
	}
	return "rehearsal"
}

// Normalize maps the ways people write an answer ("Yes", " y ", "NO") to "yes" or "no",
// and anything else to "".
func Normalize(answer string) string {
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "yes", "y", "true", "confirm", "confirmed":
		return "yes"
	case "no", "n", "false", "refuse", "refused":
		return "no"
	}
	return ""
}
