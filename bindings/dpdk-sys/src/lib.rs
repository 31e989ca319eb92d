//! # dpdk-sys
//!
//! Raw bindings to the system DPDK (Debian's `libdpdk-dev`, 22.11 LTS),
//! found with pkg-config. Two parts:
//!
//! * bindgen output for the allowlisted part of DPDK's API the VTEP uses:
//!   EAL start-up, mempools, ethdev configuration and statistics;
//! * `vxd_*`: a small C shim (`shim/shim.c`, compiled with `cc`) giving
//!   DPDK's `static inline` fast-path functions (`rte_eth_rx_burst`,
//!   `rte_pktmbuf_alloc`, `rte_pktmbuf_prepend`, `rte_errno`, ...) a
//!   symbol to link against, plus `VXD_*` constants for flag macros
//!   bindgen cannot evaluate.
//!
//! Everything here is `unsafe` and follows DPDK's own contracts; the safe
//! wrappers live in `vxlan-pmd`'s `dpdk` module. Building this crate needs
//! `libdpdk-dev`, `libclang-dev`, `clang` and `pkg-config`; the build
//! script says so when they are missing.

#![no_std]
#![allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    missing_docs,
    clippy::all,
    clippy::undocumented_unsafe_blocks
)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
