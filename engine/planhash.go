package engine

import "encoding/json"

// PlanHash identifies what a run will do: the playbook's steps (types, conditions and
// parameters as written) and the inputs. An approval is bound to it.
func PlanHash(pb *Playbook, inputs map[string]any) string {
	type stepDoc struct {
		Section Section `json:"section"`
		ID      string  `json:"id"`
		Type    string  `json:"type"`
		When    string  `json:"when,omitempty"`
		OnError string  `json:"on_error"`
		Foreach any     `json:"foreach,omitempty"`
		With    any     `json:"with,omitempty"`
		Params  any     `json:"params,omitempty"`
	}
	doc := struct {
		Product string         `json:"product"`
		Inputs  map[string]any `json:"inputs"`
		Vars    map[string]any `json:"vars"`
		Steps   []stepDoc      `json:"steps"`
	}{Product: pb.Product, Inputs: inputs, Vars: map[string]any{}}
	for _, v := range pb.Vars {
		doc.Vars[v.Name] = sourceOf(v.Value)
	}
	for _, st := range pb.AllSteps() {
		d := stepDoc{Section: st.Section, ID: st.ID, Type: st.Type, OnError: string(st.OnError), With: sourceOf(st.With), Foreach: sourceOf(st.Foreach)}
		if st.Fragment != nil {
			ps := map[string]any{}
			for _, e := range st.Fragment.Params {
				ps[e.Key] = sourceOf(e.Val)
			}
			d.Params = ps
		}
		if st.When != nil {
			d.When = st.When.Src
		}
		doc.Steps = append(doc.Steps, d)
	}
	b, _ := json.Marshal(doc)
	return sha256Hex(b)[:16]
}

// sourceOf is a value as written: literals as themselves, templates as their text.
func sourceOf(v *Value) any {
	if v == nil {
		return nil
	}
	switch v.kind {
	case kindTemplate:
		return v.Tmpl.Src
	case kindList:
		out := make([]any, len(v.List))
		for i, e := range v.List {
			out[i] = sourceOf(e)
		}
		return out
	case kindMap:
		out := make(map[string]any, len(v.Map))
		for _, e := range v.Map {
			out[e.Key] = sourceOf(e.Val)
		}
		return out
	}
	return v.Lit
}
