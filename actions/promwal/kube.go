package promwal

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/selfheal/selfheal/actions"
)

// PrometheusResource is prometheus-operator's Prometheus resource. When
// one owns the StatefulSet, kubernetes mode sets its spec.paused while the
// StatefulSet is scaled down, or the operator would scale it back up.
var PrometheusResource = schema.GroupVersionResource{Group: "monitoring.coreos.com", Version: "v1", Resource: "prometheuses"}

// RBACRules returns the namespaced permissions kubernetes mode needs in the
// StatefulSet's namespace, for a Role bound to selfheal's service account:
//
//	apps                   statefulsets            get            read replicas, selector, pod template, status
//	apps                   statefulsets/scale      get, update    scale to 0 and back
//	""                     pods                    get, list      wait for the pods to go, find the Job's pod
//	""                     pods/log                get            the Job's manifest (optional: without it the result lacks the file list)
//	batch                  jobs                    create, get, delete   run the Job, watch it, delete it if it does not finish
//	""                     persistentvolumeclaims  get            check the PVC exists
//	monitoring.coreos.com  prometheuses            get, patch     pause and unpause an owning Prometheus
//
// Plan needs only the get and list verbs.
func RBACRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{"apps"}, Resources: []string{"statefulsets"}, Verbs: []string{"get"}},
		{APIGroups: []string{"apps"}, Resources: []string{"statefulsets/scale"}, Verbs: []string{"get", "update"}},
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}},
		{APIGroups: []string{""}, Resources: []string{"pods/log"}, Verbs: []string{"get"}},
		{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"create", "get", "delete"}},
		{APIGroups: []string{""}, Resources: []string{"persistentvolumeclaims"}, Verbs: []string{"get"}},
		{APIGroups: []string{PrometheusResource.Group}, Resources: []string{PrometheusResource.Resource}, Verbs: []string{"get", "patch"}},
	}
}

// validateKube checks the kubernetes-mode parameters.
func (p *Params) validateKube() []string {
	var probs []string
	for _, f := range []struct {
		name     string
		t        actions.Template
		required bool
		check    func(string) []string
	}{
		{"namespace", p.Namespace, true, validation.IsDNS1123Label},
		{"statefulset", p.StatefulSet, true, validation.IsDNS1123Subdomain},
		{"pvc", p.PVC, false, validation.IsDNS1123Subdomain},
	} {
		switch src := f.t.String(); {
		case src == "" && f.required:
			probs = append(probs, f.name+": must be set in mode kubernetes")
		case src != "" && !strings.Contains(src, "{{"):
			if errs := f.check(src); len(errs) > 0 {
				probs = append(probs, fmt.Sprintf("%s: %q is not a valid name: %s", f.name, src, strings.Join(errs, ", ")))
			}
		}
	}
	for _, f := range []struct {
		name string
		t    actions.Template
	}{{"data_dir", p.DataDir}, {"quarantine_dir", p.QuarantineDir}, {"systemd_unit", p.SystemdUnit}, {"ready_url", p.ReadyURL}} {
		if !f.t.IsZero() {
			probs = append(probs, f.name+": only for mode host")
		}
	}
	dataOK, qOK := true, true
	for _, f := range []struct {
		name, v string
		ok      *bool
	}{{"data_sub_path", p.DataSubPath, &dataOK}, {"quarantine_sub_path", p.QuarantineSubPath, &qOK}} {
		if msg := checkSubPath(f.v); msg != "" {
			probs = append(probs, fmt.Sprintf("%s: %q %s", f.name, f.v, msg))
			*f.ok = false
		}
	}
	if dataOK && qOK && (under(p.QuarantineSubPath, p.DataSubPath) || under(p.DataSubPath, p.QuarantineSubPath)) {
		probs = append(probs, fmt.Sprintf("quarantine_sub_path: %q must be outside data_sub_path %q and not contain it", p.QuarantineSubPath, p.DataSubPath))
	}
	if p.PodGoneTimeout <= 0 {
		probs = append(probs, "pod_gone_timeout: must be greater than 0")
	}
	if time.Duration(p.JobTimeout) < time.Second {
		probs = append(probs, "job_timeout: must be at least 1s")
	}
	return probs
}

// checkSubPath says what is wrong with a path inside the volume, or "".
func checkSubPath(s string) string {
	switch {
	case s == "":
		return "must be set: the quarantine must be on the same volume, outside the TSDB"
	case strings.HasPrefix(s, "/"):
		return "must be relative to the volume"
	case path.Clean(s) != s || s == "." || s == ".." || strings.HasPrefix(s, "../"):
		return "must be a clean relative path inside the volume"
	}
	return ""
}

// kubeTarget are the kubernetes-mode parameters rendered for one target.
type kubeTarget struct {
	namespace, statefulSet, pvc string
}

func (k kubeTarget) sts() string { return k.namespace + "/" + k.statefulSet }

// renderKube renders the kubernetes-mode templates for t and checks the
// names.
func (a *Action) renderKube(t actions.Target) (kubeTarget, error) {
	var k kubeTarget
	for _, f := range []struct {
		name  string
		t     actions.Template
		dst   *string
		check func(string) []string
	}{
		{"namespace", a.p.Namespace, &k.namespace, validation.IsDNS1123Label},
		{"statefulset", a.p.StatefulSet, &k.statefulSet, validation.IsDNS1123Subdomain},
		{"pvc", a.p.PVC, &k.pvc, validation.IsDNS1123Subdomain},
	} {
		s, err := f.t.Render(t)
		if err != nil {
			return k, fmt.Errorf("%s: %w", f.name, err)
		}
		*f.dst = strings.TrimSpace(s)
		if *f.dst == "" && f.name == "pvc" {
			continue
		}
		if errs := f.check(*f.dst); len(errs) > 0 {
			return k, fmt.Errorf("%s: %q is not a valid name: %s", f.name, *f.dst, strings.Join(errs, ", "))
		}
	}
	return k, nil
}

// kubeState is what kubernetes mode found before changing anything.
type kubeState struct {
	target kubeTarget
	sts    *appsv1.StatefulSet
	// replicas is spec.replicas, restored at the end.
	replicas int32
	// pods are the StatefulSet's pods now.
	pods []corev1.Pod
	// prom is the owning Prometheus, or nil; promPaused its spec.paused
	// and promPausedSet whether that field exists.
	prom          *unstructured.Unstructured
	promPaused    bool
	promPausedSet bool
	// pvc is the claim the Job mounts; pvcSource says where its name came
	// from.
	pvc       *corev1.PersistentVolumeClaim
	pvcSource string
	// mount is the container that mounts the claim in the pod template,
	// and how; nil if none does.
	mount *podMount
	// refusals are reasons not to go ahead.
	refusals []string
}

// podMount is a container's mount of the claim's volume.
type podMount struct {
	container *corev1.Container
	mount     corev1.VolumeMount
}

// inspectKube reads the StatefulSet, its pods, its owner and the PVC. It
// only gets and lists. An API error is returned (retryable when a retry
// can help, since nothing has changed yet); reasons to refuse are in
// refusals.
func (a *Action) inspectKube(ctx context.Context, k kubeTarget) (*kubeState, error) {
	sts, err := a.d.Kube.AppsV1().StatefulSets(k.namespace).Get(ctx, k.statefulSet, metav1.GetOptions{})
	if err != nil {
		return nil, readErr(fmt.Errorf("get statefulset %s: %w", k.sts(), err))
	}
	st := &kubeState{target: k, sts: sts, replicas: 1}
	if sts.Spec.Replicas != nil {
		st.replicas = *sts.Spec.Replicas
	}
	if st.replicas == 0 {
		st.refuse("statefulset %s has 0 replicas: nothing runs, and there is no replica count to restore (an interrupted earlier run leaves it at 0; see the %s annotation on its Prometheus)", k.sts(), PausedByAnnotation)
	}
	if rp := sts.Spec.PersistentVolumeClaimRetentionPolicy; rp != nil && rp.WhenScaled == appsv1.DeletePersistentVolumeClaimRetentionPolicyType {
		st.refuse("its persistentVolumeClaimRetentionPolicy.whenScaled is Delete: scaling it to 0 would delete the PVCs, and the TSDB with them")
	}
	if err := a.findOwner(ctx, st); err != nil {
		return nil, err
	}
	if st.pods, err = a.stsPods(ctx, sts); err != nil {
		return nil, readErr(err)
	}
	if err := a.findPVC(ctx, st); err != nil {
		return nil, err
	}
	return st, nil
}

func (st *kubeState) refuse(format string, args ...any) {
	st.refusals = append(st.refusals, fmt.Sprintf(format, args...))
}

// refusal is the error for st's refusals, or nil.
func (st *kubeState) refusal() error {
	if len(st.refusals) == 0 {
		return nil
	}
	return &kubeRefusal{msg: fmt.Sprintf("refuse to quarantine the head of statefulset %s: %s", st.target.sts(), strings.Join(st.refusals, "; "))}
}

// kubeRefusal is a kubernetes-mode precondition that failed before
// anything changed. It matches ErrRefused.
type kubeRefusal struct{ msg string }

func (e *kubeRefusal) Error() string        { return e.msg }
func (e *kubeRefusal) Is(target error) bool { return target == ErrRefused }

// findOwner finds an owning Prometheus and refuses other controllers: they
// would scale the StatefulSet back up.
func (a *Action) findOwner(ctx context.Context, st *kubeState) error {
	for _, ref := range st.sts.OwnerReferences {
		gv, _ := schema.ParseGroupVersion(ref.APIVersion)
		if gv.Group == PrometheusResource.Group && ref.Kind == "Prometheus" {
			prom, err := a.d.Dynamic.Resource(PrometheusResource).Namespace(st.sts.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
				st.refuse("its owner Prometheus %s/%s does not exist (is it being deleted?)", st.sts.Namespace, ref.Name)
				return nil
			case err != nil:
				return readErr(fmt.Errorf("get prometheus %s/%s (owner of statefulset %s): %w", st.sts.Namespace, ref.Name, st.target.sts(), err))
			case prom.GetUID() != ref.UID:
				st.refuse("its owner Prometheus %s/%s has uid %s, not %s as the owner reference says", st.sts.Namespace, ref.Name, prom.GetUID(), ref.UID)
				return nil
			}
			st.prom = prom
			st.promPaused, st.promPausedSet, _ = unstructured.NestedBool(prom.Object, "spec", "paused")
			return nil
		}
	}
	if c := metav1.GetControllerOf(st.sts); c != nil {
		st.refuse("it is controlled by %s %s, which would undo the scale to 0; only a prometheus-operator Prometheus can be paused", c.Kind, c.Name)
	}
	return nil
}

// stsPods lists the pods the StatefulSet controls.
func (a *Action) stsPods(ctx context.Context, sts *appsv1.StatefulSet) ([]corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(sts.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("statefulset %s/%s: selector: %w", sts.Namespace, sts.Name, err)
	}
	list, err := a.d.Kube.CoreV1().Pods(sts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("list pods of statefulset %s/%s: %w", sts.Namespace, sts.Name, err)
	}
	var pods []corev1.Pod
	for _, p := range list.Items {
		if c := metav1.GetControllerOf(&p); c != nil && c.UID == sts.UID {
			pods = append(pods, p)
		}
	}
	return pods, nil
}

// findPVC names the claim (given, or derived from the only
// volumeClaimTemplate for the first ordinal: 0 unless spec.ordinals.start
// says otherwise), gets it and finds the container that mounts it.
func (a *Action) findPVC(ctx context.Context, st *kubeState) error {
	sts := st.sts
	name, volume := st.target.pvc, ""
	tpls := sts.Spec.VolumeClaimTemplates
	switch {
	case name != "":
		st.pvcSource = "from parameter pvc"
		for _, t := range tpls {
			if strings.HasPrefix(name, t.Name+"-"+sts.Name+"-") {
				volume = t.Name
			}
		}
	case len(tpls) == 1:
		ordinal := int32(0)
		if sts.Spec.Ordinals != nil {
			ordinal = sts.Spec.Ordinals.Start
		}
		volume = tpls[0].Name
		name = fmt.Sprintf("%s-%s-%d", volume, sts.Name, ordinal)
		st.pvcSource = fmt.Sprintf("volumeClaimTemplate %s, ordinal %d", volume, ordinal)
	default:
		st.refuse("it has %d volumeClaimTemplates: set pvc to the claim that holds the TSDB", len(tpls))
		return nil
	}
	for _, v := range sts.Spec.Template.Spec.Volumes {
		if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == name {
			volume = v.Name
		}
	}
	if volume != "" {
		st.mount = findMount(sts.Spec.Template.Spec.Containers, volume)
	}
	pvc, err := a.d.Kube.CoreV1().PersistentVolumeClaims(sts.Namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		st.refuse("persistentvolumeclaim %s/%s (%s) does not exist", sts.Namespace, name, st.pvcSource)
		st.pvc = &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: sts.Namespace, Name: name}}
		return nil
	case err != nil:
		return readErr(fmt.Errorf("get persistentvolumeclaim %s/%s: %w", sts.Namespace, name, err))
	}
	st.pvc = pvc
	return nil
}

// findMount returns the first container mounting volume.
func findMount(cs []corev1.Container, volume string) *podMount {
	for i := range cs {
		for _, m := range cs[i].VolumeMounts {
			if m.Name == volume {
				return &podMount{container: &cs[i], mount: m}
			}
		}
	}
	return nil
}

// readErr marks an error of a read made before anything changed as
// retryable when the API server or the network may answer better later.
func readErr(err error) error {
	if transient(err) {
		return actions.Retryable(err)
	}
	return err
}

// refused reports whether the API server answered err with a status that
// another try will not change (a 4xx but 409 Conflict and 429): the
// request was not applied. Anything else — a 5xx, a timeout, a network
// or client-side error — may have been applied, and may pass if retried.
func refused(err error) bool {
	var st apierrors.APIStatus
	return errors.As(err, &st) && !transient(err)
}

// transient reports whether err is an API server overload, a 5xx, or a
// network failure: worth another try.
func transient(err error) bool {
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		code := st.Status().Code
		return code >= 500 || code == 429 || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsConflict(err)
	}
	var ne net.Error
	return errors.As(err, &ne) || utilnet.IsConnectionRefused(err) || utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err)
}
