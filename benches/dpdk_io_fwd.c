/*
 * The peer for the DPDK VTEP benchmark: DPDK's bare io-forward loop (what
 * testpmd's "io" mode does), over the same two ports the VTEP runs on.
 * Frames received on one port are sent unchanged out of the other, both
 * directions in turn; the driver frees what it sends, and what it does not
 * take is freed here. No header is read.
 */
#include <stdint.h>
#include <rte_config.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#define BURST 32

/*
 * Forwards until at least `packets` frames were received (on queue 0 of
 * ports a and b), and returns the TSC cycles that took; *received gets the
 * exact count. The caller owns queue 0 of both ports for the duration.
 */
uint64_t vxb_io_fwd(uint16_t a, uint16_t b, uint64_t packets, uint64_t *received)
{
	struct rte_mbuf *pkts[BURST];
	uint64_t n = 0;
	uint64_t start = rte_rdtsc();
	while (n < packets) {
		for (int dir = 0; dir < 2; dir++) {
			uint16_t rx = dir ? b : a;
			uint16_t tx = dir ? a : b;
			uint16_t got = rte_eth_rx_burst(rx, 0, pkts, BURST);
			if (got == 0)
				continue;
			n += got;
			uint16_t sent = rte_eth_tx_burst(tx, 0, pkts, got);
			if (sent < got)
				rte_pktmbuf_free_bulk(&pkts[sent], got - sent);
		}
	}
	*received = n;
	return rte_rdtsc() - start;
}
