//! Cross-check: on generated VXLAN frames (IPv4 and IPv6 underlays, zero to
//! two outer VLAN tags, any ports and VNIs), the outer Ethernet/IP/UDP
//! fields our parser reports equal what etherparse parses from the same
//! bytes, and the inner frame starts where etherparse's UDP payload plus
//! the 8-byte VXLAN header says.

use std::net::IpAddr;

use etherparse::{NetSlice, SlicedPacket, TransportSlice, VlanSlice};
use proptest::prelude::*;
use vxlan_core::testutil::{write_vxlan_frame, FrameSpec};
use vxlan_core::tunnel::{ParseConfig, TunnelStack};
use vxlan_core::wire::MacAddr;

proptest! {
    #[test]
    fn outer_headers_match_etherparse(
        ipv6 in any::<bool>(),
        outer_vids in proptest::collection::vec(1u16..4095, 0..=2),
        inner_vids in proptest::collection::vec(1u16..4095, 0..=2),
        sport in 1u16..,
        vni in 0u32..0x100_0000,
        inner_len in 60usize..1500,
        src in any::<[u8; 6]>(),
    ) {
        let spec = FrameSpec {
            ipv6,
            outer_vids: &outer_vids,
            inner_vids: &inner_vids,
            sport,
            vni,
            inner_len,
            inner_src: MacAddr(src),
            ..FrameSpec::default()
        };
        let mut frame = vec![0u8; 2048];
        let n = write_vxlan_frame(&spec, &mut frame);
        frame.truncate(n);
        let stack = TunnelStack::parse(&frame, &ParseConfig::default()).unwrap();
        let l = stack.layer(0).unwrap();
        let sliced = SlicedPacket::from_ethernet(&frame).unwrap();
        let Some(etherparse::LinkSlice::Ethernet2(eth)) = &sliced.link else { panic!("no ethernet") };
        prop_assert_eq!(eth.source(), l.src_mac().0);
        prop_assert_eq!(eth.destination(), l.dst_mac().0);
        let vlans: Vec<u16> = match sliced.vlan() {
            Some(VlanSlice::SingleVlan(v)) => vec![v.vlan_identifier().value()],
            Some(VlanSlice::DoubleVlan(d)) => vec![d.outer.vlan_identifier().value(), d.inner.vlan_identifier().value()],
            None => vec![],
        };
        prop_assert_eq!(&vlans[..], l.outer_vids());
        let (s, d): (IpAddr, IpAddr) = match &sliced.net {
            Some(NetSlice::Ipv4(v4)) => (v4.header().source_addr().into(), v4.header().destination_addr().into()),
            Some(NetSlice::Ipv6(v6)) => (v6.header().source_addr().into(), v6.header().destination_addr().into()),
            other => panic!("no IP: {other:?}"),
        };
        prop_assert_eq!((s, d), (l.src_addr(), l.dst_addr()));
        let Some(TransportSlice::Udp(udp)) = &sliced.transport else { panic!("no UDP") };
        prop_assert_eq!((udp.source_port(), udp.destination_port()), (l.src_port(), l.dst_port()));
        prop_assert_eq!(usize::from(udp.length()), l.end() - l.udp_offset());
        let payload = udp.payload();
        prop_assert_eq!(u32::from_be_bytes([0, payload[4], payload[5], payload[6]]), l.vni());
        let inner = stack.inner().unwrap();
        prop_assert_eq!(inner.bytes(), &payload[8..]);
        prop_assert_eq!(inner.src_addr(), MacAddr(src));
        prop_assert_eq!(inner.vids(), &inner_vids[..]);
    }
}
