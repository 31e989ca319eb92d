//! The `vtep` daemon on DPDK net_pcap ports (feature `dpdk`): tenant
//! frames in through the access port's capture come out of the uplink's
//! encapsulated, and VXLAN frames in through the uplink come out of the
//! access port decapsulated, checked field by field with our parser and
//! with tshark; every mbuf is back in the mempool at the end. A device EAL
//! does not have is refused with the port's key named.

use std::path::{Path, PathBuf};
use std::process::Command;

use vxlan_core::encap::{EncapConfig, EncapTemplate};
use vxlan_core::frame::{BufFrame, Frame};
use vxlan_core::tunnel::{parse_single, ParseConfig};
use vxlan_core::wire::MacAddr;
use vxlan_pmd::pcap::{read_file, PcapWriter};

const VM_A: [u8; 6] = [2, 0, 0, 0, 0xaa, 1];
const VM_B: [u8; 6] = [2, 0, 0, 0, 0xbb, 2];
const FRAMES: u32 = 50;

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vtep-dpdk-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut w = PcapWriter::new(std::fs::File::create(path).unwrap()).unwrap();
    for (i, f) in frames.iter().enumerate() {
        w.write_packet(1_700_000_000_000_000 + i as u64, f).unwrap();
    }
    w.into_inner().unwrap();
}

/// A tenant IPv4/UDP frame whose payload starts with `seq`.
fn tenant(src: [u8; 6], dst: [u8; 6], seq: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip_len = u16::try_from(len - 14).unwrap();
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
    ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
    let mut sum = 0u32;
    for w in ip.chunks(2) {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!u16::try_from(sum).unwrap()).to_be_bytes());
    let udp_len = ip_len - 20;
    f[34..36].copy_from_slice(&(1000 + u16::try_from(seq).unwrap()).to_be_bytes());
    f[36..38].copy_from_slice(&2000u16.to_be_bytes());
    f[38..40].copy_from_slice(&udp_len.to_be_bytes());
    f[42..46].copy_from_slice(&seq.to_be_bytes());
    f
}

fn config(dir: &Path, uplink_device: &str) -> String {
    let d = dir.display();
    format!(
        r#"
        [vtep]
        local_ip = "192.0.2.2"
        mac = "02:00:00:00:00:02"
        [underlay]
        port = "uplink"
        gateway_mac = "02:00:00:00:00:01"
        [dpdk]
        eal_args = ["-l", "0-1", "--no-huge", "--no-pci", "--no-shconf", "--log-level=error",
            "--vdev=net_pcap0,rx_pcap={d}/uplink-in.pcap,tx_pcap={d}/uplink-out.pcap",
            "--vdev=net_pcap1,rx_pcap={d}/vm-in.pcap,tx_pcap={d}/vm-out.pcap"]
        mbufs = 2047
        [[port]]
        name = "uplink"
        kind = "dpdk"
        device = "{uplink_device}"
        [[port]]
        name = "vm"
        kind = "dpdk"
        device = "net_pcap1"
        access = {{ vni = 100 }}
        [[vni]]
        id = 100
        flood = ["192.0.2.1", "192.0.2.3"]
        [[fdb]]
        vni = 100
        mac = "02:00:00:00:bb:02"
        remote = "192.0.2.1"
        "#
    )
}

fn tshark_fields(file: &Path, fields: &[&str]) -> Option<Vec<Vec<String>>> {
    if !Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return None;
    }
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(file).args([
        "-o",
        "ip.check_checksum:TRUE",
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Some(
        String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .map(|l| l.split('|').map(str::to_string).collect())
            .collect(),
    )
}

#[test]
fn pcap_vdevs_encap_and_decap_through_the_daemon() {
    let dir = tmpdir("pcap");
    std::fs::write(dir.join("vtep.toml"), config(&dir, "net_pcap0")).unwrap();
    // Tenant frames from VM A (on our access port) to VM B (a static entry
    // behind 192.0.2.1).
    let tenant_in: Vec<Vec<u8>> = (0..FRAMES)
        .map(|i| tenant(VM_A, VM_B, i, 64 + i as usize))
        .collect();
    write_pcap(&dir.join("vm-in.pcap"), &tenant_in);
    // VXLAN frames from 192.0.2.1 carrying frames from B to A.
    let remote = EncapTemplate::new(&EncapConfig::new(
        "192.0.2.1".parse().unwrap(),
        "192.0.2.2".parse().unwrap(),
        MacAddr([2, 0, 0, 0, 0, 1]),
        MacAddr([2, 0, 0, 0, 0, 2]),
    ))
    .unwrap();
    let inner_back: Vec<Vec<u8>> = (0..FRAMES)
        .map(|i| tenant(VM_B, VM_A, 1000 + i, 80))
        .collect();
    let underlay_in: Vec<Vec<u8>> = inner_back
        .iter()
        .map(|f| {
            let mut b = BufFrame::with_data(vec![0u8; 512], 128, f).unwrap();
            remote.encap_flow(&mut b, 100).unwrap();
            b.data().to_vec()
        })
        .collect();
    write_pcap(&dir.join("uplink-in.pcap"), &underlay_in);

    let out = Command::new(env!("CARGO_BIN_EXE_vtep"))
        .args(["--config"])
        .arg(dir.join("vtep.toml"))
        .args(["--dump-json"])
        .arg(dir.join("dump.json"))
        .args(["--exit-when-idle-ms", "300", "--run-secs", "60"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "vtep failed: {stderr}");
    eprintln!("{stderr}");

    // Encapsulated, one per tenant frame, in order, toward 192.0.2.1 only.
    let sent = read_file(dir.join("uplink-out.pcap")).unwrap();
    assert_eq!(sent.len(), tenant_in.len());
    for (p, inner) in sent.iter().zip(&tenant_in) {
        let one = parse_single(&p.data, &ParseConfig::default())
            .unwrap()
            .unwrap();
        let l = one.layer();
        assert_eq!(l.src_addr().to_string(), "192.0.2.2");
        assert_eq!(l.dst_addr().to_string(), "192.0.2.1");
        assert_eq!((l.dst_port(), one.vni()), (4789, 100));
        assert!((49152..=65535).contains(&l.src_port()));
        assert_eq!(l.src_mac(), MacAddr([2, 0, 0, 0, 0, 2]));
        assert_eq!(l.dst_mac(), MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(one.inner().bytes(), &inner[..]);
    }
    // Decapsulated: the inner frames, byte for byte, in order.
    let delivered = read_file(dir.join("vm-out.pcap")).unwrap();
    assert_eq!(delivered.len(), inner_back.len());
    for (p, inner) in delivered.iter().zip(&inner_back) {
        assert_eq!(&p.data, inner);
    }

    let dump: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("dump.json")).unwrap()).unwrap();
    let c = &dump["counters"];
    assert_eq!(c["rx"], 2 * FRAMES);
    assert_eq!(c["tx_remote"], FRAMES);
    assert_eq!(c["tx_local"], FRAMES);
    assert!(
        c["drops"].as_object().unwrap().values().all(|v| v == 0),
        "no drops: {}",
        c["drops"]
    );
    for p in dump["ports"].as_array().unwrap() {
        assert_eq!(p["rx"], FRAMES, "{p}");
        assert_eq!(p["tx"], FRAMES, "{p}");
        assert_eq!(p["tx_dropped"], 0, "{p}");
        assert_eq!(p["driver_ipackets"], FRAMES, "{p}");
        assert_eq!(p["driver_opackets"], FRAMES, "{p}");
        // net_pcap offers no transmit checksum offload: the checksums
        // tshark verifies below are the encapsulation's own.
        assert_eq!(p["offloads"]["tx_ipv4_checksum"], false, "{p}");
        assert_eq!(p["tx_ipv4_checksum_offloaded"], 0, "{p}");
    }
    assert_eq!(
        dump["mempool"]["in_use"], 0,
        "every mbuf back in the mempool"
    );
    let fdb = dump["fdb"].as_array().unwrap();
    let find = |mac: [u8; 6]| {
        fdb.iter()
            .find(|e| e["mac"] == MacAddr(mac).to_string())
            .cloned()
            .unwrap()
    };
    assert_eq!(find(VM_A)["location"]["port"], "vm");
    // `-l 0-1`: the one worker ran on EAL's worker lcore 1.
    assert_eq!(
        dump["workers"]["on_eal_lcores"], true,
        "{}",
        dump["workers"]
    );
    assert_eq!(dump["workers"]["lcores"], serde_json::json!([1]));

    // tshark, field by field: outer Ethernet, IPv4 (checksum verified),
    // UDP, VXLAN, and the inner Ethernet / IPv4 / UDP.
    let Some(rows) = tshark_fields(
        &dir.join("uplink-out.pcap"),
        &[
            "eth.src",
            "eth.dst",
            "ip.src",
            "ip.dst",
            "ip.checksum.status",
            "ip.ttl",
            "udp.srcport",
            "udp.dstport",
            "vxlan.flags",
            "vxlan.vni",
            "udp.length",
        ],
    ) else {
        eprintln!("SKIP (tshark part): tshark not installed");
        let _ = std::fs::remove_dir_all(&dir);
        return;
    };
    assert_eq!(rows.len(), tenant_in.len());
    for (i, row) in rows.iter().enumerate() {
        let seq = u16::try_from(i).unwrap();
        assert_eq!(row[0], "02:00:00:00:00:02,02:00:00:00:aa:01", "{row:?}");
        assert_eq!(row[1], "02:00:00:00:00:01,02:00:00:00:bb:02", "{row:?}");
        assert_eq!(row[2], "192.0.2.2,10.0.0.1", "{row:?}");
        assert_eq!(row[3], "192.0.2.1,10.0.0.2", "{row:?}");
        assert_eq!(row[4], "1,1", "both IPv4 checksums good: {row:?}");
        let sport: Vec<u32> = row[6].split(',').map(|p| p.parse().unwrap()).collect();
        assert!((49152..=65535).contains(&sport[0]), "{row:?}");
        assert_eq!(sport[1], 1000 + u32::from(seq));
        assert_eq!(row[7], "4789,2000", "{row:?}");
        assert_eq!(row[8], "0x0800", "the I flag only: {row:?}");
        assert_eq!(row[9], "100", "{row:?}");
        // Outer UDP length = 8 + 8 + inner frame; inner = its IP payload.
        let inner_len = 64 + usize::from(seq);
        assert_eq!(
            row[10],
            format!("{},{}", 16 + inner_len, inner_len - 34),
            "{row:?}"
        );
    }
    let rows = tshark_fields(
        &dir.join("vm-out.pcap"),
        &["eth.src", "eth.dst", "ip.src", "udp.srcport", "vxlan.vni"],
    )
    .unwrap();
    assert_eq!(rows.len(), inner_back.len());
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(
            row,
            &[
                "02:00:00:00:bb:02".to_string(),
                "02:00:00:00:aa:01".to_string(),
                "10.0.0.1".to_string(),
                format!("{}", 1000 + 1000 + i),
                String::new(),
            ],
            "decapsulated: no VXLAN layer left"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_device_eal_does_not_have_and_bad_eal_args_are_refused_with_the_key() {
    let dir = tmpdir("nodev");
    write_pcap(&dir.join("uplink-in.pcap"), &[]);
    write_pcap(&dir.join("vm-in.pcap"), &[]);
    // Runs the daemon on `cfg`, which must fail; its stderr.
    let refused = |cfg: String| {
        std::fs::write(dir.join("vtep.toml"), cfg).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_vtep"))
            .arg("--config")
            .arg(dir.join("vtep.toml"))
            .args(["--run-secs", "5"])
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let stderr = refused(config(&dir, "net_pcap7"));
    assert!(
        stderr.contains("port[0].device: port net_pcap7: no such device"),
        "{stderr}"
    );
    // EAL refusing its arguments is reported against dpdk.eal_args, with
    // DPDK's reason.
    let stderr =
        refused(config(&dir, "net_pcap0").replace("\"--no-pci\",", "\"--no-such-eal-option\","));
    assert!(
        stderr.contains("dpdk.eal_args: rte_eal_init: Invalid argument"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_stops_a_busy_daemon_cleanly_and_vtepctl_works_meanwhile() {
    // net_null ports receive all-zero frames as fast as the loop polls:
    // every one is accounted for (zero source MAC; not VXLAN for us), and
    // SIGTERM still ends the run with the ports closed and counters dumped.
    let dir = tmpdir("sigterm");
    let cfg = config(&dir, "net_null0")
        .replace(
            &format!(
                "\"--vdev=net_pcap0,rx_pcap={d}/uplink-in.pcap,tx_pcap={d}/uplink-out.pcap\"",
                d = dir.display()
            ),
            "\"--vdev=net_null0\"",
        )
        .replace(
            &format!(
                "\"--vdev=net_pcap1,rx_pcap={d}/vm-in.pcap,tx_pcap={d}/vm-out.pcap\"",
                d = dir.display()
            ),
            "\"--vdev=net_null1\"",
        )
        .replace("device = \"net_pcap1\"", "device = \"net_null1\"")
        // One EAL lcore only: two workers run as EAL-registered threads,
        // one queue of each port each.
        .replace("\"-l\", \"0-1\"", "\"-l\", \"0\"")
        .replace("[underlay]", "workers = 2\n[underlay]");
    let sock = dir.join("ctl.sock");
    let cfg = cfg.replace(
        "mac = \"02:00:00:00:00:02\"\n",
        &format!(
            "mac = \"02:00:00:00:00:02\"\ncontrol_socket = \"{}\"\n",
            sock.display()
        ),
    );
    assert!(cfg.contains("control_socket"));
    std::fs::write(dir.join("vtep.toml"), cfg).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_vtep"))
        .arg("--config")
        .arg(dir.join("vtep.toml"))
        .arg("--dump-json")
        .arg(dir.join("dump.json"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The control socket works while the DPDK workers run: a static entry
    // added with vtepctl is in the FDB the daemon dumps at the end.
    let ctl = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_vtepctl"))
            .arg("--socket")
            .arg(&sock)
            .args(args)
            .output()
            .unwrap()
    };
    let mut added = false;
    for _ in 0..100 {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let o = ctl(&[
            "fdb",
            "add",
            "--vni",
            "100",
            "--mac",
            "02:00:00:00:cc:03",
            "--remote",
            "192.0.2.3",
        ]);
        if o.status.success() {
            added = true;
            break;
        }
    }
    assert!(added, "vtepctl reached the DPDK daemon");
    assert!(ctl(&["stats", "--json"]).status.success());
    std::thread::sleep(std::time::Duration::from_millis(500));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "vtep after SIGTERM: {stderr}");
    let dump: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("dump.json")).unwrap()).unwrap();
    let rx = dump["counters"]["rx"].as_u64().unwrap();
    let drops: u64 = dump["counters"]["drops"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert!(rx > 1000, "it was busy: {rx}");
    // From the access port: a drop (zero source MAC); from the uplink: not
    // VXLAN, the host's (which this VTEP has none of).
    let host = dump["counters"]["host"].as_u64().unwrap();
    assert_eq!(
        dump["counters"]["drops"]["bad_source_mac"]
            .as_u64()
            .unwrap(),
        drops,
        "{}",
        dump["counters"]
    );
    assert!(drops > 0 && host > 0, "{}", dump["counters"]);
    assert_eq!(
        drops + host,
        rx,
        "every frame accounted for: {}",
        dump["counters"]
    );
    assert_eq!(
        dump["mempool"]["in_use"], 0,
        "every mbuf back in the mempool"
    );
    assert_eq!(
        dump["workers"]["on_eal_lcores"], false,
        "{}",
        dump["workers"]
    );
    let lcores = dump["workers"]["lcores"].as_array().unwrap();
    assert_eq!(lcores.len(), 2);
    assert_ne!(lcores[0], lcores[1]);
    let added = dump["fdb"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["mac"] == "02:00:00:00:cc:03")
        .cloned()
        .expect("the entry vtepctl added");
    assert_eq!(added["location"]["remote"], "192.0.2.3");
    assert!(!sock.exists(), "the control socket is removed at exit");
    let _ = std::fs::remove_dir_all(&dir);
}
