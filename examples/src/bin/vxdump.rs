//! `vxdump`: decode the VXLAN layers of a pcap or pcapng file.
//!
//! ```text
//! vxdump [--json] [--port N]... [--gpe-port N]... [--gbp] [--strict] [--depth N] FILE
//! ```

use std::io::Write;
use std::process::ExitCode;

use vxlan_core::tunnel::{ParseConfig, MAX_LAYERS};
use vxlan_core::wire::ReservedBitsPolicy;
use vxlan_examples::vxdump::{json_line, json_string, text_line};
use vxlan_pmd::pcap::{PcapReader, LINKTYPE_ETHERNET};

const USAGE: &str =
    "usage: vxdump [--json] [--port N]... [--gpe-port N]... [--gbp] [--strict] [--depth N] FILE

Decodes every packet of a pcap or pcapng capture (Ethernet link type) and
prints its VXLAN layers, outermost first, and the inner Ethernet header.

  --json        one JSON object per packet instead of a text line
  --port N      also treat UDP port N as VXLAN (4789 always is); repeatable
  --gpe-port N  also treat UDP port N as VXLAN-GPE (4790 always is)
  --gbp         read VXLAN headers as VXLAN-GBP (group policy)
  --strict      drop headers with reserved bits set (RFC 7348 says ignore)
  --depth N     follow at most N nested tunnels (1-4, default 4)";

fn parse_args() -> Result<(ParseConfig, bool, String), String> {
    let mut config = ParseConfig::default();
    let mut json = false;
    let mut depth = u8::try_from(MAX_LAYERS).unwrap_or(4);
    let mut file = None;
    let mut args = std::env::args().skip(1);
    let port = |v: Option<String>, flag: &str| -> Result<u16, String> {
        let v = v.ok_or(format!("{flag} needs a port number"))?;
        v.parse::<u16>()
            .map_err(|_| format!("{flag}: '{v}' is not a UDP port (1-65535)"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => json = true,
            "--strict" => config = config.with_reserved_bits(ReservedBitsPolicy::Strict),
            "--gbp" => config = config.with_gbp(true),
            "--port" => {
                let p = port(args.next(), "--port")?;
                if !config.vxlan_ports().contains(&p) {
                    config = config
                        .with_vxlan_port(p)
                        .map_err(|e| format!("--port {p}: {e}"))?;
                }
            }
            "--gpe-port" => {
                let p = port(args.next(), "--gpe-port")?;
                if !config.gpe_ports().contains(&p) {
                    config = config
                        .with_gpe_port(p)
                        .map_err(|e| format!("--gpe-port {p}: {e}"))?;
                }
            }
            "--depth" => {
                let v = args.next().ok_or("--depth needs a number")?;
                depth = v
                    .parse()
                    .map_err(|_| format!("--depth: '{v}' is not a number"))?;
            }
            "-h" | "--help" => return Err(String::new()),
            a if a.starts_with('-') => return Err(format!("unknown option {a}")),
            a => {
                if file.replace(a.to_string()).is_some() {
                    return Err("give exactly one capture file".into());
                }
            }
        }
    }
    config = config
        .with_max_depth(depth)
        .map_err(|e| format!("--depth: {e}"))?;
    let file = file.ok_or("no capture file given")?;
    Ok((config, json, file))
}

fn main() -> ExitCode {
    let (config, json, path) = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("vxdump: {msg}\n");
            }
            eprintln!("{USAGE}");
            return if msg.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("vxdump: cannot open {path}: {e}");
            return ExitCode::from(1);
        }
    };
    let mut reader = match PcapReader::new(std::io::BufReader::new(file)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vxdump: {path}: {e}");
            return ExitCode::from(1);
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut n = 0;
    loop {
        let packet = match reader.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(e) => {
                let _ = out.flush();
                eprintln!("vxdump: {path}: after packet {n}: {e}");
                return ExitCode::from(1);
            }
        };
        n += 1;
        let line = if packet.link_type != LINKTYPE_ETHERNET {
            let reason = format!("unsupported link type {}", packet.link_type);
            if json {
                let mut s = format!("{{\"frame\":{n},\"error\":");
                json_string(&mut s, &reason);
                s.push('}');
                s
            } else {
                format!("{n:>5} {reason}")
            }
        } else if json {
            json_line(n, &packet.data, &config)
        } else {
            text_line(n, &packet.data, &config)
        };
        if writeln!(out, "{line}").is_err() {
            return ExitCode::SUCCESS; // reader went away (e.g. `| head`)
        }
    }
    let _ = out.flush();
    ExitCode::SUCCESS
}
