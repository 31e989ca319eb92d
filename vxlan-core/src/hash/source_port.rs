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
        self.map_with_span(hash, self.span())
    }

    /// [`SourcePortRange::map`] with the range's [`span`](Self::span)
    /// given (computed once by a caller that maps many hashes).
    #[inline(always)]
    pub(crate) fn map_with_span(self, hash: u32, span: u32) -> u16 {
        debug_assert_eq!(span, self.span());
        let offset = (u64::from(hash) * u64::from(span)) >> 32;
        // `offset < span <= 65536`, so it fits a u16 and `min + offset <=
        // max`: neither the cast nor the addition loses anything.
        #[allow(clippy::cast_possible_truncation)]
        let offset = offset as u16;
        self.min.wrapping_add(offset)
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

/// Bytes an untagged IPv4 frame without options needs up to its L4 ports.
const V4_FAST_LEN: usize = 14 + 20 + 4;
/// Bytes an untagged IPv6 frame without extension headers needs up to its
/// L4 ports.
const V6_FAST_LEN: usize = 14 + 40 + 4;

/// The 32-bit flow hash of an inner Ethernet frame:
/// `FlowKey::extract(frame).mix_hash()`.
///
/// The common shapes (untagged IPv4 without options, or IPv6 without
/// extension headers, carrying a first or only fragment of TCP, UDP or
/// SCTP) are recognised with two masked 32-bit compares and hashed straight
/// from the frame's bytes; everything else takes the general walker out of
/// line. Both give the same hash for the same frame.
#[inline]
#[must_use]
pub fn flow_hash(inner_frame: &[u8]) -> u32 {
    match flow_hash_fast(inner_frame) {
        Some(h) => h,
        None => flow_hash_general(inner_frame),
    }
}

/// [`flow_hash`]'s fast path: the hash of an untagged IPv4 or IPv6 frame
/// of the shapes described there, `None` for every other frame.
///
/// A frame long enough for either family is length-checked once; only a
/// shorter one (which can only be IPv4) is checked again for the IPv4
/// length.
#[inline(always)]
fn flow_hash_fast(inner_frame: &[u8]) -> Option<u32> {
    if let Some(h) = inner_frame.first_chunk::<V6_FAST_LEN>() {
        // Bytes 12-15 as a little-endian word: EtherType (wire order),
        // version and IHL (IPv4) or version and traffic class (IPv6).
        let head = le32(h, 12);
        if let Some(hash) = fast_v4(h, head) {
            return Some(hash);
        }
        // EtherType 0x86DD and version 6.
        if head & 0x00f0_ffff == 0x0060_dd86 {
            let next = h[20];
            if has_ports_table(next) {
                let w3 = u64::from(le32(h, 54)) | (u64::from(next) << 32);
                return Some(mix([
                    le64(h, 0) << 16,
                    le64(h, 6),
                    le64(h, 22),
                    w3,
                    le64(h, 30),
                    le64(h, 38),
                    le64(h, 46),
                    0,
                ]));
            }
        }
        return None;
    }
    let h = inner_frame.first_chunk::<V4_FAST_LEN>()?;
    fast_v4(h, le32(h, 12))
}

/// The IPv4 half of [`flow_hash_fast`] for a frame of at least
/// `V4_FAST_LEN` bytes whose bytes 12-15 (little-endian) are `head`.
#[inline(always)]
fn fast_v4<const N: usize>(h: &[u8; N], head: u32) -> Option<u32> {
    // Bytes 20-23: flags and fragment offset, TTL, protocol. The mask
    // 0xff1f keeps the 13 offset bits (an offset-0 fragment has none set);
    // the protocol is looked up in one table load, the same cost for TCP,
    // UDP and SCTP.
    let w = le32(h, 20);
    let proto = (w >> 24) as u8;
    if head & 0x00ff_ffff == 0x0045_0008 && w & 0xff1f == 0 && has_ports_table(proto) {
        let w3 = u64::from(le32(h, 34)) | (u64::from(proto) << 32);
        return Some(mix([
            le64(h, 0) << 16,
            le64(h, 6),
            le64(h, 26),
            w3,
            0,
            0,
            0,
            0,
        ]));
    }
    None
}

/// [`flow_hash`] for the shapes its fast path does not take: VLAN tags,
/// IPv4 options, IPv6 extension headers, fragments, other protocols, L2
/// only, truncated frames. Out of line, so the fast path stays small.
#[cold]
#[inline(never)]
fn flow_hash_general(frame: &[u8]) -> u32 {
    FlowKey::extract(frame).mix_hash()
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

/// [`has_ports`] as one table load, the same cost for every protocol (a
/// chain of compares costs most for the protocol it tests last).
#[inline(always)]
fn has_ports_table(proto: u8) -> bool {
    HAS_PORTS[usize::from(proto)]
}

/// `HAS_PORTS[p]` is `has_ports(p)`.
static HAS_PORTS: [bool; 256] = {
    let mut t = [false; 256];
    t[IPPROTO_TCP as usize] = true;
    t[IPPROTO_UDP as usize] = true;
    t[IPPROTO_SCTP as usize] = true;
    t
};

/// The fields of an inner frame that identify its flow, packed into eight
/// 64-bit words (absent fields are zero). The layout is chosen so that an
/// untagged frame's words are whole 8-byte loads at fixed offsets:
///
/// | word | contents |
/// | --- | --- |
/// | 0 | destination MAC in bits 16-63 (bits 0-15 zero) |
/// | 1 | source MAC in bits 0-47, EtherType in bits 48-63 (after any VLAN tags; wire byte order) |
/// | 2 | IPv4 source and destination, or the first half of the IPv6 source |
/// | 3 | L4 source and destination ports in bits 0-31, upper-layer protocol in bits 32-39 |
/// | 4 | second half of the IPv6 source |
/// | 5, 6 | IPv6 destination |
/// | 7 | zero (not used by the mixer; keeps [`to_bytes`](Self::to_bytes) at 64 bytes) |
///
/// Every word is little-endian over the frame's bytes in wire order.
///
/// ```
/// use vxlan_core::hash::FlowKey;
/// let short = FlowKey::extract(&[0xff; 6]);
/// assert_eq!(short.words()[0], 0xffff_ffff_ffff_0000);
/// assert_eq!(short.words()[1], 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FlowKey {
    words: [u64; 8],
}

impl FlowKey {
    /// Reads the flow fields of `frame` (an Ethernet frame from the
    /// destination MAC on). Never panics: fields the frame is too short to
    /// hold, or that do not apply, stay zero.
    ///
    /// This is the general walker; [`flow_hash`] reads the common shapes
    /// directly and gives the same hash as `extract(frame).mix_hash()`.
    #[must_use]
    #[inline(always)]
    pub fn extract(frame: &[u8]) -> Self {
        let mut words = [0u64; 8];

        let Some(eth) = array_at::<14>(frame, 0) else {
            // Shorter than an Ethernet header: hash the bytes that are there.
            let mut head = [0u8; 14];
            for (d, s) in head.iter_mut().zip(frame) {
                *d = *s;
            }
            words[0] = le64(&head, 0) << 16;
            words[1] = le64(&head, 6);
            return Self { words };
        };
        words[0] = le64(eth, 0) << 16;
        // Source MAC; the EtherType is added once the tags are skipped.
        let src_mac = le64(eth, 6) & 0x0000_ffff_ffff_ffff;
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
        // Wire byte order, as an untagged frame's 8-byte load at offset 6
        // has it.
        words[1] = src_mac | (u64::from(ethertype.swap_bytes()) << 48);

        match ethertype {
            ETHERTYPE_IPV4 => {
                if let Some(h) = array_at::<20>(frame, off) {
                    let ihl = usize::from(h[0] & 0x0f) * 4;
                    if h[0] >> 4 == 4 && ihl >= 20 {
                        let proto = h[9];
                        words[2] = le64(h, 12);
                        words[3] = u64::from(proto) << 32;
                        let frag_offset = u16::from_be_bytes([h[6], h[7]]) & 0x1fff;
                        if frag_offset == 0 && has_ports(proto) {
                            if let Some(p) = array_at::<4>(frame, off + ihl) {
                                words[3] |= u64::from(le32(p, 0));
                            }
                        }
                    }
                }
            }
            ETHERTYPE_IPV6 => {
                if let Some(h) = array_at::<40>(frame, off) {
                    if h[0] >> 4 == 6 {
                        words[2] = le64(h, 8);
                        words[4] = le64(h, 16);
                        words[5] = le64(h, 24);
                        words[6] = le64(h, 32);
                        let (proto, l4, first) = match h[6] {
                            // Extension headers: walk them.
                            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS
                            | IPPROTO_FRAGMENT => ipv6_upper_layer(frame, h[6], off + 40),
                            next => (next, off + 40, true),
                        };
                        words[3] = u64::from(proto) << 32;
                        if first && has_ports(proto) {
                            if let Some(p) = array_at::<4>(frame, l4) {
                                words[3] |= u64::from(le32(p, 0));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
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
    /// Three pairs of words, (0, 1), (2 ^ 5 byte-reversed, 3) and (4, 6),
    /// each word XORed with its own constant, go through a 64x64->128-bit
    /// multiply whose halves are XORed ("folded multiply"); the three
    /// products are XORed together, and the top 32 bits of that times an
    /// odd constant are the hash. For IPv4 and L2-only frames words 4-6
    /// are zero, so the last product is a constant and the byte-reversed
    /// word 5 is zero, both folded at compile time: two multiplies per
    /// frame, three for IPv6, all independent, then the final one.
    ///
    /// An IPv6 flow has seven words, one more than three multiplies take,
    /// so the two address prefixes (words 2 and 5, the least varied part
    /// of a flow) share an operand; reversing the destination prefix's
    /// bytes puts the subnet bytes of one beside the allocation bytes of
    /// the other, so two flows collide through it only if the source
    /// prefixes differ exactly as the reversed destination prefixes do.
    /// The two interface identifiers, where hosts differ most, are
    /// multiplied by each other. Word 7 is always zero and not used.
    #[inline]
    #[must_use]
    pub fn mix_hash(&self) -> u32 {
        mix(self.words)
    }

    /// CRC32C ([`crc32c`]) over [`to_bytes`](Self::to_bytes): the
    /// alternative flow hash, measured against [`mix_hash`](Self::mix_hash).
    #[inline]
    #[must_use]
    pub fn crc32c_hash(&self) -> u32 {
        crc32c(&self.to_bytes())
    }
}

/// [`FlowKey::mix_hash`] over the words.
#[inline(always)]
fn mix(w: [u64; 8]) -> u32 {
    let s = fold_mul(w[0] ^ K[0], w[1] ^ K[1])
        ^ fold_mul(w[2] ^ w[5].swap_bytes() ^ K[2], w[3] ^ K[3])
        ^ fold_mul(w[4] ^ K[4], w[6] ^ K[5]);
    // The top half of a multiply by an odd constant: every bit of `s`
    // reaches the top bits, which are the ones `SourcePortRange::map`
    // keeps. (XORing the two halves of `s` instead left structured
    // address plans unevenly spread; see the mesh test.)
    let [_, _, _, _, b4, b5, b6, b7] = s.wrapping_mul(K[6]).to_le_bytes();
    u32::from_le_bytes([b4, b5, b6, b7])
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

/// Constants for [`FlowKey::mix_hash`] (odd, with roughly half of their
/// bits set: the hex digits of pi, low bit forced to 1): six for the
/// multiplied operands, one for the final multiply.
const K: [u64; 7] = [
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7345,
    0xa409_3822_299f_31d1,
    0x082e_fa98_ec4e_6c89,
    0x4528_21e6_38d0_1377,
    0xbe54_66cf_34e9_0c6d,
    0xc0ac_29b7_c97c_50dd,
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

    /// The L4 ports of a key (word 3, bits 0-31).
    fn ports(k: &FlowKey) -> u64 {
        k.words()[3] & 0xffff_ffff
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
        assert_eq!(ports(&icmp1), 0);
        assert_eq!(icmp1.words()[3] >> 32, 1);
    }

    #[test]
    fn fragments() {
        // A non-first fragment has no L4 header: ports are not read.
        let a = FlowKey::extract(&ipv4_frame(V4A, V4B, IPPROTO_UDP, 1, 2, 0x0010, false));
        let b = FlowKey::extract(&ipv4_frame(V4A, V4B, IPPROTO_UDP, 3, 4, 0x0010, false));
        assert_eq!(a, b);
        assert_eq!(ports(&a), 0);
        // The first fragment (MF set, offset 0) has its ports.
        let first = FlowKey::extract(&ipv4_frame(V4A, V4B, IPPROTO_UDP, 1, 2, 0x2000, false));
        assert_ne!(ports(&first), 0);

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
        assert_eq!(ports(&later6), 0);
        assert_eq!(later6.words()[3] >> 32, u64::from(IPPROTO_UDP));
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
        assert_ne!(ports(&plain), 0);
        assert_ne!(plain.words()[4..7], [0; 3]);
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
        assert_eq!(k.words()[1] >> 48, u64::from(ETHERTYPE_VLAN.swap_bytes()));
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
        assert_eq!(ports(&no_ports), 0);
        assert_eq!(FlowKey::extract(&f[..38]), FlowKey::extract(&f));
        // Shorter than the MACs: the bytes present.
        assert_eq!(FlowKey::extract(&[]), FlowKey::default());
        assert_eq!(FlowKey::extract(&f[..3]).words()[0], 0x0002_0000);
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
        let seq6: Vec<u16> = (0..u16::MAX)
            .map(|sp| {
                source_port(
                    &ipv6_frame([0x20; 16], [0x30; 16], IPPROTO_UDP, &[], sp, 4789),
                    None,
                    r,
                )
            })
            .collect();
        let x = chi_square(&seq6, r, 64);
        assert!(x < 130.0, "sequential IPv6 source ports: chi-square {x}");

        // Many clients (sequential IPv4 addresses) of one server port.
        let hosts: Vec<u16> = (0..n)
            .map(|i: u32| {
                let src = (0x0a00_0000 + i).to_be_bytes();
                source_port(
                    &ipv4_frame(src, V4B, IPPROTO_TCP, 40000, 443, 0, false),
                    None,
                    r,
                )
            })
            .collect();
        let x = chi_square(&hosts, r, 64);
        assert!(x < 130.0, "sequential client addresses: chi-square {x}");

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

    /// `f` with its MAC addresses replaced.
    fn with_macs(mut f: Vec<u8>, dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
        f[..6].copy_from_slice(&dst);
        f[6..12].copy_from_slice(&src);
        f
    }

    /// A frame of one of the shapes the fast path takes or only just
    /// misses: tagged or not, IPv4 with or without options, fragments,
    /// IPv6 with or without extension headers, various protocols, a wrong
    /// version now and then, cut short now and then.
    fn random_frame(rng: &mut Rng) -> Vec<u8> {
        let protos = [IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP, 1, 47, 58];
        let proto = protos[usize::try_from(rng.next() % 6).unwrap()];
        let (sp, dp) = (rng.u16(), rng.u16());
        let mut f = match rng.next() % 4 {
            0 | 1 => {
                let frags = [0, 0, 0x2000, 0x4000, 0x0010, 0x2001];
                let frag = frags[usize::try_from(rng.next() % 6).unwrap()];
                let options = rng.next().is_multiple_of(4);
                ipv4_frame(rng.bytes(), rng.bytes(), proto, sp, dp, frag, options)
            }
            2 => ipv6_frame(rng.bytes(), rng.bytes(), proto, &[], sp, dp),
            _ => {
                let (next, ext): (u8, &[u8]) = match rng.next() % 3 {
                    0 => (IPPROTO_HOPOPTS, &[17, 0, 1, 4, 0, 0, 0, 0]),
                    1 => (IPPROTO_FRAGMENT, &[6, 0, 0, 1, 0, 0, 0, 7]),
                    _ => (IPPROTO_FRAGMENT, &[6, 0, 0, 0x48, 0, 0, 0, 7]),
                };
                ipv6_frame(rng.bytes(), rng.bytes(), next, ext, sp, dp)
            }
        };
        f = with_macs(f, rng.bytes(), rng.bytes());
        if rng.next().is_multiple_of(4) {
            let tag = [0x81, 0x00, 0x00, 0x64];
            f.splice(12..12, tag);
        }
        if rng.next().is_multiple_of(8) {
            // Wrong IP version or IHL.
            let at = if f[12] == 0x81 { 18 } else { 14 };
            f[at] ^= 1 << (rng.next() % 8);
        }
        if rng.next().is_multiple_of(4) {
            let cut = usize::try_from(rng.next()).unwrap() % (f.len() + 1);
            f.truncate(cut);
        }
        f
    }

    #[test]
    fn fast_path_agrees_with_walker() {
        let mut rng = Rng(0x0bad_cafe_f00d_d00d);
        for _ in 0..50_000 {
            let f = random_frame(&mut rng);
            assert_eq!(flow_hash(&f), FlowKey::extract(&f).mix_hash(), "{f:02x?}");
        }
        // The benchmark shapes, explicitly.
        for f in [
            ipv4_frame(V4A, V4B, IPPROTO_UDP, 12345, 80, 0, false),
            ipv4_frame(V4A, V4B, IPPROTO_TCP, 12345, 80, 0x4000, false),
            ipv6_frame([1; 16], [2; 16], IPPROTO_UDP, &[], 5, 6),
        ] {
            assert_eq!(flow_hash(&f), FlowKey::extract(&f).mix_hash());
            // The agreement above holds with the fast path switched off;
            // this does not.
            assert_eq!(flow_hash_fast(&f), Some(flow_hash(&f)), "{f:02x?}");
        }
        // Shapes the fast path leaves to the walker.
        for f in [
            ipv4_frame(V4A, V4B, IPPROTO_UDP, 12345, 80, 0x0001, false),
            ipv4_frame(V4A, V4B, 1, 0, 0, 0, false),
        ] {
            assert_eq!(flow_hash_fast(&f), None, "{f:02x?}");
        }
    }

    #[test]
    fn every_field_changes_the_port() {
        // Change one field of a random flow to another random value: the
        // port must change for nearly every flow (two unrelated flows share
        // a port with probability 1/16384 in the default range).
        let r = SourcePortRange::default();
        let mut rng = Rng(0x5eed_0ff1_e1d5);
        let n = 4000;
        for field in 0..14 {
            let mut same = 0;
            for _ in 0..n {
                let mut v = [
                    rng.bytes::<6>().to_vec(),
                    rng.bytes::<6>().to_vec(),
                    rng.bytes::<16>().to_vec(),
                    rng.bytes::<16>().to_vec(),
                    rng.bytes::<2>().to_vec(),
                    rng.bytes::<2>().to_vec(),
                    std::vec![IPPROTO_TCP],
                ];
                let build = |v: &[Vec<u8>; 7], ipv6: bool| {
                    let (sp, dp) = (
                        u16::from_be_bytes([v[4][0], v[4][1]]),
                        u16::from_be_bytes([v[5][0], v[5][1]]),
                    );
                    let f = if ipv6 {
                        ipv6_frame(
                            v[2][..].try_into().unwrap(),
                            v[3][..].try_into().unwrap(),
                            v[6][0],
                            &[],
                            sp,
                            dp,
                        )
                    } else {
                        ipv4_frame(
                            v[2][..4].try_into().unwrap(),
                            v[3][..4].try_into().unwrap(),
                            v[6][0],
                            sp,
                            dp,
                            0,
                            false,
                        )
                    };
                    let f = with_macs(
                        f,
                        v[0][..].try_into().unwrap(),
                        v[1][..].try_into().unwrap(),
                    );
                    source_port(&f, None, r)
                };
                let ipv6 = field >= 7;
                let before = build(&v, ipv6);
                let k = field % 7;
                if k == 6 {
                    v[6][0] = if v[6][0] == IPPROTO_TCP {
                        IPPROTO_UDP
                    } else {
                        IPPROTO_TCP
                    };
                } else {
                    // A different value in one random byte of the field
                    // (only the first 4 bytes of an address count in IPv4).
                    let len = if k < 2 {
                        6
                    } else if k < 4 && !ipv6 {
                        4
                    } else {
                        v[k].len()
                    };
                    let at = usize::try_from(rng.next()).unwrap() % len;
                    v[k][at] ^= u8::try_from(rng.next() % 255 + 1).unwrap();
                }
                if build(&v, ipv6) == before {
                    same += 1;
                }
            }
            // Expected about 0.25 of 4000; 20 is far out.
            assert!(
                same <= 20,
                "field {k} (ipv6: {ipv6}): {same} of {n} unchanged",
                k = field % 7,
                ipv6 = field >= 7
            );
        }
    }

    /// Flipping any one of the 256 bits of the IPv6 source and destination
    /// addresses changes the port for nearly every flow: in particular the
    /// two interface identifiers, which the mixer XORs into one word
    /// (`mix`), each reach the hash on their own.
    #[test]
    fn every_ipv6_address_bit_changes_the_port() {
        let r = SourcePortRange::default();
        let mut rng = Rng(0x0006_b175_f11b);
        let n = 1000;
        let mut unchanged = [0u32; 256];
        for _ in 0..n {
            let (src, dst): ([u8; 16], [u8; 16]) = (rng.bytes(), rng.bytes());
            let (sp, dp) = (rng.u16(), rng.u16());
            let port = |s: [u8; 16], d: [u8; 16]| {
                let f = with_macs(ipv6_frame(s, d, IPPROTO_UDP, &[], sp, dp), MAC_A, MAC_B);
                // Both paths, so the walker's fold is checked too.
                assert_eq!(flow_hash_fast(&f), Some(FlowKey::extract(&f).mix_hash()));
                source_port(&f, None, r)
            };
            let before = port(src, dst);
            for bit in 0..256 {
                let (mut s, mut d) = (src, dst);
                let a = if bit < 128 { &mut s } else { &mut d };
                a[(bit % 128) / 8] ^= 1 << (bit % 8);
                if port(s, d) == before {
                    unchanged[bit] += 1;
                }
            }
        }
        // A port repeats by chance for about 1 in 16384 changes: 0.06 of
        // 1000 expected per bit.
        for (bit, &u) in unchanged.iter().enumerate() {
            assert!(u <= 3, "address bit {bit}: port unchanged for {u} of {n}");
        }
    }

    /// Every ordered pair of distinct hosts from a structured address plan
    /// (one flow per pair, everything else fixed) gets its own 32-bit hash
    /// but for chance repeats, and the ports spread. The mixer XORs the
    /// source prefix with the byte-reversed destination prefix: a plain
    /// XOR would give (A, B) and (A', B') the same hash whenever the
    /// prefixes differ alike, as they do for one host per /64 (16002 of
    /// the 16256 flows repeated a hash with it). The plans with structured
    /// interface identifiers also caught the earlier final step (the two
    /// halves XORed), which spread some of them unevenly.
    #[test]
    fn ipv6_host_meshes_do_not_collide() {
        let r = SourcePortRange::default();
        let base = |h: u8, at: &[usize]| {
            let mut a = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            for &i in at {
                a[i] = h;
            }
            a
        };
        type Plan<'a> = (&'a str, &'a dyn Fn(u8) -> [u8; 16]);
        let plans: [Plan; 6] = [
            ("::h", &|h| base(h, &[15])),
            ("::h:0:0:h", &|h| base(h, &[11, 15])),
            ("::h:h:h:h", &|h| base(h, &[9, 11, 13, 15])),
            ("::s:0:0:h, 8 sites", &|h| {
                let mut a = base(h % 8, &[11]);
                a[15] = h / 8;
                a
            }),
            ("one host per /64", &|h| {
                let mut a = base(h, &[7]);
                a[15] = 1;
                a
            }),
            ("EUI-64, one OUI", &|h| {
                [
                    0xfe,
                    0x80,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0x02,
                    0x1b,
                    0x21,
                    0xff,
                    0xfe,
                    0x3c,
                    h / 16,
                    h % 16,
                ]
            }),
        ];
        for (name, addr) in plans {
            let mut hashes = Vec::new();
            let mut ports = Vec::new();
            for s in 1..=128u8 {
                for d in 1..=128u8 {
                    if s != d {
                        let f = ipv6_frame(addr(s), addr(d), IPPROTO_TCP, &[], 40000, 443);
                        hashes.push(flow_hash(&f));
                        ports.push(source_port(&f, None, r));
                    }
                }
            }
            let n = hashes.len();
            hashes.sort_unstable();
            hashes.dedup();
            // 16256 random 32-bit values repeat about 0.03 times.
            assert!(
                n - hashes.len() <= 2,
                "{name}: {} repeats in {n}",
                n - hashes.len()
            );
            let x = chi_square(&ports, r, 64);
            assert!(x < 130.0, "{name}: chi-square {x}");
        }
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
        fn fast_path_agrees_on_arbitrary_ip(
            v6 in any::<bool>(),
            first in prop_oneof![Just(0x45u8), Just(0x46), Just(0x60), any::<u8>()],
            proto in prop_oneof![Just(IPPROTO_TCP), Just(IPPROTO_UDP), Just(IPPROTO_SCTP), any::<u8>()],
            frag in prop_oneof![Just(0u16), Just(0x4000), any::<u16>()],
            rest in proptest::collection::vec(any::<u8>(), 0..80),
        ) {
            let mut f = eth(MAC_A, MAC_B, &[], if v6 { ETHERTYPE_IPV6 } else { ETHERTYPE_IPV4 });
            f.push(first);
            f.extend_from_slice(&rest);
            // Protocol / next header and fragment field where they belong.
            let (p_at, frag_at) = if v6 { (20, 0) } else { (23, 20) };
            if f.len() > p_at {
                f[p_at] = proto;
            }
            if frag_at != 0 && f.len() > frag_at + 1 {
                f[frag_at..frag_at + 2].copy_from_slice(&frag.to_be_bytes());
            }
            prop_assert_eq!(flow_hash(&f), FlowKey::extract(&f).mix_hash());
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
