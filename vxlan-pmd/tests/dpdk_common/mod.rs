//! Shared by the DPDK test binaries (each starts EAL once, in its own
//! process): the test VTEP's addresses, frames toward it, and mempool
//! helpers.

#![allow(dead_code)]

use std::net::IpAddr;

use vxlan_core::encap::{EncapConfig, EncapTemplate};
use vxlan_core::frame::{BufFrame, Frame};
use vxlan_core::wire::MacAddr;
use vxlan_pmd::dpdk::Mempool;

pub const VTEP_IP: &str = "192.0.2.2";
pub const VTEP_MAC: &str = "02:00:00:00:00:02";
pub const REMOTE_IP: &str = "192.0.2.1";
pub const REMOTE_MAC: &str = "02:00:00:00:00:01";
/// A tenant VM behind our access port.
pub const VM_A: [u8; 6] = [0x02, 0, 0, 0, 0xaa, 0x01];
/// A tenant VM behind the remote VTEP.
pub const VM_B: [u8; 6] = [0x02, 0, 0, 0, 0xbb, 0x02];
pub const VNI: u32 = 100;

/// A 64-byte tenant IPv4/UDP frame from `src` to `dst` whose UDP payload
/// starts with `seq`.
pub fn tenant_frame(src: [u8; 6], dst: [u8; 6], seq: u32) -> Vec<u8> {
    let mut payload = [0u8; 22];
    payload[..4].copy_from_slice(&seq.to_be_bytes());
    let mut out = Vec::new();
    etherparse::PacketBuilder::ethernet2(src, dst)
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(1000 + (seq % 1000) as u16, 2000)
        .write(&mut out, &payload)
        .unwrap();
    assert_eq!(out.len(), 64);
    out
}

/// `inner` encapsulated by the remote VTEP toward ours (VNI 100).
pub fn from_remote(inner: &[u8]) -> Vec<u8> {
    let cfg = EncapConfig::new(
        REMOTE_IP.parse::<IpAddr>().unwrap(),
        VTEP_IP.parse::<IpAddr>().unwrap(),
        REMOTE_MAC.parse::<MacAddr>().unwrap(),
        VTEP_MAC.parse::<MacAddr>().unwrap(),
    );
    let t = EncapTemplate::new(&cfg).unwrap();
    let mut storage = vec![0u8; 256 + inner.len()];
    let mut f = BufFrame::with_data(&mut storage[..], 128, inner).unwrap();
    t.encap_flow(&mut f, VNI).unwrap();
    f.data().to_vec()
}

/// The VTEP configuration the tests use; `ports` is the `[[port]]` and
/// `[dpdk]` text.
pub fn config(ports: &str) -> String {
    format!(
        r#"
        [vtep]
        local_ip = "{VTEP_IP}"
        mac = "{VTEP_MAC}"
        [underlay]
        port = "uplink"
        gateway_mac = "{REMOTE_MAC}"
        [[vni]]
        id = {VNI}
        flood = ["{REMOTE_IP}"]
        {ports}
        "#
    )
}

/// Writes `frame` into every mbuf of `pool` at the default data offset.
/// A net_null receive queue hands out mbufs without touching their data, so
/// every frame it "receives" from this pool is `frame` (our pipeline only
/// writes into the headroom or moves the data offset, which keeps it so).
pub fn prefill(pool: &Mempool, frame: &[u8]) {
    let mut all = Vec::with_capacity(pool.capacity());
    while let Some(m) = pool.alloc_with(frame) {
        all.push(m);
    }
    assert_eq!(all.len(), pool.capacity(), "every mbuf prefilled");
    drop(all);
    assert_eq!(pool.in_use(), 0);
}
