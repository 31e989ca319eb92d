//! Ethernet and VLAN tags: parse never panics; what parses re-emits to the
//! same header bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vxlan_core::wire::{EthernetFrame, EthernetRepr, L2Header};

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = EthernetFrame::new_checked(data) {
        let repr = EthernetRepr::parse(&frame).expect("checked frame parses");
        let _ = frame.payload();
        let mut out = [0u8; 14];
        repr.emit(&mut EthernetFrame::new_unchecked(&mut out[..]));
        assert_eq!(&out[..], &data[..14]);
    }
    if let Ok(l2) = L2Header::parse(data) {
        let len = l2.header_len();
        assert!(len <= data.len());
        let mut out = [0u8; 22];
        l2.emit(&mut out[..len]);
        assert_eq!(L2Header::parse(&out[..len]), Ok(l2));
        // TPIDs, VIDs, PCP and DEI survive; nothing else is in the header.
        assert_eq!(&out[..len], &data[..len]);
    }
});
