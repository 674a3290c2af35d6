/* server/auth/netguard.c: which addresses parleyd may call identity providers at (the SSRF guard).
 *
 * The reference here is written independently of netguard.c: the IANA special-purpose registries as
 * CIDR text, parsed with inet_pton. Every IPv4 /16 (at three host parts: .0.0, .1.1 and .255.255) is
 * compared against it, every block's first and last address and its neighbours outside, and each IPv4
 * sample again in its IPv4-mapped, NAT64 and 6to4 IPv6 forms. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <parley/error.h>

#include "auth/auth.h"
#include "test.h"

static const char *const v4_special[] = {
	"0.0.0.0/8",       "10.0.0.0/8",      "100.64.0.0/10",   "127.0.0.0/8",   "169.254.0.0/16",
	"172.16.0.0/12",   "192.0.0.0/24",    "192.0.2.0/24",    "192.88.99.0/24", "192.168.0.0/16",
	"198.18.0.0/15",   "198.51.100.0/24", "203.0.113.0/24",  "224.0.0.0/4",   "240.0.0.0/4",
};

static uint32_t v4_of(const char *s)
{
	struct in_addr a;
	TEST_CHECK(inet_pton(AF_INET, s, &a) == 1);
	return ntohl(a.s_addr);
}

static void v4_cidr(const char *cidr, uint32_t *net, uint32_t *mask)
{
	char ip[32];
	unsigned bits = 0;
	const char *slash = strchr(cidr, '/');
	snprintf(ip, sizeof(ip), "%.*s", (int)(slash - cidr), cidr);
	TEST_CHECK(sscanf(slash + 1, "%u", &bits) == 1);
	*mask = bits == 0 ? 0 : 0xffffffffu << (32 - bits);
	*net = v4_of(ip) & *mask;
}

static int ref4(uint32_t v)
{
	for (size_t i = 0; i < sizeof(v4_special) / sizeof(v4_special[0]); i++) {
		uint32_t net, mask;
		v4_cidr(v4_special[i], &net, &mask);
		if ((v & mask) == net)
			return 0;
	}
	return 1;
}

static void bytes4(uint32_t v, uint8_t out[4])
{
	out[0] = (uint8_t)(v >> 24);
	out[1] = (uint8_t)(v >> 16);
	out[2] = (uint8_t)(v >> 8);
	out[3] = (uint8_t)v;
}

static int fails; /* first mismatches printed, not thousands */

/* v4 and its IPv6 forms all judged as the reference judges v4 */
static void check4(uint32_t v)
{
	uint8_t b[4], m[16] = {0}, n64[16] = {0, 0x64, 0xff, 0x9b}, s24[16] = {0x20, 0x02};
	int want = ref4(v);
	bytes4(v, b);
	m[10] = m[11] = 0xff;
	memcpy(m + 12, b, 4);
	memcpy(n64 + 12, b, 4);
	memcpy(s24 + 2, b, 4);
	s24[15] = 1;
	int got[4] = {auth__ip4_public(b), auth__ip6_public(m), auth__ip6_public(n64), auth__ip6_public(s24)};
	for (int i = 0; i < 4; i++) {
		if (got[i] != want && fails++ < 10)
			fprintf(stderr, "  %u.%u.%u.%u form %d: got %d want %d\n", b[0], b[1], b[2], b[3], i, got[i], want);
		TEST_EQ_INT(got[i], want);
	}
}

static void test_v4(void)
{
	/* every /16, at three host parts */
	for (uint32_t hi = 0; hi < 65536; hi++) {
		check4(hi << 16);
		check4(hi << 16 | 0x0101);
		check4(hi << 16 | 0xffff);
	}
	/* every block's edges, and the addresses just outside */
	for (size_t i = 0; i < sizeof(v4_special) / sizeof(v4_special[0]); i++) {
		uint32_t net, mask;
		v4_cidr(v4_special[i], &net, &mask);
		check4(net);
		check4(net | ~mask);
		check4(net - 1);
		check4((net | ~mask) + 1);
	}
	/* the famous ones, spelled out (so the reference table itself is checked too) */
	static const struct {
		const char *ip;
		int pub;
	} named[] = {
		{"169.254.169.254", 0}, {"127.0.0.1", 0},   {"10.1.2.3", 0},       {"172.31.255.255", 0},
		{"172.32.0.0", 1},      {"192.168.1.1", 0}, {"100.64.0.1", 0},     {"100.127.255.255", 0},
		{"100.128.0.0", 1},     {"0.0.0.0", 0},     {"255.255.255.255", 0}, {"224.0.0.1", 0},
		{"8.8.8.8", 1},         {"1.1.1.1", 1},     {"93.184.216.34", 1},  {"198.17.255.255", 1},
	};
	for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
		uint8_t b[4];
		bytes4(v4_of(named[i].ip), b);
		TEST_EQ_INT(auth__ip4_public(b), named[i].pub);
	}
}

static int v6(const char *s)
{
	struct in6_addr a;
	TEST_CHECK(inet_pton(AF_INET6, s, &a) == 1);
	return auth__ip6_public(a.s6_addr);
}

static void test_v6(void)
{
	static const char *const refused[] = {
		"::", "::1", "::127.0.0.1", "::8.8.8.8", /* IPv4-compatible: deprecated, never a route */
		"::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.0.0.1", "64:ff9b::a9fe:a9fe",
		"64:ff9b::7f00:1", "64:ff9b:1::808:808", "2002:7f00:1::", "2002:a9fe:a9fe::1", "2002:c0a8:101::",
		"fc00::1", "fd12:3456::1", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fe80::1", "febf::1",
		"fec0::1", "ff02::1", "ff0e::1", "100::1", "2001::1", "2001:0:4136:e378::1", /* Teredo */
		"2001:10::1", "2001:20::1", "2001:1ff:ffff::1", "2001:db8::1", "2001:db8:ffff::1", "3fff::1",
		"3fff:fff::1", "4000::1", "1fff:ffff::1", "e000::1",
	};
	static const char *const allowed[] = {
		"2001:200::1", "2001:4860:4860::8888", "2606:4700:4700::1111", "2a00:1450:4001::1",
		"2000::1", "3ffe::1", "3fff:1000::1", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
		"2001:db9::1",
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		if (v6(refused[i]) != 0)
			fprintf(stderr, "  %s allowed\n", refused[i]);
		TEST_EQ_INT(v6(refused[i]), 0);
	}
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		if (v6(allowed[i]) != 1)
			fprintf(stderr, "  %s refused\n", allowed[i]);
		TEST_EQ_INT(v6(allowed[i]), 1);
	}
	/* every first 16 bits, then 1234: only 2000::/3 may pass (its special blocks are narrower than
	 * x:1234::, and 2002:1234:: carries 18.52.0.0, public) */
	for (unsigned hi = 0; hi < 65536; hi++) {
		uint8_t a[16] = {(uint8_t)(hi >> 8), (uint8_t)hi, 0x12, 0x34};
		int want = (hi & 0xe000) == 0x2000;
		a[15] = 1;
		if (hi == 0x0064)
			continue; /* 64:ff9b::/96 lives here, covered above */
		TEST_EQ_INT(auth__ip6_public(a), want);
	}
}

static void test_sockaddr(void)
{
	struct sockaddr_in in = {.sin_family = AF_INET};
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
	struct sockaddr un = {.sa_family = AF_UNIX};
	inet_pton(AF_INET, "8.8.8.8", &in.sin_addr);
	TEST_EQ_INT(auth__sockaddr_public((struct sockaddr *)&in, sizeof(in)), 1);
	TEST_EQ_INT(auth__sockaddr_public((struct sockaddr *)&in, sizeof(in) - 1), 0); /* truncated */
	inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
	TEST_EQ_INT(auth__sockaddr_public((struct sockaddr *)&in, sizeof(in)), 0);
	inet_pton(AF_INET6, "::ffff:169.254.169.254", &in6.sin6_addr);
	TEST_EQ_INT(auth__sockaddr_public((struct sockaddr *)&in6, sizeof(in6)), 0);
	inet_pton(AF_INET6, "2606:4700:4700::1111", &in6.sin6_addr);
	TEST_EQ_INT(auth__sockaddr_public((struct sockaddr *)&in6, sizeof(in6)), 1);
	TEST_EQ_INT(auth__sockaddr_public(&un, sizeof(un)), 0);
	TEST_EQ_INT(auth__sockaddr_public(NULL, 0), 0);
}

static int lit(const char *h)
{
	return auth__host_literal_public(h, strlen(h));
}

static void test_literals(void)
{
	/* every spelling the resolver takes for loopback and the metadata address */
	static const char *const refused[] = {"127.0.0.1", "127.1", "0x7f000001", "2130706433", "0177.0.0.1",
					       "localhost", "LocalHost", "169.254.169.254", "0xa9fea9fe", "10.0.0.1",
					       "0", "[::1]", "[::ffff:127.0.0.1]", "[fe80::1]", "[::]", "[fd00::1]"};
	static const char *const passed[] = {"idp.example.com", "8.8.8.8", "[2606:4700:4700::1111]",
					      "localhost.example.com", "127.0.0.1.nip.io", ""};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		TEST_EQ_INT(lit(refused[i]), 0);
	for (size_t i = 0; i < sizeof(passed) / sizeof(passed[0]); i++)
		TEST_EQ_INT(lit(passed[i]), 1);
}

static void test_allow_list(void)
{
	const char *list = "idp.corp.example, Login.Intra ,127.0.0.1";
	TEST_EQ_INT(auth__host_listed(list, "idp.corp.example", 16), 1);
	TEST_EQ_INT(auth__host_listed(list, "login.intra", 11), 1);
	TEST_EQ_INT(auth__host_listed(list, "127.0.0.1", 9), 1);
	TEST_EQ_INT(auth__host_listed(list, "idp.corp.exampl", 15), 0); /* a prefix is not the name */
	TEST_EQ_INT(auth__host_listed(list, "x.idp.corp.example", 18), 0);
	TEST_EQ_INT(auth__host_listed(list, "", 0), 0);
	TEST_EQ_INT(auth__host_listed("", "a", 1), 0);
	TEST_EQ_INT(auth__host_listed(",,", "a", 1), 0);

	/* the component check: literal private hosts refused unless allowed */
	auth_config cfg;
	Parley__Wire__AuthComponent w = PARLEY__WIRE__AUTH_COMPONENT__INIT;
	memset(&cfg, 0, sizeof(cfg));
	w.jwks_uri = (char *)"https://169.254.169.254/latest/meta-data";
	TEST_EQ_INT(auth__component_hosts_check(&cfg, &w), PARLEY_E_AUTH_HOST_FORBIDDEN);
	w.jwks_uri = (char *)"http://127.0.0.1:8080/jwks";
	TEST_EQ_INT(auth__component_hosts_check(&cfg, &w), PARLEY_E_AUTH_HOST_FORBIDDEN);
	w.jwks_uri = (char *)"https://[::1]:8443/jwks";
	TEST_EQ_INT(auth__component_hosts_check(&cfg, &w), PARLEY_E_AUTH_HOST_FORBIDDEN);
	snprintf(cfg.allowed_hosts, sizeof(cfg.allowed_hosts), "[::1]");
	TEST_EQ_INT(auth__component_hosts_check(&cfg, &w), PARLEY_OK);
	w.jwks_uri = (char *)"https://idp.example.com/jwks"; /* a name: only the connect can tell */
	TEST_EQ_INT(auth__component_hosts_check(&cfg, &w), PARLEY_OK);
	w.token_endpoint = (char *)"https://10.0.0.5/token";
	TEST_EQ_INT(auth__component_hosts_check(&cfg, &w), PARLEY_E_AUTH_HOST_FORBIDDEN);
	cfg.allow_private = 1;
	TEST_EQ_INT(auth__component_hosts_check(&cfg, &w), PARLEY_OK);
}

int main(void)
{
	TEST_RUN(test_v4);
	TEST_RUN(test_v6);
	TEST_RUN(test_sockaddr);
	TEST_RUN(test_literals);
	TEST_RUN(test_allow_list);
	TEST_EXIT();
}
