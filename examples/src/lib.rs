//! Programs built on the library, and the logic they share:
//!
//! * `vxdump`: decode the VXLAN layers of a pcap or pcapng capture, one
//!   line (or one JSON object) per packet. See [`vxdump`].
pub mod vxdump;
