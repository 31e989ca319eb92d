//! Learning (insert, refresh, move with dampening) and the insert/revive
//! primitives the control plane shares.

use crate::sync::Ordering;
use crate::wire::MacAddr;

use super::config::LearnOutcome;
use super::events::{Event, EventKind, EventSink};
use super::table::{bump, Fdb, Probe};
use super::word::{
    elapsed, ends_probe, gen_of, is_dead, key_id, key_word, make_value, refresh_due, same_gen,
    value_frozen, value_kind, value_loc, value_tick, with_frozen, with_tick, Cold, Kind, Location,
    MOVES_MAX, VAL_DEAD, VAL_RESERVED,
};

/// Result of trying to claim an empty slot.
pub(crate) enum Insert {
    /// Published.
    Done,
    /// The CAS lost to `key` (another key, or the same key by a racer).
    Lost(u64),
    /// Claimed but the chain had a hole (a concurrent trim); withdrawn.
    Withdrawn,
}

/// Result of trying to revive a dead slot.
pub(crate) enum Revive {
    Done,
    /// The value changed under us; re-read it.
    Raced,
}

impl Fdb<'_> {
    /// Claims empty slot `e`, whose key word was read as `empty`, for `key`
    /// (whose home is `home`) and publishes `value` (generation bits clear)
    /// with `cold`. The caller has reserved the budget; on anything but
    /// `Done` the caller must `unreserve`.
    ///
    /// Protocol: CAS the key `empty` -> key, keeping the slot's generation
    /// (the value word of an empty slot is `VAL_RESERVED` of that
    /// generation, so readers see a reserved slot and miss), re-check that
    /// every slot from `e - 1` down to `home` is neither EMPTY nor BLOCKED
    /// (a concurrent trim could otherwise strand the key behind a hole),
    /// then store the cold word and Release-store the value, tagged with
    /// the same generation.
    pub(crate) fn insert_at(
        &self,
        e: usize,
        home: usize,
        key: u64,
        empty: u64,
        value: u64,
        cold: u64,
    ) -> Insert {
        let s = self.slot(e);
        let g = gen_of(empty);
        // AcqRel on success. Acquire: if the slot was trimmed, this reads
        // the ager's Release store of EMPTY (directly, or as the head of
        // the release sequence), so the ager's trims happen before our
        // chain re-check below and its VAL_RESERVED write precedes ours.
        // Release: our key heads the release sequence later inserters and
        // the ager read when they look at this slot.
        // Acquire on failure: we may go on to read the winner's value.
        // The CAS expects the exact empty word of the probe: a slot is empty
        // under one generation only once (a trim moves it to the next), so
        // this cannot claim a slot another key held since.
        if let Err(actual) =
            s.key
                .compare_exchange(empty, key | g, Ordering::AcqRel, Ordering::Acquire)
        {
            return Insert::Lost(actual);
        }
        let mut j = e;
        while j != home {
            j = self.prev(j);
            // Acquire: reading a key written by another inserter's CAS or
            // by the ager makes everything that writer saw (earlier trims
            // further down the chain) visible to the next iterations. See
            // the module documentation for the argument.
            let k = self.slot(j).key.load(Ordering::Acquire);
            if ends_probe(k) {
                // Release: not needed for correctness (a dead value carries
                // no data) but keeps every value store Release.
                s.value.store(VAL_DEAD | g, Ordering::Release);
                return Insert::Withdrawn;
            }
        }
        // Relaxed: published by the Release store of the value below. A
        // swap rather than a store: a mover of the slot's previous key may
        // still be in its cold-word CAS (`count_move`), which must either
        // come before this write or fail against it. RMW atomicity gives
        // that for a plain store too, but loom keeps modification order
        // partial and lets a store that never saw the CAS land "before" it;
        // the swap orders them in both models, at the price of one locked
        // instruction on the (rare) insert path.
        self.cold(e).word.swap(cold | g, Ordering::Relaxed);
        // Release: publishes the cold word and orders our key CAS before the
        // value for any reader that Acquires it.
        s.value.store(value | g, Ordering::Release);
        Insert::Done
    }

    /// Revives dead slot `i`, whose key word (ours) was read as `k`, with
    /// `value` (generation bits clear). The caller reserved the budget and
    /// must `unreserve` on `Raced`.
    pub(crate) fn revive(&self, i: usize, k: u64, value: u64, cold: u64) -> Revive {
        let s = self.slot(i);
        let g = gen_of(k);
        // Acquire: the slot's last writer's stores (the kill) precede ours.
        // Taking DEAD -> RESERVED makes the slot ours alone: nobody else
        // writes a reserved value, and the ager only trims DEAD slots. The
        // expected word carries `k`'s generation, so if the slot was trimmed
        // and reused (and the new key died too) since we read `k`, the CAS
        // fails instead of reviving the other key's slot with our value.
        if s.value
            .compare_exchange(
                VAL_DEAD | g,
                VAL_RESERVED | g,
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return Revive::Raced;
        }
        // Relaxed: published by the Release store below.
        self.cold(i).word.store(cold | g, Ordering::Relaxed);
        // Release: publishes the cold word with the value.
        s.value.store(value | g, Ordering::Release);
        Revive::Done
    }

    /// CASes slot `i` from live `v` to dead (same generation) and returns
    /// the budget. The caller checked that `v` has the generation of the key
    /// word it took `bd` from, so `v` is that key's and the CAS cannot
    /// succeed once the slot was reused.
    pub(crate) fn kill(&self, i: usize, v: u64, bd: u16) -> bool {
        // AcqRel: Acquire so the cold word we may read afterwards is the
        // one published with `v`; Release keeps value writes uniformly
        // Release.
        let ok = self
            .slot(i)
            .value
            .compare_exchange(v, VAL_DEAD | gen_of(v), Ordering::AcqRel, Ordering::Relaxed)
            .is_ok();
        if ok {
            self.unreserve(bd);
        }
        ok
    }

    fn busy(&self) -> LearnOutcome {
        bump(&self.counters.busy);
        LearnOutcome::Busy
    }

    /// True when `mac` is live in `bd` at `location` and
    /// [`learn`](Self::learn) of it there at `now` would return
    /// [`LearnOutcome::Unchanged`] (no move, no refresh due, or an entry
    /// that does not age): one lock-free lookup and no write. A packet
    /// path that learns every frame's source calls `learn` only when this
    /// is false; `learn` rechecks and decides.
    ///
    /// ```
    /// # use vxlan_core::fdb::*;
    /// # use vxlan_core::wire::MacAddr;
    /// # let slots: Vec<Slot> = (0..64).map(|_| Slot::new()).collect();
    /// # let cold: Vec<ColdSlot> = (0..64).map(|_| ColdSlot::new()).collect();
    /// # let bds = [BdCounter::new()];
    /// let mut cfg = FdbConfig::new(32);
    /// cfg.refresh_ticks = 4;
    /// let fdb = Fdb::new(&slots, &cold, &bds, cfg).unwrap();
    /// let (mac, here) = (MacAddr([2, 0, 0, 0, 0, 1]), Location::Remote(3));
    /// assert!(!fdb.is_current(0, mac, here, 10));
    /// fdb.learn(0, mac, here, 10, &mut NoEvents);
    /// assert!(fdb.is_current(0, mac, here, 13));
    /// assert!(!fdb.is_current(0, mac, here, 14)); // a refresh is due
    /// assert!(!fdb.is_current(0, mac, Location::Remote(4), 13)); // a move
    /// ```
    #[inline(always)]
    pub fn is_current(&self, bd: u16, mac: MacAddr, location: Location, now: u32) -> bool {
        // A `match`, not `is_some_and` with a closure: the closure (the
        // whole lookup) was left out of line, a call per learned frame.
        match location.encode() {
            Some(loc) => self
                .lookup_packed(bd, mac)
                .is_current(loc, now, self.cfg.refresh_ticks),
            None => false,
        }
    }

    /// Learns that `mac` was seen as a source in bridge domain `bd` at
    /// `location`, at tick `now`: inserts a new entry, refreshes a known one
    /// (writing only when at least `refresh_ticks` passed), or moves it
    /// (subject to pinning and move dampening). Lock-free and
    /// allocation-free; events go to `events`.
    ///
    /// ```
    /// # use vxlan_core::fdb::*;
    /// # use vxlan_core::wire::MacAddr;
    /// # let slots: Vec<Slot> = (0..64).map(|_| Slot::new()).collect();
    /// # let cold: Vec<ColdSlot> = (0..64).map(|_| ColdSlot::new()).collect();
    /// # let bds = [BdCounter::new()];
    /// let fdb = Fdb::new(&slots, &cold, &bds, FdbConfig::new(32)).unwrap();
    /// let mac = MacAddr([2, 0, 0, 0, 0, 1]);
    /// let here = Location::Local { port: 1, vlan: 100 };
    /// assert_eq!(fdb.learn(0, mac, here, 5, &mut NoEvents), LearnOutcome::Learned);
    /// assert_eq!(fdb.learn(0, mac, here, 5, &mut NoEvents), LearnOutcome::Unchanged);
    /// assert_eq!(fdb.learn(0, mac, here, 6, &mut NoEvents), LearnOutcome::Refreshed);
    /// assert_eq!(fdb.learn(0, MacAddr::BROADCAST, here, 6, &mut NoEvents), LearnOutcome::NotLearnable);
    /// ```
    pub fn learn<S: EventSink + ?Sized>(
        &self,
        bd: u16,
        mac: MacAddr,
        location: Location,
        now: u32,
        events: &mut S,
    ) -> LearnOutcome {
        if !mac.is_learnable() {
            return LearnOutcome::NotLearnable;
        }
        if usize::from(bd) >= self.bds.len() {
            return LearnOutcome::Invalid;
        }
        let Some(loc) = location.encode() else {
            return LearnOutcome::Invalid;
        };
        let key = key_word(bd, mac);
        let home = self.home(key);
        for _ in 0..4 {
            match self.probe(key, home) {
                Probe::Found(i, k) => {
                    if let Some(o) = self.learn_existing(i, k, bd, mac, loc, now, events) {
                        return o;
                    }
                    // The slot was trimmed (and maybe reused) since we read
                    // `k`: our key died meanwhile; probe again.
                }
                Probe::Vacant(e, empty) => {
                    if let Err(o) = self.reserve(bd, true) {
                        return o;
                    }
                    let value = make_value(loc, now, Kind::Learned, false);
                    let cold = Cold {
                        seq: 0,
                        window_start: now,
                        moves: 0,
                    }
                    .pack();
                    match self.insert_at(e, home, key, empty, value, cold) {
                        Insert::Done => {
                            bump(&self.counters.learns);
                            events.emit(Event {
                                kind: EventKind::Learned,
                                bd,
                                mac,
                                location,
                                previous: None,
                            });
                            return LearnOutcome::Learned;
                        }
                        Insert::Lost(actual) => {
                            self.unreserve(bd);
                            if key_id(actual) == key {
                                if let Some(o) =
                                    self.learn_existing(e, actual, bd, mac, loc, now, events)
                                {
                                    return o;
                                }
                            }
                            // Another key took the slot, or ours came and
                            // went: probe again.
                        }
                        Insert::Withdrawn => {
                            self.unreserve(bd);
                            return self.busy();
                        }
                    }
                }
                Probe::Blocked => return self.busy(),
                Probe::Exhausted => {
                    bump(&self.counters.refused_table_full);
                    return LearnOutcome::TableFull;
                }
            }
        }
        self.busy()
    }

    /// Learns into slot `i`, whose key word was read as `k` (our key).
    /// `None` when the slot's generation moved on since (our key's
    /// incarnation there ended): the caller probes again.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn learn_existing<S: EventSink + ?Sized>(
        &self,
        i: usize,
        k: u64,
        bd: u16,
        mac: MacAddr,
        loc: u32,
        now: u32,
        events: &mut S,
    ) -> Option<LearnOutcome> {
        let s = self.slot(i);
        loop {
            // Acquire: pairs with the Release that published `v`, so the
            // cold word we may read is the one that goes with it.
            let v = s.value.load(Ordering::Acquire);
            // Every CAS below expects `v`, so it can only succeed within our
            // key's incarnation: a reused slot's values carry another
            // generation.
            if !same_gen(v, k) {
                return None;
            }
            let Some(kind) = value_kind(v) else {
                if !is_dead(v) {
                    return Some(self.busy()); // reserved: someone else's
                }
                if let Err(o) = self.reserve(bd, true) {
                    return Some(o);
                }
                let value = make_value(loc, now, Kind::Learned, false);
                let cold = Cold {
                    seq: 0,
                    window_start: now,
                    moves: 0,
                }
                .pack();
                match self.revive(i, k, value, cold) {
                    Revive::Done => {
                        bump(&self.counters.learns);
                        events.emit(Event {
                            kind: EventKind::Learned,
                            bd,
                            mac,
                            location: Location::decode(loc),
                            previous: None,
                        });
                        return Some(LearnOutcome::Learned);
                    }
                    Revive::Raced => {
                        self.unreserve(bd);
                        continue;
                    }
                }
            };
            let old = value_loc(v);
            if old == loc {
                if !refresh_due(kind, value_tick(v), now, self.cfg.refresh_ticks) {
                    // The common case for a hot MAC: no write at all.
                    return Some(LearnOutcome::Unchanged);
                }
                // Release: value writes are uniformly Release.
                if s.value
                    .compare_exchange(v, with_tick(v, now), Ordering::Release, Ordering::Relaxed)
                    .is_ok()
                {
                    return Some(LearnOutcome::Refreshed);
                }
                continue;
            }
            if kind.is_pinned() {
                bump(&self.counters.pinned_refused);
                return Some(LearnOutcome::Pinned);
            }
            let thaw = if value_frozen(v) {
                // Relaxed: the Acquire load of `v` ordered the cold word
                // written with it (the freezer stores it before setting the
                // frozen bit with Release).
                let c = Cold::unpack(self.cold(i).word.load(Ordering::Relaxed));
                if elapsed(now, c.window_start) < self.cfg.dampening.hold {
                    bump(&self.counters.frozen_refused);
                    return Some(LearnOutcome::Frozen);
                }
                true
            } else {
                false
            };
            let nv = make_value(loc, now, Kind::Learned, false) | gen_of(v);
            // AcqRel: Release publishes the new location (readers Acquire
            // it); Acquire orders our cold-word update after the previous
            // mover's.
            if s.value
                .compare_exchange(v, nv, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            bump(&self.counters.moves);
            let from = Location::decode(old);
            let to = Location::decode(loc);
            events.emit(Event {
                kind: EventKind::Moved,
                bd,
                mac,
                location: to,
                previous: Some(from),
            });
            let mut frozen = false;
            if self.count_move(i, now, thaw, nv) && self.freeze(i, nv) {
                frozen = true;
                bump(&self.counters.freezes);
                events.emit(Event {
                    kind: EventKind::Frozen,
                    bd,
                    mac,
                    location: to,
                    previous: None,
                });
            }
            return Some(LearnOutcome::Moved { from, frozen });
        }
    }

    /// Counts a move in slot `i`'s dampening window and bumps its sequence
    /// number, after our move CAS published `nv`. True when the move count
    /// reached the threshold.
    ///
    /// The entry may have been removed, and the slot trimmed and reused by
    /// another key, since that CAS: then the cold word carries another
    /// generation than `nv` and we leave it alone (the CAS expects our
    /// generation, so it cannot land on the other key's cold word).
    fn count_move(&self, i: usize, now: u32, thaw: bool, nv: u64) -> bool {
        let d = self.cfg.dampening;
        let w = &self.cold(i).word;
        // Relaxed throughout: the cold word is bookkeeping owned by the
        // entry's movers, serialised by the CAS on the value word; the CAS
        // loop only guards against a racing mover of the same MAC. (Our
        // Acquire of the value before the move CAS ordered this load after
        // the store of the cold word of our generation.)
        let mut cur = w.load(Ordering::Relaxed);
        loop {
            if !same_gen(cur, nv) {
                return false;
            }
            let mut c = Cold::unpack(cur);
            if thaw || c.moves == 0 || elapsed(now, c.window_start) >= d.window {
                c.window_start = now;
                c.moves = 1;
            } else {
                c.moves = c.moves.saturating_add(1).min(MOVES_MAX);
            }
            c.seq = c.seq.wrapping_add(1);
            let freeze = d.moves != 0 && c.moves >= d.moves;
            if freeze {
                c.window_start = now; // from now on: the freeze time
            }
            let new = c.pack() | gen_of(nv);
            match w.compare_exchange_weak(cur, new, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return freeze,
                Err(x) => cur = x,
            }
        }
    }

    /// Sets the frozen bit on slot `i` if it still holds a learned entry at
    /// `nv`'s location, in `nv`'s generation (the same incarnation of the
    /// key).
    fn freeze(&self, i: usize, nv: u64) -> bool {
        let s = self.slot(i);
        let mut cur = nv;
        loop {
            if !same_gen(cur, nv)
                || value_kind(cur) != Some(Kind::Learned)
                || value_loc(cur) != value_loc(nv)
                || value_frozen(cur)
            {
                return false;
            }
            // Release: the freeze time we wrote to the cold word happens
            // before any learner that Acquires the frozen value.
            match s.value.compare_exchange(
                cur,
                with_frozen(cur, true),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(x) => cur = x,
            }
        }
    }
}
