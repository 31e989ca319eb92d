//! EAL start-up, once per process, and DPDK's error strings.

use std::ffi::{c_char, c_int, CStr, CString};
use std::fmt;
use std::sync::OnceLock;

use dpdk_sys as sys;

/// A DPDK call failed: what was being done, and DPDK's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpdkError {
    /// What was being done (`rte_eal_init`, `port net_pcap0: rx queue 0`).
    pub context: String,
    /// The `rte_errno` / negative return value, positive (0 when DPDK gave
    /// none).
    pub code: i32,
    /// DPDK's text for `code` (`rte_strerror`), or our own explanation.
    pub reason: String,
}

impl fmt::Display for DpdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.code == 0 {
            write!(f, "{}: {}", self.context, self.reason)
        } else {
            write!(f, "{}: {} (errno {})", self.context, self.reason, self.code)
        }
    }
}

impl std::error::Error for DpdkError {}

impl DpdkError {
    /// An error with DPDK's text for `code` (either sign).
    pub(crate) fn rte(context: impl Into<String>, code: i32) -> DpdkError {
        let code = code.saturating_abs();
        // SAFETY: rte_strerror accepts any value and returns a pointer to a
        // NUL-terminated string, static or in a per-thread buffer, valid
        // until the next call on this thread; it is copied at once.
        let reason = unsafe {
            let p = sys::rte_strerror(code);
            if p.is_null() {
                String::from("unknown error")
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        };
        DpdkError {
            context: context.into(),
            code,
            reason,
        }
    }

    /// The error `rte_errno` holds now, for a call that just failed.
    pub(crate) fn last(context: impl Into<String>) -> DpdkError {
        // SAFETY: reads this thread's rte_errno; no preconditions.
        let code = unsafe { sys::vxd_errno() };
        DpdkError::rte(context, code)
    }

    /// An error of ours, with no DPDK code.
    pub(crate) fn msg(context: impl Into<String>, reason: impl Into<String>) -> DpdkError {
        DpdkError {
            context: context.into(),
            code: 0,
            reason: reason.into(),
        }
    }
}

/// The started Environment Abstraction Layer. There is one per process;
/// holding a `&'static Eal` is the proof that DPDK calls may be made.
#[derive(Debug)]
pub struct Eal {
    args: Vec<String>,
}

static EAL: OnceLock<Result<Eal, DpdkError>> = OnceLock::new();

impl Eal {
    /// Starts EAL with `args` (as on a DPDK program's command line, without
    /// the program name: `["--no-huge", "--no-pci", "--in-memory",
    /// "--vdev=net_null0"]`). DPDK can start only once per process: a
    /// later call returns the first call's result and ignores its own
    /// arguments (compare [`Eal::args`]).
    pub fn init<S: AsRef<str>>(args: &[S]) -> Result<&'static Eal, DpdkError> {
        let args: Vec<String> = args.iter().map(|a| a.as_ref().to_string()).collect();
        let result = EAL.get_or_init(|| start(args));
        result.as_ref().map_err(Clone::clone)
    }

    /// The EAL, if [`Eal::init`] succeeded.
    pub fn get() -> Option<&'static Eal> {
        EAL.get().and_then(|r| r.as_ref().ok())
    }

    /// The arguments EAL was started with.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// Timestamp counter cycles per second (`rte_get_tsc_hz`).
    pub fn tsc_hz(&self) -> u64 {
        // SAFETY: EAL is started (self exists); a plain read.
        unsafe { sys::vxd_tsc_hz() }
    }

    /// The timestamp counter now (`rte_rdtsc`).
    #[inline]
    pub fn rdtsc(&self) -> u64 {
        // SAFETY: reads the CPU's timestamp counter; no preconditions.
        unsafe { sys::vxd_rdtsc() }
    }

    /// Registers the calling thread with EAL (an lcore id, a mempool
    /// cache); every packet-path thread that is not an EAL lcore calls it
    /// first. Call [`Eal::unregister_thread`] before the thread ends.
    pub fn register_thread(&self) -> Result<u32, DpdkError> {
        // SAFETY: EAL is started; registering the calling thread has no
        // other precondition.
        let r = unsafe { sys::rte_thread_register() };
        if r != 0 {
            return Err(DpdkError::last("rte_thread_register"));
        }
        Ok(self.lcore_id())
    }

    /// Releases the calling thread's lcore id.
    pub fn unregister_thread(&self) {
        // SAFETY: EAL is started; a no-op for an unregistered thread.
        unsafe { sys::rte_thread_unregister() }
    }

    /// The calling thread's lcore id (`u32::MAX`, DPDK's `LCORE_ID_ANY`,
    /// for an unregistered thread).
    pub fn lcore_id(&self) -> u32 {
        // SAFETY: reads a thread-local; no preconditions.
        unsafe { sys::vxd_lcore_id() }
    }
}

fn start(args: Vec<String>) -> Result<Eal, DpdkError> {
    let mut owned = Vec::with_capacity(args.len() + 1);
    owned.push(CString::new("vxlan").unwrap_or_default());
    for a in &args {
        owned.push(CString::new(a.as_str()).map_err(|_| {
            DpdkError::msg(
                "rte_eal_init",
                format!("argument {a:?} contains a NUL byte"),
            )
        })?);
    }
    // EAL keeps pointers into argv (and may permute it): the strings and
    // the array live for the rest of the process.
    let owned: &'static [CString] = Box::leak(owned.into_boxed_slice());
    let argv: &'static mut [*mut c_char] = Box::leak(
        owned
            .iter()
            .map(|c| c.as_ptr().cast_mut())
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    );
    let argc = c_int::try_from(argv.len())
        .map_err(|_| DpdkError::msg("rte_eal_init", "too many arguments"))?;
    // SAFETY: argv holds argc valid NUL-terminated strings that live for the
    // process; rte_eal_init is called once (OnceLock in Eal::init).
    let r = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
    if r < 0 {
        let mut e = DpdkError::last("rte_eal_init");
        e.reason.push_str(&format!(
            " (arguments {args:?}; for a machine without hugepages or NICs use \
             --no-huge --no-pci --in-memory and --vdev devices)"
        ));
        return Err(e);
    }
    Ok(Eal { args })
}

impl Eal {
    /// The EAL worker lcores (every lcore of `-l`/`-c` but the main one),
    /// in order. Each is a thread EAL created and pinned to its CPU.
    pub fn worker_lcores(&self) -> Vec<u32> {
        let max = sys::RTE_MAX_LCORE;
        let mut out = Vec::new();
        // SAFETY: EAL is started; rte_get_next_lcore only reads its lcore
        // table. u32::MAX (-1) starts the walk; it ends at RTE_MAX_LCORE.
        let mut i = unsafe { sys::rte_get_next_lcore(u32::MAX, 1, 0) };
        while i < max {
            out.push(i);
            // SAFETY: as above.
            i = unsafe { sys::rte_get_next_lcore(i, 1, 0) };
        }
        out
    }

    /// Runs each job on its own EAL worker lcore (`jobs[k]` on
    /// `lcores[k]`) and returns at once; [`Launched::join`] (or dropping
    /// the handle) waits for them all. When a launch fails, the jobs
    /// launched before it are running: the caller tells them to stop, then
    /// joins.
    pub(crate) fn launch<'a, T: Send + 'a>(
        &self,
        lcores: &[u32],
        jobs: Vec<Box<dyn FnOnce() -> T + Send + 'a>>,
    ) -> (Launched<'a, T>, Result<(), DpdkError>) {
        let mut launched = Launched {
            running: Vec::with_capacity(jobs.len()),
        };
        for (job, &lcore) in jobs.into_iter().zip(lcores) {
            let slot: *mut Slot<'a, T> = Box::into_raw(Box::new(Slot {
                job: Some(job),
                out: None,
            }));
            // SAFETY: `slot` is a live heap allocation that is freed only
            // after rte_eal_wait_lcore(lcore) returned (join or Drop) or
            // right below if the launch failed, so the lcore never sees it
            // freed; nothing else touches it meanwhile. The trampoline
            // matches lcore_function_t and catches panics.
            let r =
                unsafe { sys::rte_eal_remote_launch(Some(trampoline::<T>), slot.cast(), lcore) };
            if r != 0 {
                // SAFETY: the launch failed, so no lcore holds `slot`; it
                // came from Box::into_raw above. (Jobs launched before are
                // waited for by Drop.)
                drop(unsafe { Box::from_raw(slot) });
                let e = DpdkError::rte(format!("launching on lcore {lcore}"), r);
                return (launched, Err(e));
            }
            launched.running.push((lcore, slot));
        }
        (launched, Ok(()))
    }
}

struct Slot<'a, T> {
    job: Option<Box<dyn FnOnce() -> T + Send + 'a>>,
    out: Option<std::thread::Result<T>>,
}

unsafe extern "C" fn trampoline<T>(arg: *mut std::ffi::c_void) -> c_int {
    // SAFETY: arg is the Slot launch() passed, alive and untouched by
    // anyone else until this lcore is waited for.
    let slot = unsafe { &mut *arg.cast::<Slot<'_, T>>() };
    if let Some(job) = slot.job.take() {
        // Unwinding into C is undefined: catch it and report it in join.
        slot.out = Some(std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)));
    }
    0
}

/// Jobs running on EAL lcores; waits for them when joined or dropped.
pub(crate) struct Launched<'a, T> {
    /// Invariant: each slot came from Box::into_raw and its lcore was
    /// launched with it; it is freed only after waiting for that lcore.
    running: Vec<(u32, *mut Slot<'a, T>)>,
}

/// Waits for `lcore`, then takes its slot back.
///
/// # Safety
/// `slot` was launched on `lcore` by [`Eal::launch`] and is not used again.
unsafe fn reap<'a, T>(lcore: u32, slot: *mut Slot<'a, T>) -> Box<Slot<'a, T>> {
    // SAFETY: EAL is started and `lcore` runs our job; waiting has no other
    // precondition. Once it returns the lcore no longer touches `slot`.
    unsafe { sys::rte_eal_wait_lcore(lcore) };
    // SAFETY: from Box::into_raw in launch, reclaimed once (contract).
    unsafe { Box::from_raw(slot) }
}

impl<T> Launched<'_, T> {
    /// Waits for every job and returns their results in launch order
    /// (`Err` for a job that panicked).
    pub(crate) fn join(mut self) -> Vec<std::thread::Result<T>> {
        let running = std::mem::take(&mut self.running);
        running
            .into_iter()
            .map(|(lcore, slot)| {
                // SAFETY: taken out of `running` (type invariant), so
                // reaped exactly once.
                let mut slot = unsafe { reap(lcore, slot) };
                slot.out
                    .take()
                    .unwrap_or_else(|| Err(Box::new("the lcore job did not run")))
            })
            .collect()
    }
}

impl<T> Drop for Launched<'_, T> {
    fn drop(&mut self) {
        for (lcore, slot) in self.running.drain(..) {
            // SAFETY: as in join.
            drop(unsafe { reap(lcore, slot) });
        }
    }
}
