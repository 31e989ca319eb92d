//! `tcp-verify`: a byte-verified TCP transfer for the interop tests.
//!
//! ```text
//! tcp-verify recv LISTEN_ADDR:PORT BYTES [--timeout SECS]
//! tcp-verify send ADDR:PORT BYTES [--timeout SECS]
//! ```
//!
//! The sender writes `BYTES` bytes of a deterministic pattern (byte `i`
//! is a function of `i` alone) and closes; the receiver checks every byte
//! against the same pattern and prints one line of JSON:
//! `{"bytes":N,"ok":true,"first_bad":null,"max_stall_ms":M,"secs":S}`,
//! where `max_stall_ms` is the longest wait between two reads (the
//! interruption a live migration causes). The receiver prints
//! `listening` on stderr once bound; the sender retries connecting until
//! the timeout. Exit status 0 only when exactly `BYTES` correct bytes
//! arrived (receiver) or were written (sender).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Byte `i` of the stream: mixes all bytes of the offset so that a
/// dropped, repeated or reordered segment shows at once.
fn pattern(i: u64) -> u8 {
    let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (x >> 56).to_le_bytes()[0] ^ i.to_le_bytes()[0]
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("tcp-verify: {msg}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: tcp-verify (send|recv) ADDR:PORT BYTES [--timeout SECS]";
    if args.len() < 3 {
        return fail(usage);
    }
    let Ok(addr) = args[1].parse::<SocketAddr>() else {
        return fail(format!("bad address {}\n{usage}", args[1]));
    };
    let Ok(total) = args[2].parse::<u64>() else {
        return fail(format!("bad byte count {}\n{usage}", args[2]));
    };
    let mut timeout = 120u64;
    if let Some(i) = args.iter().position(|a| a == "--timeout") {
        match args.get(i + 1).and_then(|t| t.parse().ok()) {
            Some(t) => timeout = t,
            None => return fail(usage),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(timeout);
    match args[0].as_str() {
        "send" => send(addr, total, deadline),
        "recv" => recv(addr, total, deadline),
        _ => fail(usage),
    }
}

fn send(addr: SocketAddr, total: u64, deadline: Instant) -> ExitCode {
    let mut stream = loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(s) => break s,
            Err(e) if Instant::now() >= deadline => return fail(format!("connect {addr}: {e}")),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    let left = deadline.saturating_duration_since(Instant::now());
    let _ = stream.set_write_timeout(Some(left.max(Duration::from_secs(1))));
    let mut buf = vec![0u8; 64 * 1024];
    let mut off = 0u64;
    while off < total {
        let n = usize::try_from((total - off).min(64 * 1024)).unwrap_or(buf.len());
        for (j, b) in buf[..n].iter_mut().enumerate() {
            *b = pattern(off + u64::try_from(j).unwrap_or(0));
        }
        if let Err(e) = stream.write_all(&buf[..n]) {
            return fail(format!("write after {off} bytes: {e}"));
        }
        off += u64::try_from(n).unwrap_or(0);
    }
    if let Err(e) = stream.shutdown(std::net::Shutdown::Write) {
        return fail(format!("shutdown: {e}"));
    }
    // Wait for the receiver to close, so every byte was taken.
    let _ = stream.read(&mut buf);
    println!("{{\"sent\":{off}}}");
    ExitCode::SUCCESS
}

fn recv(addr: SocketAddr, total: u64, deadline: Instant) -> ExitCode {
    let listener = match TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) => return fail(format!("bind {addr}: {e}")),
    };
    eprintln!("listening");
    let (mut stream, _) = match listener.accept() {
        Ok(s) => s,
        Err(e) => return fail(format!("accept: {e}")),
    };
    let left = deadline.saturating_duration_since(Instant::now());
    let _ = stream.set_read_timeout(Some(left.max(Duration::from_secs(1))));
    let start = Instant::now();
    let mut last = Instant::now();
    let mut max_stall = Duration::ZERO;
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0u64;
    let mut first_bad: Option<u64> = None;
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                eprintln!("tcp-verify: read after {got} bytes: {e}");
                break;
            }
        };
        let now = Instant::now();
        max_stall = max_stall.max(now - last);
        last = now;
        if first_bad.is_none() {
            if let Some(j) = buf[..n]
                .iter()
                .enumerate()
                .position(|(j, b)| *b != pattern(got + u64::try_from(j).unwrap_or(0)))
            {
                first_bad = Some(got + u64::try_from(j).unwrap_or(0));
            }
        }
        got += u64::try_from(n).unwrap_or(0);
    }
    let ok = got == total && first_bad.is_none();
    println!(
        "{{\"bytes\":{got},\"ok\":{ok},\"first_bad\":{},\"max_stall_ms\":{},\"secs\":{:.3}}}",
        first_bad.map_or("null".to_string(), |b| b.to_string()),
        max_stall.as_millis(),
        start.elapsed().as_secs_f64()
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
