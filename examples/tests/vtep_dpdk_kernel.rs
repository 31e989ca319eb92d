//! The `vtep` daemon on DPDK net_af_packet ports (feature `dpdk`) against
//! the Linux kernel's vxlan driver: a tenant namespace on our access port,
//! a kernel VTEP namespace on our underlay port. 100 pings each way without
//! loss, then 20 MB of byte-verified TCP each way (`tcp-verify`), then
//! SIGTERM: the daemon's dump has no drops and every mbuf back.
//!
//! Needs root; prints SKIP and passes otherwise. Namespaces and links are
//! removed by a Drop guard, also on failure.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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

fn run(args: &[&str]) -> String {
    sh(args).unwrap_or_else(|e| panic!("{e}"))
}

/// Namespaces, links and the daemon, all gone on drop.
struct Setup {
    kernel_ns: String,
    vm_ns: String,
    uplink: String,
    access: String,
    dir: PathBuf,
    daemon: Option<Child>,
}

impl Setup {
    fn cleanup(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
        let _ = sh(&["ip", "netns", "del", &self.kernel_ns]);
        let _ = sh(&["ip", "netns", "del", &self.vm_ns]);
        let _ = sh(&["ip", "link", "del", &self.uplink]);
        let _ = sh(&["ip", "link", "del", &self.access]);
    }

    fn ns(&self, ns: &str, args: &[&str]) -> String {
        let mut full = vec!["ip", "netns", "exec", ns];
        full.extend_from_slice(args);
        run(&full)
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.cleanup();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ping(ns: &str, dst: &str) -> String {
    let mut full = vec!["ip", "netns", "exec", ns];
    full.extend_from_slice(&["ping", "-c", "100", "-i", "0.01", "-W", "2", "-q", dst]);
    sh(&full).unwrap_or_else(|e| e)
}

/// 20 MB from `from_ns` to `to_ns`'s `addr`, checked byte by byte.
fn tcp(from_ns: &str, to_ns: &str, addr: &str) {
    const BYTES: &str = "20000000";
    let tv = env!("CARGO_BIN_EXE_tcp-verify");
    let listen = format!("{addr}:5201");
    let mut recv = Command::new("ip")
        .args([
            "netns",
            "exec",
            to_ns,
            tv,
            "recv",
            &listen,
            BYTES,
            "--timeout",
            "60",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let send = Command::new("ip")
        .args([
            "netns",
            "exec",
            from_ns,
            tv,
            "send",
            &listen,
            BYTES,
            "--timeout",
            "60",
        ])
        .output()
        .unwrap();
    assert!(
        send.status.success(),
        "send {from_ns} -> {to_ns}: {}",
        String::from_utf8_lossy(&send.stderr)
    );
    let got = recv.wait().unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(recv.stdout.as_mut().unwrap(), &mut out).unwrap();
    eprintln!("tcp {from_ns} -> {to_ns}: {}", out.trim());
    assert!(got.success(), "receiver: {out}");
    assert!(out.contains("\"ok\":true"), "{out}");
    assert!(out.contains("\"bytes\":20000000"), "{out}");
}

#[test]
fn pings_and_tcp_each_way_against_the_kernel_vxlan_driver() {
    if sh(&["id", "-u"]).map(|s| s.trim() != "0").unwrap_or(true) {
        eprintln!("SKIP: needs root (network namespaces and AF_PACKET sockets)");
        return;
    }
    // One worker; then two workers, each with its own queue pair of both
    // ports (net_af_packet spreads flows over its queues by hash with
    // PACKET_FANOUT), one after the other.
    against_the_kernel(1);
    against_the_kernel(2);
}

fn against_the_kernel(workers: u16) {
    let id = std::process::id() % 10_000;
    let mut s = Setup {
        kernel_ns: format!("vxek{id}w{workers}"),
        vm_ns: format!("vxev{id}w{workers}"),
        uplink: format!("vxeu{id}w{workers}"),
        access: format!("vxea{id}w{workers}"),
        dir: std::env::temp_dir().join(format!("vtep-dpdk-kernel-{id}-{workers}")),
        daemon: None,
    };
    s.cleanup();
    let _ = std::fs::remove_dir_all(&s.dir);
    std::fs::create_dir_all(&s.dir).unwrap();
    let (k, v) = (s.kernel_ns.clone(), s.vm_ns.clone());
    run(&["ip", "netns", "add", &k]);
    run(&["ip", "netns", "add", &v]);
    run(&[
        "ip", "link", "add", &s.uplink, "type", "veth", "peer", "name", "eth0", "netns", &k,
    ]);
    run(&[
        "ip", "link", "add", &s.access, "type", "veth", "peer", "name", "eth0", "netns", &v,
    ]);
    for l in [&s.uplink, &s.access] {
        let _ = sh(&[
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.{l}.disable_ipv6=1"),
        ]);
        run(&["ip", "link", "set", l, "up"]);
    }
    s.ns(
        &k,
        &["ip", "link", "set", "eth0", "address", "02:00:00:00:00:01"],
    );
    s.ns(&k, &["ip", "addr", "add", "192.0.2.1/24", "dev", "eth0"]);
    s.ns(&k, &["ip", "link", "set", "eth0", "up"]);
    // Our VTEP has no host stack to answer ARP for its underlay address.
    s.ns(
        &k,
        &[
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
        ],
    );
    s.ns(
        &k,
        &[
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
        ],
    );
    s.ns(&k, &["ip", "addr", "add", "10.0.0.1/24", "dev", "vx0"]);
    s.ns(&k, &["ip", "link", "set", "vx0", "up"]);
    s.ns(&v, &["ip", "addr", "add", "10.0.0.2/24", "dev", "eth0"]);
    // The overlay's MTU, as the kernel's vx0 has it (1500 - 50).
    s.ns(&v, &["ip", "link", "set", "eth0", "mtu", "1450", "up"]);
    for ns in [&k, &v] {
        s.ns(ns, &["ip", "link", "set", "lo", "up"]);
        let _ = sh(&[
            "ip",
            "netns",
            "exec",
            ns,
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.disable_ipv6=1",
        ]);
        // A veth hands offloaded checksums to its peer unfinished, and an
        // AF_PACKET socket sees them so: have the kernel finish them, as a
        // NIC would on the wire.
        s.ns(ns, &["ethtool", "-K", "eth0", "tx", "off"]);
    }

    let dump = s.dir.join("dump.json");
    let config = s.dir.join("vtep.toml");
    std::fs::write(
        &config,
        format!(
            r#"
            [vtep]
            local_ip = "192.0.2.2"
            mac = "02:00:00:00:00:02"
            workers = {workers}
            [underlay]
            port = "uplink"
            gateway_mac = "02:00:00:00:00:01"
            [dpdk]
            eal_args = ["--no-huge", "--no-pci", "--no-shconf", "--log-level=error",
                "--vdev=net_af_packet0,iface={up},qpairs={workers}",
                "--vdev=net_af_packet1,iface={acc},qpairs={workers}"]
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
            up = s.uplink,
            acc = s.access,
        ),
    )
    .unwrap();
    s.daemon = Some(
        Command::new(env!("CARGO_BIN_EXE_vtep"))
            .arg("--config")
            .arg(&config)
            .arg("--dump-json")
            .arg(&dump)
            .args(["--run-secs", "300"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(1000));

    let to_kernel = ping(&v, "10.0.0.1");
    let to_vm = ping(&k, "10.0.0.2");
    assert!(
        to_kernel.contains("100 packets transmitted, 100 received"),
        "{to_kernel}"
    );
    assert!(
        to_vm.contains("100 packets transmitted, 100 received"),
        "{to_vm}"
    );
    tcp(&v, &k, "10.0.0.1");
    tcp(&k, &v, "10.0.0.2");

    let daemon = s.daemon.take().unwrap();
    run(&["kill", "-TERM", &daemon.id().to_string()]);
    let out = daemon.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}");
    assert!(out.status.success(), "{stderr}");
    let d: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&dump).unwrap()).unwrap();
    let c = &d["counters"];
    assert!(
        c["drops"].as_object().unwrap().values().all(|v| v == 0),
        "no drops: {c}"
    );
    assert!(c["tx_remote"].as_u64().unwrap() > 10_000, "{c}");
    assert!(c["tx_local"].as_u64().unwrap() > 10_000, "{c}");
    for p in d["ports"].as_array().unwrap() {
        assert_eq!(p["tx_dropped"], 0, "{p}");
        assert_eq!(p["driver_imissed"], 0, "{p}");
    }
    assert_eq!(d["mempool"]["in_use"], 0, "every mbuf back in the mempool");
    assert_eq!(
        d["workers"]["lcores"].as_array().unwrap().len(),
        usize::from(workers),
        "{}",
        d["workers"]
    );
}
