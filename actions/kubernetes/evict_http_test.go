package kubernetes

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/selfheal/selfheal/actions"
)

// TestEvictionIsNotRetriedByClientGo: a budget the disruption controller
// has not processed yet answers 429 with Retry-After: 10, which client-go
// would wait out ten times (100 s). The action sends each eviction with
// client-go's retries off, sees every 429 itself, and gives up at once
// when the Retry-After is longer than the time it has left.
func TestEvictionIsNotRetriedByClientGo(t *testing.T) {
	var evictions atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/api/v1/namespaces/shop/pods/web-1":
			_ = json.NewEncoder(w).Encode(&corev1.Pod{
				TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
				ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1", UID: "u-1",
					OwnerReferences: []metav1.OwnerReference{ctrlRef("ReplicaSet", "web", "u-rs")}},
			})
		case r.Method == http.MethodPost && r.URL.Path == "/api/v1/namespaces/shop/pods/web-1/eviction":
			evictions.Add(1)
			w.Header().Set("Retry-After", "10")
			w.WriteHeader(http.StatusTooManyRequests)
			_ = json.NewEncoder(w).Encode(&metav1.Status{
				TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Status"},
				Status:   metav1.StatusFailure, Code: http.StatusTooManyRequests, Reason: metav1.StatusReasonTooManyRequests,
				Message: "Cannot evict pod as it would violate the pod's disruption budget.",
				Details: &metav1.StatusDetails{RetryAfterSeconds: 10, Causes: []metav1.StatusCause{{Type: "DisruptionBudget",
					Message: "The disruption budget web is still being processed by the server."}}},
			})
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	client, err := clientset.NewForConfig(&rest.Config{Host: srv.URL})
	require.NoError(t, err)

	a := mustBuild(t, client, RestartID, "mode: evict\ntimeout: 3s\npdb_retry_interval: 100ms")
	start := time.Now()
	_, err = a.Run(context.Background(), target("shop", "web-1"))
	require.Less(t, time.Since(start), time.Second)
	require.Equal(t, int32(1), evictions.Load())
	require.ErrorIs(t, err, ErrPDBBlocked)
	require.True(t, actions.IsRetryable(err))
	require.Contains(t, err.Error(), "refused 1 times")
	require.Contains(t, err.Error(), "(The disruption budget web is still being processed by the server.)")
}
