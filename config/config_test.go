package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLoadResolvesPathsAndSecretFiles(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "token"), []byte("tok\n"), 0o600))
	path := filepath.Join(dir, "selfheal.yml")
	require.NoError(t, os.WriteFile(path, []byte(`receiver:
  bearer_token_file: token
  max_body_bytes: 1MiB
playbooks:
  files: [playbooks/*.yaml, /abs/*.yml]
engine: {workers: 2}
`), 0o600))
	c, err := Load(path)
	require.NoError(t, err)
	require.Equal(t, "tok", string(c.Receiver.BearerToken))
	require.EqualValues(t, 1<<20, c.Receiver.MaxBodyBytes)
	require.Equal(t, []string{filepath.Join(dir, "playbooks/*.yaml"), "/abs/*.yml"}, c.Playbooks.Files)
	require.Equal(t, 2, c.Engine.Workers)
	require.Equal(t, 256, c.Engine.Queue, "defaults fill what the file leaves out")
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown fields everywhere, all reported", "receiver:\n  insecure: true\n  bearer_tokn: x\nengnie: {}\n", []string{
			`c.yml:3:3: receiver: unknown field "bearer_tokn"`,
			`c.yml:4:1: unknown field "engnie"`,
		}},
		{"no auth", "receiver: {}\n", []string{"c.yml: receiver: set exactly one of bearer_token/bearer_token_file, basic_auth, or insecure: true (got 0)"}},
		{"two auth methods", "receiver: {insecure: true, bearer_token: x}\n", []string{"(got 2)"}},
		{"later sections", "receiver: {insecure: true}\nlimits:\n  breaker: {max_failures: 5}\n", []string{`c.yml:3:3: limits: not supported yet`}},
		{"jenkins server", "receiver: {insecure: true}\njenkins:\n  default: {url: ftp://x, tokn: y}\n", []string{
			`c.yml:3:27: jenkins.default: unknown field "tokn"`}},
		{"jenkins fields", "receiver: {insecure: true}\njenkins:\n  default: {url: ftp://x}\n", []string{
			`jenkins.default.url: want an http(s) URL, got "ftp://x"`, "jenkins.default.user: must be set", "set exactly one of api_token and api_token_file"}},
		{"alertmanager url", "receiver: {insecure: true}\nalertmanager: {url: am:9093}\n", []string{`alertmanager.url: want an http(s) URL like http://alertmanager:9093, got "am:9093"`}},
		{"bad size", "receiver: {insecure: true, max_body_bytes: lots}\n", []string{`c.yml:1:44: receiver.max_body_bytes: units: invalid lots`}},
		{"zero workers", "receiver: {insecure: true}\nengine: {workers: 0}\n", []string{"engine.workers: must be greater than 0, got 0"}},
		{"syntax", "receiver: [\n", []string{"c.yml:1:11: syntax error: sequence end token ']' not found"}},
		{"basic auth without password", "receiver:\n  basic_auth: {username: u}\n", []string{"set exactly one of password and password_file"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("c.yml", []byte(c.yaml))
			require.Error(t, err)
			for _, w := range c.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestJenkinsAndAlertmanager(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "jt"), []byte("jenkins-secret\n"), 0o600))
	path := filepath.Join(dir, "c.yml")
	require.NoError(t, os.WriteFile(path, []byte(`receiver: {insecure: true}
alertmanager:
  url: http://127.0.0.1:9093
  http_config: {basic_auth: {username: u, password: p}}
jenkins:
  default: {url: "https://jenkins.example", user: selfheal, api_token_file: jt}
`), 0o600))
	c, err := Load(path)
	require.NoError(t, err)
	require.Equal(t, "jenkins-secret", string(c.Jenkins["default"].APIToken))
	require.Equal(t, "selfheal", c.Jenkins["default"].User)
	require.Equal(t, "http://127.0.0.1:9093", c.Alertmanager.URL)
	require.Equal(t, "u", c.Alertmanager.HTTPConfig.BasicAuth.Username)
}

func TestSecretsDoNotPrint(t *testing.T) {
	c, err := Parse("c.yml", []byte("receiver: {bearer_token: hunter2}\n"))
	require.NoError(t, err)
	out, err := c.Receiver.BearerToken.MarshalJSON()
	require.NoError(t, err)
	require.Equal(t, `"\u003csecret\u003e"`, string(out))
}
