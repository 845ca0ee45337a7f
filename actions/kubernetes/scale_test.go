package kubernetes

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"

	"github.com/selfheal/selfheal/actions"
)

func TestScale(t *testing.T) {
	tests := []struct {
		name, src string
		summary   string
		replicas  int32
		writes    []string
		wantErr   error
	}{
		{name: "up", src: "kind: Deployment\nname: web\nreplicas: 5", replicas: 5,
			summary: "scaled Deployment shop/web from 3 to 5 replicas", writes: []string{"update deployments/scale"}},
		{name: "statefulset", src: "kind: statefulset\nname: db\nreplicas: 2", replicas: 2,
			summary: "scaled StatefulSet shop/db from 1 to 2 replicas", writes: []string{"update statefulsets/scale"}},
		{name: "to zero", src: "kind: Deployment\nname: web\nreplicas: 0\nallow_zero: true", replicas: 0,
			summary: "scaled Deployment shop/web from 3 to 0 replicas", writes: []string{"update deployments/scale"}},
		{name: "unchanged", src: "kind: Deployment\nname: web\nreplicas: 3", replicas: 3,
			summary: "Deployment shop/web already has 3 replicas"},
		{name: "operator-managed", src: "kind: StatefulSet\nname: prom\nreplicas: 3", wantErr: ErrManaged},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newFake()
			scaleReactor(c)
			a := mustBuild(t, c, ScaleID, tc.src)
			plan, perr := a.Plan(context.Background(), target("shop", "any"))
			require.NoError(t, perr)
			require.Empty(t, writes(c))
			res, err := a.Run(context.Background(), target("shop", "any"))
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				require.Contains(t, plan.Summary, "refuse: "+tc.wantErr.Error())
				require.Empty(t, writes(c))
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.summary, res.Summary)
			require.Equal(t, tc.writes, writes(c))
			kind, name, _ := strings.Cut(res.Details["owner"], "/")
			w, err := getWorkload(context.Background(), c, kind, "shop", name)
			require.NoError(t, err)
			require.Equal(t, tc.replicas, w.Replicas)
		})
	}
}

// TestScaleConflict: a conflicting write is read again and retried, up to
// three writes 10ms apart (fake time), then fails retryable.
func TestScaleConflict(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newFake()
		scaleReactor(c)
		conflicts := 1
		c.PrependReactor("update", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
			if a.GetSubresource() != "scale" || conflicts == 0 {
				return false, nil, nil
			}
			conflicts--
			return true, nil, apierrors.NewConflict(schema.GroupResource{Group: "apps", Resource: "deployments"}, "web", errors.New("modified"))
		})
		a := mustBuild(t, c, ScaleID, "kind: Deployment\nname: web\nreplicas: 4")
		res, err := a.Run(context.Background(), target("shop", "any"))
		require.NoError(t, err)
		require.Equal(t, "4", res.Details["replicas"])
		require.Equal(t, "scaled", res.Details["outcome"])
		require.Equal(t, []string{"update deployments/scale", "update deployments/scale"}, writes(c))
	})

	t.Run("conflicts every time", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c := newFake()
			scaleReactor(c)
			c.PrependReactor("update", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
				return a.GetSubresource() == "scale", nil, apierrors.NewConflict(schema.GroupResource{Group: "apps", Resource: "deployments"}, "web", errors.New("modified"))
			})
			a := mustBuild(t, c, ScaleID, "kind: Deployment\nname: web\nreplicas: 4")
			start := time.Now()
			res, err := a.Run(context.Background(), target("shop", "any"))
			require.True(t, actions.IsRetryable(err))
			require.True(t, apierrors.IsConflict(err))
			require.ErrorContains(t, err, "scale Deployment shop/web: ")
			require.Equal(t, "3", res.Details["current_replicas"])
			require.Len(t, writes(c), 3)
			waited := time.Since(start)
			require.GreaterOrEqual(t, waited, 20*time.Millisecond)
			require.LessOrEqual(t, waited, 22*time.Millisecond, "two waits of 10ms, jitter at most 10%")
		})
	})

	t.Run("a cancelled run is not reported as the conflict before it", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c := newFake()
			scaleReactor(c)
			ctx, cancel := context.WithCancel(context.Background())
			c.PrependReactor("update", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if a.GetSubresource() != "scale" {
					return false, nil, nil
				}
				cancel() // the run ends while the conflict is waited out
				return true, nil, apierrors.NewConflict(schema.GroupResource{Group: "apps", Resource: "deployments"}, "web", errors.New("modified"))
			})
			c.PrependReactor("get", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
				if ctx.Err() != nil {
					return true, nil, ctx.Err()
				}
				return false, nil, nil
			})
			a := mustBuild(t, c, ScaleID, "kind: Deployment\nname: web\nreplicas: 4")
			_, err := a.Run(ctx, target("shop", "any"))
			require.ErrorIs(t, err, context.Canceled)
			require.False(t, apierrors.IsConflict(err))
			require.Len(t, writes(c), 1)
		})
	})
}
