// Package zenodosim is an in-process, stateful simulator of the Zenodo deposit API (the
// legacy REST surface that the InvenioRDM-based Zenodo serves), for tests and rehearsals of
// the zenodo steps, in the way net/http/httptest serves handlers. It listens on 127.0.0.1
// only; URL() is the API base ("http://127.0.0.1:PORT/api/") to use as a connection's url.
//
// Where the legacy docs and the current server code disagree it follows the server:
//
//   - POST /api/deposit/depositions answers 201 and always pre-reserves the DOI
//     10.5281/zenodo.<id> (10.5072 with Sandbox()); the concept gets its own id.
//   - GET one, GET list (q, status=draft|published, all_versions, page, size; newest first;
//     only the latest published version of a concept unless all_versions).
//   - PUT replaces the metadata (200) and rejects doi or a prereserve_doi object sent back.
//   - PUT {links.bucket}/{name} stores raw bytes (201, checksum "md5:<hex>", replaces a file
//     of that name); DELETE {bucket}/{name} removes one (204); a published record's bucket
//     is locked (403).
//   - actions/publish validates the required metadata and files and answers 400 in the RDM
//     form {"errors":[{"field":"metadata.creators","messages":[...]}]}, or 202 with state
//     done, doi, doi_url, conceptdoi, record_id and record_url.
//   - actions/edit (201, state inprogress); actions/discard (201: an edit back to done, or a
//     never-published draft deleted; 400 for a published record not being edited).
//   - DELETE /api/deposit/depositions/{id} of a draft, first or new version (204; 201 with
//     LegacyDelete(), as the legacy docs say): the draft, its bucket and reserved DOI go
//     (and a first version's concept); a new version's concept and published versions
//     stay and it can be versioned again. A published record, edited or not, is 403
//     {"status":403,"message":...} and left as is. Afterwards GET, DELETE and actions
//     answer 404 "PID does not exist.".
//   - actions/newversion only from the concept's latest published version; it returns the
//     new draft (with a copy of the previous files, metadata without version and date); a
//     second call while that draft exists returns the same draft. LegacyNewVersion()
//     answers the legacy way instead (the original, the draft at links.latest_draft).
//   - 401 without a known token (Bearer header or ?access_token=), 403 without the scope
//     (deposit:write for create/update/upload, deposit:actions for actions) or for another
//     owner's deposition, 415 for a non-JSON body on a JSON endpoint, 404/405 otherwise.
//   - Reading the deposit API (list, get) needs deposit:write too, as invenio-deposit's
//     read and search permissions check the write scope.
//   - GET /api/records/{id} serves a published version publicly (no token needed; a wrong
//     one is still 401); a concept id, a draft or an unknown id is 404 {"status":404,
//     "message":"The persistent identifier does not exist."}, as Zenodo answers since
//     InvenioRDM. GET /api/records?q=conceptrecid:ID&all_versions=true searches the
//     published versions ({"hits":{"hits":[...],"total":N}}).
//   - WithRateLimit(n, window): X-RateLimit-Limit/Remaining/Reset on every answer and 429
//     with Retry-After once a token exceeds n requests in the window (WithClock makes the
//     window follow a fake clock).
//
// Tokens: WithToken(token, owner, scopes...) adds an account's token. AcceptAnyToken() takes
// any non-empty token as owner 1 with both scopes, so a rehearsal works without seeding;
// there is no other "auto-create": a first version simply creates its concept, and a
// product with an existing concept is seeded with AddPublished.
//
// Seeding: AddPublished(Published{Title, Version, ConceptID, Owner, Metadata, Files})
// returns the record id and concept id of a published version; pass ConceptID again to
// add a later version of the same concept.
//
// Faults: Inject(Fault{Method, PathSuffix, Status, Delay, Drop, After, Times}) answers a
// status (5xx with no body, as Zenodo does), waits (real time: keep it to milliseconds),
// drops the connection, or with After lets the effect happen and then loses the answer.
// They apply to every route, DELETE and actions/discard included (After with Drop on a
// DELETE removes the draft and loses the answer).
//
// Observation: Requests() (method, path, query, content type, body size, status),
// Writes(), Depositions(), Created() (API-made depositions that still exist, so
// Depositions()-Created() is what was seeded), Discarded(), Reserved(doi),
// Publications(), Uploads(), Deposition(id) and FileData(id, name).
package zenodosim
