package engine

import (
	"sort"
	"strings"
)

// ResolveInputs checks --set values against the playbook's inputs and applies defaults.
func (p *Playbook) ResolveInputs(set map[string]string) (map[string]any, error) {
	d := &diags{file: p.File}
	out := map[string]any{}
	byName := map[string]*Input{}
	var names []string
	for _, in := range p.Inputs {
		byName[in.Name] = in
		names = append(names, in.Name)
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	failed := map[string]bool{}
	for _, k := range keys {
		in, ok := byName[k]
		if !ok {
			has := "none"
			if len(names) > 0 {
				has = strings.Join(names, ", ")
			}
			d.add(1, 1, "--set %s=%s: the playbook has no input %q%s; its inputs: %s", k, set[k], k, didYouMean(k, names), has)
			continue
		}
		v, err := in.parse(set[k])
		if err != nil {
			d.add(in.Pos.Line, in.Pos.Col, "--set %s=%s: input %s %v", k, set[k], k, err)
			failed[k] = true
			continue
		}
		out[k] = v
	}
	for _, in := range p.Inputs {
		if _, ok := out[in.Name]; ok || failed[in.Name] {
			continue
		}
		if in.HasDefault {
			out[in.Name] = in.Default
			continue
		}
		if in.Required {
			d.add(in.Pos.Line, in.Pos.Col, "input %s is required: give it with --set %s=VALUE (%s)", in.Name, in.Name, in.Description)
			continue
		}
		out[in.Name] = zeroOf(in.Type)
	}
	if err := d.err(); err != nil {
		return nil, err
	}
	return out, nil
}

func zeroOf(t Type) any {
	switch t {
	case TypeInt:
		return 0
	case TypeBool:
		return false
	case TypeString:
		return ""
	}
	return []any{}
}
