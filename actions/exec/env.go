package exec

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/alert"
)

// invocation is a command rendered for one target: exactly what Run starts
// and what Plan shows. Plan and Run both build it with prepare, so they
// cannot disagree.
type invocation struct {
	// argv is the rendered argument vector; argv[0] is as written.
	argv []string
	// path is the executable argv[0] resolved to.
	path string
	dir  string
	// env is the whole environment, "NAME=value", sorted by name.
	env []string
	// inherited, alert and params name the variables by origin, sorted.
	inherited, alert, params []string
	// paramValues are the rendered values of the params env.
	paramValues map[string]string
}

// inheritedVars are the only variables copied from the daemon: its
// environment may hold secrets the command has no business seeing.
func inheritedVars() []string { return []string{"PATH", "HOME", "LANG", "TZ"} }

// prepare renders the command and its environment for t and resolves the
// executable. It has no side effect.
func (a *Action) prepare(t actions.Target) (invocation, error) {
	argv := make([]string, len(a.p.Command))
	for i, tmpl := range a.p.Command {
		s, err := tmpl.Render(t)
		if err != nil {
			return invocation{}, fmt.Errorf("command[%d]: %w", i, err)
		}
		argv[i] = s
	}
	if err := checkArgv(a.p.Command, argv); err != nil {
		return invocation{}, err
	}
	inv := invocation{argv: argv, dir: a.p.Dir}
	env := map[string]string{}
	for _, name := range inheritedVars() {
		if v, ok := os.LookupEnv(name); ok {
			env[name] = v
			inv.inherited = append(inv.inherited, name)
		}
	}
	av, err := alertEnv(t)
	if err != nil {
		return invocation{}, err
	}
	maps.Copy(env, av)
	inv.alert = slices.Sorted(maps.Keys(av))
	inv.paramValues, err = actions.RenderMap(a.p.Env, t)
	if err != nil {
		return invocation{}, fmt.Errorf("env.%w", err)
	}
	maps.Copy(env, inv.paramValues)
	inv.params = slices.Sorted(maps.Keys(inv.paramValues))
	for _, name := range slices.Sorted(maps.Keys(env)) {
		inv.env = append(inv.env, name+"="+env[name])
	}
	inv.path, err = resolve(argv[0], env["PATH"])
	if err != nil {
		return invocation{}, err
	}
	return inv, nil
}

// alertEnv returns the SELFHEAL_* variables describing t.
func alertEnv(t actions.Target) (map[string]string, error) {
	env := map[string]string{
		"SELFHEAL_STATUS":        string(t.Status),
		"SELFHEAL_FINGERPRINT":   t.Fingerprint,
		"SELFHEAL_STARTS_AT":     t.StartsAt.UTC().Format(time.RFC3339Nano),
		"SELFHEAL_EPISODE":       t.Episode,
		"SELFHEAL_PLAYBOOK":      t.Playbook,
		"SELFHEAL_STEP":          t.Step,
		"SELFHEAL_RUN_ID":        t.Run,
		"SELFHEAL_GENERATOR_URL": t.GeneratorURL,
	}
	// Sorted, so that when two names sanitize alike the lexically greatest
	// original name wins, the same way every time.
	for _, k := range slices.Sorted(maps.Keys(t.Labels)) {
		env["SELFHEAL_LABEL_"+envName(k)] = t.Labels[k]
	}
	for _, k := range slices.Sorted(maps.Keys(t.Annotations)) {
		env["SELFHEAL_ANNOTATION_"+envName(k)] = t.Annotations[k]
	}
	js, err := json.Marshal(alertJSON{
		Status:      t.Status,
		Labels:      nonNil(t.Labels),
		Annotations: nonNil(t.Annotations),
		StartsAt:    t.StartsAt.UTC(),
		Fingerprint: t.Fingerprint,
	})
	if err != nil {
		return nil, fmt.Errorf("encode SELFHEAL_ALERT_JSON: %w", err)
	}
	env["SELFHEAL_ALERT_JSON"] = string(js)
	return env, nil
}

// alertJSON is the shape of SELFHEAL_ALERT_JSON, using Alertmanager's field
// names.
type alertJSON struct {
	Status      alert.Status      `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	Fingerprint string            `json:"fingerprint"`
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// envName turns a label or annotation name into the tail of a variable
// name: upper-cased, every rune outside [A-Z0-9_] replaced by '_'.
func envName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, strings.ToUpper(s))
}

// validEnvName reports whether s is a portable variable name:
// [A-Za-z_][A-Za-z0-9_]*.
func validEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// resolve finds the executable name refers to: an absolute path as is, a
// bare name in the absolute directories of pathList (relative entries are
// skipped, as os/exec refuses them too). The lookup uses the command's own
// PATH, so a PATH set through env is honoured.
func resolve(name, pathList string) (string, error) {
	switch {
	case name == "":
		return "", errors.New("command[0]: rendered to an empty string")
	case filepath.IsAbs(name):
		if err := executable(name); err != nil {
			return "", fmt.Errorf("command[0]: %w", err)
		}
		return name, nil
	case strings.ContainsRune(name, '/'):
		return "", fmt.Errorf("command[0]: %q must be an absolute path or a bare name looked up on PATH", name)
	}
	for _, dir := range filepath.SplitList(pathList) {
		if !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, name)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("command[0]: %q not found on PATH %q", name, pathList)
}

// executable checks that path is a regular file someone may execute.
func executable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return &fs.PathError{Op: "exec", Path: path, Err: fs.ErrPermission}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
