//! The fabric: cables with a delay, the underlay router, and the bridges
//! (the hosts' VTEPs, the core switch) built from this library's VTEP.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;

use vxlan_core::bridge::{BdConfig, PortMode};
use vxlan_core::decap::DecapConfig;
use vxlan_core::encap::{EncapConfig, EncapTemplate};
use vxlan_core::fdb::{Event, EventSink, Location};
use vxlan_core::frame::Frame;
use vxlan_pmd::memport::{self, MemPort};
use vxlan_pmd::pool::{PktBuf, Pool};
use vxlan_pmd::port::Port;
use vxlan_pmd::run::PortLoop;
use vxlan_pmd::vtep::{RemoteVtep, Sizing, Snapshot, VtepShared};

use super::{others, router_mac, vtep_ip, vtep_mac, Mode, AGEING_S, CABLE_US, SUBNETS};

/// A cable between two memport ends with a fixed one-way delay, holding
/// the frames (pool buffers) in flight.
pub(super) struct Cable {
    pub(super) a: MemPort,
    pub(super) b: MemPort,
    pub(super) a_to_b: VecDeque<(u64, PktBuf)>,
    pub(super) b_to_a: VecDeque<(u64, PktBuf)>,
}

impl Cable {
    pub(super) fn step(&mut self, now: u64) -> bool {
        let mut any = false;
        while let Some(p) = self.a.recv() {
            self.a_to_b.push_back((now + CABLE_US, p));
        }
        while let Some(p) = self.b.recv() {
            self.b_to_a.push_back((now + CABLE_US, p));
        }
        while self.a_to_b.front().is_some_and(|(t, _)| *t <= now) {
            if let Some((_, p)) = self.a_to_b.pop_front() {
                let _ = self.b.send_pkt(0, p);
                any = true;
            }
        }
        while self.b_to_a.front().is_some_and(|(t, _)| *t <= now) {
            if let Some((_, p)) = self.b_to_a.pop_front() {
                let _ = self.a.send_pkt(0, p);
                any = true;
            }
        }
        any
    }

    pub(super) fn next(&self) -> Option<u64> {
        let a = self.a_to_b.front().map(|(t, _)| *t);
        let b = self.b_to_a.front().map(|(t, _)| *t);
        match (a, b) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        }
    }
}

/// The underlay router: one interface per host subnet; forwards on the
/// destination IP, rewrites both MACs, decrements the TTL.
pub(super) struct Router {
    pub(super) ifaces: Vec<MemPort>,
    pub(super) forwarded: u64,
    pub(super) dropped: u64,
}

impl Router {
    pub(super) fn step(&mut self) -> bool {
        let mut any = false;
        for i in 0..self.ifaces.len() {
            while let Some(mut p) = self.ifaces[i].recv() {
                any = true;
                match route(&mut p) {
                    Some(out) if out < self.ifaces.len() => {
                        self.forwarded += 1;
                        let _ = self.ifaces[out].send_pkt(0, p);
                    }
                    _ => self.dropped += 1,
                }
            }
        }
        any
    }
}

/// Routes one IPv4 frame in place; the egress interface.
pub(super) fn route(p: &mut PktBuf) -> Option<usize> {
    let d = p.data_mut();
    if d.len() < 34 || d[12..14] != [0x08, 0x00] || d[14] >> 4 != 4 || d[22] <= 1 {
        return None;
    }
    let dst = [d[30], d[31], d[32]];
    let out = SUBNETS.iter().position(|s| *s == dst)?;
    d[0..6].copy_from_slice(&vtep_mac(out).0);
    d[6..12].copy_from_slice(&router_mac(out).0);
    d[22] -= 1; // TTL
    let ihl = usize::from(d[14] & 0x0f) * 4;
    if d.len() < 14 + ihl {
        return None;
    }
    d[24] = 0;
    d[25] = 0;
    let mut sum = 0u32;
    for w in d[14..14 + ihl].chunks(2) {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let c = !u16::try_from(sum).unwrap_or(0);
    d[24..26].copy_from_slice(&c.to_be_bytes());
    Some(out)
}

/// One bridge (a host's VTEP, or the core switch) and what the demo has
/// seen of its FDB.
pub(super) struct Bridge {
    pub(super) name: String,
    pub(super) shared: Arc<VtepShared>,
    pub(super) lp: PortLoop,
    /// Host index when this is a host's VTEP.
    pub(super) host: Option<usize>,
    /// Last observed (location, frozen) of the client and server MACs.
    pub(super) seen: [Option<(Location, bool)>; 2],
    pub(super) knew_server: bool,
    /// ARP requests it answered itself, and moves its FDB refused, so far.
    pub(super) suppressed: u64,
    pub(super) refused: u64,
}

#[derive(Default)]
pub(super) struct EventLog(pub(super) Vec<Event>);

impl EventSink for EventLog {
    fn emit(&mut self, event: Event) {
        self.0.push(event);
    }
}

pub(super) fn host_snapshot(mode: Mode, h: usize) -> Snapshot {
    let me = IpAddr::V4(vtep_ip(h));
    match mode {
        Mode::Vxlan => Snapshot {
            ports: vec![PortMode::Underlay, PortMode::access(0)],
            bds: vec![BdConfig::new(5000, &[0, 1])],
            remotes: others(h)
                .iter()
                .map(|&o| RemoteVtep {
                    ip: IpAddr::V4(vtep_ip(o)),
                    template: EncapTemplate::new(&EncapConfig::new(
                        me,
                        IpAddr::V4(vtep_ip(o)),
                        vtep_mac(h),
                        router_mac(h),
                    ))
                    .unwrap_or_else(|e| unreachable!("fixed, valid addresses: {e:?}")),
                })
                .collect(),
            decap: DecapConfig::new(me),
            underlay: Some(0),
            suppress_arp_nd: true,
        },
        Mode::Vlan => Snapshot {
            ports: vec![trunk10(), PortMode::access(0)],
            bds: vec![BdConfig::new(10, &[])],
            remotes: Vec::new(),
            decap: DecapConfig::new(me),
            underlay: None,
            suppress_arp_nd: false,
        },
    }
}

pub(super) fn trunk10() -> PortMode {
    PortMode::trunk(&[(10, 0)]).unwrap_or(PortMode::access(0))
}

pub(super) fn bridge(
    name: String,
    snap: Snapshot,
    pool: &Arc<Pool>,
    ports: Vec<MemPort>,
    host: Option<usize>,
) -> Bridge {
    let shared = VtepShared::new(
        snap,
        Arc::clone(pool),
        Sizing {
            fdb_entries: 256,
            neighbors: 64,
            workers: 1,
            ageing: AGEING_S,
        },
    )
    .unwrap_or_else(|e| unreachable!("the demo's configuration is valid: {e}"));
    let ports: Vec<Box<dyn Port>> = ports
        .into_iter()
        .map(|p| Box::new(p) as Box<dyn Port>)
        .collect();
    let lp = PortLoop::new(shared.worker(0), ports);
    Bridge {
        name,
        shared,
        lp,
        host,
        seen: [None, None],
        knew_server: false,
        suppressed: 0,
        refused: 0,
    }
}

pub(super) fn pair(pool: &Arc<Pool>, a: &str, b: &str) -> (MemPort, MemPort) {
    memport::pair(Arc::clone(pool), a, b, 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vxlan_core::wire::Ipv4Packet;

    #[test]
    fn the_router_forwards_on_the_destination_ip_rewriting_macs_ttl_and_checksum() {
        let pool = Pool::new(4, 2048, 128).unwrap();
        // An encapsulated frame from host 1's VTEP to host 3's, built by the
        // library's own template.
        let t = EncapTemplate::new(&EncapConfig::new(
            IpAddr::V4(vtep_ip(0)),
            IpAddr::V4(vtep_ip(2)),
            vtep_mac(0),
            router_mac(0),
        ))
        .unwrap();
        let mut p = pool.alloc_with(&[0x42; 60]).unwrap();
        t.encap_flow(&mut p, 5000).unwrap();
        let ttl = Ipv4Packet::new_checked(&p.data()[14..]).unwrap().ttl();
        assert_eq!(route(&mut p), Some(2));
        let d = p.data();
        assert_eq!(d[0..6], vtep_mac(2).0, "to host 3's VTEP");
        assert_eq!(
            d[6..12],
            router_mac(2).0,
            "from the router's port on host 3's subnet"
        );
        let ip = Ipv4Packet::new_checked(&d[14..]).unwrap();
        assert_eq!(ip.ttl(), ttl - 1);
        assert!(ip.verify_checksum());
        assert_eq!(ip.dst_addr(), vtep_ip(2));
        // No route, not IPv4, or a TTL about to expire: dropped.
        let mut other = pool.alloc_with(p.data()).unwrap();
        other.data_mut()[30] = 10;
        assert_eq!(route(&mut other), None);
        other.data_mut()[30] = 203;
        other.data_mut()[22] = 1;
        assert_eq!(route(&mut other), None);
        let mut arp = pool.alloc_with(&[0xff; 60]).unwrap();
        assert_eq!(route(&mut arp), None);
    }
}
