package engine

import (
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

var siteKeys = []string{"site", "description", "roles", "people", "connections"}

// siteState is what the site file defined, to tell a product's additions from its
// redefinitions.
type siteState struct {
	file      string
	defined   map[string]Pos        // "roles.NAME", "people.LOGIN", "connections.NAME"
	overrides map[string]*yaml.Node // what the playbook says it redefines, and where
	used      map[string]bool
}

// site reads the playbook's `site:` (a file, or {file, override}) and the connections,
// people and roles it defines, before the playbook's own.
func (l *loader) site(pb *Playbook, n *yaml.Node) {
	if n == nil {
		return
	}
	n = resolve(n)
	pathNode, overrides := n, (*yaml.Node)(nil)
	if n.Kind == yaml.MappingNode {
		_, f, _ := l.mapping(n, "site", []string{"file", "override"})
		pathNode, overrides = f["file"], f["override"]
		if pathNode == nil {
			l.errAt(n, "site: missing key \"file\" (the site file, relative to this playbook)")
			return
		}
	}
	path, ok := l.str(pathNode, "site")
	if !ok {
		return
	}
	pathNode = resolve(pathNode)
	full := path
	if !filepath.IsAbs(full) {
		full = filepath.Join(filepath.Dir(l.file), path)
	}
	src, err := readFragment(full)
	if err != nil {
		l.errAt(pathNode, "site %s: %v", path, err)
		return
	}
	if len(src) > MaxPlaybookBytes {
		l.errAt(pathNode, "site %s: the file is larger than %d MiB", path, MaxPlaybookBytes>>20)
		return
	}
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil {
		sub := &diags{file: full}
		yamlError(sub, src, err)
		for _, d := range sub.list {
			l.d.addIn(full, d.Pos.Line, d.Pos.Col, "%s", d.Msg)
		}
		return
	}
	l.siteFile(pb, full, src, &root, pathNode)
	if overrides == nil || l.sites == nil {
		return
	}
	overrides = resolve(overrides)
	if overrides.Kind != yaml.SequenceNode {
		l.errAt(overrides, "site.override must be a list of the site's entries this playbook redefines, such as roles.platform_maintainer")
		return
	}
	for _, o := range overrides.Content {
		s, ok := l.str(o, "an override")
		if !ok {
			continue
		}
		if _, ok := l.sites.defined[s]; !ok {
			var names []string
			for k := range l.sites.defined {
				names = append(names, k)
			}
			sort.Strings(names)
			l.errAt(resolve(o), "site.override: %q is not an entry of the site file%s; write roles.NAME, people.LOGIN or connections.NAME", s, didYouMean(s, names))
			continue
		}
		l.sites.overrides[s] = resolve(o)
	}
}

// siteFile loads a site file's roles, people and connections into pb. from is the
// playbook's `site:` value (nil: the site file is validated alone).
func (l *loader) siteFile(pb *Playbook, full string, src []byte, root *yaml.Node, from *yaml.Node) {
	doc := root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		doc = doc.Content[0]
	}
	outer := l.file
	l.file = full
	defer func() { l.file = outer }()
	_, top, _ := l.mapping(doc, "the site file", siteKeys)
	if top == nil {
		return
	}
	if v, ok := top["site"]; !ok {
		l.errAt(doc, "missing key \"site: v1\" (a site file's format version)")
	} else if s, _ := l.str(v, "site"); s != "v1" {
		l.errAt(resolve(v), "site: version %q is not supported; this runbook reads v1", s)
	}
	l.sites = &siteState{file: full, defined: map[string]Pos{}, overrides: map[string]*yaml.Node{}, used: map[string]bool{}}
	l.inSite = true
	l.roles(pb, top["roles"])
	l.people(pb, top["people"])
	l.connections(pb, top["connections"])
	l.inSite = false
}

// redefined is called for each entry the playbook itself defines: an entry the site file
// already defines is an error unless the playbook's site.override names it. It returns
// whether the entry replaces the site's (false: an error was reported, skip it).
func (l *loader) redefined(kind, name string, at *yaml.Node) (replace bool, skip bool) {
	key := kind + "." + name
	if l.inSite {
		l.sites.defined[key] = l.pos(at)
		return false, false
	}
	if l.sites == nil {
		return false, false
	}
	prev, ok := l.sites.defined[key]
	if !ok {
		return false, false
	}
	if _, ok := l.sites.overrides[key]; ok {
		l.sites.used[key] = true
		return true, false
	}
	l.errAt(at, "%s %s is already defined by the site file (%s): a playbook adds to the site's %s but does not redefine them; remove it here, or, if this product really differs, say so with site: {file: ..., override: [%s]}", strings.TrimSuffix(kind, "s"), name, prev, kind, key)
	return false, true
}

// unusedOverrides reports site.override entries the playbook does not redefine.
func (l *loader) unusedOverrides() {
	if l.sites == nil {
		return
	}
	keys := make([]string, 0, len(l.sites.overrides))
	for k := range l.sites.overrides {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !l.sites.used[k] {
			l.errAt(l.sites.overrides[k], "site.override: this playbook does not redefine %s; remove it from override", k)
		}
	}
}

// ---- fragments: what they need, alone or included ----
