//! Decapsulation over arbitrary frames and configurations: never panics,
//! and what it accepts leaves exactly the inner frame. Half the inputs are
//! first encapsulated with an arbitrary template, and decapsulating them
//! must give the input back byte for byte. Those encapsulations may use a
//! template built for a device with transmit checksum offload; its frame,
//! with the checksums completed in software as the device would, must be
//! byte for byte the software template's frame.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vxlan_core::decap::{decap, DecapConfig};
use vxlan_core::encap::{
    complete_tx_checksums, DfPolicy, Dscp, EncapConfig, EncapTemplate, Ttl, TxChecksumOffload,
    UdpChecksumMode,
};
use vxlan_core::frame::{BufFrame, Frame, RxOffloads};
use vxlan_core::tunnel::ParseConfig;
use vxlan_core::wire::{MacAddr, ReservedBitsPolicy};

fuzz_target!(|input: (u16, u32, u16, &[u8])| {
    let (knobs, vni, sport, data) = input;
    let v6 = knobs & 1 != 0;
    let (l, r): (std::net::IpAddr, std::net::IpAddr) = if v6 {
        (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        )
    } else {
        ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap())
    };
    let mut parse = ParseConfig::default();
    if knobs & 2 != 0 {
        parse = parse.with_reserved_bits(ReservedBitsPolicy::Strict);
    }
    let mut cfg = DecapConfig::new(r);
    cfg.parse = parse;
    cfg.verify_ipv4_checksum = knobs & 4 == 0;
    cfg.allow_ipv6_zero_checksum = knobs & 8 != 0;
    cfg.allow_inner_vlan = knobs & 16 != 0;
    cfg.accept_multicast = knobs & 32 != 0;
    let mut storage = vec![0u8; data.len() + 256];
    let mut f = BufFrame::with_data(&mut storage[..], 128, data).unwrap();
    f.set_rx_offloads(RxOffloads {
        ip_checksum_good: knobs & 64 != 0,
        ip_checksum_bad: knobs & 16384 != 0,
        l4_checksum_bad: knobs & 32768 != 0,
        ..RxOffloads::default()
    });
    let round_trip = knobs & 128 != 0;
    if round_trip {
        let ecfg = EncapConfig {
            ttl: if knobs & 256 != 0 {
                Ttl::Inherit { default: 9 }
            } else {
                Ttl::Fixed(64)
            },
            dscp: if knobs & 512 != 0 {
                Dscp::Inherit
            } else {
                Dscp::Fixed(10)
            },
            df: if knobs & 1024 != 0 {
                DfPolicy::Inherit
            } else {
                DfPolicy::Set
            },
            udp_checksum: if knobs & 2048 != 0 {
                UdpChecksumMode::Compute
            } else {
                UdpChecksumMode::Default
            },
            underlay_mtu: 9000,
            ..EncapConfig::new(
                l,
                r,
                MacAddr([2, 0, 0, 0, 0, 1]),
                MacAddr([2, 0, 0, 0, 0, 2]),
            )
        };
        let offload = TxChecksumOffload {
            ipv4_header: knobs & 4096 != 0,
            udp: knobs & 8192 != 0,
        };
        let t = EncapTemplate::new(&EncapConfig {
            tx_offload: offload,
            ..ecfg
        })
        .unwrap();
        if t.encap(&mut f, vni, sport).is_err() {
            return;
        }
        if let Some(req) = f.tx_checksums() {
            assert!(
                complete_tx_checksums(f.data_mut(), req),
                "a request the template made completes"
            );
        }
        // The software template's frame, for comparison.
        let mut plain_storage = vec![0u8; data.len() + 256];
        let mut plain = BufFrame::with_data(&mut plain_storage[..], 128, data).unwrap();
        EncapTemplate::new(&ecfg)
            .unwrap()
            .encap(&mut plain, vni, sport)
            .unwrap();
        assert_eq!(
            f.data(),
            plain.data(),
            "offloaded and completed == software"
        );
    }
    let before = f.data().to_vec();
    match decap(&mut f, &cfg) {
        Ok(Some(info)) => {
            assert!(f.len() >= 14);
            assert!(f.len() < before.len());
            if round_trip {
                assert_eq!(info.vni, vni);
                // ECN may legitimately change the inner TOS; otherwise the
                // inner frame comes back as it went in.
                if !info.ecn_marked {
                    assert_eq!(f.data(), data);
                }
            }
        }
        Ok(None) => assert_eq!(f.data(), &before[..], "not VXLAN: untouched"),
        Err(_) => {}
    }
});
