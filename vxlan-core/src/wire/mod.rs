//! Zero-copy views and `Repr` structs for every header a VTEP handles.
//!
//! Each header has two layers, in the style smoltcp made familiar:
//!
//! * a *view* (`EthernetFrame<T>`, `Ipv4Packet<T>`, ...) over any
//!   `T: AsRef<[u8]>`, with accessors that read fields in place. `new_checked`
//!   validates lengths once; after it succeeds no accessor can panic.
//!   `new_unchecked` skips the check for buffers the caller already validated.
//! * a `Repr` (`Ipv4Repr`, `UdpRepr`, ...) holding the header's meaning, with
//!   `parse` (from a checked view), `buffer_len` and `emit` (into a caller's
//!   buffer). Nothing allocates.
//!
//! Byte layouts are named ranges in a private `field` module per header.

use core::fmt;

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod udp;
pub mod vxlan;

pub use arp::{ArpOperation, ArpPacket, ArpRepr};
pub use ethernet::{EthernetFrame, EthernetRepr, L2Header, VlanTag, VlanTagRepr, MAX_VLAN_TAGS};
pub use icmpv4::{Icmpv4Packet, Icmpv4Repr};
pub use icmpv6::{Icmpv6Packet, Icmpv6Repr, NdpFlags};
pub use ipv4::{Ipv4Packet, Ipv4Repr};
pub use ipv6::{Ipv6Packet, Ipv6Repr, UpperLayer};
pub use udp::{UdpPacket, UdpRepr};
pub use vxlan::{GbpRepr, GpeNextProtocol, GpeRepr, ReservedBitsPolicy, VxlanHeader, VxlanRepr};

/// Why a buffer could not be read as a header.
///
/// Small and `Copy` so it costs nothing on the packet path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The buffer is shorter than the header (or a length field) needs.
    Truncated {
        /// Bytes the header needs.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
    /// A version field holds a value this codec does not speak.
    BadVersion,
    /// A header-length field is below the minimum or past the buffer.
    BadHeaderLength,
    /// A total/payload length field disagrees with the header or the buffer.
    BadLength,
    /// A checksum does not verify.
    BadChecksum,
    /// The header is well formed but of a kind this codec does not handle
    /// (an ARP packet for another hardware type, say).
    Unsupported,
    /// More VLAN tags (or IPv6 extension headers) than the codec follows.
    TooManyHeaders,
    /// Reserved bits are set and the policy is [`ReservedBitsPolicy::Strict`].
    ReservedBits,
    /// An option (IPv6 extension, NDP option) is malformed.
    BadOption,
}

impl Error {
    /// A short stable name, suitable for a counter label.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Error::Truncated { .. } => "truncated",
            Error::BadVersion => "bad_version",
            Error::BadHeaderLength => "bad_header_length",
            Error::BadLength => "bad_length",
            Error::BadChecksum => "bad_checksum",
            Error::Unsupported => "unsupported",
            Error::TooManyHeaders => "too_many_headers",
            Error::ReservedBits => "reserved_bits",
            Error::BadOption => "bad_option",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated { needed, available } => {
                write!(f, "truncated: need {needed} bytes, have {available}")
            }
            other => f.write_str(other.as_str()),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

/// The source and destination of an IP packet, what a transport checksum's
/// pseudo-header covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpPair {
    /// IPv4 source and destination.
    V4(core::net::Ipv4Addr, core::net::Ipv4Addr),
    /// IPv6 source and destination.
    V6(core::net::Ipv6Addr, core::net::Ipv6Addr),
}

impl IpPair {
    /// The source address.
    pub fn src(&self) -> core::net::IpAddr {
        match *self {
            IpPair::V4(s, _) => s.into(),
            IpPair::V6(s, _) => s.into(),
        }
    }

    /// The destination address.
    pub fn dst(&self) -> core::net::IpAddr {
        match *self {
            IpPair::V4(_, d) => d.into(),
            IpPair::V6(_, d) => d.into(),
        }
    }

    /// The same pair with source and destination swapped.
    pub fn reversed(&self) -> IpPair {
        match *self {
            IpPair::V4(s, d) => IpPair::V4(d, s),
            IpPair::V6(s, d) => IpPair::V6(d, s),
        }
    }

    /// The unfolded one's-complement sum of the pseudo-header for an upper
    /// layer of `protocol` and `length` bytes.
    pub fn pseudo_header_sum(&self, protocol: IpProtocol, length: u32) -> u64 {
        match self {
            IpPair::V4(s, d) => {
                // An IPv4 upper layer never exceeds 65535 bytes.
                checksum::pseudo_header_v4(
                    *s,
                    *d,
                    protocol,
                    u16::try_from(length).unwrap_or(u16::MAX),
                )
            }
            IpPair::V6(s, d) => checksum::pseudo_header_v6(s, d, protocol, length),
        }
    }
}

/// Result alias for the codecs.
pub type Result<T> = core::result::Result<T, Error>;

/// Fails with [`Error::Truncated`] when `buf` is shorter than `needed`.
#[inline(always)]
pub(crate) fn check(buf: &[u8], needed: usize) -> Result<()> {
    if buf.len() < needed {
        Err(Error::Truncated {
            needed,
            available: buf.len(),
        })
    } else {
        Ok(())
    }
}

#[inline(always)]
pub(crate) fn read_u16(buf: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([buf[at], buf[at + 1]])
}

#[inline(always)]
pub(crate) fn write_u16(buf: &mut [u8], at: usize, value: u16) {
    buf[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

#[inline(always)]
pub(crate) fn read_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

#[inline(always)]
pub(crate) fn write_u32(buf: &mut [u8], at: usize, value: u32) {
    buf[at..at + 4].copy_from_slice(&value.to_be_bytes());
}

/// A 48-bit IEEE 802 MAC address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// 00:00:00:00:00:00.
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// Reads an address from the first six bytes of `bytes`.
    ///
    /// # Panics
    /// When `bytes` is shorter than six bytes.
    pub fn from_bytes(bytes: &[u8]) -> MacAddr {
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&bytes[..6]);
        MacAddr(mac)
    }

    /// The six bytes.
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// True for ff:ff:ff:ff:ff:ff.
    pub fn is_broadcast(&self) -> bool {
        self.0 == [0xff; 6]
    }

    /// True when the I/G bit is set (multicast, broadcast included).
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// True for a unicast address (I/G bit clear), the zero address included.
    pub const fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// True for 00:00:00:00:00:00.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }

    /// True when the U/L bit says the address is locally administered.
    pub const fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }

    /// True for an address a bridge may learn as a source: unicast and not
    /// all zero.
    pub fn is_learnable(&self) -> bool {
        self.is_unicast() && !self.is_zero()
    }

    /// The address in the low 48 bits of a `u64` (first byte most
    /// significant).
    #[inline]
    pub const fn to_u64(&self) -> u64 {
        let b = self.0;
        // Two plain big-endian loads: the byte-wise form compiles to a
        // vector shuffle on x86-64.
        ((u16::from_be_bytes([b[0], b[1]]) as u64) << 32)
            | u32::from_be_bytes([b[2], b[3], b[4], b[5]]) as u64
    }

    /// The inverse of [`MacAddr::to_u64`]; bits above 48 are ignored.
    #[inline]
    pub const fn from_u64(value: u64) -> MacAddr {
        let b = value.to_be_bytes();
        MacAddr([b[2], b[3], b[4], b[5], b[6], b[7]])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a MAC address string did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacParseError;

impl fmt::Display for MacParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("expected a MAC address as six hex octets separated by ':' or '-'")
    }
}

#[cfg(feature = "std")]
impl std::error::Error for MacParseError {}

impl core::str::FromStr for MacAddr {
    type Err = MacParseError;

    fn from_str(s: &str) -> core::result::Result<MacAddr, MacParseError> {
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for byte in out.iter_mut() {
            let part = parts.next().ok_or(MacParseError)?;
            if part.is_empty() || part.len() > 2 {
                return Err(MacParseError);
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| MacParseError)?;
        }
        if parts.next().is_some() {
            return Err(MacParseError);
        }
        Ok(MacAddr(out))
    }
}

/// An Ethernet type (the two bytes after the addresses or a VLAN tag).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EtherType(pub u16);

impl EtherType {
    /// IPv4.
    pub const IPV4: EtherType = EtherType(0x0800);
    /// ARP.
    pub const ARP: EtherType = EtherType(0x0806);
    /// Reverse ARP, sent by hypervisors to announce a migrated VM.
    pub const RARP: EtherType = EtherType(0x8035);
    /// IEEE 802.1Q customer VLAN tag.
    pub const VLAN: EtherType = EtherType(0x8100);
    /// IEEE 802.1ad service VLAN tag (QinQ outer tag).
    pub const QINQ: EtherType = EtherType(0x88a8);
    /// The pre-standard QinQ tag some switches still send.
    pub const QINQ_LEGACY: EtherType = EtherType(0x9100);
    /// IPv6.
    pub const IPV6: EtherType = EtherType(0x86dd);

    /// True for a tag protocol identifier this crate follows (802.1Q,
    /// 802.1ad and the legacy 0x9100).
    pub const fn is_vlan_tpid(self) -> bool {
        // 0x8100 and 0x9100 differ only in bit 12, and no other value
        // becomes 0x9100 when that bit is set: two compares, not three.
        (self.0 | 0x1000) == 0x9100 || self.0 == 0x88a8
    }
}

impl fmt::Debug for EtherType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EtherType::IPV4 => f.write_str("IPv4"),
            EtherType::ARP => f.write_str("ARP"),
            EtherType::RARP => f.write_str("RARP"),
            EtherType::VLAN => f.write_str("802.1Q"),
            EtherType::QINQ => f.write_str("802.1ad"),
            EtherType::IPV6 => f.write_str("IPv6"),
            EtherType(other) => write!(f, "0x{other:04x}"),
        }
    }
}

impl fmt::Display for EtherType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// An IP protocol number (IPv4 protocol / IPv6 next header).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpProtocol(pub u8);

impl IpProtocol {
    /// IPv6 hop-by-hop options.
    pub const HOP_BY_HOP: IpProtocol = IpProtocol(0);
    /// ICMP for IPv4.
    pub const ICMP: IpProtocol = IpProtocol(1);
    /// IGMP.
    pub const IGMP: IpProtocol = IpProtocol(2);
    /// TCP.
    pub const TCP: IpProtocol = IpProtocol(6);
    /// UDP.
    pub const UDP: IpProtocol = IpProtocol(17);
    /// IPv6 routing header.
    pub const IPV6_ROUTING: IpProtocol = IpProtocol(43);
    /// IPv6 fragment header.
    pub const IPV6_FRAGMENT: IpProtocol = IpProtocol(44);
    /// IPsec authentication header.
    pub const AUTH: IpProtocol = IpProtocol(51);
    /// ICMP for IPv6.
    pub const ICMPV6: IpProtocol = IpProtocol(58);
    /// IPv6 "no next header".
    pub const IPV6_NO_NEXT: IpProtocol = IpProtocol(59);
    /// IPv6 destination options.
    pub const IPV6_DEST_OPTS: IpProtocol = IpProtocol(60);
}

impl fmt::Debug for IpProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            IpProtocol::ICMP => f.write_str("ICMP"),
            IpProtocol::TCP => f.write_str("TCP"),
            IpProtocol::UDP => f.write_str("UDP"),
            IpProtocol::ICMPV6 => f.write_str("ICMPv6"),
            IpProtocol(other) => write!(f, "proto {other}"),
        }
    }
}

impl fmt::Display for IpProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_text_round_trip() {
        let mac: MacAddr = "02:00:5e:10:00:0a".parse().unwrap();
        assert_eq!(mac.0, [0x02, 0x00, 0x5e, 0x10, 0x00, 0x0a]);
        let mut s = [0u8; 17];
        let mut w = crate::testutil::SliceWriter::new(&mut s);
        core::fmt::write(&mut w, format_args!("{mac}")).unwrap();
        assert_eq!(&s, b"02:00:5e:10:00:0a");
        assert_eq!("02-00-5e-10-00-0a".parse::<MacAddr>().unwrap(), mac);
        assert!("02:00:5e:10:00".parse::<MacAddr>().is_err());
        assert!("02:00:5e:10:00:0a:01".parse::<MacAddr>().is_err());
        assert!("02:00:5e:10:00:0g".parse::<MacAddr>().is_err());
        assert!("02:00:5e:10::0a".parse::<MacAddr>().is_err());
    }

    #[test]
    fn mac_classes() {
        assert!(MacAddr::BROADCAST.is_broadcast());
        assert!(MacAddr::BROADCAST.is_multicast());
        assert!(!MacAddr::BROADCAST.is_learnable());
        assert!(!MacAddr::ZERO.is_learnable());
        assert!(MacAddr([0x01, 0, 0x5e, 0, 0, 1]).is_multicast());
        assert!(MacAddr([0x02, 0, 0, 0, 0, 1]).is_learnable());
        assert!(MacAddr([0x02, 0, 0, 0, 0, 1]).is_local());
        let m = MacAddr([1, 2, 3, 4, 5, 6]);
        assert_eq!(m.to_u64(), 0x0102_0304_0506);
        assert_eq!(MacAddr::from_u64(m.to_u64()), m);
    }

    #[test]
    fn vlan_tpids_are_exactly_three() {
        for v in 0..=u16::MAX {
            assert_eq!(
                EtherType(v).is_vlan_tpid(),
                matches!(v, 0x8100 | 0x88a8 | 0x9100),
                "{v:#06x}"
            );
        }
    }
}
