package engine

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/expr-lang/expr/types"
	"gopkg.in/yaml.v3"
)

func (l *loader) roles(pb *Playbook, n *yaml.Node) {
	if n == nil {
		return
	}
	order, vals, keys := l.mapping(n, "roles", nil)
	for _, name := range order {
		if !nameRE.MatchString(name) {
			l.errAt(keys[name], "role name %q must be a plain identifier such as service_owner", name)
		}
		v := resolve(vals[name])
		var people []string
		switch v.Kind {
		case yaml.SequenceNode:
			for _, c := range v.Content {
				if s, ok := l.str(c, "a role's member"); ok {
					people = append(people, s)
				}
			}
		case yaml.ScalarNode:
			if s, ok := l.str(v, "a role's member"); ok {
				people = append(people, s)
			}
		default:
			l.errAt(v, "role %s must list people (logins), not %s", name, kindName(v))
		}
		replace, skip := l.redefined("roles", name, keys[name])
		if skip {
			continue
		}
		pb.Roles[name] = people
		if !replace {
			pb.RoleOrder = append(pb.RoleOrder, name)
		}
	}
}

func (l *loader) people(pb *Playbook, n *yaml.Node) {
	if n == nil {
		return
	}
	order, vals, pkeys := l.mapping(n, "people", nil)
	for _, login := range order {
		if _, skip := l.redefined("people", login, pkeys[login]); skip {
			continue
		}
		_, f, _ := l.mapping(vals[login], "person "+login, personKeys)
		p := Person{Login: login}
		if x, ok := f["name"]; ok {
			p.Name, _ = l.str(x, "name")
		}
		if x, ok := f["email"]; ok {
			p.Email, _ = l.str(x, "email")
			if p.Email != "" && !strings.Contains(p.Email, "@") {
				l.errAt(resolve(x), "email %q is not an e-mail address", p.Email)
			}
		}
		if x, ok := f["chat"]; ok {
			p.Chat, _ = l.str(x, "chat")
		}
		pb.People[login] = p
	}
}

func (l *loader) inputs(pb *Playbook, n *yaml.Node) {
	if n == nil {
		return
	}
	order, vals, keys := l.mapping(n, "inputs", nil)
	for _, name := range order {
		if !nameRE.MatchString(name) {
			l.errAt(keys[name], "input name %q must be a plain identifier", name)
		}
		in := &Input{Name: name, Type: TypeString, Pos: l.pos(keys[name])}
		_, f, _ := l.mapping(vals[name], "input "+name, inputKeys)
		if x, ok := f["type"]; ok {
			if s, ok := l.str(x, "type"); ok {
				if !contains(inputTypes, s) {
					l.errAt(resolve(x), "input %s: unknown type %q%s; types: %s", name, s, didYouMean(s, inputTypes), strings.Join(inputTypes, ", "))
				}
				in.Type = Type(s)
				if s == "list" {
					in.Type = ListOf(TypeString)
				}
			}
		}
		if x, ok := f["description"]; ok {
			in.Description, _ = l.str(x, "description")
		}
		if x, ok := f["required"]; ok {
			in.Required = l.boolean(x, "required")
		}
		if x, ok := f["pattern"]; ok {
			if s, ok := l.str(x, "pattern"); ok {
				_, err := regexp.Compile(s)
				re, err2 := regexp.Compile("^(?:" + strings.TrimSuffix(strings.TrimPrefix(s, "^"), "$") + ")$")
				if err == nil {
					err = err2
				}
				if err != nil {
					l.errAt(resolve(x), "input %s: bad pattern %q: %v", name, s, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
				} else if in.Type != TypeString {
					l.errAt(resolve(x), "input %s: a pattern applies only to string inputs", name)
				} else {
					in.Pattern = re
				}
			}
		}
		if x, ok := f["enum"]; ok {
			x = resolve(x)
			if x.Kind != yaml.SequenceNode {
				l.errAt(x, "input %s: enum must be a list", name)
			}
			for _, c := range x.Content {
				if s, ok := l.str(c, "an enum value"); ok {
					in.Enum = append(in.Enum, s)
				}
			}
		}
		if x, ok := f["default"]; ok {
			x = resolve(x)
			v, err := inputFromNode(in, x)
			if err != nil {
				l.errAt(x, "input %s: default %v", name, err)
			} else {
				in.Default, in.HasDefault = v, true
			}
		}
		pb.Inputs = append(pb.Inputs, in)
	}
}

func inputFromNode(in *Input, n *yaml.Node) (any, error) {
	var raw any
	if err := n.Decode(&raw); err != nil {
		return nil, err
	}
	if s, ok := raw.(string); ok {
		return in.parse(s)
	}
	return in.check(raw)
}

// parse converts a --set string to the input's type and checks it.
func (in *Input) parse(s string) (any, error) {
	switch in.Type {
	case TypeInt:
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%q is not a whole number", s)
		}
		return in.check(n)
	case TypeBool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%q is not true or false", s)
		}
		return b, nil
	case ListOf(TypeString):
		var list []any
		if strings.HasPrefix(strings.TrimSpace(s), "[") {
			if err := yaml.Unmarshal([]byte(s), &list); err != nil {
				return nil, fmt.Errorf("%q is not a list: %v", s, err)
			}
		} else if s != "" {
			for _, p := range strings.Split(s, ",") {
				list = append(list, strings.TrimSpace(p))
			}
		}
		return in.check(list)
	}
	return in.check(s)
}

func (in *Input) check(v any) (any, error) {
	switch in.Type {
	case TypeString:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("must be a string, not %v", v)
		}
		if in.Pattern != nil && !in.Pattern.MatchString(s) {
			return nil, fmt.Errorf("%q does not match the pattern %s", s, in.Pattern.String()[4:len(in.Pattern.String())-2])
		}
		if len(in.Enum) > 0 && !contains(in.Enum, s) {
			return nil, fmt.Errorf("%q is not one of %s", s, strings.Join(in.Enum, ", "))
		}
		return s, nil
	case TypeInt:
		n, ok := v.(int)
		if !ok {
			return nil, fmt.Errorf("must be a whole number, not %v", v)
		}
		return n, nil
	case TypeBool:
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("must be true or false, not %v", v)
		}
		return b, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("must be a list, not %v", v)
	}
	out := make([]any, len(list))
	for i, e := range list {
		out[i] = fmt.Sprint(e)
	}
	return out, nil
}

func (l *loader) baseScope(pb *Playbook) *scope {
	inputs := types.Map{}
	for _, in := range pb.Inputs {
		inputs[in.Name] = exprType(in.Type)
	}
	roles := types.Map{}
	for r := range pb.Roles {
		roles[r] = types.Array(types.String)
	}
	env := types.Map{
		"inputs":   inputs,
		"vars":     types.Map{},
		"roles":    roles,
		"run":      types.Map{"id": types.String, "actor": types.String, "mode": types.String, "rehearsal": types.Bool, "started_at": types.String, "plan_hash": types.String},
		"playbook": types.Map{"product": types.String, "title": types.String, "file": types.String},
	}
	return &scope{env: env, visible: map[string]bool{}, allSteps: map[string]*StepDecl{}}
}

func (l *loader) vars(pb *Playbook, n *yaml.Node, sc *scope) {
	if n == nil {
		return
	}
	order, vals, keys := l.mapping(n, "vars", nil)
	varsEnv := sc.env["vars"].(types.Map)
	for _, name := range order {
		if !nameRE.MatchString(name) {
			l.errAt(keys[name], "var name %q must be a plain identifier", name)
		}
		v := l.value(vals[name])
		t := l.compileValue(v, sc)
		for _, dep := range templateDepsOf(v) {
			l.errAt(v.Node, "var %s reads step %q: vars are computed before any step runs; use the step's output where it is needed", name, dep)
		}
		pb.Vars = append(pb.Vars, &Var{Name: name, Value: v, Type: t, Pos: l.pos(keys[name])})
		varsEnv[name] = exprType(t)
	}
}

func templateDepsOf(v *Value) []string {
	var out []string
	walkValue(v, func(x *Value) {
		if x.Tmpl != nil {
			out = append(out, x.Tmpl.Deps()...)
		}
	})
	return out
}

func walkValue(v *Value, f func(*Value)) {
	if v == nil {
		return
	}
	f(v)
	for _, e := range v.List {
		walkValue(e, f)
	}
	for _, e := range v.Map {
		walkValue(e.Val, f)
	}
}

func (l *loader) connections(pb *Playbook, n *yaml.Node) {
	if n == nil {
		return
	}
	order, vals, keys := l.mapping(n, "connections", nil)
	for _, name := range order {
		if !nameRE.MatchString(name) {
			l.errAt(keys[name], "connection name %q must be a plain identifier", name)
		}
		c := &ConnectionDecl{Name: name, Settings: map[string]string{}, Pos: l.pos(keys[name])}
		corder, f, fkeys := l.mapping(vals[name], "connection "+name, nil)
		if f == nil {
			continue
		}
		typNode, ok := f["type"]
		if !ok {
			l.errAt(keys[name], "connection %s: missing key \"type\"", name)
			continue
		}
		c.Type, _ = l.str(typNode, "type")
		ct, known := LookupConnectionType(c.Type)
		if !known {
			var names []string
			for _, t := range ConnectionTypes() {
				names = append(names, t.Name)
			}
			l.errAt(resolve(typNode), "connection %s: unknown type %q%s; types: %s", name, c.Type, didYouMean(c.Type, names), strings.Join(names, ", "))
			continue
		}
		allowed := []string{"type", "url", "token"}
		for k := range ct.Settings {
			allowed = append(allowed, k)
		}
		sort.Strings(allowed[3:])
		c.TokenEnv = ct.DefaultTokenEnv
		c.URL = ct.DefaultURL
		for _, k := range corder {
			v := f[k]
			switch k {
			case "type":
			case "url":
				c.URL, _ = l.str(v, "url")
			case "token":
				if rv := resolve(v); rv.Kind == yaml.ScalarNode {
					// Kind-of-mistake worth its own message: never a literal secret.
					l.errAt(rv, "connection %s: token must name where the secret is ({env: NAME} or {file: PATH}); secrets are never written in playbooks", name)
					continue
				}
				_, tf, _ := l.mapping(v, "token of connection "+name, []string{"env", "file"})
				if e, ok := tf["env"]; ok {
					c.TokenEnv, _ = l.str(e, "token.env")
				}
				if fl, ok := tf["file"]; ok {
					c.TokenFile, _ = l.str(fl, "token.file")
					c.TokenEnv = ""
				}
			default:
				if !contains(allowed, k) {
					l.errAt(fkeys[k], "unknown key %q in connection %s (%s)%s; valid keys: %s", k, name, c.Type, didYouMean(k, allowed), strings.Join(allowed, ", "))
					continue
				}
				s, _ := l.str(v, k)
				c.Settings[k] = s
			}
		}
		replace, skip := l.redefined("connections", name, keys[name])
		if skip {
			continue
		}
		if replace {
			for i, x := range pb.Connections {
				if x.Name == name {
					pb.Connections[i] = c
				}
			}
			continue
		}
		pb.Connections = append(pb.Connections, c)
	}
}
