#!/usr/bin/env bash
# Proves the images from scripts/build-images.sh without a cluster (issue 13).
#
#   scripts/check-images.sh [--dir DIR]        # DIR as given to build-images.sh --out
#
# 1. Each archive's config agrees with its Dockerfile (entrypoint, command, user, ports, env,
#    working dir, volumes, health check) and its name with the chart's values / CRD defaults.
# 2. A private containerd (Debian's package; root, state and socket in a temporary folder; CRI
#    with restrict_oom_score_adj because this VM refuses a negative oom_score_adj) imports every
#    archive with `ctr -n k8s.io images import` and must then hold the full reference.
# 3. The containers run as a pod would run them: read-only root, their own network namespace.
#    - postgres with the operator's StatefulSet settings (uid 70, PGDATA below the volume, the
#      `-c` arguments only, emptyDirs on /var/run/postgresql and /tmp): the readiness probe
#      passes, a password login over a non-loopback address (inside that namespace) works and a
#      wrong password is refused; stopped and started again on the same volume, the data stays.
#    - mailproxy on that database: its HEALTHCHECK command passes and /health answers.
#    - client-sim serve and sink: their health checks pass and /health answers.
#    - pressure-operator --help runs; pause stops cleanly on SIGTERM.
#    - mailpit (if built) takes a mail on 1025 and lists it on 8025; prometheus (if built) gets
#      ready with the operator's arguments; metrics-server (if built; serving needs an API
#      server) reports v0.8.0 with --version and lists --secure-port in --help;
#      kube-network-policies (if built; it needs a node and an API server) lists -nfqueue-id.
# Needs root (containerd). Exits 1 naming each failure.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
dir=${PRESSURE_CACHE_DIR:-$HOME/.cache/mail-pressure}/images
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=${2:?--dir needs a folder}; shift 2 ;;
    --dir=*) dir=${1#*=}; shift ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "check-images: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "check-images: needs root (it runs containerd)" >&2; exit 2; }
[ -s "$dir/index.tsv" ] || { echo "check-images: no $dir/index.tsv; run scripts/build-images.sh first" >&2; exit 2; }
if ! command -v containerd >/dev/null || ! command -v runc >/dev/null; then
  echo "  installing containerd and runc (Debian packages)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends containerd runc >/dev/null ||
    { echo "check-images: apt-get install containerd runc failed" >&2; exit 1; }
fi
command -v psql >/dev/null || { echo "check-images: psql missing: apt-get install postgresql-client-15" >&2; exit 1; }

work=$(mktemp -d /tmp/check-images.XXXXXX)
# The containers' cgroups, one parent per run so that two runs at once do not share them.
cgroup=/${work##*/}
sock=$work/containerd.sock
ns=k8s.io
containerd_pid=""
containers=()
ctr_() { ctr --address "$sock" -n "$ns" "$@"; }
cleanup() {
  for c in "${containers[@]}"; do
    ctr_ task kill -s SIGKILL "$c" >/dev/null 2>&1
    ctr_ task rm -f "$c" >/dev/null 2>&1
    ctr_ containers rm "$c" >/dev/null 2>&1
  done
  if [ -n "$containerd_pid" ]; then
    kill "$containerd_pid" 2>/dev/null
    wait "$containerd_pid" 2>/dev/null
  fi
  # Anything containerd left mounted under the folder (snapshots, rootfs), deepest first.
  awk -v w="$work" '$2 ~ "^"w {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$work"
  # The (now empty) cgroups runc made for the containers.
  for cg in /sys/fs/cgroup/*"$cgroup" /sys/fs/cgroup"$cgroup"; do
    [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
  done
}
trap cleanup EXIT INT TERM

failures=()
# With pipefail, `cmd | grep -q` fails when grep exits before cmd has written everything (SIGPIPE):
# pipelines here end in a grep that reads all its input, its output sent to /dev/null.
check() {
  local name=$1
  shift
  if "$@" >"$work/out" 2>&1; then
    printf '  ok   %s\n' "$name"
  else
    printf '  FAIL %s\n' "$name"
    sed 's/^/       | /' "$work/out" | tail -n 30
    failures+=("$name")
  fi
}
ref() { awk -F'\t' -v n="$1" '$1 == n {print $2}' "$dir/index.tsv"; }
archive() { awk -F'\t' -v n="$1" '$1 == n {print $3}' "$dir/index.tsv"; }
has() { [ -n "$(ref "$1")" ]; }

printf '\n==> Archives agree with the Dockerfiles, the chart and the CRD defaults\n'
check "image configs match deploy/docker/*.Dockerfile; references match chart and CRD" \
  python3 scripts/lib/check_images.py "$dir/index.tsv"

printf '\n==> Private containerd in %s\n' "$work"
mkdir -p "$work/root" "$work/state" "$work/opt" "$work/cni/bin" "$work/cni/conf" "$work/logs"
cat >"$work/config.toml" <<EOF
version = 2
root = "$work/root"
state = "$work/state"
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$work/opt"
[plugins."io.containerd.grpc.v1.cri"]
  # This VM gives no process CAP_SYS_RESOURCE: a negative oom_score_adj is refused.
  restrict_oom_score_adj = true
  sandbox_image = "localhost/mail-pressure/pause:1"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$work/cni/bin"
    conf_dir = "$work/cni/conf"
EOF
containerd --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
containerd_pid=$!
for _ in $(seq 100); do
  ctr --address "$sock" version >/dev/null 2>&1 && break
  sleep 0.1
done
ctr --address "$sock" version >/dev/null 2>&1 || { tail -n 30 "$work/containerd.log"; echo "containerd did not start" >&2; exit 1; }

printf '\n==> Import\n'
while IFS=$'\t' read -r name reference path _; do
  [ "$name" = name ] && continue
  imported() { ctr_ images import "$2" >/dev/null && ctr_ images ls -q | grep -x "$1"; } >/dev/null
  check "ctr -n $ns images import $name.oci.tar holds $reference" imported "$reference" "$path"
done <"$dir/index.tsv"

# run NAME IMAGE [ctr run options...] -- [command...]: a detached container, logs in $work/logs.
# A command given to ctr replaces entrypoint and command both (a pod's args replace only the
# command), so callers that pass arguments name the entrypoint too.
run() {
  local name=$1 image=$2
  shift 2
  local opts=() args=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  args=("$@")
  containers+=("$name")
  ctr_ run -d --read-only --cgroup "$cgroup/$name" --log-uri "file://$work/logs/$name.log" \
    "${opts[@]}" "$image" "$name" "${args[@]}" >/dev/null
}
task_pid() { ctr_ task ls | awk -v n="$1" '$1 == n {print $2}'; }
task_status() { ctr_ task ls | awk -v n="$1" '$1 == n {print $3}'; }
# ready NAME SECONDS CMD...: retries CMD every 0.5 s while container NAME runs; prints its log
# when it stops or the time is up.
ready() {
  local name=$1 tries=$(($2 * 2))
  shift 2
  for _ in $(seq "$tries"); do
    "$@" >/dev/null 2>&1 && return 0
    [ "$(task_status "$name")" = RUNNING ] || break
    sleep 0.5
  done
  "$@" && return 0
  echo "--- $name: $(task_status "$name"), its log:"
  tail -n 20 "$work/logs/$name.log"
  return 1
}
stop() {
  [ -n "$(task_status "$1")" ] || return 0
  ctr_ task kill -s "${2:-SIGTERM}" "$1" >/dev/null 2>&1
  for _ in $(seq 60); do
    [ "$(task_status "$1")" = STOPPED ] && break
    sleep 0.5
  done
  ctr_ task rm -f "$1" >/dev/null 2>&1
  ctr_ containers rm "$1" >/dev/null 2>&1
}
in_netns() { local pid=$1; shift; nsenter -t "$pid" -n "$@"; }

pg_password=check-images-pwd
pg_addr=192.0.2.10 # TEST-NET-1, only on the loopback of the container's own network namespace
pg_args=(-c max_connections=100 -c shared_buffers=64MB -c work_mem=4MB -c maintenance_work_mem=32MB
  -c effective_cache_size=128MB -c synchronous_commit=off)
start_postgres() {
  run "$1" "$(ref postgres)" \
    --env POSTGRES_USER=mailproxy --env POSTGRES_DB=mailproxy --env POSTGRES_PASSWORD="$pg_password" \
    --env POSTGRES_INITDB_ARGS=--data-checksums --env PGDATA=/var/lib/postgresql/data/pgdata \
    --mount "type=bind,src=$work/pgvol,dst=/var/lib/postgresql/data,options=rbind:rw" \
    --mount "type=bind,src=$work/pgrun,dst=/var/run/postgresql,options=rbind:rw" \
    --mount "type=bind,src=$work/pgtmp,dst=/tmp,options=rbind:rw" \
    -- /usr/local/bin/postgres-entrypoint.sh "${pg_args[@]}"
  ready "$1" 60 ctr_ task exec --exec-id ready "$1" pg_isready -U mailproxy -h 127.0.0.1
}
pg_login() {
  local pid
  pid=$(task_pid "$1")
  PGPASSWORD=$2 PGCONNECT_TIMEOUT=5 in_netns "$pid" psql -X -v ON_ERROR_STOP=1 -At \
    "host=$pg_addr user=mailproxy dbname=mailproxy sslmode=disable" -c "$3"
}

if has postgres; then
  printf '\n==> postgres (the operator StatefulSet settings)\n'
  # The volume as the kubelet gives it with fsGroup 70: root-owned, group 70, setgid, writable.
  mkdir -p "$work/pgvol" "$work/pgrun" "$work/pgtmp"
  chown 0:70 "$work/pgvol" && chmod 2775 "$work/pgvol"
  chmod 1777 "$work/pgrun" "$work/pgtmp"
  check "postgres starts; pg_isready -U mailproxy -h 127.0.0.1 (the readiness probe) passes" start_postgres pg1
  pid=$(task_pid pg1)
  [ -n "$pid" ] && nsenter -t "$pid" -n ip addr add "$pg_addr/32" dev lo
  runs_as_70() { grep -E '^Uid:\s+70\s' "/proc/$(task_pid pg1)/status"; }
  check "postgres runs as uid 70" runs_as_70
  login_ok() {
    pg_login pg1 "$pg_password" "select current_user, current_database(), current_setting('listen_addresses'),
      current_setting('data_checksums'), current_setting('max_connections'), current_setting('server_encoding'),
      current_setting('lc_collate')" | tee /dev/stderr |
      grep -x "mailproxy|mailproxy|\*|on|100|UTF8|C.UTF-8" >/dev/null
  }
  check "password login from $pg_addr: user and database mailproxy, listen '*', checksums, -c args" login_ok
  wrong_refused() {
    ! pg_login pg1 wrong-password "select 1" >"$work/wrong" 2>&1 || return 1
    cat "$work/wrong"
    grep -q 'password authentication failed for user "mailproxy"' "$work/wrong"
  }
  check "a wrong password is refused" wrong_refused
  check "write a row" pg_login pg1 "$pg_password" "create table kept(v text); insert into kept values ('still here')"
  check "PGDATA is the subfolder, owned by uid 70, mode 0700" \
    sh -c "[ \"\$(stat -c '%u %a' '$work/pgvol/pgdata')\" = '70 700' ]"
fi

if has mailproxy; then
  printf '\n==> mailproxy (on that database)\n'
  pgpid=$(task_pid pg1)
  key=$(head -c 32 /dev/urandom | base64)
  start_proxy() {
    run proxy "$(ref mailproxy)" --with-ns "network:/proc/$pgpid/ns/net" \
      --env "GMP_DB_PATH=postgresql://mailproxy:$pg_password@127.0.0.1:5432/mailproxy" \
      --env "MAIL_PROXY_ENCRYPTION_KEY=$key" --env GMP_API_TOKEN=check-images-token --
    ready proxy 60 ctr_ task exec --exec-id hc proxy /usr/local/bin/mailproxy healthcheck
  }
  check "mailproxy starts; its HEALTHCHECK command (mailproxy healthcheck) passes" start_proxy
  check "GET /health answers 200" in_netns "$pgpid" curl -fsS --max-time 5 http://127.0.0.1:8000/health
  check "mailproxy runs as uid 10001" sh -c "grep -E '^Uid:\s+10001\s' /proc/$(task_pid proxy)/status"
fi

if has client-sim; then
  printf '\n==> client-sim serve and sink\n'
  start_client() {
    run client "$(ref client-sim)" --
    ready client 30 ctr_ task exec --exec-id hc client /usr/local/bin/client-sim healthcheck
  }
  check "client-sim serve starts; its HEALTHCHECK command passes" start_client
  cpid=$(task_pid client)
  check "client-sim GET /health answers 200" in_netns "$cpid" curl -fsS --max-time 5 http://127.0.0.1:8080/health
  start_sink() {
    run sink "$(ref client-sim)" -- /usr/local/bin/client-sim sink
    ready sink 30 ctr_ task exec --exec-id hc sink /usr/local/bin/client-sim healthcheck --url http://127.0.0.1:8025/health
  }
  check "client-sim sink starts; healthcheck --url .../8025/health passes" start_sink
fi

if has pressure-operator; then
  printf '\n==> pressure-operator\n'
  help_runs() {
    containers+=(operator)
    ctr_ run --rm --read-only --cgroup "$cgroup/operator" "$(ref pressure-operator)" operator \
      /usr/local/bin/pressure-operator --help | tee /dev/stderr | grep -i usage >/dev/null
  }
  check "pressure-operator --help runs" help_runs
fi

if has pause; then
  printf '\n==> pause\n'
  pause_stops() {
    run pause "$(ref pause)" -- || return 1
    sleep 0.5
    [ "$(ctr_ task ls | awk '$1 == "pause" {print $3}')" = RUNNING ] || { echo "pause is not running"; return 1; }
    ctr_ task kill -s SIGTERM pause
    for _ in $(seq 20); do
      [ "$(ctr_ task ls | awk '$1 == "pause" {print $3}')" = STOPPED ] && return 0
      sleep 0.25
    done
    echo "pause did not stop on SIGTERM"
    return 1
  }
  check "pause runs and stops on SIGTERM" pause_stops
fi

if has mailpit; then
  printf '\n==> mailpit (as the operator runs a MailHog-kind sink: uid 1000, emptyDir /tmp)\n'
  mkdir -p "$work/mailpit-tmp" && chmod 1777 "$work/mailpit-tmp"
  start_mailpit() {
    run mailpit "$(ref mailpit)" --env MH_STORAGE=memory \
      --mount "type=bind,src=$work/mailpit-tmp,dst=/tmp,options=rbind:rw" --
    ready mailpit 30 ctr_ task exec --exec-id hc mailpit /usr/local/bin/mailpit readyz
  }
  check "mailpit starts; mailpit readyz passes" start_mailpit
  mail_arrives() {
    local pid
    pid=$(task_pid mailpit)
    in_netns "$pid" python3 -c 'import smtplib
s = smtplib.SMTP("127.0.0.1", 1025, timeout=10)
s.sendmail("check@example.com", ["sink@example.com"], "Subject: check-images\r\n\r\nbody\r\n")
s.quit()' &&
      in_netns "$pid" curl -fsS --max-time 5 http://127.0.0.1:8025/api/v1/messages | tee /dev/stderr |
      grep '"total":1' >/dev/null
  }
  check "a mail sent over SMTP on 1025 is listed by the API on 8025" mail_arrives
fi

if has prometheus; then
  printf '\n==> prometheus (the operator Deployment arguments, uid 65534)\n'
  mkdir -p "$work/prom-config" "$work/prom-data" && chmod 1777 "$work/prom-data"
  printf 'global:\n  scrape_interval: 5s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ["127.0.0.1:9090"]\n' \
    >"$work/prom-config/prometheus.yml"
  start_prometheus() {
    run prometheus "$(ref prometheus)" \
      --mount "type=bind,src=$work/prom-config,dst=/etc/prometheus,options=rbind:ro" \
      --mount "type=bind,src=$work/prom-data,dst=/prometheus,options=rbind:rw" \
      -- /bin/prometheus --config.file=/etc/prometheus/prometheus.yml --storage.tsdb.path=/prometheus \
      --storage.tsdb.retention.time=1d --web.enable-lifecycle
    local pid
    pid=$(task_pid prometheus)
    ready prometheus 60 in_netns "$pid" curl -fsS --max-time 5 http://127.0.0.1:9090/-/ready
  }
  check "prometheus starts; /-/ready (the readiness probe) answers" start_prometheus
  check "prometheus reports version 2.53.0" sh -c "nsenter -t $(task_pid prometheus) -n \
    curl -fsS --max-time 5 http://127.0.0.1:9090/api/v1/status/buildinfo | grep '\"version\":\"2.53.0\"' >/dev/null"
fi

if has metrics-server; then
  printf '\n==> metrics-server (without an API server: --version and --help only)\n'
  # ms_run ID ARGS...: runs /metrics-server ARGS... to its end with a read-only root, prints its output.
  ms_run() {
    local id=$1
    shift
    containers+=("$id")
    ctr_ run --rm --read-only --cgroup "$cgroup/$id" "$(ref metrics-server)" "$id" /metrics-server "$@"
  }
  ms_version() { ms_run ms-version --version | tee /dev/stderr | grep -x v0.8.0 >/dev/null; }
  check "metrics-server --version prints v0.8.0" ms_version
  ms_help() { ms_run ms-help --help | tee /dev/stderr | grep -e '--secure-port' >/dev/null; }
  check "metrics-server --help runs and lists --secure-port" ms_help
fi

if has kube-network-policies; then
  printf '\n==> kube-network-policies (without an API server and a node: --help only)\n'
  netpol_help() {
    containers+=(netpol-help)
    ctr_ run --rm --read-only --cgroup "$cgroup/netpol-help" "$(ref kube-network-policies)" netpol-help \
      /bin/netpol --help 2>&1 | tee /dev/stderr | grep -e '-nfqueue-id' >/dev/null
  }
  check "kube-network-policies --help runs and lists -nfqueue-id" netpol_help
fi

if has postgres; then
  printf '\n==> postgres again on the same volume\n'
  for c in proxy client sink; do stop "$c"; done
  stop pg1 SIGINT
  check "postgres starts again on the same volume" start_postgres pg2
  pid=$(task_pid pg2)
  [ -n "$pid" ] && nsenter -t "$pid" -n ip addr add "$pg_addr/32" dev lo
  kept() { pg_login pg2 "$pg_password" "select v from kept" | grep -x 'still here'; } >/dev/null
  check "the row written before the restart is still there" kept
  reused() {
    grep -q 'ready to accept connections' "$work/logs/pg2.log" && ! grep -q 'initialised' "$work/logs/pg2.log"
  }
  check "the second start used the existing data directory (no initdb)" reused
fi

if [ ${#failures[@]} -gt 0 ]; then
  printf '\n%d image check(s) failed:\n' "${#failures[@]}"
  printf '  - %s\n' "${failures[@]}"
  for f in "$work"/logs/*.log; do printf '\n--- %s\n' "$f"; tail -n 20 "$f"; done
  exit 1
fi
printf '\nAll image checks passed.\n'
