//! A port over capture files: it receives the frames of a pcap or pcapng
//! file and writes what it transmits to a pcap file.
//!
//! Meant for replaying captures through a VTEP and recording what comes
//! out, in tests and demos. Each received frame lands in a pool buffer
//! with its capture time ([`PktBuf::timestamp_us`](crate::pool::PktBuf::timestamp_us)); a transmitted frame
//! is written with its own timestamp when it has one (so a replay keeps
//! the capture's times) or the wall clock otherwise, then freed.
//! [`next_timestamp`](PcapPort::next_timestamp) lets a caller merge several
//! receive files in time order.
//!
//! This port reads and writes files, so unlike the in-memory and
//! hardware ports its burst calls make system calls (buffered: one per
//! several frames). It allocates only while its read-ahead buffer grows to
//! the largest record in the file.
//!
//! ```no_run
//! use vxlan_pmd::pcapport::PcapPort;
//! use vxlan_pmd::pool::Pool;
//! use vxlan_pmd::port::{Burst, Port};
//!
//! let pool = Pool::with_count(256).unwrap();
//! let mut port = PcapPort::open(
//!     "replay",
//!     Some("in.pcap".into()),
//!     Some("out.pcap".into()),
//!     pool,
//! )?;
//! let mut burst = Burst::new();
//! while !port.is_drained() {
//!     port.rx_burst(0, &mut burst, 32);
//!     port.tx_burst(0, &mut burst); // echo into out.pcap
//! }
//! port.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use vxlan_core::frame::Frame;

use crate::pcap::{PcapError, PcapReader, PcapWriter, LINKTYPE_ETHERNET};
use crate::pool::Pool;
use crate::port::{Burst, Port};
use crate::stats::{bytes, CounterSet, PortCounters, PortStats};

/// Why a [`PcapPort`] could not be opened or closed.
#[derive(Debug)]
pub enum PcapPortError {
    /// The receive file could not be opened or is not a capture.
    Rx {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: PcapError,
    },
    /// The transmit file could not be created or written.
    Tx {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
}

impl fmt::Display for PcapPortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PcapPortError::Rx { path, source } => write!(
                f,
                "cannot receive from {}: {source} (give a readable pcap or pcapng file)",
                path.display()
            ),
            PcapPortError::Tx { path, source } => write!(
                f,
                "cannot transmit to {}: {source} (check the folder exists and is writable)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for PcapPortError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PcapPortError::Rx { source, .. } => Some(source),
            PcapPortError::Tx { source, .. } => Some(source),
        }
    }
}

struct RxFile {
    path: PathBuf,
    reader: PcapReader<BufReader<File>>,
    /// The next record, read ahead so its timestamp is known before it is
    /// received. `None` once the file is drained. Its bytes are in
    /// `next_data`.
    next: Option<NextRecord>,
    /// The next record's bytes; reused, so it stops allocating once it has
    /// grown to the largest record.
    next_data: Vec<u8>,
    /// The error that ended reading early, if one did.
    error: Option<PcapError>,
}

#[derive(Debug, Clone, Copy)]
struct NextRecord {
    timestamp_us: u64,
    link_type: u16,
}

impl RxFile {
    /// Reads the next record into `next`; an error ends the file.
    fn advance(&mut self) {
        match self.reader.next_record() {
            Ok(Some(r)) => {
                self.next_data.clear();
                self.next_data.extend_from_slice(r.data);
                self.next = Some(NextRecord {
                    timestamp_us: r.timestamp_us,
                    link_type: r.link_type,
                });
            }
            Ok(None) => self.next = None,
            Err(e) => {
                self.next = None;
                self.error = Some(e);
            }
        }
    }
}

struct TxFile {
    path: PathBuf,
    writer: PcapWriter<BufWriter<File>>,
    /// The first write error; frames after it are still attempted.
    error: Option<io::Error>,
}

/// A [`Port`] that receives from a capture file and transmits into one.
/// One queue. See the [module docs](self).
pub struct PcapPort {
    name: String,
    port_id: u16,
    pool: Arc<Pool>,
    rx: Option<RxFile>,
    tx: Option<TxFile>,
    counters: Arc<PortCounters>,
}

impl fmt::Debug for PcapPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PcapPort")
            .field("name", &self.name)
            .field("rx", &self.rx.as_ref().map(|r| &r.path))
            .field("tx", &self.tx.as_ref().map(|t| &t.path))
            .field("stats", &self.stats())
            .finish()
    }
}

impl PcapPort {
    /// Opens `rx` for reading (if given) and creates or truncates `tx`
    /// for writing (if given). Received frames are copied into buffers
    /// from `pool`. Reads the first record ahead, so a file that is not a
    /// capture fails here.
    pub fn open(
        name: impl Into<String>,
        rx: Option<PathBuf>,
        tx: Option<PathBuf>,
        pool: Arc<Pool>,
    ) -> Result<PcapPort, PcapPortError> {
        let rx = match rx {
            Some(path) => Some(open_rx(path)?),
            None => None,
        };
        let tx = match tx {
            Some(path) => Some(open_tx(path)?),
            None => None,
        };
        Ok(PcapPort {
            name: name.into(),
            port_id: 0,
            pool,
            rx,
            tx,
            counters: Arc::default(),
        })
    }

    /// The id stamped on received frames as their
    /// [`ingress_port`](Frame::ingress_port) (default 0).
    pub fn set_port_id(&mut self, id: u16) {
        self.port_id = id;
    }

    /// The capture time (microseconds since the Unix epoch) of the next
    /// frame `rx_burst` will return, or `None` when the receive file is
    /// drained or absent. Merge several ports by always polling the one
    /// with the smallest.
    pub fn next_timestamp(&self) -> Option<u64> {
        self.rx.as_ref()?.next.as_ref().map(|p| p.timestamp_us)
    }

    /// True when there is nothing (more) to receive.
    pub fn is_drained(&self) -> bool {
        self.rx.as_ref().is_none_or(|r| r.next.is_none())
    }

    /// The error that stopped reading the receive file before its end, if
    /// one did (a truncated or corrupt record).
    pub fn rx_error(&self) -> Option<&PcapError> {
        self.rx.as_ref()?.error.as_ref()
    }

    /// The first error writing the transmit file, if any.
    pub fn tx_error(&self) -> Option<&io::Error> {
        self.tx.as_ref()?.error.as_ref()
    }

    /// The receive file's path.
    pub fn rx_path(&self) -> Option<&Path> {
        self.rx.as_ref().map(|r| r.path.as_path())
    }

    /// The transmit file's path.
    pub fn tx_path(&self) -> Option<&Path> {
        self.tx.as_ref().map(|t| t.path.as_path())
    }

    /// The live counters, to read from another thread.
    pub fn counters(&self) -> Arc<PortCounters> {
        Arc::clone(&self.counters)
    }

    /// Flushes the transmit file and reports the first write error of the
    /// port's life, if there was one. Dropping the port also flushes, but
    /// silently.
    pub fn close(self) -> Result<(), PcapPortError> {
        let Some(tx) = self.tx else { return Ok(()) };
        let path = tx.path;
        if let Some(source) = tx.error {
            return Err(PcapPortError::Tx { path, source });
        }
        match tx.writer.into_inner() {
            Ok(_) => Ok(()),
            Err(source) => Err(PcapPortError::Tx { path, source }),
        }
    }
}

fn open_rx(path: PathBuf) -> Result<RxFile, PcapPortError> {
    let reader = File::open(&path)
        .map_err(PcapError::from)
        .and_then(|f| PcapReader::new(BufReader::new(f)));
    let reader = match reader {
        Ok(r) => r,
        Err(source) => return Err(PcapPortError::Rx { path, source }),
    };
    let mut rx = RxFile {
        path,
        reader,
        next: None,
        next_data: Vec::new(),
        error: None,
    };
    rx.advance();
    match rx.error.take() {
        Some(source) => Err(PcapPortError::Rx {
            path: rx.path,
            source,
        }),
        None => Ok(rx),
    }
}

fn open_tx(path: PathBuf) -> Result<TxFile, PcapPortError> {
    let writer = File::create(&path).and_then(|f| PcapWriter::new(BufWriter::new(f)));
    match writer {
        Ok(writer) => Ok(TxFile {
            path,
            writer,
            error: None,
        }),
        Err(source) => Err(PcapPortError::Tx { path, source }),
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

impl Port for PcapPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn queues(&self) -> u16 {
        1
    }

    fn rx_burst(&mut self, queue: u16, out: &mut Burst, max: usize) -> usize {
        let Some(rx) = self.rx.as_mut().filter(|_| queue == 0) else {
            return 0;
        };
        let want = max.min(out.remaining());
        let (mut got, mut got_bytes) = (0, 0);
        while got < want {
            let Some(rec) = rx.next else { break };
            if rec.link_type != LINKTYPE_ETHERNET || rx.next_data.len() > self.pool.max_data_len() {
                self.counters.rx_dropped.incr();
                rx.advance();
                continue;
            }
            let Some(mut pkt) = self.pool.alloc() else {
                // Keep the record for the next call: a file can wait.
                self.counters.rx_nombuf.incr();
                break;
            };
            if pkt.append(&rx.next_data).is_err() {
                // Cannot happen: the length was checked against the pool.
                self.counters.rx_dropped.incr();
                rx.advance();
                continue;
            }
            pkt.set_timestamp_us(Some(rec.timestamp_us));
            pkt.set_ingress_port(self.port_id);
            got_bytes += pkt.len();
            if out.push(pkt).is_err() {
                // Cannot happen: `want` is within the burst's room. The
                // record stays for the next call.
                break;
            }
            got += 1;
            rx.advance();
        }
        if got > 0 {
            self.counters.rx_packets.add(bytes(got));
            self.counters.rx_bytes.add(bytes(got_bytes));
        }
        got
    }

    fn tx_burst(&mut self, queue: u16, pkts: &mut Burst) -> usize {
        let Some(tx) = self.tx.as_mut().filter(|_| queue == 0) else {
            self.counters.tx_dropped.add(bytes(pkts.len()));
            pkts.clear();
            return 0;
        };
        let (mut sent, mut sent_bytes, mut dropped) = (0, 0, 0);
        let mut now = None;
        for pkt in pkts.drain() {
            let ts = match pkt.timestamp_us() {
                Some(ts) => ts,
                None => *now.get_or_insert_with(now_us),
            };
            match tx.writer.write_packet(ts, pkt.data()) {
                Ok(()) => {
                    sent += 1;
                    sent_bytes += pkt.len();
                }
                Err(e) => {
                    dropped += 1;
                    tx.error.get_or_insert(e);
                }
            }
            // `pkt` drops here, back to its pool.
        }
        self.counters.tx_packets.add(bytes(sent));
        self.counters.tx_bytes.add(bytes(sent_bytes));
        if dropped > 0 {
            self.counters.tx_dropped.add(bytes(dropped));
        }
        sent
    }

    fn stats(&self) -> PortStats {
        self.counters.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pcap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh path in the temp folder, removed on drop.
    struct TempPath(PathBuf);

    impl TempPath {
        fn new(tag: &str) -> TempPath {
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let pid = std::process::id();
            TempPath(std::env::temp_dir().join(format!("vxlan-pmd-{pid}-{n}-{tag}.pcap")))
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn write_capture(path: &Path, frames: &[(u64, Vec<u8>)]) {
        let mut w = PcapWriter::new(BufWriter::new(File::create(path).unwrap())).unwrap();
        for (ts, data) in frames {
            w.write_packet(*ts, data).unwrap();
        }
        w.into_inner().unwrap();
    }

    fn frames(n: u8, t0: u64) -> Vec<(u64, Vec<u8>)> {
        (0..n)
            .map(|i| (t0 + u64::from(i) * 10, vec![i; 60 + usize::from(i)]))
            .collect()
    }

    #[test]
    fn round_trip_keeps_timestamps_and_bytes() {
        let (input, output) = (TempPath::new("in"), TempPath::new("out"));
        let want = frames(5, 1_700_000_000_000_000);
        write_capture(&input.0, &want);
        let pool = Pool::new(8, 256, 64).unwrap();
        let mut port = PcapPort::open(
            "p",
            Some(input.0.clone()),
            Some(output.0.clone()),
            pool.clone(),
        )
        .unwrap();
        port.set_port_id(4);
        assert_eq!(port.next_timestamp(), Some(want[0].0));
        let mut burst = Burst::new();
        assert_eq!(port.rx_burst(0, &mut burst, 3), 3);
        assert_eq!(port.next_timestamp(), Some(want[3].0));
        assert_eq!(port.rx_burst(1, &mut burst, 3), 0, "one queue");
        assert_eq!(port.rx_burst(0, &mut burst, 32), 2);
        assert!(port.is_drained());
        assert_eq!(port.next_timestamp(), None);
        assert_eq!(port.rx_burst(0, &mut burst, 32), 0);
        for (pkt, (ts, data)) in burst.iter().zip(&want) {
            assert_eq!(pkt.timestamp_us(), Some(*ts));
            assert_eq!(pkt.data(), &data[..]);
            assert_eq!(pkt.ingress_port(), 4);
        }
        // One frame without a timestamp gets the wall clock.
        let mut fresh = pool.alloc_with(&[0xee; 42]).unwrap();
        fresh.set_timestamp_us(None);
        burst.push(fresh).unwrap();
        assert_eq!(port.tx_burst(0, &mut burst), 6);
        assert_eq!(pool.available(), pool.capacity());
        let s = port.stats();
        assert_eq!((s.rx_packets, s.tx_packets, s.tx_dropped), (5, 6, 0));
        assert_eq!(
            s.rx_bytes,
            want.iter().map(|(_, d)| bytes(d.len())).sum::<u64>()
        );
        port.close().unwrap();

        let back = pcap::read_file(&output.0).unwrap();
        assert_eq!(back.len(), 6);
        for (got, (ts, data)) in back.iter().zip(&want) {
            assert_eq!((got.timestamp_us, &got.data), (*ts, data));
        }
        assert!(back[5].timestamp_us > 1_700_000_000_000_000);
        assert_eq!(back[5].data, [0xee; 42]);
    }

    #[test]
    fn pool_exhaustion_waits_and_oversize_is_dropped() {
        let input = TempPath::new("nombuf");
        let mut want = frames(4, 1000);
        want[1].1 = vec![9; 300]; // too long for a 256-byte buffer
        write_capture(&input.0, &want);
        let pool = Pool::new(2, 256, 64).unwrap();
        let mut port = PcapPort::open("p", Some(input.0.clone()), None, pool.clone()).unwrap();
        let mut burst = Burst::new();
        assert_eq!(port.rx_burst(0, &mut burst, 32), 2);
        assert_eq!(port.stats().rx_dropped, 1);
        assert_eq!(port.stats().rx_nombuf, 1);
        assert!(!port.is_drained());
        // No tx file: frames are dropped and counted.
        assert_eq!(port.tx_burst(0, &mut burst), 0);
        assert_eq!(port.stats().tx_dropped, 2);
        assert_eq!(port.rx_burst(0, &mut burst, 32), 1);
        assert_eq!(burst[0].data(), &want[3].1[..]);
        assert!(port.is_drained());
        assert!(port.rx_error().is_none());
        drop(burst);
        assert_eq!(pool.available(), pool.capacity());
    }

    #[test]
    fn merge_two_files_in_time_order() {
        let (a, b) = (TempPath::new("a"), TempPath::new("b"));
        write_capture(&a.0, &[(1, vec![1; 60]), (4, vec![4; 60])]);
        write_capture(
            &b.0,
            &[(2, vec![2; 60]), (3, vec![3; 60]), (5, vec![5; 60])],
        );
        let pool = Pool::new(4, 256, 64).unwrap();
        let mut ports = [
            PcapPort::open("a", Some(a.0.clone()), None, pool.clone()).unwrap(),
            PcapPort::open("b", Some(b.0.clone()), None, pool.clone()).unwrap(),
        ];
        let mut burst = Burst::with_capacity(1);
        let mut order = Vec::new();
        while let Some(p) = ports
            .iter_mut()
            .filter(|p| !p.is_drained())
            .min_by_key(|p| p.next_timestamp())
        {
            assert_eq!(p.rx_burst(0, &mut burst, 1), 1);
            order.extend(burst.drain().map(|f| f.data()[0]));
        }
        assert_eq!(order, [1, 2, 3, 4, 5]);
        assert_eq!(pool.available(), pool.capacity());
    }

    #[test]
    fn open_errors_say_which_file() {
        let pool = Pool::new(1, 256, 64).unwrap();
        let missing = std::env::temp_dir().join("vxlan-pmd-no-such-file.pcap");
        let e = PcapPort::open("p", Some(missing.clone()), None, pool.clone()).unwrap_err();
        assert!(matches!(e, PcapPortError::Rx { .. }));
        assert!(e.to_string().contains("no-such-file"), "{e}");
        let not_pcap = TempPath::new("garbage");
        std::fs::write(&not_pcap.0, b"hello, world").unwrap();
        let e = PcapPort::open("p", Some(not_pcap.0.clone()), None, pool.clone()).unwrap_err();
        assert!(e.to_string().contains("not a pcap"), "{e}");
        let bad_dir = std::env::temp_dir().join("vxlan-pmd-no-such-dir/out.pcap");
        let e = PcapPort::open("p", None, Some(bad_dir), pool).unwrap_err();
        assert!(matches!(e, PcapPortError::Tx { .. }));
        assert!(e.to_string().contains("writable"));
    }

    #[test]
    fn reads_the_tcpdump_vxlan_capture() {
        let Some(path) = crate::captures::path("tcpdump/vxlan.pcap") else {
            return;
        };
        let pool = Pool::with_count(16).unwrap();
        let mut port = PcapPort::open("tcpdump", Some(path.clone()), None, pool.clone()).unwrap();
        assert_eq!(port.rx_path(), Some(path.as_path()));
        let mut burst = Burst::new();
        let mut n = 0;
        let mut last_ts = 0;
        while !port.is_drained() {
            port.rx_burst(0, &mut burst, 4);
            for pkt in burst.drain() {
                let ts = pkt.timestamp_us().unwrap();
                assert!(ts >= last_ts);
                last_ts = ts;
                assert!(pkt.len() >= 14);
                n += 1;
            }
        }
        assert_eq!(n, 10);
        assert_eq!(port.stats().rx_packets, 10);
        assert!(port.rx_error().is_none());
        assert_eq!(pool.available(), pool.capacity());
    }
}
