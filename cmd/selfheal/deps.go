package main

import (
	"fmt"
	"log/slog"

	commoncfg "github.com/prometheus/common/config"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/actions/builtin"
	"github.com/selfheal/selfheal/config"
)

// placeholderAlertmanager stands in for alertmanager.url when check or
// dry-run run without a config file, so playbooks with silence steps can
// still be validated and planned.
const placeholderAlertmanager = "http://alertmanager:9093"

// newRegistry builds the action registry with its dependencies taken from
// cfg. A nil cfg (check and dry-run without --config.file) gets
// placeholders.
func newRegistry(cfg *config.Config, logger *slog.Logger) (*actions.Registry, error) {
	deps := builtin.Deps{Logger: logger, AlertmanagerURL: placeholderAlertmanager}
	if cfg != nil {
		deps.AlertmanagerURL = ""
		if am := cfg.Alertmanager; am != nil {
			client, err := commoncfg.NewClientFromConfig(am.HTTPConfig, "alertmanager")
			if err != nil {
				return nil, fmt.Errorf("alertmanager.http_config: %w", err)
			}
			deps.AlertmanagerURL, deps.AlertmanagerClient = am.URL, client
		}
	}
	reg := actions.NewRegistry()
	if err := builtin.Register(reg, deps); err != nil {
		return nil, err
	}
	return reg, nil
}
