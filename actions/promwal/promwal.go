// Package promwal owns the "prometheus.wal_cleanup" action and its core:
// getting a Prometheus out of an OOM crash loop during WAL replay by
// quarantining its head — renaming wal/, chunks_head/, wbl/ and
// chunk_snapshot.* into a dated folder on the same filesystem, never
// deleting — after checking that no Prometheus uses the data dir, and
// recording a manifest with the loss window and a restore command.
//
// The core (Inspect, PreviewQuarantine, Quarantine) knows nothing of
// alerts; the action adds templated parameters and, in host mode, stopping
// and starting a systemd unit and waiting for /-/ready. The `selfheal
// wal-quarantine` command runs the core alone.
package promwal

import (
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/selfheal/selfheal/actions"
)

// ID is the action type id of WAL cleanup steps.
const ID = "prometheus.wal_cleanup"

// DefaultMinWALBytes is the default smallest WAL worth quarantining: half
// a default 128 MB segment. A smaller WAL cannot explain an OOM on replay.
const DefaultMinWALBytes = 64 << 20

const summary = "Move (never delete) a crash-looping Prometheus' WAL and head chunks aside, losing the head, after checking it is stopped; optionally stop/start its systemd unit."

const example = `- name: drop-head
  action: prometheus.wal_cleanup
  with:
    mode: host
    data_dir: /var/lib/prometheus/metrics2
    quarantine_dir: /var/lib/prometheus/quarantine   # same filesystem, outside data_dir
    min_wal_bytes: 256MiB
    systemd_unit: prometheus.service
    ready_url: 'http://{{ .Labels.instance }}/-/ready'
    ready_timeout: 10m
`

// Modes.
const (
	ModeHost       = "host"
	ModeKubernetes = "kubernetes"
)

// Params are the parameters of a prometheus.wal_cleanup step.
type Params struct {
	// Mode is where Prometheus runs: "host" (a local path).
	Mode string `yaml:"mode" doc:"host: the data dir is a local path (kubernetes: not supported yet)"`
	// DataDir is Prometheus' --storage.tsdb.path.
	DataDir actions.Template `yaml:"data_dir" doc:"required; template rendering to the absolute --storage.tsdb.path"`
	// QuarantineDir receives a folder <basename(data_dir)>-<UTC time>/ per
	// cleanup. It must be on the data dir's filesystem and outside it.
	QuarantineDir actions.Template `yaml:"quarantine_dir" doc:"required; template rendering to an absolute dir on the data dir's filesystem, outside it; created if missing; gets <basename(data_dir)>-<UTC time>/ per cleanup"`
	// MinWALBytes is the smallest wal/ the step quarantines.
	MinWALBytes Bytes `yaml:"min_wal_bytes" doc:"refuse when wal/ is smaller; bytes as an integer or with a unit (KiB, MiB, GiB; KB, MB, GB are powers of 1024 too)"`
	// SystemdUnit, if set, is stopped before and started after, whatever
	// happened in between.
	SystemdUnit actions.Template `yaml:"systemd_unit" doc:"template; systemctl stop before, systemctl start after, even when the cleanup refused or failed"`
	// ReadyURL, if set, is polled with GET after the cleanup until it
	// answers 200.
	ReadyURL actions.Template `yaml:"ready_url" doc:"template rendering to an http(s) URL, usually http://host:9090/-/ready, polled after the cleanup until 200"`
	// ReadyTimeout bounds the wait for ReadyURL. The step's timeout must
	// be longer, or it cuts the wait short.
	ReadyTimeout model.Duration `yaml:"ready_timeout" doc:"how long to wait for ready_url; give the step a longer timeout"`
}

// DefaultParams returns the parameters with their defaults: host mode, a
// 64MiB minimum WAL, a 10m ready timeout.
func DefaultParams() *Params {
	return &Params{
		Mode:         ModeHost,
		MinWALBytes:  DefaultMinWALBytes,
		ReadyTimeout: model.Duration(10 * time.Minute),
	}
}

// Validate checks the parameters without rendering them. Every problem is
// reported, separated by "; ".
func (p *Params) Validate() error {
	var probs []string
	switch p.Mode {
	case ModeHost:
	case ModeKubernetes:
		probs = append(probs, "mode: kubernetes is not supported yet")
	default:
		probs = append(probs, fmt.Sprintf("mode: %q must be host", p.Mode))
	}
	for _, f := range []struct {
		name string
		t    actions.Template
	}{{"data_dir", p.DataDir}, {"quarantine_dir", p.QuarantineDir}} {
		switch src := f.t.String(); {
		case src == "":
			probs = append(probs, f.name+": must be set")
		case !strings.Contains(src, "{{") && !filepath.IsAbs(src):
			probs = append(probs, fmt.Sprintf("%s: %q must be an absolute path", f.name, src))
		}
	}
	if src := p.ReadyURL.String(); src != "" && !strings.Contains(src, "{{") {
		if err := checkURL(src); err != nil {
			probs = append(probs, "ready_url: "+err.Error())
		}
	}
	if p.MinWALBytes < 0 {
		probs = append(probs, "min_wal_bytes: must not be negative")
	}
	if p.ReadyTimeout <= 0 {
		probs = append(probs, "ready_timeout: must be greater than 0")
	}
	if len(probs) > 0 {
		return fmt.Errorf("%s", strings.Join(probs, "; "))
	}
	return nil
}

// Deps are what the action depends on. A zero field gets a default.
type Deps struct {
	// Logger receives the action's logs; nil discards them.
	Logger *slog.Logger
	// HTTPClient polls ready_url; nil means &http.Client{}. Each request
	// gets its own short timeout.
	HTTPClient *http.Client
	// Systemctl is the systemctl executable; "" means "systemctl" on PATH.
	Systemctl string
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// ReadyInterval is the pause between ready_url polls; 0 means 1s.
	ReadyInterval time.Duration
}

// Spec returns the prometheus.wal_cleanup action type bound to d.
func Spec(d Deps) actions.Spec {
	return actions.Typed(ID, summary, example, DefaultParams, func(p *Params) (actions.Action, error) {
		return New(p, d)
	})
}

// Action is a configured WAL cleanup step. It is safe for concurrent use;
// two runs on one data dir exclude each other through the TSDB lock.
type Action struct {
	p Params
	d Deps
}

// New builds the action from p, which it validates.
func New(p *Params, d Deps) (*Action, error) {
	if p == nil {
		return nil, fmt.Errorf("%s: nil params", ID)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	d.Logger = d.Logger.With("component", "actions/promwal")
	if d.HTTPClient == nil {
		d.HTTPClient = &http.Client{}
	}
	if d.Systemctl == "" {
		d.Systemctl = "systemctl"
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.ReadyInterval <= 0 {
		d.ReadyInterval = time.Second
	}
	return &Action{p: *p, d: d}, nil
}

// rendered are the parameters rendered for one target.
type rendered struct {
	dataDir, quarantineDir, unit, readyURL string
}

// render renders the templated parameters for t and checks the results.
func (a *Action) render(t actions.Target) (rendered, error) {
	var r rendered
	for _, f := range []struct {
		name string
		t    actions.Template
		dst  *string
	}{
		{"data_dir", a.p.DataDir, &r.dataDir},
		{"quarantine_dir", a.p.QuarantineDir, &r.quarantineDir},
		{"systemd_unit", a.p.SystemdUnit, &r.unit},
		{"ready_url", a.p.ReadyURL, &r.readyURL},
	} {
		s, err := f.t.Render(t)
		if err != nil {
			return r, fmt.Errorf("%s: %w", f.name, err)
		}
		*f.dst = strings.TrimSpace(s)
	}
	switch {
	case !filepath.IsAbs(r.dataDir):
		return r, fmt.Errorf("data_dir: %q is not an absolute path", r.dataDir)
	case !filepath.IsAbs(r.quarantineDir):
		return r, fmt.Errorf("quarantine_dir: %q is not an absolute path", r.quarantineDir)
	case strings.HasPrefix(r.unit, "-") || strings.ContainsAny(r.unit, " \t\n"):
		return r, fmt.Errorf("systemd_unit: %q is not a unit name", r.unit)
	}
	if r.readyURL != "" {
		if err := checkURL(r.readyURL); err != nil {
			return r, fmt.Errorf("ready_url: %w", err)
		}
	}
	return r, nil
}

// options are the core options for r.
func (a *Action) options(r rendered, t actions.Target) QuarantineOptions {
	ev := []string{fmt.Sprintf("selfheal playbook %q step %q run %s", t.Playbook, t.Step, t.Run)}
	if name := t.Labels["alertname"]; name != "" {
		ev = append(ev, fmt.Sprintf("alert %s (%s) episode %s, labels %s", name, t.Status, t.Episode, labelString(t.Labels)))
	}
	return QuarantineOptions{
		DataDir:       r.dataDir,
		QuarantineDir: r.quarantineDir,
		MinWALBytes:   int64(a.p.MinWALBytes),
		Evidence:      ev,
		Now:           a.d.Now,
	}
}

// labelString renders labels as {a="b", …} in Prometheus' own order.
func labelString(l map[string]string) string {
	ls := make(model.LabelSet, len(l))
	for k, v := range l {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls.String()
}

// MaxDuration is how long the step may take: the readiness wait plus time
// to stop and start the unit.
func (p *Params) MaxDuration() time.Duration {
	return time.Duration(p.ReadyTimeout) + 2*time.Minute
}
