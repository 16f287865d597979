#!/usr/bin/env bash
# The seed's compose quick start, for real (issue 13 item 4): brings up
# deploy/compose/docker-compose.pressure.yml with podman and podman-compose, on the images
# scripts/build-images.sh made here (deploy/compose/docker-compose.local.yml points at them and
# leaves out what cannot run here), and checks what the seed's README does by hand:
#
#   1. `up -d`: the setup step registers the four tenants and exits 0;
#   2. mail arrives at the sink, and the count grows;
#   3. a client's /stats answers on its host port (127.0.0.1 only);
#   4. `up -d --scale client-high-volume=3` gives 3 running high-volume clients, each answering;
#   5. `down -v` removes the containers, the volume and the network.
#
#   scripts/check-compose.sh [--images DIR] [--keep]
#
# Root only (rootful podman). Installs podman, runc, netavark and aardvark-dns with apt-get when
# missing, and podman-compose (pinned) from PyPI into a venv under the cache. Builds the three
# images it needs with scripts/build-images.sh --profile debug when an archive is missing.
#
# Everything podman keeps lives in a temporary folder of this run (its own storage, run root,
# networks folder and containers.conf, through CONTAINERS_CONF and CONTAINERS_STORAGE_CONF), so
# it neither sees nor touches another podman user's containers, and a used machine behaves like
# a new one. On exit (also on failure or Ctrl-C) it removes every container, volume and network
# it made, unmounts and deletes that folder, stops the aardvark-dns it started, deletes the
# iptables rules and chains that netavark or this script added, and restores
# net.ipv4.ip_forward.
#
# Settings this machine needs (each is in the containers.conf written below, with why):
# - runtime runc: crun 1.8 refuses the hybrid cgroup layout here ("cgroups in hybrid mode not
#   supported, drop all controllers from cgroupv2": hugetlb sits on the cgroup2 mount);
# - cgroupfs, file events: there is no systemd;
# - explicit ulimits: this VM gives no process CAP_SYS_RESOURCE, and rootful podman asks for
#   nofile 1048576 by default ("setrlimit RLIMIT_NOFILE: Operation not permitted");
# - health checks: podman 4.3 runs them from systemd timers, which do not exist here; podman logs
#   "unable to get systemd connection to add healthchecks" and starts the container anyway. This
#   script runs the health checks itself (`podman healthcheck run`). podman-compose ignores
#   `condition: service_healthy` on podman < 4.6 (it says so); the setup step waits for the
#   proxy's /health itself.
#
# Network: one bridge network of this run (mail-pressure_default, created here before `up`, on a
# subnet podman picks free). A rule in the mangle table drops every packet coming from that bridge
# to an address that is neither on the bridge's subnet nor this machine's own, so no container
# can reach anything off the machine (netavark's masquerade rule stays unused). Host ports are
# published on 127.0.0.1 only (the compose file's default).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

PODMAN_COMPOSE_VERSION=1.6.0
cache=${PRESSURE_CACHE_DIR:-$HOME/.cache/mail-pressure}
images=$cache/images
keep=0
while [ $# -gt 0 ]; do
  case $1 in
    --images) images=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "check-compose: unknown argument $1" >&2; exit 2 ;;
  esac
done

t0=$(date +%s.%N)
elapsed() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
say() { printf '[%6ss] %s\n' "$(elapsed)" "$*"; }
fail() { printf '[%6ss] FAIL: %s\n' "$(elapsed)" "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "needs root: rootful podman (rootless would need subuids and slirp here)"

# ---------------------------------------------------------------------------------------------
# Tools
missing=()
for tool in podman runc /usr/lib/podman/netavark /usr/lib/podman/aardvark-dns iptables; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing podman runc netavark aardvark-dns iptables (apt-get; missing: ${missing[*]})"
  pkgs=(podman runc netavark aardvark-dns iptables)
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}" >/dev/null 2>&1 ||
    { apt-get update >/dev/null &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}" >/dev/null; } ||
    fail "apt-get install ${pkgs[*]} failed"
fi
venv=$cache/podman-compose-venv
if ! "$venv/bin/podman-compose" --version 2>/dev/null | grep -q "podman-compose version $PODMAN_COMPOSE_VERSION"; then
  say "installing podman-compose $PODMAN_COMPOSE_VERSION (PyPI, venv $venv)"
  rm -rf "$venv"
  if ! python3 -m venv "$venv" || ! "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "podman-compose==$PODMAN_COMPOSE_VERSION"; then
    fail "cannot install podman-compose (needs python3-venv and PyPI)"
  fi
fi
say "$(podman --version), $(runc --version | head -1), podman-compose $PODMAN_COMPOSE_VERSION"

# ---------------------------------------------------------------------------------------------
# Images: the three the stack needs. Mailpit and Prometheus (profiles mailhog and prometheus)
# are not needed: the verifying sink takes MailHog's place.
need=(mailproxy client-sim postgres)
absent=()
for name in "${need[@]}"; do
  [ -s "$images/$name.oci.tar" ] || absent+=("$name")
done
if [ ${#absent[@]} -gt 0 ]; then
  say "building images ${absent[*]} (scripts/build-images.sh --profile debug)"
  scripts/build-images.sh --profile debug --out "$images" "${absent[@]}"
fi

# ---------------------------------------------------------------------------------------------
# Podman state of this run, and what the host had before it (to restore it exactly).
ip_forward_before=$(sysctl -n net.ipv4.ip_forward)
had_run_containers=0; [ -e /run/containers ] && had_run_containers=1
# aardvark-dns (netavark's DNS server) processes and netavark's iptables chains that exist
# before the run belong to someone else and are left alone.
aardvark_before=" $(pgrep -x aardvark-dns | tr '\n' ' ' || :) "
netavark_chains() { { iptables -t "$1" -S 2>/dev/null || :; } | awk '$1 == "-N" && $2 ~ /^NETAVARK/ {print $2}'; }
nv_before_nat=" $(netavark_chains nat | tr '\n' ' ') "
nv_before_filter=" $(netavark_chains filter | tr '\n' ' ') "
# Deletes the NETAVARK chains of TABLE that were not there before the run, and every rule that
# jumps to them (netavark leaves its base chains behind, and more when a teardown failed).
drop_new_chains() { # TABLE " CHAINS BEFORE "
  local table=$1 before=$2 chain rule new=()
  for chain in $(netavark_chains "$table"); do
    case $before in *" $chain "*) ;; *) new+=("$chain") ;; esac
  done
  [ ${#new[@]} -gt 0 ] || return 0
  for chain in "${new[@]}"; do
    iptables -t "$table" -S | grep -E -- "-j $chain( |\$)" | while read -r rule; do
      eval "iptables -t $table -D ${rule#-A }" || true # -S quotes comments: eval keeps them whole
    done
  done
  for chain in "${new[@]}"; do iptables -t "$table" -F "$chain" || true; done
  for chain in "${new[@]}"; do iptables -t "$table" -X "$chain" || true; done
}
egress_rule=()
egress_rule6=()


dump() {
  echo "---- podman ps -a"
  podman ps -a --format '{{.Names}}  {{.Status}}  {{.Ports}}' 2>&1 || true
  local c
  for c in $(podman ps -a --format '{{.Names}}' 2>/dev/null); do
    echo "---- logs $c (last 25 lines)"
    podman logs --tail 25 "$c" 2>&1 || true
  done
  for f in "$work"/*.log; do
    if [ ! -s "$f" ] || [ "$f" = "$work/events.log" ]; then continue; fi
    echo "---- $f (last 40 lines)"
    tail -n 40 "$f"
  done
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e # clean up as much as possible, whatever fails
  # podman only ever on this run's storage: never the machine's default one.
  if [ "${CONTAINERS_CONF:-}" != "$work/containers.conf" ] || [ ! -f "$CONTAINERS_CONF" ]; then
    rm -rf "$work"
    exit "$rc"
  fi
  if [ "$rc" != 0 ]; then
    dump >&2
  fi
  if [ "$keep" = 1 ]; then
    echo "check-compose: --keep: left running; state in $work (CONTAINERS_CONF=$CONTAINERS_CONF" \
      "CONTAINERS_STORAGE_CONF=$CONTAINERS_STORAGE_CONF); iptables rules and ip_forward not restored" >&2
    exit "$rc"
  fi
  {
    podman rm -fa -t 0
    podman volume prune -f
    podman network prune -f
    podman rmi -fa
  } >/dev/null 2>&1 || true
  # aardvark-dns exits when its last network is gone; make sure (by pid: only ones this run started).
  local pid
  for pid in $(pgrep -x aardvark-dns); do
    case $aardvark_before in *" $pid "*) ;; *) kill "$pid" 2>/dev/null || true ;; esac
  done
  if [ ${#egress_rule[@]} -gt 0 ]; then
    iptables -t mangle -D PREROUTING "${egress_rule[@]}" 2>/dev/null || true
  fi
  if [ ${#egress_rule6[@]} -gt 0 ]; then
    ip6tables -t mangle -D PREROUTING "${egress_rule6[@]}" 2>/dev/null || true
  fi
  drop_new_chains nat "$nv_before_nat"
  drop_new_chains filter "$nv_before_filter"
  sysctl -qw net.ipv4.ip_forward="$ip_forward_before" || true
  # Overlay mounts of this run's storage, deepest first.
  awk -v w="$work" '$2 ~ "^"w {print $2}' /proc/mounts | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  rm -rf "$work"
  if [ "$had_run_containers" = 0 ]; then
    rm -rf /run/containers
  fi
  exit "$rc"
}
work=$(mktemp -d "${TMPDIR:-/tmp}/check-compose.XXXXXX")
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] || [ "$nofile" -gt 65536 ] && nofile=65536
mkdir -p "$work/tmp" "$work/networks"
cat >"$work/containers.conf" <<EOF
[containers]
# No CAP_SYS_RESOURCE here: limits above the current hard ones are refused (rootful podman's
# defaults are nofile 1048576, nproc 4194304; conmon runs with nproc 32768).
default_ulimits = ["nofile=$nofile:$nofile", "nproc=4096:4096"]

[engine]
# crun 1.8 refuses this machine's hybrid cgroup layout; runc 1.1 runs with it.
runtime = "runc"
# No systemd here.
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$work/events.log"
tmp_dir = "$work/tmp"

[network]
network_backend = "netavark"
# Networks of this run only (podman's default network is never used).
network_config_dir = "$work/networks"
EOF
cat >"$work/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$work/storage"
runroot = "$work/run"
EOF
export CONTAINERS_CONF=$work/containers.conf CONTAINERS_STORAGE_CONF=$work/storage.conf
export PRESSURE_HOST_IP=${PRESSURE_HOST_IP:-127.0.0.1}
export SMTP_SINK_HOST=sink
compose=(deploy/compose/docker-compose.pressure.yml deploy/compose/docker-compose.local.yml)
pc=("$venv/bin/podman-compose" -f "${compose[0]}" -f "${compose[1]}")

# Host ports the stack publishes at fixed numbers (db, sink, three clients): free?
for port in 5432 8026 8082 8084 8085; do
  if ss -Hltn "sport = :$port" | grep -q .; then
    fail "port $port is in use on this machine; the quick start publishes it (stop what holds it)"
  fi
done

# ---------------------------------------------------------------------------------------------
say "loading images into this run's podman storage (podman load -i)"
for name in "${need[@]}"; do
  podman load -q -i "$images/$name.oci.tar" >"$work/load-$name.log" 2>&1 ||
    { cat "$work/load-$name.log" >&2; fail "podman load -i $images/$name.oci.tar"; }
done
podman images --format '  {{.Repository}}:{{.Tag}}  {{.Size}}'

# The network, created before `up` (podman-compose uses it as its own: same name and label) so
# that the egress rule is in place before any container starts.
podman network create --label io.podman.compose.project=mail-pressure \
  --label com.docker.compose.project=mail-pressure mail-pressure_default >/dev/null
bridge=$(podman network inspect mail-pressure_default --format '{{.NetworkInterface}}')
subnet=$(podman network inspect mail-pressure_default --format '{{range .Subnets}}{{.Subnet}}{{end}}')
egress_rule=(-i "$bridge" ! -d "$subnet" -m addrtype ! --dst-type LOCAL
  -m comment --comment "check-compose: nothing leaves the machine" -j DROP)
iptables -t mangle -I PREROUTING "${egress_rule[@]}"
egress_rule6=(-i "$bridge" -m comment --comment "check-compose: nothing leaves the machine" -j DROP)
ip6tables -t mangle -I PREROUTING "${egress_rule6[@]}" 2>/dev/null || egress_rule6=()
say "network mail-pressure_default: bridge $bridge, $subnet; egress off the machine dropped"

# ---------------------------------------------------------------------------------------------
say "podman-compose up -d"
"${pc[@]}" up -d --no-build >"$work/up.log" 2>&1 || fail "podman-compose up -d (see $work/up.log below)"
say "up returned; containers:"
podman ps -a --format '  {{.Names}}  {{.Status}}  {{.Ports}}'

# Health checks, run by hand (no systemd timers here).
healthy() {
  local c=$1 deadline=$(( $(date +%s) + $2 ))
  until podman healthcheck run "$c" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 1
  done
}
healthy mail-pressure_db_1 180 || fail "db not healthy (pg_isready) within 180 s"
say "db healthy (pg_isready)"
healthy mail-pressure_mailproxy_1 180 || fail "mailproxy not healthy within 180 s"
say "mailproxy healthy (mailproxy healthcheck; restarted $(podman inspect mail-pressure_mailproxy_1 \
  --format '{{.RestartCount}}') times while PostgreSQL started)"

# 1. Setup: exits 0 after registering the tenants.
setup_rc=$(timeout 300 podman wait mail-pressure_setup_1) || fail "setup did not finish within 300 s"
podman logs mail-pressure_setup_1 >"$work/setup.log" 2>&1 || true
[ "$setup_rc" = 0 ] || fail "setup exited $setup_rc"
grep -q "Setup complete" "$work/setup.log" || fail "setup exited 0 without 'Setup complete'"
say "1. setup succeeded: $(grep -c "Tenant registered" "$work/setup.log") tenants registered"

# 2. Mail arrives at the sink (its /stats on the host port), and the count grows.
# Debian's python3 when there is one: a pyenv shim costs a shell and pyenv on every call.
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
http_json() { # URL EXPR: prints the Python expression EXPR of the JSON at URL (as j)
  "$py" - "$1" "$2" <<'PY'
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
    j = json.load(r)
print(eval(sys.argv[2], {"j": j}))
PY
}
sink_url="http://$PRESSURE_HOST_IP:8026/stats"
received() { http_json "$sink_url" 'j["total"]["received"]' 2>/dev/null || echo 0; }
deadline=$(( $(date +%s) + 180 ))
first=0
until first=$(received) && [ "$first" -gt 0 ]; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "no mail at the sink within 180 s of setup"
  sleep 1
done
say "2. mail arrives: the sink received $first"
deadline=$(( $(date +%s) + 120 ))
until second=$(received) && [ "$second" -gt "$first" ]; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "the sink's count did not grow past $first within 120 s"
  sleep 1
done
say "   and grows: $first -> $second"
verdict=$(http_json "$sink_url" '"%d %d %d" % (j["total"]["attachments_verified"], j["total"]["attachment_mismatches"], j["total"]["duplicates"])')
read -r verified mismatches duplicates <<<"$verdict"
[ "$mismatches" = 0 ] || fail "the sink found $mismatches attachments whose MD5 does not match"
say "   attachments' MD5 checked by the sink: $verified, mismatches $mismatches; duplicates $duplicates"

# 3. A client's /stats answers on its host port (the seed's curl).
stats=$(http_json "http://$PRESSURE_HOST_IP:8082/stats" \
  '"client_id=%s sync_calls=%s messages_generated=%s" % (j["client_id"], j["sync_calls"], j["messages_generated"])') ||
  fail "curl http://$PRESSURE_HOST_IP:8082/stats (standard client) did not answer"
say "3. client-standard /stats on $PRESSURE_HOST_IP:8082: $stats"

# 4. The seed's scale step.
say "podman-compose up -d --scale client-high-volume=3"
"${pc[@]}" up -d --no-build --scale client-high-volume=3 >"$work/scale.log" 2>&1 ||
  fail "podman-compose up -d --scale client-high-volume=3 (see $work/scale.log below)"
hv=()
deadline=$(( $(date +%s) + 180 ))
while :; do
  mapfile -t hv < <(podman ps --filter label=com.docker.compose.service=client-high-volume \
    --filter status=running --format '{{.Names}}' | sort)
  [ ${#hv[@]} -ge 3 ] && break
  [ "$(date +%s)" -lt "$deadline" ] || fail "${#hv[@]} high-volume clients running, not 3"
  sleep 1
done
[ ${#hv[@]} -eq 3 ] || fail "${#hv[@]} high-volume clients running, not 3"
for c in "${hv[@]}"; do
  healthy "$c" 180 || fail "$c not healthy within 180 s"
  port=$(podman port "$c" 8080/tcp | head -1)
  s=$(http_json "http://$port/stats" '"client_id=%s sync_calls=%s" % (j["client_id"], j["sync_calls"])') ||
    fail "$c: /stats on $port did not answer"
  say "   $c healthy, /stats on $port: $s"
done
say "4. --scale client-high-volume=3: 3 high-volume clients running"
podman ps --format '  {{.Names}}  {{.Status}}  {{.Ports}}'

# 5. down -v. podman-compose 1.6 only knows the replicas the file names, hence --remove-orphans
# for the two added by --scale (as `docker compose down` removes every container of the project).
say "podman-compose down -v"
"${pc[@]}" down -v --remove-orphans >"$work/down.log" 2>&1 || fail "podman-compose down -v"
left=$(podman ps -aq | wc -l)
vols=$(podman volume ls -q --filter label=io.podman.compose.project=mail-pressure | wc -l)
nets=$(podman network ls -q --filter label=io.podman.compose.project=mail-pressure | wc -l)
if [ "$left" != 0 ] || [ "$vols" != 0 ] || [ "$nets" != 0 ]; then
  fail "down -v left $left containers, $vols volumes (pgdata), $nets networks"
fi
# Docker's `down -v` also removes anonymous volumes (mailproxy's image declares VOLUME /data);
# podman-compose 1.6 runs `podman rm` without -v and leaves them: removed here, and said.
anon=$(podman volume ls -q | wc -l)
if [ "$anon" != 0 ]; then
  podman volume prune -f >/dev/null
  say "   (podman-compose left $anon anonymous volume(s) of image VOLUMEs, as podman rm without -v does; pruned)"
fi
say "5. down -v: no container, named volume or network left"

say "check-compose: OK in $(elapsed) s (setup, mail at the sink, /stats, --scale client-high-volume=3, down -v)"
