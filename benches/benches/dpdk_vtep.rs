//! The whole VTEP on DPDK against DPDK's bare io-forward loop, over the
//! same two net_null ports in the same run, in TSC cycles per packet.
//!
//! * uplink `net_null0` "receives" VXLAN frames from the remote VTEP
//!   192.0.2.1 (114 bytes: a 64-byte tenant frame inside), access port
//!   `net_null1` "receives" 64-byte tenant frames going the other way;
//! * the VTEP decapsulates the first (parse, checks, learn the inner source
//!   behind the remote, look up the inner destination, strip) and delivers
//!   them to the access port, and encapsulates the second (learn the source
//!   on the access port, look up the destination, prepend the remote's
//!   outer header, lengths, checksum, flow-hash source port) toward the
//!   uplink, all in place on the mbufs;
//! * the peer, `dpdk_io_fwd.c`, moves the same frames port to port with no
//!   header work.
//!
//! net_null hands out mbufs without touching their data, so each mempool is
//! prefilled with the frame its port "receives" (our pipeline writes only
//! headroom or moves offsets, so the frames stay intact). Run with
//! `cargo bench -p vxlan-benches --features dpdk --bench dpdk_vtep`.

use std::sync::Arc;

use vxlan_benches::dpdk_peer::io_fwd;
use vxlan_benches::median;
use vxlan_core::testutil::{build_vxlan_frame, FrameSpec};
use vxlan_pmd::config::VtepConfig;
use vxlan_pmd::dpdk::{DpdkLoop, Eal, EthPort, EthPortConfig, Mempool};
use vxlan_pmd::pool::Pool;

const PACKETS: u64 = 4_000_000;
const ROUNDS: usize = 7;

fn prefill(pool: &Mempool, frame: &[u8]) {
    let mut all = Vec::with_capacity(pool.capacity());
    while let Some(m) = pool.alloc_with(frame) {
        all.push(m);
    }
    assert_eq!(all.len(), pool.capacity());
}

fn main() {
    // Criterion-style arguments (--bench, filters) are accepted and ignored.
    let underlay = build_vxlan_frame(&FrameSpec::default());
    let mut tenant = underlay[underlay.len() - 64..].to_vec();
    // The reverse direction: swap the inner MACs.
    let (dst, src) = (tenant[0..6].to_vec(), tenant[6..12].to_vec());
    tenant[0..6].copy_from_slice(&src);
    tenant[6..12].copy_from_slice(&dst);

    let eal = Eal::init(&[
        "--no-huge".to_string(),
        "--no-pci".to_string(),
        "--no-shconf".to_string(),
        "--log-level=error".to_string(),
        format!("--vdev=net_null0,size={}", underlay.len()),
        format!("--vdev=net_null1,size={}", tenant.len()),
    ])
    .expect("EAL");
    let under_pool = Mempool::new(eal, "bu", 4095, 256, 2048 + 128).unwrap();
    let access_pool = Mempool::new(eal, "ba", 4095, 256, 2048 + 128).unwrap();
    let copies = Mempool::new(eal, "bc", 1023, 32, 2048 + 128).unwrap();
    prefill(&under_pool, &underlay);
    prefill(&access_pool, &tenant);
    let pcfg = EthPortConfig::default();
    let uplink = Arc::new(EthPort::open(eal, "net_null0", &pcfg, &under_pool).unwrap());
    let vm = Arc::new(EthPort::open(eal, "net_null1", &pcfg, &access_pool).unwrap());

    let cfg = VtepConfig::from_toml_str(
        r#"
        [vtep]
        local_ip = "192.0.2.2"
        mac = "02:00:00:00:00:02"
        [underlay]
        port = "uplink"
        gateway_mac = "02:00:00:00:00:01"
        [[port]]
        name = "uplink"
        kind = "memory"
        [[port]]
        name = "vm"
        kind = "memory"
        access = { vni = 100 }
        [[vni]]
        id = 100
        flood = ["192.0.2.1"]
        "#,
    )
    .unwrap();
    let shared = vxlan_pmd::build::vtep(&cfg, Pool::new(1, 256, 128).unwrap()).unwrap();
    // SAFETY: this (EAL main) thread alone uses queue 0 of both ports; the
    // C peer runs on it too, never at the same time as the loop.
    let mut lp = unsafe {
        DpdkLoop::new(
            shared.worker(0),
            vec![Arc::clone(&uplink), Arc::clone(&vm)],
            0,
            Arc::clone(&copies),
        )
    };
    let rx_total = |lp: &DpdkLoop| lp.port_stats().iter().map(|p| p.rx).sum::<u64>();
    // Warm up: both MACs learned, caches hot.
    while rx_total(&lp) < 100_000 {
        lp.poll();
    }
    let mut ours = Vec::new();
    let mut bare = Vec::new();
    for _ in 0..ROUNDS {
        // SAFETY: queue 0 of both ports is ours (see above).
        let (cycles, got) = unsafe { io_fwd(uplink.id(), vm.id(), PACKETS) };
        bare.push(cycles as f64 / got as f64);

        let before = rx_total(&lp);
        let t0 = eal.rdtsc();
        while rx_total(&lp) - before < PACKETS {
            lp.poll();
        }
        let cycles = eal.rdtsc() - t0;
        ours.push(cycles as f64 / (rx_total(&lp) - before) as f64);
    }
    let v = shared.stats();
    let s = lp.stats();
    assert_eq!(v.drops(), 0, "no drops: {v:?}");
    assert_eq!(v.rx, s.ports[0].rx + s.ports[1].rx);
    assert_eq!(s.ports[1].tx, s.ports[0].rx, "every VXLAN frame delivered");
    assert_eq!(
        s.ports[0].tx, s.ports[1].rx,
        "every tenant frame encapsulated"
    );
    drop(lp);
    assert_eq!(
        under_pool.in_use() + access_pool.in_use() + copies.in_use(),
        0
    );

    let hz = eal.tsc_hz() as f64;
    let (mb, mo) = (median(&mut bare.clone()), median(&mut ours.clone()));
    println!(
        "dpdk_vtep: {ROUNDS} rounds of {PACKETS} packets, TSC {:.2} GHz",
        hz / 1e9
    );
    println!("  bare C io-forward : median {mb:.1} cycles/packet (rounds {bare:.1?})");
    println!("  vxlan VTEP        : median {mo:.1} cycles/packet (rounds {ours:.1?})");
    // Each round measures both sides seconds apart: the per-round ratio
    // survives a noisy shared machine better than the ratio of medians.
    let mut ratios: Vec<f64> = ours.iter().zip(&bare).map(|(o, b)| o / b).collect();
    let mr = median(&mut ratios);
    println!(
        "  ratio             : {mr:.2}x median of per-round ratios ({:.2}x of medians; target <= 1.5x)",
        mo / mb
    );
    println!(
        "  VTEP work per packet: {:.1} cycles, {:.1} ns; {:.1} Mpps per core",
        mo - mb,
        (mo - mb) / hz * 1e9,
        hz / mo / 1e6
    );
}
