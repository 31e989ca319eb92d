#!/bin/sh
# Instructions per FDB lookup, counted by callgrind: the `fdb_count`
# example runs N and 2N rounds of 32 lookups and the difference of the
# collected counts (only inside its `run_*` loops), over 32 N lookups, is
# what one lookup costs.
#
#   benches/fdb_count.sh hit|miss 1K|64K|1M batch|packed|single|hashbrown [N]
#
# With FEATURES=miss-filter, also u8x1|u16x1|u16x2|u16x3|u32x2|u32x4|u64x4 (the miss-filter
# prototype); FDB_LOAD=7/8 sizes the table for load 7/8 instead of 1/2.
#
# Needs valgrind. Builds the example with the bench profile.
set -eu
what=$1 size=$2 api=$3 n=${4:-2000}
cd "$(dirname "$0")/.."
# BIN=path counts another build of the example (an A/B baseline).
if [ -z "${BIN:-}" ]; then
    cargo build -q --profile bench -p vxlan-benches ${FEATURES:+--features "$FEATURES"} --example fdb_count
fi
bin=${BIN:-${CARGO_TARGET_DIR:-target}/release/examples/fdb_count}
out=$(mktemp)
count() {
    valgrind --tool=callgrind --callgrind-out-file="$out" --toggle-collect='fdb_count::run_*' \
        "$bin" "$what" "$size" "$api" "$1" >/dev/null 2>&1
    callgrind_annotate "$out" | grep -m1 "PROGRAM TOTALS" | awk '{gsub(",", "", $1); print $1}'
}
a=$(count "$n")
b=$(count $((2 * n)))
rm -f "$out"
awk -v a="$a" -v b="$b" -v n="$n" -v w="$what $size $api" \
    'BEGIN { printf "%s: %.1f instructions per lookup\n", w, (b - a) / (n * 32) }'
