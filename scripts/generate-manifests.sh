#!/usr/bin/env bash
# Renders the plain manifests under deploy/manifests/ from the charts, so that
# `kubectl apply -k deploy/manifests` installs the operator without Helm.
#
#   scripts/generate-manifests.sh            # rewrite deploy/manifests/
#   scripts/generate-manifests.sh OUT_DIR    # write elsewhere (the drift check uses this)
#
# Needs helm on PATH (scripts/check-packaging.sh installs one into the cache and puts it there).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/deploy/manifests}
release=pressure-operator
namespace=pressure-system
header="# Generated from charts/pressure-operator by scripts/generate-manifests.sh; do not edit."

command -v helm >/dev/null || {
  echo "helm not found: run scripts/check-packaging.sh once (it installs helm into the cache)" >&2
  exit 1
}
mkdir -p "$out/crds"

{
  echo "$header"
  echo "# Namespace ${namespace}, release ${release}, cluster-wide RBAC (rbac.scope=cluster)."
  echo "---"
  echo "apiVersion: v1"
  echo "kind: Namespace"
  echo "metadata:"
  echo "  name: ${namespace}"
  echo "  labels:"
  echo "    app.kubernetes.io/part-of: mail-pressure"
  helm template "$release" "$root/charts/pressure-operator" --namespace "$namespace"
} >"$out/operator.yaml"

# kustomize refuses files outside its folder, so the CRD is copied in.
{
  echo "# Generated from charts/pressure-crds/crds/pressuretests.yaml (written by crdgen)"
  echo "# by scripts/generate-manifests.sh; do not edit."
  cat "$root/charts/pressure-crds/crds/pressuretests.yaml"
} >"$out/crds/pressuretests.yaml"

cat >"$out/kustomization.yaml" <<KUST
$header
# Install the PressureTest CRD and the operator without Helm:
#   kubectl apply --server-side -k deploy/manifests
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - crds/pressuretests.yaml
  - operator.yaml
KUST
