package promwal

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	clientprom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/ha"
	"github.com/selfheal/selfheal/kubeevents"
)

// These tests run kubernetes mode against the real kube-apiserver of
// e2e/k8slab, with kube-controller-manager (StatefulSet, Job, garbage
// collector, PV binder), kube-scheduler and kwok, a fake kubelet that makes
// pods Running and Ready, finishes graceful deletions and completes Job
// pods with exit 0 (its pod-complete stage). The action runs as the lab's
// restricted user, bound to a Role made of RBACRules only. Nothing runs
// selfheal in the Job's pod (kwok has no containers), and kwok serves no
// logs, so these tests check the orchestration, not the move: the core is
// tested on real directories elsewhere.

func TestKubeLabQuarantineJob(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		o    labOptions
		want []string
	}{
		{"operator", labOptions{}, []string{
			"prometheus paused=true", "statefulset replicas=0", "pod prometheus-main-0 deleted",
			"job created", "job Complete", "statefulset replicas=1", "prometheus paused=false",
		}},
		{"operator already paused", labOptions{paused: true}, []string{
			"statefulset replicas=0", "pod prometheus-main-0 deleted", "job created", "job Complete", "statefulset replicas=1",
		}},
		{"no operator", labOptions{noOperator: true}, []string{
			"statefulset replicas=0", "pod prometheus-main-0 deleted", "job created", "job Complete", "statefulset replicas=1",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newLabCluster(t, tc.o)
			d := c.restrictedDeps(t)
			a, err := New(kubeParams(labSts, func(p *Params) { p.MinWALBytes = 1 << 20 }), d)
			require.NoError(t, err)

			before, err := c.admin.AppsV1().StatefulSets(c.ns).Get(context.Background(), labSts, metav1.GetOptions{})
			require.NoError(t, err)
			plan, err := a.Plan(context.Background(), c.target())
			require.NoError(t, err)
			after, err := c.admin.AppsV1().StatefulSets(c.ns).Get(context.Background(), labSts, metav1.GetOptions{})
			require.NoError(t, err)
			require.Equal(t, before.Generation, after.Generation, "plan changes nothing")
			require.False(t, strings.HasPrefix(plan.Summary, "refuse"), plan.Summary)

			rec := c.record(t)
			start := time.Now()
			res, err := a.Run(context.Background(), c.target())
			t.Logf("run took %s; steps:\n%s", time.Since(start).Round(time.Millisecond), res.Details["steps"])
			require.NoError(t, err)
			rec.requireOrder(t, tc.want, nil)
			c.requireRestored(t, tc.o.paused)

			// The Job is the one the plan showed.
			jobs, err := c.admin.BatchV1().Jobs(c.ns).List(context.Background(), metav1.ListOptions{})
			require.NoError(t, err)
			require.Len(t, jobs.Items, 1)
			job := jobs.Items[0]
			require.Equal(t, c.ns+"/"+job.Name, res.Details["job"])
			spec := job.Spec.Template.Spec
			require.Equal(t, []string{"selfheal", "wal-quarantine", "--data-dir=/prometheus/prometheus-db", "--quarantine-dir=/prometheus/selfheal-quarantine", "--min-wal-bytes=1048576"}, spec.Containers[0].Command)
			require.Equal(t, testImage, spec.Containers[0].Image)
			require.Equal(t, "prometheus-main-db-prometheus-main-0", spec.Volumes[0].PersistentVolumeClaim.ClaimName)
			require.Equal(t, "/prometheus", spec.Containers[0].VolumeMounts[0].MountPath)
			require.EqualValues(t, 1000, *spec.SecurityContext.RunAsUser)
			require.EqualValues(t, 2000, *spec.SecurityContext.FSGroup)
			require.EqualValues(t, 0, *job.Spec.BackoffLimit)
			require.EqualValues(t, 600, *job.Spec.ActiveDeadlineSeconds)
			require.EqualValues(t, 86400, *job.Spec.TTLSecondsAfterFinished)
			require.Contains(t, plan.Details, "job: "+jobJSON(a.buildJob(&kubeState{
				target: kubeTarget{namespace: c.ns, statefulSet: labSts}, sts: before, replicas: 1,
				pvc:   &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "prometheus-main-db-prometheus-main-0"}},
				mount: findMount(before.Spec.Template.Spec.Containers, "prometheus-main-db"),
			}, c.target())))

			require.Equal(t, "Complete: CompletionsReached: Reached expected number of succeeded pods", res.Details["job_status"])
			require.Equal(t, c.ns+"/"+labSts, res.Details["statefulset"])
			require.Equal(t, "1", res.Details["replicas"])
			require.Contains(t, res.Details["ready"], "statefulset "+c.ns+"/prometheus-main: 1/1 pods Ready after ")
			// kwok serves no logs, so the manifest is not read; a kubelet would serve it.
			require.True(t, res.Details["job_log"] != "" || res.Details["quarantine_path"] != "", "%v", res.Details)
			require.Contains(t, res.Summary, "back at 1 replicas")
			got := steps(res)
			require.True(t, strings.HasPrefix(got[len(got)-1], "statefulset "+c.ns+"/prometheus-main: 1/1 pods Ready after "), got)
			c.requireStatefulSetEvent(t, res, before.UID)
		})
	}
}

// requireStatefulSetEvent: the run reports the StatefulSet it scaled as
// touched, and the Event the engine's Notifier posts for it lands on the
// StatefulSet in the real API server.
func (c *labCluster) requireStatefulSetEvent(t *testing.T, res actions.Result, uid types.UID) {
	t.Helper()
	sts := actions.ObjectRef{APIVersion: "apps/v1", Kind: "StatefulSet", Namespace: c.ns, Name: labSts, UID: string(uid)}
	require.Contains(t, res.Touched, sts)
	rec := ha.Record{ID: "prometheus-oom/x", Playbook: "prometheus-oom", State: ha.Succeeded, Steps: []ha.StepRecord{
		{Name: "drop-head", Action: ID, State: ha.Succeeded, Details: map[string]string{actions.TouchedKey: actions.FormatTouched(res.Touched)}},
	}}
	kubeevents.New(c.admin, kubeevents.Options{Instance: "selfheal-0", Registerer: clientprom.NewPedanticRegistry()}).RunFinished(rec)
	evs, err := c.admin.CoreV1().Events(c.ns).List(context.Background(), metav1.ListOptions{
		FieldSelector: "involvedObject.uid=" + string(uid) + ",reason=" + kubeevents.Reason})
	require.NoError(t, err)
	require.Len(t, evs.Items, 1)
	require.Equal(t, "playbook prometheus-oom (run prometheus-oom/x): succeeded", evs.Items[0].Message)
}

func TestKubeLabFailuresScaleBack(t *testing.T) {
	t.Parallel()
	full := []string{"prometheus paused=true", "statefulset replicas=0", "pod prometheus-main-0 deleted", "job created"}
	for _, tc := range []struct {
		name    string
		set     func(p *Params)
		prepare func(t *testing.T, c *labCluster, ctx *context.Context)
		want    []string
		keep    func(string) bool
		errs    []string
	}{
		{
			name:    "job fails",
			set:     func(p *Params) { p.JobTimeout = model.Duration(2 * time.Second) },
			prepare: func(t *testing.T, c *labCluster, _ *context.Context) { c.denyJobPods(t) },
			want:    append(slices.Clone(full), "job Failed", "statefulset replicas=1", "prometheus paused=false"),
			errs:    []string{"failed: DeadlineExceeded: Job was active longer than specified deadline"},
		},
		{
			name: "job rejected",
			prepare: func(t *testing.T, c *labCluster, _ *context.Context) {
				q := &corev1.ResourceQuota{
					ObjectMeta: metav1.ObjectMeta{Name: "no-jobs"},
					Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"count/jobs.batch": resource.MustParse("0")}},
				}
				_, err := c.admin.CoreV1().ResourceQuotas(c.ns).Create(context.Background(), q, metav1.CreateOptions{})
				require.NoError(t, err)
				require.Eventually(t, func() bool {
					q, err := c.admin.CoreV1().ResourceQuotas(c.ns).Get(context.Background(), "no-jobs", metav1.GetOptions{})
					return err == nil && len(q.Status.Hard) > 0
				}, 20*time.Second, 50*time.Millisecond)
			},
			want: []string{"prometheus paused=true", "statefulset replicas=0", "pod prometheus-main-0 deleted", "statefulset replicas=1", "prometheus paused=false"},
			errs: []string{"create job t-", "/prometheus-main-wal-quarantine-", "exceeded quota: no-jobs"},
		},
		{
			name: "run cancelled while the job waits",
			set:  func(p *Params) { p.JobTimeout = model.Duration(time.Minute) },
			prepare: func(t *testing.T, c *labCluster, ctx *context.Context) {
				c.denyJobPods(t)
				cctx, cancel := context.WithCancel(context.Background())
				t.Cleanup(cancel)
				*ctx = cctx
				go func() { // the engine's timeout, or a shutdown, while the Job waits
					defer cancel()
					for cctx.Err() == nil {
						if jobs, err := c.admin.BatchV1().Jobs(c.ns).List(cctx, metav1.ListOptions{}); err == nil && len(jobs.Items) > 0 {
							time.Sleep(300 * time.Millisecond)
							return
						}
						time.Sleep(20 * time.Millisecond)
					}
				}()
			},
			want: append(slices.Clone(full), "job deleted", "statefulset replicas=1", "prometheus paused=false"),
			errs: []string{"wait for job ", "context canceled"},
		},
		{
			name: "pod does not go",
			set:  func(p *Params) { p.PodGoneTimeout = model.Duration(time.Second) },
			prepare: func(t *testing.T, c *labCluster, _ *context.Context) {
				// A finalizer keeps the terminating pod; the test lifts it
				// once the StatefulSet is scaled back, as a kubelet that
				// finally answers would.
				hold := func(fin string) {
					patch := fmt.Sprintf(`{"metadata":{"finalizers":%s}}`, fin)
					_, err := c.admin.CoreV1().Pods(c.ns).Patch(context.Background(), labSts+"-0", types.MergePatchType, []byte(patch), metav1.PatchOptions{})
					if !apierrors.IsNotFound(err) {
						require.NoError(t, err)
					}
				}
				hold(`["selfheal.test/hold"]`)
				t.Cleanup(func() { hold("null") })
				go func() {
					for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
						s, err := c.admin.AppsV1().StatefulSets(c.ns).Get(context.Background(), labSts, metav1.GetOptions{})
						if err == nil && *s.Spec.Replicas == 1 && s.Generation > c.sts.Generation {
							break
						}
					}
					patch := []byte(`{"metadata":{"finalizers":null}}`)
					_, _ = c.admin.CoreV1().Pods(c.ns).Patch(context.Background(), labSts+"-0", types.MergePatchType, patch, metav1.PatchOptions{})
				}()
			},
			want: []string{"prometheus paused=true", "statefulset replicas=0", "statefulset replicas=1", "prometheus paused=false"},
			keep: func(s string) bool { return !strings.HasPrefix(s, "pod ") },
			errs: []string{"wait for the pods of statefulset ", "the statefulset's pods are still there after ", "pods: prometheus-main-0 (terminating)"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newLabCluster(t, labOptions{})
			d := c.restrictedDeps(t)
			a, err := New(kubeParams(labSts, func(p *Params) {
				p.ReadyTimeout = model.Duration(30 * time.Second)
				if tc.set != nil {
					tc.set(p)
				}
			}), d)
			require.NoError(t, err)
			ctx := context.Background()
			tc.prepare(t, c, &ctx)

			rec := c.record(t)
			start := time.Now()
			res, err := a.Run(ctx, c.target())
			t.Logf("run took %s; err: %v; steps:\n%s", time.Since(start).Round(time.Millisecond), err, res.Details["steps"])
			require.Error(t, err)
			for _, e := range tc.errs {
				require.ErrorContains(t, err, e)
			}
			require.False(t, actions.IsRetryable(err), "after a change, failures are permanent")
			rec.requireOrder(t, tc.want, tc.keep)
			c.requireRestored(t, false)
			got := steps(res)
			require.Contains(t, got, fmt.Sprintf("scaled statefulset %s/prometheus-main back to 1 replicas", c.ns))
			require.Contains(t, got, fmt.Sprintf("unpaused prometheus %s/main", c.ns))
			require.Contains(t, res.Summary, "back at 1 replicas")
			if ctx.Err() == nil {
				c.waitReady(t, 1)
			}
		})
	}
}
