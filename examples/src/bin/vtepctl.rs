//! `vtepctl`: inspect and change a running `vtep` over its control socket.
//!
//! ```text
//! vtepctl [--socket PATH | --config FILE] <command> [--json]
//!
//!   fdb show [--vni N]
//!   fdb add --vni N --mac MAC (--remote IP | --port NAME)
//!   fdb del --vni N --mac MAC
//!   stats
//!   vni show
//!   remote add --vni N IP
//!   remote del --vni N IP
//! ```
//!
//! The socket is `--socket`, else `[vtep] control_socket` of `--config`,
//! else `/run/vxlan-vtep.sock`. Every command prints a table, or with
//! `--json` the daemon's result object. Exit status: 0 on success, 1 when
//! the daemon refused the request (the reason on stderr; with `--json`
//! also `{"error": ...}` on stdout), 2 for a usage error or when the
//! daemon cannot be reached. The protocol is described in
//! `vxlan_pmd::control`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{json, Map, Value};
use vxlan_pmd::config::VtepConfig;
use vxlan_pmd::control::DEFAULT_CONTROL_SOCKET;

const USAGE: &str = "usage: vtepctl [--socket PATH | --config FILE] <command> [--json]

commands:
  fdb show [--vni N]
  fdb add --vni N --mac MAC (--remote IP | --port NAME)
  fdb del --vni N --mac MAC
  stats
  vni show
  remote add --vni N IP
  remote del --vni N IP";

fn usage_error(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("vtepctl: {msg}\n{USAGE}");
    ExitCode::from(2)
}

/// The request for `words` (the command and its options, `--json` and the
/// socket options already taken out).
fn request(words: &[String]) -> Result<Value, String> {
    let (cmd, rest) = match words {
        [a, b, rest @ ..] if matches!(a.as_str(), "fdb" | "remote" | "vni") => {
            (format!("{a} {b}"), rest)
        }
        [a, rest @ ..] => (a.clone(), rest),
        [] => return Err("no command given".into()),
    };
    let takes: &[&str] = match cmd.as_str() {
        "fdb show" => &["--vni"],
        "fdb add" => &["--vni", "--mac", "--remote", "--port"],
        "fdb del" => &["--vni", "--mac"],
        "stats" | "vni show" => &[],
        "remote add" | "remote del" => &["--vni"],
        other => return Err(format!("unknown command '{other}'")),
    };
    let mut req = Map::new();
    req.insert("cmd".into(), json!(cmd));
    let mut positional = Vec::new();
    let mut it = rest.iter();
    while let Some(w) = it.next() {
        if !w.starts_with("--") {
            positional.push(w.clone());
            continue;
        }
        if !takes.contains(&w.as_str()) {
            return Err(format!("'{cmd}' takes no option {w}"));
        }
        let Some(v) = it.next() else {
            return Err(format!("{w} needs a value"));
        };
        let key = &w[2..];
        let value = if key == "vni" {
            json!(v
                .parse::<u32>()
                .map_err(|_| format!("--vni {v}: not a VNI number"))?)
        } else {
            json!(v)
        };
        req.insert(key.into(), value);
    }
    match cmd.as_str() {
        "remote add" | "remote del" => match positional.as_slice() {
            [ip] => {
                req.insert("ip".into(), json!(ip));
            }
            [] => return Err(format!("'{cmd}' needs the remote VTEP's IP address")),
            _ => return Err(format!("'{cmd}' takes one IP address")),
        },
        _ if !positional.is_empty() => {
            return Err(format!("unexpected argument '{}'", positional[0]))
        }
        _ => {}
    }
    for key in match cmd.as_str() {
        "fdb add" | "fdb del" => &["vni", "mac"][..],
        "remote add" | "remote del" => &["vni"][..],
        _ => &[][..],
    } {
        if !req.contains_key(*key) {
            return Err(format!("'{cmd}' needs --{key}"));
        }
    }
    if cmd == "fdb add" && req.contains_key("remote") == req.contains_key("port") {
        return Err("'fdb add' needs exactly one of --remote IP or --port NAME".into());
    }
    Ok(Value::Object(req))
}

/// Sends one request and reads its response.
fn call(socket: &PathBuf, req: &Value) -> Result<Value, String> {
    let stream = UnixStream::connect(socket).map_err(|e| {
        format!(
            "cannot reach the vtep daemon at {}: {e} (is it running? give --socket PATH)",
            socket.display()
        )
    })?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut w = &stream;
    w.write_all(format!("{req}\n").as_bytes())
        .map_err(|e| format!("{}: {e}", socket.display()))?;
    let mut line = String::new();
    BufReader::new(&stream)
        .read_line(&mut line)
        .map_err(|e| format!("{}: {e}", socket.display()))?;
    serde_json::from_str(&line).map_err(|e| format!("bad response from the daemon: {e}"))
}

fn main() -> ExitCode {
    let mut socket: Option<PathBuf> = None;
    let mut as_json = false;
    let mut words = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--json" => as_json = true,
            "--socket" | "-s" => match args.next() {
                Some(p) => socket = Some(PathBuf::from(p)),
                None => return usage_error("--socket needs a path"),
            },
            "--config" | "-c" => match args.next() {
                Some(p) => match VtepConfig::from_file(std::path::Path::new(&p)) {
                    Ok(cfg) => {
                        if socket.is_none() {
                            socket = Some(
                                cfg.vtep
                                    .control_socket
                                    .unwrap_or_else(|| PathBuf::from(DEFAULT_CONTROL_SOCKET)),
                            );
                        }
                    }
                    Err(e) => return usage_error(format!("{p}: {e}")),
                },
                None => return usage_error("--config needs a file"),
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => words.push(a),
        }
    }
    let req = match request(&words) {
        Ok(r) => r,
        Err(e) => return usage_error(e),
    };
    let socket = socket.unwrap_or_else(|| PathBuf::from(DEFAULT_CONTROL_SOCKET));
    let resp = match call(&socket, &req) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vtepctl: {e}");
            return ExitCode::from(2);
        }
    };
    if resp["ok"] != json!(true) {
        let error = resp["error"]
            .as_str()
            .unwrap_or("the daemon refused the request");
        if as_json {
            println!("{}", json!({ "error": error }));
        }
        eprintln!("vtepctl: {error}");
        return ExitCode::from(1);
    }
    let result = &resp["result"];
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(result).unwrap_or_default()
        );
    } else {
        print!("{}", render(req["cmd"].as_str().unwrap_or(""), result));
    }
    ExitCode::SUCCESS
}

/// A value as a table cell.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// Left-aligned columns, two spaces apart.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(&width).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<w$}  "));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
    out
}

fn location(e: &Value) -> String {
    if e["remote"].is_string() {
        format!("remote {}", cell(&e["remote"]))
    } else if e["vlan"].as_u64().unwrap_or(0) != 0 {
        format!("port {} vlan {}", cell(&e["port"]), cell(&e["vlan"]))
    } else {
        format!("port {}", cell(&e["port"]))
    }
}

fn counters_rows(s: &Value, keys: &[&str]) -> Vec<String> {
    keys.iter().map(|k| cell(&s[*k])).collect()
}

fn render(cmd: &str, r: &Value) -> String {
    let empty = Vec::new();
    let list = |v: &Value| v.as_array().unwrap_or(&empty).clone();
    match cmd {
        "fdb show" => {
            let rows: Vec<Vec<String>> = list(&r["entries"])
                .iter()
                .map(|e| {
                    vec![
                        cell(&e["vni"]),
                        cell(&e["mac"]),
                        cell(&e["kind"]),
                        location(e),
                        cell(&e["age_secs"]),
                        if e["frozen"] == json!(true) {
                            "frozen"
                        } else {
                            ""
                        }
                        .into(),
                    ]
                })
                .collect();
            table(&["VNI", "MAC", "KIND", "LOCATION", "AGE", ""], &rows)
        }
        "fdb add" => format!(
            "added {} in VNI {} at {} (static)\n",
            cell(&r["mac"]),
            cell(&r["vni"]),
            location(r)
        ),
        "fdb del" => format!("removed {} from VNI {}\n", cell(&r["mac"]), cell(&r["vni"])),
        "remote add" | "remote del" => {
            let flood: Vec<String> = list(&r["flood"]).iter().map(cell).collect();
            let mut s = format!(
                "{} {} {} VNI {}; flood list now: {}\n",
                if cmd == "remote add" {
                    "added"
                } else {
                    "removed"
                },
                cell(&r["ip"]),
                if cmd == "remote add" { "to" } else { "from" },
                cell(&r["vni"]),
                if flood.is_empty() {
                    "empty".into()
                } else {
                    flood.join(", ")
                }
            );
            if cmd == "remote del" {
                s.push_str(&format!(
                    "flushed {} learned entries behind it\n",
                    cell(&r["flushed"])
                ));
            }
            s
        }
        "vni show" => {
            let rows: Vec<Vec<String>> = list(&r["vnis"])
                .iter()
                .map(|v| {
                    let flood: Vec<String> = list(&v["flood"])
                        .iter()
                        .map(|f| match &f["next_hop"] {
                            Value::String(m) => format!("{} via {m}", cell(&f["ip"])),
                            _ => format!("{} (next hop unresolved)", cell(&f["ip"])),
                        })
                        .collect();
                    let ports: Vec<String> = list(&v["ports"])
                        .iter()
                        .map(|p| match p["vlan"].as_u64() {
                            Some(0) | None => cell(&p["name"]),
                            Some(vid) => format!("{}.{vid}", cell(&p["name"])),
                        })
                        .collect();
                    vec![
                        cell(&v["vni"]),
                        if flood.is_empty() {
                            "-".into()
                        } else {
                            flood.join(", ")
                        },
                        cell(&v["group"]),
                        ports.join(", "),
                        cell(&v["fdb_entries"]),
                    ]
                })
                .collect();
            let mut s = table(&["VNI", "FLOOD LIST", "GROUP", "PORTS", "FDB"], &rows);
            s.push_str(&format!("underlay port: {}\n", cell(&r["underlay_port"])));
            s
        }
        "stats" => {
            let keys = [
                "rx",
                "tx_local",
                "tx_remote",
                "flooded",
                "flood_copies",
                "suppressed",
                "host",
                "pmtu_replies",
                "drops_total",
            ];
            let mut rows: Vec<Vec<String>> = list(&r["cores"])
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let mut row = vec![i.to_string()];
                    row.extend(counters_rows(c, &keys));
                    row
                })
                .collect();
            let mut total = vec!["total".to_string()];
            total.extend(counters_rows(&r["total"], &keys));
            rows.push(total);
            let mut header = vec!["CORE"];
            header.extend(
                keys.iter()
                    .map(|k| if *k == "drops_total" { "drops" } else { k }),
            );
            let mut s = table(&header, &rows);
            s.push_str("\ndrops by reason (all cores):\n");
            let drop_rows: Vec<Vec<String>> = r["total"]["drops"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| vec![format!("  {k}"), cell(v)])
                        .collect()
                })
                .unwrap_or_default();
            s.push_str(&table(&["  REASON", "FRAMES"], &drop_rows));
            let bd_keys = [
                "from_access",
                "from_overlay",
                "to_local",
                "to_remote",
                "flooded",
            ];
            let vni_rows: Vec<Vec<String>> = list(&r["vnis"])
                .iter()
                .flat_map(|v| {
                    let mut rows = Vec::new();
                    let cores = list(&v["cores"]);
                    if cores.len() > 1 {
                        for (i, c) in cores.iter().enumerate() {
                            let mut row = vec![cell(&v["vni"]), i.to_string()];
                            row.extend(counters_rows(c, &bd_keys));
                            rows.push(row);
                        }
                    }
                    let mut row = vec![cell(&v["vni"]), "total".into()];
                    row.extend(counters_rows(&v["total"], &bd_keys));
                    rows.push(row);
                    rows
                })
                .collect();
            s.push('\n');
            let mut header = vec!["VNI", "CORE"];
            header.extend(bd_keys);
            s.push_str(&table(&header, &vni_rows));
            let f = &r["fdb"];
            s.push_str(&format!(
                "\nfdb: {} entries, {} learns, {} moves, {} aged, {} refused (table full)\npool: {} of {} buffers in use\n",
                cell(&f["entries"]),
                cell(&f["learns"]),
                cell(&f["moves"]),
                cell(&f["ages"]),
                cell(&f["refused_table_full"]),
                cell(&r["pool"]["in_use"]),
                cell(&r["pool"]["capacity"]),
            ));
            s
        }
        _ => format!("{r}\n"),
    }
}
