//! Configuration, configuration errors, outcomes and statistics.

use core::fmt;

use super::word::{Location, MAX_TICK_SPAN};

/// The most bridge domains one FDB serves (the key holds 12 bits' worth).
pub const MAX_BRIDGE_DOMAINS: usize = 4096;

/// The largest [`Dampening::moves`] threshold: the per-entry move count is
/// kept in 4 bits of the entry's cold word (the other 4 spare bits hold the
/// slot generation that keeps a reused slot's bookkeeping apart).
pub const MAX_DAMPENING_MOVES: u8 = 15;

/// Move dampening after RFC 7432 section 15.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dampening {
    /// Moves within `window` that freeze the MAC (0 disables dampening;
    /// at most [`MAX_DAMPENING_MOVES`]).
    pub moves: u8,
    /// The window, in ticks.
    pub window: u32,
    /// How long a frozen MAC stays frozen, in ticks.
    pub hold: u32,
}

impl Dampening {
    /// RFC 7432's default: 5 moves in 180 s; held for 180 s.
    pub const DEFAULT: Dampening = Dampening {
        moves: 5,
        window: 180,
        hold: 180,
    };
}

/// FDB parameters. Ticks are whatever unit the caller's clock uses
/// (seconds in the defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdbConfig {
    /// The most live entries (all kinds). At most 7/8 of the slots.
    pub max_entries: u32,
    /// Default per-bridge-domain limit on learned entries
    /// (see [`Fdb::set_bd_limit`](super::Fdb::set_bd_limit)).
    pub bd_limit: u32,
    /// A learned entry not refreshed for this many ticks ages out (0: never).
    pub age_time: u32,
    /// A refresh rewrites the entry's tick only when at least this many
    /// ticks passed since the stored one (at least 1).
    pub refresh_ticks: u32,
    /// Move dampening.
    pub dampening: Dampening,
    /// The longest probe sequence, in slots (at least 1; capped at the slot
    /// count).
    pub max_probe: u32,
}

impl FdbConfig {
    /// Defaults for `max_entries`: no per-BD limit beyond the global one,
    /// 300-tick ageing, refresh every tick, RFC 7432 dampening, probes of at
    /// most 512 slots (a bound for pathological clusters; typical probes at
    /// load 3/4 are 2 to 9 slots).
    pub const fn new(max_entries: u32) -> FdbConfig {
        FdbConfig {
            max_entries,
            bd_limit: max_entries,
            age_time: 300,
            refresh_ticks: 1,
            dampening: Dampening::DEFAULT,
            max_probe: 512,
        }
    }
}

/// Why [`Fdb::new`](super::Fdb::new) refused its storage or configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FdbConfigError {
    /// Fewer than 8 slots.
    TooFewSlots,
    /// The cold array's length differs from the slot array's.
    ColdLengthMismatch,
    /// Zero, or more than [`MAX_BRIDGE_DOMAINS`], bridge-domain counters.
    BadBridgeDomainCount,
    /// `max_entries` is 0 or above 7/8 of the slots.
    BadMaxEntries,
    /// A tick span is at or above [`MAX_TICK_SPAN`], or `refresh_ticks` is 0.
    BadTickSpan,
    /// `max_probe` is 0.
    BadMaxProbe,
    /// `dampening.moves` is above [`MAX_DAMPENING_MOVES`].
    BadDampeningMoves,
}

impl fmt::Display for FdbConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FdbConfigError::TooFewSlots => "need at least 8 slots",
            FdbConfigError::ColdLengthMismatch => "cold array length must equal slot count",
            FdbConfigError::BadBridgeDomainCount => "bridge-domain count must be 1..=4096",
            FdbConfigError::BadMaxEntries => "max_entries must be 1..=7/8 of the slots",
            FdbConfigError::BadTickSpan => "tick spans must be below 2^23 and refresh >= 1",
            FdbConfigError::BadMaxProbe => "max_probe must be at least 1",
            FdbConfigError::BadDampeningMoves => "dampening.moves must be 0..=15",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FdbConfigError {}

pub(crate) fn validate(
    slots: usize,
    cold: usize,
    bds: usize,
    cfg: &FdbConfig,
) -> Result<(), FdbConfigError> {
    if slots < 8 {
        return Err(FdbConfigError::TooFewSlots);
    }
    if cold != slots {
        return Err(FdbConfigError::ColdLengthMismatch);
    }
    if bds == 0 || bds > MAX_BRIDGE_DOMAINS {
        return Err(FdbConfigError::BadBridgeDomainCount);
    }
    let max = usize::try_from(cfg.max_entries).unwrap_or(usize::MAX);
    if max == 0 || max > slots / 8 * 7 + (slots % 8) * 7 / 8 {
        return Err(FdbConfigError::BadMaxEntries);
    }
    let d = cfg.dampening;
    if cfg.age_time >= MAX_TICK_SPAN
        || d.window >= MAX_TICK_SPAN
        || d.hold >= MAX_TICK_SPAN
        || cfg.refresh_ticks == 0
        || cfg.refresh_ticks >= MAX_TICK_SPAN
    {
        return Err(FdbConfigError::BadTickSpan);
    }
    if d.moves > MAX_DAMPENING_MOVES {
        return Err(FdbConfigError::BadDampeningMoves);
    }
    let probe = usize::try_from(cfg.max_probe).unwrap_or(usize::MAX);
    if probe == 0 {
        return Err(FdbConfigError::BadMaxProbe);
    }
    Ok(())
}

/// What [`Fdb::learn`](super::Fdb::learn) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LearnOutcome {
    /// A new entry.
    Learned,
    /// Known at this location; the tick was rewritten.
    Refreshed,
    /// Known at this location and the tick is recent: nothing was written.
    Unchanged,
    /// Moved from `from`. `frozen` is true when this move froze the MAC.
    Moved {
        /// The previous location.
        from: Location,
        /// This move reached the dampening threshold.
        frozen: bool,
    },
    /// The MAC is frozen by move dampening; the move was refused.
    Frozen,
    /// The entry is static or sticky (or an external entry learning must
    /// not override); the move was refused.
    Pinned,
    /// The table is full (global capacity or no free slot within the probe
    /// limit). The frame should still be flooded.
    TableFull,
    /// The bridge domain's MAC limit is reached. The frame should still be
    /// flooded.
    BdLimit,
    /// Multicast, broadcast or all-zero source MAC: never learned.
    NotLearnable,
    /// The bridge domain is out of range or the location cannot be encoded.
    Invalid,
    /// Another core is inserting, reviving or trimming the same slot right
    /// now; nothing was done (the next frame will learn).
    Busy,
}

/// Why a control-plane operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FdbError {
    /// Bridge domain out of range, unencodable location, or a multicast or
    /// all-zero MAC.
    Invalid,
    /// No room (global capacity or probe limit).
    TableFull,
    /// An external update lost to an entry with a higher sequence number
    /// (RFC 7432 section 7.7).
    StaleSequence,
    /// An external update hit a static or sticky entry.
    Pinned,
    /// A concurrent learner holds the slot reserved; retry.
    Busy,
}

impl fmt::Display for FdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FdbError::Invalid => "invalid bridge domain, MAC or location",
            FdbError::TableFull => "table full",
            FdbError::StaleSequence => "lower MAC-mobility sequence number",
            FdbError::Pinned => "entry is static or sticky",
            FdbError::Busy => "slot busy, retry",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FdbError {}

/// A snapshot of the counters (each read Relaxed, so not one instant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FdbStats {
    /// Live entries.
    pub entries: u32,
    /// New entries learned from frames.
    pub learns: u64,
    /// Moves applied.
    pub moves: u64,
    /// Entries aged out.
    pub ages: u64,
    /// Learns refused because the table was full.
    pub refused_table_full: u64,
    /// Learns refused by a bridge-domain limit.
    pub refused_bd_limit: u64,
    /// Times a MAC was frozen by move dampening.
    pub freezes: u64,
    /// Moves refused because the MAC was frozen.
    pub frozen_refused: u64,
    /// Moves refused because the entry was static or sticky.
    pub pinned_refused: u64,
    /// Learns that found their slot busy.
    pub busy: u64,
}

/// What one [`Fdb::age_step`](super::Fdb::age_step) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AgeReport {
    /// Slots visited.
    pub visited: usize,
    /// Entries aged out.
    pub aged: usize,
    /// Frozen entries thawed.
    pub thawed: usize,
    /// Dead slots trimmed back to empty.
    pub trimmed: usize,
    /// True when the sweep passed the end of the table.
    pub wrapped: bool,
    /// True when another thread was sweeping and this call did nothing.
    pub contended: bool,
}
