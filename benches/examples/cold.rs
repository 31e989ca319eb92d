//! Encap and decap time per frame, cold and warm, as the minimum over many
//! passes: a steadier figure than a criterion median on a machine that
//! other jobs share (a pass that another process interrupts is simply not
//! the minimum).
//!
//! `cargo run --profile bench -p vxlan-benches --example cold -- V INNER_LEN [POOL]`
//!
//! V is `4` or `6` (the underlay), INNER_LEN the inner frame length, POOL
//! the number of frames (default 32768). Every pass refills all POOL frames
//! (the encap input, or its encapsulation for decap), then times bursts of
//! 32 over them in order. With the default pool (64 MiB of buffers) a
//! frame was written long before it is processed, so it comes from L3 or
//! memory, as in the criterion bench's `SmallInput` batches; with a pool
//! of 32 the one burst was written just before and sits in L1/L2. Timed
//! beside the work, on the same frames: `floor` (a 50-byte memcpy into the
//! headroom plus a length patch, the criterion bench's floor) and `touch`
//! (the floor plus one load from each 64-byte line of the frame, the least
//! that reading a whole frame costs). Prints nanoseconds per frame.

use std::hint::black_box;
use std::time::Instant;

use vxlan_benches::encap::{floor, floor_touch, frames, template};
use vxlan_core::decap::{decap_burst, DecapConfig};
use vxlan_core::frame::BufFrame;

const BURST: usize = 32;
const HEADROOM: usize = 128;

type Buf = Box<[u8]>;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: cold 4|6 INNER_LEN [POOL]";
    let (Some(v), Some(len)) = (args.get(1), args.get(2)) else {
        panic!("{usage}");
    };
    let ipv6 = v == "6";
    let len: usize = len.parse().expect(usage);
    let pool: usize = args.get(3).map_or(32768, |s| s.parse().expect(usage));
    let t = template(ipv6);
    let (inner, wire) = frames(&t, len);
    let dcfg = DecapConfig::new(t.remote());
    let ports: Vec<u16> = (49152u16..).take(BURST).collect();
    let mut all: Vec<BufFrame<Buf>> = (0..pool)
        .map(|_| BufFrame::with_data(vec![0u8; 2048].into_boxed_slice(), HEADROOM, &inner).unwrap())
        .collect();
    let header = [0x45u8; 50];
    let passes = if pool <= 64 { 3000 } else { 15 };
    let mut out = Vec::new();
    for what in ["encap", "floor", "touch", "decap", "floor"] {
        let data = if what == "decap" { &wire } else { &inner };
        let mut best = f64::MAX;
        for _ in 0..passes {
            for f in &mut all {
                f.reset(HEADROOM);
                f.append(data).unwrap();
            }
            let start = Instant::now();
            for b in all.chunks_mut(BURST) {
                match what {
                    "encap" => {
                        let mut v = [Ok(()); BURST];
                        black_box(t.encap_burst(black_box(b), 100, &ports, &mut v));
                    }
                    "decap" => {
                        let mut v = [Ok(None); BURST];
                        black_box(decap_burst(black_box(b), &dcfg, &mut v));
                    }
                    "touch" => {
                        black_box(floor_touch(black_box(b), black_box(&header)));
                    }
                    _ => floor(black_box(b), black_box(&header)),
                }
            }
            #[allow(clippy::cast_precision_loss)]
            let ns = start.elapsed().as_nanos() as f64 / pool as f64;
            best = best.min(ns);
        }
        out.push(format!("{what} {best:.1}"));
    }
    println!("ipv{v} inner {len}, pool {pool}: {}", out.join("  "));
}
