//! IPv6 (RFC 8200): the fixed header and a walk over extension headers to
//! the upper layer.
//!
//! ```
//! use core::net::Ipv6Addr;
//! use vxlan_core::wire::{IpProtocol, Ipv6Packet, Ipv6Repr};
//!
//! let repr = Ipv6Repr::new(
//!     "2001:db8::1".parse().unwrap(),
//!     "2001:db8::2".parse().unwrap(),
//!     IpProtocol::UDP,
//!     8,
//! );
//! let mut buf = [0u8; 48];
//! repr.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..]));
//! let packet = Ipv6Packet::new_checked(&buf[..]).unwrap();
//! let upper = packet.upper_layer().unwrap();
//! assert_eq!(upper.protocol, IpProtocol::UDP);
//! assert_eq!(upper.offset, 40);
//! ```

use core::net::Ipv6Addr;

use super::{check, read_u16, read_u32, write_u16, write_u32, Error, IpProtocol, Result};

mod field {
    pub const VER_TC_FLOW: usize = 0;
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: usize = 8;
    pub const DST: usize = 24;
}

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = 40;
/// Length of a fragment extension header.
pub const FRAGMENT_HEADER_LEN: usize = 8;
/// How many extension headers [`Ipv6Packet::upper_layer`] walks before it
/// gives up with [`Error::TooManyHeaders`]. Real traffic carries one or two;
/// long chains are an evasion technique (RFC 7112).
pub const MAX_EXTENSION_HEADERS: usize = 8;

/// A view of an IPv6 packet.
#[derive(Debug, Clone, Copy)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

/// Where the upper-layer header of an IPv6 packet starts, after any
/// extension headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpperLayer {
    /// The upper-layer protocol (or [`IpProtocol::IPV6_NO_NEXT`]).
    pub protocol: IpProtocol,
    /// Offset of the upper-layer header from the start of the IPv6 header.
    pub offset: usize,
    /// The fragment header's information, when the packet is a fragment.
    pub fragment: Option<FragmentInfo>,
}

/// The fields of an IPv6 fragment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentInfo {
    /// Fragment offset in bytes.
    pub offset: u16,
    /// More fragments follow.
    pub more: bool,
    /// Identification.
    pub ident: u32,
}

impl FragmentInfo {
    /// An "atomic fragment" (offset 0, no more fragments, RFC 6946) is a
    /// whole datagram; anything else is a real fragment.
    pub const fn is_real_fragment(&self) -> bool {
        self.offset != 0 || self.more
    }
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Wraps a buffer after [`Ipv6Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the fixed header and the payload length fit. A payload
    /// length of zero (a jumbogram, RFC 2675) is not supported and reads as
    /// an empty payload.
    pub fn check_len(&self) -> Result<()> {
        let buf = self.buffer.as_ref();
        check(buf, HEADER_LEN)?;
        check(buf, HEADER_LEN + usize::from(self.payload_len()))
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// IP version (6 for a valid packet).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TC_FLOW] >> 4
    }

    /// Traffic class (DSCP << 2 | ECN).
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        let w = read_u16(self.buffer.as_ref(), field::VER_TC_FLOW);
        ((w >> 4) & 0xff).to_be_bytes()[1]
    }

    /// Flow label (20 bits).
    #[inline]
    pub fn flow_label(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::VER_TC_FLOW) & 0x000f_ffff
    }

    /// Payload length: everything after the fixed header, extension
    /// headers included.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::PAYLOAD_LEN)
    }

    /// The next-header field of the fixed header.
    #[inline]
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol(self.buffer.as_ref()[field::NEXT_HEADER])
    }

    /// Hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        addr_at(self.buffer.as_ref(), field::SRC)
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        addr_at(self.buffer.as_ref(), field::DST)
    }

    /// Everything after the fixed header, bounded by the payload length.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + usize::from(self.payload_len())]
    }

    /// Walks hop-by-hop, routing, destination-options, fragment and AH
    /// extension headers to the upper layer. Stops at the first fragment
    /// header that is a real fragment with a non-zero offset, since what
    /// follows it is not a header. Extension headers must lie within the
    /// payload length.
    pub fn upper_layer(&self) -> Result<UpperLayer> {
        let end = HEADER_LEN + usize::from(self.payload_len());
        let buf = &self.buffer.as_ref()[..end];
        let mut next = self.next_header();
        let mut at = HEADER_LEN;
        let mut fragment = None;
        for _ in 0..=MAX_EXTENSION_HEADERS {
            let len = match next {
                IpProtocol::HOP_BY_HOP | IpProtocol::IPV6_ROUTING | IpProtocol::IPV6_DEST_OPTS => {
                    check(buf, at + 2)?;
                    (usize::from(buf[at + 1]) + 1) * 8
                }
                IpProtocol::AUTH => {
                    check(buf, at + 2)?;
                    (usize::from(buf[at + 1]) + 2) * 4
                }
                IpProtocol::IPV6_FRAGMENT => {
                    check(buf, at + FRAGMENT_HEADER_LEN)?;
                    let off_flags = read_u16(buf, at + 2);
                    let info = FragmentInfo {
                        offset: off_flags & 0xfff8,
                        more: off_flags & 1 != 0,
                        ident: read_u32(buf, at + 4),
                    };
                    fragment = Some(info);
                    if info.offset != 0 {
                        // A later fragment: the bytes after this header are
                        // the middle of the original payload.
                        return Ok(UpperLayer {
                            protocol: IpProtocol(buf[at]),
                            offset: at + 8,
                            fragment,
                        });
                    }
                    FRAGMENT_HEADER_LEN
                }
                protocol => {
                    return Ok(UpperLayer {
                        protocol,
                        offset: at,
                        fragment,
                    })
                }
            };
            check(buf, at + len)?;
            next = IpProtocol(buf[at]);
            at += len;
        }
        Err(Error::TooManyHeaders)
    }
}

fn addr_at(buf: &[u8], at: usize) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&buf[at..at + 16]);
    Ipv6Addr::from(a)
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets version 6, traffic class and flow label in one write.
    pub fn set_version_tc_flow(&mut self, traffic_class: u8, flow_label: u32) {
        let w = (6u32 << 28) | (u32::from(traffic_class) << 20) | (flow_label & 0x000f_ffff);
        write_u32(self.buffer.as_mut(), field::VER_TC_FLOW, w);
    }

    /// Sets the payload length.
    pub fn set_payload_len(&mut self, len: u16) {
        write_u16(self.buffer.as_mut(), field::PAYLOAD_LEN, len);
    }

    /// Sets the next-header field.
    pub fn set_next_header(&mut self, next: IpProtocol) {
        self.buffer.as_mut()[field::NEXT_HEADER] = next.0;
    }

    /// Sets the hop limit.
    pub fn set_hop_limit(&mut self, hop_limit: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = hop_limit;
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC..field::SRC + 16].copy_from_slice(&addr.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::DST..field::DST + 16].copy_from_slice(&addr.octets());
    }
}

/// The meaning of a fixed IPv6 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Repr {
    /// Source address.
    pub src_addr: Ipv6Addr,
    /// Destination address.
    pub dst_addr: Ipv6Addr,
    /// The next-header field.
    pub next_header: IpProtocol,
    /// Payload length.
    pub payload_len: u16,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
}

impl Ipv6Repr {
    /// A header with hop limit 64, traffic class and flow label zero.
    pub const fn new(
        src_addr: Ipv6Addr,
        dst_addr: Ipv6Addr,
        next_header: IpProtocol,
        payload_len: u16,
    ) -> Self {
        Ipv6Repr {
            src_addr,
            dst_addr,
            next_header,
            payload_len,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
        }
    }

    /// Reads a checked packet's fixed header, verifying the version.
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv6Packet<T>) -> Result<Ipv6Repr> {
        packet.check_len()?;
        if packet.version() != 6 {
            return Err(Error::BadVersion);
        }
        Ok(Ipv6Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: packet.payload_len(),
            hop_limit: packet.hop_limit(),
            traffic_class: packet.traffic_class(),
            flow_label: packet.flow_label(),
        })
    }

    /// Bytes [`Ipv6Repr::emit`] writes (40).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the fixed header.
    ///
    /// # Panics
    /// When the buffer is shorter than 40 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv6Packet<T>) {
        packet.set_version_tc_flow(self.traffic_class, self.flow_label);
        packet.set_payload_len(self.payload_len);
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // fe80::1 -> ff02::1, UDP, payload 12, hop limit 64, TC 0xb8, flow 0x12345.
    static PACKET: [u8; 52] = [
        0x6b, 0x81, 0x23, 0x45, 0x00, 0x0c, 0x11, 0x40, //
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, //
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, //
        0x00, 0x01, 0x00, 0x02, 0x00, 0x0c, 0x00, 0x00, 0xaa, 0xbb, 0xcc, 0xdd,
    ];

    fn repr() -> Ipv6Repr {
        Ipv6Repr {
            src_addr: "fe80::1".parse().unwrap(),
            dst_addr: "ff02::1".parse().unwrap(),
            next_header: IpProtocol::UDP,
            payload_len: 12,
            hop_limit: 64,
            traffic_class: 0xb8,
            flow_label: 0x12345,
        }
    }

    #[test]
    fn deconstruct_parse_emit() {
        let p = Ipv6Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0xb8);
        assert_eq!(p.flow_label(), 0x12345);
        assert_eq!(p.payload().len(), 12);
        assert_eq!(Ipv6Repr::parse(&p).unwrap(), repr());
        let mut out = [0u8; 40];
        repr().emit(&mut Ipv6Packet::new_unchecked(&mut out[..]));
        assert_eq!(&out[..], &PACKET[..40]);
        assert_eq!(
            p.upper_layer().unwrap(),
            UpperLayer {
                protocol: IpProtocol::UDP,
                offset: 40,
                fragment: None
            }
        );
    }

    #[test]
    fn truncated_and_bad_version() {
        assert!(matches!(
            Ipv6Packet::new_checked(&PACKET[..39]),
            Err(Error::Truncated { .. })
        ));
        assert!(matches!(
            Ipv6Packet::new_checked(&PACKET[..51]),
            Err(Error::Truncated { .. })
        ));
        let mut b = PACKET;
        b[0] = 0x4b;
        assert_eq!(
            Ipv6Repr::parse(&Ipv6Packet::new_checked(&b[..]).unwrap()),
            Err(Error::BadVersion)
        );
    }

    fn with_extensions(exts: &[(u8, &[u8])], upper: u8, upper_bytes: &[u8]) -> ([u8; 200], usize) {
        let mut b = [0u8; 200];
        let mut at = 40;
        let first = exts.first().map_or(upper, |e| e.0);
        for (i, (_, body)) in exts.iter().enumerate() {
            let next = exts.get(i + 1).map_or(upper, |e| e.0);
            b[at] = next;
            b[at + 1..at + body.len()].copy_from_slice(&body[1..]);
            at += body.len();
        }
        b[at..at + upper_bytes.len()].copy_from_slice(upper_bytes);
        at += upper_bytes.len();
        let r = Ipv6Repr::new(
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
            IpProtocol(first),
            u16::try_from(at - 40).unwrap(),
        );
        r.emit(&mut Ipv6Packet::new_unchecked(&mut b[..]));
        (b, at)
    }

    #[test]
    fn extension_chain() {
        let hbh: [u8; 8] = [0, 0, 1, 4, 0, 0, 0, 0]; // PadN
        let routing: [u8; 24] = {
            let mut r = [0u8; 24];
            r[1] = 2; // (2 + 1) * 8 = 24 bytes
            r
        };
        let dest: [u8; 8] = [0, 0, 1, 4, 0, 0, 0, 0];
        let frag: [u8; 8] = [0, 0, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef]; // atomic fragment
        let (b, len) = with_extensions(
            &[(0, &hbh), (43, &routing), (60, &dest), (44, &frag)],
            17,
            &[0; 8],
        );
        let p = Ipv6Packet::new_checked(&b[..len]).unwrap();
        let up = p.upper_layer().unwrap();
        assert_eq!(up.protocol, IpProtocol::UDP);
        assert_eq!(up.offset, 40 + 8 + 24 + 8 + 8);
        let f = up.fragment.unwrap();
        assert!(!f.is_real_fragment());
        assert_eq!(f.ident, 0xdead_beef);
    }

    #[test]
    fn fragments() {
        let first: [u8; 8] = [0, 0, 0x00, 0x01, 0, 0, 0, 1]; // offset 0, M
        let (b, len) = with_extensions(&[(44, &first)], 17, &[0; 8]);
        let up = Ipv6Packet::new_checked(&b[..len])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!(up.protocol, IpProtocol::UDP);
        assert!(up.fragment.unwrap().is_real_fragment());
        let later: [u8; 8] = [0, 0, 0x05, 0xc8, 0, 0, 0, 1]; // offset 1480, no M
        let (b, len) = with_extensions(&[(44, &later)], 17, &[0; 8]);
        let up = Ipv6Packet::new_checked(&b[..len])
            .unwrap()
            .upper_layer()
            .unwrap();
        let f = up.fragment.unwrap();
        assert_eq!(f.offset, 1480);
        assert!(!f.more && f.is_real_fragment());
    }

    #[test]
    fn malformed_chains() {
        // Extension header longer than the payload.
        let hbh: [u8; 8] = [0, 5, 0, 0, 0, 0, 0, 0];
        let (b, len) = with_extensions(&[(0, &hbh)], 17, &[]);
        let p = Ipv6Packet::new_checked(&b[..len]).unwrap();
        assert!(matches!(p.upper_layer(), Err(Error::Truncated { .. })));
        // Too many headers.
        let d: [u8; 8] = [0; 8];
        let exts: [(u8, &[u8]); 10] = [(60, &d); 10];
        let (b, len) = with_extensions(&exts, 17, &[]);
        let p = Ipv6Packet::new_checked(&b[..len]).unwrap();
        assert_eq!(p.upper_layer(), Err(Error::TooManyHeaders));
    }

    proptest! {
        #[test]
        fn round_trip(src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(), nh in any::<u8>(),
                      len in 0u16..100, hl in any::<u8>(), tc in any::<u8>(), fl in 0u32..0x10_0000) {
            let repr = Ipv6Repr { src_addr: src.into(), dst_addr: dst.into(), next_header: IpProtocol(nh),
                                  payload_len: len, hop_limit: hl, traffic_class: tc, flow_label: fl };
            let mut buf = [0u8; 140];
            repr.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..]));
            let p = Ipv6Packet::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(Ipv6Repr::parse(&p).unwrap(), repr);
        }

        #[test]
        fn walk_never_panics(data in proptest::collection::vec(any::<u8>(), 40..200)) {
            if let Ok(p) = Ipv6Packet::new_checked(&data[..]) {
                if let Ok(up) = p.upper_layer() {
                    prop_assert!(up.offset <= 40 + usize::from(p.payload_len()));
                }
            }
        }
    }
}
