//! `vxlan-demo`: a VM live-migrates mid-stream across a VXLAN fabric and
//! its TCP connection survives; the story is told as it happens.
//!
//! ```text
//! vxlan-demo [--mode vxlan|vlan] [--no-announce] [--flap] [--json] [--plot PATH]
//!            [--mib N] [--pause-ms N] [--migrate-at-ms N] [--rate-mbit N] [--app-mbit N]
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use vxlan_examples::demo::{run, Mode, Options};

const USAGE: &str =
    "usage: vxlan-demo [--mode vxlan|vlan] [--no-announce] [--flap] [--json] [--plot PATH]
                  [--mib N] [--pause-ms N] [--migrate-at-ms N] [--rate-mbit N] [--app-mbit N]

Three hosts with this library's VTEP, three underlay subnets joined by a
router, one VXLAN segment; a client VM streams over TCP to a server VM that
live-migrates from host 2 to host 3 mid-stream. All in one process on a
simulated clock: no root, no NIC, the same result every run.

  --mode vlan      the same on a VLAN trunk fabric (no overlay), for contrast
  --no-announce    the destination sends no RARP: watch the stale FDB entry
  --flap           the VM hops between hosts 2 and 3 until move dampening
                   freezes its MAC
  --json           print only a one-line JSON summary
  --plot PATH      where to write the goodput plot (SVG); default
                   target/vxlan-demo-<variant>.svg
  --mib N          MiB to stream (default 10)
  --pause-ms N     stop-and-copy pause (default 250)
  --migrate-at-ms N  when the migration starts (default 300)
  --rate-mbit N    the client VM's NIC rate (default 100)
  --app-mbit N     the client application's sending rate (default 60)";

struct Args {
    opts: Options,
    json: bool,
    plot: Option<PathBuf>,
}

fn number(args: &mut impl Iterator<Item = String>, key: &str) -> Result<u64, String> {
    let v = args.next().ok_or_else(|| format!("{key} needs a number"))?;
    v.parse()
        .map_err(|_| format!("{key}: '{v}' is not a whole number"))
}

fn parse_args() -> Result<Args, String> {
    let mut opts = Options::default();
    let mut json = false;
    let mut plot = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--mode" => {
                opts.mode = match args.next().as_deref() {
                    Some("vxlan") => Mode::Vxlan,
                    Some("vlan") => Mode::Vlan,
                    other => {
                        return Err(format!(
                            "--mode: expected vxlan or vlan, got {}",
                            other.unwrap_or("nothing")
                        ))
                    }
                }
            }
            "--no-announce" => opts.announce = false,
            "--flap" => opts.flap = true,
            "--json" => json = true,
            "--plot" => plot = Some(PathBuf::from(args.next().ok_or("--plot needs a path")?)),
            "--mib" => {
                let n = number(&mut args, "--mib")?;
                if !(1..=1024).contains(&n) {
                    return Err("--mib: choose 1 to 1024".into());
                }
                opts.bytes = n * 1024 * 1024;
            }
            "--pause-ms" => opts.pause_ms = number(&mut args, "--pause-ms")?,
            "--migrate-at-ms" => opts.migrate_at_ms = number(&mut args, "--migrate-at-ms")?,
            "--rate-mbit" => {
                opts.rate_mbit = number(&mut args, "--rate-mbit")?;
                if !(1..=100_000).contains(&opts.rate_mbit) {
                    return Err("--rate-mbit: choose 1 to 100000".into());
                }
            }
            "--app-mbit" => {
                opts.app_rate_mbit = number(&mut args, "--app-mbit")?;
                if !(1..=100_000).contains(&opts.app_rate_mbit) {
                    return Err("--app-mbit: choose 1 to 100000".into());
                }
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args { opts, json, plot })
}

/// `target/` of this workspace (or `CARGO_TARGET_DIR`).
fn default_plot(opts: &Options) -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
    let mut name = format!("vxlan-demo-{}", opts.mode.as_str());
    if !opts.announce {
        name.push_str("-no-announce");
    }
    if opts.flap {
        name.push_str("-flap");
    }
    dir.join(name + ".svg")
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("vxlan-demo: {e}");
            }
            eprintln!("{USAGE}");
            return if e.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    let report = if args.json {
        run(&args.opts, &mut std::io::sink())
    } else {
        run(&args.opts, &mut std::io::stdout().lock())
    };
    let path = args.plot.unwrap_or_else(|| default_plot(&args.opts));
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&path, report.svg()));
    let path = path.canonicalize().unwrap_or(path);
    if args.json {
        // A closed pipe (`| head`) is not an error worth a panic.
        let _ = writeln!(std::io::stdout(), "{}", report.json());
    } else {
        match &written {
            Ok(()) => {
                let _ = writeln!(std::io::stdout(), "  Plot: {}", path.display());
            }
            Err(e) => {
                let _ = writeln!(
                    std::io::stdout(),
                    "  Plot: could not write {}: {e}",
                    path.display()
                );
            }
        }
    }
    if let Err(e) = written {
        eprintln!("vxlan-demo: writing the plot to {}: {e}", path.display());
    }
    if report.buffers_leaked != 0 {
        eprintln!(
            "vxlan-demo: {} pool buffers were not returned",
            report.buffers_leaked
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
