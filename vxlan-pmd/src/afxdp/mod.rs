//! AF_XDP ports (feature `af-xdp`): one socket per queue of a Linux
//! interface, over the kernel's socket/UMEM/ring protocol, with `libc`
//! system calls only (no libbpf or libxdp needed).
//!
//! Each [`AfXdpPort`] owns one socket bound to one queue and its own UMEM:
//! an anonymous mapping cut into equal frames, the first half lent to the
//! kernel through the fill ring for receiving, the second half kept for
//! transmitting. Every frame reserves [`UMEM_HEADROOM`] bytes in front of
//! the packet (the kernel is told through `XDP_UMEM_REG`, and transmitted
//! frames are placed at the same offset), room for a VXLAN outer header.
//!
//! Honest about copies: the VTEP pipeline works on the pool's
//! [`PktBuf`](crate::pool::PktBuf)s, so a received frame is copied out of the UMEM into a pool
//! buffer (and its UMEM frame goes straight back to the fill ring), and a
//! frame to send is copied from its `PktBuf` into a free tx frame. That is
//! one copy each way, on top of the kernel's own copy in copy mode.
//! Carrying UMEM frames through the pipeline (the headroom is already
//! there for it) is later work.
//!
//! Bind modes: [`BindMode::Copy`] works on any interface (veth included);
//! [`BindMode::ZeroCopy`] needs a driver with AF_XDP zero-copy support.
//! With `need_wakeup` (on by default), the kernel sets a flag on the fill
//! ring or the tx ring when it wants a system call to make progress, and
//! the port makes the call (`recvfrom` / `sendto` with `MSG_DONTWAIT`) only
//! then; without it, every tx burst kicks.
//!
//! [`XdpSteering`] loads the steering program ([`bpf`]) on an interface
//! and registers the sockets in its XSKMAP; the program is detached when
//! it drops.

pub mod bpf;
mod ring;

pub use ring::{RingPos, XdpDesc};

use std::ffi::CString;
use std::fmt;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::Arc;

use crate::pool::Pool;
use crate::port::{Burst, Port};
use crate::stats::{bytes, CounterSet, PortCounters, PortStats};
use ring::{ConsRing, ProdRing, RingMap};

pub use bpf::{AttachMode, Filter, XdpAttachment, XdpProgram, XskMap};

/// Bytes reserved in front of every UMEM frame's packet: room for the
/// largest VXLAN outer header (see [`crate::pool::DEFAULT_HEADROOM`]).
pub const UMEM_HEADROOM: u32 = 128;

/// How the socket is bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindMode {
    /// The kernel copies frames between the driver and the UMEM (`XDP_COPY`).
    Copy,
    /// The driver DMAs straight into the UMEM (`XDP_ZEROCOPY`).
    ZeroCopy,
}

/// Sizes and options of one socket.
#[derive(Debug, Clone, Copy)]
pub struct XskConfig {
    /// UMEM frame size: 2048 or 4096.
    pub frame_size: u32,
    /// UMEM frames, half for receiving, half for transmitting.
    pub frames: u32,
    /// Entries of each ring (a power of two).
    pub ring_size: u32,
    /// Copy or zero-copy.
    pub mode: BindMode,
    /// Ask the kernel to say when it needs a wakeup system call.
    pub need_wakeup: bool,
}

impl Default for XskConfig {
    fn default() -> Self {
        XskConfig {
            frame_size: 4096,
            frames: 4096,
            ring_size: 2048,
            mode: BindMode::Copy,
            need_wakeup: true,
        }
    }
}

/// Why a socket could not be opened.
#[derive(Debug)]
pub struct XskError {
    /// The step that failed (`"bind"`, `"XDP_UMEM_REG"`, ...).
    pub step: &'static str,
    /// The system's error.
    pub source: io::Error,
}

impl fmt::Display for XskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AF_XDP {}: {}", self.step, self.source)?;
        if self.source.raw_os_error() == Some(libc::EPERM) {
            write!(f, " (AF_XDP needs root or CAP_NET_ADMIN + CAP_BPF)")?;
        }
        Ok(())
    }
}

impl std::error::Error for XskError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

fn step<T>(step: &'static str, r: io::Result<T>) -> Result<T, XskError> {
    r.map_err(|source| XskError { step, source })
}

fn os_err(step: &'static str) -> XskError {
    XskError {
        step,
        source: io::Error::last_os_error(),
    }
}

/// The interface index of `name`.
pub fn ifindex(name: &str) -> io::Result<u32> {
    let c = CString::new(name).map_err(io::Error::other)?;
    // SAFETY: `c` is a valid NUL-terminated string for the call's duration.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(i)
    }
}

/// The kernel's counters for the AF_XDP socket `fd`: frames it dropped
/// because the rx ring was full or the fill ring empty, and invalid
/// descriptors. Safe to call from any thread while another uses the
/// socket (a plain `getsockopt`).
pub fn xsk_kernel_stats(fd: RawFd) -> io::Result<libc::xdp_statistics> {
    // SAFETY: plain integers; all-zero is valid.
    let mut s: libc::xdp_statistics = unsafe { std::mem::zeroed() };
    let mut len = socklen::<libc::xdp_statistics>();
    // SAFETY: `s` and `len` are live and sized as we say; a bad `fd` only
    // makes the call fail.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_XDP,
            libc::XDP_STATISTICS,
            (&mut s as *mut libc::xdp_statistics).cast(),
            &mut len,
        )
    };
    if r == 0 {
        Ok(s)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The UMEM area: an anonymous mapping, unmapped on drop.
struct Umem {
    base: NonNull<u8>,
    len: usize,
}

impl Drop for Umem {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are the mapping mmap returned; the socket
        // that registered it is closed before (field order in AfXdpPort),
        // so the kernel no longer writes into it.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

/// An AF_XDP socket on one queue of an interface, as a [`Port`] whose
/// queue 0 is that queue.
pub struct AfXdpPort {
    name: String,
    queue_id: u32,
    port_id: u16,
    frame_size: u32,
    /// UMEM bytes holding the rx frames (the tx frames follow).
    rx_region: u64,
    need_wakeup: bool,
    rx: ConsRing<XdpDesc>,
    tx: ProdRing<XdpDesc>,
    fill: ProdRing<u64>,
    comp: ConsRing<u64>,
    /// UMEM offsets of the tx frames not in flight. Allocated once with
    /// capacity for all of them, so pushes never reallocate.
    tx_free: Vec<u64>,
    pool: Arc<Pool>,
    counters: Arc<PortCounters>,
    /// Wakeup system calls made (for the figures).
    kicks: u64,
    // Drop order: the socket closes first, then its UMEM is unmapped.
    fd: OwnedFd,
    umem: Umem,
}

// SAFETY: the raw pointers are into mappings this port owns exclusively;
// moving the port to another thread moves that ownership with it, and the
// kernel side of the rings is thread-agnostic.
unsafe impl Send for AfXdpPort {}

impl fmt::Debug for AfXdpPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AfXdpPort")
            .field("name", &self.name)
            .field("queue_id", &self.queue_id)
            .field("fd", &self.fd.as_raw_fd())
            .finish()
    }
}

/// The size of `T` as a socket option length.
fn socklen<T>() -> libc::socklen_t {
    libc::socklen_t::try_from(size_of::<T>()).unwrap_or(libc::socklen_t::MAX)
}

fn setsockopt_u32(fd: RawFd, opt: libc::c_int, v: u32) -> io::Result<()> {
    // SAFETY: `v` is a live u32 and we pass its size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_XDP,
            opt,
            (&v as *const u32).cast(),
            socklen::<u32>(),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn map_ring<T>(
    fd: RawFd,
    off: &libc::xdp_ring_offset,
    size: u32,
    pgoff: libc::off_t,
    step: &'static str,
) -> Result<RingMap<T>, XskError> {
    let len = usize::try_from(off.desc).unwrap_or(usize::MAX)
        + usize::try_from(size).unwrap_or(0) * size_of::<T>();
    // SAFETY: a fresh shared mapping of the socket's ring, at the offset
    // the kernel documents for it; no existing memory is affected.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_POPULATE,
            fd,
            pgoff,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(os_err(step));
    }
    let base = p.cast::<u8>();
    let at = |o: u64| -> NonNull<u8> {
        // SAFETY: the kernel reported offsets inside the ring it mapped.
        let q = unsafe { base.add(usize::try_from(o).unwrap_or(0)) };
        NonNull::new(q).unwrap_or(NonNull::dangling())
    };
    Ok(RingMap {
        producer: at(off.producer).cast(),
        consumer: at(off.consumer).cast(),
        flags: at(off.flags).cast(),
        descs: at(off.desc).cast(),
        size,
        map: NonNull::new(base).unwrap_or(NonNull::dangling()),
        map_len: len,
    })
}

impl AfXdpPort {
    /// Opens a socket on queue `queue_id` of interface `interface`, with
    /// its own UMEM, and binds it. Received frames are copied into
    /// buffers from `pool`. The socket receives nothing until an XDP
    /// program redirects to it (see [`XdpSteering`]).
    pub fn open(
        interface: &str,
        queue_id: u32,
        config: XskConfig,
        pool: Arc<Pool>,
    ) -> Result<AfXdpPort, XskError> {
        let bad = |what: &str| XskError {
            step: "config",
            source: io::Error::new(io::ErrorKind::InvalidInput, what.to_string()),
        };
        if !matches!(config.frame_size, 2048 | 4096) {
            return Err(bad("frame_size must be 2048 or 4096"));
        }
        if !config.ring_size.is_power_of_two() || config.frames < 2 * config.ring_size {
            return Err(bad(
                "ring_size must be a power of two and frames at least twice ring_size",
            ));
        }
        let ifindex = step("interface", ifindex(interface))?;
        // SAFETY: plain socket creation; the result is checked.
        let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(os_err("socket"));
        }
        // SAFETY: `raw` is a new descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };

        let len = usize::try_from(u64::from(config.frames) * u64::from(config.frame_size))
            .map_err(|_| bad("UMEM too large"))?;
        // SAFETY: a fresh private anonymous mapping.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(os_err("UMEM mmap"));
        }
        let umem = Umem {
            base: NonNull::new(p.cast()).ok_or_else(|| os_err("UMEM mmap"))?,
            len,
        };
        let reg = libc::xdp_umem_reg {
            addr: p as u64,
            len: len as u64,
            chunk_size: config.frame_size,
            headroom: UMEM_HEADROOM,
            flags: 0,
            tx_metadata_len: 0,
        };
        // SAFETY: `reg` is a live xdp_umem_reg and we pass its size; the
        // area it names is our mapping, which outlives the socket.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_XDP,
                libc::XDP_UMEM_REG,
                (&reg as *const libc::xdp_umem_reg).cast(),
                socklen::<libc::xdp_umem_reg>(),
            )
        };
        if r != 0 {
            return Err(os_err("XDP_UMEM_REG"));
        }
        let raw = fd.as_raw_fd();
        let n = config.ring_size;
        step(
            "XDP_UMEM_FILL_RING",
            setsockopt_u32(raw, libc::XDP_UMEM_FILL_RING, n),
        )?;
        step(
            "XDP_UMEM_COMPLETION_RING",
            setsockopt_u32(raw, libc::XDP_UMEM_COMPLETION_RING, n),
        )?;
        step("XDP_RX_RING", setsockopt_u32(raw, libc::XDP_RX_RING, n))?;
        step("XDP_TX_RING", setsockopt_u32(raw, libc::XDP_TX_RING, n))?;

        // SAFETY: xdp_mmap_offsets is plain integers; all-zero is valid.
        let mut off: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
        let mut optlen = socklen::<libc::xdp_mmap_offsets>();
        // SAFETY: `off` and `optlen` are live and sized as we say.
        let r = unsafe {
            libc::getsockopt(
                raw,
                libc::SOL_XDP,
                libc::XDP_MMAP_OFFSETS,
                (&mut off as *mut libc::xdp_mmap_offsets).cast(),
                &mut optlen,
            )
        };
        if r != 0 {
            return Err(os_err("XDP_MMAP_OFFSETS"));
        }
        if optlen as usize != size_of::<libc::xdp_mmap_offsets>() {
            return Err(bad(
                "kernel too old: no ring flags (need_wakeup) in XDP_MMAP_OFFSETS",
            ));
        }
        let pg = |v: u64| libc::off_t::try_from(v).unwrap_or(0);
        let rx = ConsRing::new(map_ring::<XdpDesc>(
            raw,
            &off.rx,
            n,
            libc::XDP_PGOFF_RX_RING,
            "rx ring mmap",
        )?);
        let tx = ProdRing::new(map_ring::<XdpDesc>(
            raw,
            &off.tx,
            n,
            libc::XDP_PGOFF_TX_RING,
            "tx ring mmap",
        )?);
        let mut fill = ProdRing::new(map_ring::<u64>(
            raw,
            &off.fr,
            n,
            pg(libc::XDP_UMEM_PGOFF_FILL_RING),
            "fill ring mmap",
        )?);
        let comp = ConsRing::new(map_ring::<u64>(
            raw,
            &off.cr,
            n,
            pg(libc::XDP_UMEM_PGOFF_COMPLETION_RING),
            "completion ring mmap",
        )?);

        // The first `ring_size` frames go to the fill ring, the rest are tx
        // frames.
        let fs = u64::from(config.frame_size);
        let got = fill.free(n);
        for i in 0..u64::from(got.min(n)) {
            fill.push(i * fs);
        }
        fill.submit();
        let mut tx_free = Vec::with_capacity(usize::try_from(config.frames - n).unwrap_or(0));
        for i in u64::from(n)..u64::from(config.frames) {
            tx_free.push(i * fs);
        }

        let mut flags = match config.mode {
            BindMode::Copy => libc::XDP_COPY,
            BindMode::ZeroCopy => libc::XDP_ZEROCOPY,
        };
        if config.need_wakeup {
            flags |= libc::XDP_USE_NEED_WAKEUP;
        }
        let sa = libc::sockaddr_xdp {
            sxdp_family: u16::try_from(libc::AF_XDP).unwrap_or(44),
            sxdp_flags: flags,
            sxdp_ifindex: ifindex,
            sxdp_queue_id: queue_id,
            sxdp_shared_umem_fd: 0,
        };
        // SAFETY: `sa` is a live sockaddr_xdp and we pass its size.
        let r = unsafe {
            libc::bind(
                raw,
                (&sa as *const libc::sockaddr_xdp).cast(),
                socklen::<libc::sockaddr_xdp>(),
            )
        };
        if r != 0 {
            return Err(os_err("bind"));
        }
        Ok(AfXdpPort {
            name: format!("{interface}:{queue_id}"),
            queue_id,
            port_id: 0,
            frame_size: config.frame_size,
            rx_region: u64::from(n) * fs,
            need_wakeup: config.need_wakeup,
            rx,
            tx,
            fill,
            comp,
            tx_free,
            pool,
            counters: Arc::new(PortCounters::default()),
            kicks: 0,
            fd,
            umem,
        })
    }

    /// Sets the port number stamped on received frames (the VTEP's index
    /// of this port).
    pub fn set_port_id(&mut self, id: u16) {
        self.port_id = id;
    }

    /// Renames the port (for logs and stats).
    pub fn set_name(&mut self, name: impl Into<String>) {
        self.name = name.into();
    }

    /// The socket, for [`XskMap::set`].
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The queue this socket is bound to.
    pub fn queue_id(&self) -> u32 {
        self.queue_id
    }

    /// The live counters (share them to read from another thread).
    pub fn counters(&self) -> Arc<PortCounters> {
        Arc::clone(&self.counters)
    }

    /// Wakeup system calls made so far.
    pub fn kicks(&self) -> u64 {
        self.kicks
    }

    /// The kernel's counters for this socket (see [`xsk_kernel_stats`]).
    pub fn kernel_stats(&self) -> io::Result<libc::xdp_statistics> {
        xsk_kernel_stats(self.fd.as_raw_fd())
    }

    #[inline]
    fn frame(&self, addr: u64, len: u32) -> Option<&[u8]> {
        let start = usize::try_from(addr).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        if end > self.umem.len {
            return None;
        }
        // SAFETY: `start..end` is inside the UMEM mapping (checked above),
        // and the kernel handed this frame to us on the rx ring: it does
        // not write to it until we return it on the fill ring.
        Some(unsafe { std::slice::from_raw_parts(self.umem.base.as_ptr().add(start), end - start) })
    }

    #[inline]
    fn kick_rx(&mut self) {
        self.kicks += 1;
        // SAFETY: a zero-length, non-blocking receive on our own socket
        // with no buffer: it only wakes the kernel's rx processing.
        unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                std::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
        }
    }

    #[inline]
    fn kick_tx(&mut self) {
        self.kicks += 1;
        // SAFETY: a zero-length, non-blocking send on our own socket: it
        // only makes the kernel process the tx ring. EAGAIN/EBUSY/ENOBUFS
        // mean "try again later", which the next burst does.
        unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            );
        }
    }

    /// Takes sent frames back from the completion ring.
    #[inline]
    fn reclaim(&mut self) {
        let n = self.comp.available();
        if n == 0 {
            return;
        }
        for _ in 0..n {
            let addr = self.comp.pop();
            let base = addr - addr % u64::from(self.frame_size);
            // Cannot exceed the capacity: only frames taken from
            // `tx_free` come back.
            if self.tx_free.len() < self.tx_free.capacity() {
                self.tx_free.push(base);
            }
        }
        self.comp.release();
    }
}

impl Port for AfXdpPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn queues(&self) -> u16 {
        1
    }

    fn rx_burst(&mut self, queue: u16, out: &mut Burst, max: usize) -> usize {
        if queue != 0 {
            return 0;
        }
        if self.need_wakeup && self.fill.needs_wakeup() {
            self.kick_rx();
        }
        let want = u32::try_from(max.min(out.remaining())).unwrap_or(0);
        let n = self.rx.available().min(want);
        if n == 0 {
            return 0;
        }
        // Every received frame goes back on the fill ring at once. The
        // ring has `ring_size` slots and there are exactly `ring_size` rx
        // frames, so a frame we hold always has a slot the kernel has read
        // (see `push_token`). The kernel's published consumer index cannot
        // tell us that: it publishes it lazily, when its cached entries
        // run out, and waiting for it would leave frames idle on the rx
        // ring while the kernel drops for an empty fill ring.
        let (mut got, mut got_bytes, mut dropped, mut nombuf) = (0usize, 0usize, 0u64, 0u64);
        for _ in 0..n {
            let desc = self.rx.pop();
            let copy = self
                .frame(desc.addr, desc.len)
                .map(|data| (data.len(), self.pool.alloc_with(data)));
            match copy {
                Some((len, Some(mut pkt))) => {
                    pkt.set_ingress_port(self.port_id);
                    got_bytes += len;
                    // Cannot fail: `want` is within the burst's room.
                    if out.push(pkt).is_ok() {
                        got += 1;
                    }
                }
                // Pool empty (or the frame longer than a pool buffer).
                Some((_, None)) => nombuf += 1,
                None => dropped += 1,
            }
            let base = desc.addr - desc.addr % u64::from(self.frame_size);
            // Only rx frames go back (the token argument counts them); the
            // kernel never hands out another, but a bad descriptor must not
            // break the count.
            if base < self.rx_region {
                self.fill.push_token(base);
            }
        }
        self.rx.release();
        self.fill.submit();
        self.counters.rx_packets.add(bytes(got));
        self.counters.rx_bytes.add(bytes(got_bytes));
        if dropped > 0 {
            self.counters.rx_dropped.add(dropped);
        }
        if nombuf > 0 {
            self.counters.rx_nombuf.add(nombuf);
        }
        got
    }

    fn tx_burst(&mut self, queue: u16, pkts: &mut Burst) -> usize {
        if queue != 0 {
            self.counters.tx_dropped.add(bytes(pkts.len()));
            pkts.clear();
            return 0;
        }
        self.reclaim();
        if self.tx_free.len() < pkts.len() {
            // Out of tx frames: push the kernel to finish sending, then look
            // again once.
            self.kick_tx();
            self.reclaim();
        }
        let room = self.tx.free(u32::try_from(pkts.len()).unwrap_or(u32::MAX));
        let max_len = (self.frame_size - UMEM_HEADROOM) as usize;
        let (mut sent, mut sent_bytes, mut dropped) = (0u32, 0usize, 0u64);
        for pkt in pkts.drain() {
            use vxlan_core::frame::Frame;
            let data = pkt.data();
            if sent >= room || data.len() > max_len {
                dropped += 1;
                continue;
            }
            let Some(frame) = self.tx_free.pop() else {
                dropped += 1;
                continue;
            };
            let addr = frame + u64::from(UMEM_HEADROOM);
            let start = usize::try_from(addr).unwrap_or(usize::MAX);
            if start.saturating_add(data.len()) > self.umem.len {
                dropped += 1;
                self.tx_free.push(frame);
                continue;
            }
            // SAFETY: `start..start + len` is inside the UMEM (checked),
            // and `frame` came off `tx_free`, so neither the kernel nor any
            // other descriptor uses it until it completes.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    data.as_ptr(),
                    self.umem.base.as_ptr().add(start),
                    data.len(),
                );
            }
            self.tx.push(XdpDesc {
                addr,
                len: u32::try_from(data.len()).unwrap_or(0),
                options: 0,
            });
            sent += 1;
            sent_bytes += data.len();
            // `pkt` returns to its pool here.
        }
        if sent > 0 {
            self.tx.submit();
            if !self.need_wakeup || self.tx.needs_wakeup() {
                self.kick_tx();
            }
        }
        self.counters.tx_packets.add(u64::from(sent));
        self.counters.tx_bytes.add(bytes(sent_bytes));
        if dropped > 0 {
            self.counters.tx_dropped.add(dropped);
        }
        usize::try_from(sent).unwrap_or(0)
    }

    fn stats(&self) -> PortStats {
        self.counters.snapshot()
    }
}

/// The steering program on one interface plus its XSKMAP. Dropping it
/// detaches the program.
#[derive(Debug)]
pub struct XdpSteering {
    interface: String,
    map: XskMap,
    _program: XdpProgram,
    attachment: XdpAttachment,
}

impl XdpSteering {
    /// Loads the program for `filter` and attaches it to `interface`,
    /// with room for `queues` sockets. `mode` `None` tries native XDP
    /// first, then generic.
    pub fn attach(
        interface: &str,
        queues: u32,
        filter: Filter,
        mode: Option<AttachMode>,
    ) -> Result<XdpSteering, XskError> {
        let ifindex = step("interface", ifindex(interface))?;
        let map = step("XSKMAP create", XskMap::new(queues))?;
        let program = step("XDP program load", XdpProgram::load(filter, &map))?;
        let attachment = match mode {
            Some(m) => step("XDP attach", program.attach(ifindex, m))?,
            None => match program.attach(ifindex, AttachMode::Native) {
                Ok(a) => a,
                Err(_) => step("XDP attach", program.attach(ifindex, AttachMode::Generic))?,
            },
        };
        Ok(XdpSteering {
            interface: interface.to_string(),
            map,
            _program: program,
            attachment,
        })
    }

    /// Sends the frames of `port`'s queue to it.
    pub fn register(&self, port: &AfXdpPort) -> Result<(), XskError> {
        step(
            "XSKMAP update",
            self.map.set(port.queue_id(), port.raw_fd()),
        )
    }

    /// The interface.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// How the program is attached.
    pub fn mode(&self) -> AttachMode {
        self.attachment.mode()
    }
}
