package kubestate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Labels and annotations on the objects this package writes. The labels make runs
// listable (kubectl get configmaps -l runbook.cessda.eu/product=cdc,runbook.cessda.eu/part=report
// -L runbook.cessda.eu/status); the annotations carry what does not fit a label value.
const (
	labelManagedBy = "app.kubernetes.io/managed-by"
	managedBy      = "runbook"
	labelProduct   = "runbook.cessda.eu/product"
	labelRun       = "runbook.cessda.eu/run"
	labelPart      = "runbook.cessda.eu/part" // journal or report
	labelChunk     = "runbook.cessda.eu/chunk"
	labelStatus    = "runbook.cessda.eu/status"

	annoActor     = "runbook.cessda.eu/actor"
	annoHost      = "runbook.cessda.eu/host"
	annoPID       = "runbook.cessda.eu/pid"
	annoProcess   = "runbook.cessda.eu/process" // set while a process holds the lease
	annoSince     = "runbook.cessda.eu/since"
	annoRunStatus = "runbook.cessda.eu/run-status"
	annoTakenFrom = "runbook.cessda.eu/taken-over-from"
	annoLastRun   = "runbook.cessda.eu/last-run"
	annoSealed    = "runbook.cessda.eu/sealed"    // a journal chunk that has a successor
	annoFirstSeq  = "runbook.cessda.eu/first-seq" // the first batch number in a chunk
	annoRollover  = "runbook.cessda.eu/rollover"  // a journal chunk's claim to roll over to the next
)

// LeaseName is the name of a product's release lock.
func LeaseName(product string) string { return "runbook-" + product }

// ChunkName is the name of a run's n-th journal ConfigMap.
func ChunkName(runID string, n int) string { return fmt.Sprintf("runbook-%s-journal-%d", runID, n) }

// ReportName is the name of a run's report ConfigMap.
func ReportName(runID string) string { return "runbook-" + runID + "-report" }

// checkName refuses a product or run id that cannot become part of an object name and a
// label value, so the failure is a clear message at the start rather than a 422 later.
func checkName(what, s string) error {
	if s == "" {
		return fmt.Errorf("kubestate: empty %s", what)
	}
	if errs := validation.IsDNS1123Label(s); len(errs) > 0 {
		return fmt.Errorf("kubestate: %s %q cannot name Kubernetes objects: %s", what, s, strings.Join(errs, "; "))
	}
	// The longest name built from it must stay a valid object name.
	if errs := validation.IsDNS1123Subdomain(ChunkName(s, 999999)); len(errs) > 0 {
		return fmt.Errorf("kubestate: %s %q is too long for an object name", what, s)
	}
	return nil
}

// apiError names the service, the object and what to check.
func apiError(err error, what, namespace string) error {
	switch {
	case err == nil:
		return nil
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("kubernetes: 401 Unauthorized on %s in namespace %s: check the credentials of the kubeconfig context", what, namespace)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("kubernetes: 403 Forbidden on %s in namespace %s: the account needs get, list, create, update and patch on configmaps and leases (coordination.k8s.io) there", what, namespace)
	case apierrors.IsNotFound(err) && strings.Contains(err.Error(), "namespaces"):
		return fmt.Errorf("kubernetes: %s: namespace %s does not exist: create it or choose another", what, namespace)
	}
	return fmt.Errorf("kubernetes: %s in namespace %s: %w", what, namespace, err)
}

// transient says whether a request may be sent again: the answer was lost or the server
// was briefly unable to give one.
func transient(err error) bool {
	var ne net.Error
	return apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsInternalError(err) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsTooManyRequests(err) || apierrors.IsUnexpectedServerError(err) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne)
}

// retryBackoff is the pause before the n-th resend (n from 1): short, because a run is
// waiting on every journal write.
func retryBackoff(n int) time.Duration { return time.Duration(n*n) * 50 * time.Millisecond }

const requestAttempts = 4
