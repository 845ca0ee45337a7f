// Package promwal owns the "prometheus.wal_cleanup" action and its core:
// getting a Prometheus out of an OOM crash loop during WAL replay by
// quarantining its head — renaming wal/, chunks_head/, wbl/ and
// chunk_snapshot.* into a dated folder on the same filesystem, never
// deleting — after checking that no Prometheus uses the data dir, and
// recording a manifest with the loss window and a restore command.
//
// The core (Inspect, PreviewQuarantine, Quarantine) knows nothing of
// alerts; the action adds templated parameters and, in host mode, stopping
// and starting a systemd unit and waiting for /-/ready. In kubernetes mode
// it pauses the owning prometheus-operator Prometheus, scales the
// StatefulSet to 0, runs the core in a Job that mounts the volume, scales
// back, unpauses and waits for Ready (see RBACRules for the permissions).
// The `selfheal wal-quarantine` command runs the core alone; the Job runs
// it.
package promwal

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/selfheal/selfheal/actions"
)

// ID is the action type id of WAL cleanup steps.
const ID = "prometheus.wal_cleanup"

// DefaultMinWALBytes is the default smallest WAL worth quarantining: half
// a default 128 MB segment. A smaller WAL cannot explain an OOM on replay.
const DefaultMinWALBytes = 64 << 20

const summary = "Move (never delete) a crash-looping Prometheus' WAL and head chunks aside, losing the head, after checking it is stopped; host: optionally stop/start its systemd unit; kubernetes: scale its StatefulSet to 0 and run the move in a Job."

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
- name: drop-head-k8s
  action: prometheus.wal_cleanup
  with:
    mode: kubernetes
    namespace: '{{ .Labels.namespace }}'
    statefulset: 'prometheus-{{ .Labels.prometheus_name }}'
    # pvc: default <volumeClaimTemplate>-<statefulset>-0
    data_sub_path: prometheus-db                # prometheus-operator's layout
    quarantine_sub_path: selfheal-quarantine    # same volume, outside the TSDB
    min_wal_bytes: 256MiB
`

// Modes.
const (
	ModeHost       = "host"
	ModeKubernetes = "kubernetes"
)

// Params are the parameters of a prometheus.wal_cleanup step. data_dir,
// quarantine_dir, systemd_unit and ready_url belong to host mode;
// namespace, statefulset, pvc, data_sub_path, quarantine_sub_path,
// pod_gone_timeout and job_timeout to kubernetes mode. A parameter of the
// other mode is an error unless it has a default.
type Params struct {
	// Mode is where Prometheus runs: "host" (a local path) or
	// "kubernetes" (a StatefulSet's volume).
	Mode string `yaml:"mode" doc:"host: the data dir is a local path; kubernetes: it is on a StatefulSet's volume, cleaned by a Job while the StatefulSet is scaled to 0"`
	// DataDir is Prometheus' --storage.tsdb.path.
	DataDir actions.Template `yaml:"data_dir" doc:"host, required; template rendering to the absolute --storage.tsdb.path"`
	// QuarantineDir receives a folder <basename(data_dir)>-<UTC time>/ per
	// cleanup. It must be on the data dir's filesystem and outside it.
	QuarantineDir actions.Template `yaml:"quarantine_dir" doc:"host, required; template rendering to an absolute dir on the data dir's filesystem, outside it; created if missing; gets <basename(data_dir)>-<UTC time>/ per cleanup"`
	// MinWALBytes is the smallest wal/ the step quarantines.
	MinWALBytes Bytes `yaml:"min_wal_bytes" doc:"refuse when wal/ is smaller; bytes as an integer or with a unit (KiB, MiB, GiB; KB, MB, GB are powers of 1024 too)"`
	// SystemdUnit, if set, is stopped before and started after, whatever
	// happened in between.
	SystemdUnit actions.Template `yaml:"systemd_unit" doc:"host; template; systemctl stop before, systemctl start after, even when the cleanup refused or failed"`
	// ReadyURL, if set, is polled with GET after the cleanup until it
	// answers 200.
	ReadyURL actions.Template `yaml:"ready_url" doc:"host; template rendering to an http(s) URL, usually http://host:9090/-/ready, polled after the cleanup until 200"`
	// ReadyTimeout bounds the wait for ReadyURL, or in kubernetes mode for
	// the StatefulSet's pods to be Ready again. The step's timeout must be
	// longer, or it cuts the wait short.
	ReadyTimeout model.Duration `yaml:"ready_timeout" doc:"how long to wait for ready_url (host) or for the StatefulSet's pods to be Ready again (kubernetes); give the step a longer timeout"`

	// Namespace is the StatefulSet's namespace.
	Namespace actions.Template `yaml:"namespace" doc:"kubernetes, required; template rendering to the StatefulSet's namespace"`
	// StatefulSet names the Prometheus StatefulSet; prometheus-operator
	// names it prometheus-<Prometheus name>.
	StatefulSet actions.Template `yaml:"statefulset" doc:"kubernetes, required; template rendering to the Prometheus StatefulSet (prometheus-operator: prometheus-<name>)"`
	// PVC names the claim that holds the TSDB. Empty means the claim of
	// the first ordinal (0 unless spec.ordinals.start says otherwise) of
	// the StatefulSet's only volumeClaimTemplate: <template>-<statefulset>-0
	// (prometheus-operator: prometheus-<name>-db-prometheus-<name>-0). All
	// replicas are scaled down, so any ordinal's claim can be named.
	PVC actions.Template `yaml:"pvc" doc:"kubernetes; template rendering to the PVC holding the TSDB; default <volumeClaimTemplate>-<statefulset>-0 from the StatefulSet's only volumeClaimTemplate"`
	// DataSubPath is the TSDB's path inside the volume. The Job mounts the
	// volume at /prometheus and quarantines /prometheus/<data_sub_path>.
	DataSubPath string `yaml:"data_sub_path" doc:"kubernetes; the TSDB's relative path inside the volume (prometheus-operator mounts sub-path prometheus-db); a TSDB at the volume's root cannot be quarantined on the same volume"`
	// QuarantineSubPath is where the dated quarantine folders go inside the
	// same volume, so that renames stay on one filesystem.
	QuarantineSubPath string `yaml:"quarantine_sub_path" doc:"kubernetes; relative path inside the same volume, outside data_sub_path, that gets a dated folder per cleanup"`
	// PodGoneTimeout bounds the wait for the StatefulSet's pods to be
	// deleted after the scale to 0 (prometheus-operator gives them 600s to
	// stop).
	PodGoneTimeout model.Duration `yaml:"pod_gone_timeout" doc:"kubernetes; how long to wait for the StatefulSet's pods to be gone after scaling to 0"`
	// JobTimeout is the Job's activeDeadlineSeconds: scheduling, volume
	// attach, image pull and the move itself.
	JobTimeout model.Duration `yaml:"job_timeout" doc:"kubernetes; the Job's activeDeadlineSeconds, covering volume attach and image pull"`
}

// DefaultParams returns the parameters with their defaults: host mode, a
// 64MiB minimum WAL, a 10m ready timeout; for kubernetes mode the
// prometheus-operator layout (prometheus-db, selfheal-quarantine) and 10m
// to wait for the pods to go and for the Job.
func DefaultParams() *Params {
	return &Params{
		Mode:              ModeHost,
		MinWALBytes:       DefaultMinWALBytes,
		ReadyTimeout:      model.Duration(10 * time.Minute),
		DataSubPath:       "prometheus-db",
		QuarantineSubPath: "selfheal-quarantine",
		PodGoneTimeout:    model.Duration(10 * time.Minute),
		JobTimeout:        model.Duration(10 * time.Minute),
	}
}

// Validate checks the parameters without rendering them. Every problem is
// reported, separated by "; ".
func (p *Params) Validate() error {
	var probs []string
	switch p.Mode {
	case ModeHost:
		probs = p.validateHost()
	case ModeKubernetes:
		probs = p.validateKube()
	default:
		probs = append(probs, fmt.Sprintf("mode: %q must be host or kubernetes", p.Mode))
	}
	if p.MinWALBytes < 0 {
		probs = append(probs, "min_wal_bytes: must not be negative")
	}
	if p.ReadyTimeout <= 0 {
		probs = append(probs, "ready_timeout: must be greater than 0")
	}
	errs := p.steerErrors()
	if len(probs) > 0 {
		errs = append([]error{fmt.Errorf("%s", strings.Join(probs, "; "))}, errs...)
	}
	return errors.Join(errs...)
}

// steerErrors are the load-time refusals of what a label could steer
// (actions/steer.go), each an *actions.ParamError: a templated data_dir or
// quarantine_dir without a literal absolute folder, a ready_url with a user
// and password and a templated host.
func (p *Params) steerErrors() []error {
	var errs []error
	for _, f := range []struct {
		name string
		t    actions.Template
	}{{"data_dir", p.DataDir}, {"quarantine_dir", p.QuarantineDir}} {
		if err := actions.CheckPathTemplate(f.t); err != nil {
			errs = append(errs, actions.ParamErrorf(f.name, "%v", err))
		}
	}
	if err := actions.CheckCredentialURL(p.ReadyURL, ""); err != nil {
		errs = append(errs, actions.ParamErrorf("ready_url", "%v", err))
	}
	return errs
}

func (p *Params) validateHost() []string {
	var probs []string
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
	for _, f := range []struct {
		name string
		t    actions.Template
	}{{"namespace", p.Namespace}, {"statefulset", p.StatefulSet}, {"pvc", p.PVC}} {
		if !f.t.IsZero() {
			probs = append(probs, f.name+": only for mode kubernetes")
		}
	}
	return probs
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

	// Kube is the cluster kubernetes mode acts on (config: kubernetes);
	// nil makes a kubernetes-mode step fail to load.
	Kube kubernetes.Interface
	// Dynamic reaches prometheus-operator's Prometheus resources on the
	// same cluster; nil makes a kubernetes-mode step fail to load.
	Dynamic dynamic.Interface
	// Image is the image with the selfheal binary that kubernetes-mode
	// Jobs run (config: kubernetes.image); "" makes a kubernetes-mode step
	// fail to load.
	Image string
	// PollInterval is the pause between polls of the API server while
	// kubernetes mode waits; 0 means 1s.
	PollInterval time.Duration
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
	if p.Mode == ModeKubernetes {
		switch {
		case d.Kube == nil || d.Dynamic == nil:
			return nil, fmt.Errorf("%s: mode kubernetes: kubernetes is not configured (set kubernetes in the daemon's config)", ID)
		case d.Image == "":
			return nil, fmt.Errorf("%s: mode kubernetes: kubernetes.image is not set (the Job runs `selfheal wal-quarantine` from it)", ID)
		}
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
	if d.PollInterval <= 0 {
		d.PollInterval = time.Second
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
	var err error
	for _, f := range []struct {
		name string
		t    actions.Template
		dst  *string
	}{
		{"data_dir", a.p.DataDir, &r.dataDir},
		{"quarantine_dir", a.p.QuarantineDir, &r.quarantineDir},
	} {
		if *f.dst, err = actions.RenderPath(f.t, t); err != nil {
			return r, fmt.Errorf("%s: %w", f.name, err)
		}
	}
	for _, f := range []struct {
		name string
		t    actions.Template
		dst  *string
	}{
		{"systemd_unit", a.p.SystemdUnit, &r.unit},
		{"ready_url", a.p.ReadyURL, &r.readyURL},
	} {
		s, err := f.t.Render(t)
		if err != nil {
			return r, fmt.Errorf("%s: %w", f.name, err)
		}
		*f.dst = strings.TrimSpace(s)
	}
	if r.unit != "" && !unitName.MatchString(r.unit) {
		return r, fmt.Errorf("systemd_unit: %q is not a unit name", r.unit)
	}
	if r.readyURL != "" {
		if err := checkReadyURL(a.p.ReadyURL, r.readyURL); err != nil {
			return r, fmt.Errorf("ready_url: %w", err)
		}
	}
	return r, nil
}

// unitName is the syntax of a systemd unit name (systemd.unit(5)): no
// space, no shell syntax, and no leading "-" that systemctl would take as
// an option.
var unitName = regexp.MustCompile(`^[A-Za-z0-9:_.\\@][A-Za-z0-9:_.\\@-]{0,254}$`)

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

// MaxDuration is how long the step may take: in host mode the readiness
// wait plus time to stop and start the unit; in kubernetes mode every wait
// (the StatefulSet's pods gone, the Job, the Job's pods gone, Ready) plus
// time to scale down, to delete a Job that did not finish, to scale back
// and to unpause.
func (p *Params) MaxDuration() time.Duration {
	d := time.Duration(p.ReadyTimeout) + 2*time.Minute
	if p.Mode == ModeKubernetes {
		d += 2*time.Duration(p.PodGoneTimeout) + time.Duration(p.JobTimeout) + jobWaitGrace + scaleDownTimeout + 3*restoreTimeout
	}
	return d
}
