package actions

import (
	"fmt"
	"strings"
)

// ObjectRef names an object an action changed, as a Kubernetes Event's
// involvedObject names it: a pod it evicted, the Deployment it patched, the
// StatefulSet it scaled.
type ObjectRef struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Namespace is empty for a cluster-scoped object.
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// UID is the object's metadata.uid; empty when not known.
	UID string `json:"uid,omitempty"`
}

// TouchedKey is the step detail under which the engine records the objects
// a step's Result.Touched named, one per line (FormatTouched), so that they
// outlive the process: a run that verifies, or is taken over, for an hour
// still knows them when it ends. Actions do not set it themselves.
const TouchedKey = "touched"

// String is "apps/v1 Deployment shop/web 3f1c…", the line FormatTouched
// writes; "-" stands for an unknown UID, and a cluster-scoped object has
// no "namespace/".
func (r ObjectRef) String() string {
	name := r.Name
	if r.Namespace != "" {
		name = r.Namespace + "/" + r.Name
	}
	uid := r.UID
	if uid == "" {
		uid = "-"
	}
	return r.APIVersion + " " + r.Kind + " " + name + " " + uid
}

// FormatTouched is refs one per line, each once, in their order.
func FormatTouched(refs []ObjectRef) string {
	var lines []string
	seen := map[string]bool{}
	for _, r := range refs {
		if s := r.String(); !seen[s] {
			seen[s] = true
			lines = append(lines, s)
		}
	}
	return strings.Join(lines, "\n")
}

// ParseTouched reads what FormatTouched wrote. A line it cannot read is an
// error; the lines before it are returned.
func ParseTouched(s string) ([]ObjectRef, error) {
	var refs []ObjectRef
	for line := range strings.SplitSeq(s, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 4 {
			return refs, fmt.Errorf("touched object %q: want \"apiVersion kind [namespace/]name uid\"", line)
		}
		r := ObjectRef{APIVersion: f[0], Kind: f[1], Name: f[2], UID: f[3]}
		if ns, name, ok := strings.Cut(f[2], "/"); ok {
			r.Namespace, r.Name = ns, name
		}
		if r.UID == "-" {
			r.UID = ""
		}
		if r.Name == "" {
			return refs, fmt.Errorf("touched object %q: no name", line)
		}
		refs = append(refs, r)
	}
	return refs, nil
}
