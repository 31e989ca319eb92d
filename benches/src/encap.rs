//! The inputs of the encap and decap benchmarks, shared by the criterion
//! bench (`benches/encap_decap.rs`) and the `icount` harness, so both
//! measure the same template and frames.

use vxlan_core::encap::{EncapConfig, EncapTemplate, TxChecksumOffload};
use vxlan_core::frame::{BufFrame, Frame};
use vxlan_core::testutil::write_inner_frame;
use vxlan_core::wire::MacAddr;

/// The remote VTEP the benchmarks encapsulate toward: 192.0.2.1 to
/// 192.0.2.2, or 2001:db8::1 to 2001:db8::2 with `ipv6`.
pub fn template(ipv6: bool) -> EncapTemplate {
    template_with(ipv6, TxChecksumOffload::NONE)
}

/// [`template`] built for a device with the transmit checksum offloads
/// `tx_offload` (its frames leave their checksums to the device).
pub fn template_with(ipv6: bool, tx_offload: TxChecksumOffload) -> EncapTemplate {
    let (l, r) = if ipv6 {
        (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        )
    } else {
        ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap())
    };
    EncapTemplate::new(&EncapConfig {
        tx_offload,
        ..EncapConfig::new(
            l,
            r,
            MacAddr([2, 0, 0, 0, 0, 1]),
            MacAddr([2, 0, 0, 0, 0, 2]),
        )
    })
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

/// The floor the encap/decap benchmark measures beside them: copy a
/// 50-byte header in front of each frame and patch a length field, nothing
/// else. Shared by the criterion bench and `examples/cold.rs`.
#[inline(never)]
pub fn floor<B: AsRef<[u8]> + AsMut<[u8]>>(frames: &mut [BufFrame<B>], header: &[u8; 50]) {
    for f in frames.iter_mut() {
        let len = f.len();
        let out = f.prepend(50).unwrap();
        out.copy_from_slice(header);
        out[16..18].copy_from_slice(&u16::try_from(len + 36).unwrap().to_be_bytes());
    }
}

/// [`floor`], then one load from each 64-byte line of the frame behind
/// the new header: the cost of bringing a whole frame in.
#[inline(never)]
pub fn floor_touch<B: AsRef<[u8]> + AsMut<[u8]>>(
    frames: &mut [BufFrame<B>],
    header: &[u8; 50],
) -> u8 {
    floor(frames, header);
    let mut sink = 0u8;
    for f in frames.iter() {
        for line in f.data().chunks(64) {
            sink ^= line[0];
        }
    }
    sink
}
