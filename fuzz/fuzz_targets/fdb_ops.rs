//! Fuzz target: random FDB operation sequences (learning, moves and
//! dampening, control-plane adds with sequence numbers, removes, flushes,
//! incremental ageing with an injected clock, bridge-domain limits) run
//! against `vxlan_core::fdb::Fdb` and the reference model
//! `vxlan_core::fdb::model` (compiled under `cfg(fuzzing)`); any observable
//! difference panics.
//!
//! Dependencies this target needs in fuzz/Cargo.toml:
//!   libfuzzer-sys = "0.4"
//!   arbitrary = { version = "1", features = ["derive"] }
//!   vxlan-core = { path = "../vxlan-core" }
//! and a `[[bin]] name = "fdb_ops" path = "fuzz_targets/fdb_ops.rs"` entry
//! (test = false, doc = false, bench = false).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use vxlan_core::fdb::model::{check, Op};
use vxlan_core::fdb::{Dampening, FdbConfig};

const BDS: u16 = 3;
const MACS: u8 = 24;

#[derive(Arbitrary, Debug)]
enum FuzzOp {
    Tick(u8),
    BigTick(u16),
    Learn {
        bd: u8,
        mac: u8,
        loc: u8,
    },
    Add {
        bd: u8,
        mac: u8,
        loc: u8,
        kind: u8,
        seq: u8,
    },
    Remove {
        bd: u8,
        mac: u8,
    },
    Flush {
        which: u8,
        arg: u8,
    },
    Age {
        budget: u16,
    },
    Limit {
        bd: u8,
        limit: u8,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    slots: u8,
    refresh: u8,
    max_entries: u8,
    bd_limit: u8,
    moves: u8,
    window: u8,
    hold: u8,
    age_time: u16,
    ops: Vec<FuzzOp>,
}

/// Mostly in-range MAC indices, sometimes the never-learnable ones.
fn mac(m: u8) -> u8 {
    if m >= 250 {
        m.max(253)
    } else {
        m % MACS
    }
}

/// Mostly valid bridge domains, sometimes one past the end.
fn bd(b: u8) -> u16 {
    u16::from(b) % (BDS + 1)
}

fuzz_target!(|input: Input| {
    // 97..=352 slots: odd sizes and long clusters (72 distinct keys).
    let slots = 97 + usize::from(input.slots);
    let cfg = FdbConfig {
        refresh_ticks: u32::from(input.refresh % 4) + 1,
        bd_limit: u32::from(input.bd_limit % 40) + 1,
        age_time: u32::from(input.age_time % 1000),
        dampening: Dampening {
            moves: input.moves % 6,
            window: u32::from(input.window),
            hold: u32::from(input.hold),
        },
        max_probe: 64,
        // At most 80 entries: 7/8 of the smallest table (97 slots) is 84.
        ..FdbConfig::new(u32::from(input.max_entries % 80) + 1)
    };
    let ops: Vec<Op> = input
        .ops
        .iter()
        .take(400)
        .map(|op| match *op {
            FuzzOp::Tick(dt) => Op::Tick(u32::from(dt % 64)),
            FuzzOp::BigTick(dt) => Op::Tick(u32::from(dt)),
            FuzzOp::Learn { bd: b, mac: m, loc } => Op::Learn {
                bd: bd(b),
                mac: mac(m),
                loc,
            },
            FuzzOp::Add {
                bd: b,
                mac: m,
                loc,
                kind,
                seq,
            } => Op::Add {
                bd: bd(b) % BDS,
                mac: mac(m),
                loc,
                kind: kind % 3,
                seq: u32::from(seq % 8),
            },
            FuzzOp::Remove { bd: b, mac: m } => Op::Remove {
                bd: bd(b),
                mac: mac(m),
            },
            FuzzOp::Flush { which, arg } => Op::Flush {
                which,
                arg: u16::from(arg),
            },
            FuzzOp::Age { budget } => Op::Age { budget },
            FuzzOp::Limit { bd: b, limit } => Op::Limit {
                bd: bd(b) % BDS,
                limit: limit % 16,
            },
        })
        .collect();
    check(cfg, slots, BDS, MACS, &ops);
});
