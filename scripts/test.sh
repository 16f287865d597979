#!/usr/bin/env bash
# The project's one test command (README "Test"): formatting, lints, every test.
#
# It starts what the tests need itself (a throwaway PostgreSQL 15 cluster on a free loopback
# port; a local Kubernetes control plane built from Go modules, see e2e/README.md), works on a
# fresh machine as on a used one, and stops everything it started on exit.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=lib/postgres.sh
source scripts/lib/postgres.sh

# Build caches live outside the clone, like the Kubernetes binaries: a used machine rebuilds only
# what changed, a fresh one builds everything once.
cache=${PRESSURE_CACHE_DIR:-$HOME/.cache/mail-pressure}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}
export FUZZ_TARGET_DIR=${FUZZ_TARGET_DIR:-$cache/target-fuzz}

work=$(mktemp -d /tmp/mail-pressure-test.XXXXXX)
chmod 755 "$work" # the postgres user must reach its data folder inside
cleanup() {
  e2e/control-plane.sh down "$work/k8s" >/dev/null 2>&1 || true
  pg_down "$work/pg"
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

step() { printf '\n==> %s (%s)\n' "$*" "$(date +%H:%M:%S)"; }

step "Formatting (cargo fmt --check)"
cargo fmt --all -- --check

step "Lints (cargo clippy -D warnings)"
cargo clippy --workspace --all-targets -- -D warnings

step "Starting PostgreSQL"
pg_up "$work/pg"

step "Tests (cargo test --workspace, without the cluster tests)"
cargo test --workspace --exclude e2e

step "Benchmark smoke runs (bench/*.py, a few seconds each, so the harness cannot rot)"
python3 bench/throughput.py --smoke --store sqlite --rates 200 --duration 3 --warmup 1 --profile debug --json "$work/bench-smoke.json"
python3 bench/sync_latency.py --smoke --store sqlite --rates 200 --duration 3 --warmup 2 --profile debug --json "$work/bench-sync-smoke.json"
python3 bench/attachments.py --smoke --store sqlite --attachment-mbps 5 --small-rate 100 --duration 3 --warmup 2 --profile debug --json "$work/bench-att-smoke.json"
python3 bench/memory.py --smoke --store sqlite --profile debug --json "$work/bench-mem-smoke.json"
python3 bench/soak.py --smoke --store sqlite --profile debug --json "$work/bench-soak-smoke.json"
python3 bench/burst.py --smoke --store sqlite --profile debug --json "$work/bench-burst-smoke.json"

step "Fuzzing smoke run (libFuzzer, 15 s per parser)"
scripts/fuzz-smoke.sh

step "Packaging: charts, manifests, dashboard, compose, workflows"
scripts/check-packaging.sh

step "Images without a Docker engine (scripts/build-images.sh, each proven under containerd)"
# Debug binaries (the ones the tests already built; a release build of the workspace does not fit
# the 75-minute cold budget), and only the images the real-node run uses. Prometheus (DNS service
# discovery only), Mailpit and the real node's NetworkPolicy agent (kube-network-policies) are
# built from their Go modules: cold about 2.5, 6 and 3 minutes (deploy/README.md).
scripts/build-images.sh --profile debug mailproxy client-sim pressure-operator postgres pause \
  prometheus mailpit kube-network-policies
scripts/check-images.sh

step "Compose quick start with podman (scripts/check-compose.sh)"
scripts/check-compose.sh

step "Kubernetes control plane and a real node (built once from Go modules, then cached)"
# The real node (kubelet, containerd, kube-proxy, CoreDNS in a network namespace of its own) sits
# beside kwok's fake nodes: kwok tests never land on it, real-pod tests ask for it (e2e/README.md).
# It loads the images of the step above (the same list: a warm build-images.sh is a no-op).
PRESSURE_BUILD_IMAGES_ARGS="--profile debug mailproxy client-sim pressure-operator postgres pause prometheus mailpit kube-network-policies" \
  e2e/control-plane.sh up "$work/k8s" --real-node
e2e/smoke.sh "$work/k8s"
e2e/real-node-smoke.sh "$work/k8s"

step "Packaging against the API server (server-side dry runs, chart install, RBAC)"
scripts/check-packaging-cluster.sh "$work/k8s/kubeconfig" "$work/k8s/kubectl"

step "End-to-end: the operator against the API server (e2e/run.sh)"
e2e/run.sh "$work/k8s"

step "Real node: PressureTests in real pods with the project's images (e2e/real-node-operator.sh)"
# The smoke test with its own Prometheus: every target up, every PromQL expression of the shipped
# dashboard answers while the load runs (e2e/dashboard_queries.py); beside the load, probe pods
# check that the NetworkPolicies hold (enforced on the node) while Prometheus still scrapes.
e2e/real-node-operator.sh "$work/k8s" --prometheus --check-network-policies
# Mailpit as the sink, briefly: its API's message count is the status' delivered, = generated.
e2e/real-node-operator.sh "$work/k8s" --sink mailpit --duration 30
# The seed's four tenants, shortened, with two proxy replicas: one proxy pod deleted 30 s into
# the load and PostgreSQL's pod 70 s in (its data on a volume). Nothing may be lost; a deleted proxy
# may resend what it sent but had not recorded (bounded); messages wait while the database is away.
e2e/real-node-operator.sh "$work/k8s" deploy/examples/seed-four-tenants.yaml --duration 120 \
  --proxy-replicas 2 --delete-proxy-pod-at 30 --delete-postgres-pod-at 70 \
  --max-duplicates 50 --max-p99-ms 150000
# The HPA on the node's metrics-server: the seed's four tenants against a proxy with a 200m CPU
# request, HPA 1-3 at 50 %. The HPA must add replicas under the load (the report's throughput by
# replica count then has more than one line, its timeline the desired replicas and CPU), nothing may
# be lost, and with a 30 s scale-down window it must be back at one replica after the run. The
# first 45 s at 10 % of the rates and a 5 s warm-up keep one replica in the measured window (the
# debug proxy peaked at 139m even then: with a 100m request the HPA acted 30 s into the load); then
# the full rates (one debug proxy took about 190m).
e2e/real-node-operator.sh "$work/k8s" deploy/examples/seed-four-tenants.yaml --duration 120 --warmup 5 \
  --low-load-for 45 --hpa-max 3 --hpa-target-cpu 50 --proxy-cpu-request 200 --scale-down-seconds 30 \
  --max-duplicates 50 --max-p99-ms 150000 --expect-scale-out

step "All checks passed"
