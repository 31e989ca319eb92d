//! A simple single-threaded reference model of the FDB and a checker that
//! runs an operation sequence against both and compares every observable
//! (return values, events, lookups, dumps, counters). Used by the proptest
//! model test and by the `fdb_ops` fuzz target; compiled only for tests and
//! under `cfg(fuzzing)`. Uses `std`.

extern crate std;

use std::collections::BTreeMap;
use std::vec::Vec;

use crate::wire::MacAddr;

use super::{
    BdCounter, ColdSlot, Entry, Event, EventKind, EventSink, Fdb, FdbConfig, FdbError, FdbKey,
    FdbStats, FlushFilter, Kind, KindSet, LearnOutcome, Location, PackedEntry, Record, Slot,
};

const MASK: u32 = 0x00ff_ffff;

fn elapsed(now: u32, then: u32) -> u32 {
    now.wrapping_sub(then) & MASK
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MEntry {
    loc: Location,
    kind: Kind,
    last_seen: u32,
    frozen: bool,
    seq: u32,
    window_start: u32,
    moves: u8,
}

/// The reference model: a `BTreeMap` and the rules written out plainly.
#[derive(Debug, Clone)]
pub struct Model {
    cfg: FdbConfig,
    bds: u16,
    bd_limits: BTreeMap<u16, u32>,
    map: BTreeMap<(u16, MacAddr), MEntry>,
    stats: FdbStats,
}

impl Model {
    /// An empty model with `bds` bridge domains.
    pub fn new(cfg: FdbConfig, bds: u16) -> Model {
        Model {
            cfg,
            bds,
            bd_limits: BTreeMap::new(),
            map: BTreeMap::new(),
            stats: FdbStats::default(),
        }
    }

    fn bd_count(&self, bd: u16) -> u32 {
        u32::try_from(self.map.keys().filter(|(b, _)| *b == bd).count()).unwrap_or(u32::MAX)
    }

    fn live(&self) -> u32 {
        u32::try_from(self.map.len()).unwrap_or(u32::MAX)
    }

    fn limit(&self, bd: u16) -> u32 {
        match self.bd_limits.get(&bd) {
            Some(&l) if l != 0 => l,
            _ => self.cfg.bd_limit,
        }
    }

    /// Mirrors [`Fdb::set_bd_limit`].
    pub fn set_bd_limit(&mut self, bd: u16, limit: u32) {
        if bd < self.bds {
            self.bd_limits.insert(bd, limit);
        }
    }

    /// Mirrors [`Fdb::learn`].
    pub fn learn(
        &mut self,
        bd: u16,
        mac: MacAddr,
        loc: Location,
        now: u32,
        ev: &mut Vec<Event>,
    ) -> LearnOutcome {
        if !mac.is_learnable() {
            return LearnOutcome::NotLearnable;
        }
        if bd >= self.bds || loc.encode().is_none() {
            return LearnOutcome::Invalid;
        }
        let d = self.cfg.dampening;
        let refresh = self.cfg.refresh_ticks;
        let Some(e) = self.map.get_mut(&(bd, mac)) else {
            if self.live() >= self.cfg.max_entries {
                self.stats.refused_table_full += 1;
                return LearnOutcome::TableFull;
            }
            if self.bd_count(bd) >= self.limit(bd) {
                self.stats.refused_bd_limit += 1;
                return LearnOutcome::BdLimit;
            }
            self.map.insert(
                (bd, mac),
                MEntry {
                    loc,
                    kind: Kind::Learned,
                    last_seen: now & MASK,
                    frozen: false,
                    seq: 0,
                    window_start: now & MASK,
                    moves: 0,
                },
            );
            self.stats.learns += 1;
            ev.push(Event {
                kind: EventKind::Learned,
                bd,
                mac,
                location: loc,
                previous: None,
            });
            return LearnOutcome::Learned;
        };
        if e.loc == loc {
            if e.kind != Kind::Learned || elapsed(now, e.last_seen) < refresh {
                return LearnOutcome::Unchanged;
            }
            e.last_seen = now & MASK;
            return LearnOutcome::Refreshed;
        }
        if e.kind.is_pinned() {
            self.stats.pinned_refused += 1;
            return LearnOutcome::Pinned;
        }
        let mut thaw = false;
        if e.frozen {
            if elapsed(now, e.window_start) < d.hold {
                self.stats.frozen_refused += 1;
                return LearnOutcome::Frozen;
            }
            thaw = true;
        }
        let from = e.loc;
        e.loc = loc;
        e.last_seen = now & MASK;
        e.kind = Kind::Learned;
        e.frozen = false;
        if thaw || e.moves == 0 || elapsed(now, e.window_start) >= d.window {
            e.window_start = now & MASK;
            e.moves = 1;
        } else {
            e.moves = e.moves.saturating_add(1);
        }
        e.seq = e.seq.wrapping_add(1);
        self.stats.moves += 1;
        ev.push(Event {
            kind: EventKind::Moved,
            bd,
            mac,
            location: loc,
            previous: Some(from),
        });
        let frozen = d.moves != 0 && e.moves >= d.moves;
        if frozen {
            e.window_start = now & MASK;
            e.frozen = true;
            self.stats.freezes += 1;
            ev.push(Event {
                kind: EventKind::Frozen,
                bd,
                mac,
                location: loc,
                previous: None,
            });
        }
        LearnOutcome::Moved { from, frozen }
    }

    /// Mirrors the control-plane adds (`seq` is `Some` for external).
    pub fn install(
        &mut self,
        bd: u16,
        mac: MacAddr,
        loc: Location,
        kind: Kind,
        seq: Option<u32>,
    ) -> Result<(), FdbError> {
        if !mac.is_learnable() || bd >= self.bds || loc.encode().is_none() {
            return Err(FdbError::Invalid);
        }
        let fresh = MEntry {
            loc,
            kind,
            last_seen: 0,
            frozen: false,
            seq: seq.unwrap_or(0),
            window_start: 0,
            moves: 0,
        };
        match self.map.get_mut(&(bd, mac)) {
            None => {
                if self.live() >= self.cfg.max_entries {
                    self.stats.refused_table_full += 1;
                    return Err(FdbError::TableFull);
                }
                self.map.insert((bd, mac), fresh);
            }
            Some(e) => {
                if let Some(s) = seq {
                    if e.kind.is_pinned() {
                        return Err(FdbError::Pinned);
                    }
                    if s < e.seq {
                        return Err(FdbError::StaleSequence);
                    }
                }
                *e = MEntry {
                    seq: seq.unwrap_or(e.seq),
                    ..fresh
                };
            }
        }
        Ok(())
    }

    /// Mirrors [`Fdb::remove`].
    pub fn remove(&mut self, bd: u16, mac: MacAddr) -> bool {
        self.map.remove(&(bd, mac)).is_some()
    }

    /// Mirrors [`Fdb::flush`].
    pub fn flush(&mut self, f: FlushFilter) -> usize {
        let before = self.map.len();
        self.map.retain(|&(bd, _), e| {
            let hit = f.kinds.contains(e.kind)
                && f.bd.is_none_or(|b| b == bd)
                && f.port
                    .is_none_or(|p| matches!(e.loc, Location::Local { port, .. } if port == p))
                && f.remote.is_none_or(|r| e.loc == Location::Remote(r));
            !hit
        });
        before - self.map.len()
    }

    /// Mirrors a complete ageing sweep at `now`.
    pub fn age_full(&mut self, now: u32, ev: &mut Vec<Event>) {
        let (age, hold) = (self.cfg.age_time, self.cfg.dampening.hold);
        let mut aged = 0;
        self.map.retain(|&(bd, mac), e| {
            if e.kind != Kind::Learned {
                return true;
            }
            if age != 0 && elapsed(now, e.last_seen) >= age {
                ev.push(Event {
                    kind: EventKind::Aged,
                    bd,
                    mac,
                    location: e.loc,
                    previous: None,
                });
                aged += 1;
                return false;
            }
            if e.frozen && elapsed(now, e.window_start) >= hold {
                e.frozen = false;
                e.moves = 0;
            }
            true
        });
        self.stats.ages += aged;
    }

    /// Mirrors [`Fdb::lookup`].
    pub fn lookup(&self, bd: u16, mac: MacAddr) -> Option<Entry> {
        self.map.get(&(bd, mac)).map(|e| Entry {
            location: e.loc,
            kind: e.kind,
            last_seen: e.last_seen,
            frozen: e.frozen,
        })
    }

    /// The dump, sorted by (bd, mac).
    pub fn records(&self) -> Vec<Record> {
        self.map
            .iter()
            .map(|(&(bd, mac), e)| Record {
                bd,
                mac,
                entry: Entry {
                    location: e.loc,
                    kind: e.kind,
                    last_seen: e.last_seen,
                    frozen: e.frozen,
                },
                seq: e.seq,
            })
            .collect()
    }

    /// Counters (entries filled in).
    pub fn stats(&self) -> FdbStats {
        FdbStats {
            entries: self.live(),
            ..self.stats
        }
    }
}

/// One operation of a checked sequence. MACs and ports are small indices so
/// random sequences hit the same entries often.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Advance the clock.
    Tick(u32),
    /// Learn MAC `mac` in `bd` at `loc`.
    Learn {
        /// Bridge domain.
        bd: u16,
        /// MAC index.
        mac: u8,
        /// Location code index.
        loc: u8,
    },
    /// A static (`kind` 0), sticky (1) or external (2) add.
    Add {
        /// Bridge domain.
        bd: u16,
        /// MAC index.
        mac: u8,
        /// Location code index.
        loc: u8,
        /// 0 static, 1 sticky, otherwise external.
        kind: u8,
        /// Sequence number for external.
        seq: u32,
    },
    /// Remove.
    Remove {
        /// Bridge domain.
        bd: u16,
        /// MAC index.
        mac: u8,
    },
    /// Flush: 0 by bd, 1 by port, 2 by remote, 3 everything dynamic, 4 all.
    Flush {
        /// Which flush.
        which: u8,
        /// Its argument.
        arg: u16,
    },
    /// A complete ageing sweep made of `age_step` calls of `budget`.
    Age {
        /// Slots per call (0 is treated as 1).
        budget: u16,
    },
    /// Set a bridge domain's limit.
    Limit {
        /// Bridge domain.
        bd: u16,
        /// New limit (0 = default).
        limit: u8,
    },
}

/// Maps a small index to a MAC: unicast, except that index 255 is the
/// broadcast address and 254 all-zero (never learnable).
pub fn mac_of(i: u8) -> MacAddr {
    match i {
        255 => MacAddr::BROADCAST,
        254 => MacAddr::ZERO,
        253 => MacAddr([0x01, 0, 0x5e, 0, 0, 1]),
        _ => MacAddr([0x02, 0, 0, 0, i / 16, i]),
    }
}

/// Maps a small index to a location: ports 0..4 with VLAN, remotes 0..4,
/// and one unencodable VLAN.
pub fn loc_of(i: u8) -> Location {
    match i % 9 {
        0..=3 => Location::Local {
            port: u16::from(i % 4),
            vlan: 10,
        },
        4..=7 => Location::Remote(u32::from(i % 4)),
        _ => Location::Local {
            port: 0,
            vlan: 5000,
        },
    }
}

struct VecSink<'v>(&'v mut Vec<Event>);

impl EventSink for VecSink<'_> {
    fn emit(&mut self, e: Event) {
        self.0.push(e);
    }
}

fn sort_events(v: &mut [Event]) {
    v.sort_by_key(|e| (e.bd, e.mac, e.location.encode()));
}

/// Runs `ops` against a fresh [`Fdb`] (`slots` slots, `bds` bridge domains,
/// `cfg`) and a [`Model`], panicking at the first observable difference.
/// `macs` bounds the MAC indices that are compared by lookup after every
/// step.
pub fn check(cfg: FdbConfig, slots: usize, bds: u16, macs: u8, ops: &[Op]) {
    let slot_v: Vec<Slot> = (0..slots).map(|_| Slot::new()).collect();
    let cold_v: Vec<ColdSlot> = (0..slots).map(|_| ColdSlot::new()).collect();
    let bd_v: Vec<BdCounter> = (0..bds).map(|_| BdCounter::new()).collect();
    let fdb = Fdb::new(&slot_v, &cold_v, &bd_v, cfg).expect("valid config");
    let mut model = Model::new(cfg, bds);
    let mut now: u32 = 1;
    let mut got = Vec::new();
    let mut want = Vec::new();
    for (step, op) in ops.iter().enumerate() {
        got.clear();
        want.clear();
        match *op {
            Op::Tick(dt) => now = now.wrapping_add(dt) & MASK,
            Op::Learn { bd, mac, loc } => {
                let (m, l) = (mac_of(mac), loc_of(loc));
                let a = fdb.learn(bd, m, l, now, &mut VecSink(&mut got));
                let b = model.learn(bd, m, l, now, &mut want);
                assert_eq!(a, b, "step {step}: {op:?}");
            }
            Op::Add {
                bd,
                mac,
                loc,
                kind,
                seq,
            } => {
                let (m, l) = (mac_of(mac), loc_of(loc));
                let (a, b) = match kind {
                    0 => (
                        fdb.add_static(bd, m, l),
                        model.install(bd, m, l, Kind::Static, None),
                    ),
                    1 => (
                        fdb.add_sticky(bd, m, l),
                        model.install(bd, m, l, Kind::Sticky, None),
                    ),
                    _ => (
                        fdb.add_external(bd, m, l, seq),
                        model.install(bd, m, l, Kind::External, Some(seq)),
                    ),
                };
                assert_eq!(a, b, "step {step}: {op:?}");
            }
            Op::Remove { bd, mac } => {
                assert_eq!(
                    fdb.remove(bd, mac_of(mac)),
                    model.remove(bd, mac_of(mac)),
                    "step {step}: {op:?}"
                );
            }
            Op::Flush { which, arg } => {
                let f = match which % 5 {
                    0 => FlushFilter {
                        bd: Some(arg % bds.max(1)),
                        ..FlushFilter::DYNAMIC
                    },
                    1 => FlushFilter {
                        port: Some(arg % 4),
                        ..FlushFilter::DYNAMIC
                    },
                    2 => FlushFilter {
                        remote: Some(u32::from(arg % 4)),
                        ..FlushFilter::DYNAMIC
                    },
                    3 => FlushFilter::DYNAMIC,
                    _ => FlushFilter {
                        kinds: KindSet::ALL,
                        ..FlushFilter::DYNAMIC
                    },
                };
                assert_eq!(fdb.flush(f), model.flush(f), "step {step}: {op:?}");
            }
            Op::Age { budget } => {
                let budget = usize::from(budget.max(1));
                let mut visited = 0;
                while visited < slots {
                    let r = fdb.age_step(now, budget, &mut VecSink(&mut got));
                    assert!(!r.contended);
                    visited += r.visited;
                }
                model.age_full(now, &mut want);
                sort_events(&mut got);
                sort_events(&mut want);
            }
            Op::Limit { bd, limit } => {
                fdb.set_bd_limit(bd, u32::from(limit));
                model.set_bd_limit(bd, u32::from(limit));
            }
        }
        assert_eq!(got, want, "events differ at step {step}: {op:?}");
        let mut keys = Vec::new();
        for bd in 0..bds {
            for m in 0..macs {
                assert_eq!(
                    fdb.lookup(bd, mac_of(m)),
                    model.lookup(bd, mac_of(m)),
                    "step {step}: lookup {bd}/{m}"
                );
                keys.push(FdbKey::new(bd, mac_of(m)));
            }
        }
        let mut out = std::vec![None; keys.len()];
        fdb.lookup_batch(&keys, &mut out);
        for (k, o) in keys.iter().zip(&out) {
            let (bd, mac) = super::word::split_key(k.0);
            assert_eq!(*o, model.lookup(bd, mac), "step {step}: batch lookup");
        }
        let mut packed = std::vec![PackedEntry::MISS; keys.len()];
        fdb.lookup_batch_packed(&keys, &mut packed);
        for (p, o) in packed.iter().zip(&out) {
            assert_eq!(p.entry(), *o, "step {step}: packed batch lookup");
            assert_eq!(p.is_hit(), o.is_some(), "step {step}: packed hit");
            assert_eq!(
                p.location(),
                o.map(|e| e.location),
                "step {step}: packed location"
            );
        }
        let mut dump: Vec<Record> = fdb.iter().collect();
        dump.sort_by_key(|r| (r.bd, r.mac));
        assert_eq!(dump, model.records(), "step {step}: dump after {op:?}");
        let s = fdb.stats();
        assert_eq!(s.busy, 0, "single-threaded runs are never busy");
        assert_eq!(
            FdbStats { busy: 0, ..s },
            model.stats(),
            "step {step}: stats after {op:?}"
        );
        for bd in 0..bds {
            assert_eq!(
                fdb.bd_entries(bd),
                model.bd_count(bd),
                "step {step}: bd {bd} count"
            );
        }
    }
}
