//! The VM-mobility demo: a TCP stream survives a live migration across a
//! VXLAN fabric, told as it happens.
//!
//! One process, no root, no NIC, a simulated clock. Three hosts, each with
//! this library's VTEP ([`VtepShared`] driven by a [`PortLoop`] over
//! in-memory ports), sit in three different underlay subnets joined by a
//! router that forwards on the outer IP address and rewrites MACs, as a
//! routed data-centre network does. The VMs are real TCP/IP stacks
//! (smoltcp) on one tenant subnet: a client VM on host 1 streams a
//! deterministic byte pattern to a server VM on host 2, which checks every
//! byte. Mid-stream the server VM live-migrates to host 3: its TCP state is
//! kept, its port is detached from host 2 and, after a stop-and-copy pause,
//! attached on host 3, whose hypervisor announces it with a RARP.
//!
//! Variants ([`Options`]): the same on a VLAN fabric ([`Mode::Vlan`]: the
//! VTEPs in VLAN-only bridging mode behind a core switch, no overlay), no
//! announcement (the stale FDB entry holds until it ages out), and a
//! flapping MAC frozen by move dampening.
//!
//! [`run`] carries the scenario out, writing the story to a writer, and
//! returns a [`Report`]; [`Report::json`] and [`Report::svg`] render it.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, HardwareAddress, IpAddress, IpCidr,
    IpProtocol, Ipv4Packet, TcpPacket, TcpSeqNumber,
};
use vxlan_core::bridge::{BdConfig, PortMode};
use vxlan_core::decap::DecapConfig;
use vxlan_core::encap::{EncapConfig, EncapTemplate};
use vxlan_core::fdb::{Event, EventKind, EventSink, Location};
use vxlan_core::frame::Frame;
use vxlan_core::wire::{ArpOperation, ArpPacket, ArpRepr, MacAddr};
use vxlan_pmd::memport::{self, MemPort};
use vxlan_pmd::pool::{PktBuf, Pool};
use vxlan_pmd::port::Port;
use vxlan_pmd::run::PortLoop;
use vxlan_pmd::vtep::{RemoteVtep, Sizing, Snapshot, VtepShared, VtepStats};
use vxlan_pmd::worker::Poll;

/// How the three hosts are joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// VXLAN over a routed underlay: three IP subnets, one tenant segment.
    Vxlan,
    /// One VLAN (10) on trunks to a core switch: a single L2 fabric.
    Vlan,
}

impl Mode {
    /// `"vxlan"` or `"vlan"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Vxlan => "vxlan",
            Mode::Vlan => "vlan",
        }
    }
}

/// The scenario's knobs.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Fabric kind.
    pub mode: Mode,
    /// The destination hypervisor sends a RARP after the VM resumes.
    pub announce: bool,
    /// The server VM hops between hosts 2 and 3 six times in a row.
    pub flap: bool,
    /// Bytes the client sends.
    pub bytes: u64,
    /// When the (first) migration's stop-and-copy pause starts, ms.
    pub migrate_at_ms: u64,
    /// How long the VM is paused, ms.
    pub pause_ms: u64,
    /// The client VM's NIC rate, Mbit/s.
    pub rate_mbit: u64,
    /// The client application's sending rate, Mbit/s: each millisecond it
    /// writes this much, as far as the socket buffer has room (a paced
    /// stream, like video or rate-limited replication).
    pub app_rate_mbit: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: Mode::Vxlan,
            announce: true,
            flap: false,
            bytes: 10 * 1024 * 1024,
            migrate_at_ms: 300,
            pause_ms: 250,
            rate_mbit: 100,
            app_rate_mbit: 60,
        }
    }
}

/// Learned entries age out after this many seconds (the Linux bridge's and
/// the FDB's default).
pub const AGEING_S: u32 = 300;
/// One-way delay of each cable between a host and the router or core
/// switch.
const CABLE_US: u64 = 20;
/// The simulation gives up after this much simulated time.
const LIMIT_US: u64 = 1_200 * 1_000_000;
/// The tenant IP MTU: 1500 minus the 50 bytes of VXLAN encapsulation, as
/// clouds set it, so encapsulated frames fit a 1500-byte underlay.
const VM_IP_MTU: usize = 1450;
/// TCP socket buffers (the receive window).
const TCP_BUF: usize = 64 * 1024;
/// The flap variant: hops, interval between them, pause of each.
const FLAP_HOPS: u64 = 6;
const FLAP_EVERY_MS: u64 = 200;
const FLAP_PAUSE_MS: u64 = 50;
const SERVER_PORT: u16 = 5001;
const CLIENT_PORT: u16 = 49_152;

/// The deterministic byte at stream offset `i`.
pub fn pattern(i: u64) -> u8 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes()[0]
}

fn client_mac() -> MacAddr {
    MacAddr([0x02, 0x00, 0x0c, 0x11, 0x00, 0x01])
}
fn server_mac() -> MacAddr {
    MacAddr([0x02, 0x00, 0x5e, 0x77, 0x00, 0x02])
}
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 20);

/// Underlay subnets (documentation ranges), one per host.
const SUBNETS: [[u8; 3]; 3] = [[192, 0, 2], [198, 51, 100], [203, 0, 113]];

fn vtep_ip(h: usize) -> Ipv4Addr {
    let s = SUBNETS[h];
    Ipv4Addr::new(s[0], s[1], s[2], 10)
}
fn vtep_mac(h: usize) -> MacAddr {
    MacAddr([0x02, 0x00, 0x00, 0x00, index_u8(h + 1), 0x10])
}
fn router_mac(h: usize) -> MacAddr {
    MacAddr([0x02, 0x00, 0x00, 0x00, index_u8(h + 1), 0x01])
}
fn index_u8(i: usize) -> u8 {
    u8::try_from(i).unwrap_or(u8::MAX)
}

/// The other two hosts, in the order host `h`'s remote table lists them.
fn others(h: usize) -> [usize; 2] {
    match h {
        0 => [1, 2],
        1 => [0, 2],
        _ => [0, 1],
    }
}

/// One goodput sample.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Bin start, ms.
    pub t_ms: f64,
    /// Payload delivered to the server application in the bin, Mbit/s.
    pub mbit_s: f64,
}

/// One bridge's FDB and counters at the end.
#[derive(Debug, Clone)]
pub struct BridgeSummary {
    /// "host 1" .. "host 3", or "core switch".
    pub name: String,
    /// Moves its FDB made.
    pub moves: u64,
    /// Times move dampening froze a MAC.
    pub freezes: u64,
    /// Moves refused because the MAC was frozen.
    pub frozen_refused: u64,
    /// It had learned the server VM's MAC before the migration.
    pub knew_server: bool,
    /// Its counters.
    pub stats: VtepStats,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// The options it ran with.
    pub options: Options,
    /// Bytes the client application handed to TCP.
    pub bytes_sent: u64,
    /// Bytes the server received that matched the pattern, in order.
    pub bytes_verified: u64,
    /// The first offset at which a byte did not match, if any.
    pub first_mismatch: Option<u64>,
    /// RST segments seen on either VM's wire.
    pub tcp_resets: u64,
    /// The longest gap between two deliveries of payload to the server, ms.
    pub interruption_ms: f64,
    /// When that gap started, ms.
    pub interruption_from_ms: f64,
    /// FDB moves, summed over every bridge.
    pub fdb_moves: u64,
    /// MAC freezes by move dampening, summed.
    pub fdb_freezes: u64,
    /// Data segments the client sent whose sequence range it had sent
    /// before.
    pub retransmissions: u64,
    /// Data segments the client sent in all.
    pub data_segments: u64,
    /// Frames the fabric delivered to a port where the VM no longer was.
    pub lost_at_old_port: u64,
    /// Simulated time at which the last byte was verified (or the run
    /// stopped), ms.
    pub finished_ms: f64,
    /// True when every byte arrived before the time limit.
    pub completed: bool,
    /// The stop-and-copy pauses: (start, end), ms.
    pub pauses: Vec<(f64, f64)>,
    /// Goodput over time.
    pub goodput: Vec<Sample>,
    /// Per-bridge summaries.
    pub bridges: Vec<BridgeSummary>,
    /// Pool buffers not returned once everything was torn down (must be 0).
    pub buffers_leaked: usize,
}

impl Report {
    /// Every byte arrived intact and nothing was reset.
    pub fn intact(&self) -> bool {
        self.completed
            && self.bytes_verified == self.bytes_sent
            && self.first_mismatch.is_none()
            && self.tcp_resets == 0
    }

    /// The one-line JSON summary.
    pub fn json(&self) -> String {
        let o = &self.options;
        serde_json::json!({
            "mode": o.mode.as_str(),
            "announce": o.announce,
            "flap": o.flap,
            "bytes_sent": self.bytes_sent,
            "bytes_verified": self.bytes_verified,
            "intact": self.intact(),
            "tcp_resets": self.tcp_resets,
            "interruption_ms": round3(self.interruption_ms),
            "pause_ms": if o.flap { FLAP_PAUSE_MS } else { o.pause_ms },
            "fdb_moves": self.fdb_moves,
            "fdb_freezes": self.fdb_freezes,
            "retransmissions": self.retransmissions,
            "data_segments": self.data_segments,
            "lost_at_old_port": self.lost_at_old_port,
            "finished_ms": round3(self.finished_ms),
            "buffers_leaked": self.buffers_leaked,
            "moves_per_bridge": self.bridges.iter().map(|b| serde_json::json!({
                "bridge": b.name, "moves": b.moves, "freezes": b.freezes,
                "frozen_refused": b.frozen_refused,
            })).collect::<Vec<_>>(),
        })
        .to_string()
    }

    /// Goodput over simulated time as an SVG document, with the pauses
    /// shaded and the interruption marked.
    pub fn svg(&self) -> String {
        svg(self)
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn ms(us: u64) -> f64 {
    // Precision: simulated microseconds stay far below 2^52.
    #[allow(clippy::cast_precision_loss)]
    let f = us as f64;
    f / 1000.0
}

// ---------------------------------------------------------------- the VMs

/// A guest NIC: frames go out through a serialisation queue at the NIC's
/// rate into whichever access port the VM is plugged into (none while it is
/// paused or between hosts).
struct Nic {
    port: Option<MemPort>,
    rate_bps: u64,
    /// (departure time, frame) in order.
    txq: VecDeque<(u64, Vec<u8>)>,
    free_at: u64,
    now: u64,
    tap: Tap,
}

/// What the NIC saw on its wire.
#[derive(Default)]
struct Tap {
    resets: u64,
    data_segments: u64,
    retransmissions: u64,
    highest_end: Option<TcpSeqNumber>,
    /// Retransmissions since the last one that was reported.
    since_report: u64,
    last_retx_us: Option<u64>,
    /// (time, first byte offset) of each burst of retransmissions.
    episodes: Vec<(u64, u32)>,
    isn: Option<TcpSeqNumber>,
    /// ARP and RARP seen, to tell in the story.
    arp: Vec<String>,
}

struct TcpSeen {
    seq: TcpSeqNumber,
    len: usize,
    syn: bool,
    rst: bool,
}

fn tcp_of(frame: &[u8]) -> Option<TcpSeen> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    if ip.next_header() != IpProtocol::Tcp {
        return None;
    }
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    Some(TcpSeen {
        seq: tcp.seq_number(),
        len: tcp.payload().len(),
        syn: tcp.syn(),
        rst: tcp.rst(),
    })
}

fn arp_of(frame: &[u8]) -> Option<String> {
    if frame.len() < 14 {
        return None;
    }
    let et = u16::from_be_bytes([frame[12], frame[13]]);
    if et != 0x0806 && et != 0x8035 {
        return None;
    }
    let arp = ArpRepr::parse(&ArpPacket::new_checked(&frame[14..]).ok()?).ok()?;
    Some(match arp.operation {
        ArpOperation::Request => format!("ARP who-has {} tell {}", arp.target_ip, arp.sender_ip),
        ArpOperation::Reply => format!("ARP reply {} is-at {}", arp.sender_ip, arp.sender_mac),
        _ => format!("RARP for {}", arp.sender_mac),
    })
}

impl Tap {
    fn outgoing(&mut self, frame: &[u8], now: u64) {
        if let Some(a) = arp_of(frame) {
            self.arp.push(a);
        }
        let Some(t) = tcp_of(frame) else { return };
        if t.rst {
            self.resets += 1;
        }
        if t.syn {
            self.isn = Some(t.seq + 1);
        }
        if t.len == 0 {
            return;
        }
        self.data_segments += 1;
        let end = t.seq + t.len;

        match self.highest_end {
            Some(h) if t.seq < h => {
                self.retransmissions += 1;
                self.since_report += 1;
                let new_episode =
                    !matches!(self.last_retx_us, Some(l) if now.saturating_sub(l) <= 2_000);
                if new_episode {
                    let off = self
                        .isn
                        .map_or(0, |i| u32::try_from(t.seq.0.wrapping_sub(i.0)).unwrap_or(0));
                    self.episodes.push((now, off));
                }
                self.last_retx_us = Some(now);
                if end > h {
                    self.highest_end = Some(end);
                }
            }
            _ => self.highest_end = Some(end),
        }
    }

    fn incoming(&mut self, frame: &[u8]) {
        if let Some(a) = arp_of(frame) {
            self.arp.push(a);
        }
        if tcp_of(frame).is_some_and(|t| t.rst) {
            self.resets += 1;
        }
    }
}

impl Nic {
    fn new(port: MemPort, rate_mbit: u64) -> Nic {
        Nic {
            port: Some(port),
            rate_bps: rate_mbit.max(1) * 1_000_000,
            txq: VecDeque::new(),
            free_at: 0,
            now: 0,
            tap: Tap::default(),
        }
    }

    fn enqueue(&mut self, mut frame: Vec<u8>) {
        if frame.len() < 60 {
            frame.resize(60, 0); // a NIC pads short frames
        }
        self.tap.outgoing(&frame, self.now);
        // Serialisation: preamble, frame and gap, 20 bytes of overhead.
        let bits = u64::try_from(frame.len() + 24).unwrap_or(u64::MAX) * 8;
        let start = self.free_at.max(self.now);
        self.free_at = start + (bits * 1_000_000).div_ceil(self.rate_bps);
        self.txq.push_back((self.free_at, frame));
    }

    /// Puts the frames whose last bit has left on the wire. True if any.
    fn flush(&mut self, now: u64) -> bool {
        let mut any = false;
        while self.txq.front().is_some_and(|(t, _)| *t <= now) {
            let Some((_, f)) = self.txq.pop_front() else {
                break;
            };
            if let Some(p) = &mut self.port {
                // A full ring or an empty pool loses the frame, as a NIC would.
                let _ = p.send(&f);
            }
            any = true;
        }
        any
    }

    fn next_departure(&self) -> Option<u64> {
        self.txq.front().map(|(t, _)| *t)
    }
}

struct NicRx(PktBuf);
struct NicTx<'a>(&'a mut Nic);

impl RxToken for NicRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0.data())
    }
}

impl TxToken for NicTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0u8; len];
        let r = f(&mut buf);
        self.0.enqueue(buf);
        r
    }
}

impl Device for Nic {
    type RxToken<'a> = NicRx;
    type TxToken<'a> = NicTx<'a>;

    fn receive(&mut self, _t: Instant) -> Option<(NicRx, NicTx<'_>)> {
        let pkt = self.port.as_mut()?.recv()?;
        self.tap.incoming(pkt.data());
        Some((NicRx(pkt), NicTx(self)))
    }

    fn transmit(&mut self, _t: Instant) -> Option<NicTx<'_>> {
        Some(NicTx(self))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = VM_IP_MTU + 14;
        caps
    }
}

struct Vm {
    iface: Interface,
    sockets: SocketSet<'static>,
    tcp: SocketHandle,
    nic: Nic,
    /// Paused (stop-and-copy): not polled, not plugged in.
    paused: bool,
    /// The host it runs on.
    host: usize,
}

fn instant(us: u64) -> Instant {
    Instant::from_micros(i64::try_from(us).unwrap_or(i64::MAX))
}

impl Vm {
    fn new(
        mac: MacAddr,
        ip: Ipv4Addr,
        port: MemPort,
        host: usize,
        rate_mbit: u64,
        seed: u64,
    ) -> Vm {
        let mut nic = Nic::new(port, rate_mbit);
        let mut cfg = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac.0)));
        cfg.random_seed = seed;
        let mut iface = Interface::new(cfg, &mut nic, instant(0));
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(IpAddress::Ipv4(ip), 24));
        });
        let socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; TCP_BUF]),
            tcp::SocketBuffer::new(vec![0; TCP_BUF]),
        );
        let mut sockets = SocketSet::new(Vec::new());
        let tcp = sockets.add(socket);
        Vm {
            iface,
            sockets,
            tcp,
            nic,
            paused: false,
            host,
        }
    }

    fn poll(&mut self, now: u64) {
        if self.paused {
            return;
        }
        self.nic.now = now;
        self.iface
            .poll(instant(now), &mut self.nic, &mut self.sockets);
    }

    fn next_wakeup(&mut self, now: u64) -> Option<u64> {
        if self.paused {
            return None;
        }
        let t = self.iface.poll_at(instant(now), &self.sockets);
        let wake = t.map(|i| u64::try_from(i.total_micros()).unwrap_or(0).max(now + 1));
        match (wake, self.nic.next_departure()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn socket(&mut self) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(self.tcp)
    }
}

// ------------------------------------------------------------- the fabric

/// A cable between two memport ends with a fixed one-way delay, holding
/// the frames (pool buffers) in flight.
struct Cable {
    a: MemPort,
    b: MemPort,
    a_to_b: VecDeque<(u64, PktBuf)>,
    b_to_a: VecDeque<(u64, PktBuf)>,
}

impl Cable {
    fn step(&mut self, now: u64) -> bool {
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

    fn next(&self) -> Option<u64> {
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
struct Router {
    ifaces: Vec<MemPort>,
    forwarded: u64,
    dropped: u64,
}

impl Router {
    fn step(&mut self) -> bool {
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
fn route(p: &mut PktBuf) -> Option<usize> {
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
struct Bridge {
    name: String,
    shared: Arc<VtepShared>,
    lp: PortLoop,
    /// Host index when this is a host's VTEP.
    host: Option<usize>,
    /// Last observed (location, frozen) of the client and server MACs.
    seen: [Option<(Location, bool)>; 2],
    knew_server: bool,
}

#[derive(Default)]
struct EventLog(Vec<Event>);

impl EventSink for EventLog {
    fn emit(&mut self, event: Event) {
        self.0.push(event);
    }
}

/// The fabric, the VMs and the story so far.
struct Sim<'o> {
    opts: Options,
    out: &'o mut dyn Write,
    now: u64,
    bridges: Vec<Bridge>,
    cables: Vec<Cable>,
    router: Option<Router>,
    /// Host access-port ends not plugged into a VM (held by the
    /// hypervisor): frames arriving there are lost.
    vacant: Vec<Option<MemPort>>,
    client: Vm,
    server: Vm,
    sent: u64,
    closed: bool,
    verified: u64,
    mismatch: Option<u64>,
    /// (time, bytes) of each delivery to the server application.
    deliveries: Vec<(u64, u64)>,
    lost_at_old_port: u64,
    pauses: Vec<(u64, u64)>,
    next_progress: u64,
    retx_told: usize,
    /// The client application's pacing: bytes it may still write in this
    /// millisecond, and when the next millisecond starts.
    credit: u64,
    next_tick: u64,
}

fn mac_name(mac: MacAddr) -> &'static str {
    if mac == client_mac() {
        "client VM"
    } else if mac == server_mac() {
        "server VM"
    } else {
        "?"
    }
}

impl Sim<'_> {
    fn say(&mut self, line: &str) {
        let _ = writeln!(self.out, "[{:>10.3} ms] {line}", ms(self.now));
    }

    fn note(&mut self, line: &str) {
        let _ = writeln!(self.out, "{:>16}{line}", "");
    }

    fn where_(&self, b: usize, loc: Location) -> String {
        let br = &self.bridges[b];
        match (br.host, loc) {
            (Some(h), Location::Remote(r)) => {
                let o = others(h)[usize::try_from(r).unwrap_or(0).min(1)];
                format!("behind VTEP {} (host {})", vtep_ip(o), o + 1)
            }
            (Some(_), Location::Local { port: 1, .. }) => "on local port 1 (the VM's port)".into(),
            (Some(_), Location::Local { port, vlan }) => {
                format!("on the uplink trunk (port {port}, VLAN {vlan})")
            }
            (None, Location::Local { port, vlan }) => {
                format!("on port {port} toward host {} (VLAN {vlan})", port + 1)
            }
            (None, Location::Remote(r)) => format!("remote {r}"),
        }
    }

    fn seq_of(&self, b: usize, mac: MacAddr) -> u32 {
        self.bridges[b]
            .shared
            .fdb()
            .iter()
            .find(|r| r.bd == 0 && r.mac == mac)
            .map_or(0, |r| r.seq)
    }

    /// Compares the FDBs with what was seen last and tells what changed.
    fn observe(&mut self) {
        for b in 0..self.bridges.len() {
            for (k, mac) in [client_mac(), server_mac()].into_iter().enumerate() {
                let now = self.bridges[b]
                    .shared
                    .fdb()
                    .lookup(0, mac)
                    .map(|e| (e.location, e.frozen));
                let before = self.bridges[b].seen[k];
                if now == before {
                    continue;
                }
                self.bridges[b].seen[k] = now;
                let name = self.bridges[b].name.clone();
                match (before, now) {
                    (None, Some((loc, _))) => {
                        let w = self.where_(b, loc);
                        self.say(&format!("{name}: learned {mac} ({}) {w}", mac_name(mac)));
                    }
                    (Some((old, _)), Some((loc, frozen))) if old != loc => {
                        let seq = self.seq_of(b, mac);
                        let (wo, wn) = (self.where_(b, old), self.where_(b, loc));
                        self.say(&format!(
                            "{name}: MOVE {mac} ({}) {wo} -> {wn}; mobility seq {seq}",
                            mac_name(mac)
                        ));
                        if frozen {
                            self.say(&format!(
                                "{name}: FROZEN {mac}: {seq} moves in the dampening window; \
                                 it stays {wn} for {}s whatever it sends",
                                vxlan_core::fdb::Dampening::DEFAULT.hold
                            ));
                        }
                    }
                    (Some(_), Some((loc, frozen))) => {
                        let w = self.where_(b, loc);
                        let what = if frozen { "FROZEN" } else { "thawed" };
                        self.say(&format!("{name}: {what} {mac} ({}) {w}", mac_name(mac)));
                    }
                    (Some((old, _)), None) => {
                        let w = self.where_(b, old);
                        self.say(&format!(
                            "{name}: forgot {mac} ({}) {w} (aged out after {AGEING_S}s idle)",
                            mac_name(mac)
                        ));
                    }
                    (None, None) => {}
                }
            }
        }
    }

    /// Runs everything that is due now until nothing moves.
    fn settle(&mut self) {
        for _ in 0..10_000 {
            let mut busy = false;
            self.client.poll(self.now);
            self.server.poll(self.now);
            self.apps();
            busy |= self.client.nic.flush(self.now);
            busy |= self.server.nic.flush(self.now);
            for _ in 0..64 {
                let mut any = false;
                for b in &mut self.bridges {
                    any |= b.lp.poll() == Poll::Busy;
                }
                for c in &mut self.cables {
                    any |= c.step(self.now);
                }
                if let Some(r) = &mut self.router {
                    any |= r.step();
                }
                busy |= any;
                if !any {
                    break;
                }
            }
            for v in self.vacant.iter_mut().flatten() {
                while v.recv().is_some() {
                    self.lost_at_old_port += 1;
                    busy = true;
                }
            }
            self.observe();
            self.tell_wire();
            let pending = |vm: &Vm| vm.nic.port.as_ref().is_some_and(|p| p.rx_pending(0) > 0);
            if !busy && !pending(&self.client) && !pending(&self.server) {
                break;
            }
        }
    }

    fn tell_wire(&mut self) {
        for (who, arps) in [
            ("client VM", std::mem::take(&mut self.client.nic.tap.arp)),
            ("server VM", std::mem::take(&mut self.server.nic.tap.arp)),
        ] {
            for a in arps {
                self.say(&format!("{who} wire: {a}"));
            }
        }
        let eps = self.client.nic.tap.episodes.len();
        while self.retx_told < eps {
            let (t, off) = self.client.nic.tap.episodes[self.retx_told];
            self.retx_told += 1;
            if self.retx_told <= 12 {
                let _ = writeln!(
                    self.out,
                    "[{:>10.3} ms] client TCP: retransmission timeout, resending from byte {off}",
                    ms(t)
                );
            } else if self.retx_told == 13 {
                self.note("(further retransmission timeouts not shown; the timer doubles each time, up to 10 s)");
            }
        }
    }

    /// The applications: the client writes the pattern, the server checks it.
    fn apps(&mut self) {
        let total = self.opts.bytes;
        if self.now >= self.next_tick {
            self.credit = self.opts.app_rate_mbit * 1000 / 8;
            self.next_tick = (self.now / 1000 + 1) * 1000;
        }
        if !self.client.paused {
            let (sent, credit) = (&mut self.sent, &mut self.credit);
            let s = self.client.socket();
            while *sent < total && *credit > 0 && s.can_send() {
                let n = s
                    .send(|buf| {
                        let n = buf.len().min(
                            usize::try_from((total - *sent).min(*credit)).unwrap_or(usize::MAX),
                        );
                        for (i, b) in buf[..n].iter_mut().enumerate() {
                            *b = pattern(*sent + i as u64);
                        }
                        (n, n)
                    })
                    .unwrap_or(0);
                if n == 0 {
                    break;
                }
                *sent += n as u64;
                *credit -= n as u64;
            }
            if *sent == total && !self.closed {
                s.close();
                self.closed = true;
            }
        }
        if !self.server.paused {
            let (verified, mismatch) = (&mut self.verified, &mut self.mismatch);
            let s = self.server.socket();
            let mut got = 0u64;
            while s.can_recv() {
                let n = s
                    .recv(|buf| {
                        for (i, b) in buf.iter().enumerate() {
                            let off = *verified + i as u64;
                            if *b != pattern(off) && mismatch.is_none() {
                                *mismatch = Some(off);
                            }
                        }
                        (buf.len(), buf.len())
                    })
                    .unwrap_or(0);
                if n == 0 {
                    break;
                }
                *verified += n as u64;
                got += n as u64;
            }
            if s.state() == tcp::State::CloseWait {
                s.close();
            }
            if got > 0 {
                self.deliveries.push((self.now, got));
                while self.verified >= self.next_progress && self.next_progress < total {
                    let mib = self.next_progress / 1_048_576;
                    let line = format!("server VM: {mib} MiB received and verified");
                    self.say(&line);
                    self.next_progress += 2 * 1024 * 1024;
                }
            }
        }
    }

    /// The stop-and-copy phase starts: the VM freezes and leaves its host.
    fn pause_server(&mut self) {
        let from = self.server.host;
        self.server.paused = true;
        if let Some(p) = self.server.nic.port.take() {
            self.vacant[from] = Some(p);
        }
        // Frames still in the NIC's queue are lost with the paused VM.
        self.server.nic.txq.clear();
    }

    /// The VM resumes on host `to`; its hypervisor announces it.
    fn resume_server(&mut self, to: usize) {
        self.server.host = to;
        self.server.nic.port = self.vacant[to].take();
        self.server.nic.free_at = self.now;
        self.server.paused = false;
        if self.opts.announce {
            let mut rarp = [0u8; 60];
            rarp[0..6].copy_from_slice(&MacAddr::BROADCAST.0);
            rarp[6..12].copy_from_slice(&server_mac().0);
            rarp[12..14].copy_from_slice(&0x8035u16.to_be_bytes());
            ArpRepr {
                operation: ArpOperation::ReverseRequest,
                sender_mac: server_mac(),
                sender_ip: Ipv4Addr::UNSPECIFIED,
                target_mac: server_mac(),
                target_ip: Ipv4Addr::UNSPECIFIED,
            }
            .emit(&mut ArpPacket::new_unchecked(&mut rarp[14..42]));
            self.server.nic.enqueue(rarp.to_vec());
        }
    }

    fn age(&mut self) {
        let now_s = u32::try_from(self.now / 1_000_000).unwrap_or(u32::MAX);
        let mut told = Vec::new();
        for b in &self.bridges {
            b.shared.set_now(now_s);
            let mut log = EventLog::default();
            let slots = b.shared.fdb().slot_count();
            b.shared.fdb().age_step(now_s, slots, &mut log);
            for e in log.0 {
                if e.kind == EventKind::Aged {
                    told.push(e);
                }
            }
        }
        if !told.is_empty() {
            self.observe();
        }
    }

    fn dump_fdbs(&mut self, title: &str) {
        let _ = writeln!(self.out, "\n  {title}");
        for b in 0..self.bridges.len() {
            let mut recs: Vec<_> = self.bridges[b].shared.fdb().iter().collect();
            recs.sort_by_key(|r| r.mac.0);
            let _ = writeln!(self.out, "    {}:", self.bridges[b].name);
            if recs.is_empty() {
                let _ = writeln!(self.out, "      (empty)");
            }
            for r in recs {
                let w = self.where_(b, r.entry.location);
                let _ = writeln!(
                    self.out,
                    "      {} {:<9} {w}  moves/seq {}{}",
                    r.mac,
                    mac_name(r.mac),
                    r.seq,
                    if r.entry.frozen { "  FROZEN" } else { "" }
                );
            }
        }
        let _ = writeln!(self.out);
    }
}

// ---------------------------------------------------------------- building

fn host_snapshot(mode: Mode, h: usize) -> Snapshot {
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

fn trunk10() -> PortMode {
    PortMode::trunk(&[(10, 0)]).unwrap_or(PortMode::access(0))
}

fn bridge(
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
    }
}

fn pair(pool: &Arc<Pool>, a: &str, b: &str) -> (MemPort, MemPort) {
    memport::pair(Arc::clone(pool), a, b, 1024)
}

/// Runs the scenario, telling the story on `out`.
pub fn run(opts: &Options, out: &mut dyn Write) -> Report {
    let pool = Pool::new(4096, 2048, 128).unwrap_or_else(|e| unreachable!("pool: {e:?}"));
    let mut bridges = Vec::new();
    let mut cables = Vec::new();
    let mut middle_ends = Vec::new();
    let mut vm_ends = Vec::new();
    for h in 0..3 {
        let (up, cable_a) = pair(&pool, &format!("h{h}-uplink"), "cable-a");
        let (cable_b, mid) = pair(&pool, "cable-b", &format!("mid-{h}"));
        let (access, vm_end) = pair(&pool, &format!("h{h}-access"), &format!("h{h}-vm"));
        let name = match opts.mode {
            Mode::Vxlan => format!("host {} VTEP", h + 1),
            Mode::Vlan => format!("host {} switch", h + 1),
        };
        bridges.push(bridge(
            name,
            host_snapshot(opts.mode, h),
            &pool,
            vec![up, access],
            Some(h),
        ));
        cables.push(Cable {
            a: cable_a,
            b: cable_b,
            a_to_b: VecDeque::new(),
            b_to_a: VecDeque::new(),
        });
        middle_ends.push(mid);
        vm_ends.push(Some(vm_end));
    }
    let router = match opts.mode {
        Mode::Vxlan => Some(Router {
            ifaces: middle_ends,
            forwarded: 0,
            dropped: 0,
        }),
        Mode::Vlan => {
            let snap = Snapshot {
                ports: vec![trunk10(), trunk10(), trunk10()],
                bds: vec![BdConfig::new(10, &[])],
                remotes: Vec::new(),
                decap: DecapConfig::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                underlay: None,
                suppress_arp_nd: false,
            };
            bridges.push(bridge("core switch".into(), snap, &pool, middle_ends, None));
            None
        }
    };
    let take = |v: &mut Vec<Option<MemPort>>, i: usize| {
        v[i].take()
            .unwrap_or_else(|| unreachable!("each VM end is taken once"))
    };
    let client = Vm::new(
        client_mac(),
        CLIENT_IP,
        take(&mut vm_ends, 0),
        0,
        opts.rate_mbit,
        1,
    );
    let server = Vm::new(
        server_mac(),
        SERVER_IP,
        take(&mut vm_ends, 1),
        1,
        opts.rate_mbit,
        2,
    );
    let mut sim = Sim {
        opts: *opts,
        out,
        now: 0,
        bridges,
        cables,
        router,
        vacant: vm_ends,
        client,
        server,
        sent: 0,
        closed: false,
        verified: 0,
        mismatch: None,
        deliveries: Vec::new(),
        lost_at_old_port: 0,
        pauses: Vec::new(),
        next_progress: 2 * 1024 * 1024,
        retx_told: 0,
        credit: 0,
        next_tick: 0,
    };
    intro(&mut sim);
    // The server acknowledges every segment at once (no delayed ACK): when
    // it is paused it owes the client nothing, so after the resume it stays
    // silent until data reaches it, as a pure receiver does. (With a
    // delayed ACK pending, its first ACK from the new host would re-teach
    // the fabric even without an announcement.)
    sim.server.socket().set_ack_delay(None);
    sim.server.socket().listen(SERVER_PORT).ok();
    {
        let Sim { client, .. } = &mut sim;
        let cx = client.iface.context();
        let s = client.sockets.get_mut::<tcp::Socket>(client.tcp);
        let _ = s.connect(cx, (IpAddress::Ipv4(SERVER_IP), SERVER_PORT), CLIENT_PORT);
    }
    sim.say("client VM opens a TCP connection to 10.0.0.20:5001 and starts streaming");

    // The migration schedule: (pause start, resume, destination host).
    let mut hops: VecDeque<(u64, u64, usize)> = VecDeque::new();
    let first = opts.migrate_at_ms * 1000;
    if opts.flap {
        for k in 0..FLAP_HOPS {
            let start = first + k * FLAP_EVERY_MS * 1000;
            let to = if k % 2 == 0 { 2 } else { 1 };
            hops.push_back((start, start + FLAP_PAUSE_MS * 1000, to));
        }
    } else {
        hops.push_back((first, first + opts.pause_ms * 1000, 2));
    }
    let mut resume_at: Option<(u64, usize)> = None;
    let mut next_age = 1_000_000u64;
    let mut dumped = false;
    let mut stats_at_pause: Vec<VtepStats> = Vec::new();
    loop {
        if sim.now >= next_age {
            sim.age();
            next_age += 1_000_000;
        }
        if let Some(&(start, resume, to)) = hops.front() {
            if sim.now >= start && resume_at.is_none() {
                hops.pop_front();
                if !dumped {
                    dumped = true;
                    for b in &mut sim.bridges {
                        b.knew_server = b.seen[1].is_some();
                    }
                    stats_at_pause = sim.bridges.iter().map(|b| b.shared.stats()).collect();
                    sim.dump_fdbs("FDBs just before the migration:");
                }
                let from = sim.server.host;
                sim.say(&format!(
                    "MIGRATION: server VM paused on host {} (stop-and-copy: its last dirty memory \
                     pages, CPU and device state go to host {})",
                    from + 1,
                    to + 1
                ));
                sim.note(
                    "its TCP state is part of that memory: nothing in the guest knows it moved",
                );
                sim.pause_server();
                sim.pauses.push((sim.now, resume));
                resume_at = Some((resume, to));
            }
        }
        if let Some((t, to)) = resume_at {
            if sim.now >= t {
                resume_at = None;
                sim.resume_server(to);
                sim.say(&format!(
                    "MIGRATION: server VM resumes on host {}, same MAC {} and IP {}",
                    to + 1,
                    server_mac(),
                    SERVER_IP
                ));
                if sim.opts.announce {
                    sim.note(&format!("host {}'s hypervisor sends a RARP from the VM's MAC (as QEMU does): a broadcast,", to + 1));
                    sim.note("so every VTEP sees it and learns where the MAC is now");
                } else {
                    sim.note("--no-announce: no RARP; the other VTEPs still point at the old host");
                }
            }
        }
        sim.settle();
        if sim.verified >= opts.bytes || sim.now >= LIMIT_US || sim.mismatch.is_some() {
            break;
        }
        // The next time anything is due.
        let mut next = next_age;
        if let Some(&(s, _, _)) = hops.front() {
            if resume_at.is_none() {
                next = next.min(s);
            }
        }
        if let Some((t, _)) = resume_at {
            next = next.min(t);
        }
        // The client application's next millisecond, when it has room to write.
        let room = {
            let s = sim.client.socket();
            s.send_queue() < s.send_capacity()
        };
        if sim.sent < opts.bytes && room {
            next = next.min(sim.next_tick);
        }
        for vm in [&mut sim.client, &mut sim.server] {
            if let Some(t) = vm.next_wakeup(sim.now) {
                next = next.min(t);
            }
        }
        for c in &sim.cables {
            if let Some(t) = c.next() {
                next = next.min(t);
            }
        }
        sim.now = next.max(sim.now + 1);
    }
    let completed = sim.verified >= opts.bytes && sim.mismatch.is_none();
    if completed {
        sim.say(&format!(
            "server VM: all {} bytes received and verified",
            sim.verified
        ));
    } else {
        sim.say("stopped before every byte arrived");
    }
    sim.dump_fdbs("FDBs at the end:");
    let report = finish(&mut sim, &pool, completed, &stats_at_pause);
    drop(sim);
    Report {
        buffers_leaked: pool.in_use(),
        ..report
    }
}

fn intro(sim: &mut Sim<'_>) {
    let o = sim.opts;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "VM mobility demo: a TCP stream survives a live migration ({} fabric)\n",
        o.mode.as_str()
    );
    match o.mode {
        Mode::Vxlan => {
            let _ = writeln!(
                s,
                "  Three hosts in three different IP subnets, joined by a router:"
            );
            for (h, net) in SUBNETS.iter().enumerate() {
                let net = net.map(|x| x.to_string()).join(".");
                let _ = writeln!(
                    s,
                    "    host {}: VTEP {} in {net}.0/24, gateway {net}.1",
                    h + 1,
                    vtep_ip(h),
                );
            }
            let _ = writeln!(
                s,
                "  VXLAN VNI 5000 makes them one L2 segment, 10.0.0.0/24, for the VMs:"
            );
            let _ = writeln!(s, "  every tenant frame is wrapped in UDP/IP toward the VTEP that has its destination.");
            let _ = writeln!(
                s,
                "  VM MTU {VM_IP_MTU}: the 50 bytes of VXLAN headers must fit the underlay's 1500."
            );
        }
        Mode::Vlan => {
            let _ = writeln!(
                s,
                "  Three hosts, each with a switch, trunked on VLAN 10 to one core switch:"
            );
            let _ = writeln!(
                s,
                "  one L2 fabric, no routing, no overlay (the VTEPs in VLAN-only mode)."
            );
            let _ = writeln!(
                s,
                "  This works too, but a VLAN fabric stays one broadcast domain with at most"
            );
            let _ = writeln!(
                s,
                "  4094 segments; VXLAN stretches 16M segments over any routed network."
            );
        }
    }
    let _ = writeln!(
        s,
        "  client VM {} ({}) on host 1; server VM {} ({}) on host 2.",
        CLIENT_IP,
        client_mac(),
        SERVER_IP,
        server_mac()
    );
    let _ = writeln!(s, "  The client streams {} MiB at {} Mbit/s (its NIC: {} Mbit/s); the server checks every byte.", o.bytes / 1_048_576, o.app_rate_mbit, o.rate_mbit);
    if o.flap {
        let _ = writeln!(s, "  --flap: the server VM hops between hosts 2 and 3 {FLAP_HOPS} times, every {FLAP_EVERY_MS} ms ({FLAP_PAUSE_MS} ms pauses).");
        let _ = writeln!(
            s,
            "  A MAC that moves {} times within {} s is frozen (move dampening, RFC 7432 s15.1):",
            vxlan_core::fdb::Dampening::DEFAULT.moves,
            vxlan_core::fdb::Dampening::DEFAULT.window
        );
        let _ = writeln!(s, "  it protects the fabric from a loop or a duplicate MAC, at the price of a real VM that flaps.");
    } else {
        let _ = writeln!(
            s,
            "  At {} ms the server VM live-migrates to host 3 with a {} ms stop-and-copy pause.",
            o.migrate_at_ms, o.pause_ms
        );
    }
    if !o.announce {
        let _ = writeln!(
            s,
            "  --no-announce: the destination sends no RARP; nobody tells the fabric the VM moved."
        );
    }
    let _ = writeln!(
        s,
        "  Each VTEP's FDB maps a MAC to where it is; every change is shown as it happens."
    );
    let _ = writeln!(
        s,
        "  A MOVE's mobility sequence number counts the MAC's moves, as an EVPN MAC/IP route's"
    );
    let _ = writeln!(
        s,
        "  MAC Mobility sequence number would (RFC 7432 s7.7): the highest number wins."
    );
    let _ = writeln!(s, "  Times are simulated milliseconds.\n");
    let _ = sim.out.write_all(s.as_bytes());
}

fn finish(sim: &mut Sim<'_>, _pool: &Arc<Pool>, completed: bool, at_pause: &[VtepStats]) -> Report {
    // The interruption: the longest gap between deliveries.
    let mut gap = (0u64, 0u64);
    for w in sim.deliveries.windows(2) {
        let d = w[1].0 - w[0].0;
        if d > gap.0 {
            gap = (d, w[0].0);
        }
    }
    if !completed {
        if let Some(&(t, _)) = sim.deliveries.last() {
            if sim.now - t > gap.0 {
                gap = (sim.now - t, t);
            }
        }
    }
    let end = sim.now;
    // Goodput bins: about 200 across the run, at least 10 ms each.
    let bin = (end / 200).max(10_000);
    let mut bins = vec![0u64; usize::try_from(end / bin + 1).unwrap_or(1)];
    for &(t, n) in &sim.deliveries {
        if let Some(b) = bins.get_mut(usize::try_from(t / bin).unwrap_or(0)) {
            *b += n;
        }
    }
    let goodput = bins
        .iter()
        .enumerate()
        .map(|(i, &n)| Sample {
            t_ms: ms(bin * i as u64),
            // Bits per microsecond are Mbit/s.
            mbit_s: ms(n * 8) / ms(bin),
        })
        .collect();
    let bridges: Vec<BridgeSummary> = sim
        .bridges
        .iter()
        .map(|b| {
            let f = b.shared.fdb().stats();
            BridgeSummary {
                name: b.name.clone(),
                moves: f.moves,
                freezes: f.freezes,
                frozen_refused: f.frozen_refused,
                knew_server: b.knew_server,
                stats: b.shared.stats(),
            }
        })
        .collect();
    let tap = &sim.client.nic.tap;
    let r = Report {
        options: sim.opts,
        bytes_sent: sim.sent,
        bytes_verified: if sim.mismatch.is_some() {
            0
        } else {
            sim.verified
        },
        first_mismatch: sim.mismatch,
        tcp_resets: tap.resets + sim.server.nic.tap.resets,
        interruption_ms: ms(gap.0),
        interruption_from_ms: ms(gap.1),
        fdb_moves: bridges.iter().map(|b| b.moves).sum(),
        fdb_freezes: bridges.iter().map(|b| b.freezes).sum(),
        retransmissions: tap.retransmissions,
        data_segments: tap.data_segments,
        lost_at_old_port: sim.lost_at_old_port,
        finished_ms: ms(end),
        completed,
        pauses: sim.pauses.iter().map(|&(a, b)| (ms(a), ms(b))).collect(),
        goodput,
        bridges,
        buffers_leaked: 0,
    };
    summary(sim, &r, at_pause);
    r
}

fn summary(sim: &mut Sim<'_>, r: &Report, at_pause: &[VtepStats]) {
    let mut s = String::new();
    let _ = writeln!(s, "  Forwarding (frames):      rx   flooded  flood-copies  unicast  drops  (of which after the pause began)");
    for (i, b) in r.bridges.iter().enumerate() {
        let st = b.stats;
        let unicast = st.tx_local + st.tx_remote - st.flood_copies;
        let p = at_pause.get(i).copied().unwrap_or_default();
        let _ = writeln!(
            s,
            "    {:<16} {:>8} {:>8} {:>12} {:>8} {:>6}   flooded +{}, unicast +{}",
            b.name,
            st.rx,
            st.flooded,
            st.flood_copies,
            unicast,
            st.drops(),
            st.flooded - p.flooded,
            unicast - (p.tx_local + p.tx_remote - p.flood_copies)
        );
    }
    let _ = writeln!(
        s,
        "  Flooding happens only while a destination is unknown (the first ARP, the RARP);"
    );
    let _ = writeln!(
        s,
        "  everything else is unicast to exactly one port or one VTEP.\n"
    );
    if let Some(rt) = &sim.router {
        let _ = writeln!(
            s,
            "  Router: {} frames routed between the three subnets, {} dropped.",
            rt.forwarded, rt.dropped
        );
    }
    let _ = writeln!(
        s,
        "  FDB moves: {} in all; dampening froze a MAC {} times.",
        r.fdb_moves, r.fdb_freezes
    );
    for b in &r.bridges {
        let _ = writeln!(
            s,
            "    {:<16} moves {}{}{}",
            b.name,
            b.moves,
            if b.freezes > 0 {
                format!(", froze {}x", b.freezes)
            } else {
                String::new()
            },
            if b.frozen_refused > 0 {
                format!(", refused {} moves while frozen", b.frozen_refused)
            } else {
                String::new()
            }
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "  Interruption: {:.1} ms without a byte delivered (from {:.1} ms); VM paused {} ms.",
        r.interruption_ms,
        r.interruption_from_ms,
        r.pauses.first().map_or(0.0, |&(a, b)| b - a)
    );
    let _ = writeln!(
        s,
        "  TCP: {} data segments, {} of them retransmissions (counted on the wire); {} resets.",
        r.data_segments, r.retransmissions, r.tcp_resets
    );
    let _ = writeln!(
        s,
        "  Frames delivered to the VM's old port after it left: {} (lost).",
        r.lost_at_old_port
    );
    if r.intact() {
        let _ = writeln!(
            s,
            "  CHECK: all {} bytes arrived intact and in order over the same TCP connection, done at {:.1} ms.",
            r.bytes_verified, r.finished_ms
        );
    } else {
        let _ = writeln!(
            s,
            "  CHECK FAILED: {} of {} bytes verified, first mismatch {:?}, {} resets, completed {}.",
            r.bytes_verified, r.bytes_sent, r.first_mismatch, r.tcp_resets, r.completed
        );
    }
    let o = r.options;
    let why = if o.flap {
        "  Why: after the freeze, the fabric keeps the MAC where it was frozen; the VM's next\n  move is refused and its traffic is blackholed until the entry ages out or the freeze\n  is lifted. An operator (or EVPN duplicate-MAC detection) is meant to look at it."
    } else if !o.announce {
        "  Why: without an announcement the other VTEPs keep sending to the old host until\n  their entry ages out (300 s), or the VM itself sends something they see. A silent\n  receiver sends nothing: this is why hypervisors send a RARP or gratuitous ARP."
    } else {
        "  Why it survives: the VM kept its MAC, IP and TCP state; the RARP re-pointed every\n  FDB at once, and TCP's retransmission timer carried the stream over the pause."
    };
    let _ = writeln!(s, "{why}");
    let _ = sim.out.write_all(s.as_bytes());
}

// ---------------------------------------------------------------- the plot

fn svg(r: &Report) -> String {
    let (w, h) = (900.0, 420.0);
    let (l, rgt, top, bot) = (70.0, 20.0, 40.0, 60.0);
    let pw = w - l - rgt;
    let ph = h - top - bot;
    let t_max = r.goodput.last().map_or(1.0, |s| s.t_ms).max(1.0);
    let y_max = (r.options.rate_mbit.max(1) as f64 * 1.1)
        .max(r.goodput.iter().map(|s| s.mbit_s).fold(0.0, f64::max) * 1.05);
    let x = |t: f64| l + t / t_max * pw;
    let y = |v: f64| top + ph - v / y_max * ph;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let o = r.options;
    let title = format!(
        "Goodput at the server VM during live migration ({}{}{})",
        o.mode.as_str(),
        if o.announce { "" } else { ", no announce" },
        if o.flap { ", flapping" } else { "" }
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{title}</text>"#,
        w / 2.0
    );
    for (i, &(a, b)) in r.pauses.iter().enumerate() {
        let (xa, xb) = (x(a), x(b).max(x(a) + 1.0));
        let _ = writeln!(
            s,
            r##"<rect x="{xa:.1}" y="{top}" width="{:.1}" height="{ph}" fill="#f4b183" opacity="0.5"/>"##,
            xb - xa
        );
        if i == 0 {
            let _ = writeln!(
                s,
                r##"<text x="{:.1}" y="{:.1}" font-size="11" fill="#a0522d">VM paused (stop-and-copy)</text>"##,
                xb + 4.0,
                top + 14.0
            );
        }
    }
    // The interruption as a bracket under the curve.
    let (ia, ib) = (
        x(r.interruption_from_ms),
        x(r.interruption_from_ms + r.interruption_ms),
    );
    let yb = top + ph - 12.0;
    let _ = writeln!(
        s,
        r##"<path d="M{ia:.1},{:.1} V{yb:.1} H{ib:.1} V{:.1}" stroke="#c00000" fill="none"/>"##,
        yb - 6.0,
        yb - 6.0
    );
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" fill="#c00000" font-size="11">no data for {:.0} ms</text>"##,
        ib + 4.0,
        yb - 2.0,
        r.interruption_ms
    );
    // Axes and ticks.
    let _ = writeln!(
        s,
        r#"<path d="M{l},{top} V{} H{}" stroke="black" fill="none"/>"#,
        top + ph,
        l + pw
    );
    for t in ticks(t_max) {
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{1}" y2="{2}" stroke="#ddd"/><text x="{0:.1}" y="{3}" text-anchor="middle">{4}</text>"##,
            x(t),
            top,
            top + ph,
            top + ph + 16.0,
            fmt_tick(t)
        );
    }
    for v in ticks(y_max) {
        let _ = writeln!(
            s,
            r##"<line x1="{0}" x2="{1}" y1="{2:.1}" y2="{2:.1}" stroke="#ddd"/><text x="{3}" y="{4:.1}" text-anchor="end">{5}</text>"##,
            l,
            l + pw,
            y(v),
            l - 6.0,
            y(v) + 4.0,
            fmt_tick(v)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">simulated time (ms)</text>"#,
        l + pw / 2.0,
        h - 18.0
    );
    let _ = writeln!(
        s,
        r#"<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">goodput (Mbit/s)</text>"#,
        top + ph / 2.0,
        top + ph / 2.0
    );
    // The curve: a step line over the bins.
    let mut d = String::new();
    let bin = r.goodput.get(1).map_or(10.0, |s| s.t_ms);
    for (i, sm) in r.goodput.iter().enumerate() {
        let cmd = if i == 0 { 'M' } else { 'L' };
        let _ = write!(
            d,
            "{cmd}{:.1},{:.1} L{:.1},{:.1} ",
            x(sm.t_ms),
            y(sm.mbit_s),
            x((sm.t_ms + bin).min(t_max)),
            y(sm.mbit_s)
        );
    }
    let _ = writeln!(
        s,
        r##"<path d="{d}" stroke="#1f4e79" stroke-width="1.5" fill="none"/>"##
    );
    let _ = writeln!(
        s,
        r##"<text x="{}" y="{}" text-anchor="end" font-size="11" fill="#555">{} of {} bytes verified; {} TCP retransmissions; {} resets</text>"##,
        l + pw,
        h - 4.0,
        r.bytes_verified,
        r.bytes_sent,
        r.retransmissions,
        r.tcp_resets
    );
    s.push_str("</svg>\n");
    s
}

fn ticks(max: f64) -> Vec<f64> {
    let raw = max / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(mag * 10.0);
    let mut v = Vec::new();
    let mut t = 0.0;
    while t <= max + 1e-9 {
        v.push(t);
        t += step;
    }
    v
}

fn fmt_tick(v: f64) -> String {
    if v.fract().abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}
