/*
 * lbd DPDK shim.
 *
 * DPDK implements its fast-path API (rx/tx burst, mbuf alloc/free, lcore id,
 * rte_errno) as static-inline functions and macros, which Rust cannot call.
 * This file gives each of them a real, exported symbol named lbd_shim_*.
 * It also hides large or bit-field structs (rte_eth_conf, rte_eth_dev_info,
 * rte_eth_link, rte_eth_stats) behind small flat structs, and asserts at
 * compile time that the Rust mirror of struct rte_mbuf matches the C layout.
 *
 * Keep every struct here in sync with src/lib.rs.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

/* ---- layout of struct rte_mbuf, mirrored in Rust (lib.rs) ---- */
#define LBD_MBUF_OFF(field, off)                                             \
	_Static_assert(offsetof(struct rte_mbuf, field) == (off),             \
		       "struct rte_mbuf: " #field " moved; update dpdk-sys lib.rs")

LBD_MBUF_OFF(buf_addr, 0);
LBD_MBUF_OFF(data_off, 16);
LBD_MBUF_OFF(refcnt, 18);
LBD_MBUF_OFF(nb_segs, 20);
LBD_MBUF_OFF(port, 22);
LBD_MBUF_OFF(ol_flags, 24);
LBD_MBUF_OFF(packet_type, 32);
LBD_MBUF_OFF(pkt_len, 36);
LBD_MBUF_OFF(data_len, 40);
LBD_MBUF_OFF(vlan_tci, 42);
LBD_MBUF_OFF(hash, 44);
LBD_MBUF_OFF(hash.rss, 44);
LBD_MBUF_OFF(vlan_tci_outer, 52);
LBD_MBUF_OFF(buf_len, 54);
LBD_MBUF_OFF(pool, 56);
LBD_MBUF_OFF(next, 64);
LBD_MBUF_OFF(tx_offload, 72);
_Static_assert(sizeof(struct rte_mbuf) == 128, "struct rte_mbuf is not 128 bytes");
_Static_assert(sizeof(((struct rte_mbuf *)0)->hash) == 8, "rte_mbuf.hash is not 8 bytes");
_Static_assert(RTE_IOVA_AS_PA, "dpdk-sys expects buf_iova at offset 8 (RTE_IOVA_AS_PA)");

/* Constants that the Rust side hard-codes. */
_Static_assert(RTE_MAX_ETHPORTS == 32, "RTE_MAX_ETHPORTS changed; update dpdk-sys lib.rs");
_Static_assert(RTE_MAX_LCORE == 128, "RTE_MAX_LCORE changed; update dpdk-sys lib.rs");
_Static_assert(RTE_ETH_NAME_MAX_LEN == 64, "RTE_ETH_NAME_MAX_LEN changed; update dpdk-sys lib.rs");
_Static_assert(RTE_PKTMBUF_HEADROOM == 128, "RTE_PKTMBUF_HEADROOM changed; update dpdk-sys lib.rs");
_Static_assert(LCORE_ID_ANY == UINT32_MAX, "LCORE_ID_ANY changed; update dpdk-sys lib.rs");
_Static_assert(sizeof(struct rte_ether_addr) == 6, "struct rte_ether_addr is not 6 bytes");
_Static_assert(_Alignof(struct rte_ether_addr) == 2, "struct rte_ether_addr alignment changed");
_Static_assert(RTE_MBUF_F_TX_TCP_CKSUM == (1ULL << 52), "TX flags changed; update dpdk-sys lib.rs");
_Static_assert(RTE_MBUF_F_TX_UDP_CKSUM == (3ULL << 52), "TX flags changed; update dpdk-sys lib.rs");
_Static_assert(RTE_MBUF_F_TX_L4_MASK == (3ULL << 52), "TX flags changed; update dpdk-sys lib.rs");
_Static_assert(RTE_MBUF_F_TX_IP_CKSUM == (1ULL << 54), "TX flags changed; update dpdk-sys lib.rs");
_Static_assert(RTE_MBUF_F_TX_IPV4 == (1ULL << 55), "TX flags changed; update dpdk-sys lib.rs");
_Static_assert(RTE_ETH_DEV_INTR_LSC == (1u << 1), "RTE_ETH_DEV_INTR_LSC changed; update dpdk-sys lib.rs");
_Static_assert(RTE_ETH_EVENT_INTR_LSC == 1, "RTE_ETH_EVENT_INTR_LSC changed; update dpdk-sys lib.rs");
_Static_assert(sizeof(enum rte_eth_event_type) == sizeof(int), "enum rte_eth_event_type is not int-sized");

/* tx_offload with l2_len and l3_len set through the bit-fields: the Rust
 * side packs them by hand (l2 | l3 << 7) and checks against this. */
uint64_t lbd_shim_tx_offload(uint64_t l2_len, uint64_t l3_len)
{
	struct rte_mbuf m;

	memset(&m, 0, sizeof(m));
	m.l2_len = l2_len;
	m.l3_len = l3_len;
	return m.tx_offload;
}

/* ---- fast path ---- */

uint16_t lbd_shim_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_rx_burst(port, queue, pkts, n);
}

uint16_t lbd_shim_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_tx_burst(port, queue, pkts, n);
}

uint16_t lbd_shim_tx_prepare(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_tx_prepare(port, queue, pkts, n);
}

struct rte_mbuf *lbd_shim_pktmbuf_alloc(struct rte_mempool *mp)
{
	return rte_pktmbuf_alloc(mp);
}

int lbd_shim_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int n)
{
	return rte_pktmbuf_alloc_bulk(mp, mbufs, n);
}

void lbd_shim_pktmbuf_free(struct rte_mbuf *m)
{
	rte_pktmbuf_free(m);
}

char *lbd_shim_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_prepend(m, len);
}

char *lbd_shim_pktmbuf_append(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_append(m, len);
}

char *lbd_shim_pktmbuf_adj(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_adj(m, len);
}

int lbd_shim_pktmbuf_trim(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_trim(m, len);
}

void *lbd_shim_pktmbuf_mtod(struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod(m, void *);
}

uint16_t lbd_shim_pktmbuf_headroom(const struct rte_mbuf *m)
{
	return rte_pktmbuf_headroom(m);
}

uint16_t lbd_shim_pktmbuf_tailroom(const struct rte_mbuf *m)
{
	return rte_pktmbuf_tailroom(m);
}

unsigned int lbd_shim_lcore_id(void)
{
	return rte_lcore_id();
}

int lbd_shim_errno(void)
{
	return rte_errno;
}

void lbd_shim_set_errno(int value)
{
	rte_errno = value;
}

uint64_t lbd_shim_rdtsc(void)
{
	return rte_rdtsc();
}

/* ---- ethdev control path: flat views of large structs ---- */

struct lbd_dev_info {
	const char *driver_name;
	uint32_t if_index;
	uint32_t max_rx_pktlen;
	uint16_t max_rx_queues;
	uint16_t max_tx_queues;
	uint16_t rx_desc_max;
	uint16_t rx_desc_min;
	uint16_t tx_desc_max;
	uint16_t tx_desc_min;
	uint64_t flow_type_rss_offloads;
	uint64_t rx_offload_capa;
	uint64_t tx_offload_capa;
	uint16_t min_mtu;
	uint16_t max_mtu;
	uint16_t reta_size;
	uint8_t hash_key_size;
	uint8_t _pad;
	uint32_t min_rx_bufsize;
	uint32_t dev_flags;
};
_Static_assert(offsetof(struct lbd_dev_info, tx_offload_capa) == 48, "lbd_dev_info layout");
_Static_assert(offsetof(struct lbd_dev_info, min_mtu) == 56, "lbd_dev_info layout");
_Static_assert(offsetof(struct lbd_dev_info, hash_key_size) == 62, "lbd_dev_info layout");
_Static_assert(offsetof(struct lbd_dev_info, min_rx_bufsize) == 64, "lbd_dev_info layout");
_Static_assert(offsetof(struct lbd_dev_info, dev_flags) == 68, "lbd_dev_info layout");
_Static_assert(sizeof(struct lbd_dev_info) == 72, "lbd_dev_info layout");

/* Mirrored directly in Rust (lib.rs). */
_Static_assert(sizeof(struct rte_eth_xstat) == 16, "struct rte_eth_xstat changed");
_Static_assert(offsetof(struct rte_eth_xstat, value) == 8, "struct rte_eth_xstat changed");
_Static_assert(RTE_ETH_XSTATS_NAME_SIZE == 64, "RTE_ETH_XSTATS_NAME_SIZE changed");
_Static_assert(sizeof(struct rte_eth_xstat_name) == 64, "struct rte_eth_xstat_name changed");

int lbd_shim_dev_info(uint16_t port, struct lbd_dev_info *out)
{
	struct rte_eth_dev_info info;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = rte_eth_dev_info_get(port, &info);
	if (ret != 0)
		return ret;
	out->driver_name = info.driver_name;
	out->if_index = info.if_index;
	out->max_rx_pktlen = info.max_rx_pktlen;
	out->max_rx_queues = info.max_rx_queues;
	out->max_tx_queues = info.max_tx_queues;
	out->rx_desc_max = info.rx_desc_lim.nb_max;
	out->rx_desc_min = info.rx_desc_lim.nb_min;
	out->tx_desc_max = info.tx_desc_lim.nb_max;
	out->tx_desc_min = info.tx_desc_lim.nb_min;
	out->flow_type_rss_offloads = info.flow_type_rss_offloads;
	out->rx_offload_capa = info.rx_offload_capa;
	out->tx_offload_capa = info.tx_offload_capa;
	out->min_mtu = info.min_mtu;
	out->max_mtu = info.max_mtu;
	out->reta_size = info.reta_size;
	out->hash_key_size = info.hash_key_size;
	out->min_rx_bufsize = info.min_rx_bufsize;
	out->dev_flags = info.dev_flags != NULL ? *info.dev_flags : 0;
	return 0;
}

/* RSS over the IPv4 5-tuple for TCP/UDP, 2-tuple for other IPv4. */
#define LBD_RSS_WANTED (RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_NONFRAG_IPV4_TCP | RTE_ETH_RSS_NONFRAG_IPV4_UDP)

/*
 * Configure a port with nb_rx/nb_tx queues. With rss_enable != 0 and a device
 * that can hash IPv4, RSS is turned on over the flow types above that the
 * device supports; *rss_hf_out receives the hash functions in use (0: no RSS).
 * Returns 0 or a negative errno, like rte_eth_dev_configure.
 */
int lbd_shim_port_configure(uint16_t port, uint16_t nb_rx, uint16_t nb_tx, int rss_enable,
			    uint64_t *rss_hf_out)
{
	struct rte_eth_conf conf;
	struct rte_eth_dev_info info;
	uint64_t rss_hf = 0;
	int ret;

	if (rss_hf_out != NULL)
		*rss_hf_out = 0;
	ret = rte_eth_dev_info_get(port, &info);
	if (ret != 0)
		return ret;

	memset(&conf, 0, sizeof(conf));
	conf.rxmode.mq_mode = RTE_ETH_MQ_RX_NONE;
	conf.txmode.mq_mode = RTE_ETH_MQ_TX_NONE;
	if (rss_enable)
		rss_hf = LBD_RSS_WANTED & info.flow_type_rss_offloads;
	if (rss_hf != 0) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_key = NULL; /* driver default key */
		conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
		if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_RSS_HASH)
			conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_RSS_HASH;
	}
	/* No RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE: it assumes every mbuf sent on a
	 * queue comes from one pool with refcnt 1, which the safe Rust API
	 * cannot promise. */

	ret = rte_eth_dev_configure(port, nb_rx, nb_tx, &conf);
	if (ret == 0 && rss_hf_out != NULL)
		*rss_hf_out = rss_hf;
	return ret;
}

struct lbd_port_conf {
	uint64_t rss_hf;
	uint64_t rx_offloads;
	uint64_t tx_offloads;
	const uint8_t *rss_key;
	uint8_t rss_key_len;
	uint8_t lsc;
	uint8_t _pad[2];
	uint32_t mtu;
};
_Static_assert(offsetof(struct lbd_port_conf, rss_key) == 24, "lbd_port_conf layout");
_Static_assert(offsetof(struct lbd_port_conf, rss_key_len) == 32, "lbd_port_conf layout");
_Static_assert(offsetof(struct lbd_port_conf, lsc) == 33, "lbd_port_conf layout");
_Static_assert(offsetof(struct lbd_port_conf, mtu) == 36, "lbd_port_conf layout");
_Static_assert(sizeof(struct lbd_port_conf) == 40, "lbd_port_conf layout");

/*
 * Configure a port exactly as planned on the Rust side (lbd's device.rs
 * decides from the device's capabilities): RSS hash functions and key,
 * offloads, MTU. Returns 0 or a negative errno, like rte_eth_dev_configure.
 */
int lbd_shim_port_configure_conf(uint16_t port, uint16_t nb_rx, uint16_t nb_tx,
				 const struct lbd_port_conf *c)
{
	struct rte_eth_conf conf;

	memset(&conf, 0, sizeof(conf));
	conf.rxmode.mq_mode = c->rss_hf != 0 ? RTE_ETH_MQ_RX_RSS : RTE_ETH_MQ_RX_NONE;
	conf.txmode.mq_mode = RTE_ETH_MQ_TX_NONE;
	conf.rxmode.offloads = c->rx_offloads;
	conf.txmode.offloads = c->tx_offloads;
	conf.rxmode.mtu = c->mtu;
	/* Link-state changes by interrupt (the caller checked dev_flags). */
	conf.intr_conf.lsc = c->lsc != 0;
	if (c->rss_hf != 0) {
		/* ethdev keeps this pointer (dev_conf is copied shallowly) and drivers
		 * read it at start: the caller keeps the key alive until close. */
		conf.rx_adv_conf.rss_conf.rss_key = (uint8_t *)(uintptr_t)c->rss_key;
		conf.rx_adv_conf.rss_conf.rss_key_len = c->rss_key_len;
		conf.rx_adv_conf.rss_conf.rss_hf = c->rss_hf;
	}
	return rte_eth_dev_configure(port, nb_rx, nb_tx, &conf);
}

struct lbd_link {
	uint32_t speed_mbps;
	uint8_t up;
	uint8_t full_duplex;
	uint8_t autoneg;
	uint8_t _pad;
};

int lbd_shim_link_get_nowait(uint16_t port, struct lbd_link *out)
{
	struct rte_eth_link link;
	int ret;

	memset(out, 0, sizeof(*out));
	memset(&link, 0, sizeof(link));
	ret = rte_eth_link_get_nowait(port, &link);
	if (ret != 0)
		return ret;
	out->speed_mbps = link.link_speed;
	out->up = link.link_status == RTE_ETH_LINK_UP;
	out->full_duplex = link.link_duplex == RTE_ETH_LINK_FULL_DUPLEX;
	out->autoneg = link.link_autoneg == RTE_ETH_LINK_AUTONEG;
	return 0;
}

struct lbd_stats {
	uint64_t ipackets;
	uint64_t opackets;
	uint64_t ibytes;
	uint64_t obytes;
	uint64_t imissed;
	uint64_t ierrors;
	uint64_t oerrors;
	uint64_t rx_nombuf;
};

int lbd_shim_stats_get(uint16_t port, struct lbd_stats *out)
{
	struct rte_eth_stats st;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = rte_eth_stats_get(port, &st);
	if (ret != 0)
		return ret;
	out->ipackets = st.ipackets;
	out->opackets = st.opackets;
	out->ibytes = st.ibytes;
	out->obytes = st.obytes;
	out->imissed = st.imissed;
	out->ierrors = st.ierrors;
	out->oerrors = st.oerrors;
	out->rx_nombuf = st.rx_nombuf;
	return 0;
}

/* Sizes of the flat structs, checked from Rust tests. */
size_t lbd_shim_sizeof_dev_info(void) { return sizeof(struct lbd_dev_info); }
size_t lbd_shim_sizeof_link(void) { return sizeof(struct lbd_link); }
size_t lbd_shim_sizeof_stats(void) { return sizeof(struct lbd_stats); }
size_t lbd_shim_sizeof_mbuf(void) { return sizeof(struct rte_mbuf); }
size_t lbd_shim_sizeof_port_conf(void) { return sizeof(struct lbd_port_conf); }

_Static_assert(WAIT == 0 && RUNNING == 1, "enum rte_lcore_state_t changed; update dpdk-sys lib.rs");
_Static_assert(sizeof(enum rte_lcore_state_t) == sizeof(int), "enum rte_lcore_state_t is not int-sized");
