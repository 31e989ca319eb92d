//! The two parse paths the `wire` benchmark compares, shared with the
//! instruction-count harness (`examples/icount.rs`) so both measure the
//! same code.

use etherparse::{Ethernet2Slice, SlicedPacket, TransportSlice};
use vxlan_core::tunnel::{parse_single, parse_single_with, ParseConfig, ParseDrop, SingleLayer};

/// What a decap reads from the parse (VNI, outer source port, inner
/// EtherType and MACs), folded into one number so nothing is optimised
/// away; 1 for "not VXLAN", 0 for a drop.
#[inline(always)]
fn fold(parsed: Result<Option<SingleLayer<'_>>, ParseDrop>) -> u64 {
    match parsed {
        Ok(Some(one)) => {
            let inner = one.inner();
            u64::from(one.vni())
                ^ u64::from(one.layer().src_port())
                ^ u64::from(inner.ethertype().0)
                ^ inner.src_addr().to_u64()
                ^ inner.dst_addr().to_u64()
        }
        Ok(None) => 1,
        Err(_) => 0,
    }
}

/// Ours, the decap entry point: exactly one layer and the inner header,
/// returned by `parse_single` and read where the fast path's and the
/// general walker's results meet.
#[inline(never)]
pub fn ours_single(frame: &[u8], config: &ParseConfig) -> u64 {
    match parse_single(frame, config) {
        Ok(Some(one)) => {
            let inner = one.inner();
            u64::from(one.vni())
                ^ u64::from(one.layer().src_port())
                ^ u64::from(inner.ethertype().0)
                ^ inner.src_addr().to_u64()
                ^ inner.dst_addr().to_u64()
        }
        Ok(None) => 1,
        Err(_) => 0,
    }
}

/// The same parse and reads through `parse_single_with`, which hands the
/// result to the reads inlined once per path (IPv4 fast, IPv6 fast,
/// general), so the paths do not meet first.
#[inline(never)]
pub fn ours_single_with(frame: &[u8], config: &ParseConfig) -> u64 {
    parse_single_with(frame, config, fold)
}

/// The peer: etherparse slices outer Ethernet/IP/UDP, the VXLAN header is
/// read by hand (I flag, VNI), then etherparse slices the inner Ethernet.
#[inline(never)]
pub fn etherparse_path(frame: &[u8]) -> u64 {
    let Ok(sliced) = SlicedPacket::from_ethernet(frame) else {
        return 0;
    };
    let Some(TransportSlice::Udp(udp)) = &sliced.transport else {
        return 0;
    };
    if udp.destination_port() != 4789 {
        return 1;
    }
    let payload = udp.payload();
    if payload.len() < 8 || payload[0] & 0x08 == 0 {
        return 1;
    }
    let vni = u32::from_be_bytes([0, payload[4], payload[5], payload[6]]);
    let Ok(inner) = Ethernet2Slice::from_slice_without_fcs(&payload[8..]) else {
        return 0;
    };
    let mac = |m: [u8; 6]| u64::from_be_bytes([0, 0, m[0], m[1], m[2], m[3], m[4], m[5]]);
    u64::from(vni)
        ^ u64::from(udp.source_port())
        ^ u64::from(inner.ether_type().0)
        ^ mac(inner.source())
        ^ mac(inner.destination())
}
