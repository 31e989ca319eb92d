//! Shared helpers for the benchmarks.
//!
//! Every benchmark in `benches/` measures our code beside a peer in the
//! same run (etherparse for parsing, hashbrown and dashmap for the FDB, a
//! memcpy floor for encap), so ratios survive a noisy shared machine.

use vxlan_core::testutil::{build_vxlan_frame, FrameSpec};

pub mod encap;
pub mod fdb;
pub mod wire;

/// A copy of a frame whose first byte sits on a 64-byte boundary, where
/// poll-mode drivers put received frames (a DPDK mbuf's data starts 128
/// bytes into a cache-aligned buffer; an AF_XDP frame after its aligned
/// headroom). A `Vec<u8>` lands wherever
/// the allocator puts it, which moves a parse's wider loads across cache
/// lines from one frame size to the next and times the allocator's
/// choice, not the parse.
pub struct AlignedFrame {
    buf: Vec<u8>,
    at: usize,
    len: usize,
}

impl AlignedFrame {
    /// Copies `bytes` to a 64-byte boundary.
    pub fn new(bytes: &[u8]) -> Self {
        Self::at_offset(bytes, 0)
    }

    /// Copies `bytes` to `offset` bytes past a 64-byte boundary (`offset`
    /// below 64), to measure a misaligned start on purpose.
    pub fn at_offset(bytes: &[u8], offset: usize) -> Self {
        assert!(offset < 64, "offset {offset} is not below 64");
        let mut buf = vec![0u8; bytes.len() + 128];
        let at = (64 - buf.as_ptr() as usize % 64) % 64 + offset;
        buf[at..at + bytes.len()].copy_from_slice(bytes);
        AlignedFrame {
            buf,
            at,
            len: bytes.len(),
        }
    }

    /// The frame.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[self.at..self.at + self.len]
    }
}

/// The median of `v` (sorted in place; the upper one of an even count).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A VXLAN frame with an inner frame of `inner_len` bytes over an IPv4 or
/// IPv6 underlay.
pub fn vxlan_frame(ipv6: bool, inner_len: usize) -> Vec<u8> {
    build_vxlan_frame(&FrameSpec {
        ipv6,
        inner_len,
        ..FrameSpec::default()
    })
}

/// The C peer of the DPDK benchmark (`benches/dpdk_io_fwd.c`, built with
/// the `dpdk` feature).
#[cfg(feature = "dpdk")]
pub mod dpdk_peer {
    extern "C" {
        fn vxb_io_fwd(a: u16, b: u16, packets: u64, received: *mut u64) -> u64;
    }

    /// DPDK's bare io-forward loop between queue 0 of ports `a` and `b`,
    /// both directions, until at least `packets` frames were received.
    /// Returns (TSC cycles, frames received).
    ///
    /// # Safety
    /// EAL is started, `a` and `b` are started ports, and no other thread
    /// uses their queue 0 meanwhile.
    pub unsafe fn io_fwd(a: u16, b: u16, packets: u64) -> (u64, u64) {
        let mut got = 0u64;
        // SAFETY: per this function's contract; got is a valid out-pointer.
        let cycles = unsafe { vxb_io_fwd(a, b, packets, &mut got) };
        (cycles, got)
    }
}
pub mod pipeline;
