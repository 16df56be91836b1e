// Package zenodosim is an in-process, stateful simulator of the Zenodo deposit API (the
// legacy REST surface that the InvenioRDM-based Zenodo serves), for tests and rehearsals of
// the zenodo steps, in the way net/http/httptest serves handlers. It listens on 127.0.0.1
// only; URL() is the API base ("http://127.0.0.1:PORT/api/") to use as a connection's url.
//
// # Endpoints
//
// Each endpoint below is one ServeMux route of routes.go, written as
// "METHOD path → status content-type" for its answer when it succeeds;
// TestDocumentedEndpoints calls each one and fails when this list and the routes differ.
// Sources: "ref" is the project's contract brief /work/shared/reference/apis.md; "docs" is
// Zenodo's REST API documentation (github.com/zenodo/developers.zenodo.org,
// source/includes/...); "rdm" is the server, github.com/zenodo/zenodo-rdm
// site/zenodo_rdm/legacy/. Where docs and rdm disagree the simulator follows rdm.
//
//	GET /api/deposit/depositions → 200 application/json
//	    ?q= (terms field:value for conceptrecid, recid, id, version, title; or title words),
//	    status=draft|published, all_versions, page, size (default 10). A JSON array of the
//	    caller's depositions, newest first; of a concept only its latest published version
//	    unless all_versions. Needs deposit:write, as invenio-deposit's read and search do.
//	    ref §3.2 list; docs resources/deposit/_list.md; rdm resources.py
//	    LegacyRecordResource (search_user_records).
//	POST /api/deposit/depositions → 201 application/json
//	    Body {} or {"metadata":{...}}, Content-Type application/json (else 415); deposit:write.
//	    The new draft: state unsubmitted, metadata.prereserve_doi {"doi","recid"}: the DOI
//	    10.5281/zenodo.<id> (10.5072 with Sandbox()) is always reserved; the concept gets its
//	    own id. 400 for metadata of the wrong shape (RDM error form, below).
//	    ref §3.2 create, §3.3; docs resources/deposit/_create.md; rdm services.py
//	    LegacyRecordService.create (pids.create(scheme="doi")).
//	GET /api/deposit/depositions/{id} → 200 application/json
//	    The deposition in legacy JSON (ref §3.3): id, conceptrecid, owner, state, submitted,
//	    metadata, links (self, html, bucket, files, publish, edit, discard, newversion,
//	    latest_draft while a draft of the concept exists; after publication doi, record,
//	    latest), files. deposit:write. ref §3.3; docs resources/deposit/_retrieve.md and
//	    _representation.md; rdm serializers/schemas/legacyjson.py.
//	PUT /api/deposit/depositions/{id} → 200 application/json
//	    Body {"metadata":{...}}, application/json (else 415), replacing the metadata; 400 for
//	    a published deposition not being edited, for metadata.doi or a prereserve_doi object
//	    sent back, or for metadata of the wrong shape. deposit:write. ref §3.2 update, §3.3;
//	    docs resources/deposit/_update.md; rdm resources.py (update_draft).
//	DELETE /api/deposit/depositions/{id} → 204 -
//	    Deletes a draft (first or new version): the draft, its bucket and reserved DOI go,
//	    and a first version's concept; a new version's concept and published versions stay.
//	    201 with no body under LegacyDelete(), as the docs say. A published record, edited
//	    or not, is 403 {"status":403,"message":...} and left as is; afterwards GET, DELETE
//	    and actions answer 404 "PID does not exist.". deposit:write. ref §3.4; docs
//	    resources/deposit/_delete.md; rdm resources.py (delete_draft).
//	GET /api/deposit/depositions/{id}/files → 200 application/json
//	    The files: [{"id","filename","filesize","checksum" (md5 hex),"links"}]. deposit:write.
//	    docs resources/deposit-files/_list.md; rdm resources.py LegacyDraftFilesResource.
//	POST /api/deposit/depositions/{id}/actions/publish → 202 application/json
//	    Checks the required metadata (upload_type, title, description, creators, license for
//	    open and embargoed, embargo_date, access_conditions) and files; 400 in the RDM form
//	    {"status":400,"message":"A validation error occurred.","errors":[{"field":
//	    "metadata.creators","messages":[...]}]}, or the deposition with state done, doi,
//	    doi_url, conceptdoi, record_id and record_url. deposit:actions (as every action; a
//	    body, if any, must be JSON). ref §3.2 publish, §3.3, §3.4; docs
//	    resources/deposit-actions/_publish.md; invenio-records-resources resources/errors.py.
//	POST /api/deposit/depositions/{id}/actions/edit → 201 application/json
//	    A published deposition becomes state inprogress; 400 otherwise. ref §3.2 edit; docs
//	    resources/deposit-actions/_edit.md.
//	POST /api/deposit/depositions/{id}/actions/discard → 201 application/json
//	    An edit goes back to the published metadata (state done); a never-published draft
//	    is deleted (as DELETE); 400 for a published record not being edited. ref §3.2
//	    discard; docs resources/deposit-actions/_discard.md; rdm resources.py (discard_draft
//	    is delete_draft).
//	POST /api/deposit/depositions/{id}/actions/newversion → 201 application/json
//	    Only from the concept's latest published version (400 otherwise): the new draft,
//	    with a copy of the previous files and the metadata without version and
//	    publication_date; while that draft exists, the same draft again. LegacyNewVersion()
//	    answers as the docs say instead: the original, the draft at links.latest_draft.
//	    ref §3.2 new version; docs resources/deposit-actions/_newversion.md; rdm resources.py
//	    LegacyRecordResource.new_version (item.to_dict(), 201).
//	POST /api/deposit/depositions/{id}/actions/{action} → 404 application/json
//	    Any other action, once the deposition and scope are checked.
//	GET /api/files/{bucket} → 200 application/json
//	    {"id","contents":[file objects as PUT answers them],"locked"}; 404 "Bucket does not
//	    exist." for an unknown or another owner's bucket. docs resources/files/_list.md; rdm
//	    resources.py LegacyFilesRESTResource (search).
//	PUT /api/files/{bucket}/{name} → 201 application/json
//	    Raw bytes (any Content-Type, not JSON-checked); stores or replaces the file of that
//	    name: {"key","mimetype","checksum":"md5:<hex>","size","version_id","created",
//	    "updated","is_head","delete_marker","links"}. A published record's bucket is locked
//	    (403). deposit:write. ref §3.2 upload (bucket), §3.3 files; docs
//	    resources/files/_create.md; rdm resources.py _create_or_update_file, set_object.
//	DELETE /api/files/{bucket}/{name} → 204 -
//	    Removes the file; 404 "Object does not exist." for none of that name; 403 when the
//	    bucket is locked. deposit:write. docs resources/files/_delete.md; rdm resources.py
//	    (delete_object, "", 204).
//	GET /api/records → 200 application/json
//	    Public (no token needed; a token sent must be valid). ?q= (as above), all_versions,
//	    page, size: published versions, the latest of each concept unless all_versions, in
//	    the InvenioRDM form {"hits":{"hits":[...],"total":N},"aggregations","links"}.
//	    docs resources/records/_list.md; invenio-rdm-records RDMRecordResource (search).
//	GET /api/records/{id} → 200 application/json
//	    Public. A published version: id, recid, conceptrecid, doi, doi_url, conceptdoi,
//	    metadata, links (self, self_html, parent, doi), files. A concept id, a draft or an
//	    unknown id is 404 {"status":404,"message":"The persistent identifier does not
//	    exist."}, as Zenodo answers since InvenioRDM. docs resources/records/_retrieve.md.
//
// Every route: 401 without a known token (Authorization: Bearer <token> or ?access_token=;
// the records routes take none), 403 without the scope (deposit:write, deposit:actions)
// or for another owner's deposition, 415 for a non-JSON body on a JSON endpoint, 405 for
// another method on /api/deposit/depositions[/{id}[/...]], 404 JSON otherwise. Errors are
// {"status":N,"message":...}, with "errors" for validation (ref §3.4); JSON answers carry
// Content-Type application/json. WithRateLimit(n, window): X-RateLimit-Limit, -Remaining
// and -Reset on every authenticated answer, and 429 with Retry-After once a token made
// more than n requests in the window (WithClock makes the window follow a fake clock)
// (ref §3.1; docs rate-limit/_root.md). Paths are routed without a trailing slash.
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
// Faults (simkit's, underneath): Inject(Fault{Method, PathSuffix, Status, Delay, Drop,
// After, Times}) answers a status (no body, as Zenodo's 5xx), waits (real time: keep it to
// milliseconds), drops the connection, or with After lets the effect happen and then
// loses the answer. PathSuffix names the route it breaks by its last segments
// ("/actions/publish"); "" is every route, DELETE and actions/discard included (After
// with Drop on a DELETE removes the draft and loses the answer).
//
// Observation: Requests() (simkit's request log: method, path, query, content type, body
// size, status), Writes() (the requests that asked for a change, answered or not),
// Depositions(), Created() (API-made depositions that still exist, so
// Depositions()-Created() is what was seeded), Discarded(), Reserved(doi),
// Publications(), Uploads(), Deposition(id) and FileData(id, name).
package zenodosim
