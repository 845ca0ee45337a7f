package web

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/redact"
)

// paramView is one parameter of a step as the playbook sets it: Value
// rendered for the run's alert, Template the source when it is one.
type paramView struct {
	Name     string `json:"name"`
	Value    string `json:"value"`
	Template string `json:"template,omitempty"`
	// Error says why a template did not render for the run's alert.
	Error string `json:"error,omitempty"`
}

// maxParamValue caps a shown value: a templated body can be long.
const maxParamValue = 4 << 10

var (
	templateType = reflect.TypeFor[actions.Template]()
	durationType = reflect.TypeFor[model.Duration]()
	stdDuration  = reflect.TypeFor[time.Duration]()
	stringerType = reflect.TypeFor[fmt.Stringer]()
)

// stepParams lists the parameters a step's params struct sets (zero
// values, left to the action's default of nothing, are left out), by
// their YAML names, templates rendered for target. The record of a run
// does not keep them, so they come from the playbook as it is loaded.
//
// Secrets never show: a value whose name looks secret (redact.Name: a
// header "X-Auth", a variable "FOO_PASSWORD", a field "api_token") and any
// value of a Secret type shows as "<secret>"; every value is masked by
// shape as well (URL passwords, tokens in queries, Authorization headers).
func stepParams(p actions.Params, target actions.Target) []paramView {
	if p == nil {
		return nil
	}
	var out []paramView
	walkParams(&out, "", reflect.ValueOf(p), target)
	return out
}

func walkParams(out *[]paramView, name string, v reflect.Value, target actions.Target) {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	t := v.Type()
	switch {
	case strings.Contains(t.PkgPath(), "yaml"):
		return // a raw node (a removed parameter): nothing set
	case strings.Contains(t.Name(), "Secret") || secretName(name):
		*out = append(*out, paramView{Name: name, Value: redact.Shown})
	case t == templateType:
		*out = append(*out, renderParam(name, v.Interface().(actions.Template), target))
	case t == durationType || t == stdDuration || t.Implements(stringerType):
		*out = append(*out, shownParam(name, v.Interface().(fmt.Stringer).String()))
	case t.Kind() == reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			tag, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || tag == "-" || v.Field(i).IsZero() {
				continue
			}
			if tag == "" && !strings.Contains(opts, "inline") {
				tag = strings.ToLower(f.Name)
			}
			walkParams(out, join(name, tag), v.Field(i), target)
		}
	case t.Kind() == reflect.Map:
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
		for _, k := range keys {
			walkParams(out, join(name, fmt.Sprint(k)), v.MapIndex(k), target)
		}
	case t.Kind() == reflect.Slice && t.Elem() == templateType:
		list := make([]string, v.Len())
		var sources []string
		var errs []string
		for i := range v.Len() {
			p := renderParam("", v.Index(i).Interface().(actions.Template), target)
			list[i] = p.Value
			sources = append(sources, v.Index(i).Interface().(actions.Template).String())
			if p.Error != "" {
				errs = append(errs, p.Error)
			}
		}
		pv := shownParam(name, jsonList(list))
		if src := jsonList(sources); src != pv.Value {
			pv.Template = redact.New().String(src)
		}
		pv.Error = strings.Join(errs, "; ")
		*out = append(*out, pv)
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		list := make([]string, v.Len())
		for i := range v.Len() {
			list[i] = v.Index(i).String()
		}
		*out = append(*out, shownParam(name, jsonList(list)))
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		for i := range v.Len() {
			walkParams(out, fmt.Sprintf("%s[%d]", name, i), v.Index(i), target)
		}
	default:
		*out = append(*out, shownParam(name, fmt.Sprint(v.Interface())))
	}
}

// renderParam renders tpl for target; one that does not render shows its
// source, and why.
func renderParam(name string, tpl actions.Template, target actions.Target) paramView {
	src := tpl.String()
	s, err := tpl.Render(target)
	if err != nil {
		pv := shownParam(name, src)
		pv.Error = redact.New().String(err.Error())
		return pv
	}
	pv := shownParam(name, s)
	if src != s {
		pv.Template = clip(redact.New().String(src))
	}
	return pv
}

// shownParam is the parameter name with value masked by shape and capped.
func shownParam(name, value string) paramView {
	return paramView{Name: name, Value: clip(redact.New().String(value))}
}

// secretName reports whether a parameter named name (a.b.c) holds a secret
// by its last part's name. A *_file parameter names a file, not a secret.
func secretName(name string) bool {
	i := strings.LastIndexByte(name, '.')
	last := name[i+1:]
	return last != "" && redact.Name(last) && !strings.HasSuffix(last, "_file")
}

func join(prefix, name string) string {
	if prefix == "" || name == "" {
		return prefix + name
	}
	return prefix + "." + name
}

func jsonList(list []string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(list)
	return strings.TrimSuffix(b.String(), "\n")
}

func clip(s string) string {
	if len(s) <= maxParamValue {
		return s
	}
	return s[:maxParamValue] + "… (cut)"
}
