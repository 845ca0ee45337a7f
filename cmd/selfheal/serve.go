package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"k8s.io/klog/v2"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/alert"
	"github.com/selfheal/selfheal/cluster"
	"github.com/selfheal/selfheal/config"
	"github.com/selfheal/selfheal/engine"
	"github.com/selfheal/selfheal/ha"
	"github.com/selfheal/selfheal/kubeevents"
	"github.com/selfheal/selfheal/playbooks"
	"github.com/selfheal/selfheal/playbooks/kube"
	"github.com/selfheal/selfheal/receiver"
	"github.com/selfheal/selfheal/reconcile"
	shweb "github.com/selfheal/selfheal/web"
)

type serveCmd struct {
	logCfg      *promslog.Config
	configFile  string
	storagePath string
	node        string
	webFlags    *web.FlagConfig
	cluster     clusterFlags
}

// clusterFlags are the --cluster.* flags, as Alertmanager's.
type clusterFlags struct {
	listen, advertise, keyFile    string
	peers                         []string
	peerTimeout, gossip, pushPull time.Duration
	settleTimeout, claimTimeout   time.Duration
}

func newServeCmd(app *kingpin.Application, logCfg *promslog.Config) *serveCmd {
	c := &serveCmd{logCfg: logCfg}
	cmd := app.Command("serve", "Run the daemon: receive webhooks and run playbooks.")
	cmd.Flag("config.file", "selfheal configuration file.").Default("selfheal.yml").StringVar(&c.configFile)
	cmd.Flag("storage.path", "Folder for the execution log and the inbox.").Default("data/").StringVar(&c.storagePath)
	hostname, _ := os.Hostname()
	cmd.Flag("cluster.name", "Name of this replica in run records (default: the hostname).").Default(hostname).StringVar(&c.node)
	cf := &c.cluster
	cmd.Flag("cluster.listen-address", "Listen address for the gossip cluster (TCP and UDP). Set to empty string to run alone, without listening.").Default(cluster.DefaultListenAddr).StringVar(&cf.listen)
	cmd.Flag("cluster.advertise-address", "Address the other replicas reach this one at (default: derived from the listen address).").StringVar(&cf.advertise)
	cmd.Flag("cluster.peer", "host:port of a replica to join; repeat for several. A DNS name is resolved to all its addresses (a headless Service). None: a cluster of one.").StringsVar(&cf.peers)
	cmd.Flag("cluster.peer-timeout", "How long a replica that left is waited for before its unfinished runs are taken over.").Default(cluster.DefaultPeerTimeout.String()).DurationVar(&cf.peerTimeout)
	cmd.Flag("cluster.gossip-interval", "Interval between gossip messages.").Default(cluster.DefaultGossipInterval.String()).DurationVar(&cf.gossip)
	cmd.Flag("cluster.pushpull-interval", "Interval between full state exchanges with a random replica.").Default(cluster.DefaultPushPullInterval.String()).DurationVar(&cf.pushPull)
	cmd.Flag("cluster.settle-timeout", "How long to wait for the first full state exchange before becoming ready anyway.").Default(cluster.DefaultSettleTimeout.String()).DurationVar(&cf.settleTimeout)
	cmd.Flag("cluster.claim-timeout", "How long a claim waits for the other replicas' answers before going on without them.").Default(cluster.DefaultAskTimeout.String()).DurationVar(&cf.claimTimeout)
	cmd.Flag("cluster.gossip-key-file", "File holding a 16, 24 or 32 byte key, in base64, that encrypts gossip; the same on every replica.").StringVar(&cf.keyFile)
	c.webFlags = &web.FlagConfig{
		WebListenAddresses: cmd.Flag("web.listen-address", "Address to listen on for the webhook, API and metrics.").Default(":9595").Strings(),
		WebSystemdSocket:   new(bool),
		WebConfigFile:      cmd.Flag("web.config.file", "Path to an exporter-toolkit web config file enabling TLS or basic auth.").Default("").String(),
	}
	return c
}

// run follows the start order of the house style: config, store,
// playbooks, workers, ready, serve.
func (c *serveCmd) run() int {
	logger := promslog.New(c.logCfg)
	if err := c.serve(logger); err != nil {
		logger.Error("selfheal stopped", "err", err)
		return 1
	}
	return 0
}

func (c *serveCmd) serve(logger *slog.Logger) error {
	logger.Info("starting selfheal", "version", version.Info(), "build_context", version.BuildContext())
	cfg, err := config.Load(c.configFile)
	if err != nil {
		return fmt.Errorf("load config %s:\n%w", c.configFile, err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), versioncollector.NewCollector("selfheal"))

	// The engine is made below, and observes alerts only once it runs.
	var eng *engine.Engine
	store, err := ha.Open(c.storagePath, ha.Options{Node: c.node, KeepAlert: func(a alert.Alert) bool { return eng.Playbooks().Wants(a) }})
	if err != nil {
		return err
	}
	defer store.Close()
	peer, err := c.cluster.start(c.node, store, logger, reg)
	if err != nil {
		return err
	}
	var members engine.Members
	if peer != nil {
		store.SetGossip(peer)
		members = peer
		defer func() {
			if err := peer.Leave(5 * time.Second); err != nil {
				logger.Warn("leave the cluster", "err", err)
			}
		}()
	}
	inbox, err := receiver.OpenInbox(c.storagePath, cfg.Receiver.InboxSize)
	if err != nil {
		return err
	}
	defer inbox.Close()
	reg.MustRegister(inbox.DepthCollector())

	registry, err := newRegistry(cfg, logger)
	if err != nil {
		return err
	}
	notifier, err := runEvents(cfg, c.node, logger, reg)
	if err != nil {
		return err
	}
	brk, err := breakerFrom(cfg, c.configFile, registry)
	if err != nil {
		return fmt.Errorf("load config %s:\n%w", c.configFile, err)
	}
	eng = engine.New(inbox, store, engine.Options{
		Workers:       cfg.Engine.Workers,
		Queue:         cfg.Engine.Queue,
		DryRun:        cfg.DryRun,
		ShutdownGrace: time.Duration(cfg.Engine.ShutdownGrace),
		Breaker:       brk,
		Cluster:       members,
		Notifier:      notifier,
		Logger:        logger,
		Registerer:    reg,
	})
	catalog := playbooks.NewCatalog(registry, playbooks.CatalogOptions{Logger: logger, Swap: eng.SetPlaybooks})
	reg.MustRegister(catalog)
	files := newFileSource(cfg.Playbooks.Files, catalog, logger)
	if err := files.reload(); err != nil {
		return fmt.Errorf("load playbooks:\n%w", err)
	}
	logger.Info("playbook files loaded", "playbooks", catalog.Set().Len(), "files", cfg.Playbooks.Files)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cms *kube.Watcher
	if k := cfg.Playbooks.Kubernetes; k != nil && k.Enabled {
		if cms, err = startConfigMaps(ctx, cfg, catalog, logger); err != nil {
			return err
		}
	}

	var ready atomic.Bool
	auth := authFrom(cfg.Receiver)
	rcv := receiver.New(inbox, receiver.Options{
		Auth:         auth,
		MaxBodyBytes: int64(cfg.Receiver.MaxBodyBytes),
		MaxAlerts:    inbox.Capacity(),
		Ready:        ready.Load,
		Logger:       logger,
		Registerer:   reg,
	})
	srv := &http.Server{
		Handler: shweb.Handler(shweb.Options{
			Breaker: breaker(cfg.Limits, eng.BreakerState), ResetBreaker: resetBreaker(cfg.Limits, eng.ResetBreaker),
			Webhook: rcv, Auth: auth, Runs: store, Playbooks: eng.Playbooks, Sources: catalog.Statuses,
			Reload: files.reload, Kubernetes: kubeStatus(cms), Ready: func() bool {
				// Not ready while the execution log cannot be written: the
				// receiver still accepts into the inbox, nothing runs.
				// Nor before the cluster settled: the first full state
				// exchange with a replica (DESIGN §7).
				return ready.Load() && eng.StorageError() == nil && (peer == nil || peer.Ready())
			},
			Cluster: clusterStatus(peer, store),
			Node:    c.node, Version: version.Version, Gatherer: reg,
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
	}

	var g run.Group
	g.Add(run.SignalHandler(ctx, os.Interrupt, syscall.SIGTERM))
	g.Add(func() error { files.onSIGHUP(ctx); return nil }, func(error) { cancel() })
	if cfg.Playbooks.WatchFiles && len(cfg.Playbooks.Files) > 0 {
		g.Add(func() error {
			return playbooks.WatchFiles(ctx, cfg.Playbooks.Files, playbooks.WatchOptions{Logger: logger}, func() { _ = files.reload() })
		}, func(error) { cancel() })
	}
	g.Add(func() error { return eng.Run(ctx) }, func(error) { cancel() })
	if am := cfg.Alertmanager; am != nil && len(am.URLs) > 0 {
		hc, err := commoncfg.NewClientFromConfig(am.HTTPConfig, "alertmanager")
		if err != nil {
			return fmt.Errorf("alertmanager.http_config: %w", err)
		}
		rec, err := reconcile.New(inbox, store, reconcile.Options{
			URLs:       am.URLs,
			HTTPClient: hc,
			Interval:   time.Duration(am.ReconcileInterval),
			// Half the inbox: a reconcile never fills it on its own.
			MaxBatch:   max(inbox.Capacity()/2, 1),
			Logger:     logger,
			Registerer: reg,
		})
		if err != nil {
			return err
		}
		g.Add(func() error { return rec.Run(ctx) }, func(error) { cancel() })
	}
	g.Add(func() error { return prune(ctx, store, time.Duration(cfg.Storage.Retention), logger) }, func(error) { cancel() })
	g.Add(func() error {
		ready.Store(true)
		logger.Info("ready", "node", c.node, "storage", c.storagePath)
		if err := web.ListenAndServe(srv, c.webFlags, logger); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}, func(error) {
		ready.Store(false)
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
	})
	err = g.Run()
	if errors.Is(err, run.ErrSignal) {
		logger.Info("stopped", "cause", err.Error())
		return nil
	}
	return err
}

// runEvents is what posts a Kubernetes Event on the objects each run
// touched, when the config has a kubernetes section (the one the actions
// use); nil without one. Only the replica that ends a run posts its Events.
func runEvents(cfg *config.Config, node string, logger *slog.Logger, reg prometheus.Registerer) (engine.Notifier, error) {
	if cfg.Kubernetes == nil {
		return nil, nil
	}
	client, _, err := kubeClients(cfg.Kubernetes)
	if err != nil {
		return nil, err
	}
	return kubeevents.New(client, kubeevents.Options{Instance: node, Logger: logger, Registerer: reg}), nil
}

// fileSource is the config's playbook files as one owner of the catalog.
type fileSource struct {
	files  *playbooks.Files
	logger *slog.Logger
}

func newFileSource(globs []string, catalog *playbooks.Catalog, logger *slog.Logger) *fileSource {
	return &fileSource{files: playbooks.NewFiles(globs, catalog, playbooks.FilesOptions{Logger: logger}), logger: logger}
}

// reload reads every file the globs match and hands them to the catalog
// (playbooks.Files.Reload): changed files are parsed, vanished ones
// removed, broken ones and those of a folder that vanished keep their last
// good version, a glob matching no file is logged at warn level. The error
// lists every file that is not active as it is on disk (for POST
// /-/reload).
func (f *fileSource) reload() error {
	return f.files.Reload()
}

// onSIGHUP reloads the files on every SIGHUP until ctx is done.
func (f *fileSource) onSIGHUP(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			f.logger.Info("SIGHUP: reloading playbook files")
			if err := f.reload(); err != nil {
				f.logger.Error("reload playbook files", "err", err)
			}
		}
	}
}

// startConfigMaps starts watching labelled ConfigMaps and waits (bounded)
// until they are loaded, so alerts are not matched against a partial set.
// Missing permissions are logged as a clear error and shown in
// /api/v1/status; the watcher keeps retrying, so a later grant heals it.
func startConfigMaps(ctx context.Context, cfg *config.Config, catalog *playbooks.Catalog, logger *slog.Logger) (*kube.Watcher, error) {
	k := cfg.Playbooks.Kubernetes
	kc := cfg.Kubernetes
	if kc == nil {
		kc = &config.Kubernetes{}
	}
	client, _, err := kubeClients(kc)
	if err != nil {
		return nil, fmt.Errorf("playbooks.kubernetes: %w", err)
	}
	klog.SetSlogLogger(logger.With("component", "client-go"))
	w := kube.New(client, catalog, kube.Options{Namespaces: k.Namespaces, Selector: k.Selector(), Logger: logger})
	cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
	permErr := w.CheckPermissions(cctx)
	ccancel()
	if permErr != nil {
		logger.Error("playbooks from ConfigMaps may be incomplete", "err", permErr)
	}
	go func() { _ = w.Run(ctx) }()
	if permErr != nil {
		return w, nil // do not hold the start for an informer that cannot list
	}
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	defer scancel()
	start := time.Now()
	if w.WaitForSync(sctx) {
		logger.Info("playbook ConfigMaps loaded", "selector", k.LabelSelector, "namespaces", k.Namespaces, "took", time.Since(start), "playbooks", catalog.Set().Len())
	} else {
		logger.Error("playbook ConfigMaps not listed within 30s; going on, they load when the API server answers", "selector", k.LabelSelector)
	}
	return w, nil
}

// kubeStatus is the watcher's status for /api/v1/status, nil when
// ConfigMaps are not watched.
func kubeStatus(w *kube.Watcher) func() any {
	if w == nil {
		return nil
	}
	return func() any { return w.Status() }
}

// breakerFrom is the engine's breaker for limits.breaker of the config
// file, its on_open steps built through reg; none without it.
func breakerFrom(cfg *config.Config, file string, reg *actions.Registry) (engine.Breaker, error) {
	b := cfg.Limits.Breaker
	if b == nil {
		return engine.Breaker{}, nil
	}
	steps, err := playbooks.ParseSteps(reg, file, "limits.breaker.on_open", b.OnOpen)
	if err != nil {
		return engine.Breaker{}, err
	}
	return engine.Breaker{MaxFailures: b.MaxFailures, MaxRuns: b.MaxRuns, Window: time.Duration(b.Window), OnOpen: steps}, nil
}

// breaker and resetBreaker are the API's view of the breaker: nil without
// limits.breaker, so that the API says none is configured.
func breaker(l config.Limits, f func() (ha.BreakerState, error)) func() (ha.BreakerState, error) {
	if l.Breaker == nil {
		return nil
	}
	return f
}

func resetBreaker(l config.Limits, f func() error) func() error {
	if l.Breaker == nil {
		return nil
	}
	return f
}

func authFrom(r config.Receiver) receiver.Auth {
	a := receiver.Auth{BearerToken: string(r.BearerToken), Insecure: r.Insecure}
	if r.BasicAuth != nil {
		a.Username, a.Password = r.BasicAuth.Username, string(r.BasicAuth.Password)
	}
	return a
}

// prune forgets old episodes and runs once an hour.
func prune(ctx context.Context, store *ha.Log, retention time.Duration, logger *slog.Logger) error {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := store.Prune(time.Now().Add(-retention))
		if err != nil {
			logger.Error("prune execution log", "err", err)
		} else if n > 0 {
			logger.Info("pruned execution log", "runs", n, "retention", retention)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// start joins the cluster the flags describe, with the execution log as
// its state; nil without a listen address: alone.
func (f clusterFlags) start(node string, store *ha.Log, logger *slog.Logger, reg prometheus.Registerer) (*cluster.Peer, error) {
	if f.listen == "" {
		if len(f.peers) > 0 {
			return nil, errors.New("--cluster.peer needs --cluster.listen-address")
		}
		return nil, nil
	}
	var key []byte
	if f.keyFile != "" {
		var err error
		if key, err = readGossipKey(f.keyFile); err != nil {
			return nil, err
		}
	}
	p, err := cluster.Create(cluster.Config{
		Name: node, ListenAddr: f.listen, AdvertiseAddr: f.advertise, Peers: f.peers,
		PeerTimeout: f.peerTimeout, GossipInterval: f.gossip, PushPullInterval: f.pushPull,
		SettleTimeout: f.settleTimeout, AskTimeout: f.claimTimeout, SecretKey: key,
		Logger: logger, Registerer: reg,
	}, store)
	if err != nil {
		return nil, err
	}
	logger.Info("cluster listening", "address", f.listen, "peers", f.peers, "name", node)
	return p, nil
}

// readGossipKey reads a gossip key file: 16, 24 or 32 bytes in base64
// (raw bytes would be ambiguous: many are valid base64 too). The key never
// reaches a log or an error.
func readGossipKey(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--cluster.gossip-key-file: %w", err)
	}
	dec, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(data)))
	switch {
	case err != nil:
		return nil, fmt.Errorf("--cluster.gossip-key-file %s: not base64; make a key with `head -c 32 /dev/urandom | base64`", path)
	case !validKeyLen(len(dec)):
		return nil, fmt.Errorf("--cluster.gossip-key-file %s: want a 16, 24 or 32 byte key in base64 (like `head -c 32 /dev/urandom | base64`), got %d bytes", path, len(dec))
	}
	return dec, nil
}

func validKeyLen(n int) bool { return n == 16 || n == 24 || n == 32 }

// clusterStatus is the cluster part of /api/v1/status: nil when alone.
func clusterStatus(p *cluster.Peer, store *ha.Log) func() any {
	return func() any {
		runs, episodes, err := store.Size()
		st := map[string]any{"logRuns": runs, "logEpisodes": episodes}
		if err != nil {
			st["logError"] = err.Error()
		}
		if p == nil {
			st["mode"] = "alone"
			return st
		}
		st["mode"], st["name"], st["settled"], st["members"] = "cluster", p.Name(), p.Ready(), p.Members()
		return st
	}
}
