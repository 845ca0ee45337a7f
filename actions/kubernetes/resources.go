package kubernetes

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	clientset "k8s.io/client-go/kubernetes"

	"github.com/selfheal/selfheal/actions"
)

// maxFactor bounds a relative memory setting ("x1.5"), against typos.
const maxFactor = 10

const setResourcesSummary = "Raise a container's memory limit (and optionally request) on the workload that owns the alert's pod, " +
	"or on a named Deployment, StatefulSet or DaemonSet; its pods then roll out."

const setResourcesExample = `- name: more-memory-for-wal-replay
  action: kubernetes.set_resources
  with:
    namespace: '{{ .Labels.namespace }}'
    pod: '{{ .Labels.pod }}'
    container: prometheus
    memory_limit: x1.5          # or an absolute quantity like 6Gi
    max_memory_limit: 16Gi
- name: more-memory-named
  action: kubernetes.set_resources
  with:
    namespace: monitoring
    kind: StatefulSet
    name: prometheus
    container: prometheus
    memory_limit: 8Gi
    memory_request: 6Gi
`

// ErrNoContainer: the pod template has no such container, or several
// when the step names none.
var ErrNoContainer = errors.New("container not found")

// SetResourcesParams are the parameters of a kubernetes.set_resources
// step.
type SetResourcesParams struct {
	Namespace actions.Template `yaml:"namespace" doc:"template"`
	// Pod names a pod whose owning workload is changed. With kind and
	// name, leave it at its default: it is then not used.
	Pod  actions.Template `yaml:"pod" doc:"template: a pod of the workload to change (Pod → ReplicaSet → Deployment, StatefulSet, DaemonSet); not used when kind and name are set"`
	Kind actions.Template `yaml:"kind" doc:"template: Deployment, StatefulSet or DaemonSet, with name, instead of a pod"`
	Name actions.Template `yaml:"name" doc:"template: the workload's name, with kind"`
	// Container names the container; empty means the template's only
	// container.
	Container actions.Template `yaml:"container" doc:"template; empty: the pod template's only container"`
	// MemoryLimit is the new memory limit: a quantity ("6Gi") or a factor
	// of the current limit ("x1.5", rounded up to a whole Mi).
	MemoryLimit string `yaml:"memory_limit" doc:"required: a quantity (6Gi) or a factor of the current limit (x1.5)"`
	// MemoryRequest optionally sets the memory request the same way.
	MemoryRequest string `yaml:"memory_request" doc:"optional: a quantity or a factor of the current request; unset: unchanged"`
	// MaxMemoryLimit refuses a new limit above it.
	MaxMemoryLimit string `yaml:"max_memory_limit" doc:"optional: refuse a resulting limit above this quantity"`
	// OnlyIncrease refuses lowering the limit or request, or setting a
	// limit on a container that has none.
	OnlyIncrease bool `yaml:"only_increase" doc:"refuse lowering the limit or request (and limiting an unlimited container)"`
}

// DefaultSetResourcesParams returns the parameters with their defaults:
// the workload owning the alert's pod, memory only raised.
func DefaultSetResourcesParams() *SetResourcesParams {
	return &SetResourcesParams{
		Namespace:    actions.MustTemplate(DefaultNamespace),
		Pod:          actions.MustTemplate(DefaultPod),
		OnlyIncrease: true,
	}
}

func (p *SetResourcesParams) workloadTarget() bool { return !p.Kind.IsZero() || !p.Name.IsZero() }

// Validate checks the parameters without rendering them. Every problem is
// reported, separated by "; ".
func (p *SetResourcesParams) Validate() error {
	var probs problems
	validateStatic(&probs, "namespace", p.Namespace, true, checkNamespace)
	if p.workloadTarget() {
		validateTarget(&probs, p.Pod, p.Kind, p.Name, KindDeployment, KindStatefulSet, KindDaemonSet)
	} else {
		validateStatic(&probs, "pod", p.Pod, true, checkName)
	}
	limit, lerr := parseMemory(p.MemoryLimit)
	switch {
	case p.MemoryLimit == "":
		probs.addf("memory_limit: must be set")
	case lerr != nil:
		probs.addf("memory_limit: %v", lerr)
	case p.OnlyIncrease && limit.factor > 0 && limit.factor < 1:
		probs.addf("memory_limit: %s lowers the limit, which only_increase refuses", p.MemoryLimit)
	}
	var request memory
	if p.MemoryRequest != "" {
		var err error
		if request, err = parseMemory(p.MemoryRequest); err != nil {
			probs.addf("memory_request: %v", err)
		} else if p.OnlyIncrease && request.factor > 0 && request.factor < 1 {
			probs.addf("memory_request: %s lowers the request, which only_increase refuses", p.MemoryRequest)
		}
	}
	if limit.abs != nil && request.abs != nil && request.abs.Cmp(*limit.abs) > 0 {
		probs.addf("memory_request: %s is above memory_limit %s", p.MemoryRequest, p.MemoryLimit)
	}
	if p.MaxMemoryLimit != "" {
		max, err := resource.ParseQuantity(p.MaxMemoryLimit)
		switch {
		case err != nil || max.Sign() <= 0:
			probs.addf("max_memory_limit: %q is not a positive quantity", p.MaxMemoryLimit)
		case limit.abs != nil && limit.abs.Cmp(max) > 0:
			probs.addf("memory_limit: %s is above max_memory_limit %s", p.MemoryLimit, p.MaxMemoryLimit)
		}
	}
	return probs.err()
}

// memory is a memory setting: an absolute quantity, or a factor of the
// current value.
type memory struct {
	abs    *resource.Quantity
	factor float64
}

// parseMemory parses "6Gi" or "x1.5".
func parseMemory(s string) (memory, error) {
	if f, ok := strings.CutPrefix(s, "x"); ok {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || math.IsNaN(v) || v <= 0 || v > maxFactor {
			return memory{}, fmt.Errorf("%q is not a factor between 0 and %d (like x1.5)", s, maxFactor)
		}
		return memory{factor: v}, nil
	}
	q, err := resource.ParseQuantity(s)
	if err != nil || q.Sign() <= 0 {
		return memory{}, fmt.Errorf("%q is neither a positive quantity (like 6Gi) nor a factor (like x1.5)", s)
	}
	return memory{abs: &q}, nil
}

// resolve is the new value given the current one (nil when unset).
func (m memory) resolve(cur *resource.Quantity) (resource.Quantity, error) {
	if m.abs != nil {
		return *m.abs, nil
	}
	if cur == nil || cur.Sign() <= 0 {
		return resource.Quantity{}, errors.New("there is no current value to multiply; give a quantity")
	}
	const mi = 1 << 20
	bytes := math.Ceil(float64(cur.Value())*m.factor/mi) * mi
	return *resource.NewQuantity(int64(bytes), resource.BinarySI), nil
}

// SetResourcesSpec returns the kubernetes.set_resources action type bound
// to d.
func SetResourcesSpec(d Deps) actions.Spec {
	d = d.withDefaults()
	return actions.Typed(SetResourcesID, setResourcesSummary, setResourcesExample, DefaultSetResourcesParams,
		func(p *SetResourcesParams) (actions.Action, error) {
			if d.Client == nil {
				return nil, ErrNotConfigured
			}
			a := &SetResources{p: *p, client: d.Client, logger: d.Logger}
			a.limit, _ = parseMemory(p.MemoryLimit)
			if p.MemoryRequest != "" {
				a.request, _ = parseMemory(p.MemoryRequest)
			}
			if p.MaxMemoryLimit != "" {
				q := resource.MustParse(p.MaxMemoryLimit)
				a.max = &q
			}
			return a, nil
		})
}

// SetResources is a configured kubernetes.set_resources step. It is safe
// for concurrent use.
type SetResources struct {
	p       SetResourcesParams
	limit   memory
	request memory // zero: unchanged
	max     *resource.Quantity
	client  clientset.Interface
	logger  *slog.Logger
}
