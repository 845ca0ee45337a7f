// Package config owns the daemon's configuration file: its schema, strict
// positioned decoding, defaults, and resolving paths and secret files.
package config

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/alecthomas/units"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/selfheal/selfheal/strictyaml"
)

// Config is the daemon configuration file.
type Config struct {
	Receiver  Receiver  `yaml:"receiver"`
	Playbooks Playbooks `yaml:"playbooks"`
	Engine    Engine    `yaml:"engine"`
	Storage   Storage   `yaml:"storage"`
	// DryRun is global shadow mode: record what would run, run nothing.
	DryRun bool `yaml:"dry_run"`

	// Alertmanager is where silences go (alertmanager.silence).
	Alertmanager *Alertmanager `yaml:"alertmanager"`
	// Jenkins names the Jenkins servers jenkins.build steps use.
	Jenkins map[string]*JenkinsServer `yaml:"jenkins"`

	// Kubernetes is the cluster the kubernetes.* actions act on; absent
	// means those actions are not available.
	Kubernetes *Kubernetes `yaml:"kubernetes"`

	// Limits are the daemon-wide guards.
	Limits Limits `yaml:"limits"`
}

// Limits are the guards over every playbook.
type Limits struct {
	// Breaker, when set, pauses all automation once too many runs failed
	// or ran in its window.
	Breaker *Breaker `yaml:"breaker"`
}

// Breaker is the global circuit breaker: it opens when MaxFailures runs
// failed in Window, or MaxRuns runs were started in Window (each 0 to turn
// it off), and stays open until POST /api/v1/breaker/reset.
type Breaker struct {
	MaxFailures int            `yaml:"max_failures"`
	MaxRuns     int            `yaml:"max_runs"`
	Window      model.Duration `yaml:"window"`
	// OnOpen is a step list, in the playbook format, run once each time
	// the breaker opens (to page someone). It stays a node here: its
	// actions are built, with their positions, once the action registry
	// exists (playbooks.ParseSteps).
	OnOpen *yaml.Node `yaml:"on_open"`
}

// Kubernetes says how to reach the API server.
type Kubernetes struct {
	// Kubeconfig is a kubeconfig file; empty means in-cluster config (the
	// pod's service account).
	Kubeconfig string `yaml:"kubeconfig"`
	// Context picks a context of the kubeconfig; empty means its current one.
	Context string `yaml:"context"`
	// Image holds the selfheal binary; Jobs that selfheal creates run it
	// (prometheus.wal_cleanup in kubernetes mode runs `selfheal
	// wal-quarantine` in a Job that mounts the Prometheus volume).
	Image string `yaml:"image"`
}

// Alertmanager is the Alertmanager API selfheal talks to: for silences
// (alertmanager.silence) and to reconcile the alerts it holds with the
// execution log (package reconcile).
type Alertmanager struct {
	// URL is where silences go.
	URL string `yaml:"url"`
	// URLs are the members of an Alertmanager HA pair (or cluster), each
	// asked for its alerts at every reconciliation. After Load it holds
	// URL alone when the file sets url and not urls.
	URLs []string `yaml:"urls"`
	// ReconcileInterval is how often the alerts are reconciled, after the
	// reconciliation at start. Default 1m.
	ReconcileInterval model.Duration `yaml:"reconcile_interval"`
	// HTTPConfig is Prometheus' HTTP client configuration: TLS, basic
	// auth, authorization, proxy. It applies to every URL.
	HTTPConfig commoncfg.HTTPClientConfig `yaml:"http_config"`
}

// DefaultReconcileInterval is alertmanager.reconcile_interval when the
// file leaves it out.
const DefaultReconcileInterval = time.Minute

// JenkinsServer is one Jenkins, reached with a user and an API token.
type JenkinsServer struct {
	URL                string           `yaml:"url"`
	User               string           `yaml:"user"`
	APIToken           commoncfg.Secret `yaml:"api_token"`
	APITokenFile       string           `yaml:"api_token_file"`
	CAFile             string           `yaml:"ca_file"`
	InsecureSkipVerify bool             `yaml:"insecure_skip_verify"`
	// Timeout bounds each HTTP request to the server.
	Timeout model.Duration `yaml:"timeout"`
}

// Receiver configures the webhook.
type Receiver struct {
	BearerToken     commoncfg.Secret `yaml:"bearer_token"`
	BearerTokenFile string           `yaml:"bearer_token_file"`
	BasicAuth       *BasicAuth       `yaml:"basic_auth"`
	// Insecure must be set explicitly to accept unauthenticated webhooks.
	Insecure     bool             `yaml:"insecure"`
	MaxBodyBytes units.Base2Bytes `yaml:"max_body_bytes"`
	// InboxSize is the most alerts accepted and not yet processed.
	InboxSize int `yaml:"inbox_size"`
}

// BasicAuth is a username and password, the password inline or in a file.
type BasicAuth struct {
	Username     string           `yaml:"username"`
	Password     commoncfg.Secret `yaml:"password"`
	PasswordFile string           `yaml:"password_file"`
}

// Playbooks says where playbooks come from.
type Playbooks struct {
	// Files are globs; relative ones resolve against the config's folder.
	Files []string `yaml:"files"`
	// WatchFiles reloads the files when their folders change on disk
	// (inotify); false leaves SIGHUP and POST /-/reload. Default true.
	WatchFiles bool `yaml:"watch_files"`
	// Kubernetes loads playbooks from labelled ConfigMaps.
	Kubernetes *PlaybooksKubernetes `yaml:"kubernetes"`
}

// PlaybooksKubernetes says which ConfigMaps hold playbooks. The API server
// is the one of the top-level kubernetes section (in-cluster when absent).
type PlaybooksKubernetes struct {
	Enabled bool `yaml:"enabled"`
	// Namespaces to watch; empty means every namespace (which needs a
	// ClusterRole).
	Namespaces []string `yaml:"namespaces"`
	// LabelSelector picks the ConfigMaps, in kubectl's syntax.
	LabelSelector string `yaml:"label_selector"`
}

// Selector returns the parsed label selector (checked at load).
func (k *PlaybooksKubernetes) Selector() labels.Selector {
	sel, err := labels.Parse(k.LabelSelector)
	if err != nil {
		panic("label selector not checked at load: " + err.Error())
	}
	return sel
}

// Engine sizes the engine.
type Engine struct {
	Workers       int            `yaml:"workers"`
	Queue         int            `yaml:"queue"`
	ShutdownGrace model.Duration `yaml:"shutdown_grace"`
}

// Storage configures what is kept on disk.
type Storage struct {
	// Retention is how long finished runs of episodes no longer delivered
	// are kept.
	Retention model.Duration `yaml:"retention"`
}

// Default returns the configuration used for what a file leaves out.
func Default() Config {
	return Config{
		Receiver:  Receiver{MaxBodyBytes: 4 * units.MiB, InboxSize: 10000},
		Playbooks: Playbooks{WatchFiles: true},
		Engine:    Engine{Workers: 4, Queue: 256, ShutdownGrace: model.Duration(30 * time.Second)},
		Storage:   Storage{Retention: model.Duration(7 * 24 * time.Hour)},
	}
}

// Load reads, decodes and checks the file at path, resolves relative paths
// against its folder and reads secret files. All problems are reported
// together, each with its position.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// Parse is Load for content already read; path names it in errors and
// anchors relative paths. The error is nil or an errors.Join of every
// problem, each a *strictyaml.Error at the value it is about, in file
// order; a value that cannot be decoded is reported once, not again by the
// checks of what holds it.
func Parse(path string, data []byte) (*Config, error) {
	p := &problems{file: path}
	doc, err := strictyaml.Parse(path, data)
	if err != nil {
		p.add(err)
		return nil, p.err()
	}
	p.doc = doc
	c := Default()
	p.decoded(strictyaml.Decode(path, "", doc, &c))
	if root := p.nearest(nil); root != nil && root.Kind != yaml.MappingNode {
		return nil, p.err() // nothing was decoded: checking the defaults says nothing
	}
	c.check(p, filepath.Dir(path))
	if err := p.err(); err != nil {
		return nil, err
	}
	return &c, nil
}

// check checks what the schema cannot say, resolves relative paths against
// dir and reads secret files.
func (c *Config) check(p *problems, dir string) {
	if b := c.Limits.Breaker; b != nil && p.clean("limits", "breaker") {
		switch {
		case b.MaxFailures < 0:
			p.at([]string{"limits", "breaker", "max_failures"}, "must be 0 (off) or more, got %d", b.MaxFailures)
		case b.MaxRuns < 0:
			p.at([]string{"limits", "breaker", "max_runs"}, "must be 0 (off) or more, got %d", b.MaxRuns)
		case b.MaxFailures == 0 && b.MaxRuns == 0:
			p.at([]string{"limits", "breaker"}, "set max_failures, max_runs or both: a breaker with neither never opens")
		case b.Window <= 0:
			p.at([]string{"limits", "breaker", "window"}, "required: the span max_failures and max_runs count in, like window: 10m")
		}
	}
	c.Receiver.resolve(p, dir)
	c.checkPlaybooksKubernetes(p)
	c.resolveAlertmanager(p, dir)
	c.resolveJenkins(p, dir)
	if c.Kubernetes != nil {
		c.Kubernetes.Kubeconfig = resolvePath(dir, c.Kubernetes.Kubeconfig)
	}
	for i, g := range c.Playbooks.Files {
		if _, err := filepath.Match(g, ""); err != nil {
			p.at([]string{"playbooks", "files", indexKey(i)}, "bad glob %q: %v", g, err)
		}
		c.Playbooks.Files[i] = resolvePath(dir, g)
	}
	for _, n := range []struct {
		keys []string
		n    int
	}{
		{[]string{"engine", "workers"}, c.Engine.Workers},
		{[]string{"engine", "queue"}, c.Engine.Queue},
		{[]string{"receiver", "inbox_size"}, c.Receiver.InboxSize},
		{[]string{"receiver", "max_body_bytes"}, int(c.Receiver.MaxBodyBytes)},
	} {
		if n.n <= 0 {
			p.at(n.keys, "must be greater than 0, got %d", n.n)
		}
	}
	if r := c.Storage.Retention; time.Duration(r) < MinRetention {
		p.at([]string{"storage", "retention"}, "%s is below the %dh floor: a record must outlive Alertmanager's repeat_interval and its retries, or a re-delivered alert runs its playbook again",
			r, int(MinRetention.Hours()))
	}
}

// MinRetention is the shortest storage.retention accepted. Alertmanager
// re-sends a firing alert every repeat_interval (4h by default, often set
// to a day or more) and retries failed sends, and HA peers send copies; a
// resolved episode forgotten before those stop arriving would look new and
// run its playbook again.
const MinRetention = 24 * time.Hour

func (r *Receiver) resolve(p *problems, dir string) {
	fail := func(keys []string, format string, args ...any) {
		p.at(append([]string{"receiver"}, keys...), format, args...)
	}
	methods := 0
	if r.BearerToken != "" || r.BearerTokenFile != "" {
		methods++
	}
	if r.BasicAuth != nil {
		methods++
	}
	if r.Insecure {
		methods++
	}
	// What a mapping holds together is checked only when it decoded
	// cleanly: a misspelled key is reported already, once.
	whole := p.clean("receiver")
	if methods != 1 && whole {
		fail(nil, "set exactly one of bearer_token/bearer_token_file, basic_auth, or insecure: true (got %d)", methods)
	}
	if r.BearerToken != "" && r.BearerTokenFile != "" && whole {
		fail(nil, "bearer_token and bearer_token_file are mutually exclusive")
	}
	if r.BearerTokenFile != "" {
		s, err := readSecret(resolvePath(dir, r.BearerTokenFile))
		if err != nil {
			fail([]string{"bearer_token_file"}, "%v", err)
		}
		r.BearerToken = s
	}
	if b := r.BasicAuth; b != nil {
		whole := p.clean("receiver", "basic_auth")
		if b.Username == "" && whole {
			fail([]string{"basic_auth", "username"}, "must be set")
		}
		if (b.Password == "") == (b.PasswordFile == "") && whole {
			fail([]string{"basic_auth"}, "set exactly one of password and password_file")
		}
		if b.PasswordFile != "" {
			s, err := readSecret(resolvePath(dir, b.PasswordFile))
			if err != nil {
				fail([]string{"basic_auth", "password_file"}, "%v", err)
			}
			b.Password = s
		}
	}
}

// readSecret reads a secret file, trimming the trailing newline editors add.
func readSecret(path string) (commoncfg.Secret, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimRight(string(data), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return commoncfg.Secret(s), nil
}

func resolvePath(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// httpURL reports whether s is an absolute http(s) URL with a host.
func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func (c *Config) resolveAlertmanager(p *problems, dir string) {
	am := c.Alertmanager
	if am == nil {
		return
	}
	const want = "want an http(s) URL like http://alertmanager:9093, got %q"
	switch {
	case am.URL != "" && !httpURL(am.URL):
		p.at([]string{"alertmanager", "url"}, want, am.URL)
	case am.URL == "" && len(am.URLs) == 0 && p.clean("alertmanager"):
		p.at([]string{"alertmanager"}, "set url, urls or both, like url: http://alertmanager:9093")
	}
	seen := make(map[string]int, len(am.URLs))
	for i, u := range am.URLs {
		keys := []string{"alertmanager", "urls", indexKey(i)}
		if !p.clean(keys...) {
			continue // reported by the decoder
		}
		first, dup := seen[u]
		switch {
		case !httpURL(u):
			p.at(keys, want, u)
		case dup:
			p.at(keys, "%q is urls[%d] already: list each Alertmanager once", u, first)
		default:
			seen[u] = i
		}
	}
	// Reconciliation asks url when it is the only one given.
	if len(am.URLs) == 0 && am.URL != "" {
		am.URLs = []string{am.URL}
	}
	if strictyaml.Lookup(p.doc, "alertmanager", "reconcile_interval") == nil {
		am.ReconcileInterval = model.Duration(DefaultReconcileInterval)
	} else if am.ReconcileInterval <= 0 && p.clean("alertmanager", "reconcile_interval") {
		p.at([]string{"alertmanager", "reconcile_interval"}, "must be greater than 0, got %s", am.ReconcileInterval)
	}
	am.HTTPConfig.SetDirectory(dir)
	if err := am.HTTPConfig.Validate(); err != nil {
		p.at([]string{"alertmanager", "http_config"}, "%v", err)
	}
}

func (c *Config) resolveJenkins(p *problems, dir string) {
	names := make([]string, 0, len(c.Jenkins))
	for name := range c.Jenkins {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		j := c.Jenkins[name]
		fail := func(keys []string, format string, args ...any) {
			p.at(append([]string{"jenkins", name}, keys...), format, args...)
		}
		if j == nil {
			fail(nil, "must not be empty")
			continue
		}
		whole := p.clean("jenkins", name)
		if !httpURL(j.URL) && (j.URL != "" || whole) {
			fail([]string{"url"}, "want an http(s) URL, got %q", j.URL)
		}
		if j.User == "" && whole {
			fail([]string{"user"}, "must be set (Jenkins is reached with a user and an API token)")
		}
		if (j.APIToken == "") == (j.APITokenFile == "") && whole {
			fail(nil, "set exactly one of api_token and api_token_file")
		}
		if j.APITokenFile != "" {
			s, err := readSecret(resolvePath(dir, j.APITokenFile))
			if err != nil {
				fail([]string{"api_token_file"}, "%v", err)
			}
			j.APIToken = s
		}
		j.CAFile = resolvePath(dir, j.CAFile)
		if j.Timeout == 0 {
			j.Timeout = model.Duration(30 * time.Second)
		}
	}
}

// checkPlaybooksKubernetes fills in the default label selector and checks
// the selector and namespaces.
func (c *Config) checkPlaybooksKubernetes(p *problems) {
	k := c.Playbooks.Kubernetes
	if k == nil {
		return
	}
	if k.LabelSelector == "" {
		k.LabelSelector = DefaultPlaybookSelector
	}
	if _, err := labels.Parse(k.LabelSelector); err != nil {
		p.at([]string{"playbooks", "kubernetes", "label_selector"}, "%v", err)
	}
	for i, ns := range k.Namespaces {
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			p.at([]string{"playbooks", "kubernetes", "namespaces", indexKey(i)}, "invalid namespace %q: %s", ns, strings.Join(msgs, "; "))
		}
	}
}

// DefaultPlaybookSelector picks the ConfigMaps that hold playbooks.
const DefaultPlaybookSelector = "selfheal.io/playbook=true"
