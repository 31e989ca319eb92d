//! The [`Fdb`] itself: construction, hashing, probing, reservations,
//! lookups and statistics. Learning, control-plane operations and ageing are
//! in sibling modules as further `impl Fdb` blocks.

use crate::sync::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use crate::wire::MacAddr;

use super::config::{validate, FdbConfig, FdbConfigError, FdbStats, LearnOutcome};
use super::slot::{BdCounter, CachePadded, ColdSlot, Slot};
use super::word::{
    decode_entry, ends_probe, gen_of, key_id, key_word, same_gen, valid_query, Entry, PackedEntry,
    KEY_BLOCKED,
};

/// The largest batch [`Fdb::lookup_batch`] pipelines at once.
pub const BATCH: usize = 32;

/// A (bridge domain, MAC) key, pre-encoded for [`Fdb::lookup_batch`] and
/// [`Fdb::lookup_batch_packed`]. Invariant: a valid query word (no
/// generation bits, not zero, not a blocked slot's key bits), so the batched
/// probe needs no check of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FdbKey(pub(crate) u64);

/// The query word an unusable key is replaced with: bridge domain 0 and
/// the multicast MAC `01:00:00:00:00:00`. Multicast MACs are never stored
/// (every insert path requires a learnable MAC), so it matches no slot,
/// and it is neither empty nor blocked, so it matches no terminator.
const NEVER_STORED: u64 = 1 << 40;

impl FdbKey {
    /// The key of `mac` in bridge domain `bd`. A key that can never be
    /// stored (bridge domain 4096 or above, the all-zero MAC) is replaced by
    /// another key that is never stored either, so it simply misses.
    ///
    /// ```
    /// # use vxlan_core::fdb::FdbKey;
    /// # use vxlan_core::wire::MacAddr;
    /// let a = FdbKey::new(7, MacAddr([2, 0, 0, 0, 0, 1]));
    /// assert_ne!(a, FdbKey::new(8, MacAddr([2, 0, 0, 0, 0, 1])));
    /// ```
    #[inline(always)]
    pub fn new(bd: u16, mac: MacAddr) -> FdbKey {
        let k = key_word(bd, mac);
        FdbKey(if valid_query(k) { k } else { NEVER_STORED })
    }
}

/// Relaxed event counters. They are bumped only on rare paths (inserts,
/// moves, refusals, ageing), never on lookups or plain refreshes, so one
/// cache-padded block is enough.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) learns: AtomicU64,
    pub(crate) moves: AtomicU64,
    pub(crate) ages: AtomicU64,
    pub(crate) refused_table_full: AtomicU64,
    pub(crate) refused_bd_limit: AtomicU64,
    pub(crate) freezes: AtomicU64,
    pub(crate) frozen_refused: AtomicU64,
    pub(crate) pinned_refused: AtomicU64,
    pub(crate) busy: AtomicU64,
}

#[inline(always)]
pub(crate) fn bump(c: &AtomicU64) {
    // Relaxed: a statistic; orders nothing.
    c.fetch_add(1, Ordering::Relaxed);
}

/// Result of walking a key's probe sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    /// The slot holding the key (live, reserved or dead), and the key word
    /// read there (with the slot's generation).
    Found(usize, u64),
    /// The first empty slot, and its empty key word (with the slot's
    /// generation, which an inserter keeps): the key is absent.
    Vacant(usize, u64),
    /// A slot the ager has blocked: retry later.
    Blocked,
    /// `max_probe` slots without the key or an empty slot.
    Exhausted,
}

/// The lock-free forwarding database. See the [module documentation](super)
/// for the layout and the atomic protocol.
///
/// ```
/// use vxlan_core::fdb::{
///     BdCounter, ColdSlot, Fdb, FdbConfig, Kind, LearnOutcome, Location, NoEvents, Slot,
/// };
/// use vxlan_core::wire::MacAddr;
///
/// let slots: Vec<Slot> = (0..1024).map(|_| Slot::new()).collect();
/// let cold: Vec<ColdSlot> = (0..1024).map(|_| ColdSlot::new()).collect();
/// let bds: Vec<BdCounter> = (0..16).map(|_| BdCounter::new()).collect();
/// let fdb = Fdb::new(&slots, &cold, &bds, FdbConfig::new(512)).unwrap();
///
/// let mac = MacAddr([0x02, 0, 0, 0, 0, 0x42]);
/// let now = 10;
/// assert_eq!(fdb.learn(3, mac, Location::port(1), now, &mut NoEvents), LearnOutcome::Learned);
/// let entry = fdb.lookup(3, mac).unwrap();
/// assert_eq!(entry.location, Location::port(1));
/// assert_eq!(entry.kind, Kind::Learned);
/// // The VM migrated behind remote VTEP 7:
/// assert!(matches!(
///     fdb.learn(3, mac, Location::Remote(7), now + 1, &mut NoEvents),
///     LearnOutcome::Moved { .. }
/// ));
/// assert_eq!(fdb.lookup(3, mac).unwrap().location, Location::Remote(7));
/// assert_eq!(fdb.lookup(4, mac), None); // another bridge domain
/// ```
#[derive(Debug)]
pub struct Fdb<'a> {
    /// The hash table. Invariant: at least 8 slots; see the
    /// module documentation for the per-slot protocol.
    pub(crate) slots: &'a [Slot],
    /// Parallel cold array. Invariant: same length as `slots`.
    pub(crate) cold: &'a [ColdSlot],
    /// Per-bridge-domain counters; its length is the number of bridge
    /// domains. Invariant: 1..=4096 long.
    pub(crate) bds: &'a [BdCounter],
    /// Number of 4-slot buckets homes are spread over.
    pub(super) buckets: u64,
    /// Index of the first slot on a 64-byte boundary (0..4): every home is
    /// `base + 4 * bucket`, the first slot of a cache line, so a probe's
    /// first line holds the four slots most keys live in.
    pub(super) base: usize,
    /// Longest probe sequence. Invariant: no key is ever stored further
    /// than `max_probe - 1` slots from its home.
    pub(crate) max_probe: usize,
    /// Immutable after construction.
    pub(crate) cfg: FdbConfig,
    /// Live entries plus in-flight reservations (the global capacity).
    /// Invariant: incremented before an entry is published, decremented
    /// after it stops being live. Relaxed: it is a budget, not a guard for
    /// any data (the slot CASes order the data).
    pub(crate) live: CachePadded<AtomicU32>,
    /// Statistics.
    pub(crate) counters: CachePadded<Counters>,
    /// Next slot the ageing sweep visits. Written only by the thread
    /// holding `sweeping`.
    pub(crate) age_cursor: AtomicUsize,
    /// True while one thread runs `age_step`: the trim protocol needs a
    /// single trimmer. Acquire on taking it, Release on leaving, so
    /// consecutive sweeps (even on different threads) see each other's
    /// cursor and trims.
    pub(crate) sweeping: AtomicBool,
}

/// Slots to skip from the start of `slots` to reach a 64-byte boundary
/// (0 under loom, whose runs must not depend on addresses).
fn line_offset(slots: &[Slot]) -> usize {
    if cfg!(loom) || core::mem::size_of::<Slot>() != 16 {
        return 0;
    }
    let addr = slots.as_ptr() as usize;
    ((64 - addr % 64) % 64) / 16
}

/// The hash: one multiply by an odd constant (2^64 over the golden ratio).
/// Only its high bits are used (the multiply-high in [`Fdb::home`]), and
/// those depend on every bit of the key, low bits most (where MACs
/// differ); the bridge domain bits (48..60) reach only the top bits, which
/// are exactly the ones used.
#[inline(always)]
pub(super) fn mix(key: u64) -> u64 {
    key.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl<'a> Fdb<'a> {
    /// An FDB over caller-provided storage: `slots` (any count of at least
    /// 8, and at least 8/7 of `config.max_entries`), `cold` (same length) and one
    /// [`BdCounter`] per bridge domain (at most 4096). The storage must be
    /// empty (all-zero); it is not cleared here, so hugepage memory is not
    /// touched up front.
    pub fn new(
        slots: &'a [Slot],
        cold: &'a [ColdSlot],
        bds: &'a [BdCounter],
        config: FdbConfig,
    ) -> Result<Fdb<'a>, FdbConfigError> {
        validate(slots.len(), cold.len(), bds.len(), &config)?;
        Ok(Fdb {
            slots,
            cold,
            bds,
            buckets: u64::try_from((slots.len() - line_offset(slots)) / 4).unwrap_or(u64::MAX),
            base: line_offset(slots),
            max_probe: usize::try_from(config.max_probe)
                .unwrap_or(usize::MAX)
                .min(slots.len()),
            cfg: config,
            live: CachePadded(AtomicU32::new(0)),
            counters: CachePadded(Counters::default()),
            age_cursor: AtomicUsize::new(0),
            sweeping: AtomicBool::new(false),
        })
    }

    /// Slots for `entries` entries at a load factor of 1/2 (two slots per
    /// entry, at least 8): most hits and misses then resolve in the home
    /// cache line. Any count of at least `entries * 8 / 7` is accepted by
    /// [`Fdb::new`].
    pub const fn slots_for(entries: usize) -> usize {
        let n = entries.saturating_mul(2);
        if n <= 8 {
            8
        } else {
            n
        }
    }

    /// The configuration.
    pub fn config(&self) -> &FdbConfig {
        &self.cfg
    }

    /// Number of bridge domains.
    pub fn bridge_domains(&self) -> usize {
        self.bds.len()
    }

    /// The home slot of `key`: the first slot of a 4-slot, line-aligned
    /// bucket, chosen by mapping the hash onto the bucket count with a
    /// multiply-high (so any table size works). Probing then runs linearly
    /// from there, across bucket boundaries, wrapping at the end.
    #[inline(always)]
    pub(crate) fn home(&self, key: u64) -> usize {
        let b = (u128::from(mix(key)) * u128::from(self.buckets)) >> 64;
        // Truncation impossible: `b < buckets <= slots.len() / 4`, a usize.
        #[allow(clippy::cast_possible_truncation)]
        let b = b as usize;
        self.base + 4 * b
    }

    /// The slot after `i`, wrapping at the end of the table.
    #[inline(always)]
    pub(crate) fn next(&self, i: usize) -> usize {
        let j = i + 1;
        if j == self.slots.len() {
            0
        } else {
            j
        }
    }

    /// The slot before `i`, wrapping at the start of the table.
    #[inline(always)]
    pub(crate) fn prev(&self, i: usize) -> usize {
        if i == 0 {
            self.slots.len() - 1
        } else {
            i - 1
        }
    }

    /// Slot `i` (`i < slots.len()`).
    #[inline(always)]
    pub(crate) fn slot(&self, i: usize) -> &Slot {
        &self.slots[i]
    }

    /// Cold cell `i` (`i < slots.len()`).
    #[inline(always)]
    pub(crate) fn cold(&self, i: usize) -> &ColdSlot {
        &self.cold[i]
    }

    /// Walks `key`'s probe sequence from its home. `key` has no generation
    /// bits; the returned key word has the slot's.
    #[inline]
    pub(crate) fn probe(&self, key: u64, home: usize) -> Probe {
        let mut i = home;
        for _ in 0..self.max_probe {
            // Acquire: if this is our key, pairs with the inserter's CAS so
            // the value we read next is at least the reservation (of this
            // generation: the trim that bumped the generation wrote it
            // before the key became EMPTY).
            let k = self.slot(i).key.load(Ordering::Acquire);
            if key_id(k) == key {
                return Probe::Found(i, k);
            }
            if ends_probe(k) {
                return if k == KEY_BLOCKED {
                    Probe::Blocked
                } else {
                    Probe::Vacant(i, k)
                };
            }
            i = self.next(i);
        }
        Probe::Exhausted
    }

    /// The four slots of the line starting at slot `h` of `slots`.
    ///
    /// # Safety
    ///
    /// `h + 4 <= slots.len()`. Every home of a table ([`Fdb::home`]) is
    /// such an `h` for its `slots`: `h = base + 4 * b` with `b < buckets`
    /// and `buckets = (slots.len() - base) / 4`.
    #[inline(always)]
    unsafe fn line_unchecked(slots: &[Slot], h: usize) -> &[Slot; 4] {
        debug_assert!(h + 4 <= slots.len());
        // SAFETY: the four slots are in `slots` (the caller's contract), and
        // an array of four `Slot`s has the layout of four consecutive slice
        // elements.
        unsafe { &*slots.as_ptr().add(h).cast::<[Slot; 4]>() }
    }

    /// The four key words of `line`.
    #[inline(always)]
    pub(super) fn line_keys(line: &[Slot; 4]) -> [u64; 4] {
        // Acquire (each): see `probe`.
        [
            line[0].key.load(Ordering::Acquire),
            line[1].key.load(Ordering::Acquire),
            line[2].key.load(Ordering::Acquire),
            line[3].key.load(Ordering::Acquire),
        ]
    }

    /// The index of the first of the key words `k` holding `key`'s key
    /// bits (`key` has no generation bits), or 4 or more when none does.
    /// Branch-free: `(k ^ key) << 4` is zero exactly for our key bits (the
    /// generation shifted out) and leaves the low four bits clear for the
    /// slot's index, so the smallest of the four tagged values is the first
    /// match's index when there is one, and at least 16 otherwise.
    #[inline(always)]
    pub(super) fn first_hit(k: &[u64; 4], key: u64) -> u64 {
        let z = |i: u64, w: u64| ((w ^ key) << 4) | i;
        z(0, k[0]).min(z(1, k[1])).min(z(2, k[2]).min(z(3, k[3])))
    }

    /// True when the last of the key words `k` is a terminator (EMPTY of
    /// any generation, or BLOCKED: [`ends_probe`]): then the probe ends in
    /// this line. One slot, not four: a line's non-terminator slots are a
    /// prefix of it (homes are line starts, so every key in a line has the
    /// slots before it in its probe, and a live key never sits behind a
    /// hole), so when the line holds a terminator its last slot is one.
    /// The exceptions (a dead key behind a hole, left by an insert that
    /// withdrew, or by a trim in progress) only make the probe go on to the
    /// next line where a walk would have stopped, and reading further is
    /// safe for the reason given in [`Fdb::scan_line`]: whatever holds our
    /// key bits there was in the table at the moment it was read, and a
    /// withdrawn or dead key reads as a miss through its value. Stopping is
    /// never wrong: the last slot is a terminator, so a walk would have
    /// stopped there or earlier.
    #[inline(always)]
    pub(super) fn line_ends(k: &[u64; 4]) -> bool {
        ends_probe(k[3])
    }

    /// The value word for slot `at` (below 4, from [`Fdb::first_hit`]) of
    /// `line`: see [`reread_raw`].
    #[inline(always)]
    pub(super) fn read_hit(line: &[Slot; 4], at: u64, key: u64) -> u64 {
        // `& 3`: `at < 4`, so this changes nothing and spares the bounds
        // check.
        reread_raw(&line[(at & 3) as usize], key)
    }

    /// One line of `key`'s probe (`line`), scanned without a branch per
    /// slot. `Some` with the value word as [`read_raw`] gives it (0 for a
    /// miss) when the line decides, `None` when the key is not in the line
    /// and the line holds no terminator (the probe goes on at the next
    /// line).
    ///
    /// The first slot holding our key bits is the one to read, whether or
    /// not a terminator precedes it in the line: keys never move and a live
    /// key never sits behind a hole, so our key seen there was in the table
    /// at that moment (a withdrawn or unpublished insert reads as a miss
    /// through its value, and of two slots with our key bits the earlier one
    /// is the one a walk finds). This holds for any line of the probe up to
    /// `max_probe`.
    #[inline(always)]
    fn scan_line(line: &[Slot; 4], key: u64) -> Option<u64> {
        let k = Self::line_keys(line);
        let at = Self::first_hit(&k, key);
        if at < 4 {
            return Some(Self::read_hit(line, at, key));
        }
        if Self::line_ends(&k) {
            return Some(0);
        }
        None
    }

    /// The rest of a lookup whose home line `h` neither held `key` nor a
    /// terminator: the following lines, each scanned as the home line was,
    /// while a whole line fits in the table (no wrap) and in `max_probe`,
    /// then slot by slot. The value word as [`Fdb::scan_line`] gives it.
    /// Out of line: rare (a few percent of hits, about one miss in six at
    /// load 1/2), and it keeps the registers of the loops that call it
    /// free.
    #[inline(never)]
    fn lookup_rest(&self, key: u64, h: usize) -> u64 {
        let mut i = h + 4;
        let mut left = self.max_probe.saturating_sub(4);
        while left >= 4 {
            let Some(line) = self.slots.get(i..).and_then(<[Slot]>::first_chunk::<4>) else {
                break;
            };
            if let Some(v) = Self::scan_line(line, key) {
                return v;
            }
            i += 4;
            left -= 4;
        }
        self.walk_rest(key, i, left)
    }

    /// The slot-by-slot end of a probe: at most `left` slots (none: a
    /// miss) from slot `i`, where `i` may run up to one table length past
    /// the end (the probe wraps).
    #[cold]
    #[inline(never)]
    pub(super) fn walk_rest(&self, key: u64, i: usize, left: usize) -> u64 {
        if left == 0 {
            return 0;
        }
        let n = self.slots.len();
        self.walk(key, if i >= n { i - n } else { i }, left)
    }

    /// The whole lookup of `key` (a valid query word): the value word of its
    /// slot if of the key word's generation, else 0.
    #[inline(always)]
    fn lookup_raw(&self, key: u64) -> u64 {
        let h = self.home(key);
        // SAFETY: `h` is a home of this table.
        match Self::scan_line(unsafe { Self::line_unchecked(self.slots, h) }, key) {
            Some(v) => v,
            None => self.lookup_rest(key, h),
        }
    }

    /// The slot-by-slot probe from `i`, at most `left` slots (at least 1);
    /// the value word as [`Fdb::lookup_raw`] returns it.
    #[inline]
    fn walk(&self, key: u64, mut i: usize, mut left: usize) -> u64 {
        let slots = self.slots;
        loop {
            // `i` is always in range; `get` spares the panic path.
            let Some(s) = slots.get(i) else {
                return 0;
            };
            // Acquire: see `probe`.
            let k = s.key.load(Ordering::Acquire);
            if key_id(k) == key {
                return read_raw(s, k);
            }
            // EMPTY (any generation) or BLOCKED: the key is absent.
            if ends_probe(k) {
                return 0;
            }
            left -= 1;
            if left == 0 {
                return 0;
            }
            i += 1;
            if i == slots.len() {
                i = 0;
            }
        }
    }

    /// The entry for `mac` in bridge domain `bd`, if live. Never blocks,
    /// never writes shared memory.
    #[inline(always)]
    pub fn lookup(&self, bd: u16, mac: MacAddr) -> Option<Entry> {
        self.lookup_packed(bd, mac).entry()
    }

    /// [`Fdb::lookup`] without decoding: the entry's value word as a
    /// [`PackedEntry`], for callers that need only some fields.
    ///
    /// ```
    /// # use vxlan_core::fdb::*;
    /// # use vxlan_core::wire::MacAddr;
    /// # let slots: Vec<Slot> = (0..64).map(|_| Slot::new()).collect();
    /// # let cold: Vec<ColdSlot> = (0..64).map(|_| ColdSlot::new()).collect();
    /// # let bds = [BdCounter::new()];
    /// let fdb = Fdb::new(&slots, &cold, &bds, FdbConfig::new(32)).unwrap();
    /// let a = MacAddr([2, 0, 0, 0, 0, 1]);
    /// fdb.add_static(0, a, Location::Remote(3)).unwrap();
    /// assert_eq!(fdb.lookup_packed(0, a).location(), Some(Location::Remote(3)));
    /// assert!(!fdb.lookup_packed(0, MacAddr([2, 0, 0, 0, 0, 2])).is_hit());
    /// ```
    #[inline(always)]
    pub fn lookup_packed(&self, bd: u16, mac: MacAddr) -> PackedEntry {
        let key = key_word(bd, mac);
        if !valid_query(key) {
            return PackedEntry::MISS;
        }
        PackedEntry::from_word(self.lookup_raw(key))
    }

    /// Looks up `keys[i]` into `out[i]` for `i < min(keys.len(), out.len())`,
    /// [`BATCH`] keys at a time: first every key's home line is hashed and
    /// prefetched, then the home lines are scanned, so the cache misses
    /// overlap. [`Fdb::lookup_batch_packed`] does the same without decoding
    /// the entries, which is cheaper when only the location is needed.
    ///
    /// ```
    /// # use vxlan_core::fdb::*;
    /// # use vxlan_core::wire::MacAddr;
    /// # let slots: Vec<Slot> = (0..64).map(|_| Slot::new()).collect();
    /// # let cold: Vec<ColdSlot> = (0..64).map(|_| ColdSlot::new()).collect();
    /// # let bds = [BdCounter::new()];
    /// let fdb = Fdb::new(&slots, &cold, &bds, FdbConfig::new(32)).unwrap();
    /// let a = MacAddr([2, 0, 0, 0, 0, 1]);
    /// fdb.add_static(0, a, Location::port(9)).unwrap();
    /// let keys = [FdbKey::new(0, a), FdbKey::new(0, MacAddr([2, 0, 0, 0, 0, 2]))];
    /// let mut out = [None; 2];
    /// fdb.lookup_batch(&keys, &mut out);
    /// assert_eq!(out[0].unwrap().location, Location::port(9));
    /// assert_eq!(out[1], None);
    /// ```
    pub fn lookup_batch(&self, keys: &[FdbKey], out: &mut [Option<Entry>]) {
        self.batch(keys, out, |o, v| {
            // A miss writes only the discriminant; writing the whole
            // `Option` made the compiler carry a hit's fields across
            // iterations (spilled to the stack) to fill a miss's padding.
            *o = None;
            if let Some(e) = decode_entry(v) {
                *o = Some(e);
            }
        });
    }

    /// [`Fdb::lookup_batch`] into [`PackedEntry`]s: each result is the
    /// entry's value word as read (one store per key), decoded only when
    /// and as far as the caller asks ([`PackedEntry::location`],
    /// [`PackedEntry::entry`]).
    ///
    /// ```
    /// # use vxlan_core::fdb::*;
    /// # use vxlan_core::wire::MacAddr;
    /// # let slots: Vec<Slot> = (0..64).map(|_| Slot::new()).collect();
    /// # let cold: Vec<ColdSlot> = (0..64).map(|_| ColdSlot::new()).collect();
    /// # let bds = [BdCounter::new()];
    /// let fdb = Fdb::new(&slots, &cold, &bds, FdbConfig::new(32)).unwrap();
    /// let a = MacAddr([2, 0, 0, 0, 0, 1]);
    /// fdb.add_static(0, a, Location::port(9)).unwrap();
    /// let keys = [FdbKey::new(0, a), FdbKey::new(0, MacAddr([2, 0, 0, 0, 0, 2]))];
    /// let mut out = [PackedEntry::MISS; 2];
    /// fdb.lookup_batch_packed(&keys, &mut out);
    /// assert_eq!(out[0].location(), Some(Location::port(9)));
    /// assert_eq!(out[0].entry().unwrap().kind, Kind::Static);
    /// assert!(!out[1].is_hit());
    /// ```
    pub fn lookup_batch_packed(&self, keys: &[FdbKey], out: &mut [PackedEntry]) {
        self.batch(keys, out, |o, v| *o = PackedEntry::from_word(v));
    }

    /// The batched lookup, each result handed to `put` as a value word (as
    /// [`Fdb::lookup_raw`] returns it). Per chunk of [`BATCH`] keys: hash
    /// every key and prefetch its home line; scan the home lines (nearly
    /// every hit and about five misses in six end there at load 1/2),
    /// noting the keys whose probe goes on and prefetching their next two
    /// lines; then rounds over the keys still open, one line further each
    /// (and one more line prefetched), until every probe has ended. Lines
    /// are scanned whole while they fit in the table and in `max_probe`;
    /// the rest of a probe (a wrap, a `max_probe` that is not a multiple of
    /// 4) goes slot by slot.
    #[inline(always)]
    fn batch<T>(&self, keys: &[FdbKey], out: &mut [T], put: impl Fn(&mut T, u64)) {
        let n = keys.len().min(out.len());
        let (keys, out) = (&keys[..n], &mut out[..n]);
        // A local: the Acquire loads would otherwise make the compiler
        // reload the field for every key.
        let slots = self.slots;
        // One past the last slot: a line `l` is in the table when
        // `l + 1 <= end`.
        let end = slots.as_ptr_range().end;
        for (keys, out) in keys.chunks(BATCH).zip(out.chunks_mut(BATCH)) {
            // Each key's home line as a pointer (the probes below then need
            // no index arithmetic). `wrapping_add`: plain arithmetic, safe
            // whatever the value; every home is in range anyway.
            let mut lines = [core::ptr::null::<[Slot; 4]>(); BATCH];
            for (l, k) in lines.iter_mut().zip(keys) {
                *l = slots.as_ptr().wrapping_add(self.home(k.0)).cast();
                prefetch(l.cast());
            }
            // Indices (in the chunk) of the keys the home line left open.
            let mut open = [0u8; BATCH];
            let mut n_open = 0;
            for (i, ((o, k), &l)) in out.iter_mut().zip(keys).zip(&lines).enumerate() {
                // SAFETY: `l` points at slot `h = Fdb::home(k)` of `slots`,
                // and `h + 4 <= slots.len()` for every home (see
                // `Fdb::line_unchecked`): four live, in-bounds slots, with
                // the layout of `[Slot; 4]`, borrowed for as long as `slots`.
                let line = unsafe { &*l };
                let kw = Self::line_keys(line);
                let at = Self::first_hit(&kw, k.0);
                if at < 4 {
                    put(o, Self::read_hit(line, at, k.0));
                } else {
                    // Whether a miss's probe goes on is not a branch (a miss
                    // cannot predict it): the key's index is always written
                    // and counted only if it goes on, and the line
                    // prefetched is the next one if it goes on, else the
                    // home line again (in L1 already).
                    let go_on = !Self::line_ends(&kw);
                    put(o, 0);
                    // `% BATCH`: `n_open` counts keys of this chunk so far,
                    // fewer than BATCH; spares the bounds check. Truncation
                    // impossible: `i < BATCH <= 256`.
                    #[allow(clippy::cast_possible_truncation)]
                    let i = i as u8;
                    open[n_open % BATCH] = i;
                    n_open += usize::from(go_on);
                    // A prefetch needs no bounds check (`wrapping_add`
                    // keeps the arithmetic safe; it never faults). Two lines
                    // ahead: about a quarter of the probes that leave the
                    // home line leave the next one too (load 1/2), and the
                    // round that scans it comes too soon after for a
                    // prefetch issued there to arrive in time.
                    let ahead = 4 * usize::from(go_on);
                    prefetch(l.cast::<Slot>().wrapping_add(ahead));
                    prefetch(l.cast::<Slot>().wrapping_add(2 * ahead));
                }
            }
            // The keys still open, one line further per round (each
            // prefetched two rounds before), until every probe ended:
            // after round `r`, `r + 1` lines (`4 * (r + 1)` slots) of each
            // open key's probe were scanned and `lines` holds the last.
            let mut left = self.max_probe.saturating_sub(4);
            let mut scanned = 1;
            while n_open > 0 {
                let mut still = 0;
                for j in 0..n_open.min(BATCH) {
                    let i = usize::from(open[j]);
                    let (Some(o), Some(k), Some(l)) =
                        (out.get_mut(i), keys.get(i), lines.get_mut(i))
                    else {
                        continue;
                    };
                    let next = l.wrapping_add(1);
                    if left < 4 || next.wrapping_add(1).cast::<Slot>() > end {
                        // The probe ends within this line or wraps: slot
                        // by slot (rare).
                        put(o, self.walk_rest(k.0, self.home(k.0) + 4 * scanned, left));
                        continue;
                    }
                    *l = next;
                    // SAFETY: `next` is the line after a line of `slots`
                    // (the home line, or one that passed this check), and
                    // it ends at or before `end`: four live, in-bounds
                    // slots, borrowed for as long as `slots`.
                    let line = unsafe { &*next };
                    let kw = Self::line_keys(line);
                    let at = Self::first_hit(&kw, k.0);
                    if at < 4 {
                        put(o, Self::read_hit(line, at, k.0));
                    } else {
                        // As in the home-line pass. `still <= j`, so the
                        // list compacts in place.
                        let go_on = !Self::line_ends(&kw);
                        put(o, 0);
                        #[allow(clippy::cast_possible_truncation)]
                        let i = i as u8;
                        open[still % BATCH] = i;
                        still += usize::from(go_on);
                        // The next line was prefetched with this one;
                        // the one after it now.
                        prefetch(next.cast::<Slot>().wrapping_add(8 * usize::from(go_on)));
                    }
                }
                n_open = still;
                left = left.saturating_sub(4);
                scanned += 1;
            }
        }
    }

    /// Takes one unit of the global budget and, for learned entries, one of
    /// the bridge domain's; undone on refusal.
    pub(crate) fn reserve(&self, bd: u16, learned: bool) -> Result<(), LearnOutcome> {
        // Relaxed: a counter used as a budget (see `live`).
        if self.live.fetch_add(1, Ordering::Relaxed) >= self.cfg.max_entries {
            self.live.fetch_sub(1, Ordering::Relaxed);
            bump(&self.counters.refused_table_full);
            return Err(LearnOutcome::TableFull);
        }
        let Some(c) = self.bds.get(usize::from(bd)) else {
            self.live.fetch_sub(1, Ordering::Relaxed);
            return Err(LearnOutcome::Invalid);
        };
        let before = c.entries.fetch_add(1, Ordering::Relaxed);
        if learned && before >= self.bd_limit(bd) {
            c.entries.fetch_sub(1, Ordering::Relaxed);
            self.live.fetch_sub(1, Ordering::Relaxed);
            bump(&self.counters.refused_bd_limit);
            return Err(LearnOutcome::BdLimit);
        }
        Ok(())
    }

    /// Returns what `reserve` took (an entry stopped being live, or a
    /// reservation was abandoned).
    pub(crate) fn unreserve(&self, bd: u16) {
        if let Some(c) = self.bds.get(usize::from(bd)) {
            c.entries.fetch_sub(1, Ordering::Relaxed);
        }
        self.live.fetch_sub(1, Ordering::Relaxed);
    }

    /// The learned-entry limit of bridge domain `bd`.
    pub fn bd_limit(&self, bd: u16) -> u32 {
        match self.bds.get(usize::from(bd)) {
            // Relaxed: a configuration value; a learner racing a change may
            // use either limit.
            Some(c) => match c.limit.load(Ordering::Relaxed) {
                0 => self.cfg.bd_limit,
                l => l,
            },
            None => 0,
        }
    }

    /// Sets bridge domain `bd`'s learned-entry limit (0 restores the
    /// configured default). Existing entries are not evicted.
    pub fn set_bd_limit(&self, bd: u16, limit: u32) {
        if let Some(c) = self.bds.get(usize::from(bd)) {
            c.limit.store(limit, Ordering::Relaxed);
        }
    }

    /// Entries in bridge domain `bd` (in-flight insertions included).
    pub fn bd_entries(&self, bd: u16) -> u32 {
        self.bds
            .get(usize::from(bd))
            .map_or(0, |c| c.entries.load(Ordering::Relaxed))
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> FdbStats {
        let c = &self.counters;
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        FdbStats {
            entries: self.live.load(Ordering::Relaxed),
            learns: r(&c.learns),
            moves: r(&c.moves),
            ages: r(&c.ages),
            refused_table_full: r(&c.refused_table_full),
            refused_bd_limit: r(&c.refused_bd_limit),
            freezes: r(&c.freezes),
            frozen_refused: r(&c.frozen_refused),
            pinned_refused: r(&c.pinned_refused),
            busy: r(&c.busy),
        }
    }

    /// Slots in the table.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }
}

/// Reads `s`, whose key word was just read as `k` (our key): the entry if
/// the value is live and of the same generation as `k`.
///
/// The generation check is what makes the pair (key, value) one entry: a
/// value of another generation was written after the slot was trimmed (our
/// key was dead then, so a miss is correct) and may belong to another key
/// that reused the slot, or before our key's incarnation began (then it is
/// a reservation or the previous key's). A value of our generation was
/// written by an owner of our key's incarnation (the slot cannot return to
/// this generation before 16 more trims). One load and one compare, no
/// re-load of the key. (The lookups use [`read_raw`], the same check on
/// the undecoded word; this decoding form is for the tests.)
#[cfg(test)]
pub(crate) fn read_slot(s: &Slot, k: u64) -> Option<Entry> {
    decode_entry(read_raw(s, k))
}

/// The value word of `s`, whose key word was just read as `k`, if it is of
/// `k`'s generation, else 0 (reserved): see [`read_slot`].
#[inline(always)]
fn read_raw(s: &Slot, k: u64) -> u64 {
    // Acquire: pairs with the Release store (or CAS) that published this
    // value; the value word is self-contained, but a reader that goes on to
    // read the cold word (dumps) needs the one published with it, and it
    // costs nothing on x86.
    let v = s.value.load(Ordering::Acquire);
    if same_gen(v, k) {
        v
    } else {
        0
    }
}

/// Reads `s`, where a load of its key word just found our key bits (`key`,
/// no generation bits): re-reads the key word (same cache line, so cheap;
/// nothing from the scan stays live) and then the value word, and returns
/// the value if the key word is our key with the value's generation, else
/// 0 (reserved). One compare checks both: different key bits now mean our
/// key's incarnation there ended meanwhile (it was dead at that moment),
/// so a miss is correct; the same key bits with another generation than
/// the value's are the check of [`read_raw`]; a later incarnation of our
/// key with its own value is equally valid.
#[inline(always)]
fn reread_raw(s: &Slot, key: u64) -> u64 {
    // Acquire (both): as in `probe` and `read_raw`; the value is loaded
    // after the key word it is checked against.
    let k = s.key.load(Ordering::Acquire);
    let v = s.value.load(Ordering::Acquire);
    if k == key | gen_of(v) {
        v
    } else {
        0
    }
}

/// Hints the CPU to fetch `slot`'s line. A hint only: no effect on
/// semantics.
#[inline(always)]
pub(super) fn prefetch(slot: *const Slot) {
    #[cfg(all(target_arch = "x86_64", not(loom)))]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = slot.cast::<i8>();
        // SAFETY: `_mm_prefetch` needs SSE, which every x86_64 CPU has; a
        // prefetch never faults and does not dereference `p` in the Rust
        // sense, so any address is sound.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p) };
    }
    #[cfg(not(all(target_arch = "x86_64", not(loom))))]
    {
        let _ = slot;
    }
}
