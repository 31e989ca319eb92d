//! The Internet checksum (RFC 1071): one's-complement sums, pseudo-headers,
//! and incremental update (RFC 1624).
//!
//! ```
//! use vxlan_core::wire::checksum;
//! // The example header from RFC 1071 section 3 sums to 0xddf2.
//! let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
//! assert_eq!(checksum::fold(checksum::sum(&data)), 0xddf2);
//! ```

use core::net::{Ipv4Addr, Ipv6Addr};

use super::IpProtocol;

/// The one's-complement sum of `data` (as big-endian 16-bit words, an odd
/// last byte padded with zero), as a partial sum for [`combine`] and
/// [`fold`].
///
/// The loop adds native-endian 32-bit words into four independent 64-bit
/// accumulators, which cannot overflow for any buffer under 2^32 words and
/// lets the compiler keep several additions in flight (or vectorize); the
/// byte order is fixed once at the end, since the one's-complement sum of
/// byte-swapped words is the byte-swapped sum (RFC 1071 section 2(B)).
#[inline]
pub fn sum(data: &[u8]) -> u64 {
    let mut acc = [0u64; 4];
    let mut chunks = data.chunks_exact(16);
    for c in &mut chunks {
        for (k, a) in acc.iter_mut().enumerate() {
            *a += u64::from(u32::from_ne_bytes([
                c[4 * k],
                c[4 * k + 1],
                c[4 * k + 2],
                c[4 * k + 3],
            ]));
        }
    }
    let mut total = acc[0] + acc[1] + acc[2] + acc[3];
    let mut rest = chunks.remainder();
    while let Some((word, tail)) = rest.split_first_chunk::<2>() {
        total += u64::from(u16::from_ne_bytes(*word));
        rest = tail;
    }
    if let [last] = rest {
        // The pad byte is zero: in native order the last byte sits where a
        // big-endian high byte would after the final swap.
        total += u64::from(u16::from_ne_bytes([*last, 0]));
    }
    let folded = fold(total);
    u64::from(if cfg!(target_endian = "little") {
        folded.swap_bytes()
    } else {
        folded
    })
}

/// Adds two unfolded sums.
#[inline]
pub const fn combine(a: u64, b: u64) -> u64 {
    let (s, carry) = a.overflowing_add(b);
    s + carry as u64
}

/// Folds an accumulator to 16 bits (the one's-complement sum, not yet
/// inverted).
#[inline]
pub const fn fold(mut acc: u64) -> u16 {
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    // After three 16-bit folds the value fits in 16 bits.
    (acc & 0xffff) as u16
}

/// The checksum field value for `data`: the inverted folded sum.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data))
}

/// Sum of the IPv4 pseudo-header (RFC 768).
#[inline]
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol, length: u16) -> u64 {
    u64::from(u32::from(src))
        + u64::from(u32::from(dst))
        + u64::from(protocol.0)
        + u64::from(length)
}

/// Sum of the IPv6 pseudo-header (RFC 8200 section 8.1).
#[inline]
pub fn pseudo_header_v6(
    src: &Ipv6Addr,
    dst: &Ipv6Addr,
    next_header: IpProtocol,
    length: u32,
) -> u64 {
    let s = combine(sum(&src.octets()), sum(&dst.octets()));
    combine(s, u64::from(length) + u64::from(next_header.0))
}

/// Updates a checksum field after a 16-bit word of the covered data changed
/// from `old` to `new`, per RFC 1624 equation 3: `HC' = ~(~HC + ~m + m')`.
///
/// ```
/// use vxlan_core::wire::checksum;
/// let mut data = [0x45u8, 0x00, 0x00, 0x54, 0x12, 0x34, 0x00, 0x00];
/// let before = checksum::checksum(&data);
/// data[2..4].copy_from_slice(&0x0100u16.to_be_bytes());
/// let after = checksum::update16(before, 0x0054, 0x0100);
/// assert_eq!(after, checksum::checksum(&data));
/// ```
#[inline]
pub const fn update16(check: u16, old: u16, new: u16) -> u16 {
    let acc = (!check) as u64 + (!old) as u64 + new as u64;
    !fold(acc)
}

/// Updates a checksum field after a 32-bit word changed (two 16-bit words).
#[inline]
pub const fn update32(check: u16, old: u32, new: u32) -> u16 {
    let acc = (!check) as u64
        + (!(old >> 16) & 0xffff) as u64
        + (!old & 0xffff) as u64
        + (new >> 16) as u64
        + (new & 0xffff) as u64;
    !fold(acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(data: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        for pair in data.chunks(2) {
            let w = if pair.len() == 2 {
                u32::from(u16::from_be_bytes([pair[0], pair[1]]))
            } else {
                u32::from(pair[0]) << 8
            };
            acc += w;
            acc = (acc & 0xffff) + (acc >> 16);
        }
        !u16::try_from(acc & 0xffff).unwrap()
    }

    #[test]
    fn rfc1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn known_ipv4_header() {
        // An IPv4 header whose checksum field (0xb861) is known to be right.
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&hdr), 0);
        let mut zeroed = hdr;
        zeroed[10] = 0;
        zeroed[11] = 0;
        assert_eq!(checksum(&zeroed), 0xb861);
    }

    proptest! {
        #[test]
        fn wide_sum_equals_naive(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(checksum(&data), naive(&data));
        }

        #[test]
        fn incremental_equals_recompute(
            data in proptest::collection::vec(any::<u8>(), 2..64),
            idx in any::<usize>(),
            new in any::<u16>(),
        ) {
            let mut data = data;
            let words = data.len() / 2;
            let at = (idx % words) * 2;
            let before = checksum(&data);
            let old = u16::from_be_bytes([data[at], data[at + 1]]);
            data[at..at + 2].copy_from_slice(&new.to_be_bytes());
            let updated = update16(before, old, new);
            let fresh = checksum(&data);
            // One's complement has two zeros: 0x0000 and 0xffff are the same
            // sum, and RFC 1624 is exact up to that ambiguity.
            prop_assert!(updated == fresh || (updated ^ fresh) == 0xffff && (updated == 0 || fresh == 0));
        }

        #[test]
        fn incremental32_equals_recompute(
            data in proptest::collection::vec(any::<u8>(), 4..64),
            idx in any::<usize>(),
            new in any::<u32>(),
        ) {
            let mut data = data;
            let words = data.len() / 4;
            let at = (idx % words) * 4;
            let before = checksum(&data);
            let old = u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
            data[at..at + 4].copy_from_slice(&new.to_be_bytes());
            let updated = update32(before, old, new);
            let fresh = checksum(&data);
            prop_assert!(updated == fresh || (updated ^ fresh) == 0xffff && (updated == 0 || fresh == 0));
        }
    }
}
