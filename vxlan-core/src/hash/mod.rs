//! Flow hashing.
//!
//! * [`Toeplitz`] / [`toeplitz_hash`]: the Toeplitz hash as NICs compute it
//!   for receive-side scaling, with the standard key ([`MICROSOFT_KEY`]) or
//!   any key of 40 bytes or more, helpers for the IPv4/IPv6 RSS input
//!   layouts, and a symmetric mode ([`Toeplitz::symmetric`]).
//! * [`crc32c`] / [`crc32c_append`]: CRC32C (Castagnoli), on the SSE4.2
//!   instruction when the target has it ([`crc32c_hw`]) and slicing-by-8
//!   tables otherwise ([`crc32c_portable`]).
//! * [`source_port`]: the RFC 7348 outer UDP source port, from a NIC's RSS
//!   hash or a hash of the inner frame's flow ([`FlowKey`]), mapped into a
//!   [`SourcePortRange`].
//!
//! ```
//! use vxlan_core::hash::{crc32c, source_port, SourcePortRange, Toeplitz};
//! use core::net::Ipv4Addr;
//!
//! static RSS: Toeplitz = Toeplitz::microsoft();
//! let h = RSS.hash_ipv4(Ipv4Addr::new(66, 9, 149, 187), Ipv4Addr::new(161, 142, 100, 80));
//! assert_eq!(h, 0x323e_8fc2);
//!
//! assert_eq!(crc32c(b"123456789"), 0xE306_9283);
//!
//! let inner = [0u8; 60];
//! let port = source_port(&inner, None, SourcePortRange::default());
//! assert!(port >= 49152);
//! ```

mod crc32c;
mod source_port;
mod toeplitz;

#[cfg(target_arch = "x86_64")]
pub use self::crc32c::crc32c_hw;
pub use self::crc32c::{crc32c, crc32c_append, crc32c_portable};
pub use self::source_port::{flow_hash, source_port, FlowKey, InvalidPortRange, SourcePortRange};
pub use self::toeplitz::{toeplitz_hash, KeyTooShort, Toeplitz, MICROSOFT_KEY, SYMMETRIC_KEY};
