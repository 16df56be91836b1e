// Package kubestate keeps runbook's release lock and run state in a Kubernetes namespace,
// for teams whose operators and CI agents run on different machines: any machine with
// access to the namespace can see, lock and resume a run. It is the Kubernetes backend
// beside the embedded one (a file lock and a run directory in the local state directory).
//
// Lock: a coordination.k8s.io/v1 Lease runbook-<product>. spec.holderIdentity is the run
// id, kept while the run is not over (running, waiting, failed, cancelled), so a second
// run is refused with the holder and its age until the run ends or is taken over
// (--take-over). A process holding it renews spec.renewTime every RenewInterval
// (LeaseDuration/3; spec.leaseDurationSeconds is DefaultLeaseDuration, 60s): while that
// is fresh nobody else gets the product, take-over included. The same run re-acquires
// whenever its process is gone: at once on the same host (the pid is checked), after the
// lease duration from another one. Annotations runbook.cessda.eu/actor, host, pid,
// process, since, run-status, taken-over-from, last-run say who and since when. Writes
// carry the resourceVersion read; a 409 means another process won, and the lock reads
// again and decides. Release reads the run's status from its report and frees the
// product only when the run is over (or the product is rehearsal-...).
//
// Store: an engine.Store in ConfigMaps runbook-<run-id>-journal-<n> (batches of JSON-lines
// events, rolling over at 64 KiB, so that etcd does not keep hundreds of MiB of old
// revisions of a growing chunk; a ConfigMap holds 1 MiB) and runbook-<run-id>-report
// (report.json, gzipped in binaryData when over 768 KiB), labelled
// runbook.cessda.eu/{run,product,part,chunk,status} and app.kubernetes.io/managed-by=runbook
// for listing (ListRuns). Why ConfigMaps and not Secrets: see Store.
//
// RBAC needed in the namespace: get, list, create, update, patch on configmaps and on
// leases.coordination.k8s.io (delete is never used: old runs are removed by people).
//
// Package kubestatefake adds to client-go's fake clientset the resourceVersion conflicts
// and the fault injection (failed requests, answers lost after the write) these tests
// need; the fake alone accepts stale writes.
package kubestate
