//! The `vtep` configuration file (TOML), parsed and checked.
//!
//! Parsing is two steps: serde reads the shape (unknown keys are errors, so
//! a typo is reported, not ignored), then [`VtepConfig::validate`] checks
//! what serde cannot (addresses of one family, names that resolve, VNIs in
//! range, no VLAN mapped twice) and names the key and what to fix.
//!
//! ```
//! let cfg = vxlan_pmd::config::VtepConfig::from_toml_str(r#"
//!     [vtep]
//!     local_ip = "192.0.2.2"
//!     mac = "02:00:00:00:00:02"
//!
//!     [underlay]
//!     port = "uplink"
//!     gateway_mac = "02:00:00:00:00:01"
//!
//!     [[port]]
//!     name = "uplink"
//!     kind = "memory"
//!
//!     [[port]]
//!     name = "vm1"
//!     kind = "memory"
//!     access = { vni = 100 }
//!
//!     [[vni]]
//!     id = 100
//!     flood = ["192.0.2.1"]
//! "#).unwrap();
//! assert_eq!(cfg.vtep.udp_port, 4789);
//! assert_eq!(cfg.vnis[0].flood.len(), 1);
//! ```

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;
use vxlan_core::wire::MacAddr;

/// A configuration error: which key, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The key, as a TOML path (`port[1].access.vlans`).
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

fn err<T>(key: impl Into<String>, message: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError {
        key: key.into(),
        message: message.into(),
    })
}

/// The whole file.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VtepConfig {
    /// `[vtep]`: this VTEP.
    pub vtep: VtepSection,
    /// `[underlay]`: where VXLAN goes.
    pub underlay: Option<UnderlaySection>,
    /// `[[port]]`: every port.
    #[serde(default, rename = "port")]
    pub ports: Vec<PortSection>,
    /// `[[vni]]`: every VNI with its flood list.
    #[serde(default, rename = "vni")]
    pub vnis: Vec<VniSection>,
    /// `[[fdb]]`: static FDB entries.
    #[serde(default, rename = "fdb")]
    pub fdb: Vec<FdbSection>,
    /// `[dpdk]`: how to start DPDK, for `kind = "dpdk"` ports.
    pub dpdk: Option<DpdkSection>,
}

fn default_mbufs() -> u32 {
    8191
}

/// `[dpdk]`: DPDK's start-up (feature `dpdk`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DpdkSection {
    /// EAL arguments, as on a DPDK program's command line
    /// (`["-l", "0-2", "--vdev=net_pcap0,rx_pcap=in.pcap"]`).
    #[serde(default)]
    pub eal_args: Vec<String>,
    /// Mbufs in the mempool (8191). Every receive and transmit ring of
    /// every port holds some: at least `ports * workers * 1024` plus room
    /// for the bursts in flight.
    #[serde(default = "default_mbufs")]
    pub mbufs: u32,
}

impl Default for DpdkSection {
    fn default() -> Self {
        DpdkSection {
            eal_args: Vec::new(),
            mbufs: default_mbufs(),
        }
    }
}

fn default_port() -> u16 {
    4789
}
fn default_ageing() -> u32 {
    300
}
fn default_workers() -> usize {
    1
}

/// `[vtep]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VtepSection {
    /// Underlay address, IPv4 or IPv6.
    pub local_ip: IpAddr,
    /// Underlay source MAC.
    #[serde(deserialize_with = "de_mac")]
    pub mac: MacAddr,
    /// VXLAN UDP port (4789).
    #[serde(default = "default_port")]
    pub udp_port: u16,
    /// `"ignore"` (RFC 7348, the default) or `"strict"`.
    #[serde(default)]
    pub reserved_bits: ReservedBits,
    /// Learned entries age out after this many seconds (0: never).
    #[serde(default = "default_ageing")]
    pub ageing_secs: u32,
    /// Worker threads (cores).
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// `"overlay"` (VXLAN, the default) or `"vlan"` (trunks bridged with no
    /// overlay).
    #[serde(default)]
    pub mode: BridgeMode,
    /// Largest FDB (entries).
    #[serde(default)]
    pub fdb_capacity: Option<u32>,
    /// Underlay IP MTU (1500).
    #[serde(default)]
    pub underlay_mtu: Option<u16>,
    /// The control socket `vtepctl` talks to (default
    /// [`DEFAULT_CONTROL_SOCKET`](crate::control::DEFAULT_CONTROL_SOCKET)).
    #[serde(default)]
    pub control_socket: Option<PathBuf>,
}

/// Reserved-bit policy, as written in the file.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ReservedBits {
    /// Ignore (RFC 7348).
    #[default]
    Ignore,
    /// Drop.
    Strict,
}

/// Overlay or plain VLAN bridging.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum BridgeMode {
    /// VXLAN overlay.
    #[default]
    Overlay,
    /// VLAN-only: trunks bridged on one L2 fabric.
    Vlan,
}

/// `[underlay]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UnderlaySection {
    /// The `[[port]]` that faces the underlay.
    pub port: String,
    /// The next hop's MAC for every remote VTEP. Without it, each remote's
    /// next hop is resolved from the kernel's routing and neighbour tables
    /// (the `nexthop` module, on Linux).
    #[serde(default, deserialize_with = "de_opt_mac")]
    pub gateway_mac: Option<MacAddr>,
}

/// Port kinds.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PortKind {
    /// Frames read from / written to pcap files.
    Pcap,
    /// In-memory rings (for in-process fabrics).
    Memory,
    /// AF_XDP socket (feature `af-xdp`).
    AfXdp,
    /// DPDK ethdev (feature `dpdk`).
    Dpdk,
}

/// How an af_xdp port's sockets are bound.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
pub enum XdpBindMode {
    /// The kernel copies frames (works on every interface, veth included).
    #[default]
    #[serde(rename = "copy")]
    Copy,
    /// The driver writes into our memory (needs driver support).
    #[serde(rename = "zero-copy")]
    ZeroCopy,
}

/// `[[port]]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PortSection {
    /// Unique name.
    pub name: String,
    /// Kind.
    pub kind: PortKind,
    /// pcap: file to read frames from.
    pub rx: Option<PathBuf>,
    /// pcap: file to write sent frames to.
    pub tx: Option<PathBuf>,
    /// af_xdp: interface name.
    pub interface: Option<String>,
    /// af_xdp: queues (one socket each, one per worker; default
    /// `vtep.workers`).
    pub queues: Option<u16>,
    /// af_xdp: `"copy"` (the default, any interface) or `"zero-copy"`.
    pub mode: Option<XdpBindMode>,
    /// dpdk: device name.
    pub device: Option<String>,
    /// Tenant attachment: `{ vni = N }` or `{ vlans = [[vid, vni], ...] }`.
    pub access: Option<AccessSection>,
}

/// A port's tenant attachment.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AccessSection {
    /// Untagged access to one VNI.
    pub vni: Option<u32>,
    /// 802.1Q trunk: (VID, VNI) pairs.
    pub vlans: Option<Vec<(u16, u32)>>,
}

/// `[[vni]]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VniSection {
    /// The VNI.
    pub id: u32,
    /// Head-end replication list.
    #[serde(default)]
    pub flood: Vec<IpAddr>,
    /// A multicast underlay group instead.
    pub group: Option<IpAddr>,
}

/// `[[fdb]]`: a static entry.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FdbSection {
    /// Its VNI.
    pub vni: u32,
    /// The MAC.
    #[serde(deserialize_with = "de_mac")]
    pub mac: MacAddr,
    /// Behind this remote VTEP...
    pub remote: Option<IpAddr>,
    /// ...or on this local port.
    pub port: Option<String>,
}

fn de_mac<'de, D: serde::Deserializer<'de>>(d: D) -> Result<MacAddr, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "'{s}' is not a MAC address (write it as 02:00:00:00:00:01)"
        ))
    })
}

fn de_opt_mac<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<MacAddr>, D::Error> {
    de_mac(d).map(Some)
}

const MAX_VNI: u32 = 0x00ff_ffff;

impl VtepConfig {
    /// Parses and validates a configuration.
    pub fn from_toml_str(text: &str) -> Result<VtepConfig, ConfigError> {
        let cfg: VtepConfig = toml::from_str(text).map_err(|e| ConfigError {
            key: String::new(),
            message: e.to_string().trim_end().to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads, parses and validates a file.
    pub fn from_file(path: &std::path::Path) -> Result<VtepConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            key: String::new(),
            message: format!("cannot read {}: {e}", path.display()),
        })?;
        Self::from_toml_str(&text)
    }

    /// The index of the port named `name`.
    pub fn port_index(&self, name: &str) -> Option<usize> {
        self.ports.iter().position(|p| p.name == name)
    }

    /// Checks everything serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let v = &self.vtep;
        if v.workers == 0 {
            return err("vtep.workers", "must be at least 1");
        }
        if v.udp_port == 0 {
            return err("vtep.udp_port", "port 0 cannot carry VXLAN; use 4789");
        }
        if !v.mac.is_learnable() {
            return err("vtep.mac", "must be a unicast, non-zero MAC");
        }
        if v.local_ip.is_unspecified() || v.local_ip.is_multicast() {
            return err("vtep.local_ip", "must be a unicast address of this host");
        }
        if let Some(p) = &v.control_socket {
            if p.as_os_str().is_empty() {
                return err(
                    "vtep.control_socket",
                    "must be a path (or leave it out for the default)",
                );
            }
        }
        if let Some(m) = v.underlay_mtu {
            if m < 1280 {
                return err(
                    "vtep.underlay_mtu",
                    format!("{m} is below 1280, too small to carry VXLAN"),
                );
            }
        }
        for (i, n) in self.vnis.iter().enumerate() {
            let key = |k: &str| format!("vni[{i}].{k}");
            if n.id > MAX_VNI {
                return err(
                    key("id"),
                    format!("{} does not fit 24 bits (at most {MAX_VNI})", n.id),
                );
            }
            if self.vnis[..i].iter().any(|m| m.id == n.id) {
                return err(key("id"), format!("VNI {} is configured twice", n.id));
            }
            for ip in &n.flood {
                if ip.is_ipv4() != self.vtep.local_ip.is_ipv4() {
                    return err(
                        key("flood"),
                        format!("{ip} is not of the same family as vtep.local_ip"),
                    );
                }
                if *ip == self.vtep.local_ip {
                    return err(key("flood"), format!("{ip} is this VTEP's own address"));
                }
            }
            if let Some(g) = n.group {
                if !g.is_multicast() {
                    return err(key("group"), format!("{g} is not a multicast address"));
                }
                if !n.flood.is_empty() {
                    return err(key("group"), "give either flood or group, not both");
                }
            }
        }
        for (i, p) in self.ports.iter().enumerate() {
            let key = |k: &str| format!("port[{i}].{k}");
            if p.name.is_empty() {
                return err(key("name"), "must not be empty");
            }
            if self.ports[..i].iter().any(|q| q.name == p.name) {
                return err(key("name"), format!("'{}' is used by two ports", p.name));
            }
            match p.kind {
                PortKind::Pcap if p.rx.is_none() && p.tx.is_none() => {
                    return err(key("rx"), "a pcap port needs rx, tx or both");
                }
                PortKind::AfXdp if p.interface.is_none() => {
                    return err(key("interface"), "an af_xdp port needs an interface")
                }
                PortKind::Dpdk if !cfg!(feature = "dpdk") => {
                    return err(
                        key("kind"),
                        "built without the dpdk feature: rebuild with --features dpdk",
                    )
                }
                PortKind::Dpdk if p.device.as_deref().unwrap_or_default().is_empty() => {
                    return err(
                        key("device"),
                        "a dpdk port needs a device (its DPDK name: net_pcap0, 0000:03:00.0)",
                    )
                }
                _ => {}
            }
            if p.kind != PortKind::AfXdp {
                if p.queues.is_some() {
                    return err(key("queues"), "only af_xdp ports take queues");
                }
                if p.mode.is_some() {
                    return err(key("mode"), "only af_xdp ports take a mode");
                }
            }
            if p.kind != PortKind::AfXdp && p.kind != PortKind::Dpdk && p.interface.is_some() {
                return err(key("interface"), "only af_xdp ports take an interface");
            }
            if let Some(q) = p.queues {
                if usize::from(q) != v.workers {
                    return err(
                        key("queues"),
                        format!(
                            "{q} queues but vtep.workers = {}: each worker polls one queue \
                             of every port, so set them equal",
                            v.workers
                        ),
                    );
                }
            }
            if p.kind == PortKind::AfXdp
                && self.ports[..i]
                    .iter()
                    .any(|q| q.kind == PortKind::AfXdp && q.interface == p.interface)
            {
                return err(
                    key("interface"),
                    format!(
                        "{} is used by two af_xdp ports",
                        p.interface.as_deref().unwrap_or("")
                    ),
                );
            }
            let any_dpdk = self.ports.iter().any(|q| q.kind == PortKind::Dpdk);
            if any_dpdk && p.kind != PortKind::Dpdk {
                return err(
                    key("kind"),
                    "a VTEP with dpdk ports runs every port on DPDK: make this port \
                     kind = \"dpdk\" too (a net_pcap or net_af_packet vdev stands in for a file or interface)",
                );
            }
            if let Some(a) = &p.access {
                match (a.vni, &a.vlans) {
                    (Some(_), Some(_)) => {
                        return err(key("access"), "give either vni or vlans, not both")
                    }
                    (None, None) => {
                        return err(key("access"), "give vni = N or vlans = [[vid, vni], ...]")
                    }
                    (Some(vni), None) => self.check_vni_ref(vni, &key("access.vni"))?,
                    (None, Some(vlans)) => {
                        if vlans.is_empty() {
                            return err(key("access.vlans"), "must map at least one VLAN");
                        }
                        for (j, (vid, vni)) in vlans.iter().enumerate() {
                            if *vid == 0 || *vid > 4094 {
                                return err(
                                    key("access.vlans"),
                                    format!("VLAN {vid} is outside 1..=4094"),
                                );
                            }
                            if vlans[..j].iter().any(|(w, _)| w == vid) {
                                return err(
                                    key("access.vlans"),
                                    format!("VLAN {vid} is mapped twice"),
                                );
                            }
                            if vlans[..j].iter().any(|(_, n)| n == vni) {
                                return err(
                                    key("access.vlans"),
                                    format!("VNI {vni} is mapped from two VLANs"),
                                );
                            }
                            self.check_vni_ref(*vni, &key("access.vlans"))?;
                        }
                    }
                }
            }
        }
        if let Some(u) = &self.underlay {
            let Some(i) = self.port_index(&u.port) else {
                return err(
                    "underlay.port",
                    format!("no [[port]] is named '{}'", u.port),
                );
            };
            if self.ports[i].access.is_some() {
                return err("underlay.port", format!("'{}' has an access attachment; the underlay port carries no tenant traffic", u.port));
            }
        } else if self.vtep.mode == BridgeMode::Overlay && !self.vnis.is_empty() {
            return err(
                "underlay",
                "an overlay VTEP needs [underlay] port = \"...\"",
            );
        }
        for (i, f) in self.fdb.iter().enumerate() {
            let key = |k: &str| format!("fdb[{i}].{k}");
            self.check_vni_ref(f.vni, &key("vni"))?;
            if !f.mac.is_learnable() {
                return err(key("mac"), "must be a unicast, non-zero MAC");
            }
            match (&f.remote, &f.port) {
                (Some(_), Some(_)) | (None, None) => {
                    return err(key("remote"), "give exactly one of remote or port")
                }
                (Some(ip), None) if ip.is_ipv4() != self.vtep.local_ip.is_ipv4() => {
                    return err(
                        key("remote"),
                        format!("{ip} is not of the same family as vtep.local_ip"),
                    );
                }
                (None, Some(p)) if self.port_index(p).is_none() => {
                    return err(key("port"), format!("no [[port]] is named '{p}'"));
                }
                _ => {}
            }
        }
        if let Some(d) = &self.dpdk {
            if d.mbufs < 512 {
                return err(
                    "dpdk.mbufs",
                    format!("{} is too few to fill the receive rings; use 8191", d.mbufs),
                );
            }
        }
        Ok(())
    }

    fn check_vni_ref(&self, vni: u32, key: &str) -> Result<(), ConfigError> {
        if self.vnis.iter().any(|n| n.id == vni) {
            Ok(())
        } else {
            err(
                key,
                format!("VNI {vni} has no [[vni]] section; add one with id = {vni}"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [vtep]
        local_ip = "192.0.2.2"
        mac = "02:00:00:00:00:02"
        udp_port = 4789
        reserved_bits = "ignore"
        ageing_secs = 300
        workers = 1

        [underlay]
        port = "uplink"
        gateway_mac = "02:00:00:00:00:01"

        [[port]]
        name = "uplink"
        kind = "pcap"
        rx = "uplink-in.pcap"
        tx = "uplink-out.pcap"

        [[port]]
        name = "vm1"
        kind = "pcap"
        rx = "vm1-in.pcap"
        tx = "vm1-out.pcap"
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
        remote = "192.0.2.1"
    "#;

    #[test]
    fn the_issue_example_parses() {
        let c = VtepConfig::from_toml_str(GOOD).unwrap();
        assert_eq!(c.ports.len(), 3);
        assert_eq!(
            c.ports[2].access.as_ref().unwrap().vlans.as_ref().unwrap(),
            &vec![(10, 100), (20, 200)]
        );
        assert_eq!(
            c.underlay.as_ref().unwrap().gateway_mac,
            Some("02:00:00:00:00:01".parse().unwrap())
        );
        assert_eq!(c.vnis[1].group, Some("239.1.1.100".parse().unwrap()));
        assert_eq!(c.vtep.reserved_bits, ReservedBits::Ignore);
    }

    fn error_for(edit: impl Fn(&str) -> String) -> ConfigError {
        VtepConfig::from_toml_str(&edit(GOOD)).unwrap_err()
    }

    #[test]
    fn errors_name_the_key() {
        let e = error_for(|s| s.replace("access = { vni = 100 }", "access = { vni = 300 }"));
        assert_eq!(e.key, "port[1].access.vni");
        assert!(e.message.contains("VNI 300"), "{e}");
        let e = error_for(|s| s.replace("port = \"uplink\"", "port = \"uplnk\""));
        assert_eq!(e.key, "underlay.port");
        let e = error_for(|s| {
            s.replace(
                "flood = [\"192.0.2.1\", \"192.0.2.3\"]",
                "flood = [\"2001:db8::1\"]",
            )
        });
        assert_eq!(e.key, "vni[0].flood");
        let e = error_for(|s| s.replace("[20, 200]", "[10, 200]"));
        assert_eq!(e.key, "port[2].access.vlans");
        let e = error_for(|s| s.replace("id = 200", "id = 16777216"));
        assert_eq!(e.key, "vni[1].id");
        let e = error_for(|s| s.replace("workers = 1", "workers = 0"));
        assert_eq!(e.key, "vtep.workers");
        // Typos and bad values are reported by the parser with the key.
        let e = error_for(|s| s.replace("ageing_secs", "aging_secs"));
        assert!(e.message.contains("aging_secs"), "{e}");
        let e = error_for(|s| s.replace("\"02:00:00:00:00:02\"", "\"02:00:00:00:02\""));
        assert!(e.message.contains("not a MAC address"), "{e}");
        let e =
            error_for(|s| s.replace("reserved_bits = \"ignore\"", "reserved_bits = \"lenient\""));
        assert!(e.message.contains("reserved_bits"), "{e}");
        let e = error_for(|s| s.replace("remote = \"192.0.2.1\"", "port = \"nope\""));
        assert_eq!(e.key, "fdb[0].port");
    }

    #[test]
    fn af_xdp_ports() {
        let live = GOOD
            .replace(
                "kind = \"pcap\"\n        rx = \"uplink-in.pcap\"\n        tx = \"uplink-out.pcap\"",
                "kind = \"af_xdp\"\n        interface = \"eth0\"\n        mode = \"zero-copy\"\n        queues = 1",
            );
        let c = VtepConfig::from_toml_str(&live).unwrap();
        assert_eq!(c.ports[0].kind, PortKind::AfXdp);
        assert_eq!(c.ports[0].interface.as_deref(), Some("eth0"));
        assert_eq!(c.ports[0].mode, Some(XdpBindMode::ZeroCopy));
        assert_eq!(c.ports[0].queues, Some(1));
        let e = VtepConfig::from_toml_str(&live.replace("queues = 1", "queues = 2")).unwrap_err();
        assert_eq!(e.key, "port[0].queues");
        assert!(e.message.contains("vtep.workers = 1"), "{e}");
        let e = VtepConfig::from_toml_str(&live.replace("interface = \"eth0\"\n", "")).unwrap_err();
        assert_eq!(e.key, "port[0].interface");
        let e = VtepConfig::from_toml_str(&live.replace("zero-copy", "zerocopy")).unwrap_err();
        assert!(e.message.contains("zerocopy"), "{e}");
        let e = error_for(|s| {
            s.replace(
                "tx = \"vm1-out.pcap\"",
                "tx = \"vm1-out.pcap\"\n        queues = 1",
            )
        });
        assert_eq!(e.key, "port[1].queues");
        let e = error_for(|s| {
            s.replace(
                "tx = \"vm1-out.pcap\"",
                "tx = \"vm1-out.pcap\"\n        mode = \"copy\"",
            )
        });
        assert_eq!(e.key, "port[1].mode");
        let twice = live.replace(
            "kind = \"pcap\"\n        rx = \"vm1-in.pcap\"\n        tx = \"vm1-out.pcap\"",
            "kind = \"af_xdp\"\n        interface = \"eth0\"",
        );
        let e = VtepConfig::from_toml_str(&twice).unwrap_err();
        assert_eq!(e.key, "port[1].interface");
    }

    #[test]
    fn dpdk_ports() {
        let dpdk = |s: &str| {
            s.replace("kind = \"pcap\"", "kind = \"dpdk\"")
                .replace("kind = \"memory\"", "kind = \"dpdk\"")
                .replace("rx = \"uplink-in.pcap\"", "device = \"net_pcap0\"")
                .replace("rx = \"vm1-in.pcap\"", "device = \"net_pcap1\"")
                .replace(
                    "access = { vlans",
                    "device = \"net_null0\"\naccess = { vlans",
                )
                + "\n[dpdk]\neal_args = [\"--no-huge\", \"--vdev=net_null0\"]\n"
        };
        let r = VtepConfig::from_toml_str(&dpdk(GOOD));
        if cfg!(feature = "dpdk") {
            let c = r.unwrap();
            assert_eq!(c.dpdk.as_ref().unwrap().eal_args[1], "--vdev=net_null0");
            assert_eq!(c.dpdk.as_ref().unwrap().mbufs, 8191);
            assert_eq!(c.ports[0].device.as_deref(), Some("net_pcap0"));
            let e = error_for(|s| dpdk(s).replace("device = \"net_pcap1\"", ""));
            assert_eq!(e.key, "port[1].device");
            let e = error_for(|s| dpdk(s).replacen("kind = \"dpdk\"", "kind = \"memory\"", 1));
            assert_eq!(e.key, "port[0].kind");
            let e = error_for(|s| dpdk(s) + "mbufs = 10\n");
            assert_eq!(e.key, "dpdk.mbufs");
            let e = error_for(|s| dpdk(s) + "eal = []\n");
            assert!(e.message.contains("eal"), "{e}");
        } else {
            let e = r.unwrap_err();
            assert_eq!(e.key, "port[0].kind");
            assert_eq!(
                e.message,
                "built without the dpdk feature: rebuild with --features dpdk"
            );
        }
    }
}
