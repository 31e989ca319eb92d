//! From a checked [`VtepConfig`] to a running [`VtepShared`]: port modes,
//! bridge domains, the remote VTEP table with one encapsulation template
//! each, the decapsulation policy and the static FDB entries.
//!
//! Remote VTEPs are numbered in order of first mention (flood lists, then
//! static entries). A VNI with a multicast `group` gets one "remote" whose
//! outer destination is the group and whose next hop is the group's
//! multicast MAC (RFC 1112 / RFC 2464 mapping), and decapsulation accepts
//! frames sent to groups.

use std::net::IpAddr;
use std::sync::Arc;

use vxlan_core::bridge::{BdConfig, FloodList, PortMode};
use vxlan_core::decap::DecapConfig;
use vxlan_core::encap::{EncapConfig, EncapTemplate, TxChecksumOffload};
use vxlan_core::fdb::Location;
use vxlan_core::tunnel::ParseConfig;
use vxlan_core::wire::{MacAddr, ReservedBitsPolicy};

use crate::config::{BridgeMode, ConfigError, ReservedBits, VtepConfig};
use crate::pool::Pool;
use crate::vtep::{RemoteVtep, Sizing, Snapshot, VtepShared};

fn err<T>(key: &str, message: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError {
        key: key.to_string(),
        message: message.into(),
    })
}

/// The multicast MAC an IP group maps to.
pub fn group_mac(group: IpAddr) -> MacAddr {
    match group {
        IpAddr::V4(g) => {
            let o = g.octets();
            MacAddr([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]])
        }
        IpAddr::V6(g) => {
            let o = g.octets();
            MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
        }
    }
}

/// Builds the outer-header template toward each remote VTEP, from the
/// configuration's `[vtep]` and `[underlay]` keys. The control socket uses
/// it to add remotes while the VTEP runs, and the next-hop resolver to
/// rebuild templates when a next hop's MAC changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteFactory {
    /// This VTEP's underlay address.
    pub local_ip: IpAddr,
    /// This VTEP's underlay MAC.
    pub local_mac: MacAddr,
    /// VXLAN UDP destination port.
    pub udp_port: u16,
    /// Underlay IP MTU.
    pub underlay_mtu: u16,
    /// `[underlay] gateway_mac`: the next hop of every unicast remote. When
    /// `None`, unicast remotes start unresolved (next hop all-zero, frames
    /// to them counted as `nexthop_unresolved` drops) until a resolver
    /// fills in their next hop.
    pub gateway: Option<MacAddr>,
    /// The checksums the underlay device computes for the templates'
    /// frames (see [`TxChecksumOffload`]); none from a configuration,
    /// which knows nothing of devices: a DPDK VTEP sets it from its
    /// underlay port ([`DpdkVtep`](crate::dpdk::DpdkVtep), feature
    /// `dpdk`).
    pub tx_offload: TxChecksumOffload,
}

impl RemoteFactory {
    /// The factory for a checked configuration.
    pub fn from_config(cfg: &VtepConfig) -> RemoteFactory {
        let v = &cfg.vtep;
        RemoteFactory {
            local_ip: v.local_ip,
            local_mac: v.mac,
            udp_port: v.udp_port,
            underlay_mtu: v.underlay_mtu.unwrap_or(1500),
            gateway: cfg.underlay.as_ref().and_then(|u| u.gateway_mac),
            tx_offload: TxChecksumOffload::NONE,
        }
    }

    /// The next hop a new remote at `ip` starts with: the group's MAC for a
    /// multicast group, else the gateway (all-zero when there is none).
    pub fn initial_next_hop(&self, ip: IpAddr) -> MacAddr {
        if ip.is_multicast() {
            group_mac(ip)
        } else {
            self.gateway.unwrap_or(MacAddr::ZERO)
        }
    }

    /// The remote at `ip` with next hop `next_hop`.
    pub fn remote(&self, ip: IpAddr, next_hop: MacAddr) -> Result<RemoteVtep, String> {
        let ecfg = EncapConfig {
            dst_port: self.udp_port,
            underlay_mtu: self.underlay_mtu,
            tx_offload: self.tx_offload,
            ..EncapConfig::new(self.local_ip, ip, self.local_mac, next_hop)
        };
        let template = EncapTemplate::new(&ecfg).map_err(|e| format!("remote {ip}: {e}"))?;
        Ok(RemoteVtep { ip, template })
    }
}

/// Builds the switching snapshot a configuration describes.
pub fn snapshot(cfg: &VtepConfig) -> Result<Snapshot, ConfigError> {
    snapshot_with(cfg, &RemoteFactory::from_config(cfg))
}

/// [`snapshot`] with the remote templates built by `factory` (the
/// configuration's, with a device's transmit checksum offloads, say).
pub fn snapshot_with(cfg: &VtepConfig, factory: &RemoteFactory) -> Result<Snapshot, ConfigError> {
    let v = &cfg.vtep;
    let overlay = v.mode == BridgeMode::Overlay;
    let underlay = match &cfg.underlay {
        Some(u) if overlay => Some(
            u16::try_from(cfg.port_index(&u.port).unwrap_or(usize::MAX))
                .or_else(|_| err("underlay.port", "too many ports"))?,
        ),
        _ => None,
    };
    let bd_of = |vni: u32| {
        cfg.vnis
            .iter()
            .position(|n| n.id == vni)
            .and_then(|i| u16::try_from(i).ok())
    };
    let mut ports = Vec::with_capacity(cfg.ports.len());
    for (i, p) in cfg.ports.iter().enumerate() {
        let mode = match &p.access {
            _ if Some(i) == underlay.map(usize::from) => PortMode::Underlay,
            None => PortMode::Underlay, // no tenant attachment: not switched
            Some(a) => match (a.vni, &a.vlans) {
                (Some(vni), _) => PortMode::access(bd_of(vni).unwrap_or(u16::MAX)),
                (None, Some(vlans)) => {
                    let pairs: Vec<(u16, u16)> = vlans
                        .iter()
                        .map(|(vid, vni)| (*vid, bd_of(*vni).unwrap_or(u16::MAX)))
                        .collect();
                    match PortMode::trunk(&pairs) {
                        Some(t) => t,
                        None => {
                            return err(
                                &format!("port[{i}].access.vlans"),
                                "at most 16 VLANs per trunk",
                            )
                        }
                    }
                }
                (None, None) => PortMode::Underlay,
            },
        };
        ports.push(mode);
    }
    // Remote VTEPs: flood lists, groups, then static entries.
    let mut remotes: Vec<(IpAddr, MacAddr)> = Vec::new();
    let mut index = |ip: IpAddr, key: &str| -> Result<u32, ConfigError> {
        if let Some(i) = remotes.iter().position(|(r, _)| *r == ip) {
            return u32::try_from(i).or_else(|_| err(key, "too many remote VTEPs"));
        }
        remotes.push((ip, factory.initial_next_hop(ip)));
        u32::try_from(remotes.len() - 1).or_else(|_| err(key, "too many remote VTEPs"))
    };
    let mut bds = Vec::with_capacity(cfg.vnis.len());
    for (i, n) in cfg.vnis.iter().enumerate() {
        let mut list = Vec::new();
        if overlay {
            for ip in n.flood.iter().chain(n.group.iter()) {
                list.push(index(*ip, &format!("vni[{i}].flood"))?);
            }
        }
        let Some(flood) = FloodList::new(&list) else {
            return err(
                &format!("vni[{i}].flood"),
                "at most 64 distinct remote VTEPs per VNI",
            );
        };
        bds.push(BdConfig { vni: n.id, flood });
    }
    for (i, f) in cfg.fdb.iter().enumerate() {
        if let Some(ip) = f.remote {
            index(ip, &format!("fdb[{i}].remote"))?;
        }
    }
    let mut templates = Vec::with_capacity(remotes.len());
    for (ip, next_hop) in &remotes {
        templates.push(factory.remote(*ip, *next_hop).or_else(|e| err("vtep", e))?);
    }
    let mut parse = ParseConfig::empty()
        .with_vxlan_port(v.udp_port)
        .or_else(|e| err("vtep.udp_port", e.to_string()))?;
    parse = parse.with_reserved_bits(match v.reserved_bits {
        ReservedBits::Ignore => ReservedBitsPolicy::Ignore,
        ReservedBits::Strict => ReservedBitsPolicy::Strict,
    });
    let mut decap = DecapConfig::new(v.local_ip);
    decap.parse = parse;
    decap.accept_multicast = cfg.vnis.iter().any(|n| n.group.is_some());
    Ok(Snapshot {
        ports,
        bds,
        remotes: templates,
        decap,
        underlay,
        suppress_arp_nd: true,
    })
}

/// Builds the shared VTEP state and installs the static FDB entries.
pub fn vtep(cfg: &VtepConfig, pool: Arc<Pool>) -> Result<Arc<VtepShared>, ConfigError> {
    vtep_with(cfg, pool, &RemoteFactory::from_config(cfg))
}

/// [`vtep`] with the remote templates built by `factory` (see
/// [`snapshot_with`]).
pub fn vtep_with(
    cfg: &VtepConfig,
    pool: Arc<Pool>,
    factory: &RemoteFactory,
) -> Result<Arc<VtepShared>, ConfigError> {
    let snap = snapshot_with(cfg, factory)?;
    let sizing = Sizing {
        fdb_entries: cfg.vtep.fdb_capacity.unwrap_or(65_536),
        neighbors: 65_536,
        workers: cfg.vtep.workers,
        ageing: cfg.vtep.ageing_secs,
    };
    let statics: Vec<(u16, MacAddr, Location, String)> = cfg
        .fdb
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let bd = cfg
                .vnis
                .iter()
                .position(|n| n.id == f.vni)
                .and_then(|b| u16::try_from(b).ok())
                .unwrap_or(0);
            let loc = match (&f.remote, &f.port) {
                (Some(ip), _) => Location::Remote(snap.remote_index(*ip).unwrap_or(u32::MAX)),
                (None, Some(p)) => Location::Local {
                    port: u16::try_from(cfg.port_index(p).unwrap_or(0)).unwrap_or(0),
                    vlan: 0,
                },
                (None, None) => Location::Remote(u32::MAX),
            };
            (bd, f.mac, loc, format!("fdb[{i}]"))
        })
        .collect();
    let shared = VtepShared::new(snap, pool, sizing).or_else(|e| err("", e.to_string()))?;
    for (bd, mac, loc, key) in statics {
        if let Err(e) = shared.fdb().add_static(bd, mac, loc) {
            return err(&key, format!("cannot install: {e:?}"));
        }
    }
    Ok(shared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_macs() {
        assert_eq!(
            group_mac("239.129.1.100".parse().unwrap()),
            MacAddr([0x01, 0, 0x5e, 0x01, 1, 100])
        );
        assert_eq!(
            group_mac("ff05::1:3".parse().unwrap()),
            MacAddr([0x33, 0x33, 0, 1, 0, 3])
        );
    }

    #[test]
    fn builds_the_issue_example() {
        let cfg = VtepConfig::from_toml_str(
            r#"
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
            [[port]]
            name = "trunk"
            kind = "memory"
            access = { vlans = [[10, 100], [20, 200]] }
            [[vni]]
            id = 100
            flood = ["192.0.2.1", "192.0.2.3"]
            [[vni]]
            id = 200
            group = "239.1.1.100"
            [[fdb]]
            vni = 100
            mac = "02:00:00:00:aa:01"
            remote = "192.0.2.3"
        "#,
        )
        .unwrap();
        let s = snapshot(&cfg).unwrap();
        assert_eq!(s.underlay, Some(0));
        assert_eq!(s.ports[1], PortMode::access(0));
        assert_eq!(s.ports[2].bd_for(20), Some(1));
        assert_eq!(s.bds[0].flood.as_slice(), &[0, 1]);
        assert_eq!(s.bds[1].flood.as_slice(), &[2]);
        assert_eq!(s.remotes[2].ip, "239.1.1.100".parse::<IpAddr>().unwrap());
        assert!(s.decap.accept_multicast);
        let pool = Pool::new(16, 2048, 128).unwrap();
        let v = vtep(&cfg, pool).unwrap();
        let e = v
            .fdb()
            .lookup(0, "02:00:00:00:aa:01".parse().unwrap())
            .unwrap();
        assert_eq!(e.location, Location::Remote(1));
    }
}
