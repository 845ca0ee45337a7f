package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/selfheal/selfheal/config"
	"github.com/selfheal/selfheal/engine"
	"github.com/selfheal/selfheal/ha"
	"github.com/selfheal/selfheal/playbooks"
	"github.com/selfheal/selfheal/receiver"
	shweb "github.com/selfheal/selfheal/web"
)

type serveCmd struct {
	logCfg      *promslog.Config
	configFile  string
	storagePath string
	node        string
	webFlags    *web.FlagConfig
}

func newServeCmd(app *kingpin.Application, logCfg *promslog.Config) *serveCmd {
	c := &serveCmd{logCfg: logCfg}
	cmd := app.Command("serve", "Run the daemon: receive webhooks and run playbooks.")
	cmd.Flag("config.file", "selfheal configuration file.").Default("selfheal.yml").StringVar(&c.configFile)
	cmd.Flag("storage.path", "Folder for the execution log and the inbox.").Default("data/").StringVar(&c.storagePath)
	hostname, _ := os.Hostname()
	cmd.Flag("cluster.name", "Name of this replica in run records (default: the hostname).").Default(hostname).StringVar(&c.node)
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

	store, err := ha.Open(c.storagePath, ha.Options{Node: c.node})
	if err != nil {
		return err
	}
	defer store.Close()
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
	set, err := playbooks.LoadFiles(registry, cfg.Playbooks.Files)
	if err != nil {
		return fmt.Errorf("load playbooks:\n%w", err)
	}
	logger.Info("playbooks loaded", "count", set.Len(), "files", cfg.Playbooks.Files)

	eng := engine.New(inbox, store, engine.Options{
		Workers:       cfg.Engine.Workers,
		Queue:         cfg.Engine.Queue,
		DryRun:        cfg.DryRun,
		ShutdownGrace: time.Duration(cfg.Engine.ShutdownGrace),
		Logger:        logger,
		Registerer:    reg,
	})
	eng.SetPlaybooks(set)

	var ready atomic.Bool
	rcv := receiver.New(inbox, receiver.Options{
		Auth:         authFrom(cfg.Receiver),
		MaxBodyBytes: int64(cfg.Receiver.MaxBodyBytes),
		Ready:        ready.Load,
		Logger:       logger,
		Registerer:   reg,
	})
	srv := &http.Server{
		Handler: shweb.Handler(shweb.Options{
			Webhook: rcv, Runs: store, Playbooks: eng.Playbooks, Ready: ready.Load,
			Node: c.node, Version: version.Version, Gatherer: reg,
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
	}

	var g run.Group
	ctx, cancel := context.WithCancel(context.Background())
	g.Add(run.SignalHandler(ctx, os.Interrupt, syscall.SIGTERM))
	g.Add(func() error { return eng.Run(ctx) }, func(error) { cancel() })
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
