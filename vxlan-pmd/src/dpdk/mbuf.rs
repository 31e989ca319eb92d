//! Mempools and mbufs: an [`Mbuf`] owns one DPDK packet buffer and is a
//! [`Frame`] in place.

use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use dpdk_sys as sys;
use vxlan_core::frame::{Frame, FrameError, RxOffloads, TxChecksums};

use super::eal::{DpdkError, Eal};
use crate::vtep::FrameSource;

/// A DPDK packet-buffer pool (`rte_pktmbuf_pool_create`).
///
/// Pools live as long as the process: a port's receive ring and any mbuf
/// in flight point into it, so it is never freed.
#[derive(Debug)]
pub struct Mempool {
    /// Invariant: a pool created by rte_pktmbuf_pool_create, never freed.
    ptr: NonNull<sys::rte_mempool>,
    name: String,
    size: u32,
}

// SAFETY: DPDK mempools are multi-producer / multi-consumer safe (the
// default ring_mp_mc ops); the pointer itself is never written after
// creation.
unsafe impl Send for Mempool {}
// SAFETY: as for Send: every operation through &Mempool is a thread-safe
// DPDK call.
unsafe impl Sync for Mempool {}

static POOL_SEQ: AtomicU32 = AtomicU32::new(0);

impl Mempool {
    /// A pool of `count` mbufs with `data_room` bytes each (DPDK's
    /// headroom, 128 bytes, included: 2048 + 128 carries a 1500-byte MTU
    /// frame plus its VXLAN header), and a per-lcore cache of `cache`.
    pub fn new(
        _eal: &Eal,
        label: &str,
        count: u32,
        cache: u32,
        data_room: u16,
    ) -> Result<Arc<Mempool>, DpdkError> {
        // Relaxed: only uniqueness of the number matters.
        let seq = POOL_SEQ.fetch_add(1, Ordering::Relaxed);
        let mut name = format!("vx{seq}_{label}");
        name.truncate(25); // RTE_MEMPOOL_NAMESIZE - 1 - "mp_" prefix room
        let cname = CString::new(name.as_str())
            .map_err(|_| DpdkError::msg("mempool", format!("name {label:?} has a NUL byte")))?;
        // SAFETY: EAL is started (an &Eal exists); the name is a valid C
        // string that DPDK copies.
        let ptr =
            unsafe { sys::rte_pktmbuf_pool_create(cname.as_ptr(), count, cache, 0, data_room, -1) };
        let ptr = NonNull::new(ptr).ok_or_else(|| {
            let mut e = DpdkError::last(format!("mempool {name} ({count} mbufs)"));
            e.reason
                .push_str("; with --no-huge EAL has 64 MB: use fewer mbufs (or hugepages)");
            e
        })?;
        Ok(Arc::new(Mempool {
            ptr,
            name,
            size: count,
        }))
    }

    /// The pool's DPDK name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Mbufs in all.
    pub fn capacity(&self) -> usize {
        usize::try_from(self.size).unwrap_or(usize::MAX)
    }

    /// Mbufs free now (the ring plus every lcore's cache).
    pub fn available(&self) -> usize {
        // SAFETY: ptr is a live pool (type invariant).
        let n = unsafe { sys::vxd_mempool_avail_count(self.ptr.as_ptr()) };
        usize::try_from(n).unwrap_or(usize::MAX)
    }

    /// Mbufs taken from the pool and not yet returned (receive rings
    /// included).
    pub fn in_use(&self) -> usize {
        // SAFETY: ptr is a live pool (type invariant).
        let n = unsafe { sys::vxd_mempool_in_use_count(self.ptr.as_ptr()) };
        usize::try_from(n).unwrap_or(usize::MAX)
    }

    /// An empty mbuf with DPDK's default headroom, or `None` when the pool
    /// is empty.
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: ptr is a live pool; the returned mbuf (if any) is ours.
        let m = unsafe { sys::vxd_pktmbuf_alloc(self.ptr.as_ptr()) };
        NonNull::new(m).map(Mbuf)
    }

    /// An mbuf holding a copy of `data`, or `None` when the pool is empty
    /// or `data` does not fit.
    #[inline]
    pub fn alloc_with(&self, data: &[u8]) -> Option<Mbuf> {
        let mut m = self.alloc()?;
        m.append(data).ok()?;
        Some(m)
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.ptr.as_ptr()
    }
}

impl FrameSource<Mbuf> for Mempool {
    #[inline]
    fn copy_of(&self, src: &Mbuf) -> Option<Mbuf> {
        let m = self.alloc_with(src.data())?;
        // SAFETY: both mbufs are live and owned (Mbuf invariant); only
        // metadata fields are written.
        unsafe { sys::vxd_mbuf_copy_meta(m.0.as_ptr(), src.0.as_ptr()) };
        Some(m)
    }

    #[inline]
    fn with_data(&self, data: &[u8]) -> Option<Mbuf> {
        self.alloc_with(data)
    }
}

/// DPDK's transmit request flags and `tx_offload` bit positions (22.11's
/// `rte_mbuf_core.h`) as Rust constants, so that the request an
/// encapsulation template makes ([`Frame::request_tx_checksums`]) folds to
/// two constant stores. [`consts_match_dpdk`] checks them against the
/// linked DPDK's (through the shim), and a port turns transmit checksum
/// offloads on only when they agree.
pub(crate) mod tx_flags {
    /// `RTE_MBUF_F_TX_IPV4`.
    pub const IPV4: u64 = 1 << 55;
    /// `RTE_MBUF_F_TX_IPV6`.
    pub const IPV6: u64 = 1 << 56;
    /// `RTE_MBUF_F_TX_IP_CKSUM`.
    pub const IP_CKSUM: u64 = 1 << 54;
    /// `RTE_MBUF_F_TX_UDP_CKSUM`.
    pub const UDP_CKSUM: u64 = 3 << 52;
    /// `RTE_MBUF_F_TX_L4_MASK`.
    pub const L4_MASK: u64 = 3 << 52;
    /// `RTE_MBUF_L2_LEN_OFS`.
    pub const L2_LEN_OFS: u32 = 0;
    /// `RTE_MBUF_L3_LEN_OFS`.
    pub const L3_LEN_OFS: u32 = 7;
    /// Either checksum requested.
    pub const CHECKSUMS: u64 = IP_CKSUM | L4_MASK;

    /// Whether the constants are the linked DPDK's.
    pub fn consts_match_dpdk() -> bool {
        use dpdk_sys as sys;
        // SAFETY: reads of immutable statics defined by the shim.
        unsafe {
            sys::VXD_TX_IPV4 == IPV4
                && sys::VXD_TX_IPV6 == IPV6
                && sys::VXD_TX_IP_CKSUM == IP_CKSUM
                && sys::VXD_TX_UDP_CKSUM == UDP_CKSUM
                && sys::VXD_TX_L4_MASK == L4_MASK
                && sys::VXD_MBUF_L2_LEN_OFS == L2_LEN_OFS
                && sys::VXD_MBUF_L3_LEN_OFS == L3_LEN_OFS
        }
    }
}

/// What a transmit IPv4 checksum request writes into an mbuf: the
/// `ol_flags` bits and where `l2_len` and `l3_len` sit in `tx_offload`,
/// read from the shim once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TxIpv4Checksum {
    flags: u64,
    l2_ofs: u32,
    l3_ofs: u32,
    /// The `tx_offload` word of an untagged frame with a 20-byte header.
    untagged: u64,
}

impl TxIpv4Checksum {
    pub(crate) fn new() -> TxIpv4Checksum {
        // SAFETY: reads of immutable statics defined by the shim.
        let (flags, l2_ofs, l3_ofs) = unsafe {
            (
                sys::VXD_TX_IPV4 | sys::VXD_TX_IP_CKSUM,
                sys::VXD_MBUF_L2_LEN_OFS,
                sys::VXD_MBUF_L3_LEN_OFS,
            )
        };
        let mut r = TxIpv4Checksum {
            flags,
            l2_ofs,
            l3_ofs,
            untagged: 0,
        };
        r.untagged = r.word(14, 20);
        r
    }

    /// The `tx_offload` word: `l2_len` and `l3_len`, every other length
    /// zero (no L4 or tunnel offload is asked for). `l2` <= 18 fits its 7
    /// bits and `l3` <= 60 its 9.
    fn word(&self, l2: u8, l3: u8) -> u64 {
        (u64::from(l2) << self.l2_ofs) | (u64::from(l3) << self.l3_ofs)
    }
}

/// Where an Ethernet frame's IPv4 header starts and how long it is, for
/// an untagged or one-tag (802.1Q) frame whose header is all there.
fn ipv4_layout(d: &[u8]) -> Option<(u8, u8)> {
    let l2: u8 = match d.get(12..14)? {
        [0x08, 0x00] => 14,
        [0x81, 0x00] if d.get(16..18)? == [0x08, 0x00] => 18,
        _ => return None,
    };
    let ip = usize::from(l2);
    let vihl = *d.get(ip)?;
    let l3 = (vihl & 0x0f) * 4;
    (vihl >> 4 == 4 && l3 >= 20 && d.len() >= ip + usize::from(l3)).then_some((l2, l3))
}

/// One DPDK packet buffer, owned: dropping it frees it to its pool, and
/// transmitting it hands it to the driver (see [`Mbuf::into_raw`]).
///
/// Frames are single-segment (the receive loop drops chained mbufs, with a
/// count): [`Frame::data`] is the first segment.
#[derive(Debug)]
pub struct Mbuf(
    /// Invariant: a live mbuf no one else owns.
    NonNull<sys::rte_mbuf>,
);

// SAFETY: an Mbuf is the only owner of its buffer; mbufs may be freed or
// sent from any thread.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes ownership of a raw mbuf (`None` for null).
    ///
    /// # Safety
    /// `m` must be a live mbuf that the caller owns and gives up (from
    /// `rte_eth_rx_burst` or an allocation), not used through any other
    /// pointer afterwards.
    #[inline]
    pub unsafe fn from_raw(m: *mut sys::rte_mbuf) -> Option<Mbuf> {
        NonNull::new(m).map(Mbuf)
    }

    /// Gives up ownership (for `rte_eth_tx_burst`); the caller frees or
    /// sends it.
    #[inline]
    pub fn into_raw(self) -> *mut sys::rte_mbuf {
        let p = self.0.as_ptr();
        std::mem::forget(self);
        p
    }

    /// Copies `data` onto the end of the frame.
    pub fn append(&mut self, data: &[u8]) -> Result<(), FrameError> {
        let room = self.tailroom();
        let len = u16::try_from(data.len())
            .ok()
            .filter(|l| usize::from(*l) <= room)
            .ok_or(FrameError::NoTailroom {
                needed: data.len(),
                available: room,
            })?;
        // SAFETY: the mbuf is live and ours; len fits the tailroom, so
        // DPDK returns a pointer to len writable bytes (null only on no
        // room, checked).
        let p = unsafe { sys::vxd_pktmbuf_append(self.0.as_ptr(), len) };
        if p.is_null() {
            return Err(FrameError::NoTailroom {
                needed: data.len(),
                available: room,
            });
        }
        // SAFETY: p points to len bytes inside the mbuf's buffer, which
        // `data` (a Rust slice) cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p.cast::<u8>(), data.len()) };
        Ok(())
    }

    /// Free bytes after the frame.
    pub fn tailroom(&self) -> usize {
        // SAFETY: the mbuf is live (invariant).
        usize::from(unsafe { sys::vxd_pktmbuf_tailroom(self.0.as_ptr()) })
    }

    /// Segments in the chain (1 for the frames the VTEP handles).
    pub fn segments(&self) -> u16 {
        self.raw().nb_segs
    }

    fn ol_flags(&self) -> u64 {
        self.raw().ol_flags
    }

    /// Asks the device to compute the IPv4 header checksum of this frame
    /// when it is IPv4 (Ethernet, optionally one 802.1Q tag): zeroes the
    /// checksum field, as DPDK's contract for `RTE_MBUF_F_TX_IP_CKSUM`
    /// asks (`rte_net_intel_cksum_prepare` does the same), sets
    /// `RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM` and the `l2_len` and
    /// `l3_len` the device needs. Returns whether it did; any other frame
    /// is left alone.
    ///
    /// Only for a port whose transmit queues were set up with
    /// `RTE_ETH_TX_OFFLOAD_IPV4_CKSUM` (see
    /// [`Offloads::tx_ipv4_checksum`](super::Offloads::tx_ipv4_checksum)):
    /// anywhere else the frame would leave with a zero checksum.
    #[inline]
    pub fn request_ipv4_checksum(&mut self) -> bool {
        self.request_ipv4_checksum_with(TxIpv4Checksum::new())
    }

    /// [`Mbuf::request_ipv4_checksum`] with DPDK's flag values read once
    /// (the transmit path keeps them per port).
    #[inline]
    pub(crate) fn request_ipv4_checksum_with(&mut self, req: TxIpv4Checksum) -> bool {
        let d = self.data_mut();
        // The VTEP's own frames first: untagged, a 20-byte IPv4 header
        // (what every IPv4 template writes); anything else is parsed.
        let (l2, word) = match d.get(12..34) {
            Some([0x08, 0x00, 0x45, ..]) => (14u8, req.untagged),
            _ => match ipv4_layout(d) {
                Some((l2, l3)) => (l2, req.word(l2, l3)),
                None => return false,
            },
        };
        let ip = usize::from(l2);
        if let Some(c) = d.get_mut(ip + 10..ip + 12) {
            c.fill(0);
        }
        let m = self.raw_mut();
        m.ol_flags |= req.flags;
        m.__bindgen_anon_3.tx_offload = word;
        true
    }

    /// The transmit checksum flags (`RTE_MBUF_F_TX_IP_CKSUM` and the L4
    /// bits) the frame carries: 0 when nothing asked the device for a
    /// checksum.
    #[inline(always)]
    pub(crate) fn tx_checksum_flags(&self) -> u64 {
        self.ol_flags() & tx_flags::CHECKSUMS
    }

    /// The transmit checksum request this frame carries (made by
    /// [`Frame::request_tx_checksums`] or
    /// [`Mbuf::request_ipv4_checksum`]), read back from `ol_flags` and
    /// `tx_offload`; `None` when the device is asked for no checksum.
    pub fn tx_checksums(&self) -> Option<TxChecksums> {
        let f = self.ol_flags();
        if f & tx_flags::CHECKSUMS == 0 {
            return None;
        }
        // SAFETY: tx_offload is a plain u64 view of the union's bit
        // fields; every bit pattern is valid.
        let word = unsafe { self.raw().__bindgen_anon_3.tx_offload };
        let field = |ofs: u32, bits: u32| {
            u8::try_from((word >> ofs) & ((1 << bits) - 1)).unwrap_or(u8::MAX)
        };
        Some(TxChecksums {
            l2_len: field(tx_flags::L2_LEN_OFS, 7),
            l3_len: field(tx_flags::L3_LEN_OFS, 9),
            ipv6: f & tx_flags::IPV6 != 0,
            ipv4_header: f & tx_flags::IP_CKSUM != 0,
            udp: f & tx_flags::L4_MASK == tx_flags::UDP_CKSUM,
        })
    }

    /// [`Frame::rx_offloads`] of a frame whose tunnel the device parsed:
    /// the outer verdicts, from the `RTE_MBUF_F_RX_OUTER_*` flags.
    #[cold]
    fn outer_rx_offloads(&self, f: u64) -> RxOffloads {
        // SAFETY: reads immutable statics defined by the shim.
        let (ipb, l4m, l4g, l4b) = unsafe {
            (
                sys::VXD_RX_OUTER_IP_CKSUM_BAD,
                sys::VXD_RX_OUTER_L4_CKSUM_MASK,
                sys::VXD_RX_OUTER_L4_CKSUM_GOOD,
                sys::VXD_RX_OUTER_L4_CKSUM_BAD,
            )
        };
        RxOffloads {
            ip_checksum_good: false,
            l4_checksum_good: f & l4m == l4g,
            ip_checksum_bad: f & ipb != 0,
            l4_checksum_bad: f & l4m == l4b,
        }
    }

    #[inline]
    fn raw(&self) -> &sys::rte_mbuf {
        // SAFETY: the mbuf is live and ours (invariant); DPDK touches it
        // only when we hand it over (tx, free), which consumes self.
        unsafe { self.0.as_ref() }
    }

    #[inline]
    fn raw_mut(&mut self) -> &mut sys::rte_mbuf {
        // SAFETY: as in raw(), and &mut self makes the access exclusive.
        unsafe { self.0.as_mut() }
    }
}

impl Drop for Mbuf {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: we own the mbuf (invariant) and never use it again.
        unsafe { sys::vxd_pktmbuf_free(self.0.as_ptr()) }
    }
}

impl Frame for Mbuf {
    // The hot accessors read and write the mbuf's fields directly (what
    // DPDK's inline rte_pktmbuf_mtod / _headroom / _prepend / _adj do for
    // a single segment), so they compile to a few loads and stores instead
    // of calls into the shim. DPDK keeps data_off + data_len <= buf_len.

    #[inline]
    fn data(&self) -> &[u8] {
        let m = self.raw();
        // SAFETY: buf_addr + data_off is the first data byte and data_len
        // bytes follow inside the buffer (DPDK's invariant); they stay
        // valid and unaliased by writes while &self is borrowed.
        unsafe {
            std::slice::from_raw_parts(
                m.buf_addr.cast::<u8>().add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }

    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        let m = self.raw_mut();
        // SAFETY: as in data(), and &mut self makes the access exclusive.
        unsafe {
            std::slice::from_raw_parts_mut(
                m.buf_addr.cast::<u8>().add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }

    #[inline]
    fn headroom(&self) -> usize {
        usize::from(self.raw().data_off)
    }

    #[inline]
    fn prepend(&mut self, len: usize) -> Result<&mut [u8], FrameError> {
        let available = self.headroom();
        let n = u16::try_from(len)
            .ok()
            .filter(|n| usize::from(*n) <= available)
            .ok_or(FrameError::NoHeadroom {
                needed: len,
                available,
            })?;
        let m = self.raw_mut();
        // n <= data_off, and data_len + n <= buf_len fits u16.
        m.data_off -= n;
        m.data_len += n;
        m.pkt_len += u32::from(n);
        // SAFETY: the n bytes now starting at buf_addr + data_off are inside
        // the buffer (they were headroom), exclusively ours through &mut
        // self.
        Ok(unsafe {
            std::slice::from_raw_parts_mut(
                m.buf_addr.cast::<u8>().add(usize::from(m.data_off)),
                len,
            )
        })
    }

    #[inline]
    fn strip(&mut self, len: usize) -> Result<(), FrameError> {
        let have = self.len();
        let n = u16::try_from(len)
            .ok()
            .filter(|n| usize::from(*n) <= have)
            .ok_or(FrameError::TooShort {
                needed: len,
                len: have,
            })?;
        let m = self.raw_mut();
        // n <= data_len <= pkt_len, and data_off + n stays in the buffer.
        m.data_off += n;
        m.data_len -= n;
        m.pkt_len -= u32::from(n);
        Ok(())
    }

    #[inline]
    fn truncate(&mut self, len: usize) -> Result<(), FrameError> {
        let have = self.len();
        let cut = have
            .checked_sub(len)
            .and_then(|c| u16::try_from(c).ok())
            .ok_or(FrameError::TooShort {
                needed: len,
                len: have,
            })?;
        // SAFETY: the mbuf is live and ours; cut <= data_len.
        let r = unsafe { sys::vxd_pktmbuf_trim(self.0.as_ptr(), cut) };
        if r != 0 {
            return Err(FrameError::TooShort {
                needed: len,
                len: have,
            });
        }
        Ok(())
    }

    #[inline]
    fn rss_hash(&self) -> Option<u32> {
        // SAFETY: reads immutable statics defined by the shim.
        let flag = unsafe { sys::VXD_RX_RSS_HASH };
        if self.ol_flags() & flag != 0 {
            // SAFETY: the mbuf is live (invariant).
            Some(unsafe { sys::vxd_mbuf_rss_hash(self.0.as_ptr()) })
        } else {
            None
        }
    }

    #[inline]
    fn ingress_port(&self) -> u16 {
        self.raw().port
    }

    /// The device's receive checksum verdicts on the outer headers. For a
    /// frame whose tunnel the device recognised (a tunnel type in
    /// `packet_type`, as NICs that parse VXLAN report it), the plain
    /// `RTE_MBUF_F_RX_IP_CKSUM_*` and `_L4_CKSUM_*` flags are about the
    /// inner headers, so the outer ones are read from the
    /// `RTE_MBUF_F_RX_OUTER_*` flags instead (DPDK has no outer IPv4
    /// "good", only "bad": such frames get their outer IPv4 header checked
    /// in software).
    #[inline]
    fn rx_offloads(&self) -> RxOffloads {
        let f = self.ol_flags();
        // SAFETY: reads immutable statics defined by the shim.
        let (ipm, ipg, ipb, l4m, l4g, l4b, tunnel) = unsafe {
            (
                sys::VXD_RX_IP_CKSUM_MASK,
                sys::VXD_RX_IP_CKSUM_GOOD,
                sys::VXD_RX_IP_CKSUM_BAD,
                sys::VXD_RX_L4_CKSUM_MASK,
                sys::VXD_RX_L4_CKSUM_GOOD,
                sys::VXD_RX_L4_CKSUM_BAD,
                sys::VXD_PTYPE_TUNNEL_MASK,
            )
        };
        // SAFETY: packet_type is a plain u32 view of the union's bit
        // fields; every bit pattern is valid.
        let ptype = unsafe { self.raw().__bindgen_anon_1.packet_type };
        if ptype & tunnel != 0 {
            return self.outer_rx_offloads(f);
        }
        RxOffloads {
            ip_checksum_good: f & ipm == ipg,
            l4_checksum_good: f & l4m == l4g,
            ip_checksum_bad: f & ipm == ipb,
            l4_checksum_bad: f & l4m == l4b,
        }
    }

    /// Sets DPDK's request: `RTE_MBUF_F_TX_IPV4` or `_IPV6`, with
    /// `RTE_MBUF_F_TX_IP_CKSUM` and `RTE_MBUF_F_TX_UDP_CKSUM` as asked, and
    /// `l2_len` and `l3_len` (every other length of `tx_offload` zero).
    /// The encapsulation passes a constant request, so this is two
    /// constant stores. Only for a port whose transmit offloads are on
    /// (see [`Offloads`](super::Offloads)).
    #[inline(always)]
    fn request_tx_checksums(&mut self, req: TxChecksums) {
        let mut flags = if req.ipv6 {
            tx_flags::IPV6
        } else {
            tx_flags::IPV4
        };
        if req.ipv4_header {
            flags |= tx_flags::IP_CKSUM;
        }
        if req.udp {
            flags |= tx_flags::UDP_CKSUM;
        }
        let word = (u64::from(req.l2_len & 0x7f) << tx_flags::L2_LEN_OFS)
            | (u64::from(req.l3_len) << tx_flags::L3_LEN_OFS);
        let m = self.raw_mut();
        m.ol_flags |= flags;
        m.__bindgen_anon_3.tx_offload = word;
    }
}
