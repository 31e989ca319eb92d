//! The inputs of the encap and decap benchmarks, shared by the criterion
//! bench (`benches/encap_decap.rs`) and the `icount` harness, so both
//! measure the same template and frames.

use vxlan_core::encap::{EncapConfig, EncapTemplate};
use vxlan_core::frame::{BufFrame, Frame};
use vxlan_core::testutil::write_inner_frame;
use vxlan_core::wire::MacAddr;

/// The remote VTEP the benchmarks encapsulate toward: 192.0.2.1 to
/// 192.0.2.2, or 2001:db8::1 to 2001:db8::2 with `ipv6`.
pub fn template(ipv6: bool) -> EncapTemplate {
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

/// A tenant frame of `inner_len` bytes (the encap input) and its
/// encapsulation through `t` with VNI 100 and source port 50000 (the decap
/// input).
pub fn frames(t: &EncapTemplate, inner_len: usize) -> (Vec<u8>, Vec<u8>) {
    let mut inner = vec![0u8; inner_len];
    write_inner_frame(
        &mut inner,
        MacAddr([2, 0, 0, 0, 0, 0xa]),
        MacAddr([2, 0, 0, 0, 0, 0xb]),
        &[],
        inner_len,
    );
    let mut one = BufFrame::with_data(vec![0u8; 2048], 128, &inner).unwrap();
    t.encap(&mut one, 100, 50000).unwrap();
    let wire = one.data().to_vec();
    (inner, wire)
}
