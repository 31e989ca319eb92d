//! `vxdump --json` agrees field for field with tshark's dissection of every
//! capture in `../shared/captures`. Skips with a message when tshark or the
//! captures are missing (`.ci/run` installs tshark).

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use vxlan_pmd::captures;

/// One VXLAN layer as tshark sees it.
#[derive(Debug, PartialEq, Eq)]
struct Layer {
    src: String,
    dst: String,
    sport: u64,
    dport: u64,
    flags: u64,
    vni: u64,
    next_protocol: Option<u64>,
}

/// The inner Ethernet header after the last VXLAN layer.
#[derive(Debug, PartialEq, Eq)]
struct Inner {
    src: String,
    dst: String,
    ethertype: u64,
    vlans: Vec<u64>,
}

const FIELDS: &[&str] = &[
    "frame.protocols",
    "ip.src",
    "ip.dst",
    "ipv6.src",
    "ipv6.dst",
    "udp.srcport",
    "udp.dstport",
    "vxlan.flags",
    "vxlan.vni",
    "vxlan.next_proto",
    "eth.src",
    "eth.dst",
    "eth.type",
    "vlan.id",
    "vlan.etype",
];

fn tshark_available() -> bool {
    Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn num(s: &str) -> u64 {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).unwrap(),
        None => s.parse().unwrap(),
    }
}

/// Runs tshark and rebuilds, per frame, the VXLAN layers and the inner
/// Ethernet header by walking `frame.protocols` and consuming each
/// protocol's field occurrences in order.
fn tshark(path: &Path, extra: &[&str]) -> Vec<(Vec<Layer>, Option<Inner>)> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(path).args([
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]);
    cmd.args(extra);
    for f in FIELDS {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark runs");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let cols: Vec<Vec<&str>> = line
                .split('|')
                .map(|c| {
                    if c.is_empty() {
                        vec![]
                    } else {
                        c.split(',').collect()
                    }
                })
                .collect();
            let col = |name: &str| &cols[FIELDS.iter().position(|f| *f == name).unwrap()];
            let mut idx = std::collections::HashMap::<&str, usize>::new();
            let mut take = |name: &'static str| -> Option<String> {
                let i = idx.entry(name).or_insert(0);
                let v = col(name).get(*i).map(|s| s.to_string());
                *i += 1;
                v
            };
            let protocols: Vec<&str> = col("frame.protocols")
                .first()
                .unwrap_or(&"")
                .split(':')
                .collect();
            let mut layers = Vec::new();
            let mut ip: Option<(String, String)> = None;
            let mut udp: Option<(u64, u64)> = None;
            let mut eth: Option<Inner> = None;
            let mut after_vxlan = false;
            let mut prev = "";
            let mut inner = None;
            for &p in &protocols {
                match p {
                    "eth" => {
                        let cur = Inner {
                            src: take("eth.src").unwrap(),
                            dst: take("eth.dst").unwrap(),
                            ethertype: num(&take("eth.type").unwrap()),
                            vlans: vec![],
                        };
                        eth = Some(cur);
                    }
                    "vlan" => {
                        let e = eth.as_mut().unwrap();
                        e.vlans.push(num(&take("vlan.id").unwrap()));
                        e.ethertype = num(&take("vlan.etype").unwrap());
                    }
                    "ip" => ip = Some((take("ip.src").unwrap(), take("ip.dst").unwrap())),
                    "ipv6" => ip = Some((take("ipv6.src").unwrap(), take("ipv6.dst").unwrap())),
                    "udp" => {
                        udp = Some((
                            num(&take("udp.srcport").unwrap()),
                            num(&take("udp.dstport").unwrap()),
                        ))
                    }
                    // GPE carrying NSH shows no "vxlan" token of its own.
                    _ if p == "vxlan" || (p == "nsh" && prev == "udp") => {
                        if after_vxlan {
                            inner = eth.take();
                        }
                        let (src, dst) = ip.clone().unwrap();
                        let (sport, dport) = udp.unwrap();
                        // VXLAN's flags field is 16 bits ("0x0800"), GPE's
                        // 8 ("0x0c"); we report the first header byte.
                        let raw = take("vxlan.flags").unwrap();
                        let flags = if raw.len() > 4 {
                            num(&raw) >> 8
                        } else {
                            num(&raw)
                        };
                        let vni = num(&take("vxlan.vni").unwrap());
                        let next_protocol =
                            (dport == 4790).then(|| num(&take("vxlan.next_proto").unwrap()));
                        layers.push(Layer {
                            src,
                            dst,
                            sport,
                            dport,
                            flags,
                            vni,
                            next_protocol,
                        });
                        after_vxlan = true;
                        eth = None;
                    }
                    _ => {}
                }
                prev = p;
            }
            if after_vxlan {
                inner = eth.take();
            }
            (layers, inner)
        })
        .collect()
}

fn vxdump(path: &Path, extra: &[&str]) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_vxdump"))
        .arg("--json")
        .args(extra)
        .arg(path)
        .output()
        .expect("vxdump runs");
    assert!(
        out.status.success(),
        "vxdump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn ours(v: &Value) -> (Vec<Layer>, Option<Inner>) {
    assert!(
        v.get("error").is_none(),
        "vxdump dropped a packet tshark decodes: {v}"
    );
    let layers = v["vxlan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| Layer {
            src: l["src"].as_str().unwrap().to_string(),
            dst: l["dst"].as_str().unwrap().to_string(),
            sport: l["sport"].as_u64().unwrap(),
            dport: l["dport"].as_u64().unwrap(),
            flags: l["flags"].as_u64().unwrap(),
            vni: l["vni"].as_u64().unwrap(),
            next_protocol: l.get("next_protocol").and_then(Value::as_u64),
        })
        .collect();
    let inner = v.get("inner").map(|i| Inner {
        src: i["src"].as_str().unwrap().to_string(),
        dst: i["dst"].as_str().unwrap().to_string(),
        ethertype: i["ethertype"].as_u64().unwrap(),
        vlans: i["vlans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect(),
    });
    (layers, inner)
}

#[test]
fn vxdump_agrees_with_tshark_on_every_capture() {
    if !tshark_available() {
        eprintln!("SKIP: tshark not installed (apt-get install tshark)");
        return;
    }
    let Some(dir) = captures::dir() else {
        eprintln!("SKIP: capture folder not found");
        return;
    };
    let mut files = 0;
    let mut frames = 0;
    let mut vxlan_frames = 0;
    for sub in ["tcpdump", "suricata-verify", "zeek"] {
        let mut paths: Vec<_> = std::fs::read_dir(dir.join(sub))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        for path in paths
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let (ours_extra, tshark_extra): (&[&str], &[&str]) = if name.contains("8472") {
                (&["--port", "8472"], &["-d", "udp.port==8472,vxlan"])
            } else {
                (&[], &[])
            };
            let theirs = tshark(path, tshark_extra);
            let mine = vxdump(path, ours_extra);
            assert_eq!(theirs.len(), mine.len(), "{name}: frame count");
            for (i, (t, m)) in theirs.iter().zip(&mine).enumerate() {
                assert_eq!(m["frame"].as_u64().unwrap(), i as u64 + 1);
                let m = ours(m);
                assert_eq!(&m, t, "{name} frame {}", i + 1);
                frames += 1;
                if !m.0.is_empty() {
                    vxlan_frames += 1;
                }
            }
            files += 1;
        }
    }
    eprintln!("compared {frames} frames ({vxlan_frames} VXLAN) in {files} captures");
    assert!(
        files >= 15 && vxlan_frames >= 150,
        "{files} files, {vxlan_frames} VXLAN frames"
    );
}
