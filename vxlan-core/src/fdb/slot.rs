//! The caller-provided storage cells: [`Slot`] (hot, 16 bytes), [`ColdSlot`]
//! (8 bytes, parallel array) and [`BdCounter`] (per bridge domain), plus a
//! small [`CachePadded`].
//!
//! All three are valid when all-zero, so an appliance can hand the FDB
//! zeroed hugepage memory.

use core::ops::Deref;

use crate::sync::{AtomicU32, AtomicU64};

/// One hash-table cell: a key word and a value word, 16-byte aligned so a
/// cell never straddles a cache line (four cells per 64-byte line).
///
/// All-zero is an empty cell. See the [module documentation](super) for the
/// protocol on the two words.
#[repr(C, align(16))]
#[derive(Debug)]
pub struct Slot {
    /// `gen << 60 | bd << 48 | mac`, or empty (key bits 0, any generation)
    /// or `KEY_BLOCKED` (`u64::MAX`). Invariant: changes only EMPTY(g) ->
    /// key(g) (CAS by an inserter), key(g) -> EMPTY(g+1) (the single ager,
    /// only while the value is reserved and the next slot is blocked),
    /// EMPTY(g) <-> BLOCKED (the single ager).
    pub(crate) key: AtomicU64,
    /// Live value (location, tick, kind, frozen), `VAL_RESERVED` (0) or
    /// `VAL_DEAD` (1), each with the generation in bits 60..64.
    /// Invariant: a value of the key word's generation belongs to the key
    /// in `key`; every change of a published value is a CAS, so two writers
    /// never lose each other's transition, and only the trim changes the
    /// generation.
    pub(crate) value: AtomicU64,
}

impl Slot {
    /// An empty slot.
    #[cfg(not(loom))]
    pub const fn new() -> Slot {
        Slot {
            key: AtomicU64::new(0),
            value: AtomicU64::new(0),
        }
    }

    /// An empty slot.
    #[cfg(loom)]
    pub fn new() -> Slot {
        Slot {
            key: AtomicU64::new(0),
            value: AtomicU64::new(0),
        }
    }
}

impl Default for Slot {
    fn default() -> Slot {
        Slot::new()
    }
}

/// Cold per-slot bookkeeping, in an array parallel to the slots: the EVPN
/// MAC-mobility sequence number and the move-dampening window. Read only on
/// moves, control-plane updates and dumps.
#[repr(transparent)]
#[derive(Debug)]
pub struct ColdSlot {
    /// Packed `Cold` with the slot's generation in bits 60..64. Invariant:
    /// meaningful only while the matching slot is live; reset by whoever
    /// holds the slot reserved before it publishes; updated afterwards only
    /// by CASes expecting the generation of the entry they update.
    pub(crate) word: AtomicU64,
}

impl ColdSlot {
    /// A zeroed cold cell.
    #[cfg(not(loom))]
    pub const fn new() -> ColdSlot {
        ColdSlot {
            word: AtomicU64::new(0),
        }
    }

    /// A zeroed cold cell.
    #[cfg(loom)]
    pub fn new() -> ColdSlot {
        ColdSlot {
            word: AtomicU64::new(0),
        }
    }
}

impl Default for ColdSlot {
    fn default() -> ColdSlot {
        ColdSlot::new()
    }
}

/// Per-bridge-domain entry count and MAC limit.
#[derive(Debug)]
pub struct BdCounter {
    /// Live entries in the bridge domain plus in-flight reservations.
    /// Invariant: incremented before an entry is published, decremented
    /// after it stops being live (or when a reservation is abandoned).
    pub(crate) entries: AtomicU32,
    /// The MAC limit for learned entries; 0 means "the configured default".
    pub(crate) limit: AtomicU32,
}

impl BdCounter {
    /// A zeroed counter (no entries, default limit).
    #[cfg(not(loom))]
    pub const fn new() -> BdCounter {
        BdCounter {
            entries: AtomicU32::new(0),
            limit: AtomicU32::new(0),
        }
    }

    /// A zeroed counter (no entries, default limit).
    #[cfg(loom)]
    pub fn new() -> BdCounter {
        BdCounter {
            entries: AtomicU32::new(0),
            limit: AtomicU32::new(0),
        }
    }
}

impl Default for BdCounter {
    fn default() -> BdCounter {
        BdCounter::new()
    }
}

/// Pads and aligns `T` to 128 bytes (two cache lines, because adjacent-line
/// prefetchers pull pairs) so two of them never share a line.
#[repr(align(128))]
#[derive(Debug, Default)]
pub struct CachePadded<T>(pub T);

impl<T> Deref for CachePadded<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_as_documented() {
        assert_eq!(core::mem::size_of::<Slot>(), 16);
        assert_eq!(core::mem::align_of::<Slot>(), 16);
        assert_eq!(core::mem::size_of::<ColdSlot>(), 8);
        assert_eq!(core::mem::size_of::<BdCounter>(), 8);
        assert_eq!(core::mem::align_of::<CachePadded<u8>>(), 128);
    }
}
