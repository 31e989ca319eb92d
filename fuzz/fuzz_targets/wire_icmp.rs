//! ICMPv4, ICMPv6 and neighbour discovery: parse never panics; a parsed
//! message re-emits to one that parses to the same meaning.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vxlan_core::wire::{Icmpv4Packet, Icmpv4Repr, Icmpv6Packet, Icmpv6Repr, IpPair};

fuzz_target!(|input: ([u8; 16], [u8; 16], bool, &[u8])| {
    let (a, b, fix, data) = input;
    let ips = IpPair::V6(a.into(), b.into());
    let mut owned = data.to_vec();
    if fix {
        // Give the checksum a chance to verify so parsing goes deep.
        if let Ok(mut p) = Icmpv6Packet::new_checked(&mut owned[..]) {
            p.fill_checksum(&ips);
        }
    }
    if let Ok(p) = Icmpv6Packet::new_checked(&owned[..]) {
        if let Ok(repr) = Icmpv6Repr::parse(&p, &ips) {
            let mut out = vec![0u8; repr.buffer_len()];
            repr.emit(&mut Icmpv6Packet::new_unchecked(&mut out[..]), &ips);
            let again =
                Icmpv6Repr::parse(&Icmpv6Packet::new_checked(&out[..]).unwrap(), &ips).unwrap();
            assert_eq!(again, repr);
        }
    }
    let mut owned4 = data.to_vec();
    if fix {
        if let Ok(mut p) = Icmpv4Packet::new_checked(&mut owned4[..]) {
            p.fill_checksum();
        }
    }
    if let Ok(p) = Icmpv4Packet::new_checked(&owned4[..]) {
        if let Ok(repr) = Icmpv4Repr::parse(&p) {
            let mut out = vec![0u8; repr.buffer_len()];
            repr.emit(&mut Icmpv4Packet::new_unchecked(&mut out[..]));
            assert_eq!(
                Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&out[..]).unwrap()).unwrap(),
                repr
            );
        }
    }
});
