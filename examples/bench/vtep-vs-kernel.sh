#!/usr/bin/env bash
# Side-by-side: our vtep (AF_XDP, copy mode) versus the kernel's vxlan
# driver as the second VTEP, on the same veth topology in one run:
#
#   h --veth-- [k: kernel VTEP] --veth-- [u: bridge] --veth-- [v: VTEP under test] --veth-- m
#
# The VTEP in v is either our daemon (AF_XDP on its underlay and access
# veths) or a second kernel vxlan device bridged to the access veth; the
# kernel VTEP in k, the hosts and every offload setting are the same in
# both. Measures iperf3 with one TCP stream each way and 64-byte-frame UDP
# (18-byte payload) each way, 10 s each, and prints a Markdown table.
#
# Needs root, iperf3, ethtool, iproute2, and a release build:
#   cargo build --release -p vxlan-examples --features af-xdp --bin vtep
#   bash examples/bench/vtep-vs-kernel.sh [SECONDS]
set -euo pipefail
SECS=${1:-10}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VTEP=${VTEP:-$ROOT/target/release/vtep}
TAG=b$$
K=k$TAG U=u$TAG V=v$TAG H=h$TAG M=m$TAG
WORK=$(mktemp -d)
DAEMON=

cleanup() {
  [ -n "$DAEMON" ] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null || true
  for n in $K $U $V $H $M; do
    for p in $(ip netns pids "$n" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    ip netns del "$n" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

topology() { # $1 = ours | kernel
  cleanup_ns
  for n in $K $U $V $H $M; do ip netns add $n; ip -n $n link set lo up; done
  for n in $H $M; do ip netns exec $n sysctl -qw net.ipv6.conf.all.disable_ipv6=1; done
  ip -n $U link add bru type bridge; ip -n $U link set bru up
  ip link add ku0 netns $K address 02:00:00:50:00:01 mtu 1600 type veth peer name uk0 netns $U mtu 1600
  ip link add vu0 netns $V address 02:00:00:50:00:02 mtu 1600 type veth peer name uv0 netns $U mtu 1600
  ip -n $U link set uk0 master bru up; ip -n $U link set uv0 master bru up
  ip -n $K addr add 192.168.50.1/24 dev ku0; ip -n $K link set ku0 up
  ip -n $V addr add 192.168.50.2/24 dev vu0; ip -n $V link set vu0 up
  ip netns exec $K ethtool -K ku0 tx off >/dev/null
  ip -n $K link add vx0 type vxlan id 100 local 192.168.50.1 remote 192.168.50.2 dstport 4789
  ip -n $K link set vx0 mtu 1500
  ip -n $K link add br0 type bridge; ip -n $K link set br0 up
  ip -n $K link set vx0 master br0 up
  ip link add hk0 netns $H address 02:00:00:64:00:01 type veth peer name kh netns $K
  ip -n $K link set kh master br0 up
  ip -n $H addr add 10.100.0.1/24 dev hk0; ip -n $H link set hk0 up
  ip netns exec $H ethtool -K hk0 tx off >/dev/null
  ip link add vm0 netns $M address 02:00:00:64:00:02 type veth peer name va0 netns $V
  ip -n $M addr add 10.100.0.2/24 dev vm0; ip -n $M link set vm0 up
  ip netns exec $M ethtool -K vm0 tx off >/dev/null
  ip -n $V link set va0 up
  if [ "$1" = kernel ]; then
    ip netns exec $V ethtool -K vu0 tx off >/dev/null
    ip -n $V link add vx0 type vxlan id 100 local 192.168.50.2 remote 192.168.50.1 dstport 4789
    ip -n $V link set vx0 mtu 1500
    ip -n $V link add br0 type bridge; ip -n $V link set br0 up
    ip -n $V link set vx0 master br0 up
    ip -n $V link set va0 master br0 up
  else
    cat > "$WORK/vtep.toml" <<CFG
[vtep]
local_ip = "192.168.50.2"
mac = "02:00:00:50:00:02"
underlay_mtu = 1600
[underlay]
port = "uplink"
gateway_mac = "02:00:00:50:00:01"
[[port]]
name = "uplink"
kind = "af_xdp"
interface = "vu0"
[[port]]
name = "vm"
kind = "af_xdp"
interface = "va0"
access = { vni = 100 }
[[vni]]
id = 100
flood = ["192.168.50.1"]
CFG
    ip netns exec $V "$VTEP" --config "$WORK/vtep.toml" 2>"$WORK/vtep.err" &
    DAEMON=$!
    for _ in $(seq 100); do grep -q running "$WORK/vtep.err" 2>/dev/null && break; sleep 0.1; done
  fi
  for _ in $(seq 50); do ip netns exec $M ping -c1 -W1 10.100.0.1 >/dev/null 2>&1 && break; done
}

cleanup_ns() {
  if [ -n "$DAEMON" ]; then kill "$DAEMON"; wait "$DAEMON" 2>/dev/null || true; DAEMON=; fi
  for n in $K $U $V $H $M; do ip netns del $n 2>/dev/null || true; done
}

# iperf3 server in $1, client in $2 to $3, extra client args after.
measure() {
  local srv=$1 cli=$2 dst=$3; shift 3
  ip netns exec "$srv" iperf3 -s -1 -D -I "$WORK/iperf.pid" >/dev/null
  sleep 0.3
  ip netns exec "$cli" iperf3 -c "$dst" -t "$SECS" -J "$@" > "$WORK/out.json" || true
  sleep 0.3
  python3 - "$WORK/out.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
e = d["end"]
if d["start"]["test_start"]["protocol"] == "TCP":
    print("%.0f Mbit/s" % (e["sum_received"]["bits_per_second"] / 1e6))
else:
    s = e["sum"]
    got = s["packets"] - s["lost_packets"]
    print("%.1f kpps (%.1f%% lost)" % (got / s["seconds"] / 1e3, s["lost_percent"]))
PY
}

declare -A R
for mode in kernel ours; do
  topology $mode
  R[$mode,tcp_hm]=$(measure $M $H 10.100.0.2)
  R[$mode,tcp_mh]=$(measure $H $M 10.100.0.1)
  R[$mode,udp_hm]=$(measure $M $H 10.100.0.2 -u -l 18 -b 0)
  R[$mode,udp_mh]=$(measure $H $M 10.100.0.1 -u -l 18 -b 0)
  if [ $mode = ours ]; then
    kill -INT "$DAEMON"; wait "$DAEMON" || true; DAEMON=
    grep -E "stopped|port" "$WORK/vtep.err" >&2 || true
  fi
  cleanup_ns
done

echo "| test (${SECS} s, load $(cut -d' ' -f1 /proc/loadavg)) | kernel vxlan | our vtep (AF_XDP copy) |"
echo "|---|---:|---:|"
echo "| TCP, 1 stream, host -> VM (we decap) | ${R[kernel,tcp_hm]} | ${R[ours,tcp_hm]} |"
echo "| TCP, 1 stream, VM -> host (we encap) | ${R[kernel,tcp_mh]} | ${R[ours,tcp_mh]} |"
echo "| UDP 64-byte frames, host -> VM | ${R[kernel,udp_hm]} | ${R[ours,udp_hm]} |"
echo "| UDP 64-byte frames, VM -> host | ${R[kernel,udp_mh]} | ${R[ours,udp_mh]} |"
