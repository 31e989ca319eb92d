#!/bin/sh
# Runs the criterion wire bench (ours via parse_single_with and etherparse,
# all four cases) RUNS times back to back with short measurements, and
# prints each run's etherparse / ours ratio per case and the median over the
# runs. On a shared host whose speed swings within seconds, one criterion
# run can catch a fast phase for one side and a slow one for the other;
# the median of same-run ratios over many short runs does not.
#
#   benches/wire_pairs.sh [RUNS]      (default 11; pinned to CPU 1)
set -eu
runs=${1:-11}
cd "$(dirname "$0")/.."
cargo bench -q -p vxlan-benches --bench wire --no-run >/dev/null 2>&1
bin=$(ls -t "${CARGO_TARGET_DIR:-target}"/release/deps/wire-* | grep -v '\.d$' | head -n 1)
out=$(mktemp)
for r in $(seq 1 "$runs"); do
    taskset -c 1 "$bin" --bench 'parse/.*/(vxlan-core/parse_single_with|etherparse)$' \
        --warm-up-time 0.5 --measurement-time 1 >/dev/null 2>&1
    python3 benches/report.py parse etherparse |
        awk -F'|' -v r="$r" '/parse_single_with/ { gsub(/ /, "", $2); gsub(/ /, "", $4); print r, $2, $4 } /etherparse/ { gsub(/ /, "", $2); gsub(/ /, "", $4); print r, $2, "peer", $4 }' >>"$out"
done
python3 - "$out" <<'PY'
import sys, statistics, collections
ours, peer = {}, {}
for line in open(sys.argv[1]):
    f = line.split()
    if f[2] == "peer":
        peer[(f[0], f[1])] = float(f[3])
    else:
        ours[(f[0], f[1])] = float(f[2])
by_case = collections.defaultdict(list)
for key, t in ours.items():
    by_case[key[1]].append((peer[key] / t, t, peer[key]))
print("| case | runs | ours, median (ns) | etherparse, median (ns) | ratio per run, median | min-max |")
print("|---|---:|---:|---:|---:|---|")
for case in sorted(by_case):
    rows = by_case[case]
    r = [x[0] for x in rows]
    print(f"| {case} | {len(rows)} | {statistics.median(x[1] for x in rows):.2f} | "
          f"{statistics.median(x[2] for x in rows):.2f} | {statistics.median(r):.2f}x | "
          f"{min(r):.2f}-{max(r):.2f}x |")
PY
rm -f "$out"
