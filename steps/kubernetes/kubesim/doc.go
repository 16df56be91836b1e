// Package kubesim is a simulated Kubernetes cluster for the tests and rehearsals of runbook's
// kubernetes steps, the way net/http/httptest serves HTTP clients: client-go's
// kubernetes/fake clientset, given the API server semantics rollouts depend on (uid and
// generation set on create, generation bumped only on spec changes, status kept on main
// resource writes, a status subresource that only writes status), plus small controllers
// driven by watch events and a ticker:
//
//   - Deployments: a new ReplicaSet per template (pod-template-hash label), revision
//     annotations numbered as the real controller does, and on rollback the old ReplicaSet
//     adopted and renumbered to max+1 with its old number in revision-history; new pods
//     become available one per tick while old ones are scaled down; the Progressing condition
//     moves through NewReplicaSetCreated / FoundNewReplicaSet / ReplicaSetUpdated /
//     NewReplicaSetAvailable, and to ProgressDeadlineExceeded when nothing progresses for
//     spec.progressDeadlineSeconds of simulated time; Available is MinimumReplicasAvailable or
//     MinimumReplicasUnavailable.
//   - StatefulSets: a ControllerRevision per template (data in the form kubectl rollback
//     compares), updateRevision/currentRevision, pods updated one per tick.
//   - Pods: real Pods in the store for both, so steps can read what runs. A ReplicaSet keeps
//     status.replicas pods (<rs>-<random>, its template's labels with pod-template-hash, a
//     controller reference to it), status.readyReplicas of them Ready; a StatefulSet keeps
//     <name>-0..n-1 labelled controller-revision-hash, the highest ordinals replaced first on
//     an update. Pods are Running; each container status has name, image (the spec
//     reference), ready and imageID "<repo>@sha256:…" resolved when the pod started, so a
//     later retag or push never changes a running pod's imageID.
//   - Jobs: started at once, Complete after a few ticks, or Failed (BackoffLimitExceeded, or
//     the reason given to FailJobsFrom).
//
// Images and digests: WithRegistry(r) resolves tags with a Registry (Push stores a tag's
// digest, sha256 of the content; Tag retags as a deploy job's "tag as production image"
// does; Digest reads one). Clusters sharing a registry agree on digests, so staging's digest
// can be demanded on production. Without one, or for a reference it does not know, the
// digest is derived from the reference itself (stable, distinct per reference).
//
// Images ending in ":broken" never become Ready (as in the real test control plane), so a
// rollout to one gets stuck and hits its progress deadline, and a Job running one fails.
//
// Time: each tick (WithTick, default every 2ms of real time) advances the simulated clock by
// 5s, so a 600s progress deadline expires in about a quarter of a second. Close stops every
// goroutine.
//
// API:
//
//	New(opts ...Option) *Cluster                  // WithTick, WithStart, WithJobTicks, WithAutoCreate, WithRegistry
//	(*Cluster).Clientset() kubernetes.Interface   // inject as engine.Connection.Client
//	NewRegistry() *Registry                       // Push(ref, content) digest, Tag(src, dst) (digest, error), Digest(ref) (digest, ok)
//	(*Cluster).Registry() *Registry               // the one given, or the cluster's own empty one
//	(*Cluster).ResolveDigest(ref string) string   // the digest a pod started now would run
//	(*Cluster).AddDeployment(ns, name, image string, replicas int32, labels ...string)  // "k=v"; rolled out, revision 1
//	(*Cluster).AddStatefulSet(ns, name, image string, replicas int32, labels ...string)
//	(*Cluster).AddCronJob(ns, name, schedule, image string)
//	(*Cluster).SetImage(ns, kind, name, container, image string) error  // kubectl set image; how a rehearsal deploys
//	(*Cluster).FailNext(verb, resource string, n int, err error)        // e.g. apierrors.NewServiceUnavailable
//	(*Cluster).SlowNext(verb, resource string, n int, d time.Duration)
//	(*Cluster).DropWatches() int                  // cut every open watch
//	(*Cluster).Deny(ns, verb, group, resource string)                  // simulated RBAC; "*" matches all
//	(*Cluster).Allow(ns, verb, group, resource string, names ...string) // wins over Deny; names: resourceNames
//	(*Cluster).SetUnreachable(on bool)            // every request fails: connection refused
//	(*Cluster).FailJobsFrom(ns, cronJob, reason, message string)
//	(*Cluster).Actions() / Writes(resource...)    // every request made through the clientset
//	(*Cluster).Now() time.Time                    // simulated time
//	(*Cluster).Close()
//
// Access: the cluster answers authorization.k8s.io/v1 SelfSubjectAccessReviews as an API
// server with RBAC does (status.allowed; a refusal carries status.reason; nothing is stored,
// and Writes does not count them). Everything is allowed unless Deny refuses it and no Allow
// grants it back; a refused request fails with 403 Forbidden in the API server's words
// (User "kubesim" cannot patch resource "deployments" in API group "apps" in the namespace
// "cvs"). A list or watch with fieldSelector metadata.name=X counts as naming X, as RBAC
// does. Discovery (/version) and reviews are always allowed.
//
// Auto-create: WithAutoCreate(image) makes a Get of an unknown Deployment, StatefulSet or
// CronJob create it, rolled out, with the image the function chooses, so a rehearsal of any
// playbook finds its workloads. Seeding from the playbook's parameters (AddDeployment with
// the expected image, then SetImage from the rehearsal's deploy job) is closer to a real
// release and is the recommended way.
//
// Not simulated: scheduling, probes and image pulls (a pod of any image runs; only
// ":broken" stays un-Ready), Pods of Jobs, Services, DaemonSets, resource quotas, optimistic
// concurrency (resourceVersion conflicts) and field selectors on watches (the steps filter).
package kubesim
