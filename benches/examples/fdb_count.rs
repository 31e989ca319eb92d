//! The FDB lookup benchmark's setup and loops without criterion, for
//! counting instructions per lookup under callgrind:
//!
//! ```text
//! cargo build --profile bench -p vxlan-benches --example fdb_count
//! valgrind --tool=callgrind --toggle-collect='fdb_count::run*' \
//!     target/release/examples/fdb_count miss 1K packed 1000
//! ```
//!
//! Arguments: `hit` or `miss`; table size `1K`, `64K` or `1M` (entries, at
//! load 1/2 as in `benches/fdb.rs`); `batch` (`Fdb::lookup_batch`),
//! `packed` (`Fdb::lookup_batch_packed`), `single` (`Fdb::lookup`) or
//! `hashbrown` (`HashMap<u64, u64>::get`, the peer), or, with the feature
//! `miss-filter`, `u8x1`, `u16x1`, `u16x2`, `u16x3`, `u32x2`, `u32x4`, `u64x4` (the miss-filter
//! prototype, `Fdb::lookup_batch_packed_filtered`, with a filter word of
//! that size and that many bits per key); rounds of 32 lookups.
//! `FDB_LOAD=7/8` in the environment sizes the table for load 7/8.
//! The difference of the collected counts at two round counts, divided by
//! 32 per round, is the cost of one lookup (`benches/fdb_count.sh` does
//! this).

use std::hint::black_box;

use hashbrown::HashMap;
use vxlan_benches::fdb::{random_key, word, Rng, BDS};
use vxlan_core::fdb::{
    BdCounter, ColdSlot, Entry, Fdb, FdbConfig, FdbKey, LearnOutcome, Location, NoEvents,
    PackedEntry, Slot, BATCH,
};
use vxlan_core::wire::MacAddr;

const QUERIES: usize = 1 << 16;

#[inline(never)]
fn run_batch(fdb: &Fdb<'_>, keys: &[FdbKey], rounds: usize) {
    let mut out: [Option<Entry>; BATCH] = [None; BATCH];
    for r in 0..rounds {
        let i = (r * BATCH) % keys.len();
        fdb.lookup_batch(&keys[i..i + BATCH], &mut out);
        black_box(&out);
    }
}

#[inline(never)]
fn run_packed(fdb: &Fdb<'_>, keys: &[FdbKey], rounds: usize) {
    let mut out = [PackedEntry::MISS; BATCH];
    for r in 0..rounds {
        let i = (r * BATCH) % keys.len();
        fdb.lookup_batch_packed(&keys[i..i + BATCH], &mut out);
        black_box(&out);
    }
}

/// The miss-filter prototype (feature `miss-filter`): `lookup_batch_packed`
/// through a filter of `W` words, `K` bits per key.
#[cfg(feature = "miss-filter")]
#[inline(never)]
fn run_filtered<W: vxlan_core::fdb::FilterWord, const K: u32>(
    fdb: &Fdb<'_>,
    filter: &[W],
    keys: &[FdbKey],
    rounds: usize,
) {
    let mut out = [PackedEntry::MISS; BATCH];
    for r in 0..rounds {
        let i = (r * BATCH) % keys.len();
        fdb.lookup_batch_packed_filtered::<W, K>(filter, &keys[i..i + BATCH], &mut out);
        black_box(&out);
    }
}

#[cfg(feature = "miss-filter")]
fn filtered(fdb: &Fdb<'_>, keys: &[FdbKey], api: &str, rounds: usize) {
    use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8};
    use vxlan_core::fdb::FilterWord;
    fn build<W: FilterWord, const K: u32>(fdb: &Fdb<'_>) -> Vec<W> {
        let f: Vec<W> = (0..fdb.miss_filter_len()).map(|_| W::new()).collect();
        fdb.build_miss_filter::<W, K>(&f);
        f
    }
    match api {
        "u8x1" => run_filtered::<_, 1>(fdb, &build::<AtomicU8, 1>(fdb), keys, rounds),
        "u16x1" => run_filtered::<_, 1>(fdb, &build::<AtomicU16, 1>(fdb), keys, rounds),
        "u16x2" => run_filtered::<_, 2>(fdb, &build::<AtomicU16, 2>(fdb), keys, rounds),
        "u16x3" => run_filtered::<_, 3>(fdb, &build::<AtomicU16, 3>(fdb), keys, rounds),
        "u32x2" => run_filtered::<_, 2>(fdb, &build::<AtomicU32, 2>(fdb), keys, rounds),
        "u32x4" => run_filtered::<_, 4>(fdb, &build::<AtomicU32, 4>(fdb), keys, rounds),
        "u64x4" => run_filtered::<_, 4>(fdb, &build::<AtomicU64, 4>(fdb), keys, rounds),
        _ => panic!(
            "api: batch, packed, single, hashbrown, u8x1, u16x1, u16x2, u16x3, u32x2, u32x4 or u64x4"
        ),
    }
}

#[cfg(not(feature = "miss-filter"))]
fn filtered(_: &Fdb<'_>, _: &[FdbKey], _: &str, _: usize) {
    panic!(
        "api: batch, packed, single or hashbrown (the filtered ones need --features miss-filter)"
    );
}

#[inline(never)]
fn run_single(fdb: &Fdb<'_>, qs: &[(u16, MacAddr)], rounds: usize) {
    for r in 0..rounds {
        let i = (r * BATCH) % qs.len();
        for &(bd, mac) in &qs[i..i + BATCH] {
            black_box(fdb.lookup(bd, mac));
        }
    }
}

#[inline(never)]
fn run_hashbrown(hb: &HashMap<u64, u64>, words: &[u64], rounds: usize) {
    for r in 0..rounds {
        let i = (r * BATCH) % words.len();
        for k in &words[i..i + BATCH] {
            black_box(hb.get(k));
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "miss".into());
    let size = args.next().unwrap_or_else(|| "1K".into());
    let api = args.next().unwrap_or_else(|| "packed".into());
    let rounds: usize = args.next().map_or(1000, |r| r.parse().expect("rounds"));
    let n: usize = match size.as_str() {
        "1K" => 1 << 10,
        "64K" => 1 << 16,
        "1M" => 1 << 20,
        _ => panic!("size: 1K, 64K or 1M"),
    };

    let mut rng = Rng(n as u64);
    let mut seen = std::collections::HashSet::new();
    let mut present = Vec::with_capacity(n);
    while present.len() < n {
        let k = random_key(&mut rng);
        if seen.insert(word(k.0, k.1)) {
            present.push(k);
        }
    }
    let qs: Vec<(u16, MacAddr)> = if what == "hit" {
        (0..QUERIES).map(|_| present[rng.index(n)]).collect()
    } else {
        let mut m = Vec::with_capacity(QUERIES);
        while m.len() < QUERIES {
            let k = random_key(&mut rng);
            if !seen.contains(&word(k.0, k.1)) {
                m.push(k);
            }
        }
        m
    };

    // FDB_LOAD=7/8: the table at load 7/8 (the most `Fdb::new` accepts)
    // instead of `Fdb::slots_for`'s 1/2.
    let n_slots = match std::env::var("FDB_LOAD").as_deref() {
        Ok("7/8") => n * 8 / 7 + 8,
        _ => Fdb::slots_for(n),
    };
    let slots: Vec<Slot> = (0..n_slots).map(|_| Slot::new()).collect();
    let cold: Vec<ColdSlot> = (0..slots.len()).map(|_| ColdSlot::new()).collect();
    let bds: Vec<BdCounter> = (0..BDS).map(|_| BdCounter::new()).collect();
    // At load 7/8 a few keys of 1 Mi lie more than the default 512 slots
    // from home (linear probing); allow longer probes there.
    let cfg = FdbConfig {
        age_time: 0,
        max_probe: if n_slots < Fdb::slots_for(n) {
            1 << 14
        } else {
            512
        },
        ..FdbConfig::new(u32::try_from(n).unwrap())
    };
    let fdb = Fdb::new(&slots, &cold, &bds, cfg).unwrap();
    let mut hb: HashMap<u64, u64> = HashMap::with_capacity(n);
    for &(bd, mac) in &present {
        let k = word(bd, mac);
        let at = Location::Remote(u32::try_from(k & 0xffff).unwrap());
        if api == "hashbrown" {
            hb.insert(k, k & 0xffff);
        } else {
            assert_eq!(
                fdb.learn(bd, mac, at, 1, &mut NoEvents),
                LearnOutcome::Learned
            );
        }
    }
    let keys: Vec<FdbKey> = qs.iter().map(|&(b, m)| FdbKey::new(b, m)).collect();
    let words: Vec<u64> = qs.iter().map(|&(b, m)| word(b, m)).collect();
    match api.as_str() {
        "batch" => run_batch(&fdb, &keys, rounds),
        "packed" => run_packed(&fdb, &keys, rounds),
        "single" => run_single(&fdb, &qs, rounds),
        "hashbrown" => run_hashbrown(&hb, &words, rounds),
        _ => filtered(&fdb, &keys, &api, rounds),
    }
}
