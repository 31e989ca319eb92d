//! Events for the control plane and the bounded single-producer,
//! single-consumer ring they go into.
//!
//! Each packet core owns one [`EventRing`] (in caller storage) and pushes
//! through its [`EventProducer`]; the control thread drains it through the
//! [`EventConsumer`]. A full ring drops the event, counts it and returns at
//! once: the packet path never waits.

use crate::sync::{AtomicU64, AtomicUsize, Ordering};
use crate::wire::MacAddr;

use super::slot::CachePadded;
use super::word::{key_word, split_key, Location};

/// What happened to an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A new entry was learned.
    Learned,
    /// A learned MAC moved; `previous` holds the old location.
    Moved,
    /// A learned entry aged out.
    Aged,
    /// Move dampening froze the MAC at `location`.
    Frozen,
}

/// An FDB event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// Bridge domain.
    pub bd: u16,
    /// The MAC.
    pub mac: MacAddr,
    /// The entry's location (after the move for [`EventKind::Moved`]).
    pub location: Location,
    /// The location before a move.
    pub previous: Option<Location>,
}

/// Where the FDB writes events. Implemented by [`EventProducer`] and by
/// [`NoEvents`]; tests may implement it on a `Vec`.
pub trait EventSink {
    /// Records `event`. Must not block or allocate on the packet path.
    fn emit(&mut self, event: Event);
}

/// An [`EventSink`] that discards everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEvents;

impl EventSink for NoEvents {
    #[inline(always)]
    fn emit(&mut self, _event: Event) {}
}

/// One ring cell: three words written by the producer before it publishes
/// the tail, read by the consumer after it observes the tail.
#[derive(Debug)]
pub struct EventSlot {
    /// Invariant (all three): written only by the producer while the cell
    /// is outside `[head, tail)`; read only by the consumer while inside.
    words: [AtomicU64; 3],
}

impl EventSlot {
    /// An empty cell.
    #[cfg(not(loom))]
    pub const fn new() -> EventSlot {
        EventSlot {
            words: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    /// An empty cell.
    #[cfg(loom)]
    pub fn new() -> EventSlot {
        EventSlot {
            words: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
        }
    }
}

impl Default for EventSlot {
    fn default() -> EventSlot {
        EventSlot::new()
    }
}

/// A bounded SPSC event ring over caller-provided cells.
///
/// ```
/// use vxlan_core::fdb::{Event, EventKind, EventRing, EventSink, EventSlot, Location};
/// use vxlan_core::wire::MacAddr;
///
/// let cells: Vec<EventSlot> = (0..2).map(|_| EventSlot::new()).collect();
/// let mut ring = EventRing::new(&cells);
/// let (mut tx, mut rx) = ring.split();
/// let ev = Event {
///     kind: EventKind::Learned,
///     bd: 1,
///     mac: MacAddr([2, 0, 0, 0, 0, 1]),
///     location: Location::port(3),
///     previous: None,
/// };
/// for _ in 0..3 {
///     tx.emit(ev);
/// }
/// assert_eq!(rx.pop(), Some(ev));
/// assert_eq!(rx.pop(), Some(ev));
/// assert_eq!(rx.pop(), None);
/// assert_eq!(tx.dropped(), 1); // the third did not fit
/// ```
#[derive(Debug)]
pub struct EventRing<'a> {
    /// The cells. Invariant: never resized.
    cells: &'a [EventSlot],
    /// Next cell the consumer reads (monotonic, wraps modulo `usize`).
    /// Written only by the consumer, with Release after it has read the
    /// cell, so the producer's Acquire load of `head` orders its reuse of
    /// the cell after that read.
    head: CachePadded<AtomicUsize>,
    /// Next cell the producer writes. Written only by the producer, with
    /// Release after the cell's words, so the consumer's Acquire load of
    /// `tail` makes the words visible.
    tail: CachePadded<AtomicUsize>,
    /// Events dropped because the ring was full (Relaxed: a statistic).
    dropped: AtomicU64,
}

impl<'a> EventRing<'a> {
    /// A ring over `cells` (its capacity is `cells.len()`).
    pub fn new(cells: &'a [EventSlot]) -> EventRing<'a> {
        EventRing {
            cells,
            head: CachePadded(AtomicUsize::new(0)),
            tail: CachePadded(AtomicUsize::new(0)),
            dropped: AtomicU64::new(0),
        }
    }

    /// The producer and consumer halves. Taking `&mut self` makes sure
    /// there is only one of each.
    pub fn split(&mut self) -> (EventProducer<'_, 'a>, EventConsumer<'_, 'a>) {
        (EventProducer { ring: self }, EventConsumer { ring: self })
    }

    /// Events dropped so far because the ring was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The producing half of an [`EventRing`] (one per packet core).
#[derive(Debug)]
pub struct EventProducer<'r, 'a> {
    ring: &'r EventRing<'a>,
}

/// The consuming half of an [`EventRing`] (the control thread).
#[derive(Debug)]
pub struct EventConsumer<'r, 'a> {
    ring: &'r EventRing<'a>,
}

fn kind_code(kind: EventKind) -> u64 {
    match kind {
        EventKind::Learned => 0,
        EventKind::Moved => 1,
        EventKind::Aged => 2,
        EventKind::Frozen => 3,
    }
}

impl EventProducer<'_, '_> {
    /// Events dropped so far because the ring was full.
    pub fn dropped(&self) -> u64 {
        self.ring.dropped()
    }

    /// Pushes `event`; false (and the drop counted) when the ring is full.
    pub fn push(&mut self, event: Event) -> bool {
        let ring = self.ring;
        let cap = ring.cells.len();
        // Relaxed: only this producer writes `tail`.
        let tail = ring.tail.load(Ordering::Relaxed);
        // Acquire: pairs with the consumer's Release store of `head`, so the
        // consumer's reads of a freed cell happen before we overwrite it.
        let head = ring.head.load(Ordering::Acquire);
        if cap == 0 || tail.wrapping_sub(head) >= cap {
            ring.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let Some(cell) = ring.cells.get(tail % cap) else {
            return false;
        };
        let loc = u64::from(event.location.encode().unwrap_or(0));
        let (has_prev, prev) = match event.previous {
            Some(p) => (1u64, u64::from(p.encode().unwrap_or(0))),
            None => (0, 0),
        };
        // Relaxed: published by the Release store of `tail` below.
        cell.words[0].store(key_word(event.bd, event.mac), Ordering::Relaxed);
        cell.words[1].store(loc | (prev << 32), Ordering::Relaxed);
        cell.words[2].store(kind_code(event.kind) | (has_prev << 8), Ordering::Relaxed);
        // Release: makes the three words visible to the consumer's Acquire
        // load of `tail`.
        ring.tail.store(tail.wrapping_add(1), Ordering::Release);
        true
    }
}

impl EventSink for EventProducer<'_, '_> {
    #[inline]
    fn emit(&mut self, event: Event) {
        self.push(event);
    }
}

impl EventConsumer<'_, '_> {
    /// Takes the oldest event, if any.
    pub fn pop(&mut self) -> Option<Event> {
        let ring = self.ring;
        let cap = ring.cells.len();
        // Relaxed: only this consumer writes `head`.
        let head = ring.head.load(Ordering::Relaxed);
        // Acquire: pairs with the producer's Release store of `tail`, making
        // the cell's words visible.
        let tail = ring.tail.load(Ordering::Acquire);
        if head == tail || cap == 0 {
            return None;
        }
        let cell = ring.cells.get(head % cap)?;
        let key = cell.words[0].load(Ordering::Relaxed);
        let locs = cell.words[1].load(Ordering::Relaxed);
        let meta = cell.words[2].load(Ordering::Relaxed);
        // Release: our reads of the cell happen before the producer (after
        // its Acquire load of `head`) reuses it.
        ring.head.store(head.wrapping_add(1), Ordering::Release);
        let (bd, mac) = split_key(key);
        // Truncations intended: two 32-bit location codes in one word.
        #[allow(clippy::cast_possible_truncation)]
        let (loc, prev) = (locs as u32, (locs >> 32) as u32);
        let kind = match meta & 0xff {
            0 => EventKind::Learned,
            1 => EventKind::Moved,
            2 => EventKind::Aged,
            _ => EventKind::Frozen,
        };
        Some(Event {
            kind,
            bd,
            mac,
            location: Location::decode(loc),
            previous: if meta & 0x100 != 0 {
                Some(Location::decode(prev))
            } else {
                None
            },
        })
    }
}
