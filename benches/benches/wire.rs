//! Full parse of a VXLAN frame (outer Ethernet/IP/UDP/VXLAN and the inner
//! Ethernet header): our tunnel-stack parser beside etherparse's slicing of
//! the same bytes plus the VXLAN header by hand, in the same run.
//!
//! `cargo bench -p vxlan-benches --bench wire`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use etherparse::{Ethernet2Slice, SlicedPacket, TransportSlice};
use vxlan_benches::vxlan_frame;
use vxlan_core::tunnel::{parse_single, ParseConfig, TunnelStack};

/// Ours: everything a decap needs (VNI, outer source, inner MACs and
/// ethertype), folded into one number so nothing is optimised away.
#[inline(never)]
fn ours(frame: &[u8], config: &ParseConfig) -> u64 {
    match TunnelStack::parse(frame, config) {
        Ok(stack) => match (stack.layer(0), stack.inner()) {
            (Some(layer), Some(inner)) => {
                u64::from(layer.vni())
                    ^ u64::from(layer.src_port())
                    ^ u64::from(inner.ethertype().0)
                    ^ inner.src_addr().to_u64()
                    ^ inner.dst_addr().to_u64()
            }
            _ => 1,
        },
        Err(_) => 0,
    }
}

/// Ours, the decap entry point: exactly one layer and the inner header.
#[inline(never)]
fn ours_single(frame: &[u8], config: &ParseConfig) -> u64 {
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

/// The peer: etherparse slices outer Ethernet/IP/UDP, the VXLAN header is
/// read by hand (I flag, VNI), then etherparse slices the inner Ethernet.
#[inline(never)]
fn etherparse_path(frame: &[u8]) -> u64 {
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

fn full_parse(c: &mut Criterion) {
    let config = ParseConfig::default();
    for (underlay, ipv6) in [("ipv4", false), ("ipv6", true)] {
        for inner_len in [64usize, 1400] {
            let frame = vxlan_frame(ipv6, inner_len);
            assert_eq!(
                ours(&frame, &config),
                etherparse_path(&frame),
                "both paths read the same fields"
            );
            assert_eq!(ours_single(&frame, &config), etherparse_path(&frame));
            let mut group = c.benchmark_group(format!("parse/{underlay}/inner{inner_len}"));
            group.throughput(Throughput::Elements(1));
            group.bench_function("vxlan-core/parse_single", |b| {
                b.iter(|| ours_single(black_box(&frame), black_box(&config)))
            });
            group.bench_function("vxlan-core/TunnelStack", |b| {
                b.iter(|| ours(black_box(&frame), black_box(&config)))
            });
            group.bench_function("etherparse", |b| {
                b.iter(|| etherparse_path(black_box(&frame)))
            });
            group.finish();
        }
    }
}

criterion_group!(benches, full_parse);
criterion_main!(benches);
