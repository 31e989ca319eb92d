//! Interleaved A/B timing of the FDB miss-filter prototype (feature
//! `miss-filter`) at 1 Mi entries, for a noisy machine: per round, each
//! variant looks up `BATCHES` batches of 32 keys (hits, then misses) from
//! its own stretch of the benchmark's query streams, in an order rotated
//! every round; the median over the rounds of each variant's time and of
//! hashbrown's time / its time (above 1: faster than hashbrown) is
//! printed, with the filter's false-positive rate over the whole miss
//! stream and its size. Tables at load 1/2 (`Fdb::slots_for`, as the
//! criterion bench) and at 7/8 (the most `Fdb::new` accepts).
//!
//! Variants: `packed` (`Fdb::lookup_batch_packed`, no filter), `u8x1`,
//! `u16x1`, `u16x3`, `u32x2`, `u32x4`, `u64x4` (`Fdb::lookup_batch_packed_filtered`
//! with a filter word of that size and that many bits per key),
//! `hashbrown` (`HashMap<u64, u64>::get`, its default hasher, 32 calls),
//! each called through a boxed closure (one indirect call per batch).
//!
//! ```text
//! cargo build --profile bench -p vxlan-benches --features miss-filter --example fdb_filter_ab
//! /work/notes/quiet.sh taskset -c 1 $CARGO_TARGET_DIR/release/examples/fdb_filter_ab [ROUNDS] [BATCHES]
//! ```

use std::hint::black_box;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8};
use std::time::Instant;

use hashbrown::HashMap;
use vxlan_benches::fdb::{random_key, word, Rng, BDS};
use vxlan_benches::median;
use vxlan_core::fdb::{
    BdCounter, ColdSlot, Fdb, FdbConfig, FdbKey, FilterWord, LearnOutcome, Location, NoEvents,
    PackedEntry, Slot, BATCH,
};

const N: usize = 1 << 20;
const QUERIES: usize = 1 << 20;

/// The benchmark's keys: `N` present, a stream of hits and one of misses.
struct Data {
    present: Vec<(u16, vxlan_core::wire::MacAddr)>,
    hits: Vec<FdbKey>,
    misses: Vec<FdbKey>,
    hit_words: Vec<u64>,
    miss_words: Vec<u64>,
}

fn data() -> Data {
    let mut rng = Rng(N as u64);
    let mut seen = std::collections::HashSet::new();
    let mut present = Vec::with_capacity(N);
    while present.len() < N {
        let k = random_key(&mut rng);
        if seen.insert(word(k.0, k.1)) {
            present.push(k);
        }
    }
    let hits: Vec<_> = (0..QUERIES).map(|_| present[rng.index(N)]).collect();
    let mut misses = Vec::with_capacity(QUERIES);
    while misses.len() < QUERIES {
        let k = random_key(&mut rng);
        if !seen.contains(&word(k.0, k.1)) {
            misses.push(k);
        }
    }
    Data {
        hits: hits.iter().map(|&(b, m)| FdbKey::new(b, m)).collect(),
        misses: misses.iter().map(|&(b, m)| FdbKey::new(b, m)).collect(),
        hit_words: hits.iter().map(|&(b, m)| word(b, m)).collect(),
        miss_words: misses.iter().map(|&(b, m)| word(b, m)).collect(),
        present,
    }
}

fn filter<W: FilterWord, const K: u32>(fdb: &Fdb<'_>) -> Vec<W> {
    let f: Vec<W> = (0..fdb.miss_filter_len()).map(|_| W::new()).collect();
    fdb.build_miss_filter::<W, K>(&f);
    f
}

/// Fraction of `keys` that `f` lets through.
fn pass_rate<W: FilterWord, const K: u32>(fdb: &Fdb<'_>, f: &[W], keys: &[FdbKey]) -> f64 {
    let n = keys
        .iter()
        .filter(|&&k| fdb.miss_filter_admits::<W, K>(f, k))
        .count();
    n as f64 / keys.len() as f64
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map_or(31, |r| r.parse().expect("rounds"));
    let batches: usize = args.next().map_or(1000, |r| r.parse().expect("batches"));
    let d = data();
    let mut hb: HashMap<u64, u64> = HashMap::with_capacity(N);
    for &(bd, mac) in &d.present {
        let k = word(bd, mac);
        hb.insert(k, k & 0xffff);
    }
    println!(
        "{rounds} rounds of {batches} batches of {BATCH} per variant; 1 Mi entries; \
         ns per lookup (median over rounds), hashbrown / variant (median of same-round ratios)"
    );
    for (load, n_slots) in [("1/2", Fdb::slots_for(N)), ("7/8", N * 8 / 7 + 8)] {
        let slots: Vec<Slot> = (0..n_slots).map(|_| Slot::new()).collect();
        let cold: Vec<ColdSlot> = (0..n_slots).map(|_| ColdSlot::new()).collect();
        let bds: Vec<BdCounter> = (0..BDS).map(|_| BdCounter::new()).collect();
        // At load 7/8 a few keys of 1 Mi lie more than the default 512
        // slots from home (linear probing); allow longer probes there.
        let cfg = FdbConfig {
            age_time: 0,
            max_probe: if load == "7/8" { 1 << 14 } else { 512 },
            ..FdbConfig::new(u32::try_from(N).unwrap())
        };
        let fdb = Fdb::new(&slots, &cold, &bds, cfg).unwrap();
        let mut refused = 0;
        for &(bd, mac) in &d.present {
            let k = word(bd, mac);
            let at = Location::Remote(u32::try_from(k & 0xffff).unwrap());
            if fdb.learn(bd, mac, at, 1, &mut NoEvents) != LearnOutcome::Learned {
                refused += 1;
            }
        }
        // The hit stream assumes every key is in.
        assert_eq!(refused, 0, "learns refused at load {load}");
        let f8 = filter::<AtomicU8, 1>(&fdb);
        let f16 = filter::<AtomicU16, 1>(&fdb);
        let f16k3 = filter::<AtomicU16, 3>(&fdb);
        let f32k2 = filter::<AtomicU32, 2>(&fdb);
        let f32k4 = filter::<AtomicU32, 4>(&fdb);
        let f64k4 = filter::<AtomicU64, 4>(&fdb);
        let lines = fdb.miss_filter_len();
        println!(
            "\nload {load}: {n_slots} slots, {lines} lines; filter u8 {} KiB, u16 {} KiB, u32 {} KiB, \
             u64 {} KiB ({:.2} / {:.2} / {:.2} / {:.2} bits per slot)",
            lines / 1024,
            lines * 2 / 1024,
            lines * 4 / 1024,
            lines * 8 / 1024,
            8.0 * lines as f64 / n_slots as f64,
            16.0 * lines as f64 / n_slots as f64,
            32.0 * lines as f64 / n_slots as f64,
            64.0 * lines as f64 / n_slots as f64,
        );
        // Each variant: one batch of 32 from `keys` (or the same keys as
        // words, for hashbrown) at stream position `i`.
        type Run<'a> = Box<dyn Fn(&[FdbKey], &[u64], usize, &mut [PackedEntry; BATCH]) + 'a>;
        let fdb = &fdb;
        let variants: Vec<(&str, Run<'_>, Option<f64>)> = vec![
            (
                "packed",
                Box::new(|k, _, i, o| fdb.lookup_batch_packed(&k[i..i + BATCH], o)),
                None,
            ),
            (
                "u8x1",
                Box::new(|k, _, i, o| {
                    fdb.lookup_batch_packed_filtered::<_, 1>(&f8, &k[i..i + BATCH], o)
                }),
                Some(pass_rate::<_, 1>(fdb, &f8, &d.misses)),
            ),
            (
                "u16x1",
                Box::new(|k, _, i, o| {
                    fdb.lookup_batch_packed_filtered::<_, 1>(&f16, &k[i..i + BATCH], o)
                }),
                Some(pass_rate::<_, 1>(fdb, &f16, &d.misses)),
            ),
            (
                "u16x3",
                Box::new(|k, _, i, o| {
                    fdb.lookup_batch_packed_filtered::<_, 3>(&f16k3, &k[i..i + BATCH], o)
                }),
                Some(pass_rate::<_, 3>(fdb, &f16k3, &d.misses)),
            ),
            (
                "u32x2",
                Box::new(|k, _, i, o| {
                    fdb.lookup_batch_packed_filtered::<_, 2>(&f32k2, &k[i..i + BATCH], o)
                }),
                Some(pass_rate::<_, 2>(fdb, &f32k2, &d.misses)),
            ),
            (
                "u32x4",
                Box::new(|k, _, i, o| {
                    fdb.lookup_batch_packed_filtered::<_, 4>(&f32k4, &k[i..i + BATCH], o)
                }),
                Some(pass_rate::<_, 4>(fdb, &f32k4, &d.misses)),
            ),
            (
                "u64x4",
                Box::new(|k, _, i, o| {
                    fdb.lookup_batch_packed_filtered::<_, 4>(&f64k4, &k[i..i + BATCH], o)
                }),
                Some(pass_rate::<_, 4>(fdb, &f64k4, &d.misses)),
            ),
            (
                "hashbrown",
                Box::new(|_, w, i, _| {
                    for k in &w[i..i + BATCH] {
                        black_box(hb.get(k));
                    }
                }),
                None,
            ),
        ];
        let nv = variants.len();
        println!(
            "false positives (misses let through): {}",
            variants
                .iter()
                .filter_map(|(n, _, fp)| fp.map(|fp| format!("{n} {:.2} %", 100.0 * fp)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        // Cross-check: every variant answers as the plain lookup.
        for keys in [&d.hits[..4096], &d.misses[..4096]] {
            for (name, run, fp) in &variants {
                if fp.is_none() {
                    continue;
                }
                for i in (0..keys.len()).step_by(BATCH) {
                    let mut a = [PackedEntry::MISS; BATCH];
                    let mut b = a;
                    fdb.lookup_batch_packed(&keys[i..i + BATCH], &mut a);
                    run(keys, &[], i, &mut b);
                    assert_eq!(a, b, "{name}");
                }
            }
        }
        println!(
            "| load | query | {} |",
            variants
                .iter()
                .map(|(n, _, _)| format!("{n} ns | {n} ratio"))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        for (what, keys, words) in [
            ("hit", &d.hits, &d.hit_words),
            ("miss", &d.misses, &d.miss_words),
        ] {
            let mut ns = vec![Vec::new(); nv];
            let mut ratio = vec![Vec::new(); nv];
            // Each variant's own position in the stream.
            let mut at: Vec<usize> = (0..nv).map(|v| v * QUERIES / nv / BATCH * BATCH).collect();
            for r in 0..rounds {
                let mut t = vec![0f64; nv];
                for s in 0..nv {
                    let v = (s + r) % nv;
                    let run = &variants[v].1;
                    let mut out = [PackedEntry::MISS; BATCH];
                    let mut i = at[v];
                    let start = Instant::now();
                    for _ in 0..batches {
                        run(keys, words, i, &mut out);
                        black_box(&out);
                        i = (i + BATCH) % QUERIES;
                    }
                    t[v] = start.elapsed().as_secs_f64() * 1e9 / (batches * BATCH) as f64;
                    at[v] = i;
                }
                for v in 0..nv {
                    ns[v].push(t[v]);
                    ratio[v].push(t[nv - 1] / t[v]);
                }
            }
            let cells: Vec<String> = (0..nv)
                .map(|v| format!("{:.2} | {:.2}x", median(&mut ns[v]), median(&mut ratio[v])))
                .collect();
            println!("| {load} | {what} | {} |", cells.join(" | "));
        }
    }
}
