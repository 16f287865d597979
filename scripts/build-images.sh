#!/usr/bin/env bash
# Builds the project's container images without a Docker engine or a registry (issue 13).
#
#   scripts/build-images.sh [--profile debug|release] [--out DIR] [NAME...]
#
# NAMEs: mailproxy client-sim pressure-operator postgres pause mailpit prometheus metrics-server
# kube-network-policies (default: all).
# For each it writes DIR/NAME.oci.tar, an OCI image archive (one layer, deterministic) that loads with
#   ctr -n k8s.io images import DIR/NAME.oci.tar     or     kind load image-archive DIR/NAME.oci.tar
# under the full reference containerd resolves a pod's image to, plus DIR/index.tsv (name,
# reference, archive, size, digest) and DIR/images.yaml (the PressureTest spec fragment that
# points the image fields at these images). DIR defaults to
# ${PRESSURE_CACHE_DIR:-$HOME/.cache/mail-pressure}/images; the profile to release.
#
# - mailproxy, client-sim, pressure-operator: the workspace binary of the profile (this script runs
#   `cargo build --locked` for it, into ${CARGO_TARGET_DIR:-target}), debug info stripped, plus
#   exactly the shared libraries it links, CA certificates, the Dockerfile's user and settings.
# - postgres: Debian's postgresql-15 as installed here, tagged localhost/mail-pressure/postgres-debian:15.
# - pause: the CRI sandbox image localhost/mail-pressure/pause:1 from scripts/lib/pause.c.
# - mailpit, prometheus, metrics-server: static binaries from their Go modules (Go and the Go
#   module proxy needed), localhost/mail-pressure/mailpit:v1.33.1,
#   localhost/mail-pressure/prometheus:v2.53.0 and localhost/mail-pressure/metrics-server:v0.8.0.
# An image whose inputs did not change is not rewritten. Missing Debian packages (busybox-static
# for postgres' shell, gcc for pause) are installed with apt-get.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

profile=release
out=${PRESSURE_CACHE_DIR:-$HOME/.cache/mail-pressure}/images
names=()
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile=${2:?--profile needs debug or release}; shift 2 ;;
    --profile=*) profile=${1#*=}; shift ;;
    --out) out=${2:?--out needs a folder}; shift 2 ;;
    --out=*) out=${1#*=}; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "build-images: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) names+=("$1"); shift ;;
  esac
done
case "$profile" in
  debug) cargo_profile=dev ;;
  release) cargo_profile=release ;;
  *) echo "build-images: --profile must be debug or release, not '$profile'" >&2; exit 2 ;;
esac
all=(mailproxy client-sim pressure-operator postgres pause mailpit prometheus metrics-server
  kube-network-policies)
[ ${#names[@]} -gt 0 ] || names=("${all[@]}")

sudo_cmd=()
[ "$(id -u)" = 0 ] || sudo_cmd=(sudo -n)
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  echo "  installing Debian packages: $*"
  "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "$@" >/dev/null 2>&1 ||
    { "${sudo_cmd[@]}" apt-get update >/dev/null && "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "$@" >/dev/null; } ||
    { echo "build-images: apt-get install $* failed" >&2; exit 1; }
}

started=$(date +%s)
crates=()
for name in "${names[@]}"; do
  case "$name" in
    mailproxy | client-sim | pressure-operator) crates+=(-p "$name") ;;
    postgres)
      [ -x /usr/lib/postgresql/15/bin/postgres ] || apt_install postgresql-15
      { [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; } || apt_install busybox-static
      ;;
    pause) command -v gcc >/dev/null || apt_install gcc libc6-dev ;;
    mailpit | prometheus | metrics-server | kube-network-policies)
      command -v go >/dev/null || { echo "build-images: $name is built from its Go module: install Go" >&2; exit 1; } ;;
    *) echo "build-images: unknown image '$name'; known: ${all[*]}" >&2; exit 2 ;;
  esac
done
command -v strip >/dev/null || apt_install binutils
target=${CARGO_TARGET_DIR:-$root/target}
if [ ${#crates[@]} -gt 0 ]; then
  echo "==> cargo build --locked --profile $cargo_profile ${crates[*]}"
  cargo build --locked --profile "$cargo_profile" "${crates[@]}"
fi

echo "==> images into $out"
python3 "$root/scripts/lib/build_images.py" --out "$out" --bin-dir "$target/$profile" "${names[@]}"
echo "==> $out/index.tsv, $out/images.yaml ($(($(date +%s) - started)) s)"
