//! The control socket changing a VTEP whose worker thread keeps forwarding:
//! `remote add`, `fdb add`, `fdb del` and `remote del` over the socket
//! take effect for the frames that follow them, with no restart, while two
//! unaffected flows (a unicast stream to a static entry in VNI 100 and
//! broadcasts in VNI 200) lose nothing and stay in order.

use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use vxlan_core::frame::Frame;
use vxlan_core::testutil::write_inner_frame;
use vxlan_core::tunnel::{parse_single, ParseConfig};
use vxlan_core::wire::MacAddr;
use vxlan_pmd::config::VtepConfig;
use vxlan_pmd::control::{spawn, Control};
use vxlan_pmd::memport::{pair, MemPort};
use vxlan_pmd::pool::Pool;
use vxlan_pmd::port::Port;
use vxlan_pmd::run::PortLoop;
use vxlan_pmd::vtep::VtepShared;
use vxlan_pmd::worker::Workers;

const CONFIG: &str = r#"
[vtep]
local_ip = "10.0.1.1"
mac = "02:0a:00:00:00:01"

[underlay]
port = "uplink"
gateway_mac = "02:0a:00:00:00:fe"

[[port]]
name = "uplink"
kind = "memory"

[[port]]
name = "vm1"
kind = "memory"
access = { vni = 100 }

[[port]]
name = "vm2"
kind = "memory"
access = { vni = 200 }

[[vni]]
id = 100
flood = ["10.0.2.1"]

[[vni]]
id = 200
flood = ["10.0.3.1"]

[[fdb]]
vni = 100
mac = "02:00:00:00:aa:01"
remote = "10.0.2.1"
"#;

const VM1: MacAddr = MacAddr([2, 0, 0, 0, 1, 1]);
const VM2: MacAddr = MacAddr([2, 0, 0, 0, 2, 2]);
const STATIC_A: MacAddr = MacAddr([2, 0, 0, 0, 0xaa, 1]);
const X: MacAddr = MacAddr([2, 0, 0, 0, 0x99, 9]);

fn frame(dst: MacAddr, src: MacAddr, seq: u16) -> Vec<u8> {
    let mut f = vec![0u8; 80];
    write_inner_frame(&mut f, src, dst, &[], 80);
    f[70..72].copy_from_slice(&seq.to_be_bytes());
    f
}

struct Rig {
    shared: Arc<VtepShared>,
    wire: MemPort,
    vm1: MemPort,
    vm2: MemPort,
    ctl: BufReader<UnixStream>,
    seq: u16,
    sent_vni200: u16,
}

impl Rig {
    fn ctl(&mut self, req: &str) -> Value {
        self.ctl
            .get_mut()
            .write_all(format!("{req}\n").as_bytes())
            .unwrap();
        let mut line = String::new();
        self.ctl.read_line(&mut line).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["ok"], true, "{req}: {v}");
        v["result"].clone()
    }

    fn vm1(&mut self, dst: MacAddr) {
        self.seq += 1;
        self.vm1.send(&frame(dst, VM1, self.seq)).unwrap();
    }

    /// A VNI 200 broadcast from the last port the worker polls: once it is
    /// processed, every frame sent after it sees the configuration that
    /// was published before it.
    fn barrier(&mut self) {
        self.sent_vni200 += 1;
        let before = self.shared.stats().rx;
        self.vm2
            .send(&frame(MacAddr::BROADCAST, VM2, self.sent_vni200))
            .unwrap();
        let until = Instant::now() + Duration::from_secs(5);
        while self.shared.stats().rx == before {
            assert!(Instant::now() < until, "worker stalled");
            std::thread::yield_now();
        }
    }

    /// The next `n` encapsulated frames: (outer destination, VNI, inner
    /// destination MAC, sequence number).
    fn take(&mut self, n: usize) -> Vec<(IpAddr, u32, MacAddr, u16)> {
        let mut out = Vec::new();
        let until = Instant::now() + Duration::from_secs(5);
        while out.len() < n {
            assert!(
                Instant::now() < until,
                "only {} of {n} frames: {out:?}",
                out.len()
            );
            let Some(p) = self.wire.recv() else {
                std::thread::yield_now();
                continue;
            };
            let vx = parse_single(p.data(), &ParseConfig::default())
                .unwrap()
                .unwrap();
            let inner = vx.inner().bytes();
            out.push((
                vx.layer().dst_addr(),
                vx.vni(),
                MacAddr::from_bytes(&inner[..6]),
                u16::from_be_bytes([inner[70], inner[71]]),
            ));
        }
        out
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Splits frames into the unaffected flows and the rest, checking the
/// unaffected ones: VNI 100 unicast to the static entry only ever to
/// 10.0.2.1, VNI 200 broadcasts only ever to 10.0.3.1.
fn split(
    frames: Vec<(IpAddr, u32, MacAddr, u16)>,
    a_seqs: &mut Vec<u16>,
    b_seqs: &mut Vec<u16>,
) -> Vec<(IpAddr, MacAddr)> {
    let mut rest = Vec::new();
    for (dst, vni, inner, seq) in frames {
        match (vni, inner) {
            (100, STATIC_A) => {
                assert_eq!(dst, ip("10.0.2.1"));
                a_seqs.push(seq);
            }
            (200, _) => {
                assert_eq!(dst, ip("10.0.3.1"));
                b_seqs.push(seq);
            }
            (100, _) => rest.push((dst, inner)),
            other => panic!("unexpected {other:?}"),
        }
    }
    // Sorted by destination, then MAC bytes (X before broadcast).
    rest.sort_by_key(|(d, m)| (d.to_string(), m.0));
    rest
}

#[test]
fn control_changes_take_effect_while_the_worker_forwards() {
    let cfg = VtepConfig::from_toml_str(CONFIG).unwrap();
    let pool = Pool::new(8192, 2048, 128).unwrap();
    let shared = vxlan_pmd::build::vtep(&cfg, Arc::clone(&pool)).unwrap();
    let (wire, uplink) = pair(Arc::clone(&pool), "wire", "uplink", 4096);
    let (vm1, port1) = pair(Arc::clone(&pool), "vm1-host", "vm1", 4096);
    let (vm2, port2) = pair(Arc::clone(&pool), "vm2-host", "vm2", 4096);
    let mut lp = Some(PortLoop::new(
        shared.worker(0),
        vec![
            Box::new(uplink) as Box<dyn Port>,
            Box::new(port1),
            Box::new(port2),
        ],
    ));
    let workers = Workers::spawn(1, false, |_| {
        let mut l = lp.take().unwrap();
        move |_: &vxlan_pmd::worker::WorkerCtx| l.poll()
    })
    .unwrap();
    let dir = std::env::temp_dir().join(format!("vxctl-live-{}", std::process::id()));
    let path = dir.join("ctl.sock");
    let server = spawn(&path, Control::from_config(&cfg, Arc::clone(&shared))).unwrap();
    let mut rig = Rig {
        shared: Arc::clone(&shared),
        wire,
        vm1,
        vm2,
        ctl: BufReader::new(UnixStream::connect(&path).unwrap()),
        seq: 0,
        sent_vni200: 0,
    };
    let (mut a_seqs, mut b_seqs) = (Vec::new(), Vec::new());

    // Phase 1: flood list [10.0.2.1].
    for _ in 0..100 {
        rig.vm1(STATIC_A);
    }
    rig.vm1(MacAddr::BROADCAST);
    rig.barrier();
    let f = rig.take(102);
    assert_eq!(
        split(f, &mut a_seqs, &mut b_seqs),
        [(ip("10.0.2.1"), MacAddr::BROADCAST)]
    );

    // Phase 2: 10.0.2.9 joins VNI 100; broadcasts and the unknown X reach
    // both.
    let r = rig.ctl(r#"{"cmd": "remote add", "vni": 100, "ip": "10.0.2.9"}"#);
    assert_eq!(r["flood"], serde_json::json!(["10.0.2.1", "10.0.2.9"]));
    rig.barrier();
    for i in 0..100 {
        rig.vm1(STATIC_A);
        if i % 50 == 0 {
            rig.vm1(MacAddr::BROADCAST);
            rig.vm1(X);
        }
    }
    let f = rig.take(1 + 100 + 8);
    assert_eq!(
        split(f, &mut a_seqs, &mut b_seqs),
        [
            (ip("10.0.2.1"), X),
            (ip("10.0.2.1"), X),
            (ip("10.0.2.1"), MacAddr::BROADCAST),
            (ip("10.0.2.1"), MacAddr::BROADCAST),
            (ip("10.0.2.9"), X),
            (ip("10.0.2.9"), X),
            (ip("10.0.2.9"), MacAddr::BROADCAST),
            (ip("10.0.2.9"), MacAddr::BROADCAST),
        ]
    );

    // Phase 3: X is pinned behind 10.0.2.9: unicast to it alone.
    rig.ctl(r#"{"cmd": "fdb add", "vni": 100, "mac": "02:00:00:00:99:09", "remote": "10.0.2.9"}"#);
    rig.barrier();
    for i in 0..100 {
        rig.vm1(STATIC_A);
        if i % 25 == 0 {
            rig.vm1(X);
        }
    }
    let f = rig.take(1 + 100 + 4);
    assert_eq!(split(f, &mut a_seqs, &mut b_seqs), [(ip("10.0.2.9"), X); 4]);

    // Phase 4: X's entry and 10.0.2.9 go; X floods to 10.0.2.1 alone.
    rig.ctl(r#"{"cmd": "fdb del", "vni": 100, "mac": "02:00:00:00:99:09"}"#);
    rig.ctl(r#"{"cmd": "remote del", "vni": 100, "ip": "10.0.2.9"}"#);
    rig.barrier();
    for i in 0..100 {
        rig.vm1(STATIC_A);
        if i % 50 == 0 {
            rig.vm1(X);
        }
    }
    rig.barrier();
    let f = rig.take(2 + 100 + 2);
    assert_eq!(split(f, &mut a_seqs, &mut b_seqs), [(ip("10.0.2.1"), X); 2]);

    // The unaffected flows: every frame, in order.
    assert_eq!(a_seqs.len(), 400);
    assert!(a_seqs.windows(2).all(|w| w[0] < w[1]), "in order");
    assert_eq!(b_seqs, (1..=rig.sent_vni200).collect::<Vec<_>>());
    std::thread::sleep(Duration::from_millis(50));
    assert!(rig.wire.recv().is_none(), "nothing more was sent");
    let stats = rig.ctl(r#"{"cmd": "stats"}"#);
    assert_eq!(stats["total"]["drops_total"], 0, "{stats}");
    assert_eq!(stats["vnis"][1]["total"]["flooded"], rig.sent_vni200);

    workers.stop_and_join().unwrap();
    drop(rig);
    drop(server);
    drop(lp);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(pool.in_use(), 0, "every buffer back in the pool");
}
