// Package kubeapi serves a kubernetes.Interface (normally a kubesim cluster's Clientset)
// over the Kubernetes REST wire contract, so that another process reaches the same
// simulated cluster through a kubeconfig: `runbook sandbox` hosts it for runs that are
// killed and resumed, crash tests build clients from the kubeconfig, and kubectl-like
// clients inspect it.
//
// Requests are forwarded to the clientset, so its semantics hold unchanged over the wire
// (kubesim's generation bumps, controllers, auto-create, FailNext/SlowNext faults and
// DropWatches; its Actions and Writes count requests made through the server too).
// Objects are encoded with client-go's scheme (apiVersion and kind set); bodies are decoded
// as JSON, YAML or protobuf (client-go's typed clients send protobuf); responses are JSON.
//
// Served (all verbs: get, list, watch, create, update, patch, delete, deletecollection,
// except where said):
//
//	apps/v1   deployments, statefulsets, replicasets, controllerrevisions (+ /status)
//	batch/v1  jobs, cronjobs (+ /status)
//	v1        pods (+ /status), namespaces, configmaps
//	coordination.k8s.io/v1  leases (configmaps and leases hold kubestate's run state and lock)
//	authorization.k8s.io/v1 selfsubjectaccessreviews (create only: answered by the clientset, 201, not stored)
//	/api, /apis, /apis/{group}, /apis/{group}/{version}, /version, /healthz
//
// Wire behaviour:
//   - Errors are metav1.Status bodies with the error's code (404 NotFound, 409
//     AlreadyExists/Conflict, 422 Invalid for a missing or malformed metadata.name or a
//     patch that cannot be applied, 400 for a malformed body, patch or selector, 415 for an
//     unknown patch type, 429 with Retry-After, 500 for errors that are not API errors).
//   - Lists apply labelSelector and fieldSelector (metadata.name, metadata.namespace; other
//     field labels are 400) and page with limit/continue.
//   - Patches: JSON patch, merge patch and strategic merge patch are checked here (400 when
//     malformed) and applied by the clientset (kubesim's fake uses the apimachinery
//     json-patch and strategicpatch helpers); dryRun=All computes the result here with the
//     same helpers and writes nothing (also for create, update and delete).
//   - Watches stream newline-delimited JSON watch events over a chunked response, filtered
//     by the selectors, until the client goes away, timeoutSeconds (default WithWatchTimeout)
//     passes, the source watch ends or the server closes. Events are drained from the
//     source at once (the fake's watchers panic at 100 unread events); a client more than
//     WithWatchQueue events behind has its watch ended. No bookmarks.
//   - Namespaces: kubesim stores none, so default, kube-system and every namespace holding
//     a served object are answered as Active namespaces (besides any stored ones).
//   - Auth: every request but /healthz needs "Authorization: Bearer <token>"; 401 otherwise.
//   - TLS with a self-signed certificate for 127.0.0.1/::1/localhost made per Serve (its CA
//     is in the kubeconfig): client-go drops a kubeconfig's token on plain http.
//
// API:
//
//	Serve(cs kubernetes.Interface, opts ...Option) (*Server, error)  // WithToken, WithAddress (loopback only), WithWatchTimeout, WithWatchQueue
//	(*Server).URL() string                                            // https://127.0.0.1:PORT
//	(*Server).Kubeconfig(contextName string) []byte                   // one context, current
//	(*Server).WriteKubeconfig(path string, contextNames ...string) error  // e.g. staging-cluster, production-cluster
//	(*Server).Token() string / CAData() []byte / Client() *http.Client  // for raw HTTP
//	(*Server).Requests() []Request                                    // method, path, query, verb, code (no headers)
//	(*Server).Close()                                                 // ends watches, waits for handlers
//
// Not served: resourceVersion semantics beyond the clientset's (kubesim's objects carry no
// resourceVersion; a watch from "" or a list's version replays as the fake does), optimistic
// concurrency, server-side apply beyond what the clientset does, Table output, protobuf
// responses, aggregated discovery, OpenAPI, scale/exec/log subresources.
package kubeapi
