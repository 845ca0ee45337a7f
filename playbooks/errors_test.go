package playbooks

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/strictyaml"
)

// lines joins its arguments as the lines of a YAML file, so each case shows
// the line numbers its expected errors name.
func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

// TestParseErrors checks each class of error with its exact text: position,
// YAML path and message.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []string
	}{
		{
			name: "syntax error",
			in:   lines("playbooks:", "  - name: a", "    match: [x=\"y\"]", "    description: 'free disk"),
			want: []string{"pb.yaml:4:18: syntax error: could not find end character of single-quoted text"},
		},
		{
			name: "document is not a mapping",
			in:   lines("- name: a"),
			want: []string{"pb.yaml:1:1: expected a mapping, got a list"},
		},
		{
			name: "second document",
			in:   lines("playbooks: []", "---", "playbooks: []"),
			want: []string{"pb.yaml:3:1: a playbook file holds one YAML document; found another (document 2)"},
		},
		{
			name: "alias that contains itself",
			in:   lines("playbooks: &pbs", "  - *pbs"),
			want: []string{"pb.yaml:2:5: alias *pbs refers to a value that contains it"},
		},
		{
			name: "unknown field at top level",
			in:   lines("playbook:", "  - name: a"),
			want: []string{`pb.yaml:1:1: unknown field "playbook"`},
		},
		{
			name: "playbooks is not a list",
			in:   lines("playbooks: {name: a}"),
			want: []string{`pb.yaml:1:12: playbooks: expected a list, got a mapping`},
		},
		{
			name: "playbook is not a mapping",
			in:   lines("playbooks:", "  - clean", "  -"),
			want: []string{
				`pb.yaml:2:5: playbooks[0]: expected a mapping, got "clean"`,
				`pb.yaml:3:4: playbooks[1]: expected a mapping, got nothing`,
			},
		},
		{
			name: "unknown field in a playbook",
			in: lines("playbooks:", "  - name: a", "    match: [x=\"y\"]", "    steps: [{name: s, action: exec, with: {command: [\"true\"]}}]",
				"    descripton: typo"),
			want: []string{`pb.yaml:5:5: playbooks[0]: unknown field "descripton"`},
		},
		{
			name: "unknown field in a step",
			in:   lines("playbooks:", "  - name: a", "    match: [x=\"y\"]", "    steps:", "      - nmae: s", "        action: exec", "        with: {command: [\"true\"]}"),
			want: []string{
				`pb.yaml:5:9: playbooks[0].steps[0]: unknown field "nmae"`,
				`pb.yaml:5:9: playbooks[0].steps[0]: missing required field "name"`,
			},
		},
		{
			name: "unknown field in with",
			in:   lines("playbooks:", "  - name: a", "    match: [x=\"y\"]", "    steps:", "      - name: s", "        action: exec", "        with: {command: [\"true\"], cmd: [ls]}"),
			want: []string{`pb.yaml:7:35: playbooks[0].steps[0].with: unknown field "cmd"`},
		},
		{
			name: "field given twice",
			in:   lines("playbooks:", "  - name: a", "    name: b", "    match: [x=\"y\"]", "    steps: [{name: s, action: exec, with: {command: [\"true\"]}}]"),
			want: []string{`pb.yaml:3:5: playbooks[0]: field "name" given twice`},
		},
		{
			name: "missing required fields",
			in:   lines("playbooks:", "  - {}", "  - steps: [{}]"),
			want: []string{
				`pb.yaml:2:5: playbooks[0]: missing required field "name"`,
				`pb.yaml:2:5: playbooks[0]: missing required field "match"`,
				`pb.yaml:2:5: playbooks[0]: missing required field "steps"`,
				`pb.yaml:3:5: playbooks[1]: missing required field "name"`,
				`pb.yaml:3:5: playbooks[1]: missing required field "match"`,
				`pb.yaml:3:13: playbooks[1].steps[0]: missing required field "name"`,
				`pb.yaml:3:13: playbooks[1].steps[0]: missing required field "action"`,
			},
		},
		{
			name: "empty values",
			in:   lines("playbooks:", "  - name:", "    match:", "    steps: []"),
			want: []string{
				`pb.yaml:2:10: playbooks[0].name: must not be empty`,
				`pb.yaml:3:11: playbooks[0].match: must not be empty`,
				`pb.yaml:4:12: playbooks[0].steps: at least one step is required`,
			},
		},
		{
			name: "bad names",
			in: lines("playbooks:", "  - name: Clean_Data", "    match: [x=\"y\"]", "    steps:",
				"      - {name: -cleanup, action: exec, with: {command: [\"true\"]}}",
				"      - {name: [a], action: exec, with: {command: [\"true\"]}}"),
			want: []string{
				`pb.yaml:2:11: playbooks[0].name: invalid name "Clean_Data": use lowercase letters, digits and '-', starting and ending with a letter or digit`,
				`pb.yaml:5:16: playbooks[0].steps[0].name: invalid name "-cleanup": use lowercase letters, digits and '-', starting and ending with a letter or digit`,
				"pb.yaml:6:16: playbooks[0].steps[1].name: cannot unmarshal !!seq into string",
			},
		},
		{
			name: "bad matchers",
			in: lines("playbooks:", "  - name: a", "    match:", "      - foo=", "      - a=\"b\",c=\"d\"", "      - severity: critical",
				"    steps: [{name: s, action: exec, with: {command: [\"true\"]}}]", "  - name: b", "    match: []",
				"    steps: [{name: s, action: exec, with: {command: [\"true\"]}}]", "  - name: c", "    match: x=\"y\"",
				"    steps: [{name: s, action: exec, with: {command: [\"true\"]}}]"),
			want: []string{
				`pb.yaml:4:9: playbooks[0].match[0]: invalid matcher "foo=": end of input: expected label value`,
				`pb.yaml:5:9: playbooks[0].match[1]: invalid matcher "a=\"b\",c=\"d\"": expected 1 matcher, found 2`,
				"pb.yaml:6:9: playbooks[0].match[2]: cannot unmarshal !!map into string",
				`pb.yaml:9:12: playbooks[1].match: at least one matcher is required`,
				`pb.yaml:12:12: playbooks[2].match: expected a list, got "x=\"y\""`,
			},
		},
		{
			name: "bad on and dry_run",
			in: lines("playbooks:", "  - name: a", "    match: [x=\"y\"]", "    on: Firing", "    dry_run: maybe",
				"    steps: [{name: s, action: exec, with: {command: [\"true\"]}}]"),
			want: []string{
				`pb.yaml:4:9: playbooks[0].on: must be "firing" or "resolved", got "Firing"`,
				"pb.yaml:5:14: playbooks[0].dry_run: cannot unmarshal !!str `maybe` into bool",
			},
		},
		{
			name: "bad timeouts and retries",
			in: lines("playbooks:", "  - name: a", "    match: [x=\"y\"]", "    steps:",
				"      - {name: a, action: exec, with: {command: [\"true\"]}, timeout: 0s, retries: 11}",
				"      - {name: b, action: exec, with: {command: [\"true\"]}, timeout: 5 minutes, retries: -1}",
				"      - {name: c, action: exec, with: {command: [\"true\"]}, retries: 1.5}"),
			want: []string{
				"pb.yaml:5:69: playbooks[0].steps[0].timeout: must be greater than 0",
				"pb.yaml:5:82: playbooks[0].steps[0].retries: must be between 0 and 10, got 11",
				`pb.yaml:6:69: playbooks[0].steps[1].timeout: unknown unit " minutes" in duration "5 minutes"`,
				"pb.yaml:6:89: playbooks[0].steps[1].retries: must be between 0 and 10, got -1",
				`pb.yaml:7:69: playbooks[0].steps[2].retries: must be a whole number, got "1.5"`,
			},
		},
		{
			name: "steps not a list of mappings",
			in:   lines("playbooks:", "  - name: a", "    match: [x=\"y\"]", "    steps: [cleanup]", "  - name: b", "    match: [x=\"y\"]", "    steps: cleanup"),
			want: []string{
				`pb.yaml:4:13: playbooks[0].steps[0]: expected a mapping, got "cleanup"`,
				`pb.yaml:7:12: playbooks[1].steps: expected a list, got "cleanup"`,
			},
		},
		{
			name: "unknown action",
			in:   lines("playbooks:", "  - name: a", "    match: [x=\"y\"]", "    steps:", "      - name: s", "        action: shell", "        with: {command: [ls]}"),
			want: []string{`pb.yaml:6:17: playbooks[0].steps[0].action: unknown action "shell" (known: [exec])`},
		},
		{
			name: "bad action params",
			in: lines("playbooks:", "  - name: a", "    match: [x=\"y\"]", "    steps:",
				"      - name: no-with", "        action: exec",
				"      - name: empty-with", "        action: exec", "        with: {}",
				"      - name: bad-type", "        action: exec", "        with: {command: ls}",
				"      - name: bad-template", "        action: exec", "        with: {command: ['{{ .Labels.x ']}"),
			want: []string{
				"pb.yaml:5:9: playbooks[0].steps[0].with: command: required",
				"pb.yaml:9:15: playbooks[0].steps[1].with: command: required",
				`pb.yaml:12:25: playbooks[0].steps[2].with.command: expected a list, got "ls"`,
				`pb.yaml:15:26: playbooks[0].steps[3].with.command[0]: template "{{ .Labels.x ": template: :1: unclosed action`,
			},
		},
		{
			name: "duplicate names in a file",
			in: lines("playbooks:", "  - name: a", "    match: [x=\"y\"]", "    steps:",
				"      - {name: s, action: exec, with: {command: [\"true\"]}}",
				"      - {name: s, action: exec, with: {command: [\"true\"]}}",
				"  - name: a", "    match: [x=\"y\"]", "    steps: [{name: s, action: exec, with: {command: [\"true\"]}}]"),
			want: []string{
				"pb.yaml:6:16: playbooks[0].steps[1].name: step \"s\" is already defined at pb.yaml:5:16",
				"pb.yaml:7:11: playbooks[1].name: playbook \"a\" is already defined at pb.yaml:2:11",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pbs, err := Parse(testRegistry(t), "pb.yaml", []byte(tc.in))
			require.Error(t, err)
			require.Nil(t, pbs)
			require.Equal(t, strings.Join(tc.want, "\n"), err.Error())
			for _, e := range flatten(err) {
				var se *strictyaml.Error
				require.ErrorAs(t, e, &se, "every error is positioned: %v", e)
				require.Equal(t, "pb.yaml", se.File)
			}
		})
	}
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

func TestParseJoinsErrors(t *testing.T) {
	in := lines("playbooks:", "  - name: a", "    match: [x=\"y\"]", "    steps: []", "  - name: b", "    match: []",
		"    steps: [{name: s, action: exec, with: {command: [\"true\"]}}]")
	_, err := Parse(testRegistry(t), "pb.yaml", []byte(in))
	errs := flatten(err)
	require.Len(t, errs, 2, "both bad playbooks are reported")
	var se *strictyaml.Error
	require.True(t, errors.As(errs[1], &se))
	require.Equal(t, strictyaml.Error{File: "pb.yaml", Line: 6, Column: 12, Path: "playbooks[1].match", Msg: "at least one matcher is required"}, *se)
}

func TestParseNilRegistry(t *testing.T) {
	in := lines("playbooks:", "  - name: a", "    match: [x=\"y\"]", "    steps: [{name: s, action: exec}]")
	_, err := Parse(nil, "pb.yaml", []byte(in))
	require.EqualError(t, err, `pb.yaml:4:31: playbooks[0].steps[0].action: unknown action "exec" (known: [])`)
}
