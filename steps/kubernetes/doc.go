// Package kubernetes holds runbook's Kubernetes step types, built on client-go, with kubectl's
// own rollout-status and rollback code (k8s.io/kubectl polymorphichelpers) so that "rolled out"
// and "rolled back" mean exactly what they mean to `kubectl rollout status` and
// `kubectl rollout undo`.
//
// # Connection
//
// Connection type "kubernetes" (no token: the credentials stay in the kubeconfig). Settings:
// kubeconfig (path; default $KUBECONFIG or ~/.kube/config), context (e.g. staging-cluster,
// production-cluster; default the file's current context), in_cluster ("true": the pod's
// service account). When Connection.Client holds a kubernetes.Interface (rehearsal, tests) it
// is used as is. The namespace is always a step parameter: CVS runs in cvs-v2 on staging and
// in cvs on production.
//
// # kubernetes.verify
//
// Params: namespace (required), deployments, statefulsets (names), selector (label selector;
// at least one of the three), image_tag (required: "3.6.1", "main-123"), image (only check
// containers whose image repository is this), containers (only these container names),
// timeout (default 10m, per workload). A pod template without the tag fails at once; otherwise
// the step watches each workload (Get, then Watch from its resourceVersion, re-watching when
// the server closes the watch; no polling) until kubectl's status viewer says it is rolled
// out: observedGeneration, updated/available/old replicas for Deployments, with a Progressing
// condition of reason ProgressDeadlineExceeded failing at once; readyReplicas, partition and
// revisions for StatefulSets. It then checks that readyReplicas reached spec.replicas.
// Then it reads the pods of the current template (the newest ReplicaSet's pod-template-hash,
// the StatefulSet's update revision; terminating and finished pods skipped) and, for every
// checked container, the digest in status.containerStatuses[].imageID (a "docker-pullable://"
// prefix stripped, the part after "@"). Pods of one workload running different digests fail
// ("pods of X run different images": a tag pushed again while they started), and so does one
// image reference running as different digests in two workloads. image_digest
// ("sha256:<64 hex>" or "repo@sha256:<64 hex>", e.g. the staging verification's digest
// output) makes every checked container of every pod run exactly that digest, so "production
// runs the image tested on staging" is a digest comparison, not a tag comparison; a pod whose
// runtime reports no imageID is compared by its image reference instead (it passes only when
// pinned to that digest), and the log says so.
// Outputs: workloads (list of maps: kind, name, namespace, images, revision, ready_replicas,
// replicas, digests, pods), revisions (map of name to revision: the Deployment's revision
// annotation, the StatefulSet's ControllerRevision number), which a later kubernetes.rollback
// can take as to_revision, digest (the one digest every checked container runs; "" when none
// is reported or there are several) and image (the checked spec reference, "" when several).
//
// # kubernetes.snapshot
//
// Records what production runs before a deploy, and checks later that production is back on
// it. Params: namespace (required), deployments, statefulsets, selector (as verify), image
// (only containers of that repository), expect (an earlier snapshot's workloads output),
// timeout (10m, only with expect). Without expect it only reads (no wait): for each
// workload its revision and, per container, the spec reference and the digest its current
// pods run. Outputs: workloads (kind, name, namespace, revision, containers [name, image,
// digest], images, digests), tags and digests (maps by image name, the repository's last path
// element), revisions (for kubernetes.rollback to_revision). With expect it waits for each
// rollout, then compares every workload and container with the snapshot, by digest when both
// have one, else by reference; any difference fails with "production is not back on the
// previous release:" and the list. A tag pushed again since the snapshot is a difference even
// though the reference is the same.
//
// # kubernetes.rollback
//
// Params: namespace, name (required), kind (deployment|statefulset), to_revision (0: the
// previous revision; e.g. a snapshot's revisions taken before the deploy), timeout (10m). It waits until the controller has observed the latest
// spec, picks the target as kubectl does (ReplicaSets controlled by the Deployment, by their
// revision annotation; ControllerRevisions for StatefulSets), records the target's identity in
// the journal before patching, and lets kubectl's rollbacker patch (JSON patch of the template
// and annotations; paused Deployments refused). A template that already matches the target is
// not patched again, so a second run after a successful rollback changes nothing (the target's
// revision number has moved to max+1 by then, which is why the journal keeps its name).
// Then it waits for the rollback's own rollout. Outputs: from_revision, to_revision,
// revision (after the rollback), workloads.
//
// # kubernetes.backup_job
//
// Params: namespace, cronjob (required), job_name (default <cronjob>-runbook-<hash of run and
// step>), timeout (1h). It creates a Job as `kubectl create job --from=cronjob/NAME` does
// (annotation cronjob.kubernetes.io/instantiate=manual, the template's labels and annotations,
// a controller ownerReference to the CronJob), recording its name first, and watches it until
// Complete, or fails with the Failed condition's reason and message. Outputs: job_name,
// duration (completionTime - startTime).
//
// # Preflight
//
// Every step type implements engine.Preflighter: before a run starts, and changing nothing,
// it checks (each once per connection and question, shared by the steps through sc.Once)
// that the connection's kubeconfig loads, its context exists and the API server answers
// (GET /version), then asks with a SelfSubjectAccessReview (`kubectl auth can-i`) for every
// request the step will make in its namespace. Each refusal is its own error: connection
// "production" (context production-cluster): may not patch deployments.apps in namespace
// cvs (needed by kubernetes.rollback); grant it in the Role bound to this user. A request for
// one named object that is refused namespace-wide is asked again for each object the step
// names, since a Role may grant it by resourceNames. A namespace known only after earlier
// steps leaves only the context checked; unknown workload names count as "some of that kind".
// The needs, declared in preflight.go (needs), are:
//
//	kubernetes.verify      deployments.apps get, watch; replicasets.apps list  (Deployments named or selected)
//	                       statefulsets.apps get, watch; controllerrevisions.apps get  (StatefulSets named or selected)
//	                       deployments.apps list, statefulsets.apps list  (with a selector); pods list
//	kubernetes.snapshot    as verify, but watch only with expect (it waits only then)
//	kubernetes.rollback    deployments.apps get, watch, patch; replicasets.apps list  (kind deployment)
//	                       statefulsets.apps get, watch, patch; controllerrevisions.apps list, get  (kind statefulset)
//	kubernetes.backup_job  cronjobs.batch get; jobs.batch get, create, watch
//
// The backup job reads no pods: it follows the Job's conditions only.
//
// # Errors
//
// 401 and 403 name the kubeconfig context and what to check; 404 names the namespace; 429 is
// engine.RetryAfter; 5xx, timeouts and dropped connections are engine.Transient; waits end
// with the last kubectl status line after their timeout.
//
// # Tests
//
// Unit tests run against kubesim (a simulated cluster on client-go's fake clientset, see that
// package). The integration tier in ./testenv runs the same steps against a real control plane
// built by testenv/k8s-testenv.sh; it needs the build tag `integration`.
package kubernetes
