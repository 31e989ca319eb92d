//! UDP: checked accessors and checksum checks never panic; filling the
//! checksum makes it verify over both pseudo-header kinds.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vxlan_core::wire::udp::{ChecksumStatus, UdpPacket, UdpRepr};
use vxlan_core::wire::IpPair;

fuzz_target!(|input: (bool, [u8; 16], [u8; 16], &[u8])| {
    let (v6, a, b, data) = input;
    let ips = if v6 {
        IpPair::V6(a.into(), b.into())
    } else {
        IpPair::V4(
            [a[0], a[1], a[2], a[3]].into(),
            [b[0], b[1], b[2], b[3]].into(),
        )
    };
    let Ok(p) = UdpPacket::new_checked(data) else {
        return;
    };
    let _ = (p.payload(), p.checksum_status(&ips), UdpRepr::parse(&p));
    let mut owned = data[..usize::from(p.len())].to_vec();
    let mut q = UdpPacket::new_unchecked(&mut owned[..]);
    q.fill_checksum(&ips);
    assert_eq!(
        UdpPacket::new_checked(&owned[..])
            .unwrap()
            .checksum_status(&ips),
        ChecksumStatus::Valid
    );
});
