//! `vxlan-demo-netns`: the VM-mobility demo for real, as root: network
//! namespaces, this project's `vtep` daemons on AF_XDP, and the kernel's
//! own TCP in the VMs.
//!
//! ```text
//! sudo vxlan-demo-netns [--mib N] [--migrate-at-mib N] [--pause-ms N]
//!                       [--no-announce] [--ageing-secs N] [--json]
//! ```
//!
//! The fabric (every box a network namespace, created by this program and
//! always deleted again, also on Ctrl-C or a panic):
//!
//! ```text
//!                             router (IP forwarding)
//!               172.16.1.1/24   172.16.2.1/24   172.16.3.1/24
//!                     │               │               │
//!   host 1 vtep 172.16.1.2   host 2 vtep 172.16.2.2   host 3 vtep 172.16.3.2
//!        acc0 (AF_XDP)            acc0 (AF_XDP)            acc0 (AF_XDP)
//!          │                        │                        │
//!        eth0                     eth0 ── server VM ──────── eth1 (down until the move)
//!   client VM 10.100.0.1          10.100.0.2, one MAC on both NICs
//! ```
//!
//! Each host's `vtep` runs AF_XDP on its underlay veth (`up0`; its XDP
//! program passes ARP and everything that is not our VXLAN to the host's
//! kernel) and on its access veth (`acc0`) to a VM. VNI 100 floods to the
//! other two hosts, each in another underlay subnet; no `gateway_mac` is
//! configured, so each daemon resolves its next hop (the router) from its
//! host's routing and neighbour tables. The VMs are namespaces running the
//! kernel's TCP: the client's and the server's sockets are opened by
//! threads of this process that entered those namespaces (`setns`), so the
//! "guest processes" keep running through the move, and so does their TCP
//! state. The client streams a deterministic byte pattern; the server
//! checks every byte and logs its progress, from which the interruption
//! is measured.
//!
//! The migration: the server VM's NIC is unplugged from host 2 (its
//! address goes, `eth0` goes down), the VM stays paused for `--pause-ms`
//! (the stop-and-copy phase; 0 by default), then its NIC is plugged into
//! host 3 (`eth1`, with the same MAC, gets the address and comes up), and
//! host 3's "hypervisor" sends RARPs from the VM's MAC, as QEMU does after
//! a migration. `--no-announce` sends none.
//!
//! The `vtep` and `vtepctl` binaries are taken from this program's own
//! directory; under `cargo run` they are built first when missing. Veth tx
//! checksum offload is off on every veth: the kernel would leave checksums
//! to the "hardware", and AF_XDP passes the bytes on as they are.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const USAGE: &str = "usage: sudo vxlan-demo-netns [--mib N] [--migrate-at-mib N] [--pause-ms N]
                         [--no-announce] [--ageing-secs N] [--json]

Three hosts in three underlay subnets behind a router, each running this
project's vtep daemon on AF_XDP; one VXLAN segment (VNI 100). A client VM on
host 1 streams over the kernel's TCP to a server VM on host 2, which
live-migrates to host 3 mid-stream. Needs root (network namespaces, AF_XDP).

  --mib N            MiB to stream (default 64)
  --migrate-at-mib N migrate once the server has received N MiB
                     (default a quarter of the stream)
  --pause-ms N       stop-and-copy pause between unplug and plug (default 0)
  --no-announce      host 3 sends no RARP for the VM: the stale FDB entries
                     keep the stream in the dark until they age out
  --ageing-secs N    the daemons' FDB ageing time (default 300, theirs)
  --json             print only a one-line JSON summary";

/// Set by SIGINT/SIGTERM; every wait checks it, and the fabric is torn
/// down on the way out.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

const VNI: u32 = 100;
const CLIENT_MAC: &str = "02:00:0a:64:00:01";
const SERVER_MAC: &str = "02:00:0a:64:00:02";
const CLIENT_IP: &str = "10.100.0.1";
const SERVER_IP: &str = "10.100.0.2";
const STREAM_PORT: u16 = 5201;
const HOSTS: [usize; 3] = [1, 2, 3];
/// How long the stream may stall before the run gives up: long enough for
/// `--no-announce` to show how the fabric recovers without a RARP (the
/// stale entries age out, then TCP's next retransmission, at most
/// 120 s later, is flooded and finds the VM).
fn stall_limit(ageing_secs: u32) -> Duration {
    Duration::from_secs((u64::from(ageing_secs) + 300).max(180))
}

fn host_ip(h: usize) -> String {
    format!("172.16.{h}.2")
}

fn host_of_ip(ip: &str) -> String {
    HOSTS
        .iter()
        .find(|h| host_ip(**h) == ip)
        .map_or_else(|| ip.to_string(), |h| format!("host {h}"))
}

fn vm_name(mac: &str) -> &'static str {
    match mac {
        CLIENT_MAC => "client VM",
        SERVER_MAC => "server VM",
        _ => "unknown MAC",
    }
}

#[derive(Clone)]
struct Options {
    bytes: u64,
    migrate_at: Option<u64>,
    pause_ms: u64,
    announce: bool,
    ageing_secs: u32,
    json: bool,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        bytes: 64 << 20,
        migrate_at: None,
        pause_ms: 0,
        announce: true,
        ageing_secs: 300,
        json: false,
    };
    let mut args = std::env::args().skip(1);
    let number = |args: &mut std::iter::Skip<std::env::Args>, key: &str| {
        let v = args.next().ok_or_else(|| format!("{key} needs a number"))?;
        v.parse::<u64>()
            .map_err(|_| format!("{key}: '{v}' is not a whole number"))
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--mib" => {
                let n = number(&mut args, "--mib")?;
                if !(1..=4096).contains(&n) {
                    return Err("--mib: choose 1 to 4096".into());
                }
                o.bytes = n << 20;
            }
            "--migrate-at-mib" => o.migrate_at = Some(number(&mut args, "--migrate-at-mib")? << 20),
            "--pause-ms" => o.pause_ms = number(&mut args, "--pause-ms")?,
            "--no-announce" => o.announce = false,
            "--ageing-secs" => {
                o.ageing_secs = u32::try_from(number(&mut args, "--ageing-secs")?)
                    .map_err(|_| "--ageing-secs: too large")?;
            }
            "--json" => o.json = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if let Some(m) = o.migrate_at {
        if m >= o.bytes {
            return Err("--migrate-at-mib must be below --mib".into());
        }
    }
    Ok(o)
}

/// Why this machine cannot run the demo, if it cannot.
fn cannot_run() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some(
            "needs root (network namespaces, AF_XDP, XDP programs); \
             run it with sudo, or run the in-process demo: cargo run --release --bin vxlan-demo"
                .into(),
        );
    }
    // SAFETY: plain socket creation, closed at once if it worked.
    let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW, 0) };
    if fd < 0 {
        return Some(format!(
            "this kernel has no AF_XDP sockets: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: `fd` is the socket just opened.
    unsafe { libc::close(fd) };
    None
}

fn stopped() -> Result<(), String> {
    if STOP.load(Ordering::SeqCst) {
        Err("interrupted (SIGINT/SIGTERM): tearing the fabric down".into())
    } else {
        Ok(())
    }
}

/// Runs `args` (in namespace `ns` when given); its stdout, or an error
/// naming the command and what it said.
fn sh(ns: Option<&str>, args: &[&str]) -> Result<String, String> {
    let mut c = Command::new(if ns.is_some() { "ip" } else { args[0] });
    match ns {
        Some(n) => c.args(["netns", "exec", n]).args(args),
        None => c.args(&args[1..]),
    };
    let out = c
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", args[0]))?;
    if !out.status.success() {
        return Err(format!(
            "{}{} failed: {}{}",
            ns.map(|n| format!("[{n}] ")).unwrap_or_default(),
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip -n NS WORDS...`.
fn ipn(ns: &str, words: &str) -> Result<(), String> {
    let mut v = vec!["ip", "-n", ns];
    v.extend(words.split_whitespace());
    sh(None, &v).map(drop)
}

/// The namespaces and the scratch directory of one run; dropping it
/// kills whatever still runs in them and deletes them (on error, panic
/// and Ctrl-C alike).
struct Fabric {
    names: Vec<String>,
    dir: PathBuf,
}

const ROUTER: usize = 0;
const CLIENT: usize = 4;
const SERVER: usize = 5;

impl Fabric {
    fn new() -> Result<Fabric, String> {
        let id = std::process::id();
        let names = ["r", "h1", "h2", "h3", "vc", "vs"]
            .iter()
            .map(|r| format!("vxd{r}{id}"))
            .collect();
        let dir = std::env::temp_dir().join(format!("vxlan-demo-netns-{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let f = Fabric { names, dir };
        for n in &f.names {
            let _ = sh(None, &["ip", "netns", "del", n]);
            sh(None, &["ip", "netns", "add", n])?;
            ipn(n, "link set lo up")?;
        }
        Ok(f)
    }
    fn ns(&self, i: usize) -> &str {
        &self.names[i]
    }
    fn host(&self, h: usize) -> &str {
        &self.names[h]
    }
}

impl Drop for Fabric {
    fn drop(&mut self) {
        let me = std::process::id().to_string();
        for n in &self.names {
            if let Ok(out) = Command::new("ip").args(["netns", "pids", n]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    if pid == me {
                        continue;
                    }
                    if let Ok(pid) = pid.parse::<i32>() {
                        // SAFETY: signalling a process inside a namespace
                        // this run created; at worst it has exited.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
            }
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Builds the router, the three hosts' veths and the VMs.
fn build(f: &Fabric) -> Result<(), String> {
    let r = f.ns(ROUTER);
    sh(Some(r), &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
    for n in [f.ns(CLIENT), f.ns(SERVER), r] {
        // No IPv6 chatter on the segment or the underlay.
        sh(
            Some(n),
            &["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
        )?;
        sh(
            Some(n),
            &["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"],
        )?;
    }
    for h in HOSTS {
        let hn = f.host(h);
        sh(
            Some(hn),
            &["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"],
        )?;
        let (rmac, hmac) = (
            format!("02:00:ac:10:0{h}:01"),
            format!("02:00:ac:10:0{h}:02"),
        );
        let rdev = format!("r{h}");
        sh(
            None,
            &[
                "ip", "link", "add", &rdev, "netns", r, "address", &rmac, "mtu", "1600", "type",
                "veth", "peer", "name", "up0", "netns", hn, "address", &hmac, "mtu", "1600",
            ],
        )?;
        ipn(r, &format!("addr add 172.16.{h}.1/24 dev {rdev}"))?;
        ipn(r, &format!("link set {rdev} up"))?;
        sh(Some(r), &["ethtool", "-K", &rdev, "tx", "off"])?;
        ipn(hn, &format!("addr add {}/24 dev up0", host_ip(h)))?;
        ipn(hn, "link set up0 up")?;
        ipn(hn, &format!("route add default via 172.16.{h}.1"))?;
        sh(Some(hn), &["ethtool", "-K", "up0", "tx", "off"])?;
        // The access veth: host 1 to the client VM, hosts 2 and 3 to the
        // server VM's two NICs (same MAC; the second is down until the
        // VM arrives on host 3).
        let (vm, mac, dev) = match h {
            1 => (f.ns(CLIENT), CLIENT_MAC, "eth0"),
            2 => (f.ns(SERVER), SERVER_MAC, "eth0"),
            _ => (f.ns(SERVER), SERVER_MAC, "eth1"),
        };
        sh(
            None,
            &[
                "ip", "link", "add", "acc0", "netns", hn, "type", "veth", "peer", "name", dev,
                "netns", vm, "address", mac,
            ],
        )?;
        ipn(hn, "link set acc0 up")?;
        sh(Some(hn), &["ethtool", "-K", "acc0", "tx", "off"])?;
        sh(Some(vm), &["ethtool", "-K", dev, "tx", "off"])?;
    }
    ipn(f.ns(CLIENT), &format!("addr add {CLIENT_IP}/24 dev eth0"))?;
    ipn(f.ns(CLIENT), "link set eth0 up")?;
    ipn(f.ns(SERVER), &format!("addr add {SERVER_IP}/24 dev eth0"))?;
    ipn(f.ns(SERVER), "link set eth0 up")?;
    Ok(())
}

fn config(h: usize, sock: &Path, ageing_secs: u32) -> String {
    let flood: Vec<String> = HOSTS
        .iter()
        .filter(|o| **o != h)
        .map(|o| format!("\"{}\"", host_ip(*o)))
        .collect();
    format!(
        r#"# host {h}: written by vxlan-demo-netns
[vtep]
control_socket = "{sock}"
local_ip = "{ip}"
mac = "02:00:ac:10:0{h}:02"
udp_port = 4789
ageing_secs = {ageing_secs}
underlay_mtu = 1600
workers = 1

# No gateway_mac: the next hop (the router) comes from the kernel's tables.
[underlay]
port = "uplink"

[[port]]
name = "uplink"
kind = "af_xdp"
interface = "up0"
mode = "copy"

[[port]]
name = "vm"
kind = "af_xdp"
interface = "acc0"
access = {{ vni = {VNI} }}

[[vni]]
id = {VNI}
flood = [{flood}]
"#,
        sock = sock.display(),
        ip = host_ip(h),
        flood = flood.join(", "),
    )
}

/// The `vtep` and `vtepctl` binaries beside this one; under `cargo run`
/// (which builds only the binary it runs) they are built when missing.
fn tools(json: bool) -> Result<(PathBuf, PathBuf), String> {
    let exe = std::env::current_exe().map_err(|e| format!("where am I: {e}"))?;
    let dir = exe.parent().ok_or("no directory for this binary")?;
    let (vtep, ctl) = (dir.join("vtep"), dir.join("vtepctl"));
    if !(vtep.exists() && ctl.exists()) {
        let Ok(cargo) = std::env::var("CARGO") else {
            return Err(format!(
                "{} and vtepctl are missing: cargo build --release -p vxlan-examples \
                 --features af-xdp --bins",
                vtep.display()
            ));
        };
        let mut c = Command::new(cargo);
        c.args(["build", "-p", "vxlan-examples", "--features", "af-xdp"]);
        c.args(["--bin", "vtep", "--bin", "vtepctl"]);
        if dir.ends_with("release") {
            c.arg("--release");
        }
        if !json {
            println!("building vtep and vtepctl beside this binary ...");
        }
        let st = c.status().map_err(|e| format!("cargo build: {e}"))?;
        if !st.success() {
            return Err("building vtep and vtepctl failed".into());
        }
    }
    Ok((vtep, ctl))
}

/// One host's `vtep` daemon. Dropping it kills it.
struct Daemon {
    host: usize,
    child: Option<Child>,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
    dump: PathBuf,
    sock: PathBuf,
}

impl Daemon {
    fn start(f: &Fabric, vtep: &Path, h: usize, ageing_secs: u32) -> Result<Daemon, String> {
        let sock = f.dir.join(format!("h{h}.sock"));
        let cfg = f.dir.join(format!("h{h}.toml"));
        std::fs::write(&cfg, config(h, &sock, ageing_secs))
            .map_err(|e| format!("{}: {e}", cfg.display()))?;
        let dump = f.dir.join(format!("h{h}.json"));
        let mut child = Command::new("ip")
            .args(["netns", "exec", f.host(h)])
            .arg(vtep)
            .arg("--config")
            .arg(&cfg)
            .arg("--dump-json")
            .arg(&dump)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("start vtep on host {h}: {e}"))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut d = Daemon {
            host: h,
            child: Some(child),
            lines,
            log: Vec::new(),
            dump,
            sock,
        };
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            stopped()?;
            match d.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(l) => {
                    let running = l.contains("running");
                    d.log.push(l);
                    if running {
                        return Ok(d);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < end => {}
                Err(_) => {
                    return Err(format!(
                        "the vtep on host {h} did not start:\n  {}",
                        d.log.join("\n  ")
                    ))
                }
            }
        }
    }

    /// `vtepctl --socket S WORDS... --json`, parsed.
    fn ctl(&self, vtepctl: &Path, words: &[&str]) -> Result<Value, String> {
        let out = Command::new(vtepctl)
            .arg("--socket")
            .arg(&self.sock)
            .args(words)
            .arg("--json")
            .output()
            .map_err(|e| format!("vtepctl: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "vtepctl {} on host {}: {}",
                words.join(" "),
                self.host,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| format!("vtepctl output: {e}"))
    }

    /// SIGTERM, a clean exit, and the daemon's `--dump-json`.
    fn stop(&mut self) -> Result<Value, String> {
        let mut child = self.child.take().ok_or("not running")?;
        let pid = i32::try_from(child.id()).map_err(|e| e.to_string())?;
        // SAFETY: signalling our own child (`ip netns exec` execs the
        // daemon, so this is the daemon itself).
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let end = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
                break s;
            }
            if Instant::now() > end {
                let _ = child.kill();
                return Err(format!("the vtep on host {} ignored SIGTERM", self.host));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.log.push(l);
        }
        if !status.success() {
            return Err(format!(
                "the vtep on host {} exited with {status}:\n  {}",
                self.host,
                self.log.join("\n  ")
            ));
        }
        let text = std::fs::read_to_string(&self.dump).map_err(|e| format!("dump: {e}"))?;
        serde_json::from_str(&text).map_err(|e| format!("dump: {e}"))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Moves the calling thread into network namespace `name` (only this
/// thread: the rest of the process stays where it is).
fn enter_netns(name: &str) -> Result<(), String> {
    let file = std::fs::File::open(format!("/var/run/netns/{name}"))
        .map_err(|e| format!("open netns {name}: {e}"))?;
    // SAFETY: `file` is an open namespace descriptor; for CLONE_NEWNET
    // setns changes only the calling thread's network namespace.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(format!("setns {name}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Byte `i` of the stream, a function of `i` alone, so that a lost,
/// repeated or reordered segment shows at once.
fn pattern(i: u64) -> u8 {
    let x = (i ^ (i >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x.to_be_bytes()[0] ^ i.to_le_bytes()[0]
}

fn is_reset(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::BrokenPipe
    )
}

/// What the server VM saw.
#[derive(Default)]
struct Received {
    bytes: u64,
    first_bad: Option<u64>,
    error: Option<String>,
    reset: bool,
    /// (time since the run's start, bytes so far) after every read.
    progress: Vec<(Duration, u64)>,
    /// When the server stopped reading (the end of a stall that never
    /// ended counts as the end of the interruption).
    ended: Duration,
}

/// The server VM's guest process: accepts one connection and checks every
/// byte; `got` shows the progress to the rest of the demo.
fn server(
    ns: String,
    t0: Instant,
    total: u64,
    got: Arc<AtomicU64>,
    ready: mpsc::Sender<Result<(), String>>,
    stall: Duration,
) -> Received {
    let mut r = Received::default();
    let listener = match enter_netns(&ns).and_then(|()| {
        let addr: SocketAddr = format!("{SERVER_IP}:{STREAM_PORT}")
            .parse()
            .map_err(|_| "addr")?;
        TcpListener::bind(addr).map_err(|e| format!("bind {addr}: {e}"))
    }) {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err(e.clone()));
            r.error = Some(e);
            return r;
        }
    };
    let _ = ready.send(Ok(()));
    let _ = listener.set_nonblocking(true);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if STOP.load(Ordering::SeqCst) || Instant::now() > deadline {
                    r.error = Some("no connection from the client VM".into());
                    return r;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => {
                r.error = Some(format!("accept: {e}"));
                return r;
            }
        }
    };
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = vec![0u8; 64 * 1024];
    let mut last_data = Instant::now();
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let n64 = u64::try_from(n).unwrap_or(0);
                if r.first_bad.is_none() {
                    if let Some(j) = (0..n64)
                        .find(|j| buf[usize::try_from(*j).unwrap_or(0)] != pattern(r.bytes + j))
                    {
                        r.first_bad = Some(r.bytes + j);
                    }
                }
                r.bytes += n64;
                got.store(r.bytes, Ordering::Release);
                last_data = Instant::now();
                r.progress.push((t0.elapsed(), r.bytes));
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if STOP.load(Ordering::SeqCst) || last_data.elapsed() > stall {
                    r.error = Some(format!(
                        "no data for {} s after {} bytes",
                        stall.as_secs(),
                        r.bytes
                    ));
                    break;
                }
            }
            Err(e) => {
                r.reset = is_reset(&e);
                r.error = Some(format!("read after {} bytes: {e}", r.bytes));
                break;
            }
        }
    }
    r.ended = t0.elapsed();
    if r.bytes != total && r.error.is_none() {
        r.error = Some(format!(
            "the stream ended after {} of {total} bytes",
            r.bytes
        ));
    }
    r
}

/// What the client VM saw.
#[derive(Default)]
struct Sent {
    bytes: u64,
    error: Option<String>,
    reset: bool,
    /// `tcpi_total_retrans` of the connection when the stream was done.
    retransmissions: u32,
}

/// The client's `TCP_INFO`.
fn tcp_info(fd: RawFd) -> Option<libc::tcp_info> {
    // SAFETY: tcp_info is plain old data; all zero bytes are a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::tcp_info>()).ok()?;
    // SAFETY: `info` is writable for `len` bytes and the kernel writes at
    // most that many; `fd` is an open TCP socket (or the call fails).
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            std::ptr::addr_of_mut!(info).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(info)
}

/// The client VM's guest process: streams `total` bytes of the pattern.
/// Hands a duplicate of its socket to `watch` so the demo can read the
/// connection's `TCP_INFO` while the stream runs.
fn client(ns: String, total: u64, watch: mpsc::Sender<OwnedFd>, stall: Duration) -> Sent {
    let mut s = Sent::default();
    if let Err(e) = enter_netns(&ns) {
        s.error = Some(e);
        return s;
    }
    let addr: SocketAddr = match format!("{SERVER_IP}:{STREAM_PORT}").parse() {
        Ok(a) => a,
        Err(_) => return s,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut stream = loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(c) => break c,
            Err(e) if Instant::now() > deadline || STOP.load(Ordering::SeqCst) => {
                s.error = Some(format!("connect {addr}: {e}"));
                return s;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    // SAFETY: dup of an open descriptor; the result, when valid, is owned
    // by nobody else.
    let dup = unsafe { libc::dup(stream.as_raw_fd()) };
    if dup >= 0 {
        // SAFETY: `dup` is a fresh descriptor of our own.
        let _ = watch.send(unsafe { OwnedFd::from_raw_fd(dup) });
    }
    let _ = stream.set_write_timeout(Some(stall));
    let mut buf = vec![0u8; 64 * 1024];
    while s.bytes < total {
        let n = usize::try_from((total - s.bytes).min(64 * 1024)).unwrap_or(0);
        for (j, b) in buf[..n].iter_mut().enumerate() {
            *b = pattern(s.bytes + u64::try_from(j).unwrap_or(0));
        }
        if let Err(e) = stream.write_all(&buf[..n]) {
            s.reset = is_reset(&e);
            s.error = Some(format!("write after {} bytes: {e}", s.bytes));
            return s;
        }
        s.bytes += u64::try_from(n).unwrap_or(0);
        if STOP.load(Ordering::SeqCst) {
            s.error = Some("interrupted".into());
            return s;
        }
    }
    if let Err(e) = stream.shutdown(std::net::Shutdown::Write) {
        s.error = Some(format!("shutdown: {e}"));
        return s;
    }
    // The server closes once it has every byte.
    let _ = stream.set_read_timeout(Some(stall));
    if let Err(e) = stream.read(&mut buf) {
        s.reset = is_reset(&e);
        s.error = Some(format!("waiting for the server to close: {e}"));
    }
    if let Some(i) = tcp_info(stream.as_raw_fd()) {
        s.retransmissions = i.tcpi_total_retrans;
    }
    s
}

/// A counter of the kernel's TCP MIB (`/proc/net/snmp`) in namespace `ns`.
fn tcp_mib(ns: &str, key: &str) -> Result<u64, String> {
    let text = sh(Some(ns), &["cat", "/proc/net/snmp"])?;
    let mut tcp = text.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (tcp.next().unwrap_or(""), tcp.next().unwrap_or(""));
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == key)
        .and_then(|(_, v)| v.parse().ok())
        .ok_or_else(|| format!("no Tcp {key} in /proc/net/snmp"))
}

/// The tenant MACs of a host's FDB: mac -> where, in words.
fn fdb_view(fdb: &Value) -> Vec<(String, String)> {
    let empty = Vec::new();
    fdb["entries"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|e| {
            let mac = e["mac"].as_str().unwrap_or("?").to_string();
            let at = match e["remote"].as_str() {
                Some(ip) => format!("behind VTEP {ip} ({})", host_of_ip(ip)),
                None => format!("on local port {}", e["port"].as_str().unwrap_or("?")),
            };
            (mac, at)
        })
        .collect()
}

fn where_is(fdb: &[(String, String)], mac: &str) -> Option<String> {
    fdb.iter().find(|(m, _)| m == mac).map(|(_, a)| a.clone())
}

/// The run's output: the story on stdout, or nothing when `--json`.
struct Story {
    t0: Instant,
    quiet: bool,
}

impl Story {
    fn at(&self, t: Duration, who: &str, what: &str) {
        if !self.quiet {
            println!("[{:>10.3} ms] {who}: {what}", t.as_secs_f64() * 1e3);
        }
    }
    fn now(&self, who: &str, what: &str) {
        self.at(self.t0.elapsed(), who, what);
    }
    fn text(&self, s: &str) {
        if !self.quiet {
            println!("{s}");
        }
    }
}

fn print_fdbs(story: &Story, title: &str, fdbs: &[Vec<(String, String)>]) {
    let mut s = format!("  FDB of each VTEP, {title} (vtepctl fdb show --json):\n");
    for (h, fdb) in HOSTS.iter().zip(fdbs) {
        for (mac, at) in fdb {
            let _ = writeln!(s, "    host {h}: VNI {VNI} {mac} ({}) {at}", vm_name(mac));
        }
        if fdb.is_empty() {
            let _ = writeln!(s, "    host {h}: (empty)");
        }
    }
    story.text(s.trim_end());
}

/// Sends RARPs from `mac` on `dev` in namespace `ns`, as a hypervisor
/// announces a migrated guest: `count` of them, 50 ms apart.
fn announce(ns: &str, dev: &str, mac: [u8; 6], count: u32) -> Result<(), String> {
    let (ns, dev) = (ns.to_string(), dev.to_string());
    std::thread::spawn(move || -> Result<(), String> {
        enter_netns(&ns)?;
        let proto = u16::try_from(libc::ETH_P_ALL).unwrap_or(0).to_be();
        // SAFETY: plain socket creation; closed by the OwnedFd below.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto)) };
        if fd < 0 {
            return Err(format!(
                "packet socket: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: `fd` is the socket just opened and owned by nobody else.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        let cdev = std::ffi::CString::new(dev.clone()).map_err(|e| e.to_string())?;
        // SAFETY: `cdev` is a NUL-terminated string.
        let ifindex = unsafe { libc::if_nametoindex(cdev.as_ptr()) };
        if ifindex == 0 {
            return Err(format!("no interface {dev} in {ns}"));
        }
        // RARP request (RFC 903): Ethernet/IPv4, sender and target
        // hardware address the VM's MAC, protocol addresses zero.
        let mut frame = [0u8; 60];
        frame[..6].copy_from_slice(&[0xff; 6]);
        frame[6..12].copy_from_slice(&mac);
        frame[12..14].copy_from_slice(&0x8035u16.to_be_bytes());
        frame[14..16].copy_from_slice(&1u16.to_be_bytes());
        frame[16..18].copy_from_slice(&0x0800u16.to_be_bytes());
        frame[18] = 6;
        frame[19] = 4;
        frame[20..22].copy_from_slice(&3u16.to_be_bytes());
        frame[22..28].copy_from_slice(&mac);
        frame[32..38].copy_from_slice(&mac);
        // SAFETY: sockaddr_ll is plain old data; all zero bytes are valid.
        let mut to: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        to.sll_family = u16::try_from(libc::AF_PACKET).unwrap_or(0);
        to.sll_protocol = 0x8035u16.to_be();
        to.sll_ifindex = i32::try_from(ifindex).map_err(|e| e.to_string())?;
        to.sll_halen = 6;
        to.sll_addr[..6].copy_from_slice(&[0xff; 6]);
        for _ in 0..count {
            // SAFETY: `frame` and `to` are valid for the lengths given.
            let n = unsafe {
                libc::sendto(
                    sock.as_raw_fd(),
                    frame.as_ptr().cast(),
                    frame.len(),
                    0,
                    std::ptr::addr_of!(to).cast(),
                    libc::socklen_t::try_from(std::mem::size_of::<libc::sockaddr_ll>())
                        .unwrap_or(0),
                )
            };
            if n < 0 {
                return Err(format!("RARP send: {}", std::io::Error::last_os_error()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    })
    .join()
    .map_err(|_| "the announcing thread panicked".to_string())?
}

fn mac_bytes(s: &str) -> [u8; 6] {
    let mut m = [0u8; 6];
    for (b, p) in m.iter_mut().zip(s.split(':')) {
        *b = u8::from_str_radix(p, 16).unwrap_or(0);
    }
    m
}

/// The longest gap between two successive reads of the server whose end
/// is after `from` (the interruption the move caused), and when it began.
/// A stream that stalled for good ends its last gap at `r.ended`.
fn longest_gap(r: &Received, from: Duration) -> (Duration, Duration) {
    let mut best = (Duration::ZERO, from);
    let mut progress = r.progress.clone();
    if r.error.is_some() {
        progress.push((r.ended, r.bytes));
    }
    for w in progress.windows(2) {
        let (a, b) = (w[0].0, w[1].0);
        if b >= from && b - a > best.0 {
            best = (b - a, a);
        }
    }
    best
}

/// A JSON string without its quotes, anything else as JSON.
fn cell(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), String::from)
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e4).round() / 10.0
}

/// Fails the run (after the story so far) with `msg`.
fn check(ok: bool, msg: impl Into<String>, failures: &mut Vec<String>) {
    if !ok {
        failures.push(msg.into());
    }
}

fn demo(o: &Options) -> Result<(Value, Vec<String>), String> {
    let (vtep, vtepctl) = tools(o.json)?;
    let story = Story {
        t0: Instant::now(),
        quiet: o.json,
    };
    story.text(
        "Three hosts, three underlay subnets (172.16.1.0/24, 172.16.2.0/24, 172.16.3.0/24)\n\
         behind a router; each host runs this project's vtep on AF_XDP; VNI 100 makes\n\
         10.100.0.0/24 one L2 segment across them. The VMs run the kernel's TCP.",
    );
    // Declared first: dropped last, after the daemons.
    let fabric = Fabric::new()?;
    build(&fabric)?;
    story.now("fabric", "namespaces, router, veths and VMs are up");
    let mut daemons = Vec::new();
    for h in HOSTS {
        daemons.push(Daemon::start(&fabric, &vtep, h, o.ageing_secs)?);
        story.now(
            &format!("host {h}"),
            &format!(
                "vtep running, VTEP {} on up0, the VM's veth acc0 in VNI {VNI}",
                host_ip(h)
            ),
        );
    }
    let (vc, vs) = (fabric.ns(CLIENT).to_string(), fabric.ns(SERVER).to_string());

    // The client finds the server (ARP floods over VXLAN, the answer comes
    // back unicast; every VTEP learns).
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        stopped()?;
        let p = sh(Some(&vc), &["ping", "-q", "-c", "1", "-W", "1", SERVER_IP]);
        if p.is_ok() {
            break;
        }
        if Instant::now() > end {
            return Err(format!(
                "the client VM never reached {SERVER_IP} (daemon logs: {:?})",
                daemons.iter().map(|d| d.log.clone()).collect::<Vec<_>>()
            ));
        }
    }
    story.now(
        "client VM",
        &format!("ping {SERVER_IP} answered: ARP flooded over VXLAN, the reply came back unicast"),
    );

    let fdb = |d: &Daemon| d.ctl(&vtepctl, &["fdb", "show"]).map(|v| fdb_view(&v));
    let moves = |d: &Daemon| -> Result<u64, String> {
        Ok(d.ctl(&vtepctl, &["stats"])?["fdb"]["moves"]
            .as_u64()
            .unwrap_or(0))
    };
    let before: Vec<_> = daemons.iter().map(fdb).collect::<Result<_, _>>()?;
    let moves_before: Vec<u64> = daemons.iter().map(moves).collect::<Result<_, _>>()?;
    print_fdbs(&story, "before the migration", &before);
    let learned: Vec<usize> = HOSTS
        .iter()
        .zip(&before)
        .filter(|(_, f)| where_is(f, SERVER_MAC).is_some())
        .map(|(h, _)| *h)
        .collect();
    let retrans_before = tcp_mib(&vc, "RetransSegs")?;
    let resets_before = (tcp_mib(&vc, "EstabResets")?, tcp_mib(&vs, "EstabResets")?);

    // The stream.
    let got = Arc::new(AtomicU64::new(0));
    let (ready_tx, ready) = mpsc::channel();
    let srv: JoinHandle<Received> = {
        let (vs, got, t0, total) = (vs.clone(), Arc::clone(&got), story.t0, o.bytes);
        let stall = stall_limit(o.ageing_secs);
        std::thread::spawn(move || server(vs, t0, total, got, ready_tx, stall))
    };
    ready
        .recv_timeout(Duration::from_secs(10))
        .map_err(|_| "the server VM's listener did not start")??;
    let (watch_tx, watch) = mpsc::channel();
    let cli: JoinHandle<Sent> = {
        let (vc, total) = (vc.clone(), o.bytes);
        let stall = stall_limit(o.ageing_secs);
        std::thread::spawn(move || client(vc, total, watch_tx, stall))
    };
    let watched = watch.recv_timeout(Duration::from_secs(35)).ok();
    let stream_start = story.t0.elapsed();
    story.now(
        "client VM",
        &format!(
            "TCP connected to {SERVER_IP}:{STREAM_PORT}; streaming {} MiB",
            o.bytes >> 20
        ),
    );

    // Migrate once the server has a quarter of the stream.
    let at = o.migrate_at.unwrap_or(o.bytes / 4);
    let end = Instant::now() + Duration::from_secs(120);
    while got.load(Ordering::Acquire) < at {
        stopped()?;
        if cli.is_finished() || srv.is_finished() || Instant::now() > end {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let before_mig = got.load(Ordering::Acquire);
    if before_mig < at {
        let (s, r) = (cli.join(), srv.join());
        return Err(format!(
            "the stream stopped before the migration point ({before_mig} of {at} bytes): \
             client {:?}, server {:?}",
            s.ok().and_then(|s| s.error),
            r.ok().and_then(|r| r.error)
        ));
    }
    let mig_start = story.t0.elapsed();
    let rate = (before_mig as f64) * 8.0 / (mig_start - stream_start).as_secs_f64() / 1e6;
    story.now(
        "MIGRATION",
        &format!(
            "the server VM has {:.1} MiB ({rate:.0} Mbit/s so far); unplugging its NIC from host 2",
            before_mig as f64 / f64::from(1u32 << 20)
        ),
    );
    ipn(&vs, &format!("addr del {SERVER_IP}/24 dev eth0"))?;
    ipn(&vs, "link set eth0 down")?;
    if o.pause_ms > 0 {
        story.now(
            "MIGRATION",
            &format!("server VM paused (stop-and-copy) for {} ms", o.pause_ms),
        );
        std::thread::sleep(Duration::from_millis(o.pause_ms));
    }
    ipn(&vs, &format!("addr add {SERVER_IP}/24 dev eth1"))?;
    ipn(&vs, "link set eth1 up")?;
    let plugged = story.t0.elapsed();
    let got_at_plug = got.load(Ordering::Acquire);
    story.now(
        "MIGRATION",
        &format!("server VM resumes on host 3: same MAC {SERVER_MAC}, same IP {SERVER_IP}, same TCP socket"),
    );
    if o.announce {
        story.now(
            "host 3 hypervisor",
            &format!("RARP from {SERVER_MAC} on the VM's new port (x3, 50 ms apart)"),
        );
        let vs2 = vs.clone();
        std::thread::spawn(move || {
            if let Err(e) = announce(&vs2, "eth1", mac_bytes(SERVER_MAC), 3) {
                eprintln!("vxlan-demo-netns: the RARP announcement failed: {e}");
            }
        });
    } else {
        story.now(
            "host 3 hypervisor",
            &format!(
                "sends no announcement (--no-announce): hosts 1 and 2 keep the VM where it was \
                 until their entries age out ({} s) or the VM sends first; meanwhile the \
                 client's segments go to host 2 and are lost, and TCP backs off",
                o.ageing_secs
            ),
        );
    }

    // Watch the FDBs, the client's retransmissions and the server's
    // progress until the fabric has settled and data flows again.
    let mut seen: Vec<Option<String>> = before.iter().map(|f| where_is(f, SERVER_MAC)).collect();
    let mut retrans_seen = watched
        .as_ref()
        .and_then(|f| tcp_info(f.as_raw_fd()))
        .map_or(0, |i| i.tcpi_total_retrans);
    let mut resumed = None;
    // Printed in time order once the stream is done (the polls below
    // notice a change up to one poll round after it happened).
    let mut events: Vec<(Duration, String, String)> = Vec::new();
    let watch_end = Instant::now()
        + if o.announce {
            Duration::from_secs(10)
        } else {
            stall_limit(o.ageing_secs)
        };
    while Instant::now() < watch_end && !srv.is_finished() {
        stopped()?;
        for (i, d) in daemons.iter().enumerate() {
            let now = where_is(&fdb(d)?, SERVER_MAC);
            if now != seen[i] {
                let what = match (&seen[i], &now) {
                    (Some(was), Some(is)) => format!("MOVE {SERVER_MAC} (server VM) {was} -> {is}"),
                    (None, Some(is)) => format!("learned {SERVER_MAC} (server VM) {is}"),
                    (Some(was), None) => {
                        format!(
                            "{SERVER_MAC} (server VM) aged out (was {was}); its frames now flood"
                        )
                    }
                    (None, None) => String::new(),
                };
                events.push((story.t0.elapsed(), format!("host {} VTEP", d.host), what));
                seen[i] = now;
            }
        }
        if let Some(i) = watched.as_ref().and_then(|f| tcp_info(f.as_raw_fd())) {
            if i.tcpi_total_retrans != retrans_seen {
                events.push((
                    story.t0.elapsed(),
                    "client TCP".into(),
                    format!(
                        "{} segment(s) retransmitted so far on this connection (RTO {} ms, backoff {})",
                        i.tcpi_total_retrans,
                        i.tcpi_rto / 1000,
                        i.tcpi_backoff
                    ),
                ));
                retrans_seen = i.tcpi_total_retrans;
            }
        }
        if resumed.is_none() && got.load(Ordering::Acquire) > got_at_plug {
            resumed = Some(story.t0.elapsed());
        }
        let settled = seen[0].as_deref().is_some_and(|s| s.contains("(host 3)"))
            && seen[2]
                .as_deref()
                .is_some_and(|s| s.starts_with("on local"));
        // Watch a while after the flow resumed (and at least a second
        // after the plug), so TCP's recovery shows.
        let now = story.t0.elapsed();
        if settled
            && now > plugged + Duration::from_secs(1)
            && resumed.is_some_and(|r| now > r + Duration::from_millis(300))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    let sent = cli.join().map_err(|_| "the client thread panicked")?;
    let recv = srv.join().map_err(|_| "the server thread panicked")?;
    let (gap, gap_from) = longest_gap(&recv, mig_start);
    events.push((
        gap_from + gap,
        "server VM".into(),
        match &recv.error {
            None => format!(
                "data flows again after {:.1} ms without a byte (the longest gap since the move began); same TCP connection",
                ms(gap)
            ),
            Some(e) => format!("gives up after {:.1} ms without a byte: {e}", ms(gap)),
        },
    ));
    if let Some(&(t, b)) = recv.progress.last() {
        events.push((
            t,
            "server VM".into(),
            format!(
                "{b} bytes received{}",
                if recv.first_bad.is_none() {
                    " and verified"
                } else {
                    ", CORRUPTED"
                }
            ),
        ));
    }
    events.sort_by_key(|e| e.0);
    for (t, who, what) in &events {
        story.at(*t, who, what);
    }
    let after: Vec<_> = daemons.iter().map(fdb).collect::<Result<_, _>>()?;
    let moves_after: Vec<u64> = daemons.iter().map(moves).collect::<Result<_, _>>()?;
    print_fdbs(&story, "after the migration", &after);
    let retrans = tcp_mib(&vc, "RetransSegs")? - retrans_before;
    let resets = (tcp_mib(&vc, "EstabResets")? - resets_before.0)
        + (tcp_mib(&vs, "EstabResets")? - resets_before.1);
    // What host 2 still sent toward the unplugged NIC was dropped by the
    // kernel at its veth (the peer is down).
    let lost_at_old_port = sh(
        Some(fabric.host(2)),
        &["cat", "/sys/class/net/acc0/statistics/tx_dropped"],
    )?
    .trim()
    .parse::<u64>()
    .unwrap_or(0);
    let stats: Vec<Value> = daemons
        .iter()
        .map(|d| d.ctl(&vtepctl, &["stats"]))
        .collect::<Result<_, _>>()?;
    let mut dumps = Vec::new();
    for d in &mut daemons {
        dumps.push(d.stop()?);
    }
    drop(daemons);
    drop(fabric);

    // The verdict.
    let mut failures = Vec::new();
    let reset = sent.reset || recv.reset || resets > 0;
    check(
        recv.error.is_none(),
        format!("server: {:?}", recv.error),
        &mut failures,
    );
    check(
        sent.error.is_none(),
        format!("client: {:?}", sent.error),
        &mut failures,
    );
    check(
        recv.first_bad.is_none(),
        format!("byte {:?} differs from the pattern", recv.first_bad),
        &mut failures,
    );
    check(!reset, "the connection was reset", &mut failures);
    let host3 = format!("behind VTEP {} (host 3)", host_ip(3));
    let mut moved_on = Vec::new();
    for (i, h) in HOSTS.iter().enumerate() {
        let now = where_is(&after[i], SERVER_MAC);
        let want = if *h == 3 {
            Some("on local port vm".to_string())
        } else {
            Some(host3.clone())
        };
        let moved = moves_after[i] > moves_before[i];
        if moved {
            moved_on.push(*h);
        }
        // Without an announcement the entries age out instead: the run
        // shows that, and only the stream itself is judged.
        if learned.contains(h) && o.announce {
            check(
                moved,
                format!("host {h} had learned the server VM but counted no FDB move"),
                &mut failures,
            );
            check(
                now == want,
                format!("host {h}: server VM {now:?}, wanted {want:?}"),
                &mut failures,
            );
        }
    }
    let verified = if recv.first_bad.is_none() {
        recv.bytes
    } else {
        recv.first_bad.unwrap_or(0)
    };
    let flooded: Vec<u64> = stats
        .iter()
        .map(|s| s["total"]["flooded"].as_u64().unwrap_or(0))
        .collect();
    let to_remote: Vec<u64> = stats
        .iter()
        .map(|s| s["total"]["tx_remote"].as_u64().unwrap_or(0))
        .collect();
    for (h, d) in HOSTS.iter().zip(&dumps) {
        check(
            d["pool"]["in_use"] == json!(0),
            format!("host {h}: buffers still out of the pool at exit"),
            &mut failures,
        );
    }

    // What each daemon dropped, by reason, and what its sockets could not
    // deliver (host 2's frames for the unplugged NIC show here).
    let drops: Vec<String> = HOSTS
        .iter()
        .zip(&dumps)
        .map(|(h, d)| {
            let mut parts: Vec<String> = d["counters"]["drops"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(_, n)| n.as_u64().unwrap_or(0) > 0)
                        .map(|(k, n)| format!("{k} {n}"))
                        .collect()
                })
                .unwrap_or_default();
            for p in d["ports"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                for key in ["rx_dropped", "tx_dropped"] {
                    if p[key].as_u64().unwrap_or(0) > 0 {
                        parts.push(format!("port {} {key} {}", cell(&p["port"]), p[key]));
                    }
                }
            }
            if parts.is_empty() {
                parts.push("none".into());
            }
            format!("host {h}: {}", parts.join(", "))
        })
        .collect();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "  Frames host 2's vtep still sent to the unplugged port (dropped by its veth, acc0 tx_dropped): {lost_at_old_port}."
    );
    let _ = writeln!(
        s,
        "  Drops at exit (vtep --dump-json): {}.",
        drops.join("; ")
    );
    let _ = writeln!(s, "  Interruption: {:.1} ms without a byte delivered (from {:.1} ms; NIC unplugged at {:.1} ms, plugged into host 3 at {:.1} ms).",
        ms(gap), ms(gap_from), ms(mig_start), ms(plugged));
    let _ = writeln!(s, "  TCP: {} segments retransmitted by the client (RetransSegs; tcpi_total_retrans {}), {resets} resets.", retrans, sent.retransmissions);
    let _ = writeln!(
        s,
        "  FDB moves counted (vtepctl stats): {}.",
        HOSTS
            .iter()
            .zip(moves_before.iter().zip(&moves_after))
            .map(|(h, (b, a))| format!("host {h}: {}", a - b))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let suppressed: Vec<u64> = stats
        .iter()
        .map(|s| s["total"]["suppressed"].as_u64().unwrap_or(0))
        .collect();
    let _ = writeln!(s, "  Flooded frames per host: {flooded:?}; unicast to remote VTEPs: {to_remote:?} (a broadcast or an unknown destination is flooded: one copy per remote VTEP).");
    let _ = writeln!(
        s,
        "  ARP requests answered by the VTEP itself (ARP suppression) per host: {suppressed:?}."
    );
    if failures.is_empty() {
        let _ = write!(s, "  CHECK: all {} bytes arrived intact and in order over the same TCP connection, done at {:.1} ms.",
            recv.bytes, ms(recv.progress.last().map_or(Duration::ZERO, |p| p.0)));
    } else {
        let _ = write!(s, "  CHECK FAILED:\n    {}", failures.join("\n    "));
    }
    story.text(&s);

    let summary = json!({
        "mode": "vxlan-netns",
        "bytes_sent": sent.bytes,
        "bytes_verified": verified,
        "tcp_resets": resets + u64::from(sent.reset || recv.reset),
        "interruption_ms": ms(gap),
        "fdb_moves": moves_after.iter().zip(&moves_before).map(|(a, b)| a - b).sum::<u64>(),
        "fdb_moves_per_host": moves_after.iter().zip(&moves_before).map(|(a, b)| a - b).collect::<Vec<_>>(),
        "hosts_that_had_learned_the_vm": learned,
        "hosts_with_a_move": moved_on,
        "retransmissions": retrans,
        "frames_lost_at_old_port": lost_at_old_port,
        "pause_ms": o.pause_ms,
        "announce": o.announce,
        "ok": failures.is_empty(),
    });
    Ok((summary, failures))
}

/// Entry point.
fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("vxlan-demo-netns: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(why) = cannot_run() {
        eprintln!("vxlan-demo-netns: {why}");
        return ExitCode::from(2);
    }
    // SAFETY: the handler only stores to an atomic (async-signal-safe).
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGTERM,
            on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
    match demo(&o) {
        Ok((summary, failures)) => {
            if o.json {
                println!("{summary}");
            }
            if failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("vxlan-demo-netns: {e}");
            ExitCode::from(2)
        }
    }
}
