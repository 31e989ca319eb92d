#!/usr/bin/env bash
# Runs every fuzz target for RUNS executions (default 10 million), seeding
# the corpus from the shared captures when they are present.
#   fuzz/run.sh [RUNS] [TARGET...]
# Needs a nightly toolchain and cargo-fuzz (cargo install cargo-fuzz).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
runs=${1:-10000000}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cd "$here" && cargo +nightly fuzz list)
fi
captures=${VXLAN_CAPTURES:-$root/../shared/captures}
if [ -d "$captures" ]; then
  (cd "$root" && cargo run -q -p vxlan-examples --bin fuzz-seeds -- "$captures" "$here/corpus") || true
fi
cd "$here"
# Build everything first, so a target that does not compile fails the run
# instead of being skipped quietly.
cargo +nightly fuzz build -O
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "== fuzz $t: $runs runs"
  log=$(mktemp)
  status=0
  cargo +nightly fuzz run -O "$t" "corpus/$t" -- -runs="$runs" -max_len=4096 -print_final_stats=1 >"$log" 2>&1 || status=$?
  grep -E "^(stat::number_of_executed_units|Done|==.*ERROR|SUMMARY)|panicked" "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -n 40 "$log"; echo "FAILED: fuzz target $t (exit $status)"; exit 1
  fi
  rm -f "$log"
  # cargo fuzz exits non-zero on a crash; re-check for artifacts to be sure.
  if ls "artifacts/$t"/crash-* >/dev/null 2>&1; then
    echo "CRASH in $t: see fuzz/artifacts/$t"; exit 1
  fi
done
