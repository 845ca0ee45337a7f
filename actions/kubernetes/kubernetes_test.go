package kubernetes

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/selfheal/selfheal/actions"
)

func TestBuild(t *testing.T) {
	tests := []struct {
		name    string
		id      string
		src     string
		wantErr string
	}{
		{name: "restart defaults", id: RestartID, src: "{}"},
		{name: "restart everything", id: RestartID, src: "mode: delete\nnamespace: shop\npod: web-1\nuid: '{{ .Labels.uid }}'\n" +
			"allow_bare_pods: true\ngrace_period: 10s\ntimeout: 1m\npdb_retry_interval: 1s"},
		{name: "restart workload", id: RestartID, src: "mode: rollout\nkind: deployment\nname: web"},
		{
			name:    "unknown field",
			id:      RestartID,
			src:     "mode: evict\ngrace_perod: 10s",
			wantErr: `step.yaml:2:1: steps[0].with: unknown field "grace_perod"`,
		},
		{
			name:    "bad duration",
			id:      RestartID,
			src:     "timeout: soon",
			wantErr: `step.yaml:1:10: steps[0].with.timeout: not a valid duration string: "soon"`,
		},
		{
			name:    "bad mode and namespace",
			id:      RestartID,
			src:     "mode: reboot\nnamespace: Shop_1",
			wantErr: `step.yaml:1:1: steps[0].with: mode: "reboot" is not one of evict, delete, rollout; namespace: "Shop_1" is not a valid namespace name`,
		},
		{
			name:    "workload needs rollout",
			id:      RestartID,
			src:     "mode: evict\nkind: Deployment\nname: web",
			wantErr: "kind, name: only mode rollout restarts a workload; evict and delete need a pod",
		},
		{
			name:    "pod and workload",
			id:      RestartID,
			src:     "mode: rollout\npod: web-1\nkind: Deployment\nname: web",
			wantErr: "pod: set either pod, or kind and name",
		},
		{
			name:    "kind without name",
			id:      RestartID,
			src:     "mode: rollout\nkind: Job",
			wantErr: `kind: "Job" is not one of [Deployment StatefulSet DaemonSet]; name: must be set`,
		},
		{
			name:    "grace period with rollout",
			id:      RestartID,
			src:     "mode: rollout\ngrace_period: 5s",
			wantErr: "grace_period: only for modes evict and delete",
		},
		{
			name:    "retry interval above timeout",
			id:      RestartID,
			src:     "timeout: 10s\npdb_retry_interval: 1m",
			wantErr: "pdb_retry_interval: 1m must not exceed timeout 10s",
		},
		{
			name:    "template syntax",
			id:      RestartID,
			src:     "pod: '{{ .Labels.pod'",
			wantErr: `step.yaml:1:6: steps[0].with.pod: template "{{ .Labels.pod": template: :1: unclosed action`,
		},
		{name: "scale", id: ScaleID, src: "kind: StatefulSet\nname: db\nreplicas: 2"},
		{name: "scale to zero allowed", id: ScaleID, src: "kind: Deployment\nname: web\nreplicas: 0\nallow_zero: true"},
		{
			name:    "scale to zero",
			id:      ScaleID,
			src:     "kind: Deployment\nname: web\nreplicas: 0",
			wantErr: "replicas: 0 stops the workload; set allow_zero: true to allow it",
		},
		{
			name:    "scale needs replicas",
			id:      ScaleID,
			src:     "kind: DaemonSet\nname: web",
			wantErr: `kind: "DaemonSet" is not one of [Deployment StatefulSet]; replicas: must be set`,
		},
		{
			name:    "scale replicas type",
			id:      ScaleID,
			src:     "kind: Deployment\nname: web\nreplicas: many",
			wantErr: "step.yaml:3:11: steps[0].with.replicas: cannot unmarshal !!str `many` into int32",
		},
		{name: "set_resources", id: SetResourcesID, src: "memory_limit: 4Gi\nmemory_request: x1.5\nmax_memory_limit: 8Gi"},
		{name: "set_resources workload", id: SetResourcesID, src: "kind: StatefulSet\nname: prom\ncontainer: prometheus\nmemory_limit: x2"},
		{
			name:    "set_resources needs a limit",
			id:      SetResourcesID,
			src:     "container: app",
			wantErr: "memory_limit: must be set",
		},
		{
			name:    "set_resources bad quantities",
			id:      SetResourcesID,
			src:     "memory_limit: lots\nmemory_request: x0\nmax_memory_limit: -1Gi",
			wantErr: `memory_limit: "lots" is neither a positive quantity (like 6Gi) nor a factor (like x1.5); memory_request: "x0" is not a factor between 0 and 10 (like x1.5); max_memory_limit: "-1Gi" is not a positive quantity`,
		},
		{
			name:    "set_resources above max",
			id:      SetResourcesID,
			src:     "memory_limit: 32Gi\nmax_memory_limit: 16Gi",
			wantErr: "memory_limit: 32Gi is above max_memory_limit 16Gi",
		},
		{
			name:    "set_resources lowering factor",
			id:      SetResourcesID,
			src:     "memory_limit: x0.5",
			wantErr: "memory_limit: x0.5 lowers the limit, which only_increase refuses",
		},
		{name: "set_resources lowering allowed", id: SetResourcesID, src: "memory_limit: x0.5\nonly_increase: false"},
		{
			name:    "set_resources request above limit",
			id:      SetResourcesID,
			src:     "memory_limit: 1Gi\nmemory_request: 2Gi",
			wantErr: "memory_request: 2Gi is above memory_limit 1Gi",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := build(t, newFake(), tc.id, tc.src)
			if tc.wantErr != "" {
				require.Error(t, err)
				require.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.NotNil(t, a)
		})
	}
}

// TestNotConfigured: without a client every step fails to load, saying
// why, at the step's position.
func TestNotConfigured(t *testing.T) {
	for _, tc := range []struct{ id, src string }{
		{RestartID, "mode: evict"},
		{ScaleID, "kind: Deployment\nname: web\nreplicas: 2"},
		{SetResourcesID, "memory_limit: 2Gi"},
	} {
		t.Run(tc.id, func(t *testing.T) {
			_, err := build(t, nil, tc.id, tc.src)
			require.EqualError(t, err, "step.yaml:1:1: steps[0].with: kubernetes is not configured: set kubernetes.kubeconfig or run in-cluster")
		})
	}
}

// TestMaxDuration: a restart step without its own timeout gets the
// action's timeout plus a minute from the engine.
func TestMaxDuration(t *testing.T) {
	p := DefaultRestartParams()
	var b actions.Bounded = p
	require.Equal(t, DefaultRestartTimeout, b.MaxDuration())
}

func TestForbiddenError(t *testing.T) {
	c := podCall("create", "eviction", "shop", "web-1")
	rbac := apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "web-1",
		errors.New(`User "selfheal" cannot create resource "pods/eviction" in API group "" in the namespace "shop"`))
	err := c.check(rbac)
	require.EqualError(t, err, `forbidden: needs verb create on resource pods/eviction in namespace shop `+
		`(user "selfheal"; Role rule: apiGroups [""], resources ["pods/eviction"], verbs ["create"])`)
	require.ErrorIs(t, err, ErrForbidden)
	require.True(t, apierrors.IsForbidden(err))
	require.False(t, actions.IsRetryable(err))

	apps := appsCall("patch", "deployments", "", "shop", "web")
	other := apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "web", errors.New("webhook said no"))
	require.EqualError(t, apps.check(other), `forbidden: needs verb patch on resource apps/deployments in namespace shop `+
		`(Role rule: apiGroups ["apps"], resources ["deployments"], verbs ["patch"])`)

	// A 403 that is no RBAC denial: a budget with negative disruptionsAllowed.
	pdb := apierrors.NewForbidden(schema.GroupResource{Group: "policy", Resource: "poddisruptionbudget"}, "web",
		errors.New("pdb disruptions allowed is negative"))
	err = c.check(pdb)
	require.NotErrorIs(t, err, ErrForbidden)
	require.Contains(t, err.Error(), "POST /api/v1/namespaces/shop/pods/web-1/eviction: ")
}

func TestRetryable(t *testing.T) {
	gr := schema.GroupResource{Resource: "pods"}
	tests := []struct {
		err  error
		want bool
	}{
		{apierrors.NewTooManyRequests("slow down", 1), true},
		{apierrors.NewInternalError(errors.New("etcd")), true},
		{apierrors.NewServiceUnavailable("starting"), true},
		{apierrors.NewServerTimeout(gr, "get", 1), true},
		{apierrors.NewConflict(gr, "x", errors.New("changed")), true},
		{apierrors.NewNotFound(gr, "x"), false},
		{apierrors.NewBadRequest("no"), false},
		{apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "x", nil), false},
		{apierrors.NewUnauthorized("who"), false},
		{fmt.Errorf("dial tcp: connection refused"), true},
	}
	for _, tc := range tests {
		t.Run(tc.err.Error(), func(t *testing.T) {
			err := podCall("get", "", "shop", "x").check(tc.err)
			require.Equal(t, tc.want, actions.IsRetryable(err))
			require.ErrorIs(t, err, tc.err)
		})
	}
}

func TestCallString(t *testing.T) {
	require.Equal(t, "POST /api/v1/namespaces/shop/pods/web-1/eviction", podCall("create", "eviction", "shop", "web-1").String())
	require.Equal(t, "DELETE /api/v1/namespaces/shop/pods/web-1", podCall("delete", "", "shop", "web-1").String())
	require.Equal(t, "PUT /apis/apps/v1/namespaces/shop/statefulsets/db/scale", appsCall("update", "statefulsets", "scale", "shop", "db").String())
	require.Equal(t, "GET /apis/policy/v1/namespaces/shop/poddisruptionbudgets",
		call{verb: "list", group: "policy", version: "v1", resource: "poddisruptionbudgets", namespace: "shop"}.String())
}
