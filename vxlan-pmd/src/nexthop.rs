//! Underlay next-hop resolution from the kernel's tables, over a
//! `NETLINK_ROUTE` socket (Linux; no library beyond `libc`).
//!
//! When `[underlay] gateway_mac` is not configured, the outer destination
//! MAC toward each remote VTEP is found the way the kernel would send to
//! it: a route lookup (`RTM_GETROUTE` for the remote's address) gives the
//! gateway, or says the remote is on-link; the neighbour table
//! (`RTM_GETNEIGH`) gives that next hop's MAC. A next hop with no usable
//! neighbour entry is made to resolve by sending it an empty UDP datagram
//! (to the discard port) from an ordinary socket, which makes the kernel
//! ARP (or ND) for it; the next check finds the answer.
//!
//! [`KernelNextHops`] is a [`NextHopSource`]: the control thread asks it
//! about every unicast remote every
//! [`NEXT_HOP_INTERVAL`](crate::control::NEXT_HOP_INTERVAL) and publishes
//! rebuilt templates when a MAC changes (see
//! [`Control::refresh_next_hops`](crate::control::Control::refresh_next_hops)).
//! Until a remote resolves, frames to it are dropped and counted as
//! `nexthop_unresolved`.
//!
//! The kernel is asked in the network namespace the socket was created in:
//! create the resolver on a thread in the underlay interface's namespace.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use vxlan_core::wire::MacAddr;

use crate::control::NextHopSource;

// Netlink and rtnetlink ABI numbers (linux/netlink.h, linux/rtnetlink.h,
// linux/neighbour.h); stable kernel ABI.
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const RTM_NEWNEIGH: u16 = 28;
const RTM_GETNEIGH: u16 = 30;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
const RTN_UNICAST: u8 = 1;
const NUD_INCOMPLETE: u16 = 0x01;
const NUD_FAILED: u16 = 0x20;
const NLMSG_HDR: usize = 16;
const RTMSG_LEN: usize = 12;
const NDMSG_LEN: usize = 12;

/// The UDP port a resolution probe is sent to (discard, RFC 863).
pub const PROBE_PORT: u16 = 9;

/// How the kernel routes to a remote VTEP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The next hop: the gateway, or the destination itself when on-link.
    pub next_hop: IpAddr,
    /// True when the route names a gateway.
    pub via_gateway: bool,
    /// The outgoing interface's index.
    pub ifindex: u32,
}

/// What resolving a remote VTEP found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The next hop's MAC is known.
    Resolved {
        /// The route.
        route: Route,
        /// The next hop's MAC.
        mac: MacAddr,
    },
    /// The route is known but its next hop has no usable neighbour entry.
    Pending {
        /// The route.
        route: Route,
    },
}

/// Resolves next hops from the kernel's routing and neighbour tables.
pub struct KernelNextHops {
    sock: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
    /// Probes sent (for tests and logs).
    probes: u64,
    /// The neighbour tables (IPv4, IPv6) read in this round of
    /// [`NextHopSource`] calls; cleared by `begin_round`.
    round: [Option<HashMap<(u32, IpAddr), MacAddr>>; 2],
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn push_attr(msg: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = 4 + data.len();
    msg.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_ne_bytes());
    msg.extend_from_slice(&kind.to_ne_bytes());
    msg.extend_from_slice(data);
    msg.resize(align4(msg.len()), 0);
}

/// Walks the `rtattr`s in `data`, calling `f(kind, payload)`.
fn attrs(mut data: &[u8], mut f: impl FnMut(u16, &[u8])) {
    while data.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([data[0], data[1]]));
        let kind = u16::from_ne_bytes([data[2], data[3]]);
        if len < 4 || len > data.len() {
            return;
        }
        f(kind & 0x3fff, &data[4..len]);
        data = data.get(align4(len)..).unwrap_or(&[]);
    }
}

fn ip_from(data: &[u8]) -> Option<IpAddr> {
    match data.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(data).ok()?))),
        16 => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(data).ok()?))),
        _ => None,
    }
}

fn family(ip: IpAddr) -> u8 {
    let f = match ip {
        IpAddr::V4(_) => libc::AF_INET,
        IpAddr::V6(_) => libc::AF_INET6,
    };
    u8::try_from(f).unwrap_or(0)
}

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

impl KernelNextHops {
    /// Opens a `NETLINK_ROUTE` socket in the calling thread's network
    /// namespace.
    pub fn new() -> io::Result<KernelNextHops> {
        // SAFETY: socket(2) with constant arguments; it returns a new
        // descriptor or -1, checked below.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a descriptor we just opened and own alone.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_nl is plain old data; all-zero is a valid value.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = u16::try_from(libc::AF_NETLINK).unwrap_or(16);
        let addr_len = u32::try_from(std::mem::size_of::<libc::sockaddr_nl>()).unwrap_or(12);
        // SAFETY: `addr` is a valid sockaddr_nl of `addr_len` bytes that
        // outlives the call; the kernel picks our port id.
        let rc = unsafe {
            libc::bind(
                sock.as_raw_fd(),
                std::ptr::addr_of!(addr).cast::<libc::sockaddr>(),
                addr_len,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let timeout = libc::timeval {
            tv_sec: 2,
            tv_usec: 0,
        };
        // SAFETY: SO_RCVTIMEO takes a timeval; pointer and length describe
        // `timeout`, which outlives the call.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                std::ptr::addr_of!(timeout).cast::<libc::c_void>(),
                u32::try_from(std::mem::size_of::<libc::timeval>()).unwrap_or(16),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(KernelNextHops {
            sock,
            seq: 1,
            buf: vec![0; 1 << 16],
            probes: 0,
            round: [None, None],
        })
    }

    /// How many resolution probes were sent.
    pub fn probes(&self) -> u64 {
        self.probes
    }

    fn send(&mut self, kind: u16, flags: u16, body: &[u8]) -> io::Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let mut msg = Vec::with_capacity(NLMSG_HDR + body.len());
        let len = u32::try_from(NLMSG_HDR + body.len()).unwrap_or(u32::MAX);
        msg.extend_from_slice(&len.to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        // SAFETY: sockaddr_nl is plain old data; all-zero is a valid value
        // (pid 0: the kernel).
        let mut to: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        to.nl_family = u16::try_from(libc::AF_NETLINK).unwrap_or(16);
        // SAFETY: `msg` and `to` are valid for the lengths given and
        // outlive the call.
        let rc = unsafe {
            libc::sendto(
                self.sock.as_raw_fd(),
                msg.as_ptr().cast::<libc::c_void>(),
                msg.len(),
                0,
                std::ptr::addr_of!(to).cast::<libc::sockaddr>(),
                u32::try_from(std::mem::size_of::<libc::sockaddr_nl>()).unwrap_or(12),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(self.seq)
    }

    /// Receives the answer to request `seq`, calling `f(type, body)` for
    /// every message in it, until `NLMSG_DONE` (a dump) or the first
    /// message (`single`).
    fn receive(&mut self, seq: u32, single: bool, mut f: impl FnMut(u16, &[u8])) -> io::Result<()> {
        loop {
            // SAFETY: `buf` is valid for writes of its length; recv writes
            // at most that many bytes and returns how many.
            let n = unsafe {
                libc::recv(
                    self.sock.as_raw_fd(),
                    self.buf.as_mut_ptr().cast::<libc::c_void>(),
                    self.buf.len(),
                    0,
                )
            };
            let Ok(n) = usize::try_from(n) else {
                return Err(io::Error::last_os_error());
            };
            let mut data = &self.buf[..n];
            while data.len() >= NLMSG_HDR {
                let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]);
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                let kind = u16::from_ne_bytes([data[4], data[5]]);
                let mseq = u32::from_ne_bytes([data[8], data[9], data[10], data[11]]);
                if len < NLMSG_HDR || len > data.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "truncated netlink message",
                    ));
                }
                let body = &data[NLMSG_HDR..len];
                data = data.get(align4(len)..).unwrap_or(&[]);
                if mseq != seq {
                    continue; // an answer to an earlier, abandoned request
                }
                match kind {
                    NLMSG_DONE => return Ok(()),
                    NLMSG_ERROR => {
                        let code = body
                            .first_chunk::<4>()
                            .map_or(0, |b| i32::from_ne_bytes(*b));
                        if code == 0 {
                            return Ok(());
                        }
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                    _ => {
                        f(kind, body);
                        if single {
                            return Ok(());
                        }
                    }
                }
            }
        }
    }

    /// How the kernel routes to `dst`.
    pub fn route(&mut self, dst: IpAddr) -> io::Result<Route> {
        let mut body = vec![0u8; RTMSG_LEN];
        body[0] = family(dst);
        body[1] = if dst.is_ipv4() { 32 } else { 128 };
        push_attr(&mut body, RTA_DST, &ip_bytes(dst));
        let seq = self.send(RTM_GETROUTE, 0, &body)?;
        let mut found: Option<(u8, Option<IpAddr>, Option<u32>)> = None;
        self.receive(seq, true, |kind, body| {
            if kind != RTM_NEWROUTE || body.len() < RTMSG_LEN {
                return;
            }
            let mut gw = None;
            let mut oif = None;
            attrs(&body[RTMSG_LEN..], |k, v| match k {
                RTA_GATEWAY => gw = ip_from(v),
                RTA_OIF => oif = v.first_chunk::<4>().map(|b| u32::from_ne_bytes(*b)),
                _ => {}
            });
            found = Some((body[7], gw, oif));
        })?;
        let Some((rtype, gw, oif)) = found else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("no route answer for {dst}"),
            ));
        };
        if rtype != RTN_UNICAST {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{dst} is not routed as unicast (route type {rtype}): a local or unreachable address?"),
            ));
        }
        Ok(Route {
            next_hop: gw.unwrap_or(dst),
            via_gateway: gw.is_some(),
            ifindex: oif.unwrap_or(0),
        })
    }

    /// The kernel's usable neighbour entries of `family`: (interface, IP)
    /// to MAC, leaving out incomplete and failed ones.
    pub fn neighbours(&mut self, of: IpAddr) -> io::Result<HashMap<(u32, IpAddr), MacAddr>> {
        let mut body = vec![0u8; NDMSG_LEN];
        body[0] = family(of);
        let seq = self.send(RTM_GETNEIGH, NLM_F_DUMP, &body)?;
        let mut table = HashMap::new();
        self.receive(seq, false, |kind, body| {
            if kind != RTM_NEWNEIGH || body.len() < NDMSG_LEN {
                return;
            }
            let ifindex = u32::from_ne_bytes([body[4], body[5], body[6], body[7]]);
            let state = u16::from_ne_bytes([body[8], body[9]]);
            if state & (NUD_INCOMPLETE | NUD_FAILED) != 0 || state == 0 {
                return;
            }
            let mut ip = None;
            let mut mac = None;
            attrs(&body[NDMSG_LEN..], |k, v| match k {
                NDA_DST => ip = ip_from(v),
                NDA_LLADDR if v.len() == 6 => mac = Some(MacAddr::from_bytes(v)),
                _ => {}
            });
            if let (Some(ip), Some(mac)) = (ip, mac) {
                if !mac.is_zero() {
                    table.insert((ifindex, ip), mac);
                }
            }
        })?;
        Ok(table)
    }

    /// Resolves the next hop toward `remote`, reading the kernel's tables
    /// afresh.
    pub fn resolve(&mut self, remote: IpAddr) -> io::Result<Resolution> {
        self.round = [None, None];
        self.resolve_in_round(remote)
    }

    /// Resolves with the neighbour table read once per round.
    fn resolve_in_round(&mut self, remote: IpAddr) -> io::Result<Resolution> {
        let route = self.route(remote)?;
        let slot = usize::from(route.next_hop.is_ipv6());
        if self.round[slot].is_none() {
            self.round[slot] = Some(self.neighbours(route.next_hop)?);
        }
        let found = self.round[slot]
            .as_ref()
            .and_then(|t| t.get(&(route.ifindex, route.next_hop)).copied());
        Ok(match found {
            Some(mac) => Resolution::Resolved { route, mac },
            None => Resolution::Pending { route },
        })
    }

    /// Makes the kernel resolve `next_hop`: an empty UDP datagram to its
    /// discard port needs its MAC, so the kernel sends ARP or ND.
    pub fn probe(&mut self, next_hop: IpAddr) -> io::Result<()> {
        let bind: SocketAddr = match next_hop {
            IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let s = UdpSocket::bind(bind)?;
        s.set_write_timeout(Some(Duration::from_millis(100)))?;
        s.send_to(&[], (next_hop, PROBE_PORT))?;
        self.probes += 1;
        Ok(())
    }
}

impl NextHopSource for KernelNextHops {
    fn begin_round(&mut self) {
        self.round = [None, None];
    }

    fn next_hop(&mut self, remote: IpAddr) -> Option<MacAddr> {
        match self.resolve_in_round(remote) {
            Ok(Resolution::Resolved { mac, .. }) => Some(mac),
            Ok(Resolution::Pending { route }) => {
                if let Err(e) = self.probe(route.next_hop) {
                    eprintln!("next hop {} toward {remote}: probe: {e}", route.next_hop);
                }
                None
            }
            Err(e) => {
                eprintln!("next hop toward {remote}: {e}");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_walked_with_padding_and_bounds() {
        let mut m = Vec::new();
        push_attr(&mut m, RTA_GATEWAY, &[192, 0, 2, 1]);
        push_attr(&mut m, NDA_LLADDR, &[2, 0, 0, 0, 0, 9]);
        push_attr(&mut m, RTA_OIF, &7u32.to_ne_bytes());
        assert_eq!(m.len(), 8 + 12 + 8, "the 6-byte attribute is padded");
        let mut seen = Vec::new();
        attrs(&m, |k, v| seen.push((k, v.to_vec())));
        assert_eq!(
            seen,
            vec![
                (RTA_GATEWAY, vec![192, 0, 2, 1]),
                (NDA_LLADDR, vec![2, 0, 0, 0, 0, 9]),
                (RTA_OIF, 7u32.to_ne_bytes().to_vec()),
            ]
        );
        // A length past the end stops the walk instead of reading on.
        let mut bad = m.clone();
        bad[0] = 200;
        let mut n = 0;
        attrs(&bad, |_, _| n += 1);
        assert_eq!(n, 0);
        assert_eq!(ip_from(&[192, 0, 2, 1]), Some("192.0.2.1".parse().unwrap()));
        assert_eq!(ip_from(&[1, 2, 3]), None);
    }

    #[test]
    fn loopback_routes_as_local_not_unicast() {
        // Any Linux host: 127.0.0.1 is a local route, which cannot be a
        // remote VTEP's next hop.
        let mut k = match KernelNextHops::new() {
            Ok(k) => k,
            Err(e) => {
                eprintln!("SKIP: no netlink socket: {e}");
                return;
            }
        };
        let e = k.route("127.0.0.1".parse().unwrap()).unwrap_err();
        assert!(e.to_string().contains("not routed as unicast"), "{e}");
    }
}
