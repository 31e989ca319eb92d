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
