//! The tunnel-stack parser: every VXLAN layer of a frame and the inner
//! Ethernet frame, found in one pass without copying.
//!
//! Given a frame as it arrives on the underlay and a [`ParseConfig`], the
//! parser walks outer Ethernet (up to two VLAN tags), IPv4 or IPv6 (with
//! extension headers), UDP and the VXLAN/GPE/GBP header, then the inner
//! Ethernet header, and follows nested tunnels up to the configured depth.
//! The result is a [`TunnelStack`]: offsets and parsed headers per layer,
//! borrowing the frame.
//!
//! Three outcomes, kept apart on purpose:
//! * VXLAN: `Ok` with one or more layers;
//! * not VXLAN (not IP, not UDP, another port, `I` flag clear, a non-first
//!   IPv4 fragment): `Ok` with zero layers. This is not an error; a VTEP
//!   hands such frames to its host stack;
//! * malformed, or VXLAN that must be dropped: `Err` with a [`ParseDrop`]
//!   naming the reason, for a counter.
//!
//! ```
//! use vxlan_core::tunnel::{ParseConfig, ParseDrop, TunnelStack};
//! use vxlan_core::wire::ReservedBitsPolicy;
//!
//! let frame = vxlan_core::testutil::sample_vxlan_ipv4_frame();
//! let stack = TunnelStack::parse(&frame, &ParseConfig::default()).unwrap();
//! let layer = stack.layer(0).unwrap();
//! assert_eq!(layer.vni(), 100);
//! assert_eq!(layer.src_addr().to_string(), "192.0.2.1");
//! assert_eq!(layer.dst_port(), 4789);
//!
//! // Set a reserved bit: ignored by default, a named drop when strict.
//! let mut odd = frame.clone();
//! odd[layer.header_offset() + 1] = 0x80;
//! assert!(TunnelStack::parse(&odd, &ParseConfig::default()).is_ok());
//! let strict = ParseConfig::default().with_reserved_bits(ReservedBitsPolicy::Strict);
//! assert_eq!(TunnelStack::parse(&odd, &strict).unwrap_err(), ParseDrop::ReservedBits);
//! ```

use core::fmt;
use core::net::{IpAddr, Ipv4Addr};

use crate::wire::ethernet::{HEADER_LEN as ETH_HEADER_LEN, VLAN_TAG_LEN};
use crate::wire::ipv6::HEADER_LEN as IPV6_HEADER_LEN;
use crate::wire::udp::HEADER_LEN as UDP_HEADER_LEN;
use crate::wire::vxlan::{self, HEADER_LEN as VXLAN_LEN};
use crate::wire::{
    read_u16, EtherType, GbpRepr, GpeNextProtocol, GpeRepr, IpPair, IpProtocol, Ipv6Packet,
    L2Header, MacAddr, ReservedBitsPolicy, VxlanHeader, VxlanRepr, MAX_VLAN_TAGS,
};

/// The most tunnel layers a [`TunnelStack`] holds.
pub const MAX_LAYERS: usize = 4;
/// The most UDP ports of each kind a [`ParseConfig`] holds.
pub const MAX_PORTS: usize = 4;

/// Why a frame was dropped by the parser. Each reason is a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParseDrop {
    /// Shorter than an Ethernet header.
    EthernetTruncated,
    /// More than two VLAN tags on the outer frame.
    TooManyVlanTags,
    /// IPv4 header truncated, IHL below 5, or lengths inconsistent.
    Ipv4Malformed,
    /// IPv6 header truncated, payload length past the frame, or a broken
    /// extension-header chain.
    Ipv6Malformed,
    /// A fragment of a datagram to a tunnel port (RFC 7348 section 4.3:
    /// VTEPs must not fragment, so fragments are dropped, not reassembled).
    Fragment,
    /// UDP header truncated, or its length below 8 or past the IP payload.
    UdpMalformed,
    /// A datagram to a tunnel port too short for the 8-byte header.
    TunnelHeaderTruncated,
    /// Reserved bits set under [`ReservedBitsPolicy::Strict`].
    ReservedBits,
    /// A VXLAN-GPE header with a version other than 0.
    GpeBadVersion,
    /// The inner frame is shorter than an Ethernet header.
    InnerTruncated,
    /// More than two VLAN tags on the inner frame.
    InnerTooManyVlanTags,
}

impl ParseDrop {
    /// Every reason, for iterating counters.
    pub const ALL: [ParseDrop; 11] = [
        ParseDrop::EthernetTruncated,
        ParseDrop::TooManyVlanTags,
        ParseDrop::Ipv4Malformed,
        ParseDrop::Ipv6Malformed,
        ParseDrop::Fragment,
        ParseDrop::UdpMalformed,
        ParseDrop::TunnelHeaderTruncated,
        ParseDrop::ReservedBits,
        ParseDrop::GpeBadVersion,
        ParseDrop::InnerTruncated,
        ParseDrop::InnerTooManyVlanTags,
    ];

    /// A short stable name for counters and logs.
    pub const fn as_str(&self) -> &'static str {
        match self {
            ParseDrop::EthernetTruncated => "ethernet_truncated",
            ParseDrop::TooManyVlanTags => "too_many_vlan_tags",
            ParseDrop::Ipv4Malformed => "ipv4_malformed",
            ParseDrop::Ipv6Malformed => "ipv6_malformed",
            ParseDrop::Fragment => "fragment",
            ParseDrop::UdpMalformed => "udp_malformed",
            ParseDrop::TunnelHeaderTruncated => "tunnel_header_truncated",
            ParseDrop::ReservedBits => "reserved_bits",
            ParseDrop::GpeBadVersion => "gpe_bad_version",
            ParseDrop::InnerTruncated => "inner_truncated",
            ParseDrop::InnerTooManyVlanTags => "inner_too_many_vlan_tags",
        }
    }

    /// The reason's index in [`ParseDrop::ALL`], for counter arrays.
    pub const fn index(&self) -> usize {
        *self as usize
    }
}

impl fmt::Display for ParseDrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ParseDrop {}

/// Why a [`ParseConfig`] could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// More than [`MAX_PORTS`] ports of one kind.
    TooManyPorts,
    /// Port 0 cannot carry tunnels.
    PortZero,
    /// The port is already configured (as VXLAN or as GPE).
    DuplicatePort(u16),
    /// Depth must be between 1 and [`MAX_LAYERS`].
    DepthOutOfRange(u8),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::TooManyPorts => {
                write!(f, "at most {MAX_PORTS} UDP ports of each tunnel kind")
            }
            ConfigError::PortZero => f.write_str("UDP port 0 cannot carry VXLAN"),
            ConfigError::DuplicatePort(p) => write!(f, "UDP port {p} is configured twice"),
            ConfigError::DepthOutOfRange(d) => {
                write!(f, "tunnel depth {d} is outside 1..={MAX_LAYERS}")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ConfigError {}

/// What the parser treats as a tunnel, and how strictly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseConfig {
    vxlan_ports: [u16; MAX_PORTS],
    vxlan_port_count: u8,
    gpe_ports: [u16; MAX_PORTS],
    gpe_port_count: u8,
    reserved_bits: ReservedBitsPolicy,
    gbp: bool,
    max_depth: u8,
    /// What the fast path compares, derived from the fields above by
    /// [`ParseConfig::refresh`] whenever one of them changes.
    fast: FastTemplate,
}

impl Default for ParseConfig {
    /// VXLAN on 4789, GPE on 4790, reserved bits ignored, no GBP, one layer.
    fn default() -> Self {
        ParseConfig {
            vxlan_ports: [vxlan::PORT; MAX_PORTS],
            vxlan_port_count: 1,
            gpe_ports: [vxlan::GPE_PORT; MAX_PORTS],
            gpe_port_count: 1,
            reserved_bits: ReservedBitsPolicy::Ignore,
            gbp: false,
            max_depth: 1,
            fast: FastTemplate::NEVER,
        }
        .refresh()
    }
}

impl ParseConfig {
    /// A configuration with no ports at all; add them with
    /// [`ParseConfig::with_vxlan_port`] and [`ParseConfig::with_gpe_port`].
    pub const fn empty() -> Self {
        ParseConfig {
            vxlan_ports: [0; MAX_PORTS],
            vxlan_port_count: 0,
            gpe_ports: [0; MAX_PORTS],
            gpe_port_count: 0,
            reserved_bits: ReservedBitsPolicy::Ignore,
            gbp: false,
            max_depth: 1,
            fast: FastTemplate::NEVER,
        }
        .refresh()
    }

    /// Recomputes the fast path's template from the other fields; every
    /// constructor and builder ends with it.
    const fn refresh(mut self) -> Self {
        self.fast = FastTemplate::new(&self);
        self
    }

    fn check_new_port(&self, port: u16) -> Result<(), ConfigError> {
        if port == 0 {
            return Err(ConfigError::PortZero);
        }
        if self.vxlan_ports().contains(&port) || self.gpe_ports().contains(&port) {
            return Err(ConfigError::DuplicatePort(port));
        }
        Ok(())
    }

    /// Adds a UDP port that carries VXLAN (8472 for old Linux peers, say).
    pub fn with_vxlan_port(mut self, port: u16) -> Result<Self, ConfigError> {
        self.check_new_port(port)?;
        let n = usize::from(self.vxlan_port_count);
        *self
            .vxlan_ports
            .get_mut(n)
            .ok_or(ConfigError::TooManyPorts)? = port;
        self.vxlan_port_count += 1;
        Ok(self.refresh())
    }

    /// Adds a UDP port that carries VXLAN-GPE.
    pub fn with_gpe_port(mut self, port: u16) -> Result<Self, ConfigError> {
        self.check_new_port(port)?;
        let n = usize::from(self.gpe_port_count);
        *self.gpe_ports.get_mut(n).ok_or(ConfigError::TooManyPorts)? = port;
        self.gpe_port_count += 1;
        pad_ports(&mut self.gpe_ports, self.gpe_port_count);
        Ok(self.refresh())
    }

    /// Sets the reserved-bit policy.
    pub const fn with_reserved_bits(mut self, policy: ReservedBitsPolicy) -> Self {
        self.reserved_bits = policy;
        self.refresh()
    }

    /// Reads headers on VXLAN ports as VXLAN-GBP.
    pub const fn with_gbp(mut self, gbp: bool) -> Self {
        self.gbp = gbp;
        self.refresh()
    }

    /// How many nested tunnels to follow, 1 to [`MAX_LAYERS`].
    pub fn with_max_depth(mut self, depth: u8) -> Result<Self, ConfigError> {
        if depth == 0 || usize::from(depth) > MAX_LAYERS {
            return Err(ConfigError::DepthOutOfRange(depth));
        }
        self.max_depth = depth;
        Ok(self.refresh())
    }

    /// The VXLAN ports.
    pub fn vxlan_ports(&self) -> &[u16] {
        &self.vxlan_ports[..usize::from(self.vxlan_port_count)]
    }

    /// The GPE ports.
    pub fn gpe_ports(&self) -> &[u16] {
        &self.gpe_ports[..usize::from(self.gpe_port_count)]
    }

    /// The reserved-bit policy.
    pub const fn reserved_bits(&self) -> ReservedBitsPolicy {
        self.reserved_bits
    }

    /// True when VXLAN ports carry GBP.
    pub const fn gbp(&self) -> bool {
        self.gbp
    }

    /// The deepest nesting followed.
    pub const fn max_depth(&self) -> u8 {
        self.max_depth
    }

    /// What a datagram to `port` is taken for, if anything. Unused port
    /// slots repeat a configured port (or hold 0 when none is), so the
    /// whole array is compared without a length check.
    #[inline(always)]
    fn kind_of(&self, port: u16) -> Option<Kind> {
        if port == 0 {
            return None;
        }
        if self
            .vxlan_ports
            .iter()
            .fold(false, |hit, &p| hit | (p == port))
        {
            Some(if self.gbp { Kind::Gbp } else { Kind::Vxlan })
        } else if self
            .gpe_ports
            .iter()
            .fold(false, |hit, &p| hit | (p == port))
        {
            Some(Kind::Gpe)
        } else {
            None
        }
    }
}

/// Fills unused slots with the first port so a match on them is a match on
/// a configured port.
fn pad_ports(ports: &mut [u16; MAX_PORTS], count: u8) {
    let n = usize::from(count);
    if n > 0 {
        let first = ports[0];
        ports[n..].fill(first);
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Vxlan,
    Gpe,
    Gbp,
}

/// The parsed tunnel header of one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TunnelHeader {
    /// Plain VXLAN.
    Vxlan(VxlanRepr),
    /// VXLAN-GPE.
    Gpe(GpeRepr),
    /// VXLAN-GBP.
    Gbp(GbpRepr),
}

impl TunnelHeader {
    /// The VNI.
    pub const fn vni(&self) -> u32 {
        match self {
            TunnelHeader::Vxlan(r) => r.vni,
            TunnelHeader::Gpe(r) => r.vni,
            TunnelHeader::Gbp(r) => r.vni,
        }
    }

    /// True when Ethernet follows the header.
    pub fn carries_ethernet(&self) -> bool {
        match self {
            TunnelHeader::Gpe(r) => r.next_protocol == GpeNextProtocol::ETHERNET,
            _ => true,
        }
    }
}

/// One tunnel layer: where each outer header starts and the raw tunnel
/// header. Offsets are from the start of the whole frame. Kept small and
/// flat so a parse writes little; fields are decoded on access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Layer {
    eth: u32,
    ip: u32,
    udp: u32,
    end: u32,
    header: [u8; VXLAN_LEN],
    /// The UDP source port, kept as a value: reading it then needs no
    /// bounds check where the fast and general paths' results meet.
    src_port: u16,
    outer_vids: [u16; MAX_VLAN_TAGS],
    outer_tag_count: u8,
    ipv6: bool,
    kind: u8,
}

const KIND_VXLAN: u8 = 0;
const KIND_GPE: u8 = 1;
const KIND_GBP: u8 = 2;

/// The inner Ethernet frame found under the last layer, with access to its
/// bytes.
#[derive(Debug, Clone, Copy)]
pub struct InnerFrame<'a> {
    buf: &'a [u8],
    /// The 14 bytes of addresses and first EtherType, borrowed from `buf`
    /// as an array so reading them needs no bounds check.
    head: &'a [u8; ETH_HEADER_LEN],
    offset: u32,
    end: u32,
    ethertype: u16,
    vids: [u16; MAX_VLAN_TAGS],
    tag_count: u8,
}

impl<'a> InnerFrame<'a> {
    /// Offset of the inner Ethernet header in the frame.
    #[inline]
    pub const fn offset(&self) -> usize {
        self.offset as usize
    }
    /// End of the inner frame (the end of the carrying UDP datagram).
    #[inline]
    pub const fn end(&self) -> usize {
        self.end as usize
    }
    /// The inner frame's bytes.
    #[inline]
    pub fn bytes(&self) -> &'a [u8] {
        &self.buf[self.offset()..self.end()]
    }
    /// Inner destination MAC.
    #[inline]
    pub fn dst_addr(&self) -> MacAddr {
        MacAddr::from_u64(be_u64(self.head, 0) >> 16)
    }
    /// Inner source MAC.
    #[inline]
    pub fn src_addr(&self) -> MacAddr {
        MacAddr::from_u64(be_u64(self.head, ETH_HEADER_LEN - 8) >> 16)
    }
    /// The EtherType after any inner VLAN tags.
    #[inline]
    pub const fn ethertype(&self) -> EtherType {
        EtherType(self.ethertype)
    }
    /// Inner VLAN IDs, outermost first.
    #[inline]
    pub fn vids(&self) -> &[u16] {
        &self.vids[..usize::from(self.tag_count)]
    }
    /// Length of the inner Ethernet header, tags included.
    #[inline]
    pub const fn header_len(&self) -> usize {
        ETH_HEADER_LEN + self.tag_count as usize * VLAN_TAG_LEN
    }
    /// The full inner Ethernet header (TPIDs and priorities included).
    #[inline]
    pub fn l2(&self) -> L2Header {
        // The parser validated these bytes, so this cannot fail; fall back
        // to an untagged view rather than panic.
        L2Header::parse(self.bytes()).unwrap_or_else(|_| {
            L2Header::untagged(self.src_addr(), self.dst_addr(), self.ethertype())
        })
    }
}

/// The big-endian `u64` at `at` of the inner header's 14 bytes. An
/// address read this way is one 8-byte load and a byte swap, and a caller
/// that wants it as a number ([`MacAddr::to_u64`]) gets the shifted word
/// back without the bytes being taken apart and put together again.
#[inline(always)]
fn be_u64(head: &[u8; ETH_HEADER_LEN], at: usize) -> u64 {
    match head.get(at..).and_then(<[u8]>::first_chunk) {
        Some(&w) => u64::from_be_bytes(w),
        None => 0,
    }
}

/// Every tunnel layer of a frame, outermost first, and the inner frame.
#[derive(Debug, Clone, Copy)]
pub struct TunnelStack<'a> {
    buf: &'a [u8],
    /// The outermost layer (meaningful when `depth > 0`).
    first: Layer,
    /// Nested layers, allocated in place only when a frame has them, so
    /// the common one-layer parse writes one discriminant, not 96 bytes.
    nested: Option<[Layer; MAX_LAYERS - 1]>,
    depth: u8,
    inner_tag_count: u8,
    has_inner: bool,
    inner_ethertype: u16,
    inner_vids: [u16; MAX_VLAN_TAGS],
}

/// One layer of a [`TunnelStack`], with access to the frame's bytes.
#[derive(Debug, Clone, Copy)]
pub struct LayerView<'a> {
    buf: &'a [u8],
    layer: &'a Layer,
}

impl<'a> LayerView<'a> {
    /// Offset of the outer Ethernet header.
    #[inline]
    pub fn ethernet_offset(&self) -> usize {
        self.layer.eth as usize
    }
    /// Offset of the outer IP header.
    #[inline]
    pub fn ip_offset(&self) -> usize {
        self.layer.ip as usize
    }
    /// Offset of the UDP header.
    #[inline]
    pub fn udp_offset(&self) -> usize {
        self.layer.udp as usize
    }
    /// Offset of the VXLAN/GPE/GBP header.
    #[inline]
    pub fn header_offset(&self) -> usize {
        self.udp_offset() + UDP_HEADER_LEN
    }
    /// Offset of what follows the tunnel header (the inner frame).
    #[inline]
    pub fn payload_offset(&self) -> usize {
        self.header_offset() + VXLAN_LEN
    }
    /// End of the UDP datagram.
    #[inline]
    pub fn end(&self) -> usize {
        self.layer.end as usize
    }
    /// Outer source MAC.
    #[inline]
    pub fn src_mac(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buf[self.ethernet_offset() + 6..])
    }
    /// Outer destination MAC.
    #[inline]
    pub fn dst_mac(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buf[self.ethernet_offset()..])
    }
    /// Outer VLAN IDs, outermost first.
    #[inline]
    pub fn outer_vids(&self) -> &'a [u16] {
        &self.layer.outer_vids[..usize::from(self.layer.outer_tag_count)]
    }
    /// True for an IPv6 underlay.
    #[inline]
    pub fn is_ipv6(&self) -> bool {
        self.layer.ipv6
    }
    /// Outer source and destination addresses.
    #[inline]
    pub fn ips(&self) -> IpPair {
        let ip = self.ip_offset();
        if self.layer.ipv6 {
            let p = Ipv6Packet::new_unchecked(&self.buf[ip..]);
            IpPair::V6(p.src_addr(), p.dst_addr())
        } else {
            let b = &self.buf[ip + 12..ip + 20];
            IpPair::V4(
                Ipv4Addr::new(b[0], b[1], b[2], b[3]),
                Ipv4Addr::new(b[4], b[5], b[6], b[7]),
            )
        }
    }
    /// Outer source address.
    #[inline]
    pub fn src_addr(&self) -> IpAddr {
        self.ips().src()
    }
    /// Outer destination address.
    #[inline]
    pub fn dst_addr(&self) -> IpAddr {
        self.ips().dst()
    }
    /// UDP source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        self.layer.src_port
    }
    /// UDP destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        read_u16(self.buf, self.udp_offset() + 2)
    }
    /// The first byte of the tunnel header (all flags).
    #[inline]
    pub fn flags(&self) -> u8 {
        self.layer.header[0]
    }
    /// The raw 8-byte tunnel header.
    #[inline]
    pub fn raw_header(&self) -> [u8; VXLAN_LEN] {
        self.layer.header
    }
    /// The parsed tunnel header.
    #[inline]
    pub fn header(&self) -> TunnelHeader {
        let view = VxlanHeader::new_unchecked(&self.layer.header[..]);
        // The parser accepted this header under some policy; decoding it
        // again ignoring reserved bits cannot fail.
        let ignore = ReservedBitsPolicy::Ignore;
        match self.layer.kind {
            KIND_GPE => GpeRepr::parse(&view, ignore).map(TunnelHeader::Gpe),
            KIND_GBP => GbpRepr::parse(&view, ignore).map(TunnelHeader::Gbp),
            _ => VxlanRepr::parse(&view, ignore).map(TunnelHeader::Vxlan),
        }
        .unwrap_or(TunnelHeader::Vxlan(VxlanRepr { vni: self.vni() }))
    }
    /// The VNI.
    #[inline]
    pub fn vni(&self) -> u32 {
        let h = self.layer.header;
        u32::from_be_bytes([0, h[4], h[5], h[6]])
    }
    /// The bytes after the tunnel header, to the end of the datagram.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.payload_offset()..self.end()]
    }
}

impl<'a> TunnelStack<'a> {
    /// Parses `frame` as it arrived on the underlay.
    #[inline]
    pub fn parse(frame: &'a [u8], config: &ParseConfig) -> Result<TunnelStack<'a>, ParseDrop> {
        if let Some((layer, inner_ethertype, _)) = fast_path(frame, config) {
            return Ok(Self::with_first_layer(frame, layer, inner_ethertype));
        }
        Self::parse_general(frame, config)
    }

    fn with_first_layer(frame: &'a [u8], layer: Layer, inner_ethertype: u16) -> TunnelStack<'a> {
        TunnelStack {
            buf: frame,
            first: layer,
            nested: None,
            depth: 1,
            inner_tag_count: 0,
            has_inner: true,
            inner_ethertype,
            inner_vids: [0; MAX_VLAN_TAGS],
        }
    }

    /// The general parser: tags, options, extension headers, GPE, GBP,
    /// nesting, and a named reason for every drop.
    fn parse_general(frame: &'a [u8], config: &ParseConfig) -> Result<TunnelStack<'a>, ParseDrop> {
        let mut stack = TunnelStack {
            buf: frame,
            first: Layer::default(),
            nested: None,
            depth: 0,
            inner_tag_count: 0,
            has_inner: false,
            inner_ethertype: 0,
            inner_vids: [0; MAX_VLAN_TAGS],
        };
        let mut at = 0;
        let mut end = frame.len();
        while stack.depth < config.max_depth {
            let nested = stack.depth > 0;
            let layer = match parse_layer(&frame[..end], at, config) {
                Ok(Some(layer)) => layer,
                Ok(None) => break,
                // Inside a tunnel, whatever the tenant sends is theirs:
                // a malformed inner packet ends the walk, not the frame.
                Err(_) if nested => break,
                Err(e) => return Err(e),
            };
            let carries_ethernet = layer.kind != KIND_GPE
                || layer.header[3] == GpeNextProtocol::ETHERNET.0
                || layer.header[0] & vxlan::GPE_FLAG_P == 0;
            let payload = layer.udp as usize + UDP_HEADER_LEN + VXLAN_LEN;
            let layer_end = layer.end as usize;
            if !carries_ethernet {
                stack.push(layer);
                stack.depth += 1;
                stack.has_inner = false;
                return Ok(stack);
            }
            let inner = match scan_l2(&frame[..layer_end], payload) {
                Ok(l2) => l2,
                // A nested "tunnel" whose inner frame is broken was tenant
                // payload after all: keep the outer view.
                Err(_) if nested => break,
                Err(e) => {
                    return Err(if e == ParseDrop::TooManyVlanTags {
                        ParseDrop::InnerTooManyVlanTags
                    } else {
                        ParseDrop::InnerTruncated
                    })
                }
            };
            stack.push(layer);
            stack.depth += 1;
            stack.has_inner = true;
            stack.inner_ethertype = inner.ethertype;
            stack.inner_vids = inner.vids;
            stack.inner_tag_count = inner.tag_count;
            at = payload;
            end = layer_end;
        }
        Ok(stack)
    }

    /// True when the frame carried at least one tunnel layer.
    #[inline]
    pub fn is_tunnel(&self) -> bool {
        self.depth > 0
    }

    /// How many tunnel layers were found.
    #[inline]
    pub fn depth(&self) -> usize {
        usize::from(self.depth)
    }

    /// Layer `i`, outermost first.
    #[inline]
    pub fn layer(&self, i: usize) -> Option<LayerView<'_>> {
        let layer = match i {
            _ if i >= self.depth() => return None,
            0 => &self.first,
            _ => self.nested.as_ref()?.get(i - 1)?,
        };
        Some(LayerView {
            buf: self.buf,
            layer,
        })
    }

    fn push(&mut self, layer: Layer) {
        match self.depth {
            0 => self.first = layer,
            d => {
                self.nested
                    .get_or_insert([Layer::default(); MAX_LAYERS - 1])[usize::from(d) - 1] = layer
            }
        }
    }

    /// All layers, outermost first.
    pub fn layers(&self) -> impl Iterator<Item = LayerView<'_>> + '_ {
        (0..self.depth()).filter_map(move |i| self.layer(i))
    }

    /// The innermost Ethernet frame, when the last layer carries Ethernet.
    #[inline]
    pub fn inner(&self) -> Option<InnerFrame<'a>> {
        if !self.has_inner || self.depth == 0 {
            return None;
        }
        let last = self.layer(self.depth() - 1)?.layer;
        let offset = last.udp + to_u32(UDP_HEADER_LEN + VXLAN_LEN);
        Some(InnerFrame {
            buf: self.buf,
            // The walker checked these 14 bytes are there.
            head: self.buf.get(offset as usize..)?.first_chunk()?,
            offset,
            end: last.end,
            ethertype: self.inner_ethertype,
            vids: self.inner_vids,
            tag_count: self.inner_tag_count,
        })
    }

    /// The innermost Ethernet frame's bytes.
    pub fn inner_frame(&self) -> Option<&'a [u8]> {
        self.inner().map(|i| i.bytes())
    }

    /// The whole frame.
    pub fn frame(&self) -> &'a [u8] {
        self.buf
    }
}

/// A masked compare of two 16-byte blocks of the frame as one:
/// `(a & mask_a) | (b & mask_b) == want`, byte by byte. The two masks
/// never select the same byte (see [`Blocks::join`]), so this is `a` and
/// `b` each matching its own bytes of `want`. A `want` bit outside both
/// masks never matches. Aligned so SSE2 takes all three as memory
/// operands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, align(16))]
struct Blocks {
    mask_a: [u8; 16],
    mask_b: [u8; 16],
    want: [u8; 16],
}

impl Blocks {
    /// Blocks no bytes match.
    const NEVER: Blocks = Blocks {
        mask_a: [0; 16],
        mask_b: [0; 16],
        want: [1; 16],
    };

    /// The blocks for `a` and `b`, each as (mask, want): [`Blocks::NEVER`]
    /// if their masks select a byte in common (the fast path's blocks are
    /// placed so they do not: `fast_templates_are_disjoint` checks it).
    const fn join(a: ([u8; 16], [u8; 16]), b: ([u8; 16], [u8; 16])) -> Blocks {
        let mut blocks = Blocks {
            mask_a: a.0,
            mask_b: b.0,
            want: [0; 16],
        };
        let mut i = 0;
        while i < 16 {
            if a.0[i] & b.0[i] != 0 {
                return Blocks::NEVER;
            }
            blocks.want[i] = (a.1[i] & a.0[i]) | (b.1[i] & b.0[i]);
            // A wanted bit outside its mask: no frame matches.
            if a.1[i] & !a.0[i] != 0 || b.1[i] & !b.0[i] != 0 {
                return Blocks::NEVER;
            }
            i += 1;
        }
        blocks
    }
}

/// True when `a` and `b` match `t`: SSE2 on x86-64, 64-bit words
/// elsewhere.
#[inline(always)]
fn both_match(a: &[u8; 16], b: &[u8; 16], t: &Blocks) -> bool {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    return both_match_sse2(a, b, t);
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    return both_match_words(a, b, t);
}

/// [`both_match`] in seven vector operations and one branch.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn both_match_sse2(a: &[u8; 16], b: &[u8; 16], t: &Blocks) -> bool {
    use core::arch::x86_64::{
        _mm_and_si128, _mm_cmpeq_epi8, _mm_load_si128, _mm_loadu_si128, _mm_movemask_epi8,
        _mm_or_si128,
    };
    // SAFETY: this is compiled only where the target has SSE2 enabled
    // (the x86-64 baseline; a soft-float target without it takes the
    // portable words), so its intrinsics run on every CPU this code is
    // built for. The unaligned loads read `a` and `b`, references to
    // exactly 16 readable bytes. The aligned loads read the three fields
    // of a `Blocks`, which is `repr(C, align(16))` with three 16-byte
    // arrays: they sit at offsets 0, 16 and 32, each 16 readable,
    // 16-byte-aligned bytes.
    unsafe {
        let va = _mm_loadu_si128(a.as_ptr().cast());
        let vb = _mm_loadu_si128(b.as_ptr().cast());
        let ma = _mm_load_si128(t.mask_a.as_ptr().cast());
        let mb = _mm_load_si128(t.mask_b.as_ptr().cast());
        let want = _mm_load_si128(t.want.as_ptr().cast());
        let got = _mm_or_si128(_mm_and_si128(va, ma), _mm_and_si128(vb, mb));
        _mm_movemask_epi8(_mm_cmpeq_epi8(got, want)) == 0xffff
    }
}

/// [`both_match`] in portable code: two masked 64-bit words per block,
/// ORed and tested once. Built on every target so the tests compare it
/// with SSE2.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
#[inline(always)]
fn both_match_words(a: &[u8; 16], b: &[u8; 16], t: &Blocks) -> bool {
    let word = |v: &[u8; 16], i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&v[i..i + 8]);
        u64::from_le_bytes(w)
    };
    let miss = |i: usize| {
        ((word(a, i) & word(&t.mask_a, i)) | (word(b, i) & word(&t.mask_b, i))) ^ word(&t.want, i)
    };
    miss(0) | miss(8) == 0
}

/// The common shape as one masked compare of two 16-byte blocks of the
/// frame per underlay, built once per [`ParseConfig`] so a parse only
/// loads, masks and compares: frame bytes 8..24 (the EtherType and the
/// fixed IP fields, the same place for both underlays) and 16 bytes from
/// the UDP header's second byte (at 35 over IPv4, 55 over IPv6; the
/// destination port and the VXLAN header). The blocks are placed so
/// that no byte of one underlay's IP block and the tunnel block is
/// checked at the same offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FastTemplate {
    /// IPv4: EtherType 0x0800, version 4 and IHL 5, MF and the fragment
    /// offset zero (DF is not looked at), protocol UDP; and the tunnel.
    ip4: Blocks,
    /// IPv6: EtherType 0x86dd, version 6, next header UDP; and the
    /// tunnel.
    ip6: Blocks,
}

impl FastTemplate {
    /// A template nothing matches: every frame takes the general walker.
    const NEVER: FastTemplate = FastTemplate {
        ip4: Blocks::NEVER,
        ip6: Blocks::NEVER,
    };

    /// The template for `config`: [`FastTemplate::NEVER`] when the fast
    /// path does not apply at all (nesting followed, VXLAN ports read as
    /// GBP, no VXLAN port). Other VXLAN ports than the first, like every
    /// shape the template leaves out, are the general walker's.
    const fn new(config: &ParseConfig) -> FastTemplate {
        if config.max_depth != 1 || config.gbp || config.vxlan_port_count == 0 {
            return FastTemplate::NEVER;
        }
        let udp = IpProtocol::UDP.0;
        let i = vxlan::FLAG_I;
        let vxlan = match config.reserved_bits {
            ReservedBitsPolicy::Ignore => ([i, 0, 0, 0, 0, 0, 0, 0], [i, 0, 0, 0, 0, 0, 0, 0]),
            // Flags other than I, bytes 1 to 3 and byte 7 all zero.
            ReservedBitsPolicy::Strict => (
                [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0xff],
                [i, 0, 0, 0, 0, 0, 0, 0],
            ),
        };
        // The tunnel block: the destination port, the UDP length and
        // checksum (not looked at), the VXLAN header.
        let mut tunnel = ([0u8; 16], [0u8; 16]);
        let port = config.vxlan_ports[0].to_be_bytes();
        let mut k = 0;
        while k < 2 {
            tunnel.0[2 - TUNNEL_AT + k] = 0xff;
            tunnel.1[2 - TUNNEL_AT + k] = port[k];
            k += 1;
        }
        k = 0;
        while k < VXLAN_LEN {
            tunnel.0[UDP_HEADER_LEN - TUNNEL_AT + k] = vxlan.0[k];
            tunnel.1[UDP_HEADER_LEN - TUNNEL_AT + k] = vxlan.1[k];
            k += 1;
        }
        // The IP blocks, from frame byte IP_AT: (offset, mask, want).
        let et = ETH_HEADER_LEN - 2 - IP_AT;
        let ip = ETH_HEADER_LEN - IP_AT;
        let ip4 = ip_block(&[
            (et, 0xff, 0x08),
            (et + 1, 0xff, 0x00),
            (ip, 0xff, 0x45),
            // Flags and fragment offset: MF and the offset.
            (ip + 6, 0x3f, 0),
            (ip + 7, 0xff, 0),
            (ip + 9, 0xff, udp),
        ]);
        let ip6 = ip_block(&[
            (et, 0xff, 0x86),
            (et + 1, 0xff, 0xdd),
            (ip, 0xf0, 0x60),
            (ip + 6, 0xff, udp),
        ]);
        FastTemplate {
            ip4: Blocks::join(ip4, tunnel),
            ip6: Blocks::join(ip6, tunnel),
        }
    }
}

/// A block's (mask, want) from (offset, mask, want) bytes.
const fn ip_block(bytes: &[(usize, u8, u8)]) -> ([u8; 16], [u8; 16]) {
    let mut block = ([0u8; 16], [0u8; 16]);
    let mut k = 0;
    while k < bytes.len() {
        let (at, mask, want) = bytes[k];
        block.0[at] = mask;
        block.1[at] = want;
        k += 1;
    }
    block
}

/// Where the IP block starts in the frame: 8..24 holds the EtherType and
/// the fixed IP fields of both underlays, at offsets the tunnel block
/// does not check.
const IP_AT: usize = 8;

/// Where the tunnel block starts in the UDP header: one byte before the
/// destination port, so that its checked bytes (port, VXLAN flags and
/// reserved bytes) fall where neither IP block checks one. The
/// VNI, which a caller reads, is read with a load reaching past the block
/// (see [`fast_vni`]).
const TUNNEL_AT: usize = 1;

/// The 16 bytes at `at` of a fixed-size prefix. Offsets are constants
/// within `N` at every call, so this compiles to an address.
#[inline(always)]
fn block_at<const N: usize>(h: &[u8; N], at: usize) -> Option<&[u8; 16]> {
    h.get(at..)?.first_chunk()
}

/// Where the fixed-offset headers start.
const IP4_UDP: usize = ETH_HEADER_LEN + 20;
const IP4_MIN: usize = IP4_UDP + MIN_UDP_LEN;
const IP6_UDP: usize = ETH_HEADER_LEN + IPV6_HEADER_LEN;
const IP6_MIN: usize = IP6_UDP + MIN_UDP_LEN;

/// The longest frame the fast path takes: the longest IPv4 packet
/// (65535 bytes) after an untagged Ethernet header. Longer frames (a
/// trailer past that, or the last 40 bytes of IPv6's range) are the
/// general walker's; with this bound every length the fast path computes
/// from the frame's fits 16 bits.
const FAST_MAX_LEN: usize = ETH_HEADER_LEN + 0xffff;

/// The frame's first [`IP4_MIN`] bytes when its length is one the fast
/// path takes (`IP4_MIN..=FAST_MAX_LEN`, one unsigned compare).
#[inline(always)]
fn fast_prefix(frame: &[u8]) -> Option<&[u8; IP4_MIN]> {
    if frame.len().wrapping_sub(IP4_MIN) > FAST_MAX_LEN - IP4_MIN {
        return None;
    }
    frame.first_chunk()
}

/// The common case in a handful of loads and compares: one layer of
/// plain VXLAN on the first VXLAN port over untagged IPv4 (no options) or
/// IPv6 (no extension headers), the IP packet ending with the frame and
/// the UDP datagram filling the IP payload, an inner frame that is not
/// tagged (nor carries one of a few rarer EtherTypes, see
/// [`fast_layer`]). Anything else, including every drop, goes to the
/// general parser, which names the reason.
#[inline(always)]
fn fast_path<'a>(frame: &'a [u8], config: &ParseConfig) -> Option<FastLayer<'a>> {
    // IPv4 first, with no test of the EtherType before its own checks
    // (an IPv6 frame fails its first, the IPv4 length); IPv6 after.
    match fast_path_ip4(frame, config) {
        Some((found, _)) => Some(found),
        None => fast_ip6(frame, &config.fast).map(|(found, _)| found),
    }
}

/// The IPv4 half of [`fast_path`], with the VNI: frames of
/// `IP4_MIN..=FAST_MAX_LEN` bytes.
#[inline(always)]
fn fast_path_ip4<'a>(frame: &'a [u8], config: &ParseConfig) -> Option<(FastLayer<'a>, u32)> {
    fast_ip4(fast_prefix(frame)?, frame.len(), &config.fast)
}

/// [`fast_path`] over IPv4, given the frame's prefix and length.
#[inline(always)]
fn fast_ip4<'a>(
    h: &'a [u8; IP4_MIN],
    len: usize,
    t: &FastTemplate,
) -> Option<(FastLayer<'a>, u32)> {
    fast_layer::<IP4_UDP, IP4_MIN, false>(h, len, &t.ip4)
}

/// The IPv6 half of [`fast_path`], with the VNI: frames of
/// `IP6_MIN..=IP6_UDP + 0xffff` bytes (the IPv6 payload length is 16
/// bits).
#[inline(always)]
fn fast_ip6<'a>(frame: &'a [u8], t: &FastTemplate) -> Option<(FastLayer<'a>, u32)> {
    // Both bounds as one compare (the compiler then drops the prefix's and
    // `fast_layer`'s own checks).
    if frame.len().wrapping_sub(IP6_MIN) > IP6_UDP + 0xffff - IP6_MIN {
        return None;
    }
    let h: &[u8; IP6_MIN] = frame.first_chunk()?;
    fast_layer::<IP6_UDP, IP6_MIN, true>(h, frame.len(), &t.ip6)
}

/// The shortest UDP datagram that can carry VXLAN and an inner Ethernet
/// header.
const MIN_UDP_LEN: usize = UDP_HEADER_LEN + VXLAN_LEN + ETH_HEADER_LEN;

/// The bits of an inner EtherType, loaded little-endian, that send a frame
/// from the fast path to the general walker: every VLAN TPID has one,
/// IPv4, IPv6 and ARP none (see [`fast_layer`]).
const FAST_DECLINES: u16 = 0x2001;
const _: () = {
    let tpids = [0x8100u16, 0x9100, 0x88a8];
    let mut i = 0;
    while i < tpids.len() {
        assert!(tpids[i].swap_bytes() & FAST_DECLINES != 0);
        i += 1;
    }
    assert!(0x0800u16.swap_bytes() & FAST_DECLINES == 0);
    assert!(0x86ddu16.swap_bytes() & FAST_DECLINES == 0);
    assert!(0x0806u16.swap_bytes() & FAST_DECLINES == 0);
};

/// The fast path's checks on the fixed-size prefix `h` of a frame of `len`
/// bytes, with every offset a constant:
/// the length relations, the inner TPID and the template `t` (the IP
/// block at [`IP_AT`], the tunnel block at [`TUNNEL_AT`] in the UDP
/// header).
#[inline(always)]
fn fast_layer<'a, const UDP: usize, const MIN: usize, const V6: bool>(
    h: &'a [u8; MIN],
    len: usize,
    t: &Blocks,
) -> Option<(FastLayer<'a>, u32)> {
    const IP: usize = ETH_HEADER_LEN;
    const HDR: usize = UDP_HEADER_LEN;
    // A 16-bit field as loaded (network order, not swapped).
    let field = |at: usize| match h.get(at..at + 2) {
        Some(&[a, b]) => u16::from_ne_bytes([a, b]),
        _ => 0,
    };
    // The common shape only: the IP packet ends where the frame does and
    // the UDP datagram fills the IP payload (IPv4 total length = frame
    // length - 14, IPv6 payload length = UDP length = frame length - 54).
    // Any other relation, valid or not, is the general walker's. With
    // `len >= MIN` (the prefix is in the frame) the UDP length holds the
    // headers. Both lengths must fit 16 bits (checked here; over IPv4,
    // `fast_prefix` already bounds the frame to FAST_MAX_LEN and the
    // compiler drops the checks), so comparing 16-bit fields is exact.
    let udp_len = u16::try_from(len.wrapping_sub(UDP)).ok()?;
    let (ip_at, ip_len) = if V6 {
        (IP + 4, udp_len)
    } else {
        (IP + 2, u16::try_from(len.wrapping_sub(IP)).ok()?)
    };
    if field(ip_at) != ip_len.to_be() || field(UDP + 4) != udp_len.to_be() {
        return None;
    }
    let inner = UDP + HDR + VXLAN_LEN;
    // The inner EtherType as loaded (little-endian: the first byte low).
    // The fast path declines all three TPIDs (`EtherType::is_vlan_tpid`)
    // with one test, a superset: 0x8100 and 0x9100 load as 0x0081 and
    // 0x0091 (bit 0 set), 0x88a8 as 0xa888 (bit 13 set). IPv4 (0x0008),
    // IPv6 (0xdd86) and ARP (0x0608) have neither bit. Other EtherTypes
    // with an odd first byte or bit 5 set in the second (RARP 0x8035,
    // PPPoE, MACsec 0x88e5, FCoE 0x8906, ...) take the general walker,
    // which gives the same answer, only slower.
    let raw = match h.get(inner + 12..inner + 14) {
        Some(&[a, b]) => u16::from_le_bytes([a, b]),
        _ => return None,
    };
    if raw & FAST_DECLINES != 0 {
        return None;
    }
    // The VNI read before the template is compared, so the compiler loads
    // it rather than extract it from the vector.
    let vni = fast_vni::<UDP, MIN>(h);
    // The template last: the scalar reads above then load their own
    // bytes rather than extract them from the vectors.
    if !both_match(block_at(h, IP_AT)?, block_at(h, UDP + TUNNEL_AT)?, t) {
        return None;
    }
    let header: [u8; VXLAN_LEN] = *h.get(UDP + HDR..)?.first_chunk()?;
    let layer = Layer {
        eth: 0,
        ip: to_u32(IP),
        udp: to_u32(UDP),
        end: to_u32(len),
        header,
        src_port: u16::from_be_bytes(*h.get(UDP..)?.first_chunk()?),
        outer_vids: [0; MAX_VLAN_TAGS],
        outer_tag_count: 0,
        ipv6: V6,
        kind: KIND_VXLAN,
    };
    let inner_head = h.get(inner..)?.first_chunk()?;
    Some(((layer, raw.swap_bytes(), inner_head), vni))
}

/// The VNI of the fast path's shape with the UDP header at `UDP`: the
/// top three bytes of the 8 from the VNI on, a load, a byte swap and a
/// shift. The load reaches past the tunnel block into the inner header,
/// so the compiler cannot take the VNI from the block's vector (which
/// costs it two more instructions) and loads it.
#[inline(always)]
fn fast_vni<const UDP: usize, const MIN: usize>(h: &[u8; MIN]) -> u32 {
    match h
        .get(UDP + UDP_HEADER_LEN + 4..)
        .and_then(<[u8]>::first_chunk)
    {
        Some(&w) => u32::try_from(u64::from_be_bytes(w) >> 40).unwrap_or_default(),
        None => 0,
    }
}

/// What the fast path finds: the layer, the inner EtherType and the inner
/// Ethernet header's first 14 bytes.
type FastLayer<'a> = (Layer, u16, &'a [u8; ETH_HEADER_LEN]);

/// One VXLAN layer and the inner Ethernet frame under it: what a VTEP's
/// decap needs, from [`parse_single`].
#[derive(Debug, Clone, Copy)]
pub struct SingleLayer<'a> {
    buf: &'a [u8],
    layer: Layer,
    /// The VNI, read once as a 32-bit word: a caller that gets this struct
    /// through memory (the fast and general paths meet there) then reloads
    /// it at the width it was stored, which store-to-load forwarding
    /// handles; three header bytes stored and reloaded at other widths
    /// stall it.
    vni: u32,
    /// The inner Ethernet header's first 14 bytes, borrowed as an array
    /// so the inner addresses are read without a bounds check after the
    /// two paths meet.
    inner_head: &'a [u8; ETH_HEADER_LEN],
    inner_ethertype: u16,
    inner_vids: [u16; MAX_VLAN_TAGS],
    inner_tag_count: u8,
}

impl<'a> SingleLayer<'a> {
    /// The tunnel layer.
    #[inline]
    pub fn layer(&self) -> LayerView<'_> {
        LayerView {
            buf: self.buf,
            layer: &self.layer,
        }
    }

    /// The VNI.
    #[inline]
    pub fn vni(&self) -> u32 {
        self.vni
    }

    /// The inner Ethernet frame.
    #[inline]
    pub fn inner(&self) -> InnerFrame<'a> {
        InnerFrame {
            buf: self.buf,
            head: self.inner_head,
            offset: self.layer.udp + to_u32(UDP_HEADER_LEN + VXLAN_LEN),
            end: self.layer.end,
            ethertype: self.inner_ethertype,
            vids: self.inner_vids,
            tag_count: self.inner_tag_count,
        }
    }
}

/// Parses exactly one VXLAN layer (nesting is not followed) and the inner
/// Ethernet header: the decap fast path. `Ok(None)` means "not VXLAN";
/// GPE layers that carry something other than Ethernet are `Ok(None)` too
/// (use [`TunnelStack::parse`] to see them).
///
/// ```
/// use vxlan_core::tunnel::{parse_single, ParseConfig};
/// let frame = vxlan_core::testutil::sample_vxlan_ipv4_frame();
/// let one = parse_single(&frame, &ParseConfig::default()).unwrap().unwrap();
/// assert_eq!(one.vni(), 100);
/// assert_eq!(one.inner().src_addr().to_string(), "02:00:00:00:00:01");
/// ```
#[inline(always)]
pub fn parse_single<'a>(
    frame: &'a [u8],
    config: &ParseConfig,
) -> Result<Option<SingleLayer<'a>>, ParseDrop> {
    // The fast path inlines into the caller (its offsets are constants
    // there, so the caller's field reads need no bounds checks); every
    // other shape takes one call to the general walker.
    if let Some(one) = parse_single_fast(frame, config) {
        return Ok(Some(one));
    }
    let mut out = Ok(None);
    parse_single_general_into(frame, config, &mut out);
    out
}

/// Parses like [`parse_single`] and hands the result to `f`, which is
/// inlined three times: once for each underlay of the constant-offset fast
/// path and once after the general walker. The caller's reads then see
/// each fast path's offsets as constants, and the paths' results do not
/// meet in memory first: about 8 instructions fewer per parse than
/// reading the result of [`parse_single`] (see BENCHMARKS.md). The
/// answers are the same.
///
/// ```
/// use vxlan_core::tunnel::{parse_single_with, ParseConfig};
/// let frame = vxlan_core::testutil::sample_vxlan_ipv4_frame();
/// let vni = parse_single_with(&frame, &ParseConfig::default(), |parsed| match parsed {
///     Ok(Some(one)) => Some(one.vni()),
///     _ => None,
/// });
/// assert_eq!(vni, Some(100));
/// ```
#[inline(always)]
pub fn parse_single_with<'a, R>(
    frame: &'a [u8],
    config: &ParseConfig,
    f: impl FnOnce(Result<Option<SingleLayer<'a>>, ParseDrop>) -> R,
) -> R {
    // The IPv4 fast path inline; IPv6 and the general walker behind one
    // jump, so IPv4 runs straight through.
    if let Some((found, vni)) = fast_path_ip4(frame, config) {
        return f(Ok(Some(single_of(frame, found, vni))));
    }
    parse_single_with_ip6(frame, config, f)
}

/// [`parse_single_with`] past the IPv4 fast path: the IPv6 fast path, then
/// the general walker.
#[inline(never)]
fn parse_single_with_ip6<'a, R>(
    frame: &'a [u8],
    config: &ParseConfig,
    f: impl FnOnce(Result<Option<SingleLayer<'a>>, ParseDrop>) -> R,
) -> R {
    if let Some((found, vni)) = fast_ip6(frame, &config.fast) {
        return f(Ok(Some(single_of(frame, found, vni))));
    }
    let mut out = Ok(None);
    parse_single_general_into(frame, config, &mut out);
    f(out)
}

/// [`parse_single_general`] writing its result through `out`, the last
/// argument: the frame and config then stay in the registers they arrived
/// in, so the inlined fast path needs no argument moves for the call.
#[cold]
#[inline(never)]
fn parse_single_general_into<'a>(
    frame: &'a [u8],
    config: &ParseConfig,
    out: &mut Result<Option<SingleLayer<'a>>, ParseDrop>,
) {
    *out = parse_single_general(frame, config);
}

/// The constant-offset half of [`parse_single`]: `Some` for plain VXLAN
/// on the first configured VXLAN port over an untagged IPv4 (no options)
/// or IPv6 (no extension headers) underlay, the UDP datagram filling the
/// IP payload, and an untagged inner frame; `None` means "ask [`parse_single`]", not "not
/// VXLAN".
#[inline(always)]
pub(crate) fn parse_single_fast<'a>(
    frame: &'a [u8],
    config: &ParseConfig,
) -> Option<SingleLayer<'a>> {
    let (layer, inner_ethertype, inner_head) = fast_path(frame, config)?;
    // The VNI from the header as `parse_single_general` reads it: where the
    // two paths' results meet, the compiler then branches from the fast
    // path straight into the caller's reads (with `fast_vni`'s separate
    // load it merges the paths' flags first, 3 more instructions).
    Some(SingleLayer {
        buf: frame,
        vni: vni_of(&layer.header),
        inner_head,
        layer,
        inner_ethertype,
        inner_vids: [0; MAX_VLAN_TAGS],
        inner_tag_count: 0,
    })
}

/// The [`SingleLayer`] for what the fast path found in `frame`.
#[inline(always)]
fn single_of<'a>(
    frame: &'a [u8],
    (layer, inner_ethertype, inner_head): FastLayer<'a>,
    vni: u32,
) -> SingleLayer<'a> {
    SingleLayer {
        buf: frame,
        vni,
        inner_head,
        layer,
        inner_ethertype,
        inner_vids: [0; MAX_VLAN_TAGS],
        inner_tag_count: 0,
    }
}

/// [`parse_single`] for the shapes the fast path leaves: tags, options,
/// extension headers, GPE/GBP, and every drop (which it names).
#[inline(always)]
fn parse_single_general<'a>(
    frame: &'a [u8],
    config: &ParseConfig,
) -> Result<Option<SingleLayer<'a>>, ParseDrop> {
    let stack = TunnelStack::parse_general(
        frame,
        // Refreshed, so the copy's template never describes another
        // config (the general walker does not read it today).
        &ParseConfig {
            max_depth: 1,
            ..*config
        }
        .refresh(),
    )?;
    Ok(stack.inner().map(|inner| SingleLayer {
        buf: frame,
        vni: vni_of(&stack.first.header),
        inner_head: inner.head,
        layer: stack.first,
        inner_ethertype: stack.inner_ethertype,
        inner_vids: stack.inner_vids,
        inner_tag_count: stack.inner_tag_count,
    }))
}

/// The VNI in bytes 4 to 6 of a VXLAN, GPE or GBP header.
#[inline(always)]
fn vni_of(header: &[u8; VXLAN_LEN]) -> u32 {
    u32::from_be_bytes([0, header[4], header[5], header[6]])
}

/// Frame offsets fit in 32 bits on every buffer this crate sees; saturate
/// rather than wrap on a pathological one so indexing then fails safely.
#[inline(always)]
fn to_u32(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// What [`scan_l2`] finds: the EtherType after the tags and the VIDs.
struct L2Scan {
    ethertype: u16,
    vids: [u16; MAX_VLAN_TAGS],
    tag_count: u8,
    header_len: usize,
}

/// Reads an Ethernet header at `at` and up to two VLAN tags without
/// copying the addresses (they are read on access).
#[inline(always)]
fn scan_l2(buf: &[u8], at: usize) -> Result<L2Scan, ParseDrop> {
    let Some(h) = buf.get(at..at + ETH_HEADER_LEN) else {
        return Err(ParseDrop::EthernetTruncated);
    };
    let mut scan = L2Scan {
        ethertype: read_u16(h, 12),
        vids: [0; MAX_VLAN_TAGS],
        tag_count: 0,
        header_len: ETH_HEADER_LEN,
    };
    while EtherType(scan.ethertype).is_vlan_tpid() {
        if usize::from(scan.tag_count) == MAX_VLAN_TAGS {
            return Err(ParseDrop::TooManyVlanTags);
        }
        let t = at + scan.header_len;
        let Some(tag) = buf.get(t..t + VLAN_TAG_LEN) else {
            return Err(ParseDrop::EthernetTruncated);
        };
        scan.vids[usize::from(scan.tag_count)] = read_u16(tag, 0) & 0x0fff;
        scan.ethertype = read_u16(tag, 2);
        scan.tag_count += 1;
        scan.header_len += VLAN_TAG_LEN;
    }
    Ok(scan)
}

/// Parses one layer starting with the Ethernet header at `at`. `buf` ends
/// where the enclosing datagram (or the frame) ends.
#[inline(always)]
fn parse_layer(buf: &[u8], at: usize, config: &ParseConfig) -> Result<Option<Layer>, ParseDrop> {
    let l2 = scan_l2(buf, at)?;
    let ip = at + l2.header_len;
    let (udp, udp_limit, ipv6) = match EtherType(l2.ethertype) {
        EtherType::IPV4 => {
            let Some(h) = buf.get(ip..ip + 20) else {
                return Err(ParseDrop::Ipv4Malformed);
            };
            let ihl = usize::from(h[0] & 0x0f) * 4;
            let total = usize::from(read_u16(h, 2));
            if h[0] >> 4 != 4 || ihl < 20 || total < ihl || ip + total > buf.len() {
                return Err(ParseDrop::Ipv4Malformed);
            }
            if h[9] != IpProtocol::UDP.0 {
                return Ok(None);
            }
            let frag = read_u16(h, 6);
            if frag & 0x3fff != 0 {
                // Only the first fragment shows the port; later ones are
                // not recognisably ours and pass as "not VXLAN".
                if frag & 0x1fff == 0
                    && total >= ihl + 4
                    && config.kind_of(read_u16(buf, ip + ihl + 2)).is_some()
                {
                    return Err(ParseDrop::Fragment);
                }
                return Ok(None);
            }
            (ip + ihl, ip + total, false)
        }
        EtherType::IPV6 => {
            let Some(h) = buf.get(ip..ip + IPV6_HEADER_LEN) else {
                return Err(ParseDrop::Ipv6Malformed);
            };
            let limit = ip + IPV6_HEADER_LEN + usize::from(read_u16(h, 4));
            if h[0] >> 4 != 6 || limit > buf.len() {
                return Err(ParseDrop::Ipv6Malformed);
            }
            if h[6] == IpProtocol::UDP.0 {
                (ip + IPV6_HEADER_LEN, limit, true)
            } else {
                // Extension headers: the slow path.
                let Ok(up) = Ipv6Packet::new_unchecked(&buf[ip..]).upper_layer() else {
                    return Err(ParseDrop::Ipv6Malformed);
                };
                if up.protocol != IpProtocol::UDP {
                    return Ok(None);
                }
                let udp = ip + up.offset;
                if let Some(f) = up.fragment.filter(|f| f.is_real_fragment()) {
                    if f.offset == 0
                        && udp + 4 <= limit
                        && config.kind_of(read_u16(buf, udp + 2)).is_some()
                    {
                        return Err(ParseDrop::Fragment);
                    }
                    return Ok(None);
                }
                (udp, limit, true)
            }
        }
        _ => return Ok(None),
    };
    // UDP: header inside the IP payload, length field within it.
    let Some(u) = buf
        .get(udp..udp + UDP_HEADER_LEN)
        .filter(|_| udp + UDP_HEADER_LEN <= udp_limit)
    else {
        return Err(ParseDrop::UdpMalformed);
    };
    let Some(kind) = config.kind_of(read_u16(u, 2)) else {
        return Ok(None);
    };
    let udp_len = usize::from(read_u16(u, 4));
    if udp_len < UDP_HEADER_LEN || udp + udp_len > udp_limit {
        return Err(ParseDrop::UdpMalformed);
    }
    let end = udp + udp_len;
    let hdr = udp + UDP_HEADER_LEN;
    if hdr + VXLAN_LEN > end {
        return Err(ParseDrop::TunnelHeaderTruncated);
    }
    let mut header = [0u8; VXLAN_LEN];
    header.copy_from_slice(&buf[hdr..hdr + VXLAN_LEN]);
    if header[0] & vxlan::FLAG_I == 0 {
        return Ok(None); // I flag clear: not VXLAN
    }
    let view = VxlanHeader::new_unchecked(&header[..]);
    let strict = config.reserved_bits == ReservedBitsPolicy::Strict;
    let kind = match kind {
        Kind::Vxlan => {
            if strict && view.vxlan_reserved_bits_set() {
                return Err(ParseDrop::ReservedBits);
            }
            KIND_VXLAN
        }
        Kind::Gbp => {
            if strict && view.gbp_reserved_bits_set() {
                return Err(ParseDrop::ReservedBits);
            }
            KIND_GBP
        }
        Kind::Gpe => {
            if view.gpe_version() != 0 {
                return Err(ParseDrop::GpeBadVersion);
            }
            if strict && view.gpe_reserved_bits_set() {
                return Err(ParseDrop::ReservedBits);
            }
            KIND_GPE
        }
    };
    Ok(Some(Layer {
        eth: to_u32(at),
        ip: to_u32(ip),
        udp: to_u32(udp),
        end: to_u32(end),
        header,
        src_port: read_u16(u, 0),
        outer_vids: l2.vids,
        outer_tag_count: l2.tag_count,
        ipv6,
        kind,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{build_vxlan_frame, FrameSpec};

    #[test]
    fn config_errors() {
        let c = ParseConfig::default();
        assert_eq!(
            c.with_vxlan_port(4789),
            Err(ConfigError::DuplicatePort(4789))
        );
        assert_eq!(
            c.with_vxlan_port(4790),
            Err(ConfigError::DuplicatePort(4790))
        );
        assert_eq!(c.with_vxlan_port(0), Err(ConfigError::PortZero));
        let c = c
            .with_vxlan_port(8472)
            .unwrap()
            .with_vxlan_port(1)
            .unwrap()
            .with_vxlan_port(2)
            .unwrap();
        assert_eq!(c.vxlan_ports(), &[4789, 8472, 1, 2]);
        assert_eq!(c.with_vxlan_port(3), Err(ConfigError::TooManyPorts));
        assert_eq!(c.with_max_depth(0), Err(ConfigError::DepthOutOfRange(0)));
        assert_eq!(c.with_max_depth(5), Err(ConfigError::DepthOutOfRange(5)));
        assert!(c.with_max_depth(4).is_ok());
    }

    #[test]
    fn ipv4_and_ipv6_underlays() {
        for ipv6 in [false, true] {
            let spec = FrameSpec {
                ipv6,
                vni: 0x12_3456,
                ..FrameSpec::default()
            };
            let frame = build_vxlan_frame(&spec);
            let s = TunnelStack::parse(&frame, &ParseConfig::default()).unwrap();
            assert_eq!(s.depth(), 1);
            let l = s.layer(0).unwrap();
            assert_eq!(l.vni(), 0x12_3456);
            assert_eq!(l.is_ipv6(), ipv6);
            assert_eq!(l.src_port(), spec.sport);
            assert_eq!(l.flags(), 0x08);
            let inner = s.inner().unwrap();
            assert_eq!(inner.src_addr(), spec.inner_src);
            assert_eq!(inner.ethertype(), EtherType::IPV4);
            assert_eq!(s.inner_frame().unwrap().len(), spec.inner_len);
        }
    }

    #[test]
    fn not_vxlan_outcomes() {
        let cfg = ParseConfig::default();
        // Another port.
        let frame = build_vxlan_frame(&FrameSpec {
            dport: 53,
            ..FrameSpec::default()
        });
        assert_eq!(TunnelStack::parse(&frame, &cfg).unwrap().depth(), 0);
        // I flag clear.
        let mut frame = build_vxlan_frame(&FrameSpec::default());
        let h = 14 + 20 + 8;
        frame[h] = 0;
        assert_eq!(TunnelStack::parse(&frame, &cfg).unwrap().depth(), 0);
        // Not IP.
        let mut arp = frame.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(TunnelStack::parse(&arp, &cfg).unwrap().depth(), 0);
        // 8472 only when configured.
        let frame = build_vxlan_frame(&FrameSpec {
            dport: 8472,
            ..FrameSpec::default()
        });
        assert_eq!(TunnelStack::parse(&frame, &cfg).unwrap().depth(), 0);
        let cfg8472 = cfg.with_vxlan_port(8472).unwrap();
        assert_eq!(TunnelStack::parse(&frame, &cfg8472).unwrap().depth(), 1);
    }

    #[test]
    fn drops() {
        let cfg = ParseConfig::default();
        let good = build_vxlan_frame(&FrameSpec::default());
        let drop = |f: &[u8]| TunnelStack::parse(f, &cfg).unwrap_err();
        assert_eq!(drop(&good[..10]), ParseDrop::EthernetTruncated);
        assert_eq!(drop(&good[..30]), ParseDrop::Ipv4Malformed);
        // Truncating the frame leaves the IPv4 total length pointing past it.
        assert_eq!(drop(&good[..good.len() - 1]), ParseDrop::Ipv4Malformed);
        // UDP length past the IP payload.
        let mut f = good.clone();
        f[14 + 20 + 4..14 + 20 + 6].copy_from_slice(&2000u16.to_be_bytes());
        assert_eq!(drop(&f), ParseDrop::UdpMalformed);
        // UDP length below the header.
        f[14 + 20 + 4..14 + 20 + 6].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(drop(&f), ParseDrop::UdpMalformed);
        // UDP length too short for the VXLAN header.
        f[14 + 20 + 4..14 + 20 + 6].copy_from_slice(&12u16.to_be_bytes());
        assert_eq!(drop(&f), ParseDrop::TunnelHeaderTruncated);
        // UDP length leaves the inner frame under 14 bytes.
        f[14 + 20 + 4..14 + 20 + 6].copy_from_slice(&(16u16 + 13).to_be_bytes());
        assert_eq!(drop(&f), ParseDrop::InnerTruncated);
        // First fragment to port 4789.
        let mut f = good.clone();
        f[14 + 6] = 0x20; // MF
        assert_eq!(drop(&f), ParseDrop::Fragment);
        // Later fragment: unrecognisable, not VXLAN.
        f[14 + 6] = 0x00;
        f[14 + 7] = 0x10;
        assert_eq!(TunnelStack::parse(&f, &cfg).unwrap().depth(), 0);
    }

    #[test]
    fn inner_tags() {
        let spec = FrameSpec {
            inner_vids: &[100, 10],
            ..FrameSpec::default()
        };
        let frame = build_vxlan_frame(&spec);
        let s = TunnelStack::parse(&frame, &ParseConfig::default()).unwrap();
        assert_eq!(s.inner().unwrap().vids(), &[100, 10]);
        assert_eq!(s.inner().unwrap().l2().vids(), [100, 10]);
        let spec = FrameSpec {
            inner_vids: &[1, 2, 3],
            ..FrameSpec::default()
        };
        let frame = build_vxlan_frame(&spec);
        assert_eq!(
            TunnelStack::parse(&frame, &ParseConfig::default()).unwrap_err(),
            ParseDrop::InnerTooManyVlanTags
        );
        let spec = FrameSpec {
            outer_vids: &[7, 8, 9],
            ..FrameSpec::default()
        };
        let frame = build_vxlan_frame(&spec);
        assert_eq!(
            TunnelStack::parse(&frame, &ParseConfig::default()).unwrap_err(),
            ParseDrop::TooManyVlanTags
        );
        let spec = FrameSpec {
            outer_vids: &[7],
            ..FrameSpec::default()
        };
        let frame = build_vxlan_frame(&spec);
        let s = TunnelStack::parse(&frame, &ParseConfig::default()).unwrap();
        assert_eq!(s.layer(0).unwrap().outer_vids(), &[7]);
    }

    #[test]
    fn nesting_follows_depth() {
        let inner = build_vxlan_frame(&FrameSpec {
            vni: 2,
            ..FrameSpec::default()
        });
        let outer = build_vxlan_frame(&FrameSpec {
            vni: 1,
            inner_bytes: Some(&inner),
            ..FrameSpec::default()
        });
        let s1 = TunnelStack::parse(&outer, &ParseConfig::default()).unwrap();
        assert_eq!(s1.depth(), 1);
        let cfg = ParseConfig::default().with_max_depth(4).unwrap();
        let s2 = TunnelStack::parse(&outer, &cfg).unwrap();
        assert_eq!(s2.depth(), 2);
        assert_eq!(
            s2.layers().map(|l| l.vni()).collect::<std::vec::Vec<_>>(),
            [1, 2]
        );
        // The inner frame is the innermost one.
        assert_eq!(
            s2.inner_frame().unwrap(),
            &inner
                [s2.layer(1).unwrap().payload_offset() - s2.layer(1).unwrap().ethernet_offset()..]
        );
    }
    fn same(
        a: &Result<TunnelStack<'_>, ParseDrop>,
        b: &Result<TunnelStack<'_>, ParseDrop>,
    ) -> bool {
        match (a, b) {
            (Err(x), Err(y)) => x == y,
            (Ok(x), Ok(y)) => {
                x.depth() == y.depth()
                    && x.layers().zip(y.layers()).all(|(l, m)| l.layer == m.layer)
                    && x.inner()
                        .map(|i| (i.offset(), i.end(), i.ethertype(), i.vids().to_vec()))
                        == y.inner()
                            .map(|i| (i.offset(), i.end(), i.ethertype(), i.vids().to_vec()))
            }
            _ => false,
        }
    }

    /// The configurations the agreement tests run under: both policies,
    /// a second VXLAN port, a first VXLAN port other than 4789, GBP, no
    /// VXLAN port at all, and nesting (which turns the fast path off).
    fn configs() -> std::vec::Vec<ParseConfig> {
        let mut out = std::vec::Vec::new();
        for policy in [ReservedBitsPolicy::Ignore, ReservedBitsPolicy::Strict] {
            let d = ParseConfig::default().with_reserved_bits(policy);
            out.push(d);
            out.push(d.with_vxlan_port(8472).unwrap());
            out.push(
                ParseConfig::empty()
                    .with_vxlan_port(8472)
                    .unwrap()
                    .with_reserved_bits(policy),
            );
            out.push(
                ParseConfig::empty()
                    .with_gpe_port(4790)
                    .unwrap()
                    .with_reserved_bits(policy),
            );
            out.push(d.with_gbp(true));
            out.push(d.with_max_depth(2).unwrap());
        }
        out
    }

    /// The fast path as `parse_single_with` runs it (IPv4 inline, IPv6 in
    /// `parse_single_with_ip6`): the layer and the VNI it hands on.
    fn fast_with(frame: &[u8], cfg: &ParseConfig) -> Option<(Layer, u32)> {
        fast_path_ip4(frame, cfg)
            .or_else(|| fast_ip6(frame, &cfg.fast))
            .map(|(found, vni)| (found.0, vni))
    }

    /// Checks that both entry points give what the general walker gives
    /// for `frame` under `cfg`, naming the first difference.
    fn agree(frame: &[u8], cfg: &ParseConfig) -> Result<(), std::string::String> {
        let general = TunnelStack::parse_general(frame, cfg);
        if !same(&TunnelStack::parse(frame, cfg), &general) {
            return Err(std::format!("TunnelStack::parse differs under {cfg:?}"));
        }
        // parse_single follows one layer whatever the depth.
        let one_cfg = ParseConfig {
            max_depth: 1,
            ..*cfg
        };
        let general = TunnelStack::parse_general(frame, &one_cfg);
        agree_single(frame, cfg, parse_single(frame, cfg), &general)
            .map_err(|e| std::format!("parse_single: {e}"))?;
        // parse_single_with hands the same result to its continuation,
        // from the fast path's copy for each underlay or the general one.
        let with = parse_single_with(frame, cfg, |r| r);
        agree_single(frame, cfg, with, &general).map_err(|e| std::format!("parse_single_with: {e}"))
    }

    /// Checks one `parse_single`-style result against the general walker's
    /// one-layer parse of the same frame.
    fn agree_single(
        frame: &[u8],
        cfg: &ParseConfig,
        single: Result<Option<SingleLayer<'_>>, ParseDrop>,
        general: &Result<TunnelStack<'_>, ParseDrop>,
    ) -> Result<(), std::string::String> {
        match (&single, general) {
            (Ok(Some(one)), Ok(g)) => {
                let (i, gi) = (one.inner(), g.inner().ok_or("no inner frame")?);
                let l = g.layer(0).ok_or("no layer")?;
                let got = (
                    one.layer,
                    one.vni(),
                    one.layer().src_port(),
                    (i.offset(), i.end(), i.ethertype(), i.vids().to_vec()),
                    (i.src_addr(), i.dst_addr()),
                );
                let want = (
                    g.first,
                    l.vni(),
                    read_u16(frame, l.udp_offset()),
                    (gi.offset(), gi.end(), gi.ethertype(), gi.vids().to_vec()),
                    (
                        MacAddr::from_bytes(&frame[gi.offset() + 6..]),
                        MacAddr::from_bytes(&frame[gi.offset()..]),
                    ),
                );
                if got != want {
                    return Err(std::format!("parse_single {got:?}, general {want:?}"));
                }
            }
            (Ok(None), Ok(g)) if g.inner().is_none() => {}
            (Err(a), Err(b)) if a == b => {}
            _ => {
                return Err(std::format!(
                    "parse_single {:?} vs general {:?} under {cfg:?}",
                    single.map(|s| s.map(|o| o.vni())),
                    general.as_ref().map(|g| g.depth())
                ))
            }
        }
        Ok(())
    }

    /// Every byte of valid frames (both underlays, several ports and inner
    /// shapes) set to values that matter to some check, and every
    /// truncation, under every configuration: the fast path never
    /// disagrees with the general walker.
    #[test]
    fn fast_path_agrees_on_every_byte_and_cut() {
        let cfgs = configs();
        let inner_tagged = [100u16];
        for ipv6 in [false, true] {
            for dport in [4789, 8472, 4790, 0] {
                for inner_vids in [&[][..], &inner_tagged[..]] {
                    let good = build_vxlan_frame(&FrameSpec {
                        ipv6,
                        dport,
                        inner_vids,
                        ..FrameSpec::default()
                    });
                    let mut frames = std::vec::Vec::new();
                    for cut in 0..good.len() {
                        frames.push(good[..cut].to_vec());
                    }
                    for at in 0..good.len().min(100) {
                        for v in [
                            0x00, 0xff, 0x01, 0x08, 0x10, 0x20, 0x40, 0x80, 0x45, 0x60, 0x11,
                        ] {
                            let mut f = good.clone();
                            f[at] = v;
                            frames.push(f.clone());
                            f[at] = good[at] ^ v;
                            frames.push(f);
                        }
                    }
                    for f in &frames {
                        for cfg in &cfgs {
                            if let Err(e) = agree(f, cfg) {
                                panic!("{e}\nframe {f:02x?}");
                            }
                        }
                    }
                }
            }
        }
    }

    /// The fast path is taken where it should be: the agreement tests
    /// above would pass with it switched off, this one would not.
    #[test]
    fn fast_path_takes_the_common_shapes() {
        let strict = ParseConfig::default().with_reserved_bits(ReservedBitsPolicy::Strict);
        let first_8472 = ParseConfig::empty().with_vxlan_port(8472).unwrap();
        for ipv6 in [false, true] {
            for (cfg, dport) in [
                (ParseConfig::default(), 4789),
                (strict, 4789),
                (first_8472, 8472),
            ] {
                let frame = build_vxlan_frame(&FrameSpec {
                    ipv6,
                    dport,
                    ..FrameSpec::default()
                });
                let fast = parse_single_fast(&frame, &cfg)
                    .unwrap_or_else(|| panic!("fast path not taken: v6 {ipv6}, {cfg:?}"));
                // parse_single_with's own copy of the fast path, too.
                let then = fast_with(&frame, &cfg)
                    .unwrap_or_else(|| panic!("fast path not taken: v6 {ipv6}, {cfg:?}"));
                assert_eq!(then, (fast.layer, fast.vni()));
                let general = parse_single_general(&frame, &cfg).unwrap().unwrap();
                assert_eq!(fast.vni(), general.vni());
                // A tagged inner frame and a second VXLAN port are the
                // general walker's.
                let tagged = build_vxlan_frame(&FrameSpec {
                    ipv6,
                    dport,
                    inner_vids: &[100],
                    ..FrameSpec::default()
                });
                assert!(parse_single_fast(&tagged, &cfg).is_none());
                assert!(fast_with(&tagged, &cfg).is_none());
            }
            let second = ParseConfig::default().with_vxlan_port(8472).unwrap();
            let frame = build_vxlan_frame(&FrameSpec {
                ipv6,
                dport: 8472,
                ..FrameSpec::default()
            });
            assert!(parse_single_fast(&frame, &second).is_none());
            assert!(parse_single(&frame, &second).unwrap().is_some());
        }
    }

    /// An inner Ethernet frame of 64 bytes: broadcast from 02:..:01, the
    /// given tags (TPID, VID), outermost first, then `ethertype`.
    fn inner_with(tags: &[(u16, u16)], ethertype: u16) -> std::vec::Vec<u8> {
        let mut f = std::vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1];
        for &(tpid, vid) in tags {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&vid.to_be_bytes());
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.resize(64, 0x5a);
        f
    }

    /// The inner-TPID test is one bit test, a superset of the three TPIDs:
    /// the fast path declines every TPID and some other EtherTypes (which
    /// the general walker then parses the same), takes IPv4, IPv6, ARP
    /// and others, and every inner EtherType gets the general walker's
    /// answer.
    #[test]
    fn fast_path_inner_ethertype_superset() {
        let cfg = ParseConfig::default();
        for ipv6 in [false, true] {
            // (EtherType, fast path takes it)
            for (ethertype, fast) in [
                (0x0800u16, true),
                (0x86dd, true),
                (0x0806, true),
                (0x8847, true),  // MPLS
                (0x88cc, true),  // LLDP
                (0x9000, true),  // loopback
                (0x0040, true),  // an 802.3 length
                (0x8035, false), // RARP
                (0x8863, false), // PPPoE discovery
                (0x88e5, false), // MACsec
                (0x8906, false), // FCoE
                (0x88f7, false), // PTP
                (0x8100, false),
                (0x88a8, false),
                (0x9100, false),
            ] {
                let inner = inner_with(&[], ethertype);
                let frame = build_vxlan_frame(&FrameSpec {
                    ipv6,
                    inner_bytes: Some(&inner),
                    ..FrameSpec::default()
                });
                assert_eq!(
                    parse_single_fast(&frame, &cfg).is_some(),
                    fast,
                    "{ethertype:#06x} v6 {ipv6}"
                );
                assert_eq!(
                    fast_with(&frame, &cfg).is_some(),
                    fast,
                    "{ethertype:#06x} v6 {ipv6}"
                );
                if let Err(e) = agree(&frame, &cfg) {
                    panic!("{ethertype:#06x}: {e}");
                }
                // A bare TPID with nothing after it is a truncated tag;
                // everything else is read as the inner EtherType.
                if !EtherType(ethertype).is_vlan_tpid() {
                    let one = parse_single(&frame, &cfg).unwrap().unwrap();
                    assert_eq!(one.inner().ethertype(), EtherType(ethertype));
                    assert_eq!(one.inner().vids(), &[] as &[u16]);
                    let with = parse_single_with(&frame, &cfg, |r| {
                        r.map(|o| o.map(|o| (o.inner().ethertype(), o.vni())))
                    });
                    assert_eq!(with, Ok(Some((EtherType(ethertype), 100))));
                }
            }
            // Every EtherType: the fast path only ever says yes where the
            // general walker agrees.
            for ethertype in 0..=u16::MAX {
                let inner = inner_with(&[], ethertype);
                let frame = build_vxlan_frame(&FrameSpec {
                    ipv6,
                    inner_bytes: Some(&inner),
                    ..FrameSpec::default()
                });
                if let Some(one) = parse_single_fast(&frame, &cfg) {
                    assert!(!EtherType(ethertype).is_vlan_tpid(), "{ethertype:#06x}");
                    assert_eq!(one.inner().ethertype(), EtherType(ethertype));
                }
                if let Err(e) = agree(&frame, &cfg) {
                    panic!("{ethertype:#06x}: {e}");
                }
            }
        }
    }

    /// Inner frames tagged with each TPID, singly and doubly, still report
    /// their VIDs and the EtherType after the tags (through the general
    /// walker).
    #[test]
    fn inner_tpids_report_their_vids() {
        let cfg = ParseConfig::default();
        for ipv6 in [false, true] {
            for tags in [
                &[(0x8100u16, 100u16)][..],
                &[(0x88a8, 200)],
                &[(0x9100, 300)],
                &[(0x88a8, 10), (0x8100, 20)],
                &[(0x9100, 30), (0x8100, 40)],
            ] {
                let inner = inner_with(tags, 0x0800);
                let frame = build_vxlan_frame(&FrameSpec {
                    ipv6,
                    inner_bytes: Some(&inner),
                    ..FrameSpec::default()
                });
                let vids: std::vec::Vec<u16> = tags.iter().map(|&(_, vid)| vid).collect();
                assert!(parse_single_fast(&frame, &cfg).is_none());
                let one = parse_single(&frame, &cfg).unwrap().unwrap();
                assert_eq!(one.inner().vids(), &vids[..], "{tags:x?}");
                assert_eq!(one.inner().ethertype(), EtherType::IPV4);
                let with = parse_single_with(&frame, &cfg, |r| {
                    r.map(|o| o.map(|o| (o.inner().vids().to_vec(), o.inner().ethertype())))
                });
                assert_eq!(with, Ok(Some((vids.clone(), EtherType::IPV4))));
                if let Err(e) = agree(&frame, &cfg) {
                    panic!("{tags:x?}: {e}");
                }
            }
        }
    }

    /// The fast path takes only an IP payload that the UDP datagram fills
    /// exactly and an IP packet that ends with the frame; a longer IP
    /// length (bytes after the datagram) or bytes after the IP packet (an
    /// Ethernet trailer) go to the general walker, which ends the inner
    /// frame with the datagram.
    #[test]
    fn fast_path_takes_the_exact_length_shape() {
        let cfg = ParseConfig::default();
        for ipv6 in [false, true] {
            let good = build_vxlan_frame(&FrameSpec {
                ipv6,
                ..FrameSpec::default()
            });
            let at = if ipv6 { 14 + 4 } else { 14 + 2 };
            let ip_len = read_u16(&good, at);
            let udp_end = good.len();
            assert!(parse_single_fast(&good, &cfg).is_some());
            // A trailer after the IP packet: the general walker's, which
            // ends the inner frame with the datagram.
            let mut trailer = good.clone();
            trailer.extend_from_slice(&[0xee; 4]);
            assert!(parse_single_fast(&trailer, &cfg).is_none());
            assert!(fast_with(&trailer, &cfg).is_none());
            let one = parse_single(&trailer, &cfg).unwrap().unwrap();
            assert_eq!(one.inner().end(), udp_end);
            assert!(agree(&trailer, &cfg).is_ok());
            // The IP packet 1 to 4 bytes longer than the datagram, the
            // frame long enough: the general walker's, same answer.
            for extra in 1..=4u16 {
                let mut f = trailer.clone();
                f[at..at + 2].copy_from_slice(&(ip_len + extra).to_be_bytes());
                assert!(parse_single_fast(&f, &cfg).is_none(), "extra {extra}");
                assert!(fast_with(&f, &cfg).is_none());
                if let Err(e) = agree(&f, &cfg) {
                    panic!("extra {extra}: {e}");
                }
                // The IPv4 header checksum is not checked: the parse
                // succeeds and the datagram ends where its length says.
                let one = parse_single(&f, &cfg).unwrap().unwrap();
                assert_eq!(one.inner().end(), udp_end);
                assert_eq!(one.vni(), 100);
            }
            // The IP packet longer than the frame: a drop, from both.
            let mut f = good.clone();
            f[at..at + 2].copy_from_slice(&(ip_len + 1).to_be_bytes());
            assert!(parse_single_fast(&f, &cfg).is_none());
            assert!(parse_single(&f, &cfg).is_err());
            assert!(agree(&f, &cfg).is_ok());
        }
    }

    /// The fast path's frame lengths are `64..=65549` over IPv4 (65549:
    /// the longest IPv4 packet) and `84..=65589` over IPv6 (a 16-bit
    /// payload length): past the top, a frame whose lengths match only
    /// modulo 2^16 (the fast path compares 16-bit fields) is the general
    /// walker's, which reads it as a trailer.
    #[test]
    fn fast_path_length_bounds() {
        let cfg = ParseConfig::default();
        // The longest UDP datagram each underlay carries.
        for ipv6 in [false, true] {
            let ip_header = if ipv6 { 0 } else { 20 };
            let longest = build_vxlan_frame(&FrameSpec {
                ipv6,
                inner_len: 0xffff - ip_header - UDP_HEADER_LEN - VXLAN_LEN,
                ..FrameSpec::default()
            });
            let top = if ipv6 { IP6_UDP + 0xffff } else { FAST_MAX_LEN };
            assert_eq!(longest.len(), top);
            assert!(parse_single_fast(&longest, &cfg).is_some());
            assert!(fast_with(&longest, &cfg).is_some());
            let one = parse_single(&longest, &cfg).unwrap().unwrap();
            assert_eq!(one.inner().end(), longest.len());
            assert!(agree(&longest, &cfg).is_ok());
        }
        for ipv6 in [false, true] {
            let good = build_vxlan_frame(&FrameSpec {
                ipv6,
                ..FrameSpec::default()
            });
            // The shortest frame: an inner header and nothing else.
            let shortest = build_vxlan_frame(&FrameSpec {
                ipv6,
                inner_bytes: Some(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0]),
                ..FrameSpec::default()
            });
            assert_eq!(shortest.len(), if ipv6 { IP6_MIN } else { IP4_MIN });
            assert!(parse_single_fast(&shortest, &cfg).is_some());
            assert!(fast_with(&shortest, &cfg).is_some());
            // One byte short: the general walker's, a drop.
            let short = &shortest[..shortest.len() - 1];
            assert!(parse_single_fast(short, &cfg).is_none());
            assert!(parse_single(short, &cfg).is_err());
            assert!(agree(short, &cfg).is_ok());
            // 2^16 bytes of trailer: every length field still matches the
            // frame length modulo 2^16.
            let mut wrapped = good.clone();
            wrapped.resize(good.len() + 0x1_0000, 0);
            assert!(parse_single_fast(&wrapped, &cfg).is_none());
            assert!(fast_with(&wrapped, &cfg).is_none());
            let one = parse_single(&wrapped, &cfg).unwrap().unwrap();
            assert_eq!(one.inner().end(), good.len());
            assert!(agree(&wrapped, &cfg).is_ok());
        }
    }

    /// The two blocks of each template never check the same byte offset
    /// (`Blocks::join` would make the template match nothing), and each
    /// checks what it should: an IPv4 and an IPv6 VXLAN frame match their
    /// own template and not the other's.
    #[test]
    fn fast_templates_are_disjoint() {
        for cfg in configs() {
            let t = cfg.fast;
            if t == FastTemplate::NEVER {
                continue;
            }
            for b in [t.ip4, t.ip6] {
                assert_ne!(b, Blocks::NEVER, "{cfg:?}");
                for i in 0..16 {
                    assert_eq!(b.mask_a[i] & b.mask_b[i], 0, "{cfg:?} byte {i}");
                }
            }
        }
        assert_eq!(
            Blocks::join(([1; 16], [0; 16]), ([1; 16], [0; 16])),
            Blocks::NEVER
        );
        assert_eq!(
            Blocks::join(([1; 16], [2; 16]), ([0; 16], [0; 16])),
            Blocks::NEVER
        );
        let cfg = ParseConfig::default();
        for ipv6 in [false, true] {
            let f = build_vxlan_frame(&FrameSpec {
                ipv6,
                ..FrameSpec::default()
            });
            let udp = if ipv6 { IP6_UDP } else { IP4_UDP };
            let a: &[u8; 16] = f[IP_AT..].first_chunk().unwrap();
            let b: &[u8; 16] = f[udp + TUNNEL_AT..].first_chunk().unwrap();
            assert_eq!(both_match(a, b, &cfg.fast.ip4), !ipv6);
            assert_eq!(both_match(a, b, &cfg.fast.ip6), ipv6);
            assert_eq!(both_match_words(a, b, &cfg.fast.ip4), !ipv6);
            assert_eq!(both_match_words(a, b, &cfg.fast.ip6), ipv6);
        }
    }

    /// With no VXLAN port configured, a datagram to port 0 is not VXLAN
    /// (the fast path once took the empty port slot for a match).
    #[test]
    fn no_vxlan_port_is_not_port_zero() {
        let cfg = ParseConfig::empty().with_gpe_port(4790).unwrap();
        let frame = build_vxlan_frame(&FrameSpec {
            dport: 0,
            ..FrameSpec::default()
        });
        assert!(parse_single(&frame, &cfg).unwrap().is_none());
        assert_eq!(TunnelStack::parse(&frame, &cfg).unwrap().depth(), 0);
    }

    proptest::proptest! {
        /// SSE2 and the portable words give the same answer, on random
        /// bytes and on bytes made to match a real template but for a few
        /// flipped bits.
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        #[test]
        fn sse2_and_words_agree(
            a in proptest::array::uniform16(proptest::num::u8::ANY),
            b in proptest::array::uniform16(proptest::num::u8::ANY),
            which in 0usize..12,
            v6 in proptest::bool::ANY,
            exact in proptest::bool::ANY,
            flip in proptest::option::of((0usize..32, 0u8..8)),
        ) {
            let t = configs()[which].fast;
            let t = if v6 { t.ip6 } else { t.ip4 };
            let (mut a, mut b) = (a, b);
            if exact {
                for i in 0..16 {
                    a[i] = (a[i] & !t.mask_a[i]) | (t.want[i] & t.mask_a[i]);
                    b[i] = (b[i] & !t.mask_b[i]) | (t.want[i] & t.mask_b[i]);
                }
            }
            if let Some((at, bit)) = flip {
                if at < 16 { a[at] ^= 1 << bit } else { b[at - 16] ^= 1 << bit }
            }
            proptest::prop_assert_eq!(both_match_sse2(&a, &b, &t), both_match_words(&a, &b, &t));
            // Made to match, they do (unless the template is NEVER).
            if exact && flip.is_none() && t != Blocks::NEVER {
                proptest::prop_assert!(both_match_words(&a, &b, &t));
            }
        }

        /// The fast path and the general walker agree on every frame,
        /// valid or corrupted, under every configuration: same layers,
        /// same inner frame, same drop.
        #[test]
        fn fast_path_agrees_with_general(
            ipv6 in proptest::bool::ANY,
            vni in 0u32..0x100_0000,
            inner_len in 14usize..200,
            dport in proptest::sample::select(std::vec![4789u16, 8472, 4790, 0, 53]),
            sport in proptest::num::u16::ANY,
            flips in proptest::collection::vec((0usize..120, proptest::num::u8::ANY), 0..4),
            cut in proptest::option::of(0usize..200),
        ) {
            let mut frame = build_vxlan_frame(&FrameSpec { ipv6, vni, inner_len, dport, sport, ..FrameSpec::default() });
            for (at, v) in flips {
                if at < frame.len() {
                    frame[at] = v;
                }
            }
            if let Some(c) = cut {
                frame.truncate(c.min(frame.len()));
            }
            for cfg in configs() {
                if let Err(e) = agree(&frame, &cfg) {
                    proptest::prop_assert!(false, "{}", e);
                }
            }
        }
    }
}
