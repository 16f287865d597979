#!/usr/bin/env bash
# Server-side dry run of what users install, against a real API server (issue 7):
#   the PressureTest CRD, the rendered operator chart (both RBAC scopes) and deploy/manifests
#   (kubectl apply -k), then the example PressureTests against the installed CRD.
#
#   scripts/check-packaging-cluster.sh KUBECONFIG KUBECTL
#
# e.g. after `e2e/control-plane.sh up "$DIR"`:
#   scripts/check-packaging-cluster.sh "$DIR/kubeconfig" "$DIR/kubectl"
# Side effects on that cluster: creates the namespace pressure-system (the dry runs need it),
# installs the CRD for real (to validate the examples), and installs then uninstalls the chart as
# release check-packaging (to ask the RBAC authorizer what its ServiceAccount may do). Needs helm: run
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
  "$kubectl" apply --server-side --field-manager=check-packaging -f "$crd" || return 1
  # Not `kubectl wait` alone: on a CRD whose status has no conditions yet (the API server is still
  # compiling the schema and its CEL rules; with placement's Kubernetes types that takes a moment)
  # it fails with "accessor error: <nil>" instead of waiting.
  local established="" _
  for _ in $(seq 1 120); do
    established=$("$kubectl" get crd pressuretests.pressure.mailproxy.dev \
      -o jsonpath='{.status.conditions[?(@.type=="Established")].status}' 2>/dev/null || true)
    [ "$established" = True ] && return 0
    sleep 0.5
  done
  echo "the CRD is not Established after 60 s (Established=${established:-unset})" >&2
  return 1
}
check "CRD installs and becomes Established" "see the API server's message above" install_crd
for example in deploy/examples/*.yaml; do
  check "example $example against the CRD (schema and CEL rules)" "fix $example or the CRD" \
    dry -n "$namespace" -f "$example"
done

# A real install of the chart (kwok marks its pod Ready; no container runs), then what its
# ServiceAccount may and may not do, asked of the API server's RBAC authorizer.
release=check-packaging
sa=system:serviceaccount:$namespace:$release-pressure-operator
install_chart() {
  helm upgrade --install "$release" charts/pressure-operator --namespace "$namespace" \
    --set image.tag=ci --wait --timeout 120s &&
    "$kubectl" -n "$namespace" wait --for=condition=Available "deploy/$release-pressure-operator" --timeout=60s
}
rbac_as_intended() {
  local ok=0 rule
  # Allowed: what operator/src/rbac.rs lists (the e2e test e2e_rbac.rs asks about every verb).
  for rule in "get pressuretests.pressure.mailproxy.dev -n default" "watch pressuretests.pressure.mailproxy.dev -n default" \
    "patch pressuretests.pressure.mailproxy.dev --subresource=status -n default" \
    "create deployments.apps -n default" "delete deployments.apps -n default" "patch statefulsets.apps -n default" \
    "create jobs.batch -n default" "create horizontalpodautoscalers.autoscaling -n default" "get secrets -n default" \
    "create secrets -n default" "patch secrets -n default" "get networkpolicies.networking.k8s.io -n default" \
    "patch networkpolicies.networking.k8s.io -n default" "delete networkpolicies.networking.k8s.io -n default" \
    "create events.events.k8s.io -n default" "list pods -n default" "create leases.coordination.k8s.io -n $namespace" \
    "get leases.coordination.k8s.io/pressure-operator -n $namespace" "update leases.coordination.k8s.io/pressure-operator -n $namespace"; do
    # shellcheck disable=SC2086 # the rule is split into kubectl's arguments on purpose
    "$kubectl" auth can-i --as="$sa" $rule >/dev/null || { echo "should be allowed: $rule"; ok=1; }
  done
  # Denied: everything the code does not call.
  for rule in "delete pods -n default" "get pods -n default" "watch pods -n default" \
    "list secrets -n default" "watch secrets -n default" "update secrets -n default" "delete secrets -n default" \
    "list configmaps -n default" "watch configmaps -n default" "update configmaps -n default" \
    "list services -n default" "watch services -n default" "update services -n default" \
    "update deployments.apps -n default" "delete statefulsets.apps -n default" "update jobs.batch -n default" \
    "list horizontalpodautoscalers.autoscaling -n default" "list networkpolicies.networking.k8s.io -n default" \
    "update pressuretests.pressure.mailproxy.dev -n default" "update pressuretests.pressure.mailproxy.dev --subresource=status -n default" \
    "get nodes" "create clusterroles.rbac.authorization.k8s.io" "update leases.coordination.k8s.io/other -n $namespace" \
    "list leases.coordination.k8s.io -n $namespace" "create leases.coordination.k8s.io -n default" \
    "escalate roles.rbac.authorization.k8s.io -n default"; do
    # shellcheck disable=SC2086
    if "$kubectl" auth can-i --as="$sa" $rule >/dev/null 2>&1; then echo "should be denied: $rule"; ok=1; fi
  done
  return $ok
}
check "helm install of the operator chart; Deployment Available" "see the messages above" install_chart
notes_start_a_test() {
  helm get notes "$release" --namespace "$namespace" >"$work/notes.txt" &&
    grep -F "kubectl -n default apply -f deploy/examples/smoke.yaml" "$work/notes.txt" &&
    grep -F "kubectl -n default wait --for=condition=Complete pt/smoke" "$work/notes.txt" &&
    "$kubectl" get pt -A >/dev/null
}
check "NOTES.txt tells how to start a first test (and \`kubectl get pt\` works)" \
  "fix charts/pressure-operator/templates/NOTES.txt" notes_start_a_test
check "operator ServiceAccount: allowed exactly what it needs" "fix charts/pressure-operator/templates/rbac.yaml" rbac_as_intended
helm uninstall "$release" --namespace "$namespace" --wait >/dev/null 2>&1 || true

if [ "${#failures[@]}" -gt 0 ]; then
  printf '\n%d cluster packaging check(s) failed:\n' "${#failures[@]}"
  printf '  - %s\n' "${failures[@]}"
  exit 1
fi
printf '\nAll cluster packaging checks passed.\n'
