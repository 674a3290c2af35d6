/* Which addresses parleyd may call identity providers at (SSRF guard, docs/auth.md "Provider addresses").
 *
 * Any account can create an entity and so a component whose URLs parleyd then fetches: without this,
 * an admin could make parleyd call 169.254.169.254 (cloud metadata), 127.0.0.1:<admin port> or any
 * service of the operator's network. The real check is on the address curl actually connects to
 * (exchange.c's open-socket hook), so DNS rebinding between a check and the connect cannot get round
 * it; the literal-address check at create time only refuses early what could never work.
 *
 * Allowed: global unicast only. Refused: this-network/unspecified, loopback, RFC 1918, CGNAT
 * 100.64/10, link-local, the IETF/documentation/benchmarking blocks, 6to4 relay anycast, multicast,
 * reserved 240/4 and broadcast; IPv6 ::, ::1, fc00::/7, fe80::/10, fec0::/10, ff00::/8, 100::/64 discard-only,
 * documentation, Teredo and the rest of 2001::/23, ORCHID, everything outside 2000::/3; IPv4-mapped,
 * IPv4-compatible, NAT64 (64:ff9b::/96) and 6to4 (2002::/16) forms are judged by the IPv4 address they
 * carry (64:ff9b:1::/48, local NAT64, is refused outright: its translation is the operator's). Pure. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include <parley/error.h>

#include "auth/auth.h"

typedef struct net4 {
	uint32_t net;
	unsigned bits;
} net4;

/* IANA IPv4 special-purpose registry (RFC 6890 and successors): none is reachable as a public server */
static const net4 v4_refused[] = {
	{0x00000000u, 8},  /* 0/8 this network, 0.0.0.0 unspecified */
	{0x0a000000u, 8},  /* 10/8 private */
	{0x64400000u, 10}, /* 100.64/10 CGNAT */
	{0x7f000000u, 8},  /* 127/8 loopback */
	{0xa9fe0000u, 16}, /* 169.254/16 link-local, cloud metadata */
	{0xac100000u, 12}, /* 172.16/12 private */
	{0xc0000000u, 24}, /* 192.0.0/24 IETF protocol assignments */
	{0xc0000200u, 24}, /* 192.0.2/24 TEST-NET-1 */
	{0xc0586300u, 24}, /* 192.88.99/24 6to4 relay anycast (deprecated) */
	{0xc0a80000u, 16}, /* 192.168/16 private */
	{0xc6120000u, 15}, /* 198.18/15 benchmarking */
	{0xc6336400u, 24}, /* 198.51.100/24 TEST-NET-2 */
	{0xcb007100u, 24}, /* 203.0.113/24 TEST-NET-3 */
	{0xe0000000u, 4},  /* 224/4 multicast */
	{0xf0000000u, 4},  /* 240/4 reserved, 255.255.255.255 broadcast */
};

int auth__ip4_public(const uint8_t a[4])
{
	uint32_t v = (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 | (uint32_t)a[2] << 8 | a[3];
	for (size_t i = 0; i < sizeof(v4_refused) / sizeof(v4_refused[0]); i++) {
		uint32_t mask = 0xffffffffu << (32 - v4_refused[i].bits);
		if ((v & mask) == v4_refused[i].net)
			return 0;
	}
	return 1;
}

/* the first `bits` bits of a equal those of prefix */
static int in6(const uint8_t a[16], const uint8_t *prefix, unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;
	if (memcmp(a, prefix, whole) != 0)
		return 0;
	return rest == 0 || ((a[whole] ^ prefix[whole]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

int auth__ip6_public(const uint8_t a[16])
{
	static const uint8_t zero[16] = {0};
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b};
	static const uint8_t nat64_local[6] = {0, 0x64, 0xff, 0x9b, 0, 1};
	static const uint8_t six2four[2] = {0x20, 0x02};
	static const struct {
		uint8_t p[4];
		unsigned bits;
	} refused[] = {
		{{0x20, 0x01, 0x00, 0x00}, 23}, /* 2001::/23 IETF assignments: Teredo, ORCHID, benchmarking... */
		{{0x20, 0x01, 0x0d, 0xb8}, 32}, /* 2001:db8::/32 documentation */
		{{0x3f, 0xff, 0x00, 0x00}, 20}, /* 3fff::/20 documentation (RFC 9637) */
	};

	/* IPv4 carried in IPv6: what matters is where the packet ends up */
	if (memcmp(a, mapped, sizeof(mapped)) == 0 || memcmp(a, nat64, sizeof(nat64)) == 0)
		return auth__ip4_public(a + 12);
	if (in6(a, six2four, 16))
		return auth__ip4_public(a + 2);
	if (in6(a, nat64_local, 48))
		return 0;
	/* ::/96 (IPv4-compatible, deprecated), :: and ::1: all below 2000::/3, refused with the rest */
	if (memcmp(a, zero, 16) == 0 || (a[0] & 0xe0) != 0x20)
		return 0; /* only 2000::/3 is global unicast; fc00::/7, fe80::/10, ff00::/8 are outside it */
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (in6(a, refused[i].p, refused[i].bits))
			return 0;
	return 1;
}

int auth__sockaddr_public(const struct sockaddr *sa, size_t len)
{
	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		struct sockaddr_in in;
		memcpy(&in, sa, sizeof(in));
		return auth__ip4_public((const uint8_t *)&in.sin_addr.s_addr);
	}
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 in;
		memcpy(&in, sa, sizeof(in));
		return auth__ip6_public(in.sin6_addr.s6_addr);
	}
	return 0; /* AF_UNIX and anything else: never a provider */
}

int auth__host_listed(const char *list, const char *host, size_t n)
{
	while (n > 0 && list != NULL && *list != '\0') {
		const char *comma = strchr(list, ','), *end = comma != NULL ? comma : list + strlen(list);
		const char *s = list;
		while (s < end && *s == ' ')
			s++;
		size_t len = (size_t)(end - s);
		while (len > 0 && s[len - 1] == ' ')
			len--;
		if (len == n && strncasecmp(s, host, n) == 0)
			return 1;
		list = comma != NULL ? comma + 1 : NULL;
	}
	return 0;
}

int auth__host_literal_public(const char *host, size_t n)
{
	char buf[64];
	struct in_addr v4;
	struct in6_addr v6;

	if (n == 0 || n >= sizeof(buf))
		return 1; /* a name (or nothing parseable): only the connect can tell */
	memcpy(buf, host, n);
	buf[n] = '\0';
	if (strcasecmp(buf, "localhost") == 0)
		return 0;
	if (buf[0] == '[' && buf[n - 1] == ']') {
		buf[n - 1] = '\0';
		return inet_pton(AF_INET6, buf + 1, &v6) == 1 ? auth__ip6_public(v6.s6_addr) : 1;
	}
	/* inet_aton, not inet_pton: curl and the resolver also take 127.1, 0x7f000001 and 2130706433 */
	if (inet_aton(buf, &v4) != 0)
		return auth__ip4_public((const uint8_t *)&v4.s_addr);
	return 1;
}
