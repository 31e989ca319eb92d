//! What we emit is what a trusted dissector expects: encapsulated frames
//! (IPv4 and IPv6 underlays, several VNIs, GPE and GBP, several inner
//! protocols) and path-MTU replies go to a pcap, and tshark, with IP and
//! UDP checksum validation on, must decode every field as we meant it and
//! raise no expert warning or error. Skips when tshark is not installed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;

use vxlan_core::encap::{EncapConfig, EncapTemplate, TunnelKind, UdpChecksumMode};
use vxlan_core::frame::{BufFrame, Frame};
use vxlan_core::pmtu::too_big_reply;
use vxlan_core::testutil::write_inner_frame;
use vxlan_core::wire::{
    ArpOperation, ArpPacket, ArpRepr, EtherType, Icmpv4Packet, Icmpv4Repr, Icmpv6Packet,
    Icmpv6Repr, IpPair, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, L2Header, MacAddr,
};
use vxlan_pmd::pcap::PcapWriter;

const VM_A: MacAddr = MacAddr([0x02, 0, 0, 0, 0x0a, 0x01]);
const VM_B: MacAddr = MacAddr([0x02, 0, 0, 0, 0x0b, 0x02]);

fn tshark_available() -> bool {
    Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Inner frames of several kinds, each with valid checksums.
fn inner_frames() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    // ARP request.
    let mut arp = vec![0u8; 42];
    L2Header::untagged(VM_A, MacAddr::BROADCAST, EtherType::ARP).emit(&mut arp);
    ArpRepr {
        operation: ArpOperation::Request,
        sender_mac: VM_A,
        sender_ip: Ipv4Addr::new(10, 0, 0, 1),
        target_mac: MacAddr::ZERO,
        target_ip: Ipv4Addr::new(10, 0, 0, 2),
    }
    .emit(&mut ArpPacket::new_unchecked(&mut arp[14..]));
    out.push(("arp", arp));
    // IPv4 UDP (zero UDP checksum is valid over IPv4), 1400 bytes.
    let mut udp = vec![0u8; 1400];
    write_inner_frame(&mut udp, VM_A, VM_B, &[], 1400);
    out.push(("udp", udp));
    // IPv4 ICMP echo request.
    let payload = [0x5au8; 56];
    let echo = Icmpv4Repr::EchoRequest {
        ident: 7,
        seq_no: 1,
        data: &payload,
    };
    let mut ping = vec![0u8; 14 + 20 + echo.buffer_len()];
    L2Header::untagged(VM_A, VM_B, EtherType::IPV4).emit(&mut ping);
    let ip = Ipv4Repr::new(
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::new(10, 0, 0, 2),
        IpProtocol::ICMP,
        u16::try_from(echo.buffer_len()).unwrap(),
    );
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut ping[14..]));
    echo.emit(&mut Icmpv4Packet::new_unchecked(&mut ping[34..]));
    out.push(("icmp", ping));
    // IPv6 neighbour solicitation (hop limit 255, solicited-node address).
    let ns = Icmpv6Repr::NeighborSolicit {
        target: "2001:db8::b".parse().unwrap(),
        source_lladdr: Some(VM_A),
    };
    let src: Ipv6Addr = "2001:db8::a".parse().unwrap();
    let dst: Ipv6Addr = "ff02::1:ff00:b".parse().unwrap();
    let mut nd = vec![0u8; 14 + 40 + ns.buffer_len()];
    L2Header::untagged(
        VM_A,
        MacAddr([0x33, 0x33, 0xff, 0, 0, 0x0b]),
        EtherType::IPV6,
    )
    .emit(&mut nd);
    let mut r6 = Ipv6Repr::new(
        src,
        dst,
        IpProtocol::ICMPV6,
        u16::try_from(ns.buffer_len()).unwrap(),
    );
    r6.hop_limit = 255;
    r6.emit(&mut Ipv6Packet::new_unchecked(&mut nd[14..]));
    ns.emit(
        &mut Icmpv6Packet::new_unchecked(&mut nd[54..]),
        &IpPair::V6(src, dst),
    );
    out.push(("icmpv6", nd));
    out
}

struct Expect {
    frame: usize,
    ipv6: bool,
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    vni: u32,
    inner_src: MacAddr,
    udp_checksummed: bool,
}

#[test]
fn tshark_accepts_what_we_emit() {
    if !tshark_available() {
        eprintln!("SKIP: tshark not installed (apt-get install tshark)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("vxlan-tshark-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("emitted.pcap");
    let mut writer = PcapWriter::new(std::io::BufWriter::new(
        std::fs::File::create(&path).unwrap(),
    ))
    .unwrap();
    let mut expects = Vec::new();
    let mut n = 0usize;
    let underlays: [(IpAddr, IpAddr); 2] = [
        ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap()),
        (
            "2001:db8:1::1".parse().unwrap(),
            "2001:db8:2::2".parse().unwrap(),
        ),
    ];
    let kinds = [
        (TunnelKind::Vxlan, 4789u16),
        (TunnelKind::Gpe, 4790),
        (
            TunnelKind::Gbp {
                policy_id: 0x0102,
                dont_learn: false,
                policy_applied: true,
            },
            4789,
        ),
    ];
    for (local, remote) in underlays {
        for (k, (kind, dport)) in kinds.iter().enumerate() {
            for checksum in [UdpChecksumMode::Default, UdpChecksumMode::Compute] {
                let cfg = EncapConfig {
                    kind: *kind,
                    dst_port: *dport,
                    udp_checksum: checksum,
                    underlay_vlan: (k == 1).then_some(200),
                    ..EncapConfig::new(
                        local,
                        remote,
                        MacAddr([2, 0xaa, 0, 0, 0, 1]),
                        MacAddr([2, 0xaa, 0, 0, 0, 2]),
                    )
                };
                let t = EncapTemplate::new(&cfg).unwrap();
                for (i, (_, inner)) in inner_frames().into_iter().enumerate() {
                    let vni = 100 + 1000 * u32::try_from(k).unwrap() + u32::try_from(i).unwrap();
                    let sport = 49152 + u16::try_from(n).unwrap();
                    let mut storage = vec![0u8; 2048];
                    let mut f = BufFrame::with_data(&mut storage[..], 128, &inner).unwrap();
                    t.encap(&mut f, vni, sport).unwrap();
                    writer
                        .write_packet(1_700_000_000_000_000 + n as u64, f.data())
                        .unwrap();
                    n += 1;
                    expects.push(Expect {
                        frame: n,
                        ipv6: local.is_ipv6(),
                        src: local,
                        dst: remote,
                        sport,
                        dport: *dport,
                        vni,
                        inner_src: MacAddr::from_bytes(&inner[6..12]),
                        udp_checksummed: local.is_ipv6() || checksum == UdpChecksumMode::Compute,
                    });
                }
            }
        }
    }
    // Path-MTU replies, IPv4 and IPv6.
    let mut big = vec![0u8; 1600];
    write_inner_frame(&mut big, VM_A, VM_B, &[], 1600);
    let mut reply = vec![0u8; 2000];
    let len = too_big_reply(&big, 1450, &mut reply).unwrap();
    writer
        .write_packet(1_700_000_001_000_000, &reply[..len])
        .unwrap();
    let pmtu_v4 = n + 1;
    let mut big6 = vec![0u8; 1600];
    L2Header::untagged(VM_A, VM_B, EtherType::IPV6).emit(&mut big6);
    let r6 = Ipv6Repr::new(
        "2001:db8::a".parse().unwrap(),
        "2001:db8::b".parse().unwrap(),
        IpProtocol::UDP,
        1600 - 54,
    );
    r6.emit(&mut Ipv6Packet::new_unchecked(&mut big6[14..]));
    big6[54..56].copy_from_slice(&1234u16.to_be_bytes());
    big6[56..58].copy_from_slice(&80u16.to_be_bytes());
    big6[58..60].copy_from_slice(&(1600u16 - 54).to_be_bytes());
    let len6 = too_big_reply(&big6, 1430, &mut reply).unwrap();
    writer
        .write_packet(1_700_000_002_000_000, &reply[..len6])
        .unwrap();
    let pmtu_v6 = n + 2;
    writer.into_inner().unwrap();

    let fields = [
        "frame.number",
        "ip.src",
        "ip.dst",
        "ipv6.src",
        "ipv6.dst",
        "udp.srcport",
        "udp.dstport",
        "udp.checksum.status",
        "ip.checksum.status",
        "vxlan.vni",
        "eth.src",
        "icmp.type",
        "icmp.mtu",
        "icmpv6.type",
        "icmpv6.mtu",
        "_ws.expert.severity",
        "_ws.expert.message",
    ];
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(&path);
    cmd.args([
        "-o",
        "ip.check_checksum:TRUE",
        "-o",
        "udp.check_checksum:TRUE",
    ]);
    cmd.args([
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tshark failed: {stderr}");
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<Vec<Vec<String>>> = text
        .lines()
        .map(|l| {
            l.split('|')
                .map(|c| {
                    if c.is_empty() {
                        vec![]
                    } else {
                        c.split(',').map(String::from).collect()
                    }
                })
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), pmtu_v6, "every frame decoded");
    let col = |row: &Vec<Vec<String>>, name: &str| {
        row[fields.iter().position(|f| *f == name).unwrap()].clone()
    };
    for row in &rows {
        // No expert warnings or errors (severity >= 6291456).
        let sev = col(row, "_ws.expert.severity");
        let msgs = col(row, "_ws.expert.message");
        for s in &sev {
            assert!(
                s.parse::<u64>().unwrap() < 6_291_456,
                "frame {:?}: expert {:?} {:?}",
                col(row, "frame.number"),
                sev,
                msgs
            );
        }
    }
    for e in &expects {
        let row = &rows[e.frame - 1];
        let (s, d) = if e.ipv6 {
            ("ipv6.src", "ipv6.dst")
        } else {
            ("ip.src", "ip.dst")
        };
        assert_eq!(col(row, s)[0], e.src.to_string(), "frame {}", e.frame);
        assert_eq!(col(row, d)[0], e.dst.to_string());
        assert_eq!(col(row, "udp.srcport")[0], e.sport.to_string());
        assert_eq!(col(row, "udp.dstport")[0], e.dport.to_string());
        assert_eq!(
            col(row, "vxlan.vni")[0],
            e.vni.to_string(),
            "frame {}",
            e.frame
        );
        assert_eq!(col(row, "eth.src")[1], e.inner_src.to_string());
        // 1 = good, 3 = not present (a zero checksum over IPv4).
        let want = if e.udp_checksummed { "1" } else { "3" };
        assert_eq!(
            col(row, "udp.checksum.status")[0],
            want,
            "frame {} UDP checksum",
            e.frame
        );
        if !e.ipv6 {
            assert_eq!(
                col(row, "ip.checksum.status")[0],
                "1",
                "frame {} IPv4 checksum",
                e.frame
            );
        }
    }
    let v4 = &rows[pmtu_v4 - 1];
    assert_eq!(col(v4, "icmp.type")[0], "3");
    assert_eq!(col(v4, "icmp.mtu")[0], "1450");
    assert_eq!(col(v4, "ip.checksum.status")[0], "1");
    let v6 = &rows[pmtu_v6 - 1];
    assert_eq!(col(v6, "icmpv6.type")[0], "2");
    assert_eq!(col(v6, "icmpv6.mtu")[0], "1430");
    eprintln!(
        "tshark decoded {} frames we emitted with no expert warning",
        rows.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
