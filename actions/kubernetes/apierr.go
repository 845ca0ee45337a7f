package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/selfheal/selfheal/actions"
)

// call is one request to the API server: what RBAC sees (verb, group,
// resource, subresource, namespace) and what goes over the wire. It names
// requests in plans, results and errors.
type call struct {
	verb      string // the RBAC verb: get, list, create, delete, patch, update
	group     string // "" for the core group
	version   string
	resource  string // plural: pods, deployments
	sub       string // subresource: eviction, scale
	namespace string
	name      string
}

// podCall is a request on a pod (or one of its subresources).
func podCall(verb, sub, ns, name string) call {
	return call{verb: verb, version: "v1", resource: "pods", sub: sub, namespace: ns, name: name}
}

// appsCall is a request on an apps/v1 resource.
func appsCall(verb, resource, sub, ns, name string) call {
	return call{verb: verb, group: "apps", version: "v1", resource: resource, sub: sub, namespace: ns, name: name}
}

var methods = map[string]string{
	"get": http.MethodGet, "list": http.MethodGet, "create": http.MethodPost,
	"delete": http.MethodDelete, "patch": http.MethodPatch, "update": http.MethodPut,
}

// String is the HTTP request: "POST /api/v1/namespaces/web/pods/web-0/eviction".
func (c call) String() string {
	var b strings.Builder
	b.WriteString(methods[c.verb])
	if c.group == "" {
		b.WriteString(" /api/" + c.version)
	} else {
		b.WriteString(" /apis/" + c.group + "/" + c.version)
	}
	if c.namespace != "" {
		b.WriteString("/namespaces/" + c.namespace)
	}
	b.WriteString("/" + c.resource)
	if c.name != "" {
		b.WriteString("/" + c.name)
	}
	if c.sub != "" {
		b.WriteString("/" + c.sub)
	}
	return b.String()
}

// rbacResource is the resource as a Role names it: "pods/eviction".
func (c call) rbacResource() string {
	if c.sub != "" {
		return c.resource + "/" + c.sub
	}
	return c.resource
}

// ForbiddenError is an RBAC denial, saying which permission is missing. It
// matches ErrForbidden with errors.Is and unwraps to the API server's error.
type ForbiddenError struct {
	// Verb, Group, Resource ("pods/eviction") and Namespace are what a Role
	// rule must grant.
	Verb, Group, Resource, Namespace string
	// User is the user the API server denied, when it said.
	User string
	// Err is the API server's error.
	Err error
}

// Error reads "forbidden: needs verb create on resource pods/eviction in
// namespace web (user "selfheal"; Role rule: apiGroups [""], resources
// ["pods/eviction"], verbs ["create"])". The resource is written
// group/resource, without a group for the core group.
func (e *ForbiddenError) Error() string {
	res := e.Resource
	if e.Group != "" {
		res = e.Group + "/" + e.Resource
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: needs verb %s on resource %s", ErrForbidden, e.Verb, res)
	if e.Namespace != "" {
		fmt.Fprintf(&b, " in namespace %s", e.Namespace)
	} else {
		b.WriteString(" cluster-wide")
	}
	b.WriteString(" (")
	if e.User != "" {
		fmt.Fprintf(&b, "user %q; ", e.User)
	}
	fmt.Fprintf(&b, "Role rule: apiGroups [%q], resources [%q], verbs [%q])", e.Group, e.Resource, e.Verb)
	return b.String()
}

// Unwrap returns ErrForbidden and the API server's error.
func (e *ForbiddenError) Unwrap() []error { return []error{ErrForbidden, e.Err} }

// rbacDenied matches the RBAC authorizer's reason, as the API server words
// it: `User "u" cannot create resource "pods/eviction" in API group "" in
// the namespace "web"`.
var rbacDenied = regexp.MustCompile(`User "([^"]*)" cannot (\S+) resource "([^"]+)" in API group "([^"]*)"(?: in the namespace "([^"]*)")?`)

// forbidden turns a 403 into a *ForbiddenError when it is an authorization
// denial of c: what the server says it denied, else c itself. A 403 for
// another reason (an eviction refused because a budget's
// disruptionsAllowed is negative, a namespace being terminated) is not an
// RBAC problem and returns nil.
func (c call) forbidden(err error) *ForbiddenError {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return nil
	}
	msg := status.Status().Message
	if m := rbacDenied.FindStringSubmatch(msg); m != nil {
		return &ForbiddenError{User: m[1], Verb: m[2], Resource: m[3], Group: m[4], Namespace: m[5], Err: err}
	}
	// Other authorizers (a webhook) word it their own way; if the denial is
	// about the resource we asked for, it is ours.
	d := status.Status().Details
	if d != nil && d.Group == c.group && d.Kind == c.resource && !strings.Contains(msg, "disruption") &&
		!strings.Contains(msg, "being terminated") {
		return &ForbiddenError{Verb: c.verb, Group: c.group, Resource: c.rbacResource(), Namespace: c.namespace, Err: err}
	}
	return nil
}

// check turns the error of c into the error a step reports: nil stays nil;
// an RBAC denial is a *ForbiddenError; what can succeed when tried again
// (429, 5xx, timeouts, conflicts, transport errors) is actions.Retryable;
// the rest is permanent. Every error names the request.
func (c call) check(err error) error {
	if err == nil {
		return nil
	}
	if apierrors.IsForbidden(err) {
		if f := c.forbidden(err); f != nil {
			return f
		}
		return fmt.Errorf("%s: %w", c, err)
	}
	wrapped := fmt.Errorf("%s: %w", c, err)
	if retryable(err) {
		return actions.Retryable(wrapped)
	}
	return wrapped
}

// retryable reports whether trying the request again can succeed.
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return true // transport: connection refused or reset, TLS handshake timeout, EOF
	}
	switch {
	case apierrors.IsTooManyRequests(err), apierrors.IsServerTimeout(err), apierrors.IsTimeout(err),
		apierrors.IsServiceUnavailable(err), apierrors.IsInternalError(err), apierrors.IsUnexpectedServerError(err),
		apierrors.IsConflict(err):
		return true
	}
	return status.Status().Code >= 500
}

// causes joins the causes an API error carries, such as the budget an
// eviction would violate ("The disruption budget web needs 2 healthy pods
// and has 2 currently"), which its message leaves out.
func causes(err error) string {
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Details == nil {
		return ""
	}
	var out []string
	for _, c := range status.Status().Details.Causes {
		if c.Message != "" {
			out = append(out, c.Message)
		}
	}
	return strings.Join(out, "; ")
}
