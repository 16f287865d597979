#!/usr/bin/env bash
# Server-side dry run of what users install, against a real API server (issue 7):
#   the PressureTest CRD, the rendered operator chart (both RBAC scopes) and deploy/manifests
#   (kubectl apply -k), then the example PressureTests against the installed CRD.
#
#   scripts/check-packaging-cluster.sh KUBECONFIG KUBECTL
#
# e.g. after `e2e/control-plane.sh up "$DIR"`:
#   scripts/check-packaging-cluster.sh "$DIR/kubeconfig" "$DIR/kubectl"
# Side effects on that cluster: creates the namespace pressure-system (the dry runs need it) and
# installs the CRD for real (to validate the examples), nothing else. Needs helm: run
# scripts/check-packaging.sh first (it installs helm into the cache).
set -uo pipefail
[ $# -eq 2 ] || { echo "usage: $0 KUBECONFIG KUBECTL" >&2; exit 2; }
export KUBECONFIG=$1
kubectl=$2
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
cache=${PRESSURE_CACHE_DIR:-$HOME/.cache/mail-pressure}
export PATH="$cache/bin:$PATH"
command -v helm >/dev/null || { echo "helm not found: run scripts/check-packaging.sh first" >&2; exit 1; }
[ -f "$KUBECONFIG" ] || { echo "no kubeconfig at $KUBECONFIG (start the control plane: e2e/control-plane.sh up DIR)" >&2; exit 1; }

work=$(mktemp -d /tmp/check-packaging-cluster.XXXXXX)
trap 'rm -rf "$work"' EXIT
namespace=pressure-system
crd=charts/pressure-crds/crds/pressuretests.yaml
failures=()
check() {
  local name=$1 fix=$2
  shift 2
  if "$@" >"$work/out" 2>&1; then
    printf '  ok   %s\n' "$name"
  else
    printf '  FAIL %s\n' "$name"
    sed 's/^/       | /' "$work/out" | tail -n 40
    printf '       fix: %s\n' "$fix"
    failures+=("$name -- $fix")
  fi
}
dry() { "$kubectl" apply --server-side --dry-run=server --validate=strict --field-manager=check-packaging "$@"; }

echo "==> Server-side dry run against $("$kubectl" config view --minify -o jsonpath='{.clusters[0].cluster.server}')"
"$kubectl" get --raw /readyz >/dev/null || { echo "the API server does not answer" >&2; exit 1; }
"$kubectl" create namespace "$namespace" --dry-run=client -o yaml | "$kubectl" apply -f - >/dev/null ||
  { echo "cannot create namespace $namespace" >&2; exit 1; }

check "CRD $crd" "regenerate it: cargo run -p pressure-crds --bin crdgen" dry -f "$crd"
for scope in cluster namespace; do
  # shellcheck disable=SC2016 # expanded by the inner shell
  check "rendered chart (rbac.scope=$scope)" "fix charts/pressure-operator/templates" sh -c '
    helm template pressure-operator charts/pressure-operator --namespace "$1" --set rbac.scope="$2" >"$3" &&
    "$4" apply --server-side --dry-run=server --validate=strict --field-manager=check-packaging -f "$3"' _ \
    "$namespace" "$scope" "$work/chart-$scope.yaml" "$kubectl"
done
check "deploy/manifests (kubectl apply -k)" "run scripts/generate-manifests.sh and commit" dry -k deploy/manifests

install_crd() {
  "$kubectl" apply --server-side --field-manager=check-packaging -f "$crd" &&
    "$kubectl" wait --for=condition=Established "crd/pressuretests.pressure.mailproxy.dev" --timeout=60s
}
check "CRD installs and becomes Established" "see the API server's message above" install_crd
for example in deploy/examples/*.yaml; do
  check "example $example against the CRD (schema and CEL rules)" "fix $example or the CRD" \
    dry -n "$namespace" -f "$example"
done

if [ "${#failures[@]}" -gt 0 ]; then
  printf '\n%d cluster packaging check(s) failed:\n' "${#failures[@]}"
  printf '  - %s\n' "${failures[@]}"
  exit 1
fi
printf '\nAll cluster packaging checks passed.\n'
