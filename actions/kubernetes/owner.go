package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clientset "k8s.io/client-go/kubernetes"

	"github.com/selfheal/selfheal/actions"
)

// Workload kinds the actions act on.
const (
	KindDeployment  = "Deployment"
	KindStatefulSet = "StatefulSet"
	KindDaemonSet   = "DaemonSet"
	kindReplicaSet  = "ReplicaSet"
)

// resources maps a workload kind to its apps/v1 resource.
var resources = map[string]string{
	KindDeployment:  "deployments",
	KindStatefulSet: "statefulsets",
	KindDaemonSet:   "daemonsets",
	kindReplicaSet:  "replicasets",
}

// normalizeKind returns the canonical kind for s, case-insensitive, or ""
// when s is none of allowed.
func normalizeKind(s string, allowed ...string) string {
	for _, k := range allowed {
		if strings.EqualFold(s, k) {
			return k
		}
	}
	return ""
}

// workload is a Deployment, StatefulSet or DaemonSet as the actions need
// it: identity, the guards' inputs and the pod template.
type workload struct {
	Kind, Namespace, Name string
	UID                   types.UID
	ResourceVersion       string
	// Paused is a Deployment's spec.paused.
	Paused bool
	// Strategy is the update strategy type: RollingUpdate, Recreate or
	// OnDelete.
	Strategy string
	// Replicas is spec.replicas (DaemonSets: -1).
	Replicas int32
	Template corev1.PodTemplateSpec
	// Controller is the workload's own controller (an operator's custom
	// resource), or nil.
	Controller *metav1.OwnerReference
	// Via is how it was found: "Pod web-7d9f-x2x → ReplicaSet web-7d9f →
	// Deployment web", or just "Deployment web".
	Via string
}

// String is "Deployment web/api".
func (w *workload) String() string { return fmt.Sprintf("%s %s/%s", w.Kind, w.Namespace, w.Name) }

// ref is "Deployment/api", as results record it.
func (w *workload) ref() string { return w.Kind + "/" + w.Name }

// objectRef names the workload as an object the run changed.
func (w *workload) objectRef() actions.ObjectRef {
	return actions.ObjectRef{APIVersion: appsv1.SchemeGroupVersion.String(), Kind: w.Kind, Namespace: w.Namespace, Name: w.Name, UID: string(w.UID)}
}

// onDelete reports whether template changes restart no pod.
func (w *workload) onDelete() bool { return w.Strategy == "OnDelete" }

// managedBy describes the workload's own controller, or "".
func (w *workload) managedBy() string {
	if w.Controller == nil {
		return ""
	}
	return fmt.Sprintf("%s %s (%s)", w.Controller.Kind, w.Controller.Name, w.Controller.APIVersion)
}

// call is the request that reads (verb get) or patches the workload.
func (w *workload) call(verb string) call {
	return appsCall(verb, resources[w.Kind], "", w.Namespace, w.Name)
}

// getWorkload reads the workload kind ns/name.
func getWorkload(ctx context.Context, c clientset.Interface, kind, ns, name string) (*workload, error) {
	w := &workload{Kind: kind, Namespace: ns, Name: name, Via: kind + " " + name, Replicas: -1}
	opts := metav1.GetOptions{}
	var err error
	switch kind {
	case KindDeployment:
		var d *appsv1.Deployment
		if d, err = c.AppsV1().Deployments(ns).Get(ctx, name, opts); err == nil {
			w.fill(d.ObjectMeta, d.Spec.Template)
			w.Paused, w.Strategy = d.Spec.Paused, string(d.Spec.Strategy.Type)
			w.Replicas = replicas(d.Spec.Replicas)
		}
	case KindStatefulSet:
		var s *appsv1.StatefulSet
		if s, err = c.AppsV1().StatefulSets(ns).Get(ctx, name, opts); err == nil {
			w.fill(s.ObjectMeta, s.Spec.Template)
			w.Strategy, w.Replicas = string(s.Spec.UpdateStrategy.Type), replicas(s.Spec.Replicas)
		}
	case KindDaemonSet:
		var d *appsv1.DaemonSet
		if d, err = c.AppsV1().DaemonSets(ns).Get(ctx, name, opts); err == nil {
			w.fill(d.ObjectMeta, d.Spec.Template)
			w.Strategy = string(d.Spec.UpdateStrategy.Type)
		}
	default:
		return nil, fmt.Errorf("%w: kind %q (want Deployment, StatefulSet or DaemonSet)", ErrUnsupportedOwner, kind)
	}
	if err != nil {
		return nil, w.call("get").check(err)
	}
	if w.Strategy == "" {
		w.Strategy = "RollingUpdate" // the API server's default; fakes do not default
	}
	return w, nil
}

func (w *workload) fill(m metav1.ObjectMeta, t corev1.PodTemplateSpec) {
	w.UID, w.ResourceVersion, w.Template = m.UID, m.ResourceVersion, t
	w.Controller = metav1.GetControllerOfNoCopy(&m)
}

// replicas is *r, defaulting to 1 as the API server does.
func replicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}

// ownerOf follows the pod's controller references to the workload that
// owns it: Pod → ReplicaSet → Deployment, Pod → StatefulSet, Pod →
// DaemonSet. Each object found must have the UID its reference names;
// otherwise it was replaced and ErrReplaced is returned. A pod without a
// controller gives ErrBarePod; any other controller (a Job, a bare
// ReplicaSet, a custom resource) gives ErrUnsupportedOwner.
func ownerOf(ctx context.Context, c clientset.Interface, pod *corev1.Pod) (*workload, error) {
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return nil, fmt.Errorf("%w: pod %s/%s has no controller ownerReference", ErrBarePod, pod.Namespace, pod.Name)
	}
	via := "Pod " + pod.Name
	kind := appsKind(ref)
	switch kind {
	case KindStatefulSet, KindDaemonSet:
		return follow(ctx, c, pod.Namespace, ref, kind, via)
	case kindReplicaSet:
	default:
		return nil, fmt.Errorf("%w: pod %s/%s is controlled by %s %s (%s); only Deployments (through their ReplicaSets), "+
			"StatefulSets and DaemonSets are supported", ErrUnsupportedOwner, pod.Namespace, pod.Name, ref.Kind, ref.Name, ref.APIVersion)
	}
	rsCall := appsCall("get", "replicasets", "", pod.Namespace, ref.Name)
	rs, err := c.AppsV1().ReplicaSets(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		return nil, rsCall.check(err)
	}
	if rs.UID != ref.UID {
		return nil, replacedOwner(kindReplicaSet, pod.Namespace, ref, rs.UID)
	}
	via += " → ReplicaSet " + rs.Name
	dref := metav1.GetControllerOf(rs)
	if dref == nil || appsKind(dref) != KindDeployment {
		owner := "no controller (a bare ReplicaSet)"
		if dref != nil {
			owner = fmt.Sprintf("controller %s %s (%s)", dref.Kind, dref.Name, dref.APIVersion)
		}
		return nil, fmt.Errorf("%w: pod %s/%s belongs to ReplicaSet %s, which has %s; only a Deployment's ReplicaSets are supported",
			ErrUnsupportedOwner, pod.Namespace, pod.Name, rs.Name, owner)
	}
	return follow(ctx, c, pod.Namespace, dref, KindDeployment, via)
}

// follow reads the workload ref points to and checks its UID.
func follow(ctx context.Context, c clientset.Interface, ns string, ref *metav1.OwnerReference, kind, via string) (*workload, error) {
	w, err := getWorkload(ctx, c, kind, ns, ref.Name)
	if err != nil {
		return nil, err
	}
	if w.UID != ref.UID {
		return nil, replacedOwner(kind, ns, ref, w.UID)
	}
	w.Via = via + " → " + kind + " " + w.Name
	return w, nil
}

func replacedOwner(kind, ns string, ref *metav1.OwnerReference, got types.UID) error {
	return fmt.Errorf("%w: %s %s/%s has UID %s, but the ownerReference names UID %s (deleted and recreated?)",
		ErrReplaced, kind, ns, ref.Name, got, ref.UID)
}

// appsKind is ref's kind when it is an apps group workload, else "".
func appsKind(ref *metav1.OwnerReference) string {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil || gv.Group != "apps" {
		return ""
	}
	if _, ok := resources[ref.Kind]; !ok {
		return ""
	}
	return ref.Kind
}

// getPod reads ns/name; when wantUID is set, a pod with another UID is
// refused with ErrReplaced.
func getPod(ctx context.Context, c clientset.Interface, ns, name string, wantUID types.UID) (*corev1.Pod, error) {
	pod, err := c.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, podCall("get", "", ns, name).check(err)
	}
	if wantUID != "" && pod.UID != wantUID {
		return nil, fmt.Errorf("%w: pod %s/%s has UID %s, not the UID %s the step names (a new pod took its name since the alert fired?)",
			ErrReplaced, ns, name, pod.UID, wantUID)
	}
	return pod, nil
}

// controllerOf is "ReplicaSet/web-7d9f", or "" for a bare pod.
func controllerOf(pod *corev1.Pod) string {
	if ref := metav1.GetControllerOf(pod); ref != nil {
		return ref.Kind + "/" + ref.Name
	}
	return ""
}

// patchWorkload sends a strategic merge patch of w's spec. The patch also
// carries w's UID, which the API server refuses to change (422
// "metadata.uid: field is immutable"): a workload deleted and recreated
// under the same name since it was read is never patched. With
// checkVersion it carries w's resourceVersion too, so the patch applies
// only to the version it was computed from (409 otherwise, retryable).
func patchWorkload(ctx context.Context, c clientset.Interface, w *workload, spec any, checkVersion bool) error {
	body, err := patchBody(w, spec, checkVersion)
	if err != nil {
		return err
	}
	opts := metav1.PatchOptions{FieldManager: FieldManager}
	pt := types.StrategicMergePatchType
	switch w.Kind {
	case KindDeployment:
		_, err = c.AppsV1().Deployments(w.Namespace).Patch(ctx, w.Name, pt, body, opts)
	case KindStatefulSet:
		_, err = c.AppsV1().StatefulSets(w.Namespace).Patch(ctx, w.Name, pt, body, opts)
	case KindDaemonSet:
		_, err = c.AppsV1().DaemonSets(w.Namespace).Patch(ctx, w.Name, pt, body, opts)
	default:
		return fmt.Errorf("%w: kind %q", ErrUnsupportedOwner, w.Kind)
	}
	if isUIDChange(err) {
		return fmt.Errorf("%w: %s is no longer the object with UID %s that was read (deleted and recreated under the same name); "+
			"refusing to patch the new one: %w", ErrReplaced, w, w.UID, err)
	}
	return w.call("patch").check(err)
}

// patchBody is the patch patchWorkload sends.
func patchBody(w *workload, spec any, checkVersion bool) ([]byte, error) {
	meta := map[string]any{}
	if w.UID != "" {
		meta["uid"] = w.UID
	}
	if checkVersion && w.ResourceVersion != "" {
		meta["resourceVersion"] = w.ResourceVersion
	}
	body, err := json.Marshal(map[string]any{"metadata": meta, "spec": spec})
	if err != nil {
		return nil, fmt.Errorf("patch %s: %w", w, err)
	}
	return body, nil
}

// isUIDChange reports the API server refusing a patch because the UID it
// carries is not the object's.
func isUIDChange(err error) bool {
	var status apierrors.APIStatus
	if !apierrors.IsInvalid(err) || !errors.As(err, &status) || status.Status().Details == nil {
		return false
	}
	for _, c := range status.Status().Details.Causes {
		if c.Field == "metadata.uid" {
			return true
		}
	}
	return false
}
