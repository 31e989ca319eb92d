//! A bounded single-producer single-consumer ring that moves frames a
//! burst at a time: the in-memory ports' link ([`crate::memport`]).
//!
//! One [`Producer`] and one [`Consumer`] share a fixed array of slots and
//! two positions: `tail`, advanced only by the producer, and `head`,
//! advanced only by the consumer. A burst is moved in with plain copies
//! into the free slots followed by one release store of `tail`, and out
//! with one acquire load of `tail`, plain copies and one release store of
//! `head`: no read-modify-write at all, and each side reads the other's
//! position only when its cached copy shows less room (or fewer frames)
//! than the call asks to move, which while a ring drains in full bursts is
//! most calls.
//!
//! The release store of `tail` after writing the slots, paired with the
//! consumer's acquire load of it, is what makes a frame (and every byte
//! the producer wrote into its buffer before) visible to the consumer; the
//! consumer's release store of `head` after reading the slots, paired with
//! the producer's acquire load, is what lets the producer reuse them.
//!
//! Positions run over `0..2 * capacity`, so a full ring (`tail - head ==
//! capacity`) and an empty one (`tail == head`) differ without a spare
//! slot, and the capacity need not be a power of two. The model checks
//! (`RUSTFLAGS="--cfg loom" cargo test -p vxlan-pmd --release --lib
//! ring::loom`) run both sides on two threads under loom.

use std::mem::MaybeUninit;
use std::ptr;

use crossbeam_utils::CachePadded;

#[cfg(loom)]
use ::loom::cell::UnsafeCell;
#[cfg(loom)]
use ::loom::sync::atomic::{AtomicUsize, Ordering};
#[cfg(loom)]
use ::loom::sync::Arc;
#[cfg(not(loom))]
use std::sync::atomic::{AtomicUsize, Ordering};
#[cfg(not(loom))]
use std::sync::Arc;

/// `std`'s `UnsafeCell` with loom's access API, so that the ring's code is
/// the same when it is model-checked. Transparent, so a slice of slots has
/// the layout of a slice of `T` (`UnsafeCell` and `MaybeUninit` are
/// transparent too) and a run of slots can be copied in one go.
#[cfg(not(loom))]
#[repr(transparent)]
struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    fn new(v: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(v))
    }

    #[inline(always)]
    fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// What both ends share.
struct Shared<T> {
    /// Invariant: the slots of the positions from `head` (inclusive) to
    /// `tail` (exclusive) hold initialised values, owned by the ring; all
    /// others are uninitialised. Only the producer writes slots outside
    /// that range, and only the consumer reads (moves out of) slots in it.
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    /// The consumer's position. Stored (Release) only by the consumer.
    head: CachePadded<AtomicUsize>,
    /// The producer's position. Stored (Release) only by the producer.
    tail: CachePadded<AtomicUsize>,
}

// SAFETY: the ring moves `T`s from the producer's thread to the consumer's
// (so `T: Send` is needed and enough); the slots are only accessed under
// the protocol above (each slot by one side at a time, handed over by the
// Release/Acquire pairs on `head` and `tail`), so sharing `Shared` between
// the two threads is sound.
unsafe impl<T: Send> Send for Shared<T> {}
// SAFETY: as for `Send`.
unsafe impl<T: Send> Sync for Shared<T> {}

impl<T> Shared<T> {
    #[inline(always)]
    fn cap(&self) -> usize {
        self.slots.len()
    }

    /// How many positions `to` is after `from` (both in `0..2 * cap`).
    #[inline(always)]
    fn distance(&self, from: usize, to: usize) -> usize {
        if to >= from {
            to - from
        } else {
            to + 2 * self.cap() - from
        }
    }

    /// `pos` moved on by `n <= cap`.
    #[inline(always)]
    fn advance(&self, pos: usize, n: usize) -> usize {
        let p = pos + n;
        if p >= 2 * self.cap() {
            p - 2 * self.cap()
        } else {
            p
        }
    }

    /// Moves `n` values from `src` into slots `at..at + n`.
    ///
    /// # Safety
    /// Those slots are free and only this (the producer's) thread touches
    /// them; `src` points at `n` initialised values that the caller gives
    /// up.
    #[inline(always)]
    unsafe fn put(&self, at: usize, src: *const T, n: usize) {
        let seg = &self.slots[at..at + n];
        #[cfg(not(loom))]
        {
            let dst =
                std::cell::UnsafeCell::<MaybeUninit<T>>::raw_get(seg.as_ptr().cast()).cast::<T>();
            // SAFETY: `seg` is `n` slots laid out as `[T; n]` (see
            // `UnsafeCell`), written through the cells' own pointer; free,
            // so nothing is overwritten that needed dropping; `src` is the
            // caller's, which does not overlap the ring.
            unsafe { ptr::copy_nonoverlapping(src, dst, n) };
        }
        #[cfg(loom)]
        for (k, slot) in seg.iter().enumerate() {
            slot.with_mut(|p| {
                // SAFETY: as above, one slot at a time, so that loom checks
                // each access.
                unsafe { (*p).write(ptr::read(src.add(k))) };
            });
        }
    }

    /// Moves the `n` values out of slots `at..at + n` to `dst`.
    ///
    /// # Safety
    /// Those slots hold values that only this (the consumer's) thread
    /// reads, and the caller releases them after (never reading them
    /// again); `dst` has room for `n` values.
    #[inline(always)]
    unsafe fn take(&self, at: usize, dst: *mut T, n: usize) {
        let seg = &self.slots[at..at + n];
        #[cfg(not(loom))]
        {
            let src =
                std::cell::UnsafeCell::<MaybeUninit<T>>::raw_get(seg.as_ptr().cast()).cast::<T>();
            // SAFETY: `seg` is `n` initialised values laid out as
            // `[T; n]`, moved out once (the caller releases the slots);
            // `dst` is the caller's room, which does not overlap the ring.
            unsafe { ptr::copy_nonoverlapping(src.cast_const(), dst, n) };
        }
        #[cfg(loom)]
        for (k, slot) in seg.iter().enumerate() {
            slot.with_mut(|p| {
                // SAFETY: as above, one slot at a time, so that loom checks
                // each access.
                unsafe { ptr::write(dst.add(k), (*p).assume_init_read()) };
            });
        }
    }

    /// The slot index of position `pos`.
    #[inline(always)]
    fn index(&self, pos: usize) -> usize {
        if pos >= self.cap() {
            pos - self.cap()
        } else {
            pos
        }
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        // Both ends are gone (this is the last `Arc`), and the `Arc`'s own
        // drop orders their last stores before this: Relaxed is enough.
        let (head, tail) = (
            self.head.load(Ordering::Relaxed),
            self.tail.load(Ordering::Relaxed),
        );
        let n = self.distance(head, tail);
        let mut pos = head;
        for _ in 0..n {
            let i = self.index(pos);
            self.slots[i].with_mut(|p| {
                // SAFETY: by the slot invariant, the slot of every position
                // from `head` to `tail` holds an initialised value that the
                // ring owns; each is dropped once, here, and never read
                // again.
                unsafe { (*p).assume_init_drop() }
            });
            pos = self.advance(pos, 1);
        }
    }
}

/// A ring of `capacity` values (at least 1): its two ends.
pub(crate) fn ring<T>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    // The positions run to `3 * capacity` before wrapping (see `advance`).
    let capacity = capacity.clamp(1, usize::MAX / 4);
    let shared = Arc::new(Shared {
        slots: (0..capacity)
            .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
            .collect(),
        head: CachePadded::new(AtomicUsize::new(0)),
        tail: CachePadded::new(AtomicUsize::new(0)),
    });
    (
        Producer {
            shared: Arc::clone(&shared),
            tail: 0,
            head: 0,
        },
        Consumer {
            shared,
            head: 0,
            tail: 0,
        },
    )
}

/// The sending end.
pub(crate) struct Producer<T> {
    shared: Arc<Shared<T>>,
    /// Our position (the last one stored to `shared.tail`).
    tail: usize,
    /// The consumer's position as last loaded: it only moves on, so the
    /// free room computed from it is never more than the real room.
    head: usize,
}

impl<T> Producer<T> {
    /// Free slots, reloading the consumer's position only when the cached
    /// one shows fewer than `want`.
    #[inline(always)]
    fn room(&mut self, want: usize) -> usize {
        let s = &*self.shared;
        let mut free = s.cap() - s.distance(self.head, self.tail);
        if free < want {
            // Acquire: pairs with the consumer's Release store of `head`,
            // so its reads of the slots it gave back happened before we
            // write them.
            self.head = s.head.load(Ordering::Acquire);
            free = s.cap() - s.distance(self.head, self.tail);
        }
        free
    }

    /// Publishes `n` slots written after `self.tail`.
    #[inline(always)]
    fn publish(&mut self, n: usize) {
        self.tail = self.shared.advance(self.tail, n);
        // Release: the writes of the slots (and of whatever the values
        // point to) happen before the consumer sees the new position.
        self.shared.tail.store(self.tail, Ordering::Release);
    }

    /// Moves `n` values from `src` into the slots after `self.tail`.
    ///
    /// # Safety
    /// `n <= self.room(..)`, and `src` points at `n` initialised values
    /// that the caller gives up (it must not drop or use them after).
    #[inline(always)]
    unsafe fn write(&mut self, src: *const T, n: usize) {
        let s = &*self.shared;
        let at = s.index(self.tail);
        let first = n.min(s.cap() - at);
        // SAFETY: the `n` slots after `tail` (to the end of the array,
        // then from its start) are free, as `n <= room`; `src` holds `n`
        // values the caller gives up.
        unsafe {
            s.put(at, src, first);
            // Only when the run wraps: a copy of nothing is still a call.
            if n > first {
                s.put(0, src.add(first), n - first);
            }
        }
    }

    /// Sends `value`, or gives it back when the ring is full.
    pub(crate) fn push(&mut self, value: T) -> Result<(), T> {
        if self.room(1) == 0 {
            return Err(value);
        }
        let value = std::mem::ManuallyDrop::new(value);
        // SAFETY: one free slot; `value` is read once and never dropped
        // here (ManuallyDrop).
        unsafe { self.write(&*value, 1) };
        self.publish(1);
        Ok(())
    }

    /// Moves as many of the first values of `src` in as fit, in order, and
    /// leaves the rest in `src` (in order, at its front). Returns how many
    /// it moved in.
    pub(crate) fn push_from(&mut self, src: &mut Vec<T>) -> usize {
        let len = src.len();
        let n = len.min(self.room(len));
        if n == 0 {
            return 0;
        }
        let base = src.as_mut_ptr();
        // SAFETY: `src` gives up its first `n` values: its length is set
        // to 0 first (so a panic could only leak them, never drop them
        // twice), they are moved into the ring (`n <= room`), the other
        // `len - n` values are moved down to the front, and the length set
        // to cover exactly those.
        unsafe {
            src.set_len(0);
            self.write(base, n);
            ptr::copy(base.add(n), base, len - n);
            src.set_len(len - n);
        }
        self.publish(n);
        n
    }

    /// Free slots now.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn free(&mut self) -> usize {
        self.room(usize::MAX)
    }
}

/// The receiving end.
pub(crate) struct Consumer<T> {
    shared: Arc<Shared<T>>,
    /// Our position (the last one stored to `shared.head`).
    head: usize,
    /// The producer's position as last loaded: it only moves on, so the
    /// count computed from it is never more than what is there.
    tail: usize,
}

impl<T> Consumer<T> {
    /// Values waiting, reloading the producer's position only when the
    /// cached one shows fewer than `want`.
    #[inline(always)]
    fn waiting(&mut self, want: usize) -> usize {
        let s = &*self.shared;
        let mut n = s.distance(self.head, self.tail);
        if n < want {
            // Acquire: pairs with the producer's Release store of `tail`,
            // so its writes of the slots happened before we read them.
            self.tail = s.tail.load(Ordering::Acquire);
            n = s.distance(self.head, self.tail);
        }
        n
    }

    /// Hands `n` read slots back to the producer.
    #[inline(always)]
    fn release(&mut self, n: usize) {
        self.head = self.shared.advance(self.head, n);
        // Release: our reads of the slots happen before the producer may
        // write them again.
        self.shared.head.store(self.head, Ordering::Release);
    }

    /// Moves the `n` values after `self.head` to `dst`.
    ///
    /// # Safety
    /// `n <= self.waiting(..)`, and `dst` has room for `n` values, which
    /// the caller takes ownership of (and `release`s the slots).
    #[inline(always)]
    unsafe fn read(&mut self, dst: *mut T, n: usize) {
        let s = &*self.shared;
        let at = s.index(self.head);
        let first = n.min(s.cap() - at);
        // SAFETY: the `n` slots after `head` (to the end of the array,
        // then from its start) hold values, as `n <= waiting`; the caller
        // releases them and has room for `n` at `dst`.
        unsafe {
            s.take(at, dst, first);
            // Only when the run wraps: a copy of nothing is still a call.
            if n > first {
                s.take(0, dst.add(first), n - first);
            }
        }
    }

    /// Takes the oldest value, if any.
    pub(crate) fn pop(&mut self) -> Option<T> {
        if self.waiting(1) == 0 {
            return None;
        }
        let mut out = MaybeUninit::<T>::uninit();
        // SAFETY: one value waits; `out` has room for it.
        unsafe { self.read(out.as_mut_ptr(), 1) };
        self.release(1);
        // SAFETY: `read` initialised it.
        Some(unsafe { out.assume_init() })
    }

    /// Appends up to `max` of the oldest values to `dst`, in order, no more
    /// than its spare capacity holds (it never reallocates). Returns how
    /// many.
    pub(crate) fn pop_into(&mut self, dst: &mut Vec<T>, max: usize) -> usize {
        let max = max.min(dst.capacity() - dst.len());
        let n = self.waiting(max).min(max);
        if n == 0 {
            return 0;
        }
        let len = dst.len();
        // SAFETY: `n` values wait, and `dst` has spare capacity for `n`
        // after its `len` values; `read` initialises exactly those, and
        // the length then covers them.
        unsafe {
            self.read(dst.as_mut_ptr().add(len), n);
            dst.set_len(len + n);
        }
        self.release(n);
        n
    }

    /// Hands up to `max` of the oldest values to `take`, in order, where
    /// they lie in the ring (no copy out first): as at most two runs of
    /// slots (the ring wraps), each given as a pointer and a count; then
    /// releases the slots. Returns how many.
    ///
    /// # Safety
    ///
    /// `take` takes ownership of every value of each run it is given: it
    /// moves out or drops each exactly once, touches nothing past the run,
    /// and keeps no pointer into it after it returns.
    pub(crate) unsafe fn pop_runs(
        &mut self,
        max: usize,
        mut take: impl FnMut(*mut T, usize),
    ) -> usize {
        let n = self.waiting(max).min(max);
        if n == 0 {
            return 0;
        }
        let s = &*self.shared;
        #[cfg(not(loom))]
        {
            let at = s.index(self.head);
            let first = n.min(s.cap() - at);
            let base = std::cell::UnsafeCell::<MaybeUninit<T>>::raw_get(s.slots.as_ptr().cast())
                .cast::<T>();
            // SAFETY: the `n` slots after `head` (`first` from `at` to the
            // end of the array, then the rest from its start) hold values
            // that only this (the consumer's) thread reads, as
            // `n <= waiting`; `take` moves them out (its contract), and the
            // slots are released below and never read again. The slots
            // are laid out as `[T]` (see `UnsafeCell`).
            unsafe {
                take(base.add(at), first);
                if n > first {
                    take(base, n - first);
                }
            }
        }
        #[cfg(loom)]
        for k in 0..n {
            let mut one = MaybeUninit::<T>::uninit();
            // SAFETY: as above, one value at a time through a local, so
            // that loom checks each access.
            unsafe {
                s.take(s.index(s.advance(self.head, k)), one.as_mut_ptr(), 1);
                take(one.as_mut_ptr(), 1);
            }
        }
        self.release(n);
        n
    }

    /// Values waiting now.
    pub(crate) fn len(&self) -> usize {
        // Acquire, as in `waiting`, though only the count is used.
        let tail = self.shared.tail.load(Ordering::Acquire);
        self.shared.distance(self.head, tail)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn pop_runs_hands_over_in_order_across_the_wrap() {
        for cap in [1, 3, 5, 8] {
            let (mut p, mut c) = ring::<Box<usize>>(cap);
            let (mut next_in, mut next_out) = (0, 0);
            for round in 0..100usize {
                let burst = round % (cap + 2);
                let mut src: Vec<Box<usize>> = (0..burst).map(|i| Box::new(next_in + i)).collect();
                next_in += p.push_from(&mut src);
                let max = round % 5;
                let mut runs = 0;
                // SAFETY: every value of each run is moved out (and then
                // dropped) once, and no pointer is kept.
                let got = unsafe {
                    c.pop_runs(max, |run, n| {
                        runs += 1;
                        for k in 0..n {
                            let v = std::ptr::read(run.add(k));
                            assert_eq!(*v, next_out, "cap {cap} round {round}");
                            next_out += 1;
                        }
                    })
                };
                assert!(runs <= 2);
                assert_eq!(got, max.min(next_in - (next_out - got)));
                assert_eq!(c.len(), next_in - next_out);
            }
        }
    }

    #[test]
    fn order_capacity_and_wrap() {
        for cap in [1, 2, 3, 5, 8] {
            let (mut p, mut c) = ring::<Box<usize>>(cap);
            let mut next_in = 0;
            let mut next_out = 0;
            let mut out = Vec::with_capacity(16);
            // Many laps, with bursts of every size against every fill.
            for round in 0..200usize {
                let burst = round % (cap + 3);
                let mut src: Vec<Box<usize>> = (0..burst).map(|i| Box::new(next_in + i)).collect();
                let free = p.free();
                let n = p.push_from(&mut src);
                assert_eq!(n, burst.min(free), "cap {cap} round {round}");
                assert_eq!(src.len(), burst - n);
                // What did not fit stays, in order, at the front.
                for (k, v) in src.iter().enumerate() {
                    assert_eq!(**v, next_in + n + k);
                }
                next_in += n;
                assert_eq!(c.len(), next_in - next_out);
                let take = round % 4;
                let got = c.pop_into(&mut out, take);
                assert_eq!(got, take.min(next_in - next_out));
                for v in out.drain(..) {
                    assert_eq!(*v, next_out);
                    next_out += 1;
                }
                if round % 7 == 0 {
                    if let Some(v) = c.pop() {
                        assert_eq!(*v, next_out);
                        next_out += 1;
                    }
                }
            }
            // Single pushes up to full.
            while let Some(v) = c.pop() {
                assert_eq!(*v, next_out);
                next_out += 1;
            }
            for i in 0..cap {
                assert!(p.push(Box::new(i)).is_ok());
            }
            assert_eq!(*p.push(Box::new(99)).unwrap_err(), 99, "full");
            assert_eq!(c.len(), cap);
        }
    }

    #[test]
    fn pop_into_respects_spare_capacity() {
        let (mut p, mut c) = ring::<u32>(8);
        let mut src = vec![1, 2, 3, 4, 5];
        assert_eq!(p.push_from(&mut src), 5);
        let mut dst = Vec::with_capacity(3);
        dst.push(0);
        assert_eq!(c.pop_into(&mut dst, 32), 2, "only the spare capacity");
        assert_eq!(dst, [0, 1, 2]);
        assert_eq!(dst.capacity(), 3);
        assert_eq!(c.pop_into(&mut Vec::with_capacity(8), 0), 0);
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn values_in_flight_are_dropped_once() {
        let live = std::sync::Arc::new(());
        {
            let (mut p, mut c) = ring::<std::sync::Arc<()>>(4);
            let mut src: Vec<_> = (0..6).map(|_| std::sync::Arc::clone(&live)).collect();
            assert_eq!(p.push_from(&mut src), 4);
            assert_eq!(src.len(), 2);
            drop(src);
            assert!(c.pop().is_some());
            // Wrap once more, then drop both ends with 3 in flight.
            assert!(p.push(std::sync::Arc::clone(&live)).is_ok());
            assert!(c.pop().is_some());
            assert_eq!(std::sync::Arc::strong_count(&live), 1 + 3);
            let t = std::thread::spawn(move || drop(p));
            drop(c);
            t.join().unwrap();
        }
        assert_eq!(
            std::sync::Arc::strong_count(&live),
            1,
            "no leak, no double drop"
        );
    }

    #[test]
    fn two_threads_in_order() {
        let (mut p, mut c) = ring::<Box<u64>>(16);
        // Fewer under Miri (slow), still many laps of the ring.
        const N: u64 = if cfg!(miri) { 500 } else { 100_000 };
        let t = std::thread::spawn(move || {
            let mut next = 0;
            let mut src = Vec::with_capacity(32);
            while next < N || !src.is_empty() {
                while src.len() < 32 && next < N {
                    src.push(Box::new(next));
                    next += 1;
                }
                if p.push_from(&mut src) == 0 {
                    std::thread::yield_now();
                }
            }
        });
        let mut out = Vec::with_capacity(32);
        let mut expect = 0;
        while expect < N {
            if c.pop_into(&mut out, 32) == 0 {
                std::thread::yield_now();
            }
            for v in out.drain(..) {
                assert_eq!(*v, expect);
                expect += 1;
            }
        }
        t.join().unwrap();
        assert_eq!(c.len(), 0);
    }
}

#[cfg(all(test, loom))]
mod loom {
    use super::*;
    use ::loom::sync::atomic::AtomicUsize as Count;
    use ::loom::thread;

    /// A value that counts its drops, to check that every value is dropped
    /// exactly once whichever way the threads interleave.
    struct Tracked(usize, Arc<Count>);

    impl Drop for Tracked {
        fn drop(&mut self) {
            self.1.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A burst of three through a ring of two: the producer retries what
    /// did not fit, the consumer takes bursts and single values; order is
    /// kept and every slot is handed over cleanly (loom's cells check that
    /// no slot is read while it is written).
    #[test]
    fn burst_through_a_small_ring() {
        ::loom::model(|| {
            let drops = Arc::new(Count::new(0));
            let (mut p, mut c) = ring::<Tracked>(2);
            let d = Arc::clone(&drops);
            let t = thread::spawn(move || {
                let mut src: Vec<Tracked> = (0..3).map(|i| Tracked(i, Arc::clone(&d))).collect();
                while !src.is_empty() {
                    if p.push_from(&mut src) == 0 {
                        thread::yield_now();
                    }
                }
            });
            let mut out = Vec::with_capacity(4);
            let mut seen = 0;
            while seen < 3 {
                let got = if seen == 1 {
                    usize::from(c.pop().map(|v| out.push(v)).is_some())
                } else {
                    c.pop_into(&mut out, 4)
                };
                if got == 0 {
                    thread::yield_now();
                }
                for v in out.drain(..) {
                    assert_eq!(v.0, seen);
                    seen += 1;
                }
            }
            t.join().unwrap();
            assert_eq!(drops.load(Ordering::Relaxed), 3);
        });
    }

    /// Five values through a ring of two, the consumer taking one value
    /// first and then bursts of up to two: the positions pass `2 *
    /// capacity` (they wrap) and bursts are split across the array's end
    /// on both sides, so the second copy of `put` and of `take` runs under
    /// the model too.
    #[test]
    fn bursts_wrap_and_split_across_the_end() {
        let mut model = ::loom::model::Builder::new();
        model.preemption_bound = Some(3);
        model.check(|| {
            let (mut p, mut c) = ring::<usize>(2);
            let t = thread::spawn(move || {
                let mut src: Vec<usize> = (0..5).collect();
                while !src.is_empty() {
                    if p.push_from(&mut src) == 0 {
                        thread::yield_now();
                    }
                }
            });
            let mut out = Vec::with_capacity(2);
            let mut seen = 0;
            while seen < 5 {
                let max = if seen == 0 { 1 } else { 2 };
                if c.pop_into(&mut out, max) == 0 {
                    thread::yield_now();
                }
                for v in out.drain(..) {
                    assert_eq!(v, seen);
                    seen += 1;
                }
            }
            t.join().unwrap();
            assert_eq!(c.len(), 0);
        });
    }

    /// Both ends dropped on different threads while values are in flight:
    /// whichever drops last drops what is left in the ring, exactly once.
    #[test]
    fn drop_with_values_in_flight() {
        ::loom::model(|| {
            let drops = Arc::new(Count::new(0));
            let (mut p, mut c) = ring::<Tracked>(2);
            let d = Arc::clone(&drops);
            let t = thread::spawn(move || {
                let mut src = vec![Tracked(0, Arc::clone(&d)), Tracked(1, d)];
                let _ = p.push_from(&mut src);
                // What did not fit drops with `src`, here.
            });
            let got = c.pop();
            drop(got);
            drop(c);
            t.join().unwrap();
            assert_eq!(drops.load(Ordering::Relaxed), 2);
        });
    }
}
