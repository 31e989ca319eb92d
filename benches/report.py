#!/usr/bin/env python3
"""Prints criterion medians as a Markdown table, with each benchmark's ratio
to the peer in its group (the function named on the command line, e.g.
etherparse or floor-memcpy50).

    python3 benches/report.py GROUP_PREFIX PEER [PEER...]
"""
import json
import os
import pathlib
import sys

# Criterion writes under $CARGO_TARGET_DIR/criterion when that is set.
target = os.environ.get("CARGO_TARGET_DIR") or pathlib.Path(__file__).resolve().parent.parent / "target"
root = pathlib.Path(target) / "criterion"
prefix, peers = sys.argv[1], sys.argv[2:]
rows = []
for est in sorted(root.glob("**/new/estimates.json")):
    bench = json.loads((est.parent / "benchmark.json").read_text())
    group = bench["group_id"]
    if not group.startswith(prefix):
        continue
    median = json.loads(est.read_text())["median"]["point_estimate"]
    elements = 1
    tp = bench.get("throughput") or {}
    if "Elements" in tp:
        elements = tp["Elements"]
    # A parameterised benchmark (sizes such as 1K/64K/1M) is its own group
    # here, so its peer is the peer at the same size.
    value = bench.get("value_str")
    if value:
        group = f"{group}/{value}"
    rows.append((group, bench["function_id"], median, median / elements))
groups = {}
for g, f, m, per in rows:
    groups.setdefault(g, {})[f] = per
print("| group | function | median per item (ns) | ratio to peer |")
print("|---|---|---|---|")
for g, fns in groups.items():
    peer = next((fns[p] for p in peers if p in fns), None)
    for f, per in fns.items():
        ratio = "" if peer is None else f"{per / peer:.2f}x"
        print(f"| {g} | {f} | {per:.2f} | {ratio} |")
