package main

import (
	"fmt"
	"log/slog"
	"time"

	commoncfg "github.com/prometheus/common/config"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/actions/builtin"
	"github.com/selfheal/selfheal/actions/jenkins"
	"github.com/selfheal/selfheal/config"
)

// placeholderAlertmanager and placeholderJenkins stand in for the config's
// alertmanager and jenkins sections when check or dry-run run without a
// config file, so playbooks using them can still be validated and planned.
const placeholderAlertmanager = "http://alertmanager:9093"

var placeholderJenkins = jenkins.Servers{"default": {URL: "https://jenkins.invalid", User: "placeholder", APIToken: "placeholder"}}

// newRegistry builds the action registry with its dependencies taken from
// cfg. A nil cfg (check and dry-run without --config.file) gets
// placeholders.
func newRegistry(cfg *config.Config, logger *slog.Logger) (*actions.Registry, error) {
	deps := builtin.Deps{Logger: logger, AlertmanagerURL: placeholderAlertmanager, JenkinsServers: placeholderJenkins}
	if cfg != nil {
		deps.AlertmanagerURL = ""
		deps.JenkinsServers = jenkins.Servers{}
		for name, j := range cfg.Jenkins {
			deps.JenkinsServers[name] = jenkins.Server{
				URL: j.URL, User: j.User, APIToken: string(j.APIToken), CAFile: j.CAFile,
				InsecureSkipVerify: j.InsecureSkipVerify, Timeout: time.Duration(j.Timeout),
			}
		}
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
