#!/usr/bin/env bash
# k8s-testenv.sh — runbook's real, minimal Kubernetes control plane on 127.0.0.1 for the integration
# tier of the kubernetes steps. Built only from Go modules (no prebuilt binaries, no containers, no kubelet):
#   etcd (go.etcd.io/etcd/server/v3) + kube-apiserver + kube-controller-manager + kube-scheduler
#   (k8s.io/kubernetes) + kwok (sigs.k8s.io/kwok: a fake node that makes pods Running/Ready/Succeeded).
#
# Why: the fake-clientset tier (kubesim) simulates the controllers; this tier proves the steps against the
# real Deployment, ReplicaSet and Job controllers (revision renumbering on undo, progress deadlines, Jobs).
#
# usage (from the repository root):
#   steps/kubernetes/testenv/k8s-testenv.sh build            # once per machine (cold: 10-20 min on 2 cores); skipped when built
#   eval "$(steps/kubernetes/testenv/k8s-testenv.sh start)"  # prints `export KUBECONFIG=...` (progress on stderr)
#   go test -tags integration -count=1 ./steps/kubernetes/testenv/
#   steps/kubernetes/testenv/k8s-testenv.sh stop             # stops exactly the PIDs that start recorded
#   steps/kubernetes/testenv/k8s-testenv.sh test             # start + integration tests + stop, in one go
#
# needs: go >= 1.26, openssl, curl, awk. Everything binds to 127.0.0.1.
# Pods whose first image ends in ":broken" (or labelled never-ready.probe) never become Ready: a stuck rollout.
# env: K8S_VERSION (v1.37.2), KWOK_VERSION (v0.8.0), ETCD_VERSION (default: the one k8s.io/kubernetes pins),
#   K8SENV_HOME (~/.cache/runbook-k8senv/$K8S_VERSION), K8SENV_STATE ($K8SENV_HOME/state),
#   K8SENV_WITH_KUBECTL=1 (also build kubectl, for `smoke`),
#   ports: ETCD_PORT 2379, ETCD_PEER_PORT 2380, API_PORT 6443, KCM_PORT 10257, SCHED_PORT 10259, KWOK_PORT 10247
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.37.2}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
K8SENV_HOME=${K8SENV_HOME:-$HOME/.cache/runbook-k8senv/$K8S_VERSION}
BIN=$K8SENV_HOME/bin
STATE=${K8SENV_STATE:-$K8SENV_HOME/state}
ETCD_PORT=${ETCD_PORT:-2379}; ETCD_PEER_PORT=${ETCD_PEER_PORT:-2380}; API_PORT=${API_PORT:-6443}
KCM_PORT=${KCM_PORT:-10257}; SCHED_PORT=${SCHED_PORT:-10259}; KWOK_PORT=${KWOK_PORT:-10247}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

log() { echo "[k8s-testenv] $*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}'; }

cmd_build() {
  local src=$K8SENV_HOME/src stamp="k8s=$K8S_VERSION kwok=$KWOK_VERSION etcd=${ETCD_VERSION:-pinned} kubectl=${K8SENV_WITH_KUBECTL:-0}"
  if [ -f "$BIN/.stamp" ] && [ "$(cat "$BIN/.stamp")" = "$stamp" ]; then log "already built ($stamp) in $BIN"; return 0; fi
  export GOFLAGS=-mod=mod GOWORK=off GOTOOLCHAIN=local
  local t0; t0=$(now)
  rm -rf "$src"; mkdir -p "$src" "$BIN"; cd "$src"
  # k8s.io/kubernetes replaces its staging modules with ./staging/src/...; a consumer module must map each
  # of them to the published v0.X.Y itself, which is why `go install k8s.io/kubernetes/cmd/...@v1.X` is refused.
  local staging=v0.${K8S_VERSION#v1.}
  local kmod; kmod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  # etcd: the version Kubernetes itself pins (newer etcd pulls dependencies past Kubernetes' pins).
  local etcd=${ETCD_VERSION:-$(awk '$1=="go.etcd.io/etcd/server/v3"{print $2; exit}' "$kmod")}
  {
    echo "module runbook-k8s-testenv"; echo
    echo "go $(go env GOVERSION | sed 's/^go//; s/^\([0-9]*\.[0-9]*\).*/\1/').0"; echo
    echo "require k8s.io/kubernetes $K8S_VERSION"; echo; echo "replace ("
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' "$kmod" | grep -v '^k8s.io/sample-' |
      while read -r m; do echo "	$m => $m $staging"; done
    echo ")"
  } > go.mod
  local tools="k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler"
  [ "${K8SENV_WITH_KUBECTL:-0}" = 1 ] && tools="$tools k8s.io/kubernetes/cmd/kubectl"
  log "resolving modules (k8s $K8S_VERSION, staging $staging, etcd $etcd, kwok $KWOK_VERSION)"
  # shellcheck disable=SC2086
  go get -tool $(for t in $tools; do echo "$t@$K8S_VERSION"; done) "go.etcd.io/etcd/server/v3@$etcd" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" >&2
  log "modules ready after $(since "$t0")s; compiling (cold cache: ~10-20 min on 2 cores, ~4.6 GiB peak memory)"
  local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  # the version variables matter: kubectl and the controllers check the server version.
  local ldf="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
  # shellcheck disable=SC2086
  go build -trimpath -ldflags "$ldf" -o "$BIN/" $tools go.etcd.io/etcd/server/v3 sigs.k8s.io/kwok/cmd/kwok
  mv "$BIN/server" "$BIN/etcd"   # go.etcd.io/etcd/server/v3 is etcd's main package
  # kwok stages from the kwok module itself: node initialize + lease heartbeat + fast pod lifecycle
  # (ready, complete for Job pods, delete), with one hook added to pod-ready: pods whose first image ends
  # in ":broken" (or labelled never-ready.probe) never become Ready, so their rollout gets stuck.
  local kd; kd=$(go list -m -f '{{.Dir}}' sigs.k8s.io/kwok); local s=$kd/kustomize/stage
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do echo '---'; cat "$s/$f"; done |
    awk '{print} /^  name: pod-ready$/{pr=1} pr && /^    matchExpressions:$/{
      print "    - key: '\''.metadata.labels[\"never-ready.probe\"]'\''"; print "      operator: '\''DoesNotExist'\''"
      print "    - key: '\''.spec.containers.[0].image | endswith(\":broken\")'\''"; print "      operator: '\''NotIn'\''"
      print "      values:"; print "      - '\''true'\''"; pr=0}' > "$K8SENV_HOME/kwok-stages.yaml"
  echo "$stamp" > "$BIN/.stamp"
  log "build done in $(since "$t0")s: $(cd "$BIN" && ls | tr '\n' ' ')"
}

gen_pki() { # CA, apiserver serving cert, service-account keys, a static admin token (system:masters), kubeconfig
  local P=$1; mkdir -p "$P"; (
  cd "$P"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj "/CN=runbook-k8s-testenv-ca" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.96.0.1\n' > san.ext
  openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt -days 3650 -extfile san.ext 2>/dev/null
  openssl genrsa -out sa.key 2048 2>/dev/null; openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  local token; token=$(openssl rand -hex 16); echo "$token,admin,admin,system:masters" > tokens.csv
  # context name "testenv-cluster", so tests exercise the kubeconfig+context path as for staging-cluster.
  printf 'apiVersion: v1\nkind: Config\nclusters:\n- name: testenv\n  cluster:\n    server: https://127.0.0.1:%s\n    certificate-authority: %s/ca.crt\nusers:\n- name: admin\n  user:\n    token: %s\ncontexts:\n- name: testenv-cluster\n  context: {cluster: testenv, user: admin}\ncurrent-context: testenv-cluster\n' \
    "$API_PORT" "$P" "$token" > admin.kubeconfig
  chmod 600 tokens.csv admin.kubeconfig ca.key sa.key apiserver.key )
}

cmd_start() {
  [ -x "$BIN/kube-apiserver" ] || { log "not built: run '$0 build' first"; exit 1; }
  [ -f "$STATE/pids" ] && { log "already started? $STATE/pids exists (run '$0 stop')"; exit 1; }
  rm -rf "$STATE"; mkdir -p "$STATE/logs"
  local P=$STATE/pki KC=$STATE/pki/admin.kubeconfig t0; t0=$(now)
  gen_pki "$P"
  : > "$STATE/pids"
  start() { local name=$1; shift; "$@" > "$STATE/logs/$name.log" 2>&1 & echo "$name $!" >> "$STATE/pids"; }
  waitfor() { local name=$1 to=$2; shift 2; local end=$(( $(date +%s) + to ))
    until "$@" >/dev/null 2>&1; do
      if [ "$(date +%s)" -ge $end ]; then log "TIMEOUT waiting for $name"; tail -20 "$STATE/logs/$name.log" >&2 || true; cmd_stop; exit 1; fi
      sleep 0.2; done
    log "$(printf '%-24s ready after %6ss' "$name" "$(since "$t0")")"; }

  start etcd "$BIN/etcd" --name=testenv --data-dir="$STATE/etcd-data" \
    --listen-client-urls=http://127.0.0.1:$ETCD_PORT --advertise-client-urls=http://127.0.0.1:$ETCD_PORT \
    --listen-peer-urls=http://127.0.0.1:$ETCD_PEER_PORT --initial-advertise-peer-urls=http://127.0.0.1:$ETCD_PEER_PORT \
    --initial-cluster=testenv=http://127.0.0.1:$ETCD_PEER_PORT --unsafe-no-fsync --log-level=warn
  waitfor etcd 30 curl -sf "http://127.0.0.1:$ETCD_PORT/health"
  start kube-apiserver "$BIN/kube-apiserver" --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" --cert-dir="$STATE/apiserver-certs" \
    --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" --client-ca-file="$P/ca.crt" \
    --token-auth-file="$P/tokens.csv" --authorization-mode=Node,RBAC \
    --service-account-issuer=https://kubernetes.default.svc --service-account-key-file="$P/sa.pub" \
    --service-account-signing-key-file="$P/sa.key" --service-cluster-ip-range=10.96.0.0/16 \
    --endpoint-reconciler-type=none --allow-privileged=true ${APISERVER_EXTRA_FLAGS:-}
  waitfor kube-apiserver 120 curl -sf --cacert "$P/ca.crt" "https://127.0.0.1:$API_PORT/readyz"
  start kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig="$KC" --authentication-kubeconfig="$KC" --authorization-kubeconfig="$KC" \
    --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --cert-dir="$STATE/kcm-certs" --leader-elect=false \
    --service-account-private-key-file="$P/sa.key" --root-ca-file="$P/ca.crt" \
    --cluster-signing-cert-file="$P/ca.crt" --cluster-signing-key-file="$P/ca.key" ${KCM_EXTRA_FLAGS:-}
  start kube-scheduler "$BIN/kube-scheduler" \
    --kubeconfig="$KC" --authentication-kubeconfig="$KC" --authorization-kubeconfig="$KC" \
    --bind-address=127.0.0.1 --secure-port="$SCHED_PORT" --cert-dir="$STATE/sched-certs" --leader-elect=false
  start kwok "$BIN/kwok" --kubeconfig="$KC" --config="$K8SENV_HOME/kwok-stages.yaml" --manage-all-nodes=true \
    --node-lease-duration-seconds=40 --cidr=127.0.1.0/24 --node-ip=127.0.0.1 --server-address="127.0.0.1:$KWOK_PORT"
  waitfor kube-controller-manager 60 curl -sfk "https://127.0.0.1:$KCM_PORT/healthz"
  waitfor kube-scheduler 60 curl -sfk "https://127.0.0.1:$SCHED_PORT/healthz"
  waitfor kwok 60 curl -sf "http://127.0.0.1:$KWOK_PORT/healthz"
  # one fake node without taints, so ordinary workloads schedule onto it; kwok marks it Ready.
  api() { curl -sf --cacert "$P/ca.crt" -H "Authorization: Bearer $(cut -d, -f1 "$P/tokens.csv")" "$@"; }
  node_ready() { api "https://127.0.0.1:$API_PORT/api/v1/nodes/kwok-node-0" | tr -d ' \n' | grep -q '"type":"Ready","status":"True"'; }
  default_sa() { api "https://127.0.0.1:$API_PORT/api/v1/namespaces/default/serviceaccounts/default"; }
  api -H 'Content-Type: application/json' -X POST "https://127.0.0.1:$API_PORT/api/v1/nodes" -d '{"apiVersion":"v1","kind":"Node",
    "metadata":{"name":"kwok-node-0","annotations":{"kwok.x-k8s.io/node":"fake","node.alpha.kubernetes.io/ttl":"0"},
     "labels":{"type":"kwok","kubernetes.io/hostname":"kwok-node-0","kubernetes.io/os":"linux","kubernetes.io/arch":"amd64"}},
    "status":{"capacity":{"cpu":"32","memory":"256Gi","pods":"110"},"allocatable":{"cpu":"32","memory":"256Gi","pods":"110"}}}' >/dev/null
  waitfor node-ready 60 node_ready
  waitfor default-serviceaccount 60 default_sa
  echo "export KUBECONFIG=$KC"
}

cmd_stop() { # newest first, each fully stopped (SIGTERM, 15 s grace, then SIGKILL) before the next
  [ -f "$STATE/pids" ] || return 0
  tac "$STATE/pids" | while read -r name pid; do
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 75); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; log "SIGKILLed $name ($pid)"; else log "stopped $name ($pid)"; fi
  done
  rm -f "$STATE/pids"
}

cmd_test() { # start, run the integration tier, always stop
  local out; out=$(cmd_start); eval "$out"
  trap cmd_stop EXIT
  local t0; t0=$(now)
  (cd "$HERE/../../.." && go test -tags integration -count=1 -v ./steps/kubernetes/testenv/ "$@")
  log "integration tests took $(since "$t0")s"
}

cmd_smoke() { # kubectl rollout + rollback (the built kubectl, or any on PATH)
  local K=$BIN/kubectl; [ -x "$K" ] || K=$(command -v kubectl)
  export KUBECONFIG=$STATE/pki/admin.kubeconfig
  "$K" create deployment smoke --image=example/app:1.0.0 --replicas=2
  "$K" rollout status deploy/smoke --timeout=60s
  "$K" set image deploy/smoke app=example/app:1.1.0
  "$K" rollout status deploy/smoke --timeout=60s
  "$K" rollout undo deploy/smoke
  "$K" rollout status deploy/smoke --timeout=60s
  "$K" delete deploy smoke --wait=false
}

case "${1:-}" in
  build) cmd_build ;; start) cmd_start ;; stop) cmd_stop ;; smoke) cmd_smoke ;;
  env) echo "export KUBECONFIG=$STATE/pki/admin.kubeconfig" ;;
  test) shift; cmd_test "$@" ;;
  *) echo "usage: $0 build|start|stop|env|test|smoke" >&2; exit 2 ;;
esac
