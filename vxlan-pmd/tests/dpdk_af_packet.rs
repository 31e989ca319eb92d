//! The VTEP on DPDK net_af_packet ports against the Linux kernel's own
//! vxlan driver: a tenant "VM" (a network namespace) on our access port
//! and a kernel VTEP (another namespace, `ip link add ... type vxlan`) on
//! our underlay port, joined by veth pairs. 100 pings each way, no loss,
//! and every mbuf back in the mempool afterwards.
//!
//! Needs root (namespaces, AF_PACKET); prints SKIP and passes otherwise.
//! The namespaces and links are removed by a Drop guard, also on failure.

use std::sync::atomic::{AtomicBool, Ordering};

use vxlan_pmd::config::VtepConfig;
use vxlan_pmd::dpdk::DpdkVtep;

#[path = "support/netns.rs"]
mod netns;
use netns::{dpdk_vtep_config, is_root, kernel_vtep_and_vm, ping_report};

#[test]
fn hundred_pings_each_way_against_the_kernel_vxlan_driver() {
    if !is_root() {
        eprintln!("SKIP: needs root (network namespaces and AF_PACKET sockets)");
        return;
    }
    let id = std::process::id() % 100_000;
    let (k, v) = (format!("vxdk{id}"), format!("vxdv{id}"));
    let (uplink, access) = (format!("vxdu{id}"), format!("vxda{id}"));
    let _t = kernel_vtep_and_vm(&k, &v, &uplink, &access);

    let cfg = VtepConfig::from_toml_str(&dpdk_vtep_config(&uplink, &access, 1)).unwrap();
    let vtep = DpdkVtep::from_config(&cfg).expect("VTEP on af_packet ports");
    let stop = AtomicBool::new(false);
    let (to_kernel, to_vm, loops) = std::thread::scope(|s| {
        let runner = s.spawn(|| vtep.run(&stop));
        let to_kernel = ping_report(&v, "10.0.0.1", 100, "0.01", "2");
        let to_vm = ping_report(&k, "10.0.0.2", 100, "0.01", "2");
        stop.store(true, Ordering::Release);
        (to_kernel, to_vm, runner.join().unwrap())
    });
    let loops = loops.expect("workers ran");
    let stats = vtep.shared().stats();
    eprintln!(
        "VM -> kernel: {}\nkernel -> VM: {}\nloops {loops:?}\nvtep {stats:?}",
        to_kernel.1, to_vm.1
    );
    assert_eq!(to_kernel.0, 100, "VM -> kernel VTEP: {}", to_kernel.1);
    assert_eq!(to_vm.0, 100, "kernel VTEP -> VM: {}", to_vm.1);
    // At least the 400 ICMP frames crossed the VTEP, half each way.
    assert!(stats.tx_remote >= 200 && stats.tx_local >= 200, "{stats:?}");
    assert_eq!(stats.drops(), 0, "{stats:?}");
    eprintln!(
        "workers on EAL lcores: {} {:?}",
        loops.on_eal_lcores, loops.lcores
    );
    // net_af_packet offers no transmit IPv4 checksum: the underlay's
    // frames carry the encapsulation's own (the kernel VTEP, which
    // answered every ping, accepts nothing else).
    assert!(!vtep.ports()[0].offloads().tx_ipv4_checksum);
    assert_eq!(loops.ports[0].tx_ipv4_checksum_offloaded, 0);
    let rx: u64 = loops.ports.iter().map(|p| p.rx).sum();
    assert_eq!(stats.rx, rx);
    assert_eq!(loops.ports[0].tx, stats.tx_remote);
    assert_eq!(loops.ports[1].tx, stats.tx_local);
    let mempool = std::sync::Arc::clone(vtep.mempool());
    drop(vtep); // closes the ports
    assert_eq!(mempool.in_use(), 0, "every mbuf back in the mempool");
}
