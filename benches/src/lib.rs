//! Shared helpers for the benchmarks.
//!
//! Every benchmark in `benches/` measures our code beside a peer in the
//! same run (etherparse for parsing, hashbrown and dashmap for the FDB, a
//! memcpy floor for encap), so ratios survive a noisy shared machine.

use vxlan_core::testutil::{build_vxlan_frame, FrameSpec};

/// A VXLAN frame with an inner frame of `inner_len` bytes over an IPv4 or
/// IPv6 underlay.
pub fn vxlan_frame(ipv6: bool, inner_len: usize) -> Vec<u8> {
    build_vxlan_frame(&FrameSpec {
        ipv6,
        inner_len,
        ..FrameSpec::default()
    })
}
