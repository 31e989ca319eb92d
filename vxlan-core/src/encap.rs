//! Encapsulation: one prebuilt outer header per remote VTEP, prepended in
//! one copy and patched in a few stores.
//!
//! An [`EncapTemplate`] holds the outer Ethernet header (with an optional
//! underlay 802.1Q tag), the IPv4 or IPv6 header, the UDP header and the
//! VXLAN/GPE/GBP header, built once from an [`EncapConfig`]. Per frame,
//! [`EncapTemplate::encap`] prepends it and writes what varies: the VNI,
//! the UDP source port (the flow's entropy), lengths, TOS/traffic class
//! (DSCP fixed or inherited, ECN per RFC 6040), TTL (fixed or inherited),
//! DF, the IPv4 header checksum (from a sum precomputed over the fixed
//! fields, so no header is summed per frame) and the UDP checksum when one
//! is due (IPv6, unless RFC 6935/6936 zero checksums are configured).
//! A template built for a device with transmit checksum offload
//! ([`TxChecksumOffload`]) leaves those checksums to the device instead
//! and marks each frame with the request ([`Frame::request_tx_checksums`]).
//!
//! ```
//! use vxlan_core::encap::{EncapConfig, EncapTemplate};
//! use vxlan_core::frame::{BufFrame, Frame};
//!
//! let cfg = EncapConfig::new(
//!     "192.0.2.1".parse().unwrap(),
//!     "192.0.2.2".parse().unwrap(),
//!     "02:00:00:00:00:01".parse().unwrap(),
//!     "02:00:00:00:00:fe".parse().unwrap(),
//! );
//! let template = EncapTemplate::new(&cfg).unwrap();
//! let mut storage = [0u8; 256];
//! let mut frame = BufFrame::with_data(&mut storage[..], 128, &[0x33; 60]).unwrap();
//! template.encap(&mut frame, 100, 49152).unwrap();
//! assert_eq!(frame.len(), 60 + 50);
//! ```

use core::fmt;
use core::net::IpAddr;

use crate::ecn::{self, Ecn};
use crate::frame::{Frame, FrameError, TxChecksums};
use crate::hash::{flow_hash, SourcePortRange};
use crate::wire::ethernet::{HEADER_LEN as ETH_LEN, VLAN_TAG_LEN};
use crate::wire::vxlan::{self, GpeNextProtocol, MAX_VNI};
use crate::wire::{checksum, EtherType, IpPair, IpProtocol, MacAddr};

/// [`ETH_LEN`] as a `u16`.
const ETH_LEN_U16: u16 = 14;
const _: () = assert!(ETH_LEN_U16 as usize == ETH_LEN);

/// The longest outer header: Ethernet, one tag, IPv6, UDP, VXLAN.
pub const MAX_OUTER_LEN: usize = ETH_LEN + VLAN_TAG_LEN + 40 + 8 + 8;

/// Outer TTL / hop limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// Always this value.
    Fixed(u8),
    /// Copy the inner IP header's TTL / hop limit (the fixed value when
    /// the inner frame is not IP).
    Inherit {
        /// Used for non-IP inner frames.
        default: u8,
    },
}

/// Outer DSCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dscp {
    /// Always this code point (6 bits).
    Fixed(u8),
    /// Copy the inner IP header's DSCP (0 for non-IP inner frames).
    Inherit,
}

/// The outer IPv4 don't-fragment bit. (IPv6 has no such bit: a VTEP never
/// fragments, so IPv6 outer packets are never fragmented.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DfPolicy {
    /// Set DF: the underlay must not fragment (RFC 7348 section 4.3).
    Set,
    /// Clear DF.
    Unset,
    /// Copy DF from an inner IPv4 header; set it for inner IPv6 (which is
    /// never fragmented by routers); clear it for non-IP frames.
    Inherit,
}

/// Which header follows UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelKind {
    /// Plain VXLAN (RFC 7348).
    Vxlan,
    /// VXLAN-GPE carrying Ethernet.
    Gpe,
    /// VXLAN-GBP with a group policy ID.
    Gbp {
        /// Group policy ID of the sender.
        policy_id: u16,
        /// Ask the receiver not to learn.
        dont_learn: bool,
        /// The policy has already been applied.
        policy_applied: bool,
    },
}

/// The outer UDP checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpChecksumMode {
    /// Zero over IPv4, computed over IPv6 (the RFC 7348 / RFC 8200 default).
    Default,
    /// Always computed.
    Compute,
    /// Always zero. Over IPv6 this is the RFC 6935/6936 tunnel exception,
    /// and only valid when both ends are configured for it.
    Zero,
}

/// Which transmit checksum offloads the device that sends a template's
/// frames offers (DPDK's `RTE_ETH_TX_OFFLOAD_IPV4_CKSUM` and
/// `RTE_ETH_TX_OFFLOAD_UDP_CKSUM`, turned on at the port). Off by
/// default: every checksum is computed in software.
///
/// A template leaves its checksums to the device only when the device can
/// do all of them for its layout: the IPv4 header checksum of an IPv4
/// underlay without UDP checksums; the UDP checksum of an IPv6 underlay
/// (whose IPv6 header has none); both for an IPv4 underlay with UDP
/// checksums ([`UdpChecksumMode::Compute`]). Otherwise it computes them
/// all, as without the hint. It then writes no IPv4 header checksum (the
/// field stays zero) and only the pseudo-header's sum into the UDP
/// checksum field, and passes a [`TxChecksums`] request to
/// [`Frame::request_tx_checksums`].
///
/// Only for frames that leave through such a device: anywhere else they
/// would go out with wrong checksums (or have them finished by
/// [`complete_tx_checksums`]).
///
/// ```
/// use vxlan_core::encap::{EncapConfig, EncapTemplate, TxChecksumOffload};
/// use vxlan_core::frame::{BufFrame, Frame};
///
/// let cfg = EncapConfig {
///     tx_offload: TxChecksumOffload { ipv4_header: true, udp: false },
///     ..EncapConfig::new(
///         "192.0.2.1".parse().unwrap(),
///         "192.0.2.2".parse().unwrap(),
///         "02:00:00:00:00:01".parse().unwrap(),
///         "02:00:00:00:00:fe".parse().unwrap(),
///     )
/// };
/// let template = EncapTemplate::new(&cfg).unwrap();
/// let mut storage = [0u8; 256];
/// let mut frame = BufFrame::with_data(&mut storage[..], 128, &[0x33; 60]).unwrap();
/// template.encap(&mut frame, 100, 49152).unwrap();
/// assert_eq!(&frame.data()[24..26], &[0, 0]); // for the device
/// let req = frame.tx_checksums().unwrap();
/// assert!(req.ipv4_header && !req.udp);
/// assert_eq!((req.l2_len, req.l3_len), (14, 20));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TxChecksumOffload {
    /// The device computes IPv4 header checksums.
    pub ipv4_header: bool,
    /// The device computes UDP checksums (from the pseudo-header sum in
    /// the field).
    pub udp: bool,
}

impl TxChecksumOffload {
    /// No offload: every checksum in software.
    pub const NONE: TxChecksumOffload = TxChecksumOffload {
        ipv4_header: false,
        udp: false,
    };
}

/// Everything a template is built from: one remote VTEP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncapConfig {
    /// Our underlay address.
    pub local_ip: IpAddr,
    /// The remote VTEP's underlay address (same family as `local_ip`).
    pub remote_ip: IpAddr,
    /// Our underlay MAC.
    pub local_mac: MacAddr,
    /// The underlay next hop's MAC (the gateway, or the remote itself on a
    /// shared segment).
    pub next_hop_mac: MacAddr,
    /// An optional 802.1Q tag on the underlay.
    pub underlay_vlan: Option<u16>,
    /// UDP destination port (4789).
    pub dst_port: u16,
    /// Outer TTL.
    pub ttl: Ttl,
    /// Outer DSCP.
    pub dscp: Dscp,
    /// Outer DF.
    pub df: DfPolicy,
    /// Outer UDP checksum.
    pub udp_checksum: UdpChecksumMode,
    /// VXLAN, GPE or GBP.
    pub kind: TunnelKind,
    /// The underlay's IP MTU: the largest outer IP packet.
    pub underlay_mtu: u16,
    /// The UDP source ports [`EncapTemplate::encap_flow`] maps flows into.
    pub src_ports: SourcePortRange,
    /// The transmit checksum offloads of the device the frames leave by
    /// (none by default).
    pub tx_offload: TxChecksumOffload,
}

impl EncapConfig {
    /// Defaults: port 4789, TTL 64, DSCP inherited, DF set, UDP checksum per
    /// [`UdpChecksumMode::Default`], plain VXLAN, MTU 1500, no transmit
    /// checksum offload.
    pub fn new(
        local_ip: IpAddr,
        remote_ip: IpAddr,
        local_mac: MacAddr,
        next_hop_mac: MacAddr,
    ) -> Self {
        EncapConfig {
            local_ip,
            remote_ip,
            local_mac,
            next_hop_mac,
            underlay_vlan: None,
            dst_port: vxlan::PORT,
            ttl: Ttl::Fixed(64),
            dscp: Dscp::Inherit,
            df: DfPolicy::Set,
            udp_checksum: UdpChecksumMode::Default,
            kind: TunnelKind::Vxlan,
            underlay_mtu: 1500,
            src_ports: SourcePortRange::DEFAULT,
            tx_offload: TxChecksumOffload::NONE,
        }
    }
}

/// Why a template could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncapConfigError {
    /// `local_ip` and `remote_ip` are of different families.
    MixedFamilies,
    /// VLAN IDs are 1..=4094.
    BadVlan(u16),
    /// DSCP is 6 bits.
    BadDscp(u8),
    /// UDP port 0.
    PortZero,
    /// An MTU too small to carry the outer headers and a minimal frame.
    MtuTooSmall(u16),
}

impl fmt::Display for EncapConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncapConfigError::MixedFamilies => {
                f.write_str("local and remote underlay addresses must both be IPv4 or both IPv6")
            }
            EncapConfigError::BadVlan(v) => write!(f, "underlay VLAN {v} is outside 1..=4094"),
            EncapConfigError::BadDscp(d) => write!(f, "DSCP {d} is outside 0..=63"),
            EncapConfigError::PortZero => f.write_str("UDP destination port 0 is not allowed"),
            EncapConfigError::MtuTooSmall(m) => {
                write!(
                    f,
                    "underlay MTU {m} cannot carry the outer headers and a 64-byte frame"
                )
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for EncapConfigError {}

/// Why a frame was not encapsulated. Each is a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncapDrop {
    /// The frame is shorter than an Ethernet header.
    InnerTruncated,
    /// Not enough headroom for the outer header.
    NoHeadroom,
    /// The VNI does not fit 24 bits.
    BadVni,
    /// The encapsulated packet would exceed the underlay MTU; the inner
    /// frame may be at most `max_inner_len` bytes.
    TooBig {
        /// The largest inner frame that fits.
        max_inner_len: u16,
    },
}

impl EncapDrop {
    /// A short stable name for counters.
    pub const fn as_str(&self) -> &'static str {
        match self {
            EncapDrop::InnerTruncated => "encap_inner_truncated",
            EncapDrop::NoHeadroom => "encap_no_headroom",
            EncapDrop::BadVni => "encap_bad_vni",
            EncapDrop::TooBig { .. } => "encap_too_big",
        }
    }
}

impl fmt::Display for EncapDrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The IP fields of an inner frame that encapsulation may inherit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InnerIp {
    pub(crate) tos: u8,
    pub(crate) ttl: u8,
    pub(crate) df: bool,
    /// Offset of the inner IP header in the inner frame.
    pub(crate) offset: usize,
    pub(crate) ipv6: bool,
}

/// Finds the inner IP header (after up to two tags) and reads TOS, TTL and
/// DF; `None` for non-IP or truncated frames.
#[inline]
pub(crate) fn inner_ip(frame: &[u8]) -> Option<InnerIp> {
    // The common case first: untagged IPv4, EtherType and version checked
    // with one compare of the bytes at 12-14.
    if let Some(h) = frame.first_chunk::<34>() {
        // One 32-bit load (byte-wise indexing here compiles to three byte
        // loads); the mask drops byte 15 (the TOS) and the IHL.
        let mut w = [0u8; 4];
        w.copy_from_slice(&h[12..16]);
        if u32::from_le_bytes(w) & 0x00f0_ffff == 0x0040_0008 {
            return Some(InnerIp {
                tos: h[15],
                ttl: h[22],
                df: h[20] & 0x40 != 0,
                offset: ETH_LEN,
                ipv6: false,
            });
        }
    }
    inner_ip_general(frame)
}

/// [`inner_ip`] for every shape: up to two VLAN tags, IPv4 or IPv6.
#[inline]
fn inner_ip_general(frame: &[u8]) -> Option<InnerIp> {
    let mut at = 12;
    let mut et = u16::from_be_bytes(*frame.get(at..at + 2)?.first_chunk()?);
    for _ in 0..2 {
        if !EtherType(et).is_vlan_tpid() {
            break;
        }
        at += 4;
        et = u16::from_be_bytes(*frame.get(at..at + 2)?.first_chunk()?);
    }
    let ip = at + 2;
    match et {
        0x0800 => {
            let h: &[u8; 20] = frame.get(ip..)?.first_chunk()?;
            (h[0] >> 4 == 4).then_some(InnerIp {
                tos: h[1],
                ttl: h[8],
                df: h[6] & 0x40 != 0,
                offset: ip,
                ipv6: false,
            })
        }
        0x86dd => {
            let h: &[u8; 40] = frame.get(ip..)?.first_chunk()?;
            let tc = (h[0] << 4) | (h[1] >> 4);
            (h[0] >> 4 == 6).then_some(InnerIp {
                tos: tc,
                ttl: h[7],
                df: true,
                offset: ip,
                ipv6: true,
            })
        }
        _ => None,
    }
}

/// The 16-bit word whose native-endian bytes are `v`'s network-order
/// bytes, as [`checksum::sum_native`] counts it.
#[inline(always)]
fn native16(v: u16) -> u16 {
    u16::from_ne_bytes(v.to_be_bytes())
}

/// The per-frame values written into a template.
#[derive(Clone, Copy)]
struct OuterFields {
    vni: u32,
    src_port: u16,
    /// The outer TOS / traffic class, DF and TTL / hop limit as an inherit
    /// word (see [`Policy`]); no bits outside them.
    ip_word: u64,
    inner_len: usize,
}

/// Where a template's headers lie (the outer IP family and whether the
/// underlay is tagged) and whether a UDP checksum is computed, chosen once
/// so that a frame dispatches on one byte to a body where all of it is
/// constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// IPv4 at 14, 50 bytes prepended, UDP checksum zero.
    V4,
    /// As `V4`, UDP checksum computed.
    V4Sum,
    /// IPv4 at 18 (one tag), 54 bytes prepended, UDP checksum zero.
    V4Tag,
    /// As `V4Tag`, UDP checksum computed.
    V4TagSum,
    /// IPv6 at 14, 70 bytes prepended, UDP checksum zero.
    V6,
    /// As `V6`, UDP checksum computed.
    V6Sum,
    /// IPv6 at 18 (one tag), 74 bytes prepended, UDP checksum zero.
    V6Tag,
    /// As `V6Tag`, UDP checksum computed.
    V6TagSum,
    /// As `V4`, the IPv4 header checksum left to the device.
    V4Off,
    /// As `V4Sum`, both checksums left to the device.
    V4SumOff,
    /// As `V4Tag`, the IPv4 header checksum left to the device.
    V4TagOff,
    /// As `V4TagSum`, both checksums left to the device.
    V4TagSumOff,
    /// As `V6Sum`, the UDP checksum left to the device.
    V6SumOff,
    /// As `V6TagSum`, the UDP checksum left to the device.
    V6TagSumOff,
}

/// Calls `$t.$f::<F, IP, LEN, V6, SUM, OFF>(args)` for `$t`'s layout (see
/// [`Layout`]; `OFF`: the checksums are left to the device).
macro_rules! by_layout {
    ($t:expr, $f:ident::<$F:ty>($($a:expr),*)) => {
        match $t.layout {
            Layout::V4 => $t.$f::<$F, 14, 50, false, false, false>($($a),*),
            Layout::V4Sum => $t.$f::<$F, 14, 50, false, true, false>($($a),*),
            Layout::V4Tag => $t.$f::<$F, 18, 54, false, false, false>($($a),*),
            Layout::V4TagSum => $t.$f::<$F, 18, 54, false, true, false>($($a),*),
            Layout::V6 => $t.$f::<$F, 14, 70, true, false, false>($($a),*),
            Layout::V6Sum => $t.$f::<$F, 14, 70, true, true, false>($($a),*),
            Layout::V6Tag => $t.$f::<$F, 18, 74, true, false, false>($($a),*),
            Layout::V6TagSum => $t.$f::<$F, 18, 74, true, true, false>($($a),*),
            Layout::V4Off => $t.$f::<$F, 14, 50, false, false, true>($($a),*),
            Layout::V4SumOff => $t.$f::<$F, 14, 50, false, true, true>($($a),*),
            Layout::V4TagOff => $t.$f::<$F, 18, 54, false, false, true>($($a),*),
            Layout::V4TagSumOff => $t.$f::<$F, 18, 54, false, true, true>($($a),*),
            Layout::V6SumOff => $t.$f::<$F, 14, 70, true, true, true>($($a),*),
            Layout::V6TagSumOff => $t.$f::<$F, 18, 74, true, true, true>($($a),*),
        }
    };
}

/// Bits of an inherit word (see [`Policy`]) that carry a value: the TOS /
/// traffic class, DF and the TTL / hop limit.
#[cfg(test)]
const INHERITABLE: u64 = 0xff | DF_BIT | (0xff << 56);

/// DF in an inherit word: bit 6 of the IPv4 header's byte 6.
const DF_BIT: u64 = 1 << 46;

/// The DSCP, TTL and DF policies in a form a frame applies without a
/// branch, on one 64-bit "inherit word": the inner IPv4 header's bytes 1-8
/// as a little-endian integer, which puts the TOS in bits 0-7, DF in bit
/// 46 and the TTL in bits 56-63 (the total length, identification and
/// fragment offset bits between them are never kept). Other inner frames
/// get a word with the same fields (IPv6: traffic class, hop limit, DF
/// set; non-IP: TOS 0, the default TTL, DF clear). The outer header's word
/// is `fixed | (inner & mask)`: a mask is all ones over a field that is
/// inherited, and `fixed` holds the fields that are not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Policy {
    /// The fixed DSCP, TTL and DF.
    fixed: u64,
    /// The inherited fields; the ECN bits always are (RFC 6040 normal
    /// mode copies them, see [`ecn::encapsulate`]).
    mask: u64,
    /// The inherit word of a non-IP inner frame.
    non_ip: u64,
}

impl Policy {
    fn new(cfg: &EncapConfig) -> Self {
        // RFC 6040 normal mode: the outer ECN field is the inner one.
        debug_assert!(Ecn::ALL.iter().all(|&e| ecn::encapsulate(e) == e));
        let mut fixed = 0;
        let mut mask = 0x03;
        let mut non_ip = 0;
        match cfg.dscp {
            Dscp::Fixed(d) => fixed |= u64::from(d) << 2,
            Dscp::Inherit => mask |= 0xfc,
        }
        match cfg.ttl {
            Ttl::Fixed(t) => fixed |= u64::from(t) << 56,
            Ttl::Inherit { default } => {
                mask |= 0xff << 56;
                non_ip = u64::from(default) << 56;
            }
        }
        match cfg.df {
            DfPolicy::Set => fixed |= DF_BIT,
            DfPolicy::Unset => {}
            DfPolicy::Inherit => mask |= DF_BIT,
        }
        Policy {
            fixed,
            mask,
            non_ip,
        }
    }
}

impl InnerIp {
    /// The fields as an inherit word (see [`Policy`]).
    #[inline]
    fn word(self) -> u64 {
        u64::from(self.tos) | (u64::from(self.df) << 46) | (u64::from(self.ttl) << 56)
    }
}

/// The inherit word (see [`Policy`]) of an inner frame, `None` for non-IP
/// or truncated frames: `inner_ip(frame).map(InnerIp::word)` except that
/// bits outside the TOS, DF and TTL may be set.
#[inline(always)]
fn inner_word(frame: &[u8]) -> Option<u64> {
    if let Some(h) = frame.first_chunk::<34>() {
        // As in `inner_ip`; then bytes 15-22 (the IP header's bytes 1-8)
        // are the word itself, one load.
        let mut w = [0u8; 4];
        w.copy_from_slice(&h[12..16]);
        if u32::from_le_bytes(w) & 0x00f0_ffff == 0x0040_0008 {
            let mut q = [0u8; 8];
            q.copy_from_slice(&h[15..23]);
            return Some(u64::from_le_bytes(q));
        }
    }
    inner_ip_general(frame).map(InnerIp::word)
}

/// Computes in software the checksums `req` left to the device, as the
/// device would: the IPv4 header checksum over the `l3_len`-byte header at
/// `l2_len`, and the UDP checksum over the datagram after it (its length
/// from the UDP header), whose checksum field holds the pseudo-header's
/// sum on entry. For a frame encapsulated by a template with
/// [`TxChecksumOffload`] that does not leave through such a device after
/// all; the bytes are then what the template writes without the hint.
/// Returns false (and changes nothing) when the frame is too short for the
/// headers `req` names.
///
/// ```
/// use vxlan_core::encap::{complete_tx_checksums, EncapConfig, EncapTemplate, TxChecksumOffload};
/// use vxlan_core::frame::{BufFrame, Frame};
///
/// let plain = EncapConfig::new(
///     "2001:db8::1".parse().unwrap(),
///     "2001:db8::2".parse().unwrap(),
///     "02:00:00:00:00:01".parse().unwrap(),
///     "02:00:00:00:00:fe".parse().unwrap(),
/// );
/// let offloaded = EncapConfig {
///     tx_offload: TxChecksumOffload { ipv4_header: false, udp: true },
///     ..plain
/// };
/// let mut out = Vec::new();
/// for cfg in [plain, offloaded] {
///     let mut storage = [0u8; 256];
///     let mut frame = BufFrame::with_data(&mut storage[..], 128, &[0x33; 60]).unwrap();
///     EncapTemplate::new(&cfg).unwrap().encap(&mut frame, 100, 49152).unwrap();
///     if let Some(req) = frame.tx_checksums() {
///         assert!(complete_tx_checksums(frame.data_mut(), req));
///     }
///     out.push(frame.data().to_vec());
/// }
/// assert_eq!(out[0], out[1]);
/// ```
pub fn complete_tx_checksums(frame: &mut [u8], req: TxChecksums) -> bool {
    let ip = usize::from(req.l2_len);
    let udp = ip + usize::from(req.l3_len);
    let Some(len) = frame.get(udp + 4..udp + 6) else {
        return false;
    };
    let end = udp + usize::from(u16::from_be_bytes([len[0], len[1]]));
    if (req.udp && (end < udp + 8 || end > frame.len())) || (req.ipv4_header && req.l3_len < 20) {
        return false;
    }
    if req.ipv4_header {
        frame[ip + 10..ip + 12].fill(0);
        let c = !checksum::fold(checksum::sum(&frame[ip..udp]));
        frame[ip + 10..ip + 12].copy_from_slice(&c.to_be_bytes());
    }
    if req.udp {
        let c = !checksum::fold(checksum::sum(&frame[udp..end]));
        let c = if c == 0 { 0xffff } else { c };
        frame[udp + 6..udp + 8].copy_from_slice(&c.to_be_bytes());
    }
    true
}

/// A prebuilt outer header for one remote VTEP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncapTemplate {
    bytes: [u8; MAX_OUTER_LEN],
    len: u8,
    udp: u8,
    ipv6: bool,
    layout: Layout,
    /// [`EncapTemplate::max_inner_len`] less the Ethernet header: the
    /// span of inner lengths that fit, computed once.
    inner_span: u16,
    /// `src_ports.span()`, computed once.
    port_span: u32,
    /// The TOS / traffic class, TTL and DF policies as masks, so that a
    /// frame applies them without a branch (see [`Policy`]).
    policy: Policy,
    src_ports: SourcePortRange,
    /// IPv4: sum of the header with TOS, total length, flags, TTL and the
    /// checksum zeroed (for the header checksum). Unused for IPv6.
    base_sum: u64,
    /// The fixed part of the UDP checksum, folded, in native word order
    /// (see [`checksum::sum_native`]): the pseudo-header's addresses and
    /// protocol, and the template's UDP and VXLAN headers with the source
    /// port, length and VNI zeroed. A frame adds those three and the sum
    /// of its inner frame.
    udp_base_sum: u64,
    /// The pseudo-header's addresses and protocol, folded, in native word
    /// order: with the length added, what a UDP checksum left to the
    /// device starts from.
    pseudo_sum: u64,
    remote: IpAddr,
}

impl EncapTemplate {
    /// The outer destination MAC (the underlay next hop) the template
    /// writes; all-zero while a caller has not resolved it yet.
    #[inline]
    pub fn next_hop_mac(&self) -> MacAddr {
        MacAddr::from_bytes(&self.bytes[..6])
    }

    /// Builds the template, checking the configuration.
    pub fn new(cfg: &EncapConfig) -> Result<Self, EncapConfigError> {
        let ips = match (cfg.local_ip, cfg.remote_ip) {
            (IpAddr::V4(s), IpAddr::V4(d)) => IpPair::V4(s, d),
            (IpAddr::V6(s), IpAddr::V6(d)) => IpPair::V6(s, d),
            _ => return Err(EncapConfigError::MixedFamilies),
        };
        if let Some(v) = cfg.underlay_vlan {
            if v == 0 || v > 4094 {
                return Err(EncapConfigError::BadVlan(v));
            }
        }
        if let Dscp::Fixed(d) = cfg.dscp {
            if d > 63 {
                return Err(EncapConfigError::BadDscp(d));
            }
        }
        if cfg.dst_port == 0 {
            return Err(EncapConfigError::PortZero);
        }
        let ipv6 = matches!(ips, IpPair::V6(..));
        let ip_len = if ipv6 { 40 } else { 20 };
        if usize::from(cfg.underlay_mtu) < ip_len + 16 + 64 {
            return Err(EncapConfigError::MtuTooSmall(cfg.underlay_mtu));
        }
        let mut b = [0u8; MAX_OUTER_LEN];
        b[0..6].copy_from_slice(&cfg.next_hop_mac.0);
        b[6..12].copy_from_slice(&cfg.local_mac.0);
        let mut at = 12;
        if let Some(v) = cfg.underlay_vlan {
            b[at..at + 2].copy_from_slice(&EtherType::VLAN.0.to_be_bytes());
            b[at + 2..at + 4].copy_from_slice(&v.to_be_bytes());
            at += 4;
        }
        let et = if ipv6 {
            EtherType::IPV6
        } else {
            EtherType::IPV4
        };
        b[at..at + 2].copy_from_slice(&et.0.to_be_bytes());
        let ip = at + 2;
        let udp = ip + ip_len;
        let (base_sum, pseudo_sum) = match ips {
            IpPair::V4(s, d) => {
                b[ip] = 0x45;
                b[ip + 9] = IpProtocol::UDP.0;
                b[ip + 12..ip + 16].copy_from_slice(&s.octets());
                b[ip + 16..ip + 20].copy_from_slice(&d.octets());
                (
                    checksum::sum(&b[ip..ip + 20]),
                    checksum::pseudo_header_v4(s, d, IpProtocol::UDP, 0),
                )
            }
            IpPair::V6(s, d) => {
                b[ip] = 0x60;
                b[ip + 6] = IpProtocol::UDP.0;
                b[ip + 8..ip + 24].copy_from_slice(&s.octets());
                b[ip + 24..ip + 40].copy_from_slice(&d.octets());
                (0, checksum::pseudo_header_v6(&s, &d, IpProtocol::UDP, 0))
            }
        };
        b[udp + 2..udp + 4].copy_from_slice(&cfg.dst_port.to_be_bytes());
        let vx = udp + 8;
        let (flags, middle) = match cfg.kind {
            TunnelKind::Vxlan => (vxlan::FLAG_I, [0, 0, 0]),
            TunnelKind::Gpe => (
                vxlan::FLAG_I | vxlan::GPE_FLAG_P,
                [0, 0, GpeNextProtocol::ETHERNET.0],
            ),
            TunnelKind::Gbp {
                policy_id,
                dont_learn,
                policy_applied,
            } => {
                let mut f2 = 0;
                if dont_learn {
                    f2 |= vxlan::GBP_FLAG_D;
                }
                if policy_applied {
                    f2 |= vxlan::GBP_FLAG_A;
                }
                let [p0, p1] = policy_id.to_be_bytes();
                (vxlan::FLAG_I | vxlan::GBP_FLAG_G, [f2, p0, p1])
            }
        };
        b[vx] = flags;
        b[vx + 1..vx + 4].copy_from_slice(&middle);
        let udp_checksum = match cfg.udp_checksum {
            UdpChecksumMode::Default => ipv6,
            UdpChecksumMode::Compute => true,
            UdpChecksumMode::Zero => false,
        };
        // The UDP and tunnel headers as the template has them: source port,
        // length, checksum and VNI are still zero here.
        let udp_base_sum = u64::from(native16(checksum::fold(checksum::combine(
            pseudo_sum,
            checksum::sum(&b[udp..vx + 8]),
        ))));
        let narrow = |v: usize| u8::try_from(v).unwrap_or(u8::MAX);
        // The device takes every checksum of the layout, or none.
        let off = cfg.tx_offload;
        let offload = match (ipv6, udp_checksum) {
            (false, false) => off.ipv4_header,
            (false, true) => off.ipv4_header && off.udp,
            (true, true) => off.udp,
            (true, false) => false,
        };
        let layout = match (ipv6, cfg.underlay_vlan.is_some(), udp_checksum, offload) {
            (false, false, false, false) => Layout::V4,
            (false, false, true, false) => Layout::V4Sum,
            (false, true, false, false) => Layout::V4Tag,
            (false, true, true, false) => Layout::V4TagSum,
            (true, false, false, _) => Layout::V6,
            (true, false, true, false) => Layout::V6Sum,
            (true, true, false, _) => Layout::V6Tag,
            (true, true, true, false) => Layout::V6TagSum,
            (false, false, false, true) => Layout::V4Off,
            (false, false, true, true) => Layout::V4SumOff,
            (false, true, false, true) => Layout::V4TagOff,
            (false, true, true, true) => Layout::V4TagSumOff,
            (true, false, true, true) => Layout::V6SumOff,
            (true, true, true, true) => Layout::V6TagSumOff,
        };
        // The MTU was checked above to hold the outer IP, UDP and tunnel
        // headers, so this does not underflow.
        let max_inner = cfg.underlay_mtu - u16::from(narrow(vx + 8 - ip));
        Ok(EncapTemplate {
            bytes: b,
            len: narrow(vx + 8),
            udp: narrow(udp),
            ipv6,
            layout,
            // At least 64 - 14.
            inner_span: max_inner - ETH_LEN_U16,
            port_span: cfg.src_ports.span(),
            policy: Policy::new(cfg),
            src_ports: cfg.src_ports,
            base_sum,
            udp_base_sum,
            pseudo_sum: u64::from(native16(checksum::fold(pseudo_sum))),
            remote: cfg.remote_ip,
        })
    }

    /// Bytes prepended to every frame (50 for untagged IPv4, 70 for IPv6,
    /// 4 more with an underlay tag).
    pub const fn overhead(&self) -> usize {
        self.len as usize
    }

    /// The largest inner frame that fits the underlay MTU.
    pub const fn max_inner_len(&self) -> usize {
        self.inner_span as usize + ETH_LEN
    }

    /// The inner IP MTU to advertise in a path-MTU error (see
    /// [`crate::pmtu`]) for an inner frame whose Ethernet header (tags
    /// included) is `inner_l2_len` bytes.
    pub fn inner_ip_mtu(&self, inner_l2_len: usize) -> u16 {
        u16::try_from(self.max_inner_len().saturating_sub(inner_l2_len)).unwrap_or(u16::MAX)
    }

    /// The remote VTEP's address.
    pub const fn remote(&self) -> IpAddr {
        self.remote
    }

    /// True for an IPv6 underlay.
    pub const fn is_ipv6(&self) -> bool {
        self.ipv6
    }

    /// Whether the layout carries a UDP checksum (tests).
    #[cfg(test)]
    fn layout_sums(&self) -> bool {
        matches!(
            self.layout,
            Layout::V4Sum
                | Layout::V4TagSum
                | Layout::V6Sum
                | Layout::V6TagSum
                | Layout::V4SumOff
                | Layout::V4TagSumOff
                | Layout::V6SumOff
                | Layout::V6TagSumOff
        )
    }

    /// The checksums this template leaves to the transmitting device
    /// (the request every frame it encapsulates carries), or `None` when
    /// it computes them all (see [`TxChecksumOffload`]).
    pub const fn tx_checksums(&self) -> Option<TxChecksums> {
        let (l2_len, ipv4_header, udp) = match self.layout {
            Layout::V4Off => (14, true, false),
            Layout::V4SumOff => (14, true, true),
            Layout::V4TagOff => (18, true, false),
            Layout::V4TagSumOff => (18, true, true),
            Layout::V6SumOff => (14, false, true),
            Layout::V6TagSumOff => (18, false, true),
            _ => return None,
        };
        Some(TxChecksums {
            l2_len,
            l3_len: if self.ipv6 { 40 } else { 20 },
            ipv6: self.ipv6,
            ipv4_header,
            udp,
        })
    }

    /// Encapsulates `frame` (an Ethernet frame) in place for `vni`, with
    /// `src_port` as the UDP source port (see `hash` for the RFC 7348
    /// flow hash).
    #[inline]
    pub fn encap<F: Frame>(&self, frame: &mut F, vni: u32, src_port: u16) -> Result<(), EncapDrop> {
        // One monomorphic body per header layout, so every offset is a
        // constant and the template copy is a fixed-size move.
        by_layout!(self, encap_as::<F>(frame, vni, src_port))
    }

    /// [`EncapTemplate::encap`] for one header layout: the IP header at
    /// `IP`, `LEN` bytes prepended, an IPv6 underlay when `V6`, a UDP
    /// checksum when `SUM`.
    #[inline(always)]
    fn encap_as<
        F: Frame,
        const IP: usize,
        const LEN: usize,
        const V6: bool,
        const SUM: bool,
        const OFF: bool,
    >(
        &self,
        frame: &mut F,
        vni: u32,
        src_port: u16,
    ) -> Result<(), EncapDrop> {
        let (inner_len, ip_word) = self.check(frame, vni)?;
        let fields = OuterFields {
            vni,
            src_port,
            ip_word,
            inner_len,
        };
        self.write::<F, IP, LEN, V6, SUM, OFF>(frame, fields)
    }

    /// The checks every frame passes before it is written (VNI, inner
    /// length), then its length and its outer inherit word (see
    /// [`Policy`]).
    #[inline(always)]
    fn check<F: Frame>(&self, frame: &F, vni: u32) -> Result<(usize, u64), EncapDrop> {
        if vni > MAX_VNI {
            return Err(EncapDrop::BadVni);
        }
        let inner_len = frame.len();
        // Both bounds in one unsigned compare (a frame shorter than the
        // Ethernet header wraps to a huge value); the error is sorted out
        // off the fast path.
        if inner_len.wrapping_sub(ETH_LEN) > usize::from(self.inner_span) {
            return Err(if inner_len < ETH_LEN {
                EncapDrop::InnerTruncated
            } else {
                EncapDrop::TooBig {
                    max_inner_len: self.inner_span + ETH_LEN_U16,
                }
            });
        }
        let p = &self.policy;
        let inner = inner_word(frame.data()).unwrap_or(p.non_ip);
        Ok((inner_len, p.fixed | (inner & p.mask)))
    }

    #[inline(always)]
    fn write<
        F: Frame,
        const IP: usize,
        const LEN: usize,
        const V6: bool,
        const SUM: bool,
        const OFF: bool,
    >(
        &self,
        frame: &mut F,
        f: OuterFields,
    ) -> Result<(), EncapDrop> {
        // The inner frame's part of the UDP checksum, summed where it lies
        // before the headers go in front of it (it starts at an even offset
        // of the datagram, so its 16-bit words are the datagram's).
        let inner_sum = if SUM && !OFF {
            checksum::sum_native(frame.data())
        } else {
            0
        };
        let out = frame
            .prepend(LEN)
            .map_err(|_: FrameError| EncapDrop::NoHeadroom)?;
        let out: &mut [u8; LEN] = out.first_chunk_mut().ok_or(EncapDrop::NoHeadroom)?;
        let tpl: &[u8; LEN] = self.bytes.first_chunk().ok_or(EncapDrop::NoHeadroom)?;
        *out = *tpl;
        let udp = LEN - 16;
        // inner_len <= max_inner_len < 65535 - 74, so these fit in u16.
        #[allow(clippy::cast_possible_truncation)]
        let udp_len = (f.inner_len + 16) as u16;
        // The VNI's three bytes and the reserved byte after them (zero in
        // every template) as one 32-bit store.
        let vni_word = (f.vni << 8).to_be_bytes();
        out[udp + 12..udp + 16].copy_from_slice(&vni_word);
        out[udp..udp + 2].copy_from_slice(&f.src_port.to_be_bytes());
        out[udp + 4..udp + 6].copy_from_slice(&udp_len.to_be_bytes());
        if V6 {
            let [tos, .., ttl] = f.ip_word.to_le_bytes();
            out[IP] = 0x60 | (tos >> 4);
            out[IP + 1] = tos << 4;
            out[IP + 4..IP + 6].copy_from_slice(&udp_len.to_be_bytes());
            out[IP + 7] = ttl;
        } else {
            let total = udp_len + 20;
            // The word is the header's bytes 1-8 with the total length and
            // identification zero (as the template has them): TOS, flags
            // and TTL in one store, then the length over its zero.
            out[IP + 1..IP + 9].copy_from_slice(&f.ip_word.to_le_bytes());
            out[IP + 2..IP + 4].copy_from_slice(&total.to_be_bytes());
            // The word's little-endian 16-bit lanes are the header's
            // big-endian words 0-4 with bytes 0 and 9 (version and IHL,
            // protocol) zero, so its sum is theirs; the two 32-bit halves
            // add up to it modulo 0xffff, as the fold reduces.
            if !OFF {
                let sum = self.base_sum
                    + u64::from(total)
                    + (f.ip_word & 0xffff_ffff)
                    + (f.ip_word >> 32);
                out[IP + 10..IP + 12].copy_from_slice(&(!checksum::fold(sum)).to_be_bytes());
            }
            // else the template's zero stays, for the device.
        }
        if SUM && OFF {
            // DPDK's transmit contract: the field holds the pseudo-header's
            // sum, folded and not inverted, which the device adds to the
            // datagram's. The length is the IPv6 upper-layer length or the
            // IPv4 UDP length: the same 16-bit value here.
            let sum = self.pseudo_sum + u64::from(native16(udp_len));
            out[udp + 6..udp + 8].copy_from_slice(&checksum::fold(sum).to_ne_bytes());
        } else if SUM {
            // Only the inner frame was summed: the rest of the datagram and
            // the pseudo-header are the template's sum plus the fields
            // written above. The length counts twice (pseudo-header and
            // UDP header); the VNI's three bytes and the reserved byte are
            // two 16-bit words, added as one 32-bit value (the fold reduces
            // modulo 0xffff, where 2^16 is 1). Everything is in native word
            // order, as the inner sum is, so the fold is done once and the
            // result's native bytes are the field's network bytes.
            let sum = self.udp_base_sum
                + inner_sum
                + 2 * u64::from(native16(udp_len))
                + u64::from(native16(f.src_port))
                + u64::from(u32::from_ne_bytes(vni_word));
            let c = !checksum::fold(sum);
            out[udp + 6..udp + 8].copy_from_slice(&(if c == 0 { 0xffff } else { c }).to_ne_bytes());
        }
        if OFF {
            // Constant per layout: a few stores into the frame's metadata.
            frame.request_tx_checksums(TxChecksums {
                l2_len: if IP == 14 { 14 } else { 18 },
                l3_len: if V6 { 40 } else { 20 },
                ipv6: V6,
                ipv4_header: !V6,
                udp: SUM,
            });
        }
        Ok(())
    }

    /// Encapsulates `frame` for `vni` with the UDP source port RFC 7348
    /// section 5 asks for: a hash of the inner flow (Ethernet addresses,
    /// and the IP 5-tuple when there is one), or the NIC's RSS hash when
    /// the frame carries one, mapped into the configured port range.
    #[inline]
    pub fn encap_flow<F: Frame>(&self, frame: &mut F, vni: u32) -> Result<(), EncapDrop> {
        // The layout first, so that the hash and the encapsulation share
        // one body (and the frame's bounds, loaded once).
        by_layout!(self, flow_as::<F>(frame, vni))
    }

    /// [`EncapTemplate::encap_flow`] for one layout (see
    /// [`EncapTemplate::encap_as`]).
    #[inline(always)]
    fn flow_as<
        F: Frame,
        const IP: usize,
        const LEN: usize,
        const V6: bool,
        const SUM: bool,
        const OFF: bool,
    >(
        &self,
        frame: &mut F,
        vni: u32,
    ) -> Result<(), EncapDrop> {
        // The checks and the inner header's fields first, then the hash:
        // both read the frame's first bytes, which are then loaded once.
        let (inner_len, ip_word) = self.check(frame, vni)?;
        // `source_port` with the range's span computed once, in the template.
        let hash = match frame.rss_hash() {
            Some(h) => h,
            None => flow_hash(frame.data()),
        };
        let src_port = self.src_ports.map_with_span(hash, self.port_span);
        let fields = OuterFields {
            vni,
            src_port,
            ip_word,
            inner_len,
        };
        self.write::<F, IP, LEN, V6, SUM, OFF>(frame, fields)
    }

    /// Encapsulates a burst of frames for the same remote and VNI; one
    /// verdict per frame in `verdicts` (which must be at least as long as
    /// `frames`; extra frames are left alone and reported as not done).
    /// Returns how many were encapsulated.
    pub fn encap_burst<F: Frame>(
        &self,
        frames: &mut [F],
        vni: u32,
        src_ports: &[u16],
        verdicts: &mut [Result<(), EncapDrop>],
    ) -> usize {
        // The layout is chosen once per burst, and each frame's body is
        // inlined into its loop.
        by_layout!(self, burst_as::<F>(frames, vni, src_ports, verdicts))
    }

    #[inline(always)]
    fn burst_as<
        F: Frame,
        const IP: usize,
        const LEN: usize,
        const V6: bool,
        const SUM: bool,
        const OFF: bool,
    >(
        &self,
        frames: &mut [F],
        vni: u32,
        src_ports: &[u16],
        verdicts: &mut [Result<(), EncapDrop>],
    ) -> usize {
        let mut done = 0;
        for ((frame, port), verdict) in frames.iter_mut().zip(src_ports).zip(verdicts.iter_mut()) {
            *verdict = self.encap_as::<F, IP, LEN, V6, SUM, OFF>(frame, vni, *port);
            done += usize::from(verdict.is_ok());
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::BufFrame;
    use crate::tunnel::{ParseConfig, TunnelHeader, TunnelStack};
    use crate::wire::udp::{ChecksumStatus, UdpPacket};
    use crate::wire::Ipv4Packet;

    fn v4_cfg() -> EncapConfig {
        EncapConfig::new(
            "192.0.2.1".parse().unwrap(),
            "192.0.2.2".parse().unwrap(),
            MacAddr([2, 0, 0, 0, 0, 1]),
            MacAddr([2, 0, 0, 0, 0, 0xfe]),
        )
    }

    fn v6_cfg() -> EncapConfig {
        EncapConfig::new(
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
            MacAddr([2, 0, 0, 0, 0, 1]),
            MacAddr([2, 0, 0, 0, 0, 0xfe]),
        )
    }

    /// An inner Ethernet/IPv4 frame with the given TOS, TTL and DF.
    fn inner_v4(tos: u8, ttl: u8, df: bool, len: usize) -> std::vec::Vec<u8> {
        let mut f = vec![0u8; len];
        crate::testutil::write_inner_frame(
            &mut f,
            MacAddr([2, 0, 0, 0, 0, 0xa]),
            MacAddr([2, 0, 0, 0, 0, 0xb]),
            &[],
            len,
        );
        let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
        ip.set_dscp_ecn(tos >> 2, tos & 3);
        ip.set_ttl(ttl);
        ip.set_flags_and_frag(df, false, 0);
        ip.fill_checksum();
        f
    }

    fn encap_bytes(t: &EncapTemplate, inner: &[u8], vni: u32, sport: u16) -> std::vec::Vec<u8> {
        let mut storage = vec![0u8; 2048];
        let mut f = BufFrame::with_data(&mut storage[..], 128, inner).unwrap();
        t.encap(&mut f, vni, sport).unwrap();
        f.data().to_vec()
    }

    /// The pseudo-header of an encapsulated frame's UDP datagram (IP
    /// header at `ip`), as bytes.
    fn pseudo_header_from_scratch(out: &[u8], ip: usize, ipv6: bool) -> std::vec::Vec<u8> {
        let udp = ip + if ipv6 { 40 } else { 20 };
        let mut bytes = std::vec::Vec::new();
        if ipv6 {
            bytes.extend_from_slice(&out[ip + 8..ip + 40]);
            bytes.extend_from_slice(&u32::try_from(out.len() - udp).unwrap().to_be_bytes());
            bytes.extend_from_slice(&[0, 0, 0, 17]);
        } else {
            bytes.extend_from_slice(&out[ip + 12..ip + 20]);
            bytes.extend_from_slice(&[0, 17]);
            bytes.extend_from_slice(&u16::try_from(out.len() - udp).unwrap().to_be_bytes());
        }
        bytes
    }

    /// An RFC 1071 sum of `bytes`, 16 bits at a time (an odd last byte
    /// padded with zero), folded and not inverted.
    fn folded_sum_from_scratch(bytes: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        for pair in bytes.chunks(2) {
            acc += u32::from(pair[0]) << 8 | u32::from(pair.get(1).copied().unwrap_or(0));
            acc = (acc & 0xffff) + (acc >> 16);
        }
        u16::try_from(acc).unwrap()
    }

    /// The UDP checksum of an encapsulated frame computed from scratch:
    /// the sum over the pseudo-header and the datagram with its checksum
    /// field zeroed, inverted (zero sent as all ones).
    fn udp_checksum_from_scratch(out: &[u8], ip: usize, ipv6: bool) -> u16 {
        let udp = ip + if ipv6 { 40 } else { 20 };
        let mut bytes = pseudo_header_from_scratch(out, ip, ipv6);
        let mut dgram = out[udp..].to_vec();
        dgram[6] = 0;
        dgram[7] = 0;
        bytes.extend_from_slice(&dgram);
        let c = !folded_sum_from_scratch(&bytes);
        if c == 0 {
            0xffff
        } else {
            c
        }
    }

    /// The pseudo-header's sum of an encapsulated frame from scratch,
    /// folded and not inverted: what DPDK's transmit UDP checksum offload
    /// wants in the field.
    fn pseudo_sum_from_scratch(out: &[u8], ip: usize, ipv6: bool) -> u16 {
        folded_sum_from_scratch(&pseudo_header_from_scratch(out, ip, ipv6))
    }

    #[test]
    fn offloaded_checksums_leave_the_device_contract_and_complete_to_software() {
        // Every layout, kind and checksum mode, with each offload hint: a
        // template leaves either everything of its layout to the device or
        // nothing; what it leaves is a zero IPv4 header checksum and the
        // pseudo-header's sum in the UDP field; completed as a device
        // would, the frame is byte for byte what the template writes
        // without the hint.
        let hints = [
            TxChecksumOffload::NONE,
            TxChecksumOffload {
                ipv4_header: true,
                udp: false,
            },
            TxChecksumOffload {
                ipv4_header: false,
                udp: true,
            },
            TxChecksumOffload {
                ipv4_header: true,
                udp: true,
            },
        ];
        let kinds = [
            TunnelKind::Vxlan,
            TunnelKind::Gpe,
            TunnelKind::Gbp {
                policy_id: 7,
                dont_learn: false,
                policy_applied: true,
            },
        ];
        let mut offloaded = 0;
        for base in [v4_cfg(), v6_cfg()] {
            for vlan in [None, Some(100)] {
                for mode in [
                    UdpChecksumMode::Default,
                    UdpChecksumMode::Compute,
                    UdpChecksumMode::Zero,
                ] {
                    for kind in kinds {
                        let plain = EncapConfig {
                            kind,
                            underlay_vlan: vlan,
                            udp_checksum: mode,
                            ..base
                        };
                        let t0 = EncapTemplate::new(&plain).unwrap();
                        assert_eq!(t0.tx_checksums(), None);
                        for hint in hints {
                            let t = EncapTemplate::new(&EncapConfig {
                                tx_offload: hint,
                                ..plain
                            })
                            .unwrap();
                            let ip = if vlan.is_some() { 18 } else { 14 };
                            let ipv6 = t.is_ipv6();
                            let sums = t0.layout_sums();
                            // All of the layout's checksums, or none.
                            let expect = (!ipv6 || sums)
                                && (ipv6 || hint.ipv4_header)
                                && (!sums || hint.udp);
                            assert_eq!(
                                t.tx_checksums().is_some(),
                                expect,
                                "v6 {ipv6} sums {sums} {hint:?}"
                            );
                            for len in [14, 15, 60, 61, 64, 143, 1400, 1401] {
                                let mut inner = inner_v4(0x2a, 9, true, len.max(64));
                                inner.truncate(len);
                                for (i, b) in inner.iter_mut().enumerate().skip(42) {
                                    *b = u8::try_from((i * 37 + 3) % 256).unwrap();
                                }
                                let (vni, sport) = (0xab_cdef, 65535 - u16::try_from(len).unwrap());
                                let want = encap_bytes(&t0, &inner, vni, sport);
                                let mut storage = vec![0u8; 2048];
                                let mut f =
                                    BufFrame::with_data(&mut storage[..], 128, &inner).unwrap();
                                t.encap(&mut f, vni, sport).unwrap();
                                assert_eq!(f.tx_checksums(), t.tx_checksums());
                                let Some(req) = f.tx_checksums() else {
                                    assert_eq!(f.data(), &want[..]);
                                    continue;
                                };
                                offloaded += 1;
                                assert_eq!(
                                    (usize::from(req.l2_len), req.l3_len, req.ipv6),
                                    (ip, if ipv6 { 40 } else { 20 }, ipv6)
                                );
                                assert_eq!(req.ipv4_header, !ipv6);
                                assert_eq!(req.udp, sums);
                                let mut got = f.data().to_vec();
                                if !ipv6 {
                                    assert_eq!(&got[ip + 10..ip + 12], &[0, 0]);
                                }
                                let udp = t.overhead() - 16;
                                if sums {
                                    assert_eq!(
                                        u16::from_be_bytes([got[udp + 6], got[udp + 7]]),
                                        pseudo_sum_from_scratch(&got, ip, ipv6),
                                        "the pseudo-header's sum, {hint:?} len {len}"
                                    );
                                }
                                // Only the checksum fields differ.
                                let mut masked = want.clone();
                                if !ipv6 {
                                    masked[ip + 10..ip + 12].fill(0);
                                }
                                if sums {
                                    masked[udp + 6..udp + 8]
                                        .copy_from_slice(&got[udp + 6..udp + 8]);
                                }
                                assert_eq!(got, masked);
                                assert!(complete_tx_checksums(&mut got, req));
                                assert_eq!(got, want, "{hint:?} vlan {vlan:?} {mode:?} len {len}");
                            }
                        }
                    }
                }
            }
        }
        assert!(offloaded > 100, "{offloaded}");
    }

    #[test]
    fn completing_refuses_short_frames() {
        let req = TxChecksums {
            l2_len: 14,
            l3_len: 40,
            ipv6: true,
            ipv4_header: false,
            udp: true,
        };
        let mut short = [0u8; 60];
        assert!(!complete_tx_checksums(&mut short, req));
        // A UDP length beyond the frame.
        let mut f = [0u8; 80];
        f[54 + 4..54 + 6].copy_from_slice(&100u16.to_be_bytes());
        let before = f;
        assert!(!complete_tx_checksums(&mut f, req));
        assert_eq!(f, before);
    }

    #[test]
    fn udp_checksum_matches_a_sum_from_scratch() {
        // The template precomputes the fixed part of the checksum and adds
        // the per-frame fields; check it against the whole datagram for
        // every layout and header kind, odd and even lengths, extreme VNIs
        // and ports.
        let kinds = [
            TunnelKind::Vxlan,
            TunnelKind::Gpe,
            TunnelKind::Gbp {
                policy_id: 0xbeef,
                dont_learn: true,
                policy_applied: false,
            },
        ];
        for base in [v4_cfg(), v6_cfg()] {
            for vlan in [None, Some(100)] {
                for kind in kinds {
                    let t = EncapTemplate::new(&EncapConfig {
                        kind,
                        underlay_vlan: vlan,
                        udp_checksum: UdpChecksumMode::Compute,
                        ..base
                    })
                    .unwrap();
                    let ip = if vlan.is_some() { 18 } else { 14 };
                    for len in [14, 15, 60, 61, 64, 127, 128, 129, 143, 1400, 1401] {
                        let mut inner = inner_v4(0, 64, true, len.max(64));
                        inner.truncate(len);
                        for (i, b) in inner.iter_mut().enumerate().skip(42) {
                            *b = u8::try_from((i * 151 + 7) % 256).unwrap();
                        }
                        for (vni, sport) in [(0, 0), (1, 1), (0xab_cdef, 49152), (MAX_VNI, 65535)] {
                            let out = encap_bytes(&t, &inner, vni, sport);
                            let udp = t.overhead() - 16;
                            let field = u16::from_be_bytes([out[udp + 6], out[udp + 7]]);
                            assert_eq!(
                                field,
                                udp_checksum_from_scratch(&out, ip, t.is_ipv6()),
                                "v6 {} vlan {vlan:?} {kind:?} len {len} vni {vni} port {sport}",
                                t.is_ipv6()
                            );
                        }
                    }
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn inner_ip_fast_path_agrees(
            et in proptest::prop_oneof![proptest::strategy::Just(0x0800u16), proptest::strategy::Just(0x86dd), proptest::strategy::Just(0x8100), proptest::prelude::any::<u16>()],
            first in proptest::prop_oneof![proptest::strategy::Just(0x45u8), proptest::strategy::Just(0x60), proptest::prelude::any::<u8>()],
            rest in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..60),
        ) {
            let mut f = vec![2u8; 12];
            f.extend_from_slice(&et.to_be_bytes());
            f.push(first);
            f.extend_from_slice(&rest);
            proptest::prop_assert_eq!(inner_ip(&f), inner_ip_general(&f));
            proptest::prop_assert_eq!(
                inner_word(&f).map(|w| w & INHERITABLE),
                inner_ip_general(&f).map(InnerIp::word)
            );
        }
    }

    #[test]
    fn ipv4_outer_fields() {
        let t = EncapTemplate::new(&v4_cfg()).unwrap();
        assert_eq!(t.overhead(), 50);
        let inner = inner_v4(0xb8 | 2, 9, true, 100);
        let out = encap_bytes(&t, &inner, 0xabcdef, 50000);
        let s = TunnelStack::parse(&out, &ParseConfig::default()).unwrap();
        let l = s.layer(0).unwrap();
        assert_eq!(
            (l.vni(), l.src_port(), l.dst_port(), l.flags()),
            (0xabcdef, 50000, 4789, 0x08)
        );
        assert_eq!(l.raw_header(), [0x08, 0, 0, 0, 0xab, 0xcd, 0xef, 0]);
        assert_eq!(s.inner_frame().unwrap(), &inner[..]);
        let ip = Ipv4Packet::new_checked(&out[14..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(usize::from(ip.total_len()), 20 + 8 + 8 + 100);
        assert_eq!(ip.ttl(), 64);
        assert_eq!(ip.dscp(), 0xb8 >> 2, "DSCP inherited");
        assert_eq!(ip.ecn(), 2, "ECT(0) copied");
        assert!(ip.dont_frag());
        let udp = UdpPacket::new_checked(&out[34..]).unwrap();
        assert_eq!(udp.checksum(), 0, "zero UDP checksum over IPv4 by default");
        assert_eq!(usize::from(udp.len()), 116);
        assert_eq!(&out[0..6], &[2, 0, 0, 0, 0, 0xfe]);
    }

    #[test]
    fn ipv6_outer_fields_and_checksum() {
        let t = EncapTemplate::new(&v6_cfg()).unwrap();
        assert_eq!(t.overhead(), 70);
        let inner = inner_v4(0x03, 33, false, 200);
        let out = encap_bytes(&t, &inner, 7, 60000);
        let s = TunnelStack::parse(&out, &ParseConfig::default()).unwrap();
        let l = s.layer(0).unwrap();
        assert!(l.is_ipv6());
        let udp = UdpPacket::new_checked(&out[54..]).unwrap();
        assert_ne!(udp.checksum(), 0);
        assert_eq!(udp.checksum_status(&l.ips()), ChecksumStatus::Valid);
        assert_eq!(out[14 + 1] >> 4, 3, "CE copied into the traffic class");
        // Zero-checksum mode for RFC 6935 peers.
        let t0 = EncapTemplate::new(&EncapConfig {
            udp_checksum: UdpChecksumMode::Zero,
            ..v6_cfg()
        })
        .unwrap();
        let out0 = encap_bytes(&t0, &inner, 7, 60000);
        assert_eq!(UdpPacket::new_checked(&out0[54..]).unwrap().checksum(), 0);
    }

    #[test]
    fn ttl_dscp_df_policies() {
        let inner = inner_v4(0x28, 17, false, 80);
        let cfg = EncapConfig {
            ttl: Ttl::Inherit { default: 5 },
            dscp: Dscp::Fixed(46),
            df: DfPolicy::Inherit,
            underlay_vlan: Some(300),
            udp_checksum: UdpChecksumMode::Compute,
            ..v4_cfg()
        };
        let t = EncapTemplate::new(&cfg).unwrap();
        assert_eq!(t.overhead(), 54);
        let out = encap_bytes(&t, &inner, 1, 1);
        let s = TunnelStack::parse(&out, &ParseConfig::default()).unwrap();
        let l = s.layer(0).unwrap();
        assert_eq!(l.outer_vids(), &[300]);
        let ip = Ipv4Packet::new_checked(&out[18..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!((ip.ttl(), ip.dscp(), ip.dont_frag()), (17, 46, false));
        let udp = UdpPacket::new_checked(&out[38..]).unwrap();
        assert_eq!(udp.checksum_status(&l.ips()), ChecksumStatus::Valid);
        // A non-IP inner frame: TTL default, DSCP fixed, DF clear.
        let mut arp = vec![0u8; 60];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        let out = encap_bytes(&t, &arp, 1, 1);
        let ip = Ipv4Packet::new_checked(&out[18..]).unwrap();
        assert_eq!((ip.ttl(), ip.ecn(), ip.dont_frag()), (5, 0, false));
    }

    #[test]
    fn gpe_and_gbp_headers() {
        let t = EncapTemplate::new(&EncapConfig {
            kind: TunnelKind::Gpe,
            dst_port: 4790,
            ..v4_cfg()
        })
        .unwrap();
        let out = encap_bytes(&t, &inner_v4(0, 64, true, 64), 42, 1000);
        let s = TunnelStack::parse(&out, &ParseConfig::default()).unwrap();
        assert!(
            matches!(s.layer(0).unwrap().header(), TunnelHeader::Gpe(g) if g.vni == 42 && g.next_protocol == GpeNextProtocol::ETHERNET)
        );
        let kind = TunnelKind::Gbp {
            policy_id: 0x1234,
            dont_learn: true,
            policy_applied: false,
        };
        let t = EncapTemplate::new(&EncapConfig { kind, ..v4_cfg() }).unwrap();
        let out = encap_bytes(&t, &inner_v4(0, 64, true, 64), 42, 1000);
        let s = TunnelStack::parse(&out, &ParseConfig::default().with_gbp(true)).unwrap();
        assert!(
            matches!(s.layer(0).unwrap().header(), TunnelHeader::Gbp(g) if g.policy_id == Some(0x1234) && g.dont_learn)
        );
    }

    #[test]
    fn drops_and_config_errors() {
        let t = EncapTemplate::new(&v4_cfg()).unwrap();
        // 1500 - 20 (IPv4) - 8 (UDP) - 8 (VXLAN): an inner frame of 1464
        // bytes, i.e. an inner IP MTU of 1450 behind a 14-byte header.
        assert_eq!(t.max_inner_len(), 1464);
        let mut storage = vec![0u8; 4096];
        let mut f = BufFrame::with_data(&mut storage[..], 128, &[0u8; 1465]).unwrap();
        assert_eq!(
            t.encap(&mut f, 1, 1),
            Err(EncapDrop::TooBig {
                max_inner_len: 1464
            })
        );
        let mut f = BufFrame::with_data(&mut storage[..], 10, &[0u8; 100]).unwrap();
        assert_eq!(t.encap(&mut f, 1, 1), Err(EncapDrop::NoHeadroom));
        let mut f = BufFrame::with_data(&mut storage[..], 128, &[0u8; 13]).unwrap();
        assert_eq!(t.encap(&mut f, 1, 1), Err(EncapDrop::InnerTruncated));
        let mut f = BufFrame::with_data(&mut storage[..], 128, &[0u8; 64]).unwrap();
        assert_eq!(t.encap(&mut f, 1 << 24, 1), Err(EncapDrop::BadVni));
        let mixed = EncapConfig {
            remote_ip: "2001:db8::2".parse().unwrap(),
            ..v4_cfg()
        };
        assert_eq!(
            EncapTemplate::new(&mixed),
            Err(EncapConfigError::MixedFamilies)
        );
        assert_eq!(
            EncapTemplate::new(&EncapConfig {
                underlay_vlan: Some(4095),
                ..v4_cfg()
            }),
            Err(EncapConfigError::BadVlan(4095))
        );
        assert_eq!(
            EncapTemplate::new(&EncapConfig {
                dscp: Dscp::Fixed(64),
                ..v4_cfg()
            }),
            Err(EncapConfigError::BadDscp(64))
        );
        assert_eq!(
            EncapTemplate::new(&EncapConfig {
                underlay_mtu: 99,
                ..v4_cfg()
            }),
            Err(EncapConfigError::MtuTooSmall(99))
        );
    }

    #[test]
    fn flow_source_ports() {
        let range = SourcePortRange::new(50000, 50099).unwrap();
        let t = EncapTemplate::new(&EncapConfig {
            src_ports: range,
            ..v4_cfg()
        })
        .unwrap();
        let sport = |inner: &[u8], rss: Option<u32>| {
            let mut storage = vec![0u8; 2048];
            let mut f = BufFrame::with_data(&mut storage[..], 128, inner).unwrap();
            f.set_rss_hash(rss);
            t.encap_flow(&mut f, 1).unwrap();
            u16::from_be_bytes([f.data()[34], f.data()[35]])
        };
        let a = inner_v4(0, 64, true, 100);
        let mut b = a.clone();
        b[14 + 20] ^= 0x55; // another inner source port: another flow
        let pa = sport(&a, None);
        assert_eq!(pa, sport(&a, None), "same flow, same port");
        assert!((50000..=50099).contains(&pa));
        let many: std::collections::BTreeSet<u16> = (0..64u8)
            .map(|i| {
                let mut f = a.clone();
                f[14 + 21] = i;
                sport(&f, None)
            })
            .collect();
        assert!(
            many.len() > 20,
            "flows spread over the range: {}",
            many.len()
        );
        assert_ne!(sport(&b, None), pa);
        assert_eq!(
            sport(&a, Some(7)),
            sport(&b, Some(7)),
            "the NIC's hash wins"
        );
    }

    #[test]
    fn burst() {
        let t = EncapTemplate::new(&v4_cfg()).unwrap();
        let mut bufs = [[0u8; 256]; 3];
        let [a, b, c] = &mut bufs;
        let mut frames = [
            BufFrame::with_data(&mut a[..], 128, &[1u8; 64]).unwrap(),
            BufFrame::with_data(&mut b[..], 0, &[2u8; 64]).unwrap(),
            BufFrame::with_data(&mut c[..], 128, &[3u8; 64]).unwrap(),
        ];
        let mut verdicts = [Ok(()); 3];
        assert_eq!(t.encap_burst(&mut frames, 5, &[1, 2, 3], &mut verdicts), 2);
        assert_eq!(verdicts[1], Err(EncapDrop::NoHeadroom));
        assert_eq!(frames[2].len(), 114);
    }
}
