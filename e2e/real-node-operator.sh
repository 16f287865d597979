#!/usr/bin/env bash
# The operator for real: installs the CRD and the operator with the Helm chart on the real node
# of `e2e/control-plane.sh up DIR --real-node`, runs a PressureTest (default
# deploy/examples/smoke.yaml, its image fields deep-merged with DIR/images.yaml) and checks that:
#   - it reaches Complete=True and Succeeded=True;
#   - `kubectl get pressuretests` showed live figures (Sent, Msg/s) while it ran;
#   - the figures in .status are the sink's: generated = delivered (nothing lost), duplicates
#     within --max-duplicates (default 0), no attachment mismatch;
#   - every pod of the test ran on the real node, containerd held its containers, none restarted;
#   - the stored report gives the throughput by proxy replica count (with --proxy-replicas N,
#     a line for N);
#   - with spec.proxy.settings.diskCache, the proxy's disk tier wrote files on its cache volume;
#   - with --prometheus, the PressureTest's own Prometheus (the image build-images.sh made) scrapes
#     every proxy replica, client and sink (each target `up`), and every PromQL expression of the
#     shipped dashboards answers with data while the load runs (e2e/dashboard_queries.py, through
#     `kubectl port-forward`).
#   - with --expect-scale-out: the HPA (fed by the node's metrics-server) wanted more than one
#     proxy replica while the load ran, the report's throughput by replica count has more than
#     one count, its timeline carries the HPA's desired replicas and CPU, and once the load is
#     over the HPA comes back to one replica.
# Faults on request: a proxy pod or PostgreSQL's pod deleted while the load runs.
#
#   e2e/real-node-operator.sh DIR [EXAMPLE.yaml] [options]
#     --duration S               spec.durationSeconds (warm-up becomes S/6, at least 5)
#     --warmup S                 spec.warmupSeconds (over the one --duration sets)
#     --proxy-replicas N         a fixed number of proxy replicas (the HPA off)
#     --delete-proxy-pod-at S    delete one proxy pod S seconds into the Running phase
#     --delete-postgres-pod-at S delete PostgreSQL's pod S seconds into the Running phase; the
#                                data lives on a PersistentVolume this script makes (hostPath)
#     --max-duplicates N         duplicates allowed, here and in spec.thresholds.maxDuplicates (a
#                                deleted proxy pod may resend what it had sent but not recorded)
#     --max-p99-ms N             spec.thresholds.maxP99LatencyMs (a run that deletes its database
#                                on purpose holds messages for as long as the database is away)
#     --check-network-policies   e2e/real-node-netpol.sh while the load runs: the test's policies
#                                hold against a probe pod and admit the proxy (the node's agent)
#     --prometheus               Prometheus on (else off), checked as above
#     --sink mailpit             the sink is Mailpit (kind Mailpit, the image build-images.sh made):
#                                delivered is its message count; the thresholds it cannot measure
#                                (latency, duplicates, attachments) are disabled, and the status
#                                must leave them unmeasured
#     --clients N                client pods per tenant (more load)
#     --low-load-for S           the first S seconds of the load at 10 % of the rates, then the full
#                                rates within 5 s (spec.stages): the HPA starts at one replica
#     --hpa-max N                the HPA on, from 1 to N proxy replicas
#     --hpa-target-cpu P         spec.proxy.hpa.targetCpuPercent
#     --scale-down-seconds S     spec.proxy.hpa.scaleDownStabilizationSeconds
#     --proxy-cpu-request M      the proxy's CPU request, millicores (what the HPA's percent is of)
#     --expect-scale-out         require the scale-out and the scale-in described above
#
# Grafana cannot run here (no image: its source is AGPL and nothing can be pulled): it is switched
# off in the run; so is Prometheus unless --prometheus. Needs the project's images on
# the node (scripts/build-images.sh, run by `up --real-node`) and helm (on PATH or in
# $PRESSURE_CACHE_DIR/bin: scripts/check-packaging.sh installs it). Starts the cluster in DIR if
# none runs there and stops it again at the end. Exit status 0 = passed.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CP=$REPO/e2e/control-plane.sh
CACHE=${PRESSURE_CACHE_DIR:-$HOME/.cache/mail-pressure}
WAIT=${PRESSURE_OPERATOR_WAIT:-600s}
export PATH=$CACHE/bin:$PATH

usage() { sed -n '19,48p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[[ $# -ge 1 && -n $1 && $1 != -* ]] || usage
mkdir -p "$1"
DIR=$(cd "$1" && pwd -P)
shift
EXAMPLE=$REPO/deploy/examples/smoke.yaml
if [[ $# -gt 0 && $1 != -* ]]; then EXAMPLE=$(cd "$(dirname "$1")" && pwd)/$(basename "$1"); shift; fi
DURATION='' WARMUP='' REPLICAS='' KILL_PROXY_AT='' KILL_PG_AT='' MAX_DUPLICATES=0 MAX_P99=''
CLIENTS='' LOW_LOAD='' HPA_MAX='' HPA_CPU='' SCALE_DOWN='' PROXY_CPU='' EXPECT_SCALE_OUT=0
PROMETHEUS=0 SINK='' NETPOL=0
while [[ $# -gt 0 ]]; do
  if [[ $1 == --expect-scale-out ]]; then EXPECT_SCALE_OUT=1; shift; continue; fi
  if [[ $1 == --prometheus ]]; then PROMETHEUS=1; shift; continue; fi
  if [[ $1 == --sink && ${2:-} == mailpit ]]; then SINK=mailpit; shift 2; continue; fi
  if [[ $1 == --check-network-policies ]]; then NETPOL=1; shift; continue; fi
  [[ $# -ge 2 && $2 =~ ^[0-9]+$ ]] || usage
  case $1 in
    --duration) DURATION=$2 ;;
    --warmup) WARMUP=$2 ;;
    --proxy-replicas) REPLICAS=$2 ;;
    --delete-proxy-pod-at) KILL_PROXY_AT=$2 ;;
    --delete-postgres-pod-at) KILL_PG_AT=$2 ;;
    --max-duplicates) MAX_DUPLICATES=$2 ;;
    --max-p99-ms) MAX_P99=$2 ;;
    --clients) CLIENTS=$2 ;;
    --low-load-for) LOW_LOAD=$2 ;;
    --hpa-max) HPA_MAX=$2 ;;
    --hpa-target-cpu) HPA_CPU=$2 ;;
    --scale-down-seconds) SCALE_DOWN=$2 ;;
    --proxy-cpu-request) PROXY_CPU=$2 ;;
    *) usage ;;
  esac
  shift 2
done
OP_NS=pressure-system
NS=rn-op-$$
RELEASE=pressure
STARTED=0
PV=''
PORT_FORWARD=''

say() { printf 'real-node-operator: %s\n' "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }
if ((EXPECT_SCALE_OUT)) && [[ -n $REPLICAS || -z $HPA_MAX ]]; then
  say "--expect-scale-out needs --hpa-max N (and no --proxy-replicas)"; usage
fi
k() { "$DIR/kubectl" --kubeconfig "$DIR/kubeconfig" "$@"; }
# field NAME JSONPATH: one field of pt/NAME in $NS.
field() { k -n "$NS" get pt "$1" -o jsonpath="$2"; }

command -v helm >/dev/null || fail "helm not found (run scripts/check-packaging.sh, which installs it into $CACHE/bin)"

cleanup() {
  local rc=$?
  if ((rc != 0)) && [[ -f $DIR/kubeconfig ]]; then
    say "FAILED; state of $NS and $OP_NS:"
    k -n "$NS" get pt -o wide >&2 || true
    k -n "$NS" get pt -o jsonpath='{.items[*].status}' >&2 || true
    echo >&2
    k -n "$NS" get all,pvc -o wide >&2 || true
    k -n "$NS" get events --sort-by=.lastTimestamp >&2 || true
    local pod
    for pod in $(k -n "$NS" get pods -o name 2>/dev/null); do
      say "--- logs of $pod"
      k -n "$NS" logs "$pod" --all-containers --tail=25 >&2 || true
    done
    k -n "$OP_NS" logs "deploy/$RELEASE-pressure-operator" --tail=40 >&2 || true
  fi
  if [[ -n $PORT_FORWARD ]]; then kill "$PORT_FORWARD" 2>/dev/null || true; fi
  k delete namespace "$NS" --wait=false >/dev/null 2>&1 || true
  if [[ -n $PV ]]; then
    k delete pv "$PV" --wait=false >/dev/null 2>&1 || true
    rm -rf "${DIR:?}/volumes/$NS"
  fi
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
# `kubectl wait` fails ("accessor error: <nil>") while the new CRD has no conditions yet.
for _ in $(seq 1 120); do
  [ -n "$(k get crd pressuretests.pressure.mailproxy.dev -o jsonpath='{.status.conditions}' 2>/dev/null)" ] && break
  sleep 0.5
done
k wait --for=condition=Established crd/pressuretests.pressure.mailproxy.dev --timeout=60s >/dev/null
"$CP" node-namespace "$DIR" "$OP_NS"
helm upgrade --install "$RELEASE" "$REPO/charts/pressure-operator" --kubeconfig "$DIR/kubeconfig" \
  -n "$OP_NS" --set image.pullPolicy=Never --wait --timeout 180s >/dev/null ||
  fail "helm install of the operator did not become ready"
say "operator installed with the chart and Available after $((SECONDS - start)) s"

# The example with the node's images and the options above, in a namespace on the real node.
"$CP" node-namespace "$DIR" "$NS"
read -r name volume < <(python3 - "$EXAMPLE" "$DIR/images.yaml" "$DIR/pt-$NS.yaml" \
  "$DURATION" "$REPLICAS" "$MAX_DUPLICATES" "$MAX_P99" \
  "$CLIENTS" "$HPA_MAX" "$HPA_CPU" "$SCALE_DOWN" "$PROXY_CPU" "$WARMUP" "$LOW_LOAD" \
  "$PROMETHEUS" "$SINK" "$REPO" <<'EOF'
import sys, yaml
example_path, images_path, out_path, duration, replicas, max_dup, max_p99 = sys.argv[1:8]
clients, hpa_max, hpa_cpu, scale_down, proxy_cpu, warmup, low_load = sys.argv[8:15]
prometheus, sink, repo = sys.argv[15:18]
example = yaml.safe_load(open(example_path))
images = yaml.safe_load(open(images_path)) or {}
def merge(base, extra):
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
spec = example.setdefault("spec", {})
merge(spec, images)
# No Grafana image can exist here. Prometheus only with the image build-images.sh made.
spec["grafana"] = {"enabled": False}
if prometheus == "1":
    if not images.get("prometheus", {}).get("image"):
        sys.exit("--prometheus: no prometheus image on the node (scripts/build-images.sh prometheus)")
    spec["prometheus"]["enabled"] = True
else:
    spec["prometheus"] = {"enabled": False}
if duration:
    spec["durationSeconds"] = int(duration)
    spec["warmupSeconds"] = max(5, int(duration) // 6)
if warmup:
    spec["warmupSeconds"] = int(warmup)
if replicas:
    spec.setdefault("proxy", {})["replicas"] = int(replicas)
    spec["proxy"]["hpa"] = {"enabled": False}
if int(max_dup) > 0:
    spec.setdefault("thresholds", {})["maxDuplicates"] = int(max_dup)
if max_p99:
    spec.setdefault("thresholds", {})["maxP99LatencyMs"] = int(max_p99)
if sink == "mailpit":
    # The reference scripts/build-images.sh tags (localhost/..., never pulled).
    sys.path.insert(0, repo + "/scripts/lib")
    import image_recipes
    spec["sink"] = {"kind": "Mailpit", "image": image_recipes.GO_IMAGES["mailpit"]["reference"]}
    disabled = spec.setdefault("thresholds", {}).setdefault("disabled", [])
    disabled += [n for n in ("maxP99LatencyMs", "maxDuplicates", "maxAttachmentMismatches") if n not in disabled]
if low_load:
    spec["stages"] = [{"durationSeconds": 1, "ratePercent": 10},
                      {"durationSeconds": max(1, int(low_load) - 1), "ratePercent": 10},
                      {"durationSeconds": 5, "ratePercent": 100}]
if clients:
    for tenant in spec["tenants"]:
        tenant["clients"] = int(clients)
proxy = spec.setdefault("proxy", {})
if hpa_max:
    proxy["hpa"] = {**proxy.get("hpa", {}), "enabled": True, "minReplicas": 1, "maxReplicas": int(hpa_max)}
if hpa_cpu:
    proxy.setdefault("hpa", {})["targetCpuPercent"] = int(hpa_cpu)
if scale_down:
    proxy.setdefault("hpa", {})["scaleDownStabilizationSeconds"] = int(scale_down)
if proxy_cpu:
    proxy.setdefault("resources", {})["cpuRequest"] = f"{int(proxy_cpu)}m"
if hpa_max or hpa_cpu or scale_down:
    # The HPA is watched after the run: its objects must stay.
    spec["keepOnFinish"] = "Everything"
yaml.safe_dump(example, open(out_path, "w"))
print(example["metadata"]["name"], spec.get("postgres", {}).get("volume", "PersistentVolumeClaim"))
EOF
)
[[ -n ${name:-} ]] || fail "could not prepare $EXAMPLE"
if [[ $SINK == mailpit ]]; then
  ref=$(python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import image_recipes; print(image_recipes.GO_IMAGES["mailpit"]["reference"])' "$REPO/scripts/lib")
  ctr --address "$DIR/node/containerd/containerd.sock" -n k8s.io images ls -q | grep -qxF "$ref" ||
    fail "--sink mailpit: the node holds no $ref (scripts/build-images.sh mailpit, before up --real-node)"
fi
# A claim needs a volume: this node has no provisioner, so the test makes one PersistentVolume for
# exactly this claim (the StatefulSet's "data" template), a folder owned by PostgreSQL's user.
if [[ $volume == PersistentVolumeClaim ]]; then
  PV=pv-$NS
  mkdir -p "$DIR/volumes/$NS"
  chown 70:70 "$DIR/volumes/$NS" # operator/src/reconcile/postgres.rs runs PostgreSQL as uid 70
  chmod 700 "$DIR/volumes/$NS"
  k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: PersistentVolume
metadata: {name: $PV}
spec:
  capacity: {storage: 10Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  hostPath: {path: $DIR/volumes/$NS, type: Directory}
  claimRef: {namespace: $NS, name: data-$name-postgres-0}
EOF
fi
k -n "$NS" apply -f "$DIR/pt-$NS.yaml" >/dev/null
applied=$SECONDS
say "applied $(basename "$EXAMPLE") as pt/$name in $NS"

# With --prometheus: once the test's Prometheus is ready, a port-forward to it, and the dashboard
# check (targets up, every expression answers) every 10 s while Running until it passes once.
prom_passed=0 prom_last=-100 prom_port='' sink_image=''
sink_job=()
[[ $(field "$name" '{.spec.sink.kind}') != Verifying ]] || sink_job=(--job sink)
prometheus_check() {
  if [[ -z $prom_port ]]; then
    [[ $(k -n "$NS" get deploy "$name-prometheus" -o jsonpath='{.status.readyReplicas}' 2>/dev/null) == 1 ]] || return 0
    k -n "$NS" port-forward "svc/$name-prometheus" :9090 >"$seen/port-forward" 2>&1 &
    PORT_FORWARD=$!
    for _ in $(seq 1 40); do
      prom_port=$(sed -n 's/^Forwarding from 127.0.0.1:\([0-9]*\) .*/\1/p' "$seen/port-forward")
      [[ -z $prom_port ]] || break
      kill -0 "$PORT_FORWARD" 2>/dev/null || break
      sleep 0.5
    done
    [[ -n $prom_port ]] || fail "kubectl port-forward to svc/$name-prometheus: $(cat "$seen/port-forward")"
    say "Prometheus of the test at http://127.0.0.1:$prom_port (kubectl port-forward svc/$name-prometheus)"
  fi
  "$REPO/e2e/dashboard_queries.py" --url "http://127.0.0.1:$prom_port" --job mailproxy \
    "${sink_job[@]}" --job 'client-*' >"$seen/prometheus" 2>&1 && prom_passed=1
  return 0
}

# Until the run completes, every 2 s: the test's pods (node, restarts, container ids), the
# containers containerd holds, the node's memory, and `kubectl get pt` as a user watches it.
sock=$DIR/node/containerd/containerd.sock
seen=$DIR/node/operator-run-$NS
mkdir -p "$seen" && : >"$seen/pods" && : >"$seen/containers" && : >"$seen/rss" && : >"$seen/live" && : >"$seen/cache"
: >"$seen/hpa"
# hpa_poll: seconds since apply, the HPA's desired and current replicas, the proxy
# Deployment's ready replicas and the HPA's CPU (percent of the request; - before metrics).
hpa_poll() {
  local h
  h=$(k -n "$NS" get hpa "$name-proxy" -o jsonpath='{.status.desiredReplicas} {.status.currentReplicas} {.status.currentMetrics[0].resource.current.averageUtilization}' 2>/dev/null) || return 0
  read -r desired current cpu <<<"$h"
  printf '%s %s %s %s %s\n' "$((SECONDS - applied))" "${desired:--}" "${current:--}" \
    "$(k -n "$NS" get deploy "$name-proxy" -o jsonpath='{.status.readyReplicas}' 2>/dev/null || true)" "${cpu:--}"
}
# With spec.proxy.settings.diskCache the proxy's disk tier lives on the pod's "cache" emptyDir,
# which the kubelet keeps under its root directory on this host: its files are counted each poll.
disk_cache=$(field "$name" '{.spec.proxy.settings.diskCache}')
deadline=$((SECONDS + ${WAIT%s}))
running_since=''
netpol_pid=''
deleted=()
# delete_one COMPONENT: deletes one pod of that component, remembers which.
delete_one() {
  local pod
  pod=$(k -n "$NS" get pods -l "app.kubernetes.io/instance=$name,app.kubernetes.io/component=$1" \
    --field-selector=status.phase=Running -o jsonpath='{.items[0].metadata.name}')
  [[ -n $pod ]] || fail "no running $1 pod to delete"
  k -n "$NS" delete pod "$pod" --wait=false >/dev/null
  deleted+=("$pod")
  say "deleted $1 pod $pod $((SECONDS - running_since)) s into the run (sent so far: $(field "$name" '{.status.figures.sent}'))"
}
until [[ $(field "$name" '{.status.conditions[?(@.type=="Complete")].status}') == True ]]; do
  ((SECONDS < deadline)) || fail "pt/$name did not complete within $WAIT"
  phase=$(field "$name" '{.status.phase}')
  if [[ $phase == Running ]]; then
    : "${running_since:=$SECONDS}"
    if [[ -n $KILL_PROXY_AT ]] && ((SECONDS - running_since >= KILL_PROXY_AT)); then
      delete_one proxy; KILL_PROXY_AT=''
    fi
    if [[ -n $KILL_PG_AT ]] && ((SECONDS - running_since >= KILL_PG_AT)); then
      delete_one postgres; KILL_PG_AT=''
    fi
    # The policy probes run beside the load, while every pod of the test is there.
    if ((NETPOL)) && [[ -z $netpol_pid ]]; then
      "$REPO/e2e/real-node-netpol.sh" "$DIR" "$NS" "$name" >"$seen/netpol.log" 2>&1 &
      netpol_pid=$!
    fi
    k -n "$NS" get pt "$name" -o wide --no-headers >>"$seen/live" || true
    if ((PROMETHEUS && !prom_passed && SECONDS - prom_last >= 10)); then
      prom_last=$SECONDS
      prometheus_check
    fi
    if [[ -n $disk_cache ]]; then
      for uid in $(k -n "$NS" get pods -l "app.kubernetes.io/instance=$name,app.kubernetes.io/component=proxy" \
        -o jsonpath='{.items[*].metadata.uid}'); do
        find "$DIR/node/kubelet/pods/$uid/volumes/kubernetes.io~empty-dir/cache" -type f 2>/dev/null
      done | wc -l >>"$seen/cache"
    fi
  fi
  # The sink's image while it runs (the Deployment goes with the run).
  [[ -n $sink_image ]] || sink_image=$(k -n "$NS" get deploy "$name-sink" -o jsonpath='{.spec.template.spec.containers[0].image}' 2>/dev/null || true)
  # (the policy probes' one-shot pods, np-*, are not the test's)
  k -n "$NS" get pods -o jsonpath='{range .items[*]}{.metadata.name} {.spec.nodeName} {range .status.containerStatuses[*]}{.restartCount}={.containerID} {end}{"\n"}{end}' |
    { grep -v '^np-' || true; } >>"$seen/pods"
  ctr --address "$sock" -n k8s.io containers ls -q >>"$seen/containers"
  if [[ -n $HPA_MAX ]]; then hpa_poll >>"$seen/hpa"; fi
  # shellcheck disable=SC2009 # the shims are found by the socket of this node's containerd
  { cat "$DIR"/node/pids/{containerd,kubelet,kube-proxy,coredns}.pid | xargs ps -o rss= -p
    ps -eo rss=,args= | grep -F -- "-address $sock" | grep -v grep | awk '{ print $1 }'; } |
    awk '{ s += $1 } END { print int(s / 1024) }' >>"$seen/rss"
  sleep 2
done
completed=$SECONDS
[[ -z $KILL_PROXY_AT && -z $KILL_PG_AT ]] || fail "the run ended before the requested pod deletion"
k -n "$NS" get pt "$name" -o wide >&2
[[ $(field "$name" '{.status.conditions[?(@.type=="Succeeded")].status}') == True ]] ||
  fail "pt/$name completed but did not succeed: $(field "$name" '{.status.conditions}')"
say "ok: pt/$name Complete=True, Succeeded=True, $((SECONDS - applied)) s after apply"

# What a user watching `kubectl get pressuretests` saw while it ran: live Sent and Msg/s.
# Columns of -o wide: NAME PHASE VERDICT TENANTS SENT MSG/S P99 ERR AGE DURATION RUNID; an
# unset field prints as <none>.
live=$(awk '$5 ~ /^[0-9]+$/ && $5 > 0 && $6 ~ /^[0-9]+$/' "$seen/live" | wc -l)
((live > 0)) || fail "kubectl get pressuretests never showed live Sent and Msg/s while Running: $(tail -3 "$seen/live")"
say "ok: kubectl get pressuretests showed live figures in $live of $(wc -l <"$seen/live") polls while Running, e.g.: $(awk '$5 > 0' "$seen/live" | tail -1)"

# The test's Prometheus scraped every part, and the dashboards' queries answered during the load.
if ((PROMETHEUS)); then
  [[ -s $seen/prometheus ]] || fail "--prometheus: the dashboard check never ran while Running (Prometheus not ready?)"
  ((prom_passed)) || fail "the dashboards' queries or the scrape targets failed (last check while Running):
$(cat "$seen/prometheus")"
  sed 's/^/  /' "$seen/prometheus" >&2
  say "ok: Prometheus scraped the proxy, the clients${sink_job:+ and the sink}; every dashboard expression answered with data"
fi

# The status figures are the sink's: nothing lost, duplicates bounded, attachments intact.
read -r generated delivered duplicates mismatches < <(field "$name" \
  '{.status.figures.generated} {.status.figures.delivered} {.status.figures.duplicates} {.status.figures.attachmentMismatches}{"\n"}')
say "figures: generated=$generated delivered=$delivered duplicates=$duplicates attachmentMismatches=$mismatches"
[[ $generated =~ ^[0-9]+$ && $generated -gt 0 ]] || fail "no messages generated"
[[ $delivered =~ ^[0-9]+$ ]] || fail "the sink's delivered count is missing from the status"
# The sink counts every delivery; its duplicates are deliveries of a message it had already had.
((delivered - ${duplicates:-0} == generated)) ||
  fail "lost messages: generated $generated, the sink received $delivered of which ${duplicates:-0} duplicates"
((${duplicates:-0} <= MAX_DUPLICATES)) || fail "$duplicates duplicate deliveries (at most $MAX_DUPLICATES allowed)"
((${mismatches:-0} == 0)) || fail "$mismatches attachments did not match their MD5"
if [[ $SINK == mailpit ]]; then
  # Mailpit counts messages; what it cannot check must not look measured.
  [[ -z $duplicates && -z $mismatches ]] ||
    fail "with Mailpit, duplicates ($duplicates) and attachment mismatches ($mismatches) must stay unmeasured"
  [[ $sink_image == "$ref" ]] || fail "the sink ran ${sink_image:-no image seen}, not $ref"
  outcomes=$(field "$name" '{range .status.thresholds[*]}{.name}={.outcome} {end}')
  say "ok: the sink was Mailpit ($sink_image): delivered $delivered = generated $generated, read from its API; thresholds: $outcomes"
fi

# The stored report gives the throughput by the number of proxy replicas that answered each
# reading (the question an autoscaling test asks); a fixed count must appear in it.
report=$(field "$name" '{.status.report}')
[[ -n $report ]] || fail "pt/$name names no report ConfigMap"
by_replicas=$(k -n "$NS" get configmap "$report" -o jsonpath='{.data.report\.json}' | python3 -c '
import json, sys
lines = json.load(sys.stdin).get("byReplicas", [])
print(" ".join("%s:%s:%.0f" % (l["replicas"], l["deliveredPerSecond"], l["seconds"]) for l in lines))')
[[ -n $by_replicas ]] || fail "the report of pt/$name has no throughput by proxy replicas"
say "ok: throughput by proxy replicas (replicas:msg/s:seconds): $by_replicas"
if [[ -n $REPLICAS ]]; then
  [[ " $by_replicas" == *" $REPLICAS:"* ]] ||
    fail "the report has no line for the $REPLICAS proxy replicas the run had: $by_replicas"
fi

# The HPA on the real node's metrics-server: more than one replica wanted under the load, the
# report's throughput by more than one replica count and its timeline of the proxy's scale, then
# one replica again once the load is over.
if ((EXPECT_SCALE_OUT)); then
  # What `kubectl get hpa -w` would have shown, one line per change (s after apply).
  say "HPA during the run (s after apply: desired/current replicas, ready, CPU % of request):"
  awk '{ key = $2 " " $3 " " $4 " " $5 } key != last { printf "  %4ss  desired %s current %s ready %s cpu %s%%\n", $1, $2, $3, $4, $5; last = key }' "$seen/hpa" >&2
  peak=$(awk '$2 ~ /^[0-9]+$/ && $2 > m { m = $2 } END { print m + 0 }' "$seen/hpa")
  ((peak > 1)) || fail "the HPA never wanted more than one proxy replica during the run (CPU readings: $(awk '{ print $5 }' "$seen/hpa" | sort -u | tr '\n' ' '))"
  say "ok: the HPA wanted up to $peak proxy replicas during the run"
  counts=$(wc -w <<<"$by_replicas")
  ((counts > 1)) || fail "the report's throughput by replica count has one count only: $by_replicas"
  say "ok: the report gives the throughput for $counts replica counts"
  timeline=$(k -n "$NS" get configmap "$report" -o jsonpath='{.data.report\.json}' | python3 -c '
import json, sys
points = json.load(sys.stdin).get("timeline", [])
for p in points:
    print("%.0f %s %s %s %s %.1f" % (p["t"], p.get("desiredReplicas", "-"), p.get("readyReplicas", "-"),
          p.get("proxyReplicas", "-"), p.get("cpuPercent", "-"), p["deliveredPerSecond"]))')
  say "the report's timeline (s since the load started: desired, ready, answering replicas, CPU %, msg/s):"
  awk '{ printf "  %4ss  desired %s ready %s answering %s cpu %s%%  %s msg/s\n", $1, $2, $3, $4, $5, $6 }' <<<"$timeline" >&2
  awk '$2 ~ /^[0-9]+$/ && $2 > 1 { d = 1 } $5 ~ /^[0-9]+$/ { c = 1 } END { exit !(d && c) }' <<<"$timeline" ||
    fail "the report's timeline does not show the HPA's desired replicas above 1 and its CPU"
  say "ok: the report's timeline records the desired and ready replicas and the CPU"
  # The scale-in: after the stabilization window, with the load gone, one replica is enough.
  deadline=$((completed + ${WAIT%s}))
  until [[ $(k -n "$NS" get hpa "$name-proxy" -o jsonpath='{.status.desiredReplicas}/{.status.currentReplicas}') == 1/1 ]]; do
    ((SECONDS < deadline)) || fail "the HPA did not come back to one proxy replica after the load: $(k -n "$NS" get hpa "$name-proxy" --no-headers)"
    hpa_poll >>"$seen/hpa"
    sleep 2
  done
  say "ok: the HPA came back to 1 replica $((SECONDS - completed)) s after the run completed: $(k -n "$NS" get hpa "$name-proxy" --no-headers)"
fi

# The settings reached the proxy in its pod: its disk tier filled the cache volume.
if [[ -n $disk_cache ]]; then
  cached=$(sort -n "$seen/cache" | tail -1)
  ((${cached:-0} > 0)) || fail "spec.proxy.settings.diskCache is set but the proxy's cache volume never held a file"
  say "ok: the proxy's disk cache tier held up to $cached files on its emptyDir volume"
fi

# Every pod of the test ran on the real node, containerd held its containers, none restarted.
pods=$(awk '{ print $1 }' "$seen/pods" | sort -u | wc -l)
((pods > 0)) || fail "no pod of the test was ever seen in $NS"
# A pod polled before the scheduler placed it has no node yet: it ran nowhere (a busy node and
# new client pods made this race real on 2026-12-05).
awk '$2 != "" && $2 != "real-node" { print "not on real-node: " $0; bad = 1 } END { exit bad }' "$seen/pods" ||
  fail "a pod of the test ran elsewhere"
for pod in "${deleted[@]}"; do
  grep -q "^$pod " "$seen/pods" || fail "the deleted pod $pod was never seen"
done
restarted=$(awk '{ for (i = 3; i <= NF; i++) { split($i, a, "="); if (a[1] > 0) print $1 " restarts=" a[1] } }' "$seen/pods" | sort -u)
while read -r id; do
  id=${id#containerd://}
  [[ -z $id ]] || grep -qx "$id" "$seen/containers" || fail "containerd never listed container $id"
done < <(awk '{ for (i = 3; i <= NF; i++) { split($i, a, "="); if (a[2] != "") print a[2] } }' "$seen/pods" | sort -u)
say "ok: $pods pods ran on real-node (${#deleted[@]} deleted on purpose), containerd held every container; node RSS (daemons + shims) peaked at $(sort -n "$seen/rss" | tail -1) MiB"
[[ -z $restarted ]] || fail "containers restarted during the run: $(tr '\n' ';' <<<"$restarted")"
if [[ -n $netpol_pid ]]; then
  wait "$netpol_pid" || { cat "$seen/netpol.log" >&2; fail "the test's NetworkPolicies do not hold"; }
  cat "$seen/netpol.log" >&2
fi
say "passed in $((SECONDS - start)) s"
