package zenodo

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/cessda/runbook/engine"
)

// Preflight checks, reading only, that the connection's token is there and accepted for
// the deposit API, and that concept_id, when known, is a concept or record of the token's
// account (a new version can only be made by the record's owner).
func (p *ReserveDOI) Preflight(ctx context.Context, sc *engine.StepContext) error {
	c, conn, err := checkToken(ctx, sc, p.Connection)
	if err != nil || p.ConceptID == 0 || sc.Unknown("concept_id") {
		return err
	}
	return sc.Once(fmt.Sprintf("zenodo concept %s %d", conn.Name, p.ConceptID), func() error {
		all, err := c.List(ctx, ListOptions{AllVersions: true})
		if err != nil {
			return fmt.Errorf("zenodo connection %q: listing the token's depositions: %w", conn.Name, err)
		}
		if _, err := p.resolveConcept(ctx, c, all); err == nil {
			return nil
		}
		exists, err := recordExists(ctx, c, p.ConceptID)
		if err != nil {
			return fmt.Errorf("zenodo connection %q: looking up record %d: %w", conn.Name, p.ConceptID, err)
		}
		if exists {
			return fmt.Errorf("zenodo: concept_id %d on connection %q belongs to another account than the token in %s: only the record's owner can make a new version; use the owner's token, or check concept_id",
				p.ConceptID, conn.Name, c.TokenHint)
		}
		return fmt.Errorf("zenodo: concept_id %d not found on connection %q (%s answered 404: no record or concept has that id): check concept_id, and whether the connection should be production or the sandbox (their ids differ)",
			p.ConceptID, conn.Name, c.Base.Host)
	})
}

// Preflight checks, reading only, that the connection's token is accepted and that
// deposition_id, when known, is a deposition of the token's account that is not already
// published as another version.
func (p *Publish) Preflight(ctx context.Context, sc *engine.StepContext) error {
	c, conn, err := checkToken(ctx, sc, p.Connection)
	if err != nil || p.DepositionID == 0 || sc.Unknown("deposition_id") {
		return err
	}
	return sc.Once(fmt.Sprintf("zenodo deposition %s %d", conn.Name, p.DepositionID), func() error {
		d, err := c.Get(ctx, p.DepositionID)
		var ae *APIError
		switch {
		case errors.As(err, &ae) && (ae.Status == http.StatusNotFound || ae.Status == http.StatusGone):
			return fmt.Errorf("zenodo: deposition %d not found on connection %q (%d): check deposition_id (zenodo.reserve_doi outputs it; production and sandbox ids differ)", p.DepositionID, conn.Name, ae.Status)
		case errors.As(err, &ae) && ae.Status == http.StatusForbidden:
			return fmt.Errorf("zenodo: deposition %d on connection %q belongs to another account than the token in %s (403): use the owner's token, or check deposition_id", p.DepositionID, conn.Name, c.TokenHint)
		case err != nil:
			return fmt.Errorf("zenodo connection %q: reading deposition %d: %w", conn.Name, p.DepositionID, err)
		case d.Submitted && d.State == "done" && !sc.Unknown("version") && d.Version() != p.Version:
			return fmt.Errorf("zenodo: deposition %d on connection %q is already published as version %q, not %q: check deposition_id", d.ID, conn.Name, d.Version(), p.Version)
		}
		return nil
	})
}

// Preflight checks, reading only, that the connection's token is accepted and that
// deposition_id, when known, is not a published record (which cannot be deleted). A
// deposition that is already gone is fine: the step will find nothing to discard.
func (p *Discard) Preflight(ctx context.Context, sc *engine.StepContext) error {
	c, conn, err := checkToken(ctx, sc, p.Connection)
	if err != nil || p.DepositionID == 0 || sc.Unknown("deposition_id") {
		return err
	}
	return sc.Once(fmt.Sprintf("zenodo discard %s %d", conn.Name, p.DepositionID), func() error {
		d, err := c.Get(ctx, p.DepositionID)
		var ae *APIError
		switch {
		case isGone(err):
			return nil
		case errors.As(err, &ae) && ae.Status == http.StatusForbidden:
			return fmt.Errorf("zenodo: deposition %d on connection %q belongs to another account than the token in %s (403): use the owner's token, or check deposition_id", p.DepositionID, conn.Name, c.TokenHint)
		case err != nil:
			return fmt.Errorf("zenodo connection %q: reading deposition %d: %w", conn.Name, p.DepositionID, err)
		case isPublished(d):
			return fmt.Errorf("zenodo: deposition %d on connection %q is published (DOI %s): a published record cannot be deleted, only versioned; check deposition_id (it should be a draft from zenodo.reserve_doi)",
				d.ID, conn.Name, d.ReservedDOI())
		}
		return nil
	})
}

// checkToken makes one read of the deposit API per connection (GET
// deposit/depositions?size=1): 401 means the token is not valid there, 403 that it lacks
// deposit:write. Whether it also has deposit:actions shows only when an action is posted,
// which a preflight must not do.
func checkToken(ctx context.Context, sc *engine.StepContext, name string) (*Client, *engine.Connection, error) {
	conn, err := sc.Connection(name, ConnType)
	if err != nil {
		return nil, nil, fmt.Errorf("zenodo: %v", err)
	}
	c, err := client(sc, name)
	if err != nil {
		return nil, conn, err
	}
	err = sc.Once("zenodo token "+conn.Name, func() error {
		var batch []Deposition
		err := c.doJSON(ctx, http.MethodGet, c.URL("deposit/depositions", url.Values{"size": {"1"}}), nil, &batch)
		var ae *APIError
		switch {
		case errors.As(err, &ae) && ae.Status == http.StatusUnauthorized:
			return fmt.Errorf("zenodo connection %q: %s refused the token in %s (401): it is invalid, expired or revoked, or made for the other Zenodo (production and sandbox tokens differ); "+
				"create a personal access token with the scopes deposit:write and deposit:actions at %s and put it in %s", conn.Name, c.Base.Host, c.TokenHint, tokensPage(c), c.TokenHint)
		case errors.As(err, &ae) && ae.Status == http.StatusForbidden:
			return fmt.Errorf("zenodo connection %q: the token in %s is valid but lacks the deposit:write scope (403 from %s: %s); "+
				"create a token with the scopes deposit:write and deposit:actions at %s and put it in %s", conn.Name, c.TokenHint, c.Base.Host, ae.Message, tokensPage(c), c.TokenHint)
		case err != nil:
			return fmt.Errorf("zenodo connection %q: cannot check the token at %s: %w", conn.Name, c.Base.Host, err)
		}
		return nil
	})
	return c, conn, err
}

// tokensPage is where the account's tokens are made, on the API's host.
func tokensPage(c *Client) string {
	return (&url.URL{Scheme: c.Base.Scheme, Host: c.Base.Host, Path: "/account/settings/applications/tokens/new/"}).String()
}

// recordExists asks the public records API whether id is a published record or a concept.
// Zenodo answers 404 for a concept id at records/{id}, so a concept is looked up by
// searching its versions.
func recordExists(ctx context.Context, c *Client, id int) (bool, error) {
	err := c.doJSON(ctx, http.MethodGet, c.URL("records/"+strconv.Itoa(id), nil), nil, nil)
	var ae *APIError
	switch {
	case err == nil:
		return true, nil
	case !errors.As(err, &ae) || (ae.Status != http.StatusNotFound && ae.Status != http.StatusGone):
		return false, err
	}
	var found struct {
		Hits struct {
			Total int `json:"total"`
		} `json:"hits"`
	}
	q := url.Values{"q": {"conceptrecid:" + strconv.Itoa(id)}, "all_versions": {"true"}, "size": {"1"}}
	if err := c.doJSON(ctx, http.MethodGet, c.URL("records", q), nil, &found); err != nil {
		return false, err
	}
	return found.Hits.Total > 0, nil
}
