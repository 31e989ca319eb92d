//! Ethernet II frames and IEEE 802.1Q / 802.1ad VLAN tags.
//!
//! ```
//! use vxlan_core::wire::{EtherType, EthernetFrame, L2Header, MacAddr};
//!
//! // A frame with an 802.1ad S-tag (VID 100) over an 802.1Q C-tag (VID 10),
//! // carrying IPv4.
//! let bytes = [
//!     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, // dst, src
//!     0x88, 0xa8, 0x00, 0x64, // S-tag, VID 100
//!     0x81, 0x00, 0x00, 0x0a, // C-tag, VID 10
//!     0x08, 0x00, // IPv4
//! ];
//! let frame = EthernetFrame::new_checked(&bytes[..]).unwrap();
//! assert_eq!(frame.src_addr(), MacAddr([2, 0, 0, 0, 0, 1]));
//! let l2 = L2Header::parse(&bytes).unwrap();
//! assert_eq!(l2.ethertype, EtherType::IPV4);
//! assert_eq!(l2.vids(), [100, 10]);
//! assert_eq!(l2.header_len(), 22);
//! ```

use super::{check, read_u16, write_u16, Error, EtherType, MacAddr, Result};

mod field {
    use core::ops::{Range, RangeFrom};
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: usize = 12;
    pub const PAYLOAD: RangeFrom<usize> = 14..;
}

/// Length of an untagged Ethernet II header.
pub const HEADER_LEN: usize = 14;
/// Length of one VLAN tag (TPID and TCI).
pub const VLAN_TAG_LEN: usize = 4;
/// How many VLAN tags [`L2Header`] follows (802.1ad over 802.1Q).
pub const MAX_VLAN_TAGS: usize = 2;

/// A read/write view of an Ethernet II frame.
#[derive(Debug, Clone, Copy)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wraps a buffer after checking it holds a whole header.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Checks that the buffer holds the 14-byte header.
    pub fn check_len(&self) -> Result<()> {
        check(self.buffer.as_ref(), HEADER_LEN)
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The destination address.
    #[inline]
    pub fn dst_addr(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buffer.as_ref()[field::DST])
    }

    /// The source address.
    #[inline]
    pub fn src_addr(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buffer.as_ref()[field::SRC])
    }

    /// The EtherType field (a TPID when the frame is tagged).
    #[inline]
    pub fn ethertype(&self) -> EtherType {
        EtherType(read_u16(self.buffer.as_ref(), field::ETHERTYPE))
    }

    /// Everything after the 14-byte header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&addr.0);
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&addr.0);
    }

    /// Sets the EtherType field.
    #[inline]
    pub fn set_ethertype(&mut self, ethertype: EtherType) {
        write_u16(self.buffer.as_mut(), field::ETHERTYPE, ethertype.0);
    }

    /// Everything after the 14-byte header, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }
}

/// The meaning of an untagged Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetRepr {
    /// Source address.
    pub src_addr: MacAddr,
    /// Destination address.
    pub dst_addr: MacAddr,
    /// EtherType.
    pub ethertype: EtherType,
}

impl EthernetRepr {
    /// Reads the header of a checked frame.
    pub fn parse<T: AsRef<[u8]>>(frame: &EthernetFrame<T>) -> Result<EthernetRepr> {
        frame.check_len()?;
        Ok(EthernetRepr {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            ethertype: frame.ethertype(),
        })
    }

    /// Bytes [`EthernetRepr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into the front of `frame`.
    ///
    /// # Panics
    /// When the buffer is shorter than [`EthernetRepr::buffer_len`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut EthernetFrame<T>) {
        frame.set_src_addr(self.src_addr);
        frame.set_dst_addr(self.dst_addr);
        frame.set_ethertype(self.ethertype);
    }
}

mod tag_field {
    pub const TCI: usize = 0;
    pub const ETHERTYPE: usize = 2;
}

/// A view of one VLAN tag's body: the TCI and the EtherType after it
/// (the TPID before it is the previous header's EtherType field).
#[derive(Debug, Clone, Copy)]
pub struct VlanTag<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VlanTag<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Self {
        VlanTag { buffer }
    }

    /// Wraps a buffer after checking it holds four bytes.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let tag = Self::new_unchecked(buffer);
        tag.check_len()?;
        Ok(tag)
    }

    /// Checks that the buffer holds the TCI and the next EtherType.
    pub fn check_len(&self) -> Result<()> {
        check(self.buffer.as_ref(), VLAN_TAG_LEN)
    }

    /// Priority code point (3 bits).
    #[inline]
    pub fn pcp(&self) -> u8 {
        self.buffer.as_ref()[tag_field::TCI] >> 5
    }

    /// Drop eligible indicator.
    #[inline]
    pub fn dei(&self) -> bool {
        self.buffer.as_ref()[tag_field::TCI] & 0x10 != 0
    }

    /// VLAN identifier (12 bits).
    #[inline]
    pub fn vid(&self) -> u16 {
        read_u16(self.buffer.as_ref(), tag_field::TCI) & 0x0fff
    }

    /// The EtherType after the tag.
    #[inline]
    pub fn ethertype(&self) -> EtherType {
        EtherType(read_u16(self.buffer.as_ref(), tag_field::ETHERTYPE))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VlanTag<T> {
    /// Sets priority, drop eligibility and VID in one write.
    #[inline]
    pub fn set_tci(&mut self, pcp: u8, dei: bool, vid: u16) {
        let tci = (u16::from(pcp & 0x7) << 13) | (u16::from(dei) << 12) | (vid & 0x0fff);
        write_u16(self.buffer.as_mut(), tag_field::TCI, tci);
    }

    /// Sets the EtherType after the tag.
    #[inline]
    pub fn set_ethertype(&mut self, ethertype: EtherType) {
        write_u16(self.buffer.as_mut(), tag_field::ETHERTYPE, ethertype.0);
    }
}

/// The meaning of one VLAN tag, its TPID included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VlanTagRepr {
    /// Tag protocol identifier: 0x8100 (802.1Q), 0x88a8 (802.1ad) or 0x9100.
    pub tpid: u16,
    /// Priority code point (0..=7).
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN identifier (0..=4095).
    pub vid: u16,
}

impl VlanTagRepr {
    /// An 802.1Q (C-tag) with priority 0.
    pub const fn dot1q(vid: u16) -> VlanTagRepr {
        VlanTagRepr {
            tpid: 0x8100,
            pcp: 0,
            dei: false,
            vid,
        }
    }

    /// An 802.1ad (S-tag) with priority 0.
    pub const fn dot1ad(vid: u16) -> VlanTagRepr {
        VlanTagRepr {
            tpid: 0x88a8,
            pcp: 0,
            dei: false,
            vid,
        }
    }
}

/// An Ethernet header with up to [`MAX_VLAN_TAGS`] VLAN tags, parsed in one
/// pass: what a bridge needs to classify a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L2Header {
    /// Source address.
    pub src_addr: MacAddr,
    /// Destination address.
    pub dst_addr: MacAddr,
    /// Tags, outermost first; only the first `tag_count` are meaningful.
    pub tags: [VlanTagRepr; MAX_VLAN_TAGS],
    /// How many tags the frame carries.
    pub tag_count: u8,
    /// The EtherType after the last tag.
    pub ethertype: EtherType,
}

impl L2Header {
    /// An untagged header.
    pub const fn untagged(src_addr: MacAddr, dst_addr: MacAddr, ethertype: EtherType) -> L2Header {
        L2Header {
            src_addr,
            dst_addr,
            tags: [VlanTagRepr {
                tpid: 0,
                pcp: 0,
                dei: false,
                vid: 0,
            }; MAX_VLAN_TAGS],
            tag_count: 0,
            ethertype,
        }
    }

    /// Parses the header and up to two tags from the front of `frame`.
    ///
    /// A third tag is [`Error::TooManyHeaders`]: a bridge must not guess
    /// which tag selects the bridge domain.
    #[inline]
    pub fn parse(frame: &[u8]) -> Result<L2Header> {
        check(frame, HEADER_LEN)?;
        let mut header = L2Header::untagged(
            MacAddr::from_bytes(&frame[field::SRC]),
            MacAddr::from_bytes(&frame[field::DST]),
            EtherType(read_u16(frame, field::ETHERTYPE)),
        );
        let mut at = field::ETHERTYPE;
        while header.ethertype.is_vlan_tpid() {
            if usize::from(header.tag_count) == MAX_VLAN_TAGS {
                return Err(Error::TooManyHeaders);
            }
            check(frame, at + 2 + VLAN_TAG_LEN)?;
            let tag = VlanTag::new_unchecked(&frame[at + 2..at + 2 + VLAN_TAG_LEN]);
            header.tags[usize::from(header.tag_count)] = VlanTagRepr {
                tpid: header.ethertype.0,
                pcp: tag.pcp(),
                dei: tag.dei(),
                vid: tag.vid(),
            };
            header.tag_count += 1;
            header.ethertype = tag.ethertype();
            at += VLAN_TAG_LEN;
        }
        Ok(header)
    }

    /// The tags actually present, outermost first.
    pub fn tags(&self) -> &[VlanTagRepr] {
        &self.tags[..usize::from(self.tag_count)]
    }

    /// The VIDs actually present, outermost first, in a fixed array padded
    /// with zeros.
    pub fn vids(&self) -> [u16; MAX_VLAN_TAGS] {
        let mut out = [0; MAX_VLAN_TAGS];
        for (o, t) in out.iter_mut().zip(self.tags()) {
            *o = t.vid;
        }
        out
    }

    /// Header length, tags included: where the payload starts.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN + self.tag_count as usize * VLAN_TAG_LEN
    }

    /// Same as [`L2Header::header_len`], the name `Repr`s use.
    pub const fn buffer_len(&self) -> usize {
        self.header_len()
    }

    /// Writes the header and its tags into the front of `buf`.
    ///
    /// # Panics
    /// When `buf` is shorter than [`L2Header::header_len`] or `tag_count`
    /// exceeds [`MAX_VLAN_TAGS`].
    pub fn emit(&self, buf: &mut [u8]) {
        buf[field::DST].copy_from_slice(&self.dst_addr.0);
        buf[field::SRC].copy_from_slice(&self.src_addr.0);
        let mut at = field::ETHERTYPE;
        for tag in self.tags() {
            write_u16(buf, at, tag.tpid);
            let mut view = VlanTag::new_unchecked(&mut buf[at + 2..at + 2 + VLAN_TAG_LEN]);
            view.set_tci(tag.pcp, tag.dei, tag.vid);
            at += VLAN_TAG_LEN;
        }
        write_u16(buf, at, self.ethertype.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    static FRAME: [u8; 18] = [
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, // dst
        0x11, 0x12, 0x13, 0x14, 0x15, 0x16, // src
        0x08, 0x06, // ARP
        0xaa, 0xbb, 0xcc, 0xdd, // payload
    ];

    #[test]
    fn deconstruct() {
        let f = EthernetFrame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(f.dst_addr(), MacAddr([1, 2, 3, 4, 5, 6]));
        assert_eq!(f.src_addr(), MacAddr([0x11, 0x12, 0x13, 0x14, 0x15, 0x16]));
        assert_eq!(f.ethertype(), EtherType::ARP);
        assert_eq!(f.payload(), &[0xaa, 0xbb, 0xcc, 0xdd]);
    }

    #[test]
    fn construct() {
        let mut buf = [0u8; 18];
        let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
        f.set_dst_addr(MacAddr([1, 2, 3, 4, 5, 6]));
        f.set_src_addr(MacAddr([0x11, 0x12, 0x13, 0x14, 0x15, 0x16]));
        f.set_ethertype(EtherType::ARP);
        f.payload_mut().copy_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd]);
        assert_eq!(buf, FRAME);
    }

    #[test]
    fn parse_emit() {
        let f = EthernetFrame::new_checked(&FRAME[..]).unwrap();
        let repr = EthernetRepr::parse(&f).unwrap();
        assert_eq!(repr.ethertype, EtherType::ARP);
        let mut buf = [0u8; 14];
        repr.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
        assert_eq!(&buf[..], &FRAME[..14]);
    }

    #[test]
    fn truncated() {
        assert_eq!(
            EthernetFrame::new_checked(&FRAME[..13]).unwrap_err(),
            Error::Truncated {
                needed: 14,
                available: 13
            }
        );
        assert!(L2Header::parse(&FRAME[..13]).is_err());
        // A TPID with the tag cut off.
        let mut tagged = [0u8; 16];
        tagged[12] = 0x81;
        assert!(matches!(
            L2Header::parse(&tagged),
            Err(Error::Truncated { .. })
        ));
    }

    #[test]
    fn qinq_and_triple_tag() {
        let mut buf = [0u8; 26];
        buf[12..14].copy_from_slice(&[0x88, 0xa8]);
        buf[14..16].copy_from_slice(&[0xe0, 0x64]); // pcp 7, vid 100
        buf[16..18].copy_from_slice(&[0x81, 0x00]);
        buf[18..20].copy_from_slice(&[0x10, 0x0a]); // dei, vid 10
        buf[20..22].copy_from_slice(&[0x86, 0xdd]);
        let l2 = L2Header::parse(&buf).unwrap();
        assert_eq!(l2.tag_count, 2);
        assert_eq!(
            l2.tags[0],
            VlanTagRepr {
                tpid: 0x88a8,
                pcp: 7,
                dei: false,
                vid: 100
            }
        );
        assert_eq!(
            l2.tags[1],
            VlanTagRepr {
                tpid: 0x8100,
                pcp: 0,
                dei: true,
                vid: 10
            }
        );
        assert_eq!(l2.ethertype, EtherType::IPV6);
        assert_eq!(l2.header_len(), 22);
        let mut out = [0u8; 22];
        l2.emit(&mut out);
        assert_eq!(&out[..], &buf[..22]);
        // A third tag is refused, not silently misread.
        buf[20..22].copy_from_slice(&[0x81, 0x00]);
        assert_eq!(L2Header::parse(&buf), Err(Error::TooManyHeaders));
    }

    fn arb_tag() -> impl Strategy<Value = VlanTagRepr> {
        (
            prop_oneof![Just(0x8100u16), Just(0x88a8u16), Just(0x9100u16)],
            0u8..8,
            any::<bool>(),
            0u16..4096,
        )
            .prop_map(|(tpid, pcp, dei, vid)| VlanTagRepr {
                tpid,
                pcp,
                dei,
                vid,
            })
    }

    proptest! {
        #[test]
        fn l2_round_trip(
            src in any::<[u8; 6]>(), dst in any::<[u8; 6]>(),
            tags in proptest::collection::vec(arb_tag(), 0..=2),
            ethertype in any::<u16>().prop_filter("not a TPID", |e| !EtherType(*e).is_vlan_tpid()),
        ) {
            let mut repr = L2Header::untagged(MacAddr(src), MacAddr(dst), EtherType(ethertype));
            for (i, t) in tags.iter().enumerate() {
                repr.tags[i] = *t;
            }
            repr.tag_count = u8::try_from(tags.len()).unwrap();
            let mut buf = [0u8; 22];
            repr.emit(&mut buf);
            let parsed = L2Header::parse(&buf[..repr.header_len()]).unwrap();
            prop_assert_eq!(parsed, repr);
        }

        #[test]
        fn parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = L2Header::parse(&data);
        }
    }
}
