# shellcheck shell=bash
# The configuration files of the real node (containerd, CNI, kubelet,
# kube-proxy, CoreDNS, kwokctl), the aggregation layer's certificates, and the
# kube-dns and metrics-server Services, written into DIR/node.
# Sourced by e2e/real-node/node.sh, whose node_env sets the names and addresses
# used here. Every setting that differs from a default says why.

node_configs() {
  local port=$1 ca=$2
  mkdir -p "$NDIR"/{logs,pids,cni/net.d,cni/ipam,containerd,kubelet,pod-logs,volume-plugins}
  # The node's components reach the API server through the veth (the host
  # DNATs to loopback); the certificate carries 10.251.I.1 (kwokctl SANs).
  sed "s#server: https://127.0.0.1:$port#server: https://$HOST_IP:$port#" "$DIR/kubeconfig" >"$NDIR/kubeconfig"
  grep -q "server: https://$HOST_IP:$port" "$NDIR/kubeconfig" ||
    { note "ERROR: cannot rewrite the server of $DIR/kubeconfig"; return 1; }
  chmod 600 "$NDIR/kubeconfig"

  cat >"$NDIR/containerd.toml" <<EOF
# containerd for the real node of $DIR (written by e2e/real-node/node.sh).
version = 2
# Own root, state and sockets: nothing under /var/lib/containerd or /run/containerd
# (except the shims' sockets under /run/containerd/s, which containerd 1.6 hard-codes).
root = "$NDIR/containerd/root"
state = "$NDIR/containerd/state"
# Snapshotters this node cannot use; skipping them keeps the log honest.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "$NDIR/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  # Made here (nothing can be pulled); loaded by control-plane.sh with ctr import.
  sandbox_image = "$PAUSE_REF"
  # This VM grants no process CAP_SYS_RESOURCE: a negative oom_score_adj (the
  # default for sandboxes) is refused and every sandbox fails with "can't get
  # final child's PID from pipe: EOF". Clamp to the daemon's own value instead.
  restrict_oom_score_adj = true
  # Pod network namespaces under the state dir, not /run/netns: down unmounts them with DIR.
  netns_mounts_under_state_dir = true
  # CRI streaming (exec, logs through the kubelet) on the node netns' loopback.
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # The kubelet uses cgroupfs (no systemd here); both must agree.
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    # Debian's plugins; our own conf dir so no host CNI config is picked up.
    bin_dir = "$CNI_BIN_DIR"
    conf_dir = "$NDIR/cni/net.d"
    max_conf_num = 1
EOF

  cat >"$NDIR/cni/net.d/10-$CNI_NET.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "$CNI_NET",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "isDefaultGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$NDIR/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$BRIDGE_IP"}]],
        "routes": [{"dst": "$SERVICE_CIDR"}]
      }
    }
  ]
}
EOF

  : >"$NDIR/resolv.conf" # pods with dnsPolicy Default get no resolver: there is nothing outside to ask
  cat >"$NDIR/kubelet.yaml" <<EOF
# KubeletConfiguration of the real node of $DIR (written by e2e/real-node/node.sh).
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://$SOCK
imageServiceEndpoint: unix://$SOCK
# No systemd on these machines; containerd's runc uses cgroupfs as well.
cgroupDriver: cgroupfs
# Every pod cgroup below /$CGROUP_NAME, so down finds and removes them all.
cgroupRoot: /$CGROUP_NAME
# The CI VMs run cgroup v1; kubelet 1.35+ refuses it unless told otherwise.
failCgroupV1: false
# A developer's machine may have swap on; the kubelet would refuse to start.
failSwapOn: false
# Serve (logs, exec) on the node IP inside the node netns only.
address: $NODE_IP
healthzBindAddress: 127.0.0.1
readOnlyPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$ca"}
authorization: {mode: Webhook}
# Made by node_aggregation_pki for the node IP, so metrics-server verifies it
# (the kubelet's own self-signed one names only the host name).
tlsCertFile: "$NDIR/pki/kubelet.crt"
tlsPrivateKeyFile: "$NDIR/pki/kubelet.key"
clusterDNS: [$SERVICE_DNS_IP]
clusterDomain: cluster.local
resolvConf: "$NDIR/resolv.conf"
podLogsDir: $NDIR/pod-logs
volumePluginDir: $NDIR/volume-plugins
# Nothing can be pulled again: never garbage-collect images, never evict for
# disk (as kind does); the CI disk may well be fuller than the 85 % default.
imageGCHighThresholdPercent: 100
evictionHard:
  memory.available: "100Mi"
  nodefs.available: "0%"
  nodefs.inodesFree: "0%"
  imagefs.available: "0%"
registerWithTaints:
  - {key: $NODE_TAINT_KEY, value: "true", effect: NoSchedule}
EOF

  cat >"$NDIR/kube-proxy.yaml" <<EOF
# KubeProxyConfiguration of the real node of $DIR (written by e2e/real-node/node.sh).
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: "$NDIR/kubeconfig"}
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $POD_CIDR
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# nf_conntrack_max is host-wide and read-only in a netns: leave every
# conntrack setting as the kernel has it (0 = do not touch).
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF

  cat >"$NDIR/Corefile" <<EOF
# Cluster DNS of the real node of $DIR (written by e2e/real-node/node.sh).
# Only cluster names: there is no upstream to forward anything else to.
.:53 {
    bind $BRIDGE_IP
    ready 127.0.0.1:8181
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $NDIR/kubeconfig
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 30
    loadbalance
}
EOF
}

# node_kwokctl_config FILE: kwokctl settings for a cluster with a real node.
node_kwokctl_config() {
  cat >"$1" <<EOF
# kwokctl settings for e2e/control-plane.sh up DIR --real-node (see e2e/kwok/kwokctl.yaml).
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  bindAddress: 127.0.0.1
  # Pods reach the API server as https://10.96.0.1 (the kubernetes Service),
  # the node's components as https://$HOST_IP:<port>.
  kubeApiserverCertSANs: ["$SERVICE_KUBERNETES_IP", "$HOST_IP"]
componentsPatches:
  - name: kube-apiserver
    extraArgs:
      # The kubernetes Service's endpoint: the host end of the node's veth,
      # where the host hands connections to the loopback API server.
      - {key: advertise-address, value: "$HOST_IP"}
      - {key: service-cluster-ip-range, value: "$SERVICE_CIDR"}
      # A namespace annotated by node_namespace puts all its pods on the real
      # node (node selector + toleration), with no change to the pods.
      - {key: enable-admission-plugins, value: "PodNodeSelector,PodTolerationRestriction"}
      # kubectl logs/exec/port-forward reach the kubelet as kwok-admin
      # (system:masters), which the kubelet trusts through the cluster CA.
      - {key: kubelet-client-certificate, value: "$CLUSTER_DIR/pki/admin.crt"}
      - {key: kubelet-client-key, value: "$CLUSTER_DIR/pki/admin.key"}
      # The node's name means nothing to the host's resolver: use its address.
      - {key: kubelet-preferred-address-types, value: "InternalIP"}
      # The aggregation layer, for metrics-server's metrics.k8s.io (the HPA's
      # CPU figures): the API server proxies to it as front-proxy-client, and
      # metrics-server believes the user named in these headers only from a
      # certificate of the front-proxy CA (node_aggregation_pki). kwokctl's
      # own proxy client certificate is the admin one: replaced.
      - {key: requestheader-client-ca-file, value: "$NDIR/pki/front-proxy-ca.crt"}
      - {key: requestheader-allowed-names, value: "front-proxy-client"}
      - {key: requestheader-username-headers, value: "X-Remote-User"}
      - {key: requestheader-group-headers, value: "X-Remote-Group"}
      - {key: requestheader-extra-headers-prefix, value: "X-Remote-Extra-"}
      - {key: proxy-client-cert-file, value: "$NDIR/pki/front-proxy-client.crt", override: true}
      - {key: proxy-client-key-file, value: "$NDIR/pki/front-proxy-client.key", override: true}
      # No kube-proxy rules on the host: dial the Service's endpoint (the
      # node IP), not its ClusterIP.
      - {key: enable-aggregator-routing, value: "true"}
  - name: kwok-controller
    extraArgs:
      # kwok must not fake the real node: only nodes kwokctl made (annotated).
      - {key: manage-all-nodes, value: "false", override: true}
      - {key: manage-nodes-with-annotation-selector, value: "kwok.x-k8s.io/node=fake"}
EOF
}

# The NetworkPolicy agent: kube-network-policies as upstream's install.yaml
# runs it (a privileged hostNetwork DaemonSet, here only on the real node and
# with the image built by scripts/build-images.sh). It decides each new
# connection to or from a pod that a policy selects, in userspace through
# NFQUEUE; without it the bridge plugin ignores every NetworkPolicy. NRI is off
# (containerd 1.6 has none): pod addresses come from the API server. The DNS
# race workaround is off too (not needed since Linux 6.12).
node_netpol_agent() {
  "${KUBECTL[@]}" apply -f - >/dev/null <<EOF
kind: ClusterRole
apiVersion: rbac.authorization.k8s.io/v1
metadata: {name: kube-network-policies}
rules:
  - apiGroups: [""]
    resources: [pods, namespaces]
    verbs: [list, watch]
  - apiGroups: [networking.k8s.io]
    resources: [networkpolicies]
    verbs: [list, watch]
---
kind: ClusterRoleBinding
apiVersion: rbac.authorization.k8s.io/v1
metadata: {name: kube-network-policies}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kube-network-policies}
subjects: [{kind: ServiceAccount, name: kube-network-policies, namespace: kube-system}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: kube-network-policies, namespace: kube-system}
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: kube-network-policies
  namespace: kube-system
  labels: {app: kube-network-policies}
spec:
  selector:
    matchLabels: {app: kube-network-policies}
  template:
    metadata:
      labels: {app: kube-network-policies}
    spec:
      hostNetwork: true
      serviceAccountName: kube-network-policies
      nodeSelector: {$NODE_LABEL_KEY: $NODE_LABEL_VALUE}
      tolerations: [{key: $NODE_TAINT_KEY, operator: Exists, effect: NoSchedule}]
      containers:
        - name: kube-network-policies
          image: $NETPOL_REF
          imagePullPolicy: Never
          args:
            - --hostname-override=\$(MY_NODE_NAME)
            - --nfqueue-id=$NETPOL_QUEUE
            - --disable-nri
            - --netfilter-bug-1766-fix=false
            - --metrics-bind-address=127.0.0.1:$NETPOL_METRICS_PORT
            - --v=2
          env:
            - name: MY_NODE_NAME
              valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
          resources:
            requests: {cpu: 50m, memory: 50Mi}
          securityContext:
            privileged: true
            capabilities: {add: [NET_ADMIN]}
EOF
}

# The kube-dns Service: a selector-less ClusterIP whose EndpointSlice names
# CoreDNS on the bridge address, so pods resolve through kube-proxy exactly as
# through kind's kube-dns Service.
node_dns_service() {
  "${KUBECTL[@]}" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
spec:
  clusterIP: $SERVICE_DNS_IP
  ports:
    - {name: dns, port: 53, protocol: UDP, targetPort: 53}
    - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kube-dns-real-node
  namespace: kube-system
  labels:
    kubernetes.io/service-name: kube-dns
    endpointslice.kubernetes.io/managed-by: pressure.mailproxy.dev-real-node
addressType: IPv4
endpoints:
  - addresses: [$BRIDGE_IP]
    conditions: {ready: true}
    nodeName: $NODE_NAME
ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
EOF
}


# node_aggregation_pki: the front-proxy CA and the API server's client
# certificate for the aggregation layer; metrics-server's serving certificate
# (self-signed, named for its Service; the APIService's caBundle) and the
# kubelet's (self-signed, for the node IP; metrics-server's trust for it).
node_aggregation_pki() {
  local pki=$NDIR/pki
  mkdir -p "$pki" "$NDIR/logs" && chmod 700 "$pki"
  {
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=front-proxy-ca \
      -keyout "$pki/front-proxy-ca.key" -out "$pki/front-proxy-ca.crt" &&
      openssl req -newkey rsa:2048 -nodes -subj /CN=front-proxy-client \
        -keyout "$pki/front-proxy-client.key" -out "$pki/front-proxy-client.csr" &&
      openssl x509 -req -in "$pki/front-proxy-client.csr" -days 30 -CA "$pki/front-proxy-ca.crt" \
        -CAkey "$pki/front-proxy-ca.key" -CAcreateserial -out "$pki/front-proxy-client.crt" \
        -extfile <(printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n') &&
      openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=metrics-server.kube-system.svc \
        -addext "subjectAltName=DNS:metrics-server.kube-system.svc,IP:$NODE_IP" \
        -keyout "$pki/metrics-server.key" -out "$pki/metrics-server.crt" &&
      openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=$NODE_NAME" \
        -addext "subjectAltName=DNS:$NODE_NAME,IP:$NODE_IP" \
        -keyout "$pki/kubelet.key" -out "$pki/kubelet.crt"
  } >"$NDIR/logs/pki.log" 2>&1 || { cat "$NDIR/logs/pki.log" >&2; note "ERROR: openssl failed"; return 1; }
}

# node_metrics_service: metrics-server (a process in the node netns on
# NODE_IP:METRICS_SERVER_PORT) behind a selector-less Service and the
# APIService v1beta1.metrics.k8s.io, as CoreDNS is behind kube-dns. The API
# server dials the EndpointSlice's address (--enable-aggregator-routing).
node_metrics_service() {
  local bundle
  bundle=$(base64 -w0 "$NDIR/pki/metrics-server.crt")
  "${KUBECTL[@]}" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata:
  name: metrics-server
  namespace: kube-system
  labels: {k8s-app: metrics-server}
spec:
  ports:
    - {name: https, port: 443, protocol: TCP, targetPort: $METRICS_SERVER_PORT}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: metrics-server-real-node
  namespace: kube-system
  labels:
    kubernetes.io/service-name: metrics-server
    endpointslice.kubernetes.io/managed-by: pressure.mailproxy.dev-real-node
addressType: IPv4
endpoints:
  - addresses: [$NODE_IP]
    conditions: {ready: true}
    nodeName: $NODE_NAME
ports:
  - {name: https, port: $METRICS_SERVER_PORT, protocol: TCP}
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: v1beta1.metrics.k8s.io
  labels: {k8s-app: metrics-server}
spec:
  group: metrics.k8s.io
  version: v1beta1
  service: {name: metrics-server, namespace: kube-system, port: 443}
  caBundle: $bundle
  groupPriorityMinimum: 100
  versionPriority: 100
EOF
}
