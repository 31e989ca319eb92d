/* See shim.h: thin out-of-line wrappers, nothing more. */
#include "shim.h"

uint16_t vxd_eth_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{ return rte_eth_rx_burst(port, queue, pkts, n); }
uint16_t vxd_eth_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{ return rte_eth_tx_burst(port, queue, pkts, n); }

struct rte_mbuf *vxd_pktmbuf_alloc(struct rte_mempool *mp) { return rte_pktmbuf_alloc(mp); }
int vxd_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned n)
{ return rte_pktmbuf_alloc_bulk(mp, mbufs, n); }
void vxd_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }
void vxd_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned n) { rte_pktmbuf_free_bulk(mbufs, n); }
char *vxd_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_prepend(m, len); }
char *vxd_pktmbuf_append(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_append(m, len); }
char *vxd_pktmbuf_adj(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_adj(m, len); }
int vxd_pktmbuf_trim(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_trim(m, len); }
uint8_t *vxd_pktmbuf_mtod(struct rte_mbuf *m) { return rte_pktmbuf_mtod(m, uint8_t *); }
uint16_t vxd_pktmbuf_data_len(const struct rte_mbuf *m) { return rte_pktmbuf_data_len(m); }
uint32_t vxd_pktmbuf_pkt_len(const struct rte_mbuf *m) { return rte_pktmbuf_pkt_len(m); }
uint16_t vxd_pktmbuf_headroom(const struct rte_mbuf *m) { return rte_pktmbuf_headroom(m); }
uint16_t vxd_pktmbuf_tailroom(const struct rte_mbuf *m) { return rte_pktmbuf_tailroom(m); }
uint16_t vxd_mbuf_nb_segs(const struct rte_mbuf *m) { return m->nb_segs; }
uint16_t vxd_mbuf_port(const struct rte_mbuf *m) { return m->port; }
uint64_t vxd_mbuf_ol_flags(const struct rte_mbuf *m) { return m->ol_flags; }
uint32_t vxd_mbuf_rss_hash(const struct rte_mbuf *m) { return m->hash.rss; }
struct rte_mempool *vxd_mbuf_pool(const struct rte_mbuf *m) { return m->pool; }
void vxd_mbuf_set_tx_offload(struct rte_mbuf *m, uint64_t ol_flags, uint16_t l2_len, uint16_t l3_len)
{
	m->ol_flags |= ol_flags;
	m->l2_len = l2_len;
	m->l3_len = l3_len;
}

void vxd_mbuf_copy_meta(struct rte_mbuf *dst, const struct rte_mbuf *src)
{
	dst->port = src->port;
	dst->hash.rss = src->hash.rss;
	dst->ol_flags |= src->ol_flags & (RTE_MBUF_F_RX_RSS_HASH | RTE_MBUF_F_RX_IP_CKSUM_MASK | RTE_MBUF_F_RX_L4_CKSUM_MASK);
}

unsigned vxd_mempool_avail_count(const struct rte_mempool *mp) { return rte_mempool_avail_count(mp); }
unsigned vxd_mempool_in_use_count(const struct rte_mempool *mp) { return rte_mempool_in_use_count(mp); }

int vxd_errno(void) { return rte_errno; }
unsigned vxd_lcore_id(void) { return rte_lcore_id(); }
uint64_t vxd_rdtsc(void) { return rte_rdtsc(); }
uint64_t vxd_tsc_hz(void) { return rte_get_tsc_hz(); }

const uint64_t VXD_RX_IP_CKSUM_MASK = RTE_MBUF_F_RX_IP_CKSUM_MASK;
const uint64_t VXD_RX_IP_CKSUM_GOOD = RTE_MBUF_F_RX_IP_CKSUM_GOOD;
const uint64_t VXD_RX_L4_CKSUM_MASK = RTE_MBUF_F_RX_L4_CKSUM_MASK;
const uint64_t VXD_RX_L4_CKSUM_GOOD = RTE_MBUF_F_RX_L4_CKSUM_GOOD;
const uint64_t VXD_RX_L4_CKSUM_BAD = RTE_MBUF_F_RX_L4_CKSUM_BAD;
const uint64_t VXD_RX_IP_CKSUM_BAD = RTE_MBUF_F_RX_IP_CKSUM_BAD;
const uint64_t VXD_RX_OUTER_IP_CKSUM_BAD = RTE_MBUF_F_RX_OUTER_IP_CKSUM_BAD;
const uint64_t VXD_RX_OUTER_L4_CKSUM_MASK = RTE_MBUF_F_RX_OUTER_L4_CKSUM_MASK;
const uint64_t VXD_RX_OUTER_L4_CKSUM_GOOD = RTE_MBUF_F_RX_OUTER_L4_CKSUM_GOOD;
const uint64_t VXD_RX_OUTER_L4_CKSUM_BAD = RTE_MBUF_F_RX_OUTER_L4_CKSUM_BAD;
const uint32_t VXD_PTYPE_TUNNEL_MASK = RTE_PTYPE_TUNNEL_MASK;
const uint64_t VXD_RX_RSS_HASH = RTE_MBUF_F_RX_RSS_HASH;
const uint64_t VXD_TX_IPV4 = RTE_MBUF_F_TX_IPV4;
const uint64_t VXD_TX_IP_CKSUM = RTE_MBUF_F_TX_IP_CKSUM;
const uint64_t VXD_TX_IPV6 = RTE_MBUF_F_TX_IPV6;
const uint64_t VXD_TX_UDP_CKSUM = RTE_MBUF_F_TX_UDP_CKSUM;
const uint64_t VXD_TX_L4_MASK = RTE_MBUF_F_TX_L4_MASK;
const uint64_t VXD_TX_OUTER_IPV4 = RTE_MBUF_F_TX_OUTER_IPV4;
const uint64_t VXD_TX_OUTER_IP_CKSUM = RTE_MBUF_F_TX_OUTER_IP_CKSUM;
const uint64_t VXD_ETH_RSS_IP_UDP = RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP;
const uint64_t VXD_RX_OFFLOAD_IPV4_CKSUM = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
const uint64_t VXD_RX_OFFLOAD_UDP_CKSUM = RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
const uint64_t VXD_RX_OFFLOAD_RSS_HASH = RTE_ETH_RX_OFFLOAD_RSS_HASH;
const uint64_t VXD_TX_OFFLOAD_IPV4_CKSUM = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
const uint64_t VXD_TX_OFFLOAD_VXLAN_TNL_TSO = RTE_ETH_TX_OFFLOAD_VXLAN_TNL_TSO;
const uint64_t VXD_TX_OFFLOAD_UDP_CKSUM = RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
const uint32_t VXD_MBUF_L2_LEN_OFS = RTE_MBUF_L2_LEN_OFS;
const uint32_t VXD_MBUF_L3_LEN_OFS = RTE_MBUF_L3_LEN_OFS;
const uint16_t VXD_PKTMBUF_HEADROOM = RTE_PKTMBUF_HEADROOM;
const uint32_t VXD_LCORE_ID_ANY = LCORE_ID_ANY;
