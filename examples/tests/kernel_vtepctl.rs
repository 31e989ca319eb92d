//! `vtepctl` against our live `vtep` (AF_XDP) with the Linux kernel's
//! vxlan driver as the peer, in network namespaces this test creates and
//! always deletes. The configuration has no `gateway_mac`: the next hop
//! toward the kernel VTEP is resolved from the kernel's tables in our
//! namespace.
//!
//! Run as root with the feature on:
//! `cargo test -p vxlan-examples --features af-xdp --test kernel_vtepctl`.
//! Without root, or on a kernel without AF_XDP, it prints `SKIP` and
//! passes.
//!
//! ```text
//!  h (host)          k (kernel VTEP)                u (underlay)      v (our vtep)        m (VM)
//!  hk0 ──veth── kh0 ─ br0 ─ vx0 (VNI 100)            bru bridge        vu0 AF_XDP+XDP
//!                           ku0 ──veth── uk0 ─ bru ─ uv0 ──veth── vu0  va0 AF_XDP ──veth── vm0
//! ```
//!
//! Checked: the next hop resolves to the kernel VTEP's MAC and `vni show`
//! says so; pings cross both ways; `fdb show` has the kernel side's host
//! behind the kernel's address; `remote add` / `fdb add` / `fdb del` /
//! `remote del` of another VTEP while a ping stream runs lose none of it;
//! a flood toward that unresolvable VTEP is counted as
//! `nexthop_unresolved`; `remote del` of the kernel VTEP cuts the VNI off
//! (its learned entries flushed) and `remote add` brings it back.
#![cfg(all(feature = "af-xdp", target_os = "linux"))]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "../../vxlan-pmd/tests/support/netns.rs"]
mod netns;
use netns::{af_xdp_skip_reason, ipn, ok, ping_report, wait_reachable, Namespaces};

const KERNEL_IP: &str = "192.168.51.1";
const OUR_IP: &str = "192.168.51.2";
/// A VTEP address nobody answers ARP for.
const GHOST_IP: &str = "192.168.51.3";
const KERNEL_MAC: &str = "02:00:00:51:00:01";
const OUR_MAC: &str = "02:00:00:51:00:02";
const VM_MAC: &str = "02:00:00:65:00:02";
const HOST_MAC: &str = "02:00:00:65:00:01";
const HOST_IP: &str = "10.101.0.1";
const VM_IP: &str = "10.101.0.2";

/// The namespaces (deleted on drop, on panic too, with every process
/// still running inside them killed) and the test's directory (removed
/// with them).
fn build() -> (Namespaces, PathBuf) {
    let mut ns = Namespaces::for_roles("ctl", &["k", "u", "v", "h", "m"]);
    let dir = ns.dir(std::env::temp_dir().join(format!("kernel-vtepctl-{}", std::process::id())));
    let [k, u, v, h, m] = [0, 1, 2, 3, 4].map(|i| ns.get(i).to_string());
    for n in [&h, &m, &k] {
        ok(
            Some(n),
            &["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
        );
        ok(
            Some(n),
            &["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"],
        );
    }
    ipn(&u, "link add bru type bridge");
    ipn(&u, "link set bru up");
    for (dev, peer, at, mac) in [("ku0", "uk0", &k, KERNEL_MAC), ("vu0", "uv0", &v, OUR_MAC)] {
        ok(
            None,
            &[
                "ip", "link", "add", dev, "netns", at, "address", mac, "mtu", "1600", "type",
                "veth", "peer", "name", peer, "netns", &u, "mtu", "1600",
            ],
        );
        ipn(&u, &format!("link set {peer} master bru up"));
        ipn(at, &format!("link set {dev} up"));
    }
    ipn(&k, &format!("addr add {KERNEL_IP}/24 dev ku0"));
    ipn(&v, &format!("addr add {OUR_IP}/24 dev vu0"));
    ok(Some(&k), &["ethtool", "-K", "ku0", "tx", "off"]);
    ipn(
        &k,
        &format!("link add vx0 type vxlan id 100 local {KERNEL_IP} remote {OUR_IP} dstport 4789 learning"),
    );
    ipn(&k, "link set vx0 mtu 1500");
    ipn(&k, "link add br0 type bridge");
    ipn(&k, "link set br0 up");
    ipn(&k, "link set vx0 master br0 up");
    ok(
        None,
        &[
            "ip", "link", "add", "hk0", "netns", &h, "address", HOST_MAC, "type", "veth", "peer",
            "name", "kh0", "netns", &k,
        ],
    );
    ipn(&k, "link set kh0 master br0 up");
    ipn(&h, &format!("addr add {HOST_IP}/24 dev hk0"));
    ipn(&h, "link set hk0 up");
    ok(Some(&h), &["ethtool", "-K", "hk0", "tx", "off"]);
    ok(
        None,
        &[
            "ip", "link", "add", "vm0", "netns", &m, "address", VM_MAC, "type", "veth", "peer",
            "name", "va0", "netns", &v,
        ],
    );
    ipn(&v, "link set va0 up");
    ok(Some(&m), &["ethtool", "-K", "vm0", "tx", "off"]);
    ipn(&m, &format!("addr add {VM_IP}/24 dev vm0"));
    ipn(&m, "link set vm0 up");
    (ns, dir)
}

fn config(socket: &Path) -> String {
    format!(
        r#"
[vtep]
local_ip = "{OUR_IP}"
mac = "{OUR_MAC}"
underlay_mtu = 1600
control_socket = "{}"

[underlay]
port = "uplink"

[[port]]
name = "uplink"
kind = "af_xdp"
interface = "vu0"
mode = "copy"

[[port]]
name = "vm"
kind = "af_xdp"
interface = "va0"
access = {{ vni = 100 }}

[[vni]]
id = 100
flood = ["{KERNEL_IP}"]
"#,
        socket.display()
    )
}

/// Our daemon; dropping it kills it.
struct Daemon {
    child: Child,
    log: mpsc::Receiver<String>,
}

impl Daemon {
    fn start(ns: &str, cfg: &Path) -> Daemon {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_vtep"), "--config"])
            .arg(cfg)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start vtep");
        let stderr = child.stderr.take().unwrap();
        let (tx, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("  vtep: {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            match log.recv_timeout(Duration::from_millis(200)) {
                Ok(l) if l.contains("running") => break,
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < end => {}
                Err(_) => panic!("vtep did not start"),
            }
        }
        Daemon { child, log }
    }

    fn stop(mut self) {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: our own child.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let end = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < end, "vtep ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        };
        while self.log.recv_timeout(Duration::from_millis(200)).is_ok() {}
        assert!(status.success(), "vtep exit {status}");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `vtepctl --socket S ARGS --json`, which must succeed.
fn ctl(socket: &Path, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_vtepctl"))
        .arg("--socket")
        .arg(socket)
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "vtepctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn ping(ns: &str, dst: &str, count: u32, interval: &str) -> u32 {
    ping_report(ns, dst, count, interval, "1").0
}

fn flood_next_hop(socket: &Path, ip: &str) -> Option<Value> {
    let v = ctl(socket, &["vni", "show"]);
    v["vnis"][0]["flood"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["ip"] == ip)
        .map(|f| f["next_hop"].clone())
}

#[test]
fn vtepctl_on_a_live_vtep_against_the_kernel() {
    if let Some(why) = af_xdp_skip_reason() {
        eprintln!("SKIP: {why}");
        return;
    }
    let (ns, dir) = build();
    let (v, h, m) = (ns.get(2), ns.get(3), ns.get(4));
    let socket = dir.join("ctl.sock");
    let cfg = dir.join("vtep.toml");
    std::fs::write(&cfg, config(&socket)).unwrap();
    let daemon = Daemon::start(v, &cfg);

    // The kernel VTEP's MAC, found through the route and neighbour tables
    // of our namespace (the probe makes the kernel ARP for it).
    let end = Instant::now() + Duration::from_secs(10);
    let started = Instant::now();
    loop {
        if flood_next_hop(&socket, KERNEL_IP) == Some(Value::from(KERNEL_MAC)) {
            break;
        }
        assert!(Instant::now() < end, "next hop never resolved");
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("next hop resolved within {:?}", started.elapsed());

    wait_reachable(m, HOST_IP);
    assert_eq!(ping(m, HOST_IP, 20, "0.01"), 20, "VM -> host");
    assert_eq!(ping(h, VM_IP, 20, "0.01"), 20, "host -> VM");
    let fdb = ctl(&socket, &["fdb", "show", "--vni", "100"]);
    let host = fdb["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["mac"] == HOST_MAC)
        .unwrap_or_else(|| panic!("host not learned: {fdb}"))
        .clone();
    assert_eq!(host["remote"], KERNEL_IP, "{host}");
    assert_eq!(host["kind"], "learned");

    // Control changes for another VTEP while a ping stream runs: the
    // stream loses nothing.
    let stream = {
        let m = m.to_string();
        std::thread::spawn(move || ping(&m, HOST_IP, 300, "0.01"))
    };
    std::thread::sleep(Duration::from_millis(300));
    let r = ctl(&socket, &["remote", "add", "--vni", "100", GHOST_IP]);
    assert_eq!(r["flood"], serde_json::json!([KERNEL_IP, GHOST_IP]));
    ctl(
        &socket,
        &[
            "fdb",
            "add",
            "--vni",
            "100",
            "--mac",
            "02:00:00:65:00:99",
            "--remote",
            GHOST_IP,
        ],
    );
    // A broadcast from the VM (ARP for an address nobody has) is
    // replicated toward the ghost VTEP, whose next hop never resolves.
    let _ = ping(m, "10.101.0.77", 1, "0.2");
    let stats = ctl(&socket, &["stats"]);
    assert!(
        stats["total"]["drops"]["nexthop_unresolved"]
            .as_u64()
            .unwrap()
            >= 1,
        "{}",
        stats["total"]
    );
    assert_eq!(flood_next_hop(&socket, GHOST_IP), Some(Value::Null));
    ctl(
        &socket,
        &["fdb", "del", "--vni", "100", "--mac", "02:00:00:65:00:99"],
    );
    ctl(&socket, &["remote", "del", "--vni", "100", GHOST_IP]);
    assert_eq!(
        stream.join().unwrap(),
        300,
        "pings lost while the control plane changed"
    );

    // Taking the kernel VTEP off the flood list cuts the VNI off: what
    // was learned behind it is flushed and nothing floods there.
    let r = ctl(&socket, &["remote", "del", "--vni", "100", KERNEL_IP]);
    assert!(r["flushed"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(ping(m, HOST_IP, 5, "0.05"), 0, "VNI cut off");
    ctl(&socket, &["remote", "add", "--vni", "100", KERNEL_IP]);
    wait_reachable(m, HOST_IP);
    assert_eq!(ping(m, HOST_IP, 20, "0.01"), 20, "VNI back");

    let stats = ctl(&socket, &["stats"]);
    let vni = &stats["vnis"][0];
    assert_eq!(vni["vni"], 100);
    assert!(
        vni["total"]["from_overlay"].as_u64().unwrap() >= 360,
        "{vni}"
    );
    assert!(vni["total"]["to_remote"].as_u64().unwrap() >= 360, "{vni}");
    eprintln!("stats: {}", stats["total"]);
    daemon.stop();
    assert!(!socket.exists(), "control socket removed at exit");
}
