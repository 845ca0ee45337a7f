package silence

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/alert"
	"github.com/selfheal/selfheal/amapi"
	"github.com/selfheal/selfheal/strictyaml"
)

// target is the alert the tests act for.
func target() actions.Target {
	a := alert.Alert{
		Status:      alert.Firing,
		Labels:      map[string]string{"alertname": "DiskFull", "instance": "worker-01", "severity": "page"},
		Annotations: map[string]string{"summary": "disk 95% full"},
		StartsAt:    time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC),
	}
	a.Fingerprint = alert.Fingerprint(a.Labels)
	return actions.NewTarget(a, "clean-disk", "silence", "run-42")
}

// build decodes src as a step's `with` through a registry, as playbooks do.
func build(t *testing.T, o Options, src string) (*Action, *Params, error) {
	t.Helper()
	r := actions.NewRegistry()
	require.NoError(t, r.Register(Spec(o)))
	doc, err := strictyaml.Parse("step.yaml", []byte(src))
	require.NoError(t, err)
	a, p, err := r.Build("step.yaml", "steps[0].with", ID, doc.Content[0])
	if err != nil {
		return nil, nil, err
	}
	return a.(*Action), p.(*Params), nil
}

func TestBuild(t *testing.T) {
	am := Options{URL: "http://am:9093"}
	tests := []struct {
		name    string
		opts    Options
		src     string
		want    string // the decoded params as YAML
		wantErr string
	}{
		{
			name: "defaults",
			opts: am,
			src:  "{}",
			want: "duration: 1h\ncomment: 'selfheal: remediation of {{ .Labels.alertname }} ({{ .Run }})'\n" +
				"created_by: selfheal\nmatchers: []\nexpire_on_finish: false\n",
		},
		{
			name: "everything",
			opts: am,
			src: `duration: 30m
comment: 'restarting {{ .Labels.instance }}'
created_by: oncall-bot
matchers: [alertname, instance]
expire_on_finish: true`,
			want: "duration: 30m\ncomment: restarting {{ .Labels.instance }}\ncreated_by: oncall-bot\n" +
				"matchers:\n    - alertname\n    - instance\nexpire_on_finish: true\n",
		},
		{
			name:    "unknown field",
			opts:    am,
			src:     "duration: 1h\nexpire_on_finsh: true",
			wantErr: `step.yaml:2:1: steps[0].with: unknown field "expire_on_finsh"`,
		},
		{
			name:    "bad duration",
			opts:    am,
			src:     "duration: soon",
			wantErr: `step.yaml:1:11: steps[0].with.duration: not a valid duration string: "soon"`,
		},
		{
			name:    "bad type",
			opts:    am,
			src:     "matchers: alertname",
			wantErr: "step.yaml:1:11: steps[0].with.matchers: expected a list, got \"alertname\"",
		},
		{
			name:    "bad template",
			opts:    am,
			src:     "comment: '{{ .Labels.x '",
			wantErr: `step.yaml:1:10: steps[0].with.comment: template "{{ .Labels.x ": template: :1: unclosed action`,
		},
		{
			name: "every validation problem at once",
			opts: am,
			src:  "duration: 0s\ncomment: ''\ncreated_by: ' '\nmatchers: [instance, '', instance]",
			wantErr: `step.yaml:1:1: steps[0].with: duration: must be greater than 0; comment: must be set; ` +
				`created_by: must be set; matchers[1]: must not be empty; matchers[2]: "instance" is listed twice`,
		},
		{
			name:    "longer than 7d",
			opts:    am,
			src:     "duration: 8d",
			wantErr: "step.yaml:1:1: steps[0].with: duration: 8d is longer than the maximum of 7d",
		},
		{
			name: "7d is the maximum",
			opts: am,
			src:  "duration: 7d",
			want: "duration: 1w\ncomment: 'selfheal: remediation of {{ .Labels.alertname }} ({{ .Run }})'\n" +
				"created_by: selfheal\nmatchers: []\nexpire_on_finish: false\n",
		},
		{
			name:    "no alertmanager url",
			src:     "{}",
			wantErr: "step.yaml:1:1: steps[0].with: no Alertmanager URL is configured for alertmanager.silence",
		},
		{
			name:    "relative alertmanager url",
			opts:    Options{URL: "am:9093"},
			src:     "{}",
			wantErr: `step.yaml:1:1: steps[0].with: alertmanager url: "am:9093" is not an absolute http or https URL`,
		},
		{
			name:    "alertmanager url with a query",
			opts:    Options{URL: "http://u:pw@am:9093/?x=1"},
			src:     "{}",
			wantErr: `step.yaml:1:1: steps[0].with: alertmanager url: "http://u:xxxxx@am:9093/?x=1" must not have a query or fragment`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, p, err := build(t, tt.opts, tt.src)
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.NotNil(t, a)
			got, err := yaml.Marshal(p)
			require.NoError(t, err)
			require.Equal(t, tt.want, string(got))
		})
	}
}

func TestSpec(t *testing.T) {
	s := Spec(Options{URL: "http://am:9093"})
	require.Equal(t, "alertmanager.silence", s.ID)
	require.NotEmpty(t, s.Summary)
	require.NotContains(t, s.Summary, "\n")
}

func TestNew(t *testing.T) {
	_, err := New(nil, Options{URL: "http://am:9093"})
	require.EqualError(t, err, "alertmanager.silence: nil params")
	_, err = New(&Params{}, Options{URL: "http://am:9093"})
	require.ErrorContains(t, err, "duration: must be greater than 0")

	a, err := New(DefaultParams(), Options{URL: "https://am.example/prefix/"})
	require.NoError(t, err)
	require.Equal(t, "https://am.example/prefix", a.am.url)
	require.NotNil(t, a.now)
	require.NotNil(t, a.logger)
}

func TestPrepare(t *testing.T) {
	tests := []struct {
		name     string
		matchers []string
		labels   map[string]string
		comment  string
		want     string
		wantErr  string
	}{
		{
			name: "all labels, sorted",
			want: `alertname="DiskFull", instance="worker-01", severity="page"`,
		},
		{
			name:     "chosen labels, sorted",
			matchers: []string{"instance", "alertname"},
			want:     `alertname="DiskFull", instance="worker-01"`,
		},
		{
			name:   "empty values are left out",
			labels: map[string]string{"alertname": "X", "team": ""},
			want:   `alertname="X"`,
		},
		{
			name:   "values are quoted",
			labels: map[string]string{"alertname": "X", "path": `/data "a"\b`},
			want:   `alertname="X", path="/data \"a\"\\b"`,
		},
		{
			name:     "a chosen label the alert lacks",
			matchers: []string{"alertname", "pod"},
			wantErr:  `matchers: the alert has no label "pod"`,
		},
		{
			name:    "no labels",
			labels:  map[string]string{"team": ""},
			comment: "x",
			wantErr: "matchers: the alert has no labels to silence on",
		},
		{
			name:    "comment needs a label the alert lacks",
			comment: "{{ .Labels.pod }}",
			wantErr: `comment: render "{{ .Labels.pod }}": template: :1:10: executing "" at <.Labels.pod>: map has no entry for key "pod"`,
		},
		{
			name:    "comment renders empty",
			comment: "{{ .Annotations.summary | reReplaceAll \".*\" \"\" }}",
			wantErr: "comment: renders empty",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := DefaultParams()
			p.Matchers = tt.matchers
			if tt.comment != "" {
				p.Comment = actions.MustTemplate(tt.comment)
			}
			a, err := New(p, Options{URL: "http://am:9093"})
			require.NoError(t, err)
			tg := target()
			if tt.labels != nil {
				tg.Labels = tt.labels
			}
			s, err := a.prepare(tg)
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, s.matcherString())
		})
	}
}

func TestAPIMessage(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
	}{
		{name: "empty", body: "", want: ""},
		{name: "alertmanager's JSON string", body: `"matcher set 0: at least one matcher must not match the empty string"` + "\n",
			want: "matcher set 0: at least one matcher must not match the empty string"},
		{name: "go-openapi validation error", body: `{"code":602,"message":"matchers in body is required"}`,
			want: "matchers in body is required"},
		{name: "text", body: "  <html>bad gateway</html>\n", want: "<html>bad gateway</html>"},
		{name: "long text", body: strings.Repeat("a", amapi.MessageLimit+5), want: strings.Repeat("a", amapi.MessageLimit) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := strings.NewReader(tt.body)
			require.Equal(t, tt.want, amapi.Message(r))
			require.Zero(t, r.Len(), "the body is drained")
		})
	}
}
