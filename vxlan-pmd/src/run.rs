//! The run-to-completion loop: receive a burst on each port a worker owns,
//! carry out the VTEP's decision for every frame, transmit per port.
//!
//! A worker owns one queue of each port (for in-memory ports,
//! [`MemPort::split_queues`](crate::memport::MemPort::split_queues) gives
//! one single-queue port per worker). Frames for a port collect in that
//! port's transmit burst and go out when the burst fills or the receive
//! burst is done. Nothing here allocates after [`PortLoop::new`].

use crate::pool::PktBuf;
use crate::port::{Burst, Port};
use crate::vtep::{Output, VtepWorker};
use crate::worker::Poll;

/// The largest burst received per port per poll.
pub const RX_BURST: usize = 32;

struct TxBursts<'p> {
    ports: &'p mut [Box<dyn Port>],
    bursts: &'p mut [Burst],
}

impl Output for TxBursts<'_> {
    // Once per transmitted frame: inlined into the VTEP's processing.
    #[inline(always)]
    fn send(&mut self, port: u16, pkt: PktBuf) {
        let i = usize::from(port);
        if i < self.ports.len() {
            if let Some(burst) = self.bursts.get_mut(i) {
                if !burst.is_full() {
                    // Cannot fail: the burst has room. Checked first, so
                    // that the frame goes straight into it, with no copy
                    // of it kept for a flush or a drop.
                    let _ = burst.push(pkt);
                    return;
                }
            }
        }
        self.send_slow(port, pkt);
    }
}

impl TxBursts<'_> {
    /// [`Output::send`] when `port`'s burst is full (transmit it, then
    /// queue `pkt`) or there is no such port (`pkt` returns to its pool).
    /// Out of line: once per full burst, and it keeps the copy of the
    /// frame that a call in between needs off the common path.
    #[cold]
    #[inline(never)]
    fn send_slow(&mut self, port: u16, pkt: PktBuf) {
        let i = usize::from(port);
        let (Some(burst), Some(p)) = (self.bursts.get_mut(i), self.ports.get_mut(i)) else {
            return; // no such port: the frame returns to its pool
        };
        if let Err(pkt) = burst.push(pkt) {
            p.tx_burst(0, burst);
            // The burst is empty now; this push cannot fail.
            let _ = burst.push(pkt);
        }
    }
}

/// One worker's ports and bursts.
pub struct PortLoop {
    worker: VtepWorker,
    ports: Vec<Box<dyn Port>>,
    rx: Burst,
    tx: Vec<Burst>,
    /// Whether the polling thread was asked to keep a pool magazine.
    magazine: bool,
}

impl PortLoop {
    /// A loop for `worker` over `ports` (index = port number, as the VTEP's
    /// configuration numbers them).
    pub fn new(worker: VtepWorker, ports: Vec<Box<dyn Port>>) -> Self {
        let tx = ports.iter().map(|_| Burst::new()).collect();
        PortLoop {
            worker,
            ports,
            rx: Burst::new(),
            tx,
            magazine: false,
        }
    }

    /// Polls every port once. `Busy` when any frame was received.
    pub fn poll(&mut self) -> Poll {
        self.worker.refresh();
        if !self.magazine {
            // Once, on the thread that polls: buffers received and freed
            // here cycle through this thread's magazine.
            self.magazine = true;
            self.worker.pool().cache_on_this_thread();
        }
        let mut busy = false;
        for i in 0..self.ports.len() {
            let Ok(port) = u16::try_from(i) else { break };
            let n = self.ports[i].rx_burst(0, &mut self.rx, RX_BURST);
            if n == 0 {
                continue;
            }
            busy = true;
            let mut out = TxBursts {
                ports: &mut self.ports,
                bursts: &mut self.tx,
            };
            self.worker.process_burst(port, &mut self.rx, &mut out);
        }
        for (p, burst) in self.ports.iter_mut().zip(self.tx.iter_mut()) {
            if !burst.is_empty() {
                p.tx_burst(0, burst);
            }
        }
        if busy {
            Poll::Busy
        } else {
            Poll::Idle
        }
    }

    /// The ports (for their counters).
    pub fn ports(&self) -> &[Box<dyn Port>] {
        &self.ports
    }
}
