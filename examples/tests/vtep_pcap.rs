//! Pcap replay through the `vtep` daemon, with the configuration from the
//! issue: tenant frames in on `vm1`, encapsulated frames out of `uplink`
//! (checked field by field with our parser, and with tshark when it is
//! installed); encapsulated frames in on `uplink`, the inner frames out of
//! `vm1`; the JSON dump's counters and FDB; a bad configuration refused
//! with the key named.

use std::path::{Path, PathBuf};
use std::process::Command;

use vxlan_core::encap::{EncapConfig, EncapTemplate};
use vxlan_core::frame::{BufFrame, Frame};
use vxlan_core::testutil::write_inner_frame;
use vxlan_core::tunnel::{parse_single, ParseConfig};
use vxlan_core::wire::{ArpOperation, ArpPacket, ArpRepr, EtherType, L2Header, MacAddr};
use vxlan_pmd::pcap::{read_file, PcapWriter};

const CONFIG: &str = r#"
[vtep]
local_ip = "192.0.2.2"            # underlay address, IPv4 or IPv6
mac = "02:00:00:00:00:02"         # underlay source MAC
udp_port = 4789
reserved_bits = "ignore"
ageing_secs = 300
workers = 1

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
access = { vni = 100 }

[[vni]]
id = 100
flood = ["192.0.2.1", "192.0.2.3"]

[[fdb]]
vni = 100
mac = "02:00:00:00:aa:01"
remote = "192.0.2.1"
"#;

const VM: MacAddr = MacAddr([2, 0, 0, 0, 0x0b, 1]);
const STATIC: MacAddr = MacAddr([2, 0, 0, 0, 0xaa, 1]);
const FAR: MacAddr = MacAddr([2, 0, 0, 0, 0xcc, 3]);

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vtep-{name}-{}", std::process::id()));
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

#[test]
fn replay_encap_and_decap_through_the_daemon() {
    let dir = tmpdir("replay");
    std::fs::write(dir.join("vtep.toml"), CONFIG).unwrap();
    let t0 = 1_700_000_000_000_000u64;
    let tenant = [
        arp_broadcast(VM),
        unicast(STATIC, VM, 200),
        unicast(MacAddr([2, 0, 0, 0, 0xdd, 9]), VM, 90),
    ];
    write_pcap(
        &dir.join("vm1-in.pcap"),
        &tenant
            .iter()
            .enumerate()
            .map(|(i, f)| (t0 + i as u64 * 1000, f.clone()))
            .collect::<Vec<_>>(),
    );
    // From 192.0.2.3, after the VM spoke: a frame for the VM.
    let far = EncapTemplate::new(&EncapConfig::new(
        "192.0.2.3".parse().unwrap(),
        "192.0.2.2".parse().unwrap(),
        MacAddr([2, 0, 0, 0, 0, 3]),
        MacAddr([2, 0, 0, 0, 0, 2]),
    ))
    .unwrap();
    let inner_back = unicast(VM, FAR, 120);
    let mut f = BufFrame::with_data(vec![0u8; 512], 128, &inner_back).unwrap();
    far.encap(&mut f, 100, 55555).unwrap();
    write_pcap(
        &dir.join("uplink-in.pcap"),
        &[(t0 + 10_000, f.data().to_vec())],
    );

    let out = Command::new(env!("CARGO_BIN_EXE_vtep"))
        .args([
            "--config",
            dir.join("vtep.toml").to_str().unwrap(),
            "--dump-json",
            dir.join("dump.json").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "vtep failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Encapsulated: ARP to both flood-list VTEPs, the static MAC to
    // 192.0.2.1 only, the unknown unicast to both: five frames.
    let sent = read_file(dir.join("uplink-out.pcap")).unwrap();
    let expect: [(usize, &str); 5] = [
        (0, "192.0.2.1"),
        (0, "192.0.2.3"),
        (1, "192.0.2.1"),
        (2, "192.0.2.1"),
        (2, "192.0.2.3"),
    ];
    assert_eq!(sent.len(), expect.len());
    for (p, (which, dst)) in sent.iter().zip(expect) {
        let one = parse_single(&p.data, &ParseConfig::default())
            .unwrap()
            .unwrap();
        let l = one.layer();
        assert_eq!(l.src_addr().to_string(), "192.0.2.2");
        assert_eq!(l.dst_addr().to_string(), dst);
        assert_eq!((l.dst_port(), one.vni()), (4789, 100));
        assert!((49152..=65535).contains(&l.src_port()));
        assert_eq!(
            l.dst_mac(),
            MacAddr([2, 0, 0, 0, 0, 1]),
            "next hop is the gateway"
        );
        assert_eq!(l.src_mac(), MacAddr([2, 0, 0, 0, 0, 2]));
        assert_eq!(one.inner().bytes(), &tenant[which][..]);
    }
    // Decapsulated: the inner frame, byte for byte.
    let delivered = read_file(dir.join("vm1-out.pcap")).unwrap();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].data, inner_back);

    let dump: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("dump.json")).unwrap()).unwrap();
    let c = &dump["counters"];
    assert_eq!(c["rx"], 4);
    assert_eq!(c["tx_remote"], 5);
    assert_eq!(c["tx_local"], 1);
    assert!(
        c["drops"].as_object().unwrap().values().all(|v| v == 0),
        "no drops: {}",
        c["drops"]
    );
    assert_eq!(dump["pool"]["in_use"], 0, "every buffer back in the pool");
    let fdb = dump["fdb"].as_array().unwrap();
    let find = |mac: MacAddr| {
        fdb.iter()
            .find(|e| e["mac"] == mac.to_string())
            .cloned()
            .unwrap()
    };
    assert_eq!(find(VM)["location"]["port"], "vm1");
    assert_eq!(find(FAR)["location"]["remote"], "192.0.2.3");
    assert_eq!(find(STATIC)["kind"], "static");

    // tshark agrees on the outer and inner fields, checksums included.
    if Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let o = Command::new("tshark")
            .arg("-r")
            .arg(dir.join("uplink-out.pcap"))
            .args([
                "-o",
                "ip.check_checksum:TRUE",
                "-T",
                "fields",
                "-E",
                "separator=|",
                "-E",
                "occurrence=f",
            ])
            .args([
                "-e",
                "ip.src",
                "-e",
                "ip.dst",
                "-e",
                "udp.dstport",
                "-e",
                "vxlan.vni",
                "-e",
                "ip.checksum.status",
            ])
            .args(["-e", "_ws.expert.severity"])
            .output()
            .unwrap();
        let text = String::from_utf8(o.stdout).unwrap();
        let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('|').collect()).collect();
        assert_eq!(rows.len(), 5);
        for (row, (_, dst)) in rows.iter().zip(expect) {
            assert_eq!(&row[..5], &["192.0.2.2", dst, "4789", "100", "1"]);
            assert!(
                row[5].is_empty() || row[5].parse::<u64>().unwrap() < 6_291_456,
                "expert warning: {row:?}"
            );
        }
    } else {
        eprintln!("SKIP (tshark part): tshark not installed");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_configs_are_refused_with_the_key() {
    let dir = tmpdir("bad");
    for (edit, key) in [
        (
            CONFIG.replace("access = { vni = 100 }", "access = { vni = 300 }"),
            "port[1].access.vni",
        ),
        (
            CONFIG.replace("port = \"uplink\"", "port = \"uplnk\""),
            "underlay.port",
        ),
        (
            CONFIG.replace("gateway_mac = \"02:00:00:00:00:01\"", ""),
            "underlay.gateway_mac",
        ),
        (CONFIG.replace("workers = 1", "wrkers = 1"), "wrkers"),
    ] {
        std::fs::write(dir.join("vtep.toml"), edit).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_vtep"))
            .args(["--config", dir.join("vtep.toml").to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "expected {key} in: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
