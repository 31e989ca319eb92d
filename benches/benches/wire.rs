//! Full parse of a VXLAN frame (outer Ethernet/IP/UDP/VXLAN and the inner
//! Ethernet header): our tunnel-stack parser beside etherparse's slicing of
//! the same bytes plus the VXLAN header by hand, in the same run.
//!
//! `cargo bench -p vxlan-benches --bench wire`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vxlan_benches::wire::{etherparse_path, ours_single, ours_single_with};
use vxlan_benches::{vxlan_frame, AlignedFrame};
use vxlan_core::tunnel::{ParseConfig, TunnelStack};

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

fn full_parse(c: &mut Criterion) {
    let config = ParseConfig::default();
    for (underlay, ipv6) in [("ipv4", false), ("ipv6", true)] {
        for inner_len in [64usize, 1400] {
            // At a 64-byte boundary, as a poll-mode driver delivers it
            // (see `AlignedFrame`).
            let owned = AlignedFrame::new(&vxlan_frame(ipv6, inner_len));
            let frame = owned.bytes();
            assert_eq!(
                ours(frame, &config),
                etherparse_path(frame),
                "both paths read the same fields"
            );
            assert_eq!(ours_single(frame, &config), etherparse_path(frame));
            assert_eq!(ours_single_with(frame, &config), etherparse_path(frame));
            let mut group = c.benchmark_group(format!("parse/{underlay}/inner{inner_len}"));
            // Only the frame goes through `black_box`, on both sides: that
            // barrier (an opaque pointer and a memory clobber per call)
            // already keeps every call in the loop, and the functions are
            // not inlined, so nothing is hoisted or specialised. The
            // config is loop-invariant, as in a VTEP's poll loop; passing
            // it through `black_box` too (as up to the seventh session)
            // charged our side alone a stack store and reload per call,
            // about 0.3 ns, for an argument etherparse's path does not
            // take (BENCHMARKS.md, seventh session).
            group.throughput(Throughput::Elements(1));
            group.bench_function("vxlan-core/parse_single", |b| {
                b.iter(|| ours_single(black_box(frame), &config))
            });
            group.bench_function("vxlan-core/parse_single_with", |b| {
                b.iter(|| ours_single_with(black_box(frame), &config))
            });
            group.bench_function("vxlan-core/TunnelStack", |b| {
                b.iter(|| ours(black_box(frame), &config))
            });
            group.bench_function("etherparse", |b| {
                b.iter(|| etherparse_path(black_box(frame)))
            });
            group.finish();
        }
    }
}

criterion_group!(benches, full_parse);
criterion_main!(benches);
