//! A lock-free IP-to-MAC table per bridge domain, for ARP and ND
//! suppression.
//!
//! Packet cores snoop bindings (from ARP, gratuitous ARP and neighbour
//! advertisements) and look them up to answer requests locally; a control
//! plane (EVPN type-2 routes with IP) installs them too. Storage is the
//! caller's, capacity fixed, nothing allocates or blocks.
//!
//! # Layout and protocol
//!
//! Open addressing with linear probing over [`NeighSlot`]s of four words:
//! `tag` (a non-zero hash of the key, 0 = empty), the IP (IPv4 mapped into
//! IPv6) in two words, and `mac` (READY bit, bridge domain, MAC). A key is written once and never changes:
//!
//! * insert: CAS `tag` 0 -> hash (AcqRel; the winner owns the key words),
//!   store the key words (Relaxed), then Release-store `mac | READY`. A
//!   reader that Acquire-loads a READY `mac` therefore sees the key words
//!   the inserter wrote before it;
//! * update: Release-store a new `mac | READY` (one word: a reader sees the
//!   old MAC or the new, never a mix);
//! * lookup: walk from the home slot; for a matching `tag`, Acquire-load
//!   `mac`; not READY means "being inserted" (treated as absent); READY
//!   means the key words are final and compared in full.
//!
//! There is no deletion (a binding is overwritten when the host moves);
//! [`NeighTable::clear`] is for a control plane that stops all cores first.
//!
//! ```
//! use vxlan_core::neigh::{NeighSlot, NeighTable};
//! use vxlan_core::wire::MacAddr;
//!
//! let slots: Vec<NeighSlot> = (0..64).map(|_| NeighSlot::new()).collect();
//! let table = NeighTable::new(&slots).unwrap();
//! let ip = "10.0.0.7".parse().unwrap();
//! assert!(table.insert(3, ip, MacAddr([2, 0, 0, 0, 0, 7])));
//! assert_eq!(table.lookup(3, ip), Some(MacAddr([2, 0, 0, 0, 0, 7])));
//! assert_eq!(table.lookup(4, ip), None); // another bridge domain
//! ```

use core::net::{IpAddr, Ipv6Addr};

use crate::sync::{AtomicU64, Ordering};
use crate::wire::MacAddr;

const READY: u64 = 1 << 63;
/// How far a probe walks before giving up (insert: table full).
const MAX_PROBE: usize = 64;

/// One slot: 32 bytes. All-zero is empty.
#[derive(Debug)]
#[repr(C, align(32))]
pub struct NeighSlot {
    /// Non-zero key hash once claimed; never changes after.
    tag: AtomicU64,
    /// The IP's first eight bytes (IPv4 mapped into IPv6), written once
    /// before `mac` is first published.
    key_hi: AtomicU64,
    /// The IP's last eight bytes, written once.
    key_lo: AtomicU64,
    /// `READY | bd << 48 | mac`; 0 until the insert completes. The bridge
    /// domain never changes once published.
    mac: AtomicU64,
}

impl NeighSlot {
    /// An empty slot.
    pub fn new() -> NeighSlot {
        NeighSlot {
            tag: AtomicU64::new(0),
            key_hi: AtomicU64::new(0),
            key_lo: AtomicU64::new(0),
            mac: AtomicU64::new(0),
        }
    }
}

impl Default for NeighSlot {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a table could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighError {
    /// At least 8 slots are needed.
    TooSmall,
}

impl core::fmt::Display for NeighError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("a neighbour table needs at least 8 slots")
    }
}

#[cfg(feature = "std")]
impl std::error::Error for NeighError {}

/// The table, over caller storage.
#[derive(Debug, Clone, Copy)]
pub struct NeighTable<'a> {
    slots: &'a [NeighSlot],
}

/// The key packed into three words: (tag, hi, lo). The IP is held as an
/// IPv6 address (IPv4 mapped) so one table serves ARP and ND.
fn key(bd: u16, ip: IpAddr) -> (u64, u64, u64) {
    let v6 = match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    };
    let o = v6.octets();
    let hi = u64::from_be_bytes([o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]]);
    let lo = u64::from_be_bytes([o[8], o[9], o[10], o[11], o[12], o[13], o[14], o[15]]);
    // The bridge domain folds into the tag and a third compare word.
    let mixed =
        (hi ^ lo.rotate_left(29) ^ (u64::from(bd) << 17)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let tag = (mixed ^ (mixed >> 31)) | 1;
    (tag, hi, lo)
}

/// Bridge domains are 12 bits (as in the FDB); they ride in the value word
/// beside the MAC, so the key words hold the whole IP and two keys never
/// compare equal across bridge domains.
const BD_SHIFT: u32 = 48;
const BD_MASK: u64 = 0x0fff;

fn value(bd: u16, mac: MacAddr) -> u64 {
    READY | ((u64::from(bd) & BD_MASK) << BD_SHIFT) | mac.to_u64()
}

fn value_bd(v: u64) -> u16 {
    u16::try_from((v >> BD_SHIFT) & BD_MASK).unwrap_or(u16::MAX)
}

impl<'a> NeighTable<'a> {
    /// A table over `slots` (all empty, e.g. fresh [`NeighSlot::new`]s).
    pub fn new(slots: &'a [NeighSlot]) -> Result<Self, NeighError> {
        if slots.len() < 8 {
            return Err(NeighError::TooSmall);
        }
        Ok(NeighTable { slots })
    }

    fn home(&self, tag: u64) -> usize {
        // Multiply-high maps the tag onto any slot count without bias.
        let n = u64::try_from(self.slots.len()).unwrap_or(u64::MAX);
        usize::try_from((u128::from(tag) * u128::from(n)) >> 64).unwrap_or(0)
    }

    /// The MAC bound to `ip` in bridge domain `bd`.
    #[inline]
    pub fn lookup(&self, bd: u16, ip: IpAddr) -> Option<MacAddr> {
        if u64::from(bd) > BD_MASK {
            return None;
        }
        let (tag, hi, lo) = key(bd, ip);
        let mut i = self.home(tag);
        for _ in 0..MAX_PROBE.min(self.slots.len()) {
            let s = &self.slots[i];
            // Relaxed: the tag is only a filter; the Acquire on `mac`
            // below is what orders the key reads after the insert.
            let t = s.tag.load(Ordering::Relaxed);
            if t == 0 {
                return None;
            }
            if t == tag {
                // Acquire pairs with the inserter's (and updaters')
                // Release store: the key words it wrote are visible.
                let m = s.mac.load(Ordering::Acquire);
                if m & READY != 0
                    && value_bd(m) == bd
                    && s.key_hi.load(Ordering::Relaxed) == hi
                    && s.key_lo.load(Ordering::Relaxed) == lo
                {
                    return Some(MacAddr::from_u64(m & 0xffff_ffff_ffff));
                }
            }
            i = if i + 1 == self.slots.len() { 0 } else { i + 1 };
        }
        None
    }

    /// Binds `ip` to `mac` in `bd`, inserting or overwriting. `false` when
    /// no free slot was found within the probe limit (the binding is not
    /// stored; suppression then just does not answer for it).
    pub fn insert(&self, bd: u16, ip: IpAddr, mac: MacAddr) -> bool {
        if u64::from(bd) > BD_MASK {
            return false;
        }
        let (tag, hi, lo) = key(bd, ip);
        let value = value(bd, mac);
        let mut i = self.home(tag);
        for _ in 0..MAX_PROBE.min(self.slots.len()) {
            let s = &self.slots[i];
            let mut t = s.tag.load(Ordering::Acquire);
            if t == 0 {
                // AcqRel: success makes us the only writer of the key words;
                // failure (Acquire) shows the winner's tag.
                match s
                    .tag
                    .compare_exchange(0, tag, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => {
                        s.key_hi.store(hi, Ordering::Relaxed);
                        s.key_lo.store(lo, Ordering::Relaxed);
                        // Release: publishes the key words with the MAC.
                        s.mac.store(value, Ordering::Release);
                        return true;
                    }
                    Err(actual) => t = actual,
                }
            }
            if t == tag {
                let m = s.mac.load(Ordering::Acquire);
                if m & READY == 0 {
                    // Another core is inserting this very slot right now;
                    // it may be the same key. Try the next frame.
                    return false;
                }
                if s.key_hi.load(Ordering::Relaxed) == hi && s.key_lo.load(Ordering::Relaxed) == lo
                {
                    if m != value {
                        s.mac.store(value, Ordering::Release);
                    }
                    return true;
                }
            }
            i = if i + 1 == self.slots.len() { 0 } else { i + 1 };
        }
        false
    }

    /// Number of bindings (a full scan; for dumps and tests).
    pub fn len(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.mac.load(Ordering::Acquire) & READY != 0)
            .count()
    }

    /// True when no binding is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Empties the table. Only safe to call (logically: memory safety is
    /// never at stake) when no core is using it, e.g. at reconfiguration.
    pub fn clear(&self) {
        for s in self.slots {
            s.mac.store(0, Ordering::Relaxed);
            s.key_hi.store(0, Ordering::Relaxed);
            s.key_lo.store(0, Ordering::Relaxed);
            s.tag.store(0, Ordering::Release);
        }
    }
}

/// Maps an IPv6 address back to IPv4 when it is IPv4-mapped.
pub fn unmap(ip: Ipv6Addr) -> IpAddr {
    match ip.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(ip),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn table(n: usize) -> Vec<NeighSlot> {
        (0..n).map(|_| NeighSlot::new()).collect()
    }

    #[test]
    fn insert_lookup_update_v4_v6() {
        let s = table(64);
        let t = NeighTable::new(&s).unwrap();
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let m = |i| MacAddr([2, 0, 0, 0, 0, i]);
        assert!(t.insert(0, v4, m(1)));
        assert!(t.insert(0, v6, m(2)));
        assert!(t.insert(1, v4, m(3)));
        assert_eq!(t.lookup(0, v4), Some(m(1)));
        assert_eq!(t.lookup(0, v6), Some(m(2)));
        assert_eq!(t.lookup(1, v4), Some(m(3)));
        assert_eq!(t.lookup(2, v4), None);
        assert!(t.insert(0, v4, m(9)));
        assert_eq!(t.lookup(0, v4), Some(m(9)));
        assert_eq!(t.len(), 3);
        // ::ffff:10.0.0.1 and 10.0.0.1 are one key.
        assert_eq!(t.lookup(0, "::ffff:10.0.0.1".parse().unwrap()), Some(m(9)));
        assert_eq!(unmap("::ffff:10.0.0.1".parse().unwrap()), v4);
        t.clear();
        assert!(t.is_empty());
        assert!(NeighTable::new(&s[..7]).is_err());
    }

    #[test]
    fn bridge_domains_never_share_a_binding() {
        let s = table(64);
        let t = NeighTable::new(&s).unwrap();
        let m = |i| MacAddr([2, 0, 0, 0, 0, i]);
        for bd in 0..32u16 {
            for host in 0..1u8 {
                let _ = host;
                assert!(t.insert(
                    bd,
                    "2001:db8::1".parse().unwrap(),
                    m(u8::try_from(bd).unwrap())
                ));
            }
        }
        for bd in 0..32u16 {
            assert_eq!(
                t.lookup(bd, "2001:db8::1".parse().unwrap()),
                Some(m(u8::try_from(bd).unwrap()))
            );
        }
        assert_eq!(t.lookup(32, "2001:db8::1".parse().unwrap()), None);
        assert!(!t.insert(4096, "2001:db8::1".parse().unwrap(), m(1)));
    }

    #[test]
    fn fills_up_without_panicking() {
        let s = table(8);
        let t = NeighTable::new(&s).unwrap();
        let stored = (0..20u8)
            .filter(|i| {
                t.insert(
                    0,
                    IpAddr::from([10, 0, 0, *i]),
                    MacAddr([2, 0, 0, 0, 0, *i]),
                )
            })
            .count();
        assert_eq!(stored, 8);
        assert_eq!(t.len(), 8);
        for i in 0..20u8 {
            if let Some(m) = t.lookup(0, IpAddr::from([10, 0, 0, i])) {
                assert_eq!(m, MacAddr([2, 0, 0, 0, 0, i]));
            }
        }
    }

    #[test]
    fn concurrent_inserts_and_lookups_never_tear() {
        let s = table(4096);
        let t = NeighTable::new(&s).unwrap();
        std::thread::scope(|sc| {
            for w in 0..2u8 {
                let t = &t;
                sc.spawn(move || {
                    for round in 0..200u32 {
                        for i in 0..500u16 {
                            let [a, b] = i.to_be_bytes();
                            let ip = IpAddr::from([10, 0, a, b]);
                            // The MAC encodes the IP, so any value read must match it.
                            let mac = MacAddr([2, w, round.to_be_bytes()[3], 0, a, b]);
                            t.insert(1, ip, mac);
                            if let Some(got) = t.lookup(1, ip) {
                                assert_eq!(&got.0[4..], &mac.0[4..], "binding for another IP");
                            }
                        }
                    }
                });
            }
        });
        assert_eq!(t.len(), 500);
    }
}
