package zenodo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/cessda/runbook/engine"
)

// Connection type and defaults.
const (
	ConnType        = "zenodo"
	DefaultURL      = "https://zenodo.org/api/"
	SandboxURL      = "https://sandbox.zenodo.org/api/"
	DefaultTokenEnv = "ZENODO_TOKEN"
)

func init() {
	engine.RegisterConnectionType(engine.ConnectionType{
		Name: ConnType,
		Summary: "Zenodo deposit API (production " + DefaultURL + "; the sandbox " + SandboxURL +
			" needs its own account and token and mints test DOIs 10.5072/...). The token needs the deposit:write and deposit:actions scopes and is sent only as an Authorization: Bearer header.",
		Settings:        map[string]string{"timeout": "longest wait for one API request, e.g. \"2m\" (uploads get an hour)"},
		DefaultURL:      DefaultURL,
		DefaultTokenEnv: DefaultTokenEnv,
	})
	engine.Register(engine.StepType{
		Name:    "zenodo.reserve_doi",
		Summary: "Create (or find, for this version) a Zenodo draft deposition with a reserved DOI, as a new version of the product's concept when there is one",
		Doc: "Reserves the DOI that the changelog cites before the release. With `concept_id` the draft is made with " +
			"`actions/newversion` from the concept's latest published version; without it a new concept is started. " +
			"A draft (or published record) of the owner with `metadata.version` equal to `version` (and, without a concept, the same title) is reused, so running it again reserves nothing new.",
		New:        func() engine.Step { return &ReserveDOI{} },
		Connection: ConnType,
		Outputs: []engine.Output{
			{Name: "doi", Type: engine.TypeString, Desc: "the reserved DOI, e.g. 10.5281/zenodo.1234 (minted as is on publish)"},
			{Name: "deposition_id", Type: engine.TypeInt, Desc: "the draft deposition's id (give it to zenodo.publish)"},
			{Name: "bucket_url", Type: engine.TypeString, Desc: "the draft's file bucket (links.bucket)"},
			{Name: "html_url", Type: engine.TypeString, Desc: "the draft's page on Zenodo (links.html)"},
			{Name: "concept_doi", Type: engine.TypeString, Desc: "the all-versions DOI, when the concept already has one (empty for a first version)"},
		},
	})
	engine.Register(engine.StepType{
		Name:    "zenodo.publish",
		Summary: "Complete a Zenodo draft's metadata, upload the release archive, README and CHANGELOG, and publish it",
		Doc: "Replaces the draft's metadata with the complete set, uploads each file to the bucket (skipping files whose md5 already matches), " +
			"and publishes. A deposition already published for this version is reported, not published again.",
		New:        func() engine.Step { return &Publish{} },
		Connection: ConnType,
		Outputs: []engine.Output{
			{Name: "doi", Type: engine.TypeString, Desc: "the version's DOI"},
			{Name: "concept_doi", Type: engine.TypeString, Desc: "the all-versions (concept) DOI, for the README"},
			{Name: "record_url", Type: engine.TypeString, Desc: "the published record's page"},
			{Name: "record_id", Type: engine.TypeInt, Desc: "the published record's id"},
		},
	})
	engine.Register(engine.StepType{
		Name:    "zenodo.discard",
		Summary: "Delete an unpublished Zenodo draft reserved by zenodo.reserve_doi, so a refused or reverted release leaves no draft (and no reserved DOI) behind",
		Doc: "Reads the deposition first. A deposition that is already gone (404/410) is success, so the step can run again after a crash. " +
			"A published deposition is never touched: the step fails, as a published record cannot be deleted, only versioned. " +
			"A draft, first version or new version alike, is deleted with `DELETE deposit/depositions/{id}`; the concept's published versions stay.",
		New:        func() engine.Step { return &Discard{} },
		Connection: ConnType,
		Outputs: []engine.Output{
			{Name: "discarded", Type: engine.TypeBool, Desc: "true once the draft is gone (also when it was gone already)"},
			{Name: "doi", Type: engine.TypeString, Desc: "the reserved DOI that was discarded (empty when the draft was gone before this step first saw it)"},
			{Name: "deposition_id", Type: engine.TypeInt, Desc: "the discarded draft's id"},
		},
	})
}

// client builds the API client for the step's connection.
func client(sc *engine.StepContext, name string) (*Client, error) {
	conn, err := sc.Connection(name, ConnType)
	if err != nil {
		return nil, fmt.Errorf("zenodo: %v", err)
	}
	token, err := conn.Secret()
	if err != nil {
		return nil, fmt.Errorf("zenodo: %v", err)
	}
	base := conn.URL
	if base == "" {
		base = DefaultURL
	}
	c, err := NewClient(base, conn.HTTP(), token)
	if err != nil {
		return nil, err
	}
	c.TokenHint = conn.SecretSource(DefaultTokenEnv)
	c.Now = sc.Now
	if v := conn.Setting("timeout", ""); v != "" {
		d, err := engine.ParseDuration(v)
		if err != nil {
			return nil, fmt.Errorf("zenodo: connection %q: setting timeout: %v", conn.Name, err)
		}
		c.Timeout = d
	}
	return c, nil
}

// ---- zenodo.reserve_doi ----

// ReserveDOI is the params of zenodo.reserve_doi.
type ReserveDOI struct {
	Connection string `json:"connection" desc:"the zenodo connection to use"`
	Title      string `json:"title" required:"true" desc:"the record's title, e.g. \"CESSDA Data Catalogue 3.4.0\"; also used to find this version's draft when there is no concept yet"`
	Version    string `json:"version" required:"true" desc:"the release version (metadata.version), e.g. 3.4.0"`
	ConceptID  int    `json:"concept_id" desc:"the product's concept record id, or the record id of any of its published versions; 0 starts a new concept"`
}

// Validate checks the version is not blank.
func (p *ReserveDOI) Validate() error {
	if strings.TrimSpace(p.Version) == "" {
		return errors.New("version must not be empty")
	}
	return nil
}

const journalDeposition = "deposition_id"

// Plan looks up (read-only) whether a draft for this version already exists.
func (p *ReserveDOI) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	version := sc.Show("version", p.Version)
	what := fmt.Sprintf("reserve a Zenodo DOI for version %s", version)
	if p.ConceptID != 0 || sc.Unknown("concept_id") {
		what += fmt.Sprintf(" as a new version of concept %s", sc.Show("concept_id", p.ConceptID))
	} else {
		what += fmt.Sprintf(" in a new draft %q", sc.Show("title", p.Title))
	}
	plan := engine.Plan{Action: what}
	if sc.Unknown("version") || sc.Unknown("concept_id") || sc.Unknown("title") {
		return plan, nil
	}
	c, err := client(sc, p.Connection)
	if err != nil {
		plan.Details = append(plan.Details, "not checked: "+err.Error())
		return plan, nil
	}
	d, err := p.find(ctx, sc, c)
	if err != nil {
		plan.Details = append(plan.Details, "not checked: "+err.Error())
		return plan, nil
	}
	if d != nil {
		plan.Action = fmt.Sprintf("reuse Zenodo deposition %d (%s) for version %s", d.ID, d.ReservedDOI(), p.Version)
		plan.NoChange = d.Version() == p.Version
		if !plan.NoChange {
			plan.Details = append(plan.Details, "set its metadata.version to "+p.Version)
		}
	}
	return plan, nil
}

// find returns this version's deposition if one exists: the one recorded in the journal,
// else a draft or record of the owner with this version (of this concept, or with this
// title when there is no concept), else a pending new-version draft of the concept.
func (p *ReserveDOI) find(ctx context.Context, sc *engine.StepContext, c *Client) (*Deposition, error) {
	var id int
	if sc.Recall(journalDeposition, &id) && id != 0 {
		d, err := c.Get(ctx, id)
		var ae *APIError
		switch {
		case err == nil && (d.Version() == "" || d.Version() == p.Version):
			return d, nil
		case err == nil:
			sc.Logf("deposition %d recorded earlier is for version %s, not %s; looking again", id, d.Version(), p.Version)
		case errors.As(err, &ae) && (ae.Status == 404 || ae.Status == 410):
			sc.Logf("deposition %d recorded earlier is gone; looking again", id)
		default:
			return nil, err
		}
	}
	all, err := c.List(ctx, ListOptions{AllVersions: true})
	if err != nil {
		return nil, err
	}
	concept := 0
	if p.ConceptID != 0 {
		concept, err = p.resolveConcept(ctx, c, all)
		if err != nil {
			return nil, err
		}
	}
	var pending *Deposition
	for i := range all {
		d := &all[i]
		if concept != 0 {
			if d.ConceptID() != concept {
				continue
			}
			if d.Version() == p.Version {
				return d, nil
			}
			if !d.Submitted && d.Version() == "" {
				pending = d
			}
			continue
		}
		if d.Version() == p.Version && strings.TrimSpace(d.Title()) == strings.TrimSpace(p.Title) {
			return d, nil
		}
	}
	return pending, nil
}

// resolveConcept turns ConceptID (a concept id or a version's record id) into the concept id.
func (p *ReserveDOI) resolveConcept(ctx context.Context, c *Client, all []Deposition) (int, error) {
	for _, d := range all {
		if d.ConceptID() == p.ConceptID {
			return p.ConceptID, nil
		}
	}
	for _, d := range all {
		if d.ID == p.ConceptID {
			return d.ConceptID(), nil
		}
	}
	return 0, fmt.Errorf("zenodo: concept_id %d is neither a concept nor a record of the token's account: check concept_id and that the token belongs to the record's owner", p.ConceptID)
}

// latestPublished returns the concept's latest published version among the owner's depositions.
func latestPublished(all []Deposition, concept int) *Deposition {
	var best *Deposition
	for i := range all {
		d := &all[i]
		if d.ConceptID() == concept && d.Submitted {
			if latest := d.Link("latest"); latest != "" && !strings.HasSuffix(latest, fmt.Sprintf("/%d", d.ID)) {
				continue
			}
			if best == nil || d.ID > best.ID {
				best = d
			}
		}
	}
	return best
}

// Run reserves the DOI.
func (p *ReserveDOI) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	c, err := client(sc, p.Connection)
	if err != nil {
		return nil, err
	}
	d, err := p.find(ctx, sc, c)
	if err != nil {
		return nil, err
	}
	if d != nil {
		sc.Logf("found deposition %d (%s) for version %s", d.ID, d.ReservedDOI(), p.Version)
	} else if p.ConceptID != 0 {
		all, err := c.List(ctx, ListOptions{AllVersions: true, Status: "published"})
		if err != nil {
			return nil, err
		}
		concept, err := p.resolveConcept(ctx, c, all)
		if err != nil {
			return nil, err
		}
		latest := latestPublished(all, concept)
		if latest == nil {
			return nil, fmt.Errorf("zenodo: concept %d has no published version to make a new version from", concept)
		}
		d, err = c.NewVersion(ctx, latest.ID)
		if err != nil {
			return nil, err
		}
		sc.Logf("made new-version draft %d of concept %d from record %d", d.ID, concept, latest.ID)
		if v := d.Version(); v != "" && v != p.Version {
			sc.Logf("Zenodo keeps one pending draft per concept: draft %d was started for version %s and now becomes %s", d.ID, v, p.Version)
		}
	} else {
		d, err = c.Create(ctx, map[string]any{
			"title": p.Title, "version": p.Version, "upload_type": "software", "prereserve_doi": true,
		})
		if err != nil {
			return nil, err
		}
		sc.Logf("created draft deposition %d", d.ID)
	}
	// Remember the draft at once, so a crash before the outputs are saved does not make a second one.
	if err := sc.Record(journalDeposition, d.ID); err != nil {
		return nil, err
	}
	if !d.Submitted && (d.Version() != p.Version || d.ReservedDOI() == "") {
		md := cleanMetadata(d.Metadata)
		md["version"] = p.Version
		md["prereserve_doi"] = true
		md["title"] = p.Title
		if d, err = c.Update(ctx, d.ID, md); err != nil {
			return nil, err
		}
	}
	if d.Submitted && d.Version() == p.Version {
		sc.Logf("version %s is already published as %s", p.Version, d.DOI)
	}
	doi := d.ReservedDOI()
	if doi == "" {
		return nil, fmt.Errorf("zenodo: deposition %d has no reserved DOI (metadata.prereserve_doi is empty)", d.ID)
	}
	sc.Link("Zenodo draft "+p.Version, d.Link("html"))
	sc.Link("DOI "+doi, "https://doi.org/"+doi)
	return engine.Outputs{
		"doi": doi, "deposition_id": d.ID, "bucket_url": d.Link("bucket"), "html_url": d.Link("html"),
		"concept_doi": d.ConceptDOI,
	}, nil
}

// cleanMetadata copies metadata without the keys Zenodo manages (it rejects them in a PUT).
func cleanMetadata(md map[string]any) map[string]any {
	out := make(map[string]any, len(md))
	for k, v := range md {
		if k == "doi" || k == "prereserve_doi" || k == "conceptdoi" {
			continue
		}
		out[k] = v
	}
	return out
}

// ---- zenodo.publish ----

// Creator is an author of the record.
type Creator struct {
	Name        string `json:"name" required:"true" desc:"\"Family, Given\""`
	Affiliation string `json:"affiliation" desc:"e.g. CESSDA ERIC"`
	ORCID       string `json:"orcid" desc:"ORCID iD, e.g. 0000-0002-1825-0097"`
}

// Related is a related identifier.
type Related struct {
	Identifier   string `json:"identifier" required:"true" desc:"a URL or DOI"`
	Relation     string `json:"relation" default:"isSupplementTo" desc:"e.g. isSupplementTo, isDocumentedBy, isNewVersionOf"`
	ResourceType string `json:"resource_type" desc:"e.g. software"`
}

// File is a file to upload.
type File struct {
	Source string `json:"source" required:"true" desc:"a local path, or an http(s) URL to download (e.g. the GitHub release tarball); the Zenodo token is never sent there"`
	Name   string `json:"name" desc:"the file name in the record (default: the base name of source)"`
}

// Publish is the params of zenodo.publish.
type Publish struct {
	Connection         string    `json:"connection" desc:"the zenodo connection to use"`
	DepositionID       int       `json:"deposition_id" required:"true" desc:"the draft from zenodo.reserve_doi"`
	Version            string    `json:"version" required:"true" desc:"the release version, e.g. 3.4.0"`
	Title              string    `json:"title" required:"true" desc:"the record's title"`
	Description        string    `json:"description" required:"true" desc:"the record's description (HTML allowed), e.g. the release notes"`
	Creators           []Creator `json:"creators" required:"true" desc:"authors, name as \"Family, Given\""`
	License            string    `json:"license" default:"apache-2.0" desc:"a license id Zenodo knows, e.g. apache-2.0, mit"`
	UploadType         string    `json:"upload_type" default:"software" enum:"software,publication,dataset,other" desc:"the record's type"`
	AccessRight        string    `json:"access_right" default:"open" enum:"open,embargoed,restricted,closed" desc:"who can access the files"`
	PublicationDate    string    `json:"publication_date" desc:"YYYY-MM-DD; default today (the run's clock)"`
	Communities        []string  `json:"communities" default:"[cessda]" desc:"community identifiers to submit to"`
	Keywords           []string  `json:"keywords" desc:"keywords"`
	GitHubRelease      string    `json:"github_release" desc:"the GitHub release URL, added as a related identifier (isSupplementTo)"`
	RelatedIdentifiers []Related `json:"related_identifiers" desc:"more related identifiers"`
	Files              []File    `json:"files" desc:"files to upload: the release archive (git archive tarball, local or URL), README, CHANGELOG"`
	KeepOtherFiles     bool      `json:"keep_other_files" desc:"keep files already in the draft that are not in files (by default they are removed, so a new version does not carry the previous version's archive)"`
}

// Validate checks cross-field rules.
func (p *Publish) Validate() error {
	seen := map[string]bool{}
	for _, f := range p.Files {
		n := f.fileName()
		if n == "" || n == "." || n == "/" {
			return fmt.Errorf("files: cannot derive a file name from %q; give name", f.Source)
		}
		if seen[n] {
			return fmt.Errorf("files: two files are named %q", n)
		}
		seen[n] = true
	}
	for _, c := range p.Creators {
		if !strings.Contains(c.Name, ",") {
			return fmt.Errorf("creators: %q should be written \"Family, Given\"", c.Name)
		}
	}
	return nil
}

func (f File) fileName() string {
	if f.Name != "" {
		return f.Name
	}
	if isURL(f.Source) {
		return path.Base(strings.SplitN(strings.SplitN(f.Source, "?", 2)[0], "#", 2)[0])
	}
	return filepath.Base(f.Source)
}

func isURL(s string) bool { return strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://") }

// metadata is the complete metadata to send.
func (p *Publish) metadata(sc *engine.StepContext) map[string]any {
	date := p.PublicationDate
	if date == "" {
		date = sc.Now().UTC().Format("2006-01-02")
	}
	var creators []any
	for _, c := range p.Creators {
		m := map[string]any{"name": c.Name}
		if c.Affiliation != "" {
			m["affiliation"] = c.Affiliation
		}
		if c.ORCID != "" {
			m["orcid"] = c.ORCID
		}
		creators = append(creators, m)
	}
	md := map[string]any{
		"title": p.Title, "version": p.Version, "upload_type": p.UploadType, "publication_date": date,
		"description": p.Description, "creators": creators, "access_right": p.AccessRight,
	}
	if p.License != "" {
		md["license"] = p.License
	}
	if len(p.Communities) > 0 {
		var cs []any
		for _, c := range p.Communities {
			cs = append(cs, map[string]any{"identifier": c})
		}
		md["communities"] = cs
	}
	if len(p.Keywords) > 0 {
		md["keywords"] = p.Keywords
	}
	var rel []any
	if p.GitHubRelease != "" {
		rel = append(rel, map[string]any{"identifier": p.GitHubRelease, "relation": "isSupplementTo", "resource_type": "software"})
	}
	for _, r := range p.RelatedIdentifiers {
		m := map[string]any{"identifier": r.Identifier, "relation": r.Relation}
		if m["relation"] == "" {
			m["relation"] = "isSupplementTo"
		}
		if r.ResourceType != "" {
			m["resource_type"] = r.ResourceType
		}
		rel = append(rel, m)
	}
	if len(rel) > 0 {
		md["related_identifiers"] = rel
	}
	return md
}

// Plan says what would be uploaded and published.
func (p *Publish) Plan(ctx context.Context, sc *engine.StepContext) (engine.Plan, error) {
	plan := engine.Plan{Action: fmt.Sprintf("publish Zenodo deposition %s as %q version %s",
		sc.Show("deposition_id", p.DepositionID), sc.Show("title", p.Title), sc.Show("version", p.Version))}
	for _, f := range p.Files {
		plan.Details = append(plan.Details, fmt.Sprintf("upload %s from %s", f.fileName(), f.Source))
	}
	if len(p.Communities) > 0 {
		plan.Details = append(plan.Details, "submit to the communities "+strings.Join(p.Communities, ", "))
	}
	if sc.Unknown("deposition_id") || p.DepositionID == 0 {
		return plan, nil
	}
	c, err := client(sc, p.Connection)
	if err != nil {
		plan.Details = append(plan.Details, "not checked: "+err.Error())
		return plan, nil
	}
	d, err := c.Get(ctx, p.DepositionID)
	if err != nil {
		plan.Details = append(plan.Details, "not checked: "+err.Error())
		return plan, nil
	}
	if d.Submitted && d.State == "done" && d.Version() == p.Version {
		plan.Action = fmt.Sprintf("nothing to do: Zenodo deposition %d is already published as %s", d.ID, d.DOI)
		plan.NoChange = true
		plan.Details = nil
	}
	return plan, nil
}

// Run completes, uploads and publishes.
func (p *Publish) Run(ctx context.Context, sc *engine.StepContext) (engine.Outputs, error) {
	c, err := client(sc, p.Connection)
	if err != nil {
		return nil, err
	}
	d, err := c.Get(ctx, p.DepositionID)
	if err != nil {
		return nil, err
	}
	if d.Submitted && d.State == "done" {
		if d.Version() != p.Version {
			return nil, fmt.Errorf("zenodo: deposition %d is already published as version %q, not %q: check deposition_id", d.ID, d.Version(), p.Version)
		}
		sc.Logf("deposition %d is already published as %s", d.ID, d.DOI)
		return p.outputs(sc, d), nil
	}
	if d, err = c.Update(ctx, d.ID, p.metadata(sc)); err != nil {
		return nil, err
	}
	if d.Submitted {
		sc.Logf("deposition %d is a published record being edited: its files are locked, skipping uploads", d.ID)
	} else if err := p.upload(ctx, sc, c, d); err != nil {
		return nil, err
	}
	if d, err = c.Action(ctx, d.ID, "publish"); err != nil {
		return nil, err
	}
	sc.Logf("published deposition %d as %s", d.ID, d.DOI)
	return p.outputs(sc, d), nil
}

func (p *Publish) outputs(sc *engine.StepContext, d *Deposition) engine.Outputs {
	recordURL := d.RecordURL
	if recordURL == "" {
		recordURL = d.Link("record_html")
	}
	recordID := d.RecordID
	if recordID == 0 {
		recordID = d.ID
	}
	sc.Link("Zenodo record "+d.Version(), recordURL)
	if d.DOI != "" {
		sc.Link("DOI "+d.DOI, "https://doi.org/"+d.DOI)
	}
	return engine.Outputs{"doi": d.DOI, "concept_doi": d.ConceptDOI, "record_url": recordURL, "record_id": recordID}
}

// upload puts each file in the bucket unless a file of that name with the same md5 is there.
func (p *Publish) upload(ctx context.Context, sc *engine.StepContext, c *Client, d *Deposition) error {
	bucket := d.Link("bucket")
	if bucket == "" && len(p.Files) > 0 {
		return fmt.Errorf("zenodo: deposition %d has no links.bucket to upload to", d.ID)
	}
	have := map[string]string{}
	want := map[string]bool{}
	for _, f := range p.Files {
		want[f.fileName()] = true
	}
	for _, f := range d.Files {
		have[f.Filename] = f.MD5()
		if !want[f.Filename] && !p.KeepOtherFiles {
			if err := c.DeleteFile(ctx, bucket, f.Filename); err != nil {
				return err
			}
			sc.Logf("removed %s, which is not one of this version's files", f.Filename)
		}
	}
	for _, f := range p.Files {
		name := f.fileName()
		local, cleanup, err := fetch(ctx, sc, c.HTTP, f.Source)
		if err != nil {
			return err
		}
		sum, size, err := fileMD5(local)
		if err != nil {
			cleanup()
			return fmt.Errorf("zenodo: reading %s: %v", f.Source, err)
		}
		if have[name] == sum {
			sc.Logf("%s is already uploaded (md5 %s)", name, sum)
			cleanup()
			continue
		}
		bf, err := c.Upload(ctx, bucket, name, local)
		cleanup()
		if err != nil {
			return err
		}
		if got := strings.TrimPrefix(bf.Checksum, "md5:"); got != "" && got != sum {
			return engine.Transient(fmt.Errorf("zenodo: %s arrived with md5 %s, sent %s", name, got, sum))
		}
		sc.Logf("uploaded %s (%d bytes, md5 %s)", name, size, sum)
	}
	return nil
}

// fetch returns a local path for source, downloading a URL to a temporary file. The
// request carries no Authorization header: the Zenodo token is for Zenodo only.
func fetch(ctx context.Context, sc *engine.StepContext, hc *http.Client, source string) (string, func(), error) {
	if !isURL(source) {
		if _, err := os.Stat(source); err != nil {
			return "", nil, fmt.Errorf("zenodo: file to upload: %v", err)
		}
		return source, func() {}, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, source, nil)
	if err != nil {
		return "", nil, fmt.Errorf("zenodo: download %s: %v", redactURL(source), err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", nil, engine.Transient(fmt.Errorf("zenodo: download %s: %v", redactURL(source), unwrapURLError(err)))
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		err := fmt.Errorf("zenodo: download %s: %s", redactURL(source), resp.Status)
		if resp.StatusCode >= 500 || resp.StatusCode == 429 {
			err = engine.Transient(err)
		}
		return "", nil, err
	}
	tmp, err := os.CreateTemp("", "runbook-zenodo-*")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { _ = os.Remove(tmp.Name()) }
	n, err := io.Copy(tmp, resp.Body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		cleanup()
		return "", nil, engine.Transient(fmt.Errorf("zenodo: download %s: %v", redactURL(source), err))
	}
	sc.Logf("downloaded %s (%d bytes)", redactURL(source), n)
	return tmp.Name(), cleanup, nil
}
