//! The frame trait the whole pipeline is generic over.
//!
//! A frame is the bytes of one Ethernet frame inside a buffer that has
//! room before it (headroom) so encapsulation can prepend headers without
//! moving the payload, and so decapsulation can strip them by moving a
//! start offset. DPDK mbufs, AF_XDP UMEM frames and the in-memory
//! [`BufFrame`] all implement it; the pipeline is monomorphized over it.
//!
//! ```
//! use vxlan_core::frame::{BufFrame, Frame};
//!
//! let mut storage = [0u8; 256];
//! let mut f = BufFrame::new(&mut storage[..], 128);
//! f.append(&[0xaa; 60]).unwrap();
//! f.prepend(50).unwrap().fill(0x11); // room for an outer header
//! assert_eq!(f.len(), 110);
//! f.strip(50).unwrap();
//! assert_eq!(f.data(), &[0xaa; 60][..]);
//! ```

use core::fmt;

/// Why a frame operation could not be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// Not enough headroom to prepend `needed` bytes (`available` left).
    NoHeadroom {
        /// Bytes asked for.
        needed: usize,
        /// Headroom left.
        available: usize,
    },
    /// Not enough tailroom to append.
    NoTailroom {
        /// Bytes asked for.
        needed: usize,
        /// Tailroom left.
        available: usize,
    },
    /// Asked to strip or keep more bytes than the frame holds.
    TooShort {
        /// Bytes asked for.
        needed: usize,
        /// Bytes in the frame.
        len: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::NoHeadroom { needed, available } => {
                write!(f, "need {needed} bytes of headroom, have {available}")
            }
            FrameError::NoTailroom { needed, available } => {
                write!(f, "need {needed} bytes of tailroom, have {available}")
            }
            FrameError::TooShort { needed, len } => {
                write!(f, "need {needed} bytes, frame has {len}")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FrameError {}

/// What the NIC (or whoever received the frame) already checked. Neither
/// good nor bad: not checked (decapsulation then checks in software).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RxOffloads {
    /// The NIC verified the outermost IPv4 header checksum and found it
    /// good.
    pub ip_checksum_good: bool,
    /// The NIC verified the outermost L4 checksum and found it good.
    pub l4_checksum_good: bool,
    /// The NIC verified the outermost IPv4 header checksum and found it
    /// wrong.
    pub ip_checksum_bad: bool,
    /// The NIC verified the outermost L4 checksum and found it wrong.
    pub l4_checksum_bad: bool,
}

/// The checksums of an outgoing frame that are left to the transmitting
/// device, and where its headers lie (DPDK's `l2_len` and `l3_len`).
///
/// An encapsulation template built for a device with transmit checksum
/// offload (see [`crate::encap::TxChecksumOffload`]) hands one to
/// [`Frame::request_tx_checksums`] and leaves the fields as DPDK's
/// transmit contract asks: the IPv4 header checksum zero, the UDP checksum
/// holding the pseudo-header's sum (folded, not inverted). A frame that
/// never reaches such a device can have them finished in software by
/// [`crate::encap::complete_tx_checksums`].
///
/// ```
/// use vxlan_core::frame::TxChecksums;
///
/// // What an untagged IPv4 template leaves to the device.
/// let req = TxChecksums { l2_len: 14, l3_len: 20, ipv6: false, ipv4_header: true, udp: false };
/// assert_eq!(usize::from(req.l2_len + req.l3_len), 34); // where UDP starts
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TxChecksums {
    /// The Ethernet header's length, tags included.
    pub l2_len: u8,
    /// The IP header's length (20 for IPv4 without options, 40 for IPv6).
    pub l3_len: u8,
    /// An IPv6 packet (else IPv4).
    pub ipv6: bool,
    /// The device computes the IPv4 header checksum (the field is zero).
    pub ipv4_header: bool,
    /// The device completes the UDP checksum (the field holds the
    /// pseudo-header's sum).
    pub udp: bool,
}

/// One frame in a buffer with headroom.
pub trait Frame {
    /// The frame's bytes.
    fn data(&self) -> &[u8];
    /// The frame's bytes, writable.
    fn data_mut(&mut self) -> &mut [u8];
    /// Free bytes before the frame.
    fn headroom(&self) -> usize;
    /// Grows the frame by `len` bytes at the front and returns them
    /// (their content is unspecified). The payload does not move.
    fn prepend(&mut self, len: usize) -> Result<&mut [u8], FrameError>;
    /// Removes `len` bytes from the front. The payload does not move.
    fn strip(&mut self, len: usize) -> Result<(), FrameError>;
    /// Shortens the frame to `len` bytes (drops trailing padding).
    fn truncate(&mut self, len: usize) -> Result<(), FrameError>;
    /// The RSS hash the NIC computed, when it did.
    fn rss_hash(&self) -> Option<u32> {
        None
    }
    /// The port the frame arrived on.
    fn ingress_port(&self) -> u16 {
        0
    }
    /// What the NIC verified on receive.
    fn rx_offloads(&self) -> RxOffloads {
        RxOffloads::default()
    }
    /// Asks the transmitting device to compute the checksums `req` names
    /// (called by the encapsulation of a template built for a device with
    /// the offload, after it wrote the headers). The default does nothing:
    /// a frame type that cannot carry the request must never meet such a
    /// template.
    #[inline(always)]
    fn request_tx_checksums(&mut self, req: TxChecksums) {
        let _ = req;
    }
    /// Length in bytes.
    fn len(&self) -> usize {
        self.data().len()
    }
    /// True for an empty frame.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A frame in a caller's buffer: `[headroom | data | tailroom]`.
#[derive(Debug)]
pub struct BufFrame<B> {
    buf: B,
    start: usize,
    end: usize,
    rss: Option<u32>,
    port: u16,
    offloads: RxOffloads,
    tx: Option<TxChecksums>,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> BufFrame<B> {
    /// An empty frame starting `headroom` bytes into `buf` (clamped to the
    /// buffer's length).
    pub fn new(buf: B, headroom: usize) -> Self {
        let start = headroom.min(buf.as_ref().len());
        BufFrame {
            buf,
            start,
            end: start,
            rss: None,
            port: 0,
            offloads: RxOffloads::default(),
            tx: None,
        }
    }

    /// A frame holding `data`, with `headroom` bytes before it.
    pub fn with_data(buf: B, headroom: usize, data: &[u8]) -> Result<Self, FrameError> {
        let mut f = Self::new(buf, headroom);
        f.append(data)?;
        Ok(f)
    }

    /// Copies `data` onto the end of the frame.
    pub fn append(&mut self, data: &[u8]) -> Result<(), FrameError> {
        let cap = self.buf.as_ref().len();
        let new_end = self.end + data.len();
        if new_end > cap {
            return Err(FrameError::NoTailroom {
                needed: data.len(),
                available: cap - self.end,
            });
        }
        self.buf.as_mut()[self.end..new_end].copy_from_slice(data);
        self.end = new_end;
        Ok(())
    }

    /// Empties the frame and restores `headroom` bytes of headroom, for
    /// reuse of the buffer.
    pub fn reset(&mut self, headroom: usize) {
        self.start = headroom.min(self.buf.as_ref().len());
        self.end = self.start;
        self.rss = None;
        self.offloads = RxOffloads::default();
        self.tx = None;
    }

    /// Sets the RSS hash reported by [`Frame::rss_hash`].
    pub fn set_rss_hash(&mut self, hash: Option<u32>) {
        self.rss = hash;
    }

    /// Sets the ingress port.
    pub fn set_ingress_port(&mut self, port: u16) {
        self.port = port;
    }

    /// Sets what the "NIC" verified.
    pub fn set_rx_offloads(&mut self, offloads: RxOffloads) {
        self.offloads = offloads;
    }

    /// The transmit checksum request the encapsulation made, if any (see
    /// [`Frame::request_tx_checksums`]); [`BufFrame::reset`] clears it.
    pub fn tx_checksums(&self) -> Option<TxChecksums> {
        self.tx
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> B {
        self.buf
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Frame for BufFrame<B> {
    #[inline]
    fn data(&self) -> &[u8] {
        &self.buf.as_ref()[self.start..self.end]
    }

    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf.as_mut()[self.start..self.end]
    }

    #[inline]
    fn headroom(&self) -> usize {
        self.start
    }

    #[inline]
    fn prepend(&mut self, len: usize) -> Result<&mut [u8], FrameError> {
        if len > self.start {
            return Err(FrameError::NoHeadroom {
                needed: len,
                available: self.start,
            });
        }
        self.start -= len;
        let start = self.start;
        Ok(&mut self.buf.as_mut()[start..start + len])
    }

    #[inline]
    fn strip(&mut self, len: usize) -> Result<(), FrameError> {
        if len > self.end - self.start {
            return Err(FrameError::TooShort {
                needed: len,
                len: self.end - self.start,
            });
        }
        self.start += len;
        Ok(())
    }

    #[inline]
    fn truncate(&mut self, len: usize) -> Result<(), FrameError> {
        if len > self.end - self.start {
            return Err(FrameError::TooShort {
                needed: len,
                len: self.end - self.start,
            });
        }
        self.end = self.start + len;
        Ok(())
    }

    fn rss_hash(&self) -> Option<u32> {
        self.rss
    }

    fn ingress_port(&self) -> u16 {
        self.port
    }

    fn rx_offloads(&self) -> RxOffloads {
        self.offloads
    }

    fn request_tx_checksums(&mut self, req: TxChecksums) {
        self.tx = Some(req);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headroom_accounting() {
        let mut storage = [0u8; 64];
        let mut f = BufFrame::new(&mut storage[..], 16);
        assert_eq!(f.headroom(), 16);
        f.append(&[1, 2, 3]).unwrap();
        assert_eq!(
            f.prepend(17).unwrap_err(),
            FrameError::NoHeadroom {
                needed: 17,
                available: 16
            }
        );
        f.prepend(16).unwrap().copy_from_slice(&[9; 16]);
        assert_eq!(f.headroom(), 0);
        assert_eq!(f.len(), 19);
        f.strip(16).unwrap();
        assert_eq!(f.data(), &[1, 2, 3]);
        assert_eq!(
            f.strip(4).unwrap_err(),
            FrameError::TooShort { needed: 4, len: 3 }
        );
        f.truncate(2).unwrap();
        assert_eq!(f.data(), &[1, 2]);
        assert!(f.append(&[0; 60]).is_err());
        f.reset(8);
        assert!(f.is_empty());
        assert_eq!(f.headroom(), 8);
    }
}
