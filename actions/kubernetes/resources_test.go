package kubernetes

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	k8stesting "k8s.io/client-go/testing"

	"github.com/selfheal/selfheal/actions"
)

func TestParseMemory(t *testing.T) {
	tests := []struct {
		in, cur, want string
		err           string
	}{
		{in: "6Gi", cur: "1Gi", want: "6Gi"},
		{in: "6Gi", want: "6Gi"},
		{in: "x1.5", cur: "1Gi", want: "1536Mi"},
		{in: "x2", cur: "1000M", want: "1908Mi"}, // 2e9 bytes, rounded up to a whole Mi
		{in: "x1.5", err: "there is no current value to multiply"},
		{in: "x0", err: "is not a factor between 0 and 10"},
		{in: "x11", err: "is not a factor between 0 and 10"},
		{in: "xNaN", err: "is not a factor"},
		{in: "-1Gi", err: "is neither a positive quantity"},
		{in: "1.5", want: "1500m"}, // a quantity in bytes; Kubernetes allows it
	}
	for _, tc := range tests {
		t.Run(tc.in+" of "+tc.cur, func(t *testing.T) {
			m, err := parseMemory(tc.in)
			var q resource.Quantity
			if err == nil {
				var cur *resource.Quantity
				if tc.cur != "" {
					c := resource.MustParse(tc.cur)
					cur = &c
				}
				q, err = m.resolve(cur)
			}
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, q.String())
		})
	}
}

// container returns the named container of a deployment's template.
func container(t *testing.T, d *appsv1.Deployment, name string) corev1.Container {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %s", name)
	return corev1.Container{}
}

func TestSetResources(t *testing.T) {
	c := newFake()
	a := mustBuild(t, c, SetResourcesID, "container: '{{ .Labels.alertname | reReplaceAll \"PodWedged\" \"app\" }}'\n"+
		"memory_limit: x1.5\nmemory_request: 1Gi\nmax_memory_limit: 2Gi")
	before := getDeployment(t, c, "web")
	res, err := a.Run(context.Background(), target("shop", "web-7d9f-a"))
	require.NoError(t, err)
	require.Equal(t, "set memory of container app in Deployment shop/web: limit 1Gi -> 1536Mi, request 512Mi -> 1Gi; "+
		"the Deployment controller then replaces its pods by its RollingUpdate strategy; the step does not wait for the rollout", res.Summary)
	require.Equal(t, "1Gi -> 1536Mi", res.Details["memory_limit"])
	require.Equal(t, "Deployment/web", res.Details["owner"])
	require.Equal(t, "u-web", res.Details["owner_uid"])
	require.Equal(t, "u-pod", res.Details["pod_uid"])

	after := getDeployment(t, c, "web")
	app := container(t, after, "app")
	require.Equal(t, "1536Mi", ptr(app.Resources.Limits[corev1.ResourceMemory]).String())
	require.Equal(t, "1Gi", ptr(app.Resources.Requests[corev1.ResourceMemory]).String())
	require.Equal(t, "2", ptr(app.Resources.Limits[corev1.ResourceCPU]).String(), "other resources are kept")
	require.Equal(t, container(t, before, "sidecar"), container(t, after, "sidecar"), "other containers are kept")
	require.Equal(t, []string{"patch deployments"}, writes(c))

	t.Run("a second run changes nothing", func(t *testing.T) {
		a := mustBuild(t, c, SetResourcesID, "container: app\nmemory_limit: 1536Mi")
		c.ClearActions()
		res, err := a.Run(context.Background(), target("shop", "web-7d9f-a"))
		require.NoError(t, err)
		require.Equal(t, "unchanged", res.Details["outcome"])
		require.Empty(t, writes(c))
	})
}

func TestSetResourcesGuards(t *testing.T) {
	unlimited := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "free", UID: "u-free"},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "only"}}}}}}
	tests := []struct {
		name, src, pod string
		wantErr        error
		msg            string
	}{
		{name: "above the maximum", src: "container: app\nmemory_limit: x4\nmax_memory_limit: 3Gi", pod: "web-7d9f-a", wantErr: ErrGuard,
			msg: "memory limit 4Gi of container app would be above max_memory_limit 3Gi"},
		{name: "lowering", src: "container: app\nmemory_limit: 768Mi", pod: "web-7d9f-a", wantErr: ErrGuard,
			msg: "memory limit of container app would go down from 1Gi to 768Mi; set only_increase: false to allow it"},
		{name: "lowering the request", src: "container: app\nmemory_limit: 2Gi\nmemory_request: 256Mi", pod: "web-7d9f-a", wantErr: ErrGuard,
			msg: "memory request of container app would go down from 512Mi to 256Mi"},
		{name: "limit below request", src: "container: app\nmemory_limit: 256Mi\nonly_increase: false", pod: "web-7d9f-a", wantErr: ErrGuard,
			msg: "memory limit 256Mi of container app would be below its request 512Mi"},
		{name: "unlimited container", src: "kind: Deployment\nname: free\nmemory_limit: 2Gi", wantErr: ErrGuard,
			msg: "container only has no memory limit, and setting one lowers it"},
		{name: "factor of no limit", src: "kind: Deployment\nname: free\nmemory_limit: x2\nonly_increase: false",
			msg: "memory_limit x2: container only has no memory limit: there is no current value to multiply; give a quantity"},
		{name: "which container", src: "memory_limit: 2Gi", pod: "web-7d9f-a", wantErr: ErrNoContainer,
			msg: "Deployment shop/web has 2 containers ([app sidecar]); name one with container"},
		{name: "no such container", src: "container: web\nmemory_limit: 2Gi", pod: "web-7d9f-a", wantErr: ErrNoContainer,
			msg: `Deployment shop/web has no container "web" (containers: [app sidecar])`},
		{name: "paused", src: "container: app\nmemory_limit: 2Gi", pod: "frozen-1-a", wantErr: ErrPaused},
		{name: "operator-managed", src: "container: app\nmemory_limit: 2Gi", pod: "prom-0", wantErr: ErrManaged,
			msg: "StatefulSet shop/prom is managed by Prometheus k8s (monitoring.coreos.com/v1), which would revert a change of its pod template"},
		{name: "bare pod", src: "container: app\nmemory_limit: 2Gi", pod: "bare", wantErr: ErrBarePod,
			msg: "a bare pod's resources can only be changed by recreating it"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newFake(unlimited)
			a := mustBuild(t, c, SetResourcesID, tc.src)
			_, err := a.Run(context.Background(), target("shop", tc.pod))
			require.Error(t, err)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
			}
			require.Contains(t, err.Error(), tc.msg)
			require.False(t, actions.IsRetryable(err))
			require.Empty(t, writes(c))
		})
	}
	t.Run("lowering allowed", func(t *testing.T) {
		c := newFake(unlimited)
		a := mustBuild(t, c, SetResourcesID, "kind: Deployment\nname: free\nmemory_limit: 2Gi\nonly_increase: false")
		p, err := a.Plan(context.Background(), target("shop", "any"))
		require.NoError(t, err)
		require.Contains(t, p.Details, "the container sets no memory request: new pods get request = limit (2Gi), which the scheduler must find room for")
		_, err = a.Run(context.Background(), target("shop", "any"))
		require.NoError(t, err)
		require.Equal(t, "2Gi", ptr(container(t, getDeployment(t, c, "free"), "only").Resources.Limits[corev1.ResourceMemory]).String())
	})
	t.Run("OnDelete is changed, with a note", func(t *testing.T) {
		c := newFake()
		a := mustBuild(t, c, SetResourcesID, "container: app\nmemory_limit: 2Gi")
		res, err := a.Run(context.Background(), target("shop", "db-0"))
		require.NoError(t, err)
		require.Contains(t, res.Summary, "updateStrategy OnDelete: the pods keep the old values until each is deleted")
	})
	t.Run("workload recreated meanwhile", func(t *testing.T) {
		c := newFake()
		c.PrependReactor("patch", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "web",
				field.ErrorList{field.Invalid(field.NewPath("metadata", "uid"), "u-web", "field is immutable")})
		})
		a := mustBuild(t, c, SetResourcesID, "container: app\nmemory_limit: 2Gi")
		_, err := a.Run(context.Background(), target("shop", "web-7d9f-a"))
		require.ErrorIs(t, err, ErrReplaced)
		require.False(t, actions.IsRetryable(err))
	})
	t.Run("workload changed meanwhile", func(t *testing.T) {
		c := newFake()
		c.PrependReactor("patch", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewConflict(schema.GroupResource{Group: "apps", Resource: "deployments"}, "web",
				errors.New("the object has been modified"))
		})
		a := mustBuild(t, c, SetResourcesID, "container: app\nmemory_limit: 2Gi")
		_, err := a.Run(context.Background(), target("shop", "web-7d9f-a"))
		require.True(t, actions.IsRetryable(err))
	})
}
