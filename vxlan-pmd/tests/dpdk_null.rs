//! The VTEP on DPDK net_null ports, run by two EAL-registered worker
//! threads (one queue of each port each): VXLAN from the underlay is
//! decapsulated and delivered to the access port, tenant frames from the
//! access port are encapsulated toward the remote VTEP, every counter adds
//! up against the others and the driver's, and every mbuf returns to its
//! mempool.
//!
//! Runs as its own test binary because EAL starts once per process.

mod dpdk_common;

use std::sync::Arc;

use dpdk_common::*;
use vxlan_core::fdb::Location;
use vxlan_core::frame::{Frame, FrameError};
use vxlan_pmd::config::VtepConfig;
use vxlan_pmd::dpdk::{DpdkLoop, Eal, EthPort, EthPortConfig, LoopStats, Mempool};
use vxlan_pmd::pool::Pool;
use vxlan_pmd::vtep::FrameSource;

const PER_WORKER: u64 = 100_000;

/// EAL starts once per process: both tests ask for the same arguments.
fn eal() -> &'static Eal {
    let underlay = from_remote(&tenant_frame(VM_B, VM_A, 1)).len();
    Eal::init(&[
        "--no-huge".to_string(),
        "--no-pci".to_string(),
        "--no-shconf".to_string(),
        "--log-level=error".to_string(),
        format!("--vdev=net_null0,size={underlay}"),
        "--vdev=net_null1,size=64".to_string(),
    ])
    .expect("EAL starts with --no-huge --no-pci --no-shconf")
}

#[test]
fn mbuf_is_a_frame_in_place() {
    let eal = eal();
    let pool = Mempool::new(eal, "frame", 63, 0, 2048 + 128).unwrap();
    let data = tenant_frame(VM_A, VM_B, 7);
    let mut m = pool.alloc_with(&data).unwrap();
    assert_eq!(pool.in_use(), 1);
    assert_eq!(m.data(), &data[..]);
    assert_eq!(m.headroom(), 128, "DPDK's RTE_PKTMBUF_HEADROOM");
    assert_eq!(m.segments(), 1);
    let first = m.data().as_ptr();
    // Prepend writes into the headroom: the payload does not move.
    m.prepend(50).unwrap().fill(0xee);
    assert_eq!(m.len(), 114);
    assert_eq!(m.headroom(), 78);
    assert_eq!(&m.data()[..50], &[0xee; 50][..]);
    assert_eq!(&m.data()[50..], &data[..]);
    assert_eq!(m.data()[50..].as_ptr(), first, "zero copy");
    assert_eq!(
        m.prepend(79).unwrap_err(),
        FrameError::NoHeadroom {
            needed: 79,
            available: 78
        }
    );
    m.strip(50).unwrap();
    assert_eq!(m.data(), &data[..]);
    assert_eq!(m.data().as_ptr(), first);
    assert_eq!(
        m.strip(65).unwrap_err(),
        FrameError::TooShort {
            needed: 65,
            len: 64
        }
    );
    m.truncate(60).unwrap();
    assert_eq!(m.data(), &data[..60]);
    assert!(m.truncate(61).is_err());
    m.data_mut()[0] = 0x11;
    assert_eq!(m.data()[0], 0x11);
    assert!(m.append(&vec![0u8; 4096]).is_err(), "no tailroom for 4 KB");
    // Copies (flooding) come from the pool and keep the receive metadata.
    let c = pool.copy_of(&m).unwrap();
    assert_eq!(c.data(), m.data());
    assert_ne!(c.data().as_ptr(), m.data().as_ptr());
    assert_eq!(c.ingress_port(), m.ingress_port());
    assert_eq!(c.rss_hash(), None, "no RSS hash without the offload");
    assert_eq!(pool.in_use(), 2);
    drop(c);
    drop(m);
    assert_eq!(pool.in_use(), 0, "dropping an Mbuf frees it");
    // An empty pool is a None, not a panic.
    let all: Vec<_> = std::iter::from_fn(|| pool.alloc()).collect();
    assert_eq!(all.len(), 63);
    assert!(pool.with_data(&data).is_none());
    drop(all);
    assert_eq!(pool.available(), 63);
}

#[test]
fn null_ports_pipeline_on_registered_threads() {
    let inner_in = tenant_frame(VM_B, VM_A, 1);
    let underlay_frame = from_remote(&inner_in);
    let access_frame = tenant_frame(VM_A, VM_B, 2);
    let eal = eal();

    // One mempool per receiving port, prefilled with what that port
    // "receives"; flood copies from a third.
    let under_pool = Mempool::new(eal, "under", 2047, 64, 2048 + 128).unwrap();
    let access_pool = Mempool::new(eal, "access", 2047, 64, 2048 + 128).unwrap();
    let copies = Mempool::new(eal, "copies", 1023, 32, 2048 + 128).unwrap();
    prefill(&under_pool, &underlay_frame);
    prefill(&access_pool, &access_frame);

    let pcfg = EthPortConfig {
        queues: 2,
        rx_ring: 256,
        tx_ring: 256,
        // Asked for; net_null does not offer them, so frames keep the
        // checksums the encapsulation wrote.
        tx_ipv4_checksum: true,
        tx_udp_checksum: true,
    };
    let uplink = Arc::new(EthPort::open(eal, "net_null0", &pcfg, &under_pool).unwrap());
    let vm = Arc::new(EthPort::open(eal, "net_null1", &pcfg, &access_pool).unwrap());
    assert_eq!(uplink.queues(), 2);
    assert!(
        !uplink.offloads().tx_ipv4_checksum,
        "net_null offers no transmit IPv4 checksum: {:#x}",
        uplink.tx_offload_capa()
    );
    assert!(
        !uplink.offloads().tx_udp_checksum,
        "net_null offers no transmit UDP checksum: {:#x}",
        uplink.tx_offload_capa()
    );
    assert_eq!(
        uplink.tx_checksum_offload(),
        vxlan_core::encap::TxChecksumOffload::NONE
    );

    let cfg = VtepConfig::from_toml_str(&config(
        r#"
        [[port]]
        name = "uplink"
        kind = "memory"
        [[port]]
        name = "vm"
        kind = "memory"
        access = { vni = 100 }
        "#,
    ))
    .unwrap();
    let mut cfg = cfg;
    cfg.vtep.workers = 2;
    let shared = vxlan_pmd::build::vtep(&cfg, Pool::new(1, 256, 128).unwrap()).unwrap();

    let mut lcores = Vec::new();
    let mut totals = LoopStats::default();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..2u16)
            .map(|q| {
                let ports = vec![Arc::clone(&uplink), Arc::clone(&vm)];
                let worker = shared.worker(usize::from(q));
                let copies = Arc::clone(&copies);
                s.spawn(move || {
                    let lcore = eal.register_thread().expect("thread registers with EAL");
                    // SAFETY: this thread alone uses queue q of both ports.
                    let mut lp = unsafe { DpdkLoop::new(worker, ports, q, copies) };
                    while lp.port_stats().iter().map(|p| p.rx).sum::<u64>() < 2 * PER_WORKER {
                        lp.poll();
                    }
                    let stats = lp.stats();
                    drop(lp);
                    eal.unregister_thread();
                    (lcore, stats)
                })
            })
            .collect();
        for h in handles {
            let (lcore, stats) = h.join().unwrap();
            lcores.push(lcore);
            totals.merge(&stats);
        }
    });
    // Two distinct lcore ids, neither "any": the workers were EAL threads.
    assert_ne!(lcores[0], lcores[1]);
    assert!(lcores.iter().all(|l| *l != u32::MAX), "{lcores:?}");

    let up = totals.ports[0];
    let access = totals.ports[1];
    let v = shared.stats();
    eprintln!("loops: {totals:?}\nvtep: {v:?}");
    // Every frame received was processed, none dropped.
    assert!(up.rx >= PER_WORKER && access.rx >= PER_WORKER);
    assert_eq!(v.rx, up.rx + access.rx);
    assert_eq!(v.drops(), 0, "{v:?}");
    assert_eq!(up.rx_chained + access.rx_chained, 0);
    assert_eq!(
        up.tx_ipv4_checksum_offloaded + access.tx_ipv4_checksum_offloaded,
        0,
        "no offload on a port without it"
    );
    // Each underlay frame became one frame to the access port (delivered,
    // or flooded to the one local port before VM A was learned) and each
    // tenant frame one VXLAN frame to the remote (encapsulated, or
    // head-end replicated to the one remote before VM B was learned).
    assert_eq!(access.tx + access.tx_dropped, up.rx);
    assert_eq!(up.tx + up.tx_dropped, access.rx);
    assert_eq!(v.tx_local, up.rx);
    assert_eq!(v.tx_remote, access.rx);
    // Flooding stops once both MACs are learned: at most the first burst
    // of each port on each worker floods.
    assert!(v.flooded >= 1 && v.flooded <= 2 * 2 * 32, "{v:?}");
    assert_eq!(
        v.flood_copies, v.flooded,
        "one copy each: one port or one remote"
    );
    // The driver agrees.
    let (su, sv) = (uplink.stats(), vm.stats());
    assert_eq!(su.ipackets, up.rx);
    assert_eq!(sv.ipackets, access.rx);
    assert_eq!(su.opackets, up.tx);
    assert_eq!(sv.opackets, access.tx);
    // Learning: A on the access port, B behind the remote VTEP.
    let fdb = shared.fdb();
    assert_eq!(
        fdb.lookup(0, vxlan_core::wire::MacAddr(VM_A))
            .unwrap()
            .location,
        Location::Local { port: 1, vlan: 0 }
    );
    assert_eq!(
        fdb.lookup(0, vxlan_core::wire::MacAddr(VM_B))
            .unwrap()
            .location,
        Location::Remote(0)
    );
    // Every mbuf is back in its pool.
    assert_eq!(under_pool.in_use(), 0);
    assert_eq!(access_pool.in_use(), 0);
    assert_eq!(copies.in_use(), 0);
}
