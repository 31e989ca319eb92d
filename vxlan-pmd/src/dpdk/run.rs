//! The DPDK run-to-completion loop and the VTEP assembled on DPDK ports.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dpdk_sys as sys;

use super::eal::{DpdkError, Eal};
use super::ethdev::{EthPort, EthPortConfig};
use super::mbuf::{tx_flags, Mbuf, Mempool, TxIpv4Checksum};
use crate::build::RemoteFactory;
use crate::config::{BridgeMode, ConfigError, PortKind, VtepConfig};
use crate::pool::Pool;
use crate::vtep::{Output, VtepShared, VtepWorker};
use crate::worker::Poll;

/// How many frames ahead the loop prefetches frame data.
const PREFETCH: usize = 4;

/// Hints the CPU to load the first cache line of `m`'s frame data.
#[inline(always)]
fn prefetch_data(m: *mut sys::rte_mbuf) {
    // SAFETY: m is a live mbuf just received (the caller's burst); reading
    // its buf_addr and data_off is a plain read of memory DPDK handed us.
    let p = unsafe {
        (*m).buf_addr
            .cast::<u8>()
            .wrapping_add(usize::from((*m).data_off))
    };
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint; it never faults, whatever the
    // address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Frames received per port per poll.
pub const RX_BURST: usize = 32;
/// Frames collected per port before a transmit burst.
const TX_BURST: usize = 32;

/// One port's counters in one loop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortLoopStats {
    /// Frames received.
    pub rx: u64,
    /// Frames the driver took for transmission.
    pub tx: u64,
    /// Frames the driver did not take (ring full); freed.
    pub tx_dropped: u64,
    /// Received frames dropped because they were chained mbufs (longer
    /// than one buffer): the VTEP handles single-segment frames only.
    pub rx_chained: u64,
    /// Frames queued for transmission with their IPv4 header checksum left
    /// to the device (the port's
    /// [`Offloads::tx_ipv4_checksum`](super::Offloads::tx_ipv4_checksum)
    /// is on): asked for by the encapsulation (a template with the
    /// offload hint) or, for a frame that came without the request, by the
    /// transmit path; 0 on a port without the offload, whose frames carry
    /// the checksum the encapsulation wrote.
    pub tx_ipv4_checksum_offloaded: u64,
    /// Frames queued for transmission with their UDP checksum left to the
    /// device (asked for by the encapsulation; the port's
    /// [`Offloads::tx_udp_checksum`](super::Offloads::tx_udp_checksum) is
    /// on).
    pub tx_udp_checksum_offloaded: u64,
}

impl std::ops::AddAssign for PortLoopStats {
    fn add_assign(&mut self, o: PortLoopStats) {
        self.rx += o.rx;
        self.tx += o.tx;
        self.tx_dropped += o.tx_dropped;
        self.rx_chained += o.rx_chained;
        self.tx_ipv4_checksum_offloaded += o.tx_ipv4_checksum_offloaded;
        self.tx_udp_checksum_offloaded += o.tx_udp_checksum_offloaded;
    }
}

/// One loop's counters, per port (index = port number).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoopStats {
    /// Per port.
    pub ports: Vec<PortLoopStats>,
    /// The lcore id each worker ran as (EAL worker lcores, or ids EAL gave
    /// registered threads).
    pub lcores: Vec<u32>,
    /// True when the workers ran on EAL's own worker lcores (pinned to the
    /// CPUs of `-l`), false for threads registered with EAL.
    pub on_eal_lcores: bool,
}

impl LoopStats {
    /// Adds another loop's counters port by port.
    pub fn merge(&mut self, o: &LoopStats) {
        self.lcores.extend_from_slice(&o.lcores);
        if self.ports.len() < o.ports.len() {
            self.ports.resize(o.ports.len(), PortLoopStats::default());
        }
        for (a, b) in self.ports.iter_mut().zip(&o.ports) {
            *a += *b;
        }
    }
}

struct TxBuf {
    /// Invariant: `pkts[..n]` are live mbufs this loop owns.
    pkts: [*mut sys::rte_mbuf; TX_BURST],
    n: usize,
    /// The port has a transmit checksum offload on: frames may carry
    /// requests, to count (and IPv4 frames without one get one when
    /// `ip_checksum` is set).
    offload: bool,
    /// The port computes the IPv4 header checksum of the frames it sends:
    /// what to write into an mbuf that comes without a request.
    ip_checksum: Option<TxIpv4Checksum>,
    /// Frames that came with a template's request since the last flush,
    /// by [`request_kind`]: one increment per frame, folded into the
    /// port's counters per burst.
    requests: [u64; 4],
}

/// Where a transmit checksum request's flags `f` (non-zero) are counted
/// in [`TxBuf::requests`]: bit 0 the UDP checksum (`RTE_MBUF_F_TX_UDP_CKSUM`
/// is both L4 bits, so its high one), bit 1 the IPv4 header checksum.
#[inline(always)]
fn request_kind(f: u64) -> usize {
    const _: () = assert!(tx_flags::UDP_CKSUM >> 53 & 1 == 1 && tx_flags::IP_CKSUM >> 53 == 2);
    // Two bits: the cast keeps them.
    #[allow(clippy::cast_possible_truncation)]
    let k = (f >> 53) as usize & 3;
    k
}

impl TxBuf {
    fn flush(&mut self, port: &EthPort, queue: u16, stats: &mut PortLoopStats) {
        if self.n == 0 {
            return;
        }
        // SAFETY: pkts[..n] are owned mbufs (invariant); the loop owning
        // this buffer has `queue` to itself (DpdkLoop::new's contract).
        let sent = unsafe { port.tx_raw(queue, &mut self.pkts[..self.n]) };
        stats.tx += sent as u64;
        let [_, udp, ip, both] = std::mem::take(&mut self.requests);
        stats.tx_ipv4_checksum_offloaded += ip + both;
        stats.tx_udp_checksum_offloaded += udp + both;
        for m in &self.pkts[sent..self.n] {
            stats.tx_dropped += 1;
            // SAFETY: unsent mbufs are still ours; wrapping frees them.
            drop(unsafe { Mbuf::from_raw(*m) });
        }
        self.n = 0;
    }
}

struct TxOut<'a> {
    ports: &'a [Arc<EthPort>],
    queue: u16,
    tx: &'a mut [TxBuf],
    stats: &'a mut [PortLoopStats],
}

impl Output<Mbuf> for TxOut<'_> {
    #[inline]
    fn send(&mut self, port: u16, mut pkt: Mbuf) {
        let i = usize::from(port);
        let (Some(buf), Some(p), Some(st)) =
            (self.tx.get_mut(i), self.ports.get(i), self.stats.get_mut(i))
        else {
            return; // no such port: the mbuf is freed here
        };
        if buf.n == TX_BURST {
            buf.flush(p, self.queue, st);
        }
        // Only ports set up for it carry requests. A template with the
        // offload hint made the request already (and wrote no software
        // checksum): count it. Other IPv4 frames get one here, their
        // software checksum replaced by the device's.
        if buf.offload {
            let f = pkt.tx_checksum_flags();
            if f != 0 {
                buf.requests[request_kind(f)] += 1;
            } else if let Some(req) = buf.ip_checksum {
                if pkt.request_ipv4_checksum_with(req) {
                    st.tx_ipv4_checksum_offloaded += 1;
                }
            }
        }
        buf.pkts[buf.n] = pkt.into_raw();
        buf.n += 1;
    }
}

/// One worker's loop: its queue of every port, the VTEP's decision for
/// every frame carried out on the mbuf in place, transmit bursts per port.
/// Nothing here allocates after [`DpdkLoop::new`].
pub struct DpdkLoop {
    worker: VtepWorker,
    ports: Vec<Arc<EthPort>>,
    queue: u16,
    copies: Arc<Mempool>,
    rx: [*mut sys::rte_mbuf; RX_BURST],
    tx: Vec<TxBuf>,
    stats: Vec<PortLoopStats>,
}

// SAFETY: between calls the rx array holds no live mbuf and every tx buffer
// is flushed (poll ends with a flush; Drop frees leftovers), so moving the
// loop to another thread moves no shared state; EthPort and Mempool are
// Sync.
unsafe impl Send for DpdkLoop {}

impl DpdkLoop {
    /// A loop for `worker` over queue `queue` of `ports` (index = port
    /// number as the VTEP's configuration numbers them); flood copies and
    /// path-MTU replies come from `copies`.
    ///
    /// # Safety
    /// While the loop lives, no other thread may receive or transmit on
    /// queue `queue` of any of `ports`.
    pub unsafe fn new(
        worker: VtepWorker,
        ports: Vec<Arc<EthPort>>,
        queue: u16,
        copies: Arc<Mempool>,
    ) -> DpdkLoop {
        let tx = ports
            .iter()
            .map(|p| TxBuf {
                pkts: [std::ptr::null_mut(); TX_BURST],
                n: 0,
                offload: p.offloads().tx_ipv4_checksum || p.offloads().tx_udp_checksum,
                ip_checksum: p.offloads().tx_ipv4_checksum.then(TxIpv4Checksum::new),
                requests: [0; 4],
            })
            .collect();
        let stats = vec![PortLoopStats::default(); ports.len()];
        DpdkLoop {
            worker,
            ports,
            queue,
            copies,
            rx: [std::ptr::null_mut(); RX_BURST],
            tx,
            stats,
        }
    }

    /// Polls every port once. `Busy` when any frame was received.
    pub fn poll(&mut self) -> Poll {
        self.worker.refresh();
        let mut busy = false;
        for i in 0..self.ports.len() {
            let Ok(port) = u16::try_from(i) else { break };
            // SAFETY: this loop alone uses `queue` of every port (new's
            // contract).
            let n = unsafe { self.ports[i].rx_raw(self.queue, &mut self.rx) };
            if n == 0 {
                continue;
            }
            busy = true;
            self.stats[i].rx += n as u64;
            let mut out = TxOut {
                ports: &self.ports,
                queue: self.queue,
                tx: &mut self.tx,
                stats: &mut self.stats,
            };
            // The headers of a received frame are usually not in cache
            // (the NIC wrote them, or the buffer was last used long ago):
            // ask for the next frames' first line while this one is
            // processed.
            for raw in self.rx[..n.min(PREFETCH)].iter() {
                prefetch_data(*raw);
            }
            let rx = &self.rx[..n];
            let mut chained = 0;
            let frames = rx.iter().enumerate().filter_map(|(k, raw)| {
                if let Some(next) = rx.get(k + PREFETCH) {
                    prefetch_data(*next);
                }
                // SAFETY: rx_burst handed us these n mbufs; each is wrapped
                // exactly once.
                let m = unsafe { Mbuf::from_raw(*raw) }?;
                if m.segments() != 1 {
                    chained += 1;
                    return None; // freed here
                }
                Some(m)
            });
            // The whole burst at once: the per-frame setup is done once.
            self.worker
                .process_all_with(port, frames, &*self.copies, &mut out);
            out.stats[i].rx_chained += chained;
        }
        for ((buf, p), st) in self
            .tx
            .iter_mut()
            .zip(self.ports.iter())
            .zip(self.stats.iter_mut())
        {
            buf.flush(p, self.queue, st);
        }
        if busy {
            Poll::Busy
        } else {
            Poll::Idle
        }
    }

    /// This loop's per-port counters so far, without copying them.
    pub fn port_stats(&self) -> &[PortLoopStats] {
        &self.stats
    }

    /// This loop's counters so far.
    pub fn stats(&self) -> LoopStats {
        LoopStats {
            ports: self.stats.clone(),
            ..LoopStats::default()
        }
    }
}

impl Drop for DpdkLoop {
    fn drop(&mut self) {
        for buf in &mut self.tx {
            for m in &buf.pkts[..buf.n] {
                // SAFETY: pkts[..n] are owned mbufs (TxBuf invariant).
                drop(unsafe { Mbuf::from_raw(*m) });
            }
            buf.n = 0;
        }
    }
}

/// The VTEP on DPDK ports, assembled from a configuration whose ports are
/// all `kind = "dpdk"`: EAL started with `[dpdk] eal_args`, one mempool,
/// every port opened with one queue per worker.
pub struct DpdkVtep {
    eal: &'static Eal,
    shared: Arc<VtepShared>,
    ports: Vec<Arc<EthPort>>,
    pool: Arc<Mempool>,
    workers: u16,
    factory: RemoteFactory,
}

fn cfg_err<T>(key: impl Into<String>, e: impl std::fmt::Display) -> Result<T, ConfigError> {
    Err(ConfigError {
        key: key.into(),
        message: e.to_string(),
    })
}

impl DpdkVtep {
    /// Starts EAL (once per process), creates the mempool, opens and
    /// starts every port, and builds the VTEP. Errors name the key.
    pub fn from_config(cfg: &VtepConfig) -> Result<DpdkVtep, ConfigError> {
        let section = cfg.dpdk.clone().unwrap_or_default();
        let eal = Eal::init(&section.eal_args).or_else(|e| cfg_err("dpdk.eal_args", e))?;
        let Ok(workers) = u16::try_from(cfg.vtep.workers) else {
            return cfg_err("vtep.workers", "too many workers");
        };
        let pool = Mempool::new(eal, "vtep", section.mbufs, 256, 2048 + 128)
            .or_else(|e| cfg_err("dpdk.mbufs", e))?;
        // As build::snapshot: an underlay only in overlay mode.
        let underlay = cfg
            .underlay
            .as_ref()
            .filter(|_| cfg.vtep.mode == BridgeMode::Overlay)
            .and_then(|u| cfg.port_index(&u.port));
        let mut ports = Vec::with_capacity(cfg.ports.len());
        for (i, p) in cfg.ports.iter().enumerate() {
            if p.kind != PortKind::Dpdk {
                return cfg_err(
                    format!("port[{i}].kind"),
                    "a VTEP with dpdk ports needs every port to be kind = \"dpdk\"",
                );
            }
            let device = p.device.as_deref().unwrap_or_default();
            // The underlay sends only the VTEP's own VXLAN frames: the
            // device may compute their IPv4 header and UDP checksums.
            // Tenant frames on access ports leave untouched.
            let port_cfg = EthPortConfig {
                queues: workers,
                tx_ipv4_checksum: Some(i) == underlay,
                tx_udp_checksum: Some(i) == underlay,
                ..EthPortConfig::default()
            };
            let port = EthPort::open(eal, device, &port_cfg, &pool)
                .or_else(|e| cfg_err(format!("port[{i}].device"), e))?;
            ports.push(Arc::new(port));
        }
        // The VTEP's own buffer pool is unused on DPDK ports (mbufs come
        // from the mempool); keep it minimal.
        let unused = Pool::new(1, 256, 128).or_else(|e| cfg_err("", e))?;
        // The templates leave to the underlay device the checksums it
        // offers to compute (every encapsulated frame leaves by it).
        let mut factory = RemoteFactory::from_config(cfg);
        if let Some(u) = underlay.and_then(|u| ports.get(u)) {
            factory.tx_offload = u.tx_checksum_offload();
        }
        let shared = crate::build::vtep_with(cfg, unused, &factory)?;
        Ok(DpdkVtep {
            eal,
            shared,
            ports,
            pool,
            workers,
            factory,
        })
    }

    /// What builds this VTEP's remote templates: the configuration's, with
    /// the underlay port's transmit checksum offloads
    /// ([`RemoteFactory::tx_offload`]). A control socket that adds or
    /// rebuilds remotes should use it
    /// ([`Control::new`](crate::control::Control::new)), so that their
    /// frames also leave their checksums to the device.
    pub fn remote_factory(&self) -> RemoteFactory {
        self.factory
    }

    /// The running EAL.
    pub fn eal(&self) -> &'static Eal {
        self.eal
    }

    /// The VTEP's shared state (counters, FDB).
    pub fn shared(&self) -> &Arc<VtepShared> {
        &self.shared
    }

    /// The ports, in configuration order.
    pub fn ports(&self) -> &[Arc<EthPort>] {
        &self.ports
    }

    /// The mempool every mbuf comes from.
    pub fn mempool(&self) -> &Arc<Mempool> {
        &self.pool
    }

    /// Runs one worker per queue until `stop` is set: on EAL's worker
    /// lcores when EAL has one per worker (`-l 0-N` with N >= workers;
    /// each pinned to its CPU), else on threads registered with EAL. The
    /// calling thread drives the VTEP's clock and the FDB's ageing
    /// meanwhile. Returns the loops' counters, merged.
    pub fn run(&self, stop: &AtomicBool) -> Result<LoopStats, DpdkError> {
        type Job<'a> = Box<dyn FnOnce() -> Result<LoopStats, DpdkError> + Send + 'a>;
        let lcores = self.eal.worker_lcores();
        let on_lcores = lcores.len() >= usize::from(self.workers);
        let jobs: Vec<Job<'_>> = (0..self.workers)
            .map(|q| -> Job<'_> {
                let worker = self.shared.worker(usize::from(q));
                let ports = self.ports.clone();
                let copies = Arc::clone(&self.pool);
                let eal = self.eal;
                Box::new(move || {
                    if !on_lcores {
                        eal.register_thread()?;
                    }
                    let lcore = eal.lcore_id();
                    // SAFETY: worker q alone uses queue q of every port;
                    // the ports outlive the run (run joins every worker).
                    let mut lp = unsafe { DpdkLoop::new(worker, ports, q, copies) };
                    let mut idle = 0u32;
                    // Acquire: pairs with the Release store that stops
                    // the run.
                    while !stop.load(Ordering::Acquire) {
                        match lp.poll() {
                            Poll::Busy => idle = 0,
                            Poll::Idle => {
                                idle += 1;
                                if idle >= 1024 && !on_lcores {
                                    // Share the core when idle (more
                                    // pollers than cores); an EAL lcore
                                    // owns its CPU.
                                    std::thread::yield_now();
                                    idle = 0;
                                }
                            }
                        }
                    }
                    let mut stats = lp.stats();
                    stats.lcores.push(lcore);
                    drop(lp);
                    if !on_lcores {
                        eal.unregister_thread();
                    }
                    Ok(stats)
                })
            })
            .collect();
        let results: Vec<std::thread::Result<Result<LoopStats, DpdkError>>> = if on_lcores {
            let (launched, started) = self.eal.launch(&lcores, jobs);
            if started.is_ok() {
                self.drive_clock(stop, || false);
            }
            // Release: the workers' Acquire loads see it.
            stop.store(true, Ordering::Release);
            let results = launched.join();
            started?;
            results
        } else {
            std::thread::scope(|s| {
                let mut handles = Vec::with_capacity(jobs.len());
                for (q, job) in jobs.into_iter().enumerate() {
                    match std::thread::Builder::new()
                        .name(format!("vtep-dpdk-{q}"))
                        .spawn_scoped(s, job)
                    {
                        Ok(h) => handles.push(h),
                        Err(e) => {
                            stop.store(true, Ordering::Release);
                            return Err(DpdkError::msg("spawning a worker", e.to_string()));
                        }
                    }
                }
                // A worker that failed to start ends the run.
                self.drive_clock(stop, || handles.iter().any(|h| h.is_finished()));
                stop.store(true, Ordering::Release);
                Ok(handles.into_iter().map(|h| h.join()).collect())
            })?
        };
        let mut total = LoopStats {
            on_eal_lcores: on_lcores,
            ..LoopStats::default()
        };
        for r in results {
            match r {
                Ok(Ok(s)) => total.merge(&s),
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(DpdkError::msg("worker", "panicked")),
            }
        }
        Ok(total)
    }

    /// Sets the VTEP's clock and ages the FDB every 10 ms until `stop` is
    /// set or `done` says so.
    fn drive_clock(&self, stop: &AtomicBool, done: impl Fn() -> bool) {
        let start = Instant::now();
        // Acquire: pairs with whoever sets stop.
        while !stop.load(Ordering::Acquire) && !done() {
            let secs = u32::try_from(start.elapsed().as_secs()).unwrap_or(u32::MAX);
            self.shared.set_now(secs);
            let _ = self
                .shared
                .fdb()
                .age_step(secs, 1024, &mut vxlan_core::fdb::NoEvents);
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
