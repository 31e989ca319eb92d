//! The bridging pipeline: one forwarding decision per frame.
//!
//! A [`Bridge`] is a read-only view of the switching configuration (ports
//! and their VLAN-to-bridge-domain maps, bridge domains with their VNI and
//! flood list) plus the shared [`Fdb`]. Frames from access ports go through
//! [`Bridge::from_access`]; frames from the underlay through
//! [`Bridge::from_overlay`]. Each returns a [`Forward`]: deliver to a local
//! port, encapsulate toward a remote VTEP, flood, answer in place, hand to
//! the host, or drop with a named reason. The I/O layer carries the
//! decision out (encap with the remote's template, copies for flooding).
//!
//! Two rules are enforced here, not left to callers:
//! * **tenant isolation**: a frame's bridge domain comes only from its
//!   ingress (access port and VLAN, or the VNI it arrived with), and every
//!   lookup and flood is confined to that bridge domain;
//! * **split horizon**: a frame received from the overlay is never sent
//!   back into it ([`Forward::Flood::to_overlay`] is false, and a lookup
//!   that points at a remote VTEP is a drop).
//!
//! ```
//! use vxlan_core::bridge::{BdConfig, Bridge, Forward, PortMode};
//! use vxlan_core::fdb::{BdCounter, ColdSlot, Fdb, FdbConfig, NoEvents, Slot};
//! use vxlan_core::frame::{BufFrame, Frame};
//!
//! let slots: Vec<Slot> = (0..64).map(|_| Slot::new()).collect();
//! let cold: Vec<ColdSlot> = (0..64).map(|_| ColdSlot::new()).collect();
//! let bds: Vec<BdCounter> = (0..1).map(|_| BdCounter::new()).collect();
//! let fdb = Fdb::new(&slots, &cold, &bds, FdbConfig::new(32)).unwrap();
//! let ports = [PortMode::access(0), PortMode::access(0)];
//! let domains = [BdConfig::new(100, &[])];
//! let bridge = Bridge::new(&ports, &domains, &fdb).unwrap();
//!
//! // A broadcast from port 0 floods within bridge domain 0.
//! let mut buf = [0u8; 256];
//! let mut frame = BufFrame::with_data(&mut buf[..], 64, &[0xff; 64]).unwrap();
//! frame.data_mut()[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
//! let d = bridge.from_access(&mut frame, 0, 1, &mut NoEvents, None);
//! assert_eq!(d, Forward::Flood { bd: 0, except_port: Some(0), to_overlay: true });
//! ```

use core::fmt;
use core::net::IpAddr;

use crate::decap::{decap, decap_fast, DecapConfig, DecapDrop, Decapsulated};
use crate::fdb::{EventSink, Fdb, LearnOutcome, Location};
use crate::frame::Frame;
use crate::wire::arp::{ArpOperation, ArpPacket, ArpRepr};
use crate::wire::{
    EtherType, Icmpv6Packet, Icmpv6Repr, IpPair, IpProtocol, Ipv6Packet, Ipv6Repr, MacAddr,
    NdpFlags,
};

/// The most VLANs one trunk port maps.
pub const MAX_TRUNK_VLANS: usize = 16;

/// How a local port attaches to bridge domains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortMode {
    /// Untagged frames (or priority-tagged, VID 0) belong to one bridge
    /// domain.
    Access {
        /// The bridge domain.
        bd: u16,
    },
    /// 802.1Q trunk: the tag's VID selects the bridge domain; the tag is
    /// popped on ingress and pushed on egress.
    Trunk {
        /// (VID, bridge domain) pairs; only the first `count` are used.
        vlans: [(u16, u16); MAX_TRUNK_VLANS],
        /// How many pairs are in use.
        count: u8,
    },
    /// The underlay (network) port: not switched.
    Underlay,
}

impl PortMode {
    /// An access port in `bd`.
    pub const fn access(bd: u16) -> PortMode {
        PortMode::Access { bd }
    }

    /// A trunk from (VID, bridge domain) pairs; `None` with more than
    /// [`MAX_TRUNK_VLANS`] pairs, a VID outside 1..=4094, or a VID or
    /// bridge domain listed twice.
    pub fn trunk(pairs: &[(u16, u16)]) -> Option<PortMode> {
        if pairs.len() > MAX_TRUNK_VLANS {
            return None;
        }
        let mut vlans = [(0, 0); MAX_TRUNK_VLANS];
        for (i, &(vid, bd)) in pairs.iter().enumerate() {
            if vid == 0 || vid > 4094 || pairs[..i].iter().any(|&(v, b)| v == vid || b == bd) {
                return None;
            }
            vlans[i] = (vid, bd);
        }
        Some(PortMode::Trunk {
            vlans,
            count: u8::try_from(pairs.len()).ok()?,
        })
    }

    /// The bridge domain of a frame arriving with `vid` (0 = untagged).
    #[inline]
    pub fn bd_for(&self, vid: u16) -> Option<u16> {
        match self {
            PortMode::Access { bd } if vid == 0 => Some(*bd),
            PortMode::Trunk { vlans, count } if vid != 0 => vlans[..usize::from(*count)]
                .iter()
                .find(|(v, _)| *v == vid)
                .map(|(_, b)| *b),
            _ => None,
        }
    }

    /// The VID to push when sending `bd`'s frames out of this port: `Some(0)`
    /// for untagged, `None` when the port is not in `bd`.
    #[inline]
    pub fn vid_for(&self, bd: u16) -> Option<u16> {
        match self {
            PortMode::Access { bd: b } if *b == bd => Some(0),
            PortMode::Trunk { vlans, count } => vlans[..usize::from(*count)]
                .iter()
                .find(|(_, b)| *b == bd)
                .map(|(v, _)| *v),
            _ => None,
        }
    }
}

/// The most remote VTEPs on one bridge domain's flood list.
pub const MAX_FLOOD: usize = 64;

/// A head-end replication list: remote VTEP indexes that get a copy of BUM
/// traffic. Fixed capacity, so a bridge domain is one plain value that a
/// control plane can replace whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloodList {
    remotes: [u32; MAX_FLOOD],
    len: u8,
}

impl FloodList {
    /// An empty list.
    pub const EMPTY: FloodList = FloodList {
        remotes: [0; MAX_FLOOD],
        len: 0,
    };

    /// A list of `remotes`; `None` with more than [`MAX_FLOOD`] or a
    /// remote listed twice (which would send duplicates).
    pub fn new(remotes: &[u32]) -> Option<FloodList> {
        if remotes.len() > MAX_FLOOD {
            return None;
        }
        let mut l = FloodList::EMPTY;
        for (i, r) in remotes.iter().enumerate() {
            if remotes[..i].contains(r) {
                return None;
            }
            l.remotes[i] = *r;
        }
        l.len = u8::try_from(remotes.len()).ok()?;
        Some(l)
    }

    /// The remotes.
    pub fn as_slice(&self) -> &[u32] {
        &self.remotes[..usize::from(self.len)]
    }
}

/// A bridge domain: one VNI and its head-end replication list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BdConfig {
    /// The VNI (ignored in VLAN-only bridging).
    pub vni: u32,
    /// Remote VTEPs that get a copy of BUM traffic.
    pub flood: FloodList,
}

impl BdConfig {
    /// A bridge domain for `vni` flooding to `remotes` (panics with more
    /// than [`MAX_FLOOD`] or duplicates: for tests and examples; use
    /// [`FloodList::new`] to handle that case).
    pub fn new(vni: u32, remotes: &[u32]) -> BdConfig {
        BdConfig {
            vni,
            flood: FloodList::new(remotes).expect("at most MAX_FLOOD distinct remotes"),
        }
    }
}

/// Why a frame was dropped by the bridge. Each is a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BridgeDrop {
    /// The ingress port is not configured.
    UnknownPort,
    /// Shorter than an Ethernet header, or more than two tags.
    BadFrame,
    /// The frame's VLAN is not carried by the port.
    VlanNotAllowed,
    /// The VNI is not configured.
    UnknownVni,
    /// The destination is on the ingress port (hairpin).
    SamePort,
    /// Received from the overlay for a MAC behind another VTEP: never sent
    /// back into the overlay.
    SplitHorizon,
    /// The source MAC is multicast, broadcast or zero.
    BadSourceMac,
    /// Decapsulation refused it.
    Decap(DecapDrop),
}

impl BridgeDrop {
    /// A short stable name for counters.
    pub const fn as_str(&self) -> &'static str {
        match self {
            BridgeDrop::UnknownPort => "unknown_port",
            BridgeDrop::BadFrame => "bad_frame",
            BridgeDrop::VlanNotAllowed => "vlan_not_allowed",
            BridgeDrop::UnknownVni => "unknown_vni",
            BridgeDrop::SamePort => "same_port",
            BridgeDrop::SplitHorizon => "split_horizon",
            BridgeDrop::BadSourceMac => "bad_source_mac",
            BridgeDrop::Decap(d) => d.as_str(),
        }
    }
}

impl fmt::Display for BridgeDrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to do with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forward {
    /// Send out of a local port; push `vid` when it is not 0.
    Port {
        /// The port.
        port: u16,
        /// The VID to push (0: untagged).
        vid: u16,
        /// The bridge domain the frame was switched in (for per-domain
        /// counting, without a lookup of its own).
        bd: u16,
    },
    /// Encapsulate with the remote VTEP's template.
    Remote {
        /// Index of the remote VTEP.
        remote: u32,
        /// The VNI.
        vni: u32,
        /// The bridge domain the frame was switched in (the VNI's).
        bd: u16,
    },
    /// Flood within `bd`: every local port in it except `except_port`, and,
    /// when `to_overlay`, every remote on its flood list.
    Flood {
        /// The bridge domain.
        bd: u16,
        /// The ingress port, which gets no copy.
        except_port: Option<u16>,
        /// Replicate to the flood list too (false for frames from the
        /// overlay: split horizon).
        to_overlay: bool,
    },
    /// The frame was rewritten into a reply (ARP suppression): send it back
    /// out of `port` with `vid`.
    Reply {
        /// The ingress port.
        port: u16,
        /// The VID to push.
        vid: u16,
    },
    /// Not for the bridge (underlay traffic that is not VXLAN): the host's.
    Host,
    /// Drop, counting the reason.
    Drop(BridgeDrop),
}

/// IP-to-MAC bindings per bridge domain for ARP and ND suppression. The
/// bridge snoops ARP and neighbour advertisements into it and answers
/// requests from it. [`crate::neigh::NeighTable`] is the lock-free one.
pub trait NeighborTable {
    /// The MAC bound to `ip` in `bd`.
    fn lookup(&self, bd: u16, ip: IpAddr) -> Option<MacAddr>;
    /// Records that `ip` is at `mac` in `bd`.
    fn snoop(&self, bd: u16, ip: IpAddr, mac: MacAddr);
}

impl NeighborTable for crate::neigh::NeighTable<'_> {
    fn lookup(&self, bd: u16, ip: IpAddr) -> Option<MacAddr> {
        crate::neigh::NeighTable::lookup(self, bd, ip)
    }
    fn snoop(&self, bd: u16, ip: IpAddr, mac: MacAddr) {
        // A full table just does not answer for this host: flooding still
        // resolves it.
        let _ = self.insert(bd, ip, mac);
    }
}

/// Why a [`Bridge`] could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BridgeConfigError {
    /// A port names a bridge domain that does not exist.
    UnknownBd {
        /// The port.
        port: usize,
        /// The bridge domain it names.
        bd: u16,
    },
    /// More ports than a port number (u16) can name.
    TooManyPorts,
    /// Two bridge domains share a VNI.
    DuplicateVni(u32),
}

impl fmt::Display for BridgeConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BridgeConfigError::UnknownBd { port, bd } => {
                write!(
                    f,
                    "port {port} maps to bridge domain {bd}, which is not configured"
                )
            }
            BridgeConfigError::TooManyPorts => f.write_str("at most 65535 ports"),
            BridgeConfigError::DuplicateVni(v) => {
                write!(f, "VNI {v} is configured for two bridge domains")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for BridgeConfigError {}

/// The switching configuration and the FDB, borrowed for a burst.
#[derive(Clone, Copy)]
pub struct Bridge<'a> {
    ports: &'a [PortMode],
    bds: &'a [BdConfig],
    fdb: &'a Fdb<'a>,
}

impl<'a> Bridge<'a> {
    /// Checks the configuration: every port's bridge domains exist and no
    /// VNI is used twice.
    pub fn new(
        ports: &'a [PortMode],
        bds: &'a [BdConfig],
        fdb: &'a Fdb<'a>,
    ) -> Result<Self, BridgeConfigError> {
        if ports.len() > usize::from(u16::MAX) {
            return Err(BridgeConfigError::TooManyPorts);
        }
        for (i, p) in ports.iter().enumerate() {
            let check = |bd: u16| {
                if usize::from(bd) < bds.len() {
                    Ok(())
                } else {
                    Err(BridgeConfigError::UnknownBd { port: i, bd })
                }
            };
            match p {
                PortMode::Access { bd } => check(*bd)?,
                PortMode::Trunk { vlans, count } => {
                    for (_, bd) in &vlans[..usize::from(*count)] {
                        check(*bd)?;
                    }
                }
                PortMode::Underlay => {}
            }
        }
        for (i, b) in bds.iter().enumerate() {
            if bds[..i].iter().any(|o| o.vni == b.vni) {
                return Err(BridgeConfigError::DuplicateVni(b.vni));
            }
        }
        Ok(Bridge { ports, bds, fdb })
    }

    /// The same bridge without the checks, for a configuration already
    /// accepted by [`Bridge::new`] (a worker rebuilding its view per burst
    /// from a validated snapshot). An unchecked bad configuration cannot
    /// cause memory unsafety or a panic: lookups of missing ports or bridge
    /// domains just fail and the frame is dropped or flooded.
    pub const fn new_unchecked(
        ports: &'a [PortMode],
        bds: &'a [BdConfig],
        fdb: &'a Fdb<'a>,
    ) -> Self {
        Bridge { ports, bds, fdb }
    }

    /// The bridge domain carrying `vni`.
    #[inline]
    pub fn bd_of_vni(&self, vni: u32) -> Option<u16> {
        self.bds
            .iter()
            .position(|b| b.vni == vni)
            .and_then(|i| u16::try_from(i).ok())
    }

    /// The configuration of bridge domain `bd`.
    pub fn bd(&self, bd: u16) -> Option<&BdConfig> {
        self.bds.get(usize::from(bd))
    }

    /// The local ports of `bd` with the VID to push on each, except
    /// `except`: the local half of a flood.
    pub fn flood_ports(
        &self,
        bd: u16,
        except: Option<u16>,
    ) -> impl Iterator<Item = (u16, u16)> + '_ {
        self.ports.iter().enumerate().filter_map(move |(i, p)| {
            let port = u16::try_from(i).ok()?;
            if Some(port) == except {
                return None;
            }
            p.vid_for(bd).map(|vid| (port, vid))
        })
    }

    /// Learns `mac` at `location` in `bd`, reading before writing: a MAC
    /// already known at the same place and refreshed within the FDB's
    /// `refresh_ticks` (or a static / control-plane entry there) is
    /// [`LearnOutcome::Unchanged`] after one lock-free lookup, which is
    /// exactly what [`Fdb::learn`] would decide, at a fraction of its
    /// cost. Anything else (new, moved, stale, pinned elsewhere) goes to
    /// [`Fdb::learn`], which rechecks it and decides.
    #[inline(always)]
    fn learn<S: EventSink + ?Sized>(
        &self,
        bd: u16,
        mac: MacAddr,
        location: Location,
        now: u32,
        events: &mut S,
    ) -> LearnOutcome {
        if self.fdb.is_current(bd, mac, location, now) {
            return LearnOutcome::Unchanged;
        }
        self.fdb.learn(bd, mac, location, now, events)
    }

    /// Where a known unicast destination goes, from `bd`.
    #[inline(always)]
    fn unicast(
        &self,
        bd: u16,
        dst: MacAddr,
        ingress: Option<u16>,
        from_overlay: bool,
    ) -> Option<Forward> {
        // Only the location is needed: the packed form skips decoding the
        // rest of the entry.
        let location = self.fdb.lookup_packed(bd, dst).location()?;
        Some(match location {
            Location::Local { port, .. } if Some(port) == ingress => {
                Forward::Drop(BridgeDrop::SamePort)
            }
            Location::Local { port, .. } => {
                match self
                    .ports
                    .get(usize::from(port))
                    .and_then(|p| p.vid_for(bd))
                {
                    Some(vid) => Forward::Port { port, vid, bd },
                    // Learned on a port that has since left the bridge
                    // domain: flood until it ages out.
                    None => return None,
                }
            }
            Location::Remote(_) if from_overlay => Forward::Drop(BridgeDrop::SplitHorizon),
            Location::Remote(remote) => Forward::Remote {
                remote,
                // `get`, not indexing: no panic path, even for a bridge
                // domain an unchecked configuration lacks (then: flood).
                vni: self.bds.get(usize::from(bd))?.vni,
                bd,
            },
        })
    }

    /// Decides for a frame from local port `port`, learning its source.
    /// Trunk tags are popped in place. With `neighbors`, ARP is snooped and
    /// requests whose answer is known are answered in place.
    pub fn from_access<F: Frame, S: EventSink + ?Sized>(
        &self,
        frame: &mut F,
        port: u16,
        now: u32,
        events: &mut S,
        neighbors: Option<&dyn NeighborTable>,
    ) -> Forward {
        let Some(mode) = self.ports.get(usize::from(port)) else {
            return Forward::Drop(BridgeDrop::UnknownPort);
        };
        let data = frame.data();
        let Some(h) = data.first_chunk::<14>() else {
            return Forward::Drop(BridgeDrop::BadFrame);
        };
        let et = u16::from_be_bytes([h[12], h[13]]);
        let (vid, tagged) = if EtherType(et).is_vlan_tpid() {
            let Some(t) = data.get(14..18) else {
                return Forward::Drop(BridgeDrop::BadFrame);
            };
            (u16::from_be_bytes([t[0], t[1]]) & 0x0fff, true)
        } else {
            (0, false)
        };
        let Some(bd) = mode.bd_for(vid) else {
            return Forward::Drop(BridgeDrop::VlanNotAllowed);
        };
        if tagged {
            // Pop the tag: slide the addresses over it, no payload copy.
            frame.data_mut().copy_within(0..12, 4);
            if frame.strip(4).is_err() {
                return Forward::Drop(BridgeDrop::BadFrame);
            }
        }
        let data = frame.data();
        let src = MacAddr::from_bytes(&data[6..12]);
        let dst = MacAddr::from_bytes(&data[..6]);
        if !src.is_learnable() {
            return Forward::Drop(BridgeDrop::BadSourceMac);
        }
        // A refused learn (table or limit full, frozen, pinned) still
        // forwards; the FDB counts it.
        let _ = self.learn(bd, src, Location::Local { port, vlan: vid }, now, events);
        if let Some(n) = neighbors {
            if let Some(reply) = arp_suppress(frame, bd, n).or_else(|| nd_suppress(frame, bd, n)) {
                return if reply {
                    Forward::Reply { port, vid }
                } else {
                    self.flood_or_lookup(bd, dst, port)
                };
            }
        }
        self.flood_or_lookup(bd, dst, port)
    }

    // Once per frame from a local port: inlined, so the decision is not
    // returned through memory and the call costs no register saves.
    #[inline(always)]
    fn flood_or_lookup(&self, bd: u16, dst: MacAddr, port: u16) -> Forward {
        if dst.is_unicast() {
            if let Some(f) = self.unicast(bd, dst, Some(port), false) {
                return f;
            }
        }
        Forward::Flood {
            bd,
            except_port: Some(port),
            to_overlay: true,
        }
    }

    /// Decides for a frame from the underlay: decapsulates it in place,
    /// learns its inner source behind the sending VTEP (`remote_index`
    /// names the VTEP table's index for an address), and never sends it
    /// back into the overlay.
    pub fn from_overlay<F: Frame, S: EventSink + ?Sized>(
        &self,
        frame: &mut F,
        decap_cfg: &DecapConfig,
        now: u32,
        events: &mut S,
        remote_index: impl Fn(IpAddr) -> Option<u32>,
        neighbors: Option<&dyn NeighborTable>,
    ) -> (Forward, Option<LearnOutcome>) {
        // The common shape's verdict stays in this frame's registers; any
        // other shape takes the whole decision out of line (the general
        // decapsulation returns its verdict through memory, and sharing the
        // code after it would make the common verdict go through memory
        // too).
        let Some(verdict) = decap_fast(frame, decap_cfg) else {
            return self.overlay_general(frame, decap_cfg, now, events, remote_index, neighbors);
        };
        self.after_decap(verdict, frame, now, events, remote_index, neighbors)
    }

    /// [`Bridge::from_overlay`] for a frame the fast decapsulation path
    /// does not take.
    #[inline(never)]
    fn overlay_general<F: Frame, S: EventSink + ?Sized>(
        &self,
        frame: &mut F,
        decap_cfg: &DecapConfig,
        now: u32,
        events: &mut S,
        remote_index: impl Fn(IpAddr) -> Option<u32>,
        neighbors: Option<&dyn NeighborTable>,
    ) -> (Forward, Option<LearnOutcome>) {
        let verdict = decap(frame, decap_cfg);
        self.after_decap(verdict, frame, now, events, remote_index, neighbors)
    }

    /// The decision for a frame from the underlay, given its decapsulation
    /// verdict (see [`Bridge::from_overlay`]).
    #[inline(always)]
    fn after_decap<F: Frame, S: EventSink + ?Sized>(
        &self,
        verdict: Result<Option<Decapsulated>, DecapDrop>,
        frame: &mut F,
        now: u32,
        events: &mut S,
        remote_index: impl Fn(IpAddr) -> Option<u32>,
        neighbors: Option<&dyn NeighborTable>,
    ) -> (Forward, Option<LearnOutcome>) {
        let info = match verdict {
            Ok(Some(info)) => info,
            Ok(None) => return (Forward::Host, None),
            Err(e) => return (Forward::Drop(BridgeDrop::Decap(e)), None),
        };
        let Some(bd) = self.bd_of_vni(info.vni) else {
            return (Forward::Drop(BridgeDrop::UnknownVni), None);
        };
        let data = frame.data();
        let src = MacAddr::from_bytes(&data[6..12]);
        let dst = MacAddr::from_bytes(&data[..6]);
        if !src.is_learnable() {
            return (Forward::Drop(BridgeDrop::BadSourceMac), None);
        }
        let learned = match (info.dont_learn, remote_index(info.remote)) {
            (false, Some(idx)) => Some(self.learn(bd, src, Location::Remote(idx), now, events)),
            _ => None,
        };
        if let Some(n) = neighbors {
            // Remote hosts' bindings, so local requests for them can be
            // answered too; never answered from here (the request came
            // from afar and its own VTEP floods or answers it).
            snoop_arp(data, bd, n);
        }
        if dst.is_unicast() {
            if let Some(f) = self.unicast(bd, dst, None, true) {
                return (f, learned);
            }
        }
        (
            Forward::Flood {
                bd,
                except_port: None,
                to_overlay: false,
            },
            learned,
        )
    }
}

/// Records the sender binding of an ARP frame (request, reply or
/// gratuitous) without answering anything.
fn snoop_arp(data: &[u8], bd: u16, n: &dyn NeighborTable) {
    if data.get(12..14) != Some(&[0x08, 0x06]) {
        return;
    }
    let Some(repr) = data
        .get(14..)
        .and_then(|a| ArpPacket::new_checked(a).ok())
        .and_then(|p| ArpRepr::parse(&p).ok())
    else {
        return;
    };
    if !repr.sender_ip.is_unspecified() && repr.sender_mac.is_learnable() {
        n.snoop(bd, IpAddr::V4(repr.sender_ip), repr.sender_mac);
    }
}

/// Snoops an ARP frame into `n` and, for a request whose answer is known,
/// rewrites the frame into the reply. `None`: not ARP. `Some(true)`: the
/// frame is now a reply. `Some(false)`: ARP, but forward it as usual.
fn arp_suppress<F: Frame>(frame: &mut F, bd: u16, n: &dyn NeighborTable) -> Option<bool> {
    let data = frame.data();
    if data.get(12..14)? != [0x08, 0x06] {
        return None;
    }
    let repr = ArpRepr::parse(&ArpPacket::new_checked(&data[14..]).ok()?).ok()?;
    if !repr.sender_ip.is_unspecified() && repr.sender_mac.is_learnable() {
        n.snoop(bd, IpAddr::V4(repr.sender_ip), repr.sender_mac);
    }
    if repr.operation != ArpOperation::Request || repr.is_gratuitous() {
        return Some(false);
    }
    let Some(mac) = n.lookup(bd, IpAddr::V4(repr.target_ip)) else {
        return Some(false);
    };
    if mac == repr.sender_mac {
        return Some(false); // a host probing for its own address
    }
    let reply = repr.reply_for(mac);
    let out = frame.data_mut();
    out[..6].copy_from_slice(&repr.sender_mac.0);
    out[6..12].copy_from_slice(&mac.0);
    reply.emit(&mut ArpPacket::new_unchecked(&mut out[14..]));
    Some(true)
}

/// The IPv6 counterpart of [`arp_suppress`]: snoops neighbour
/// advertisements (and the source link-layer option of solicitations), and
/// answers a solicitation whose target is known with a neighbour
/// advertisement (RFC 4861 section 7.2.4: solicited, override clear, from
/// the target's address to the solicitor), rewritten in place.
fn nd_suppress<F: Frame>(frame: &mut F, bd: u16, n: &dyn NeighborTable) -> Option<bool> {
    let data = frame.data();
    if data.get(12..14)? != [0x86, 0xdd] {
        return None;
    }
    let ip = Ipv6Packet::new_checked(&data[14..]).ok()?;
    // ND packets are exactly one hop: hop limit 255 (RFC 4861 section 7.1.1).
    if ip.next_header() != IpProtocol::ICMPV6 || ip.hop_limit() != 255 {
        return None;
    }
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let ips = IpPair::V6(src, dst);
    let icmp = Icmpv6Packet::new_checked(ip.payload()).ok()?;
    let target = match Icmpv6Repr::parse(&icmp, &ips).ok()? {
        Icmpv6Repr::NeighborAdvert {
            target,
            target_lladdr,
            ..
        } => {
            if let Some(mac) = target_lladdr.filter(MacAddr::is_learnable) {
                n.snoop(bd, IpAddr::V6(target), mac);
            }
            return Some(false);
        }
        Icmpv6Repr::NeighborSolicit {
            target,
            source_lladdr,
        } => {
            if let Some(mac) = source_lladdr.filter(|m| m.is_learnable() && !src.is_unspecified()) {
                n.snoop(bd, IpAddr::V6(src), mac);
            }
            target
        }
        _ => return None,
    };
    // Duplicate address detection (unspecified source) must reach the
    // owner; never answer it on its behalf.
    if src.is_unspecified() {
        return Some(false);
    }
    let Some(mac) = n.lookup(bd, IpAddr::V6(target)) else {
        return Some(false);
    };
    let solicitor = MacAddr::from_bytes(&data[6..12]);
    if mac == solicitor {
        return Some(false);
    }
    let na = Icmpv6Repr::NeighborAdvert {
        flags: NdpFlags::SOLICITED,
        target,
        target_lladdr: Some(mac),
    };
    let total = 14 + 40 + na.buffer_len();
    if frame.len() < total {
        // An NS with no options is shorter than the NA; let it flood.
        return Some(false);
    }
    frame.truncate(total).ok()?;
    let out = frame.data_mut();
    out[..6].copy_from_slice(&solicitor.0);
    out[6..12].copy_from_slice(&mac.0);
    let mut r = Ipv6Repr::new(
        target,
        src,
        IpProtocol::ICMPV6,
        u16::try_from(na.buffer_len()).ok()?,
    );
    r.hop_limit = 255;
    r.emit(&mut Ipv6Packet::new_unchecked(&mut out[14..]));
    na.emit(
        &mut Icmpv6Packet::new_unchecked(&mut out[54..total]),
        &IpPair::V6(target, src),
    );
    Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encap::{EncapConfig, EncapTemplate};
    use crate::fdb::{BdCounter, ColdSlot, FdbConfig, NoEvents, Slot};
    use crate::frame::BufFrame;
    use core::cell::RefCell;
    use std::vec::Vec;

    struct Tables {
        slots: Vec<Slot>,
        cold: Vec<ColdSlot>,
        bds: Vec<BdCounter>,
    }

    fn tables() -> Tables {
        Tables {
            slots: (0..256).map(|_| Slot::new()).collect(),
            cold: (0..256).map(|_| ColdSlot::new()).collect(),
            bds: (0..4).map(|_| BdCounter::new()).collect(),
        }
    }

    fn mac(i: u8) -> MacAddr {
        MacAddr([2, 0, 0, 0, 0, i])
    }

    fn eth(dst: MacAddr, src: MacAddr, vid: Option<u16>) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&dst.0);
        f.extend_from_slice(&src.0);
        if let Some(v) = vid {
            f.extend_from_slice(&[0x81, 0x00]);
            f.extend_from_slice(&v.to_be_bytes());
        }
        f.extend_from_slice(&[0x08, 0x00]);
        f.resize(f.len() + 46, 0xab);
        f
    }

    fn access<'b>(
        b: &Bridge<'_>,
        bytes: &[u8],
        port: u16,
        store: &'b mut [u8],
    ) -> (Forward, BufFrame<&'b mut [u8]>) {
        let mut f = BufFrame::with_data(store, 64, bytes).unwrap();
        let d = b.from_access(&mut f, port, 1, &mut NoEvents, None);
        (d, f)
    }

    #[test]
    fn learn_then_unicast_and_hairpin() {
        let t = tables();
        let fdb = Fdb::new(&t.slots, &t.cold, &t.bds, FdbConfig::new(128)).unwrap();
        let ports = [
            PortMode::access(0),
            PortMode::access(0),
            PortMode::access(1),
        ];
        let bds = [BdConfig::new(100, &[0, 1]), BdConfig::new(200, &[])];
        let b = Bridge::new(&ports, &bds, &fdb).unwrap();
        let mut s = [0u8; 256];
        // Unknown destination: flood, to the overlay too.
        assert_eq!(
            access(&b, &eth(mac(2), mac(1), None), 0, &mut s).0,
            Forward::Flood {
                bd: 0,
                except_port: Some(0),
                to_overlay: true
            }
        );
        // The reply is unicast back to port 0 (learned), no flood.
        assert_eq!(
            access(&b, &eth(mac(1), mac(2), None), 1, &mut s).0,
            Forward::Port {
                port: 0,
                vid: 0,
                bd: 0
            }
        );
        assert_eq!(
            access(&b, &eth(mac(2), mac(1), None), 0, &mut s).0,
            Forward::Port {
                port: 1,
                vid: 0,
                bd: 0
            }
        );
        // Same port: hairpin drop.
        assert_eq!(
            access(&b, &eth(mac(2), mac(3), None), 1, &mut s).0,
            Forward::Drop(BridgeDrop::SamePort)
        );
        // Port 2 is in another bridge domain: mac(1) is unknown there.
        assert_eq!(
            access(&b, &eth(mac(1), mac(9), None), 2, &mut s).0,
            Forward::Flood {
                bd: 1,
                except_port: Some(2),
                to_overlay: true
            }
        );
        // Flood ports of bd 0 from port 0: only port 1.
        assert_eq!(b.flood_ports(0, Some(0)).collect::<Vec<_>>(), [(1, 0)]);
        // A tagged frame on an access port is refused, a bad source too.
        assert_eq!(
            access(&b, &eth(mac(2), mac(1), Some(5)), 0, &mut s).0,
            Forward::Drop(BridgeDrop::VlanNotAllowed)
        );
        assert_eq!(
            access(&b, &eth(mac(2), MacAddr::BROADCAST, None), 0, &mut s).0,
            Forward::Drop(BridgeDrop::BadSourceMac)
        );
        assert_eq!(
            access(&b, &eth(mac(2), mac(1), None), 7, &mut s).0,
            Forward::Drop(BridgeDrop::UnknownPort)
        );
    }

    #[test]
    fn trunk_pops_and_maps_vlans() {
        let t = tables();
        let fdb = Fdb::new(&t.slots, &t.cold, &t.bds, FdbConfig::new(128)).unwrap();
        let trunk = PortMode::trunk(&[(10, 0), (20, 1)]).unwrap();
        let ports = [trunk, PortMode::access(0), PortMode::access(1)];
        let bds = [BdConfig::new(100, &[]), BdConfig::new(200, &[])];
        let b = Bridge::new(&ports, &bds, &fdb).unwrap();
        let mut s = [0u8; 256];
        let tagged = eth(mac(2), mac(1), Some(20));
        let (d, f) = access(&b, &tagged, 0, &mut s);
        assert_eq!(
            d,
            Forward::Flood {
                bd: 1,
                except_port: Some(0),
                to_overlay: true
            }
        );
        assert_eq!(
            f.data(),
            &eth(mac(2), mac(1), None)[..],
            "tag popped, rest intact"
        );
        // VLAN 30 is not on the trunk; untagged is not either.
        assert_eq!(
            access(&b, &eth(mac(2), mac(1), Some(30)), 0, &mut s).0,
            Forward::Drop(BridgeDrop::VlanNotAllowed)
        );
        assert_eq!(
            access(&b, &eth(mac(2), mac(1), None), 0, &mut s).0,
            Forward::Drop(BridgeDrop::VlanNotAllowed)
        );
        // Replies toward mac(1) in bd 1 go out of the trunk with VID 20.
        assert_eq!(
            access(&b, &eth(mac(1), mac(2), None), 2, &mut s).0,
            Forward::Port {
                port: 0,
                vid: 20,
                bd: 1
            }
        );
        // ...and mac(1) is unknown in bd 0: isolation.
        assert_eq!(
            access(&b, &eth(mac(1), mac(3), None), 1, &mut s).0,
            Forward::Flood {
                bd: 0,
                except_port: Some(1),
                to_overlay: true
            }
        );
        assert_eq!(
            b.flood_ports(1, None).collect::<Vec<_>>(),
            [(0, 20), (2, 0)]
        );
        assert!(PortMode::trunk(&[(10, 0), (10, 1)]).is_none());
        assert!(PortMode::trunk(&[(4095, 0)]).is_none());
    }

    #[test]
    fn overlay_learns_remote_and_keeps_split_horizon() {
        let t = tables();
        let fdb = Fdb::new(&t.slots, &t.cold, &t.bds, FdbConfig::new(128)).unwrap();
        let ports = [PortMode::Underlay, PortMode::access(0)];
        let bds = [BdConfig::new(100, &[0])];
        let b = Bridge::new(&ports, &bds, &fdb).unwrap();
        let remote_ip: IpAddr = "192.0.2.1".parse().unwrap();
        let local_ip: IpAddr = "192.0.2.2".parse().unwrap();
        let tpl = EncapTemplate::new(&EncapConfig::new(remote_ip, local_ip, mac(0xa1), mac(0xa2)))
            .unwrap();
        let dcfg = DecapConfig::new(local_ip);
        let index = |ip: IpAddr| (ip == remote_ip).then_some(0u32);
        let overlay = |inner: &[u8], vni: u32| {
            let mut store = vec![0u8; 512];
            let mut f = BufFrame::with_data(&mut store[..], 128, inner).unwrap();
            tpl.encap(&mut f, vni, 1234).unwrap();
            let mut again = BufFrame::with_data(vec![0u8; 512], 0, f.data()).unwrap();
            let r = b.from_overlay(&mut again, &dcfg, 1, &mut NoEvents, index, None);
            (r, again.data().to_vec())
        };
        // Broadcast from a remote VM: flooded locally only.
        let ((d, learned), inner) = overlay(&eth(MacAddr::BROADCAST, mac(7), None), 100);
        assert_eq!(
            d,
            Forward::Flood {
                bd: 0,
                except_port: None,
                to_overlay: false
            }
        );
        assert_eq!(learned, Some(LearnOutcome::Learned));
        assert_eq!(inner, eth(MacAddr::BROADCAST, mac(7), None));
        // Local traffic to mac(7) now goes to remote 0.
        let mut s = [0u8; 256];
        assert_eq!(
            access(&b, &eth(mac(7), mac(1), None), 1, &mut s).0,
            Forward::Remote {
                remote: 0,
                vni: 100,
                bd: 0
            }
        );
        // From the overlay to mac(7) (behind a VTEP): never back in.
        let ((d, _), _) = overlay(&eth(mac(7), mac(8), None), 100);
        assert_eq!(d, Forward::Drop(BridgeDrop::SplitHorizon));
        // From the overlay to the local mac(1): delivered.
        let ((d, _), _) = overlay(&eth(mac(1), mac(8), None), 100);
        assert_eq!(
            d,
            Forward::Port {
                port: 1,
                vid: 0,
                bd: 0
            }
        );
        // Unknown VNI.
        let ((d, _), _) = overlay(&eth(mac(1), mac(8), None), 999);
        assert_eq!(d, Forward::Drop(BridgeDrop::UnknownVni));
    }

    #[test]
    fn gratuitous_arp_moves_a_mac_at_once() {
        let t = tables();
        let fdb = Fdb::new(&t.slots, &t.cold, &t.bds, FdbConfig::new(128)).unwrap();
        let ports = [
            PortMode::access(0),
            PortMode::access(0),
            PortMode::access(0),
        ];
        let bds = [BdConfig::new(100, &[])];
        let b = Bridge::new(&ports, &bds, &fdb).unwrap();
        let mut s = [0u8; 256];
        access(&b, &eth(mac(2), mac(5), None), 0, &mut s);
        assert_eq!(
            access(&b, &eth(mac(5), mac(2), None), 1, &mut s).0,
            Forward::Port {
                port: 0,
                vid: 0,
                bd: 0
            }
        );
        // The VM moves to port 2 and its hypervisor sends a RARP.
        let mut rarp = eth(MacAddr::BROADCAST, mac(5), None);
        rarp[12..14].copy_from_slice(&[0x80, 0x35]);
        access(&b, &rarp, 2, &mut s);
        assert_eq!(
            access(&b, &eth(mac(5), mac(2), None), 1, &mut s).0,
            Forward::Port {
                port: 2,
                vid: 0,
                bd: 0
            }
        );
    }

    struct Neigh(RefCell<Vec<(u16, IpAddr, MacAddr)>>);
    impl NeighborTable for Neigh {
        fn lookup(&self, bd: u16, ip: IpAddr) -> Option<MacAddr> {
            self.0
                .borrow()
                .iter()
                .rev()
                .find(|e| e.0 == bd && e.1 == ip)
                .map(|e| e.2)
        }
        fn snoop(&self, bd: u16, ip: IpAddr, mac: MacAddr) {
            self.0.borrow_mut().push((bd, ip, mac));
        }
    }

    #[test]
    fn arp_suppression_answers_known_requests() {
        let t = tables();
        let fdb = Fdb::new(&t.slots, &t.cold, &t.bds, FdbConfig::new(128)).unwrap();
        let ports = [PortMode::access(0), PortMode::access(0)];
        let bds = [BdConfig::new(100, &[])];
        let b = Bridge::new(&ports, &bds, &fdb).unwrap();
        let n = Neigh(RefCell::new(Vec::new()));
        let arp = |op: ArpOperation, smac: MacAddr, sip: [u8; 4], tip: [u8; 4]| {
            let mut f = vec![0u8; 60];
            f[..6].copy_from_slice(&[0xff; 6]);
            f[6..12].copy_from_slice(&smac.0);
            f[12..14].copy_from_slice(&[0x08, 0x06]);
            ArpRepr {
                operation: op,
                sender_mac: smac,
                sender_ip: sip.into(),
                target_mac: MacAddr::ZERO,
                target_ip: tip.into(),
            }
            .emit(&mut ArpPacket::new_unchecked(&mut f[14..]));
            f
        };
        let run = |bytes: &[u8], port: u16| {
            let mut f = BufFrame::with_data(vec![0u8; 256], 64, bytes).unwrap();
            let d = b.from_access(&mut f, port, 1, &mut NoEvents, Some(&n));
            (d, f.data().to_vec())
        };
        // 10.0.0.2 announces itself (gratuitous): snooped, flooded.
        let (d, _) = run(
            &arp(ArpOperation::Request, mac(2), [10, 0, 0, 2], [10, 0, 0, 2]),
            1,
        );
        assert!(matches!(d, Forward::Flood { .. }));
        // 10.0.0.1 asks for 10.0.0.2: answered in place, not flooded.
        let (d, reply) = run(
            &arp(ArpOperation::Request, mac(1), [10, 0, 0, 1], [10, 0, 0, 2]),
            0,
        );
        assert_eq!(d, Forward::Reply { port: 0, vid: 0 });
        let r = ArpRepr::parse(&ArpPacket::new_checked(&reply[14..]).unwrap()).unwrap();
        assert_eq!(
            (r.operation, r.sender_mac, r.target_mac),
            (ArpOperation::Reply, mac(2), mac(1))
        );
        assert_eq!(&reply[..12], &[mac(1).0, mac(2).0].concat()[..]);
        // Unknown target: flooded as usual.
        let (d, _) = run(
            &arp(ArpOperation::Request, mac(1), [10, 0, 0, 1], [10, 0, 0, 9]),
            0,
        );
        assert!(matches!(d, Forward::Flood { .. }));
    }

    #[test]
    fn nd_suppression_answers_known_solicitations() {
        use crate::neigh::{NeighSlot, NeighTable};
        let t = tables();
        let fdb = Fdb::new(&t.slots, &t.cold, &t.bds, FdbConfig::new(128)).unwrap();
        let ports = [PortMode::access(0), PortMode::access(0)];
        let bds = [BdConfig::new(100, &[])];
        let b = Bridge::new(&ports, &bds, &fdb).unwrap();
        let slots: Vec<NeighSlot> = (0..64).map(|_| NeighSlot::new()).collect();
        let n = NeighTable::new(&slots).unwrap();
        let a: core::net::Ipv6Addr = "2001:db8::a".parse().unwrap();
        let bb: core::net::Ipv6Addr = "2001:db8::b".parse().unwrap();
        let nd = |src_mac: MacAddr,
                  dst_mac: MacAddr,
                  src: core::net::Ipv6Addr,
                  dst: core::net::Ipv6Addr,
                  repr: Icmpv6Repr<'_>| {
            let mut f = vec![0u8; 14 + 40 + repr.buffer_len()];
            f[..6].copy_from_slice(&dst_mac.0);
            f[6..12].copy_from_slice(&src_mac.0);
            f[12..14].copy_from_slice(&[0x86, 0xdd]);
            let mut r = Ipv6Repr::new(
                src,
                dst,
                IpProtocol::ICMPV6,
                u16::try_from(repr.buffer_len()).unwrap(),
            );
            r.hop_limit = 255;
            r.emit(&mut Ipv6Packet::new_unchecked(&mut f[14..]));
            repr.emit(
                &mut Icmpv6Packet::new_unchecked(&mut f[54..]),
                &IpPair::V6(src, dst),
            );
            f
        };
        let run = |bytes: &[u8], port: u16| {
            let mut f = BufFrame::with_data(vec![0u8; 256], 64, bytes).unwrap();
            let d = b.from_access(&mut f, port, 1, &mut NoEvents, Some(&n));
            (d, f.data().to_vec())
        };
        // B advertises itself (unsolicited NA): snooped, flooded.
        let na = Icmpv6Repr::NeighborAdvert {
            flags: NdpFlags::OVERRIDE,
            target: bb,
            target_lladdr: Some(mac(2)),
        };
        let (d, _) = run(
            &nd(
                mac(2),
                MacAddr([0x33, 0x33, 0, 0, 0, 1]),
                bb,
                "ff02::1".parse().unwrap(),
                na,
            ),
            1,
        );
        assert!(matches!(d, Forward::Flood { .. }));
        // A solicits B: answered in place with a valid NA.
        let ns = Icmpv6Repr::NeighborSolicit {
            target: bb,
            source_lladdr: Some(mac(1)),
        };
        let (d, reply) = run(
            &nd(
                mac(1),
                MacAddr([0x33, 0x33, 0xff, 0, 0, 0xb]),
                a,
                "ff02::1:ff00:b".parse().unwrap(),
                ns,
            ),
            0,
        );
        assert_eq!(d, Forward::Reply { port: 0, vid: 0 });
        assert_eq!(&reply[..12], &[mac(1).0, mac(2).0].concat()[..]);
        let ip = Ipv6Packet::new_checked(&reply[14..]).unwrap();
        assert_eq!((ip.src_addr(), ip.dst_addr(), ip.hop_limit()), (bb, a, 255));
        let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        let parsed = Icmpv6Repr::parse(&icmp, &IpPair::V6(bb, a)).unwrap();
        assert_eq!(
            parsed,
            Icmpv6Repr::NeighborAdvert {
                flags: NdpFlags::SOLICITED,
                target: bb,
                target_lladdr: Some(mac(2))
            }
        );
        // And A's binding was snooped from the solicitation.
        assert_eq!(n.lookup(0, IpAddr::V6(a)), Some(mac(1)));
        // Duplicate address detection is never answered on the owner's behalf.
        let dad = Icmpv6Repr::NeighborSolicit {
            target: bb,
            source_lladdr: None,
        };
        let (d, _) = run(
            &nd(
                mac(3),
                MacAddr([0x33, 0x33, 0xff, 0, 0, 0xb]),
                "::".parse().unwrap(),
                "ff02::1:ff00:b".parse().unwrap(),
                dad,
            ),
            0,
        );
        assert!(matches!(d, Forward::Flood { .. }));
    }

    #[test]
    fn config_errors() {
        let t = tables();
        let fdb = Fdb::new(&t.slots, &t.cold, &t.bds, FdbConfig::new(128)).unwrap();
        let bds = [BdConfig::new(100, &[]), BdConfig::new(100, &[])];
        assert_eq!(
            Bridge::new(&[], &bds, &fdb).err(),
            Some(BridgeConfigError::DuplicateVni(100))
        );
        let bds = [BdConfig::new(100, &[])];
        let ports = [PortMode::access(3)];
        assert_eq!(
            Bridge::new(&ports, &bds, &fdb).err(),
            Some(BridgeConfigError::UnknownBd { port: 0, bd: 3 })
        );
    }

    #[test]
    fn unchecked_missing_bridge_domain_floods_instead_of_panicking() {
        // A port in bridge domain 3 with only bridge domain 0 configured
        // (what `Bridge::new` refuses), and a destination known behind a
        // remote VTEP in bridge domain 3: no VNI to encapsulate with, so
        // the frame floods (locally only: bridge domain 3 has no flood
        // list); it must not panic.
        let t = tables();
        let fdb = Fdb::new(&t.slots, &t.cold, &t.bds, FdbConfig::new(128)).unwrap();
        fdb.add_static(3, mac(2), Location::Remote(0)).unwrap();
        let bds = [BdConfig::new(100, &[])];
        let ports = [PortMode::access(3)];
        let b = Bridge::new_unchecked(&ports, &bds, &fdb);
        let mut store = [0u8; 256];
        let (d, _) = access(&b, &eth(mac(2), mac(1), None), 0, &mut store);
        assert_eq!(
            d,
            Forward::Flood {
                bd: 3,
                except_port: Some(0),
                to_overlay: true
            }
        );
    }

    proptest::proptest! {
        /// Random traffic among random hosts in random bridge domains,
        /// from access ports and from the overlay: every decision stays in
        /// the frame's own bridge domain, and nothing from the overlay goes
        /// back into it.
        #[test]
        fn isolation_and_split_horizon(
            frames in proptest::collection::vec((0u8..12, 0u8..12, 0u16..6, proptest::bool::ANY, 0u8..3), 1..200),
        ) {
            let t = tables();
            let fdb = Fdb::new(&t.slots, &t.cold, &t.bds, FdbConfig::new(128)).unwrap();
            // Ports 0..3 access in bd 0, 1, 2; port 3 a trunk (10->0, 20->1, 30->2); 4 and 5 in bd 1.
            let ports = [
                PortMode::access(0), PortMode::access(1), PortMode::access(2),
                PortMode::trunk(&[(10, 0), (20, 1), (30, 2)]).unwrap(),
                PortMode::access(1), PortMode::access(1),
            ];
            let bds = [BdConfig::new(100, &[0]), BdConfig::new(200, &[0, 1]), BdConfig::new(300, &[1])];
            let b = Bridge::new(&ports, &bds, &fdb).unwrap();
            let remotes: [IpAddr; 2] = ["192.0.2.1".parse().unwrap(), "192.0.2.3".parse().unwrap()];
            let local_ip: IpAddr = "192.0.2.2".parse().unwrap();
            let dcfg = DecapConfig::new(local_ip);
            for (src, dst, port, overlay, which) in frames {
                let dst_mac = if dst == 11 { MacAddr::BROADCAST } else { mac(dst + 1) };
                let src_mac = mac(src + 1);
                if overlay {
                    let bd = usize::from(which);
                    let vni = bds[bd].vni;
                    let r = usize::from(src % 2);
                    let tpl = EncapTemplate::new(&EncapConfig::new(remotes[r], local_ip, mac(0xa1), mac(0xa2))).unwrap();
                    let mut f = BufFrame::with_data(vec![0u8; 512], 128, &eth(dst_mac, src_mac, None)).unwrap();
                    tpl.encap(&mut f, vni, 1).unwrap();
                    let mut g = BufFrame::with_data(vec![0u8; 512], 0, f.data()).unwrap();
                    let index = |ip: IpAddr| remotes.iter().position(|x| *x == ip).map(|i| u32::try_from(i).unwrap());
                    let (d, _) = b.from_overlay(&mut g, &dcfg, 1, &mut NoEvents, index, None);
                    match d {
                        Forward::Port { port, vid, bd: fbd } => {
                            proptest::prop_assert_eq!(usize::from(fbd), bd);
                            proptest::prop_assert_eq!(ports[usize::from(port)].vid_for(u16::from(which)), Some(vid));
                        }
                        Forward::Flood { bd: fb, to_overlay, .. } => {
                            proptest::prop_assert_eq!(usize::from(fb), bd);
                            proptest::prop_assert!(!to_overlay, "split horizon");
                        }
                        Forward::Remote { .. } => proptest::prop_assert!(false, "overlay frame sent back into the overlay"),
                        Forward::Drop(BridgeDrop::SplitHorizon) | Forward::Drop(BridgeDrop::SamePort) => {}
                        other => proptest::prop_assert!(false, "unexpected {:?}", other),
                    }
                } else {
                    let vid = if port == 3 { Some([10u16, 20, 30][usize::from(which)]) } else { None };
                    let ingress_bd = ports[usize::from(port)].bd_for(vid.unwrap_or(0)).unwrap();
                    let mut f = BufFrame::with_data(vec![0u8; 512], 64, &eth(dst_mac, src_mac, vid)).unwrap();
                    match b.from_access(&mut f, port, 1, &mut NoEvents, None) {
                        Forward::Port { port: out, vid, bd } => {
                            proptest::prop_assert_eq!(bd, ingress_bd);
                            proptest::prop_assert_ne!(out, port);
                            proptest::prop_assert_eq!(ports[usize::from(out)].vid_for(ingress_bd), Some(vid));
                        }
                        Forward::Remote { vni, bd, .. } => {
                            proptest::prop_assert_eq!(bd, ingress_bd);
                            proptest::prop_assert_eq!(vni, bds[usize::from(ingress_bd)].vni);
                        }
                        Forward::Flood { bd, except_port, .. } => {
                            proptest::prop_assert_eq!(bd, ingress_bd);
                            proptest::prop_assert_eq!(except_port, Some(port));
                        }
                        Forward::Drop(BridgeDrop::SamePort) => {}
                        other => proptest::prop_assert!(false, "unexpected {:?}", other),
                    }
                }
            }
        }
    }
}
