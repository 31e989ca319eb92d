//! Atomics used by the concurrent structures, swapped for `loom`'s under
//! `--cfg loom` so they can be model-checked.

#[cfg(not(loom))]
pub use core::sync::atomic::{
    fence, AtomicBool, AtomicU16, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
#[cfg(loom)]
pub use loom::sync::atomic::{
    fence, AtomicBool, AtomicU16, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
