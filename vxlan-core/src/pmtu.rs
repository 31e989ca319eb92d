//! Path-MTU signalling for frames too big to encapsulate.
//!
//! A VTEP must not fragment (RFC 7348 section 4.3), so a tenant frame that
//! would exceed the underlay MTU once encapsulated is dropped. Dropping it
//! silently black-holes TCP until its own PMTU probing gives up. Instead we
//! answer the sender the way a router would: ICMPv4 "fragmentation needed"
//! (RFC 1191) for IPv4 with DF set, ICMPv6 "packet too big" (RFC 8201) for
//! IPv6, carrying the inner MTU that fits. The reply comes from the inner
//! destination's addresses (MAC and IP swapped), as Linux does for bridged
//! tunnels, so it reaches the sender on its own segment without a route.
//!
//! ```
//! use vxlan_core::pmtu::too_big_reply;
//! use vxlan_core::testutil::write_inner_frame;
//! use vxlan_core::wire::{Icmpv4Packet, Icmpv4Repr, Ipv4Packet, MacAddr};
//!
//! let mut big = [0u8; 1514];
//! write_inner_frame(&mut big, MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2]), &[], 1514);
//! let mut reply = [0u8; 600];
//! let n = too_big_reply(&big, 1450, &mut reply).unwrap();
//! let ip = Ipv4Packet::new_checked(&reply[14..n]).unwrap();
//! let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
//! assert!(matches!(Icmpv4Repr::parse(&icmp).unwrap(),
//!     Icmpv4Repr::FragmentationNeeded { next_hop_mtu: 1450, .. }));
//! ```

use core::fmt;

use crate::wire::{
    EtherType, Icmpv4Packet, Icmpv4Repr, Icmpv6Packet, Icmpv6Repr, IpPair, IpProtocol, Ipv4Packet,
    Ipv4Repr, Ipv6Packet, Ipv6Repr, L2Header,
};

/// The most an ICMPv4 error may be (RFC 1812 section 4.3.2.3).
const ICMPV4_MAX: usize = 576;
/// The most an ICMPv6 error may be: the IPv6 minimum MTU (RFC 4443).
const ICMPV6_MAX: usize = 1280;

/// Why no reply is built (the frame is still dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoReply {
    /// Not IPv4 or IPv6, or malformed.
    NotIp,
    /// IPv4 without DF: the sender allowed fragmentation, which a VTEP
    /// does not do, and expects no error.
    NoDontFragment,
    /// Never answer an ICMP error with an error (RFC 1122, RFC 4443).
    IcmpError,
    /// A non-first fragment: the first one gets the error.
    Fragment,
    /// The sender is multicast, broadcast or unspecified.
    BadSource,
    /// The output buffer is too small.
    NoRoom,
}

impl fmt::Display for NoReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NoReply::NotIp => "not an IP packet",
            NoReply::NoDontFragment => "IPv4 without DF",
            NoReply::IcmpError => "an ICMP error",
            NoReply::Fragment => "a non-first fragment",
            NoReply::BadSource => "a multicast, broadcast or unspecified source",
            NoReply::NoRoom => "no room for the reply",
        })
    }
}

/// Writes into `out` the Ethernet frame that tells the sender of `inner`
/// (an Ethernet frame that did not fit) to use `mtu` as its IP MTU.
/// Returns the reply's length.
pub fn too_big_reply(inner: &[u8], mtu: u16, out: &mut [u8]) -> Result<usize, NoReply> {
    let l2 = L2Header::parse(inner).map_err(|_| NoReply::NotIp)?;
    let ip_at = l2.header_len();
    if l2.src_addr.is_multicast() || l2.src_addr.is_zero() {
        return Err(NoReply::BadSource);
    }
    // The reply goes back on the same segment: swap addresses, keep tags.
    let mut reply_l2 = l2;
    reply_l2.src_addr = l2.dst_addr;
    reply_l2.dst_addr = l2.src_addr;
    let packet = &inner[ip_at..];
    match l2.ethertype {
        EtherType::IPV4 => {
            let p = Ipv4Packet::new_checked(packet).map_err(|_| NoReply::NotIp)?;
            let r = Ipv4Repr::parse(&p).map_err(|_| NoReply::NotIp)?;
            if !r.dont_frag {
                return Err(NoReply::NoDontFragment);
            }
            if r.frag_offset != 0 {
                return Err(NoReply::Fragment);
            }
            if r.src_addr.is_multicast() || r.src_addr.is_broadcast() || r.src_addr.is_unspecified()
            {
                return Err(NoReply::BadSource);
            }
            if r.protocol == IpProtocol::ICMP {
                let t = p.payload().first().copied().unwrap_or(0);
                if !matches!(t, 0 | 8 | 13 | 14) {
                    return Err(NoReply::IcmpError);
                }
            }
            let quoted_len = usize::from(p.total_len()).min(ICMPV4_MAX - 20 - 8);
            let icmp = Icmpv4Repr::FragmentationNeeded {
                next_hop_mtu: mtu,
                data: &packet[..quoted_len],
            };
            let ip_len = 20 + icmp.buffer_len();
            let total = ip_at + ip_len;
            if out.len() < total {
                return Err(NoReply::NoRoom);
            }
            reply_l2.emit(out);
            let mut ipr = Ipv4Repr::new(
                r.dst_addr,
                r.src_addr,
                IpProtocol::ICMP,
                u16::try_from(icmp.buffer_len()).unwrap_or(0),
            );
            ipr.dont_frag = false;
            ipr.emit(&mut Ipv4Packet::new_unchecked(&mut out[ip_at..total]));
            icmp.emit(&mut Icmpv4Packet::new_unchecked(
                &mut out[ip_at + 20..total],
            ));
            Ok(total)
        }
        EtherType::IPV6 => {
            let p = Ipv6Packet::new_checked(packet).map_err(|_| NoReply::NotIp)?;
            let r = Ipv6Repr::parse(&p).map_err(|_| NoReply::NotIp)?;
            if r.src_addr.is_multicast() || r.src_addr.is_unspecified() {
                return Err(NoReply::BadSource);
            }
            let up = p.upper_layer().map_err(|_| NoReply::NotIp)?;
            if up.fragment.is_some_and(|f| f.offset != 0) {
                return Err(NoReply::Fragment);
            }
            if up.protocol == IpProtocol::ICMPV6 && packet.get(up.offset).is_some_and(|t| *t < 128)
            {
                return Err(NoReply::IcmpError);
            }
            let whole = 40 + usize::from(p.payload_len());
            let quoted_len = whole.min(ICMPV6_MAX - 40 - 8);
            let icmp = Icmpv6Repr::PacketTooBig {
                mtu: u32::from(mtu),
                data: &packet[..quoted_len],
            };
            let total = ip_at + 40 + icmp.buffer_len();
            if out.len() < total {
                return Err(NoReply::NoRoom);
            }
            reply_l2.emit(out);
            let ipr = Ipv6Repr::new(
                r.dst_addr,
                r.src_addr,
                IpProtocol::ICMPV6,
                u16::try_from(icmp.buffer_len()).unwrap_or(0),
            );
            ipr.emit(&mut Ipv6Packet::new_unchecked(&mut out[ip_at..total]));
            let ips = IpPair::V6(r.dst_addr, r.src_addr);
            icmp.emit(
                &mut Icmpv6Packet::new_unchecked(&mut out[ip_at + 40..total]),
                &ips,
            );
            Ok(total)
        }
        _ => Err(NoReply::NotIp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::write_inner_frame;
    use crate::wire::MacAddr;

    const A: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xa]);
    const B: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xb]);

    #[test]
    fn ipv4_frag_needed() {
        let mut big = vec![0u8; 1600];
        write_inner_frame(&mut big, A, B, &[42], 1600);
        let mut out = vec![0u8; 700];
        let n = too_big_reply(&big, 1450, &mut out).unwrap();
        let l2 = L2Header::parse(&out[..n]).unwrap();
        assert_eq!((l2.src_addr, l2.dst_addr, l2.vids()[0]), (B, A, 42));
        let ip = Ipv4Packet::new_checked(&out[18..n]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.total_len(), 576, "quotes as much as RFC 1812 allows");
        assert_eq!(
            (ip.src_addr(), ip.dst_addr()),
            (
                core::net::Ipv4Addr::new(10, 0, 0, 2),
                core::net::Ipv4Addr::new(10, 0, 0, 1)
            )
        );
        let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
        match Icmpv4Repr::parse(&icmp).unwrap() {
            Icmpv4Repr::FragmentationNeeded { next_hop_mtu, data } => {
                assert_eq!(next_hop_mtu, 1450);
                assert_eq!(data, &big[18..18 + 548]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refusals() {
        let mut big = vec![0u8; 1600];
        write_inner_frame(&mut big, A, B, &[], 1600);
        let mut out = vec![0u8; 700];
        let mut no_df = big.clone();
        let mut p = Ipv4Packet::new_unchecked(&mut no_df[14..]);
        p.set_flags_and_frag(false, false, 0);
        assert_eq!(
            too_big_reply(&no_df, 1450, &mut out),
            Err(NoReply::NoDontFragment)
        );
        let mut icmp_err = big.clone();
        icmp_err[14 + 9] = 1;
        icmp_err[34] = 3;
        assert_eq!(
            too_big_reply(&icmp_err, 1450, &mut out),
            Err(NoReply::IcmpError)
        );
        let mut mc = big.clone();
        mc[6] = 1;
        assert_eq!(too_big_reply(&mc, 1450, &mut out), Err(NoReply::BadSource));
        assert_eq!(
            too_big_reply(&big, 1450, &mut out[..100]),
            Err(NoReply::NoRoom)
        );
        let mut arp = big.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(too_big_reply(&arp, 1450, &mut out), Err(NoReply::NotIp));
    }

    #[test]
    fn ipv6_packet_too_big() {
        let mut big = vec![0u8; 1600];
        big[..6].copy_from_slice(&B.0);
        big[6..12].copy_from_slice(&A.0);
        big[12..14].copy_from_slice(&[0x86, 0xdd]);
        let r = Ipv6Repr::new(
            "2001:db8::a".parse().unwrap(),
            "2001:db8::b".parse().unwrap(),
            IpProtocol::UDP,
            1600 - 54,
        );
        r.emit(&mut Ipv6Packet::new_unchecked(&mut big[14..]));
        let mut out = vec![0u8; 1400];
        let n = too_big_reply(&big, 1430, &mut out).unwrap();
        assert_eq!(n, 14 + 1280);
        let ip = Ipv6Packet::new_checked(&out[14..n]).unwrap();
        assert_eq!(ip.dst_addr(), r.src_addr);
        let ips = IpPair::V6(ip.src_addr(), ip.dst_addr());
        let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert!(matches!(
            Icmpv6Repr::parse(&icmp, &ips).unwrap(),
            Icmpv6Repr::PacketTooBig { mtu: 1430, .. }
        ));
    }
}
