//! DPDK ports and mbufs (feature `dpdk`).
//!
//! The only module that uses `dpdk-sys`; what leaves it is safe:
//!
//! * [`Eal`]: the Environment Abstraction Layer, started once per process
//!   from arguments ([`Eal::init`]);
//! * [`Mempool`] and [`Mbuf`]: an mbuf owns one packet buffer, frees itself
//!   on drop, and implements the core [`Frame`](vxlan_core::frame::Frame)
//!   trait in place (prepend and strip move DPDK's data offset; the
//!   payload never moves), so the VTEP works on mbufs with zero copies;
//! * [`EthPort`]: an ethdev port configured with one receive and one
//!   transmit queue per worker, RSS across the queues when there are
//!   several, the receive offloads the device offers, and on request (the
//!   underlay port) its transmit IPv4 and UDP checksum offloads, which the
//!   VTEP's encapsulation templates then leave their checksums to
//!   ([`EthPort::tx_checksum_offload`]);
//! * [`DpdkLoop`]: one worker's run-to-completion loop over its queue of
//!   every port, and [`DpdkVtep`]: the whole VTEP from a configuration,
//!   its workers run on EAL's worker lcores (one per worker, pinned to the
//!   CPUs of `-l`) or, when EAL has too few, as threads registered with
//!   EAL.

mod eal;
mod ethdev;
mod mbuf;
mod run;

pub use eal::{DpdkError, Eal};
pub use ethdev::{EthPort, EthPortConfig, EthStats, Offloads};
pub use mbuf::{Mbuf, Mempool};
pub use run::{DpdkLoop, DpdkVtep, LoopStats, PortLoopStats};
