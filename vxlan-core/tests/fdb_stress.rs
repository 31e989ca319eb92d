//! Multi-threaded stress test of the FDB: two threads run millions of mixed
//! operations (lookups, learns with moves and dampening, control-plane adds
//! and removes, flushes, incremental ageing with trims) and the final state
//! is reconciled with what the threads did.
#![cfg(not(loom))]

use std::sync::Barrier;

use vxlan_core::fdb::{
    BdCounter, ColdSlot, Dampening, Fdb, FdbConfig, Kind, LearnOutcome, Location, NoEvents, Slot,
};
use vxlan_core::wire::MacAddr;

const SLOTS: usize = 4000; // not a power of two on purpose
const SHARED: u32 = 400; // MACs both threads learn (moves race)
const OWN: u32 = 1200; // MACs only one thread learns (per thread)
const STATIC_BASE: u32 = 100_000; // MACs only thread 0 installs statically
const STATICS: u32 = 64;

fn mac(i: u32) -> MacAddr {
    let b = i.to_be_bytes();
    MacAddr([0x02, 0x55, b[0], b[1], b[2], b[3]])
}

fn mac_id(m: MacAddr) -> u32 {
    u32::from_be_bytes([m.0[2], m.0[3], m.0[4], m.0[5]])
}

/// The two locations MAC `i` is ever learned at.
fn locs(i: u32) -> [Location; 2] {
    [
        Location::Local {
            port: u16::try_from(i & 0xff).unwrap(),
            vlan: 1,
        },
        Location::Remote(i),
    ]
}

fn static_loc(i: u32) -> Location {
    Location::Local {
        port: 4000 + u16::try_from(i - STATIC_BASE).unwrap(),
        vlan: 2,
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u32) -> u32 {
        u32::try_from(self.next() % u64::from(n)).unwrap()
    }
}

#[derive(Default, Debug)]
struct Tally {
    learned: u64,
    moved: u64,
    static_created: u64,
    removed: u64,
    aged: u64,
    flushed: u64,
    lookups_hit: u64,
    busy: u64,
    /// Last location this thread learned for each of its own MACs.
    last: Vec<Option<Location>>,
}

fn check_entry(id: u32, e: vxlan_core::fdb::Entry) {
    if id >= STATIC_BASE {
        assert_eq!(e.kind, Kind::Static);
        assert_eq!(e.location, static_loc(id), "torn static entry");
    } else {
        assert_eq!(e.kind, Kind::Learned);
        assert!(
            locs(id).contains(&e.location),
            "torn entry for mac {id}: {e:?}"
        );
    }
}

fn worker(fdb: &Fdb<'_>, t: u32, ops: u64, barrier: &Barrier) -> Tally {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((u64::from(t) + 1) * 0x1234_5678_9abc_def1));
    let mut tally = Tally {
        last: vec![None; OWN as usize],
        ..Tally::default()
    };
    let own_base = SHARED + t * OWN;
    let mut batch_keys = Vec::new();
    let mut batch_out = vec![None; 32];
    let mut batch_ids = Vec::new();
    let mut batch_packed = vec![vxlan_core::fdb::PackedEntry::MISS; 32];
    barrier.wait();
    for n in 0..ops {
        let now = u32::try_from(n / 20_000).unwrap();
        let r = rng.below(1000);
        if r < 600 {
            let id = if rng.below(2) == 0 {
                rng.below(SHARED)
            } else {
                SHARED + rng.below(2 * OWN)
            };
            if let Some(e) = fdb.lookup(0, mac(id)) {
                check_entry(id, e);
                tally.lookups_hit += 1;
            }
        } else if r < 620 {
            batch_keys.clear();
            batch_ids.clear();
            for _ in 0..32 {
                let id = rng.below(SHARED + 2 * OWN);
                batch_ids.push(id);
                batch_keys.push(vxlan_core::fdb::FdbKey::new(0, mac(id)));
            }
            fdb.lookup_batch(&batch_keys, &mut batch_out);
            fdb.lookup_batch_packed(&batch_keys, &mut batch_packed);
            for ((k, o), p) in batch_ids.iter().zip(&batch_out).zip(&batch_packed) {
                if let Some(e) = *o {
                    check_entry(*k, e);
                }
                if let Some(e) = p.entry() {
                    check_entry(*k, e);
                }
            }
        } else if r < 950 {
            let shared = rng.below(3) == 0;
            let (id, own_idx) = if shared {
                (rng.below(SHARED), None)
            } else {
                let k = rng.below(OWN);
                (own_base + k, Some(k as usize))
            };
            let loc = locs(id)[usize::from(rng.below(8) == 0)];
            match fdb.learn(0, mac(id), loc, now, &mut NoEvents) {
                LearnOutcome::Learned => tally.learned += 1,
                LearnOutcome::Moved { .. } => tally.moved += 1,
                LearnOutcome::Busy => tally.busy += 1,
                _ => {}
            }
            if let Some(k) = own_idx {
                // Only this thread learns this MAC: if it is live at the
                // end, it is where this thread last saw it (unless frozen).
                if let Some(e) = fdb.lookup(0, mac(id)) {
                    tally.last[k] = Some(e.location);
                }
            }
        } else if t == 0 && r < 965 {
            let id = STATIC_BASE + rng.below(STATICS);
            let existed = fdb.lookup(0, mac(id)).is_some();
            if fdb.add_static(0, mac(id), static_loc(id)).is_ok() && !existed {
                tally.static_created += 1;
            }
        } else if t == 0 && r < 985 {
            let id = if rng.below(4) == 0 {
                STATIC_BASE + rng.below(STATICS)
            } else {
                rng.below(SHARED + 2 * OWN)
            };
            if fdb.remove(0, mac(id)) {
                tally.removed += 1;
            }
        } else if t == 0 && r < 999 {
            let rep = fdb.age_step(now, 64, &mut NoEvents);
            tally.aged += rep.aged as u64;
        } else if t == 0 {
            tally.flushed += fdb.flush_port(u16::try_from(rng.below(256)).unwrap()) as u64;
        }
    }
    tally
}

fn run(ops: u64) {
    let slots: Vec<Slot> = (0..SLOTS).map(|_| Slot::new()).collect();
    let cold: Vec<ColdSlot> = (0..SLOTS).map(|_| ColdSlot::new()).collect();
    let bds = [BdCounter::new()];
    let cfg = FdbConfig {
        age_time: 4,
        refresh_ticks: 1,
        dampening: Dampening {
            moves: 5,
            window: 3,
            hold: 2,
        },
        max_probe: 64,
        ..FdbConfig::new(2500)
    };
    let fdb = Fdb::new(&slots, &cold, &bds, cfg).unwrap();
    let barrier = Barrier::new(2);
    let (a, b) = std::thread::scope(|s| {
        let h = s.spawn(|| worker(&fdb, 1, ops, &barrier));
        let a = worker(&fdb, 0, ops, &barrier);
        (a, h.join().unwrap())
    });

    // Reconcile.
    let st = fdb.stats();
    let dump: Vec<_> = fdb.iter().collect();
    let live = dump.len() as u64;
    assert_eq!(u64::from(st.entries), live, "live counter vs dump");
    assert_eq!(u64::from(fdb.bd_entries(0)), live, "bd counter vs dump");
    let mut ids: Vec<u32> = dump.iter().map(|r| mac_id(r.mac)).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len() as u64, live, "a MAC is live twice");
    for r in &dump {
        check_entry(mac_id(r.mac), r.entry);
    }
    assert_eq!(
        st.learns,
        a.learned + b.learned,
        "learn counter vs outcomes"
    );
    assert_eq!(st.moves, a.moved + b.moved, "move counter vs outcomes");
    assert_eq!(st.ages, a.aged, "age counter vs sweeps");
    assert_eq!(st.busy, a.busy + b.busy);
    let created = a.learned + b.learned + a.static_created;
    let gone = a.removed + a.aged + a.flushed;
    assert_eq!(
        live,
        created - gone,
        "entries = created - removed - aged - flushed"
    );
    // Thread-exclusive MACs: still live ones sit where their thread last
    // saw them.
    for (t, tally) in [(0u32, &a), (1, &b)] {
        for (k, last) in tally.last.iter().enumerate() {
            let id = SHARED + t * OWN + u32::try_from(k).unwrap();
            if let Some(e) = fdb.lookup(0, mac(id)) {
                assert_eq!(Some(e.location), *last, "mac {id}");
            }
        }
    }
    // The run exercised what it is meant to.
    assert!(
        st.learns > 1000 && st.moves > 100 && st.ages > 100,
        "{st:?}"
    );
    assert!(a.removed > 0 && a.flushed > 0 && a.lookups_hit > 0 && b.lookups_hit > 0);
    eprintln!(
        "stress: {} ops/thread, {st:?}, busy a={} b={}",
        ops, a.busy, b.busy
    );
}

#[test]
fn two_threads_mixed_operations_reconcile() {
    run(if cfg!(debug_assertions) {
        1_000_000
    } else {
        5_000_000
    });
}

#[test]
#[ignore = "long: 20 million operations per thread"]
fn two_threads_mixed_operations_reconcile_long() {
    run(20_000_000);
}
