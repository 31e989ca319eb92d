//! The four AF_XDP rings, shared with the kernel through `mmap`.
//!
//! Each ring is a power-of-two array of descriptors plus a producer and a
//! consumer index, both free-running `u32`s that wrap: the slot of index
//! `i` is `i & mask`, and `producer - consumer` (wrapping) is the number
//! of filled entries. [`RingPos`] keeps that arithmetic wrapping and has no
//! `Ord`, because "less than" means nothing on a wrapping counter.
//!
//! We are the producer of the fill and tx rings and the consumer of the rx
//! and completion rings. Our own index lives in a local cache and is
//! published with a `Release` store only when a batch is done; the other
//! side's index is read with `Acquire` only when the cached copy says the
//! ring is full (producer side) or empty (consumer side).

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

/// A position on a ring: a free-running index that wraps at `u32::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RingPos(pub u32);

impl RingPos {
    /// `self + n`, wrapping.
    #[inline]
    pub fn advance(self, n: u32) -> RingPos {
        RingPos(self.0.wrapping_add(n))
    }

    /// How far `self` is ahead of `behind` (wrapping).
    #[inline]
    pub fn since(self, behind: RingPos) -> u32 {
        self.0.wrapping_sub(behind.0)
    }
}

/// One AF_XDP descriptor on the rx and tx rings (`struct xdp_desc`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct XdpDesc {
    /// Offset of the frame's first byte in the UMEM.
    pub addr: u64,
    /// Frame length.
    pub len: u32,
    /// Option flags (0: a whole frame).
    pub options: u32,
}

/// The parts of one mapped ring. Descriptor type `T` is `u64` (a UMEM
/// offset) on the fill and completion rings, [`XdpDesc`] on rx and tx.
pub(crate) struct RingMap<T> {
    /// The other side's or our index, in the shared mapping.
    pub producer: NonNull<AtomicU32>,
    /// See `producer`.
    pub consumer: NonNull<AtomicU32>,
    /// `XDP_RING_NEED_WAKEUP` lives here.
    pub flags: NonNull<AtomicU32>,
    /// `size` descriptors.
    pub descs: NonNull<T>,
    /// Entries (a power of two).
    pub size: u32,
    /// The mapping, unmapped on drop.
    pub map: NonNull<u8>,
    /// Its length.
    pub map_len: usize,
}

impl<T> Drop for RingMap<T> {
    fn drop(&mut self) {
        // SAFETY: `map`/`map_len` are exactly what mmap returned for this
        // ring, and every pointer into it lives in this struct, which is
        // being dropped: nothing can touch the mapping afterwards.
        unsafe {
            libc::munmap(self.map.as_ptr().cast(), self.map_len);
        }
    }
}

impl<T> RingMap<T> {
    #[inline]
    fn producer(&self) -> &AtomicU32 {
        // SAFETY: the pointer is into a live, aligned shared mapping (the
        // kernel places the index at a 4-byte aligned offset it reported),
        // valid for as long as `self`; the kernel accesses it atomically.
        unsafe { self.producer.as_ref() }
    }
    #[inline]
    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { self.consumer.as_ref() }
    }
    #[inline]
    fn flags(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { self.flags.as_ref() }
    }
    /// True when the kernel asks to be woken with a syscall.
    #[inline]
    pub fn needs_wakeup(&self) -> bool {
        // Relaxed: a hint. The worst a stale value costs is one needless
        // syscall or one missed kick that the next burst's check repeats.
        self.flags().load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }
    #[inline]
    fn slot(&self, pos: RingPos) -> *mut T {
        let i = (pos.0 & (self.size - 1)) as usize;
        // SAFETY: `i < size`, and the mapping holds `size` descriptors from
        // `descs`, so the offset stays inside the mapping.
        unsafe { self.descs.as_ptr().add(i) }
    }
}

/// A ring we produce into (fill, tx).
pub(crate) struct ProdRing<T> {
    map: RingMap<T>,
    /// Our next position to write; published by [`ProdRing::submit`].
    cached_prod: RingPos,
    /// The kernel's consumer position plus the ring size, as last read: we
    /// may write up to (not including) this position.
    cached_limit: RingPos,
}

impl<T: Copy> ProdRing<T> {
    pub(crate) fn new(map: RingMap<T>) -> Self {
        // Relaxed: the socket is not bound yet, the kernel does not touch
        // the ring before bind(), and both indexes start at 0.
        let prod = RingPos(map.producer().load(Ordering::Relaxed));
        let cons = RingPos(map.consumer().load(Ordering::Relaxed));
        let size = map.size;
        ProdRing {
            map,
            cached_prod: prod,
            cached_limit: cons.advance(size),
        }
    }

    /// Free slots, at least `want` if possible: the kernel's consumer index
    /// is read only when the cache shows fewer.
    #[inline]
    pub(crate) fn free(&mut self, want: u32) -> u32 {
        let free = self.cached_limit.since(self.cached_prod);
        if free >= want {
            return free;
        }
        // Acquire pairs with the kernel's release store of the consumer
        // index: once we see the index move, the kernel has finished
        // reading the descriptors before it, so overwriting them is safe.
        let cons = RingPos(self.map.consumer().load(Ordering::Acquire));
        self.cached_limit = cons.advance(self.map.size);
        self.cached_limit.since(self.cached_prod)
    }

    /// Writes one descriptor at the next position. The caller checked
    /// [`free`](ProdRing::free) first; the entry is not visible to the
    /// kernel until [`submit`](ProdRing::submit).
    #[inline]
    pub(crate) fn push(&mut self, desc: T) {
        debug_assert!(self.cached_limit.since(self.cached_prod) > 0);
        let slot = self.map.slot(self.cached_prod);
        // SAFETY: `slot` is inside the mapping (see `slot`), and the slot
        // is ours: it lies between the published producer and the
        // consumer + size, a range the kernel does not read.
        unsafe { slot.write_volatile(desc) };
        self.cached_prod = self.cached_prod.advance(1);
    }

    /// Writes one descriptor without consulting the consumer index, for a
    /// ring that carries a fixed set of at most `size` tokens (the fill
    /// ring with its rx frames): the caller pushes only a token it holds,
    /// so fewer than `size` tokens are on the ring unread, and the slot
    /// written next is one the kernel has already read, whatever consumer
    /// index it has published so far (it publishes lazily).
    #[inline]
    pub(crate) fn push_token(&mut self, desc: T) {
        let slot = self.map.slot(self.cached_prod);
        // SAFETY: `slot` is inside the mapping; by the token argument above
        // the kernel has finished reading it.
        unsafe { slot.write_volatile(desc) };
        self.cached_prod = self.cached_prod.advance(1);
    }

    /// Publishes everything pushed so far.
    #[inline]
    pub(crate) fn submit(&mut self) {
        // Release: the descriptor writes above must be visible to the
        // kernel before it sees the producer index that covers them; the
        // kernel reads the index with acquire.
        self.map
            .producer()
            .store(self.cached_prod.0, Ordering::Release);
    }

    /// See [`RingMap::needs_wakeup`].
    #[inline]
    pub(crate) fn needs_wakeup(&self) -> bool {
        self.map.needs_wakeup()
    }
}

/// A ring we consume from (rx, completion).
pub(crate) struct ConsRing<T> {
    map: RingMap<T>,
    /// Our next position to read; published by [`ConsRing::release`].
    cached_cons: RingPos,
    /// The kernel's producer position, as last read.
    cached_prod: RingPos,
}

impl<T: Copy> ConsRing<T> {
    pub(crate) fn new(map: RingMap<T>) -> Self {
        // Relaxed: not bound yet (see ProdRing::new).
        let prod = RingPos(map.producer().load(Ordering::Relaxed));
        let cons = RingPos(map.consumer().load(Ordering::Relaxed));
        ConsRing {
            map,
            cached_cons: cons,
            cached_prod: prod,
        }
    }

    /// Filled entries, reading the kernel's producer index only when the
    /// cache shows none.
    #[inline]
    pub(crate) fn available(&mut self) -> u32 {
        let n = self.cached_prod.since(self.cached_cons);
        if n > 0 {
            return n;
        }
        // Acquire pairs with the kernel's release store of the producer
        // index: the descriptors (and the frame bytes they point at) that
        // the new index covers are visible to us after this load.
        self.cached_prod = RingPos(self.map.producer().load(Ordering::Acquire));
        self.cached_prod.since(self.cached_cons)
    }

    /// Reads the next entry. The caller checked
    /// [`available`](ConsRing::available) first.
    #[inline]
    pub(crate) fn pop(&mut self) -> T {
        debug_assert!(self.cached_prod.since(self.cached_cons) > 0);
        let slot = self.map.slot(self.cached_cons);
        // SAFETY: inside the mapping; the entry lies between our consumer
        // and the producer we read with acquire, so the kernel wrote it
        // and will not write it again until we release it.
        let v = unsafe { slot.read_volatile() };
        self.cached_cons = self.cached_cons.advance(1);
        v
    }

    /// Hands every popped entry back to the kernel.
    #[inline]
    pub(crate) fn release(&mut self) {
        // Release: our reads of the entries (and, on rx, the copy of the
        // frame bytes) complete before the kernel may reuse the slots.
        self.map
            .consumer()
            .store(self.cached_cons.0, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::RingPos;

    #[test]
    fn positions_wrap() {
        let p = RingPos(u32::MAX - 1);
        let q = p.advance(3);
        assert_eq!(q, RingPos(1));
        assert_eq!(q.since(p), 3);
        assert_eq!(p.since(q), u32::MAX - 2);
    }
}
