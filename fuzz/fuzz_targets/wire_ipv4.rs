//! IPv4: checked accessors never panic; a parsed header re-emits to a
//! header that parses to the same meaning with a valid checksum.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vxlan_core::wire::{Ipv4Packet, Ipv4Repr};

fuzz_target!(|data: &[u8]| {
    let Ok(p) = Ipv4Packet::new_checked(data) else {
        return;
    };
    let _ = (
        p.payload(),
        p.options(),
        p.verify_checksum(),
        p.is_fragment(),
    );
    let Ok(repr) = Ipv4Repr::parse(&p) else {
        return;
    };
    let mut out = vec![0u8; 20 + usize::from(repr.payload_len)];
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut out[..]));
    let again = Ipv4Packet::new_checked(&out[..]).expect("emitted header is valid");
    assert!(again.verify_checksum());
    assert_eq!(Ipv4Repr::parse(&again), Ok(repr));
    // Incremental updates keep the checksum valid.
    let mut q = Ipv4Packet::new_unchecked(&mut out[..]);
    q.update_ttl(repr.ttl.wrapping_sub(1));
    q.update_total_len(q.total_len());
    assert!(Ipv4Packet::new_checked(&out[..]).unwrap().verify_checksum());
});
