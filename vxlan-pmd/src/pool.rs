//! A fixed pool of packet buffers, allocated once, shared lock-free.
//!
//! Every buffer is `buf_size` bytes; a fresh frame starts `headroom` bytes
//! in, so encapsulation can prepend the outer headers in place (the
//! default 128 covers the largest VXLAN outer header, IPv6 with a VLAN
//! tag: 14 + 4 + 40 + 8 + 8 = 74 bytes). The free list is a bounded
//! lock-free queue of the buffers themselves; [`Pool::alloc`] pops one and
//! dropping the [`PktBuf`] pushes it back, so no buffer is ever lost and
//! neither step allocates.
//!
//! A thread that allocates and frees many buffers (a worker's poll loop)
//! can keep a per-thread cache of free buffers, a "magazine"
//! ([`Pool::cache_on_this_thread`]): allocation pops from it and a buffer
//! dropped on that thread goes back into it, so the common run-to-completion
//! case touches neither the shared queue nor the pool's reference count,
//! and two workers on one pool write no common cache line per frame. A
//! magazine exchanges buffers with the shared queue in blocks of
//! [`MAGAZINE_BLOCK`]; cached buffers count as [`available`](Pool::available)
//! and go back to the queue when the thread exits or calls
//! [`Pool::flush_this_thread`].
//!
//! ```
//! use vxlan_core::frame::Frame;
//! use vxlan_pmd::pool::Pool;
//!
//! let pool = Pool::new(4, 2048, 128).unwrap();
//! let mut pkt = pool.alloc_with(&[0xaa; 60]).unwrap();
//! pkt.prepend(50).unwrap().fill(0); // room for an outer header
//! assert_eq!(pkt.len(), 110);
//! assert_eq!(pool.in_use(), 1);
//! drop(pkt);
//! assert_eq!(pool.available(), pool.capacity());
//! ```

use std::cell::RefCell;
use std::fmt;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;
use vxlan_core::frame::{Frame, FrameError, RxOffloads};

/// The default buffer size: a 1500-byte MTU frame plus VXLAN overhead and
/// headroom, rounded to a power of two.
pub const DEFAULT_BUF_SIZE: usize = 2048;

/// The default headroom: room for the largest VXLAN outer header (74
/// bytes: Ethernet, VLAN tag, IPv6, UDP, VXLAN) rounded up to two cache
/// lines.
pub const DEFAULT_HEADROOM: usize = 128;

/// The largest buffer a pool makes (4 GiB - 1): a [`PktBuf`] keeps its
/// offsets as `u32`, which keeps it to one cache line.
pub const MAX_BUF_SIZE: usize = u32::MAX as usize;

/// How many threads at once can keep a magazine for one pool; further
/// threads use the shared queue directly.
pub const MAGAZINE_SLOTS: usize = 16;

/// Buffers a magazine moves to or from the shared queue at once. A
/// magazine holds at most twice this.
pub const MAGAZINE_BLOCK: usize = 64;

/// One thread's magazine, as the pool sees it: claimed or not, and how
/// many buffers it holds (written only by the owning thread).
#[derive(Debug, Default)]
struct MagazineSlot {
    claimed: AtomicBool,
    len: AtomicUsize,
}

/// This thread's magazine: free buffers of one pool, each with its own
/// reference to the pool (so moving a buffer in or out changes no
/// reference count).
struct Magazine {
    /// The pool cached for, while attached.
    pool: Option<Arc<Pool>>,
    /// Its slot in `pool.magazines`.
    slot: usize,
    /// Capacity `2 * MAGAZINE_BLOCK`, reserved at attach: never grows.
    bufs: Vec<(Box<[u8]>, Arc<Pool>)>,
}

impl Magazine {
    #[inline]
    fn is_for(&self, pool: &Pool) -> bool {
        self.pool
            .as_ref()
            .is_some_and(|p| std::ptr::eq(Arc::as_ptr(p), pool))
    }

    /// Publishes the length for `Pool::available` (single writer).
    #[inline(always)]
    fn publish(&self) {
        if let Some(p) = &self.pool {
            if let Some(s) = p.magazines.get(self.slot) {
                s.len.store(self.bufs.len(), Ordering::Relaxed);
            }
        }
    }

    /// Moves `n` buffers (or all) back to the shared queue.
    fn flush(&mut self, n: usize) {
        let keep = self.bufs.len().saturating_sub(n);
        for (buf, pool) in self.bufs.drain(keep..) {
            // Cannot fail: see `Pool::free`.
            let _ = pool.free.push(buf);
        }
        self.publish();
    }

    /// Releases the slot and the pool after returning every buffer.
    fn detach(&mut self) {
        self.flush(usize::MAX);
        if let Some(p) = self.pool.take() {
            if let Some(s) = p.magazines.get(self.slot) {
                s.len.store(0, Ordering::Relaxed);
                // Release: a later claimer sees our final length.
                s.claimed.store(false, Ordering::Release);
            }
        }
    }
}

impl Drop for Magazine {
    fn drop(&mut self) {
        self.detach();
    }
}

thread_local! {
    static MAGAZINE: RefCell<Magazine> = const {
        RefCell::new(Magazine { pool: None, slot: 0, bufs: Vec::new() })
    };
}

/// Why a pool could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolError {
    /// A pool needs at least one buffer.
    ZeroCount,
    /// The headroom leaves no room for frame data.
    HeadroomTooLarge {
        /// Headroom asked for.
        headroom: usize,
        /// Buffer size asked for.
        buf_size: usize,
    },
    /// A buffer of `buf_size` bytes or more than [`MAX_BUF_SIZE`]: a frame
    /// keeps its offsets in 32 bits.
    BufferTooLarge {
        /// Buffer size asked for.
        buf_size: usize,
    },
    /// `count * buf_size` does not fit in memory.
    TooLarge {
        /// Buffers asked for.
        count: usize,
        /// Buffer size asked for.
        buf_size: usize,
    },
    /// The system could not provide the memory.
    OutOfMemory {
        /// Bytes asked for in total.
        bytes: usize,
    },
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::ZeroCount => write!(f, "buffer pool needs a count of at least 1"),
            PoolError::HeadroomTooLarge { headroom, buf_size } => write!(
                f,
                "headroom {headroom} leaves no room for data in {buf_size}-byte buffers: \
                 use a headroom smaller than the buffer size"
            ),
            PoolError::BufferTooLarge { buf_size } => write!(
                f,
                "{buf_size}-byte buffers are larger than the {MAX_BUF_SIZE} bytes a buffer \
                 may have: use smaller buffers"
            ),
            PoolError::TooLarge { count, buf_size } => write!(
                f,
                "{count} buffers of {buf_size} bytes overflow the address space: \
                 use fewer or smaller buffers"
            ),
            PoolError::OutOfMemory { bytes } => write!(
                f,
                "could not allocate {bytes} bytes for the buffer pool: use fewer or smaller buffers"
            ),
        }
    }
}

impl std::error::Error for PoolError {}

/// A fixed set of equal-size packet buffers.
///
/// Shared as `Arc<Pool>` between the threads that receive into it and the
/// threads that free its buffers (by dropping them, anywhere).
pub struct Pool {
    /// The buffers not handed out. Invariant: every buffer this pool made
    /// is either here or inside exactly one live [`PktBuf`], so the queue
    /// (capacity `count`) can never overflow.
    free: ArrayQueue<Box<[u8]>>,
    /// Per-thread magazines' bookkeeping (the buffers are in the threads).
    magazines: Box<[CachePadded<MagazineSlot>]>,
    buf_size: usize,
    headroom: usize,
    /// Failed `alloc` calls. Written only when the pool is empty, the slow
    /// path, so the shared cache line costs nothing in the common case.
    alloc_failures: AtomicU64,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("capacity", &self.capacity())
            .field("available", &self.available())
            .field("buf_size", &self.buf_size)
            .field("headroom", &self.headroom)
            .finish()
    }
}

impl Pool {
    /// Allocates `count` buffers of `buf_size` bytes; new frames start
    /// `headroom` bytes in. This is the only place the pool allocates.
    pub fn new(count: usize, buf_size: usize, headroom: usize) -> Result<Arc<Pool>, PoolError> {
        if count == 0 {
            return Err(PoolError::ZeroCount);
        }
        if headroom >= buf_size {
            return Err(PoolError::HeadroomTooLarge { headroom, buf_size });
        }
        // Every offset of a frame is at most its buffer's length, so with
        // this check it fits the `u32` a `PktBuf` stores it in (`off`).
        if buf_size > MAX_BUF_SIZE {
            return Err(PoolError::BufferTooLarge { buf_size });
        }
        let bytes = count
            .checked_mul(buf_size)
            .ok_or(PoolError::TooLarge { count, buf_size })?;
        let free = ArrayQueue::new(count);
        for _ in 0..count {
            let mut v: Vec<u8> = Vec::new();
            v.try_reserve_exact(buf_size)
                .map_err(|_| PoolError::OutOfMemory { bytes })?;
            v.resize(buf_size, 0);
            // Cannot fail: exactly `count` pushes into a queue of `count`.
            let _ = free.push(v.into_boxed_slice());
        }
        Ok(Arc::new(Pool {
            free,
            magazines: (0..MAGAZINE_SLOTS)
                .map(|_| CachePadded::default())
                .collect(),
            buf_size,
            headroom,
            alloc_failures: AtomicU64::new(0),
        }))
    }

    /// A pool of `count` buffers of [`DEFAULT_BUF_SIZE`] bytes with
    /// [`DEFAULT_HEADROOM`].
    pub fn with_count(count: usize) -> Result<Arc<Pool>, PoolError> {
        Pool::new(count, DEFAULT_BUF_SIZE, DEFAULT_HEADROOM)
    }

    /// Makes this thread keep a magazine of this pool's free buffers (see
    /// the module docs): true when it does (now or already). False when
    /// the thread already caches for another pool or every slot is taken;
    /// the thread then uses the shared queue, as without a magazine. The
    /// magazine's storage is allocated here, once; it is returned when the
    /// thread exits or calls [`Pool::flush_this_thread`]. Until then the
    /// magazine keeps the pool alive.
    pub fn cache_on_this_thread(self: &Arc<Self>) -> bool {
        MAGAZINE
            .try_with(|m| {
                let Ok(mut m) = m.try_borrow_mut() else {
                    return false;
                };
                if m.is_for(self) {
                    return true;
                }
                if m.pool.is_some() {
                    return false;
                }
                let Some(slot) = self.magazines.iter().position(|s| {
                    // Acquire: pairs with the Release in `detach`.
                    s.claimed
                        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                }) else {
                    return false;
                };
                if m.bufs.capacity() < 2 * MAGAZINE_BLOCK {
                    m.bufs = Vec::with_capacity(2 * MAGAZINE_BLOCK);
                }
                m.pool = Some(Arc::clone(self));
                m.slot = slot;
                true
            })
            .unwrap_or(false)
    }

    /// Returns this thread's magazine (of whatever pool) to its pool's
    /// shared queue and stops caching on this thread.
    pub fn flush_this_thread() {
        let _ = MAGAZINE.try_with(|m| {
            if let Ok(mut m) = m.try_borrow_mut() {
                m.detach();
            }
        });
    }

    /// A free buffer with its reference to the pool: from this thread's
    /// magazine when it caches for this pool (refilled from the queue in a
    /// block when empty), else from the shared queue.
    #[inline(always)]
    fn take_buf(self: &Arc<Self>) -> Option<(Box<[u8]>, Arc<Pool>)> {
        let cached = MAGAZINE
            .try_with(|m| {
                let mut m = m.try_borrow_mut().ok()?;
                if !m.is_for(self) {
                    return None;
                }
                if m.bufs.is_empty() {
                    while m.bufs.len() < MAGAZINE_BLOCK {
                        let Some(buf) = self.free.pop() else { break };
                        m.bufs.push((buf, Arc::clone(self)));
                    }
                }
                let e = m.bufs.pop();
                m.publish();
                e
            })
            .ok()
            .flatten();
        if cached.is_some() {
            return cached;
        }
        self.free.pop().map(|buf| (buf, Arc::clone(self)))
    }

    /// Gives a buffer back: to this thread's magazine when it caches for
    /// `pool` (spilling a block to the queue when full), else to the queue.
    #[inline]
    fn give_back(buf: Box<[u8]>, pool: Arc<Pool>) {
        let mut item = Some((buf, pool));
        let _ = MAGAZINE.try_with(|m| {
            let Ok(mut m) = m.try_borrow_mut() else {
                return;
            };
            let Some((buf, pool)) = item.take_if(|(_, p)| m.is_for(p)) else {
                return;
            };
            if m.bufs.len() >= 2 * MAGAZINE_BLOCK {
                m.flush(MAGAZINE_BLOCK);
            }
            m.bufs.push((buf, pool));
            m.publish();
        });
        if let Some((buf, pool)) = item {
            // Cannot fail: by the `free` invariant the queue has a slot for
            // every buffer that is out. Were it ever to, the buffer would be
            // freed to the allocator, not leaked.
            let _ = pool.free.push(buf);
        }
    }

    /// Empties `pkts`, giving every frame back to its pool: what dropping
    /// them one by one does, with this thread's magazine looked up once for
    /// the whole burst instead of once per frame (a transmit completion
    /// frees a burst at a time). Frames of a pool this thread does not
    /// cache for go back the ordinary way (to their pool's queue).
    pub(crate) fn free_all(pkts: &mut Vec<PktBuf>) {
        let n = pkts.len();
        if n == 0 {
            return;
        }
        let run = pkts.as_mut_ptr();
        // SAFETY: the vector gives up its `n` frames before they are freed
        // (a length of 0 is within its capacity and hides only initialised
        // elements), so each is freed once, by `free_run`, which owns them
        // from here; the buffer stays in place, untouched by `free_run`
        // except through `run`.
        unsafe {
            pkts.set_len(0);
            Self::free_run(run, n);
        }
    }

    /// [`Pool::free_all`] for the `n` frames at `run`, which it takes
    /// ownership of: each goes back to its pool (through this thread's
    /// magazine, when it caches for that pool) and is not to be used or
    /// dropped again by the caller.
    ///
    /// # Safety
    ///
    /// `run` points at `n` consecutive initialised frames that the caller
    /// gives up (it must neither use nor drop them after the call), valid
    /// for reads and writes for the whole call.
    pub(crate) unsafe fn free_run(run: *mut PktBuf, n: usize) {
        // Frames `0..done` of the run have been taken (moved out).
        let mut done = 0;
        let _ = MAGAZINE.try_with(|m| {
            let Ok(mut m) = m.try_borrow_mut() else {
                return;
            };
            let m = &mut *m;
            let Some(cached) = m.pool.as_ref().map(Arc::as_ptr) else {
                return;
            };
            while done < n {
                if m.bufs.len() >= 2 * MAGAZINE_BLOCK {
                    m.flush(MAGAZINE_BLOCK);
                }
                // The buffers go straight into the magazine's spare room,
                // its length set once per run rather than once per frame
                // (`Vec::push` reloaded and stored it through the
                // thread-local for every frame), and no call in the loop
                // (a frame of another pool, or without a buffer, ends the
                // run and is seen to below), so that it runs in registers.
                // At most up to the magazine's bound, `2 * MAGAZINE_BLOCK`,
                // as pushing one by one would.
                let len = m.bufs.len();
                let spare = m.bufs.spare_capacity_mut();
                let room = spare.len().min(2 * MAGAZINE_BLOCK - len).min(n - done);
                if room == 0 {
                    // Cannot happen (attaching reserves the bound); the
                    // frames left drop below, to their pools' queues.
                    break;
                }
                let spare = &mut spare[..room];
                let mut k = 0;
                let mut odd = None;
                for slot in spare.iter_mut() {
                    // SAFETY: `done + k < n` (`room <= n - done`): a frame
                    // of the run not taken yet, taken once here.
                    let pkt = unsafe { std::ptr::read(run.add(done + k)) };
                    k += 1;
                    let (buf, pool) = pkt.into_parts();
                    if buf.is_empty() || !std::ptr::eq(Arc::as_ptr(&pool), cached) {
                        odd = Some((buf, pool));
                        break;
                    }
                    slot.write((buf, pool));
                }
                done += k;
                let stored = k - usize::from(odd.is_some());
                // SAFETY: the first `stored` spare elements were
                // initialised above (each `slot.write`), and `len + stored`
                // is within the capacity since they exist.
                unsafe { m.bufs.set_len(len + stored) };
                if let Some((buf, pool)) = odd {
                    // What dropping the frame would do with the magazine
                    // borrowed (see `give_back`): to its own pool's queue
                    // (without a buffer, only the pool reference drops).
                    // Cannot fail: see `Pool::free`.
                    if !buf.is_empty() {
                        let _ = pool.free.push(buf);
                    }
                }
            }
            m.publish();
            // Frames `done..n` (only after the impossible `room == 0`)
            // drop below, with the magazine no longer borrowed.
        });
        // Whatever is left (no magazine on this thread) drops one by one.
        for i in done..n {
            // SAFETY: frames `done..n` were not taken above; each is
            // dropped once, here.
            unsafe { std::ptr::drop_in_place(run.add(i)) };
        }
    }

    /// An empty frame with the pool's headroom, or `None` when every
    /// buffer is in use. Lock-free; does not allocate.
    #[inline]
    pub fn alloc(self: &Arc<Self>) -> Option<PktBuf> {
        match self.take_buf() {
            Some((buf, pool)) => Some(PktBuf {
                buf,
                start: off(self.headroom),
                end: off(self.headroom),
                rss: None,
                port: 0,
                offloads: RxOffloads::default(),
                timestamp_us: None,
                pool: ManuallyDrop::new(pool),
            }),
            None => {
                self.alloc_failures.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// A frame holding a copy of `data`, or `None` when the pool is empty
    /// or `data` is longer than [`max_data_len`](Pool::max_data_len).
    #[inline]
    pub fn alloc_with(self: &Arc<Self>, data: &[u8]) -> Option<PktBuf> {
        if data.len() > self.max_data_len() {
            return None;
        }
        let Some((mut buf, pool)) = self.take_buf() else {
            self.alloc_failures.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let (start, end) = (self.headroom, self.headroom + data.len());
        // Cannot fail: `data` fits after the headroom (checked above) and
        // every buffer of this pool is `buf_size` long. Were it ever to, the
        // frame would come out empty, not out of bounds.
        let end = match buf.get_mut(start..end) {
            Some(dst) => {
                dst.copy_from_slice(data);
                end
            }
            None => start,
        };
        Some(PktBuf {
            buf,
            start: off(start),
            end: off(end),
            rss: None,
            port: 0,
            offloads: RxOffloads::default(),
            timestamp_us: None,
            pool: ManuallyDrop::new(pool),
        })
    }

    /// A copy of `src` (bytes, headroom where it fits, RSS hash, ingress
    /// port, offload flags) in a new buffer from this pool: what flooding
    /// uses to send one frame out of several ports. `None` when the pool
    /// is empty or the frame does not fit in one of this pool's buffers.
    /// [`PktBuf::try_clone`] also copies the timestamp.
    pub fn alloc_copy<F: Frame>(self: &Arc<Self>, src: &F) -> Option<PktBuf> {
        let data = src.data();
        if data.len() > self.buf_size {
            return None;
        }
        let mut pkt = self.alloc()?;
        // Keep the source's headroom so the copy can take the same outer
        // header; fall back to as much as fits.
        let start = src.headroom().min(self.buf_size - data.len());
        pkt.buf
            .get_mut(start..start + data.len())?
            .copy_from_slice(data);
        // Both at most `buf_size` (the copy above was in bounds).
        pkt.start = off(start);
        pkt.end = off(start + data.len());
        pkt.rss = src.rss_hash();
        pkt.port = src.ingress_port();
        pkt.offloads = src.rx_offloads();
        Some(pkt)
    }

    /// Buffers free now (in the shared queue or in threads' magazines).
    /// Exact when no other thread is allocating or freeing; a recent value
    /// otherwise.
    pub fn available(&self) -> usize {
        self.free.len()
            + self
                .magazines
                .iter()
                .map(|s| s.len.load(Ordering::Relaxed))
                .sum::<usize>()
    }

    /// Buffers the pool was created with.
    pub fn capacity(&self) -> usize {
        self.free.capacity()
    }

    /// Buffers handed out and not yet dropped (`capacity - available`).
    pub fn in_use(&self) -> usize {
        self.capacity().saturating_sub(self.available())
    }

    /// Size of every buffer in bytes.
    pub fn buf_size(&self) -> usize {
        self.buf_size
    }

    /// Headroom of a fresh frame.
    pub fn headroom(&self) -> usize {
        self.headroom
    }

    /// The longest frame a fresh buffer holds (`buf_size - headroom`).
    pub fn max_data_len(&self) -> usize {
        self.buf_size - self.headroom
    }

    /// How many times [`alloc`](Pool::alloc) found the pool empty.
    pub fn alloc_failures(&self) -> u64 {
        self.alloc_failures.load(Ordering::Relaxed)
    }
}

/// One frame in a pool buffer: `[headroom | data | tailroom]`. Goes back to
/// its pool when dropped.
///
/// Implements [`Frame`], so the vxlan-core pipeline runs over it directly.
///
/// ```
/// use vxlan_core::frame::Frame;
/// use vxlan_pmd::pool::Pool;
///
/// let pool = Pool::new(2, 256, 128).unwrap();
/// let mut a = pool.alloc().unwrap();
/// a.append(&[1, 2, 3]).unwrap();
/// a.set_ingress_port(7);
/// let b = pool.alloc_copy(&a).unwrap(); // for flooding
/// assert_eq!((b.data(), b.ingress_port()), (&[1u8, 2, 3][..], 7));
/// assert!(pool.alloc().is_none()); // both buffers are out
/// drop((a, b));
/// assert_eq!(pool.available(), 2);
/// ```
pub struct PktBuf {
    /// Invariant: `start <= end <= buf.len()`. Empty only after `Drop`
    /// (or `into_parts`, which consumes the frame) has taken it.
    /// `Frame::data` and `Frame::data_mut` rely on it for memory safety
    /// (unchecked slicing): every function that sets `start` or `end`
    /// (`Pool::alloc`, `alloc_with`, `alloc_copy`, `append`, `reset`,
    /// `prepend`, `strip`, `truncate`) keeps it.
    ///
    /// `start` and `end` are `u32` (a buffer is at most [`MAX_BUF_SIZE`]
    /// bytes, checked by [`Pool::new`]), so that a `PktBuf` fills one
    /// 64-byte cache line: bursts and rings move it by value.
    buf: Box<[u8]>,
    start: u32,
    end: u32,
    rss: Option<u32>,
    port: u16,
    offloads: RxOffloads,
    timestamp_us: Option<u64>,
    /// Taken (moved out) only by `Drop`.
    pool: ManuallyDrop<Arc<Pool>>,
}

impl fmt::Debug for PktBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PktBuf")
            .field("len", &(self.end() - self.start()))
            .field("headroom", &self.start())
            .field("port", &self.port)
            .field("rss", &self.rss)
            .field("timestamp_us", &self.timestamp_us)
            .finish()
    }
}

impl PktBuf {
    /// Where the data starts.
    #[inline(always)]
    fn start(&self) -> usize {
        widen(self.start)
    }

    /// Where the data ends.
    #[inline(always)]
    fn end(&self) -> usize {
        widen(self.end)
    }

    /// Takes the buffer and the pool reference out, leaving nothing for
    /// `Drop` to do.
    #[inline(always)]
    fn into_parts(self) -> (Box<[u8]>, Arc<Pool>) {
        let mut me = ManuallyDrop::new(self);
        let buf = std::mem::take(&mut me.buf);
        // SAFETY: `me` is never dropped (ManuallyDrop) and not used after
        // this line, so the `Arc` taken out of its `ManuallyDrop` field is
        // neither dropped twice nor read again.
        let pool = unsafe { ManuallyDrop::take(&mut me.pool) };
        (buf, pool)
    }

    /// Copies `data` onto the end of the frame.
    pub fn append(&mut self, data: &[u8]) -> Result<(), FrameError> {
        let room = self.tailroom();
        if data.len() > room {
            return Err(FrameError::NoTailroom {
                needed: data.len(),
                available: room,
            });
        }
        let new_end = self.end() + data.len();
        if let Some(dst) = self.buf.get_mut(self.end()..new_end) {
            dst.copy_from_slice(data);
            // At most `buf.len()`: the slice above was in bounds.
            self.end = off(new_end);
        }
        Ok(())
    }

    /// Free bytes after the frame.
    pub fn tailroom(&self) -> usize {
        self.buf.len() - self.end()
    }

    /// The buffer's size in bytes.
    pub fn buf_size(&self) -> usize {
        self.buf.len()
    }

    /// Empties the frame, restores the pool's headroom and clears the
    /// metadata, for reuse without a trip through the pool.
    pub fn reset(&mut self) {
        self.start = off(self.pool.headroom.min(self.buf.len()));
        self.end = self.start;
        self.rss = None;
        self.port = 0;
        self.offloads = RxOffloads::default();
        self.timestamp_us = None;
    }

    /// Sets the RSS hash reported by [`Frame::rss_hash`].
    pub fn set_rss_hash(&mut self, hash: Option<u32>) {
        self.rss = hash;
    }

    /// Sets the port reported by [`Frame::ingress_port`].
    pub fn set_ingress_port(&mut self, port: u16) {
        self.port = port;
    }

    /// Sets what the "NIC" verified, reported by [`Frame::rx_offloads`].
    pub fn set_rx_offloads(&mut self, offloads: RxOffloads) {
        self.offloads = offloads;
    }

    /// When the frame was captured or received, in microseconds since the
    /// Unix epoch, when known (pcap ports set it).
    pub fn timestamp_us(&self) -> Option<u64> {
        self.timestamp_us
    }

    /// Sets the receive timestamp.
    pub fn set_timestamp_us(&mut self, ts: Option<u64>) {
        self.timestamp_us = ts;
    }

    /// The pool this buffer returns to.
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// A copy of this frame, bytes and metadata (timestamp included), in
    /// another buffer of the same pool; `None` when the pool is empty.
    pub fn try_clone(&self) -> Option<PktBuf> {
        let mut copy = self.pool.alloc_copy(self)?;
        copy.timestamp_us = self.timestamp_us;
        Some(copy)
    }
}

impl Frame for PktBuf {
    // Several calls per frame on the packet path: no bounds checks.
    #[inline]
    fn data(&self) -> &[u8] {
        debug_assert!(self.start <= self.end && self.end() <= self.buf.len());
        // SAFETY: `start <= end <= buf.len()` is the struct's invariant
        // (see its fields), kept by every function of this module that sets
        // either field (nothing outside it can), so the range is in bounds.
        unsafe { self.buf.get_unchecked(self.start()..self.end()) }
    }

    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        debug_assert!(self.start <= self.end && self.end() <= self.buf.len());
        let (start, end) = (self.start(), self.end());
        // SAFETY: as in `data`.
        unsafe { self.buf.get_unchecked_mut(start..end) }
    }

    #[inline]
    fn headroom(&self) -> usize {
        self.start()
    }

    #[inline]
    fn prepend(&mut self, len: usize) -> Result<&mut [u8], FrameError> {
        let start = self.start();
        let new_start = start.checked_sub(len).ok_or(FrameError::NoHeadroom {
            needed: len,
            available: start,
        })?;
        // Below the old `start`, a `u32`.
        self.start = off(new_start);
        debug_assert!(new_start + len <= self.buf.len());
        // SAFETY: `new_start + len` is the old `start`, at most
        // `buf.len()` by the invariant (see `data`).
        Ok(unsafe { self.buf.get_unchecked_mut(new_start..new_start + len) })
    }

    #[inline]
    fn strip(&mut self, len: usize) -> Result<(), FrameError> {
        let have = self.end() - self.start();
        if len > have {
            return Err(FrameError::TooShort {
                needed: len,
                len: have,
            });
        }
        // At most the old `end`, a `u32`.
        self.start = off(self.start() + len);
        Ok(())
    }

    #[inline]
    fn truncate(&mut self, len: usize) -> Result<(), FrameError> {
        let have = self.end() - self.start();
        if len > have {
            return Err(FrameError::TooShort {
                needed: len,
                len: have,
            });
        }
        // At most the old `end`, a `u32`.
        self.end = off(self.start() + len);
        Ok(())
    }

    #[inline]
    fn rss_hash(&self) -> Option<u32> {
        self.rss
    }

    #[inline]
    fn ingress_port(&self) -> u16 {
        self.port
    }

    #[inline]
    fn rx_offloads(&self) -> RxOffloads {
        self.offloads
    }
}

/// A frame offset as stored in a [`PktBuf`]. Every caller passes an offset
/// of at most its buffer's length, and [`Pool::new`] makes no buffer longer
/// than [`MAX_BUF_SIZE`] (`u32::MAX`), so nothing is cut off.
#[inline(always)]
fn off(v: usize) -> u32 {
    debug_assert!(v <= MAX_BUF_SIZE);
    // Cannot truncate: see above.
    #[allow(clippy::cast_possible_truncation)]
    let v = v as u32;
    v
}

/// A stored offset as an index (lossless: `usize` has at least 32 bits, as
/// the assertion below checks at compile time).
#[inline(always)]
fn widen(v: u32) -> usize {
    v as usize
}

const _: () = assert!(usize::BITS >= 32, "PktBuf offsets are u32");

impl Drop for PktBuf {
    #[inline]
    fn drop(&mut self) {
        // An empty boxed slice does not allocate, so taking the buffer out
        // is free.
        let buf = std::mem::take(&mut self.buf);
        // SAFETY: `drop` runs once and nothing reads `self.pool` after this
        // line, so taking the `Arc` out of the `ManuallyDrop` neither
        // double-drops nor leaves a dangling use.
        let pool = unsafe { ManuallyDrop::take(&mut self.pool) };
        if !buf.is_empty() {
            Pool::give_back(buf, pool);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_configs_with_advice() {
        assert_eq!(Pool::new(0, 2048, 128).unwrap_err(), PoolError::ZeroCount);
        let e = Pool::new(1, 128, 128).unwrap_err();
        assert_eq!(
            e,
            PoolError::HeadroomTooLarge {
                headroom: 128,
                buf_size: 128
            }
        );
        assert!(e.to_string().contains("smaller than the buffer size"));
        assert!(matches!(
            Pool::new(usize::MAX, 2, 0).unwrap_err(),
            PoolError::TooLarge { .. }
        ));
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn rejects_buffers_past_u32_offsets() {
        // Refused before anything is allocated: a frame's offsets are u32.
        let e = Pool::new(1, MAX_BUF_SIZE + 1, 0).unwrap_err();
        assert_eq!(
            e,
            PoolError::BufferTooLarge {
                buf_size: MAX_BUF_SIZE + 1
            }
        );
        assert!(e.to_string().contains("use smaller buffers"), "{e}");
        assert!(matches!(
            Pool::new(1, usize::MAX, 0).unwrap_err(),
            PoolError::BufferTooLarge { .. }
        ));
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn pktbuf_fills_one_cache_line() {
        // Bursts and rings move frames by value: one line each.
        assert_eq!(std::mem::size_of::<PktBuf>(), 64);
    }

    #[test]
    fn alloc_until_exhausted_then_drop_returns() {
        let pool = Pool::new(8, 256, 64).unwrap();
        let mut held: Vec<PktBuf> = (0..8).map(|_| pool.alloc().unwrap()).collect();
        assert_eq!((pool.available(), pool.in_use()), (0, 8));
        assert!(pool.alloc().is_none());
        assert!(pool.alloc_with(&[1]).is_none());
        assert!(pool.alloc_copy(&held[0]).is_none());
        assert_eq!(pool.alloc_failures(), 3);
        held.pop();
        assert_eq!(pool.available(), 1);
        let again = pool.alloc().unwrap();
        assert_eq!(again.headroom(), 64);
        assert!(again.is_empty());
        drop(again);
        drop(held);
        assert_eq!(pool.available(), pool.capacity());
    }

    #[test]
    fn frame_ops_and_limits() {
        let pool = Pool::new(2, 256, 64).unwrap();
        assert_eq!(pool.max_data_len(), 192);
        assert!(pool.alloc_with(&[0; 193]).is_none());
        assert_eq!(pool.available(), 2, "a too-long copy returns its buffer");
        let mut p = pool.alloc_with(&[7; 192]).unwrap();
        assert_eq!(p.tailroom(), 0);
        assert_eq!(
            p.append(&[1]).unwrap_err(),
            FrameError::NoTailroom {
                needed: 1,
                available: 0
            }
        );
        assert!(matches!(p.prepend(65), Err(FrameError::NoHeadroom { .. })));
        p.prepend(64).unwrap().fill(1);
        assert_eq!(p.len(), 256);
        p.strip(64).unwrap();
        assert!(p.data().iter().all(|&b| b == 7));
        p.truncate(10).unwrap();
        assert!(matches!(p.truncate(11), Err(FrameError::TooShort { .. })));
        assert!(matches!(p.strip(11), Err(FrameError::TooShort { .. })));
        p.data_mut()[0] = 9;
        p.set_rss_hash(Some(42));
        p.set_timestamp_us(Some(5));
        p.reset();
        assert_eq!((p.len(), p.headroom(), p.rss_hash()), (0, 64, None));
        assert_eq!(p.timestamp_us(), None);
        drop(p);
        assert_eq!(pool.available(), pool.capacity());
    }

    #[test]
    fn alloc_copy_keeps_bytes_headroom_and_metadata() {
        let pool = Pool::new(4, 512, 128).unwrap();
        let mut a = pool.alloc_with(&[1, 2, 3, 4]).unwrap();
        a.strip(1).unwrap(); // headroom 129
        a.set_rss_hash(Some(0xdead));
        a.set_ingress_port(3);
        a.set_rx_offloads(RxOffloads {
            ip_checksum_good: true,
            ..RxOffloads::default()
        });
        a.set_timestamp_us(Some(77));
        let b = pool.alloc_copy(&a).unwrap();
        assert_eq!(b.data(), &[2, 3, 4]);
        assert_eq!(b.timestamp_us(), None);
        let twin = a.try_clone().unwrap();
        assert_eq!(
            (twin.data(), twin.timestamp_us()),
            (&[2u8, 3, 4][..], Some(77))
        );
        assert_eq!(twin.headroom(), 129);
        drop(twin);
        assert_eq!(b.headroom(), 129);
        assert_eq!((b.rss_hash(), b.ingress_port()), (Some(0xdead), 3));
        assert!(b.rx_offloads().ip_checksum_good);
        // Into a pool with smaller buffers: the headroom shrinks to fit.
        let small = Pool::new(1, 4, 0).unwrap();
        let c = small.alloc_copy(&b).unwrap();
        assert_eq!((c.data(), c.headroom()), (&[2u8, 3, 4][..], 1));
        drop(c);
        let big = pool.alloc_with(&[0; 5]).unwrap();
        assert!(small.alloc_copy(&big).is_none(), "does not fit");
        drop((a, b, big));
        assert_eq!(pool.available(), pool.capacity());
        assert_eq!(small.available(), small.capacity());
    }

    #[test]
    fn magazine_caches_on_its_thread_and_accounts_exactly() {
        let pool = Pool::new(300, 256, 64).unwrap();
        let other = Pool::new(4, 256, 64).unwrap();
        // A plain thread, joined: its thread-local magazine is returned by
        // the time `join` returns (a scoped thread's may not be yet).
        let (p2, o2) = (Arc::clone(&pool), Arc::clone(&other));
        std::thread::spawn(move || {
            let (pool, other) = (p2, o2);
            {
                assert!(pool.cache_on_this_thread());
                assert!(pool.cache_on_this_thread(), "idempotent");
                assert!(!other.cache_on_this_thread(), "one pool per thread");
                let a = pool.alloc_with(&[1, 2, 3]).unwrap();
                // The first alloc took a block from the queue.
                assert_eq!(pool.free.len(), 300 - MAGAZINE_BLOCK);
                assert_eq!((pool.available(), pool.in_use()), (299, 1));
                assert_eq!((a.data(), a.headroom()), (&[1u8, 2, 3][..], 64));
                drop(a);
                assert_eq!(pool.available(), 300);
                assert_eq!(
                    pool.free.len(),
                    300 - MAGAZINE_BLOCK,
                    "back in the magazine"
                );
                // A buffer of another pool goes to that pool's queue.
                drop(other.alloc().unwrap());
                assert_eq!(other.free.len(), 4);
                // Exhaust the pool through the magazine, then free all: the
                // magazine spills blocks to the queue and never grows.
                let held: Vec<PktBuf> = std::iter::from_fn(|| pool.alloc()).collect();
                assert_eq!(held.len(), 300);
                assert_eq!((pool.available(), pool.alloc_failures()), (0, 1));
                drop(held);
                assert_eq!(pool.available(), 300);
                let cached = pool.magazines.iter().map(|m| m.len.load(Ordering::Relaxed));
                assert!(cached.sum::<usize>() <= 2 * MAGAZINE_BLOCK);
                // Freed on another thread: to the shared queue.
                let p = pool.alloc().unwrap();
                let before = pool.free.len();
                std::thread::spawn(move || drop(p)).join().unwrap();
                assert_eq!(pool.free.len(), before + 1);
                assert_eq!(pool.available(), 300);
                let _ = pool.alloc().unwrap(); // leave the magazine non-empty
            }
        })
        .join()
        .unwrap();
        // The thread's exit returned its magazine and released its slot.
        assert_eq!(pool.free.len(), 300);
        assert_eq!(pool.available(), pool.capacity());
        assert!(pool
            .magazines
            .iter()
            .all(|m| !m.claimed.load(Ordering::Relaxed)));
        assert_eq!(
            Arc::strong_count(&pool),
            1,
            "no buffer or magazine holds the pool"
        );
        // Flushing by hand does the same.
        assert!(pool.cache_on_this_thread());
        let p = pool.alloc().unwrap();
        drop(p);
        assert_eq!(pool.free.len(), 300 - MAGAZINE_BLOCK);
        Pool::flush_this_thread();
        assert_eq!(pool.free.len(), 300);
        assert_eq!(Arc::strong_count(&pool), 1);
    }

    /// Rounds per thread of the two-thread tests: fewer under Miri (slow),
    /// still both threads allocating and freeing at once, each frame
    /// checked.
    const ROUNDS: u32 = if cfg!(miri) { 200 } else { 20_000 };

    #[test]
    fn magazines_on_two_threads_share_one_pool_exactly() {
        let pool = Pool::new(2 * 2 * MAGAZINE_BLOCK + 8, 256, 64).unwrap();
        let threads: Vec<_> = (0..2u8)
            .map(|t| {
                let pool = Arc::clone(&pool);
                std::thread::spawn(move || {
                    assert!(pool.cache_on_this_thread());
                    let mut held = Vec::new();
                    for round in 0..ROUNDS {
                        if round % 7 == 6 {
                            held.clear();
                        }
                        if let Some(p) = pool.alloc_with(&[t; 16]) {
                            assert_eq!(p.data(), &[t; 16]);
                            held.push(p);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(pool.free.len(), pool.capacity());
        assert_eq!(pool.available(), pool.capacity());
        assert_eq!(Arc::strong_count(&pool), 1);
    }

    #[test]
    fn concurrent_alloc_free_accounts_exactly() {
        let pool = Pool::new(64, 256, 64).unwrap();
        let threads: Vec<_> = (0..2u8)
            .map(|t| {
                let pool = Arc::clone(&pool);
                std::thread::spawn(move || {
                    let mut held = Vec::with_capacity(64);
                    let mut got = 0u64;
                    for round in 0..ROUNDS {
                        if round % 3 == 2 {
                            held.clear();
                        }
                        if let Some(p) = pool.alloc_with(&[t; 16]) {
                            assert_eq!(p.data(), &[t; 16]);
                            got += 1;
                            held.push(p);
                        }
                    }
                    // Hand the last ones to the main thread: buffers may be
                    // freed on any thread.
                    (got, held)
                })
            })
            .collect();
        let mut total = 0;
        let mut leftovers = Vec::new();
        for h in threads {
            let (got, held) = h.join().unwrap();
            total += got;
            leftovers.extend(held);
        }
        assert!(total > 0);
        assert_eq!(pool.in_use(), leftovers.len());
        drop(leftovers);
        assert_eq!(pool.available(), pool.capacity());
        assert_eq!(pool.in_use(), 0);
    }

    #[test]
    fn free_all_returns_every_frame_exactly() {
        // On a thread of its own: the magazine is per thread.
        std::thread::spawn(|| {
            let a = Pool::new(400, 256, 64).unwrap();
            let b = Pool::new(8, 256, 64).unwrap();
            let mut pkts = Vec::new();
            // No magazine: everything drops the ordinary way.
            pkts.push(a.alloc().unwrap());
            Pool::free_all(&mut pkts);
            assert!(pkts.is_empty());
            assert_eq!(a.available(), 400);
            assert!(a.cache_on_this_thread());
            // Under Miri (slow): one round.
            for round in 0..if cfg!(miri) { 1 } else { 3 } {
                // More than a magazine holds, with another pool's frames
                // mixed in (first, last and between).
                pkts.push(b.alloc().unwrap());
                for i in 0..300 {
                    pkts.push(a.alloc_with(&[u8::try_from(i % 256).unwrap()]).unwrap());
                    if i == 150 {
                        pkts.push(b.alloc().unwrap());
                    }
                }
                pkts.push(b.alloc().unwrap());
                assert_eq!((a.in_use(), b.in_use()), (300, 3), "round {round}");
                Pool::free_all(&mut pkts);
                assert!(pkts.is_empty());
                assert_eq!(a.available(), 400, "round {round}");
                assert_eq!(b.available(), 8, "round {round}");
            }
            // A burst that just fills the magazine leaves it full: nothing
            // is flushed to the queue before a frame needs the room. (An
            // empty magazine first: the allocations below then empty it
            // again, block by block.)
            Pool::flush_this_thread();
            assert!(a.cache_on_this_thread());
            let queued = a.free.len();
            let held: Vec<PktBuf> = (0..2 * MAGAZINE_BLOCK)
                .map(|_| a.alloc().unwrap())
                .collect();
            let after_alloc = a.free.len();
            assert!(after_alloc <= queued);
            pkts.extend(held);
            Pool::free_all(&mut pkts);
            assert_eq!(a.free.len(), after_alloc, "no flush for a burst that fits");
            assert_eq!(a.available(), 400);
            // Buffers freed in bulk are handed out again, intact.
            let again: Vec<PktBuf> = (0..400).map(|_| a.alloc().unwrap()).collect();
            assert!(again.iter().all(|p| p.buf_size() == 256 && p.is_empty()));
            assert!(a.alloc().is_none());
            drop(again);
            Pool::flush_this_thread();
            assert_eq!(a.available(), 400);
        })
        .join()
        .unwrap();
    }
}
