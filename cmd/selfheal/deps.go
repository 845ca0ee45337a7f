package main

import (
	"fmt"
	"log/slog"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"k8s.io/client-go/dynamic"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

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

// placeholderDeps are the action deps when there is no config file (check,
// dry-run, actions): clients of an API server that does not exist, so that
// steps build, and a plan that needs to read the cluster says it cannot.
func placeholderDeps(logger *slog.Logger) builtin.Deps {
	rc := &rest.Config{Host: "https://kubernetes.invalid"}
	return builtin.Deps{
		Logger:          logger,
		AlertmanagerURL: placeholderAlertmanager,
		JenkinsServers:  placeholderJenkins,
		Kubernetes:      clientset.NewForConfigOrDie(rc),
		Dynamic:         dynamic.NewForConfigOrDie(rc),
		KubernetesImage: "selfheal:placeholder",
	}
}

// kubeClients builds the clients of the config's kubernetes section: the
// kubeconfig file (and context) when set, else the in-cluster config.
func kubeClients(k *config.Kubernetes) (clientset.Interface, dynamic.Interface, error) {
	var (
		rc  *rest.Config
		err error
	)
	if k.Kubeconfig == "" {
		rc, err = rest.InClusterConfig()
	} else {
		rc, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
			&clientcmd.ClientConfigLoadingRules{ExplicitPath: k.Kubeconfig},
			&clientcmd.ConfigOverrides{CurrentContext: k.Context}).ClientConfig()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes: %w", err)
	}
	rc.UserAgent = "selfheal"
	kc, err := clientset.NewForConfig(rc)
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes: %w", err)
	}
	dc, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes: %w", err)
	}
	return kc, dc, nil
}

// newRegistry builds the action registry with its dependencies taken from
// cfg. A nil cfg (check and dry-run without --config.file) gets
// placeholders.
func newRegistry(cfg *config.Config, logger *slog.Logger) (*actions.Registry, error) {
	deps := placeholderDeps(logger)
	if cfg != nil {
		deps.Kubernetes, deps.Dynamic, deps.KubernetesImage = nil, nil, ""
		if cfg.Kubernetes != nil {
			kc, dc, err := kubeClients(cfg.Kubernetes)
			if err != nil {
				return nil, err
			}
			deps.Kubernetes, deps.Dynamic, deps.KubernetesImage = kc, dc, cfg.Kubernetes.Image
		}
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
			// Silences gossip between the members of an HA pair: the
			// first of urls serves when url is not set.
			url := am.URL
			if url == "" && len(am.URLs) > 0 {
				url = am.URLs[0]
			}
			deps.AlertmanagerURL, deps.AlertmanagerClient = url, client
		}
	}
	reg := actions.NewRegistry()
	if err := builtin.Register(reg, deps); err != nil {
		return nil, err
	}
	return reg, nil
}
