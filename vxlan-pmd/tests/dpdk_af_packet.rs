//! The VTEP on DPDK net_af_packet ports against the Linux kernel's own
//! vxlan driver: a tenant "VM" (a network namespace) on our access port
//! and a kernel VTEP (another namespace, `ip link add ... type vxlan`) on
//! our underlay port, joined by veth pairs. 100 pings each way, no loss,
//! and every mbuf back in the mempool afterwards.
//!
//! Needs root (namespaces, AF_PACKET); prints SKIP and passes otherwise.
//! The namespaces and links are removed by a Drop guard, also on failure.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use vxlan_pmd::config::VtepConfig;
use vxlan_pmd::dpdk::DpdkVtep;

fn sh(args: &[&str]) -> Result<String, String> {
    let o = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    } else {
        Err(format!(
            "{args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ))
    }
}

fn run(args: &[&str]) {
    sh(args).unwrap_or_else(|e| panic!("{e}"));
}

/// Two namespaces and two veth pairs, removed on drop.
struct Topology {
    kernel_ns: String,
    vm_ns: String,
    uplink: String,
    access: String,
}

impl Topology {
    fn new() -> Topology {
        let id = std::process::id() % 100_000;
        let t = Topology {
            kernel_ns: format!("vxdk{id}"),
            vm_ns: format!("vxdv{id}"),
            uplink: format!("vxdu{id}"),
            access: format!("vxda{id}"),
        };
        t.cleanup();
        t
    }

    fn cleanup(&self) {
        let _ = sh(&["ip", "netns", "del", &self.kernel_ns]);
        let _ = sh(&["ip", "netns", "del", &self.vm_ns]);
        let _ = sh(&["ip", "link", "del", &self.uplink]);
        let _ = sh(&["ip", "link", "del", &self.access]);
    }

    fn in_ns(&self, ns: &str, args: &[&str]) -> Result<String, String> {
        let mut full = vec!["ip", "netns", "exec", ns];
        full.extend_from_slice(args);
        sh(&full)
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        self.cleanup();
    }
}

fn in_ns_ok(t: &Topology, ns: &str, args: &[&str]) {
    t.in_ns(ns, args).unwrap_or_else(|e| panic!("{e}"));
}

fn ping(t: &Topology, ns: &str, dst: &str) -> String {
    t.in_ns(
        ns,
        &["ping", "-c", "100", "-i", "0.01", "-W", "2", "-q", dst],
    )
    .unwrap_or_else(|e| e)
}

#[test]
fn hundred_pings_each_way_against_the_kernel_vxlan_driver() {
    if sh(&["id", "-u"]).map(|s| s.trim() != "0").unwrap_or(true) {
        eprintln!("SKIP: needs root (network namespaces and AF_PACKET sockets)");
        return;
    }
    let t = Topology::new();
    let (k, v) = (t.kernel_ns.as_str(), t.vm_ns.as_str());
    run(&["ip", "netns", "add", k]);
    run(&["ip", "netns", "add", v]);
    // Underlay: our uplink <-> the kernel VTEP's eth0 (192.0.2.1).
    run(&[
        "ip", "link", "add", &t.uplink, "type", "veth", "peer", "name", "eth0", "netns", k,
    ]);
    // Access: our access port <-> the VM's eth0 (10.0.0.2).
    run(&[
        "ip", "link", "add", &t.access, "type", "veth", "peer", "name", "eth0", "netns", v,
    ]);
    for l in [&t.uplink, &t.access] {
        let _ = sh(&[
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.{l}.disable_ipv6=1"),
        ]);
        run(&["ip", "link", "set", l, "up"]);
    }
    let kernel_mac = "02:00:00:00:00:01";
    let in_k = |args: &[&str]| t.in_ns(k, args).unwrap_or_else(|e| panic!("{e}"));
    let in_v = |args: &[&str]| t.in_ns(v, args).unwrap_or_else(|e| panic!("{e}"));
    in_k(&["ip", "link", "set", "eth0", "address", kernel_mac]);
    in_k(&["ip", "addr", "add", "192.0.2.1/24", "dev", "eth0"]);
    in_k(&["ip", "link", "set", "eth0", "up"]);
    in_k(&["ip", "link", "set", "lo", "up"]);
    // Our VTEP has no host stack to answer ARP for its underlay address.
    in_k(&[
        "ip",
        "neigh",
        "add",
        "192.0.2.2",
        "lladdr",
        "02:00:00:00:00:02",
        "dev",
        "eth0",
        "nud",
        "permanent",
    ]);
    in_k(&[
        "ip",
        "link",
        "add",
        "vx0",
        "type",
        "vxlan",
        "id",
        "100",
        "local",
        "192.0.2.1",
        "remote",
        "192.0.2.2",
        "dstport",
        "4789",
        "dev",
        "eth0",
    ]);
    in_k(&["ip", "addr", "add", "10.0.0.1/24", "dev", "vx0"]);
    in_k(&["ip", "link", "set", "vx0", "up"]);
    in_v(&["ip", "addr", "add", "10.0.0.2/24", "dev", "eth0"]);
    in_v(&["ip", "link", "set", "eth0", "up"]);
    in_v(&["ip", "link", "set", "lo", "up"]);
    for ns in [k, v] {
        let _ = t.in_ns(ns, &["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
        // A veth hands checksums it was asked to offload to its peer
        // unfinished, and an AF_PACKET socket sees them so (DPDK's
        // net_af_packet does not report TP_STATUS_CSUMNOTREADY): have the
        // kernel finish them, as a NIC would on the wire.
        in_ns_ok(&t, ns, &["ethtool", "-K", "eth0", "tx", "off"]);
    }

    let cfg = VtepConfig::from_toml_str(&format!(
        r#"
        [vtep]
        local_ip = "192.0.2.2"
        mac = "02:00:00:00:00:02"
        [underlay]
        port = "uplink"
        gateway_mac = "{kernel_mac}"
        [dpdk]
        eal_args = ["--no-huge", "--no-pci", "--no-shconf", "--log-level=error",
            "--vdev=net_af_packet0,iface={up}", "--vdev=net_af_packet1,iface={acc}"]
        mbufs = 4095
        [[port]]
        name = "uplink"
        kind = "dpdk"
        device = "net_af_packet0"
        [[port]]
        name = "vm"
        kind = "dpdk"
        device = "net_af_packet1"
        access = {{ vni = 100 }}
        [[vni]]
        id = 100
        flood = ["192.0.2.1"]
        "#,
        up = t.uplink,
        acc = t.access,
    ))
    .unwrap();
    let vtep = DpdkVtep::from_config(&cfg).expect("VTEP on af_packet ports");
    let stop = AtomicBool::new(false);
    let (to_kernel, to_vm, loops) = std::thread::scope(|s| {
        let runner = s.spawn(|| vtep.run(&stop));
        let to_kernel = ping(&t, v, "10.0.0.1");
        let to_vm = ping(&t, k, "10.0.0.2");
        stop.store(true, Ordering::Release);
        (to_kernel, to_vm, runner.join().unwrap())
    });
    let loops = loops.expect("workers ran");
    let stats = vtep.shared().stats();
    eprintln!("VM -> kernel: {to_kernel}\nkernel -> VM: {to_vm}\nloops {loops:?}\nvtep {stats:?}");
    assert!(
        to_kernel.contains("100 packets transmitted, 100 received"),
        "VM -> kernel VTEP: {to_kernel}"
    );
    assert!(
        to_vm.contains("100 packets transmitted, 100 received"),
        "kernel VTEP -> VM: {to_vm}"
    );
    // At least the 400 ICMP frames crossed the VTEP, half each way.
    assert!(stats.tx_remote >= 200 && stats.tx_local >= 200, "{stats:?}");
    assert_eq!(stats.drops(), 0, "{stats:?}");
    eprintln!(
        "workers on EAL lcores: {} {:?}",
        loops.on_eal_lcores, loops.lcores
    );
    let rx: u64 = loops.ports.iter().map(|p| p.rx).sum();
    assert_eq!(stats.rx, rx);
    assert_eq!(loops.ports[0].tx, stats.tx_remote);
    assert_eq!(loops.ports[1].tx, stats.tx_local);
    let mempool = std::sync::Arc::clone(vtep.mempool());
    drop(vtep); // closes the ports
    assert_eq!(mempool.in_use(), 0, "every mbuf back in the mempool");
}
