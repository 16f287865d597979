#!/usr/bin/env bash
# Proves that pods really run on the real node of `e2e/control-plane.sh up DIR --real-node`:
#   1. a pod on the real node becomes Ready and containerd says its container runs;
#   2. a pod resolves a Service by name (cluster DNS through kube-proxy) and fetches from it;
#   3. a pod reaches the kube-apiserver through the kubernetes Service with its
#      ServiceAccount token (SelfSubjectReview names the ServiceAccount);
#   4. nothing in a pod reaches past the node: no default route, no connection to an
#      address off the machine, nor to the host outside the API server port;
#   5. resource metrics: `kubectl top pods -A` (metrics-server through the API server's
#      aggregation layer) gives the CPU and memory of the pod web on the real node.
# Usage: e2e/real-node-smoke.sh DIR   (starts the cluster with a real node in DIR if none
# runs there, and stops it again at the end). Exit status 0 = passed. See e2e/README.md.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CP=$REPO/e2e/control-plane.sh
WAIT=${PRESSURE_SMOKE_WAIT:-120s}
PROBE=localhost/mail-pressure/probe:1
NODE=real-node

[[ $# -eq 1 && -n $1 ]] || { echo "usage: $0 DIR" >&2; exit 2; }
mkdir -p "$1"
DIR=$(cd "$1" && pwd -P)
NS=rn-smoke-$$
STARTED=0

say() { printf 'real-node-smoke: %s\n' "$*" >&2; }
k() { "$DIR/kubectl" --kubeconfig "$DIR/kubeconfig" "$@"; }

cleanup() {
  local rc=$?
  if ((rc != 0)) && [[ -f $DIR/kubeconfig ]]; then
    say "FAILED; objects and events of $NS:"
    k -n "$NS" get all -o wide >&2 || true
    k -n "$NS" get events --sort-by=.lastTimestamp >&2 || true
    tail -n 20 "$DIR/node/logs/kubelet.log" >&2 2>/dev/null || true
  fi
  k delete namespace "$NS" --wait=false >/dev/null 2>&1 || true
  if ((STARTED)); then "$CP" down "$DIR"; fi
  exit "$rc"
}
trap cleanup EXIT

fail() { say "FAIL: $*"; exit 1; }

if ! [[ -d $DIR/node ]] || ! "$CP" status "$DIR" >/dev/null 2>&1; then
  STARTED=1
  "$CP" up "$DIR" --real-node
fi
start=$SECONDS
"$CP" node-namespace "$DIR" "$NS"
token=token-$RANDOM$RANDOM

# pod_done NAME: wait until the pod NAME has run to completion, then print its log;
# fail with the log when it did not succeed.
pod_done() {
  local phase deadline=$((SECONDS + ${WAIT%s}))
  while phase=$(k -n "$NS" get pod "$1" -o jsonpath='{.status.phase}') && [[ $phase != Succeeded && $phase != Failed ]]; do
    ((SECONDS < deadline)) || break
    sleep 1
  done
  if [[ $phase != Succeeded ]]; then
    k -n "$NS" logs "$1" >&2 || true
    fail "pod $1 did not succeed (phase $phase)"
  fi
  k -n "$NS" logs "$1"
}

# run_pod NAME SCRIPT: a one-shot pod of the probe image running SCRIPT with sh -c.
run_pod() {
  k -n "$NS" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: $1}
spec:
  restartPolicy: Never
  containers:
    - name: main
      image: $PROBE
      imagePullPolicy: Never
      command: ["/bin/sh", "-c", $(printf '%s' "$2" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')]
EOF
}

# 1. A server pod and its Service; Ready on the real node; running per containerd.
k -n "$NS" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  containers:
    - name: web
      image: $PROBE
      imagePullPolicy: Never
      command: ["/bin/sh", "-c", "mkdir -p /www && echo $token >/www/index.html && exec httpd -f -p 8080 -h /www"]
      ports: [{containerPort: 8080}]
      readinessProbe:
        httpGet: {path: /index.html, port: 8080}
        periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
EOF
k -n "$NS" wait --for=condition=Ready pod/web --timeout="$WAIT" >/dev/null || fail "pod web did not become Ready"
[[ $(k -n "$NS" get pod web -o jsonpath='{.spec.nodeName}') == "$NODE" ]] || fail "pod web is not on $NODE"
id=$(k -n "$NS" get pod web -o jsonpath='{.status.containerStatuses[0].containerID}')
id=${id#containerd://}
sock=$DIR/node/containerd/containerd.sock
ctr --address "$sock" -n k8s.io tasks ls | awk -v id="$id" '$1 == id && $3 == "RUNNING" { ok = 1 } END { exit !ok }' ||
  fail "containerd does not list container $id of pod web as RUNNING"
say "ok: pod web Ready on $NODE, containerd task $id RUNNING"

# 2. Resolve the Service by name and fetch from it.
# nslookup is busybox's own DNS client; getent and wget use glibc's resolver with the
# pod's search path. (busybox 1.35's wget -T crashes: timeout(1) bounds it instead.)
run_pod dns "nslookup web.$NS.svc.cluster.local && echo getent: \$(getent hosts web | cut -d' ' -f1) &&
  timeout 10 wget -q -O - http://web/index.html"
out=$(pod_done dns)
grep -qx "$token" <<<"$out" || fail "pod dns did not fetch the page through Service web: $out"
svc_ip=$(k -n "$NS" get service web -o jsonpath='{.spec.clusterIP}')
grep -q "Address: $svc_ip" <<<"$out" || fail "nslookup did not answer the Service's ClusterIP $svc_ip: $out"
grep -qx "getent: $svc_ip" <<<"$out" || fail "getent hosts web did not give the Service's ClusterIP $svc_ip: $out"
say "ok: a pod resolved web and web.$NS.svc.cluster.local to $svc_ip and fetched the page through it"

# 3. The API server through the kubernetes Service, authenticated by the pod's token.
# shellcheck disable=SC2016 # expanded by the pod's shell
run_pod api 'sa=/var/run/secrets/kubernetes.io/serviceaccount
  body="{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"SelfSubjectReview\"}"
  printf "POST /apis/authentication.k8s.io/v1/selfsubjectreviews HTTP/1.1\r\nHost: kubernetes.default.svc\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s" \
    "$(cat $sa/token)" "${#body}" "$body" |
    timeout 20 openssl s_client -quiet -connect kubernetes.default.svc:443 -servername kubernetes.default.svc \
      -CAfile $sa/ca.crt -verify_return_error -verify_hostname kubernetes.default.svc'
out=$(pod_done api)
grep -q "\"username\":\"system:serviceaccount:$NS:default\"" <<<"$out" ||
  fail "the API server did not recognise the pod's ServiceAccount: $out"
say "ok: a pod reached the API server at https://kubernetes.default.svc (certificate verified against its ServiceAccount CA) as system:serviceaccount:$NS:default"
# In-cluster clients (client-go, kube-rs) use the Service's IP: the certificate must hold it too.
nsenter --net="/run/netns/$(cat "$DIR/node/netns")" -- \
  curl -fsS --cacert "$DIR"/kwok/clusters/*/pki/ca.crt https://10.96.0.1/version >/dev/null ||
  fail "the API server certificate is not valid for https://10.96.0.1 (the kubernetes Service)"
say "ok: the API server certificate verifies for https://10.96.0.1"

# 4. No way out. The host's own non-loopback address stands for "off the node".
host_ip=$(ip -4 -o route get 192.0.2.1 2>/dev/null | awk '{ for (i = 1; i < NF; i++) if ($i == "src") print $(i + 1) }')
host_ip=${host_ip:-192.0.2.1}
veth_host=10.251.$(cat "$DIR/node/slot").1 # the host end of the node's veth
web_ip=$(k -n "$NS" get pod web -o jsonpath='{.status.podIP}')
run_pod egress "ip route; if ip route | grep -q default; then echo HAS-DEFAULT-ROUTE; fi
  for target in 192.0.2.1:80 1.1.1.1:443 $host_ip:22 $veth_host:22; do
    if nc -w 3 \${target%:*} \${target#*:} </dev/null 2>/dev/null; then echo REACHED \$target; fi
  done
  # The same probe must reach the web pod, or a failing nc would prove nothing.
  if nc -w 3 $web_ip 8080 </dev/null; then echo control-reached; fi
  echo egress-done"
out=$(pod_done egress)
grep -q egress-done <<<"$out" || fail "egress pod did not finish: $out"
grep -q control-reached <<<"$out" || fail "the egress probe could not even reach pod web ($web_ip:8080): $out"
! grep -q HAS-DEFAULT-ROUTE <<<"$out" || fail "a pod has a default route: $out"
! grep -q REACHED <<<"$out" || fail "a pod reached an address past the node: $out"
say "ok: pods have no default route and reach nothing past the node (tried 192.0.2.1, 1.1.1.1, $host_ip:22, $veth_host:22)"

# 5. Resource metrics of a pod on the real node, as the HPA reads them. metrics-server
# reports a pod after two scrapes of the kubelet (15 s apart): ask until it does.
top_web() { k top pods -A --no-headers | awk -v ns="$NS" '$1 == ns && $2 == "web" && $3 ~ /m$/ && $4 ~ /Mi$/' | grep .; }
deadline=$((SECONDS + ${WAIT%s}))
until top=$(top_web 2>/dev/null); do
  ((SECONDS < deadline)) || fail "kubectl top pods -A never listed pod web: $(k top pods -A 2>&1 | tail -5)"
  sleep 2
done
say "ok: kubectl top pods -A (metrics-server, aggregation layer) lists pod web on $NODE: $top"

mem=$(ps -o rss= -p "$(cat "$DIR"/node/pids/{containerd,kubelet,kube-proxy,coredns,metrics-server}.pid | paste -sd,)" | awk '{ s += $1 } END { printf "%d", s / 1024 }')
say "passed in $((SECONDS - start)) s; node daemons (containerd, kubelet, kube-proxy, CoreDNS, metrics-server) RSS ${mem} MiB"
