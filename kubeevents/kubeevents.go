// Package kubeevents posts a Kubernetes Event on every object a run
// touched once the run ends: the pod it evicted, the Deployment it rolled
// out, the StatefulSet it scaled. `kubectl describe` of the object then says
// which playbook acted on it, in which run, and how that run ended.
package kubeevents

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record/util"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/ha"
)

const (
	// Reason is the reason of every Event posted.
	Reason = "SelfhealRemediation"
	// Controller is the Events' reportingController and source component,
	// as the ConfigMap watcher's Events have it.
	Controller = "selfheal"
	// maxMessage is the longest note the events.k8s.io API accepts.
	maxMessage = 1024
	// maxInstance is the longest reportingInstance the API accepts.
	maxInstance = 128
)

// Options configure a Recorder.
type Options struct {
	// Instance is the reportingInstance: the replica's name in the
	// cluster (--cluster.name); "" means the hostname.
	Instance string
	// Timeout bounds posting the Events of one run; 0 means 10s.
	Timeout    time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now is the Events' time; nil means time.Now.
	Now func() time.Time
}

// Recorder posts the Events. It is an engine.Notifier and safe for
// concurrent use.
//
// Each Event is created directly, one synchronous request per object,
// rather than through client-go's EventBroadcaster (tools/record or
// tools/events), which the ConfigMap watcher uses: the broadcaster sends
// from a goroutine of its own and reports a failure only to klog, where a
// failed Event must be counted (selfheal_kubernetes_events_failed_total)
// and logged with its run; its reportingInstance is the hostname, not the
// replica's name; and what it adds, aggregating and rate-limiting similar
// Events on one object, would merge Events that name different runs. The
// Event is a core/v1 Event with the fields of events.k8s.io/v1 set
// (eventTime, action, reportingController, reportingInstance), so both
// APIs and `kubectl describe` show it, under the one RBAC rule the
// watcher's Events already need: create on events in API group "".
type Recorder struct {
	client kubernetes.Interface
	o      Options
	lg     *slog.Logger
	posted prometheus.Counter
	failed prometheus.Counter
}

// New returns a Recorder posting through client.
func New(client kubernetes.Interface, o Options) *Recorder {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Instance == "" {
		o.Instance, _ = os.Hostname()
	}
	if o.Instance == "" {
		o.Instance = Controller // the API requires one
	}
	if len(o.Instance) > maxInstance {
		o.Instance = o.Instance[:maxInstance]
	}
	f := promauto.With(o.Registerer)
	return &Recorder{
		client: client,
		o:      o,
		lg:     o.Logger.With("component", "kubeevents"),
		posted: f.NewCounter(prometheus.CounterOpts{
			Name: "selfheal_kubernetes_events_posted_total",
			Help: "Kubernetes Events posted on the objects finished runs touched.",
		}),
		failed: f.NewCounter(prometheus.CounterOpts{
			Name: "selfheal_kubernetes_events_failed_total",
			Help: "Kubernetes Events on touched objects that could not be posted (each is logged); the runs' outcomes stand.",
		}),
	}
}

// RunFinished posts an Event on each object rec's steps touched, within
// Options.Timeout. A failure is logged and counted, never returned.
func (r *Recorder) RunFinished(rec ha.Record) {
	objs := r.touched(rec)
	if len(objs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.o.Timeout)
	defer cancel()
	typ, msg := EventType(rec.State), Message(rec)
	for _, o := range objs {
		ev := r.event(o, typ, msg)
		if _, err := r.client.CoreV1().Events(ev.Namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
			r.failed.Inc()
			r.lg.Warn("cannot post a Kubernetes Event on an object the run touched; the run's outcome stands",
				"run", rec.ID, "object", o.ref.String(), "err", err)
			continue
		}
		r.posted.Inc()
		r.lg.Debug("posted a Kubernetes Event", "run", rec.ID, "object", o.ref.String(), "type", typ)
	}
}

// object is a touched object and the action of the first step that
// touched it.
type object struct {
	ref    actions.ObjectRef
	action string
}

// touched are the objects rec's steps recorded (actions.TouchedKey), each
// once, in step order. A line that cannot be read is logged and skipped.
func (r *Recorder) touched(rec ha.Record) []object {
	var out []object
	seen := map[actions.ObjectRef]bool{}
	for _, st := range rec.Steps {
		s, ok := st.Details[actions.TouchedKey]
		if !ok {
			continue
		}
		action := st.Action
		if action == "" {
			action = "remediate" // the API requires one
		}
		refs, err := actions.ParseTouched(s)
		if err != nil {
			r.lg.Warn("cannot read the objects a step touched; no Event for the rest of them", "run", rec.ID, "step", st.Name, "err", err)
		}
		for _, ref := range refs {
			if !seen[ref] {
				seen[ref] = true
				out = append(out, object{ref: ref, action: action})
			}
		}
	}
	return out
}

// EventType is Normal for a run that succeeded, Warning for any other end.
func EventType(s ha.State) string {
	if s == ha.Succeeded {
		return corev1.EventTypeNormal
	}
	return corev1.EventTypeWarning
}

// Message is "playbook <name> (run <id>): <outcome>[: <reason>]", cut to
// what an Event holds.
func Message(rec ha.Record) string {
	msg := fmt.Sprintf("playbook %s (run %s): %s", rec.Playbook, rec.ID, rec.State)
	if rec.Reason != "" {
		msg += ": " + rec.Reason
	}
	return cut(msg, maxMessage)
}

// cut shortens s to at most n bytes, on a rune boundary, marking the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const more = " …"
	i := n - len(more)
	for i > 0 && s[i]&0xC0 == 0x80 {
		i--
	}
	return s[:i] + more
}

// event is the Event on o. Its namespace is the object's, as the API
// requires; a cluster-scoped object's Events go to "default".
func (r *Recorder) event(o object, typ, msg string) *corev1.Event {
	now := r.o.Now()
	ns := o.ref.Namespace
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	return &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: util.GenerateEventName(o.ref.Name, now.UnixNano()), Namespace: ns},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: o.ref.APIVersion, Kind: o.ref.Kind, Namespace: o.ref.Namespace, Name: o.ref.Name, UID: types.UID(o.ref.UID),
		},
		Reason:              Reason,
		Message:             msg,
		Type:                typ,
		Source:              corev1.EventSource{Component: Controller},
		FirstTimestamp:      metav1.NewTime(now),
		LastTimestamp:       metav1.NewTime(now),
		Count:               1,
		EventTime:           metav1.NewMicroTime(now),
		Action:              o.action,
		ReportingController: Controller,
		ReportingInstance:   r.o.Instance,
	}
}
