//! Flow-hashing benchmarks, each beside a peer in the same run:
//!
//! * Toeplitz (table) on the IPv4 and IPv6 RSS 4-tuple inputs, beside the
//!   bit-by-bit reference;
//! * CRC32C on 16, 64 and 1500 bytes, table (slicing-by-8) and SSE4.2,
//!   beside `crc32fast` (CRC32/IEEE, a different polynomial, the standard
//!   fast Rust CRC);
//! * the RFC 7348 source-port hash on 64-byte IPv4/TCP and IPv6/UDP inner
//!   frames with the multiply-xor mixer, beside CRC32C over the same fields
//!   and std's `DefaultHasher` (SipHash-1-3) over the same fields.
//!
//! Run: `cargo bench -p vxlan-benches --bench hash -- --warm-up-time 1 --measurement-time 3`

use std::hash::{DefaultHasher, Hash, Hasher};
use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};

use criterion::{BenchmarkId, Criterion, Throughput};
use vxlan_core::hash::{
    crc32c_portable, source_port, toeplitz_hash, FlowKey, SourcePortRange, Toeplitz, MICROSOFT_KEY,
};

/// 64-byte Ethernet + IPv4 + TCP frame (10 payload bytes).
fn ipv4_tcp_frame() -> Vec<u8> {
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x00]);
    f.extend_from_slice(&[0x45, 0, 0, 50, 0, 1, 0x40, 0, 64, 6, 0, 0]);
    f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&443u16.to_be_bytes());
    f.extend_from_slice(&[0u8; 16]);
    f.resize(64, 0xab);
    f
}

/// 64-byte Ethernet + IPv6 + UDP frame (2 payload bytes).
fn ipv6_udp_frame() -> Vec<u8> {
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x86, 0xdd]);
    f.extend_from_slice(&[0x60, 0, 0, 0, 0, 10, 17, 64]);
    f.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
    f.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&4789u16.to_be_bytes());
    f.extend_from_slice(&[0, 10, 0, 0]);
    f.resize(64, 0xab);
    f
}

fn bench_toeplitz(c: &mut Criterion) {
    let t = Box::new(Toeplitz::microsoft());
    let mut g = c.benchmark_group("toeplitz");
    let (s4, d4) = (
        Ipv4Addr::new(66, 9, 149, 187),
        Ipv4Addr::new(161, 142, 100, 80),
    );
    let s6: Ipv6Addr = "3ffe:2501:200:1fff::7".parse().unwrap();
    let d6: Ipv6Addr = "3ffe:2501:200:3::1".parse().unwrap();

    g.bench_function("ipv4_4tuple/table", |b| {
        b.iter(|| {
            t.hash_ipv4_ports(
                black_box(s4),
                black_box(d4),
                black_box(2794),
                black_box(1766),
            )
        });
    });
    let mut in4 = Vec::new();
    in4.extend_from_slice(&s4.octets());
    in4.extend_from_slice(&d4.octets());
    in4.extend_from_slice(&2794u16.to_be_bytes());
    in4.extend_from_slice(&1766u16.to_be_bytes());
    g.bench_function("ipv4_4tuple/bitwise", |b| {
        b.iter(|| toeplitz_hash(&MICROSOFT_KEY, black_box(&in4)));
    });

    g.bench_function("ipv6_4tuple/table", |b| {
        b.iter(|| {
            t.hash_ipv6_ports(
                black_box(s6),
                black_box(d6),
                black_box(2794),
                black_box(1766),
            )
        });
    });
    let mut in6 = Vec::new();
    in6.extend_from_slice(&s6.octets());
    in6.extend_from_slice(&d6.octets());
    in6.extend_from_slice(&2794u16.to_be_bytes());
    in6.extend_from_slice(&1766u16.to_be_bytes());
    g.bench_function("ipv6_4tuple/bitwise", |b| {
        b.iter(|| toeplitz_hash(&MICROSOFT_KEY, black_box(&in6)));
    });
    g.finish();
}

fn bench_crc32c(c: &mut Criterion) {
    let mut g = c.benchmark_group("crc32c");
    let data: Vec<u8> = (0..1500u32).map(|i| i.to_le_bytes()[0] ^ 0x5a).collect();
    #[cfg(target_arch = "x86_64")]
    let has_sse42 = std::is_x86_feature_detected!("sse4.2");
    for len in [16usize, 64, 1500] {
        let d = &data[..len];
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_with_input(BenchmarkId::new("table", len), d, |b, d| {
            b.iter(|| crc32c_portable(0, black_box(d)));
        });
        #[cfg(target_arch = "x86_64")]
        if has_sse42 {
            g.bench_with_input(BenchmarkId::new("sse42", len), d, |b, d| {
                // SAFETY: SSE4.2 was detected at run time above.
                b.iter(|| unsafe { vxlan_core::hash::crc32c_hw(0, black_box(d)) });
            });
        }
        g.bench_with_input(BenchmarkId::new("crc32fast_ieee", len), d, |b, d| {
            b.iter(|| crc32fast::hash(black_box(d)));
        });
    }
    g.finish();
}

fn bench_source_port(c: &mut Criterion) {
    let mut g = c.benchmark_group("source_port");
    let range = SourcePortRange::default();
    #[cfg(target_arch = "x86_64")]
    let has_sse42 = std::is_x86_feature_detected!("sse4.2");
    for (name, frame) in [
        ("ipv4_tcp_64", ipv4_tcp_frame()),
        ("ipv6_udp_64", ipv6_udp_frame()),
    ] {
        let f = frame.as_slice();
        g.bench_with_input(BenchmarkId::new("mix", name), f, |b, f| {
            b.iter(|| source_port(black_box(f), None, range));
        });
        g.bench_with_input(BenchmarkId::new("extract_only", name), f, |b, f| {
            b.iter(|| FlowKey::extract(black_box(f)));
        });
        g.bench_with_input(BenchmarkId::new("crc32c_table", name), f, |b, f| {
            b.iter(|| {
                range.map(crc32c_portable(
                    0,
                    &FlowKey::extract(black_box(f)).to_bytes(),
                ))
            });
        });
        #[cfg(target_arch = "x86_64")]
        if has_sse42 {
            g.bench_with_input(BenchmarkId::new("crc32c_sse42", name), f, |b, f| {
                b.iter(|| {
                    let bytes = FlowKey::extract(black_box(f)).to_bytes();
                    // SAFETY: SSE4.2 was detected at run time above.
                    range.map(unsafe { vxlan_core::hash::crc32c_hw(0, &bytes) })
                });
            });
        }
        g.bench_with_input(BenchmarkId::new("siphash_std", name), f, |b, f| {
            b.iter(|| {
                let mut h = DefaultHasher::new();
                FlowKey::extract(black_box(f)).words().hash(&mut h);
                let [b0, b1, b2, b3, ..] = h.finish().to_le_bytes();
                range.map(u32::from_le_bytes([b0, b1, b2, b3]))
            });
        });
        g.bench_with_input(BenchmarkId::new("rss_given", name), f, |b, f| {
            b.iter(|| source_port(black_box(f), Some(black_box(0xdead_beef)), range));
        });
    }

    // 256 distinct IPv4/TCP flows per iteration: no single-flow branch or
    // cache luck.
    let base = ipv4_tcp_frame();
    let frames: Vec<Vec<u8>> = (0..256u16)
        .map(|i| {
            let mut f = base.clone();
            f[34..36].copy_from_slice(&(1024 + i * 97).to_be_bytes());
            f[29] = f[29].wrapping_add(i.to_le_bytes()[0]);
            f
        })
        .collect();
    g.throughput(Throughput::Elements(frames.len() as u64));
    g.bench_function("mix/ipv4_tcp_64_x256_flows", |b| {
        b.iter(|| {
            let mut acc = 0u32;
            for f in &frames {
                acc = acc.wrapping_add(u32::from(source_port(black_box(f), None, range)));
            }
            acc
        });
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_toeplitz(&mut c);
    bench_crc32c(&mut c);
    bench_source_port(&mut c);
    c.final_summary();
}
