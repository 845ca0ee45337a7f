package kubernetes

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/selfheal/selfheal/actions"
)

// TestTouched: each action reports the object it wrote (with its UID), so
// that the run's Events land on it; one that wrote nothing (already gone,
// unchanged) reports none.
func TestTouched(t *testing.T) {
	pod := actions.ObjectRef{APIVersion: "v1", Kind: "Pod", Namespace: "shop", Name: "web-7d9f-a", UID: "u-pod"}
	web := actions.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "web", UID: "u-web"}
	db := actions.ObjectRef{APIVersion: "apps/v1", Kind: "StatefulSet", Namespace: "shop", Name: "db", UID: "u-db"}
	gone := func(c *fake.Clientset) {
		c.PrependReactor("*", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
			if a.GetVerb() == "get" {
				return false, nil, nil
			}
			return true, nil, apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, "web-7d9f-a")
		})
	}
	tests := []struct {
		name, id, src string
		setup         func(*fake.Clientset)
		want          []actions.ObjectRef
	}{
		{name: "evict", id: RestartID, src: "mode: evict", want: []actions.ObjectRef{pod}},
		{name: "delete", id: RestartID, src: "mode: delete", want: []actions.ObjectRef{pod}},
		{name: "delete, already gone", id: RestartID, src: "mode: delete", setup: gone},
		{name: "evict, already gone", id: RestartID, src: "mode: evict", setup: gone},
		{name: "rollout: the owner, not the pod", id: RestartID, src: "mode: rollout", want: []actions.ObjectRef{web}},
		{name: "scale", id: ScaleID, src: "kind: StatefulSet\nname: db\nreplicas: 2", want: []actions.ObjectRef{db}},
		{name: "scale, unchanged", id: ScaleID, src: "kind: Deployment\nname: web\nreplicas: 3"},
		{name: "set_resources", id: SetResourcesID, src: "container: app\nmemory_limit: 2Gi", want: []actions.ObjectRef{web}},
		{name: "set_resources, unchanged", id: SetResourcesID, src: "container: app\nmemory_limit: 1Gi"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newFake()
			scaleReactor(c)
			if tc.setup != nil {
				tc.setup(c)
			}
			res, err := mustBuild(t, c, tc.id, tc.src).Run(context.Background(), target("shop", "web-7d9f-a"))
			require.NoError(t, err)
			require.Equal(t, tc.want, res.Touched, res.Summary)
		})
	}
}
