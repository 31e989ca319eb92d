//! Interleaved A/B timing of the wire benchmark's two parse paths, for a
//! noisy machine: 300 rounds, each timing 200 000 parses through ours
//! (`parse_single_with`) and then as many through etherparse on the same
//! frame, and the median of the per-round ratios. A burst of load from a
//! neighbour then hits both sides of a round alike, where criterion's
//! separate runs of each side can each catch different load. Criterion
//! (`--bench wire`) stays the acceptance figure; this is the cross-check.
//!
//! `cargo run --profile bench -p vxlan-benches --example parse_ab`
//! (pin it: `taskset -c 1 target/release/examples/parse_ab`).

use std::hint::black_box;
use std::time::Instant;

use vxlan_benches::vxlan_frame;
use vxlan_benches::wire::{etherparse_path, ours_single_with};
use vxlan_core::tunnel::ParseConfig;

const ROUNDS: usize = 300;
const PER_ROUND: u32 = 200_000;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

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
    println!("| case | ours (ns) | etherparse (ns) | median ratio | quartiles |");
    println!("|---|---:|---:|---:|---|");
    for (ipv6, inner_len) in [(false, 64), (false, 1400), (true, 64), (true, 1400)] {
        let frame = vxlan_frame(ipv6, inner_len);
        assert_eq!(ours_single_with(&frame, &config), etherparse_path(&frame));
        let (mut ours, mut peer, mut ratio) = (vec![], vec![], vec![]);
        for _ in 0..ROUNDS {
            let a = time(|| ours_single_with(black_box(&frame), black_box(&config)));
            let b = time(|| etherparse_path(black_box(&frame)));
            ours.push(a);
            peer.push(b);
            ratio.push(b / a);
        }
        let (a, b, r) = (median(&mut ours), median(&mut peer), median(&mut ratio));
        let (q1, q3) = (ratio[ROUNDS / 4], ratio[3 * ROUNDS / 4]);
        let underlay = if ipv6 { "IPv6" } else { "IPv4" };
        println!("| {underlay}, {inner_len} B | {a:.2} | {b:.2} | {r:.2}x | {q1:.2}-{q3:.2}x |");
    }
}
