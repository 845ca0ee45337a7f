package jenkins

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
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
	return actions.NewTarget(a, "clean-disk", "rebuild", "run-42")
}

// logBuffer collects log output, safe for concurrent writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// build decodes src as a step's `with` through a registry, as playbooks
// do, with servers and a 1ms minimum poll interval. Logs go to logs when
// it is not nil.
func build(t *testing.T, servers Servers, logs *logBuffer, src string) (*Action, *Params, error) {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	if logs != nil {
		logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	r := actions.NewRegistry()
	require.NoError(t, r.Register(NewSpec(Options{Servers: servers, Logger: logger, MinPollInterval: time.Millisecond})))
	doc, err := strictyaml.Parse("step.yaml", []byte(src))
	require.NoError(t, err)
	a, p, err := r.Build("step.yaml", "steps[0].with", ID, doc.Content[0])
	if err != nil {
		return nil, nil, err
	}
	return a.(*Action), p.(*Params), nil
}

// exampleServers are servers for tests that send nothing.
func exampleServers() Servers {
	return Servers{
		"default": {URL: "https://jenkins.example", User: "bot", APIToken: fakeToken},
		"legacy":  {URL: "https://old.example/jenkins/", User: "bot", APIToken: fakeToken, Timeout: time.Minute},
	}
}

func TestBuild(t *testing.T) {
	tests := []struct {
		name    string
		servers Servers
		src     string
		want    string // the decoded params as YAML
		wantErr string
	}{
		{
			name: "defaults",
			src:  "job: infra/clean-disk",
			want: "server: default\njob: infra/clean-disk\nparameters: {}\nwait: true\ntimeout: 20m\npoll_interval: 5s\n",
		},
		{
			name: "everything",
			src: `server: legacy
job: 'infra/{{ .Labels.alertname }}'
parameters: {HOST: '{{ .Labels.instance }}', REASON: disk full}
wait: false
timeout: 1h
poll_interval: 30s`,
			want: "server: legacy\njob: infra/{{ .Labels.alertname }}\nparameters:\n    HOST: '{{ .Labels.instance }}'\n" +
				"    REASON: disk full\nwait: false\ntimeout: 1h\npoll_interval: 30s\n",
		},
		{
			name:    "unknown field",
			src:     "job: deploy\nparamters: {HOST: x}",
			wantErr: `step.yaml:2:1: steps[0].with: unknown field "paramters"`,
		},
		{
			name:    "bad type",
			src:     "job: deploy\nwait: sometimes",
			wantErr: "step.yaml:2:7: steps[0].with.wait: cannot unmarshal !!str `sometimes` into bool",
		},
		{
			name:    "bad duration",
			src:     "job: deploy\ntimeout: soon",
			wantErr: `step.yaml:2:10: steps[0].with.timeout: not a valid duration string: "soon"`,
		},
		{
			name:    "no job",
			src:     "server: default",
			wantErr: "step.yaml:1:1: steps[0].with: job: must be set",
		},
		{
			name: "every validation problem at once",
			src:  "server: ''\njob: a//b\nparameters: {' ': x}\ntimeout: 0s\npoll_interval: 0s",
			wantErr: `step.yaml:1:1: steps[0].with: server: must not be empty; job: "a//b" has an empty segment (write folders as a/b); ` +
				`parameters: a parameter name must not be empty; timeout: must be greater than 0; poll_interval: must be greater than 0`,
		},
		{
			name:    "poll interval above timeout",
			src:     "job: deploy\ntimeout: 1s\npoll_interval: 2s",
			wantErr: "step.yaml:1:1: steps[0].with: poll_interval: 2s must not exceed timeout 1s",
		},
		{
			name:    "unknown server",
			src:     "server: prod\njob: deploy",
			wantErr: "step.yaml:1:1: steps[0].with: server: \"prod\" is not configured (configured: default, legacy)",
		},
		{
			name:    "no servers at all",
			servers: Servers{},
			src:     "job: deploy",
			wantErr: `step.yaml:1:1: steps[0].with: server: "default" is not configured: the daemon configuration lists no Jenkins servers`,
		},
		{
			name: "misconfigured server",
			servers: Servers{"default": {URL: "https://bot:" + fakeToken + "@jenkins.example", User: "bot", APIToken: fakeToken,
				Timeout: -1}},
			src: "job: deploy",
			wantErr: `step.yaml:1:1: steps[0].with: server default: url: "https://bot:xxxxx@jenkins.example" must not hold credentials: ` +
				`set user and api_token; timeout: must not be negative`,
		},
		{
			name:    "missing CA file",
			servers: Servers{"default": {URL: "https://jenkins.example", User: "bot", APIToken: fakeToken, CAFile: "/nonexistent/ca.pem"}},
			src:     "job: deploy",
			wantErr: "step.yaml:1:1: steps[0].with: server default: ca_file: open /nonexistent/ca.pem: no such file or directory",
		},
		{
			name:    "bad template",
			src:     "job: '{{ .Labels.x '",
			wantErr: `step.yaml:1:6: steps[0].with.job: template "{{ .Labels.x ": template: :1: unclosed action`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			servers := tt.servers
			if servers == nil {
				servers = exampleServers()
			}
			a, p, err := build(t, servers, nil, tt.src)
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				require.NotContains(t, err.Error(), fakeToken)
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

func TestMinPollInterval(t *testing.T) {
	r := actions.NewRegistry()
	require.NoError(t, r.Register(Spec(exampleServers(), nil)))
	doc, err := strictyaml.Parse("step.yaml", []byte("job: deploy\npoll_interval: 500ms"))
	require.NoError(t, err)
	_, _, err = r.Build("step.yaml", "steps[0].with", ID, doc.Content[0])
	require.EqualError(t, err, "step.yaml:1:1: steps[0].with: poll_interval: 500ms is below the minimum 1s")
}

func TestSpec(t *testing.T) {
	s := Spec(exampleServers(), nil)
	require.Equal(t, "jenkins.build", s.ID)
	require.NotEmpty(t, s.Summary)
	require.NotContains(t, s.Summary, "\n")
}

func TestParseJobPath(t *testing.T) {
	tests := []struct {
		in      string
		base    string
		wantErr string
	}{
		{in: "deploy", base: "/job/deploy"},
		{in: "infra/disk/clean", base: "/job/infra/job/disk/job/clean"},
		{in: "my folder/clean disk", base: "/job/my%20folder/job/clean%20disk"},
		{in: "ops/nettoyage+disque é", base: "/job/ops/job/nettoyage+disque%20%C3%A9"},
		{in: "a=b,c", base: "/job/a=b%2Cc"},
		{in: "", wantErr: "job: must not be empty"},
		{in: "/deploy", wantErr: `job: "/deploy" has an empty segment (write folders as a/b)`},
		{in: "a/", wantErr: `job: "a/" has an empty segment (write folders as a/b)`},
		{in: "a/../b", wantErr: `job: "a/../b": ".." is not a job or folder name`},
		{in: " a", wantErr: `job: " a": " a" starts or ends with a space`},
		{in: "weird#1", wantErr: `job: "weird#1": Jenkins does not allow "#" in a name`},
		{in: "a?b", wantErr: `job: "a?b": Jenkins does not allow "?" in a name`},
		{in: "50%", wantErr: `job: "50%": Jenkins does not allow "%" in a name`},
		{in: "a\tb", wantErr: `job: "a\tb": "a\tb" contains a control character`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := parseJobPath(tt.in)
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.base, p.base())
			require.Equal(t, tt.in, p.String())
		})
	}
}

func TestQueueIDFromLocation(t *testing.T) {
	tests := []struct {
		loc     string
		want    int64
		wantErr string
	}{
		{loc: "http://jenkins:8080/queue/item/1151/", want: 1151},
		{loc: "https://ci.example/jenkins/queue/item/7", want: 7},
		{loc: "/queue/item/42/", want: 42},
		{loc: "", wantErr: "no Location header: expected one naming a queue item"},
		{loc: "http://jenkins/job/x/", wantErr: `location header "http://jenkins/job/x/" does not name a queue item`},
		{loc: "http://jenkins/queue/item/x/", wantErr: `location header "http://jenkins/queue/item/x/" does not name a queue item`},
		{loc: "http://jenkins/queue/item/0/", wantErr: `location header "http://jenkins/queue/item/0/" does not name a queue item`},
	}
	for _, tt := range tests {
		t.Run(tt.loc, func(t *testing.T) {
			id, err := queueIDFromLocation(tt.loc)
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, id)
		})
	}
}

func TestServerHidesItsToken(t *testing.T) {
	s := Server{URL: "https://jenkins.example", User: "bot", APIToken: fakeToken}
	var logs logBuffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("server", "server", s)
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("server", "server", s)
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s), fmt.Sprintf("%v", Servers{"x": s}), logs.String()} {
		require.NotContains(t, out, fakeToken)
		require.Contains(t, out, "https://jenkins.example")
	}
}

func TestRecent(t *testing.T) {
	r := newRecent()
	now := time.Now()
	require.False(t, r.add("a", 1, now))
	require.True(t, r.add("a", 1, now))
	require.False(t, r.add("b", 1, now), "per server")
	require.False(t, r.add("a", 1, now.Add(2*recentTTL)), "forgotten after the TTL")
	require.Len(t, r.seen, 1, "old entries are pruned")
}

// parseStep parses src as a step's `with`.
func parseStep(src string) (*yaml.Node, error) {
	doc, err := strictyaml.Parse("step.yaml", []byte(src))
	if err != nil {
		return nil, err
	}
	return doc.Content[0], nil
}

// httptestServer starts h, closed at the end of the test.
func httptestServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

// buildWith builds a step from src with r.
func buildWith(t *testing.T, r *actions.Registry, src string) (actions.Action, actions.Params, error) {
	t.Helper()
	doc, err := parseStep(src)
	require.NoError(t, err)
	return r.Build("step.yaml", "steps[0].with", ID, doc)
}
