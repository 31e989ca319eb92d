//! Frame builders for tests, examples and benchmarks.
//!
//! These write well-formed VXLAN frames into a caller's buffer with the
//! crate's own `Repr` emitters, so every test starts from bytes the codecs
//! themselves vouch for. Conformance against other implementations is
//! tested separately, on real captures.

use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr};

use crate::wire::arp::{ArpOperation, ArpPacket, ArpRepr};
use crate::wire::udp::{UdpPacket, UdpRepr};
use crate::wire::vxlan::{VxlanHeader, VxlanRepr};
use crate::wire::{
    EtherType, IpPair, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, L2Header, MacAddr,
    VlanTagRepr,
};

/// What [`write_vxlan_frame`] builds.
#[derive(Debug, Clone, Copy)]
pub struct FrameSpec<'a> {
    /// IPv6 underlay (2001:db8::1 -> 2001:db8::2) instead of IPv4
    /// (192.0.2.1 -> 192.0.2.2).
    pub ipv6: bool,
    /// Outer VLAN IDs (802.1Q each), outermost first.
    pub outer_vids: &'a [u16],
    /// UDP source port.
    pub sport: u16,
    /// UDP destination port.
    pub dport: u16,
    /// VNI.
    pub vni: u32,
    /// Inner source MAC.
    pub inner_src: MacAddr,
    /// Inner destination MAC.
    pub inner_dst: MacAddr,
    /// Inner VLAN IDs (802.1Q each), outermost first.
    pub inner_vids: &'a [u16],
    /// Inner frame length when no `inner_bytes` are given: an inner
    /// IPv4/UDP datagram padded with zeros (at least 14 + 28 bytes, plus
    /// tags).
    pub inner_len: usize,
    /// The inner frame as is, overriding the fields above.
    pub inner_bytes: Option<&'a [u8]>,
}

impl Default for FrameSpec<'_> {
    fn default() -> Self {
        FrameSpec {
            ipv6: false,
            outer_vids: &[],
            sport: 49152,
            dport: 4789,
            vni: 100,
            inner_src: MacAddr([0x02, 0, 0, 0, 0, 0x01]),
            inner_dst: MacAddr([0x02, 0, 0, 0, 0, 0x02]),
            inner_vids: &[],
            inner_len: 64,
            inner_bytes: None,
        }
    }
}

/// The outer addresses [`write_vxlan_frame`] uses.
pub fn spec_ips(ipv6: bool) -> IpPair {
    if ipv6 {
        IpPair::V6(
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2),
        )
    } else {
        IpPair::V4(Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2))
    }
}

fn tagged(src: MacAddr, dst: MacAddr, vids: &[u16], ethertype: EtherType) -> L2Header {
    let mut l2 = L2Header::untagged(src, dst, ethertype);
    for (i, vid) in vids.iter().take(2).enumerate() {
        l2.tags[i] = VlanTagRepr::dot1q(*vid);
    }
    l2.tag_count = u8::try_from(vids.len().min(2)).unwrap_or(2);
    l2
}

/// Writes an Ethernet frame with `vids` (all 802.1Q; more than two are
/// written too, so tests can build what the parser must refuse), an IPv4
/// header and a UDP header, padded to `len`. Returns the length written.
///
/// # Panics
/// When `buf` is too small.
pub fn write_inner_frame(
    buf: &mut [u8],
    src: MacAddr,
    dst: MacAddr,
    vids: &[u16],
    len: usize,
) -> usize {
    let mut at = 12;
    buf[..6].copy_from_slice(&dst.0);
    buf[6..12].copy_from_slice(&src.0);
    for vid in vids {
        buf[at..at + 2].copy_from_slice(&0x8100u16.to_be_bytes());
        buf[at + 2..at + 4].copy_from_slice(&vid.to_be_bytes());
        at += 4;
    }
    buf[at..at + 2].copy_from_slice(&EtherType::IPV4.0.to_be_bytes());
    at += 2;
    let len = len.max(at + 28);
    let ip_len = u16::try_from(len - at - 20).unwrap_or(u16::MAX);
    let ip = Ipv4Repr::new(
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::new(10, 0, 0, 2),
        IpProtocol::UDP,
        ip_len,
    );
    buf[at..len].fill(0);
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut buf[at..len]));
    let udp = UdpRepr {
        src_port: 12345,
        dst_port: 80,
    };
    udp.emit(
        &mut UdpPacket::new_unchecked(&mut buf[at + 20..len]),
        len - at - 28,
        None,
    );
    len
}

/// Writes a whole VXLAN frame as `spec` describes into `buf` and returns
/// its length. Outer IPv4 gets a correct header checksum and a zero UDP
/// checksum; outer IPv6 gets a computed UDP checksum.
///
/// # Panics
/// When `buf` is too small for the frame.
pub fn write_vxlan_frame(spec: &FrameSpec<'_>, buf: &mut [u8]) -> usize {
    // Outer Ethernet, written by hand so more than two tags are possible.
    let outer_dst = MacAddr([0x02, 0xaa, 0, 0, 0, 2]);
    let outer_src = MacAddr([0x02, 0xaa, 0, 0, 0, 1]);
    let ethertype = if spec.ipv6 {
        EtherType::IPV6
    } else {
        EtherType::IPV4
    };
    buf[..6].copy_from_slice(&outer_dst.0);
    buf[6..12].copy_from_slice(&outer_src.0);
    let mut at = 12;
    for vid in spec.outer_vids {
        buf[at..at + 2].copy_from_slice(&0x8100u16.to_be_bytes());
        buf[at + 2..at + 4].copy_from_slice(&vid.to_be_bytes());
        at += 4;
    }
    buf[at..at + 2].copy_from_slice(&ethertype.0.to_be_bytes());
    let ip = at + 2;
    let ip_len = if spec.ipv6 { 40 } else { 20 };
    let udp = ip + ip_len;
    let inner = udp + 8 + 8;
    let inner_len = match spec.inner_bytes {
        Some(bytes) => {
            buf[inner..inner + bytes.len()].copy_from_slice(bytes);
            bytes.len()
        }
        None => write_inner_frame(
            &mut buf[inner..],
            spec.inner_src,
            spec.inner_dst,
            spec.inner_vids,
            spec.inner_len,
        ),
    };
    let end = inner + inner_len;
    VxlanRepr { vni: spec.vni }.emit(&mut VxlanHeader::new_unchecked(&mut buf[udp + 8..udp + 16]));
    let udp_len = u16::try_from(end - udp).unwrap_or(u16::MAX);
    let ips = spec_ips(spec.ipv6);
    match ips {
        IpPair::V4(s, d) => {
            let mut r = Ipv4Repr::new(s, d, IpProtocol::UDP, udp_len);
            r.ttl = 64;
            r.emit(&mut Ipv4Packet::new_unchecked(&mut buf[ip..end]));
        }
        IpPair::V6(s, d) => {
            Ipv6Repr::new(s, d, IpProtocol::UDP, udp_len)
                .emit(&mut Ipv6Packet::new_unchecked(&mut buf[ip..end]));
        }
    }
    let repr = UdpRepr {
        src_port: spec.sport,
        dst_port: spec.dport,
    };
    let csum = if spec.ipv6 { Some(&ips) } else { None };
    repr.emit(
        &mut UdpPacket::new_unchecked(&mut buf[udp..end]),
        end - udp - 8,
        csum,
    );
    end
}

/// Same as [`write_vxlan_frame`], into a new vector.
#[cfg(any(test, feature = "std"))]
pub fn build_vxlan_frame(spec: &FrameSpec<'_>) -> std::vec::Vec<u8> {
    let mut buf = std::vec![0u8; 256 + spec.inner_len + spec.inner_bytes.map_or(0, <[u8]>::len)];
    let n = write_vxlan_frame(spec, &mut buf);
    buf.truncate(n);
    buf
}

/// Length of [`sample_vxlan_ipv4_frame`].
pub const SAMPLE_LEN: usize = 14 + 20 + 8 + 8 + 14 + 28;

/// An ARP request (who has 10.0.0.2? tell 10.0.0.1, from
/// 02:00:00:00:00:01 to broadcast) carried in VNI 100 from 192.0.2.1:49152
/// to 192.0.2.2:4789.
pub fn sample_vxlan_ipv4_frame() -> [u8; SAMPLE_LEN] {
    let mut inner = [0u8; 42];
    let l2 = tagged(
        MacAddr([2, 0, 0, 0, 0, 1]),
        MacAddr::BROADCAST,
        &[],
        EtherType::ARP,
    );
    l2.emit(&mut inner);
    ArpRepr {
        operation: ArpOperation::Request,
        sender_mac: MacAddr([2, 0, 0, 0, 0, 1]),
        sender_ip: Ipv4Addr::new(10, 0, 0, 1),
        target_mac: MacAddr::ZERO,
        target_ip: Ipv4Addr::new(10, 0, 0, 2),
    }
    .emit(&mut ArpPacket::new_unchecked(&mut inner[14..]));
    let mut out = [0u8; SAMPLE_LEN];
    let spec = FrameSpec {
        inner_bytes: Some(&inner),
        ..FrameSpec::default()
    };
    write_vxlan_frame(&spec, &mut out);
    out
}

/// A `fmt::Write` into a fixed slice, for formatting without allocation.
pub struct SliceWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> SliceWriter<'a> {
    /// Writes into `buf` from its start.
    pub fn new(buf: &'a mut [u8]) -> Self {
        SliceWriter { buf, len: 0 }
    }

    /// What has been written.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl fmt::Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}
