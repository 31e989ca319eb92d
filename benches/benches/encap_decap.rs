//! Encapsulation and decapsulation of bursts of 32 frames (64-byte and
//! 1400-byte inner frames, IPv4 and IPv6 underlays), beside a floor in the
//! same run: per frame, a plain 50-byte memcpy of a header into headroom
//! plus a 2-byte length patch (what any encap must at least do).
//!
//! The acceptance pair is `vxlan-core` beside `floor-memcpy50`. Both take
//! a fresh burst per iteration from `iter_batched_ref` with `SmallInput`
//! batches, which are built before the batch is timed: a batch is tens of
//! megabytes of frames, so each frame comes from L3 or memory, and the
//! floor (which touches one or two cache lines per frame) is mostly those
//! misses. Beside them, as extra measurements:
//!
//! * `floor-memcpy50-touch`: the floor plus one load from every cache line
//!   of the frame, on the same cold frames: the least any code that reads
//!   the whole frame (as the IPv6 UDP checksum must) can cost.
//! * `vxlan-core-warm` and `floor-memcpy50-warm`: the same work on a burst
//!   built just before each timed iteration (`PerIteration`), so its
//!   frames are in L1/L2; each iteration's timing adds the timer's own
//!   cost (some tens of nanoseconds per burst of 32) to both.
//!
//! `cargo bench -p vxlan-benches --bench encap_decap`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use vxlan_benches::encap::{floor, floor_touch, frames, template};
use vxlan_core::decap::{decap_burst, DecapConfig};
use vxlan_core::frame::BufFrame;

const BURST: usize = 32;
const HEADROOM: usize = 128;

type Buf = Box<[u8]>;

/// A burst of frames holding `data` (built outside the timed routine).
fn fresh(data: &[u8]) -> Vec<BufFrame<Buf>> {
    (0..BURST)
        .map(|_| BufFrame::with_data(vec![0u8; 2048].into_boxed_slice(), HEADROOM, data).unwrap())
        .collect()
}

fn benches(c: &mut Criterion) {
    let ports: Vec<u16> = (49152u16..).take(BURST).collect();
    for (underlay, ipv6) in [("ipv4", false), ("ipv6", true)] {
        let t = template(ipv6);
        let dcfg = DecapConfig::new(t.remote());
        for inner_len in [64usize, 1400] {
            // The tenant frame, and its encapsulated form for the decap input.
            let (inner, wire) = frames(&t, inner_len);

            let mut group = c.benchmark_group(format!("encap/{underlay}/inner{inner_len}/burst32"));
            group.throughput(Throughput::Elements(BURST as u64));
            let mut verdicts = [Ok(()); BURST];
            group.bench_function("vxlan-core", |b| {
                b.iter_batched_ref(
                    || fresh(&inner),
                    |frames| {
                        let done = t.encap_burst(black_box(frames), 100, &ports, &mut verdicts);
                        assert_eq!(done, BURST);
                    },
                    BatchSize::SmallInput,
                )
            });
            let header = [0x45u8; 50];
            group.bench_function("floor-memcpy50", |b| {
                b.iter_batched_ref(
                    || fresh(&inner),
                    |frames| floor(black_box(frames), black_box(&header)),
                    BatchSize::SmallInput,
                )
            });
            group.bench_function("floor-memcpy50-touch", |b| {
                b.iter_batched_ref(
                    || fresh(&inner),
                    |frames| floor_touch(black_box(frames), black_box(&header)),
                    BatchSize::SmallInput,
                )
            });
            group.bench_function("vxlan-core-warm", |b| {
                b.iter_batched_ref(
                    || fresh(&inner),
                    |frames| {
                        let done = t.encap_burst(black_box(frames), 100, &ports, &mut verdicts);
                        assert_eq!(done, BURST);
                    },
                    BatchSize::PerIteration,
                )
            });
            group.bench_function("floor-memcpy50-warm", |b| {
                b.iter_batched_ref(
                    || fresh(&inner),
                    |frames| floor(black_box(frames), black_box(&header)),
                    BatchSize::PerIteration,
                )
            });
            group.finish();

            let mut group = c.benchmark_group(format!("decap/{underlay}/inner{inner_len}/burst32"));
            group.throughput(Throughput::Elements(BURST as u64));
            let mut dverdicts = [Ok(None); BURST];
            group.bench_function("vxlan-core", |b| {
                b.iter_batched_ref(
                    || fresh(&wire),
                    |frames| {
                        let done = decap_burst(black_box(frames), &dcfg, &mut dverdicts);
                        assert_eq!(done, BURST);
                    },
                    BatchSize::SmallInput,
                )
            });
            group.bench_function("floor-memcpy50", |b| {
                b.iter_batched_ref(
                    || fresh(&inner),
                    |frames| floor(black_box(frames), black_box(&header)),
                    BatchSize::SmallInput,
                )
            });
            group.bench_function("floor-memcpy50-touch", |b| {
                b.iter_batched_ref(
                    || fresh(&inner),
                    |frames| floor_touch(black_box(frames), black_box(&header)),
                    BatchSize::SmallInput,
                )
            });
            group.bench_function("vxlan-core-warm", |b| {
                b.iter_batched_ref(
                    || fresh(&wire),
                    |frames| {
                        let done = decap_burst(black_box(frames), &dcfg, &mut dverdicts);
                        assert_eq!(done, BURST);
                    },
                    BatchSize::PerIteration,
                )
            });
            group.bench_function("floor-memcpy50-warm", |b| {
                b.iter_batched_ref(
                    || fresh(&inner),
                    |frames| floor(black_box(frames), black_box(&header)),
                    BatchSize::PerIteration,
                )
            });
            group.finish();
        }
    }
}

criterion_group!(encap_decap, benches);
criterion_main!(encap_decap);
