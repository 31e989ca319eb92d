//! The whole VTEP pipeline per frame, 64-byte inner frames, an FDB of 64K
//! entries: decap-and-forward (underlay frame in, VXLAN parsed and
//! checked, inner source learned behind the remote VTEP, inner destination
//! looked up, delivered to an access port) and encap-and-forward (tenant
//! frame in, source learned, destination looked up behind a remote VTEP,
//! encapsulated with the flow's source port), with 1 worker and with 2
//! workers on the same shared tables. Frames enter through the pool
//! (alloc + copy, as an in-memory or copy-mode port does) and leave to an
//! output that frees them. Beside it in the same run, the floor: the same
//! pool alloc + copy + free with no processing.
//!
//! `cargo bench -p vxlan-benches --bench pipeline`

use std::hint::black_box;
use std::net::IpAddr;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vxlan_core::bridge::{BdConfig, PortMode};
use vxlan_core::decap::DecapConfig;
use vxlan_core::encap::{EncapConfig, EncapTemplate};
use vxlan_core::fdb::{Location, NoEvents};
use vxlan_core::frame::{BufFrame, Frame};
use vxlan_core::testutil::write_inner_frame;
use vxlan_core::wire::MacAddr;
use vxlan_pmd::pool::{PktBuf, Pool};
use vxlan_pmd::vtep::{Output, RemoteVtep, Sizing, Snapshot, VtepShared};

const FDB_ENTRIES: u32 = 65_536;
const BURST: usize = 32;

struct Sink(u64);

impl Output for Sink {
    #[inline]
    fn send(&mut self, port: u16, pkt: PktBuf) {
        self.0 += u64::from(port) + pkt.len() as u64;
    }
}

fn mac(i: u32) -> MacAddr {
    let b = i.to_be_bytes();
    MacAddr([0x02, 0x77, b[0], b[1], b[2], b[3]])
}

fn setup() -> (Arc<VtepShared>, Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let local: IpAddr = "10.0.0.2".parse().unwrap();
    let remote: IpAddr = "10.0.0.1".parse().unwrap();
    let lmac = MacAddr([2, 0, 0, 0, 0, 2]);
    let template = EncapTemplate::new(&EncapConfig::new(
        local,
        remote,
        lmac,
        MacAddr([2, 0, 0, 0, 0, 1]),
    ))
    .unwrap();
    let snap = Snapshot {
        ports: vec![PortMode::Underlay, PortMode::access(0), PortMode::access(0)],
        bds: vec![BdConfig::new(100, &[0])],
        remotes: vec![RemoteVtep {
            ip: remote,
            template,
        }],
        decap: DecapConfig::new(local),
        underlay: Some(0),
        suppress_arp_nd: false,
    };
    let pool = Pool::new(4096, 2048, 128).unwrap();
    let shared = VtepShared::new(
        snap,
        pool,
        Sizing {
            fdb_entries: FDB_ENTRIES * 2,
            neighbors: 64,
            workers: 2,
            ageing: 300,
        },
    )
    .unwrap();
    // 64K entries: half local (port 1), half behind the remote.
    for i in 0..FDB_ENTRIES {
        let loc = if i % 2 == 0 {
            Location::Local { port: 1, vlan: 0 }
        } else {
            Location::Remote(0)
        };
        shared.fdb().learn(0, mac(i), loc, 0, &mut NoEvents);
    }
    // Decap input: from remote MACs (odd) to local MACs (even).
    let peer = EncapTemplate::new(&EncapConfig::new(
        remote,
        local,
        MacAddr([2, 0, 0, 0, 0, 1]),
        lmac,
    ))
    .unwrap();
    let mut decap_frames = Vec::new();
    let mut encap_frames = Vec::new();
    for k in 0..1024u32 {
        let mut inner = vec![0u8; 64];
        write_inner_frame(&mut inner, mac(2 * k + 1), mac(2 * k), &[], 64);
        let mut f = BufFrame::with_data(vec![0u8; 512], 128, &inner).unwrap();
        peer.encap_flow(&mut f, 100).unwrap();
        decap_frames.push(f.data().to_vec());
        let mut out = vec![0u8; 64];
        write_inner_frame(&mut out, mac(2 * k), mac(2 * k + 1), &[], 64);
        encap_frames.push(out);
    }
    (shared, decap_frames, encap_frames)
}

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
                for _ in 0..rounds {
                    for burst in mine.chunks(BURST) {
                        w.refresh();
                        for f in burst {
                            let pkt = pool
                                .alloc_with(f.as_slice())
                                .expect("pool sized for the burst");
                            w.process(port, pkt, &mut sink);
                        }
                    }
                }
                black_box(sink.0);
            });
        }
    });
    start.elapsed()
}

fn floor(pool: &Arc<Pool>, frames: &[Vec<u8>], rounds: u64) -> Duration {
    let start = Instant::now();
    let mut sink = Sink(0);
    for _ in 0..rounds {
        for f in frames {
            let pkt = pool.alloc_with(black_box(f)).unwrap();
            sink.send(0, pkt);
        }
    }
    black_box(sink.0);
    start.elapsed()
}

fn benches(c: &mut Criterion) {
    let (shared, decap_frames, encap_frames) = setup();
    for (name, frames, port) in [
        ("decap_forward", &decap_frames, 0u16),
        ("encap_forward", &encap_frames, 1u16),
    ] {
        let mut g = c.benchmark_group(format!("pipeline/{name}/inner64/fdb64k"));
        for workers in [1usize, 2] {
            // Elements: frames processed by all workers together (each
            // round deals every frame once).
            g.throughput(Throughput::Elements(frames.len() as u64));
            g.bench_function(format!("{workers}-worker"), |b| {
                b.iter_custom(|iters| run(&shared, frames, port, workers, iters))
            });
        }
        g.throughput(Throughput::Elements(frames.len() as u64));
        g.bench_function("floor-pool-copy", |b| {
            b.iter_custom(|iters| floor(shared.pool(), frames, iters))
        });
        g.finish();
    }
    let s = shared.stats();
    assert_eq!(s.drops(), 0, "the benchmark must not measure drops: {s:?}");
}

criterion_group!(pipeline, benches);
criterion_main!(pipeline);
