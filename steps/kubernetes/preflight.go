package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cessda/runbook/engine"
	"github.com/hashicorp/go-multierror"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// need is one kind of request a step makes, as RBAC sees it: verb on resource (of API group
// group, "" for the core group) in the step's namespace.
type need struct {
	verb, group, resource string
	// when the step's parameters make it needed: "" always, else space-separated conditions
	// that must all hold: deployments, statefulsets (the step touches workloads of that kind;
	// a selector may match either), selector, wait (it waits for a rollout with a watch).
	when string
	// named: the request names one object, so a Role may grant it for listed resourceNames
	// only; the check then asks again for each object the step names.
	named bool
}

// needs declares every request each step type makes (read from the code, including
// kubectl's rollbacker and deploymentutil); the preflight asks the API server about each.
// Keep it in step with the code, and with the table in doc.go.
var needs = map[string][]need{
	"kubernetes.verify": {
		{"list", "apps", "deployments", "selector", false},
		{"list", "apps", "statefulsets", "selector", false},
		{"get", "apps", "deployments", "deployments", true},
		{"watch", "apps", "deployments", "deployments", true},
		{"list", "apps", "replicasets", "deployments", false}, // the newest ReplicaSet selects the current pods
		{"get", "apps", "statefulsets", "statefulsets", true},
		{"watch", "apps", "statefulsets", "statefulsets", true},
		{"get", "apps", "controllerrevisions", "statefulsets", false}, // the revision output
		{"list", "", "pods", "", false},                               // the digests the pods run
	},
	"kubernetes.snapshot": {
		{"list", "apps", "deployments", "selector", false},
		{"list", "apps", "statefulsets", "selector", false},
		{"get", "apps", "deployments", "deployments", true},
		{"watch", "apps", "deployments", "deployments wait", true}, // only with expect
		{"list", "apps", "replicasets", "deployments", false},
		{"get", "apps", "statefulsets", "statefulsets", true},
		{"watch", "apps", "statefulsets", "statefulsets wait", true},
		{"get", "apps", "controllerrevisions", "statefulsets", false},
		{"list", "", "pods", "", false},
	},
	"kubernetes.rollback": {
		{"get", "apps", "deployments", "deployments", true},
		{"watch", "apps", "deployments", "deployments", true},
		{"list", "apps", "replicasets", "deployments", false}, // the revision history
		{"patch", "apps", "deployments", "deployments", true},
		{"get", "apps", "statefulsets", "statefulsets", true},
		{"watch", "apps", "statefulsets", "statefulsets", true},
		{"list", "apps", "controllerrevisions", "statefulsets", false}, // the revision history
		{"get", "apps", "controllerrevisions", "statefulsets", false},  // the revision output
		{"patch", "apps", "statefulsets", "statefulsets", true},
	},
	"kubernetes.backup_job": {
		{"get", "batch", "cronjobs", "", true},
		{"get", "batch", "jobs", "", true}, // this run's Job, if an earlier attempt made it
		{"create", "batch", "jobs", "", false},
		{"watch", "batch", "jobs", "", true},
	},
}

// Need is one kind of request a step type may make, as RBAC sees it: Verb on Resource of
// API group Group ("" for the core group), in the step's namespace.
type Need struct{ Verb, Group, Resource string }

// Needs lists every request the Kubernetes step type stepType may make, whatever its
// parameters: what a Role must grant in the namespaces its steps name (see
// examples/kubernetes/, checked against this list).
func Needs(stepType string) []Need {
	var out []Need
	for _, n := range needs[stepType] {
		out = append(out, Need{Verb: n.verb, Group: n.group, Resource: n.resource})
	}
	return out
}

var (
	_ engine.Preflighter = (*Verify)(nil)
	_ engine.Preflighter = (*Snapshot)(nil)
	_ engine.Preflighter = (*Rollback)(nil)
	_ engine.Preflighter = (*BackupJob)(nil)
)

// scope is what a step's parameters say it will touch.
type scope struct {
	namespace string              // "" when not known before the run: only the context is checked
	on        map[string]bool     // the conditions of need.when that hold
	names     map[string][]string // resource -> every object of it the step names, when all are known
}

func (s scope) holds(when string) bool {
	for _, c := range strings.Fields(when) {
		if !s.on[c] {
			return false
		}
	}
	return true
}

// knownNames are the names a list parameter holds, or nil when any is not known yet.
func knownNames(sc *engine.StepContext, param string, names []string) []string {
	if sc.Unknown(param) || len(names) == 0 {
		return nil
	}
	for _, n := range names {
		if n == "" { // an element rendered from an unknown output
			return nil
		}
	}
	return names
}

func knownNamespace(sc *engine.StepContext, ns string) string {
	if sc.Unknown("namespace") {
		return ""
	}
	return ns
}

// workloadScope is the scope of verify and snapshot.
func workloadScope(sc *engine.StepContext, ns string, deployments, statefulsets []string, selector string, wait bool) scope {
	sel := selector != "" || sc.Unknown("selector")
	s := scope{namespace: knownNamespace(sc, ns), names: map[string][]string{}, on: map[string]bool{
		"selector":     sel,
		"deployments":  sel || len(deployments) > 0 || sc.Unknown("deployments"),
		"statefulsets": sel || len(statefulsets) > 0 || sc.Unknown("statefulsets"),
		"wait":         wait,
	}}
	if !sel { // selected workloads have no names before the run
		s.names["deployments"] = knownNames(sc, "deployments", deployments)
		s.names["statefulsets"] = knownNames(sc, "statefulsets", statefulsets)
	}
	return s
}

// Preflight checks that the kube context answers and allows every request verify makes.
func (p *Verify) Preflight(ctx context.Context, sc *engine.StepContext) error {
	return preflight(ctx, sc, "kubernetes.verify", p.Connection,
		workloadScope(sc, p.Namespace, p.Deployments, p.StatefulSets, p.Selector, true))
}

// Preflight checks that the kube context answers and allows every request snapshot makes.
func (p *Snapshot) Preflight(ctx context.Context, sc *engine.StepContext) error {
	return preflight(ctx, sc, "kubernetes.snapshot", p.Connection,
		workloadScope(sc, p.Namespace, p.Deployments, p.StatefulSets, p.Selector, p.Expect != nil || sc.Unknown("expect")))
}

// Preflight checks that the kube context answers and allows the rollback's patch and reads.
func (p *Rollback) Preflight(ctx context.Context, sc *engine.StepContext) error {
	kind := strings.ToLower(p.kind()) + "s"
	s := scope{namespace: knownNamespace(sc, p.Namespace), names: map[string][]string{}, on: map[string]bool{
		"statefulsets": kind == "statefulsets" || sc.Unknown("kind"),
		"deployments":  kind == "deployments" || sc.Unknown("kind"),
	}}
	if !sc.Unknown("name") && !sc.Unknown("kind") && p.Name != "" {
		s.names[kind] = []string{p.Name}
	}
	return preflight(ctx, sc, "kubernetes.rollback", p.Connection, s)
}

// Preflight checks that the kube context answers and allows reading the CronJob and
// creating and following the Job.
func (p *BackupJob) Preflight(ctx context.Context, sc *engine.StepContext) error {
	s := scope{namespace: knownNamespace(sc, p.Namespace), names: map[string][]string{}}
	if !sc.Unknown("cronjob") && p.CronJob != "" {
		s.names["cronjobs"] = []string{p.CronJob}
	}
	if p.JobName != "" && !sc.Unknown("job_name") { // a generated name is in no Role
		s.names["jobs"] = []string{p.JobName}
	}
	return preflight(ctx, sc, "kubernetes.backup_job", p.Connection, s)
}

// preflightTimeout bounds each request of a preflight: the config has no client timeout
// (watches are long), and a black-holed server must not hang the run's start.
const preflightTimeout = 20 * time.Second

// preflight checks the connection's context, then asks for every need of the step type
// that its scope makes needed, and reports each refusal on its own.
func preflight(ctx context.Context, sc *engine.StepContext, stepType, connName string, s scope) error {
	conn, err := sc.Connection(connName, ConnectionType)
	if err != nil {
		return err
	}
	label := fmt.Sprintf("connection %q (%s)", conn.Name, contextOf(conn))
	if err := sc.Once("kubernetes/"+conn.Name+"/context", func() error { return checkContext(ctx, conn, label) }); err != nil {
		return err
	}
	if s.namespace == "" {
		return nil
	}
	cs, _, err := client(conn)
	if err != nil {
		return err
	}
	ask := func(n need, name string) error {
		key := strings.Join([]string{"kubernetes", conn.Name, "can-i", s.namespace, n.verb, n.group, n.resource, name}, "/")
		return sc.Once(key, func() error { return canI(ctx, cs, s.namespace, n.verb, n.group, n.resource, name) })
	}
	var errs *multierror.Error
	for _, n := range needs[stepType] {
		if !s.holds(n.when) {
			continue
		}
		err := ask(n, "")
		var d *denial
		if !errors.As(err, &d) {
			if err != nil { // the review itself failed: the next ones would too
				return multierror.Append(errs, fmt.Errorf("%s: cannot ask the API server whether it may %s %s in namespace %s: %v",
					label, n.verb, resourceName(n.group, n.resource), s.namespace, err)).ErrorOrNil()
			}
			continue
		}
		objects := s.names[n.resource]
		if n.named && len(objects) > 0 { // granted for these objects only is enough
			var refused []string
			for _, name := range objects {
				switch e := ask(n, name); {
				case errors.As(e, &d):
					refused = append(refused, fmt.Sprintf("%q", name))
				case e != nil:
					return multierror.Append(errs, fmt.Errorf("%s: cannot ask the API server whether it may %s %s %q in namespace %s: %v",
						label, n.verb, resourceName(n.group, n.resource), name, s.namespace, e)).ErrorOrNil()
				}
			}
			if len(refused) == 0 {
				continue
			}
			objects = refused
		}
		what := resourceName(n.group, n.resource)
		if n.named && len(objects) > 0 {
			what += " " + strings.Join(objects, ", ")
		}
		msg := fmt.Sprintf("%s: may not %s %s in namespace %s (needed by %s); grant it in the Role bound to this user", label, n.verb, what, s.namespace, stepType)
		if d.reason != "" {
			msg += " (the server says: " + d.reason + ")"
		}
		errs = multierror.Append(errs, errors.New(msg))
	}
	return errs.ErrorOrNil()
}

// denial is a SelfSubjectAccessReview's "no": an error so that sc.Once can keep it.
type denial struct{ reason string }

func (d *denial) Error() string { return "not allowed: " + d.reason }

// canI is `kubectl auth can-i VERB RESOURCE[.GROUP] [NAME] -n NS`: nil when allowed, a
// *denial when not, another error when the review could not be made.
func canI(ctx context.Context, cs kubernetes.Interface, ns, verb, group, resource, name string) error {
	ctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()
	r, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: ns, Verb: verb, Group: group, Resource: resource, Name: name}},
	}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	if !r.Status.Allowed || r.Status.Denied {
		return &denial{reason: strings.TrimSpace(strings.Join(nonEmpty(r.Status.Reason, r.Status.EvaluationError), "; "))}
	}
	return nil
}

func nonEmpty(s ...string) []string {
	var out []string
	for _, v := range s {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// resourceName is how kubectl names a resource: deployments.apps, pods.
func resourceName(group, resource string) string {
	if group == "" {
		return resource
	}
	return resource + "." + group
}

// checkContext loads the connection's config and asks the server its version, the lightest
// request every user may make.
func checkContext(ctx context.Context, conn *engine.Connection, label string) error {
	cs, _, err := client(conn)
	if err != nil {
		return err // RESTConfig's message names the connection, the context and what to check
	}
	ctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()
	_, err = discovery.ToServerVersionInterfaceWithContext(cs.Discovery()).ServerVersionWithContext(ctx)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled):
		return err
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%s: the API server does not accept the context's credentials (401 Unauthorized): refresh them (e.g. gcloud container clusters get-credentials) or fix the context's user", label)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s: the API server refuses even its version (403 Forbidden): %v: check the context's user", label, err)
	}
	return fmt.Errorf("%s: the API server does not answer: %v: check that the cluster is reachable from here (VPN, firewall, authorised networks) and the server address of the context", label, err)
}

// contextOf names the kube context a connection uses, for messages: its context setting,
// else the kubeconfig's current context.
func contextOf(conn *engine.Connection) string {
	if c := conn.Setting("context", ""); c != "" {
		return "context " + c
	}
	if conn.Client != nil {
		return "injected client"
	}
	if conn.Setting("in_cluster", "false") == "true" {
		return "in-cluster service account"
	}
	rules, overrides := kubeconfigRules(conn)
	if raw, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).RawConfig(); err == nil && raw.CurrentContext != "" {
		return "context " + raw.CurrentContext
	}
	return "current context"
}
