//! `vlan-tap`: an 802.1Q trunk for kernels without VLAN devices, for the
//! trunk interop test.
//!
//! ```text
//! vlan-tap TRUNK_IFACE VID=TAPNAME [VID=TAPNAME ...]
//! ```
//!
//! Creates one TAP device per VLAN and bridges it to the trunk interface
//! through an AF_XDP socket: a frame the kernel sends on a TAP leaves the
//! trunk tagged with its VID; a frame arriving on the trunk tagged with a
//! known VID is untagged and handed to that VLAN's TAP; anything else is
//! counted and dropped. Configure the TAPs (address, MAC, up) after it
//! prints `ready` on stderr; it runs until killed. It exists because the
//! test kernel lacks `CONFIG_VLAN_8021Q`; a normal host would use
//! `ip link add link eth0 name eth0.10 type vlan id 10`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::ExitCode;
use std::sync::Arc;

use vxlan_core::frame::Frame;
use vxlan_pmd::afxdp::{AfXdpPort, Filter, XdpSteering, XskConfig};
use vxlan_pmd::pool::Pool;
use vxlan_pmd::port::{Burst, Port};

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("vlan-tap: {msg}");
    ExitCode::from(2)
}

/// Opens TAP device `name` (non-blocking, no packet-info header).
fn open_tap(name: &str) -> io::Result<OwnedFd> {
    // SAFETY: opening a device file with a NUL-terminated path.
    let fd = unsafe {
        libc::open(
            c"/dev/net/tun".as_ptr(),
            libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is new and ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; all-zero is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    if name.len() >= req.ifr_name.len() {
        return Err(io::Error::other("interface name too long"));
    }
    for (d, s) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *d = libc::c_char::from_ne_bytes([s]);
    }
    req.ifr_ifru.ifru_flags =
        libc::c_short::try_from(libc::IFF_TAP | libc::IFF_NO_PI).map_err(io::Error::other)?;
    // SAFETY: TUNSETIFF reads and writes one ifreq, which `req` is.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        return fail("usage: vlan-tap TRUNK_IFACE VID=TAPNAME [VID=TAPNAME ...]");
    }
    let trunk = &args[0];
    let mut taps: Vec<(u16, OwnedFd)> = Vec::new();
    for a in &args[1..] {
        let Some((vid, name)) = a.split_once('=') else {
            return fail(format!("{a}: write VID=TAPNAME"));
        };
        let Ok(vid) = vid.parse::<u16>() else {
            return fail(format!("{a}: bad VID"));
        };
        match open_tap(name) {
            Ok(fd) => taps.push((vid, fd)),
            Err(e) => return fail(format!("tap {name}: {e}")),
        }
    }
    let pool = match Pool::with_count(4096) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let cfg = XskConfig {
        frames: 2048,
        ring_size: 512,
        ..XskConfig::default()
    };
    let mut port = match AfXdpPort::open(trunk, 0, cfg, Arc::clone(&pool)) {
        Ok(p) => p,
        Err(e) => return fail(format!("{trunk}: {e}")),
    };
    let steering = match XdpSteering::attach(trunk, 1, Filter::All, None) {
        Ok(s) => s,
        Err(e) => return fail(format!("{trunk}: {e}")),
    };
    if let Err(e) = steering.register(&port) {
        return fail(format!("{trunk}: {e}"));
    }
    eprintln!("ready");
    let mut rx = Burst::new();
    let mut tx = Burst::new();
    let mut buf = vec![0u8; 4096];
    let mut untagged = vec![0u8; 4096];
    let mut fds: Vec<libc::pollfd> = taps
        .iter()
        .map(|(_, fd)| fd.as_raw_fd())
        .chain([port.raw_fd()])
        .map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let mut dropped = 0u64;
    loop {
        // SAFETY: `fds` is a live array of pollfd of the length we pass.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 5) };
        // Trunk -> TAPs: untag.
        port.rx_burst(0, &mut rx, 64);
        for pkt in rx.drain() {
            let d = pkt.data();
            let vid = (d.len() >= 18 && d.len() <= 4096 && d[12..14] == [0x81, 0x00])
                .then(|| u16::from_be_bytes([d[14], d[15]]) & 0x0fff);
            let Some(fd) = vid.and_then(|v| taps.iter().find(|(t, _)| *t == v)) else {
                dropped += 1;
                continue;
            };
            let frame = &mut untagged[..d.len() - 4];
            frame[..12].copy_from_slice(&d[..12]);
            frame[12..].copy_from_slice(&d[16..]);
            // SAFETY: writing an initialised buffer of the given length.
            unsafe { libc::write(fd.1.as_raw_fd(), frame.as_ptr().cast(), frame.len()) };
        }
        // TAPs -> trunk: tag.
        for (vid, fd) in &taps {
            loop {
                // SAFETY: reading into a buffer of the given length.
                let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                let Ok(n) = usize::try_from(n) else { break };
                if n < 14 {
                    break;
                }
                let Some(mut pkt) = pool.alloc() else { break };
                let tag = [
                    0x81,
                    0x00,
                    (vid >> 8).to_le_bytes()[0],
                    vid.to_le_bytes()[0],
                ];
                if pkt.append(&buf[..12]).is_err()
                    || pkt.append(&tag).is_err()
                    || pkt.append(&buf[12..n]).is_err()
                {
                    continue;
                }
                if tx.is_full() {
                    port.tx_burst(0, &mut tx);
                }
                // Cannot fail: the burst was just emptied if it was full.
                let _ = tx.push(pkt);
            }
        }
        if !tx.is_empty() {
            port.tx_burst(0, &mut tx);
        }
        if dropped > 0 && dropped.is_multiple_of(1000) {
            eprintln!("vlan-tap: {dropped} untagged or unknown-VLAN frames dropped");
        }
    }
}
