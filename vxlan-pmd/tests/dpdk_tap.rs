//! The VTEP's encapsulation out of a DPDK `net_tap` port, a device that
//! offers the transmit IPv4 checksum offload (and does it in software):
//! the worker loop zeroes each outer IPv4 checksum and asks the device for
//! it, and tshark, capturing on the tap interface, finds every outer
//! checksum right. A port without the offload (net_null) is covered by
//! `dpdk_null`, and its software checksums on the wire by the examples'
//! `vtep_dpdk_pcap`.
//!
//! Needs root and /dev/net/tun (and tshark); prints SKIP and passes
//! otherwise. The tap interface lives in a namespace of its own (EAL
//! probes the vdev from a thread inside it), removed with everything in it
//! by a Drop guard, also on failure. Its own test binary: EAL starts once
//! per process.

mod dpdk_common;
#[path = "support/netns.rs"]
mod netns;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dpdk_common::*;
use netns::{in_namespace, in_ns_ok, is_root, Namespaces};
use vxlan_core::decap::{decap, DecapConfig, DecapDrop};
use vxlan_core::encap::{
    complete_tx_checksums, EncapConfig, EncapTemplate, TxChecksumOffload, UdpChecksumMode,
};
use vxlan_core::frame::{Frame, RxOffloads};
use vxlan_pmd::config::VtepConfig;
use vxlan_pmd::dpdk::{DpdkLoop, Eal, EthPort, EthPortConfig, Mempool};
use vxlan_pmd::pool::Pool;

/// Tenant frames sent through the VTEP (two net_null bursts).
const FRAMES: u64 = 64;

fn skip_reason() -> Option<&'static str> {
    if !is_root() {
        return Some("needs root (network namespaces, tap interfaces)");
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Some("no /dev/net/tun");
    }
    if !Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Some("tshark not installed");
    }
    None
}

#[test]
fn tap_port_computes_the_outer_ipv4_checksum() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIP: {why}");
        return;
    }
    let id = std::process::id() % 100_000;
    let mut guard = Namespaces::new([format!("vxtap{id}")]);
    let ns = guard.get(0).to_string();
    let tap = format!("vxt{id}");
    let dir = guard.dir(std::env::temp_dir().join(format!("vxlan-dpdk-tap-{id}")));
    let capture = dir.join("uplink.pcapng");
    // No IPv6 on the tap: nothing of the kernel's own on the wire.
    in_ns_ok(
        &ns,
        &["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"],
    );
    // The tap PMD creates its interface in the namespace of the thread
    // that probes it: EAL starts in ours.
    let tap_arg = format!("--vdev=net_tap0,iface={tap}");
    let eal: &'static Eal = in_namespace(&ns, move || {
        Eal::init(&[
            "--no-huge".to_string(),
            "--no-pci".to_string(),
            "--no-shconf".to_string(),
            "--log-level=error".to_string(),
            tap_arg,
            "--vdev=net_null0,size=64".to_string(),
        ])
        .expect("EAL starts with a net_tap and a net_null vdev")
    });

    let under_pool = Mempool::new(eal, "under", 1023, 32, 2048 + 128).unwrap();
    let access_pool = Mempool::new(eal, "access", 1023, 32, 2048 + 128).unwrap();
    let copies = Mempool::new(eal, "copies", 511, 32, 2048 + 128).unwrap();
    prefill(&access_pool, &tenant_frame(VM_A, VM_B, 2));

    let pcfg = EthPortConfig {
        queues: 1,
        rx_ring: 256,
        tx_ring: 256,
        tx_ipv4_checksum: true,
        tx_udp_checksum: true,
    };
    // Set up in the namespace too: the tap PMD opens each queue's tun
    // file by interface name, which the kernel looks up in the calling
    // thread's namespace (elsewhere it would make a second, down tap).
    let (uplink, vm) = {
        let (up_pool, acc_pool) = (Arc::clone(&under_pool), Arc::clone(&access_pool));
        in_namespace(&ns, move || {
            let uplink = EthPort::open(eal, "net_tap0", &pcfg, &up_pool).unwrap();
            let access_cfg = EthPortConfig {
                tx_ipv4_checksum: false,
                tx_udp_checksum: false,
                ..pcfg
            };
            let vm = EthPort::open(eal, "net_null0", &access_cfg, &acc_pool).unwrap();
            (Arc::new(uplink), Arc::new(vm))
        })
    };
    eprintln!(
        "net_tap tx_offload_capa {:#x}, offloads {:?}",
        uplink.tx_offload_capa(),
        uplink.offloads()
    );
    assert!(
        uplink.offloads().tx_ipv4_checksum,
        "net_tap offers RTE_ETH_TX_OFFLOAD_IPV4_CKSUM: capa {:#x}",
        uplink.tx_offload_capa()
    );
    assert!(
        uplink.offloads().tx_udp_checksum,
        "net_tap offers RTE_ETH_TX_OFFLOAD_UDP_CKSUM: capa {:#x}",
        uplink.tx_offload_capa()
    );
    assert!(!vm.offloads().tx_ipv4_checksum, "not asked for");
    assert!(!vm.offloads().tx_udp_checksum, "not asked for");
    request_by_frame_shape(&copies);
    requests_from_templates(&copies, &uplink);

    // Capture the VXLAN frames the tap hands the kernel; started (and
    // ready) before anything is sent.
    let fr = (FRAMES + 1).to_string();
    let cap = capture.to_str().unwrap();
    let mut tshark = Command::new("ip")
        .args(["netns", "exec", &ns, "tshark", "-i", &tap, "-f"])
        .args(["udp port 4789", "-c", &fr, "-a", "duration:20", "-w", cap])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tshark starts");
    let mut err = BufReader::new(tshark.stderr.take().unwrap());
    let mut said = String::new();
    loop {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap_or(0) == 0 {
            panic!("tshark ended before capturing: {said}");
        }
        said.push_str(&line);
        // "Capturing on" comes before dumpcap has its socket; tshark 4
        // says "Capture started" once it has.
        if line.contains("Capture started") {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    // Keep draining tshark's stderr so it never blocks on it.
    let drain = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut rest);
        rest
    });

    // The control: one VXLAN frame with a zero checksum and no request.
    // The tap must send it as it is (so a good checksum below is the
    // device's doing, on request).
    let mut control = from_remote(&tenant_frame(VM_B, VM_A, 9));
    control[24..26].fill(0);
    let m = under_pool.alloc_with(&control).unwrap();
    // SAFETY: no loop runs yet; this thread alone uses queue 0.
    assert_eq!(unsafe { uplink.tx_burst(0, vec![m]) }, 1);

    let mut cfg = VtepConfig::from_toml_str(&config(
        r#"
        [[port]]
        name = "uplink"
        kind = "memory"
        [[port]]
        name = "vm"
        kind = "memory"
        access = { vni = 100 }
        "#,
    ))
    .unwrap();
    cfg.vtep.workers = 1;
    let shared = vxlan_pmd::build::vtep(&cfg, Pool::new(1, 256, 128).unwrap()).unwrap();
    let totals = std::thread::scope(|s| {
        s.spawn(|| {
            eal.register_thread().expect("thread registers with EAL");
            let ports = vec![Arc::clone(&uplink), Arc::clone(&vm)];
            // SAFETY: this thread alone uses queue 0 of both ports.
            let mut lp = unsafe { DpdkLoop::new(shared.worker(0), ports, 0, Arc::clone(&copies)) };
            while lp.port_stats()[1].rx < FRAMES {
                lp.poll();
            }
            let stats = lp.stats();
            drop(lp);
            eal.unregister_thread();
            stats
        })
        .join()
        .unwrap()
    });
    let (up, access) = (totals.ports[0], totals.ports[1]);
    let v = shared.stats();
    eprintln!("loops: {totals:?}\nvtep: {v:?}\ntap: {:?}", uplink.stats());
    assert_eq!(access.rx, FRAMES, "two net_null bursts");
    assert_eq!(v.tx_remote, FRAMES, "{v:?}");
    assert_eq!(up.tx, FRAMES, "the tap took every frame: {up:?}");
    assert_eq!(uplink.stats().opackets, FRAMES + 1, "and the control");
    assert_eq!(
        up.tx_ipv4_checksum_offloaded, FRAMES,
        "every frame left with its IPv4 checksum zeroed, for the device"
    );
    assert_eq!(access.tx_ipv4_checksum_offloaded, 0);

    let end = Instant::now() + Duration::from_secs(25);
    let status = loop {
        if let Some(st) = tshark.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < end, "tshark did not finish");
        std::thread::sleep(Duration::from_millis(20));
    };
    let rest = drain.join().unwrap();
    eprintln!("tshark: {said}{rest}");
    assert!(status.success(), "tshark: {said}{rest}");

    let o = Command::new("tshark")
        .arg("-r")
        .arg(&capture)
        .args(["-o", "ip.check_checksum:TRUE", "-T", "fields"])
        .args(["-E", "separator=|", "-E", "occurrence=f"])
        .args(["-e", "ip.src", "-e", "ip.dst", "-e", "ip.checksum"])
        .args(["-e", "ip.checksum.status", "-e", "vxlan.vni"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('|').collect()).collect();
    eprintln!("{} captured; first: {:?}", rows.len(), rows.first());
    assert_eq!(rows.len() as u64, FRAMES + 1, "{text}");
    assert_eq!(
        &rows[0][2..4],
        &["0x0000", "0"],
        "the control left as sent, its checksum bad"
    );
    for row in &rows[1..] {
        assert_eq!(row[0], VTEP_IP, "{row:?}");
        assert_eq!(row[1], REMOTE_IP, "{row:?}");
        // We sent it zero; the device wrote it.
        assert_ne!(row[2], "0x0000", "{row:?}");
        assert_eq!(row[3], "1", "outer IPv4 checksum good: {row:?}");
        assert_eq!(row[4], VNI.to_string(), "{row:?}");
    }

    rx_verdicts(&ns, &tap, &uplink);

    drop(uplink); // closes the port: its interface goes
    drop(vm);
    assert_eq!(access_pool.in_use(), 0);
    assert_eq!(copies.in_use(), 0);
    assert_eq!(under_pool.in_use(), 0);
}

/// The tap's receive checksum verdicts reach decapsulation: three VXLAN
/// frames with UDP checksums, written into the tap interface from the
/// kernel's side (an AF_PACKET socket), one good, one with a wrong UDP
/// checksum, one with a wrong IPv4 header checksum, come out of the port
/// with net_tap's verdicts, and decapsulation accepts the first without
/// summing and drops the others for the device's reasons.
fn rx_verdicts(ns: &str, tap: &str, uplink: &EthPort) {
    let cfg = EncapConfig {
        udp_checksum: UdpChecksumMode::Compute,
        ..EncapConfig::new(
            REMOTE_IP.parse().unwrap(),
            VTEP_IP.parse().unwrap(),
            REMOTE_MAC.parse().unwrap(),
            VTEP_MAC.parse().unwrap(),
        )
    };
    let t = EncapTemplate::new(&cfg).unwrap();
    let mut storage = vec![0u8; 512];
    let mut f =
        vxlan_core::frame::BufFrame::with_data(&mut storage[..], 128, &tenant_frame(VM_B, VM_A, 3))
            .unwrap();
    t.encap(&mut f, VNI, 50000).unwrap();
    let good = f.data().to_vec();
    assert_ne!(&good[40..42], &[0, 0], "a UDP checksum");
    let mut bad_udp = good.clone();
    bad_udp[40] ^= 0x5a;
    let mut bad_ip = good.clone();
    bad_ip[24] ^= 0x5a;
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let script = "import socket,sys\n\
                  s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\n\
                  s.bind((sys.argv[1],0))\n\
                  [s.send(bytes.fromhex(h)) for h in sys.argv[2:]]";
    let (g, u, i) = (hex(&good), hex(&bad_udp), hex(&bad_ip));
    in_ns_ok(ns, &["python3", "-c", script, tap, &g, &u, &i]);
    let mut got = Vec::new();
    let end = Instant::now() + Duration::from_secs(5);
    while got.len() < 3 && Instant::now() < end {
        // SAFETY: no loop runs any more; this thread alone uses queue 0.
        got.extend(unsafe { uplink.rx_burst(0, 8) });
    }
    let dcfg = DecapConfig::new(VTEP_IP.parse().unwrap());
    let mut verdicts = Vec::new();
    for mut m in got {
        let offloads = m.rx_offloads();
        let which = if m.data() == &good[..] {
            "good"
        } else if m.data() == &bad_udp[..] {
            "bad_udp"
        } else if m.data() == &bad_ip[..] {
            "bad_ip"
        } else {
            continue; // anything of the kernel's own
        };
        verdicts.push((which, offloads, decap(&mut m, &dcfg).map(|d| d.is_some())));
    }
    eprintln!("net_tap receive verdicts: {verdicts:#?}");
    let ok = RxOffloads {
        ip_checksum_good: true,
        l4_checksum_good: true,
        ..RxOffloads::default()
    };
    assert_eq!(verdicts.len(), 3, "{verdicts:?}");
    assert_eq!(verdicts[0], ("good", ok, Ok(true)));
    assert_eq!(
        verdicts[1],
        (
            "bad_udp",
            RxOffloads {
                l4_checksum_good: false,
                l4_checksum_bad: true,
                ..ok
            },
            Err(DecapDrop::DeviceUdpChecksum)
        )
    );
    assert_eq!(verdicts[2].0, "bad_ip");
    assert!(verdicts[2].1.ip_checksum_bad, "{:?}", verdicts[2]);
    assert_eq!(verdicts[2].2, Err(DecapDrop::DeviceIpv4Checksum));
}

/// Templates built with the tap's offloads
/// ([`EthPort::tx_checksum_offload`]) leave the checksums to the device:
/// each encapsulated mbuf carries DPDK's request for its shape (read back
/// from `ol_flags` and `tx_offload`), the IPv4 header checksum zero and
/// the UDP field the pseudo-header's sum, and completed in software the
/// frame is what the template writes without the hint.
fn requests_from_templates(pool: &Mempool, uplink: &EthPort) {
    let off = uplink.tx_checksum_offload();
    assert_eq!(
        off,
        TxChecksumOffload {
            ipv4_header: true,
            udp: true
        }
    );
    let v4 = (VTEP_IP.parse().unwrap(), REMOTE_IP.parse().unwrap());
    let v6 = (
        "2001:db8::2".parse().unwrap(),
        "2001:db8::1".parse().unwrap(),
    );
    let cases = [
        (v4, None, UdpChecksumMode::Default, 14, 20, false, false),
        (v4, Some(7), UdpChecksumMode::Default, 18, 20, false, false),
        (v4, None, UdpChecksumMode::Compute, 14, 20, false, true),
        (v6, None, UdpChecksumMode::Default, 14, 40, true, true),
        (v6, Some(7), UdpChecksumMode::Default, 18, 40, true, true),
    ];
    for ((local, remote), vlan, udp_checksum, l2, l3, ipv6, udp) in cases {
        let plain = EncapConfig {
            underlay_vlan: vlan,
            udp_checksum,
            ..EncapConfig::new(
                local,
                remote,
                VTEP_MAC.parse().unwrap(),
                REMOTE_MAC.parse().unwrap(),
            )
        };
        let hinted = EncapConfig {
            tx_offload: off,
            ..plain
        };
        let inner = tenant_frame(VM_A, VM_B, 5);
        let mut want = pool.alloc_with(&inner).unwrap();
        EncapTemplate::new(&plain)
            .unwrap()
            .encap_flow(&mut want, VNI)
            .unwrap();
        assert_eq!(want.tx_checksums(), None, "no hint, no request");
        let t = EncapTemplate::new(&hinted).unwrap();
        let mut m = pool.alloc_with(&inner).unwrap();
        t.encap_flow(&mut m, VNI).unwrap();
        let req = m.tx_checksums().expect("a request");
        assert_eq!(Some(req), t.tx_checksums());
        assert_eq!(
            (req.l2_len, req.l3_len, req.ipv6, req.ipv4_header, req.udp),
            (l2, l3, ipv6, !ipv6, udp),
            "{vlan:?} {udp_checksum:?}"
        );
        let mut done = m.data().to_vec();
        if !ipv6 {
            let ip = usize::from(l2);
            assert_eq!(&done[ip + 10..ip + 12], &[0, 0]);
        }
        assert!(complete_tx_checksums(&mut done, req));
        assert_eq!(&done[..], want.data(), "{vlan:?} {udp_checksum:?}");
    }
}

/// [`Mbuf::request_ipv4_checksum`] on frames of each shape: IPv4 (plain,
/// 802.1Q-tagged, with options) gets its checksum zeroed and the request; anything
/// else is left alone.
fn request_by_frame_shape(pool: &Mempool) {
    let vx = from_remote(&tenant_frame(VM_B, VM_A, 1));
    assert_ne!(&vx[24..26], &[0, 0], "the encapsulation wrote a checksum");
    let mut m = pool.alloc_with(&vx).unwrap();
    assert!(m.request_ipv4_checksum());
    assert_eq!(&m.data()[24..26], &[0, 0], "zeroed for the device");
    assert_eq!(&m.data()[..24], &vx[..24]);
    assert_eq!(&m.data()[26..], &vx[26..]);
    // 802.1Q-tagged: the IPv4 header four bytes further.
    let mut tagged = vx[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
    tagged.extend_from_slice(&vx[12..]);
    let mut m = pool.alloc_with(&tagged).unwrap();
    assert!(m.request_ipv4_checksum());
    assert_eq!(&m.data()[28..30], &[0, 0]);
    assert_eq!(&m.data()[30..], &tagged[30..]);
    // A header with options (IHL 6) takes the general path.
    let mut options = vx.clone();
    options[14] = 0x46;
    let mut m = pool.alloc_with(&options).unwrap();
    assert!(m.request_ipv4_checksum());
    assert_eq!(&m.data()[24..26], &[0, 0]);
    // Just the headers (34 bytes): still a whole IPv4 header.
    let mut m = pool.alloc_with(&vx[..34]).unwrap();
    assert!(m.request_ipv4_checksum());
    assert_eq!(&m.data()[24..26], &[0, 0]);
    // Not IPv4, or not a whole header: untouched.
    let mut arp = vx.clone();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    let mut ipv6ish = vx.clone();
    ipv6ish[14] = 0x65;
    let mut short_ihl = vx.clone();
    short_ihl[14] = 0x44;
    for f in [
        arp,
        ipv6ish,
        short_ihl,
        vx[..30].to_vec(),
        vx[..13].to_vec(),
    ] {
        let mut m = pool.alloc_with(&f).unwrap();
        assert!(!m.request_ipv4_checksum(), "{f:02x?}");
        assert_eq!(m.data(), &f[..]);
    }
}
