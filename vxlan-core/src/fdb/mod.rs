//! The lock-free forwarding database (FDB): learning, ageing and VM
//! mobility.
//!
//! Many packet cores look up and learn at once while one control thread
//! adds, deletes and flushes, and one thread (any) runs the ageing sweep.
//! Nothing blocks, nothing allocates, and the packet path has no panics.
//!
//! # Memory layout
//!
//! All storage is the caller's (a `Vec` in tests, a `static`, or zeroed
//! hugepage memory in an appliance); all-zero is the empty state.
//!
//! * `slots: &[Slot]`, any length of at least 8: open addressing with
//!   linear probing. A [`Slot`] is two `AtomicU64`, 16 bytes, 16-byte
//!   aligned, four per cache line:
//!   * key word: `gen << 60 | bd << 48 | mac` (bridge domain 0..4096 in
//!     bits 48..60, MAC in the low 48 bits, the slot's 4-bit generation in
//!     bits 60..64). Key bits (0..60) all zero is an empty slot, of any
//!     generation (the all-zero MAC is never stored); `u64::MAX` is an empty
//!     slot blocked by the ager (its key bits would be bridge domain 4095
//!     with the broadcast MAC, which is never stored).
//!   * value word: location (bits 0..32: local port and VLAN, or remote VTEP
//!     index), last-seen tick (bits 32..56, 24 bits, compared modulo 2^24),
//!     kind (bits 56..59: learned, static, sticky, external; 0 = not live),
//!     frozen (bit 59), the slot's generation (bits 60..64). Two non-live
//!     values (below the generation): `0` = reserved (an insertion, revival
//!     or trim owns the slot) and `1` = dead (deleted; the key stays until
//!     the ager trims the slot).
//!   * the generation counts the slot's trims modulo 16: a trim bumps it,
//!     so each occupancy of a slot by a key (an *incarnation*) has its own
//!     generation, carried by the key word, the value word and the cold
//!     word alike (see "Slot reuse" below).
//!
//!   A key's home is the first slot of a 64-byte-aligned group of four
//!   (the hash mapped onto the number of groups by a multiply-high, so the
//!   table size need not be a power of two); probing runs slot by slot from
//!   there, across groups, wrapping at the end. A lookup reads the four
//!   keys of its home line and takes the first that is its key without a
//!   branch per slot (keys never move and a live key never sits behind a
//!   hole, so a terminator before it in the line changes nothing); when
//!   its key is not in the line, an empty or blocked *last* slot of the
//!   line ends the probe (a line's non-terminator slots are a prefix of
//!   it, homes being line starts; the rare exception, a dead key behind a
//!   hole, only makes the probe read one line further). At load 1/2
//!   nearly every hit and about five misses in six end in that one line.
//! * `cold: &[ColdSlot]`, parallel, 8 bytes per slot: MAC-mobility sequence
//!   number (32 bits), dampening window start / freeze time (24-bit tick),
//!   moves in the window (4 bits, saturating at [`MAX_DAMPENING_MOVES`]),
//!   the slot's generation (4 bits). Touched only by moves, control-plane
//!   updates, the sweep and dumps, so it stays out of the lookup's lines.
//! * `bds: &[BdCounter]`, one per bridge domain (at most 4096): entry count
//!   and learned-entry limit, 8 bytes each.
//!
//! **Memory per entry: 24 bytes per slot** (16 hot + 8 cold), i.e. 24 bytes
//! per entry at full capacity. Load-factor slack comes on top: at most 7/8
//! of the slots may be live (`max_entries`), 27.4 bytes per entry at that
//! load; [`Fdb::slots_for`] sizes for load 1/2, 48 bytes per entry (the
//! size the benchmarks use). 4 Mi entries at load 7/8 need 4.8 Mi slots =
//! 115 MiB; at load 1/2, 192 MiB.
//!
//! # Atomic protocol
//!
//! Single-word atomics only; no seqlock, no lock, no fence; consistency
//! between a slot's words comes from the generation they share. (The one flag,
//! `sweeping`, is a try-flag: a second sweeper returns at once, nobody
//! waits.)
//!
//! **Key transitions.** A key word changes only EMPTY(g) -> key(g) (an
//! inserter's CAS; the generation stays), key(g) -> EMPTY(g+1) (the ager's
//! trim of a dead slot: the only place a generation changes) and
//! EMPTY(g) <-> BLOCKED (the ager, around a trim, restoring the exact
//! empty word). Keys never move between slots, so a given key is found by
//! walking from its home slot until the key bits match, an EMPTY or a
//! BLOCKED slot (both mean "absent"), or `max_probe` slots.
//!
//! **Value transitions.** Every change of a published value is a CAS from
//! the value the writer read, so concurrent learners, the control thread
//! and the ager never lose each other's transitions. Whoever moves a value
//! to reserved (`0`) owns the slot until it stores a live or dead value;
//! nobody else writes a reserved value. Every value written keeps the
//! generation of the value it replaces, except the trim's dead(g) ->
//! reserved(g+1).
//!
//! **Slot reuse (generations).** Between an operation's load of a key word
//! and its load or CAS of the value word, the ager may trim the slot (the
//! key was dead) and another key may take it; the slot may even go back to
//! the first key. Comparing key bits again cannot tell (ABA). So every
//! operation carries the key word it read, generation included, and:
//! * a reader accepts a value only if its generation equals the key word's
//!   (one compare on the value it loaded; no second load);
//! * a writer (learner, mover, remover, flush, installer, reviver) acts
//!   only on a value of the key word's generation, and its CAS expects that
//!   value, so it fails once the slot was trimmed (the trim's CAS moved the
//!   value to the next generation, and every later value of the slot
//!   carries a later one). A writer that finds another generation probes
//!   again from the home slot (its key's incarnation there ended);
//! * cold-word updates after a value CAS (a move's count and sequence
//!   number, an install's) are CASes expecting the generation too, and the
//!   inserter of a new incarnation writes its cold word with a swap, so a
//!   late update from the previous incarnation either lands before the
//!   inserter's write (and is overwritten) or fails against it.
//!
//! Why a value of the key word's generation is that key's: the generations
//! of one slot's incarnations are consecutive modulo 16, and values of
//! generation g are written only by owners of incarnation g (its inserter,
//! revivers, movers, removers, the ager) or by the trim that opened it
//! (reserved(g), never live). The reader's Acquire load of the key pairs
//! with the inserter's CAS, which read the trim's Release store of
//! EMPTY(g), so the value it loads next is at least reserved(g): never a
//! value of an earlier incarnation. The bound: an operation stalled between
//! its two loads across exactly 16k trims of its slot (each needing a
//! delete or age-out, a visit of the sweep and a new insert) could still
//! meet a value of generation g from another key. The loom tests
//! `*_racing_slot_reuse_*` fail on the protocol without generations.
//!
//! **Insert.** Reserve the budget (global and bridge-domain counters,
//! Relaxed), CAS the first empty slot `e` of the probe EMPTY -> key
//! (AcqRel), re-check the probe slots `e-1` down to home with Acquire loads
//! (withdraw, marking `e` dead, if one is EMPTY or BLOCKED: a concurrent
//! trim opened a hole), store the cold word (Relaxed) and Release-store the
//! value. Two cores inserting the same key race on the same first empty
//! slot; the CAS loser sees the winner's key and treats it as existing.
//!
//! **Trim** (ager only, one at a time). A dead slot `i` becomes empty only
//! if slot `i+1` is empty: CAS `i+1` EMPTY -> BLOCKED (no inserter can
//! claim it now), CAS `i`'s value dead(g) -> reserved(g+1) (no learner can
//! revive it now, and no CAS of generation g succeeds any more),
//! Release-store `i`'s key EMPTY(g+1), Release-store `i+1`'s empty word
//! back.
//! Why no live key is ever stranded behind a hole: a trim of a slot in key
//! K's probe (inserted at `e`) needs, inductively, a trim of `e-1`, which
//! needs `e` empty. If the ager's block CAS on `e` came before K's CAS in
//! `e`'s modification order, K's CAS read the ager's unblock store (Release
//! -> Acquire), so the trim happened before K's re-check, which then sees
//! the hole, or, reading a later key written by an inserter whose CAS read
//! the unblock, the release sequence carries the same edge down the chain.
//! Otherwise the block CAS fails. Hence the descending, Acquire re-check.
//! The loom test `trim_racing_insert_never_strands_a_key` fails if either
//! the re-check or the Release on the unblock store is removed.
//!
//! **Refresh and move.** A refresh whose location matches and whose tick is
//! within `refresh_ticks` writes nothing (a hot MAC's line stays shared in
//! every core's cache). Otherwise one CAS replaces the value word (Release,
//! so readers Acquiring it see a whole value); the cold word is updated
//! after a successful move CAS. Losers of a CAS re-read and re-decide.
//!
//! **Counters.** Relaxed atomics: they order no data. The global and
//! per-bridge-domain entry counts are budgets taken (fetch_add) before an
//! entry is published and returned after it stops being live, so a full
//! table refuses learns without ever evicting anything.
//!
//! **Lookup.** Acquire-load the key; on a match of the key bits
//! Acquire-load the value and accept it only if it is live and of the key
//! word's generation (see "Slot reuse"). The Acquire on the key makes the
//! value at least the reservation of that generation; the Acquire on the
//! value is free on x86 and lets a dump read the cold word published with
//! it.
//!
//! # What a reader can observe
//!
//! * During a move (one CAS of the value word) a concurrent lookup returns
//!   the old location or the new one: never a mix, never another key's
//!   value (the value is one word; the generation check rejects values of
//!   a reused slot, even one that went back to the same key).
//! * During an insert or revive: a miss until the value is published.
//! * During a delete, flush or ageing: the entry, or a miss (also when the
//!   slot is trimmed and reused meanwhile).
//! * A miss is always safe for the caller: the frame is flooded.
//! * The one theoretical exception: a lookup stalled between its key and
//!   value loads across a multiple of 16 trims of its slot (see "Slot
//!   reuse") could pair its key with another key's value.
//!
//! # Learning rules
//!
//! * Multicast, broadcast and all-zero source MACs are never learned.
//! * A refresh writes only when at least `refresh_ticks` passed, so a hot
//!   MAC does not bounce its line between cores.
//! * Static and sticky entries never move; external (EVPN) entries move by
//!   learning (a local move bumps the sequence number); control-plane
//!   updates are not dampened and clear dampening state.
//! * Move dampening (RFC 7432 section 15.1): the `moves`-th move within
//!   `window` ticks freezes the MAC at its new location; further moves are
//!   refused (counted) until `hold` ticks passed (checked by the next move
//!   attempt and by the ageing sweep).
//! * Limits: `max_entries` globally (all kinds) and a per-bridge-domain
//!   limit on learned entries. Nothing is ever evicted to make room; a
//!   refused learn is counted and the caller floods.
//!
//! # Example
//!
//! ```
//! use vxlan_core::fdb::*;
//! use vxlan_core::wire::MacAddr;
//!
//! let n = Fdb::slots_for(1000);
//! let slots: Vec<Slot> = (0..n).map(|_| Slot::new()).collect();
//! let cold: Vec<ColdSlot> = (0..n).map(|_| ColdSlot::new()).collect();
//! let bds: Vec<BdCounter> = (0..4).map(|_| BdCounter::new()).collect();
//! let fdb = Fdb::new(&slots, &cold, &bds, FdbConfig::new(1000)).unwrap();
//!
//! let cells: Vec<EventSlot> = (0..64).map(|_| EventSlot::new()).collect();
//! let mut ring = EventRing::new(&cells);
//! let (mut tx, mut rx) = ring.split();
//!
//! let vm = MacAddr([0x02, 0, 0, 0, 0, 1]);
//! fdb.learn(1, vm, Location::port(4), 100, &mut tx);
//! fdb.learn(1, vm, Location::Remote(9), 101, &mut tx); // live migration
//! assert_eq!(rx.pop().unwrap().kind, EventKind::Learned);
//! let moved = rx.pop().unwrap();
//! assert_eq!(moved.kind, EventKind::Moved);
//! assert_eq!(moved.previous, Some(Location::port(4)));
//! assert_eq!(fdb.stats().moves, 1);
//! ```

mod age;
mod config;
mod control;
mod events;
#[cfg(feature = "miss-filter")]
mod filter;
mod iter;
mod learn;
mod slot;
mod table;
mod word;

#[cfg(any(test, fuzzing))]
pub mod model;

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, loom))]
mod loom;

pub use config::{
    AgeReport, Dampening, FdbConfig, FdbConfigError, FdbError, FdbStats, LearnOutcome,
    MAX_BRIDGE_DOMAINS, MAX_DAMPENING_MOVES,
};
pub use control::FlushFilter;
pub use events::{
    Event, EventConsumer, EventKind, EventProducer, EventRing, EventSink, EventSlot, NoEvents,
};
#[cfg(feature = "miss-filter")]
pub use filter::FilterWord;
pub use iter::{Iter, Record};
pub use slot::{BdCounter, CachePadded, ColdSlot, Slot};
pub use table::{Fdb, FdbKey, BATCH};
pub use word::{Entry, Kind, KindSet, Location, PackedEntry, MAX_TICK_SPAN};
