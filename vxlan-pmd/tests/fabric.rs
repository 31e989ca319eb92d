//! An in-process fabric: three VTEPs on three routed underlay subnets,
//! hosts on access and trunk ports, all driven through
//! `VtepWorker::process`. The underlay delivers each encapsulated frame to
//! the VTEP that owns its outer destination address, as a routed network
//! would. Checks unicast both ways, flooding to exactly the flood list,
//! learning, ageing, a host moving between VTEPs announced by GARP and by
//! RARP, ARP and ND suppression, a trunk with two VLANs on two VNIs,
//! VLAN-only bridging, and that every buffer returns to its pool.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use vxlan_core::bridge::{BdConfig, PortMode};
use vxlan_core::decap::DecapConfig;
use vxlan_core::encap::{EncapConfig, EncapTemplate};
use vxlan_core::fdb::{Location, NoEvents};
use vxlan_core::frame::Frame;
use vxlan_core::tunnel::{parse_single, ParseConfig};
use vxlan_core::wire::{
    ArpOperation, ArpPacket, ArpRepr, EtherType, Icmpv6Packet, Icmpv6Repr, IpPair, IpProtocol,
    Ipv6Packet, Ipv6Repr, L2Header, MacAddr, NdpFlags, VlanTagRepr,
};
use vxlan_pmd::pool::{PktBuf, Pool};
use vxlan_pmd::vtep::{Output, RemoteVtep, Sizing, Snapshot, VtepShared, VtepWorker};

const UNDERLAY: u16 = 0;
const ACCESS: u16 = 1;
const TRUNK: u16 = 2;
const ACCESS2: u16 = 3;

fn vtep_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, u8::try_from(i).unwrap() + 1, 0, 1))
}

fn host(i: u8) -> MacAddr {
    MacAddr([0x02, 0x42, 0, 0, 0, i])
}

fn host_ip(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(172, 16, 0, i)
}

#[derive(Default)]
struct Collect(Vec<(u16, PktBuf)>);

impl Output for Collect {
    fn send(&mut self, port: u16, pkt: PktBuf) {
        self.0.push((port, pkt));
    }
}

struct Fabric {
    pool: Arc<Pool>,
    vteps: Vec<Arc<VtepShared>>,
    workers: Vec<VtepWorker>,
    /// Frames delivered to hosts: (vtep, port, bytes).
    delivered: Vec<(usize, u16, Vec<u8>)>,
    underlay_frames: usize,
    /// Frames a VTEP sent into the overlay while processing a frame that
    /// came from it: must stay 0 (split horizon).
    reflected: usize,
}

/// Three VTEPs. Port 0 underlay, 1 access VNI 100, 2 trunk (VLAN 10 -> VNI
/// 100, VLAN 20 -> VNI 200), 3 access VNI 100. Each VNI floods to the other
/// two VTEPs.
fn fabric(vlan_only: bool) -> Fabric {
    let pool = Pool::new(512, 2048, 128).unwrap();
    let mut vteps = Vec::new();
    for me in 0..3 {
        let others: Vec<usize> = (0..3).filter(|&o| o != me).collect();
        let remotes: Vec<RemoteVtep> = others
            .iter()
            .map(|&o| RemoteVtep {
                ip: vtep_ip(o),
                template: EncapTemplate::new(&EncapConfig::new(
                    vtep_ip(me),
                    vtep_ip(o),
                    MacAddr([2, 0xaa, 0, 0, 0, u8::try_from(me).unwrap()]),
                    MacAddr([2, 0xee, 0, 0, 0, 1]), // the router
                ))
                .unwrap(),
            })
            .collect();
        let flood: &[u32] = if vlan_only { &[] } else { &[0, 1] };
        let snap = Snapshot {
            ports: vec![
                if vlan_only {
                    PortMode::trunk(&[(10, 0), (20, 1)]).unwrap()
                } else {
                    PortMode::Underlay
                },
                PortMode::access(0),
                PortMode::trunk(&[(10, 0), (20, 1)]).unwrap(),
                PortMode::access(0),
            ],
            bds: vec![BdConfig::new(100, flood), BdConfig::new(200, flood)],
            remotes,
            decap: DecapConfig::new(vtep_ip(me)),
            underlay: if vlan_only { None } else { Some(UNDERLAY) },
            suppress_arp_nd: true,
        };
        let shared = VtepShared::new(
            snap,
            Arc::clone(&pool),
            Sizing {
                fdb_entries: 1024,
                neighbors: 256,
                workers: 1,
                ageing: 300,
            },
        )
        .unwrap();
        vteps.push(shared);
    }
    let workers = vteps.iter().map(|v| v.worker(0)).collect();
    Fabric {
        pool,
        vteps,
        workers,
        delivered: Vec::new(),
        underlay_frames: 0,
        reflected: 0,
    }
}

impl Fabric {
    /// Injects `frame` from a host on `(vtep, port)` and runs the fabric
    /// until no frame is in flight.
    fn send(&mut self, vtep: usize, port: u16, frame: &[u8]) {
        let mut queue: VecDeque<(usize, u16, PktBuf)> = VecDeque::new();
        queue.push_back((vtep, port, self.pool.alloc_with(frame).unwrap()));
        while let Some((v, p, pkt)) = queue.pop_front() {
            let mut out = Collect::default();
            self.workers[v].process(p, pkt, &mut out);
            for (op, pkt) in out.0 {
                let underlay = self.vteps[v].snapshot().underlay;
                if Some(op) == underlay {
                    self.underlay_frames += 1;
                    if Some(p) == underlay {
                        self.reflected += 1;
                    }
                    // Route on the outer destination address.
                    let dst = parse_single(pkt.data(), &ParseConfig::default())
                        .unwrap()
                        .unwrap()
                        .layer()
                        .dst_addr();
                    let to = (0..3)
                        .find(|&i| vtep_ip(i) == dst)
                        .expect("routed to a VTEP");
                    queue.push_back((to, UNDERLAY, pkt));
                } else if self.vteps[v].snapshot().underlay.is_none() && op == UNDERLAY {
                    // VLAN-only: port 0 is a trunk to a shared L2 fabric
                    // that reaches the other two switches' port 0.
                    for to in (0..3).filter(|&i| i != v) {
                        queue.push_back((to, UNDERLAY, self.pool.alloc_copy(&pkt).unwrap()));
                    }
                } else {
                    self.delivered.push((v, op, pkt.data().to_vec()));
                }
            }
        }
    }

    fn take(&mut self) -> Vec<(usize, u16, Vec<u8>)> {
        std::mem::take(&mut self.delivered)
    }

    fn at(&mut self, vtep: usize, port: u16) -> Vec<Vec<u8>> {
        self.take()
            .into_iter()
            .filter(|(v, p, _)| *v == vtep && *p == port)
            .map(|(_, _, f)| f)
            .collect()
    }

    fn location(&self, vtep: usize, bd: u16, mac: MacAddr) -> Option<Location> {
        self.vteps[vtep].fdb().lookup(bd, mac).map(|e| e.location)
    }
}

fn eth(
    dst: MacAddr,
    src: MacAddr,
    vid: Option<u16>,
    ethertype: EtherType,
    payload: &[u8],
) -> Vec<u8> {
    let mut l2 = L2Header::untagged(src, dst, ethertype);
    if let Some(v) = vid {
        l2.tags[0] = VlanTagRepr::dot1q(v);
        l2.tag_count = 1;
    }
    let mut f = vec![0u8; l2.header_len()];
    l2.emit(&mut f);
    f.extend_from_slice(payload);
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

fn arp(op: ArpOperation, smac: MacAddr, sip: Ipv4Addr, tip: Ipv4Addr, vid: Option<u16>) -> Vec<u8> {
    let mut p = [0u8; 28];
    ArpRepr {
        operation: op,
        sender_mac: smac,
        sender_ip: sip,
        target_mac: MacAddr::ZERO,
        target_ip: tip,
    }
    .emit(&mut ArpPacket::new_unchecked(&mut p[..]));
    eth(MacAddr::BROADCAST, smac, vid, EtherType::ARP, &p)
}

fn ipv4(dst: MacAddr, src: MacAddr, vid: Option<u16>) -> Vec<u8> {
    eth(dst, src, vid, EtherType::IPV4, &[0x45; 46])
}

#[test]
fn flood_learn_unicast_age() {
    let mut f = fabric(false);
    // h1 (VTEP 0, access) broadcasts an ARP request.
    f.send(
        0,
        ACCESS,
        &arp(ArpOperation::Request, host(1), host_ip(1), host_ip(2), None),
    );
    let got = f.take();
    // Exactly one copy on every other VNI-100 port of the fabric: VTEP 0's
    // second access port and trunk (VLAN 10), and the three VNI-100 ports
    // of VTEPs 1 and 2. Never back to h1, never on VNI 200.
    let mut places: Vec<(usize, u16)> = got.iter().map(|(v, p, _)| (*v, *p)).collect();
    places.sort_unstable();
    assert_eq!(
        places,
        [
            (0, TRUNK),
            (0, ACCESS2),
            (1, ACCESS),
            (1, TRUNK),
            (1, ACCESS2),
            (2, ACCESS),
            (2, TRUNK),
            (2, ACCESS2)
        ]
    );
    for (_, p, frame) in &got {
        let l2 = L2Header::parse(frame).unwrap();
        assert_eq!(
            l2.vids()[0],
            if *p == TRUNK { 10 } else { 0 },
            "VLAN 10 pushed on trunks only"
        );
        assert_eq!(l2.src_addr, host(1));
    }
    assert_eq!(
        f.underlay_frames, 2,
        "head-end replication: one copy per remote"
    );
    // Every VTEP learned h1: locally on VTEP 0, behind VTEP 0 elsewhere.
    assert_eq!(
        f.location(0, 0, host(1)),
        Some(Location::Local {
            port: ACCESS,
            vlan: 0
        })
    );
    assert_eq!(f.location(1, 0, host(1)), Some(Location::Remote(0)));
    assert_eq!(f.location(2, 0, host(1)), Some(Location::Remote(0)));
    // h2 (VTEP 1) answers with unicast: only h1 gets it, nothing floods.
    let flooded_before = f.vteps[1].stats().flooded;
    f.underlay_frames = 0;
    f.send(1, ACCESS, &ipv4(host(1), host(2), None));
    let got = f.take();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].0, got[0].1), (0, ACCESS));
    assert_eq!(f.underlay_frames, 1);
    assert_eq!(f.vteps[1].stats().flooded, flooded_before);
    // And back: h1 -> h2 is unicast to VTEP 1 only.
    f.send(0, ACCESS, &ipv4(host(2), host(1), None));
    assert_eq!(
        f.take()
            .iter()
            .map(|(v, p, _)| (*v, *p))
            .collect::<Vec<_>>(),
        [(1, ACCESS)]
    );
    // Ageing: 400 s later every learned entry is gone and traffic floods.
    for v in &f.vteps {
        v.set_now(400);
        while v.fdb().age_step(400, 1 << 16, &mut NoEvents).aged > 0 {}
    }
    assert_eq!(f.location(0, 0, host(2)), None);
    f.send(0, ACCESS, &ipv4(host(2), host(1), None));
    assert_eq!(f.take().len(), 8, "unknown unicast floods again");
    drop(f.workers);
    assert_eq!(f.pool.in_use(), 0, "every buffer back in the pool");
}

#[test]
fn host_moves_with_garp_then_rarp() {
    let mut f = fabric(false);
    // h1 on VTEP 0 and h2 on VTEP 1 talk; everybody learns h2 behind VTEP 1.
    f.send(
        1,
        ACCESS,
        &arp(ArpOperation::Request, host(2), host_ip(2), host_ip(2), None),
    );
    f.send(0, ACCESS, &ipv4(host(2), host(1), None));
    assert_eq!(f.at(1, ACCESS).len(), 1);
    assert_eq!(
        f.location(0, 0, host(2)),
        Some(Location::Remote(0)),
        "VTEP 0's remote 0 is VTEP 1"
    );
    // h2 live-migrates to VTEP 2 and its hypervisor sends a gratuitous ARP.
    f.send(
        2,
        ACCESS,
        &arp(ArpOperation::Request, host(2), host_ip(2), host_ip(2), None),
    );
    f.take();
    // VTEP 0 follows at once: h2 is behind VTEP 2 (VTEP 0's remote 1).
    assert_eq!(f.location(0, 0, host(2)), Some(Location::Remote(1)));
    assert_eq!(
        f.location(1, 0, host(2)),
        Some(Location::Remote(1)),
        "VTEP 1 learned it left"
    );
    f.send(0, ACCESS, &ipv4(host(2), host(1), None));
    let got = f.take();
    assert_eq!(
        got.iter().map(|(v, p, _)| (*v, *p)).collect::<Vec<_>>(),
        [(2, ACCESS)],
        "traffic follows at once"
    );
    // It moves back to VTEP 1, announced by a RARP (as QEMU does).
    let mut rarp = [0u8; 28];
    ArpRepr {
        operation: ArpOperation::ReverseRequest,
        sender_mac: host(2),
        sender_ip: Ipv4Addr::UNSPECIFIED,
        target_mac: host(2),
        target_ip: Ipv4Addr::UNSPECIFIED,
    }
    .emit(&mut ArpPacket::new_unchecked(&mut rarp[..]));
    f.send(
        1,
        ACCESS,
        &eth(MacAddr::BROADCAST, host(2), None, EtherType::RARP, &rarp),
    );
    f.take();
    assert_eq!(f.location(0, 0, host(2)), Some(Location::Remote(0)));
    f.send(0, ACCESS, &ipv4(host(2), host(1), None));
    assert_eq!(
        f.take()
            .iter()
            .map(|(v, p, _)| (*v, *p))
            .collect::<Vec<_>>(),
        [(1, ACCESS)]
    );
    drop(f.workers);
    assert_eq!(f.pool.in_use(), 0);
}

#[test]
fn trunk_vlans_map_to_vnis_and_never_mix() {
    let mut f = fabric(false);
    // A host on VTEP 0's trunk, VLAN 20 (VNI 200), broadcasts.
    f.send(0, TRUNK, &ipv4(MacAddr::BROADCAST, host(9), Some(20)));
    let got = f.take();
    let places: Vec<(usize, u16)> = got.iter().map(|(v, p, _)| (*v, *p)).collect();
    // VNI 200 exists only on the trunks (VLAN 20): VTEPs 1 and 2.
    assert_eq!(places, [(1, TRUNK), (2, TRUNK)]);
    for (_, _, frame) in &got {
        assert_eq!(L2Header::parse(frame).unwrap().vids()[0], 20);
    }
    // The same MAC on VLAN 10 is another host in another VNI: not learned
    // across, not delivered across.
    assert_eq!(f.location(1, 1, host(9)), Some(Location::Remote(0)));
    assert_eq!(f.location(1, 0, host(9)), None);
    f.send(1, ACCESS, &ipv4(host(9), host(3), None)); // VNI 100: unknown there
    let got = f.take();
    assert!(got
        .iter()
        .all(|(_, p, fr)| *p != TRUNK || L2Header::parse(fr).unwrap().vids()[0] == 10));
    drop(f.workers);
    assert_eq!(f.pool.in_use(), 0);
}

#[test]
fn arp_and_nd_suppression() {
    let mut f = fabric(false);
    // h2 on VTEP 1 announces 172.16.0.2 (snooped by VTEP 1, and by the
    // others from the decapsulated broadcast).
    f.send(
        1,
        ACCESS,
        &arp(ArpOperation::Request, host(2), host_ip(2), host_ip(2), None),
    );
    f.take();
    f.underlay_frames = 0;
    // h1 on VTEP 0 asks who has 172.16.0.2: answered by VTEP 0, not flooded.
    f.send(
        0,
        ACCESS,
        &arp(ArpOperation::Request, host(1), host_ip(1), host_ip(2), None),
    );
    let got = f.take();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].0, got[0].1), (0, ACCESS));
    let reply = ArpRepr::parse(&ArpPacket::new_checked(&got[0].2[14..]).unwrap()).unwrap();
    assert_eq!(
        (reply.operation, reply.sender_mac, reply.sender_ip),
        (ArpOperation::Reply, host(2), host_ip(2))
    );
    assert_eq!(f.underlay_frames, 0, "nothing crossed the overlay");
    assert_eq!(f.vteps[0].stats().suppressed, 1);

    // IPv6: h4 advertises itself on VTEP 0; h5 on VTEP 0 solicits it.
    let (a, b): (Ipv6Addr, Ipv6Addr) = ("fd00::4".parse().unwrap(), "fd00::5".parse().unwrap());
    let icmp6 =
        |src_mac: MacAddr, dst_mac: MacAddr, src: Ipv6Addr, dst: Ipv6Addr, r: Icmpv6Repr<'_>| {
            let mut p = vec![0u8; 40 + r.buffer_len()];
            let mut ip = Ipv6Repr::new(
                src,
                dst,
                IpProtocol::ICMPV6,
                u16::try_from(r.buffer_len()).unwrap(),
            );
            ip.hop_limit = 255;
            ip.emit(&mut Ipv6Packet::new_unchecked(&mut p[..]));
            r.emit(
                &mut Icmpv6Packet::new_unchecked(&mut p[40..]),
                &IpPair::V6(src, dst),
            );
            eth(dst_mac, src_mac, None, EtherType::IPV6, &p)
        };
    let na = Icmpv6Repr::NeighborAdvert {
        flags: NdpFlags::OVERRIDE,
        target: a,
        target_lladdr: Some(host(4)),
    };
    f.send(
        0,
        ACCESS2,
        &icmp6(
            host(4),
            MacAddr([0x33, 0x33, 0, 0, 0, 1]),
            a,
            "ff02::1".parse().unwrap(),
            na,
        ),
    );
    f.take();
    let ns = Icmpv6Repr::NeighborSolicit {
        target: a,
        source_lladdr: Some(host(5)),
    };
    f.send(
        0,
        ACCESS,
        &icmp6(
            host(5),
            MacAddr([0x33, 0x33, 0xff, 0, 0, 4]),
            b,
            "ff02::1:ff00:4".parse().unwrap(),
            ns,
        ),
    );
    let got = f.take();
    assert_eq!(got.len(), 1, "answered locally, not flooded");
    let ip = Ipv6Packet::new_checked(&got[0].2[14..]).unwrap();
    let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
    assert!(matches!(
        Icmpv6Repr::parse(&icmp, &IpPair::V6(ip.src_addr(), ip.dst_addr())).unwrap(),
        Icmpv6Repr::NeighborAdvert { target, target_lladdr: Some(m), .. } if target == a && m == host(4)
    ));
    drop(f.workers);
    assert_eq!(f.pool.in_use(), 0);
}

#[test]
fn vlan_only_bridging() {
    let mut f = fabric(true);
    // Three switches joined by trunks on port 0 (VLAN 10 and 20), no overlay.
    f.send(0, ACCESS, &ipv4(MacAddr::BROADCAST, host(1), None));
    let got = f.take();
    assert!(got.iter().any(|(v, p, _)| (*v, *p) == (1, ACCESS)));
    assert!(got.iter().any(|(v, p, _)| (*v, *p) == (2, ACCESS)));
    assert_eq!(f.underlay_frames, 0, "no VXLAN in VLAN-only mode");
    assert_eq!(
        f.location(1, 0, host(1)),
        Some(Location::Local { port: 0, vlan: 10 })
    );
    // The reply is unicast along the learned trunk.
    f.send(1, ACCESS, &ipv4(host(1), host(2), None));
    let got = f.take();
    assert_eq!(
        got.iter().map(|(v, p, _)| (*v, *p)).collect::<Vec<_>>(),
        [(0, ACCESS)]
    );
    drop(f.workers);
    assert_eq!(f.pool.in_use(), 0);
}

/// Which VNI a (port, VLAN) of the fabric's VTEPs belongs to.
fn vni_of(port: u16, vid: u16) -> Option<u32> {
    match (port, vid) {
        (ACCESS | ACCESS2, 0) => Some(100),
        (TRUNK, 10) => Some(100),
        (TRUNK, 20) => Some(200),
        _ => None,
    }
}

proptest::proptest! {
    // Under Miri (slow): a few cases.
    #![proptest_config(proptest::test_runner::Config { cases: if cfg!(miri) { 4 } else { 48 }, ..Default::default() })]
    /// Random traffic among random hosts in random VNIs, across the three
    /// VTEPs: a frame is only ever delivered to ports of its sender's VNI,
    /// and nothing received from the overlay is sent back into it.
    #[test]
    fn random_traffic_stays_in_its_vni(
        sends in proptest::collection::vec((0usize..3, 0u8..4, 0u8..12, 0u8..13), 1..60),
    ) {
        let mut f = fabric(false);
        // Hosts: (vtep, port, vid); the source MAC encodes the sender's VNI
        // (byte 4) so a delivery can be checked against it.
        let attach = [(ACCESS, 0u16), (ACCESS2, 0), (TRUNK, 10), (TRUNK, 20)];
        for (vtep, where_, src, dst) in sends {
            let (port, vid) = attach[usize::from(where_)];
            let vni = vni_of(port, vid).unwrap();
            let tag = u8::try_from(vni / 100).unwrap();
            let src_mac = MacAddr([0x02, 0x42, 0, tag, u8::try_from(vtep).unwrap(), src]);
            let dst_mac = if dst == 12 { MacAddr::BROADCAST } else { MacAddr([0x02, 0x42, 0, tag, 0, dst]) };
            f.send(vtep, port, &ipv4(dst_mac, src_mac, (vid != 0).then_some(vid)));
            for (v, p, frame) in f.take() {
                let l2 = L2Header::parse(&frame).unwrap();
                let got_vni = vni_of(p, l2.vids()[0]);
                proptest::prop_assert_eq!(got_vni, Some(vni), "delivered on VTEP {} port {} VLAN {}", v, p, l2.vids()[0]);
                proptest::prop_assert_eq!(l2.src_addr, src_mac);
            }
        }
        proptest::prop_assert_eq!(f.reflected, 0, "an overlay frame went back into the overlay");
        drop(f.workers);
        proptest::prop_assert_eq!(f.pool.in_use(), 0);
    }
}

/// Processes `frames` (ingress port, bytes) on VTEP 0 of a fresh fabric,
/// one at a time with `process`, or with `burst`, as `process_burst` over
/// runs of up to 32 consecutive frames from the same port (as the poll
/// loop hands them over). Returns everything sent, in order, the VTEP's
/// counters, its per-VNI counters, and where each test MAC is learned.
#[allow(clippy::type_complexity)]
fn run_on_vtep0(
    frames: &[(u16, Vec<u8>)],
    burst: bool,
) -> (
    Vec<(u16, Vec<u8>)>,
    vxlan_pmd::vtep::VtepStats,
    Vec<Vec<vxlan_pmd::vtep::BdStats>>,
    Vec<Option<Location>>,
) {
    let mut bursts = Vec::new();
    for run in frames.chunk_by(|a, b| a.0 == b.0) {
        for chunk in run.chunks(32) {
            let data = chunk.iter().map(|(_, d)| d.clone()).collect();
            bursts.push((chunk[0].0, 0, data));
        }
    }
    run_bursts_on_vtep0(&bursts, burst)
}

/// [`run_on_vtep0`] with the bursts given: (ingress port, clock, frames).
/// The clock is set before each burst (frame by frame: before its first
/// frame). With `burst`, each burst goes through one call, alternately
/// `process_burst` (a `Burst` of room for 128, so bursts above
/// `MAX_BURST` are split inside) and `process_all_with` over an iterator
/// (the DPDK loop's path).
#[allow(clippy::type_complexity)]
fn run_bursts_on_vtep0(
    bursts: &[(u16, u32, Vec<Vec<u8>>)],
    burst: bool,
) -> (
    Vec<(u16, Vec<u8>)>,
    vxlan_pmd::vtep::VtepStats,
    Vec<Vec<vxlan_pmd::vtep::BdStats>>,
    Vec<Option<Location>>,
) {
    let mut f = fabric(false);
    let mut out = Collect::default();
    let mut b = vxlan_pmd::port::Burst::with_capacity(128);
    // What was sent, as bytes: the buffers go back to the pool after each
    // burst.
    let mut sent = Vec::new();
    for (i, (port, now, frames)) in bursts.iter().enumerate() {
        f.vteps[0].set_now(*now);
        if !burst {
            for data in frames {
                let pkt = f.pool.alloc_with(data).unwrap();
                f.workers[0].process(*port, pkt, &mut out);
            }
        } else if i % 2 == 0 {
            for data in frames {
                b.push(f.pool.alloc_with(data).unwrap()).unwrap();
            }
            f.workers[0].process_burst(*port, &mut b, &mut out);
            assert!(b.is_empty());
        } else {
            let pkts: Vec<PktBuf> = frames
                .iter()
                .map(|d| f.pool.alloc_with(d).unwrap())
                .collect();
            let pool = Arc::clone(&f.pool);
            f.workers[0].process_all_with(*port, pkts.into_iter(), &pool, &mut out);
        }
        sent.extend(out.0.drain(..).map(|(p, pkt)| (p, pkt.data().to_vec())));
    }
    let mut learned = Vec::new();
    for bd in 0..2 {
        for tag in 0..3 {
            for i in 0..12 {
                learned.push(f.location(0, bd, MacAddr([0x02, 0x42, 0, tag, 9, i])));
            }
        }
    }
    (
        sent,
        f.vteps[0].stats(),
        f.vteps[0].bd_stats_per_core(),
        learned,
    )
}

/// The peer VTEP 1's template toward VTEP 0.
fn peer_of_vtep0() -> EncapTemplate {
    EncapTemplate::new(&EncapConfig::new(
        vtep_ip(1),
        vtep_ip(0),
        MacAddr([2, 0xaa, 0, 0, 0, 1]),
        MacAddr([2, 0xee, 0, 0, 0, 1]),
    ))
    .unwrap()
}

proptest::proptest! {
    // Under Miri (slow): a few cases.
    #![proptest_config(proptest::test_runner::Config { cases: if cfg!(miri) { 4 } else { 96 }, ..Default::default() })]
    /// Bursts in which frames learn, refresh and move MACs that later
    /// frames of the same burst are sent to (four MACs in one VNI, from
    /// both access ports, the trunk and the underlay, bursts of 1 to 80
    /// frames, the clock moving between bursts so that refreshes are
    /// due): burst processing, which looks a burst's sources and
    /// destinations up ahead, does exactly what `process` does frame by
    /// frame.
    #[test]
    fn bursts_that_learn_their_own_destinations_equal_frame_at_a_time(
        bursts in proptest::collection::vec(
            (
                0u16..4,
                0u32..3,
                proptest::collection::vec((0u8..4, 0u8..5, 0u8..8), 1..80),
            ),
            1..12,
        ),
    ) {
        let peer = peer_of_vtep0();
        let mut now = 1;
        let mut input = Vec::new();
        for (port, step, frames) in bursts {
            now += step;
            let mut data = Vec::new();
            for (src, dst, kind) in frames {
                let src_mac = MacAddr([0x02, 0x42, 0, 0, 9, src]);
                let dst_mac = if dst == 4 { MacAddr::BROADCAST } else { MacAddr([0x02, 0x42, 0, 0, 9, dst]) };
                // Now and then a frame that the ingress checks drop
                // (VLAN not carried, a multicast source, or for the
                // underlay an unknown VNI), between frames that pass.
                let bad = kind == 0;
                let src_mac = if bad && port == ACCESS { MacAddr([0x03, 0, 0, 0, 0, 1]) } else { src_mac };
                data.push(match port {
                    UNDERLAY => {
                        let inner = ipv4(dst_mac, src_mac, None);
                        let mut f = vxlan_core::frame::BufFrame::with_data(vec![0u8; 512], 128, &inner).unwrap();
                        peer.encap_flow(&mut f, if bad { 300 } else { 100 }).unwrap();
                        f.data().to_vec()
                    }
                    TRUNK => ipv4(dst_mac, src_mac, Some(if bad { 30 } else { 10 })),
                    _ => ipv4(dst_mac, src_mac, None),
                });
            }
            input.push((port, now, data));
        }
        let one = run_bursts_on_vtep0(&input, false);
        let burst = run_bursts_on_vtep0(&input, true);
        proptest::prop_assert_eq!(&one.0, &burst.0);
        proptest::prop_assert_eq!(one.1, burst.1);
        proptest::prop_assert_eq!(&one.2, &burst.2);
        proptest::prop_assert_eq!(&one.3, &burst.3);
        let total: usize = input.iter().map(|b| b.2.len()).sum();
        proptest::prop_assert_eq!(one.1.rx, total as u64);
    }
}

proptest::proptest! {
    // Under Miri (slow): a few cases.
    #![proptest_config(proptest::test_runner::Config { cases: if cfg!(miri) { 4 } else { 64 }, ..Default::default() })]
    /// `process_burst` (the poll loop's path) does exactly what `process`
    /// does frame by frame: the same frames out, in the same order, the
    /// same counters and the same FDB, for random traffic from access,
    /// trunk and underlay ports (known and unknown VNIs and VLANs, unicast
    /// and broadcast, learned and unknown destinations, and junk).
    #[test]
    fn burst_processing_equals_frame_at_a_time(
        sends in proptest::collection::vec(
            (0u16..4, 0u8..3, 0u8..12, 0u8..13, proptest::collection::vec(proptest::num::u8::ANY, 0..80)),
            1..120,
        ),
    ) {
        let peer = peer_of_vtep0();
        let mut frames = Vec::new();
        for (port, tag, src, dst, junk) in sends {
            // Tag 0 and 1: VNI 100 and 200 (VLAN 10 and 20 on the trunk);
            // tag 2: a VNI / VLAN nobody configured.
            let src_mac = MacAddr([0x02, 0x42, 0, tag, 9, src]);
            let dst_mac = if dst == 12 { MacAddr::BROADCAST } else { MacAddr([0x02, 0x42, 0, tag, 9, dst]) };
            let data = match port {
                UNDERLAY => {
                    if src == 11 {
                        junk
                    } else {
                        let inner = ipv4(dst_mac, src_mac, None);
                        let mut f = vxlan_core::frame::BufFrame::with_data(vec![0u8; 512], 128, &inner).unwrap();
                        peer.encap_flow(&mut f, [100, 200, 300][usize::from(tag)]).unwrap();
                        f.data().to_vec()
                    }
                }
                TRUNK => ipv4(dst_mac, src_mac, Some([10, 20, 30][usize::from(tag)])),
                _ if src == 11 => junk,
                _ => ipv4(dst_mac, src_mac, None),
            };
            frames.push((port, data));
        }
        let one = run_on_vtep0(&frames, false);
        let burst = run_on_vtep0(&frames, true);
        proptest::prop_assert_eq!(&one.0, &burst.0);
        proptest::prop_assert_eq!(one.1, burst.1);
        proptest::prop_assert_eq!(&one.2, &burst.2);
        proptest::prop_assert_eq!(&one.3, &burst.3);
        proptest::prop_assert_eq!(one.1.rx, frames.len() as u64);
    }
}
