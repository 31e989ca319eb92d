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
}

impl Default for ParseConfig {
    /// VXLAN on 4789, GPE on 4790, reserved bits ignored, no GBP, one layer.
    fn default() -> Self {
        ParseConfig {
            vxlan_ports: [vxlan::PORT, 0, 0, 0],
            vxlan_port_count: 1,
            gpe_ports: [vxlan::GPE_PORT, 0, 0, 0],
            gpe_port_count: 1,
            reserved_bits: ReservedBitsPolicy::Ignore,
            gbp: false,
            max_depth: 1,
        }
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
        }
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
        Ok(self)
    }

    /// Adds a UDP port that carries VXLAN-GPE.
    pub fn with_gpe_port(mut self, port: u16) -> Result<Self, ConfigError> {
        self.check_new_port(port)?;
        let n = usize::from(self.gpe_port_count);
        *self.gpe_ports.get_mut(n).ok_or(ConfigError::TooManyPorts)? = port;
        self.gpe_port_count += 1;
        Ok(self)
    }

    /// Sets the reserved-bit policy.
    pub const fn with_reserved_bits(mut self, policy: ReservedBitsPolicy) -> Self {
        self.reserved_bits = policy;
        self
    }

    /// Reads headers on VXLAN ports as VXLAN-GBP.
    pub const fn with_gbp(mut self, gbp: bool) -> Self {
        self.gbp = gbp;
        self
    }

    /// How many nested tunnels to follow, 1 to [`MAX_LAYERS`].
    pub fn with_max_depth(mut self, depth: u8) -> Result<Self, ConfigError> {
        if depth == 0 || usize::from(depth) > MAX_LAYERS {
            return Err(ConfigError::DepthOutOfRange(depth));
        }
        self.max_depth = depth;
        Ok(self)
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

    /// What a datagram to `port` is taken for, if anything.
    #[inline]
    fn kind_of(&self, port: u16) -> Option<Kind> {
        if self.vxlan_ports().contains(&port) {
            Some(if self.gbp { Kind::Gbp } else { Kind::Vxlan })
        } else if self.gpe_ports().contains(&port) {
            Some(Kind::Gpe)
        } else {
            None
        }
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

/// One tunnel layer: where each outer header starts and what the tunnel
/// header says. Offsets are from the start of the whole frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layer {
    eth: u32,
    ip: u32,
    udp: u32,
    end: u32,
    outer_vids: [u16; MAX_VLAN_TAGS],
    outer_tag_count: u8,
    ipv6: bool,
    flags: u8,
    header: TunnelHeader,
}

impl Default for Layer {
    fn default() -> Self {
        Layer {
            eth: 0,
            ip: 0,
            udp: 0,
            end: 0,
            outer_vids: [0; MAX_VLAN_TAGS],
            outer_tag_count: 0,
            ipv6: false,
            flags: 0,
            header: TunnelHeader::Vxlan(VxlanRepr { vni: 0 }),
        }
    }
}

/// The inner Ethernet frame found under the last layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InnerFrame {
    offset: u32,
    end: u32,
    l2: L2Header,
}

impl InnerFrame {
    /// Offset of the inner Ethernet header in the frame.
    pub const fn offset(&self) -> usize {
        self.offset as usize
    }
    /// End of the inner frame (the end of the carrying UDP datagram).
    pub const fn end(&self) -> usize {
        self.end as usize
    }
    /// The parsed inner Ethernet header with its VLAN tags.
    pub const fn l2(&self) -> &L2Header {
        &self.l2
    }
    /// Inner source MAC.
    pub const fn src_addr(&self) -> MacAddr {
        self.l2.src_addr
    }
    /// Inner destination MAC.
    pub const fn dst_addr(&self) -> MacAddr {
        self.l2.dst_addr
    }
    /// The EtherType after any inner VLAN tags.
    pub const fn ethertype(&self) -> EtherType {
        self.l2.ethertype
    }
    /// Inner VLAN IDs, outermost first.
    pub fn vids(&self) -> &[crate::wire::VlanTagRepr] {
        self.l2.tags()
    }
}

/// Every tunnel layer of a frame, outermost first, and the inner frame.
#[derive(Debug, Clone, Copy)]
pub struct TunnelStack<'a> {
    buf: &'a [u8],
    layers: [Layer; MAX_LAYERS],
    depth: u8,
    inner: Option<InnerFrame>,
}

/// One layer of a [`TunnelStack`], with access to the frame's bytes.
#[derive(Debug, Clone, Copy)]
pub struct LayerView<'a> {
    buf: &'a [u8],
    layer: &'a Layer,
}

impl<'a> LayerView<'a> {
    /// Offset of the outer Ethernet header.
    pub fn ethernet_offset(&self) -> usize {
        self.layer.eth as usize
    }
    /// Offset of the outer IP header.
    pub fn ip_offset(&self) -> usize {
        self.layer.ip as usize
    }
    /// Offset of the UDP header.
    pub fn udp_offset(&self) -> usize {
        self.layer.udp as usize
    }
    /// Offset of the VXLAN/GPE/GBP header.
    pub fn header_offset(&self) -> usize {
        self.udp_offset() + crate::wire::udp::HEADER_LEN
    }
    /// Offset of what follows the tunnel header (the inner frame).
    pub fn payload_offset(&self) -> usize {
        self.header_offset() + VXLAN_LEN
    }
    /// End of the UDP datagram.
    pub fn end(&self) -> usize {
        self.layer.end as usize
    }
    /// Outer source MAC.
    pub fn src_mac(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buf[self.ethernet_offset() + 6..])
    }
    /// Outer destination MAC.
    pub fn dst_mac(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buf[self.ethernet_offset()..])
    }
    /// Outer VLAN IDs, outermost first.
    pub fn outer_vids(&self) -> &'a [u16] {
        &self.layer.outer_vids[..usize::from(self.layer.outer_tag_count)]
    }
    /// True for an IPv6 underlay.
    pub fn is_ipv6(&self) -> bool {
        self.layer.ipv6
    }
    /// Outer source and destination addresses.
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
    pub fn src_addr(&self) -> IpAddr {
        self.ips().src()
    }
    /// Outer destination address.
    pub fn dst_addr(&self) -> IpAddr {
        self.ips().dst()
    }
    /// UDP source port.
    pub fn src_port(&self) -> u16 {
        read_u16(self.buf, self.udp_offset())
    }
    /// UDP destination port.
    pub fn dst_port(&self) -> u16 {
        read_u16(self.buf, self.udp_offset() + 2)
    }
    /// The first byte of the tunnel header (all flags).
    pub fn flags(&self) -> u8 {
        self.layer.flags
    }
    /// The parsed tunnel header.
    pub fn header(&self) -> TunnelHeader {
        self.layer.header
    }
    /// The VNI.
    pub fn vni(&self) -> u32 {
        self.layer.header.vni()
    }
    /// The bytes after the tunnel header, to the end of the datagram.
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.payload_offset()..self.end()]
    }
}

impl<'a> TunnelStack<'a> {
    /// Parses `frame` as it arrived on the underlay.
    #[inline]
    pub fn parse(frame: &'a [u8], config: &ParseConfig) -> Result<TunnelStack<'a>, ParseDrop> {
        let mut stack = TunnelStack {
            buf: frame,
            layers: [Layer::default(); MAX_LAYERS],
            depth: 0,
            inner: None,
        };
        let mut at = 0;
        let mut end = frame.len();
        while usize::from(stack.depth) < usize::from(config.max_depth) {
            let nested = stack.depth > 0;
            let layer = match parse_layer(&frame[..end], at, config) {
                Ok(Some(layer)) => layer,
                Ok(None) => break,
                // Inside a tunnel, whatever the tenant sends is theirs:
                // a malformed inner packet ends the walk, not the frame.
                Err(_) if nested => break,
                Err(e) => return Err(e),
            };
            stack.layers[usize::from(stack.depth)] = layer;
            stack.depth += 1;
            if !layer.header.carries_ethernet() {
                stack.inner = None;
                return Ok(stack);
            }
            at = layer.udp as usize + crate::wire::udp::HEADER_LEN + VXLAN_LEN;
            end = layer.end as usize;
            let l2 = match L2Header::parse(&frame[at..end]) {
                Ok(l2) => l2,
                Err(_) if nested => {
                    // A nested "tunnel" whose inner frame is broken was
                    // tenant payload after all: keep the outer view.
                    stack.depth -= 1;
                    break;
                }
                Err(crate::wire::Error::TooManyHeaders) => {
                    return Err(ParseDrop::InnerTooManyVlanTags)
                }
                Err(_) => return Err(ParseDrop::InnerTruncated),
            };
            stack.inner = Some(InnerFrame {
                offset: to_u32(at),
                end: to_u32(end),
                l2,
            });
        }
        Ok(stack)
    }

    /// True when the frame carried at least one tunnel layer.
    pub fn is_tunnel(&self) -> bool {
        self.depth > 0
    }

    /// How many tunnel layers were found.
    pub fn depth(&self) -> usize {
        usize::from(self.depth)
    }

    /// Layer `i`, outermost first.
    pub fn layer(&self, i: usize) -> Option<LayerView<'_>> {
        (i < self.depth()).then(|| LayerView {
            buf: self.buf,
            layer: &self.layers[i],
        })
    }

    /// All layers, outermost first.
    pub fn layers(&self) -> impl Iterator<Item = LayerView<'_>> + '_ {
        self.layers[..self.depth()]
            .iter()
            .map(move |layer| LayerView {
                buf: self.buf,
                layer,
            })
    }

    /// The innermost Ethernet frame's header, when the last layer carries
    /// Ethernet.
    pub fn inner(&self) -> Option<&InnerFrame> {
        self.inner.as_ref()
    }

    /// The innermost Ethernet frame's bytes.
    pub fn inner_frame(&self) -> Option<&'a [u8]> {
        self.inner.map(|i| &self.buf[i.offset()..i.end()])
    }

    /// The whole frame.
    pub fn frame(&self) -> &'a [u8] {
        self.buf
    }
}

/// Frame offsets fit in 32 bits on every buffer this crate sees; saturate
/// rather than wrap on a pathological one so indexing then fails safely.
#[inline(always)]
fn to_u32(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// Parses one layer starting with the Ethernet header at `at`. `buf` ends
/// where the enclosing datagram (or the frame) ends.
#[inline(always)]
fn parse_layer(buf: &[u8], at: usize, config: &ParseConfig) -> Result<Option<Layer>, ParseDrop> {
    let l2 = match L2Header::parse(&buf[at..]) {
        Ok(l2) => l2,
        Err(crate::wire::Error::TooManyHeaders) => return Err(ParseDrop::TooManyVlanTags),
        Err(_) => return Err(ParseDrop::EthernetTruncated),
    };
    let ip = at + l2.header_len();
    let (udp, udp_limit, ipv6) = match l2.ethertype {
        EtherType::IPV4 => {
            let Some(h) = buf.get(ip..ip + 20) else {
                return Err(ParseDrop::Ipv4Malformed);
            };
            let ihl = usize::from(h[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
            if h[0] >> 4 != 4 || ihl < 20 || total < ihl || ip + total > buf.len() {
                return Err(ParseDrop::Ipv4Malformed);
            }
            if h[9] != IpProtocol::UDP.0 {
                return Ok(None);
            }
            let frag = u16::from_be_bytes([h[6], h[7]]);
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
            let Ok(p) = Ipv6Packet::new_checked(&buf[ip..]) else {
                return Err(ParseDrop::Ipv6Malformed);
            };
            if p.version() != 6 {
                return Err(ParseDrop::Ipv6Malformed);
            }
            let limit = ip + crate::wire::ipv6::HEADER_LEN + usize::from(p.payload_len());
            let (proto, offset, fragment) = if p.next_header() == IpProtocol::UDP {
                (IpProtocol::UDP, crate::wire::ipv6::HEADER_LEN, None)
            } else {
                match p.upper_layer() {
                    Ok(up) => (up.protocol, up.offset, up.fragment),
                    Err(_) => return Err(ParseDrop::Ipv6Malformed),
                }
            };
            if proto != IpProtocol::UDP {
                return Ok(None);
            }
            if let Some(f) = fragment.filter(|f| f.is_real_fragment()) {
                let udp = ip + offset;
                if f.offset == 0
                    && udp + 4 <= limit
                    && config.kind_of(read_u16(buf, udp + 2)).is_some()
                {
                    return Err(ParseDrop::Fragment);
                }
                return Ok(None);
            }
            (ip + offset, limit, true)
        }
        _ => return Ok(None),
    };
    // UDP: header inside the IP payload, length field within it.
    if udp + 8 > udp_limit {
        return Err(ParseDrop::UdpMalformed);
    }
    let Some(kind) = config.kind_of(read_u16(buf, udp + 2)) else {
        return Ok(None);
    };
    let udp_len = usize::from(read_u16(buf, udp + 4));
    if udp_len < 8 || udp + udp_len > udp_limit {
        return Err(ParseDrop::UdpMalformed);
    }
    let end = udp + udp_len;
    let Some(h) = buf
        .get(udp + 8..udp + 8 + VXLAN_LEN)
        .filter(|_| udp + 8 + VXLAN_LEN <= end)
    else {
        return Err(ParseDrop::TunnelHeaderTruncated);
    };
    let view = VxlanHeader::new_unchecked(h);
    let parsed = match kind {
        Kind::Vxlan => VxlanRepr::parse(&view, config.reserved_bits).map(TunnelHeader::Vxlan),
        Kind::Gpe => GpeRepr::parse(&view, config.reserved_bits).map(TunnelHeader::Gpe),
        Kind::Gbp => GbpRepr::parse(&view, config.reserved_bits).map(TunnelHeader::Gbp),
    };
    let header = match parsed {
        Ok(header) => header,
        Err(crate::wire::Error::Unsupported) => return Ok(None), // I flag clear: not VXLAN
        Err(crate::wire::Error::ReservedBits) => return Err(ParseDrop::ReservedBits),
        Err(crate::wire::Error::BadVersion) => return Err(ParseDrop::GpeBadVersion),
        Err(_) => return Err(ParseDrop::TunnelHeaderTruncated),
    };
    Ok(Some(Layer {
        eth: to_u32(at),
        ip: to_u32(ip),
        udp: to_u32(udp),
        end: to_u32(end),
        outer_vids: l2.vids(),
        outer_tag_count: l2.tag_count,
        ipv6,
        flags: h[0],
        header,
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
        let vids: [u16; 2] = s.inner().unwrap().l2().vids();
        assert_eq!(vids, [100, 10]);
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
}
