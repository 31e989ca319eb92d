//! IPv6: the extension-header walk never panics and stays inside the
//! payload; the fixed header round-trips.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vxlan_core::wire::{Ipv6Packet, Ipv6Repr};

fuzz_target!(|data: &[u8]| {
    let Ok(p) = Ipv6Packet::new_checked(data) else {
        return;
    };
    if let Ok(up) = p.upper_layer() {
        assert!(up.offset <= 40 + usize::from(p.payload_len()));
    }
    let Ok(repr) = Ipv6Repr::parse(&p) else {
        return;
    };
    let mut out = [0u8; 40];
    repr.emit(&mut Ipv6Packet::new_unchecked(&mut out[..]));
    assert_eq!(&out[..], &data[..40]);
});
