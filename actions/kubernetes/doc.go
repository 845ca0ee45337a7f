// Package kubernetes implements the Kubernetes actions: kubernetes.restart,
// kubernetes.scale and kubernetes.set_resources.
package kubernetes

import (
	_ "k8s.io/client-go/kubernetes"
	_ "k8s.io/client-go/kubernetes/fake"
	_ "k8s.io/client-go/tools/clientcmd"
)
