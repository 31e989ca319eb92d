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
    new_fdb_with(1)
}

/// An 8-slot table with `bds` bridge domains.
fn new_fdb_with(bds: usize) -> &'static Fdb<'static> {
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
    let bds: &'static [BdCounter] = Box::leak(
        (0..bds)
            .map(|_| BdCounter::new())
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    );
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
    mac_with_home_in(fdb, 0, home, from)
}

/// A MAC (index >= `from`) whose home slot in bridge domain `bd` is `home`.
fn mac_with_home_in(fdb: &Fdb<'_>, bd: u16, home: usize, from: u8) -> MacAddr {
    (from..=250)
        .map(mac)
        .find(|m| fdb.home(word::key_word(bd, *m)) == home)
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

/// Two keys `x` and `y` with the same home slot 4 (slot 5 stays empty, so
/// the ager can trim slot 4).
fn twins(fdb: &Fdb<'_>) -> (MacAddr, MacAddr) {
    let x = mac_with_home(fdb, 4, 0);
    let y = mac_with_home(fdb, 4, x.0[5] + 1);
    (x, y)
}

/// Runs one ageing step on slot 4 only and checks that it trimmed it.
fn trim_slot_4(fdb: &Fdb<'_>, now: u32) {
    fdb.age_cursor.store(4, Ordering::Relaxed);
    let r = fdb.age_step(now, 1, &mut NoEvents);
    assert_eq!(r.trimmed, 1, "{r:?}");
}

/// ABA on a slot: a lookup of `x` loads slot 4's key (`x`, dead), and while
/// it is between its loads the slot is trimmed, reused by `y`, trimmed
/// again and reused by `x` once more. The lookup may miss or see the new
/// `x`, but must never return `y`'s location for `x`. (A re-check of the
/// key word after the value load passes this interleaving: the key is `x`
/// again.)
#[test]
fn lookup_racing_slot_reuse_never_returns_another_keys_value() {
    model(|| {
        let fdb = new_fdb();
        let (x, y) = twins(fdb);
        assert_eq!(
            fdb.learn(0, x, Location::port(1), 0, &mut NoEvents),
            LearnOutcome::Learned
        );
        assert!(fdb.remove(0, x)); // slot 4: key x, dead
        let t = thread::spawn(move || fdb.lookup(0, x).map(|e| e.location));
        trim_slot_4(fdb, 1);
        assert_eq!(
            fdb.learn(0, y, Location::port(2), 1, &mut NoEvents),
            LearnOutcome::Learned
        );
        assert!(fdb.remove(0, y));
        trim_slot_4(fdb, 2);
        assert_eq!(
            fdb.learn(0, x, Location::port(3), 2, &mut NoEvents),
            LearnOutcome::Learned
        );
        let seen = t.join().unwrap();
        assert!(
            seen.is_none() || seen == Some(Location::port(3)),
            "lookup of x returned {seen:?} (port 2 is y's)"
        );
    });
}

/// A learner moving `x` races the removal of `x` and the reuse of its slot
/// by `y`, whose value word is bit-for-bit what `x`'s was (same location,
/// tick and kind). The learner must never move `y`.
#[test]
fn move_racing_slot_reuse_never_moves_another_key() {
    model(|| {
        let fdb = new_fdb();
        let (x, y) = twins(fdb);
        assert_eq!(
            fdb.learn(0, x, Location::port(1), 1, &mut NoEvents),
            LearnOutcome::Learned
        );
        let t = thread::spawn(move || fdb.learn(0, x, Location::Remote(9), 1, &mut NoEvents));
        assert!(fdb.remove(0, x));
        trim_or_skip(fdb);
        let y_out = fdb.learn(0, y, Location::port(1), 1, &mut NoEvents);
        let x_out = t.join().unwrap();
        assert_eq!(y_out, LearnOutcome::Learned);
        assert_eq!(
            fdb.lookup(0, y).map(|e| e.location),
            Some(Location::port(1)),
            "y was modified by x's learn ({x_out:?})"
        );
        // Nor its cold word: a move of x bumps x's sequence number, never
        // y's (y never moved).
        let ry = fdb.iter().find(|r| r.mac == y).expect("y is live");
        assert_eq!(ry.seq, 0, "x's move counted on y ({x_out:?})");
        match fdb.lookup(0, x) {
            None => {}
            Some(e) => assert_eq!(e.location, Location::Remote(9), "{x_out:?}"),
        }
        consistent(fdb);
    });
}

/// The trim of slot 4 in the move test may find the slot live (the learner
/// revived `x` after the removal) and then does nothing.
fn trim_or_skip(fdb: &Fdb<'_>) {
    fdb.age_cursor.store(4, Ordering::Relaxed);
    fdb.age_step(1, 1, &mut NoEvents);
}

/// A learner reviving dead `x` races the trim of `x`'s slot, its reuse by
/// `y` and `y`'s removal (the slot is dead again, now under `y`'s key). The
/// revival must never bring `y`'s slot back to life with `x`'s location.
#[test]
fn revive_racing_slot_reuse_never_revives_another_key() {
    model(|| {
        let fdb = new_fdb();
        let (x, y) = twins(fdb);
        assert_eq!(
            fdb.learn(0, x, Location::port(1), 0, &mut NoEvents),
            LearnOutcome::Learned
        );
        assert!(fdb.remove(0, x)); // slot 4: key x, dead
        let t = thread::spawn(move || fdb.learn(0, x, Location::port(5), 1, &mut NoEvents));
        fdb.age_cursor.store(4, Ordering::Relaxed);
        fdb.age_step(1, 1, &mut NoEvents);
        let y_out = fdb.learn(0, y, Location::port(2), 1, &mut NoEvents);
        let y_removed = fdb.remove(0, y);
        let x_out = t.join().unwrap();
        assert_eq!(
            y_removed,
            y_out == LearnOutcome::Learned,
            "{y_out:?} {x_out:?}"
        );
        assert_eq!(fdb.lookup(0, y), None, "y came back to life ({x_out:?})");
        match x_out {
            LearnOutcome::Learned => {
                assert_eq!(fdb.lookup(0, x).unwrap().location, Location::port(5))
            }
            LearnOutcome::Busy => {}
            o => panic!("{o:?}"),
        }
        consistent(fdb);
    });
}

/// A removal of `x` racing another removal of `x`, the trim of its slot and
/// the slot's reuse by `y` must never remove `y`.
#[test]
fn remove_racing_slot_reuse_never_removes_another_key() {
    model(|| {
        let fdb = new_fdb();
        let (x, y) = twins(fdb);
        assert_eq!(
            fdb.learn(0, x, Location::port(1), 0, &mut NoEvents),
            LearnOutcome::Learned
        );
        let t = thread::spawn(move || fdb.remove(0, x));
        let mine = fdb.remove(0, x);
        trim_slot_4(fdb, 1);
        assert_eq!(
            fdb.learn(0, y, Location::port(2), 1, &mut NoEvents),
            LearnOutcome::Learned
        );
        let theirs = t.join().unwrap();
        assert!(mine != theirs, "exactly one removal of x succeeds");
        assert_eq!(
            fdb.lookup(0, y).map(|e| e.location),
            Some(Location::port(2)),
            "y was removed by a removal of x"
        );
        consistent(fdb);
    });
}

/// A flush of bridge domain 0 reads slot 4's key (`x`, bridge domain 0) and
/// races the removal of `x`, the trim of slot 4 and its reuse by `y` of
/// bridge domain 1 at the same location. The flush must never remove `y`
/// (another bridge domain), nor return `y`'s budget to bridge domain 0.
#[test]
fn flush_racing_slot_reuse_never_flushes_another_bridge_domain() {
    model(|| {
        let fdb = new_fdb_with(2);
        let x = mac_with_home_in(fdb, 0, 4, 0);
        let y = mac_with_home_in(fdb, 1, 4, 0);
        assert_eq!(
            fdb.learn(0, x, Location::port(1), 0, &mut NoEvents),
            LearnOutcome::Learned
        );
        let t = thread::spawn(move || fdb.flush_bd(0));
        let removed = fdb.remove(0, x);
        trim_slot_4(fdb, 1);
        assert_eq!(
            fdb.learn(1, y, Location::port(1), 0, &mut NoEvents),
            LearnOutcome::Learned
        );
        let flushed = t.join().unwrap();
        assert_eq!(
            fdb.lookup(1, y).map(|e| e.location),
            Some(Location::port(1)),
            "bridge domain 1's y was flushed with bridge domain 0 (flushed {flushed}, removed {removed})"
        );
        assert_eq!(usize::from(removed) + flushed, 1, "x goes exactly once");
        assert_eq!((fdb.bd_entries(0), fdb.bd_entries(1)), (0, 1));
        assert_eq!(fdb.stats().entries, 1);
    });
}
