//! In-memory ports: two [`MemPort`]s joined back to back by lock-free
//! rings, like the two ends of a veth pair. What one end transmits on
//! queue `q`, the other receives on queue `q`.
//!
//! Hold one end in test code as a "host" (it is an ordinary [`Port`], and
//! has [`send`](MemPort::send) and [`recv`](MemPort::recv) helpers) and give
//! the other to a VTEP; make several pairs to wire several VTEPs and hosts
//! into a fabric inside one process. Either end may live on any thread.
//!
//! ```
//! use vxlan_core::frame::Frame;
//! use vxlan_pmd::memport;
//! use vxlan_pmd::pool::Pool;
//! use vxlan_pmd::port::{Burst, Port};
//!
//! let pool = Pool::with_count(16).unwrap();
//! let (mut host, mut vtep_side) = memport::pair(pool.clone(), "host0", "vtep0-access", 8);
//! host.send(&[0x02; 64]).unwrap();
//! let mut burst = Burst::new();
//! assert_eq!(vtep_side.rx_burst(0, &mut burst, 32), 1);
//! vtep_side.tx_burst(0, &mut burst); // echo it back
//! assert_eq!(host.recv().unwrap().len(), 64);
//! assert_eq!(host.stats().rx_packets, 1);
//! ```

use std::fmt;
use std::sync::Arc;

use vxlan_core::frame::Frame;

use crate::pool::{PktBuf, Pool};
use crate::port::{Burst, Port};
use crate::ring::{ring, Consumer, Producer};
use crate::stats::{bytes, CounterSet, PortCounters, PortStats};

// One direction of one queue is a bounded single-producer single-consumer
// ring (`crate::ring`): the transmitting end owns its `Producer`, the
// receiving end its `Consumer`, so each ring has exactly one writer and
// one reader and needs no compare-and-swap. A burst moves through it with
// plain copies and one release store per side, not one atomic
// read-modify-write per frame as an MPMC queue needs. The producer's
// release store of its position after writing the frames, and the
// consumer's acquire load of it, are the edge that makes the bytes the
// sender wrote into a frame visible to the receiver. A frame in a ring is
// owned by the ring and goes back to its pool if both ends are dropped
// with frames in flight.

/// One end of an in-memory link. See the [module docs](self).
pub struct MemPort {
    name: String,
    port_id: u16,
    /// Queue `q` transmits into `tx[q]` and receives from `rx[q]`; both
    /// have one entry per queue.
    tx: Vec<Producer<PktBuf>>,
    rx: Vec<Consumer<PktBuf>>,
    counters: Arc<PortCounters>,
    pool: Arc<Pool>,
    /// The queue [`recv`](MemPort::recv) looks at first, so it takes from
    /// every queue in turn.
    next_recv_queue: u16,
}

impl fmt::Debug for MemPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemPort")
            .field("name", &self.name)
            .field("port_id", &self.port_id)
            .field("queues", &self.queues())
            .field("stats", &self.stats())
            .finish()
    }
}

/// Two ports with one queue each, joined by rings of `ring_size` frames
/// (at least 1; 0 is taken as 1). `pool` is where the
/// [`send`](MemPort::send) helper takes buffers from.
pub fn pair(
    pool: Arc<Pool>,
    name_a: impl Into<String>,
    name_b: impl Into<String>,
    ring_size: usize,
) -> (MemPort, MemPort) {
    pair_with_queues(pool, name_a, name_b, 1, ring_size)
}

/// Two ports with `queues` queues each (at least 1), queue `q` of one end
/// joined to queue `q` of the other by a ring of `ring_size` frames (at
/// least 1).
pub fn pair_with_queues(
    pool: Arc<Pool>,
    name_a: impl Into<String>,
    name_b: impl Into<String>,
    queues: u16,
    ring_size: usize,
) -> (MemPort, MemPort) {
    let queues = queues.max(1);
    let ring_size = ring_size.max(1);
    let (mut a_tx, mut a_rx, mut b_tx, mut b_rx) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..queues {
        let (to_b, from_a) = ring(ring_size);
        let (to_a, from_b) = ring(ring_size);
        a_tx.push(to_b);
        a_rx.push(from_b);
        b_tx.push(to_a);
        b_rx.push(from_a);
    }
    let a = MemPort {
        name: name_a.into(),
        port_id: 0,
        tx: a_tx,
        rx: a_rx,
        counters: Arc::default(),
        pool: Arc::clone(&pool),
        next_recv_queue: 0,
    };
    let b = MemPort {
        name: name_b.into(),
        port_id: 0,
        tx: b_tx,
        rx: b_rx,
        counters: Arc::default(),
        pool,
        next_recv_queue: 0,
    };
    (a, b)
}

/// Why [`MemPort::send`] did not send a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The pool has no free buffer: frames are being held somewhere.
    PoolEmpty,
    /// The frame is longer than a pool buffer holds after its headroom.
    TooLong {
        /// The frame's length.
        len: usize,
        /// The most a buffer holds.
        max: usize,
    },
    /// The ring to the peer is full: the peer is not receiving.
    RingFull,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::PoolEmpty => write!(
                f,
                "buffer pool is empty: drop received frames or make a larger pool"
            ),
            SendError::TooLong { len, max } => write!(
                f,
                "{len}-byte frame does not fit a pool buffer ({max} bytes after headroom): \
                 use a pool with larger buffers"
            ),
            SendError::RingFull => write!(
                f,
                "ring to the peer port is full: poll the peer or make larger rings"
            ),
        }
    }
}

impl std::error::Error for SendError {}

impl MemPort {
    /// Splits a multi-queue port into one single-queue port per queue, so
    /// that each worker can own the queue it polls (the [`Port`] methods
    /// take `&mut self`). Port `q` of the result is named `"{name}/q{q}"`,
    /// sends and receives on queue `q` of the link, keeps this port's id,
    /// and has its own counters, starting at zero.
    pub fn split_queues(self) -> Vec<MemPort> {
        let (name, port_id, pool) = (self.name, self.port_id, self.pool);
        self.tx
            .into_iter()
            .zip(self.rx)
            .enumerate()
            .map(|(q, (tx, rx))| MemPort {
                name: format!("{name}/q{q}"),
                port_id,
                tx: vec![tx],
                rx: vec![rx],
                counters: Arc::default(),
                pool: Arc::clone(&pool),
                next_recv_queue: 0,
            })
            .collect()
    }

    /// The id stamped on received frames as their
    /// [`ingress_port`](Frame::ingress_port) (default 0).
    pub fn set_port_id(&mut self, id: u16) {
        self.port_id = id;
    }

    /// The id stamped on received frames.
    pub fn port_id(&self) -> u16 {
        self.port_id
    }

    /// The live counters, to read from another thread while the port is
    /// in use.
    pub fn counters(&self) -> Arc<PortCounters> {
        Arc::clone(&self.counters)
    }

    /// The pool [`send`](MemPort::send) takes buffers from.
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// Frames waiting on receive queue `queue` (0 for no such queue).
    pub fn rx_pending(&self, queue: u16) -> usize {
        self.rx.get(usize::from(queue)).map_or(0, Consumer::len)
    }

    /// Copies `data` into a pool buffer and transmits it on queue 0.
    /// Counted like [`tx_burst`](Port::tx_burst), except that a frame that
    /// never got a buffer is not counted as dropped.
    pub fn send(&mut self, data: &[u8]) -> Result<(), SendError> {
        let max = self.pool.max_data_len();
        if data.len() > max {
            return Err(SendError::TooLong {
                len: data.len(),
                max,
            });
        }
        let pkt = self.pool.alloc_with(data).ok_or(SendError::PoolEmpty)?;
        self.send_pkt(0, pkt).map_err(|_| SendError::RingFull)
    }

    /// Transmits one frame on `queue`; gives it back if the ring is full or
    /// the queue does not exist (not counted as dropped: the caller still
    /// has it).
    pub fn send_pkt(&mut self, queue: u16, pkt: PktBuf) -> Result<(), PktBuf> {
        let Some(ring) = self.tx.get_mut(usize::from(queue)) else {
            return Err(pkt);
        };
        let len = pkt.len();
        ring.push(pkt)?;
        self.counters.tx_packets.incr();
        self.counters.tx_bytes.add(bytes(len));
        Ok(())
    }

    /// Frees up to `max` frames waiting on receive queue `queue` without
    /// receiving them (not counted as received): what a host end that only
    /// sinks traffic does, and what a NIC's transmit completion does for
    /// the sender. Returns how many were freed.
    pub fn discard(&mut self, queue: u16, max: usize) -> usize {
        let Some(ring) = self.rx.get_mut(usize::from(queue)) else {
            return 0;
        };
        // Freed where they lie in the ring, with no copy out first.
        // SAFETY: `Pool::free_run` takes ownership of every frame of each
        // run (each goes back to its pool once) and keeps no pointer into
        // it.
        unsafe { ring.pop_runs(max, |run, n| Pool::free_run(run, n)) }
    }

    /// Receives one frame from whichever queue has one, taking the queues
    /// in turn.
    pub fn recv(&mut self) -> Option<PktBuf> {
        let n = self.queues();
        for i in 0..n {
            // Both are below `n`, so the sum fits in a u32.
            let q = u16::try_from((u32::from(self.next_recv_queue) + u32::from(i)) % u32::from(n))
                .unwrap_or(0);
            let popped = self.rx.get_mut(usize::from(q)).and_then(Consumer::pop);
            if let Some(mut pkt) = popped {
                self.next_recv_queue =
                    u16::try_from((u32::from(q) + 1) % u32::from(n)).unwrap_or(0);
                pkt.set_ingress_port(self.port_id);
                self.counters.rx_packets.incr();
                self.counters.rx_bytes.add(bytes(pkt.len()));
                return Some(pkt);
            }
        }
        None
    }
}

impl Port for MemPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn queues(&self) -> u16 {
        // One entry per queue, and `pair_with_queues` takes a u16 count.
        u16::try_from(self.tx.len()).unwrap_or(u16::MAX)
    }

    fn rx_burst(&mut self, queue: u16, out: &mut Burst, max: usize) -> usize {
        let port_id = self.port_id;
        let Some(ring) = self.rx.get_mut(usize::from(queue)) else {
            return 0;
        };
        let want = max.min(out.remaining());
        let frames = out.frames_mut();
        let before = frames.len();
        let got = ring.pop_into(frames, want);
        let mut got_bytes = 0;
        for pkt in &mut frames[before..] {
            pkt.set_ingress_port(port_id);
            got_bytes += pkt.len();
        }
        if got > 0 {
            self.counters.rx_packets.add(bytes(got));
            self.counters.rx_bytes.add(bytes(got_bytes));
        }
        got
    }

    fn tx_burst(&mut self, queue: u16, pkts: &mut Burst) -> usize {
        let Some(ring) = self.tx.get_mut(usize::from(queue)) else {
            self.counters.tx_dropped.add(bytes(pkts.len()));
            pkts.clear();
            return 0;
        };
        let n = pkts.len();
        let mut sent_bytes: usize = pkts.iter().map(Frame::len).sum();
        let frames = pkts.frames_mut();
        let sent = ring.push_from(frames);
        if sent < n {
            // What did not fit is at the front; it goes back to its pool
            // here, as it drops.
            sent_bytes -= frames.iter().map(Frame::len).sum::<usize>();
            Pool::free_all(frames);
        }
        let dropped = n - sent;
        self.counters.tx_packets.add(bytes(sent));
        self.counters.tx_bytes.add(bytes(sent_bytes));
        if dropped > 0 {
            self.counters.tx_dropped.add(bytes(dropped));
        }
        sent
    }

    fn stats(&self) -> PortStats {
        self.counters.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(tag: u8) -> [u8; 64] {
        let mut f = [0u8; 64];
        f[0] = tag;
        f
    }

    #[test]
    fn both_directions() {
        let pool = Pool::new(32, 256, 64).unwrap();
        {
            let (mut a, mut b) = pair(pool.clone(), "a", "b", 8);
            b.set_port_id(5);
            let mut burst = Burst::with_capacity(8);
            for t in 0..3 {
                burst.push(pool.alloc_with(&frame(t)).unwrap()).unwrap();
            }
            assert_eq!(a.tx_burst(0, &mut burst), 3);
            assert!(burst.is_empty());
            assert_eq!(b.rx_pending(0), 3);
            assert_eq!(b.rx_burst(0, &mut burst, 2), 2, "max is honoured");
            assert_eq!(b.rx_burst(0, &mut burst, 32), 1);
            let tags: Vec<u8> = burst.iter().map(|p| p.data()[0]).collect();
            assert_eq!(tags, [0, 1, 2], "in order");
            assert!(burst.iter().all(|p| p.ingress_port() == 5));
            // And back.
            assert_eq!(b.tx_burst(0, &mut burst), 3);
            assert_eq!(a.rx_burst(0, &mut burst, 32), 3);
            assert_eq!(a.rx_burst(0, &mut burst, 32), 0);
            burst.clear();
            let (sa, sb) = (a.stats(), b.stats());
            assert_eq!((sa.tx_packets, sa.tx_bytes, sa.rx_packets), (3, 192, 3));
            assert_eq!((sb.rx_packets, sb.rx_bytes, sb.tx_packets), (3, 192, 3));
            assert_eq!(a.name(), "a");
            assert_eq!(a.queues(), 1);
            assert!(format!("{b:?}").contains("\"b\""));
        }
        assert_eq!(pool.available(), pool.capacity());
    }

    #[test]
    fn ring_full_tx_drops_counted_and_buffers_returned() {
        let pool = Pool::new(16, 256, 64).unwrap();
        let (mut a, mut b) = pair(pool.clone(), "a", "b", 4);
        let mut burst = Burst::new();
        for t in 0..6 {
            burst.push(pool.alloc_with(&frame(t)).unwrap()).unwrap();
        }
        assert_eq!(a.tx_burst(0, &mut burst), 4);
        assert!(burst.is_empty());
        assert_eq!(a.stats().tx_dropped, 2);
        assert_eq!(a.stats().tx_packets, 4);
        assert_eq!(pool.in_use(), 4, "the two dropped frames are back");
        // A queue that does not exist: everything dropped and counted.
        burst.push(pool.alloc().unwrap()).unwrap();
        assert_eq!(a.tx_burst(9, &mut burst), 0);
        assert_eq!(a.stats().tx_dropped, 3);
        assert_eq!(b.rx_burst(9, &mut burst, 32), 0);
        assert_eq!(pool.in_use(), 4);
        // Dropping the pair with frames in the ring returns them too.
        drop((a, b));
        assert_eq!(pool.available(), pool.capacity());
    }

    #[test]
    fn discard_frees_without_receiving() {
        let pool = Pool::new(16, 256, 64).unwrap();
        let (mut a, mut b) = pair(pool.clone(), "a", "b", 8);
        for t in 0..5 {
            a.send(&frame(t)).unwrap();
        }
        assert_eq!(pool.in_use(), 5);
        assert_eq!(b.discard(0, 2), 2);
        assert_eq!(b.discard(3, 8), 0, "no such queue");
        assert_eq!(pool.in_use(), 3);
        let mut burst = Burst::new();
        assert_eq!(b.rx_burst(0, &mut burst, 1), 1);
        assert_eq!(burst[0].data()[0], 2, "the oldest two were discarded");
        // With a magazine on this thread, the same in one step.
        assert!(pool.cache_on_this_thread());
        assert_eq!(b.discard(0, 32), 2);
        assert_eq!(b.discard(0, 32), 0);
        assert_eq!(b.stats().rx_packets, 1, "discards are not receives");
        drop(burst);
        assert_eq!(pool.in_use(), 0);
        Pool::flush_this_thread();
        assert_eq!(pool.available(), pool.capacity());
    }

    #[test]
    fn host_helpers_and_queues() {
        let pool = Pool::new(4, 128, 64).unwrap();
        let (mut host, mut vtep) = pair_with_queues(pool.clone(), "h", "v", 2, 0);
        assert_eq!(vtep.queues(), 2);
        assert_eq!(
            host.send(&[0; 65]).unwrap_err(),
            SendError::TooLong { len: 65, max: 64 }
        );
        host.send(&[1; 10]).unwrap();
        assert_eq!(host.send(&[2; 10]).unwrap_err(), SendError::RingFull);
        assert_eq!(pool.in_use(), 1);
        let p = pool.alloc_with(&[3]).unwrap();
        host.send_pkt(1, p).unwrap();
        let p = pool.alloc_with(&[4]).unwrap();
        let p = host.send_pkt(1, p).unwrap_err();
        let p = host.send_pkt(7, p).unwrap_err();
        let _held = (p, pool.alloc().unwrap());
        assert_eq!(host.send(&[5]).unwrap_err(), SendError::PoolEmpty);
        assert!(SendError::PoolEmpty.to_string().contains("larger pool"));
        let got: Vec<u8> = std::iter::from_fn(|| vtep.recv())
            .map(|p| p.data()[0])
            .collect();
        assert_eq!(got, [1, 3]);
        assert_eq!(vtep.stats().rx_packets, 2);
        assert_eq!(host.counters().snapshot().tx_packets, 2);
    }

    #[test]
    fn split_queues_gives_each_worker_its_own_queue() {
        let pool = Pool::new(16, 256, 64).unwrap();
        let (mut host, vtep) = pair_with_queues(pool.clone(), "h", "v", 3, 4);
        host.set_port_id(2);
        let mut per_queue = host.split_queues();
        let mut vteps = vtep.split_queues();
        assert_eq!(per_queue.len(), 3);
        assert_eq!(vteps[2].name(), "v/q2");
        assert_eq!(per_queue[1].port_id(), 2);
        let mut burst = Burst::new();
        for (q, p) in per_queue.iter_mut().enumerate() {
            assert_eq!(p.queues(), 1);
            p.send(&frame(u8::try_from(q).unwrap())).unwrap();
        }
        for (q, v) in vteps.iter_mut().enumerate() {
            assert_eq!(v.rx_burst(1, &mut burst, 8), 0, "only queue 0 each");
            assert_eq!(v.rx_burst(0, &mut burst, 8), 1);
            assert_eq!(usize::from(burst[0].data()[0]), q);
            v.tx_burst(0, &mut burst);
            assert!(v.recv().is_none());
        }
        for (q, p) in per_queue.iter_mut().enumerate() {
            assert_eq!(usize::from(p.recv().unwrap().data()[0]), q);
            assert_eq!(p.stats().tx_packets, 1);
        }
        drop((per_queue, vteps));
        assert_eq!(pool.available(), pool.capacity());
    }

    #[test]
    fn ends_on_different_threads() {
        let pool = Pool::new(64, 256, 64).unwrap();
        let (mut a, mut b) = pair(pool.clone(), "a", "b", 16);
        // Fewer under Miri (slow), still many laps of the ring of 16.
        const N: usize = if cfg!(miri) { 100 } else { 10_000 };
        let sender = std::thread::spawn(move || {
            let mut sent = 0;
            while sent < N {
                if a.send(&frame(u8::try_from(sent % 256).unwrap())).is_ok() {
                    sent += 1;
                } else {
                    std::thread::yield_now();
                }
            }
            a
        });
        let mut burst = Burst::new();
        let mut seen = 0;
        while seen < N {
            if b.rx_burst(0, &mut burst, 32) == 0 {
                std::thread::yield_now();
            }
            for p in burst.drain() {
                assert_eq!(usize::from(p.data()[0]), seen % 256);
                seen += 1;
            }
        }
        let a = sender.join().unwrap();
        assert_eq!(a.stats().tx_packets, u64::try_from(N).unwrap());
        assert_eq!(pool.available(), pool.capacity());
    }
}
