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
//!
//! # Toeplitz (RSS)
//!
//! For every bit of the input, from the most significant bit of the first
//! byte on, the hash XORs in the 32-bit window of the key that starts at that
//! bit's position when the bit is set. [`toeplitz_hash`] does exactly that
//! with a sliding 64-bit window (the reference); [`Toeplitz`] precomputes,
//! for each of the first [`Toeplitz::TABLE_INPUT_LEN`] input byte positions,
//! the XOR for all 256 byte values, so hashing costs one table load and one
//! XOR per input byte.
//!
//! Input layouts (as Microsoft's RSS specification defines them, all fields
//! in network byte order): IPv4 `src ++ dst` (8 bytes), IPv4 with ports
//! `src ++ dst ++ sport ++ dport` (12 bytes), and the same for IPv6 (32 and 36
//! bytes). [`Toeplitz::hash_ipv4`] and friends build them.
//!
//! ## Symmetric hashing
//!
//! [`Toeplitz::symmetric`] uses [`SYMMETRIC_KEY`], the 16-bit pattern
//! `0x6d5a` repeated. A key with a 16-bit period makes the window at bit
//! offset `p` equal to the window at `p + 16k`, so every field that starts at
//! a multiple of 16 bits contributes the same value wherever it sits. Source
//! and destination addresses (32 or 128 bits) and ports (16 bits) all do, so
//! swapping the direction of a flow gives the same hash. The price: the hash
//! only depends on `src ^ dst` (and `sport ^ dport`) per 16-bit lane, so it
//! spreads flows less well than a random key. Sorting the endpoints before
//! hashing would keep the full key but no longer match what a NIC computes.
//!
//! # CRC32C
//!
//! Two implementations that always give the same answer:
//!
//! * [`crc32c_portable`]: slicing-by-8 over eight 256-entry tables (8 KiB,
//!   built at compile time by a `const fn`), usable on every target;
//! * [`crc32c_hw`] (x86-64 only): the SSE4.2 `crc32` instruction, eight bytes
//!   at a time.
//!
//! [`crc32c`] and [`crc32c_append`] pick the hardware path at *compile time*
//! when the crate is built for a CPU with SSE4.2 (`-C target-cpu=native` on a
//! modern x86-64, or `-C target-feature=+sse4.2`) and the portable path
//! otherwise; a `no_std` crate has no runtime feature detection. Code that
//! can detect the feature itself (`std::is_x86_feature_detected!`) may call
//! [`crc32c_hw`] directly.
//!
//! # The RFC 7348 UDP source port
//!
//! RFC 7348 §5 recommends that a VTEP set the outer UDP source port from a
//! hash of the inner frame, so that ECMP and RSS along the underlay spread
//! tunnels' flows while keeping each flow on one path. [`source_port`]
//! does that:
//!
//! 1. If the NIC already computed an RSS hash for the frame, that hash is
//!    used and the frame is not read.
//! 2. Otherwise [`FlowKey::extract`] reads, at fixed offsets with bounds
//!    checks, the inner Ethernet destination and source addresses and the
//!    EtherType (after up to two 802.1Q / 802.1ad tags). For IPv4 and IPv6 it
//!    adds the addresses and the upper-layer protocol (IPv6 hop-by-hop,
//!    routing, destination-options and fragment headers are skipped, up to
//!    four), and for TCP, UDP and SCTP the two ports, unless the packet is a
//!    non-first fragment (which has no L4 header). A first fragment does
//!    carry its ports and is hashed with them. A frame too short for a field
//!    simply hashes what it has (only the MACs, say); nothing panics.
//!    [`flow_hash`] does not run that walker for the common shapes: an
//!    untagged IPv4 frame without options or an untagged IPv6 frame without
//!    extension headers, carrying TCP, UDP or SCTP (IPv4: at fragment
//!    offset 0), is recognised by two masked 32-bit compares (three more
//!    for the protocol) and its key words are whole 8-byte loads at
//!    constant offsets. The key layout is chosen for that; the walker
//!    builds the same words for every other shape, out of line.
//! 3. [`FlowKey::mix_hash`], a multiply-xor mixer, turns the fields into 32
//!    bits: three 64x64->128-bit multiplies of word pairs (the two IPv6
//!    prefixes share an operand), of which one is a constant for IPv4 and
//!    L2 frames (its words are zero) and folds away at compile time, then
//!    one multiply by a constant. The pair multiplies are independent, so
//!    the dependency chain is a load, an XOR, one multiply, a few XORs and
//!    the final multiply. On the flow-hashing benchmark machine it was
//!    somewhat faster than the SSE4.2 CRC32C over the same fields
//!    ([`FlowKey::crc32c_hash`], kept for comparison), whose `crc32` instructions form one serial chain of
//!    3-cycle steps; it is about 5x faster than the table CRC32C that builds
//!    without SSE4.2 get, needs no CPU-feature check, and it gives the same
//!    port whatever the build target; see `BENCHMARKS.md`.
//! 4. [`SourcePortRange::map`] maps the hash into the port range by
//!    multiply-high, `min + (hash * span) >> 32`, whose bias is below
//!    `span / 2^32` (under 0.002 % for the full 16-bit range).
//!
//! The hash is not symmetric: the two directions of a flow may get different
//! ports, which RFC 7348 does not require. It is not keyed either: it spreads
//! flows, it does not resist someone choosing flows to collide.

mod crc32c;
mod source_port;
mod toeplitz;

#[cfg(target_arch = "x86_64")]
pub use self::crc32c::crc32c_hw;
pub use self::crc32c::{crc32c, crc32c_append, crc32c_portable};
pub use self::source_port::{flow_hash, source_port, FlowKey, InvalidPortRange, SourcePortRange};
pub use self::toeplitz::{toeplitz_hash, KeyTooShort, Toeplitz, MICROSOFT_KEY, SYMMETRIC_KEY};
