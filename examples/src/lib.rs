//! Programs built on the library, and the logic they share:
//!
//! * `vxlan-demo`: a TCP stream survives a VM's live migration across a
//!   VXLAN fabric, in one process on a simulated clock. See [`demo`].
//! * `vxdump`: decode the VXLAN layers of a pcap or pcapng capture, one
//!   line (or one JSON object) per packet. See [`vxdump`].
pub mod demo;
pub mod vxdump;
