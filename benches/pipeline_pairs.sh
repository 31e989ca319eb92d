#!/bin/sh
# Runs the criterion pipeline bench's port path (1 and 2 workers, both
# directions) RUNS times back to back with short measurements, and prints
# per direction the median over runs of the 1-worker rate and of each
# run's 2-worker / 1-worker ratio. On a shared host whose vCPUs change
# speed within seconds, one criterion run can time 1 worker in a fast
# phase and 2 workers in a slow one (or the reverse); the median of
# same-run ratios over many short runs is steadier.
#
#   benches/pipeline_pairs.sh [RUNS]      (default 9)
set -eu
runs=${1:-9}
cd "$(dirname "$0")/.."
cargo bench -q -p vxlan-benches --bench pipeline --no-run >/dev/null 2>&1
bin=$(ls -t "${CARGO_TARGET_DIR:-target}"/release/deps/pipeline-* | grep -v '\.d$' | head -n 1)
out=$(mktemp)
for r in $(seq 1 "$runs"); do
    "$bin" --bench 'worker-ports' --warm-up-time 0.5 --measurement-time 1 >/dev/null 2>&1
    python3 benches/report.py pipeline 1-worker-ports |
        awk -F'|' -v r="$r" '/worker-ports/ { gsub(/ /, "", $2); gsub(/ /, "", $3); gsub(/ /, "", $4); print r, $2, $3, $4 }' >>"$out"
done
python3 - "$out" <<'PY'
import sys, statistics, collections
ns = {}
for line in open(sys.argv[1]):
    run, group, fn, t = line.split()
    ns[(run, group, fn)] = float(t)
rows = collections.defaultdict(list)
for (run, group, fn), t in ns.items():
    if fn == "1-worker-ports":
        two = ns.get((run, group, "2-worker-ports"))
        if two:
            rows[group].append((1e3 / t, 1e3 / two, t / two))
print("| case | runs | 1 worker, median (Mpps) | 2 workers, median (Mpps) | 2w / 1w per run, median | min-max |")
print("|---|---:|---:|---:|---:|---|")
for group in sorted(rows):
    r = rows[group]
    ratios = [x[2] for x in r]
    print(f"| {group} | {len(r)} | {statistics.median(x[0] for x in r):.1f} | "
          f"{statistics.median(x[1] for x in r):.1f} | {statistics.median(ratios):.2f}x | "
          f"{min(ratios):.2f}-{max(ratios):.2f}x |")
PY
rm -f "$out"
