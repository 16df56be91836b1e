package kubesim

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	k8stesting "k8s.io/client-go/testing"
)

// User is the name the simulated API server gives the client in its 403 messages.
const User = "kubesim"

// accessRule is one Deny or Allow; "*" in a field matches anything.
type accessRule struct {
	namespace, verb, group, resource string
	names                            []string // Allow only: these objects only (RBAC resourceNames)
}

func (r accessRule) matches(ns, verb, group, resource, name string) bool {
	m := func(rule, v string) bool { return rule == "*" || rule == v }
	if !m(r.namespace, ns) || !m(r.verb, verb) || !m(r.group, group) || !m(r.resource, resource) {
		return false
	}
	if len(r.names) == 0 {
		return true
	}
	for _, n := range r.names {
		if n == name {
			return true
		}
	}
	return false
}

// Deny makes the simulated RBAC refuse verb ("get", "list", "watch", "create", "patch", ...)
// on resource ("deployments", "deployments/status"; group "apps", "" for the core group) in
// namespace ("" for cluster-scoped resources). "*" in any field matches everything, so
// Deny("*", "*", "*", "*") followed by Allow calls models a Role with exactly those rules.
// Requests are then refused with 403 Forbidden as the API server does, and
// SelfSubjectAccessReviews answer allowed=false with a reason. By default everything is
// allowed.
func (c *Cluster) Deny(namespace, verb, group, resource string) {
	c.faultMu.Lock()
	defer c.faultMu.Unlock()
	c.denied = append(c.denied, accessRule{namespace: namespace, verb: verb, group: group, resource: resource})
}

// Allow grants what a Deny refused, for every object or only the named ones (as an RBAC
// rule with resourceNames: a list, a create or a review without a name is not covered).
// Allow wins over Deny.
func (c *Cluster) Allow(namespace, verb, group, resource string, names ...string) {
	c.faultMu.Lock()
	defer c.faultMu.Unlock()
	c.allowed = append(c.allowed, accessRule{namespace: namespace, verb: verb, group: group, resource: resource, names: names})
}

// SetUnreachable makes every request, discovery included, fail as if the API server could
// not be reached (connection refused), until it is called with false.
func (c *Cluster) SetUnreachable(on bool) {
	c.faultMu.Lock()
	defer c.faultMu.Unlock()
	c.unreachable = on
}

// may decides a request as RBAC would over the Deny and Allow rules; when it refuses, it
// returns the Deny rule that did.
func (c *Cluster) may(ns, verb, group, resource, name string) (bool, *accessRule) {
	c.faultMu.Lock()
	defer c.faultMu.Unlock()
	for _, r := range c.allowed {
		if r.matches(ns, verb, group, resource, name) {
			return true, nil
		}
	}
	for i, r := range c.denied {
		if r.matches(ns, verb, group, resource, name) {
			return false, &c.denied[i]
		}
	}
	return true, nil
}

func (c *Cluster) isUnreachable() bool {
	c.faultMu.Lock()
	defer c.faultMu.Unlock()
	return c.unreachable
}

// errUnreachable is what client-go returns when nothing listens at the server address.
func errUnreachable(a k8stesting.Action) error {
	return &url.Error{Op: "Get", URL: "https://kubesim.invalid/" + a.GetResource().Resource, Err: &net.OpError{
		Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
}

// reviewGroup is the group of the access reviews: creating one asks, it changes nothing, and
// every authenticated user may (system:basic-user).
const reviewGroup = authorizationv1.GroupName

// forbidden applies the Deny and Allow rules to a request made through the clientset.
func (c *Cluster) forbidden(a k8stesting.Action) error {
	gvr := a.GetResource()
	if gvr.Group == reviewGroup || (gvr.Group == "" && gvr.Resource == "version") {
		return nil
	}
	verb := a.GetVerb()
	if verb == "delete-collection" {
		verb = "deletecollection"
	}
	resource := gvr.Resource
	if sub := a.GetSubresource(); sub != "" {
		resource += "/" + sub
	}
	name := ""
	switch x := a.(type) {
	case k8stesting.GetAction:
		name = x.GetName()
	case k8stesting.PatchAction:
		name = x.GetName()
	case k8stesting.DeleteAction:
		name = x.GetName()
	case k8stesting.WatchActionImpl: // RBAC names a list or watch of one object (metadata.name=)
		name = nameSelected(x.ListOptions.FieldSelector)
	case k8stesting.ListActionImpl:
		name = nameSelected(x.ListOptions.FieldSelector)
	}
	if ok, _ := c.may(a.GetNamespace(), verb, gvr.Group, resource, name); ok {
		return nil
	}
	return apierrors.NewForbidden(gvr.GroupResource(), name, fmt.Errorf("%s", cannot(verb, gvr.Group, resource, a.GetNamespace())))
}

func nameSelected(sel string) string {
	s, err := fields.ParseSelector(sel)
	if err != nil {
		return ""
	}
	n, _ := s.RequiresExactMatch("metadata.name")
	return n
}

// cannot is the API server's wording of a refusal.
func cannot(verb, group, resource, ns string) string {
	msg := fmt.Sprintf("User %q cannot %s resource %q in API group %q", User, verb, resource, group)
	if ns != "" {
		return msg + fmt.Sprintf(" in the namespace %q", ns)
	}
	return msg + " at the cluster scope"
}

// accessReviewReactor answers a SelfSubjectAccessReview as an API server with RBAC: the
// review comes back with its status filled in, and nothing is stored.
func (c *Cluster) accessReviewReactor(a k8stesting.Action) (bool, runtime.Object, error) {
	ca, ok := a.(k8stesting.CreateAction)
	if !ok {
		return false, nil, nil
	}
	in, ok := ca.GetObject().(*authorizationv1.SelfSubjectAccessReview)
	if !ok {
		return true, nil, apierrors.NewBadRequest(fmt.Sprintf("body is a %T, not a SelfSubjectAccessReview", ca.GetObject()))
	}
	out := in.DeepCopy()
	ra, nra := out.Spec.ResourceAttributes, out.Spec.NonResourceAttributes
	if (ra == nil) == (nra == nil) {
		return true, nil, apierrors.NewInvalid(schema.GroupKind{Group: reviewGroup, Kind: "SelfSubjectAccessReview"}, "", field.ErrorList{
			field.Invalid(field.NewPath("spec", "resourceAttributes"), ra, "exactly one of nonResourceAttributes or resourceAttributes must be specified")})
	}
	out.Status = authorizationv1.SubjectAccessReviewStatus{Allowed: true}
	if ra != nil {
		resource := ra.Resource
		if ra.Subresource != "" {
			resource += "/" + ra.Subresource
		}
		if ok, rule := c.may(ra.Namespace, ra.Verb, ra.Group, resource, ra.Name); !ok {
			out.Status = authorizationv1.SubjectAccessReviewStatus{Allowed: false,
				Reason: fmt.Sprintf("kubesim RBAC: refused by Deny(%q, %q, %q, %q)", rule.namespace, rule.verb, rule.group, rule.resource)}
		}
	}
	return true, out, nil
}

// isReview reports whether an action is an access review (a question, not a write).
func isReview(a k8stesting.Action) bool {
	return a.GetResource().Group == reviewGroup && strings.HasSuffix(a.GetResource().Resource, "accessreviews")
}
