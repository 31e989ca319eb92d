#!/bin/sh
# Runs one criterion bench RUNS times back to back with short measurements
# and prints the medians over runs of same-run ratios. On a shared host
# whose speed swings within seconds (each vCPU on its own), one criterion
# run can time the two sides of a ratio in different phases; the median of
# same-run ratios over many short runs is steadier.
#
#   benches/pairs.sh wire [RUNS]       ours (parse_single_with) against
#                                      etherparse, all four cases, pinned
#                                      to CPU 1 (default 11 runs)
#   benches/pairs.sh pipeline [RUNS]   the port path, 2 workers against 1,
#                                      both directions (default 9 runs)
set -eu
what=${1:?usage: benches/pairs.sh wire|pipeline [RUNS]}
case $what in
wire) runs=${2:-11} filter='parse/.*/(vxlan-core/parse_single_with|etherparse)$' pin='taskset -c 1' group=parse ;;
pipeline) runs=${2:-9} filter='worker-ports' pin='' group=pipeline ;;
*) echo "unknown: $what (wire or pipeline)" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
cargo bench -q -p vxlan-benches --bench "$what" --no-run >/dev/null 2>&1
bin=$(ls -t "${CARGO_TARGET_DIR:-target}"/release/deps/"$what"-* | grep -v '\.d$' | head -n 1)
out=$(mktemp)
for r in $(seq 1 "$runs"); do
    $pin "$bin" --bench "$filter" --warm-up-time 0.5 --measurement-time 1 >/dev/null 2>&1
    # run, group, function, ns per item
    python3 benches/report.py "$group" none |
        awk -F'|' -v r="$r" 'NR > 2 { gsub(/ /, "", $2); gsub(/ /, "", $3); gsub(/ /, "", $4); print r, $2, $3, $4 }' >>"$out"
done
python3 - "$out" "$what" <<'PY'
import sys, statistics, collections
ns = {}
for line in open(sys.argv[1]):
    run, group, fn, t = line.split()
    ns[(run, group, fn)] = float(t)
# (function whose time is the numerator, the denominator), per bench.
num, den = {
    "wire": ("etherparse", "vxlan-core/parse_single_with"),
    "pipeline": ("1-worker-ports", "2-worker-ports"),
}[sys.argv[2]]
rows = collections.defaultdict(list)
for (run, group, fn), t in ns.items():
    other = ns.get((run, group, den))
    if fn == num and other:
        rows[group].append((t, other, t / other))
print(f"| case | runs | {num}, median (ns) | {den}, median (ns) | {num} / {den} per run, median | min-max |")
print("|---|---:|---:|---:|---:|---|")
for group in sorted(rows):
    r = rows[group]
    ratios = [x[2] for x in r]
    print(f"| {group} | {len(r)} | {statistics.median(x[0] for x in r):.2f} | "
          f"{statistics.median(x[1] for x in r):.2f} | {statistics.median(ratios):.2f}x | "
          f"{min(ratios):.2f}-{max(ratios):.2f}x |")
PY
rm -f "$out"
