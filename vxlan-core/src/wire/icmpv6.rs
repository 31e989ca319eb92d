//! ICMP for IPv6 (RFC 4443) and the neighbour discovery messages a VTEP
//! snoops and answers for ND suppression (RFC 4861 sections 4.3 and 4.4).
//!
//! The checksum covers the IPv6 pseudo-header, so parse and emit take the
//! addresses.
//!
//! ```
//! use vxlan_core::wire::{Icmpv6Packet, Icmpv6Repr, IpPair, MacAddr, NdpFlags};
//!
//! let ips = IpPair::V6("fe80::2".parse().unwrap(), "fe80::1".parse().unwrap());
//! let na = Icmpv6Repr::NeighborAdvert {
//!     flags: NdpFlags::SOLICITED.union(NdpFlags::OVERRIDE),
//!     target: "2001:db8::2".parse().unwrap(),
//!     target_lladdr: Some(MacAddr([2, 0, 0, 0, 0, 2])),
//! };
//! let mut buf = [0u8; 32];
//! na.emit(&mut Icmpv6Packet::new_unchecked(&mut buf[..]), &ips);
//! let parsed = Icmpv6Repr::parse(&Icmpv6Packet::new_checked(&buf[..]).unwrap(), &ips).unwrap();
//! assert_eq!(parsed, na);
//! ```

use core::net::Ipv6Addr;

use super::{
    check, checksum, read_u16, read_u32, write_u16, write_u32, Error, IpPair, IpProtocol, MacAddr,
    Result,
};

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const REST: usize = 4;
    pub const DATA: usize = 8;
    // Neighbour solicitation / advertisement.
    pub const ND_FLAGS: usize = 4;
    pub const ND_TARGET: usize = 8;
    pub const ND_OPTIONS: usize = 24;
}

/// Length of the ICMPv6 header.
pub const HEADER_LEN: usize = 8;
/// Length of an NS or NA without options.
pub const ND_LEN: usize = 24;

const DST_UNREACHABLE: u8 = 1;
const PACKET_TOO_BIG: u8 = 2;
const TIME_EXCEEDED: u8 = 3;
const ECHO_REQUEST: u8 = 128;
const ECHO_REPLY: u8 = 129;
const NEIGHBOR_SOLICIT: u8 = 135;
const NEIGHBOR_ADVERT: u8 = 136;

const OPT_SOURCE_LLADDR: u8 = 1;
const OPT_TARGET_LLADDR: u8 = 2;

/// The R, S and O flags of a neighbour advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NdpFlags(pub u8);

impl NdpFlags {
    /// R: the sender is a router.
    pub const ROUTER: NdpFlags = NdpFlags(0x80);
    /// S: sent in response to a solicitation.
    pub const SOLICITED: NdpFlags = NdpFlags(0x40);
    /// O: override an existing cache entry.
    pub const OVERRIDE: NdpFlags = NdpFlags(0x20);

    /// Both sets of flags.
    pub const fn union(self, other: NdpFlags) -> NdpFlags {
        NdpFlags(self.0 | other.0)
    }

    /// True when every flag of `other` is set.
    pub const fn contains(self, other: NdpFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

/// A view of an ICMPv6 message.
#[derive(Debug, Clone, Copy)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv6Packet { buffer }
    }

    /// Wraps a buffer after checking the header fits; the message is the
    /// whole buffer (the upper-layer payload of the IPv6 packet).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks the 8-byte header fits (and, for NS/NA, the target address).
    pub fn check_len(&self) -> Result<()> {
        let buf = self.buffer.as_ref();
        check(buf, HEADER_LEN)?;
        if matches!(buf[field::TYPE], NEIGHBOR_SOLICIT | NEIGHBOR_ADVERT) {
            check(buf, ND_LEN)?;
        }
        Ok(())
    }

    /// Message type.
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }
    /// Code.
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }
    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }
    /// The rest-of-header word.
    pub fn rest_of_header(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::REST)
    }
    /// The NS/NA target address (only meaningful for types 135 and 136).
    pub fn nd_target(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::ND_TARGET..field::ND_TARGET + 16]);
        Ipv6Addr::from(a)
    }

    fn sum_with(&self, ips: &IpPair) -> u16 {
        let data = self.buffer.as_ref();
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        checksum::fold(checksum::combine(
            ips.pseudo_header_sum(IpProtocol::ICMPV6, len),
            checksum::sum(data),
        ))
    }

    /// True when the checksum verifies over the pseudo-header of `ips`.
    pub fn verify_checksum(&self, ips: &IpPair) -> bool {
        self.sum_with(ips) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    /// Sets type and code.
    pub fn set_type_code(&mut self, msg_type: u8, code: u8) {
        let b = self.buffer.as_mut();
        b[field::TYPE] = msg_type;
        b[field::CODE] = code;
    }
    /// Sets the rest-of-header word.
    pub fn set_rest_of_header(&mut self, rest: u32) {
        write_u32(self.buffer.as_mut(), field::REST, rest);
    }
    /// Computes and writes the checksum over the pseudo-header of `ips` and
    /// the whole buffer.
    pub fn fill_checksum(&mut self, ips: &IpPair) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, 0);
        let c = !self.sum_with(ips);
        write_u16(self.buffer.as_mut(), field::CHECKSUM, c);
    }
}

/// Finds the link-layer address option of `kind` among NDP options. A
/// zero-length option is malformed (RFC 4861 section 4.6) and fails the
/// whole message.
fn find_lladdr(mut options: &[u8], kind: u8) -> Result<Option<MacAddr>> {
    let mut found = None;
    while !options.is_empty() {
        check(options, 2)?;
        let len = usize::from(options[1]) * 8;
        if len == 0 {
            return Err(Error::BadOption);
        }
        check(options, len)?;
        if options[0] == kind && found.is_none() {
            if len < 8 {
                return Err(Error::BadOption);
            }
            found = Some(MacAddr::from_bytes(&options[2..8]));
        }
        options = &options[len..];
    }
    Ok(found)
}

/// The meaning of an ICMPv6 message. Data borrow from the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv6Repr<'a> {
    /// Echo request.
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Payload.
        data: &'a [u8],
    },
    /// Echo reply.
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Payload.
        data: &'a [u8],
    },
    /// Packet too big: the IPv6 path-MTU signal.
    PacketTooBig {
        /// The MTU of the next hop.
        mtu: u32,
        /// As much of the offending packet as fits in the minimum MTU.
        data: &'a [u8],
    },
    /// Destination unreachable.
    DstUnreachable {
        /// Code.
        code: u8,
        /// The start of the offending packet.
        data: &'a [u8],
    },
    /// Time exceeded.
    TimeExceeded {
        /// Code.
        code: u8,
        /// The start of the offending packet.
        data: &'a [u8],
    },
    /// Neighbour solicitation: who has `target`?
    NeighborSolicit {
        /// The address being resolved.
        target: Ipv6Addr,
        /// The solicitor's link-layer address, when it sent one.
        source_lladdr: Option<MacAddr>,
    },
    /// Neighbour advertisement: `target` is at `target_lladdr`.
    NeighborAdvert {
        /// R, S and O flags.
        flags: NdpFlags,
        /// The address advertised.
        target: Ipv6Addr,
        /// Its link-layer address, when included.
        target_lladdr: Option<MacAddr>,
    },
    /// Anything else, as raw fields.
    Other {
        /// Type.
        msg_type: u8,
        /// Code.
        code: u8,
        /// Rest of header.
        rest: u32,
        /// Data.
        data: &'a [u8],
    },
}

impl<'a> Icmpv6Repr<'a> {
    /// Reads a checked message, verifying its checksum against `ips`.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Icmpv6Packet<&'a T>,
        ips: &IpPair,
    ) -> Result<Icmpv6Repr<'a>> {
        packet.check_len()?;
        if !packet.verify_checksum(ips) {
            return Err(Error::BadChecksum);
        }
        let buf: &'a [u8] = packet.buffer.as_ref();
        let data = &buf[field::DATA..];
        let rest = packet.rest_of_header();
        let [a, b, c, d] = rest.to_be_bytes();
        let (hi, lo) = (u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
        Ok(match (packet.msg_type(), packet.code()) {
            (ECHO_REQUEST, 0) => Icmpv6Repr::EchoRequest {
                ident: hi,
                seq_no: lo,
                data,
            },
            (ECHO_REPLY, 0) => Icmpv6Repr::EchoReply {
                ident: hi,
                seq_no: lo,
                data,
            },
            (PACKET_TOO_BIG, 0) => Icmpv6Repr::PacketTooBig { mtu: rest, data },
            (DST_UNREACHABLE, code) if rest == 0 => Icmpv6Repr::DstUnreachable { code, data },
            (TIME_EXCEEDED, code) if rest == 0 => Icmpv6Repr::TimeExceeded { code, data },
            (NEIGHBOR_SOLICIT, 0) => Icmpv6Repr::NeighborSolicit {
                target: packet.nd_target(),
                source_lladdr: find_lladdr(&buf[field::ND_OPTIONS..], OPT_SOURCE_LLADDR)?,
            },
            (NEIGHBOR_ADVERT, 0) => Icmpv6Repr::NeighborAdvert {
                flags: NdpFlags(buf[field::ND_FLAGS] & 0xe0),
                target: packet.nd_target(),
                target_lladdr: find_lladdr(&buf[field::ND_OPTIONS..], OPT_TARGET_LLADDR)?,
            },
            (msg_type, code) => Icmpv6Repr::Other {
                msg_type,
                code,
                rest,
                data,
            },
        })
    }

    /// Bytes [`Icmpv6Repr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        match self {
            Icmpv6Repr::NeighborSolicit {
                source_lladdr: l, ..
            }
            | Icmpv6Repr::NeighborAdvert {
                target_lladdr: l, ..
            } => ND_LEN + if l.is_some() { 8 } else { 0 },
            Icmpv6Repr::EchoRequest { data, .. }
            | Icmpv6Repr::EchoReply { data, .. }
            | Icmpv6Repr::PacketTooBig { data, .. }
            | Icmpv6Repr::DstUnreachable { data, .. }
            | Icmpv6Repr::TimeExceeded { data, .. }
            | Icmpv6Repr::Other { data, .. } => HEADER_LEN + data.len(),
        }
    }

    /// Writes the message and its checksum into a buffer of exactly
    /// [`Icmpv6Repr::buffer_len`] bytes.
    ///
    /// # Panics
    /// When the buffer is shorter than [`Icmpv6Repr::buffer_len`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Icmpv6Packet<T>, ips: &IpPair) {
        let word = |hi: u16, lo: u16| (u32::from(hi) << 16) | u32::from(lo);
        let nd = |packet: &mut Icmpv6Packet<T>,
                  t: u8,
                  flags: u8,
                  target: &Ipv6Addr,
                  opt: u8,
                  ll: &Option<MacAddr>| {
            packet.set_type_code(t, 0);
            packet.set_rest_of_header(u32::from(flags) << 24);
            let b = packet.buffer.as_mut();
            b[field::ND_TARGET..field::ND_TARGET + 16].copy_from_slice(&target.octets());
            if let Some(mac) = ll {
                b[field::ND_OPTIONS] = opt;
                b[field::ND_OPTIONS + 1] = 1;
                b[field::ND_OPTIONS + 2..field::ND_OPTIONS + 8].copy_from_slice(&mac.0);
            }
        };
        let (t, code, rest, data): (u8, u8, u32, &[u8]) = match self {
            Icmpv6Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => (ECHO_REQUEST, 0, word(*ident, *seq_no), data),
            Icmpv6Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => (ECHO_REPLY, 0, word(*ident, *seq_no), data),
            Icmpv6Repr::PacketTooBig { mtu, data } => (PACKET_TOO_BIG, 0, *mtu, data),
            Icmpv6Repr::DstUnreachable { code, data } => (DST_UNREACHABLE, *code, 0, data),
            Icmpv6Repr::TimeExceeded { code, data } => (TIME_EXCEEDED, *code, 0, data),
            Icmpv6Repr::Other {
                msg_type,
                code,
                rest,
                data,
            } => (*msg_type, *code, *rest, data),
            Icmpv6Repr::NeighborSolicit {
                target,
                source_lladdr,
            } => {
                nd(
                    packet,
                    NEIGHBOR_SOLICIT,
                    0,
                    target,
                    OPT_SOURCE_LLADDR,
                    source_lladdr,
                );
                packet.fill_checksum(ips);
                return;
            }
            Icmpv6Repr::NeighborAdvert {
                flags,
                target,
                target_lladdr,
            } => {
                nd(
                    packet,
                    NEIGHBOR_ADVERT,
                    flags.0 & 0xe0,
                    target,
                    OPT_TARGET_LLADDR,
                    target_lladdr,
                );
                packet.fill_checksum(ips);
                return;
            }
        };
        packet.set_type_code(t, code);
        packet.set_rest_of_header(rest);
        packet.buffer.as_mut()[field::DATA..field::DATA + data.len()].copy_from_slice(data);
        packet.fill_checksum(ips);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ips() -> IpPair {
        IpPair::V6(
            "fe80::1".parse().unwrap(),
            "ff02::1:ff00:2".parse().unwrap(),
        )
    }

    // NS for 2001:db8::2 with source link-layer option 02:00:00:00:00:01;
    // checksum field left to compute.
    fn ns_bytes() -> [u8; 32] {
        let mut b = [0u8; 32];
        b[0] = 135;
        b[8..24].copy_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        b[24] = 1;
        b[25] = 1;
        b[26..32].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        let mut p = Icmpv6Packet::new_unchecked(&mut b[..]);
        p.fill_checksum(&ips());
        b
    }

    #[test]
    fn deconstruct_ns() {
        let b = ns_bytes();
        let p = Icmpv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.msg_type(), 135);
        assert!(p.verify_checksum(&ips()));
        let repr = Icmpv6Repr::parse(&p, &ips()).unwrap();
        assert_eq!(
            repr,
            Icmpv6Repr::NeighborSolicit {
                target: "2001:db8::2".parse().unwrap(),
                source_lladdr: Some(MacAddr([2, 0, 0, 0, 0, 1]))
            }
        );
        let mut out = [0u8; 32];
        repr.emit(&mut Icmpv6Packet::new_unchecked(&mut out[..]), &ips());
        assert_eq!(out, b);
    }

    #[test]
    fn pseudo_header_matters() {
        let b = ns_bytes();
        let other = IpPair::V6(
            "fe80::9".parse().unwrap(),
            "ff02::1:ff00:2".parse().unwrap(),
        );
        let p = Icmpv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Icmpv6Repr::parse(&p, &other), Err(Error::BadChecksum));
    }

    #[test]
    fn malformed_nd() {
        let b = ns_bytes();
        assert!(matches!(
            Icmpv6Packet::new_checked(&b[..20]),
            Err(Error::Truncated { .. })
        ));
        let mut z = b;
        z[25] = 0; // zero-length option
        Icmpv6Packet::new_unchecked(&mut z[..]).fill_checksum(&ips());
        assert_eq!(
            Icmpv6Repr::parse(&Icmpv6Packet::new_checked(&z[..]).unwrap(), &ips()),
            Err(Error::BadOption)
        );
        let mut long = b;
        long[25] = 2; // claims 16 bytes, only 8 left
        Icmpv6Packet::new_unchecked(&mut long[..]).fill_checksum(&ips());
        assert!(matches!(
            Icmpv6Repr::parse(&Icmpv6Packet::new_checked(&long[..]).unwrap(), &ips()),
            Err(Error::Truncated { .. })
        ));
    }

    #[test]
    fn na_without_option_and_ptb() {
        let na = Icmpv6Repr::NeighborAdvert {
            flags: NdpFlags::ROUTER,
            target: "2001:db8::7".parse().unwrap(),
            target_lladdr: None,
        };
        assert_eq!(na.buffer_len(), 24);
        let mut b = [0u8; 24];
        na.emit(&mut Icmpv6Packet::new_unchecked(&mut b[..]), &ips());
        assert_eq!(b[4], 0x80);
        assert_eq!(
            Icmpv6Repr::parse(&Icmpv6Packet::new_checked(&b[..]).unwrap(), &ips()).unwrap(),
            na
        );
        let inner = [0x60u8; 48];
        let ptb = Icmpv6Repr::PacketTooBig {
            mtu: 1430,
            data: &inner,
        };
        let mut b = [0u8; 56];
        ptb.emit(&mut Icmpv6Packet::new_unchecked(&mut b[..]), &ips());
        assert_eq!(&b[..8], &[2, 0, b[2], b[3], 0, 0, 0x05, 0x96]);
        assert_eq!(
            Icmpv6Repr::parse(&Icmpv6Packet::new_checked(&b[..]).unwrap(), &ips()).unwrap(),
            ptb
        );
    }

    proptest! {
        #[test]
        fn nd_round_trip(t in any::<[u8; 16]>(), mac in proptest::option::of(any::<[u8; 6]>()),
                         flags in 0u8..8, solicit in any::<bool>()) {
            let target = Ipv6Addr::from(t);
            let ll = mac.map(MacAddr);
            let repr = if solicit {
                Icmpv6Repr::NeighborSolicit { target, source_lladdr: ll }
            } else {
                Icmpv6Repr::NeighborAdvert { flags: NdpFlags(flags << 5), target, target_lladdr: ll }
            };
            let mut buf = vec![0u8; repr.buffer_len()];
            repr.emit(&mut Icmpv6Packet::new_unchecked(&mut buf[..]), &ips());
            let parsed = Icmpv6Repr::parse(&Icmpv6Packet::new_checked(&buf[..]).unwrap(), &ips()).unwrap();
            prop_assert_eq!(parsed, repr);
        }

        #[test]
        fn echo_round_trip(id in any::<u16>(), seq in any::<u16>(), data in proptest::collection::vec(any::<u8>(), 0..40), req in any::<bool>()) {
            let repr = if req {
                Icmpv6Repr::EchoRequest { ident: id, seq_no: seq, data: &data }
            } else {
                Icmpv6Repr::EchoReply { ident: id, seq_no: seq, data: &data }
            };
            let mut buf = vec![0u8; repr.buffer_len()];
            repr.emit(&mut Icmpv6Packet::new_unchecked(&mut buf[..]), &ips());
            let parsed = Icmpv6Repr::parse(&Icmpv6Packet::new_checked(&buf[..]).unwrap(), &ips()).unwrap();
            prop_assert_eq!(parsed, repr);
        }

        #[test]
        fn parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(p) = Icmpv6Packet::new_checked(&data[..]) {
                let _ = Icmpv6Repr::parse(&p, &ips());
            }
        }
    }
}
