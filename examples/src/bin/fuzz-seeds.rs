//! `fuzz-seeds CAPTURE_DIR CORPUS_DIR`: cuts every frame of every capture
//! under CAPTURE_DIR into the slices each fuzz target takes (whole frame,
//! IP packet, UDP datagram, VXLAN header, inner ARP/ICMP), and writes them
//! as seed files under `CORPUS_DIR/<target>/`, so the fuzzers start from real
//! traffic.

use std::path::{Path, PathBuf};

use vxlan_core::tunnel::{ParseConfig, TunnelStack};
use vxlan_core::wire::EtherType;

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
            out.push(p);
        }
    }
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, captures, corpus] = &args[..] else {
        eprintln!("usage: fuzz-seeds CAPTURE_DIR CORPUS_DIR");
        std::process::exit(2);
    };
    let mut files = Vec::new();
    walk(Path::new(captures), &mut files);
    files.sort();
    let cfg = ParseConfig::default()
        .with_vxlan_port(8472)
        .unwrap()
        .with_max_depth(4)
        .unwrap();
    let mut n = 0usize;
    let mut seed = |target: &str, bytes: &[u8]| -> std::io::Result<()> {
        let dir = Path::new(corpus).join(target);
        std::fs::create_dir_all(&dir)?;
        n += 1;
        std::fs::write(dir.join(format!("seed-{n:05}")), bytes)
    };
    for f in &files {
        let Ok(packets) = vxlan_pmd::pcap::read_file(f) else {
            continue;
        };
        for p in packets {
            let d = &p.data;
            seed("tunnel_stack", d)?;
            seed("wire_ethernet", d)?;
            let Ok(stack) = TunnelStack::parse(d, &cfg) else {
                continue;
            };
            for l in stack.layers() {
                let ip = &d[l.ip_offset()..l.end()];
                seed(
                    if l.is_ipv6() {
                        "wire_ipv6"
                    } else {
                        "wire_ipv4"
                    },
                    ip,
                )?;
                seed("wire_udp", &d[l.udp_offset()..l.end()])?;
                seed("wire_vxlan", &d[l.header_offset()..l.payload_offset()])?;
            }
            if let Some(inner) = stack.inner() {
                let payload = &inner.bytes()[inner.header_len()..];
                match inner.ethertype() {
                    EtherType::ARP | EtherType::RARP => seed("wire_arp", payload)?,
                    EtherType::IPV4 if payload.len() > 20 => {
                        seed("wire_ipv4", payload)?;
                        let ihl = usize::from(payload[0] & 0x0f) * 4;
                        if payload[9] == 1 && payload.len() > ihl {
                            seed("wire_icmp", &payload[ihl..])?;
                        }
                    }
                    EtherType::IPV6 => seed("wire_ipv6", payload)?,
                    _ => {}
                }
            }
        }
    }
    println!(
        "wrote {n} seeds from {} captures into {corpus}",
        files.len()
    );
    Ok(())
}
