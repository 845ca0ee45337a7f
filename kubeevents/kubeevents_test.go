package kubeevents

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/ha"
)

var (
	now = time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	pod = actions.ObjectRef{APIVersion: "v1", Kind: "Pod", Namespace: "shop", Name: "web-7d9f-a", UID: "u-pod"}
	web = actions.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "web", UID: "u-web"}
	db  = actions.ObjectRef{APIVersion: "apps/v1", Kind: "StatefulSet", Namespace: "data", Name: "db", UID: "u-db"}
)

// record is a final run of playbook restart-web whose steps touched refs,
// one step each.
func record(state ha.State, reason string, refs ...[]actions.ObjectRef) ha.Record {
	rec := ha.Record{ID: "restart-web/5f1c@1772355600", Playbook: "restart-web", State: state, Reason: reason, Node: "selfheal-0"}
	for i, r := range refs {
		st := ha.StepRecord{Name: []string{"first", "second", "third"}[i], Action: "kubernetes.restart", State: ha.Succeeded,
			Details: map[string]string{"pod": "x"}}
		if r != nil {
			st.Details[actions.TouchedKey] = actions.FormatTouched(r)
		}
		rec.Steps = append(rec.Steps, st)
	}
	return rec
}

func newRecorder(t *testing.T, c *fake.Clientset, logs *bytes.Buffer) (*Recorder, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	o := Options{Instance: "selfheal-0", Registerer: reg, Now: func() time.Time { return now }}
	if logs != nil {
		o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	return New(c, o), reg
}

func listEvents(t *testing.T, c *fake.Clientset, ns string) []corev1.Event {
	t.Helper()
	l, err := c.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	return l.Items
}

// TestRunFinishedPostsEvents: one Event per touched object, each once, in
// the object's namespace, Normal for a run that succeeded and Warning for
// any other end, with the message naming playbook, run and outcome.
func TestRunFinishedPostsEvents(t *testing.T) {
	tests := []struct {
		name       string
		rec        ha.Record
		typ, msg   string
		shop, data int
	}{
		{name: "succeeded", rec: record(ha.Succeeded, "", []actions.ObjectRef{pod}),
			typ: "Normal", msg: "playbook restart-web (run restart-web/5f1c@1772355600): succeeded", shop: 1},
		{name: "verified", rec: record(ha.Succeeded, "verified: the alert resolved within verify.resolved_within", []actions.ObjectRef{pod}),
			typ: "Normal", msg: "playbook restart-web (run restart-web/5f1c@1772355600): succeeded: verified: the alert resolved within verify.resolved_within", shop: 1},
		{name: "failed", rec: record(ha.Failed, `step "second" failed: boom`, []actions.ObjectRef{pod, web}, nil, []actions.ObjectRef{db, pod}),
			typ: "Warning", msg: `playbook restart-web (run restart-web/5f1c@1772355600): failed: step "second" failed: boom`, shop: 2, data: 1},
		{name: "unhealed", rec: record(ha.Unhealed, "unhealed: the alert did not resolve by 2026-03-01T09:45:00Z (verify.resolved_within)", []actions.ObjectRef{web}),
			typ: "Warning", msg: "playbook restart-web (run restart-web/5f1c@1772355600): unhealed: unhealed: the alert did not resolve by 2026-03-01T09:45:00Z (verify.resolved_within)", shop: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := fake.NewClientset()
			r, reg := newRecorder(t, c, nil)
			r.RunFinished(tc.rec)
			shop, data := listEvents(t, c, "shop"), listEvents(t, c, "data")
			require.Len(t, shop, tc.shop)
			require.Len(t, data, tc.data)
			for _, ev := range append(shop, data...) {
				require.Equal(t, Reason, ev.Reason)
				require.Equal(t, tc.typ, ev.Type)
				require.Equal(t, tc.msg, ev.Message)
				require.Equal(t, ev.InvolvedObject.Namespace, ev.Namespace)
				require.True(t, strings.HasPrefix(ev.Name, ev.InvolvedObject.Name+"."), ev.Name)
				require.Equal(t, "selfheal", ev.ReportingController)
				require.Equal(t, "selfheal-0", ev.ReportingInstance)
				require.Equal(t, "selfheal", ev.Source.Component)
				require.Equal(t, "kubernetes.restart", ev.Action)
				require.True(t, now.Equal(ev.EventTime.Time))
				require.True(t, now.Equal(ev.LastTimestamp.Time))
				require.EqualValues(t, 1, ev.Count)
			}
			var involved, want []corev1.ObjectReference
			for _, ev := range append(shop, data...) {
				involved = append(involved, ev.InvolvedObject)
			}
			seen := map[actions.ObjectRef]bool{}
			for _, st := range tc.rec.Steps {
				refs, err := actions.ParseTouched(st.Details[actions.TouchedKey])
				require.NoError(t, err)
				for _, o := range refs {
					if !seen[o] {
						seen[o] = true
						want = append(want, corev1.ObjectReference{APIVersion: o.APIVersion, Kind: o.Kind, Namespace: o.Namespace, Name: o.Name, UID: types.UID(o.UID)})
					}
				}
			}
			require.ElementsMatch(t, want, involved, "each touched object once")
			require.Equal(t, float64(tc.shop+tc.data), testutil.ToFloat64(r.posted))
			require.Zero(t, testutil.ToFloat64(r.failed))
			_, err := reg.Gather()
			require.NoError(t, err)
		})
	}
}

// TestRunFinishedTouchedNothing: a run whose steps touched nothing (a
// skipped run, a shadow run, a step that found the pod gone) posts nothing.
func TestRunFinishedTouchedNothing(t *testing.T) {
	c := fake.NewClientset()
	r, _ := newRecorder(t, c, nil)
	r.RunFinished(ha.Record{ID: "p/x", Playbook: "p", State: ha.Skipped, Reason: "rate_limited"})
	r.RunFinished(record(ha.Succeeded, "", nil))
	require.Empty(t, c.Actions())
}

// TestRunFinishedFailureIsCounted: an Event the API server refuses is
// logged with its run and counted, and the next object still gets its
// Event; nothing reaches the caller.
func TestRunFinishedFailureIsCounted(t *testing.T) {
	c := fake.NewClientset()
	c.PrependReactor("create", "events", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetNamespace() == "shop" {
			return true, nil, errors.New(`events is forbidden: User "system:serviceaccount:ops:selfheal" cannot create resource "events" in API group "" in the namespace "shop"`)
		}
		return false, nil, nil
	})
	var logs bytes.Buffer
	r, _ := newRecorder(t, c, &logs)
	r.RunFinished(record(ha.Succeeded, "", []actions.ObjectRef{pod, db}))
	require.Equal(t, 1.0, testutil.ToFloat64(r.failed))
	require.Equal(t, 1.0, testutil.ToFloat64(r.posted))
	require.Len(t, listEvents(t, c, "data"), 1)
	require.Contains(t, logs.String(), "cannot post a Kubernetes Event on an object the run touched")
	require.Contains(t, logs.String(), "run=restart-web/5f1c@1772355600")
	require.Contains(t, logs.String(), `object="v1 Pod shop/web-7d9f-a u-pod"`)
	require.Contains(t, logs.String(), "cannot create resource")
}

// TestMessageIsCut: a long reason is cut to what an Event holds, on a
// rune boundary.
func TestMessageIsCut(t *testing.T) {
	msg := Message(ha.Record{ID: "p/x", Playbook: "p", State: ha.Failed, Reason: strings.Repeat("é", 2000)})
	require.LessOrEqual(t, len(msg), maxMessage)
	require.True(t, strings.HasSuffix(msg, "é …"), msg[len(msg)-10:])
	require.True(t, strings.HasPrefix(msg, "playbook p (run p/x): failed: éé"))
}
