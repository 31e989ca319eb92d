//! The decoding behind the `vxdump` tool: one packet in, one text line or
//! one JSON object out.

use std::fmt::Write as _;

use vxlan_core::tunnel::{ParseConfig, TunnelHeader, TunnelStack};
use vxlan_core::wire::EtherType;

/// Appends `s` to `out` as a JSON string literal.
pub fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The JSON object for frame number `n` (1-based), in the shape the README
/// documents:
/// `{"frame":1,"vxlan":[{"src":..,"dst":..,"sport":..,"dport":..,"flags":..,"vni":..}],"inner":{"src":..,"dst":..,"ethertype":..,"vlans":[..]}}`.
pub fn json_line(n: usize, frame: &[u8], config: &ParseConfig) -> String {
    let mut out = String::with_capacity(256);
    let _ = write!(out, "{{\"frame\":{n}");
    match TunnelStack::parse(frame, config) {
        Err(reason) => {
            out.push_str(",\"error\":");
            json_string(&mut out, reason.as_str());
        }
        Ok(stack) => {
            out.push_str(",\"vxlan\":[");
            for (i, layer) in stack.layers().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"src\":");
                json_string(&mut out, &layer.src_addr().to_string());
                out.push_str(",\"dst\":");
                json_string(&mut out, &layer.dst_addr().to_string());
                let _ = write!(
                    out,
                    ",\"sport\":{},\"dport\":{},\"flags\":{},\"vni\":{}",
                    layer.src_port(),
                    layer.dst_port(),
                    layer.flags(),
                    layer.vni()
                );
                match layer.header() {
                    TunnelHeader::Gpe(g) => {
                        let _ = write!(
                            out,
                            ",\"type\":\"gpe\",\"next_protocol\":{}",
                            g.next_protocol.0
                        );
                    }
                    TunnelHeader::Gbp(g) => {
                        let _ = write!(
                            out,
                            ",\"type\":\"gbp\",\"policy_id\":{}",
                            g.policy_id.unwrap_or(0)
                        );
                        let _ = write!(out, ",\"dont_learn\":{}", g.dont_learn);
                    }
                    TunnelHeader::Vxlan(_) => out.push_str(",\"type\":\"vxlan\""),
                }
                out.push('}');
            }
            out.push(']');
            if let Some(inner) = stack.inner() {
                out.push_str(",\"inner\":{\"src\":");
                json_string(&mut out, &inner.src_addr().to_string());
                out.push_str(",\"dst\":");
                json_string(&mut out, &inner.dst_addr().to_string());
                let _ = write!(out, ",\"ethertype\":{},\"vlans\":[", inner.ethertype().0);
                for (i, vid) in inner.vids().iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{vid}");
                }
                let _ = write!(out, "],\"length\":{}}}", inner.end() - inner.offset());
            }
        }
    }
    out.push('}');
    out
}

fn ethertype_name(e: EtherType) -> &'static str {
    match e {
        EtherType::IPV4 => "IPv4",
        EtherType::IPV6 => "IPv6",
        EtherType::ARP => "ARP",
        EtherType::RARP => "RARP",
        EtherType::VLAN => "802.1Q",
        EtherType::QINQ => "802.1ad",
        _ => "unknown",
    }
}

/// A tcpdump-like text line for frame number `n`.
pub fn text_line(n: usize, frame: &[u8], config: &ParseConfig) -> String {
    let mut out = String::with_capacity(160);
    let _ = write!(out, "{n:>5} ");
    match TunnelStack::parse(frame, config) {
        Err(reason) => {
            let _ = write!(out, "dropped: {reason}, length {}", frame.len());
        }
        Ok(stack) if !stack.is_tunnel() => {
            let _ = write!(out, "not VXLAN, length {}", frame.len());
        }
        Ok(stack) => {
            for layer in stack.layers() {
                let (src, dst) = (layer.src_addr(), layer.dst_addr());
                let fmt_addr = |a: std::net::IpAddr, port: u16| match a {
                    std::net::IpAddr::V6(v6) => format!("[{v6}].{port}"),
                    v4 => format!("{v4}.{port}"),
                };
                let _ = write!(
                    out,
                    "{} > {}: ",
                    fmt_addr(src, layer.src_port()),
                    fmt_addr(dst, layer.dst_port())
                );
                match layer.header() {
                    TunnelHeader::Vxlan(_) => {
                        let _ = write!(
                            out,
                            "VXLAN, flags 0x{:02x}, vni {}",
                            layer.flags(),
                            layer.vni()
                        );
                    }
                    TunnelHeader::Gpe(g) => {
                        let _ = write!(
                            out,
                            "VXLAN-GPE, flags 0x{:02x}, next-protocol {}, vni {}",
                            layer.flags(),
                            g.next_protocol.0,
                            g.vni
                        );
                    }
                    TunnelHeader::Gbp(g) => {
                        let _ = write!(
                            out,
                            "VXLAN-GBP, flags 0x{:02x}, policy {}, vni {}",
                            layer.flags(),
                            g.policy_id.unwrap_or(0),
                            g.vni
                        );
                    }
                }
                out.push_str(" | ");
            }
            match stack.inner() {
                Some(inner) => {
                    let _ = write!(out, "{} > {}", inner.src_addr(), inner.dst_addr());
                    for vid in inner.vids() {
                        let _ = write!(out, ", vlan {vid}");
                    }
                    let _ = write!(
                        out,
                        ", ethertype {} (0x{:04x}), length {}",
                        ethertype_name(inner.ethertype()),
                        inner.ethertype().0,
                        inner.end() - inner.offset()
                    );
                }
                None => out.push_str("non-Ethernet payload"),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use vxlan_core::testutil::sample_vxlan_ipv4_frame;

    #[test]
    fn json_shape() {
        let frame = sample_vxlan_ipv4_frame();
        let line = json_line(1, &frame, &ParseConfig::default());
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["frame"], 1);
        assert_eq!(v["vxlan"][0]["src"], "192.0.2.1");
        assert_eq!(v["vxlan"][0]["dst"], "192.0.2.2");
        assert_eq!(v["vxlan"][0]["sport"], 49152);
        assert_eq!(v["vxlan"][0]["dport"], 4789);
        assert_eq!(v["vxlan"][0]["flags"], 8);
        assert_eq!(v["vxlan"][0]["vni"], 100);
        assert_eq!(v["inner"]["src"], "02:00:00:00:00:01");
        assert_eq!(v["inner"]["dst"], "ff:ff:ff:ff:ff:ff");
        assert_eq!(v["inner"]["ethertype"], 2054);
        assert_eq!(v["inner"]["vlans"], serde_json::json!([]));
        let text = text_line(1, &frame, &ParseConfig::default());
        assert!(
            text.contains("192.0.2.1.49152 > 192.0.2.2.4789: VXLAN, flags 0x08, vni 100"),
            "{text}"
        );
        assert!(text.contains("ethertype ARP (0x0806)"), "{text}");
    }

    #[test]
    fn error_and_not_vxlan() {
        let frame = sample_vxlan_ipv4_frame();
        let line = json_line(7, &frame[..20], &ParseConfig::default());
        assert_eq!(line, r#"{"frame":7,"error":"ipv4_malformed"}"#);
        let mut other = frame;
        other[14 + 20 + 3] = 53; // dport 4789 -> 4661... low byte changed
        let v: serde_json::Value =
            serde_json::from_str(&json_line(2, &other, &ParseConfig::default())).unwrap();
        assert_eq!(v["vxlan"], serde_json::json!([]));
        assert!(v.get("inner").is_none());
    }

    #[test]
    fn json_escapes() {
        let mut s = String::new();
        json_string(&mut s, "a\"b\\c\n");
        assert_eq!(s, r#""a\"b\\c\u000a""#);
    }
}
