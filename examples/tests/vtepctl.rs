//! `vtepctl` against a real `vtep` process (pcap ports, `--serve`): FDB
//! and flood-list changes made over the control socket change where the
//! next replay of the same tenant frames is encapsulated to; `fdb show`,
//! `vni show` and `stats` report what happened; bad requests fail with a
//! clear message and a nonzero status; the socket goes away with the
//! daemon.

use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};

use serde_json::Value;
use vxlan_core::encap::{EncapConfig, EncapTemplate};
use vxlan_core::frame::{BufFrame, Frame};
use vxlan_core::testutil::write_inner_frame;
use vxlan_core::tunnel::{parse_single, ParseConfig};
use vxlan_core::wire::{ArpOperation, ArpPacket, ArpRepr, EtherType, L2Header, MacAddr};
use vxlan_pmd::pcap::{read_file, PcapWriter};

const VM: MacAddr = MacAddr([2, 0, 0, 0, 0x0b, 1]);
const TARGET: MacAddr = MacAddr([2, 0, 0, 0, 0x7a, 7]);
const FAR: MacAddr = MacAddr([2, 0, 0, 0, 0xcc, 1]);

fn config(dir: &Path) -> String {
    format!(
        r#"
[vtep]
local_ip = "192.0.2.2"
mac = "02:00:00:00:00:02"
workers = 2
control_socket = "{}"

[underlay]
port = "uplink"
gateway_mac = "02:00:00:00:00:01"

[[port]]
name = "uplink"
kind = "pcap"
rx = "uplink-in.pcap"
tx = "uplink-out.pcap"

[[port]]
name = "vm1"
kind = "pcap"
rx = "vm1-in.pcap"
tx = "vm1-out.pcap"
access = {{ vni = 100 }}

[[port]]
name = "trunk"
kind = "pcap"
tx = "trunk-out.pcap"
access = {{ vlans = [[10, 100], [20, 200]] }}

[[vni]]
id = 100
flood = ["192.0.2.1"]

[[vni]]
id = 200
group = "239.1.1.200"
"#,
        dir.join("ctl.sock").display()
    )
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vtepctl-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write_pcap(path: &Path, frames: &[(u64, Vec<u8>)]) {
    let mut w = PcapWriter::new(std::fs::File::create(path).unwrap()).unwrap();
    for (ts, f) in frames {
        w.write_packet(*ts, f).unwrap();
    }
    w.into_inner().unwrap();
}

fn arp_broadcast(src: MacAddr) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    L2Header::untagged(src, MacAddr::BROADCAST, EtherType::ARP).emit(&mut f);
    ArpRepr {
        operation: ArpOperation::Request,
        sender_mac: src,
        sender_ip: [10, 0, 0, 11].into(),
        target_mac: MacAddr::ZERO,
        target_ip: [10, 0, 0, 99].into(),
    }
    .emit(&mut ArpPacket::new_unchecked(&mut f[14..]));
    f
}

fn unicast(dst: MacAddr, src: MacAddr, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    write_inner_frame(&mut f, src, dst, &[], len);
    f
}

/// The daemon, killed (and its directory removed) if the test fails.
struct Daemon {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    dir: PathBuf,
}

impl Daemon {
    fn line(&mut self) -> String {
        let mut l = String::new();
        self.stdout.read_line(&mut l).unwrap();
        l.trim().to_string()
    }

    fn replay(&mut self) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(b"replay\n").unwrap();
        stdin.flush().unwrap();
        assert_eq!(self.line(), "replayed 3");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ctl(socket: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vtepctl"))
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .unwrap()
}

/// Runs a command that must succeed with `--json` and returns its result.
fn ctl_json(socket: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = ctl(socket, &all);
    assert!(
        out.status.success(),
        "vtepctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs a command that must fail with `code`; returns its stderr.
fn ctl_fails(socket: &Path, args: &[&str], code: i32) -> String {
    let out = ctl(socket, args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "vtepctl {args:?} should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The outer destination of every encapsulated frame in `path`, from
/// frame `from` on, with the inner frame.
fn encapsulated(path: &Path, from: usize) -> Vec<(IpAddr, Vec<u8>)> {
    read_file(path).unwrap()[from..]
        .iter()
        .map(|p| {
            let one = parse_single(&p.data, &ParseConfig::default())
                .unwrap()
                .unwrap();
            assert_eq!(one.vni(), 100);
            (one.layer().dst_addr(), one.inner().bytes().to_vec())
        })
        .collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn vtepctl_changes_forwarding_of_a_running_vtep() {
    let dir = tmpdir("e2e");
    std::fs::write(dir.join("vtep.toml"), config(&dir)).unwrap();
    let socket = dir.join("ctl.sock");
    let t0 = 1_700_000_000_000_000u64;
    let arp = arp_broadcast(VM);
    let to_target = unicast(TARGET, VM, 100);
    write_pcap(
        &dir.join("vm1-in.pcap"),
        &[(t0, arp.clone()), (t0 + 1000, to_target.clone())],
    );
    // From 192.0.2.1, after the VM spoke: a frame for the VM from FAR.
    let from_one = EncapTemplate::new(&EncapConfig::new(
        ip("192.0.2.1"),
        ip("192.0.2.2"),
        MacAddr([2, 0, 0, 0, 0, 1]),
        MacAddr([2, 0, 0, 0, 0, 2]),
    ))
    .unwrap();
    let back = unicast(VM, FAR, 120);
    let mut f = BufFrame::with_data(vec![0u8; 512], 128, &back).unwrap();
    from_one.encap(&mut f, 100, 50000).unwrap();
    write_pcap(
        &dir.join("uplink-in.pcap"),
        &[(t0 + 2000, f.data().to_vec())],
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_vtep"))
        .arg("--config")
        .arg(dir.join("vtep.toml"))
        .arg("--serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut d = Daemon {
        child,
        stdin,
        stdout,
        dir: dir.clone(),
    };
    assert_eq!(d.line(), format!("serving {}", socket.display()));
    assert_eq!(d.line(), "replayed 3");
    let uplink = dir.join("uplink-out.pcap");

    // First replay: flood list [192.0.2.1]; the ARP and the unknown
    // unicast are both flooded to it.
    let sent = encapsulated(&uplink, 0);
    assert_eq!(
        sent,
        vec![
            (ip("192.0.2.1"), arp.clone()),
            (ip("192.0.2.1"), to_target.clone())
        ]
    );
    let fdb = ctl_json(&socket, &["fdb", "show"]);
    let entries = fdb["entries"].as_array().unwrap();
    let entry = |mac: MacAddr| {
        entries
            .iter()
            .find(|e| e["mac"] == mac.to_string())
            .cloned()
            .unwrap_or_else(|| panic!("{mac} not in {fdb}"))
    };
    assert_eq!(entry(VM)["port"], "vm1");
    assert_eq!(entry(VM)["kind"], "learned");
    assert_eq!(entry(FAR)["remote"], "192.0.2.1");
    assert_eq!(entries.len(), 2);
    let only_200 = ctl_json(&socket, &["fdb", "show", "--vni", "200"]);
    assert_eq!(only_200["entries"].as_array().unwrap().len(), 0);

    // Add a remote to VNI 100 and a static entry behind a third VTEP.
    let r = ctl_json(&socket, &["remote", "add", "--vni", "100", "192.0.2.9"]);
    assert_eq!(r["flood"], serde_json::json!(["192.0.2.1", "192.0.2.9"]));
    let r = ctl_json(
        &socket,
        &[
            "fdb",
            "add",
            "--vni",
            "100",
            "--mac",
            "02:00:00:00:7a:07",
            "--remote",
            "192.0.2.7",
        ],
    );
    assert_eq!(r["remote"], "192.0.2.7");
    let vnis = ctl_json(&socket, &["vni", "show"]);
    let v100 = &vnis["vnis"][0];
    assert_eq!(v100["vni"], 100);
    let flood: Vec<&str> = v100["flood"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["ip"].as_str().unwrap())
        .collect();
    assert_eq!(flood, ["192.0.2.1", "192.0.2.9"]);
    assert_eq!(v100["flood"][1]["next_hop"], "02:00:00:00:00:01");
    assert_eq!(vnis["vnis"][1]["group"], "239.1.1.200");
    let text = ctl(&socket, &["vni", "show"]);
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("192.0.2.9 via 02:00:00:00:00:01") && text.contains("trunk.20"),
        "{text}"
    );

    // Second replay: the ARP reaches both flood-list VTEPs, the unicast
    // goes only to the static entry's VTEP.
    d.replay();
    assert_eq!(
        encapsulated(&uplink, 2),
        vec![
            (ip("192.0.2.1"), arp.clone()),
            (ip("192.0.2.9"), arp.clone()),
            (ip("192.0.2.7"), to_target.clone()),
        ]
    );

    // Delete the static entry and 192.0.2.1 from the flood list: what was
    // learned behind 192.0.2.1 in VNI 100 goes with it.
    let r = ctl_json(
        &socket,
        &["fdb", "del", "--vni", "100", "--mac", "02:00:00:00:7a:07"],
    );
    assert_eq!(r["removed"], true);
    let r = ctl_json(&socket, &["remote", "del", "--vni", "100", "192.0.2.1"]);
    assert_eq!(r["flood"], serde_json::json!(["192.0.2.9"]));
    assert_eq!(r["flushed"], 1);
    let fdb = ctl_json(&socket, &["fdb", "show", "--vni", "100"]);
    let macs: Vec<&str> = fdb["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["mac"].as_str().unwrap())
        .collect();
    assert_eq!(macs, [VM.to_string()]);

    // Third replay: everything floods to 192.0.2.9 alone.
    d.replay();
    assert_eq!(
        encapsulated(&uplink, 5),
        vec![
            (ip("192.0.2.9"), arp.clone()),
            (ip("192.0.2.9"), to_target.clone())
        ]
    );
    // The frame from 192.0.2.1 still reached the VM each time.
    let delivered = read_file(dir.join("vm1-out.pcap")).unwrap();
    assert_eq!(delivered.len(), 3);
    assert!(delivered.iter().all(|p| p.data == back));

    // Counters: three frames per replay, seven encapsulations in VNI 100.
    let stats = ctl_json(&socket, &["stats"]);
    let total = &stats["total"];
    assert_eq!(total["rx"], 9);
    assert_eq!(total["tx_remote"], 7);
    // Local: the three decapsulated frames to the VM, and a copy of each of
    // the five flooded frames on the trunk (VLAN 10).
    assert_eq!(total["tx_local"], 8);
    assert_eq!(read_file(dir.join("trunk-out.pcap")).unwrap().len(), 5);
    assert_eq!(total["drops_total"], 0, "{total}");
    assert_eq!(total["drops"]["nexthop_unresolved"], 0);
    assert_eq!(stats["cores"].as_array().unwrap().len(), 2);
    assert_eq!(stats["cores"][0]["rx"], 9, "the replay runs on core 0");
    assert_eq!(stats["cores"][1]["rx"], 0);
    let v100 = &stats["vnis"][0];
    assert_eq!(v100["vni"], 100);
    assert_eq!(v100["total"]["from_access"], 6);
    assert_eq!(v100["total"]["from_overlay"], 3);
    assert_eq!(v100["total"]["to_remote"], 7);
    assert_eq!(v100["total"]["to_local"], 8);
    assert_eq!(v100["total"]["flooded"], 5);
    assert_eq!(stats["vnis"][1]["total"]["from_access"], 0);
    assert_eq!(stats["pool"]["in_use"], 0);
    let text = ctl(&socket, &["stats"]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("nexthop_unresolved"), "{text}");

    // Errors: clear, and a nonzero status (1 refused, 2 usage).
    let e = ctl_fails(&socket, &["remote", "add", "--vni", "300", "192.0.2.9"], 1);
    assert!(
        e.contains("unknown VNI 300: configured VNIs are 100, 200"),
        "{e}"
    );
    let e = ctl_fails(&socket, &["remote", "add", "--vni", "100", "192.0.2.9"], 1);
    assert!(e.contains("already on VNI 100's flood list"), "{e}");
    let e = ctl_fails(&socket, &["remote", "del", "--vni", "100", "192.0.2.1"], 1);
    assert!(
        e.contains("not on VNI 100's flood list (it holds: 192.0.2.9)"),
        "{e}"
    );
    let e = ctl_fails(
        &socket,
        &["remote", "add", "--vni", "100", "2001:db8::1"],
        1,
    );
    assert!(e.contains("not of the same family"), "{e}");
    let e = ctl_fails(
        &socket,
        &["fdb", "del", "--vni", "100", "--mac", "02:00:00:00:7a:07"],
        1,
    );
    assert!(
        e.contains("no FDB entry for 02:00:00:00:7a:07 in VNI 100"),
        "{e}"
    );
    let e = ctl_fails(
        &socket,
        &[
            "fdb",
            "add",
            "--vni",
            "200",
            "--mac",
            "02:00:00:00:7a:08",
            "--port",
            "vm1",
        ],
        1,
    );
    assert!(e.contains("port 'vm1' does not carry VNI 200"), "{e}");
    let e = ctl_fails(
        &socket,
        &["fdb", "add", "--vni", "100", "--mac", "zz", "--port", "vm1"],
        1,
    );
    assert!(e.contains("'zz' is not a MAC address"), "{e}");
    let e = ctl_fails(&socket, &["fdb", "frob"], 2);
    assert!(e.contains("unknown command 'fdb frob'"), "{e}");
    let e = ctl_fails(
        &socket,
        &["fdb", "add", "--vni", "100", "--mac", "02:00:00:00:7a:08"],
        2,
    );
    assert!(
        e.contains("exactly one of --remote IP or --port NAME"),
        "{e}"
    );
    let e = ctl_fails(&socket, &["remote", "add", "--vni", "x", "192.0.2.5"], 2);
    assert!(e.contains("--vni x: not a VNI number"), "{e}");
    let e = ctl_fails(&dir.join("nope.sock"), &["stats"], 2);
    assert!(e.contains("cannot reach the vtep daemon"), "{e}");
    let out = ctl(&socket, &["fdb", "show", "--vni", "7", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["error"].as_str().unwrap().contains("unknown VNI 7"),
        "{v}"
    );
    // A static entry on a trunk port gets the VLAN of its VNI.
    let r = ctl_json(
        &socket,
        &[
            "fdb",
            "add",
            "--vni",
            "200",
            "--mac",
            "02:00:00:00:7a:08",
            "--port",
            "trunk",
        ],
    );
    assert_eq!(
        (r["port"].as_str(), r["vlan"].as_u64()),
        (Some("trunk"), Some(20))
    );

    // Closing stdin stops the daemon, which removes its socket.
    drop(d.stdin.take());
    let status = d.child.wait().unwrap();
    assert!(status.success());
    assert!(!socket.exists(), "socket file removed");
}
