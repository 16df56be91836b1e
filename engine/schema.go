package engine

import (
	"encoding/json"
	"sort"
	"strings"
)

// PlaybookSchema generates the JSON Schema of playbooks from the registered step and
// connection types, so editors complete and check playbooks and the schema cannot drift
// from the code (a test compares it with schema/playbook.schema.json).
func PlaybookSchema() ([]byte, error) {
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
		with := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
		if len(required) > 0 {
			with["required"] = required
		}
		desc := st.Summary
		branches = append(branches, map[string]any{
			"if":   map[string]any{"properties": map[string]any{"type": map[string]any{"const": st.Name}}, "required": []string{"type"}},
			"then": map[string]any{"properties": map[string]any{"with": with}, "description": desc},
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
			"foreach":           map[string]any{"oneOf": []any{map[string]any{"type": "array"}, exprString}},
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
	include := map[string]any{"type": "object", "required": []string{"include"}, "additionalProperties": false,
		"properties": map[string]any{"include": map[string]any{"type": "string", "description": "a fragment file (fragment: v1), relative to this file"},
			"with": map[string]any{"type": "object", "description": "the fragment's params"}}}
	steps := map[string]any{"type": "array", "items": map[string]any{"oneOf": []any{map[string]any{"$ref": "#/$defs/step"}, map[string]any{"$ref": "#/$defs/include"}}}}
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
			"roles":       map[string]any{"type": "object", "additionalProperties": map[string]any{"oneOf": []any{map[string]any{"type": "array", "items": map[string]any{"type": "string"}}, map[string]any{"type": "string"}}}},
			"people": map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "object", "additionalProperties": false,
				"properties": map[string]any{"name": map[string]any{"type": "string"}, "email": map[string]any{"type": "string"}, "chat": map[string]any{"type": "string"}}}},
			"inputs": map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "object", "additionalProperties": false, "properties": map[string]any{
				"type": map[string]any{"enum": inputTypes}, "description": map[string]any{"type": "string"}, "default": map[string]any{}, "required": map[string]any{"type": "boolean"},
				"pattern": map[string]any{"type": "string"}, "enum": map[string]any{"type": "array", "items": map[string]any{"type": "string"}}}}},
			"vars":        map[string]any{"type": "object"},
			"connections": map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "object", "required": []string{"type"}, "properties": map[string]any{"type": map[string]any{"enum": connNames}}, "allOf": connBranches}},
			"steps":       steps,
			"on_failure":  steps,
			"finally":     steps,
		},
		"$defs": map[string]any{
			"step":      step,
			"include":   include,
			"secretRef": map[string]any{"type": "object", "additionalProperties": false, "properties": map[string]any{"env": map[string]any{"type": "string"}, "file": map[string]any{"type": "string"}}, "description": "where the secret is: an environment variable or a file; never the secret itself"},
		},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
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
