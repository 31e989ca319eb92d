//! Per-core run-to-completion workers.
//!
//! [`Workers::spawn`] starts one thread per worker, optionally pinned to
//! its own core, each calling a poll closure in a loop until
//! [`Workers::stop_and_join`] (or dropping [`Workers`]) sets the shared
//! stop flag. The closure owns everything its core touches (ports, queues,
//! a [`Burst`](crate::port::Burst)) and reports whether it found work, so
//! an idle worker can back off.
//!
//! ```
//! use std::sync::Arc;
//! use vxlan_pmd::stats::{Counter, PerCore};
//! use vxlan_pmd::worker::{Poll, Workers};
//!
//! let polls = Arc::new(PerCore::<Counter>::new(2));
//! let counters = Arc::clone(&polls);
//! let workers = Workers::spawn(2, false, move |index| {
//!     let counters = Arc::clone(&counters);
//!     move |ctx: &vxlan_pmd::worker::WorkerCtx| {
//!         assert_eq!(ctx.index(), index);
//!         if let Some(mine) = counters.get(ctx.index()) {
//!             mine.incr(); // only this worker writes its slot
//!         }
//!         Poll::Idle
//!     }
//! })
//! .unwrap();
//! while polls.sum() < 10 {
//!     std::thread::yield_now();
//! }
//! workers.stop_and_join().unwrap();
//! ```

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

/// What one call of a worker's poll closure found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    /// Nothing to do: the loop may back off.
    Idle,
    /// Did some work: poll again at once.
    Busy,
}

/// Consecutive idle polls after which a worker yields its core to the OS
/// scheduler once. Keeps an idle poll-mode worker from starving other
/// threads on a shared machine while costing a busy one nothing.
const IDLE_POLLS_BEFORE_YIELD: u32 = 64;

/// What a worker's poll closure knows about the worker running it.
#[derive(Debug)]
pub struct WorkerCtx {
    index: usize,
    core: Option<usize>,
    stop: Arc<AtomicBool>,
}

impl WorkerCtx {
    /// The worker's index, `0..n`: use it to pick its queue and its
    /// [`PerCore`](crate::stats::PerCore) slot.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The core the worker is pinned to, if it is pinned.
    pub fn core(&self) -> Option<usize> {
        self.core
    }

    /// True once a stop has been asked for (the loop ends after the
    /// current poll returns).
    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}

/// Why workers could not be started or did not end cleanly.
#[derive(Debug)]
pub enum WorkerError {
    /// The OS refused to start a thread (the workers started before it
    /// were stopped and joined).
    Spawn {
        /// The worker that could not start.
        index: usize,
        /// The OS error.
        source: io::Error,
    },
    /// A worker's poll closure panicked.
    Panicked {
        /// The first worker found to have panicked.
        index: usize,
    },
}

impl fmt::Display for WorkerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkerError::Spawn { index, source } => write!(
                f,
                "could not start worker thread {index}: {source} (start fewer workers)"
            ),
            WorkerError::Panicked { index } => write!(
                f,
                "worker {index} panicked in its poll loop (see its panic message above)"
            ),
        }
    }
}

impl std::error::Error for WorkerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WorkerError::Spawn { source, .. } => Some(source),
            WorkerError::Panicked { .. } => None,
        }
    }
}

/// A set of running workers. Dropping it stops and joins them.
#[derive(Debug)]
pub struct Workers {
    /// Set once to ask every worker to return. Stored with `Release` and
    /// loaded with `Acquire` so that whatever the stopping thread wrote
    /// before asking (a final config, a flag) is visible to the workers
    /// when they see the stop.
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<()>>,
    cores: Vec<Option<usize>>,
}

impl Workers {
    /// Starts `n` workers. `make_loop(i)` runs on the calling thread and
    /// builds worker `i`'s poll closure, which then moves to the worker's
    /// thread and is called until a stop is asked for.
    ///
    /// With `pin`, worker `i` is pinned to the `i`-th core the process
    /// may run on; workers beyond the number of cores, or on platforms
    /// where pinning fails, run unpinned ([`WorkerCtx::core`] and
    /// [`Workers::cores`] say which are pinned).
    pub fn spawn<M, L>(n: usize, pin: bool, mut make_loop: M) -> Result<Workers, WorkerError>
    where
        M: FnMut(usize) -> L,
        L: FnMut(&WorkerCtx) -> Poll + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let core_ids = if pin {
            core_affinity::get_core_ids().unwrap_or_default()
        } else {
            Vec::new()
        };
        let mut workers = Workers {
            stop: Arc::clone(&stop),
            handles: Vec::with_capacity(n),
            cores: Vec::with_capacity(n),
        };
        // Pinning happens on the worker thread itself; it reports back
        // whether it worked so `cores()` is exact once spawn returns.
        let (pinned_tx, pinned_rx) = std::sync::mpsc::channel::<(usize, Option<usize>)>();
        for index in 0..n {
            let core_id = core_ids.get(index).copied();
            let mut poll = make_loop(index);
            let stop = Arc::clone(&stop);
            let pinned_tx = pinned_tx.clone();
            let spawned = thread::Builder::new()
                .name(format!("vxlan-worker-{index}"))
                .spawn(move || {
                    let core = core_id
                        .filter(|&c| core_affinity::set_for_current(c))
                        .map(|c| c.id);
                    let _ = pinned_tx.send((index, core));
                    drop(pinned_tx);
                    let ctx = WorkerCtx { index, core, stop };
                    run(&ctx, &mut poll);
                });
            match spawned {
                Ok(h) => {
                    workers.handles.push(h);
                    workers.cores.push(None);
                }
                Err(source) => {
                    // `workers` drops here: the ones already running stop.
                    return Err(WorkerError::Spawn { index, source });
                }
            }
        }
        drop(pinned_tx);
        // Every thread sends once, first thing; a thread that panics
        // before (it cannot) would close its sender, ending the loop.
        for (index, core) in pinned_rx.iter() {
            if let Some(slot) = workers.cores.get_mut(index) {
                *slot = core;
            }
        }
        Ok(workers)
    }

    /// How many workers there are.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// The core each worker is pinned to, in worker order (`None`:
    /// unpinned).
    pub fn cores(&self) -> &[Option<usize>] {
        &self.cores
    }

    /// How many workers have returned without being asked to stop (only a
    /// panic ends a poll loop early): a supervisor polls this to notice a
    /// dead worker while the others run.
    pub fn ended_early(&self) -> usize {
        if self.stop.load(Ordering::Acquire) {
            return 0;
        }
        self.handles.iter().filter(|h| h.is_finished()).count()
    }

    /// Asks every worker to stop after its current poll, without waiting.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Stops every worker and waits for them to return. Reports the first
    /// worker that panicked, after joining all of them.
    pub fn stop_and_join(mut self) -> Result<(), WorkerError> {
        self.join_all()
    }

    fn join_all(&mut self) -> Result<(), WorkerError> {
        self.request_stop();
        let mut result = Ok(());
        for (index, h) in self.handles.drain(..).enumerate() {
            if h.join().is_err() && result.is_ok() {
                result = Err(WorkerError::Panicked { index });
            }
        }
        result
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        let _ = self.join_all();
    }
}

/// The poll loop of one worker.
fn run<L: FnMut(&WorkerCtx) -> Poll>(ctx: &WorkerCtx, poll: &mut L) {
    let mut idle = 0u32;
    while !ctx.stop_requested() {
        match poll(ctx) {
            Poll::Busy => idle = 0,
            Poll::Idle => {
                idle += 1;
                if idle >= IDLE_POLLS_BEFORE_YIELD {
                    idle = 0;
                    thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memport;
    use crate::pool::Pool;
    use crate::port::{Burst, Port};
    use crate::stats::{Counter, PerCore, PortCounters};
    use vxlan_core::frame::Frame;

    #[test]
    fn start_stop_and_counters_summed() {
        let per_core = Arc::new(PerCore::<Counter>::new(3));
        let pc = Arc::clone(&per_core);
        let workers = Workers::spawn(3, false, move |_| {
            let pc = Arc::clone(&pc);
            move |ctx: &WorkerCtx| {
                if let Some(c) = pc.get(ctx.index()) {
                    c.incr();
                }
                Poll::Busy
            }
        })
        .unwrap();
        assert_eq!(workers.len(), 3);
        assert_eq!(workers.cores(), &[None, None, None]);
        while per_core.iter().any(|n| n < 100) {
            thread::yield_now();
        }
        workers.stop_and_join().unwrap();
        let after = per_core.sum();
        thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(per_core.sum(), after, "nothing runs after join");
        assert_eq!(per_core.iter().sum::<u64>(), after);
    }

    #[test]
    fn pinned_workers_report_their_cores() {
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        // One more worker than cores: the extra one runs unpinned.
        let n = cores.len() + 1;
        let workers = Workers::spawn(n, true, |_| {
            |ctx: &WorkerCtx| {
                let _ = ctx.core();
                Poll::Idle
            }
        })
        .unwrap();
        let pinned = workers.cores().iter().filter(|c| c.is_some()).count();
        assert!(pinned <= cores.len());
        assert_eq!(workers.cores().last(), Some(&None));
        // Pinned workers sit on distinct cores the process may use. (A
        // sandbox may refuse pinning; the workers then run unpinned.)
        for (i, core) in workers.cores().iter().enumerate() {
            if let Some(c) = core {
                assert_eq!(*c, cores[i].id);
            }
        }
        if pinned == 0 {
            eprintln!("note: this machine refused core pinning; workers ran unpinned");
        }
        workers.stop_and_join().unwrap();
    }

    #[test]
    fn panicking_worker_is_reported_and_others_joined() {
        let workers = Workers::spawn(2, false, |i| {
            move |ctx: &WorkerCtx| {
                assert!(i != 1 || ctx.stop_requested(), "worker 1 fails on purpose");
                Poll::Idle
            }
        })
        .unwrap();
        // A supervisor sees the dead worker while the other still runs.
        let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while workers.ended_early() == 0 {
            assert!(std::time::Instant::now() < end, "panic never noticed");
            std::thread::yield_now();
        }
        assert_eq!(workers.ended_early(), 1);
        let e = workers.stop_and_join().unwrap_err();
        assert!(matches!(e, WorkerError::Panicked { index: 1 }), "{e}");
    }

    #[test]
    fn workers_forward_between_memports() {
        // Two workers, each owning one queue of a two-queue port, send back
        // what the host sends them (a loopback "VTEP"); the host is the
        // test thread.
        let pool = Pool::new(256, 256, 64).unwrap();
        let stats = Arc::new(PerCore::<PortCounters>::new(2));
        let (host, vtep) = memport::pair_with_queues(pool.clone(), "host", "vtep", 2, 64);
        let mut hosts = host.split_queues();
        let mut vteps: Vec<_> = vtep.split_queues().into_iter().map(Some).collect();
        let st = Arc::clone(&stats);
        let workers = Workers::spawn(2, false, move |i| {
            let mut port = vteps[i].take().unwrap();
            let st = Arc::clone(&st);
            let mut burst = Burst::new();
            move |ctx: &WorkerCtx| {
                let n = port.rx_burst(0, &mut burst, 32);
                if n == 0 {
                    return Poll::Idle;
                }
                if let Some(mine) = st.get(ctx.index()) {
                    mine.rx_packets.add(u64::try_from(n).unwrap_or(0));
                }
                port.tx_burst(0, &mut burst);
                Poll::Busy
            }
        })
        .unwrap();
        for (q, h) in hosts.iter_mut().enumerate() {
            for _ in 0..50 {
                h.send(&[u8::try_from(q).unwrap(); 64]).unwrap();
            }
        }
        let mut back = [0usize; 2];
        while back.iter().sum::<usize>() < 100 {
            for (q, h) in hosts.iter_mut().enumerate() {
                while let Some(p) = h.recv() {
                    assert_eq!(usize::from(p.data()[0]), q);
                    back[q] += 1;
                }
            }
            thread::yield_now();
        }
        workers.stop_and_join().unwrap();
        assert_eq!(back, [50, 50]);
        assert_eq!(stats.sum().rx_packets, 100);
        drop(hosts);
        assert_eq!(pool.available(), pool.capacity());
    }
}
