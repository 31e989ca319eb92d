//! Finds the system DPDK with pkg-config, generates bindings for the part
//! of its API the VTEP uses, and compiles the static-inline shim.

use std::env;
use std::path::PathBuf;

const MISSING: &str = "\n\ndpdk-sys: the system DPDK was not found by pkg-config (libdpdk).\n\
    Install it, with the tools bindgen needs:\n\n    \
    sudo apt-get install libdpdk-dev libclang-dev clang pkg-config\n\n\
    (Debian 12 ships DPDK 22.11 LTS) or build without the `dpdk` feature.\n";

fn main() {
    println!("cargo:rerun-if-changed=shim/shim.c");
    println!("cargo:rerun-if-changed=shim/shim.h");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let dpdk = match pkg_config::Config::new()
        .atleast_version("22.11")
        .probe("libdpdk")
    {
        Ok(lib) => lib,
        Err(e) => panic!("{MISSING}\npkg-config said: {e}\n"),
    };

    // pkg-config's cflags carry `-include rte_config.h` and `-march`, which
    // the shim and clang both need to see the same struct layouts.
    let cflags = pkg_config::get_variable("libdpdk", "cflags").unwrap_or_default();
    let mut clang_args: Vec<String> = dpdk
        .include_paths
        .iter()
        .map(|p| format!("-I{}", p.display()))
        .collect();
    let mut extra: Vec<String> = Vec::new();
    let flags = std::process::Command::new("pkg-config")
        .args(["--cflags-only-other", "libdpdk"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or(cflags);
    let mut it = flags.split_whitespace();
    while let Some(f) = it.next() {
        if f == "-include" {
            if let Some(h) = it.next() {
                extra.push("-include".into());
                extra.push(h.into());
            }
        } else if f.starts_with("-march") || f.starts_with("-m") || f.starts_with("-D") {
            extra.push(f.into());
        }
    }
    clang_args.extend(extra.iter().cloned());

    let mut build = cc::Build::new();
    build.file("shim/shim.c").include("shim").opt_level(3);
    for p in &dpdk.include_paths {
        build.include(p);
    }
    for f in &extra {
        build.flag(f);
    }
    // DPDK's headers use GNU extensions and trip -Wall in places.
    build.warnings(false).compile("vxd_shim");

    let bindings = bindgen::Builder::default()
        .header("shim/shim.h")
        .clang_args(&clang_args)
        .clang_arg("-Ishim")
        .allowlist_function("vxd_.*")
        .allowlist_var("VXD_.*")
        .allowlist_function("rte_eal_init")
        .allowlist_function("rte_eal_cleanup")
        .allowlist_function("rte_strerror")
        .allowlist_function("rte_socket_id")
        .allowlist_function("rte_lcore_count")
        .allowlist_function("rte_thread_register")
        .allowlist_function("rte_thread_unregister")
        .allowlist_function("rte_eal_remote_launch")
        .allowlist_function("rte_eal_wait_lcore")
        .allowlist_function("rte_eal_mp_wait_lcore")
        .allowlist_function("rte_get_next_lcore")
        .allowlist_function("rte_pktmbuf_pool_create")
        .allowlist_function("rte_mempool_free")
        .allowlist_function("rte_mempool_lookup")
        .allowlist_function("rte_eth_dev_count_avail")
        .allowlist_function("rte_eth_dev_get_port_by_name")
        .allowlist_function("rte_eth_dev_info_get")
        .allowlist_function("rte_eth_dev_configure")
        .allowlist_function("rte_eth_rx_queue_setup")
        .allowlist_function("rte_eth_dev_adjust_nb_rx_tx_desc")
        .allowlist_function("rte_eth_tx_queue_setup")
        .allowlist_function("rte_eth_dev_start")
        .allowlist_function("rte_eth_dev_stop")
        .allowlist_function("rte_eth_dev_close")
        .allowlist_function("rte_eth_dev_socket_id")
        .allowlist_function("rte_eth_promiscuous_enable")
        .allowlist_function("rte_eth_macaddr_get")
        .allowlist_function("rte_eth_stats_get")
        .allowlist_function("rte_eth_stats_reset")
        .allowlist_type("rte_eth_conf")
        .allowlist_type("rte_eth_dev_info")
        .allowlist_type("rte_eth_stats")
        .allowlist_type("rte_ether_addr")
        .allowlist_var("RTE_ETH_RX_OFFLOAD_.*")
        .allowlist_var("RTE_ETH_TX_OFFLOAD_.*")
        .allowlist_var("RTE_ETH_MQ_RX_.*")
        .allowlist_var("RTE_MAX_ETHPORTS")
        .allowlist_var("RTE_MAX_LCORE")
        .allowlist_var("RTE_MEMPOOL_CACHE_MAX_SIZE")
        // The mbuf's layout is bound so the hot accessors (data offset and
        // lengths) compile to plain loads; the mempool is used through the
        // shim only.
        .allowlist_type("rte_mbuf")
        .opaque_type("rte_mempool")
        .use_core()
        .derive_default(true)
        // Compile-time size and offset checks of every bound struct.
        .layout_tests(true)
        .generate_comments(false)
        .prepend_enum_name(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .unwrap_or_else(|e| {
            panic!(
                "dpdk-sys: bindgen could not read the DPDK headers ({e}).\n\
                 It needs libclang: sudo apt-get install libclang-dev clang\n"
            )
        });
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("write bindings.rs");

    // The poll-mode drivers (net_null, net_pcap, ...) are plugins EAL loads
    // from its driver directory at start-up; the ring PMD is also linked
    // directly for rte_eth_from_rings in tests.
    println!("cargo:rustc-link-lib=dylib=rte_net_ring");
}
