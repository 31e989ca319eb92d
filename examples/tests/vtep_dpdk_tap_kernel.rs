//! The `vtep` daemon with its underlay on a DPDK `net_tap` port, which
//! offers the transmit IPv4 and UDP checksum offloads, against the Linux
//! kernel's vxlan driver on the tap interface itself; a tenant namespace
//! on a `net_af_packet` access port. The VTEP's templates leave their
//! checksums to the device (the underlay port's offloads decide, in
//! `DpdkVtep::from_config`): over IPv4 the outer header checksum, over
//! IPv6 the outer UDP checksum, which the kernel verifies (and without
//! `udp6zerocsumrx` a zero one is dropped too). 100 pings each way without
//! loss, no checksum error counted by the kernel, every frame of ours
//! counted as offloaded, and every mbuf back.
//!
//! Needs root and /dev/net/tun; prints SKIP and passes otherwise. All of
//! it lives in two namespaces (the daemon runs inside the kernel VTEP's,
//! where net_tap makes its interface), removed by a Drop guard, also on
//! failure.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../../vxlan-pmd/tests/support/netns.rs"]
mod netns;
use netns::{in_ns, in_ns_ok, ipn, is_root, ping_report, run, Daemon, Namespaces};

#[test]
fn pings_over_a_tap_underlay_with_checksum_offload_ipv4_and_ipv6() {
    if !is_root() {
        eprintln!("SKIP: needs root (network namespaces, tap interfaces)");
        return;
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        eprintln!("SKIP: no /dev/net/tun");
        return;
    }
    against_the_kernel(false);
    against_the_kernel(true);
}

/// A counter of the kernel's in namespace `ns` from `/proc/net/snmp`
/// (`Proto: names` / `Proto: values` line pairs) or `/proc/net/snmp6`
/// (`Name value` lines).
fn kernel_counter(ns: &str, file: &str, proto: &str, name: &str) -> u64 {
    let text = in_ns_ok(ns, &["cat", file]);
    if file.ends_with("snmp6") {
        for l in text.lines() {
            let mut it = l.split_whitespace();
            if it.next() == Some(name) {
                return it.next().unwrap().parse().unwrap();
            }
        }
        panic!("{name} not in {file}: {text}");
    }
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with(&format!("{proto}:")))
        .collect();
    let names: Vec<&str> = lines[0].split_whitespace().collect();
    let values: Vec<&str> = lines[1].split_whitespace().collect();
    let i = names
        .iter()
        .position(|n| *n == name)
        .unwrap_or_else(|| panic!("{proto} {name} not in {file}"));
    values[i].parse().unwrap()
}

fn against_the_kernel(v6: bool) {
    let id = std::process::id() % 10_000;
    let fam = if v6 { "6" } else { "4" };
    let (k, v) = (format!("vxtk{id}v{fam}"), format!("vxtv{id}v{fam}"));
    let tap = format!("vxtp{id}v{fam}");
    let mut t = Namespaces::new([k.as_str(), v.as_str()]);
    let dir = t.dir(std::env::temp_dir().join(format!("vtep-dpdk-tap-kernel-{id}-{fam}")));
    let (kernel_ip, our_ip) = if v6 {
        ("2001:db8::1", "2001:db8::2")
    } else {
        ("192.0.2.1", "192.0.2.2")
    };
    // No IPv6 of the kernel's own anywhere but on the tap of the IPv6 run:
    // interfaces made from now on (the tap, vx0) start without it.
    for ns in [&k, &v] {
        for key in ["all", "default"] {
            let _ = in_ns(
                ns,
                &[
                    "sysctl",
                    "-qw",
                    &format!("net.ipv6.conf.{key}.disable_ipv6=1"),
                ],
            );
        }
    }
    ipn(
        &k,
        &format!("link add acc type veth peer name eth0 netns {v}"),
    );
    ipn(&k, "link set acc up");
    ipn(&v, "addr add 10.0.0.2/24 dev eth0");
    // The overlay MTU of the IPv6 underlay (1500 - 70 - 14 for the inner
    // Ethernet header leaves 1416), for both runs.
    ipn(&v, "link set eth0 mtu 1400 up");
    // A veth hands checksums it was asked to offload to its peer
    // unfinished; an AF_PACKET socket would see them so.
    in_ns_ok(&v, &["ethtool", "-K", "eth0", "tx", "off"]);

    let config = dir.join("vtep.toml");
    let dump = dir.join("dump.json");
    std::fs::write(
        &config,
        format!(
            r#"
            [vtep]
            local_ip = "{our_ip}"
            mac = "02:00:00:00:00:02"
            workers = 1
            [underlay]
            port = "uplink"
            gateway_mac = "02:00:00:00:00:01"
            [dpdk]
            eal_args = ["--no-huge", "--no-pci", "--no-shconf", "--log-level=error",
                "--vdev=net_tap0,iface={tap}",
                "--vdev=net_af_packet0,iface=acc"]
            mbufs = 4095
            [[port]]
            name = "uplink"
            kind = "dpdk"
            device = "net_tap0"
            [[port]]
            name = "vm"
            kind = "dpdk"
            device = "net_af_packet0"
            access = {{ vni = 100 }}
            [[vni]]
            id = 100
            flood = ["{kernel_ip}"]
            "#
        ),
    )
    .unwrap();
    // The daemon runs in the kernel VTEP's namespace: net_tap makes its
    // interface there, and that interface is the kernel's underlay link.
    let mut daemon = Daemon(Some(
        Command::new("ip")
            .args(["netns", "exec", &k, env!("CARGO_BIN_EXE_vtep")])
            .arg("--config")
            .arg(&config)
            .arg("--dump-json")
            .arg(&dump)
            .args(["--run-secs", "120"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let end = Instant::now() + Duration::from_secs(20);
    while in_ns(&k, &["ip", "link", "show", &tap]).is_err() {
        assert!(Instant::now() < end, "the daemon made no {tap}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Give the port time to start (queues, link up).
    std::thread::sleep(Duration::from_millis(500));
    ipn(&k, &format!("link set {tap} address 02:00:00:00:00:01"));
    ipn(&k, &format!("link set {tap} up"));
    if v6 {
        in_ns_ok(
            &k,
            &[
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{tap}.disable_ipv6=0"),
            ],
        );
        ipn(&k, &format!("addr add {kernel_ip}/64 dev {tap} nodad"));
    } else {
        ipn(&k, &format!("addr add {kernel_ip}/24 dev {tap}"));
    }
    ipn(
        &k,
        &format!("neigh add {our_ip} lladdr 02:00:00:00:00:02 dev {tap} nud permanent"),
    );
    // For IPv6, the kernel's default: UDP checksums sent and required
    // (a zero one is dropped), spelled out.
    let csum = if v6 {
        " noudp6zerocsumtx noudp6zerocsumrx"
    } else {
        ""
    };
    ipn(
        &k,
        &format!(
            "link add vx0 type vxlan id 100 local {kernel_ip} remote {our_ip} dstport 4789 dev {tap}{csum}"
        ),
    );
    ipn(&k, "addr add 10.0.0.1/24 dev vx0");
    ipn(&k, "link set vx0 mtu 1400 up");

    let (udp_err0, ip_err0) = if v6 {
        (
            kernel_counter(&k, "/proc/net/snmp6", "", "Udp6InCsumErrors"),
            kernel_counter(&k, "/proc/net/snmp6", "", "Ip6InHdrErrors"),
        )
    } else {
        (
            kernel_counter(&k, "/proc/net/snmp", "Udp", "InCsumErrors"),
            kernel_counter(&k, "/proc/net/snmp", "Ip", "InHdrErrors"),
        )
    };

    let (n, out) = ping_report(&v, "10.0.0.1", 100, "0.01", "2");
    assert_eq!(n, 100, "IPv{fam}: VM -> kernel VTEP: {out}");
    let (n, out) = ping_report(&k, "10.0.0.2", 100, "0.01", "2");
    assert_eq!(n, 100, "IPv{fam}: kernel VTEP -> VM: {out}");

    let (udp_err, ip_err) = if v6 {
        (
            kernel_counter(&k, "/proc/net/snmp6", "", "Udp6InCsumErrors"),
            kernel_counter(&k, "/proc/net/snmp6", "", "Ip6InHdrErrors"),
        )
    } else {
        (
            kernel_counter(&k, "/proc/net/snmp", "Udp", "InCsumErrors"),
            kernel_counter(&k, "/proc/net/snmp", "Ip", "InHdrErrors"),
        )
    };
    assert_eq!(
        udp_err, udp_err0,
        "IPv{fam}: the kernel found bad UDP checksums"
    );
    assert_eq!(ip_err, ip_err0, "IPv{fam}: the kernel found bad IP headers");

    let daemon = daemon.0.take().unwrap();
    run(&["kill", "-TERM", &daemon.id().to_string()]);
    let out = daemon.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("IPv{fam}:\n{stderr}");
    assert!(out.status.success(), "{stderr}");
    let d: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&dump).unwrap()).unwrap();
    let c = &d["counters"];
    // No drop but a broadcast's copy back to its own port (same_port):
    // decap_check would count a checksum our decapsulation refused.
    for (name, n) in c["drops"].as_object().unwrap() {
        if name != "same_port" {
            assert_eq!(n, 0, "IPv{fam}: {name}: {c}");
        }
    }
    let tx_remote = c["tx_remote"].as_u64().unwrap();
    assert!(tx_remote >= 200, "{c}");
    let up = &d["ports"][0];
    assert_eq!(up["offloads"]["tx_ipv4_checksum"], true, "{up}");
    assert_eq!(up["offloads"]["tx_udp_checksum"], true, "{up}");
    let tx = up["tx"].as_u64().unwrap();
    assert_eq!(tx, tx_remote, "the underlay carries only our VXLAN: {up}");
    // Every frame left its checksum to the device: the header's over
    // IPv4, the UDP one over IPv6 (the template's request; none took
    // the transmit path's fallback, which would count IPv4 frames only).
    let (ip_off, udp_off) = if v6 { (0, tx) } else { (tx, 0) };
    assert_eq!(up["tx_ipv4_checksum_offloaded"], ip_off, "{up}");
    assert_eq!(up["tx_udp_checksum_offloaded"], udp_off, "{up}");
    for p in d["ports"].as_array().unwrap() {
        assert_eq!(p["tx_dropped"], 0, "{p}");
    }
    assert_eq!(d["mempool"]["in_use"], 0, "every mbuf back in the mempool");
}
