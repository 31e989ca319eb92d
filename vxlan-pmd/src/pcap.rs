//! Reading and writing capture files: classic pcap (either byte order,
//! micro- or nanosecond timestamps) and pcapng (section header, interface
//! description, enhanced and simple packet blocks).
//!
//! Only Ethernet link types are accepted by [`PcapReader::next_packet`]
//! consumers that need frames; the reader reports the link type of every
//! packet and leaves that choice to the caller.
//!
//! ```
//! use vxlan_pmd::pcap::{PcapReader, PcapWriter};
//!
//! let mut file = Vec::new();
//! let mut w = PcapWriter::new(&mut file).unwrap();
//! w.write_packet(1_700_000_000_000_000, &[0xff; 60]).unwrap();
//! w.into_inner().unwrap();
//! let mut r = PcapReader::new(&file[..]).unwrap();
//! let p = r.next_packet().unwrap().unwrap();
//! assert_eq!(p.data.len(), 60);
//! assert_eq!(p.timestamp_us, 1_700_000_000_000_000);
//! assert!(r.next_packet().unwrap().is_none());
//! ```

use std::fmt;
use std::io::{self, Read, Write};

/// The Ethernet link type (LINKTYPE_ETHERNET).
pub const LINKTYPE_ETHERNET: u16 = 1;

/// Largest packet accepted from a file; guards against corrupt lengths.
pub const MAX_SNAPLEN: usize = 256 * 1024;

/// Why a capture could not be read.
#[derive(Debug)]
pub enum PcapError {
    /// An I/O error from the underlying reader or writer.
    Io(io::Error),
    /// The file starts with neither the pcap nor the pcapng magic number.
    UnknownFormat(u32),
    /// A record or block is inconsistent (length fields, truncation).
    Malformed(&'static str),
}

impl fmt::Display for PcapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PcapError::Io(e) => write!(f, "capture I/O error: {e}"),
            PcapError::UnknownFormat(m) => {
                write!(f, "not a pcap or pcapng file (magic 0x{m:08x})")
            }
            PcapError::Malformed(what) => write!(f, "malformed capture: {what}"),
        }
    }
}

impl std::error::Error for PcapError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PcapError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for PcapError {
    fn from(e: io::Error) -> Self {
        PcapError::Io(e)
    }
}

/// One packet read from a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Capture time in microseconds since the Unix epoch.
    pub timestamp_us: u64,
    /// The link type of the interface it was captured on.
    pub link_type: u16,
    /// Length on the wire (may exceed `data.len()` when truncated by the
    /// snap length).
    pub orig_len: u32,
    /// The captured bytes.
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    link_type: u16,
    /// Timestamp units per second.
    ts_per_sec: u64,
}

enum Format {
    Pcap {
        big_endian: bool,
        nanos: bool,
        link_type: u16,
    },
    PcapNg {
        big_endian: bool,
        interfaces: Vec<Interface>,
    },
}

/// One record read by [`PcapReader::next_record`], borrowing its bytes
/// from the reader's reusable buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Capture time in microseconds since the Unix epoch.
    pub timestamp_us: u64,
    /// The link type of the interface it was captured on.
    pub link_type: u16,
    /// Length on the wire (may exceed `data.len()` when truncated by the
    /// snap length).
    pub orig_len: u32,
    /// The captured bytes.
    pub data: &'a [u8],
}

impl Record<'_> {
    /// An owned copy.
    pub fn to_packet(&self) -> Packet {
        Packet {
            timestamp_us: self.timestamp_us,
            link_type: self.link_type,
            orig_len: self.orig_len,
            data: self.data.to_vec(),
        }
    }
}

/// A streaming reader for pcap and pcapng files.
pub struct PcapReader<R: Read> {
    reader: R,
    format: Format,
    /// Holds the last record read; reused so that, once it has grown to the
    /// largest record, reading allocates nothing.
    scratch: Vec<u8>,
}

/// Sets `buf` to `len` bytes, reusing its allocation when it is large
/// enough.
fn sized(buf: &mut Vec<u8>, len: usize) -> &mut [u8] {
    buf.clear();
    buf.resize(len, 0);
    buf
}

fn u16_of(b: &[u8], big: bool) -> u16 {
    let a = [b[0], b[1]];
    if big {
        u16::from_be_bytes(a)
    } else {
        u16::from_le_bytes(a)
    }
}

fn u32_of(b: &[u8], big: bool) -> u32 {
    let a = [b[0], b[1], b[2], b[3]];
    if big {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

fn len_of(v: u32) -> Result<usize, PcapError> {
    usize::try_from(v).map_err(|_| PcapError::Malformed("length does not fit in memory"))
}

/// Reads exactly `buf.len()` bytes; `Ok(false)` on a clean end of file
/// before the first byte.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<bool, PcapError> {
    let mut done = 0;
    while done < buf.len() {
        match r.read(&mut buf[done..]) {
            Ok(0) if done == 0 => return Ok(false),
            Ok(0) => return Err(PcapError::Malformed("file ends inside a record")),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

const PCAP_MAGIC_US: u32 = 0xa1b2_c3d4;
const PCAP_MAGIC_NS: u32 = 0xa1b2_3c4d;
const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
const PCAPNG_BYTE_ORDER: u32 = 0x1a2b_3c4d;
const PCAPNG_IDB: u32 = 1;
const PCAPNG_SPB: u32 = 3;
const PCAPNG_EPB: u32 = 6;

impl<R: Read> PcapReader<R> {
    /// Reads the file header and detects the format.
    pub fn new(mut reader: R) -> Result<Self, PcapError> {
        let mut magic = [0u8; 4];
        if !read_full(&mut reader, &mut magic)? {
            return Err(PcapError::Malformed("empty file"));
        }
        let le = u32::from_le_bytes(magic);
        let be = u32::from_be_bytes(magic);
        if le == PCAPNG_SHB {
            let mut this = PcapReader {
                reader,
                format: Format::PcapNg {
                    big_endian: false,
                    interfaces: Vec::new(),
                },
                scratch: Vec::new(),
            };
            this.read_section_header()?;
            return Ok(this);
        }
        let (big_endian, nanos) = match (le, be) {
            (PCAP_MAGIC_US, _) => (false, false),
            (PCAP_MAGIC_NS, _) => (false, true),
            (_, PCAP_MAGIC_US) => (true, false),
            (_, PCAP_MAGIC_NS) => (true, true),
            _ => return Err(PcapError::UnknownFormat(be)),
        };
        let mut rest = [0u8; 20];
        if !read_full(&mut reader, &mut rest)? {
            return Err(PcapError::Malformed("truncated pcap header"));
        }
        // The link type is the low 16 bits of the last field (the upper
        // bits carry FCS information).
        let link_type = u16_of(&rest[16..], big_endian);
        let link_type = if big_endian {
            u16_of(&rest[18..], true)
        } else {
            link_type
        };
        Ok(PcapReader {
            reader,
            format: Format::Pcap {
                big_endian,
                nanos,
                link_type,
            },
            scratch: Vec::new(),
        })
    }

    /// Reads the rest of a section header block whose block type has just
    /// been consumed.
    fn read_section_header(&mut self) -> Result<(), PcapError> {
        let mut head = [0u8; 8];
        if !read_full(&mut self.reader, &mut head)? {
            return Err(PcapError::Malformed("truncated section header"));
        }
        let big_endian = match u32::from_le_bytes([head[4], head[5], head[6], head[7]]) {
            PCAPNG_BYTE_ORDER => false,
            _ if u32::from_be_bytes([head[4], head[5], head[6], head[7]]) == PCAPNG_BYTE_ORDER => {
                true
            }
            _ => return Err(PcapError::Malformed("bad pcapng byte-order magic")),
        };
        let total = len_of(u32_of(&head[..4], big_endian))?;
        if total < 28 || total % 4 != 0 || total > MAX_SNAPLEN {
            return Err(PcapError::Malformed("bad section header length"));
        }
        if !read_full(&mut self.reader, sized(&mut self.scratch, total - 12))? {
            return Err(PcapError::Malformed("truncated section header"));
        }
        self.format = Format::PcapNg {
            big_endian,
            interfaces: Vec::new(),
        };
        Ok(())
    }

    /// The next packet, or `None` at the end of the file.
    pub fn next_packet(&mut self) -> Result<Option<Packet>, PcapError> {
        Ok(self.next_record()?.map(|r| r.to_packet()))
    }

    /// The next packet, borrowed from a buffer the reader reuses (valid
    /// until the next call), or `None` at the end of the file. Once the
    /// buffer has grown to the largest record, this allocates nothing.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, PcapError> {
        match self.format {
            Format::Pcap {
                big_endian,
                nanos,
                link_type,
            } => {
                let mut rec = [0u8; 16];
                if !read_full(&mut self.reader, &mut rec)? {
                    return Ok(None);
                }
                let secs = u64::from(u32_of(&rec[0..], big_endian));
                let frac = u64::from(u32_of(&rec[4..], big_endian));
                let incl = len_of(u32_of(&rec[8..], big_endian))?;
                let orig_len = u32_of(&rec[12..], big_endian);
                if incl > MAX_SNAPLEN {
                    return Err(PcapError::Malformed(
                        "record longer than the largest snap length",
                    ));
                }
                let data = sized(&mut self.scratch, incl);
                if !read_full(&mut self.reader, data)? && incl > 0 {
                    return Err(PcapError::Malformed("file ends inside a record"));
                }
                let timestamp_us = secs * 1_000_000 + if nanos { frac / 1000 } else { frac };
                Ok(Some(Record {
                    timestamp_us,
                    link_type,
                    orig_len,
                    data,
                }))
            }
            Format::PcapNg { .. } => self.next_pcapng(),
        }
    }

    fn next_pcapng(&mut self) -> Result<Option<Record<'_>>, PcapError> {
        // The loop finds the next packet block and yields where its bytes
        // sit in `scratch`; the borrow of `scratch` is taken after the loop
        // (returning it from inside the loop does not pass the borrow
        // checker).
        let (timestamp_us, link_type, orig_len, range) = loop {
            let mut head = [0u8; 8];
            if !read_full(&mut self.reader, &mut head)? {
                return Ok(None);
            }
            if u32::from_le_bytes([head[0], head[1], head[2], head[3]]) == PCAPNG_SHB {
                // A new section: its byte order may differ. Re-read from
                // the byte-order magic.
                let mut rest = [0u8; 4];
                if !read_full(&mut self.reader, &mut rest)? {
                    return Err(PcapError::Malformed("truncated section header"));
                }
                let big = u32::from_be_bytes(rest) == PCAPNG_BYTE_ORDER;
                let total = len_of(u32_of(&head[4..], big))?;
                if total < 28 || total % 4 != 0 || total > MAX_SNAPLEN {
                    return Err(PcapError::Malformed("bad section header length"));
                }
                if !read_full(&mut self.reader, sized(&mut self.scratch, total - 12))? {
                    return Err(PcapError::Malformed("truncated section header"));
                }
                self.format = Format::PcapNg {
                    big_endian: big,
                    interfaces: Vec::new(),
                };
                continue;
            }
            let Format::PcapNg {
                big_endian: big,
                ref mut interfaces,
            } = self.format
            else {
                unreachable!("next_pcapng is only called for pcapng")
            };
            let block_type = u32_of(&head[..4], big);
            let total = len_of(u32_of(&head[4..], big))?;
            if total < 12 || total % 4 != 0 || total > MAX_SNAPLEN + 64 {
                return Err(PcapError::Malformed("bad block length"));
            }
            let body = sized(&mut self.scratch, total - 8);
            if !read_full(&mut self.reader, body)? {
                return Err(PcapError::Malformed("truncated block"));
            }
            let body = &body[..body.len() - 4]; // trailing length copy
            match block_type {
                PCAPNG_IDB => {
                    if body.len() < 8 {
                        return Err(PcapError::Malformed("short interface description"));
                    }
                    let link_type = u16_of(body, big);
                    let ts_per_sec = if_tsresol(&body[8..], big);
                    interfaces.push(Interface {
                        link_type,
                        ts_per_sec,
                    });
                }
                PCAPNG_EPB => {
                    if body.len() < 20 {
                        return Err(PcapError::Malformed("short enhanced packet block"));
                    }
                    let ifid = len_of(u32_of(body, big))?;
                    let iface = *interfaces
                        .get(ifid)
                        .ok_or(PcapError::Malformed("packet names an unknown interface"))?;
                    let ts = (u64::from(u32_of(&body[4..], big)) << 32)
                        | u64::from(u32_of(&body[8..], big));
                    let caplen = len_of(u32_of(&body[12..], big))?;
                    let orig_len = u32_of(&body[16..], big);
                    if 20 + caplen > body.len() {
                        return Err(PcapError::Malformed("captured length past the block"));
                    }
                    let timestamp_us = scale_to_us(ts, iface.ts_per_sec);
                    break (timestamp_us, iface.link_type, orig_len, 20..20 + caplen);
                }
                PCAPNG_SPB => {
                    if body.len() < 4 {
                        return Err(PcapError::Malformed("short simple packet block"));
                    }
                    let iface = *interfaces
                        .first()
                        .ok_or(PcapError::Malformed("simple packet before any interface"))?;
                    let orig_len = u32_of(body, big);
                    let end = body.len().min(4 + len_of(orig_len)?);
                    break (0, iface.link_type, orig_len, 4..end);
                }
                _ => {} // statistics, name resolution, custom: not needed
            }
        };
        Ok(Some(Record {
            timestamp_us,
            link_type,
            orig_len,
            data: self.scratch.get(range).unwrap_or_default(),
        }))
    }
}

/// Reads the `if_tsresol` option (code 9) of an interface description;
/// the default is microseconds.
fn if_tsresol(mut options: &[u8], big: bool) -> u64 {
    while options.len() >= 4 {
        let code = u16_of(options, big);
        let len = usize::from(u16_of(&options[2..], big));
        let padded = (len + 3) & !3;
        if code == 0 || options.len() < 4 + len {
            break;
        }
        if code == 9 && len >= 1 {
            let v = options[4];
            let exp = u32::from(v & 0x7f);
            return if v & 0x80 != 0 {
                1u64.checked_shl(exp).unwrap_or(1_000_000)
            } else {
                10u64.checked_pow(exp).unwrap_or(1_000_000)
            };
        }
        options = options.get(4 + padded..).unwrap_or(&[]);
    }
    1_000_000
}

fn scale_to_us(ts: u64, per_sec: u64) -> u64 {
    if per_sec == 1_000_000 {
        ts
    } else {
        let wide = u128::from(ts) * 1_000_000 / u128::from(per_sec.max(1));
        u64::try_from(wide).unwrap_or(u64::MAX)
    }
}

/// Reads every packet of a file at `path`.
pub fn read_file(path: impl AsRef<std::path::Path>) -> Result<Vec<Packet>, PcapError> {
    let file = std::fs::File::open(path)?;
    let mut reader = PcapReader::new(io::BufReader::new(file))?;
    let mut out = Vec::new();
    while let Some(p) = reader.next_packet()? {
        out.push(p);
    }
    Ok(out)
}

/// Writes a classic little-endian microsecond pcap with the Ethernet link
/// type, the format every tool reads.
pub struct PcapWriter<W: Write> {
    writer: W,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header.
    pub fn new(mut writer: W) -> io::Result<Self> {
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&PCAP_MAGIC_US.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        h[16..20].copy_from_slice(&u32::try_from(MAX_SNAPLEN).unwrap_or(u32::MAX).to_le_bytes());
        h[20..24].copy_from_slice(&u32::from(LINKTYPE_ETHERNET).to_le_bytes());
        writer.write_all(&h)?;
        Ok(PcapWriter { writer })
    }

    /// Appends one frame captured at `timestamp_us`.
    pub fn write_packet(&mut self, timestamp_us: u64, data: &[u8]) -> io::Result<()> {
        let len = u32::try_from(data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame longer than 4 GiB"))?;
        let secs = u32::try_from(timestamp_us / 1_000_000).unwrap_or(u32::MAX);
        let usecs = u32::try_from(timestamp_us % 1_000_000).unwrap_or(0);
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&secs.to_le_bytes());
        rec[4..8].copy_from_slice(&usecs.to_le_bytes());
        rec[8..12].copy_from_slice(&len.to_le_bytes());
        rec[12..16].copy_from_slice(&len.to_le_bytes());
        self.writer.write_all(&rec)?;
        self.writer.write_all(data)
    }

    /// Flushes what was written so far to the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }

    /// Flushes and gives back the writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.writer.flush()?;
        Ok(self.writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcapng(big: bool, tsresol: Option<u8>, packets: &[(u64, &[u8])]) -> Vec<u8> {
        let w32 = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let w16 = |v: u16| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut f = Vec::new();
        // SHB: type, len 28, BOM, version 1.0, section length -1.
        f.extend_from_slice(&w32(PCAPNG_SHB));
        f.extend_from_slice(&w32(28));
        f.extend_from_slice(&w32(PCAPNG_BYTE_ORDER));
        f.extend_from_slice(&w16(1));
        f.extend_from_slice(&w16(0));
        f.extend_from_slice(&[0xff; 8]);
        f.extend_from_slice(&w32(28));
        // IDB with optional if_tsresol.
        let opts: Vec<u8> = match tsresol {
            Some(r) => {
                let mut o = Vec::new();
                o.extend_from_slice(&w16(9));
                o.extend_from_slice(&w16(1));
                o.extend_from_slice(&[r, 0, 0, 0]);
                o.extend_from_slice(&[0, 0, 0, 0]); // opt_endofopt
                o
            }
            None => Vec::new(),
        };
        let idb_len = u32::try_from(20 + opts.len()).unwrap();
        f.extend_from_slice(&w32(PCAPNG_IDB));
        f.extend_from_slice(&w32(idb_len));
        f.extend_from_slice(&w16(1));
        f.extend_from_slice(&w16(0));
        f.extend_from_slice(&w32(0));
        f.extend_from_slice(&opts);
        f.extend_from_slice(&w32(idb_len));
        for (ts, data) in packets {
            let pad = (4 - data.len() % 4) % 4;
            let len = u32::try_from(32 + data.len() + pad).unwrap();
            f.extend_from_slice(&w32(PCAPNG_EPB));
            f.extend_from_slice(&w32(len));
            f.extend_from_slice(&w32(0));
            f.extend_from_slice(&w32(u32::try_from(ts >> 32).unwrap()));
            f.extend_from_slice(&w32(u32::try_from(ts & 0xffff_ffff).unwrap()));
            f.extend_from_slice(&w32(u32::try_from(data.len()).unwrap()));
            f.extend_from_slice(&w32(u32::try_from(data.len()).unwrap()));
            f.extend_from_slice(data);
            f.extend(std::iter::repeat_n(0u8, pad));
            f.extend_from_slice(&w32(len));
        }
        f
    }

    #[test]
    fn pcapng_both_byte_orders_and_resolutions() {
        for big in [false, true] {
            let file = pcapng(big, None, &[(5_000_001, &[1, 2, 3]), (6_000_000, &[4; 61])]);
            let mut r = PcapReader::new(&file[..]).unwrap();
            let a = r.next_packet().unwrap().unwrap();
            assert_eq!(
                (a.timestamp_us, a.data.as_slice(), a.link_type),
                (5_000_001, &[1u8, 2, 3][..], 1)
            );
            let b = r.next_packet().unwrap().unwrap();
            assert_eq!(b.data.len(), 61);
            assert!(r.next_packet().unwrap().is_none());
        }
        // Nanosecond resolution (if_tsresol = 9).
        let file = pcapng(false, Some(9), &[(1_500_000_000, &[0; 4])]);
        let p = PcapReader::new(&file[..])
            .unwrap()
            .next_packet()
            .unwrap()
            .unwrap();
        assert_eq!(p.timestamp_us, 1_500_000);
    }

    #[test]
    fn pcap_round_trip_and_errors() {
        let mut file = Vec::new();
        let mut w = PcapWriter::new(&mut file).unwrap();
        w.write_packet(1_000_002, &[9; 14]).unwrap();
        w.write_packet(2_000_000, &[]).unwrap();
        w.into_inner().unwrap();
        let mut r = PcapReader::new(&file[..]).unwrap();
        assert_eq!(r.next_packet().unwrap().unwrap().timestamp_us, 1_000_002);
        assert!(r.next_packet().unwrap().unwrap().data.is_empty());
        assert!(r.next_packet().unwrap().is_none());
        // Truncated record.
        let cut = &file[..file.len() - 16 - 3];
        let mut r = PcapReader::new(cut).unwrap();
        assert!(matches!(r.next_packet(), Err(PcapError::Malformed(_))));
        // Unknown magic.
        assert!(matches!(
            PcapReader::new(&[1u8, 2, 3, 4, 0, 0][..]),
            Err(PcapError::UnknownFormat(_))
        ));
        assert!(matches!(
            PcapReader::new(&[][..]),
            Err(PcapError::Malformed(_))
        ));
    }
}
