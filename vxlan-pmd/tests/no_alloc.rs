//! The packet path does not allocate: pool alloc and free, bursts through
//! in-memory ports, and transmitting into a capture file are checked under
//! a global allocator that counts every allocation made by this thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use vxlan_core::frame::Frame;
use vxlan_pmd::memport;
use vxlan_pmd::pool::Pool;
use vxlan_pmd::port::{Burst, Port};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator, which
// upholds GlobalAlloc's contract; the thread-local counter does not
// allocate (a const-initialised Cell).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|a| a.set(a.get() + 1));
        // SAFETY: same layout the caller gave us, per GlobalAlloc's contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|a| a.set(a.get() + 1));
        // SAFETY: forwarded unchanged; `ptr` came from `System` with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCS.with(Cell::get)
}

/// Runs `f` and returns how many allocations it made on this thread.
fn count(f: impl FnOnce()) -> u64 {
    let before = allocations();
    f();
    allocations() - before
}

#[test]
fn pool_alloc_copy_and_free_do_not_allocate() {
    let pool = Pool::new(64, 2048, 128).unwrap();
    let mut held = Vec::with_capacity(64);
    let n = count(|| {
        for round in 0..1000u32 {
            let mut p = pool.alloc_with(&[0xab; 100]).unwrap();
            p.prepend(50).unwrap().fill(0);
            p.strip(50).unwrap();
            let copy = pool.alloc_copy(&p).unwrap();
            held.push(p);
            held.push(copy);
            if round % 16 == 15 {
                held.clear();
            }
        }
        held.clear();
        assert!(pool.alloc_with(&[0; 4096]).is_none());
    });
    assert_eq!(n, 0);
    assert_eq!(pool.available(), pool.capacity());
}

#[test]
fn memport_bursts_do_not_allocate() {
    let pool = Pool::new(256, 2048, 128).unwrap();
    let (mut a, mut b) = memport::pair(pool.clone(), "a", "b", 32);
    let mut burst = Burst::new();
    let n = count(|| {
        for _ in 0..200 {
            while !burst.is_full() {
                let Some(p) = pool.alloc_with(&[1; 64]) else {
                    break;
                };
                if burst.push(p).is_err() {
                    break;
                }
            }
            a.tx_burst(0, &mut burst); // half of them overflow the ring
            b.rx_burst(0, &mut burst, 64);
            b.tx_burst(0, &mut burst);
            a.rx_burst(0, &mut burst, 64);
            burst.clear();
        }
    });
    assert_eq!(n, 0);
    assert!(a.stats().tx_dropped > 0);
    assert_eq!(pool.available(), pool.capacity());
}

#[test]
fn the_counter_counts() {
    let n = count(|| {
        std::hint::black_box(vec![1u8; 10]);
    });
    assert_eq!(n, 1);
}

#[test]
fn pcap_port_replay_allocates_only_while_warming_up() {
    use vxlan_pmd::pcap::PcapWriter;
    use vxlan_pmd::pcapport::PcapPort;

    let dir = std::env::temp_dir();
    let pid = std::process::id();
    let (input, output) = (
        dir.join(format!("vxlan-pmd-noalloc-{pid}-in.pcap")),
        dir.join(format!("vxlan-pmd-noalloc-{pid}-out.pcap")),
    );
    let file = std::fs::File::create(&input).unwrap();
    let mut w = PcapWriter::new(std::io::BufWriter::new(file)).unwrap();
    for i in 0..500u64 {
        w.write_packet(1_000_000 + i, &[0x5a; 128]).unwrap();
    }
    w.into_inner().unwrap();

    let pool = Pool::new(64, 2048, 128).unwrap();
    let mut port = PcapPort::open(
        "replay",
        Some(input.clone()),
        Some(output.clone()),
        pool.clone(),
    )
    .unwrap();
    let mut burst = Burst::new();
    // Warm-up: the read-ahead buffer grows to the record size.
    port.rx_burst(0, &mut burst, 32);
    port.tx_burst(0, &mut burst);
    let n = count(|| {
        while !port.is_drained() {
            port.rx_burst(0, &mut burst, 32);
            port.tx_burst(0, &mut burst);
        }
    });
    assert_eq!(n, 0);
    assert_eq!(port.stats().tx_packets, 500);
    port.close().unwrap();
    assert_eq!(vxlan_pmd::pcap::read_file(&output).unwrap().len(), 500);
    assert_eq!(pool.available(), pool.capacity());
    let _ = std::fs::remove_file(input);
    let _ = std::fs::remove_file(output);
}
