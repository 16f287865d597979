#!/usr/bin/env bash
# A real Kubernetes control plane on loopback, without Docker.
#
#   e2e/control-plane.sh build        build (or find in the cache) every binary
#   e2e/control-plane.sh up DIR       start a cluster whose state lives in DIR;
#                                     writes DIR/kubeconfig, DIR/kubectl, DIR/env
#   e2e/control-plane.sh up DIR --real-node
#                                     the same plus a real node (kubelet, containerd,
#                                     kube-proxy, CoreDNS; e2e/real-node/node.sh), root only
#   e2e/control-plane.sh node-namespace DIR NS
#                                     create NS so that all its pods run on the real node
#   e2e/control-plane.sh down DIR     stop it and remove its state (idempotent)
#   e2e/control-plane.sh status DIR   exit 0 when the cluster in DIR answers
#
# kube-apiserver, kube-controller-manager, kube-scheduler and kubectl are built
# from k8s.io/kubernetes (deploy/local/k8s-testbin), etcd from
# go.etcd.io/etcd/server/v3 (deploy/local/etcd-bin), kwok and kwokctl from
# sigs.k8s.io/kwok (deploy/local/kwok-bin), and for the real node kubelet and
# kube-proxy from deploy/local/k8s-testbin, metrics-server from
# deploy/local/metrics-server-bin, CoreDNS from deploy/local/coredns-bin; the
# pinned versions are the ones in
# those go.mod files. Binaries are cached per version under
# ${PRESSURE_CACHE_DIR:-$HOME/.cache/mail-pressure}. kwokctl (runtime "binary")
# runs the cluster; kwok fakes two nodes with the stages in e2e/kwok/.
# See e2e/README.md.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE_ROOT=${PRESSURE_CACHE_DIR:-$HOME/.cache/mail-pressure}
GO_BUILD_P=${PRESSURE_GO_BUILD_P:-2}
UP_TIMEOUT=${PRESSURE_UP_TIMEOUT:-240}
NODES=${PRESSURE_KWOK_NODES:-2}
K8S_MOD=$REPO/deploy/local/k8s-testbin
ETCD_MOD=$REPO/deploy/local/etcd-bin
KWOK_MOD=$REPO/deploy/local/kwok-bin
COREDNS_MOD=$REPO/deploy/local/coredns-bin
METRICS_SERVER_MOD=$REPO/deploy/local/metrics-server-bin
K8S_BINS=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
# Built only for `up DIR --real-node`, from the same module (same version).
NODE_BINS=(kubelet kube-proxy)
# The real node's resource metrics (kubectl top, the HorizontalPodAutoscaler),
# from a copy of that module's requirements (so the same compiled k8s.io packages).
METRICS_SERVER_PKG=sigs.k8s.io/metrics-server/cmd/metrics-server
REAL_NODE=0

# shellcheck source=e2e/real-node/node.sh
. "$REPO/e2e/real-node/node.sh"

note() { printf 'control-plane.sh: %s\n' "$*" >&2; }
die() { printf 'control-plane.sh: ERROR: %s\n' "$*" >&2; exit 1; }

# modver GO_MOD MODULE: the version of MODULE required by GO_MOD.
modver() {
  awk -v m="$2" '!/=>/ { for (i = 1; i < NF; i++) if ($i == m && $(i + 1) ~ /^v/) { print $(i + 1); exit } }' "$1"
}

load_versions() {
  K8S_VERSION=$(modver "$K8S_MOD/go.mod" k8s.io/kubernetes)
  ETCD_VERSION=$(modver "$ETCD_MOD/go.mod" go.etcd.io/etcd/server/v3)
  KWOK_VERSION=$(modver "$KWOK_MOD/go.mod" sigs.k8s.io/kwok)
  COREDNS_VERSION=$(modver "$COREDNS_MOD/go.mod" github.com/coredns/coredns)
  METRICS_SERVER_VERSION=$(modver "$METRICS_SERVER_MOD/go.mod" sigs.k8s.io/metrics-server)
  [[ -n $K8S_VERSION && -n $ETCD_VERSION && -n $KWOK_VERSION ]] ||
    die "cannot read the pinned versions from deploy/local/*/go.mod"
  CACHE_ROOT=$(mkdir -p "$CACHE_ROOT" && cd "$CACHE_ROOT" && pwd -P)
  K8S_DIR=$CACHE_ROOT/k8s/$K8S_VERSION
  NODE_DIR=$CACHE_ROOT/k8s-node/$K8S_VERSION
  ETCD_DIR=$CACHE_ROOT/etcd/$ETCD_VERSION
  KWOK_DIR=$CACHE_ROOT/kwok/$KWOK_VERSION
  COREDNS_DIR=$CACHE_ROOT/coredns/$COREDNS_VERSION
  METRICS_SERVER_DIR=$CACHE_ROOT/metrics-server/$METRICS_SERVER_VERSION
}

# stamp MODDIR LDFLAGS: identifies a build (go.mod, go.sum, flags, Go version).
stamp() {
  { cat "$1/go.mod" "$1/go.sum"; printf '%s\n' "$2" "$(go env GOVERSION)"; } | sha256sum | cut -d' ' -f1
}

# cached OUTDIR STAMP EXPECTED BIN... : the binaries exist and report EXPECTED.
cached() {
  local out=$1 want=$2 expect=$3 bin; shift 3
  [[ -f $out/.stamp && $(cat "$out/.stamp") == "$want" ]] || return 1
  for bin in "$@"; do
    [[ -x $out/$bin ]] || return 1
    [[ $(version_of "$out/$bin") == *"$expect"* ]] || return 1
  done
}

version_of() {
  case $(basename "$1") in
    kubectl) "$1" version --client 2>&1 ;;
    coredns) "$1" -version 2>&1 ;;
    *) "$1" --version 2>&1 ;;
  esac
}

# build_failed WHAT LOG: explain which module or package failed, then exit.
build_failed() {
  note "ERROR: $1 failed. Full log: $2"
  note "Go module proxy: $(go env GOPROXY); go: $(go env GOVERSION)"
  grep -E '^(go: |# |.*(404|410) |.*verifying |.*checksum mismatch|.*cannot find module)' "$2" | head -20 >&2 || true
  note "last lines of the log:"
  tail -n 25 "$2" >&2
  exit 1
}

# go_build NAME MODDIR OUTDIR STAMP LDFLAGS PACKAGE...: build into OUTDIR.
go_build() {
  local name=$1 moddir=$2 out=$3 want=$4 ldflags=$5; shift 5
  local tmp=$out.partial.$$ log
  log=$CACHE_ROOT/logs/build-$name-$(date -u +%Y%m%dT%H%M%SZ).log
  mkdir -p "$CACHE_ROOT/logs" && rm -rf "$tmp" && mkdir -p "$tmp"
  note "building $name: $* (module ${moddir#"$REPO"/}, go build -p $GO_BUILD_P); log: $log"
  (cd "$moddir" && go mod download -x) >"$log" 2>&1 8>&- ||
    build_failed "downloading the modules of ${moddir#"$REPO"/} from the Go module proxy" "$log"
  local timer=()
  [[ -x /usr/bin/time ]] && timer=(/usr/bin/time -v)
  (cd "$moddir" && CGO_ENABLED=0 nice -n 10 "${timer[@]}" go build -mod=readonly -p "$GO_BUILD_P" \
    -trimpath -ldflags "$ldflags" -o "$tmp/" "$@") >>"$log" 2>&1 8>&- ||
    build_failed "building $name ($*) from ${moddir#"$REPO"/}" "$log"
  grep -E 'Elapsed \(wall clock\)|Maximum resident set size' "$log" | sed "s/^\s*/  $name: /" >&2 || true
  printf '%s\n' "$want" >"$tmp/.stamp"
  rm -rf "$out" && mkdir -p "$(dirname "$out")" && mv "$tmp" "$out"
}

k8s_ldflags() {
  local minor=${K8S_VERSION#v1.} flags="-s -w" pkg
  minor=${minor%%.*}
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  printf '%s' "$flags"
}

ensure_k8s() {
  local ld want pkgs=()
  ld=$(k8s_ldflags); want=$(stamp "$K8S_MOD" "$ld")
  cached "$K8S_DIR" "$want" "$K8S_VERSION" "${K8S_BINS[@]}" && return 0
  for b in "${K8S_BINS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  go_build "k8s-$K8S_VERSION" "$K8S_MOD" "$K8S_DIR" "$want" "$ld" "${pkgs[@]}"
  cached "$K8S_DIR" "$want" "$K8S_VERSION" "${K8S_BINS[@]}" ||
    die "the built Kubernetes binaries in $K8S_DIR do not report $K8S_VERSION"
}

ensure_etcd() {
  local ld="-s -w" want
  want=$(stamp "$ETCD_MOD" "$ld")
  cached "$ETCD_DIR" "$want" "${ETCD_VERSION#v}" etcd && return 0
  go_build "etcd-$ETCD_VERSION" "$ETCD_MOD" "$ETCD_DIR" "$want" "$ld" go.etcd.io/etcd/server/v3
  local b
  for b in server v3; do # go names a /vN main package after its parent element
    if [[ -x $ETCD_DIR/$b ]]; then mv "$ETCD_DIR/$b" "$ETCD_DIR/etcd"; fi
  done
  cached "$ETCD_DIR" "$want" "${ETCD_VERSION#v}" etcd ||
    die "the built etcd in $ETCD_DIR does not report ${ETCD_VERSION#v}"
}

ensure_kwok() {
  local ld="-s -w" want
  want=$(stamp "$KWOK_MOD" "$ld")
  cached "$KWOK_DIR" "$want" "${KWOK_VERSION#v}" kwok kwokctl && return 0
  go_build "kwok-$KWOK_VERSION" "$KWOK_MOD" "$KWOK_DIR" "$want" "$ld" \
    sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl
  cached "$KWOK_DIR" "$want" "${KWOK_VERSION#v}" kwok kwokctl ||
    die "the built kwok binaries in $KWOK_DIR do not report ${KWOK_VERSION#v}"
}

# The real node's kubelet and kube-proxy: a separate cache folder, so the
# kwok-only stages never pay for them.
ensure_k8s_node() {
  local ld want pkgs=()
  ld=$(k8s_ldflags); want=$(stamp "$K8S_MOD" "$ld")
  cached "$NODE_DIR" "$want" "$K8S_VERSION" "${NODE_BINS[@]}" && return 0
  for b in "${NODE_BINS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  go_build "k8s-node-$K8S_VERSION" "$K8S_MOD" "$NODE_DIR" "$want" "$ld" "${pkgs[@]}"
  cached "$NODE_DIR" "$want" "$K8S_VERSION" "${NODE_BINS[@]}" ||
    die "the built kubelet and kube-proxy in $NODE_DIR do not report $K8S_VERSION"
}

# metrics-server for the real node (deploy/local/metrics-server-bin: the
# Kubernetes wrapper's requirements plus metrics-server). Built after
# kube-apiserver and the kubelet, most of its packages are in the Go build
# cache. Upstream's Makefile sets client-go's gitVersion to its own tag, as here.
ensure_metrics_server() {
  local ld="-s -w -X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION" want
  want=$(stamp "$METRICS_SERVER_MOD" "$ld")
  cached "$METRICS_SERVER_DIR" "$want" "$METRICS_SERVER_VERSION" metrics-server && return 0
  go_build "metrics-server-$METRICS_SERVER_VERSION" "$METRICS_SERVER_MOD" "$METRICS_SERVER_DIR" "$want" "$ld" "$METRICS_SERVER_PKG"
  cached "$METRICS_SERVER_DIR" "$want" "$METRICS_SERVER_VERSION" metrics-server ||
    die "the built metrics-server in $METRICS_SERVER_DIR does not report $METRICS_SERVER_VERSION"
}

# CoreDNS for the real node's cluster DNS (its own wrapper module: its
# k8s.io/client-go pin differs from the Kubernetes module's).
ensure_coredns() {
  local ld="-s -w" want
  want=$(stamp "$COREDNS_MOD" "$ld")
  cached "$COREDNS_DIR" "$want" "${COREDNS_VERSION#v}" coredns && return 0
  go_build "coredns-$COREDNS_VERSION" "$COREDNS_MOD" "$COREDNS_DIR" "$want" "$ld" pressure.local/coredns
  cached "$COREDNS_DIR" "$want" "${COREDNS_VERSION#v}" coredns ||
    die "the built coredns in $COREDNS_DIR does not report ${COREDNS_VERSION#v}"
}

# Builds run one at a time (per cache), so parallel callers wait and reuse.
cmd_build() {
  command -v go >/dev/null || die "go is not on PATH (Go >= 1.26 is needed to build the control plane)"
  load_versions
  mkdir -p "$CACHE_ROOT"
  exec 8>"$CACHE_ROOT/build.lock"
  flock 8
  ensure_etcd
  ensure_kwok
  ensure_k8s
  if ((REAL_NODE)); then ensure_k8s_node; ensure_metrics_server; ensure_coredns; fi
  exec 8>&-
  note "binaries ready: $K8S_DIR ($K8S_VERSION), $ETCD_DIR, $KWOK_DIR"
}

# ---- the cluster -----------------------------------------------------------

# cluster_env DIR: the kwokctl environment for the cluster whose state is DIR.
cluster_env() {
  DIR=$1
  NAME=$(cat "$DIR/cluster-name" 2>/dev/null || true)
  [[ -n $NAME ]] || NAME="mp-$(printf '%s' "$DIR" | sha256sum | cut -c1-10)"
  export KWOK_WORKDIR=$DIR/kwok KWOK_RUNTIME=binary KWOK_KUBE_VERSION=$K8S_VERSION
  export KWOK_KUBE_BINARY_PREFIX=$K8S_DIR KWOK_KUBECTL_BINARY=$K8S_DIR/kubectl
  export KWOK_ETCD_BINARY=$ETCD_DIR/etcd KWOK_ETCD_VERSION=${ETCD_VERSION#v}
  export KWOK_CONTROLLER_BINARY=$KWOK_DIR/kwok
  export PATH=$K8S_DIR:$KWOK_DIR:$PATH
  CLUSTER_DIR=$KWOK_WORKDIR/clusters/$NAME
  KUBECTL=("$K8S_DIR/kubectl" --kubeconfig "$DIR/kubeconfig")
}

# kwokctl SUBCOMMAND... [FLAGS]: kwokctl on this cluster.
kwokctl() { "$KWOK_DIR/kwokctl" "$@" --name "$NAME"; }

abs_dir() { mkdir -p "$1" && (cd "$1" && pwd -P); }

# retry SECONDS WHAT CMD...: run CMD every second until it succeeds.
retry() {
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { note "ERROR: timed out after $1 s waiting for $what"; return 1; }
    sleep 1
  done
}

nodes_ready() {
  local n
  n=$("${KUBECTL[@]}" get nodes -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c '^True$')
  ((n >= NODES))
}

show_logs() {
  local f
  for f in "$CLUSTER_DIR"/logs/*.log; do
    [[ -f $f ]] || continue
    note "---- last lines of $f"
    tail -n 15 "$f" >&2
  done
}

cmd_status() {
  load_versions
  local dir
  [[ -d $1 ]] || die "no cluster state in $1"
  dir=$(abs_dir "$1")
  cluster_env "$dir"
  [[ -f $DIR/kubeconfig ]] || die "no kubeconfig in $DIR (run: $0 up $DIR)"
  "${KUBECTL[@]}" get --raw /readyz >/dev/null || die "the API server of $DIR does not answer"
  note "cluster $NAME in $DIR is up: $("${KUBECTL[@]}" config view -o jsonpath='{.clusters[0].cluster.server}')"
}

cmd_up() {
  local dir start=$SECONDS
  cmd_build
  dir=$(abs_dir "$1")
  if [[ -f $dir/cluster-name ]]; then
    # A running cluster is reused, unless a real node is asked for and it has none.
    if { [[ -d $dir/node ]] || ((!REAL_NODE)); } && (cmd_status "$dir") 2>/dev/null; then
      note "already up in $dir"
      return 0
    fi
    note "stale state in $dir, or no real node in it: cleaning it first"
    cmd_down "$dir"
  fi
  cluster_env "$dir"
  printf '%s\n' "$NAME" >"$DIR/cluster-name"
  local cfg=(-c "$REPO/e2e/kwok/kwokctl.yaml") f
  if ((REAL_NODE)); then
    node_pre_up "$DIR" || { cmd_down "$DIR"; die "preparing the real node failed"; }
    cfg=(-c "$NDIR/kwokctl.yaml")
  fi
  for f in "$REPO"/e2e/kwok/*-stage*.yaml; do cfg+=(-c "$f"); done
  note "starting cluster $NAME (Kubernetes $K8S_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION) in $DIR"
  # kwokctl picks free ports when it creates a cluster: one creation at a time.
  # The lock's descriptor is closed for kwokctl, whose children outlive us.
  exec 7>"$CACHE_ROOT/up.lock"
  flock 7
  if ! kwokctl create cluster "${cfg[@]}" --kubeconfig "" --wait "${UP_TIMEOUT}s" \
    --timeout "${UP_TIMEOUT}s" >"$DIR/kwokctl-create.log" 2>&1 7>&-; then
    exec 7>&-
    cat "$DIR/kwokctl-create.log" >&2
    show_logs
    cmd_down "$DIR"
    die "kwokctl create cluster failed (see above)"
  fi
  exec 7>&-
  kwokctl get kubeconfig >"$DIR/kubeconfig.tmp" && mv "$DIR/kubeconfig.tmp" "$DIR/kubeconfig"
  chmod 600 "$DIR/kubeconfig"
  ln -sfn "$K8S_DIR/kubectl" "$DIR/kubectl"
  wait_cluster || { show_logs; cmd_down "$DIR"; die "the cluster in $DIR did not become ready"; }
  if ((REAL_NODE)); then
    node_up || { cmd_down "$DIR"; die "the real node of $DIR did not come up (logs were in $DIR/node/logs)"; }
  fi
  write_env
  note "up in $((SECONDS - start)) s: KUBECONFIG=$DIR/kubeconfig server $("${KUBECTL[@]}" config view -o jsonpath='{.clusters[0].cluster.server}')"
}

wait_cluster() {
  retry "$UP_TIMEOUT" "the API server /readyz" "${KUBECTL[@]}" get --raw /readyz || return 1
  kwokctl scale node --replicas "$NODES" >>"$DIR/kwokctl-create.log" 2>&1 ||
    { note "ERROR: kwokctl scale node failed"; cat "$DIR/kwokctl-create.log" >&2; return 1; }
  retry "$UP_TIMEOUT" "$NODES Ready nodes" nodes_ready || return 1
  retry "$UP_TIMEOUT" "the default ServiceAccount" "${KUBECTL[@]}" -n default get serviceaccount default
}

write_env() {
  cat >"$DIR/env" <<ENV
# Source this file to use the cluster started by e2e/control-plane.sh up $DIR
export KUBECONFIG=$DIR/kubeconfig
export PATH=$K8S_DIR:\$PATH
ENV
}

# live_pids: processes recorded in DIR's pid files that still run with DIR on
# their command line (so a recycled pid is never touched).
live_pids() {
  local pidfile pid
  for pidfile in "$DIR"/kwok/clusters/*/pids/*.pid; do
    [[ -f $pidfile ]] || continue
    pid=$(tr -cd '0-9' <"$pidfile")
    [[ -n $pid && -r /proc/$pid/cmdline ]] || continue
    [[ $(tr '\0' ' ' <"/proc/$pid/cmdline") == *"$DIR/"* ]] && printf '%s\n' "$pid"
  done
  return 0
}

# kill_pids PID...: TERM, then KILL after 15 s, each PID still running from DIR.
kill_pids() {
  local pid deadline=$((SECONDS + 15))
  for pid in "$@"; do
    [[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) == *"$DIR/"* ]] || continue
    note "stopping leftover process $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-80)"
    kill -TERM "$pid" 2>/dev/null || continue
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  done
}

cmd_down() {
  load_versions
  [[ -d $1 ]] || { note "nothing to stop: $1 does not exist"; return 0; }
  local dir
  dir=$(cd "$1" && pwd -P)
  cluster_env "$dir"
  # The real node first: its kubelet would otherwise fight a vanishing API server.
  if [[ -d $DIR/node ]]; then node_down "$DIR"; fi
  local pids
  mapfile -t pids < <(live_pids)
  if [[ -d $CLUSTER_DIR && -x $KWOK_DIR/kwokctl ]]; then
    # --kubeconfig names a scratch file: kwokctl would edit ~/.kube/config.
    timeout 120 "$KWOK_DIR/kwokctl" delete cluster --name "$NAME" \
      --kubeconfig "$DIR/kwok/scratch.kubeconfig" >"$DIR/kwokctl-delete.log" 2>&1 ||
      { note "kwokctl delete cluster failed; killing by pid files"; cat "$DIR/kwokctl-delete.log" >&2; }
  fi
  ((${#pids[@]} == 0)) || kill_pids "${pids[@]}"
  rm -rf "$DIR/kwok" "$DIR/kubeconfig" "$DIR/kubeconfig.tmp" "$DIR/kubectl" "$DIR/env" \
    "$DIR/cluster-name" "$DIR/kwokctl-create.log" "$DIR/kwokctl-delete.log"
  note "down: $DIR"
}

# cmd_node_namespace DIR NS: create (or annotate) NS so all its pods run on the real node.
cmd_node_namespace() {
  load_versions
  [[ -d $1/node ]] || die "no real node in $1 (run: $0 up $1 --real-node)"
  cluster_env "$(cd "$1" && pwd -P)"
  node_namespace "$2"
}

main() {
  local cmd=${1:-}
  case $cmd in
    build)
      [[ ${2:-} == --real-node ]] && REAL_NODE=1
      cmd_build ;;
    up)
      [[ $# -ge 2 && -n $2 ]] || die "usage: $0 up DIR [--real-node]"
      if [[ ${3:-} == --real-node ]]; then REAL_NODE=1; elif [[ $# -gt 2 ]]; then die "unknown option: $3"; fi
      cmd_up "$2" ;;
    node-namespace)
      [[ $# -eq 3 && -n $2 && -n $3 ]] || die "usage: $0 node-namespace DIR NAMESPACE"
      cmd_node_namespace "$2" "$3" ;;
    down | status)
      [[ $# -eq 2 && -n $2 ]] || die "usage: $0 $cmd DIR"
      "cmd_$cmd" "$2" ;;
    *) die "usage: $0 build [--real-node] | up DIR [--real-node] | down DIR | status DIR" ;;
  esac
}

main "$@"
