//! VXLAN, GPE and GBP headers under both reserved-bit policies: parse
//! never panics, strict accepts only what ignore accepts, and what parses
//! re-emits to a header that parses the same under strict.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vxlan_core::wire::{GbpRepr, GpeRepr, ReservedBitsPolicy as P, VxlanHeader, VxlanRepr};

fuzz_target!(|data: &[u8]| {
    let Ok(h) = VxlanHeader::new_checked(data) else {
        return;
    };
    let mut out = [0u8; 8];
    if let Ok(r) = VxlanRepr::parse(&h, P::Ignore) {
        r.emit(&mut VxlanHeader::new_unchecked(&mut out[..]));
        assert_eq!(
            VxlanRepr::parse(&VxlanHeader::new_unchecked(&out[..]), P::Strict),
            Ok(r)
        );
    } else {
        assert!(VxlanRepr::parse(&h, P::Strict).is_err());
    }
    if let Ok(r) = GpeRepr::parse(&h, P::Ignore) {
        r.emit(&mut VxlanHeader::new_unchecked(&mut out[..]));
        assert_eq!(
            GpeRepr::parse(&VxlanHeader::new_unchecked(&out[..]), P::Strict),
            Ok(r)
        );
    } else {
        assert!(GpeRepr::parse(&h, P::Strict).is_err());
    }
    if let Ok(r) = GbpRepr::parse(&h, P::Ignore) {
        r.emit(&mut VxlanHeader::new_unchecked(&mut out[..]));
        assert_eq!(
            GbpRepr::parse(&VxlanHeader::new_unchecked(&out[..]), P::Strict),
            Ok(r)
        );
    } else {
        assert!(GbpRepr::parse(&h, P::Strict).is_err());
    }
});
