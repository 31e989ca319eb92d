//! Decapsulation: validate an underlay frame addressed to us, combine ECN,
//! and strip the outer headers in place.
//!
//! The checks, in order, each a named drop:
//! * the tunnel-stack parser's (lengths, fragments, the `I` flag, reserved
//!   bits per policy, inner Ethernet header);
//! * the outer destination is one of our underlay addresses (or, when
//!   allowed, a multicast group);
//! * the IPv4 header checksum, unless the NIC vouched for it (a wrong one
//!   the NIC found wrong too is a drop of its own; a NIC's "wrong" alone
//!   drops nothing, so one that misreads a tunnel cannot drop good frames);
//! * a non-zero UDP checksum verifies (the NIC's verdicts taken as for
//!   IPv4); a zero one over IPv6 only when configured (RFC 6935/6936);
//! * an inner VLAN tag only when configured (RFC 7348 section 6.1 says a
//!   decapsulating VTEP should drop tagged inner frames unless configured);
//! * ECN per RFC 6040: outer CE over a not-ECT inner packet is dropped.
//!
//! ```
//! use vxlan_core::decap::{decap, DecapConfig};
//! use vxlan_core::frame::{BufFrame, Frame};
//!
//! let wire = vxlan_core::testutil::sample_vxlan_ipv4_frame();
//! let mut storage = [0u8; 256];
//! let mut frame = BufFrame::with_data(&mut storage[..], 0, &wire).unwrap();
//! let cfg = DecapConfig::new("192.0.2.2".parse().unwrap());
//! let info = decap(&mut frame, &cfg).unwrap().expect("VXLAN for us");
//! assert_eq!(info.vni, 100);
//! assert_eq!(info.remote.to_string(), "192.0.2.1");
//! assert_eq!(frame.len(), 42); // the inner ARP frame, outer headers gone
//! ```

use core::fmt;
use core::net::IpAddr;

use crate::ecn::{self, Ecn};
use crate::encap::inner_ip;
use crate::frame::Frame;
use crate::tunnel::{parse_single, parse_single_fast, ParseConfig, ParseDrop, SingleLayer};
use crate::wire::udp::{ChecksumStatus, UdpPacket};
use crate::wire::{checksum, vxlan};

/// The most local underlay addresses a [`DecapConfig`] holds.
pub const MAX_LOCAL_ADDRS: usize = 4;

/// What decapsulation accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecapConfig {
    /// Ports, reserved-bit policy, GBP (one layer is decapsulated).
    pub parse: ParseConfig,
    local: [Option<IpAddr>; MAX_LOCAL_ADDRS],
    /// Accept frames to multicast groups (a multicast underlay).
    pub accept_multicast: bool,
    /// Verify the outer IPv4 header checksum (skipped anyway when the NIC
    /// says it verified it).
    pub verify_ipv4_checksum: bool,
    /// Verify a non-zero outer UDP checksum (skipped when the NIC did).
    pub verify_udp_checksum: bool,
    /// Accept a zero UDP checksum over IPv6 (RFC 6935/6936 tunnels).
    pub allow_ipv6_zero_checksum: bool,
    /// Accept inner frames carrying a VLAN tag.
    pub allow_inner_vlan: bool,
}

impl DecapConfig {
    /// Accepts VXLAN on 4789 to `local`, verifying checksums, refusing
    /// IPv6 zero checksums and inner VLAN tags.
    pub fn new(local: IpAddr) -> Self {
        DecapConfig {
            parse: ParseConfig::default(),
            local: [Some(local), None, None, None],
            accept_multicast: false,
            verify_ipv4_checksum: true,
            verify_udp_checksum: true,
            allow_ipv6_zero_checksum: false,
            allow_inner_vlan: false,
        }
    }

    /// Adds another local underlay address (an IPv6 one beside an IPv4 one,
    /// say). Fails when [`MAX_LOCAL_ADDRS`] are already configured.
    pub fn with_local(mut self, addr: IpAddr) -> Result<Self, DecapConfigError> {
        let slot = self
            .local
            .iter_mut()
            .find(|s| s.is_none())
            .ok_or(DecapConfigError::TooManyLocalAddrs)?;
        *slot = Some(addr);
        Ok(self)
    }

    /// True when `addr` is one of ours.
    #[inline]
    pub fn is_local(&self, addr: IpAddr) -> bool {
        // An unrolled scan: `contains` stays an out-of-line call in a
        // large caller. The slots are compared in place (by reference), not
        // copied out first: the first usually matches, and copying all four
        // 17-byte options costs more than the comparison.
        let [a, b, c, d] = &self.local;
        let want = Some(addr);
        *a == want
            || *b == want
            || *c == want
            || *d == want
            || (self.accept_multicast && addr.is_multicast())
    }
}

/// Why a [`DecapConfig`] could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecapConfigError {
    /// More than [`MAX_LOCAL_ADDRS`] local addresses.
    TooManyLocalAddrs,
}

impl fmt::Display for DecapConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at most {MAX_LOCAL_ADDRS} local underlay addresses")
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DecapConfigError {}

/// Why a VXLAN frame was dropped on decapsulation. Each is a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecapDrop {
    /// The parser refused the frame.
    Parse(ParseDrop),
    /// Addressed to an underlay address that is not ours.
    NotOurAddress,
    /// The outer IPv4 header checksum is wrong.
    Ipv4Checksum,
    /// The outer UDP checksum is wrong.
    UdpChecksum,
    /// The outer IPv4 header checksum is wrong, and the NIC said so too
    /// ([`RxOffloads::ip_checksum_bad`](crate::frame::RxOffloads::ip_checksum_bad)).
    DeviceIpv4Checksum,
    /// The outer (non-zero) UDP checksum is wrong, and the NIC said so too
    /// ([`RxOffloads::l4_checksum_bad`](crate::frame::RxOffloads::l4_checksum_bad)).
    DeviceUdpChecksum,
    /// A zero UDP checksum over IPv6 without RFC 6935 opt-in.
    Ipv6ZeroChecksum,
    /// An inner VLAN tag where none is allowed.
    InnerVlan,
    /// Outer CE over a not-ECT inner packet (RFC 6040).
    EcnCeOnNotEct,
    /// GPE carrying something other than Ethernet.
    NotEthernet,
}

impl DecapDrop {
    /// A short stable name for counters.
    pub const fn as_str(&self) -> &'static str {
        match self {
            DecapDrop::Parse(p) => p.as_str(),
            DecapDrop::NotOurAddress => "not_our_address",
            DecapDrop::Ipv4Checksum => "ipv4_checksum",
            DecapDrop::UdpChecksum => "udp_checksum",
            DecapDrop::DeviceIpv4Checksum => "ipv4_checksum_device",
            DecapDrop::DeviceUdpChecksum => "udp_checksum_device",
            DecapDrop::Ipv6ZeroChecksum => "ipv6_zero_udp_checksum",
            DecapDrop::InnerVlan => "inner_vlan",
            DecapDrop::EcnCeOnNotEct => "ecn_ce_on_not_ect",
            DecapDrop::NotEthernet => "not_ethernet",
        }
    }
}

impl fmt::Display for DecapDrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a decapsulated frame came with: enough to learn and forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decapsulated {
    /// The VNI.
    pub vni: u32,
    /// The remote VTEP (outer source address), for learning.
    pub remote: IpAddr,
    /// The outer UDP source port.
    pub src_port: u16,
    /// GBP's "don't learn" bit.
    pub dont_learn: bool,
    /// GBP's group policy ID.
    pub policy_id: Option<u16>,
    /// The ECN field was changed to carry the outer CE mark inward.
    pub ecn_marked: bool,
}

/// Decapsulates `frame` in place. `Ok(None)`: not VXLAN (hand it to the
/// host stack); `Ok(Some(_))`: the frame now holds the inner Ethernet
/// frame; `Err(_)`: drop it, counting the reason.
#[inline]
pub fn decap<F: Frame>(
    frame: &mut F,
    cfg: &DecapConfig,
) -> Result<Option<Decapsulated>, DecapDrop> {
    decap_one(frame, cfg)
}

/// [`decap`] for the common shape only (what the parser's fast path
/// takes): `None` when the frame has another shape, for the caller to hand
/// to [`decap`]. Lets a caller keep the common verdict in registers, apart
/// from the out-of-line general path's (which returns through memory).
/// Every check of [`decap`] applies; only the parse is the fast path's.
///
/// ```
/// use vxlan_core::decap::{decap, decap_fast, DecapConfig};
/// use vxlan_core::frame::{BufFrame, Frame};
///
/// let cfg = DecapConfig::new("192.0.2.2".parse().unwrap());
/// let wire = vxlan_core::testutil::sample_vxlan_ipv4_frame();
/// let mut storage = [0u8; 256];
/// let mut frame = BufFrame::with_data(&mut storage[..], 0, &wire).unwrap();
/// let info = decap_fast(&mut frame, &cfg)
///     .expect("the common shape")
///     .unwrap()
///     .expect("VXLAN for us");
/// assert_eq!(info.vni, 100);
/// assert_eq!(frame.len(), 42); // the inner ARP frame
///
/// // Two bytes after the IP packet (a trailer): not the common shape,
/// // so the general path decides, with the same answer.
/// let mut padded = wire.to_vec();
/// padded.extend_from_slice(&[0, 0]);
/// let mut storage = [0u8; 256];
/// let mut frame = BufFrame::with_data(&mut storage[..], 0, &padded).unwrap();
/// assert!(decap_fast(&mut frame, &cfg).is_none());
/// assert_eq!(decap(&mut frame, &cfg).unwrap().unwrap().vni, 100);
/// ```
#[inline(always)]
pub fn decap_fast<F: Frame>(
    frame: &mut F,
    cfg: &DecapConfig,
) -> Option<Result<Option<Decapsulated>, DecapDrop>> {
    let offloads = frame.rx_offloads();
    let data = frame.data();
    let one = parse_single_fast(data, &cfg.parse)?;
    Some(match check(&one, data, cfg, offloads) {
        Ok(checked) => finish(frame, checked),
        Err(e) => Err(e),
    })
}

/// The body of [`decap`], inlined into [`decap_burst`]'s loop so each
/// verdict is written in place.
#[inline(always)]
fn decap_one<F: Frame>(
    frame: &mut F,
    cfg: &DecapConfig,
) -> Result<Option<Decapsulated>, DecapDrop> {
    let offloads = frame.rx_offloads();
    let data = frame.data();
    // The common shape is checked right here, where the parser's offsets
    // are constants; everything else takes one call.
    let Some(one) = parse_single_fast(data, &cfg.parse) else {
        return decap_general(frame, cfg);
    };
    let checked = check(&one, data, cfg, offloads)?;
    finish(frame, checked)
}

/// [`decap`] for every shape the parser's fast path leaves (tags, options,
/// extension headers, GPE/GBP, VXLAN ports after the first) and for every
/// parse drop.
#[inline(never)]
fn decap_general<F: Frame>(
    frame: &mut F,
    cfg: &DecapConfig,
) -> Result<Option<Decapsulated>, DecapDrop> {
    let offloads = frame.rx_offloads();
    let data = frame.data();
    let Some(one) = parse_single(data, &cfg.parse).map_err(DecapDrop::Parse)? else {
        return Ok(None);
    };
    let checked = check(&one, data, cfg, offloads)?;
    finish(frame, checked)
}

/// What [`check`] hands to [`finish`]: the result, how much to strip, the
/// inner frame's length and any inner ECN rewrite.
type Checked = (Decapsulated, usize, usize, Option<EcnRewrite>);

/// Rewrites the inner ECN if needed and strips the outer headers.
#[inline(always)]
fn finish<F: Frame>(
    frame: &mut F,
    (info, strip, inner_len, new_ecn): Checked,
) -> Result<Option<Decapsulated>, DecapDrop> {
    if let Some((at, tos, ipv6)) = new_ecn {
        rewrite_ecn(&mut frame.data_mut()[strip..], at, tos, ipv6);
    }
    // Lengths were validated by the parser; these cannot fail.
    frame
        .strip(strip)
        .map_err(|_| DecapDrop::Parse(ParseDrop::InnerTruncated))?;
    frame
        .truncate(inner_len)
        .map_err(|_| DecapDrop::Parse(ParseDrop::InnerTruncated))?;
    Ok(Some(info))
}

/// Whether the non-zero UDP checksum of the datagram at `layer` verifies.
///
/// The pseudo-header's two addresses sit right before the datagram when
/// the IP header has no options or extension headers (IPv4 bytes 12..20,
/// IPv6 bytes 8..40), so one pass of [`checksum::sum_native`] covers the
/// addresses and the datagram together; the pseudo-header's length and
/// protocol are added as native-order words and the total is folded once
/// (RFC 1071: the sum over everything, checksum field included, folds to
/// all ones). Other headers take the general pseudo-header path.
#[inline(always)]
fn udp_checksum_ok(
    data: &[u8],
    layer: &crate::tunnel::LayerView<'_>,
    udp: &UdpPacket<&[u8]>,
    ips: &crate::wire::IpPair,
) -> bool {
    let (ip, udp_at, end) = (layer.ip_offset(), layer.udp_offset(), layer.end());
    let addrs = if layer.is_ipv6() {
        (udp_at == ip + 40).then_some(ip + 8)
    } else {
        (udp_at == ip + 20).then_some(ip + 12)
    };
    match addrs.and_then(|a| data.get(a..end)) {
        Some(covered) => {
            // `end - udp_at` is the UDP length field's value, checked by
            // the parser; it fits in 16 bits.
            #[allow(clippy::cast_possible_truncation)]
            let len = (end - udp_at) as u16;
            let word = |v: u16| u64::from(u16::from_ne_bytes(v.to_be_bytes()));
            let total = checksum::sum_native(covered) + word(len) + word(17);
            checksum::fold(total) == 0xffff
        }
        None => udp.checksum_status(ips) != ChecksumStatus::Invalid,
    }
}

/// Where an inner ECN rewrite goes: offset of the inner IP header within
/// the inner frame, the new TOS / traffic class, and whether it is IPv6.
type EcnRewrite = (usize, u8, bool);

#[inline(always)]
fn check(
    one: &SingleLayer<'_>,
    data: &[u8],
    cfg: &DecapConfig,
    offloads: crate::frame::RxOffloads,
) -> Result<Checked, DecapDrop> {
    let layer = one.layer();
    let ips = layer.ips();
    if !cfg.is_local(ips.dst()) {
        return Err(DecapDrop::NotOurAddress);
    }
    let ip = layer.ip_offset();
    let outer_tos = if layer.is_ipv6() {
        (data[ip] << 4) | (data[ip + 1] >> 4)
    } else {
        // The NIC's "good" skips the sum. Its "bad" is looked at only once
        // the sum failed too (off the common path, and a NIC that misreads
        // a tunnel cannot drop good frames): it names the drop.
        if cfg.verify_ipv4_checksum
            && !offloads.ip_checksum_good
            && !ipv4_header_checksum_ok(&data[ip..ip + usize::from(data[ip] & 0x0f) * 4])
        {
            return Err(if offloads.ip_checksum_bad {
                DecapDrop::DeviceIpv4Checksum
            } else {
                DecapDrop::Ipv4Checksum
            });
        }
        data[ip + 1]
    };
    let udp = UdpPacket::new_unchecked(&data[layer.udp_offset()..layer.end()]);
    if udp.checksum() == 0 {
        if layer.is_ipv6() && !cfg.allow_ipv6_zero_checksum {
            return Err(DecapDrop::Ipv6ZeroChecksum);
        }
    } else if cfg.verify_udp_checksum
        && !offloads.l4_checksum_good
        && !udp_checksum_ok(data, &layer, &udp, &ips)
    {
        // As for IPv4.
        return Err(if offloads.l4_checksum_bad {
            DecapDrop::DeviceUdpChecksum
        } else {
            DecapDrop::UdpChecksum
        });
    }
    let inner = one.inner();
    if inner.header_len() > crate::wire::ethernet::HEADER_LEN && !cfg.allow_inner_vlan {
        return Err(DecapDrop::InnerVlan);
    }
    let inner_bytes = inner.bytes();
    let mut rewrite = None;
    let mut ecn_marked = false;
    // An outer Not-ECT leaves the inner field as it is (the first column of
    // the RFC 6040 table), so only a marked outer header needs the inner
    // IP header found.
    let outer_marked = outer_tos & 0x03 != 0;
    if let Some(i) = if outer_marked {
        inner_ip(inner_bytes)
    } else {
        None
    } {
        let inner_ecn = Ecn::from_bits(i.tos);
        match ecn::decapsulate(inner_ecn, Ecn::from_bits(outer_tos)) {
            None => return Err(DecapDrop::EcnCeOnNotEct),
            Some(e) if e != inner_ecn => {
                rewrite = Some((i.offset, (i.tos & !0x03) | e.bits(), i.ipv6));
                ecn_marked = e == Ecn::Ce;
            }
            Some(_) => {}
        }
    }
    let header = layer.raw_header();
    let gbp = cfg.parse.gbp();
    let info = Decapsulated {
        vni: one.vni(),
        remote: ips.src(),
        src_port: layer.src_port(),
        dont_learn: gbp && header[1] & vxlan::GBP_FLAG_D != 0,
        policy_id: (gbp && header[0] & vxlan::GBP_FLAG_G != 0)
            .then(|| u16::from_be_bytes([header[2], header[3]])),
        ecn_marked,
    };
    Ok((info, inner.offset(), inner.end() - inner.offset(), rewrite))
}

/// True when an IPv4 header (options included) sums to all ones. The
/// common 20-byte header is summed as five 32-bit words; the sum is
/// compared in native order, since all ones is the same in both.
#[inline(always)]
fn ipv4_header_checksum_ok(header: &[u8]) -> bool {
    let sum = match <&[u8; 20]>::try_from(header) {
        Ok(h) => {
            let w = |i: usize| u64::from(u32::from_ne_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]));
            w(0) + w(4) + w(8) + w(12) + w(16)
        }
        Err(_) => checksum::sum(header),
    };
    checksum::fold(sum) == 0xffff
}

/// Writes a new TOS / traffic class into the inner IP header at `at`,
/// patching an IPv4 checksum incrementally (RFC 1624).
fn rewrite_ecn(inner: &mut [u8], at: usize, tos: u8, ipv6: bool) {
    if ipv6 {
        inner[at] = (inner[at] & 0xf0) | (tos >> 4);
        inner[at + 1] = (inner[at + 1] & 0x0f) | (tos << 4);
    } else {
        let old = u16::from_be_bytes([inner[at], inner[at + 1]]);
        let new = (old & 0xff00) | u16::from(tos);
        let c = u16::from_be_bytes([inner[at + 10], inner[at + 11]]);
        inner[at + 1] = tos;
        inner[at + 10..at + 12].copy_from_slice(&checksum::update16(c, old, new).to_be_bytes());
    }
}

/// Decapsulates a burst; one verdict per frame. Returns how many frames
/// were decapsulated.
pub fn decap_burst<F: Frame>(
    frames: &mut [F],
    cfg: &DecapConfig,
    verdicts: &mut [Result<Option<Decapsulated>, DecapDrop>],
) -> usize {
    let mut done = 0;
    for (frame, verdict) in frames.iter_mut().zip(verdicts.iter_mut()) {
        *verdict = decap_one(frame, cfg);
        done += usize::from(matches!(verdict, Ok(Some(_))));
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encap::{EncapConfig, EncapTemplate, UdpChecksumMode};
    use crate::frame::{BufFrame, RxOffloads};
    use crate::testutil::{build_vxlan_frame, write_inner_frame, FrameSpec};
    use crate::wire::{Ipv4Packet, MacAddr};
    use proptest::prelude::*;

    fn cfg4() -> DecapConfig {
        DecapConfig::new("192.0.2.2".parse().unwrap())
    }

    fn run(
        bytes: &[u8],
        cfg: &DecapConfig,
    ) -> (Result<Option<Decapsulated>, DecapDrop>, std::vec::Vec<u8>) {
        let mut storage = vec![0u8; bytes.len() + 64];
        let mut f = BufFrame::with_data(&mut storage[..], 0, bytes).unwrap();
        let r = decap(&mut f, cfg);
        (r, f.data().to_vec())
    }

    #[test]
    fn strips_and_reports() {
        let spec = FrameSpec {
            inner_len: 90,
            vni: 77,
            sport: 5555,
            ..FrameSpec::default()
        };
        let mut wire = build_vxlan_frame(&spec);
        let inner = wire[50..].to_vec();
        wire.extend_from_slice(&[0xee; 6]); // Ethernet padding after the datagram
        let (r, out) = run(&wire, &cfg4());
        let info = r.unwrap().unwrap();
        assert_eq!(
            (info.vni, info.src_port, info.remote),
            (77, 5555, "192.0.2.1".parse().unwrap())
        );
        assert_eq!(out, inner, "exactly the inner frame, padding dropped");
    }

    /// The one-pass UDP checksum (addresses summed from the IP header with
    /// the datagram) gives the pseudo-header computation's answer: on
    /// valid checksums of both families, odd and even lengths, and with
    /// any one byte of the addresses or the datagram flipped.
    #[test]
    fn one_pass_udp_checksum_agrees_with_pseudo_header_sum() {
        let cfg = ParseConfig::default();
        let mut checked = 0;
        for ipv6 in [false, true] {
            for inner_len in [14, 15, 60, 61, 200, 1001] {
                let mut f = build_vxlan_frame(&FrameSpec {
                    ipv6,
                    inner_len,
                    sport: 0xfffe,
                    vni: 0xff_ffff,
                    ..FrameSpec::default()
                });
                let (ip, udp_at, end, ips) = {
                    let one = parse_single(&f, &cfg).unwrap().unwrap();
                    let l = one.layer();
                    (l.ip_offset(), l.udp_offset(), l.end(), l.ips())
                };
                // IPv4 frames come with a zero checksum: fill one in.
                UdpPacket::new_unchecked(&mut f[udp_at..end]).fill_checksum(&ips);
                let addrs = if ipv6 { ip + 8 } else { ip + 12 };
                for at in std::iter::once(None).chain((addrs..end).map(Some)) {
                    let mut g = f.clone();
                    if let Some(at) = at {
                        g[at] ^= 0x5a;
                    }
                    // A flip in the ports, length or VXLAN flags can make
                    // the frame something else; a zeroed field is "absent".
                    let Ok(Some(one)) = parse_single(&g, &cfg) else {
                        continue;
                    };
                    let layer = one.layer();
                    let ips = layer.ips();
                    let udp = UdpPacket::new_unchecked(&g[layer.udp_offset()..layer.end()]);
                    if udp.checksum() == 0 {
                        continue;
                    }
                    let want = udp.checksum_status(&ips) != ChecksumStatus::Invalid;
                    assert_eq!(
                        udp_checksum_ok(&g, &layer, &udp, &ips),
                        want,
                        "v6 {ipv6}, inner {inner_len}, flipped {at:?}"
                    );
                    assert_eq!(want, at.is_none(), "one flipped byte must fail");
                    checked += 1;
                }
            }
        }
        assert!(checked > 2000);
    }

    #[test]
    fn each_drop_reason() {
        let good = build_vxlan_frame(&FrameSpec::default());
        // Not our address.
        let (r, _) = run(&good, &DecapConfig::new("192.0.2.9".parse().unwrap()));
        assert_eq!(r, Err(DecapDrop::NotOurAddress));
        // Bad IPv4 header checksum, unless the NIC vouched for it.
        let mut bad = good.clone();
        bad[14 + 10] ^= 0xff;
        assert_eq!(run(&bad, &cfg4()).0, Err(DecapDrop::Ipv4Checksum));
        let mut storage = vec![0u8; 512];
        let mut f = BufFrame::with_data(&mut storage[..], 0, &bad).unwrap();
        f.set_rx_offloads(RxOffloads {
            ip_checksum_good: true,
            ..RxOffloads::default()
        });
        assert!(decap(&mut f, &cfg4()).unwrap().is_some());
        // Wrong non-zero UDP checksum.
        let mut bad = good.clone();
        bad[34 + 6] = 0x12;
        assert_eq!(run(&bad, &cfg4()).0, Err(DecapDrop::UdpChecksum));
        // The NIC says wrong: a wrong checksum is dropped for a reason of
        // its own; a right one (a NIC misreading a tunnel) is kept, as is
        // a zero UDP checksum (none, over IPv4), and nothing is checked
        // when verification is off.
        let nic = |frame: &[u8], o: RxOffloads, cfg: &DecapConfig| {
            let mut storage = vec![0u8; 512];
            let mut f = BufFrame::with_data(&mut storage[..], 0, frame).unwrap();
            f.set_rx_offloads(o);
            decap(&mut f, cfg).map(|d| d.is_some())
        };
        let ip_bad = RxOffloads {
            ip_checksum_bad: true,
            ..RxOffloads::default()
        };
        let l4_bad = RxOffloads {
            l4_checksum_bad: true,
            ..RxOffloads::default()
        };
        let mut with_sum = good.clone();
        let ips = crate::wire::IpPair::V4(
            core::net::Ipv4Addr::from([with_sum[26], with_sum[27], with_sum[28], with_sum[29]]),
            core::net::Ipv4Addr::from([with_sum[30], with_sum[31], with_sum[32], with_sum[33]]),
        );
        UdpPacket::new_unchecked(&mut with_sum[34..]).fill_checksum(&ips);
        assert_ne!(&with_sum[40..42], &[0, 0]);
        assert_eq!(run(&with_sum, &cfg4()).0.map(|d| d.is_some()), Ok(true));
        let mut bad_ip = good.clone();
        bad_ip[14 + 10] ^= 0xff;
        let mut bad_udp = with_sum.clone();
        bad_udp[34 + 6] ^= 0xff;
        assert_eq!(
            nic(&bad_ip, ip_bad, &cfg4()),
            Err(DecapDrop::DeviceIpv4Checksum)
        );
        assert_eq!(
            nic(&bad_udp, l4_bad, &cfg4()),
            Err(DecapDrop::DeviceUdpChecksum)
        );
        assert_eq!(nic(&good, ip_bad, &cfg4()), Ok(true), "the bytes are right");
        assert_eq!(
            nic(&with_sum, l4_bad, &cfg4()),
            Ok(true),
            "the bytes are right"
        );
        assert_eq!(nic(&good, l4_bad, &cfg4()), Ok(true), "zero: no checksum");
        let trusting = DecapConfig {
            verify_ipv4_checksum: false,
            verify_udp_checksum: false,
            ..cfg4()
        };
        assert_eq!(nic(&bad_ip, ip_bad, &trusting), Ok(true));
        assert_eq!(nic(&bad_udp, l4_bad, &trusting), Ok(true));
        assert_eq!(DecapDrop::DeviceUdpChecksum.as_str(), "udp_checksum_device");
        // Parse drops pass through with their reason.
        let mut frag = good.clone();
        frag[14 + 6] |= 0x20;
        let mut ipf = Ipv4Packet::new_unchecked(&mut frag[14..]);
        ipf.fill_checksum();
        assert_eq!(
            run(&frag, &cfg4()).0,
            Err(DecapDrop::Parse(ParseDrop::Fragment))
        );
        // Inner VLAN tag, unless allowed.
        let tagged = build_vxlan_frame(&FrameSpec {
            inner_vids: &[10],
            ..FrameSpec::default()
        });
        assert_eq!(run(&tagged, &cfg4()).0, Err(DecapDrop::InnerVlan));
        let allow = DecapConfig {
            allow_inner_vlan: true,
            ..cfg4()
        };
        assert!(run(&tagged, &allow).0.unwrap().is_some());
        // Not VXLAN at all.
        let other = build_vxlan_frame(&FrameSpec {
            dport: 53,
            ..FrameSpec::default()
        });
        assert_eq!(run(&other, &cfg4()).0, Ok(None));
    }

    #[test]
    fn ipv6_zero_checksum_needs_opt_in() {
        let cfg = EncapConfig {
            udp_checksum: UdpChecksumMode::Zero,
            ..EncapConfig::new(
                "2001:db8::1".parse().unwrap(),
                "2001:db8::2".parse().unwrap(),
                MacAddr([2, 0, 0, 0, 0, 1]),
                MacAddr([2, 0, 0, 0, 0, 2]),
            )
        };
        let t = EncapTemplate::new(&cfg).unwrap();
        let mut storage = vec![0u8; 512];
        let mut f = BufFrame::with_data(&mut storage[..], 128, &[0x11u8; 64]).unwrap();
        t.encap(&mut f, 9, 1234).unwrap();
        let wire = f.data().to_vec();
        let d = DecapConfig::new("2001:db8::2".parse().unwrap());
        assert_eq!(run(&wire, &d).0, Err(DecapDrop::Ipv6ZeroChecksum));
        let d = DecapConfig {
            allow_ipv6_zero_checksum: true,
            ..d
        };
        assert_eq!(run(&wire, &d).0.unwrap().unwrap().vni, 9);
    }

    /// RFC 6040 end to end: every inner ECN codepoint (4) under every outer
    /// codepoint a router on the path may leave (4).
    #[test]
    fn ecn_table_through_the_pipeline() {
        use crate::ecn::Ecn;
        let t = EncapTemplate::new(&EncapConfig::new(
            "192.0.2.1".parse().unwrap(),
            "192.0.2.2".parse().unwrap(),
            MacAddr([2, 0, 0, 0, 0, 1]),
            MacAddr([2, 0, 0, 0, 0, 2]),
        ))
        .unwrap();
        for inner in Ecn::ALL {
            for outer in Ecn::ALL {
                let mut frame = vec![0u8; 80];
                write_inner_frame(
                    &mut frame,
                    MacAddr([2, 0, 0, 0, 0, 3]),
                    MacAddr([2, 0, 0, 0, 0, 4]),
                    &[],
                    80,
                );
                let mut ip = Ipv4Packet::new_unchecked(&mut frame[14..]);
                ip.set_dscp_ecn(10, inner.bits());
                ip.fill_checksum();
                let mut storage = vec![0u8; 512];
                let mut f = BufFrame::with_data(&mut storage[..], 128, &frame).unwrap();
                t.encap(&mut f, 1, 1).unwrap();
                assert_eq!(
                    f.data()[15] & 3,
                    inner.bits(),
                    "encap copies ECN (normal mode)"
                );
                // A router re-marks the outer header (and fixes its checksum).
                let mut wire = f.data().to_vec();
                let mut oip = Ipv4Packet::new_unchecked(&mut wire[14..]);
                oip.set_dscp_ecn(oip.dscp(), outer.bits());
                oip.fill_checksum();
                let (r, out) = run(&wire, &cfg4());
                match crate::ecn::decapsulate(inner, outer) {
                    None => assert_eq!(r, Err(DecapDrop::EcnCeOnNotEct)),
                    Some(want) => {
                        let info = r.unwrap().unwrap();
                        let ip = Ipv4Packet::new_checked(&out[14..]).unwrap();
                        assert_eq!(ip.ecn(), want.bits(), "inner {inner:?} outer {outer:?}");
                        assert_eq!(ip.dscp(), 10);
                        assert!(ip.verify_checksum(), "inner checksum patched");
                        assert_eq!(info.ecn_marked, want == Ecn::Ce && inner != Ecn::Ce);
                    }
                }
            }
        }
    }

    fn arb_inner() -> impl Strategy<Value = std::vec::Vec<u8>> {
        (
            60usize..1400,
            proptest::collection::vec(1u16..4095, 0..=2),
            0u8..4,
            any::<bool>(),
        )
            .prop_map(|(len, vids, ecn, v6)| {
                let mut f = vec![0u8; len + 8];
                let n = write_inner_frame(
                    &mut f,
                    MacAddr([2, 0, 0, 0, 0, 5]),
                    MacAddr([2, 0, 0, 0, 0, 6]),
                    &vids,
                    len,
                );
                f.truncate(n);
                let ip = 14 + 4 * vids.len();
                if v6 {
                    // Turn the inner packet into an IPv6 one of the same length.
                    f[ip - 2..ip].copy_from_slice(&[0x86, 0xdd]);
                    f[ip] = 0x60;
                    f[ip + 1] = ecn << 4;
                } else {
                    let mut p = Ipv4Packet::new_unchecked(&mut f[ip..]);
                    p.set_dscp_ecn(0, ecn);
                    p.fill_checksum();
                }
                f
            })
    }

    proptest! {
        /// decap(encap(frame)) gives the frame back byte for byte, over
        /// IPv4 and IPv6 underlays, with and without inner VLAN tags, as
        /// VXLAN, GPE and GBP.
        #[test]
        fn decap_inverts_encap(inner in arb_inner(), v6 in any::<bool>(), kind in 0u8..3, vni in 0u32..0x100_0000, sport in any::<u16>()) {
            let (l, r): (IpAddr, IpAddr) = if v6 {
                ("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap())
            } else {
                ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap())
            };
            let (tk, parse) = match kind {
                0 => (crate::encap::TunnelKind::Vxlan, ParseConfig::default()),
                1 => (crate::encap::TunnelKind::Gpe, ParseConfig::default()),
                _ => (
                    crate::encap::TunnelKind::Gbp { policy_id: 77, dont_learn: false, policy_applied: true },
                    ParseConfig::default().with_gbp(true),
                ),
            };
            let dst_port = if kind == 1 { 4790 } else { 4789 };
            let ecfg = EncapConfig { kind: tk, dst_port, underlay_mtu: 9000, ..EncapConfig::new(l, r, MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2])) };
            let t = EncapTemplate::new(&ecfg).unwrap();
            let mut storage = vec![0u8; 2048];
            let mut f = BufFrame::with_data(&mut storage[..], 128, &inner).unwrap();
            t.encap(&mut f, vni, sport).unwrap();
            let dcfg = DecapConfig { parse, allow_inner_vlan: true, ..DecapConfig::new(r) };
            let info = decap(&mut f, &dcfg).unwrap().unwrap();
            prop_assert_eq!(info.vni, vni);
            prop_assert_eq!(info.remote, l);
            prop_assert_eq!(info.src_port, sport);
            if kind == 2 {
                prop_assert_eq!(info.policy_id, Some(77));
            }
            prop_assert_eq!(f.data(), &inner[..]);
        }
    }
}
