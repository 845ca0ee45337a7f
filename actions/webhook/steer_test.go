package webhook

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/actions"
)

// hostile is the alert of the tests with the label x set to v.
func hostile(v string) actions.Target {
	t := target()
	t.Labels = map[string]string{"alertname": "DiskFull", "instance": "worker-01", "x": v}
	return t
}

// TestCredentialURLMustBeLiteral: a request that carries credentials has a
// literal scheme, host and port; a template in them is a load error at the
// url's position.
func TestCredentialURLMustBeLiteral(t *testing.T) {
	const rule = `, so the URL's scheme, host and port must be literal: a template may only follow "scheme://host[:port]/"`
	tests := []struct {
		name, src, wantErr string
	}{
		{
			name:    "bearer token, label host",
			src:     "url: 'http://{{ .Labels.instance }}/hook'\nbearer_token_file: /etc/selfheal/token",
			wantErr: `step.yaml:1:6: steps[0].with.url: the request carries a bearer token (bearer_token_file)` + rule,
		},
		{
			name:    "secret header, label port",
			src:     "url: 'https://hook.example:{{ .Labels.port }}/x'\nheaders: {X-Api-Key: abc}",
			wantErr: `step.yaml:1:6: steps[0].with.url: the request carries the header X-Api-Key` + rule,
		},
		{
			name:    "bearer token, label extends the host",
			src:     "url: 'https://hook.example{{ .Labels.x }}/'\nbearer_token_file: /etc/selfheal/token",
			wantErr: `step.yaml:1:6: steps[0].with.url: the request carries a bearer token (bearer_token_file)` + rule,
		},
		{
			name:    "user and password in the URL",
			src:     "url: 'https://selfheal:pw@{{ .Labels.instance }}/hook'",
			wantErr: `step.yaml:1:6: steps[0].with.url: the request carries a user and password in the URL` + rule,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := build(t, tc.src)
			require.EqualError(t, err, tc.wantErr)
		})
	}
	for _, src := range []string{
		"url: 'https://hook.example/{{ .Labels.instance }}?q={{ .Labels.x }}'\nbearer_token_file: /etc/selfheal/token",
		"url: 'https://hook.example:8443/{{ .Labels.instance }}'\nheaders: {Authorization: Basic abc}",
		"url: 'http://{{ .Labels.instance }}:9100/hook'\nheaders: {X-Playbook: '{{ .Playbook }}'}",
	} {
		t.Run(src, func(t *testing.T) {
			_, _, err := build(t, src)
			require.NoError(t, err)
		})
	}
}

// TestHostileLabelsStayOnTheLiteralHost: whatever a label holds, a request
// whose host is literal goes to that host, token included, and nowhere else.
func TestHostileLabelsStayOnTheLiteralHost(t *testing.T) {
	srv, evil := newFake(t, "ok", 200), newFake(t, "", 200)
	evilHost := strings.TrimPrefix(evil.URL, "http://")
	tok := writeToken(t, "s3cret\n")
	for _, v := range []string{"@" + evilHost + "/", evilHost, "//" + evilHost, "../victim", `\@` + evilHost} {
		t.Run(v, func(t *testing.T) {
			a := newAction(t, func(p *Params) {
				p.URL = actions.MustTemplate(srv.URL + "/{{ .Labels.x }}")
				p.BearerTokenFile = tok
			})
			_, err := a.Run(context.Background(), hostile(v))
			require.NoError(t, err)
		})
	}
	require.Len(t, srv.requests(), 5)
	require.Empty(t, evil.requests(), "a label sent the token to another host")
}

// TestHostileLabelsInAnUncredentialedHost: a request without credentials
// may go to a host a label names, but a label never adds a user and
// password, and a rendered URL with control characters or spaces is refused.
func TestHostileLabelsInAnUncredentialedHost(t *testing.T) {
	tests := []struct {
		x, wantErr string
	}{
		{"selfheal:pw@evil.example", `webhook: url: "http://selfheal:xxxxx@evil.example/hook": a label may not add a user and password to the URL`},
		{"evil.example/\nHost: x", `webhook: url: parse "http://evil.example/\nHost: x/hook": net/url: invalid control character in URL`},
		{"evil.example\x00", `webhook: url: parse "http://evil.example\x00/hook": net/url: invalid control character in URL`},
	}
	for _, tc := range tests {
		t.Run(tc.x, func(t *testing.T) {
			a := newAction(t, func(p *Params) { p.URL = actions.MustTemplate("http://{{ .Labels.x }}/hook") })
			_, err := a.Plan(context.Background(), hostile(tc.x))
			require.EqualError(t, err, tc.wantErr)
			_, err = a.Run(context.Background(), hostile(tc.x))
			require.EqualError(t, err, tc.wantErr)
			require.False(t, actions.IsRetryable(err))
		})
	}
}
