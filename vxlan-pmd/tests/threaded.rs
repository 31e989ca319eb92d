//! Two VTEPs on worker threads, joined underlay to underlay by an
//! in-memory wire, with hosts on in-memory access ports: frames flood,
//! learn and then go unicast across the overlay while the workers run, the
//! control thread changes the flood list under them, and at the end every
//! buffer is back in the pool.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vxlan_core::bridge::{BdConfig, PortMode};
use vxlan_core::decap::DecapConfig;
use vxlan_core::encap::{EncapConfig, EncapTemplate};
use vxlan_core::fdb::Location;
use vxlan_core::frame::Frame;
use vxlan_core::testutil::write_inner_frame;
use vxlan_core::wire::MacAddr;
use vxlan_pmd::memport::{pair, MemPort};
use vxlan_pmd::pool::Pool;
use vxlan_pmd::port::Port;
use vxlan_pmd::run::PortLoop;
use vxlan_pmd::vtep::{RemoteVtep, Sizing, Snapshot, VtepShared};
use vxlan_pmd::worker::Workers;

fn ip(i: u8) -> IpAddr {
    IpAddr::from([10, 0, i, 1])
}

fn snapshot(me: u8, other: u8, flood: &[u32]) -> Snapshot {
    let t = EncapTemplate::new(&EncapConfig::new(
        ip(me),
        ip(other),
        MacAddr([2, 0xa, 0, 0, 0, me]),
        MacAddr([2, 0xa, 0, 0, 0, other]),
    ))
    .unwrap();
    Snapshot {
        ports: vec![PortMode::Underlay, PortMode::access(0)],
        bds: vec![BdConfig::new(100, flood)],
        remotes: vec![RemoteVtep {
            ip: ip(other),
            template: t,
        }],
        decap: DecapConfig::new(ip(me)),
        underlay: Some(0),
        suppress_arp_nd: false,
    }
}

fn frame(dst: MacAddr, src: MacAddr) -> Vec<u8> {
    let mut f = vec![0u8; 80];
    write_inner_frame(&mut f, src, dst, &[], 80);
    f
}

fn recv_within(port: &mut MemPort, d: Duration) -> Option<Vec<u8>> {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if let Some(p) = port.recv() {
            return Some(p.data().to_vec());
        }
        std::thread::yield_now();
    }
    None
}

#[test]
fn two_vteps_on_worker_threads() {
    let pool = Pool::new(1024, 2048, 128).unwrap();
    let a = VtepShared::new(snapshot(1, 2, &[0]), Arc::clone(&pool), Sizing::default()).unwrap();
    let b = VtepShared::new(snapshot(2, 1, &[0]), Arc::clone(&pool), Sizing::default()).unwrap();
    let (wire_a, wire_b) = pair(Arc::clone(&pool), "a-underlay", "b-underlay", 256);
    let (host1, access_a) = pair(Arc::clone(&pool), "host1", "a-access", 256);
    let (host2, access_b) = pair(Arc::clone(&pool), "host2", "b-access", 256);
    let (mut host1, mut host2) = (host1, host2);
    let mut loops = vec![
        Some(PortLoop::new(
            a.worker(0),
            vec![Box::new(wire_a) as Box<dyn Port>, Box::new(access_a)],
        )),
        Some(PortLoop::new(
            b.worker(0),
            vec![Box::new(wire_b) as Box<dyn Port>, Box::new(access_b)],
        )),
    ];
    let workers = Workers::spawn(2, true, |i| {
        let mut l = loops[i].take().expect("one loop per worker");
        move |_ctx: &vxlan_pmd::worker::WorkerCtx| l.poll()
    })
    .unwrap();

    let (m1, m2) = (MacAddr([2, 0, 0, 0, 1, 1]), MacAddr([2, 0, 0, 0, 2, 2]));
    // Unknown destination: flooded across the overlay to host 2.
    host1.send(&frame(m2, m1)).unwrap();
    let got = recv_within(&mut host2, Duration::from_secs(5)).expect("flooded to host 2");
    assert_eq!(got, frame(m2, m1));
    // Host 2 answers; it goes unicast to host 1, learned behind VTEP A.
    host2.send(&frame(m1, m2)).unwrap();
    assert_eq!(
        recv_within(&mut host1, Duration::from_secs(5)).unwrap(),
        frame(m1, m2)
    );
    assert_eq!(b.fdb().lookup(0, m1).unwrap().location, Location::Remote(0));
    assert_eq!(a.fdb().lookup(0, m2).unwrap().location, Location::Remote(0));
    // 200 more each way, all delivered, in order.
    for i in 0..200u8 {
        let mut f = frame(m2, m1);
        f[70] = i;
        host1.send(&f).unwrap();
        let got = recv_within(&mut host2, Duration::from_secs(5)).expect("delivered");
        assert_eq!(got[70], i);
    }
    // The control thread empties A's flood list while the workers run:
    // unknown unicast from host 1 no longer crosses.
    a.update(snapshot(1, 2, &[])).unwrap();
    let flooded_before = b.stats().rx;
    host1.send(&frame(MacAddr([2, 0, 0, 0, 9, 9]), m1)).unwrap();
    assert!(recv_within(&mut host2, Duration::from_millis(300)).is_none());
    assert_eq!(b.stats().rx, flooded_before, "nothing reached VTEP B");
    workers.stop_and_join().unwrap();
    drop(loops);
    drop((host1, host2));
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!(sa.drops() + sb.drops(), 0, "{sa:?} {sb:?}");
    assert_eq!(pool.in_use(), 0, "every buffer back in the pool");
}
