package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/cessda/runbook/engine"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// ConnectionType is the connection type of every step in this package.
const ConnectionType = "kubernetes"

func init() {
	engine.RegisterConnectionType(engine.ConnectionType{
		Name:    ConnectionType,
		Summary: "a Kubernetes cluster, reached through a kubeconfig context (staging-cluster, production-cluster) or in-cluster config",
		Settings: map[string]string{
			"kubeconfig": "path of the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)",
			"context":    "kubeconfig context to use, e.g. staging-cluster or production-cluster (default: the file's current context)",
			"in_cluster": `"true" to use the service account of the pod runbook runs in instead of a kubeconfig`,
			// How a rehearsal tells production from staging (steps/rehearsal/production.go).
			"environment": "what the cluster serves, e.g. staging or production (a rehearsal starts a production cluster on the previous release)",
		},
	})
}

// client returns the clientset for conn: the injected one (rehearsal, tests), else one built
// from RESTConfig. The credentials stay in the kubeconfig; nothing secret passes through
// runbook.
func client(conn *engine.Connection) (kubernetes.Interface, string, error) {
	cs, ok, err := engine.Injected[kubernetes.Interface](conn)
	if err != nil {
		return nil, "", fmt.Errorf("kubernetes: %w", err)
	}
	if ok {
		return cs, "injected client", nil
	}
	cfg, where, err := RESTConfig(conn)
	if err != nil {
		return nil, "", err
	}
	cs, err = kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("kubernetes: connection %q: %v", conn.Name, err)
	}
	return cs, where, nil
}

// RESTConfig is the client configuration of a kubernetes connection: in-cluster config
// (setting in_cluster "true"), or the kubeconfig file (setting kubeconfig, else
// $KUBECONFIG or ~/.kube/config, else the pod's service account) and its context. It
// also says where it points, for messages. Runbook's own Kubernetes state backend uses it
// too, so a cluster is reached the same way everywhere.
func RESTConfig(conn *engine.Connection) (*rest.Config, string, error) {
	var cfg *rest.Config
	var where string
	if conn.Setting("in_cluster", "false") == "true" {
		c, err := rest.InClusterConfig()
		if err != nil {
			return nil, "", fmt.Errorf("kubernetes: connection %q: in-cluster config: %v: run inside a pod with a service account, or set kubeconfig and context instead of in_cluster", conn.Name, err)
		}
		cfg, where = c, "in-cluster service account"
	} else {
		rules, overrides := kubeconfigRules(conn)
		c, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
		if err != nil {
			return nil, "", fmt.Errorf("kubernetes: connection %q: cannot load kubeconfig %s (context %q): %v: check the connection's kubeconfig and context settings (e.g. gcloud container clusters get-credentials)",
				conn.Name, orDefault(rules.ExplicitPath, "$KUBECONFIG or ~/.kube/config"), conn.Setting("context", "(current)"), err)
		}
		cfg, where = c, fmt.Sprintf("context %q", orDefault(conn.Setting("context", ""), "(current)"))
	}
	cfg.UserAgent = "runbook"
	cfg.Timeout = 0 // watches are long; single requests are bounded by their context
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 20, 40
	}
	return cfg, fmt.Sprintf("%s at %s", where, cfg.Host), nil
}

// kubeconfigRules say which kubeconfig file and context a connection uses.
func kubeconfigRules(conn *engine.Connection) (*clientcmd.ClientConfigLoadingRules, *clientcmd.ConfigOverrides) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if p := conn.Setting("kubeconfig", ""); p != "" {
		rules.ExplicitPath = expandHome(p)
	}
	return rules, &clientcmd.ConfigOverrides{CurrentContext: conn.Setting("context", "")}
}

func expandHome(p string) string {
	if strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return home + p[1:]
		}
	}
	return p
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// apiError turns a client-go error about what ("get deployment cvs/cvs-frontend") into one
// that names the service and says what to check, marking the retryable kinds Transient.
func apiError(err error, what, where string) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("kubernetes: 401 Unauthorized on %s (%s): check the credentials of the kubeconfig context (refresh them, e.g. gcloud container clusters get-credentials)", what, where)
	case apierrors.IsForbidden(err):
		// the server's message names the user and the refused verb; its reason says only "Forbidden"
		return fmt.Errorf("kubernetes: 403 Forbidden on %s (%s): %v: check the RBAC role of the account", what, where, err)
	case apierrors.IsNotFound(err):
		return fmt.Errorf("kubernetes: %s: not found (%s): check the name and the namespace (CVS uses cvs-v2 on staging and cvs on production)", what, where)
	case apierrors.IsTooManyRequests(err):
		d, _ := apierrors.SuggestsClientDelay(err)
		if d <= 0 {
			d = 1
		}
		return engine.RetryAfter(fmt.Errorf("kubernetes: 429 Too Many Requests on %s (%s)", what, where), time.Duration(d)*time.Second)
	case apierrors.IsServerTimeout(err), apierrors.IsTimeout(err), apierrors.IsInternalError(err),
		apierrors.IsServiceUnavailable(err), apierrors.IsUnexpectedServerError(err), apierrors.IsConflict(err):
		return engine.Transient(fmt.Errorf("kubernetes: %s (%s): %v", what, where, err))
	case isNetError(err):
		return engine.Transient(fmt.Errorf("kubernetes: %s (%s): %v: check that the API server is reachable", what, where, err))
	}
	return fmt.Errorf("kubernetes: %s (%s): %v", what, where, err)
}

func isNetError(err error) bool {
	var ne net.Error
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne)
}
