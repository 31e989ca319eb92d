//! ARP/RARP: parse never panics; a parsed packet re-emits byte for byte.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vxlan_core::wire::{ArpPacket, ArpRepr};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = ArpPacket::new_checked(data) {
        if let Ok(repr) = ArpRepr::parse(&p) {
            let _ = (repr.is_gratuitous(), repr.announced_mac());
            let mut out = [0u8; 28];
            repr.emit(&mut ArpPacket::new_unchecked(&mut out[..]));
            assert_eq!(&out[..], &data[..28]);
        }
    }
});
