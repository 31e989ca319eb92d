//! The pipeline benchmark's setup and loop without criterion, for counting
//! instructions per frame under callgrind:
//!
//! ```text
//! cargo build --profile bench -p vxlan-benches --example pipeline_count
//! valgrind --tool=callgrind target/release/examples/pipeline_count decap 100
//! valgrind --tool=callgrind target/release/examples/pipeline_count decap 200
//! ```
//!
//! The difference between two round counts, divided by 1024 frames per
//! round, is the per-frame cost with the setup cancelled out. Arguments:
//! `decap`, `encap` or `floor` (the decap frames through the pool's
//! alloc, copy and free only), rounds (default 100), and `queue` to run
//! without the per-thread magazine, or `ports` to run the port path
//! ([`PortRig`]: frames put on the worker's in-memory receive ring
//! untimed, then the poll loop). For `ports`, count only what the
//! benchmark times:
//!
//! ```text
//! valgrind --tool=callgrind --toggle-collect='*poll_round*' \
//!     target/release/examples/pipeline_count decap 20 ports
//! ```

use std::sync::Arc;

use vxlan_benches::pipeline::{run_rig, run_worker, setup, PortRig, Sink, ROUND};
use vxlan_pmd::pool::Pool;
use vxlan_pmd::vtep::Output;

fn main() {
    let mut args = std::env::args().skip(1);
    let case = args.next().unwrap_or_else(|| "decap".into());
    let rounds: u64 = args.next().map_or(100, |r| r.parse().expect("rounds"));
    // A third argument `queue`: no magazine, every buffer through the
    // pool's shared queue.
    let mode = args.next();
    let magazine = mode.as_deref() != Some("queue");
    let ports = mode.as_deref() == Some("ports");
    let (shared, decap, encap) = setup();
    if case == "floor" {
        let pool = shared.pool();
        let mut sink = Sink(0);
        if magazine {
            pool.cache_on_this_thread();
        }
        for _ in 0..rounds {
            for f in &decap {
                let pkt = pool.alloc_with(std::hint::black_box(f)).expect("pool");
                sink.send(0, pkt);
            }
        }
        Pool::flush_this_thread();
        assert_eq!(pool.in_use(), 0, "every buffer back in the pool");
        println!(
            "floor: {} frames, sink {}",
            rounds * decap.len() as u64,
            sink.0
        );
        return;
    }
    let (frames, port) = match case.as_str() {
        "decap" => (&decap, 0u16),
        "encap" => (&encap, 1u16),
        other => panic!("case {other}: use decap or encap"),
    };
    let pool = Arc::clone(shared.pool());
    let mut w = shared.worker(0);
    let mut sink = Sink(0);
    let mine: Vec<&Vec<u8>> = frames.iter().collect();
    if ports {
        drop(w);
        let mut rig = PortRig::new(&shared, 0, port);
        let per_round = (frames.len() / ROUND) as u64;
        run_rig(&mut rig, &mine, rounds * per_round);
        drop(rig);
        Pool::flush_this_thread();
    } else {
        run_worker(&mut w, &pool, &mine, port, rounds, &mut sink, magazine);
    }
    let s = shared.stats();
    assert_eq!(s.drops(), 0, "no drops expected: {s:?}");
    assert_eq!(s.rx, rounds * frames.len() as u64);
    assert_eq!(pool.in_use(), 0, "every buffer back in the pool");
    println!("{case}: {} frames, sink {}", s.rx, sink.0);
}
