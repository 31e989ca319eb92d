//! Bit layouts of the key word, the hot value word and the cold word, and
//! the public value types they encode ([`Location`], [`Kind`], [`Entry`]).
//!
//! Everything here is plain arithmetic on `u64`; no atomics.

use crate::wire::MacAddr;

/// Bits 60..64 of both the key word and the value word: the slot's
/// generation, bumped (modulo 16) each time the ager trims the slot back to
/// empty. Bridge domain (12 bits) and MAC (48 bits) fill bits 0..60 of the
/// key word; the live value fields fill bits 0..60 of the value word.
///
/// Invariant: while a key occupies a slot, the slot's key word and value
/// word carry the same generation, and no other key occupies the slot under
/// that generation until 16 more trims of the slot have happened. A value
/// read with the generation of a key word read before it therefore belongs
/// to that key, and a CAS from such a value cannot succeed once the slot
/// was trimmed and reused (the reused slot's values carry another
/// generation).
pub(crate) const GEN_MASK: u64 = 0xf << 60;
/// One step of the generation.
const GEN_ONE: u64 = 1 << 60;
/// The key bits of a key word (bridge domain and MAC), and the fields of a
/// value word below the generation.
pub(crate) const ID_MASK: u64 = !GEN_MASK;

/// Key word of a slot that never held a key, generation 0 (all-zero
/// memory). A trimmed slot is empty with its bumped generation: any key
/// word whose [`ID_MASK`] bits are zero is empty. No real key has zero key
/// bits because the all-zero MAC is never stored.
pub(crate) const KEY_EMPTY: u64 = 0;
/// Key word of an empty slot the ager has blocked while it trims the slot
/// before it (the ager restores the exact empty word afterwards). No real
/// key word equals it: its key bits are bridge domain 4095 with the
/// broadcast MAC, which is never stored.
pub(crate) const KEY_BLOCKED: u64 = u64::MAX;

/// Value word (below the generation) of a slot whose key is claimed but
/// whose value is not yet published (insertion or revival in progress), and
/// of every empty slot.
pub(crate) const VAL_RESERVED: u64 = 0;
/// Value word (below the generation) of a slot whose key stays but whose
/// entry was removed (deleted, flushed, aged). Only the same key can revive
/// it; only the ager trims it.
pub(crate) const VAL_DEAD: u64 = 1;

/// The generation bits of a key or value word.
#[inline(always)]
pub(crate) fn gen_of(w: u64) -> u64 {
    w & GEN_MASK
}

/// True when key or value words `a` and `b` carry the same generation.
#[inline(always)]
pub(crate) fn same_gen(a: u64, b: u64) -> bool {
    (a ^ b) >> 60 == 0
}

/// The next generation after that of `w` (wrapping after 15).
#[inline(always)]
pub(crate) fn next_gen(w: u64) -> u64 {
    gen_of(w).wrapping_add(GEN_ONE)
}

/// The key bits (bridge domain and MAC) of a key word.
#[inline(always)]
pub(crate) fn key_id(k: u64) -> u64 {
    k & ID_MASK
}

/// True for a key word that ends a probe: empty (any generation) or
/// blocked. Branch-free: `k + 1` has key bits 1 for an empty word and 0 for
/// `KEY_BLOCKED` (the carry leaves the key bits), and at least 2 for a key.
#[inline(always)]
pub(crate) fn ends_probe(k: u64) -> bool {
    k.wrapping_add(1) & ID_MASK <= 1
}

/// True for an empty key word (any generation), not blocked.
#[inline(always)]
pub(crate) fn is_empty_key(k: u64) -> bool {
    k & ID_MASK == 0
}

/// True for a query key (no generation bits) that can name a stored key:
/// not zero (which would match empty slots) and below `ID_MASK` (which
/// would match a blocked slot; anything above has generation bits, from a
/// bridge domain of 4096 or more, and matches nothing).
#[inline(always)]
pub(crate) fn valid_query(key: u64) -> bool {
    key.wrapping_sub(1) < ID_MASK - 1
}

/// True for a dead value word (any generation).
#[inline(always)]
pub(crate) fn is_dead(v: u64) -> bool {
    v & ID_MASK == VAL_DEAD
}

const TICK_SHIFT: u32 = 32;
const KIND_SHIFT: u32 = 56;
const KIND_MASK: u64 = 0b111;
const FROZEN_BIT: u64 = 1 << 59;

/// Ticks are stored in 24 bits; differences are taken modulo 2^24.
pub(crate) const TICK_MASK: u32 = 0x00ff_ffff;
/// The largest tick span (age time, dampening window, hold time) the
/// wrapping 24-bit arithmetic can compare.
pub const MAX_TICK_SPAN: u32 = 1 << 23;

/// Ticks elapsed from the stored 24-bit tick `then` to `now`.
#[inline(always)]
pub(crate) fn elapsed(now: u32, then: u32) -> u32 {
    now.wrapping_sub(then) & TICK_MASK
}

/// Whether learning an entry of `kind` last seen at the stored tick `tick`
/// again at its own location, at `now`, must write a new tick: only
/// learned entries age, and they are refreshed at most once per
/// `refresh_ticks`. The one rule [`Fdb::learn`](super::Fdb::learn) and
/// [`Fdb::is_current`](super::Fdb::is_current) share.
#[inline(always)]
pub(crate) fn refresh_due(kind: Kind, tick: u32, now: u32, refresh_ticks: u32) -> bool {
    kind == Kind::Learned && elapsed(now, tick) >= refresh_ticks
}

/// The key word for (bridge domain, MAC): `bd << 48 | mac`.
#[inline(always)]
pub(crate) fn key_word(bd: u16, mac: MacAddr) -> u64 {
    (u64::from(bd) << 48) | mac.to_u64()
}

/// The bridge domain and MAC of a key word (its generation ignored).
#[inline]
pub(crate) fn split_key(key: u64) -> (u16, MacAddr) {
    let bd = u16::try_from(key_id(key) >> 48).unwrap_or(u16::MAX);
    (bd, MacAddr::from_u64(key))
}

/// Where frames for a MAC go.
///
/// Encoded in 32 bits: bit 31 clear is a local port (bits 0..16) with a VLAN
/// (bits 16..28, 0 meaning untagged); bit 31 set is a remote VTEP index
/// (bits 0..31) into a VTEP table kept by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Location {
    /// A local port, with the VLAN the MAC was seen on (0 = untagged).
    Local {
        /// Port number.
        port: u16,
        /// VLAN id, 0..=4095.
        vlan: u16,
    },
    /// A remote VTEP, by index (0..2^31) into the caller's VTEP table.
    Remote(u32),
}

const REMOTE_BIT: u32 = 1 << 31;

impl Location {
    /// A local port without a VLAN tag.
    pub const fn port(port: u16) -> Location {
        Location::Local { port, vlan: 0 }
    }

    /// The 32-bit code, or `None` for a VLAN above 4095 or a VTEP index at
    /// or above 2^31.
    #[inline]
    pub const fn encode(self) -> Option<u32> {
        match self {
            Location::Local { port, vlan } => {
                if vlan > 0x0fff {
                    None
                } else {
                    Some(((vlan as u32) << 16) | port as u32)
                }
            }
            Location::Remote(vtep) => {
                if vtep & REMOTE_BIT != 0 {
                    None
                } else {
                    Some(REMOTE_BIT | vtep)
                }
            }
        }
    }

    /// The inverse of [`Location::encode`].
    #[inline]
    pub const fn decode(code: u32) -> Location {
        if code & REMOTE_BIT != 0 {
            Location::Remote(code & !REMOTE_BIT)
        } else {
            Location::Local {
                port: (code & 0xffff) as u16,
                vlan: ((code >> 16) & 0x0fff) as u16,
            }
        }
    }
}

/// Who installed an entry, which decides whether it ages and moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// Learned from a frame's source MAC: ages, moves, is dampened.
    Learned = 1,
    /// Configured: never ages, never moves by learning.
    Static = 2,
    /// Sticky: like static (never ages, never moves by learning); kept as
    /// its own kind so dumps can tell them apart.
    Sticky = 3,
    /// Installed by a control plane (EVPN) with a MAC-mobility sequence
    /// number: never ages; learning may move it (a local move).
    External = 4,
}

impl Kind {
    #[inline(always)]
    const fn from_bits(bits: u64) -> Option<Kind> {
        match bits {
            1 => Some(Kind::Learned),
            2 => Some(Kind::Static),
            3 => Some(Kind::Sticky),
            4 => Some(Kind::External),
            _ => None,
        }
    }

    /// True for [`Kind::Static`] and [`Kind::Sticky`]: learning never moves
    /// these.
    #[inline]
    pub const fn is_pinned(self) -> bool {
        matches!(self, Kind::Static | Kind::Sticky)
    }

    /// The bit of this kind in a [`KindSet`].
    #[inline]
    pub const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of [`Kind`]s, for flush filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KindSet(pub u8);

impl KindSet {
    /// Learned and external entries: what a flush removes by default.
    pub const DYNAMIC: KindSet = KindSet(Kind::Learned.bit() | Kind::External.bit());
    /// Every kind.
    pub const ALL: KindSet = KindSet(
        Kind::Learned.bit() | Kind::Static.bit() | Kind::Sticky.bit() | Kind::External.bit(),
    );

    /// True when `kind` is in the set.
    #[inline]
    pub const fn contains(self, kind: Kind) -> bool {
        self.0 & kind.bit() != 0
    }
}

/// What a lookup returns: one consistent snapshot of an entry's value word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Entry {
    /// Where frames for the MAC go.
    pub location: Location,
    /// Who installed it.
    pub kind: Kind,
    /// The tick (low 24 bits) at which it was last learned or refreshed.
    pub last_seen: u32,
    /// True while move dampening holds it at its location.
    pub frozen: bool,
}

/// A lookup's answer as the entry's value word, undecoded: what
/// [`Fdb::lookup_packed`](super::Fdb::lookup_packed) and
/// [`Fdb::lookup_batch_packed`](super::Fdb::lookup_batch_packed) return, one
/// word per key. Decoding is left to the caller, field by field:
/// forwarding needs only [`PackedEntry::location`]. Equality compares the
/// words as read (the slot's generation included); compare
/// [`PackedEntry::entry`] to compare entries.
///
/// ```
/// use vxlan_core::fdb::PackedEntry;
/// let miss = PackedEntry::MISS;
/// assert!(!miss.is_hit());
/// assert_eq!(miss.location(), None);
/// assert_eq!(miss.entry(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(transparent)]
pub struct PackedEntry(u64);

impl PackedEntry {
    /// No entry.
    pub const MISS: PackedEntry = PackedEntry(0);

    /// Wraps a value word read from a slot of the looked-up key with its
    /// generation (or 0); a non-live one (reserved, dead) reads as a miss.
    #[inline(always)]
    pub(crate) const fn from_word(v: u64) -> PackedEntry {
        PackedEntry(v)
    }

    /// True when the key had a live entry.
    #[inline(always)]
    pub const fn is_hit(self) -> bool {
        (self.0 >> KIND_SHIFT) & KIND_MASK != 0
    }

    /// Where frames for the MAC go, on a hit.
    #[inline(always)]
    pub const fn location(self) -> Option<Location> {
        if self.is_hit() {
            Some(Location::decode(value_loc(self.0)))
        } else {
            None
        }
    }

    /// The whole entry, on a hit.
    #[inline(always)]
    pub fn entry(self) -> Option<Entry> {
        decode_entry(self.0)
    }

    /// True when this is a live entry at location code `loc` that a learn
    /// at `now` would leave as it is (no refresh due).
    #[inline(always)]
    pub(crate) fn is_current(self, loc: u32, now: u32, refresh_ticks: u32) -> bool {
        // The common case, a learned entry at `loc`, as one masked compare
        // of the kind and location bits; then only its age matters (see
        // `refresh_due`).
        const KIND_AND_LOC: u64 = (KIND_MASK << KIND_SHIFT) | 0xffff_ffff;
        if self.0 & KIND_AND_LOC == ((Kind::Learned as u64) << KIND_SHIFT) | u64::from(loc) {
            return elapsed(now, value_tick(self.0)) < refresh_ticks;
        }
        // Any other live kind at `loc` never ages: no refresh is due.
        value_loc(self.0) == loc
            && value_kind(self.0).is_some_and(|kind| {
                kind != Kind::Learned && !refresh_due(kind, value_tick(self.0), now, refresh_ticks)
            })
    }
}

/// Builds a live value word, generation 0 (the caller ORs in the slot's
/// generation).
#[inline(always)]
pub(crate) fn make_value(loc: u32, tick: u32, kind: Kind, frozen: bool) -> u64 {
    u64::from(loc)
        | (u64::from(tick & TICK_MASK) << TICK_SHIFT)
        | ((kind as u64) << KIND_SHIFT)
        | if frozen { FROZEN_BIT } else { 0 }
}

/// The kind of a value word, `None` when it is not live (reserved, dead).
#[inline(always)]
pub(crate) fn value_kind(v: u64) -> Option<Kind> {
    Kind::from_bits((v >> KIND_SHIFT) & KIND_MASK)
}

#[inline(always)]
pub(crate) const fn value_loc(v: u64) -> u32 {
    // Truncation intended: the location is the low 32 bits.
    #[allow(clippy::cast_possible_truncation)]
    let loc = v as u32;
    loc
}

#[inline(always)]
pub(crate) fn value_tick(v: u64) -> u32 {
    // Truncation intended: the tick is bits 32..56.
    #[allow(clippy::cast_possible_truncation)]
    let t = (v >> TICK_SHIFT) as u32;
    t & TICK_MASK
}

#[inline(always)]
pub(crate) fn value_frozen(v: u64) -> bool {
    v & FROZEN_BIT != 0
}

#[inline(always)]
pub(crate) fn with_frozen(v: u64, frozen: bool) -> u64 {
    if frozen {
        v | FROZEN_BIT
    } else {
        v & !FROZEN_BIT
    }
}

#[inline(always)]
pub(crate) fn with_tick(v: u64, tick: u32) -> u64 {
    (v & !(u64::from(TICK_MASK) << TICK_SHIFT)) | (u64::from(tick & TICK_MASK) << TICK_SHIFT)
}

/// Decodes a live value word.
#[inline(always)]
pub(crate) fn decode_entry(v: u64) -> Option<Entry> {
    let kind = value_kind(v)?;
    Some(Entry {
        location: Location::decode(value_loc(v)),
        kind,
        last_seen: value_tick(v),
        frozen: value_frozen(v),
    })
}

/// The largest move count the cold word holds (4 bits); move counts
/// saturate here, so dampening thresholds are at most this.
pub(crate) const MOVES_MAX: u8 = super::config::MAX_DAMPENING_MOVES;

/// The cold word: MAC-mobility sequence number (bits 0..32), the tick the
/// current dampening window started, or the tick the entry froze
/// (bits 32..56), the moves counted in the window (bits 56..60, saturating
/// at [`MOVES_MAX`]) and the slot's generation (bits 60..64, the same bits
/// as in the key and value words; not part of this struct: `pack` leaves
/// them clear and the writer ORs in the slot's generation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cold {
    pub(crate) seq: u32,
    pub(crate) window_start: u32,
    pub(crate) moves: u8,
}

impl Cold {
    /// The word, generation bits clear.
    #[inline]
    pub(crate) fn pack(self) -> u64 {
        u64::from(self.seq)
            | (u64::from(self.window_start & TICK_MASK) << 32)
            | (u64::from(self.moves.min(MOVES_MAX)) << 56)
    }

    #[inline]
    pub(crate) fn unpack(w: u64) -> Cold {
        // Truncations intended: each field is a bit range of the word.
        #[allow(clippy::cast_possible_truncation)]
        let c = Cold {
            seq: w as u32,
            window_start: ((w >> 32) as u32) & TICK_MASK,
            moves: ((w >> 56) as u8) & MOVES_MAX,
        };
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_round_trips_and_rejects_out_of_range() {
        for loc in [
            Location::port(0),
            Location::Local {
                port: 65535,
                vlan: 4095,
            },
            Location::Remote(0),
            Location::Remote(0x7fff_ffff),
        ] {
            assert_eq!(Location::decode(loc.encode().unwrap()), loc);
        }
        assert_eq!(
            Location::Local {
                port: 1,
                vlan: 4096
            }
            .encode(),
            None
        );
        assert_eq!(Location::Remote(1 << 31).encode(), None);
    }

    #[test]
    fn value_word_fields_are_independent() {
        let v = make_value(0xdead_beef, 0x1ff_ffff, Kind::External, true);
        assert_eq!(value_loc(v), 0xdead_beef);
        assert_eq!(value_tick(v), 0xff_ffff);
        assert_eq!(value_kind(v), Some(Kind::External));
        assert!(value_frozen(v));
        assert!(!value_frozen(with_frozen(v, false)));
        assert_eq!(value_tick(with_tick(v, 7)), 7);
        assert_eq!(value_kind(VAL_DEAD), None);
        assert_eq!(value_kind(VAL_RESERVED), None);
        let c = Cold {
            seq: u32::MAX,
            window_start: 0x12_3456,
            moves: MOVES_MAX,
        };
        assert_eq!(Cold::unpack(c.pack()), c);
        assert_eq!(gen_of(c.pack()), 0, "pack leaves the generation clear");
        assert_eq!(Cold::unpack(c.pack() | GEN_MASK), c);
        let over = Cold { moves: 200, ..c };
        assert_eq!(Cold::unpack(over.pack()).moves, MOVES_MAX, "saturates");
    }

    #[test]
    fn key_word_round_trips() {
        let mac = MacAddr([0x02, 1, 2, 3, 4, 5]);
        let k = key_word(4095, mac);
        assert_ne!(k, KEY_EMPTY);
        assert_ne!(k, KEY_BLOCKED);
        assert_eq!(split_key(k), (4095, mac));
    }

    #[test]
    fn elapsed_wraps_at_24_bits() {
        assert_eq!(elapsed(5, 0xff_fffe), 7);
        assert_eq!(elapsed(100, 40), 60);
    }

    #[test]
    fn is_current_is_live_same_place_and_no_refresh_due() {
        // The rule spelled out, against the masked-compare form, over every
        // kind bit pattern (live or not), both locations, frozen or not,
        // any generation, and ticks on both sides of the refresh and of the
        // 24-bit wrap.
        let locs = [
            Location::port(3).encode().unwrap(),
            Location::Remote(3).encode().unwrap(),
        ];
        for bits in 0..8u64 {
            for &stored in &locs {
                for frozen in [false, true] {
                    for tick in [0u32, 5, 0xff_fffe] {
                        let v = u64::from(stored)
                            | (u64::from(tick) << TICK_SHIFT)
                            | (bits << KIND_SHIFT)
                            | if frozen { FROZEN_BIT } else { 0 }
                            | (0x5 << 60);
                        for &loc in &locs {
                            for now in [0u32, 3, 5, 8, 9, 0x100_0002, 0x100_0003] {
                                let want = value_kind(v).is_some_and(|kind| {
                                    value_loc(v) == loc && !refresh_due(kind, value_tick(v), now, 4)
                                });
                                assert_eq!(
                                    PackedEntry(v).is_current(loc, now, 4),
                                    want,
                                    "kind bits {bits} stored {stored:#x} loc {loc:#x} tick {tick} now {now}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
