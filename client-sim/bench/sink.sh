#!/usr/bin/env bash
# Sink headroom benchmark: builds client-sim in release, starts a sink on loopback, drives it with
# `client-sim blast` (small messages, large text bodies, attachments that are MD5-verified) and
# prints, per run, the blaster's line plus the CPU seconds the sink used and its peak RSS.
# Usage: client-sim/bench/sink.sh   (CARGO_TARGET_DIR is honoured; ports 25251/25252)
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p client-sim >&2
bin="${CARGO_TARGET_DIR:-target}/release/client-sim"
"$bin" sink --smtp-listen 127.0.0.1:25251 --http-listen 127.0.0.1:25252 2>/dev/null &
sink=$!
trap 'kill $sink' EXIT
sleep 1
tck=$(getconf CLK_TCK)
run() {
  local t0 t1
  t0=$(awk '{print $14+$15}' "/proc/$sink/stat")
  line=$("$bin" blast --smtp 127.0.0.1:25251 "$@")
  t1=$(awk '{print $14+$15}' "/proc/$sink/stat")
  echo "blast $* -> $line sink_cpu_s=$(awk "BEGIN{print ($t1-$t0)/$tck}")"
}
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
run --connections 1 --messages 100000 --size 2048
run --connections 8 --messages 200000 --size 2048
run --connections 32 --messages 200000 --size 2048
run --connections 8 --messages 200000 --size 2048 --mode lockstep
run --connections 8 --messages 100000 --attachment-bytes 1024
run --connections 8 --messages 20000 --attachment-bytes 10240
run --connections 1 --messages 100 --size 10485760
run --connections 4 --messages 200 --size 10485760
run --connections 4 --messages 100 --attachment-bytes 10485760
run --connections 4 --messages 40 --attachment-bytes 52428800
echo "sink peak RSS: $(grep VmHWM "/proc/$sink/status" | awk '{print $2, $3}')"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
