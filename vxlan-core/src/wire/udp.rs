//! UDP (RFC 768) with checksums over the IPv4 and IPv6 pseudo-headers, and
//! the zero-checksum rules.
//!
//! Over IPv4 a zero checksum means "none". Over IPv6 a zero checksum is
//! invalid (RFC 8200 section 8.1) except for tunnels that opt in under
//! RFC 6935/6936; [`UdpPacket::checksum_status`] reports
//! [`ChecksumStatus::Absent`] and lets the caller apply its policy.
//!
//! ```
//! use vxlan_core::wire::udp::{ChecksumStatus, UdpPacket, UdpRepr};
//! use vxlan_core::wire::IpPair;
//!
//! let ips = IpPair::V6("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap());
//! let mut buf = [0u8; 12];
//! buf[8..].copy_from_slice(b"ping");
//! let repr = UdpRepr { src_port: 49152, dst_port: 4789 };
//! repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), 4, Some(&ips));
//! let packet = UdpPacket::new_checked(&buf[..]).unwrap();
//! assert_eq!(packet.checksum_status(&ips), ChecksumStatus::Valid);
//! ```

use super::{check, checksum, read_u16, write_u16, Error, IpPair, IpProtocol, Result};

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
}

/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;

/// What a UDP checksum field says about the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumStatus {
    /// The field is zero: no checksum was computed.
    Absent,
    /// The checksum verifies.
    Valid,
    /// The checksum does not verify.
    Invalid,
}

/// A view of a UDP datagram.
#[derive(Debug, Clone, Copy)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    /// Wraps a buffer after [`UdpPacket::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks the header fits, the length field covers at least the header,
    /// and the buffer holds the whole datagram. The buffer may be longer
    /// (the IP payload may carry padding).
    pub fn check_len(&self) -> Result<()> {
        let buf = self.buffer.as_ref();
        check(buf, HEADER_LEN)?;
        let len = usize::from(self.len());
        if len < HEADER_LEN {
            return Err(Error::BadLength);
        }
        check(buf, len)
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// Length field: header plus payload.
    #[inline]
    pub fn len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// True when the length field says there is no payload.
    #[inline]
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }

    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The payload, bounded by the length field.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }

    /// Checks the checksum against the pseudo-header of `ips`.
    pub fn checksum_status(&self, ips: &IpPair) -> ChecksumStatus {
        if self.checksum() == 0 {
            return ChecksumStatus::Absent;
        }
        let len = self.len();
        let data = &self.buffer.as_ref()[..usize::from(len)];
        let sum = checksum::combine(
            ips.pseudo_header_sum(IpProtocol::UDP, u32::from(len)),
            checksum::sum(data),
        );
        if checksum::fold(sum) == 0xffff {
            ChecksumStatus::Valid
        } else {
            ChecksumStatus::Invalid
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port.
    #[inline]
    pub fn set_src_port(&mut self, port: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT, port);
    }

    /// Sets the destination port.
    #[inline]
    pub fn set_dst_port(&mut self, port: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT, port);
    }

    /// Sets the length field.
    #[inline]
    pub fn set_len(&mut self, len: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, len);
    }

    /// Sets the checksum field as is.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Computes and writes the checksum over the pseudo-header of `ips`
    /// and the datagram as long as its length field says. A computed zero
    /// is sent as 0xffff, since zero means "no checksum".
    pub fn fill_checksum(&mut self, ips: &IpPair) {
        self.set_checksum(0);
        let len = self.len();
        let data = &self.buffer.as_ref()[..usize::from(len)];
        let sum = checksum::combine(
            ips.pseudo_header_sum(IpProtocol::UDP, u32::from(len)),
            checksum::sum(data),
        );
        let c = !checksum::fold(sum);
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// The meaning of a UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
}

impl UdpRepr {
    /// Reads a checked datagram's ports. Checksums are the caller's policy
    /// (see [`UdpPacket::checksum_status`]).
    pub fn parse<T: AsRef<[u8]>>(packet: &UdpPacket<T>) -> Result<UdpRepr> {
        packet.check_len()?;
        Ok(UdpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
        })
    }

    /// Bytes of header [`UdpRepr::emit`] writes (8).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header for a payload of `payload_len` bytes already in
    /// place after it. With `ips`, the checksum is computed; without, it is
    /// zero (allowed over IPv4, and over IPv6 only for RFC 6935 tunnels).
    ///
    /// # Panics
    /// When the buffer is shorter than the header plus payload.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut UdpPacket<T>,
        payload_len: usize,
        ips: Option<&IpPair>,
    ) {
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len(u16::try_from(HEADER_LEN + payload_len).unwrap_or(u16::MAX));
        match ips {
            Some(ips) => packet.fill_checksum(ips),
            None => packet.set_checksum(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;
    use proptest::prelude::*;

    // 192.168.1.1:1024 -> 192.168.1.2:53, payload "abcd"; checksum computed
    // by hand from the RFC 768 definition.
    static DATAGRAM: [u8; 12] = [
        0x04, 0x00, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, b'a', b'b', b'c', b'd',
    ];

    fn v4() -> IpPair {
        IpPair::V4(Ipv4Addr::new(192, 168, 1, 1), Ipv4Addr::new(192, 168, 1, 2))
    }

    fn hand_checksum() -> u16 {
        // pseudo: c0a8 0101 c0a8 0102 0011 000c; header: 0400 0035 000c 0000; data: 6162 6364
        let words: [u32; 12] = [
            0xc0a8, 0x0101, 0xc0a8, 0x0102, 0x0011, 0x000c, 0x0400, 0x0035, 0x000c, 0x0000, 0x6162,
            0x6364,
        ];
        let mut s: u32 = words.iter().sum();
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        !u16::try_from(s).unwrap()
    }

    #[test]
    fn deconstruct() {
        let p = UdpPacket::new_checked(&DATAGRAM[..]).unwrap();
        assert_eq!(p.src_port(), 1024);
        assert_eq!(p.dst_port(), 53);
        assert_eq!(p.len(), 12);
        assert_eq!(p.payload(), b"abcd");
        assert_eq!(p.checksum_status(&v4()), ChecksumStatus::Absent);
    }

    #[test]
    fn construct_with_checksum() {
        let mut buf = DATAGRAM;
        let repr = UdpRepr::parse(&UdpPacket::new_checked(&DATAGRAM[..]).unwrap()).unwrap();
        repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), 4, Some(&v4()));
        assert_eq!(u16::from_be_bytes([buf[6], buf[7]]), hand_checksum());
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(p.checksum_status(&v4()), ChecksumStatus::Valid);
        let mut bad = buf;
        bad[9] ^= 0x40;
        assert_eq!(
            UdpPacket::new_checked(&bad[..])
                .unwrap()
                .checksum_status(&v4()),
            ChecksumStatus::Invalid
        );
        // Same bytes, another pseudo-header: must not verify.
        assert_eq!(
            p.checksum_status(&v4().reversed()),
            ChecksumStatus::Valid,
            "sum is symmetric in addresses"
        );
        let other = IpPair::V4(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(192, 168, 1, 2));
        assert_eq!(p.checksum_status(&other), ChecksumStatus::Invalid);
    }

    #[test]
    fn computed_zero_is_sent_as_ffff() {
        // Find a payload whose checksum computes to zero: choose the last
        // word so the sum is 0xffff.
        let ips = v4();
        let mut buf = [0u8; 10];
        let repr = UdpRepr {
            src_port: 1,
            dst_port: 2,
        };
        repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), 2, None);
        let partial = checksum::combine(
            ips.pseudo_header_sum(IpProtocol::UDP, 10),
            checksum::sum(&buf),
        );
        let need = 0xffff - checksum::fold(partial);
        buf[8..10].copy_from_slice(&need.to_be_bytes());
        let mut p = UdpPacket::new_unchecked(&mut buf[..]);
        p.fill_checksum(&ips);
        assert_eq!(p.checksum(), 0xffff);
        assert_eq!(p.checksum_status(&ips), ChecksumStatus::Valid);
    }

    #[test]
    fn malformed() {
        assert!(matches!(
            UdpPacket::new_checked(&DATAGRAM[..7]),
            Err(Error::Truncated { .. })
        ));
        assert!(matches!(
            UdpPacket::new_checked(&DATAGRAM[..11]),
            Err(Error::Truncated { .. })
        ));
        let mut b = DATAGRAM;
        b[5] = 7; // length below the header
        assert_eq!(
            UdpPacket::new_checked(&b[..]).unwrap_err(),
            Error::BadLength
        );
    }

    proptest! {
        #[test]
        fn round_trip(sp in any::<u16>(), dp in any::<u16>(), payload in proptest::collection::vec(any::<u8>(), 0..64),
                      v6 in any::<bool>(), a in any::<[u8; 16]>(), b in any::<[u8; 16]>()) {
            let ips = if v6 {
                IpPair::V6(a.into(), b.into())
            } else {
                IpPair::V4([a[0], a[1], a[2], a[3]].into(), [b[0], b[1], b[2], b[3]].into())
            };
            let mut buf = vec![0u8; 8 + payload.len()];
            buf[8..].copy_from_slice(&payload);
            let repr = UdpRepr { src_port: sp, dst_port: dp };
            repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), payload.len(), Some(&ips));
            let p = UdpPacket::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(UdpRepr::parse(&p).unwrap(), repr);
            prop_assert_eq!(p.checksum_status(&ips), ChecksumStatus::Valid);
            prop_assert_eq!(p.payload(), &payload[..]);
        }
    }
}
