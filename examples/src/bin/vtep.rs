//! `vtep`: the VTEP daemon.
//!
//! ```text
//! vtep --config vtep.toml [--dump-json FILE]
//! ```
//!
//! With pcap ports (the README documents the configuration schema), every
//! rx file is replayed in timestamp order through the VTEP, what it sends
//! goes to the tx files, and the run ends when all are drained;
//! `--dump-json` then writes the counters (drops by reason) and the FDB.
//!
//! With DPDK ports (feature `dpdk`; every port `kind = "dpdk"`), EAL starts
//! with `[dpdk] eal_args`, one worker per `vtep.workers` polls its queue of
//! every port, and the run lasts until `--run-secs N` have passed or, with
//! `--exit-when-idle-ms N`, until no port has received a frame for N ms
//! (a net_pcap vdev's capture is drained), or until SIGINT or SIGTERM
//! (without those options it runs until signalled). The ports are then closed (a
//! net_pcap vdev flushes its tx file) and `--dump-json` adds the ports'
//! counters and the mempool's accounting.

use std::collections::HashMap;
use std::io::BufWriter;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{json, Value};
use vxlan_core::fdb::{Kind, Location};
use vxlan_core::frame::Frame;
use vxlan_pmd::config::{PortKind, VtepConfig};
use vxlan_pmd::pcap::{self, PcapWriter};
use vxlan_pmd::pool::{PktBuf, Pool};
use vxlan_pmd::vtep::{Output, VtepShared, DROP_NAMES};

const USAGE: &str =
    "usage: vtep --config FILE [--dump-json FILE] [--run-secs N] [--exit-when-idle-ms N]";

struct PcapOutputs {
    writers: HashMap<u16, PcapWriter<BufWriter<std::fs::File>>>,
    now_us: u64,
    dropped_no_tx: u64,
    errors: Vec<String>,
}

impl Output for PcapOutputs {
    fn send(&mut self, port: u16, pkt: PktBuf) {
        match self.writers.get_mut(&port) {
            Some(w) => {
                if let Err(e) = w.write_packet(self.now_us, pkt.data()) {
                    self.errors.push(format!("port {port}: {e}"));
                }
            }
            None => self.dropped_no_tx += 1,
        }
        // `pkt` returns to its pool here.
    }
}

/// How long a DPDK run lasts.
#[derive(Debug, Clone, Copy, Default)]
struct RunLimits {
    secs: Option<u64>,
    idle_ms: Option<u64>,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("vtep: {msg}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut config = None;
    let mut dump = None;
    let mut run = RunLimits::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--config" | "-c" => config = args.next().map(PathBuf::from),
            "--dump-json" => dump = args.next().map(PathBuf::from),
            "--run-secs" | "--exit-when-idle-ms" => {
                let Some(n) = args.next().and_then(|v| v.parse::<u64>().ok()) else {
                    return fail(format!("{a} needs a number\n{USAGE}"));
                };
                if a == "--run-secs" {
                    run.secs = Some(n);
                } else {
                    run.idle_ms = Some(n);
                }
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => return fail(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    let Some(path) = config else {
        return fail(format!("--config is required\n{USAGE}"));
    };
    let cfg = match VtepConfig::from_file(&path) {
        Ok(c) => c,
        Err(e) => return fail(format!("{}: {e}", path.display())),
    };
    // Relative capture paths are relative to the configuration file.
    let base = path.parent().map(PathBuf::from).unwrap_or_default();
    let resolve = |p: &PathBuf| {
        if p.is_absolute() {
            p.clone()
        } else {
            base.join(p)
        }
    };

    if cfg.ports.iter().any(|p| p.kind == PortKind::Dpdk) {
        // The configuration check refuses dpdk ports in a build without
        // the feature, naming the port.
        #[cfg(feature = "dpdk")]
        return dpdk_run::run(&cfg, &path, dump.as_deref(), run);
    }
    let _ = run;
    let non_pcap: Vec<&str> = cfg
        .ports
        .iter()
        .filter(|p| matches!(p.kind, PortKind::AfXdp | PortKind::Dpdk))
        .map(|p| p.name.as_str())
        .collect();
    if !non_pcap.is_empty() {
        return fail(format!(
            "ports {non_pcap:?}: af_xdp ports need the af-xdp feature, which this build does not have"
        ));
    }

    let pool = match Pool::new(8192, 2048, 128) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let shared = match vxlan_pmd::build::vtep(&cfg, std::sync::Arc::clone(&pool)) {
        Ok(s) => s,
        Err(e) => return fail(format!("{}: {e}", path.display())),
    };

    // Every rx frame of every pcap port, merged in timestamp order (stable:
    // equal timestamps keep file order, files keep config order).
    let mut frames: Vec<(u64, usize, u16, Vec<u8>)> = Vec::new();
    let mut outputs = PcapOutputs {
        writers: HashMap::new(),
        now_us: 0,
        dropped_no_tx: 0,
        errors: Vec::new(),
    };
    for (i, p) in cfg.ports.iter().enumerate() {
        let Ok(port) = u16::try_from(i) else {
            return fail("too many ports");
        };
        if p.kind != PortKind::Pcap {
            continue;
        }
        if let Some(rx) = &p.rx {
            let rx = resolve(rx);
            match pcap::read_file(&rx) {
                Ok(packets) => {
                    for (seq, pkt) in packets.into_iter().enumerate() {
                        if pkt.link_type == pcap::LINKTYPE_ETHERNET {
                            frames.push((pkt.timestamp_us, seq, port, pkt.data));
                        }
                    }
                }
                Err(e) => return fail(format!("port[{i}].rx: {}: {e}", rx.display())),
            }
        }
        if let Some(tx) = &p.tx {
            let tx = resolve(tx);
            let file = match std::fs::File::create(&tx) {
                Ok(f) => f,
                Err(e) => {
                    return fail(format!("port[{i}].tx: cannot create {}: {e}", tx.display()))
                }
            };
            match PcapWriter::new(BufWriter::new(file)) {
                Ok(w) => {
                    outputs.writers.insert(port, w);
                }
                Err(e) => return fail(format!("port[{i}].tx: {e}")),
            }
        }
    }
    frames.sort_by_key(|(ts, seq, port, _)| (*ts, *port, *seq));
    let start = frames.first().map_or(0, |f| f.0);
    let mut worker = shared.worker(0);
    let mut too_long = 0u64;
    for (ts, _, port, data) in &frames {
        let secs = u32::try_from((ts.saturating_sub(start)) / 1_000_000).unwrap_or(u32::MAX);
        shared.set_now(secs);
        outputs.now_us = *ts;
        // Ageing runs inside the loop, a bounded slice per frame.
        let _ = shared
            .fdb()
            .age_step(secs, 64, &mut vxlan_core::fdb::NoEvents);
        let Some(pkt) = pool.alloc_with(data) else {
            too_long += 1;
            continue;
        };
        worker.refresh();
        worker.process(*port, pkt, &mut outputs);
    }
    for (_, w) in outputs.writers.drain() {
        if let Err(e) = w.into_inner() {
            return fail(format!("writing a tx capture: {e}"));
        }
    }
    if let Some(e) = outputs.errors.first() {
        return fail(format!("writing a tx capture: {e}"));
    }
    let stats = shared.stats();
    eprintln!(
        "vtep: {} frames in, {} delivered locally, {} encapsulated, {} flooded, {} dropped",
        stats.rx,
        stats.tx_local,
        stats.tx_remote,
        stats.flooded,
        stats.drops()
    );
    if let Some(dump) = dump {
        let v = dump_json(&cfg, &shared, too_long, outputs.dropped_no_tx);
        let text = serde_json::to_string_pretty(&v).unwrap_or_default();
        if let Err(e) = std::fs::write(&dump, text + "\n") {
            return fail(format!("--dump-json {}: {e}", dump.display()));
        }
    }
    ExitCode::SUCCESS
}

fn dump_json(cfg: &VtepConfig, shared: &VtepShared, too_long: u64, no_tx: u64) -> Value {
    let s = shared.stats();
    let mut drops = serde_json::Map::new();
    for (name, n) in DROP_NAMES.iter().zip(s.drop_bridge) {
        drops.insert((*name).to_string(), json!(n));
    }
    drops.insert("pool_empty".into(), json!(s.drop_pool_empty));
    drops.insert("encap_too_big".into(), json!(s.drop_too_big));
    drops.insert("encap_other".into(), json!(s.drop_encap));
    drops.insert("rx_too_long".into(), json!(too_long));
    drops.insert("no_tx_file".into(), json!(no_tx));
    let snap = shared.snapshot();
    let fdb: Vec<Value> = shared
        .fdb()
        .iter()
        .map(|r| {
            let vni = snap.bds.get(usize::from(r.bd)).map_or(0, |b| b.vni);
            let location = match r.entry.location {
                Location::Local { port, vlan } => json!({
                    "port": cfg.ports.get(usize::from(port)).map_or("?", |p| p.name.as_str()),
                    "vlan": vlan
                }),
                Location::Remote(i) => json!({
                    "remote": snap.remotes.get(usize::try_from(i).unwrap_or(usize::MAX)).map(|r| r.ip.to_string())
                }),
            };
            let kind = match r.entry.kind {
                Kind::Learned => "learned",
                Kind::Static => "static",
                Kind::Sticky => "sticky",
                Kind::External => "external",
            };
            json!({"vni": vni, "mac": r.mac.to_string(), "kind": kind, "location": location, "frozen": r.entry.frozen})
        })
        .collect();
    let f = shared.fdb().stats();
    json!({
        "counters": {
            "rx": s.rx, "tx_local": s.tx_local, "tx_remote": s.tx_remote, "flooded": s.flooded,
            "flood_copies": s.flood_copies, "suppressed": s.suppressed, "host": s.host,
            "pmtu_replies": s.pmtu_replies, "drops": drops,
        },
        "fdb_stats": {
            "entries": f.entries, "learns": f.learns, "moves": f.moves, "ages": f.ages,
            "refused_table_full": f.refused_table_full, "refused_bd_limit": f.refused_bd_limit,
            "freezes": f.freezes, "frozen_refused": f.frozen_refused,
        },
        "fdb": fdb,
        "pool": {"capacity": shared.pool().capacity(), "in_use": shared.pool().in_use()},
    })
}

#[cfg(feature = "dpdk")]
mod dpdk_run {
    //! The daemon on DPDK ports.

    use std::path::Path;
    use std::process::ExitCode;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    use serde_json::json;
    use vxlan_pmd::config::VtepConfig;
    use vxlan_pmd::dpdk::DpdkVtep;

    use super::{dump_json, fail, RunLimits};

    pub(super) fn run(
        cfg: &VtepConfig,
        path: &Path,
        dump: Option<&Path>,
        limits: RunLimits,
    ) -> ExitCode {
        let vtep = match DpdkVtep::from_config(cfg) {
            Ok(v) => v,
            Err(e) => return fail(format!("{}: {e}", path.display())),
        };
        for (p, port) in cfg.ports.iter().zip(vtep.ports()) {
            eprintln!(
                "vtep: port {} on {} (dpdk port {}, {} queues, offloads {:?})",
                p.name,
                port.device(),
                port.id(),
                port.queues(),
                port.offloads()
            );
        }
        // SIGINT / SIGTERM end the run like --run-secs does: workers stop,
        // ports close, counters are dumped.
        static SIGNALLED: AtomicBool = AtomicBool::new(false);
        if let Err(e) = ctrlc::set_handler(|| SIGNALLED.store(true, Ordering::Release)) {
            return fail(format!("installing the SIGINT/SIGTERM handler: {e}"));
        }
        let stop = AtomicBool::new(false);
        let result = std::thread::scope(|s| {
            let runner = s.spawn(|| vtep.run(&stop));
            let start = Instant::now();
            let mut last_rx = 0u64;
            let mut last_change = Instant::now();
            // Acquire: pairs with run()'s Release when a worker fails.
            while !stop.load(Ordering::Acquire) && !runner.is_finished() {
                std::thread::sleep(Duration::from_millis(10));
                let rx: u64 = vtep.ports().iter().map(|p| p.stats().ipackets).sum();
                if rx != last_rx {
                    last_rx = rx;
                    last_change = Instant::now();
                }
                let idle = limits
                    .idle_ms
                    .is_some_and(|ms| last_change.elapsed() >= Duration::from_millis(ms));
                let done = limits
                    .secs
                    .is_some_and(|secs| start.elapsed() >= Duration::from_secs(secs));
                // Acquire: pairs with the handler's Release.
                if idle || done || SIGNALLED.load(Ordering::Acquire) {
                    // Release: the workers' Acquire loads see it.
                    stop.store(true, Ordering::Release);
                }
            }
            runner.join()
        });
        let loops = match result {
            Ok(Ok(l)) => l,
            Ok(Err(e)) => return fail(e),
            Err(_) => return fail("the DPDK run panicked"),
        };
        let port_stats: Vec<_> = vtep.ports().iter().map(|p| p.stats()).collect();
        let shared = std::sync::Arc::clone(vtep.shared());
        let mempool = std::sync::Arc::clone(vtep.mempool());
        // Closing the ports flushes a net_pcap vdev's tx file and returns
        // every mbuf a receive ring held.
        drop(vtep);
        let s = shared.stats();
        eprintln!(
            "vtep: {} frames in, {} delivered locally, {} encapsulated, {} flooded, {} dropped; mempool {} of {} mbufs in use",
            s.rx,
            s.tx_local,
            s.tx_remote,
            s.flooded,
            s.drops(),
            mempool.in_use(),
            mempool.capacity()
        );
        if let Some(dump) = dump {
            let mut v = dump_json(cfg, &shared, 0, 0);
            let ports: Vec<_> = cfg
                .ports
                .iter()
                .zip(&loops.ports)
                .zip(&port_stats)
                .map(|((p, l), d)| {
                    json!({
                        "name": p.name, "rx": l.rx, "tx": l.tx, "tx_dropped": l.tx_dropped,
                        "rx_chained": l.rx_chained, "driver_ipackets": d.ipackets,
                        "driver_opackets": d.opackets, "driver_imissed": d.imissed,
                        "driver_rx_nombuf": d.rx_nombuf,
                    })
                })
                .collect();
            v["ports"] = json!(ports);
            v["mempool"] = json!({"capacity": mempool.capacity(), "in_use": mempool.in_use()});
            let text = serde_json::to_string_pretty(&v).unwrap_or_default();
            if let Err(e) = std::fs::write(dump, text + "\n") {
                return fail(format!("--dump-json {}: {e}", dump.display()));
            }
        }
        ExitCode::SUCCESS
    }
}
