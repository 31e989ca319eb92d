//! # vxlan-core
//!
//! The allocation-free heart of a software VXLAN tunnel endpoint (VTEP):
//!
//! * [`wire`]: zero-copy codecs for every header a VTEP touches (Ethernet,
//!   802.1Q/802.1ad, ARP/RARP, IPv4, IPv6 with extension headers, UDP,
//!   ICMPv4, ICMPv6 with neighbour discovery, VXLAN, VXLAN-GPE, VXLAN-GBP);
//! * [`tunnel`]: a tunnel-stack parser that finds every VXLAN layer of a frame
//!   and the inner Ethernet frame without copying;
//! * [`hash`]: flow hashing (Toeplitz as NICs compute RSS, CRC32C, the
//!   RFC 7348 UDP source-port hash);
//! * [`fdb`]: the lock-free forwarding database.
//!
//! The crate is `#![no_std]` and never allocates. The `std` feature only adds
//! `std::error::Error` implementations.
//!
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_op_in_unsafe_fn)]

#[cfg(feature = "std")]
extern crate std;

pub mod fdb;
pub mod hash;
pub mod sync;
pub mod wire;
