//! **Prototype** (cargo feature `miss-filter`, not part of the default
//! build): a per-home-line miss filter for the batched lookup.
//!
//! One small word per 64-byte home line (a `u8`, `u16`, `u32` or `u64`: see
//! [`FilterWord`]), in a separate array of [`Fdb::miss_filter_len`] words.
//! Every key homed at line `b` (wherever its probe put it) sets `K`
//! distinct bits of word `b`: a pattern from a 1024-entry table (8 KiB),
//! chosen by hash bits the home does not use, the top 10 bits of the low
//! half of the multiply-high that maps the hash onto the lines (the
//! fraction of the way through line `b`'s share of the hash range, uniform
//! and independent of `b`). A lookup whose pattern is not all set in its
//! line's word is a miss without reading the slot line.
//!
//! Size: one word per 4 slots. At 1 Mi entries at load 1/2 (512 Ki lines)
//! the array is 512 KiB as `u8`, 1 MiB as `u16`, 2 MiB as `u32` (the L2 of
//! the benchmark host is 1 MiB per core; the slot array is 32 MiB). Per
//! slot that is 2, 4 or 8 bits on top of the 24 bytes. Expected false
//! positives (a miss let through) with `λ` keys per line: the mean over a
//! Poisson(`λ`) key count `n` of `(1 - (1 - 1/w)^(K n))^K` for a `w`-bit
//! word (slightly less with distinct bits); `λ` = 2 at load 1/2 gives 22 %
//! (`u8`, K = 1), 12 % (`u16`, 1), 5.5 % (`u16`, 3), 0.8 % (`u32`, 4);
//! `λ` = 3.5 at load 7/8 gives 35 %, 20 %, 14 %, 3 %.
//!
//! What this prototype does not do: maintain the filter under the
//! concurrent protocol. [`Fdb::build_miss_filter`] rebuilds the whole array
//! from the table's contents, single-threaded, with no writer running; the
//! benchmark and the instruction-count driver use it after filling the
//! table. A filter built that way answers like the table as long as the
//! table does not change (a key inserted later may be missed; a key
//! removed later leaves its bits, which only costs false positives).

use crate::sync::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};

use super::slot::Slot;
use super::table::{mix, prefetch, Fdb, FdbKey, BATCH};
use super::word::{ends_probe, key_id, PackedEntry};

/// A word of the miss filter: one per home line, `2^LOG_BITS` bits.
pub trait FilterWord: Sync {
    /// log2 of the word's bit count.
    const LOG_BITS: u32;
    /// A clear word.
    fn new() -> Self;
    /// The word's bits (Relaxed: a hint; see the module documentation).
    fn get(&self) -> u64;
    /// Sets the bits of `mask`.
    fn set(&self, mask: u64);
    /// Clears the word.
    fn clear(&self);
}

macro_rules! filter_word {
    ($t:ty, $prim:ty, $log:expr) => {
        impl FilterWord for $t {
            const LOG_BITS: u32 = $log;
            fn new() -> Self {
                <$t>::new(0)
            }
            #[inline(always)]
            fn get(&self) -> u64 {
                u64::from(self.load(Ordering::Relaxed))
            }
            #[inline(always)]
            fn set(&self, mask: u64) {
                // Truncation impossible: `mask` has bits below 2^LOG_BITS
                // only (see `Fdb::filter_pos`).
                #[allow(clippy::cast_possible_truncation, clippy::unnecessary_cast)]
                self.fetch_or(mask as $prim, Ordering::Relaxed);
            }
            fn clear(&self) {
                self.store(0, Ordering::Relaxed);
            }
        }
    };
}

filter_word!(AtomicU8, u8, 3);
filter_word!(AtomicU16, u16, 4);
filter_word!(AtomicU32, u32, 5);
filter_word!(AtomicU64, u64, 6);

/// Hash-fraction bits that choose a key's filter pattern.
const PATTERN_BITS: u32 = 10;

/// The table of filter patterns for a word of `2^log_bits` bits and `k`
/// bits per key: `2^PATTERN_BITS` words of `k` distinct bits each (fewer
/// when the word is smaller than `k`), each drawn by splitmix64 from its
/// index. A key's mask is one load from this table (8 KiB, so it stays in
/// L1) instead of `k` shifts.
const fn patterns(log_bits: u32, k: u32) -> [u64; 1 << PATTERN_BITS] {
    let mut t = [0u64; 1 << PATTERN_BITS];
    let width = 1u32 << log_bits;
    let k = if k < width { k } else { width };
    let mut x = 0;
    while x < t.len() {
        let mut state = x as u64;
        let mut m = 0u64;
        let mut n = 0;
        while n < k {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            let bit = (z >> 32) as u32 & (width - 1);
            if m & (1 << bit) == 0 {
                m |= 1 << bit;
                n += 1;
            }
        }
        t[x] = m;
        x += 1;
    }
    t
}

/// The filter bits of a key whose hash fraction is `lo` (from
/// [`Fdb::filter_pos`]), for a word of `W` with `K` bits per key: the
/// pattern chosen by the top [`PATTERN_BITS`] of `lo`.
#[inline(always)]
fn mask_of<W: FilterWord, const K: u32>(lo: u64) -> u64 {
    let table: &'static [u64; 1 << PATTERN_BITS] = &const { patterns(W::LOG_BITS, K) };
    // Truncation impossible: below 2^PATTERN_BITS.
    #[allow(clippy::cast_possible_truncation)]
    let at = (lo >> (64 - PATTERN_BITS)) as usize;
    table[at & ((1 << PATTERN_BITS) - 1)]
}

impl Fdb<'_> {
    /// Filter words this table needs: one per home line.
    pub fn miss_filter_len(&self) -> usize {
        usize::try_from(self.buckets).unwrap_or(usize::MAX)
    }

    /// `key`'s home line (as a bucket index, `< buckets`) and the low half
    /// of the multiply-high [`Fdb::home`] uses, whose top bits the filter
    /// bits come from ([`mask_of`]).
    #[inline(always)]
    fn filter_pos(&self, key: u64) -> (usize, u64) {
        let p = u128::from(mix(key)) * u128::from(self.buckets);
        // Truncation impossible: the high half is below `buckets`, a usize;
        // the low half is meant to be cut.
        #[allow(clippy::cast_possible_truncation)]
        let (b, lo) = ((p >> 64) as usize, p as u64);
        (b, lo)
    }

    /// Rebuilds `filter` (at least [`Fdb::miss_filter_len`] words; more are
    /// left clear) from the keys in the table: clears it, then sets `K`
    /// bits per key at its home line. Every key in a slot counts, live or
    /// not (a dead or reserved one costs only false positives).
    /// Single-threaded: a key inserted while this runs may be left out.
    ///
    /// ```
    /// # use vxlan_core::fdb::*;
    /// # use vxlan_core::wire::MacAddr;
    /// # use core::sync::atomic::AtomicU16;
    /// # let slots: Vec<Slot> = (0..64).map(|_| Slot::new()).collect();
    /// # let cold: Vec<ColdSlot> = (0..64).map(|_| ColdSlot::new()).collect();
    /// # let bds = [BdCounter::new()];
    /// let fdb = Fdb::new(&slots, &cold, &bds, FdbConfig::new(32)).unwrap();
    /// let a = MacAddr([2, 0, 0, 0, 0, 1]);
    /// fdb.add_static(0, a, Location::port(9)).unwrap();
    /// let filter: Vec<AtomicU16> = (0..fdb.miss_filter_len()).map(|_| AtomicU16::new(0)).collect();
    /// fdb.build_miss_filter::<_, 1>(&filter);
    /// assert!(fdb.miss_filter_admits::<_, 1>(&filter, FdbKey::new(0, a)));
    /// let keys = [FdbKey::new(0, a), FdbKey::new(0, MacAddr([2, 0, 0, 0, 0, 2]))];
    /// let mut out = [PackedEntry::MISS; 2];
    /// fdb.lookup_batch_packed_filtered::<_, 1>(&filter, &keys, &mut out);
    /// assert_eq!(out[0].location(), Some(Location::port(9)));
    /// assert!(!out[1].is_hit());
    /// ```
    pub fn build_miss_filter<W: FilterWord, const K: u32>(&self, filter: &[W]) {
        for w in filter {
            w.clear();
        }
        for s in self.slots {
            let k = s.key.load(Ordering::Acquire);
            if ends_probe(k) {
                continue;
            }
            let (b, lo) = self.filter_pos(key_id(k));
            if let Some(w) = filter.get(b) {
                w.set(mask_of::<W, K>(lo));
            }
        }
    }

    /// True when `filter` lets `key` through (it may be in the table); false
    /// when the filter proves it absent (as of the filter's build).
    pub fn miss_filter_admits<W: FilterWord, const K: u32>(
        &self,
        filter: &[W],
        key: FdbKey,
    ) -> bool {
        let (b, lo) = self.filter_pos(key.0);
        let mask = mask_of::<W, K>(lo);
        filter.get(b).is_none_or(|w| w.get() & mask == mask)
    }

    /// [`Fdb::lookup_batch_packed`] through a miss filter built by
    /// [`Fdb::build_miss_filter`] with the same `W` and `K`. Per chunk of
    /// [`BATCH`] keys: hash every key and prefetch its filter word; test
    /// the words, settling every key the filter rejects as a miss and
    /// prefetching the home lines of the others; then the home-line scan
    /// and the rounds of [`Fdb::lookup_batch_packed`], for those keys only.
    /// A filter shorter than [`Fdb::miss_filter_len`] is not used (plain
    /// [`Fdb::lookup_batch_packed`]).
    pub fn lookup_batch_packed_filtered<W: FilterWord, const K: u32>(
        &self,
        filter: &[W],
        keys: &[FdbKey],
        out: &mut [PackedEntry],
    ) {
        if filter.len() < self.miss_filter_len() {
            return self.lookup_batch_packed(keys, out);
        }
        let n = keys.len().min(out.len());
        let (keys, out) = (&keys[..n], &mut out[..n]);
        let slots = self.slots;
        let end = slots.as_ptr_range().end;
        // Line `b`'s first slot, as a line pointer: home lines are
        // `lines0 + b` (`wrapping_add`: plain arithmetic; every home is in
        // range anyway).
        let lines0 = slots.as_ptr().wrapping_add(self.base).cast::<[Slot; 4]>();
        for (keys, out) in keys.chunks(BATCH).zip(out.chunks_mut(BATCH)) {
            // Per key: its home line's index and its hash fraction; its
            // filter word prefetched.
            let mut at = [0usize; BATCH];
            let mut fr = [0u64; BATCH];
            for ((a, f), k) in at.iter_mut().zip(&mut fr).zip(keys) {
                (*a, *f) = self.filter_pos(k.0);
                prefetch(filter.as_ptr().wrapping_add(*a).cast());
            }
            // Every key a miss, and the indices of those the filter lets
            // through, in order (branch-free: the index is always written,
            // counted only if it passed).
            let mut cand = [0u8; BATCH];
            let mut n_cand = 0;
            for (i, ((o, &b), &f)) in out.iter_mut().zip(&at).zip(&fr).enumerate() {
                let m = mask_of::<W, K>(f);
                // SAFETY: `b < buckets <= filter.len()` (checked above).
                let pass = unsafe { filter.get_unchecked(b) }.get() & m == m;
                *o = PackedEntry::MISS;
                #[allow(clippy::cast_possible_truncation)]
                let i = i as u8;
                cand[n_cand % BATCH] = i;
                n_cand += usize::from(pass);
            }
            let cand = &cand[..n_cand.min(BATCH)];
            // Their home lines, all prefetched before the first is read.
            for &i in cand {
                if let Some(&b) = at.get(usize::from(i)) {
                    prefetch(lines0.wrapping_add(b).cast());
                }
            }
            let mut open = [0u8; BATCH];
            let mut n_open = 0;
            for &i in cand {
                let i = usize::from(i);
                let (Some(o), Some(k), Some(&b)) = (out.get_mut(i), keys.get(i), at.get(i)) else {
                    continue;
                };
                let l = lines0.wrapping_add(b);
                // SAFETY: as in `Fdb::batch`: `l` is the home line of `k`
                // (slot `base + 4 * b`), four in-bounds slots.
                let line = unsafe { &*l };
                let kw = Self::line_keys(line);
                let hit = Self::first_hit(&kw, k.0);
                if hit < 4 {
                    *o = PackedEntry::from_word(Self::read_hit(line, hit, k.0));
                } else {
                    let go_on = !Self::line_ends(&kw);
                    #[allow(clippy::cast_possible_truncation)]
                    let i = i as u8;
                    open[n_open % BATCH] = i;
                    n_open += usize::from(go_on);
                    let ahead = 4 * usize::from(go_on);
                    prefetch(l.cast::<Slot>().wrapping_add(ahead));
                    prefetch(l.cast::<Slot>().wrapping_add(2 * ahead));
                }
            }
            // The rounds of `Fdb::batch`, with each open key's current line
            // computed from its home line and the lines scanned.
            let mut left = self.max_probe.saturating_sub(4);
            let mut scanned = 1;
            while n_open > 0 {
                let mut still = 0;
                for j in 0..n_open.min(BATCH) {
                    let i = usize::from(open[j]);
                    let (Some(o), Some(k), Some(&b)) = (out.get_mut(i), keys.get(i), at.get(i))
                    else {
                        continue;
                    };
                    let next = lines0.wrapping_add(b + scanned);
                    if left < 4 || next.wrapping_add(1).cast::<Slot>() > end {
                        *o = PackedEntry::from_word(self.walk_rest(
                            k.0,
                            self.home(k.0) + 4 * scanned,
                            left,
                        ));
                        continue;
                    }
                    // SAFETY: as in `Fdb::batch`: the line after a line of
                    // `slots` (the home line, or one that passed this
                    // check), ending at or before `end`.
                    let line = unsafe { &*next };
                    let kw = Self::line_keys(line);
                    let hit = Self::first_hit(&kw, k.0);
                    if hit < 4 {
                        *o = PackedEntry::from_word(Self::read_hit(line, hit, k.0));
                    } else {
                        let go_on = !Self::line_ends(&kw);
                        #[allow(clippy::cast_possible_truncation)]
                        let i = i as u8;
                        open[still % BATCH] = i;
                        still += usize::from(go_on);
                        prefetch(next.cast::<Slot>().wrapping_add(8 * usize::from(go_on)));
                    }
                }
                n_open = still;
                left = left.saturating_sub(4);
                scanned += 1;
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    extern crate std;

    use std::vec::Vec;

    use super::*;
    use crate::fdb::{BdCounter, ColdSlot, FdbConfig, Location};
    use crate::wire::MacAddr;

    fn key(i: u64) -> (u16, MacAddr) {
        // splitmix-ish scramble so homes spread.
        let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (i >> 7);
        let b = x.to_be_bytes();
        (
            (i % 7) as u16,
            MacAddr([0x02, b[3], b[4], b[5], b[6], b[7] | 1]),
        )
    }

    /// Fills a table to `live` entries of `slots`, deletes every fifth,
    /// and checks that the filtered lookup answers exactly as the plain
    /// one, for hits, deleted keys and absent keys, for each word size and
    /// bit count; and that a filter admits every key in the table.
    fn agrees<W: FilterWord, const K: u32>(slots: usize, live: u64, max_probe: u32) {
        let s: Vec<Slot> = (0..slots).map(|_| Slot::new()).collect();
        let c: Vec<ColdSlot> = (0..slots).map(|_| ColdSlot::new()).collect();
        let b: Vec<BdCounter> = (0..8).map(|_| BdCounter::new()).collect();
        let cfg = FdbConfig {
            max_probe,
            ..FdbConfig::new(u32::try_from(live).unwrap())
        };
        let fdb = Fdb::new(&s, &c, &b, cfg).unwrap();
        let mut stored = 0;
        for i in 0..live {
            let (bd, mac) = key(i);
            if fdb
                .add_static(bd, mac, Location::Remote(u32::try_from(i).unwrap()))
                .is_ok()
            {
                stored += 1;
            }
        }
        assert!(stored > live / 2, "table too full to test: {stored}");
        for i in (0..live).step_by(5) {
            let (bd, mac) = key(i);
            fdb.remove(bd, mac);
        }
        let filter: Vec<W> = (0..fdb.miss_filter_len()).map(|_| W::new()).collect();
        fdb.build_miss_filter::<W, K>(&filter);
        let keys: Vec<FdbKey> = (0..2 * live)
            .map(|i| {
                let (bd, mac) = key(i);
                FdbKey::new(bd, mac)
            })
            .collect();
        let mut plain = std::vec![PackedEntry::MISS; keys.len()];
        let mut filtered = std::vec![PackedEntry::MISS; keys.len()];
        fdb.lookup_batch_packed(&keys, &mut plain);
        fdb.lookup_batch_packed_filtered::<W, K>(&filter, &keys, &mut filtered);
        assert_eq!(plain, filtered);
        let mut rejected = 0;
        for (k, p) in keys.iter().zip(&plain) {
            let admits = fdb.miss_filter_admits::<W, K>(&filter, *k);
            assert!(
                admits || !p.is_hit(),
                "the filter rejected a key in the table"
            );
            rejected += usize::from(!admits);
        }
        // The absent half is mostly rejected (the test is not vacuous).
        assert!(rejected > keys.len() / 8, "rejected only {rejected}");
        // A short filter is not used.
        fdb.lookup_batch_packed_filtered::<W, K>(&filter[..filter.len() - 1], &keys, &mut filtered);
        assert_eq!(plain, filtered);
    }

    #[test]
    fn filtered_batch_agrees_with_plain() {
        for (slots, live, probe) in [
            (4096, 2048, 512),
            (4099, 3584, 512),
            (1024, 896, 7),
            (64, 56, 512),
        ] {
            agrees::<AtomicU8, 1>(slots, live, probe);
            agrees::<AtomicU16, 1>(slots, live, probe);
            agrees::<AtomicU16, 2>(slots, live, probe);
            agrees::<AtomicU32, 2>(slots, live, probe);
            agrees::<AtomicU64, 4>(slots, live, probe);
        }
    }
}

/// loom models of the filter-word protocol a concurrent filter would need
/// (not implemented in the table yet; see the module documentation). An
/// abstract line: two slots (key and value words, keys as the table uses
/// them: 0 empty, values 0 reserved, 1 dead, 2 live), one filter word.
/// Key `D` (dead) and key `K` set the same filter bit `X`.
///
/// * Inserter: CAS slot 1 EMPTY -> K, set the filter bits, publish K's
///   value (Release).
/// * Ager (rebuilds the word): read the word, scan the line for keys that
///   are not dead (a reserved one counts: its insert is in flight), CAS
///   the word from what it read to the bits of the keys it found.
///
/// With a plain `fetch_or(X)` the inserter's update is invisible to the
/// ager's CAS when `X` was already set (by `D`): the ager can scan before
/// `K`'s key CAS, then clear `X` after `K` was published, and `K` is
/// filtered out for good. The fix modelled here: a DIRTY bit. The inserter
/// sets `X | DIRTY`; the ager first clears DIRTY with a `fetch_and`
/// (AcqRel), then scans, then CASes from the cleared word: an inserter's
/// RMW after that `fetch_and` changes the word (DIRTY), so the CAS fails
/// and the ager retries; one before it is read by the `fetch_and`, whose
/// Acquire makes the inserter's key CAS visible to the scan.
///
/// Run with `RUSTFLAGS="--cfg loom" cargo test -p vxlan-core --release
/// --features miss-filter --lib fdb::filter::loom_model`.
#[cfg(all(test, loom))]
mod loom_model {
    extern crate std;

    use ::loom::sync::Arc;
    use ::loom::thread;

    use crate::sync::{AtomicU32, AtomicU64, Ordering};

    const D: u64 = 7;
    const K: u64 = 9;
    const DEAD: u64 = 1;
    const LIVE: u64 = 2;
    const X: u32 = 1 << 3;
    const DIRTY: u32 = 1 << 31;

    struct Line {
        keys: [AtomicU64; 2],
        values: [AtomicU64; 2],
        word: AtomicU32,
    }

    /// `D` dead in slot 0 (its bit still set), slot 1 empty.
    fn line() -> Arc<Line> {
        Arc::new(Line {
            keys: [AtomicU64::new(D), AtomicU64::new(0)],
            values: [AtomicU64::new(DEAD), AtomicU64::new(0)],
            word: AtomicU32::new(X),
        })
    }

    fn insert_k(l: &Line, dirty: bool) {
        assert!(l.keys[1]
            .compare_exchange(0, K, Ordering::AcqRel, Ordering::Acquire)
            .is_ok());
        let set = if dirty { X | DIRTY } else { X };
        l.word.fetch_or(set, Ordering::AcqRel);
        l.values[1].store(LIVE, Ordering::Release);
    }

    /// The bits of the keys in the line that are not dead (both keys
    /// have bit `X`), scanning up to the first empty slot.
    fn scan(l: &Line) -> u32 {
        let mut w = 0;
        for (k, v) in l.keys.iter().zip(&l.values) {
            if k.load(Ordering::Acquire) == 0 {
                break;
            }
            if v.load(Ordering::Acquire) != DEAD {
                w |= X;
            }
        }
        w
    }

    /// The ager's rebuild of the word, as the brief proposed it: CAS from
    /// the value read before the scan.
    fn rebuild_plain(l: &Line) {
        for _ in 0..3 {
            let w0 = l.word.load(Ordering::Acquire);
            let w1 = scan(l);
            if l.word
                .compare_exchange(w0, w1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return;
            }
        }
    }

    /// The rebuild with the DIRTY bit: clear it first, then scan, then CAS
    /// from the cleared word.
    fn rebuild_dirty(l: &Line) {
        for _ in 0..3 {
            let w0 = l.word.fetch_and(!DIRTY, Ordering::AcqRel) & !DIRTY;
            let w1 = scan(l);
            if l.word
                .compare_exchange(w0, w1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return;
            }
        }
        panic!("rebuild retried more often than there are inserts");
    }

    fn race(dirty: bool) {
        let mut b = ::loom::model::Builder::new();
        b.preemption_bound = Some(3);
        b.check(move || {
            let l = line();
            let l2 = l.clone();
            let l3 = l.clone();
            let ins = thread::spawn(move || insert_k(&l2, dirty));
            let ager = thread::spawn(move || {
                if dirty {
                    rebuild_dirty(&l3);
                } else {
                    rebuild_plain(&l3);
                }
            });
            // A reader that sees K published must not be filtered out.
            if l.values[1].load(Ordering::Acquire) == LIVE {
                assert_ne!(l.word.load(Ordering::Relaxed) & X, 0, "K filtered out");
            }
            ins.join().unwrap();
            ager.join().unwrap();
            // K was published: its bit must be set for good.
            assert_ne!(l.word.load(Ordering::Relaxed) & X, 0, "K filtered out");
        });
    }

    #[test]
    fn rebuild_with_dirty_bit_never_filters_out_an_inserted_key() {
        race(true);
    }

    #[test]
    #[should_panic(expected = "K filtered out")]
    fn rebuild_from_a_plain_snapshot_can_filter_out_an_inserted_key() {
        race(false);
    }

    #[test]
    fn rebuild_alone_clears_a_dead_keys_bit() {
        ::loom::model(|| {
            let l = line();
            rebuild_dirty(&l);
            assert_eq!(l.word.load(Ordering::Relaxed), 0);
        });
    }
}
