//! The Toeplitz hash as NICs compute it for receive-side scaling (RSS).
//!
//! Documented in the parent module.

use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr};

/// The 40-byte key from Microsoft's RSS specification, the default of most
/// NIC drivers, and the one the published verification vectors use.
pub const MICROSOFT_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// A 40-byte key with a 16-bit period (`0x6d5a` repeated) that makes the
/// Toeplitz hash symmetric: swapping source and destination (addresses and
/// ports together) gives the same hash. See the [module docs](crate::hash#symmetric-hashing).
pub const SYMMETRIC_KEY: [u8; 40] = {
    let mut k = [0u8; 40];
    let mut i = 0;
    while i < 40 {
        k[i] = 0x6d;
        k[i + 1] = 0x5a;
        i += 2;
    }
    k
};

/// The key given to [`Toeplitz::new`] is shorter than [`Toeplitz::MIN_KEY_LEN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyTooShort {
    /// Length of the key that was given, in bytes.
    pub len: usize,
}

impl fmt::Display for KeyTooShort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Toeplitz key is {} bytes; RSS keys are at least {} bytes",
            self.len,
            Toeplitz::MIN_KEY_LEN
        )
    }
}

#[cfg(feature = "std")]
impl std::error::Error for KeyTooShort {}

/// The 32 key bits starting at bit offset `bit` (bit 0 is the most
/// significant bit of `key[0]`); bits past the end of the key read as zero.
#[allow(clippy::cast_lossless, clippy::cast_possible_truncation)] // `From` is not `const`; the shift leaves 32 bits.
const fn key_window(key: &[u8], bit: usize) -> u32 {
    let byte = bit / 8;
    let shift = bit % 8;
    let mut w: u64 = 0;
    let mut k = 0;
    while k < 5 {
        let b = if byte + k < key.len() {
            key[byte + k]
        } else {
            0
        };
        w = (w << 8) | b as u64;
        k += 1;
    }
    // `w` holds 40 key bits; drop the `8 - shift` below the wanted window.
    (w >> (8 - shift)) as u32
}

/// The reference Toeplitz hash of `input` under `key`, bit by bit with a
/// sliding window. Works for any key and input length (key bits past the end
/// of the key count as zero, as in a NIC's shift register); use [`Toeplitz`]
/// for speed.
///
/// ```
/// use vxlan_core::hash::{toeplitz_hash, MICROSOFT_KEY};
/// // Microsoft's first IPv4 verification vector: 66.9.149.187 -> 161.142.100.80.
/// let input = [66, 9, 149, 187, 161, 142, 100, 80];
/// assert_eq!(toeplitz_hash(&MICROSOFT_KEY, &input), 0x323e_8fc2);
/// ```
#[must_use]
pub fn toeplitz_hash(key: &[u8], input: &[u8]) -> u32 {
    toeplitz_bits(key, input, 0)
}

/// Bitwise Toeplitz over `input`, whose first byte sits at byte position
/// `first` of the full input (so it uses the key from bit `8 * first` on).
fn toeplitz_bits(key: &[u8], input: &[u8], first: usize) -> u32 {
    let key_byte = |i: usize| u64::from(key.get(i).copied().unwrap_or(0));
    // Key bits [8 * (first + i), 8 * (first + i) + 64) for input byte i.
    let mut window: u64 = 0;
    for k in 0..8 {
        window = (window << 8) | key_byte(first + k);
    }
    let mut result = 0u32;
    for (next, &b) in (first + 8..).zip(input) {
        for j in 0..8 {
            if b & (0x80 >> j) != 0 {
                result ^= high32(window << j);
            }
        }
        window = (window << 8) | key_byte(next);
    }
    result
}

/// The high 32 bits of a `u64`.
#[inline(always)]
fn high32(x: u64) -> u32 {
    let b = x.to_be_bytes();
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// A table-driven Toeplitz hasher for one key.
///
/// Holds, for each of the first [`TABLE_INPUT_LEN`](Self::TABLE_INPUT_LEN)
/// (36, an IPv6 4-tuple) input byte positions, the hash contribution of all
/// 256 byte values: 36 KiB, owned by the caller (put it in a `static`, a
/// `Box`, or a long-lived struct; avoid moving it around on the stack).
/// Input bytes past position 36 are hashed bit by bit with the stored key,
/// which keeps the first [`STORED_KEY_LEN`](Self::STORED_KEY_LEN) key bytes:
/// results match [`toeplitz_hash`] exactly for inputs of up to 60 bytes with
/// any key, and for any input with keys of up to 64 bytes.
///
/// ```
/// use core::net::Ipv4Addr;
/// use vxlan_core::hash::Toeplitz;
///
/// static RSS: Toeplitz = Toeplitz::microsoft();
///
/// let h = RSS.hash_ipv4_ports(
///     Ipv4Addr::new(66, 9, 149, 187),
///     Ipv4Addr::new(161, 142, 100, 80),
///     2794,
///     1766,
/// );
/// assert_eq!(h, 0x51cc_c178);
///
/// // Any key of at least 40 bytes, e.g. a 52-byte one:
/// let key = [0xa5u8; 52];
/// let t = Toeplitz::new(&key).unwrap();
/// assert_eq!(t.hash(b"some input"), vxlan_core::hash::toeplitz_hash(&key, b"some input"));
/// assert!(Toeplitz::new(&[0u8; 16]).is_err());
/// ```
#[derive(Clone)]
pub struct Toeplitz {
    table: [[u32; 256]; Self::TABLE_INPUT_LEN],
    key: [u8; Self::STORED_KEY_LEN],
}

impl fmt::Debug for Toeplitz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Toeplitz")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Default for Toeplitz {
    /// The hasher for [`MICROSOFT_KEY`].
    fn default() -> Self {
        Self::microsoft()
    }
}

impl Toeplitz {
    /// Input bytes covered by the lookup tables: 36, the IPv6 4-tuple.
    pub const TABLE_INPUT_LEN: usize = 36;
    /// Shortest key accepted: 40 bytes, the RSS standard.
    pub const MIN_KEY_LEN: usize = 40;
    /// Key bytes kept for hashing input past [`Self::TABLE_INPUT_LEN`].
    pub const STORED_KEY_LEN: usize = 64;

    /// Builds the tables for `key`, which must be at least
    /// [`MIN_KEY_LEN`](Self::MIN_KEY_LEN) bytes (longer keys, such as the
    /// 52-byte ones some NICs use, are fine).
    ///
    /// A `const fn`, so a hasher can be built at compile time into a
    /// `static`.
    ///
    /// # Errors
    ///
    /// [`KeyTooShort`] when `key` has fewer than 40 bytes.
    pub const fn new(key: &[u8]) -> Result<Self, KeyTooShort> {
        if key.len() < Self::MIN_KEY_LEN {
            return Err(KeyTooShort { len: key.len() });
        }
        Ok(Self::build(key))
    }

    /// The hasher for [`MICROSOFT_KEY`] (a `const fn`).
    #[must_use]
    pub const fn microsoft() -> Self {
        Self::build(&MICROSOFT_KEY)
    }

    /// The hasher for [`SYMMETRIC_KEY`]: the same hash for both directions
    /// of a flow (see the [module docs](crate::hash#symmetric-hashing)).
    ///
    /// ```
    /// use core::net::Ipv4Addr;
    /// use vxlan_core::hash::Toeplitz;
    /// let t = Toeplitz::symmetric();
    /// let (a, b) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
    /// assert_eq!(t.hash_ipv4_ports(a, b, 1234, 80), t.hash_ipv4_ports(b, a, 80, 1234));
    /// ```
    #[must_use]
    pub const fn symmetric() -> Self {
        Self::build(&SYMMETRIC_KEY)
    }

    const fn build(key: &[u8]) -> Self {
        let mut table = [[0u32; 256]; Self::TABLE_INPUT_LEN];
        let mut pos = 0;
        while pos < Self::TABLE_INPUT_LEN {
            // windows[j]: contribution of bit j (0 = most significant).
            let mut windows = [0u32; 8];
            let mut j = 0;
            while j < 8 {
                windows[j] = key_window(key, pos * 8 + j);
                j += 1;
            }
            let mut v = 1usize;
            while v < 256 {
                let low = v.trailing_zeros() as usize; // < 8
                table[pos][v] = table[pos][v & (v - 1)] ^ windows[7 - low];
                v += 1;
            }
            pos += 1;
        }
        let mut stored = [0u8; Self::STORED_KEY_LEN];
        let mut i = 0;
        while i < Self::STORED_KEY_LEN && i < key.len() {
            stored[i] = key[i];
            i += 1;
        }
        Self { table, key: stored }
    }

    /// The Toeplitz hash of `input`.
    #[inline]
    #[must_use]
    pub fn hash(&self, input: &[u8]) -> u32 {
        let mut h = 0u32;
        for (row, &b) in self.table.iter().zip(input) {
            h ^= row[usize::from(b)];
        }
        if let Some(rest) = input.get(Self::TABLE_INPUT_LEN..) {
            if !rest.is_empty() {
                h ^= toeplitz_bits(&self.key, rest, Self::TABLE_INPUT_LEN);
            }
        }
        h
    }

    /// The Toeplitz hash of a fixed-size input (lets the compiler unroll).
    #[inline]
    fn hash_array<const N: usize>(&self, input: &[u8; N]) -> u32 {
        self.hash(input)
    }

    /// RSS hash of an IPv4 address pair (`NDIS_HASH_IPV4`): input
    /// `src ++ dst`.
    ///
    /// ```
    /// use core::net::Ipv4Addr;
    /// use vxlan_core::hash::Toeplitz;
    /// let t = Toeplitz::microsoft();
    /// let h = t.hash_ipv4(Ipv4Addr::new(66, 9, 149, 187), Ipv4Addr::new(161, 142, 100, 80));
    /// assert_eq!(h, 0x323e_8fc2);
    /// ```
    #[inline]
    #[must_use]
    pub fn hash_ipv4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> u32 {
        let mut buf = [0u8; 8];
        buf[..4].copy_from_slice(&src.octets());
        buf[4..].copy_from_slice(&dst.octets());
        self.hash_array(&buf)
    }

    /// RSS hash of an IPv4 4-tuple (`NDIS_HASH_TCP_IPV4`, also used for UDP):
    /// input `src ++ dst ++ src_port ++ dst_port`.
    #[inline]
    #[must_use]
    pub fn hash_ipv4_ports(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        src_port: u16,
        dst_port: u16,
    ) -> u32 {
        let mut buf = [0u8; 12];
        buf[..4].copy_from_slice(&src.octets());
        buf[4..8].copy_from_slice(&dst.octets());
        buf[8..10].copy_from_slice(&src_port.to_be_bytes());
        buf[10..].copy_from_slice(&dst_port.to_be_bytes());
        self.hash_array(&buf)
    }

    /// RSS hash of an IPv6 address pair (`NDIS_HASH_IPV6`): input
    /// `src ++ dst`.
    #[inline]
    #[must_use]
    pub fn hash_ipv6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> u32 {
        let mut buf = [0u8; 32];
        buf[..16].copy_from_slice(&src.octets());
        buf[16..].copy_from_slice(&dst.octets());
        self.hash_array(&buf)
    }

    /// RSS hash of an IPv6 4-tuple (`NDIS_HASH_TCP_IPV6`): input
    /// `src ++ dst ++ src_port ++ dst_port`.
    ///
    /// ```
    /// use core::net::Ipv6Addr;
    /// use vxlan_core::hash::Toeplitz;
    /// let t = Toeplitz::microsoft();
    /// let src: Ipv6Addr = "3ffe:2501:200:1fff::7".parse().unwrap();
    /// let dst: Ipv6Addr = "3ffe:2501:200:3::1".parse().unwrap();
    /// assert_eq!(t.hash_ipv6_ports(src, dst, 2794, 1766), 0x4020_7d3d);
    /// ```
    #[inline]
    #[must_use]
    pub fn hash_ipv6_ports(
        &self,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        src_port: u16,
        dst_port: u16,
    ) -> u32 {
        let mut buf = [0u8; 36];
        buf[..16].copy_from_slice(&src.octets());
        buf[16..32].copy_from_slice(&dst.octets());
        buf[32..34].copy_from_slice(&src_port.to_be_bytes());
        buf[34..].copy_from_slice(&dst_port.to_be_bytes());
        self.hash_array(&buf)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use proptest::prelude::*;
    use std::boxed::Box;
    use std::vec::Vec;

    /// (src, src port, dst, dst port, IPv4-only hash, IPv4+TCP hash) from
    /// Microsoft's "Verifying the RSS Hash Calculation".
    const V4: [(&str, u16, &str, u16, u32, u32); 5] = [
        (
            "66.9.149.187",
            2794,
            "161.142.100.80",
            1766,
            0x323e_8fc2,
            0x51cc_c178,
        ),
        (
            "199.92.111.2",
            14230,
            "65.69.140.83",
            4739,
            0xd718_262a,
            0xc626_b0ea,
        ),
        (
            "24.19.198.95",
            12898,
            "12.22.207.184",
            38024,
            0xd2d0_a5de,
            0x5c2b_394a,
        ),
        (
            "38.27.205.30",
            48228,
            "209.142.163.6",
            2217,
            0x8298_9176,
            0xafc7_327f,
        ),
        (
            "153.39.163.191",
            44251,
            "202.188.127.2",
            1303,
            0x5d18_09c5,
            0x10e8_28a2,
        ),
    ];

    /// The same for IPv6.
    const V6: [(&str, u16, &str, u16, u32, u32); 3] = [
        (
            "3ffe:2501:200:1fff::7",
            2794,
            "3ffe:2501:200:3::1",
            1766,
            0x2cc1_8cd5,
            0x4020_7d3d,
        ),
        (
            "3ffe:501:8::260:97ff:fe40:efab",
            14230,
            "ff02::1",
            4739,
            0x0f0c_461c,
            0xdde5_1bbf,
        ),
        (
            "3ffe:1900:4545:3:200:f8ff:fe21:67cf",
            44251,
            "fe80::200:f8ff:fe21:67cf",
            38024,
            0x4b61_e985,
            0x02d1_feef,
        ),
    ];

    fn v4_input(src: Ipv4Addr, dst: Ipv4Addr, ports: Option<(u16, u16)>) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&src.octets());
        v.extend_from_slice(&dst.octets());
        if let Some((s, d)) = ports {
            v.extend_from_slice(&s.to_be_bytes());
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    #[test]
    fn microsoft_ipv4_vectors() {
        let t = Box::new(Toeplitz::microsoft());
        for (src, sp, dst, dp, h2, h4) in V4 {
            let (src, dst): (Ipv4Addr, Ipv4Addr) = (src.parse().unwrap(), dst.parse().unwrap());
            assert_eq!(t.hash_ipv4(src, dst), h2, "{src} -> {dst}");
            assert_eq!(
                t.hash_ipv4_ports(src, dst, sp, dp),
                h4,
                "{src}:{sp} -> {dst}:{dp}"
            );
            assert_eq!(toeplitz_hash(&MICROSOFT_KEY, &v4_input(src, dst, None)), h2);
            assert_eq!(
                toeplitz_hash(&MICROSOFT_KEY, &v4_input(src, dst, Some((sp, dp)))),
                h4
            );
        }
    }

    #[test]
    fn microsoft_ipv6_vectors() {
        let t = Box::new(Toeplitz::microsoft());
        for (src, sp, dst, dp, h2, h4) in V6 {
            let (src, dst): (Ipv6Addr, Ipv6Addr) = (src.parse().unwrap(), dst.parse().unwrap());
            assert_eq!(t.hash_ipv6(src, dst), h2, "{src} -> {dst}");
            assert_eq!(
                t.hash_ipv6_ports(src, dst, sp, dp),
                h4,
                "{src}:{sp} -> {dst}:{dp}"
            );
            let mut input = Vec::new();
            input.extend_from_slice(&src.octets());
            input.extend_from_slice(&dst.octets());
            assert_eq!(toeplitz_hash(&MICROSOFT_KEY, &input), h2);
            input.extend_from_slice(&sp.to_be_bytes());
            input.extend_from_slice(&dp.to_be_bytes());
            assert_eq!(toeplitz_hash(&MICROSOFT_KEY, &input), h4);
        }
    }

    #[test]
    fn const_construction_in_static() {
        static T: Toeplitz = Toeplitz::microsoft();
        assert_eq!(T.hash(&[66, 9, 149, 187, 161, 142, 100, 80]), 0x323e_8fc2);
    }

    #[test]
    fn short_key_rejected() {
        assert_eq!(
            Toeplitz::new(&[0u8; 39]).unwrap_err(),
            KeyTooShort { len: 39 }
        );
        assert!(Toeplitz::new(&[0u8; 40]).is_ok());
        assert!(Toeplitz::new(&[0u8; 52]).is_ok());
    }

    #[test]
    fn symmetric_key_has_16_bit_period() {
        for pair in SYMMETRIC_KEY.chunks(2) {
            assert_eq!(pair, [0x6d, 0x5a]);
        }
    }

    proptest! {
        #[test]
        fn table_matches_bitwise_any_key(
            key in proptest::collection::vec(any::<u8>(), 40..=64),
            input in proptest::collection::vec(any::<u8>(), 0..=60),
        ) {
            let t = Box::new(Toeplitz::new(&key).unwrap());
            prop_assert_eq!(t.hash(&input), toeplitz_hash(&key, &input));
        }

        #[test]
        fn long_key_and_long_input(
            key in proptest::collection::vec(any::<u8>(), 40..=64),
            input in proptest::collection::vec(any::<u8>(), 0..=100),
        ) {
            let t = Box::new(Toeplitz::new(&key).unwrap());
            prop_assert_eq!(t.hash(&input), toeplitz_hash(&key, &input));
        }

        #[test]
        fn symmetric_ipv4(a in any::<[u8; 4]>(), b in any::<[u8; 4]>(), sp in any::<u16>(), dp in any::<u16>()) {
            let t = Box::new(Toeplitz::symmetric());
            let (a, b) = (Ipv4Addr::from(a), Ipv4Addr::from(b));
            prop_assert_eq!(t.hash_ipv4(a, b), t.hash_ipv4(b, a));
            prop_assert_eq!(t.hash_ipv4_ports(a, b, sp, dp), t.hash_ipv4_ports(b, a, dp, sp));
        }

        #[test]
        fn symmetric_ipv6(a in any::<[u8; 16]>(), b in any::<[u8; 16]>(), sp in any::<u16>(), dp in any::<u16>()) {
            let t = Box::new(Toeplitz::symmetric());
            let (a, b) = (Ipv6Addr::from(a), Ipv6Addr::from(b));
            prop_assert_eq!(t.hash_ipv6(a, b), t.hash_ipv6(b, a));
            prop_assert_eq!(t.hash_ipv6_ports(a, b, sp, dp), t.hash_ipv6_ports(b, a, dp, sp));
        }
    }

    #[test]
    fn default_key_is_not_symmetric() {
        let t = Box::new(Toeplitz::microsoft());
        let (a, b) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        assert_ne!(
            t.hash_ipv4_ports(a, b, 1234, 80),
            t.hash_ipv4_ports(b, a, 80, 1234)
        );
    }
}
