# shellcheck shell=bash
# The real node of `e2e/control-plane.sh up DIR --real-node`: containerd + runc,
# a kubelet, kube-proxy, CoreDNS and metrics-server, all inside a network namespace of its own,
# registered with the control plane in DIR. Sourced by e2e/control-plane.sh
# (which provides note, die, retry, REPO, CACHE_ROOT, K8S_DIR, NODE_DIR,
# COREDNS_DIR, METRICS_SERVER_DIR, KUBECTL); see e2e/README.md "The real node" for the why.
#
# Network layout (I = a per-DIR slot 0..255, so several clusters coexist):
#
#   host netns                        node netns "mpn-<id>"
#   127.0.0.1:<apiport> kube-apiserver
#   mph<id> 10.251.I.1/30  <-- veth -->  eth0 10.251.I.2/30   (node IP)
#                                        cni0 10.252.I.1/24   (pod bridge, CoreDNS)
#                                        pods 10.252.I.2-254  (one netns each)
#   Services 10.96.0.0/16 exist only as kube-proxy's iptables rules in the node netns.
#
# Nothing has a default route: the node netns knows only its two subnets, the
# pods only theirs and the Service range, and iptables drops whatever would
# leave the bridge for anything but the API server. The host forwards nothing
# from or to the veth; its only job is to hand port <apiport> on 10.251.I.1
# to the API server on loopback (DNAT, allowed by route_localnet on our veth).

NODE_NAME=real-node
# What real-pod tests put on their namespace (see node_namespace) and what the
# kubelet puts on the node: kwok's fake nodes carry neither, and the taint keeps
# every pod that does not ask for the real node (all kwok tests) off it.
NODE_LABEL_KEY=pressure.mailproxy.dev/node
NODE_LABEL_VALUE=real
NODE_TAINT_KEY=pressure.mailproxy.dev/real-node
SERVICE_CIDR=10.96.0.0/16
SERVICE_KUBERNETES_IP=10.96.0.1
SERVICE_DNS_IP=10.96.0.10
PAUSE_REF=localhost/mail-pressure/pause:1
# metrics-server's port on the node IP (the kubelet has 10250, its usual one).
METRICS_SERVER_PORT=4443
# The node's daemons, as node_start names them (their pid files, their logs).
NODE_DAEMONS=(kubelet kube-proxy coredns metrics-server)
PROBE_REF=localhost/mail-pressure/probe:1
# The NetworkPolicy agent (node_netpol_agent), its NFQUEUE number and metrics port (node netns).
NETPOL_REF=localhost/mail-pressure/kube-network-policies:v0.8.0
NETPOL_QUEUE=98
NETPOL_METRICS_PORT=9080
NODE_PACKAGES=(containerd runc containernetworking-plugins iptables busybox-static openssl)
CNI_BIN_DIR=/usr/lib/cni # where Debian's containernetworking-plugins puts them
# Host sysctls the kubelet sets at start (pkg/kubelet/cm: setupKernelTunables).
KUBELET_SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops)
SYSCTL_DIR=/run/mail-pressure # host-wide: shared by every real node on this machine

# shellcheck source=e2e/real-node/configs.sh
. "$REPO/e2e/real-node/configs.sh"

# node_env DIR: names and addresses of DIR's real node (slot read from DIR/node/slot).
node_env() {
  NDIR=$1/node
  NODE_ID=$(printf '%s' "$1" | sha256sum | cut -c1-8)
  NETNS=mpn-$NODE_ID
  VETH_HOST=mph$NODE_ID
  CGROUP_NAME=mp-$NODE_ID
  CNI_NET=mp-$NODE_ID
  CHAIN=MP-$NODE_ID
  SLOT=$(cat "$NDIR/slot" 2>/dev/null || true)
  if [[ -n $SLOT ]]; then slot_addresses "$SLOT"; fi
  SOCK=$NDIR/containerd/containerd.sock
  CTR=(ctr --address "$SOCK" -n k8s.io)
}

slot_addresses() {
  HOST_IP=10.251.$1.1
  NODE_IP=10.251.$1.2
  POD_CIDR=10.252.$1.0/24
  BRIDGE_IP=10.252.$1.1
}

# ---- host preparation ------------------------------------------------------

node_packages() {
  local missing=() p
  for p in "${NODE_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  note "installing Debian packages for the real node: ${missing[*]}"
  command -v apt-get >/dev/null || die "apt-get not found: install ${missing[*]} by hand"
  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"; } \
    >"$CACHE_ROOT/logs/apt-real-node.log" 2>&1 ||
    { tail -20 "$CACHE_ROOT/logs/apt-real-node.log" >&2; die "apt-get install ${missing[*]} failed"; }
}

node_preflight() {
  (($(id -u) == 0)) || die "--real-node needs root (network namespaces, cgroups, mounts)"
  mkdir -p "$CACHE_ROOT/logs"
  node_packages
  local c
  for c in containerd runc ctr iptables nsenter ip busybox; do
    command -v "$c" >/dev/null || die "--real-node needs $c on PATH"
  done
  [[ -x $CNI_BIN_DIR/bridge && -x $CNI_BIN_DIR/host-local && -x $CNI_BIN_DIR/loopback ]] ||
    die "CNI plugins missing in $CNI_BIN_DIR (Debian package containernetworking-plugins)"
}

# pick_slot: the first free slot from DIR's hash on, free = its /30 is on no
# host interface and no other real node's state claims it.
pick_slot() {
  local start=$((16#${NODE_ID:0:2})) i s
  for ((i = 0; i < 256; i++)); do
    s=$(((start + i) % 256))
    ip -4 -o addr show | grep -q " 10\.251\.$s\.[0-9]*/" && continue
    ip -4 route show | grep -qE "^10\.25[12]\.$s\." && continue
    printf '%s\n' "$s"
    return 0
  done
  die "no free 10.251.X.0/30 slot for the real node"
}

# node_net_up: the node netns, its veth to the host, the empty pod bridge.
node_net_up() {
  mkdir -p "$NDIR"
  SLOT=$(pick_slot) || return 1
  printf '%s\n' "$SLOT" >"$NDIR/slot"
  printf '%s\n' "$NETNS" >"$NDIR/netns"
  slot_addresses "$SLOT"
  ip netns add "$NETNS" || return 1
  ip link add "$VETH_HOST" type veth peer name eth0 netns "$NETNS" || return 1
  ip addr add "$HOST_IP/30" dev "$VETH_HOST"
  ip link set "$VETH_HOST" up
  # The pod subnet is reachable from the host only through our veth, so the
  # API server can answer pods; it leaves with the veth at `down`.
  ip route add "$POD_CIDR" via "$NODE_IP" dev "$VETH_HOST"
  local nx=(ip netns exec "$NETNS")
  "${nx[@]}" ip link set lo up
  "${nx[@]}" ip addr add "$NODE_IP/30" dev eth0
  "${nx[@]}" ip link set eth0 up
  # The bridge exists before the first pod so CoreDNS can bind its address;
  # the CNI bridge plugin adopts an existing bridge and gateway address.
  "${nx[@]}" ip link add cni0 type bridge
  "${nx[@]}" ip addr add "$BRIDGE_IP/24" dev cni0
  "${nx[@]}" ip link set cni0 up
  # Connections the node itself opens to a Service (the kubelet's, ours in the
  # checks) need a route before kube-proxy's OUTPUT DNAT picks the endpoint.
  "${nx[@]}" ip route add "$SERVICE_CIDR" dev cni0
  # Forwarding between the bridge and eth0 inside the node netns only (per netns).
  "${nx[@]}" sysctl -qw net.ipv4.ip_forward=1
  # Bridged pod-to-pod replies must pass iptables so kube-proxy's DNAT of a
  # Service is undone for a client on the same bridge (per netns since 5.3).
  "${nx[@]}" sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null ||
    note "warning: net.bridge.bridge-nf-call-iptables not settable in the node netns"
}

# node_firewall APIPORT: the only ways across the veth, on both sides.
node_firewall() {
  local port=$1 nx=(ip netns exec "$NETNS")
  # Host side. Packets from the veth to 10.251.I.1:<port> go to the API server
  # on loopback; route_localnet (only on this veth) lets the kernel route to
  # 127.0.0.1 from a non-loopback interface.
  sysctl -qw "net.ipv4.conf.$VETH_HOST.route_localnet=1"
  iptables -w -t nat -N "$CHAIN"
  iptables -w -t nat -A "$CHAIN" -i "$VETH_HOST" -d "$HOST_IP" -p tcp --dport "$port" \
    -j DNAT --to-destination "127.0.0.1:$port"
  iptables -w -t nat -I PREROUTING -j "$CHAIN"
  iptables -w -N "$CHAIN"
  iptables -w -A "$CHAIN" -i "$VETH_HOST" -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
  iptables -w -A "$CHAIN" -i "$VETH_HOST" -p tcp -d 127.0.0.1 --dport "$port" -j RETURN
  iptables -w -A "$CHAIN" -i "$VETH_HOST" -j DROP # nothing else on the host, nothing routed on
  iptables -w -I INPUT -j "$CHAIN"
  iptables -w -I FORWARD -i "$VETH_HOST" -j DROP
  iptables -w -I FORWARD -o "$VETH_HOST" -j DROP
  # Node side: pods talk to each other and to the API server, nothing else
  # crosses; kube-proxy's own FORWARD rules come after these.
  "${nx[@]}" iptables -w -N MP-EGRESS
  "${nx[@]}" iptables -w -A MP-EGRESS -i cni0 -o cni0 -j RETURN
  "${nx[@]}" iptables -w -A MP-EGRESS -i cni0 -o eth0 -d "$HOST_IP" -p tcp --dport "$port" -j RETURN
  "${nx[@]}" iptables -w -A MP-EGRESS -i eth0 -o cni0 -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
  "${nx[@]}" iptables -w -A MP-EGRESS -j DROP
  "${nx[@]}" iptables -w -I FORWARD -j MP-EGRESS
}

node_firewall_down() {
  local t
  for t in nat filter; do
    while iptables -w -t "$t" -D PREROUTING -j "$CHAIN" 2>/dev/null; do :; done
    while iptables -w -t "$t" -D INPUT -j "$CHAIN" 2>/dev/null; do :; done
    iptables -w -t "$t" -F "$CHAIN" 2>/dev/null || true
    iptables -w -t "$t" -X "$CHAIN" 2>/dev/null || true
  done
  while iptables -w -D FORWARD -i "$VETH_HOST" -j DROP 2>/dev/null; do :; done
  while iptables -w -D FORWARD -o "$VETH_HOST" -j DROP 2>/dev/null; do :; done
}

# ---- cgroups and host sysctls ------------------------------------------------

cgroup_roots() {
  if [[ $(stat -fc %T /sys/fs/cgroup) == cgroup2fs ]]; then
    printf '%s\n' "/sys/fs/cgroup/$CGROUP_NAME"
  else
    local d
    for d in /sys/fs/cgroup/*/; do
      [[ -L ${d%/} || ! -e $d/cgroup.procs ]] && continue
      printf '%s\n' "$d$CGROUP_NAME"
    done
  fi
}

# The kubelet's cgroupRoot: every pod lives below it, so `down` finds every
# container process there and the host's own kubepods (if any) is untouched.
node_cgroups_up() {
  local d
  while read -r d; do mkdir -p "$d"; done < <(cgroup_roots)
  if [[ $(stat -fc %T /sys/fs/cgroup) == cgroup2fs ]]; then
    local ctl ctls
    read -ra ctls </sys/fs/cgroup/cgroup.controllers
    for ctl in "${ctls[@]}"; do
      echo "+$ctl" >"/sys/fs/cgroup/$CGROUP_NAME/cgroup.subtree_control" 2>/dev/null || true
    done
  fi
}

# cgroup_pids: every process in our cgroup tree.
cgroup_pids() {
  local d
  while read -r d; do
    [[ -d $d ]] && find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null
  done < <(cgroup_roots) | sort -un
}

node_cgroups_down() {
  local d
  while read -r d; do
    [[ -d $d ]] || continue
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
    [[ -d $d ]] && note "warning: cgroup $d still busy"
  done < <(cgroup_roots)
  return 0
}

# The kubelet sets KUBELET_SYSCTLS host-wide. The first real node on this
# machine saves the values; the last one down restores them.
sysctls_save() {
  mkdir -p "$SYSCTL_DIR/nodes"
  if [[ ! -f $SYSCTL_DIR/sysctls.saved ]]; then
    local s
    for s in "${KUBELET_SYSCTLS[@]}"; do printf '%s=%s\n' "$s" "$(sysctl -n "$s")"; done >"$SYSCTL_DIR/sysctls.saved"
  fi
  printf '%s\n' "$DIR" >"$SYSCTL_DIR/nodes/$NODE_ID"
}

sysctls_restore() {
  rm -f "$SYSCTL_DIR/nodes/$NODE_ID"
  [[ -f $SYSCTL_DIR/sysctls.saved ]] || return 0
  [[ -z $(ls -A "$SYSCTL_DIR/nodes" 2>/dev/null) ]] || return 0
  local line
  while read -r line; do sysctl -qw "$line" || note "warning: could not restore $line"; done <"$SYSCTL_DIR/sysctls.saved"
  rm -rf "$SYSCTL_DIR"
}

# ---- processes --------------------------------------------------------------

# node_start NAME CMD...: run CMD detached in the node netns, log and pid in NDIR.
node_start() {
  local name=$1; shift
  setsid nsenter --net="/run/netns/$NETNS" -- "$@" >"$NDIR/logs/$name.log" 2>&1 </dev/null &
  printf '%s\n' "$!" >"$NDIR/pids/$name.pid"
}

in_node() { nsenter --net="/run/netns/$NETNS" -- "$@"; }

metrics_available() {
  [[ $("${KUBECTL[@]}" get apiservice v1beta1.metrics.k8s.io -o jsonpath='{.status.conditions[?(@.type=="Available")].status}' 2>/dev/null) == True ]]
}

node_ready() {
  [[ $("${KUBECTL[@]}" get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}

# ---- images ---------------------------------------------------------------

# node_images: the project's archives (scripts/build-images.sh) when that script
# exists, plus the probe image, into containerd's k8s.io namespace.
node_images() {
  local out=$CACHE_ROOT/images own=$CACHE_ROOT/real-node-images archive
  mkdir -p "$own"
  if [[ -x $REPO/scripts/build-images.sh ]]; then
    note "building the project's images: scripts/build-images.sh ${PRESSURE_BUILD_IMAGES_ARGS:---profile debug}"
    # shellcheck disable=SC2086 # word splitting of the extra arguments is wanted
    "$REPO/scripts/build-images.sh" ${PRESSURE_BUILD_IMAGES_ARGS:---profile debug} >"$NDIR/logs/build-images.log" 2>&1 ||
      { tail -30 "$NDIR/logs/build-images.log" >&2; { note "ERROR: scripts/build-images.sh failed (log: $NDIR/logs/build-images.log)"; return 1; }; }
  else
    # Fallback until scripts/build-images.sh exists: the pause image alone.
    note "scripts/build-images.sh not found: building only a fallback pause image"
    gcc -static -Os -s -o "$own/pause" "$REPO/e2e/real-node/pause.c" ||
      { note "ERROR: gcc -static failed for e2e/real-node/pause.c (Debian: gcc, libc6-dev)"; return 1; }
    python3 "$REPO/e2e/real-node/oci_image.py" "$own/pause.oci.tar" "$PAUSE_REF" '["/pause"]' "$own/pause:/pause" || return 1
  fi
  # The probe: busybox-static, plus Debian's getent (glibc's resolver, as
  # applications use it) and openssl (busybox's TLS cannot talk to the API
  # server, and does not verify certificates), with the shared libraries and
  # NSS modules they load. A static glibc loads NSS modules too: hence them.
  printf 'hosts: files dns\n' >"$own/nsswitch.conf"
  local libs=() lib
  for lib in /lib/x86_64-linux-gnu/{libc.so.6,libnss_files.so.2,libnss_dns.so.2,libresolv.so.2,libssl.so.3,libcrypto.so.3} \
    /lib64/ld-linux-x86-64.so.2; do
    libs+=("$(readlink -f "$lib"):$lib")
  done
  python3 "$REPO/e2e/real-node/oci_image.py" "$own/probe.oci.tar" "$PROBE_REF" '["/bin/sh"]' \
    /bin/busybox:/bin/busybox /usr/bin/getent:/bin/getent /usr/bin/openssl:/bin/openssl \
    "$own/nsswitch.conf:/etc/nsswitch.conf" "${libs[@]}" --busybox || return 1
  local archives=("$own/probe.oci.tar")
  [[ -f $own/pause.oci.tar && ! -x $REPO/scripts/build-images.sh ]] && archives+=("$own/pause.oci.tar")
  if [[ -f $out/index.tsv && -x $REPO/scripts/build-images.sh ]]; then
    mapfile -t -O "${#archives[@]}" archives < <(awk -F'\t' 'NR > 1 && $3 != "" { print $3 }' "$out/index.tsv")
  fi
  for archive in "${archives[@]}"; do
    "${CTR[@]}" images import --all-platforms "$archive" >>"$NDIR/logs/images.log" 2>&1 ||
      { tail -5 "$NDIR/logs/images.log" >&2; { note "ERROR: ctr images import $archive failed"; return 1; }; }
  done
  "${CTR[@]}" images check >>"$NDIR/logs/images.log" 2>&1 || true
  local held
  held=$("${CTR[@]}" images ls -q)
  grep -qx "$PAUSE_REF" <<<"$held" || { note "ERROR: containerd holds no $PAUSE_REF after the import"; return 1; }
  if [[ -f $out/images.yaml && -x $REPO/scripts/build-images.sh ]]; then
    cp "$out/images.yaml" "$DIR/images.yaml"
  else
    printf '# No project images on this node (scripts/build-images.sh absent): nothing to override.\n{}\n' >"$DIR/images.yaml"
  fi
}

# ---- up and down --------------------------------------------------------------

# node_pre_up DIR: everything the control plane needs to know first.
node_pre_up() {
  node_preflight
  node_env "$1"
  node_net_up || return 1
  node_aggregation_pki || return 1
  node_kwokctl_config "$NDIR/kwokctl.yaml"
}

node_up() {
  local start=$SECONDS port ca
  port=$("${KUBECTL[@]}" config view -o jsonpath='{.clusters[0].cluster.server}')
  port=${port##*:}
  ca=$CLUSTER_DIR/pki/ca.crt
  [[ -f $ca ]] || { note "ERROR: no cluster CA at $ca"; return 1; }
  # Called in an `||` list, where set -e does not apply: every step checks.
  node_firewall "$port" || return 1
  node_configs "$port" "$ca" || return 1
  node_cgroups_up || return 1
  sysctls_save || return 1

  node_start containerd containerd --config "$NDIR/containerd.toml"
  retry 60 "containerd on $SOCK" "${CTR[@]}" version || { tail -20 "$NDIR/logs/containerd.log" >&2; return 1; }
  node_images || return 1

  node_start kubelet "$NODE_DIR/kubelet" --config "$NDIR/kubelet.yaml" --kubeconfig "$NDIR/kubeconfig" \
    --root-dir "$NDIR/kubelet" --cert-dir "$NDIR/kubelet/pki" --hostname-override "$NODE_NAME" \
    --node-ip "$NODE_IP" --node-labels "$NODE_LABEL_KEY=$NODE_LABEL_VALUE" --v 2
  node_start kube-proxy "$NODE_DIR/kube-proxy" --config "$NDIR/kube-proxy.yaml" --v 2
  node_start coredns "$COREDNS_DIR/coredns" -conf "$NDIR/Corefile"
  node_dns_service
  # Resource metrics (kubectl top, the HPA) from the kubelet's /metrics/resource,
  # whose serving certificate node_aggregation_pki made for the node IP; only the
  # real node (kwok's fake nodes have no kubelet to ask).
  node_start metrics-server "$METRICS_SERVER_DIR/metrics-server" --kubeconfig "$NDIR/kubeconfig" \
    --authentication-kubeconfig "$NDIR/kubeconfig" --authorization-kubeconfig "$NDIR/kubeconfig" \
    --bind-address "$NODE_IP" --secure-port "$METRICS_SERVER_PORT" \
    --tls-cert-file "$NDIR/pki/metrics-server.crt" --tls-private-key-file "$NDIR/pki/metrics-server.key" \
    --kubelet-preferred-address-types InternalIP --kubelet-certificate-authority "$NDIR/pki/kubelet.crt" \
    --node-selector "$NODE_LABEL_KEY=$NODE_LABEL_VALUE" --metric-resolution 15s --v 2
  node_metrics_service
  retry "$UP_TIMEOUT" "the real node $NODE_NAME Ready" node_ready ||
    { tail -30 "$NDIR/logs/kubelet.log" >&2; return 1; }
  retry "$UP_TIMEOUT" "CoreDNS ready" in_node curl -fsS http://127.0.0.1:8181/ready ||
    { tail -30 "$NDIR/logs/coredns.log" >&2; return 1; }
  retry "$UP_TIMEOUT" "kube-proxy healthy" in_node curl -fsS http://127.0.0.1:10256/healthz ||
    { tail -30 "$NDIR/logs/kube-proxy.log" >&2; return 1; }
  node_netpol_up || return 1
  retry "$UP_TIMEOUT" "the APIService v1beta1.metrics.k8s.io Available" metrics_available ||
    { tail -30 "$NDIR/logs/metrics-server.log" >&2; "${KUBECTL[@]}" get apiservice v1beta1.metrics.k8s.io -o yaml >&2; return 1; }
  note "real node $NODE_NAME up in $((SECONDS - start)) s (node IP $NODE_IP, pods $POD_CIDR, netns $NETNS)"
}

# node_netpol_up: the NetworkPolicy agent, when its image is on the node (the
# default image list builds it; a list without it leaves policies unenforced,
# as on a plain bridge CNI, and says so).
node_netpol_up() {
  if ! "${CTR[@]}" images ls -q | grep -qx "$NETPOL_REF"; then
    note "warning: no $NETPOL_REF on the node: NetworkPolicies are not enforced"
    return 0
  fi
  node_netpol_agent || return 1
  retry "$UP_TIMEOUT" "the NetworkPolicy agent (kube-network-policies) serving" \
    in_node curl -fsS "http://127.0.0.1:$NETPOL_METRICS_PORT/metrics" ||
    { "${KUBECTL[@]}" -n kube-system logs ds/kube-network-policies --tail=30 >&2 || true; return 1; }
}

# node_namespace NS: create NS so that every pod in it runs on the real node.
node_namespace() {
  "${KUBECTL[@]}" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: $1
  annotations:
    scheduler.alpha.kubernetes.io/node-selector: $NODE_LABEL_KEY=$NODE_LABEL_VALUE
    scheduler.alpha.kubernetes.io/defaultTolerations: '[{"key": "$NODE_TAINT_KEY", "operator": "Exists", "effect": "NoSchedule"}]'
EOF
}

# node_pids: our daemons and shims (DIR/node on their command line) and
# every process left in the node netns or our cgroups (containers).
node_pids() {
  local p ns_ino=""
  [[ -e /run/netns/$NETNS ]] && ns_ino=$(stat -Lc %i "/run/netns/$NETNS" 2>/dev/null)
  for p in /proc/[0-9]*; do
    [[ ${p#/proc/} == "$$" ]] && continue
    if [[ $(tr "\0" " " 2>/dev/null <"$p/cmdline") == *"$NDIR/"* ]]; then
      printf '%s\n' "${p#/proc/}"
    elif [[ -n $ns_ino && $(stat -Lc %i "$p/ns/net" 2>/dev/null) == "$ns_ino" ]]; then
      printf '%s\n' "${p#/proc/}"
    fi
  done
  cgroup_pids
}

node_down() {
  node_env "$1"
  [[ -d $NDIR ]] || return 0
  local pid name pids ids
  # Every container and sandbox id containerd ran, for the host paths keyed by id.
  mapfile -t ids < <(ls "$NDIR/containerd/state/io.containerd.runtime.v2.task/k8s.io" 2>/dev/null)
  # Kubelet first (it would restart containers), then containers, then the rest.
  for name in "${NODE_DAEMONS[@]}"; do
    pid=$(cat "$NDIR/pids/$name.pid" 2>/dev/null || true)
    if [[ -n $pid ]]; then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  mapfile -t pids < <(cgroup_pids)
  ((${#pids[@]} == 0)) || kill -KILL "${pids[@]}" 2>/dev/null || true
  pid=$(cat "$NDIR/pids/containerd.pid" 2>/dev/null || true)
  if [[ -n $pid ]]; then kill -TERM "$pid" 2>/dev/null || true; fi
  # The daemons get 10 s to exit; the shims then only wait for a containerd
  # that is gone (they outlive it by design), so they and anything else left
  # are killed at once.
  local deadline=$((SECONDS + 10)) daemons
  while :; do
    daemons=()
    for name in "${NODE_DAEMONS[@]}" containerd; do
      pid=$(cat "$NDIR/pids/$name.pid" 2>/dev/null || true)
      [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && daemons+=("$pid")
    done
    ((${#daemons[@]} == 0 || SECONDS >= deadline)) && break
    sleep 0.2
  done
  mapfile -t pids < <(node_pids)
  if ((${#pids[@]} > 0)); then
    kill -KILL "${pids[@]}" 2>/dev/null || true
    deadline=$((SECONDS + 5))
    while mapfile -t pids < <(node_pids) && ((${#pids[@]} > 0 && SECONDS < deadline)); do sleep 0.2; done
    ((${#pids[@]} == 0)) || note "warning: real-node processes still running: ${pids[*]}"
  fi
  # Every mount below DIR/node (container root file systems, pod volumes,
  # pod netns bind mounts), deepest first.
  local m
  while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || note "warning: cannot unmount $m"
  done < <(awk -v d="$NDIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
  ip netns del "$NETNS" 2>/dev/null || true
  ip link del "$VETH_HOST" 2>/dev/null || true
  # ip netns made /run/netns a mount point the first time; drop it when empty.
  if [[ -d /run/netns && -z $(ls -A /run/netns) ]]; then umount /run/netns 2>/dev/null; rmdir /run/netns 2>/dev/null; fi
  node_firewall_down
  node_cgroups_down
  sysctls_restore
  # Paths the kubelet and libcni hard-code, only the entries of this node.
  find /var/log/containers -maxdepth 1 -type l -lname "$NDIR/*" -delete 2>/dev/null || true
  rm -f /var/lib/cni/results/"$CNI_NET"-* 2>/dev/null || true
  local id
  for id in "${ids[@]}"; do
    rm -f /var/lib/cni/results/*-"$id"-* 2>/dev/null || true
    # containerd 1.6 puts each shim's socket at /run/containerd/s/sha256(address/namespace/id).
    rm -f "/run/containerd/s/$(printf '%s' "$SOCK/k8s.io/$id" | sha256sum | cut -d' ' -f1)"
  done
  rm -rf "$NDIR" "$DIR/images.yaml"
}
