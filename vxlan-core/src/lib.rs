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
//! ```
//! use vxlan_core::tunnel::{ParseConfig, TunnelStack};
//! use vxlan_core::wire::EtherType;
//!
//! // An ARP request from 02:00:00:00:00:01, carried in VNI 100 from
//! // 192.0.2.1 to 192.0.2.2.
//! let frame = vxlan_core::testutil::sample_vxlan_ipv4_frame();
//! let stack = TunnelStack::parse(&frame, &ParseConfig::default()).unwrap();
//! assert_eq!(stack.depth(), 1);
//! assert_eq!(stack.layer(0).unwrap().vni(), 100);
//! assert_eq!(stack.inner().unwrap().ethertype(), EtherType::ARP);
//! ```
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_op_in_unsafe_fn)]

#[cfg(all(feature = "std", not(test)))]
extern crate std;
#[cfg(test)]
#[macro_use]
extern crate std;

pub mod bridge;
pub mod decap;
pub mod ecn;
pub mod encap;
pub mod fdb;
pub mod frame;
pub mod hash;
pub mod neigh;
pub mod pmtu;
pub mod sync;
pub mod testutil;
pub mod tunnel;
pub mod wire;
