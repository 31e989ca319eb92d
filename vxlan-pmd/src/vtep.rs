//! The VTEP: vxlan-core's bridging decisions carried out on pool buffers.
//!
//! [`VtepShared`] holds what every worker shares: the lock-free FDB and
//! neighbour table, the pool, per-core counters, a coarse clock, and the
//! switching configuration as an immutable [`Snapshot`] behind an
//! `ArcSwap`. The control thread changes the configuration by publishing a
//! new snapshot ([`VtepShared::update`]); a worker picks it up at its next
//! burst and never waits.
//!
//! [`VtepWorker::process`] takes one received frame and its ingress port
//! and hands every resulting frame to an [`Output`] (per-port transmit
//! bursts, in the poll loop): local delivery with VLAN push, encapsulation
//! toward a remote VTEP, head-end replication with copies from the pool, a
//! suppressed ARP/ND reply, or a counted drop. Nothing on this path
//! allocates or locks; a copy the pool cannot give is a counted drop.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use vxlan_core::bridge::{BdConfig, Bridge, BridgeConfigError, BridgeDrop, Forward, PortMode};
use vxlan_core::decap::DecapConfig;
use vxlan_core::encap::{EncapDrop, EncapTemplate};
use vxlan_core::fdb::{BdCounter, ColdSlot, Fdb, FdbConfig, FdbConfigError, NoEvents, Slot};
use vxlan_core::frame::Frame;
use vxlan_core::neigh::{NeighSlot, NeighTable};
use vxlan_core::pmtu::too_big_reply;

use crate::pool::{PktBuf, Pool};
use crate::port::Burst;
use crate::stats::{Counter, CounterSet, PerCore};

/// A remote VTEP: its address and the prebuilt outer header toward it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteVtep {
    /// Underlay address.
    pub ip: IpAddr,
    /// Outer header template.
    pub template: EncapTemplate,
}

/// The switching configuration, replaced whole on change.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Port modes, indexed by port number.
    pub ports: Vec<PortMode>,
    /// Bridge domains, indexed by bridge-domain number.
    pub bds: Vec<BdConfig>,
    /// Remote VTEPs, indexed as flood lists and FDB entries name them.
    pub remotes: Vec<RemoteVtep>,
    /// What decapsulation accepts.
    pub decap: DecapConfig,
    /// The underlay port, when there is an overlay.
    pub underlay: Option<u16>,
    /// Answer ARP and ND requests from snooped bindings.
    pub suppress_arp_nd: bool,
}

impl Snapshot {
    /// The index of the remote VTEP at `ip`.
    pub fn remote_index(&self, ip: IpAddr) -> Option<u32> {
        self.remotes
            .iter()
            .position(|r| r.ip == ip)
            .and_then(|i| u32::try_from(i).ok())
    }
}

/// Why a VTEP could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VtepError {
    /// The FDB refused its sizing.
    Fdb(FdbConfigError),
    /// The bridge refused the port / bridge-domain configuration.
    Bridge(BridgeConfigError),
    /// A flood list or FDB entry names a remote index that does not exist.
    UnknownRemote(u32),
}

impl std::fmt::Display for VtepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VtepError::Fdb(e) => write!(f, "FDB: {e}"),
            VtepError::Bridge(e) => write!(f, "bridge: {e}"),
            VtepError::UnknownRemote(r) => write!(f, "remote VTEP index {r} is not configured"),
        }
    }
}

impl std::error::Error for VtepError {}

/// Named per-core counters. Drops are counted by reason.
#[derive(Debug, Default)]
pub struct VtepCounters {
    /// Frames processed.
    pub rx: Counter,
    /// Frames delivered to a local port (copies included).
    pub tx_local: Counter,
    /// Frames encapsulated toward a remote VTEP (copies included).
    pub tx_remote: Counter,
    /// Frames that were flooded (once per original frame).
    pub flooded: Counter,
    /// Copies sent by flooding (local and remote).
    pub flood_copies: Counter,
    /// ARP/ND requests answered locally.
    pub suppressed: Counter,
    /// Underlay frames that were not VXLAN (the host's).
    pub host: Counter,
    /// Path-MTU errors sent back to tenants.
    pub pmtu_replies: Counter,
    /// Drops: the pool had no buffer for a copy.
    pub drop_pool_empty: Counter,
    /// Drops: the encapsulated frame would exceed the underlay MTU.
    pub drop_too_big: Counter,
    /// Drops: other encapsulation failures (headroom, VNI).
    pub drop_encap: Counter,
    /// Drops: the remote VTEP's next-hop MAC is not resolved yet.
    pub drop_nexthop_unresolved: Counter,
    /// Drops by bridge reason, indexed by [`drop_index`].
    pub drop_bridge: [Counter; DROP_REASONS],
}

/// How many bridge drop reasons are counted apart.
pub const DROP_REASONS: usize = 9;

/// The counter index of a bridge drop reason (decap reasons share one
/// slot each by kind).
pub fn drop_index(d: &BridgeDrop) -> usize {
    match d {
        BridgeDrop::UnknownPort => 0,
        BridgeDrop::BadFrame => 1,
        BridgeDrop::VlanNotAllowed => 2,
        BridgeDrop::UnknownVni => 3,
        BridgeDrop::SamePort => 4,
        BridgeDrop::SplitHorizon => 5,
        BridgeDrop::BadSourceMac => 6,
        BridgeDrop::Decap(vxlan_core::decap::DecapDrop::Parse(_)) => 7,
        BridgeDrop::Decap(_) => 8,
    }
}

/// The names of [`drop_index`]'s slots.
pub const DROP_NAMES: [&str; DROP_REASONS] = [
    "unknown_port",
    "bad_frame",
    "vlan_not_allowed",
    "unknown_vni",
    "same_port",
    "split_horizon",
    "bad_source_mac",
    "decap_parse",
    "decap_check",
];

/// A plain copy of [`VtepCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VtepStats {
    /// See [`VtepCounters::rx`].
    pub rx: u64,
    /// See [`VtepCounters::tx_local`].
    pub tx_local: u64,
    /// See [`VtepCounters::tx_remote`].
    pub tx_remote: u64,
    /// See [`VtepCounters::flooded`].
    pub flooded: u64,
    /// See [`VtepCounters::flood_copies`].
    pub flood_copies: u64,
    /// See [`VtepCounters::suppressed`].
    pub suppressed: u64,
    /// See [`VtepCounters::host`].
    pub host: u64,
    /// See [`VtepCounters::pmtu_replies`].
    pub pmtu_replies: u64,
    /// See [`VtepCounters::drop_pool_empty`].
    pub drop_pool_empty: u64,
    /// See [`VtepCounters::drop_too_big`].
    pub drop_too_big: u64,
    /// See [`VtepCounters::drop_encap`].
    pub drop_encap: u64,
    /// See [`VtepCounters::drop_nexthop_unresolved`].
    pub drop_nexthop_unresolved: u64,
    /// See [`VtepCounters::drop_bridge`].
    pub drop_bridge: [u64; DROP_REASONS],
}

impl VtepStats {
    /// Every drop, all reasons.
    pub fn drops(&self) -> u64 {
        self.drop_pool_empty
            + self.drop_too_big
            + self.drop_encap
            + self.drop_nexthop_unresolved
            + self.drop_bridge.iter().sum::<u64>()
    }
}

impl std::ops::AddAssign for VtepStats {
    fn add_assign(&mut self, o: VtepStats) {
        self.rx += o.rx;
        self.tx_local += o.tx_local;
        self.tx_remote += o.tx_remote;
        self.flooded += o.flooded;
        self.flood_copies += o.flood_copies;
        self.suppressed += o.suppressed;
        self.host += o.host;
        self.pmtu_replies += o.pmtu_replies;
        self.drop_pool_empty += o.drop_pool_empty;
        self.drop_too_big += o.drop_too_big;
        self.drop_encap += o.drop_encap;
        self.drop_nexthop_unresolved += o.drop_nexthop_unresolved;
        for (a, b) in self.drop_bridge.iter_mut().zip(o.drop_bridge) {
            *a += b;
        }
    }
}

impl CounterSet for VtepCounters {
    type Snapshot = VtepStats;
    fn snapshot(&self) -> VtepStats {
        let mut drop_bridge = [0; DROP_REASONS];
        for (d, c) in drop_bridge.iter_mut().zip(&self.drop_bridge) {
            *d = c.get();
        }
        VtepStats {
            rx: self.rx.get(),
            tx_local: self.tx_local.get(),
            tx_remote: self.tx_remote.get(),
            flooded: self.flooded.get(),
            flood_copies: self.flood_copies.get(),
            suppressed: self.suppressed.get(),
            host: self.host.get(),
            pmtu_replies: self.pmtu_replies.get(),
            drop_pool_empty: self.drop_pool_empty.get(),
            drop_too_big: self.drop_too_big.get(),
            drop_encap: self.drop_encap.get(),
            drop_nexthop_unresolved: self.drop_nexthop_unresolved.get(),
            drop_bridge,
        }
    }
}

/// One worker's counters for one bridge domain (VNI). Aligned to a cache
/// line so that no two workers' counters share one (each worker's array is
/// its own allocation, and every element fills whole lines).
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct BdCounters {
    /// Frames switched into this VNI from a local port.
    pub from_access: Counter,
    /// Frames decapsulated into this VNI from the overlay.
    pub from_overlay: Counter,
    /// Frames delivered to local ports of this VNI (copies included).
    pub to_local: Counter,
    /// Frames encapsulated for this VNI (copies included).
    pub to_remote: Counter,
    /// Frames flooded in this VNI (once per original frame).
    pub flooded: Counter,
}

/// A plain copy of [`BdCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BdStats {
    /// See [`BdCounters::from_access`].
    pub from_access: u64,
    /// See [`BdCounters::from_overlay`].
    pub from_overlay: u64,
    /// See [`BdCounters::to_local`].
    pub to_local: u64,
    /// See [`BdCounters::to_remote`].
    pub to_remote: u64,
    /// See [`BdCounters::flooded`].
    pub flooded: u64,
}

impl std::ops::AddAssign for BdStats {
    fn add_assign(&mut self, o: BdStats) {
        self.from_access += o.from_access;
        self.from_overlay += o.from_overlay;
        self.to_local += o.to_local;
        self.to_remote += o.to_remote;
        self.flooded += o.flooded;
    }
}

impl BdCounters {
    fn snapshot(&self) -> BdStats {
        BdStats {
            from_access: self.from_access.get(),
            from_overlay: self.from_overlay.get(),
            to_local: self.to_local.get(),
            to_remote: self.to_remote.get(),
            flooded: self.flooded.get(),
        }
    }
}

/// Where [`VtepWorker::process`] puts the frames it sends. `F` is the
/// frame type: pool buffers by default, DPDK mbufs with the `dpdk`
/// feature.
pub trait Output<F = PktBuf> {
    /// Queues `pkt` for transmission on `port`.
    fn send(&mut self, port: u16, pkt: F);
}

/// Where flooding takes its copies and a path-MTU reply its buffer, for
/// frames of type `F` ([`VtepWorker::process_with`]). Neither call may
/// block or allocate from the heap; `None` is a counted drop.
pub trait FrameSource<F> {
    /// A copy of `src` (bytes, headroom where it fits, RSS hash, ingress
    /// port), or `None` when the pool is empty.
    fn copy_of(&self, src: &F) -> Option<F>;
    /// A fresh frame holding `data`, or `None` when the pool is empty or
    /// `data` does not fit.
    fn with_data(&self, data: &[u8]) -> Option<F>;
}

impl FrameSource<PktBuf> for Arc<Pool> {
    #[inline]
    fn copy_of(&self, src: &PktBuf) -> Option<PktBuf> {
        self.alloc_copy(src)
    }
    #[inline]
    fn with_data(&self, data: &[u8]) -> Option<PktBuf> {
        self.alloc_with(data)
    }
}

/// Sizing for [`VtepShared::new`].
#[derive(Debug, Clone, Copy)]
pub struct Sizing {
    /// FDB entries (slots are sized for load 1/2).
    pub fdb_entries: u32,
    /// Neighbour-table bindings.
    pub neighbors: usize,
    /// Worker threads (counter slots).
    pub workers: usize,
    /// Learned entries age after this many ticks (seconds).
    pub ageing: u32,
}

impl Default for Sizing {
    fn default() -> Self {
        Sizing {
            fdb_entries: 65_536,
            neighbors: 65_536,
            workers: 1,
            ageing: 300,
        }
    }
}

/// What every worker and the control thread share.
pub struct VtepShared {
    fdb: Fdb<'static>,
    neigh: NeighTable<'static>,
    snapshot: ArcSwap<Snapshot>,
    /// Bumped after every store to `snapshot`, so a worker checks for a new
    /// configuration with one plain load per burst instead of an `ArcSwap`
    /// load.
    generation: AtomicU64,
    pool: Arc<Pool>,
    counters: PerCore<VtepCounters>,
    /// Per worker, per bridge domain (as many as the first snapshot has;
    /// bridge domains added later are not counted apart).
    bd_counters: Box<[Arc<[BdCounters]>]>,
    /// Seconds since start, set by whoever drives the clock.
    now: AtomicU32,
}

impl VtepShared {
    /// Builds the shared state. The FDB and neighbour storage are
    /// allocated here, once, and live as long as the process (an appliance
    /// sizes them at start; they are never freed or grown).
    pub fn new(
        snapshot: Snapshot,
        pool: Arc<Pool>,
        sizing: Sizing,
    ) -> Result<Arc<VtepShared>, VtepError> {
        check_snapshot(&snapshot)?;
        let slots = usize::try_from(sizing.fdb_entries)
            .unwrap_or(usize::MAX)
            .saturating_mul(2)
            .max(64);
        let bds = snapshot.bds.len().clamp(1, 4096);
        let storage: &'static [Slot] = Box::leak((0..slots).map(|_| Slot::new()).collect());
        let cold: &'static [ColdSlot] = Box::leak((0..slots).map(|_| ColdSlot::new()).collect());
        let counters: &'static [BdCounter] =
            Box::leak((0..bds).map(|_| BdCounter::new()).collect());
        let mut cfg = FdbConfig::new(sizing.fdb_entries);
        cfg.age_time = sizing.ageing;
        let fdb = Fdb::new(storage, cold, counters, cfg).map_err(VtepError::Fdb)?;
        let nslots: &'static [NeighSlot] = Box::leak(
            (0..sizing.neighbors.max(8) * 2)
                .map(|_| NeighSlot::new())
                .collect(),
        );
        let neigh = NeighTable::new(nslots).map_err(|_| VtepError::UnknownRemote(0))?;
        Ok(Arc::new(VtepShared {
            fdb,
            neigh,
            snapshot: ArcSwap::from_pointee(snapshot),
            generation: AtomicU64::new(0),
            pool,
            counters: PerCore::new(sizing.workers.max(1)),
            bd_counters: (0..sizing.workers.max(1))
                .map(|_| (0..bds).map(|_| BdCounters::default()).collect())
                .collect(),
            now: AtomicU32::new(0),
        }))
    }

    /// The FDB (control-plane operations, dumps).
    pub fn fdb(&self) -> &Fdb<'static> {
        &self.fdb
    }

    /// The neighbour table.
    pub fn neighbors(&self) -> &NeighTable<'static> {
        &self.neigh
    }

    /// The configuration now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Publishes a new configuration; workers use it from their next frame.
    pub fn update(&self, snapshot: Snapshot) -> Result<(), VtepError> {
        check_snapshot(&snapshot)?;
        self.snapshot.store(Arc::new(snapshot));
        // Release, after the store: a worker that Acquire-loads the new
        // generation then loads the snapshot sees this one or a newer.
        self.generation.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// The pool.
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// Counters summed over workers.
    pub fn stats(&self) -> VtepStats {
        self.counters.sum()
    }

    /// Counters per worker.
    pub fn stats_per_core(&self) -> Vec<VtepStats> {
        self.counters.iter().collect()
    }

    /// Per-VNI counters: for each worker, one entry per bridge domain (in
    /// [`Snapshot::bds`] order).
    pub fn bd_stats_per_core(&self) -> Vec<Vec<BdStats>> {
        self.bd_counters
            .iter()
            .map(|core| core.iter().map(BdCounters::snapshot).collect())
            .collect()
    }

    /// Sets the clock (seconds).
    pub fn set_now(&self, now: u32) {
        // Relaxed: a coarse timestamp; no other memory depends on it.
        self.now.store(now, Ordering::Relaxed);
    }

    /// The clock (seconds).
    pub fn now(&self) -> u32 {
        self.now.load(Ordering::Relaxed)
    }

    /// A worker handle for counter slot `id`.
    pub fn worker(self: &Arc<Self>, id: usize) -> VtepWorker {
        let id = id.min(self.counters.len() - 1);
        // Acquire: see `update`. Read before the snapshot, so a store in
        // between is picked up at the next refresh.
        let generation = self.generation.load(Ordering::Acquire);
        VtepWorker {
            generation,
            shared: Arc::clone(self),
            id,
            bd_stats: self
                .bd_counters
                .get(id)
                .map_or_else(|| Arc::from(Vec::new()), Arc::clone),
            snap: self.snapshot.load_full(),
        }
    }
}

fn check_snapshot(s: &Snapshot) -> Result<(), VtepError> {
    // The same checks the bridge makes, without an FDB at hand.
    let slots = [
        Slot::new(),
        Slot::new(),
        Slot::new(),
        Slot::new(),
        Slot::new(),
        Slot::new(),
        Slot::new(),
        Slot::new(),
    ];
    let cold = [
        ColdSlot::new(),
        ColdSlot::new(),
        ColdSlot::new(),
        ColdSlot::new(),
        ColdSlot::new(),
        ColdSlot::new(),
        ColdSlot::new(),
        ColdSlot::new(),
    ];
    let bdc: Vec<BdCounter> = (0..s.bds.len().max(1)).map(|_| BdCounter::new()).collect();
    let fdb = Fdb::new(&slots, &cold, &bdc, FdbConfig::new(4)).map_err(VtepError::Fdb)?;
    Bridge::new(&s.ports, &s.bds, &fdb).map_err(VtepError::Bridge)?;
    let n = u32::try_from(s.remotes.len()).unwrap_or(u32::MAX);
    for bd in &s.bds {
        if let Some(r) = bd.flood.as_slice().iter().find(|r| **r >= n) {
            return Err(VtepError::UnknownRemote(*r));
        }
    }
    Ok(())
}

/// One worker's view: its counter slot and its current snapshot.
pub struct VtepWorker {
    shared: Arc<VtepShared>,
    id: usize,
    /// This worker's per-VNI counters (its slot of the shared ones).
    bd_stats: Arc<[BdCounters]>,
    snap: Arc<Snapshot>,
    /// [`VtepShared::generation`] when `snap` was loaded.
    generation: u64,
}

impl VtepWorker {
    /// Takes up a newer configuration, if one was published. Call once per
    /// burst.
    #[inline]
    pub fn refresh(&mut self) {
        // Acquire: pairs with the Release bump in `update`, so the snapshot
        // loaded below is at least the one that bump announced.
        let generation = self.shared.generation.load(Ordering::Acquire);
        if generation != self.generation {
            self.generation = generation;
            self.snap = self.shared.snapshot.load_full();
        }
    }

    /// The VTEP's pool (where [`process`](Self::process) takes flood
    /// copies).
    pub fn pool(&self) -> &Arc<Pool> {
        &self.shared.pool
    }

    /// This worker's counters for bridge domain `bd`, if it is counted.
    #[inline]
    fn bd_counters(&self, bd: u16) -> Option<&BdCounters> {
        self.bd_stats.get(usize::from(bd))
    }

    fn counters(&self) -> &VtepCounters {
        // `id` was clamped to the slots when the worker was made.
        self.shared
            .counters
            .get(self.id)
            .unwrap_or_else(|| unreachable!("worker id within counter slots"))
    }

    /// Processes one frame received on `port`; copies for flooding come
    /// from the VTEP's pool.
    #[inline]
    pub fn process<O: Output>(&mut self, port: u16, pkt: PktBuf, out: &mut O) {
        self.process_with(port, pkt, &self.shared.pool, out);
    }

    /// Processes every frame of `burst`, all received on `port`, in order,
    /// leaving the burst empty: what [`process`](Self::process) does for
    /// each, with the per-frame setup (configuration, clock, counter slot)
    /// done once for the burst.
    #[inline]
    pub fn process_burst<O: Output>(&mut self, port: u16, burst: &mut Burst, out: &mut O) {
        self.process_vec_with(port, burst.frames_mut(), &self.shared.pool, out);
    }

    /// Processes one frame of any frame type received on `port`, in place
    /// (zero copy); flood copies and path-MTU replies come from `source`.
    /// This is what DPDK mbufs go through.
    pub fn process_with<F: Frame, S: FrameSource<F>, O: Output<F>>(
        &self,
        port: u16,
        mut pkt: F,
        source: &S,
        out: &mut O,
    ) {
        let ctx = self.burst_ctx(port);
        ctx.c.rx.incr();
        let to = if ctx.from_overlay {
            self.process_one::<true, _, _, _>(&ctx, port, &mut pkt, source, out)
        } else {
            self.process_one::<false, _, _, _>(&ctx, port, &mut pkt, source, out)
        };
        if let Some(p) = to {
            out.send(p, pkt);
        }
    }

    /// [`process_with`](Self::process_with) for each of `frames`, all
    /// received on `port`, in order, with the per-frame setup done once.
    /// The frames are counted as received when the burst is done, so a
    /// reader of the live counters may for a moment see a burst's
    /// transmits and drops before its receives.
    pub fn process_all_with<F: Frame, S: FrameSource<F>, O: Output<F>>(
        &self,
        port: u16,
        frames: impl Iterator<Item = F>,
        source: &S,
        out: &mut O,
    ) {
        let ctx = self.burst_ctx(port);
        // One loop per direction, each with its own copy of the frame's
        // path, so that neither is compiled around the other's.
        let n = if ctx.from_overlay {
            self.burst_loop::<true, _, _, _>(&ctx, port, frames, source, out)
        } else {
            self.burst_loop::<false, _, _, _>(&ctx, port, frames, source, out)
        };
        ctx.c.rx.add(n);
    }

    /// [`process_all_with`](Self::process_all_with) for the frames of
    /// `frames`, leaving it empty (its storage in place). Each frame is
    /// decided on where it lies and moved once, straight from `frames` to
    /// the output, instead of out of the vector first, through the
    /// decision and into the output (a `PktBuf` is a cache line; those
    /// moves were three copies of it per frame).
    pub fn process_vec_with<F: Frame, S: FrameSource<F>, O: Output<F>>(
        &self,
        port: u16,
        frames: &mut Vec<F>,
        source: &S,
        out: &mut O,
    ) {
        let ctx = self.burst_ctx(port);
        let n = if ctx.from_overlay {
            self.vec_loop::<true, _, _, _>(&ctx, port, frames, source, out)
        } else {
            self.vec_loop::<false, _, _, _>(&ctx, port, frames, source, out)
        };
        ctx.c.rx.add(n);
    }

    /// The loop of [`process_all_with`](Self::process_all_with) for one
    /// direction; returns how many frames it processed. Out of line (called
    /// once per burst): a function of its own, not inlined into the poll
    /// loop's, so that its registers go to the frame's path.
    #[inline(never)]
    fn burst_loop<const OVERLAY: bool, F: Frame, S: FrameSource<F>, O: Output<F>>(
        &self,
        ctx: &BurstCtx<'_>,
        port: u16,
        frames: impl Iterator<Item = F>,
        source: &S,
        out: &mut O,
    ) -> u64 {
        let mut n = 0u64;
        for mut pkt in frames {
            n += 1;
            if let Some(p) = self.process_one::<OVERLAY, _, _, _>(ctx, port, &mut pkt, source, out)
            {
                out.send(p, pkt);
            }
        }
        n
    }

    /// The loop of [`process_vec_with`](Self::process_vec_with) for one
    /// direction, out of line as [`burst_loop`](Self::burst_loop) is;
    /// returns how many frames it processed.
    #[inline(never)]
    fn vec_loop<const OVERLAY: bool, F: Frame, S: FrameSource<F>, O: Output<F>>(
        &self,
        ctx: &BurstCtx<'_>,
        port: u16,
        frames: &mut Vec<F>,
        source: &S,
        out: &mut O,
    ) -> u64 {
        let n = frames.len();
        let base = frames.as_mut_ptr();
        // SAFETY: a length of 0 is within the capacity, and it only hides
        // initialised elements: the vector gives up its `n` frames first,
        // so that each is owned by this loop alone and moved or dropped
        // exactly once below (a panic in between could only leak the
        // frames not yet taken, never drop one twice). The buffer stays
        // where it is: nothing below touches `frames`, and `out` cannot
        // be it (both are exclusive borrows).
        unsafe { frames.set_len(0) };
        for i in 0..n {
            // SAFETY: `i < n`, and the first `n` elements were initialised
            // frames that the vector gave up above; each is visited once.
            let slot = unsafe { base.add(i) };
            // SAFETY: as above; the reference lives only for this call.
            let to =
                self.process_one::<OVERLAY, _, _, _>(ctx, port, unsafe { &mut *slot }, source, out);
            match to {
                // SAFETY: the frame at `slot` is read (moved out) once,
                // here, and never touched again.
                Some(p) => out.send(p, unsafe { std::ptr::read(slot) }),
                // SAFETY: the frame is dropped once, here, and never
                // touched again.
                None => unsafe { std::ptr::drop_in_place(slot) },
            }
        }
        u64::try_from(n).unwrap_or(u64::MAX)
    }

    /// What processing a frame from `port` needs that does not change
    /// within a burst.
    #[inline(always)]
    fn burst_ctx(&self, port: u16) -> BurstCtx<'_> {
        let shared = &*self.shared;
        let snap = &*self.snap;
        BurstCtx {
            snap,
            c: self.counters(),
            // The snapshot was checked when it was published.
            bridge: Bridge::new_unchecked(&snap.ports, &snap.bds, &shared.fdb),
            now: shared.now(),
            neigh: if snap.suppress_arp_nd {
                Some(&shared.neigh)
            } else {
                None
            },
            from_overlay: Some(port) == snap.underlay,
        }
    }

    /// One frame, with the burst's context; `OVERLAY` is
    /// `ctx.from_overlay`. The frame is decided on and edited where it
    /// lies; `Some(port)` asks the caller to send it there, `None` to drop
    /// it (flood copies and replies from `source` are sent here).
    #[inline(always)]
    fn process_one<const OVERLAY: bool, F: Frame, S: FrameSource<F>, O: Output<F>>(
        &self,
        ctx: &BurstCtx<'_>,
        port: u16,
        pkt: &mut F,
        source: &S,
        out: &mut O,
    ) -> Option<u16> {
        let BurstCtx {
            snap,
            c,
            ref bridge,
            now,
            neigh,
            from_overlay: _,
        } = *ctx;
        let from_overlay = OVERLAY;
        let decision = if from_overlay {
            bridge
                .from_overlay(
                    pkt,
                    &snap.decap,
                    now,
                    &mut NoEvents,
                    |ip| snap.remote_index(ip),
                    neigh,
                )
                .0
        } else {
            bridge.from_access(pkt, port, now, &mut NoEvents, neigh)
        };
        // Per-VNI counting: the frame entered bridge domain `bd`.
        let entered = |bd: u16| {
            let b = self.bd_counters(bd);
            if let Some(b) = b {
                if from_overlay {
                    b.from_overlay.incr();
                } else {
                    b.from_access.incr();
                }
            }
            b
        };
        match decision {
            Forward::Port { port: p, vid, bd } => {
                if let Some(b) = entered(bd) {
                    b.to_local.incr();
                }
                if push_vid(pkt, vid) {
                    c.tx_local.incr();
                    Some(p)
                } else {
                    c.drop_encap.incr();
                    None
                }
            }
            Forward::Reply { port: p, vid } => {
                if let Some(bd) = snap.ports.get(usize::from(p)).and_then(|m| m.bd_for(vid)) {
                    entered(bd);
                }
                if push_vid(pkt, vid) {
                    c.suppressed.incr();
                    Some(p)
                } else {
                    None
                }
            }
            Forward::Remote { remote, vni, bd } => {
                let b = entered(bd);
                self.encap_to(c, remote, vni, b, pkt, port, source, out)
            }
            Forward::Flood {
                bd,
                except_port,
                to_overlay,
            } => {
                c.flooded.incr();
                let b = entered(bd);
                if let Some(b) = b {
                    b.flooded.incr();
                }
                for (p, vid) in bridge.flood_ports(bd, except_port) {
                    if Some(p) == snap.underlay {
                        continue;
                    }
                    match source.copy_of(pkt) {
                        Some(mut copy) => {
                            if push_vid(&mut copy, vid) {
                                c.flood_copies.incr();
                                c.tx_local.incr();
                                if let Some(b) = b {
                                    b.to_local.incr();
                                }
                                out.send(p, copy);
                            }
                        }
                        None => c.drop_pool_empty.incr(),
                    }
                }
                if to_overlay {
                    if let Some(cfg) = bridge.bd(bd) {
                        for &remote in cfg.flood.as_slice() {
                            match source.copy_of(pkt) {
                                Some(mut copy) => {
                                    c.flood_copies.incr();
                                    if let Some(underlay) = self.encap_to(
                                        c, remote, cfg.vni, b, &mut copy, port, source, out,
                                    ) {
                                        out.send(underlay, copy);
                                    }
                                }
                                None => c.drop_pool_empty.incr(),
                            }
                        }
                    }
                }
                // The original goes back to the pool (the caller drops
                // it).
                None
            }
            Forward::Host => {
                c.host.incr();
                None
            }
            Forward::Drop(reason) => {
                c.drop_bridge[drop_index(&reason)].incr();
                None
            }
        }
    }

    /// Encapsulates `pkt` in place toward `remote`, counting it: `Some`
    /// with the underlay port to send it on, `None` when it is dropped (the
    /// caller then drops it; a path-MTU reply may have been sent). The
    /// frame is borrowed, not moved: the caller's is sent as it is, with no
    /// copy of it in between.
    // The frame, where it goes and where it came from, plus the two sinks:
    // grouping them would only move the argument list into a struct.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn encap_to<F: Frame, S: FrameSource<F>, O: Output<F>>(
        &self,
        c: &VtepCounters,
        remote: u32,
        vni: u32,
        bd: Option<&BdCounters>,
        pkt: &mut F,
        ingress: u16,
        source: &S,
        out: &mut O,
    ) -> Option<u16> {
        let (Some(r), Some(underlay)) = (
            self.snap
                .remotes
                .get(usize::try_from(remote).unwrap_or(usize::MAX)),
            self.snap.underlay,
        ) else {
            c.drop_encap.incr();
            return None;
        };
        if r.template.next_hop_mac().is_zero() {
            // No next hop yet (being resolved): sending to MAC zero would
            // only be dropped by the next switch.
            c.drop_nexthop_unresolved.incr();
            return None;
        }
        match r.template.encap_flow(pkt, vni) {
            Ok(()) => {
                c.tx_remote.incr();
                if let Some(b) = bd {
                    b.to_remote.incr();
                }
                Some(underlay)
            }
            Err(EncapDrop::TooBig { .. }) => {
                c.drop_too_big.incr();
                // Tell the sender its path MTU, from a fresh buffer.
                let l2 = vxlan_core::wire::L2Header::parse(pkt.data())
                    .map(|h| h.header_len())
                    .unwrap_or(14);
                let mtu = r.template.inner_ip_mtu(l2);
                let mut tmp = [0u8; 1400];
                if let Ok(n) = too_big_reply(pkt.data(), mtu, &mut tmp) {
                    match source.with_data(&tmp[..n]) {
                        Some(reply) => {
                            c.pmtu_replies.incr();
                            out.send(ingress, reply);
                        }
                        None => c.drop_pool_empty.incr(),
                    }
                }
                None
            }
            Err(_) => {
                c.drop_encap.incr();
                None
            }
        }
    }
}

/// What [`VtepWorker::process_one`] needs that is the same for every frame
/// of a burst.
#[derive(Clone, Copy)]
struct BurstCtx<'a> {
    snap: &'a Snapshot,
    c: &'a VtepCounters,
    bridge: Bridge<'a>,
    now: u32,
    neigh: Option<&'a dyn vxlan_core::bridge::NeighborTable>,
    /// The frames came in on the underlay port.
    from_overlay: bool,
}

/// Pushes an 802.1Q tag with `vid` (no-op for 0). False when there is no
/// headroom.
fn push_vid<F: Frame>(f: &mut F, vid: u16) -> bool {
    if vid == 0 {
        return true;
    }
    if f.prepend(4).is_err() {
        return false;
    }
    let d = f.data_mut();
    d.copy_within(4..16, 0);
    d[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
    d[14..16].copy_from_slice(&vid.to_be_bytes());
    true
}
