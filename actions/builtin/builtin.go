// Package builtin registers the action types that ship with selfheal into
// an actions.Registry. Registration is explicit — there is no init() — so
// every registry, a test's included, gets exactly the types it asks for.
package builtin

import (
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"k8s.io/client-go/dynamic"
	clientset "k8s.io/client-go/kubernetes"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/actions/exec"
	"github.com/selfheal/selfheal/actions/jenkins"
	"github.com/selfheal/selfheal/actions/kubernetes"
	"github.com/selfheal/selfheal/actions/promwal"
	"github.com/selfheal/selfheal/actions/silence"
	"github.com/selfheal/selfheal/actions/webhook"
)

// Deps are what the built-in actions depend on. A nil field gets a
// default.
type Deps struct {
	// Logger receives the actions' logs; nil discards them.
	Logger *slog.Logger
	// HTTPClient sends webhook requests; nil means &http.Client{}. It
	// should have no overall Timeout: each attempt has its own. Webhooks
	// use a copy that never follows redirects.
	HTTPClient *http.Client
	// AlertmanagerURL is the Alertmanager alertmanager.silence talks to
	// (config: alertmanager.url). Empty: a step using the action fails to
	// load, saying so.
	AlertmanagerURL string
	// AlertmanagerClient carries the auth and TLS of alertmanager.http_config;
	// nil means &http.Client{}.
	AlertmanagerClient *http.Client
	// JenkinsServers are the servers jenkins.build steps name (config:
	// jenkins).
	JenkinsServers jenkins.Servers
	// Kubernetes is the client of the kubernetes.* actions and of
	// prometheus.wal_cleanup in kubernetes mode (config: kubernetes); nil:
	// steps using them fail to load, saying so.
	Kubernetes clientset.Interface
	// Dynamic reaches custom resources (prometheus-operator's Prometheus)
	// on the same cluster; nil: prometheus.wal_cleanup steps in kubernetes
	// mode fail to load.
	Dynamic dynamic.Interface
	// KubernetesImage is the selfheal image for the Jobs selfheal runs
	// (config: kubernetes.image); "": prometheus.wal_cleanup steps in
	// kubernetes mode fail to load.
	KubernetesImage string
}

// Specs returns the built-in action types, in id order, bound to d.
func Specs(d Deps) []actions.Spec {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.HTTPClient == nil {
		d.HTTPClient = &http.Client{}
	}
	specs := []actions.Spec{
		silence.Spec(silence.Options{URL: d.AlertmanagerURL, HTTPClient: d.AlertmanagerClient, Logger: d.Logger}),
		exec.Spec(d.Logger),
		jenkins.Spec(d.JenkinsServers, d.Logger),
		promwal.Spec(promwal.Deps{Logger: d.Logger, HTTPClient: d.HTTPClient, Kube: d.Kubernetes, Dynamic: d.Dynamic, Image: d.KubernetesImage}),
		webhook.Spec(d.HTTPClient, d.Logger),
	}
	specs = append(specs, kubernetes.Specs(kubernetes.Deps{Client: d.Kubernetes, Logger: d.Logger})...)
	slices.SortFunc(specs, func(a, b actions.Spec) int { return strings.Compare(a.ID, b.ID) })
	return specs
}

// Register adds every built-in action type to r. It reports every id it
// could not register (one already taken, say), not only the first.
func Register(r *actions.Registry, d Deps) error {
	var errs []error
	for _, s := range Specs(d) {
		if err := r.Register(s); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
