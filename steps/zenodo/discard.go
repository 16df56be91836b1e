package zenodo

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/cessda/runbook/engine"
)

// ---- zenodo.discard ----

// Discard is the params of zenodo.discard.
type Discard struct {
	Connection   string `json:"connection" desc:"the zenodo connection to use"`
	DepositionID int    `json:"deposition_id" required:"true" desc:"the draft to discard: the deposition_id output of zenodo.reserve_doi"`
	Reason       string `json:"reason" desc:"why the draft is discarded, for the log, e.g. \"release refused\""`
}

const journalDiscard = "discard"

// discardIntent is journalled before the DELETE: once the draft is gone, the journal is
// the only place left to read its DOI from, for a resumed attempt's outputs.
type discardIntent struct {
	ID      int    `json:"id"`
	DOI     string `json:"doi"`
	Concept string `json:"concept"`
}

// isGone reports a 404 or 410 answer.
func isGone(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && (ae.Status == http.StatusNotFound || ae.Status == http.StatusGone)
}

// isPublished: a record being edited (inprogress) is published too.
func isPublished(d *Deposition) bool {
	return d.Submitted || d.State == "done" || d.State == "inprogress"
}

func publishedError(d *Deposition) error {
	msg := fmt.Sprintf("zenodo: deposition %d is published (DOI %s): a published record cannot be deleted, only versioned; nothing was discarded", d.ID, d.ReservedDOI())
	if d.State == "inprogress" {
		msg += " (its open edit is left as is)"
	}
	return errors.New(msg)
}

// describe names a draft for plans and logs.
func describe(d *Deposition) string {
	doi := d.ReservedDOI()
	if doi == "" {
		doi = "none reserved"
	}
	s := fmt.Sprintf("draft %d (DOI %s)", d.ID, doi)
	if d.ConceptRecID != "" {
		s += " of concept " + d.ConceptRecID
	}
	return s
}

// Plan reads the deposition: already gone, or the draft that would be discarded.
func (p *Discard) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	plan := engine.Plan{Action: fmt.Sprintf("discard Zenodo draft %s", sc.Show("deposition_id", p.DepositionID))}
	if p.Reason != "" || sc.Unknown("reason") {
		plan.Details = append(plan.Details, "reason: "+sc.Show("reason", p.Reason))
	}
	if sc.Unknown("deposition_id") || p.DepositionID <= 0 {
		return plan, nil
	}
	c, err := client(sc, p.Connection)
	if err != nil {
		plan.Details = append(plan.Details, "not checked: "+err.Error())
		return plan, nil
	}
	d, err := c.Get(ctx, p.DepositionID)
	switch {
	case isGone(err):
		plan.Action = fmt.Sprintf("nothing to do: Zenodo deposition %d is already gone", p.DepositionID)
		plan.NoChange = true
	case err != nil:
		plan.Details = append(plan.Details, "not checked: "+err.Error())
	case isPublished(d):
		// Run would fail: say so now rather than plan a deletion that cannot happen.
		return plan, publishedError(d)
	default:
		plan.Action = "discard Zenodo " + describe(d)
		if d.ConceptDOI != "" {
			plan.Details = append(plan.Details, "a new version: the concept's published versions ("+d.ConceptDOI+") stay")
		}
	}
	return plan, nil
}

// Run deletes the draft, after checking that it is one.
func (p *Discard) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	if p.DepositionID <= 0 {
		return nil, fmt.Errorf("zenodo: deposition_id is %d: give the deposition_id output of zenodo.reserve_doi", p.DepositionID)
	}
	c, err := client(sc, p.Connection)
	if err != nil {
		return nil, err
	}
	var intent discardIntent
	if !sc.Recall(journalDiscard, &intent) || intent.ID != p.DepositionID {
		intent = discardIntent{}
	}
	// Always read first: a resumed attempt may find the draft already deleted.
	d, err := c.Get(ctx, p.DepositionID)
	switch {
	case isGone(err):
		return p.gone(sc, intent), nil
	case err != nil:
		return nil, err
	case isPublished(d):
		return nil, publishedError(d)
	}
	intent = discardIntent{ID: d.ID, DOI: d.ReservedDOI(), Concept: d.ConceptRecID}
	if err := sc.Record(journalDiscard, intent); err != nil {
		return nil, err
	}
	why := ""
	if p.Reason != "" {
		why = ": " + p.Reason
	}
	sc.Logf("discarding %s%s", describe(d), why)
	// DELETE for every draft, first version or new version, never actions/discard: on
	// the current (InvenioRDM) Zenodo both routes call the same delete_draft, while on
	// the legacy server actions/discard only drops an edit of a published record (it
	// restores the last published version and fails for a never-published draft) and
	// DELETE is what removes a draft, detaches a new version from its concept and frees
	// the reserved DOI.
	if err := c.Delete(ctx, d.ID); err != nil {
		var ae *APIError
		if !errors.As(err, &ae) || (ae.Status != http.StatusForbidden && !isGone(err)) {
			return nil, err // 5xx and network errors are transient: the retry reads first
		}
		// 404/403 may mean it was published meanwhile (RDM answers 404 to DELETE of a
		// published record without an open edit): look again before believing it.
		now, gerr := c.Get(ctx, d.ID)
		switch {
		case isGone(gerr):
			// Gone, as asked.
		case gerr != nil:
			return nil, err
		case isPublished(now):
			return nil, publishedError(now)
		case isGone(err):
			return nil, engine.Transient(fmt.Errorf("zenodo: DELETE of deposition %d answered %d, yet it is still a draft", d.ID, ae.Status))
		default:
			return nil, err
		}
	}
	sc.Logf("discarded draft %d: DOI %s is no longer reserved", d.ID, intent.DOI)
	return engine.Outputs{"discarded": true, "doi": intent.DOI, "deposition_id": p.DepositionID}, nil
}

// gone is the answer for a deposition that no longer exists. Its DOI is known only when
// an earlier attempt journalled it before deleting.
func (p *Discard) gone(sc *engine.StepContext, intent discardIntent) engine.Outputs {
	if intent.ID == p.DepositionID && intent.DOI != "" {
		sc.Logf("deposition %d (DOI %s) is already gone: an earlier attempt discarded it", p.DepositionID, intent.DOI)
	} else {
		sc.Logf("deposition %d is already gone: nothing to discard", p.DepositionID)
	}
	return engine.Outputs{"discarded": true, "doi": intent.DOI, "deposition_id": p.DepositionID}
}
