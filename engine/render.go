package engine

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// evalEnv is what expressions read at run (or plan) time.
type evalEnv struct {
	vals map[string]any
	// known says whether a step's status and outputs are known; false while planning.
	known func(stepID string) bool
}

func (e *evalEnv) with(key string, v any) *evalEnv {
	m := make(map[string]any, len(e.vals)+1)
	for k, x := range e.vals {
		m[k] = x
	}
	m[key] = v
	return &evalEnv{vals: m, known: e.known}
}

func (e *evalEnv) depsKnown(deps []string) bool {
	if e.known == nil {
		return true
	}
	for _, d := range deps {
		if !e.known(d) {
			return false
		}
	}
	return true
}

// errUnknown is returned by rendering when a value is only known after earlier steps run.
type errUnknown struct{ deps []string }

func (e *errUnknown) Error() string {
	return "known after " + strings.Join(e.deps, ", ") + " run"
}

// evalCond evaluates a condition; unknown when it reads steps not run yet.
func (e *evalEnv) evalCond(x *Expr) (bool, error) {
	if !e.depsKnown(x.Deps) {
		return false, &errUnknown{deps: x.Deps}
	}
	v, err := x.eval(e.vals)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("%s: condition %q gave %v, not true or false", x.Pos, x.Src, v)
	}
	return b, nil
}

// render evaluates a value. Unknown parts (plan time) are reported by path in unknown
// and replaced by KnownAfterRun.
func (e *evalEnv) render(v *Value, path string, unknown *[]string) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch v.kind {
	case kindLiteral:
		if v.Node != nil && v.Node.Tag != "!!str" && v.Node.Tag != "!!null" {
			// Keep the YAML text for scalars that might be wanted as strings (coerced later).
			return v.Lit, nil
		}
		return v.Lit, nil
	case kindTemplate:
		if !e.depsKnown(v.Tmpl.Deps()) {
			if unknown != nil {
				*unknown = append(*unknown, path)
			}
			return KnownAfterRun, nil
		}
		if v.Tmpl.Whole() {
			return v.Tmpl.Parts[0].Expr.eval(e.vals)
		}
		var b strings.Builder
		for _, p := range v.Tmpl.Parts {
			if p.Expr == nil {
				b.WriteString(p.Text)
				continue
			}
			x, err := p.Expr.eval(e.vals)
			if err != nil {
				return nil, err
			}
			b.WriteString(textOf(x))
		}
		return b.String(), nil
	case kindList:
		out := make([]any, len(v.List))
		for i, x := range v.List {
			r, err := e.render(x, fmt.Sprintf("%s[%d]", path, i), unknown)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	case kindMap:
		out := make(map[string]any, len(v.Map))
		for _, x := range v.Map {
			p := x.Key
			if path != "" {
				p = path + "." + x.Key
			}
			r, err := e.render(x.Val, p, unknown)
			if err != nil {
				return nil, err
			}
			out[x.Key] = r
		}
		return out, nil
	}
	return nil, nil
}

// textOf formats a value for interpolation into text.
func textOf(x any) string {
	switch v := x.(type) {
	case nil:
		return ""
	case string:
		return v
	case []any, map[string]any:
		b, _ := json.Marshal(v)
		return string(b)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return fmt.Sprint(x)
}

// coerceParams converts rendered values toward what the params want: scalars where a
// string is wanted become their text, so `version: 3` still decodes into a string.
func coerceParams(params []Param, m map[string]any) {
	for _, p := range params {
		v, ok := m[p.Name]
		if !ok {
			continue
		}
		m[p.Name] = coerceTo(p, v)
	}
}

func coerceTo(p Param, v any) any {
	switch p.Type {
	case TypeString:
		switch x := v.(type) {
		case int, int64, float64, bool:
			return textOf(x)
		}
	case TypeInt:
		if s, ok := v.(string); ok {
			if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
				return n
			}
		}
		if f, ok := v.(float64); ok && f == float64(int64(f)) {
			return int64(f)
		}
	}
	if strings.HasPrefix(string(p.Type), "list<") {
		if l, ok := v.([]any); ok {
			ep := Param{Type: elemType(p.Type), Fields: p.Fields}
			for i := range l {
				if m, ok := l[i].(map[string]any); ok && len(p.Fields) > 0 {
					coerceParams(p.Fields, m)
					continue
				}
				l[i] = coerceTo(ep, l[i])
			}
		}
	}
	if strings.HasPrefix(string(p.Type), "map<") {
		if m, ok := v.(map[string]any); ok {
			ep := Param{Type: elemType(p.Type), Fields: p.Fields}
			for k := range m {
				m[k] = coerceTo(ep, m[k])
			}
		}
	}
	if p.Type == TypeMap && len(p.Fields) > 0 {
		if m, ok := v.(map[string]any); ok {
			coerceParams(p.Fields, m)
		}
	}
	return v
}

// coerceOutput converts an output toward its declared type, so expressions see an int as
// an int even after a round trip through JSON (a resumed run).
func coerceOutput(t Type, v any) any {
	switch t {
	case TypeInt:
		switch x := v.(type) {
		case float64:
			return int(x)
		case int64:
			return int(x)
		case int32:
			return int(x)
		case json.Number:
			n, _ := x.Int64()
			return int(n)
		}
	case TypeFloat:
		if n, ok := v.(int); ok {
			return float64(n)
		}
	}
	if strings.HasPrefix(string(t), "list<") {
		et := elemType(t)
		switch x := v.(type) {
		case []any:
			out := make([]any, len(x))
			for i, e := range x {
				out[i] = coerceOutput(et, e)
			}
			return out
		case []string:
			out := make([]any, len(x))
			for i, e := range x {
				out[i] = e
			}
			return out
		case []int:
			out := make([]any, len(x))
			for i, e := range x {
				out[i] = e
			}
			return out
		}
	}
	if strings.HasPrefix(string(t), "map") {
		switch x := v.(type) {
		case map[string]string:
			out := make(map[string]any, len(x))
			for k, e := range x {
				out[k] = e
			}
			return out
		case map[string]any:
			et := elemType(t)
			out := make(map[string]any, len(x))
			for k, e := range x {
				out[k] = coerceOutput(et, e)
			}
			return out
		}
	}
	return v
}

// normalizeOutputs makes outputs plain JSON-shaped values of their declared types.
func normalizeOutputs(st StepType, outs Outputs) map[string]any {
	if outs == nil {
		return map[string]any{}
	}
	b, err := appendJSONValue(nil, map[string]any(outs)) // json.Marshal's bytes, without reflection
	m := map[string]any{}
	if err == nil {
		_ = json.Unmarshal(b, &m)
	} else {
		for k, v := range outs {
			m[k] = v
		}
	}
	for _, o := range st.Outputs {
		if v, ok := m[o.Name]; ok {
			m[o.Name] = coerceOutput(o.Type, v)
		}
	}
	return m
}
