//! Conformance of the tunnel-stack parser against real captures from the
//! tcpdump, Suricata and Zeek test suites (`../shared/captures`), checked
//! against what their README and the tools' own expected-output files say.
//! Each test skips with a message when the captures are absent.

use std::net::IpAddr;

use vxlan_core::tunnel::{ParseConfig, ParseDrop, TunnelHeader, TunnelStack};
use vxlan_core::wire::{EtherType, GpeNextProtocol, MacAddr, ReservedBitsPolicy};
use vxlan_pmd::{captures, pcap};

fn load(name: &str) -> Option<Vec<pcap::Packet>> {
    let path = captures::path(name)?;
    Some(pcap::read_file(path).expect("capture reads"))
}

/// Outer (src, sport, dst, dport, vni) and inner (src MAC, dst MAC,
/// ethertype) per packet, read from a tcpdump `.out` file. Outer facts come
/// from lines with "VXLAN"; inner ones from lines that start with a MAC
/// address (tcpdump -e prints the inner Ethernet header on its own line).
#[derive(Debug, Default)]
struct TcpdumpFacts {
    outer: Vec<(IpAddr, u16, IpAddr, u16, u32)>,
    inner: Vec<(MacAddr, MacAddr, u16)>,
}

fn split_addr_port(s: &str) -> (IpAddr, u16) {
    let (a, p) = s.rsplit_once('.').expect("addr.port");
    (a.parse().expect("address"), p.parse().expect("port"))
}

fn tcpdump_facts(name: &str) -> Option<TcpdumpFacts> {
    let path = captures::path(name)?;
    let text = std::fs::read_to_string(path).unwrap();
    let mut facts = TcpdumpFacts::default();
    for line in text.lines() {
        if line.contains("VXLAN") {
            // "... A.p > B.q: [..] VXLAN..., vni N"
            // With -e the line also has "MAC > MAC,"; the endpoints are the
            // pair whose right side ends with ':'.
            let (src, dst) = line
                .match_indices(" > ")
                .find_map(|(at, _)| {
                    let src = line[..at].rsplit(' ').next()?;
                    let dst = line[at + 3..].split(' ').next()?.strip_suffix(':')?;
                    Some((src, dst))
                })
                .expect("endpoints");
            let vni = line
                .rsplit("vni ")
                .next()
                .unwrap()
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap();
            let (s, sp) = split_addr_port(src);
            let (d, dp) = split_addr_port(dst);
            facts.outer.push((s, sp, d, dp, vni.parse().unwrap()));
        } else if line.len() > 17 && line.as_bytes()[2] == b':' && line.as_bytes()[17] == b' ' {
            let src: MacAddr = line[..17].parse().unwrap();
            let dst: MacAddr = line[20..37].parse().unwrap();
            let et = line.split("(0x").nth(1).unwrap();
            facts
                .inner
                .push((src, dst, u16::from_str_radix(&et[..4], 16).unwrap()));
        }
    }
    Some(facts)
}

fn check_against_tcpdump(pcap_name: &str, out_name: &str, config: &ParseConfig) {
    let (Some(packets), Some(facts)) = (load(pcap_name), tcpdump_facts(out_name)) else {
        return;
    };
    assert_eq!(
        packets.len(),
        facts.outer.len(),
        "{pcap_name}: one VXLAN line per packet"
    );
    for (i, p) in packets.iter().enumerate() {
        let s = TunnelStack::parse(&p.data, config)
            .unwrap_or_else(|e| panic!("{pcap_name} #{}: {e}", i + 1));
        let l = s
            .layer(0)
            .unwrap_or_else(|| panic!("{pcap_name} #{}: not VXLAN", i + 1));
        let (src, sport, dst, dport, vni) = facts.outer[i];
        assert_eq!(
            (
                l.src_addr(),
                l.src_port(),
                l.dst_addr(),
                l.dst_port(),
                l.vni()
            ),
            (src, sport, dst, dport, vni)
        );
        if let Some(&(isrc, idst, et)) = facts.inner.get(i) {
            let inner = s.inner().unwrap();
            assert_eq!(
                (inner.src_addr(), inner.dst_addr(), inner.ethertype().0),
                (isrc, idst, et),
                "#{}",
                i + 1
            );
        }
    }
}

#[test]
fn tcpdump_vxlan() {
    let cfg = ParseConfig::default();
    check_against_tcpdump("tcpdump/vxlan.pcap", "tcpdump/vxlan.out", &cfg);
    // README: outer UDP checksum 0 on every packet.
    if let Some(packets) = load("tcpdump/vxlan.pcap") {
        assert_eq!(packets.len(), 10);
        for p in &packets {
            let s = TunnelStack::parse(&p.data, &cfg).unwrap();
            let udp = s.layer(0).unwrap().udp_offset();
            assert_eq!(&p.data[udp + 6..udp + 8], &[0, 0]);
        }
    }
}

#[test]
fn tcpdump_port_8472_only_when_configured() {
    let cfg = ParseConfig::default().with_vxlan_port(8472).unwrap();
    check_against_tcpdump(
        "tcpdump/vxlan_port_8472.pcap",
        "tcpdump/vxlan_port_8472.out",
        &cfg,
    );
    if let Some(packets) = load("tcpdump/vxlan_port_8472.pcap") {
        for p in &packets {
            assert!(!TunnelStack::parse(&p.data, &ParseConfig::default())
                .unwrap()
                .is_tunnel());
        }
    }
}

#[test]
fn tcpdump_gso_captures() {
    // Frames larger than any MTU and partial UDP checksums: the parser
    // must neither trip over the length nor verify the checksum.
    for (name, v6_outer, inner_et) in [
        ("gso-ipv4-vxlan-ipv4", false, EtherType::IPV4),
        ("gso-ipv4-vxlan-ipv6", false, EtherType::IPV6),
        ("gso-ipv6-vxlan-ipv4", true, EtherType::IPV4),
        ("gso-ipv6-vxlan-ipv6", true, EtherType::IPV6),
    ] {
        let pcap_name = format!("tcpdump/{name}.pcap");
        check_against_tcpdump(
            &pcap_name,
            &format!("tcpdump/{name}.out"),
            &ParseConfig::default(),
        );
        let Some(packets) = load(&pcap_name) else {
            return;
        };
        let s = TunnelStack::parse(&packets[0].data, &ParseConfig::default()).unwrap();
        assert_eq!(s.layer(0).unwrap().is_ipv6(), v6_outer, "{name}");
        assert_eq!(s.layer(0).unwrap().vni(), 5001);
        assert_eq!(s.inner().unwrap().ethertype(), inner_et, "{name}");
        assert!(packets[0].data.len() > 1514, "{name} is a GSO super-frame");
    }
}

#[test]
fn tcpdump_nsh_over_gpe() {
    let Some(packets) = load("tcpdump/nsh-over-vxlan-gpe.pcap") else {
        return;
    };
    let s = TunnelStack::parse(&packets[0].data, &ParseConfig::default()).unwrap();
    let l = s.layer(0).unwrap();
    assert_eq!(l.flags(), 0x0c);
    assert_eq!((l.src_port(), l.dst_port()), (4790, 4790));
    match l.header() {
        TunnelHeader::Gpe(g) => {
            assert_eq!(g.next_protocol, GpeNextProtocol::NSH);
            assert_eq!(g.vni, 0xff_ffff);
        }
        other => panic!("expected GPE, got {other:?}"),
    }
    assert!(s.inner().is_none(), "NSH follows, not Ethernet");
}

#[test]
fn suricata_decoder_01_plain_udp_is_not_vxlan() {
    let Some(packets) = load("suricata-verify/vxlan-decoder-01_input.pcap") else {
        return;
    };
    assert_eq!(packets.len(), 3);
    let cfg = ParseConfig::default();
    let s = TunnelStack::parse(&packets[0].data, &cfg).unwrap();
    assert_eq!(s.layer(0).unwrap().vni(), 37);
    assert_eq!(s.inner().unwrap().ethertype(), EtherType::IPV4);
    for p in &packets[1..] {
        assert!(!TunnelStack::parse(&p.data, &cfg).unwrap().is_tunnel());
    }
}

#[test]
fn suricata_decoder_03_aws_mirror() {
    let Some(packets) = load("suricata-verify/vxlan-decoder-03_vxlan.pcap") else {
        return;
    };
    assert_eq!(packets.len(), 100);
    let mut sports = std::collections::BTreeSet::new();
    for p in &packets {
        let s = TunnelStack::parse(&p.data, &ParseConfig::default()).unwrap();
        let l = s.layer(0).expect("every packet is VXLAN");
        assert_eq!(l.vni(), 5_569_041);
        assert_eq!(l.dst_port(), 4789);
        sports.insert(l.src_port());
    }
    assert!(sports.len() > 10, "many source ports: {}", sports.len());
}

#[test]
fn suricata_reserved_fields_ignore_vs_strict() {
    let Some(packets) = load("suricata-verify/vxlan-non-zero-reserved-fields_input.pcap") else {
        return;
    };
    assert_eq!(packets.len(), 10);
    let ignore = ParseConfig::default();
    let strict = ParseConfig::default().with_reserved_bits(ReservedBitsPolicy::Strict);
    for p in &packets {
        let s = TunnelStack::parse(&p.data, &ignore).unwrap();
        assert_eq!(s.layer(0).unwrap().vni(), 11);
        assert_eq!(s.layer(0).unwrap().flags(), 0xff);
        assert_eq!(
            TunnelStack::parse(&p.data, &strict).unwrap_err(),
            ParseDrop::ReservedBits
        );
    }
}

#[test]
fn suricata_arp_in_vxlan() {
    let Some(packets) = load("suricata-verify/arp_detect-arp-04-vxlan_vxlan-arp.pcap") else {
        return;
    };
    assert_eq!(packets.len(), 2);
    for p in &packets {
        let s = TunnelStack::parse(&p.data, &ParseConfig::default()).unwrap();
        assert_eq!(s.layer(0).unwrap().vni(), 100);
        assert_eq!(s.inner().unwrap().ethertype(), EtherType::ARP);
        let arp =
            vxlan_core::wire::ArpPacket::new_checked(&s.inner_frame().unwrap()[14..]).unwrap();
        vxlan_core::wire::ArpRepr::parse(&arp).unwrap();
    }
}

/// Zeek's vxlan.out lists, per VXLAN packet with IP inside, the outer
/// endpoints, the inner IP source/destination and the VNI.
#[test]
fn zeek_vxlan() {
    let (Some(packets), Some(out)) = (load("zeek/vxlan.pcap"), captures::path("zeek/vxlan.out"))
    else {
        return;
    };
    assert_eq!(packets.len(), 10);
    let expected: Vec<(IpAddr, u16, IpAddr, String, String, u32)> = std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("vxlan_packet"))
        .map(|l| {
            let field = |key: &str| {
                l.split(key)
                    .nth(1)
                    .unwrap()
                    .split([',', ']', '/'])
                    .next()
                    .unwrap()
                    .to_string()
            };
            let vni = l.rsplit(", ").next().unwrap().trim().parse().unwrap();
            (
                field("orig_h=").parse().unwrap(),
                field("orig_p=").parse().unwrap(),
                field("resp_h=").parse().unwrap(),
                field("src="),
                field("dst="),
                vni,
            )
        })
        .collect();
    let cfg = ParseConfig::default();
    let with_ip: Vec<_> = packets
        .iter()
        .map(|p| TunnelStack::parse(&p.data, &cfg).unwrap())
        .filter(|s| s.inner().unwrap().ethertype() == EtherType::IPV4)
        .collect();
    assert_eq!(with_ip.len(), expected.len());
    for (s, (oh, op, rh, isrc, idst, vni)) in with_ip.iter().zip(&expected) {
        let l = s.layer(0).unwrap();
        assert_eq!(
            (l.src_addr(), l.src_port(), l.dst_addr(), l.vni()),
            (*oh, *op, *rh, *vni)
        );
        let ip =
            vxlan_core::wire::Ipv4Packet::new_checked(&s.inner_frame().unwrap()[14..]).unwrap();
        assert_eq!(
            (ip.src_addr().to_string(), ip.dst_addr().to_string()),
            (isrc.clone(), idst.clone())
        );
    }
}

#[test]
fn zeek_http_igmp_and_bad_inner_checksum() {
    for (name, count, vni) in [
        ("zeek/vxlan-encapsulated-http.pcap", 12, 1),
        ("zeek/vxlan-encapsulated-igmp-v2.pcap", 3, 4242),
        ("zeek/vxlan-inner-tcp-bad-checksum.pcap", 1, 42),
    ] {
        let Some(packets) = load(name) else { return };
        assert_eq!(packets.len(), count, "{name}");
        for p in &packets {
            let s = TunnelStack::parse(&p.data, &ParseConfig::default()).unwrap();
            let l = s.layer(0).unwrap();
            assert_eq!(l.vni(), vni, "{name}");
            // README: the HTTP capture's outer UDP checksums are non-zero
            // and must verify.
            if name.contains("http") {
                let udp =
                    vxlan_core::wire::UdpPacket::new_checked(&p.data[l.udp_offset()..l.end()])
                        .unwrap();
                assert_ne!(udp.checksum(), 0);
                assert_eq!(
                    udp.checksum_status(&l.ips()),
                    vxlan_core::wire::udp::ChecksumStatus::Valid
                );
            }
        }
    }
}

#[test]
fn zeek_triple_nested() {
    let Some(packets) = load("zeek/vxlan-triple-v2.pcap") else {
        return;
    };
    let p = &packets[0].data;
    let deep = ParseConfig::default().with_max_depth(4).unwrap();
    let s = TunnelStack::parse(p, &deep).unwrap();
    assert_eq!(s.layers().map(|l| l.vni()).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(s.layers().all(|l| l.flags() == 0x0c));
    assert_eq!(
        s.layers()
            .map(|l| l.src_addr().to_string())
            .collect::<Vec<_>>(),
        ["1.1.1.1", "2.2.2.2", "3.3.3.3"]
    );
    assert_eq!(s.inner().unwrap().ethertype(), EtherType::IPV4);
    // One layer by default; strict mode refuses the GPE-style flags.
    assert_eq!(
        TunnelStack::parse(p, &ParseConfig::default())
            .unwrap()
            .depth(),
        1
    );
    let strict = deep.with_reserved_bits(ReservedBitsPolicy::Strict);
    assert_eq!(
        TunnelStack::parse(p, &strict).unwrap_err(),
        ParseDrop::ReservedBits
    );
}

/// Every capture, every packet: the outer Ethernet/IP/UDP fields we parse
/// equal what etherparse parses from the same bytes.
#[test]
fn etherparse_agrees_on_outer_headers() {
    let Some(dir) = captures::dir() else {
        eprintln!("SKIP: no captures");
        return;
    };
    let mut checked = 0;
    for sub in ["tcpdump", "suricata-verify", "zeek"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "pcap") {
                for p in pcap::read_file(&path).unwrap() {
                    let cfg = ParseConfig::default().with_vxlan_port(8472).unwrap();
                    if let Ok(s) = TunnelStack::parse(&p.data, &cfg) {
                        if let Some(l) = s.layer(0) {
                            cross_check(&p.data, &l);
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(checked > 150, "checked {checked} VXLAN packets");
}

/// Compares our view of the outer headers with etherparse's.
fn cross_check(frame: &[u8], l: &vxlan_core::tunnel::LayerView<'_>) {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    let sliced = SlicedPacket::from_ethernet(frame).expect("etherparse slices the outer headers");
    let Some(etherparse::LinkSlice::Ethernet2(eth)) = &sliced.link else {
        panic!("no ethernet")
    };
    assert_eq!(eth.source(), l.src_mac().0);
    assert_eq!(eth.destination(), l.dst_mac().0);
    let (src, dst): (IpAddr, IpAddr) = match &sliced.net {
        Some(NetSlice::Ipv4(v4)) => (
            v4.header().source_addr().into(),
            v4.header().destination_addr().into(),
        ),
        Some(NetSlice::Ipv6(v6)) => (
            v6.header().source_addr().into(),
            v6.header().destination_addr().into(),
        ),
        other => panic!("no IP: {other:?}"),
    };
    assert_eq!((src, dst), (l.src_addr(), l.dst_addr()));
    let Some(TransportSlice::Udp(udp)) = &sliced.transport else {
        panic!("no UDP")
    };
    assert_eq!(
        (udp.source_port(), udp.destination_port()),
        (l.src_port(), l.dst_port())
    );
    assert_eq!(usize::from(udp.length()), l.end() - l.udp_offset());
    let vlans: Vec<u16> = match sliced.vlan() {
        Some(etherparse::VlanSlice::SingleVlan(v)) => vec![v.vlan_identifier().value()],
        Some(etherparse::VlanSlice::DoubleVlan(d)) => {
            vec![
                d.outer.vlan_identifier().value(),
                d.inner.vlan_identifier().value(),
            ]
        }
        None => vec![],
    };
    assert_eq!(vlans, l.outer_vids());
}
