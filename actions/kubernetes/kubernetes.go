package kubernetes

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	clientset "k8s.io/client-go/kubernetes"

	"github.com/selfheal/selfheal/actions"
)

// Action type ids.
const (
	RestartID      = "kubernetes.restart"
	ScaleID        = "kubernetes.scale"
	SetResourcesID = "kubernetes.set_resources"
)

// FieldManager is the field manager of every write, so `kubectl get
// --show-managed-fields` and audit logs show selfheal made it.
const FieldManager = "selfheal"

// RestartedAtAnnotation is the pod-template annotation a rollout restart
// sets, the one kubectl uses, so `kubectl rollout history` stays readable.
const RestartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"

// Default templates of the namespace and pod parameters: the labels
// kube-state-metrics and most pod alerts carry.
const (
	DefaultNamespace = "{{ .Labels.namespace }}"
	DefaultPod       = "{{ .Labels.pod }}"
)

// Errors callers can branch on with errors.Is. All are permanent.
var (
	// ErrNotConfigured: the daemon has no Kubernetes client.
	ErrNotConfigured = errors.New("kubernetes is not configured: set kubernetes.kubeconfig or run in-cluster")
	// ErrForbidden: RBAC denied a request; the error is a *ForbiddenError.
	ErrForbidden = errors.New("forbidden")
	// ErrBarePod: the pod has no controller and the step does not allow
	// bare pods (a deleted bare pod is gone for good).
	ErrBarePod = errors.New("pod has no controller")
	// ErrReplaced: the object was deleted and recreated under the same
	// name since it was read (or since the alert named its UID).
	ErrReplaced = errors.New("object was replaced")
	// ErrPaused: the Deployment is paused; nothing it would roll out
	// happens until someone resumes it.
	ErrPaused = errors.New("deployment is paused")
	// ErrOnDelete: the workload's updateStrategy is OnDelete, so a
	// template change restarts no pod.
	ErrOnDelete = errors.New("updateStrategy is OnDelete")
	// ErrUnsupportedOwner: the pod's controller is not something the
	// action can act on (a Job, a bare ReplicaSet, a custom resource).
	ErrUnsupportedOwner = errors.New("unsupported owner")
	// ErrManaged: the workload is itself controlled by another object (an
	// operator's custom resource), which would revert the change.
	ErrManaged = errors.New("workload is managed by another controller")
	// ErrGuard: a guard of the step refused the change (scale to zero,
	// memory above the maximum or lowered).
	ErrGuard = errors.New("refused by a guard")
	// ErrPDBBlocked: a PodDisruptionBudget kept refusing the eviction
	// until the step's timeout. It is wrapped in actions.Retryable.
	ErrPDBBlocked = errors.New("eviction blocked by a PodDisruptionBudget")
)

// Deps are what the Kubernetes actions depend on.
type Deps struct {
	// Client talks to the cluster. Nil means Kubernetes is not configured:
	// building any step of these actions fails, saying so.
	Client clientset.Interface
	// Logger receives the actions' logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock of restartedAt annotations; nil means time.Now.
	Now func() time.Time
}

// withDefaults fills the nil fields of d.
func (d Deps) withDefaults() Deps {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	d.Logger = d.Logger.With("component", "actions/kubernetes")
	if d.Now == nil {
		d.Now = time.Now
	}
	return d
}

// Specs returns the Kubernetes action types, in id order, bound to d.
func Specs(d Deps) []actions.Spec {
	return []actions.Spec{RestartSpec(d), ScaleSpec(d), SetResourcesSpec(d)}
}

// problems collects the errors of a Validate, in order.
type problems []string

func (p *problems) addf(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(p, "; "))
}

// isStatic reports whether t renders to itself: no template action.
func isStatic(t actions.Template) bool { return !strings.Contains(t.String(), "{{") }

// checkNamespace reports what is wrong with a namespace name, or "".
func checkNamespace(ns string) string {
	if ns == "" {
		return "must not be empty"
	}
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return fmt.Sprintf("%q is not a valid namespace name: %s", ns, strings.Join(errs, ", "))
	}
	return ""
}

// checkName reports what is wrong with an object name, or "".
func checkName(name string) string {
	if name == "" {
		return "must not be empty"
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return fmt.Sprintf("%q is not a valid object name: %s", name, strings.Join(errs, ", "))
	}
	return ""
}

// validateStatic checks a template parameter at load when it holds no
// template action; a template is checked when rendered. check returns ""
// for a valid value.
func validateStatic(probs *problems, field string, t actions.Template, required bool, check func(string) string) {
	if t.IsZero() {
		if required {
			probs.addf("%s: must be set", field)
		}
		return
	}
	if isStatic(t) {
		if msg := check(t.String()); msg != "" {
			probs.addf("%s: %s", field, msg)
		}
	}
}

// renderChecked renders t for target and checks the result.
func renderChecked(field string, t actions.Template, target actions.Target, check func(string) string) (string, error) {
	s, err := t.Render(target)
	if err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	s = strings.TrimSpace(s)
	if msg := check(s); msg != "" {
		return "", fmt.Errorf("%s: %s", field, msg)
	}
	return s, nil
}
