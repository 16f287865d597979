#!/usr/bin/env bash
# End-to-end tests of pressure-operator against a real API server.
#
#   e2e/run.sh DIR [extra cargo test args…]
#
# Brings up the local control plane in DIR (e2e/control-plane.sh up DIR; returns at once when it
# already runs there), builds the binaries the tests start (pressure-operator, mailproxy,
# client-sim), then runs `cargo test -p e2e` with KUBECONFIG=DIR/kubeconfig and
# E2E_KUBECTL=DIR/kubectl. Teardown is the caller's: `e2e/control-plane.sh down DIR`.
#
# Environment: CARGO_TARGET_DIR (as for any cargo build; the tests find the binaries beside
# themselves), E2E_TEST_THREADS (default 4: tests are isolated by namespace and each starts its
# own operator), E2E_KEEP_NS=1 keeps the namespace of a failed test.
set -euo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: e2e/run.sh DIR [cargo test args…]   (DIR holds the local control plane)" >&2
  exit 2
fi
DIR=$1
shift
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

start=$(date +%s)
e2e/control-plane.sh up "$DIR"
echo "run.sh: control plane up after $(($(date +%s) - start)) s"

cargo build -p pressure-operator -p mailproxy -p client-sim -p kubectl-pressure
cargo test -p e2e --no-run
echo "run.sh: binaries built after $(($(date +%s) - start)) s"

export KUBECONFIG=$DIR/kubeconfig
export E2E_KUBECTL=$DIR/kubectl
cargo test -p e2e --no-fail-fast "$@" -- --test-threads="${E2E_TEST_THREADS:-4}" --nocapture
echo "run.sh: e2e tests passed in $(($(date +%s) - start)) s"
