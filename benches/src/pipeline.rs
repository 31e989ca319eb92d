//! The setup of the pipeline benchmark (`benches/benches/pipeline.rs`),
//! shared with its instruction-counting harness
//! (`benches/examples/pipeline_count.rs`, run under callgrind), so both
//! measure exactly the same tables and frames.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vxlan_core::bridge::{BdConfig, PortMode};
use vxlan_core::decap::DecapConfig;
use vxlan_core::encap::{EncapConfig, EncapTemplate};
use vxlan_core::fdb::{Location, NoEvents};
use vxlan_core::frame::{BufFrame, Frame};
use vxlan_core::testutil::write_inner_frame;
use vxlan_core::wire::MacAddr;
use vxlan_pmd::memport::{self, MemPort};
use vxlan_pmd::pool::{PktBuf, Pool};
use vxlan_pmd::port::{Burst, Port};
use vxlan_pmd::run::PortLoop;
use vxlan_pmd::vtep::{Output, RemoteVtep, Sizing, Snapshot, VtepShared, VtepWorker};

/// FDB entries installed: half local, half behind the remote VTEP.
pub const FDB_ENTRIES: u32 = 65_536;
/// Frames per burst (a snapshot refresh per burst, as the poll loop does).
pub const BURST: usize = 32;

/// An output that frees what it is given (after reading its length).
#[derive(Debug, Default)]
pub struct Sink(pub u64);

impl Output for Sink {
    #[inline]
    fn send(&mut self, port: u16, pkt: PktBuf) {
        self.0 += u64::from(port) + pkt.len() as u64;
    }
}

/// The `i`th tenant MAC.
pub fn mac(i: u32) -> MacAddr {
    let b = i.to_be_bytes();
    MacAddr([0x02, 0x77, b[0], b[1], b[2], b[3]])
}

/// The shared VTEP (port 0 underlay, ports 1 and 2 access ports of VNI
/// 100, one remote VTEP, 64K FDB entries, 2 worker slots), the decap
/// input (1024 VXLAN frames from remote MACs to local ones) and the encap
/// input (1024 tenant frames from local MACs to remote ones), 64-byte
/// inner frames.
pub fn setup() -> (Arc<VtepShared>, Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let local: IpAddr = IpAddr::from([10, 0, 0, 2]);
    let remote: IpAddr = IpAddr::from([10, 0, 0, 1]);
    let lmac = MacAddr([2, 0, 0, 0, 0, 2]);
    let template = EncapTemplate::new(&EncapConfig::new(
        local,
        remote,
        lmac,
        MacAddr([2, 0, 0, 0, 0, 1]),
    ))
    .expect("template");
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
    let pool = Pool::new(4096, 2048, 128).expect("pool");
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
    .expect("vtep");
    for i in 0..FDB_ENTRIES {
        let loc = if i % 2 == 0 {
            Location::Local { port: 1, vlan: 0 }
        } else {
            Location::Remote(0)
        };
        shared.fdb().learn(0, mac(i), loc, 0, &mut NoEvents);
    }
    let peer = EncapTemplate::new(&EncapConfig::new(
        remote,
        local,
        MacAddr([2, 0, 0, 0, 0, 1]),
        lmac,
    ))
    .expect("peer template");
    let mut decap_frames = Vec::new();
    let mut encap_frames = Vec::new();
    for k in 0..1024u32 {
        let mut inner = vec![0u8; 64];
        write_inner_frame(&mut inner, mac(2 * k + 1), mac(2 * k), &[], 64);
        let mut f = BufFrame::with_data(vec![0u8; 512], 128, &inner).expect("frame");
        peer.encap_flow(&mut f, 100).expect("encap");
        decap_frames.push(f.data().to_vec());
        let mut out = vec![0u8; 64];
        write_inner_frame(&mut out, mac(2 * k), mac(2 * k + 1), &[], 64);
        encap_frames.push(out);
    }
    (shared, decap_frames, encap_frames)
}

/// One worker's loop: `rounds` times over `frames` in bursts of
/// [`BURST`], each frame copied into a pool buffer (as an in-memory port
/// delivers it) and each burst processed as received on `port`
/// ([`VtepWorker::process_burst`], as the poll loop does). With `magazine`,
/// this thread keeps a magazine of free buffers, as a poll loop does;
/// without, every buffer goes through the pool's shared queue.
pub fn run_worker(
    w: &mut VtepWorker,
    pool: &Arc<Pool>,
    frames: &[&Vec<u8>],
    port: u16,
    rounds: u64,
    sink: &mut Sink,
    magazine: bool,
) {
    if magazine {
        pool.cache_on_this_thread();
    }
    let mut pkts = Burst::with_capacity(BURST);
    for _ in 0..rounds {
        for burst in frames.chunks(BURST) {
            w.refresh();
            for f in burst {
                let pkt = pool
                    .alloc_with(f.as_slice())
                    .expect("pool sized for the burst");
                // Cannot fail: the chunk is at most BURST long.
                let _ = pkts.push(pkt);
            }
            w.process_burst(port, &mut pkts, sink);
        }
    }
    Pool::flush_this_thread();
}

/// Frames the peer puts on the worker's receive ring per round of the
/// port-path benchmark ([`PortRig`]), and the size of every ring. Small
/// enough that the buffers of one round cycle through the worker thread's
/// pool magazine (`2 * MAGAZINE_BLOCK` = 128) without spilling to the
/// shared queue, as in a steady poll loop.
pub const ROUND: usize = 128;

/// One worker's VTEP behind in-memory ports, as the poll loop runs it in
/// production: a [`PortLoop`] over the VTEP ends of three
/// [`memport`] pairs (port 0 underlay, ports 1 and 2 access), the other
/// ends held here as the "wire". [`fill`](PortRig::fill) is the peer's
/// work (what a NIC's DMA is for DPDK) and is not timed;
/// [`poll_round`](PortRig::poll_round) is the worker's: receive bursts,
/// process, transmit bursts, and free what was transmitted (as a NIC's
/// transmit completion frees mbufs on the worker's core).
pub struct PortRig {
    lp: PortLoop,
    hosts: Vec<MemPort>,
    ingress: usize,
    egress: usize,
}

impl PortRig {
    /// A rig for worker `id` of `shared`; frames enter on port `ingress`
    /// (0: the underlay, decap-and-forward; 1: an access port,
    /// encap-and-forward) and leave on port 1 or 0 respectively.
    pub fn new(shared: &Arc<VtepShared>, id: usize, ingress: u16) -> PortRig {
        let mut hosts = Vec::new();
        let mut ports: Vec<Box<dyn Port>> = Vec::new();
        for p in 0..3u16 {
            let (host, mut vtep) = memport::pair(
                Arc::clone(shared.pool()),
                format!("host{p}"),
                format!("vtep{p}"),
                ROUND,
            );
            vtep.set_port_id(p);
            hosts.push(host);
            ports.push(Box::new(vtep));
        }
        PortRig {
            lp: PortLoop::new(shared.worker(id), ports),
            hosts,
            ingress: usize::from(ingress),
            egress: if ingress == 0 { 1 } else { 0 },
        }
    }

    /// The peer's work, untimed: copies `frames` into pool buffers and
    /// puts them on the worker's receive ring.
    pub fn fill(&mut self, frames: &[&Vec<u8>]) {
        // This thread polls too: its pool magazine serves both sides.
        self.hosts[self.ingress].pool().cache_on_this_thread();
        for f in frames {
            self.hosts[self.ingress]
                .send(f)
                .expect("ring and pool sized for a round");
        }
    }

    /// The worker's work, timed: polls until `n` frames have been
    /// transmitted, freeing each transmitted burst. Panics if the VTEP
    /// stops producing frames before `n` (a drop: the benchmark must not
    /// measure drops).
    #[inline(never)]
    pub fn poll_round(&mut self, n: usize) {
        let mut left = n;
        while left > 0 {
            let busy = self.lp.poll();
            let got = self.hosts[self.egress].discard(0, ROUND);
            assert!(
                got > 0 || busy == vxlan_pmd::worker::Poll::Busy,
                "frames lost: {left} of {n} not transmitted"
            );
            left = left.saturating_sub(got);
        }
    }
}

/// Runs `rounds` rounds of `frames` (taken [`ROUND`] at a time, cycling)
/// through `rig` and returns the time spent in
/// [`PortRig::poll_round`] only.
pub fn run_rig(rig: &mut PortRig, frames: &[&Vec<u8>], rounds: u64) -> std::time::Duration {
    let mut t = std::time::Duration::ZERO;
    let mut at = 0;
    for _ in 0..rounds {
        let chunk = next_chunk(frames, &mut at);
        rig.fill(chunk);
        let start = std::time::Instant::now();
        rig.poll_round(chunk.len());
        t += start.elapsed();
    }
    t
}

/// The next round's frames: up to [`ROUND`] from `at`, cycling back to the
/// start after the last.
fn next_chunk<'a>(frames: &'a [&'a Vec<u8>], at: &mut usize) -> &'a [&'a Vec<u8>] {
    let end = (*at + ROUND).min(frames.len());
    let chunk = &frames[*at..end];
    *at = if end == frames.len() { 0 } else { end };
    chunk
}

/// A barrier that spins (a futex wake per round would dwarf a round).
pub struct SpinBarrier {
    n: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
}

impl SpinBarrier {
    /// A barrier for `n` threads.
    pub fn new(n: usize) -> Self {
        SpinBarrier {
            n,
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
        }
    }

    /// Waits until all `n` threads have arrived (spinning).
    pub fn wait(&self) {
        let g = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.n {
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.store(g + 1, Ordering::Release);
            return;
        }
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == g {
            spins += 1;
            if spins.is_multiple_of(1024) {
                // Two vCPUs, shared: let the other worker run.
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

/// Runs `workers` threads, each its own worker of `shared` behind its own
/// [`PortRig`] with every `workers`-th frame of `frames` (as RSS deals
/// flows to queues), for `rounds` rounds; fills are untimed. With
/// `lockstep`, the workers meet at a barrier before every round, else only
/// once before the first. Returns, per worker, each round's frame count
/// and poll time.
fn worker_rounds(
    shared: &Arc<VtepShared>,
    frames: &[Vec<u8>],
    port: u16,
    workers: usize,
    rounds: u64,
    lockstep: bool,
) -> Vec<Vec<(usize, Duration)>> {
    let barrier = SpinBarrier::new(workers);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|id| {
                let barrier = &barrier;
                s.spawn(move || {
                    let mut rig = PortRig::new(shared, id, port);
                    let mine: Vec<&Vec<u8>> = frames.iter().skip(id).step_by(workers).collect();
                    let mut times = Vec::with_capacity(usize::try_from(rounds).unwrap_or(0));
                    let mut at = 0;
                    if !lockstep {
                        barrier.wait();
                    }
                    for _ in 0..rounds {
                        let chunk = next_chunk(&mine, &mut at);
                        rig.fill(chunk);
                        if lockstep {
                            barrier.wait();
                        }
                        let start = Instant::now();
                        rig.poll_round(chunk.len());
                        times.push((chunk.len(), start.elapsed()));
                    }
                    drop(rig);
                    Pool::flush_this_thread();
                    times
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// The port-path harness of `--bench pipeline` (see its module docs): `rounds` rounds of
/// [`ROUND`] frames per worker, in lockstep, returning the summed round
/// times (per round, the slower worker's).
pub fn run_ports(
    shared: &Arc<VtepShared>,
    frames: &[Vec<u8>],
    port: u16,
    workers: usize,
    rounds: u64,
) -> Duration {
    let times = worker_rounds(shared, frames, port, workers, rounds, true);
    (0..times[0].len())
        .map(|r| times.iter().map(|t| t[r].1).max().unwrap_or_default())
        .sum()
}

/// The port-path harness without the per-round barrier: the workers meet
/// once, then each runs its `rounds` rounds at its own pace (its own fills
/// untimed, as in [`run_ports`]). Returns the time in which all workers'
/// frames would pass at the sum of the workers' own rates (each worker's
/// frames over its own summed poll time): independent cores' aggregate
/// throughput, where [`run_ports`] (each round as slow as its slower
/// worker) also charges the run for every hiccup of either core.
pub fn run_ports_free(
    shared: &Arc<VtepShared>,
    frames: &[Vec<u8>],
    port: u16,
    workers: usize,
    rounds: u64,
) -> Duration {
    let per_worker: Vec<(usize, Duration)> =
        worker_rounds(shared, frames, port, workers, rounds, false)
            .iter()
            .map(|t| {
                t.iter()
                    .fold((0, Duration::ZERO), |(n, d), &(k, e)| (n + k, d + e))
            })
            .collect();
    let frames: usize = per_worker.iter().map(|&(n, _)| n).sum();
    let rate: f64 = per_worker
        .iter()
        .map(|&(n, t)| n as f64 / t.as_secs_f64().max(1e-12))
        .sum();
    Duration::from_secs_f64(frames as f64 / rate)
}
