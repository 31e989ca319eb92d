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
/// Words are summed in native byte order and the order is fixed once at
/// the end, since the one's-complement sum of byte-swapped words is the
/// byte-swapped sum (RFC 1071 section 2(B)). On x86-64 the bulk goes
/// through SSE2 (part of the baseline target), AVX2 for 128 bytes and up,
/// or AVX-512 (F, BW and VNNI) for 128 bytes and up, when the CPU has them
/// (checked once at run time); elsewhere through a lane loop the compiler
/// vectorizes.
#[inline]
pub fn sum(data: &[u8]) -> u64 {
    fix_order(fold(sum_native(data)))
}

/// The unfolded one's-complement sum of `data` taken as native-endian
/// 16-bit words (an odd last byte padded with zero): [`sum`] before its
/// fold and byte-order fix. Adding other native-order words to it and
/// folding once gives the sum in native order; its `to_ne_bytes()` are the
/// network-order bytes of the same sum. For callers that fold once over
/// several parts (encapsulation's UDP checksum).
#[inline]
pub fn sum_native(data: &[u8]) -> u64 {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        sum_x86(data, cpu::features)
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        let (total, rest) = sum_lanes(data);
        total + sum_short(rest)
    }
}

/// [`sum_native`] on x86-64 with the CPU features `cpu()` (the detected
/// ones, or a subset in tests, to run every path this CPU has): AVX-512
/// from `AVX512_MIN_LEN` bytes, AVX2 from `AVX2_MIN_LEN`, SSE2 below or
/// when neither is there. Short input does not look at the features.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn sum_x86(data: &[u8], cpu: impl FnOnce() -> cpu::Features) -> u64 {
    if data.len() >= LONG_MIN_LEN {
        return sum_x86_long(data, cpu);
    }
    // SAFETY: `sum_sse2` only needs SSE2, which this build enables for
    // every x86-64 CPU it runs on (the cfg above checks it).
    let (total, rest) = unsafe { sum_sse2(data) };
    total + sum_tail(rest)
}

/// The shortest input that may take a path wider than SSE2.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
const LONG_MIN_LEN: usize = if AVX2_MIN_LEN < AVX512_MIN_LEN {
    AVX2_MIN_LEN
} else {
    AVX512_MIN_LEN
};

/// [`sum_x86`] from `LONG_MIN_LEN` bytes on, out of line (the caller's
/// loop keeps one call and no spills for it): the widest path the CPU
/// has, which sums its own tail.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(never)]
fn sum_x86_long(data: &[u8], cpu: impl FnOnce() -> cpu::Features) -> u64 {
    let cpu = cpu();
    if data.len() >= AVX512_MIN_LEN && cpu.avx512() {
        // SAFETY: `avx512()` is only true when the CPU has AVX-512F, BW
        // and VNNI and the OS saves the ZMM and mask registers: a
        // `Features` comes only from `cpu::detect`, or from `restrict`,
        // which can only turn detected features off.
        unsafe { sum_avx512(data) }
    } else if data.len() >= AVX2_MIN_LEN && cpu.avx2() {
        // SAFETY: `avx2()` is only true when the CPU has AVX2 and the OS
        // saves its registers (a `Features` is detected, or a detected one
        // restricted).
        unsafe { sum_avx2_all(data) }
    } else {
        // SAFETY: `sum_sse2` only needs SSE2, which this build enables for
        // every x86-64 CPU it runs on (the cfg above checks it).
        let (total, rest) = unsafe { sum_sse2(data) };
        total + sum_tail(rest)
    }
}

/// `sum_avx2` with its tail: all of `data`.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "avx2")]
fn sum_avx2_all(data: &[u8]) -> u64 {
    let (total, rest) = sum_avx2(data);
    total + sum_tail(rest)
}

/// The folded native-order sum in network order, widened for [`combine`].
#[inline(always)]
fn fix_order(folded: u16) -> u64 {
    u64::from(if cfg!(target_endian = "little") {
        folded.swap_bytes()
    } else {
        folded
    })
}

/// Bytes per step of the SSE2 loop: four 16-byte vectors in flight.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
const SSE2_STEP: usize = 64;

/// The most steps one SSE2 block sums before its lanes are drained: each
/// step adds at most 65536 in magnitude to each of the sixteen 32-bit
/// lanes, the up to three vectors after the last step add as much again
/// to four of them, and the drain adds the sixteen together, so 1024 steps
/// keep every partial sum within 2^31 (a 64 KiB block: one whole datagram).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
const SSE2_BLOCK_STEPS: usize = 1024;

/// Sums the native-endian 16-bit words of `data` in 16-byte vectors and
/// returns the sum with the fewer than 16 bytes left over.
///
/// SSE2 has no unsigned widening add, but `pmaddwd` (multiply signed
/// 16-bit pairs and add adjacent products into 32 bits) against a vector of
/// ones adds adjacent words in one instruction. Flipping each word's top
/// bit first maps `w` to the signed `w - 32768` exactly, so every pair adds
/// `w0 + w1 - 65536`, and the true sum is the lane total plus 65536 per
/// pair, i.e. per 4 bytes summed: one XOR, one `pmaddwd` and one add per 16
/// bytes, and the bias added once from the length.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
fn sum_sse2(data: &[u8]) -> (u64, &[u8]) {
    use core::arch::x86_64::{
        __m128i, _mm_add_epi32, _mm_cvtsi128_si32, _mm_loadu_si128, _mm_madd_epi16, _mm_set1_epi16,
        _mm_setzero_si128, _mm_shuffle_epi32, _mm_xor_si128,
    };
    const BLOCK: usize = SSE2_STEP * SSE2_BLOCK_STEPS;
    let flip = _mm_set1_epi16(i16::MIN);
    let ones = _mm_set1_epi16(1);
    let load = |v: &[u8; 16]| {
        // SAFETY: `v` is 16 readable bytes; `loadu` has no alignment
        // requirement.
        unsafe { _mm_loadu_si128(v.as_ptr().cast::<__m128i>()) }
    };
    let pairs = |acc: __m128i, v: &[u8; 16]| {
        _mm_add_epi32(acc, _mm_madd_epi16(_mm_xor_si128(load(v), flip), ones))
    };
    // Steps of four vectors, then single vectors, into lanes drained once:
    // `data` is at most one block.
    let block = |data: &[u8]| -> u64 {
        let mut acc = [_mm_setzero_si128(); 4];
        let mut steps = data.chunks_exact(SSE2_STEP);
        for step in &mut steps {
            if let Some(step) = step.first_chunk::<SSE2_STEP>() {
                for (k, a) in acc.iter_mut().enumerate() {
                    if let Some(v) = step[16 * k..].first_chunk::<16>() {
                        *a = pairs(*a, v);
                    }
                }
            }
        }
        let mut rest = steps.remainder();
        while let Some((v, tail)) = rest.split_first_chunk::<16>() {
            acc[1] = pairs(acc[1], v);
            rest = tail;
        }
        let [a, b, c, d] = acc;
        let v = _mm_add_epi32(_mm_add_epi32(a, b), _mm_add_epi32(c, d));
        let v = _mm_add_epi32(v, _mm_shuffle_epi32::<0b01_00_11_10>(v));
        let v = _mm_add_epi32(v, _mm_shuffle_epi32::<0b10_11_00_01>(v));
        unbias(_mm_cvtsi128_si32(v), data.len() - rest.len())
    };
    blocks::<BLOCK>(data, block)
}

/// Runs `block` (a bulk loop for at most `BLOCK` bytes that sums every
/// whole 16 bytes) over `data`, whole blocks first when `data` is longer,
/// which only an input over 64 KiB (more than any datagram) is. Returns
/// the sum and the fewer than 16 bytes left at the end.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn blocks<const BLOCK: usize>(data: &[u8], block: impl Fn(&[u8]) -> u64) -> (u64, &[u8]) {
    let mut total = 0;
    let mut rest = data;
    while rest.len() > BLOCK {
        let Some((head, tail)) = rest.split_at_checked(BLOCK) else {
            break;
        };
        total += block(head);
        rest = tail;
    }
    total += block(rest);
    let left = rest.len() % 16;
    (total, rest.get(rest.len() - left..).unwrap_or_default())
}

/// The unsigned sum of `done` bytes from the `pmaddwd` lane total `lanes`:
/// every 4 bytes (one pair of words) were biased by -65536.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
#[allow(clippy::cast_sign_loss)]
fn unbias(lanes: i32, done: usize) -> u64 {
    // The true sum is non-negative and below 2^32 for a block, so the
    // two's-complement wrap of a negative `lanes` cancels exactly.
    let bias = u64::try_from(done).unwrap_or(0) << 14;
    bias.wrapping_add(i64::from(lanes) as u64)
}

/// Below this length the SSE2 loop is as fast as AVX2 (and skips the
/// feature check).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
const AVX2_MIN_LEN: usize = 128;

/// Bytes per step of the AVX2 loop: four 32-byte vectors in flight.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
const AVX2_STEP: usize = 128;

/// Steps per AVX2 block: each step adds at most 65536 in magnitude to each
/// lane, the up to four vectors after the last step (three of 32 bytes, one
/// of 16) add a little more, and the drain adds the 32 lanes together, so
/// 512 steps keep every partial sum within 2^31.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
const AVX2_BLOCK_STEPS: usize = 512;

/// The `sum_sse2` method on 32-byte vectors, for CPUs that have AVX2
/// (chosen at run time: the build targets baseline x86-64). Returns the
/// sum with the fewer than 16 bytes left over.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "avx2")]
fn sum_avx2(data: &[u8]) -> (u64, &[u8]) {
    use core::arch::x86_64::{
        __m128i, __m256i, _mm256_add_epi32, _mm256_castsi256_si128, _mm256_extracti128_si256,
        _mm256_loadu_si256, _mm256_madd_epi16, _mm256_set1_epi16, _mm256_setzero_si256,
        _mm256_xor_si256, _mm_add_epi32, _mm_cvtsi128_si32, _mm_loadu_si128, _mm_madd_epi16,
        _mm_set1_epi16, _mm_setzero_si128, _mm_shuffle_epi32, _mm_xor_si128,
    };
    const BLOCK: usize = AVX2_STEP * AVX2_BLOCK_STEPS;
    let flip = _mm256_set1_epi16(i16::MIN);
    let ones = _mm256_set1_epi16(1);
    let load = |v: &[u8; 32]| {
        // SAFETY: `v` is 32 readable bytes; `loadu` has no alignment
        // requirement.
        unsafe { _mm256_loadu_si256(v.as_ptr().cast::<__m256i>()) }
    };
    let pairs = |acc: __m256i, v: &[u8; 32]| {
        _mm256_add_epi32(
            acc,
            _mm256_madd_epi16(_mm256_xor_si256(load(v), flip), ones),
        )
    };
    let block = |data: &[u8]| -> u64 {
        let mut acc = [_mm256_setzero_si256(); 4];
        let mut steps = data.chunks_exact(AVX2_STEP);
        for step in &mut steps {
            if let Some(step) = step.first_chunk::<AVX2_STEP>() {
                for (k, a) in acc.iter_mut().enumerate() {
                    if let Some(v) = step[32 * k..].first_chunk::<32>() {
                        *a = pairs(*a, v);
                    }
                }
            }
        }
        let mut rest = steps.remainder();
        while let Some((v, tail)) = rest.split_first_chunk::<32>() {
            acc[1] = pairs(acc[1], v);
            rest = tail;
        }
        // One 16-byte vector for what is left of 16 bytes or more.
        let mut half = _mm_setzero_si128();
        if let Some((v, tail)) = rest.split_first_chunk::<16>() {
            // SAFETY: `v` is 16 readable bytes; `loadu` has no alignment
            // requirement.
            let x = unsafe { _mm_loadu_si128(v.as_ptr().cast::<__m128i>()) };
            half = _mm_madd_epi16(
                _mm_xor_si128(x, _mm_set1_epi16(i16::MIN)),
                _mm_set1_epi16(1),
            );
            rest = tail;
        }
        let [a, b, c, d] = acc;
        let v = _mm256_add_epi32(_mm256_add_epi32(a, b), _mm256_add_epi32(c, d));
        let v = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        let v = _mm_add_epi32(v, half);
        let v = _mm_add_epi32(v, _mm_shuffle_epi32::<0b01_00_11_10>(v));
        let v = _mm_add_epi32(v, _mm_shuffle_epi32::<0b10_11_00_01>(v));
        unbias(_mm_cvtsi128_si32(v), data.len() - rest.len())
    };
    blocks::<BLOCK>(data, block)
}

/// From this length on the AVX-512 path runs when the CPU has it. Below
/// it, reducing sixteen lanes costs more than the SSE2 loop saves (in a
/// tight loop here: 64 and 80 bytes slower than SSE2, 128 and 200 bytes
/// faster than AVX2).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
const AVX512_MIN_LEN: usize = 128;

/// Bytes per AVX-512 block: the true sum of a block is below 2^31 (32768
/// words of at most 65535), so it is exact modulo 2^32, which is all the
/// lanes keep.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
const AVX512_BLOCK: usize = 65536;

/// Sums all of `data` in 64-byte vectors, for CPUs with AVX-512F, BW and
/// VNNI (chosen at run time).
///
/// Per vector: one XOR that flips each word's top bit (so the signed word
/// is `w - 32768` exactly, as in `sum_sse2`) and one `vpdpwssd` against a
/// vector of ones, which multiplies adjacent signed words by 1, adds both
/// products and accumulates into the 32-bit lane in the same instruction:
/// two instructions per 64 bytes where AVX2 takes three per 32. Every
/// vector is biased by -32768 per word, 2^20 in all, added back once from
/// the vector count. The last, partial vector is a masked load, which
/// reads only the bytes that exist and fills the rest with zeros; a zero
/// word adds `-32768` to the lanes and `32768` to the bias, nothing in
/// all, and an odd last byte becomes the low byte of a word with a zero
/// high byte, as the zero pad wants. So no scalar tail is left.
///
/// The lanes wrap freely: their total is taken modulo 2^32, where the
/// block's true sum (below 2^31) is exact.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn sum_avx512(data: &[u8]) -> u64 {
    use core::arch::x86_64::{
        __m512i, _mm512_add_epi32, _mm512_dpwssd_epi32, _mm512_loadu_si512,
        _mm512_maskz_loadu_epi8, _mm512_reduce_add_epi32, _mm512_set1_epi16, _mm512_setzero_si512,
        _mm512_xor_si512,
    };
    let flip = _mm512_set1_epi16(i16::MIN);
    let ones = _mm512_set1_epi16(1);
    let load = |v: &[u8; 64]| {
        // SAFETY: `v` is 64 readable bytes; `loadu` has no alignment
        // requirement.
        unsafe { _mm512_loadu_si512(v.as_ptr().cast::<__m512i>()) }
    };
    let add = |acc: __m512i, x: __m512i| _mm512_dpwssd_epi32(acc, _mm512_xor_si512(x, flip), ones);
    let mut total = 0u64;
    for block in data.chunks(AVX512_BLOCK) {
        // Four accumulators, so that four `vpdpwssd` (latency 4 to 5
        // cycles) are in flight.
        let mut acc = [_mm512_setzero_si512(); 4];
        let mut steps = block.chunks_exact(256);
        for step in &mut steps {
            if let Some(step) = step.first_chunk::<256>() {
                for (k, a) in acc.iter_mut().enumerate() {
                    if let Some(v) = step[64 * k..].first_chunk::<64>() {
                        *a = add(*a, load(v));
                    }
                }
            }
        }
        let mut rest = steps.remainder();
        let mut k = 0;
        while let Some((v, tail)) = rest.split_first_chunk::<64>() {
            acc[k] = add(acc[k], load(v));
            k += 1;
            rest = tail;
        }
        if !rest.is_empty() {
            // `rest` has 1 to 63 bytes: mask in that many low bits.
            let mask = u64::MAX >> (64 - rest.len());
            // SAFETY: the mask selects exactly `rest.len()` bytes from its
            // start, all readable; masked-off bytes are neither read nor
            // able to fault, and come back as zeros.
            let x = unsafe { _mm512_maskz_loadu_epi8(mask, rest.as_ptr().cast::<i8>()) };
            acc[3] = add(acc[3], x);
        }
        let [a, b, c, d] = acc;
        let lanes = _mm512_reduce_add_epi32(_mm512_add_epi32(
            _mm512_add_epi32(a, b),
            _mm512_add_epi32(c, d),
        ));
        // 2^20 per vector, partial ones included; at most 1024 vectors.
        let bias = u32::try_from(block.len().div_ceil(64) << 20).unwrap_or(0);
        #[allow(clippy::cast_sign_loss)] // The bits, modulo 2^32.
        let sum = bias.wrapping_add(lanes as u32);
        total += u64::from(sum);
    }
    total
}

/// Run-time detection of AVX2 and AVX-512 without `std`: CPUID for the
/// CPU, XGETBV for the OS (it must save the YMM, and for AVX-512 the ZMM
/// and mask, registers), the answer cached.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod cpu {
    use core::sync::atomic::{AtomicU8, Ordering};

    /// The vector extensions the checksum can use. The fields are private
    /// to this module, so a `Features` outside it is what [`detect`] found
    /// or a [`restrict`](Features::restrict)ion of that: a `true` here is
    /// what the `unsafe` calls of the wider paths rely on.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(super) struct Features {
        /// AVX2, with YMM state saved by the OS.
        avx2: bool,
        /// AVX-512F, AVX-512BW and AVX-512 VNNI, with ZMM and mask state
        /// saved by the OS.
        avx512: bool,
    }

    impl Features {
        /// AVX2 is there.
        #[inline(always)]
        pub(super) fn avx2(self) -> bool {
            self.avx2
        }

        /// AVX-512F, BW and VNNI are there.
        #[inline(always)]
        pub(super) fn avx512(self) -> bool {
            self.avx512
        }

        /// These features with some turned off (a feature is kept only
        /// when it is both here and asked for), so tests can run every
        /// narrower path on a CPU that has the wider ones.
        #[cfg(test)]
        pub(super) fn restrict(self, avx2: bool, avx512: bool) -> Features {
            Features {
                avx2: self.avx2 && avx2,
                avx512: self.avx512 && avx512,
            }
        }
    }

    const CHECKED: u8 = 1;
    const AVX2: u8 = 2;
    const AVX512: u8 = 4;

    /// 0: not checked yet; otherwise `CHECKED` and the feature bits. Every
    /// thread computes the same answer, so a race only repeats the check.
    static STATE: AtomicU8 = AtomicU8::new(0);

    /// The features this CPU and OS have.
    #[inline(always)]
    pub(super) fn features() -> Features {
        let mut s = STATE.load(Ordering::Relaxed);
        if s == 0 {
            s = detect_and_cache();
        }
        Features {
            avx2: s & AVX2 != 0,
            avx512: s & AVX512 != 0,
        }
    }

    #[cold]
    fn detect_and_cache() -> u8 {
        let f = detect();
        let s = CHECKED | if f.avx2 { AVX2 } else { 0 } | if f.avx512 { AVX512 } else { 0 };
        STATE.store(s, Ordering::Relaxed);
        s
    }

    /// Under Miri: the features the build enables, as `std`'s detection
    /// reports there. Miri runs no inline assembly (CPUID), and it only
    /// lets code call a `target_feature` function whose features the build
    /// enables, so these are exactly the paths it can check (build with
    /// `-C target-feature=+avx2` and so on to check the wider ones).
    #[cfg(miri)]
    pub(super) fn detect() -> Features {
        Features {
            avx2: cfg!(target_feature = "avx2"),
            avx512: cfg!(all(
                target_feature = "avx512f",
                target_feature = "avx512bw",
                target_feature = "avx512vnni"
            )),
        }
    }

    #[cfg(not(miri))]
    pub(super) fn detect() -> Features {
        use core::arch::x86_64::{__cpuid, __cpuid_count};
        const NONE: Features = Features {
            avx2: false,
            avx512: false,
        };
        const OSXSAVE: u32 = 1 << 27;
        const AVX: u32 = 1 << 28;
        // CPUID leaf 7, EBX and ECX.
        const AVX2: u32 = 1 << 5;
        const AVX512F: u32 = 1 << 16;
        const AVX512BW: u32 = 1 << 30;
        const AVX512VNNI: u32 = 1 << 11;
        // XCR0: SSE and AVX state; opmask, upper ZMM0-15 and ZMM16-31.
        const XMM_YMM_STATE: u64 = 0b110;
        const ZMM_STATE: u64 = 0b1110_0000;
        // CPUID exists on every x86-64 CPU.
        if __cpuid(0).eax < 7 {
            return NONE;
        }
        let leaf1 = __cpuid(1);
        if leaf1.ecx & (OSXSAVE | AVX) != OSXSAVE | AVX {
            return NONE;
        }
        // SAFETY: OSXSAVE set means the OS enabled XGETBV, and XCR0 (index
        // 0) always exists then.
        let xcr0 = unsafe { xgetbv0() };
        if xcr0 & XMM_YMM_STATE != XMM_YMM_STATE {
            return NONE;
        }
        let leaf7 = __cpuid_count(7, 0);
        let avx512_bits = AVX512F | AVX512BW;
        Features {
            avx2: leaf7.ebx & AVX2 != 0,
            avx512: xcr0 & ZMM_STATE == ZMM_STATE
                && leaf7.ebx & avx512_bits == avx512_bits
                && leaf7.ecx & AVX512VNNI != 0,
        }
    }

    /// # Safety
    /// The CPU reports OSXSAVE.
    #[cfg(not(miri))]
    #[target_feature(enable = "xsave")]
    unsafe fn xgetbv0() -> u64 {
        // SAFETY: per this function's contract, XGETBV is enabled; XCR0
        // exists whenever it is.
        unsafe { core::arch::x86_64::_xgetbv(0) }
    }
}

/// The portable bulk loop: the native-endian 16-bit words of each 32-byte
/// step go into sixteen independent 32-bit lanes (a shape compilers
/// vectorize). A lane gains at most `0xffff` per step, so blocks of 65536
/// steps cannot overflow. Returns the sum and the fewer than 32 bytes left.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
fn sum_lanes(data: &[u8]) -> (u64, &[u8]) {
    const STEP: usize = 32;
    const BLOCK: usize = STEP * 65536;
    let mut total = 0u64;
    let mut rest = data;
    while rest.len() >= STEP {
        let (block, tail) = rest.split_at(rest.len().min(BLOCK));
        let mut steps = block.chunks_exact(STEP);
        let mut lanes = [0u32; STEP / 2];
        for step in &mut steps {
            let Ok(step) = <&[u8; STEP]>::try_from(step) else {
                continue;
            };
            for (k, lane) in lanes.iter_mut().enumerate() {
                *lane += u32::from(u16::from_ne_bytes([step[2 * k], step[2 * k + 1]]));
            }
        }
        total += lanes.iter().map(|&l| u64::from(l)).sum::<u64>();
        // A full block is a whole number of steps.
        rest = if tail.is_empty() {
            steps.remainder()
        } else {
            tail
        };
    }
    (total, rest)
}

/// Sums a short tail (native-endian words) with at most one load of each
/// width; any length is correct, up to 31 bytes (what `sum_lanes` leaves)
/// is what it is meant for.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
#[inline(always)]
fn sum_short(data: &[u8]) -> u64 {
    let halves = |v: u64| (v & 0xffff_ffff) + (v >> 32);
    let mut total = 0u64;
    let mut rest = data;
    while let Some((w, tail)) = rest.split_first_chunk::<8>() {
        total += halves(u64::from_ne_bytes(*w));
        rest = tail;
    }
    if let Some((w, tail)) = rest.split_first_chunk::<4>() {
        total += u64::from(u32::from_ne_bytes(*w));
        rest = tail;
    }
    if let Some((w, tail)) = rest.split_first_chunk::<2>() {
        total += u64::from(u16::from_ne_bytes(*w));
        rest = tail;
    }
    if let [last] = rest {
        // The pad byte is zero: in native order the last byte sits where a
        // big-endian high byte would after the final swap.
        total += u64::from(u16::from_ne_bytes([*last, 0]));
    }
    total
}

/// Sums the fewer than 16 bytes the x86-64 vector loops leave (native-endian
/// words, an odd last byte padded with zero), one load of each width, no
/// loop. Longer input is not summed past its first 15 bytes: callers pass
/// only such tails.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn sum_tail(data: &[u8]) -> u64 {
    let mut total = 0u64;
    let mut rest = data;
    if let Some((w, tail)) = rest.split_first_chunk::<8>() {
        let v = u64::from_ne_bytes(*w);
        total += (v & 0xffff_ffff) + (v >> 32);
        rest = tail;
    }
    if let Some((w, tail)) = rest.split_first_chunk::<4>() {
        total += u64::from(u32::from_ne_bytes(*w));
        rest = tail;
    }
    if let Some((w, tail)) = rest.split_first_chunk::<2>() {
        total += u64::from(u16::from_ne_bytes(*w));
        rest = tail;
    }
    if let Some(&last) = rest.first() {
        total += u64::from(u16::from_ne_bytes([last, 0]));
    }
    total
}

/// Adds two unfolded sums.
#[inline]
pub const fn combine(a: u64, b: u64) -> u64 {
    let (s, carry) = a.overflowing_add(b);
    s + carry as u64
}

/// Folds an accumulator to 16 bits (the one's-complement sum, not yet
/// inverted): two end-around-carry additions (64 to 32 bits, 32 to 16),
/// which compile to add-with-carry.
#[inline]
// The truncating casts take the low halves on purpose; the high halves are
// added back.
#[allow(clippy::cast_possible_truncation)]
pub const fn fold(acc: u64) -> u16 {
    let (s, carry) = (acc as u32).overflowing_add((acc >> 32) as u32);
    // With a carry out, `s` is at most 0xffff_fffe: adding it back cannot
    // overflow again.
    let s = s + carry as u32;
    let (t, carry) = (s as u16).overflowing_add((s >> 16) as u16);
    t + carry as u16
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
    // The two addresses as four native-endian 64-bit words (each split in
    // halves so nothing overflows), put in network order once.
    let halves = |v: u64| (v & 0xffff_ffff) + (v >> 32);
    let words = |a: &Ipv6Addr| {
        let o = a.octets();
        let (hi, lo) = o.split_at(8);
        let w = |h: &[u8]| halves(u64::from_ne_bytes(h.try_into().unwrap_or([0; 8])));
        w(hi) + w(lo)
    };
    let addrs = fix_order(fold(words(src) + words(dst)));
    combine(addrs, u64::from(length) + u64::from(next_header.0))
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

    /// The checksum through each x86-64 bulk path this CPU can run, each
    /// called directly, and through the dispatcher with every subset of
    /// the detected features (so the fallbacks a CPU without AVX-512 or
    /// AVX2 takes run here too).
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    fn x86_checksums(data: &[u8]) -> std::vec::Vec<u16> {
        let finish = |(bulk, rest): (u64, &[u8])| {
            assert!(rest.len() < 16, "{} bytes left", rest.len());
            !fold(fix_order(fold(bulk + sum_tail(rest))))
        };
        let cpu = cpu::features();
        // SAFETY: SSE2 is enabled for this build.
        let mut out = std::vec![finish(unsafe { sum_sse2(data) })];
        if cpu.avx2() {
            // SAFETY: just checked.
            out.push(finish(unsafe { sum_avx2(data) }));
        }
        if cpu.avx512() {
            // SAFETY: just checked.
            out.push(!fold(fix_order(fold(unsafe { sum_avx512(data) }))));
        }
        for avx2 in [false, true] {
            for avx512 in [false, true] {
                let f = cpu.restrict(avx2, avx512);
                out.push(!fold(fix_order(fold(sum_x86(data, || f)))));
            }
        }
        out
    }

    /// The checksum through the portable bulk loop (what targets without
    /// SSE2 run), so it is tested here too.
    fn portable_checksum(data: &[u8]) -> u16 {
        let (bulk, rest) = sum_lanes(data);
        !fold(fix_order(fold(bulk + sum_short(rest))))
    }

    #[test]
    fn fold_edges() {
        for (acc, want) in [
            (0u64, 0u16),
            (0xffff, 0xffff),
            (0x1_0000, 1),
            (0xffff_ffff, 0xffff),
            (0x1_0000_0000, 1),
            (u64::MAX, 0xffff),
            (0xffff_0000_ffff_0000, 0xffff),
            (0x8000_0000_8000_0000, 1),
        ] {
            assert_eq!(fold(acc), want, "{acc:#x}");
        }
    }

    /// The IPv6 pseudo-header sum equals the plain sum of its bytes laid
    /// out as RFC 8200 section 8.1 draws them.
    #[test]
    fn pseudo_header_v6_equals_laid_out_bytes() {
        let cases = [
            ("2001:db8::1", "2001:db8::2", 17u8, 1234u32),
            (
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                "::",
                58,
                0xffff_ffff,
            ),
            ("fe80::1:ffff:0:8000", "ff02::1:ff00:1", 6, 70000),
        ];
        for (s, d, nh, len) in cases {
            let (s, d): (Ipv6Addr, Ipv6Addr) = (s.parse().unwrap(), d.parse().unwrap());
            let mut bytes = std::vec::Vec::new();
            bytes.extend_from_slice(&s.octets());
            bytes.extend_from_slice(&d.octets());
            bytes.extend_from_slice(&len.to_be_bytes());
            bytes.extend_from_slice(&[0, 0, 0, nh]);
            assert_eq!(
                fold(pseudo_header_v6(&s, &d, IpProtocol(nh), len)),
                !naive(&bytes),
                "{s} {d}"
            );
        }
    }

    #[test]
    fn rfc1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn every_short_length_and_offset() {
        let bytes: std::vec::Vec<u8> = (0u8..200)
            .map(|i| i.wrapping_mul(151).wrapping_add(7))
            .collect();
        // Under Miri (slow): two offsets, still every length.
        let starts = if cfg!(miri) { 0..2 } else { 0..8 };
        for start in starts {
            for end in start..bytes.len() {
                assert_eq!(
                    checksum(&bytes[start..end]),
                    naive(&bytes[start..end]),
                    "{start}..{end}"
                );
            }
        }
    }

    /// Longer than one block of either bulk loop, all ones and all zeros
    /// (the extremes of the biased SSE2 lanes): a lane would overflow if a
    /// block were too long.
    #[test]
    // Each length is more than a 64 KiB block through every path: minutes
    // per length under Miri. The unsafe loads take fixed-size arrays cut
    // by safe code, the same within a block as across its end, and
    // `every_length_through_every_path` runs them under Miri.
    #[cfg_attr(miri, ignore = "64 KiB+ per path: too slow under Miri")]
    fn more_than_one_block_of_extremes() {
        for len in [
            65536,
            65536 + 15,
            65536 + 64 * 3 + 5,
            65536 + 127,
            2 * 65536 + 16 * 3 + 15,
            2 * 32 * 65536 + 3 * 32 + 5,
        ] {
            for byte in [0xffu8, 0x00, 0x80, 0x7f] {
                let data = std::vec![byte; len];
                assert_eq!(checksum(&data), naive(&data), "{len} x {byte:#x}");
                assert_eq!(portable_checksum(&data), naive(&data));
                #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
                for c in x86_checksums(&data) {
                    assert_eq!(c, naive(&data), "{len} x {byte:#x}");
                }
            }
        }
    }

    /// Every length up to 700 bytes at several alignments, through every
    /// path this CPU has (the AVX-512 path's masked tail takes every
    /// remainder 0 to 63 here, and each number of whole vectors after the
    /// 256-byte steps).
    #[test]
    fn every_length_through_every_path() {
        let bytes: std::vec::Vec<u8> = (0u32..800)
            .map(|i| u8::try_from(i.wrapping_mul(2_654_435_761) >> 24).unwrap())
            .collect();
        // Under Miri (slow): one odd offset, and every seventh length up
        // to 336 (7 is prime to the vector sizes, so the tails take 49
        // different remainders of each; 336 is past the AVX-512 path's
        // 256-byte step plus a whole vector and a partial one).
        let (starts, lens, step): (&[usize], usize, usize) = if cfg!(miri) {
            (&[1], 336, 7)
        } else {
            (&[0, 1, 2, 3, 31, 63], 700, 1)
        };
        for &start in starts {
            for end in (start..=start + lens).step_by(step) {
                let d = &bytes[start..end];
                let want = naive(d);
                assert_eq!(checksum(d), want, "{start}..{end}");
                #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
                for c in x86_checksums(d) {
                    assert_eq!(c, want, "{start}..{end}");
                }
            }
        }
    }

    /// The cached detection agrees with `std`'s.
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    #[test]
    fn detection_matches_std() {
        let f = cpu::detect();
        assert_eq!(f.avx2(), std::is_x86_feature_detected!("avx2"));
        assert_eq!(
            f.avx512(),
            std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512bw")
                && std::is_x86_feature_detected!("avx512vnni")
        );
        assert_eq!(cpu::features(), f);
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

        /// Every length and start offset around the step and tail
        /// boundaries, on the vector loops as well as the short tail, at
        /// every alignment within a 64-byte vector.
        #[test]
        fn sum_equals_naive_long(
            data in proptest::collection::vec(any::<u8>(), 0..4096),
            skip in 0usize..64,
        ) {
            let d = &data[skip.min(data.len())..];
            prop_assert_eq!(checksum(d), naive(d));
            prop_assert_eq!(portable_checksum(d), naive(d));
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            for c in x86_checksums(d) {
                prop_assert_eq!(c, naive(d));
            }
        }

        /// The carry-based fold equals repeated 16-bit folding.
        #[test]
        fn fold_equals_repeated_folding(acc in any::<u64>()) {
            let mut slow = acc;
            while slow > 0xffff {
                slow = (slow & 0xffff) + (slow >> 16);
            }
            prop_assert_eq!(u64::from(fold(acc)), slow);
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
