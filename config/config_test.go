package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

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
		{"no auth", "receiver: {}\n", []string{"c.yml:1:11: receiver: set exactly one of bearer_token/bearer_token_file, basic_auth, or insecure: true (got 0)"}},
		{"two auth methods", "receiver: {insecure: true, bearer_token: x}\n", []string{"(got 2)"}},
		{"breaker without window", "receiver: {insecure: true}\nlimits:\n  breaker: {max_failures: 5}\n", []string{`c.yml:3:12: limits.breaker.window: required: the span max_failures and max_runs count in, like window: 10m`}},
		{"breaker that never opens", "receiver: {insecure: true}\nlimits:\n  breaker: {window: 10m}\n", []string{`c.yml:3:12: limits.breaker: set max_failures, max_runs or both: a breaker with neither never opens`}},
		{"breaker typo", "receiver: {insecure: true}\nlimits:\n  breaker: {max_fails: 5, window: 10m}\n", []string{`c.yml:3:13: limits.breaker: unknown field "max_fails"`}},
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

func TestErrorsNeverShowURLPasswords(t *testing.T) {
	_, err := Parse("c.yml", []byte(`receiver: {insecure: true}
alertmanager: {url: "ftp://selfheal:am-PASSWORD@am.example"}
jenkins:
  default: {url: "ftp://bot:jenkins-PASSWORD@jenkins.example", user: bot, api_token: t}
`))
	require.ErrorContains(t, err, `alertmanager.url: want an http(s) URL like http://alertmanager:9093, got "ftp://selfheal:<secret>@am.example"`)
	require.ErrorContains(t, err, `jenkins.default.url: want an http(s) URL, got "ftp://bot:<secret>@jenkins.example"`)
	require.NotContains(t, err.Error(), "PASSWORD")
}

// TestHTTPConfigIsStrict: Prometheus' HTTP client config decodes itself
// with a v2-style UnmarshalYAML that ignores unknown keys; here an unknown
// key is an error at its position, at any depth, and so is what its own
// checks (Validate) refuse.
func TestHTTPConfigIsStrict(t *testing.T) {
	for _, c := range []struct{ name, httpConfig, want string }{
		{"unknown key", "{bogus_key: 1}", `c.yml:3:17: alertmanager.http_config: unknown field "bogus_key"`},
		{"unknown key in tls_config", "\n    tls_config:\n      insecure_skip_verfy: true",
			`c.yml:5:7: alertmanager.http_config.tls_config: unknown field "insecure_skip_verfy"`},
		{"unknown key in a header", "{http_headers: {X-Scope-OrgID: {valuez: [a]}}}",
			`c.yml:3:48: alertmanager.http_config.http_headers.X-Scope-OrgID: unknown field "valuez"`},
		{"unknown key in basic_auth", "{basic_auth: {username: u, pasword: p}}",
			`c.yml:3:43: alertmanager.http_config.basic_auth: unknown field "pasword"`},
		{"wrong type", "{follow_redirects: maybe}", "c.yml:3:35: alertmanager.http_config.follow_redirects: cannot unmarshal !!str `maybe` into bool"},
		{"key given twice", "{proxy_url: 'http://p:3128', proxy_url: 'http://q:3128'}", `c.yml:3:45: alertmanager.http_config: field "proxy_url" given twice`},
		{"its own checks", "{bearer_token: a, bearer_token_file: b}",
			"c.yml:3:16: alertmanager.http_config: at most one of bearer_token & bearer_token_file must be configured"},
		{"checks of a nested part", "{tls_config: {ca: x, ca_file: y}}",
			"c.yml:3:29: alertmanager.http_config.tls_config: at most one of ca, ca_file & ca_ref must be configured"},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := "receiver: {insecure: true}\nalertmanager:\n  http_config: " + c.httpConfig + "\n  url: http://am:9093\n"
			_, err := Parse("c.yml", []byte(src))
			require.EqualError(t, err, c.want, src)
		})
	}
}

// TestHTTPConfigKeepsWhatItKnows: strictness refuses nothing Prometheus'
// HTTP client config accepts, and its defaults still apply.
func TestHTTPConfigKeepsWhatItKnows(t *testing.T) {
	c, err := Parse("c.yml", []byte(`receiver: {insecure: true}
alertmanager:
  url: http://am:9093
  http_config:
    authorization: {type: Bearer, credentials: tok}
    tls_config: {insecure_skip_verify: true, min_version: TLS12, server_name: am}
    proxy_url: http://proxy:3128
    no_proxy: localhost
    proxy_connect_header: {Proxy-Token: [s]}
    http_headers:
      X-Scope-OrgID: {values: [tenant-1]}
`))
	require.NoError(t, err)
	h := c.Alertmanager.HTTPConfig
	require.Equal(t, "tok", string(h.Authorization.Credentials))
	require.True(t, h.TLSConfig.InsecureSkipVerify)
	require.Equal(t, "am", h.TLSConfig.ServerName)
	require.Equal(t, "http://proxy:3128", h.ProxyURL.String())
	require.Equal(t, []string{"tenant-1"}, h.HTTPHeaders.Headers["X-Scope-OrgID"].Values)
	require.True(t, h.FollowRedirects, "Prometheus' default")
	require.True(t, h.EnableHTTP2, "Prometheus' default")
}

// TestParseReportsEveryErrorInOrder: errors of decoding and of checking,
// in different sections, are all reported, each at its position, in file
// order; a value that could not be decoded adds no second error about the
// section it is in.
func TestParseReportsEveryErrorInOrder(t *testing.T) {
	_, err := Parse("c.yml", []byte(`receiver:
  insecure: true
  bearer_tokn: x
jenkins:
  default: {url: "jenkins:8080", user: bot, api_token: t}
  other: {url: "https://j.example", user: bot, api_token: maybe, insecure_skip_verify: maybe}
engine:
  workers: 0
`))
	require.EqualError(t, err, `c.yml:3:3: receiver: unknown field "bearer_tokn"
c.yml:5:18: jenkins.default.url: want an http(s) URL, got "jenkins:8080"
c.yml:6:88: jenkins.other.insecure_skip_verify: cannot unmarshal !!str `+"`maybe`"+` into bool
c.yml:8:12: engine.workers: must be greater than 0, got 0`)

	_, err = Parse("c.yml", []byte("receiver: {insecure: maybe}\n"))
	require.EqualError(t, err, "c.yml:1:22: receiver.insecure: cannot unmarshal !!str `maybe` into bool",
		"no second error saying receiver has no auth method")

	_, err = Parse("c.yml", []byte("receiver: {insecure: true, inbox_size: 0, bogus: 1}\n"))
	require.EqualError(t, err, "c.yml:1:40: receiver.inbox_size: must be greater than 0, got 0\n"+
		`c.yml:1:43: receiver: unknown field "bogus"`, "an unknown key hides no error of a value next to it")
}

// TestRetentionFloor: a retention shorter than Alertmanager re-delivers
// an alert within would forget the episode and run its playbook again.
func TestRetentionFloor(t *testing.T) {
	for _, c := range []struct {
		retention string
		want      time.Duration
		err       string
	}{
		{"0s", 0, "c.yml:2:22: storage.retention: 0s is below the 24h floor: a record must outlive Alertmanager's repeat_interval and its retries, or a re-delivered alert runs its playbook again"},
		{"1h", 0, "c.yml:2:22: storage.retention: 1h is below the 24h floor: a record must outlive Alertmanager's repeat_interval and its retries, or a re-delivered alert runs its playbook again"},
		{"23h59m", 0, "c.yml:2:22: storage.retention: 23h59m is below the 24h floor: a record must outlive Alertmanager's repeat_interval and its retries, or a re-delivered alert runs its playbook again"},
		{"24h", 24 * time.Hour, ""},
		{"3d", 72 * time.Hour, ""},
	} {
		t.Run(c.retention, func(t *testing.T) {
			cfg, err := Parse("c.yml", []byte("receiver: {insecure: true}\nstorage: {retention: "+c.retention+"}\n"))
			if c.err != "" {
				require.EqualError(t, err, c.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, time.Duration(cfg.Storage.Retention))
		})
	}
	cfg, err := Parse("c.yml", []byte("receiver: {insecure: true}\n"))
	require.NoError(t, err)
	require.Equal(t, 7*24*time.Hour, time.Duration(cfg.Storage.Retention), "the default")
}

// TestDecodeErrorsNeverShowURLPasswords: the decoder's own messages may
// quote the value they refuse; a URL's password in it is masked too.
func TestDecodeErrorsNeverShowURLPasswords(t *testing.T) {
	_, err := Parse("c.yml", []byte(`receiver: {insecure: true}
alertmanager:
  url: http://am:9093
  http_config: {proxy_url: "http://u:proxy-PASSWORD@proxy:port"}
`))
	require.EqualError(t, err, `c.yml:4:28: alertmanager.http_config.proxy_url: parse "http://u:<secret>@proxy:port": invalid port ":port" after host`)
}

// TestAlertmanagerReconcile: urls lists the members of an HA pair; with
// only url, reconciliation asks url; the interval defaults to 1m.
func TestAlertmanagerReconcile(t *testing.T) {
	for _, c := range []struct {
		name, section string
		url           string
		urls          []string
		interval      time.Duration
	}{
		{"url alone", "{url: http://am:9093}", "http://am:9093", []string{"http://am:9093"}, time.Minute},
		{"urls alone", "{urls: [http://am-0:9093, https://am-1:9093/prefix], reconcile_interval: 30s}",
			"", []string{"http://am-0:9093", "https://am-1:9093/prefix"}, 30 * time.Second},
		{"both", "{url: http://am:9093, urls: [http://am-0:9093, http://am-1:9093]}",
			"http://am:9093", []string{"http://am-0:9093", "http://am-1:9093"}, time.Minute},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse("c.yml", []byte("receiver: {insecure: true}\nalertmanager: "+c.section+"\n"))
			require.NoError(t, err)
			require.Equal(t, c.url, cfg.Alertmanager.URL)
			require.Equal(t, c.urls, cfg.Alertmanager.URLs)
			require.Equal(t, c.interval, time.Duration(cfg.Alertmanager.ReconcileInterval))
		})
	}
}

func TestAlertmanagerReconcileErrors(t *testing.T) {
	for _, c := range []struct{ name, section, want string }{
		{"neither url nor urls", "{http_config: {}}",
			"c.yml:2:15: alertmanager: set url, urls or both, like url: http://alertmanager:9093"},
		{"empty urls", "{urls: []}",
			"c.yml:2:15: alertmanager: set url, urls or both, like url: http://alertmanager:9093"},
		{"not http", "{urls: [http://am-0:9093, 'am-1:9093', ftp://am-2]}",
			`c.yml:2:41: alertmanager.urls[1]: want an http(s) URL like http://alertmanager:9093, got "am-1:9093"` + "\n" +
				`c.yml:2:54: alertmanager.urls[2]: want an http(s) URL like http://alertmanager:9093, got "ftp://am-2"`},
		{"listed twice", "{urls: [http://am-0:9093, http://am-1:9093, http://am-0:9093]}",
			`c.yml:2:59: alertmanager.urls[2]: "http://am-0:9093" is urls[0] already: list each Alertmanager once`},
		{"a list item that is not a string", "{urls: [{host: am-0}, {host: am-1}]}",
			"c.yml:2:23: alertmanager.urls[0]: cannot unmarshal !!map into string\n" +
				"c.yml:2:37: alertmanager.urls[1]: cannot unmarshal !!map into string"},
		{"urls not a list", "{urls: http://am-0:9093}",
			`c.yml:2:22: alertmanager.urls: expected a list, got "http://am-0:9093"`},
		{"zero interval", "{url: http://am:9093, reconcile_interval: 0s}",
			"c.yml:2:57: alertmanager.reconcile_interval: must be greater than 0, got 0s"},
		{"bad interval", "{url: http://am:9093, reconcile_interval: often}",
			`c.yml:2:57: alertmanager.reconcile_interval: not a valid duration string: "often"`},
		{"negative interval", "{url: http://am:9093, reconcile_interval: -1m}",
			`c.yml:2:57: alertmanager.reconcile_interval: not a valid duration string: "-1m"`},
		{"unknown key", "{urls: [http://am:9093], reconcile_intervall: 1m}",
			`c.yml:2:40: alertmanager: unknown field "reconcile_intervall"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("c.yml", []byte("receiver: {insecure: true}\nalertmanager: "+c.section+"\n"))
			require.EqualError(t, err, c.want)
		})
	}
}

// TestReconcileURLErrorsNeverShowPasswords: a password in any of urls is
// masked in every message about it.
func TestReconcileURLErrorsNeverShowPasswords(t *testing.T) {
	_, err := Parse("c.yml", []byte(`receiver: {insecure: true}
alertmanager:
  urls: ["ftp://selfheal:am-PASSWORD@am-0.example", "http://selfheal:am-PASSWORD@am-1.example", "http://selfheal:am-PASSWORD@am-1.example"]
`))
	require.EqualError(t, err, `c.yml:3:10: alertmanager.urls[0]: want an http(s) URL like http://alertmanager:9093, got "ftp://selfheal:<secret>@am-0.example"`+"\n"+
		`c.yml:3:97: alertmanager.urls[2]: "http://selfheal:<secret>@am-1.example" is urls[1] already: list each Alertmanager once`)
	require.NotContains(t, err.Error(), "PASSWORD")
}
