package webhook

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/alert"
	"github.com/selfheal/selfheal/strictyaml"
)

// target is the alert the tests act for.
func target() actions.Target {
	a := alert.Alert{
		Status:      alert.Firing,
		Labels:      map[string]string{"alertname": "DiskFull", "instance": "worker-01"},
		Annotations: map[string]string{"summary": "disk 95% full"},
		StartsAt:    time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC),
	}
	a.Fingerprint = alert.Fingerprint(a.Labels)
	return actions.NewTarget(a, "clean-disk", "notify", "run-42")
}

// build decodes src as a step's `with` through a registry, as playbooks do.
func build(t *testing.T, src string) (*Action, *Params, error) {
	t.Helper()
	r := actions.NewRegistry()
	require.NoError(t, r.Register(Spec(nil, nil)))
	doc, err := strictyaml.Parse("step.yaml", []byte(src))
	require.NoError(t, err)
	a, p, err := r.Build("step.yaml", "steps[0].with", ID, doc.Content[0])
	if err != nil {
		return nil, nil, err
	}
	return a.(*Action), p.(*Params), nil
}

func TestBuild(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		want    string // the decoded params as YAML
		wantErr string
	}{
		{
			name: "defaults",
			src:  "url: https://chat.example/hook",
			want: "url: https://chat.example/hook\nmethod: POST\nheaders: {}\nbody: \"\"\ntimeout: 10s\nbearer_token_file: \"\"\n",
		},
		{
			name: "everything",
			src: `url: 'https://chat.example/{{ .Labels.instance }}'
method: PUT
headers: {X-Api-Key: abc, X-Run: '{{ .Run }}'}
body: '{"text": "{{ .Labels.instance }}"}'
timeout: 2s
bearer_token_file: /etc/selfheal/token`,
			want: `url: https://chat.example/{{ .Labels.instance }}
method: PUT
headers:
    X-Api-Key: abc
    X-Run: '{{ .Run }}'
body: '{"text": "{{ .Labels.instance }}"}'
timeout: 2s
bearer_token_file: /etc/selfheal/token
`,
		},
		{
			name:    "unknown field",
			src:     "url: https://chat.example/hook\nretries: 3",
			wantErr: `step.yaml:2:1: steps[0].with: unknown field "retries"`,
		},
		{
			name:    "bad type",
			src:     "url: https://chat.example/hook\ntimeout: soon",
			wantErr: `step.yaml:2:10: steps[0].with.timeout: not a valid duration string: "soon"`,
		},
		{
			name:    "no url",
			src:     "method: GET",
			wantErr: "step.yaml:1:1: steps[0].with: url: must be set",
		},
		{
			name: "every validation problem at once",
			src: `url: ftp://files.example/x
method: post
headers: {'Bad Name': x, Host: h, authorization: y}
timeout: 0s
bearer_token_file: token.txt`,
			wantErr: `step.yaml:1:1: steps[0].with: url: "ftp://files.example/x" is not an absolute http or https URL; ` +
				`method: "post" must be one of GET, POST, PUT, PATCH, DELETE; ` +
				`headers: "Bad Name" is not a valid header name; headers: Host is set by the client, not by a step; ` +
				`headers: Authorization conflicts with bearer_token_file; timeout: must be greater than 0; ` +
				`bearer_token_file: "token.txt" must be an absolute path`,
		},
		{
			name:    "relative url",
			src:     "url: /hook",
			wantErr: `step.yaml:1:1: steps[0].with: url: "/hook" is not an absolute http or https URL`,
		},
		{
			name:    "bad template",
			src:     "url: https://x/\nbody: '{{ .Labels.x '",
			wantErr: `step.yaml:2:7: steps[0].with.body: template "{{ .Labels.x ": template: :1: unclosed action`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, p, err := build(t, tt.src)
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
	s := Spec(nil, nil)
	require.Equal(t, "webhook", s.ID)
	require.NotEmpty(t, s.Summary)
	require.NotContains(t, s.Summary, "\n")

	// The documented example must build.
	var steps []struct {
		Action string    `yaml:"action"`
		With   yaml.Node `yaml:"with"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(s.Example), &steps))
	require.Len(t, steps, 1)
	require.Equal(t, ID, steps[0].Action)
	r := actions.NewRegistry()
	require.NoError(t, r.Register(s))
	_, _, err := r.Build("example.yaml", "with", ID, &steps[0].With)
	require.NoError(t, err)
}

func TestNewDoesNotChangeTheClient(t *testing.T) {
	c := &http.Client{Timeout: time.Minute}
	a, err := New(&Params{URL: actions.MustTemplate("http://x/"), Method: "GET", Timeout: 1e9}, c, nil)
	require.NoError(t, err)
	require.Nil(t, c.CheckRedirect)
	require.NotNil(t, a.client.CheckRedirect)
	require.Equal(t, time.Minute, a.client.Timeout)

	_, err = New(&Params{}, nil, nil)
	require.Error(t, err)
}

// TestMaxAttemptsIsRemoved: the step's retries are the one retry layer, so
// a step still setting max_attempts fails to load at that parameter,
// saying which retries to set instead, together with the other problems.
func TestMaxAttemptsIsRemoved(t *testing.T) {
	const why = "removed: a step is retried by the step's retries (the engine's one retry layer)"
	tests := []struct {
		name, src, wantErr string
	}{
		{
			name:    "three attempts",
			src:     "url: https://chat.example/hook\nmax_attempts: 3",
			wantErr: "step.yaml:2:15: steps[0].with.max_attempts: " + why + "; set retries: 2 on the step instead",
		},
		{
			name:    "one attempt",
			src:     "url: https://chat.example/hook\nmax_attempts: 1",
			wantErr: "step.yaml:2:15: steps[0].with.max_attempts: " + why + "; delete it: a step without retries sends the request once",
		},
		{
			name:    "not a number",
			src:     "url: https://chat.example/hook\nmax_attempts: many",
			wantErr: "step.yaml:2:15: steps[0].with.max_attempts: " + why + "; set retries on the step instead (max_attempts: 3 was retries: 2)",
		},
		{
			name:    "empty",
			src:     "url: https://chat.example/hook\nmax_attempts:",
			wantErr: "step.yaml:2:14: steps[0].with.max_attempts: " + why + "; set retries on the step instead (max_attempts: 3 was retries: 2)",
		},
		{
			name: "with other problems",
			src:  "url: https://chat.example/hook\nmethod: post\nmax_attempts: 2",
			wantErr: `step.yaml:1:1: steps[0].with: method: "post" must be one of GET, POST, PUT, PATCH, DELETE` + "\n" +
				"step.yaml:3:15: steps[0].with.max_attempts: " + why + "; set retries: 1 on the step instead",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := build(t, tt.src)
			require.EqualError(t, err, tt.wantErr)
		})
	}
	for _, d := range actions.Describe(Spec(nil, nil)) {
		require.NotEqual(t, "max_attempts", d.Name, "a removed parameter is not documented")
	}
}

func TestSecretHeader(t *testing.T) {
	tests := []struct {
		name   string
		secret bool
	}{
		{"Authorization", true},
		{"Proxy-Authorization", true},
		{"X-Auth-Token", true},
		{"X-Api-Key", true},
		{"X-Client-Secret", true},
		{"X-Password", true},
		{"Cookie", true},
		{"Content-Type", false},
		{"X-Playbook", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.secret, secretHeader(tt.name))
		})
	}
}

func TestReadExcerpt(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
	}{
		{name: "empty", body: "", want: ""},
		{name: "short, trimmed", body: "  oops\n", want: "oops"},
		{name: "exactly the limit", body: strings.Repeat("a", bodyExcerpt), want: strings.Repeat("a", bodyExcerpt)},
		{name: "longer", body: strings.Repeat("a", bodyExcerpt+10), want: strings.Repeat("a", bodyExcerpt) + "…"},
		{name: "cut inside a rune", body: strings.Repeat("a", bodyExcerpt-1) + "é and more", want: strings.Repeat("a", bodyExcerpt-1) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := strings.NewReader(tt.body)
			require.Equal(t, tt.want, readExcerpt(r))
			require.Zero(t, r.Len(), "the body is drained")
		})
	}
}

// TestMaxDuration: a webhook step bounds one request, so a step timeout
// shorter than the request's is refused at load.
func TestMaxDuration(t *testing.T) {
	p := DefaultParams()
	require.Equal(t, 10*time.Second, p.MaxDuration())
}
