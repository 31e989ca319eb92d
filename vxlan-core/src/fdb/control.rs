//! Control-plane operations: static, sticky and external (EVPN) entries,
//! removal and flushes. Meant for one control thread, but safe (lock-free,
//! never torn) against any number of concurrent learners and readers.

use crate::sync::Ordering;
use crate::wire::MacAddr;

use super::config::{FdbError, LearnOutcome};
use super::learn::{Insert, Revive};
use super::table::{Fdb, Probe};
use super::word::{
    ends_probe, gen_of, is_dead, key_id, key_word, make_value, same_gen, split_key, value_kind,
    value_loc, Cold, Kind, KindSet, Location,
};

/// Which entries a flush removes; `None` fields match everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushFilter {
    /// Only this bridge domain.
    pub bd: Option<u16>,
    /// Only entries on this local port (any VLAN).
    pub port: Option<u16>,
    /// Only entries behind this remote VTEP.
    pub remote: Option<u32>,
    /// Only these kinds.
    pub kinds: KindSet,
}

impl FlushFilter {
    /// Every dynamic (learned and external) entry.
    pub const DYNAMIC: FlushFilter = FlushFilter {
        bd: None,
        port: None,
        remote: None,
        kinds: KindSet::DYNAMIC,
    };

    fn matches(&self, bd: u16, kind: Kind, loc: Location) -> bool {
        if !self.kinds.contains(kind) || self.bd.is_some_and(|b| b != bd) {
            return false;
        }
        if let Some(p) = self.port {
            if !matches!(loc, Location::Local { port, .. } if port == p) {
                return false;
            }
        }
        if let Some(r) = self.remote {
            if loc != Location::Remote(r) {
                return false;
            }
        }
        true
    }
}

fn busy_or(o: LearnOutcome) -> FdbError {
    match o {
        LearnOutcome::TableFull => FdbError::TableFull,
        LearnOutcome::Busy => FdbError::Busy,
        _ => FdbError::Invalid,
    }
}

impl Fdb<'_> {
    /// Installs (or overwrites) a static entry: never ages, never moved by
    /// learning. Overwrites any existing entry and clears dampening.
    ///
    /// ```
    /// # use vxlan_core::fdb::*;
    /// # use vxlan_core::wire::MacAddr;
    /// # let slots: Vec<Slot> = (0..64).map(|_| Slot::new()).collect();
    /// # let cold: Vec<ColdSlot> = (0..64).map(|_| ColdSlot::new()).collect();
    /// # let bds = [BdCounter::new()];
    /// let fdb = Fdb::new(&slots, &cold, &bds, FdbConfig::new(32)).unwrap();
    /// let gw = MacAddr([2, 0, 0, 0, 0, 0xfe]);
    /// fdb.add_static(0, gw, Location::port(0)).unwrap();
    /// // Learning never moves it:
    /// assert_eq!(fdb.learn(0, gw, Location::Remote(3), 1, &mut NoEvents), LearnOutcome::Pinned);
    /// assert!(fdb.remove(0, gw));
    /// assert_eq!(fdb.lookup(0, gw), None);
    /// ```
    pub fn add_static(&self, bd: u16, mac: MacAddr, location: Location) -> Result<(), FdbError> {
        self.install(bd, mac, location, Kind::Static, None)
    }

    /// Installs (or overwrites) a sticky entry (behaves as static).
    pub fn add_sticky(&self, bd: u16, mac: MacAddr, location: Location) -> Result<(), FdbError> {
        self.install(bd, mac, location, Kind::Sticky, None)
    }

    /// Installs or updates an entry from a control plane (EVPN MAC/IP route)
    /// with MAC-mobility sequence number `seq`. An update with a lower
    /// sequence number than the entry's (learned entries count their local
    /// moves) loses, as RFC 7432 section 7.7 says; static and sticky entries
    /// are never overwritten by it.
    ///
    /// ```
    /// # use vxlan_core::fdb::*;
    /// # use vxlan_core::wire::MacAddr;
    /// # let slots: Vec<Slot> = (0..64).map(|_| Slot::new()).collect();
    /// # let cold: Vec<ColdSlot> = (0..64).map(|_| ColdSlot::new()).collect();
    /// # let bds = [BdCounter::new()];
    /// let fdb = Fdb::new(&slots, &cold, &bds, FdbConfig::new(32)).unwrap();
    /// let vm = MacAddr([2, 0, 0, 0, 0, 7]);
    /// fdb.add_external(0, vm, Location::Remote(1), 4).unwrap();
    /// assert_eq!(fdb.add_external(0, vm, Location::Remote(2), 3), Err(FdbError::StaleSequence));
    /// fdb.add_external(0, vm, Location::Remote(2), 5).unwrap();
    /// assert_eq!(fdb.lookup(0, vm).unwrap().location, Location::Remote(2));
    /// ```
    pub fn add_external(
        &self,
        bd: u16,
        mac: MacAddr,
        location: Location,
        seq: u32,
    ) -> Result<(), FdbError> {
        self.install(bd, mac, location, Kind::External, Some(seq))
    }

    fn install(
        &self,
        bd: u16,
        mac: MacAddr,
        location: Location,
        kind: Kind,
        seq: Option<u32>,
    ) -> Result<(), FdbError> {
        if !mac.is_learnable() || usize::from(bd) >= self.bds.len() {
            return Err(FdbError::Invalid);
        }
        let loc = location.encode().ok_or(FdbError::Invalid)?;
        let key = key_word(bd, mac);
        let home = self.home(key);
        let value = make_value(loc, 0, kind, false);
        let fresh_cold = Cold {
            seq: seq.unwrap_or(0),
            window_start: 0,
            moves: 0,
        }
        .pack();
        for _ in 0..4 {
            let (i, k) = match self.probe(key, home) {
                Probe::Found(i, k) => (i, k),
                Probe::Vacant(e, empty) => {
                    self.reserve(bd, false).map_err(busy_or)?;
                    match self.insert_at(e, home, key, empty, value, fresh_cold) {
                        Insert::Done => return Ok(()),
                        Insert::Lost(actual) => {
                            self.unreserve(bd);
                            if key_id(actual) != key {
                                continue;
                            }
                            (e, actual)
                        }
                        Insert::Withdrawn => {
                            self.unreserve(bd);
                            return Err(FdbError::Busy);
                        }
                    }
                }
                Probe::Blocked => return Err(FdbError::Busy),
                Probe::Exhausted => return Err(FdbError::TableFull),
            };
            if let Some(r) = self.install_existing(i, k, bd, value, seq) {
                return r;
            }
            // The slot was trimmed since we read `k`: probe again.
        }
        Err(FdbError::Busy)
    }

    /// Installs `value` (generation bits clear) into slot `i`, whose key
    /// word (ours) was read as `k`. `None` when the slot's generation moved
    /// on since: the caller probes again.
    fn install_existing(
        &self,
        i: usize,
        k: u64,
        bd: u16,
        value: u64,
        seq: Option<u32>,
    ) -> Option<Result<(), FdbError>> {
        let s = self.slot(i);
        let cw = &self.cold(i).word;
        loop {
            // Acquire: the cold word read below is the one published with
            // this value.
            let v = s.value.load(Ordering::Acquire);
            // The CAS below expects `v`: with `k`'s generation it can only
            // hit our key's incarnation.
            if !same_gen(v, k) {
                return None;
            }
            let Some(kind) = value_kind(v) else {
                if !is_dead(v) {
                    return Some(Err(FdbError::Busy));
                }
                if let Err(o) = self.reserve(bd, false) {
                    return Some(Err(busy_or(o)));
                }
                let cold = Cold {
                    seq: seq.unwrap_or(0),
                    window_start: 0,
                    moves: 0,
                }
                .pack();
                match self.revive(i, k, value, cold) {
                    Revive::Done => return Some(Ok(())),
                    Revive::Raced => {
                        self.unreserve(bd);
                        continue;
                    }
                }
            };
            // Relaxed: ordered by the Acquire load of `v` above.
            let old = Cold::unpack(cw.load(Ordering::Relaxed));
            if let Some(seq) = seq {
                if kind.is_pinned() {
                    return Some(Err(FdbError::Pinned));
                }
                if seq < old.seq {
                    return Some(Err(FdbError::StaleSequence));
                }
            }
            let new_cold = Cold {
                seq: seq.unwrap_or(old.seq),
                window_start: 0,
                moves: 0,
            };
            // AcqRel: Release publishes the new value; Acquire orders our
            // cold store after any racing mover's cold update.
            if s.value
                .compare_exchange(v, value | gen_of(v), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                // Relaxed: bookkeeping; a racing move may interleave, which
                // only affects its own window count.
                cw.store(new_cold.pack(), Ordering::Relaxed);
                return Some(Ok(()));
            }
        }
    }

    /// Removes the entry for `mac` in `bd` (any kind). True if a live entry
    /// was removed.
    pub fn remove(&self, bd: u16, mac: MacAddr) -> bool {
        let key = key_word(bd, mac);
        if !mac.is_learnable() || usize::from(bd) >= self.bds.len() {
            return false;
        }
        let home = self.home(key);
        'probe: for _ in 0..4 {
            let Probe::Found(i, k) = self.probe(key, home) else {
                return false;
            };
            loop {
                // Acquire: see `kill`.
                let v = self.slot(i).value.load(Ordering::Acquire);
                if !same_gen(v, k) {
                    // Trimmed since we read `k` (so our key was dead then);
                    // it may have been inserted again since: probe again.
                    continue 'probe;
                }
                if value_kind(v).is_none() {
                    return false;
                }
                // `v` has `k`'s generation: the kill cannot hit a key that
                // reused the slot.
                if self.kill(i, v, bd) {
                    return true;
                }
            }
        }
        false
    }

    /// Removes every live entry `filter` matches; returns how many. A full
    /// scan of the table: control-plane work, not for the packet path.
    pub fn flush(&self, filter: FlushFilter) -> usize {
        let mut n = 0;
        for i in 0..self.slots.len() {
            let s = self.slot(i);
            // Acquire: pairs with the inserter's key CAS.
            let k = s.key.load(Ordering::Acquire);
            let (bd, _) = split_key(k);
            if ends_probe(k) || usize::from(bd) >= self.bds.len() {
                continue;
            }
            loop {
                // Acquire: pairs with the value's Release publication.
                let v = s.value.load(Ordering::Acquire);
                // A value of another generation belongs to a key that
                // reused the slot after we read `k`, i.e. one inserted
                // during the flush (which may or may not be flushed).
                if !same_gen(v, k) {
                    break;
                }
                let Some(kind) = value_kind(v) else { break };
                if !filter.matches(bd, kind, Location::decode(value_loc(v))) {
                    break;
                }
                // `v` has `k`'s generation, so it is `k`'s entry and the
                // kill cannot succeed on a key that reused the slot.
                if self.kill(i, v, bd) {
                    n += 1;
                    break;
                }
            }
        }
        n
    }

    /// Removes the dynamic (learned and external) entries of bridge domain
    /// `bd`.
    pub fn flush_bd(&self, bd: u16) -> usize {
        self.flush(FlushFilter {
            bd: Some(bd),
            ..FlushFilter::DYNAMIC
        })
    }

    /// Removes the dynamic entries behind remote VTEP `vtep`.
    pub fn flush_remote(&self, vtep: u32) -> usize {
        self.flush(FlushFilter {
            remote: Some(vtep),
            ..FlushFilter::DYNAMIC
        })
    }

    /// Removes the dynamic entries on local port `port`.
    pub fn flush_port(&self, port: u16) -> usize {
        self.flush(FlushFilter {
            port: Some(port),
            ..FlushFilter::DYNAMIC
        })
    }
}
