package jenkinssim

import (
	"fmt"
	"strconv"
	"strings"
)

// treeField is one field of a Jenkins `?tree=` expression, such as
// builds[number,actions[parameters[name,value]]]{0,10}.
type treeField struct {
	name     string
	children []treeField // nil: keep the whole value
	from, to int         // range on lists; to < 0 means open
	ranged   bool
}

// parseTree parses a `tree` query value the way Jenkins' TreePruner does (the subset
// clients use: nested fields and {M,N} ranges).
func parseTree(s string) ([]treeField, error) {
	fs, rest, err := parseTreeList(s)
	if err != nil {
		return nil, err
	}
	if rest != "" {
		return nil, fmt.Errorf("unexpected %q in tree", rest)
	}
	return fs, nil
}

func parseTreeList(s string) ([]treeField, string, error) {
	var out []treeField
	for {
		i := strings.IndexAny(s, ",[]{")
		var f treeField
		f.to = -1
		if i < 0 {
			f.name, s = s, ""
		} else {
			f.name, s = s[:i], s[i:]
		}
		f.name = strings.TrimSpace(f.name)
		if strings.HasPrefix(s, "[") {
			kids, rest, err := parseTreeList(s[1:])
			if err != nil {
				return nil, "", err
			}
			if !strings.HasPrefix(rest, "]") {
				return nil, "", fmt.Errorf("unbalanced [ in tree")
			}
			f.children, s = kids, rest[1:]
		}
		if strings.HasPrefix(s, "{") {
			j := strings.Index(s, "}")
			if j < 0 {
				return nil, "", fmt.Errorf("unbalanced { in tree")
			}
			if err := f.parseRange(s[1:j]); err != nil {
				return nil, "", err
			}
			s = s[j+1:]
		}
		if f.name != "" {
			out = append(out, f)
		}
		if strings.HasPrefix(s, ",") {
			s = s[1:]
			continue
		}
		return out, s, nil
	}
}

func (f *treeField) parseRange(r string) error {
	f.ranged = true
	a, b, comma := strings.Cut(r, ",")
	num := func(x string, def int) (int, error) {
		x = strings.TrimSpace(x)
		if x == "" {
			return def, nil
		}
		return strconv.Atoi(x)
	}
	var err error
	if f.from, err = num(a, 0); err != nil {
		return fmt.Errorf("bad range {%s}", r)
	}
	if !comma {
		f.to = f.from + 1
		return nil
	}
	if f.to, err = num(b, -1); err != nil {
		return fmt.Errorf("bad range {%s}", r)
	}
	return nil
}

// prune keeps only the fields named in tree ("_class" is always kept, as Jenkins does).
func prune(v any, tree []treeField) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		if c, ok := x["_class"]; ok {
			out["_class"] = c
		}
		for _, f := range tree {
			val, ok := x[f.name]
			if !ok {
				continue
			}
			if l, isList := val.([]any); isList && f.ranged {
				val = sliceRange(l, f.from, f.to)
			}
			if f.children != nil {
				val = prune(val, f.children)
			}
			out[f.name] = val
		}
		return out
	case []any:
		out := make([]any, 0, len(x))
		for _, e := range x {
			out = append(out, prune(e, tree))
		}
		return out
	}
	return v
}

func sliceRange(l []any, from, to int) []any {
	if to < 0 || to > len(l) {
		to = len(l)
	}
	if from > to {
		from = to
	}
	return l[from:to]
}
