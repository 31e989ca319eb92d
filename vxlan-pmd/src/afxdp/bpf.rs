//! The XDP program that steers frames to AF_XDP sockets, built and loaded
//! with the `bpf()` system call (no libbpf, no clang).
//!
//! The program is a few dozen instructions, assembled here with our local
//! address and UDP port baked in as immediates when it is loaded (one
//! program per interface, so nothing has to be looked up at run time):
//!
//! * [`Filter::Vxlan`] (the underlay): an untagged IPv4 (no fragment) or
//!   IPv6 (UDP as the first next header) frame whose destination is our
//!   address and whose UDP destination port is ours goes to the XSKMAP
//!   entry of the receive queue; everything else (ARP, neighbour
//!   discovery, ICMP, SSH, VLAN-tagged frames) is passed to the kernel.
//! * [`Filter::All`] (an access port): every frame goes to the socket.
//!
//! `bpf_redirect_map` gets `XDP_PASS` as its fallback, so a queue with no
//! socket hands its frames to the kernel instead of dropping them.
//!
//! The program is attached through a BPF link (`BPF_LINK_CREATE`): the
//! kernel detaches it when the last file descriptor of the link closes,
//! which is when [`XdpAttachment`] drops, and also when the process dies
//! in any way (the kernel closes its descriptors), so no program is ever
//! left behind on an interface.

use std::ffi::CString;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

// Commands and types from linux/bpf.h.
const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_XDP: u32 = 37;
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
const XDP_PASS: i32 = 2;
const BPF_FUNC_REDIRECT_MAP: i32 = 51;

/// Which frames an interface's program sends to its sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// UDP to this address and port (our VXLAN); the rest to the kernel.
    Vxlan {
        /// Our underlay address.
        local: IpAddr,
        /// Our VXLAN UDP port.
        port: u16,
    },
    /// Every frame.
    All,
}

/// How the program is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachMode {
    /// In the driver (`XDP_FLAGS_DRV_MODE`): the fast path, needed for
    /// zero-copy.
    Native,
    /// In the generic network stack (`XDP_FLAGS_SKB_MODE`): any interface,
    /// copy mode only.
    Generic,
}

/// One BPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct Insn {
    code: u8,
    /// dst in the low nibble, src in the high nibble.
    regs: u8,
    off: i16,
    imm: i32,
}

// Opcode parts.
const LDX_MEM: u8 = 0x01 | 0x60;
const SZ_W: u8 = 0x00;
const SZ_H: u8 = 0x08;
const SZ_B: u8 = 0x10;
const ALU64: u8 = 0x07;
const JMP: u8 = 0x05;
const JMP32: u8 = 0x06;
const OP_ADD: u8 = 0x00;
const OP_AND: u8 = 0x50;
const OP_LSH: u8 = 0x60;
const OP_MOV: u8 = 0xb0;
const SRC_K: u8 = 0x00;
const SRC_X: u8 = 0x08;
const J_A: u8 = 0x00;
const J_EQ: u8 = 0x10;
const J_GT: u8 = 0x20;
const J_NE: u8 = 0x50;
const J_LT: u8 = 0xa0;
const CALL: u8 = 0x80;
const EXIT: u8 = 0x90;

/// A jump target, resolved when the program is finished.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Label {
    Pass,
    V4,
    V6,
    Redirect,
}

/// A tiny assembler: instructions plus jumps to labels.
struct Asm {
    insns: Vec<Insn>,
    fixups: Vec<(usize, Label)>,
    labels: Vec<(Label, usize)>,
}

impl Asm {
    fn new() -> Asm {
        Asm {
            insns: Vec::new(),
            fixups: Vec::new(),
            labels: Vec::new(),
        }
    }
    fn raw(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) {
        self.insns.push(Insn {
            code,
            regs: (src << 4) | (dst & 0x0f),
            off,
            imm,
        });
    }
    fn label(&mut self, l: Label) {
        self.labels.push((l, self.insns.len()));
    }
    /// `dst = *(size *)(src + off)`
    fn load(&mut self, size: u8, dst: u8, src: u8, off: i16) {
        self.raw(LDX_MEM | size, dst, src, off, 0);
    }
    fn mov(&mut self, dst: u8, src: u8) {
        self.raw(ALU64 | OP_MOV | SRC_X, dst, src, 0, 0);
    }
    fn mov_imm(&mut self, dst: u8, imm: i32) {
        self.raw(ALU64 | OP_MOV | SRC_K, dst, 0, 0, imm);
    }
    fn alu_imm(&mut self, op: u8, dst: u8, imm: i32) {
        self.raw(ALU64 | op | SRC_K, dst, 0, 0, imm);
    }
    fn add_reg(&mut self, dst: u8, src: u8) {
        self.raw(ALU64 | OP_ADD | SRC_X, dst, src, 0, 0);
    }
    /// `if dst <op> src goto l` (64-bit compare of registers).
    fn jmp_reg(&mut self, op: u8, dst: u8, src: u8, l: Label) {
        self.fixups.push((self.insns.len(), l));
        self.raw(JMP | op | SRC_X, dst, src, 0, 0);
    }
    /// `if (u32)dst <op> imm goto l` (32-bit compare, so an immediate with
    /// its top bit set is not sign-extended against a zero-extended load).
    fn jmp32_imm(&mut self, op: u8, dst: u8, imm: i32, l: Label) {
        self.fixups.push((self.insns.len(), l));
        self.raw(JMP32 | op | SRC_K, dst, 0, 0, imm);
    }
    fn goto(&mut self, l: Label) {
        self.fixups.push((self.insns.len(), l));
        self.raw(JMP | J_A, 0, 0, 0, 0);
    }
    /// `dst = map fd` (a 16-byte `ld_imm64` the kernel rewrites into the
    /// map's address).
    fn ld_map_fd(&mut self, dst: u8, fd: RawFd) {
        const BPF_PSEUDO_MAP_FD: u8 = 1;
        self.raw(0x18, dst, BPF_PSEUDO_MAP_FD, 0, fd);
        self.raw(0, 0, 0, 0, 0);
    }
    fn call(&mut self, helper: i32) {
        self.raw(JMP | CALL, 0, 0, 0, helper);
    }
    fn exit(&mut self) {
        self.raw(JMP | EXIT, 0, 0, 0, 0);
    }
    fn finish(mut self) -> Vec<Insn> {
        for (at, l) in std::mem::take(&mut self.fixups) {
            let target = self
                .labels
                .iter()
                .find(|(m, _)| *m == l)
                .map(|(_, i)| *i)
                .expect("every jump target is placed");
            let rel = i64::try_from(target).unwrap_or(0) - i64::try_from(at).unwrap_or(0) - 1;
            self.insns[at].off = i16::try_from(rel).expect("the program is short");
        }
        self.insns
    }
}

/// A value as the CPU reads it from packet bytes in network order.
fn ne16(bytes: [u8; 2]) -> i32 {
    i32::from(u16::from_ne_bytes(bytes))
}
fn ne32(bytes: [u8; 4]) -> i32 {
    i32::from_ne_bytes(bytes)
}

/// Assembles the program for `filter`, redirecting to the XSKMAP `map_fd`.
fn assemble(filter: Filter, map_fd: RawFd) -> Vec<Insn> {
    // Registers: r1 ctx on entry, r6 ctx kept, r2 data, r3 data_end,
    // r4 and r0 cursors, r5 scratch.
    let mut a = Asm::new();
    a.mov(6, 1);
    if let Filter::Vxlan { local, port } = filter {
        let port = ne16(port.to_be_bytes());
        a.load(SZ_W, 2, 6, 0); // data
        a.load(SZ_W, 3, 6, 4); // data_end
        a.mov(4, 2);
        a.alu_imm(OP_ADD, 4, 14);
        a.jmp_reg(J_GT, 4, 3, Label::Pass);
        a.load(SZ_H, 5, 2, 12); // EtherType
        match local {
            IpAddr::V4(_) => a.jmp32_imm(J_EQ, 5, ne16([0x08, 0x00]), Label::V4),
            IpAddr::V6(_) => a.jmp32_imm(J_EQ, 5, ne16([0x86, 0xdd]), Label::V6),
        }
        a.goto(Label::Pass);
        match local {
            IpAddr::V4(ip) => {
                a.label(Label::V4);
                a.mov(4, 2);
                a.alu_imm(OP_ADD, 4, 14 + 20);
                a.jmp_reg(J_GT, 4, 3, Label::Pass);
                a.load(SZ_B, 5, 2, 14 + 9); // protocol
                a.jmp32_imm(J_NE, 5, 17, Label::Pass);
                a.load(SZ_H, 5, 2, 14 + 6); // flags and fragment offset
                a.alu_imm(OP_AND, 5, ne16([0x3f, 0xff])); // MF or an offset
                a.jmp32_imm(J_NE, 5, 0, Label::Pass);
                a.load(SZ_W, 5, 2, 14 + 16); // destination
                a.jmp32_imm(J_NE, 5, ne32(ip.octets()), Label::Pass);
                a.load(SZ_B, 5, 2, 14); // version and IHL
                a.alu_imm(OP_AND, 5, 0x0f);
                a.alu_imm(OP_LSH, 5, 2);
                a.jmp32_imm(J_LT, 5, 20, Label::Pass);
                a.mov(4, 2);
                a.alu_imm(OP_ADD, 4, 14);
                a.add_reg(4, 5); // the UDP header
                a.mov(0, 4);
                a.alu_imm(OP_ADD, 0, 8);
                a.jmp_reg(J_GT, 0, 3, Label::Pass);
                a.load(SZ_H, 5, 4, 2); // UDP destination port
                a.jmp32_imm(J_NE, 5, port, Label::Pass);
                a.goto(Label::Redirect);
            }
            IpAddr::V6(ip) => {
                a.label(Label::V6);
                a.mov(4, 2);
                a.alu_imm(OP_ADD, 4, 14 + 40 + 8);
                a.jmp_reg(J_GT, 4, 3, Label::Pass);
                a.load(SZ_B, 5, 2, 14 + 6); // next header
                a.jmp32_imm(J_NE, 5, 17, Label::Pass);
                let o = ip.octets();
                for i in 0..4 {
                    let w = [o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]];
                    let off = i16::try_from(14 + 24 + 4 * i).unwrap_or(0);
                    a.load(SZ_W, 5, 2, off);
                    a.jmp32_imm(J_NE, 5, ne32(w), Label::Pass);
                }
                a.load(SZ_H, 5, 2, 14 + 40 + 2); // UDP destination port
                a.jmp32_imm(J_NE, 5, port, Label::Pass);
                a.goto(Label::Redirect);
            }
        }
    }
    a.label(Label::Redirect);
    a.ld_map_fd(1, map_fd);
    a.load(SZ_W, 2, 6, 16); // rx_queue_index
    a.mov_imm(3, XDP_PASS); // the action when the queue has no socket
    a.call(BPF_FUNC_REDIRECT_MAP);
    a.exit();
    if filter != Filter::All {
        // (The verifier refuses unreachable code, and nothing jumps here
        // in a program that redirects everything.)
        a.label(Label::Pass);
        a.mov_imm(0, XDP_PASS);
        a.exit();
    }
    // Labels nothing jumps to, so every label exists.
    a.label(Label::Pass);
    a.label(Label::V4);
    a.label(Label::V6);
    a.finish()
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, initialised `#[repr(C)]` prefix of
    // `union bpf_attr` for `cmd`, and we pass its exact size, so the kernel
    // reads (and for some commands writes) only within it; the pointers in
    // it point at buffers that outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            (attr as *mut T).cast::<libc::c_void>(),
            std::mem::size_of::<T>(),
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn owned_fd(r: libc::c_long) -> io::Result<OwnedFd> {
    let fd = RawFd::try_from(r).map_err(|_| io::Error::other("bpf() returned a bad fd"))?;
    // SAFETY: `fd` was just returned by the kernel as a new descriptor
    // that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An XSKMAP: queue index -> AF_XDP socket.
#[derive(Debug)]
pub struct XskMap {
    fd: OwnedFd,
    entries: u32,
}

impl XskMap {
    /// A map with room for queues `0..entries`.
    pub fn new(entries: u32) -> io::Result<XskMap> {
        #[repr(C)]
        struct MapCreate {
            map_type: u32,
            key_size: u32,
            value_size: u32,
            max_entries: u32,
            map_flags: u32,
        }
        let mut attr = MapCreate {
            map_type: BPF_MAP_TYPE_XSKMAP,
            key_size: 4,
            value_size: 4,
            max_entries: entries.max(1),
            map_flags: 0,
        };
        let fd = owned_fd(bpf(BPF_MAP_CREATE, &mut attr)?)?;
        Ok(XskMap {
            fd,
            entries: entries.max(1),
        })
    }

    /// Queues the map has room for.
    pub fn entries(&self) -> u32 {
        self.entries
    }

    /// Points queue `queue` at the socket `xsk`.
    pub fn set(&self, queue: u32, xsk: RawFd) -> io::Result<()> {
        #[repr(C)]
        struct Update {
            map_fd: u32,
            pad: u32,
            key: u64,
            value: u64,
            flags: u64,
        }
        let key = queue;
        let value = u32::try_from(xsk).map_err(|_| io::Error::other("negative socket fd"))?;
        let mut attr = Update {
            map_fd: self.raw_u32(),
            pad: 0,
            key: &key as *const u32 as u64,
            value: &value as *const u32 as u64,
            flags: 0,
        };
        bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(|_| ())
    }

    /// Removes queue `queue`'s socket (its frames go to the kernel again).
    pub fn clear(&self, queue: u32) -> io::Result<()> {
        #[repr(C)]
        struct Delete {
            map_fd: u32,
            pad: u32,
            key: u64,
        }
        let key = queue;
        let mut attr = Delete {
            map_fd: self.raw_u32(),
            pad: 0,
            key: &key as *const u32 as u64,
        };
        bpf(BPF_MAP_DELETE_ELEM, &mut attr).map(|_| ())
    }

    fn raw_u32(&self) -> u32 {
        u32::try_from(self.fd.as_raw_fd()).unwrap_or(u32::MAX)
    }
}

/// A loaded XDP program.
#[derive(Debug)]
pub struct XdpProgram {
    fd: OwnedFd,
    insns: usize,
}

impl XdpProgram {
    /// Assembles and loads the program for `filter` over `map`. A verifier
    /// rejection comes back with the verifier's log in the error.
    pub fn load(filter: Filter, map: &XskMap) -> io::Result<XdpProgram> {
        let insns = assemble(filter, map.fd.as_raw_fd());
        // Our own bytecode; the helpers it calls are not GPL-only.
        let license = CString::new("Dual MIT/GPL").map_err(io::Error::other)?;
        let mut log = vec![0u8; 64 * 1024];
        #[repr(C)]
        struct ProgLoad {
            prog_type: u32,
            insn_cnt: u32,
            insns: u64,
            license: u64,
            log_level: u32,
            log_size: u32,
            log_buf: u64,
            kern_version: u32,
            prog_flags: u32,
            prog_name: [u8; 16],
            prog_ifindex: u32,
            expected_attach_type: u32,
        }
        let mut name = [0u8; 16];
        name[..8].copy_from_slice(b"vxlan_xs");
        let mut attr = ProgLoad {
            prog_type: BPF_PROG_TYPE_XDP,
            insn_cnt: u32::try_from(insns.len()).unwrap_or(u32::MAX),
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            log_level: 1,
            log_size: u32::try_from(log.len()).unwrap_or(0),
            log_buf: log.as_mut_ptr() as u64,
            kern_version: 0,
            prog_flags: 0,
            prog_name: name,
            prog_ifindex: 0,
            expected_attach_type: BPF_XDP,
        };
        match bpf(BPF_PROG_LOAD, &mut attr) {
            Ok(r) => Ok(XdpProgram {
                fd: owned_fd(r)?,
                insns: insns.len(),
            }),
            Err(e) => {
                let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
                let text = String::from_utf8_lossy(&log[..end]);
                Err(io::Error::new(
                    e.kind(),
                    format!("the kernel refused the XDP program: {e}\n{text}"),
                ))
            }
        }
    }

    /// Instructions in the program.
    pub fn len(&self) -> usize {
        self.insns
    }

    /// Never true: a program has at least its exit.
    pub fn is_empty(&self) -> bool {
        self.insns == 0
    }

    /// Attaches the program to interface `ifindex`; it stays attached
    /// until the returned [`XdpAttachment`] drops.
    pub fn attach(&self, ifindex: u32, mode: AttachMode) -> io::Result<XdpAttachment> {
        #[repr(C)]
        struct LinkCreate {
            prog_fd: u32,
            target_ifindex: u32,
            attach_type: u32,
            flags: u32,
        }
        let mut attr = LinkCreate {
            prog_fd: u32::try_from(self.fd.as_raw_fd()).unwrap_or(u32::MAX),
            target_ifindex: ifindex,
            attach_type: BPF_XDP,
            flags: match mode {
                AttachMode::Native => XDP_FLAGS_DRV_MODE,
                AttachMode::Generic => XDP_FLAGS_SKB_MODE,
            },
        };
        let link = owned_fd(bpf(BPF_LINK_CREATE, &mut attr)?)?;
        Ok(XdpAttachment {
            _link: link,
            ifindex,
            mode,
        })
    }
}

/// A program attached to an interface through a BPF link; dropping it
/// detaches the program.
#[derive(Debug)]
pub struct XdpAttachment {
    _link: OwnedFd,
    ifindex: u32,
    mode: AttachMode,
}

impl XdpAttachment {
    /// The interface.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// How it is attached.
    pub fn mode(&self) -> AttachMode {
        self.mode
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_resolve_inside_the_program() {
        for filter in [
            Filter::All,
            Filter::Vxlan {
                local: "192.0.2.2".parse().unwrap(),
                port: 4789,
            },
            Filter::Vxlan {
                local: "2001:db8::2".parse().unwrap(),
                port: 8472,
            },
        ] {
            let insns = assemble(filter, 3);
            let n = i64::try_from(insns.len()).unwrap();
            for (i, insn) in insns.iter().enumerate() {
                let class = insn.code & 0x07;
                let op = insn.code & 0xf0;
                if (class == JMP || class == JMP32) && op != CALL && op != EXIT {
                    let t = i64::try_from(i).unwrap() + 1 + i64::from(insn.off);
                    assert!((0..n).contains(&t), "{filter:?}: jump {i} -> {t}");
                }
            }
            assert_eq!(insns.last().unwrap().code, JMP | EXIT);
        }
    }
}
