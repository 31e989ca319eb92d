//! Ageing: an incremental sweep with bounded work per call, which also
//! thaws frozen MACs whose hold time passed and trims dead slots back to
//! empty.

use crate::sync::Ordering;

use super::config::AgeReport;
use super::events::{Event, EventKind, EventSink};
use super::table::{bump, Fdb};
use super::word::{
    elapsed, ends_probe, gen_of, is_dead, is_empty_key, next_gen, same_gen, split_key,
    value_frozen, value_kind, value_loc, value_tick, with_frozen, Cold, Kind, Location,
    KEY_BLOCKED, KEY_EMPTY, VAL_DEAD, VAL_RESERVED,
};

/// Trims at most this many dead slots backwards from one visited slot.
const MAX_CASCADE: usize = 64;

impl Fdb<'_> {
    /// Visits the next `budget` slots (at most one full table) of the
    /// ageing sweep at tick `now`: learned entries idle for `age_time`
    /// ticks age out (an [`EventKind::Aged`] event each), frozen entries
    /// whose hold time passed thaw, and dead slots at the end of a probe
    /// cluster become empty again. Static, sticky and external entries do
    /// not age.
    ///
    /// One sweeper at a time: a call that finds another sweep running
    /// returns at once with `contended` set. Safe to run beside learners and
    /// readers; cheap enough to call from a poll loop.
    ///
    /// ```
    /// # use vxlan_core::fdb::*;
    /// # use vxlan_core::wire::MacAddr;
    /// # let slots: Vec<Slot> = (0..64).map(|_| Slot::new()).collect();
    /// # let cold: Vec<ColdSlot> = (0..64).map(|_| ColdSlot::new()).collect();
    /// # let bds = [BdCounter::new()];
    /// let mut cfg = FdbConfig::new(32);
    /// cfg.age_time = 300;
    /// let fdb = Fdb::new(&slots, &cold, &bds, cfg).unwrap();
    /// let mac = MacAddr([2, 0, 0, 0, 0, 1]);
    /// fdb.learn(0, mac, Location::port(1), 0, &mut NoEvents);
    /// fdb.age_step(299, 64, &mut NoEvents);
    /// assert!(fdb.lookup(0, mac).is_some());
    /// let report = fdb.age_step(300, 64, &mut NoEvents);
    /// assert_eq!(report.aged, 1);
    /// assert!(fdb.lookup(0, mac).is_none());
    /// ```
    pub fn age_step<S: EventSink + ?Sized>(
        &self,
        now: u32,
        budget: usize,
        events: &mut S,
    ) -> AgeReport {
        let mut report = AgeReport::default();
        // Acquire: the previous sweeper's cursor and trims (published by its
        // Release below) happen before ours.
        if self
            .sweeping
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            report.contended = true;
            return report;
        }
        // Relaxed: only the sweeper touches the cursor; `sweeping` orders it.
        let mut cursor = self.age_cursor.load(Ordering::Relaxed) % self.slots.len();
        for _ in 0..budget.min(self.slots.len()) {
            self.visit(cursor, now, &mut report, events);
            report.visited += 1;
            cursor = self.next(cursor);
            if cursor == 0 {
                report.wrapped = true;
            }
        }
        self.age_cursor.store(cursor, Ordering::Relaxed);
        // Release: see the Acquire above.
        self.sweeping.store(false, Ordering::Release);
        report
    }

    fn visit<S: EventSink + ?Sized>(
        &self,
        i: usize,
        now: u32,
        report: &mut AgeReport,
        events: &mut S,
    ) {
        let s = self.slot(i);
        // Acquire: pairs with the inserter's key CAS.
        let k = s.key.load(Ordering::Acquire);
        if ends_probe(k) {
            return;
        }
        let (bd, mac) = split_key(k);
        // Acquire: the cold word below is the one published with `v`.
        let v = s.value.load(Ordering::Acquire);
        // Only the sweeper trims, so the key (and its generation) cannot
        // change under us here; the check keeps the rule uniform: never act
        // on a value of another generation than the key word read.
        if !same_gen(v, k) {
            return;
        }
        match value_kind(v) {
            Some(Kind::Learned) => {
                if self.cfg.age_time != 0 && elapsed(now, value_tick(v)) >= self.cfg.age_time {
                    // A failed CAS means a learner refreshed or moved the
                    // entry just now: it is not idle, leave it.
                    if self.kill(i, v, bd) {
                        report.aged += 1;
                        bump(&self.counters.ages);
                        events.emit(Event {
                            kind: EventKind::Aged,
                            bd,
                            mac,
                            location: Location::decode(value_loc(v)),
                            previous: None,
                        });
                        self.trim_back(i, report);
                    }
                } else if value_frozen(v) {
                    let cw = &self.cold(i).word;
                    // Relaxed: ordered by the Acquire load of `v`.
                    let c = Cold::unpack(cw.load(Ordering::Relaxed));
                    if elapsed(now, c.window_start) >= self.cfg.dampening.hold
                        // Release: value writes are uniformly Release.
                        && s.value
                            .compare_exchange(
                                v,
                                with_frozen(v, false),
                                Ordering::Release,
                                Ordering::Relaxed,
                            )
                            .is_ok()
                    {
                        // Relaxed: bookkeeping (see `count_move`).
                        cw.store(Cold { moves: 0, ..c }.pack(), Ordering::Relaxed);
                        report.thawed += 1;
                    }
                }
            }
            None if is_dead(v) => self.trim_back(i, report),
            _ => {}
        }
    }

    /// Trims dead slot `i` if the slot after it is empty, then the dead
    /// slots before it, up to `MAX_CASCADE`.
    fn trim_back(&self, mut i: usize, report: &mut AgeReport) {
        for _ in 0..MAX_CASCADE {
            if !self.trim(i) {
                return;
            }
            report.trimmed += 1;
            i = self.prev(i);
        }
    }

    /// Turns dead slot `i` back into an empty one of the next generation,
    /// if slot `i + 1` is empty (so no probe sequence of a live key passes
    /// `i`).
    ///
    /// 1. Block `i + 1` (CAS its empty word -> BLOCKED) so no inserter
    ///    claims it.
    /// 2. Take `i`'s value DEAD -> RESERVED of the next generation, so no
    ///    learner revives it and no CAS expecting a value of the old
    ///    generation succeeds any more.
    /// 3. Store `i`'s key EMPTY of the next generation, then restore `i + 1`'s
    ///    empty word, both Release.
    fn trim(&self, i: usize) -> bool {
        let s = self.slot(i);
        let next = self.slot(self.next(i));
        // Only the sweeper (us) changes a key word that holds a key, so `k`
        // stays the slot's key word until our store below. Acquire: pairs
        // with the inserter's key CAS.
        let k = s.key.load(Ordering::Acquire);
        if ends_probe(k) {
            return false;
        }
        let dead = VAL_DEAD | gen_of(k);
        // Cheap pre-checks (Relaxed: the CASes below decide).
        let empty = next.key.load(Ordering::Relaxed);
        if s.value.load(Ordering::Relaxed) != dead || !is_empty_key(empty) {
            return false;
        }
        // AcqRel: Acquire so that an inserter's key published in `next`
        // before is seen (the CAS then fails); Release is not needed but
        // harmless on an RMW.
        if next
            .key
            .compare_exchange(empty, KEY_BLOCKED, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        // Acquire: orders our key store after the last owner's writes. The
        // new generation ends every CAS and read that still expects the
        // old one (a learner that read the key before the trim).
        let g = next_gen(k);
        let trimmed = s
            .value
            .compare_exchange(dead, VAL_RESERVED | g, Ordering::Acquire, Ordering::Relaxed)
            .is_ok();
        if trimmed {
            // Release: an inserter whose key CAS reads this EMPTY sees the
            // slot's value already reserved (of the new generation), so its
            // value store comes after ours.
            s.key.store(KEY_EMPTY | g, Ordering::Release);
        }
        // Release: an inserter whose CAS on `next` reads this store (or a
        // later one in its release sequence) sees the trim of `i`, so its
        // chain re-check finds the hole. See the module documentation.
        // `empty` is the exact word we replaced: `next` keeps its generation
        // (no key was in it).
        next.key.store(empty, Ordering::Release);
        trimmed
    }
}
