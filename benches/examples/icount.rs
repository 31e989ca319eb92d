//! A deterministic driver for instruction counting: runs one hot path a
//! given number of times so `callgrind` can count the instructions per
//! frame (see `benches/icount.sh`, which runs it twice and takes the
//! difference, cancelling the setup out). Wall-clock figures come from the
//! criterion benches; this is the A/B metric that a loaded machine does
//! not disturb.
//!
//! `cargo run --profile bench -p vxlan-benches --example icount -- WHAT V INNER N`
//! with WHAT one of `parse`, `etherparse` (the wire bench's peer), `encap`,
//! `encap_off` (the template built for a device with the transmit IPv4 and
//! UDP checksum offloads), `decap`, `sport`; V `4` or `6` (the
//! underlay); INNER the inner frame length; N the number of bursts of 32.

use std::hint::black_box;

use vxlan_benches::encap::{frames, template, template_with};
use vxlan_benches::vxlan_frame;
use vxlan_benches::wire::{
    etherparse_path as etherparse_one, ours_single as parse_one, ours_single_with as parse_with_one,
};
use vxlan_core::decap::{decap_burst, DecapConfig, DecapDrop, Decapsulated};
use vxlan_core::encap::{EncapDrop, EncapTemplate, TxChecksumOffload};
use vxlan_core::frame::BufFrame;
use vxlan_core::hash::{source_port, SourcePortRange};
use vxlan_core::tunnel::ParseConfig;

const BURST: usize = 32;
const HEADROOM: usize = 128;

type Buf = Vec<u8>;

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

/// An Ethernet/IPv6/UDP frame of `len` bytes (at least 62) for `sport 6`.
fn inner_ipv6_udp(len: usize) -> Vec<u8> {
    let len = len.max(62);
    let mut f = vec![2, 0, 0, 0, 0, 0xb, 2, 0, 0, 0, 0, 0xa, 0x86, 0xdd];
    let payload = u16::try_from(len - 54).unwrap();
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&payload.to_be_bytes());
    f.extend_from_slice(&[17, 64]);
    f.extend_from_slice(
        &"2001:db8::a"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    f.extend_from_slice(
        &"2001:db8::b"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    f.extend_from_slice(&12345u16.to_be_bytes());
    f.extend_from_slice(&80u16.to_be_bytes());
    f.extend_from_slice(&payload.to_be_bytes());
    f.resize(len, 0);
    f
}

#[inline(never)]
fn sport_one(frame: &[u8]) -> u16 {
    source_port(frame, None, SourcePortRange::default())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage =
        "usage: icount parse|parse_with|etherparse|encap|encap_off|decap|sport 4|6 INNER_LEN BURSTS";
    let [_, what, v, inner_len, n] = args.as_slice() else {
        panic!("{usage}");
    };
    let ipv6 = v == "6";
    let inner_len: usize = inner_len.parse().expect(usage);
    let n: usize = n.parse().expect(usage);
    let t = template(ipv6);
    // The tenant frame, and its encapsulated form for the decap input.
    let (inner, wire) = frames(&t, inner_len);
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
        "parse_with" => {
            let frame = vxlan_frame(ipv6, inner_len);
            let cfg = ParseConfig::default();
            for _ in 0..n * BURST {
                acc ^= parse_with_one(black_box(&frame), black_box(&cfg));
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
        "encap" | "encap_off" => {
            let t = if what == "encap_off" {
                let all = TxChecksumOffload {
                    ipv4_header: true,
                    udp: true,
                };
                let t = template_with(ipv6, all);
                assert!(t.tx_checksums().is_some());
                t
            } else {
                t
            };
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
            // V selects the inner frame here: 4 the IPv4/UDP frame above,
            // 6 the same length of Ethernet/IPv6/UDP.
            let frame = if ipv6 {
                inner_ipv6_udp(inner_len)
            } else {
                inner.clone()
            };
            for _ in 0..n * BURST {
                acc ^= u64::from(sport_one(black_box(&frame)));
            }
        }
        _ => panic!("{usage}"),
    }
    black_box(acc);
}
