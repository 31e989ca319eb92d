//! IPv4 (RFC 791): header with options, checksum, fragments.
//!
//! ```
//! use core::net::Ipv4Addr;
//! use vxlan_core::wire::{IpProtocol, Ipv4Packet, Ipv4Repr};
//!
//! let repr = Ipv4Repr::new(
//!     Ipv4Addr::new(192, 0, 2, 1),
//!     Ipv4Addr::new(192, 0, 2, 2),
//!     IpProtocol::UDP,
//!     8,
//! );
//! let mut buf = [0u8; 28];
//! let mut packet = Ipv4Packet::new_unchecked(&mut buf[..]);
//! repr.emit(&mut packet);
//! let packet = Ipv4Packet::new_checked(&buf[..]).unwrap();
//! assert!(packet.verify_checksum());
//! assert_eq!(Ipv4Repr::parse(&packet).unwrap(), repr);
//! ```

use core::net::Ipv4Addr;

use super::{check, checksum, read_u16, write_u16, Error, IpProtocol, Result};

mod field {
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLAGS_FRAG: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
}

/// Length of an IPv4 header without options.
pub const HEADER_LEN: usize = 20;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const FRAG_OFFSET_MASK: u16 = 0x1fff;

/// A view of an IPv4 packet.
#[derive(Debug, Clone, Copy)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps a buffer after [`Ipv4Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the header, its options and the total length all fit,
    /// and that they are consistent with each other. The buffer may be
    /// longer than the total length (Ethernet padding); the payload accessor
    /// excludes the excess.
    pub fn check_len(&self) -> Result<()> {
        let buf = self.buffer.as_ref();
        check(buf, HEADER_LEN)?;
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            return Err(Error::BadHeaderLength);
        }
        check(buf, header_len)?;
        let total = usize::from(self.total_len());
        if total < header_len {
            return Err(Error::BadLength);
        }
        check(buf, total)
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// IP version (4 for a valid packet).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL * 4), options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// Differentiated services code point (6 bits).
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    /// Explicit congestion notification (2 bits).
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    /// Total length: header plus payload.
    #[inline]
    pub fn total_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Identification.
    #[inline]
    pub fn ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::IDENT)
    }

    /// Don't fragment.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLAGS_FRAG) & FLAG_DF != 0
    }

    /// More fragments.
    #[inline]
    pub fn more_frags(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLAGS_FRAG) & FLAG_MF != 0
    }

    /// Fragment offset in bytes.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (read_u16(self.buffer.as_ref(), field::FLAGS_FRAG) & FRAG_OFFSET_MASK) << 3
    }

    /// True for any fragment of a fragmented datagram (MF set or a non-zero
    /// offset).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLAGS_FRAG) & (FLAG_MF | FRAG_OFFSET_MASK) != 0
    }

    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Upper-layer protocol.
    #[inline]
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol(self.buffer.as_ref()[field::PROTOCOL])
    }

    /// The checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(
            b[field::SRC],
            b[field::SRC + 1],
            b[field::SRC + 2],
            b[field::SRC + 3],
        )
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(
            b[field::DST],
            b[field::DST + 1],
            b[field::DST + 2],
            b[field::DST + 3],
        )
    }

    /// The option bytes between the fixed header and the payload.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// True when the header checksum verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(&self.buffer.as_ref()[..self.header_len()])) == 0xffff
    }

    /// The payload, bounded by the total length (padding excluded).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets version 4 and the header length (a multiple of 4, 20 to 60).
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        let ihl = u8::try_from(header_len / 4).unwrap_or(0x0f) & 0x0f;
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ihl;
    }

    /// Sets DSCP and ECN together.
    pub fn set_dscp_ecn(&mut self, dscp: u8, ecn: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = (dscp << 2) | (ecn & 0x03);
    }

    /// Sets the total length.
    pub fn set_total_len(&mut self, len: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, len);
    }

    /// Sets the identification.
    pub fn set_ident(&mut self, ident: u16) {
        write_u16(self.buffer.as_mut(), field::IDENT, ident);
    }

    /// Sets flags and fragment offset (offset in bytes, a multiple of 8).
    pub fn set_flags_and_frag(&mut self, dont_frag: bool, more_frags: bool, frag_offset: u16) {
        let mut v = (frag_offset >> 3) & FRAG_OFFSET_MASK;
        if dont_frag {
            v |= FLAG_DF;
        }
        if more_frags {
            v |= FLAG_MF;
        }
        write_u16(self.buffer.as_mut(), field::FLAGS_FRAG, v);
    }

    /// Sets the TTL.
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    /// Sets the protocol.
    pub fn set_protocol(&mut self, protocol: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = protocol.0;
    }

    /// Sets the checksum field as is.
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC..field::SRC + 4].copy_from_slice(&addr.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::DST..field::DST + 4].copy_from_slice(&addr.octets());
    }

    /// Computes and writes the header checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let len = self.header_len();
        let c = checksum::checksum(&self.buffer.as_ref()[..len]);
        self.set_checksum(c);
    }

    /// Changes the total length and patches the checksum incrementally
    /// (RFC 1624) instead of summing the header again.
    #[inline]
    pub fn update_total_len(&mut self, len: u16) {
        let old = self.total_len();
        let c = checksum::update16(self.checksum(), old, len);
        self.set_total_len(len);
        self.set_checksum(c);
    }

    /// Changes the TTL and patches the checksum incrementally.
    #[inline]
    pub fn update_ttl(&mut self, ttl: u8) {
        let b = self.buffer.as_ref();
        let old = read_u16(b, field::TTL);
        let new = (u16::from(ttl) << 8) | u16::from(b[field::PROTOCOL]);
        let c = checksum::update16(self.checksum(), old, new);
        self.set_ttl(ttl);
        self.set_checksum(c);
    }

    /// The payload, writable, bounded by the total length.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        let end = usize::from(self.total_len());
        &mut self.buffer.as_mut()[start..end]
    }
}

/// The meaning of an IPv4 header (options are accepted on parse but not
/// kept; `emit` writes a 20-byte header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Upper-layer protocol.
    pub protocol: IpProtocol,
    /// Payload length (total length minus header length).
    pub payload_len: u16,
    /// Time to live.
    pub ttl: u8,
    /// DSCP (6 bits).
    pub dscp: u8,
    /// ECN (2 bits).
    pub ecn: u8,
    /// Identification.
    pub ident: u16,
    /// Don't fragment.
    pub dont_frag: bool,
    /// More fragments.
    pub more_frags: bool,
    /// Fragment offset in bytes.
    pub frag_offset: u16,
}

impl Ipv4Repr {
    /// A datagram with TTL 64, DF set, DSCP and ECN zero.
    pub const fn new(
        src_addr: Ipv4Addr,
        dst_addr: Ipv4Addr,
        protocol: IpProtocol,
        payload_len: u16,
    ) -> Self {
        Ipv4Repr {
            src_addr,
            dst_addr,
            protocol,
            payload_len,
            ttl: 64,
            dscp: 0,
            ecn: 0,
            ident: 0,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        }
    }

    /// Reads a checked packet. Verifies the version; does not verify the
    /// checksum (see [`Ipv4Packet::verify_checksum`]; a NIC may have done it).
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>) -> Result<Ipv4Repr> {
        packet.check_len()?;
        if packet.version() != 4 {
            return Err(Error::BadVersion);
        }
        let header_len = u16::try_from(packet.header_len()).map_err(|_| Error::BadHeaderLength)?;
        Ok(Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: packet.total_len() - header_len,
            ttl: packet.ttl(),
            dscp: packet.dscp(),
            ecn: packet.ecn(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            more_frags: packet.more_frags(),
            frag_offset: packet.frag_offset(),
        })
    }

    /// True when this header belongs to a fragment.
    pub const fn is_fragment(&self) -> bool {
        self.more_frags || self.frag_offset != 0
    }

    /// Bytes of header [`Ipv4Repr::emit`] writes (20).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes a 20-byte header with a correct checksum.
    ///
    /// # Panics
    /// When the buffer is shorter than 20 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv4Packet<T>) {
        packet.set_version_and_header_len(HEADER_LEN);
        packet.set_dscp_ecn(self.dscp, self.ecn);
        // HEADER_LEN is 20, so the sum only overflows for payloads the
        // caller could not have built; saturate rather than wrap.
        packet.set_total_len(self.payload_len.saturating_add(20));
        packet.set_ident(self.ident);
        packet.set_flags_and_frag(self.dont_frag, self.more_frags, self.frag_offset);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // 192.168.0.1 -> 192.168.0.199, UDP, total 0x73, DF, TTL 64, checksum
    // 0xb861 (a widely published example header), followed by a payload.
    static HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    fn packet_bytes() -> [u8; 0x73] {
        let mut b = [0u8; 0x73];
        b[..20].copy_from_slice(&HEADER);
        b
    }

    #[test]
    fn deconstruct() {
        let bytes = packet_bytes();
        let p = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 0x73);
        assert!(p.dont_frag());
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), IpProtocol::UDP);
        assert_eq!(p.src_addr(), Ipv4Addr::new(192, 168, 0, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(192, 168, 0, 199));
        assert!(p.verify_checksum());
        assert_eq!(p.payload().len(), 0x73 - 20);
    }

    #[test]
    fn construct() {
        let mut bytes = [0u8; 0x73];
        let mut p = Ipv4Packet::new_unchecked(&mut bytes[..]);
        p.set_version_and_header_len(20);
        p.set_dscp_ecn(0, 0);
        p.set_total_len(0x73);
        p.set_ident(0);
        p.set_flags_and_frag(true, false, 0);
        p.set_ttl(64);
        p.set_protocol(IpProtocol::UDP);
        p.set_src_addr(Ipv4Addr::new(192, 168, 0, 1));
        p.set_dst_addr(Ipv4Addr::new(192, 168, 0, 199));
        p.fill_checksum();
        assert_eq!(&bytes[..20], &HEADER[..]);
    }

    #[test]
    fn parse_emit() {
        let bytes = packet_bytes();
        let repr = Ipv4Repr::parse(&Ipv4Packet::new_checked(&bytes[..]).unwrap()).unwrap();
        assert_eq!(repr.payload_len, 0x73 - 20);
        let mut out = [0u8; 0x73];
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut out[..]));
        assert_eq!(&out[..20], &HEADER[..]);
    }

    #[test]
    fn options_and_padding() {
        // IHL 6 (one word of options: NOP NOP NOP EOL), 4 bytes of payload,
        // then 6 bytes of Ethernet padding past the total length.
        let mut b = [0u8; 34];
        b[..20].copy_from_slice(&HEADER);
        b[0] = 0x46;
        b[2..4].copy_from_slice(&28u16.to_be_bytes());
        b[20..24].copy_from_slice(&[1, 1, 1, 0]);
        b[24..28].copy_from_slice(&[9, 8, 7, 6]);
        let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
        p.fill_checksum();
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(p.options(), &[1, 1, 1, 0]);
        assert_eq!(p.payload(), &[9, 8, 7, 6]);
        assert_eq!(Ipv4Repr::parse(&p).unwrap().payload_len, 4);
    }

    #[test]
    fn malformed() {
        let bytes = packet_bytes();
        assert!(matches!(
            Ipv4Packet::new_checked(&bytes[..19]),
            Err(Error::Truncated { .. })
        ));
        // Total length past the buffer.
        assert!(matches!(
            Ipv4Packet::new_checked(&bytes[..0x72]),
            Err(Error::Truncated { .. })
        ));
        let mut b = bytes;
        b[0] = 0x44; // IHL 4
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            Error::BadHeaderLength
        );
        let mut b = bytes;
        b[0] = 0x4f; // IHL 15 = 60 bytes, fine, but total 19 < header
        b[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            Error::BadLength
        );
        let mut b = bytes;
        b[0] = 0x65; // version 6
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Ipv4Repr::parse(&p).unwrap_err(), Error::BadVersion);
        let mut b = bytes;
        b[15] ^= 1;
        assert!(!Ipv4Packet::new_checked(&b[..]).unwrap().verify_checksum());
    }

    #[test]
    fn fragments() {
        let mut b = packet_bytes();
        let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
        p.set_flags_and_frag(false, true, 0);
        assert!(p.is_fragment() && p.more_frags() && p.frag_offset() == 0);
        p.set_flags_and_frag(false, false, 1480);
        assert!(p.is_fragment() && !p.more_frags());
        assert_eq!(p.frag_offset(), 1480);
        let repr = Ipv4Repr::parse(&Ipv4Packet::new_checked(&b[..]).unwrap()).unwrap();
        assert!(repr.is_fragment());
    }

    #[test]
    fn incremental_updates_keep_checksum_valid() {
        let mut b = [0u8; 1500];
        b[..20].copy_from_slice(&HEADER);
        let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
        p.update_total_len(1500);
        p.update_ttl(1);
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.total_len(), 1500);
        assert_eq!(p.ttl(), 1);
        assert!(p.verify_checksum());
    }

    proptest! {
        #[test]
        fn round_trip(src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(), proto in any::<u8>(),
                      payload_len in 0u16..200, ttl in any::<u8>(), dscp in 0u8..64, ecn in 0u8..4,
                      ident in any::<u16>(), df in any::<bool>(), mf in any::<bool>(), off in 0u16..8192) {
            let repr = Ipv4Repr {
                src_addr: src.into(), dst_addr: dst.into(), protocol: IpProtocol(proto),
                payload_len, ttl, dscp, ecn, ident, dont_frag: df, more_frags: mf, frag_offset: off << 3,
            };
            let mut buf = [0u8; 220];
            repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]));
            let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
            prop_assert!(p.verify_checksum());
            prop_assert_eq!(Ipv4Repr::parse(&p).unwrap(), repr);
        }

        #[test]
        fn checked_accessors_never_panic(data in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(p) = Ipv4Packet::new_checked(&data[..]) {
                let _ = (p.payload(), p.options(), p.verify_checksum(), Ipv4Repr::parse(&p));
            }
        }
    }
}
