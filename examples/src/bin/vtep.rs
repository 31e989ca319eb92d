//! `vtep`: the VTEP daemon.
//!
//! ```text
//! vtep --config vtep.toml [--dump-json FILE] [--serve]
//! ```
//!
//! With pcap ports (the README documents the configuration schema), every
//! rx file is replayed in timestamp order through the VTEP, what it sends
//! goes to the tx files, and the run ends when all are drained;
//! `--dump-json` then writes the counters (drops by reason) and the FDB.
//!
//! `--serve` starts the control socket (`[vtep] control_socket`, for
//! `vtepctl`) before the replay and keeps serving after it: each line
//! `replay` on stdin replays the rx captures again (appending to the tx
//! captures), and the daemon stops when stdin closes. On stdout it prints
//! `serving PATH` once the socket accepts and `replayed N` after each
//! replay (the first one included) once the tx captures are flushed.
//!
//! With `af_xdp` ports (built with `--features af-xdp`), the daemon runs
//! live: one worker thread per `vtep.workers`, each polling its queue of
//! every port, until SIGINT or SIGTERM; then it stops the workers, prints
//! the final counters, writes `--dump-json`, and detaches its XDP programs
//! (they are attached through BPF links, so the kernel also detaches them
//! if the process dies some other way).
//!
//! With DPDK ports (feature `dpdk`; every port `kind = "dpdk"`), EAL starts
//! with `[dpdk] eal_args`, one worker per `vtep.workers` polls its queue of
//! every port, and the run lasts until `--run-secs N` have passed or, with
//! `--exit-when-idle-ms N`, until no port has received a frame for N ms
//! (a net_pcap vdev's capture is drained), or until SIGINT or SIGTERM
//! (without those options it runs until signalled). With `--serve` or a
//! `[vtep] control_socket` it serves `vtepctl` meanwhile. The ports are
//! then closed (a net_pcap vdev flushes its tx file) and `--dump-json` adds
//! the ports' counters and the mempool's accounting.

use std::collections::HashMap;
use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{json, Value};
use vxlan_core::fdb::{Kind, Location};
use vxlan_core::frame::Frame;
use vxlan_pmd::config::{PortKind, VtepConfig};
use vxlan_pmd::control::{self, Control, ControlHandle};
use vxlan_pmd::pcap::{self, PcapWriter};
use vxlan_pmd::pool::{PktBuf, Pool};
use vxlan_pmd::vtep::{Output, VtepShared};

const USAGE: &str =
    "usage: vtep --config FILE [--dump-json FILE] [--serve] [--run-secs N] [--exit-when-idle-ms N]";

/// How long a DPDK run lasts.
#[derive(Debug, Clone, Copy, Default)]
struct RunLimits {
    secs: Option<u64>,
    idle_ms: Option<u64>,
}

fn main() -> ExitCode {
    let mut config = None;
    let mut dump = None;
    let mut serve = false;
    let mut run = RunLimits::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--config" | "-c" => config = args.next().map(PathBuf::from),
            "--dump-json" => dump = args.next().map(PathBuf::from),
            "--serve" => serve = true,
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
        return dpdk_run::run(&cfg, &path, dump.as_deref(), run, serve);
    }
    let _ = run;
    let dpdk: Vec<&str> = cfg
        .ports
        .iter()
        .filter(|p| p.kind == PortKind::Dpdk)
        .map(|p| p.name.as_str())
        .collect();
    if !dpdk.is_empty() {
        return fail(format!(
            "ports {dpdk:?}: dpdk ports need the dpdk feature, which this build does not have"
        ));
    }
    let live = cfg.ports.iter().any(|p| p.kind == PortKind::AfXdp);
    if live && !cfg!(feature = "af-xdp") {
        return fail(
            "af_xdp ports need the af-xdp feature: cargo build --features af-xdp --bin vtep",
        );
    }

    // Without a gateway MAC, next hops come from the kernel's tables for
    // the underlay interface; a capture file has no interface to ask.
    if let Some(u) = &cfg.underlay {
        let pcap_underlay = cfg
            .port_index(&u.port)
            .is_some_and(|i| cfg.ports[i].kind == PortKind::Pcap);
        if pcap_underlay && u.gateway_mac.is_none() {
            return fail(format!(
                "{}: underlay.gateway_mac: needed when the underlay port is a pcap port (next hops are resolved from the kernel only for interface ports)",
                path.display()
            ));
        }
    }

    let pool = match Pool::new(8192, 2048, 128) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let shared = match vxlan_pmd::build::vtep(&cfg, std::sync::Arc::clone(&pool)) {
        Ok(s) => s,
        Err(e) => return fail(format!("{}: {e}", path.display())),
    };
    #[cfg(feature = "af-xdp")]
    if live {
        return live::run(&path, &cfg, &shared, dump);
    }

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
    let control = if serve {
        match start_control(&shared, &cfg) {
            Ok(c) => {
                println!("serving {}", c.path().display());
                let _ = std::io::stdout().flush();
                Some(c)
            }
            Err(e) => return fail(e),
        }
    } else {
        None
    };
    let mut worker = shared.worker(0);
    let mut too_long = replay(&frames, &shared, &pool, &mut worker, &mut outputs);
    if control.is_some() {
        for w in outputs.writers.values_mut() {
            if let Err(e) = w.flush() {
                return fail(format!("writing a tx capture: {e}"));
            }
        }
        println!("replayed {}", frames.len());
        let _ = std::io::stdout().flush();
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            match line.trim() {
                "replay" => {
                    too_long += replay(&frames, &shared, &pool, &mut worker, &mut outputs);
                    for w in outputs.writers.values_mut() {
                        if let Err(e) = w.flush() {
                            return fail(format!("writing a tx capture: {e}"));
                        }
                    }
                    println!("replayed {}", frames.len());
                }
                "" => {}
                other => eprintln!("vtep: unknown stdin command '{other}' (replay)"),
            }
            let _ = std::io::stdout().flush();
        }
    }
    drop(control);
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

/// Starts the control socket for `shared`, at `[vtep] control_socket` or
/// the default path. Called once the VTEP is built (before the live workers run, or before a
/// pcap replay with `--serve`); the handle stops the server and removes the
/// socket when dropped.
pub fn start_control(
    shared: &std::sync::Arc<VtepShared>,
    cfg: &VtepConfig,
) -> Result<ControlHandle, String> {
    start_control_with(
        shared,
        cfg,
        vxlan_pmd::build::RemoteFactory::from_config(cfg),
    )
}

/// [`start_control`] with remotes built by `factory` (a DPDK VTEP's, which
/// knows its underlay device's checksum offloads).
pub fn start_control_with(
    shared: &std::sync::Arc<VtepShared>,
    cfg: &VtepConfig,
    factory: vxlan_pmd::build::RemoteFactory,
) -> Result<ControlHandle, String> {
    let path = cfg
        .vtep
        .control_socket
        .clone()
        .unwrap_or_else(|| PathBuf::from(control::DEFAULT_CONTROL_SOCKET));
    let mut control = Control::new(
        std::sync::Arc::clone(shared),
        cfg.ports.iter().map(|p| p.name.clone()).collect(),
        factory,
    );
    if cfg
        .underlay
        .as_ref()
        .is_some_and(|u| u.gateway_mac.is_none())
    {
        // Next hops from the kernel's route and neighbour tables.
        #[cfg(target_os = "linux")]
        {
            let k = vxlan_pmd::nexthop::KernelNextHops::new()
                .map_err(|e| format!("next-hop resolution (netlink): {e}"))?;
            control = control.with_next_hops(Box::new(k));
        }
    }
    control::spawn(&path, control).map_err(|e| e.to_string())
}

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

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("vtep: {msg}");
    ExitCode::from(2)
}

/// Replays every frame through the VTEP once; returns how many were too
/// long for a pool buffer.
fn replay(
    frames: &[(u64, usize, u16, Vec<u8>)],
    shared: &VtepShared,
    pool: &std::sync::Arc<Pool>,
    worker: &mut vxlan_pmd::vtep::VtepWorker,
    outputs: &mut PcapOutputs,
) -> u64 {
    let start = frames.first().map_or(0, |f| f.0);
    let mut too_long = 0u64;
    for (ts, _, port, data) in frames {
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
        worker.process(*port, pkt, outputs);
    }
    too_long
}

#[cfg(feature = "af-xdp")]
mod live {
    use std::path::{Path, PathBuf};
    use std::process::ExitCode;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use serde_json::json;
    use vxlan_pmd::afxdp::AttachMode;
    use vxlan_pmd::config::VtepConfig;
    use vxlan_pmd::run::PortLoop;
    use vxlan_pmd::vtep::VtepShared;
    use vxlan_pmd::worker::Workers;

    use super::{dump_json, fail, start_control};

    /// Set by the signal handler; the main thread polls it.
    static STOP: AtomicBool = AtomicBool::new(false);

    extern "C" fn on_signal(_sig: libc::c_int) {
        // Only an atomic store: async-signal-safe. Relaxed is enough, the
        // main thread only needs to see the flag eventually and reads no
        // data the handler wrote.
        STOP.store(true, Ordering::Relaxed);
    }

    fn install_signal_handlers() -> std::io::Result<()> {
        for sig in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: a zeroed sigaction is a valid "no flags, empty mask"
            // starting point; we set a handler that only stores to an
            // atomic, which is async-signal-safe.
            let r = unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(sig, &sa, std::ptr::null_mut())
            };
            if r != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// Runs the VTEP on its AF_XDP ports until SIGINT/SIGTERM.
    pub fn run(
        path: &Path,
        cfg: &VtepConfig,
        shared: &Arc<VtepShared>,
        dump: Option<PathBuf>,
    ) -> ExitCode {
        if let Err(e) = install_signal_handlers() {
            return fail(format!("cannot install signal handlers: {e}"));
        }
        let ports = match vxlan_pmd::live::open(cfg, shared.pool()) {
            Ok(p) => p,
            Err(e) => return fail(format!("{}: {e}", path.display())),
        };
        let vxlan_pmd::live::LivePorts {
            per_worker,
            sockets,
            steering,
        } = ports;
        let control = match start_control(shared, cfg) {
            Ok(c) => {
                eprintln!("vtep: control socket {}", c.path().display());
                c
            }
            Err(e) => return fail(e),
        };
        let mut per_worker: Vec<Option<_>> = per_worker.into_iter().map(Some).collect();
        let workers = Workers::spawn(per_worker.len(), false, |i| {
            let ports = per_worker[i].take().unwrap_or_default();
            let mut l = PortLoop::new(shared.worker(i), ports);
            move |_: &vxlan_pmd::worker::WorkerCtx| l.poll()
        });
        let workers = match workers {
            Ok(w) => w,
            Err(e) => return fail(e),
        };
        for s in &steering {
            let how = match s.mode() {
                AttachMode::Native => "native",
                AttachMode::Generic => "generic",
            };
            eprintln!("vtep: XDP program on {} ({how})", s.interface());
        }
        eprintln!(
            "vtep: running with {} worker(s); SIGINT or SIGTERM stops it",
            workers.len()
        );
        let start = Instant::now();
        // Relaxed: see on_signal.
        while !STOP.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
            if workers.ended_early() > 0 {
                eprintln!("vtep: a worker died; stopping");
                break;
            }
            let now = u32::try_from(start.elapsed().as_secs()).unwrap_or(u32::MAX);
            shared.set_now(now);
            let _ = shared
                .fdb()
                .age_step(now, 256, &mut vxlan_core::fdb::NoEvents);
        }
        // The kernel's drop counters, read while the sockets are open.
        let kernel: Vec<Option<libc::xdp_statistics>> = sockets
            .iter()
            .map(|s| vxlan_pmd::afxdp::xsk_kernel_stats(s.fd).ok())
            .collect();
        let stopped = workers.stop_and_join();
        drop(control);
        // Detach the programs: the interfaces go back to the kernel.
        drop(steering);
        if let Err(e) = stopped {
            return fail(e);
        }
        let s = shared.stats();
        eprintln!(
            "vtep: stopped: {} frames in, {} delivered locally, {} encapsulated, {} flooded, {} dropped",
            s.rx, s.tx_local, s.tx_remote, s.flooded, s.drops()
        );
        let mut port_stats = Vec::new();
        for (s, k) in sockets.iter().zip(&kernel) {
            let (name, queue) = (&s.port, s.queue);
            let p = vxlan_pmd::stats::CounterSet::snapshot(&*s.counters);
            let k = k.unwrap_or(
                // SAFETY: plain integers; all-zero is valid.
                unsafe { std::mem::zeroed() },
            );
            eprintln!(
                "vtep: port {name} queue {queue}: {p}; kernel: {} rx dropped, {} rx ring full, \
                 {} fill ring empty, {} invalid tx",
                k.rx_dropped, k.rx_ring_full, k.rx_fill_ring_empty_descs, k.tx_invalid_descs
            );
            port_stats.push(json!({
                "port": name, "queue": queue,
                "kernel_rx_dropped": k.rx_dropped, "kernel_rx_ring_full": k.rx_ring_full,
                "kernel_fill_ring_empty": k.rx_fill_ring_empty_descs,
                "kernel_tx_invalid": k.tx_invalid_descs,
                "rx_packets": p.rx_packets, "rx_bytes": p.rx_bytes, "rx_dropped": p.rx_dropped,
                "rx_nombuf": p.rx_nombuf, "tx_packets": p.tx_packets, "tx_bytes": p.tx_bytes,
                "tx_dropped": p.tx_dropped,
            }));
        }
        if let Some(dump) = dump {
            let mut v = dump_json(cfg, shared, 0, 0);
            v["ports"] = json!(port_stats);
            let text = serde_json::to_string_pretty(&v).unwrap_or_default();
            if let Err(e) = std::fs::write(&dump, text + "\n") {
                return fail(format!("--dump-json {}: {e}", dump.display()));
            }
        }
        ExitCode::SUCCESS
    }
}

fn dump_json(cfg: &VtepConfig, shared: &VtepShared, too_long: u64, no_tx: u64) -> Value {
    let s = shared.stats();
    let mut drops = serde_json::Map::new();
    for (name, n) in control::drops_by_reason(&s) {
        drops.insert(name.to_string(), json!(n));
    }
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

    use super::{dump_json, fail, start_control_with, RunLimits};

    pub(super) fn run(
        cfg: &VtepConfig,
        path: &Path,
        dump: Option<&Path>,
        limits: RunLimits,
        serve: bool,
    ) -> ExitCode {
        let vtep = match DpdkVtep::from_config(cfg) {
            Ok(v) => v,
            Err(e) => return fail(format!("{}: {e}", path.display())),
        };
        // The control socket (vtepctl) with --serve or a configured
        // [vtep] control_socket; it changes the tables while the workers
        // run.
        let control = if serve || cfg.vtep.control_socket.is_some() {
            match start_control_with(vtep.shared(), cfg, vtep.remote_factory()) {
                Ok(c) => {
                    eprintln!("vtep: control socket {}", c.path().display());
                    Some(c)
                }
                Err(e) => return fail(e),
            }
        } else {
            None
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
        drop(control);
        eprintln!(
            "vtep: workers ran on {} {:?}",
            if loops.on_eal_lcores {
                "EAL lcores"
            } else {
                "EAL-registered threads, lcore ids"
            },
            loops.lcores
        );
        let port_stats: Vec<_> = vtep.ports().iter().map(|p| p.stats()).collect();
        let port_offloads: Vec<_> = vtep.ports().iter().map(|p| p.offloads()).collect();
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
                .zip(&port_offloads)
                .map(|(((p, l), d), o)| {
                    json!({
                        "name": p.name, "rx": l.rx, "tx": l.tx, "tx_dropped": l.tx_dropped,
                        "rx_chained": l.rx_chained,
                        "tx_ipv4_checksum_offloaded": l.tx_ipv4_checksum_offloaded,
                        "tx_udp_checksum_offloaded": l.tx_udp_checksum_offloaded,
                        "driver_ipackets": d.ipackets,
                        "driver_opackets": d.opackets, "driver_imissed": d.imissed,
                        "driver_rx_nombuf": d.rx_nombuf,
                        "offloads": {
                            "rss": o.rss, "rx_rss_hash": o.rx_rss_hash,
                            "rx_ipv4_checksum": o.rx_ipv4_checksum,
                            "rx_udp_checksum": o.rx_udp_checksum,
                            "tx_ipv4_checksum": o.tx_ipv4_checksum,
                            "tx_udp_checksum": o.tx_udp_checksum,
                        },
                    })
                })
                .collect();
            v["ports"] = json!(ports);
            v["mempool"] = json!({"capacity": mempool.capacity(), "in_use": mempool.in_use()});
            v["workers"] = json!({"lcores": loops.lcores, "on_eal_lcores": loops.on_eal_lcores});
            let text = serde_json::to_string_pretty(&v).unwrap_or_default();
            if let Err(e) = std::fs::write(dump, text + "\n") {
                return fail(format!("--dump-json {}: {e}", dump.display()));
            }
        }
        ExitCode::SUCCESS
    }
}
