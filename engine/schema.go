package engine

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// PlaybookSchema generates the JSON Schema of playbooks from the registered step and
// connection types, so editors complete and check playbooks and the schema cannot drift
// from the code (a test compares it with schema/playbook.schema.json). For each fragment
// file given, an include of a file of that name has its with: checked against the
// fragment's params.
func PlaybookSchema(fragmentFiles ...string) ([]byte, error) {
	p := schemaParts()
	include, err := includeSchema(fragmentFiles)
	if err != nil {
		return nil, err
	}
	p.defs["include"] = include
	doc := map[string]any{
		"$schema":              "https://json-schema.org/draft/2020-12/schema",
		"$id":                  "https://github.com/cessda/runbook/schema/playbook.schema.json",
		"title":                "runbook playbook (v1)",
		"type":                 "object",
		"required":             []string{"runbook", "product", "steps"},
		"additionalProperties": false,
		"properties": map[string]any{
			"runbook":     map[string]any{"const": "v1"},
			"product":     map[string]any{"type": "string", "pattern": `^[a-z][a-z0-9]*(_[a-z0-9]+)*$`},
			"title":       map[string]any{"type": "string"},
			"description": map[string]any{"type": "string"},
			"site": map[string]any{"description": "the site file (site: v1) whose connections, people and roles this playbook shares; the playbook adds its own, and redefines one only if override names it",
				"anyOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "object", "required": []string{"file"}, "additionalProperties": false, "properties": map[string]any{
					"file":     map[string]any{"type": "string", "description": "the site file, relative to this playbook"},
					"override": map[string]any{"type": "array", "items": map[string]any{"type": "string", "pattern": `^(roles|people|connections)\.[A-Za-z0-9_.-]+$`}, "description": "the site's entries this playbook redefines: roles.NAME, people.LOGIN, connections.NAME"}}}}},
			"roles":       p.roles,
			"people":      p.people,
			"inputs":      p.inputs,
			"vars":        map[string]any{"type": "object"},
			"connections": p.connections,
			"steps":       p.steps,
			"on_failure":  p.steps,
			"finally":     p.steps,
		},
		"$defs": p.defs,
	}
	return marshalSchema(doc)
}

// FragmentSchema generates the JSON Schema of fragment files (fragment: v1).
func FragmentSchema() ([]byte, error) {
	p := schemaParts()
	include, err := includeSchema(nil)
	if err != nil {
		return nil, err
	}
	p.defs["include"] = include
	typeMap := func(types []string, desc string) map[string]any {
		return map[string]any{"type": "object", "additionalProperties": map[string]any{"enum": types}, "description": desc}
	}
	var stepNames, connNames []string
	for _, st := range StepTypes() {
		stepNames = append(stepNames, st.Name)
	}
	for _, c := range ConnectionTypes() {
		connNames = append(connNames, c.Name)
	}
	needs := map[string]any{"type": "object", "additionalProperties": false,
		"description": "what the fragment reads of the playbook that includes it: validated alone, the fragment is checked against it; included, the playbook is checked to provide it",
		"properties": map[string]any{
			"inputs": typeMap(inputTypes, "inputs.NAME the steps read, with their types"),
			"vars":   typeMap(varTypes, "vars.NAME the steps read, with their types"),
			"steps": map[string]any{"type": "object", "description": "steps of the including playbook the fragment reads (steps.ID), with their types (for their outputs)",
				"additionalProperties": map[string]any{"anyOf": []any{map[string]any{"enum": stepNames}, map[string]any{"type": "object", "required": []string{"type"}, "additionalProperties": false,
					"properties": map[string]any{"type": map[string]any{"enum": stepNames}, "foreach": map[string]any{"type": "boolean", "description": "the step runs per item: its outputs are lists"}}}}}},
			"roles":       map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "description": "roles the steps name (role:)"},
			"connections": typeMap(connNames, "connections the steps use, by name, with their types"),
			"failure":     map[string]any{"type": "boolean", "description": "the steps read failure.*: the fragment is included in on_failure or finally"},
		}}
	doc := map[string]any{
		"$schema":              "https://json-schema.org/draft/2020-12/schema",
		"$id":                  "https://github.com/cessda/runbook/schema/fragment.schema.json",
		"title":                "runbook fragment (v1): steps shared by playbooks",
		"type":                 "object",
		"required":             []string{"fragment", "steps"},
		"additionalProperties": false,
		"properties": map[string]any{
			"fragment":    map[string]any{"const": "v1"},
			"description": map[string]any{"type": "string"},
			"phase":       map[string]any{"type": "string", "description": "the section of the procedure its steps belong to (Preparing, Performing, ...)"},
			"params":      p.inputs,
			"needs":       needs,
			"steps":       p.steps,
		},
		"$defs": p.defs,
	}
	return marshalSchema(doc)
}

// SiteSchema generates the JSON Schema of site files (site: v1): the connections, people
// and roles the product playbooks share.
func SiteSchema() ([]byte, error) {
	p := schemaParts()
	doc := map[string]any{
		"$schema":              "https://json-schema.org/draft/2020-12/schema",
		"$id":                  "https://github.com/cessda/runbook/schema/site.schema.json",
		"title":                "runbook site file (v1): connections, people and roles shared by playbooks",
		"type":                 "object",
		"required":             []string{"site"},
		"additionalProperties": false,
		"properties": map[string]any{
			"site":        map[string]any{"const": "v1"},
			"description": map[string]any{"type": "string"},
			"roles":       p.roles,
			"people":      p.people,
			"connections": p.connections,
		},
		"$defs": map[string]any{"secretRef": p.defs["secretRef"]},
	}
	return marshalSchema(doc)
}

func marshalSchema(doc map[string]any) ([]byte, error) {
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

type parts struct {
	roles, people, inputs, connections, steps map[string]any
	defs                                      map[string]any
}

func schemaParts() parts {
	exprString := map[string]any{"type": "string", "pattern": `^\s*\$\{\{.*\}\}\s*$`, "description": "an expression: ${{ ... }}"}
	duration := map[string]any{"type": "string", "pattern": `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h|d))+$`}
	stepTypes := StepTypes()
	var names []string
	var branches []any
	for _, st := range stepTypes {
		names = append(names, st.Name)
		props := map[string]any{}
		var required []string
		for _, p := range ParamsOf(st) {
			props[p.Name] = paramSchema(p, exprString, duration)
			if p.Required && p.Default == "" {
				required = append(required, p.Name)
			}
		}
		with := map[string]any{"type": "object", "properties": props, "additionalProperties": false, "description": st.Name + ": " + st.Summary}
		if len(required) > 0 {
			with["required"] = required
		}
		// One branch per type, chosen by `type` alone: a typo in a parameter is reported
		// against that type's parameters, not as "valid under none of the step schemas".
		branches = append(branches, map[string]any{
			"if":   map[string]any{"properties": map[string]any{"type": map[string]any{"const": st.Name}}, "required": []string{"type"}},
			"then": map[string]any{"properties": map[string]any{"with": with}, "description": st.Summary},
		})
	}
	step := map[string]any{
		"type":                 "object",
		"required":             []string{"id", "type"},
		"additionalProperties": false,
		"properties": map[string]any{
			"id":                map[string]any{"type": "string", "pattern": `^[a-z][a-z0-9]*(_[a-z0-9]+)*$`, "description": "snake_case, unique in the playbook"},
			"type":              map[string]any{"enum": names, "description": "the step type (runbook steps lists them)"},
			"name":              map[string]any{"type": "string"},
			"description":       map[string]any{"type": "string"},
			"when":              map[string]any{"type": "string", "description": "a condition (expr-lang), e.g. steps.tag.status == \"succeeded\""},
			"with":              map[string]any{"type": "object"},
			"foreach":           map[string]any{"anyOf": []any{map[string]any{"type": "array"}, exprString}},
			"parallel":          map[string]any{"type": "integer", "minimum": 1},
			"retry":             map[string]any{"type": "object", "additionalProperties": false, "properties": map[string]any{"attempts": map[string]any{"type": "integer", "minimum": 1, "maximum": 100}, "backoff": duration, "max_delay": duration}},
			"timeout":           duration,
			"on_error":          map[string]any{"enum": []any{"stop", "warn", "rollback"}, "default": "stop", "description": "what a failure (or refusal) of this step means: stop (the run stops, resumable; on_failure records why), warn (a warning in the report and the release issue; the release goes on), rollback (on_failure rolls production back)"},
			"continue_on_error": map[string]any{"type": "boolean", "description": "older spelling of on_error: warn"},
			"role":              map[string]any{"type": "string"},
			"rollback":          map[string]any{"type": "boolean", "description": "this on_failure step reverts the release; its success makes the run rolled_back"},
			"checklist":         map[string]any{"type": "string", "description": "the release-issue checklist item this step stands for"},
			"phase":             map[string]any{"type": "string", "description": "the section of the procedure the step belongs to (Preparing, Performing, ...), for the release record; default: its fragment's phase"},
			"left_behind":       map[string]any{"type": "string", "description": "what this step leaves in the world when the release stops without finishing, and what to do about it (rendered at the run's end; empty: nothing)"},
		},
		"allOf": branches,
	}
	var connBranches []any
	var connNames []string
	for _, c := range ConnectionTypes() {
		connNames = append(connNames, c.Name)
		props := map[string]any{"type": map[string]any{"const": c.Name}, "url": map[string]any{"type": "string"}, "token": map[string]any{"$ref": "#/$defs/secretRef"}}
		keys := make([]string, 0, len(c.Settings))
		for k := range c.Settings {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			props[k] = map[string]any{"type": "string", "description": c.Settings[k]}
		}
		connBranches = append(connBranches, map[string]any{
			"if":   map[string]any{"properties": map[string]any{"type": map[string]any{"const": c.Name}}, "required": []string{"type"}},
			"then": map[string]any{"properties": props, "additionalProperties": false, "description": c.Summary},
		})
	}
	// A list entry is an include when it has `include:`, a step otherwise: if/then rather
	// than oneOf, so an editor reports the step's own mistake (an unknown key, a type
	// not in the list, a misspelt parameter), not "valid under none of the schemas".
	steps := map[string]any{"type": "array", "items": map[string]any{
		"if":   map[string]any{"type": "object", "required": []string{"include"}},
		"then": map[string]any{"$ref": "#/$defs/include"},
		"else": map[string]any{"$ref": "#/$defs/step"},
	}}
	return parts{
		roles: map[string]any{"type": "object", "additionalProperties": map[string]any{"anyOf": []any{map[string]any{"type": "array", "items": map[string]any{"type": "string"}}, map[string]any{"type": "string"}}}},
		people: map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "object", "additionalProperties": false,
			"properties": map[string]any{"name": map[string]any{"type": "string"}, "email": map[string]any{"type": "string"}, "chat": map[string]any{"type": "string"}}}},
		inputs: map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "object", "additionalProperties": false, "properties": map[string]any{
			"type": map[string]any{"enum": inputTypes}, "description": map[string]any{"type": "string"}, "default": map[string]any{}, "required": map[string]any{"type": "boolean"},
			"pattern": map[string]any{"type": "string"}, "enum": map[string]any{"type": "array", "items": map[string]any{"type": "string"}}}}},
		connections: map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "object", "required": []string{"type"}, "properties": map[string]any{"type": map[string]any{"enum": connNames}}, "allOf": connBranches}},
		steps:       steps,
		defs: map[string]any{
			"step":      step,
			"secretRef": map[string]any{"type": "object", "additionalProperties": false, "properties": map[string]any{"env": map[string]any{"type": "string"}, "file": map[string]any{"type": "string"}}, "description": "where the secret is: an environment variable or a file; never the secret itself"},
		},
	}
}

// includeSchema is the schema of an `- include: FILE` entry; for each fragment file
// given, an include whose path ends in that file's name has its with: checked against
// the fragment's params (the names, the required ones, their types).
func includeSchema(fragmentFiles []string) (map[string]any, error) {
	exprString := map[string]any{"type": "string", "pattern": `^\s*\$\{\{.*\}\}\s*$`}
	include := map[string]any{"type": "object", "required": []string{"include"}, "additionalProperties": false,
		"properties": map[string]any{"include": map[string]any{"type": "string", "description": "a fragment file (fragment: v1), relative to this file"},
			"with": map[string]any{"type": "object", "description": "the fragment's params"}}}
	files := append([]string(nil), fragmentFiles...)
	sort.Strings(files)
	var branches []any
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var root yaml.Node
		if err := yaml.Unmarshal(src, &root); err != nil {
			return nil, fmt.Errorf("%s: %v", f, err)
		}
		l := &loader{d: &diags{file: f}, file: f}
		doc := &root
		if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
			doc = doc.Content[0]
		}
		_, params := l.fragmentHeader(doc, &fragmentUse{Types: map[string]Type{}})
		if err := l.d.err(); err != nil {
			return nil, err
		}
		props := map[string]any{}
		var required []string
		for _, in := range params {
			var s map[string]any
			switch in.Type {
			case TypeString:
				s = map[string]any{"type": []string{"string", "number", "boolean"}}
			case TypeInt:
				s = map[string]any{"anyOf": []any{map[string]any{"type": "integer"}, exprString}}
			case TypeBool:
				s = map[string]any{"anyOf": []any{map[string]any{"type": "boolean"}, exprString}}
			default:
				s = map[string]any{"anyOf": []any{map[string]any{"type": "array"}, exprString}}
			}
			if in.Description != "" {
				s["description"] = in.Description
			}
			props[in.Name] = s
			if in.Required && !in.HasDefault {
				required = append(required, in.Name)
			}
		}
		base := filepath.Base(f)
		with := map[string]any{"type": "object", "properties": props, "additionalProperties": false, "description": "the params of " + base}
		then := map[string]any{"properties": map[string]any{"with": with}}
		if len(required) > 0 {
			with["required"] = required
			then["required"] = []string{"with"}
		}
		branches = append(branches, map[string]any{
			"if":   map[string]any{"properties": map[string]any{"include": map[string]any{"pattern": `(^|/)` + regexp.QuoteMeta(base) + `$`}}, "required": []string{"include"}},
			"then": then,
		})
	}
	if len(branches) > 0 {
		include["allOf"] = branches
	}
	return include, nil
}

func paramSchema(p Param, exprString, duration map[string]any) map[string]any {
	var s map[string]any
	t := string(p.Type)
	switch {
	case p.Type == TypeString:
		s = map[string]any{"type": []string{"string", "number", "boolean"}}
		if len(p.Enum) > 0 {
			s = map[string]any{"enum": p.Enum}
		}
	case p.Type == TypeInt:
		s = map[string]any{"type": "integer"}
	case p.Type == TypeBool:
		s = map[string]any{"type": "boolean"}
	case p.Type == TypeFloat:
		s = map[string]any{"type": "number"}
	case p.Type == TypeDuration:
		s = map[string]any{"oneOf": []any{duration, map[string]any{"type": "number"}}}
	case strings.HasPrefix(t, "list<"):
		item := paramSchema(Param{Type: elemType(p.Type), Fields: p.Fields}, exprString, duration)
		s = map[string]any{"type": "array", "items": item}
	case strings.HasPrefix(t, "map<"):
		item := paramSchema(Param{Type: elemType(p.Type), Fields: p.Fields}, exprString, duration)
		s = map[string]any{"type": "object", "additionalProperties": item}
	case p.Type == TypeMap && len(p.Fields) > 0:
		props := map[string]any{}
		var req []string
		for _, f := range p.Fields {
			props[f.Name] = paramSchema(f, exprString, duration)
			if f.Required && f.Default == "" {
				req = append(req, f.Name)
			}
		}
		s = map[string]any{"type": "object", "properties": props, "additionalProperties": false}
		if len(req) > 0 {
			s["required"] = req
		}
	case p.Type == TypeMap:
		s = map[string]any{"type": "object"}
	default:
		s = map[string]any{}
	}
	if len(s) > 0 && p.Type != TypeString {
		// Any parameter may be given as an expression instead.
		s = map[string]any{"anyOf": []any{s, exprString}}
	} else if p.Type == TypeString && len(p.Enum) > 0 {
		s = map[string]any{"anyOf": []any{s, exprString}}
	}
	if p.Desc != "" {
		s["description"] = p.Desc
	}
	if p.Default != "" {
		var dv any
		if json.Unmarshal([]byte(p.Default), &dv) == nil {
			s["default"] = dv
		} else {
			s["default"] = p.Default
		}
	}
	return s
}
