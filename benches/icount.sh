#!/bin/sh
# Instructions per frame of one hot path, counted by callgrind: the
# `icount` example runs N and 2N bursts of 32 frames, and the difference of
# the inclusive counts of the measured function, over 32 N frames, is what
# one frame costs (setup and process start cancel out).
#
#   benches/icount.sh parse|parse_with|etherparse|encap|encap_off|decap|sport 4|6 INNER_LEN
#
# Needs valgrind. Builds the example with the bench profile (fat LTO, one
# codegen unit), as the criterion benches are built.
set -eu
what=$1 v=$2 len=$3
n=200
cd "$(dirname "$0")/.."
cargo build -q --profile bench -p vxlan-benches --example icount
bin=${CARGO_TARGET_DIR:-target}/release/examples/icount
case $what in
parse) fn=vxlan_benches::wire::ours_single ;; parse_with) fn=vxlan_benches::wire::ours_single_with ;; etherparse) fn=vxlan_benches::wire::etherparse_path ;; encap|encap_off) fn=icount::encap_32 ;; decap) fn=icount::decap_32 ;; sport) fn=icount::sport_one ;;
*) echo "unknown: $what" >&2; exit 2 ;;
esac
out=$(mktemp)
count() {
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" "$what" "$v" "$len" "$1" >/dev/null 2>&1
    callgrind_annotate --inclusive=yes "$out" | grep -m1 "$fn" | awk '{gsub(",", "", $1); print $1}'
}
a=$(count $n)
b=$(count $((2 * n)))
rm -f "$out"
awk -v a="$a" -v b="$b" -v n="$n" -v w="$what ipv$v inner $len" \
    'BEGIN { printf "%s: %.1f instructions per frame\n", w, (b - a) / (n * 32) }'
