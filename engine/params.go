package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// Param describes one parameter of a step type, read from its params struct's tags.
type Param struct {
	Name     string
	Type     Type
	Desc     string
	Required bool
	Default  string // YAML text, "" when none
	Enum     []string
	Secret   bool
	// Fields are the parameters of a nested object (a struct field, or a list of structs).
	Fields []Param
	field  []int // index path in the struct
}

var durationType = reflect.TypeOf(Duration(0))

// ParamsOf returns the parameters of a step type, in declaration order, including the
// `connection` parameter of step types that use one.
func ParamsOf(t StepType) []Param {
	ps, err := paramsOf(t)
	if err != nil {
		panic(err)
	}
	return ps
}

func paramsOf(t StepType) ([]Param, error) {
	v := t.New()
	rt := reflect.TypeOf(v)
	if rt.Kind() != reflect.Pointer || rt.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("New must return a pointer to a struct, not %s", rt)
	}
	ps, err := structParams(rt.Elem(), nil)
	if err != nil {
		return nil, err
	}
	if t.Connection != "" {
		has := false
		for _, p := range ps {
			if p.Name == "connection" {
				has = true
			}
		}
		if !has {
			return nil, fmt.Errorf("a step type with a connection needs a `Connection string `json:\"connection\"`` field")
		}
	}
	return ps, nil
}

func structParams(rt reflect.Type, prefix []int) ([]Param, error) {
	var out []Param
	for i := 0; i < rt.NumField(); i++ {
		f := rt.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			return nil, fmt.Errorf("field %s has no json name", f.Name)
		}
		idx := append(append([]int{}, prefix...), i)
		typ, fields, err := typeOfGo(f.Type)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", f.Name, err)
		}
		p := Param{
			Name:     name,
			Type:     typ,
			Desc:     f.Tag.Get("desc"),
			Required: f.Tag.Get("required") == "true",
			Default:  f.Tag.Get("default"),
			Secret:   f.Tag.Get("secret") == "true",
			Fields:   fields,
			field:    idx,
		}
		if e := f.Tag.Get("enum"); e != "" {
			p.Enum = strings.Split(e, ",")
		}
		out = append(out, p)
	}
	return out, nil
}

func typeOfGo(t reflect.Type) (Type, []Param, error) {
	if t == durationType {
		return TypeDuration, nil, nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		return typeOfGo(t.Elem())
	case reflect.String:
		return TypeString, nil, nil
	case reflect.Int, reflect.Int64, reflect.Int32:
		return TypeInt, nil, nil
	case reflect.Bool:
		return TypeBool, nil, nil
	case reflect.Float64, reflect.Float32:
		return TypeFloat, nil, nil
	case reflect.Interface:
		return TypeAny, nil, nil
	case reflect.Slice:
		et, fields, err := typeOfGo(t.Elem())
		return ListOf(et), fields, err
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return "", nil, fmt.Errorf("map keys must be strings")
		}
		et, fields, err := typeOfGo(t.Elem())
		if et == TypeAny {
			return TypeMap, fields, err
		}
		return MapOf(et), fields, err
	case reflect.Struct:
		fields, err := structParams(t, nil)
		return TypeMap, fields, err
	}
	return "", nil, fmt.Errorf("unsupported parameter type %s", t)
}

// decodeParams decodes a rendered `with:` value (plain Go values from YAML or
// expressions) into a fresh params struct of the step type, applying defaults first.
func decodeParams(t StepType, with map[string]any) (Step, error) {
	step := t.New()
	defaults, err := defaultsOf(t)
	if err != nil {
		return nil, err
	}
	merged := make(map[string]any, len(with)+len(defaults))
	for k, v := range defaults {
		merged[k] = v
	}
	for k, v := range with {
		merged[k] = v
	}
	b, err := appendJSONValue(nil, normalizeJSON(merged)) // json.Marshal's bytes, without reflection
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(step); err != nil {
		return nil, explainDecodeError(err)
	}
	if d, ok := step.(Defaulter); ok {
		d.Default()
	}
	return step, nil
}

var defaultsCache sync.Map // step type name -> map[string]any

// defaultsOf parses a step type's `default:` tags once; steps of that type share them
// (JSON encoding copies them, so no step sees another's values).
func defaultsOf(t StepType) (map[string]any, error) {
	if v, ok := defaultsCache.Load(t.Name); ok {
		return v.(map[string]any), nil
	}
	out := map[string]any{}
	for _, p := range ParamsOf(t) {
		if p.Default == "" {
			continue
		}
		var dv any
		if err := yaml.Unmarshal([]byte(p.Default), &dv); err != nil {
			return nil, fmt.Errorf("step type %s: bad default for %s: %v", t.Name, p.Name, err)
		}
		out[p.Name] = dv
	}
	defaultsCache.Store(t.Name, out)
	return out, nil
}

// DecodeParams decodes `with:` values into a fresh params struct of the step type,
// applying its defaults. Step packages' tests use it to build steps as a playbook would.
func DecodeParams(t StepType, with map[string]any) (Step, error) { return decodeParams(t, with) }

func explainDecodeError(err error) error {
	var te *json.UnmarshalTypeError
	if ok := asType(err, &te); ok {
		return fmt.Errorf("parameter %s: want %s, got %s", te.Field, jsonKindName(te.Type), te.Value)
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "json: unknown field ") {
		return fmt.Errorf("unknown parameter %s", strings.TrimPrefix(msg, "json: unknown field "))
	}
	return fmt.Errorf("%s", strings.TrimPrefix(msg, "json: "))
}

func asType[T error](err error, target *T) bool {
	for err != nil {
		if t, ok := err.(T); ok {
			*target = t
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

func jsonKindName(t reflect.Type) string {
	typ, _, err := typeOfGo(t)
	if err != nil {
		return t.String()
	}
	return string(typ)
}

// normalizeJSON turns the map[any]any and other shapes YAML may produce into values
// encoding/json accepts.
func normalizeJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = normalizeJSON(e)
		}
		return m
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = normalizeJSON(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = normalizeJSON(e)
		}
		return l
	case []string:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = e
		}
		return l
	}
	return v
}
