//! loom model checks of the concurrent protocol on an 8-slot table.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p vxlan-core --release --lib fdb::loom`.

extern crate std;

use std::boxed::Box;
use std::vec::Vec;

use ::loom::sync::Arc;
use ::loom::thread;

use super::*;
use crate::sync::Ordering;
use crate::wire::MacAddr;

fn new_fdb() -> &'static Fdb<'static> {
    let slots: &'static [Slot] = Box::leak(
        (0..8)
            .map(|_| Slot::new())
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    );
    let cold: &'static [ColdSlot] = Box::leak(
        (0..8)
            .map(|_| ColdSlot::new())
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    );
    let bds: &'static [BdCounter] = Box::leak(Box::new([BdCounter::new()]));
    let cfg = FdbConfig {
        age_time: 10,
        max_probe: 8,
        ..FdbConfig::new(7)
    };
    Box::leak(Box::new(Fdb::new(slots, cold, bds, cfg).unwrap()))
}

fn mac(i: u8) -> MacAddr {
    MacAddr([0x02, 0, 0, 0, 1, i])
}

/// A MAC (index >= `from`) whose home slot is `home`.
fn mac_with_home(fdb: &Fdb<'_>, home: usize, from: u8) -> MacAddr {
    (from..=250)
        .map(mac)
        .find(|m| fdb.home(word::key_word(0, *m)) == home)
        .unwrap()
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = ::loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(f);
}

/// Counters agree with the table contents.
fn consistent(fdb: &Fdb<'_>) {
    let live = fdb.iter().count();
    assert_eq!(usize::try_from(fdb.stats().entries).unwrap(), live);
    assert_eq!(usize::try_from(fdb.bd_entries(0)).unwrap(), live);
    // No key is live twice.
    let mut keys: Vec<_> = fdb.iter().map(|r| r.mac).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), live);
}

#[test]
fn racing_inserts_of_one_mac_make_one_entry() {
    model(|| {
        let fdb = new_fdb();
        let m = mac(1);
        let t = thread::spawn(move || fdb.learn(0, m, Location::port(1), 1, &mut NoEvents));
        let a = fdb.learn(0, m, Location::port(1), 1, &mut NoEvents);
        let b = t.join().unwrap();
        let learned = [a, b]
            .iter()
            .filter(|o| **o == LearnOutcome::Learned)
            .count();
        assert!(learned <= 1, "{a:?} {b:?}");
        assert_eq!(fdb.stats().learns, u64::try_from(learned).unwrap());
        consistent(fdb);
        if learned == 1 {
            assert_eq!(fdb.lookup(0, m).unwrap().location, Location::port(1));
        }
    });
}

#[test]
fn lookup_racing_a_move_sees_old_or_new() {
    model(|| {
        let fdb = new_fdb();
        let m = mac(1);
        let (old, new) = (Location::port(1), Location::Remote(9));
        assert_eq!(
            fdb.learn(0, m, old, 1, &mut NoEvents),
            LearnOutcome::Learned
        );
        let t = thread::spawn(move || fdb.learn(0, m, new, 2, &mut NoEvents));
        let seen = fdb.lookup(0, m).expect("a move never hides the entry");
        assert!(seen.location == old || seen.location == new, "{seen:?}");
        assert!(matches!(t.join().unwrap(), LearnOutcome::Moved { .. }));
        assert_eq!(fdb.lookup(0, m).unwrap().location, new);
    });
}

#[test]
fn two_movers_and_a_reader() {
    model(|| {
        let fdb = new_fdb();
        let m = mac(1);
        fdb.learn(0, m, Location::port(1), 1, &mut NoEvents);
        let t = thread::spawn(move || fdb.learn(0, m, Location::port(2), 2, &mut NoEvents));
        let r = thread::spawn(move || fdb.lookup(0, m).map(|e| e.location));
        let a = fdb.learn(0, m, Location::port(3), 2, &mut NoEvents);
        let b = t.join().unwrap();
        let seen = r.join().unwrap().expect("never a miss");
        assert!([Location::port(1), Location::port(2), Location::port(3)].contains(&seen));
        let last = fdb.lookup(0, m).unwrap().location;
        assert!(last == Location::port(2) || last == Location::port(3));
        // Both moves applied, in some order.
        assert!(matches!(a, LearnOutcome::Moved { .. }) && matches!(b, LearnOutcome::Moved { .. }));
        assert_eq!(fdb.stats().moves, 2);
    });
}

#[test]
fn delete_racing_learn_and_lookup() {
    model(|| {
        let fdb = new_fdb();
        let (m, other) = (mac(1), mac(2));
        fdb.learn(0, m, Location::port(1), 1, &mut NoEvents);
        fdb.add_static(0, other, Location::port(7)).unwrap();
        let t = thread::spawn(move || fdb.learn(0, m, Location::port(2), 2, &mut NoEvents));
        let r = thread::spawn(move || (fdb.lookup(0, m), fdb.lookup(0, other)));
        let removed = fdb.remove(0, m);
        let out = t.join().unwrap();
        let (seen, seen_other) = r.join().unwrap();
        assert_eq!(
            seen_other.unwrap().location,
            Location::port(7),
            "a neighbour never disappears"
        );
        if let Some(e) = seen {
            assert!(e.location == Location::port(1) || e.location == Location::port(2));
        }
        assert!(removed);
        // Either the learn moved the entry and then it was removed, or it
        // was removed and the learn re-inserted it.
        match out {
            LearnOutcome::Learned => {
                assert_eq!(fdb.lookup(0, m).unwrap().location, Location::port(2))
            }
            LearnOutcome::Moved { .. } => assert_eq!(fdb.lookup(0, m), None),
            LearnOutcome::Busy => {}
            o => panic!("{o:?}"),
        }
        consistent(fdb);
    });
}

/// The trim protocol: a dead slot `i` is trimmed while a learner whose
/// probe passed `i` inserts at `i + 1`. The learner must never end up live
/// behind a hole (its key would be unreachable and could be duplicated).
#[test]
fn trim_racing_insert_never_strands_a_key() {
    model(|| {
        let fdb = new_fdb();
        let home = 4;
        let x = mac_with_home(fdb, home, 0);
        let y = mac_with_home(fdb, home, x.0[5] + 1);
        assert_eq!(
            fdb.learn(0, x, Location::port(1), 0, &mut NoEvents),
            LearnOutcome::Learned
        );
        assert!(fdb.remove(0, x)); // slot 4 dead, slot 5 empty
        fdb.age_cursor.store(home, Ordering::Relaxed);
        let t = thread::spawn(move || fdb.learn(0, y, Location::port(2), 1, &mut NoEvents));
        let r = fdb.age_step(1, 1, &mut NoEvents);
        let out = t.join().unwrap();
        match out {
            LearnOutcome::Learned => {
                assert_eq!(
                    fdb.lookup(0, y).unwrap().location,
                    Location::port(2),
                    "trimmed={}",
                    r.trimmed
                );
                // And learning it again finds the same entry.
                assert_eq!(
                    fdb.learn(0, y, Location::port(2), 1, &mut NoEvents),
                    LearnOutcome::Unchanged
                );
            }
            LearnOutcome::Busy => assert_eq!(fdb.lookup(0, y), None),
            o => panic!("{o:?}"),
        }
        consistent(fdb);
        // After the dust settles the table still works for both keys.
        assert!(matches!(
            fdb.learn(0, x, Location::port(3), 2, &mut NoEvents),
            LearnOutcome::Learned
        ));
        consistent(fdb);
    });
}

/// Reviving a dead key races the ager trimming that very slot.
#[test]
fn trim_racing_revive() {
    model(|| {
        let fdb = new_fdb();
        let x = mac_with_home(fdb, 0, 0);
        fdb.learn(0, x, Location::port(1), 0, &mut NoEvents);
        assert!(fdb.remove(0, x));
        fdb.age_cursor.store(0, Ordering::Relaxed);
        let t = thread::spawn(move || fdb.learn(0, x, Location::port(2), 1, &mut NoEvents));
        fdb.age_step(1, 1, &mut NoEvents);
        match t.join().unwrap() {
            LearnOutcome::Learned => {
                assert_eq!(fdb.lookup(0, x).unwrap().location, Location::port(2))
            }
            LearnOutcome::Busy => assert_eq!(fdb.lookup(0, x), None),
            o => panic!("{o:?}"),
        }
        consistent(fdb);
    });
}

/// Ageing racing a refresh: the entry either ages (and the refresh re-learns
/// or is busy) or survives refreshed; counters stay consistent.
#[test]
fn age_racing_refresh() {
    model(|| {
        let fdb = new_fdb();
        let m = mac(1);
        fdb.learn(0, m, Location::port(1), 0, &mut NoEvents);
        let t = thread::spawn(move || fdb.learn(0, m, Location::port(1), 10, &mut NoEvents));
        let r = fdb.age_step(10, 8, &mut NoEvents);
        let out = t.join().unwrap();
        match (r.aged, out) {
            (1, LearnOutcome::Learned | LearnOutcome::Busy) | (0, LearnOutcome::Refreshed) => {}
            (a, o) => panic!("aged {a}, {o:?}"),
        }
        consistent(fdb);
        let _ = Arc::new(());
    });
}
