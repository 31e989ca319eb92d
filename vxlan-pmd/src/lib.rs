//! # vxlan-pmd
//!
//! The std side of the VTEP: buffer pools, ports, per-core
//! run-to-completion loops, counters, and capture files.
//!
//! * [`pool`]: a fixed pool of packet buffers; [`pool::PktBuf`] implements
//!   [`vxlan_core::frame::Frame`] and returns to its pool on drop.
//! * [`port`]: the [`port::Port`] trait (burst receive and transmit) and
//!   the allocation-free [`port::Burst`] container.
//! * [`memport`]: in-memory port pairs joined by lock-free rings, to wire
//!   VTEPs and test hosts into a fabric inside one process.
//! * `afxdp` (feature `af-xdp`): AF_XDP ports, one socket per queue,
//!   and the XDP program steering frames to them.
//! * `live` (feature `af-xdp`): every configured AF_XDP port opened
//!   and steered, one socket per worker, for the `vtep` daemon.
//! * [`pcapport`]: a port that receives from a capture file and transmits
//!   into one.
//! * [`worker`]: per-core poll loops, optionally pinned to cores.
//! * [`run`]: the run-to-completion loop tying ports to a VTEP worker.
//! * [`stats`]: single-writer counters, per-core and per-port.
//! * [`pcap`]: read pcap and pcapng files, write pcap files.
//! * [`captures`]: locate the shared conformance captures for tests.
//! * [`config`]: the `vtep` configuration file, parsed and checked.
//! * [`build`]: from a configuration to a running VTEP.
//! * [`control`]: the control socket `vtepctl` talks to (line-delimited
//!   JSON), on a control thread of its own.
//! * `nexthop` (Linux): underlay next hops resolved from the kernel's
//!   route and neighbour tables over netlink.
//! * [`vtep`]: the bridging pipeline carried out on pool buffers, with
//!   per-core counters and configuration snapshots.
//! * `dpdk` (feature `dpdk`): DPDK ethdev ports, mbufs as frames (zero
//!   copy), EAL-registered workers; needs the system DPDK
//!   (`apt-get install libdpdk-dev libclang-dev clang pkg-config`).

#[cfg(feature = "af-xdp")]
pub mod afxdp;
pub mod build;
pub mod captures;
pub mod config;
pub mod control;
#[cfg(feature = "dpdk")]
pub mod dpdk;
#[cfg(feature = "af-xdp")]
pub mod live;
pub mod memport;
#[cfg(target_os = "linux")]
pub mod nexthop;
pub mod pcap;
pub mod pcapport;
pub mod pool;
pub mod port;
mod ring;
pub mod run;
pub mod stats;
pub mod vtep;
pub mod worker;
