//! The VM-mobility demo, checked: a real TCP stream (smoltcp on both VMs)
//! across three VTEPs survives a live migration byte for byte; without an
//! announcement the outage lasts until the stale FDB entry ages out; the
//! same works on a VLAN fabric; a flapping MAC gets frozen; the binary's
//! `--json` output parses and its plot is written. Simulated time, so every
//! figure is deterministic.

use std::process::Command;

use vxlan_examples::demo::{run, Mode, Options, Report, AGEING_S};

fn demo(opts: Options) -> Report {
    let mut story = Vec::new();
    let r = run(&opts, &mut story);
    let story = String::from_utf8(story).unwrap();
    assert!(story.contains("MIGRATION: server VM paused"), "{story}");
    r
}

/// smoltcp 0.12 (the VMs' TCP) estimates an RTO of 40 to 55 ms on this
/// fabric and, once timeouts start, doubles its RTT estimate after every
/// third one in a row; over a 250 ms pause its retransmission interval stays
/// below 100 ms. The RARP re-points every FDB the moment the VM resumes, so
/// the first retransmission after the resume gets through: the stream
/// stalls for the pause plus at most one retransmission interval.
const RETRANSMIT_SLACK_MS: f64 = 100.0;

fn assert_intact(r: &Report) {
    assert!(r.completed, "the transfer finished");
    assert!(
        r.bytes_sent >= 10_000_000,
        "at least 10 MB: {}",
        r.bytes_sent
    );
    assert_eq!(r.bytes_verified, r.bytes_sent, "every byte, in order");
    assert_eq!(r.first_mismatch, None);
    assert_eq!(r.tcp_resets, 0, "the connection was never reset");
    assert_eq!(r.buffers_leaked, 0, "every pool buffer came back");
}

fn bridge<'r>(r: &'r Report, name: &str) -> &'r vxlan_examples::demo::BridgeSummary {
    r.bridges.iter().find(|b| b.name == name).unwrap()
}

#[test]
fn migration_over_vxlan_keeps_every_byte() {
    let opts = Options::default();
    let r = demo(opts);
    assert_intact(&r);
    // Every VTEP that knew where the server was before the migration moved
    // it; here those are host 1 (the client's) and host 2 (the old host).
    let knew: Vec<_> = r.bridges.iter().filter(|b| b.knew_server).collect();
    assert_eq!(knew.len(), 2, "{:?}", r.bridges);
    for b in &knew {
        assert!(b.moves >= 1, "{} never moved the VM's MAC", b.name);
    }
    assert_eq!(r.fdb_freezes, 0);
    // The stream stopped at least for the pause, and not much longer.
    let pause = f64::from(u32::try_from(opts.pause_ms).unwrap());
    assert!(r.interruption_ms >= pause - 1.0, "{}", r.interruption_ms);
    assert!(
        r.interruption_ms < pause + RETRANSMIT_SLACK_MS,
        "interruption {} ms",
        r.interruption_ms
    );
    // TCP bridged the gap by retransmitting; the frames sent toward the old
    // host while the VM was away were lost there.
    assert!(r.retransmissions > 0);
    assert!(r.lost_at_old_port > 0);
    // Flooding only for the first ARP and the RARP: everything else unicast.
    // The only drops: a retransmission that reached host 2 after it had
    // learned the VM's new place is not sent back into the overlay.
    let split_horizon = vxlan_pmd::vtep::DROP_NAMES
        .iter()
        .position(|n| *n == "split_horizon")
        .unwrap();
    for b in &r.bridges {
        assert!(b.stats.flooded <= 3, "{}: {:?}", b.name, b.stats);
        assert_eq!(
            b.stats.drops(),
            b.stats.drop_bridge[split_horizon],
            "{}: {:?}",
            b.name,
            b.stats
        );
    }
    // The same inputs give the same run.
    assert_eq!(demo(opts).json(), r.json());
}

#[test]
fn without_announcement_the_outage_lasts_until_the_stale_entry_ages() {
    let opts = Options {
        announce: false,
        ..Options::default()
    };
    let r = demo(opts);
    // The stream still completes, on the same connection.
    assert_intact(&r);
    // Host 1 keeps sending to host 2, where the VM is gone. Its entry for
    // the server was last refreshed at the pause; nothing re-teaches it
    // (the server only answers what reaches it, and host 1's ARP
    // suppression answers the client's ARP refreshes itself), so it ages out
    // AGEING_S later, at the next one-second sweep; then the client's next
    // retransmission or ARP request floods, reaches host 3, and the
    // server's answer teaches host 1 its new place. smoltcp caps its RTO at
    // 10 s, so that takes at most 10 s more.
    let ageing = f64::from(AGEING_S) * 1000.0;
    assert!(
        r.interruption_ms > ageing - 1000.0 && r.interruption_ms < ageing + 12_000.0,
        "interruption {} ms",
        r.interruption_ms
    );
    let normal = demo(Options::default());
    assert!(r.interruption_ms > 100.0 * normal.interruption_ms);
    assert!(r.lost_at_old_port > normal.lost_at_old_port);
}

#[test]
fn the_same_migration_on_a_vlan_fabric() {
    let opts = Options {
        mode: Mode::Vlan,
        ..Options::default()
    };
    let r = demo(opts);
    assert_intact(&r);
    // On one L2 fabric the core switch and the old host's switch move the
    // MAC; host 1's switch still sees it behind its uplink trunk.
    assert!(bridge(&r, "core switch").moves >= 1);
    assert!(bridge(&r, "host 2 switch").moves >= 1);
    assert_eq!(bridge(&r, "host 1 switch").moves, 0);
    let pause = f64::from(u32::try_from(opts.pause_ms).unwrap());
    assert!(r.interruption_ms < pause + RETRANSMIT_SLACK_MS);
    for b in &r.bridges {
        assert_eq!(b.stats.tx_remote, 0, "no VXLAN in VLAN mode");
    }
}

#[test]
fn a_flapping_mac_is_frozen_by_move_dampening() {
    let r = demo(Options {
        flap: true,
        ..Options::default()
    });
    // Five moves within the window freeze the MAC on every VTEP; the sixth
    // hop is refused and the stream stalls until the entry ages out, then
    // completes on the same connection.
    for b in &r.bridges {
        assert!(b.moves >= 5, "{}: {} moves", b.name, b.moves);
        assert_eq!(b.freezes, 1, "{}", b.name);
    }
    assert!(bridge(&r, "host 1 VTEP").frozen_refused >= 1);
    assert_intact(&r);
    assert!(r.interruption_ms > 100_000.0, "{}", r.interruption_ms);
}

#[test]
fn the_binary_prints_parsable_json_and_writes_its_plot() {
    let dir = std::env::temp_dir().join(format!("vxlan-demo-test-{}", std::process::id()));
    let plot = dir.join("plot.svg");
    let out = Command::new(env!("CARGO_BIN_EXE_vxlan-demo"))
        .args(["--json", "--mode", "vlan", "--mib", "4", "--plot"])
        .arg(&plot)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "one JSON line: {text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["mode"], "vlan");
    assert_eq!(v["bytes_sent"], 4 * 1024 * 1024);
    assert_eq!(v["bytes_verified"], v["bytes_sent"]);
    assert_eq!(v["tcp_resets"], 0);
    assert!(v["interruption_ms"].as_f64().unwrap() >= 250.0);
    assert!(v["fdb_moves"].as_u64().unwrap() >= 2);
    assert!(v["retransmissions"].as_u64().unwrap() > 0);
    let svg = std::fs::read_to_string(&plot).unwrap();
    for label in [
        "<svg",
        "simulated time (ms)",
        "goodput (Mbit/s)",
        "VM paused",
        "no data for",
    ] {
        assert!(svg.contains(label), "plot lacks {label}");
    }
    std::fs::remove_dir_all(&dir).unwrap();

    let bad = Command::new(env!("CARGO_BIN_EXE_vxlan-demo"))
        .args(["--mode", "token-ring"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--mode: expected vxlan or vlan"));
}
