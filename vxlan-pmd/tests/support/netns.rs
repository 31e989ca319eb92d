//! Network-namespace plumbing shared by the root-only tests of this
//! workspace (`vxlan-pmd/tests` and `examples/tests`; the latter include
//! this file with `#[path]`).
//!
//! Everything a test creates is owned by a [`Namespaces`] guard, which
//! kills the processes left inside its namespaces and deletes the
//! namespaces, links and directories it was given when it is dropped,
//! also when the test panics. Commands that must succeed panic with the
//! command line and its output, so a failing set-up says what failed.
#![allow(dead_code)]

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// Whether the test runs as root (namespaces, XDP, AF_PACKET need it).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Why a test that needs root and AF_XDP sockets cannot run here, if it
/// cannot.
pub fn af_xdp_skip_reason() -> Option<String> {
    if !is_root() {
        return Some("needs root (network namespaces, AF_XDP, XDP)".into());
    }
    // SAFETY: plain socket creation, closed at once if it worked.
    let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW, 0) };
    if fd < 0 {
        return Some(format!(
            "this kernel has no AF_XDP sockets: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: `fd` is the socket we just opened.
    unsafe { libc::close(fd) };
    None
}

/// Runs `args[0]` with the rest as its arguments; its stdout, or an error
/// naming the command with its stdout and stderr.
pub fn sh(args: &[&str]) -> Result<String, String> {
    let o = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    } else {
        Err(format!(
            "{}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ))
    }
}

/// [`sh`] for a command that must succeed.
pub fn run(args: &[&str]) -> String {
    sh(args).unwrap_or_else(|e| panic!("{e}"))
}

/// [`sh`] inside namespace `ns` (`ip netns exec`).
pub fn in_ns(ns: &str, args: &[&str]) -> Result<String, String> {
    let mut full = vec!["ip", "netns", "exec", ns];
    full.extend_from_slice(args);
    sh(&full).map_err(|e| format!("[{ns}] {e}"))
}

/// [`in_ns`] for a command that must succeed.
pub fn in_ns_ok(ns: &str, args: &[&str]) -> String {
    in_ns(ns, args).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `args` in namespace `ns`, or in the root namespace for `None`;
/// must succeed; its stdout.
pub fn ok(ns: Option<&str>, args: &[&str]) -> String {
    match ns {
        Some(n) => in_ns_ok(n, args),
        None => run(args),
    }
}

/// Runs `ip ARGS...`, which must succeed.
pub fn ip(args: &[&str]) -> String {
    let mut full = vec!["ip"];
    full.extend_from_slice(args);
    run(&full)
}

/// Shorthand: `ip -n NS ARGS...` with the arguments split at whitespace;
/// must succeed.
pub fn ipn(ns: &str, args: &str) -> String {
    let mut full = vec!["ip", "-n", ns];
    full.extend(args.split_whitespace());
    run(&full)
}

/// Namespaces (and whatever else a test creates outside them) that are
/// removed on drop, also on panic: every process still running in them is
/// killed, then the namespaces, the root-namespace links and the
/// directories registered with [`Namespaces::link`] and
/// [`Namespaces::dir`] are deleted.
pub struct Namespaces {
    names: Vec<String>,
    links: Vec<String>,
    dirs: Vec<PathBuf>,
}

impl Namespaces {
    /// Creates namespaces with these exact names (a leftover of the same
    /// name, from a killed run, is deleted first), each with `lo` up.
    pub fn new<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Namespaces {
        let me = Namespaces {
            names: names.into_iter().map(Into::into).collect(),
            links: Vec::new(),
            dirs: Vec::new(),
        };
        for n in &me.names {
            let _ = sh(&["ip", "netns", "del", n]);
            ip(&["netns", "add", n]);
            ipn(n, "link set lo up");
        }
        me
    }

    /// One namespace per role, named `{role}{tag}{pid}` so that parallel
    /// test processes and scenarios do not collide.
    pub fn for_roles(tag: &str, roles: &[&str]) -> Namespaces {
        let id = std::process::id();
        Namespaces::new(roles.iter().map(|r| format!("{r}{tag}{id}")))
    }

    /// The `i`-th namespace's name.
    pub fn get(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// Deletes `link` (in the root namespace) on drop; a leftover of that
    /// name is deleted now.
    pub fn link(&mut self, link: &str) -> &mut Self {
        let _ = sh(&["ip", "link", "del", link]);
        self.links.push(link.to_string());
        self
    }

    /// Creates an empty directory `dir` (removing a leftover) and removes
    /// it on drop.
    pub fn dir(&mut self, dir: PathBuf) -> PathBuf {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        self.dirs.push(dir.clone());
        dir
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in &self.names {
            if let Ok(out) = Command::new("ip").args(["netns", "pids", n]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    if let Ok(pid) = pid.parse::<i32>() {
                        // SAFETY: signalling a process of our own test's
                        // namespace; at worst it has exited already.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
            }
            let _ = Command::new("ip")
                .args(["netns", "del", n])
                .stderr(Stdio::null())
                .status();
        }
        for l in &self.links {
            let _ = Command::new("ip")
                .args(["link", "del", l])
                .stderr(Stdio::null())
                .status();
        }
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Runs the calling thread in a network namespace until dropped.
pub struct InNetns {
    orig: std::fs::File,
}

impl InNetns {
    /// Moves the calling thread into namespace `name` (setns affects only
    /// the calling thread).
    pub fn enter(name: &str) -> InNetns {
        let orig = std::fs::File::open("/proc/thread-self/ns/net").expect("own netns");
        let target = std::fs::File::open(format!("/run/netns/{name}"))
            .unwrap_or_else(|e| panic!("netns {name}: {e}"));
        // SAFETY: both descriptors are open namespace files; setns only
        // changes this thread's network namespace.
        let r = unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns {name}: {}", std::io::Error::last_os_error());
        InNetns { orig }
    }
}

impl Drop for InNetns {
    fn drop(&mut self) {
        // SAFETY: as in `enter`, back to the namespace we came from.
        unsafe { libc::setns(self.orig.as_raw_fd(), libc::CLONE_NEWNET) };
    }
}

/// Runs `f` on a new thread inside namespace `ns` and returns its result.
pub fn in_namespace<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        let _inside = InNetns::enter(&ns);
        f()
    })
    .join()
    .unwrap()
}

/// The topology both DPDK-against-the-kernel tests use: namespace `k` is
/// a kernel VTEP (`eth0` 192.0.2.1 with MAC 02:00:00:00:00:01; `vx0`, VNI
/// 100, 10.0.0.1/24, remote 192.0.2.2 port 4789), namespace `v` a tenant
/// VM (`eth0` 10.0.0.2/24, MTU 1450: the overlay's, as the kernel's vx0
/// has it). Our side gets the root-namespace ends: veth `uplink` (peer of
/// the kernel's `eth0`) and veth `access` (peer of the VM's `eth0`). The
/// kernel has a permanent neighbour entry for our underlay address
/// 192.0.2.2 (02:00:00:00:00:02): our VTEP has no host stack to answer
/// ARP for it. IPv6 is off, and tx checksum offload is off on both
/// `eth0`s: a veth hands checksums it was asked to offload to its peer
/// unfinished, and an AF_PACKET or AF_XDP socket sees them so, so the
/// kernel finishes them as a NIC would on the wire.
pub fn kernel_vtep_and_vm(k: &str, v: &str, uplink: &str, access: &str) -> Namespaces {
    let mut t = Namespaces::new([k, v]);
    t.link(uplink).link(access);
    ip(&[
        "link", "add", uplink, "type", "veth", "peer", "name", "eth0", "netns", k,
    ]);
    ip(&[
        "link", "add", access, "type", "veth", "peer", "name", "eth0", "netns", v,
    ]);
    for l in [uplink, access] {
        let _ = sh(&[
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.{l}.disable_ipv6=1"),
        ]);
        ip(&["link", "set", l, "up"]);
    }
    ipn(k, "link set eth0 address 02:00:00:00:00:01");
    ipn(k, "addr add 192.0.2.1/24 dev eth0");
    ipn(k, "link set eth0 up");
    ipn(
        k,
        "neigh add 192.0.2.2 lladdr 02:00:00:00:00:02 dev eth0 nud permanent",
    );
    ipn(
        k,
        "link add vx0 type vxlan id 100 local 192.0.2.1 remote 192.0.2.2 dstport 4789 dev eth0",
    );
    ipn(k, "addr add 10.0.0.1/24 dev vx0");
    ipn(k, "link set vx0 up");
    ipn(v, "addr add 10.0.0.2/24 dev eth0");
    ipn(v, "link set eth0 mtu 1450 up");
    for ns in [k, v] {
        let _ = in_ns(ns, &["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
        in_ns_ok(ns, &["ethtool", "-K", "eth0", "tx", "off"]);
    }
    t
}

/// The `vtep` configuration (TOML) of our side of
/// [`kernel_vtep_and_vm`]: underlay 192.0.2.2 behind the kernel VTEP's
/// MAC, DPDK `net_af_packet` ports on the veths `uplink` and `access`
/// with `workers` queue pairs each, the access port in VNI 100, whose
/// flood list is the kernel VTEP.
pub fn dpdk_vtep_config(uplink: &str, access: &str, workers: u16) -> String {
    format!(
        r#"
        [vtep]
        local_ip = "192.0.2.2"
        mac = "02:00:00:00:00:02"
        workers = {workers}
        [underlay]
        port = "uplink"
        gateway_mac = "02:00:00:00:00:01"
        [dpdk]
        eal_args = ["--no-huge", "--no-pci", "--no-shconf", "--log-level=error",
            "--vdev=net_af_packet0,iface={uplink},qpairs={workers}",
            "--vdev=net_af_packet1,iface={access},qpairs={workers}"]
        mbufs = 4095
        [[port]]
        name = "uplink"
        kind = "dpdk"
        device = "net_af_packet0"
        [[port]]
        name = "vm"
        kind = "dpdk"
        device = "net_af_packet1"
        access = {{ vni = 100 }}
        [[vni]]
        id = 100
        flood = ["192.0.2.1"]
        "#
    )
}

/// `count` pings from namespace `ns` to `dst`, `interval` seconds apart,
/// each waited for at most `wait` seconds: how many were answered (0 when
/// ping fails outright) and ping's output, for the failure message.
pub fn ping_report(ns: &str, dst: &str, count: u32, interval: &str, wait: &str) -> (u32, String) {
    let c = count.to_string();
    let out = in_ns(
        ns,
        &["ping", "-q", "-c", &c, "-i", interval, "-W", wait, dst],
    )
    .unwrap_or_else(|e| e);
    (received(&out).unwrap_or(0), out)
}

/// [`ping_report`]'s count alone, pings 10 ms apart waited for 5 s.
pub fn ping(ns: &str, dst: &str, count: u32) -> u32 {
    ping_report(ns, dst, count, "0.01", "5").0
}

/// Pings until one is answered (ARP and learning settle), at most 10 s.
pub fn wait_reachable(ns: &str, dst: &str) {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while ping_report(ns, dst, 1, "0.2", "1").0 != 1 {
        assert!(
            std::time::Instant::now() < end,
            "{dst} never answered from {ns}"
        );
    }
}

/// The "N received" figure of ping's summary.
pub fn received(out: &str) -> Option<u32> {
    let i = out.find(" received")?;
    out[..i]
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// A daemon under test, killed (and reaped) when dropped, also when the
/// test panics.
pub struct Daemon(pub Option<Child>);

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut d) = self.0.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
    }
}
