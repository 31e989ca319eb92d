//! Next-hop resolution against the kernel's real tables, in network
//! namespaces this test creates and always deletes (root only; skipped
//! with a message otherwise).
//!
//! Namespace A holds the VTEP side (`veth0`, 198.51.100.1/24 and
//! 2001:db8:1::1/64) with static neighbours and a route via a gateway;
//! namespace B holds the other end (`veth1`, 198.51.100.9), a live host
//! that answers ARP.

#![cfg(target_os = "linux")]

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vxlan_core::frame::Frame;
use vxlan_core::testutil::write_inner_frame;
use vxlan_core::tunnel::{parse_single, ParseConfig};
use vxlan_core::wire::MacAddr;
use vxlan_pmd::config::VtepConfig;
use vxlan_pmd::control::Control;
use vxlan_pmd::nexthop::{KernelNextHops, Resolution, Route};
use vxlan_pmd::pool::{PktBuf, Pool};
use vxlan_pmd::vtep::Output;

#[path = "support/netns.rs"]
mod netns;
use netns::{in_namespace, ip, is_root, Namespaces};

/// Two namespaces joined by a veth pair, as the module docs describe.
fn topology(tag: &str) -> (Namespaces, String) {
    let a = format!("vxnh-{tag}-a-{}", std::process::id());
    let b = format!("vxnh-{tag}-b-{}", std::process::id());
    let guard = Namespaces::new([a.clone(), b.clone()]);
    ip(&[
        "-n", &a, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", &b,
    ]);
    ip(&["-n", &a, "addr", "add", "198.51.100.1/24", "dev", "veth0"]);
    ip(&[
        "-n",
        &a,
        "addr",
        "add",
        "2001:db8:1::1/64",
        "dev",
        "veth0",
        "nodad",
    ]);
    ip(&["-n", &a, "link", "set", "lo", "up"]);
    ip(&["-n", &a, "link", "set", "veth0", "up"]);
    ip(&[
        "-n",
        &b,
        "link",
        "set",
        "veth1",
        "address",
        "02:00:00:00:09:09",
    ]);
    ip(&["-n", &b, "addr", "add", "198.51.100.9/24", "dev", "veth1"]);
    ip(&["-n", &b, "link", "set", "veth1", "up"]);
    for (addr, mac) in [
        ("198.51.100.7", "02:00:00:00:07:07"),
        ("198.51.100.254", "02:00:00:00:fe:fe"),
        ("2001:db8:1::7", "02:00:00:00:06:07"),
    ] {
        ip(&[
            "-n",
            &a,
            "neigh",
            "add",
            addr,
            "lladdr",
            mac,
            "dev",
            "veth0",
            "nud",
            "permanent",
        ]);
    }
    ip(&[
        "-n",
        &a,
        "route",
        "add",
        "203.0.113.0/24",
        "via",
        "198.51.100.254",
    ]);
    (guard, a)
}

fn ifindex(name: &str) -> u32 {
    let c = std::ffi::CString::new(name).unwrap();
    // SAFETY: `c` is a NUL-terminated string that outlives the call.
    unsafe { libc::if_nametoindex(c.as_ptr()) }
}

fn addr(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn mac(s: &str) -> MacAddr {
    s.parse().unwrap()
}

#[test]
fn kernel_tables_give_the_next_hop_mac() {
    if !is_root() {
        eprintln!("SKIP: needs root to create network namespaces");
        return;
    }
    let (_guard, a) = topology("tables");
    let ns = a.clone();
    in_namespace(&a, move || {
        let veth0 = ifindex("veth0");
        assert_ne!(veth0, 0);
        let mut k = KernelNextHops::new().unwrap();
        // On-link: the remote itself is the next hop.
        assert_eq!(
            k.resolve(addr("198.51.100.7")).unwrap(),
            Resolution::Resolved {
                route: Route {
                    next_hop: addr("198.51.100.7"),
                    via_gateway: false,
                    ifindex: veth0
                },
                mac: mac("02:00:00:00:07:07"),
            }
        );
        // Routed: the gateway's MAC.
        assert_eq!(
            k.resolve(addr("203.0.113.5")).unwrap(),
            Resolution::Resolved {
                route: Route {
                    next_hop: addr("198.51.100.254"),
                    via_gateway: true,
                    ifindex: veth0
                },
                mac: mac("02:00:00:00:fe:fe"),
            }
        );
        // IPv6.
        match k.resolve(addr("2001:db8:1::7")).unwrap() {
            Resolution::Resolved { mac: m, .. } => assert_eq!(m, mac("02:00:00:00:06:07")),
            other => panic!("{other:?}"),
        }
        // The gateway's neighbour entry changes: so does the answer.
        ip(&[
            "-n",
            &ns,
            "neigh",
            "replace",
            "198.51.100.254",
            "lladdr",
            "02:00:00:00:fe:01",
            "dev",
            "veth0",
            "nud",
            "permanent",
        ]);
        match k.resolve(addr("203.0.113.5")).unwrap() {
            Resolution::Resolved { mac: m, .. } => assert_eq!(m, mac("02:00:00:00:fe:01")),
            other => panic!("{other:?}"),
        }
        // No route at all: an error naming why.
        let e = k.resolve(addr("192.0.2.77")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENETUNREACH), "{e}");
        // A live host with no neighbour entry yet: pending, then the probe
        // makes the kernel ARP for it and the host answers.
        assert_eq!(
            k.resolve(addr("198.51.100.9")).unwrap(),
            Resolution::Pending {
                route: Route {
                    next_hop: addr("198.51.100.9"),
                    via_gateway: false,
                    ifindex: veth0
                }
            }
        );
        use vxlan_pmd::control::NextHopSource;
        let start = Instant::now();
        assert_eq!(k.next_hop(addr("198.51.100.9")), None);
        assert_eq!(k.probes(), 1);
        let found = loop {
            k.begin_round();
            if let Some(m) = k.next_hop(addr("198.51.100.9")) {
                break m;
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "198.51.100.9 never resolved"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(found, mac("02:00:00:00:09:09"));
        eprintln!(
            "resolved 198.51.100.9 by ARP in {:?} after {} probes",
            start.elapsed(),
            k.probes()
        );
    });
}

/// Collects what the VTEP sends.
#[derive(Default)]
struct Collect(Vec<(u16, Vec<u8>)>);

impl Output for Collect {
    fn send(&mut self, port: u16, pkt: PktBuf) {
        self.0.push((port, pkt.data().to_vec()));
    }
}

const CONFIG: &str = r#"
[vtep]
local_ip = "198.51.100.1"
mac = "02:00:00:00:00:01"

[underlay]
port = "uplink"

[[port]]
name = "uplink"
kind = "memory"

[[port]]
name = "vm1"
kind = "memory"
access = { vni = 100 }

[[vni]]
id = 100
flood = ["203.0.113.5"]
"#;

#[test]
fn templates_follow_the_kernels_next_hop() {
    if !is_root() {
        eprintln!("SKIP: needs root to create network namespaces");
        return;
    }
    let (_guard, a) = topology("tmpl");
    let ns = a.clone();
    in_namespace(&a, move || {
        let cfg = VtepConfig::from_toml_str(CONFIG).unwrap();
        let pool = Pool::new(64, 2048, 128).unwrap();
        let shared = vxlan_pmd::build::vtep(&cfg, Arc::clone(&pool)).unwrap();
        let mut worker = shared.worker(0);
        let bcast = {
            let mut f = vec![0u8; 64];
            write_inner_frame(
                &mut f,
                mac("02:00:00:00:0b:01"),
                MacAddr::BROADCAST,
                &[],
                64,
            );
            f
        };
        let send = |worker: &mut vxlan_pmd::vtep::VtepWorker| {
            let mut out = Collect::default();
            worker.refresh();
            worker.process(1, pool.alloc_with(&bcast).unwrap(), &mut out);
            out.0
        };

        // Not resolved yet: the frame is dropped with a named reason.
        assert!(shared.snapshot().remotes[0]
            .template
            .next_hop_mac()
            .is_zero());
        assert!(send(&mut worker).is_empty());
        assert_eq!(shared.stats().drop_nexthop_unresolved, 1);

        let mut control = Control::from_config(&cfg, Arc::clone(&shared))
            .with_next_hops(Box::new(KernelNextHops::new().unwrap()));
        assert_eq!(control.refresh_next_hops(), Ok(1));
        assert_eq!(control.refresh_next_hops(), Ok(0), "nothing changed");
        let sent = send(&mut worker);
        assert_eq!(sent.len(), 1);
        let (port, frame) = &sent[0];
        assert_eq!(*port, 0, "out of the underlay port");
        let vx = parse_single(frame, &ParseConfig::default())
            .unwrap()
            .unwrap();
        assert_eq!(vx.layer().dst_addr(), addr("203.0.113.5"));
        assert_eq!(
            vx.layer().dst_mac(),
            mac("02:00:00:00:fe:fe"),
            "the gateway"
        );
        assert_eq!(vx.layer().src_mac(), mac("02:00:00:00:00:01"));

        // The gateway's MAC changes: the next refresh publishes a new
        // template and frames follow it.
        ip(&[
            "-n",
            &ns,
            "neigh",
            "replace",
            "198.51.100.254",
            "lladdr",
            "02:00:00:00:fe:01",
            "dev",
            "veth0",
            "nud",
            "permanent",
        ]);
        assert_eq!(control.refresh_next_hops(), Ok(1));
        let sent = send(&mut worker);
        let vx = parse_single(&sent[0].1, &ParseConfig::default())
            .unwrap()
            .unwrap();
        assert_eq!(vx.layer().dst_mac(), mac("02:00:00:00:fe:01"));
        let shown = control.handle_line(r#"{"cmd": "vni show"}"#);
        assert!(
            shown.contains(r#""next_hop":"02:00:00:00:fe:01""#),
            "{shown}"
        );

        // The gateway's entry goes away: frames are dropped again, counted.
        ip(&["-n", &ns, "neigh", "del", "198.51.100.254", "dev", "veth0"]);
        assert_eq!(control.refresh_next_hops(), Ok(1));
        assert!(send(&mut worker).is_empty());
        assert_eq!(shared.stats().drop_nexthop_unresolved, 2);
        drop(worker);
        assert_eq!(pool.in_use(), 0, "every buffer back in the pool");
    });
}
