// Package kubernetes owns the Kubernetes actions, built on client-go:
//
//   - kubernetes.restart restarts the pod an alert names: mode evict goes
//     through the Eviction API (policy/v1), so PodDisruptionBudgets hold and
//     a budget that blocks is waited out with backoff until the step's
//     timeout; mode delete deletes the pod with a UID precondition, so a
//     replacement that took the same name (a StatefulSet pod) is never
//     deleted; mode rollout sets the kubectl.kubernetes.io/restartedAt
//     annotation on the pod template of the owning Deployment, StatefulSet
//     or DaemonSet, exactly as `kubectl rollout restart` does.
//   - kubernetes.scale sets the replicas of a Deployment or StatefulSet
//     through its scale subresource.
//   - kubernetes.set_resources raises a container's memory limit (and
//     optionally its request) on the pod template of the workload that owns
//     a pod: the lossless way out of a Prometheus that is OOM-killed while it
//     replays its write-ahead log.
//
// Guards that protect production live here: pods without a controller are
// refused unless a step allows them; a paused Deployment is never
// restarted or changed; a rollout restart of a workload whose
// updateStrategy is OnDelete is refused (the patch would restart nothing);
// scaling to zero needs allow_zero; memory can only grow unless a step says
// otherwise, and never past max_memory_limit; workloads managed by another
// controller (an operator's custom resource) are not scaled or changed,
// because that controller would revert the change. Every object found by
// following ownerReferences is checked against the reference's UID, and
// every eviction, delete and patch carries a precondition on the UID that
// was read, so an object deleted and recreated under the same name in
// between is never touched (a scale goes by name, with the
// resourceVersion it read).
//
// Plan only reads (get and list): the pod, its owners and, for evictions,
// the PodDisruptionBudgets with the disruptions they allow now. It names
// the exact request Run would send.
//
// An API error becomes an actions.Retryable error when trying again can
// succeed (429, 5xx, timeouts, transport errors, optimistic-concurrency
// conflicts). An RBAC denial becomes a *ForbiddenError whose message names
// what is missing: "forbidden: needs verb create on resource pods/eviction
// in namespace web".
//
// # RBAC
//
// The minimal namespaced Role rules, per action (a ClusterRole bound per
// namespace, or cluster-wide, works the same way). The file
// examples/kubernetes/rbac-actions.yaml holds them as manifests.
//
// kubernetes.restart, mode evict:
//
//	apiGroups: [""]        resources: [pods]                    verbs: [get]
//	apiGroups: [""]        resources: [pods/eviction]           verbs: [create]
//	apiGroups: [policy]    resources: [poddisruptionbudgets]    verbs: [list]   # Plan only
//
// kubernetes.restart, mode delete:
//
//	apiGroups: [""]        resources: [pods]                    verbs: [get, delete]
//
// kubernetes.restart, mode rollout:
//
//	apiGroups: [""]        resources: [pods]                    verbs: [get]    # when a pod is named
//	apiGroups: [apps]      resources: [replicasets]             verbs: [get]    # pod → ReplicaSet → Deployment
//	apiGroups: [apps]      resources: [deployments, statefulsets, daemonsets]  verbs: [get, patch]
//
// kubernetes.scale:
//
//	apiGroups: [apps]      resources: [deployments, statefulsets]              verbs: [get]
//	apiGroups: [apps]      resources: [deployments/scale, statefulsets/scale]  verbs: [get, update]
//
// kubernetes.set_resources:
//
//	apiGroups: [""]        resources: [pods]                    verbs: [get]    # when a pod is named
//	apiGroups: [apps]      resources: [replicasets]             verbs: [get]
//	apiGroups: [apps]      resources: [deployments, statefulsets, daemonsets]  verbs: [get, patch]
//
// No action lists or watches pods; none needs a cluster-scoped permission.
package kubernetes
