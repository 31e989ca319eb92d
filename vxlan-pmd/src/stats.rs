//! Counters the packet path can bump without locks or shared cache lines.
//!
//! Every counter here has exactly one writer: the thread that owns the
//! port or the worker slot. Other threads (a stats reader, the control
//! socket) only read. That is what lets [`Counter::add`] be a plain load
//! and store instead of a locked read-modify-write, and lets everything
//! use `Relaxed` ordering: a reader wants an eventually-current number,
//! not an order relative to other memory, and with one writer no update
//! can be lost.
//!
//! [`PerCore`] gives each worker its own cache-padded set of counters and
//! sums them on read.
//!
//! ```
//! use vxlan_pmd::stats::{Counter, PerCore};
//!
//! let per_core: PerCore<Counter> = PerCore::new(2);
//! per_core.get(0).unwrap().add(3); // worker 0's slot
//! per_core.get(1).unwrap().incr(); // worker 1's slot
//! assert_eq!(per_core.sum(), 4);
//! ```

use std::fmt;
use std::ops::AddAssign;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

/// A `u64` counter with a single writer and any number of readers.
///
/// Only one thread may call [`add`](Counter::add) on a given counter (the
/// owner of the port or worker slot it belongs to). A second concurrent
/// writer is not undefined behaviour, but its updates may be lost.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// A counter at zero.
    pub const fn new() -> Self {
        Counter(AtomicU64::new(0))
    }

    /// Adds `n` (wrapping). Single writer only: see the type's docs.
    #[inline]
    pub fn add(&self, n: u64) {
        // Relaxed load + store rather than fetch_add: the owner is the only
        // writer, so nobody can slip an update in between, and a plain store
        // avoids a locked instruction on every packet. Readers need no
        // ordering with other memory, only an untorn value, which the atomic
        // gives them.
        let v = self.0.load(Ordering::Relaxed);
        self.0.store(v.wrapping_add(n), Ordering::Relaxed);
    }

    /// Adds one. Single writer only.
    #[inline]
    pub fn incr(&self) {
        self.add(1);
    }

    /// The current value (Relaxed: a recent value, not ordered with
    /// anything else).
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A set of counters that can be read as a plain snapshot and summed
/// across cores by [`PerCore::sum`].
pub trait CounterSet: Default + Send + Sync {
    /// The plain-value snapshot.
    type Snapshot: Default + AddAssign;
    /// Reads every counter (each Relaxed; the set is not read atomically
    /// as a whole).
    fn snapshot(&self) -> Self::Snapshot;
}

impl CounterSet for Counter {
    type Snapshot = u64;
    fn snapshot(&self) -> u64 {
        self.get()
    }
}

/// One [`CounterSet`] per worker, each on its own cache line(s) so that
/// workers never write to a line another worker writes to.
///
/// Slot `i` is written only by worker `i`; anyone may read and
/// [`sum`](PerCore::sum).
#[derive(Debug)]
pub struct PerCore<T> {
    slots: Box<[CachePadded<T>]>,
}

impl<T: CounterSet> PerCore<T> {
    /// `workers` zeroed slots. Allocates once, here.
    pub fn new(workers: usize) -> Self {
        let slots = (0..workers)
            .map(|_| CachePadded::new(T::default()))
            .collect();
        PerCore { slots }
    }

    /// Worker `index`'s slot, or `None` past the last worker.
    #[inline]
    pub fn get(&self, index: usize) -> Option<&T> {
        self.slots.get(index).map(|s| &**s)
    }

    /// The number of slots.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when there are no slots.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Every slot's snapshot, in worker order.
    pub fn iter(&self) -> impl Iterator<Item = T::Snapshot> + '_ {
        self.slots.iter().map(|s| s.snapshot())
    }

    /// The sum of every slot's snapshot.
    pub fn sum(&self) -> T::Snapshot {
        let mut total = T::Snapshot::default();
        for s in self.slots.iter() {
            total += s.snapshot();
        }
        total
    }
}

/// A port's counters, as returned by [`Port::stats`](crate::port::Port::stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Frames handed to the caller by `rx_burst`.
    pub rx_packets: u64,
    /// Bytes of those frames.
    pub rx_bytes: u64,
    /// Frames received but dropped before the caller saw them (too long
    /// for a pool buffer, not Ethernet, unreadable).
    pub rx_dropped: u64,
    /// Times `rx_burst` stopped early because the pool was empty.
    pub rx_nombuf: u64,
    /// Frames sent by `tx_burst`.
    pub tx_packets: u64,
    /// Bytes of those frames.
    pub tx_bytes: u64,
    /// Frames given to `tx_burst` that could not be sent (ring full,
    /// write error, bad queue); their buffers went back to the pool.
    pub tx_dropped: u64,
}

impl AddAssign for PortStats {
    fn add_assign(&mut self, o: PortStats) {
        self.rx_packets += o.rx_packets;
        self.rx_bytes += o.rx_bytes;
        self.rx_dropped += o.rx_dropped;
        self.rx_nombuf += o.rx_nombuf;
        self.tx_packets += o.tx_packets;
        self.tx_bytes += o.tx_bytes;
        self.tx_dropped += o.tx_dropped;
    }
}

impl fmt::Display for PortStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rx {} pkts {} bytes ({} dropped, {} no-buffer), tx {} pkts {} bytes ({} dropped)",
            self.rx_packets,
            self.rx_bytes,
            self.rx_dropped,
            self.rx_nombuf,
            self.tx_packets,
            self.tx_bytes,
            self.tx_dropped
        )
    }
}

/// The live counters behind [`PortStats`]: written by the thread that owns
/// the port, readable from any thread (share it with an `Arc`).
#[derive(Debug, Default)]
pub struct PortCounters {
    /// See [`PortStats::rx_packets`].
    pub rx_packets: Counter,
    /// See [`PortStats::rx_bytes`].
    pub rx_bytes: Counter,
    /// See [`PortStats::rx_dropped`].
    pub rx_dropped: Counter,
    /// See [`PortStats::rx_nombuf`].
    pub rx_nombuf: Counter,
    /// See [`PortStats::tx_packets`].
    pub tx_packets: Counter,
    /// See [`PortStats::tx_bytes`].
    pub tx_bytes: Counter,
    /// See [`PortStats::tx_dropped`].
    pub tx_dropped: Counter,
}

impl CounterSet for PortCounters {
    type Snapshot = PortStats;
    fn snapshot(&self) -> PortStats {
        PortStats {
            rx_packets: self.rx_packets.get(),
            rx_bytes: self.rx_bytes.get(),
            rx_dropped: self.rx_dropped.get(),
            rx_nombuf: self.rx_nombuf.get(),
            tx_packets: self.tx_packets.get(),
            tx_bytes: self.tx_bytes.get(),
            tx_dropped: self.tx_dropped.get(),
        }
    }
}

/// Widens a length to a counter increment (lossless on every supported
/// target; saturates otherwise).
#[inline]
pub(crate) fn bytes(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn per_core_counters_sum_across_threads() {
        let pc: Arc<PerCore<PortCounters>> = Arc::new(PerCore::new(3));
        let handles: Vec<_> = (0..3)
            .map(|i| {
                let pc = Arc::clone(&pc);
                std::thread::spawn(move || {
                    let mine = pc.get(i).unwrap();
                    for _ in 0..1000 {
                        mine.rx_packets.incr();
                        mine.rx_bytes.add(64);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let s = pc.sum();
        assert_eq!(s.rx_packets, 3000);
        assert_eq!(s.rx_bytes, 192_000);
        assert_eq!(
            pc.iter().map(|s| s.rx_packets).collect::<Vec<_>>(),
            [1000; 3]
        );
        assert!(pc.get(3).is_none());
        assert_eq!(pc.len(), 3);
    }

    #[test]
    fn port_stats_add_and_display() {
        let mut a = PortStats {
            tx_dropped: 1,
            ..PortStats::default()
        };
        a += PortStats {
            tx_dropped: 2,
            rx_packets: 5,
            ..PortStats::default()
        };
        assert_eq!((a.tx_dropped, a.rx_packets), (3, 5));
        assert!(a.to_string().contains("3 dropped"));
    }
}
