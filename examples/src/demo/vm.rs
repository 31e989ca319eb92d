//! The VMs: a smoltcp interface over a guest NIC that serialises frames at
//! its rate into whichever access port the VM is plugged into, and taps its
//! wire (ARP, TCP retransmissions, resets).

use std::collections::VecDeque;
use std::net::Ipv4Addr;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, HardwareAddress, IpAddress, IpCidr,
    IpProtocol, Ipv4Packet, TcpPacket, TcpSeqNumber,
};
use vxlan_core::frame::Frame;
use vxlan_core::wire::{ArpOperation, ArpPacket, ArpRepr, MacAddr};
use vxlan_pmd::memport::MemPort;
use vxlan_pmd::pool::PktBuf;

use super::{TCP_BUF, VM_IP_MTU};

/// A guest NIC: frames go out through a serialisation queue at the NIC's
/// rate into whichever access port the VM is plugged into (none while it is
/// paused or between hosts).
pub(super) struct Nic {
    pub(super) port: Option<MemPort>,
    pub(super) rate_bps: u64,
    /// (departure time, frame) in order.
    pub(super) txq: VecDeque<(u64, Vec<u8>)>,
    pub(super) free_at: u64,
    pub(super) now: u64,
    pub(super) tap: Tap,
}

/// What the NIC saw on its wire.
#[derive(Default)]
pub(super) struct Tap {
    pub(super) resets: u64,
    pub(super) data_segments: u64,
    pub(super) retransmissions: u64,
    pub(super) highest_end: Option<TcpSeqNumber>,
    /// Retransmissions since the last one that was reported.
    pub(super) since_report: u64,
    pub(super) last_retx_us: Option<u64>,
    /// (time, first byte offset) of each burst of retransmissions.
    pub(super) episodes: Vec<(u64, u32)>,
    pub(super) isn: Option<TcpSeqNumber>,
    /// ARP and RARP seen, to tell in the story.
    pub(super) arp: Vec<String>,
}

pub(super) struct TcpSeen {
    pub(super) seq: TcpSeqNumber,
    pub(super) len: usize,
    pub(super) syn: bool,
    pub(super) rst: bool,
}

pub(super) fn tcp_of(frame: &[u8]) -> Option<TcpSeen> {
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

pub(super) fn arp_of(frame: &[u8]) -> Option<String> {
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
    pub(super) fn outgoing(&mut self, frame: &[u8], now: u64) {
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

    pub(super) fn incoming(&mut self, frame: &[u8]) {
        if let Some(a) = arp_of(frame) {
            self.arp.push(a);
        }
        if tcp_of(frame).is_some_and(|t| t.rst) {
            self.resets += 1;
        }
    }
}

impl Nic {
    pub(super) fn new(port: MemPort, rate_mbit: u64) -> Nic {
        Nic {
            port: Some(port),
            rate_bps: rate_mbit.max(1) * 1_000_000,
            txq: VecDeque::new(),
            free_at: 0,
            now: 0,
            tap: Tap::default(),
        }
    }

    pub(super) fn enqueue(&mut self, mut frame: Vec<u8>) {
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
    pub(super) fn flush(&mut self, now: u64) -> bool {
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

    pub(super) fn next_departure(&self) -> Option<u64> {
        self.txq.front().map(|(t, _)| *t)
    }
}

pub(super) struct NicRx(PktBuf);
pub(super) struct NicTx<'a>(&'a mut Nic);

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

pub(super) struct Vm {
    pub(super) iface: Interface,
    pub(super) sockets: SocketSet<'static>,
    pub(super) tcp: SocketHandle,
    pub(super) nic: Nic,
    /// Paused (stop-and-copy): not polled, not plugged in.
    pub(super) paused: bool,
    /// The host it runs on.
    pub(super) host: usize,
}

pub(super) fn instant(us: u64) -> Instant {
    Instant::from_micros(i64::try_from(us).unwrap_or(i64::MAX))
}

impl Vm {
    pub(super) fn new(
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

    pub(super) fn poll(&mut self, now: u64) {
        if self.paused {
            return;
        }
        self.nic.now = now;
        self.iface
            .poll(instant(now), &mut self.nic, &mut self.sockets);
    }

    pub(super) fn next_wakeup(&mut self, now: u64) -> Option<u64> {
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

    pub(super) fn socket(&mut self) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(self.tcp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet/IPv4/TCP frame from the client with `len` payload bytes
    /// at sequence number `seq` (checksums left zero: the tap reads
    /// sequence numbers and flags, never checksums).
    fn segment(seq: u32, len: usize, flags: u8) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 20 + len];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&u16::try_from(40 + len).unwrap().to_be_bytes());
        ip[8] = 64;
        ip[9] = 6; // TCP
        let tcp = &mut f[34..54];
        tcp[4..8].copy_from_slice(&seq.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = flags;
        f
    }

    const SYN: u8 = 0x02;
    const RST: u8 = 0x04;
    const ACK: u8 = 0x10;

    #[test]
    fn the_tap_counts_a_segment_as_retransmitted_when_its_range_was_sent_before() {
        let mut tap = Tap::default();
        // Sequence numbers near the top of the space: the comparison wraps.
        let isn = u32::MAX - 2000;
        tap.outgoing(&segment(isn, 0, SYN), 0);
        let first = isn.wrapping_add(1);
        for k in 0..3u32 {
            tap.outgoing(&segment(first.wrapping_add(k * 1000), 1000, ACK), 10);
        }
        assert_eq!((tap.data_segments, tap.retransmissions), (3, 0));
        // A timeout: go back to the first unacknowledged byte and resend.
        tap.outgoing(&segment(first.wrapping_add(1000), 1000, ACK), 50_000);
        tap.outgoing(&segment(first.wrapping_add(2000), 1000, ACK), 50_001);
        // New data after that is not a retransmission.
        tap.outgoing(&segment(first.wrapping_add(3000), 1000, ACK), 50_002);
        assert_eq!((tap.data_segments, tap.retransmissions), (6, 2));
        // One burst of retransmissions is one episode, reported with the
        // stream offset it resent from.
        assert_eq!(tap.episodes, [(50_000, 1000)]);
        // A pure ACK carries no data; a RST is counted either way.
        tap.outgoing(&segment(first.wrapping_add(4000), 0, ACK), 60_000);
        tap.incoming(&segment(7, 0, RST));
        assert_eq!((tap.data_segments, tap.resets), (6, 1));
    }

    #[test]
    fn the_nic_paces_frames_at_its_rate_and_pads_short_ones() {
        let pool = vxlan_pmd::pool::Pool::new(8, 2048, 128).unwrap();
        let (vm_end, mut host_end) = vxlan_pmd::memport::pair(pool, "vm", "host", 8);
        let mut nic = Nic::new(vm_end, 100);
        nic.enqueue(vec![0xff; 42]);
        nic.enqueue(vec![0xff; 1476]);
        // 60 + 24 bytes at 100 Mbit/s: 6.72 us, rounded up; then 1500 more.
        assert_eq!(nic.next_departure(), Some(7));
        assert!(!nic.flush(6));
        assert!(nic.flush(7));
        assert_eq!(host_end.recv().unwrap().len(), 60);
        assert!(host_end.recv().is_none(), "the second is still on the wire");
        assert!(nic.flush(7 + 120));
        assert_eq!(host_end.recv().unwrap().len(), 1476);
    }
}
