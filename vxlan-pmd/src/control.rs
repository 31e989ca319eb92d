//! The control socket: `vtepctl` (or any client) changes and inspects a
//! running VTEP over a unix stream socket.
//!
//! The server runs on its own control thread ([`spawn`]); workers never
//! see it except through what every control change goes through anyway:
//! the lock-free FDB and a newly published [`Snapshot`]. It is the only
//! writer of snapshots once it runs (flood-list changes and next-hop
//! rebuilds both happen on its thread), so no change can overwrite
//! another.
//!
//! # Protocol
//!
//! Line-delimited JSON over a unix stream socket: the client writes one
//! request object per line, the server answers each with one response
//! object on one line, in order, and the client may send more requests on
//! the same connection or close it. An idle connection is closed after
//! [`IDLE_TIMEOUT`].
//!
//! Requests (`cmd` plus the arguments that command takes; unknown keys are
//! errors):
//!
//! | `cmd` | arguments | does |
//! |---|---|---|
//! | `"fdb show"` | `vni` (optional) | lists FDB entries |
//! | `"fdb add"` | `vni`, `mac`, and one of `remote` (IP) or `port` (name) | installs a static entry |
//! | `"fdb del"` | `vni`, `mac` | removes an entry (any kind) |
//! | `"stats"` | | counters: total, per core, per VNI, drops by reason |
//! | `"vni show"` | | VNIs with flood lists, groups and ports |
//! | `"remote add"` | `vni`, `ip` | adds a remote VTEP to a VNI's flood list |
//! | `"remote del"` | `vni`, `ip` | removes it |
//!
//! Responses: `{"ok": true, "result": ...}` or `{"ok": false, "error":
//! "..."}`, the error saying what was wrong and, where it helps, what is
//! valid (`unknown VNI 300: configured VNIs are 100, 200`).
//!
//! ```text
//! > {"cmd": "remote add", "vni": 100, "ip": "192.0.2.9"}
//! < {"ok":true,"result":{"vni":100,"ip":"192.0.2.9","remote_index":2,"flood":["192.0.2.1","192.0.2.9"]}}
//! ```
//!
//! # Remote VTEPs
//!
//! Remote VTEPs keep their index in [`Snapshot::remotes`] for the life of
//! the process, because FDB entries name them by index. `remote add`
//! reuses the index of an address already known (from another VNI, a
//! static entry, or an earlier `remote del`) or appends one with its
//! outer-header template. `remote del` takes the address off that VNI's
//! flood list and flushes the entries *learned* (or installed by a control
//! plane) behind it *in that VNI*: the VNI no longer reaches that VTEP, so
//! what was learned through it is stale. Static entries stay (they were
//! configured; `fdb del` removes them), and so do entries in other VNIs.
//! A frame from that VTEP in that VNI still decapsulates and is learned
//! again, as the kernel's vxlan driver does with a removed `remote`.
//! `fdb add --remote IP` for an address not yet known adds it to the
//! remote table (with its template) but to no flood list.

use std::io::{self, BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Map, Value};
use vxlan_core::bridge::{FloodList, PortMode};
use vxlan_core::fdb::{FdbError, FlushFilter, Kind, KindSet, Location};
use vxlan_core::wire::MacAddr;

use crate::build::RemoteFactory;
use crate::config::VtepConfig;
use crate::vtep::{BdStats, Snapshot, VtepShared, VtepStats, DROP_NAMES};

/// Where the control socket is when the configuration does not say
/// (`[vtep] control_socket`). Under `/run`, which only root can write, so
/// nobody else can put a socket there first.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/vxlan-vtep.sock";

/// A connection that sends nothing for this long is closed (the server
/// serves one connection at a time).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the control thread re-checks next hops.
pub const NEXT_HOP_INTERVAL: Duration = Duration::from_millis(500);

/// Where next-hop MACs come from when no `gateway_mac` is configured.
pub trait NextHopSource: Send {
    /// The MAC of the underlay next hop toward `remote`, or `None` while it
    /// is unknown (the source should start resolving it).
    fn next_hop(&mut self, remote: IpAddr) -> Option<MacAddr>;

    /// Called before each round of [`next_hop`](NextHopSource::next_hop)
    /// calls over every remote: a source may read a table once per round
    /// here instead of once per remote.
    fn begin_round(&mut self) {}
}

/// The control plane's view of a VTEP: what requests operate on.
pub struct Control {
    shared: Arc<VtepShared>,
    port_names: Vec<String>,
    factory: RemoteFactory,
    next_hops: Option<Box<dyn NextHopSource>>,
}

/// A request, as sent on the socket.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    cmd: String,
    vni: Option<u32>,
    mac: Option<String>,
    remote: Option<IpAddr>,
    port: Option<String>,
    ip: Option<IpAddr>,
}

impl Control {
    /// Control over `shared`, whose ports are named `port_names` (in port
    /// number order) and whose remote templates `factory` builds.
    pub fn new(shared: Arc<VtepShared>, port_names: Vec<String>, factory: RemoteFactory) -> Self {
        Control {
            shared,
            port_names,
            factory,
            next_hops: None,
        }
    }

    /// Control over a VTEP built from `cfg` (by [`build::vtep`](crate::build::vtep)).
    pub fn from_config(cfg: &VtepConfig, shared: Arc<VtepShared>) -> Self {
        Control::new(
            shared,
            cfg.ports.iter().map(|p| p.name.clone()).collect(),
            RemoteFactory::from_config(cfg),
        )
    }

    /// Resolves unicast remotes' next hops from `source` (used when no
    /// gateway MAC is configured), checked every [`NEXT_HOP_INTERVAL`].
    pub fn with_next_hops(mut self, source: Box<dyn NextHopSource>) -> Self {
        self.next_hops = Some(source);
        self
    }

    /// The VTEP.
    pub fn shared(&self) -> &Arc<VtepShared> {
        &self.shared
    }

    /// Asks the next-hop source about every unicast remote and publishes
    /// one new snapshot with rebuilt templates if any next hop changed.
    /// Returns how many templates changed.
    pub fn refresh_next_hops(&mut self) -> Result<usize, String> {
        let Some(source) = self.next_hops.as_mut() else {
            return Ok(0);
        };
        source.begin_round();
        let snap = self.shared.snapshot();
        let mut next = (*snap).clone();
        let mut changed = 0;
        for r in next.remotes.iter_mut() {
            if r.ip.is_multicast() {
                continue;
            }
            let mac = source.next_hop(r.ip).unwrap_or(MacAddr::ZERO);
            if mac != r.template.next_hop_mac() {
                *r = self.factory.remote(r.ip, mac)?;
                changed += 1;
            }
        }
        if changed > 0 {
            self.shared.update(next).map_err(|e| e.to_string())?;
        }
        Ok(changed)
    }

    /// Carries out one request line and returns the response line (without
    /// the newline).
    pub fn handle_line(&mut self, line: &str) -> String {
        let response = match serde_json::from_str::<Request>(line) {
            Ok(req) => self.handle(&req),
            Err(e) => Err(format!("bad request: {e}")),
        };
        let v = match response {
            Ok(result) => json!({"ok": true, "result": result}),
            Err(error) => json!({"ok": false, "error": error}),
        };
        v.to_string()
    }

    fn handle(&mut self, req: &Request) -> Result<Value, String> {
        let allowed: &[&str] = match req.cmd.as_str() {
            "fdb show" => &["vni"],
            "fdb add" => &["vni", "mac", "remote", "port"],
            "fdb del" => &["vni", "mac"],
            "stats" | "vni show" => &[],
            "remote add" | "remote del" => &["vni", "ip"],
            other => {
                return Err(format!(
                    "unknown command '{other}': commands are fdb show, fdb add, fdb del, stats, vni show, remote add, remote del"
                ))
            }
        };
        let given = [
            ("vni", req.vni.is_some()),
            ("mac", req.mac.is_some()),
            ("remote", req.remote.is_some()),
            ("port", req.port.is_some()),
            ("ip", req.ip.is_some()),
        ];
        if let Some((k, _)) = given.iter().find(|(k, g)| *g && !allowed.contains(k)) {
            return Err(format!("'{}' takes no {k} argument", req.cmd));
        }
        match req.cmd.as_str() {
            "fdb show" => self.fdb_show(req.vni),
            "fdb add" => self.fdb_add(req),
            "fdb del" => self.fdb_del(req),
            "stats" => Ok(self.stats()),
            "vni show" => Ok(self.vni_show()),
            "remote add" => self.remote_add(need(req.vni, "vni")?, need(req.ip, "ip")?),
            _ => self.remote_del(need(req.vni, "vni")?, need(req.ip, "ip")?),
        }
    }

    /// The bridge domain of `vni`, or an error listing the configured ones.
    fn bd_of(&self, snap: &Snapshot, vni: u32) -> Result<u16, String> {
        snap.bds
            .iter()
            .position(|b| b.vni == vni)
            .and_then(|i| u16::try_from(i).ok())
            .ok_or_else(|| {
                let list: Vec<String> = snap.bds.iter().map(|b| b.vni.to_string()).collect();
                if list.is_empty() {
                    format!("unknown VNI {vni}: no VNIs are configured")
                } else {
                    format!("unknown VNI {vni}: configured VNIs are {}", list.join(", "))
                }
            })
    }

    fn port_name(&self, port: u16) -> String {
        self.port_names
            .get(usize::from(port))
            .cloned()
            .unwrap_or_else(|| format!("#{port}"))
    }

    fn location_json(&self, snap: &Snapshot, loc: Location) -> (Value, Value, Value) {
        match loc {
            Location::Local { port, vlan } => {
                (json!(self.port_name(port)), json!(vlan), Value::Null)
            }
            Location::Remote(i) => (
                Value::Null,
                Value::Null,
                snap.remotes
                    .get(usize::try_from(i).unwrap_or(usize::MAX))
                    .map_or(Value::Null, |r| json!(r.ip.to_string())),
            ),
        }
    }

    fn fdb_show(&self, vni: Option<u32>) -> Result<Value, String> {
        let snap = self.shared.snapshot();
        let only = vni.map(|v| self.bd_of(&snap, v)).transpose()?;
        let now = self.shared.now();
        let mut entries: Vec<(u32, MacAddr, Value)> = self
            .shared
            .fdb()
            .iter()
            .filter(|r| only.is_none_or(|b| b == r.bd))
            .map(|r| {
                let vni = snap.bds.get(usize::from(r.bd)).map_or(0, |b| b.vni);
                let (port, vlan, remote) = self.location_json(&snap, r.entry.location);
                let kind = kind_name(r.entry.kind);
                let age = if r.entry.kind == Kind::Learned {
                    // Ticks are kept in 24 bits.
                    json!(now.wrapping_sub(r.entry.last_seen) & 0x00ff_ffff)
                } else {
                    Value::Null
                };
                let v = json!({
                    "vni": vni, "mac": r.mac.to_string(), "kind": kind,
                    "port": port, "vlan": vlan, "remote": remote,
                    "age_secs": age, "frozen": r.entry.frozen,
                });
                (vni, r.mac, v)
            })
            .collect();
        entries.sort_by_key(|(vni, mac, _)| (*vni, mac.0));
        Ok(json!({"entries": entries.into_iter().map(|e| e.2).collect::<Vec<_>>()}))
    }

    fn fdb_add(&mut self, req: &Request) -> Result<Value, String> {
        let vni = need(req.vni, "vni")?;
        let mac = parse_mac(req.mac.as_deref())?;
        let snap = self.shared.snapshot();
        let bd = self.bd_of(&snap, vni)?;
        let location = match (&req.remote, &req.port) {
            (Some(ip), None) => {
                let (i, next) = self.remote_for(&snap, *ip)?;
                if let Some(next) = next {
                    self.shared.update(next).map_err(|e| e.to_string())?;
                }
                Location::Remote(i)
            }
            (None, Some(name)) => {
                let Some(port) = self
                    .port_names
                    .iter()
                    .position(|p| p == name)
                    .and_then(|p| u16::try_from(p).ok())
                else {
                    return Err(format!(
                        "unknown port '{name}': ports are {}",
                        self.port_names.join(", ")
                    ));
                };
                let mode = snap.ports.get(usize::from(port)).copied();
                let Some(vlan) = mode.and_then(|m| m.vid_for(bd)) else {
                    return Err(format!("port '{name}' does not carry VNI {vni}"));
                };
                Location::Local { port, vlan }
            }
            _ => return Err("fdb add needs exactly one of remote IP or port NAME".into()),
        };
        self.shared
            .fdb()
            .add_static(bd, mac, location)
            .map_err(|e| match e {
                FdbError::TableFull => "the FDB is full".to_string(),
                e => format!("cannot install {mac} in VNI {vni}: {e:?}"),
            })?;
        let snap = self.shared.snapshot();
        let (port, vlan, remote) = self.location_json(&snap, location);
        Ok(json!({"vni": vni, "mac": mac.to_string(), "kind": "static",
                  "port": port, "vlan": vlan, "remote": remote}))
    }

    fn fdb_del(&mut self, req: &Request) -> Result<Value, String> {
        let vni = need(req.vni, "vni")?;
        let mac = parse_mac(req.mac.as_deref())?;
        let snap = self.shared.snapshot();
        let bd = self.bd_of(&snap, vni)?;
        if self.shared.fdb().remove(bd, mac) {
            Ok(json!({"vni": vni, "mac": mac.to_string(), "removed": true}))
        } else {
            Err(format!("no FDB entry for {mac} in VNI {vni}"))
        }
    }

    /// The index of the remote at `ip`, and a snapshot to publish when it
    /// had to be added.
    fn remote_for(
        &mut self,
        snap: &Snapshot,
        ip: IpAddr,
    ) -> Result<(u32, Option<Snapshot>), String> {
        let local = self.factory.local_ip;
        if ip.is_ipv4() != local.is_ipv4() {
            return Err(format!(
                "{ip} is not of the same family as this VTEP's address {local}"
            ));
        }
        if ip == local {
            return Err(format!("{ip} is this VTEP's own address"));
        }
        if ip.is_unspecified() || ip.is_multicast() || is_broadcast(ip) {
            return Err(format!(
                "{ip} is not a unicast address (multicast groups are configured with [[vni]] group)"
            ));
        }
        if let Some(i) = snap.remote_index(ip) {
            return Ok((i, None));
        }
        let next_hop = match self.next_hops.as_mut() {
            Some(s) => {
                s.begin_round();
                s.next_hop(ip).unwrap_or(MacAddr::ZERO)
            }
            None => self.factory.initial_next_hop(ip),
        };
        let mut next = snap.clone();
        next.remotes.push(self.factory.remote(ip, next_hop)?);
        let i = u32::try_from(next.remotes.len() - 1)
            .ok()
            .filter(|i| Location::Remote(*i).encode().is_some())
            .ok_or("too many remote VTEPs")?;
        Ok((i, Some(next)))
    }

    fn remote_add(&mut self, vni: u32, ip: IpAddr) -> Result<Value, String> {
        let snap = self.shared.snapshot();
        let bd = self.bd_of(&snap, vni)?;
        let (i, next) = self.remote_for(&snap, ip)?;
        let mut next = next.unwrap_or_else(|| (*snap).clone());
        let cfg = &mut next.bds[usize::from(bd)];
        if cfg.flood.as_slice().contains(&i) {
            return Err(format!("{ip} is already on VNI {vni}'s flood list"));
        }
        let mut list = cfg.flood.as_slice().to_vec();
        list.push(i);
        cfg.flood = FloodList::new(&list)
            .ok_or_else(|| format!("VNI {vni}'s flood list is full (at most 64 remote VTEPs)"))?;
        let flood = flood_ips(&next, bd);
        self.shared.update(next).map_err(|e| e.to_string())?;
        Ok(json!({"vni": vni, "ip": ip.to_string(), "remote_index": i, "flood": flood}))
    }

    fn remote_del(&mut self, vni: u32, ip: IpAddr) -> Result<Value, String> {
        let snap = self.shared.snapshot();
        let bd = self.bd_of(&snap, vni)?;
        let mut next = (*snap).clone();
        let cfg = &mut next.bds[usize::from(bd)];
        let Some(i) = snap
            .remote_index(ip)
            .filter(|i| cfg.flood.as_slice().contains(i))
        else {
            let list = flood_ips(&snap, bd);
            return Err(format!(
                "{ip} is not on VNI {vni}'s flood list (it holds: {})",
                if list.is_empty() {
                    "nothing".to_string()
                } else {
                    list.join(", ")
                }
            ));
        };
        let list: Vec<u32> = cfg
            .flood
            .as_slice()
            .iter()
            .copied()
            .filter(|r| *r != i)
            .collect();
        cfg.flood = FloodList::new(&list).ok_or("flood list")?;
        let flood = flood_ips(&next, bd);
        self.shared.update(next).map_err(|e| e.to_string())?;
        // After the new snapshot: a worker still on the old one may learn
        // one more entry behind the remote, which the flush then removes.
        let flushed = self.shared.fdb().flush(FlushFilter {
            bd: Some(bd),
            port: None,
            remote: Some(i),
            kinds: KindSet::DYNAMIC,
        });
        Ok(json!({"vni": vni, "ip": ip.to_string(), "flood": flood, "flushed": flushed}))
    }

    fn vni_show(&self) -> Value {
        let snap = self.shared.snapshot();
        let vnis: Vec<Value> = snap
            .bds
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let bd = u16::try_from(i).unwrap_or(u16::MAX);
                let mut flood = Vec::new();
                let mut group = Value::Null;
                for r in b.flood.as_slice() {
                    let Some(remote) = snap.remotes.get(usize::try_from(*r).unwrap_or(usize::MAX))
                    else {
                        continue;
                    };
                    if remote.ip.is_multicast() {
                        group = json!(remote.ip.to_string());
                        continue;
                    }
                    let mac = remote.template.next_hop_mac();
                    flood.push(json!({
                        "ip": remote.ip.to_string(),
                        "next_hop": if mac.is_zero() { Value::Null } else { json!(mac.to_string()) },
                    }));
                }
                let ports: Vec<Value> = snap
                    .ports
                    .iter()
                    .enumerate()
                    .filter_map(|(p, m)| {
                        let vlan = match m {
                            PortMode::Underlay => return None,
                            m => m.vid_for(bd)?,
                        };
                        let port = u16::try_from(p).ok()?;
                        Some(json!({"name": self.port_name(port), "vlan": vlan}))
                    })
                    .collect();
                json!({
                    "vni": b.vni, "flood": flood, "group": group, "ports": ports,
                    "fdb_entries": self.shared.fdb().bd_entries(bd),
                })
            })
            .collect();
        json!({
            "vnis": vnis,
            "underlay_port": snap.underlay.map(|p| self.port_name(p)),
        })
    }

    fn stats(&self) -> Value {
        let snap = self.shared.snapshot();
        let cores: Vec<Value> = self
            .shared
            .stats_per_core()
            .iter()
            .map(stats_json)
            .collect();
        let per_bd = self.shared.bd_stats_per_core();
        let vnis: Vec<Value> = snap
            .bds
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let mut total = BdStats::default();
                let cores: Vec<Value> = per_bd
                    .iter()
                    .map(|c| {
                        let s = c.get(i).copied().unwrap_or_default();
                        total += s;
                        bd_stats_json(&s)
                    })
                    .collect();
                json!({"vni": b.vni, "total": bd_stats_json(&total), "cores": cores})
            })
            .collect();
        let f = self.shared.fdb().stats();
        json!({
            "total": stats_json(&self.shared.stats()),
            "cores": cores,
            "vnis": vnis,
            "fdb": {
                "entries": f.entries, "learns": f.learns, "moves": f.moves, "ages": f.ages,
                "refused_table_full": f.refused_table_full, "refused_bd_limit": f.refused_bd_limit,
                "freezes": f.freezes, "frozen_refused": f.frozen_refused,
            },
            "pool": {"capacity": self.shared.pool().capacity(), "in_use": self.shared.pool().in_use()},
        })
    }
}

fn need<T>(v: Option<T>, key: &str) -> Result<T, String> {
    v.ok_or_else(|| format!("missing {key}"))
}

fn parse_mac(s: Option<&str>) -> Result<MacAddr, String> {
    let s = need(s, "mac")?;
    let mac: MacAddr = s
        .parse()
        .map_err(|_| format!("'{s}' is not a MAC address (write it as 02:00:00:00:00:01)"))?;
    if !mac.is_learnable() {
        return Err(format!("{mac} is not a unicast, non-zero MAC"));
    }
    Ok(mac)
}

fn is_broadcast(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v) if v.is_broadcast())
}

fn flood_ips(snap: &Snapshot, bd: u16) -> Vec<String> {
    snap.bds
        .get(usize::from(bd))
        .map(|b| {
            b.flood
                .as_slice()
                .iter()
                .filter_map(|r| snap.remotes.get(usize::try_from(*r).ok()?))
                .map(|r| r.ip.to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Learned => "learned",
        Kind::Static => "static",
        Kind::Sticky => "sticky",
        Kind::External => "external",
    }
}

/// The drop reasons of `s`, by name (the names `stats` reports).
pub fn drops_by_reason(s: &VtepStats) -> Vec<(&'static str, u64)> {
    let mut v: Vec<(&'static str, u64)> = DROP_NAMES.iter().copied().zip(s.drop_bridge).collect();
    v.push(("pool_empty", s.drop_pool_empty));
    v.push(("encap_too_big", s.drop_too_big));
    v.push(("encap_other", s.drop_encap));
    v.push(("nexthop_unresolved", s.drop_nexthop_unresolved));
    v
}

fn stats_json(s: &VtepStats) -> Value {
    let mut drops = Map::new();
    for (name, n) in drops_by_reason(s) {
        drops.insert(name.to_string(), json!(n));
    }
    json!({
        "rx": s.rx, "tx_local": s.tx_local, "tx_remote": s.tx_remote, "flooded": s.flooded,
        "flood_copies": s.flood_copies, "suppressed": s.suppressed, "host": s.host,
        "pmtu_replies": s.pmtu_replies, "drops": drops, "drops_total": s.drops(),
    })
}

fn bd_stats_json(s: &BdStats) -> Value {
    json!({
        "from_access": s.from_access, "from_overlay": s.from_overlay,
        "to_local": s.to_local, "to_remote": s.to_remote, "flooded": s.flooded,
    })
}

/// The running control server. Dropping it stops the control thread and
/// removes the socket file.
pub struct ControlHandle {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    path: PathBuf,
}

impl ControlHandle {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlHandle {
    fn drop(&mut self) {
        // Release: nothing else is published with it; the thread only needs
        // to see the flag eventually (it polls it).
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds `path`. A socket file left by a process that is gone (nobody
/// accepts on it) is replaced; a live one is an error.
fn bind(path: &Path) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
    }
    match UnixListener::bind(path) {
        Ok(l) => Ok(l),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            if UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!(
                        "{}: another process is serving this control socket",
                        path.display()
                    ),
                ));
            }
            std::fs::remove_file(path)?;
            UnixListener::bind(path)
        }
        Err(e) => Err(e),
    }
}

/// Starts the control server on `path`, on a thread of its own.
pub fn spawn(path: &Path, mut control: Control) -> io::Result<ControlHandle> {
    let listener = bind(path)
        .map_err(|e| io::Error::new(e.kind(), format!("control socket {}: {e}", path.display())))?;
    // Only the owner (root, for a daemon) may change the VTEP.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    listener.set_nonblocking(true)?;
    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("vtep-control".into())
        .spawn(move || serve(&listener, &mut control, &thread_stop))?;
    Ok(ControlHandle {
        stop,
        thread: Some(thread),
        path: path.to_path_buf(),
    })
}

fn serve(listener: &UnixListener, control: &mut Control, stop: &AtomicBool) {
    let mut last_check: Option<Instant> = None;
    // Acquire: pairs with the Release in ControlHandle::drop (no data rides
    // on it, but it keeps the intent visible).
    while !stop.load(Ordering::Acquire) {
        if last_check.is_none_or(|t| t.elapsed() >= NEXT_HOP_INTERVAL) {
            if let Err(e) = control.refresh_next_hops() {
                eprintln!("vtep-control: next hops: {e}");
            }
            last_check = Some(Instant::now());
        }
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(e) = session(stream, control, stop) {
                    if !matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) {
                        eprintln!("vtep-control: {e}");
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                eprintln!("vtep-control: accept: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn session(stream: UnixStream, control: &mut Control, stop: &AtomicBool) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    let mut out = stream.try_clone()?;
    let reader = BufReader::new(stream);
    for line in reader.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let mut response = control.handle_line(&line);
        response.push('\n');
        out.write_all(response.as_bytes())?;
        // Acquire: see `serve`.
        if stop.load(Ordering::Acquire) {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::VtepConfig;
    use crate::pool::Pool;

    const CONFIG: &str = r#"
        [vtep]
        local_ip = "192.0.2.2"
        mac = "02:00:00:00:00:02"
        [underlay]
        port = "uplink"
        gateway_mac = "02:00:00:00:00:01"
        [[port]]
        name = "uplink"
        kind = "memory"
        [[port]]
        name = "vm1"
        kind = "memory"
        access = { vni = 100 }
        [[vni]]
        id = 100
        flood = ["192.0.2.1"]
    "#;

    fn control() -> Control {
        let cfg = VtepConfig::from_toml_str(CONFIG).unwrap();
        let pool = Pool::new(16, 2048, 128).unwrap();
        let shared = crate::build::vtep(&cfg, pool).unwrap();
        Control::from_config(&cfg, shared)
    }

    fn call(path: &Path, line: &str) -> Value {
        let s = UnixStream::connect(path).unwrap();
        (&s).write_all(format!("{line}\n").as_bytes()).unwrap();
        let mut r = String::new();
        BufReader::new(&s).read_line(&mut r).unwrap();
        serde_json::from_str(&r).unwrap()
    }

    #[test]
    fn one_socket_per_path_stale_files_replaced_and_removed_on_drop() {
        let dir = std::env::temp_dir().join(format!("vxctl-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("sub").join("ctl.sock");
        let first = spawn(&path, control()).unwrap();
        let v = call(&path, r#"{"cmd": "vni show"}"#);
        assert_eq!(v["result"]["vnis"][0]["vni"], 100);
        // Two requests on one connection, answered in order.
        let s = UnixStream::connect(&path).unwrap();
        (&s).write_all(b"{\"cmd\": \"stats\"}\n{\"cmd\": \"nope\"}\n")
            .unwrap();
        let mut lines = BufReader::new(&s).lines();
        let a: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        let b: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        assert_eq!(a["ok"], true);
        assert!(b["error"]
            .as_str()
            .unwrap()
            .contains("unknown command 'nope'"));
        drop(lines);
        drop(s);
        // A second server on a live socket is refused.
        let e = spawn(&path, control()).err().unwrap();
        assert!(e.to_string().contains("another process is serving"), "{e}");
        drop(first);
        assert!(!path.exists(), "removed on drop");
        // A file left by a dead process is replaced.
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let again = spawn(&path, control()).unwrap();
        assert_eq!(call(&path, r#"{"cmd": "stats"}"#)["ok"], true);
        drop(again);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn requests_are_checked() {
        let mut c = control();
        let r: Value = serde_json::from_str(&c.handle_line("not json")).unwrap();
        assert!(r["error"].as_str().unwrap().starts_with("bad request"));
        let r: Value =
            serde_json::from_str(&c.handle_line(r#"{"cmd": "stats", "vni": 100}"#)).unwrap();
        assert_eq!(r["error"], "'stats' takes no vni argument");
        let r: Value =
            serde_json::from_str(&c.handle_line(r#"{"cmd": "fdb show", "colour": 1}"#)).unwrap();
        assert!(r["error"].as_str().unwrap().contains("colour"), "{r}");
        let r: Value =
            serde_json::from_str(&c.handle_line(r#"{"cmd": "remote add", "vni": 100}"#)).unwrap();
        assert_eq!(r["error"], "missing ip");
        for bad in ["192.0.2.2", "239.1.1.1", "255.255.255.255", "0.0.0.0"] {
            let r: Value = serde_json::from_str(&c.handle_line(&format!(
                r#"{{"cmd": "remote add", "vni": 100, "ip": "{bad}"}}"#
            )))
            .unwrap();
            assert_eq!(r["ok"], false, "{bad}: {r}");
        }
        // Re-adding a deleted remote reuses its index.
        let del = c.handle_line(r#"{"cmd": "remote del", "vni": 100, "ip": "192.0.2.1"}"#);
        assert!(del.contains(r#""flood":[]"#), "{del}");
        let add = c.handle_line(r#"{"cmd": "remote add", "vni": 100, "ip": "192.0.2.1"}"#);
        assert!(add.contains(r#""remote_index":0"#), "{add}");
        assert_eq!(c.shared().snapshot().remotes.len(), 1);
    }
}
