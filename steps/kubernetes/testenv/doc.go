// Package testenv is the integration tier of the kubernetes steps: the same steps against a
// real control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok,
// built from Go modules by k8s-testenv.sh in this folder). The tests carry the build tag
// `integration`, so `go test ./...` leaves them out. Run them with:
//
//	steps/kubernetes/testenv/k8s-testenv.sh build   # once; 10-20 min cold on two cores
//	steps/kubernetes/testenv/k8s-testenv.sh test    # start, go test -tags integration, stop
//
// or, with a control plane already started (eval "$(k8s-testenv.sh start)"):
//
//	go test -tags integration -count=1 ./steps/kubernetes/testenv/
//
// Without KUBECONFIG the tests skip. Each test works in its own namespace and deletes it.
package testenv
