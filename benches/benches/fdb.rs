//! FDB benchmarks beside their peers in the same run: `hashbrown::HashMap`
//! (single thread), `dashmap::DashMap` and `RwLock<hashbrown::HashMap>`
//! (two threads).
//!
//! `cargo bench -p vxlan-benches --bench fdb -- --warm-up-time 1 --measurement-time 3`
//!
//! With `--features miss-filter`, also the `fdb_filter_*` groups (the
//! miss-filter prototype at 1 Mi entries, loads 1/2 and 7/8).

use std::hint::black_box;
use std::sync::{Barrier, RwLock};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dashmap::DashMap;
use hashbrown::HashMap;
use vxlan_benches::fdb::{random_key, word, Rng, BDS};
use vxlan_core::fdb::{
    BdCounter, ColdSlot, Entry, Fdb, FdbConfig, FdbKey, LearnOutcome, Location, NoEvents,
    PackedEntry, Slot, BATCH,
};
use vxlan_core::wire::MacAddr;

const QUERIES: usize = 1 << 20;

struct Storage {
    slots: Vec<Slot>,
    cold: Vec<ColdSlot>,
    bds: Vec<BdCounter>,
}

/// Asks Linux to back `v`'s buffer with transparent huge pages (the
/// machine's THP mode is `madvise`), as an appliance would use hugepages.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn advise_huge<T>(v: &Vec<T>) {
    const HUGE: usize = 2 << 20;
    let start = v.as_ptr() as usize;
    let end = start + v.capacity() * std::mem::size_of::<T>();
    let (a, b) = ((start + HUGE - 1) & !(HUGE - 1), end & !(HUGE - 1));
    if b > a {
        // SAFETY: madvise(2) (syscall 28) with MADV_HUGEPAGE (14) on whole
        // pages inside our own live allocation only changes how the kernel
        // backs them; it reads and writes no memory. rcx and r11 are
        // clobbered by `syscall`, declared below.
        unsafe {
            std::arch::asm!(
                "syscall",
                inlateout("rax") 28usize => _,
                in("rdi") a,
                in("rsi") b - a,
                in("rdx") 14usize,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
    }
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
fn advise_huge<T>(_: &Vec<T>) {}

impl Storage {
    fn new(entries: usize) -> Storage {
        Storage::with_pages(entries, false)
    }

    fn with_pages(entries: usize, huge: bool) -> Storage {
        let n = Fdb::slots_for(entries);
        let mut slots = Vec::with_capacity(n);
        let mut cold = Vec::with_capacity(n);
        if huge {
            advise_huge(&slots);
            advise_huge(&cold);
        }
        slots.extend((0..n).map(|_| Slot::new()));
        cold.extend((0..n).map(|_| ColdSlot::new()));
        Storage {
            slots,
            cold,
            bds: (0..BDS).map(|_| BdCounter::new()).collect(),
        }
    }

    fn fdb(&self, entries: usize) -> Fdb<'_> {
        let cfg = FdbConfig {
            age_time: 0,
            ..FdbConfig::new(u32::try_from(entries).unwrap())
        };
        Fdb::new(&self.slots, &self.cold, &self.bds, cfg).unwrap()
    }
}

fn loc_of(k: u64) -> Location {
    Location::Remote(u32::try_from(k & 0xffff).unwrap())
}

struct Data {
    present: Vec<(u16, MacAddr)>,
    hits: Vec<(u16, MacAddr)>,
    misses: Vec<(u16, MacAddr)>,
}

fn data(entries: usize) -> Data {
    let mut rng = Rng(entries as u64);
    let mut seen = std::collections::HashSet::new();
    let mut present = Vec::with_capacity(entries);
    while present.len() < entries {
        let k = random_key(&mut rng);
        if seen.insert(word(k.0, k.1)) {
            present.push(k);
        }
    }
    let hits = (0..QUERIES).map(|_| present[rng.index(entries)]).collect();
    let mut misses = Vec::with_capacity(QUERIES);
    while misses.len() < QUERIES {
        let k = random_key(&mut rng);
        if !seen.contains(&word(k.0, k.1)) {
            misses.push(k);
        }
    }
    Data {
        present,
        hits,
        misses,
    }
}

/// `words` non-zero words (a 64-byte line is 8 of them), backed by
/// transparent huge pages if `huge`.
fn floor_lines(words: usize, huge: bool) -> Vec<u64> {
    let mut v = Vec::with_capacity(words);
    if huge {
        advise_huge(&v);
    }
    v.extend((0..words).map(|i| i as u64 | 1));
    v
}

/// Hashes each key onto a line of `mem` (multiply, multiply-high), as the
/// FDB's home does, prefetches all the lines, then loads one word of each.
#[inline(never)]
fn touch_lines(mem: &[u64], keys: &[u64]) -> u64 {
    let lines = (mem.len() / 8) as u64;
    let mut at = [0usize; BATCH];
    for (a, &k) in at.iter_mut().zip(keys) {
        let h = (u128::from(k.wrapping_mul(0x9e37_79b9_7f4a_7c15)) * u128::from(lines)) >> 64;
        *a = usize::try_from(h).unwrap() * 8;
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch never faults; the address is in `mem`.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(mem.as_ptr().wrapping_add(*a).cast());
        }
    }
    at.iter().map(|&a| mem[a]).fold(0, |x, y| x ^ y)
}

fn sizes() -> [(usize, &'static str); 3] {
    [(1 << 10, "1K"), (1 << 16, "64K"), (1 << 20, "1M")]
}

fn lookups(c: &mut Criterion) {
    for (n, name) in sizes() {
        let d = data(n);
        let st = Storage::new(n);
        let fdb = st.fdb(n);
        let huge = Storage::with_pages(n, true);
        let fdb_huge = huge.fdb(n);
        let mut hb: HashMap<u64, u64> = HashMap::with_capacity(n);
        // The slot array's size in 8-byte words (16 bytes per slot).
        let floor_small = floor_lines(Fdb::slots_for(n) * 2, false);
        let floor_huge = floor_lines(Fdb::slots_for(n) * 2, true);
        for &(bd, mac) in &d.present {
            let k = word(bd, mac);
            assert_eq!(
                fdb.learn(bd, mac, loc_of(k), 1, &mut NoEvents),
                LearnOutcome::Learned
            );
            fdb_huge.learn(bd, mac, loc_of(k), 1, &mut NoEvents);
            hb.insert(k, k & 0xffff);
        }
        for (what, qs) in [("hit", &d.hits), ("miss", &d.misses)] {
            let keys: Vec<FdbKey> = qs.iter().map(|&(b, m)| FdbKey::new(b, m)).collect();
            let words: Vec<u64> = qs.iter().map(|&(b, m)| word(b, m)).collect();
            let mut g = c.benchmark_group(format!("fdb_lookup_{what}"));
            g.throughput(Throughput::Elements(BATCH as u64));
            g.bench_function(BenchmarkId::new("fdb", name), |b| {
                let mut i = 0;
                b.iter(|| {
                    for &(bd, mac) in &qs[i..i + BATCH] {
                        black_box(fdb.lookup(bd, mac));
                    }
                    i = (i + BATCH) % QUERIES;
                })
            });
            g.bench_function(BenchmarkId::new("fdb_batch32", name), |b| {
                let mut i = 0;
                let mut out: [Option<Entry>; BATCH] = [None; BATCH];
                b.iter(|| {
                    fdb.lookup_batch(&keys[i..i + BATCH], &mut out);
                    black_box(&out);
                    i = (i + BATCH) % QUERIES;
                })
            });
            g.bench_function(BenchmarkId::new("fdb_batch32_packed", name), |b| {
                let mut i = 0;
                let mut out = [PackedEntry::MISS; BATCH];
                b.iter(|| {
                    fdb.lookup_batch_packed(&keys[i..i + BATCH], &mut out);
                    black_box(&out);
                    i = (i + BATCH) % QUERIES;
                })
            });
            if n == 1 << 20 {
                g.bench_function(BenchmarkId::new("fdb_batch32_packed_thp", name), |b| {
                    let mut i = 0;
                    let mut out = [PackedEntry::MISS; BATCH];
                    b.iter(|| {
                        fdb_huge.lookup_batch_packed(&keys[i..i + BATCH], &mut out);
                        black_box(&out);
                        i = (i + BATCH) % QUERIES;
                    })
                });
                g.bench_function(BenchmarkId::new("fdb_batch32_thp", name), |b| {
                    let mut i = 0;
                    let mut out: [Option<Entry>; BATCH] = [None; BATCH];
                    b.iter(|| {
                        fdb_huge.lookup_batch(&keys[i..i + BATCH], &mut out);
                        black_box(&out);
                        i = (i + BATCH) % QUERIES;
                    })
                });
            }
            if n == 1 << 20 {
                // The memory floor of any probe of this table: per key, one
                // multiply-high onto the lines of an array of the slot
                // array's size (32 MiB), a prefetch of the whole batch,
                // then one load from each line. No compare, no result.
                for (floor, huge) in [
                    (&floor_small, "line_floor"),
                    (&floor_huge, "line_floor_thp"),
                ] {
                    g.bench_function(BenchmarkId::new(huge, name), |b| {
                        let mut i = 0;
                        b.iter(|| {
                            black_box(touch_lines(floor, &words[i..i + BATCH]));
                            i = (i + BATCH) % QUERIES;
                        })
                    });
                }
            }
            g.bench_function(BenchmarkId::new("hashbrown", name), |b| {
                let mut i = 0;
                b.iter(|| {
                    for k in &words[i..i + BATCH] {
                        black_box(hb.get(k));
                    }
                    i = (i + BATCH) % QUERIES;
                })
            });
            g.finish();
        }
    }
}

fn learns(c: &mut Criterion) {
    let n = 1 << 16;
    let d = data(n);
    let mut g = c.benchmark_group("fdb_learn");
    g.throughput(Throughput::Elements(1));
    // Refresh of a known MAC at the same location and tick: no write.
    let st = Storage::new(n);
    let fdb = st.fdb(n);
    for &(bd, mac) in &d.present {
        fdb.learn(bd, mac, loc_of(word(bd, mac)), 1, &mut NoEvents);
    }
    g.bench_function("fdb_refresh_64K", |b| {
        let mut i = 0;
        b.iter(|| {
            let (bd, mac) = d.hits[i];
            black_box(fdb.learn(bd, mac, loc_of(word(bd, mac)), 1, &mut NoEvents));
            i = (i + 1) % QUERIES;
        })
    });
    // Insert of new MACs into an empty table (timed in rounds of 64K).
    g.bench_function("fdb_insert_64K", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let round = left.min(n as u64);
                let st = Storage::new(n);
                let fdb = st.fdb(n);
                let t = Instant::now();
                for &(bd, mac) in &d.present[..usize::try_from(round).unwrap()] {
                    black_box(fdb.learn(bd, mac, Location::port(1), 1, &mut NoEvents));
                }
                total += t.elapsed();
                left -= round;
            }
            total
        })
    });
    g.bench_function("hashbrown_insert_64K", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let round = left.min(n as u64);
                let mut hb: HashMap<u64, u64> = HashMap::with_capacity(n);
                let t = Instant::now();
                for &(bd, mac) in &d.present[..usize::try_from(round).unwrap()] {
                    hb.insert(word(bd, mac), 1);
                }
                total += t.elapsed();
                black_box(&hb);
                left -= round;
            }
            total
        })
    });
    g.finish();
}

/// Runs `op(thread, i)` for `iters` iterations on each of two threads and
/// returns the wall time of the slower one.
fn two_threads(iters: u64, op: &(dyn Fn(usize, u64) + Sync)) -> Duration {
    let barrier = Barrier::new(2);
    let run = |t: usize| {
        barrier.wait();
        let start = Instant::now();
        for i in 0..iters {
            op(t, i);
        }
        start.elapsed()
    };
    std::thread::scope(|s| {
        let h = s.spawn(|| run(1));
        let a = run(0);
        a.max(h.join().unwrap())
    })
}

/// 95% lookups, 5% learns (a refresh: same location) on two threads.
fn mix(c: &mut Criterion) {
    for (n, name) in [(1usize << 16, "64K"), (1 << 20, "1M")] {
        let d = data(n);
        let st = Storage::new(n);
        let fdb = st.fdb(n);
        let dm: DashMap<u64, u64> = DashMap::with_capacity(n);
        let rw: RwLock<HashMap<u64, u64>> = RwLock::new(HashMap::with_capacity(n));
        for &(bd, mac) in &d.present {
            let k = word(bd, mac);
            fdb.learn(bd, mac, loc_of(k), 1, &mut NoEvents);
            dm.insert(k, k & 0xffff);
            rw.write().unwrap().insert(k, k & 0xffff);
        }
        let words: Vec<u64> = d.hits.iter().map(|&(b, m)| word(b, m)).collect();
        // Query index for (thread, i): threads walk different halves.
        let half = QUERIES / 2;
        let q = |t: usize, i: u64| t * half + usize::try_from(i % half as u64).unwrap();
        let is_learn = |i: u64| i % 20 == 19;
        let mut g = c.benchmark_group("fdb_mix_95_5_2threads");
        g.throughput(Throughput::Elements(2));
        g.bench_function(BenchmarkId::new("fdb", name), |b| {
            b.iter_custom(|iters| {
                two_threads(iters, &|t, i| {
                    let (bd, mac) = d.hits[q(t, i)];
                    if is_learn(i) {
                        black_box(fdb.learn(bd, mac, loc_of(word(bd, mac)), 1, &mut NoEvents));
                    } else {
                        black_box(fdb.lookup(bd, mac));
                    }
                })
            })
        });
        g.bench_function(BenchmarkId::new("dashmap", name), |b| {
            b.iter_custom(|iters| {
                two_threads(iters, &|t, i| {
                    let k = words[q(t, i)];
                    if is_learn(i) {
                        // Write only when the value changed, as the FDB does.
                        let same = dm.get(&k).is_some_and(|v| *v == k & 0xffff);
                        if !same {
                            dm.insert(k, k & 0xffff);
                        }
                    } else {
                        black_box(dm.get(&k).map(|v| *v));
                    }
                })
            })
        });
        g.bench_function(BenchmarkId::new("rwlock_hashbrown", name), |b| {
            b.iter_custom(|iters| {
                two_threads(iters, &|t, i| {
                    let k = words[q(t, i)];
                    if is_learn(i) {
                        let same = rw.read().unwrap().get(&k) == Some(&(k & 0xffff));
                        if !same {
                            rw.write().unwrap().insert(k, k & 0xffff);
                        }
                    } else {
                        black_box(rw.read().unwrap().get(&k).copied());
                    }
                })
            })
        });
        g.finish();
    }
}

/// The miss-filter prototype (feature `miss-filter`) at 1 Mi entries, at
/// load 1/2 (`Fdb::slots_for`) and 7/8: `lookup_batch_packed` with no
/// filter, through `u8` (1 bit per key), `u16` (3), `u32` (4) and `u64` (4)
/// filter words, and hashbrown, hits and misses. `benches/examples/fdb_filter_ab.rs`
/// is the interleaved cross-check for this noisy host.
#[cfg(feature = "miss-filter")]
fn filtered(c: &mut Criterion) {
    use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8};
    use vxlan_core::fdb::FilterWord;

    fn build<W: FilterWord, const K: u32>(fdb: &Fdb<'_>) -> Vec<W> {
        let f: Vec<W> = (0..fdb.miss_filter_len()).map(|_| W::new()).collect();
        fdb.build_miss_filter::<W, K>(&f);
        f
    }

    /// Batches of 32 through the filtered lookup with `filter` (K bits
    /// per key).
    fn run<W: FilterWord, const K: u32>(
        g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
        name: &str,
        load: &str,
        fdb: &Fdb<'_>,
        filter: &[W],
        keys: &[FdbKey],
    ) {
        g.bench_function(BenchmarkId::new(name, load), |b| {
            let mut i = 0;
            let mut out = [PackedEntry::MISS; BATCH];
            b.iter(|| {
                fdb.lookup_batch_packed_filtered::<_, K>(filter, &keys[i..i + BATCH], &mut out);
                black_box(&out);
                i = (i + BATCH) % QUERIES;
            })
        });
    }

    let n = 1 << 20;
    let d = data(n);
    let mut hb: HashMap<u64, u64> = HashMap::with_capacity(n);
    for &(bd, mac) in &d.present {
        let k = word(bd, mac);
        hb.insert(k, k & 0xffff);
    }
    for (load, slots) in [
        ("1M_load_1_2", Fdb::slots_for(n)),
        ("1M_load_7_8", n * 8 / 7 + 8),
    ] {
        let st = Storage {
            slots: (0..slots).map(|_| Slot::new()).collect(),
            cold: (0..slots).map(|_| ColdSlot::new()).collect(),
            bds: (0..BDS).map(|_| BdCounter::new()).collect(),
        };
        let cfg = FdbConfig {
            age_time: 0,
            // At load 7/8 a few keys lie beyond the default 512 slots.
            max_probe: 1 << 14,
            ..FdbConfig::new(u32::try_from(n).unwrap())
        };
        let fdb = Fdb::new(&st.slots, &st.cold, &st.bds, cfg).unwrap();
        for &(bd, mac) in &d.present {
            let k = word(bd, mac);
            assert_eq!(
                fdb.learn(bd, mac, loc_of(k), 1, &mut NoEvents),
                LearnOutcome::Learned
            );
        }
        let f8 = build::<AtomicU8, 1>(&fdb);
        let f16 = build::<AtomicU16, 3>(&fdb);
        let f32 = build::<AtomicU32, 4>(&fdb);
        let f64 = build::<AtomicU64, 4>(&fdb);
        for (what, qs) in [("hit", &d.hits), ("miss", &d.misses)] {
            let keys: Vec<FdbKey> = qs.iter().map(|&(b, m)| FdbKey::new(b, m)).collect();
            let words: Vec<u64> = qs.iter().map(|&(b, m)| word(b, m)).collect();
            let mut g = c.benchmark_group(format!("fdb_filter_{what}"));
            g.throughput(Throughput::Elements(BATCH as u64));
            g.bench_function(BenchmarkId::new("packed", load), |b| {
                let mut i = 0;
                let mut out = [PackedEntry::MISS; BATCH];
                b.iter(|| {
                    fdb.lookup_batch_packed(&keys[i..i + BATCH], &mut out);
                    black_box(&out);
                    i = (i + BATCH) % QUERIES;
                })
            });
            run::<_, 1>(&mut g, "u8x1", load, &fdb, &f8, &keys);
            run::<_, 3>(&mut g, "u16x3", load, &fdb, &f16, &keys);
            run::<_, 4>(&mut g, "u32x4", load, &fdb, &f32, &keys);
            run::<_, 4>(&mut g, "u64x4", load, &fdb, &f64, &keys);
            g.bench_function(BenchmarkId::new("hashbrown", load), |b| {
                let mut i = 0;
                b.iter(|| {
                    for k in &words[i..i + BATCH] {
                        black_box(hb.get(k));
                    }
                    i = (i + BATCH) % QUERIES;
                })
            });
            g.finish();
        }
    }
}

#[cfg(not(feature = "miss-filter"))]
criterion_group!(benches, lookups, learns, mix);
#[cfg(feature = "miss-filter")]
criterion_group!(benches, lookups, learns, mix, filtered);
criterion_main!(benches);
