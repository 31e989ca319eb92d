//! Ethdev ports: configure, start, burst, count, close.

use std::ffi::CString;

use dpdk_sys as sys;

use super::eal::{DpdkError, Eal};
use super::mbuf::{tx_flags, Mbuf, Mempool};
use vxlan_core::encap::TxChecksumOffload;

/// How to set up an [`EthPort`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthPortConfig {
    /// Receive and transmit queues (one per worker). With more than one,
    /// the port spreads receive traffic across them by RSS when the device
    /// can.
    pub queues: u16,
    /// Receive descriptors per queue (the driver may round it).
    pub rx_ring: u16,
    /// Transmit descriptors per queue.
    pub tx_ring: u16,
    /// Let the device compute the IPv4 header checksum of the IPv4 frames
    /// sent on this port, when it offers to (`RTE_ETH_TX_OFFLOAD_IPV4_CKSUM`;
    /// [`Offloads::tx_ipv4_checksum`] says whether it does). Meant for the
    /// underlay port, whose frames are all the VTEP's own VXLAN frames:
    /// [`DpdkVtep`](super::DpdkVtep) asks for it there and nowhere else, so
    /// tenant frames on access ports leave exactly as they came. Off by
    /// default.
    pub tx_ipv4_checksum: bool,
    /// Let the device compute the UDP checksum of the frames that ask for
    /// it, when it offers to (`RTE_ETH_TX_OFFLOAD_UDP_CKSUM`;
    /// [`Offloads::tx_udp_checksum`] says whether it does). Only frames
    /// that carry the request (an encapsulation template built with
    /// [`EthPort::tx_checksum_offload`]) use it. Off by default.
    pub tx_udp_checksum: bool,
}

impl Default for EthPortConfig {
    fn default() -> Self {
        EthPortConfig {
            queues: 1,
            rx_ring: 512,
            tx_ring: 512,
            tx_ipv4_checksum: false,
            tx_udp_checksum: false,
        }
    }
}

/// What the device offered and the port turned on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offloads {
    /// RSS across the receive queues.
    pub rss: bool,
    /// The RSS hash is delivered in each mbuf (fed to
    /// [`Frame::rss_hash`](vxlan_core::frame::Frame::rss_hash), so the
    /// VXLAN source port costs no hashing).
    pub rx_rss_hash: bool,
    /// Receive IPv4 header checksum status (fed to
    /// [`Frame::rx_offloads`](vxlan_core::frame::Frame::rx_offloads)).
    pub rx_ipv4_checksum: bool,
    /// Receive UDP checksum status.
    pub rx_udp_checksum: bool,
    /// Transmit IPv4 header checksum: the device computes the outer IPv4
    /// header checksum of every IPv4 frame the worker loop sends on this
    /// port. A template built with [`EthPort::tx_checksum_offload`] asks
    /// for it as it encapsulates (writing no software checksum); for any
    /// other IPv4 frame the loop zeroes the field and sets
    /// `RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM`, `l2_len` and
    /// `l3_len`. Counted in
    /// [`PortLoopStats::tx_ipv4_checksum_offloaded`](super::PortLoopStats::tx_ipv4_checksum_offloaded).
    /// On only when [`EthPortConfig::tx_ipv4_checksum`] asked for it and
    /// the device offers it; otherwise the checksum the encapsulation
    /// writes is sent as it is.
    pub tx_ipv4_checksum: bool,
    /// Transmit UDP checksum: the device completes the UDP checksum of the
    /// frames that ask for it (`RTE_MBUF_F_TX_UDP_CKSUM`, with the
    /// pseudo-header's sum in the field, as an encapsulation template with
    /// [`TxChecksumOffload::udp`] writes). On only when
    /// [`EthPortConfig::tx_udp_checksum`] asked for it and the device
    /// offers it.
    pub tx_udp_checksum: bool,
}

/// Port counters, from the driver (`rte_eth_stats_get`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EthStats {
    /// Frames received.
    pub ipackets: u64,
    /// Frames sent.
    pub opackets: u64,
    /// Frames the device dropped because no receive descriptor was free.
    pub imissed: u64,
    /// Receive errors.
    pub ierrors: u64,
    /// Transmit errors.
    pub oerrors: u64,
    /// Receive allocation failures (the mempool was empty).
    pub rx_nombuf: u64,
}

/// A started ethdev port. Each queue is used by one thread at a time
/// (worker `i` uses queue `i`); [`EthPort::rx_burst`] and
/// [`EthPort::tx_burst`] on different queues may run concurrently, as DPDK
/// allows. Dropping the port stops and closes it (a pcap vdev flushes its
/// output file then).
#[derive(Debug)]
pub struct EthPort {
    id: u16,
    device: String,
    queues: u16,
    offloads: Offloads,
    tx_capa: u64,
}

fn check(r: i32, context: impl FnOnce() -> String) -> Result<(), DpdkError> {
    if r < 0 {
        Err(DpdkError::rte(context(), r))
    } else {
        Ok(())
    }
}

impl EthPort {
    /// Finds the device named `device` (`net_pcap0`, `0000:03:00.0`),
    /// configures `cfg.queues` receive and transmit queues with receive
    /// buffers from `pool`, turns on the offloads it offers, and starts
    /// it.
    pub fn open(
        _eal: &Eal,
        device: &str,
        cfg: &EthPortConfig,
        pool: &Mempool,
    ) -> Result<EthPort, DpdkError> {
        let ctx = |what: &str| format!("port {device}: {what}");
        let cname =
            CString::new(device).map_err(|_| DpdkError::msg(ctx("name"), "contains a NUL byte"))?;
        let mut id = 0u16;
        // SAFETY: EAL is started; cname is a valid C string; id is a valid
        // out-pointer.
        let r = unsafe { sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
        if r < 0 {
            let mut e = DpdkError::rte(ctx("no such device"), r);
            e.reason.push_str(
                "; give it to EAL (--vdev=net_pcap0,... or a PCI address bound to vfio-pci)",
            );
            return Err(e);
        }
        let mut info = sys::rte_eth_dev_info::default();
        // SAFETY: id is a valid port; info is a valid out-pointer.
        check(unsafe { sys::rte_eth_dev_info_get(id, &mut info) }, || {
            ctx("rte_eth_dev_info_get")
        })?;
        if cfg.queues == 0 || cfg.queues > info.max_rx_queues || cfg.queues > info.max_tx_queues {
            return Err(DpdkError::msg(
                ctx("queues"),
                format!(
                    "{} queues asked for (one per worker); the device has at most {} rx / {} tx: \
                     lower vtep.workers",
                    cfg.queues, info.max_rx_queues, info.max_tx_queues
                ),
            ));
        }
        // SAFETY: six reads of immutable statics defined by the shim.
        let (rss_hf, off_ip, off_udp, off_hash, tx_off_ip, tx_off_udp) = unsafe {
            (
                sys::VXD_ETH_RSS_IP_UDP,
                sys::VXD_RX_OFFLOAD_IPV4_CKSUM,
                sys::VXD_RX_OFFLOAD_UDP_CKSUM,
                sys::VXD_RX_OFFLOAD_RSS_HASH,
                sys::VXD_TX_OFFLOAD_IPV4_CKSUM,
                sys::VXD_TX_OFFLOAD_UDP_CKSUM,
            )
        };
        let mut conf = sys::rte_eth_conf::default();
        let mut offloads = Offloads::default();
        let hf = rss_hf & info.flow_type_rss_offloads;
        if cfg.queues > 1 && hf != 0 {
            conf.rxmode.mq_mode = sys::RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = hf;
            offloads.rss = true;
        }
        let capa = info.rx_offload_capa;
        let mut rx_off = 0;
        if capa & off_ip != 0 {
            rx_off |= off_ip;
            offloads.rx_ipv4_checksum = true;
        }
        if capa & off_udp != 0 {
            rx_off |= off_udp;
            offloads.rx_udp_checksum = true;
        }
        if offloads.rss && capa & off_hash != 0 {
            rx_off |= off_hash;
            offloads.rx_rss_hash = true;
        }
        conf.rxmode.offloads = rx_off;
        // The requests are written with DPDK's flag values compiled in
        // (tx_flags): a DPDK whose values differ gets no transmit offload.
        let tx_ok = tx_flags::consts_match_dpdk();
        if tx_ok && cfg.tx_ipv4_checksum && info.tx_offload_capa & tx_off_ip != 0 {
            // Port-wide, so every transmit queue set up below has it.
            conf.txmode.offloads |= tx_off_ip;
            offloads.tx_ipv4_checksum = true;
        }
        if tx_ok && cfg.tx_udp_checksum && info.tx_offload_capa & tx_off_udp != 0 {
            conf.txmode.offloads |= tx_off_udp;
            offloads.tx_udp_checksum = true;
        }
        // SAFETY: id is valid; conf is a fully initialised configuration.
        let r = unsafe { sys::rte_eth_dev_configure(id, cfg.queues, cfg.queues, &conf) };
        check(r, || ctx("rte_eth_dev_configure"))?;
        let (mut nrx, mut ntx) = (cfg.rx_ring, cfg.tx_ring);
        // SAFETY: id is a configured port; both are valid in/out pointers.
        let r = unsafe { sys::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut nrx, &mut ntx) };
        check(r, || ctx("rte_eth_dev_adjust_nb_rx_tx_desc"))?;
        // SAFETY: id is valid.
        let socket = unsafe { sys::rte_eth_dev_socket_id(id) };
        // SOCKET_ID_ANY is -1, passed as unsigned as DPDK does.
        let socket = u32::from_ne_bytes(socket.to_ne_bytes());
        for q in 0..cfg.queues {
            // SAFETY: id is configured with cfg.queues queues; a null
            // rxconf means the driver's defaults; pool is a live mempool
            // that outlives the port (pools are never freed).
            let r = unsafe {
                sys::rte_eth_rx_queue_setup(id, q, nrx, socket, std::ptr::null(), pool.as_ptr())
            };
            check(r, || ctx(&format!("rx queue {q}")))?;
            // SAFETY: as above, with the driver's default txconf.
            let r = unsafe { sys::rte_eth_tx_queue_setup(id, q, ntx, socket, std::ptr::null()) };
            check(r, || ctx(&format!("tx queue {q}")))?;
        }
        // SAFETY: every queue is set up.
        let r = unsafe { sys::rte_eth_dev_start(id) };
        check(r, || ctx("rte_eth_dev_start"))?;
        // A VTEP sees frames for every tenant MAC. Devices that cannot
        // (or are always promiscuous) refuse harmlessly.
        // SAFETY: id is a started port.
        let _ = unsafe { sys::rte_eth_promiscuous_enable(id) };
        Ok(EthPort {
            id,
            device: device.to_string(),
            queues: cfg.queues,
            offloads,
            tx_capa: info.tx_offload_capa,
        })
    }

    /// DPDK's port id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The device name it was opened by.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// Receive (and transmit) queues.
    pub fn queues(&self) -> u16 {
        self.queues
    }

    /// The offloads in use.
    pub fn offloads(&self) -> Offloads {
        self.offloads
    }

    /// The transmit checksum offloads in use, as an encapsulation
    /// template toward this port takes them
    /// ([`EncapConfig::tx_offload`](vxlan_core::encap::EncapConfig::tx_offload)):
    /// its frames then leave their checksums to the device.
    pub fn tx_checksum_offload(&self) -> TxChecksumOffload {
        TxChecksumOffload {
            ipv4_header: self.offloads.tx_ipv4_checksum,
            udp: self.offloads.tx_udp_checksum,
        }
    }

    /// The transmit offloads the device offers (`tx_offload_capa`, the
    /// `RTE_ETH_TX_OFFLOAD_*` bits), whether or not they are in use.
    pub fn tx_offload_capa(&self) -> u64 {
        self.tx_capa
    }

    /// The port's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        let mut a = sys::rte_ether_addr::default();
        // SAFETY: id is valid; a is a valid out-pointer.
        let _ = unsafe { sys::rte_eth_macaddr_get(self.id, &mut a) };
        a.addr_bytes
    }

    /// The driver's counters.
    pub fn stats(&self) -> EthStats {
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: id is valid; s is a valid out-pointer.
        let _ = unsafe { sys::rte_eth_stats_get(self.id, &mut s) };
        EthStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        }
    }

    /// Receives up to `out.len()` frames from `queue` into `out` as raw
    /// mbufs, which the caller now owns. Returns how many.
    ///
    /// # Safety
    /// No other thread may use `queue` of this port at the same time.
    #[inline]
    pub(crate) unsafe fn rx_raw(&self, queue: u16, out: &mut [*mut sys::rte_mbuf]) -> usize {
        let n = u16::try_from(out.len()).unwrap_or(u16::MAX);
        // SAFETY: out has room for n pointers; the caller keeps the queue
        // to itself.
        usize::from(unsafe { sys::vxd_eth_rx_burst(self.id, queue, out.as_mut_ptr(), n) })
    }

    /// Hands `pkts` to the driver on `queue`; returns how many it took.
    /// The rest (`pkts[sent..]`) are still the caller's.
    ///
    /// # Safety
    /// Every pointer in `pkts` is a live mbuf the caller owns; no other
    /// thread uses `queue` of this port at the same time.
    #[inline]
    pub(crate) unsafe fn tx_raw(&self, queue: u16, pkts: &mut [*mut sys::rte_mbuf]) -> usize {
        let n = u16::try_from(pkts.len()).unwrap_or(u16::MAX);
        // SAFETY: per the contract above.
        usize::from(unsafe { sys::vxd_eth_tx_burst(self.id, queue, pkts.as_mut_ptr(), n) })
    }

    /// Receives up to `max` frames from `queue` (for tests and tools; the
    /// worker loop uses the raw burst).
    ///
    /// # Safety
    /// No other thread may use `queue` of this port at the same time.
    pub unsafe fn rx_burst(&self, queue: u16, max: usize) -> Vec<Mbuf> {
        let mut raw = vec![std::ptr::null_mut(); max];
        // SAFETY: forwarded contract.
        let n = unsafe { self.rx_raw(queue, &mut raw) };
        raw.truncate(n);
        raw.into_iter()
            // SAFETY: rx_burst handed these n mbufs to us.
            .filter_map(|m| unsafe { Mbuf::from_raw(m) })
            .collect()
    }

    /// Sends `pkts` on `queue`; frames the driver did not take are freed.
    /// Returns how many were sent.
    ///
    /// # Safety
    /// No other thread may use `queue` of this port at the same time.
    pub unsafe fn tx_burst(&self, queue: u16, pkts: Vec<Mbuf>) -> usize {
        let mut raw: Vec<_> = pkts.into_iter().map(Mbuf::into_raw).collect();
        // SAFETY: every pointer is an mbuf we owned; queue per contract.
        let sent = unsafe { self.tx_raw(queue, &mut raw) };
        for m in &raw[sent..] {
            // SAFETY: unsent mbufs are still ours; wrapping frees them.
            drop(unsafe { Mbuf::from_raw(*m) });
        }
        sent
    }
}

impl Drop for EthPort {
    fn drop(&mut self) {
        // SAFETY: id is a started port that no worker uses any more (the
        // workers borrow the port and have ended).
        unsafe {
            let _ = sys::rte_eth_dev_stop(self.id);
            let _ = sys::rte_eth_dev_close(self.id);
        }
    }
}
