//! Interleaved A/B timing of the wire benchmark's two parse paths, for a
//! noisy machine: 300 rounds, each timing 200 000 parses through ours
//! (`parse_single_with`) and then as many through etherparse on the same
//! frame, and the median of the per-round ratios (plus, per round, ours
//! with the config also through `black_box`, the harness before the
//! seventh session), with the frame at a 64-byte boundary as the
//! criterion bench puts it and then, for the IPv4 64-byte case, at four
//! misaligned starts. A burst of load from a
//! neighbour then hits both sides of a round alike, where criterion's
//! separate runs of each side can each catch different load. Criterion
//! (`--bench wire`) stays the acceptance figure; this is the cross-check.
//!
//! `cargo run --profile bench -p vxlan-benches --example parse_ab`
//! (pin it: `taskset -c 1 target/release/examples/parse_ab`).

use std::hint::black_box;
use std::time::Instant;

use vxlan_benches::wire::{etherparse_path, ours_single_with};
use vxlan_benches::{median, vxlan_frame, AlignedFrame};
use vxlan_core::tunnel::ParseConfig;

const ROUNDS: usize = 300;
const PER_ROUND: u32 = 200_000;

/// Nanoseconds per call of `f`, over [`PER_ROUND`] calls.
fn time(mut f: impl FnMut() -> u64) -> f64 {
    let start = Instant::now();
    for _ in 0..PER_ROUND {
        black_box(f());
    }
    start.elapsed().as_secs_f64() * 1e9 / f64::from(PER_ROUND)
}

fn main() {
    let config = ParseConfig::default();
    println!("| case | frame at | ours (ns) | etherparse (ns) | median ratio | quartiles | ours, config through black_box (ns) | ratio |");
    println!("|---|---|---:|---:|---:|---|---:|---:|");
    let cases = [
        (false, 64, 0),
        (false, 1400, 0),
        (true, 64, 0),
        (true, 1400, 0),
        (false, 64, 2),
        (false, 64, 16),
        (false, 64, 32),
        (false, 64, 48),
    ];
    for (ipv6, inner_len, offset) in cases {
        let owned = AlignedFrame::at_offset(&vxlan_frame(ipv6, inner_len), offset);
        let frame = owned.bytes();
        assert_eq!(ours_single_with(frame, &config), etherparse_path(frame));
        let (mut ours, mut peer, mut ratio) = (vec![], vec![], vec![]);
        let (mut ours_bb, mut ratio_bb) = (vec![], vec![]);
        for _ in 0..ROUNDS {
            // As the criterion bench: only the frame through black_box.
            let a = time(|| ours_single_with(black_box(frame), &config));
            let b = time(|| etherparse_path(black_box(frame)));
            // The harness before the seventh session, for the record.
            let c = time(|| ours_single_with(black_box(frame), black_box(&config)));
            ours.push(a);
            peer.push(b);
            ratio.push(b / a);
            ours_bb.push(c);
            ratio_bb.push(b / c);
        }
        let (a, b, r) = (median(&mut ours), median(&mut peer), median(&mut ratio));
        let (q1, q3) = (ratio[ROUNDS / 4], ratio[3 * ROUNDS / 4]);
        let (c, rc) = (median(&mut ours_bb), median(&mut ratio_bb));
        let underlay = if ipv6 { "IPv6" } else { "IPv4" };
        println!(
            "| {underlay}, {inner_len} B | 64n+{offset} | {a:.2} | {b:.2} | {r:.2}x | {q1:.2}-{q3:.2}x | {c:.2} | {rc:.2}x |"
        );
    }
}
