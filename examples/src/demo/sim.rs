//! The simulation: every node polled in turn on one simulated clock, and
//! the story told from what the FDBs and the wires show.

use std::io::Write;
use std::net::Ipv4Addr;

use smoltcp::socket::tcp;
use vxlan_core::fdb::{EventKind, Location};
use vxlan_core::wire::{ArpOperation, ArpPacket, ArpRepr, MacAddr};
use vxlan_pmd::memport::MemPort;
use vxlan_pmd::worker::Poll;

use super::fabric::{Bridge, Cable, EventLog, Router};
use super::vm::Vm;
use super::{client_mac, ms, others, pattern, server_mac, vtep_ip, Options, AGEING_S};

/// The fabric, the VMs and the story so far.
pub(super) struct Sim<'o> {
    pub(super) opts: Options,
    pub(super) out: &'o mut dyn Write,
    pub(super) now: u64,
    pub(super) bridges: Vec<Bridge>,
    pub(super) cables: Vec<Cable>,
    pub(super) router: Option<Router>,
    /// Host access-port ends not plugged into a VM (held by the
    /// hypervisor): frames arriving there are lost.
    pub(super) vacant: Vec<Option<MemPort>>,
    pub(super) client: Vm,
    pub(super) server: Vm,
    pub(super) sent: u64,
    pub(super) closed: bool,
    pub(super) verified: u64,
    pub(super) mismatch: Option<u64>,
    /// (time, bytes) of each delivery to the server application.
    pub(super) deliveries: Vec<(u64, u64)>,
    pub(super) lost_at_old_port: u64,
    /// The hosts the server VM has run on.
    pub(super) server_was: [bool; 3],
    pub(super) pauses: Vec<(u64, u64)>,
    pub(super) announces: Vec<u64>,
    pub(super) next_progress: u64,
    pub(super) retx_told: usize,
    /// Explanations already shown.
    pub(super) explained: Vec<&'static str>,
    /// The client application's pacing: bytes it may still write in this
    /// millisecond, and when the next millisecond starts.
    pub(super) credit: u64,
    pub(super) next_tick: u64,
}

pub(super) fn mac_name(mac: MacAddr) -> &'static str {
    if mac == client_mac() {
        "client VM"
    } else if mac == server_mac() {
        "server VM"
    } else {
        "?"
    }
}

impl Sim<'_> {
    pub(super) fn say(&mut self, line: &str) {
        let _ = writeln!(self.out, "[{:>10.3} ms] {line}", ms(self.now));
    }

    pub(super) fn note(&mut self, line: &str) {
        let _ = writeln!(self.out, "{:>16}{line}", "");
    }

    /// An explanation, shown the first time its `key` comes up.
    pub(super) fn explain(&mut self, key: &'static str, line: &str) {
        if !self.explained.contains(&key) {
            self.explained.push(key);
            self.note(line);
        }
    }

    pub(super) fn where_(&self, b: usize, loc: Location) -> String {
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

    pub(super) fn seq_of(&self, b: usize, mac: MacAddr) -> u32 {
        self.bridges[b]
            .shared
            .fdb()
            .iter()
            .find(|r| r.bd == 0 && r.mac == mac)
            .map_or(0, |r| r.seq)
    }

    /// Compares the FDBs with what was seen last and tells what changed.
    pub(super) fn observe(&mut self) {
        for b in 0..self.bridges.len() {
            let refused = self.bridges[b].shared.fdb().stats().frozen_refused;
            if refused > self.bridges[b].refused {
                let first = self.bridges[b].refused == 0;
                self.bridges[b].refused = refused;
                if first {
                    let name = self.bridges[b].name.clone();
                    self.say(&format!(
                        "{name}: REFUSED to move a frozen MAC (move dampening): frames from its new place do not re-teach it"
                    ));
                }
            }
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
                        match loc {
                            Location::Remote(_) => self.explain(
                                "remote",
                                "(a VTEP learns the inner source MAC of a VXLAN frame behind the outer source IP)",
                            ),
                            Location::Local { port: 1, .. } => self.explain(
                                "local",
                                "(a frame from a VM's port: its source MAC is learned on that port)",
                            ),
                            Location::Local { .. } => self.explain(
                                "trunk",
                                "(on a VLAN fabric a switch learns a MAC on the port it came in on)",
                            ),
                        }
                        if self.bridges[b].shared.stats().flooded > 0 {
                            self.explain(
                                "flood",
                                "(a broadcast or unknown destination is flooded: on VXLAN one copy per remote VTEP, head-end replication)",
                            );
                        }
                    }
                    (Some((old, _)), Some((loc, frozen))) if old != loc => {
                        let seq = self.seq_of(b, mac);
                        let (wo, wn) = (self.where_(b, old), self.where_(b, loc));
                        self.say(&format!(
                            "{name}: MOVE {mac} ({}) {wo} -> {wn}; mobility seq {seq}",
                            mac_name(mac)
                        ));
                        self.explain(
                            "move",
                            "(a MOVE: the MAC showed up somewhere else; the entry is re-pointed at once and its\n                 move count goes up, as the sequence number of an EVPN MAC/IP route would)",
                        );
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
    pub(super) fn settle(&mut self) {
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
            for (h, v) in self.vacant.iter_mut().enumerate() {
                let Some(v) = v else { continue };
                while v.recv().is_some() {
                    // Flood copies reach host 3's port before any VM is
                    // there; only what reaches a port the VM left is lost.
                    if self.server_was[h] {
                        self.lost_at_old_port += 1;
                    }
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

    pub(super) fn tell_wire(&mut self) {
        for (who, arps) in [
            ("client VM", std::mem::take(&mut self.client.nic.tap.arp)),
            ("server VM", std::mem::take(&mut self.server.nic.tap.arp)),
        ] {
            for a in arps {
                self.say(&format!("{who} wire: {a}"));
            }
        }
        for b in 0..self.bridges.len() {
            let st = self.bridges[b].shared.stats().suppressed;
            if st > self.bridges[b].suppressed {
                self.bridges[b].suppressed = st;
                let name = self.bridges[b].name.clone();
                self.note(&format!(
                    "(that reply came from {name}'s ARP-suppression table: the request was not flooded)"
                ));
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
    pub(super) fn apps(&mut self) {
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
                let idle = self.deliveries.last().map_or(0, |&(t, _)| self.now - t);
                if idle > 50_000 {
                    self.say(&format!(
                        "server VM: data flows again, after {:.1} ms without a byte; same TCP connection",
                        ms(idle)
                    ));
                }
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
    pub(super) fn pause_server(&mut self) {
        let from = self.server.host;
        self.server.paused = true;
        if let Some(p) = self.server.nic.port.take() {
            self.vacant[from] = Some(p);
        }
        // Frames still in the NIC's queue are lost with the paused VM.
        self.server.nic.txq.clear();
    }

    /// The VM resumes on host `to`; its hypervisor announces it.
    pub(super) fn resume_server(&mut self, to: usize) {
        self.server.host = to;
        self.server_was[to] = true;
        self.server.nic.port = self.vacant[to].take();
        self.server.nic.free_at = self.now;
        self.server.paused = false;
        if self.opts.announce {
            self.announces.push(self.now);
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

    pub(super) fn age(&mut self) {
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

    pub(super) fn dump_fdbs(&mut self, title: &str) {
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
