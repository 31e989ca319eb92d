//! The VM-mobility demo: a TCP stream survives a live migration across a
//! VXLAN fabric, told as it happens.
//!
//! One process, no root, no NIC, a simulated clock. Three hosts, each with
//! this library's VTEP ([`VtepShared`](vxlan_pmd::vtep::VtepShared) driven
//! by a [`PortLoop`](vxlan_pmd::run::PortLoop) over in-memory ports), sit in three different underlay subnets joined by a
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

use smoltcp::socket::tcp;
use smoltcp::wire::IpAddress;
use vxlan_core::bridge::BdConfig;
use vxlan_core::decap::DecapConfig;

use vxlan_core::wire::MacAddr;
use vxlan_pmd::memport::MemPort;
use vxlan_pmd::pool::Pool;
use vxlan_pmd::vtep::{Snapshot, VtepStats};

mod fabric;
mod plot;
mod sim;
mod vm;

use fabric::{bridge, host_snapshot, pair, trunk10, Cable, Router};
use plot::svg;
use sim::Sim;
use vm::Vm;

/// How the three hosts are joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// VXLAN over a routed underlay: three IP subnets, one tenant segment.
    Vxlan,
    /// One VLAN (10) on trunks to a core switch: a single L2 fabric.
    Vlan,
}

impl Mode {
    /// What its bridges are called in the story: VTEPs or switches.
    pub fn bridge_noun(self) -> &'static str {
        match self {
            Mode::Vxlan => "VTEP",
            Mode::Vlan => "switch",
        }
    }

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
/// Or after this many steps of its clock (a default run takes about 60 000).
const MAX_STEPS: u64 = 20_000_000;
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
    /// When the destination hypervisor sent a RARP, ms.
    pub announces: Vec<f64>,
    /// Goodput over time.
    pub goodput: Vec<Sample>,
    /// Per-bridge summaries.
    pub bridges: Vec<BridgeSummary>,
    /// Pool buffers not returned once everything was torn down (must be 0).
    pub buffers_leaked: usize,
    /// Steps the simulated clock took.
    pub steps: u64,
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
            "sim_steps": self.steps,
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
        server_was: [false, true, false],
        pauses: Vec::new(),
        announces: Vec::new(),
        next_progress: 2 * 1024 * 1024,
        retx_told: 0,
        explained: Vec::new(),
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
    let mut steps = 0u64;
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
                sim.note("(live migration first copies the VM's memory while it runs, then pauses it to copy the rest)");
                sim.note(
                    "its TCP state is part of that memory: nothing in the guest knows it moved;",
                );
                sim.note("meanwhile the fabric still delivers its traffic to the old host, where it is lost");
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
                    sim.note(&format!(
                        "so every {} sees it and learns where the MAC is now",
                        sim.opts.mode.bridge_noun()
                    ));
                } else {
                    sim.note(if sim.opts.mode == Mode::Vxlan {
                        "--no-announce: no RARP; the other VTEPs still point at the old host"
                    } else {
                        "--no-announce: no RARP; the switches still point at the old host"
                    });
                }
            }
        }
        sim.settle();
        steps += 1;
        if sim.verified >= opts.bytes || sim.now >= LIMIT_US || sim.mismatch.is_some() {
            break;
        }
        if steps > MAX_STEPS {
            sim.say("the simulation made no progress; stopping");
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
    if sim.pauses.is_empty() {
        sim.say("the stream finished before the migration was due: stream more (--mib) or migrate earlier");
    }
    if completed {
        sim.say(&format!(
            "server VM: all {} bytes received and verified",
            sim.verified
        ));
    } else {
        sim.say("stopped before every byte arrived");
    }
    sim.dump_fdbs("FDBs at the end:");
    let report = finish(&mut sim, completed, &stats_at_pause);
    drop(sim);
    Report {
        buffers_leaked: pool.in_use(),
        steps,
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
        "  Each {}'s FDB maps a MAC to where it is; every change is shown as it happens.",
        o.mode.bridge_noun()
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

fn finish(sim: &mut Sim<'_>, completed: bool, at_pause: &[VtepStats]) -> Report {
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
    // A last bin shorter than half a bin joins the one before it.
    let mut last_len = end.saturating_sub(bin * (bins.len() as u64 - 1));
    if bins.len() >= 2 && last_len < bin / 2 {
        let n = bins.pop().unwrap_or(0);
        if let Some(b) = bins.last_mut() {
            *b += n;
        }
        last_len += bin;
    }
    let count = bins.len();
    let goodput = bins
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let start = bin * i as u64;
            let len = if i + 1 == count { last_len.max(1) } else { bin };
            Sample {
                t_ms: ms(start),
                // Bits per microsecond are Mbit/s.
                mbit_s: ms(n * 8) / ms(len),
            }
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
        announces: sim.announces.iter().map(|&t| ms(t)).collect(),
        goodput,
        bridges,
        buffers_leaked: 0,
        steps: 0,
    };
    summary(sim, &r, at_pause);
    r
}

fn summary(sim: &mut Sim<'_>, r: &Report, at_pause: &[VtepStats]) {
    let mut s = String::new();
    let _ = writeln!(s, "  Forwarding (frames):      rx   flooded  flood-copies  unicast  drops   since the pause began");
    for (i, b) in r.bridges.iter().enumerate() {
        let st = b.stats;
        let unicast = st.tx_local + st.tx_remote - st.flood_copies;
        let p = at_pause.get(i).copied().unwrap_or_default();
        let _ = writeln!(
            s,
            "    {:<16} {:>8} {:>8} {:>12} {:>8} {:>6}   +{} flooded, +{} unicast",
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
    for b in &r.bridges {
        let named: Vec<String> = vxlan_pmd::vtep::DROP_NAMES
            .iter()
            .zip(b.stats.drop_bridge)
            .filter(|(_, n)| *n > 0)
            .map(|(name, n)| format!("{n} {name}"))
            .collect();
        if !named.is_empty() {
            let _ = writeln!(s, "    {} drops by reason: {}", b.name, named.join(", "));
        }
    }
    if r.bridges.iter().any(|b| b.stats.drops() > 0) {
        let _ = writeln!(
            s,
            "    (split_horizon: a frame from the overlay for a MAC behind another VTEP is dropped,\n     never sent back into the overlay)"
        );
    }
    let _ = writeln!(
        s,
        "  Flooding happens only while a destination is unknown (the first ARP, the RARP);"
    );
    let _ = writeln!(
        s,
        "  everything else is unicast to exactly one port{}.\n",
        if sim.opts.mode == Mode::Vxlan {
            " or one VTEP"
        } else {
            ""
        }
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
        "  Interruption: {:.1} ms{} without a byte delivered (from {:.1} ms); VM paused {} ms.",
        r.interruption_ms,
        if r.interruption_ms >= 10_000.0 {
            format!(" ({:.1} s)", r.interruption_ms / 1000.0)
        } else {
            String::new()
        },
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
        "  Why: after the freeze, each VTEP keeps the MAC where it was frozen; the VM's next\n  move is refused, host 1 keeps sending to host 3, and host 3 (which froze it behind\n  host 2) may not send it back into the overlay. Traffic is blackholed until the\n  entries age out; the freeze itself lifts after 180 s. A MAC moving this often is\n  usually a loop or a duplicate, which is what dampening protects the fabric from."
    } else if !o.announce && o.mode == Mode::Vlan {
        "  Why: without an announcement the switches kept sending to the old host. A silent\n  receiver sends nothing; what ended it here was the client's ARP cache refresh (every\n  60 s in smoltcp): a broadcast, answered by the server from its new place. On the\n  VXLAN fabric the VTEP answers that ARP itself (suppression), so only ageing (300 s)\n  ends it there. This is why hypervisors send a RARP or gratuitous ARP."
    } else if !o.announce {
        "  Why: without an announcement the other VTEPs keep sending to the old host until\n  their entry ages out (300 s) or the VM itself sends something they see. A silent\n  receiver sends nothing, and the client's ARP refreshes are answered by its own VTEP\n  (ARP suppression), so they teach nobody: this is why hypervisors send a RARP or\n  gratuitous ARP."
    } else {
        "  Why it survives: the VM kept its MAC, IP and TCP state; the RARP re-pointed every\n  FDB at once, and TCP's retransmission timer carried the stream over the pause."
    };
    let _ = writeln!(s, "{why}");
    let _ = sim.out.write_all(s.as_bytes());
}
