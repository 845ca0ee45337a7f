package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/selfheal/selfheal/playbooks"
)

// Catalog is where the watcher puts what it reads (a *playbooks.Catalog).
type Catalog interface {
	Replace(owner string, files []playbooks.File) *playbooks.Result
}

// Options configure a Watcher.
type Options struct {
	// Namespaces to watch; empty means all namespaces.
	Namespaces []string
	// Selector picks the ConfigMaps.
	Selector labels.Selector
	Logger   *slog.Logger
	// Recorder writes the Events on ConfigMaps; nil means one that posts
	// them through the watcher's client as component "selfheal".
	Recorder record.EventRecorder
}

// Watcher keeps the playbooks of labelled ConfigMaps in a Catalog, through
// a label-filtered shared informer per namespace (one for all when no
// namespace is named). A ConfigMap update replaces all of its sources at
// once; a deletion, or a label no longer matching, removes them. Every
// refused source gets a Warning Event on its ConfigMap.
type Watcher struct {
	client  kubernetes.Interface
	catalog Catalog
	o       Options

	broadcaster record.EventBroadcaster

	mu       sync.Mutex
	watches  []*nsWatch
	problems []string // from CheckPermissions
}

// nsWatch is the informer of one namespace ("" for all) and its last
// list/watch error.
type nsWatch struct {
	namespace string
	informer  cache.SharedIndexInformer
	errMsg    string
	errAt     time.Time
	errRV     string // the informer's resource version when errMsg was seen
}

// New returns a watcher over client that fills catalog. Start it with Run.
func New(client kubernetes.Interface, catalog Catalog, o Options) *Watcher {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Selector == nil {
		o.Selector = labels.Everything()
	}
	w := &Watcher{client: client, catalog: catalog, o: o}
	if w.o.Recorder == nil {
		w.broadcaster = record.NewBroadcaster()
		w.o.Recorder = w.broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "selfheal"})
	}
	namespaces := slices.Clone(o.Namespaces)
	if len(namespaces) == 0 {
		namespaces = []string{metav1.NamespaceAll}
	}
	for _, ns := range namespaces {
		factory := informers.NewSharedInformerFactoryWithOptions(client, 0,
			informers.WithNamespace(ns),
			informers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.LabelSelector = o.Selector.String() }))
		nw := &nsWatch{namespace: ns, informer: factory.Core().V1().ConfigMaps().Informer()}
		_ = nw.informer.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
			w.watchError(nw, err)
		})
		_, _ = nw.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    w.apply,
			UpdateFunc: func(_, obj any) { w.apply(obj) },
			DeleteFunc: w.remove,
		})
		w.watches = append(w.watches, nw)
	}
	return w
}

// Run starts the informers and the Event writer and blocks until ctx is
// done.
func (w *Watcher) Run(ctx context.Context) error {
	if w.broadcaster != nil {
		w.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: w.client.CoreV1().Events("")})
		defer w.broadcaster.Shutdown()
	}
	var wg sync.WaitGroup
	for _, nw := range w.watches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nw.informer.RunWithContext(ctx)
		}()
	}
	wg.Wait()
	return nil
}

// WaitForSync waits until every informer has listed its ConfigMaps once, or
// ctx is done, and reports whether all did.
func (w *Watcher) WaitForSync(ctx context.Context) bool {
	var synced []cache.InformerSynced
	for _, nw := range w.watches {
		synced = append(synced, nw.informer.HasSynced)
	}
	return cache.WaitForCacheSync(ctx.Done(), synced...)
}

// apply loads the playbook keys of a ConfigMap the informer delivered.
func (w *Watcher) apply(obj any) {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		return
	}
	owner := Owner(cm.Namespace, cm.Name)
	if !w.o.Selector.Matches(labels.Set(cm.Labels)) {
		w.catalog.Replace(owner, nil) // a watch may deliver the object that left the selector
		return
	}
	var (
		files []playbooks.File
		size  int64
	)
	for _, key := range slices.Sorted(maps.Keys(cm.Data)) {
		if IsPlaybookKey(key) {
			files = append(files, playbooks.File{Source: Source(cm.Namespace, cm.Name, key), Data: []byte(cm.Data[key])})
			size += int64(len(cm.Data[key]))
		}
	}
	if len(files) == 0 {
		w.o.Logger.Warn("labelled ConfigMap has no .yaml or .yml key; nothing to load", "configmap", cm.Namespace+"/"+cm.Name)
	}
	if err := tooLarge(owner, size); err != nil {
		for i := range files {
			files[i].Data, files[i].Err = nil, err
		}
	}
	res := w.catalog.Replace(owner, files)
	w.event(cm, files, res)
}

// tooLarge refuses a ConfigMap whose playbook keys hold more than
// playbooks.MaxFileSize together: each key keeps its last good version. The
// API server refuses such a ConfigMap; this guards the parser's memory when
// the data comes from elsewhere.
func tooLarge(owner string, size int64) error {
	if size <= playbooks.MaxFileSize {
		return nil
	}
	return &playbooks.TooLargeError{Source: owner, Size: size, What: "the playbook keys of a ConfigMap"}
}

// event tells the ConfigMap's readers what happened to it: a Warning per
// refused source, a Normal event for each version that became active.
func (w *Watcher) event(cm *corev1.ConfigMap, files []playbooks.File, res *playbooks.Result) {
	for _, f := range files {
		if err := res.Failed[f.Source]; err != nil {
			w.o.Recorder.Event(cm, corev1.EventTypeWarning, "InvalidPlaybooks", eventMessage(
				f.Source+" not loaded; the last good version stays active:\n"+err.Error()))
		} else if slices.Contains(res.Loaded, f.Source) {
			w.o.Recorder.Event(cm, corev1.EventTypeNormal, "PlaybooksLoaded", eventMessage(
				fmt.Sprintf("%s revision %s is active", f.Source, playbooks.Revision(f.Data))))
		}
	}
}

// maxEventMessage is the longest Event message the API accepts.
const maxEventMessage = 1024

// eventMessage cuts msg to what an Event holds, on a rune boundary.
func eventMessage(msg string) string {
	if len(msg) <= maxEventMessage {
		return msg
	}
	const more = "\n… (cut; all errors in selfheal's log and /api/v1/playbooks)"
	cut := maxEventMessage - len(more)
	for cut > 0 && !utf8Start(msg[cut]) {
		cut--
	}
	return msg[:cut] + more
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// remove drops the playbooks of a deleted ConfigMap, or one whose label no
// longer matches (the informer sees that as a deletion).
func (w *Watcher) remove(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		return
	}
	w.catalog.Replace(Owner(cm.Namespace, cm.Name), nil)
}

// watchError records why an informer cannot list or watch. A watch that
// ended (EOF) or expired (410 Gone) is routine: the reflector lists again.
func (w *Watcher) watchError(nw *nsWatch, err error) {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
		w.o.Logger.Debug("ConfigMap watch ended; the informer resumes", "namespace", nw.namespace, "err", err)
		return
	}
	where := "all namespaces"
	if nw.namespace != "" {
		where = "namespace " + nw.namespace
	}
	msg := fmt.Sprintf("watch ConfigMaps in %s: %v", where, err)
	w.o.Logger.Error("cannot watch playbook ConfigMaps; retrying", "namespace", nw.namespace, "err", err)
	w.mu.Lock()
	defer w.mu.Unlock()
	nw.errMsg, nw.errAt, nw.errRV = msg, time.Now(), nw.informer.LastSyncResourceVersion()
}

// NamespaceStatus is one informer's state.
type NamespaceStatus struct {
	// Namespace is empty for all namespaces.
	Namespace string `json:"namespace"`
	Synced    bool   `json:"synced"`
	// Error is the last list or watch error, until the informer makes
	// progress again.
	Error   string    `json:"error,omitempty"`
	ErrorAt time.Time `json:"errorAt,omitzero"`
}

// Status is what /api/v1/status shows about ConfigMap playbooks.
type Status struct {
	LabelSelector string            `json:"labelSelector"`
	Namespaces    []NamespaceStatus `json:"namespaces"`
	// Problems are the permissions missing at start.
	Problems []string `json:"problems,omitempty"`
}

// Status returns the watcher's state.
func (w *Watcher) Status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := Status{LabelSelector: w.o.Selector.String(), Problems: slices.Clone(w.problems)}
	for _, nw := range w.watches {
		ns := NamespaceStatus{Namespace: nw.namespace, Synced: nw.informer.HasSynced()}
		if nw.errMsg != "" && nw.informer.LastSyncResourceVersion() == nw.errRV {
			ns.Error, ns.ErrorAt = nw.errMsg, nw.errAt
		}
		st.Namespaces = append(st.Namespaces, ns)
	}
	return st
}

// permission is one access the watcher needs.
type permission struct {
	verb, group, resource, why string
}

var needed = []permission{
	{"list", "", "configmaps", "to load playbooks"},
	{"watch", "", "configmaps", "to see playbook changes"},
	{"create", "", "events", "to report invalid playbooks on their ConfigMap"},
	{"patch", "", "events", "to update repeated Events"},
}

// CheckPermissions asks the API server (SelfSubjectAccessReview) whether
// the watcher may do what it needs in each namespace, and returns a clear
// error naming every missing permission and the example RBAC that grants
// it. The watcher keeps running either way, so granting the permission
// later heals it without a restart; Status lists the problems.
func (w *Watcher) CheckPermissions(ctx context.Context) error {
	var problems []string
	for _, nw := range w.watches {
		for _, p := range needed {
			ssar := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
				ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: nw.namespace, Verb: p.verb, Group: p.group, Resource: p.resource},
			}}
			res, err := w.client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, ssar, metav1.CreateOptions{})
			where := "in all namespaces (cluster-wide)"
			if nw.namespace != "" {
				where = "in namespace " + nw.namespace
			}
			switch {
			case err != nil:
				problems = append(problems, fmt.Sprintf("cannot check whether %s %s is allowed %s: %v", p.verb, p.resource, where, err))
			case !res.Status.Allowed:
				problems = append(problems, fmt.Sprintf("forbidden: needs verb %s on resource %s %s, %s", p.verb, p.resource, where, p.why))
			}
		}
	}
	w.mu.Lock()
	w.problems = problems
	w.mu.Unlock()
	if len(problems) == 0 {
		return nil
	}
	hint := "examples/kubernetes/rbac-playbooks-namespace.yaml grants them in one namespace"
	if len(w.o.Namespaces) == 0 {
		hint = "examples/kubernetes/rbac-playbooks-cluster.yaml grants them cluster-wide"
	}
	return fmt.Errorf("kubernetes playbooks: missing permissions (%s):\n%s", hint, strings.Join(problems, "\n"))
}
