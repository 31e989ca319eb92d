//! # vxlan-pmd
//!
//! The std side of the VTEP: capture files today; ports, buffer pools and
//! per-core run-to-completion loops as they land.
//!
//! * [`pcap`]: read pcap and pcapng files, write pcap files.
//! * [`captures`]: locate the shared conformance captures for tests.
//! * [`config`]: the `vtep` configuration file, parsed and checked.

pub mod captures;
pub mod config;
pub mod pcap;
