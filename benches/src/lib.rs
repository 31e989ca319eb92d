//! Shared helpers for the benchmarks (frame builders).
