//! A deterministic driver for instruction counting: runs one hot path a
//! given number of times so `callgrind` can count the instructions per
//! frame (see `benches/icount.sh`, which runs it twice and takes the
//! difference, cancelling the setup out). Wall-clock figures come from the
//! criterion benches; this is the A/B metric that a loaded machine does
//! not disturb.
//!
//! `cargo run --profile bench -p vxlan-benches --example icount -- WHAT V INNER N`
//! with WHAT one of `parse`, `etherparse` (the wire bench's peer), `encap`,
//! `decap`, `sport`; V `4` or `6` (the
//! underlay); INNER the inner frame length; N the number of bursts of 32.

use std::hint::black_box;

use vxlan_benches::vxlan_frame;
use vxlan_core::decap::{decap_burst, DecapConfig, DecapDrop, Decapsulated};
use vxlan_core::encap::{EncapConfig, EncapDrop, EncapTemplate};
use vxlan_core::frame::{BufFrame, Frame};
use vxlan_core::hash::{source_port, SourcePortRange};
use vxlan_core::testutil::write_inner_frame;
use vxlan_core::tunnel::{parse_single, ParseConfig};
use vxlan_core::wire::MacAddr;

const BURST: usize = 32;
const HEADROOM: usize = 128;

type Buf = Vec<u8>;

fn template(ipv6: bool) -> EncapTemplate {
    let (l, r) = if ipv6 {
        (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        )
    } else {
        ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap())
    };
    EncapTemplate::new(&EncapConfig::new(
        l,
        r,
        MacAddr([2, 0, 0, 0, 0, 1]),
        MacAddr([2, 0, 0, 0, 0, 2]),
    ))
    .unwrap()
}

/// What the wire bench's `parse_single` row measures.
#[inline(never)]
fn parse_one(frame: &[u8], config: &ParseConfig) -> u64 {
    match parse_single(frame, config) {
        Ok(Some(one)) => {
            let inner = one.inner();
            u64::from(one.vni())
                ^ u64::from(one.layer().src_port())
                ^ u64::from(inner.ethertype().0)
                ^ inner.src_addr().to_u64()
                ^ inner.dst_addr().to_u64()
        }
        Ok(None) => 1,
        Err(_) => 0,
    }
}

/// The wire bench's peer: etherparse's slicing, the VXLAN header by hand,
/// the inner Ethernet header sliced again.
#[inline(never)]
fn etherparse_one(frame: &[u8]) -> u64 {
    use etherparse::{Ethernet2Slice, SlicedPacket, TransportSlice};
    let Ok(sliced) = SlicedPacket::from_ethernet(frame) else {
        return 0;
    };
    let Some(TransportSlice::Udp(udp)) = &sliced.transport else {
        return 0;
    };
    if udp.destination_port() != 4789 {
        return 1;
    }
    let payload = udp.payload();
    if payload.len() < 8 || payload[0] & 0x08 == 0 {
        return 1;
    }
    let vni = u32::from_be_bytes([0, payload[4], payload[5], payload[6]]);
    let Ok(inner) = Ethernet2Slice::from_slice_without_fcs(&payload[8..]) else {
        return 0;
    };
    let mac = |m: [u8; 6]| u64::from_be_bytes([0, 0, m[0], m[1], m[2], m[3], m[4], m[5]]);
    u64::from(vni)
        ^ u64::from(udp.source_port())
        ^ u64::from(inner.ether_type().0)
        ^ mac(inner.source())
        ^ mac(inner.destination())
}

#[inline(never)]
fn encap_32(
    t: &EncapTemplate,
    frames: &mut [BufFrame<Buf>],
    ports: &[u16],
    verdicts: &mut [Result<(), EncapDrop>],
) -> usize {
    t.encap_burst(frames, 100, ports, verdicts)
}

#[inline(never)]
fn decap_32(
    frames: &mut [BufFrame<Buf>],
    cfg: &DecapConfig,
    verdicts: &mut [Result<Option<Decapsulated>, DecapDrop>],
) -> usize {
    decap_burst(frames, cfg, verdicts)
}

#[inline(never)]
fn sport_one(frame: &[u8]) -> u16 {
    source_port(frame, None, SourcePortRange::default())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: icount parse|etherparse|encap|decap|sport 4|6 INNER_LEN BURSTS";
    let [_, what, v, inner_len, n] = args.as_slice() else {
        panic!("{usage}");
    };
    let ipv6 = v == "6";
    let inner_len: usize = inner_len.parse().expect(usage);
    let n: usize = n.parse().expect(usage);
    let t = template(ipv6);
    let mut inner = vec![0u8; inner_len];
    write_inner_frame(
        &mut inner,
        MacAddr([2, 0, 0, 0, 0, 0xa]),
        MacAddr([2, 0, 0, 0, 0, 0xb]),
        &[],
        inner_len,
    );
    let mut one = BufFrame::with_data(vec![0u8; 2048], HEADROOM, &inner).unwrap();
    t.encap(&mut one, 100, 50000).unwrap();
    let wire = one.data().to_vec();
    let burst = |data: &[u8]| -> Vec<BufFrame<Buf>> {
        (0..BURST)
            .map(|_| BufFrame::with_data(vec![0u8; 2048], HEADROOM, data).unwrap())
            .collect()
    };
    let mut acc = 0u64;
    match what.as_str() {
        "parse" => {
            let frame = vxlan_frame(ipv6, inner_len);
            let cfg = ParseConfig::default();
            for _ in 0..n * BURST {
                acc ^= parse_one(black_box(&frame), black_box(&cfg));
            }
        }
        "etherparse" => {
            let frame = vxlan_frame(ipv6, inner_len);
            assert_eq!(
                etherparse_one(&frame),
                parse_one(&frame, &ParseConfig::default())
            );
            for _ in 0..n * BURST {
                acc ^= etherparse_one(black_box(&frame));
            }
        }
        "encap" => {
            let ports: Vec<u16> = (49152u16..).take(BURST).collect();
            let mut verdicts = [Ok(()); BURST];
            let mut frames = burst(&inner);
            for _ in 0..n {
                for f in frames.iter_mut() {
                    f.reset(HEADROOM);
                    f.append(&inner).unwrap();
                }
                let done = encap_32(&t, black_box(&mut frames), &ports, &mut verdicts);
                assert_eq!(done, BURST);
            }
        }
        "decap" => {
            let cfg = DecapConfig::new(t.remote());
            let mut verdicts = [Ok(None); BURST];
            let mut frames = burst(&wire);
            for _ in 0..n {
                for f in frames.iter_mut() {
                    f.reset(HEADROOM);
                    f.append(&wire).unwrap();
                }
                let done = decap_32(black_box(&mut frames), &cfg, &mut verdicts);
                assert_eq!(done, BURST);
            }
        }
        "sport" => {
            for _ in 0..n * BURST {
                acc ^= u64::from(sport_one(black_box(&inner)));
            }
        }
        _ => panic!("{usage}"),
    }
    black_box(acc);
}
