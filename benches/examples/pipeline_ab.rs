//! Interleaved runs of the pipeline benchmark's port path (the acceptance
//! harness of `--bench pipeline`: [`run_ports`]) with 1 worker and with 2,
//! for a noisy machine: 41 rounds per direction, each timing a run of 1
//! worker and then a run of 2 on the same tables and frames, and the
//! medians of the frame rates and of the per-round 2w / 1w ratios. A burst
//! of load from a neighbour then hits both runs of a round alike. Criterion
//! stays the acceptance figure; this is the cross-check.
//!
//! `cargo run --profile bench -p vxlan-benches --example pipeline_ab [ROUNDS]`

use vxlan_benches::median;
use vxlan_benches::pipeline::{run_ports, run_ports_free, setup, ROUND};

/// Poll rounds (of [`ROUND`] frames per worker) per timed run.
const RUN: u64 = 400;

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(41, |a| a.parse().expect("usage: pipeline_ab [ROUNDS]"));
    let (shared, decap, encap) = setup();
    println!("| case | 1 worker (Mpps) | 2 workers (Mpps) | 2w / 1w (median of rounds) | quartiles | 1 worker, best round | 2 workers, free-running (Mpps) | 2w free / 1w | quartiles |");
    println!("|---|---:|---:|---:|---|---:|---:|---:|---|");
    for (name, frames, port) in [
        ("decap and forward", &decap, 0u16),
        ("encap and forward", &encap, 1),
    ] {
        let (mut one, mut two, mut ratio) = (vec![], vec![], vec![]);
        let (mut free, mut ratio_free) = (vec![], vec![]);
        for _ in 0..rounds {
            let per_worker = (RUN * ROUND as u64) as f64;
            let t1 = run_ports(&shared, frames, port, 1, RUN).as_secs_f64();
            let t2 = run_ports(&shared, frames, port, 2, RUN).as_secs_f64();
            let (m1, m2) = (per_worker / t1 / 1e6, 2.0 * per_worker / t2 / 1e6);
            let t3 = run_ports_free(&shared, frames, port, 2, RUN).as_secs_f64();
            let m3 = 2.0 * per_worker / t3 / 1e6;
            free.push(m3);
            ratio_free.push(m3 / m1);
            one.push(m1);
            two.push(m2);
            ratio.push(m2 / m1);
        }
        let best = one.iter().copied().fold(0.0, f64::max);
        let (m1, m2, r) = (median(&mut one), median(&mut two), median(&mut ratio));
        let (q1, q3) = (ratio[rounds / 4], ratio[3 * rounds / 4]);
        let (m3, r3) = (median(&mut free), median(&mut ratio_free));
        let (f1, f3) = (ratio_free[rounds / 4], ratio_free[3 * rounds / 4]);
        println!("| {name} | {m1:.1} | {m2:.1} | {r:.2}x | {q1:.2}-{q3:.2}x | {best:.1} | {m3:.1} | {r3:.2}x | {f1:.2}-{f3:.2}x |");
    }
    let s = shared.stats();
    assert_eq!(s.drops(), 0, "the benchmark must not measure drops: {s:?}");
}
