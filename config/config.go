// Package config owns the daemon's configuration file: its schema, strict
// positioned decoding, defaults, and resolving paths and secret files.
package config

import (
	"errors"
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

	// Sections of DESIGN §5 that later steps implement. They are part of
	// the schema so that setting one is a clear error, never ignored.
	Limits *yaml.Node `yaml:"limits"`
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

// Alertmanager is the Alertmanager API selfheal talks to.
type Alertmanager struct {
	URL string `yaml:"url"`
	// HTTPConfig is Prometheus' HTTP client configuration: TLS, basic
	// auth, authorization, proxy.
	HTTPConfig commoncfg.HTTPClientConfig `yaml:"http_config"`
}

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
// anchors relative paths.
func Parse(path string, data []byte) (*Config, error) {
	doc, err := strictyaml.Parse(path, data)
	if err != nil {
		return nil, err
	}
	c := Default()
	if err := strictyaml.Decode(path, "", doc, &c); err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	var errs []error
	for _, s := range []struct {
		name string
		node *yaml.Node
	}{
		{"limits", c.Limits},
	} {
		if s.node != nil {
			errs = append(errs, strictyaml.Errorf(path, s.node, s.name, "not supported yet (planned for a later release)"))
		}
	}
	errs = append(errs, c.Receiver.resolve(path, dir)...)
	errs = append(errs, c.checkPlaybooksKubernetes(path, doc)...)
	errs = append(errs, c.resolveAlertmanager(path, dir)...)
	errs = append(errs, c.resolveJenkins(path, dir)...)
	if c.Kubernetes != nil {
		c.Kubernetes.Kubeconfig = resolvePath(dir, c.Kubernetes.Kubeconfig)
	}
	for i, g := range c.Playbooks.Files {
		if _, err := filepath.Match(g, ""); err != nil {
			errs = append(errs, &strictyaml.Error{File: path, Path: fmt.Sprintf("playbooks.files[%d]", i), Msg: fmt.Sprintf("bad glob %q: %v", g, err)})
		}
		c.Playbooks.Files[i] = resolvePath(dir, g)
	}
	errs = append(errs, positive(path, "engine.workers", c.Engine.Workers), positive(path, "engine.queue", c.Engine.Queue),
		positive(path, "receiver.inbox_size", c.Receiver.InboxSize), positive(path, "receiver.max_body_bytes", int(c.Receiver.MaxBodyBytes)))
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &c, nil
}

func (r *Receiver) resolve(file, dir string) []error {
	var errs []error
	fail := func(path, format string, args ...any) {
		errs = append(errs, &strictyaml.Error{File: file, Path: path, Msg: fmt.Sprintf(format, args...)})
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
	if methods != 1 {
		fail("receiver", "set exactly one of bearer_token/bearer_token_file, basic_auth, or insecure: true (got %d)", methods)
	}
	if r.BearerToken != "" && r.BearerTokenFile != "" {
		fail("receiver", "bearer_token and bearer_token_file are mutually exclusive")
	}
	if r.BearerTokenFile != "" {
		s, err := readSecret(resolvePath(dir, r.BearerTokenFile))
		if err != nil {
			fail("receiver.bearer_token_file", "%v", err)
		}
		r.BearerToken = s
	}
	if b := r.BasicAuth; b != nil {
		if b.Username == "" {
			fail("receiver.basic_auth.username", "must be set")
		}
		if (b.Password == "") == (b.PasswordFile == "") {
			fail("receiver.basic_auth", "set exactly one of password and password_file")
		}
		if b.PasswordFile != "" {
			s, err := readSecret(resolvePath(dir, b.PasswordFile))
			if err != nil {
				fail("receiver.basic_auth.password_file", "%v", err)
			}
			b.Password = s
		}
	}
	return errs
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

func positive(file, path string, n int) error {
	if n > 0 {
		return nil
	}
	return &strictyaml.Error{File: file, Path: path, Msg: fmt.Sprintf("must be greater than 0, got %d", n)}
}

func (c *Config) resolveAlertmanager(file, dir string) []error {
	am := c.Alertmanager
	if am == nil {
		return nil
	}
	var errs []error
	if u, err := url.Parse(am.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, &strictyaml.Error{File: file, Path: "alertmanager.url", Msg: fmt.Sprintf("want an http(s) URL like http://alertmanager:9093, got %q", am.URL)})
	}
	am.HTTPConfig.SetDirectory(dir)
	if err := am.HTTPConfig.Validate(); err != nil {
		errs = append(errs, &strictyaml.Error{File: file, Path: "alertmanager.http_config", Msg: err.Error()})
	}
	return errs
}

func (c *Config) resolveJenkins(file, dir string) []error {
	var errs []error
	names := make([]string, 0, len(c.Jenkins))
	for name := range c.Jenkins {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		j, path := c.Jenkins[name], "jenkins."+name
		fail := func(field, format string, args ...any) {
			errs = append(errs, &strictyaml.Error{File: file, Path: path + field, Msg: fmt.Sprintf(format, args...)})
		}
		if j == nil {
			fail("", "must not be empty")
			continue
		}
		if u, err := url.Parse(j.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			fail(".url", "want an http(s) URL, got %q", j.URL)
		}
		if j.User == "" {
			fail(".user", "must be set (Jenkins is reached with a user and an API token)")
		}
		if (j.APIToken == "") == (j.APITokenFile == "") {
			fail("", "set exactly one of api_token and api_token_file")
		}
		if j.APITokenFile != "" {
			s, err := readSecret(resolvePath(dir, j.APITokenFile))
			if err != nil {
				fail(".api_token_file", "%v", err)
			}
			j.APIToken = s
		}
		j.CAFile = resolvePath(dir, j.CAFile)
		if j.Timeout == 0 {
			j.Timeout = model.Duration(30 * time.Second)
		}
	}
	return errs
}

// checkPlaybooksKubernetes fills in the default label selector and checks
// the selector and namespaces.
func (c *Config) checkPlaybooksKubernetes(path string, doc *yaml.Node) []error {
	k := c.Playbooks.Kubernetes
	if k == nil {
		return nil
	}
	if k.LabelSelector == "" {
		k.LabelSelector = DefaultPlaybookSelector
	}
	var errs []error
	if _, err := labels.Parse(k.LabelSelector); err != nil {
		errs = append(errs, strictyaml.Errorf(path, strictyaml.Lookup(doc, "playbooks", "kubernetes", "label_selector"), "playbooks.kubernetes.label_selector", "%v", err))
	}
	for i, ns := range k.Namespaces {
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			errs = append(errs, strictyaml.Errorf(path, strictyaml.Lookup(doc, "playbooks", "kubernetes", "namespaces"), fmt.Sprintf("playbooks.kubernetes.namespaces[%d]", i), "invalid namespace %q: %s", ns, strings.Join(msgs, "; ")))
		}
	}
	return errs
}

// DefaultPlaybookSelector picks the ConfigMaps that hold playbooks.
const DefaultPlaybookSelector = "selfheal.io/playbook=true"
