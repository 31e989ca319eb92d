//! The port abstraction: receive and transmit frames in bursts.
//!
//! A [`Port`] moves [`PktBuf`]s in and out of the process, a burst at a
//! time, per queue. Bursts travel in a [`Burst`], a container of fixed
//! capacity that is allocated once, when the loop starts, and reused for
//! every burst after that: pushing past its capacity hands the frame back
//! instead of growing, so the packet path never allocates.
//!
//! ```
//! use vxlan_core::frame::Frame;
//! use vxlan_pmd::memport;
//! use vxlan_pmd::pool::Pool;
//! use vxlan_pmd::port::{Burst, Port};
//!
//! let pool = Pool::with_count(64).unwrap();
//! let (mut a, mut b) = memport::pair(pool.clone(), "a", "b", 32);
//! let mut burst = Burst::new();
//! burst.push(pool.alloc_with(&[0xff; 60]).unwrap()).unwrap();
//! assert_eq!(a.tx_burst(0, &mut burst), 1);
//! assert!(burst.is_empty()); // tx always drains
//! assert_eq!(b.rx_burst(0, &mut burst, 32), 1);
//! assert_eq!(burst[0].len(), 60);
//! ```

use std::ops::{Deref, DerefMut};

use crate::pool::PktBuf;
use crate::stats::PortStats;

/// The default and usual burst size.
pub const BURST_SIZE: usize = 32;

/// The largest burst a [`Burst::new`] holds.
pub const MAX_BURST: usize = 64;

/// A fixed-capacity list of frames for one burst.
///
/// It derefs to `[PktBuf]`, so frames can be indexed, iterated and edited
/// in place. Its storage is allocated once by [`Burst::new`] or
/// [`Burst::with_capacity`]; nothing after that allocates.
///
/// ```
/// use vxlan_pmd::pool::Pool;
/// use vxlan_pmd::port::Burst;
///
/// let pool = Pool::with_count(4).unwrap();
/// let mut burst = Burst::with_capacity(2); // allocates here, once
/// burst.push(pool.alloc().unwrap()).unwrap();
/// burst.push(pool.alloc().unwrap()).unwrap();
/// let refused = burst.push(pool.alloc().unwrap()); // full: handed back
/// assert!(refused.is_err());
/// drop(refused);
/// for pkt in burst.drain() {
///     drop(pkt); // back to the pool
/// }
/// assert_eq!(pool.available(), 4);
/// ```
#[derive(Debug)]
pub struct Burst {
    /// Invariant: `pkts.len() <= cap` and `pkts.capacity() >= cap`, so
    /// `Vec::push` never reallocates.
    pkts: Vec<PktBuf>,
    cap: usize,
}

impl Default for Burst {
    fn default() -> Self {
        Burst::new()
    }
}

impl Burst {
    /// An empty burst holding up to [`MAX_BURST`] frames.
    pub fn new() -> Self {
        Burst::with_capacity(MAX_BURST)
    }

    /// An empty burst holding up to `cap` frames.
    pub fn with_capacity(cap: usize) -> Self {
        Burst {
            pkts: Vec::with_capacity(cap),
            cap,
        }
    }

    /// Adds a frame, or gives it back when the burst is full.
    #[inline]
    pub fn push(&mut self, pkt: PktBuf) -> Result<(), PktBuf> {
        let len = self.pkts.len();
        if len >= self.cap {
            return Err(pkt);
        }
        // Into the spare capacity, not `Vec::push`: its growth path (which
        // the invariant rules out) kept it out of line in the encap loop,
        // a call per transmitted frame. Nor through `spare_capacity_mut`:
        // the invariant already says there is room, and its check was
        // three more instructions per transmitted frame.
        // SAFETY: `len < cap <= pkts.capacity()` (the invariant), so
        // element `len` lies within the allocation and is not initialised
        // (it is past the length); it is written, then covered by the
        // length, `len + 1 <= capacity`.
        unsafe {
            self.pkts.as_mut_ptr().add(len).write(pkt);
            self.pkts.set_len(len + 1);
        }
        Ok(())
    }

    /// Removes the last frame.
    #[inline]
    pub fn pop(&mut self) -> Option<PktBuf> {
        self.pkts.pop()
    }

    /// Frames it can hold in all.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Frames it can still take.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.cap - self.pkts.len()
    }

    /// True when it can take no more.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.pkts.len() >= self.cap
    }

    /// Drops every frame (each goes back to its pool, through this
    /// thread's pool magazine in one step when it has one).
    #[inline]
    pub fn clear(&mut self) {
        crate::pool::Pool::free_all(&mut self.pkts);
    }

    /// Takes every frame out, in order, leaving the burst empty (and its
    /// storage in place for the next burst).
    #[inline]
    pub fn drain(&mut self) -> std::vec::Drain<'_, PktBuf> {
        self.pkts.drain(..)
    }

    /// The frames as a `Vec` whose spare capacity may be filled up to the
    /// burst's capacity (the rings append to it and take from it in bulk).
    /// Callers must not reallocate or shrink it: [`Burst::push`]'s unsafe
    /// write relies on its capacity staying at least the burst's.
    #[inline]
    pub(crate) fn frames_mut(&mut self) -> &mut Vec<PktBuf> {
        &mut self.pkts
    }

    /// Keeps the frames for which `keep` returns true, in order; drops the
    /// others back to their pools.
    pub fn retain(&mut self, keep: impl FnMut(&mut PktBuf) -> bool) {
        self.pkts.retain_mut(keep);
    }
}

impl Deref for Burst {
    type Target = [PktBuf];
    fn deref(&self) -> &[PktBuf] {
        &self.pkts
    }
}

impl DerefMut for Burst {
    fn deref_mut(&mut self) -> &mut [PktBuf] {
        &mut self.pkts
    }
}

/// A source and sink of frames, polled in bursts.
///
/// Implementations must not allocate, block or panic in
/// [`rx_burst`](Port::rx_burst) and [`tx_burst`](Port::tx_burst) beyond
/// what their I/O method itself requires (a ring kick, a file write), and
/// must count every frame they drop.
pub trait Port: Send {
    /// The port's name, for logs and stats.
    fn name(&self) -> &str;

    /// Receive queues (and transmit queues) the port has; queue numbers
    /// run from 0.
    fn queues(&self) -> u16;

    /// Receives up to `max` frames (and no more than `out` has room for)
    /// from `queue`, appending them to `out`. Returns how many it added;
    /// 0 when there is nothing to receive or `queue` does not exist.
    fn rx_burst(&mut self, queue: u16, out: &mut Burst, max: usize) -> usize;

    /// Sends the frames in `pkts` on `queue`, in order, and empties `pkts`.
    /// Returns how many were sent; the rest (ring full, I/O error, no such
    /// queue) went back to their pool and were counted in
    /// [`PortStats::tx_dropped`].
    fn tx_burst(&mut self, queue: u16, pkts: &mut Burst) -> usize;

    /// The port's counters now.
    fn stats(&self) -> PortStats;
}

impl<P: Port + ?Sized> Port for Box<P> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn queues(&self) -> u16 {
        (**self).queues()
    }
    fn rx_burst(&mut self, queue: u16, out: &mut Burst, max: usize) -> usize {
        (**self).rx_burst(queue, out, max)
    }
    fn tx_burst(&mut self, queue: u16, pkts: &mut Burst) -> usize {
        (**self).tx_burst(queue, pkts)
    }
    fn stats(&self) -> PortStats {
        (**self).stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::Pool;
    use vxlan_core::frame::Frame;

    #[test]
    fn burst_is_bounded_and_returns_buffers() {
        let pool = Pool::new(4, 128, 0).unwrap();
        let mut b = Burst::with_capacity(2);
        let storage = b.pkts.as_ptr();
        b.push(pool.alloc_with(&[1]).unwrap()).unwrap();
        b.push(pool.alloc_with(&[2]).unwrap()).unwrap();
        assert!(b.is_full());
        let back = b.push(pool.alloc_with(&[3]).unwrap()).unwrap_err();
        assert_eq!(back.data(), &[3]);
        drop(back);
        assert_eq!(b.remaining(), 0);
        assert_eq!(b.pkts.as_ptr(), storage, "never reallocates");
        b.retain(|p| p.data() == [2]);
        assert_eq!(b.len(), 1);
        assert_eq!(pool.in_use(), 1);
        let got: Vec<_> = b.drain().collect();
        assert_eq!(got[0].data(), &[2]);
        drop(got);
        b.push(pool.alloc().unwrap()).unwrap();
        b.clear();
        assert_eq!(pool.available(), pool.capacity());
        assert_eq!(b.pkts.as_ptr(), storage);
        assert!(b.pop().is_none());
        assert_eq!(Burst::default().capacity(), MAX_BURST);
    }

    #[test]
    fn ports_work_as_trait_objects() {
        let pool = Pool::new(4, 128, 0).unwrap();
        let (a, b) = crate::memport::pair(pool.clone(), "a", "b", 4);
        let mut ports: Vec<Box<dyn Port>> = vec![Box::new(a), Box::new(b)];
        let mut burst = Burst::new();
        burst.push(pool.alloc_with(&[1; 14]).unwrap()).unwrap();
        assert_eq!(ports[0].tx_burst(0, &mut burst), 1);
        assert_eq!(ports[1].rx_burst(0, &mut burst, BURST_SIZE), 1);
        assert_eq!(ports[1].name(), "b");
        assert_eq!(ports[1].queues(), 1);
        assert_eq!(ports[1].stats().rx_bytes, 14);
    }
}
