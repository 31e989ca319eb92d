//! AF_XDP ports on a real veth pair between two network namespaces.
//!
//! Needs root (skips with a message otherwise) and the `af-xdp` feature:
//! `cargo test -p vxlan-pmd --features af-xdp --test afxdp_veth`.
//!
//! The underlay steering program is checked from the wire: frames sent
//! from one namespace's AF_XDP socket reach the other side's socket only
//! when they are UDP to its address and VXLAN port; ARP, ICMP and UDP to
//! another port or address go to the kernel (which answers a ping through
//! the program while it is attached), and once the program is detached,
//! nothing reaches the socket any more.
#![cfg(all(feature = "af-xdp", target_os = "linux"))]

use std::process::Command;
use std::time::{Duration, Instant};

use vxlan_core::frame::Frame;
use vxlan_pmd::afxdp::{AfXdpPort, AttachMode, Filter, XdpSteering, XskConfig};
use vxlan_pmd::pool::Pool;
use vxlan_pmd::port::{Burst, Port};

#[path = "support/netns.rs"]
mod netns;
use netns::{ip, is_root, InNetns, Namespaces};

/// Two namespaces joined by a veth pair; deleted on drop (also on panic).
fn topology(tag: &str) -> Namespaces {
    let id = std::process::id();
    let t = Namespaces::new([format!("axa{tag}{id}"), format!("axb{tag}{id}")]);
    ip(&[
        "link",
        "add",
        "xa0",
        "netns",
        t.get(0),
        "address",
        "02:00:00:00:0a:01",
        "type",
        "veth",
        "peer",
        "name",
        "xb0",
        "netns",
        t.get(1),
        "address",
        "02:00:00:00:0b:01",
    ]);
    for (n, dev, addr) in [
        (t.get(0), "xa0", "10.77.0.1/24"),
        (t.get(1), "xb0", "10.77.0.2/24"),
    ] {
        ip(&["-n", n, "addr", "add", addr, "dev", dev]);
        ip(&["-n", n, "link", "set", dev, "up"]);
        ip(&["-n", n, "link", "set", "lo", "up"]);
    }
    t
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in data.chunks(2) {
        let w = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
        sum += u32::from(w);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !u16::try_from(sum).unwrap_or(0xffff)
}

/// Ethernet + IPv4 + UDP (no UDP checksum) carrying `payload`.
fn udp4(dst_ip: [u8; 4], proto: u8, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[2, 0, 0, 0, 0x0b, 1, 2, 0, 0, 0, 0x0a, 1, 0x08, 0x00]);
    let total = u16::try_from(20 + 8 + payload.len()).unwrap();
    let mut iph = vec![0x45, 0, 0, 0, 0, 1, 0, 0, 64, proto, 0, 0, 10, 77, 0, 1];
    iph[2..4].copy_from_slice(&total.to_be_bytes());
    iph.extend_from_slice(&dst_ip);
    let c = checksum(&iph);
    iph[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&iph);
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&u16::try_from(8 + payload.len()).unwrap().to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

/// `frame` (from `udp4`) with a 4-byte IPv4 option (NOPs), IHL 6.
fn with_ip_options(frame: &[u8]) -> Vec<u8> {
    let mut f = frame[..34].to_vec();
    f.extend_from_slice(&[1, 1, 1, 1]);
    f.extend_from_slice(&frame[34..]);
    f[14] = 0x46;
    let total = u16::from_be_bytes([f[16], f[17]]) + 4;
    f[16..18].copy_from_slice(&total.to_be_bytes());
    f[24..26].copy_from_slice(&[0, 0]);
    let c = checksum(&f[14..38]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f
}

/// `frame` (from `udp4`) as a first fragment (MF set).
fn fragment(frame: &[u8]) -> Vec<u8> {
    let mut f = frame.to_vec();
    f[20] = 0x20;
    f[24..26].copy_from_slice(&[0, 0]);
    let c = checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f
}

/// `frame` with an 802.1Q tag (VLAN 5) after the MACs.
fn vlan_tagged(frame: &[u8]) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    f.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
    f.extend_from_slice(&frame[12..]);
    f
}

/// Receives on `port` for up to `wait`, returning the payload tags seen.
fn receive(port: &mut AfXdpPort, wait: Duration) -> Vec<Vec<u8>> {
    let mut burst = Burst::new();
    let mut seen = Vec::new();
    let end = Instant::now() + wait;
    while Instant::now() < end {
        if port.rx_burst(0, &mut burst, 32) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        for pkt in burst.drain() {
            seen.push(pkt.data().to_vec());
        }
    }
    seen
}

#[test]
fn underlay_program_steers_only_our_vxlan_and_detaches() {
    if !is_root() {
        eprintln!("SKIP: AF_XDP on veth needs root");
        return;
    }
    let topo = topology("s");
    let pool = Pool::with_count(8192).unwrap();
    let cfg = XskConfig {
        frames: 1024,
        ring_size: 256,
        ..XskConfig::default()
    };
    let mut a = {
        let _ns = InNetns::enter(topo.get(0));
        AfXdpPort::open("xa0", 0, cfg, pool.clone()).expect("socket on xa0")
    };
    let (mut b, steering) = {
        let _ns = InNetns::enter(topo.get(1));
        let b = AfXdpPort::open("xb0", 0, cfg, pool.clone()).expect("socket on xb0");
        let s = XdpSteering::attach(
            "xb0",
            1,
            Filter::Vxlan {
                local: "10.77.0.2".parse().unwrap(),
                port: 4789,
            },
            Some(AttachMode::Generic),
        )
        .expect("attach");
        s.register(&b).expect("register");
        (b, s)
    };
    b.set_port_id(7);

    let ours = |tag: u8| udp4([10, 77, 0, 2], 17, 4789, &[tag; 30]);
    let frames = [
        (ours(1), true),
        (udp4([10, 77, 0, 2], 17, 4790, &[2; 30]), false), // another port
        (udp4([10, 77, 0, 9], 17, 4789, &[3; 30]), false), // another address
        (udp4([10, 77, 0, 2], 6, 4789, &[4; 30]), false),  // not UDP
        (ours(5), true),
        (with_ip_options(&ours(6)), true), // IHL 6: the UDP header moves
        (fragment(&ours(7)), false),       // MF set: the kernel reassembles
        (vlan_tagged(&ours(8)), false),    // tagged underlay: not ours
        (ours(9), true),
    ];
    let mut burst = Burst::new();
    for (f, _) in &frames {
        burst.push(pool.alloc_with(f).unwrap()).unwrap();
    }
    assert_eq!(a.tx_burst(0, &mut burst), frames.len());
    let seen = receive(&mut b, Duration::from_millis(500));
    let expected: Vec<Vec<u8>> = frames
        .iter()
        .filter(|(_, ours)| *ours)
        .map(|(f, _)| f.clone())
        .collect();
    assert_eq!(
        seen, expected,
        "exactly our VXLAN frames, intact and in order"
    );
    assert_eq!(b.stats().rx_packets, 4);
    assert_eq!(a.stats().tx_packets, 9);

    // The kernel still gets ARP and ICMP: ping through the program.
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            topo.get(0),
            "ping",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "1",
            "10.77.0.2",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ping: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(receive(&mut b, Duration::from_millis(100)).is_empty());

    // Many more frames than the rings hold, received as they come: all of
    // them arrive, so rx frames go back to the fill ring and tx frames
    // come back from the completion ring.
    let (mut sent, mut seen) = (0, 0);
    let mut rx = Burst::new();
    for round in 0..40u8 {
        for _ in 0..32 {
            burst.push(pool.alloc_with(&ours(round)).unwrap()).unwrap();
        }
        sent += a.tx_burst(0, &mut burst);
        std::thread::sleep(Duration::from_millis(1));
        seen += b.rx_burst(0, &mut rx, 64);
        rx.clear();
    }
    assert_eq!(sent, 40 * 32);
    seen += receive(&mut b, Duration::from_millis(500)).len();
    assert_eq!(
        seen,
        40 * 32,
        "kernel stats: {:?}",
        b.kernel_stats()
            .map(|s| (s.rx_dropped, s.rx_ring_full, s.rx_fill_ring_empty_descs))
    );

    // Detached: our VXLAN goes to the kernel, not the socket.
    drop(steering);
    burst.push(pool.alloc_with(&ours(9)).unwrap()).unwrap();
    a.tx_burst(0, &mut burst);
    assert!(receive(&mut b, Duration::from_millis(300)).is_empty());
    drop(a);
    drop(b);
    assert_eq!(pool.in_use(), 0, "every buffer back in the pool");
}

#[test]
fn access_program_steers_every_frame() {
    if !is_root() {
        eprintln!("SKIP: AF_XDP on veth needs root");
        return;
    }
    let topo = topology("a");
    let pool = Pool::with_count(1024).unwrap();
    let cfg = XskConfig {
        frames: 512,
        ring_size: 128,
        ..XskConfig::default()
    };
    let mut a = {
        let _ns = InNetns::enter(topo.get(0));
        // This side without need_wakeup: every tx burst kicks the kernel.
        let no_wakeup = XskConfig {
            need_wakeup: false,
            ..cfg
        };
        AfXdpPort::open("xa0", 0, no_wakeup, pool.clone()).expect("socket on xa0")
    };
    let (mut b, _steering) = {
        let _ns = InNetns::enter(topo.get(1));
        let b = AfXdpPort::open("xb0", 0, cfg, pool.clone()).expect("socket on xb0");
        let s = XdpSteering::attach("xb0", 1, Filter::All, None).expect("attach");
        s.register(&b).expect("register");
        (b, s)
    };
    // ARP request, an odd EtherType, a runt: all to the socket.
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[2, 0, 0, 0, 0x0a, 1, 0x08, 0x06]);
    arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0x0a, 1, 10, 77, 0, 1]);
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&[10, 77, 0, 2]);
    let mut odd = vec![2, 0, 0, 0, 0x0b, 1, 2, 0, 0, 0, 0x0a, 1, 0x88, 0xb5];
    odd.extend_from_slice(&[0x5a; 46]);
    let frames = vec![arp, odd];
    let mut burst = Burst::new();
    for f in &frames {
        burst.push(pool.alloc_with(f).unwrap()).unwrap();
    }
    assert_eq!(a.tx_burst(0, &mut burst), 2);
    assert!(a.kicks() >= 1, "without need_wakeup the burst was kicked");
    let mut seen = receive(&mut b, Duration::from_millis(400));
    // The kernel on xa0 sends its own IPv6 multicast listener reports,
    // which the socket rightly gets too; leave them out of the comparison.
    seen.retain(|f| f[12..14] != [0x86, 0xdd]);
    assert_eq!(seen, frames);
}

#[test]
fn zero_copy_on_veth_is_refused_at_bind() {
    if !is_root() {
        eprintln!("SKIP: AF_XDP on veth needs root");
        return;
    }
    let topo = topology("z");
    let pool = Pool::with_count(64).unwrap();
    let _ns = InNetns::enter(topo.get(1));
    let cfg = XskConfig {
        frames: 512,
        ring_size: 128,
        mode: vxlan_pmd::afxdp::BindMode::ZeroCopy,
        ..XskConfig::default()
    };
    // veth has no zero-copy support: the kernel says so at bind, and the
    // error names the step.
    let e = AfXdpPort::open("xb0", 0, cfg, pool.clone()).unwrap_err();
    assert_eq!(e.step, "bind", "{e}");
    // A queue the interface does not have is refused too.
    let cfg = XskConfig {
        mode: vxlan_pmd::afxdp::BindMode::Copy,
        ..cfg
    };
    let e = AfXdpPort::open("xb0", 5, cfg, pool.clone()).unwrap_err();
    assert_eq!(e.step, "bind", "{e}");
    let e = AfXdpPort::open("nosuchdev0", 0, cfg, pool).unwrap_err();
    assert_eq!(e.step, "interface", "{e}");
}
