#!/usr/bin/env bash
# Smoke test of the local control plane (e2e/control-plane.sh).
#
#   e2e/smoke.sh DIR
#
# Uses the cluster already running in DIR, or starts one there (and stops it
# at the end). Checks, against the real API server, controller manager,
# scheduler and kwok: a Deployment and a StatefulSet reach 2 ready replicas
# (and the headless Service's EndpointSlice lists them); a Job completes;
# the pod-fail label gives ImagePullBackOff / OOMKilled / CrashLoopBackOff
# statuses and a failed Job; deleting the Deployment garbage-collects its
# ReplicaSet and pods; a CRD with a status subresource and a CEL rule is served
# and a server-side dry run rejects an invalid object. Exits non-zero on the
# first failed check. Prints the control plane's memory use.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ $# -eq 1 && -n $1 ]] || { echo "usage: $0 DIR" >&2; exit 2; }
mkdir -p "$1"
DIR=$(cd "$1" && pwd -P)
WAIT=${PRESSURE_SMOKE_WAIT:-120s}
NS=smoke-$$
FAIL_LABEL=pressure.mailproxy.dev/kwok-fail

say() { printf 'smoke.sh: %s\n' "$*" >&2; }
fail() { printf 'smoke.sh: FAILED: %s\n' "$*" >&2; exit 1; }

STARTED=0
cleanup() {
  local rc=$?
  if ((rc != 0)) && [[ -f $DIR/kubeconfig ]]; then
    k get all,events -n "$NS" >&2 2>/dev/null || true
  fi
  if [[ -f $DIR/kubeconfig ]]; then k delete namespace "$NS" --wait=false >/dev/null 2>&1 || true; fi
  ((STARTED == 0)) || "$REPO/e2e/control-plane.sh" down "$DIR" || true
  exit "$rc"
}
trap cleanup EXIT

if ! "$REPO/e2e/control-plane.sh" status "$DIR" 2>/dev/null; then
  STARTED=1
  "$REPO/e2e/control-plane.sh" up "$DIR"
fi

k() { "$DIR/kubectl" --kubeconfig "$DIR/kubeconfig" "$@"; }
kn() { k -n "$NS" "$@"; }

# expect_jsonpath WHAT RESOURCE JSONPATH VALUE: wait until it holds.
expect_jsonpath() {
  kn wait --for="jsonpath=$3=$4" "$2" --timeout="$WAIT" >/dev/null ||
    fail "$1: $2 $3 is '$(kn get "$2" -o jsonpath="$3" 2>&1)', expected '$4'"
  say "ok: $1"
}

# gone WHAT SELECTOR KIND...: wait until no object of KIND matches SELECTOR.
gone() {
  local what=$1 sel=$2 deadline=$((SECONDS + 120)) left; shift 2
  local kinds
  kinds=$(IFS=,; echo "$*")
  while left=$(kn get "$kinds" -l "$sel" -o name 2>/dev/null) && [[ -n $left ]]; do
    ((SECONDS < deadline)) || fail "$what: still present after 120 s: $left"
    sleep 1
  done
  say "ok: $what"
}

k create namespace "$NS" >/dev/null
k -n "$NS" wait --for=jsonpath='{.metadata.name}'=default serviceaccount/default --timeout="$WAIT" >/dev/null ||
  fail "the default ServiceAccount of namespace $NS was not created (controller manager)"
kn apply -f - >/dev/null <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: smoke-web}}
  template:
    metadata: {labels: {app: smoke-web}}
    spec:
      containers: [{name: web, image: registry.k8s.io/pause:3.10}]
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  selector: {app: smoke-db}
  ports: [{port: 5432}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: smoke-db}}
  template:
    metadata: {labels: {app: smoke-db}}
    spec:
      containers: [{name: db, image: registry.k8s.io/pause:3.10}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: once}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: once, image: registry.k8s.io/pause:3.10}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: oom}
spec:
  backoffLimit: 0
  template:
    metadata: {labels: {pressure.mailproxy.dev/kwok-fail: OOMKilled}}
    spec:
      restartPolicy: Never
      containers: [{name: oom, image: registry.k8s.io/pause:3.10}]
---
apiVersion: v1
kind: Pod
metadata:
  name: badimage
  labels: {pressure.mailproxy.dev/kwok-fail: ImagePullBackOff}
spec:
  containers: [{name: app, image: registry.invalid/nothing:0}]
---
apiVersion: v1
kind: Pod
metadata:
  name: oomloop
  labels: {pressure.mailproxy.dev/kwok-fail: OOMKilled}
spec:
  containers: [{name: app, image: registry.k8s.io/pause:3.10}]
---
apiVersion: v1
kind: Pod
metadata: {name: later}
spec:
  containers: [{name: app, image: registry.k8s.io/pause:3.10}]
EOF

expect_jsonpath "Deployment has 2 ready replicas" deployment/web '{.status.readyReplicas}' 2
expect_jsonpath "StatefulSet has 2 ready replicas" statefulset/db '{.status.readyReplicas}' 2
[[ $(kn get endpointslices -l kubernetes.io/service-name=db -o jsonpath='{.items[*].endpoints[*].addresses[*]}' | wc -w) -ge 2 ]] ||
  fail "the headless Service's EndpointSlice does not list the 2 pods"
say "ok: EndpointSlice lists the StatefulSet pods"
kn wait --for=condition=Complete job/once --timeout="$WAIT" >/dev/null || fail "Job 'once' did not complete"
say "ok: Job completes"
expect_jsonpath "label $FAIL_LABEL=ImagePullBackOff shows the reason" pod/badimage \
  '{.status.containerStatuses[0].state.waiting.reason}' ImagePullBackOff
expect_jsonpath "ImagePullBackOff pod is not Ready" pod/badimage \
  '{.status.conditions[?(@.type=="Ready")].status}' False
kn wait --for=condition=Failed job/oom --timeout="$WAIT" >/dev/null || fail "Job 'oom' did not fail"
oom_pod=$(kn get pods -l batch.kubernetes.io/job-name=oom -o jsonpath='{.items[0].metadata.name}')
expect_jsonpath "OOMKilled Job pod is Failed" "pod/$oom_pod" '{.status.phase}' Failed
expect_jsonpath "OOMKilled Job pod shows the reason" "pod/$oom_pod" \
  '{.status.containerStatuses[0].state.terminated.reason}' OOMKilled
expect_jsonpath "OOMKilled with restartPolicy Always crash-loops" pod/oomloop \
  '{.status.containerStatuses[0].state.waiting.reason}' CrashLoopBackOff
expect_jsonpath "the crash loop's last state is OOMKilled" pod/oomloop \
  '{.status.containerStatuses[0].lastState.terminated.reason}' OOMKilled
expect_jsonpath "a running pod is Ready" pod/later '{.status.conditions[?(@.type=="Ready")].status}' True
kn label pod later "$FAIL_LABEL=CrashLoopBackOff" >/dev/null
expect_jsonpath "labelling a running pod CrashLoopBackOff fails it" pod/later \
  '{.status.containerStatuses[0].state.waiting.reason}' CrashLoopBackOff
expect_jsonpath "the crash-looping pod is not Ready" pod/later \
  '{.status.conditions[?(@.type=="Ready")].status}' False

[[ -n $(kn get replicasets -l app=smoke-web -o name) ]] || fail "the Deployment has no ReplicaSet"
kn delete deployment web --wait=false >/dev/null
gone "deleting the Deployment garbage-collects its ReplicaSet and pods" app=smoke-web replicasets pods

k apply -f - >/dev/null <<'EOF'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.smoke.pressure.mailproxy.dev}
spec:
  group: smoke.pressure.mailproxy.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [min, max]
            x-kubernetes-validations:
            - rule: self.min <= self.max
              message: min must not exceed max
            properties:
              min: {type: integer, minimum: 0}
              max: {type: integer}
          status:
            type: object
            properties:
              phase: {type: string}
EOF
k wait --for=condition=Established crd/widgets.smoke.pressure.mailproxy.dev --timeout="$WAIT" >/dev/null ||
  fail "the CRD was not established"
say "ok: CRD established"
widget() { printf 'apiVersion: smoke.pressure.mailproxy.dev/v1\nkind: Widget\nmetadata: {name: w}\nspec: {min: %s, max: %s}\n' "$1" "$2"; }
widget 1 2 | kn apply --server-side --dry-run=server -f - >/dev/null || fail "a valid Widget was rejected"
if out=$(widget 3 2 | kn apply --server-side --dry-run=server -f - 2>&1); then
  fail "the CEL rule did not reject an invalid Widget"
fi
grep -q "min must not exceed max" <<<"$out" || fail "the rejection does not carry the CEL message: $out"
say "ok: server-side dry run rejects an invalid object: ${out##*: }"
widget 1 2 | kn apply --server-side -f - >/dev/null
kn patch widget w --subresource=status --type=merge -p '{"status":{"phase":"Ready"}}' >/dev/null ||
  fail "patching the status subresource failed"
expect_jsonpath "status subresource keeps status" widget/w '{.status.phase}' Ready
k delete crd widgets.smoke.pressure.mailproxy.dev --wait=false >/dev/null

rss=0
for pidfile in "$DIR"/kwok/clusters/*/pids/*.pid; do
  [[ -f $pidfile ]] || continue
  kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$(cat "$pidfile")/status" 2>/dev/null || echo 0)
  say "rss $(basename "$pidfile" .pid): $((kb / 1024)) MiB"
  rss=$((rss + kb))
done
say "control plane RSS total: $((rss / 1024)) MiB"
say "PASSED"
