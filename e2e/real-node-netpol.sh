#!/usr/bin/env bash
# Proves that the operator's NetworkPolicies are enforced on the real node (issue 14 item 5),
# from inside pods, against the pods of a PressureTest that ran there:
#   1. a pod outside every allowed set cannot open PostgreSQL's port, a tenant client's port,
#      nor the sink's SMTP or HTTP port (no `POST /reset`, no injected mail), while it does reach
#      the proxy (open to all: its API checks a token), so its network works;
#   2. the same probe carrying the proxy's labels reaches PostgreSQL, the client and the sink's
#      SMTP port: the policies admit the proxy, and the refusals above are theirs;
#   3. the node's agent (kube-network-policies) counted dropped packets for them.
# That the operator's figure reads still pass is shown by the run itself: its status figures
# come from the clients and the sink through these policies.
# Usage: e2e/real-node-netpol.sh DIR NAMESPACE PRESSURETEST   (run by e2e/real-node-operator.sh
# --check-network-policies beside the load, while every pod of the test runs). Exit 0 = passed.
set -euo pipefail

PROBE=localhost/mail-pressure/probe:1
METRICS_PORT=9080 # e2e/real-node/node.sh NETPOL_METRICS_PORT, in the node netns
WAIT=${PRESSURE_NETPOL_WAIT:-90s}

[[ $# -eq 3 ]] || { echo "usage: $0 DIR NAMESPACE PRESSURETEST" >&2; exit 2; }
DIR=$(cd "$1" && pwd -P)
NS=$2
NAME=$3

say() { printf 'real-node-netpol: %s\n' "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }
k() { "$DIR/kubectl" --kubeconfig "$DIR/kubeconfig" "$@"; }

cleanup() {
  k -n "$NS" delete pod np-outsider np-as-proxy --wait=false >/dev/null 2>&1 || true
}
trap cleanup EXIT

# ip_of COMPONENT: the address of one running pod of that component of the test.
ip_of() {
  local ip
  ip=$(k -n "$NS" get pods -l "app.kubernetes.io/instance=$NAME,app.kubernetes.io/component=$1" \
    --field-selector=status.phase=Running -o jsonpath='{.items[0].status.podIP}')
  [[ -n $ip ]] || fail "no running $1 pod of pt/$NAME in $NS"
  printf '%s' "$ip"
}

# dropped: packets the agent refused so far (kube_network_policies_packet_count, verdict drop).
dropped() {
  ip netns exec "$(cat "$DIR/node/netns")" curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics" |
    awk '/^kube_network_policies_packet_count\{.*verdict="drop"/ { s += $NF } END { print s + 0 }'
}

postgres=$(ip_of postgres):5432
proxy=$(ip_of proxy):8000
sink_smtp=$(ip_of sink):1025
sink_http=$(ip_of sink):8025
client=$(ip_of client):8080
say "targets: postgres $postgres, client $client, sink $sink_smtp and $sink_http, proxy $proxy"

# probe POD LABELS: a one-shot pod of the probe image that tries every target (3 s each) and
# prints "open TARGET" or "closed TARGET"; its output once it has finished.
probe() {
  local targets="$postgres $client $sink_smtp $sink_http $proxy" phase
  k -n "$NS" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: $1, labels: $2}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  containers:
    - name: main
      image: $PROBE
      imagePullPolicy: Never
      command: ["/bin/sh", "-c", "for t in $targets; do if nc -w 3 \${t%:*} \${t#*:} </dev/null >/dev/null 2>&1; then echo open \$t; else echo closed \$t; fi; done"]
EOF
  k -n "$NS" wait --for=jsonpath='{.status.phase}'=Succeeded "pod/$1" --timeout="$WAIT" >/dev/null ||
    { phase=$(k -n "$NS" get pod "$1" -o jsonpath='{.status.phase}'); fail "probe $1 did not finish (phase $phase)"; }
  k -n "$NS" logs "$1"
}

# expect OUTPUT STATE TARGET WHAT: OUTPUT says TARGET is STATE, or the check fails.
expect() {
  grep -qx "$2 $3" <<<"$1" || fail "$4: expected $2 $3, the probe saw: $(tr '\n' ';' <<<"$1")"
}

before=$(dropped)
out=$(probe np-outsider '{app: np-outsider}')
expect "$out" open "$proxy" "an outsider must reach the proxy (else its network is broken and a refusal proves nothing)"
expect "$out" closed "$postgres" "an outsider must not open PostgreSQL"
expect "$out" closed "$client" "an outsider must not open a tenant client"
expect "$out" closed "$sink_smtp" "an outsider must not mail the sink"
expect "$out" closed "$sink_http" "an outsider must not reach the sink's HTTP port (POST /reset)"
say "ok: a pod outside the allowed sets reaches the proxy only: $(tr '\n' ';' <<<"$out")"
after=$(dropped)
((after > before)) || fail "the agent counted no dropped packet ($before before, $after after)"
say "ok: the agent dropped $((after - before)) packets of the outsider's connections"

# The policies' peer selector for the proxy: the test and component labels. Without the
# instance label the probe is no endpoint of the proxy's Service.
out=$(probe np-as-proxy "{pressure.mailproxy.dev/test: $NAME, app.kubernetes.io/component: proxy}")
expect "$out" open "$postgres" "a pod with the proxy's labels must open PostgreSQL"
expect "$out" open "$client" "a pod with the proxy's labels must open a tenant client"
expect "$out" open "$sink_smtp" "a pod with the proxy's labels must mail the sink"
say "ok: the same probe with the proxy's labels opens PostgreSQL, the client and the sink's SMTP port"
