//! The whole VTEP pipeline per frame, 64-byte inner frames, an FDB of 64K
//! entries: decap-and-forward (underlay frame in, VXLAN parsed and
//! checked, inner source learned behind the remote VTEP, inner destination
//! looked up, delivered to an access port) and encap-and-forward (tenant
//! frame in, source learned, destination looked up behind a remote VTEP,
//! encapsulated with the flow's source port), with 1 worker and with 2
//! workers on the same shared tables.
//!
//! Two harnesses, beside each other in the same run:
//!
//! - `N-worker-ports` (the acceptance figure): the whole poll loop over
//!   in-memory ports. Each worker has its own three `memport` pairs (its
//!   own rings, as each worker owns its own NIC queues) under a
//!   `PortLoop`. Per round, the peer puts [`ROUND`] frames on the worker's
//!   receive ring, untimed (alloc + copy into pool buffers: the traffic
//!   generator's work, as DMA is the NIC's for DPDK); then the timed part
//!   is the worker's: `rx_burst` from the ingress port, process, `tx_burst`
//!   to the egress port, and freeing what was transmitted (drained from the
//!   egress ring and dropped back into the pool on the worker's core, as a
//!   NIC's transmit completion frees mbufs: the conservative choice). With
//!   2 workers, both fill, meet at a spin barrier, and each times its own
//!   round; a round's time is the slower worker's, and the figure is all
//!   frames of both over the sum of those (aggregate frames over wall
//!   time, fills excluded).
//! - `N-worker` (the earlier harness, kept for continuity): no ports; per
//!   frame a pool buffer is allocated and the frame copied in (timed), then
//!   `VtepWorker::process`, to an output that frees the frame. Beside it,
//!   the floor: the same pool alloc + copy + free with no processing.
//!
//! `cargo bench -p vxlan-benches --bench pipeline`

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vxlan_benches::pipeline::{run_ports, run_worker, setup, Sink, ROUND};
use vxlan_pmd::pool::Pool;
use vxlan_pmd::vtep::{Output, VtepShared};

/// Runs `frames` through `workers` threads (each its own worker on the
/// shared tables) `rounds` times and returns the time. The frames are dealt
/// out round-robin, so each worker owns a disjoint set of flows, as RSS
/// spreads flows over queues: a MAC is learned and refreshed by the core
/// its flows land on, not by every core at once.
fn run(
    shared: &Arc<VtepShared>,
    frames: &[Vec<u8>],
    port: u16,
    workers: usize,
    rounds: u64,
    magazine: bool,
) -> Duration {
    let barrier = Barrier::new(workers);
    let start = Instant::now();
    std::thread::scope(|s| {
        for id in 0..workers {
            let barrier = &barrier;
            let shared = Arc::clone(shared);
            s.spawn(move || {
                let pool = Arc::clone(shared.pool());
                let mut w = shared.worker(id);
                let mut sink = Sink(0);
                let mine: Vec<&Vec<u8>> = frames.iter().skip(id).step_by(workers).collect();
                barrier.wait();
                run_worker(&mut w, &pool, &mine, port, rounds, &mut sink, magazine);
                black_box(sink.0);
            });
        }
    });
    start.elapsed()
}

fn floor(pool: &Arc<Pool>, frames: &[Vec<u8>], rounds: u64, magazine: bool) -> Duration {
    if magazine {
        // Like the workers: this thread keeps a magazine of free buffers.
        pool.cache_on_this_thread();
    }
    let start = Instant::now();
    let mut sink = Sink(0);
    for _ in 0..rounds {
        for f in frames {
            let pkt = pool.alloc_with(black_box(f)).unwrap();
            sink.send(0, pkt);
        }
    }
    black_box(sink.0);
    let t = start.elapsed();
    Pool::flush_this_thread();
    t
}

fn benches(c: &mut Criterion) {
    let (shared, decap_frames, encap_frames) = setup();
    for (name, frames, port) in [
        ("decap_forward", &decap_frames, 0u16),
        ("encap_forward", &encap_frames, 1u16),
    ] {
        let mut g = c.benchmark_group(format!("pipeline/{name}/inner64/fdb64k"));
        for workers in [1usize, 2] {
            // Elements: frames of all workers in a round.
            g.throughput(Throughput::Elements((ROUND * workers) as u64));
            g.bench_function(format!("{workers}-worker-ports"), |b| {
                b.iter_custom(|iters| run_ports(&shared, frames, port, workers, iters))
            });
            // Elements: frames processed by all workers together (each
            // round deals every frame once).
            g.throughput(Throughput::Elements(frames.len() as u64));
            g.bench_function(format!("{workers}-worker"), |b| {
                b.iter_custom(|iters| run(&shared, frames, port, workers, iters, true))
            });
            // The same with every buffer through the pool's shared queue
            // (no per-thread magazine), for the A/B in one run.
            g.throughput(Throughput::Elements(frames.len() as u64));
            g.bench_function(format!("{workers}-worker-queue"), |b| {
                b.iter_custom(|iters| run(&shared, frames, port, workers, iters, false))
            });
        }
        g.throughput(Throughput::Elements(frames.len() as u64));
        g.bench_function("floor-pool-copy", |b| {
            b.iter_custom(|iters| floor(shared.pool(), frames, iters, true))
        });
        // The same through the shared queue alone (no magazine).
        g.throughput(Throughput::Elements(frames.len() as u64));
        g.bench_function("floor-pool-copy-queue", |b| {
            b.iter_custom(|iters| floor(shared.pool(), frames, iters, false))
        });
        g.finish();
    }
    let s = shared.stats();
    assert_eq!(s.drops(), 0, "the benchmark must not measure drops: {s:?}");
}

criterion_group!(pipeline, benches);
criterion_main!(pipeline);
