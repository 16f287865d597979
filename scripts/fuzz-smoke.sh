#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers that take input from others (issue 10): the proxy's
# message normaliser, sync-response parser, attachment names/paths and MIME building
# (proxy/fuzz), and the SMTP sink's command and MIME parsing (client-sim/fuzz).
#
# Builds every target with libFuzzer (libfuzzer-sys) on the stable toolchain, with the
# instrumentation flags `cargo fuzz build --sanitizer none` uses (so cargo-fuzz itself need not
# be installed; with it, `cargo fuzz run <target>` in proxy/fuzz or client-sim/fuzz works too),
# then runs each target for FUZZ_SECONDS (default 15) and exits non-zero on any crash, timeout
# or out-of-memory. Corpora live in a temp dir unless FUZZ_CORPUS_DIR is set; crash inputs are
# written to $FUZZ_ARTIFACTS (default target-fuzz/artifacts).
#
#   scripts/fuzz-smoke.sh                 # all targets, 15 s each
#   FUZZ_SECONDS=300 scripts/fuzz-smoke.sh normalise   # one target, 5 minutes
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${FUZZ_SECONDS:-15}
target_dir=${FUZZ_TARGET_DIR:-$root/target-fuzz}
artifacts=${FUZZ_ARTIFACTS:-$target_dir/artifacts}
triple=$(rustc -vV | sed -n 's/^host: //p')
corpus_root=${FUZZ_CORPUS_DIR:-$(mktemp -d)}
mkdir -p "$artifacts"

# Crate directory and targets.
crates=(
  "proxy/fuzz:normalise sync_parse attachment_names mime_build"
  "client-sim/fuzz:sink_session sink_mime"
)

flags=(
  -Cpasses=sancov-module
  -Cllvm-args=-sanitizer-coverage-level=4
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
  -Cllvm-args=-sanitizer-coverage-pc-table
  -Cllvm-args=-sanitizer-coverage-trace-compares
  --cfg fuzzing
  -Cdebug-assertions
  -Coverflow-checks
)

only=("$@")
wanted() {
  [ ${#only[@]} -eq 0 ] && return 0
  local t
  for t in "${only[@]}"; do [ "$t" = "$1" ] && return 0; done
  return 1
}

failed=()
for entry in "${crates[@]}"; do
  dir=${entry%%:*}
  targets=${entry#*:}
  any=0
  for t in $targets; do wanted "$t" && any=1; done
  [ $any -eq 1 ] || continue
  echo "== building $dir"
  start=$(date +%s)
  (cd "$root/$dir" && RUSTFLAGS="${flags[*]}" CARGO_TARGET_DIR="$target_dir" \
    cargo build --release --locked --target "$triple" --bins)
  echo "   built in $(( $(date +%s) - start )) s"
  for t in $targets; do
    wanted "$t" || continue
    bin="$target_dir/$triple/release/$t"
    corpus="$corpus_root/$t"
    mkdir -p "$corpus"
    seeds="$root/$dir/seeds/$t"
    [ -d "$seeds" ] || seeds=""
    echo "== fuzzing $t for ${seconds} s"
    if ! "$bin" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$artifacts/$t-" "$corpus" $seeds \
        2>"$target_dir/$t.log"; then
      echo "!! $t failed; see $target_dir/$t.log and $artifacts/"
      tail -n 40 "$target_dir/$t.log"
      failed+=("$t")
    fi
    grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^#[0-9]+.*DONE' "$target_dir/$t.log" | tr '\n' ' ' || true
    echo
  done
done

if [ -z "${FUZZ_CORPUS_DIR:-}" ]; then rm -rf "$corpus_root"; fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz smoke: crashes in: ${failed[*]}"
  exit 1
fi
echo "fuzz smoke: all targets ran ${seconds} s without a crash"
