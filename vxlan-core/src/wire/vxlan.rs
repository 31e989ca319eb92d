//! The 8-byte VXLAN header and its two extensions:
//!
//! * VXLAN (RFC 7348): `I` flag and a 24-bit VNI; every other bit reserved,
//!   zero on transmit and ignored on receive (or refused under
//!   [`ReservedBitsPolicy::Strict`]).
//! * VXLAN-GPE (draft-ietf-nvo3-vxlan-gpe, UDP 4790): version, `I`, `P`,
//!   `B`, `O` bits and a next-protocol byte.
//! * VXLAN-GBP (draft-smith-vxlan-group-policy): `G`, `D` (don't learn) and
//!   `A` (policy applied) bits and a 16-bit group policy ID carried in bits
//!   VXLAN reserves.
//!
//! ```text
//!  VXLAN:  |R|R|R|R|I|R|R|R|    Reserved (24)    |   VNI (24)   | Rsvd (8) |
//!  GPE:    |R|R|Ver|I|P|B|O| Reserved (16) | NP |   VNI (24)   | Rsvd (8) |
//!  GBP:    |G|R|R|R|I|R|R|R|R|D|R|R|A|R|R|R| Group Policy ID | VNI | Rsvd |
//! ```
//!
//! ```
//! use vxlan_core::wire::{ReservedBitsPolicy, VxlanHeader, VxlanRepr};
//!
//! let mut buf = [0u8; 8];
//! VxlanRepr { vni: 100 }.emit(&mut VxlanHeader::new_unchecked(&mut buf[..]));
//! assert_eq!(buf, [0x08, 0, 0, 0, 0, 0, 100, 0]);
//!
//! // Reserved bits set: ignored by default, refused when strict.
//! let odd = [0xff, 1, 2, 3, 0, 0, 11, 4];
//! let header = VxlanHeader::new_checked(&odd[..]).unwrap();
//! assert_eq!(VxlanRepr::parse(&header, ReservedBitsPolicy::Ignore).unwrap().vni, 11);
//! assert!(VxlanRepr::parse(&header, ReservedBitsPolicy::Strict).is_err());
//! ```

use super::{check, Error, Result};

mod field {
    pub const FLAGS: usize = 0;
    pub const GBP_FLAGS2: usize = 1;
    pub const GBP_POLICY: usize = 2;
    pub const GPE_NEXT_PROTOCOL: usize = 3;
    pub const VNI: usize = 4;
    pub const LAST: usize = 7;
}

/// Length of the VXLAN, GPE and GBP headers.
pub const HEADER_LEN: usize = 8;
/// The IANA port for VXLAN (RFC 7348).
pub const PORT: u16 = 4789;
/// The port Linux used before IANA assigned 4789.
pub const LEGACY_LINUX_PORT: u16 = 8472;
/// The IANA port for VXLAN-GPE.
pub const GPE_PORT: u16 = 4790;
/// The largest VNI (24 bits).
pub const MAX_VNI: u32 = 0x00ff_ffff;

/// `I`: the VNI is valid. The only flag RFC 7348 defines.
pub const FLAG_I: u8 = 0x08;
/// GPE `P`: the next-protocol field is present.
pub const GPE_FLAG_P: u8 = 0x04;
/// GPE `B`: BUM traffic.
pub const GPE_FLAG_B: u8 = 0x02;
/// GPE `O`: OAM packet.
pub const GPE_FLAG_O: u8 = 0x01;
/// GBP `G`: a group policy ID is present.
pub const GBP_FLAG_G: u8 = 0x80;
/// GBP `D` (in the second byte): don't learn the source.
pub const GBP_FLAG_D: u8 = 0x40;
/// GBP `A` (in the second byte): the policy has been applied.
pub const GBP_FLAG_A: u8 = 0x08;

/// What to do with a VXLAN header whose reserved bits are not zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum ReservedBitsPolicy {
    /// Ignore them, as RFC 7348 section 5 says receivers MUST.
    #[default]
    Ignore,
    /// Refuse the header: for networks where a non-zero reserved bit means
    /// a misconfigured peer or an attack.
    Strict,
}

/// A view of a VXLAN, GPE or GBP header. Which meaning applies is the
/// caller's choice (the UDP port and configuration decide).
#[derive(Debug, Clone, Copy)]
pub struct VxlanHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VxlanHeader<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        VxlanHeader { buffer }
    }

    /// Wraps a buffer after checking it holds 8 bytes.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let h = Self::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
    }

    /// Checks the 8-byte header fits.
    pub fn check_len(&self) -> Result<()> {
        check(self.buffer.as_ref(), HEADER_LEN)
    }

    /// The first byte: all flags.
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// The `I` flag: the VNI is valid.
    #[inline]
    pub fn i_flag(&self) -> bool {
        self.flags() & FLAG_I != 0
    }

    /// The 24-bit VNI.
    #[inline]
    pub fn vni(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([0, b[field::VNI], b[field::VNI + 1], b[field::VNI + 2]])
    }

    /// True when any bit RFC 7348 reserves is set (everything but `I` and
    /// the VNI).
    #[inline]
    pub fn vxlan_reserved_bits_set(&self) -> bool {
        let b = self.buffer.as_ref();
        (b[0] & !FLAG_I) | b[1] | b[2] | b[3] | b[field::LAST] != 0
    }

    /// GPE version (2 bits).
    #[inline]
    pub fn gpe_version(&self) -> u8 {
        (self.flags() >> 4) & 0x03
    }

    /// GPE next protocol (meaningful when `P` is set).
    #[inline]
    pub fn gpe_next_protocol(&self) -> GpeNextProtocol {
        GpeNextProtocol(self.buffer.as_ref()[field::GPE_NEXT_PROTOCOL])
    }

    /// True when any bit GPE reserves is set.
    #[inline]
    pub fn gpe_reserved_bits_set(&self) -> bool {
        let b = self.buffer.as_ref();
        (b[0] & 0xc0) | b[1] | b[2] | b[field::LAST] != 0
    }

    /// GBP `D` flag.
    #[inline]
    pub fn gbp_dont_learn(&self) -> bool {
        self.buffer.as_ref()[field::GBP_FLAGS2] & GBP_FLAG_D != 0
    }

    /// GBP `A` flag.
    #[inline]
    pub fn gbp_policy_applied(&self) -> bool {
        self.buffer.as_ref()[field::GBP_FLAGS2] & GBP_FLAG_A != 0
    }

    /// GBP group policy ID (meaningful when `G` is set).
    #[inline]
    pub fn gbp_policy_id(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[field::GBP_POLICY], b[field::GBP_POLICY + 1]])
    }

    /// True when any bit GBP reserves is set.
    #[inline]
    pub fn gbp_reserved_bits_set(&self) -> bool {
        let b = self.buffer.as_ref();
        (b[0] & !(GBP_FLAG_G | FLAG_I)) | (b[1] & !(GBP_FLAG_D | GBP_FLAG_A)) | b[field::LAST] != 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VxlanHeader<T> {
    /// Sets the flags byte.
    #[inline]
    pub fn set_flags(&mut self, flags: u8) {
        self.buffer.as_mut()[field::FLAGS] = flags;
    }

    /// Sets the VNI (the top 8 bits of `vni` are ignored).
    #[inline]
    pub fn set_vni(&mut self, vni: u32) {
        let [_, a, b, c] = vni.to_be_bytes();
        self.buffer.as_mut()[field::VNI..field::VNI + 3].copy_from_slice(&[a, b, c]);
    }

    /// Writes a whole header in one store: flags, three bytes of
    /// reserved/extension fields, the VNI and a zero last byte.
    #[inline]
    pub fn set_all(&mut self, flags: u8, middle: [u8; 3], vni: u32) {
        let [_, a, b, c] = vni.to_be_bytes();
        self.buffer.as_mut()[..HEADER_LEN]
            .copy_from_slice(&[flags, middle[0], middle[1], middle[2], a, b, c, 0]);
    }
}

/// The meaning of a plain VXLAN header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VxlanRepr {
    /// The VXLAN network identifier (24 bits).
    pub vni: u32,
}

impl VxlanRepr {
    /// Reads a checked header. A header without the `I` flag is not VXLAN
    /// ([`Error::Unsupported`]); reserved bits follow `policy`.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(
        header: &VxlanHeader<T>,
        policy: ReservedBitsPolicy,
    ) -> Result<VxlanRepr> {
        header.check_len()?;
        if !header.i_flag() {
            return Err(Error::Unsupported);
        }
        if policy == ReservedBitsPolicy::Strict && header.vxlan_reserved_bits_set() {
            return Err(Error::ReservedBits);
        }
        Ok(VxlanRepr { vni: header.vni() })
    }

    /// Bytes [`VxlanRepr::emit`] writes (8).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header: `I` set, every reserved bit zero.
    ///
    /// # Panics
    /// When the buffer is shorter than 8 bytes.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, header: &mut VxlanHeader<T>) {
        header.set_all(FLAG_I, [0; 3], self.vni);
    }
}

/// A VXLAN-GPE next-protocol value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GpeNextProtocol(pub u8);

impl GpeNextProtocol {
    /// IPv4.
    pub const IPV4: GpeNextProtocol = GpeNextProtocol(1);
    /// IPv6.
    pub const IPV6: GpeNextProtocol = GpeNextProtocol(2);
    /// Ethernet.
    pub const ETHERNET: GpeNextProtocol = GpeNextProtocol(3);
    /// Network service header (RFC 8300).
    pub const NSH: GpeNextProtocol = GpeNextProtocol(4);
}

/// The meaning of a VXLAN-GPE header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GpeRepr {
    /// VNI (24 bits).
    pub vni: u32,
    /// What follows the header. A header without `P` carries Ethernet.
    pub next_protocol: GpeNextProtocol,
    /// `B`: broadcast, unknown unicast or multicast.
    pub bum: bool,
    /// `O`: an OAM packet.
    pub oam: bool,
}

impl GpeRepr {
    /// Reads a checked header: `I` must be set (else
    /// [`Error::Unsupported`]) and the version must be 0 (else
    /// [`Error::BadVersion`]).
    pub fn parse<T: AsRef<[u8]>>(
        header: &VxlanHeader<T>,
        policy: ReservedBitsPolicy,
    ) -> Result<GpeRepr> {
        header.check_len()?;
        if !header.i_flag() {
            return Err(Error::Unsupported);
        }
        if header.gpe_version() != 0 {
            return Err(Error::BadVersion);
        }
        if policy == ReservedBitsPolicy::Strict && header.gpe_reserved_bits_set() {
            return Err(Error::ReservedBits);
        }
        let flags = header.flags();
        Ok(GpeRepr {
            vni: header.vni(),
            next_protocol: if flags & GPE_FLAG_P != 0 {
                header.gpe_next_protocol()
            } else {
                GpeNextProtocol::ETHERNET
            },
            bum: flags & GPE_FLAG_B != 0,
            oam: flags & GPE_FLAG_O != 0,
        })
    }

    /// Bytes [`GpeRepr::emit`] writes (8).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header with `I` and `P` set and version 0.
    ///
    /// # Panics
    /// When the buffer is shorter than 8 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, header: &mut VxlanHeader<T>) {
        let mut flags = FLAG_I | GPE_FLAG_P;
        if self.bum {
            flags |= GPE_FLAG_B;
        }
        if self.oam {
            flags |= GPE_FLAG_O;
        }
        header.set_all(flags, [0, 0, self.next_protocol.0], self.vni);
    }
}

/// The meaning of a VXLAN-GBP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GbpRepr {
    /// VNI (24 bits).
    pub vni: u32,
    /// The group policy ID, when `G` is set.
    pub policy_id: Option<u16>,
    /// `D`: the receiver must not learn the inner source address.
    pub dont_learn: bool,
    /// `A`: the group policy has already been applied.
    pub policy_applied: bool,
}

impl GbpRepr {
    /// Reads a checked header: `I` must be set (else
    /// [`Error::Unsupported`]); GBP's reserved bits follow `policy`.
    pub fn parse<T: AsRef<[u8]>>(
        header: &VxlanHeader<T>,
        policy: ReservedBitsPolicy,
    ) -> Result<GbpRepr> {
        header.check_len()?;
        if !header.i_flag() {
            return Err(Error::Unsupported);
        }
        if policy == ReservedBitsPolicy::Strict && header.gbp_reserved_bits_set() {
            return Err(Error::ReservedBits);
        }
        Ok(GbpRepr {
            vni: header.vni(),
            policy_id: (header.flags() & GBP_FLAG_G != 0).then(|| header.gbp_policy_id()),
            dont_learn: header.gbp_dont_learn(),
            policy_applied: header.gbp_policy_applied(),
        })
    }

    /// Bytes [`GbpRepr::emit`] writes (8).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header.
    ///
    /// # Panics
    /// When the buffer is shorter than 8 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, header: &mut VxlanHeader<T>) {
        let mut flags = FLAG_I;
        let mut flags2 = 0;
        if self.policy_id.is_some() {
            flags |= GBP_FLAG_G;
        }
        if self.dont_learn {
            flags2 |= GBP_FLAG_D;
        }
        if self.policy_applied {
            flags2 |= GBP_FLAG_A;
        }
        let [p0, p1] = self.policy_id.unwrap_or(0).to_be_bytes();
        header.set_all(flags, [flags2, p0, p1], self.vni);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn vxlan_fixture() {
        let b = [0x08, 0, 0, 0, 0x00, 0x00, 0x64, 0x00];
        let h = VxlanHeader::new_checked(&b[..]).unwrap();
        assert!(h.i_flag());
        assert_eq!(h.vni(), 100);
        assert!(!h.vxlan_reserved_bits_set());
        assert_eq!(
            VxlanRepr::parse(&h, ReservedBitsPolicy::Strict).unwrap(),
            VxlanRepr { vni: 100 }
        );
        let mut out = [0xffu8; 8];
        VxlanRepr { vni: 100 }.emit(&mut VxlanHeader::new_unchecked(&mut out[..]));
        assert_eq!(out, b);
    }

    #[test]
    fn vxlan_malformed() {
        assert!(matches!(
            VxlanHeader::new_checked(&[0x08u8, 0, 0, 0, 0, 0, 1][..]),
            Err(Error::Truncated { .. })
        ));
        let no_i = [0x00, 0, 0, 0, 0, 0, 1, 0];
        let h = VxlanHeader::new_checked(&no_i[..]).unwrap();
        assert_eq!(
            VxlanRepr::parse(&h, ReservedBitsPolicy::Ignore),
            Err(Error::Unsupported)
        );
        for (i, bit) in [(0usize, 0x80u8), (1, 1), (2, 0x10), (3, 0x01), (7, 0x40)] {
            let mut b = [0x08, 0, 0, 0, 0, 0, 1, 0];
            b[i] |= bit;
            let h = VxlanHeader::new_checked(&b[..]).unwrap();
            assert!(h.vxlan_reserved_bits_set(), "byte {i}");
            assert_eq!(
                VxlanRepr::parse(&h, ReservedBitsPolicy::Strict),
                Err(Error::ReservedBits)
            );
            assert_eq!(
                VxlanRepr::parse(&h, ReservedBitsPolicy::Ignore),
                Ok(VxlanRepr { vni: 1 })
            );
        }
    }

    #[test]
    fn gpe_fixture() {
        // The tcpdump NSH capture: flags 0x0c (I, P), next protocol 4, VNI 0xffffff.
        let b = [0x0c, 0, 0, 0x04, 0xff, 0xff, 0xff, 0x00];
        let h = VxlanHeader::new_checked(&b[..]).unwrap();
        let r = GpeRepr::parse(&h, ReservedBitsPolicy::Strict).unwrap();
        assert_eq!(
            r,
            GpeRepr {
                vni: 0xff_ffff,
                next_protocol: GpeNextProtocol::NSH,
                bum: false,
                oam: false
            }
        );
        let mut out = [0u8; 8];
        r.emit(&mut VxlanHeader::new_unchecked(&mut out[..]));
        assert_eq!(out, b);
        // Without P, Ethernet follows; version 1 is refused.
        let no_p = [0x08, 0, 0, 0x04, 0, 0, 1, 0];
        let r = GpeRepr::parse(
            &VxlanHeader::new_checked(&no_p[..]).unwrap(),
            ReservedBitsPolicy::Ignore,
        )
        .unwrap();
        assert_eq!(r.next_protocol, GpeNextProtocol::ETHERNET);
        let v1 = [0x1c, 0, 0, 0x03, 0, 0, 1, 0];
        assert_eq!(
            GpeRepr::parse(
                &VxlanHeader::new_checked(&v1[..]).unwrap(),
                ReservedBitsPolicy::Ignore
            ),
            Err(Error::BadVersion)
        );
    }

    #[test]
    fn gbp_fixture() {
        // G, I; D and A; policy 0x1234; VNI 42.
        let b = [0x88, 0x48, 0x12, 0x34, 0, 0, 42, 0];
        let h = VxlanHeader::new_checked(&b[..]).unwrap();
        assert!(!h.gbp_reserved_bits_set());
        assert!(
            h.vxlan_reserved_bits_set(),
            "GBP bits are reserved bits to plain VXLAN"
        );
        let r = GbpRepr::parse(&h, ReservedBitsPolicy::Strict).unwrap();
        assert_eq!(
            r,
            GbpRepr {
                vni: 42,
                policy_id: Some(0x1234),
                dont_learn: true,
                policy_applied: true
            }
        );
        let mut out = [0u8; 8];
        r.emit(&mut VxlanHeader::new_unchecked(&mut out[..]));
        assert_eq!(out, b);
        let mut reserved = b;
        reserved[1] |= 0x01;
        let h = VxlanHeader::new_checked(&reserved[..]).unwrap();
        assert_eq!(
            GbpRepr::parse(&h, ReservedBitsPolicy::Strict),
            Err(Error::ReservedBits)
        );
    }

    proptest! {
        #[test]
        fn vxlan_round_trip(vni in 0u32..=MAX_VNI) {
            let mut b = [0u8; 8];
            VxlanRepr { vni }.emit(&mut VxlanHeader::new_unchecked(&mut b[..]));
            let h = VxlanHeader::new_checked(&b[..]).unwrap();
            prop_assert!(!h.vxlan_reserved_bits_set());
            prop_assert_eq!(VxlanRepr::parse(&h, ReservedBitsPolicy::Strict).unwrap().vni, vni);
        }

        #[test]
        fn gpe_round_trip(vni in 0u32..=MAX_VNI, np in any::<u8>(), bum in any::<bool>(), oam in any::<bool>()) {
            let r = GpeRepr { vni, next_protocol: GpeNextProtocol(np), bum, oam };
            let mut b = [0u8; 8];
            r.emit(&mut VxlanHeader::new_unchecked(&mut b[..]));
            prop_assert_eq!(GpeRepr::parse(&VxlanHeader::new_checked(&b[..]).unwrap(), ReservedBitsPolicy::Strict).unwrap(), r);
        }

        #[test]
        fn gbp_round_trip(vni in 0u32..=MAX_VNI, id in proptest::option::of(any::<u16>()), d in any::<bool>(), a in any::<bool>()) {
            let r = GbpRepr { vni, policy_id: id, dont_learn: d, policy_applied: a };
            let mut b = [0u8; 8];
            r.emit(&mut VxlanHeader::new_unchecked(&mut b[..]));
            prop_assert_eq!(GbpRepr::parse(&VxlanHeader::new_checked(&b[..]).unwrap(), ReservedBitsPolicy::Strict).unwrap(), r);
        }
    }
}
