//! The `vtep` daemon on DPDK net_af_packet ports (feature `dpdk`) against
//! the Linux kernel's vxlan driver: a tenant namespace on our access port,
//! a kernel VTEP namespace on our underlay port. 100 pings each way without
//! loss, then 20 MB of byte-verified TCP each way (`tcp-verify`), then
//! SIGTERM: the daemon's dump has no drops and every mbuf back.
//!
//! Needs root; prints SKIP and passes otherwise. Namespaces and links are
//! removed by a Drop guard, also on failure.

use std::process::{Command, Stdio};
use std::time::Duration;

#[path = "../../vxlan-pmd/tests/support/netns.rs"]
mod netns;
use netns::{dpdk_vtep_config, is_root, kernel_vtep_and_vm, ping_report, run, Daemon};

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
    if !is_root() {
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
    let (k, v) = (format!("vxek{id}w{workers}"), format!("vxev{id}w{workers}"));
    let (uplink, access) = (format!("vxeu{id}w{workers}"), format!("vxea{id}w{workers}"));
    let mut t = kernel_vtep_and_vm(&k, &v, &uplink, &access);
    let dir = t.dir(std::env::temp_dir().join(format!("vtep-dpdk-kernel-{id}-{workers}")));
    let mut daemon = Daemon(None);

    let dump = dir.join("dump.json");
    let config = dir.join("vtep.toml");
    std::fs::write(&config, dpdk_vtep_config(&uplink, &access, workers)).unwrap();
    daemon.0 = Some(
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

    let (n, out) = ping_report(&v, "10.0.0.1", 100, "0.01", "2");
    assert_eq!(n, 100, "VM -> kernel VTEP: {out}");
    let (n, out) = ping_report(&k, "10.0.0.2", 100, "0.01", "2");
    assert_eq!(n, 100, "kernel VTEP -> VM: {out}");
    tcp(&v, &k, "10.0.0.1");
    tcp(&k, &v, "10.0.0.2");

    let daemon = daemon.0.take().unwrap();
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
