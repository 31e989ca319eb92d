//! With the `dpdk` feature, compiles the C io-forward peer of the DPDK
//! benchmark (`dpdk_io_fwd.c`) against the system DPDK; otherwise nothing.

fn main() {
    println!("cargo:rerun-if-changed=dpdk_io_fwd.c");
    if std::env::var_os("CARGO_FEATURE_DPDK").is_none() {
        return;
    }
    let dpdk = pkg_config::Config::new()
        .cargo_metadata(false)
        .probe("libdpdk")
        .expect("the dpdk feature needs the system DPDK: apt-get install libdpdk-dev pkg-config");
    let mut b = cc::Build::new();
    b.file("dpdk_io_fwd.c").opt_level(3).warnings(false);
    for p in &dpdk.include_paths {
        b.include(p);
    }
    let other = std::process::Command::new("pkg-config")
        .args(["--cflags-only-other", "libdpdk"])
        .output()
        .expect("pkg-config runs");
    let other = String::from_utf8_lossy(&other.stdout).into_owned();
    let mut it = other.split_whitespace();
    while let Some(f) = it.next() {
        if f == "-include" {
            if let Some(h) = it.next() {
                b.flag("-include").flag(h);
            }
        } else if f.starts_with("-m") || f.starts_with("-D") {
            b.flag(f);
        }
    }
    b.compile("vxb_io_fwd");
}
