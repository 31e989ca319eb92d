//! The keys the FDB benchmark and its instruction-count driver
//! (`examples/fdb_count.rs`) look up, made the same way in both.

use vxlan_core::wire::MacAddr;

/// Bridge domains the keys are spread over.
pub const BDS: u16 = 16;

/// splitmix64: a small deterministic generator.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits (not an `Iterator`: it never ends).
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A random index below `n`.
    pub fn index(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).unwrap()).unwrap()
    }
}

/// A learnable MAC (unicast, locally administered) and a bridge domain.
pub fn random_key(rng: &mut Rng) -> (u16, MacAddr) {
    let x = rng.next();
    let b = x.to_be_bytes();
    let bd = u16::try_from(x >> 60).unwrap() % BDS;
    (
        bd,
        MacAddr([(b[2] & 0xfc) | 0x02, b[3], b[4], b[5], b[6], b[7]]),
    )
}

/// The key as one word (bridge domain and MAC), hashbrown's key.
pub fn word(bd: u16, mac: MacAddr) -> u64 {
    (u64::from(bd) << 48) | mac.to_u64()
}
