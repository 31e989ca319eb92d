//! The RFC 7348 UDP source-port hash.
//!
//! Documented in the parent module.

use core::fmt;

use super::crc32c::crc32c;

/// An inclusive range of UDP source ports, `min..=max`, with `min <= max`.
///
/// The [`Default`] is the IANA dynamic range 49152-65535 that RFC 7348
/// recommends.
///
/// ```
/// use vxlan_core::hash::SourcePortRange;
/// let r = SourcePortRange::default();
/// assert_eq!((r.min(), r.max()), (49152, 65535));
/// let custom = SourcePortRange::new(32768, 60999).unwrap();
/// assert_eq!(custom.span(), 28232);
/// assert!(SourcePortRange::new(2000, 1000).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourcePortRange {
    min: u16,
    max: u16,
}

impl Default for SourcePortRange {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A [`SourcePortRange`] whose `min` is above its `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InvalidPortRange {
    /// The lower bound that was given.
    pub min: u16,
    /// The upper bound that was given.
    pub max: u16,
}

impl fmt::Display for InvalidPortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid UDP source-port range: min {} is greater than max {}",
            self.min, self.max
        )
    }
}

#[cfg(feature = "std")]
impl std::error::Error for InvalidPortRange {}

impl SourcePortRange {
    /// 49152-65535, the IANA dynamic/private range RFC 7348 recommends.
    pub const DEFAULT: Self = Self {
        min: 49152,
        max: 65535,
    };

    /// The range `min..=max`.
    ///
    /// # Errors
    ///
    /// [`InvalidPortRange`] when `min > max`. `min == max` is accepted (every
    /// flow then gets that one port).
    pub const fn new(min: u16, max: u16) -> Result<Self, InvalidPortRange> {
        if min > max {
            Err(InvalidPortRange { min, max })
        } else {
            Ok(Self { min, max })
        }
    }

    /// The lowest port of the range.
    #[must_use]
    pub const fn min(self) -> u16 {
        self.min
    }

    /// The highest port of the range.
    #[must_use]
    pub const fn max(self) -> u16 {
        self.max
    }

    /// The number of ports in the range, 1 to 65536.
    #[must_use]
    pub fn span(self) -> u32 {
        u32::from(self.max - self.min) + 1
    }

    /// Maps a 32-bit hash into the range by multiply-high: hash 0 gives
    /// `min`, `u32::MAX` gives `max`, and every port gets `2^32 / span`
    /// hashes, rounded up or down.
    ///
    /// ```
    /// use vxlan_core::hash::SourcePortRange;
    /// let r = SourcePortRange::default();
    /// assert_eq!(r.map(0), 49152);
    /// assert_eq!(r.map(u32::MAX), 65535);
    /// assert_eq!(r.map(0x8000_0000), 57344);
    /// ```
    #[inline]
    #[must_use]
    pub fn map(self, hash: u32) -> u16 {
        let offset = (u64::from(hash) * u64::from(self.span())) >> 32;
        // `offset < span`, so `min + offset <= max` fits a u16.
        u16::try_from(offset).map_or(self.max, |o| self.min.wrapping_add(o))
    }
}

/// The outer UDP source port for `inner_frame` (an Ethernet frame starting
/// at the destination MAC): `rss` when the NIC supplied a hash for the
/// frame, otherwise [`flow_hash`] of the frame, mapped into `range`.
///
/// Never panics, whatever the bytes.
///
/// ```
/// use vxlan_core::hash::{source_port, SourcePortRange};
/// # let frame = [0u8; 64];
/// let range = SourcePortRange::default();
/// let port = source_port(&frame, None, range);
/// assert!((49152..=65535).contains(&port));
/// // The same frame always gets the same port.
/// assert_eq!(port, source_port(&frame, None, range));
/// // A NIC-supplied RSS hash is used as is.
/// assert_eq!(source_port(&frame, Some(0), range), 49152);
/// ```
#[inline]
#[must_use]
pub fn source_port(inner_frame: &[u8], rss: Option<u32>, range: SourcePortRange) -> u16 {
    let hash = match rss {
        Some(h) => h,
        None => flow_hash(inner_frame),
    };
    range.map(hash)
}

/// The 32-bit flow hash of an inner Ethernet frame: [`FlowKey::extract`]
/// then [`FlowKey::mix_hash`].
#[inline]
#[must_use]
pub fn flow_hash(inner_frame: &[u8]) -> u32 {
    FlowKey::extract(inner_frame).mix_hash()
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88A8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;

const IPPROTO_HOPOPTS: u8 = 0;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ROUTING: u8 = 43;
const IPPROTO_FRAGMENT: u8 = 44;
const IPPROTO_DSTOPTS: u8 = 60;
const IPPROTO_SCTP: u8 = 132;

/// VLAN tags followed before the EtherType that is hashed.
const MAX_VLAN_TAGS: usize = 2;
/// IPv6 extension headers skipped to reach the upper layer.
const MAX_IPV6_EXT: usize = 4;

/// The `N` bytes of `frame` at `off`, as an array reference (no copy), or
/// `None` if the frame is too short.
#[inline(always)]
fn array_at<const N: usize>(frame: &[u8], off: usize) -> Option<&[u8; N]> {
    let end = off.checked_add(N)?;
    frame.get(off..end)?.try_into().ok()
}

/// Little-endian `u64` at the constant offset `at` of a fixed-size array
/// (callers pass `at + 8 <= N`, so the compiler drops the bounds check).
#[inline(always)]
fn le64<const N: usize>(b: &[u8; N], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

/// Little-endian `u32` at the constant offset `at` of a fixed-size array.
#[inline(always)]
fn le32<const N: usize>(b: &[u8; N], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(x)
}

#[inline(always)]
fn has_ports(proto: u8) -> bool {
    matches!(proto, IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP)
}

/// The fields of an inner frame that identify its flow, packed into eight
/// 64-bit words (absent fields are zero):
///
/// | word | contents |
/// | --- | --- |
/// | 0 | destination MAC, first two bytes of the source MAC |
/// | 1 | rest of the source MAC, EtherType, upper-layer protocol |
/// | 2 | IPv4 source and destination, or IPv6 source (high half) |
/// | 3-5 | rest of the IPv6 addresses |
/// | 6 | L4 source and destination ports |
/// | 7 | zero (padding to an even word count for the mixer) |
///
/// ```
/// use vxlan_core::hash::FlowKey;
/// let short = FlowKey::extract(&[0xff; 6]);
/// assert_eq!(short.words()[0], 0x0000_ffff_ffff_ffff);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FlowKey {
    words: [u64; 8],
}

impl FlowKey {
    /// Reads the flow fields of `frame` (an Ethernet frame from the
    /// destination MAC on). Never panics: fields the frame is too short to
    /// hold, or that do not apply, stay zero.
    #[must_use]
    #[inline(always)]
    pub fn extract(frame: &[u8]) -> Self {
        let mut words = [0u64; 8];

        let Some(eth) = array_at::<14>(frame, 0) else {
            // Shorter than an Ethernet header: hash the bytes that are there.
            let mut macs = [0u8; 12];
            for (d, s) in macs.iter_mut().zip(frame) {
                *d = *s;
            }
            words[0] = le64(&macs, 0);
            words[1] = u64::from(le32(&macs, 8));
            return Self { words };
        };
        words[0] = le64(eth, 0);
        let mut tail = u64::from(le32(eth, 8));
        let mut ethertype = u16::from_be_bytes([eth[12], eth[13]]);

        let mut off = 14;
        let mut tags = 0;
        // The loop condition is checked first for the common untagged IP
        // case, which then skips the three TPID comparisons.
        while !matches!(ethertype, ETHERTYPE_IPV4 | ETHERTYPE_IPV6)
            && matches!(
                ethertype,
                ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD
            )
            && tags < MAX_VLAN_TAGS
        {
            // The tag's TCI is at `off`, the next EtherType at `off + 2`.
            match array_at::<4>(frame, off) {
                Some(tag) => ethertype = u16::from_be_bytes([tag[2], tag[3]]),
                None => break,
            }
            off += 4;
            tags += 1;
        }
        tail |= u64::from(ethertype) << 32;

        match ethertype {
            ETHERTYPE_IPV4 => {
                if let Some(h) = array_at::<20>(frame, off) {
                    let ihl = usize::from(h[0] & 0x0f) * 4;
                    if h[0] >> 4 == 4 && ihl >= 20 {
                        let proto = h[9];
                        tail |= u64::from(proto) << 48;
                        words[2] = le64(h, 12);
                        let frag_offset = u16::from_be_bytes([h[6], h[7]]) & 0x1fff;
                        if frag_offset == 0 && has_ports(proto) {
                            if let Some(p) = array_at::<4>(frame, off + ihl) {
                                words[6] = u64::from(le32(p, 0));
                            }
                        }
                    }
                }
            }
            ETHERTYPE_IPV6 => {
                if let Some(h) = array_at::<40>(frame, off) {
                    if h[0] >> 4 == 6 {
                        words[2] = le64(h, 8);
                        words[3] = le64(h, 16);
                        words[4] = le64(h, 24);
                        words[5] = le64(h, 32);
                        let (proto, l4, first) = match h[6] {
                            // Extension headers: walk them (out of line).
                            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS
                            | IPPROTO_FRAGMENT => ipv6_upper_layer(frame, h[6], off + 40),
                            // The common case: the upper layer follows at once.
                            next => (next, off + 40, true),
                        };
                        tail |= u64::from(proto) << 48;
                        if first && has_ports(proto) {
                            if let Some(p) = array_at::<4>(frame, l4) {
                                words[6] = u64::from(le32(p, 0));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        words[1] = tail;
        Self { words }
    }

    /// The packed fields (see the type's docs for the layout).
    #[must_use]
    pub const fn words(&self) -> &[u64; 8] {
        &self.words
    }

    /// The fields as 64 bytes (each word little-endian), e.g. to feed another
    /// hash function.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        for (o, w) in out.chunks_exact_mut(8).zip(self.words) {
            o.copy_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// The multiply-xor hash used by [`flow_hash`] and [`source_port`].
    ///
    /// Words are paired, each XORed with its own constant, and each pair
    /// goes through a 64x64->128-bit multiply whose halves are XORed
    /// ("folded multiply"); the products are XORed together and the two
    /// 32-bit halves of the result XORed into the hash. Pairs: (0, 1) and
    /// (2, 6), plus (3, 4) and (5, constant) only when any of words 3-5 is
    /// non-zero (IPv6), so IPv4 and L2-only frames cost two multiplies. The
    /// independent multiplies overlap in the CPU.
    #[inline]
    #[must_use]
    pub fn mix_hash(&self) -> u32 {
        let w = &self.words;
        let mut s = fold_mul(w[0] ^ K[0], w[1] ^ K[1]) ^ fold_mul(w[2] ^ K[2], w[6] ^ K[3]);
        if w[3] | w[4] | w[5] != 0 {
            s ^= fold_mul(w[3] ^ K[4], w[4] ^ K[5]) ^ fold_mul(w[5] ^ K[6], w[7] ^ K[7]);
        }
        let [b0, b1, b2, b3, b4, b5, b6, b7] = s.to_le_bytes();
        u32::from_le_bytes([b0, b1, b2, b3]) ^ u32::from_le_bytes([b4, b5, b6, b7])
    }

    /// CRC32C ([`crc32c`]) over [`to_bytes`](Self::to_bytes): the
    /// alternative flow hash, measured against [`mix_hash`](Self::mix_hash).
    #[inline]
    #[must_use]
    pub fn crc32c_hash(&self) -> u32 {
        crc32c(&self.to_bytes())
    }
}

/// Walks IPv6 extension headers from `next` (the fixed header's Next
/// Header) at `off`. Returns the upper-layer protocol (or the last header
/// that could not be skipped), its offset, and `false` for a non-first
/// fragment.
#[inline(always)]
fn ipv6_upper_layer(frame: &[u8], mut next: u8, mut off: usize) -> (u8, usize, bool) {
    let mut first = true;
    for _ in 0..MAX_IPV6_EXT {
        match next {
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS => {
                let Some(&[nh, len]) = array_at::<2>(frame, off) else {
                    break;
                };
                next = nh;
                off += (usize::from(len) + 1) * 8;
            }
            IPPROTO_FRAGMENT => {
                let Some(&[nh, _, o0, o1]) = array_at::<4>(frame, off) else {
                    break;
                };
                next = nh;
                if u16::from_be_bytes([o0, o1]) >> 3 != 0 {
                    first = false;
                }
                off += 8;
            }
            _ => break,
        }
    }
    (next, off, first)
}

/// Per-position constants for [`FlowKey::mix_hash`] (odd, with roughly half
/// of their bits set: the hex digits of pi, low bit forced to 1).
const K: [u64; 8] = [
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7345,
    0xa409_3822_299f_31d1,
    0x082e_fa98_ec4e_6c89,
    0x4528_21e6_38d0_1377,
    0xbe54_66cf_34e9_0c6d,
    0xc0ac_29b7_c97c_50dd,
    0x3f84_d5b5_b547_0917,
];

/// 64x64->128-bit multiply, high and low halves XORed together.
#[inline(always)]
#[allow(clippy::cast_possible_truncation)] // Taking each 64-bit half is the point.
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    const MAC_A: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
    const MAC_B: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];

    fn eth(dst: [u8; 6], src: [u8; 6], tags: &[u16], ethertype: u16) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&dst);
        f.extend_from_slice(&src);
        for &tpid in tags {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&100u16.to_be_bytes());
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f
    }

    /// Ethernet + IPv4 (optionally with 4 option bytes) + 20 L4 bytes that
    /// start with the ports.
    fn ipv4_frame(
        src: [u8; 4],
        dst: [u8; 4],
        proto: u8,
        sp: u16,
        dp: u16,
        frag: u16,
        options: bool,
    ) -> Vec<u8> {
        let mut f = eth(MAC_A, MAC_B, &[], ETHERTYPE_IPV4);
        let ihl: u8 = if options { 6 } else { 5 };
        f.extend_from_slice(&[0x40 | ihl, 0, 0, 60, 0, 1]);
        f.extend_from_slice(&frag.to_be_bytes());
        f.extend_from_slice(&[64, proto, 0, 0]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&dst);
        if options {
            f.extend_from_slice(&[1, 1, 1, 1]);
        }
        f.extend_from_slice(&sp.to_be_bytes());
        f.extend_from_slice(&dp.to_be_bytes());
        f.extend_from_slice(&[0u8; 16]);
        f
    }

    fn ipv6_frame(src: [u8; 16], dst: [u8; 16], next: u8, ext: &[u8], sp: u16, dp: u16) -> Vec<u8> {
        let mut f = eth(MAC_A, MAC_B, &[], ETHERTYPE_IPV6);
        f.extend_from_slice(&[0x60, 0, 0, 0, 0, 28, next, 64]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&dst);
        f.extend_from_slice(ext);
        f.extend_from_slice(&sp.to_be_bytes());
        f.extend_from_slice(&dp.to_be_bytes());
        f.extend_from_slice(&[0u8; 8]);
        f
    }

    const V4A: [u8; 4] = [10, 0, 0, 1];
    const V4B: [u8; 4] = [10, 0, 0, 2];

    /// A small deterministic PRNG (xorshift64*), so the distribution tests
    /// never flake.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn bytes<const N: usize>(&mut self) -> [u8; N] {
            let mut out = [0u8; N];
            for b in &mut out {
                *b = self.next().to_le_bytes()[7];
            }
            out
        }
        fn u16(&mut self) -> u16 {
            let [a, b, ..] = self.next().to_le_bytes();
            u16::from_le_bytes([a, b])
        }
    }

    /// Pearson chi-square of `ports` over `buckets` equal slices of `range`.
    fn chi_square(ports: &[u16], range: SourcePortRange, buckets: usize) -> f64 {
        let mut counts = std::vec![0u64; buckets];
        let span = u64::from(range.span());
        for &p in ports {
            let off = u64::from(p - range.min());
            let idx = usize::try_from(off * buckets as u64 / span).unwrap();
            counts[idx] += 1;
        }
        let expected = ports.len() as f64 / buckets as f64;
        counts
            .iter()
            .map(|&c| (c as f64 - expected).powi(2) / expected)
            .sum()
    }

    #[test]
    fn range_constructor() {
        assert_eq!(
            SourcePortRange::new(2, 1),
            Err(InvalidPortRange { min: 2, max: 1 })
        );
        let msg = std::format!("{}", InvalidPortRange { min: 2, max: 1 });
        assert!(msg.contains("min 2") && msg.contains("max 1"), "{msg}");
        let one = SourcePortRange::new(4789, 4789).unwrap();
        assert_eq!(one.span(), 1);
        assert_eq!(one.map(0), 4789);
        assert_eq!(one.map(u32::MAX), 4789);
        let full = SourcePortRange::new(0, u16::MAX).unwrap();
        assert_eq!(full.span(), 65536);
        assert_eq!(full.map(u32::MAX), u16::MAX);
        assert_eq!(full.map(0x1234_5678), 0x1234);
        assert_eq!(
            SourcePortRange::default(),
            SourcePortRange::new(49152, 65535).unwrap()
        );
    }

    #[test]
    fn same_flow_same_port() {
        let r = SourcePortRange::default();
        let f = ipv4_frame(V4A, V4B, IPPROTO_TCP, 40000, 443, 0, false);
        let p = source_port(&f, None, r);
        assert_eq!(p, source_port(&f.clone(), None, r));
        // Payload bytes past the ports do not matter.
        let mut g = f.clone();
        let last = g.len() - 1;
        g[last] ^= 0xff;
        assert_eq!(p, source_port(&g, None, r));
    }

    #[test]
    fn fields_that_matter() {
        let base = FlowKey::extract(&ipv4_frame(V4A, V4B, IPPROTO_TCP, 40000, 443, 0, false));
        for other in [
            ipv4_frame(V4B, V4B, IPPROTO_TCP, 40000, 443, 0, false),
            ipv4_frame(V4A, V4A, IPPROTO_TCP, 40000, 443, 0, false),
            ipv4_frame(V4A, V4B, IPPROTO_UDP, 40000, 443, 0, false),
            ipv4_frame(V4A, V4B, IPPROTO_TCP, 40001, 443, 0, false),
            ipv4_frame(V4A, V4B, IPPROTO_TCP, 40000, 444, 0, false),
        ] {
            let k = FlowKey::extract(&other);
            assert_ne!(k, base);
            assert_ne!(k.mix_hash(), base.mix_hash());
        }
        // IPv4 options are skipped to find the ports.
        let opt = FlowKey::extract(&ipv4_frame(V4A, V4B, IPPROTO_TCP, 40000, 443, 0, true));
        assert_eq!(opt, base);
        // Ports of a protocol without ports (ICMP) are ignored.
        let icmp1 = FlowKey::extract(&ipv4_frame(V4A, V4B, 1, 1, 2, 0, false));
        let icmp2 = FlowKey::extract(&ipv4_frame(V4A, V4B, 1, 3, 4, 0, false));
        assert_eq!(icmp1, icmp2);
        assert_eq!(icmp1.words()[6], 0);
    }

    #[test]
    fn fragments() {
        // A non-first fragment has no L4 header: ports are not read.
        let a = FlowKey::extract(&ipv4_frame(V4A, V4B, IPPROTO_UDP, 1, 2, 0x0010, false));
        let b = FlowKey::extract(&ipv4_frame(V4A, V4B, IPPROTO_UDP, 3, 4, 0x0010, false));
        assert_eq!(a, b);
        assert_eq!(a.words()[6], 0);
        // The first fragment (MF set, offset 0) has its ports.
        let first = FlowKey::extract(&ipv4_frame(V4A, V4B, IPPROTO_UDP, 1, 2, 0x2000, false));
        assert_ne!(first.words()[6], 0);

        let (s, d) = ([0x20; 16], [0x30; 16]);
        // IPv6 fragment header: next header UDP, offset 0 with M set / offset 8.
        let first6 = FlowKey::extract(&ipv6_frame(
            s,
            d,
            IPPROTO_FRAGMENT,
            &[17, 0, 0, 1, 0, 0, 0, 7],
            5,
            6,
        ));
        let later6 = FlowKey::extract(&ipv6_frame(
            s,
            d,
            IPPROTO_FRAGMENT,
            &[17, 0, 0, 0x40, 0, 0, 0, 7],
            5,
            6,
        ));
        let plain6 = FlowKey::extract(&ipv6_frame(s, d, IPPROTO_UDP, &[], 5, 6));
        assert_eq!(first6, plain6);
        assert_eq!(later6.words()[6], 0);
        assert_eq!(later6.words()[1] >> 48, u64::from(IPPROTO_UDP));
    }

    #[test]
    fn ipv6_extension_headers_skipped() {
        let (s, d) = ([0x20; 16], [0x30; 16]);
        let plain = FlowKey::extract(&ipv6_frame(s, d, IPPROTO_TCP, &[], 5, 6));
        // Hop-by-hop (8 bytes) then destination options (16 bytes).
        let mut ext = std::vec![IPPROTO_DSTOPTS, 0, 1, 4, 0, 0, 0, 0];
        ext.extend_from_slice(&[IPPROTO_TCP, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let with_ext = FlowKey::extract(&ipv6_frame(s, d, IPPROTO_HOPOPTS, &ext, 5, 6));
        assert_eq!(plain, with_ext);
        assert_ne!(plain.words()[6], 0);
        assert_ne!(plain.words()[2..6], [0; 4]);
    }

    #[test]
    fn vlan_tags_followed() {
        let untagged = ipv4_frame(V4A, V4B, IPPROTO_TCP, 40000, 443, 0, false);
        let ip = &untagged[14..];
        for tags in [
            &[ETHERTYPE_VLAN][..],
            &[ETHERTYPE_QINQ, ETHERTYPE_VLAN],
            &[ETHERTYPE_QINQ_OLD, ETHERTYPE_VLAN],
        ] {
            let mut f = eth(MAC_A, MAC_B, tags, ETHERTYPE_IPV4);
            f.extend_from_slice(ip);
            assert_eq!(
                FlowKey::extract(&f),
                FlowKey::extract(&untagged),
                "{tags:x?}"
            );
        }
        // A third tag is not followed: only MACs and the tag's TPID count.
        let mut f = eth(
            MAC_A,
            MAC_B,
            &[ETHERTYPE_QINQ, ETHERTYPE_VLAN, ETHERTYPE_VLAN],
            ETHERTYPE_IPV4,
        );
        f.extend_from_slice(ip);
        let k = FlowKey::extract(&f);
        assert_eq!(k.words()[2], 0);
        assert_eq!((k.words()[1] >> 32) & 0xffff, u64::from(ETHERTYPE_VLAN));
    }

    #[test]
    fn truncated_frames_hash_what_is_there() {
        let f = ipv4_frame(V4A, V4B, IPPROTO_TCP, 40000, 443, 0, false);
        // Up to an incomplete IPv4 header, only the MACs and EtherType count.
        let macs_only = FlowKey::extract(&f[..14]);
        for cut in 14..34 {
            assert_eq!(FlowKey::extract(&f[..cut]), macs_only, "cut at {cut}");
        }
        // Full IP header without complete ports: addresses but no ports.
        let no_ports = FlowKey::extract(&f[..37]);
        assert_ne!(no_ports.words()[2], 0);
        assert_eq!(no_ports.words()[6], 0);
        assert_eq!(FlowKey::extract(&f[..38]), FlowKey::extract(&f));
        // Shorter than the MACs: the bytes present.
        assert_eq!(FlowKey::extract(&[]), FlowKey::default());
        assert_eq!(FlowKey::extract(&f[..3]).words()[0], 0x00_0002);
        // Every prefix of every kind of frame is fine.
        let v6 = ipv6_frame(
            [1; 16],
            [2; 16],
            IPPROTO_FRAGMENT,
            &[17, 0, 0, 1, 0, 0, 0, 7],
            5,
            6,
        );
        for frame in [&f, &v6] {
            for cut in 0..=frame.len() {
                let _ = source_port(&frame[..cut], None, SourcePortRange::DEFAULT);
            }
        }
    }

    #[test]
    fn rss_hash_used_when_present() {
        let r = SourcePortRange::default();
        let f = ipv4_frame(V4A, V4B, IPPROTO_TCP, 40000, 443, 0, false);
        let g = ipv4_frame(V4B, V4A, IPPROTO_UDP, 1, 2, 0, false);
        for h in [0, 1, 0x8000_0000, 0xdead_beef, u32::MAX] {
            assert_eq!(source_port(&f, Some(h), r), r.map(h));
            assert_eq!(source_port(&g, Some(h), r), r.map(h));
            assert_eq!(source_port(&[], Some(h), r), r.map(h));
        }
        assert_eq!(source_port(&f, None, r), r.map(flow_hash(&f)));
    }

    #[test]
    fn reversed_direction_may_differ() {
        // Not required to be symmetric; just check both directions work and
        // are each stable.
        let r = SourcePortRange::default();
        let fwd = ipv4_frame(V4A, V4B, IPPROTO_TCP, 40000, 443, 0, false);
        let rev = ipv4_frame(V4B, V4A, IPPROTO_TCP, 443, 40000, 0, false);
        assert_eq!(source_port(&fwd, None, r), source_port(&fwd, None, r));
        assert_eq!(source_port(&rev, None, r), source_port(&rev, None, r));
        assert_ne!(flow_hash(&fwd), flow_hash(&rev));
    }

    #[test]
    fn random_flows_spread_over_range() {
        // Chi-square over 64 equal buckets, 63 degrees of freedom: mean 63,
        // standard deviation ~11.2; 130 is six deviations out.
        let r = SourcePortRange::default();
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let n = 100_000;

        let v4: Vec<u16> = (0..n)
            .map(|_| {
                let f = ipv4_frame(
                    rng.bytes(),
                    rng.bytes(),
                    IPPROTO_TCP,
                    rng.u16(),
                    rng.u16(),
                    0,
                    false,
                );
                source_port(&f, None, r)
            })
            .collect();
        let x = chi_square(&v4, r, 64);
        assert!(x < 130.0, "IPv4 random 5-tuples: chi-square {x}");

        let v6: Vec<u16> = (0..n)
            .map(|_| {
                let f = ipv6_frame(
                    rng.bytes(),
                    rng.bytes(),
                    IPPROTO_UDP,
                    &[],
                    rng.u16(),
                    rng.u16(),
                );
                source_port(&f, None, r)
            })
            .collect();
        let x = chi_square(&v6, r, 64);
        assert!(x < 130.0, "IPv6 random 5-tuples: chi-square {x}");

        // The realistic hard case: two hosts, only the client port varies.
        let seq: Vec<u16> = (0..u16::MAX)
            .map(|sp| {
                source_port(
                    &ipv4_frame(V4A, V4B, IPPROTO_TCP, sp, 443, 0, false),
                    None,
                    r,
                )
            })
            .collect();
        let x = chi_square(&seq, r, 64);
        assert!(x < 130.0, "sequential source ports: chi-square {x}");

        // L2-only frames differing in one MAC byte.
        let l2: Vec<u16> = (0..n)
            .map(|i: u32| {
                let [a, b, c, _] = i.to_le_bytes();
                let f = eth([2, 0, 0, c, b, a], MAC_B, &[], 0x88b5);
                source_port(&f, None, r)
            })
            .collect();
        let x = chi_square(&l2, r, 64);
        assert!(x < 130.0, "L2 frames: chi-square {x}");
    }

    #[test]
    fn crc_variant_agrees_with_crc32c() {
        let f = ipv4_frame(V4A, V4B, IPPROTO_TCP, 40000, 443, 0, false);
        let k = FlowKey::extract(&f);
        assert_eq!(k.crc32c_hash(), crc32c(&k.to_bytes()));
        assert_eq!(&k.to_bytes()[..8], &k.words()[0].to_le_bytes());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(frame in proptest::collection::vec(any::<u8>(), 0..200)) {
            let p = source_port(&frame, None, SourcePortRange::DEFAULT);
            prop_assert!(p >= 49152);
        }

        #[test]
        fn arbitrary_l3_after_valid_ethertype(
            ethertype in prop_oneof![Just(ETHERTYPE_IPV4), Just(ETHERTYPE_IPV6), Just(ETHERTYPE_VLAN), Just(ETHERTYPE_QINQ)],
            version in 0u8..16,
            rest in proptest::collection::vec(any::<u8>(), 0..120),
        ) {
            let mut f = eth(MAC_A, MAC_B, &[], ethertype);
            f.push(version << 4 | (rest.first().copied().unwrap_or(0) & 0x0f));
            f.extend_from_slice(&rest);
            let _ = FlowKey::extract(&f);
        }

        #[test]
        fn port_always_in_range(
            min in any::<u16>(), max in any::<u16>(), hash in any::<u32>(),
            frame in proptest::collection::vec(any::<u8>(), 0..80),
            use_rss in any::<bool>(),
        ) {
            match SourcePortRange::new(min, max) {
                Ok(r) => {
                    let p = source_port(&frame, use_rss.then_some(hash), r);
                    prop_assert!((min..=max).contains(&p));
                    let q = r.map(hash);
                    prop_assert!((min..=max).contains(&q));
                }
                Err(e) => {
                    prop_assert!(min > max);
                    prop_assert_eq!(e, InvalidPortRange { min, max });
                }
            }
        }
    }
}
