// Package zenodo archives a release on Zenodo: it reserves the DOI before the release (so
// the changelog can cite it) and publishes the record afterwards, as CESSDA's guidelines ask
// (record content: the `git archive` tarball, README and CHANGELOG; community cessda). A
// release that is refused or reverted discards its drafts instead.
//
// No maintained Go client of the Zenodo deposit API exists, so Client is a small one for
// what a release needs. It sends the token only as an Authorization: Bearer header, only
// to the API's own host (a downloaded GitHub tarball never sees it), and reads both error
// body forms: the legacy {"errors":[{"field","message"}]} and the InvenioRDM
// {"errors":[{"field","messages":[...]}]}. 401, 403 and 415 get a hint of what to check;
// 429 becomes engine.RetryAfter (Retry-After, else X-RateLimit-Reset); 5xx and network
// failures become engine.Transient.
//
// # Connection type "zenodo"
//
// url defaults to https://zenodo.org/api/; the sandbox is https://sandbox.zenodo.org/api/
// (a separate account and token, test DOIs 10.5072/...). The token defaults to the
// environment variable ZENODO_TOKEN and needs the scopes deposit:write and deposit:actions.
//
// # zenodo.reserve_doi
//
// Params: title (required), version (required), concept_id (the product's concept record
// id or any of its published versions' record ids; 0 starts a new concept).
// Outputs: doi, deposition_id (int), bucket_url, html_url, concept_doi (empty for a first
// version).
//
// Without concept_id it creates a draft with prereserve_doi and the title and version in
// its metadata. With concept_id it calls actions/newversion on the concept's latest
// published version (accepting both answers: the RDM one, the draft itself, and the legacy
// one, the original with links.latest_draft) and sets the draft's title and version. The
// draft id goes into the journal as soon as it exists. Before making anything it looks for
// this version: the journalled id, else the owner's depositions with metadata.version equal
// to version (of that concept, or with that title), else the concept's pending new-version
// draft; a record already published for this version is returned as is.
//
// # zenodo.publish
//
// Params: deposition_id, version, title, description, creators [{name "Family, Given",
// affiliation, orcid}] (all required); license (apache-2.0), upload_type (software),
// access_right (open), publication_date (today on the run's clock), communities ([cessda]),
// keywords, github_release (added as an isSupplementTo related identifier),
// related_identifiers [{identifier, relation, resource_type}], files [{source, name}] where
// source is a local path or an http(s) URL to download, keep_other_files (false: files in
// the draft that are not listed, such as the previous version's archive copied by
// newversion, are removed).
// Outputs: doi, concept_doi, record_url, record_id (int).
//
// It replaces the draft's metadata with the complete set (never sending doi or
// prereserve_doi back), uploads each file with PUT {bucket}/{name} unless a file of that
// name with the same md5 is there, and publishes (202). A deposition already published for
// this version gives its outputs without writing anything.
//
// # zenodo.discard
//
// Params: deposition_id (required: the draft from zenodo.reserve_doi; a playbook runs it
// with foreach over the components), reason (for the log).
// Outputs: discarded (bool), doi (the reserved DOI discarded), deposition_id (int).
//
// It reads the deposition first. 404 or 410: already gone, success (after a crash, or a
// second run); the DOI comes from the journal when an earlier attempt recorded it, else
// it is empty. Published (submitted, state done or inprogress): it fails, not transiently,
// and touches nothing, as a published record cannot be deleted, only versioned. A draft:
// its id, DOI and concept go into the journal, then DELETE deposit/depositions/{id} (204,
// or 201 as the legacy docs say). A new-version draft is deleted the same way, not with
// actions/discard: on InvenioRDM both routes are one handler, and on the legacy server
// actions/discard only drops an edit of a published record. A 404 or 403 to the DELETE
// is checked with another GET before it is believed (RDM answers 404 when the record was
// published meanwhile). The plan reads the deposition too: "discard Zenodo draft N (DOI
// x) of concept C", or "already gone" with no change; a published one fails the plan.
//
// # Preflight
//
// The steps check before a run, reading only: the token is there and accepted, with one
// GET deposit/depositions?size=1 per connection (401: not valid on that Zenodo; 403: it
// lacks deposit:write; deposit:actions shows only when an action is posted, which a
// preflight must not do). zenodo.reserve_doi with a known concept_id checks that it is a
// concept or record of the token's account, and otherwise asks the public records API
// whether it exists at all (GET records/{id}, and for a concept id, which that answers
// 404, a search conceptrecid:ID), so the message says "not found" or "another account's".
// zenodo.publish with a known deposition_id checks that the deposition exists, is the
// account's, and is not already published as another version. zenodo.discard with a known
// deposition_id checks that it is not published (a deposition already gone passes).
//
// # Simulator
//
// Package zenodosim is the stateful simulator these steps are tested against, following
// the current (RDM) server; see its documentation.
package zenodo
