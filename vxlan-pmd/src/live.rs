//! Live ports for the `vtep` daemon (feature `af-xdp`): every `[[port]]`
//! of kind `af_xdp` opened as one AF_XDP socket per queue, with the XDP
//! steering program attached to its interface.
//!
//! Worker `w` gets queue `w` of every port (the configuration checks that
//! `queues` equals `vtep.workers`), as one single-queue [`Port`] each, in
//! configuration order, so [`PortLoop`](crate::run::PortLoop) numbers
//! them as the VTEP does. The underlay port's program passes everything
//! but our VXLAN to the kernel (so it keeps answering ARP, neighbour
//! discovery and ping for the underlay address); an access port's program
//! takes every frame.

use std::os::fd::RawFd;
use std::sync::Arc;

use crate::afxdp::{AfXdpPort, AttachMode, BindMode, Filter, XdpSteering, XskConfig};
use crate::config::{ConfigError, PortKind, VtepConfig, XdpBindMode};
use crate::pool::Pool;
use crate::port::Port;
use crate::stats::PortCounters;

/// Every live port, opened and steered.
pub struct LivePorts {
    /// `per_worker[w]`: worker `w`'s queue of every port, in port order.
    pub per_worker: Vec<Vec<Box<dyn Port>>>,
    /// Every socket, for reporting.
    pub sockets: Vec<LiveSocket>,
    /// The attached programs; dropping them detaches them.
    pub steering: Vec<XdpSteering>,
}

impl std::fmt::Debug for LivePorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LivePorts")
            .field("workers", &self.per_worker.len())
            .field("steering", &self.steering)
            .finish()
    }
}

/// One socket's identity and counters.
#[derive(Debug)]
pub struct LiveSocket {
    /// The `[[port]]` name.
    pub port: String,
    /// The queue.
    pub queue: u32,
    /// Our counters.
    pub counters: Arc<PortCounters>,
    /// The socket, for [`xsk_kernel_stats`](crate::afxdp::xsk_kernel_stats)
    /// (valid while the port is open, that is, until its worker stops).
    pub fd: RawFd,
}

fn err<T>(key: String, message: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError {
        key,
        message: message.into(),
    })
}

/// Opens every port of `cfg` (all must be `af_xdp`), receiving into
/// `pool`. Errors name the port's key.
pub fn open(cfg: &VtepConfig, pool: &Arc<Pool>) -> Result<LivePorts, ConfigError> {
    let workers = cfg.vtep.workers;
    let queues = u32::try_from(workers).unwrap_or(u32::MAX);
    let underlay = cfg.underlay.as_ref().and_then(|u| cfg.port_index(&u.port));
    let mut live = LivePorts {
        per_worker: (0..workers).map(|_| Vec::new()).collect(),
        sockets: Vec::new(),
        steering: Vec::new(),
    };
    if let Some(i) = cfg.vnis.iter().position(|n| n.group.is_some()) {
        return err(
            format!("vni[{i}].group"),
            "the XDP program steers only unicast VXLAN to our address to AF_XDP \
             sockets, so a multicast group would never be received: use flood = [...]",
        );
    }
    // Every check before anything is opened.
    if let Some(i) = cfg.ports.iter().position(|p| p.kind != PortKind::AfXdp) {
        return err(
            format!("port[{i}].kind"),
            "a live daemon (any af_xdp port) runs af_xdp ports only; \
             run pcap configurations separately",
        );
    }
    for (i, p) in cfg.ports.iter().enumerate() {
        let key = |k: &str| format!("port[{i}].{k}");
        let Ok(port_id) = u16::try_from(i) else {
            return err(key("name"), "too many ports");
        };
        let iface = p.interface.as_deref().unwrap_or_default();
        let mode = match p.mode.unwrap_or_default() {
            XdpBindMode::Copy => BindMode::Copy,
            XdpBindMode::ZeroCopy => BindMode::ZeroCopy,
        };
        let xsk = XskConfig {
            mode,
            ..XskConfig::default()
        };
        let mut sockets = Vec::with_capacity(workers);
        for q in 0..queues {
            let mut s = AfXdpPort::open(iface, q, xsk, Arc::clone(pool)).or_else(|e| {
                if mode == BindMode::ZeroCopy && e.step == "bind" {
                    return err(
                        key("mode"),
                        format!("{iface} queue {q}: {e}: the driver cannot bind zero-copy; use mode = \"copy\""),
                    );
                }
                err(
                    key("interface"),
                    format!("{iface} queue {q}: {e} (does the interface exist and have {queues} queue(s)?)"),
                )
            })?;
            s.set_port_id(port_id);
            s.set_name(p.name.clone());
            live.sockets.push(LiveSocket {
                port: p.name.clone(),
                queue: q,
                counters: s.counters(),
                fd: s.raw_fd(),
            });
            sockets.push(s);
        }
        let filter = if Some(i) == underlay {
            Filter::Vxlan {
                local: cfg.vtep.local_ip,
                port: cfg.vtep.udp_port,
            }
        } else {
            Filter::All
        };
        // Zero-copy needs the program in the driver; copy mode takes the
        // driver when it can and the generic hook otherwise.
        let attach = match mode {
            BindMode::ZeroCopy => Some(AttachMode::Native),
            BindMode::Copy => None,
        };
        let steering = XdpSteering::attach(iface, queues, filter, attach)
            .or_else(|e| err(key("interface"), format!("{iface}: {e}")))?;
        for (w, s) in sockets.into_iter().enumerate() {
            steering
                .register(&s)
                .or_else(|e| err(key("interface"), format!("{iface}: {e}")))?;
            live.per_worker[w].push(Box::new(s));
        }
        live.steering.push(steering);
    }
    Ok(live)
}
