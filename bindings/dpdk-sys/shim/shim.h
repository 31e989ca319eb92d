/*
 * vxd_*: out-of-line wrappers around DPDK's static-inline fast-path
 * functions, which bindgen cannot bind (they have no symbol in any
 * library). Each wrapper does nothing but call the DPDK function of the
 * same name (or read the field named), so its contract is DPDK's.
 */
#ifndef VXD_SHIM_H
#define VXD_SHIM_H

#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_cycles.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ethdev.h>
#include <rte_launch.h>

/* Ethdev bursts. */
uint16_t vxd_eth_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t vxd_eth_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);

/* Mbufs. */
struct rte_mbuf *vxd_pktmbuf_alloc(struct rte_mempool *mp);
int vxd_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned n);
void vxd_pktmbuf_free(struct rte_mbuf *m);
void vxd_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned n);
char *vxd_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
char *vxd_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
char *vxd_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
int vxd_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
/* rte_pktmbuf_mtod: the first data byte of the first segment. */
uint8_t *vxd_pktmbuf_mtod(struct rte_mbuf *m);
uint16_t vxd_pktmbuf_data_len(const struct rte_mbuf *m);
uint32_t vxd_pktmbuf_pkt_len(const struct rte_mbuf *m);
uint16_t vxd_pktmbuf_headroom(const struct rte_mbuf *m);
uint16_t vxd_pktmbuf_tailroom(const struct rte_mbuf *m);
uint16_t vxd_mbuf_nb_segs(const struct rte_mbuf *m);
uint16_t vxd_mbuf_port(const struct rte_mbuf *m);
uint64_t vxd_mbuf_ol_flags(const struct rte_mbuf *m);
uint32_t vxd_mbuf_rss_hash(const struct rte_mbuf *m);
struct rte_mempool *vxd_mbuf_pool(const struct rte_mbuf *m);
/* Sets what TX offloads the mbuf asks for: ol_flags and the l2/l3 lengths. */
void vxd_mbuf_set_tx_offload(struct rte_mbuf *m, uint64_t ol_flags, uint16_t l2_len, uint16_t l3_len);

/* Copies the receive metadata (ingress port, RSS hash, checksum flags) of src to dst. */
void vxd_mbuf_copy_meta(struct rte_mbuf *dst, const struct rte_mbuf *src);

/* Mempool accounting. */
unsigned vxd_mempool_avail_count(const struct rte_mempool *mp);
unsigned vxd_mempool_in_use_count(const struct rte_mempool *mp);

/* EAL. */
int vxd_errno(void);
unsigned vxd_lcore_id(void);
uint64_t vxd_rdtsc(void);
uint64_t vxd_tsc_hz(void);

/* Flag values DPDK defines as macros of expressions bindgen cannot evaluate. */
extern const uint64_t VXD_RX_IP_CKSUM_MASK;
extern const uint64_t VXD_RX_IP_CKSUM_GOOD;
extern const uint64_t VXD_RX_L4_CKSUM_MASK;
extern const uint64_t VXD_RX_L4_CKSUM_GOOD;
extern const uint64_t VXD_RX_L4_CKSUM_BAD;
extern const uint64_t VXD_RX_IP_CKSUM_BAD;
extern const uint64_t VXD_RX_OUTER_IP_CKSUM_BAD;
extern const uint64_t VXD_RX_OUTER_L4_CKSUM_MASK;
extern const uint64_t VXD_RX_OUTER_L4_CKSUM_GOOD;
extern const uint64_t VXD_RX_OUTER_L4_CKSUM_BAD;
extern const uint32_t VXD_PTYPE_TUNNEL_MASK;
extern const uint64_t VXD_RX_RSS_HASH;
extern const uint64_t VXD_TX_IPV4;
extern const uint64_t VXD_TX_IP_CKSUM;
extern const uint64_t VXD_TX_IPV6;
extern const uint64_t VXD_TX_UDP_CKSUM;
extern const uint64_t VXD_TX_L4_MASK;
extern const uint64_t VXD_TX_OUTER_IPV4;
extern const uint64_t VXD_TX_OUTER_IP_CKSUM;
extern const uint64_t VXD_ETH_RSS_IP_UDP;
extern const uint64_t VXD_RX_OFFLOAD_IPV4_CKSUM;
extern const uint64_t VXD_RX_OFFLOAD_UDP_CKSUM;
extern const uint64_t VXD_RX_OFFLOAD_RSS_HASH;
extern const uint64_t VXD_TX_OFFLOAD_IPV4_CKSUM;
extern const uint64_t VXD_TX_OFFLOAD_VXLAN_TNL_TSO;
extern const uint64_t VXD_TX_OFFLOAD_UDP_CKSUM;
/* Where l2_len and l3_len sit in the mbuf's tx_offload word. */
extern const uint32_t VXD_MBUF_L2_LEN_OFS;
extern const uint32_t VXD_MBUF_L3_LEN_OFS;
extern const uint16_t VXD_PKTMBUF_HEADROOM;
extern const uint32_t VXD_LCORE_ID_ANY;

#endif
