package actions

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// ParamDoc describes one parameter of an action type, for `selfheal
// actions`: its YAML name, its kind, its default and what it does.
type ParamDoc struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Default string `json:"default,omitempty"`
	Doc     string `json:"doc,omitempty"`
}

var (
	templateType = reflect.TypeFor[Template]()
	durationType = reflect.TypeFor[model.Duration]()
)

// Describe lists the parameters of s from its params struct: the `yaml`
// tag names the parameter, the `doc` tag explains it, and the value in
// s.Params() is its default.
func Describe(s Spec) []ParamDoc {
	v := reflect.ValueOf(s.Params())
	for v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	var out []ParamDoc
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		out = append(out, ParamDoc{Name: name, Type: typeName(f.Type), Default: defaultOf(v.Field(i)), Doc: f.Tag.Get("doc")})
	}
	return out
}

func typeName(t reflect.Type) string {
	switch {
	case t == templateType:
		return "template"
	case t == durationType || t == reflect.TypeFor[time.Duration]():
		return "duration"
	}
	switch t.Kind() {
	case reflect.Slice:
		return "list of " + typeName(t.Elem())
	case reflect.Map:
		return "map of " + typeName(t.Elem())
	case reflect.Pointer:
		return typeName(t.Elem())
	case reflect.Int, reflect.Int32, reflect.Int64:
		return "integer"
	case reflect.Bool:
		return "boolean"
	default:
		return t.Kind().String()
	}
}

func defaultOf(v reflect.Value) string {
	if v.IsZero() {
		return ""
	}
	switch x := v.Interface().(type) {
	case Template:
		return x.String()
	case model.Duration:
		return x.String()
	}
	switch v.Kind() {
	case reflect.Map:
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, fmt.Sprintf("%v: %s", k, defaultOf(v.MapIndex(k))))
		}
		sort.Strings(keys)
		return "{" + strings.Join(keys, ", ") + "}"
	case reflect.Slice:
		items := make([]string, v.Len())
		for i := range items {
			items[i] = defaultOf(v.Index(i))
		}
		return "[" + strings.Join(items, ", ") + "]"
	case reflect.Pointer:
		return defaultOf(v.Elem())
	}
	return fmt.Sprint(v.Interface())
}
