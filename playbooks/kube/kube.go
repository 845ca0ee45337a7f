// Package kube loads playbooks from Kubernetes ConfigMaps: a label-filtered
// informer keeps them current in the daemon, and ParseManifest checks
// ConfigMap manifests before they are applied. Every data key ending in
// .yaml or .yml is a playbook file named configmap/<ns>/<name>/<key>.
package kube

import (
	"path"
	"strings"
)

// IsPlaybookKey reports whether a ConfigMap data key holds a playbook file.
func IsPlaybookKey(key string) bool {
	ext := path.Ext(key)
	return ext == ".yaml" || ext == ".yml"
}

// Owner names a ConfigMap as the owner of its playbook sources:
// configmap/<ns>/<name>.
func Owner(namespace, name string) string {
	return "configmap/" + namespace + "/" + name
}

// Source names one playbook file of a ConfigMap:
// configmap/<ns>/<name>/<key>.
func Source(namespace, name, key string) string {
	return Owner(namespace, name) + "/" + key
}

// IsSource reports whether source names a ConfigMap key.
func IsSource(source string) bool {
	return strings.HasPrefix(source, "configmap/")
}
