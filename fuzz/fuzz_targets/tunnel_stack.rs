//! The tunnel-stack parser over arbitrary frames and configurations: never
//! panics, every offset it reports lies inside the frame, and the
//! single-layer decap entry points (`parse_single`, `parse_single_with`)
//! agree with the full walker.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vxlan_core::tunnel::{parse_single, parse_single_with, ParseConfig, SingleLayer, TunnelStack};
use vxlan_core::wire::{MacAddr, ReservedBitsPolicy};

fuzz_target!(|input: (u8, u16, &[u8])| {
    let (knobs, extra_port, frame) = input;
    let mut cfg = ParseConfig::default();
    if knobs & 1 != 0 {
        cfg = cfg.with_reserved_bits(ReservedBitsPolicy::Strict);
    }
    if knobs & 2 != 0 {
        cfg = cfg.with_gbp(true);
    }
    if knobs & 4 != 0 {
        if let Ok(c) = cfg.with_vxlan_port(extra_port) {
            cfg = c;
        }
    }
    let depth = 1 + (knobs >> 3) % 4;
    let deep = cfg.with_max_depth(depth).unwrap();
    if let Ok(stack) = TunnelStack::parse(frame, &deep) {
        assert!(stack.depth() <= usize::from(depth));
        for l in stack.layers() {
            assert!(l.ethernet_offset() < l.ip_offset() && l.ip_offset() < l.udp_offset());
            assert!(l.payload_offset() <= l.end() && l.end() <= frame.len());
            let _ = (
                l.src_addr(),
                l.dst_addr(),
                l.header(),
                l.vni(),
                l.outer_vids(),
                l.payload(),
            );
        }
        if let Some(inner) = stack.inner() {
            assert!(
                inner.offset() + inner.header_len() <= inner.end() && inner.end() <= frame.len()
            );
            let _ = (
                inner.src_addr(),
                inner.dst_addr(),
                inner.l2(),
                inner.bytes(),
            );
        }
    }
    // Everything a decap reads from a single-layer parse.
    let seen = |s: &SingleLayer<'_>| {
        let (l, i) = (s.layer(), s.inner());
        (
            (
                s.vni(),
                l.src_port(),
                l.udp_offset(),
                l.end(),
                l.is_ipv6(),
                l.raw_header(),
            ),
            (
                i.offset(),
                i.end(),
                i.ethertype(),
                i.vids().to_vec(),
                i.src_addr(),
                i.dst_addr(),
            ),
        )
    };
    let single = parse_single(frame, &cfg);
    let with = parse_single_with(frame, &cfg, |r| r.map(|o| o.map(|s| seen(&s))));
    assert_eq!(
        single.map(|o| o.map(|s| seen(&s))),
        with,
        "parse_single_with differs"
    );
    let one = TunnelStack::parse(frame, &cfg);
    match (single, one) {
        (Ok(Some(s)), Ok(t)) => {
            let l = t.layer(0).expect("same layer");
            assert_eq!(
                (s.vni(), s.layer().udp_offset(), s.layer().end()),
                (l.vni(), l.udp_offset(), l.end())
            );
            let inner = s.inner();
            assert_eq!(inner.offset(), t.inner().expect("inner").offset());
            let at = inner.offset();
            assert_eq!(
                (inner.dst_addr(), inner.src_addr()),
                (
                    MacAddr::from_bytes(&frame[at..]),
                    MacAddr::from_bytes(&frame[at + 6..])
                )
            );
        }
        (Ok(None), Ok(t)) => assert!(t.inner().is_none()),
        (Err(a), Err(b)) => assert_eq!(a, b),
        (a, b) => panic!(
            "parse_single {:?} vs TunnelStack {:?}",
            a.map(|s| s.is_some()),
            b.map(|t| t.depth())
        ),
    }
});
