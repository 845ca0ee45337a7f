package redact

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestString(t *testing.T) {
	basic := base64.StdEncoding.EncodeToString([]byte("bot:tok-3f9c1a"))
	tests := []struct {
		name   string
		values []string
		in     string
		want   string
	}{
		{"nothing secret", nil, "POST https://chat.example/hook?instance=db-1: status 500", "POST https://chat.example/hook?instance=db-1: status 500"},
		{"known value", []string{"hunter2-pw"}, "login failed for hunter2-pw", "login failed for <secret>"},
		{"known value, escaped forms", []string{"a b/c&d"}, "q=a+b%2Fc%26d p=a%20b%2Fc&d", "q=<secret> p=<secret>"},
		{"known value, quoted", []string{`pa"ss`}, `"pa\"ss"`, `"<secret>"`},
		{"short values are left to the shapes", []string{"pw"}, "pwd is /tmp", "pwd is /tmp"},
		{"basic auth pair", BasicAuth("bot", "tok-3f9c1a"), "echo: " + basic, "echo: <secret>"},
		{"url userinfo", nil, `got "ftp://selfheal:am-pass@am.example:9093/x"`, `got "ftp://selfheal:<secret>@am.example:9093/x"`},
		{"url userinfo already masked by url.Redacted", nil, "http://u:xxxxx@h/", "http://u:xxxxx@h/"},
		{"url user without password", nil, "http://user@h/", "http://user@h/"},
		{"query params", nil, "https://h/p?token=abc&x=1&api_key=k1&X-Amz-Signature=s1&auth=a1#f",
			"https://h/p?token=<secret>&x=1&api_key=<secret>&X-Amz-Signature=<secret>&auth=<secret>#f"},
		{"query param password", nil, "/login?user=a&password=p1", "/login?user=a&password=<secret>"},
		{"authorization header", nil, "Authorization: Basic dXNlcjpwYXNz\r\nX-Other: 1", "Authorization: Basic <secret>\r\nX-Other: 1"},
		{"authorization without a scheme", nil, "authorization=abcdef12", "authorization=<secret>"},
		{"secret-named header lines", nil, "X-Signature: s1\nX-Api-Key: k1\nX-Auth: a1\nX-Playbook: p", "X-Signature: <secret>\nX-Api-Key: <secret>\nX-Auth: <secret>\nX-Playbook: p"},
		{"a path ending in a secret name is not a header", nil, "bearer_token_file: open /etc/selfheal/chat-token: no such file or directory",
			"bearer_token_file: open /etc/selfheal/chat-token: no such file or directory"},
		{"header line after a quote", nil, `body "X-Auth: a1"`, `body "X-Auth: <secret>`},
		{"cookie", nil, "Cookie: JSESSIONID=abc; theme=dark", "Cookie: <secret>"},
		{"bearer token in prose", nil, "bad header Bearer eyJhbGciOi.J9x", "bad header Bearer <secret>"},
		{"bearer in prose without a token", nil, "a Bearer authentication failure", "a Bearer authentication failure"},
		{"basic in prose", nil, "Basic authentication required", "Basic authentication required"},
		{"basic credentials anywhere", nil, "got Basic dXNlcjpwYXNz", "got Basic <secret>"},
		{"env assignments", nil, "FOO_PASSWORD=p1 DB_TOKEN=t1 HOST=h API_KEY=k", "FOO_PASSWORD=<secret> DB_TOKEN=<secret> HOST=h API_KEY=<secret>"},
		{"already redacted stays so", nil, "http://u:<secret>@h/?token=<secret> Authorization: Bearer <secret>", "http://u:<secret>@h/?token=<secret> Authorization: Bearer <secret>"},
		{"prose about a parameter name", nil, "user and api_token: both must be set", "user and api_token: both must be set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, New(tt.values...).String(tt.in))
		})
	}
}

func TestNilRedactorMasksShapes(t *testing.T) {
	var r *Redactor
	require.Equal(t, "http://u:<secret>@h", r.String("http://u:p@h"))
	require.Equal(t, "x <secret>", r.With("s3cr3t!").String("x s3cr3t!"))
}

func TestName(t *testing.T) {
	for name, want := range map[string]bool{
		"Authorization": true, "Proxy-Authorization": true, "X-Auth": true, "X-Auth-Token": true,
		"X-Signature": true, "X-Hub-Signature-256": true, "X-Api-Key": true, "X-Client-Secret": true,
		"X-Password": true, "Cookie": true, "Set-Cookie": true, "FOO_PASSWORD": true, "DB_PASSWD": true,
		"GITHUB_TOKEN": true, "CLIENT_SECRET": true, "SSH_KEY": true, "credentials": true,
		"Content-Type": false, "X-Playbook": false, "HOST": false, "REASON": false, "PATH": false,
	} {
		require.Equal(t, want, Name(name), name)
	}
}

func TestError(t *testing.T) {
	sentinel := errors.New("status 503")
	err := fmt.Errorf("GET http://u:pw@h/?token=t1: %w", sentinel)
	got := New().Error(err)
	require.EqualError(t, got, "GET http://u:<secret>@h/?token=<secret>: status 503")
	require.ErrorIs(t, got, sentinel, "the chain is kept")
	require.Same(t, sentinel, New().Error(sentinel), "an error with nothing to hide is returned as is")
	require.NoError(t, New().Error(nil))
}

func TestHandler(t *testing.T) {
	var buf bytes.Buffer
	u, _ := url.Parse("http://u:pw-1234@h/")
	logger := slog.New(New("known-VALUE").Handler(slog.NewTextHandler(&buf, nil))).With("url", "http://u:pw-5678@h/")
	logger.Info("sent known-VALUE", "err", errors.New("echo known-VALUE"), "stringer", u,
		slog.Group("g", "header", "Authorization: Bearer abc123def"), "n", 3, "files", []string{"?token=t1"})
	out := buf.String()
	for _, s := range []string{"known-VALUE", "pw-1234", "pw-5678", "abc123def", "t1"} {
		require.NotContains(t, out, s)
	}
	require.Contains(t, out, `msg="sent <secret>"`)
	require.Contains(t, out, "n=3")
	require.Contains(t, out, `url=http://u:<secret>@h/`)

	// Wrapping twice keeps one handler that knows both values.
	buf.Reset()
	slog.New(New("other-VALUE").Handler(logger.Handler())).Info("known-VALUE other-VALUE")
	require.Contains(t, buf.String(), `msg="<secret> <secret>"`)
}
