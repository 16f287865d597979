#!/usr/bin/env bash
# The operator for real: installs the CRD and the operator with the Helm chart on the real node
# of `e2e/control-plane.sh up DIR --real-node`, runs a PressureTest (default
# deploy/examples/smoke.yaml, its image fields deep-merged with DIR/images.yaml) and checks that it
# reaches Complete=True and Succeeded=True, that every pod of the test ran on the real node
# (containerd holds its containers) and that no container restarted.
#
#   e2e/real-node-operator.sh DIR [EXAMPLE.yaml]
#
# Needs the project's images on the node (scripts/build-images.sh, run by `up --real-node`) and
# helm (on PATH or in $PRESSURE_CACHE_DIR/bin: scripts/check-packaging.sh installs it). Starts the
# cluster in DIR if none runs there and stops it again at the end. Exit status 0 = passed.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CP=$REPO/e2e/control-plane.sh
CACHE=${PRESSURE_CACHE_DIR:-$HOME/.cache/mail-pressure}
WAIT=${PRESSURE_OPERATOR_WAIT:-600s}
export PATH=$CACHE/bin:$PATH

[[ $# -ge 1 && -n $1 ]] || { echo "usage: $0 DIR [EXAMPLE.yaml]" >&2; exit 2; }
mkdir -p "$1"
DIR=$(cd "$1" && pwd -P)
EXAMPLE=${2:-$REPO/deploy/examples/smoke.yaml}
OP_NS=pressure-system
NS=rn-op-$$
RELEASE=pressure
STARTED=0

say() { printf 'real-node-operator: %s\n' "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }
k() { "$DIR/kubectl" --kubeconfig "$DIR/kubeconfig" "$@"; }

command -v helm >/dev/null || fail "helm not found (run scripts/check-packaging.sh, which installs it into $CACHE/bin)"

cleanup() {
  local rc=$?
  if ((rc != 0)) && [[ -f $DIR/kubeconfig ]]; then
    say "FAILED; state of $NS and $OP_NS:"
    k -n "$NS" get pt -o wide >&2 || true
    k -n "$NS" get pt -o jsonpath='{.items[*].status}' >&2 || true
    echo >&2
    k -n "$NS" get all -o wide >&2 || true
    k -n "$NS" get events --sort-by=.lastTimestamp >&2 || true
    k -n "$OP_NS" logs "deploy/$RELEASE-pressure-operator" --tail=40 >&2 || true
  fi
  k delete namespace "$NS" --wait=false >/dev/null 2>&1 || true
  helm uninstall "$RELEASE" --kubeconfig "$DIR/kubeconfig" -n "$OP_NS" >/dev/null 2>&1 || true
  if ((STARTED)); then "$CP" down "$DIR"; fi
  exit "$rc"
}
trap cleanup EXIT

if ! [[ -d $DIR/node ]] || ! "$CP" status "$DIR" >/dev/null 2>&1; then
  STARTED=1
  "$CP" up "$DIR" --real-node
fi
grep -q 'image' "$DIR/images.yaml" 2>/dev/null ||
  fail "no project images on the node ($DIR/images.yaml names none): scripts/build-images.sh must exist"
start=$SECONDS

# The CRD, then the operator in a namespace whose pods run on the real node.
k apply --server-side -f "$REPO/charts/pressure-crds/crds/pressuretests.yaml" >/dev/null
k wait --for=condition=Established crd/pressuretests.pressure.mailproxy.dev --timeout=60s >/dev/null
"$CP" node-namespace "$DIR" "$OP_NS"
helm upgrade --install "$RELEASE" "$REPO/charts/pressure-operator" --kubeconfig "$DIR/kubeconfig" \
  -n "$OP_NS" --set image.pullPolicy=Never --wait --timeout 180s >/dev/null ||
  fail "helm install of the operator did not become ready"
say "operator installed with the chart and Available after $((SECONDS - start)) s"

# The example with the node's images, in a namespace of its own on the real node.
"$CP" node-namespace "$DIR" "$NS"
name=$(python3 - "$EXAMPLE" "$DIR/images.yaml" "$DIR/pt-$NS.yaml" <<'EOF'
import sys, yaml
example = yaml.safe_load(open(sys.argv[1]))
images = yaml.safe_load(open(sys.argv[2])) or {}
def merge(base, extra):
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
merge(example.setdefault("spec", {}), images)
yaml.safe_dump(example, open(sys.argv[3], "w"))
print(example["metadata"]["name"])
EOF
)
k -n "$NS" apply -f "$DIR/pt-$NS.yaml" >/dev/null
applied=$SECONDS
say "applied $(basename "$EXAMPLE") as pt/$name in $NS"
# Until the run completes, every 2 s: the test's pods (node, restarts, container ids), the
# containers containerd holds, and the node's memory (pods are gone once the run finishes).
sock=$DIR/node/containerd/containerd.sock
seen=$DIR/node/operator-run
mkdir -p "$seen" && : >"$seen/pods" && : >"$seen/containers" && : >"$seen/rss"
deadline=$((SECONDS + ${WAIT%s}))
until [[ $(k -n "$NS" get pt "$name" -o jsonpath='{.status.conditions[?(@.type=="Complete")].status}') == True ]]; do
  ((SECONDS < deadline)) || fail "pt/$name did not complete within $WAIT"
  k -n "$NS" get pods -o jsonpath='{range .items[*]}{.metadata.name} {.spec.nodeName} {range .status.containerStatuses[*]}{.restartCount}={.containerID} {end}{"\n"}{end}' >>"$seen/pods"
  ctr --address "$sock" -n k8s.io containers ls -q >>"$seen/containers"
  # shellcheck disable=SC2009 # the shims are found by the socket of this node's containerd
  { cat "$DIR"/node/pids/{containerd,kubelet,kube-proxy,coredns}.pid | xargs ps -o rss= -p
    ps -eo rss=,args= | grep -F -- "-address $sock" | grep -v grep | awk '{ print $1 }'; } |
    awk '{ s += $1 } END { print int(s / 1024) }' >>"$seen/rss"
  sleep 2
done
k -n "$NS" get pt "$name" -o wide >&2
[[ $(k -n "$NS" get pt "$name" -o jsonpath='{.status.conditions[?(@.type=="Succeeded")].status}') == True ]] ||
  fail "pt/$name completed but did not succeed: $(k -n "$NS" get pt "$name" -o jsonpath='{.status.conditions}')"
say "ok: pt/$name Complete=True, Succeeded=True, $((SECONDS - applied)) s after apply"
say "figures: $(k -n "$NS" get pt "$name" -o jsonpath='generated={.status.figures.generated} delivered={.status.figures.delivered} duplicates={.status.figures.duplicates} attachmentMismatches={.status.figures.attachmentMismatches}')"

# Every pod of the test ran on the real node, containerd held its containers, none restarted.
pods=$(awk '{ print $1 }' "$seen/pods" | sort -u | wc -l)
((pods > 0)) || fail "no pod of the test was ever seen in $NS"
awk '$2 != "real-node" { print "not on real-node: " $0; bad = 1 } END { exit bad }' "$seen/pods" ||
  fail "a pod of the test ran elsewhere"
restarted=$(awk '{ for (i = 3; i <= NF; i++) { split($i, a, "="); if (a[1] > 0) print $1 " restarts=" a[1] } }' "$seen/pods" | sort -u)
while read -r id; do
  id=${id#containerd://}
  [[ -z $id ]] || grep -qx "$id" "$seen/containers" || fail "containerd never listed container $id"
done < <(awk '{ for (i = 3; i <= NF; i++) { split($i, a, "="); if (a[2] != "") print a[2] } }' "$seen/pods" | sort -u)
say "ok: $pods pods ran on real-node, containerd held every container; node RSS (daemons + shims) peaked at $(sort -n "$seen/rss" | tail -1) MiB"
[[ -z $restarted ]] || fail "containers restarted during the run: $(tr '\n' ';' <<<"$restarted")"
say "passed in $((SECONDS - start)) s"
