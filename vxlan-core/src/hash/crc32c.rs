//! CRC32C (Castagnoli, reflected polynomial `0x82F6_3B78`).
//!
//! Documented in the parent module.

/// The reflected CRC32C polynomial.
const POLY: u32 = 0x82F6_3B78;

/// Slicing-by-8 tables: `TABLES[0]` is the classic byte table, `TABLES[k][b]`
/// is the CRC of byte `b` followed by `k` zero bytes.
static TABLES: [[u32; 256]; 8] = make_tables();

const fn make_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0usize;
    let mut v = 0u32;
    while i < 256 {
        let mut c = v;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 == 1 { (c >> 1) ^ POLY } else { c >> 1 };
            bit += 1;
        }
        t[0][i] = c;
        i += 1;
        v += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][low_byte(prev)];
            i += 1;
        }
        k += 1;
    }
    t
}

/// Bytes per lane in the three-lane loop of [`crc32c_hw`].
#[cfg(target_arch = "x86_64")]
const LANE: usize = 128;

/// `SHIFT[0]` advances a raw CRC state over `LANE` zero bytes, `SHIFT[1]`
/// over `2 * LANE`: `shift(s) = t[0][s.byte0] ^ t[1][s.byte1] ^ ...`, which
/// holds because the CRC of zeros is linear in the starting state. Used to
/// join the three lanes of [`crc32c_hw`] (8 KiB).
#[cfg(target_arch = "x86_64")]
static SHIFT: [[[u32; 256]; 4]; 2] = [make_shift(LANE), make_shift(2 * LANE)];

#[cfg(target_arch = "x86_64")]
const fn make_shift(zeros: usize) -> [[u32; 256]; 4] {
    let t0 = make_tables()[0];
    // basis[i]: the state 1 << i after `zeros` zero bytes.
    let mut basis = [0u32; 32];
    let mut i = 0;
    while i < 32 {
        let mut st = 1u32 << i;
        let mut n = 0;
        while n < zeros {
            st = (st >> 8) ^ t0[low_byte(st)];
            n += 1;
        }
        basis[i] = st;
        i += 1;
    }
    let mut t = [[0u32; 256]; 4];
    let mut k = 0;
    while k < 4 {
        let mut v = 1usize;
        while v < 256 {
            let low = v.trailing_zeros() as usize; // < 8
            t[k][v] = t[k][v & (v - 1)] ^ basis[8 * k + low];
            v += 1;
        }
        k += 1;
    }
    t
}

/// Applies a [`SHIFT`] table to a raw CRC state.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn shift(t: &[[u32; 256]; 4], state: u32) -> u32 {
    let [b0, b1, b2, b3] = state.to_le_bytes();
    t[0][usize::from(b0)] ^ t[1][usize::from(b1)] ^ t[2][usize::from(b2)] ^ t[3][usize::from(b3)]
}

/// The least significant byte of `x` as a table index.
#[inline(always)]
const fn low_byte(x: u32) -> usize {
    x.to_le_bytes()[0] as usize
}

/// CRC32C of `data` (initial value `!0`, final XOR `!0`, as iSCSI, SCTP and
/// ext4 use it).
///
/// Uses the SSE4.2 instruction when the crate is compiled for a target that
/// has it, the portable slicing-by-8 tables otherwise.
///
/// ```
/// use vxlan_core::hash::crc32c;
/// assert_eq!(crc32c(b"123456789"), 0xE306_9283);
/// assert_eq!(crc32c(b""), 0);
/// ```
#[inline]
#[must_use]
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c_append(0, data)
}

/// Extends a finished CRC32C `crc` (as returned by [`crc32c`] or an earlier
/// call of this function) over more `data`.
///
/// `crc32c_append(crc32c(a), b) == crc32c(a ++ b)`, and `crc32c_append(0, x)`
/// is `crc32c(x)`.
///
/// ```
/// use vxlan_core::hash::{crc32c, crc32c_append};
/// let whole = crc32c(b"123456789");
/// let parts = crc32c_append(crc32c(b"1234"), b"56789");
/// assert_eq!(whole, parts);
/// ```
#[inline]
#[must_use]
pub fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse4.2"))]
    {
        // SAFETY: `crc32c_hw` needs SSE4.2; this branch is compiled only when
        // the whole crate is built with `target_feature = "sse4.2"`, i.e. for
        // CPUs that have it, so the instruction is always available here.
        unsafe { crc32c_hw(crc, data) }
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse4.2")))]
    {
        crc32c_portable(crc, data)
    }
}

/// The portable slicing-by-8 CRC32C, in the [`crc32c_append`] form: extends a
/// finished CRC `crc` (0 to start) over `data`.
///
/// Always available, whatever the target; equal to [`crc32c_hw`] on every
/// input.
///
/// ```
/// use vxlan_core::hash::crc32c_portable;
/// assert_eq!(crc32c_portable(0, b"123456789"), 0xE306_9283);
/// ```
#[must_use]
pub fn crc32c_portable(crc: u32, data: &[u8]) -> u32 {
    let t = &TABLES;
    let mut c = !crc;
    let mut rest = data;
    while let Some((chunk, tail)) = rest.split_first_chunk::<8>() {
        let [a0, a1, a2, a3] =
            (c ^ u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]])).to_le_bytes();
        c = t[7][usize::from(a0)]
            ^ t[6][usize::from(a1)]
            ^ t[5][usize::from(a2)]
            ^ t[4][usize::from(a3)]
            ^ t[3][usize::from(chunk[4])]
            ^ t[2][usize::from(chunk[5])]
            ^ t[1][usize::from(chunk[6])]
            ^ t[0][usize::from(chunk[7])];
        rest = tail;
    }
    for &b in rest {
        c = (c >> 8) ^ t[0][low_byte(c ^ u32::from(b))];
    }
    !c
}

/// CRC32C with the SSE4.2 `crc32` instruction, in the [`crc32c_append`]
/// form: extends a finished CRC `crc` (0 to start) over `data`.
///
/// Equal to [`crc32c_portable`] on every input.
///
/// # Safety
///
/// The CPU running this must support SSE4.2. Check first, e.g. with
/// `std::is_x86_feature_detected!("sse4.2")`, or only call it from code
/// compiled with `target_feature = "sse4.2"`.
///
/// ```
/// # #[cfg(target_arch = "x86_64")]
/// # {
/// if std::is_x86_feature_detected!("sse4.2") {
///     // SAFETY: SSE4.2 was detected just above.
///     let crc = unsafe { vxlan_core::hash::crc32c_hw(0, b"123456789") };
///     assert_eq!(crc, 0xE306_9283);
/// }
/// # }
/// ```
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
#[must_use]
pub unsafe fn crc32c_hw(crc: u32, data: &[u8]) -> u32 {
    use core::arch::x86_64::{_mm_crc32_u64, _mm_crc32_u8};

    let mut c = u64::from(!crc);
    let mut rest = data;
    // Three independent lanes of `LANE` bytes hide the instruction's
    // 3-cycle latency; the lane states are then joined with `SHIFT`.
    while let Some((block, tail)) = rest.split_first_chunk::<{ 3 * LANE }>() {
        let (mut x, mut y, mut z) = (c, 0u64, 0u64);
        let mut i = 0;
        while i < LANE {
            let wx = le64(block, i);
            let wy = le64(block, LANE + i);
            let wz = le64(block, 2 * LANE + i);
            // `allow`: the intrinsic is a safe call inside this
            // `target_feature` function on Rust >= 1.87 but still needs
            // `unsafe` on the MSRV.
            #[allow(unused_unsafe)]
            // SAFETY: this function is compiled with SSE4.2 enabled and its
            // caller guarantees (per `# Safety`) that the CPU supports it;
            // the intrinsic reads no memory.
            let next = unsafe {
                (
                    _mm_crc32_u64(x, wx),
                    _mm_crc32_u64(y, wy),
                    _mm_crc32_u64(z, wz),
                )
            };
            (x, y, z) = next;
            i += 8;
        }
        // `crc32 r64` zero-extends a 32-bit CRC: the high halves are zero.
        let [x, y, z] = [x, y, z].map(|v| u32::try_from(v).unwrap_or_default());
        c = u64::from(shift(&SHIFT[1], x) ^ shift(&SHIFT[0], y) ^ z);
        rest = tail;
    }
    while let Some((chunk, tail)) = rest.split_first_chunk::<8>() {
        #[allow(unused_unsafe)]
        // SAFETY: as above: SSE4.2 is enabled and guaranteed by the caller;
        // no memory is read.
        let next = unsafe { _mm_crc32_u64(c, u64::from_le_bytes(*chunk)) };
        c = next;
        rest = tail;
    }
    // `crc32 r64` zero-extends a 32-bit CRC: the high half is always zero.
    let mut c32 = u32::try_from(c).unwrap_or_default();
    for &b in rest {
        #[allow(unused_unsafe)]
        // SAFETY: as above: SSE4.2 is enabled and guaranteed by the caller;
        // no memory is read.
        let next = unsafe { _mm_crc32_u8(c32, b) };
        c32 = next;
    }
    !c32
}

/// Little-endian `u64` at offset `at` (`at + 8 <= N`) of a fixed-size array.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn le64<const N: usize>(b: &[u8; N], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// Bit-at-a-time reference, straight from the definition.
    fn crc32c_bitwise(data: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 == 1 { (c >> 1) ^ POLY } else { c >> 1 };
            }
        }
        !c
    }

    #[test]
    fn check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c_portable(0, b"123456789"), 0xE306_9283);
        assert_eq!(crc32c_bitwise(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn known_vectors() {
        // RFC 3720 (iSCSI) B.4 test patterns.
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
        let inc: Vec<u8> = (0u8..32).collect();
        assert_eq!(crc32c(&inc), 0x46DD_794E);
        let dec: Vec<u8> = (0u8..32).rev().collect();
        assert_eq!(crc32c(&dec), 0x113F_DB5C);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn hw_check_value() {
        if std::is_x86_feature_detected!("sse4.2") {
            // SAFETY: SSE4.2 was detected at run time just above.
            let c = unsafe { crc32c_hw(0, b"123456789") };
            assert_eq!(c, 0xE306_9283);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn hw_lane_boundaries() {
        if !std::is_x86_feature_detected!("sse4.2") {
            return;
        }
        let data: Vec<u8> = (0..3000u32)
            .map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()[3])
            .collect();
        for len in [
            0, 1, 7, 8, 9, 383, 384, 385, 391, 392, 767, 768, 769, 1500, 3000,
        ] {
            // Under Miri (slow): up to two whole 3-lane blocks and a tail,
            // and not the bitwise reference (eight steps a byte; the
            // proptest below checks it against the portable CRC).
            if cfg!(miri) && len > 769 {
                continue;
            }
            let d = &data[..len];
            // SAFETY: SSE4.2 was detected at run time above.
            let hw = unsafe { crc32c_hw(0x1234_5678, d) };
            assert_eq!(hw, crc32c_portable(0x1234_5678, d), "len {len}");
            if !cfg!(miri) {
                assert_eq!(crc32c_portable(0, d), crc32c_bitwise(d), "len {len}");
            }
        }
    }

    proptest! {
        #[test]
        fn portable_matches_bitwise(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            prop_assert_eq!(crc32c_portable(0, &data), crc32c_bitwise(&data));
        }

        #[test]
        fn append_is_concatenation(data in proptest::collection::vec(any::<u8>(), 0..300), cut in 0usize..300) {
            let cut = cut.min(data.len());
            let (a, b) = data.split_at(cut);
            prop_assert_eq!(crc32c_append(crc32c(a), b), crc32c(&data));
            prop_assert_eq!(crc32c_portable(crc32c_portable(0, a), b), crc32c_portable(0, &data));
        }

        #[cfg(target_arch = "x86_64")]
        #[test]
        fn hw_matches_portable(data in proptest::collection::vec(any::<u8>(), 0..2000), seed in any::<u32>()) {
            if std::is_x86_feature_detected!("sse4.2") {
                // SAFETY: SSE4.2 was detected at run time just above.
                let hw = unsafe { crc32c_hw(seed, &data) };
                prop_assert_eq!(hw, crc32c_portable(seed, &data));
            }
        }
    }
}
